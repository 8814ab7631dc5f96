//! EC2 through a real leash, with the stand-in EC2 (`stand_in/aws.rs`)
//! answering XML: a capacity block is bought at the price leash learned from
//! the agent's own `DescribeCapacityBlockOfferings` answer; a held launch is
//! released by the agent's retry (fresh `Authorization`, `X-Amz-Date` and
//! botocore's new `ClientToken`) and reaches EC2 once; refusals are EC2's
//! XML error, status 403.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use common::{Harness, TestCa};
use serde_json::Value;
use sha2::Digest;

const HOST: &str = "ec2.us-east-1.amazonaws.com";
const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const MAYA: &str = "maya-token-0123456789";

/// Up to $500 goes through; above, maya decides; unreadable requests wait.
const POLICY: &str = r#"
agent: infra-agent
currency: USD
default: AUTO_APPROVE
unknown: REQUIRE_HUMAN
unreadable: REQUIRE_HUMAN
approvers: [maya]
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gt: 500 }
    approvers: [maya]
    description: More than $500 needs a person
"#;

/// botocore's headers for one attempt: a SigV4 `Authorization` whose
/// signature and date change on every signing.
fn signed(attempt: u32) -> (String, String) {
    let date = format!("20261203T1000{attempt:02}Z");
    let signature = hex::encode(sha2::Sha256::digest(format!("attempt {attempt}")));
    (
        format!("AWS4-HMAC-SHA256 Credential={AKID}/20261203/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"),
        date,
    )
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
    decision: Option<String>,
}

