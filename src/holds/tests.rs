//! The store's behaviour end to end: quorums, refusals, races, restarts,
//! sealing at rest, retries.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::audit::Kind;
use crate::policy::engine::ApprovalNeed;
use crate::policy::model::{ApproverDirectory, Quorum};
use crate::store::Store;

const TTL: Duration = Duration::from_secs(24 * 60 * 60);
const AUTH: &str = "Bearer sk_live_51SuperSecretKeyValue";
const BODY: &str = "amount=180000&currency=eur&description=private-body-marker";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, 9, 0, 0).unwrap()
}

fn mins(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn directory() -> ApproverDirectory {
    let people: BTreeSet<String> = ["alex", "kim", "maya", "sam"].map(String::from).into();
    ApproverDirectory {
        people,
        groups: [(
            "partners".to_string(),
            ["alex", "kim", "sam"].map(String::from).into(),
        )]
        .into(),
    }
}

fn need(priority: u32, approvers: &[&str], quorum: Quorum) -> Need {
    Need::resolve(
        &ApprovalNeed {
            priority: Some(priority),
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            quorum,
        },
        &directory(),
    )
}

fn new_hold(needs: Vec<Need>) -> NewHold {
    NewHold {
        agent: "growth-agent".into(),
        vendor: "acme".into(),
        intents: json!([{"operation": "payout.create", "amount": {"amount": "1800.00", "currency": "EUR"}}]),
        needs,
        fingerprint: "ab".repeat(32),
        idempotency_key: Some("idem-1".into()),
        decision_seq: 41,
        reason: "rule 20: amount 1,800.00 EUR >= 1,500.00 EUR".into(),
    }
}

fn request() -> StoredRequest {
    StoredRequest {
        method: "POST".into(),
        path_and_query: "/v1/payouts".into(),
        host: "api.example.com".into(),
        port: 443,
        headers: vec![
            ("authorization".into(), AUTH.as_bytes().to_vec()),
            ("idempotency-key".into(), b"idem-1".to_vec()),
            (
                "content-type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
        ],
        body: Bytes::from_static(BODY.as_bytes()),
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: Store,
    holds: HoldStore,
}

fn key() -> HoldKey {
    HoldKey::from_bytes(&[42u8; 32]).unwrap()
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let holds = HoldStore::open(&store, key(), TTL).unwrap();
    Env { dir, store, holds }
}

fn create(holds: &HoldStore, needs: Vec<Need>) -> Hold {
    let created = holds.create(new_hold(needs), request(), t0()).unwrap();
    assert!(created.created);
    created.hold
}

fn approve(holds: &HoldStore, id: &str, who: &str) -> Result<ApprovalOutcome, HoldError> {
    holds.approve(id, who, Channel::Api, None, t0() + mins(1))
}

#[test]
fn two_of_three_needs_two_different_approvers() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::Count(2))]);
    assert!(hold.id.starts_with("hold_") && hold.id.len() == 5 + 32);
    assert_eq!(hold.needs[0].eligible.len(), 3);

    let first = approve(&env.holds, &hold.id, "alex").unwrap();
    assert_eq!(first.newly_resolved, None);
    assert_eq!(first.still_needed, vec!["1 more of [kim, sam] for rule 30"]);
    assert_eq!(first.entries.len(), 1);
    assert_eq!(first.entries[0].kind, Kind::Approval);
    assert_eq!(first.entries[0].approver.as_deref(), Some("alex"));
    assert_eq!(first.entries[0].details["channel"], json!("api"));

    // The same person again, by any channel, is not a second count.
    for channel in [Channel::Api, Channel::Slack, Channel::Cli] {
        let again = env
            .holds
            .approve(&hold.id, "alex", channel, None, t0() + mins(2));
        assert!(
            matches!(again, Err(HoldError::AlreadyVoted { ref approver, .. }) if approver == "alex"),
            "{again:?}"
        );
    }
    let current = env.holds.get(&hold.id).unwrap().unwrap();
    assert_eq!(current.state, HoldState::Pending);
    assert_eq!(current.approvals.len(), 1);

    let second = env
        .holds
        .approve(
            &hold.id,
            "sam",
            Channel::Slack,
            Some("ok, vendor confirmed"),
            t0() + mins(3),
        )
        .unwrap();
    assert_eq!(second.newly_resolved, Some(HoldState::Approved));
    assert!(second.still_needed.is_empty());
    assert_eq!(second.hold.state, HoldState::Approved);
    assert_eq!(second.hold.resolved_by.as_deref(), Some("sam"));
    assert_eq!(second.hold.release_by, Some(t0() + mins(3) + mins(24 * 60)));
    assert_eq!(second.entries[0].details["hold_state"], json!("approved"));
    assert_eq!(
        second.entries[0].details["comment"],
        json!("ok, vendor confirmed")
    );

    // Decided: further votes are refused, not counted.
    assert!(matches!(
        approve(&env.holds, &hold.id, "kim"),
        Err(HoldError::NotPending(HoldState::Approved))
    ));
}

