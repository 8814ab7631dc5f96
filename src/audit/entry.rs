//! Audit entries: what callers hand in, and the exact bytes that are chained.
//!
//! Every entry has the same thirteen members, always present, `null` when a
//! kind has nothing to say (one rule, so an entry can never be re-serialised
//! "equivalently" with a member dropped):
//!
//! ```text
//! {"agent":…,"approver":…,"at":"2025-06-01T12:00:00.123456Z","decision":…,
//!  "details":{…},"hash":"<64 hex>","intent":…,"kind":"decision",
//!  "policy_hash":…,"prev_hash":"<64 hex>","rules":…,"seq":42,
//!  "upstream_status":…}
//! ```
//!
//! in the canonical form of [`super::canonical`] (the line breaks above are
//! for reading only). `hash` is
//! `SHA-256(prev_hash as 32 raw bytes ‖ canonical bytes of the entry without
//! its "hash" member)`, and entry 0's `prev_hash` is 32 zero bytes.
//!
//! The caller-supplied parts are masked and canonicalised by the appending
//! task ([`Prepared::new`]), so the single writer only fills in `seq`, `at`
//! and `prev_hash` and hashes: the work that cannot be parallelised is kept
//! to a few string copies and one SHA-256 per entry.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical::{self, write_string, write_value};
use super::mask::{mask_card_numbers, mask_value};
use super::AuditError;

/// A chain hash (SHA-256).
pub type Hash = [u8; 32];

/// The `prev_hash` of entry 0.
pub const GENESIS: Hash = [0u8; 32];

/// The members every entry carries, in canonical order.
pub(crate) const MEMBERS: [&str; 13] = [
    "agent",
    "approver",
    "at",
    "decision",
    "details",
    "hash",
    "intent",
    "kind",
    "policy_hash",
    "prev_hash",
    "rules",
    "seq",
    "upstream_status",
];

/// What an entry records (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// leash started (version, configuration summary).
    Started,
    /// A policy set was loaded or reloaded (its hash and files), or refused.
    PolicyLoaded,
    /// A request was decided; written before anything goes upstream.
    Decision,
    /// The upstream answered a forwarded request (or did not).
    Outcome,
    /// A REQUIRE_HUMAN decision opened a hold.
    HoldCreated,
    /// One approver approved or rejected a hold.
    Approval,
    /// A hold was released, rejected or expired.
    HoldResolved,
    /// A safe write worth recording (a beneficiary created), written before
    /// it is forwarded: `intent` says what was read.
    Event,
    /// A signed checkpoint of the chain head; written only by the log itself.
    Checkpoint,
    /// The log writes again after a write failure (a full disk, an I/O
    /// error): when it failed, why, and how many entries it refused in the
    /// gap. Written only by the log itself.
    Recovered,
    /// leash stopped on a signal (SIGTERM, Ctrl-C), after answering what it
    /// could: the last entry of a clean stop. A run whose chain ends
    /// without one was killed or crashed.
    Stopped,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Started,
        Kind::PolicyLoaded,
        Kind::Decision,
        Kind::Outcome,
        Kind::HoldCreated,
        Kind::Approval,
        Kind::HoldResolved,
        Kind::Event,
        Kind::Checkpoint,
        Kind::Recovered,
        Kind::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::PolicyLoaded => "policy_loaded",
            Kind::Decision => "decision",
            Kind::Outcome => "outcome",
            Kind::HoldCreated => "hold_created",
            Kind::Approval => "approval",
            Kind::HoldResolved => "hold_resolved",
            Kind::Event => "event",
            Kind::Checkpoint => "checkpoint",
            Kind::Recovered => "recovered",
            Kind::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown entry kind {s:?}"))
    }
}

