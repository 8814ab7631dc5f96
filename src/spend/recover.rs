//! After a crash: which of the embedded ledger's reservations belong to a
//! request that never left.
//!
//! A decision reserves its amounts in the ledger first and then writes its
//! `decision` entry to the audit chain; the request is forwarded only once
//! that entry is on disk (a held request's release likewise, with its
//! `releasing` entry). Both live in one sled database and reach the disk in
//! the order they were written, so after `kill -9` every durable decision
//! finds its reservation, but a reservation can survive whose decision did
//! not: its request was never sent (its agent got no answer and will
//! retry), yet it would count against the caps until its window ends.
//!
//! Such a reservation is recent — made after the last flush, just before
//! the crash — and named by no entry of the chain's tail. [`unrecorded`]
//! finds them; the start releases them and says so in its `started` entry.
//! Anything older, or named, stays counted: releasing spend whose request
//! may have left would be a wrong "yes" on the next decision.

use chrono::{DateTime, Duration, Utc};

use crate::audit::ChainTail;

/// How far a reservation may be from the end of the chain, and from the
/// decision entry that names it, and still be checked: decisions are
/// written microseconds after their reservation, and a flush takes
/// milliseconds; a minute leaves room for a slow disk and a small clock
/// step without reading more than a minute of the chain.
pub const RECENT: Duration = Duration::seconds(60);

/// Where the chain must be read back to (its entries at or after this
/// time) to judge the reservations in `reserved`; `None` when there is
/// nothing to judge.
pub fn read_back_to(reserved: &[(u64, DateTime<Utc>)]) -> Option<DateTime<Utc>> {
    let newest = reserved.iter().map(|(_, at)| *at).max()?;
    let oldest_recent = reserved
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at >= newest - RECENT)
        .min()?;
    Some(oldest_recent - RECENT)
}

/// The reservations of `reserved` whose request never left: made within
/// [`RECENT`] of both the newest reservation and the chain's last entry,
/// and named by no entry of `tail` (read back to [`read_back_to`]). An
/// empty chain, or one whose tail could not be read whole
/// ([`ChainTail::complete`]), judges nothing.
pub fn unrecorded(reserved: &[(u64, DateTime<Utc>)], tail: &ChainTail) -> Vec<u64> {
    if !tail.complete {
        return Vec::new();
    }
    let (Some(newest), Some(last_at)) = (reserved.iter().map(|(_, at)| *at).max(), tail.last_at)
    else {
        return Vec::new();
    };
    reserved
        .iter()
        .filter(|(id, at)| {
            *at >= newest - RECENT && *at >= last_at - RECENT && !tail.reservations.contains(id)
        })
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + secs, 0).unwrap()
    }

    fn tail(last: i64, named: &[u64]) -> ChainTail {
        ChainTail {
            last_at: Some(t(last)),
            reservations: named.iter().copied().collect(),
            complete: true,
        }
    }

    #[test]
    fn only_recent_unnamed_reservations_are_unrecorded() {
        let reserved = [
            (1, t(0)),    // an unanswered request of long ago: kept
            (7, t(1000)), // named by its decision: kept
            (8, t(1001)), // its decision never reached the disk
            (9, t(1002)), // nor this one's
        ];
        assert_eq!(read_back_to(&reserved), Some(t(1000) - RECENT));
        assert_eq!(unrecorded(&reserved, &tail(1001, &[7])), [8, 9]);
        // Named: kept.
        assert!(unrecorded(&reserved, &tail(1001, &[7, 8, 9])).is_empty());
    }

    #[test]
    fn a_reservation_far_older_than_the_chain_end_is_kept() {
        // The chain went on for ten minutes after it: whatever happened to
        // its decision, leash did not crash right after reserving.
        let reserved = [(3, t(0))];
        assert!(unrecorded(&reserved, &tail(600, &[])).is_empty());
        assert_eq!(unrecorded(&reserved, &tail(30, &[])), [3]);
    }

    /// A tail with an entry it cannot judge by (a release that does not
    /// name its reservation, written by an older leash) releases nothing.
    #[test]
    fn an_incomplete_tail_judges_nothing() {
        let reserved = [(8, t(1001))];
        let mut incomplete = tail(1001, &[]);
        assert_eq!(unrecorded(&reserved, &incomplete), [8]);
        incomplete.complete = false;
        assert!(unrecorded(&reserved, &incomplete).is_empty());
    }

    #[test]
    fn nothing_to_judge_judges_nothing() {
        assert_eq!(read_back_to(&[]), None);
        assert!(unrecorded(&[], &tail(0, &[])).is_empty());
        assert!(unrecorded(&[(1, t(0))], &ChainTail::default()).is_empty());
    }
}
