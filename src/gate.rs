//! The gate: where a classified request is decided (SPEC §5.3, §5.4, §7).
//!
//! Everything that may stop a request meets here, in data-flow order: the
//! policy set in force is merged for the agent, the engine works out the cap
//! queries the decision needs, the spend ledger answers them and the pure
//! engine decides on those totals in one step with the reservation (so
//! approvals reserve against caps atomically), and the outcome is either "forward, with this reservation" or leash's own
//! answer in the vendor's shape. Nothing here sends anything upstream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::StatusCode;

use serde_json::{json, Value};

use crate::answer::Answer;
use crate::audit::NewEntry;
use crate::holds::Need;
use crate::intent::{Classification, Intent};
use crate::notify::send::TriggeredRule;
use crate::policy::engine::{self, Context, Decision, SpendEvent, Subject};
use crate::policy::live::LivePolicies;
use crate::policy::model::Action;
use crate::spend::{self, LedgerError, Reservation, SpendLedger};

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send it upstream; settle or release `reservation` by the answer.
    Forward { reservation: Reservation },
    /// Answer the agent with this; nothing goes upstream.
    Refuse(Answer),
    /// A human must decide (REQUIRE_HUMAN): open a hold. Nothing is
    /// reserved yet; that happens at release, against the spend of then.
    Hold(PlannedHold),
}

/// What a REQUIRE_HUMAN decision asks of people.
#[derive(Debug, Clone)]
pub struct PlannedHold {
    /// One per triggered REQUIRE_HUMAN rule (or the stack default), with
    /// the people each resolves to now.
    pub needs: Vec<Need>,
    /// The decision's reason, in words.
    pub reason: String,
    /// The deciding rule's priority.
    pub rule: Option<u32>,
    /// The triggered REQUIRE_HUMAN rules, for the approvers' notification.
    pub rules: Vec<TriggeredRule>,
}

/// What the REJECT rules say about a held request at its release.
#[derive(Debug)]
pub enum Recheck {
    /// No REJECT rule fires: the amounts are reserved.
    Reserved(Reservation),
    /// A REJECT rule fires now (a cap filled while the request waited).
    Rejected { rule: u32, reason: String },
}

/// A gate's verdict: what to do, and the `decision` audit entry that must be
/// durable before anything happens (`None` for safe requests, which are not
/// decisions).
#[derive(Debug)]
pub struct Gated {
    pub outcome: Outcome,
    pub record: Option<NewEntry>,
    /// The policy's decision in brief, whenever there is a `record`: what
    /// the proxy counts once the record is durable.
    pub decided: Option<Decided>,
}

/// A decision in brief: the action, the deciding rule's priority (`None`
/// for the stack's `default`, `unknown` or `unreadable`) and whether only
/// shadow stacks applied (then it was forwarded whatever the action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub action: Action,
    pub rule: Option<u32>,
    pub shadow: bool,
}

impl Gated {
    fn unrecorded(outcome: Outcome) -> Self {
        Self {
            outcome,
            record: None,
            decided: None,
        }
    }
}

/// The gate's shared state.
pub struct Gate {
    pub policies: Arc<LivePolicies>,
    pub ledger: Arc<dyn SpendLedger>,
}

impl Gate {
    /// Decides a classified request. Safe requests pass without a decision;
    /// spend, unknown and unreadable requests go through the policy.
    pub async fn decide(
        &self,
        agent: &str,
        vendor: &str,
        classification: &Classification,
        intents: &[Intent],
        now: DateTime<Utc>,
    ) -> Gated {
        let subjects: Vec<Subject<'_>> = match classification {
            Classification::Safe { .. } => {
                return Gated::unrecorded(Outcome::Forward {
                    reservation: Reservation::default(),
                })
            }
            Classification::Spend(_) => intents.iter().map(Subject::Spend).collect(),
            Classification::Unknown { operation, reason } => {
                vec![Subject::Unknown { operation, reason }]
            }
            Classification::Unreadable { operation, reason } => {
                vec![Subject::Unreadable { operation, reason }]
            }
            Classification::Ambiguous { reason, .. } => {
                return self.refuse_ambiguous(agent, vendor, classification, reason)
            }
        };
        if subjects.is_empty() {
            // A spend classification always carries intents; if it ever did
            // not, there is nothing to evaluate and nothing may pass.
            return Gated::unrecorded(Outcome::Refuse(undecidable(
                "the request was read as a spend but carries no intent",
            )));
        }

