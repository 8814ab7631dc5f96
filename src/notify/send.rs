//! Sending: telling every `notify` target about a hold (SPEC §6, §8).
//!
//! The rest of [`notify`](super) is pure: it signs and builds. This module is
//! the part that touches the network, and it is built around one rule: **a
//! notification never makes the agent wait.** The proxy hands a hold to
//! [`Notifier::notify_hold_created`], which spawns the deliveries and returns
//! at once; a receiver that is slow, down or black-holing packets costs the
//! proxy nothing but a few sleeping tasks.
//!
//! The opposite failure matters as much: a hold whose approvers never hear of
//! it waits out its TTL and expires, which is safe but useless. So each
//! delivery is retried, with bounded exponential backoff, when the failure
//! looks transient (no connection, no answer in time, a 5xx, a 429), and not
//! when the receiver said no (any other 4xx: resending the same bytes will
//! not change its mind). Every attempt has its own timeout, so a receiver
//! that accepts the connection and then never answers is given up on too.
//!
//! # Webhooks
//!
//! Each event gets one fresh `webhook-id`, kept across its retries so the
//! receiver can drop duplicates (a retry after a timeout may well be one),
//! and every attempt gets a fresh `webhook-timestamp` and signature, so that
//! a late retry still lands inside the receiver's replay window. The body is
//! serialized once and the same bytes go to every webhook target on every
//! attempt. It carries the latest signed audit checkpoint, so a copy of the
//! chain's head exists off the machine (SPEC §8).
//!
//! # Slack
//!
//! Slack targets receive [`slack::hold_message`] on their incoming-webhook
//! URL. Incoming webhooks are not idempotent: a retry after a timeout can
//! post the message twice. Two identical messages whose buttons name the same
//! hold are harmless (the second click finds the hold decided); no message
//! is not.
//!
//! # Secrets in logs
//!
//! A Slack incoming-webhook URL *is* a credential (its path is the secret),
//! and a `response_url` is one too. So nothing here logs a URL: targets are
//! named by kind and host, and transport errors are stripped of the URL that
//! `reqwest` would otherwise put in their message. Webhook secrets are held
//! as [`WebhookSecret`], whose `Debug` prints nothing of the key.
//!
//! # What is not done
//!
//! Redirects are not followed (a 3xx is a refusal): following one would send
//! a signed event, and for Slack the secret-bearing body, to a host nobody
//! configured. Proxy environment variables are ignored, as they are for the
//! vendor leg: the shell that starts leash is often the one that exported
//! `HTTPS_PROXY` pointing at leash itself (`leash env`).

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};

use super::slack::{self, HoldSummary};
use super::webhook::{self, WebhookError, WebhookSecret};
use crate::audit::Checkpoint;
use crate::config::NotifyTarget;
use crate::policy::engine::Verdict;

/// How many final delivery reports [`DeliveryLog::recent`] keeps. Enough to
/// see the last few holds' fates on a debugging endpoint; bounded so that a
/// long-running leash does not grow a list forever.
const RECENT_REPORTS: usize = 256;

/// How much of a receiver's answer is read. Slack explains a refusal in the
/// body (`invalid_payload`, `channel_not_found`), which is worth a log line;
/// anything beyond a short prefix is not, and a hostile receiver must not be
/// able to make leash buffer megabytes.
const MAX_ANSWER_BYTES: usize = 1024;

// ---------------------------------------------------------------------------
// The event

/// What happened to a hold, as the `type` of a webhook event.
///
/// Dotted names, as Standard Webhooks recommends (`resource.action`), so a
/// receiver can route on the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    /// A request was held and waits for approvers.
    #[serde(rename = "hold.created")]
    HoldCreated,
    /// A hold was approved, rejected or expired.
    #[serde(rename = "hold.resolved")]
    HoldResolved,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HoldCreated => "hold.created",
            EventType::HoldResolved => "hold.resolved",
        }
    }
}

/// One rule that sent the request to a human, as an approver reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggeredRule {
    /// The rule's priority; `None` when the hold comes from the stack's
    /// `default`, `unknown` or `unreadable` action rather than a rule.
    pub priority: Option<u32>,
    /// The rule's type and why it triggered, in words
    /// (`AMOUNT_THRESHOLD: 1,800.00 EUR >= 1,500.00 EUR`).
    pub text: String,
}

impl From<&Verdict> for TriggeredRule {
    fn from(v: &Verdict) -> Self {
        TriggeredRule {
            priority: Some(v.priority),
            text: format!("{}: {}", v.rule_type, v.reason),
        }
    }
}

