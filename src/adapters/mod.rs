//! Vendor adapters: which hosts leash intercepts, and how each vendor's
//! requests are read as intents.
//!
//! Also home to [`Form`], the strict `application/x-www-form-urlencoded`
//! reader shared by adapters of form-encoded APIs (Stripe today, custom
//! `body: form` vendors later).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::intent::{Classification, Fingerprint, Lookup, RequestView};

pub mod aws;
pub mod custom;
pub mod fireblocks;
pub mod google_ads;
pub mod json;
pub mod meta;
pub mod path;
pub mod sepa;
pub mod stripe;
pub mod wise;

/// One vendor's knowledge: the hosts it owns, how to read its requests, and
/// how its SDKs expect to be refused. The one place a vendor lives: nothing
/// outside `src/adapters/` names one.
///
/// `classify` must be total and must not panic on any input: it runs on
/// every intercepted request, with bytes chosen by the agent. When unsure it
/// answers `Unknown` or `Unreadable`, never `Safe`. Every method is pure (no
/// I/O, no clock), so adapters can be tested exhaustively.
pub trait Adapter: Send + Sync {
    /// Short lowercase vendor name used in intents and policies (`stripe`).
    fn name(&self) -> &str;
    /// Whether this adapter reads requests to `host`. Hosts are compared
    /// after [`normalize_host`].
    fn claims_host(&self, host: &str) -> bool;
    /// Every host this adapter claims, normalised: what an IP-literal
    /// CONNECT is compared against (is this address a vendor's?).
    fn hosts(&self) -> Vec<String>;
    /// Reads one request, with whatever its [`Adapter::lookups`] returned
    /// in `req.facts`. A fact that is missing (the lookup failed) leaves
    /// the request unreadable, never approved.
    fn classify(&self, req: &RequestView<'_>) -> Classification;
    /// What to GET before `req` can be read exactly (SPEC §4.2a): a
    /// refund's charge, for its currency and refundable amount. Asked again
    /// once the answers are in `req.facts` (a second lookup may follow from
    /// the first); leash stops after a few rounds. Lookups go to the
    /// request's own host with the agent's own credentials and account.
    fn lookups(&self, _req: &RequestView<'_>) -> Vec<Lookup> {
        Vec::new()
    }
    /// The request headers (lowercase) this adapter reads besides
    /// `Content-Type` and `Content-Encoding`, which leash reads for every
    /// vendor. Two copies of one of them, or a `Connection` header naming
    /// one, make a request ambiguous: leash reads one value, the vendor may
    /// read another (or none).
    fn read_headers(&self) -> Vec<&str> {
        self.idempotency_header()
            .into_iter()
            .chain(self.account_header())
            .collect()
    }
    /// The header carrying the request's idempotency key, if the vendor
    /// has one (`Idempotency-Key`, the default). A vendor whose key lives in
    /// the body sets it on its intents itself.
    fn idempotency_header(&self) -> Option<&str> {
        Some("idempotency-key")
    }
    /// How an agent picks up its held request once approved, for the
    /// `leash_held` message: by default the same request with the same
    /// idempotency header, or, for a vendor without one, the same request
    /// again (leash knows it by its fingerprint). A vendor whose key is in
    /// the body says so (EC2's `ClientToken`).
    fn resume_hint(&self) -> String {
        match self.idempotency_header() {
            Some(header) => format!(
                "Retry the same request (same {}) after approval",
                header_display(header)
            ),
            None => "Send the same request again after approval (leash knows it by its content)"
                .to_string(),
        }
    }
    /// The header naming the account the request acts as (Stripe
    /// Connect's `Stripe-Account`), which enters the fingerprint: the same
    /// call for another account moves another account's money. Never a
    /// signature or a timestamp.
    fn account_header(&self) -> Option<&str> {
        None
    }
    /// The account named by a value of [`Adapter::account_header`]: by
    /// default the whole value (`Stripe-Account: acct_1`). A vendor whose
    /// account is one part of a larger header returns that part (AWS: the
    /// access key id inside `Authorization: AWS4-HMAC-SHA256
    /// Credential=AKIA…/…, Signature=…`), so that the rest — a signature,
    /// a date — never enters the fingerprint, the intent, the lookup cache
    /// or the audit chain. `None`: the value names no account leash reads.
    fn account_of<'v>(&self, header_value: &'v str) -> Option<&'v str> {
        Some(header_value)
    }
    /// The request's fingerprint (SPEC §6: what makes a retry the same
    /// request). By default [`RequestView::fingerprint`]. A vendor whose
    /// idempotency key is a body field that its SDKs draw anew on every
    /// call (EC2's `ClientToken`, a uuid4 per `run_instances`) leaves that
    /// field out, as other vendors' key headers are left out: otherwise an
    /// agent's retry of a held request would never be recognised as one.
    fn fingerprint(&self, req: &RequestView<'_>) -> Fingerprint {
        req.fingerprint()
    }
    /// Whether the vendor's successful answer to `req` describes objects
    /// leash would otherwise look up (a created PaymentIntent, a Wise
    /// quote), so the proxy should read it before passing it on. Asked
    /// before the request is forwarded; only then is the answer buffered
    /// (up to 1 MiB) and handed to [`Adapter::learn`].
    fn learns_from(&self, _req: &RequestView<'_>) -> bool {
        false
    }
    /// The objects a 2xx `answer` (strict JSON, already decoded) to `req`
    /// describes, each by the path a [`Lookup`] would GET it at. The proxy
    /// keeps them in its lookup cache, for the same agent, credentials and
    /// account, as if they had been looked up: a later request about them
    /// is read without a GET. Only what the answer states is learned:
    /// nothing computed, nothing guessed.
    fn learn(&self, _req: &RequestView<'_>, _answer: &json::Json) -> Vec<(String, json::Json)> {
        Vec::new()
    }
    /// [`Adapter::learn`] on the answer's bytes (decoded from its
    /// `Content-Encoding`, at most 1 MiB) and `Content-Type`. The default
    /// reads them as strict JSON and asks [`Adapter::learn`]; a vendor that
    /// answers in another format (EC2 answers XML) reads them itself, and
    /// still returns what it learned as JSON objects under lookup paths.
    fn learn_from_answer(
        &self,
        req: &RequestView<'_>,
        _content_type: Option<&str>,
        answer: &[u8],
    ) -> Vec<(String, json::Json)> {
        match json::parse(answer) {
            Ok(answer) => self.learn(req, &answer),
            Err(_) => Vec::new(),
        }
    }
    /// Whether leash may GET what [`Adapter::lookups`] asks for. A vendor
    /// whose requests leash cannot make itself (AWS signs each with the
    /// agent's secret key, which leash never holds) answers `false`: its
    /// lookups are then answered only from what was learned from the
    /// agent's own traffic ([`Adapter::learn_from_answer`]), and whatever
    /// was not learned is missing, never fetched.
    fn can_look_up(&self) -> bool {
        true
    }
    /// What a *safe* write is worth recording in the audit chain, though it
    /// moves no money: the beneficiary a Wise recipient creation adds
    /// (holder, currency, account details with secrets masked). `None`, the
    /// default, records nothing. Written (as an `event` entry) before the
    /// request is forwarded; a record that cannot be written stops it.
    fn safe_record(&self, _req: &RequestView<'_>) -> Option<serde_json::Value> {
        None
    }
    /// Whether this vendor's requests carry a signature with a short
    /// lifetime (a timestamped HMAC, a JWT valid for seconds). A held
    /// request is then released by forwarding the agent's *retry* — same
    /// fingerprint, fresh signature — rather than the stored copy, which
    /// the vendor would refuse as expired (SPEC §6). The signature must
    /// then not enter the fingerprint (see [`Adapter::read_headers`]).
    fn short_lived_signatures(&self) -> bool {
        false
    }
    /// The request headers (lowercase) a lookup for this vendor copies
    /// from the agent's request, besides [`Adapter::account_header`]: the
    /// credentials (`Authorization`, the default), and whatever makes the
    /// vendor answer in the shape the agent's own requests get (an API
    /// version header). Never a signature: lookups are new requests.
    fn lookup_headers(&self) -> Vec<&str> {
        vec!["authorization"]
    }
    /// The request parameters (query-string or body field names) that
    /// carry the agent's credentials, for a vendor that takes them outside
    /// headers: the Graph API's `access_token` and `appsecret_proof`.
    /// Those in the query are copied onto each lookup, like
    /// [`Adapter::lookup_headers`], and key the lookup cache (by digest);
    /// a hold's raw fields never show them. Default: none.
    fn secret_params(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Whether the object looked up at `path` stays as it was when a
    /// request that needed it is forwarded. By default every looked-up
    /// object goes stale then (a refund changes its charge); an adapter
    /// names the objects a write cannot change (a Stripe Price's amount is
    /// fixed once created), so they are not looked up again.
    fn stays_fresh(&self, _path: &str) -> bool {
        false
    }
    /// Whether a body field called `name` bears an amount, for the raw
    /// fields an approver is shown when leash could not read a request's
    /// amount (they must state it). The default: `currency`, `…[currency]`
    /// and any name containing `amount`, in any letter case.
    fn amount_field(&self, name: &str) -> bool {
        names_an_amount(name)
    }
    /// leash's own answer (a refusal, a hold) in the shape this vendor's
    /// SDKs parse into their normal typed error without retrying. The
    /// default is the generic JSON `{"error":{"code","message"}}`.
    fn shape_refusal(&self, refusal: &Refusal<'_>) -> Shaped {
        Shaped::generic(refusal)
    }
    /// [`Adapter::shape_refusal`] knowing the request answered, for a
    /// vendor that speaks two protocols on one host and must answer in the
    /// one asked (Google Ads: gRPC or REST JSON). The default ignores it.
    fn shape_refusal_to(&self, refusal: &Refusal<'_>, _asked: &Asked<'_>) -> Shaped {
        self.shape_refusal(refusal)
    }
}

