//! Feeds arbitrary requests to the built-in Stripe adapter.
//!
//! Input layout: byte 0 picks the method, the content type and whether the
//! path is a known Stripe path or fuzzed; byte 1 is where the remaining
//! bytes split into path (and `?query`) and body. Known paths make the
//! fuzzer spend its time inside the form and amount readers instead of on
//! the router's "unknown path" branch.
//!
//! Besides "never panics", it checks the invariants the proxy relies on: a
//! spend is never empty, every spend intent has an amount, amounts are never
//! negative, and the classification kind is one of the four.
#![no_main]

use std::sync::OnceLock;

use leash::intent::{Classification, RequestView, NO_FACTS};
use leash::adapters::Registry;
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &[
    "POST", "POST", "POST", "GET", "DELETE", "PUT", "HEAD", "post",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/x-www-form-urlencoded"),
    None,
    Some("application/x-www-form-urlencoded; charset=utf-8"),
    Some("application/json"),
];

const KNOWN_PATHS: &[&str] = &[
    "/v1/payment_intents",
    "/v1/payment_intents/pi_1",
    "/v1/payment_intents/pi_1/capture",
    "/v1/charges",
    "/v1/charges/ch_1/refunds",
    "/v1/refunds",
    "/v1/transfers",
    "/v1/payouts",
    "/v1/topups",
    "/v1/invoiceitems",
    "/v1/invoiceitems/ii_1",
    "/v1/checkout/sessions",
    "/v1/checkout/sessions/cs_1",
    "/v1/customers",
    "/v1/charges/ch_1",
];

fn vendors() -> &'static Registry {
    static VENDORS: OnceLock<Registry> = OnceLock::new();
    VENDORS.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let (Some(&sel), Some(&split)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = data.get(2..).unwrap_or(&[]);
    let method = METHODS[usize::from(sel) % METHODS.len()];
    let content_type = CONTENT_TYPES[usize::from(sel >> 3) % CONTENT_TYPES.len()];
    let cut = usize::from(split).min(rest.len());
    let (head, body) = rest.split_at(cut);
    let head = String::from_utf8_lossy(head);
    let (fuzzed_path, query) = match head.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*head, None),
    };
    let path = if sel & 0x80 == 0 {
        KNOWN_PATHS[usize::from(sel >> 5) % KNOWN_PATHS.len()]
    } else {
        fuzzed_path
    };

    let adapter = vendors()
        .for_host("api.stripe.com")
        .expect("Stripe is a built-in adapter");
    let view = RequestView {
        method,
        host: "api.stripe.com",
        path,
        query,
        content_type,
        idempotency_key: Some("fuzz"),
        account: None,
        body,
        facts: &NO_FACTS,
    };
    let c = adapter.classify(&view);
    assert!(matches!(
        c.kind(),
        "safe" | "spend" | "unknown" | "unreadable"
    ));
    if let Classification::Spend(drafts) = &c {
        assert!(!drafts.is_empty(), "empty spend");
        for d in drafts {
            let money = d
                .amount
                .expect("a Stripe spend intent always has an amount");
            assert!(!money.amount.is_sign_negative(), "negative amount {money}");
            let _ = money.to_string();
        }
    }
    let _ = view.fingerprint().to_hex();
});
