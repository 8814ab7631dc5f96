//! The hold desk: where holds meet the rest of leash (SPEC §6).
//!
//! [`crate::holds`] keeps holds and their state machine, and is pure
//! storage: each transition hands back the audit entries that record it.
//! The desk is the one place that takes those entries to the audit chain,
//! wakes the agent connections waiting on a hold, tells approvers about a
//! new hold, and knows who an approver is (bearer token or Slack member ID).
//! The proxy, the admin API and the expiry timer all go through it, so a
//! vote counted by Slack and one counted by the API leave the same trail.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::audit::{AuditError, AuditLog, Kind, NewEntry};
use crate::holds::{
    ApprovalOutcome, ApproverTokens, Channel, Hold, HoldError, HoldState, HoldStore, HoldWaiters,
    Vote,
};
use crate::metrics::{self, Metrics};
use crate::notify::send::{AdminUrl, Callbacks, EventType, HoldEvent, Notifier, TriggeredRule};
use crate::notify::slack::{self, HoldSummary};

/// Why a vote (or another hold change) did not go through cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Refused by the hold store; nothing changed unless the error says so
    /// (an expiry it caused is recorded).
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// The change is stored but its audit entries could not be written.
    /// Nothing can be forwarded while the chain refuses writes, so this
    /// fails closed; the operator must look at the audit log's health.
    #[error("recorded, but the audit chain refused the entry: {0}")]
    Audit(#[from] AuditError),
}

/// Holds, with everything that acts on them.
pub struct HoldDesk {
    pub store: HoldStore,
    pub waiters: HoldWaiters,
    audit: AuditLog,
    tokens: ApproverTokens,
    notifier: Notifier,
    admin_url: AdminUrl,
    /// `holds.wait`: how long an agent's connection waits for a decision.
    pub wait: Duration,
    /// The Slack signing secrets of the configured Slack targets; a click
    /// is accepted when it verifies under any of them.
    slack_secrets: Vec<Vec<u8>>,
    /// Bounds the hold-store calls running on blocking threads
    /// ([`HoldDesk::off_runtime`]).
    blocking: tokio::sync::Semaphore,
    /// Hold transitions are counted here, where they all pass.
    metrics: Arc<Metrics>,
    /// Per agent: the notifications sent in the current minute.
    announced: std::sync::Mutex<std::collections::HashMap<String, AnnounceWindow>>,
}

/// At most this many new-hold notifications per agent per minute go to the
/// targets; beyond that holds are still opened, audited and listed
/// (`leash holds list`), but not announced, so one runaway agent cannot
/// flood the approvers' channel (or the notifier's queue).
pub const ANNOUNCE_PER_MINUTE: u32 = 10;

/// One agent's notification count in a one-minute window.
#[derive(Debug)]
struct AnnounceWindow {
    started: std::time::Instant,
    sent: u32,
    /// Holds not announced in this window.
    suppressed: u32,
}

/// How many hold-store calls run on blocking threads at once. Each flushes
/// sled under the store's one lock, so more would only queue on that lock,
/// a thread each (measured: 5,000 holds at once grew RSS by about 150 MiB
/// of thread stacks without a bound).
const BLOCKING_CALLS: usize = 2;

impl std::fmt::Debug for HoldDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldDesk")
            .field("wait", &self.wait)
            .field("slack_secrets", &self.slack_secrets.len())
            .finish_non_exhaustive()
    }
}

/// What the desk is made of; see [`HoldDesk::new`].
pub struct DeskParts {
    pub store: HoldStore,
    pub audit: AuditLog,
    pub tokens: ApproverTokens,
    pub notifier: Notifier,
    pub admin_url: AdminUrl,
    pub wait: Duration,
    pub slack_secrets: Vec<Vec<u8>>,
    pub metrics: Arc<Metrics>,
}

