//! Seed scenario 02 end to end (issue 14): the `ops-agent` stack with its
//! own `config/leash.yaml` (EC2 prices in `vendors.aws`, the GPU cloud's
//! credits as a custom vendor). Requests go through leash to the stand-in
//! (Stripe and EC2, answering as they do) and a TLS stand-in for the GPU
//! cloud: a p5 capacity reservation is rejected by the
//! `gpu_reserved_capacity` blocklist and cannot be approved; a small launch
//! goes through; $1,000 top-ups — a Stripe charge, a credit purchase —
//! wait for the CTO; a launch above $500 needs review; a loop of $900
//! launches stops at the $10,000/day cap counted across AWS, Stripe and the
//! GPU cloud, exactly.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa, Upstream};
use serde_json::{json, Value};
use sha2::Digest;

const OLIVIA: &str = "olivia-token-0123456789";
const EC2: &str = "ec2.us-east-1.amazonaws.com";
const CREDITS: &str = "api.gpucloud.example";
const STRIPE_KEY: &str = "Bearer sk_test_ops_agent_key";

fn seed() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples/ops-agent")
}

struct Answer {
    status: u16,
    decision: String,
    rule: String,
    body: String,
}

async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, decision, rule) = (
        response.status().as_u16(),
        header("x-leash-decision"),
        header("x-leash-rule"),
    );
    let body = response.text().await.unwrap();
    Answer {
        status,
        decision,
        rule,
        body,
    }
}

/// An EC2 call as botocore sends it, signed anew each time.
async fn ec2(client: &reqwest::Client, body: &str) -> Answer {
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let response = client
        .post(format!("https://{EC2}/"))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential=AKIAOPSAGENT00000001/20261124/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={attempt}"))
        .header("x-amz-date", "20261124T100000Z")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    answer(response).await
}

fn launch(instance_type: &str, count: u32) -> String {
    let token = uuid::Uuid::new_v4();
    format!("Action=RunInstances&Version=2016-11-15&ImageId=ami-0123&InstanceType={instance_type}&MinCount=1&MaxCount={count}&ClientToken={token}")
}

