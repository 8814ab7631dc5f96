//! `GET /metrics` on the admin listener (SPEC §9), after real requests
//! through the proxy: an approved, a rejected and a held charge.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Harness, TestCa, Upstream};
use sha2::{Digest, Sha256};

/// €1,000 or more is rejected (rule 10), €50 or more held for maya (rule
/// 20), the rest approved by default.
const POLICY: &str = r#"
agent: growth-agent
currency: EUR
default: AUTO_APPROVE
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gte: 1000 }
  - priority: 20
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 50 }
    approvers: [maya]
"#;

const MAYA: &str = "maya-token-0123456789";

/// A customer id that must never show up in the metrics.
const CUSTOMER: &str = "cus_metricsSecretMarker";

/// One sample: its metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    Series {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A scrape: the text and its samples.
struct Scrape {
    text: String,
    samples: BTreeMap<Series, f64>,
}

impl Scrape {
    /// Parses OpenMetrics text (label values here never contain `"`, `,`
    /// or escapes).
    fn parse(text: String) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (head, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (head, ""),
            };
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            let series = Series {
                name: name.to_string(),
                labels,
            };
            let previous = samples.insert(series, value.parse::<f64>().unwrap());
            assert!(previous.is_none(), "duplicate sample {line}");
        }
        Self { text, samples }
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series(name, labels))
            .copied()
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }

    fn decisions(&self, action: &str, rule: &str) -> f64 {
        self.value(
            "leash_decisions_total",
            &[
                ("agent", "growth-agent"),
                ("action", action),
                ("rule", rule),
                ("shadow", "false"),
            ],
        )
    }
}

async fn charge(client: &reqwest::Client, euros: u64) -> reqwest::Response {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "amount={}&currency=eur&customer={CUSTOMER}",
            euros * 100
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_decisions_holds_upstream_latency_and_the_audit_chain() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, POLICY, |config| {
        config.approvers.people.insert(
            "maya".to_string(),
            leash::config::Person {
                token_sha256: Some(Sha256::digest(MAYA.as_bytes()).into()),
                slack: None,
            },
        );
    })
    .await;
    let client = leash.client();

    let approved = charge(&client, 20).await;
    assert_eq!(approved.status(), 200);
    let rejected = charge(&client, 2000).await;
    assert_eq!(rejected.status(), 403);
    assert_eq!(rejected.headers()["x-leash-decision"], "rejected");
    let held = charge(&client, 60).await;
    assert_eq!(held.status(), 403);
    assert_eq!(held.headers()["x-leash-decision"], "held");
    assert_eq!(upstream.seen().len(), 1, "only the approved one went out");

    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", leash.running.admin_addr);
    let chain_length = || async {
        let body: serde_json::Value = admin
            .get(format!("{base}/v1/audit?limit=1000"))
            .bearer_auth(common::AUDITOR_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["entries"].as_array().unwrap().len() as f64
    };

    // Outcome entries are appended in the background: scrape between two
    // equal reads of the chain.
    let scrape = || async {
        for _ in 0..100 {
            let before = chain_length().await;
            // No credentials: /metrics is open, like /healthz.
            let response = admin.get(format!("{base}/metrics")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["content-type"],
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            );
            let text = response.text().await.unwrap();
            let after = chain_length().await;
            // The counter moves once a write is flushed; the chain can be
            // read a moment earlier. Settled means both agree.
            let scraped = Scrape::parse(text);
            if before == after && scraped.value("leash_audit_entries", &[]) == after {
                return (scraped, after);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the audit chain kept growing");
    };
    let (m, chain) = scrape().await;
    assert!(m.text.ends_with("# EOF\n"), "{}", m.text);
    assert!(!m.text.contains(CUSTOMER), "no request content in labels");
    assert_eq!(m.decisions("AUTO_APPROVE", "default"), 1.0);
    assert_eq!(m.decisions("REJECT", "10"), 1.0);
    assert_eq!(m.decisions("REQUIRE_HUMAN", "20"), 1.0);
    let spend = [("vendor", "stripe"), ("class", "spend")];
    assert_eq!(m.value("leash_requests_total", &spend), 3.0);
    let code = |code| [("code", code)];
    assert_eq!(m.value("leash_answers_total", &code("leash_rejected")), 1.0);
    assert_eq!(m.value("leash_answers_total", &code("leash_held")), 1.0);

    // Only the forwarded request was timed.
    let stripe = [("vendor", "stripe")];
    assert_eq!(
        m.value("leash_upstream_latency_seconds_count", &stripe),
        1.0
    );
    let inf = [("vendor", "stripe"), ("le", "+Inf")];
    assert_eq!(m.value("leash_upstream_latency_seconds_bucket", &inf), 1.0);
    let seconds = m.value("leash_upstream_latency_seconds_sum", &stripe);
    assert!(seconds > 0.0 && seconds < 30.0, "{seconds}");

    assert_eq!(m.value("leash_holds_pending", &[]), 1.0);
    let event = |event| [("event", event)];
    assert_eq!(m.value("leash_hold_events_total", &event("created")), 1.0);
    assert_eq!(m.value("leash_audit_entries", &[]), chain);
    assert_eq!(m.value("leash_audit_healthy", &[]), 1.0);

    // maya approves; the agent's retry releases the held charge.
    let hold_id = held.headers()["x-leash-hold-id"].to_str().unwrap();
    let vote = admin
        .post(format!("{base}/v1/holds/{hold_id}/approve"))
        .bearer_auth(MAYA)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 200);
    assert_eq!(charge(&client, 60).await.status(), 200);
    assert_eq!(upstream.seen().len(), 2);

    let (m, chain) = scrape().await;
    assert_eq!(m.value("leash_holds_pending", &[]), 0.0);
    for name in ["created", "approved", "released"] {
        assert_eq!(
            m.value("leash_hold_events_total", &event(name)),
            1.0,
            "{name}"
        );
    }
    assert_eq!(
        m.value("leash_upstream_latency_seconds_count", &stripe),
        2.0,
        "the release was timed too"
    );
    assert_eq!(
        m.decisions("REQUIRE_HUMAN", "20"),
        1.0,
        "a retry answered by its hold is not a second decision"
    );
    assert_eq!(m.value("leash_requests_total", &spend), 4.0);
    assert_eq!(m.value("leash_audit_entries", &[]), chain);
}