/// An entry as the request path hands it in; the log adds `seq`, `at`,
/// `prev_hash` and `hash`.
///
/// Every string anywhere in it is masked for card numbers before hashing.
/// JSON values must not contain floating-point numbers (amounts and rates
/// are decimal strings in leash); `details` must be an object (or `null`,
/// stored as `{}`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub kind: Kind,
    pub agent: Option<String>,
    /// The intent(s) decided: one object, or an array for a request that
    /// carries several. Never the request body.
    pub intent: Option<Value>,
    /// `AUTO_APPROVE`, `REJECT`, `REQUIRE_HUMAN`; for holds and approvals,
    /// what was decided there (`approve`, `reject`, `approved`, `expired`…).
    pub decision: Option<String>,
    /// Every rule's verdict (the engine's `verdicts`).
    pub rules: Option<Value>,
    /// The hash of the policy set in force.
    pub policy_hash: Option<String>,
    /// Who approved or rejected (approval entries).
    pub approver: Option<String>,
    /// The upstream's status (outcome entries); `None` there means no answer.
    pub upstream_status: Option<u16>,
    /// Kind-specific data: `rule` (the deciding rule's priority), `hold_id`,
    /// `channel`, `fingerprint`, `fx`, `reservation`, `files`, `error`, …
    pub details: Value,
}

impl NewEntry {
    /// An entry of `kind` with every field empty.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            agent: None,
            intent: None,
            decision: None,
            rules: None,
            policy_hash: None,
            approver: None,
            upstream_status: None,
            details: Value::Object(Map::new()),
        }
    }

    /// leash started; `details` says which version with what configuration.
    pub fn started(details: Value) -> Self {
        Self::new(Kind::Started).with_details(details)
    }

    /// leash stopped cleanly; `details` says why and how it went.
    pub fn stopped(details: Value) -> Self {
        Self::new(Kind::Stopped).with_details(details)
    }

    /// A policy set was loaded: its hash; `details` lists the files (or, for
    /// a refused reload, the `error` and that the old set stays).
    pub fn policy_loaded(policy_hash: impl Into<String>, details: Value) -> Self {
        Self {
            policy_hash: Some(policy_hash.into()),
            ..Self::new(Kind::PolicyLoaded)
        }
        .with_details(details)
    }

    /// A request was decided. `deciding_rule` is the priority of the rule
    /// that decided (`X-Leash-Rule`), recorded as `details.rule`.
    pub fn decision(
        agent: impl Into<String>,
        intent: Value,
        decision: impl Into<String>,
        deciding_rule: Option<u32>,
        rules: Value,
        policy_hash: impl Into<String>,
    ) -> Self {
        Self {
            agent: Some(agent.into()),
            intent: Some(intent),
            decision: Some(decision.into()),
            rules: Some(rules),
            policy_hash: Some(policy_hash.into()),
            ..Self::new(Kind::Decision)
        }
        .with_detail("rule", deciding_rule.map_or(Value::Null, Value::from))
    }

    /// The upstream answered a forwarded request with `status`, or did not
    /// answer at all (`None`: timeout or reset, the reservation stays).
    pub fn outcome(agent: impl Into<String>, upstream_status: Option<u16>) -> Self {
        Self {
            agent: Some(agent.into()),
            upstream_status,
            ..Self::new(Kind::Outcome)
        }
    }

    /// A hold was created for a REQUIRE_HUMAN decision.
    pub fn hold_created(
        agent: impl Into<String>,
        hold_id: impl Into<String>,
        intent: Value,
    ) -> Self {
        Self {
            agent: Some(agent.into()),
            intent: Some(intent),
            decision: Some("REQUIRE_HUMAN".to_string()),
            ..Self::new(Kind::HoldCreated)
        }
        .with_detail("hold_id", Value::String(hold_id.into()))
    }

    /// An approver approved or rejected (`decision`: `approve` / `reject`)
    /// a hold, through `channel` (`slack`, `api`, `cli`).
    pub fn approval(
        hold_id: impl Into<String>,
        approver: impl Into<String>,
        decision: impl Into<String>,
        channel: impl Into<String>,
    ) -> Self {
        Self {
            approver: Some(approver.into()),
            decision: Some(decision.into()),
            ..Self::new(Kind::Approval)
        }
        .with_detail("hold_id", Value::String(hold_id.into()))
        .with_detail("channel", Value::String(channel.into()))
    }

    /// A hold ended: `released` (approved), `rejected` or `expired`.
    pub fn hold_resolved(hold_id: impl Into<String>, resolution: impl Into<String>) -> Self {
        Self {
            decision: Some(resolution.into()),
            ..Self::new(Kind::HoldResolved)
        }
        .with_detail("hold_id", Value::String(hold_id.into()))
    }

    pub fn with_agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    pub fn with_intent(mut self, intent: Value) -> Self {
        self.intent = Some(intent);
        self
    }

    pub fn with_policy_hash(mut self, policy_hash: impl Into<String>) -> Self {
        self.policy_hash = Some(policy_hash.into());
        self
    }

    /// Merges the members of `details` (an object) into the entry's details;
    /// anything else replaces them, and appending will refuse the entry.
    pub fn with_details(mut self, details: Value) -> Self {
        match (details, &mut self.details) {
            (Value::Object(add), Value::Object(current)) => current.extend(add),
            (Value::Null, _) => {}
            (other, _) => self.details = other,
        }
        self
    }

    /// Sets one member of `details`.
    pub fn with_detail(mut self, key: impl Into<String>, value: Value) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.into(), value);
        }
        self
    }
}

