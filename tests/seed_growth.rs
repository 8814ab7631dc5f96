//! Seed scenario 01 end to end (issue 12): the `growth-agent` stack
//! (`policies/examples/growth-agent`: €5,000 a day across all platforms,
//! from €1,500 a growth lead decides, a new ad account waits for a growth
//! lead, small spend Mon–Fri 08:00–22:00 Paris goes through) in front of
//! the Graph stand-in, with requests in facebook-python-business-sdk's own
//! shape: ad sets created, a batch with one item over the threshold held
//! whole, a new ad account held, the cap's last euro exact; and outside
//! the business-hours window, a small ad set waits for a growth lead.
//!
//! leash decides on the real clock, so the stack is run with its
//! business-hours window pinned: open all week for the first test, closed
//! for the hour it runs in for the second. Every other rule is the seed's,
//! byte for byte (the rewrite below fails loudly if the seed's window
//! changes).
//!
//! Google Ads (gRPC) joins this scenario in the same cap: see
//! [`GOOGLE_ADS_PART`] for where it goes.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use chrono::Timelike;
use common::{Harness, TestCa};
use serde_json::Value;
use sha2::{Digest, Sha256};

const TOKEN: &str = "EAABgrowthAgentSecretToken";
const PROOF: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const MAYA: &str = "maya-token-0123456789";

/// Where the Google Ads part of seed scenario 01 goes, once the Google Ads
/// adapter exists (issue 12 item 2): in [`start`], override
/// `googleads.googleapis.com` to a gRPC stand-in and set
/// `vendors.google_ads.accounts`; in the first test, after the Meta ad
/// sets, send a `CampaignBudgetService/MutateCampaignBudgets` in the
/// library's wire shape and check it counts in the same €5,000 cap (with
/// fx when the customer's currency is not EUR). Nothing here tests Google
/// today.
#[allow(dead_code)]
const GOOGLE_ADS_PART: () = ();

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

async fn start(policies: &std::path::Path) -> (stand_in::StandIn, Harness) {
    let ca = TestCa::new("stand-in test CA");
    let graph = stand_in::StandIn::start(&ca).await;
    let addr = graph.addr;
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
        // (Google Ads: see GOOGLE_ADS_PART.)
    })
    .await;
    (graph, leash)
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

async fn last_decision(leash: &Harness) -> Value {
    common::decisions(leash).await.pop().expect("a decision")
}

fn posts(graph: &stand_in::StandIn) -> usize {
    graph.seen().iter().filter(|s| s.method == "POST").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_ad_spend_through_the_seed_growth_stack() {
    let policies = stack(ALWAYS_OPEN);
    let (graph, leash) = start(policies.path()).await;
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
    assert_eq!(posts(&graph), 0);

    // A new ad account: a growth lead decides.
    let (status, body) = create_adset(&client, "act_9999", "New partner", 20000).await;
    assert_eq!(status, 403, "{body}");
    let held = last_decision(&leash).await;
    assert_eq!(verdict(&held), ("REQUIRE_HUMAN".into(), Some(30)), "{held}");
    assert_eq!(held["intent"][0]["beneficiary"], "act_9999");
    assert_eq!(posts(&graph), 0);

    // Small ad sets on known accounts go through, up to the cap's last
    // cent: 3 × €1,400 + €799.99 + €0.01 = €5,000.00.
    for (i, budget) in [140000, 140000, 140000, 79999, 1].into_iter().enumerate() {
        let (status, body) = create_adset(&client, "act_1001", &format!("Set {i}"), budget).await;
        assert_eq!(status, 200, "ad set {i}: {body}");
        let ok = last_decision(&leash).await;
        assert_eq!(verdict(&ok), ("AUTO_APPROVE".into(), Some(40)), "{ok}");
    }
    assert_eq!(posts(&graph), 5);
    let all = common::decisions(&leash).await;
    let last = &all[all.len() - 1]["intent"][0];
    assert_eq!(last["amount"]["amount"], "0.01", "{last}");
    assert_eq!(
        last["sources"]["currency"],
        "EUR (GET /v25.0/act_1001?fields=currency)"
    );

    // One more cent is over: refused in Graph's shape, not sent.
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
    assert_eq!(posts(&graph), 5);

    // No credential in the chain.
    let audit = common::admin_get(
        &leash,
        &format!("http://{}/v1/audit?limit=1000", leash.running.admin_addr),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!audit.contains(TOKEN) && !audit.contains(PROOF));
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_business_hours_a_small_ad_set_waits_for_a_growth_lead() {
    let policies = stack(&closed_now());
    let (graph, leash) = start(policies.path()).await;
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
    assert_eq!(posts(&graph), 0);
    // A growth lead sees it.
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
    assert_eq!(holds["holds"][0]["vendor"], "meta", "{holds}");
}
