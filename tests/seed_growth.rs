//! Seed scenario 01 end to end (issue 12): the `growth-agent` stack
//! (`policies/examples/growth-agent`: €5,000 a day across all platforms,
//! from €1,500 a growth lead decides, a new ad account waits for a growth
//! lead, small spend Mon–Fri 08:00–22:00 Paris goes through) in front of
//! the stand-in vendors, Meta and Google Ads in one cap. Meta requests come
//! in facebook-python-business-sdk's own shape: ad sets created, a batch
//! with one item over the threshold held whole, a new ad account held.
//! Google Ads budgets come over gRPC as google-ads-python sends them, for a
//! customer billed in USD (`vendors.google_ads.accounts`, converted with
//! the seed's `fx` rate, 1 USD = 0.92 EUR): $1,700 (€1,564) held for a
//! growth lead, $500.01 refused for passing the cap by €0.0092, $500 taking
//! its last €460.00, after which Meta's next cent is refused; each refusal
//! read by the gRPC client as `PERMISSION_DENIED` with leash's reason.
//! Outside the business-hours window, a small ad set and a small budget
//! wait for a growth lead.
//!
//! leash decides on the real clock, so the stack is run with its
//! business-hours window pinned: open all week for the first test, closed
//! for the hour it runs in for the second. Every other rule is the seed's,
//! byte for byte (the rewrite below fails loudly if the seed's window
//! changes).

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use chrono::Timelike;
use common::google_ads::{self as gads, GrpcAnswer};
use common::{Harness, TestCa};
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};

const TOKEN: &str = "EAABgrowthAgentSecretToken";
const PROOF: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const MAYA: &str = "maya-token-0123456789";

/// The growth team's Google Ads customer, billed in USD (the stand-in's
/// USD customer; in the seed's `data/ad-accounts.txt`).
const CUSTOMER: &str = "5550001111";

fn seed() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples/growth-agent")
}

/// The seed's business-hours window, as written in its stack.
const SEED_WINDOW: &str =
    "    days: [mon, tue, wed, thu, fri]\n    from: \"08:00\"\n    to: \"22:00\"\n";

