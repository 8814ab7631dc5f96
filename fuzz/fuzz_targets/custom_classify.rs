//! A custom vendor's adapter (SPEC §4.4), declared the way the seed's
//! procurement config declares Acme (a JSON operation with an `{id}` path,
//! a form operation in minor units with its key in the body), fed
//! arbitrary method / path / query / content type / body.
//!
//! Checks: never panics; a write is never `safe`; a spend carries one
//! intent with a non-negative amount in the declared currency rules.

#![no_main]

use std::sync::OnceLock;

use leash::adapters::custom::CustomAdapter;
use leash::adapters::Adapter;
use leash::intent::{Classification, RequestView, NO_FACTS};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
custom_vendors:
  - name: acme_procurement
    hosts: [api.acme-supplies.example]
    operations:
      - name: purchase_order
        method: POST
        path: /v2/orders/{id}/confirm
        body: json
        amount: /total/value
        currency: /total/currency
        beneficiary: /supplier_id
        category: /category
      - name: deposit
        method: POST
        path: /v2/deposits
        body: form
        amount: amount
        minor_units: true
        currency: EUR
        idempotency_key: { body: /ref }
"#;

fn adapter() -> &'static CustomAdapter {
    static ADAPTER: OnceLock<CustomAdapter> = OnceLock::new();
    ADAPTER.get_or_init(|| {
        let config =
            leash::config::Config::parse(std::path::Path::new("leash.yaml"), CONFIG).unwrap();
        CustomAdapter::new(config.custom_vendors[0].clone())
    })
}

fuzz_target!(|data: &[u8]| {
    // method \0 path \0 query \0 content-type \0 body
    let mut parts = data.splitn(5, |b| *b == 0);
    fn text(p: Option<&[u8]>) -> Option<&str> {
        p.and_then(|p| std::str::from_utf8(p).ok())
    }
    let (Some(method), Some(path)) = (text(parts.next()), text(parts.next())) else {
        return;
    };
    let query = text(parts.next()).filter(|q| !q.is_empty());
    let content_type = text(parts.next()).filter(|c| !c.is_empty());
    let body = parts.next().unwrap_or(&[]);
    let req = RequestView {
        method,
        host: "api.acme-supplies.example",
        path,
        query,
        content_type,
        idempotency_key: None,
        account: None,
        headers: &[],
        body,
        facts: &NO_FACTS,
    };
    let classification = adapter().classify(&req);
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        assert!(!matches!(classification, Classification::Safe { .. }));
    }
    if let Classification::Spend(drafts) = classification {
        assert_eq!(drafts.len(), 1);
        let amount = drafts[0].amount.as_ref().expect("a spend has its amount");
        assert!(!amount.amount.is_sign_negative());
    }
});
