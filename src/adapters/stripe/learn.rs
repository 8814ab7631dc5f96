//! Learned facts (SPEC §4.2a): Stripe answers a create, update, confirm,
//! capture or finalize with the whole object, which is exactly what a later
//! lookup would GET. The proxy keeps such an answer under the object's
//! lookup path (for the same agent, credentials and account), so that the
//! confirm that follows a PaymentIntent create is read without a GET.
//!
//! Only what the answer states is kept, and only when it is unmistakably
//! the object: its `object` field names the kind the endpoint returns, its
//! `id` is a plain Stripe id (letters, digits, `_`), and for a request on
//! an existing object (`/v1/payment_intents/{id}/confirm`) it is that
//! object. Anything else (an error body, a list, an expanded wrapper) is
//! not learned.

use super::{canonical_segments, normalize_host, object_id, API_HOST};
use crate::adapters::json::Json;
use crate::intent::RequestView;

/// What an answer to one endpoint is: the `object` kind it must name, the
/// collection its lookup path is under, and the id the request's path
/// names, when it acts on an existing object.
struct Learned<'a> {
    kind: &'static str,
    collection: &'static str,
    path_id: Option<&'a str>,
}

/// The endpoints whose answers are learned: PaymentIntent create, update
/// and confirm; Charge create and capture; Price create; Invoice create and
/// finalize; Transfer create.
fn learned<'a>(req: &RequestView<'a>) -> Option<Learned<'a>> {
    if req.method != "POST" || normalize_host(req.host) != API_HOST {
        return None;
    }
    let segs = canonical_segments(req.path)?;
    let (kind, collection, path_id) = match segs.as_slice() {
        ["v1", "payment_intents"] => ("payment_intent", "payment_intents", None),
        ["v1", "payment_intents", id] | ["v1", "payment_intents", id, "confirm"] => {
            ("payment_intent", "payment_intents", Some(*id))
        }
        ["v1", "charges"] => ("charge", "charges", None),
        ["v1", "charges", id, "capture"] => ("charge", "charges", Some(*id)),
        ["v1", "prices"] => ("price", "prices", None),
        ["v1", "invoices"] => ("invoice", "invoices", None),
        ["v1", "invoices", id, "finalize"] => ("invoice", "invoices", Some(*id)),
        ["v1", "transfers"] => ("transfer", "transfers", None),
        _ => return None,
    };
    Some(Learned {
        kind,
        collection,
        path_id,
    })
}

/// Whether the answer to `req` is worth reading.
pub(super) fn learns_from(req: &RequestView<'_>) -> bool {
    learned(req).is_some()
}

/// The object a 2xx `answer` to `req` is, under its lookup path; nothing
/// when the answer is not unmistakably that object.
pub(super) fn learn(req: &RequestView<'_>, answer: &Json) -> Vec<(String, Json)> {
    let Some(learned) = learned(req) else {
        return Vec::new();
    };
    if answer.pointer("/object").and_then(Json::as_str) != Some(learned.kind) {
        return Vec::new();
    }
    let Some(id) = answer
        .pointer("/id")
        .and_then(Json::as_str)
        .and_then(object_id)
    else {
        return Vec::new();
    };
    if learned.path_id.is_some_and(|path_id| path_id != id) {
        return Vec::new();
    }
    vec![(format!("/v1/{}/{id}", learned.collection), answer.clone())]
}

#[cfg(test)]
mod tests {
    use super::super::testing::{amount, facts, request, source, FORM};
    use super::super::{classify, StripeAdapter};
    use crate::adapters::json::{parse, Json};
    use crate::adapters::Adapter;
    use crate::intent::Facts;

    fn learned(path: &str, answer: &str) -> Vec<(String, Json)> {
        let known = Facts::default();
        let req = request(path, FORM, b"", &known);
        let adapter = StripeAdapter;
        assert!(adapter.learns_from(&req), "{path}");
        adapter.learn(&req, &parse(answer.as_bytes()).unwrap())
    }

    fn paths(learned: &[(String, Json)]) -> Vec<&str> {
        learned.iter().map(|(p, _)| p.as_str()).collect()
    }

    const PI: &str = r#"{"id":"pi_1","object":"payment_intent","amount":2000,"amount_capturable":0,"currency":"eur","customer":"cus_1"}"#;