/// An entry with its caller-supplied members masked and canonicalised,
/// waiting for the writer to give it a place in the chain.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) kind: Kind,
    agent: Vec<u8>,
    approver: Vec<u8>,
    decision: Vec<u8>,
    details: Vec<u8>,
    intent: Vec<u8>,
    policy_hash: Vec<u8>,
    rules: Vec<u8>,
    upstream_status: Vec<u8>,
}

impl Prepared {
    /// Masks and canonicalises a caller's entry. Refuses `checkpoint`
    /// entries (only the log signs the head), floats, and non-object details.
    pub(crate) fn new(entry: NewEntry) -> Result<Self, AuditError> {
        if entry.kind == Kind::Checkpoint {
            return Err(AuditError::Invalid(
                "checkpoint entries are written by the audit log itself".into(),
            ));
        }
        let details = match entry.details {
            Value::Null => Value::Object(Map::new()),
            obj @ Value::Object(_) => obj,
            other => {
                return Err(AuditError::Invalid(format!(
                    "details must be a JSON object, not {other}"
                )))
            }
        };
        let text = |s: Option<String>| -> Vec<u8> {
            match s {
                Some(s) => {
                    let mut out = Vec::with_capacity(s.len() + 2);
                    write_string(&mask_card_numbers(&s), &mut out);
                    out
                }
                None => b"null".to_vec(),
            }
        };
        let json = |v: Option<Value>, field: &str| -> Result<Vec<u8>, AuditError> {
            let mut out = Vec::new();
            match v {
                Some(v) => write_value(&mask_value(v), &mut out)
                    .map_err(|e| AuditError::Invalid(e.under(field).to_string()))?,
                None => out.extend_from_slice(b"null"),
            }
            Ok(out)
        };
        Ok(Self {
            kind: entry.kind,
            agent: text(entry.agent),
            approver: text(entry.approver),
            decision: text(entry.decision),
            details: json(Some(details), "details")?,
            intent: json(entry.intent, "intent")?,
            policy_hash: text(entry.policy_hash),
            rules: json(entry.rules, "rules")?,
            upstream_status: entry
                .upstream_status
                .map_or_else(|| b"null".to_vec(), |s| s.to_string().into_bytes()),
        })
    }

    /// The log's own checkpoint entry: `details` is built by the log from
    /// hashes, keys and signatures, so it is not masked (a signature that
    /// happened to contain a Luhn-valid digit run must stay verifiable).
    pub(crate) fn checkpoint(details: &Value) -> Result<Self, AuditError> {
        let mut out = Vec::new();
        write_value(details, &mut out)
            .map_err(|e| AuditError::Invalid(e.under("details").to_string()))?;
        Ok(Self {
            kind: Kind::Checkpoint,
            agent: b"null".to_vec(),
            approver: b"null".to_vec(),
            decision: b"null".to_vec(),
            details: out,
            intent: b"null".to_vec(),
            policy_hash: b"null".to_vec(),
            rules: b"null".to_vec(),
            upstream_status: b"null".to_vec(),
        })
    }