/// The request a refusal answers, as far as the refusal's shape may
/// depend on it. Empty (`Default`) when leash answers outside a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked<'a> {
    /// The request's path, without the query.
    pub path: &'a str,
    /// The request's `Content-Type`.
    pub content_type: Option<&'a str>,
}

impl std::fmt::Debug for dyn Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Adapter({})", self.name())
    }
}

/// What leash says when it answers a request itself, for an adapter to put
/// in its vendor's shape.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub status: http::StatusCode,
    /// `leash_rejected`, `leash_held`, …
    pub code: &'a str,
    /// Already masked (no card numbers, no secrets).
    pub message: &'a str,
}

/// A refusal in a vendor's shape: the status, body and headers its SDKs
/// parse into their normal typed error without retrying.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    /// The HTTP status sent, when the vendor's protocol does not carry the
    /// refusal's own: gRPC answers every call `200` and puts its status in
    /// `grpc-status`. `None` sends [`Refusal::status`].
    pub status: Option<http::StatusCode>,
    pub body: ShapedBody,
    /// Extra headers. A value that is not a valid header value is dropped
    /// (an adapter percent-encodes what it quotes, as gRPC's
    /// `grpc-message` requires).
    pub headers: Vec<(&'static str, String)>,
}

/// The body of a [`Shaped`] refusal.
#[derive(Debug, Clone, PartialEq)]
pub enum ShapedBody {
    /// Sent as `application/json`.
    Json(serde_json::Value),
    /// Any other media type: an XML error document, or an empty gRPC
    /// trailers-only answer (`application/grpc`, no bytes).
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

impl Shaped {
    /// `{"error":{"code":...,"message":...}}`, no extra headers.
    pub fn generic(refusal: &Refusal<'_>) -> Shaped {
        Shaped::json(serde_json::json!({
            "error": { "code": refusal.code, "message": refusal.message }
        }))
    }