    #[test]
    fn answers_are_learned_under_their_lookup_path() {
        for (path, answer, at) in [
            ("/v1/payment_intents", PI, "/v1/payment_intents/pi_1"),
            ("/v1/payment_intents/pi_1", PI, "/v1/payment_intents/pi_1"),
            (
                "/v1/payment_intents/pi_1/confirm",
                PI,
                "/v1/payment_intents/pi_1",
            ),
            (
                "/v1/charges",
                r#"{"id":"ch_1","object":"charge","amount":1,"currency":"eur"}"#,
                "/v1/charges/ch_1",
            ),
            (
                "/v1/charges/ch_1/capture",
                r#"{"id":"ch_1","object":"charge","amount":1,"currency":"eur"}"#,
                "/v1/charges/ch_1",
            ),
            (
                "/v1/prices",
                r#"{"id":"price_1","object":"price","unit_amount":500,"currency":"usd"}"#,
                "/v1/prices/price_1",
            ),
            (
                "/v1/invoices",
                r#"{"id":"in_1","object":"invoice","amount_due":0,"currency":"eur"}"#,
                "/v1/invoices/in_1",
            ),
            (
                "/v1/invoices/in_1/finalize",
                r#"{"id":"in_1","object":"invoice","amount_due":900,"currency":"eur"}"#,
                "/v1/invoices/in_1",
            ),
            (
                "/v1/transfers",
                r#"{"id":"tr_1","object":"transfer","amount":1,"amount_reversed":0,"currency":"eur"}"#,
                "/v1/transfers/tr_1",
            ),
        ] {
            let got = learned(path, answer);
            assert_eq!(paths(&got), [at], "{path}");
            assert_eq!(got[0].1, parse(answer.as_bytes()).unwrap());
        }
    }

    #[test]
    fn only_the_object_itself_is_learned() {
        for (path, answer) in [
            // Another kind of object, an error, a list, no id.
            ("/v1/payment_intents", r#"{"id":"ch_1","object":"charge"}"#),
            (
                "/v1/payment_intents",
                r#"{"error":{"type":"card_error","code":"card_declined"}}"#,
            ),
            ("/v1/payment_intents", r#"{"object":"list","data":[]}"#),
            ("/v1/payment_intents", r#"{"object":"payment_intent"}"#),
            ("/v1/payment_intents", r#"[1]"#),
            // An id leash would not put in a path.
            (
                "/v1/payment_intents",
                r#"{"id":"../payouts","object":"payment_intent"}"#,
            ),
            (
                "/v1/payment_intents",
                r#"{"id":7,"object":"payment_intent"}"#,
            ),
            // Another object than the one the path names.
            ("/v1/payment_intents/pi_2/confirm", PI),
            (
                "/v1/invoices/in_2/finalize",
                r#"{"id":"in_1","object":"invoice"}"#,
            ),
        ] {
            assert!(learned(path, answer).is_empty(), "{path} {answer}");
        }
        let known = Facts::default();
        let adapter = StripeAdapter;
        for (method, host, path) in [
            ("GET", "api.stripe.com", "/v1/payment_intents"),
            ("POST", "files.stripe.com", "/v1/payment_intents"),
            ("POST", "api.stripe.com", "/v1/refunds"),
            ("POST", "api.stripe.com", "/v1/payment_intents/pi_1/capture"),
            ("POST", "api.stripe.com", "/v1/payment_intents/../x"),
        ] {
            let mut req = request(path, FORM, b"", &known);
            req.method = method;
            req.host = host;
            assert!(!adapter.learns_from(&req), "{method} {host} {path}");
            let answer = parse(PI.as_bytes()).unwrap();
            assert!(adapter.learn(&req, &answer).is_empty());
        }
    }

    #[test]
    fn a_learned_payment_intent_reads_the_confirm_that_follows() {
        let got = learned("/v1/payment_intents", PI);
        let mut known = facts(&[]);
        for (at, json) in got {
            known.insert(at, Ok(json));
        }
        let c = classify(&request(
            "/v1/payment_intents/pi_1/confirm",
            FORM,
            b"",
            &known,
        ));
        assert_eq!(amount(&c), "20.00 EUR");
        assert_eq!(source(&c, "currency"), "eur (GET /v1/payment_intents/pi_1)");
    }
}