#[test]
fn quorum_all_of_a_group_needs_every_member() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::All)]);
    assert_eq!(hold.needs[0].quorum, 3);
    assert_eq!(
        approve(&env.holds, &hold.id, "alex")
            .unwrap()
            .newly_resolved,
        None
    );
    let outcome = approve(&env.holds, &hold.id, "kim").unwrap();
    assert_eq!(outcome.newly_resolved, None);
    assert_eq!(outcome.still_needed, vec!["1 more of [sam] for rule 30"]);
    assert_eq!(
        approve(&env.holds, &hold.id, "sam").unwrap().newly_resolved,
        Some(HoldState::Approved)
    );
}

#[test]
fn every_need_must_be_met() {
    let env = env();
    let hold = create(
        &env.holds,
        vec![
            need(20, &["maya"], Quorum::Count(1)),
            need(30, &["partners"], Quorum::Count(2)),
        ],
    );
    let a = approve(&env.holds, &hold.id, "alex").unwrap();
    let b = approve(&env.holds, &hold.id, "sam").unwrap();
    assert_eq!(a.newly_resolved, None);
    assert_eq!(b.newly_resolved, None);
    assert_eq!(b.still_needed, vec!["1 more of [maya] for rule 20"]);
    assert_eq!(b.hold.state, HoldState::Pending);

    // kim is a partner, but rule 30 already has its two: nothing to add.
    let kim = approve(&env.holds, &hold.id, "kim");
    assert!(
        matches!(&kim, Err(HoldError::NotEligible { why, .. }) if why.contains("already has its approvals")),
        "{kim:?}"
    );

    let maya = approve(&env.holds, &hold.id, "maya").unwrap();
    assert_eq!(maya.newly_resolved, Some(HoldState::Approved));
}

#[test]
fn one_person_can_satisfy_several_needs_they_are_named_in() {
    let env = env();
    let hold = create(
        &env.holds,
        vec![
            need(20, &["maya"], Quorum::Count(1)),
            need(30, &["maya", "alex"], Quorum::Count(1)),
        ],
    );
    assert_eq!(
        approve(&env.holds, &hold.id, "maya")
            .unwrap()
            .newly_resolved,
        Some(HoldState::Approved)
    );
}

#[test]
fn one_rejection_rejects_and_drops_the_request() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::Count(2))]);
    approve(&env.holds, &hold.id, "alex").unwrap();
    let outcome = env
        .holds
        .reject(
            &hold.id,
            "kim",
            Channel::Slack,
            Some("not in budget"),
            t0() + mins(5),
        )
        .unwrap();
    assert_eq!(outcome.newly_resolved, Some(HoldState::Rejected));
    assert_eq!(outcome.hold.state, HoldState::Rejected);
    assert_eq!(outcome.hold.resolved_by.as_deref(), Some("kim"));
    assert!(outcome
        .hold
        .resolution
        .as_deref()
        .unwrap()
        .contains("not in budget"));
    let kinds: Vec<Kind> = outcome.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Kind::Approval, Kind::HoldResolved]);
    let resolved = &outcome.entries[1];
    assert_eq!(resolved.decision.as_deref(), Some("rejected"));
    assert_eq!(resolved.approver.as_deref(), Some("kim"));
    assert_eq!(resolved.details["channel"], json!("slack"));

    assert!(matches!(
        env.holds.open_request(&hold.id),
        Err(HoldError::RequestGone(_))
    ));
    assert!(matches!(
        approve(&env.holds, &hold.id, "sam"),
        Err(HoldError::NotPending(HoldState::Rejected))
    ));
    assert!(matches!(
        env.holds.mark_releasing(&hold.id, t0() + mins(6)),
        Err(HoldError::NotPending(HoldState::Rejected))
    ));
}

