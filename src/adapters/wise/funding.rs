//! Funding calls (research §5.2 step 4, §5.3): the requests that move money
//! on Wise, and carry no amount. Each is read from the transfer it funds —
//! learned from Wise's answer to its creation, else looked up with the
//! agent's own token — one intent per transfer.
//!
//! - A transfer: `GET /v1/transfers/{t}` → `sourceValue` + `sourceCurrency`
//!   (the amount the balance is debited, Wise's fee included), beneficiary
//!   `targetAccount` (the recipient id), idempotency key
//!   `customerTransactionId` (Wise's duplicate-transfer guard). Without a
//!   `sourceValue`, its quote: `GET /v3/profiles/{p}/quotes/{quoteUuid}` →
//!   `sourceAmount` + `sourceCurrency`.
//! - A batch group: `GET /v3/profiles/{p}/batch-groups/{b}` →
//!   `transferIds`, then each transfer as above.
//!
//! Every looked-up object must be the one asked for (its `id`), amounts
//! are exact decimals (JSON numbers read from their text), currencies ISO
//! 4217. Anything missing or malformed leaves the call unreadable.

use rust_decimal::Decimal;

use super::{shown, CATEGORY, VENDOR};
use crate::adapters::json::{self, Json};
use crate::intent::{Classification, Facts, IntentDraft, Lookup, RequestView};
use crate::money::{parse_decimal_amount, Currency, Money};

const FUND: &str = "transfer.fund";
const FUND_BATCH: &str = "batch_group.fund";

/// Wise's own bound on a batch group (research §5.3).
const MAX_BATCH: usize = 1000;

pub(super) fn transfer_path(transfer: &str) -> String {
    format!("/v1/transfers/{transfer}")
}

fn quote_path(profile: &str, quote: &str) -> String {
    format!("/v3/profiles/{profile}/quotes/{quote}")
}

