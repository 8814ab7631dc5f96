//! Intents: what a request means in money, and what a vendor adapter says
//! about a request.
//!
//! An adapter looks at a [`RequestView`] and answers with a
//! [`Classification`]: the request is a read or a known harmless write
//! (`Safe`), it moves money (`Spend`, one or more [`IntentDraft`]s), it is a
//! write the adapter does not know (`Unknown`), or it is a spend whose amount
//! cannot be read exactly (`Unreadable`). The adapter does not know which
//! agent is speaking or what time it is; the proxy completes each draft into
//! an [`Intent`] with [`IntentDraft::into_intent`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::money::Money;

/// Domain-separation prefix for [`Fingerprint`]: bumps if the framing ever
/// changes, so that old and new fingerprints can never be confused.
const FINGERPRINT_DOMAIN: &[u8] = b"leash.fingerprint.v1\0";

/// SHA-256 of a request's method, host, path (with query) and body.
///
/// Used to recognise a retry of the same request (SPEC §6: a retried held
/// request must not create a second hold, and an approved one is forwarded
/// exactly once). Each part is framed with its length as a big-endian `u64`,
/// so that moving bytes between parts always changes the digest: host
/// `api.example.com` + path `/v1/x` can never collide with host
/// `api.example.co` + path `m/v1/x`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprints one request.
    ///
    /// - `method` is taken as sent (HTTP methods are case-sensitive).
    /// - `host` is normalised like vendor matching does (lowercase, no port,
    ///   no trailing dot), so `API.Example.com:443` and `api.example.com`
    ///   are the same request.
    /// - `path` is the request target the upstream sees, **including the
    ///   query string** if there is one: vendors may read parameters from
    ///   the query too (form-encoded APIs often merge it with the body), so
    ///   two requests that differ only there are different requests. [`RequestView::fingerprint`] assembles it.
    /// - `body` should be the decoded body (what the adapter read), so that
    ///   the same request sent gzip-compressed or not is recognised as one.
    pub fn of(method: &str, host: &str, path: &str, body: &[u8]) -> Fingerprint {
        Self::acting_as(method, host, path, None, body)
    }

    /// [`Fingerprint::of`] for a request made on behalf of `account` (the
    /// value of the adapter's acting-account header,
    /// [`crate::adapters::Adapter::account_header`]): the same call for
    /// another account moves another account's money, so it is another
    /// request. Without an account the digest is exactly [`Fingerprint::of`]'s.
    pub fn acting_as(
        method: &str,
        host: &str,
        path: &str,
        account: Option<&str>,
        body: &[u8],
    ) -> Fingerprint {
        let host = crate::adapters::normalize_host(host);
        let mut h = Sha256::new();
        h.update(FINGERPRINT_DOMAIN);
        let mut frame = |part: &[u8]| {
            let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
            h.update(len.to_be_bytes());
            h.update(part);
        };
        for part in [method.as_bytes(), host.as_bytes(), path.as_bytes(), body] {
            frame(part);
        }
        if let Some(account) = account {
            frame(b"account");
            frame(account.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&h.finalize());
        Fingerprint(out)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// One movement or commitment of money (SPEC §4.1), complete with who asked
/// and when. This is what policies evaluate and the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intent {
    /// The agent that sent the request (SPEC §2).
    pub agent: String,
    /// The name of the vendor adapter that read it
    /// ([`crate::adapters::Adapter::name`]).
    pub vendor: String,
    /// What the request does (`payment_intent.create`, `refund.create`).
    pub operation: String,
    /// The exact amount in major units, if it could be read.
    pub amount: Option<Money>,
    /// Who receives the money (customer, connected account, IBAN, ...).
    pub beneficiary: Option<String>,
    /// Default category of the operation (`payment`, `refund`, ...).
    pub category: String,
    /// The request's idempotency key, if it carried one.
    pub idempotency_key: Option<String>,
    /// The account the request acts for (the value of the adapter's
    /// [`account_header`](crate::adapters::Adapter::account_header)), when
    /// the vendor has one: policies filter on it (`accounts:`) and the audit
    /// entry names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Where values not in the request came from, by field:
    /// `currency: "eur (GET /v1/charges/ch_1)"`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sources: std::collections::BTreeMap<String, String>,
    /// Identity of the exact request, for recognising retries.
    pub fingerprint: Fingerprint,
    /// When leash read the request.
    pub at: DateTime<Utc>,
}

/// An intent as an adapter sees it: everything but the agent, the request
/// fingerprint and the time, which the proxy knows and the adapter does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntentDraft {
    /// The vendor adapter's name.
    pub vendor: String,
    /// What the request does.
    pub operation: String,
    /// The exact amount, if read.
    pub amount: Option<Money>,
    /// Who receives the money.
    pub beneficiary: Option<String>,
    /// Default category.
    pub category: String,
    /// The request's idempotency key.
    pub idempotency_key: Option<String>,
    /// Where looked-up values came from (see [`Intent::sources`]).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sources: std::collections::BTreeMap<String, String>,
}

