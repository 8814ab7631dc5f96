//! The stand-in vendor (`tests/common/stand_in.rs`) behind a real leash:
//! answers come from an in-memory Stripe, lookups reach it, its errors pass
//! through unchanged; and on its own, it answers in Stripe's shapes.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::Value;
use stand_in::StandIn;

/// Everything readable goes through; what leash cannot read is held.
const POLICY: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: AUTO_APPROVE
unreadable: REQUIRE_HUMAN
rules: []
"#;

const KEY: &str = "sk_test_standin_0123456789";

async fn post(
    client: &reqwest::Client,
    path: &str,
    idempotency_key: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client
        .post(format!("https://api.stripe.com{path}"))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn get(client: &reqwest::Client, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("https://api.stripe.com{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client straight to the stand-in (no leash), trusting only its CA.
fn direct(stand_in: &StandIn, ca: &TestCa) -> reqwest::Client {
    leash::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .resolve("api.stripe.com", stand_in.addr)
        .tls_certs_only([ca.reqwest_cert()])
        .build()
        .unwrap()
}

fn charge_gets(stand_in: &StandIn, id: &str) -> usize {
    let path = format!("/v1/charges/{id}");
    stand_in
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path_and_query == path)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmed_payment_intent_is_answered_through_leash() {
    let ca = TestCa::new("stand-in test CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = Harness::start_with_policy(stand_in.addr, &ca, POLICY, |_| {}).await;
    let client = leash.client();

    let (status, headers, pi) = post(
        &client,
        "/v1/payment_intents",
        Some("pi-1"),
        "amount=2000&currency=eur&customer=cus_demo&confirm=true&payment_method=pm_card_visa&metadata[order]=6735",
    )
    .await;
    assert_eq!(status, 200, "{pi}");
    assert!(headers.get("x-leash-decision").is_none(), "{headers:?}");
    assert_eq!(pi["object"], "payment_intent");
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["amount"], 2000);
    assert_eq!(pi["amount_received"], 2000);
    assert_eq!(pi["currency"], "eur");
    assert_eq!(pi["customer"], "cus_demo");
    assert_eq!(pi["livemode"], false);
    assert_eq!(pi["metadata"]["order"], "6735");
    let id = pi["id"].as_str().unwrap();
    assert!(id.starts_with("pi_"), "{id}");
    let charge_id = pi["latest_charge"].as_str().unwrap();
    assert!(charge_id.starts_with("ch_"), "{charge_id}");

    // Stored as answered, and its charge with it.
    assert_eq!(stand_in.object(id).unwrap(), pi);
    let charge = stand_in.object(charge_id).unwrap();
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["amount_captured"], 2000);
    assert_eq!(charge["payment_intent"], id);

    // What the stand-in received: leash forwarded the agent's request.
    let seen = stand_in.seen();
    let create = seen
        .iter()
        .find(|s| s.method == "POST" && s.path_and_query == "/v1/payment_intents")
        .unwrap();
    assert_eq!(create.host, "api.stripe.com");
    assert!(std::str::from_utf8(&create.body)
        .unwrap()
        .contains("amount=2000"));

    // A manual capture: authorized first, then captured in part.
    let (status, _, pi) = post(
        &client,
        "/v1/payment_intents",
        Some("pi-2"),
        "amount=5000&currency=eur&confirm=true&capture_method=manual",
    )
    .await;
    assert_eq!(status, 200, "{pi}");
    assert_eq!(pi["status"], "requires_capture");
    assert_eq!(pi["amount_capturable"], 5000);
    assert_eq!(pi["amount_received"], 0);
    let (status, got) = get(
        &client,
        &format!("/v1/payment_intents/{}", pi["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!((status, &got), (200, &pi));
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_are_looked_up_at_the_stand_in_and_its_refusals_pass_through() {
    let ca = TestCa::new("stand-in test CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = Harness::start_with_policy(stand_in.addr, &ca, POLICY, |_| {}).await;
    let client = leash.client();

    // No currency: leash reads it from the charge it looks up.
    let (status, _, refund) = post(
        &client,
        "/v1/refunds",
        Some("re-1"),
        "charge=ch_demo&amount=5000",
    )
    .await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["object"], "refund");
    assert_eq!(refund["amount"], 5000);
    assert_eq!(refund["currency"], "eur");
    assert_eq!(refund["charge"], "ch_demo");
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(
        charge_gets(&stand_in, "ch_demo"),
        1,
        "leash looked ch_demo up"
    );
    let lookup = stand_in
        .seen()
        .into_iter()
        .find(|s| s.method == "GET")
        .unwrap();
    assert_eq!(
        lookup.headers["authorization"],
        format!("Bearer {KEY}").as_str(),
        "the lookup carries the agent's own key"
    );
    let charge = stand_in.object("ch_demo").unwrap();
    assert_eq!(charge["amount_refunded"], 5000);
    assert_eq!(charge["refunded"], false);

    // More than the €150.00 that remains: the stand-in refuses as Stripe
    // does, and the agent gets that answer unchanged.
    let (status, headers, error) = post(
        &client,
        "/v1/refunds",
        Some("re-2"),
        "charge=ch_demo&amount=20000",
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(headers.get("x-leash-decision").is_none(), "{headers:?}");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["code"], "amount_too_large");
    assert_eq!(error["error"]["param"], "amount");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("150.00"),
        "{error}"
    );
    assert_eq!(
        charge_gets(&stand_in, "ch_demo"),
        2,
        "looked up again after the first refund"
    );

    // No amount: the rest of the charge.
    let (status, _, refund) = post(&client, "/v1/refunds", Some("re-3"), "charge=ch_demo").await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["amount"], 15000);
    let charge = stand_in.object("ch_demo").unwrap();
    assert_eq!(charge["amount_refunded"], 20000);
    assert_eq!(charge["refunded"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_idempotency_key_replays_and_other_parameters_are_refused() {
    let ca = TestCa::new("stand-in test CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = Harness::start_with_policy(stand_in.addr, &ca, POLICY, |_| {}).await;
    let client = leash.client();
    let body = "amount=1500&currency=eur&customer=cus_demo";

    let (status, headers, first) = post(&client, "/v1/payment_intents", Some("idem-1"), body).await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(first["status"], "requires_payment_method");

    let (status, headers, again) = post(&client, "/v1/payment_intents", Some("idem-1"), body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first, "the saved answer, not a second PaymentIntent");
    assert_eq!(headers["idempotent-replayed"], "true");
    let created = stand_in
        .answered()
        .iter()
        .filter(|a| a.method == "POST" && a.path == "/v1/payment_intents")
        .count();
    assert_eq!(created, 2, "both reached the stand-in");

    let (status, _, error) = post(
        &client,
        "/v1/payment_intents",
        Some("idem-1"),
        "amount=1600&currency=eur&customer=cus_demo",
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["type"], "idempotency_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_its_own_it_answers_in_stripes_shapes() {
    let ca = TestCa::new("stand-in test CA");
    let stand_in = StandIn::start(&ca).await;
    // Other vendors are played beside Stripe (graph.facebook.com, …).
    assert!(stand_in.hosts().contains(&"api.stripe.com"));
    assert!(stand_in.hosts().contains(&"googleads.googleapis.com"));
    let client = direct(&stand_in, &ca);

    // A missing object.
    let response = client
        .get("https://api.stripe.com/v1/charges/ch_missing")
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    assert_eq!(response.status(), 404);
    assert!(response.headers()["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["param"], "id");
    assert_eq!(body["error"]["message"], "No such charge: 'ch_missing'");
    // An id of another kind is not there either.
    let (status, body) = get(&client, "/v1/charges/pi_demo").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&client, "/v1/payment_intents/pi_nope").await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (404, &Value::from("No such PaymentIntent: 'pi_nope'"))
    );

    // The seeded objects.
    let (status, charge) = get(&client, "/v1/charges/ch_demo").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &charge["amount"],
            &charge["amount_captured"],
            &charge["amount_refunded"],
            &charge["currency"]
        ),
        (&20000.into(), &20000.into(), &0.into(), &"eur".into())
    );
    let (_, pi) = get(&client, "/v1/payment_intents/pi_demo").await;
    assert_eq!(
        (pi["amount"].as_u64(), pi["status"].as_str()),
        (Some(12000), Some("requires_confirmation"))
    );
    let (_, price) = get(&client, "/v1/prices/price_demo").await;
    assert_eq!(price["unit_amount"], 1500);
    let (_, invoice) = get(&client, "/v1/invoices/in_demo").await;
    assert_eq!(
        (
            invoice["amount_remaining"].as_u64(),
            invoice["customer"].as_str()
        ),
        (Some(8000), Some("cus_demo"))
    );
    let (_, customers) = get(&client, "/v1/customers").await;
    assert_eq!(customers["object"], "list");
    assert_eq!(customers["data"][0]["id"], "cus_demo");

    // No key, a live key: 401.
    let response = client
        .get("https://api.stripe.com/v1/charges/ch_demo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You did not provide an API key"));
    let response = client
        .get("https://api.stripe.com/v1/charges/ch_demo")
        .bearer_auth("sk_live_0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("0123456789abcdef"),
        "the key is masked: {body}"
    );
    // curl's -u sk_test_…: (Basic) works as well.
    let response = client
        .get("https://api.stripe.com/v1/charges/ch_demo")
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // An unknown path.
    let (status, _, body) = post(&client, "/v1/nonsense", None, "amount=1").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (POST: /v1/nonsense)"));

    // Bad input is a Stripe 400, never a crash.
    for (path, form, code, param) in [
        (
            "/v1/payment_intents",
            "amount=12.5&currency=eur",
            "parameter_invalid_integer",
            "amount",
        ),
        (
            "/v1/payment_intents",
            "currency=eur",
            "parameter_missing",
            "amount",
        ),
        (
            "/v1/payment_intents",
            "amount=10&currency=eur",
            "amount_too_small",
            "amount",
        ),
        (
            "/v1/payment_intents",
            "amount=100&currency=eur&customer=cus_nope",
            "resource_missing",
            "customer",
        ),
        (
            "/v1/refunds",
            "charge=ch_nope",
            "resource_missing",
            "charge",
        ),
        ("/v1/refunds", "amount=%ZZ", "parameter_missing", ""),
        (
            "/v1/payment_intents/pi_demo/capture",
            "",
            "payment_intent_unexpected_state",
            "",
        ),
    ] {
        let (status, _, body) = post(&client, path, None, form).await;
        assert_eq!(status, 400, "{path} {form}: {body}");
        assert_eq!(body["error"]["code"], code, "{path} {form}: {body}");
        if !param.is_empty() {
            assert_eq!(body["error"]["param"], param, "{path} {form}: {body}");
        }
    }
    let response = client
        .post("https://api.stripe.com/v1/customers")
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // The rest of the API a quickstart touches.
    let (status, _, pi) = post(&client, "/v1/payment_intents/pi_demo/confirm", None, "").await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("succeeded")),
        "{pi}"
    );
    let (status, _, refund) = post(
        &client,
        "/v1/refunds",
        None,
        "payment_intent=pi_demo&amount=2000",
    )
    .await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["charge"], pi["latest_charge"]);
    let (status, _, invoice) = post(&client, "/v1/invoices/in_demo/pay", None, "").await;
    assert_eq!(
        (
            status,
            invoice["status"].as_str(),
            invoice["amount_paid"].as_u64()
        ),
        (200, Some("paid"), Some(8000)),
        "{invoice}"
    );
    let (status, _, transfer) = post(
        &client,
        "/v1/transfers",
        None,
        "amount=700&currency=eur&destination=acct_1ABC",
    )
    .await;
    assert_eq!(
        (status, transfer["object"].as_str()),
        (200, Some("transfer")),
        "{transfer}"
    );
    let (status, _, payout) = post(&client, "/v1/payouts", None, "amount=900&currency=eur").await;
    assert_eq!(
        (status, payout["status"].as_str()),
        (200, Some("pending")),
        "{payout}"
    );
    let (status, _, price) = post(
        &client,
        "/v1/prices",
        None,
        "unit_amount=990&currency=eur&product=prod_demo&recurring[interval]=month",
    )
    .await;
    assert_eq!(
        (status, price["type"].as_str()),
        (200, Some("recurring")),
        "{price}"
    );
    let (status, _, customer) = post(
        &client,
        "/v1/customers",
        None,
        "name=Ada&email=ada%40example.com",
    )
    .await;
    assert_eq!(
        (status, customer["email"].as_str()),
        (200, Some("ada@example.com")),
        "{customer}"
    );
    let (status, _, declined) = post(
        &client,
        "/v1/payment_intents",
        None,
        "amount=900&currency=eur&confirm=true&payment_method=pm_card_chargeDeclined",
    )
    .await;
    assert_eq!(
        (status, declined["error"]["type"].as_str()),
        (402, Some("card_error")),
        "{declined}"
    );
    let (status, _, canceled) = post(
        &client,
        "/v1/payment_intents",
        None,
        "amount=900&currency=eur&confirm=true&capture_method=manual",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, canceled) = post(
        &client,
        &format!(
            "/v1/payment_intents/{}/cancel",
            canceled["id"].as_str().unwrap()
        ),
        None,
        "",
    )
    .await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled")),
        "{canceled}"
    );

    // Everything was recorded, and answered once each.
    assert_eq!(stand_in.seen().len(), stand_in.answered().len());
}

/// `examples/quickstart.yaml` loads, and its stack (cs-agent) does with the
/// stand-in what the file's comments promise: EUR 40 through, EUR 150 held
/// until a supervisor approves, EUR 600 refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_does_what_its_comments_say() {
    let quickstart =
        leash::config::Config::load(Some(std::path::Path::new("examples/quickstart.yaml")))
            .unwrap();
    assert_eq!(
        quickstart.upstream.overrides["api.stripe.com"].port, 12111,
        "the stand-in's default --listen"
    );
    assert!(quickstart
        .upstream
        .extra_ca
        .as_ref()
        .unwrap()
        .ends_with("stand-in/stand-in-ca.pem"));
    let stack = std::fs::read_to_string(quickstart.policies.join("cs-agent.yaml")).unwrap();

    let ca = TestCa::new("stand-in test CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = Harness::start_with_policy(stand_in.addr, &ca, &stack, |config| {
        config.agents = quickstart.agents.clone();
        config.fx = quickstart.fx.clone();
        config.approvers.people = quickstart.approvers.people.clone();
        config.approvers.groups = quickstart.approvers.groups.clone();
        config.holds.wait = std::time::Duration::from_secs(30);
    })
    .await;
    let client = leash.client_as("cs-agent", "dev-token-cs");
    let refunds = |client: reqwest::Client, amount: u32| async move {
        post(
            &client,
            "/v1/refunds",
            None,
            &format!("charge=ch_demo&amount={amount}"),
        )
        .await
    };

    let (status, _, refund) = refunds(client.clone(), 4000).await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["object"], "refund");

    let (status, headers, refused) = refunds(client.clone(), 60000).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "leash_rejected");
    assert_eq!(headers["x-leash-rule"], "20");

    let waiting = tokio::spawn(refunds(client.clone(), 15000));
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let mut hold = None;
    for _ in 0..200 {
        let pending: Value = admin
            .get(format!("{base}/v1/holds?state=pending"))
            .bearer_auth("dev-token-chen")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = pending["holds"][0]["id"].as_str() {
            hold = Some(id.to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let hold = hold.expect("the EUR 150 refund is held");
    let posted = || {
        stand_in
            .seen()
            .iter()
            .filter(|s| s.method == "POST")
            .count()
    };
    assert_eq!(posted(), 1, "only the EUR 40 refund reached the stand-in");
    let approved = admin
        .post(format!("{base}/v1/holds/{hold}/approve"))
        .bearer_auth("dev-token-chen")
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let (status, _, refund) = waiting.await.unwrap();
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["amount"], 15000);
    assert_eq!(
        stand_in.object("ch_demo").unwrap()["amount_refunded"],
        19000
    );
}
