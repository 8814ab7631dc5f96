//! Seed scenario 04 end to end (issue 13): the `treasury-agent` stack with
//! its own `config/leash.yaml`, Fireblocks transactions sent the way
//! fireblocks-sdk-py sends them (each with a fresh JWT) through a real
//! leash to the Fireblocks stand-in, which refuses any expired token:
//!
//! - a whitelisted destination under $50,000 inside Mon–Fri 09:00–18:00
//!   UTC is approved automatically;
//! - a destination off the whitelist is rejected, and no one can approve
//!   it (no hold is opened, a retry is rejected again);
//! - over $50,000 needs alex, sam and dana (the partners and the CFO,
//!   quorum all) and is released by the agent's freshly signed retry;
//! - outside the hours, the CFO decides (held);
//! - the $250,000 daily outflow is counted exactly across BTC, ETH and USDC
//!   at the seed's fx rates (1 BTC = €61,000, 1 ETH = €2,300, 1 USDC =
//!   €0.92 = $1).
//!
//! The proxy decides with the wall clock, so the stack runs from a copy
//! whose time window (rule 40) is widened to every hour of every day (or,
//! for the outside-hours case, turned into one that always applies); the
//! window as written is checked at fixed clock times by the seed's own
//! policy tests (`tests/treasury-agent.yaml`), run here too.

mod common;
#[path = "common/stand_in.rs"]
mod stand_in;

use std::path::{Path, PathBuf};

use common::{Harness, TestCa};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stand_in::{fireblocks::jwt, StandIn};

const HOST: &str = "api.fireblocks.io";
const API_KEY: &str = "9b2a7c1e-0000-4000-8000-00000000a9e7";
const WHITELISTED: &str = "0x8ba1f109551bD432803012645Ac136ddd64DBA72";
const BTC_WALLET: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
const STRANGER: &str = "0x000000000000000000000000000000000000dEaD";
const TOKENS: [(&str, &str); 3] = [
    ("alex", "alex-token-0123456789"),
    ("sam", "sam-token-0123456789"),
    ("dana", "dana-token-0123456789"),
];

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples/treasury-agent")
}

const WINDOW: &str = "    days: [mon, tue, wed, thu, fri]\n    from: \"09:00\"\n    to: \"18:00\"\n    when: outside\n";

/// The seed stack with rule 40's window replaced by `window`, and its
/// whitelist, in `dir`.
fn stack_copy(dir: &Path, window: &str) -> PathBuf {
    let policies = dir.join("treasury-policies");
    std::fs::create_dir_all(policies.join("data")).unwrap();
    let stack = std::fs::read_to_string(seed().join("treasury-agent.yaml")).unwrap();
    assert!(stack.contains(WINDOW), "rule 40 of the seed changed");
    std::fs::write(
        policies.join("treasury-agent.yaml"),
        stack.replace(WINDOW, window),
    )
    .unwrap();
    std::fs::copy(
        seed().join("data/wallets.txt"),
        policies.join("data/wallets.txt"),
    )
    .unwrap();
    policies
}

/// Every hour of every day is inside the window: rule 40 never applies.
const ALWAYS_INSIDE: &str =
    "    days: [mon, tue, wed, thu, fri, sat, sun]\n    from: \"00:00\"\n    to: \"24:00\"\n    when: outside\n";
/// Every hour of every day counts as outside the business hours.
const ALWAYS_OUTSIDE: &str =
    "    days: [mon, tue, wed, thu, fri, sat, sun]\n    from: \"00:00\"\n    to: \"24:00\"\n    when: inside\n";