#[test]
fn a_rejection_counts_from_anyone_eligible_even_once_their_need_is_met() {
    let env = env();
    let hold = create(
        &env.holds,
        vec![
            need(20, &["maya"], Quorum::Count(1)),
            need(30, &["alex", "sam"], Quorum::Count(1)),
        ],
    );
    approve(&env.holds, &hold.id, "alex").unwrap();
    // alex already voted, whichever way they vote now.
    assert!(matches!(
        env.holds
            .reject(&hold.id, "alex", Channel::Api, None, t0() + mins(2)),
        Err(HoldError::AlreadyVoted {
            vote: Vote::Approve,
            ..
        })
    ));
    // sam's rule is met, so sam's approval would add nothing…
    assert!(matches!(
        approve(&env.holds, &hold.id, "sam"),
        Err(HoldError::NotEligible { .. })
    ));
    // …but sam could have been needed, and can still say no.
    let outcome = env
        .holds
        .reject(&hold.id, "sam", Channel::Api, None, t0() + mins(3))
        .unwrap();
    assert_eq!(outcome.newly_resolved, Some(HoldState::Rejected));
}

fn create_other(holds: &HoldStore, idem: &str) -> Hold {
    let mut new = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    new.idempotency_key = Some(idem.into());
    // Another request: another body too (the same body under another key
    // is a re-call of the open hold, SPEC §6).
    new.fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(idem.as_bytes()));
    let created = holds.create(new, request(), t0()).unwrap();
    assert!(created.created);
    created.hold
}

#[test]
fn a_non_eligible_approver_is_refused() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::Count(1))]);
    for (who, vote) in [
        ("maya", Vote::Approve),
        ("maya", Vote::Reject),
        ("nobody", Vote::Approve),
        ("partners", Vote::Approve),
        ("", Vote::Approve),
    ] {
        let result = match vote {
            Vote::Approve => env
                .holds
                .approve(&hold.id, who, Channel::Api, None, t0() + mins(1)),
            Vote::Reject => env
                .holds
                .reject(&hold.id, who, Channel::Api, None, t0() + mins(1)),
        };
        assert!(
            matches!(&result, Err(HoldError::NotEligible { why, .. }) if why.contains("not an approver")),
            "{who}: {result:?}"
        );
    }
    let hold = env.holds.get(&hold.id).unwrap().unwrap();
    assert_eq!(hold.state, HoldState::Pending);
    assert!(hold.approvals.is_empty());
    assert!(matches!(
        approve(&env.holds, "hold_00000000000000000000000000000000", "alex"),
        Err(HoldError::NotFound(_))
    ));
}

#[test]
fn an_empty_approver_list_means_nobody_not_everyone() {
    let env = env();
    let unnamed = Need::resolve(
        &ApprovalNeed {
            priority: None,
            approvers: vec![],
            quorum: Quorum::Count(1),
        },
        &directory(),
    );
    let hold = create(&env.holds, vec![unnamed]);
    assert!(approve(&env.holds, &hold.id, "maya").is_err());
    assert_eq!(
        env.holds.get(&hold.id).unwrap().unwrap().state,
        HoldState::Pending
    );
}

#[test]
fn an_approval_after_expiry_is_refused_and_the_hold_is_expired() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::Count(2))]);
    approve(&env.holds, &hold.id, "alex").unwrap();

    let late = hold.expires_at; // the deadline itself is too late
    let result = env
        .holds
        .approve(&hold.id, "sam", Channel::Slack, None, late);
    let Err(HoldError::Expired { at, entries, .. }) = &result else {
        panic!("{result:?}");
    };
    assert_eq!(*at, hold.expires_at);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, Kind::HoldResolved);
    assert_eq!(entries[0].decision.as_deref(), Some("expired"));
    assert_eq!(entries[0].approver, None);
    assert_eq!(result.as_ref().unwrap_err().entries().len(), 1);

    let stored = env.holds.get(&hold.id).unwrap().unwrap();
    assert_eq!(stored.state, HoldState::Expired);
    assert_eq!(stored.approvals.len(), 1, "the late vote is not recorded");
    assert_eq!(stored.resolved_by, None);
    assert!(matches!(
        env.holds.open_request(&hold.id),
        Err(HoldError::RequestGone(_))
    ));

    // Later attempts are refused too, without a second expiry entry.
    let again = env
        .holds
        .reject(&hold.id, "kim", Channel::Api, None, late + mins(1));
    assert!(
        matches!(&again, Err(HoldError::Expired { entries, .. }) if entries.is_empty()),
        "{again:?}"
    );
    assert!(env.holds.expire_due(late + mins(2)).unwrap().is_empty());
    assert!(env.holds.pending().unwrap().is_empty());
}

