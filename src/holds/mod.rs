//! Holds and approvals (SPEC §6): a `REQUIRE_HUMAN` request waits here until
//! the people its rules name approve it, and is then forwarded exactly once —
//! or refused.
//!
//! A hold is money waiting on a decision, so the two bugs that matter are a
//! hold released twice and a hold released without its approvals. Everything
//! in this module is shaped around making those impossible rather than
//! unlikely:
//!
//! - **One writer, one lock.** [`HoldStore`] claims its trees in the database
//!   ([`Store::claim`](crate::store::Store::claim)) and runs every
//!   read-modify-write under one mutex, so "count this approval, then check
//!   the quorum" is a single step: of two approvals arriving together exactly
//!   one completes the quorum, and an approval racing the expiry sweep either
//!   lands before the deadline or is refused.
//! - **State changes are durable before they are answered.** Each transition
//!   is one sled transaction across the hold, its sealed request and its
//!   indexes, flushed before the call returns. A release that a crash could
//!   undo would let the request be forwarded a second time after a restart.
//! - **Release hands over the request.** [`HoldStore::mark_releasing`] moves
//!   the hold from `approved` to `releasing` and returns the sealed request in
//!   the same step, deleting it from disk: whoever wins the release is the
//!   only one who ever holds the request again.
//! - **Releases are never lost.** `releasing` becomes `released` only once
//!   request bytes were written to the vendor ([`HoldStore::mark_released`]);
//!   a send that failed before any byte left puts the hold back to
//!   `approved` ([`HoldStore::unrelease`]); a hold still `releasing` when
//!   leash starts was interrupted and becomes `outcome_unknown`
//!   ([`HoldStore::interrupted_releases`]), said as such to approvers and to
//!   the agent's retry.
//! - **Eligibility is frozen at creation.** Each [`Need`] records the people
//!   its rule's approvers resolved to when the hold was made, so the audit
//!   shows who could approve, and a later edit of a group cannot widen it.
//!
//! The state machine:
//!
//! ```text
//!            approve (quorum met on every need)       mark_releasing           bytes sent
//! pending ─────────────────────────────────────▶ approved ─────────▶ releasing ─────────▶ released
//!   │  │                                           │  │   ◀─────────────┘  │ leash stopped
//!   │  │                                           │  │   nothing sent     └──────▶ outcome_unknown
//!   │  │                                           │  │
//!   │  │ reject (one eligible approver)            │  │ mark_rejected_on_release
//!   │  └──────────────────────▶ rejected ◀─────────┘  │ (a REJECT rule, e.g. a cap,
//!   │                                                 │  fired while it waited)
//!   │ expires_at passes                               │ release_by passes
//!   └──────────────────────▶ expired ◀────────────────┘ (approved, never collected)
//! ```
//!
//! `released`, `outcome_unknown`, `rejected` and `expired` are final; the sealed request is
//! deleted when a hold reaches any of them. Every transition returns the
//! audit entries ([`NewEntry`]) that record it; the caller appends them to the
//! chain before acting on the transition (before forwarding, above all).
//!
//! What lives where: [`store`] (the sled-backed [`HoldStore`]), [`approvals`]
//! (who may approve and when a need is met, and [`ApproverTokens`] for
//! telling who is calling), [`sealed`] (the encrypted request, [`HoldKey`]),
//! [`waiters`] (waking the agent's connection when a hold is decided).

pub mod approvals;
pub mod sealed;
pub mod store;
pub mod waiters;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::NewEntry;
use crate::store::StoreError;

pub use approvals::{ApproverTokens, Need};
pub use sealed::{hold_key_path, HoldKey, SealError, SealedRequestInput, StoredRequest};
pub use store::HoldStore;
pub use waiters::{HoldSubscription, HoldWaiters};

/// Where a hold is in its life (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldState {
    /// Waiting for approvers.
    Pending,
    /// Every need has its quorum; waiting to be forwarded (by the agent's
    /// waiting connection or its retry).
    Approved,
    /// An eligible approver rejected it, or a REJECT rule fired at release.
    Rejected,
    /// Nobody decided within `holds.ttl` (or an approved hold was never
    /// collected). Its own state: nobody said no.
    Expired,
    /// Handed to the send: the request is on its way to the vendor and
    /// has left the store. Becomes `released` once bytes were written,
    /// `approved` again when nothing was sent, and `outcome_unknown` when
    /// leash stopped in between.
    Releasing,
    /// Forwarded: request bytes reached the vendor. Final.
    Released,
    /// leash stopped (crashed, was killed) while the hold was `releasing`:
    /// whether the vendor received the request is not known, so it is never
    /// sent again by leash and never called "already forwarded" either; a
    /// person checks with the vendor. Final.
    #[serde(rename = "outcome_unknown")]
    OutcomeUnknown,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Approved => "approved",
            HoldState::Rejected => "rejected",
            HoldState::Expired => "expired",
            HoldState::Releasing => "releasing",
            HoldState::Released => "released",
            HoldState::OutcomeUnknown => "outcome_unknown",
        }
    }

    /// `pending` and `approved` holds can still be forwarded.
    pub fn is_open(self) -> bool {
        matches!(self, HoldState::Pending | HoldState::Approved)
    }

    /// Holds a re-call with a fresh idempotency key (same fingerprint) is
    /// the retry of: the open ones, and those whose send is under way or
    /// was interrupted — a re-call of those must hear that, not open a
    /// second hold for money that may already have moved.
    pub fn catches_recalls(self) -> bool {
        self.is_open() || matches!(self, HoldState::Releasing | HoldState::OutcomeUnknown)
    }
}

