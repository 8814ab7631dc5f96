//! Feeds arbitrary requests to the built-in Stripe adapter.
//!
//! Input layout: byte 0 picks the method, the content type and whether the
//! path is a known Stripe path or fuzzed; byte 1 is where the remaining
//! bytes split into path (and `?query`) and body. Known paths make the
//! fuzzer spend its time inside the form and amount readers instead of on
//! the router's "unknown path" branch.
//!
//! Lookups: when the body holds a `\0`, what follows it is the vendor's
//! answer to every lookup the adapter asks for (three rounds, as the proxy
//! does): strict JSON when it parses, a failed lookup otherwise. So the
//! readers of looked-up objects (charges, PaymentIntents, invoices, prices,
//! transfers) are fuzzed with the requests that need them.
//!
//! Besides "never panics", it checks the invariants the proxy relies on: a
//! spend is never empty, every spend intent has an amount, amounts are never
//! negative, and the classification kind is one of the five.
#![no_main]

use std::sync::OnceLock;

use leash::intent::{Classification, Facts, RequestView};
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
    "/v1/payment_intents/pi_1/confirm",
    "/v1/payment_intents/pi_1/capture",
    "/v1/payment_intents/pi_1/increment_authorization",
    "/v1/charges",
    "/v1/charges/ch_1/capture",
    "/v1/charges/ch_1/refunds",
    "/v1/refunds",
    "/v1/transfers",
    "/v1/transfers/tr_1/reversals",
    "/v1/payouts",
    "/v1/payouts/po_1/reverse",
    "/v1/topups",
    "/v1/invoiceitems",
    "/v1/invoiceitems/ii_1",
    "/v1/invoices/in_1/pay",
    "/v1/checkout/sessions",
    "/v1/checkout/sessions/cs_1",
    "/v1/subscriptions",
    "/v1/subscriptions/sub_1",
    "/v1/subscription_items",
    "/v1/customers",
    "/v1/customers/cus_1/balance_transactions",
    "/v1/application_fees/fee_1/refunds",
    "/v1/treasury/outbound_payments",
    "/v1/setup_intents",
    "/v2/money_management/outbound_payments",
    "/v2/money_management/outbound_transfers",
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
    let (body, answer) = match body.iter().position(|b| *b == 0) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
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
    let mut facts = Facts::default();
    let base = RequestView {
        method,
        host: "api.stripe.com",
        path,
        query,
        content_type,
        idempotency_key: Some("fuzz"),
        account: None,
        headers: &[],
        body,
        facts: &leash::intent::NO_FACTS,
    };
    fn view<'a>(base: &RequestView<'a>, facts: &'a Facts) -> RequestView<'a> {
        RequestView { facts, ..*base }
    }
    if let Some(answer) = answer {
        for _ in 0..3 {
            let wanted: Vec<String> = adapter
                .lookups(&view(&base, &facts))
                .into_iter()
                .map(|l| l.path)
                .filter(|p| !facts.has(p))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for path in wanted {
                let got = leash::adapters::json::parse(answer).map_err(|e| e.to_string());
                facts.insert(path, got);
            }
        }
    }
    let view = view(&base, &facts);
    let c = adapter.classify(&view);
    assert!(matches!(
        c.kind(),
        "safe" | "spend" | "unknown" | "unreadable" | "ambiguous"
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
