//! Inside an intercepted tunnel: terminate TLS, read each request as intents,
//! decide, forward.
//!
//! This is the one path every request to a vendor takes. Its steps run in the
//! data-flow order of the product — read → classify → gate → forward — and a
//! request that cannot be read whole is answered here and never forwarded.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderName, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, TE,
};
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use super::held::{HeldRequest, Retry};
use super::lookup::{Looked, Scope};
use super::Proxy;
use crate::adapters::{Adapter, Asked};
use crate::answer::{Answer, ProxyBody};
use crate::audit::{mask_card_numbers, NewEntry};
use crate::body::decode_for_reading;
use crate::gate::Outcome;
use crate::intent::{Classification, Facts, Fingerprint, Intent, Lookup, RequestView, NO_FACTS};
use crate::spend::Reservation;

/// One intercepted tunnel: who is speaking, and to which vendor host.
#[derive(Debug, Clone)]
pub struct Tunnel {
    pub agent: String,
    /// The vendor host requests are read for and forwarded to, whatever
    /// `Host` header the agent sends inside the tunnel.
    pub host: String,
    pub port: u16,
    /// The adapter that reads the requests and shapes leash's answers
    /// (`None` when no adapter claims the host: every request is then
    /// `unknown`).
    pub adapter: Option<Arc<dyn Adapter>>,
    /// The path and `Content-Type` of the request being served (set by
    /// [`Tunnel::serving`]): leash's own answers take the shape of the
    /// protocol asked (a gRPC status for a gRPC call).
    asked_path: String,
    asked_content_type: Option<String>,
}

impl Tunnel {
    pub fn new(agent: String, host: String, port: u16, adapter: Option<Arc<dyn Adapter>>) -> Self {
        Self {
            agent,
            host,
            port,
            adapter,
            asked_path: String::new(),
            asked_content_type: None,
        }
    }

    /// This tunnel while it serves the request whose head is `parts`.
    pub fn serving(&self, parts: &Parts) -> Tunnel {
        Tunnel {
            asked_path: parts.uri.path().to_owned(),
            asked_content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..self.clone()
        }
    }

    /// The request leash's answers are to (see [`Tunnel::serving`]).
    pub fn asked(&self) -> Asked<'_> {
        Asked {
            path: &self.asked_path,
            content_type: self.asked_content_type.as_deref(),
        }
    }

    /// The adapter's vendor name (`""` without one).
    pub fn vendor(&self) -> &str {
        self.adapter.as_deref().map_or("", |a| a.name())
    }

    /// The shape leash's own answers take on this tunnel.
    pub fn shape(&self) -> Option<&dyn Adapter> {
        self.adapter.as_deref()
    }

    /// The headers the adapter reads (see [`prepare_head`]).
    pub fn read_headers(&self) -> Vec<&str> {
        self.adapter
            .as_deref()
            .map(|a| a.read_headers())
            .unwrap_or_default()
    }

    /// `host` or `host:port` when the port is not 443.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// How many times an adapter may ask for lookups that follow from the
/// previous answers (an object, then one it refers to).
const MAX_LOOKUP_ROUNDS: usize = 3;

/// What became of a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// The vendor answered with this status.
    Answered(StatusCode),
    /// Nothing left leash: connecting (DNS, TCP, TLS) failed, or the
    /// request could not be built.
    NotSent,
    /// The request may have been sent, and no answer came.
    NoAnswer,
}

impl Forwarded {
    pub fn status(self) -> Option<StatusCode> {
        match self {
            Forwarded::Answered(status) => Some(status),
            Forwarded::NotSent | Forwarded::NoAnswer => None,
        }
    }
}

/// Why a request body could not be read.
enum BodyReadError {
    TooLarge,
    Broken(String),
}