    /// A JSON body with the refusal's status and no extra headers.
    pub fn json(body: serde_json::Value) -> Shaped {
        Shaped {
            status: None,
            body: ShapedBody::Json(body),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Shaped {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body, if it is one.
    pub fn json_body(&self) -> Option<&serde_json::Value> {
        match &self.body {
            ShapedBody::Json(value) => Some(value),
            ShapedBody::Raw { .. } => None,
        }
    }
}

/// The default of [`Adapter::amount_field`]: `currency`, `…[currency]` and
/// any name containing `amount`, in any letter case.
pub fn names_an_amount(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "currency" || name.contains("amount") || name.ends_with("[currency]")
}

/// The vendor commands assume when none is named (`leash explain`).
pub const DEFAULT_VENDOR: &str = stripe::VENDOR;

/// Vendor names of the built-in adapters (SPEC §4.3), including those
/// still being written (their policies load today, and a custom vendor may
/// not take their names, or audit entries and policy filters would be
/// ambiguous).
pub const BUILTIN_NAMES: &[&str] = &[
    stripe::VENDOR,
    "meta",
    "google_ads",
    sepa::VENDOR,
    "wise",
    "fireblocks",
    "aws",
];

/// Whether `host` is read by a built-in adapter (the AWS
/// adapter claims every `ec2.*.amazonaws.com` host itself).
pub fn is_builtin_host(host: &str) -> bool {
    let host = normalize_host(host);
    Registry::builtin().for_host(&host).is_some()
}

/// The set of adapters the proxy consults for each intercepted host, built
/// once at start from the built-ins and `leash.yaml`'s `custom_vendors`.
/// What config validation, the policy loader's `vendors:` check and the
/// metrics labels read.
#[derive(Clone)]
pub struct Registry {
    adapters: Vec<Arc<dyn Adapter>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// The adapters built into leash, with default `vendors:` settings.
    pub fn builtin() -> Registry {
        Registry::builtin_with(&crate::config::Vendors::default())
    }

    /// The built-in adapters with `vendors:` settings (SPEC §4.5).
    fn builtin_with(vendors: &crate::config::Vendors) -> Registry {
        Registry {
            adapters: vec![
                Arc::new(stripe::StripeAdapter),
                // The bank hosts of `vendors.sepa.hosts` (none by default).
                Arc::new(sepa::SepaAdapter::new(&vendors.sepa)),
                // graph.facebook.com; ad accounts' currencies from `vendors.meta`.
                Arc::new(meta::MetaAdapter::new(&vendors.meta)),
                // ec2.*.amazonaws.com; prices from `vendors.aws`.
                Arc::new(aws::AwsAdapter::new(&vendors.aws)),
                // Wise and Fireblocks: their own hosts, plus `vendors.*.hosts`.
                Arc::new(wise::WiseAdapter::new(&vendors.wise)),
                Arc::new(fireblocks::FireblocksAdapter::new(&vendors.fireblocks)),
                // googleads.googleapis.com (gRPC and REST); customers' currencies
                // from `vendors.google_ads`.
                Arc::new(google_ads::GoogleAdsAdapter::new(&vendors.google_ads)),
            ],
        }
    }

    /// A custom set, e.g. built-ins plus config-defined vendors.
    pub fn new(adapters: Vec<Arc<dyn Adapter>>) -> Registry {
        Registry { adapters }
    }

    /// The built-ins, then every `custom_vendors` entry of `config` (which
    /// the config loader checked: no name or host is taken twice).
    pub fn from_config(config: &crate::config::Config) -> Registry {
        let mut registry = Registry::builtin_with(&config.vendors);
        for vendor in &config.custom_vendors {
            registry
                .adapters
                .push(Arc::new(custom::CustomAdapter::new(vendor.clone())));
        }
        registry
    }

    /// The adapter that claims `host`, if any. `host` may carry any letter
    /// case, a port and a trailing dot (`API.Stripe.com.:443`); the first
    /// adapter to claim it wins.
    pub fn for_host(&self, host: &str) -> Option<&Arc<dyn Adapter>> {
        let host = normalize_host(host);
        self.adapters.iter().find(|a| a.claims_host(&host))
    }

    /// The adapter called `name`.
    pub fn named(&self, name: &str) -> Option<&Arc<dyn Adapter>> {
        self.adapters.iter().find(|a| a.name() == name)
    }

    /// Every vendor name, in lookup order.
    pub fn names(&self) -> Vec<&str> {
        self.adapters.iter().map(|a| a.name()).collect()
    }

    /// Every host some adapter claims.
    pub fn hosts(&self) -> Vec<String> {
        self.adapters.iter().flat_map(|a| a.hosts()).collect()
    }

    /// All adapters, in lookup order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Adapter> {
        self.adapters.iter().map(|a| a.as_ref())
    }
}

/// Canonical form of a host for matching and fingerprints: surrounding
/// whitespace trimmed, the `:port` removed, trailing dots removed (the
/// fully-qualified `api.stripe.com.` is the same host), ASCII-lowercased.
///
/// Matching leans towards recognising a vendor: a host leash fails to claim
/// is tunnelled uninspected, which is the one outcome that lets money move
/// unchecked. A bracketed IPv6 literal keeps its brackets and loses its port.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = if h.starts_with('[') {
        match h.find(']') {
            Some(end) => h.get(..=end).unwrap_or(h),
            None => h,
        }
    } else {
        match h.split_once(':') {
            // One colon: `name:port`. More than one is an unbracketed IPv6
            // literal, which has no port to strip.
            Some((name, rest)) if !rest.contains(':') => name,
            _ => h,
        }
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a form body (or query string) could not be read unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape in form data at byte {0}")]
    BadPercent(usize),
    /// A name or value that is not UTF-8 after percent-decoding.
    #[error("form data is not valid UTF-8 after percent-decoding")]
    NotUtf8,
    /// A raw `;`. Some servers split parameters on `;` as well as `&` (Rack 2
    /// does for query strings), so `a=1;amount=9` can mean one parameter to
    /// leash and two to the upstream. Encoders send `;` as `%3B`.
    #[error("form data contains a raw ';', which some servers treat as a separator")]
    Semicolon,
    /// A name that is not `root[seg][seg]...` with an alphanumeric root.
    #[error("form field name {0:?} is not of the form name[key][key]...")]
    OddName(String),
    /// The same field twice. Servers disagree on which copy wins, so the
    /// value is ambiguous (`amount=1&amount=99999`). Names ending in `[]`
    /// (array pushes like `expand[]`) may repeat.
    #[error("form field {0:?} appears more than once")]
    Duplicate(String),
    /// A field given both as a plain value and as a nested one
    /// (`amount=1&amount[x]=2`): no reading of that is obviously right.
    #[error("form field {0:?} is given both as a value and as nested fields")]
    ShapeConflict(String),
}

impl FormError {
    /// Whether the form can be read in more than one way (the vendor may
    /// take another value than leash would), as opposed to not read at all.
    ///
    /// Ambiguous forms are refused outright (SPEC §4.2); unreadable ones go
    /// to the policy's `unreadable` action like any missing information. A
    /// field name that is not canonical (`amount%20`) counts as ambiguous:
    /// the grammar exists because some parser may read it as `amount`.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            FormError::Semicolon
            | FormError::Duplicate(_)
            | FormError::ShapeConflict(_)
            | FormError::OddName(_) => true,
            FormError::BadPercent(_) | FormError::NotUtf8 => false,
        }
    }
}