async fn start(stand_in: &StandIn, ca: &TestCa, window: &str) -> (Harness, tempfile::TempDir) {
    let seed_config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policies = stack_copy(dir.path(), window);
    let addr = stand_in.addr;
    let leash = Harness::start(addr, ca, move |config| {
        config.policies = policies;
        config.default_agent = Some("treasury-agent".into());
        config.approvers.people = seed_config.approvers.people.clone();
        config.approvers.groups = seed_config.approvers.groups.clone();
        config.fx = seed_config.fx.clone();
        config.vendors = seed_config.vendors.clone();
        for (name, token) in TOKENS {
            if let Some(person) = config.approvers.people.get_mut(name) {
                person.token_sha256 = Some(Sha256::digest(token.as_bytes()).into());
            }
        }
        config.upstream.overrides.insert(
            HOST.to_string(),
            leash::config::HostPort {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
        );
    })
    .await;
    (leash, dir)
}

/// fireblocks-sdk-py's `create_transaction(asset_id, amount, source,
/// destination, external_tx_id=…)` body (research §6.2).
fn transfer(asset: &str, amount: &str, to: &str, external: &str) -> String {
    format!(
        r#"{{"waitForStatus": false, "operation": "TRANSFER", "assetId": "{asset}", "source": {{"type": "VAULT_ACCOUNT", "id": "0"}}, "amount": "{amount}", "destination": {{"type": "ONE_TIME_ADDRESS", "oneTimeAddress": {{"address": "{to}"}}}}, "externalTxId": "{external}"}}"#
    )
}

struct Answer {
    status: u16,
    json: Value,
    hold: Option<String>,
    rule: Option<String>,
}

/// Sends `body` with a JWT made now (55 s, like the SDKs).
async fn send(client: &reqwest::Client, body: &str) -> Answer {
    let token = jwt(API_KEY, "/v1/transactions", body.as_bytes(), 55);
    let response = client
        .post(format!("https://{HOST}/v1/transactions"))
        .header("x-api-key", API_KEY)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let hold = header("x-leash-hold-id");
    let rule = header("x-leash-rule");
    Answer {
        status: response.status().as_u16(),
        hold,
        rule,
        json: response.json().await.unwrap_or(Value::Null),
    }
}

fn sent(stand_in: &StandIn, external: &str) -> usize {
    stand_in
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path_and_query == "/v1/transactions")
        .filter(|s| String::from_utf8_lossy(&s.body).contains(&format!("\"{external}\"")))
        .count()
}

