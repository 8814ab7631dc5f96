//! The acting account (issue 9): Stripe Connect's `Stripe-Account` is an
//! intent field that policies filter on (`accounts:`) and that the audit
//! entry names.

mod common;

use common::{Harness, TestCa, Upstream};
use serde_json::Value;

const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REJECT
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    accounts: [acct_frozen]
    amount: { gte: 1 }
    description: Nothing moves for the frozen connected account
"#;

async fn payout(client: &reqwest::Client, account: Option<&str>) -> (u16, Value) {
    let mut request = client
        .post("https://api.stripe.com/v1/payouts")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=5000&currency=eur");
    if let Some(account) = account {
        request = request.header("stripe-account", account);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_filters_on_the_acting_account_and_the_chain_names_it() {
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(stripe.addr, &ca, POLICY, |_| {}).await;
    let client = leash.client();

    let (status, body) = payout(&client, Some("acct_frozen")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "leash_rejected");
    let (status, _) = payout(&client, Some("acct_open")).await;
    assert_eq!(status, 200);
    let (status, _) = payout(&client, None).await;
    assert_eq!(status, 200, "no account: the rule does not look at it");
    assert_eq!(stripe.seen().len(), 2);

    let audit: Value = common::admin_get(
        &leash,
        &format!("http://{}/v1/audit?limit=100", leash.running.admin_addr),
    )
    .await
    .json()
    .await
    .unwrap();
    let decisions: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "decision")
        .collect();
    assert_eq!(
        decisions[0]["intent"][0]["account"], "acct_frozen",
        "{}",
        decisions[0]
    );
    assert_eq!(decisions[0]["decision"], "REJECT");
    assert_eq!(decisions[1]["intent"][0]["account"], "acct_open");
    assert!(
        decisions[2]["intent"][0].get("account").is_none(),
        "{}",
        decisions[2]
    );
}
