//! Load through leash vs. straight to the upstream, in one run.
//!
//! Starts a local TLS "Stripe" upstream (its own test CA) and a leash in this
//! process, then sends the same Stripe `POST /v1/payment_intents` requests
//! twice: through leash (CONNECT, TLS interception, classification, upstream
//! TLS) and directly to the upstream. Prints requests/s and latency
//! percentiles for both.
//!
//! ```text
//! cargo run --release --example loadgen -- --requests 20000 --concurrency 32
//! cargo run --release --example loadgen -- --requests 20000 --concurrency 32 --cap
//! ```
//!
//! The default stack allows everything with no rules; `--cap` decides every
//! request under a DAILY_CAP instead (a limit no run reaches), so the cost
//! of cap accounting shows.
//!
//! `--ledger postgres` keeps the caps in a fresh database of the PostgreSQL
//! server at `LEASH_TEST_PG_URL` (SPEC §11), and `--instances N` starts N
//! leash on it, the workers spread over them:
//!
//! ```text
//! LEASH_TEST_PG_URL=postgres://leash@127.0.0.1:5432/postgres \
//!   cargo run --release --example loadgen -- --cap --ledger postgres --instances 4
//! ```
//!
//! Everything shares the machine's cores (client, leash and upstream), so
//! the numbers compare the two paths; they are not a capacity figure.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, TestCa, Upstream};

struct Args {
    requests: usize,
    concurrency: usize,
    http2: bool,
    /// Turn off `audit.min_free_space` (its statvfs per audit write), to
    /// measure what the floor costs.
    no_free_space_floor: bool,
    /// Decide under a stack with a DAILY_CAP (a limit no run reaches), so
    /// that every request pays for cap accounting, instead of the default
    /// allow-all stack with no rules.
    cap: bool,
    /// `--ledger postgres`: the shared ledger instead of sled.
    postgres: bool,
    /// How many leash to start (on one shared ledger when more than one).
    instances: usize,
}

/// `--cap`: a DAILY_CAP every request is counted against but none reaches,
/// besides the allow-all defaults.
const CAPPED: &str = r#"
agent: "*"
currency: EUR
timezone: Europe/Paris
default: AUTO_APPROVE
unknown: AUTO_APPROVE
unreadable: REQUIRE_HUMAN
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 1000000000
"#;

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        requests: 10_000,
        concurrency: 32,
        http2: false,
        no_free_space_floor: false,
        cap: false,
        postgres: false,
        instances: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--requests" | "-n" => args.requests = value("--requests")?,
            "--concurrency" | "-c" => args.concurrency = value("--concurrency")?.max(1),
            "--http2" => args.http2 = true,
            "--no-free-space-floor" => args.no_free_space_floor = true,
            "--cap" => args.cap = true,
            "--instances" => args.instances = value("--instances")?.max(1),
            "--ledger" => match it.next().as_deref() {
                Some("postgres") => args.postgres = true,
                Some("sled") => args.postgres = false,
                _ => return Err("--ledger needs sled or postgres".into()),
            },
            "--help" | "-h" => return Err(
                "usage: loadgen [--requests N] [--concurrency C] [--http2] [--no-free-space-floor] [--cap] [--ledger sled|postgres] [--instances N]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Latencies of one run and how long it took in all.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: usize,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }

    fn print(&self, label: &str) {
        let rps = self.latencies.len() as f64 / self.elapsed.as_secs_f64();
        println!(
            "{label:<14} {rps:>9.0} req/s   p50 {:>8.3} ms   p90 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms   failures {}",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
            self.failures,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the workers, worker `i` on `clients[i % len]` (one per leash).
async fn drive(clients: Vec<reqwest::Client>, url: String, args: &Args) -> Run {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..args.concurrency {
        let client = clients[i % clients.len()].clone();
        let url = url.clone();
        let next = Arc::clone(&next);
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(
                        "amount=2000&currency=eur&customer=cus_9s6XKzkNRiz8i3&metadata[order]=6735",
                    )
                    .send()
                    .await
                {
                    Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut failures = 0;
    for worker in workers {
        if let Ok((mut l, f)) = worker.await {
            latencies.append(&mut l);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Run {
        latencies,
        elapsed,
        failures,
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    leash::install_crypto_provider();
    let ca = TestCa::new("loadgen upstream CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let no_floor = args.no_free_space_floor;
    let policy = if args.cap { CAPPED } else { common::ALLOW_ALL };
    let ledger = if args.postgres {
        match common::pg::TestLedger::postgres().await {
            Some(ledger) => ledger,
            None => std::process::exit(2),
        }
    } else {
        common::pg::TestLedger::Sled
    };
    if args.instances > 1 && !args.postgres {
        eprintln!("--instances needs --ledger postgres (sled is one process's)");
        std::process::exit(2);
    }
    let mut leashes = Vec::new();
    for _ in 0..args.instances {
        leashes.push(
            Harness::start_on_ledger(&ledger, upstream.addr, &ca, policy, |config| {
                if no_floor {
                    config.audit.min_free_space = 0;
                }
                // The default 2 s, as a user runs it.
                config.ledger.timeout = Duration::from_secs(2);
            })
            .await,
        );
    }
    let mut throughs = Vec::new();
    for leash in &leashes {
        let mut through = leash
            .client_builder()
            .pool_max_idle_per_host(args.concurrency);
        if args.http2 {
            through = through.http2_prior_knowledge();
        }
        throughs.push(through.build().expect("client through leash"));
    }
    let mut direct = reqwest::Client::builder()
        .tls_certs_only([ca.reqwest_cert()])
        .resolve("api.stripe.com", upstream.addr)
        .pool_max_idle_per_host(args.concurrency);
    if args.http2 {
        direct = direct.http2_prior_knowledge();
    }
    let direct = direct.build().expect("direct client");

    println!(
        "{} requests, concurrency {}, {} (POST /v1/payment_intents, TLS both legs){}, ledger {}{}",
        args.requests,
        args.concurrency,
        if args.http2 { "HTTP/2" } else { "HTTP/1.1" },
        if args.cap { ", DAILY_CAP stack" } else { "" },
        if args.postgres { "postgres" } else { "sled" },
        if args.instances > 1 {
            format!(", {} leash", args.instances)
        } else {
            String::new()
        }
    );
    // Warm up both paths (TLS sessions, leaf minting, pools).
    let warmup = Args {
        requests: args.concurrency * 4,
        concurrency: args.concurrency,
        http2: args.http2,
        no_free_space_floor: args.no_free_space_floor,
        cap: args.cap,
        postgres: args.postgres,
        instances: args.instances,
    };
    let through_url = "https://api.stripe.com/v1/payment_intents".to_string();
    let direct_url = format!(
        "https://api.stripe.com:{}/v1/payment_intents",
        upstream.addr.port()
    );
    drive(throughs.clone(), through_url.clone(), &warmup).await;
    drive(vec![direct.clone()], direct_url.clone(), &warmup).await;

    let direct_run = drive(vec![direct], direct_url, &args).await;
    let through_run = drive(throughs, through_url, &args).await;
    direct_run.print("direct");
    through_run.print("through leash");
    let added = through_run
        .percentile(0.5)
        .saturating_sub(direct_run.percentile(0.5));
    println!("leash adds {:.3} ms at p50", ms(added));
}