impl fmt::Display for HoldState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HoldState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            HoldState::Pending,
            HoldState::Approved,
            HoldState::Rejected,
            HoldState::Expired,
            HoldState::Releasing,
            HoldState::Released,
            HoldState::OutcomeUnknown,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| {
            format!(
                "unknown hold state {s:?} (pending, approved, rejected, expired, releasing, released, outcome_unknown)"
            )
        })
    }
}

/// What an approver said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Approve,
    Reject,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Reject => "reject",
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a vote reached leash: recorded, because "who approved" is only as
/// good as the way they proved who they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `POST /v1/holds/{id}/approve` with the approver's bearer token.
    Api,
    /// A signed Slack button click, mapped by Slack member ID.
    Slack,
    /// `leash holds approve` on the machine.
    Cli,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Slack => "slack",
            Channel::Cli => "cli",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approver's vote on a hold. Each approver votes at most once per hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The person (a name from `approvers.people`), never a group.
    pub approver: String,
    pub decision: Vote,
    pub channel: Channel,
    pub at: DateTime<Utc>,
    /// What the approver wrote, if anything (card numbers masked).
    #[serde(default)]
    pub comment: Option<String>,
    /// For a hold whose request has no amount leash could read (unknown,
    /// unreadable): the amount the approver says it moves. Every approval of
    /// such a hold states one, they all agree, and it is what the REJECT
    /// rules and caps see at release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated: Option<crate::money::Money>,
}

/// A held request: who asked for what, who must approve, and what happened.
///
/// Stored as JSON in the `holds` tree under its id. Nothing in it is secret
/// (the request itself is sealed separately, see [`sealed`]), so it can be
/// served as is by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// `hold_` and 32 hex digits from a CSPRNG: unguessable, since a Slack
    /// button carries it and the id must not be enumerable.
    pub id: String,
    pub agent: String,
    pub vendor: String,
    /// The intents, as the audit chain records them (masked).
    pub intents: Value,
    /// One per triggered REQUIRE_HUMAN rule; all must be met.
    pub needs: Vec<Need>,
    /// The request fingerprint (hex, SPEC §4.1).
    pub fingerprint: String,
    /// What recognises a retry of this request ([`retry_key`]).
    pub retry_key: String,
    /// The audit sequence number of the decision that opened the hold.
    pub decision_seq: u64,
    /// Why the policy wanted a human, in words.
    pub reason: String,
    pub state: HoldState,
    /// Every vote, in the order they were counted.
    pub approvals: Vec<Approval>,
    pub created_at: DateTime<Utc>,
    /// A pending hold expires at this time (`created_at + holds.ttl`).
    pub expires_at: DateTime<Utc>,
    /// When the hold left `pending` (approved, rejected or expired).
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The approver whose vote decided it; `None` when it expired.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// An approved hold must be released by then, or it expires: an
    /// approval is for the request as it was, not a standing permission.
    #[serde(default)]
    pub release_by: Option<DateTime<Utc>>,
    /// When the hold reached a final state.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it ended, in words (who rejected, which rule at release, …).
    #[serde(default)]
    pub resolution: Option<String>,
    /// Size of the sealed request, counted against
    /// `holds.max_bytes_per_agent` while the hold is open.
    #[serde(default)]
    pub sealed_bytes: u64,
}

impl Hold {
    /// The state as of `now`: a `pending` hold past `expires_at`, or an
    /// `approved` one past `release_by`, is expired even if no write has
    /// recorded it yet (the next write will). Read paths use this so that
    /// they never wait on, or forward, a hold that is already dead.
    pub fn state_at(&self, now: DateTime<Utc>) -> HoldState {
        match self.state {
            HoldState::Pending if now >= self.expires_at => HoldState::Expired,
            HoldState::Approved if self.release_by.is_some_and(|by| now >= by) => {
                HoldState::Expired
            }
            state => state,
        }
    }

