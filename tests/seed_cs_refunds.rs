//! Seed scenario 03 end to end (issue 9): the `cs-agent` stack with its own
//! `config/leash.yaml`, refunds sent the way stripe-python sends
//! `stripe.Refund.create(charge=..., amount=...)` — with no currency, which
//! Stripe refuses on a charge refund. leash looks the charge up (with the
//! agent's own key) and decides on its currency: auto-approved up to €100,
//! held for a supervisor up to €500, rejected from €500, capped at €1,500 a
//! day; a refund whose lookup fails is held, never forwarded undecided.

mod common;

use common::{TestCa, Upstream};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CHEN: &str = "chen-token-0123456789";
const KEY: &str = "Bearer sk_test_cs_agent_key";

fn seed() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples/cs-agent")
}

struct Answered {
    status: u16,
    retry: Option<String>,
    json: Value,
}

impl Answered {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// `stripe.Refund.create(charge=charge, amount=minor)` as stripe-python
/// sends it.
async fn refund(client: &reqwest::Client, key: &str, body: &str) -> Answered {
    let response = client
        .post("https://api.stripe.com/v1/refunds")
        .header("authorization", KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .header("stripe-version", "2024-06-20")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("stripe-should-retry")
        .map(|v| v.to_str().unwrap().to_string());
    let json = response.json().await.unwrap_or(Value::Null);
    Answered {
        status,
        retry,
        json,
    }
}

fn charge(amount: u64, refunded: u64, currency: &str) -> String {
    format!(
        r#"{{"id":"ch","object":"charge","amount":{amount},"amount_refunded":{refunded},"currency":"{currency}"}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_without_a_currency_are_decided_on_the_looked_up_charge() {
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    stripe.answer("/v1/charges/ch_1", 200, &charge(20000, 0, "eur"));
    stripe.answer("/v1/charges/ch_big", 200, &charge(100000, 0, "eur"));
    stripe.answer("/v1/charges/ch_many", 200, &charge(500000, 0, "eur"));
    stripe.answer(
        "/v1/charges/ch_gone",
        404,
        r#"{"error":{"type":"invalid_request_error","code":"resource_missing"}}"#,
    );
    let seed_config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    let leash = common::Harness::start(stripe.addr, &ca, |config| {
        config.policies = seed();
        config.default_agent = Some("cs-agent".into());
        config.approvers.people = seed_config.approvers.people.clone();
        config.approvers.groups = seed_config.approvers.groups.clone();
        config.fx = seed_config.fx.clone();
        if let Some(chen) = config.approvers.people.get_mut("chen") {
            chen.token_sha256 = Some(Sha256::digest(CHEN.as_bytes()).into());
        }
    })
    .await;
    let client = leash.client();
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let posts = || {
        stripe
            .seen()
            .into_iter()
            .filter(|s| s.method == "POST")
            .count()
    };

    // €50: the charge is in EUR, so rule 40 approves it.
    let ok = refund(&client, "k-1", "charge=ch_1&amount=5000").await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let seen = stripe.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/v1/charges/ch_1");
    assert_eq!(seen[0].headers["authorization"], KEY, "the agent's own key");
    assert_eq!(
        (seen[1].method.as_str(), &seen[1].body[..]),
        ("POST", &b"charge=ch_1&amount=5000"[..])
    );

    // €600: refused by rule 20, in Stripe's shape, no retry.
    let no = refund(&client, "k-2", "charge=ch_big&amount=60000").await;
    assert_eq!(
        (no.status, no.code()),
        (403, "leash_rejected"),
        "{}",
        no.json
    );
    assert_eq!(no.retry.as_deref(), Some("false"));
    assert_eq!(no.json["error"]["type"], "invalid_request_error");
    // A full refund of the €1,000 charge is €1,000: refused too.
    let full = refund(&client, "k-3", "charge=ch_big").await;
    assert_eq!(
        (full.status, full.code()),
        (403, "leash_rejected"),
        "{}",
        full.json
    );

    // €250 waits for a supervisor; chen approves; the retry is released.
    let held = refund(&client, "k-4", "charge=ch_1&amount=25000").await;
    assert_eq!(
        (held.status, held.code()),
        (403, "leash_held"),
        "{}",
        held.json
    );
    let holds: Value = admin
        .get(format!("{base}/v1/holds"))
        .bearer_auth(CHEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = holds["holds"][0]["id"].as_str().unwrap().to_string();
    let vote = admin
        .post(format!("{base}/v1/holds/{id}/approve"))
        .bearer_auth(CHEN)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
    let released = refund(&client, "k-4", "charge=ch_1&amount=25000").await;
    assert_eq!(released.status, 200, "{}", released.json);
    assert_eq!(posts(), 2);

    // The €1,500 daily cap counts looked-up refunds: 50 + 250 + 12 × 100
    // = 1,500; one more €100 is refused by rule 10.
    for i in 0..12 {
        let ok = refund(
            &client,
            &format!("k-cap-{i}"),
            "charge=ch_many&amount=10000",
        )
        .await;
        assert_eq!(ok.status, 200, "refund {i}: {}", ok.json);
    }
    let capped = refund(&client, "k-cap-over", "charge=ch_many&amount=10000").await;
    assert_eq!(
        (capped.status, capped.code()),
        (403, "leash_rejected"),
        "{}",
        capped.json
    );
    assert!(
        capped.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10"),
        "{}",
        capped.json
    );
    assert_eq!(posts(), 14);

    // The lookup fails: unreadable, held for a supervisor, not forwarded.
    let unknown = refund(&client, "k-gone", "charge=ch_gone&amount=1000").await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (403, "leash_held"),
        "{}",
        unknown.json
    );
    assert_eq!(posts(), 14);

    // The chain says where the currency came from.
    let audit = common::audit_entries(leash.running.admin_addr).await;
    let first = audit.iter().find(|e| e["kind"] == "decision").unwrap();
    assert_eq!(first["intent"][0]["amount"]["currency"], "EUR", "{first}");
    assert_eq!(
        first["intent"][0]["sources"]["currency"], "eur (GET /v1/charges/ch_1)",
        "{first}"
    );
    let gone = audit
        .iter()
        .rev()
        .find(|e| e["kind"] == "decision")
        .unwrap();
    assert!(gone.to_string().contains("404"), "{gone}");

    // Lookups are counted, and repeated ones come from the cache.
    let metrics = admin
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"leash_lookups_total{vendor="stripe",outcome="ok"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"leash_lookups_total{vendor="stripe",outcome="cached"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"leash_lookups_total{vendor="stripe",outcome="failed"} 1"#),
        "{metrics}"
    );
    let gets = stripe
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET")
        .count();
    // 19 refunds: the second refusal of ch_big and the held k-4's retry
    // reuse their lookups; every forwarded refund makes its charge stale
    // (its refundable amount changed), so the next refund of it looks again.
    assert_eq!(gets, 17, "lookups: {gets} GETs for 19 refunds");
}
