//! The reproducible load benchmark: the real `leash` binary, as its own
//! process, between a client and a local TLS "Stripe", against a direct
//! connection to the same upstream in the same run.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench -- [--requests 20000] [--concurrency 1,32,128] [--prior 1000000]
//! ```
//!
//! leash runs a 4-rule stack with a DAILY_CAP (every request is decided,
//! counted against the cap and audited before it is forwarded; none is
//! refused). For each concurrency the same `POST /v1/payment_intents` is
//! sent `--requests` times directly, then through leash (CONNECT, TLS
//! interception, classification, decision, durable audit entry, upstream
//! TLS), and one line each reports requests/s and latency percentiles; the
//! leash line adds leash's own CPU time per request (from /proc, so the
//! client and upstream in this process do not count), its context switches
//! per request, and its resident memory after the run.
//!
//! `--prior N` first writes N settled spend events of today into the
//! ledger leash starts on, so the cost of a decision after a long history
//! shows (it should not grow).
//!
//! Client, upstream and leash share the machine's cores: the numbers compare
//! the two paths in one run; they are not a capacity figure.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestCa, Upstream};

const USAGE: &str =
    "usage: bench [--requests N] [--concurrency C[,C...]] [--prior N] [--db-cache SIZE] [--segment-entries N] [--rss-at N[,N...]] [--leash PATH]

  --requests N       requests per path and concurrency (default 20000)
  --concurrency LIST concurrent clients, comma-separated (default 1,32,128)
  --prior N          settled spend events written into the ledger first (default 0)
  --db-cache SIZE    leash's limits.db_cache, e.g. 64MiB (default: leash's, 16MiB)
  --segment-entries N  leash's audit.segment_entries (default: leash's, 16384; 0: no sealing)
  --rss-at LIST      print leash's RSS as its run passes each of these request counts
  --leash PATH       the leash binary (default: target/release/leash beside this example)";

/// Four rules, all evaluated for every request, none firing: a DAILY_CAP
/// no run reaches, a hold threshold no request meets, a blocked category
/// no request has, and business hours that approve (the default approves
/// outside them).
const STACK: &str = r#"
agent: "*"
currency: EUR
timezone: Europe/Paris
default: AUTO_APPROVE
unknown: AUTO_APPROVE
unreadable: REQUIRE_HUMAN
approvers: [maya]
rules:
  - priority: 10
    type: DAILY_CAP
    action: REJECT
    limit: 1000000000000
  - priority: 20
    type: CATEGORY_BLOCKLIST
    action: REJECT
    categories: [gambling]
  - priority: 30
    type: AMOUNT_THRESHOLD
    action: REQUIRE_HUMAN
    amount: { gte: 1000000 }
  - priority: 40
    type: TIME_WINDOW
    action: AUTO_APPROVE
    days: [mon, tue, wed, thu, fri, sat, sun]
    from: "00:00"
    to: "23:59"
    when: inside
"#;

const BODY: &str = "amount=2000&currency=eur&customer=cus_9s6XKzkNRiz8i3&metadata[order]=6735";

struct Args {
    requests: usize,
    concurrency: Vec<usize>,
    prior: usize,
    db_cache: Option<String>,
    segment_entries: Option<usize>,
    rss_at: Vec<usize>,
    leash: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let default_leash = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("leash")))
        .unwrap_or_else(|| PathBuf::from("target/release/leash"));
    let mut args = Args {
        requests: 20_000,
        concurrency: vec![1, 32, 128],
        prior: 0,
        db_cache: None,
        segment_entries: None,
        rss_at: Vec::new(),
        leash: default_leash,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{name}: `{v}` is not a number"))
        };
        match arg.as_str() {
            "--requests" | "-n" => args.requests = number("--requests", value("--requests")?)?,
            "--concurrency" | "-c" => {
                args.concurrency = value("--concurrency")?
                    .split(',')
                    .map(|c| number("--concurrency", c.to_string()).map(|c| c.max(1)))
                    .collect::<Result<_, _>>()?
            }
            "--prior" => args.prior = number("--prior", value("--prior")?)?,
            "--leash" => args.leash = PathBuf::from(value("--leash")?),
            "--db-cache" => args.db_cache = Some(value("--db-cache")?),
            "--segment-entries" => {
                args.segment_entries =
                    Some(number("--segment-entries", value("--segment-entries")?)?)
            }
            "--rss-at" => {
                args.rss_at = value("--rss-at")?
                    .split(',')
                    .map(|n| number("--rss-at", n.to_string()))
                    .collect::<Result<_, _>>()?;
                args.rss_at.sort_unstable();
            }
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // Absolute: leash runs in its own temporary directory.
    args.leash = std::fs::canonicalize(&args.leash).map_err(|_| {
        format!(
            "{} does not exist: run `cargo build --release` first, or pass --leash PATH",
            args.leash.display()
        )
    })?;
    Ok(args)
}