impl Proxy {
    /// Terminates the agent's TLS for `tunnel.host` and serves the requests
    /// inside, HTTP/1.1 with keep-alive or HTTP/2 (chosen by ALPN).
    pub(super) async fn intercept<S>(self: Arc<Self>, tunnel: Tunnel, io: S) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = self
            .ca
            .server_config_for(&tunnel.host)
            .map_err(io::Error::other)?;
        let handshake = TlsAcceptor::from(config).accept(io);
        let tls = tokio::time::timeout(self.header_read_timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let header_read_timeout = self.header_read_timeout;
        let lifecycle = Arc::clone(&self.lifecycle);
        let tunnel = Arc::new(tunnel);
        let service = service_fn(move |request| {
            let proxy = Arc::clone(&self);
            let tunnel = Arc::clone(&tunnel);
            async move {
                let response = proxy.handle_intercepted(&tunnel, request).await;
                proxy.count_answer(&response);
                Ok::<_, Infallible>(response)
            }
        });
        // The protocol is the one ALPN chose, not sniffed from the first
        // bytes: sniffing would wait for them with no timer running.
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        if h2 {
            builder = builder.http2_only();
            builder.http2().timer(TokioTimer::new());
        } else {
            builder = builder.http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
        }
        let connection = builder.serve_connection(TokioIo::new(tls), service);
        lifecycle
            .serve(connection, |connection| connection.graceful_shutdown())
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// One request to a vendor: read, classify, gate, forward.
    pub(super) async fn handle_intercepted(
        &self,
        tunnel: &Tunnel,
        request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let tunnel = &tunnel.serving(&parts);
        let vendor = tunnel.shape();

        let raw = match read_whole(&parts.headers, body, self.max_body).await {
            Ok(raw) => raw,
            Err(BodyReadError::TooLarge) => {
                // Never read whole, so never classified: unreadable.
                self.metrics.request(tunnel.vendor(), "unreadable");
                return Answer::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "leash_body_too_large",
                    "error",
                    format!(
                        "request body is larger than limits.max_body ({} bytes); leash reads spend requests whole and does not forward what it cannot read",
                        self.max_body
                    ),
                )
                .render_to(vendor, tunnel.asked());
            }
            Err(BodyReadError::Broken(reason)) => {
                self.metrics.request(tunnel.vendor(), "unreadable");
                return Answer::new(
                    StatusCode::BAD_REQUEST,
                    "leash_body_unreadable",
                    "error",
                    format!("request body could not be read: {reason}"),
                )
                .render_to(vendor, tunnel.asked());
            }
        };

        // Strip first, then read: what is classified is the head that is
        // forwarded, byte for byte (SPEC §4.2). A hop-by-hop trick that would
        // make the two differ is caught here as ambiguous.
        let reads = tunnel.read_headers();
        let (parts, head_ambiguity) = prepare_head(parts, &reads);
        let Read {
            classification,
            fingerprint,
            after,
            record,
        } = self.classify(tunnel, &parts, &raw, head_ambiguity).await;
        self.metrics.request(tunnel.vendor(), classification.kind());
        let now = chrono::Utc::now();
        let head = HeadView::of(&parts, tunnel.shape());
        let intents = intents_of(
            &classification,
            &tunnel.agent,
            head.account,
            fingerprint,
            now,
        );
        log_classification(tunnel, &parts, &classification, &intents, &fingerprint);

        // A retry of a held request is answered by its hold, before any new
        // decision: no second hold, no second notification (SPEC §6).
        let idempotency_key = retry_idempotency_key(head.idempotency_key, &classification);
        // An ambiguous request is refused before this: its idempotency key
        // itself may be one of two.
        if !matches!(
            classification,
            Classification::Safe { .. } | Classification::Ambiguous { .. }
        ) {
            let key = crate::holds::retry_key(
                &tunnel.agent,
                tunnel.vendor(),
                idempotency_key.as_deref(),
                &fingerprint.to_hex(),
            );
            let found = self
                .desk
                .store
                .find_retry(&key, now)
                .and_then(|hold| match hold {
                    Some(hold) => Ok(Some(hold)),
                    None => self.desk.store.find_open_by_fingerprint(
                        &tunnel.agent,
                        tunnel.vendor(),
                        &fingerprint.to_hex(),
                        now,
                    ),
                });
            match found {
                Ok(Some(hold)) => {
                    // A vendor with short-lived signatures gets the retry,
                    // freshly signed, if it releases the hold.
                    let retry = vendor
                        .is_some_and(|a| a.short_lived_signatures())
                        .then_some(Retry { parts, raw });
                    return self.answer_retry(tunnel, hold, &fingerprint, retry).await;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(agent = %tunnel.agent, %error, "cannot read holds; request not forwarded");
                    return Answer::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "leash_unavailable",
                        "error",
                        "leash cannot read its holds right now; the request was not forwarded",
                    )
                    .render_to(vendor, tunnel.asked());
                }
            }
        }

