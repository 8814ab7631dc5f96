//! Stripe operations whose amount is not (all) in the request, end to end
//! through a real leash: a PaymentIntent confirm, an invoice payment, a
//! checkout session naming a Price, and a v2 outbound payment. leash looks
//! the missing part up on the stand-in Stripe with the agent's own key and
//! `Stripe-Account`, decides on it (auto-approved up to €100, held above),
//! and records where each value came from; a lookup that fails is held as
//! unreadable and never forwarded. An object Stripe's answer already
//! described (a created PaymentIntent) is learned, not looked up.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa, Upstream};
use serde_json::Value;

const KEY: &str = "Bearer sk_test_ops_agent_key";
const ACCOUNT: &str = "acct_1Connected";

/// Up to €100 goes through; above, a person decides (as do requests leash
/// cannot read, and unknown ones).
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
    amount: { gt: 100 }
    approvers: [maya]
    description: More than €100 needs a person
"#;

/// maya, who may release what the policy holds.
fn maya(config: &mut leash::config::Config) {
    use sha2::Digest;
    config.approvers.people.insert(
        "maya".into(),
        leash::config::Person {
            token_sha256: Some(sha2::Sha256::digest(b"maya-token-0123456789").into()),
            slack: None,
        },
    );
}

struct Answered {
    status: u16,
    retry: Option<String>,
    json: Value,
}

impl Answered {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// A POST as stripe-python sends it (v1: a form; v2: JSON), with the
/// agent's key and connected account.
async fn post(
    client: &reqwest::Client,
    path: &str,
    content_type: &str,
    body: &str,
    idempotency_key: &str,
) -> Answered {
    let response = client
        .post(format!("https://api.stripe.com{path}"))
        .header("authorization", KEY)
        .header("stripe-account", ACCOUNT)
        .header("content-type", content_type)
        .header("idempotency-key", idempotency_key)
        .header("stripe-version", "2026-06-24.dahlia")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("stripe-should-retry")
        .map(|v| v.to_str().unwrap().to_string());
    let json = response.json().await.unwrap_or(Value::Null);
    Answered {
        status,
        retry,
        json,
    }
}

async fn form(client: &reqwest::Client, path: &str, body: &str, key: &str) -> Answered {
    post(client, path, "application/x-www-form-urlencoded", body, key).await
}

fn payment_intent(id: &str, amount: u64, currency: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"payment_intent","amount":{amount},"amount_capturable":0,"currency":"{currency}","customer":"cus_1","status":"requires_confirmation","transfer_data":null,"on_behalf_of":null}}"#
    )
}

/// The `nth` decision about `operation`.
fn decision<'d>(all: &'d [Value], operation: &str, nth: usize) -> &'d Value {
    all.iter()
        // A spend records its intents (a list); an unreadable or unknown
        // request the one operation it was read as.
        .filter(|d| {
            d["intent"][0]["operation"] == operation || d["intent"]["operation"] == operation
        })
        .nth(nth)
        .unwrap_or_else(|| panic!("no decision {nth} for {operation} in {all:#?}"))
}

/// The stand-in Stripe with the objects the tests look up, and a leash
/// in front of it.
async fn start() -> (Upstream, Harness) {
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    stripe.answer(
        "/v1/payment_intents/pi_small",
        200,
        &payment_intent("pi_small", 5000, "eur"),
    );
    stripe.answer(
        "/v1/payment_intents/pi_big",
        200,
        &payment_intent("pi_big", 50000, "eur"),
    );
    stripe.answer(
        "/v1/invoices/in_1",
        200,
        r#"{"id":"in_1","object":"invoice","amount_due":90000,"amount_remaining":4000,"currency":"eur","customer":"cus_7","status":"open"}"#,
    );
    stripe.answer(
        "/v1/prices/price_1",
        200,
        r#"{"id":"price_1","object":"price","billing_scheme":"per_unit","currency":"eur","custom_unit_amount":null,"recurring":null,"transform_quantity":null,"type":"one_time","unit_amount":2500,"unit_amount_decimal":"2500"}"#,
    );
    stripe.answer(
        "/v1/payment_intents/pi_gone",
        404,
        r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent: 'pi_gone'"}}"#,
    );
    let leash = Harness::start_with_policy(stripe.addr, &ca, POLICY, maya).await;
    (stripe, leash)
}

