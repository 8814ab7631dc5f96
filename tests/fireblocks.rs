//! Fireblocks through a real leash, against the Fireblocks stand-in
//! (`tests/common/stand_in/fireblocks.rs`, which checks every JWT's
//! `exp`, `bodyHash`, `uri` and `nonce` like Fireblocks): a transaction is
//! read per destination; a held one is released by the agent's *retry*,
//! freshly signed — the stored copy's token would have expired — and the
//! vendor receives that retry exactly once. The JWT never reaches the
//! audit chain.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use stand_in::{fireblocks::jwt, StandIn};

const HOST: &str = "api.fireblocks.io";
const API_KEY: &str = "3f1c2b4a-0000-4000-8000-000000000001";
const ALEX: &str = "alex-token-0123456789";

/// Up to $50,000 goes through; more needs alex. (fx from the treasury
/// seed: 1 BTC = €61,000, $1 = €0.92.)
const POLICY: &str = r#"
agent: "*"
currency: USD
default: AUTO_APPROVE
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gt: 50000 }
    approvers: [alex]
"#;

fn seed_fx() -> leash::config::Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/examples/treasury-agent/config/leash.yaml");
    leash::config::Config::load(Some(&path)).unwrap()
}

/// The fireblocks-sdk-py body of research §6.2 (its `json.dumps` spacing).
fn body(amount: &str, external: &str) -> String {
    format!(
        r#"{{"waitForStatus": false, "operation": "TRANSFER", "assetId": "BTC", "source": {{"type": "VAULT_ACCOUNT", "id": "0"}}, "amount": "{amount}", "note": "GPU vendor invoice 1042", "destination": {{"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {{"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}}}}, "externalTxId": "{external}"}}"#
    )
}

/// `POST /v1/transactions` as the SDK sends it: X-API-Key, a JWT over this
/// exact body living `exp_in` seconds.
async fn create(
    client: &reqwest::Client,
    body: &str,
    exp_in: i64,
) -> (u16, String, Value, Option<String>) {
    let token = jwt(API_KEY, "/v1/transactions", body.as_bytes(), exp_in);
    let response = client
        .post(format!("https://{HOST}/v1/transactions"))
        .header("x-api-key", API_KEY)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let hold = response
        .headers()
        .get("x-leash-hold-id")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        token,
        response.json().await.unwrap_or(Value::Null),
        hold,
    )
}

fn creates(stand_in: &StandIn) -> Vec<common::Seen> {
    stand_in
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path_and_query == "/v1/transactions")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_transaction_is_released_by_the_freshly_signed_retry_once() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let addr = stand_in.addr;
    let fx = seed_fx().fx;
    let leash = Harness::start_with_policy(addr, &ca, POLICY, move |config| {
        config.fx = fx;
        config.upstream.overrides.insert(
            HOST.to_string(),
            leash::config::HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
        );
        config.approvers.people.insert(
            "alex".to_string(),
            leash::config::Person {
                token_sha256: Some(Sha256::digest(ALEX.as_bytes()).into()),
                slack: None,
            },
        );
    })
    .await;
    let client = leash.client();

    // 0.5 BTC: forwarded as sent, the SDK's token with it.
    let small = body("0.5", "inv-1042-attempt-1");
    let (status, token, answer, _) = create(&client, &small, 55).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "SUBMITTED");
    let seen = creates(&stand_in);
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], small.as_bytes(), "byte for byte");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {token}"));

    // 2 BTC: held for alex, in Fireblocks' error shape.
    let big = body("2", "treasury-7");
    let (status, first_token, held, hold) = create(&client, &big, 1).await;
    assert_eq!(status, 403, "{held}");
    assert_eq!(held["leashCode"], "leash_held", "{held}");
    assert!(held["code"].is_i64() && held["message"].as_str().unwrap().contains("alex"));
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let hold = hold.expect("X-Leash-Hold-Id");
    // The first token has expired by the time alex decides.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let approved = admin
        .post(format!("{base}/v1/holds/{hold}/approve"))
        .bearer_auth(ALEX)
        .send()
        .await
        .unwrap();
    assert!(
        approved.status().is_success(),
        "{}",
        approved.text().await.unwrap()
    );
    assert_eq!(creates(&stand_in).len(), 1, "nothing sent on approval");

    // The SDK retries: the same body, a fresh JWT. That retry is sent.
    let (status, retry_token, answer, _) = create(&client, &big, 55).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(retry_token, first_token);
    let seen = creates(&stand_in);
    assert_eq!(seen.len(), 2);
    assert_eq!(&seen[1].body[..], big.as_bytes());
    assert_eq!(
        seen[1].headers["authorization"],
        format!("Bearer {retry_token}")
    );
    // Another retry is not a second transaction.
    let (status, _, again, _) = create(&client, &big, 55).await;
    assert_ne!(status, 200, "{again}");
    assert_eq!(
        creates(&stand_in).len(),
        2,
        "the retry went out exactly once"
    );

    // The intents name the destination and the externalTxId; no token is
    // in the audit chain.
    let decided = common::decisions(&leash).await;
    let intent = &decided[0]["intent"][0];
    assert_eq!(intent["vendor"], "fireblocks");
    assert_eq!(
        intent["amount"],
        json!({"amount": "0.5", "currency": "BTC"})
    );
    assert_eq!(
        intent["beneficiary"],
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    );
    assert_eq!(intent["idempotency_key"], "inv-1042-attempt-1");
    assert_eq!(intent["category"], "crypto_transfer");
    let audit = common::admin_get(&leash, &format!("{base}/v1/audit?limit=1000"))
        .await
        .text()
        .await
        .unwrap();
    for t in [&token, &first_token, &retry_token] {
        let payload = t.split('.').nth(1).unwrap();
        assert!(!audit.contains(payload), "a JWT reached the audit chain");
    }
}
