//! The life of a hold (issue 8 item 7): a re-call of a held request is its
//! retry, whatever idempotency key the SDK generated for it this time.

mod common;

use common::{Harness, TestCa, Upstream};
use serde_json::Value;
use sha2::{Digest, Sha256};

const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REJECT
rules:
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 50 }
    approvers: [maya]
"#;

const MAYA: &str = "maya-token-0123456789";

fn with_maya(config: &mut leash::config::Config) {
    config.approvers.people.insert(
        "maya".into(),
        leash::config::Person {
            token_sha256: Some(Sha256::digest(MAYA.as_bytes()).into()),
            slack: None,
        },
    );
}

/// What stripe-python sends for the same call made twice: the same body,
/// a new `Idempotency-Key` (a uuid4) each time.
async fn charge(client: &reqwest::Client, key: &str) -> reqwest::Response {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body("amount=6000&currency=eur&customer=cus_1")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_re_call_with_a_fresh_idempotency_key_is_the_same_hold() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, POLICY, with_maya).await;
    let client = leash.client();

    let first = charge(&client, "5f0c6e0e-0000-4000-8000-000000000001").await;
    assert_eq!(first.status(), 403);
    let hold_id = first.headers()["x-leash-hold-id"]
        .to_str()
        .unwrap()
        .to_string();

    // The agent calls again; its SDK made up a new key.
    let again = charge(&client, "5f0c6e0e-0000-4000-8000-000000000002").await;
    assert_eq!(again.status(), 403);
    assert_eq!(
        again.headers()["x-leash-hold-id"],
        hold_id.as_str(),
        "the same hold"
    );

    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let holds: Value = admin
        .get(format!("{base}/v1/holds"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(holds["holds"].as_array().unwrap().len(), 1, "{holds}");

    let audit = common::audit_entries(leash.running.admin_addr).await;
    let created = audit.iter().filter(|e| e["kind"] == "hold_created").count();
    assert_eq!(created, 1, "one hold, one notification");

    // Approved, not yet released: a third call, a third key, is the retry
    // that releases it, exactly once.
    let vote = admin
        .post(format!("{base}/v1/holds/{hold_id}/approve"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
    let released = charge(&client, "5f0c6e0e-0000-4000-8000-000000000003").await;
    assert_eq!(released.status(), 200);
    assert_eq!(upstream.seen().len(), 1);

    // The same key with another body is still a conflict.
    let conflict = client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", "5f0c6e0e-0000-4000-8000-000000000001")
        .body("amount=9000&currency=eur&customer=cus_1")
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(upstream.seen().len(), 1);
}

/// The same stack for every agent.
const EVERYONE: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REJECT
rules:
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 50 }
    approvers: [maya]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_over_its_hold_quota_is_refused_429_and_others_are_not() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, EVERYONE, |c| {
        with_maya(c);
        c.holds.max_open_per_agent = 2;
    })
    .await;
    let growth = leash.client();
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for minor in [6000, 6100] {
            let held = common::payment_intent(&growth, minor).await;
            assert_eq!(held.status(), 403);
            ids.push(
                held.headers()["x-leash-hold-id"]
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
        }
        ids
    };
    let over = common::payment_intent(&growth, 6200).await;
    assert_eq!(over.status(), 429);
    assert_eq!(over.headers()["stripe-should-retry"], "false");
    assert!(
        over.headers().contains_key("x-leash-audit-seq"),
        "the decision is on the chain"
    );
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "leash_too_many_holds");

    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let holds: Value = admin
        .get(format!("{base}/v1/holds"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        holds["holds"].as_array().unwrap().len(),
        2,
        "nothing stored for the third"
    );

    // Another agent has its own quota.
    let other = leash.client_as("payout-agent", "x");
    assert_eq!(common::payment_intent(&other, 7000).await.status(), 403);

    // Once a hold of the agent closes, it may be held again.
    let rejected = admin
        .post(format!("{base}/v1/holds/{}/reject", ids[0]))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 200);
    assert_eq!(common::payment_intent(&growth, 6300).await.status(), 403);
    assert!(upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_bytes_per_agent_are_bounded_too() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, EVERYONE, |c| {
        with_maya(c);
        c.holds.max_bytes_per_agent = 10 * 1024;
    })
    .await;
    let client = leash.client();
    let big = |minor: u64| {
        format!(
            "amount={minor}&currency=eur&customer=cus_1&description={}",
            "x".repeat(3000)
        )
    };
    let mut statuses = Vec::new();
    for minor in [6000u64, 6100, 6200, 6300] {
        let response = client
            .post("https://api.stripe.com/v1/payment_intents")
            .body(big(minor))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // Each sealed request is a little over 3 KiB: the first fits, and
    // before the fourth the agent is over 10 KiB.
    assert_eq!(statuses[0], 403, "{statuses:?}");
    assert_eq!(statuses[3], 429, "{statuses:?}");
    let first_refused = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(
        statuses[first_refused..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(upstream.seen().is_empty());
}

/// An address where nothing listens yet: connecting is refused, so nothing
/// of a request can reach it.
async fn vacant_address() -> std::net::SocketAddr {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    addr
}

const CAPPED: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REJECT
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 100
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 90 }
    approvers: [maya]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_send_that_never_left_leash_releases_its_cap_and_its_hold_stays_releasable() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor_addr = vacant_address().await;
    let leash = Harness::start_with_policy(vendor_addr, &ca, CAPPED, with_maya).await;
    let client = leash.client();

    // The vendor is down: a €80 charge fails to connect, so nothing was
    // sent and its €80 must not stay counted against the €100 cap.
    let failed = common::payment_intent(&client, 8000).await;
    assert_eq!(failed.status(), 502);

    // A €95 charge is held; approved while the vendor is still down, its
    // release sends nothing and the hold stays approved.
    let held = client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("idempotency-key", "idem-held-95")
        .body("amount=9500&currency=eur&customer=cus_1")
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 403);
    let hold_id = held.headers()["x-leash-hold-id"]
        .to_str()
        .unwrap()
        .to_string();
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let vote = admin
        .post(format!("{base}/v1/holds/{hold_id}/approve"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
    let retry = || {
        client
            .post("https://api.stripe.com/v1/payment_intents")
            .header("idempotency-key", "idem-held-95")
            .body("amount=9500&currency=eur&customer=cus_1")
            .send()
    };
    let unsent = retry().await.unwrap();
    assert_eq!(unsent.status(), 502, "nothing reached the vendor");
    let hold: Value = admin
        .get(format!("{base}/v1/holds/{hold_id}"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hold["hold"]["state"], "approved", "{hold}");

    // The vendor comes up: the retry is forwarded, exactly once. The €95
    // fits the €100 cap only because the unsent €80 was released.
    let vendor = Upstream::start_at(
        vendor_addr,
        Some(ca.server_config(&["api.stripe.com"])),
        200,
    )
    .await;
    let released = retry().await.unwrap();
    assert_eq!(released.status(), 200);
    assert_eq!(vendor.seen().len(), 1);
    let again = retry().await.unwrap();
    assert_eq!(again.status(), 409, "already forwarded, now that it was");
    assert_eq!(vendor.seen().len(), 1);

    // The chain says what happened.
    let audit = common::audit_entries(leash.running.admin_addr).await;
    let entries = &audit;
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "hold_resolved" && e["details"]["release_failed"] == true));
    assert!(entries.iter().any(|e| e["kind"] == "outcome"
        && e["details"]["not_sent"] == true
        && e["details"]["reservation"] == "released"));
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_are_rate_limited_per_agent() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let receiver = Upstream::start(None).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, EVERYONE, |c| {
        with_maya(c);
        c.notify.push(leash::config::NotifyTarget::Webhook {
            url: format!("http://{}/events", receiver.addr),
            secret_env: None,
        });
    })
    .await;
    let growth = leash.client();
    let limit = leash::desk::ANNOUNCE_PER_MINUTE as u64;
    for i in 0..limit + 3 {
        assert_eq!(
            common::payment_intent(&growth, 6000 + i).await.status(),
            403
        );
    }
    let other = leash.client_as("payout-agent", "x");
    assert_eq!(common::payment_intent(&other, 7000).await.status(), 403);

    let expected = usize::try_from(limit + 1).unwrap();
    for _ in 0..200 {
        if receiver.seen().len() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // A moment more: nothing beyond the limit may follow.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = receiver.seen();
    assert_eq!(
        events.len(),
        expected,
        "{limit} for growth-agent, 1 for payout-agent"
    );
    let from_other = events
        .iter()
        .filter(|e| String::from_utf8_lossy(&e.body).contains("payout-agent"))
        .count();
    assert_eq!(from_other, 1, "another agent is announced regardless");

    // Every hold was still opened and listed.
    let holds: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/v1/holds", leash.running.admin_addr))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(holds["holds"].as_array().unwrap().len(), expected + 3);
}