        if let (Some(record), Classification::Safe { operation }) = (record, &classification) {
            // Written ahead like a decision: a record the adapter asked for
            // that cannot be written stops the request.
            let entry = NewEntry::new(crate::audit::Kind::Event)
                .with_agent(tunnel.agent.clone())
                .with_intent(serde_json::json!({
                    "vendor": tunnel.vendor(),
                    "operation": operation,
                    "record": record,
                }))
                .with_detail("fingerprint", fingerprint.to_hex().into());
            if let Err(error) = self.audit.append(entry).await {
                tracing::error!(agent = %tunnel.agent, %error, "audit write failed; request not forwarded");
                return Answer::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "leash_audit_unavailable",
                    "error",
                    "leash cannot write its audit log right now; the request was not forwarded",
                )
                .render(vendor);
            }
        }

        let gated = self
            .gate
            .decide(
                &tunnel.agent,
                tunnel.vendor(),
                &classification,
                &intents,
                now,
            )
            .await;

        // Write-ahead: the decision is durable before anything is sent (or
        // answered). If it cannot be recorded, nothing goes upstream.
        let audit_seq = match gated.record {
            None => None,
            Some(record) => match self.audit.append(record).await {
                Ok(appended) => {
                    // Counted once durable: a decision that could not be
                    // audited took no effect.
                    if let Some(decided) = gated.decided {
                        self.metrics.decision(
                            &tunnel.agent,
                            decided.action,
                            decided.rule,
                            decided.shadow,
                        );
                    }
                    Some(appended.seq)
                }
                Err(error) => {
                    if let Outcome::Forward { reservation } = &gated.outcome {
                        self.gate.cancel(reservation).await;
                    }
                    tracing::error!(agent = %tunnel.agent, %error, "audit write failed; request not forwarded");
                    return Answer::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "leash_audit_unavailable",
                        "error",
                        "leash cannot write its audit log right now; the request was not forwarded",
                    )
                    .render_to(vendor, tunnel.asked());
                }
            },
        };

        match gated.outcome {
            Outcome::Forward { reservation } => {
                let (response, forwarded) = self.forward(tunnel, parts, raw, &after).await;
                let spend = self.settle(&reservation, forwarded).await;
                if let Some(decision_seq) = audit_seq {
                    let mut entry = NewEntry::outcome(
                        tunnel.agent.clone(),
                        forwarded.status().map(|s| s.as_u16()),
                    )
                    .with_detail("reservation", spend.into());
                    if forwarded == Forwarded::NotSent {
                        entry = entry.with_detail("not_sent", true.into());
                    }
                    self.record_outcome(entry, decision_seq);
                }
                response
            }
            Outcome::Refuse(answer) => answer
                .with_audit_seq(audit_seq)
                .render_to(vendor, tunnel.asked()),
            Outcome::Hold(plan) => {
                let Some(decision_seq) = audit_seq else {
                    // A hold always comes with a decision entry; without
                    // one there is nothing to hang it on.
                    return Answer::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "leash_unavailable",
                        "error",
                        "leash could not record this decision; the request was not forwarded",
                    )
                    .render_to(vendor, tunnel.asked());
                };
                let request = HeldRequest {
                    intents: crate::gate::intent_record(&classification, tunnel.vendor(), &intents),
                    operation: classification.operation().to_string(),
                    parts,
                    raw,
                    fingerprint,
                    idempotency_key,
                    decision_seq,
                };
                self.hold(tunnel, plan, request).await
            }
        }
    }

    /// Settles, releases or keeps `reservation` by what became of the
    /// request: a 2xx is spend, a 4xx/5xx is not, a request that never left
    /// leash (connect, DNS or TLS failed) is not, and one that left but got
    /// no answer keeps its reservation (the money may have moved).
    pub(super) async fn settle(
        &self,
        reservation: &Reservation,
        forwarded: Forwarded,
    ) -> &'static str {
        match forwarded {
            Forwarded::NotSent => {
                self.gate.cancel(reservation).await;
                if reservation.is_empty() {
                    "none"
                } else {
                    "released"
                }
            }
            other => {
                self.gate
                    .upstream_answered(reservation, other.status())
                    .await
            }
        }
    }

    /// Appends the `outcome` entry of the decision `decision_seq` in the
    /// background: it follows its decision in the chain, and the agent need
    /// not wait for it (it is queued to the audit writer, no task spawned).
    /// Nor does the disk: it is durable with the next decision's flush (or
    /// sled's own within 500 ms), so a request costs one flush, not two.
    /// Lost in a crash, it only leaves the reservation counted, which is
    /// what an unanswered request does anyway.
    pub(super) fn record_outcome(&self, entry: NewEntry, decision_seq: u64) {
        let entry = entry.with_detail("decision_seq", decision_seq.into());
        if let Err(error) = self.audit.submit_with_next_flush(entry) {
            tracing::error!(%error, decision_seq, "could not record an upstream outcome");
        }
    }

    /// Reads the request as the vendor adapter sees it, and fingerprints it.
    /// `parts` is the head as it will be forwarded ([`prepare_head`]), and
    /// `ambiguity` what [`prepare_head`] found read two ways in it.
    /// A body leash cannot decode is unreadable — never safe.
    pub(super) async fn classify(
        &self,
        tunnel: &Tunnel,
        parts: &Parts,
        raw: &Bytes,
        ambiguity: Option<String>,
    ) -> Read {
        let head = HeadView::of(parts, tunnel.shape());
        let names = tunnel.read_headers();
        let read = read_header_values(&names, &parts.headers);
        let decoded = decode_for_reading(head.content_encoding, raw, self.max_body);
        let body: &[u8] = match &decoded {
            Ok(body) => body,
            Err(_) => raw,
        };
        // The adapter's fingerprint: a vendor may leave out a per-call
        // idempotency field of the body (EC2's `ClientToken`).
        let unread = head.request_view(&tunnel.host, &read, body, &NO_FACTS);
        let fingerprint = match tunnel.shape() {
            Some(adapter) => adapter.fingerprint(&unread),
            None => unread.fingerprint(),
        };
        let operation = format!("{} {}", parts.method, parts.uri.path());
        let mut looked_up = Vec::new();
        let mut learns = false;
        let mut record = None;
        let read = match (&decoded, tunnel.shape()) {
            (Err(error), _) => Classification::Unreadable {
                operation,
                reason: error.to_string(),
            },
            (Ok(_), None) => Classification::Unknown {
                operation,
                reason: format!("no vendor adapter claims {}", tunnel.host),
            },
            (Ok(_), Some(adapter)) => {
                let mut facts = Facts::default();
                facts.set_read_at(chrono::Utc::now());
                // Nothing is looked up for a request that is refused anyway.
                if ambiguity.is_none() {
                    let scope = Scope::of(tunnel, parts);
                    for _ in 0..MAX_LOOKUP_ROUNDS {
                        let wanted: Vec<Lookup> = adapter
                            .lookups(&head.request_view(&tunnel.host, &read, body, &facts))
                            .into_iter()
                            .filter(|l| !facts.has(&l.path))
                            .collect();
                        if wanted.is_empty() {
                            break;
                        }
                        for lookup in wanted {
                            let got = self.look_up(tunnel, &scope, &lookup).await;
                            looked_up.push(lookup.path.clone());
                            match got {
                                Ok(Looked {
                                    json,
                                    learned_from: Some(from),
                                }) => facts.insert_learned(lookup.path, json, from),
                                Ok(Looked { json, .. }) => facts.insert(lookup.path, Ok(json)),
                                Err(failure) => facts.insert(lookup.path, Err(failure)),
                            }
                        }
                    }
                }
                let view = head.request_view(&tunnel.host, &read, body, &facts);
                learns = adapter.learns_from(&view);
                let read = adapter.classify(&view);
                if matches!(read, Classification::Safe { .. }) && ambiguity.is_none() {
                    record = adapter.safe_record(&view);
                }
                read
            }
        };
        let classification = match ambiguity {
            // Whatever the adapter would have called it, even `Safe`: a
            // method override or a second Content-Type can make a read a
            // write to the vendor.
            Some(reason) => Classification::Ambiguous {
                operation: read.operation().to_owned(),
                reason,
            },
            None => read,
        };
        Read {
            classification,
            fingerprint,
            after: AfterForward { looked_up, learns },
            record,
        }
    }

    /// Sends the request, exactly as read, to the vendor and streams its
    /// answer back unchanged (minus hop-by-hop headers). `parts` is the head
    /// that was classified, already stripped by [`prepare_head`]; it is not
    /// stripped again. [`Forwarded`] says whether the vendor answered, nothing
    /// was sent, or the request may have been sent without an answer.
    ///
    /// `after` says what the lookup cache makes of it: the objects looked
    /// up for the request are dropped once it may have reached the vendor
    /// (the write may have changed them), and a 2xx answer the adapter
    /// learns from is read on its way to the agent.
    pub(super) async fn forward(
        &self,
        tunnel: &Tunnel,
        parts: Parts,
        raw: Bytes,
        after: &AfterForward,
    ) -> (Response<ProxyBody>, Forwarded) {
        let vendor = tunnel.shape();
        let scope =
            (after.learns || !after.looked_up.is_empty()).then(|| Scope::of(tunnel, &parts));
        let learning = after.learns.then(|| Learning {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body: raw.clone(),
        });
        let outgoing = match outgoing_request(tunnel, parts, raw) {
            Ok(outgoing) => outgoing,
            Err(error) => {
                let answer = Answer::new(
                    StatusCode::BAD_REQUEST,
                    "leash_bad_uri",
                    "error",
                    format!("request target cannot be forwarded: {error}"),
                );
                // Nothing was sent: releasing is right.
                return (answer.render_to(vendor, tunnel.asked()), Forwarded::NotSent);
            }
        };

        let started = std::time::Instant::now();
        let sent = self.upstream.send(outgoing).await;
        if let Some(scope) = &scope {
            let maybe_sent = match &sent {
                Ok(_) => true,
                Err(error) => !error.nothing_sent(),
            };
            if maybe_sent {
                let stale: Vec<String> = after
                    .looked_up
                    .iter()
                    .filter(|path| !vendor.is_some_and(|a| a.stays_fresh(path)))
                    .cloned()
                    .collect();
                self.lookups.forget(scope, &stale);
            }
        }
        match sent {
            Ok(response) => {
                self.metrics
                    .upstream_answered(tunnel.vendor(), started.elapsed());
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let status = parts.status;
                let body = match (learning, &scope, tunnel.shape()) {
                    (Some(learning), Some(scope), Some(adapter)) if status.is_success() => {
                        self.learn(adapter, tunnel, scope, &learning, &parts.headers, body)
                            .await
                    }
                    _ => body.boxed(),
                };
                (
                    Response::from_parts(parts, body),
                    Forwarded::Answered(status),
                )
            }
            Err(error) => {
                self.metrics.upstream_failed(tunnel.vendor());
                let nothing_sent = error.nothing_sent();
                // The error may quote the request target; a card number in
                // a path is masked like everywhere else.
                let error = mask_card_numbers(&error.to_string()).into_owned();
                tracing::warn!(agent = %tunnel.agent, host = %tunnel.host, %error, "upstream failed");
                let answer = Answer::new(
                    StatusCode::BAD_GATEWAY,
                    "leash_upstream_unreachable",
                    "error",
                    format!("{} could not be reached: {error}", tunnel.host),
                );
                let forwarded = if nothing_sent {
                    Forwarded::NotSent
                } else {
                    Forwarded::NoAnswer
                };
                (answer.render_to(vendor, tunnel.asked()), forwarded)
            }
        }
    }
}

