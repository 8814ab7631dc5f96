//! Held requests on the agent's connection (SPEC §6, §7): opening a hold,
//! waiting for its decision, answering retries, and the release.
//!
//! The release is the one place a held request goes upstream, and it runs
//! the same steps whether the approval arrives while the agent's connection
//! waits or before a retry: the REJECT rules are asked again with the spend
//! of now and the amounts reserved in the same step; the hold becomes
//! `releasing` (durably, exactly once, handing over the sealed request); its
//! `hold_resolved` entry is written; only then is the request sent — the
//! request as it was approved, not whatever a retry carries (unless the
//! vendor signs requests with a short lifetime: then the retry, whose
//! fingerprint must equal the approved request's, is sent with its fresh
//! signature, as the stored copy's would have expired). Once bytes
//! were written the hold is `released`; when nothing left leash (DNS,
//! connect, TLS failed) it is `approved` again and the reservation given
//! back; a leash that stops in between finds it `releasing` at start and
//! calls it `outcome_unknown`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};

use super::intercept::{intents_of, Forwarded, Tunnel};
use super::Proxy;
use crate::answer::{Answer, ProxyBody};
use crate::audit::NewEntry;
use crate::desk::rfc3339;
use crate::gate::{stated_intent, PlannedHold, Recheck};
use crate::holds::{Hold, HoldError, HoldState, NewHold, StoredRequest};
use crate::intent::{Classification, Fingerprint};

/// What the proxy knows about a request it is about to hold.
pub(super) struct HeldRequest {
    pub parts: Parts,
    pub raw: Bytes,
    pub intents: serde_json::Value,
    pub operation: String,
    pub fingerprint: Fingerprint,
    pub idempotency_key: Option<String>,
    pub decision_seq: u64,
}

/// The agent's retry of a held request, kept for a vendor whose requests
/// carry short-lived signatures ([`crate::adapters::Adapter::short_lived_signatures`]):
/// if the retry releases the hold, this is what is forwarded.
pub(super) struct Retry {
    pub parts: Parts,
    pub raw: Bytes,
}