    /// What is still missing, one line per unmet need, like
    /// `1 more of [alex, sam] for rule 30`. Empty once every need is met.
    pub fn still_needed(&self) -> Vec<String> {
        if self.state != HoldState::Pending {
            return Vec::new();
        }
        self.needs
            .iter()
            .filter_map(|need| need.missing(&self.approvals))
            .collect()
    }

    /// Whether approving needs an approver-stated amount: the request is not
    /// a spend leash could read (unknown or unreadable), so no amount exists
    /// for the REJECT rules and caps to see unless a person states one.
    ///
    /// The gate records a spend's intents as a list, and what it read of
    /// any other request as one object ([`crate::gate::intent_record`]).
    pub fn amount_required(&self) -> bool {
        !self.intents.is_array()
    }

    /// The amount the approvers stated (they agree, see
    /// [`HoldStore::approve_stating`](crate::holds::HoldStore)); `None` when
    /// none did.
    pub fn stated_amount(&self) -> Option<crate::money::Money> {
        self.approvals
            .iter()
            .filter(|a| a.decision == Vote::Approve)
            .find_map(|a| a.stated)
    }

    /// Every need has its quorum of distinct eligible approvers.
    pub fn quorum_met(&self) -> bool {
        self.needs.iter().all(|need| need.is_met(&self.approvals))
    }

    /// The person's vote, if they voted.
    pub fn vote_of(&self, approver: &str) -> Option<&Approval> {
        self.approvals.iter().find(|a| a.approver == approver)
    }

    /// The vote of the person recorded as `resolved_by`.
    fn vote_of_resolver(&self) -> Option<Vote> {
        let who = self.resolved_by.as_deref()?;
        self.vote_of(who).map(|a| a.decision)
    }

    /// Whether `person` may vote on this hold at all (eligible for some need).
    pub fn is_eligible(&self, person: &str) -> bool {
        self.needs.iter().any(|need| need.eligible.contains(person))
    }

    /// Whether this hold still answers for retries of its request at `now`.
    ///
    /// An open hold always does. A closed one does for `window` after it
    /// closed, so a retry gets the same answer (rejected, expired, already
    /// forwarded) instead of a fresh hold for a decision already made; after
    /// that, the same request is a new request. Without the window a
    /// request with no idempotency key (recognised by its fingerprint alone)
    /// could never be made again once refused.
    pub fn answers_retries_at(&self, now: DateTime<Utc>, window: chrono::Duration) -> bool {
        if self.state.is_open() {
            return true;
        }
        let closed = self
            .closed_at
            .or(self.resolved_at)
            .unwrap_or(self.created_at);
        closed
            .checked_add_signed(window)
            .is_none_or(|until| now < until)
    }
}

/// What the caller knows when a decision says REQUIRE_HUMAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    pub agent: String,
    pub vendor: String,
    /// The intents as written in the decision's audit entry.
    pub intents: Value,
    /// Resolved with [`Need::resolve`] from the decision's `approvals`.
    pub needs: Vec<Need>,
    /// The request fingerprint, hex.
    pub fingerprint: String,
    /// The request's idempotency key, if it carried one.
    pub idempotency_key: Option<String>,
    /// The audit sequence number of the `decision` entry.
    pub decision_seq: u64,
    /// The decision's reason.
    pub reason: String,
}

impl NewHold {
    /// The key a retry of this request will have ([`retry_key`]).
    pub fn retry_key(&self) -> String {
        retry_key(
            &self.agent,
            &self.vendor,
            self.idempotency_key.as_deref(),
            &self.fingerprint,
        )
    }
}

/// Domain separation for [`retry_key`]; bump if the framing changes.
const RETRY_KEY_DOMAIN: &[u8] = b"leash.hold-retry.v1\0";

/// The key that recognises a retry of a held request (SPEC §6): the agent,
/// the vendor and the request's idempotency key when it has one, else the
/// agent, the vendor and the request fingerprint.
///
/// It is a SHA-256 (hex) over length-framed parts, so `agent ‖ vendor ‖ key`
/// can never be confused across part boundaries, and an idempotency key that
/// happens to equal some fingerprint is still a different retry key (the
/// kind of the last part is framed too). Hashing also keeps agent-chosen
/// idempotency keys, which can be anything, out of the index's keys.
pub fn retry_key(
    agent: &str,
    vendor: &str,
    idempotency_key: Option<&str>,
    fingerprint: &str,
) -> String {
    let (kind, last): (&[u8], &str) = match idempotency_key {
        Some(key) => (b"idempotency-key", key),
        None => (b"fingerprint", fingerprint),
    };
    let mut h = Sha256::new();
    h.update(RETRY_KEY_DOMAIN);
    for part in [agent.as_bytes(), vendor.as_bytes(), kind, last.as_bytes()] {
        let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
        h.update(len.to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// [`HoldStore::create`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub hold: Hold,
    /// False when a retry found an existing hold: no second hold was made.
    pub created: bool,
    /// `hold_created` for a new hold; `hold_resolved` if finding an old one
    /// expired it; nothing otherwise.
    pub entries: Vec<NewEntry>,
}

/// [`HoldStore::approve`] and [`HoldStore::reject`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalOutcome {
    pub hold: Hold,
    /// `Some(Approved)` for exactly the one vote that completed every
    /// quorum, `Some(Rejected)` for a rejection; `None` when the vote was
    /// counted and more are needed.
    pub newly_resolved: Option<HoldState>,
    /// What is still missing, for the approver's reply
    /// (`1 more of [alex, sam] for rule 30`).
    pub still_needed: Vec<String>,
    /// `approval`, and `hold_resolved` when a rejection ended the hold.
    pub entries: Vec<NewEntry>,
}

/// A transition that needs nothing but the hold and its audit entries
/// (expiry, rejection at release).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub hold: Hold,
    pub entries: Vec<NewEntry>,
}

