//! Answers leash makes itself, in the shape the agent's SDK expects (SPEC §7).
//!
//! An agent talking to a vendor through leash should get errors that
//! vendor's SDK parses into a clean typed exception, not an HTML page from a
//! proxy: the tunnel's adapter puts each answer in its vendor's shape
//! ([`Adapter::shape_refusal`]). Every such answer carries `X-Leash-*`
//! headers so a human reading logs (or an agent's tool wrapper) can tell
//! leash spoke, not the vendor.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, PROXY_AUTHENTICATE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

use crate::adapters::{Adapter, Asked, Refusal, Shaped, ShapedBody};

/// The body type of every response leash sends to agents: either the
/// vendor's streamed answer or one of leash's own.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

pub const X_LEASH_DECISION: HeaderName = HeaderName::from_static("x-leash-decision");
pub const X_LEASH_RULE: HeaderName = HeaderName::from_static("x-leash-rule");
pub const X_LEASH_HOLD_ID: HeaderName = HeaderName::from_static("x-leash-hold-id");
pub const X_LEASH_AUDIT_SEQ: HeaderName = HeaderName::from_static("x-leash-audit-seq");

/// A body that is already complete.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The code of an answer leash rendered itself, kept in the response's
/// extensions (never sent) so the proxy can count its answers by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCode(pub &'static str);

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
    /// `X-Leash-Rule`: the deciding rule's priority.
    pub rule: Option<u32>,
    /// `X-Leash-Hold-Id`, for held requests.
    pub hold_id: Option<String>,
    /// `Retry-After` in seconds, for held requests.
    pub retry_after: Option<u64>,
    /// `X-Leash-Audit-Seq`: the audit entry recording the decision.
    pub audit_seq: Option<u64>,
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
            rule: None,
            hold_id: None,
            retry_after: None,
            audit_seq: None,
        }
    }

    /// Names the audit entry of the decision (`X-Leash-Audit-Seq`).
    pub fn with_audit_seq(mut self, seq: Option<u64>) -> Self {
        self.audit_seq = seq;
        self
    }

    /// Names the deciding rule (`X-Leash-Rule`).
    pub fn with_rule(mut self, rule: Option<u32>) -> Self {
        self.rule = rule;
        self
    }

    /// Names the hold and when to ask again.
    pub fn with_hold(mut self, hold_id: String, retry_after_secs: u64) -> Self {
        self.hold_id = Some(hold_id);
        self.retry_after = Some(retry_after_secs);
        self
    }

    /// Renders the answer in `adapter`'s error shape (`None`: leash's
    /// generic shape, used outside intercepted tunnels).
    pub fn render(&self, adapter: Option<&dyn Adapter>) -> Response<ProxyBody> {
        self.render_to(adapter, Asked::default())
    }

    /// Renders the answer to the request `asked`, in `adapter`'s shape for
    /// it ([`Adapter::shape_refusal_to`]: a gRPC call gets a gRPC status,
    /// a REST call on the same host JSON).
    pub fn render_to(
        &self,
        adapter: Option<&dyn Adapter>,
        asked: Asked<'_>,
    ) -> Response<ProxyBody> {
        // Reasons can quote what an agent sent (a beneficiary id); never
        // echo anything that looks like a card number.
        let message = crate::audit::mask_card_numbers(&self.message);
        let refusal = Refusal {
            status: self.status,
            code: self.code,
            message: &message,
        };
        let shaped = match adapter {
            Some(adapter) => adapter.shape_refusal_to(&refusal, &asked),
            None => Shaped::generic(&refusal),
        };
        let (content_type, body) = match shaped.body {
            ShapedBody::Json(value) => ("application/json", value.to_string().into_bytes()),
            ShapedBody::Raw {
                content_type,
                bytes,
            } => (content_type, bytes),
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = shaped.status.unwrap_or(self.status);
        response.extensions_mut().insert(AnswerCode(self.code));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(X_LEASH_DECISION, HeaderValue::from_static(self.decision));
        if let Some(rule) = self.rule {
            headers.insert(X_LEASH_RULE, HeaderValue::from(rule));
        }
        if let Some(hold_id) = self.hold_id.as_deref() {
            // Hold ids are generated by leash (hex), always a valid value.
            if let Ok(value) = HeaderValue::from_str(hold_id) {
                headers.insert(X_LEASH_HOLD_ID, value);
            }
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(seq) = self.audit_seq {
            headers.insert(X_LEASH_AUDIT_SEQ, HeaderValue::from(seq));
        }
        for (name, value) in shaped.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
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

    /// An adapter whose vendor wants a `type` in its errors and a header
    /// that keeps its SDK from retrying.
    struct Acme;

    impl Adapter for Acme {
        fn name(&self) -> &str {
            "acme"
        }
        fn claims_host(&self, host: &str) -> bool {
            host == "api.example.com"
        }
        fn hosts(&self) -> Vec<String> {
            vec!["api.example.com".into()]
        }
        fn classify(&self, _req: &crate::intent::RequestView<'_>) -> crate::intent::Classification {
            crate::intent::Classification::Unknown {
                operation: "x".into(),
                reason: "a test adapter reads nothing".into(),
            }
        }
        fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
            let mut body = serde_json::json!({
                "error": { "code": refusal.code, "message": refusal.message }
            });
            body["error"]["type"] = "invalid_request".into();
            Shaped::json(body).with_header("acme-should-retry", "false")
        }
    }

    #[tokio::test]
    async fn the_adapter_shapes_the_body_and_adds_its_headers() {
        let response = Answer::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "leash_body_too_large",
            "error",
            "too big",
        )
        .render(Some(&Acme));
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["acme-should-retry"], "false");
        assert_eq!(response.headers()["x-leash-decision"], "error");
        let json = body_json(response).await;
        assert_eq!(json["error"]["type"], "invalid_request");
        assert_eq!(json["error"]["code"], "leash_body_too_large");
        assert_eq!(json["error"]["message"], "too big");
    }

    #[tokio::test]
    async fn every_builtin_adapter_shapes_its_answers() {
        let registry = crate::adapters::Registry::builtin();
        for adapter in registry.iter() {
            let answer = Answer::new(StatusCode::FORBIDDEN, "leash_rejected", "rejected", "no");
            let shaped = adapter.shape_refusal(&Refusal {
                status: answer.status,
                code: answer.code,
                message: &answer.message,
            });
            let response = answer.render(Some(adapter));
            let vendor = adapter.name();
            assert_eq!(
                response.status(),
                shaped.status.unwrap_or(StatusCode::FORBIDDEN),
                "{vendor}"
            );
            assert_eq!(
                response.headers()["x-leash-decision"],
                "rejected",
                "{vendor}"
            );
            for (name, value) in &shaped.headers {
                assert_eq!(
                    response.headers()[*name],
                    value.as_str(),
                    "{vendor}: {name}"
                );
            }
            match &shaped.body {
                ShapedBody::Json(json) => assert_eq!(&body_json(response).await, json, "{vendor}"),
                ShapedBody::Raw {
                    content_type,
                    bytes,
                } => {
                    assert_eq!(
                        response.headers()["content-type"],
                        *content_type,
                        "{vendor}"
                    );
                    let got = response.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(got.as_ref(), bytes.as_slice(), "{vendor}");
                }
            }
        }
    }

    #[test]
    fn the_code_rides_along_in_the_extensions_for_metrics() {
        let response =
            Answer::new(StatusCode::FORBIDDEN, "leash_rejected", "rejected", "no").render(None);
        assert_eq!(
            response.extensions().get::<AnswerCode>(),
            Some(&AnswerCode("leash_rejected"))
        );
    }

    #[tokio::test]
    async fn generic_shape_for_other_vendors() {
        let response =
            Answer::new(StatusCode::BAD_GATEWAY, "leash_upstream", "error", "down").render(None);
        // No vendor's headers: only leash's own.
        let mut names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-leash-decision"]);
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
