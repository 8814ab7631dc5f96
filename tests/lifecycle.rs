//! A sidecar's lifecycle (issue 10 item 8), with the real binary: a stop
//! on SIGTERM answers what waits and finishes what is in flight; a start
//! that fails leaves nothing in the audit chain; a second leash on one
//! data_dir is told so; output into a closed pipe, logs into a pipe, and
//! policy directories with nothing in them.

#[path = "common/child.rs"]
mod child;
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::ChildLeash;
use common::TestCa;
use serde_json::Value;

/// Charges of 50 EUR or more wait for maya (who has no token in the
/// fixture, so they stay pending); smaller ones are forwarded.
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

fn leash(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leash"))
        .args(args)
        .current_dir(dir)
        .env_remove("LEASH_AGENT_TOKEN")
        .env_remove("LEASH_LOG_FORMAT")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
}

/// Waits for the child to exit, at most `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "leash did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a log line contains `needle`.
async fn logged(leash: &ChildLeash, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leash.logs().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}:\n{}",
            leash.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every entry of the chain in `dir`, read by `leash audit export`.
fn exported(dir: &Path) -> Vec<Value> {
    let output = leash(dir, &["audit", "export"]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .filter(|k| k != "checkpoint")
        .collect()
}

fn charge(client: &reqwest::Client, amount: u32, key: &str) -> reqwest::RequestBuilder {
    client
        .post("https://api.stripe.com/v1/payment_intents")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body(format!("amount={amount}&currency=eur&customer=cus_1"))
}

/// A vendor that answers every request with 200 `{"id":"pi_1"}` after
/// `delay`, and tells `arrived` when a request came in.
async fn slow_vendor(
    ca: &TestCa,
    delay: Duration,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ca.server_config(&["api.stripe.com"]);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_request| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(());
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(200)
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                    br#"{"id":"pi_1","object":"payment_intent"}"#,
                                )))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, arrived)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_a_waiting_hold_with_leash_held_and_exits_0() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let (vendor, _arrived) = slow_vendor(&ca, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // The agent would wait two minutes for maya.
    let mut leash = ChildLeash::start_with(
        dir.path(),
        vendor,
        &ca,
        POLICY,
        "{ wait: 2m, ttl: 1h }",
        "info",
    );
    let client = leash.client(dir.path());
    let waiting = tokio::spawn(charge(&client, 6000, "idem-held").send());
    logged(&leash, "request held for approval").await;

    let asked = Instant::now();
    sigterm(leash.pid());
    let answer = waiting
        .await
        .unwrap()
        .expect("an answer, not a dropped connection");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(answer.status(), 403);
    assert_eq!(answer.headers()["stripe-should-retry"], "false");
    assert!(answer.headers().contains_key("retry-after"));
    let hold_id = answer.headers()["x-leash-hold-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "leash_held", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");

    let status = wait_exit(&mut leash.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", leash.logs());
    assert!(leash.logs().contains("leash stopped"), "{}", leash.logs());

    let verify = leash_cli(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let entries = exported(dir.path());
    let decision = entries
        .iter()
        .find(|e| e["kind"] == "decision")
        .expect("the decision is in the chain");
    assert_eq!(decision["decision"], "REQUIRE_HUMAN", "{decision}");
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "hold_created" && e["details"]["hold_id"] == hold_id.as_str()));
    let kinds = kinds(&entries);
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("stopped"),
        "{kinds:?}"
    );
    let stopped = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "stopped")
        .unwrap();
    assert_eq!(stopped["details"]["reason"], "SIGTERM", "{stopped}");
    assert_eq!(stopped["details"]["drained"], true, "{stopped}");
    assert_eq!(stopped["details"]["holds_pending"], 1, "{stopped}");
    // The last entries are covered by a signed checkpoint.
    assert_eq!(entries.last().unwrap()["kind"], "checkpoint");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_forward_in_flight_finish_and_accepts_nothing_new() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let (vendor, mut arrived) = slow_vendor(&ca, Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut leash = ChildLeash::start_with(
        dir.path(),
        vendor,
        &ca,
        POLICY,
        "{ wait: 2m, ttl: 1h }",
        "info",
    );
    let client = leash.client(dir.path());
    let in_flight = tokio::spawn(charge(&client, 1200, "idem-small").send());
    tokio::time::timeout(Duration::from_secs(30), arrived.recv())
        .await
        .expect("the forward reaches the vendor");

    sigterm(leash.pid());
    logged(&leash, "listeners closed").await;
    // The proxy no longer accepts connections while the forward finishes.
    let refused = tokio::net::TcpStream::connect(leash.proxy).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while stopping"
    );
    let answer = in_flight.await.unwrap().expect("the vendor's answer");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["id"], "pi_1");

    let status = wait_exit(&mut leash.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", leash.logs());
    let entries = exported(dir.path());
    let kinds = kinds(&entries);
    let outcome = entries
        .iter()
        .position(|e| e["kind"] == "outcome" && e["upstream_status"] == 200)
        .expect("the forward's outcome is in the chain");
    let stopped = entries.iter().position(|e| e["kind"] == "stopped").unwrap();
    assert!(outcome < stopped, "{kinds:?}");
}

