//! The reading side: pages of entries (export, tail, `GET /v1/audit`) and a
//! one-line form for humans.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::archive::Chain;
use super::log::read_error;
use super::AuditError;
use crate::store::Store;

/// Up to `limit` entries in chain order, starting after entry `after` (from
/// the first entry when `None`), as stored.
///
/// Entries are returned as they are, without verification: a page is for
/// reading, `verify` is for trusting. An entry that is not JSON at all is an
/// error naming it rather than a silently shorter page.
pub fn read_entries(
    store: &Store,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Value>, AuditError> {
    let start = match after {
        None => 0,
        Some(seq) => match seq.checked_add(1) {
            Some(start) => start,
            None => return Ok(Vec::new()),
        },
    };
    let chain = Chain::open(store).map_err(read_error)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    for item in chain.forward(start).take(limit) {
        let (seq, v) = item.map_err(read_error)?;
        let value = serde_json::from_slice(&v).map_err(|e| AuditError::Corrupt {
            seq,
            reason: format!("not JSON ({e}); run `leash audit verify`"),
        })?;
        out.push(value);
    }
    Ok(out)
}

/// What the end of the chain says about spend reservations: the time of
/// its last entry, and every reservation id that an entry written since
/// `since` names (a `decision`'s, or a hold's release, in
/// `details.reservation`). Read from the end backwards, stopping at the
/// first entry older than `since`: what a restart needs to tell the
/// reservations whose decision reached the disk from those whose decision
/// did not (and so was never forwarded).
pub fn reservations_named_since(
    store: &Store,
    since: DateTime<Utc>,
) -> Result<ChainTail, AuditError> {
    let chain = Chain::open(store).map_err(read_error)?;
    let mut tail = ChainTail::default();
    for item in chain.backward().map_err(read_error)? {
        let (seq, v) = item.map_err(read_error)?;
        let entry: Value = serde_json::from_slice(&v).map_err(|e| AuditError::Corrupt {
            seq,
            reason: format!("not JSON ({e}); run `leash audit verify`"),
        })?;
        let at = entry
            .get("at")
            .and_then(Value::as_str)
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc));
        let Some(at) = at else {
            // Not a chain this reading can judge by: say nothing rather
            // than guess (`leash audit verify` says what is wrong with it).
            tail.complete = false;
            return Ok(tail);
        };
        tail.last_at.get_or_insert(at);
        if at < since {
            break;
        }
        let named = entry.pointer("/details/reservation");
        if let Some(named) = named.and_then(Value::as_array) {
            for id in named {
                if let Some(id) = id.as_u64() {
                    tail.reservations.insert(id);
                }
            }
        } else if entry.get("kind").and_then(Value::as_str) == Some("hold_resolved")
            && entry.get("decision").and_then(Value::as_str) == Some("releasing")
        {
            // A release written by a leash that did not yet name its
            // reservation: what it reserved cannot be told apart.
            tail.complete = false;
        }
    }
    Ok(tail)
}

/// See [`reservations_named_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTail {
    /// When the chain's last entry was written; `None` for an empty chain.
    pub last_at: Option<DateTime<Utc>>,
    /// The reservation ids the entries read name.
    pub reservations: BTreeSet<u64>,
    /// Every entry read could be judged: each has a time, and every
    /// release names what it reserved. When not, nothing may be released
    /// on the tail's word.
    pub complete: bool,
}

impl Default for ChainTail {
    fn default() -> Self {
        ChainTail {
            last_at: None,
            reservations: BTreeSet::new(),
            complete: true,
        }
    }
}