/// [`HoldStore::mark_releasing`]'s answer: the hold, now `releasing`, and the
/// request to forward, which no longer exists anywhere else.
#[derive(Debug)]
pub struct Releasing {
    pub hold: Hold,
    pub request: StoredRequest,
    /// `hold_resolved` (`releasing`): append it before forwarding.
    pub entries: Vec<NewEntry>,
}

/// Why a hold operation did not happen. Nothing changed unless the variant
/// says so.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("no hold {0}")]
    NotFound(String),
    /// The agent already has as many open holds, or sealed bytes, as
    /// `holds.max_open_per_agent` / `max_bytes_per_agent` allow.
    #[error(
        "agent {agent} has {open} open holds ({bytes} bytes sealed); holds.{limit} allows no more"
    )]
    TooManyHolds {
        agent: String,
        open: u64,
        bytes: u64,
        limit: &'static str,
    },
    /// The person is not among the people any need of this hold resolved
    /// to, or every need they could approve for is already met.
    #[error("{approver} cannot {vote} hold {id}: {why}")]
    NotEligible {
        id: String,
        approver: String,
        vote: Vote,
        why: String,
    },
    /// Approving a hold with no readable amount needs the amount the
    /// approver says the request moves.
    #[error("hold {id} has no amount leash could read: approve it with the amount it moves, {{\"amount\": \"4000.00\", \"currency\": \"EUR\"}} (CLI: leash holds approve {id} --amount 4000.00 --currency EUR)")]
    AmountRequired { id: String },
    /// An amount was stated for a hold whose amount leash read itself.
    #[error(
        "hold {id} has an amount leash read itself: approve it without `amount` and `currency`"
    )]
    AmountNotExpected { id: String },
    /// Approvers of one hold stated different amounts.
    #[error("hold {id}: another approver stated {agreed}; approvals must state the same amount")]
    AmountMismatch {
        id: String,
        agreed: crate::money::Money,
    },
    /// An approver counts once per hold.
    #[error("{approver} already voted on hold {id} ({vote})")]
    AlreadyVoted {
        id: String,
        approver: String,
        vote: Vote,
    },
    /// The hold is not in the state the operation needs (votes need
    /// `pending`, release and rejection-at-release need `approved`).
    #[error("the hold is {0}")]
    NotPending(HoldState),
    /// The hold expired, or was past its deadline: the vote or release is
    /// refused. If it was still open, it is now `expired`, and `entries`
    /// records that (append them).
    #[error("hold {id} expired at {at}")]
    Expired {
        id: String,
        at: DateTime<Utc>,
        entries: Vec<NewEntry>,
    },
    /// `forget_request` on a hold that can still be forwarded.
    #[error("hold {id} is {state}: its request is still needed")]
    StillOpen { id: String, state: HoldState },
    /// The sealed request was already forwarded or deleted.
    #[error("hold {0} no longer has a request (it was released, rejected or expired)")]
    RequestGone(String),
    #[error("invalid hold: {0}")]
    Invalid(String),
    #[error("another hold store already uses this database")]
    InUse,
    #[error("hold record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for HoldError {
    fn from(e: sled::Error) -> Self {
        HoldError::Store(StoreError::Sled(e))
    }
}

impl HoldError {
    /// Audit entries this error carries (an expiry it caused); append them
    /// like a success's.
    pub fn entries(&self) -> &[NewEntry] {
        match self {
            HoldError::Expired { entries, .. } => entries,
            _ => &[],
        }
    }
}

/// Masks card numbers in every string of `value`: intents reach the hold
/// already masked by the gate, and this keeps it so whatever a caller
/// passes (the holds tree is as much "stored" as the chain).
fn mask_strings(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(crate::audit::mask_card_numbers(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(mask_strings).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, mask_strings(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
