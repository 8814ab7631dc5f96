//! [`HoldStore`]: holds in sled, every state change atomic and durable.
//!
//! Four trees, all written only from here:
//!
//! | tree            | key          | value                                 |
//! |-----------------|--------------|---------------------------------------|
//! | `holds`         | hold id      | the [`Hold`], JSON                    |
//! | `hold_requests` | hold id      | the sealed request ([`super::sealed`])|
//! | `hold_retry`    | retry key    | the hold id answering that retry key  |
//! | `holds_open`    | hold id      | empty: the pending and approved holds |
//!
//! `holds_open` keeps the expiry sweep and the pending list proportional to
//! the holds still open, not to every hold ever made.
//!
//! Concurrency: every operation that changes a hold reads it, decides and
//! writes it under one mutex, and the write is one transaction across the
//! trees it touches, flushed before the lock is released. Within a process
//! the store claims its trees ([`Store::claim`]), so a second `HoldStore` on
//! the same database (which would have its own mutex) cannot exist; across
//! processes sled's own file lock keeps a second leash out.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

use super::sealed::{HoldKey, SealedRequestInput, StoredRequest};
use super::{
    mask_strings, Approval, ApprovalOutcome, Changed, Channel, Created, Hold, HoldError, HoldState,
    NewHold, Releasing, Vote,
};
use crate::audit::{mask_card_numbers, NewEntry};
use crate::money::Money;
use crate::store::{Claim, Store, Write};

const HOLDS: &str = "holds";
const REQUESTS: &str = "hold_requests";
const RETRY: &str = "hold_retry";
const OPEN: &str = "holds_open";
/// Per agent: how many holds are open and how many sealed bytes they keep
/// (16 bytes: two big-endian u64), updated in the same transaction as the
/// holds themselves.
const QUOTA: &str = "holds_quota";

/// Per-agent bounds on open holds (`holds.max_open_per_agent`,
/// `holds.max_bytes_per_agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_open: u64,
    pub max_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        let holds = crate::config::Holds::default();
        Self {
            max_open: holds.max_open_per_agent,
            max_bytes: holds.max_bytes_per_agent,
        }
    }
}

/// Prefix of every hold id.
pub const HOLD_ID_PREFIX: &str = "hold_";

/// Longest comment kept with a vote, in characters. A comment is a note for
/// the audit trail, and an approval must not be a way to grow the database
/// (or the chain) by megabytes.
pub const MAX_COMMENT_CHARS: usize = 500;

/// Holds, persisted. See the [module documentation](self).
pub struct HoldStore {
    store: Store,
    holds: sled::Tree,
    requests: sled::Tree,
    retry: sled::Tree,
    open: sled::Tree,
    quota_tree: sled::Tree,
    quota: Quota,
    key: HoldKey,
    ttl: chrono::Duration,
    rng: SystemRandom,
    lock: Mutex<()>,
    _claim: Claim,
}

impl std::fmt::Debug for HoldStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What happens to the sealed request in a write.
enum RequestWrite {
    Keep,
    Put(Vec<u8>),
}

