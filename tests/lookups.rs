//! What leash keeps between requests about a vendor's objects (SPEC §4.2a):
//! looked-up objects go stale when a write about them is forwarded, and a
//! vendor with short-lived signatures has a held request released with
//! the agent's freshly signed retry.

mod common;

use std::time::Duration;

use common::{Harness, TestCa, Upstream};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MAYA: &str = "maya-token-0123456789";

fn charge(amount: u64, refunded: u64) -> String {
    format!(
        r#"{{"id":"ch_1","object":"charge","amount":{amount},"amount_refunded":{refunded},"currency":"eur"}}"#
    )
}

async fn post_form(client: &reqwest::Client, url: &str, key: &str, body: &str) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_write_makes_what_was_looked_up_for_it_stale() {
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    stripe.answer("/v1/charges/ch_1", 200, &charge(20000, 0));
    let leash = Harness::start(stripe.addr, &ca, |_| {}).await;
    let client = leash.client();
    let refunds = "https://api.stripe.com/v1/refunds";
    let gets = || {
        stripe
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path_and_query == "/v1/charges/ch_1")
            .count()
    };

    let (status, body) = post_form(&client, refunds, "r-1", "charge=ch_1&amount=5000").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gets(), 1);

    // The refund changed the charge: the next refund of it is read against
    // the charge as it is now, not the copy looked up for the first one.
    stripe.answer("/v1/charges/ch_1", 200, &charge(20000, 5000));
    let (status, body) = post_form(&client, refunds, "r-2", "charge=ch_1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        gets(),
        2,
        "the first lookup was forgotten once its refund was forwarded"
    );

    let decisions = common::decisions(&leash).await;
    let full = decisions.last().expect("a decision for the full refund");
    assert_eq!(full["intent"][0]["amount"]["amount"], "150.00", "{full}");
}

const SIGNED: &str = "api.signed.example";
const PLAIN: &str = "api.plain.example";

/// Two custom vendors with the same order API: one signs each request
/// with a short lifetime, the other does not.
fn vendors(config: &mut leash::config::Config, upstream: &Upstream) {
    let yaml = format!(
        r#"
custom_vendors:
  - name: signed_shop
    hosts: [{SIGNED}]
    short_lived_signatures: true
    operations:
      - {{ name: order, method: POST, path: /orders, body: json, amount: /amount, currency: EUR }}
  - name: plain_shop
    hosts: [{PLAIN}]
    operations:
      - {{ name: order, method: POST, path: /orders, body: json, amount: /amount, currency: EUR }}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leash.yaml");
    std::fs::write(&file, yaml).unwrap();
    config.custom_vendors = leash::config::Config::load(Some(&file))
        .unwrap()
        .custom_vendors;
    for host in [SIGNED, PLAIN] {
        config.upstream.overrides.insert(
            host.into(),
            leash::config::HostPort {
                host: upstream.addr.ip().to_string(),
                port: upstream.addr.port(),
            },
        );
    }
    config.approvers.people.insert(
        "maya".into(),
        leash::config::Person {
            token_sha256: Some(Sha256::digest(MAYA.as_bytes()).into()),
            slack: None,
        },
    );
}

const HOLD_ALL: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 100 }
    approvers: [maya]
"#;

async fn order(client: &reqwest::Client, host: &str, signature: &str) -> (u16, Value) {
    let response = client
        .post(format!("https://{host}/orders"))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("order-at-{host}"))
        .header("x-signature", signature)
        .body(r#"{"amount":"250.00"}"#)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn approve_pending(leash: &Harness, vendor: &str) {
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let holds: Value = admin
        .get(format!("{base}/v1/holds?state=pending"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hold = holds["holds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["vendor"] == vendor)
        .unwrap_or_else(|| panic!("no pending hold for {vendor}: {holds}"));
    let id = hold["id"].as_str().unwrap();
    let vote = admin
        .post(format!("{base}/v1/holds/{id}/approve"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_forwards_the_retry_only_for_short_lived_signatures() {
    let ca = TestCa::new("test public CA");
    let shops = Upstream::start(Some(ca.server_config(&[SIGNED, PLAIN]))).await;
    let leash =
        Harness::start_with_policy(shops.addr, &ca, HOLD_ALL, |config| vendors(config, &shops))
            .await;
    let client = leash.client();

    for host in [SIGNED, PLAIN] {
        let (status, body) = order(&client, host, "sig-1").await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "leash_held", "{body}");
    }
    assert!(shops.seen().is_empty(), "nothing leaves before approval");
    approve_pending(&leash, "signed_shop").await;
    approve_pending(&leash, "plain_shop").await;

    // The retries carry fresh signatures (as the agent's SDK would sign
    // them now); the bodies are the same, so are the fingerprints.
    for host in [SIGNED, PLAIN] {
        let (status, body) = order(&client, host, "sig-2").await;
        assert_eq!(status, 200, "{body}");
    }
    let signature_seen = |host: &str| {
        let seen = shops.seen();
        let at: Vec<_> = seen.iter().filter(|s| s.host.starts_with(host)).collect();
        assert_eq!(at.len(), 1, "released exactly once to {host}");
        at[0].headers["x-signature"].to_str().unwrap().to_owned()
    };
    assert_eq!(signature_seen(SIGNED), "sig-2", "the retry, freshly signed");
    assert_eq!(
        signature_seen(PLAIN),
        "sig-1",
        "the stored copy, as approved"
    );

    // A retry with another body is another request: not released by the
    // approval, whatever its signature.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let response = client
        .post(format!("https://{SIGNED}/orders"))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("order-at-{SIGNED}"))
        .header("x-signature", "sig-3")
        .body(r#"{"amount":"9000.00"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409, "same key, other request");
    assert_eq!(shops.seen().len(), 2);
}