/// One entry as one line for `leash audit tail`: sequence number, time (to
/// the second), kind, then whatever the entry has of agent, decision,
/// deciding rule, amount, approver, upstream status and hold, and the first
/// 12 hex digits of its hash.
///
/// ```text
///       42  2025-06-01T12:00:00Z  decision       growth-agent REJECT rule=10 amount=1200.00 EUR  #3f5a9c01d2e4
/// ```
pub fn one_line(entry: &Value) -> String {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    let seq = entry
        .get("seq")
        .and_then(Value::as_u64)
        .map_or_else(|| "?".to_string(), |s| s.to_string());
    let at = text("at").map_or_else(
        || "-".to_string(),
        |at| match at.get(..19) {
            Some(seconds) => format!("{seconds}Z"),
            None => at.to_string(),
        },
    );
    let kind = text("kind").unwrap_or("?");
    let details = entry.get("details");
    let detail = |name: &str| details.and_then(|d| d.get(name));

    let mut parts: Vec<String> = Vec::new();
    if let Some(agent) = text("agent") {
        parts.push(agent.to_string());
    }
    if let Some(decision) = text("decision") {
        parts.push(decision.to_string());
    }
    if let Some(rule) = detail("rule").filter(|r| !r.is_null()) {
        parts.push(format!("rule={}", scalar(rule)));
    }
    if let Some(amount) = entry.get("intent").and_then(amount_of) {
        parts.push(format!("amount={amount}"));
    }
    if let Some(approver) = text("approver") {
        parts.push(format!("approver={approver}"));
    }
    if kind == "outcome" {
        match entry.get("upstream_status").and_then(Value::as_u64) {
            Some(status) => parts.push(format!("status={status}")),
            None => parts.push("status=none".to_string()),
        }
    }
    if let Some(hold) = detail("hold_id").and_then(Value::as_str) {
        parts.push(format!("hold={hold}"));
    }
    if let Some(channel) = detail("channel").and_then(Value::as_str) {
        parts.push(format!("via={channel}"));
    }
    if let Some(policy) = text("policy_hash").filter(|_| kind == "policy_loaded") {
        parts.push(format!("policy={}", policy.get(..12).unwrap_or(policy)));
    }
    if let Some(signed) = detail("checkpoint").and_then(|c| c.get("seq")) {
        parts.push(format!("signs=#{}", scalar(signed)));
    }
    let hash = text("hash").map_or("?", |h| h.get(..12).unwrap_or(h));
    format!(
        "{seq:>8}  {at:<20}  {kind:<13}  {}  #{hash}",
        parts.join(" ")
    )
}

/// `120.00 EUR` from an intent (or the first of several, `+N` more).
fn amount_of(intent: &Value) -> Option<String> {
    if let Value::Array(items) = intent {
        let first = items.first().and_then(amount_of)?;
        return Some(match items.len() {
            0 | 1 => first,
            n => format!("{first} (+{} more)", n - 1),
        });
    }
    let money = intent.get("amount")?;
    let (amount, currency) = match money {
        Value::Object(_) => (money.get("amount")?, money.get("currency")),
        _ => (money, intent.get("currency")),
    };
    Some(match currency {
        Some(currency) => format!("{} {}", scalar(amount), scalar(currency)),
        None => scalar(amount),
    })
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_reads_like_a_log_line() {
        let entry = json!({
            "seq": 42, "at": "2025-06-01T12:00:00.123456Z", "kind": "decision",
            "agent": "growth-agent", "decision": "REJECT", "details": {"rule": 10},
            "intent": {"amount": {"amount": "1200.00", "currency": "EUR"}},
            "approver": null, "upstream_status": null, "policy_hash": "ab",
            "hash": "3f5a9c01d2e4ffffffff",
        });
        assert_eq!(
            one_line(&entry),
            "      42  2025-06-01T12:00:00Z  decision       growth-agent REJECT rule=10 amount=1200.00 EUR  #3f5a9c01d2e4"
        );
        let outcome = json!({"seq": 43, "at": "2025-06-01T12:00:01.000000Z", "kind": "outcome",
            "agent": "a", "upstream_status": 402, "details": {}, "hash": "00"});
        assert!(one_line(&outcome).contains("a status=402"));
        let garbage = json!("not an entry");
        assert!(one_line(&garbage).starts_with("       ?"));
    }
}