#[test]
fn expire_due_expires_pending_and_uncollected_approved_holds_only() {
    let env = env();
    let stale = create_other(&env.holds, "a");
    let approved = create_other(&env.holds, "b");
    approve(&env.holds, &approved.id, "maya").unwrap();
    let mut later = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    later.idempotency_key = Some("c".into());
    let fresh = env
        .holds
        .create(later, request(), t0() + mins(60))
        .unwrap()
        .hold;

    assert!(env.holds.expire_due(t0() + mins(60)).unwrap().is_empty());
    // Pending: the stale and the fresh hold; the approved one is open, not
    // pending.
    assert_eq!(env.holds.pending_count(t0() + mins(60)).unwrap(), 2);
    let due = stale.expires_at;
    let expired = env.holds.expire_due(due).unwrap();
    assert_eq!(env.holds.pending_count(due).unwrap(), 1);
    let ids: Vec<&str> = expired.iter().map(|c| c.hold.id.as_str()).collect();
    assert_eq!(ids, [stale.id.as_str()]);
    assert_eq!(expired[0].hold.state, HoldState::Expired);
    assert_eq!(expired[0].entries[0].decision.as_deref(), Some("expired"));
    assert_eq!(
        env.holds.pending().unwrap()[0].id,
        fresh.id,
        "the fresh hold is still pending"
    );

    // The approved hold has `ttl` from its approval to be collected.
    let release_by = env
        .holds
        .get(&approved.id)
        .unwrap()
        .unwrap()
        .release_by
        .unwrap();
    assert!(env
        .holds
        .expire_due(release_by - mins(1))
        .unwrap()
        .is_empty());
    let expired = env.holds.expire_due(release_by).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].hold.id, approved.id);
    assert!(expired[0]
        .hold
        .resolution
        .as_deref()
        .unwrap()
        .contains("not released within"));
    assert!(matches!(
        env.holds.mark_releasing(&approved.id, release_by),
        Err(HoldError::Expired { .. })
    ));
}

#[test]
fn eight_concurrent_approvals_resolve_a_two_of_n_hold_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let people: BTreeSet<String> = (0..8).map(|i| format!("p{i}")).collect();
    let holds = Arc::new(HoldStore::open(&store, key(), TTL).unwrap());
    for round in 0..5 {
        let mut new = new_hold(vec![Need::new(
            Some(30),
            vec!["everyone".into()],
            people.clone(),
            Quorum::Count(2),
        )]);
        new.idempotency_key = Some(format!("round-{round}"));
        new.fingerprint = format!("{round:064}");
        let id = holds.create(new, request(), t0()).unwrap().hold.id;
        let barrier = Arc::new(Barrier::new(8));
        let results: Vec<_> = (0..8)
            .map(|i| {
                let holds = Arc::clone(&holds);
                let barrier = Arc::clone(&barrier);
                let id = id.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    holds.approve(&id, &format!("p{i}"), Channel::Api, None, t0() + mins(1))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let completed = results
            .iter()
            .filter(|r| matches!(r, Ok(o) if o.newly_resolved == Some(HoldState::Approved)))
            .count();
        let counted = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(HoldError::NotPending(HoldState::Approved))))
            .count();
        assert_eq!(completed, 1, "round {round}: {results:?}");
        assert_eq!(counted, 2);
        assert_eq!(refused, 6);
        let hold = holds.get(&id).unwrap().unwrap();
        assert_eq!(hold.state, HoldState::Approved);
        assert_eq!(hold.approvals.len(), 2);
    }
}