impl Proxy {
    /// Opens a hold for a REQUIRE_HUMAN decision (already audited as
    /// `decision_seq`), tells the approvers, and waits for the decision.
    pub(super) async fn hold(
        &self,
        tunnel: &Tunnel,
        plan: PlannedHold,
        request: HeldRequest,
    ) -> Response<ProxyBody> {
        let vendor = tunnel.shape();
        let now = Utc::now();
        let stored = StoredRequest {
            method: request.parts.method.to_string(),
            path_and_query: request
                .parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string(),
            host: tunnel.host.clone(),
            port: tunnel.port,
            headers: request
                .parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
                .collect(),
            body: request.raw,
        };
        // An amountless request's record shows the approvers what leash read.
        let intents = crate::gate::with_read_fields(
            request.intents,
            request.parts.uri.path(),
            &stored.body,
            tunnel.shape(),
        );
        let new = NewHold {
            agent: tunnel.agent.clone(),
            vendor: tunnel.vendor().to_owned(),
            intents,
            needs: plan.needs,
            fingerprint: request.fingerprint.to_hex(),
            idempotency_key: request.idempotency_key,
            decision_seq: request.decision_seq,
            reason: plan.reason,
        };
        let created = self
            .desk
            .off_runtime(move |store| store.create(new, stored, now))
            .await;
        let created = match created {
            Ok(created) => created,
            Err(error @ crate::holds::HoldError::TooManyHolds { .. }) => {
                tracing::warn!(agent = %tunnel.agent, %error, "request refused: too many open holds");
                return Answer::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "leash_too_many_holds",
                    "error",
                    format!(
                        "this request needs a human, but {error}; it was not held and not forwarded. Ask an approver to decide the open holds (leash holds list), then send it again"
                    ),
                )
                .with_rule(plan.rule)
                .with_audit_seq(Some(request.decision_seq))
                .render_to(vendor, tunnel.asked());
            }
            Err(error) => {
                tracing::error!(agent = %tunnel.agent, %error, "could not open a hold; request not forwarded");
                return unavailable("leash cannot store a hold right now")
                    .with_rule(plan.rule)
                    .with_audit_seq(Some(request.decision_seq))
                    .render_to(vendor, tunnel.asked());
            }
        };
        if let Err(error) = self.desk.record(&created.entries).await {
            // The hold exists but its creation is not in the chain. Nothing
            // can be released while the chain refuses writes, so the agent
            // is told leash is unavailable rather than held.
            tracing::error!(hold = %created.hold.id, %error, "could not record a new hold");
            return audit_unavailable().render_to(vendor, tunnel.asked());
        }
        if created.created {
            tracing::info!(
                target: "leash::hold",
                hold = %created.hold.id,
                agent = %tunnel.agent,
                needs = %created.hold.still_needed().join("; "),
                "request held for approval"
            );
            self.desk
                .announce(&created.hold, &request.operation, plan.rules);
        }
        self.await_decision(tunnel, &created.hold.id, None).await
    }

    /// A request that a hold already answers (same agent, vendor and
    /// idempotency key, else same fingerprint): no second hold and no
    /// second notification; the hold's state decides.
    pub(super) async fn answer_retry(
        &self,
        tunnel: &Tunnel,
        hold: Hold,
        fingerprint: &Fingerprint,
        retry: Option<Retry>,
    ) -> Response<ProxyBody> {
        if hold.fingerprint != fingerprint.to_hex() {
            // Same idempotency key, different request: forwarding either
            // would be wrong (the vendor answers such a reuse with an
            // error too).
            return Answer::new(
                StatusCode::CONFLICT,
                "leash_idempotency_conflict",
                "rejected",
                format!(
                    "this Idempotency-Key was used for a different request, held as {}; leash forwards only the request that was approved, so use a new key for a new request",
                    hold.id
                ),
            )
            .with_audit_seq(Some(hold.decision_seq))
            .render_to(tunnel.shape(), tunnel.asked());
        }
        self.await_decision(tunnel, &hold.id, retry).await
    }

    /// Waits up to `holds.wait` for the hold to be decided, then answers
    /// by its state. Waiting is a watch channel per hold: no polling, and
    /// a waiting connection costs its task and socket.
    async fn await_decision(
        &self,
        tunnel: &Tunnel,
        id: &str,
        retry: Option<Retry>,
    ) -> Response<ProxyBody> {
        let mut subscription = self.desk.waiters.subscribe(id);
        // Read after subscribing: a decision made in between is then either
        // in what is read or notified to the subscription.
        let mut hold = match self.load_hold(tunnel, id) {
            Ok(hold) => hold,
            Err(response) => return *response,
        };
        if hold.state_at(Utc::now()) == HoldState::Pending {
            // Decided or timed out, the stored hold is what counts: read it
            // again either way.
            let _ = subscription.wait_for_decision(self.desk.wait).await;
            hold = match self.load_hold(tunnel, id) {
                Ok(hold) => hold,
                Err(response) => return *response,
            };
        }
        drop(subscription);
        self.answer_for(tunnel, hold, retry).await
    }

    /// The hold, or the answer to give when it cannot be read.
    fn load_hold(&self, tunnel: &Tunnel, id: &str) -> Result<Hold, Box<Response<ProxyBody>>> {
        let refuse =
            |what: &str| Box::new(unavailable(what).render_to(tunnel.shape(), tunnel.asked()));
        match self.desk.store.get(id) {
            Ok(Some(hold)) => Ok(hold),
            Ok(None) => Err(refuse("leash lost track of this request's hold")),
            Err(error) => {
                tracing::error!(hold = %id, %error, "cannot read a hold");
                Err(refuse("leash cannot read its holds right now"))
            }
        }
    }

    /// The answer a hold gives in its current state.
    async fn answer_for(
        &self,
        tunnel: &Tunnel,
        hold: Hold,
        retry: Option<Retry>,
    ) -> Response<ProxyBody> {
        let vendor = tunnel.shape();
        match hold.state_at(Utc::now()) {
            HoldState::Pending => {
                let hint = vendor.map_or_else(
                    || "Retry the same request after approval".to_string(),
                    |adapter| adapter.resume_hint(),
                );
                held_answer(&hold, self.desk.wait.as_secs().max(1), &hint)
                    .render_to(vendor, tunnel.asked())
            }
            HoldState::Approved => self.release(tunnel, hold, retry).await,
            HoldState::Rejected | HoldState::Expired => {
                closed_answer(&hold).render_to(vendor, tunnel.asked())
            }
            HoldState::Released => already_forwarded(&hold).render_to(vendor, tunnel.asked()),
            HoldState::Releasing => being_forwarded(&hold).render_to(vendor, tunnel.asked()),
            HoldState::OutcomeUnknown => outcome_unknown(&hold).render_to(vendor, tunnel.asked()),
        }
    }

    /// Forwards an approved hold's request, once. See the module docs.
    async fn release(
        &self,
        tunnel: &Tunnel,
        hold: Hold,
        retry: Option<Retry>,
    ) -> Response<ProxyBody> {
        let vendor = tunnel.shape();
        let now = Utc::now();
        let refuse = |answer: Answer| {
            answer
                .with_hold(hold.id.clone(), self.desk.wait.as_secs().max(1))
                .with_audit_seq(Some(hold.decision_seq))
                .render_to(vendor, tunnel.asked())
        };
        let stored = match self.desk.store.open_request(&hold.id) {
            Ok(stored) => stored,
            Err(HoldError::RequestGone(_)) => {
                // Released (or closed) by someone else since it was read.
                return match self.desk.store.get(&hold.id) {
                    Ok(Some(now_hold)) if now_hold.state != HoldState::Approved => {
                        Box::pin(self.answer_for(tunnel, now_hold, None)).await
                    }
                    _ => refuse(unavailable("leash cannot read this hold's request")),
                };
            }
            Err(error) => {
                tracing::error!(hold = %hold.id, %error, "cannot unseal a held request; not forwarded");
                return refuse(unavailable("leash cannot read this hold's request"));
            }
        };
        // The stored copy, unless the vendor's signatures are short-lived
        // and this release comes with the agent's retry: its fingerprint
        // is checked against the approved one below, like the stored
        // copy's.
        let (parts, body) = match retry {
            Some(retry) => (retry.parts, retry.raw),
            None => match request_parts(&stored) {
                Ok(request) => request,
                Err(reason) => {
                    tracing::error!(hold = %hold.id, %reason, "a held request cannot be rebuilt; not forwarded");
                    return refuse(unavailable("leash cannot rebuild this hold's request"));
                }
            },
        };
        let target = Tunnel::new(
            hold.agent.clone(),
            stored.host.clone(),
            stored.port,
            tunnel.adapter.clone(),
        );
        // Read again, as it will be sent: the amounts reserved are the
        // amounts forwarded.
        let reads = target.read_headers();
        let (parts, ambiguity) = super::intercept::prepare_head(parts, &reads);
        if ambiguity.is_some() {
            // Never held in the first place; a stored head that reads two
            // ways is not forwarded, approval or not.
            tracing::error!(hold = %hold.id, "a held request is ambiguous; not forwarded");
            return refuse(unavailable(
                "this hold's request can be read in more than one way",
            ));
        }
        let super::intercept::Read {
            classification,
            fingerprint,
            after,
            ..
        } = self.classify(&target, &parts, &body, None).await;
        if fingerprint.to_hex() != hold.fingerprint {
            tracing::error!(hold = %hold.id, "a held request does not match its fingerprint; not forwarded");
            return refuse(unavailable(
                "this hold's request does not match what was approved",
            ));
        }
        let account = super::intercept::HeadView::of(&parts, target.shape()).account;
        let mut intents = intents_of(&classification, &hold.agent, account, fingerprint, now);
        if !matches!(classification, Classification::Spend(_)) {
            // No amount leash could read: the rules and caps see the amount
            // the approvers stated, and it is what is reserved. An approved
            // amountless hold always has one; if not, nothing is forwarded.
            let Some(stated) = hold.stated_amount() else {
                tracing::error!(hold = %hold.id, "an amountless hold was approved without a stated amount; not forwarded");
                return refuse(unavailable(
                    "this hold was approved without the amount it moves",
                ));
            };
            let mut intent = stated_intent(
                &hold.vendor,
                classification.operation(),
                &hold.agent,
                stated,
                fingerprint,
                now,
            );
            // The account it acts for, as for any intent: a REJECT rule
            // narrowed by `accounts:` must see it.
            intent.account = account.map(|a| crate::audit::mask_card_numbers(a).into_owned());
            intents = vec![intent];
        }

        let reservation = match self
            .gate
            .recheck_and_reserve(&hold.agent, &intents, now)
            .await
        {
            Ok(Recheck::Reserved(reservation)) => reservation,
            Ok(Recheck::Rejected { rule, reason }) => {
                return self
                    .reject_at_release(tunnel, &hold, rule, &reason, now)
                    .await;
            }
            Err(error) => {
                tracing::error!(hold = %hold.id, %error, "spend ledger failed at release; not forwarded");
                return refuse(crate::gate::ledger_unavailable());
            }
        };

        let id = hold.id.clone();
        let released = self
            .desk
            .off_runtime(move |store| store.mark_releasing(&id, now))
            .await;
        let mut released = match released {
            Ok(released) => released,
            Err(error) => {
                self.gate.cancel(&reservation).await;
                if !error.entries().is_empty() {
                    let _ = self.desk.record(error.entries()).await;
                }
                return match self.desk.store.get(&hold.id) {
                    Ok(Some(now_hold)) if now_hold.state != HoldState::Approved => {
                        self.desk.wake(&now_hold);
                        Box::pin(self.answer_for(tunnel, now_hold, None)).await
                    }
                    _ => {
                        tracing::error!(hold = %hold.id, %error, "could not release a hold; not forwarded");
                        refuse(unavailable("leash cannot release this hold right now"))
                    }
                };
            }
        };
        // Write-ahead, as for any decision: the release is in the chain
        // before the request leaves, naming what it reserved (a restart
        // keeps a reservation that a durable entry names, and releases one
        // that none does: its request never left).
        released.entries = std::mem::take(&mut released.entries)
            .into_iter()
            .map(|entry| entry.with_detail("reservation", reservation.ids.clone().into()))
            .collect();
        if let Err(error) = self.desk.record(&released.entries).await {
            self.gate.cancel(&reservation).await;
            tracing::error!(hold = %hold.id, %error, "could not record a release; not forwarded");
            return audit_unavailable().render_to(vendor, tunnel.asked());
        }
        self.desk.wake(&released.hold);
        tracing::info!(target: "leash::hold", hold = %hold.id, agent = %hold.agent, "held request released");

        // `parts` and `body` were rebuilt from the sealed record that
        // `mark_releasing` has just handed over and deleted: an approved
        // hold's record is never rewritten, so they are the same bytes.
        let (response, forwarded) = self.forward(&target, parts, body, &after).await;
        let spend = self.settle(&reservation, forwarded).await;
        let mut outcome =
            NewEntry::outcome(hold.agent.clone(), forwarded.status().map(|s| s.as_u16()))
                .with_detail("hold_id", hold.id.clone().into())
                .with_detail("reservation", spend.into());
        if forwarded == Forwarded::NotSent {
            // Nothing reached the vendor: the release did not happen. The
            // hold goes back to `approved`, its request sealed again, so the
            // agent's next retry releases it (never "already forwarded" for
            // what was never sent).
            outcome = outcome.with_detail("not_sent", true.into());
            let id = hold.id.clone();
            let request = released.request;
            let back = self
                .desk
                .off_runtime(move |store| {
                    store.unrelease(
                        &id,
                        &request,
                        "the release failed before any byte reached the vendor; approved again, the next retry releases it",
                    )
                })
                .await;
            match back {
                Ok(changed) => {
                    if let Err(error) = self.desk.record(&changed.entries).await {
                        tracing::error!(hold = %hold.id, %error, "could not record a failed release");
                    }
                    self.desk.wake(&changed.hold);
                }
                Err(error) => {
                    tracing::error!(hold = %hold.id, %error, "a release that sent nothing could not be undone; the hold stays releasing and reads outcome_unknown after the next start");
                }
            }
        } else {
            // Bytes left leash: `released`, whatever the vendor answered.
            drop(released.request);
            let id = hold.id.clone();
            let done = self
                .desk
                .off_runtime(move |store| store.mark_released(&id, Utc::now()))
                .await;
            match done {
                Ok(changed) => {
                    if let Err(error) = self.desk.record(&changed.entries).await {
                        tracing::error!(hold = %hold.id, %error, "could not record a release");
                    }
                    self.desk.wake(&changed.hold);
                }
                // Stays `releasing` on disk, which the next start turns
                // into `outcome_unknown`: never "not sent", never re-sent.
                Err(error) => {
                    tracing::error!(hold = %hold.id, %error, "could not mark a sent release as released")
                }
            }
        }
        self.record_outcome(outcome, hold.decision_seq);
        response
    }

    /// An approved hold that a REJECT rule now refuses.
    async fn reject_at_release(
        &self,
        tunnel: &Tunnel,
        hold: &Hold,
        rule: u32,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Response<ProxyBody> {
        let vendor = tunnel.shape();
        match self
            .desk
            .store
            .mark_rejected_on_release(&hold.id, reason, now)
        {
            Ok(changed) => {
                let seq = self.desk.record(&changed.entries).await;
                self.desk.wake(&changed.hold);
                tracing::info!(target: "leash::hold", hold = %hold.id, rule, %reason, "approved hold rejected at release");
                let answer = closed_answer(&changed.hold).with_rule(Some(rule));
                match seq {
                    Ok(seq) => answer.with_audit_seq(seq).render_to(vendor, tunnel.asked()),
                    Err(_) => answer.render_to(vendor, tunnel.asked()),
                }
            }
            Err(error) => match self.desk.store.get(&hold.id) {
                Ok(Some(now_hold)) if now_hold.state != HoldState::Approved => {
                    Box::pin(self.answer_for(tunnel, now_hold, None)).await
                }
                _ => {
                    tracing::error!(hold = %hold.id, %error, "could not reject a hold at release");
                    unavailable("leash cannot update this hold right now")
                        .render_to(vendor, tunnel.asked())
                }
            },
        }
    }
}