impl HoldDesk {
    pub fn new(parts: DeskParts) -> Self {
        Self {
            store: parts.store,
            waiters: HoldWaiters::new(),
            audit: parts.audit,
            tokens: parts.tokens,
            notifier: parts.notifier,
            admin_url: parts.admin_url,
            wait: parts.wait,
            slack_secrets: parts.slack_secrets,
            blocking: tokio::sync::Semaphore::new(BLOCKING_CALLS),
            metrics: parts.metrics,
            announced: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Whether a new hold of `agent` may be announced now
    /// ([`ANNOUNCE_PER_MINUTE`]).
    fn may_announce(&self, agent: &str) -> bool {
        let mut windows = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let window = windows.entry(agent.to_string()).or_insert(AnnounceWindow {
            started: now,
            sent: 0,
            suppressed: 0,
        });
        if now.duration_since(window.started) >= Duration::from_secs(60) {
            if window.suppressed > 0 {
                tracing::warn!(%agent, suppressed = window.suppressed, "holds of this agent were opened but not announced (more than {ANNOUNCE_PER_MINUTE} a minute); see leash holds list");
            }
            *window = AnnounceWindow {
                started: now,
                sent: 0,
                suppressed: 0,
            };
        }
        if window.sent < ANNOUNCE_PER_MINUTE {
            window.sent += 1;
            true
        } else {
            window.suppressed += 1;
            false
        }
    }

    /// Runs a hold-store call that writes (and so flushes sled) on a
    /// blocking thread, a few at a time, so that a burst of holds does not
    /// stall the async threads every other connection is served from.
    pub async fn off_runtime<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&HoldStore) -> Result<T, HoldError> + Send + 'static,
    ) -> Result<T, HoldError> {
        let _permit = self
            .blocking
            .acquire()
            .await
            .map_err(|_| HoldError::Invalid("leash is shutting down".into()))?;
        let desk = Arc::clone(self);
        tokio::task::spawn_blocking(move || call(&desk.store))
            .await
            .unwrap_or_else(|e| Err(HoldError::Invalid(format!("hold operation stopped: {e}"))))
    }

    /// Appends `entries` to the chain, in order; the last one's sequence
    /// number, if there were any.
    ///
    /// Every hold transition's entries come through here, so this is also
    /// where they are counted (as they happened in the store, whether or
    /// not the chain takes them). Approval is the one transition without
    /// an entry of its own: [`HoldDesk::vote`] counts it.
    pub async fn record(&self, entries: &[NewEntry]) -> Result<Option<u64>, AuditError> {
        for entry in entries {
            if let Some(event) = hold_event(entry) {
                self.metrics.hold_event(event);
            }
        }
        let mut last = None;
        for entry in entries {
            last = Some(self.audit.append(entry.clone()).await?.seq);
        }
        Ok(last)
    }

    /// Wakes the connections waiting on `hold` when it has left `pending`.
    pub fn wake(&self, hold: &Hold) {
        if hold.state != HoldState::Pending {
            self.waiters.notify(&hold.id, hold.state);
        }
    }

    /// The approver who owns this bearer token, if anyone.
    pub fn approver_by_token(&self, token: &str) -> Option<String> {
        self.tokens.authenticate(token)
    }

    /// The approver with this Slack member ID, if anyone.
    pub fn approver_by_slack_id(&self, id: &str) -> Option<String> {
        self.tokens.by_slack_id(id)
    }