        let set = self.policies.current();
        let stack = set.merged_for(agent);
        let queries = engine::cap_queries(&stack, &subjects, now);
        let decided = spend::decide_and_reserve(&*self.ledger, now, &queries, |spent| {
            let ctx = Context {
                now,
                spent,
                fx: &set.fx,
                registry: &set.registry,
            };
            let decisions = engine::decide_request(&stack, &subjects, &ctx);
            let deciding = engine::deciding(&decisions);
            let forward = deciding
                .as_ref()
                .is_some_and(|d| d.action == Action::AutoApprove || d.shadow);
            let reserve = if forward {
                intents.iter().filter_map(SpendEvent::of).collect()
            } else {
                Vec::new()
            };
            ((decisions, deciding), reserve)
        })
        .await;
        let ((decisions, deciding), reservation) = match decided {
            Ok(decided) => decided,
            Err(error) => {
                // Caps cannot be counted: fail closed.
                tracing::error!(%error, agent, "spend ledger failed; request not forwarded");
                return Gated::unrecorded(Outcome::Refuse(ledger_unavailable()));
            }
        };
        let Some(mut decision) = deciding else {
            return Gated::unrecorded(Outcome::Refuse(undecidable("no decision could be made")));
        };
        // Who may release a hold is fixed now; a hold nobody can release
        // is refused outright.
        let needs = crate::holds::approvals::refuse_unreleasable(&mut decision, &set.approvers);
        log_decision(
            agent,
            vendor,
            classification,
            intents,
            &decisions,
            &decision,
            &set.hash,
        );
        let record = decision_entry(
            agent,
            vendor,
            classification,
            intents,
            &decisions,
            &decision,
            &set.hash,
            &reservation,
        );
        let decided = Decided {
            action: decision.action,
            rule: decision.deciding_rule,
            shadow: decision.shadow,
        };
        let recorded = |outcome| Gated {
            outcome,
            record: Some(record),
            decided: Some(decided),
        };