/// A request as leash read it: what it is, which request it is, and what
/// forwarding it does to the lookup cache.
pub(super) struct Read {
    pub classification: Classification,
    pub fingerprint: Fingerprint,
    pub after: AfterForward,
    /// What the adapter asks to record of a safe write
    /// ([`Adapter::safe_record`]).
    pub record: Option<serde_json::Value>,
}

/// What the lookup cache does once a request was forwarded.
#[derive(Debug, Default)]
pub(super) struct AfterForward {
    /// The paths looked up to read the request: stale once it may have
    /// reached the vendor.
    looked_up: Vec<String>,
    /// Whether the adapter learns from the vendor's 2xx answer.
    learns: bool,
}

/// The request an answer is learned from, kept while it is forwarded.
struct Learning {
    method: http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Proxy {
    /// Reads a 2xx answer the adapter learns from while passing it on
    /// unchanged: its frames are collected (up to [`MAX_LEARNED_ANSWER`]
    /// bytes of data), then replayed to the agent. An answer that is
    /// larger, broken midway, not readable by the adapter
    /// ([`Adapter::learn_from_answer`]) or not decodable is passed on as it
    /// came and teaches nothing: learning only ever saves a lookup.
    async fn learn(
        &self,
        adapter: &dyn Adapter,
        tunnel: &Tunnel,
        scope: &Scope,
        request: &Learning,
        answer_headers: &HeaderMap,
        mut body: Incoming,
    ) -> ProxyBody {
        let mut frames = std::collections::VecDeque::new();
        let mut data = bytes::BytesMut::new();
        let mut whole = true;
        let mut broken = None;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Some(chunk) = frame.data_ref() {
                        data.extend_from_slice(chunk);
                    }
                    frames.push_back(frame);
                    if data.len() > MAX_LEARNED_ANSWER {
                        whole = false;
                        break;
                    }
                }
                Some(Err(error)) => {
                    whole = false;
                    broken = Some(error);
                    break;
                }
            }
        }
        if whole {
            let encoding = answer_headers
                .get(CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok());
            let answer = decode_for_reading(encoding, &data, MAX_LEARNED_ANSWER).ok();
            let content_type = answer_headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if let Some(answer) = answer {
                let head = HeadView::read(
                    &request.method,
                    &request.uri,
                    &request.headers,
                    Some(adapter),
                );
                let decoded =
                    decode_for_reading(head.content_encoding, &request.body, self.max_body);
                if let Ok(request_body) = decoded {
                    let names = adapter.read_headers();
                    let read = read_header_values(&names, &request.headers);
                    let view = head.request_view(&tunnel.host, &read, &request_body, &NO_FACTS);
                    // The adapter reads the answer's bytes (strict JSON
                    // by default; EC2 answers XML).
                    let learned = adapter.learn_from_answer(&view, content_type, &answer);
                    if !learned.is_empty() {
                        tracing::debug!(agent = %tunnel.agent, host = %tunnel.host, objects = learned.len(), "learned from an answer");
                        self.metrics.lookup(tunnel.vendor(), "learned");
                        let from = format!("{} {}", request.method, request.uri.path());
                        self.lookups.learned(scope, &from, learned);
                    }
                }
            }
        }
        let rest = if whole || broken.is_some() {
            None
        } else {
            Some(body)
        };
        super::replayed_body::ReplayedBody::new(frames, broken, rest).boxed()
    }
}