    /// Whether a `POST /slack/actions` body was signed by Slack with one of
    /// the configured signing secrets. With none configured, nothing is.
    pub fn verify_slack(
        &self,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), slack::SlackError> {
        let mut last = slack::SlackError::EmptySecret;
        for secret in &self.slack_secrets {
            match slack::verify_request(secret, timestamp, signature, body, now) {
                Ok(()) => return Ok(()),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Counts a vote, records it, and wakes the agent if it decided the
    /// hold. An expiry the vote ran into is recorded too.
    ///
    /// `stated`: the amount the approver says an amountless hold moves
    /// (see [`HoldStore::approve_stating`]); ignored for a rejection.
    #[allow(clippy::too_many_arguments)]
    pub async fn vote(
        &self,
        id: &str,
        approver: &str,
        vote: Vote,
        channel: Channel,
        comment: Option<&str>,
        stated: Option<crate::money::Money>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, DeskError> {
        let counted = match vote {
            Vote::Approve => self
                .store
                .approve_stating(id, approver, channel, comment, stated, now),
            Vote::Reject => self.store.reject(id, approver, channel, comment, now),
        };
        match counted {
            Ok(outcome) => {
                if outcome.newly_resolved == Some(HoldState::Approved) {
                    self.metrics.hold_event(metrics::HoldEvent::Approved);
                }
                tracing::info!(
                    target: "leash::hold",
                    hold = %id, approver, vote = %vote, %channel,
                    state = %outcome.hold.state,
                    still_needed = %outcome.still_needed.join("; "),
                    "vote counted"
                );
                let recorded = self.record(&outcome.entries).await;
                self.wake(&outcome.hold);
                recorded?;
                Ok(outcome)
            }
            Err(error) => {
                if !error.entries().is_empty() {
                    self.record(error.entries()).await?;
                    if let Ok(Some(hold)) = self.store.get(id) {
                        self.wake(&hold);
                    }
                }
                Err(error.into())
            }
        }
    }

    /// Turns every hold found `releasing` at start into `outcome_unknown`
    /// ([`HoldStore::interrupted_releases`]) and records each; how many.
    /// Run once, before the proxy serves.
    pub async fn settle_interrupted_releases(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let interrupted = self
            .store
            .interrupted_releases(now)
            .map_err(|e| e.to_string())?;
        for changed in &interrupted {
            tracing::warn!(target: "leash::hold", hold = %changed.hold.id, agent = %changed.hold.agent, "leash stopped while forwarding this hold's request; its outcome is unknown");
            self.record(&changed.entries)
                .await
                .map_err(|e| format!("audit chain: {e}"))?;
        }
        Ok(interrupted.len())
    }

    /// Expires every hold past its deadline, records it and wakes whoever
    /// waits on it; how many expired.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> usize {
        let expired = match self.store.expire_due(now) {
            Ok(expired) => expired,
            Err(error) => {
                tracing::error!(%error, "could not expire due holds");
                return 0;
            }
        };
        for changed in &expired {
            tracing::info!(target: "leash::hold", hold = %changed.hold.id, agent = %changed.hold.agent, "hold expired");
            if let Err(error) = self.record(&changed.entries).await {
                tracing::error!(%error, hold = %changed.hold.id, "could not record a hold's expiry");
            }
            self.wake(&changed.hold);
        }
        expired.len()
    }

    /// Tells every `notify` target about a new hold; returns at once.
    pub fn announce(&self, hold: &Hold, operation: &str, rules: Vec<TriggeredRule>) {
        if self.notifier.is_empty() {
            return;
        }
        if !self.may_announce(&hold.agent) {
            tracing::info!(hold = %hold.id, agent = %hold.agent, "hold not announced: this agent is over {ANNOUNCE_PER_MINUTE} notifications a minute");
            return;
        }
        let summary = summary(hold, &rules);
        let event = HoldEvent {
            kind: EventType::HoldCreated,
            hold_id: hold.id.clone(),
            agent: hold.agent.clone(),
            vendor: hold.vendor.clone(),
            operation: operation.to_string(),
            intents: hold.intents.clone(),
            rules,
            amount_required: hold.amount_required(),
            approvers_needed: summary.approvers_needed.clone(),
            expires_at: rfc3339(hold.expires_at),
            callbacks: Callbacks::new(&self.admin_url, &hold.id),
            checkpoint: self.audit.latest_checkpoint(),
            at: rfc3339(Utc::now()),
        };
        // The dispatch runs on its own; its reports go to the delivery log.
        drop(self.notifier.notify_hold_created(event, summary));
    }

    /// Replaces the Slack message a click came from with the hold's outcome,
    /// once it is decided; while more approvals are needed the message
    /// keeps its buttons for the others. Runs in the background: Slack
    /// wants its answer within 3 seconds.
    pub fn update_slack_message(&self, response_url: String, hold: &Hold, by: &str) {
        if hold.state == HoldState::Pending {
            return;
        }
        let summary = summary(hold, &[]);
        let message = slack::resolved_message(&summary, hold.state.as_str(), by);
        let notifier = self.notifier.clone();
        let id = hold.id.clone();
        tokio::spawn(async move {
            if let Err(error) = notifier.update_slack_message(&response_url, message).await {
                tracing::warn!(%error, hold = %id, "could not update the Slack message");
            }
        });
    }

    /// Shows `text` to the Slack user who clicked, and only to them, under
    /// the message (an ephemeral reply through the click's `response_url`;
    /// the message itself is left as it is). In the background.
    pub fn tell_slack_user(&self, response_url: String, text: String) {
        let message = json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": text,
        });
        let notifier = self.notifier.clone();
        tokio::spawn(async move {
            if let Err(error) = notifier.update_slack_message(&response_url, message).await {
                tracing::warn!(%error, "could not answer a Slack user");
            }
        });
    }

    /// The hold as the admin API shows it: the stored record, its state as
    /// of `now` (an overdue hold reads `expired` before the sweep writes
    /// it) and what is still needed.
    pub fn view(hold: &Hold, now: DateTime<Utc>) -> Value {
        let mut value = serde_json::to_value(hold).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("state".into(), json!(hold.state_at(now).as_str()));
            map.insert("still_needed".into(), json!(hold.still_needed()));
        }
        value
    }
}

