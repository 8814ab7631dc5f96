//! `leash policy replay`: re-decide the audited requests under a candidate
//! policy set, and list every decision that would change — the backtest ops
//! teams run before shipping a policy change (like a fraud tool's rule
//! backtests).
//!
//! Each audited decision is re-decided at the clock time it was made, with the
//! spend it saw: spend is rebuilt from the chain itself, in order, from what
//! actually happened, as the live ledger counted it: forwarded decisions
//! reserve; a held request reserves when its hold is released (the
//! `hold_resolved` entry `releasing`, at that entry's time, with the amount
//! the approvers stated when leash could read none); `outcome` entries that
//! released a reservation remove it. So a candidate that would have rejected
//! an earlier request does not change the spend later requests are judged
//! against — the report shows each decision's change in isolation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::intent::{Fingerprint, Intent};
use crate::money::Money;
use crate::policy::engine::{self, Context, SpendEvent, Subject};
use crate::policy::model::{Action, PolicySet};
use crate::spend::buckets::{totals, Buckets};

/// A decision the candidate set would make differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub agent: String,
    /// `operation amount` as recorded.
    pub what: String,
    pub before: (String, Option<u32>),
    pub after: (Action, Option<u32>),
    pub reason: String,
}

/// The result of a replay.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub replayed: usize,
    /// Decision entries that could not be re-decided (and why).
    pub skipped: Vec<(u64, String)>,
    pub changes: Vec<Change>,
}

/// Replays `entries` (the whole chain, in order) under `candidate`,
/// reporting decisions with `seq >= since`.
pub fn replay(
    entries: impl IntoIterator<Item = Value>,
    candidate: &PolicySet,
    since: u64,
) -> Report {
    let mut report = Report::default();
    // Spend as it was: the events each forwarded decision reserved, and
    // their running sums per cap window (what the ledger kept).
    let mut spend: BTreeMap<u64, Vec<SpendEvent>> = BTreeMap::new();
    let mut buckets = Buckets::new();
    // Decisions that opened a hold, by decision seq, and holds by id: what
    // a release reserves.
    let mut held: BTreeMap<u64, Recorded> = BTreeMap::new();
    let mut holds: BTreeMap<String, u64> = BTreeMap::new();
    for entry in entries {
        let Some(seq) = entry.get("seq").and_then(Value::as_u64) else {
            continue;
        };
        match entry.get("kind").and_then(Value::as_str) {
            Some("decision") => {
                let recorded = match Recorded::read(&entry) {
                    Ok(recorded) => recorded,
                    Err(why) => {
                        if seq >= since {
                            report.skipped.push((seq, why));
                        }
                        continue;
                    }
                };
                buckets.advance(recorded.at);
                if seq >= since {
                    report.replayed += 1;
                    if let Some(change) = redecide(seq, &recorded, candidate, &mut buckets, &spend)
                    {
                        report.changes.push(change);
                    }
                }
                if recorded.forwarded {
                    let events: Vec<SpendEvent> =
                        recorded.intents.iter().filter_map(SpendEvent::of).collect();
                    if !events.is_empty() {
                        for event in &events {
                            buckets.add(event);
                        }
                        spend.insert(seq, events);
                    }
                } else if recorded.decision == Action::RequireHuman.as_str() {
                    held.insert(seq, recorded);
                }
            }
            Some("hold_created") => {
                let details = entry.get("details");
                let id = details
                    .and_then(|d| d.get("hold_id"))
                    .and_then(Value::as_str);
                let decision_seq = details
                    .and_then(|d| d.get("decision_seq"))
                    .and_then(Value::as_u64);
                if let (Some(id), Some(decision_seq)) = (id, decision_seq) {
                    holds.insert(id.to_string(), decision_seq);
                }
            }
            Some("hold_resolved")
                if entry.get("decision").and_then(Value::as_str) == Some("releasing") =>
            {
                let Some((decision_seq, events)) = released_spend(&entry, &holds, &held) else {
                    continue;
                };
                if let Some(at) = events.first().map(|e| e.at) {
                    buckets.advance(at);
                }
                for event in &events {
                    buckets.add(event);
                }
                spend.entry(decision_seq).or_default().extend(events);
            }
            Some("outcome") => {
                let details = entry.get("details");
                let released = details
                    .and_then(|d| d.get("reservation"))
                    .and_then(Value::as_str)
                    == Some("released");
                let decision_seq = details
                    .and_then(|d| d.get("decision_seq"))
                    .and_then(Value::as_u64);
                if let (true, Some(decision_seq)) = (released, decision_seq) {
                    for event in spend.remove(&decision_seq).iter().flatten() {
                        buckets.remove(event);
                    }
                }
            }
            _ => {}
        }
    }
    report
}

/// What releasing a hold reserved, as the live leash reserved it (see
/// `proxy::held`): the held decision's intents, or the amount the
/// approvers stated for a request leash could not read, counted at the
/// release's time. `None`: not a release this chain explains (a hold of a
/// decision outside it, a release without a readable time).
fn released_spend(
    entry: &Value,
    holds: &BTreeMap<String, u64>,
    held: &BTreeMap<u64, Recorded>,
) -> Option<(u64, Vec<SpendEvent>)> {
    let details = entry.get("details")?;
    let id = details.get("hold_id")?.as_str()?;
    let decision_seq = *holds.get(id)?;
    let recorded = held.get(&decision_seq)?;
    let at = entry
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let stated = match (
        details.get("stated_amount").and_then(Value::as_str),
        details.get("stated_currency").and_then(Value::as_str),
    ) {
        (Some(amount), Some(currency)) => {
            let amount = amount.parse::<rust_decimal::Decimal>().ok()?;
            let currency = crate::money::Currency::parse(currency).ok()?;
            Some(Money::new(amount, currency))
        }
        _ => None,
    };
    let intents: Vec<Intent> = match stated {
        Some(stated) => vec![crate::gate::stated_intent(
            &recorded.vendor,
            &recorded.operation,
            &recorded.agent,
            stated,
            Fingerprint::of("REPLAY", "", "", b""),
            at,
        )],
        None => recorded
            .intents
            .iter()
            .cloned()
            .map(|mut intent| {
                intent.at = at;
                intent
            })
            .collect(),
    };
    Some((
        decision_seq,
        intents.iter().filter_map(SpendEvent::of).collect(),
    ))
}