async fn charge(client: &reqwest::Client, key: &str, cents: u64) -> Answer {
    let response = client
        .post("https://api.stripe.com/v1/charges")
        .header("authorization", STRIPE_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body(format!(
            "amount={cents}&currency=usd&source=tok_visa&description=GPU+credits"
        ))
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn credits(client: &reqwest::Client, key: &str, amount: &str) -> Answer {
    let response = client
        .post(format!("https://{CREDITS}/v1/credits/purchases"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(json!({ "amount": amount, "currency": "USD", "account_id": "acct_ops" }).to_string())
        .send()
        .await
        .unwrap();
    answer(response).await
}

struct Admin {
    client: reqwest::Client,
    base: String,
}

impl Admin {
    async fn holds(&self) -> Vec<Value> {
        let body: Value = self
            .client
            .get(format!("{}/v1/holds", self.base))
            .bearer_auth(OLIVIA)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["holds"].as_array().cloned().unwrap_or_default()
    }

    /// Approves the one pending hold whose first intent is `operation` of
    /// `amount`.
    async fn approve(&self, operation: &str, amount: &str) -> Value {
        let holds = self.holds().await;
        let pending: Vec<&Value> = holds
            .iter()
            .filter(|h| {
                h["state"] == "pending"
                    && h["intents"][0]["operation"] == operation
                    && h["intents"][0]["amount"]["amount"] == amount
            })
            .collect();
        assert_eq!(pending.len(), 1, "{holds:?}");
        let hold = pending[0].clone();
        let id = hold["id"].as_str().unwrap();
        let vote = self
            .client
            .post(format!("{}/v1/holds/{id}/approve", self.base))
            .bearer_auth(OLIVIA)
            .send()
            .await
            .unwrap();
        assert_eq!(vote.status(), 200, "{}", vote.text().await.unwrap());
        hold
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ops_agent_through_the_seed_stack() {
    let ca = TestCa::new("test public CA");
    let stand_in = stand_in::StandIn::start(&ca).await;
    let gpu_cloud = Upstream::start(Some(ca.server_config(&[CREDITS]))).await;
    let seed_config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    assert_eq!(seed_config.custom_vendors[0].name, "gpu_cloud_credits");
    let leash = Harness::start(stand_in.addr, &ca, |config| {
        config.policies = seed();
        config.default_agent = Some("ops-agent".into());
        config.approvers.people = seed_config.approvers.people.clone();
        config.approvers.groups = seed_config.approvers.groups.clone();
        if let Some(olivia) = config.approvers.people.get_mut("olivia") {
            olivia.token_sha256 = Some(sha2::Sha256::digest(OLIVIA.as_bytes()).into());
        }
        config.fx = seed_config.fx.clone();
        config.vendors = seed_config.vendors.clone();
        config.custom_vendors = seed_config.custom_vendors.clone();
        for (host, addr) in [(EC2, stand_in.addr), (CREDITS, gpu_cloud.addr)] {
            config.upstream.overrides.insert(
                host.into(),
                leash::config::HostPort {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                },
            );
        }
    })
    .await;
    let client = leash.client();
    let admin = Admin {
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        base: format!("http://{}", leash.running.admin_addr),
    };
    let ec2_calls = |action: &str| {
        let needle = format!("Action={action}&");
        stand_in
            .seen()
            .iter()
            .filter(|s| s.host.starts_with(EC2) && s.body.starts_with(needle.as_bytes()))
            .count()
    };

    // p5 capacity reservation: 98.32 × 1 × 24h, gpu_reserved_capacity,
    // refused by rule 10 in EC2's XML; no hold, so nothing to approve.
    let reserve = ec2(&client, "Action=CreateCapacityReservation&Version=2016-11-15&InstanceType=p5.48xlarge&InstancePlatform=Linux%2FUNIX&InstanceCount=1&AvailabilityZone=us-east-1a&TagSpecifications.1.ResourceType=capacity-reservation").await;
    assert_eq!(
        (
            reserve.status,
            reserve.decision.as_str(),
            reserve.rule.as_str()
        ),
        (403, "rejected", "10"),
        "{}",
        reserve.body
    );
    assert!(
        reserve.body.contains("<Code>UnauthorizedOperation</Code>"),
        "{}",
        reserve.body
    );
    assert!(
        admin.holds().await.is_empty(),
        "a REJECT is never held, so never approvable"
    );
    assert_eq!(ec2_calls("CreateCapacityReservation"), 0);

    // A small launch: 0.0104 × 1 × 24h = 0.2496, approved.
    let small = ec2(&client, &launch("t3.micro", 1)).await;
    assert_eq!(small.status, 200, "{}", small.body);
    assert_eq!(ec2_calls("RunInstances"), 1);

    // $1,000 top-ups wait for the CTO (rule 30), then go through once.
    let held = charge(&client, "topup-1", 100_000).await;
    assert_eq!(
        (held.status, held.decision.as_str(), held.rule.as_str()),
        (403, "held", "30"),
        "{}",
        held.body
    );
    let hold = admin.approve("charge.create", "1000.00").await;
    assert_eq!(hold["vendor"], "stripe");
    let paid = charge(&client, "topup-1", 100_000).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let held = credits(&client, "credits-1", "1000.00").await;
    assert_eq!(
        (held.status, held.decision.as_str(), held.rule.as_str()),
        (403, "held", "30"),
        "{}",
        held.body
    );
    let hold = admin.approve("credit_purchase", "1000.00").await;
    assert_eq!(hold["vendor"], "gpu_cloud_credits");
    let bought = credits(&client, "credits-1", "1000.00").await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    assert_eq!(gpu_cloud.seen().len(), 1);

    // Over $500 needs review: 12 × 1.875 × 24h = 540.00, rule 40.
    let review = ec2(&client, &launch("g6e.xlarge", 12)).await;
    assert_eq!(
        (
            review.status,
            review.decision.as_str(),
            review.rule.as_str()
        ),
        (403, "held", "40"),
        "{}",
        review.body
    );
    assert!(review.body.contains("leash_held"), "{}", review.body);
    assert_eq!(ec2_calls("RunInstances"), 1);

    // A loop of $900 launches (20 × 1.875 × 24h), each approved by the
    // CTO and released by the agent's retry. Spent so far: 0.2496 + 1,000
    // + 1,000 = 2,000.2496; eight launches make 9,200.2496, a ninth would
    // make 10,100.2496 > 10,000: refused by the cap, not held.
    let mut launched = 0;
    loop {
        let body = launch("g6e.xlarge", 20);
        let first = ec2(&client, &body).await;
        if first.decision == "rejected" {
            assert_eq!(
                (first.status, first.rule.as_str()),
                (403, "20"),
                "{}",
                first.body
            );
            break;
        }
        assert_eq!(
            (first.status, first.decision.as_str(), first.rule.as_str()),
            (403, "held", "40"),
            "{}",
            first.body
        );
        let hold = admin.approve("RunInstances", "900.00").await;
        assert_eq!(hold["intents"][0]["amount"]["amount"], "900.00", "{hold}");
        // botocore's next call: new signature, new ClientToken.
        let retry = ec2(&client, &launch("g6e.xlarge", 20)).await;
        assert_eq!(retry.status, 200, "{}", retry.body);
        launched += 1;
        assert!(launched <= 8, "the cap did not stop the loop");
    }
    assert_eq!(launched, 8);
    assert_eq!(
        ec2_calls("RunInstances"),
        9,
        "the small launch and eight of $900"
    );

    // The cap's verdict, in exact decimals, across the three vendors.
    let decisions = common::decisions(&leash).await;
    let last = decisions.last().unwrap().to_string();
    assert!(
        last.contains("spent 9,200.2496 + 900.00 > 10,000.00 USD"),
        "{last}"
    );
    let vendors: std::collections::BTreeSet<String> = decisions
        .iter()
        .filter_map(|d| d["intent"][0]["vendor"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        vendors.into_iter().collect::<Vec<_>>(),
        ["aws", "gpu_cloud_credits", "stripe"]
    );
}
