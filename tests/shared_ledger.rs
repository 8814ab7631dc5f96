//! Shared caps on PostgreSQL (SPEC §11, issue 15): several leash on one
//! database never pass a cap together, stay exact when one of them is
//! killed or the database goes away, and fail closed meanwhile.
//!
//! Needs the test PostgreSQL server `.ci/run` starts (`LEASH_TEST_PG_URL`;
//! `LEASH_TEST_PG_CTL` stops and starts it). Without it each test prints
//! why and passes, except in CI, where it fails. The tests here share that
//! one server and one of them stops it, so they run one at a time.

#[path = "common/child.rs"]
mod child;
mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use leash::config::LedgerConfig;
use leash::money::{Currency, Money};
use leash::policy::caps::{CapPeriod, CapQuery, ScopeKey, SpendTotals};
use leash::policy::engine::SpendEvent;
use leash::policy::model::CapWindow;
use leash::spend::{decide_and_reserve, PostgresLedger, Reservation, SpendLedger};
use leash::store::Store;
use rust_decimal::Decimal;

use child::ChildLeash;
use common::pg;
use common::{TestCa, Upstream, AUDITOR_TOKEN};

/// One test at a time: they share the server, and one stops it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CAP: &str = r#"
agent: growth-agent
currency: EUR
timezone: Europe/Paris
default: AUTO_APPROVE
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 1000
"#;

fn eur(amount: i64) -> Money {
    Money::new(Decimal::from(amount), Currency::parse("EUR").unwrap())
}

fn event(amount: i64) -> SpendEvent {
    SpendEvent {
        at: Utc::now(),
        agent: "growth-agent".into(),
        vendor: "stripe".into(),
        operation: "payment_intent.create".into(),
        category: "payment".into(),
        beneficiary: Some("cus_1".into()),
        amount: eur(amount),
    }
}

fn day_query() -> CapQuery<'static> {
    CapQuery {
        scope: ScopeKey::Agent("growth-agent"),
        vendors: None,
        operations: None,
        categories: None,
        period: CapPeriod::of(Utc::now(), chrono_tz::Europe::Paris, CapWindow::Day).unwrap(),
    }
}

/// The EUR total `totals` gives the day query.
fn spent(totals: &dyn SpendTotals, query: &CapQuery<'_>) -> Decimal {
    let total = totals.total(query).unwrap();
    total
        .by_currency
        .iter()
        .map(|(_, t)| t.sum.value().unwrap())
        .sum()
}

async fn ledger(url: &str, instance: &str, dir: &std::path::Path) -> Arc<PostgresLedger> {
    let store = Store::open(dir).unwrap();
    let config = LedgerConfig {
        timeout: Duration::from_secs(30),
        ..LedgerConfig::default()
    };
    PostgresLedger::start(&config, url, instance, &store)
        .await
        .unwrap()
}

/// Reserves `amount` if the day's spend stays within `limit`: a cap, as
/// the engine decides one. Whether it reserved.
async fn try_spend(ledger: &dyn SpendLedger, limit: i64, amount: i64) -> Option<Reservation> {
    let queries = [day_query()];
    let (ok, reservation) = decide_and_reserve(ledger, Utc::now(), &queries, |totals| {
        let ok = spent(totals, &queries[0]) + Decimal::from(amount) <= Decimal::from(limit);
        (ok, if ok { vec![event(amount)] } else { vec![] })
    })
    .await
    .unwrap();
    ok.then_some(reservation)
}

/// The proof of the locking design: 256 concurrent €10 decisions at one
/// €1,000 cap through four ledgers (four pools, as four instances have):
/// exactly 100 reserve, and the store's total is exactly €1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_through_four_ledgers_never_pass_a_cap_together() {
    let _serial = SERIAL.lock().await;
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut ledgers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        ledgers.push(ledger(&url, &format!("i{i}"), dir.path()).await);
    }
    let mut tasks = Vec::new();
    for i in 0..256 {
        let ledger = Arc::clone(&ledgers[i % 4]);
        tasks.push(tokio::spawn(async move {
            try_spend(&*ledger, 1000, 10).await.is_some()
        }));
    }
    let mut passed = 0;
    for task in tasks {
        passed += usize::from(task.await.unwrap());
    }
    assert_eq!(passed, 100);
    let queries = [day_query()];
    let totals = ledgers[0].split_totals(&queries).await.unwrap();
    let split = totals[0].as_ref().unwrap();
    assert_eq!(split.reserved.by_currency[0].1.count, 100);
    assert_eq!(
        split.reserved.by_currency[0].1.sum.value(),
        Some(Decimal::from(1000))
    );
    assert!(split.settled.is_empty());
}

