//! The proxy data path, end to end on loopback: real TLS both ways, real
//! clients going through leash with CONNECT.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{raw_connect, tls_over, Harness, TestCa, Upstream, UPSTREAM_BODY};
use http::Version;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use leash::config::Passthrough;
use leash::egress::DeniedNetworks;
use leash::identity::basic_credentials;
use sha2::{Digest, Sha256};

/// CONNECTs to `target`, opens TLS naming `api.stripe.com` while trusting
/// only leash's CA (so success proves interception), and returns an HTTP/1.1
/// sender on that one tunnel.
async fn stripe_over_connect(
    leash: &Harness,
    target: &str,
) -> hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>> {
    let (status, stream) = raw_connect(leash.running.proxy_addr, target, None).await;
    assert_eq!(status, 200);
    let tls = tls_over(
        stream,
        leash.leash_tls_client(&[b"http/1.1"]),
        "api.stripe.com",
    )
    .await;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

const STRIPE_CHARGE: &str = "amount=2000&currency=eur&source=tok_visa&metadata[order]=6735&description=Ad%20credit%20%E2%82%AC20";

async fn stripe_setup() -> (TestCa, Upstream) {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    (ca, upstream)
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_post_arrives_byte_identical_and_answer_comes_back_unchanged() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;

    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .header("authorization", "Bearer sk_test_secret")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", "order-6735")
        .header("stripe-version", "2024-06-20")
        .body(STRIPE_CHARGE)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["request-id"], "req_upstream_1");
    assert_eq!(response.text().await.unwrap(), UPSTREAM_BODY);

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path_and_query, "/v1/charges");
    assert_eq!(request.body.as_ref(), STRIPE_CHARGE.as_bytes());
    assert_eq!(request.headers["authorization"], "Bearer sk_test_secret");
    assert_eq!(request.headers["idempotency-key"], "order-6735");
    assert_eq!(request.headers["stripe-version"], "2024-06-20");
    assert_eq!(request.host, "api.stripe.com");
    assert!(request.headers.get("proxy-authorization").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_inside_the_tunnel_when_the_client_offers_it() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;
    let client = leash
        .client_builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    for i in 0..3 {
        let body = format!("{STRIPE_CHARGE}&metadata[i]={i}");
        let response = client
            .post("https://api.stripe.com/v1/charges?expand[]=balance_transaction")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), UPSTREAM_BODY);
        let seen = upstream.seen();
        assert_eq!(seen.len(), i + 1);
        assert_eq!(seen[i].body.as_ref(), body.as_bytes());
        assert_eq!(
            seen[i].path_and_query,
            "/v1/charges?expand[]=balance_transaction"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_serves_several_requests_in_one_tunnel() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;

    // One TCP connection, one CONNECT, one TLS session...
    let mut sender = stripe_over_connect(&leash, "api.stripe.com:443").await;

    // ...and five requests on it.
    for i in 0..5 {
        let request = http::Request::post("/v1/payment_intents")
            .header("host", "api.stripe.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(bytes::Bytes::from(format!(
                "amount={}&currency=usd",
                100 + i
            ))))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), UPSTREAM_BODY.as_bytes());
    }
    assert_eq!(upstream.seen().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_no_adapter_claims_is_tunnelled_blind_or_refused() {
    leash::install_crypto_provider();
    let vendor_ca = TestCa::new("stripe's CA");
    let stripe = Upstream::start(Some(vendor_ca.server_config(&["api.stripe.com"]))).await;
    let other_ca = TestCa::new("some other site's CA");
    let other = Upstream::start(Some(other_ca.server_config(&["localhost"]))).await;
    let url = format!("https://localhost:{}/hello", other.addr.port());

    // Tunnel: the client trusts only the other site's CA, so success proves
    // it saw that site's own certificate, not one minted by leash.
    // The other site is on loopback, which tunnels never dial by default.
    let leash = Harness::start(stripe.addr, &vendor_ca, |c| {
        c.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(leash.proxy_url()).unwrap())
        .tls_certs_only([other_ca.reqwest_cert()])
        .build()
        .unwrap();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), UPSTREAM_BODY);
    assert_eq!(other.seen().len(), 1);

    // Deny: the CONNECT itself is refused with 403 and nothing arrives.
    let denying = Harness::start(stripe.addr, &vendor_ca, |c| {
        c.passthrough = Passthrough::deny();
    })
    .await;
    let target = format!("localhost:{}", other.addr.port());
    let (status, _) = raw_connect(denying.running.proxy_addr, &target, None).await;
    assert_eq!(status, 403);
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(denying.proxy_url()).unwrap())
        .tls_certs_only([other_ca.reqwest_cert()])
        .build()
        .unwrap();
    assert!(client.get(&url).send().await.is_err());
    assert_eq!(other.seen().len(), 1, "nothing more reached the other host");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_credentials_are_checked() {
    let (ca, upstream) = stripe_setup().await;
    let token_hash: [u8; 32] = Sha256::digest(b"growth-token").into();
    let leash = Harness::start(upstream.addr, &ca, |c| {
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

    let (status, _) = raw_connect(proxy, "api.stripe.com:443", None).await;
    assert_eq!(status, 407, "no credentials and no default_agent");
    let wrong = basic_credentials("growth-agent", "not-the-token");
    let (status, _) = raw_connect(proxy, "api.stripe.com:443", Some(&wrong)).await;
    assert_eq!(status, 407, "wrong token");
    let other = basic_credentials("payout-agent", "growth-token");
    let (status, _) = raw_connect(proxy, "api.stripe.com:443", Some(&other)).await;
    assert_eq!(status, 407, "another agent's name with this token");
    let right = basic_credentials("growth-agent", "growth-token");
    let (status, _) = raw_connect(proxy, "api.stripe.com:443", Some(&right)).await;
    assert_eq!(status, 200);

    // Through a real client too: the wrong token never reaches the vendor.
    let refused = leash
        .client_as("growth-agent", "nope")
        .post("https://api.stripe.com/v1/charges")
        .body(STRIPE_CHARGE)
        .send()
        .await;
    assert!(refused.is_err(), "CONNECT refused with 407");
    assert!(upstream.seen().is_empty());
    let response = leash
        .client_as("growth-agent", "growth-token")
        .post("https://api.stripe.com/v1/charges")
        .body(STRIPE_CHARGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_with_an_untrusted_certificate_gets_502_and_nothing_is_sent() {
    leash::install_crypto_provider();
    let trusted = TestCa::new("the CA leash trusts");
    let impostor_ca = TestCa::new("an impostor's CA");
    let impostor = Upstream::start(Some(impostor_ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start(impostor.addr, &trusted, |_| {}).await;

    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .body(STRIPE_CHARGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["stripe-should-retry"], "false");
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "leash_upstream_unreachable");
    assert_eq!(json["error"]["type"], "api_error");
    assert!(
        impostor.seen().is_empty(),
        "no request reached the impostor"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_gets_413_and_nothing_is_sent() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |c| c.limits.max_body = 1024).await;
    let big = format!("amount=100&currency=eur&description={}", "x".repeat(2000));

    // Declared with Content-Length.
    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "leash_body_too_large");
    assert_eq!(json["error"]["type"], "invalid_request_error");

    // Streamed (chunked, no Content-Length).
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(300)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // At the limit exactly: forwarded.
    let exact = "a".repeat(1024);
    let response = leash
        .client()
        .post("https://api.stripe.com/v1/customers")
        .body(exact.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), 1024);
}

fn futures_stream(
    items: Vec<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static
{
    struct Iter(std::vec::IntoIter<Result<bytes::Bytes, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test(flavor = "multi_thread")]
async fn leash_never_forwards_to_its_own_listeners() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;
    let proxy = leash.running.proxy_addr;
    let admin = leash.running.admin_addr;

    for target in [
        admin.to_string(),
        format!("localhost:{}", admin.port()),
        proxy.to_string(),
    ] {
        let (status, _) = raw_connect(proxy, &target, None).await;
        assert_eq!(status, 403, "CONNECT {target}");
    }
    // Plain HTTP (absolute-form) to the admin API is refused as well.
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(leash.proxy_url()).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // While the admin API itself answers directly.
    let direct = reqwest::get(format!("http://{admin}/healthz"))
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.text().await.unwrap(), r#"{"status":"ok"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ip_literal_connect_is_intercepted_when_sni_names_a_vendor() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;

    // The agent CONNECTs to an IP (api.stripe.com's address, here the
    // override's) but says api.stripe.com in its SNI; it trusts only
    // leash's CA, so completing TLS proves leash intercepted.
    let target = format!("{}:443", upstream.addr.ip());
    let mut sender = stripe_over_connect(&leash, &target).await;
    let request = http::Request::post("/v1/refunds")
        .header("host", "api.stripe.com")
        .body(Full::new(bytes::Bytes::from_static(
            b"charge=ch_1&amount=500&currency=eur",
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "the charge lookup, then the refund");
    assert_eq!(seen[0].path_and_query, "/v1/charges/ch_1");
    assert_eq!(seen[1].path_and_query, "/v1/refunds");
}

#[tokio::test(flavor = "multi_thread")]
async fn absolute_form_plain_http_is_forwarded() {
    let (ca, stripe) = stripe_setup().await;
    let plain = Upstream::start(None).await;
    // The plain site is on loopback, which leash never forwards to by default.
    let leash = Harness::start(stripe.addr, &ca, |c| {
        c.passthrough.deny_networks = DeniedNetworks::none();
    })
    .await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(leash.proxy_url()).unwrap())
        .build()
        .unwrap();

    // A host no adapter claims: plain HTTP forwarded as a normal proxy.
    let response = client
        .get(format!("http://127.0.0.1:{}/status?x=1", plain.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), UPSTREAM_BODY);
    assert_eq!(plain.seen()[0].path_and_query, "/status?x=1");

    // A vendor host over plain HTTP: read like any Stripe request and sent
    // on over TLS (leash never sends vendor traffic in clear text).
    let response = client
        .post("http://api.stripe.com/v1/charges")
        .body(STRIPE_CHARGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = stripe.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_ref(), STRIPE_CHARGE.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_body_is_forwarded_as_sent() {
    let (ca, upstream) = stripe_setup().await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(STRIPE_CHARGE.as_bytes()).unwrap();
    let gzipped = encoder.finish().unwrap();

    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .header("content-encoding", "gzip")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(gzipped.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.seen();
    assert_eq!(seen[0].body.as_ref(), gzipped.as_slice());
    assert_eq!(seen[0].headers["content-encoding"], "gzip");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_error_statuses_pass_through_unchanged() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream =
        Upstream::start_with_status(Some(ca.server_config(&["api.stripe.com"])), 402).await;
    let leash = Harness::start(upstream.addr, &ca, |_| {}).await;
    let response = leash
        .client()
        .post("https://api.stripe.com/v1/charges")
        .body(STRIPE_CHARGE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    assert!(response.headers().get("x-leash-decision").is_none());
    assert_eq!(response.text().await.unwrap(), UPSTREAM_BODY);
}

/// Reads until the peer closes; `true` if it did (EOF or reset) before
/// `guard` ran out. The guard only keeps a broken build from hanging the
/// suite: what is asserted is that leash closes, not how fast.
async fn closed_by_peer(mut stream: impl tokio::io::AsyncRead + Unpin, guard: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = Vec::new();
    tokio::time::timeout(guard, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_after_the_header_read_timeout() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start(upstream.addr, &ca, |config| {
        config.limits.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let proxy = leash.running.proxy_addr;
    let guard = Duration::from_secs(30);

    // The proxy port: connect, send nothing.
    let silent = tokio::net::TcpStream::connect(proxy).await.unwrap();
    assert!(
        closed_by_peer(silent, guard).await,
        "front door kept a silent client"
    );

    // A tunnel to Stripe whose client never starts TLS.
    let (status, stream) = raw_connect(proxy, "api.stripe.com:443", None).await;
    assert_eq!(status, 200);
    assert!(
        closed_by_peer(stream, guard).await,
        "no TLS handshake, still open"
    );

    // A tunnel with TLS done but no request.
    let (status, stream) = raw_connect(proxy, "api.stripe.com:443", None).await;
    assert_eq!(status, 200);
    let tls = tls_over(
        stream,
        leash.leash_tls_client(&[b"http/1.1"]),
        "api.stripe.com",
    )
    .await;
    assert!(
        closed_by_peer(tls, guard).await,
        "no request head, still open"
    );

    // A client that does send is served as before.
    let response = leash
        .client()
        .get("https://api.stripe.com/v1/balance")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
