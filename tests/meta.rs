//! The Meta Marketing API through a real leash, against the Graph
//! stand-in (`tests/common/stand_in/meta.rs`): requests in the shapes
//! facebook-python-business-sdk sends (a form body, the token and
//! `appsecret_proof` in the query), decided with the ad account's currency
//! looked up once; a batch with one item over the threshold held whole;
//! refusals in Graph's error shape; the agent's token in no audit entry
//! and no hold.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::Value;
use sha2::{Digest, Sha256};

const TOKEN: &str = "EAABwzLixnjYBOZCsecretTOKEN";
const PROOF: &str = "9f2c4e7d1b0a3c5e6f8d2b4a6c8e0f1a3b5d7f9e1c3a5b7d9f0e2c4a6b8d0f1e";
const MAYA: &str = "maya-token-0123456789";

/// Up to €1,500 goes through; from €1,500 maya decides, as she does for
/// what leash cannot read or does not know.
const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
approvers: [maya]
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 1500 }
    approvers: [maya]
    description: From €1,500 a person decides
"#;

async fn start() -> (stand_in::StandIn, Harness) {
    let ca = TestCa::new("stand-in test CA");
    let graph = stand_in::StandIn::start(&ca).await;
    let addr = graph.addr;
    let leash = Harness::start_with_policy(addr, &ca, POLICY, move |config| {
        config.upstream.overrides.insert(
            "graph.facebook.com".into(),
            leash::config::HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
        );
        // act_2002 is configured; every other account is looked up.
        config
            .vendors
            .meta
            .accounts
            .insert("act_2002".into(), "JPY".into());
        config
            .fx
            .rates
            .insert("JPY".into(), "0.0061".parse().unwrap());
        config.approvers.people.insert(
            "maya".into(),
            leash::config::Person {
                token_sha256: Some(Sha256::digest(MAYA.as_bytes()).into()),
                slack: None,
            },
        );
    })
    .await;
    (graph, leash)
}

/// The query every facebook-business request carries (`session.params`).
fn auth() -> String {
    format!("access_token={TOKEN}&appsecret_proof={PROOF}")
}

