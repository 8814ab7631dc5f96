//! The stand-in vendor: small in-memory vendors (Stripe, Wise, Fireblocks)
//! on loopback, over TLS with a test CA, that answer like the real APIs. A
//! first run of leash gets *answered* requests without a vendor account
//! (`examples/stand-in.rs`), and tests share one fixture instead of canned
//! bodies.
//!
//! Included with `#[path = "common/stand_in.rs"] mod stand_in;` next to
//! `mod common;` (from `examples/`: `#[path = "../tests/common/stand_in.rs"]`).
//!
//! It serves HTTP/1.1 and HTTP/2 (ALPN) and picks the vendor by the
//! request's `Host` (`:authority`), else the TLS SNI: each vendor is a
//! [`Vendor`] with its own hosts, so another API can be added beside
//! [`stripe::Stripe`] without touching the server. Played:
//!
//! - Stripe (`api.stripe.com`, below);
//! - a Berlin Group bank (`api.bank.example`, [`sepa::Bank`]: pain.001
//!   uploads and JSON payments);
//! - the Meta Marketing API (`graph.facebook.com`, [`meta::Meta`]: ad
//!   accounts, campaigns, ad sets, batches).
//! - EC2 (`ec2.us-east-1.amazonaws.com`, `ec2.amazonaws.com`: [`aws::Ec2`],
//!   answering XML).
//! - Wise (`api.wise.com`, `api.transferwise.com`, `api.wise-sandbox.com`:
//!   [`wise::Wise`]) and Fireblocks (`api.fireblocks.io`,
//!   `sandbox-api.fireblocks.io`: [`fireblocks::Fireblocks`]).
//! - Google Ads (`googleads.googleapis.com`, gRPC and REST:
//!   [`google_ads::GoogleAds`], whose answers may carry trailers).
//!
//! What the Stripe stand-in does (one account, test mode, in memory):
//!
//! - any `sk_test_…` / `rk_test_…` key, as `Authorization: Bearer` or HTTP
//!   Basic (curl's `-u sk_test_…:`); none or another → Stripe's 401;
//! - form bodies (and the query string, the body winning) parsed like
//!   Stripe's Rack: a repeated key keeps its last value;
//! - creates and stores customers, products, prices, PaymentIntents
//!   (confirm, capture, cancel), charges (and capture), refunds (of a
//!   charge or a PaymentIntent's latest charge, never more than remains),
//!   transfers, payouts, and pays invoices;
//! - `GET /v1/{collection}/{id}` and `GET /v1/{collection}` (a list);
//! - `Idempotency-Key`: the same key with the same parameters replays the
//!   saved answer (`Idempotent-Replayed: true`); other parameters → 400
//!   `idempotency_error`;
//! - errors in Stripe's shape (`{"error":{"type","code","message","param"}}`),
//!   404 `Unrecognized request URL` for any other path.
//!
//! Seeded: `cus_demo`, `prod_demo`, `ch_demo` (EUR 200.00, captured),
//! `pi_demo` (EUR 120.00, requires_confirmation), `price_demo` (EUR 15.00),
//! `in_demo` (EUR 80.00, open). Money is integers of minor units, as Stripe
//! writes it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::common::{Seen, TestCa};

/// Largest request body read; beyond it the answer is 413.
const MAX_BODY: usize = 1 << 20;

/// A request as a [`Vendor`] sees it.
pub struct Call<'a> {
    pub method: &'a Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The raw query string, without `?` (empty when there is none).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A vendor's answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub body: Bytes,
    /// Sent after the body (gRPC's `grpc-status`); `None`: no trailers.
    pub trailers: Option<Box<HeaderMap>>,
}

impl Reply {
    /// A JSON answer, pretty-printed as Stripe prints it.
    pub fn json(status: u16, body: &Value) -> Self {
        let mut text = serde_json::to_vec_pretty(&IdFirst(body)).unwrap_or_default();
        text.push(b'\n');
        Self {
            status,
            headers: vec![("content-type", HeaderValue::from_static("application/json"))],
            body: Bytes::from(text),
            trailers: None,
        }
    }
}

/// A JSON value written with `id` and `object` first in each object, as
/// Stripe writes them (serde_json's map is sorted otherwise).
struct IdFirst<'v>(&'v Value);

impl serde::Serialize for IdFirst<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                let first = ["id", "object"];
                for key in first {
                    if let Some(value) = map.get(key) {
                        out.serialize_entry(key, &IdFirst(value))?;
                    }
                }
                for (key, value) in map.iter().filter(|(k, _)| !first.contains(&k.as_str())) {
                    out.serialize_entry(key, &IdFirst(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&IdFirst(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// One vendor the stand-in plays: the host names it answers, and how.
pub trait Vendor: Send + Sync {
    /// The host names (lower case) whose requests this vendor answers; the
    /// stand-in's certificate names all of them.
    fn hosts(&self) -> &'static [&'static str];
    /// Answers one request. Never panics on what the request holds.
    fn answer(&self, call: &Call<'_>) -> Reply;
    /// A stored object by id, as `GET` would show it.
    fn object(&self, id: &str) -> Option<Value>;
}

/// What the stand-in answered: one per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub method: String,
    pub host: String,
    /// The path, without the query.
    pub path: String,
    pub status: u16,
}

/// Called once per answered request (the example prints a line).
pub type OnAnswer = Arc<dyn Fn(&Answered) + Send + Sync>;

/// A running stand-in; stops accepting connections when dropped.
pub struct StandIn {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    answered: Arc<Mutex<Vec<Answered>>>,
    vendors: Arc<Vec<Box<dyn Vendor>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl StandIn {
    /// Starts on 127.0.0.1 (a free port), with a certificate from `ca`.
    pub async fn start(ca: &TestCa) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), ca).await
    }

    /// Starts on exactly `addr`.
    pub async fn start_at(addr: SocketAddr, ca: &TestCa) -> Self {
        Self::start_with(addr, ca, None).await
    }

    /// Starts on `addr`, calling `on_answer` after each answer.
    pub async fn start_with(addr: SocketAddr, ca: &TestCa, on_answer: Option<OnAnswer>) -> Self {
        leash::install_crypto_provider();
        let vendors: Arc<Vec<Box<dyn Vendor>>> = Arc::new(vec![
            Box::new(stripe::Stripe::new()),
            Box::new(sepa::Bank::new()),
            Box::new(meta::Meta::new()),
            Box::new(aws::Ec2::new()),
            Box::new(wise::Wise::new()),
            Box::new(fireblocks::Fireblocks::new()),
            Box::new(google_ads::GoogleAds::new()),
        ]);
        let names: Vec<&str> = vendors
            .iter()
            .flat_map(|v| v.hosts().iter().copied())
            .collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config(&names)));
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
        let shared = Shared {
            vendors: Arc::clone(&vendors),
            seen: Arc::clone(&seen),
            answered: Arc::clone(&answered),
            on_answer,
        };
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let sni = tls.get_ref().1.server_name().map(str::to_ascii_lowercase);
                    let service = service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        let sni = sni.clone();
                        async move { Ok::<_, Infallible>(shared.serve(req, sni.as_deref()).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            answered,
            vendors,
            accept,
        }
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }

    /// What was answered so far, in order.
    pub fn answered(&self) -> Vec<Answered> {
        lock(&self.answered).clone()
    }

    /// A stored object (`cus_demo`, a PaymentIntent a test created), as a
    /// `GET` would show it now.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.vendors.iter().find_map(|v| v.object(id))
    }

    /// The host names the stand-in answers (and its certificate names).
    pub fn hosts(&self) -> Vec<&'static str> {
        self.vendors
            .iter()
            .flat_map(|v| v.hosts().iter().copied())
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
struct Shared {
    vendors: Arc<Vec<Box<dyn Vendor>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    answered: Arc<Mutex<Vec<Answered>>>,
    on_answer: Option<OnAnswer>,
}

