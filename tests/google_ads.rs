//! Google Ads through the real proxy, against the stand-in: gRPC calls in
//! the client libraries' wire shape (HTTP/2, trailers, gzip, a message
//! split across DATA frames) decided and answered with their trailers
//! intact; refusals a gRPC client reads as `PERMISSION_DENIED` with
//! leash's reason; REST mutates decided in the currency leash looked up.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::google_ads::{self as gads, Send};
use common::{Harness, TestCa};
use prost::Message;
use serde_json::{json, Value};
use stand_in::StandIn;

/// Spends below €100 go through; €100 or more is refused.
const UNDER_100: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: AUTO_APPROVE
unreadable: REQUIRE_HUMAN
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gte: 100 }
    description: budgets of €100 or more are refused
"#;

async fn start(policy: &str) -> (StandIn, Harness) {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let addr = stand_in.addr;
    let leash = Harness::start_with_policy(addr, &ca, policy, |c| {
        gads::point_at(c, addr);
        c.fx.rates.insert("USD".into(), "0.9".parse().unwrap());
    })
    .await;
    (stand_in, leash)
}

fn searches(stand_in: &StandIn) -> Vec<common::Seen> {
    stand_in
        .seen()
        .into_iter()
        .filter(|s| s.path_and_query.ends_with("/googleAds:search"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_budget_is_decided_and_the_answer_keeps_its_trailers() {
    let (stand_in, leash) = start(UNDER_100).await;
    let request = gads::create_budget("1234567890", 50_000_000);
    let answer = gads::mutate_campaign_budgets(&leash, &request).await;
    assert_eq!(answer.http_status, 200);
    assert_eq!(answer.status, Some(0), "{answer:?}");
    let trailers = answer
        .trailers
        .as_ref()
        .expect("the vendor's trailers, forwarded");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(answer.headers["request-id"], "stand-in-request");
    assert_eq!(answer.messages.len(), 1);
    let results =
        stand_in::google_ads::MutateCampaignBudgetsResponse::decode(answer.messages[0].as_slice())
            .unwrap();
    let created = &results.results[0].resource_name;
    assert!(
        created.starts_with("customers/1234567890/campaignBudgets/"),
        "{created}"
    );
    assert_eq!(
        stand_in.object(created).unwrap()["amountMicros"],
        "50000000"
    );

    // The currency was looked up once, over REST, with the agent's own
    // OAuth token, developer token and manager account.
    let looked = searches(&stand_in);
    assert_eq!(looked.len(), 1);
    let search = &looked[0];
    assert_eq!(search.method, "POST");
    assert_eq!(
        search.path_and_query,
        "/v25/customers/1234567890/googleAds:search"
    );
    assert_eq!(
        search.headers["authorization"],
        "Bearer ya29.a0-test-oauth-token"
    );
    assert_eq!(search.headers["developer-token"], "dev-token-0123456789");
    assert_eq!(search.headers["login-customer-id"], "9876543210");
    let query: Value = serde_json::from_slice(&search.body).unwrap();
    assert_eq!(
        query["query"],
        "SELECT customer.currency_code FROM customer"
    );

    // The mutate reached the vendor as the agent sent it, over HTTP/2,
    // still asking for trailers.
    let mutate = stand_in
        .seen()
        .into_iter()
        .find(|s| s.path_and_query == gads::MUTATE_BUDGETS)
        .unwrap();
    assert_eq!(mutate.version, http::Version::HTTP_2);
    assert_eq!(mutate.headers["te"], "trailers");
    assert_eq!(mutate.headers["content-type"], "application/grpc");
    assert_eq!(
        mutate.body.as_ref(),
        leash::adapters::google_ads::grpc::frame(&request.encode_to_vec(), false)
    );

    let decisions = common::decisions(&leash).await;
    let decision = decisions.last().unwrap();
    let intent = &decision["intent"][0];
    assert_eq!(intent["vendor"], "google_ads", "{decision}");
    assert_eq!(intent["operation"], "campaign_budget.create");
    assert_eq!(intent["amount"]["amount"], "50.00");
    assert_eq!(intent["amount"]["currency"], "EUR");
    assert_eq!(intent["beneficiary"], "1234567890");
    assert_eq!(intent["category"], "ad_spend");
    assert_eq!(
        intent["sources"]["currency"],
        "POST /v25/customers/1234567890/googleAds:search (customer.currency_code)"
    );
    // Secrets never reach the audit chain.
    let chain = decisions.iter().map(Value::to_string).collect::<String>();
    assert!(!chain.contains("ya29.a0-test-oauth-token"));
    assert!(!chain.contains("dev-token-0123456789"));

    // A second budget: the currency comes from the cache (it never
    // changes), not a second search.
    let answer = gads::mutate_campaign_budgets(
        &leash,
        &gads::update_budget("1234567890", created, 75_000_000),
    )
    .await;
    assert_eq!(answer.status, Some(0), "{answer:?}");
    assert_eq!(searches(&stand_in).len(), 1);
    assert_eq!(
        stand_in.object(created).unwrap()["amountMicros"],
        "75000000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_message_split_across_data_frames_is_read_whole() {
    let (stand_in, leash) = start(UNDER_100).await;
    // €150 gzip-compressed, in 7 DATA frames: refused, never forwarded.
    let big = gads::create_budget("1234567890", 150_000_000).encode_to_vec();
    let answer = gads::call(
        &leash,
        gads::MUTATE_BUDGETS,
        &big,
        Send {
            gzip: true,
            frames: 7,
        },
    )
    .await;
    assert_eq!(answer.status, Some(7), "{answer:?}");
    assert!(stand_in
        .seen()
        .iter()
        .all(|s| s.path_and_query != gads::MUTATE_BUDGETS));
    // €99.99, the same way: approved, forwarded, answered.
    let small = gads::create_budget("1234567890", 99_990_000).encode_to_vec();
    let answer = gads::call(
        &leash,
        gads::MUTATE_BUDGETS,
        &small,
        Send {
            gzip: true,
            frames: 5,
        },
    )
    .await;
    assert_eq!(answer.status, Some(0), "{answer:?}");
    let decisions = common::decisions(&leash).await;
    assert_eq!(
        decisions.last().unwrap()["intent"][0]["amount"]["amount"],
        "99.99"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_a_permission_denied_the_library_raises() {
    let (stand_in, leash) = start(UNDER_100).await;
    let request = gads::create_budget("1234567890", 500_000_000);
    let answer = gads::mutate_campaign_budgets(&leash, &request).await;
    // Trailers-only: HTTP 200, application/grpc, the status in the head.
    assert_eq!(answer.http_status, 200);
    assert!(answer.trailers.is_none(), "trailers-only");
    assert!(answer.messages.is_empty());
    assert_eq!(answer.headers["content-type"], "application/grpc");
    assert_eq!(answer.status, Some(7), "PERMISSION_DENIED: {answer:?}");
    let message = answer.message.clone().unwrap();
    assert!(message.starts_with("leash_rejected: "), "{message}");
    assert!(
        message.contains("budgets of €100 or more are refused") || message.contains("priority 10"),
        "{message}"
    );
    assert_eq!(answer.headers["x-leash-decision"], "rejected");
    assert_eq!(answer.headers["request-id"], "leash-leash_rejected");
    // The GoogleAdsFailure google-ads-python turns into GoogleAdsException.
    let failure = answer.failure.expect("a GoogleAdsFailure trailer");
    assert_eq!(failure.request_id, "leash-leash_rejected");
    assert_eq!(
        failure.errors[0]
            .error_code
            .as_ref()
            .unwrap()
            .authorization_error,
        Some(leash::adapters::google_ads::grpc::ACTION_NOT_PERMITTED)
    );
    assert_eq!(failure.errors[0].message, message);
    assert!(stand_in
        .seen()
        .iter()
        .all(|s| s.path_and_query != gads::MUTATE_BUDGETS));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_methods_are_decided_and_vendor_errors_come_back_in_trailers() {
    let (stand_in, leash) = start(UNDER_100).await;
    let path = "/google.ads.googleads.v25.services.BatchJobService/RunBatchJob";
    let answer = gads::call(&leash, path, b"\x0a\x05batch", Send::default()).await;
    // unknown: AUTO_APPROVE here, so forwarded; the stand-in's
    // UNIMPLEMENTED arrives in its own trailers-only answer.
    assert_eq!(answer.status, Some(12), "{answer:?}");
    assert_eq!(answer.message.as_deref(), Some("Method not found."));
    assert!(stand_in.seen().iter().any(|s| s.path_and_query == path));
    let decisions = common::decisions(&leash).await;
    let decision = decisions.last().unwrap();
    assert_eq!(decision["details"]["class"], "unknown", "{decision}");
}

async fn rest_mutate(leash: &Harness, customer: &str, body: Value) -> (u16, Value) {
    let response = leash
        .client()
        .post(format!(
            "https://{}/v25/customers/{customer}/campaignBudgets:mutate",
            gads::HOST
        ))
        .header("authorization", "Bearer ya29.rest-token")
        .header("developer-token", "dev-token-rest")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_mutate_is_decided_in_the_looked_up_currency() {
    let (stand_in, leash) = start(UNDER_100).await;
    // $100 is €90 at the policy's rate: under the threshold.
    let body = json!({"operations":[{"create":{"name":"Budget 1","amountMicros":"100000000"}}]});
    let (status, answer) = rest_mutate(&leash, "5550001111", body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["results"][0]["resourceName"]
        .as_str()
        .unwrap()
        .starts_with("customers/5550001111/campaignBudgets/"));
    let decisions = common::decisions(&leash).await;
    let intent = &decisions.last().unwrap()["intent"][0];
    assert_eq!(intent["amount"]["amount"], "100.00");
    assert_eq!(intent["amount"]["currency"], "USD");
    assert_eq!(intent["beneficiary"], "5550001111");
    let looked = searches(&stand_in);
    assert_eq!(looked.len(), 1);
    assert_eq!(looked[0].headers["authorization"], "Bearer ya29.rest-token");

    // $120 = €108: refused in Google's JSON error shape.
    let body = json!({"operations":[{"create":{"amount_micros":120000000}}]});
    let (status, answer) = rest_mutate(&leash, "5550001111", body).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(answer["error"]["code"], 403);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("leash_rejected: "));
    assert_eq!(
        answer["error"]["details"][0]["@type"],
        "type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure"
    );
    // The cached currency served the second request.
    assert_eq!(searches(&stand_in).len(), 1);

    // The same key twice is refused outright.
    let response = leash
        .client()
        .post(format!(
            "https://{}/v25/customers/1234567890/campaignBudgets:mutate",
            gads::HOST
        ))
        .header("authorization", "Bearer ya29.rest-token")
        .header("developer-token", "dev-token-rest")
        .header("content-type", "application/json")
        .body(
            r#"{"operations":[{"create":{"amountMicros":"1000000","amountMicros":"900000000"}}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("leash_ambiguous: "),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_accounts_spare_the_lookup() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let addr = stand_in.addr;
    let leash = Harness::start_with_policy(addr, &ca, UNDER_100, |c| {
        gads::point_at(c, addr);
        c.vendors
            .google_ads
            .accounts
            .insert("1234567890".into(), "JPY".into());
    })
    .await;
    let answer =
        gads::mutate_campaign_budgets(&leash, &gads::create_budget("1234567890", 5_000_000_000))
            .await;
    // ¥5000 is not EUR and the policy has no JPY rate: not decided as an
    // amount leash could convert, so never approved blind.
    assert_ne!(answer.status, Some(0), "{answer:?}");
    assert!(searches(&stand_in).is_empty());
    let decisions = common::decisions(&leash).await;
    let intent = &decisions.last().unwrap()["intent"][0];
    assert_eq!(intent["amount"]["amount"], "5000", "{intent}");
    assert_eq!(intent["amount"]["currency"], "JPY");
    assert_eq!(intent["sources"]["currency"], "vendors.google_ads.accounts");
}