/// A stored request as hyper parts and a body.
fn request_parts(stored: &StoredRequest) -> Result<(Parts, Bytes), String> {
    let method = Method::from_bytes(stored.method.as_bytes())
        .map_err(|_| format!("invalid method {:?}", stored.method))?;
    let (mut parts, ()) = Request::builder()
        .method(method)
        .uri(stored.path_and_query.as_str())
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts();
    parts.headers = stored.header_map()?;
    Ok((parts, stored.body.clone()))
}

/// 403 `leash_held` (SPEC §7): who must still approve, and the hold id.
pub fn held_answer(hold: &Hold, retry_after_secs: u64, resume_hint: &str) -> Answer {
    let needed = hold.still_needed();
    let who = if needed.is_empty() {
        "its approvers".to_string()
    } else {
        needed.join("; ")
    };
    Answer::new(
        StatusCode::FORBIDDEN,
        "leash_held",
        "held",
        format!(
            "leash is holding this request until it is approved (hold {}): needs {who}. Why: {}. {resume_hint}; the hold expires at {}",
            hold.id,
            hold.reason,
            rfc3339(hold.expires_at)
        ),
    )
    .with_rule(hold.needs.first().and_then(|n| n.priority))
    .with_hold(hold.id.clone(), retry_after_secs)
    .with_audit_seq(Some(hold.decision_seq))
}