async fn approve(leash: &Harness, who: &str, hold: &str) -> (u16, Value) {
    let token = TOKENS.iter().find(|(n, _)| *n == who).unwrap().1;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/v1/holds/{hold}/approve",
            leash.running.admin_addr
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn treasury_moves_through_the_seed_stack() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let (leash, _dir) = start(&stand_in, &ca, ALWAYS_INSIDE).await;
    let client = leash.client();

    // 0.46 BTC = €28,060 = $30,500 to a whitelisted wallet: through.
    let a = send(&client, &transfer("BTC", "0.46", BTC_WALLET, "t-1")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["status"], "SUBMITTED");
    assert_eq!(sent(&stand_in, "t-1"), 1);

    // Off the whitelist: rejected by rule 10, no hold, and a retry is
    // rejected again — at $10 and at $90,000 alike.
    for (amount, key) in [("10", "t-x1"), ("90000", "t-x2")] {
        for _ in 0..2 {
            let no = send(&client, &transfer("USDC", amount, STRANGER, key)).await;
            assert_eq!(no.status, 403, "{}", no.json);
            assert_eq!(no.json["leashCode"], "leash_rejected", "{}", no.json);
            assert_eq!(no.rule.as_deref(), Some("10"));
            assert!(no.hold.is_none(), "a REJECT opens no hold to approve");
        }
        assert_eq!(sent(&stand_in, key), 0);
    }

    // 0.92 BTC = $61,000: alex, sam and dana must all approve; the
    // agent's retry (a new JWT) is what goes out, once.
    let big = transfer("BTC", "0.92", WHITELISTED, "t-2");
    let held = send(&client, &big).await;
    assert_eq!(held.status, 403, "{}", held.json);
    assert_eq!(held.json["leashCode"], "leash_held");
    assert_eq!(held.rule.as_deref(), Some("30"));
    let hold = held.hold.clone().unwrap();
    for who in ["alex", "sam"] {
        let message = held.json["message"].as_str().unwrap();
        assert!(message.contains(who), "{message}");
    }
    for who in ["alex", "sam"] {
        let (status, body) = approve(&leash, who, &hold).await;
        assert_eq!(status, 200, "{body}");
        let again = send(&client, &big).await;
        assert_eq!(
            (again.status, again.json["leashCode"].as_str()),
            (403, Some("leash_held")),
            "after {who}: {}",
            again.json
        );
        assert_eq!(again.hold.as_deref(), Some(hold.as_str()), "no second hold");
    }
    let (status, body) = approve(&leash, "dana", &hold).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sent(&stand_in, "t-2"), 0, "approval sends nothing itself");
    let released = send(&client, &big).await;
    assert_eq!(released.status, 200, "{}", released.json);
    assert_eq!(sent(&stand_in, "t-2"), 1);
    let after = send(&client, &big).await;
    assert_ne!(after.status, 200);
    assert_eq!(sent(&stand_in, "t-2"), 1, "released exactly once");

    // The daily cap, exactly: $30,500 + $61,000 spent so far;
    // 20 ETH = $50,000 (not over $50,000), 19.8 ETH = $49,500,
    // 49,000 USDC, then 10,000 USDC brings the day to $250,000.00 exactly.
    for (asset, amount, key) in [
        ("ETH", "20", "t-3"),
        ("ETH", "19.8", "t-4"),
        ("USDC", "49000", "t-5"),
        ("USDC", "10000", "t-6"),
    ] {
        let ok = send(&client, &transfer(asset, amount, WHITELISTED, key)).await;
        assert_eq!(ok.status, 200, "{asset} {amount}: {}", ok.json);
    }
    // One cent more is over.
    let over = send(&client, &transfer("USDC", "0.01", WHITELISTED, "t-7")).await;
    assert_eq!(over.status, 403, "{}", over.json);
    assert_eq!(over.json["leashCode"], "leash_rejected");
    assert_eq!(over.rule.as_deref(), Some("20"));
    assert_eq!(sent(&stand_in, "t-7"), 0);
    // In BTC too: 0.00000023 BTC = $0.0025.
    let dust = send(&client, &transfer("BTC", "0.00000023", BTC_WALLET, "t-8")).await;
    assert_eq!(dust.rule.as_deref(), Some("20"), "{}", dust.json);

    // The decision names the rates it used.
    let decided = common::decisions(&leash).await;
    let last = decided.last().unwrap();
    assert_eq!(last["intent"][0]["amount"]["currency"], "BTC");
    assert!(last.to_string().contains("61000"), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_the_hours_the_cfo_decides() {
    let ca = TestCa::new("test public CA");
    let stand_in = StandIn::start(&ca).await;
    let (leash, _dir) = start(&stand_in, &ca, ALWAYS_OUTSIDE).await;
    let client = leash.client();
    let late = transfer("USDC", "100", WHITELISTED, "late-1");
    let held = send(&client, &late).await;
    assert_eq!(held.status, 403, "{}", held.json);
    assert_eq!(held.json["leashCode"], "leash_held");
    assert_eq!(held.rule.as_deref(), Some("40"));
    assert!(held.json["message"].as_str().unwrap().contains("dana"));
    let hold = held.hold.unwrap();
    // A partner is not the CFO.
    let (status, _) = approve(&leash, "alex", &hold).await;
    assert_ne!(status, 200);
    let (status, body) = approve(&leash, "dana", &hold).await;
    assert_eq!(status, 200, "{body}");
    let released = send(&client, &late).await;
    assert_eq!(released.status, 200, "{}", released.json);
    assert_eq!(sent(&stand_in, "late-1"), 1);
    // Off the whitelist stays a rejection out of hours too.
    let no = send(&client, &transfer("USDC", "100", STRANGER, "late-2")).await;
    assert_eq!(no.json["leashCode"], "leash_rejected");
    assert!(no.hold.is_none());
}

/// The window as written, at fixed clock times: the seed's own cases.
#[test]
fn the_seed_policy_tests_pass() {
    let config = leash::config::Config::load(Some(&seed().join("config/leash.yaml"))).unwrap();
    let set = leash::policy::load::load_policy_set(&seed(), &config).unwrap();
    let report = leash::policy::testing::run_tests(&set, &seed()).unwrap();
    assert_eq!(report.failed(), 0, "{report}");
    assert!(report.passed() >= 10, "{report}");
}