/// Longest field name echoed in an error.
const NAME_SNIPPET: usize = 60;

fn name_snippet(s: &str) -> String {
    let mut out: String = s.chars().take(NAME_SNIPPET).collect();
    if s.chars().nth(NAME_SNIPPET).is_some() {
        out.push('…');
    }
    out
}

/// A strictly parsed `application/x-www-form-urlencoded` body (optionally
/// merged with the query string), in the bracketed style Stripe uses
/// (`metadata[order]=42`, `line_items[0][price_data][unit_amount]=500`).
///
/// Names are kept flat and verbatim (`transfer_data[destination]`), but only
/// once the whole form has passed checks that make every lookup unambiguous:
/// canonical names, no duplicates, no value/nested conflicts, no raw `;`,
/// valid percent-escapes and UTF-8. A form that fails any of them is refused
/// whole, because the field leash would read and the field the upstream
/// would read might differ.
#[derive(Debug, Clone, Default)]
pub struct Form {
    fields: BTreeMap<String, Vec<String>>,
}

impl Form {
    /// Parses a body.
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        Form::parse_parts(None, body)
    }

    /// Parses the query string and the body as one set of parameters.
    ///
    /// Some servers read parameters from both (Rack merges them), so a field
    /// in the query is a field of the request: `?amount=99999` next to a
    /// body `amount=1` is a duplicate, and refused as one.
    pub fn parse_parts(query: Option<&str>, body: &[u8]) -> Result<Form, FormError> {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for source in [query.map(str::as_bytes).unwrap_or(b""), body] {
            for (name, value) in pairs(source)? {
                check_name(&name)?;
                fields.entry(name).or_default().push(value);
            }
        }
        let form = Form { fields };
        form.check_unambiguous()?;
        Ok(form)
    }

    fn check_unambiguous(&self) -> Result<(), FormError> {
        for (name, values) in &self.fields {
            if values.len() > 1 && !name.ends_with("[]") {
                return Err(FormError::Duplicate(name_snippet(name)));
            }
            if self.has_children(name) {
                return Err(FormError::ShapeConflict(name_snippet(name)));
            }
        }
        Ok(())
    }

    /// The value of field `name`, if present. After parsing, a non-`[]`
    /// name has at most one value, so this is unambiguous.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Whether any field is nested under `name` (`name[...]`).
    pub fn has_children(&self, name: &str) -> bool {
        let prefix = format!("{name}[");
        self.fields
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// Whether a field with this root is present, as a value or nested:
    /// `has_root("metadata")` is true for `metadata[order]=1`.
    pub fn has_root(&self, root: &str) -> bool {
        self.fields.contains_key(root) || self.has_children(root)
    }

    /// The distinct roots of all fields (`metadata` for `metadata[a]`), in
    /// sorted order.
    pub fn roots(&self) -> Vec<&str> {
        // Not `dedup` on the sorted names: `a`, `a0`, `a[x]` sort in that
        // order, so equal roots need not be adjacent.
        let roots: std::collections::BTreeSet<&str> =
            self.fields.keys().map(|k| root_of(k)).collect();
        roots.into_iter().collect()
    }

    /// Every `(name, value)` whose name starts with `prefix`, in name order.
    pub fn with_prefix<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = (&'s str, &'s str)> {
        self.fields
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())))
    }

    /// Number of distinct field names.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the form has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// The root of a field name: everything before the first `[`.
