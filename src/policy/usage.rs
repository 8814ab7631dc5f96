//! Where each cap stands: its window, what it has counted, what of that
//! still awaits a vendor's answer, and what is left (`leash spend`,
//! `GET /v1/spend`).
//!
//! Pure, like the engine: the caller gives the clock and the ledger's
//! totals. The numbers are the engine's own: the same [`CapQuery`] a
//! decision at `now` would ask, converted with the same
//! [`counted_in`](super::engine::counted_in), so "left" is exactly the
//! largest amount the next request could add without the cap firing.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::caps::{CapPeriod, CapQuery, CapTotal, ScopeKey};
use super::engine::counted_in;
use super::model::{CapScope, CapWindow, FxTable, MergedStack, Rule, RuleKind};

/// Whose spend to show: the agent, and the value of a per-beneficiary or
/// per-category cap's scope (such a cap counts each value apart, so it has
/// no single number without one).
#[derive(Debug, Clone, Copy)]
pub struct ScopeValues<'a> {
    pub agent: &'a str,
    pub beneficiary: Option<&'a str>,
    pub category: Option<&'a str>,
}

/// One cap rule of a stack, with the query that reads its window now (or
/// why there is none).
#[derive(Debug, Clone)]
pub struct CapLine<'a> {
    pub rule: &'a Rule,
    pub limit: Decimal,
    pub scope: CapScope,
    pub query: Result<CapQuery<'a>, String>,
}

/// The cap rules of `stack`, in priority order, each with the query a
/// decision at `now` would ask for spend of `scope`.
pub fn cap_lines<'a>(
    stack: &'a MergedStack,
    scope: &ScopeValues<'a>,
    now: DateTime<Utc>,
) -> Vec<CapLine<'a>> {
    let mut out = Vec::new();
    for rule in &stack.rules {
        let rule: &'a Rule = rule.as_ref();
        let RuleKind::DailyCap {
            limit,
            scope: cap_scope,
            window,
        } = &rule.kind
        else {
            continue;
        };
        let key = match cap_scope {
            CapScope::Agent => Ok(ScopeKey::Agent(scope.agent)),
            CapScope::AllAgents => Ok(ScopeKey::AllAgents),
            CapScope::Beneficiary => {
                scope.beneficiary.map(ScopeKey::Beneficiary).ok_or_else(|| {
                    "counted per beneficiary: name one (--beneficiary) to see its window"
                        .to_string()
                })
            }
            CapScope::Category => scope.category.map(ScopeKey::Category).ok_or_else(|| {
                "counted per category: name one (--category) to see its window".to_string()
            }),
        };
        let query = key.and_then(|key| {
            let period = CapPeriod::of(now, rule.timezone, *window)
                .ok_or_else(|| "the cap window cannot be computed for this date".to_string())?;
            Ok(CapQuery {
                scope: key,
                vendors: rule.filters.vendors.as_ref(),
                operations: rule.filters.operations.as_ref(),
                categories: rule.filters.categories.as_ref(),
                period,
            })
        });
        out.push(CapLine {
            rule,
            limit: *limit,
            scope: *cap_scope,
            query,
        });
    }
    out
}

/// One cap's standing, as `leash spend` prints it and `GET /v1/spend`
/// serves it. Amounts are decimal strings in the rule's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapReport {
    pub priority: u32,
    pub description: Option<String>,
    /// Where the rule is written (`policies/growth.yaml:14`).
    pub origin: String,
    /// `agent`, `all_agents`, `beneficiary` or `category`.
    pub scope: &'static str,
    /// The agent, beneficiary or category counted (none for all agents).
    pub scope_value: Option<String>,
    /// `day`, `week` or `month`.
    pub window: &'static str,
    pub timezone: String,
    /// The window's first and last instants, `[from, until)`.
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub currency: String,
    pub limit: String,
    /// Counted spend the vendor accepted (or whose answer never came).
    pub spent: Option<String>,
    /// Counted spend still waiting for the vendor's answer.
    pub reserved: Option<String>,
    /// `limit − spent − reserved`: the most the next request may add.
    pub left: Option<String>,
    /// The rule is shadow: it records, never refuses.
    pub shadow: bool,
    /// Why there are no numbers (a per-beneficiary cap with none named,
    /// spend in a currency without an fx rate).
    pub note: Option<String>,
}