fn posts_to(stripe: &Upstream, path: &str) -> Vec<common::Seen> {
    stripe
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path_and_query == path)
        .collect()
}

fn gets_of(stripe: &Upstream, path: &str) -> Vec<common::Seen> {
    stripe
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path_and_query == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_is_decided_on_the_looked_up_payment_intent() {
    let (stripe, leash) = start().await;
    let client = leash.client();

    // stripe.PaymentIntent.confirm("pi_small", payment_method="pm_card_visa"):
    // €50 from the looked-up PaymentIntent, approved and forwarded.
    let confirm = "/v1/payment_intents/pi_small/confirm";
    let ok = form(
        &client,
        confirm,
        "payment_method=pm_card_visa",
        "k-confirm-1",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let got = gets_of(&stripe, "/v1/payment_intents/pi_small");
    assert_eq!(got.len(), 1, "looked up once");
    assert_eq!(got[0].headers["authorization"], KEY, "the agent's own key");
    assert_eq!(
        got[0].headers["stripe-version"], "2026-06-24.dahlia",
        "the API version the agent pinned"
    );
    assert_eq!(
        got[0].headers["stripe-account"], ACCOUNT,
        "the same account"
    );
    assert!(got[0].body.is_empty());
    let forwarded = posts_to(&stripe, confirm);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(&forwarded[0].body[..], b"payment_method=pm_card_visa");
    assert_eq!(forwarded[0].headers["stripe-account"], ACCOUNT);
    let seen = stripe.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[1].method.as_str()),
        ("GET", "POST"),
        "looked up before forwarding"
    );

    // €500 on the other PaymentIntent: held for a person, not forwarded.
    let big = "/v1/payment_intents/pi_big/confirm";
    let held = form(&client, big, "", "k-confirm-2").await;
    assert_eq!(
        (held.status, held.code()),
        (403, "leash_held"),
        "{}",
        held.json
    );
    assert_eq!(held.retry.as_deref(), Some("false"));
    assert_eq!(held.json["error"]["type"], "invalid_request_error");
    assert!(posts_to(&stripe, big).is_empty());
    assert_eq!(gets_of(&stripe, "/v1/payment_intents/pi_big").len(), 1);

    let all = common::decisions(&leash).await;
    let confirmed = decision(&all, "payment_intent.confirm", 0);
    assert_eq!(confirmed["decision"], "AUTO_APPROVE", "{confirmed}");
    let intent = &confirmed["intent"][0];
    assert_eq!(intent["amount"]["amount"], "50.00", "{intent}");
    assert_eq!(intent["amount"]["currency"], "EUR");
    assert_eq!(intent["account"], ACCOUNT);
    assert_eq!(intent["beneficiary"], "cus_1");
    assert_eq!(
        intent["sources"]["currency"],
        "eur (GET /v1/payment_intents/pi_small)"
    );
    assert!(
        intent["sources"]["amount"]
            .as_str()
            .unwrap()
            .contains("the PaymentIntent's `amount`"),
        "{intent}"
    );
    let big = decision(&all, "payment_intent.confirm", 1);
    assert_eq!(big["decision"], "REQUIRE_HUMAN", "{big}");
    assert_eq!(big["intent"][0]["amount"]["amount"], "500.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invoice_payment_is_decided_on_what_is_left_of_it() {
    let (stripe, leash) = start().await;
    let client = leash.client();

    // stripe.Invoice.pay("in_1"): what is left (€40), not the €900 due.
    let pay = form(&client, "/v1/invoices/in_1/pay", "", "k-pay").await;
    assert_eq!(pay.status, 200, "{}", pay.json);
    assert_eq!(posts_to(&stripe, "/v1/invoices/in_1/pay").len(), 1);
    let got = gets_of(&stripe, "/v1/invoices/in_1");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["authorization"], KEY);
    assert_eq!(got[0].headers["stripe-account"], ACCOUNT);
    // Paid out of band: nothing moves through Stripe, nothing looked up.
    let oob = form(
        &client,
        "/v1/invoices/in_1/pay",
        "paid_out_of_band=true",
        "k-oob",
    )
    .await;
    assert_eq!(oob.status, 200, "{}", oob.json);
    assert_eq!(gets_of(&stripe, "/v1/invoices/in_1").len(), 1);

    let all = common::decisions(&leash).await;
    let paid = decision(&all, "invoice.pay", 0);
    assert_eq!(paid["decision"], "AUTO_APPROVE", "{paid}");
    assert_eq!(paid["intent"][0]["amount"]["amount"], "40.00");
    assert_eq!(paid["intent"][0]["beneficiary"], "cus_7");
    assert_eq!(paid["intent"][0]["category"], "invoice");
    assert!(paid["intent"][0]["sources"]["amount"]
        .as_str()
        .unwrap()
        .contains("`amount_remaining`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_session_is_priced_with_the_looked_up_price() {
    let (stripe, leash) = start().await;
    let client = leash.client();

    // 2 × €25 is approved, 5 × €25 held.
    let session = |quantity: u32| {
        format!(
            "mode=payment&success_url=https%3A%2F%2Fx.example%2Fok&line_items[0][price]=price_1&line_items[0][quantity]={quantity}"
        )
    };
    let ok = form(&client, "/v1/checkout/sessions", &session(2), "k-cs-1").await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let held = form(&client, "/v1/checkout/sessions", &session(5), "k-cs-2").await;
    assert_eq!(
        (held.status, held.code()),
        (403, "leash_held"),
        "{}",
        held.json
    );
    let forwarded = posts_to(&stripe, "/v1/checkout/sessions");
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].body, session(2).into_bytes());
    let price_gets = gets_of(&stripe, "/v1/prices/price_1");
    assert_eq!(
        price_gets.len(),
        1,
        "a Price cannot change: the forwarded session leaves it cached"
    );
    assert_eq!(price_gets[0].headers["authorization"], KEY);
    assert_eq!(price_gets[0].headers["stripe-account"], ACCOUNT);

    let all = common::decisions(&leash).await;
    let first = decision(&all, "checkout_session.create", 0);
    assert_eq!(first["decision"], "AUTO_APPROVE", "{first}");
    assert_eq!(first["intent"][0]["amount"]["amount"], "50.00");
    assert_eq!(
        first["intent"][0]["sources"]["line_items[0][price]"],
        "25.00 EUR per unit (GET /v1/prices/price_1)"
    );
    assert_eq!(
        first["intent"][0]["sources"]["currency"],
        "eur (GET /v1/prices/price_1)"
    );
    let second = decision(&all, "checkout_session.create", 1);
    assert_eq!(second["decision"], "REQUIRE_HUMAN", "{second}");
    assert_eq!(second["intent"][0]["amount"]["amount"], "125.00");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_outbound_payment_is_read_from_its_json_body() {
    let (stripe, leash) = start().await;
    let client = leash.client();
    let outbound = |minor: u32| {
        format!(
            r#"{{"amount":{{"value":{minor},"currency":"eur"}},"from":{{"financial_account":"fa_1","currency":"eur"}},"to":{{"recipient":"acct_9","payout_method":"usba_1","currency":"eur"}}}}"#
        )
    };
    let v2 = "/v2/money_management/outbound_payments";
    // €50 approved, €200 held; nothing looked up.
    let ok = post(&client, v2, "application/json", &outbound(5000), "k-v2-1").await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let held = post(&client, v2, "application/json", &outbound(20000), "k-v2-2").await;
    assert_eq!(
        (held.status, held.code()),
        (403, "leash_held"),
        "{}",
        held.json
    );
    // The same body form-encoded is not read: held, never forwarded.
    let odd = form(
        &client,
        v2,
        "amount[value]=5000&amount[currency]=eur",
        "k-v2-3",
    )
    .await;
    assert_eq!(
        (odd.status, odd.code()),
        (403, "leash_held"),
        "{}",
        odd.json
    );
    let forwarded = posts_to(&stripe, v2);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].body, outbound(5000).into_bytes());
    assert!(stripe.seen().iter().all(|s| s.method == "POST"));

    let all = common::decisions(&leash).await;
    let outbound = decision(&all, "v2.outbound_payment.create", 0);
    assert_eq!(outbound["decision"], "AUTO_APPROVE", "{outbound}");
    assert_eq!(outbound["intent"][0]["amount"]["amount"], "50.00");
    assert_eq!(outbound["intent"][0]["beneficiary"], "acct_9");
    assert_eq!(outbound["intent"][0]["category"], "payout");
    assert_eq!(
        decision(&all, "v2.outbound_payment.create", 1)["decision"],
        "REQUIRE_HUMAN"
    );
    let form_encoded = decision(&all, "v2.outbound_payment.create", 2);
    assert!(
        form_encoded.to_string().contains("not application/json"),
        "{form_encoded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_lookup_is_held_as_unreadable_and_never_forwarded() {
    let (stripe, leash) = start().await;
    let client = leash.client();

    // The stand-in answers 404 for the PaymentIntent.
    let confirm = "/v1/payment_intents/pi_gone/confirm";
    let gone = form(&client, confirm, "", "k-gone").await;
    assert_eq!(
        (gone.status, gone.code()),
        (403, "leash_held"),
        "{}",
        gone.json
    );
    assert_eq!(gone.retry.as_deref(), Some("false"));
    assert!(posts_to(&stripe, confirm).is_empty());
    let got = gets_of(&stripe, "/v1/payment_intents/pi_gone");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["authorization"], KEY);
    assert_eq!(got[0].headers["stripe-account"], ACCOUNT);
    // Retried by the SDK: held again, still not forwarded.
    let again = form(&client, confirm, "", "k-gone").await;
    assert_eq!(again.code(), "leash_held", "{}", again.json);
    assert!(posts_to(&stripe, confirm).is_empty());

    let all = common::decisions(&leash).await;
    let gone = all
        .iter()
        .find(|d| d.to_string().contains("pi_gone"))
        .unwrap_or_else(|| panic!("no decision names pi_gone: {all:#?}"));
    assert_eq!(gone["decision"], "REQUIRE_HUMAN", "{gone}");
    let record = gone.to_string();
    assert!(record.contains("404"), "{gone}");
    assert!(record.contains("payment_intent.confirm"), "{gone}");
    assert!(
        !record.contains("sk_test_ops_agent_key"),
        "no key in the record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirm_after_a_create_reads_the_learned_payment_intent() {
    let ca = TestCa::new("stand-in test CA");
    let stripe = stand_in::StandIn::start(&ca).await;
    let leash = Harness::start_with_policy(stripe.addr, &ca, POLICY, maya).await;
    let client = leash.client();

    // stripe.PaymentIntent.create(amount=3000, currency="eur", customer="cus_demo",
    //   payment_method="pm_card_visa"): not confirmed, no money moves yet.
    let created = form(
        &client,
        "/v1/payment_intents",
        "amount=3000&currency=eur&customer=cus_demo&payment_method=pm_card_visa",
        "k-create",
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json);
    assert_eq!(created.json["object"], "payment_intent");
    let id = created.json["id"].as_str().unwrap().to_owned();

    // The confirm is read from the PaymentIntent the create's answer
    // described: €30, approved, with no GET of it.
    let confirm = format!("/v1/payment_intents/{id}/confirm");
    let ok = form(&client, &confirm, "", "k-confirm").await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(ok.json["status"], "succeeded", "{}", ok.json);
    let pi_path = format!("/v1/payment_intents/{id}");
    assert!(
        !stripe
            .seen()
            .iter()
            .any(|s| s.method == "GET" && s.path_and_query == pi_path),
        "learned, not looked up"
    );

    let all = common::decisions(&leash).await;
    let confirmed = decision(&all, "payment_intent.confirm", 0);
    assert_eq!(confirmed["decision"], "AUTO_APPROVE", "{confirmed}");
    assert_eq!(confirmed["intent"][0]["amount"]["amount"], "30.00");
    assert_eq!(confirmed["intent"][0]["beneficiary"], "cus_demo");
    assert_eq!(
        confirmed["intent"][0]["sources"]["currency"],
        "eur (the answer to POST /v1/payment_intents)",
        "cited as learned, not as a GET"
    );

    // The confirm changed the PaymentIntent: a second confirm of it is read
    // against Stripe's object now, looked up.
    let again = form(&client, &confirm, "", "k-confirm-again").await;
    assert_eq!(
        again.status, 400,
        "the stand-in refuses a second confirm: {}",
        again.json
    );
    let lookups = stripe
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path_and_query == pi_path)
        .count();
    assert_eq!(
        lookups, 0,
        "the confirm's own answer was learned in its place"
    );
}
