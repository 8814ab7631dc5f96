//! The policy engine: a pure function from (merged stack, intent, clock,
//! prior spend, fx table, beneficiary registry) to a decision (SPEC §5.3).
//!
//! No I/O and no clock reads happen here: the time and the spend come in as
//! arguments, so every decision can be replayed and the engine tested
//! exhaustively.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::model::{Action, BeneficiaryRegistry, FxTable, MergedStack};
use crate::intent::Intent;
use crate::money::{Currency, Money};

/// One unit of spend already counted against caps: an approved (reserved or
/// settled) intent. Released reservations are not passed to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendEvent {
    pub at: DateTime<Utc>,
    pub agent: String,
    pub vendor: String,
    pub operation: String,
    pub category: String,
    pub beneficiary: Option<String>,
    pub amount: Money,
}

impl SpendEvent {
    /// The spend an approved intent adds (intents without an amount add none).
    pub fn of(intent: &Intent) -> Option<SpendEvent> {
        let amount = intent.amount?;
        Some(SpendEvent {
            at: intent.at,
            agent: intent.agent.clone(),
            vendor: intent.vendor.clone(),
            operation: intent.operation.clone(),
            category: intent.category.clone(),
            beneficiary: intent.beneficiary.clone(),
            amount,
        })
    }
}

/// What is being decided.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A spend intent read from the request.
    Spend(&'a Intent),
    /// A write the adapter does not recognise: the stack's `unknown` action.
    Unknown { operation: &'a str, reason: &'a str },
    /// A spend that could not be read exactly: the stack's `unreadable` action.
    Unreadable { operation: &'a str, reason: &'a str },
}

/// Everything besides the stack and the subject that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The clock time of the decision.
    pub now: DateTime<Utc>,
    /// Prior spend (at least the last 32 days); the engine filters it by each
    /// cap's scope, filters and window.
    pub spent: &'a [SpendEvent],
    pub fx: &'a FxTable,
    pub registry: &'a BeneficiaryRegistry,
}

/// One rule's verdict on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub priority: u32,
    #[serde(rename = "type")]
    pub rule_type: &'static str,
    pub action: Action,
    pub triggered: bool,
    /// The rule is shadow (its own `shadow: true`, or its stack's mode).
    pub shadow: bool,
    /// Why, in words a policy author reads: "spent 4,200.00 + 900.00 >
    /// 5,000.00 EUR", "filters do not match (vendor meta not in [stripe])",
    /// "no beneficiary (fails closed)".
    pub reason: String,
}

/// An exchange rate a decision used: `1 from = rate × to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FxUse {
    pub from: Currency,
    pub to: Currency,
    pub rate: Decimal,
}

/// Who must approve a REQUIRE_HUMAN decision: one entry per triggered,
/// non-shadow REQUIRE_HUMAN rule (all must be satisfied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalNeed {
    /// `None` for the stack default / unknown / unreadable (any approver).
    pub priority: Option<u32>,
    /// People or groups as written in the rule; empty means any approver.
    pub approvers: Vec<String>,
    pub quorum: super::model::Quorum,
}

/// The decision on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// What leash does (before the shadow-stack override, see `shadow`).
    pub action: Action,
    /// Lowest-priority-number non-shadow triggered rule with `action`; `None`
    /// when the action comes from `default`, `unknown` or `unreadable`.
    pub deciding_rule: Option<u32>,
    /// One line a human reads, naming the deciding rule and why.
    pub reason: String,
    /// Every rule of the merged stack, in priority order.
    pub verdicts: Vec<Verdict>,
    /// The action if shadow rules were enforced too (for shadow reports).
    pub shadow_action: Action,
    /// Every stack that applies is `mode: shadow`: forward regardless.
    pub shadow: bool,
    /// Rates used to convert amounts.
    pub fx: Vec<FxUse>,
    /// Approvals needed when `action` is REQUIRE_HUMAN.
    pub approvals: Vec<ApprovalNeed>,
}

/// Decides one subject. Pure.
pub fn decide(stack: &MergedStack, subject: Subject<'_>, ctx: &Context<'_>) -> Decision {
    // Placeholder until the engine lands: fail closed.
    let _ = (subject, ctx);
    Decision {
        action: stack.default.max(Action::RequireHuman),
        deciding_rule: None,
        reason: "policy engine not built yet".to_string(),
        verdicts: Vec::new(),
        shadow_action: Action::RequireHuman,
        shadow: stack.shadow,
        fx: Vec::new(),
        approvals: Vec::new(),
    }
}

/// Decides every subject of one request (placeholder until the engine lands).
pub fn decide_request(
    stack: &MergedStack,
    subjects: &[Subject<'_>],
    ctx: &Context<'_>,
) -> Vec<Decision> {
    subjects.iter().map(|s| decide(stack, *s, ctx)).collect()
}

/// The index of the decision that decides the request: the most severe.
pub fn most_severe(decisions: &[Decision]) -> Option<usize> {
    decisions
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.action.cmp(&b.action).then(ib.cmp(ia)))
        .map(|(i, _)| i)
}