impl Shared {
    async fn serve(&self, req: Request<Incoming>, sni: Option<&str>) -> Response<ReplyBody> {
        let (parts, body) = req.into_parts();
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let (body, too_large) = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => (collected.to_bytes(), false),
            Err(error) => (Bytes::new(), error.is::<http_body_util::LengthLimitError>()),
        };
        let path = parts.uri.path().to_string();
        lock(&self.seen).push(Seen {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_else(|| path.clone()),
            version: parts.version,
            host: host.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        let name = host_name(&host);
        let vendor = self
            .vendors
            .iter()
            .find(|v| v.hosts().contains(&name.as_str()))
            .or_else(|| {
                let sni = sni?;
                self.vendors.iter().find(|v| v.hosts().contains(&sni))
            });
        let reply = if too_large {
            Reply::json(
                413,
                &json!({"error": {
                    "type": "invalid_request_error",
                    "message": format!("Request body too large: the stand-in reads at most {MAX_BODY} bytes."),
                }}),
            )
        } else {
            match vendor {
                Some(vendor) => vendor.answer(&Call {
                    method: &parts.method,
                    path: &path,
                    query: parts.uri.query().unwrap_or(""),
                    headers: &parts.headers,
                    body: &body,
                }),
                None => Reply::json(
                    421,
                    &json!({"error": {
                        "type": "invalid_request_error",
                        "message": format!(
                            "The stand-in does not serve host {:?}: it serves {}. Send the vendor's host name (curl: --resolve api.stripe.com:PORT:127.0.0.1).",
                            host,
                            self.vendors.iter().flat_map(|v| v.hosts().iter().copied()).collect::<Vec<_>>().join(", ")
                        ),
                    }}),
                ),
            }
        };
        let answered = Answered {
            method: parts.method.to_string(),
            host: name,
            path,
            status: reply.status,
        };
        if let Some(on_answer) = &self.on_answer {
            on_answer(&answered);
        }
        lock(&self.answered).push(answered);
        let body = Full::new(reply.body);
        let body: ReplyBody = match reply.trailers {
            None => body.boxed(),
            Some(trailers) => body
                .with_trailers(std::future::ready(Some(Ok(*trailers))))
                .boxed(),
        };
        let mut response = Response::new(body);
        *response.status_mut() =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in reply.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// A reply's body, with its trailers if it has any.
type ReplyBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// `host[:port]` → the host name in lower case.
fn host_name(host: &str) -> String {
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    };
    name.to_ascii_lowercase()
}

/// Seconds since the Unix epoch, as Stripe's `created`.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// graph.facebook.com: see its module docs.
#[path = "stand_in/meta.rs"]
pub mod meta;

/// `prefix_` and 24 random characters, like Stripe's ids.
fn new_id(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &random[..24])
}

#[path = "stand_in/aws.rs"]
pub mod aws;
#[path = "stand_in/sepa.rs"]
pub mod sepa;
#[path = "stand_in/wise.rs"]
pub mod wise;

#[path = "stand_in/fireblocks.rs"]
pub mod fireblocks;
#[path = "stand_in/google_ads.rs"]
pub mod google_ads;

pub mod stripe {
    //! The Stripe stand-in: `api.stripe.com`.

    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};
    use serde_json::{json, Map, Value};

    use super::{lock, new_id, now, Call, Reply, Vendor};

    pub const HOSTS: &[&str] = &["api.stripe.com"];

    /// The API version answered when the request names none.
    const DEFAULT_VERSION: &str = "2026-06-24.dahlia";

    /// Stripe's largest amount for a payment (eight digits).
    const MAX_PAYMENT: u64 = 99_999_999;

    /// Collections served by `GET /v1/{collection}[/{id}]`: the object kind
    /// each holds, and how Stripe names it in "No such …".
    const COLLECTIONS: &[(&str, &str, &str)] = &[
        ("customers", "customer", "customer"),
        ("products", "product", "product"),
        ("prices", "price", "price"),
        ("payment_intents", "payment_intent", "PaymentIntent"),
        ("charges", "charge", "charge"),
        ("refunds", "refund", "refund"),
        ("transfers", "transfer", "transfer"),
        ("payouts", "payout", "payout"),
        ("invoices", "invoice", "invoice"),
    ];

    /// Test payment methods and card tokens that are declined.
    const DECLINED: &[&str] = &[
        "pm_card_chargeDeclined",
        "pm_card_visa_chargeDeclined",
        "tok_chargeDeclined",
    ];

    /// The in-memory Stripe account.
    pub struct Stripe {
        state: Mutex<State>,
    }

    impl Default for Stripe {
        fn default() -> Self {
            Self::new()
        }
    }

    struct State {
        objects: BTreeMap<String, Value>,
        /// Ids in creation order, for lists.
        order: Vec<String>,
        /// (Stripe-Account, Idempotency-Key) → what the first request was
        /// and what it got.
        idempotency: HashMap<(String, String), Saved>,
    }

    struct Saved {
        /// Method, path and the sorted parameters.
        request: String,
        status: u16,
        body: Bytes,
        request_id: String,
    }

    /// A Stripe error answer: status and `{"error": {...}}`.
    struct Failure {
        status: u16,
        error: Map<String, Value>,
    }