/// The largest answer leash reads to learn from; a larger one is passed on
/// without being read.
const MAX_LEARNED_ANSWER: usize = 1024 * 1024;

/// The idempotency key a retry of this request carries: the one the
/// adapter read into the intents (a body field for some vendors), else the
/// adapter's idempotency header (`from_header`, as [`HeadView`] read it).
fn retry_idempotency_key(
    from_header: Option<&str>,
    classification: &Classification,
) -> Option<String> {
    if let Classification::Spend(drafts) = classification {
        if let Some(key) = drafts.iter().find_map(|d| d.idempotency_key.clone()) {
            return Some(key);
        }
    }
    from_header.map(str::to_owned)
}

/// The request to send upstream: the prepared head as it was classified,
/// with the tunnel's host as the target. Pure, so the property "the bytes
/// forwarded are the bytes classified" can be tested on it.
pub(crate) fn outgoing_request(
    tunnel: &Tunnel,
    mut parts: Parts,
    raw: Bytes,
) -> Result<Request<Full<Bytes>>, http::uri::InvalidUri> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri: Uri = format!("https://{}{}", tunnel.authority(), path_and_query).parse()?;
    // The upstream client writes Host (HTTP/1.1) or :authority (HTTP/2)
    // from the URI: requests go to the tunnel's host, whatever the agent
    // wrote, so what leash read is what the vendor receives.
    parts.headers.remove(HOST);
    let mut outgoing = Request::new(Full::new(raw));
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = Version::HTTP_11;
    *outgoing.headers_mut() = parts.headers;
    Ok(outgoing)
}

