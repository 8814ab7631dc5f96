//! SEPA through the proxy (issue 13): pain.001 batches and Berlin Group
//! JSON payments to a stand-in bank on `api.bank.example`, decided per
//! credit transfer; hazardous XML refused; refusals in Berlin Group's
//! `tppMessages` shape.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::Value;
use stand_in::sepa::pain001;

const BANK: &str = "api.bank.example";
const BULK_XML: &str = "https://api.bank.example/v1/bulk-payments/pain.001-sepa-credit-transfers";

/// Transfers above €1,000 are refused; the rest pass.
const POLICY: &str = r#"
agent: "*"
currency: EUR
default: AUTO_APPROVE
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
approvers: [ops]
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gt: 1000 }
    description: no transfer above €1,000
"#;

async fn start() -> (Harness, stand_in::StandIn) {
    let ca = TestCa::new("test public CA");
    let bank = stand_in::StandIn::start(&ca).await;
    let addr = bank.addr;
    let leash = Harness::start_with_policy(addr, &ca, POLICY, |config| {
        config.vendors.sepa.hosts = vec![BANK.to_string()];
        config.upstream.overrides.insert(
            BANK.into(),
            leash::config::HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
        );
        config
            .approvers
            .people
            .insert("olga".into(), Default::default());
        config
            .approvers
            .groups
            .insert("ops".into(), vec!["olga".into()]);
    })
    .await;
    (leash, bank)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client
        .post(url)
        .header("content-type", content_type)
        .header("x-request-id", "99391c7e-ad88-49ec-a2ad-99ddcb1f7721")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn bank_posts(bank: &stand_in::StandIn) -> usize {
    bank.answered()
        .iter()
        .filter(|a| a.host == BANK && a.method == "POST")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pain_001_batch_is_decided_per_transaction() {
    let (leash, bank) = start().await;
    let client = leash.client();

    let fine = pain001(
        "B-1",
        "1500.00",
        &[
            ("1000.00", "DE02100100109307118603", "Seller A"),
            ("500", "FR76 1234 5987 6501 2345 6789 014", "Seller B"),
        ],
    );
    let (status, _, body) = post(&client, BULK_XML, "application/xml", fine).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["transactionStatus"], "RCVD");
    assert_eq!(body["numberOfTransactions"], 2);
    let id = body["paymentId"].as_str().unwrap().to_string();

    // One transfer of three is over the limit: the whole file is refused.
    let over = pain001(
        "B-2",
        "1601.00",
        &[
            ("100.00", "DE02100100109307118603", "Seller A"),
            ("1000.01", "NL91ABNA0417164300", "Seller C"),
            ("500.99", "FR7612345987650123456789014", "Seller B"),
        ],
    );
    let (status, headers, body) = post(&client, BULK_XML, "application/xml", over).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["x-leash-decision"], "rejected");
    assert_eq!(body["tppMessages"][0]["category"], "ERROR");
    assert_eq!(body["tppMessages"][0]["code"], "SERVICE_BLOCKED");
    let text = body["tppMessages"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("leash_rejected: "), "{text}");
    assert!(headers.get("stripe-should-retry").is_none());
    assert_eq!(
        bank_posts(&bank),
        1,
        "the refused file never reached the bank"
    );

    let decisions = common::decisions(&leash).await;
    let first = &decisions[0];
    assert_eq!(first["intent"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["intent"][0]["amount"]["amount"], "1000.00");
    assert_eq!(
        first["intent"][1]["beneficiary"],
        "FR7612345987650123456789014"
    );
    assert_eq!(first["intent"][1]["sources"]["creditor_name"], "Seller B");
    assert_eq!(first["intent"][1]["sources"]["end_to_end_id"], "B-1-1");
    let second = &decisions[1];
    let intents = second["intent"].as_array().unwrap();
    assert_eq!(intents.len(), 3, "{second}");
    assert!(intents
        .iter()
        .all(|i| i["vendor"] == "sepa" && i["category"] == "payout"));
    let per_intent = &second["details"]["per_intent"];
    let actions: Vec<&str> = per_intent
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["AUTO_APPROVE", "REJECT", "AUTO_APPROVE"],
        "{second}"
    );

    // Reads of what the bank made are safe and pass untouched.
    let status = client
        .get(format!(
            "https://{BANK}/v1/bulk-payments/pain.001-sepa-credit-transfers/{id}/status"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["transactionStatus"], "RCVD");

    // Berlin Group JSON: the same rule, per payment of a bulk.
    let bulk = r#"{"batchBookingPreferred":"true","debtorAccount":{"iban":"DE40100100103307118608"},
 "paymentInformationId":"my-bulk-identification-1234","requestedExecutionDate":"2018-08-01",
 "payments":[{"instructedAmount":{"currency":"EUR","amount":"123.50"},"creditorName":"Merchant123",
   "creditorAccount":{"iban":"DE02100100109307118603"},"remittanceInformationUnstructured":"Ref Number Merchant 1"},
  {"instructedAmount":{"currency":"EUR","amount":"34.10"},"creditorName":"Merchant456",
   "creditorAccount":{"iban":"FR7612345987650123456789014"},"remittanceInformationUnstructured":"Ref Number Merchant 2"}]}"#;
    let url = format!("https://{BANK}/v1/bulk-payments/sepa-credit-transfers");
    let (status, _, body) = post(&client, &url, "application/json", bulk.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let big = bulk.replace("\"34.10\"", "\"3410.00\"");
    let (status, _, body) = post(&client, &url, "application/json", big).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["tppMessages"][0]["code"], "SERVICE_BLOCKED");
    assert_eq!(bank_posts(&bank), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn hazardous_or_inconsistent_xml_never_reaches_the_bank() {
    let (leash, bank) = start().await;
    let client = leash.client();
    let doc = pain001(
        "B-9",
        "10.00",
        &[("10.00", "DE02100100109307118603", "Seller A")],
    );

    let xxe = doc.replace(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE Document [<!ENTITY big SYSTEM \"file:///etc/passwd\">]>",
    ).replace("<Ustrd>Payout B-9 0</Ustrd>", "<Ustrd>&big;</Ustrd>");
    let laughs = doc.replace(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY l \"lol\"><!ENTITY l2 \"&l;&l;&l;&l;&l;&l;&l;&l;\"><!ENTITY l3 \"&l2;&l2;&l2;&l2;&l2;&l2;&l2;\">]>",
    ).replace("<Ustrd>Payout B-9 0</Ustrd>", "<Ustrd>&l3;</Ustrd>");
    let miscounted = doc.replace("<CtrlSum>10.00</CtrlSum>", "<CtrlSum>9.00</CtrlSum>");
    for (name, body) in [
        ("xxe", xxe),
        ("billion laughs", laughs),
        ("CtrlSum", miscounted),
    ] {
        let (status, headers, body) = post(&client, BULK_XML, "application/xml", body).await;
        assert_eq!(status, 403, "{name}: {body}");
        assert_eq!(headers["x-leash-decision"], "rejected", "{name}");
        let text = body["tppMessages"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("leash_ambiguous: "), "{name}: {text}");
        assert!(!text.contains("/etc/passwd"), "{text}");
    }
    // An unknown pain.001 version is an unknown write: held for a human.
    let v11 = doc.replace("pain.001.001.03", "pain.001.001.11");
    let (status, headers, body) = post(&client, BULK_XML, "application/xml", v11).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["x-leash-decision"], "held");
    let text = body["tppMessages"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("leash_held: "), "{text}");
    assert!(headers.get("x-leash-hold-id").is_some());
    assert_eq!(bank_posts(&bank), 0);
}