        if decision.shadow && decision.action != Action::AutoApprove {
            tracing::warn!(
                agent,
                would_be = %decision.action,
                rule = ?decision.deciding_rule,
                "shadow mode: forwarding a request the policy would not approve"
            );
        }
        if decision.action == Action::AutoApprove || decision.shadow {
            return recorded(Outcome::Forward { reservation });
        }
        recorded(match decision.action {
            Action::Reject => Outcome::Refuse(
                Answer::new(
                    StatusCode::FORBIDDEN,
                    "leash_rejected",
                    "rejected",
                    format!("leash rejected this request: {}", decision.reason),
                )
                .with_rule(decision.deciding_rule),
            ),
            _ => Outcome::Hold(PlannedHold {
                needs,
                reason: decision.reason.clone(),
                rule: decision.deciding_rule,
                rules: decision
                    .verdicts
                    .iter()
                    .filter(|v| v.triggered && !v.shadow && v.action == Action::RequireHuman)
                    .map(TriggeredRule::from)
                    .collect(),
            }),
        })
    }

    /// An ambiguous request (SPEC §4.2): a REJECT decision of leash's own,
    /// no rule, recorded like any decision. The policy is not asked — no
    /// action it could name (an approval, a hold, shadow mode's forward) is
    /// right for a request leash cannot even say it read correctly — and
    /// nothing is reserved, so nothing can be released or approved later.
    fn refuse_ambiguous(
        &self,
        agent: &str,
        vendor: &str,
        classification: &Classification,
        reason: &str,
    ) -> Gated {
        let set = self.policies.current();
        let action = Action::Reject;
        tracing::info!(
            target: "leash::decision",
            agent,
            vendor,
            class = classification.kind(),
            operation = %crate::audit::mask_card_numbers(classification.operation()),
            decision = %action,
            rule = -1,
            reason = %crate::audit::mask_card_numbers(reason),
            shadow = false,
            policy_hash = %set.hash,
            "decided"
        );
        let record = NewEntry::decision(
            agent,
            intent_record(classification, vendor, &[]),
            action.as_str(),
            None,
            Value::Array(Vec::new()),
            set.hash.as_str(),
        )
        .with_detail("class", json!(classification.kind()))
        .with_detail("vendor", json!(vendor))
        .with_detail("operation", json!(classification.operation()))
        .with_detail("reason", json!(reason))
        .with_detail("shadow", json!(false))
        .with_detail("reservation", json!([]));
        Gated {
            outcome: Outcome::Refuse(ambiguous_answer(reason)),
            record: Some(record),
            decided: Some(Decided {
                action,
                rule: None,
                shadow: false,
            }),
        }
    }

    /// At the release of an approved hold: asks the REJECT rules again, with
    /// the spend and clock of now, and reserves the intents' amounts if none
    /// fires — in one step of the ledger, like a decision. A human
    /// approval releases a REQUIRE_HUMAN, never a REJECT (SPEC §5.3), and a
    /// cap may have filled while the request waited.
    ///
    /// A ledger failure is an error: the release does not happen.
    pub async fn recheck_and_reserve(
        &self,
        agent: &str,
        intents: &[Intent],
        now: DateTime<Utc>,
    ) -> Result<Recheck, LedgerError> {
        let set = self.policies.current();
        let stack = set.merged_for(agent);
        let subjects: Vec<Subject<'_>> = intents.iter().map(Subject::Spend).collect();
        let queries = engine::cap_queries(&stack, &subjects, now);
        let (rejected, reservation) =
            spend::decide_and_reserve(&*self.ledger, now, &queries, |spent| {
                let ctx = Context {
                    now,
                    spent,
                    fx: &set.fx,
                    registry: &set.registry,
                };
                let rejected = engine::decide_request_rejects_only(&stack, &subjects, &ctx);
                let reserve = match rejected {
                    Some(_) => Vec::new(),
                    None => intents.iter().filter_map(SpendEvent::of).collect(),
                };
                (rejected, reserve)
            })
            .await?;
        Ok(match rejected {
            Some((_, verdict)) => Recheck::Rejected {
                rule: verdict.priority,
                reason: format!(
                    "rule {} ({}): {}",
                    verdict.priority, verdict.rule_type, verdict.reason
                ),
            },
            None => Recheck::Reserved(reservation),
        })
    }

    /// Settles (2xx) or releases (4xx/5xx) what a forwarded request reserved;
    /// with no answer at all (`None`) the reservation stays: the money may
    /// have moved. Returns what happened, for the `outcome` audit entry.
    pub async fn upstream_answered(
        &self,
        reservation: &Reservation,
        status: Option<StatusCode>,
    ) -> &'static str {
        if reservation.is_empty() {
            return "none";
        }
        let (result, what) = match status {
            Some(status) if status.is_success() => {
                (self.ledger.settle(reservation).await, "settled")
            }
            Some(status) if status.is_client_error() || status.is_server_error() => {
                (self.ledger.release(reservation).await, "released")
            }
            _ => (Ok(()), "kept"),
        };
        if let Err(error) = result {
            tracing::error!(%error, ids = ?reservation.ids, "could not record the upstream outcome in the spend ledger");
            return "ledger_error";
        }
        what
    }

    /// Undoes a reservation whose request will not be forwarded after all
    /// (its decision could not be audited).
    pub async fn cancel(&self, reservation: &Reservation) {
        if reservation.is_empty() {
            return;
        }
        if let Err(error) = self.ledger.release(reservation).await {
            tracing::error!(%error, ids = ?reservation.ids, "could not release an unforwarded reservation");
        }
    }
}