/// A POST as the Python SDK sends it: `data=` (a form), token in the query.
async fn post(client: &reqwest::Client, path: &str, body: &str) -> (u16, Value) {
    let response = client
        .post(format!("https://graph.facebook.com{path}?{}", auth()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn gets(graph: &stand_in::StandIn, path: &str) -> usize {
    graph
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path_and_query.split('?').next() == Some(path))
        .count()
}

/// A refusal as facebook-business reads it: any body with `error` raises
/// `FacebookRequestError`; `is_transient` false, a permission code.
fn assert_graph_refusal(status: u16, body: &Value, leash_code: &str) {
    assert_eq!(status, 403, "{body}");
    let error = &body["error"];
    assert_eq!(error["type"], "OAuthException", "{body}");
    assert_eq!(error["code"], 200, "{body}");
    assert_eq!(error["is_transient"], false, "{body}");
    assert_eq!(error["error_user_title"], leash_code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sdk_adset_create_is_decided_with_the_looked_up_currency() {
    let (graph, leash) = start().await;
    let client = leash.client();
    // research §2.2: AdAccount('act_1002').create_ad_set(params=…)
    let body = "name=My+First+Adset&daily_budget=2000&campaign_id=120200000000000001&bid_amount=100&billing_event=LINK_CLICKS&optimization_goal=LINK_CLICKS&targeting=%7B%22facebook_positions%22%3A%5B%22feed%22%5D%2C%22geo_locations%22%3A%7B%22countries%22%3A%5B%22US%22%5D%7D%7D&status=PAUSED";
    let (status, created) = post(&client, "/v25.0/act_1002/adsets", body).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"]
        .as_str()
        .expect("the new ad set's id")
        .to_string();
    assert_eq!(graph.object(&id).unwrap()["daily_budget"], "2000");

    // The currency was looked up with the agent's own token, once.
    let lookups: Vec<String> = graph
        .seen()
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path_and_query.clone())
        .collect();
    assert_eq!(
        lookups,
        [format!("/v25.0/act_1002?fields=currency&{}", auth())],
        "the lookup carries the agent's token and proof"
    );
    let (status, _) = post(
        &client,
        "/v25.0/act_1002/adsets",
        &body.replace("My+First", "Second"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(gets(&graph, "/v25.0/act_1002"), 1, "the currency is cached");

    // A configured account is not looked up; JPY has offset 1.
    let (status, _) = post(&client, "/v25.0/act_2002/campaigns", "name=Tokyo&objective=OUTCOME_TRAFFIC&status=PAUSED&daily_budget=150000&special_ad_categories=%5B%5D").await;
    assert_eq!(status, 200);
    assert_eq!(gets(&graph, "/v25.0/act_2002"), 0);

    let decisions = common::decisions(&leash).await;
    let first = &decisions[0];
    assert_eq!(first["decision"], "AUTO_APPROVE", "{first}");
    let intent = &first["intent"][0];
    assert_eq!(intent["vendor"], "meta");
    assert_eq!(intent["operation"], "adset.create");
    assert_eq!(intent["amount"]["amount"], "20.00");
    assert_eq!(intent["amount"]["currency"], "EUR");
    assert_eq!(intent["beneficiary"], "act_1002");
    assert_eq!(intent["category"], "ad_spend");
    assert_eq!(
        intent["sources"]["currency"],
        "EUR (GET /v25.0/act_1002?fields=currency)"
    );
    let tokyo = &decisions[2]["intent"][0];
    assert_eq!(tokyo["amount"]["amount"], "150000", "{tokyo}");
    assert_eq!(tokyo["amount"]["currency"], "JPY");
    assert_eq!(tokyo["sources"]["currency"], "JPY (vendors.meta.accounts)");

    // An update by id: the ad set's account, then its currency.
    let (status, answer) = post(&client, "/v25.0/120200000000000777/", "daily_budget=7500").await;
    assert_eq!(
        (status, &answer["success"]),
        (200, &Value::Bool(true)),
        "{answer}"
    );
    assert_eq!(
        graph.object("120200000000000777").unwrap()["daily_budget"],
        "7500"
    );
    let decisions = common::decisions(&leash).await;
    let update = &decisions.last().unwrap()["intent"][0];
    assert_eq!(update["operation"], "object.update", "{update}");
    assert_eq!(update["amount"]["amount"], "75.00");
    assert_eq!(update["beneficiary"], "act_1001");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_one_item_over_the_threshold_is_held_whole_and_no_secret_is_kept() {
    let (graph, leash) = start().await;
    let client = leash.client();
    // FacebookAdsApi.new_batch(): items without a version, bodies
    // percent-encoded, the batch posted to the root as a form.
    let items = serde_json::json!([
        {"body": "name=Spring%20sale&objective=OUTCOME_TRAFFIC&status=PAUSED&daily_budget=5000&special_ad_categories=%5B%5D", "method": "POST", "relative_url": "act_1001/campaigns"},
        {"body": "name=Big%20push&campaign_id=120200000000000001&daily_budget=200000&billing_event=IMPRESSIONS&optimization_goal=REACH&status=PAUSED", "method": "POST", "relative_url": "act_1001/adsets"},
    ]);
    let batch: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("batch", &items.to_string())
        .finish();
    let (status, body) = post(&client, "/v25.0/", &batch).await;
    assert_graph_refusal(status, &body, "leash_held");
    assert!(
        !graph.seen().iter().any(|s| s.method == "POST"),
        "no item of a held batch reached Graph"
    );

    // The audit chain has both intents, and no credential anywhere.
    let decisions = common::decisions(&leash).await;
    let held = decisions.last().unwrap();
    assert_eq!(held["decision"], "REQUIRE_HUMAN", "{held}");
    let amounts: Vec<&str> = held["intent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["50.00", "2000.00"]);

    // An unreadable write, with its token in the body: held with its raw
    // money fields shown, never the token.
    let (status, body) = post(
        &client,
        "/v25.0/act_1001/adsets",
        &format!("name=x&daily_budget=20.50&access_token={TOKEN}x&appsecret_proof={PROOF}x"),
    )
    .await;
    // The query already has access_token: a second one is ambiguous.
    assert_graph_refusal(status, &body, "leash_ambiguous");
    let response = client
        .post("https://graph.facebook.com/v25.0/act_1001/adsets")
        .header("authorization", format!("OAuth {TOKEN}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=x&daily_budget=20.50&appsecret_proof={PROOF}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_graph_refusal(status, &body, "leash_held");

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
    let text = holds.to_string();
    assert_eq!(holds["holds"].as_array().unwrap().len(), 2, "{holds}");
    assert!(
        text.contains("daily_budget"),
        "the raw money field is shown: {holds}"
    );
    let audit = common::admin_get(&leash, &format!("{base}/v1/audit?limit=1000"))
        .await
        .text()
        .await
        .unwrap();
    for secret in [TOKEN, PROOF] {
        assert!(!text.contains(secret), "a hold shows {secret}: {holds}");
        assert!(!audit.contains(secret), "the audit chain holds {secret}");
    }
    assert!(
        audit.contains("2000.00"),
        "the chain has the batch's intents"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_validate_only_and_what_graph_cannot_read_two_ways() {
    let (graph, leash) = start().await;
    let client = leash.client();
    // A read is forwarded as is.
    let response = client
        .get(format!(
            "https://graph.facebook.com/v25.0/act_1001?fields=currency,name&{}",
            auth()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["currency"], "EUR");
    // validate_only executes nothing, whatever the budget.
    let (status, body) = post(
        &client,
        "/v25.0/act_1001/adsets",
        "name=x&daily_budget=9000000&campaign_id=1&execution_options=%5B%22validate_only%22%5D",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A money field in the query and the body: refused, not forwarded.
    let response = client
        .post(format!(
            "https://graph.facebook.com/v25.0/act_1001/adsets?daily_budget=100&{}",
            auth()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x&daily_budget=9000000")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_graph_refusal(status, &body, "leash_ambiguous");
    assert_eq!(
        graph.seen().iter().filter(|s| s.method == "POST").count(),
        1,
        "only the validate_only call reached Graph"
    );
    // The Node SDK's JSON body, decided like the form.
    let response = client
        .post(format!("https://graph.facebook.com/v25.0/act_1001/campaigns?{}", auth()))
        .header("content-type", "application/json")
        .body(r#"{"name":"Node","objective":"OUTCOME_TRAFFIC","status":"PAUSED","daily_budget":3000,"special_ad_categories":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let decisions = common::decisions(&leash).await;
    let node = &decisions.last().unwrap()["intent"][0];
    assert_eq!(node["amount"]["amount"], "30.00", "{node}");
}