/// 403 `leash_rejected` for a hold that was rejected or expired.
pub fn closed_answer(hold: &Hold) -> Answer {
    let message = match hold.state_at(Utc::now()) {
        HoldState::Expired => format!(
            "leash rejected this request: hold {} expired at {} without a decision",
            hold.id,
            rfc3339(hold.release_by.unwrap_or(hold.expires_at))
        ),
        _ => format!(
            "leash rejected this request: hold {} {}",
            hold.id,
            hold.resolution.as_deref().unwrap_or("was rejected")
        ),
    };
    let mut answer = Answer::new(StatusCode::FORBIDDEN, "leash_rejected", "rejected", message)
        .with_rule(hold.needs.first().and_then(|n| n.priority))
        .with_audit_seq(Some(hold.decision_seq));
    answer.hold_id = Some(hold.id.clone());
    answer
}

/// 409 for a retry of a hold whose request was already forwarded: leash
/// never sends it twice.
fn already_forwarded(hold: &Hold) -> Answer {
    let mut answer = Answer::new(
        StatusCode::CONFLICT,
        "leash_already_forwarded",
        "rejected",
        format!(
            "hold {} was approved and its request already forwarded{}; leash does not send it twice",
            hold.id,
            hold.closed_at
                .map(|at| format!(" at {}", rfc3339(at)))
                .unwrap_or_default()
        ),
    )
    .with_audit_seq(Some(hold.decision_seq));
    answer.hold_id = Some(hold.id.clone());
    answer
}