/// What /proc says about a process.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// User + system CPU time.
    cpu: Duration,
    voluntary_switches: u64,
    involuntary_switches: u64,
    rss_kib: u64,
}

fn usage_of(pid: u32) -> Usage {
    let mut usage = Usage::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the parenthesised name: utime is the 14th field of
        // the line, stime the 15th (in clock ticks, 100 a second on Linux).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                usage.cpu = Duration::from_millis((user + system) * 10);
            }
        }
    }
    let value = |line: &str| {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:")) {
            usage.rss_kib = value(line);
        }
    }
    // A process's own status counts the switches of its main thread only:
    // add up every thread's.
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                if line.starts_with("voluntary_ctxt_switches:") {
                    usage.voluntary_switches += value(line);
                } else if line.starts_with("nonvoluntary_ctxt_switches:") {
                    usage.involuntary_switches += value(line);
                }
            }
        }
    }
    usage
}

/// The leash child process and its addresses.
struct Leash {
    child: std::process::Child,
    proxy: SocketAddr,
}

impl Drop for Leash {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_leash(binary: &Path, dir: &Path) -> Result<Leash, String> {
    let mut child = std::process::Command::new(binary)
        .arg("run")
        .current_dir(dir)
        .env("LEASH_LOG_FORMAT", "json")
        .env("LEASH_LOG", "warn,leash::server=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["fields"]["message"] == "leash is listening" {
                let _ = tx.send(json["fields"]["proxy_addr"].as_str().map(str::to_string));
            } else if json["level"] == "ERROR" || json["level"] == "WARN" {
                eprintln!("leash: {line}");
            }
        }
    });
    let proxy = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .flatten()
        .and_then(|a| a.parse().ok())
        .ok_or("leash did not start (its log is above)")?;
    Ok(Leash { child, proxy })
}

/// Writes leash.yaml and the stack into `dir`.
fn write_config(
    dir: &Path,
    upstream: SocketAddr,
    ca: &TestCa,
    db_cache: Option<&str>,
    segment_entries: Option<usize>,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(dir.join("policies")).map_err(io)?;
    std::fs::write(dir.join("policies/bench.yaml"), STACK).map_err(io)?;
    std::fs::write(dir.join("upstream-ca.pem"), &ca.cert_pem).map_err(io)?;
    std::fs::write(
        dir.join("leash.yaml"),
        format!(
            "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: growth-agent\n\
             upstream:\n  overrides:\n    api.stripe.com: {upstream}\n  extra_ca: upstream-ca.pem\n\
             approvers:\n  people:\n    maya: {{}}\n{limits}{audit}",
            limits = db_cache
                .map(|size| format!("limits:\n  db_cache: {size}\n"))
                .unwrap_or_default(),
            audit = segment_entries
                .map(|n| format!("audit:\n  segment_entries: {n}\n"))
                .unwrap_or_default()
        ),
    )
    .map_err(io)
}