/// Where an approver (or a receiver acting for one) answers a hold: the
/// admin API's endpoints for this hold (SPEC §9). The approve and reject
/// URLs take a `POST` with an approver's bearer token; `hold` is the
/// `GET` that shows it.
///
/// Absolute URLs rather than a bare id, so that a receiver need not know
/// where leash's admin API lives; the links are useless without a token, so
/// they carry no authority of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callbacks {
    pub approve: String,
    pub reject: String,
    pub hold: String,
}

impl Callbacks {
    /// The three URLs for `hold_id` under `base`. The id is percent-encoded
    /// as one path segment, so even a malformed id cannot point a callback
    /// at another endpoint.
    pub fn new(base: &AdminUrl, hold_id: &str) -> Self {
        let hold = base.join(&["v1", "holds", hold_id]);
        Callbacks {
            approve: base.join(&["v1", "holds", hold_id, "approve"]),
            reject: base.join(&["v1", "holds", hold_id, "reject"]),
            hold,
        }
    }
}

/// The admin API's address as receivers and approvers reach it, which is
/// not always the address leash listens on (a reverse proxy, a public name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUrl(Url);

impl AdminUrl {
    /// Reads a base URL such as `https://leash.internal.example` or
    /// `http://127.0.0.1:8081/leash/`: http(s), with a host, without a
    /// query, fragment or credentials (none of which a callback could keep).
    pub fn parse(s: &str) -> Result<Self, NotifyError> {
        let bad = |reason: &str| NotifyError::AdminUrl(reason.to_string());
        let url = Url::parse(s.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("not an http:// or https:// URL"));
        }
        if url.host_str().is_none() || url.cannot_be_a_base() {
            return Err(bad("no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a base URL takes no query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in a URL sent to receivers"));
        }
        Ok(AdminUrl(url))
    }

    /// `http://` and the address the admin API listens on. An unspecified
    /// address (`0.0.0.0`, `::`) becomes loopback, which is at least a
    /// working URL on the same host; anything reached from elsewhere needs
    /// [`AdminUrl::parse`] with the name receivers use.
    pub fn from_listen(addr: SocketAddr) -> Result<Self, NotifyError> {
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Self::parse(&format!("http://{}", SocketAddr::new(ip, addr.port())))
    }

    /// The base with `segments` appended, each encoded as one segment.
    fn join(&self, segments: &[&str]) -> String {
        let mut url = self.0.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.to_string()
    }
}

impl fmt::Display for AdminUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// The JSON event sent to webhook targets.
///
/// Every number in it is an integer: amounts inside `intents` are decimal
/// strings (SPEC §4.1), because a receiver's JSON parser may read any
/// fractional number as a binary float and round it. [`Notifier`] enforces
/// that on the way out (see [`event_body`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub hold_id: String,
    pub agent: String,
    pub vendor: String,
    pub operation: String,
    /// The held intents as the audit chain records them (amounts as strings,
    /// card numbers masked).
    pub intents: Value,
    /// The rules that sent the request to a human.
    pub rules: Vec<TriggeredRule>,
    /// The request has no amount leash could read (unknown, unreadable):
    /// `intents` is what leash read of it (operation, path, the raw
    /// amount-bearing fields, masked, and why), and an approval must state
    /// `amount` and `currency` (`POST callbacks.approve` with
    /// `{"amount": "4000.00", "currency": "EUR"}`).
    pub amount_required: bool,
    /// Who must approve, in words (`2 of finance`, `maya`).
    pub approvers_needed: String,
    /// When the hold expires unless decided, RFC 3339.
    pub expires_at: String,
    pub callbacks: Callbacks,
    /// The latest signed audit checkpoint (SPEC §8), so that every receiver
    /// keeps a copy of the chain's head beyond the reach of the machine
    /// leash runs on. `null` before the first checkpoint is signed.
    pub checkpoint: Option<Checkpoint>,
    /// When the event happened, RFC 3339.
    pub at: String,
}

/// Serializes an event for the wire: compact JSON in which every
/// non-integer number has become its decimal string.
///
/// A float can only get here by mistake (the intent types use exact
/// decimals), and the value is already rounded by then; but as a string a
/// receiver at least cannot round it *again*, and receivers can rely on
/// "every JSON number in a leash event is an integer".
pub fn event_body(event: &HoldEvent) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(event)?;
    floats_to_strings(&mut value);
    serde_json::to_vec(&value)
}