/// A shared desk.
pub type Desk = Arc<HoldDesk>;

/// The hold transition an audit entry records, if it records one:
/// `hold_created`, and `hold_resolved` (released, outcome unknown,
/// rejected, expired).
fn hold_event(entry: &NewEntry) -> Option<metrics::HoldEvent> {
    match entry.kind {
        Kind::HoldCreated => Some(metrics::HoldEvent::Created),
        Kind::HoldResolved => match entry.decision.as_deref()?.parse::<HoldState>().ok()? {
            HoldState::Released => Some(metrics::HoldEvent::Released),
            HoldState::OutcomeUnknown => Some(metrics::HoldEvent::OutcomeUnknown),
            HoldState::Rejected => Some(metrics::HoldEvent::Rejected),
            HoldState::Expired => Some(metrics::HoldEvent::Expired),
            // `releasing` is the write-ahead of a send whose `released`
            // (or `approved` again, when nothing was sent) follows.
            HoldState::Pending | HoldState::Approved | HoldState::Releasing => None,
        },
        _ => None,
    }
}

/// A time as approvers and receivers read it: RFC 3339, whole seconds, `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What leash read of an amountless request, one line each: the operation,
/// the path, each raw amount-bearing field (masked) and why no amount could
/// be read. Empty for a spend (its intents say it all).
pub fn read_of(hold: &Hold) -> Vec<String> {
    let Some(read) = hold.intents.as_object() else {
        return Vec::new();
    };
    let text = |key: &str| read.get(key).and_then(Value::as_str);
    let mut lines = Vec::new();
    if let Some(op) = text("operation") {
        lines.push(format!("operation: {op}"));
    }
    if let Some(path) = text("path") {
        lines.push(format!("path: {path}"));
    }
    if let Some(fields) = read.get("raw_fields").and_then(Value::as_array) {
        for field in fields {
            if let (Some(name), Some(value)) = (
                field.get(0).and_then(Value::as_str),
                field.get(1).and_then(Value::as_str),
            ) {
                lines.push(format!("{name} = {value}"));
            }
        }
    }
    if let Some(reason) = text("reason") {
        lines.push(format!("unreadable because: {reason}"));
    }
    lines
}

/// What approvers read about a hold, from what the hold recorded.
pub fn summary(hold: &Hold, rules: &[TriggeredRule]) -> HoldSummary {
    let intents: &[Value] = hold.intents.as_array().map_or(&[], Vec::as_slice);
    let amounts: Vec<String> = intents
        .iter()
        .filter_map(|i| {
            let amount = i.pointer("/amount/amount")?.as_str()?;
            let currency = i.pointer("/amount/currency")?.as_str()?;
            Some(format!("{amount} {currency}"))
        })
        .collect();
    let text = |pointer: &str| {
        intents
            .first()
            .and_then(|i| i.pointer(pointer))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let rules = if rules.is_empty() {
        vec![hold.reason.clone()]
    } else {
        rules
            .iter()
            .map(|r| match r.priority {
                Some(p) => format!("rule {p} {}", r.text),
                None => r.text.clone(),
            })
            .collect()
    };
    let needed: Vec<String> = hold
        .needs
        .iter()
        .map(|need| {
            let people: Vec<&str> = need.eligible.iter().map(String::as_str).collect();
            format!(
                "{} of [{}] for {}",
                need.quorum,
                people.join(", "),
                need.label()
            )
        })
        .collect();
    HoldSummary {
        hold_id: hold.id.clone(),
        agent: hold.agent.clone(),
        vendor: hold.vendor.clone(),
        operation: text("/operation").unwrap_or_default(),
        amount: if amounts.is_empty() {
            "no amount read".to_string()
        } else {
            amounts.join(" + ")
        },
        beneficiary: text("/beneficiary"),
        rules,
        approvers_needed: needed.join("; "),
        expires_at: rfc3339(hold.expires_at),
        amount_required: hold.amount_required(),
        read: read_of(hold),
    }
}