/// A `decision` entry, read back.
struct Recorded {
    at: DateTime<Utc>,
    agent: String,
    class: String,
    intents: Vec<Intent>,
    /// The vendor, for a decision without intents (unknown, unreadable).
    vendor: String,
    operation: String,
    reason: String,
    decision: String,
    rule: Option<u32>,
    forwarded: bool,
}

impl Recorded {
    fn read(entry: &Value) -> Result<Self, String> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let details = entry.get("details").cloned().unwrap_or(Value::Null);
        let at = text(entry.get("at"))
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or("no readable `at`")?;
        let agent = text(entry.get("agent")).ok_or("no agent")?;
        let class = text(details.get("class")).ok_or("no details.class")?;
        let decision = text(entry.get("decision")).ok_or("no decision")?;
        let rule = details
            .get("rule")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok());
        let forwarded = details
            .get("reservation")
            .and_then(Value::as_array)
            .is_some_and(|ids| !ids.is_empty())
            || decision == Action::AutoApprove.as_str()
            || details.get("shadow").and_then(Value::as_bool) == Some(true);
        let intent = entry.get("intent").cloned().unwrap_or(Value::Null);
        let intents = match (class.as_str(), &intent) {
            ("spend", Value::Array(items)) => items
                .iter()
                .map(|item| read_intent(item, &agent, at))
                .collect::<Result<Vec<_>, _>>()?,
            ("spend", _) => return Err("a spend decision without intents".to_string()),
            _ => Vec::new(),
        };
        Ok(Self {
            at,
            agent,
            class,
            vendor: text(intent.get("vendor"))
                .or_else(|| intents.first().map(|i: &Intent| i.vendor.clone()))
                .unwrap_or_default(),
            intents,
            operation: text(intent.get("operation"))
                .or_else(|| text(details.get("operation")))
                .unwrap_or_default(),
            reason: text(intent.get("reason")).unwrap_or_default(),
            decision,
            rule,
            forwarded,
        })
    }
}

fn read_intent(item: &Value, agent: &str, at: DateTime<Utc>) -> Result<Intent, String> {
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
    let amount = match item.get("amount") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value::<Money>(value.clone())
                .map_err(|e| format!("intent amount: {e}"))?,
        ),
    };
    Ok(Intent {
        agent: text("agent").unwrap_or_else(|| agent.to_string()),
        vendor: text("vendor").ok_or("intent without vendor")?,
        operation: text("operation").ok_or("intent without operation")?,
        amount,
        beneficiary: text("beneficiary"),
        category: text("category").unwrap_or_default(),
        idempotency_key: text("idempotency_key"),
        sources: Default::default(),
        account: text("account"),
        fingerprint: Fingerprint::of("REPLAY", "", "", b""),
        at,
    })
}

fn redecide(
    seq: u64,
    recorded: &Recorded,
    candidate: &PolicySet,
    buckets: &mut Buckets,
    spend: &BTreeMap<u64, Vec<SpendEvent>>,
) -> Option<Change> {
    if recorded.class == "ambiguous" {
        // Refused whatever the policy says (SPEC §4.2): no candidate can
        // change it.
        return None;
    }
    let stack = candidate.merged_for(&recorded.agent);
    let subjects: Vec<Subject<'_>> = match recorded.class.as_str() {
        "spend" => recorded.intents.iter().map(Subject::Spend).collect(),
        "unknown" => vec![Subject::Unknown {
            operation: &recorded.operation,
            reason: &recorded.reason,
        }],
        _ => vec![Subject::Unreadable {
            operation: &recorded.operation,
            reason: &recorded.reason,
        }],
    };
    let queries = engine::cap_queries(&stack, &subjects, recorded.at);
    for query in &queries {
        // A zone first asked about: counted from the spend so far, once.
        buckets.track(query.period.tz, spend.values().flatten());
    }
    let spent = totals(buckets, &queries);
    let ctx = Context {
        now: recorded.at,
        spent: &spent,
        fx: &candidate.fx,
        registry: &candidate.registry,
    };
    let decisions = engine::decide_request(&stack, &subjects, &ctx);
    let mut decision = engine::deciding(&decisions)?;
    // As the proxy decides: a hold nobody listed can release is refused.
    crate::holds::approvals::refuse_unreleasable(&mut decision, &candidate.approvers);
    let decision = &decision;
    let same =
        decision.action.as_str() == recorded.decision && decision.deciding_rule == recorded.rule;
    if same {
        return None;
    }
    let amounts: Vec<String> = recorded
        .intents
        .iter()
        .filter_map(|i| i.amount.map(|m| m.to_string()))
        .collect();
    Some(Change {
        seq,
        at: recorded.at,
        agent: recorded.agent.clone(),
        what: format!("{} {}", recorded.operation, amounts.join(" + "))
            .trim()
            .to_string(),
        before: (recorded.decision.clone(), recorded.rule),
        after: (decision.action, decision.deciding_rule),
        reason: decision.reason.clone(),
    })
}
