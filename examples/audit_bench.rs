//! Audit chain throughput: durable appends under concurrency, and verify.
//!
//! Appends decision entries (realistic size: an intent, one verdict, fx)
//! from N concurrent tasks, each waiting for its entry to be flushed before
//! sending the next, as the request path does; then drops the log and
//! verifies the whole chain.
//!
//! ```text
//! cargo run --release --example audit_bench -- --entries 100000 --appenders 32
//! ```
//!
//! The database lives in a temporary directory on the same disk as the
//! system temp dir (`TMPDIR` moves it): appends/s is bounded by how fast
//! that disk flushes, divided among the group each flush carries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leash::audit::{public_key_path, verify, AuditLog, CheckpointPolicy, NewEntry, PublicKey};
use leash::store::Store;
use serde_json::json;

struct Args {
    entries: u64,
    appenders: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        entries: 100_000,
        appenders: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{arg} needs a number"))?;
        match arg.as_str() {
            "--entries" => args.entries = value,
            "--appenders" => args.appenders = value.max(1),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn entry(i: u64) -> NewEntry {
    NewEntry::decision(
        "growth-agent",
        json!({
            "agent": "growth-agent", "vendor": "stripe", "operation": "payment_intent.create",
            "amount": {"amount": format!("{}.{:02}", i % 5000, i % 100), "currency": "EUR"},
            "beneficiary": format!("cus_{i:014}"), "category": "payment",
            "idempotency_key": format!("idem-{i}"),
            "fingerprint": format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
            "at": "2025-06-01T12:00:00.000000Z",
        }),
        "AUTO_APPROVE",
        Some(10),
        json!([{"priority": 10, "type": "cap", "action": "REJECT", "triggered": false,
                "shadow": false, "reason": "spent 4,200.00 + 120.00 <= 5,000.00 EUR"}]),
        "ab".repeat(32),
    )
    .with_detail("fx", json!([{"from": "USD", "to": "EUR", "rate": "0.92"}]))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let key = dir.path().join("certs/leash-audit.key");

    let store = Store::open(&data)?;
    let log = AuditLog::open(
        &store,
        &key,
        CheckpointPolicy::default(),
        data.join("checkpoint"),
    )?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.appenders)
        .map(|_| {
            let log = log.clone();
            let next = Arc::clone(&next);
            let total = args.entries;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, leash::audit::AuditError>(latencies);
                    }
                    let t = Instant::now();
                    log.append(entry(i)).await?;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let append_time = started.elapsed();
    drop(log);
    drop(store);
    latencies.sort_unstable();

    let public = PublicKey::read_file(&public_key_path(&key))?;
    let store = Store::open(&data)?;
    let started = Instant::now();
    let report = verify(&store, &public, None)?;
    let verify_time = started.elapsed();

    let per_sec = args.entries as f64 / append_time.as_secs_f64();
    let per_min = report.entries as f64 / verify_time.as_secs_f64() * 60.0;
    println!(
        "append: {} entries, {} concurrent appenders, durable: {:.2?} -> {:.0} entries/s (latency p50 {:.2?}, p99 {:.2?})",
        args.entries,
        args.appenders,
        append_time,
        per_sec,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    println!(
        "verify: {} entries ({} checkpoints) in {:.2?} -> {:.0} entries/min",
        report.entries, report.checkpoints_checked, verify_time, per_min
    );
    Ok(())
}
