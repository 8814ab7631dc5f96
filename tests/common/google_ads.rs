//! A gRPC client for Google Ads through a leash [`Harness`]: requests in
//! the client libraries' wire shape (HTTP/2 over leash's CONNECT tunnel,
//! `application/grpc`, `te: trailers`, the `authorization`,
//! `developer-token` and `login-customer-id` metadata, a length-prefixed
//! prost message, optionally gzip), and the answer read the way a gRPC
//! client reads it: `grpc-status` from the trailers (or the headers of a
//! trailers-only answer), `grpc-message` percent-decoded, the
//! `GoogleAdsFailure` trailer decoded.
//!
//! For seed scenarios: [`mutate_campaign_budgets`] sends one
//! `MutateCampaignBudgets` and returns its [`GrpcAnswer`];
//! [`point_at`] sends `googleads.googleapis.com` to a stand-in.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

use leash::adapters::google_ads::grpc::{self, GoogleAdsFailure};
use leash::adapters::google_ads::proto::{
    BudgetAction, CampaignBudget, CampaignBudgetOperation, FieldMask, MutateCampaignBudgetsRequest,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{tls_over, Harness};

/// The Google Ads host.
pub const HOST: &str = "googleads.googleapis.com";

/// The `:path` of `MutateCampaignBudgets` in API `v25`.
pub const MUTATE_BUDGETS: &str =
    "/google.ads.googleads.v25.services.CampaignBudgetService/MutateCampaignBudgets";

/// Routes `googleads.googleapis.com` to `addr` (a stand-in whose CA the
/// harness trusts): use in the harness's config tweak.
pub fn point_at(config: &mut leash::config::Config, addr: std::net::SocketAddr) {
    config.upstream.overrides.insert(
        HOST.to_string(),
        leash::config::HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
    );
}

/// A `MutateCampaignBudgetsRequest` creating one budget of `micros`.
pub fn create_budget(customer: &str, micros: i64) -> MutateCampaignBudgetsRequest {
    MutateCampaignBudgetsRequest {
        customer_id: customer.to_string(),
        operations: vec![CampaignBudgetOperation {
            update_mask: None,
            operation: Some(BudgetAction::Create(CampaignBudget {
                resource_name: String::new(),
                amount_micros: Some(micros),
                total_amount_micros: None,
            })),
        }],
        partial_failure: false,
        validate_only: false,
    }
}

/// A request updating `budget`'s daily amount to `micros` (masked).
pub fn update_budget(customer: &str, budget: &str, micros: i64) -> MutateCampaignBudgetsRequest {
    MutateCampaignBudgetsRequest {
        customer_id: customer.to_string(),
        operations: vec![CampaignBudgetOperation {
            update_mask: Some(FieldMask {
                paths: vec!["amount_micros".to_string()],
            }),
            operation: Some(BudgetAction::Update(CampaignBudget {
                resource_name: budget.to_string(),
                amount_micros: Some(micros),
                total_amount_micros: None,
            })),
        }],
        partial_failure: false,
        validate_only: false,
    }
}

/// How a call is sent.
#[derive(Debug, Clone, Copy)]
pub struct Send {
    /// Compress the message (`grpc-encoding: gzip`, flag 1).
    pub gzip: bool,
    /// Split the body into this many DATA frames (at least 1).
    pub frames: usize,
}

impl Default for Send {
    fn default() -> Self {
        Send {
            gzip: false,
            frames: 1,
        }
    }
}

/// What came back, read as a gRPC client reads it.
#[derive(Debug, Clone)]
pub struct GrpcAnswer {
    /// The HTTP status (gRPC answers everything `200`).
    pub http_status: u16,
    pub headers: HeaderMap,
    /// `None` for a trailers-only answer.
    pub trailers: Option<HeaderMap>,
    /// `grpc-status`, from the trailers or a trailers-only head.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<String>,
    /// The answer's messages (prefix removed).
    pub messages: Vec<Vec<u8>>,
    /// The v25 `GoogleAdsFailure` trailer, decoded.
    pub failure: Option<GoogleAdsFailure>,
}

/// A body of DATA frames sent one by one.
struct Chunks(VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// Sends `MutateCampaignBudgets` with `request` through `leash` as the
/// harness's default agent.
pub async fn mutate_campaign_budgets(
    leash: &Harness,
    request: &MutateCampaignBudgetsRequest,
) -> GrpcAnswer {
    call(
        leash,
        MUTATE_BUDGETS,
        &request.encode_to_vec(),
        Send::default(),
    )
    .await
}

/// A CONNECT as gRPC C-core (grpcio, the Python, Ruby and PHP
/// libraries) sends it through `https_proxy`: HTTP/1.0, `Host` with the
/// port (`http_connect_handshaker.cc`). Returns the status and the stream.
pub async fn grpc_core_connect(proxy: std::net::SocketAddr) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let head = format!("CONNECT {HOST}:443 HTTP/1.0\r\nHost: {HOST}:443\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert!(n > 0, "proxy closed during CONNECT response");
        response.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

/// Sends one unary gRPC call (`path`, the encoded `message`) through
/// `leash` to `googleads.googleapis.com`, over HTTP/2 in a CONNECT tunnel opened as gRPC C-core opens it.
pub async fn call(leash: &Harness, path: &str, message: &[u8], how: Send) -> GrpcAnswer {
    let (status, stream) = grpc_core_connect(leash.running.proxy_addr).await;
    assert_eq!(status, 200, "CONNECT");
    let tls = tls_over(stream, leash.leash_tls_client(&[b"h2"]), HOST).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("HTTP/2 handshake with leash");
    tokio::spawn(connection);

    let body = grpc::frame(message, how.gzip);
    let frames = how.frames.max(1);
    let size = body.len().div_ceil(frames).max(1);
    let chunks: VecDeque<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
    let mut request = Request::post(format!("https://{HOST}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", "identity,deflate,gzip")
        .header(
            "user-agent",
            "grpc-python/1.71.0 grpc-c/46.0.0 (linux; chttp2)",
        )
        .header(
            "x-goog-api-client",
            "gl-python/3.12.3 grpc/1.71.0 gax/2.24.2 gccl/31.0.0",
        )
        .header("authorization", "Bearer ya29.a0-test-oauth-token")
        .header("developer-token", "dev-token-0123456789")
        .header("login-customer-id", "9876543210");
    if how.gzip {
        request = request.header("grpc-encoding", "gzip");
    }
    let request = request.body(Chunks(chunks)).unwrap();
    let response = sender
        .send_request(request)
        .await
        .expect("an HTTP/2 answer");
    let http_status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("the answer's body");
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let mut messages = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(message) = rest.get(5..5 + len) else {
            break;
        };
        messages.push(message.to_vec());
        rest = &rest[5 + len..];
    }
    // A trailers-only answer carries its status in the head.
    let status_block = trailers.as_ref().unwrap_or(&parts.headers);
    let text = |name: &str| {
        status_block
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let failure = text("google.ads.googleads.v25.errors.googleadsfailure-bin")
        .and_then(|v| b64.decode(v.trim_end_matches('=')).ok())
        .and_then(|bytes| GoogleAdsFailure::decode(bytes.as_slice()).ok());
    GrpcAnswer {
        http_status,
        status: text("grpc-status").and_then(|s| s.parse().ok()),
        message: text("grpc-message").map(|m| grpc::percent_decode(&m)),
        headers: parts.headers,
        trailers,
        messages,
        failure,
    }
}