fn floats_to_strings(value: &mut Value) {
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            *value = Value::String(n.to_string());
        }
        Value::Array(items) => items.iter_mut().for_each(floats_to_strings),
        Value::Object(map) => map.values_mut().for_each(floats_to_strings),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Retry policy

/// How hard a delivery tries.
///
/// The defaults (5 attempts; 0.5 s, 1 s, 2 s, 4 s between them, each
/// jittered down to as little as half; 10 s per attempt) give up within
/// about a minute in the worst case, and within 8 s when the receiver is
/// simply down (connection refused). That fits the
/// default `holds.wait` of 25 s: a receiver that comes back within a few
/// seconds still gets the event while the agent is waiting on its
/// connection, and a receiver that is gone does not keep tasks alive for
/// long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (0 is read as 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled before each later one.
    pub initial_backoff: Duration,
    /// No wait is longer than this, `Retry-After` included.
    pub max_backoff: Duration,
    /// The longest one attempt may take, from connecting to the end of the
    /// answer. Without it a receiver that accepts and never answers would
    /// hold a delivery forever and retries would never start.
    pub attempt_timeout: Duration,
    /// Randomize each wait to between half and all of its nominal value, so
    /// that the many holds one burst of agent traffic creates do not retry
    /// against a recovering receiver in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The nominal wait before retry number `retry` (1 for the first retry):
    /// `initial_backoff × 2^(retry-1)`, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The actual wait: the nominal backoff, jittered with `random`, and
    /// stretched to the receiver's `Retry-After` if it asked for longer
    /// (still capped: a receiver cannot park a delivery for an hour).
    fn delay(&self, retry: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        let nominal = self.backoff(retry);
        let jittered = if self.jitter {
            let nanos = u64::try_from(nominal.as_nanos()).unwrap_or(u64::MAX);
            let half = nanos / 2;
            let spread = half.saturating_add(1);
            Duration::from_nanos(half + random % spread)
        } else {
            nominal
        };
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_backoff)),
            None => jittered,
        }
    }
}

/// Eight random bytes for jitter, from the system generator ring already
/// uses. Jitter needs no secrecy; if the generator fails, no jitter is a
/// fine fallback.
fn jitter_random() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::MAX,
    }
}

// ---------------------------------------------------------------------------
// Delivery results

/// What a delivery was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A `kind: webhook` target: the signed JSON event.
    Webhook,
    /// A `kind: slack` target: the Block Kit message on its incoming webhook.
    Slack,
    /// A Slack `response_url`: the message replaced after a decision.
    SlackResponse,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
            TargetKind::SlackResponse => "slack_response",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// The receiver answered with a status that retrying will not change
    /// (a 4xx other than 429, or a redirect, which is not followed).
    Refused { status: u16, answer: String },
    /// Every attempt failed transiently; `last_error` is the last one's
    /// reason (never containing the URL).
    GaveUp { last_error: String },
    /// Nothing could be sent at all (no runtime, an unserializable event).
    NotSent { reason: String },
}

/// The final word on one delivery to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub kind: TargetKind,
    /// The target's host (and port, when the URL names one): enough to tell
    /// targets apart in logs and metrics, without the path that holds a
    /// Slack webhook's secret.
    pub host: String,
    /// The hold the delivery was about, when known.
    pub hold_id: Option<String>,
    /// The `webhook-id` shared by every attempt, for webhook targets.
    pub webhook_id: Option<String>,
    /// Attempts made (0 when nothing was sent).
    pub attempts: u32,
    pub outcome: DeliveryOutcome,
}

impl DeliveryReport {
    pub fn delivered(&self) -> bool {
        matches!(self.outcome, DeliveryOutcome::Delivered { .. })
    }
}

/// Counters and recent reports of every delivery a [`Notifier`] made, for
/// `/metrics` and for tests. Cloning shares the same log.
#[derive(Clone, Default)]
pub struct DeliveryLog {
    inner: Arc<LogInner>,
}

#[derive(Default)]
struct LogInner {
    delivered: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
    recent: Mutex<VecDeque<DeliveryReport>>,
}

impl DeliveryLog {
    /// Deliveries that ended with a 2xx.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Deliveries that ended any other way.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// HTTP attempts made, retries included.
    pub fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// The most recent final reports, oldest first.
    pub fn recent(&self) -> Vec<DeliveryReport> {
        self.lock().iter().cloned().collect()
    }