#[test]
fn a_second_leash_on_the_same_data_dir_is_told_about_the_first() {
    let ca = TestCa::new("test public CA");
    let dir = tempfile::tempdir().unwrap();
    let first = ChildLeash::start_with(
        dir.path(),
        "127.0.0.1:9".parse().unwrap(),
        &ca,
        POLICY,
        "{ wait: 1s, ttl: 1h }",
        "info",
    );
    let started = Instant::now();
    let second = leash(dir.path(), &["run"]);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains("another leash is running on this data_dir"),
        "{err}"
    );
    assert!(err.contains("data"), "names the data_dir: {err}");
    assert!(err.contains("another data_dir"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    first.kill();
}

/// `leash audit export` after a start that failed: no entry at all, so no
/// `started` for a leash that never ran.
fn assert_no_started_entry(dir: &Path) {
    let entries = exported(dir);
    assert!(
        !kinds(&entries)
            .iter()
            .any(|k| k == "started" || k == "policy_loaded"),
        "{entries:?}"
    );
}

#[test]
fn a_start_that_fails_on_a_missing_secret_or_a_taken_port_leaves_no_started_entry() {
    // A webhook whose secret variable is unset.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leash.yaml"),
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n\
         notify:\n  - { kind: webhook, url: \"https://ops.example/leash\", secret_env: LEASH_LIFECYCLE_TEST_UNSET }\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_leash"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("LEASH_LIFECYCLE_TEST_UNSET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("LEASH_LIFECYCLE_TEST_UNSET"),
        "{}",
        stderr(&output)
    );
    assert_no_started_entry(dir.path());

    // A proxy port someone else listens on.
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("leash.yaml"),
        format!("listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:0\n"),
    )
    .unwrap();
    let output = leash(dir.path(), &["run"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        stderr(&output)
    );
    assert_no_started_entry(dir.path());
    drop(taken);
}

/// Fills the chain in `dir/data` with more than a pipe's buffer of entries,
/// as a long-running leash would have.
fn fill_chain(dir: &Path, entries: usize) {
    leash::install_crypto_provider();
    let store = leash::store::Store::open(&dir.join("data")).unwrap();
    let audit = leash::audit::AuditLog::open(
        &store,
        &dir.join("certs/leash-audit.key"),
        leash::audit::CheckpointPolicy::default(),
        dir.join("data/checkpoint"),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Concurrent appends share flushes (group commit).
        let appends: Vec<_> = (0..entries)
            .map(|i| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    let details = serde_json::json!({ "filler": i, "pad": "x".repeat(1000) });
                    audit.append(leash::audit::NewEntry::started(details)).await
                })
            })
            .collect();
        for append in appends {
            append.await.unwrap().unwrap();
        }
    });
    drop(audit);
    drop(store);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_exit_0() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    // About 300 KiB of JSON Lines: more than a pipe holds, so export is
    // still writing when the reader goes.
    fill_chain(dir.path(), 250);

    // `leash audit export | head -c 10`
    let mut export = Command::new(env!("CARGO_BIN_EXE_leash"))
        .args(["audit", "export"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = export.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first[..2], b"{\"");
    drop(stdout);
    let output = export.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("failed printing"),
        "{err}"
    );

    // `leash env | head -0`: the reader is gone before anything is written.
    let mut env = Command::new(env!("CARGO_BIN_EXE_leash"))
        .args(["env", "--agent", "cs-agent"])
        .current_dir(dir.path())
        .env_remove("LEASH_AGENT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(env.stdout.take());
    let output = env.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("failed printing"),
        "{err}"
    );
}

#[test]
fn text_logs_into_a_pipe_have_no_colours_and_say_what_started() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    // No policies directory: leash warns and starts.
    std::fs::write(
        dir.path().join("leash.yaml"),
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndefault_agent: dev-agent\n\
         agents:\n  growth-agent: { token_sha256: \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\" }\n  dev-agent: {}\n\
         approvers:\n  people:\n    maya: {}\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leash"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("LEASH_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env("LEASH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("next: ") {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("leash did not start:\n{seen}");
        }
        seen.push_str(&line);
    }
    sigterm(child.id());
    lines.read_to_string(&mut seen).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{seen}");

    assert!(
        !seen.contains('\u{1b}'),
        "ANSI escapes in piped logs:\n{seen}"
    );
    assert!(seen.contains(" WARN "), "{seen}");
    assert!(
        seen.contains("policies does not exist: leash runs with no policy stack"),
        "{seen}"
    );
    assert!(seen.contains("refused (403 leash_rejected)"), "{seen}");
    assert!(seen.contains("agent: growth-agent (token)"), "{seen}");
    assert!(
        seen.contains("agent: dev-agent (no token) [default_agent]"),
        "{seen}"
    );
    assert!(seen.contains("approvers: maya"), "{seen}");
    assert!(
        seen.contains(&format!(
            "next: eval \"$({} env --agent dev-agent)\"",
            env!("CARGO_BIN_EXE_leash")
        )),
        "{seen}"
    );
    assert!(seen.contains("SIGTERM: stopping gracefully"), "{seen}");
}

#[test]
fn policy_check_and_test_refuse_an_empty_or_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty/tests")).unwrap();
    for args in [
        &["policy", "check", "--policies", "empty"][..],
        &["policy", "test", "--policies", "empty"][..],
    ] {
        let output = leash(dir.path(), args);
        assert!(!output.status.success(), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains("empty: the policies directory has no policy files"),
            "{args:?}: {err}"
        );
    }
    // The default directory, ./policies, is not there at all.
    for args in [&["policy", "check"][..], &["policy", "test"][..]] {
        let output = leash(dir.path(), args);
        assert!(!output.status.success(), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains("policies: the policies directory does not exist"),
            "{args:?}: {err}"
        );
    }
}