fn batch_path(profile: &str, batch: &str) -> String {
    format!("/v3/profiles/{profile}/batch-groups/{batch}")
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An id fit for a lookup path: letters, digits, `-` and `_`.
fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn transfer_lookups(
    req: &RequestView<'_>,
    profile: &str,
    transfer: &str,
) -> Vec<Lookup> {
    if !digits(transfer) || !digits(profile) {
        return Vec::new();
    }
    let mut out = Vec::new();
    wanted_for_transfer(req.facts, profile, transfer, &mut out);
    out
}

pub(super) fn batch_lookups(req: &RequestView<'_>, profile: &str, batch: &str) -> Vec<Lookup> {
    if !digits(profile) || !plain_id(batch) {
        return Vec::new();
    }
    let path = batch_path(profile, batch);
    let Some(group) = req.facts.get(&path) else {
        if req.facts.has(&path) {
            return Vec::new();
        }
        return vec![Lookup {
            path,
            body: None,
            why: "a batch funding carries no amount: the batch group's transfers".to_owned(),
        }];
    };
    let mut out = Vec::new();
    if let Ok(ids) = transfer_ids(group) {
        for id in ids {
            wanted_for_transfer(req.facts, profile, &id, &mut out);
        }
    }
    out
}

/// The transfer, then (once it is known and has no `sourceValue`) its
/// quote.
fn wanted_for_transfer(facts: &Facts, profile: &str, transfer: &str, out: &mut Vec<Lookup>) {
    let path = transfer_path(transfer);
    match facts.get(&path) {
        None if !facts.has(&path) => out.push(Lookup {
            path,
            body: None,
            why: "a funding call carries no amount: the transfer's sourceValue and sourceCurrency"
                .to_owned(),
        }),
        Some(t) if states(t, "/sourceValue").is_none() => {
            if let Some(quote) = t.pointer("/quoteUuid").and_then(Json::as_str) {
                let path = quote_path(profile, quote);
                if plain_id(quote) && !facts.has(&path) {
                    out.push(Lookup {
                        path,
                        body: None,
                        why: "the transfer states no sourceValue: its quote's sourceAmount"
                            .to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
}

/// A member that is present and not `null`.
fn states<'j>(json: &'j Json, pointer: &str) -> Option<&'j Json> {
    json.pointer(pointer).filter(|v| **v != Json::Null)
}

/// The body of a funding call: a JSON object with a `type` (`BALANCE`).
fn funding_type(req: &RequestView<'_>, operation: &str) -> Result<String, Classification> {
    let unreadable = |reason: String| Classification::Unreadable {
        operation: operation.to_owned(),
        reason,
    };
    if let Some(ct) = req.content_type {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" {
            return Err(unreadable(format!(
                "the body is {}, not application/json",
                shown(&media)
            )));
        }
    }
    let body = match json::parse(req.body) {
        Ok(body) => body,
        Err(e) if e.is_ambiguous() => {
            return Err(Classification::Ambiguous {
                operation: operation.to_owned(),
                reason: e.to_string(),
            })
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    match body.pointer("/type") {
        Some(Json::String(kind)) if matches!(body, Json::Object(_)) => Ok(kind.clone()),
        _ => Err(unreadable(
            "the funding body is not a JSON object with a `type` (like {\"type\":\"BALANCE\"})"
                .to_owned(),
        )),
    }
}

pub(super) fn transfer(req: &RequestView<'_>, profile: &str, transfer: &str) -> Classification {
    let kind = match funding_type(req, FUND) {
        Ok(kind) => kind,
        Err(c) => return c,
    };
    if !digits(transfer) || !digits(profile) {
        return Classification::Unreadable {
            operation: FUND.to_owned(),
            reason: format!(
                "the profile and transfer ids in {} are not numbers",
                shown(req.path)
            ),
        };
    }
    match read_transfer(req.facts, profile, transfer, &kind, FUND) {
        Ok(draft) => Classification::spend(FUND, vec![draft]),
        Err(reason) => Classification::Unreadable {
            operation: FUND.to_owned(),
            reason,
        },
    }
}

pub(super) fn batch(req: &RequestView<'_>, profile: &str, batch: &str) -> Classification {
    let kind = match funding_type(req, FUND_BATCH) {
        Ok(kind) => kind,
        Err(c) => return c,
    };
    let unreadable = |reason: String| Classification::Unreadable {
        operation: FUND_BATCH.to_owned(),
        reason,
    };
    if !digits(profile) || !plain_id(batch) {
        return unreadable(format!(
            "the profile or batch group id in {} is not one Wise issues",
            shown(req.path)
        ));
    }
    let path = batch_path(profile, batch);
    let group = match req.facts.get(&path) {
        Some(group) => group,
        None => return unreadable(not_known("the batch group", &path, req.facts)),
    };
    if group.pointer("/id").and_then(Json::scalar_text) != Some(batch) {
        return unreadable(format!("GET {path} answered another batch group"));
    }
    let ids = match transfer_ids(group) {
        Ok(ids) => ids,
        Err(reason) => return unreadable(reason),
    };
    let mut drafts = Vec::with_capacity(ids.len());
    for id in &ids {
        match read_transfer(req.facts, profile, id, &kind, FUND_BATCH) {
            Ok(mut draft) => {
                draft.sources.insert(
                    "batch_group".to_owned(),
                    format!("{batch} ({})", req.facts.source(&path)),
                );
                drafts.push(draft);
            }
            Err(reason) => return unreadable(format!("transfer {id} of the batch: {reason}")),
        }
    }
    Classification::spend(FUND_BATCH, drafts)
}

/// A batch group's `transferIds`, as path-ready digit strings.
fn transfer_ids(group: &Json) -> Result<Vec<String>, String> {
    let Some(Json::Array(items)) = group.pointer("/transferIds") else {
        return Err("the batch group states no transferIds".to_owned());
    };
    if items.is_empty() {
        return Err("the batch group has no transfers".to_owned());
    }
    if items.len() > MAX_BATCH {
        return Err(format!(
            "the batch group lists {} transfers, more than Wise's {MAX_BATCH}",
            items.len()
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item.scalar_text() {
            Some(id) if digits(id) => {
                if ids.iter().any(|known| known == id) {
                    return Err(format!("the batch group lists transfer {id} twice"));
                }
                ids.push(id.to_owned());
            }
            _ => return Err("a transferIds entry is not a transfer id".to_owned()),
        }
    }
    Ok(ids)
}

fn not_known(what: &str, path: &str, facts: &Facts) -> String {
    match facts.failure(path) {
        Some(failure) => format!("{what} could not be looked up: {failure}"),
        None => format!("{what} was not looked up (GET {path})"),
    }
}

/// An exact decimal: a JSON number read from its text, or a decimal
/// string.
fn decimal(value: &Json) -> Result<Decimal, String> {
    match value {
        Json::Number(_) => value.number_decimal(),
        Json::String(text) => parse_decimal_amount(text).map_err(|e| e.to_string()),
        _ => Err("is not a number".to_owned()),
    }
}

fn currency_of(value: Option<&Json>) -> Result<Currency, String> {
    let code = value
        .and_then(Json::as_str)
        .ok_or_else(|| "no sourceCurrency".to_owned())?;
    Currency::parse(code).map_err(|e| e.to_string())
}

/// The intent of funding transfer `id`, from what is known of it.
fn read_transfer(
    facts: &Facts,
    profile: &str,
    id: &str,
    kind: &str,
    operation: &str,
) -> Result<IntentDraft, String> {
    let path = transfer_path(id);
    let t = facts
        .get(&path)
        .ok_or_else(|| not_known("the transfer", &path, facts))?;
    if t.pointer("/id").and_then(Json::scalar_text) != Some(id) {
        return Err(format!("{} is not transfer {id}", facts.source(&path)));
    }
    let from = facts.source(&path);
    let mut sources = std::collections::BTreeMap::new();
    let stated_currency = states(t, "/sourceCurrency");
    let (amount, currency) = match states(t, "/sourceValue") {
        Some(value) => {
            let amount = decimal(value).map_err(|e| format!("the transfer's sourceValue {e}"))?;
            let currency = currency_of(stated_currency)
                .map_err(|e| format!("the transfer's sourceCurrency: {e}"))?;
            sources.insert("amount".to_owned(), format!("sourceValue ({from})"));
            sources.insert("currency".to_owned(), format!("sourceCurrency ({from})"));
            (amount, currency)
        }
        None => {
            let quote = t
                .pointer("/quoteUuid")
                .and_then(Json::as_str)
                .filter(|q| plain_id(q))
                .ok_or_else(|| {
                    "the transfer states neither sourceValue nor a quoteUuid".to_owned()
                })?;
            let qpath = quote_path(profile, quote);
            let q = facts
                .get(&qpath)
                .ok_or_else(|| not_known("the transfer's quote", &qpath, facts))?;
            if q.pointer("/id").and_then(Json::as_str) != Some(quote) {
                return Err(format!("{} is not quote {quote}", facts.source(&qpath)));
            }
            let amount = states(q, "/sourceAmount")
                .ok_or_else(|| "the quote states no sourceAmount".to_owned())
                .and_then(|v| decimal(v).map_err(|e| format!("the quote's sourceAmount {e}")))?;
            let currency = currency_of(states(q, "/sourceCurrency"))
                .map_err(|e| format!("the quote's sourceCurrency: {e}"))?;
            if let Some(stated) = stated_currency {
                if currency_of(Some(stated)).ok() != Some(currency) {
                    return Err("the transfer's and its quote's sourceCurrency differ".to_owned());
                }
            }
            let qfrom = facts.source(&qpath);
            sources.insert(
                "amount".to_owned(),
                format!("the quote's sourceAmount ({qfrom})"),
            );
            sources.insert(
                "currency".to_owned(),
                format!("the quote's sourceCurrency ({qfrom})"),
            );
            (amount, currency)
        }
    };
    let beneficiary = t
        .pointer("/targetAccount")
        .and_then(Json::scalar_text)
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    if beneficiary.is_some() {
        sources.insert("beneficiary".to_owned(), format!("targetAccount ({from})"));
    }
    if let Some(quote) = t.pointer("/quoteUuid").and_then(Json::as_str) {
        sources.insert("quote".to_owned(), quote.to_owned());
    }
    sources.insert("transfer".to_owned(), id.to_owned());
    sources.insert("funding".to_owned(), kind.to_owned());
    sources.insert(
        "fee".to_owned(),
        "Wise's fee is part of the source amount (what the balance is debited)".to_owned(),
    );
    Ok(IntentDraft {
        vendor: VENDOR.to_owned(),
        operation: operation.to_owned(),
        amount: Some(Money::new(amount, currency)),
        beneficiary,
        category: CATEGORY.to_owned(),
        idempotency_key: t
            .pointer("/customerTransactionId")
            .and_then(Json::as_str)
            .map(str::to_owned),
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::request;
    use super::super::WiseAdapter;
    use super::*;
    use crate::adapters::Adapter;
    use proptest::prelude::*;

    /// A transfer as `GET /v1/transfers/{id}` (and its creation) answer it
    /// (research §5.2, [W-TRANSFER]).
    const TRANSFER: &str = r#"{"id":16521632,"user":4342275,"targetAccount":148393305,"sourceAccount":null,"quote":null,"quoteUuid":"bd244a95-dcf8-4c31-aac8-bf5e2f3e54c0","status":"incoming_payment_waiting","reference":"my ref","rate":0.9065,"created":"2026-11-24 10:00:00","business":null,"details":{"reference":"my ref"},"hasActiveIssues":false,"sourceCurrency":"EUR","sourceValue":661.89,"targetCurrency":"GBP","targetValue":600,"customerTransactionId":"6f1c4b6c-8a47-4b1e-bb9e-3b9c7a0e2d11"}"#;

    const QUOTE: &str = r#"{"id":"bd244a95-dcf8-4c31-aac8-bf5e2f3e54c0","sourceCurrency":"EUR","targetCurrency":"GBP","sourceAmount":661.89,"targetAmount":600,"rate":0.9065,"payOut":"BANK_TRANSFER"}"#;

    const FUND_PATH: &str = "/v3/profiles/12345/transfers/16521632/payments";
    const BODY: &[u8] = br#"{"type":"BALANCE"}"#;

    /// What the proxy does: lookup rounds answered from `vendor`, then the
    /// classification, with the paths asked for.
    fn decided(path: &str, body: &[u8], vendor: &[(&str, &str)]) -> (Classification, Vec<String>) {
        let adapter = WiseAdapter::default();
        let mut known = Facts::default();
        let mut asked = Vec::new();
        for _ in 0..3 {
            let mut req = request("POST", path, body);
            req.facts = &known;
            let wanted: Vec<String> = adapter
                .lookups(&req)
                .into_iter()
                .map(|l| l.path)
                .filter(|p| !known.has(p))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for at in wanted {
                let got = match vendor.iter().find(|(p, _)| *p == at) {
                    Some((_, body)) => json::parse(body.as_bytes()).map_err(|e| e.to_string()),
                    None => Err(format!("the lookup GET {at} failed: wise answered 404")),
                };
                known.insert(at.clone(), got);
                asked.push(at);
            }
        }
        let mut req = request("POST", path, body);
        req.facts = &known;
        (adapter.classify(&req), asked)
    }

    fn one(c: &Classification) -> &IntentDraft {
        match c {
            Classification::Spend(d) if d.len() == 1 => &d[0],
            other => panic!("{other:?}"),
        }
    }

    fn reason(c: &Classification) -> String {
        match c {
            Classification::Unreadable { reason, .. }
            | Classification::Unknown { reason, .. }
            | Classification::Ambiguous { reason, .. } => reason.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_funding_call_is_read_from_its_looked_up_transfer() {
        let (c, asked) = decided(FUND_PATH, BODY, &[("/v1/transfers/16521632", TRANSFER)]);
        assert_eq!(asked, ["/v1/transfers/16521632"]);
        let d = one(&c);
        assert_eq!(d.amount.unwrap().to_string(), "661.89 EUR");
        assert_eq!(d.beneficiary.as_deref(), Some("148393305"));
        assert_eq!(d.operation, "transfer.fund");
        assert_eq!(d.category, "transfer");
        assert_eq!(
            d.idempotency_key.as_deref(),
            Some("6f1c4b6c-8a47-4b1e-bb9e-3b9c7a0e2d11")
        );
        assert_eq!(
            d.sources["amount"],
            "sourceValue (GET /v1/transfers/16521632)"
        );
        assert_eq!(d.sources["funding"], "BALANCE");
        // The CalVer route is the same call.
        let (c, _) = decided(
            "/2026Q3/profiles/12345/transfers/16521632/payments",
            BODY,
            &[("/v1/transfers/16521632", TRANSFER)],
        );
        assert_eq!(one(&c).amount.unwrap().to_string(), "661.89 EUR");
    }

    #[test]
    fn a_learned_transfer_is_cited_as_learned() {
        let mut known = Facts::default();
        known.insert_learned(
            "/v1/transfers/16521632".into(),
            json::parse(TRANSFER.as_bytes()).unwrap(),
            "POST /v1/transfers".into(),
        );
        let mut req = request("POST", FUND_PATH, BODY);
        req.facts = &known;
        let adapter = WiseAdapter::default();
        assert!(adapter.lookups(&req).is_empty());
        let c = adapter.classify(&req);
        assert_eq!(
            one(&c).sources["amount"],
            "sourceValue (the answer to POST /v1/transfers)"
        );
    }

    #[test]
    fn without_a_source_value_the_quote_is_read() {
        let transfer = TRANSFER.replace("\"sourceValue\":661.89,", "");
        let (c, asked) = decided(
            FUND_PATH,
            BODY,
            &[
                ("/v1/transfers/16521632", &transfer),
                (
                    "/v3/profiles/12345/quotes/bd244a95-dcf8-4c31-aac8-bf5e2f3e54c0",
                    QUOTE,
                ),
            ],
        );
        assert_eq!(asked.len(), 2, "{asked:?}");
        let d = one(&c);
        assert_eq!(d.amount.unwrap().to_string(), "661.89 EUR");
        assert!(d.sources["amount"].starts_with("the quote's sourceAmount"));
        // A quote in another currency than the transfer's is not used.
        let (c, _) = decided(
            FUND_PATH,
            BODY,
            &[
                ("/v1/transfers/16521632", &transfer),
                (
                    "/v3/profiles/12345/quotes/bd244a95-dcf8-4c31-aac8-bf5e2f3e54c0",
                    &QUOTE.replace("\"sourceCurrency\":\"EUR\"", "\"sourceCurrency\":\"USD\""),
                ),
            ],
        );
        assert!(reason(&c).contains("differ"), "{c:?}");
    }

    #[test]
    fn what_cannot_be_read_exactly_is_unreadable() {
        let cases: Vec<(String, &str)> = vec![
            (TRANSFER.replace("16521632", "999"), "is not transfer"),
            (TRANSFER.replace("661.89", "\"661,89\""), "sourceValue"),
            (TRANSFER.replace("661.89", "-661.89"), "sourceValue"),
            (TRANSFER.replace("\"EUR\"", "\"EURO\""), "sourceCurrency"),
            (
                TRANSFER.replace("\"sourceValue\":661.89,", "").replace(
                    "\"quoteUuid\":\"bd244a95-dcf8-4c31-aac8-bf5e2f3e54c0\",",
                    "",
                ),
                "neither sourceValue nor a quoteUuid",
            ),
        ];
        for (transfer, needle) in cases {
            let (c, _) = decided(FUND_PATH, BODY, &[("/v1/transfers/16521632", &transfer)]);
            assert_eq!(c.kind(), "unreadable", "{transfer}");
            assert!(reason(&c).contains(needle), "{needle}: {c:?}");
        }
        // The lookup failed.
        let (c, _) = decided(FUND_PATH, BODY, &[]);
        assert!(reason(&c).contains("404"), "{c:?}");
        // Bodies.
        for (body, kind) in [
            (&b"{\"type\":\"BALANCE\",\"type\":\"X\"}"[..], "ambiguous"),
            (b"type=BALANCE", "unreadable"),
            (b"{}", "unreadable"),
            (b"[]", "unreadable"),
        ] {
            let (c, _) = decided(FUND_PATH, body, &[("/v1/transfers/16521632", TRANSFER)]);
            assert_eq!(c.kind(), kind, "{}", String::from_utf8_lossy(body));
        }
        let (c, asked) = decided(
            "/v3/profiles/12345/transfers/abc/payments",
            BODY,
            &[("/v1/transfers/abc", TRANSFER)],
        );
        assert!(asked.is_empty());
        assert_eq!(c.kind(), "unreadable");
    }

    #[test]
    fn a_batch_funding_is_one_intent_per_transfer() {
        let group = r#"{"id":"54a6bc09-cef9-49a8-9041-f1f0c654cd88","version":3,"name":"November payouts","sourceCurrency":"EUR","status":"COMPLETED","transferIds":[16521632,16521633],"payInDetails":[]}"#;
        let second = TRANSFER
            .replace("16521632", "16521633")
            .replace("661.89", "20.10")
            .replace("148393305", "148393306");
        let path =
            "/2026Q3/profiles/12345/batch-payments/54a6bc09-cef9-49a8-9041-f1f0c654cd88/payments";
        let vendor = [
            (
                "/v3/profiles/12345/batch-groups/54a6bc09-cef9-49a8-9041-f1f0c654cd88",
                group,
            ),
            ("/v1/transfers/16521632", TRANSFER),
            ("/v1/transfers/16521633", second.as_str()),
        ];
        let (c, asked) = decided(path, BODY, &vendor);
        assert_eq!(asked.len(), 3);
        let Classification::Spend(d) = &c else {
            panic!("{c:?}")
        };
        let got: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.amount.unwrap().to_string(),
                    d.beneficiary.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("661.89 EUR".to_string(), "148393305".to_string()),
                ("20.10 EUR".to_string(), "148393306".to_string()),
            ]
        );
        assert!(d.iter().all(|d| d.operation == "batch_group.fund"));
        // One transfer that cannot be read makes the whole batch unreadable.
        let (c, _) = decided(path, BODY, &vendor[..2]);
        assert!(reason(&c).contains("transfer 16521633"), "{c:?}");
        for group in [
            group.replace("[16521632,16521633]", "[]"),
            group.replace("[16521632,16521633]", "[16521632,16521632]"),
            group.replace("[16521632,16521633]", "[\"../x\"]"),
            group.replace("\"transferIds\":[16521632,16521633],", ""),
            group.replace("54a6bc09-cef9", "ffffffff-cef9"),
        ] {
            let vendor = [(vendor[0].0, group.as_str()), vendor[1], vendor[2]];
            let (c, _) = decided(path, BODY, &vendor);
            assert_eq!(c.kind(), "unreadable", "{group}");
        }
    }

    proptest! {
        /// Any looked-up transfer: never a panic, and a spend only with the
        /// amount it states, exactly.
        #[test]
        fn looked_up_transfers_read_exactly(mantissa in 0u64..1_000_000_000_000, scale in 0u32..6) {
            let value = Decimal::from_i128_with_scale(i128::from(mantissa), scale);
            let transfer = TRANSFER.replace("661.89", &value.to_string());
            let (c, _) = decided(FUND_PATH, BODY, &[("/v1/transfers/16521632", &transfer)]);
            prop_assert_eq!(one(&c).amount.map(|m| m.amount), Some(value));
        }

        #[test]
        fn arbitrary_facts_never_panic(fact in ".{0,200}", body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decided(FUND_PATH, &body, &[("/v1/transfers/16521632", &fact)]);
        }
    }
}
