//! Wise through a real leash, against the Wise stand-in
//! (`tests/common/stand_in/wise.rs`): the funding call — the one request
//! that moves money, with no amount in it — is decided on the transfer
//! leash learned from Wise's answer to its creation, and after a restart
//! (nothing learned) on the transfer it looks up with the agent's own
//! token. Refusals carry Wise's error shape and no SCA header; recipient
//! creation is recorded in the audit chain.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::{json, Value};
use stand_in::StandIn;

const TOKEN: &str = "Bearer wise-personal-token-0123456789";
const HOST: &str = "api.wise.com";
const PROFILE: &str = "12345";

/// Funding over €1,000 is refused; everything leash reads is counted.
const POLICY: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
approvers: [maya]
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gt: 1000 }
    description: No Wise transfer over €1,000
"#;

async fn start(stand_in: &StandIn, ca: &TestCa) -> Harness {
    let addr = stand_in.addr;
    Harness::start_with_policy(addr, ca, POLICY, move |config| {
        config.approvers.people.insert(
            "maya".to_string(),
            leash::config::Person {
                token_sha256: Some([7; 32]),
                slack: None,
            },
        );
        for host in [HOST, "api.transferwise.com"] {
            config.upstream.overrides.insert(
                host.to_string(),
                leash::config::HostPort {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                },
            );
        }
    })
    .await
}