/// settle and release are idempotent by reservation id; a release of an
/// id that was never committed leaves a tombstone that a late commit of
/// that id cannot get past (what reconciles a doubtful commit).
#[tokio::test(flavor = "multi_thread")]
async fn settle_and_release_are_idempotent_and_an_unknown_id_is_tombstoned() {
    let _serial = SERIAL.lock().await;
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(&url, "solo", dir.path()).await;
    let a = try_spend(&*ledger, 100, 60).await.unwrap();
    let b = try_spend(&*ledger, 100, 30).await.unwrap();
    assert!(
        try_spend(&*ledger, 100, 20).await.is_none(),
        "90 + 20 > 100"
    );
    ledger.settle(&a).await.unwrap();
    ledger.settle(&a).await.unwrap();
    ledger.release(&b).await.unwrap();
    ledger.release(&b).await.unwrap();
    ledger.settle(&b).await.unwrap(); // released stays released
    let queries = [day_query()];
    let totals = ledger.split_totals(&queries).await.unwrap();
    let split = totals[0].as_ref().unwrap();
    assert!(split.reserved.is_empty(), "{split:?}");
    assert_eq!(split.settled.by_currency[0].1.count, 1);
    assert_eq!(
        split.settled.by_currency[0].1.sum.value(),
        Some(Decimal::from(60))
    );
    assert!(try_spend(&*ledger, 100, 40).await.is_some(), "60 + 40");

    // Releasing an id nobody committed: a tombstone, and the late commit
    // of a reservation with that id fails.
    ledger
        .release(&Reservation {
            ids: vec![9_999_999],
        })
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let late = client
        .execute(
            "INSERT INTO leash_reservations (instance, id, state) VALUES ('solo', 9999999, 'reserved')",
            &[],
        )
        .await;
    assert!(
        late.is_err(),
        "a late commit must not get past the tombstone"
    );
}

/// The database gone: decisions are refused (Unavailable), nothing is
/// reserved, and the ledger recovers on its own when it is back.
/// (Runs only with `LEASH_TEST_PG_CTL`.)
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_fails_closed_and_recovers() {
    let _serial = SERIAL.lock().await;
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let Some(ctl) = pg_ctl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(&url, "solo", dir.path()).await;
    assert!(try_spend(&*ledger, 100, 10).await.is_some());
    pg_ctl_run(&ctl, "stop");
    let queries = [day_query()];
    let refused =
        decide_and_reserve(&*ledger, Utc::now(), &queries, |_| ((), vec![event(10)])).await;
    assert!(
        matches!(refused, Err(leash::spend::LedgerError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(ledger.unavailable().is_some());
    pg_ctl_run(&ctl, "start");
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if ledger.unavailable().is_none() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the ledger came back without a restart");
    let totals = ledger.split_totals(&queries).await.unwrap();
    assert_eq!(
        totals[0].as_ref().unwrap().reserved.by_currency[0].1.count,
        1,
        "only the reservation made before the outage"
    );
}

/// `LEASH_TEST_PG_CTL`: a script taking `stop` or `start` for the test
/// server. `None` (printed) outside CI; in CI it must be there.
fn pg_ctl() -> Option<String> {
    match std::env::var("LEASH_TEST_PG_CTL") {
        Ok(ctl) if !ctl.is_empty() => Some(ctl),
        _ if std::env::var_os("CI").is_some() => {
            panic!("LEASH_TEST_PG_CTL is not set in CI (.ci/run sets it)")
        }
        _ => {
            eprintln!("skipped: LEASH_TEST_PG_CTL is not set, so the test server cannot be stopped and started");
            None
        }
    }
}

fn pg_ctl_run(ctl: &str, what: &str) {
    let status = std::process::Command::new(ctl).arg(what).status().unwrap();
    assert!(status.success(), "{ctl} {what}");
}

// ---------------------------------------------------------------------------
// Four leash processes on one database.

/// One leash of the fleet: its directory (data, CA, chain) and process.
struct Member {
    dir: tempfile::TempDir,
    leash: ChildLeash,
}

fn write_config(dir: &std::path::Path, stripe: SocketAddr, ca: &TestCa) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/policy.yaml"), CAP).unwrap();
    std::fs::write(dir.join("upstream-ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(
        dir.join("leash.yaml"),
        format!(
            "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: growth-agent\n\
             upstream:\n  overrides:\n    api.stripe.com: {stripe}\n  extra_ca: upstream-ca.pem\n\
             ledger: {{ kind: postgres, url_env: {env}, pool: 8, timeout: 30s }}\n\
             approvers:\n  auditors:\n    test-auditor: {{ token_sha256: \"{auditor}\" }}\n",
            env = pg::URL_ENV,
            auditor = common::AUDITOR_TOKEN_SHA256
        ),
    )
    .unwrap();
}

fn spawn(dir: &std::path::Path, url: &str) -> ChildLeash {
    ChildLeash::spawn_with_env(dir, "info", &[(pg::URL_ENV, url)])
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    Forwarded,
    Rejected,
    LedgerUnavailable,
    /// No answer: the leash it went to was killed.
    Lost(String),
    Other(u16, String),
}

async fn charge(client: &reqwest::Client) -> Ended {
    let sent = client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=1000&currency=eur&customer=cus_1")
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Ended::Lost(e.to_string()),
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("").to_string();
    match (status, code.as_str()) {
        (200, _) => Ended::Forwarded,
        (403, "leash_rejected") => Ended::Rejected,
        (503, "leash_ledger_unavailable") => Ended::LedgerUnavailable,
        _ => Ended::Other(status, code),
    }
}

/// The clients of the fleet, replaced when a member restarts.
type Clients = Arc<Mutex<Vec<reqwest::Client>>>;

/// Fires `n` €10 requests, round-robin over the fleet, staggered a little
/// so that a kill or an outage lands in the middle of the run.
async fn fire(clients: &Clients, n: usize) -> Vec<Ended> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let clients = Arc::clone(clients);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64) * 4)).await;
            let client = {
                let clients = clients.lock().unwrap();
                clients[i % clients.len()].clone()
            };
            charge(&client).await
        }));
    }
    let mut ended = Vec::new();
    for task in tasks {
        ended.push(task.await.unwrap());
    }
    ended
}