#[test]
fn mark_releasing_succeeds_once_under_eight_concurrent_callers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let holds = Arc::new(HoldStore::open(&store, key(), TTL).unwrap());
    let id = create(&holds, vec![need(20, &["maya"], Quorum::Count(1))]).id;
    approve(&holds, &id, "maya").unwrap();

    let barrier = Arc::new(Barrier::new(8));
    let results: Vec<_> = (0..8)
        .map(|_| {
            let holds = Arc::clone(&holds);
            let barrier = Arc::clone(&barrier);
            let id = id.clone();
            std::thread::spawn(move || {
                barrier.wait();
                holds.mark_releasing(&id, t0() + mins(2))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let released: Vec<&Releasing> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(released.len(), 1, "{results:?}");
    assert_eq!(released[0].request, request());
    assert_eq!(released[0].hold.state, HoldState::Releasing);
    assert_eq!(
        released[0].entries[0].decision.as_deref(),
        Some("releasing")
    );
    assert_eq!(released[0].entries[0].approver.as_deref(), Some("maya"));
    for result in &results {
        if let Err(e) = result {
            assert!(
                matches!(e, HoldError::NotPending(HoldState::Releasing)),
                "{e:?}"
            );
        }
    }
    // The request went with the release.
    assert!(matches!(
        holds.open_request(&id),
        Err(HoldError::RequestGone(_))
    ));
    assert!(matches!(
        holds.mark_releasing(&id, t0() + mins(3)),
        Err(HoldError::NotPending(HoldState::Releasing))
    ));
    // Bytes were sent: released, and still never handed over again.
    let done = holds.mark_released(&id, t0() + mins(3)).unwrap();
    assert_eq!(done.hold.state, HoldState::Released);
    assert_eq!(done.entries[0].decision.as_deref(), Some("released"));
    assert!(matches!(
        holds.mark_releasing(&id, t0() + mins(4)),
        Err(HoldError::NotPending(HoldState::Released))
    ));
    assert!(matches!(
        holds.mark_released(&id, t0() + mins(4)),
        Err(HoldError::NotPending(HoldState::Released))
    ));
}

#[test]
fn a_release_can_be_refused_by_a_reject_rule() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    assert!(matches!(
        env.holds
            .mark_rejected_on_release(&hold.id, "cap", t0() + mins(1)),
        Err(HoldError::NotPending(HoldState::Pending))
    ));
    approve(&env.holds, &hold.id, "maya").unwrap();
    let changed = env
        .holds
        .mark_rejected_on_release(
            &hold.id,
            "rule 10: spent 4,200.00 + 1,800.00 > 5,000.00 EUR",
            t0() + mins(2),
        )
        .unwrap();
    assert_eq!(changed.hold.state, HoldState::Rejected);
    assert_eq!(changed.entries[0].decision.as_deref(), Some("rejected"));
    assert_eq!(changed.entries[0].approver, None, "leash decided, not maya");
    assert!(changed.hold.resolution.unwrap().contains("rule 10"));
    assert!(matches!(
        env.holds.mark_releasing(&hold.id, t0() + mins(3)),
        Err(HoldError::NotPending(HoldState::Rejected))
    ));
    assert!(matches!(
        env.holds.open_request(&hold.id),
        Err(HoldError::RequestGone(_))
    ));
}

#[test]
fn holds_and_sealed_requests_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_path = hold_key_path(&dir.path().join("certs/leash-ca.key"));
    let (pending_id, approved_id);
    {
        let store = Store::open(&data).unwrap();
        let holds =
            HoldStore::open(&store, HoldKey::load_or_create(&key_path).unwrap(), TTL).unwrap();
        // One store per database: a second would have its own lock.
        assert!(matches!(
            HoldStore::open(&store, key(), TTL),
            Err(HoldError::InUse)
        ));
        pending_id = create(&holds, vec![need(30, &["partners"], Quorum::Count(2))]).id;
        approve(&holds, &pending_id, "alex").unwrap();
        approved_id = create_other(&holds, "idem-9").id;
        approve(&holds, &approved_id, "maya").unwrap();
        // No explicit flush: transitions are durable when they return.
    }
    let store = Store::open(&data).unwrap();
    let holds = HoldStore::open(&store, HoldKey::load_or_create(&key_path).unwrap(), TTL).unwrap();
    let pending = holds.get(&pending_id).unwrap().unwrap();
    assert_eq!(pending.state, HoldState::Pending);
    assert_eq!(pending.approvals[0].approver, "alex");
    assert_eq!(holds.open_request(&pending_id).unwrap(), request());
    assert_eq!(
        holds
            .pending()
            .unwrap()
            .iter()
            .map(|h| &h.id)
            .collect::<Vec<_>>(),
        [&pending_id]
    );
    // The count carries over: one more completes it.
    assert_eq!(
        approve(&holds, &pending_id, "sam").unwrap().newly_resolved,
        Some(HoldState::Approved)
    );
    let released = holds.mark_releasing(&approved_id, t0() + mins(5)).unwrap();
    assert_eq!(released.request, request());
    holds.mark_released(&approved_id, t0() + mins(5)).unwrap();
    assert_eq!(holds.list(None).unwrap().len(), 2);
    assert_eq!(holds.list(Some(HoldState::Released)).unwrap().len(), 1);

    // Another key cannot open what the first sealed.
    drop(holds);
    let holds = HoldStore::open(&store, HoldKey::from_bytes(&[1u8; 32]).unwrap(), TTL).unwrap();
    assert!(matches!(
        holds.open_request(&pending_id),
        Err(HoldError::Seal(SealError::Open { .. }))
    ));
}

#[test]
fn a_tampered_sealed_record_fails_to_open_and_blocks_release() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    let other = create_other(&env.holds, "idem-x");
    let tree = env.store.tree("hold_requests").unwrap();
    let sealed = tree.get(hold.id.as_bytes()).unwrap().unwrap().to_vec();

    let mut tampered = sealed.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x40;
    tree.insert(hold.id.as_bytes(), tampered).unwrap();
    assert!(matches!(
        env.holds.open_request(&hold.id),
        Err(HoldError::Seal(SealError::Open { .. }))
    ));
    approve(&env.holds, &hold.id, "maya").unwrap();
    assert!(matches!(
        env.holds.mark_releasing(&hold.id, t0() + mins(2)),
        Err(HoldError::Seal(_))
    ));
    assert_eq!(
        env.holds.get(&hold.id).unwrap().unwrap().state,
        HoldState::Approved,
        "a failed release changes nothing"
    );

    // A record moved from another hold does not open either.
    tree.insert(other.id.as_bytes(), sealed).unwrap();
    assert!(matches!(
        env.holds.open_request(&other.id),
        Err(HoldError::Seal(SealError::Open { .. }))
    ));
}