impl IntentDraft {
    /// Completes the draft with what only the proxy knows.
    pub fn into_intent(self, agent: &str, fingerprint: Fingerprint, at: DateTime<Utc>) -> Intent {
        Intent {
            agent: agent.to_owned(),
            vendor: self.vendor,
            operation: self.operation,
            amount: self.amount,
            beneficiary: self.beneficiary,
            category: self.category,
            idempotency_key: self.idempotency_key,
            sources: self.sources,
            account: None,
            fingerprint,
            at,
        }
    }
}

/// What an adapter says about one request (SPEC §4.2).
///
/// `Unknown` and `Unreadable` are never treated as `Safe` anywhere: both go to
/// the policy stack's `unknown` / `unreadable` action (REQUIRE_HUMAN unless
/// the stack says otherwise). An adapter that is unsure answers one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A read, or a write the adapter knows moves no money. Forwarded.
    Safe {
        /// What the request does (`read`, `customer.create`).
        operation: String,
    },
    /// The request moves or commits money. Never empty: build it with
    /// [`Classification::spend`], which refuses an empty list.
    Spend(Vec<IntentDraft>),
    /// A write the adapter does not recognise.
    Unknown {
        /// Best name for the operation (`unknown` when the path is unknown).
        operation: String,
        /// Why it is unknown, naming the path or field.
        reason: String,
    },
    /// A spend whose amount, currency or body cannot be read exactly.
    Unreadable {
        /// The spend operation (`refund.create`).
        operation: String,
        /// What could not be read, naming the field.
        reason: String,
    },
    /// A request leash can read in more than one way (SPEC §4.2): duplicate
    /// form keys, a field in both query and body, two copies of a header an
    /// adapter reads, a `Connection` header naming one, a method override.
    ///
    /// Unlike `Unreadable` (information is missing, a human may supply it),
    /// here leash cannot say *which* request the vendor will execute, so no
    /// one can approve it: it is refused (`REJECT`), never held, whatever
    /// the policy or stack mode says.
    Ambiguous {
        /// The operation as leash read it (best effort, for the record).
        operation: String,
        /// What was read two ways, naming the field or header.
        reason: String,
    },
}

impl Classification {
    /// `Spend(drafts)`, or `Unreadable` if `drafts` is empty: a spend with no
    /// intent would otherwise be evaluated as nothing at all.
    pub fn spend(operation: &str, drafts: Vec<IntentDraft>) -> Classification {
        if drafts.is_empty() {
            Classification::Unreadable {
                operation: operation.to_owned(),
                reason: "the request was read as a spend but yielded no intent".to_owned(),
            }
        } else {
            Classification::Spend(drafts)
        }
    }

    /// `"safe"`, `"spend"`, `"unknown"`, `"unreadable"` or `"ambiguous"`
    /// (for metrics and the audit log).
    pub fn kind(&self) -> &'static str {
        match self {
            Classification::Safe { .. } => "safe",
            Classification::Spend(_) => "spend",
            Classification::Unknown { .. } => "unknown",
            Classification::Unreadable { .. } => "unreadable",
            Classification::Ambiguous { .. } => "ambiguous",
        }
    }

    /// The operation name; for a spend, that of its first intent.
    pub fn operation(&self) -> &str {
        match self {
            Classification::Safe { operation }
            | Classification::Unknown { operation, .. }
            | Classification::Unreadable { operation, .. }
            | Classification::Ambiguous { operation, .. } => operation,
            Classification::Spend(drafts) => drafts
                .first()
                .map(|d| d.operation.as_str())
                .unwrap_or("spend"),
        }
    }
}

/// The parts of an HTTP request an adapter may look at, with plain types so
/// that adapters do not depend on the proxy's HTTP stack.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method as sent (`POST`). Case-sensitive, as in HTTP.
    pub method: &'a str,
    /// The target host (any case, port and trailing dot allowed).
    pub host: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string without its `?`, if the target had one.
    pub query: Option<&'a str>,
    /// The `Content-Type` header value.
    pub content_type: Option<&'a str>,
    /// The value of the adapter's idempotency header
    /// ([`crate::adapters::Adapter::idempotency_header`], `Idempotency-Key`
    /// by default).
    pub idempotency_key: Option<&'a str>,
    /// The account the request acts as, when the vendor has such a header
    /// (the adapter's
    /// [`account_header`](crate::adapters::Adapter::account_header)). Part
    /// of the fingerprint.
    pub account: Option<&'a str>,
    /// The adapter's [`read_headers`](crate::adapters::Adapter::read_headers)
    /// the request carried (lowercase names), each once: two copies make
    /// the request ambiguous before the adapter is asked. Read them with
    /// [`RequestView::header`].
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, already decoded with [`crate::body::decode_for_reading`].
    pub body: &'a [u8],
    /// What leash looked up for this request at the adapter's asking
    /// ([`crate::adapters::Adapter::lookups`]); empty at first.
    pub facts: &'a Facts,
}