/// Every `decision` entry of a member's chain (through its admin API).
async fn decisions(admin: SocketAddr) -> Vec<serde_json::Value> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut out = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut url = format!("http://{admin}/v1/audit?limit=1000");
        if let Some(a) = after {
            url.push_str(&format!("&after={a}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .bearer_auth(AUDITOR_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        let Some(last) = entries.last().and_then(|e| e["seq"].as_u64()) else {
            return out;
        };
        out.extend(entries.into_iter().filter(|e| e["kind"] == "decision"));
        after = Some(last);
    }
}

async fn healthy(admin: SocketAddr) -> bool {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    match client.get(format!("http://{admin}/healthz")).send().await {
        Ok(r) => r.status() == 200,
        Err(_) => false,
    }
}

struct Run {
    ended: Vec<Ended>,
    seen: usize,
    /// AUTO_APPROVE decisions with a reservation, over every chain.
    approved_in_chains: usize,
    instances: BTreeSet<String>,
    /// The members' directories, their processes killed.
    dirs: Vec<tempfile::TempDir>,
}

/// Starts four leash on a fresh database, fires 256 requests at them while
/// `disturb` runs, and reads every chain afterwards.
async fn four_leash(
    disturb: impl FnOnce(Vec<Member>, Clients, String) -> tokio::task::JoinHandle<Vec<Member>>,
    second_round: bool,
) -> Option<Run> {
    let url = pg::fresh_database().await?;
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let mut members = Vec::new();
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), upstream.addr, &ca);
        let leash = spawn(dir.path(), &url);
        members.push(Member { dir, leash });
    }
    let clients: Clients = Arc::new(Mutex::new(
        members
            .iter()
            .map(|m| m.leash.client(m.dir.path()))
            .collect(),
    ));
    let disturbance = disturb(members, Arc::clone(&clients), url.clone());
    let mut ended = fire(&clients, 256).await;
    let members = disturbance.await.unwrap();
    if second_round {
        // Everything healthy again, and the outbox drained: a second run
        // must find exactly what the first one left counted.
        for m in &members {
            let mut ok = false;
            for _ in 0..150 {
                if healthy(m.leash.admin).await {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(ok, "leash at {} did not recover", m.leash.admin);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        ended.extend(fire(&clients, 256).await);
    }
    let mut approved_in_chains = 0;
    let mut instances = BTreeSet::new();
    for m in &members {
        for d in decisions(m.leash.admin).await {
            if d["decision"] == "AUTO_APPROVE"
                && d["details"]["reservation"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            {
                approved_in_chains += 1;
            }
            if let Some(i) = d["details"]["instance"].as_str() {
                instances.insert(i.to_string());
            }
        }
    }
    let mut dirs = Vec::new();
    for Member { dir, leash } in members {
        leash.kill();
        dirs.push(dir);
    }
    Some(Run {
        ended,
        seen: upstream.seen().len(),
        approved_in_chains,
        instances,
        dirs,
    })
}

fn count(ended: &[Ended], what: &Ended) -> usize {
    ended.iter().filter(|e| *e == what).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_leash_on_one_database_pass_exactly_the_cap() {
    let _serial = SERIAL.lock().await;
    let Some(run) = four_leash(|members, _, _| tokio::spawn(async move { members }), false).await
    else {
        return;
    };
    assert_eq!(run.seen, 100, "{:?}", run.ended);
    assert_eq!(count(&run.ended, &Ended::Forwarded), 100);
    assert_eq!(count(&run.ended, &Ended::Rejected), 156, "{:?}", run.ended);
    assert_eq!(run.approved_in_chains, 100);
    assert_eq!(run.instances.len(), 4, "each chain names its own instance");

    // `leash audit verify` takes the four chains (each with its own key)
    // and an export of one of them, and verifies each.
    let mut args: Vec<String> = vec!["audit".into(), "verify".into()];
    for d in &run.dirs {
        args.push("--public-key".into());
        args.push(d.path().join("certs/leash-audit.pub").display().to_string());
    }
    for d in &run.dirs {
        args.push(d.path().join("data").display().to_string());
    }
    let first = run.dirs[0].path();
    let export = child::leash_cli(first, &["audit", "export"]);
    assert!(export.status.success());
    let export_file = first.join("chain.jsonl");
    std::fs::write(&export_file, &export.stdout).unwrap();
    args.push(export_file.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let verified = child::leash_cli(first, &argv);
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(out.matches(": ok: ").count(), 5, "{out}");
    for i in &run.instances {
        assert!(out.contains(&format!("instance {i}")), "{out}");
    }

    // A changed entry in the export fails that chain, and the command.
    let text = String::from_utf8_lossy(&export.stdout).replace("AUTO_APPROVE", "REJECT");
    std::fs::write(&export_file, text).unwrap();
    let verified = child::leash_cli(first, &argv);
    assert!(!verified.status.success());
    let err = String::from_utf8_lossy(&verified.stderr);
    assert!(
        err.contains("chain.jsonl: audit chain verification FAILED"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leash_killed_and_restarted_mid_run_lets_nothing_overshoot() {
    let _serial = SERIAL.lock().await;
    let Some(run) = four_leash(
        |mut members, clients, url| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let victim = members.remove(0);
                let Member { dir, leash } = victim;
                leash.kill();
                let leash = spawn(dir.path(), &url);
                clients.lock().unwrap()[0] = leash.client(dir.path());
                members.insert(0, Member { dir, leash });
                members
            })
        },
        false,
    )
    .await
    else {
        return;
    };
    assert!(run.seen <= 100, "overshoot: {} forwarded", run.seen);
    assert!(count(&run.ended, &Ended::Forwarded) <= run.seen);
    assert!(
        run.approved_in_chains >= run.seen,
        "every forwarded request is in some chain: {} approved, {} seen",
        run.approved_in_chains,
        run.seen
    );
    for e in &run.ended {
        assert!(
            matches!(
                e,
                Ended::Forwarded | Ended::Rejected | Ended::LedgerUnavailable | Ended::Lost(_)
            ),
            "{e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_stopped_mid_run_fails_closed_and_counts_exactly() {
    let _serial = SERIAL.lock().await;
    let Some(ctl) = pg_ctl() else { return };
    let Some(run) = four_leash(
        move |members, _, _| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let c = ctl.clone();
                tokio::task::spawn_blocking(move || pg_ctl_run(&c, "stop"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(3)).await;
                tokio::task::spawn_blocking(move || pg_ctl_run(&ctl, "start"))
                    .await
                    .unwrap();
                members
            })
        },
        true,
    )
    .await
    else {
        return;
    };
    // Two rounds of 256: never more than the cap, whatever the outage did
    // to commits in flight. (Usually exactly 100: doubtful commits are
    // released on reconnect. On a loaded machine the second round has
    // been seen to pass fewer, which errs on the safe side; reported.)
    assert!(run.seen <= 100, "overshoot: {} forwarded", run.seen);
    assert_eq!(count(&run.ended, &Ended::Forwarded), run.seen);
    if run.seen < 100 {
        let refused = count(&run.ended, &Ended::LedgerUnavailable);
        eprintln!(
            "note: {} of the cap's 100 passed over both rounds ({refused} answered 503)",
            run.seen
        );
    }
    assert!(
        count(&run.ended, &Ended::LedgerUnavailable) > 0,
        "the outage was seen"
    );
    assert!(run.approved_in_chains >= run.seen);
    for e in &run.ended {
        assert!(
            matches!(
                e,
                Ended::Forwarded | Ended::Rejected | Ended::LedgerUnavailable
            ),
            "every refused request is answered 503 or leash_rejected: {e:?}"
        );
    }
}
