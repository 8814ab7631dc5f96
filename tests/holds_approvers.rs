//! Who may approve what (issue 8, items 5 and 6), end to end: a real leash
//! on loopback holding real Stripe requests (CONNECT, TLS stand-in vendor
//! recording what it got), approvers voting through the admin API, and the
//! audit chain read back.
//!
//! The scenario is the issue's: a €500 REJECT threshold, a €1,500 daily cap,
//! `unreadable: REQUIRE_HUMAN`, and an approver directory with someone (alex)
//! named on no rule of the agent's stack.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::api::{AdminApi, Answered};
use common::{Harness, TestCa, Upstream};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// No `approvers:` at stack level: the stack-level holds go to the people
/// the stack's REQUIRE_HUMAN rules name (maya), never to everyone.
const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REQUIRE_HUMAN
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gt: 500 }
  - priority: 20
    type: DAILY_CAP
    action: REJECT
    limit: 1500
  - priority: 30
    type: CATEGORY_BLOCKLIST
    action: REQUIRE_HUMAN
    categories: [payout]
    approvers: [maya]
"#;

const MAYA: &str = "maya-token-0123456789";
const ALEX: &str = "alex-token-0123456789";
const MAYA_SLACK: &str = "U024BE7LH";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn sha(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// maya (named by rule 30) and alex (named nowhere in the stack).
fn approvers(config: &mut leash::config::Config) {
    let person = |token: &str, slack: Option<&str>| leash::config::Person {
        token_sha256: Some(sha(token)),
        slack: slack.map(str::to_string),
    };
    let people = &mut config.approvers.people;
    people.insert("maya".into(), person(MAYA, Some(MAYA_SLACK)));
    people.insert("alex".into(), person(ALEX, None));
}

async fn stripe() -> (TestCa, Upstream) {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    // The charge the amountless refunds draw on cannot be looked up, so
    // leash cannot read how much they move.
    upstream.answer(
        "/v1/charges/ch_1",
        404,
        r#"{"error":{"type":"invalid_request_error","code":"resource_missing"}}"#,
    );
    (ca, upstream)
}

/// What reached the vendor besides leash's own lookups (GETs).
fn forwarded(upstream: &Upstream) -> Vec<common::Seen> {
    upstream
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET")
        .collect()
}

/// A Stripe refund of a whole-or-part charge with no currency whose charge
/// cannot be looked up: leash cannot know how much money it moves (the
/// charge's currency decides).
async fn unreadable_refund(client: &reqwest::Client, key: &str) -> Answered {
    Answered::of(
        client
            .post("https://api.stripe.com/v1/refunds")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", key)
            .body("charge=ch_1&amount=400000")
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A readable €`euros` refund.
async fn refund(client: &reqwest::Client, euros: u64, key: &str) -> Answered {
    Answered::of(
        client
            .post("https://api.stripe.com/v1/refunds")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", key)
            .body(format!(
                "payment_intent=pi_1&amount={}&currency=eur",
                euros * 100
            ))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_refund_is_approved_only_by_the_stacks_approvers_with_a_checked_amount() {
    let (ca, upstream) = stripe().await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, POLICY, approvers).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    // Held (unreadable: REQUIRE_HUMAN), nothing forwarded.
    let held = unreadable_refund(&client, "k-4000").await;
    assert_eq!(held.code(), "leash_held", "{}", held.json);
    let id = held.hold_id();
    assert!(forwarded(&upstream).is_empty());

    // The hold shows what leash read, and that an amount must be stated.
    let hold = admin.hold(&id).await;
    assert_eq!(hold["intents"]["operation"], "refund.create", "{hold}");
    assert!(
        hold["intents"]["reason"]
            .as_str()
            .unwrap()
            .contains("currency"),
        "{hold}"
    );
    assert_eq!(hold["intents"]["path"], "/v1/refunds", "{hold}");
    assert_eq!(
        hold["intents"]["raw_fields"],
        json!([["amount", "400000"]]),
        "{hold}"
    );
    // Eligible: maya (named by rule 30), not alex (named nowhere).
    assert_eq!(hold["needs"][0]["eligible"], json!(["maya"]), "{hold}");

    // Item 5: an approver named on no rule of this agent cannot approve.
    let (status, body) = admin
        .approve(ALEX, &id, Some(json!({"amount": "100", "currency": "EUR"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_eligible")),
        "{body}"
    );

    // Item 6: approving without an amount is refused, and says what to send.
    let (status, body) = admin.approve(MAYA, &id, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("amount_required")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--amount"),
        "{body}"
    );
    // A JSON number is not an amount.
    let (status, _) = admin
        .approve(
            MAYA,
            &id,
            Some(json!({"amount": 4000.0, "currency": "EUR"})),
        )
        .await;
    assert_eq!(status, 400);

    // Approved as €4,000: at release the €500 REJECT rule sees it.
    let (status, body) = admin
        .approve(
            MAYA,
            &id,
            Some(json!({"amount": "4000", "currency": "EUR", "comment": "whole charge"})),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let retry = unreadable_refund(&client, "k-4000").await;
    assert_eq!(
        (retry.status, retry.code()),
        (403, "leash_rejected"),
        "{}",
        retry.json
    );
    assert!(
        forwarded(&upstream).is_empty(),
        "the vendor received nothing: {:?}",
        forwarded(&upstream)
    );
    assert_eq!(admin.hold(&id).await["state"], "rejected");
    let approval = admin.entry("approval", &id).await;
    assert_eq!(approval["approver"], "maya");
    assert_eq!(
        approval["details"]["stated_amount"], "4000.00",
        "{approval}"
    );
    assert_eq!(approval["details"]["stated_currency"], "EUR", "{approval}");
    let resolved = admin.entry("hold_resolved", &id).await;
    assert_eq!(resolved["decision"], "rejected");
    assert_eq!(
        resolved["details"]["amount_source"], "approver_stated",
        "{resolved}"
    );
    assert!(
        resolved["details"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("rule 10"),
        "{resolved}"
    );

    // Another unreadable refund, approved as €100: forwarded once, and the
    // €1,500 cap counts those €100.
    let other = unreadable_refund(&client, "k-100").await.hold_id();
    let (status, body) = admin
        .approve(
            MAYA,
            &other,
            Some(json!({"amount": "100.00", "currency": "EUR"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let released = unreadable_refund(&client, "k-100").await;
    assert_eq!(released.status, 200, "{}", released.json);
    let seen = forwarded(&upstream);
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], b"charge=ch_1&amount=400000");
    // The write-ahead entry, before the send, already says what was stated.
    let resolved = admin.entry("hold_resolved", &other).await;
    assert_eq!(resolved["decision"], "releasing");
    assert_eq!(resolved["details"]["stated_amount"], "100.00");

    // 100 + 500 + 500 = 1,100; another 500 makes 1,600 > 1,500. Without
    // the stated 100 in the ledger it would be 1,500 and pass.
    assert_eq!(refund(&client, 500, "k-r1").await.status, 200);
    assert_eq!(refund(&client, 500, "k-r2").await.status, 200);
    let capped = refund(&client, 500, "k-r3").await;
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
            .contains("rule 20"),
        "{}",
        capped.json
    );
    assert_eq!(forwarded(&upstream).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_default_hold_is_not_approvable_by_everyone() {
    // The default decides here (REQUIRE_HUMAN); only rule 30's maya may
    // release it, not alex who is merely in the directory.
    let policy = POLICY.replace("default: AUTO_APPROVE", "default: REQUIRE_HUMAN");
    let (ca, upstream) = stripe().await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, &policy, approvers).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = refund(&client, 50, "k-d").await.hold_id();
    let (status, body) = admin.approve(ALEX, &id, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_eligible")),
        "{body}"
    );
    // A readable hold takes no stated amount.
    let (status, body) = admin
        .approve(MAYA, &id, Some(json!({"amount": "1", "currency": "EUR"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("amount_not_expected")),
        "{body}"
    );
    let (status, _) = admin.approve(MAYA, &id, None).await;
    assert_eq!(status, 200);
    assert_eq!(refund(&client, 50, "k-d").await.status, 200);
    assert_eq!(forwarded(&upstream).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_nobody_could_approve_is_refused_not_held() {
    // No approver in leash.yaml at all (the built-in defaults): the loader
    // only warns, so that `leash run` starts, and such a request is refused
    // rather than held for nobody. Nothing is forwarded.
    let policy = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REQUIRE_HUMAN
rules: []
"#;
    let (ca, upstream) = stripe().await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, policy, |_| {}).await;
    let client = leash.client();
    let refused = unreadable_refund(&client, "k-n").await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "leash_rejected"),
        "{}",
        refused.json
    );
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no approver can release it"),
        "{}",
        refused.json
    );
    assert!(refused.headers.get("x-leash-hold-id").is_none());
    assert!(forwarded(&upstream).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_offers_reject_only_for_an_amountless_hold() {
    let (ca, upstream) = stripe().await;
    let slack = Upstream::start(None).await;
    let env = BTreeMap::from([("SLACK_SIGNING_SECRET".to_string(), SLACK_SECRET.to_string())]);
    let leash = Harness::start_with_env(upstream.addr, &ca, POLICY, env, |config| {
        approvers(config);
        config.notify.push(leash::config::NotifyTarget::Slack {
            url: format!("http://{}/services/T0/B0/x", slack.addr),
            signing_secret_env: Some("SLACK_SIGNING_SECRET".into()),
        });
    })
    .await;
    let client = leash.client();
    let id = unreadable_refund(&client, "k-s").await.hold_id();
    let mut posted = Vec::new();
    for _ in 0..100 {
        posted = slack.seen();
        if !posted.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(posted.len(), 1);
    let message: Value = serde_json::from_slice(&posted[0].body).unwrap();
    let actions: Vec<&Value> = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .collect();
    let ids: Vec<&str> = actions
        .iter()
        .map(|a| a["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["leash_reject"], "{message}");
    assert_eq!(actions[0]["value"], id.as_str());
    let text = message.to_string();
    assert!(
        text.contains(&format!(
            "leash holds approve {id} --amount <AMOUNT> --currency <CUR>"
        )),
        "{text}"
    );
    assert!(text.contains("refund.create"), "{text}");
    assert!(text.contains("amount = 400000"), "{text}");
}