/// `n` settled spend events of now in the ledger at `dir/data`, counted by
/// the stack's cap (agent growth-agent, EUR).
async fn write_prior_spend(dir: &Path, n: usize) -> Result<(), String> {
    use leash::money::{Currency, Money};
    use leash::policy::engine::SpendEvent;
    use leash::spend::SpendLedger;
    let store = leash::store::Store::open(&dir.join("data")).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let ledger = leash::spend::SledLedger::open(&store, now, [chrono_tz::Europe::Paris])
        .map_err(|e| e.to_string())?;
    let eur = Currency::parse("EUR").map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..n {
        let event = SpendEvent {
            at: now,
            agent: "growth-agent".to_string(),
            vendor: "stripe".to_string(),
            operation: "payment_intent.create".to_string(),
            category: "payment".to_string(),
            beneficiary: Some(format!("cus_{}", i % 1000)),
            amount: Money::new(rust_decimal::Decimal::new(2000, 2), eur),
        };
        let ((), reservation) =
            leash::spend::decide_and_reserve(&ledger, now, &[], |_| ((), vec![event.clone()]))
                .await
                .map_err(|e| e.to_string())?;
        ledger
            .settle(&reservation)
            .await
            .map_err(|e| e.to_string())?;
    }
    store.flush().map_err(|e| e.to_string())?;
    println!(
        "wrote {n} prior spend events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Latencies of one run.
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

    fn line(&self, label: &str) -> String {
        let rps = self.latencies.len() as f64 / self.elapsed.as_secs_f64();
        format!(
            "{label:<8} {rps:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  failures {}",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            self.failures,
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn drive(client: &reqwest::Client, url: &str, requests: usize, concurrency: usize) -> Run {
    drive_watching(client, url, requests, concurrency, None).await
}

/// [`drive`], printing leash's RSS (process `pid`) as the run passes each
/// of `marks` (requests sent).
async fn drive_watching(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
    watch: Option<(u32, Vec<usize>)>,
) -> Run {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let monitor = watch.map(|(pid, marks)| {
        let next = Arc::clone(&next);
        tokio::spawn(async move {
            for mark in marks.into_iter().filter(|&m| m <= requests) {
                while next.load(std::sync::atomic::Ordering::Relaxed) < mark {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                println!(
                    "    after {mark} requests: leash RSS {} MiB",
                    usage_of(pid).rss_kib / 1024
                );
            }
        })
    });
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_string();
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(BODY)
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
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = 0;
    for worker in workers {
        if let Ok((mut l, f)) = worker.await {
            latencies.append(&mut l);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    if let Some(monitor) = monitor {
        monitor.abort();
    }
    latencies.sort();
    Run {
        latencies,
        elapsed,
        failures,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    leash::install_crypto_provider();
    let ca = TestCa::new("bench upstream CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    write_config(
        dir.path(),
        upstream.addr,
        &ca,
        args.db_cache.as_deref(),
        args.segment_entries,
    )?;
    if args.prior > 0 {
        write_prior_spend(dir.path(), args.prior).await?;
    }
    let leash = start_leash(&args.leash, dir.path())?;
    let pid = leash.child.id();
    let leash_ca =
        std::fs::read(dir.path().join("certs/leash-ca.pem")).map_err(|e| e.to_string())?;
    let leash_ca = reqwest::Certificate::from_pem(&leash_ca).map_err(|e| e.to_string())?;
    let proxy =
        reqwest::Proxy::all(format!("http://{}", leash.proxy)).map_err(|e| e.to_string())?;

    println!(
        "{} requests per run, POST /v1/payment_intents, HTTP/1.1 keep-alive, TLS both legs; leash pid {pid}, 4-rule stack with a DAILY_CAP{}",
        args.requests,
        if args.prior > 0 {
            format!(", {} prior spend events", args.prior)
        } else {
            String::new()
        }
    );
    println!("at start: leash RSS {} MiB", usage_of(pid).rss_kib / 1024);
    for &concurrency in &args.concurrency {
        let through = reqwest::Client::builder()
            .proxy(proxy.clone())
            .tls_certs_only([leash_ca.clone()])
            .pool_max_idle_per_host(concurrency)
            .build()
            .map_err(|e| e.to_string())?;
        let direct = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca.reqwest_cert()])
            .resolve("api.stripe.com", upstream.addr)
            .pool_max_idle_per_host(concurrency)
            .build()
            .map_err(|e| e.to_string())?;
        let through_url = "https://api.stripe.com/v1/payment_intents";
        let direct_url = format!(
            "https://api.stripe.com:{}/v1/payment_intents",
            upstream.addr.port()
        );
        // Warm up both paths (TLS sessions, leaf minting, pools).
        let warm = (concurrency * 4).max(64);
        drive(&through, through_url, warm, concurrency).await;
        drive(&direct, &direct_url, warm, concurrency).await;

        let direct_run = drive(&direct, &direct_url, args.requests, concurrency).await;
        let before = usage_of(pid);
        let watch = (!args.rss_at.is_empty()).then(|| (pid, args.rss_at.clone()));
        let through_run =
            drive_watching(&through, through_url, args.requests, concurrency, watch).await;
        let after = usage_of(pid);
        let n = through_run.latencies.len().max(1) as f64;
        let cpu_us = (after.cpu.saturating_sub(before.cpu)).as_secs_f64() * 1e6 / n;
        let switches = (after.voluntary_switches + after.involuntary_switches)
            .saturating_sub(before.voluntary_switches + before.involuntary_switches)
            as f64
            / n;
        println!("c={concurrency}");
        println!("  {}", direct_run.line("direct"));
        println!(
            "  {}  leash CPU {cpu_us:.0} µs/req  {switches:.1} ctx switches/req  RSS {} MiB",
            through_run.line("leash"),
            after.rss_kib / 1024
        );
        println!(
            "  leash adds {:.3} ms at p50, {:.2}x direct's req/s",
            ms(through_run
                .percentile(0.5)
                .saturating_sub(direct_run.percentile(0.5))),
            (through_run.latencies.len() as f64 / through_run.elapsed.as_secs_f64())
                / (direct_run.latencies.len() as f64 / direct_run.elapsed.as_secs_f64())
        );
    }
    Ok(())
}