/// A call as Wise's samples make it (`fetch` with a JSON body and the
/// bearer token).
async fn call(
    client: &reqwest::Client,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client
        .request(method.parse().unwrap(), format!("https://{HOST}{path}"))
        .header("authorization", TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Steps 1–3 of research §5.2: a quote for `amount` EUR, a recipient, an
/// unfunded transfer. Returns the transfer's id and recipient id.
async fn transfer_of(client: &reqwest::Client, amount: u32) -> (String, String) {
    let (status, _, quote) = call(
        client,
        "POST",
        &format!("/v3/profiles/{PROFILE}/quotes"),
        json!({"sourceCurrency": "EUR", "targetCurrency": "GBP", "sourceAmount": amount, "targetAmount": null}),
    )
    .await;
    assert_eq!(status, 200, "{quote}");
    let (status, _, recipient) = call(
        client,
        "POST",
        "/v1/accounts",
        json!({"accountHolderName": "John Smith", "currency": "GBP", "type": "sort_code",
               "details": {"legalType": "PRIVATE", "sortCode": "231470", "accountNumber": "28821822"}}),
    )
    .await;
    assert_eq!(status, 200, "{recipient}");
    let (status, _, transfer) = call(
        client,
        "POST",
        "/v1/transfers",
        json!({"targetAccount": recipient["id"], "quoteUuid": quote["id"],
               "customerTransactionId": uuid::Uuid::new_v4().to_string(),
               "details": {"reference": "invoice 42", "transferPurpose": "verification.transfers.purpose.pay.bills"}}),
    )
    .await;
    assert_eq!(status, 200, "{transfer}");
    (transfer["id"].to_string(), recipient["id"].to_string())
}

async fn fund(
    client: &reqwest::Client,
    transfer: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    call(
        client,
        "POST",
        &format!("/v3/profiles/{PROFILE}/transfers/{transfer}/payments"),
        json!({"type": "BALANCE"}),
    )
    .await
}

fn fundings(stand_in: &StandIn, transfer: &str) -> usize {
    let path = format!("/v3/profiles/{PROFILE}/transfers/{transfer}/payments");
    stand_in
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path_and_query == path)
        .count()
}

fn transfer_gets(stand_in: &StandIn, transfer: &str) -> Vec<common::Seen> {
    let path = format!("/v1/transfers/{transfer}");
    stand_in
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path_and_query == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn funding_is_decided_on_the_learned_then_the_looked_up_transfer() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = start(&stand_in, &ca).await;
    let client = leash.client();

    // Learned: the transfer's creation passed through leash.
    let (small, recipient) = transfer_of(&client, 500).await;
    let (status, _, body) = fund(&client, &small).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"type": "BALANCE", "status": "COMPLETED", "errorCode": null})
    );
    assert_eq!(fundings(&stand_in, &small), 1);
    assert!(
        transfer_gets(&stand_in, &small).is_empty(),
        "learned, not looked up"
    );
    let decided = common::decisions(&leash).await;
    let last = decided.last().unwrap();
    assert_eq!(last["decision"], "AUTO_APPROVE");
    let intent = &last["intent"][0];
    assert_eq!(intent["vendor"], "wise");
    assert_eq!(intent["operation"], "transfer.fund");
    assert_eq!(
        intent["amount"],
        json!({"amount": "500.00", "currency": "EUR"})
    );
    assert_eq!(intent["beneficiary"], recipient);
    assert_eq!(
        intent["sources"]["amount"],
        "sourceValue (the answer to POST /v1/transfers)"
    );

    // Over €1,000: refused in Wise's shape, without any SCA header, and
    // never sent.
    let (big, _) = transfer_of(&client, 2500).await;
    let (status, headers, body) = fund(&client, &big).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["code"], "leash_rejected", "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("leash"));
    assert!(
        headers
            .keys()
            .all(|name| !name.as_str().starts_with("x-2fa")),
        "{headers:?}"
    );
    assert_eq!(fundings(&stand_in, &big), 0);

    // Made before a restart: leash learned nothing it still knows, so it
    // looks the transfer up with the agent's own token.
    let (later, _) = transfer_of(&client, 300).await;
    // A leash stops when its connections are gone (sled's lock goes with
    // the last of them).
    drop(client);
    let leash = leash.restart().await;
    let client = leash.client();
    let (status, _, body) = fund(&client, &later).await;
    assert_eq!(status, 200, "{body}");
    let gets = transfer_gets(&stand_in, &later);
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].headers["authorization"], TOKEN);
    assert_eq!(fundings(&stand_in, &later), 1);
    let decided = common::decisions(&leash).await;
    let intent = &decided.last().unwrap()["intent"][0];
    assert_eq!(
        intent["amount"],
        json!({"amount": "300.00", "currency": "EUR"})
    );
    assert_eq!(
        intent["sources"]["amount"],
        format!("sourceValue (GET /v1/transfers/{later})")
    );

    // The same after a restart for the refused one: looked up, refused.
    let (status, _, body) = fund(&client, &big).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (403, Some("leash_rejected"))
    );
    assert_eq!(fundings(&stand_in, &big), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_leash_cannot_look_up_is_held_and_recipients_are_recorded() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let leash = start(&stand_in, &ca).await;
    let client = leash.client();

    // Wise does not know the transfer: the lookup fails, the call is
    // unreadable and held, never forwarded.
    let (status, headers, body) = fund(&client, "999999").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["code"], "leash_held", "{body}");
    assert!(headers
        .keys()
        .all(|name| !name.as_str().starts_with("x-2fa")));
    assert_eq!(fundings(&stand_in, "999999"), 0);

    // A batch group funded at once: one intent per transfer.
    let (status, _, group) = call(
        &client,
        "POST",
        &format!("/v3/profiles/{PROFILE}/batch-groups"),
        json!({"name": "November", "sourceCurrency": "EUR"}),
    )
    .await;
    assert_eq!(status, 200, "{group}");
    let batch = group["id"].as_str().unwrap().to_string();
    for amount in [100, 250] {
        let (_, _, quote) = call(
            &client,
            "POST",
            &format!("/v3/profiles/{PROFILE}/quotes"),
            json!({"sourceCurrency": "EUR", "targetCurrency": "GBP", "sourceAmount": amount, "targetAmount": null}),
        )
        .await;
        let (_, _, recipient) = call(
            &client,
            "POST",
            "/v1/accounts",
            json!({"accountHolderName": "Seller", "currency": "GBP", "type": "sort_code",
                   "details": {"legalType": "BUSINESS", "sortCode": "231470", "accountNumber": "28821822"}}),
        )
        .await;
        let (status, _, transfer) = call(
            &client,
            "POST",
            &format!("/v3/profiles/{PROFILE}/batch-groups/{batch}/transfers"),
            json!({"targetAccount": recipient["id"], "quoteUuid": quote["id"],
                   "customerTransactionId": uuid::Uuid::new_v4().to_string(), "details": {"reference": "payout"}}),
        )
        .await;
        assert_eq!(status, 200, "{transfer}");
    }
    let (status, _, _) = call(
        &client,
        "PATCH",
        &format!("/v3/profiles/{PROFILE}/batch-groups/{batch}"),
        json!({"status": "COMPLETED", "version": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = call(
        &client,
        "POST",
        &format!("/2026Q3/profiles/{PROFILE}/batch-payments/{batch}/payments"),
        json!({"type": "BALANCE"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let decided = common::decisions(&leash).await;
    let intents = decided.last().unwrap()["intent"]
        .as_array()
        .unwrap()
        .clone();
    let amounts: Vec<&Value> = intents.iter().map(|i| &i["amount"]["amount"]).collect();
    assert_eq!(amounts, [&json!("100.00"), &json!("250.00")]);
    assert!(intents.iter().all(|i| i["operation"] == "batch_group.fund"));

    // Every recipient creation is an `event` entry, its account number
    // masked.
    let audit: Value = common::admin_get(
        &leash,
        &format!("http://{}/v1/audit?limit=1000", leash.running.admin_addr),
    )
    .await
    .json()
    .await
    .unwrap();
    let events: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let record = &events[0]["intent"]["record"];
    assert_eq!(events[0]["intent"]["operation"], "recipient.create");
    assert_eq!(record["accountHolderName"], "Seller");
    assert_eq!(record["details"]["accountNumber"], "****1822");
    assert_eq!(record["details"]["sortCode"], "231470");
    assert!(!audit.to_string().contains("28821822"));
    assert!(!audit.to_string().contains("wise-personal-token"));
}