/// `line`'s standing, given what its query counts (`counted`, reserved
/// included) and the reserved part of it.
pub fn report(
    line: &CapLine<'_>,
    totals: Result<(&CapTotal, &CapTotal), String>,
    fx: &FxTable,
) -> CapReport {
    let rule = line.rule;
    let currency = rule.currency;
    let window = match &rule.kind {
        RuleKind::DailyCap { window, .. } => *window,
        _ => CapWindow::Day,
    };
    let mut out = CapReport {
        priority: rule.priority,
        description: rule.description.clone(),
        origin: rule.origin.clone(),
        scope: match line.scope {
            CapScope::Agent => "agent",
            CapScope::AllAgents => "all_agents",
            CapScope::Beneficiary => "beneficiary",
            CapScope::Category => "category",
        },
        scope_value: None,
        window: match window {
            CapWindow::Day => "day",
            CapWindow::Week => "week",
            CapWindow::Month => "month",
        },
        timezone: rule.timezone.name().to_string(),
        from: None,
        until: None,
        currency: currency.to_string(),
        limit: line.limit.normalize().to_string(),
        spent: None,
        reserved: None,
        left: None,
        shadow: rule.shadow,
        note: None,
    };
    let query = match &line.query {
        Ok(query) => query,
        Err(note) => {
            out.note = Some(note.clone());
            return out;
        }
    };
    out.scope_value = match query.scope {
        ScopeKey::Agent(v) | ScopeKey::Beneficiary(v) | ScopeKey::Category(v) => {
            Some(v.to_string())
        }
        ScopeKey::AllAgents => None,
    };
    out.from = Some(query.period.start);
    out.until = Some(query.period.end);
    let numbers = totals.and_then(|(counted, reserved)| {
        let counted = counted_in(counted, currency, fx)?;
        let reserved = counted_in(reserved, currency, fx)?;
        let spent = counted
            .checked_sub(reserved)
            .ok_or_else(|| "the counted spend overflows".to_string())?;
        let left = line
            .limit
            .checked_sub(counted)
            .ok_or_else(|| "the counted spend overflows".to_string())?;
        Ok((spent, reserved, left))
    });
    match numbers {
        Ok((spent, reserved, left)) => {
            out.spent = Some(spent.normalize().to_string());
            out.reserved = Some(reserved.normalize().to_string());
            out.left = Some(left.normalize().to_string());
        }
        Err(note) => out.note = Some(note),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::money::{Currency, Money};
    use crate::policy::engine::SpendEvent;
    use crate::policy::model::PolicySet;

    fn load(stack: &str) -> PolicySet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("growth.yaml"), stack).unwrap();
        let config = crate::config::Config::parse(
            std::path::Path::new("leash.yaml"),
            "approvers: { people: { maya: {} } }\n",
        )
        .unwrap();
        crate::policy::load::load_policy_set(dir.path(), &config).unwrap()
    }

    fn stack_yaml() -> &'static str {
        r#"
agent: growth-agent
currency: EUR
timezone: Europe/Paris
rules:
  - { priority: 10, type: DAILY_CAP, action: REJECT, limit: 5000 }
  - { priority: 20, type: DAILY_CAP, action: REJECT, limit: 800, scope: beneficiary }
  - { priority: 30, type: DAILY_CAP, action: REQUIRE_HUMAN, limit: 20000, window: month, scope: all_agents }
approvers: [maya]
"#
    }

    fn event(agent: &str, amount: &str, currency: &str, at: DateTime<Utc>) -> SpendEvent {
        SpendEvent {
            at,
            agent: agent.to_string(),
            vendor: "stripe".to_string(),
            operation: "charge".to_string(),
            category: "payment".to_string(),
            beneficiary: Some("cus_1".to_string()),
            amount: Money::new(amount.parse().unwrap(), Currency::parse(currency).unwrap()),
        }
    }

    /// Per-beneficiary caps need a beneficiary; windows are the engine's;
    /// left = limit − everything counted, reserved shown apart, in the
    /// rule's currency with the same fx conversion.
    #[test]
    fn reports_the_engine_numbers() {
        let set = load(stack_yaml());
        let stack = set.merged_for("growth-agent");
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let scope = ScopeValues {
            agent: "growth-agent",
            beneficiary: None,
            category: None,
        };
        let lines = cap_lines(&stack, &scope, now);
        assert_eq!(lines.len(), 3);
        assert!(lines[1].query.is_err());

        let fx = FxTable {
            base: Currency::parse("EUR").unwrap(),
            rates: BTreeMap::from([(Currency::parse("USD").unwrap(), "0.5".parse().unwrap())]),
        };
        let settled = [
            event("growth-agent", "1000", "EUR", now),
            event("growth-agent", "300", "USD", now),
        ];
        let reserved = [event("growth-agent", "200", "EUR", now)];
        let query = lines[0].query.as_ref().unwrap();
        let counted = crate::policy::caps::scan(settled.iter().chain(&reserved), query);
        let held = crate::policy::caps::scan(&reserved, query);
        let r = report(&lines[0], Ok((&counted, &held)), &fx);
        assert_eq!(r.spent.as_deref(), Some("1150"));
        assert_eq!(r.reserved.as_deref(), Some("200"));
        assert_eq!(r.left.as_deref(), Some("3650"));
        assert_eq!(r.window, "day");
        assert_eq!(
            r.from,
            Some(Utc.with_ymd_and_hms(2026, 3, 9, 23, 0, 0).unwrap())
        );
        assert_eq!(r.scope_value.as_deref(), Some("growth-agent"));

        let none = report(&lines[1], Err("x".into()), &fx);
        assert!(none.note.unwrap().contains("--beneficiary"));

        // A currency without a rate: no numbers, a note that says why.
        let yen = [event("growth-agent", "1", "JPY", now)];
        let counted = crate::policy::caps::scan(&yen, query);
        let r = report(&lines[0], Ok((&counted, &CapTotal::default())), &fx);
        assert_eq!(r.left, None);
        assert!(
            r.note
                .as_deref()
                .unwrap_or("")
                .contains("no fx rate for JPY"),
            "{r:?}"
        );
    }
}