/// The answer when the spend ledger cannot count a decision's caps (SPEC
/// §11: a shared store that does not answer, a commit whose outcome is
/// unknown, a local store that fails): 503 `leash_ledger_unavailable`,
/// nothing forwarded. The agent may retry: nothing was reserved for it.
pub fn ledger_unavailable() -> Answer {
    Answer::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "leash_ledger_unavailable",
        "error",
        "leash cannot count spend against caps right now (its spend ledger does not answer); the request was not forwarded",
    )
}

/// The answer for a request leash could not decide at all (a bug, never a
/// policy outcome): refused, since nothing undecided may pass.
fn undecidable(why: &str) -> Answer {
    Answer::new(
        StatusCode::FORBIDDEN,
        "leash_rejected",
        "rejected",
        format!("leash could not decide this request ({why}); it was not forwarded"),
    )
}

/// The intent a held request with no readable amount (unknown, unreadable)
/// is re-checked and reserved as at its release: what leash read of it
/// (vendor, operation) with the amount its approvers stated. Without it the
/// release would ask the REJECT rules and caps about no amount at all, and
/// any amount would pass them (issue 8).
///
/// The category is the operation's (`refund.create` → `refund`); an
/// operation leash does not know is a `payment`, so that caps on spend see
/// it. There is no beneficiary: a rule that needs one fails closed.
pub fn stated_intent(
    vendor: &str,
    operation: &str,
    agent: &str,
    stated: crate::money::Money,
    fingerprint: crate::intent::Fingerprint,
    at: DateTime<Utc>,
) -> Intent {
    let category = match operation.split('.').next().unwrap_or("") {
        "refund" => "refund",
        "transfer" => "transfer",
        "payout" => "payout",
        "topup" => "topup",
        "invoiceitem" | "invoice" => "invoice",
        _ => "payment",
    };
    Intent {
        agent: agent.to_string(),
        vendor: vendor.to_string(),
        operation: operation.to_string(),
        amount: Some(stated),
        beneficiary: None,
        category: category.to_string(),
        idempotency_key: None,
        sources: Default::default(),
        account: None,
        fingerprint,
        at,
    }
}

/// Most amount-bearing fields shown for one held request, and the longest
/// value shown: an approver reads them, a request can carry any number.
const MAX_READ_FIELDS: usize = 20;
const MAX_READ_VALUE: usize = 120;

/// Adds to what leash read of an amountless request (an object from
/// [`intent_record`]) the request's path and its raw amount-bearing fields,
/// so that an approver who must state the amount sees what the agent sent:
/// the fields the vendor's adapter calls amount-bearing
/// ([`crate::adapters::Adapter::amount_field`]; without an adapter, its
/// default), from a form or a JSON body, as written (every occurrence,
/// duplicates included: those are often why it is unreadable), card
/// numbers masked. A spend's record (a list of intents) is returned as it
/// is.
///
/// The form is read leniently on purpose: this is for people, never for a
/// decision.
pub fn with_read_fields(
    record: Value,
    path: &str,
    body: &[u8],
    adapter: Option<&dyn crate::adapters::Adapter>,
) -> Value {
    let Value::Object(mut map) = record else {
        return record;
    };
    // Credentials a vendor takes as parameters (Graph's `access_token`)
    // are never shown, whatever `amount_field` says.
    let secret = adapter.map(|a| a.secret_params()).unwrap_or_default();
    let wanted = |name: &str| {
        !secret.contains(&name)
            && match adapter {
                Some(adapter) => adapter.amount_field(name),
                None => crate::adapters::names_an_amount(name),
            }
    };
    let shown = |s: &str| {
        let masked = crate::audit::mask_card_numbers(s);
        let mut out: String = masked.chars().take(MAX_READ_VALUE).collect();
        if masked.chars().count() > MAX_READ_VALUE {
            out.push('…');
        }
        out
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(json)) => {
            for (name, value) in &json {
                if wanted(name) {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    fields.push((shown(name), shown(&text)));
                }
            }
        }
        _ => {
            for (name, value) in form_urlencoded::parse(body) {
                if wanted(&name) {
                    fields.push((shown(&name), shown(&value)));
                }
            }
        }
    }
    fields.truncate(MAX_READ_FIELDS);
    map.insert("path".into(), json!(shown(path)));
    map.insert(
        "raw_fields".into(),
        Value::Array(fields.into_iter().map(|(n, v)| json!([n, v])).collect()),
    );
    map.insert("amount_required".into(), json!(true));
    Value::Object(map)
}

