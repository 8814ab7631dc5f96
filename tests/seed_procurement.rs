//! Seed scenario 05 end to end (issue 9): the `procurement-agent` stack with
//! its own `config/leash.yaml`, which declares the custom vendor
//! `acme_procurement`. Purchase orders go through leash to a TLS stand-in
//! for api.acme-supplies.example: auto-approved, held and released by
//! finance, rejected by category, capped per day; a PO leash cannot read
//! exactly is held, a write Acme's declaration does not know is held.

mod common;

use common::{TestCa, Upstream};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PRIYA: &str = "priya-token-0123456789";
const HOST: &str = "api.acme-supplies.example";

fn seed() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples/procurement-agent")
}

async fn po(client: &reqwest::Client, key: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("https://{HOST}/v2/orders"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(response.headers().get("stripe-should-retry").is_none());
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(text)))
}

fn order(amount: &str, supplier: &str, category: &str) -> Value {
    json!({
        "supplier_id": supplier,
        "category": category,
        "total": { "value": amount, "currency": "EUR" },
        "lines": [{ "sku": "M-1", "qty": 3 }]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn purchase_orders_through_the_seed_procurement_stack() {
    let ca = TestCa::new("test public CA");
    let acme = Upstream::start(Some(ca.server_config(&[HOST]))).await;
    let seed_config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    assert_eq!(seed_config.custom_vendors[0].name, "acme_procurement");
    let leash = common::Harness::start(acme.addr, &ca, |config| {
        config.policies = seed().to_path_buf();
        config.default_agent = Some("procurement-agent".into());
        config.custom_vendors = seed_config.custom_vendors.clone();
        config.approvers.people = seed_config.approvers.people.clone();
        config.approvers.groups = seed_config.approvers.groups.clone();
        if let Some(priya) = config.approvers.people.get_mut("priya") {
            priya.token_sha256 = Some(Sha256::digest(PRIYA.as_bytes()).into());
        }
        config.upstream.overrides.insert(
            HOST.into(),
            leash::config::HostPort {
                host: acme.addr.ip().to_string(),
                port: acme.addr.port(),
            },
        );
    })
    .await;
    let client = leash.client();
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);

    // An audited supplier, under €25,000: forwarded as sent.
    let (status, body) = po(
        &client,
        "po-1",
        order("12000.00", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(acme.seen().len(), 1);
    assert_eq!(acme.seen()[0].path_and_query, "/v2/orders");

    // Capital expenditure: refused in Acme's (generic JSON) error shape.
    let (status, body) = po(
        &client,
        "po-2",
        order("900", "sup_acme_industrial", "capital_expenditure"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "leash_rejected");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("10"),
        "{body}"
    );

    // €25,000 needs finance: held, approved by priya, released on retry.
    let (status, body) = po(
        &client,
        "po-3",
        order("25000", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("leash_held")),
        "{body}"
    );
    let holds: Value = admin
        .get(format!("{base}/v1/holds"))
        .bearer_auth(PRIYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hold = &holds["holds"][0];
    assert_eq!(hold["vendor"], "acme_procurement", "{holds}");
    let id = hold["id"].as_str().unwrap().to_string();
    let vote = admin
        .post(format!("{base}/v1/holds/{id}/approve"))
        .bearer_auth(PRIYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
    let (status, _) = po(
        &client,
        "po-3",
        order("25000", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(acme.seen().len(), 2);

    // The day's cap: 12,000 + 25,000 + 24,000 = 61,000 passes; another
    // 24,000 would make 85,000 > 80,000.
    let (status, _) = po(
        &client,
        "po-4",
        order("24000", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = po(
        &client,
        "po-5",
        order("24000", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "leash_rejected");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("20"),
        "{body}"
    );
    assert_eq!(acme.seen().len(), 3);

    // Read two ways, or not at all: never forwarded.
    let (status, body) = po(
        &client,
        "po-6",
        order("1,200.00", "sup_fjord_metals", "procurement"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("leash_held")),
        "{body}"
    );
    let twice = r#"{"supplier_id":"sup_fjord_metals","category":"procurement","total":{"value":"10","value":"90000","currency":"EUR"}}"#;
    let response = client
        .post(format!("https://{HOST}/v2/orders"))
        .header("content-type", "application/json")
        .body(twice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "leash_ambiguous", "{body}");
    let response = client
        .post(format!("https://{HOST}/v2//orders"))
        .header("content-type", "application/json")
        .body(order("10", "sup_fjord_metals", "procurement").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a path the router may read as /v2/orders"
    );
    // A write Acme's declaration does not know: unknown, held.
    let response = client
        .post(format!("https://{HOST}/v2/suppliers"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A read is safe.
    let response = client
        .get(format!("https://{HOST}/v2/orders/po_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        acme.seen().len(),
        4,
        "only the reads and decided POs arrived"
    );

    // The chain names the vendor, the operation, the supplier.
    let audit = common::audit_entries(leash.running.admin_addr).await;
    let first = audit
        .iter()
        .find(|e| e["kind"] == "decision")
        .expect("a decision");
    let intent = &first["intent"][0];
    assert_eq!(intent["vendor"], "acme_procurement", "{first}");
    assert_eq!(intent["operation"], "purchase_order");
    assert_eq!(intent["beneficiary"], "sup_fjord_metals");
    assert_eq!(intent["category"], "procurement");
    assert_eq!(intent["amount"]["amount"], "12000.00", "{first}");
}
