//! Learned facts (SPEC §4.2a): Wise answers a quote or a transfer creation
//! with the whole object, which is what a funding call is read from. The
//! proxy keeps it under its lookup path, for the same agent and token:
//!
//! - a transfer (`POST /v1/transfers`, `POST …/batch-groups/{b}/transfers`)
//!   at `/v1/transfers/{id}`: `sourceValue`, `sourceCurrency`,
//!   `targetAccount`, `quoteUuid`;
//! - a quote (`POST /v3/profiles/{p}/quotes`, `PATCH …/quotes/{q}`, and
//!   their CalVer forms) at `/v3/profiles/{p}/quotes/{id}`: `sourceAmount`,
//!   `sourceCurrency`.
//!
//! Only an answer that is unmistakably that object is kept: a transfer id
//! of digits with a `targetAccount`, a quote id of plain id characters
//! with a `sourceCurrency`, and for a quote update the quote the path
//! names. Anything else (an error body, a list) teaches nothing.

use super::{route, Route};
use crate::adapters::json::Json;
use crate::intent::RequestView;

pub(super) fn learns_from(req: &RequestView<'_>) -> bool {
    matches!(
        route(req),
        Some(
            Route::TransferCreate
                | Route::BatchTransferCreate
                | Route::QuoteCreate { profile: Some(_) }
                | Route::QuoteUpdate { .. }
        )
    )
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn learn(req: &RequestView<'_>, answer: &Json) -> Vec<(String, Json)> {
    if !matches!(answer, Json::Object(_)) {
        return Vec::new();
    }
    let learned = match route(req) {
        Some(Route::TransferCreate | Route::BatchTransferCreate) => answer
            .pointer("/id")
            .and_then(|id| match id {
                Json::Number(n) => Some(n.as_str()),
                _ => None,
            })
            .filter(|id| digits(id))
            .filter(|_| answer.pointer("/targetAccount").is_some())
            .map(|id| format!("/v1/transfers/{id}")),
        Some(Route::QuoteCreate {
            profile: Some(profile),
        }) => quote_id(answer).map(|id| format!("/v3/profiles/{profile}/quotes/{id}")),
        Some(Route::QuoteUpdate { profile, quote }) => quote_id(answer)
            .filter(|id| *id == quote)
            .map(|id| format!("/v3/profiles/{profile}/quotes/{id}")),
        _ => None,
    };
    learned
        .map(|path| vec![(path, answer.clone())])
        .unwrap_or_default()
}

fn quote_id(answer: &Json) -> Option<&str> {
    answer
        .pointer("/id")
        .and_then(Json::as_str)
        .filter(|id| plain_id(id))
        .filter(|_| answer.pointer("/sourceCurrency").is_some())
}

#[cfg(test)]
mod tests {
    use super::super::testing::request;
    use super::super::WiseAdapter;
    use crate::adapters::json::parse;
    use crate::adapters::Adapter;

    fn learned(method: &str, path: &str, answer: &str) -> Vec<String> {
        let adapter = WiseAdapter::default();
        let req = request(method, path, b"{}");
        let answer = parse(answer.as_bytes()).unwrap();
        let got = adapter.learn(&req, &answer);
        if !got.is_empty() {
            assert!(adapter.learns_from(&req));
        }
        got.into_iter().map(|(p, _)| p).collect()
    }

    const TRANSFER: &str = r#"{"id":16521632,"targetAccount":148393305,"quoteUuid":"bd244a95","sourceCurrency":"EUR","sourceValue":661.89}"#;
    const QUOTE: &str = r#"{"id":"bd244a95-dcf8","sourceCurrency":"GBP","targetCurrency":"USD","sourceAmount":10,"targetAmount":null}"#;

    #[test]
    fn quotes_and_transfers_are_learned_under_their_lookup_paths() {
        assert_eq!(
            learned("POST", "/v1/transfers", TRANSFER),
            ["/v1/transfers/16521632"]
        );
        assert_eq!(
            learned(
                "POST",
                "/v3/profiles/7/batch-groups/54a6/transfers",
                TRANSFER
            ),
            ["/v1/transfers/16521632"]
        );
        assert_eq!(
            learned("POST", "/v3/profiles/7/quotes", QUOTE),
            ["/v3/profiles/7/quotes/bd244a95-dcf8"]
        );
        assert_eq!(
            learned("POST", "/2026Q3/profiles/7/quotes", QUOTE),
            ["/v3/profiles/7/quotes/bd244a95-dcf8"]
        );
        assert_eq!(
            learned("PATCH", "/v3/profiles/7/quotes/bd244a95-dcf8", QUOTE),
            ["/v3/profiles/7/quotes/bd244a95-dcf8"]
        );
    }

    #[test]
    fn only_the_object_itself_is_learned() {
        for (method, path, answer) in [
            ("PATCH", "/v3/profiles/7/quotes/other", QUOTE),
            (
                "POST",
                "/v1/transfers",
                r#"{"id":"16521632","targetAccount":1}"#,
            ),
            ("POST", "/v1/transfers", r#"{"id":16521632}"#),
            ("POST", "/v1/transfers", r#"{"id":-1,"targetAccount":1}"#),
            ("POST", "/v1/transfers", r#"{"errors":[{"code":"x"}]}"#),
            ("POST", "/v1/transfers", r#"[1]"#),
            (
                "POST",
                "/v3/profiles/7/quotes",
                r#"{"id":"../x","sourceCurrency":"EUR"}"#,
            ),
            ("POST", "/v3/profiles/7/quotes", r#"{"id":"q1"}"#),
            ("POST", "/v2/quotes", QUOTE),
            ("POST", "/v1/accounts", TRANSFER),
            ("POST", "/v3/profiles/7/transfers/1/payments", TRANSFER),
        ] {
            assert!(
                learned(method, path, answer).is_empty(),
                "{method} {path} {answer}"
            );
        }
        let adapter = WiseAdapter::default();
        assert!(!adapter.learns_from(&request("GET", "/v1/transfers", b"")));
        assert!(!adapter.learns_from(&request("POST", "/v3/profiles/7/transfers/1/payments", b"")));
    }
}