/// A read the adapter needs before it can classify a request: what the
/// request leaves out (a refund's currency is its charge's), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The path (and query) to read on the request's own host, with the
    /// agent's own credentials and acting account. Facts are keyed by it,
    /// so two lookups with different bodies need different paths.
    pub path: String,
    /// `None`: a GET. `Some(json)`: a POST of this JSON body, for a vendor
    /// whose reads are POSTs (Google Ads' `googleAds:search`).
    pub body: Option<Vec<u8>>,
    /// Why, for logs and the reason of an unreadable request.
    pub why: String,
}

/// The answers to [`Lookup`]s, by path: the vendor's JSON, or why there is
/// none (an error status, a timeout, a body that is not strict JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    got: std::collections::BTreeMap<String, Result<crate::adapters::json::Json, String>>,
    /// The objects learned from a vendor's answer rather than looked up,
    /// with the request that answer was to (`POST /v1/payment_intents`).
    learned: std::collections::BTreeMap<String, String>,
    /// When leash read the request (set by the proxy): what an amount that
    /// runs until a date (an EC2 capacity reservation's `EndDate`) is
    /// counted from. Passed in, so adapters stay clock-free.
    read_at: Option<DateTime<Utc>>,
}

/// No facts: what a request is classified with before any lookup.
pub static NO_FACTS: Facts = Facts {
    got: std::collections::BTreeMap::new(),
    learned: std::collections::BTreeMap::new(),
    read_at: None,
};

impl Facts {
    /// When leash read the request, if the proxy said (see `read_at`).
    pub fn read_at(&self) -> Option<DateTime<Utc>> {
        self.read_at
    }

    /// Records when leash read the request.
    pub fn set_read_at(&mut self, at: DateTime<Utc>) {
        self.read_at = Some(at);
    }

    /// The looked-up object at `path`, if the lookup succeeded.
    pub fn get(&self, path: &str) -> Option<&crate::adapters::json::Json> {
        self.got.get(path).and_then(|r| r.as_ref().ok())
    }

    /// Why the lookup of `path` failed, if it did.
    pub fn failure(&self, path: &str) -> Option<&str> {
        self.got
            .get(path)
            .and_then(|r| r.as_ref().err())
            .map(String::as_str)
    }

    /// Whether `path` was looked up (successfully or not).
    pub fn has(&self, path: &str) -> bool {
        self.got.contains_key(path)
    }

    /// The answer to the lookup of `path` (or why there is none).
    pub fn insert(&mut self, path: String, got: Result<crate::adapters::json::Json, String>) {
        self.learned.remove(&path);
        self.got.insert(path, got);
    }

    /// The object at `path`, learned from the vendor's answer to `from`
    /// (`POST /v1/payment_intents`) instead of looked up.
    pub fn insert_learned(
        &mut self,
        path: String,
        json: crate::adapters::json::Json,
        from: String,
    ) {
        self.learned.insert(path.clone(), from);
        self.got.insert(path, Ok(json));
    }

    /// Where the object at `path` came from, for an intent's `sources`:
    /// `GET /v1/charges/ch_1`, or `the answer to POST /v1/charges` when it
    /// was learned.
    pub fn source(&self, path: &str) -> String {
        match self.learned.get(path) {
            Some(from) => format!("the answer to {from}"),
            None => format!("GET {path}"),
        }
    }
}