async fn ec2(client: &reqwest::Client, body: &str, attempt: u32) -> Answer {
    let (authorization, date) = signed(attempt);
    let response = client
        .post(format!("https://{HOST}/"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("authorization", authorization)
        .header("x-amz-date", date)
        .header("amz-sdk-request", "attempt=1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let decision = header("x-leash-decision");
    let body = response.text().await.unwrap();
    Answer {
        status,
        content_type,
        body,
        decision,
    }
}

/// The text of the first `<name>` in `xml`.
fn tag<'x>(xml: &'x str, name: &str) -> Option<&'x str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

async fn start(ca: &TestCa, stand_in: &stand_in::StandIn) -> Harness {
    Harness::start_with_policy(stand_in.addr, ca, POLICY, |config| {
        config.default_agent = Some("infra-agent".into());
        config.upstream.overrides.insert(
            HOST.into(),
            leash::config::HostPort {
                host: stand_in.addr.ip().to_string(),
                port: stand_in.addr.port(),
            },
        );
        config
            .vendors
            .aws
            .prices
            .insert("p5.48xlarge".into(), "98.32".parse().unwrap());
        config
            .vendors
            .aws
            .prices
            .insert("t3.micro".into(), "0.0104".parse().unwrap());
        config.approvers.people.insert(
            "maya".into(),
            leash::config::Person {
                token_sha256: Some(sha2::Sha256::digest(MAYA.as_bytes()).into()),
                slack: None,
            },
        );
    })
    .await
}

fn ec2_posts(stand_in: &stand_in::StandIn, action: &str) -> Vec<common::Seen> {
    let needle = format!("Action={action}&");
    stand_in
        .seen()
        .into_iter()
        .filter(|s| {
            s.host.starts_with(HOST) && String::from_utf8_lossy(&s.body).starts_with(&needle)
        })
        .collect()
}

async fn admin_json(leash: &Harness, method: &str, path: &str) -> (u16, Value) {
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}{path}", leash.running.admin_addr);
    let request = match method {
        "POST" => admin.post(url),
        _ => admin.get(url),
    };
    let response = request.bearer_auth(MAYA).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_block_is_bought_at_the_price_leash_learned_from_the_agents_own_answer() {
    let ca = TestCa::new("test public CA");
    let stand_in = stand_in::StandIn::start(&ca).await;
    let leash = start(&ca, &stand_in).await;
    let client = leash.client();

    // The agent searches: a 1-hour p5 block, 98.32 USD; leash forwards the
    // read and learns the offering from the XML answer on its way back.
    let search = "Action=DescribeCapacityBlockOfferings&Version=2016-11-15&CapacityDurationHours=1&InstanceType=p5.48xlarge&InstanceCount=1";
    let found = ec2(&client, search, 1).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.content_type.starts_with("text/xml"));
    let offering = tag(&found.body, "capacityBlockOfferingId")
        .unwrap()
        .to_string();
    assert_eq!(tag(&found.body, "upfrontFee"), Some("98.32"));

    // The purchase names only the offering: leash reads its price from what
    // it learned, under $500, and forwards it byte for byte.
    let buy = format!("Action=PurchaseCapacityBlock&Version=2016-11-15&CapacityBlockOfferingId={offering}&InstancePlatform=Linux%2FUNIX");
    let bought = ec2(&client, &buy, 2).await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    let seen = ec2_posts(&stand_in, "PurchaseCapacityBlock");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body,
        buy.as_bytes(),
        "the signed body is forwarded unchanged"
    );
    assert_eq!(
        stand_in.object("ec2:purchases").unwrap(),
        serde_json::json!([offering])
    );

    // A 24-hour block: 2,359.68 USD, learned the same way, needs maya.
    let search = search.replace("CapacityDurationHours=1", "CapacityDurationHours=24");
    let found = ec2(&client, &search, 3).await;
    let big = tag(&found.body, "capacityBlockOfferingId")
        .unwrap()
        .to_string();
    let buy_big = format!("Action=PurchaseCapacityBlock&Version=2016-11-15&CapacityBlockOfferingId={big}&InstancePlatform=Linux%2FUNIX");
    let held = ec2(&client, &buy_big, 4).await;
    assert_eq!(held.status, 403, "{}", held.body);
    assert_eq!(held.decision.as_deref(), Some("held"));
    assert_eq!(tag(&held.body, "Code"), Some("UnauthorizedOperation"));
    assert!(
        tag(&held.body, "Message")
            .unwrap()
            .starts_with("leash_held"),
        "{}",
        held.body
    );

    // An offering leash never saw: no price, held as unreadable.
    let unseen = ec2(&client, "Action=PurchaseCapacityBlock&Version=2016-11-15&CapacityBlockOfferingId=cb-0unseen&InstancePlatform=Linux%2FUNIX", 5).await;
    assert_eq!(unseen.status, 403, "{}", unseen.body);
    assert_eq!(
        ec2_posts(&stand_in, "PurchaseCapacityBlock").len(),
        1,
        "only the decided purchase"
    );

    // The chain records the amounts, where they came from, and the access
    // key id as the account — never the signature.
    let decisions = common::decisions(&leash).await;
    let intents: Vec<&Value> = decisions
        .iter()
        .filter_map(|d| d["intent"].as_array())
        .flatten()
        .filter(|i| i["operation"] == "PurchaseCapacityBlock")
        .collect();
    assert_eq!(intents.len(), 2, "{decisions:?}");
    assert_eq!(intents[0]["amount"]["amount"], "98.32");
    assert_eq!(intents[0]["amount"]["currency"], "USD");
    assert_eq!(intents[0]["category"], "gpu_reserved_capacity");
    assert_eq!(intents[0]["account"], AKID);
    let source = intents[0]["sources"]["amount"].as_str().unwrap();
    assert!(
        source.contains("DescribeCapacityBlockOfferings"),
        "{source}"
    );
    assert_eq!(intents[1]["amount"]["amount"], "2359.68");
    let text = serde_json::to_string(&decisions).unwrap();
    assert!(
        !text.contains("Signature="),
        "no signature in the audit chain"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_launch_is_released_by_the_agents_freshly_signed_retry_once() {
    let ca = TestCa::new("test public CA");
    let stand_in = stand_in::StandIn::start(&ca).await;
    let leash = start(&ca, &stand_in).await;
    let client = leash.client();

    // 98.32 × 1 × 24h = 2,359.68 USD: held.
    let launch = |token: &str| {
        format!("Action=RunInstances&Version=2016-11-15&ImageId=ami-0123&InstanceType=p5.48xlarge&MinCount=1&MaxCount=1&ClientToken={token}")
    };
    let held = ec2(&client, &launch("7d4e0c4a-0001"), 1).await;
    assert_eq!(held.status, 403, "{}", held.body);
    assert_eq!(held.decision.as_deref(), Some("held"));
    assert!(ec2_posts(&stand_in, "RunInstances").is_empty());

    // Not approved yet: the retry (new signature, date and ClientToken, as
    // botocore sends a new call) is the same request, answered by its hold.
    let again = ec2(&client, &launch("7d4e0c4a-0002"), 2).await;
    assert_eq!(again.decision.as_deref(), Some("held"), "{}", again.body);
    let (_, holds) = admin_json(&leash, "GET", "/v1/holds").await;
    let open = holds["holds"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{holds}");
    let id = open[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        open[0]["intents"][0]["amount"]["amount"], "2359.68",
        "{holds}"
    );

    let (status, _) = admin_json(&leash, "POST", &format!("/v1/holds/{id}/approve")).await;
    assert_eq!(status, 200);

    // The next retry is forwarded: it, with its own fresh signature.
    let released = ec2(&client, &launch("7d4e0c4a-0003"), 3).await;
    assert_eq!(released.status, 200, "{}", released.body);
    assert!(tag(&released.body, "instanceId").is_some_and(|i| i.starts_with("i-")));
    let sent = ec2_posts(&stand_in, "RunInstances");
    assert_eq!(sent.len(), 1);
    let (authorization, date) = signed(3);
    assert_eq!(sent[0].headers["authorization"], authorization.as_str());
    assert_eq!(sent[0].headers["x-amz-date"], date.as_str());
    assert_eq!(sent[0].body, launch("7d4e0c4a-0003").as_bytes());

    // Never twice: once released, the same call again is a new request,
    // decided (and held) anew.
    let late = ec2(&client, &launch("7d4e0c4a-0004"), 4).await;
    assert_eq!(late.status, 403, "{}", late.body);
    assert_eq!(late.decision.as_deref(), Some("held"));
    assert_eq!(ec2_posts(&stand_in, "RunInstances").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_and_dry_runs_pass_refusals_are_ec2_errors() {
    let ca = TestCa::new("test public CA");
    let stand_in = stand_in::StandIn::start(&ca).await;
    let leash = start(&ca, &stand_in).await;
    let client = leash.client();

    let dry = ec2(&client, "Action=RunInstances&Version=2016-11-15&InstanceType=p5.48xlarge&MinCount=1&MaxCount=100&DryRun=true", 1).await;
    assert_eq!(dry.status, 412, "EC2's own DryRunOperation: {}", dry.body);
    assert_eq!(tag(&dry.body, "Code"), Some("DryRunOperation"));

    let small = ec2(
        &client,
        "Action=RunInstances&Version=2016-11-15&InstanceType=t3.micro&MinCount=1&MaxCount=1",
        2,
    )
    .await;
    assert_eq!(small.status, 200, "{}", small.body);

    // Read two ways: refused, never held, in EC2's shape.
    let twice = ec2(&client, "Action=RunInstances&Version=2016-11-15&InstanceType=t3.micro&MinCount=1&MaxCount=1&MaxCount=500", 3).await;
    assert_eq!(twice.status, 403, "{}", twice.body);
    assert_eq!(twice.decision.as_deref(), Some("rejected"));
    assert_eq!(tag(&twice.body, "Code"), Some("UnauthorizedOperation"));
    assert!(tag(&twice.body, "Message")
        .unwrap()
        .starts_with("leash_ambiguous"));
    assert!(twice.content_type.starts_with("text/xml"));
}
