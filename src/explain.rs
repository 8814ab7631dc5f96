//! `leash explain`: the decision and every rule's verdict for a described
//! intent, with nothing sent anywhere (SPEC §5.5).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::intent::{Fingerprint, Intent};
use crate::money::{Currency, Money};
use crate::policy::engine::{self, Context, Decision, SpendEvent, Subject};
use crate::policy::model::PolicySet;

/// An intent described on the command line.
#[derive(Debug, Clone)]
pub struct Described {
    pub agent: String,
    pub vendor: String,
    pub operation: String,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub beneficiary: Option<String>,
    pub category: String,
    pub at: DateTime<Utc>,
    /// Prior spend of this agent in the intent's currency, all at `at`.
    pub spent: Vec<Decimal>,
}

/// Decides a described intent against `set`.
pub fn explain(set: &PolicySet, described: &Described) -> Result<Decision, String> {
    let amount = match (described.amount, described.currency.as_deref()) {
        (Some(amount), Some(code)) => Some(Money::new(amount, parse_currency(code)?)),
        (Some(_), None) => return Err("--amount needs --currency".to_string()),
        (None, _) => None,
    };
    let intent = Intent {
        agent: described.agent.clone(),
        vendor: described.vendor.clone(),
        operation: described.operation.clone(),
        amount,
        beneficiary: described.beneficiary.clone(),
        category: described.category.clone(),
        idempotency_key: None,
        sources: Default::default(),
        account: None,
        fingerprint: Fingerprint::of("EXPLAIN", &described.vendor, &described.operation, b""),
        at: described.at,
    };
    let spent: Vec<SpendEvent> = match (amount, described.spent.is_empty()) {
        (_, true) => Vec::new(),
        (Some(money), false) => described
            .spent
            .iter()
            .filter_map(|value| {
                SpendEvent::of(&intent).map(|mut event| {
                    event.amount = Money::new(*value, money.currency);
                    event
                })
            })
            .collect(),
        (None, false) => return Err("--spent needs --amount and --currency".to_string()),
    };
    let stack = set.merged_for(&described.agent);
    let subjects = [Subject::Spend(&intent)];
    let queries = engine::cap_queries(&stack, &subjects, described.at);
    let totals = crate::spend::totals_of_events(&spent, &queries);
    let ctx = Context {
        now: described.at,
        spent: &totals,
        fx: &set.fx,
        registry: &set.registry,
    };
    let mut decision = engine::decide(&stack, Subject::Spend(&intent), &ctx);
    // As the proxy decides: a hold nobody listed can release is refused.
    crate::holds::approvals::refuse_unreleasable(&mut decision, &set.approvers);
    Ok(decision)
}

fn parse_currency(code: &str) -> Result<Currency, String> {
    Currency::parse(code)
        .or_else(|_| Currency::asset(code))
        .map_err(|e| e.to_string())
}

/// A decision as people read it: the outcome, then every rule's verdict.
pub fn render(decision: &Decision) -> String {
    let mut out = String::new();
    let rule = decision
        .deciding_rule
        .map(|p| format!(" (rule {p})"))
        .unwrap_or_default();
    let _ = writeln!(out, "decision: {}{rule}", decision.action);
    let _ = writeln!(out, "reason:   {}", decision.reason);
    if decision.shadow {
        let _ = writeln!(out, "mode:     shadow (forwarded whatever the decision)");
    }
    if decision.shadow_action != decision.action {
        let _ = writeln!(
            out,
            "with shadow rules enforced: {}",
            decision.shadow_action
        );
    }
    for need in &decision.approvals {
        let who = if need.approvers.is_empty() {
            "any approver".to_string()
        } else {
            need.approvers.join(", ")
        };
        let quorum = match need.quorum {
            crate::policy::model::Quorum::Count(n) => n.to_string(),
            crate::policy::model::Quorum::All => "all".to_string(),
        };
        let _ = writeln!(out, "approval: {who} (quorum {quorum})");
    }
    for fx in &decision.fx {
        let _ = writeln!(out, "fx:       1 {} = {} {}", fx.from, fx.rate, fx.to);
    }
    let _ = writeln!(out, "rules:");
    if decision.verdicts.is_empty() {
        let _ = writeln!(out, "  (none evaluated)");
    }
    for verdict in &decision.verdicts {
        let mark = if verdict.triggered { "TRIGGERED" } else { "-" };
        let shadow = if verdict.shadow { " [shadow]" } else { "" };
        let _ = writeln!(
            out,
            "  {:>5} {:<22} {:<13} {:<9}{shadow} {}",
            verdict.priority,
            verdict.rule_type,
            verdict.action.as_str(),
            mark,
            verdict.reason
        );
    }
    out
}