#[test]
fn a_retry_finds_the_existing_hold() {
    let env = env();
    let first = env
        .holds
        .create(
            new_hold(vec![need(20, &["maya"], Quorum::Count(1))]),
            request(),
            t0(),
        )
        .unwrap();
    assert!(first.created);
    assert_eq!(first.entries.len(), 1);
    assert_eq!(first.entries[0].kind, Kind::HoldCreated);
    assert_eq!(first.entries[0].details["decision_seq"], json!(41));

    // Same agent, vendor, idempotency key; a different body is still the
    // same retry (the held original is what gets forwarded).
    let mut retry = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    retry.fingerprint = "cd".repeat(32);
    let again = env
        .holds
        .create(retry.clone(), request(), t0() + mins(1))
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.hold.id, first.hold.id);
    assert!(again.entries.is_empty());
    assert_eq!(
        env.holds
            .find_retry(&retry.retry_key(), t0() + mins(1))
            .unwrap()
            .unwrap()
            .id,
        first.hold.id
    );
    assert_eq!(env.holds.list(None).unwrap().len(), 1);

    // Without an idempotency key, the fingerprint is the identity.
    let mut bare = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    bare.idempotency_key = None;
    bare.fingerprint = "cd".repeat(32);
    let a = env.holds.create(bare.clone(), request(), t0()).unwrap();
    let b = env.holds.create(bare.clone(), request(), t0()).unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.hold.id, b.hold.id);
    assert_ne!(a.hold.id, first.hold.id);

    // Another agent or vendor is another request.
    let changes: [fn(&mut NewHold); 2] = [
        |n| n.agent = "other-agent".into(),
        |n| n.vendor = "globex".into(),
    ];
    for change in changes {
        let mut other = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
        change(&mut other);
        assert!(env.holds.create(other, request(), t0()).unwrap().created);
    }
    // Another key with the same body, while the hold is open, is a re-call
    // (SDKs make up a new key per call): the same hold.
    let mut recall = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    recall.idempotency_key = Some("idem-2".into());
    let recalled = env.holds.create(recall.clone(), request(), t0()).unwrap();
    assert!(!recalled.created);
    assert_eq!(recalled.hold.id, first.hold.id);
    assert_eq!(
        env.holds
            .find_open_by_fingerprint("growth-agent", "acme", &"ab".repeat(32), t0())
            .unwrap()
            .map(|h| h.id),
        Some(first.hold.id.clone())
    );

    // A rejected hold answers its retries for a ttl, then the request is
    // new again.
    env.holds
        .reject(&first.hold.id, "maya", Channel::Api, None, t0() + mins(2))
        .unwrap();
    let soon = env
        .holds
        .create(retry.clone(), request(), t0() + mins(3))
        .unwrap();
    assert!(!soon.created);
    assert_eq!(soon.hold.state, HoldState::Rejected);
    let much_later = t0() + mins(2) + mins(24 * 60);
    assert!(env
        .holds
        .find_retry(&retry.retry_key(), much_later)
        .unwrap()
        .is_none());
    let fresh = env.holds.create(retry, request(), much_later).unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.hold.id, first.hold.id);
}

#[test]
fn a_retry_of_an_overdue_hold_expires_it() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    let late = env
        .holds
        .create(
            new_hold(vec![need(20, &["maya"], Quorum::Count(1))]),
            request(),
            hold.expires_at + mins(1),
        )
        .unwrap();
    assert!(!late.created);
    assert_eq!(late.hold.id, hold.id);
    assert_eq!(late.hold.state, HoldState::Expired);
    assert_eq!(late.entries[0].decision.as_deref(), Some("expired"));
}

#[test]
fn retry_keys_are_framed() {
    let fp = "ab".repeat(32);
    let base = retry_key("a", "acme", Some("k"), &fp);
    assert_eq!(base.len(), 64);
    assert_ne!(base, retry_key("aa", "cme", Some("k"), &fp));
    assert_ne!(base, retry_key("a", "acme", None, &fp));
    // An idempotency key equal to the fingerprint is still not the
    // fingerprint.
    assert_ne!(
        retry_key("a", "acme", Some(&fp), &fp),
        retry_key("a", "acme", None, &fp)
    );
    // Without a key, only the fingerprint matters.
    assert_eq!(
        retry_key("a", "acme", None, &fp),
        retry_key("a", "acme", None, &fp)
    );
}