/// 409 for a retry that arrives while the hold's request is being sent:
/// its answer goes to the connection that released it.
fn being_forwarded(hold: &Hold) -> Answer {
    let mut answer = Answer::new(
        StatusCode::CONFLICT,
        "leash_release_in_progress",
        "rejected",
        format!(
            "hold {} was approved and its request is being forwarded right now; leash does not send it twice",
            hold.id
        ),
    )
    .with_audit_seq(Some(hold.decision_seq));
    answer.hold_id = Some(hold.id.clone());
    answer
}

/// 409 for a retry of a hold whose send was interrupted (leash stopped
/// between handing the request over and learning whether any byte reached
/// the vendor): never "already forwarded" for what may not have been, and
/// never sent again by leash — a person has to look at the vendor's side.
fn outcome_unknown(hold: &Hold) -> Answer {
    let mut answer = Answer::new(
        StatusCode::CONFLICT,
        "leash_outcome_unknown",
        "rejected",
        format!(
            "hold {} was approved, but leash stopped while forwarding it{}: whether {} received it is unknown. leash does not send it again; check with the vendor (and the approvers) before making this request anew",
            hold.id,
            hold.closed_at
                .map(|at| format!(" (at {})", rfc3339(at)))
                .unwrap_or_default(),
            hold.vendor,
        ),
    )
    .with_audit_seq(Some(hold.decision_seq));
    answer.hold_id = Some(hold.id.clone());
    answer
}

fn unavailable(what: &str) -> Answer {
    Answer::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "leash_unavailable",
        "error",
        format!("{what}; the request was not forwarded"),
    )
}

fn audit_unavailable() -> Answer {
    Answer::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "leash_audit_unavailable",
        "error",
        "leash cannot write its audit log right now; the request was not forwarded",
    )
}