impl HoldStore {
    /// Opens the holds in `store`; `key` seals requests, and `ttl`
    /// (`holds.ttl`) is how long a hold waits for a decision — and how long
    /// an approved one waits to be collected, and a closed one keeps
    /// answering retries.
    pub fn open(store: &Store, key: HoldKey, ttl: std::time::Duration) -> Result<Self, HoldError> {
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| HoldError::Invalid(format!("holds.ttl {ttl:?} is out of range")))?;
        if ttl <= chrono::Duration::zero() {
            return Err(HoldError::Invalid("holds.ttl must be positive".into()));
        }
        let claim = store.claim(HOLDS).ok_or(HoldError::InUse)?;
        Ok(Self {
            store: store.clone(),
            holds: store.tree(HOLDS)?,
            requests: store.tree(REQUESTS)?,
            retry: store.tree(RETRY)?,
            open: store.tree(OPEN)?,
            quota_tree: store.tree(QUOTA)?,
            quota: Quota::default(),
            key,
            ttl,
            rng: SystemRandom::new(),
            lock: Mutex::new(()),
            _claim: claim,
        })
    }

    /// The same store with per-agent bounds on open holds.
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// How many holds `agent` has open, and their sealed bytes.
    pub fn usage(&self, agent: &str) -> Result<(u64, u64), HoldError> {
        Ok(match self.quota_tree.get(agent.as_bytes())? {
            Some(value) => decode_usage(&value),
            None => (0, 0),
        })
    }

    /// `holds.ttl`.
    pub fn ttl(&self) -> chrono::Duration {
        self.ttl
    }

    /// Opens a hold for a REQUIRE_HUMAN decision, sealing `request` with it
    /// — unless this is a retry of a request that already has one (same
    /// [`NewHold::retry_key`]), in which case that hold is returned with
    /// `created: false` and nothing new is stored. The check and the
    /// creation are one step: two copies of a request arriving together
    /// make one hold.
    ///
    /// A retry is matched against open holds, and against closed ones for
    /// `ttl` after they closed ([`Hold::answers_retries_at`]). A matched
    /// hold that is past its deadline is expired on the way (its
    /// `hold_resolved` entry is in `entries`).
    pub fn create(
        &self,
        new: NewHold,
        request: SealedRequestInput,
        now: DateTime<Utc>,
    ) -> Result<Created, HoldError> {
        if new.agent.is_empty() || new.vendor.is_empty() || new.fingerprint.is_empty() {
            return Err(HoldError::Invalid(
                "a hold needs an agent, a vendor and a fingerprint".into(),
            ));
        }
        if new.needs.is_empty() {
            return Err(HoldError::Invalid(
                "a hold needs at least one approval need (REQUIRE_HUMAN always names one)".into(),
            ));
        }
        let retry_key = new.retry_key();
        let _guard = self.lock();

        let by_key = self.hold_for_retry(&retry_key)?;
        let by_fingerprint = match by_key {
            Some(_) => None,
            None => {
                let key = super::retry_key(&new.agent, &new.vendor, None, &new.fingerprint);
                self.hold_for_retry(&key)?.filter(|h| {
                    h.state_at(now).catches_recalls() && h.answers_retries_at(now, self.ttl)
                })
            }
        };
        if let Some(existing) = by_key.or(by_fingerprint) {
            if existing.answers_retries_at(now, self.ttl) {
                if existing.state.is_open() && existing.state_at(now) == HoldState::Expired {
                    let changed = self.expire(existing, now)?;
                    return Ok(Created {
                        hold: changed.hold,
                        created: false,
                        entries: changed.entries,
                    });
                }
                return Ok(Created {
                    hold: existing,
                    created: false,
                    entries: Vec::new(),
                });
            }
        }

        let id = self.new_id()?;
        let expires_at = now
            .checked_add_signed(self.ttl)
            .ok_or_else(|| HoldError::Invalid("expiry time out of range".into()))?;
        let hold = Hold {
            id: id.clone(),
            agent: new.agent,
            vendor: new.vendor,
            intents: mask_strings(new.intents),
            needs: new.needs,
            fingerprint: new.fingerprint,
            retry_key,
            decision_seq: new.decision_seq,
            reason: mask_card_numbers(&new.reason).into_owned(),
            state: HoldState::Pending,
            approvals: Vec::new(),
            created_at: now,
            expires_at,
            resolved_at: None,
            resolved_by: None,
            release_by: None,
            closed_at: None,
            resolution: None,
            sealed_bytes: 0,
        };
        let sealed = self.key.seal(&id, &request)?;
        let (open, bytes) = self.usage(&hold.agent)?;
        let size = u64::try_from(sealed.len()).unwrap_or(u64::MAX);
        let limit = if open >= self.quota.max_open {
            Some("max_open_per_agent")
        } else if bytes.saturating_add(size) > self.quota.max_bytes {
            Some("max_bytes_per_agent")
        } else {
            None
        };
        if let Some(limit) = limit {
            return Err(HoldError::TooManyHolds {
                agent: hold.agent,
                open,
                bytes,
                limit,
            });
        }
        let hold = Hold {
            sealed_bytes: size,
            ..hold
        };
        self.persist(&hold, RequestWrite::Put(sealed), true)?;
        let entries = vec![created_entry(&hold)];
        Ok(Created {
            hold,
            created: true,
            entries,
        })
    }

    /// The hold that answers retries with `retry_key` ([`super::retry_key`])
    /// at `now`, if any, in whatever state it is — check
    /// [`Hold::state_at`] before acting on it.
    pub fn find_retry(
        &self,
        retry_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Hold>, HoldError> {
        Ok(self
            .hold_for_retry(retry_key)?
            .filter(|hold| hold.answers_retries_at(now, self.ttl)))
    }

    /// The pending or approved (not yet released) hold of `agent` for a
    /// request with this `fingerprint`, whatever idempotency key either
    /// carried (SPEC §6: official SDKs send a fresh key on every call, so a
    /// re-call after `leash_held` must not open a second hold) — or one
    /// being forwarded, or whose forwarding was interrupted
    /// ([`HoldState::catches_recalls`]). Holds closed otherwise are not
    /// matched this way: once a request was forwarded or refused, the same
    /// request under a new key is a new request.
    pub fn find_open_by_fingerprint(
        &self,
        agent: &str,
        vendor: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Hold>, HoldError> {
        let key = super::retry_key(agent, vendor, None, fingerprint);
        Ok(self.hold_for_retry(&key)?.filter(|hold| {
            hold.agent == agent
                && hold.vendor == vendor
                && hold.fingerprint == fingerprint
                && hold.state_at(now).catches_recalls()
                && hold.answers_retries_at(now, self.ttl)
        }))
    }

    /// Counts `approver`'s approval (see [`HoldStore::reject`] for the
    /// other way).
    ///
    /// Refused, with nothing changed, when the hold is not pending
    /// ([`HoldError::NotPending`]), when the approver already voted
    /// ([`HoldError::AlreadyVoted`]: one person counts once, whatever the
    /// channel), or when the approver is not eligible for any need that
    /// still lacks approvals ([`HoldError::NotEligible`]). Refused with
    /// [`HoldError::Expired`] when `now` is past the hold's deadline — and
    /// the hold becomes `expired` in the same step if it was still open, so
    /// an approval and the expiry can never both win.
    ///
    /// The hold becomes `approved` when every need has its quorum; exactly
    /// one call sees `newly_resolved == Some(Approved)`, and that caller
    /// (after appending the entries) re-checks the REJECT rules, reserves,
    /// and releases.
    pub fn approve(
        &self,
        id: &str,
        approver: &str,
        channel: Channel,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, HoldError> {
        self.vote(id, approver, Vote::Approve, channel, comment, None, now)
    }

    /// [`HoldStore::approve`] with the amount the approver states. A hold
    /// with no readable amount ([`Hold::amount_required`]) is approved only
    /// with one ([`HoldError::AmountRequired`]), every approval stating the
    /// same ([`HoldError::AmountMismatch`]); a hold whose amount leash read
    /// refuses one ([`HoldError::AmountNotExpected`]): the amount the rules
    /// saw is the one in the request, not what someone typed.
    pub fn approve_stating(
        &self,
        id: &str,
        approver: &str,
        channel: Channel,
        comment: Option<&str>,
        stated: Option<Money>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, HoldError> {
        self.vote(id, approver, Vote::Approve, channel, comment, stated, now)
    }

    /// Records `approver`'s rejection, which rejects the hold: one no from
    /// anyone whose approval the hold could need is enough (SPEC §6).
    ///
    /// Unlike an approval, a rejection is accepted from a person eligible for
    /// any need of the hold, even one already met: refusing is always safe,
    /// and someone who could have approved must be able to stop it. The
    /// same refusals as [`HoldStore::approve`] apply otherwise.
    pub fn reject(
        &self,
        id: &str,
        approver: &str,
        channel: Channel,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, HoldError> {
        self.vote(id, approver, Vote::Reject, channel, comment, None, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn vote(
        &self,
        id: &str,
        approver: &str,
        vote: Vote,
        channel: Channel,
        comment: Option<&str>,
        stated: Option<Money>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalOutcome, HoldError> {
        let _guard = self.lock();
        let mut hold = self
            .load(id)?
            .ok_or_else(|| HoldError::NotFound(id.into()))?;

        self.refuse_if_expired(&hold, now)?;
        if hold.state != HoldState::Pending {
            return Err(HoldError::NotPending(hold.state));
        }
        if let Some(previous) = hold.vote_of(approver) {
            return Err(HoldError::AlreadyVoted {
                id: hold.id.clone(),
                approver: approver.to_string(),
                vote: previous.decision,
            });
        }
        let not_eligible = |why: String| HoldError::NotEligible {
            id: id.to_string(),
            approver: approver.to_string(),
            vote,
            why,
        };
        if !hold.is_eligible(approver) {
            return Err(not_eligible(format!(
                "not an approver of this hold; {}",
                hold.still_needed().join("; ")
            )));
        }
        if vote == Vote::Approve
            && !hold
                .needs
                .iter()
                .any(|n| n.eligible.contains(approver) && !n.is_met(&hold.approvals))
        {
            return Err(not_eligible(format!(
                "every rule they approve for already has its approvals; still needed: {}",
                hold.still_needed().join("; ")
            )));
        }

        // A rejection never needs an amount (refusing is always safe).
        let stated = match vote {
            Vote::Reject => None,
            Vote::Approve => match (hold.amount_required(), stated) {
                (true, None) => return Err(HoldError::AmountRequired { id: id.to_string() }),
                (false, Some(_)) => {
                    return Err(HoldError::AmountNotExpected { id: id.to_string() })
                }
                (true, Some(stated)) => {
                    if let Some(agreed) = hold.stated_amount().filter(|a| *a != stated) {
                        return Err(HoldError::AmountMismatch {
                            id: id.to_string(),
                            agreed,
                        });
                    }
                    Some(stated)
                }
                (false, None) => None,
            },
        };

        let comment = comment.map(clean_comment).filter(|c| !c.is_empty());
        hold.approvals.push(Approval {
            approver: approver.to_string(),
            decision: vote,
            channel,
            at: now,
            comment: comment.clone(),
            stated,
        });
        let newly_resolved = match vote {
            Vote::Reject => {
                hold.state = HoldState::Rejected;
                hold.resolved_at = Some(now);
                hold.resolved_by = Some(approver.to_string());
                hold.closed_at = Some(now);
                hold.resolution = Some(match &comment {
                    Some(c) => format!("rejected by {approver} ({channel}): {c}"),
                    None => format!("rejected by {approver} ({channel})"),
                });
                Some(HoldState::Rejected)
            }
            Vote::Approve if hold.quorum_met() => {
                hold.state = HoldState::Approved;
                hold.resolved_at = Some(now);
                hold.resolved_by = Some(approver.to_string());
                hold.release_by = Some(
                    now.checked_add_signed(self.ttl)
                        .ok_or_else(|| HoldError::Invalid("time out of range".into()))?,
                );
                Some(HoldState::Approved)
            }
            Vote::Approve => None,
        };
        self.persist(&hold, RequestWrite::Keep, false)?;

        let mut entries =
            vec![
                NewEntry::approval(&hold.id, approver, vote.as_str(), channel.as_str())
                    .with_agent(&hold.agent)
                    .with_details(json!({
                        "comment": comment,
                        "hold_state": hold.state.as_str(),
                        "stated_amount": stated.map(|m| m.amount_string()),
                        "stated_currency": stated.map(|m| m.currency.to_string()),
                    })),
            ];
        if hold.state == HoldState::Rejected {
            entries.push(resolved_entry(&hold));
        }
        let still_needed = hold.still_needed();
        Ok(ApprovalOutcome {
            hold,
            newly_resolved,
            still_needed,
            entries,
        })
    }

    /// Moves an approved hold to `releasing` and hands over its request,
    /// which is deleted from disk in the same step. Succeeds once per hold:
    /// every later call gets `NotPending(Releasing)` (or whatever came
    /// after), so a retry racing the waiting connection cannot forward the
    /// request a second time.
    ///
    /// The state change is durable before this returns; append the
    /// returned entry, then forward, then say what the send did:
    /// [`Self::mark_released`] once request bytes were written,
    /// [`Self::unrelease`] when nothing was. If leash stops in between, the
    /// hold is found `releasing` at the next start and becomes
    /// `outcome_unknown` ([`Self::interrupted_releases`]).
    ///
    /// If the sealed request cannot be opened (wrong key, damaged record),
    /// nothing changes and the error says so; the hold can then only be
    /// rejected ([`Self::mark_rejected_on_release`]) or expire. An approved
    /// hold past its `release_by` is expired instead ([`HoldError::Expired`]).
    ///
    /// Call it after the REJECT rules have been re-checked and the amount
    /// reserved: a caller that loses the race (`NotPending`) must give its
    /// reservation back.
    pub fn mark_releasing(&self, id: &str, now: DateTime<Utc>) -> Result<Releasing, HoldError> {
        let _guard = self.lock();
        let mut hold = self
            .load(id)?
            .ok_or_else(|| HoldError::NotFound(id.into()))?;
        self.refuse_if_expired(&hold, now)?;
        if hold.state != HoldState::Approved {
            return Err(HoldError::NotPending(hold.state));
        }
        let request = self.open_sealed(id)?;
        hold.state = HoldState::Releasing;
        hold.closed_at = Some(now);
        hold.resolution = Some(format!(
            "being forwarded after approval by {}",
            approvers(&hold)
        ));
        self.persist(&hold, RequestWrite::Keep, false)?;
        let entries = vec![resolved_entry(&hold)];
        Ok(Releasing {
            hold,
            request,
            entries,
        })
    }

    /// `releasing` → `released`: request bytes were written to the vendor
    /// (whether or not an answer came back). Its `hold_resolved`
    /// (`released`) entry is the one auditors read as "the money was sent";
    /// the `outcome` entry after it says what the vendor answered.
    pub fn mark_released(&self, id: &str, now: DateTime<Utc>) -> Result<Changed, HoldError> {
        let _guard = self.lock();
        let mut hold = self
            .load(id)?
            .ok_or_else(|| HoldError::NotFound(id.into()))?;
        if hold.state != HoldState::Releasing {
            return Err(HoldError::NotPending(hold.state));
        }
        hold.state = HoldState::Released;
        hold.closed_at = Some(now);
        hold.resolution = Some(format!("released after approval by {}", approvers(&hold)));
        self.persist(&hold, RequestWrite::Keep, false)?;
        let entries = vec![resolved_entry(&hold)];
        Ok(Changed { hold, entries })
    }

    /// Undoes [`Self::mark_releasing`] for a release that sent nothing (the
    /// connection or TLS to the vendor failed before any byte was written):
    /// the hold is `approved` again with `request` sealed again, so the
    /// agent's next retry releases it. `reason` says what happened.
    pub fn unrelease(
        &self,
        id: &str,
        request: &StoredRequest,
        reason: &str,
    ) -> Result<Changed, HoldError> {
        let _guard = self.lock();
        let mut hold = self
            .load(id)?
            .ok_or_else(|| HoldError::NotFound(id.into()))?;
        if hold.state != HoldState::Releasing {
            return Err(HoldError::NotPending(hold.state));
        }
        let sealed = self.key.seal(id, request)?;
        hold.state = HoldState::Approved;
        hold.closed_at = None;
        hold.resolution = Some(reason.to_string());
        self.persist(&hold, RequestWrite::Put(sealed), false)?;
        let entries = vec![resolved_entry(&hold).with_detail("release_failed", json!(true))];
        Ok(Changed { hold, entries })
    }

    /// Every hold still `releasing`, made `outcome_unknown`. Call it once
    /// at start, before the proxy serves: a hold is `releasing` only while
    /// a send is under way in a running leash, so one found at start was
    /// interrupted (leash crashed or was killed) between handing the
    /// request over and learning whether any byte reached the vendor. Its
    /// request is gone from disk, so it can never be sent twice by leash;
    /// the agent's retry and the approvers are told the outcome is unknown.
    pub fn interrupted_releases(&self, now: DateTime<Utc>) -> Result<Vec<Changed>, HoldError> {
        let _guard = self.lock();
        let mut interrupted = Vec::new();
        for item in self.holds.iter() {
            let (key, value) = item?;
            let hold = decode(&key, &value)?;
            if hold.state == HoldState::Releasing {
                interrupted.push(hold);
            }
        }
        let mut changed = Vec::new();
        for mut hold in interrupted {
            // `closed_at` stays the moment the send began: that is when the
            // money may have moved.
            hold.state = HoldState::OutcomeUnknown;
            hold.closed_at = hold.closed_at.or(Some(now));
            hold.resolution = Some(
                "leash stopped while forwarding this approved request; whether the vendor \
                 received it is unknown. Check with the vendor before making it again"
                    .into(),
            );
            self.persist(&hold, RequestWrite::Keep, false)?;
            let entries = vec![resolved_entry(&hold)];
            changed.push(Changed { hold, entries });
        }
        Ok(changed)
    }

    /// Rejects an approved hold at release: a REJECT rule (a cap that filled
    /// while it waited) forbids it now, and a human approval never
    /// overrides a REJECT (SPEC §5.3.4). `reason` says which rule and why.
    pub fn mark_rejected_on_release(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Changed, HoldError> {
        let _guard = self.lock();
        let mut hold = self
            .load(id)?
            .ok_or_else(|| HoldError::NotFound(id.into()))?;
        if hold.state != HoldState::Approved {
            return Err(HoldError::NotPending(hold.state));
        }
        hold.state = HoldState::Rejected;
        hold.closed_at = Some(now);
        hold.resolution = Some(format!(
            "approved, then rejected at release: {}",
            mask_card_numbers(reason)
        ));
        self.persist(&hold, RequestWrite::Keep, false)?;
        let entries = vec![resolved_entry(&hold)];
        Ok(Changed { hold, entries })
    }

    /// Expires every pending hold past `expires_at` and every approved hold
    /// past `release_by`, and returns them (with their `hold_resolved`
    /// entries). Run it on a timer; every other operation also expires the
    /// hold it touches when due, so the sweep's period only bounds how long
    /// an expired hold is still listed as open.
    ///
    /// A record that cannot be read is logged and skipped, so that one
    /// damaged hold does not keep every other one open.
    pub fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<Changed>, HoldError> {
        let _guard = self.lock();
        let mut expired = Vec::new();
        for id in self.due_ids(now)? {
            let hold = match self.load(&id) {
                Ok(Some(hold)) => hold,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%error, hold = %id, "cannot read a hold to expire it");
                    continue;
                }
            };
            if hold.state.is_open() && hold.state_at(now) == HoldState::Expired {
                expired.push(self.expire(hold, now)?);
            }
        }
        Ok(expired)
    }

    /// One hold.
    pub fn get(&self, id: &str) -> Result<Option<Hold>, HoldError> {
        self.load(id)
    }

    /// Every hold, or those in `state`, newest first. Unreadable records
    /// are logged and left out.
    pub fn list(&self, state: Option<HoldState>) -> Result<Vec<Hold>, HoldError> {
        let mut out = Vec::new();
        for item in self.holds.iter() {
            let (key, value) = item?;
            match decode(&key, &value) {
                Ok(hold) => {
                    if state.is_none_or(|s| s == hold.state) {
                        out.push(hold);
                    }
                }
                Err(error) => tracing::error!(%error, "skipping an unreadable hold"),
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// The pending holds, oldest first (the order approvers should take
    /// them in). Read from the open index, not the whole history.
    pub fn pending(&self) -> Result<Vec<Hold>, HoldError> {
        let mut out = Vec::new();
        for id in self.open_ids()? {
            match self.load(&id) {
                Ok(Some(hold)) if hold.state == HoldState::Pending => out.push(hold),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, hold = %id, "skipping an unreadable hold"),
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// How many holds wait for approvers at `now` (for the metrics): read
    /// from the open index like [`Self::pending`], without sorting or
    /// keeping them. A pending hold past its deadline that the sweep has
    /// not expired yet is not counted; an unreadable one is skipped.
    pub fn pending_count(&self, now: DateTime<Utc>) -> Result<u64, HoldError> {
        let mut count = 0u64;
        for id in self.open_ids()? {
            if let Ok(Some(hold)) = self.load(&id) {
                if hold.state_at(now) == HoldState::Pending {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Unseals a hold's request without changing anything (to show what
    /// is waiting, or to inspect it). Forwarding goes through
    /// [`HoldStore::mark_released`], which returns the request itself.
    pub fn open_request(&self, id: &str) -> Result<StoredRequest, HoldError> {
        self.open_sealed(id)
    }

    /// Deletes a closed hold's sealed request; `Ok(false)` if it was
    /// already gone. Closing transitions delete it themselves, so this is
    /// for records left behind (by a crash of an older version, say).
    /// Refused while the hold is open: its request is still to be forwarded.
    pub fn forget_request(&self, id: &str) -> Result<bool, HoldError> {
        let _guard = self.lock();
        if let Some(hold) = self.load(id)? {
            if hold.state.is_open() {
                return Err(HoldError::StillOpen {
                    id: id.to_string(),
                    state: hold.state,
                });
            }
        }
        let removed = self.requests.remove(id.as_bytes())?.is_some();
        if removed {
            self.store.flush()?;
        }
        Ok(removed)
    }

    // --- internals (callers hold the lock for anything that writes) ---

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock cannot leave a half-written hold:
        // each write is one transaction. Carry on with the store as it is.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load(&self, id: &str) -> Result<Option<Hold>, HoldError> {
        match self.holds.get(id.as_bytes())? {
            Some(value) => decode(id.as_bytes(), &value).map(Some),
            None => Ok(None),
        }
    }

    fn hold_for_retry(&self, retry_key: &str) -> Result<Option<Hold>, HoldError> {
        let Some(id) = self.retry.get(retry_key.as_bytes())? else {
            return Ok(None);
        };
        let id = std::str::from_utf8(&id).map_err(|_| HoldError::Corrupt {
            key: format!("{RETRY}/{retry_key}"),
            reason: "hold id is not UTF-8".into(),
        })?;
        self.load(id)
    }

    /// The open holds whose deadline has passed at `now`, read from the
    /// open index alone: each entry carries its hold's deadline, so a sweep
    /// over thousands of waiting holds decodes none of them. An entry
    /// without a readable deadline is returned too (the hold itself decides).
    fn due_ids(&self, now: DateTime<Utc>) -> Result<Vec<String>, HoldError> {
        let now = now.timestamp_millis();
        let mut ids = Vec::new();
        for item in self.open.iter() {
            let (key, value) = item?;
            let deadline = <[u8; 8]>::try_from(value.as_ref()).map(i64::from_be_bytes);
            if deadline.is_ok_and(|deadline| deadline > now) {
                continue;
            }
            match String::from_utf8(key.to_vec()) {
                Ok(id) => ids.push(id),
                Err(_) => {
                    tracing::error!(key = %hex::encode(&key), "open-hold index key is not UTF-8")
                }
            }
        }
        Ok(ids)
    }

    fn open_ids(&self) -> Result<Vec<String>, HoldError> {
        let mut ids = Vec::new();
        for item in self.open.iter() {
            let (key, _) = item?;
            match String::from_utf8(key.to_vec()) {
                Ok(id) => ids.push(id),
                Err(_) => {
                    tracing::error!(key = %hex::encode(&key), "open-hold index key is not UTF-8")
                }
            }
        }
        Ok(ids)
    }

    fn open_sealed(&self, id: &str) -> Result<StoredRequest, HoldError> {
        let sealed = self
            .requests
            .get(id.as_bytes())?
            .ok_or_else(|| HoldError::RequestGone(id.to_string()))?;
        Ok(self.key.open(id, &sealed)?)
    }

    /// Refuses with `Expired` a hold that is expired or past its deadline,
    /// recording the expiry if it was still open.
    fn refuse_if_expired(&self, hold: &Hold, now: DateTime<Utc>) -> Result<(), HoldError> {
        if hold.state == HoldState::Expired {
            return Err(HoldError::Expired {
                id: hold.id.clone(),
                at: hold.closed_at.unwrap_or(hold.expires_at),
                entries: Vec::new(),
            });
        }
        if hold.state.is_open() && hold.state_at(now) == HoldState::Expired {
            let at = match hold.state {
                HoldState::Approved => hold.release_by.unwrap_or(hold.expires_at),
                _ => hold.expires_at,
            };
            let changed = self.expire(hold.clone(), now)?;
            return Err(HoldError::Expired {
                id: hold.id.clone(),
                at,
                entries: changed.entries,
            });
        }
        Ok(())
    }

    fn expire(&self, mut hold: Hold, now: DateTime<Utc>) -> Result<Changed, HoldError> {
        let ttl = humantime::format_duration(self.ttl.to_std().unwrap_or_default());
        hold.resolution = Some(match hold.state {
            HoldState::Approved => format!(
                "approved by {}, but not released within {ttl} of the approval",
                approvers(&hold)
            ),
            _ => format!("no decision within {ttl}"),
        });
        if hold.state == HoldState::Pending {
            hold.resolved_at = Some(now);
            hold.resolved_by = None;
        }
        hold.state = HoldState::Expired;
        hold.closed_at = Some(now);
        self.persist(&hold, RequestWrite::Keep, false)?;
        let entries = vec![resolved_entry(&hold)];
        Ok(Changed { hold, entries })
    }

    /// Writes `hold` and keeps its indexes in step, in one transaction,
    /// then flushes. A closed hold leaves the open index and loses its
    /// sealed request in that same transaction.
    fn persist(
        &self,
        hold: &Hold,
        request: RequestWrite,
        index_retry: bool,
    ) -> Result<(), HoldError> {
        let value = serde_json::to_vec(hold).map_err(|e| HoldError::Corrupt {
            key: format!("{HOLDS}/{}", hold.id),
            reason: e.to_string(),
        })?;
        let id = hold.id.as_bytes().to_vec();
        // Open → closed (or new and open) moves the agent's usage; callers
        // hold the store lock, so reading it here and writing it in the same
        // transaction below cannot race another hold of the agent.
        let was_open = match self.holds.get(&id)? {
            Some(old) => decode(&id, &old)?.state.is_open(),
            None => false,
        };
        let quota_write = match (was_open, hold.state.is_open()) {
            (false, true) | (true, false) => {
                let (open, bytes) = self.usage(&hold.agent)?;
                let (open, bytes) = if hold.state.is_open() {
                    (
                        open.saturating_add(1),
                        bytes.saturating_add(hold.sealed_bytes),
                    )
                } else {
                    (
                        open.saturating_sub(1),
                        bytes.saturating_sub(hold.sealed_bytes),
                    )
                };
                let mut value = open.to_be_bytes().to_vec();
                value.extend_from_slice(&bytes.to_be_bytes());
                Some(Write::Put {
                    key: hold.agent.as_bytes().to_vec(),
                    value,
                })
            }
            _ => None,
        };
        let mut writes: Vec<(&sled::Tree, Vec<Write>)> = vec![
            (
                &self.holds,
                vec![Write::Put {
                    key: id.clone(),
                    value,
                }],
            ),
            (
                &self.open,
                vec![if hold.state.is_open() {
                    Write::Put {
                        key: id.clone(),
                        value: deadline_of(hold).to_be_bytes().to_vec(),
                    }
                } else {
                    Write::Delete { key: id.clone() }
                }],
            ),
        ];
        match request {
            RequestWrite::Put(sealed) => writes.push((
                &self.requests,
                vec![Write::Put {
                    key: id.clone(),
                    value: sealed,
                }],
            )),
            RequestWrite::Keep if !hold.state.is_open() => {
                writes.push((&self.requests, vec![Write::Delete { key: id.clone() }]));
            }
            RequestWrite::Keep => {}
        }
        if index_retry {
            let mut index = vec![Write::Put {
                key: hold.retry_key.as_bytes().to_vec(),
                value: id.clone(),
            }];
            // Also under the fingerprint alone: SDKs send a fresh
            // idempotency key on every call, so a re-call of a held request
            // is found by what it asks for ([`HoldStore::find_open_by_fingerprint`]).
            let by_fingerprint =
                super::retry_key(&hold.agent, &hold.vendor, None, &hold.fingerprint);
            if by_fingerprint != hold.retry_key {
                index.push(Write::Put {
                    key: by_fingerprint.into_bytes(),
                    value: id,
                });
            }
            writes.push((&self.retry, index));
        }
        if let Some(write) = quota_write {
            writes.push((&self.quota_tree, vec![write]));
        }
        self.store.write_atomically(&writes)?;
        self.store.flush()?;
        Ok(())
    }

    /// `hold_` and 128 random bits in hex. A collision is astronomically
    /// unlikely; it is checked anyway, since overwriting a hold would lose
    /// someone's payment.
    fn new_id(&self) -> Result<String, HoldError> {
        for _ in 0..4 {
            let mut bytes = [0u8; 16];
            self.rng
                .fill(&mut bytes)
                .map_err(|_| HoldError::Invalid("the system random generator failed".into()))?;
            let id = format!("{HOLD_ID_PREFIX}{}", hex::encode(bytes));
            if !self.holds.contains_key(id.as_bytes())? {
                return Ok(id);
            }
        }
        Err(HoldError::Invalid(
            "could not find an unused hold id (is the random generator broken?)".into(),
        ))
    }
}

/// (open holds, sealed bytes) from a `holds_quota` value; anything shorter
/// than 16 bytes reads as zero (the counters are rebuilt by new writes).
fn decode_usage(value: &[u8]) -> (u64, u64) {
    let word = |range: std::ops::Range<usize>| {
        value
            .get(range)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    (word(0..8), word(8..16))
}

fn decode(key: &[u8], value: &[u8]) -> Result<Hold, HoldError> {
    serde_json::from_slice(value).map_err(|e| HoldError::Corrupt {
        key: format!("{HOLDS}/{}", String::from_utf8_lossy(key)),
        reason: e.to_string(),
    })
}

/// Trims and masks a vote's comment, and bounds its length.
fn clean_comment(comment: &str) -> String {
    let masked = mask_card_numbers(comment.trim());
    match masked.char_indices().nth(MAX_COMMENT_CHARS) {
        Some((cut, _)) => format!("{}…", &masked[..cut]),
        None => masked.into_owned(),
    }
}

/// The people who approved, `alex, sam`.
fn approvers(hold: &Hold) -> String {
    let names: Vec<&str> = hold
        .approvals
        .iter()
        .filter(|a| a.decision == Vote::Approve)
        .map(|a| a.approver.as_str())
        .collect();
    if names.is_empty() {
        "nobody".to_string()
    } else {
        names.join(", ")
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn created_entry(hold: &Hold) -> NewEntry {
    let needs: Vec<Value> = hold
        .needs
        .iter()
        .map(|n| {
            json!({
                "rule": n.priority,
                "approvers": n.approvers,
                "eligible": n.eligible,
                "quorum": n.quorum,
            })
        })
        .collect();
    NewEntry::hold_created(&hold.agent, &hold.id, hold.intents.clone()).with_details(json!({
        "vendor": hold.vendor,
        "decision_seq": hold.decision_seq,
        "fingerprint": hold.fingerprint,
        "reason": hold.reason,
        "expires_at": at(hold.expires_at),
        "needs": needs,
    }))
}

/// `hold_resolved` for a hold that just closed: `released`, `rejected` or
/// `expired`, naming the approver whose vote decided it (none for an
/// expiry, or a rejection leash made at release) and that vote's channel.
fn resolved_entry(hold: &Hold) -> NewEntry {
    let decider = match hold.state {
        HoldState::Expired => None,
        // Rejected at release: leash decided, not a person.
        HoldState::Rejected if hold.vote_of_resolver() != Some(Vote::Reject) => None,
        _ => hold.resolved_by.as_ref(),
    };
    let channel = decider
        .and_then(|who| hold.vote_of(who))
        .map(|a| a.channel.as_str());
    let approved_by: Vec<&str> = hold
        .approvals
        .iter()
        .filter(|a| a.decision == Vote::Approve)
        .map(|a| a.approver.as_str())
        .collect();
    let mut entry = NewEntry::hold_resolved(&hold.id, hold.state.as_str())
        .with_agent(&hold.agent)
        .with_details(json!({
            "reason": hold.resolution,
            "channel": channel,
            "approved_by": approved_by,
        }));
    if let Some(stated) = hold.stated_amount() {
        // What the rules and caps saw at release: approver-stated, not read.
        entry = entry
            .with_detail("stated_amount", json!(stated.amount_string()))
            .with_detail("stated_currency", json!(stated.currency.to_string()))
            .with_detail("amount_source", json!("approver_stated"));
    }
    entry.approver = decider.cloned();
    entry
}

/// When an open hold stops being open by itself, in Unix milliseconds: the
/// expiry of a pending hold, the collection deadline of an approved one.
fn deadline_of(hold: &Hold) -> i64 {
    match (hold.state, hold.release_by) {
        (HoldState::Approved, Some(by)) => by.timestamp_millis(),
        _ => hold.expires_at.timestamp_millis(),
    }
}
