//! Policies deciding real requests through the proxy: approve, reject, hold,
//! caps reserved atomically and settled/released by the vendor's answer.

mod common;

use std::time::Duration;

use common::pg::TestLedger;
use common::{payment_intent, stripe_upstream, with_maya, Harness, TestCa, Upstream};

/// €100/day cap (REJECT), charges of €50 or more held for maya, everything
/// else approved.
const CAPPED: &str = r#"
agent: growth-agent
currency: EUR
timezone: Europe/Paris
default: AUTO_APPROVE
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 100
    description: Cap at €100 / day
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 50 }
    approvers: [maya]
"#;

// The same body on the embedded and on the shared ledger (issue 15).
on_both_ledgers!(approved_is_forwarded_rejected_and_held_are_not);
async fn approved_is_forwarded_rejected_and_held_are_not(ledger: TestLedger) {
    let (ca, upstream) = stripe_upstream().await;
    let leash = Harness::start_on_ledger(&ledger, upstream.addr, &ca, CAPPED, with_maya).await;
    let client = leash.client();

    // €20: approved by default, forwarded.
    let response = payment_intent(&client, 2000).await;
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.seen().len(), 1);

    // €60: held for maya.
    let response = payment_intent(&client, 6000).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-leash-decision"], "held");
    assert_eq!(response.headers()["x-leash-rule"], "20");
    assert_eq!(response.headers()["stripe-should-retry"], "false");
    assert!(response.headers().contains_key("retry-after"));
    let hold_id = response.headers()["x-leash-hold-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(hold_id.starts_with("hold_"));
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "leash_held");
    assert_eq!(json["error"]["type"], "invalid_request_error");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("maya") && message.contains(&hold_id),
        "{message}"
    );
    assert_eq!(upstream.seen().len(), 1, "held: nothing forwarded");

    // €40 + €20 already spent + €45 → over €100: rejected, Stripe-shaped.
    let response = payment_intent(&client, 4000).await;
    assert_eq!(response.status(), 200, "60 of 100 spent so far");
    let response = payment_intent(&client, 4500).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-leash-decision"], "rejected");
    assert_eq!(response.headers()["x-leash-rule"], "10");
    assert_eq!(response.headers()["stripe-should-retry"], "false");
    let json: serde_json::Value = response.json().await.unwrap();
    // Stripe SDKs raise PermissionError for 403 with this shape.
    assert_eq!(json["error"]["type"], "invalid_request_error");
    assert_eq!(json["error"]["code"], "leash_rejected");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("60.00 + 45.00 > 100.00 EUR"), "{message}");
    assert_eq!(upstream.seen().len(), 2, "rejected: nothing forwarded");
}

// The same body on the embedded and on the shared ledger (issue 15).
on_both_ledgers!(a_4xx_from_the_vendor_releases_the_reservation_and_a_2xx_settles_it);
async fn a_4xx_from_the_vendor_releases_the_reservation_and_a_2xx_settles_it(ledger: TestLedger) {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let declining =
        Upstream::start_with_status(Some(ca.server_config(&["api.stripe.com"])), 402).await;
    let leash = Harness::start_on_ledger(&ledger, declining.addr, &ca, CAPPED, with_maya).await;
    let client = leash.client();

    // Each €40 is declined by the vendor (402), so it is released: three of
    // them fit under €100 only because none of them counts.
    for _ in 0..3 {
        assert_eq!(payment_intent(&client, 4000).await.status(), 402);
    }
    assert_eq!(declining.seen().len(), 3);

    // Against an accepting vendor, the same amounts settle and count.
    let accepting = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_on_ledger(&ledger, accepting.addr, &ca, CAPPED, with_maya).await;
    let client = leash.client();
    assert_eq!(payment_intent(&client, 4000).await.status(), 200);
    assert_eq!(payment_intent(&client, 4000).await.status(), 200);
    assert_eq!(
        payment_intent(&client, 4000).await.status(),
        403,
        "120 > 100"
    );
    assert_eq!(accepting.seen().len(), 2);
}

