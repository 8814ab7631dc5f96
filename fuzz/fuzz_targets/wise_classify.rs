//! Feeds arbitrary requests to the built-in Wise adapter, with arbitrary
//! looked-up transfers, quotes and batch groups.
//!
//! Input layout: byte 0 picks the method and whether the path is a known
//! Wise path (funding, batch funding, quotes, recipients, transfers) or
//! fuzzed; byte 1 is where the remaining bytes split into path and body.
//! When the body holds a `\0`, what follows is the vendor's answer to every
//! lookup the adapter asks for (three rounds, as the proxy does), so the
//! funding readers run on fuzzed transfers, quotes and batch groups. The
//! same answer is also handed to `learn` for the request.
//!
//! Checked besides "never panics": a spend is never empty, every intent
//! has a non-negative amount, nothing learned sits outside the paths a
//! lookup would GET, a safe write's record (recipients) is built without
//! panicking, and a refusal carries no `x-2fa-*` header.
#![no_main]

use std::sync::OnceLock;

use leash::adapters::{Refusal, Registry};
use leash::intent::{Classification, Facts, RequestView};
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &["POST", "POST", "POST", "GET", "PATCH", "PUT", "DELETE", "post"];

const KNOWN_PATHS: &[&str] = &[
    "/v3/profiles/12345/transfers/16521632/payments",
    "/2026Q3/profiles/12345/transfers/16521632/payments",
    "/v3/profiles/12345/batch-payments/54a6bc09-cef9/payments",
    "/2026Q3/profiles/12345/batch-payments/54a6bc09-cef9/payments",
    "/v3/profiles/12345/quotes",
    "/v3/profiles/12345/quotes/bd244a95",
    "/v1/accounts",
    "/v1/transfers",
    "/v3/profiles/12345/batch-groups/54a6bc09-cef9/transfers",
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
    let cut = usize::from(split).min(rest.len());
    let (head, body) = rest.split_at(cut);
    let (body, answer) = match body.iter().position(|b| *b == 0) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let head = String::from_utf8_lossy(head);
    let path = if sel & 0x80 == 0 {
        KNOWN_PATHS[usize::from(sel >> 3) % KNOWN_PATHS.len()]
    } else {
        &*head
    };
    let adapter = vendors()
        .for_host("api.wise.com")
        .expect("Wise is a built-in adapter");
    let mut facts = Facts::default();
    let base = RequestView {
        method,
        host: "api.wise.com",
        path,
        query: None,
        content_type: Some("application/json"),
        idempotency_key: None,
        account: None,
        headers: &[],
        body,
        facts: &leash::intent::NO_FACTS,
    };
    fn view<'a>(base: &RequestView<'a>, facts: &'a Facts) -> RequestView<'a> {
        RequestView { facts, ..*base }
    }
    if let Some(answer) = answer {
        let parsed = leash::adapters::json::parse(answer);
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
                assert!(path.starts_with("/v1/transfers/") || path.starts_with("/v3/profiles/"), "{path}");
                facts.insert(path, parsed.clone().map_err(|e| e.to_string()));
            }
        }
        if let Ok(json) = &parsed {
            for (path, _) in adapter.learn(&base, json) {
                assert!(
                    path.starts_with("/v1/transfers/") || path.starts_with("/v3/profiles/"),
                    "learned {path}"
                );
                assert!(!path.contains(".."), "learned {path}");
            }
        }
    }
    let view = view(&base, &facts);
    let c = adapter.classify(&view);
    if let Classification::Spend(drafts) = &c {
        assert!(!drafts.is_empty(), "empty spend");
        for d in drafts {
            let money = d.amount.expect("a Wise spend intent always has an amount");
            assert!(!money.amount.is_sign_negative(), "negative amount {money}");
        }
    }
    if matches!(c, Classification::Safe { .. }) {
        if let Some(record) = adapter.safe_record(&view) {
            let _ = record.to_string();
        }
    }
    let shaped = adapter.shape_refusal(&Refusal {
        status: http::StatusCode::FORBIDDEN,
        code: "leash_rejected",
        message: "no",
    });
    assert!(shaped.headers.iter().all(|(n, _)| !n.starts_with("x-2fa")));
    let _ = view.fingerprint().to_hex();
});