    type Result<T> = std::result::Result<T, Failure>;

    impl Failure {
        fn new(status: u16, kind: &str, message: impl Into<String>) -> Self {
            let mut error = Map::new();
            error.insert("type".into(), kind.into());
            error.insert("message".into(), message.into().into());
            Self { status, error }
        }

        /// 400 `invalid_request_error`.
        fn invalid(message: impl Into<String>) -> Self {
            Self::new(400, "invalid_request_error", message)
        }

        fn code(mut self, code: &str) -> Self {
            self.error.insert("code".into(), code.into());
            self.error.insert(
                "doc_url".into(),
                format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )
                .into(),
            );
            self
        }

        fn param(mut self, param: &str) -> Self {
            self.error.insert("param".into(), param.into());
            self
        }

        fn with(mut self, key: &str, value: Value) -> Self {
            self.error.insert(key.into(), value);
            self
        }

        fn missing(param: &str) -> Self {
            Self::invalid(format!("Missing required param: {param}."))
                .code("parameter_missing")
                .param(param)
        }

        /// "No such customer: 'cus_x'".
        fn no_such(status: u16, named: &str, id: &str, param: &str) -> Self {
            Self::new(
                status,
                "invalid_request_error",
                format!("No such {named}: '{id}'"),
            )
            .code("resource_missing")
            .param(param)
        }

        fn unrecognized(method: &Method, path: &str) -> Self {
            Self::new(
                404,
                "invalid_request_error",
                format!(
                    "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
                ),
            )
        }

        fn unexpected_state(message: String, pi: &Value) -> Self {
            Self::invalid(message)
                .code("payment_intent_unexpected_state")
                .with("payment_intent", pi.clone())
        }

