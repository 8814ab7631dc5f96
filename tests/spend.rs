//! `leash spend` and `GET /v1/spend`: each cap's window, spent, reserved
//! and left, read from the live ledger — and "left" is exactly what the
//! next request may add before the cap fires.

mod common;

use std::time::Duration;

use common::{admin_get, payment_intent, Harness, TestCa, Upstream, AUDITOR_TOKEN};

/// €100/day cap in Paris, a €500/month cap per beneficiary, everything
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
    type: DAILY_CAP
    action: REJECT
    limit: 500
    window: month
    scope: beneficiary
"#;

/// The caps of `agent` as `GET /v1/spend` serves them.
async fn caps(leash: &Harness, query: &str) -> Vec<serde_json::Value> {
    let url = format!("http://{}/v1/spend?{query}", leash.running.admin_addr);
    let response = admin_get(leash, &url).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    let agents = json["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{json}");
    agents[0]["caps"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn left_is_what_the_next_request_may_add() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, CAPPED, |_| {}).await;
    let client = leash.client();

    let fresh = caps(&leash, "agent=growth-agent").await;
    assert_eq!(fresh.len(), 2);
    assert_eq!(fresh[0]["priority"], 10);
    assert_eq!(fresh[0]["window"], "day");
    assert_eq!(fresh[0]["timezone"], "Europe/Paris");
    assert_eq!(fresh[0]["limit"], "100");
    assert_eq!(fresh[0]["spent"], "0");
    assert_eq!(fresh[0]["left"], "100");
    // Counted per beneficiary: no numbers without one named.
    assert_eq!(fresh[1]["left"], serde_json::Value::Null);
    assert!(fresh[1]["note"].as_str().unwrap().contains("--beneficiary"));

    assert_eq!(payment_intent(&client, 2000).await.status(), 200);
    assert_eq!(payment_intent(&client, 4050).await.status(), 200);
    let now = caps(&leash, "agent=growth-agent&beneficiary=cus_1").await;
    assert_eq!(now[0]["spent"], "60.5");
    assert_eq!(now[0]["reserved"], "0");
    assert_eq!(now[0]["left"], "39.5");
    assert_eq!(now[1]["scope_value"], "cus_1");
    assert_eq!(now[1]["window"], "month");
    assert_eq!(now[1]["left"], "439.5");
    let from: chrono::DateTime<chrono::Utc> = now[0]["from"].as_str().unwrap().parse().unwrap();
    let until: chrono::DateTime<chrono::Utc> = now[0]["until"].as_str().unwrap().parse().unwrap();
    let paris = from.with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(paris.format("%H:%M").to_string(), "00:00");
    assert!(from <= chrono::Utc::now() && chrono::Utc::now() < until);

    // Exactly "left" passes; a cent more would not.
    assert_eq!(payment_intent(&client, 3950).await.status(), 200);
    let full = caps(&leash, "agent=growth-agent").await;
    assert_eq!(full[0]["left"], "0");
    assert_eq!(full[0]["spent"], "100");
    let response = payment_intent(&client, 1).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-leash-rule"], "10");
    assert_eq!(upstream.seen().len(), 3);

    // The command prints the same numbers.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leash"))
        .args([
            "spend",
            "--agent",
            "growth-agent",
            "--admin",
            &format!("http://{}", leash.running.admin_addr),
        ])
        .env("LEASH_AUDIT_TOKEN", AUDITOR_TOKEN)
        .env_remove("LEASH_APPROVER_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("growth-agent\n"), "{stdout}");
    assert!(
        stdout.contains("#10 day cap, agent growth-agent: ")
            && stdout.contains("00:00 Europe/Paris")
            && stdout.contains("limit 100.00 EUR   spent 100.00   reserved 0.00   left 0.00"),
        "{stdout}"
    );
    assert!(
        stdout.contains("#20 month cap, per beneficiary"),
        "{stdout}"
    );

    // Without a token: refused, and the command says what it needs.
    let anonymous = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/v1/spend", leash.running.admin_addr);
    assert_eq!(anonymous.get(&url).send().await.unwrap().status(), 401);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leash"))
        .args([
            "spend",
            "--admin",
            &format!("http://{}", leash.running.admin_addr),
        ])
        .env_remove("LEASH_AUDIT_TOKEN")
        .env_remove("LEASH_APPROVER_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LEASH_AUDIT_TOKEN"));
}

/// Approved spend whose vendor never answered stays reserved (the money
/// may have moved) and is shown apart from settled spend, counting.
#[tokio::test(flavor = "multi_thread")]
async fn unanswered_spend_is_reserved_and_counts() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor = common::silent_vendor(&ca).await;
    let leash = Harness::start_with_policy(vendor, &ca, CAPPED, |config| {
        config.upstream.timeout = Duration::from_millis(500);
    })
    .await;
    let response = payment_intent(&leash.client(), 3000).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let now = caps(&leash, "agent=growth-agent").await;
    assert_eq!(now[0]["reserved"], "30");
    assert_eq!(now[0]["spent"], "0");
    assert_eq!(now[0]["left"], "70");
}