// The same body on the embedded and on the shared ledger (issue 15).
on_both_ledgers!(concurrent_requests_never_pass_a_cap_together);
async fn concurrent_requests_never_pass_a_cap_together(ledger: TestLedger) {
    let (ca, upstream) = stripe_upstream().await;
    let policy = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 1000
"#;
    let leash = Harness::start_on_ledger(&ledger, upstream.addr, &ca, policy, |_| {}).await;
    let client = leash
        .client_builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();

    // 256 requests of €10 at once against €1,000: exactly 100 may pass.
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            payment_intent(&client, 1000).await.status()
        }));
    }
    let mut passed = 0;
    let mut rejected = 0;
    for task in tasks {
        match task.await.unwrap().as_u16() {
            200 => passed += 1,
            403 => rejected += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(passed, 100);
    assert_eq!(rejected, 156);
    let seen = upstream.seen();
    assert_eq!(
        seen.len(),
        100,
        "the upstream received exactly the approved ones"
    );
    let forwarded_minor: u64 = seen.len() as u64 * 1000;
    assert!(forwarded_minor <= 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_mode_decides_but_forwards() {
    let (ca, upstream) = stripe_upstream().await;
    let policy = r#"
agent: growth-agent
currency: EUR
mode: shadow
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gte: 0 }
"#;
    let leash = Harness::start_with_policy(upstream.addr, &ca, policy, |_| {}).await;
    let response = payment_intent(&leash.client(), 999_999).await;
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_unreadable_requests_are_held_by_default_and_safe_ones_pass() {
    let (ca, upstream) = stripe_upstream().await;
    upstream.answer(
        "/v1/charges/ch_missing",
        404,
        r#"{"error":{"code":"resource_missing"}}"#,
    );
    // Held for someone: a hold nobody could release is refused instead.
    let policy = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
approvers: [maya]
rules: []
"#;
    let leash = Harness::start_with_policy(upstream.addr, &ca, policy, with_maya).await;
    let client = leash.client();

    let unknown = client
        .post("https://api.stripe.com/v1/some_new_money_api")
        .body("amount=100")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 403);
    assert_eq!(unknown.headers()["x-leash-decision"], "held");

    // A refund without an amount is a full refund leash cannot size when
    // the charge cannot be looked up.
    let unreadable = client
        .post("https://api.stripe.com/v1/refunds")
        .body("charge=ch_missing")
        .send()
        .await
        .unwrap();
    assert_eq!(unreadable.status(), 403);
    assert_eq!(unreadable.headers()["x-leash-decision"], "held");

    let safe = client
        .post("https://api.stripe.com/v1/customers")
        .body("email=a@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(safe.status(), 200);
    let read = client
        .get("https://api.stripe.com/v1/charges/ch_1")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let forwarded: Vec<String> = upstream
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path_and_query))
        .collect();
    assert_eq!(
        forwarded,
        [
            "GET /v1/charges/ch_missing",
            "POST /v1/customers",
            "GET /v1/charges/ch_1"
        ],
        "only the safe ones were forwarded, besides leash's own lookup"
    );
}

// The same body on the embedded and on the shared ledger (issue 15).
on_both_ledgers!(spend_counters_survive_a_restart);
async fn spend_counters_survive_a_restart(ledger: TestLedger) {
    let (ca, upstream) = stripe_upstream().await;
    let leash = Harness::start_on_ledger(&ledger, upstream.addr, &ca, CAPPED, with_maya).await;
    {
        let client = leash.client();
        assert_eq!(payment_intent(&client, 4000).await.status(), 200);
        assert_eq!(payment_intent(&client, 4000).await.status(), 200);
    }
    let leash = leash.restart().await;
    let client = leash.client();
    assert_eq!(
        payment_intent(&client, 4000).await.status(),
        403,
        "80 spent before the restart"
    );
    assert_eq!(
        payment_intent(&client, 2000).await.status(),
        200,
        "80 + 20 = 100 is not over"
    );
    assert_eq!(upstream.seen().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_reload_when_a_file_changes_and_a_broken_file_is_refused() {
    let (ca, upstream) = stripe_upstream().await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, CAPPED, with_maya).await;
    let client = leash.client();
    assert_eq!(payment_intent(&client, 2000).await.status(), 200);

    // A valid change: everything rejected now.
    leash.write_policy(
        r#"
agent: growth-agent
currency: EUR
rules:
  - { priority: 1, type: AMOUNT_THRESHOLD, action: REJECT, amount: { gte: 0 } }
"#,
    );
    let mut status = 200;
    for _ in 0..100 {
        status = payment_intent(&client, 100).await.status().as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 403, "the new policy took effect");

    // A broken file: refused, the rejecting policy stays in force.
    let forwarded = upstream.seen().len();
    leash.write_policy("agent: growth-agent\nrules: [ { priority: oops } ]\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(payment_intent(&client, 100).await.status(), 403);
    assert_eq!(upstream.seen().len(), forwarded, "nothing more forwarded");
}