/// The parts of a request head that classification reads, borrowed from
/// it. Built the same way from the classified head and (in tests) from the
/// outgoing one, which must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub account: Option<&'a str>,
}

impl<'a> HeadView<'a> {
    pub fn of(parts: &'a Parts, adapter: Option<&dyn Adapter>) -> Self {
        Self::read(&parts.method, &parts.uri, &parts.headers, adapter)
    }

    pub fn read(
        method: &'a http::Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        adapter: Option<&dyn Adapter>,
    ) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let named = |name: Option<&str>| name.and_then(header);
        Self {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query(),
            content_type: header(CONTENT_TYPE.as_str()),
            content_encoding: header(CONTENT_ENCODING.as_str()),
            idempotency_key: named(adapter.and_then(|a| a.idempotency_header())),
            // The account is what the adapter reads in its header (the
            // access key id of an AWS `Authorization`, not the signature).
            account: adapter.and_then(|a| named(a.account_header()).and_then(|v| a.account_of(v))),
        }
    }

    fn request_view(
        &self,
        host: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        facts: &'a Facts,
    ) -> RequestView<'a> {
        RequestView {
            headers,
            method: self.method,
            host,
            path: self.path,
            query: self.query,
            content_type: self.content_type,
            idempotency_key: self.idempotency_key,
            account: self.account,
            body,
            facts,
        }
    }
}

/// The values of the read headers `names` in `headers` (text only, the
/// first copy: [`prepare_head`] makes a request with two copies, or one
/// that is not text, ambiguous before any adapter reads it).
fn read_header_values<'a>(names: &[&'a str], headers: &'a HeaderMap) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((*name, value))
        })
        .collect()
}

