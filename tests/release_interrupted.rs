//! Releases are never lost (issue 8 item 8, SPEC §6): leash killed after a
//! released request's bytes reached the vendor but before it knew what
//! happened must not say "already forwarded" nor send it again — after the
//! restart the hold reads `outcome_unknown`, to the approvers and to the
//! agent's retry.

#[path = "common/child.rs"]
mod child;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use child::ChildLeash;
use common::TestCa;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
unknown: REJECT
unreadable: REJECT
rules:
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 50 }
    approvers: [maya]
"#;

const MAYA: &str = "maya-token-0123456789";

/// A vendor that reads requests and never answers: the release's bytes
/// arrive, and leash waits for an answer that does not come.
struct SilentVendor {
    addr: std::net::SocketAddr,
    /// Requests whose head it received.
    received: Arc<AtomicUsize>,
    arrived: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl SilentVendor {
    async fn start(ca: &TestCa) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor =
            tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config(&["api.stripe.com"])));
        let received = Arc::new(AtomicUsize::new(0));
        let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
        let count = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, count, tx) = (acceptor.clone(), Arc::clone(&count), tx.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                        // HTTP/1.1 or HTTP/2: a head of a POST arrived.
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 64 {
                            count.fetch_add(1, Ordering::SeqCst);
                            let _ = tx.send(());
                            // Keep reading, never answer.
                            while let Ok(n) = tls.read(&mut buf).await {
                                if n == 0 {
                                    return;
                                }
                            }
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            received,
            arrived,
        }
    }
}

fn write_config(dir: &std::path::Path, vendor: std::net::SocketAddr, ca: &TestCa) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/policy.yaml"), POLICY).unwrap();
    std::fs::write(dir.join("upstream-ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(
        dir.join("leash.yaml"),
        format!(
            "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: growth-agent\n\
             upstream:\n  overrides:\n    api.stripe.com: {vendor}\n  extra_ca: upstream-ca.pem\n  timeout: 5m\n\
             holds: {{ wait: 300ms, ttl: 1h }}\n\
             approvers:\n  people:\n    maya: {{ token_sha256: \"{maya}\" }}\n  auditors:\n    test-auditor: {{ token_sha256: \"{auditor}\" }}\n",
            maya = hex::encode(Sha256::digest(MAYA.as_bytes())),
            auditor = common::AUDITOR_TOKEN_SHA256
        ),
    )
    .unwrap();
}

fn charge(client: &reqwest::Client, key: &str) -> reqwest::RequestBuilder {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body("amount=6000&currency=eur&customer=cus_1")
}

async fn hold_state(admin: &reqwest::Client, leash: &ChildLeash, id: &str) -> Value {
    admin
        .get(format!("http://{}/v1/holds/{id}", leash.admin))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_cut_off_by_a_kill_reads_outcome_unknown_and_is_never_sent_again() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let mut vendor = SilentVendor::start(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), vendor.addr, &ca);
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();

    let leash = ChildLeash::spawn(dir.path());
    let client = leash.client(dir.path());
    let held = charge(&client, "idem-1").send().await.unwrap();
    assert_eq!(held.status(), 403);
    let hold_id = held.headers()["x-leash-hold-id"]
        .to_str()
        .unwrap()
        .to_string();
    let vote = admin
        .post(format!("http://{}/v1/holds/{hold_id}/approve", leash.admin))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);

    // The retry releases it; the vendor gets the bytes and never answers.
    let retry = tokio::spawn(
        charge(&client, "idem-1")
            .timeout(Duration::from_secs(120))
            .send(),
    );
    tokio::time::timeout(Duration::from_secs(30), vendor.arrived.recv())
        .await
        .expect("the released request reaches the vendor");
    let during = hold_state(&admin, &leash, &hold_id).await;
    assert_eq!(during["hold"]["state"], "releasing", "{during}");
    // A concurrent re-call is told the send is under way, not sent twice.
    let racing = charge(&client, "idem-1").send().await.unwrap();
    assert_eq!(racing.status(), 409);
    assert_eq!(racing.headers()["stripe-should-retry"], "false");
    let body: Value = racing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "leash_release_in_progress", "{body}");

    leash.kill();
    assert!(
        retry.await.unwrap().is_err(),
        "the agent's connection died with leash"
    );

    let leash = ChildLeash::spawn(dir.path());
    let client = leash.client(dir.path());
    let after = hold_state(&admin, &leash, &hold_id).await;
    assert_eq!(after["hold"]["state"], "outcome_unknown", "{after}");
    assert!(after["hold"]["resolution"]
        .as_str()
        .unwrap()
        .contains("unknown"));

    // The retry, with its key or with a fresh one: 409 outcome unknown,
    // never "already forwarded", never sent again.
    for key in ["idem-1", "a-fresh-key-from-the-sdk"] {
        let answer = charge(&client, key).send().await.unwrap();
        assert_eq!(answer.status(), 409, "{key}");
        assert_eq!(answer.headers()["stripe-should-retry"], "false");
        assert_eq!(answer.headers()["x-leash-hold-id"], hold_id.as_str());
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "leash_outcome_unknown", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    assert_eq!(vendor.received.load(Ordering::SeqCst), 1);

    // The chain: releasing before the send, outcome_unknown after the
    // restart, and no `released` for what nobody knows was received.
    let audit = common::audit_entries(leash.admin).await;
    let resolved: Vec<&str> = audit
        .iter()
        .filter(|e| e["kind"] == "hold_resolved")
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(resolved, ["releasing", "outcome_unknown"], "{audit:?}");
    let metrics = admin
        .get(format!("http://{}/metrics", leash.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("leash_hold_events_total{event=\"outcome_unknown\"} 1"),
        "{metrics}"
    );
    leash.kill();
}
