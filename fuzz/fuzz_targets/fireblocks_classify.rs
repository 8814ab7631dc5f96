//! Feeds arbitrary requests to the built-in Fireblocks adapter.
//!
//! Input layout: byte 0 picks the method, the content type and whether the
//! path is `POST /v1/transactions` (most inputs, so the fuzzer lives in the
//! transaction reader) or fuzzed; the rest is the body. Half of the inputs
//! are wrapped into the SDK's body shape around the fuzzed bytes, so amount,
//! asset and destination readers see near-valid transactions.
//!
//! Checked besides "never panics": `POST /v1/transactions` is never safe, a
//! spend is never empty, every intent has a non-negative amount and a
//! beneficiary, and intents of one request share one currency.
#![no_main]

use std::sync::OnceLock;

use leash::adapters::Registry;
use leash::intent::{Classification, RequestView, NO_FACTS};
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &["POST", "POST", "POST", "POST", "GET", "PUT", "DELETE", "post"];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    None,
    Some("text/plain"),
];

fn vendors() -> &'static Registry {
    static VENDORS: OnceLock<Registry> = OnceLock::new();
    VENDORS.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Some(&sel) = data.first() else {
        return;
    };
    let rest = data.get(1..).unwrap_or(&[]);
    let method = METHODS[usize::from(sel) % METHODS.len()];
    let content_type = CONTENT_TYPES[usize::from(sel >> 3) % CONTENT_TYPES.len()];
    let (path, body): (String, Vec<u8>) = if sel & 0x80 != 0 {
        match rest.iter().position(|b| *b == b' ') {
            Some(at) => (
                String::from_utf8_lossy(&rest[..at]).into_owned(),
                rest[at + 1..].to_vec(),
            ),
            None => (String::from_utf8_lossy(rest).into_owned(), Vec::new()),
        }
    } else if sel & 0x40 != 0 {
        // Near-valid: the fuzzed bytes as the amount and the destination.
        let text = String::from_utf8_lossy(rest);
        let (amount, to) = text.split_once('|').unwrap_or((&text, "0xA"));
        let body = format!(
            r#"{{"operation":"TRANSFER","assetId":"BTC_TEST","source":{{"type":"VAULT_ACCOUNT","id":"0"}},"amount":{amount},"destinations":[{{"amount":{amount},"destination":{to}}}],"externalTxId":"f"}}"#
        );
        ("/v1/transactions".to_owned(), body.into_bytes())
    } else {
        ("/v1/transactions".to_owned(), rest.to_vec())
    };
    let adapter = vendors()
        .for_host("api.fireblocks.io")
        .expect("Fireblocks is a built-in adapter");
    let view = RequestView {
        method,
        host: "api.fireblocks.io",
        path: &path,
        query: None,
        content_type,
        idempotency_key: Some("fuzz"),
        account: Some("key"),
        headers: &[],
        body: &body,
        facts: &NO_FACTS,
    };
    let c = adapter.classify(&view);
    if method == "POST" && path == "/v1/transactions" {
        assert!(!matches!(c, Classification::Safe { .. }), "a transaction read as safe");
    }
    if let Classification::Spend(drafts) = &c {
        assert!(!drafts.is_empty(), "empty spend");
        let currency = drafts[0].amount.map(|m| m.currency);
        for d in drafts {
            let money = d.amount.expect("a Fireblocks intent always has an amount");
            assert!(!money.amount.is_sign_negative(), "negative amount {money}");
            assert_eq!(Some(money.currency), currency);
            assert!(d.beneficiary.as_deref().is_some_and(|b| !b.is_empty()));
        }
    }
    let _ = view.fingerprint().to_hex();
});
