//! Feeds arbitrary requests to the built-in Meta (Graph) adapter, through
//! its three readers: the form/JSON parameter reader, the batch reader
//! (`batch=[…]` in a form, in a JSON body, or in the query) and each
//! item's `relative_url` query and form body.
//!
//! Input layout: byte 0 picks the method, the content type, whether the
//! path is a known Graph path or fuzzed, and how the rest is wrapped (as
//! is, as the `batch` form field, as a JSON body's `batch`, or as the
//! query's `batch`); byte 1 is where the remaining bytes split into path
//! (and `?query`) and body. When the body holds a `\0`, what follows is the
//! answer to every lookup the adapter asks for (three rounds, as the proxy
//! does).
//!
//! Besides "never panics", it checks what the proxy relies on: a spend is
//! never empty, every intent has a non-negative amount, the ad account as
//! beneficiary and the `ad_spend` category, and the agent's token (in the
//! query) never appears in a reason unless the fuzzer wrote it elsewhere.
#![no_main]

use std::sync::OnceLock;

use leash::adapters::Registry;
use leash::intent::{Classification, Facts, RequestView};
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &["POST", "POST", "POST", "GET", "DELETE", "PUT", "post", "GET"];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/x-www-form-urlencoded"),
    None,
    Some("application/json"),
    Some("multipart/form-data; boundary=x"),
];

const KNOWN_PATHS: &[&str] = &[
    "/v25.0/",
    "/v25.0/act_1001/adsets",
    "/v25.0/act_1001/campaigns",
    "/act_77/adsets",
    "/v25.0/120200000000000777/",
    "/v25.0/555",
    "/v25.0/555/copies",
    "/v25.0/act_1001",
];

const SECRET: &str = "FUZZSECRETTOKEN";

fn vendors() -> &'static Registry {
    static VENDORS: OnceLock<Registry> = OnceLock::new();
    VENDORS.get_or_init(|| {
        let mut config = leash::config::Config::default();
        config.vendors.meta.accounts.insert("act_1001".into(), "EUR".into());
        Registry::from_config(&config)
    })
}

fn urlencode(bytes: &[u8]) -> String {
    form_urlencoded::byte_serialize(bytes).collect()
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
    let (fuzzed_path, fuzzed_query) = match head.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*head, None),
    };
    let path = if sel & 0x80 == 0 {
        KNOWN_PATHS[usize::from(sel >> 5) % KNOWN_PATHS.len()]
    } else {
        fuzzed_path
    };
    // How the body is wrapped: as is, or as a batch.
    let mut query = format!("access_token={SECRET}&appsecret_proof=00ff");
    if let Some(q) = fuzzed_query {
        query.push('&');
        query.push_str(q);
    }
    let (body, content_type): (Vec<u8>, Option<&str>) = match (sel >> 1) & 0b11 {
        0 => (body.to_vec(), content_type),
        1 => (
            format!("batch={}", urlencode(body)).into_bytes(),
            Some("application/x-www-form-urlencoded"),
        ),
        2 => {
            let mut json = b"{\"batch\":".to_vec();
            json.extend_from_slice(body);
            json.push(b'}');
            (json, Some("application/json"))
        }
        _ => {
            query.push_str("&batch=");
            query.push_str(&urlencode(body));
            (Vec::new(), content_type)
        }
    };

    let adapter = vendors()
        .for_host("graph.facebook.com")
        .expect("Meta is a built-in adapter");
    let mut facts = Facts::default();
    let base = RequestView {
        method,
        host: "graph.facebook.com",
        path,
        query: Some(&query),
        content_type,
        idempotency_key: None,
        account: None,
        headers: &[],
        body: &body,
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
                assert!(!path.contains(SECRET), "a lookup path carries the token");
                let got = leash::adapters::json::parse(answer).map_err(|e| e.to_string());
                facts.insert(path, got);
            }
        }
    }
    let view = view(&base, &facts);
    let c = adapter.classify(&view);
    let fuzzer_wrote_it = String::from_utf8_lossy(data).contains(SECRET);
    match &c {
        Classification::Spend(drafts) => {
            assert!(!drafts.is_empty(), "empty spend");
            for d in drafts {
                let money = d.amount.expect("a Meta spend intent always has an amount");
                assert!(!money.amount.is_sign_negative(), "negative amount {money}");
                assert!(d.beneficiary.as_deref().is_some_and(|b| b.starts_with("act_")));
                assert_eq!(d.category, "ad_spend");
                let _ = money.to_string();
                if !fuzzer_wrote_it {
                    assert!(!format!("{:?}", d.sources).contains(SECRET));
                }
            }
        }
        Classification::Unknown { reason, .. }
        | Classification::Unreadable { reason, .. }
        | Classification::Ambiguous { reason, .. } => {
            if !fuzzer_wrote_it {
                assert!(!reason.contains(SECRET), "the token in a reason: {reason}");
            }
        }
        Classification::Safe { .. } => {}
    }
    let _ = view.fingerprint().to_hex();
});