pub fn root_of(name: &str) -> &str {
    match name.find('[') {
        Some(i) => name.get(..i).unwrap_or(name),
        None => name,
    }
}

/// Name grammar: `root ("[" seg "]")*`, root `[A-Za-z0-9_]+`, seg any text
/// without brackets (may be empty: `expand[]`). Anything else is refused, so
/// that `[amount]`, `amount]` or `amount ` cannot be a second spelling of
/// `amount` to some upstream parser.
fn check_name(name: &str) -> Result<(), FormError> {
    let odd = || FormError::OddName(name_snippet(name));
    let root = root_of(name);
    if root.is_empty() || !root.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(odd());
    }
    let mut rest = name.get(root.len()..).unwrap_or("");
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(odd)?;
        let close = inner.find(']').ok_or_else(odd)?;
        let seg = inner.get(..close).ok_or_else(odd)?;
        if seg.contains('[') {
            return Err(odd());
        }
        rest = inner.get(close + 1..).ok_or_else(odd)?;
    }
    Ok(())
}

/// Splits `a=1&b=2` into decoded pairs. Empty pieces (`a=1&&b=2`) are
/// skipped, a piece without `=` is a name with an empty value, `+` is a
/// space, and `%XX` must be a valid escape.
pub(crate) fn pairs(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    if input.contains(&b';') {
        return Err(FormError::Semicolon);
    }
    let mut out = Vec::new();
    let mut offset = 0usize;
    for piece in input.split(|b| *b == b'&') {
        if !piece.is_empty() {
            let (name, value, value_at) = match piece.iter().position(|b| *b == b'=') {
                Some(eq) => (
                    piece.get(..eq).unwrap_or(b""),
                    piece.get(eq + 1..).unwrap_or(b""),
                    offset.saturating_add(eq + 1),
                ),
                None => (piece, &b""[..], offset),
            };
            let name = decode_component(name, offset)?;
            let value = decode_component(value, value_at)?;
            out.push((name, value));
        }
        offset = offset.saturating_add(piece.len() + 1);
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_component(bytes: &[u8], offset: usize) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi * 16 + lo),
                    _ => return Err(FormError::BadPercent(offset.saturating_add(i))),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// `Idempotency-Key` for `idempotency-key`: a header name as people write
/// it (each dash-separated word capitalised).
pub fn header_display(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held request's message tells the agent how to come back for it,
    /// in its vendor's terms.
    #[test]
    fn resume_hints_name_each_vendors_key() {
        let registry = Registry::builtin();
        let hint = |name: &str| registry.named(name).map(|a| a.resume_hint()).unwrap();
        assert!(
            hint("stripe").contains("same Idempotency-Key"),
            "{}",
            hint("stripe")
        );
        assert!(hint("aws").contains("same ClientToken"), "{}", hint("aws"));
        assert!(
            hint("wise").contains("same X-idempotence-uuid"),
            "{}",
            hint("wise")
        );
        for name in ["meta", "google_ads", "sepa"] {
            assert!(hint(name).contains("again"), "{name}: {}", hint(name));
            assert!(
                !hint(name).contains("Idempotency"),
                "{name}: {}",
                hint(name)
            );
        }
        assert_eq!(header_display("idempotency-key"), "Idempotency-Key");
    }
    use proptest::prelude::*;

    #[test]
    fn host_normalisation() {
        assert_eq!(normalize_host("api.stripe.com"), "api.stripe.com");
        assert_eq!(normalize_host("API.Stripe.COM"), "api.stripe.com");
        assert_eq!(normalize_host("api.stripe.com."), "api.stripe.com");
        assert_eq!(normalize_host("api.stripe.com:443"), "api.stripe.com");
        assert_eq!(normalize_host("api.stripe.com.:443"), "api.stripe.com");
        assert_eq!(normalize_host(" api.stripe.com "), "api.stripe.com");
        assert_eq!(normalize_host("[::1]:443"), "[::1]");
        assert_eq!(normalize_host("::1"), "::1");
    }

    #[test]
    fn vendors_for_host() {
        let v = Registry::builtin();
        for h in [
            "api.stripe.com",
            "API.STRIPE.COM",
            "api.stripe.com.",
            "api.stripe.com:443",
            "Api.Stripe.Com.:8443",
        ] {
            assert_eq!(v.for_host(h).map(|a| a.name()), Some("stripe"), "{h}");
        }
        for h in [
            "stripe.com",
            "api.stripe.com.evil.example",
            "evilapi.stripe.com",
            "",
            "[::1]:443",
        ] {
            assert!(v.for_host(h).is_none(), "{h}");
        }
        assert_eq!(
            v.for_host("graph.facebook.com").map(|a| a.name()),
            Some("meta")
        );
        for h in ["ec2.us-east-1.amazonaws.com", "EC2.amazonaws.com."] {
            assert_eq!(v.for_host(h).map(|a| a.name()), Some("aws"), "{h}");
            assert!(is_builtin_host(h), "{h}");
        }
        assert_eq!(
            v.names(),
            [
                "stripe",
                "sepa",
                "meta",
                "aws",
                "wise",
                "fireblocks",
                "google_ads"
            ]
        );
        for (host, vendor) in [
            ("api.wise.com", "wise"),
            ("api.transferwise.com:443", "wise"),
            ("api.fireblocks.io", "fireblocks"),
            ("sandbox-api.fireblocks.io", "fireblocks"),
        ] {
            assert_eq!(v.for_host(host).map(|a| a.name()), Some(vendor), "{host}");
            assert!(is_builtin_host(host), "{host}");
        }
        assert!(v.for_host("api.wise-sandbox.com").is_none());
    }

    #[test]
    fn vendor_settings_reach_the_adapters() {
        let config = crate::config::Config::parse(
            std::path::Path::new("leash.yaml"),
            "vendors:\n  wise: { hosts: [api.wise-sandbox.com] }\n  fireblocks: { hosts: [sandbox-api.fireblocks.io] }\n",
        )
        .unwrap();
        let v = Registry::from_config(&config);
        assert_eq!(
            v.names(),
            [
                "stripe",
                "sepa",
                "meta",
                "aws",
                "wise",
                "fireblocks",
                "google_ads"
            ]
        );
        let claimed = |h: &str| v.for_host(h).map(|a| a.name().to_owned());
        assert_eq!(claimed("api.wise-sandbox.com").as_deref(), Some("wise"));
        assert_eq!(
            claimed("sandbox-api.fireblocks.io").as_deref(),
            Some("fireblocks")
        );
        // Listing hosts adds to the vendors' own: none is left unread.
        assert_eq!(claimed("api.wise.com").as_deref(), Some("wise"));
        assert_eq!(claimed("api.fireblocks.io").as_deref(), Some("fireblocks"));
    }

    #[test]
    fn form_basics() {
        let f = Form::parse(
            b"amount=1500&currency=jpy&metadata[order]=A%2042&transfer_data%5Bdestination%5D=acct_1&d=a+b",
        )
        .unwrap();
        assert_eq!(f.get("amount"), Some("1500"));
        assert_eq!(f.get("metadata[order]"), Some("A 42"));
        assert_eq!(f.get("transfer_data[destination]"), Some("acct_1"));
        assert_eq!(f.get("d"), Some("a b"));
        assert!(f.has_root("metadata"));
        assert!(f.has_children("metadata"));
        assert!(!f.has_root("meta"));
        assert_eq!(
            f.roots(),
            vec!["amount", "currency", "d", "metadata", "transfer_data"]
        );
        let items: Vec<_> = f.with_prefix("metadata[").collect();
        assert_eq!(items, vec![("metadata[order]", "A 42")]);
        assert_eq!(f.len(), 5);
        let g = Form::parse(b"a=1&a0=2&a[x]=3").unwrap_err();
        assert_eq!(g, FormError::ShapeConflict("a".into()));
        let g = Form::parse(b"a0=2&a[x]=3&a[y]=4").unwrap();
        assert_eq!(g.roots(), vec!["a", "a0"]);
        assert!(Form::parse(b"").unwrap().is_empty());
        assert!(Form::parse(b"&&a=1&&").unwrap().get("a") == Some("1"));
        assert_eq!(Form::parse(b"flag").unwrap().get("flag"), Some(""));
    }

    #[test]
    fn form_refusals() {
        use FormError::*;
        let cases: &[(&[u8], FormError)] = &[
            (b"amount=1&amount=99999", Duplicate("amount".into())),
            (b"amount=1&amount[x]=2", ShapeConflict("amount".into())),
            (b"a=%zz", BadPercent(2)),
            (b"a=%4", BadPercent(2)),
            (b"a=%ff", NotUtf8),
            (b"a=1;amount=2", Semicolon),
            (b"[amount]=1", OddName("[amount]".into())),
            (b"amount]=1", OddName("amount]".into())),
            (b"amount%20=1", OddName("amount ".into())),
            (b"a[b]c=1", OddName("a[b]c".into())),
            (b"a[b[c]]=1", OddName("a[b[c]]".into())),
            (b"a[b=1", OddName("a[b".into())),
            (b"=1", OddName("".into())),
            (b"am-ount=1", OddName("am-ount".into())),
        ];
        for (input, want) in cases {
            assert_eq!(
                Form::parse(input).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn form_push_arrays_may_repeat() {
        let f = Form::parse(b"expand[]=customer&expand[]=invoice").unwrap();
        assert_eq!(f.with_prefix("expand").count(), 2);
        assert!(Form::parse(b"line_items[][quantity]=1&line_items[][quantity]=2").is_err());
    }

    #[test]
    fn form_query_and_body_are_one_set() {
        let f = Form::parse_parts(Some("expand[]=x"), b"amount=5").unwrap();
        assert_eq!(f.get("amount"), Some("5"));
        assert_eq!(
            Form::parse_parts(Some("amount=99999"), b"amount=1").unwrap_err(),
            FormError::Duplicate("amount".into())
        );
    }

    #[test]
    fn form_matches_form_urlencoded_on_clean_input() {
        let pairs = [
            ("metadata[order id]", "ä ö/ü?&="),
            ("amount", "12"),
            ("description", "a+b%c"),
        ];
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let f = Form::parse(body.as_bytes()).unwrap();
        for (k, v) in pairs {
            assert_eq!(f.get(k), Some(v));
        }
    }

    proptest! {
        #[test]
        fn form_never_panics(query in prop::option::of(".*"), body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Form::parse_parts(query.as_deref(), &body);
        }

        #[test]
        fn normalize_never_panics(h in ".*") {
            let _ = normalize_host(&h);
        }
    }
}
