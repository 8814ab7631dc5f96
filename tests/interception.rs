//! No blind spot (issue 8 items 1, 2, 11, 14): a CONNECT no adapter claims
//! by name is never relayed before leash has read a whole ClientHello, and a
//! blind tunnel goes only where `passthrough` lets it.
//!
//! A vendor reached by its *address* is played by stand-ins bound to a
//! second loopback address, 127.0.0.2, with `upstream.overrides` sending
//! `api.stripe.com` there (so "the SNI resolves to this address" needs no
//! DNS). A [`Recorder`] accepts TCP and counts every connection and byte it
//! gets: "nothing reached it" is asserted on the wire, not inferred.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{raw_connect, Harness, TestCa, Upstream};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use leash::config::{HostPort, Passthrough};
use leash::egress::{DeniedNetworks, HostPattern};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The stand-ins' address: loopback, but not 127.0.0.1.
const VENDOR_IP: &str = "127.0.0.2";

/// A TCP server that accepts, reads and counts, and never answers.
struct Recorder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Recorder {
    async fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicUsize::new(0));
        let (c, b) = (Arc::clone(&connections), Arc::clone(&bytes));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let b = Arc::clone(&b);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        b.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            bytes,
        }
    }

    fn reached(&self) -> (usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

fn override_stripe(config: &mut leash::config::Config, to: SocketAddr) {
    config.upstream.overrides.insert(
        "api.stripe.com".to_string(),
        HostPort {
            host: to.ip().to_string(),
            port: to.port(),
        },
    );
}

/// The bytes of a ClientHello as rustls sends it for `name`, offering
/// `alpn`. An IP address as `name` sends no SNI (RFC 6066 forbids it).
fn client_hello(name: ServerName<'static>, alpn: Vec<Vec<u8>>) -> Vec<u8> {
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Reads what leash sends until it closes; `None` if it did not close
/// before `guard` (which only keeps a broken build from hanging the suite).
async fn read_until_closed(stream: &mut TcpStream, guard: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(guard, stream.read_to_end(&mut got)).await {
        Ok(Ok(_)) => Some(got),
        Ok(Err(_)) => Some(got), // reset: closed too
        Err(_) => None,
    }
}

const GUARD: Duration = Duration::from_secs(30);

/// A TLS alert record, fatal `access_denied`.
const ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31];

/// A stack that rejects refunds of €100 or more and approves the rest.
const REJECT_BIG_REFUNDS: &str = r#"
agent: growth-agent
currency: EUR
timezone: UTC
default: AUTO_APPROVE
rules:
  - priority: 10
    type: AMOUNT_THRESHOLD
    action: REJECT
    amount: { gte: 100 }
    description: No refunds of €100 or more
"#;

async fn leash_with_vendor_at(recorder: SocketAddr, ca: &TestCa) -> Harness {
    Harness::start(recorder, ca, |config| {
        override_stripe(config, recorder);
        config.limits.header_read_timeout = Duration::from_millis(500);
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_tunnel_to_a_vendor_address_is_closed_and_never_relayed() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor = Recorder::start(VENDOR_IP).await;
    let leash = leash_with_vendor_at(vendor.addr, &ca).await;

    let target = format!("{VENDOR_IP}:{}", vendor.addr.port());
    let (status, mut stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(status, 200, "an address of a vendor host may still be read");
    let got = read_until_closed(&mut stream, GUARD).await;
    assert_eq!(got.as_deref(), Some(&b""[..]), "closed, and nothing said");
    assert_eq!(
        vendor.reached(),
        (0, 0),
        "a silent start is never spliced blind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn first_flights_leash_cannot_read_are_refused_before_any_byte_is_relayed() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor = Recorder::start(VENDOR_IP).await;
    let leash = leash_with_vendor_at(vendor.addr, &ca).await;
    let target = format!("{VENDOR_IP}:{}", vendor.addr.port());
    let proxy = leash.running.proxy_addr;

    // (c) A ClientHello with no SNI (rustls sends none for an IP address).
    let hello = client_hello(
        ServerName::IpAddress("127.0.0.2".parse::<std::net::IpAddr>().unwrap().into()),
        vec![b"http/1.1".to_vec()],
    );
    let (status, mut stream) = raw_connect(proxy, &target, None).await;
    assert_eq!(status, 200);
    stream.write_all(&hello).await.unwrap();
    let got = read_until_closed(&mut stream, GUARD).await.unwrap();
    assert_eq!(got, ACCESS_DENIED, "no SNI: a TLS access_denied alert");

    // (d) A handshake record rustls cannot read as a ClientHello.
    let (_, mut stream) = raw_connect(proxy, &target, None).await;
    stream
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let got = read_until_closed(&mut stream, GUARD).await.unwrap();
    assert_eq!(got, ACCESS_DENIED, "unparseable hello");

    // (b') Larger than any ClientHello leash reads (64 KiB): records that
    // never complete a hello.
    let (_, mut stream) = raw_connect(proxy, &target, None).await;
    let mut flood = Vec::new();
    while flood.len() < 70 * 1024 {
        flood.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0xff, 0xff]);
        flood.resize(flood.len() + 0x4000 - 4, 0x41);
    }
    let _ = stream.write_all(&flood).await; // leash may close mid-write
    assert!(read_until_closed(&mut stream, GUARD).await.is_some());

    // A first flight that is not TLS at all gets a plain 403.
    let (_, mut stream) = raw_connect(proxy, &target, None).await;
    stream
        .write_all(b"POST /v1/refunds HTTP/1.1\r\nHost: api.stripe.com\r\nContent-Length: 26\r\n\r\ncharge=ch_1&amount=60000\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut stream, GUARD).await.unwrap();
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 403 Forbidden"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    assert_eq!(vendor.reached(), (0, 0), "not one connection, not one byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_kib_hello_naming_the_vendor_is_read_and_decided_not_tunnelled() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor =
        Upstream::start_on(VENDOR_IP, Some(ca.server_config(&["api.stripe.com"])), 200).await;
    let leash = Harness::start_with_policy(vendor.addr, &ca, REJECT_BIG_REFUNDS, |config| {
        override_stripe(config, vendor.addr);
    })
    .await;

    // ~20 KiB of ALPN names (a real client with a long list), http/1.1 last.
    let mut alpn: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("x-{i:03}-{}", "p".repeat(190)).into_bytes())
        .collect();
    alpn.push(b"http/1.1".to_vec());
    let config = leash.leash_tls_client(&[]);
    let mut config = config;
    config.alpn_protocols = alpn.clone();
    assert!(client_hello(ServerName::try_from("api.stripe.com").unwrap(), alpn).len() > 16 * 1024);

    let target = format!("{VENDOR_IP}:443");
    let (status, stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(status, 200);
    // Trusting only leash's CA: completing TLS proves leash intercepted.
    let tls = common::tls_over(stream, config, "api.stripe.com").await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);

    let refund = |body: &'static str| {
        http::Request::post("/v1/refunds")
            .header("host", "api.stripe.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(bytes::Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let rejected = sender
        .send_request(refund("charge=ch_1&amount=60000&currency=eur"))
        .await
        .unwrap();
    assert_eq!(rejected.status(), 403);
    assert_eq!(rejected.headers()["x-leash-decision"], "rejected");
    assert!(
        rejected.headers().contains_key("x-leash-audit-seq"),
        "decided, on the chain"
    );
    assert!(
        vendor.seen().iter().all(|s| s.method == "GET"),
        "the €600 refund never reached the vendor (only leash's charge lookup did)"
    );

    // The refusal left the connection open: wait until it takes the next.
    sender.ready().await.unwrap();
    let approved = sender
        .send_request(refund("charge=ch_1&amount=500&currency=eur"))
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let seen: Vec<_> = vendor
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET")
        .collect();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, "charge=ch_1&amount=500&currency=eur");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sni_that_names_another_host_than_the_connect_is_refused() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    // The alias: a host leash does not know, which would happily serve a
    // certificate for api.stripe.com if leash tunnelled to it.
    let alias = Recorder::start("127.0.0.1").await;
    let leash = Harness::start(stripe.addr, &ca, |config| {
        config.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;

    for sni in ["api.stripe.com", "example.org"] {
        let target = format!("localhost:{}", alias.addr.port());
        let (status, mut stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
        assert_eq!(status, 200);
        let hello = client_hello(
            ServerName::try_from(sni.to_string()).unwrap(),
            vec![b"http/1.1".to_vec()],
        );
        stream.write_all(&hello).await.unwrap();
        let got = read_until_closed(&mut stream, GUARD).await.unwrap();
        assert_eq!(got, ACCESS_DENIED, "SNI {sni} on a CONNECT to localhost");
    }
    assert_eq!(alias.reached(), (0, 0), "never to the alias");
    assert!(stripe.seen().is_empty(), "and nothing to the vendor");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_literal_is_read_as_the_vendor_only_when_its_sni_resolves_to_it() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let vendor = Recorder::start(VENDOR_IP).await;
    let leash = Harness::start(vendor.addr, &ca, |config| {
        override_stripe(config, vendor.addr);
        config.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;
    let hello = client_hello(
        ServerName::try_from("api.stripe.com").unwrap(),
        vec![b"http/1.1".to_vec()],
    );
    // 127.0.0.1 is not where api.stripe.com resolves (127.0.0.2 here).
    let other = Recorder::start("127.0.0.1").await;
    let target = format!("127.0.0.1:{}", other.addr.port());
    let (status, mut stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(status, 200);
    stream.write_all(&hello).await.unwrap();
    let got = read_until_closed(&mut stream, GUARD).await.unwrap();
    assert_eq!(got, ACCESS_DENIED);
    assert_eq!(
        other.reached(),
        (0, 0),
        "not tunnelled to the address given"
    );
    assert_eq!(vendor.reached(), (0, 0), "not sent to the vendor either");
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_never_dial_denied_networks_by_default() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let inside = Recorder::start(VENDOR_IP).await;
    let leash = Harness::start(stripe.addr, &ca, |_| {}).await;
    let port = inside.addr.port();

    for target in [
        format!("{VENDOR_IP}:{port}"),
        format!("[::ffff:{VENDOR_IP}]:{port}"),
        format!("localhost:{port}"),
        "169.254.169.254:80".to_string(),
        "[::ffff:169.254.169.254]:80".to_string(),
        "0.0.0.0:80".to_string(),
        "10.0.0.1:443".to_string(),
    ] {
        let (status, _) = raw_connect(leash.running.proxy_addr, &target, None).await;
        assert_eq!(status, 403, "CONNECT {target}");
    }
    assert_eq!(inside.reached(), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_allow_lists_the_only_hosts_tunnelled() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let other = Recorder::start("127.0.0.1").await;
    let leash = Harness::start(stripe.addr, &ca, |config| {
        config.passthrough.deny_networks = DeniedNetworks::none();
        config.passthrough.allow = Some(vec!["*.anthropic.com".parse::<HostPattern>().unwrap()]);
    })
    .await;
    let (status, _) = raw_connect(
        leash.running.proxy_addr,
        &format!("localhost:{}", other.addr.port()),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Listed: tunnelled, once its ClientHello names the same host.
    let allowing = Harness::start(stripe.addr, &ca, |config| {
        config.passthrough.deny_networks = DeniedNetworks::none();
        config.passthrough.allow = Some(vec!["localhost".parse::<HostPattern>().unwrap()]);
    })
    .await;
    let (status, mut stream) = raw_connect(
        allowing.running.proxy_addr,
        &format!("localhost:{}", other.addr.port()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let hello = client_hello(
        ServerName::try_from("localhost").unwrap(),
        vec![b"http/1.1".to_vec()],
    );
    stream.write_all(&hello).await.unwrap();
    // The recorder sees the connection and exactly the hello's bytes.
    for _ in 0..200 {
        if other.reached().1 >= hello.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(other.reached(), (1, hello.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_deny_answers_the_connect_itself_with_403() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let other = Recorder::start(VENDOR_IP).await;
    let leash = Harness::start(stripe.addr, &ca, |config| {
        config.passthrough = Passthrough::deny();
    })
    .await;
    // An IP that is no vendor's address (api.stripe.com is 127.0.0.1 here)
    // and a name no adapter claims: both refused on the CONNECT line.
    for target in [
        format!("{VENDOR_IP}:{}", other.addr.port()),
        format!("localhost:{}", other.addr.port()),
    ] {
        let (status, _) = raw_connect(leash.running.proxy_addr, &target, None).await;
        assert_eq!(status, 403, "CONNECT {target}");
    }
    assert_eq!(other.reached(), (0, 0));

    // The vendor's own address is still read (and intercepted by its SNI).
    let target = format!("127.0.0.1:{}", stripe.addr.port());
    let (status, stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(status, 200);
    let tls = common::tls_over(
        stream,
        leash.leash_tls_client(&[b"http/1.1"]),
        "api.stripe.com",
    )
    .await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            http::Request::get("/v1/balance")
                .header("host", "api.stripe.com")
                .body(Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(stripe.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_blind_tunnel_is_closed_after_passthrough_idle_timeout() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let stripe = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let silent_site = Recorder::start("127.0.0.1").await;
    let leash = Harness::start(stripe.addr, &ca, |config| {
        config.passthrough.deny_networks = DeniedNetworks::none();
        config.passthrough.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let (status, mut stream) = raw_connect(
        leash.running.proxy_addr,
        &format!("localhost:{}", silent_site.addr.port()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let hello = client_hello(
        ServerName::try_from("localhost").unwrap(),
        vec![b"http/1.1".to_vec()],
    );
    stream.write_all(&hello).await.unwrap();
    // The site never answers; the tunnel is closed for idleness.
    assert!(read_until_closed(&mut stream, GUARD).await.is_some());
    assert_eq!(
        silent_site.reached(),
        (1, hello.len()),
        "it was a real tunnel"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_resolves_to_the_vendors_address_is_never_tunnelled_blind() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    // api.stripe.com is reached at 127.0.0.1:<port>; "localhost" resolves
    // there too: an alias of the vendor, with an SNI of its own.
    let vendor = Recorder::start("127.0.0.1").await;
    let leash = Harness::start(vendor.addr, &ca, |config| {
        config.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;
    let target = format!("localhost:{}", vendor.addr.port());
    let (status, _) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(status, 403);
    let target = format!("127.0.0.1:{}", vendor.addr.port());
    let (status, mut stream) = raw_connect(leash.running.proxy_addr, &target, None).await;
    assert_eq!(
        status, 200,
        "an IP of the vendor may still be read by its SNI"
    );
    let hello = client_hello(
        ServerName::try_from("localhost").unwrap(),
        vec![b"http/1.1".to_vec()],
    );
    stream.write_all(&hello).await.unwrap();
    let got = read_until_closed(&mut stream, GUARD).await.unwrap();
    assert_eq!(
        got, ACCESS_DENIED,
        "but never tunnelled blind under another name"
    );
    assert_eq!(vendor.reached(), (0, 0));
}
