//! Issue 8 item 18: a disk that fills up stops leash (nothing is forwarded
//! without its audit entry) and leash comes back by itself once there is
//! room again — no restart, `/healthz` 200, and a `recovered` entry that
//! records the gap.
//!
//! The disk fills for real: the test reserves (fallocate) enough of the
//! temp directory's file system to drop it below `audit.min_free_space`,
//! then deletes the reservation. sled 0.34 hangs for good on its first write
//! after a real ENOSPC, so leash keeps a floor of free space instead of
//! letting its database reach the end of the disk.

#[path = "common/child.rs"]
mod child;
mod common;

use std::time::Duration;

use child::ChildLeash;
use common::{TestCa, Upstream};
use serde_json::Value;

const RESERVE: u64 = 512 * 1024 * 1024;
const MARGIN: u64 = 256 * 1024 * 1024;

fn available(dir: &std::path::Path) -> u64 {
    let stat = rustix::fs::statvfs(dir).unwrap();
    stat.f_bavail * stat.f_frsize
}

async fn charge(client: &reqwest::Client) -> reqwest::Response {
    client
        .post("https://api.stripe.com/v1/payouts")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=500&currency=eur")
        .send()
        .await
        .unwrap()
}

async fn healthz(admin: &reqwest::Client, leash: &ChildLeash) -> u16 {
    admin
        .get(format!("http://{}/healthz", leash.admin))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_forwarding_and_leash_recovers_without_a_restart() {
    leash::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let free = available(dir.path());
    assert!(
        free > RESERVE + MARGIN,
        "this test needs {} MiB free where the temp directory is; {} MiB are",
        (RESERVE + MARGIN) >> 20,
        free >> 20
    );
    let ca = TestCa::new("test public CA");
    let vendor = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    // Above the floor now, below it once RESERVE is taken.
    let floor = free - RESERVE + MARGIN;
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/policy.yaml"), common::ALLOW_ALL).unwrap();
    std::fs::write(dir.path().join("upstream-ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(
        dir.path().join("leash.yaml"),
        format!(
            "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: growth-agent\n\
             upstream:\n  overrides:\n    api.stripe.com: {}\n  extra_ca: upstream-ca.pem\n\
             audit: {{ min_free_space: {floor} }}\n\
             approvers:\n  auditors:\n    test-auditor: {{ token_sha256: \"{}\" }}\n",
            vendor.addr,
            common::AUDITOR_TOKEN_SHA256
        ),
    )
    .unwrap();
    let leash = ChildLeash::spawn(dir.path());
    let client = leash.client(dir.path());
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(charge(&client).await.status(), 200);
    assert_eq!(vendor.seen().len(), 1);

    // The disk fills up.
    let reserve_path = dir.path().join("reserve");
    let reserve = std::fs::File::create(&reserve_path).unwrap();
    rustix::fs::fallocate(&reserve, rustix::fs::FallocateFlags::empty(), 0, RESERVE).unwrap();
    reserve.sync_all().unwrap();
    // leash reads the free space at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = charge(&client).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "leash_audit_unavailable", "{body}");
    assert_eq!(charge(&client).await.status(), 503);
    assert_eq!(
        vendor.seen().len(),
        1,
        "nothing reached the vendor unaudited"
    );
    assert_eq!(healthz(&admin, &leash).await, 503);

    // Room again: the probe (every 5 s) writes, and leash serves again.
    drop(reserve);
    std::fs::remove_file(&reserve_path).unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if healthz(&admin, &leash).await == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "leash did not recover: {}", leash.logs());
    assert_eq!(charge(&client).await.status(), 200);
    assert_eq!(vendor.seen().len(), 2);

    let audit = common::audit_entries(leash.admin).await;
    let recovered = audit
        .iter()
        .find(|e| e["kind"] == "recovered")
        .expect("a recovered entry");
    assert!(recovered["details"]["refused_entries"].as_u64().unwrap() >= 2);
    assert!(recovered["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("min_free_space"));
    leash.kill();
}
