//! Who can reach what (issue 8 items 10, 12, 15): the admin API is never
//! reachable through the proxy by any spelling of its address, and a failed
//! proxy login says nothing about which agents exist.

mod common;

use std::net::SocketAddr;

use common::{raw_connect, Harness, TestCa, Upstream};
use leash::egress::DeniedNetworks;
use leash::identity::basic_credentials;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one raw request to the proxy and returns the whole answer as text
/// (the proxy closes: `Connection: close`).
async fn raw_request(proxy: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

async fn leash_with_open_egress() -> (Harness, Upstream) {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    // Even with every network allowed for passthrough, leash's own
    // listeners stay out of reach.
    let leash = Harness::start(stripe.addr, &ca, |c| {
        c.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;
    (leash, stripe)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_is_unreachable_through_the_proxy_by_any_spelling() {
    let (leash, _stripe) = leash_with_open_egress().await;
    // Something in the chain worth stealing.
    let made = leash
        .client()
        .post("https://api.stripe.com/v1/payment_intents")
        .body("amount=2000&currency=eur")
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);

    let proxy = leash.running.proxy_addr;
    for port in [leash.running.admin_addr.port(), proxy.port()] {
        for host in [
            format!("0.0.0.0:{port}"),
            format!("[::ffff:127.0.0.1]:{port}"),
            format!("[::ffff:0.0.0.0]:{port}"),
            format!("127.0.0.1:{port}"),
            format!("127.9.9.9:{port}"),
            format!("localhost:{port}"),
            format!("[::]:{port}"),
        ] {
            let answer = raw_request(
                proxy,
                &format!("GET http://{host}/v1/audit?after=0&limit=100 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            let status = status_of(&answer);
            assert!(
                status == 403 || status == 502,
                "GET http://{host}/v1/audit answered {status}: {answer}"
            );
            assert!(
                !body_of(&answer).contains("\"seq\""),
                "audit entries came back through the proxy from {host}"
            );

            let (status, _) = raw_connect(proxy, &host, None).await;
            assert_eq!(status, 403, "CONNECT {host}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_agent_and_a_wrong_token_get_the_same_407() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let token_hash: [u8; 32] = Sha256::digest(b"growth-token").into();
    let leash = Harness::start(stripe.addr, &ca, |c| {
        c.default_agent = None;
        c.agents.insert(
            "growth-agent".to_string(),
            leash::config::AgentCredential {
                token_sha256: Some(token_hash),
            },
        );
    })
    .await;
    let proxy = leash.running.proxy_addr;
    let ask = |auth: String| {
        format!(
            "GET http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n"
        )
    };
    let wrong_token = raw_request(proxy, &ask(basic_credentials("growth-agent", "nope"))).await;
    let unknown = raw_request(proxy, &ask(basic_credentials("ghost-agent", "nope"))).await;
    let garbled = raw_request(proxy, &ask("Basic !!!".to_string())).await;
    assert_eq!(status_of(&wrong_token), 407);
    assert_eq!(status_of(&unknown), 407);
    assert_eq!(
        body_of(&wrong_token),
        body_of(&unknown),
        "same words for both"
    );
    assert_eq!(body_of(&garbled), body_of(&unknown));
    assert!(!body_of(&unknown).contains("ghost-agent"));
    assert!(!body_of(&wrong_token).contains("growth-agent"));
    assert!(stripe.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_api_needs_an_approvers_or_auditors_token() {
    let (leash, _stripe) = leash_with_open_egress().await;
    let made = leash
        .client()
        .post("https://api.stripe.com/v1/payment_intents")
        .body("amount=2000&currency=eur")
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200);
    let url = format!("http://{}/v1/audit?limit=1000", leash.running.admin_addr);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(!anonymous.text().await.unwrap().contains("\"seq\""));
    let wrong = http
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let read = common::admin_get(&leash, &url).await;
    assert_eq!(read.status(), 200);
    let body: serde_json::Value = read.json().await.unwrap();
    assert!(body["entries"].as_array().unwrap().len() >= 2);

    // An auditor approves nothing.
    let vote = http
        .post(format!(
            "http://{}/v1/holds/hold_00000000000000000000000000000000/approve",
            leash.running.admin_addr
        ))
        .bearer_auth(common::AUDITOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), 401);

    // The CLI reads through the API while leash holds the database, with
    // the token from LEASH_AUDIT_TOKEN or --token-file only.
    let dir = leash.dir.path();
    std::fs::write(
        dir.join("cli.yaml"),
        format!(
            "admin: {}\ndata_dir: {}\n",
            leash.running.admin_addr,
            dir.join("data").display()
        ),
    )
    .unwrap();
    let cli = |token: Option<&str>, extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_leash"));
        command
            .args(["audit", "export", "--config", "cli.yaml"])
            .args(extra)
            .current_dir(dir)
            .env_remove("LEASH_AUDIT_TOKEN");
        if let Some(token) = token {
            command.env("LEASH_AUDIT_TOKEN", token);
        }
        command.output().unwrap()
    };
    let without = cli(None, &[]);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("LEASH_AUDIT_TOKEN"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with_env = cli(Some(common::AUDITOR_TOKEN), &[]);
    assert!(
        with_env.status.success(),
        "{}",
        String::from_utf8_lossy(&with_env.stderr)
    );
    assert!(String::from_utf8_lossy(&with_env.stdout).lines().count() >= 2);
    std::fs::write(dir.join("token"), format!("{}\n", common::AUDITOR_TOKEN)).unwrap();
    let with_file = cli(None, &["--token-file", "token"]);
    assert!(with_file.status.success());
    assert_eq!(with_file.stdout, with_env.stdout);
}

/// Reads until the peer closes; `true` if it did within `guard` (which only
/// keeps a broken build from hanging the suite).
async fn closed_within(stream: &mut TcpStream, guard: std::time::Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(guard, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_has_the_proxys_limits() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start(stripe.addr, &ca, |c| {
        c.limits.header_read_timeout = std::time::Duration::from_secs(1);
        c.limits.idle_timeout = std::time::Duration::from_secs(1);
        c.limits.max_admin_connections = std::num::NonZeroUsize::new(2).unwrap();
    })
    .await;
    let admin = leash.running.admin_addr;
    let guard = std::time::Duration::from_secs(30);

    // A silent connection is closed after the header read timeout.
    let mut silent = TcpStream::connect(admin).await.unwrap();
    assert!(
        closed_within(&mut silent, guard).await,
        "silent admin connection kept"
    );

    // A keep-alive connection that goes quiet after one request is closed.
    let mut kept = TcpStream::connect(admin).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut kept, guard).await,
        "idle keep-alive kept"
    );

    // Over the cap: the extra connection is closed at once, while the two
    // holding their slots are still open, and agent traffic goes on.
    let mut first = TcpStream::connect(admin).await.unwrap();
    let mut second = TcpStream::connect(admin).await.unwrap();
    // Give the listener time to hand both their slots.
    first.write_all(b"GET /hea").await.unwrap();
    second.write_all(b"GET /hea").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(admin).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(guard, third.read(&mut byte))
        .await
        .expect("the third connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let response = leash
        .client()
        .get("https://api.stripe.com/v1/balance")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the proxy is unaffected");
    drop((first, second));
}
