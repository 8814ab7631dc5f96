//! The property behind issue 8 item 3: for any request head, what leash
//! forwards is what it classified. Heads are generated from the headers that
//! matter (the ones leash reads, hop-by-hop ones, `Connection` lists naming
//! either, method overrides, duplicates, values that are not text); each is
//! prepared as the proxy prepares it ([`prepare_head`]), turned into the
//! outgoing request ([`outgoing_request`]), and written by hyper-util's
//! client — the one [`crate::upstream`] uses — to a hyper server on
//! loopback. Whenever leash would forward (no ambiguity), the server must
//! receive the same method, target, body, and every header of the
//! classified head, value for value and in order; and reading the received
//! head gives the same [`HeadView`] as the classified one.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proptest::prelude::*;
use tokio::sync::Mutex;

use super::intercept::{outgoing_request, prepare_head, HeadView, Tunnel};
use crate::adapters::Registry;

/// Header names the generator draws from besides those the built-in
/// adapters read ([`adapter_headers`]): read for every vendor, hop-by-hop,
/// and the rest that pass through.
const NAMES: &[&str] = &[
    "content-type",
    "content-encoding",
    "idempotency-key",
    "x-api-version",
    "authorization",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
    "x-http-method-override",
    "x-method-override",
    "x-custom",
    "accept",
    "user-agent",
    "host",
];

/// Every header a built-in adapter reads (its idempotency and acting-account
/// headers, ...), lowercase.
fn adapter_headers() -> Vec<String> {
    let vendors = Registry::builtin();
    let mut names: Vec<String> = vendors
        .iter()
        .flat_map(|a| a.read_headers())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A header value naming a header an adapter reads (as a `Connection`
/// list would).
fn read_header_name() -> impl Strategy<Value = HeaderValue> {
    prop::sample::select(adapter_headers())
        .prop_map(|name| HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("x")))
}

fn value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        Just(HeaderValue::from_static(
            "application/x-www-form-urlencoded"
        )),
        Just(HeaderValue::from_static("application/json")),
        Just(HeaderValue::from_static("gzip")),
        Just(HeaderValue::from_static("account-1")),
        Just(HeaderValue::from_static("close")),
        Just(HeaderValue::from_static("keep-alive, x-custom")),
        read_header_name(),
        Just(HeaderValue::from_static("Content-Type , te")),
        read_header_name(),
        Just(HeaderValue::from_static("trailers")),
        Just(HeaderValue::from_static("")),
        // obs-text: not UTF-8, so `to_str` fails.
        Just(HeaderValue::from_bytes(b"caf\xe9").unwrap_or(HeaderValue::from_static("x"))),
        // Trimmed, as a parsed head delivers it (a field value's leading
        // and trailing whitespace is not part of it, RFC 9110 §5.5).
        "[a-zA-Z0-9_=;/ -]{0,24}".prop_map(|s| {
            HeaderValue::from_str(s.trim()).unwrap_or(HeaderValue::from_static("x"))
        }),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, HeaderValue)>> {
    let names: Vec<String> = NAMES
        .iter()
        .map(|n| n.to_string())
        .chain(adapter_headers())
        .collect();
    prop::collection::vec((prop::sample::select(names), value()), 0..10)
}

fn target() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("v1".to_string()),
        Just("refunds".to_string()),
        Just("payments".to_string()),
        Just("%2e%2e".to_string()),
        Just("pay_123%2Fcapture".to_string()),
        "[a-z0-9_]{1,8}",
    ];
    (
        prop::collection::vec(segment, 1..4),
        prop::option::of("[a-z]{1,6}=[a-z0-9%]{0,6}(&[a-z]{1,6}=[0-9]{0,4}){0,2}"),
    )
        .prop_map(|(segments, query)| {
            let mut target = format!("/{}", segments.join("/"));
            if let Some(query) = query {
                target.push('?');
                target.push_str(&query);
            }
            target
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT])
}