    /// Gives the entry its place: returns its hash and the bytes to store.
    pub(crate) fn seal(&self, seq: u64, at: &str, prev: &Hash) -> (Hash, Vec<u8>) {
        let prev_hex = hex::encode(prev);
        let mut head = Vec::with_capacity(128 + self.details.len());
        let mut tail =
            Vec::with_capacity(256 + self.intent.len() + self.rules.len() + self.policy_hash.len());
        head.extend_from_slice(b"{\"agent\":");
        head.extend_from_slice(&self.agent);
        head.extend_from_slice(b",\"approver\":");
        head.extend_from_slice(&self.approver);
        head.extend_from_slice(b",\"at\":");
        write_string(at, &mut head);
        head.extend_from_slice(b",\"decision\":");
        head.extend_from_slice(&self.decision);
        head.extend_from_slice(b",\"details\":");
        head.extend_from_slice(&self.details);
        head.push(b',');
        // "hash" goes here in the stored form.
        tail.extend_from_slice(b"\"intent\":");
        tail.extend_from_slice(&self.intent);
        tail.extend_from_slice(b",\"kind\":\"");
        tail.extend_from_slice(self.kind.as_str().as_bytes());
        tail.extend_from_slice(b"\",\"policy_hash\":");
        tail.extend_from_slice(&self.policy_hash);
        tail.extend_from_slice(b",\"prev_hash\":\"");
        tail.extend_from_slice(prev_hex.as_bytes());
        tail.extend_from_slice(b"\",\"rules\":");
        tail.extend_from_slice(&self.rules);
        tail.extend_from_slice(b",\"seq\":");
        tail.extend_from_slice(seq.to_string().as_bytes());
        tail.extend_from_slice(b",\"upstream_status\":");
        tail.extend_from_slice(&self.upstream_status);
        tail.push(b'}');

        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(&head);
        hasher.update(&tail);
        let hash: Hash = hasher.finalize().into();

        let mut stored = head;
        stored.reserve(tail.len() + 76);
        stored.extend_from_slice(b"\"hash\":\"");
        stored.extend_from_slice(hex::encode(hash).as_bytes());
        stored.extend_from_slice(b"\",");
        stored.extend_from_slice(&tail);
        (hash, stored)
    }
}

/// The hash of a parsed entry, recomputed from its content: SHA-256 of
/// `prev` and the canonical bytes of everything but `hash`.
pub(crate) fn recompute_hash(
    entry: &Map<String, Value>,
    prev: &Hash,
) -> Result<Hash, canonical::CanonicalError> {
    let mut without = entry.clone();
    without.remove("hash");
    let bytes = canonical::to_canonical(&Value::Object(without))?;
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(&bytes);
    Ok(hasher.finalize().into())
}

/// Decodes a 64-character lowercase hex hash.
pub(crate) fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The sled key of entry `seq`: big-endian, so keys sort in chain order.
pub(crate) fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence number a sled key stands for.
pub(crate) fn seq_of_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The time format of `at`: RFC 3339, UTC, microseconds, `Z`. Fixed width,
/// so text order is time order.
pub(crate) fn format_at(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> NewEntry {
        NewEntry::decision(
            "growth-agent",
            json!({"amount": {"amount": "120.00", "currency": "EUR"}, "description": "card 4242 4242 4242 4242"}),
            "REJECT",
            Some(10),
            json!([{"priority": 10, "type": "cap", "triggered": true}]),
            "ab".repeat(32),
        )
    }

    #[test]
    fn sealed_bytes_are_canonical_and_hash_as_documented() {
        let prepared = Prepared::new(sample()).unwrap();
        let (hash, stored) = prepared.seal(7, "2025-06-01T12:00:00.000000Z", &GENESIS);
        let value: Value = serde_json::from_slice(&stored).unwrap();
        // The writer's fast path and the generic canonical form agree.
        assert_eq!(canonical::to_canonical(&value).unwrap(), stored);
        let map = value.as_object().unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut want = MEMBERS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(recompute_hash(map, &GENESIS).unwrap(), hash);
        assert_eq!(map["hash"], json!(hex::encode(hash)));
        assert_eq!(map["prev_hash"], json!("0".repeat(64)));
        assert_eq!(map["details"], json!({"rule": 10}));
        assert_eq!(
            map["intent"]["description"],
            json!("card **** **** **** 4242")
        );
    }

    #[test]
    fn refuses_what_cannot_be_chained() {
        assert!(Prepared::new(NewEntry::new(Kind::Checkpoint)).is_err());
        let float = NewEntry::started(json!({"fx": {"USD": 0.92}}));
        let err = Prepared::new(float).unwrap_err().to_string();
        assert!(err.contains("details.fx.USD"), "{err}");
        let not_object = NewEntry::new(Kind::Outcome).with_details(json!([1]));
        assert!(Prepared::new(not_object).is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
        }
        assert!("deleted".parse::<Kind>().is_err());
    }
}