    fn record(&self, report: &DeliveryReport) {
        let counter = if report.delivered() {
            &self.inner.delivered
        } else {
            &self.inner.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.lock();
        if recent.len() == RECENT_REPORTS {
            recent.pop_front();
        }
        recent.push_back(report.clone());
    }

    /// The list is only ever pushed to and copied, so a panic elsewhere while
    /// holding the lock cannot leave it half-updated: a poisoned lock is
    /// still good to use.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<DeliveryReport>> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for DeliveryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryLog")
            .field("delivered", &self.delivered())
            .field("failed", &self.failed())
            .field("attempts", &self.attempts())
            .finish()
    }
}

/// The deliveries of one event, running in the background.
///
/// Dropping it detaches, it does not cancel: delivery goes on either way.
/// The proxy drops it; tests and a graceful shutdown can wait for it.
pub struct Dispatch {
    handle: Option<JoinHandle<Vec<DeliveryReport>>>,
}

impl Dispatch {
    /// Waits until every target's delivery has ended, and returns their
    /// reports in the order of the `notify` list.
    pub async fn finished(self) -> Vec<DeliveryReport> {
        match self.handle {
            Some(handle) => handle.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Why a [`Notifier`] could not be built, or a message not sent.
///
/// Messages name the `notify` entry, the target's host and the environment
/// variable; never a secret's value, and never a full URL.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify[{index}] ({kind}): the url is not usable: {reason}")]
    InvalidUrl {
        index: usize,
        kind: TargetKind,
        reason: String,
    },
    #[error("notify[{index}] (webhook {host}): `secret_env` names {var}, which is not set or empty; set it, or drop `secret_env` to send unsigned events")]
    SecretMissing {
        index: usize,
        host: String,
        var: String,
    },
    #[error("notify[{index}] (webhook {host}): the secret in {var} is unusable: {source}")]
    SecretInvalid {
        index: usize,
        host: String,
        var: String,
        source: WebhookError,
    },
    #[error("cannot build the notification HTTP client: {0}")]
    Client(String),
    #[error("the admin base URL is not usable: {0}")]
    AdminUrl(String),
    #[error("the Slack response_url is not an https URL (plain http is allowed only to a loopback address)")]
    ResponseUrl,
}

// ---------------------------------------------------------------------------
// The notifier

/// One configured destination, ready to send to.
struct Target {
    kind: TargetKind,
    url: Url,
    host: String,
    /// Webhook targets only; `None` sends unsigned.
    secret: Option<WebhookSecret>,
}

impl fmt::Debug for Target {
    // By hand, because the URL may be a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// Sends hold notifications to every configured target.
///
/// Cheap to clone (the client, targets and log are shared), so the proxy and
/// the admin API can each hold one.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    targets: Vec<Target>,
    retry: RetryPolicy,
    log: DeliveryLog,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("targets", &self.inner.targets)
            .field("retry", &self.inner.retry)
            .field("log", &self.inner.log)
            .finish()
    }
}

impl Notifier {
    /// Prepares every target in `targets`, reading secrets through `env`
    /// (in production `|name| std::env::var(name).ok()`; tests pass a map,
    /// so they never touch the process environment).
    ///
    /// Fails, naming the entry and the variable, when a webhook's
    /// `secret_env` names a variable that is unset or empty, or whose value
    /// is not a usable secret: the operator asked for signed events, and
    /// quietly sending unsigned ones instead would look fine until someone
    /// forged one. A webhook without `secret_env` is sent unsigned, with a
    /// warning now rather than one per event.
    ///
    /// Installs the process's rustls crypto provider if none is (reqwest
    /// would otherwise panic building the client).
    pub fn new(
        targets: &[NotifyTarget],
        env: impl Fn(&str) -> Option<String>,
        retry: RetryPolicy,
    ) -> Result<Self, NotifyError> {
        crate::install_crypto_provider();
        let mut prepared = Vec::with_capacity(targets.len());
        for (index, target) in targets.iter().enumerate() {
            prepared.push(prepare(index, target, &env)?);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("leash/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(retry.attempt_timeout)
            .timeout(retry.attempt_timeout)
            .build()
            .map_err(|e| NotifyError::Client(e.without_url().to_string()))?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                client,
                targets: prepared,
                retry,
                log: DeliveryLog::default(),
            }),
        })
    }

    /// The counters and recent reports of this notifier's deliveries.
    pub fn deliveries(&self) -> &DeliveryLog {
        &self.inner.log
    }

    /// Whether any target is configured (nothing is spawned otherwise).
    pub fn is_empty(&self) -> bool {
        self.inner.targets.is_empty()
    }

    /// Tells every target about a new hold, concurrently, and returns at
    /// once: the deliveries run on the current tokio runtime. Webhook
    /// targets get `event` as signed JSON; Slack targets get
    /// [`slack::hold_message`] of `summary`.
    ///
    /// Called outside a tokio runtime, nothing is sent and each target is
    /// reported [`DeliveryOutcome::NotSent`] (logged, counted), rather than
    /// panicking in the proxy's path.
    pub fn notify_hold_created(&self, event: HoldEvent, summary: HoldSummary) -> Dispatch {
        if self.inner.targets.is_empty() {
            return Dispatch { handle: None };
        }
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime,
            Err(_) => {
                for target in &self.inner.targets {
                    let report = DeliveryReport {
                        kind: target.kind,
                        host: target.host.clone(),
                        hold_id: Some(event.hold_id.clone()),
                        webhook_id: None,
                        attempts: 0,
                        outcome: DeliveryOutcome::NotSent {
                            reason: "no async runtime to send from".into(),
                        },
                    };
                    finish(&self.inner.log, &report);
                }
                return Dispatch { handle: None };
            }
        };
        let inner = Arc::clone(&self.inner);
        let handle = runtime.spawn(async move { inner.dispatch(event, summary).await });
        Dispatch {
            handle: Some(handle),
        }
    }

    /// Replaces a Slack message after a decision: posts `message` (usually
    /// [`slack::resolved_message`]) to the `response_url` from the click,
    /// with the same retry policy as any delivery, and returns once it has
    /// ended.
    ///
    /// `response_url` must be https, since it is a credential for the
    /// message. Plain http is accepted only to a loopback IP address, where
    /// there is no network to read it on; that exists for tests, which run a
    /// plain-HTTP receiver on 127.0.0.1. Which host it points to is not
    /// checked otherwise: it comes from a payload whose Slack signature the
    /// caller has verified.
    pub async fn update_slack_message(
        &self,
        response_url: &str,
        message: Value,
    ) -> Result<DeliveryReport, NotifyError> {
        let url = Url::parse(response_url).map_err(|_| NotifyError::ResponseUrl)?;
        let allowed = match url.scheme() {
            "https" => url.host_str().is_some(),
            "http" => is_loopback(&url),
            _ => false,
        };
        if !allowed {
            return Err(NotifyError::ResponseUrl);
        }
        let target = Target {
            kind: TargetKind::SlackResponse,
            host: host_of(&url),
            url,
            secret: None,
        };
        let body = match serde_json::to_vec(&message) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                let report = not_sent(&target, None, None, format!("message: {e}"));
                finish(&self.inner.log, &report);
                return Ok(report);
            }
        };
        Ok(self.inner.deliver(&target, body, None, None).await)
    }
}