/// `403 leash_ambiguous`: what was read two ways, and that no approval
/// will change the answer.
fn ambiguous_answer(reason: &str) -> Answer {
    Answer::new(
        StatusCode::FORBIDDEN,
        "leash_ambiguous",
        "rejected",
        format!(
            "leash refused this request because it can be read in more than one way ({reason}); \
             it was not forwarded and cannot be approved: send it with one reading only"
        ),
    )
}

/// What the audit chain (and a hold) records as a request's intent: the
/// intents of a spend, or what was read of a request that is not one.
pub fn intent_record(classification: &Classification, vendor: &str, intents: &[Intent]) -> Value {
    match classification {
        Classification::Spend(_) => serde_json::to_value(intents).unwrap_or(Value::Null),
        Classification::Unknown { operation, reason }
        | Classification::Unreadable { operation, reason } => json!({
            "vendor": vendor,
            "operation": operation,
            "reason": reason,
        }),
        Classification::Ambiguous { operation, reason } => json!({
            "vendor": vendor,
            "operation": operation,
            "classification": "ambiguous",
            "reason": reason,
        }),
        Classification::Safe { operation } => json!({ "vendor": vendor, "operation": operation }),
    }
}

/// The `decision` audit entry: the intents (never the body), every rule's
/// verdict, the fx rates used, the decision and deciding rule, the policy
/// set's hash and the request fingerprint.
#[allow(clippy::too_many_arguments)]
fn decision_entry(
    agent: &str,
    vendor: &str,
    classification: &Classification,
    intents: &[Intent],
    decisions: &[Decision],
    decision: &Decision,
    policy_hash: &str,
    reservation: &Reservation,
) -> NewEntry {
    let intent = intent_record(classification, vendor, intents);
    let rules = serde_json::to_value(&decision.verdicts).unwrap_or(Value::Null);
    let mut entry = NewEntry::decision(
        agent,
        intent,
        decision.action.as_str(),
        decision.deciding_rule,
        rules,
        policy_hash,
    )
    .with_detail("class", json!(classification.kind()))
    .with_detail("vendor", json!(vendor))
    .with_detail("operation", json!(classification.operation()))
    .with_detail("reason", json!(decision.reason))
    .with_detail(
        "fx",
        serde_json::to_value(&decision.fx).unwrap_or(Value::Null),
    )
    .with_detail("shadow", json!(decision.shadow))
    .with_detail("shadow_action", json!(decision.shadow_action.as_str()))
    .with_detail("reservation", json!(reservation.ids));
    if let Some(first) = intents.first() {
        entry = entry.with_detail("fingerprint", json!(first.fingerprint.to_hex()));
    }
    if decisions.len() > 1 {
        let each: Vec<Value> = decisions
            .iter()
            .map(|d| json!({ "decision": d.action.as_str(), "rule": d.deciding_rule }))
            .collect();
        entry = entry.with_detail("per_intent", Value::Array(each));
    }
    entry
}

