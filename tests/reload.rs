//! Hot reload that cannot lose a policy (issue 8 item 16): a change is
//! loaded only once the directory has settled, and a reload that drops the
//! stack of an agent listed under `agents:` is refused, audited, and the
//! old set stays in force.

mod common;

use std::time::Duration;

use common::{Harness, TestCa, Upstream};
use leash::policy::live::{LivePolicies, Reload};

const REJECT_ALL: &str = "agent: growth-agent\ncurrency: EUR\ndefault: REJECT\nunknown: REJECT\nunreadable: REJECT\nrules:\n  - { priority: 1, type: AMOUNT_THRESHOLD, action: REJECT, amount: { gte: 0 } }\n";

/// The first half of a file an editor is writing: valid YAML, and on its
/// own it approves everything (the REJECT rule is in the second half).
const HALF: &str = "agent: growth-agent\ncurrency: EUR\ndefault: AUTO_APPROVE\nunknown: REJECT\nunreadable: REJECT\n";
const REST: &str =
    "rules:\n  - { priority: 1, type: AMOUNT_THRESHOLD, action: REJECT, amount: { gte: 1000 } }\n";

#[test]
fn a_half_written_file_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, REJECT_ALL).unwrap();
    let config = leash::config::Config::default();
    let live = LivePolicies::load(dir.path(), &config).unwrap();
    let old = live.current().hash.clone();

    // The editor has written half of the new file when the poll comes.
    std::fs::write(&file, HALF).unwrap();
    assert!(matches!(live.reload_if_changed(), Reload::Settling));
    assert_eq!(live.current().hash, old, "the half file is not in force");

    // It finishes writing before the next poll: still changing.
    std::fs::write(&file, format!("{HALF}{REST}")).unwrap();
    assert!(matches!(live.reload_if_changed(), Reload::Settling));
    assert_eq!(live.current().hash, old);

    // Unchanged across two polls: now it is loaded, whole.
    match live.reload_if_changed() {
        Reload::Swapped(set) => {
            assert_ne!(set.hash, old);
            assert_eq!(set.stacks.len(), 1);
            assert_eq!(set.stacks[0].rules.len(), 1, "the REJECT rule came with it");
        }
        other => panic!("expected the finished file to load, got {other:?}"),
    }
    assert!(matches!(live.reload_if_changed(), Reload::Unchanged));
}

#[test]
fn a_rewrite_with_the_same_size_and_time_is_still_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let a = REJECT_ALL.replace("gte: 0", "gte: 1");
    let b = REJECT_ALL.replace("gte: 0", "gte: 2");
    std::fs::write(&file, &a).unwrap();
    let live = LivePolicies::load(dir.path(), &leash::config::Config::default()).unwrap();
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, &b).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert!(matches!(live.reload_if_changed(), Reload::Settling));
    assert!(matches!(live.reload_if_changed(), Reload::Swapped(_)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_drops_a_listed_agents_stack_is_refused_and_audited() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, REJECT_ALL, |c| {
        c.agents.insert(
            "growth-agent".into(),
            leash::config::AgentCredential::default(),
        );
    })
    .await;
    let client = leash.client();
    let charge = || async {
        client
            .post("https://api.stripe.com/v1/payment_intents")
            .body("amount=2000&currency=eur")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        charge().await.status(),
        403,
        "rejected by the stack in force"
    );

    // The agent's file is replaced by one for another agent (a rename gone
    // wrong): with no stack, growth-agent would fall to other defaults.
    std::fs::remove_file(leash.dir.path().join("policies/policy.yaml")).unwrap();
    std::fs::write(
        leash.dir.path().join("policies/other.yaml"),
        "agent: payout-agent\ncurrency: EUR\ndefault: AUTO_APPROVE\nunknown: REJECT\nunreadable: REJECT\n",
    )
    .unwrap();

    // Wait for the refusal to reach the chain.
    let admin = leash.running.admin_addr;
    let mut refused = None;
    for _ in 0..150 {
        let entries: serde_json::Value = common::admin_get(
            &leash,
            &format!("http://{admin}/v1/audit?after=0&limit=1000"),
        )
        .await
        .json()
        .await
        .unwrap();
        refused = entries["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["kind"] == "policy_loaded" && e["details"]["refused"] == true)
            .cloned();
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("a refused reload in the audit chain");
    assert_eq!(
        refused["details"]["drops_agents"][0], "growth-agent",
        "{refused}"
    );

    let before = upstream.seen().len();
    assert_eq!(
        charge().await.status(),
        403,
        "the old set is still in force"
    );
    assert_eq!(upstream.seen().len(), before);
}
