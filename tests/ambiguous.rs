//! Deciding on exactly what is sent (issue 8 items 3, 4): a request leash
//! can read two ways is refused `403 leash_ambiguous`, recorded as a REJECT
//! decision, never held, and never reaches the vendor.

mod common;

use common::{raw_connect, tls_over, Harness, TestCa, Upstream};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Approves everything: whatever is refused here is refused for being
/// ambiguous, not by a rule.
const ALLOW: &str = "agent: growth-agent\ncurrency: EUR\ndefault: AUTO_APPROVE\nunknown: AUTO_APPROVE\nunreadable: REJECT\n";

/// Sends one raw HTTP/1.1 request (headers exactly as given, duplicates
/// kept) inside a CONNECT tunnel to api.stripe.com.
async fn send_raw(
    leash: &Harness,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> http::Response<hyper::body::Incoming> {
    let (status, stream) = raw_connect(leash.running.proxy_addr, "api.stripe.com:443", None).await;
    assert_eq!(status, 200);
    let tls = tls_over(
        stream,
        leash.leash_tls_client(&[b"http/1.1"]),
        "api.stripe.com",
    )
    .await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api.stripe.com");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    sender
        .send_request(
            request
                .body(Full::new(bytes::Bytes::from_static(body)))
                .unwrap(),
        )
        .await
        .unwrap()
}

/// What is tried, method, path, headers, body.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static [u8],
);

async fn decision(leash: &Harness, seq: u64) -> Value {
    let url = format!(
        "http://{}/v1/audit?after={}&limit=1",
        leash.running.admin_addr,
        seq - 1
    );
    let body: Value = common::admin_get(leash, &url).await.json().await.unwrap();
    body["entries"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_read_two_ways_are_refused_recorded_and_never_sent() {
    leash::install_crypto_provider();
    let ca = TestCa::new("test public CA");
    let upstream = Upstream::start(Some(ca.server_config(&["api.stripe.com"]))).await;
    let leash = Harness::start_with_policy(upstream.addr, &ca, ALLOW, |_| {}).await;
    let form = ("content-type", "application/x-www-form-urlencoded");

    let cases: Vec<Case> = vec![
        // Item 3: classified with a header the hop-by-hop strip removes.
        (
            "connection names content-encoding",
            "POST",
            "/v1/refunds",
            vec![
                form,
                ("content-encoding", "gzip"),
                ("connection", "content-encoding"),
            ],
            b"charge=ch_1&amount=60000",
        ),
        (
            "two content types",
            "POST",
            "/v1/refunds",
            vec![form, ("content-type", "application/json")],
            b"charge=ch_1&amount=100",
        ),
        (
            "two idempotency keys",
            "POST",
            "/v1/refunds",
            vec![form, ("idempotency-key", "a"), ("idempotency-key", "b")],
            b"charge=ch_1&amount=100",
        ),
        (
            "two acting accounts",
            "POST",
            "/v1/refunds",
            vec![
                form,
                ("stripe-account", "acct_1"),
                ("stripe-account", "acct_2"),
            ],
            b"charge=ch_1&amount=100",
        ),
        (
            "a method override on a read",
            "GET",
            "/v1/charges",
            vec![("x-http-method-override", "POST")],
            b"",
        ),
        (
            "a duplicate form key",
            "POST",
            "/v1/refunds",
            vec![form],
            b"charge=ch_1&amount=100&amount=60000",
        ),
        (
            "amount in query and body",
            "POST",
            "/v1/refunds?amount=60000",
            vec![form],
            b"charge=ch_1&amount=100",
        ),
    ];
    for (what, method, path, headers, body) in cases {
        let response = send_raw(&leash, method, path, &headers, body).await;
        assert_eq!(response.status(), 403, "{what}");
        assert_eq!(response.headers()["stripe-should-retry"], "false", "{what}");
        assert!(
            !response.headers().contains_key("x-leash-hold-id"),
            "{what}: never held"
        );
        let seq: u64 = response.headers()["x-leash-audit-seq"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "leash_ambiguous", "{what}: {body}");
        let entry = decision(&leash, seq).await;
        assert_eq!(entry["kind"], "decision", "{what}");
        assert_eq!(entry["decision"], "REJECT", "{what}: {entry}");
    }
    assert!(
        upstream.seen().is_empty(),
        "the vendor received none of them"
    );

    // Nothing was held, so nothing can be approved.
    let holds: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/v1/holds", leash.running.admin_addr))
        .bearer_auth(common::AUDITOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(
        holds["holds"].as_array().is_none_or(|h| h.is_empty()),
        "{holds}"
    );

    // A plain request still goes through.
    let ok = send_raw(
        &leash,
        "POST",
        "/v1/payment_intents",
        &[form],
        b"amount=100&currency=eur",
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(upstream.seen().len(), 1);
}