/// The seed stack in a directory of its own, its window replaced by
/// `window`.
fn stack(window: &str) -> tempfile::TempDir {
    let text = std::fs::read_to_string(seed().join("growth-agent.yaml")).unwrap();
    assert!(
        text.contains(SEED_WINDOW),
        "the seed's window changed: update this test"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("growth-agent.yaml"),
        text.replace(SEED_WINDOW, window),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(
        seed().join("data/ad-accounts.txt"),
        dir.path().join("data/ad-accounts.txt"),
    )
    .unwrap();
    dir
}

/// Open whenever the test runs.
const ALWAYS_OPEN: &str =
    "    days: [mon, tue, wed, thu, fri, sat, sun]\n    from: \"00:00\"\n    to: \"24:00\"\n";

/// Open for half an hour twelve hours from now (Paris): closed while the
/// test runs.
fn closed_now() -> String {
    let paris = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    let hour = (paris.hour() + 12) % 24;
    format!("    days: [mon, tue, wed, thu, fri, sat, sun]\n    from: \"{hour:02}:00\"\n    to: \"{hour:02}:30\"\n")
}

/// leash with the seed's approvers and fx rates, Graph and Google Ads sent
/// to the stand-in, the Google customer's currency from config.
async fn start(policies: &std::path::Path) -> (stand_in::StandIn, Harness) {
    let ca = TestCa::new("stand-in test CA");
    let vendors = stand_in::StandIn::start(&ca).await;
    let addr = vendors.addr;
    let seed_config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    let policies = policies.to_path_buf();
    let leash = Harness::start(addr, &ca, move |config| {
        config.policies = policies;
        config.default_agent = Some("growth-agent".into());
        config.approvers.people = seed_config.approvers.people.clone();
        config.approvers.groups = seed_config.approvers.groups.clone();
        config.fx = seed_config.fx.clone();
        if let Some(maya) = config.approvers.people.get_mut("maya") {
            maya.token_sha256 = Some(Sha256::digest(MAYA.as_bytes()).into());
        }
        config.upstream.overrides.insert(
            "graph.facebook.com".into(),
            leash::config::HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
        );
        gads::point_at(config, addr);
        config
            .vendors
            .google_ads
            .accounts
            .insert(CUSTOMER.into(), "USD".into());
    })
    .await;
    // The rate the Google budgets below are converted with.
    assert_eq!(
        leash.config.fx.rates.get("USD").map(|r| r.to_string()),
        Some("0.92".to_string()),
        "the seed's USD rate changed: update this test"
    );
    (vendors, leash)
}

/// `CampaignBudget` as google-ads-python's `add_campaigns.py` fills it
/// (`name`, `delivery_method = STANDARD`, `amount_micros`), fields in
/// number order as protobuf serializes them.
#[derive(Clone, PartialEq, prost::Message)]
struct LibraryBudget {
    #[prost(int32, tag = "7")]
    delivery_method: i32,
    #[prost(string, optional, tag = "20")]
    name: Option<String>,
    #[prost(int64, optional, tag = "21")]
    amount_micros: Option<i64>,
}

/// `CampaignBudgetOperation` with its `create` (oneof member 1).
#[derive(Clone, PartialEq, prost::Message)]
struct LibraryOperation {
    #[prost(message, optional, tag = "1")]
    create: Option<LibraryBudget>,
}

/// `MutateCampaignBudgetsRequest`: 1 customer_id, 2 operations.
#[derive(Clone, PartialEq, prost::Message)]
struct LibraryRequest {
    #[prost(string, tag = "1")]
    customer_id: String,
    #[prost(message, repeated, tag = "2")]
    operations: Vec<LibraryOperation>,
}

/// `CampaignBudgetService.MutateCampaignBudgets` creating one daily budget
/// of `micros` for [`CUSTOMER`], over gRPC through leash.
async fn create_budget(leash: &Harness, name: &str, micros: i64) -> GrpcAnswer {
    let request = LibraryRequest {
        customer_id: CUSTOMER.into(),
        operations: vec![LibraryOperation {
            create: Some(LibraryBudget {
                delivery_method: 2,
                name: Some(name.into()),
                amount_micros: Some(micros),
            }),
        }],
    };
    gads::call(
        leash,
        gads::MUTATE_BUDGETS,
        &request.encode_to_vec(),
        gads::Send::default(),
    )
    .await
}

/// A refusal as google-ads-python reads it: `PERMISSION_DENIED`, leash's
/// code first in the message and in the `GoogleAdsFailure` the library
/// raises as `GoogleAdsException`.
fn refused_as(answer: &GrpcAnswer, code: &str) {
    assert_eq!(answer.status, Some(7), "PERMISSION_DENIED: {answer:?}");
    let message = answer.message.clone().unwrap_or_default();
    assert!(message.starts_with(&format!("{code}: ")), "{message}");
    let failure = answer.failure.as_ref().expect("a GoogleAdsFailure");
    assert_eq!(failure.request_id, format!("leash-{code}"));
    assert_eq!(failure.errors[0].message, message);
}

/// Google budgets that reached the stand-in.
fn budget_mutates(vendors: &stand_in::StandIn) -> usize {
    vendors
        .seen()
        .iter()
        .filter(|s| s.path_and_query == gads::MUTATE_BUDGETS)
        .count()
}

/// `AdAccount(act).create_ad_set(params={…})` as the Python SDK posts it.
async fn create_adset(
    client: &reqwest::Client,
    act: &str,
    name: &str,
    daily_budget: u64,
) -> (u16, Value) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .append_pair("daily_budget", &daily_budget.to_string())
        .append_pair("campaign_id", "120200000000000001")
        .append_pair("billing_event", "IMPRESSIONS")
        .append_pair("optimization_goal", "REACH")
        .append_pair("targeting", r#"{"geo_locations":{"countries":["FR"]}}"#)
        .append_pair("status", "PAUSED")
        .finish();
    send(client, &format!("/v25.0/{act}/adsets"), body).await
}

async fn send(client: &reqwest::Client, path: &str, body: String) -> (u16, Value) {
    let response = client
        .post(format!(
            "https://graph.facebook.com{path}?access_token={TOKEN}&appsecret_proof={PROOF}"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The decision's action and deciding rule.
fn verdict(decision: &Value) -> (String, Option<u64>) {
    (
        decision["decision"].as_str().unwrap_or("").to_string(),
        decision["details"]["rule"].as_u64(),
    )
}

/// What the rule of `priority` said of the decision.
fn rule_reason(decision: &Value, priority: u64) -> &str {
    decision["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["priority"] == priority))
        .and_then(|r| r["reason"].as_str())
        .unwrap_or("")
}

async fn last_decision(leash: &Harness) -> Value {
    common::decisions(leash).await.pop().expect("a decision")
}

/// Graph API writes that reached the stand-in.
fn posts(vendors: &stand_in::StandIn) -> usize {
    vendors
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.host.starts_with("graph.facebook.com"))
        .count()
}

async fn holds(leash: &Harness) -> Value {
    let admin = common::api::AdminApi::at(leash.running.admin_addr, MAYA);
    let (status, holds) = admin.get(MAYA, "/v1/holds").await;
    assert_eq!(status, 200, "{holds}");
    holds
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_and_google_ad_spend_share_the_seed_growth_stack() {
    let policies = stack(ALWAYS_OPEN);
    let (vendors, leash) = start(policies.path()).await;
    let client = leash.client();

    // A batch whose second ad set is €2,000: held whole for a growth
    // lead, nothing of it sent.
    let items = serde_json::json!([
        {"body": "name=Winter&objective=OUTCOME_TRAFFIC&status=PAUSED&daily_budget=50000&special_ad_categories=%5B%5D", "method": "POST", "relative_url": "act_1001/campaigns"},
        {"body": "name=Push&campaign_id=120200000000000001&daily_budget=200000&billing_event=IMPRESSIONS&optimization_goal=REACH&status=PAUSED", "method": "POST", "relative_url": "act_1001/adsets"},
    ]);
    let batch: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("batch", &items.to_string())
        .finish();
    let (status, body) = send(&client, "/v25.0/", batch).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["error_user_title"], "leash_held", "{body}");
    assert_eq!(body["error"]["is_transient"], false);
    let held = last_decision(&leash).await;
    assert_eq!(verdict(&held), ("REQUIRE_HUMAN".into(), Some(20)), "{held}");
    assert_eq!(held["intent"].as_array().unwrap().len(), 2, "{held}");
    assert_eq!(posts(&vendors), 0);

    // A new ad account: a growth lead decides.
    let (status, body) = create_adset(&client, "act_9999", "New partner", 20000).await;
    assert_eq!(status, 403, "{body}");
    let held = last_decision(&leash).await;
    assert_eq!(verdict(&held), ("REQUIRE_HUMAN".into(), Some(30)), "{held}");
    assert_eq!(held["intent"][0]["beneficiary"], "act_9999");
    assert_eq!(posts(&vendors), 0);

    // A Google budget of $1,700 is €1,564.00 at the seed's rate: over
    // €1,500, held for a growth lead, not sent; the library reads
    // PERMISSION_DENIED.
    let answer = create_budget(&leash, "Spring push", 1_700_000_000).await;
    refused_as(&answer, "leash_held");
    let held = last_decision(&leash).await;
    assert_eq!(verdict(&held), ("REQUIRE_HUMAN".into(), Some(20)), "{held}");
    let intent = &held["intent"][0];
    assert_eq!(intent["vendor"], "google_ads", "{held}");
    assert_eq!(intent["operation"], "campaign_budget.create");
    assert_eq!(intent["amount"]["amount"], "1700.00");
    assert_eq!(intent["amount"]["currency"], "USD");
    assert_eq!(intent["beneficiary"], CUSTOMER);
    assert_eq!(intent["sources"]["currency"], "vendors.google_ads.accounts");
    assert_eq!(
        rule_reason(&held, 20),
        "amount 1,700.00 USD (1,564.00 EUR) \u{2265} 1,500.00 EUR",
        "converted before the threshold: {held}"
    );
    assert_eq!(
        held["details"]["fx"],
        serde_json::json!([{"from": "USD", "rate": "0.92", "to": "EUR"}])
    );
    assert_eq!(budget_mutates(&vendors), 0);
    let open = holds(&leash).await;
    let google: Vec<&Value> = open["holds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["vendor"] == "google_ads")
        .collect();
    assert_eq!(google.len(), 1, "a growth lead sees it: {open}");

    // Small ad sets on known accounts go through: 3 × €1,400 + €339.99 +
    // €0.01 = €4,540.00, leaving €460.00.
    for (i, budget) in [140000, 140000, 140000, 33999, 1].into_iter().enumerate() {
        let (status, body) = create_adset(&client, "act_1001", &format!("Set {i}"), budget).await;
        assert_eq!(status, 200, "ad set {i}: {body}");
        let ok = last_decision(&leash).await;
        assert_eq!(verdict(&ok), ("AUTO_APPROVE".into(), Some(40)), "{ok}");
    }
    assert_eq!(posts(&vendors), 5);
    let last = &last_decision(&leash).await["intent"][0];
    assert_eq!(last["amount"]["amount"], "0.01", "{last}");
    assert_eq!(
        last["sources"]["currency"],
        "EUR (GET /v25.0/act_1001?fields=currency)"
    );

    // Google counts in the same cap, converted: $500.01 is €460.0092,
    // over what is left by €0.0092. Refused, not sent.
    let answer = create_budget(&leash, "Over by a fraction", 500_010_000).await;
    refused_as(&answer, "leash_rejected");
    let rejected = last_decision(&leash).await;
    assert_eq!(
        verdict(&rejected),
        ("REJECT".into(), Some(10)),
        "{rejected}"
    );
    assert_eq!(rejected["intent"][0]["amount"]["amount"], "500.01");
    assert_eq!(
        rule_reason(&rejected, 10),
        "spent 4,540.00 + 460.0092 > 5,000.00 EUR",
        "{rejected}"
    );
    assert_eq!(budget_mutates(&vendors), 0);

    // $500 is €460.00: the cap's last euro, approved and created.
    let answer = create_budget(&leash, "Last euro", 500_000_000).await;
    assert_eq!(answer.status, Some(0), "{answer:?}");
    let ok = last_decision(&leash).await;
    assert_eq!(verdict(&ok), ("AUTO_APPROVE".into(), Some(40)), "{ok}");
    assert_eq!(ok["intent"][0]["amount"]["amount"], "500.00", "{ok}");
    assert_eq!(
        rule_reason(&ok, 10),
        "spent 4,540.00 + 460.00 \u{2264} 5,000.00 EUR",
        "{ok}"
    );
    assert_eq!(budget_mutates(&vendors), 1);
    let created = stand_in::google_ads::MutateCampaignBudgetsResponse::decode(
        answer
            .messages
            .first()
            .expect("the vendor's answer")
            .as_slice(),
    )
    .unwrap();
    let budget = &created.results[0].resource_name;
    assert!(
        budget.starts_with(&format!("customers/{CUSTOMER}/campaignBudgets/")),
        "{budget}"
    );
    assert_eq!(vendors.object(budget).unwrap()["amountMicros"], "500000000");

    // Meta's next cent is over: refused in Graph's shape, not sent. Meta
    // alone spent €4,540.00; the cap counted Google's €460.00 with it.
    let (status, body) = create_adset(&client, "act_1002", "One cent too many", 1).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["error_user_title"], "leash_rejected",
        "{body}"
    );
    assert_eq!(body["error"]["code"], 200);
    let rejected = last_decision(&leash).await;
    assert_eq!(
        verdict(&rejected),
        ("REJECT".into(), Some(10)),
        "{rejected}"
    );
    assert_eq!(
        rule_reason(&rejected, 10),
        "spent 5,000.00 + 0.01 > 5,000.00 EUR",
        "{rejected}"
    );
    assert_eq!(posts(&vendors), 5);

    // No credential in the chain.
    let audit = common::admin_get(
        &leash,
        &format!("http://{}/v1/audit?limit=1000", leash.running.admin_addr),
    )
    .await
    .text()
    .await
    .unwrap();
    for secret in [
        TOKEN,
        PROOF,
        "ya29.a0-test-oauth-token",
        "dev-token-0123456789",
    ] {
        assert!(!audit.contains(secret), "{secret} in the audit chain");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_business_hours_small_spend_waits_for_a_growth_lead() {
    let policies = stack(&closed_now());
    let (vendors, leash) = start(policies.path()).await;
    let client = leash.client();
    let (status, body) = create_adset(&client, "act_1001", "Night shift", 20000).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["error_user_title"], "leash_held", "{body}");
    let held = last_decision(&leash).await;
    assert_eq!(
        verdict(&held),
        ("REQUIRE_HUMAN".into(), None),
        "no rule approves it: {held}"
    );
    assert_eq!(held["intent"][0]["amount"]["amount"], "200.00");
    assert_eq!(posts(&vendors), 0);

    // A $200 Google budget waits the same way.
    let answer = create_budget(&leash, "Night budget", 200_000_000).await;
    refused_as(&answer, "leash_held");
    let held = last_decision(&leash).await;
    assert_eq!(verdict(&held), ("REQUIRE_HUMAN".into(), None), "{held}");
    assert_eq!(budget_mutates(&vendors), 0);

    // A growth lead sees both.
    let open = holds(&leash).await;
    let mut seen: Vec<&str> = open["holds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["vendor"].as_str())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ["google_ads", "meta"], "{open}");
}
