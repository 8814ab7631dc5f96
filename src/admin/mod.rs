//! The admin listener (SPEC §9): health, metrics, the audit API, and approvals
//! (`/v1/holds…` with approver tokens, `/slack/actions` signed by Slack). It is a separate socket from the proxy so that
//! agents can never reach it through the proxy (see `Proxy::own_listeners`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

mod holds_api;
mod spend_api;

pub use spend_api::SpendView;

use crate::answer::{full, ProxyBody};
use crate::audit::AuditLog;
use crate::metrics::Metrics;
use crate::store::Store;

/// Whether leash can do its job. A component that finds it cannot (the audit
/// chain refusing writes, say) marks leash unhealthy with a reason.
#[derive(Debug)]
pub struct Health {
    healthy: AtomicBool,
    reason: Mutex<String>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            healthy: AtomicBool::new(true),
            reason: Mutex::new(String::new()),
        }
    }
}

impl Health {
    pub fn mark_unhealthy(&self, reason: impl Into<String>) {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason.into();
        self.healthy.store(false, Ordering::SeqCst);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Shared state of the admin API.
pub struct Admin {
    pub health: Arc<Health>,
    /// The audit chain: its health is leash's health (a request that cannot
    /// be audited is never forwarded).
    pub audit: Option<AuditLog>,
    /// For `GET /v1/audit`.
    pub store: Option<Store>,
    /// Holds, for `/v1/holds…` and `/slack/actions`.
    pub desk: Option<crate::desk::Desk>,
    /// For `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// For `GET /v1/spend`: the policies in force and the live ledger.
    pub spend: Option<SpendView>,
    /// Who may read `GET /v1/audit` and `GET /v1/spend`: approvers and
    /// auditors.
    pub audit_readers: AuditReaders,
    /// `limits.header_read_timeout`, `limits.idle_timeout` and
    /// `limits.max_admin_connections`.
    pub limits: ConnectionLimits,
    /// Stopping: the accept loop returns, connections finish what they
    /// have and close (see [`crate::lifecycle`]).
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// The spend ledger: a shared one that does not answer degrades
    /// `/healthz` (spend is refused meanwhile; SPEC §11).
    pub ledger: Option<Arc<dyn crate::spend::SpendLedger>>,
}

/// What bounds one admin connection, and how many there may be.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        let limits = crate::config::Limits::default();
        Self {
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            max_connections: limits.max_admin_connections.get(),
        }
    }
}

/// The bearer tokens that may read the audit API (SPEC §9): every approver
/// with a token, and every auditor. The chain holds every agent's amounts
/// and beneficiaries, so "any local process" is not a reader.
#[derive(Debug, Clone, Default)]
pub struct AuditReaders {
    /// Name and SHA-256 of the token.
    readers: Vec<(String, [u8; 32])>,
}

impl AuditReaders {
    pub fn from_config(approvers: &crate::config::Approvers) -> Self {
        let people = approvers
            .people
            .iter()
            .filter_map(|(name, p)| p.token_sha256.map(|t| (name.clone(), t)));
        let auditors = approvers
            .auditors
            .iter()
            .map(|(name, a)| (name.clone(), a.token_sha256));
        Self {
            readers: people.chain(auditors).collect(),
        }
    }

