//! `GET /v1/spend`: where each cap stands, for `leash spend`.
//!
//! The numbers come from the live ledger and the policies in force, read
//! through the same pure functions a decision uses
//! ([`crate::policy::usage`]), so what an operator reads is what the next
//! request will be measured against.

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;

use super::{error, json};
use crate::answer::ProxyBody;
use crate::policy::live::LivePolicies;
use crate::policy::model::AgentSelector;
use crate::policy::usage::{cap_lines, report, ScopeValues};
use crate::spend::SpendLedger;

/// What `GET /v1/spend` reads.
pub struct SpendView {
    pub policies: Arc<LivePolicies>,
    pub ledger: Arc<dyn SpendLedger>,
    /// Agents `leash.yaml` names (`agents`, `default_agent`): with the
    /// agents the stacks name, the ones shown when none is asked for.
    pub configured_agents: Vec<String>,
}

/// `GET /v1/spend?agent=A&beneficiary=B&category=C`: every cap of `A`'s
/// merged stack (every agent's without `agent`), as
/// `{"at", "agents": [{"agent", "caps": [CapReport…]}]}`.
pub(super) async fn spend(view: &SpendView, query: Option<&str>) -> http::Response<ProxyBody> {
    let mut agent = None;
    let mut beneficiary = None;
    let mut category = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "agent" => &mut agent,
            "beneficiary" => &mut beneficiary,
            "category" => &mut category,
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("unknown parameter {other}: use agent, beneficiary or category"),
                )
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{key} is given twice"),
            );
        }
    }
    let now = chrono::Utc::now();
    let set = view.policies.current();
    let agents: Vec<String> = match agent {
        Some(agent) => vec![agent],
        None => {
            let mut all: BTreeSet<String> = view.configured_agents.iter().cloned().collect();
            for stack in &set.stacks {
                if let AgentSelector::Named(name) = &stack.agent {
                    all.insert(name.clone());
                }
            }
            all.into_iter().collect()
        }
    };
    let mut out = Vec::new();
    for agent in &agents {
        let stack = set.merged_for(agent);
        let scope = ScopeValues {
            agent,
            beneficiary: beneficiary.as_deref(),
            category: category.as_deref(),
        };
        let lines = cap_lines(&stack, &scope, now);
        let queries: Vec<_> = lines.iter().filter_map(|l| l.query.clone().ok()).collect();
        let usage = match view.ledger.usage(now, &queries).await {
            Ok(usage) => usage,
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "leash_ledger_unavailable",
                    format!("the spend ledger cannot be read: {e}"),
                )
            }
        };
        let mut answers = usage.into_iter();
        let caps: Vec<_> = lines
            .iter()
            .map(|line| {
                let totals = match &line.query {
                    Ok(_) => answers.next().unwrap_or_else(|| {
                        Err("the ledger gave fewer answers than it was asked".to_string())
                    }),
                    Err(note) => Err(note.clone()),
                };
                let totals = totals.as_ref().map(|u| (&u.counted, &u.reserved));
                report(line, totals.map_err(Clone::clone), &set.fx)
            })
            .collect();
        out.push(serde_json::json!({ "agent": agent, "covered": stack.covered, "caps": caps }));
    }
    json(
        StatusCode::OK,
        serde_json::json!({ "at": now, "agents": out }),
    )
}