        fn body(&self) -> Value {
            json!({ "error": self.error })
        }
    }

    /// The request's parameters: query, then form body (the body wins), a
    /// repeated key keeping its last value, as Rack reads them.
    struct Params {
        values: BTreeMap<String, String>,
    }

    impl Params {
        fn parse(query: &str, body: &[u8]) -> Self {
            let mut values = BTreeMap::new();
            for source in [query.as_bytes(), body] {
                for (k, v) in form_urlencoded::parse(source) {
                    values.insert(k.into_owned(), v.into_owned());
                }
            }
            Self { values }
        }

        /// The parameters as one canonical line, for idempotency.
        fn canonical(&self) -> String {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(self.values.iter())
                .finish()
        }

        fn string(&self, key: &str) -> Option<&str> {
            self.values
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        }

        fn required(&self, key: &str) -> Result<&str> {
            self.string(key).ok_or_else(|| Failure::missing(key))
        }

        fn integer(&self, key: &str) -> Result<Option<u64>> {
            let Some(text) = self.string(key) else {
                return Ok(None);
            };
            let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse::<u64>().ok()
            } else {
                None
            };
            match parsed {
                Some(n) => Ok(Some(n)),
                None => Err(Failure::invalid(format!("Invalid integer: {text}"))
                    .code("parameter_invalid_integer")
                    .param(key)),
            }
        }

        /// An amount: a positive integer of minor units.
        fn amount(&self, key: &str) -> Result<Option<u64>> {
            match self.integer(key)? {
                Some(0) => Err(
                    Failure::invalid("This value must be greater than or equal to 1.")
                        .code("parameter_invalid_integer")
                        .param(key),
                ),
                other => Ok(other),
            }
        }

        fn required_amount(&self, key: &str) -> Result<u64> {
            self.amount(key)?.ok_or_else(|| Failure::missing(key))
        }

        fn boolean(&self, key: &str) -> Result<Option<bool>> {
            match self.string(key) {
                None => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(other) => {
                    Err(Failure::invalid(format!("Invalid boolean: {other}")).param(key))
                }
            }
        }

        /// A value from `allowed`, if given.
        fn choice(&self, key: &str, allowed: &[&str]) -> Result<Option<String>> {
            match self.string(key) {
                None => Ok(None),
                Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
                Some(v) => Err(Failure::invalid(format!(
                    "Invalid {key}: must be one of {} (got {v:?})",
                    allowed.join(", ")
                ))
                .param(key)),
            }
        }

        /// `currency`: three letters, kept in lower case as Stripe answers.
        fn currency(&self, key: &str) -> Result<String> {
            let text = self.required(key)?;
            if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(text.to_ascii_lowercase())
            } else {
                Err(Failure::invalid(format!(
                    "Invalid currency: {}. Stripe currently supports three-letter ISO currency codes, such as eur or usd.",
                    text.to_ascii_lowercase()
                ))
                .param(key))
            }
        }

        /// `prefix[name]=value` pairs as a JSON object (`metadata[order]`).
        fn object(&self, prefix: &str) -> Map<String, Value> {
            let open = format!("{prefix}[");
            self.values
                .iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix(&open)?.strip_suffix(']')?;
                    (!name.is_empty() && !name.contains(['[', ']']))
                        .then(|| (name.to_string(), Value::String(v.clone())))
                })
                .collect()
        }

        fn opt(&self, key: &str) -> Value {
            self.string(key).map_or(Value::Null, |s| s.into())
        }
    }

    /// Stripe's exponent for `currency` (see `src/adapters/stripe/mod.rs`).
    fn exponent(currency: &str) -> u32 {
        const ZERO: &[&str] = &[
            "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv",
            "xaf", "xof", "xpf",
        ];
        const THREE: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
        if ZERO.contains(&currency) {
            0
        } else if THREE.contains(&currency) {
            3
        } else {
            2
        }
    }

    /// `20000`, `eur` → `200.00 EUR`, for messages.
    fn shown(amount: u64, currency: &str) -> String {
        let exp = exponent(currency);
        let code = currency.to_ascii_uppercase();
        if exp == 0 {
            return format!("{amount} {code}");
        }
        let scale = 10u64.pow(exp);
        format!(
            "{}.{:0width$} {code}",
            amount / scale,
            amount % scale,
            width = exp as usize
        )
    }

    fn int(object: &Value, key: &str) -> u64 {
        object.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    fn text<'v>(object: &'v Value, key: &str) -> &'v str {
        object.get(key).and_then(Value::as_str).unwrap_or("")
    }

    impl Stripe {
        /// An account with the quickstart's objects.
        pub fn new() -> Self {
            let mut state = State {
                objects: BTreeMap::new(),
                order: Vec::new(),
                idempotency: HashMap::new(),
            };
            let created = now();
            state.insert(json!({
                "id": "cus_demo",
                "object": "customer",
                "address": null,
                "balance": 0,
                "created": created,
                "currency": "eur",
                "description": "The stand-in's demo customer",
                "email": "demo@example.com",
                "livemode": false,
                "metadata": {},
                "name": "Demo Customer",
                "phone": null,
            }));
            state.insert(json!({
                "id": "prod_demo",
                "object": "product",
                "active": true,
                "created": created,
                "description": null,
                "livemode": false,
                "metadata": {},
                "name": "Demo plan",
                "updated": created,
            }));
            state.insert(json!({
                "id": "price_demo",
                "object": "price",
                "active": true,
                "billing_scheme": "per_unit",
                "created": created,
                "currency": "eur",
                "livemode": false,
                "lookup_key": null,
                "metadata": {},
                "nickname": null,
                "product": "prod_demo",
                "recurring": null,
                "tax_behavior": "unspecified",
                "type": "one_time",
                "unit_amount": 1500,
                "unit_amount_decimal": "1500",
            }));
            state.insert(json!({
                "id": "ch_demo",
                "object": "charge",
                "amount": 20000,
                "amount_captured": 20000,
                "amount_refunded": 0,
                "balance_transaction": null,
                "captured": true,
                "created": created,
                "currency": "eur",
                "customer": "cus_demo",
                "description": "The stand-in's demo charge",
                "failure_code": null,
                "failure_message": null,
                "invoice": null,
                "livemode": false,
                "metadata": {},
                "paid": true,
                "payment_intent": null,
                "payment_method": "pm_card_visa",
                "refunded": false,
                "status": "succeeded",
            }));
            state.insert(json!({
                "id": "pi_demo",
                "object": "payment_intent",
                "amount": 12000,
                "amount_capturable": 0,
                "amount_received": 0,
                "canceled_at": null,
                "cancellation_reason": null,
                "capture_method": "automatic",
                "client_secret": "pi_demo_secret_standin",
                "confirmation_method": "automatic",
                "created": created,
                "currency": "eur",
                "customer": "cus_demo",
                "description": "The stand-in's demo PaymentIntent",
                "last_payment_error": null,
                "latest_charge": null,
                "livemode": false,
                "metadata": {},
                "on_behalf_of": null,
                "payment_method": "pm_card_visa",
                "payment_method_types": ["card"],
                "status": "requires_confirmation",
                "transfer_data": null,
            }));
            state.insert(json!({
                "id": "in_demo",
                "object": "invoice",
                "amount_due": 8000,
                "amount_paid": 0,
                "amount_remaining": 8000,
                "attempt_count": 0,
                "attempted": false,
                "charge": null,
                "collection_method": "charge_automatically",
                "created": created,
                "currency": "eur",
                "customer": "cus_demo",
                "description": "The stand-in's demo invoice",
                "livemode": false,
                "metadata": {},
                "paid": false,
                "paid_out_of_band": false,
                "status": "open",
                "subtotal": 8000,
                "total": 8000,
            }));
            Self {
                state: Mutex::new(state),
            }
        }
    }

    impl Vendor for Stripe {
        fn hosts(&self) -> &'static [&'static str] {
            HOSTS
        }

        fn object(&self, id: &str) -> Option<Value> {
            lock(&self.state).objects.get(id).cloned()
        }

        fn answer(&self, call: &Call<'_>) -> Reply {
            let request_id = format!("req_{}", &new_id("x")[2..16]);
            let version = call
                .headers
                .get("stripe-version")
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_VERSION));
            let idempotency_key = if call.method == Method::POST {
                call.headers.get("idempotency-key").cloned()
            } else {
                None
            };
            let mut reply = self.answer_inner(call, idempotency_key.as_ref(), &request_id);
            if let Ok(id) = HeaderValue::from_str(&request_id) {
                reply.headers.push(("request-id", id));
            }
            reply.headers.push(("stripe-version", version));
            if let Some(key) = idempotency_key {
                reply.headers.push(("idempotency-key", key));
            }
            reply
        }
    }

    impl Stripe {
        fn answer_inner(
            &self,
            call: &Call<'_>,
            idempotency_key: Option<&HeaderValue>,
            request_id: &str,
        ) -> Reply {
            if let Err(failure) = authenticate(call.headers) {
                let mut reply = Reply::json(failure.status, &failure.body());
                reply.headers.push((
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"Stripe\""),
                ));
                return reply;
            }
            if let Err(failure) = content_type(call) {
                return Reply::json(failure.status, &failure.body());
            }
            let params = Params::parse(call.query, call.body);
            let mut state = lock(&self.state);
            let Some(key) = idempotency_key else {
                return match state.route(call.method, call.path, &params) {
                    Ok(object) => Reply::json(200, &object),
                    Err(failure) => Reply::json(failure.status, &failure.body()),
                };
            };
            let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
            if key.len() > 255 {
                let failure =
                    Failure::invalid("Idempotency keys can be at most 255 characters long.");
                return Reply::json(failure.status, &failure.body());
            }
            let account = call
                .headers
                .get("stripe-account")
                .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
                .unwrap_or_default();
            let request = format!("{} {} {}", call.method, call.path, params.canonical());
            let slot = (account, key);
            if let Some(saved) = state.idempotency.get(&slot) {
                if saved.request != request {
                    let failure = Failure::new(
                        400,
                        "idempotency_error",
                        format!(
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{}' if you meant to execute a different request.",
                            slot.1
                        ),
                    );
                    return Reply::json(failure.status, &failure.body());
                }
                let mut reply = Reply {
                    status: saved.status,
                    headers: vec![("content-type", HeaderValue::from_static("application/json"))],
                    body: saved.body.clone(),
                    trailers: None,
                };
                reply
                    .headers
                    .push(("idempotent-replayed", HeaderValue::from_static("true")));
                if let Ok(original) = HeaderValue::from_str(&saved.request_id) {
                    reply.headers.push(("original-request", original));
                }
                return reply;
            }
            let reply = match state.route(call.method, call.path, &params) {
                Ok(object) => Reply::json(200, &object),
                Err(failure) => Reply::json(failure.status, &failure.body()),
            };
            // Stripe saves the result once the endpoint ran, success or
            // failure; a request refused by validation is not saved.
            if reply.status == 200 || reply.status == 402 || reply.status >= 500 {
                state.idempotency.insert(
                    slot,
                    Saved {
                        request,
                        status: reply.status,
                        body: reply.body.clone(),
                        request_id: request_id.to_string(),
                    },
                );
            }
            reply
        }
    }

    /// Any test-mode key, as Bearer or Basic (`-u sk_test_…:`).
    fn authenticate(headers: &HeaderMap) -> Result<()> {
        let none = || {
            Failure::new(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
        };
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(none());
        };
        let value = String::from_utf8_lossy(value.as_bytes());
        let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((&value, ""));
        let key = if scheme.eq_ignore_ascii_case("bearer") {
            credentials.trim().to_string()
        } else if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .unwrap_or_default();
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            decoded.split(':').next().unwrap_or("").to_string()
        } else {
            return Err(none());
        };
        if key.is_empty() {
            return Err(none());
        }
        let test_key = ["sk_test_", "rk_test_"]
            .iter()
            .any(|p| key.len() > p.len() && key.starts_with(p));
        if test_key {
            return Ok(());
        }
        Err(Failure::new(
            401,
            "invalid_request_error",
            format!(
                "Invalid API Key provided: {}. The stand-in takes any test-mode key (sk_test_…).",
                masked(&key)
            ),
        ))
    }

    /// `sk_test_********************1234`, as Stripe shows a key.
    fn masked(key: &str) -> String {
        let chars: Vec<char> = key.chars().collect();
        if chars.len() < 16 {
            return "*".repeat(chars.len());
        }
        let head: String = chars[..8].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
    }

    /// Stripe's v1 reads form bodies only.
    fn content_type(call: &Call<'_>) -> Result<()> {
        if let Some(encoding) = call.headers.get(http::header::CONTENT_ENCODING) {
            let encoding = String::from_utf8_lossy(encoding.as_bytes());
            if !encoding.trim().eq_ignore_ascii_case("identity") {
                return Err(Failure::invalid(format!(
                    "Invalid request: unsupported Content-Encoding {encoding}."
                )));
            }
        }
        if call.body.is_empty() {
            return Ok(());
        }
        let content_type = call
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(())
        } else {
            Err(Failure::invalid(format!(
                "Invalid request: unsupported Content-Type {content_type}. If error persists and you need assistance, please contact support@stripe.com."
            )))
        }
    }

    impl State {
        fn insert(&mut self, object: Value) -> Value {
            let id = text(&object, "id").to_string();
            if !self.objects.contains_key(&id) {
                self.order.push(id.clone());
            }
            self.objects.insert(id, object.clone());
            object
        }

        /// The stored `kind` with this id (`param` names it in the error).
        fn get(&self, kind: &str, id: &str, status: u16, param: &str) -> Result<Value> {
            let named = COLLECTIONS
                .iter()
                .find(|c| c.1 == kind)
                .map_or(kind, |c| c.2);
            self.objects
                .get(id)
                .filter(|o| text(o, "object") == kind)
                .cloned()
                .ok_or_else(|| Failure::no_such(status, named, id, param))
        }

        /// A `customer` parameter must name a customer.
        fn customer(&self, params: &Params) -> Result<Value> {
            match params.string("customer") {
                None => Ok(Value::Null),
                Some(id) => self
                    .get("customer", id, 400, "customer")
                    .map(|_| Value::String(id.to_string())),
            }
        }

        fn route(&mut self, method: &Method, path: &str, params: &Params) -> Result<Value> {
            let segments: Vec<&str> = path.split('/').skip(1).collect();
            let segs = segments.as_slice();
            if *method == Method::GET {
                return match *segs {
                    ["v1", collection] => self.list(method, path, collection, params),
                    ["v1", collection, id] => {
                        let Some((_, kind, _)) =
                            COLLECTIONS.iter().find(|(c, _, _)| *c == collection)
                        else {
                            return Err(Failure::unrecognized(method, path));
                        };
                        self.get(kind, id, 404, "id")
                    }
                    _ => Err(Failure::unrecognized(method, path)),
                };
            }
            if *method != Method::POST {
                return Err(Failure::unrecognized(method, path));
            }
            match *segs {
                ["v1", "customers"] => self.create_customer(params),
                ["v1", "products"] => self.create_product(params),
                ["v1", "prices"] => self.create_price(params),
                ["v1", "payment_intents"] => self.create_payment_intent(params),
                ["v1", "payment_intents", id, "confirm"] => self.confirm(id, params),
                ["v1", "payment_intents", id, "capture"] => self.capture(id, params),
                ["v1", "payment_intents", id, "cancel"] => self.cancel(id, params),
                ["v1", "charges"] => self.create_charge(params),
                ["v1", "charges", id, "capture"] => self.capture_charge(id, params),
                ["v1", "refunds"] => self.create_refund(params),
                ["v1", "transfers"] => self.create_transfer(params),
                ["v1", "payouts"] => self.create_payout(params),
                ["v1", "invoices", id, "pay"] => self.pay_invoice(id, params),
                _ => Err(Failure::unrecognized(method, path)),
            }
        }

        /// `GET /v1/{collection}`: newest first, `limit` (1–100, default 10).
        fn list(
            &self,
            method: &Method,
            path: &str,
            collection: &str,
            params: &Params,
        ) -> Result<Value> {
            let Some((_, kind, _)) = COLLECTIONS.iter().find(|(c, _, _)| *c == collection) else {
                return Err(Failure::unrecognized(method, path));
            };
            let limit = params.integer("limit")?.unwrap_or(10);
            if !(1..=100).contains(&limit) {
                return Err(Failure::invalid(
                    "This value must be greater than or equal to 1 and less than or equal to 100.",
                )
                .code("parameter_invalid_integer")
                .param("limit"));
            }
            let all: Vec<&Value> = self
                .order
                .iter()
                .rev()
                .filter_map(|id| self.objects.get(id))
                .filter(|o| text(o, "object") == *kind)
                .collect();
            let data: Vec<Value> = all
                .iter()
                .take(limit as usize)
                .map(|o| (*o).clone())
                .collect();
            Ok(json!({
                "object": "list",
                "data": data,
                "has_more": all.len() > data.len(),
                "url": path,
            }))
        }

        fn create_customer(&mut self, params: &Params) -> Result<Value> {
            Ok(self.insert(json!({
                "id": new_id("cus"),
                "object": "customer",
                "address": null,
                "balance": 0,
                "created": now(),
                "currency": null,
                "description": params.opt("description"),
                "email": params.opt("email"),
                "livemode": false,
                "metadata": params.object("metadata"),
                "name": params.opt("name"),
                "phone": params.opt("phone"),
            })))
        }

        fn create_product(&mut self, params: &Params) -> Result<Value> {
            let name = params.required("name")?;
            Ok(self.insert(product(
                name,
                params.opt("description"),
                params.object("metadata"),
            )))
        }

        fn create_price(&mut self, params: &Params) -> Result<Value> {
            let currency = params.currency("currency")?;
            let (unit_amount, decimal) = match params.integer("unit_amount")? {
                Some(n) => (Value::from(n), n.to_string()),
                None => match params.string("unit_amount_decimal") {
                    Some(d) if is_decimal(d) => (Value::Null, d.to_string()),
                    Some(d) => {
                        return Err(Failure::invalid(format!("Invalid decimal: {d}"))
                            .param("unit_amount_decimal"))
                    }
                    None => return Err(Failure::missing("unit_amount")),
                },
            };
            let product_id = match (
                params.string("product"),
                params.string("product_data[name]"),
            ) {
                (Some(id), _) => self.get("product", id, 400, "product")?["id"].clone(),
                (None, Some(name)) => {
                    let made = self.insert(product(name, Value::Null, Map::new()));
                    made["id"].clone()
                }
                (None, None) => return Err(Failure::invalid(
                    "You must specify either `product` or `product_data` when creating a price.",
                )
                .param("product")),
            };
            let recurring =
                match params.choice("recurring[interval]", &["day", "week", "month", "year"])? {
                    Some(interval) => json!({
                        "interval": interval,
                        "interval_count": params.integer("recurring[interval_count]")?.unwrap_or(1),
                        "usage_type": "licensed",
                    }),
                    None => Value::Null,
                };
            Ok(self.insert(json!({
                "id": new_id("price"),
                "object": "price",
                "active": params.boolean("active")?.unwrap_or(true),
                "billing_scheme": "per_unit",
                "created": now(),
                "currency": currency,
                "livemode": false,
                "lookup_key": params.opt("lookup_key"),
                "metadata": params.object("metadata"),
                "nickname": params.opt("nickname"),
                "product": product_id,
                "type": if recurring.is_null() { "one_time" } else { "recurring" },
                "recurring": recurring,
                "tax_behavior": "unspecified",
                "unit_amount": unit_amount,
                "unit_amount_decimal": decimal,
            })))
        }

        /// `amount` + `currency` of a payment, within Stripe's bounds.
        fn payment_amount(params: &Params) -> Result<(u64, String)> {
            let amount = params.required_amount("amount")?;
            let currency = params.currency("currency")?;
            // Stripe's minimum for a two-decimal currency is 0.50.
            if exponent(&currency) == 2 && amount < 50 {
                return Err(Failure::invalid(format!(
                    "Amount must be at least {}",
                    shown(50, &currency)
                ))
                .code("amount_too_small")
                .param("amount"));
            }
            if amount > MAX_PAYMENT {
                return Err(Failure::invalid(format!(
                    "Amount must be no more than {}",
                    shown(MAX_PAYMENT, &currency)
                ))
                .code("amount_too_large")
                .param("amount"));
            }
            Ok((amount, currency))
        }

        fn create_payment_intent(&mut self, params: &Params) -> Result<Value> {
            let (amount, currency) = Self::payment_amount(params)?;
            let customer = self.customer(params)?;
            let capture_method = params
                .choice(
                    "capture_method",
                    &["automatic", "automatic_async", "manual"],
                )?
                .unwrap_or_else(|| "automatic".into());
            let confirm = params.boolean("confirm")?.unwrap_or(false);
            let transfer_data = match params.string("transfer_data[destination]") {
                Some(destination) => {
                    let mut data = json!({ "destination": destination });
                    if let Some(n) = params.amount("transfer_data[amount]")? {
                        data["amount"] = n.into();
                    }
                    data
                }
                None => Value::Null,
            };
            let id = new_id("pi");
            let payment_method = params.opt("payment_method");
            let pi = self.insert(json!({
                "id": id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "canceled_at": null,
                "cancellation_reason": null,
                "capture_method": capture_method,
                "client_secret": format!("{id}_secret_{}", &new_id("x")[2..]),
                "confirmation_method": "automatic",
                "created": now(),
                "currency": currency,
                "customer": customer,
                "description": params.opt("description"),
                "last_payment_error": null,
                "latest_charge": null,
                "livemode": false,
                "metadata": params.object("metadata"),
                "on_behalf_of": params.opt("on_behalf_of"),
                "payment_method": payment_method,
                "payment_method_types": ["card"],
                "receipt_email": params.opt("receipt_email"),
                "status": if payment_method.is_null() { "requires_payment_method" } else { "requires_confirmation" },
                "transfer_data": transfer_data,
            }));
            if confirm {
                self.confirm_intent(pi, params)
            } else {
                Ok(pi)
            }
        }

        fn confirm(&mut self, id: &str, params: &Params) -> Result<Value> {
            let pi = self.get("payment_intent", id, 404, "intent")?;
            self.confirm_intent(pi, params)
        }

        /// Charges the PaymentIntent: a new charge as its `latest_charge`;
        /// `succeeded`, or `requires_capture` for `capture_method=manual`.
        /// Without a payment method the stand-in uses `pm_card_visa`.
        fn confirm_intent(&mut self, mut pi: Value, params: &Params) -> Result<Value> {
            let status = text(&pi, "status");
            if ![
                "requires_payment_method",
                "requires_confirmation",
                "requires_action",
            ]
            .contains(&status)
            {
                return Err(Failure::unexpected_state(
                    format!("You cannot confirm this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_payment_method, requires_confirmation, requires_action."),
                    &pi,
                ));
            }
            let payment_method = params
                .string("payment_method")
                .map(str::to_string)
                .or_else(|| pi["payment_method"].as_str().map(str::to_string))
                .unwrap_or_else(|| "pm_card_visa".to_string());
            let amount = int(&pi, "amount");
            let manual = text(&pi, "capture_method") == "manual";
            let declined = DECLINED.contains(&payment_method.as_str());
            let charge = self.insert(json!({
                "id": new_id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_captured": if manual || declined { 0 } else { amount },
                "amount_refunded": 0,
                "balance_transaction": null,
                "captured": !manual && !declined,
                "created": now(),
                "currency": pi["currency"],
                "customer": pi["customer"],
                "description": pi["description"],
                "failure_code": if declined { Value::from("card_declined") } else { Value::Null },
                "failure_message": if declined { Value::from("Your card was declined.") } else { Value::Null },
                "invoice": null,
                "livemode": false,
                "metadata": pi["metadata"],
                "paid": !declined,
                "payment_intent": pi["id"],
                "payment_method": payment_method,
                "refunded": false,
                "status": if declined { "failed" } else { "succeeded" },
            }));
            pi["payment_method"] = payment_method.into();
            pi["latest_charge"] = charge["id"].clone();
            if declined {
                let error = json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                    "charge": charge["id"],
                });
                pi["status"] = "requires_payment_method".into();
                pi["last_payment_error"] = error;
                pi["payment_method"] = Value::Null;
                let pi = self.insert(pi);
                return Err(Failure::new(402, "card_error", "Your card was declined.")
                    .code("card_declined")
                    .with("decline_code", "generic_decline".into())
                    .with("charge", charge["id"].clone())
                    .with("payment_intent", pi));
            }
            pi["last_payment_error"] = Value::Null;
            if manual {
                pi["status"] = "requires_capture".into();
                pi["amount_capturable"] = amount.into();
            } else {
                pi["status"] = "succeeded".into();
                pi["amount_received"] = amount.into();
            }
            Ok(self.insert(pi))
        }

        fn capture(&mut self, id: &str, params: &Params) -> Result<Value> {
            let mut pi = self.get("payment_intent", id, 404, "intent")?;
            let status = text(&pi, "status");
            if status != "requires_capture" {
                return Err(Failure::unexpected_state(
                    format!("This PaymentIntent could not be captured because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture."),
                    &pi,
                ));
            }
            let capturable = int(&pi, "amount_capturable");
            let amount = params.amount("amount_to_capture")?.unwrap_or(capturable);
            if amount > capturable {
                let currency = text(&pi, "currency");
                return Err(Failure::invalid(format!(
                    "The amount to capture ({}) is greater than the amount capturable ({}).",
                    shown(amount, currency),
                    shown(capturable, currency)
                ))
                .code("amount_too_large")
                .param("amount_to_capture"));
            }
            if let Some(mut charge) = self.objects.get(text(&pi, "latest_charge")).cloned() {
                charge["captured"] = true.into();
                charge["amount_captured"] = amount.into();
                // What is not captured is released: Stripe shows it refunded.
                charge["amount_refunded"] = (int(&charge, "amount") - amount).into();
                self.insert(charge);
            }
            pi["status"] = "succeeded".into();
            pi["amount_capturable"] = 0.into();
            pi["amount_received"] = amount.into();
            Ok(self.insert(pi))
        }

        fn cancel(&mut self, id: &str, params: &Params) -> Result<Value> {
            let mut pi = self.get("payment_intent", id, 404, "intent")?;
            let status = text(&pi, "status");
            const CANCELABLE: &[&str] = &[
                "requires_payment_method",
                "requires_capture",
                "requires_confirmation",
                "requires_action",
                "processing",
            ];
            if !CANCELABLE.contains(&status) {
                return Err(Failure::unexpected_state(
                    format!("You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: {}.", CANCELABLE.join(", ")),
                    &pi,
                ));
            }
            let reason = params.choice(
                "cancellation_reason",
                &[
                    "duplicate",
                    "fraudulent",
                    "requested_by_customer",
                    "abandoned",
                ],
            )?;
            if status == "requires_capture" {
                if let Some(mut charge) = self.objects.get(text(&pi, "latest_charge")).cloned() {
                    charge["amount_refunded"] = charge["amount"].clone();
                    charge["refunded"] = true.into();
                    self.insert(charge);
                }
            }
            pi["status"] = "canceled".into();
            pi["amount_capturable"] = 0.into();
            pi["canceled_at"] = now().into();
            pi["cancellation_reason"] = reason.map_or(Value::Null, Value::from);
            Ok(self.insert(pi))
        }

        fn create_charge(&mut self, params: &Params) -> Result<Value> {
            let (amount, currency) = Self::payment_amount(params)?;
            let customer = self.customer(params)?;
            let capture = params.boolean("capture")?.unwrap_or(true);
            let source = params.string("source").unwrap_or("tok_visa").to_string();
            let declined = DECLINED.contains(&source.as_str());
            let charge = self.insert(json!({
                "id": new_id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_captured": if capture && !declined { amount } else { 0 },
                "amount_refunded": 0,
                "balance_transaction": null,
                "captured": capture && !declined,
                "created": now(),
                "currency": currency,
                "customer": customer,
                "description": params.opt("description"),
                "failure_code": if declined { Value::from("card_declined") } else { Value::Null },
                "failure_message": if declined { Value::from("Your card was declined.") } else { Value::Null },
                "invoice": null,
                "livemode": false,
                "metadata": params.object("metadata"),
                "paid": !declined,
                "payment_intent": null,
                "payment_method": source,
                "refunded": false,
                "status": if declined { "failed" } else { "succeeded" },
            }));
            if declined {
                return Err(Failure::new(402, "card_error", "Your card was declined.")
                    .code("card_declined")
                    .with("decline_code", "generic_decline".into())
                    .with("charge", charge["id"].clone()));
            }
            Ok(charge)
        }

        fn capture_charge(&mut self, id: &str, params: &Params) -> Result<Value> {
            let mut charge = self.get("charge", id, 404, "charge")?;
            if charge["captured"] == true || text(&charge, "status") != "succeeded" {
                return Err(
                    Failure::invalid(format!("Charge {id} has already been captured."))
                        .code("charge_already_captured"),
                );
            }
            let total = int(&charge, "amount");
            let amount = params.amount("amount")?.unwrap_or(total);
            if amount > total {
                let currency = text(&charge, "currency");
                return Err(Failure::invalid(format!(
                    "The amount to capture ({}) is greater than the amount of the charge ({}).",
                    shown(amount, currency),
                    shown(total, currency)
                ))
                .code("amount_too_large")
                .param("amount"));
            }
            charge["captured"] = true.into();
            charge["amount_captured"] = amount.into();
            charge["amount_refunded"] = (total - amount).into();
            Ok(self.insert(charge))
        }

        /// A refund of `charge`, or of `payment_intent`'s latest charge;
        /// without `amount`, what remains of the charge.
        fn create_refund(&mut self, params: &Params) -> Result<Value> {
            let pi = match params.string("payment_intent") {
                Some(id) => Some(self.get("payment_intent", id, 400, "payment_intent")?),
                None => None,
            };
            let charge_id = match (params.string("charge"), &pi) {
                (Some(charge), Some(pi)) if text(pi, "latest_charge") != charge => {
                    return Err(Failure::invalid(format!(
                        "The charge {charge} does not belong to the PaymentIntent {}.",
                        text(pi, "id")
                    ))
                    .param("charge"))
                }
                (Some(charge), _) => charge.to_string(),
                (None, Some(pi)) => match pi["latest_charge"].as_str() {
                    Some(charge) => charge.to_string(),
                    None => {
                        return Err(Failure::invalid(format!(
                            "This PaymentIntent ({}) does not have a successful charge to refund.",
                            text(pi, "id")
                        ))
                        .param("payment_intent"))
                    }
                },
                (None, None) => {
                    return Err(Failure::invalid(
                        "One of the following params should be provided for this request: payment_intent or charge.",
                    )
                    .code("parameter_missing"))
                }
            };
            let mut charge = self.get("charge", &charge_id, 400, "charge")?;
            let currency = text(&charge, "currency").to_string();
            if let Some(asked) = params.string("currency") {
                if !asked.eq_ignore_ascii_case(&currency) {
                    return Err(Failure::invalid(format!(
                        "The currency of a refund must be the charge's ({currency}), not {}.",
                        asked.to_ascii_lowercase()
                    ))
                    .param("currency"));
                }
            }
            if charge["captured"] != true {
                return Err(Failure::invalid(format!(
                    "Charge {charge_id} has not been captured: cancel its PaymentIntent to release the authorization."
                ))
                .code("charge_not_refundable"));
            }
            let refunded = int(&charge, "amount_refunded");
            let remaining = int(&charge, "amount").saturating_sub(refunded);
            if remaining == 0 {
                return Err(Failure::invalid(format!(
                    "Charge {charge_id} has already been refunded."
                ))
                .code("charge_already_refunded"));
            }
            let amount = params.amount("amount")?.unwrap_or(remaining);
            if amount > remaining {
                return Err(Failure::invalid(format!(
                    "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                    shown(amount, &currency),
                    shown(remaining, &currency)
                ))
                .code("amount_too_large")
                .param("amount"));
            }
            let reason = params.choice(
                "reason",
                &["duplicate", "fraudulent", "requested_by_customer"],
            )?;
            charge["amount_refunded"] = (refunded + amount).into();
            charge["refunded"] = (refunded + amount == int(&charge, "amount")).into();
            let payment_intent = charge["payment_intent"].clone();
            self.insert(charge);
            Ok(self.insert(json!({
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "balance_transaction": null,
                "charge": charge_id,
                "created": now(),
                "currency": currency,
                "metadata": params.object("metadata"),
                "payment_intent": payment_intent,
                "reason": reason,
                "status": "succeeded",
            })))
        }

        fn create_transfer(&mut self, params: &Params) -> Result<Value> {
            let amount = params.required_amount("amount")?;
            let currency = params.currency("currency")?;
            let destination = params.required("destination")?;
            if !destination.starts_with("acct_") {
                return Err(Failure::no_such(
                    400,
                    "destination",
                    destination,
                    "destination",
                ));
            }
            let id = new_id("tr");
            Ok(self.insert(json!({
                "id": id,
                "object": "transfer",
                "amount": amount,
                "amount_reversed": 0,
                "balance_transaction": null,
                "created": now(),
                "currency": currency,
                "description": params.opt("description"),
                "destination": destination,
                "destination_payment": new_id("py"),
                "livemode": false,
                "metadata": params.object("metadata"),
                "reversals": {
                    "object": "list",
                    "data": [],
                    "has_more": false,
                    "total_count": 0,
                    "url": format!("/v1/transfers/{id}/reversals"),
                },
                "reversed": false,
                "source_transaction": params.opt("source_transaction"),
                "source_type": "card",
                "transfer_group": params.opt("transfer_group"),
            })))
        }

        fn create_payout(&mut self, params: &Params) -> Result<Value> {
            let amount = params.required_amount("amount")?;
            let currency = params.currency("currency")?;
            let method = params
                .choice("method", &["standard", "instant"])?
                .unwrap_or_else(|| "standard".into());
            let created = now();
            Ok(self.insert(json!({
                "id": new_id("po"),
                "object": "payout",
                "amount": amount,
                "arrival_date": created + 2 * 86_400,
                "automatic": false,
                "balance_transaction": null,
                "created": created,
                "currency": currency,
                "description": params.opt("description"),
                "destination": params.string("destination").unwrap_or("ba_standin_default"),
                "livemode": false,
                "metadata": params.object("metadata"),
                "method": method,
                "source_type": "card",
                "statement_descriptor": params.opt("statement_descriptor"),
                "status": "pending",
                "type": "bank_account",
            })))
        }

        /// Pays what remains of an open invoice with a new charge (none
        /// with `paid_out_of_band=true`).
        fn pay_invoice(&mut self, id: &str, params: &Params) -> Result<Value> {
            let mut invoice = self.get("invoice", id, 404, "invoice")?;
            let status = text(&invoice, "status");
            if status != "open" {
                return Err(Failure::invalid(match status {
                    "paid" => "Invoice is already paid".to_string(),
                    other => format!("This invoice can not be paid: its status is {other}."),
                }));
            }
            let remaining = int(&invoice, "amount_remaining");
            if params.boolean("paid_out_of_band")?.unwrap_or(false) {
                invoice["paid_out_of_band"] = true.into();
            } else {
                let charge = self.insert(json!({
                    "id": new_id("ch"),
                    "object": "charge",
                    "amount": remaining,
                    "amount_captured": remaining,
                    "amount_refunded": 0,
                    "balance_transaction": null,
                    "captured": true,
                    "created": now(),
                    "currency": invoice["currency"],
                    "customer": invoice["customer"],
                    "description": invoice["description"],
                    "failure_code": null,
                    "failure_message": null,
                    "invoice": id,
                    "livemode": false,
                    "metadata": {},
                    "paid": true,
                    "payment_intent": null,
                    "payment_method": params.string("payment_method").unwrap_or("pm_card_visa"),
                    "refunded": false,
                    "status": "succeeded",
                }));
                invoice["charge"] = charge["id"].clone();
                invoice["amount_paid"] = (int(&invoice, "amount_paid") + remaining).into();
            }
            invoice["amount_remaining"] = 0.into();
            invoice["attempted"] = true.into();
            invoice["attempt_count"] = (int(&invoice, "attempt_count") + 1).into();
            invoice["paid"] = true.into();
            invoice["status"] = "paid".into();
            Ok(self.insert(invoice))
        }
    }

    fn product(name: &str, description: Value, metadata: Map<String, Value>) -> Value {
        let created = now();
        json!({
            "id": new_id("prod"),
            "object": "product",
            "active": true,
            "created": created,
            "description": description,
            "livemode": false,
            "metadata": metadata,
            "name": name,
            "updated": created,
        })
    }

    /// `123` or `12.5`: digits with at most one point.
    fn is_decimal(text: &str) -> bool {
        let mut parts = text.splitn(2, '.');
        let whole = parts.next().unwrap_or("");
        let frac = parts.next();
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    }
}