fn leash_cli(dir: &Path, args: &[&str]) -> Output {
    child::leash_cli(dir, args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_longer_than_the_grace_period_is_cut_and_leash_still_exits_0() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let (vendor, mut arrived) = slow_vendor(&ca, Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut leash = ChildLeash::start_with(
        dir.path(),
        vendor,
        &ca,
        POLICY,
        "{ wait: 2m, ttl: 1h }",
        "info",
    );
    let client = leash.client(dir.path());
    let in_flight = tokio::spawn(
        charge(&client, 1200, "idem-slow")
            .timeout(Duration::from_secs(90))
            .send(),
    );
    tokio::time::timeout(Duration::from_secs(30), arrived.recv())
        .await
        .expect("the forward reaches the vendor");

    let asked = Instant::now();
    sigterm(leash.pid());
    let status = wait_exit(&mut leash.child, Duration::from_secs(30));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{}", leash.logs());
    assert!(
        took >= leash::lifecycle::GRACE && took < leash::lifecycle::GRACE + Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        in_flight.await.unwrap().is_err(),
        "the cut forward has no answer"
    );
    let entries = exported(dir.path());
    let stopped = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "stopped")
        .unwrap();
    assert_eq!(stopped["details"]["drained"], false, "{stopped}");
    assert!(
        stopped["details"]["connections_cut"].as_u64().unwrap() >= 1,
        "{stopped}"
    );
    let verify = leash_cli(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_like_sigterm_and_a_second_signal_exits_at_once() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let (vendor, mut arrived) = slow_vendor(&ca, Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut leash = ChildLeash::start_with(
        dir.path(),
        vendor,
        &ca,
        POLICY,
        "{ wait: 2m, ttl: 1h }",
        "info",
    );
    let client = leash.client(dir.path());
    let _in_flight = tokio::spawn(
        charge(&client, 1200, "idem-slow")
            .timeout(Duration::from_secs(90))
            .send(),
    );
    tokio::time::timeout(Duration::from_secs(30), arrived.recv())
        .await
        .expect("the forward reaches the vendor");

    let status = Command::new("kill")
        .args(["-INT", &leash.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    logged(&leash, "SIGINT: stopping gracefully").await;
    logged(&leash, "listeners closed").await;
    let asked = Instant::now();
    sigterm(leash.pid());
    let status = wait_exit(&mut leash.child, Duration::from_secs(5));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status.code(), Some(128 + 15), "{}", leash.logs());
    assert!(leash.logs().contains("second signal"), "{}", leash.logs());
    // What was appended is durable all the same (write-ahead).
    let verify = leash_cli(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(kinds(&exported(dir.path())).contains(&"decision".to_string()));
}

/// With a terminal (`script` gives leash one), the text logs are coloured
/// unless `NO_COLOR` is set, and a short summary replaces the log lines.
#[test]
fn at_a_terminal_no_color_turns_colours_off() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give leash a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leash.yaml"),
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n",
    )
    .unwrap();
    let run = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args([
                "-qec",
                &format!("{} run", env!("CARGO_BIN_EXE_leash")),
                "/dev/null",
            ])
            .current_dir(dir.path())
            .env("LEASH_LOG", "info")
            .env_remove("LEASH_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let mut child = command.spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen.contains("leash gracefully") && Instant::now() < deadline {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
        }
        // `script` ends its session (leash with it) on SIGTERM; how leash
        // stops is not what this test is about.
        sigterm(child.id());
        let _ = std::io::Read::read_to_string(&mut out, &mut seen);
        let _ = child.wait();
        seen
    };
    let coloured = run(None);
    assert!(coloured.contains(" is running"), "{coloured}");
    assert!(coloured.contains("  next       eval"), "{coloured}");
    assert!(coloured.contains('\u{1b}'), "{coloured}");
    let plain = run(Some("1"));
    assert!(plain.contains("  next       eval"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "{plain}");
}