/// One structured line per decision (no bodies, no secrets).
fn log_decision(
    agent: &str,
    vendor: &str,
    classification: &Classification,
    intents: &[Intent],
    decisions: &[Decision],
    decision: &Decision,
    policy_hash: &str,
) {
    let amounts: Vec<String> = intents
        .iter()
        .filter_map(|i| i.amount.map(|m| m.to_string()))
        .collect();
    tracing::info!(
        target: "leash::decision",
        agent,
        vendor,
        class = classification.kind(),
        operation = %crate::audit::mask_card_numbers(classification.operation()),
        amounts = %amounts.join(", "),
        decision = %decision.action,
        rule = decision.deciding_rule.map(i64::from).unwrap_or(-1),
        reason = %crate::audit::mask_card_numbers(&decision.reason),
        shadow = decision.shadow,
        shadow_action = %decision.shadow_action,
        intents = decisions.len(),
        policy_hash,
        "decided"
    );
}

#[cfg(test)]
mod read_fields_tests {
    use super::*;

    #[test]
    fn amountless_records_show_the_raw_amount_fields_masked() {
        let record =
            json!({"vendor": "acme", "operation": "refund.create", "reason": "no currency"});
        let out = with_read_fields(
            record,
            "/v1/refunds",
            b"charge=ch_1&amount=400000&amount=1&metadata[card]=4242424242424242&metadata[amount_note]=4242424242424242",
            None,
        );
        assert_eq!(out["path"], "/v1/refunds");
        assert_eq!(out["amount_required"], true);
        let fields = out["raw_fields"].as_array().unwrap();
        assert_eq!(fields[0], json!(["amount", "400000"]));
        assert_eq!(fields[1], json!(["amount", "1"]), "duplicates are shown");
        assert_eq!(fields.len(), 3, "only amount-bearing fields: {fields:?}");
        assert!(!out.to_string().contains("4242424242424242"), "{out}");

        let out = with_read_fields(
            json!({"reason": "x"}),
            "/v1/x",
            br#"{"amount": 12.5, "currency": "eur", "name": "n"}"#,
            None,
        );
        assert_eq!(
            out["raw_fields"],
            json!([["amount", "12.5"], ["currency", "eur"]])
        );

        // A spend's intents are left alone.
        assert_eq!(
            with_read_fields(json!([1]), "/p", b"amount=1", None),
            json!([1])
        );
    }

    /// A vendor whose credentials are parameters (Graph's `access_token`)
    /// never has them shown, even by an adapter that calls every field
    /// amount-bearing.
    #[test]
    fn secret_parameters_are_never_shown() {
        struct Greedy(crate::adapters::meta::MetaAdapter);
        impl crate::adapters::Adapter for Greedy {
            fn name(&self) -> &str {
                "greedy"
            }
            fn claims_host(&self, _: &str) -> bool {
                false
            }
            fn hosts(&self) -> Vec<String> {
                Vec::new()
            }
            fn classify(&self, req: &crate::intent::RequestView<'_>) -> Classification {
                self.0.classify(req)
            }
            fn secret_params(&self) -> Vec<&str> {
                self.0.secret_params()
            }
            fn amount_field(&self, _: &str) -> bool {
                true
            }
        }
        let body = b"daily_budget=2e3&access_token=EAABsecret&appsecret_proof=cafe01";
        let meta = crate::adapters::meta::MetaAdapter::default();
        for adapter in [
            &meta as &dyn crate::adapters::Adapter,
            &Greedy(crate::adapters::meta::MetaAdapter::default()),
        ] {
            let out = with_read_fields(
                json!({"reason": "x"}),
                "/v25.0/act_1/adsets",
                body,
                Some(adapter),
            );
            assert_eq!(
                out["raw_fields"][0],
                json!(["daily_budget", "2e3"]),
                "{out}"
            );
            assert!(!out.to_string().contains("EAABsecret"), "{out}");
            assert!(!out.to_string().contains("cafe01"), "{out}");
        }
    }
}