#[test]
fn secrets_never_reach_the_disk_in_clear() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    env.store.flush().unwrap();
    let secrets: [&[u8]; 3] = [
        AUTH.as_bytes(),
        b"sk_live_51SuperSecretKeyValue",
        b"private-body-marker",
    ];
    let mut files = 0;
    scan(env.dir.path(), &mut |path, bytes| {
        files += 1;
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} contains {}",
                path.display(),
                String::from_utf8_lossy(secret)
            );
        }
    });
    assert!(files > 0);
    // The store still has the request, sealed.
    assert_eq!(env.holds.open_request(&hold.id).unwrap(), request());
}

fn scan(dir: &Path, check: &mut dyn FnMut(&Path, &[u8])) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan(&path, check);
        } else {
            check(&path, &std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn forget_request_only_once_closed() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    assert!(matches!(
        env.holds.forget_request(&hold.id),
        Err(HoldError::StillOpen { .. })
    ));
    env.holds
        .reject(&hold.id, "maya", Channel::Cli, None, t0() + mins(1))
        .unwrap();
    // Closing already deleted it.
    assert!(!env.holds.forget_request(&hold.id).unwrap());
}

#[test]
fn invalid_holds_are_refused() {
    let env = env();
    assert!(matches!(
        env.holds.create(new_hold(vec![]), request(), t0()),
        Err(HoldError::Invalid(_))
    ));
    let mut no_agent = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    no_agent.agent.clear();
    assert!(matches!(
        env.holds.create(no_agent, request(), t0()),
        Err(HoldError::Invalid(_))
    ));
}

#[test]
fn comments_are_masked_and_bounded() {
    let env = env();
    let hold = create(&env.holds, vec![need(30, &["partners"], Quorum::Count(2))]);
    let long = format!("card 4242 4242 4242 4242 {}", "x".repeat(2000));
    let outcome = env
        .holds
        .approve(&hold.id, "alex", Channel::Api, Some(&long), t0())
        .unwrap();
    let comment = outcome.hold.approvals[0].comment.clone().unwrap();
    assert!(comment.starts_with("card **** **** **** 4242"), "{comment}");
    assert!(comment.chars().count() <= store::MAX_COMMENT_CHARS + 1);
    // A blank comment is no comment.
    let outcome = env
        .holds
        .approve(&hold.id, "sam", Channel::Api, Some("   "), t0())
        .unwrap();
    assert_eq!(outcome.hold.approvals[1].comment, None);
}

/// Every entry a hold's life produces is one the audit chain accepts.
#[test]
fn every_entry_is_accepted_by_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let log = crate::audit::AuditLog::open(
        &store,
        &dir.path().join("certs/leash-audit.key"),
        crate::audit::CheckpointPolicy::default(),
        dir.path().join("data/checkpoint"),
    )
    .unwrap();
    let holds = HoldStore::open(&store, key(), TTL).unwrap();

    let mut entries = Vec::new();
    let a = holds
        .create(
            new_hold(vec![
                need(20, &["maya"], Quorum::Count(1)),
                need(30, &["partners"], Quorum::All),
            ]),
            request(),
            t0(),
        )
        .unwrap();
    entries.extend(a.entries);
    for who in ["maya", "alex", "kim", "sam"] {
        entries.extend(approve(&holds, &a.hold.id, who).unwrap().entries);
    }
    entries.extend(holds.mark_releasing(&a.hold.id, t0()).unwrap().entries);
    entries.extend(holds.mark_released(&a.hold.id, t0()).unwrap().entries);
    let b = create_other(&holds, "b");
    entries.extend(
        holds
            .reject(&b.id, "maya", Channel::Slack, Some("no"), t0())
            .unwrap()
            .entries,
    );
    let c = create_other(&holds, "c");
    for changed in holds.expire_due(c.expires_at).unwrap() {
        entries.extend(changed.entries);
    }
    assert_eq!(entries.len(), 1 + 4 + 2 + 2 + 1);
    for entry in entries {
        log.append_blocking(entry).unwrap();
    }
}