    /// The reader whose token `authorization` (`Bearer <token>`) carries.
    /// Every reader is compared, in constant time, whoever matches.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Option<&str> {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let header = std::str::from_utf8(authorization?).ok()?;
        let (scheme, token) = header.trim().split_once(' ')?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return None;
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, expected) in &self.readers {
            if bool::from(digest.ct_eq(expected)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

impl Admin {
    /// Serves the admin API until the task is dropped.
    ///
    /// Each connection has the proxy's limits: a request head within
    /// `header_read_timeout`, closed after `idle_timeout` with nothing moving,
    /// and beyond `max_connections` open at once a new one is closed on
    /// accept.
    ///
    /// Returns (closing the listener) once leash stops.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.lifecycle.stopping() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed on the admin listener");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!(%peer, max = self.limits.max_connections, "admin connection refused: limits.max_admin_connections reached");
                drop(stream);
                continue;
            };
            let admin = Arc::clone(&self);
            let lifecycle = Arc::clone(&self.lifecycle);
            tokio::spawn(async move {
                let _slot = slot;
                let limits = admin.limits.clone();
                let service = service_fn(move |request| {
                    let admin = Arc::clone(&admin);
                    async move { Ok::<_, Infallible>(admin.route(request).await) }
                });
                let (stream, activity) = crate::idle::Watched::new(stream);
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout);
                builder.http2().timer(TokioTimer::new());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection =
                    lifecycle.serve(connection, |connection| connection.graceful_shutdown());
                if activity
                    .until_idle(connection, limits.idle_timeout)
                    .await
                    .is_none()
                {
                    tracing::debug!(%peer, "admin connection closed: idle for limits.idle_timeout");
                }
            });
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let path = request.uri().path().to_string();
        match (request.method(), path.as_str()) {
            (&Method::GET, "/healthz") => self.healthz(),
            (&Method::GET, "/metrics") => self.metrics().await,
            (&Method::GET, "/v1/audit") => {
                let authorization = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes());
                match self.audit_readers.authenticate(authorization) {
                    Some(reader) => {
                        tracing::debug!(%reader, "audit read");
                        self.audit_entries(request.uri().query())
                    }
                    None => error(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "GET /v1/audit needs Authorization: Bearer with an approver's or an auditor's token (approvers.auditors)",
                    ),
                }
            }
            (&Method::GET, "/v1/spend") => {
                let authorization = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes());
                match (&self.spend, self.audit_readers.authenticate(authorization)) {
                    (None, _) => not_found(),
                    (Some(view), Some(reader)) => {
                        tracing::debug!(%reader, "spend read");
                        spend_api::spend(view, request.uri().query()).await
                    }
                    (Some(_), None) => error(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "GET /v1/spend needs Authorization: Bearer with an approver's or an auditor's token (approvers.auditors)",
                    ),
                }
            }
            (&Method::POST, "/slack/actions") => match &self.desk {
                Some(desk) => holds_api::slack_actions(desk, request).await,
                None => not_found(),
            },
            (_, p) if p == "/v1/holds" || p.starts_with("/v1/holds/") => match &self.desk {
                Some(desk) => holds_api::route(desk, request).await,
                None => not_found(),
            },
            _ => not_found(),
        }
    }

    fn healthz(&self) -> Response<ProxyBody> {
        if let Some(failure) = self.audit.as_ref().and_then(|a| a.failure()) {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "unhealthy", "reason": format!("audit chain: {failure}")}),
            );
        }
        if let Some(reason) = self.ledger.as_ref().and_then(|l| l.unavailable()) {
            // Degraded, not dead: safe requests and the admin API work, and
            // leash recovers by itself when the database answers again.
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "degraded", "reason": format!("spend ledger: {reason}")}),
            );
        }
        if self.health.is_healthy() {
            json(StatusCode::OK, serde_json::json!({"status": "ok"}))
        } else {
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "unhealthy", "reason": self.health.reason()}),
            )
        }
    }

    /// `GET /metrics`: OpenMetrics text, unauthenticated like `/healthz`
    /// (no label carries anything an agent sent; see [`crate::metrics`]).
    /// The hold and audit gauges are read now, from their stores.
    async fn metrics(&self) -> Response<ProxyBody> {
        if let Some(desk) = &self.desk {
            // Reads (and decodes) each open hold: off the async threads.
            let desk = Arc::clone(desk);
            let counted =
                tokio::task::spawn_blocking(move || desk.store.pending_count(chrono::Utc::now()))
                    .await;
            match counted {
                Ok(Ok(pending)) => self.metrics.set_holds_pending(pending),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot count pending holds for /metrics")
                }
                Err(error) => tracing::warn!(%error, "cannot count pending holds for /metrics"),
            }
        }
        if let Some(audit) = &self.audit {
            self.metrics.set_audit(audit.entries(), audit.is_healthy());
        }
        if let Some(ledger) = &self.ledger {
            self.metrics
                .set_ledger_available(ledger.unavailable().is_none());
        }
        match self.metrics.encode() {
            Ok(text) => {
                let mut response = Response::new(full(text));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                );
                response
            }
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics_unavailable",
                "the metrics could not be encoded",
            ),
        }
    }

    /// `GET /v1/audit?after=SEQ&limit=N`: entries after `after` (from the
    /// start without it), at most `limit` (default 100, at most 1000).
    fn audit_entries(&self, query: Option<&str>) -> Response<ProxyBody> {
        let Some(store) = &self.store else {
            return json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": {"code": "not_found", "message": "no audit chain"}}),
            );
        };
        let mut after = None;
        let mut limit = 100usize;
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let parsed = value.parse::<u64>();
            match (key.as_ref(), parsed) {
                ("after", Ok(seq)) => after = Some(seq),
                ("limit", Ok(n)) => limit = usize::try_from(n).unwrap_or(usize::MAX).clamp(1, 1000),
                ("after" | "limit", Err(_)) => {
                    return json(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({"error": {"code": "bad_request", "message": format!("{key} must be a non-negative integer")}}),
                    )
                }
                _ => {}
            }
        }
        match crate::audit::read_entries(store, after, limit) {
            Ok(entries) => json(StatusCode::OK, serde_json::json!({ "entries": entries })),
            Err(error) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": {"code": "audit_unreadable", "message": error.to_string()}}),
            ),
        }
    }
}

fn not_found() -> Response<ProxyBody> {
    error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

/// `{"error": {"code", "message"}}`, the admin API's error shape.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<ProxyBody> {
    json(
        status,
        serde_json::json!({"error": {"code": code, "message": message.into()}}),
    )
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
