//! Answers leash makes itself, in the shape the agent's SDK expects (SPEC §7).
//!
//! An agent talking to Stripe through leash should get errors its Stripe SDK
//! parses into a clean typed exception, not an HTML page from a proxy. Every
//! such answer carries `X-Leash-*` headers so a human reading logs (or an
//! agent's tool wrapper) can tell leash spoke, not the vendor.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, PROXY_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

/// The body type of every response leash sends to agents: either the
/// vendor's streamed answer or one of leash's own.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

pub const X_LEASH_DECISION: HeaderName = HeaderName::from_static("x-leash-decision");
pub const X_LEASH_RULE: HeaderName = HeaderName::from_static("x-leash-rule");
pub const X_LEASH_HOLD_ID: HeaderName = HeaderName::from_static("x-leash-hold-id");
pub const X_LEASH_AUDIT_SEQ: HeaderName = HeaderName::from_static("x-leash-audit-seq");
const STRIPE_SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");

/// A body that is already complete.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An answer leash gives instead of (or before) the vendor's.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// Machine-readable code, e.g. `leash_rejected`, `leash_body_too_large`.
    pub code: &'static str,
    /// Human-readable explanation. Never contains secrets or request bodies.
    pub message: String,
    /// `X-Leash-Decision`: `rejected`, `held`, or `error` for refusals that
    /// are not a policy decision (body too large, upstream unreachable).
    pub decision: &'static str,
}

impl Answer {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        decision: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            decision,
        }
    }

    /// Renders the answer in `vendor`'s error shape (`None`: leash's generic
    /// shape, used outside intercepted tunnels).
    pub fn render(&self, vendor: Option<&str>) -> Response<ProxyBody> {
        let body = match vendor {
            Some("stripe") => serde_json::json!({
                "error": {
                    "type": stripe_error_type(self.status),
                    "code": self.code,
                    "message": self.message,
                }
            }),
            _ => serde_json::json!({
                "error": { "code": self.code, "message": self.message }
            }),
        };
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(X_LEASH_DECISION, HeaderValue::from_static(self.decision));
        if vendor == Some("stripe") {
            // Stripe SDKs honour this and do not retry a refused request.
            headers.insert(STRIPE_SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        response
    }
}

/// Stripe's SDKs pick the exception class from the HTTP status and
/// `error.type`: 4xx from leash are request problems, 5xx are API errors.
fn stripe_error_type(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "api_error"
    } else {
        "invalid_request_error"
    }
}

/// `407 Proxy Authentication Required`, with the challenge clients need to
/// retry with credentials.
pub fn proxy_auth_required(reason: &str) -> Response<ProxyBody> {
    let mut response = Answer::new(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "leash_proxy_auth",
        "error",
        reason,
    )
    .render(None);
    response.headers_mut().insert(
        PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"leash\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response<ProxyBody>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn stripe_shape_has_type_code_message_and_no_retry() {
        let response = Answer::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "leash_body_too_large",
            "error",
            "too big",
        )
        .render(Some("stripe"));
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["stripe-should-retry"], "false");
        assert_eq!(response.headers()["x-leash-decision"], "error");
        let json = body_json(response).await;
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert_eq!(json["error"]["code"], "leash_body_too_large");
        assert_eq!(json["error"]["message"], "too big");
    }

    #[tokio::test]
    async fn generic_shape_for_other_vendors() {
        let response =
            Answer::new(StatusCode::BAD_GATEWAY, "leash_upstream", "error", "down").render(None);
        assert!(response.headers().get("stripe-should-retry").is_none());
        let json = body_json(response).await;
        assert_eq!(json["error"]["code"], "leash_upstream");
        assert!(json["error"].get("type").is_none());
    }

    #[test]
    fn auth_challenge_is_basic() {
        let response = proxy_auth_required("no credentials");
        assert_eq!(response.status(), 407);
        assert_eq!(
            response.headers()["proxy-authenticate"],
            "Basic realm=\"leash\""
        );
    }
}