/// Header values per name, in order, without the headers the client
/// writes itself (`host` from the URI, `content-length` from the body).
fn comparable(headers: &HeaderMap) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut names: Vec<&HeaderName> = headers.keys().collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names
        .into_iter()
        .filter(|n| *n != http::header::HOST && *n != http::header::CONTENT_LENGTH)
        .map(|n| {
            (
                n.as_str().to_string(),
                headers
                    .get_all(n)
                    .iter()
                    .map(|v| v.as_bytes().to_vec())
                    .collect(),
            )
        })
        .collect()
}

type Seen = Arc<Mutex<Option<(http::request::Parts, Bytes)>>>;

/// A loopback HTTP/1.1 server that keeps the last request it received.
async fn recorder() -> (std::net::SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let sink = Arc::clone(&sink);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        *sink.lock().await = Some((parts, body));
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_is_forwarded_is_what_was_classified(
        vendor in prop::sample::select(Registry::builtin().names().into_iter().map(str::to_owned).collect::<Vec<_>>()),
        method in method(),
        target in target(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        declare_length in any::<bool>(),
    ) {
        let mut request = Request::builder().method(method).uri(target.as_str());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.clone());
        }
        let body = Bytes::from(body);
        if declare_length {
            // As hyper's server leaves it: the declared length is the body's.
            request = request.header("content-length", body.len());
        }
        let (parts, ()) = request.body(()).expect("a valid head").into_parts();
        let overridden = parts.headers.contains_key("x-http-method-override")
            || parts.headers.contains_key("x-method-override");

        let vendors = Registry::builtin();
        let adapter = vendors.named(&vendor).cloned();
        prop_assert!(adapter.is_some(), "{vendor} is a built-in adapter");
        let reads = adapter.as_deref().map(|a| a.read_headers()).unwrap_or_default();
        let (classified, ambiguity) = prepare_head(parts, &reads);
        if overridden {
            prop_assert!(ambiguity.is_some(), "a method override is always ambiguous");
        }
        if ambiguity.is_some() {
            // Refused, never forwarded: nothing to compare.
            return Ok(());
        }
        for name in ["content-type", "content-encoding"].iter().chain(&reads) {
            let values: Vec<_> = classified.headers.get_all(*name).iter().collect();
            prop_assert!(values.len() <= 1, "{name} read once");
            prop_assert!(values.iter().all(|v| v.to_str().is_ok()), "{name} is text");
        }

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let received = runtime.block_on(async {
            let (addr, seen) = recorder().await;
            let tunnel = Tunnel::new("agent".into(), "127.0.0.1".into(), addr.port(), adapter.clone());
            let mut outgoing = outgoing_request(&tunnel, classified.clone(), body.clone())
                .expect("a target that parsed parses again");
            // Plain HTTP on loopback; the head and body are written the same
            // way as inside TLS.
            *outgoing.uri_mut() = format!(
                "http://{}{}",
                tunnel.authority(),
                outgoing.uri().path_and_query().map_or("/", |pq| pq.as_str())
            )
            .parse()
            .expect("an http uri");
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let answer = client.request(outgoing).await;
            let received = seen.lock().await.take();
            (answer.map(|a| a.status()), received)
        });
        let (status, received) = received;
        prop_assert_eq!(status.ok(), Some(http::StatusCode::OK));
        let (wire, wire_body) = received.expect("the server received the request");

        prop_assert_eq!(&wire.method, &classified.method);
        prop_assert_eq!(
            wire.uri.path_and_query().map(|pq| pq.as_str()),
            classified.uri.path_and_query().map(|pq| pq.as_str())
        );
        prop_assert_eq!(&wire_body, &body);
        prop_assert_eq!(comparable(&wire.headers), comparable(&classified.headers));
        if let Some(length) = wire.headers.get("content-length") {
            let expected = body.len().to_string();
            prop_assert_eq!(length.to_str().ok(), Some(expected.as_str()));
        }
        prop_assert_eq!(
            HeadView::of(&wire, adapter.as_deref()),
            HeadView::of(&classified, adapter.as_deref())
        );
    }
}