/// Turns one `notify` entry into a [`Target`], reading its secret.
fn prepare(
    index: usize,
    target: &NotifyTarget,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Target, NotifyError> {
    let (kind, url) = match target {
        NotifyTarget::Webhook { url, .. } => (TargetKind::Webhook, url),
        NotifyTarget::Slack { url, .. } => (TargetKind::Slack, url),
    };
    // url's parse errors describe the problem without echoing the input.
    let url = Url::parse(url).map_err(|e| NotifyError::InvalidUrl {
        index,
        kind,
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(NotifyError::InvalidUrl {
            index,
            kind,
            reason: "not an http:// or https:// URL with a host".into(),
        });
    }
    let host = host_of(&url);
    if url.scheme() == "http" && !is_loopback(&url) {
        tracing::warn!(
            target_kind = kind.as_str(),
            host = %host,
            "notify target uses plain http: hold details travel unencrypted"
        );
    }
    let secret = match target {
        NotifyTarget::Webhook {
            secret_env: Some(var),
            ..
        } => {
            let value =
                env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| NotifyError::SecretMissing {
                        index,
                        host: host.clone(),
                        var: var.clone(),
                    })?;
            let secret =
                WebhookSecret::parse(&value).map_err(|source| NotifyError::SecretInvalid {
                    index,
                    host: host.clone(),
                    var: var.clone(),
                    source,
                })?;
            Some(secret)
        }
        NotifyTarget::Webhook {
            secret_env: None, ..
        } => {
            tracing::warn!(
                host = %host,
                "webhook target has no secret_env: its events are sent unsigned, and receivers cannot tell them from forgeries"
            );
            None
        }
        NotifyTarget::Slack {
            signing_secret_env, ..
        } => {
            // Sending needs no secret (the URL is the credential), but the
            // buttons in what is sent only work if clicks can be verified.
            let usable = signing_secret_env
                .as_deref()
                .and_then(env)
                .is_some_and(|v| !v.trim().is_empty());
            if !usable {
                tracing::warn!(
                    host = %host,
                    variable = signing_secret_env.as_deref().unwrap_or(""),
                    "slack target has no signing secret: its Approve / Reject buttons will be refused; approvers must use the admin API"
                );
            }
            None
        }
    };
    Ok(Target {
        kind,
        url,
        host,
        secret,
    })
}

/// `host` or `host:port`, never the path, query or credentials.
fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Whether the URL's host is a loopback IP literal. Names such as
/// `localhost` do not count: resolving them is up to a resolver that may
/// answer with anything.
/// Whether `url`'s host is a loopback IP address (not a name: a name can
/// resolve anywhere).
pub(crate) fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn not_sent(
    target: &Target,
    hold_id: Option<&str>,
    webhook_id: Option<&str>,
    reason: String,
) -> DeliveryReport {
    DeliveryReport {
        kind: target.kind,
        host: target.host.clone(),
        hold_id: hold_id.map(str::to_string),
        webhook_id: webhook_id.map(str::to_string),
        attempts: 0,
        outcome: DeliveryOutcome::NotSent { reason },
    }
}

/// Records a final report and logs it: failures at `warn`, with kind and
/// host only.
fn finish(log: &DeliveryLog, report: &DeliveryReport) {
    log.record(report);
    let hold = report.hold_id.as_deref().unwrap_or("");
    match &report.outcome {
        DeliveryOutcome::Delivered { status } => tracing::debug!(
            target_kind = report.kind.as_str(),
            host = %report.host,
            hold_id = hold,
            attempts = report.attempts,
            status,
            "notification delivered"
        ),
        DeliveryOutcome::Refused { status, answer } => tracing::warn!(
            target_kind = report.kind.as_str(),
            host = %report.host,
            hold_id = hold,
            attempts = report.attempts,
            status,
            answer = %answer,
            "notification refused by the receiver; not retried"
        ),
        DeliveryOutcome::GaveUp { last_error } => tracing::warn!(
            target_kind = report.kind.as_str(),
            host = %report.host,
            hold_id = hold,
            attempts = report.attempts,
            error = %last_error,
            "notification failed after every attempt"
        ),
        DeliveryOutcome::NotSent { reason } => tracing::warn!(
            target_kind = report.kind.as_str(),
            host = %report.host,
            hold_id = hold,
            reason = %reason,
            "notification not sent"
        ),
    }
}

/// What one attempt came to.
enum Attempt {
    Done(StatusCode),
    Refused(StatusCode, String),
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Fatal(String),
}

impl Inner {
    /// Sends one event to every target concurrently; returns the reports in
    /// target order.
    async fn dispatch(
        self: Arc<Self>,
        event: HoldEvent,
        summary: HoldSummary,
    ) -> Vec<DeliveryReport> {
        let webhook_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let event_bytes = event_body(&event)
            .map(Bytes::from)
            .map_err(|e| e.to_string());
        let slack_bytes = serde_json::to_vec(&slack::hold_message(&summary))
            .map(Bytes::from)
            .map_err(|e| e.to_string());
        let hold_id = event.hold_id;

        let mut tasks = JoinSet::new();
        for index in 0..self.targets.len() {
            let inner = Arc::clone(&self);
            let (body, id) = match self.targets[index].kind {
                TargetKind::Webhook => (event_bytes.clone(), Some(webhook_id.clone())),
                _ => (slack_bytes.clone(), None),
            };
            let hold_id = hold_id.clone();
            tasks.spawn(async move {
                let target = &inner.targets[index];
                let report = match body {
                    Ok(body) => {
                        inner
                            .deliver(target, body, Some(&hold_id), id.as_deref())
                            .await
                    }
                    Err(e) => {
                        let report = not_sent(target, Some(&hold_id), id.as_deref(), e);
                        finish(&inner.log, &report);
                        report
                    }
                };
                (index, report)
            });
        }
        let mut reports: Vec<Option<DeliveryReport>> = vec![None; self.targets.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, report)) = joined {
                if let Some(slot) = reports.get_mut(index) {
                    *slot = Some(report);
                }
            }
        }
        reports.into_iter().flatten().collect()
    }

    /// One delivery with its retries. Records and logs the final report.
    async fn deliver(
        &self,
        target: &Target,
        body: Bytes,
        hold_id: Option<&str>,
        webhook_id: Option<&str>,
    ) -> DeliveryReport {
        let attempts = self.retry.attempts();
        let mut outcome = DeliveryOutcome::GaveUp {
            last_error: String::new(),
        };
        let mut made = 0;
        for attempt in 1..=attempts {
            made = attempt;
            self.log.inner.attempts.fetch_add(1, Ordering::Relaxed);
            let result = tokio::time::timeout(
                self.retry.attempt_timeout,
                self.attempt(target, body.clone(), webhook_id),
            )
            .await
            .unwrap_or_else(|_| Attempt::Retry {
                error: format!("no answer within {:?}", self.retry.attempt_timeout),
                retry_after: None,
            });
            match result {
                Attempt::Done(status) => {
                    outcome = DeliveryOutcome::Delivered {
                        status: status.as_u16(),
                    };
                    break;
                }
                Attempt::Refused(status, answer) => {
                    outcome = DeliveryOutcome::Refused {
                        status: status.as_u16(),
                        answer,
                    };
                    break;
                }
                Attempt::Fatal(reason) => {
                    outcome = DeliveryOutcome::NotSent { reason };
                    break;
                }
                Attempt::Retry { error, retry_after } => {
                    tracing::debug!(
                        target_kind = target.kind.as_str(),
                        host = %target.host,
                        attempt,
                        error = %error,
                        "notification attempt failed"
                    );
                    outcome = DeliveryOutcome::GaveUp { last_error: error };
                    if attempt < attempts {
                        let wait = self.retry.delay(attempt, retry_after, jitter_random());
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        let report = DeliveryReport {
            kind: target.kind,
            host: target.host.clone(),
            hold_id: hold_id.map(str::to_string),
            webhook_id: webhook_id.map(str::to_string),
            attempts: made,
            outcome,
        };
        finish(&self.log, &report);
        report
    }

    /// One HTTP attempt: builds the request (a webhook is signed now, with
    /// this attempt's timestamp), sends it, reads a bounded prefix of the
    /// answer, and classifies the result.
    async fn attempt(&self, target: &Target, body: Bytes, webhook_id: Option<&str>) -> Attempt {
        let mut request = self
            .client
            .post(target.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(id) = webhook_id {
            let timestamp = chrono::Utc::now().timestamp();
            match &target.secret {
                Some(secret) => {
                    for (name, value) in webhook::headers(secret, id, timestamp, &body) {
                        request = request.header(name, value);
                    }
                }
                None => {
                    request = request
                        .header(webhook::HEADER_ID, id)
                        .header(webhook::HEADER_TIMESTAMP, timestamp.to_string());
                }
            }
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Attempt::Fatal(describe(e, target)),
            Err(e) => {
                return Attempt::Retry {
                    error: describe(e, target),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        // Retry-After in its delta-seconds form (what Slack and most APIs
        // send), read with the same digits-only parser as the signed
        // timestamps; the HTTP-date form is ignored in favour of the backoff.
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(super::parse_unix_seconds)
            .and_then(|secs| u64::try_from(secs).ok())
            .map(Duration::from_secs);
        let answer = read_answer(response).await;
        if status.is_success() {
            Attempt::Done(status)
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry {
                error: format!("HTTP {} {answer}", status.as_u16())
                    .trim_end()
                    .to_string(),
                retry_after,
            }
        } else {
            Attempt::Refused(status, answer)
        }
    }
}

/// The first bytes of an answer body, as one printable line. A receiver's
/// answer is its own text and ends up in leash's logs, so it is bounded and
/// stripped of control characters (no forged log lines).
async fn read_answer(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(MAX_ANSWER_BYTES);
    let text: String = String::from_utf8_lossy(&buf)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    super::snippet(text.trim())
}

/// A transport error in words, without the URL (reqwest puts the full URL in
/// its messages, and a Slack webhook URL is a secret). The cause chain is
/// kept: "could not connect: tcp connect error: Connection refused" is what
/// an operator needs.
fn describe(error: reqwest::Error, target: &Target) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_builder() {
        "could not build the request"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut text = String::from(what);
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    // Belt and braces: should any layer below ever quote the URL, it still
    // does not reach a log.
    let full = target.url.as_str();
    let path = target.url.path();
    let mut text = text.replace(full, &target.host);
    if path.len() > 1 {
        text = text.replace(path, "/…");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(1),
            jitter: true,
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = policy();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(p.backoff(1)), 500);
        assert_eq!(ms(p.backoff(2)), 1000);
        assert_eq!(ms(p.backoff(3)), 2000);
        assert_eq!(ms(p.backoff(4)), 3000);
        assert_eq!(ms(p.backoff(40)), 3000);
        assert_eq!(ms(p.backoff(u32::MAX)), 3000);
        // Degenerate configuration: still a valid, finite schedule.
        let zero = RetryPolicy {
            max_attempts: 0,
            ..p
        };
        assert_eq!(zero.attempts(), 1);
    }

    #[test]
    fn jitter_stays_between_half_and_all_and_retry_after_is_capped() {
        let p = policy();
        for random in [0, 1, 7, 250_000_000, u64::MAX / 3, u64::MAX] {
            let d = p.delay(1, None, random);
            assert!(
                d >= Duration::from_millis(250) && d <= Duration::from_millis(500),
                "{d:?}"
            );
        }
        let fixed = RetryPolicy { jitter: false, ..p };
        assert_eq!(fixed.delay(2, None, 12345), Duration::from_secs(1));
        // A receiver asking for longer gets longer, up to the cap.
        assert_eq!(
            fixed.delay(1, Some(Duration::from_secs(2)), 0),
            Duration::from_secs(2)
        );
        assert_eq!(
            fixed.delay(1, Some(Duration::from_secs(3600)), 0),
            Duration::from_secs(3)
        );
        // Asking for shorter does not shorten the backoff.
        assert_eq!(
            fixed.delay(2, Some(Duration::from_millis(1)), 0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn callbacks_encode_the_hold_id_as_one_segment() {
        let base = AdminUrl::parse("http://127.0.0.1:8081").unwrap();
        let c = Callbacks::new(&base, "hold_abc");
        assert_eq!(c.approve, "http://127.0.0.1:8081/v1/holds/hold_abc/approve");
        assert_eq!(c.reject, "http://127.0.0.1:8081/v1/holds/hold_abc/reject");
        assert_eq!(c.hold, "http://127.0.0.1:8081/v1/holds/hold_abc");

        let prefixed = AdminUrl::parse("https://ops.example/leash/").unwrap();
        let c = Callbacks::new(&prefixed, "hold_abc");
        assert_eq!(
            c.approve,
            "https://ops.example/leash/v1/holds/hold_abc/approve"
        );

        let hostile = Callbacks::new(&base, "../../admin?x=1#y");
        assert_eq!(
            hostile.hold,
            "http://127.0.0.1:8081/v1/holds/..%2F..%2Fadmin%3Fx=1%23y"
        );

        let listen = AdminUrl::from_listen("0.0.0.0:8081".parse().unwrap()).unwrap();
        assert_eq!(listen.to_string(), "http://127.0.0.1:8081/");
        let v6 = AdminUrl::from_listen("[::]:9000".parse().unwrap()).unwrap();
        assert_eq!(v6.to_string(), "http://[::1]:9000/");

        for bad in [
            "ftp://x.example",
            "http://",
            "x.example",
            "https://a.example/?q=1",
            "https://user:pw@a.example",
        ] {
            assert!(AdminUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats_become_strings_integers_stay() {
        let mut v = serde_json::json!({
            "a": 1.5, "b": 10, "c": [-3, 2.25, {"d": 1e300}], "e": "7.5", "f": u64::MAX
        });
        floats_to_strings(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "a": "1.5", "b": 10, "c": [-3, "2.25", {"d": "1e+300"}], "e": "7.5", "f": u64::MAX
            })
        );
    }

    #[test]
    fn loopback_means_an_ip_literal() {
        let yes = [
            "http://127.0.0.1:1/x",
            "http://127.9.9.9/",
            "http://[::1]:80/",
        ];
        let no = [
            "http://localhost/",
            "http://10.0.0.1/",
            "http://hooks.slack.com/",
        ];
        for u in yes {
            assert!(is_loopback(&Url::parse(u).unwrap()), "{u}");
        }
        for u in no {
            assert!(!is_loopback(&Url::parse(u).unwrap()), "{u}");
        }
    }

    #[test]
    fn hosts_never_carry_the_path_or_credentials() {
        let url = Url::parse("https://u:p@hooks.slack.com/services/T0/B0/SECRET").unwrap();
        assert_eq!(host_of(&url), "hooks.slack.com");
        let url = Url::parse("http://127.0.0.1:9/services/T0/B0/SECRET").unwrap();
        assert_eq!(host_of(&url), "127.0.0.1:9");
    }
}