/// Headers that ask the vendor to execute another method than the request
/// line's (Rails, Express and many gateways honour one of them): on an
/// intercepted host always ambiguous, whatever their value.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers leash reads for every vendor: how the body is framed.
const ALWAYS_READ: &[&str] = &["content-type", "content-encoding"];

/// Makes a request head ready to be classified and forwarded: removes the
/// hop-by-hop headers (and every header `Connection` names), and says what
/// in the head can be read in more than one way.
///
/// `reads` are the headers the vendor adapter reads besides
/// [`ALWAYS_READ`]. The head is ambiguous when it carries a method
/// override; two copies of a read header (leash would read the first, the
/// vendor may read another); a read header that is not text (leash would
/// read none, the vendor one); or a `Connection` header naming a read
/// header (leash would read it, then strip it: the vendor would never see
/// what was decided on). Other names in `Connection` are stripped quietly,
/// as RFC 9110 §7.6.1 asks: they name nothing leash reads.
pub(crate) fn prepare_head(mut parts: Parts, reads: &[&str]) -> (Parts, Option<String>) {
    let ambiguity = head_ambiguity(&parts.headers, reads);
    // `TE` is hop-by-hop, but `TE: trailers` says the client reads
    // trailers, which gRPC needs (its status is a trailer) and its servers
    // may insist on. leash streams trailers back, so it asks for them on
    // the agent's behalf; any other TE is dropped.
    let trailers = parts.headers.get_all(TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    strip_hop_by_hop(&mut parts.headers);
    if trailers {
        parts
            .headers
            .insert(TE, http::HeaderValue::from_static("trailers"));
    }
    (parts, ambiguity)
}

fn head_ambiguity(headers: &HeaderMap, reads: &[&str]) -> Option<String> {
    if let Some(name) = METHOD_OVERRIDES.iter().find(|h| headers.contains_key(**h)) {
        return Some(format!(
            "the request carries {name}, so the vendor may execute another method than the request line's"
        ));
    }
    let read = |name: &str| {
        ALWAYS_READ
            .iter()
            .chain(reads)
            .any(|r| r.eq_ignore_ascii_case(name))
    };
    for name in ALWAYS_READ.iter().chain(reads) {
        let mut values = headers.get_all(*name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Some(format!(
                "the request carries {name} more than once; leash would read one copy, the vendor may read another"
            ));
        }
        if first.is_some_and(|v| v.to_str().is_err()) {
            return Some(format!(
                "the {name} header is not plain text; leash would read it as absent, the vendor may not"
            ));
        }
    }
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else {
            // Leash cannot tell which headers it names, so which would be
            // stripped on the way: not what was read.
            return Some("the Connection header is not plain text".to_owned());
        };
        if let Some(name) = value.split(',').map(str::trim).find(|n| read(n)) {
            return Some(format!(
                "the Connection header names {}, a header leash reads, so it would be removed after leash read it",
                name.to_ascii_lowercase()
            ));
        }
    }
    None
}

/// Reads the whole body, refusing beyond `max` bytes (early, from
/// `Content-Length`, when the agent declares it).
async fn read_whole(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
) -> Result<Bytes, BodyReadError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(BodyReadError::TooLarge);
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyReadError::TooLarge)
        }
        Err(error) => Err(BodyReadError::Broken(error.to_string())),
    }
}