#[test]
fn a_release_that_sent_nothing_is_approved_again_with_its_request() {
    let env = env();
    let hold = create(&env.holds, vec![need(20, &["maya"], Quorum::Count(1))]);
    approve(&env.holds, &hold.id, "maya").unwrap();
    assert_eq!(env.holds.usage(&hold.agent).unwrap().0, 1);
    let releasing = env.holds.mark_releasing(&hold.id, t0() + mins(2)).unwrap();
    // On its way: no longer open, no longer sealed on disk.
    assert_eq!(env.holds.usage(&hold.agent).unwrap().0, 0);
    assert!(matches!(
        env.holds.open_request(&hold.id),
        Err(HoldError::RequestGone(_))
    ));
    let back = env
        .holds
        .unrelease(&hold.id, &releasing.request, "connect refused")
        .unwrap();
    assert_eq!(back.hold.state, HoldState::Approved);
    assert_eq!(back.entries[0].decision.as_deref(), Some("approved"));
    assert_eq!(back.entries[0].details["release_failed"], json!(true));
    assert_eq!(env.holds.usage(&hold.agent).unwrap().0, 1);
    assert_eq!(env.holds.open_request(&hold.id).unwrap(), request());
    // Only a releasing hold can be put back or marked sent.
    assert!(matches!(
        env.holds.unrelease(&hold.id, &releasing.request, "again"),
        Err(HoldError::NotPending(HoldState::Approved))
    ));
    assert!(matches!(
        env.holds.mark_released(&hold.id, t0() + mins(3)),
        Err(HoldError::NotPending(HoldState::Approved))
    ));
    // And the next retry releases it.
    let again = env.holds.mark_releasing(&hold.id, t0() + mins(3)).unwrap();
    assert_eq!(again.request, request());
}

#[test]
fn a_release_interrupted_by_a_stop_reads_outcome_unknown_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hold, approved_id);
    {
        let store = Store::open(&data).unwrap();
        let holds = HoldStore::open(&store, key(), TTL).unwrap();
        hold = create(&holds, vec![need(20, &["maya"], Quorum::Count(1))]);
        approve(&holds, &hold.id, "maya").unwrap();
        approved_id = create_other(&holds, "idem-2").id;
        approve(&holds, &approved_id, "maya").unwrap();
        holds.mark_releasing(&hold.id, t0() + mins(2)).unwrap();
        // leash stops here: no mark_released, no unrelease.
    }
    let store = Store::open(&data).unwrap();
    let holds = HoldStore::open(&store, key(), TTL).unwrap();
    assert_eq!(
        holds.get(&hold.id).unwrap().unwrap().state,
        HoldState::Releasing
    );
    let settled = holds.interrupted_releases(t0() + mins(10)).unwrap();
    assert_eq!(settled.len(), 1, "only the hold that was being sent");
    let unknown = &settled[0].hold;
    assert_eq!(unknown.id, hold.id);
    assert_eq!(unknown.state, HoldState::OutcomeUnknown);
    assert_eq!(
        unknown.closed_at,
        Some(t0() + mins(2)),
        "when the send began"
    );
    assert!(unknown.resolution.as_deref().unwrap().contains("unknown"));
    assert_eq!(
        settled[0].entries[0].decision.as_deref(),
        Some("outcome_unknown")
    );
    // Never handed over again, never back to approved.
    assert!(matches!(
        holds.mark_releasing(&hold.id, t0() + mins(11)),
        Err(HoldError::NotPending(HoldState::OutcomeUnknown))
    ));
    assert!(matches!(
        holds.open_request(&hold.id),
        Err(HoldError::RequestGone(_))
    ));
    // A re-call with a fresh idempotency key is its retry, not a new hold.
    let mut recall = new_hold(vec![need(20, &["maya"], Quorum::Count(1))]);
    recall.idempotency_key = Some("fresh-key".into());
    let again = holds.create(recall, request(), t0() + mins(12)).unwrap();
    assert!(!again.created);
    assert_eq!(again.hold.id, hold.id);
    assert_eq!(
        holds
            .find_open_by_fingerprint(
                &hold.agent,
                &hold.vendor,
                &hold.fingerprint,
                t0() + mins(12)
            )
            .unwrap()
            .map(|h| h.state),
        Some(HoldState::OutcomeUnknown)
    );
    // The other approved hold was untouched, and a second start finds nothing.
    assert_eq!(
        holds.get(&approved_id).unwrap().unwrap().state,
        HoldState::Approved
    );
    assert!(holds
        .interrupted_releases(t0() + mins(13))
        .unwrap()
        .is_empty());
    assert_eq!(
        "outcome_unknown".parse::<HoldState>().unwrap(),
        HoldState::OutcomeUnknown
    );
    assert_eq!(
        serde_json::to_value(HoldState::OutcomeUnknown).unwrap(),
        json!("outcome_unknown")
    );
}
