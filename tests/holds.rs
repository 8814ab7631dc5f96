//! Holds end to end (SPEC §6, §7, §9): a real leash on loopback holding real
//! requests to a local TLS "Stripe", approvers answering through the admin
//! API and signed Slack clicks, a local receiver standing in for the webhook
//! and Slack endpoints, restarts on the same sled files.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::api::{AdminApi, Answered};
use common::{Harness, TestCa, Upstream};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// €1,000/day cap (REJECT); €500 or more needs maya; €5,000 or more needs
/// two of the partners too.
const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 1000
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 500, lt: 5000 }
    approvers: [maya]
"#;

/// €100 or more needs two of the three partners.
const QUORUM: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 30
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 100 }
    approvers: [partners]
    quorum: 2
"#;

const MAYA: &str = "maya-token-0123456789";
const ALEX: &str = "alex-token-0123456789";
const SAM: &str = "sam-token-0123456789";
const LEE: &str = "lee-token-0123456789";
const MAYA_SLACK: &str = "U024BE7LH";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn sha(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// maya (with a Slack id), and the partners alex, sam and lee.
fn approvers(config: &mut leash::config::Config) {
    let person = |token: &str, slack: Option<&str>| leash::config::Person {
        token_sha256: Some(sha(token)),
        slack: slack.map(str::to_string),
    };
    let people = &mut config.approvers.people;
    people.insert("maya".into(), person(MAYA, Some(MAYA_SLACK)));
    people.insert("alex".into(), person(ALEX, None));
    people.insert("sam".into(), person(SAM, None));
    people.insert("lee".into(), person(LEE, None));
    config.approvers.groups.insert(
        "partners".into(),
        vec!["alex".into(), "sam".into(), "lee".into()],
    );
}

async fn start(
    upstream: &Upstream,
    ca: &TestCa,
    policy: &str,
    tweak: impl FnOnce(&mut leash::config::Config),
) -> Harness {
    Harness::start_with_policy(upstream.addr, ca, policy, |config| {
        approvers(config);
        tweak(config);
    })
    .await
}

async fn charge(client: &reqwest::Client, euros: u64, key: &str) -> reqwest::Response {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body(format!(
            "amount={}&currency=eur&customer=cus_1",
            euros * 100
        ))
        .send()
        .await
        .unwrap()
}

fn trail(items: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    items
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

/// The audit entries about `hold_id`, as (kind, decision, approver,
/// channel).
async fn hold_trail(admin: &AdminApi, hold_id: &str) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    admin
        .audit()
        .await
        .iter()
        .filter(|e| e["details"]["hold_id"] == hold_id && e["kind"] != "outcome")
        .map(|e| {
            (
                s(&e["kind"]),
                s(&e["decision"]),
                s(&e["approver"]),
                s(&e["details"]["channel"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn released_within_wait_goes_upstream_once_on_the_same_connection() {
    let (ca, upstream) = common::stripe_upstream().await;
    let receiver = Upstream::start(None).await;
    let env = BTreeMap::from([("HOOK_SECRET".to_string(), WEBHOOK_SECRET.to_string())]);
    let leash = Harness::start_with_env(upstream.addr, &ca, POLICY, env, |config| {
        approvers(config);
        config.holds.wait = Duration::from_secs(30);
        config.notify.push(leash::config::NotifyTarget::Webhook {
            url: format!("http://{}/leash-events", receiver.addr),
            secret_env: Some("HOOK_SECRET".into()),
        });
    })
    .await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let waiting =
        tokio::spawn(async move { Answered::of(charge(&client, 600, "k-wait").await).await });
    let id = admin.first_pending().await;
    assert!(upstream.seen().is_empty(), "nothing leaves before approval");

    let (status, body) = admin
        .vote(MAYA, &id, "approve", Some("known supplier"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(body["approver"], "maya");

    let answered = waiting.await.unwrap();
    assert_eq!(answered.status, 200, "{}", answered.json);
    assert_eq!(
        answered.json["id"], "ch_3MmlLrLkdIwHu7ix0snN0B15",
        "the vendor's own answer"
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["idempotency-key"], "k-wait");
    assert_eq!(
        &seen[0].body[..],
        b"amount=60000&currency=eur&customer=cus_1"
    );

    let (_, hold) = admin.get(MAYA, &format!("/v1/holds/{id}")).await;
    assert_eq!(hold["hold"]["state"], "released");
    assert_eq!(hold["hold"]["approvals"][0]["comment"], "known supplier");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hold_trail(&admin, &id).await,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("approval", "approve", "maya", "api"),
            ("hold_resolved", "releasing", "maya", "api"),
            ("hold_resolved", "released", "maya", "api"),
        ])
    );
    let entries = admin.audit().await;
    let outcome = entries
        .iter()
        .find(|e| e["kind"] == "outcome" && e["details"]["hold_id"] == id.as_str())
        .expect("an outcome entry for the released request");
    assert_eq!(outcome["upstream_status"], 200);
    // The release names what it reserved, before the request left (a
    // restart keeps a reservation a durable entry names).
    let releasing = entries
        .iter()
        .find(|e| {
            e["kind"] == "hold_resolved"
                && e["decision"] == "releasing"
                && e["details"]["hold_id"] == id.as_str()
        })
        .expect("the releasing entry");
    let named = releasing["details"]["reservation"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{releasing}");
    assert!(named[0].is_u64(), "{releasing}");

    // The webhook: one signed event, with the hold, callbacks and checkpoint.
    let events = receiver.seen();
    assert_eq!(events.len(), 1, "one notification per hold");
    let event = &events[0];
    let secret = leash::notify::webhook::WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let headers = leash::notify::webhook::WebhookHeaders::from_http(&event.headers).unwrap();
    leash::notify::webhook::verify(
        &secret,
        &headers,
        &event.body,
        chrono::Utc::now().timestamp(),
        300,
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&event.body).unwrap();
    assert_eq!(body["type"], "hold.created");
    assert_eq!(body["hold_id"], id.as_str());
    assert_eq!(body["agent"], "growth-agent");
    assert_eq!(body["intents"][0]["amount"]["amount"], "600.00");
    assert_eq!(body["rules"][0]["priority"], 20);
    assert!(body["approvers_needed"].as_str().unwrap().contains("maya"));
    assert!(body["callbacks"]["approve"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/holds/{id}/approve")));
    assert!(body.get("checkpoint").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn held_past_wait_then_approved_retry_is_forwarded_exactly_once() {
    let (ca, upstream) = common::stripe_upstream().await;
    let receiver = Upstream::start(None).await;
    let leash = start(&upstream, &ca, POLICY, |config| {
        config.notify.push(leash::config::NotifyTarget::Webhook {
            url: format!("http://{}/events", receiver.addr),
            secret_env: None,
        });
    })
    .await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let held = Answered::of(charge(&client, 600, "k-1").await).await;
    assert_eq!(held.status, 403);
    assert_eq!(held.code(), "leash_held");
    assert_eq!(held.headers["x-leash-decision"], "held");
    assert_eq!(held.headers["x-leash-rule"], "20");
    assert!(held.headers.contains_key("retry-after"));
    let id = held.hold_id();
    let message = held.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("maya") && message.contains(&id),
        "{message}"
    );

    // A retry while pending: the same hold, no second hold or notification.
    let again = Answered::of(charge(&client, 600, "k-1").await).await;
    assert_eq!((again.status, again.code()), (403, "leash_held"));
    assert_eq!(again.hold_id(), id);
    assert_eq!(admin.holds("pending").await.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.seen().len(), 1, "one notification for the hold");

    let (status, body) = admin.vote(MAYA, &id, "approve", None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("approved")));
    assert!(upstream.seen().is_empty(), "approval alone sends nothing");

    let released = Answered::of(charge(&client, 600, "k-1").await).await;
    assert_eq!(released.status, 200, "{}", released.json);
    assert_eq!(upstream.seen().len(), 1);

    let twice = Answered::of(charge(&client, 600, "k-1").await).await;
    assert_eq!(twice.status, 409, "{}", twice.json);
    assert_eq!(twice.code(), "leash_already_forwarded");
    assert_eq!(upstream.seen().len(), 1, "never forwarded twice");

    // The same key with a different body is not the approved request.
    let other = Answered::of(charge(&client, 900, "k-1").await).await;
    assert_eq!(other.status, 409);
    assert_eq!(other.code(), "leash_idempotency_conflict");
    // So is the same call made for another connected account.
    let connected = client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", "k-1")
        .header("stripe-account", "acct_1OtherAccount")
        .body("amount=60000&currency=eur&customer=cus_1")
        .send()
        .await
        .unwrap();
    let connected = Answered::of(connected).await;
    assert_eq!(connected.code(), "leash_idempotency_conflict");
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn quorum_two_of_three_needs_two_different_approvers() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, QUORUM, |_| {}).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = Answered::of(charge(&client, 150, "k-q").await)
        .await
        .hold_id();
    let (status, body) = admin.vote(ALEX, &id, "approve", None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("pending")));
    let needed = body["still_needed"][0].as_str().unwrap();
    assert!(needed.starts_with("1 more of [lee, sam]"), "{needed}");

    // alex again counts once; maya is not a partner.
    let (status, body) = admin.vote(ALEX, &id, "approve", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_voted"))
    );
    let (status, body) = admin.vote(MAYA, &id, "approve", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_eligible"))
    );
    let (status, _) = admin.vote("not-a-token", &id, "approve", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        Answered::of(charge(&client, 150, "k-q").await).await.code(),
        "leash_held"
    );
    assert!(upstream.seen().is_empty());

    let (status, body) = admin.vote(SAM, &id, "approve", None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("approved")));
    let released = Answered::of(charge(&client, 150, "k-q").await).await;
    assert_eq!(released.status, 200);
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(
        hold_trail(&admin, &id).await,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("approval", "approve", "alex", "api"),
            ("approval", "approve", "sam", "api"),
            ("hold_resolved", "releasing", "sam", "api"),
            ("hold_resolved", "released", "sam", "api"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_rejection_rejects_whatever_else_was_approved() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, QUORUM, |_| {}).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = Answered::of(charge(&client, 150, "k-r").await)
        .await
        .hold_id();
    assert_eq!(admin.vote(ALEX, &id, "approve", None).await.0, 200);
    let (status, body) = admin.vote(LEE, &id, "reject", Some("not in budget")).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("rejected")));
    let (status, body) = admin.vote(SAM, &id, "approve", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_pending"))
    );

    let retry = Answered::of(charge(&client, 150, "k-r").await).await;
    assert_eq!(retry.status, 403);
    assert_eq!(retry.code(), "leash_rejected");
    let message = retry.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("lee") && message.contains("not in budget"),
        "{message}"
    );
    assert!(upstream.seen().is_empty());
    assert_eq!(
        hold_trail(&admin, &id).await,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("approval", "approve", "alex", "api"),
            ("approval", "reject", "lee", "api"),
            ("hold_resolved", "rejected", "lee", "api"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_hold_refuses_a_late_approval() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, POLICY, |config| {
        config.holds.ttl = Duration::from_secs(1);
    })
    .await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = Answered::of(charge(&client, 600, "k-e").await)
        .await
        .hold_id();
    let mut state = String::new();
    for _ in 0..100 {
        let (_, body) = admin.get(MAYA, &format!("/v1/holds/{id}")).await;
        state = body["hold"]["state"].as_str().unwrap().to_string();
        if state == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "expired");
    let (status, body) = admin.vote(MAYA, &id, "approve", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("hold_expired")),
        "{body}"
    );

    let retry = Answered::of(charge(&client, 600, "k-e").await).await;
    assert_eq!((retry.status, retry.code()), (403, "leash_rejected"));
    assert!(retry.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert!(upstream.seen().is_empty());
    let trail_now = hold_trail(&admin, &id).await;
    assert_eq!(
        trail_now,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("hold_resolved", "expired", "", ""),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_between_hold_and_approval_still_releases_once() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, POLICY, |_| {}).await;
    let client = leash.client();
    let id = Answered::of(charge(&client, 600, "k-restart").await)
        .await
        .hold_id();
    // A leash stops when its connections are gone (sled's lock goes with
    // the last of them).
    drop(client);

    let leash = leash.restart().await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let pending = admin.holds("pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], id.as_str());
    assert_eq!(admin.vote(MAYA, &id, "approve", None).await.0, 200);
    drop(admin);

    let leash = leash.restart().await;
    let client_after = leash.client();
    assert_eq!(
        Answered::of(charge(&client_after, 600, "k-restart").await)
            .await
            .status,
        200
    );
    assert_eq!(
        Answered::of(charge(&client_after, 600, "k-restart").await)
            .await
            .code(),
        "leash_already_forwarded"
    );
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cap_filled_while_waiting_turns_the_release_into_a_rejection() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, POLICY, |_| {}).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = Answered::of(charge(&client, 600, "k-cap").await)
        .await
        .hold_id();
    // While it waits, €900 is spent (each under the approval threshold).
    assert_eq!(charge(&client, 450, "k-a").await.status(), 200);
    assert_eq!(charge(&client, 450, "k-b").await.status(), 200);
    assert_eq!(admin.vote(MAYA, &id, "approve", None).await.0, 200);

    let retry = Answered::of(charge(&client, 600, "k-cap").await).await;
    assert_eq!(retry.status, 403, "{}", retry.json);
    assert_eq!(retry.code(), "leash_rejected");
    assert_eq!(retry.headers["x-leash-rule"], "10");
    assert_eq!(upstream.seen().len(), 2, "only the two small charges");
    let (_, hold) = admin.get(MAYA, &format!("/v1/holds/{id}")).await;
    assert_eq!(hold["hold"]["state"], "rejected");
    assert!(hold["hold"]["resolution"]
        .as_str()
        .unwrap()
        .contains("rule 10"));
    // Nothing was reserved for it: €100 still fits under the cap.
    assert_eq!(charge(&client, 100, "k-c").await.status(), 200);
}

/// Slack's `v0=` signature over `v0:ts:body`.
fn slack_sign(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn slack_click(user: &str, action_id: &str, hold_id: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user },
        "response_url": response_url,
        "actions": [{ "type": "button", "action_id": action_id, "value": hold_id }],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_slack_click_from_a_mapped_approver_releases_and_updates_the_message() {
    let (ca, upstream) = common::stripe_upstream().await;
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
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();

    let id = Answered::of(charge(&client, 600, "k-slack").await)
        .await
        .hold_id();
    // The Block Kit message, its buttons bound to the hold.
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
    let text = message.to_string();
    assert!(
        text.contains("600.00 EUR") && text.contains("growth-agent"),
        "{text}"
    );
    let buttons: Vec<&Value> = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .collect();
    assert_eq!(buttons.len(), 2);
    assert!(buttons.iter().all(|b| b["value"] == id.as_str()));

    let url = format!("http://{}/slack/actions", leash.running.admin_addr);
    let response_url = format!("http://{}/response", slack.addr);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |body: String, ts: i64, signature: String| {
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let body = slack_click(MAYA_SLACK, "leash_approve", &id, &response_url);

    // Tampered, stale, and unmapped clicks are refused and count nothing.
    let tampered = body.replace("leash_approve", "leash_reject");
    let r = post(tampered, now, slack_sign(SLACK_SECRET, now, &body))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let stale = now - 6 * 60;
    let r = post(body.clone(), stale, slack_sign(SLACK_SECRET, stale, &body))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(body.clone(), now, slack_sign("wrong-secret", now, &body))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let stranger = slack_click("W012A3CDE", "leash_approve", &id, &response_url);
    let r = post(
        stranger.clone(),
        now,
        slack_sign(SLACK_SECRET, now, &stranger),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
    assert_eq!(admin.holds("pending").await.len(), 1);
    // The stranger is told, privately, why nothing happened.
    let mut told = None;
    for _ in 0..100 {
        told = slack
            .seen()
            .into_iter()
            .find(|s| s.path_and_query == "/response");
        if told.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let told: Value = serde_json::from_slice(&told.expect("an ephemeral reply").body).unwrap();
    assert_eq!(told["response_type"], "ephemeral");
    assert_eq!(told["replace_original"], false);
    assert!(told["text"]
        .as_str()
        .unwrap()
        .contains("not a leash approver"));

    let r = post(body.clone(), now, slack_sign(SLACK_SECRET, now, &body))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "approved");
    assert_eq!(answer["approver"], "maya");

    // The message is replaced with the outcome, without buttons.
    let mut replaced = None;
    for _ in 0..100 {
        replaced = slack
            .seen()
            .into_iter()
            .filter(|s| s.path_and_query == "/response")
            .nth(1);
        if replaced.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replaced: Value = serde_json::from_slice(&replaced.expect("message update").body).unwrap();
    assert_eq!(replaced["replace_original"], true);
    assert!(replaced.to_string().contains("approved"));
    assert!(!replaced.to_string().contains("leash_approve"));

    assert_eq!(charge(&client, 600, "k-slack").await.status(), 200);
    assert_eq!(upstream.seen().len(), 1);

    assert_eq!(
        hold_trail(&admin, &id).await,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("approval", "approve", "maya", "slack"),
            ("hold_resolved", "releasing", "maya", "slack"),
            ("hold_resolved", "released", "maya", "slack"),
        ])
    );
}

/// `leash holds …` as an approver runs it.
async fn leash_holds(leash: &Harness, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let admin = format!("http://{}", leash.running.admin_addr);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_leash"));
    command
        .arg("holds")
        .args(args)
        .args(["--admin", &admin])
        .current_dir(leash.dir.path())
        .env_remove("LEASH_APPROVER_TOKEN");
    if let Some(token) = token {
        command.env("LEASH_APPROVER_TOKEN", token);
    }
    let output = command.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_holds_cli_lists_approves_and_reports_refusals() {
    let (ca, upstream) = common::stripe_upstream().await;
    let leash = start(&upstream, &ca, POLICY, |_| {}).await;
    let admin = AdminApi::at(leash.running.admin_addr, MAYA);
    let client = leash.client();
    let id = Answered::of(charge(&client, 600, "k-cli").await)
        .await
        .hold_id();

    let (ok, out) = leash_holds(&leash, None, &["list"]).await;
    assert!(!ok && out.contains("LEASH_APPROVER_TOKEN"), "{out}");
    let (ok, out) = leash_holds(&leash, Some("wrong"), &["list"]).await;
    assert!(!ok && out.contains("401"), "{out}");

    let (ok, out) = leash_holds(&leash, Some(MAYA), &["list"]).await;
    assert!(ok, "{out}");
    assert!(out.contains(&id), "{out}");
    assert!(out.contains("600.00 EUR"), "{out}");
    assert!(out.contains("needs 1 more of [maya] for rule 20"), "{out}");

    let (ok, out) = leash_holds(&leash, Some(ALEX), &["approve", &id]).await;
    assert!(
        !ok && out.contains("403"),
        "alex is not an approver of rule 20: {out}"
    );
    let (ok, out) = leash_holds(
        &leash,
        Some(MAYA),
        &["approve", &id, "--comment", "invoice 42"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("approve by maya counted; the hold is approved"),
        "{out}"
    );
    let (ok, out) = leash_holds(&leash, Some(MAYA), &["reject", &id]).await;
    assert!(!ok && out.contains("409"), "{out}");

    let (ok, out) = leash_holds(&leash, Some(MAYA), &["show", &id]).await;
    assert!(
        ok && out.contains("maya approve via cli") && out.contains("invoice 42"),
        "{out}"
    );
    assert_eq!(charge(&client, 600, "k-cli").await.status(), 200);
    let (ok, out) = leash_holds(&leash, Some(MAYA), &["list", "--state", "released"]).await;
    assert!(ok && out.contains(&id) && out.contains("released"), "{out}");
    assert_eq!(
        hold_trail(&admin, &id).await,
        trail(&[
            ("hold_created", "REQUIRE_HUMAN", "", ""),
            ("approval", "approve", "maya", "cli"),
            ("hold_resolved", "releasing", "maya", "cli"),
            ("hold_resolved", "released", "maya", "cli"),
        ])
    );
}