/// The intents of a request, stamped with the agent and the time, with
/// anything that looks like a card number masked.
pub(super) fn intents_of(
    classification: &Classification,
    agent: &str,
    account: Option<&str>,
    fingerprint: Fingerprint,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<Intent> {
    match classification {
        Classification::Spend(drafts) => drafts
            .iter()
            .cloned()
            .map(|draft| {
                let mut intent = draft.into_intent(agent, fingerprint, at);
                intent.account = account.map(|a| mask_card_numbers(a).into_owned());
                // Agents send what they send: a card number where a
                // beneficiary or key belongs must not reach the ledger, the
                // audit chain or the logs. Masked here, once, every later
                // step (caps included) sees the same value.
                intent.beneficiary = intent
                    .beneficiary
                    .map(|b| mask_card_numbers(&b).into_owned());
                intent.idempotency_key = intent
                    .idempotency_key
                    .map(|k| mask_card_numbers(&k).into_owned());
                intent
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One structured log line per request and per intent. Bodies, query strings
/// and headers are never logged: they may hold card numbers and secrets.
/// The path is logged masked: an agent may put a card number in it
/// (`/v1/customers/4242…`), and so may an operation or reason quoting it.
fn log_classification(
    tunnel: &Tunnel,
    parts: &Parts,
    classification: &Classification,
    intents: &[Intent],
    fingerprint: &Fingerprint,
) {
    let operation = classification.operation();
    let reason = match classification {
        Classification::Unknown { reason, .. }
        | Classification::Unreadable { reason, .. }
        | Classification::Ambiguous { reason, .. } => reason.as_str(),
        Classification::Safe { .. } | Classification::Spend(_) => "",
    };
    tracing::info!(
        target: "leash::request",
        agent = %tunnel.agent,
        vendor = tunnel.vendor(),
        method = %parts.method,
        // Paths carry ids an agent chose; a card number among them is
        // masked like anywhere else in the logs.
        path = %mask_card_numbers(parts.uri.path()),
        class = classification.kind(),
        operation = %mask_card_numbers(operation),
        reason = %mask_card_numbers(reason),
        intents = intents.len(),
        fingerprint = %fingerprint,
        "request classified"
    );
    for intent in intents {
        tracing::info!(
            target: "leash::intent",
            agent = %intent.agent,
            vendor = %intent.vendor,
            operation = %mask_card_numbers(&intent.operation),
            amount = %intent.amount.as_ref().map(|m| m.amount.to_string()).unwrap_or_default(),
            currency = %intent.amount.as_ref().map(|m| m.currency.to_string()).unwrap_or_default(),
            beneficiary = %mask_card_numbers(intent.beneficiary.as_deref().unwrap_or("")),
            category = %intent.category,
            idempotency_key = %mask_card_numbers(intent.idempotency_key.as_deref().unwrap_or("")),
            fingerprint = %intent.fingerprint,
            "intent"
        );
    }
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including every header the
/// `Connection` header names, so they are not passed across the proxy.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_connection_listed_ones_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, x-secret-hop".parse().unwrap());
        headers.insert("x-secret-hop", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("proxy-authorization", "Basic abc".parse().unwrap());
        headers.insert("transfer-encoding", "chunked".parse().unwrap());
        headers.insert("x-api-version", "2024-06-20".parse().unwrap());
        headers.insert("idempotency-key", "k1".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(headers.contains_key("x-api-version"));
        assert!(headers.contains_key("idempotency-key"));
    }

    #[test]
    fn te_trailers_is_asked_for_on_the_agents_behalf_and_other_te_dropped() {
        let head = |te: Option<&str>| {
            let mut request = Request::post("https://googleads.googleapis.com/x");
            if let Some(te) = te {
                request = request.header("te", te);
            }
            let (parts, ()) = request.body(()).unwrap().into_parts();
            let (parts, ambiguity) = prepare_head(parts, &[]);
            assert_eq!(ambiguity, None);
            parts
                .headers
                .get("te")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(head(Some("trailers")).as_deref(), Some("trailers"));
        assert_eq!(head(Some("gzip, Trailers")).as_deref(), Some("trailers"));
        assert_eq!(head(Some("gzip")), None);
        assert_eq!(head(None), None);
    }

    #[test]
    fn read_headers_reach_the_adapter_once_and_as_text() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-encoding", "gzip".parse().unwrap());
        headers.insert("authorization", "Bearer x".parse().unwrap());
        let read = read_header_values(&["grpc-encoding", "absent"], &headers);
        assert_eq!(read, vec![("grpc-encoding", "gzip")]);
    }

    #[test]
    fn a_tunnel_serving_a_request_answers_in_its_protocol() {
        let t = Tunnel::new("a".into(), "googleads.googleapis.com".into(), 443, None);
        assert_eq!(t.asked(), Asked::default());
        let (parts, ()) = Request::post("/google.ads.googleads.v25.services.X/Y")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap()
            .into_parts();
        let serving = t.serving(&parts);
        assert_eq!(
            serving.asked(),
            Asked {
                path: "/google.ads.googleads.v25.services.X/Y",
                content_type: Some("application/grpc"),
            }
        );
        assert_eq!(serving.agent, "a");
    }

    #[test]
    fn authority_omits_default_port_and_brackets_ipv6() {
        let t = Tunnel::new("a".into(), "api.example.com".into(), 443, None);
        assert_eq!(t.authority(), "api.example.com");
        let t = Tunnel::new("a".into(), "::1".into(), 8443, None);
        assert_eq!(t.authority(), "[::1]:8443");
    }
}