impl RequestView<'_> {
    /// The value of header `name` (lowercase), if it is one of the
    /// adapter's read headers and the request carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The request's fingerprint: method, host, path *with* `?query` when
    /// present, the decoded body, and the account it acts as.
    pub fn fingerprint(&self) -> Fingerprint {
        let target = match self.query {
            Some(q) => std::borrow::Cow::Owned(format!("{}?{}", self.path, q)),
            None => std::borrow::Cow::Borrowed(self.path),
        };
        Fingerprint::acting_as(self.method, self.host, &target, self.account, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    #[test]
    fn fingerprint_framing_separates_parts() {
        let a = Fingerprint::of("POST", "api.example.com", "/v1/x", b"");
        let b = Fingerprint::of("POST", "api.example.co", "m/v1/x", b"");
        let c = Fingerprint::of("POST", "api.example.com", "/v1/", b"x");
        let d = Fingerprint::of("POS", "Tapi.example.com", "/v1/x", b"");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a, Fingerprint::of("POST", "api.example.com", "/v1/x", b""));
    }

    #[test]
    fn fingerprint_normalises_host_only() {
        let a = Fingerprint::of("POST", "api.example.com", "/v1/refunds", b"amount=1");
        assert_eq!(
            a,
            Fingerprint::of("POST", "API.Example.com.:443", "/v1/refunds", b"amount=1")
        );
        assert_ne!(
            a,
            Fingerprint::of("post", "api.example.com", "/v1/refunds", b"amount=1")
        );
        assert_ne!(
            a,
            Fingerprint::of("POST", "api.example.com", "/V1/refunds", b"amount=1")
        );
    }

    #[test]
    fn fingerprint_known_value_and_hex() {
        let f = Fingerprint::of("GET", "h", "/", b"");
        let mut h = Sha256::new();
        h.update(FINGERPRINT_DOMAIN);
        for p in [&b"GET"[..], b"h", b"/", b""] {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        assert_eq!(f.to_hex(), hex::encode(h.finalize()));
        assert_eq!(f.to_string().len(), 64);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            format!("\"{}\"", f.to_hex())
        );
    }

    #[test]
    fn view_fingerprint_includes_query() {
        let mut v = RequestView {
            method: "POST",
            host: "api.example.com",
            path: "/v1/refunds",
            query: None,
            content_type: None,
            idempotency_key: None,
            account: None,
            headers: &[],
            body: b"amount=1",
            facts: &NO_FACTS,
        };
        let plain = v.fingerprint();
        assert_eq!(
            plain,
            Fingerprint::of("POST", "api.example.com", "/v1/refunds", b"amount=1"),
            "no account: the digest is unchanged"
        );
        v.query = Some("amount=9");
        assert_ne!(plain, v.fingerprint());
        v.query = Some("");
        assert_ne!(plain, v.fingerprint());
    }

    #[test]
    fn the_account_a_request_acts_as_is_part_of_its_fingerprint() {
        let mut v = RequestView {
            method: "POST",
            host: "api.example.com",
            path: "/v1/payouts",
            query: None,
            content_type: None,
            idempotency_key: None,
            account: None,
            headers: &[],
            body: b"amount=100&currency=eur",
            facts: &NO_FACTS,
        };
        let own = v.fingerprint();
        v.account = Some("acct_1");
        let a = v.fingerprint();
        v.account = Some("acct_2");
        let b = v.fingerprint();
        v.account = Some("");
        let empty = v.fingerprint();
        assert!(own != a && a != b && own != empty && a != empty);
        // Framed: moving bytes between body and account changes the digest.
        let moved = Fingerprint::acting_as(
            "POST",
            "api.example.com",
            "/v1/payouts",
            Some("1"),
            b"amount=100&currency=euracct_",
        );
        assert_ne!(a, moved);
    }

    #[test]
    fn draft_into_intent_serializes() {
        let eur = Currency::parse("eur").unwrap();
        let draft = IntentDraft {
            vendor: "acme".into(),
            operation: "refund.create".into(),
            amount: Some(Money::new(Decimal::new(1250, 2), eur)),
            beneficiary: Some("ch_1".into()),
            category: "refund".into(),
            idempotency_key: Some("k1".into()),
            sources: Default::default(),
        };
        let fp = Fingerprint::of("POST", "api.example.com", "/v1/refunds", b"");
        let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let intent = draft.into_intent("growth-agent", fp, at);
        let v: serde_json::Value = serde_json::to_value(&intent).unwrap();
        assert_eq!(v["agent"], "growth-agent");
        assert_eq!(v["amount"]["amount"], "12.50");
        assert_eq!(v["amount"]["currency"], "EUR");
        assert_eq!(v["fingerprint"], fp.to_hex());
        assert_eq!(v["at"], "2025-01-02T03:04:05Z");
        assert_eq!(v["beneficiary"], "ch_1");
    }

    #[test]
    fn classification_kind_and_empty_spend() {
        assert_eq!(
            Classification::Safe {
                operation: "read".into()
            }
            .kind(),
            "safe"
        );
        let empty = Classification::spend("x.create", vec![]);
        assert_eq!(empty.kind(), "unreadable");
        assert_eq!(empty.operation(), "x.create");
        let ambiguous = Classification::Ambiguous {
            operation: "refund.create".into(),
            reason: "two Content-Type headers".into(),
        };
        assert_eq!(ambiguous.kind(), "ambiguous");
        assert_eq!(ambiguous.operation(), "refund.create");
    }
}
