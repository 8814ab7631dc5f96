//! Feeds arbitrary EC2 Query API requests (and XML answers) to the
//! built-in AWS adapter.
//!
//! Input layout: byte 0 picks the method, the content type and whether the
//! action is a known one (prefixed to the body as `Action=…&`) or fuzzed;
//! byte 1 is where the remaining bytes split into the query string and the
//! body. When the body holds a `\0`, what follows it is an XML answer: it
//! is handed to `learn_from_answer` for the request, and every learned
//! object answers the lookups the adapter asks for (others fail, as leash
//! never fetches EC2 lookups), so the purchase readers run on learned
//! offerings.
//!
//! Besides "never panics", it checks the invariants the proxy relies on: a
//! spend is never empty, every spend intent has a non-negative amount, and
//! the fingerprint never depends on `ClientToken`.
#![no_main]

use std::sync::OnceLock;

use leash::adapters::Registry;
use leash::intent::{Classification, Facts, RequestView};
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &["POST", "POST", "GET", "PUT"];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/x-www-form-urlencoded; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    None,
    Some("text/xml"),
];

const ACTIONS: &[&str] = &[
    "RunInstances",
    "StartInstances",
    "RequestSpotInstances",
    "RequestSpotFleet",
    "CreateFleet",
    "AllocateHosts",
    "ModifyInstanceAttribute",
    "CreateCapacityReservation",
    "CreateCapacityReservationFleet",
    "PurchaseReservedInstancesOffering",
    "PurchaseHostReservation",
    "PurchaseCapacityBlock",
    "AcceptReservedInstancesExchangeQuote",
    "DescribeCapacityBlockOfferings",
    "DescribeReservedInstancesOfferings",
    "GetHostReservationPurchasePreview",
    "DescribeHostReservationOfferings",
    "GetReservedInstancesExchangeQuote",
    "DescribeInstances",
    "TerminateInstances",
];

fn vendors() -> &'static Registry {
    static VENDORS: OnceLock<Registry> = OnceLock::new();
    VENDORS.get_or_init(|| {
        let mut config = leash::config::Config::default();
        for (ty, price) in [
            ("p5.48xlarge", "98.32"),
            ("t3.micro", "0.0104"),
            ("g5.xlarge", "1.006"),
        ] {
            config
                .vendors
                .aws
                .prices
                .insert(ty.into(), price.parse().unwrap());
        }
        Registry::from_config(&config)
    })
}

fuzz_target!(|data: &[u8]| {
    let (Some(&sel), Some(&split)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = data.get(2..).unwrap_or(&[]);
    let method = METHODS[usize::from(sel) % METHODS.len()];
    let content_type = CONTENT_TYPES[usize::from(sel >> 2) % CONTENT_TYPES.len()];
    let cut = usize::from(split).min(rest.len());
    let (query, body) = rest.split_at(cut);
    let (body, answer) = match body.iter().position(|b| *b == 0) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let mut full = Vec::new();
    if sel & 0x80 == 0 {
        let action = ACTIONS[usize::from(sel >> 4) % ACTIONS.len()];
        full.extend_from_slice(format!("Action={action}&Version=2016-11-15&").as_bytes());
    }
    full.extend_from_slice(body);
    let query = String::from_utf8_lossy(query);
    let query = (!query.is_empty()).then_some(&*query);

    let adapter = vendors()
        .for_host("ec2.us-east-1.amazonaws.com")
        .expect("AWS is a built-in adapter");
    let mut facts = Facts::default();
    facts.set_read_at(chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap());
    let base = RequestView {
        method,
        host: "ec2.us-east-1.amazonaws.com",
        path: "/",
        query,
        content_type,
        idempotency_key: None,
        account: Some("AKIAIOSFODNN7EXAMPLE"),
        headers: &[],
        body: &full,
        facts: &leash::intent::NO_FACTS,
    };
    fn view<'a>(base: &RequestView<'a>, facts: &'a Facts) -> RequestView<'a> {
        RequestView { facts, ..*base }
    }
    if let Some(answer) = answer {
        let learned = adapter.learn_from_answer(&base, Some("text/xml"), answer);
        for lookup in adapter.lookups(&view(&base, &facts)) {
            match learned.iter().find(|(p, _)| *p == lookup.path) {
                Some((path, json)) => {
                    facts.insert_learned(path.clone(), json.clone(), "POST /".into())
                }
                None => facts.insert(lookup.path, Err("not learned".into())),
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
            let money = d.amount.expect("an EC2 spend intent always has an amount");
            assert!(!money.amount.is_sign_negative(), "negative amount {money}");
            let _ = money.to_string();
        }
    }
    // The fingerprint leaves ClientToken out: adding one changes nothing.
    let fingerprint = adapter.fingerprint(&view);
    if !full
        .windows(11)
        .any(|w| w.eq_ignore_ascii_case(b"clienttoken"))
        && !query.is_some_and(|q| q.to_ascii_lowercase().contains("clienttoken"))
        && matches!(c.kind(), "spend" | "unknown" | "safe")
    {
        let mut with_token = full.clone();
        with_token.extend_from_slice(b"&ClientToken=fuzz-token");
        let again = RequestView {
            body: &with_token,
            ..view
        };
        if adapter.classify(&again).kind() == c.kind() {
            assert_eq!(
                adapter.fingerprint(&again),
                fingerprint,
                "ClientToken entered the fingerprint"
            );
        }
    }
});
