//! Spend accounting for caps (SPEC §5.4).
//!
//! A cap is only as good as its counter under concurrency: read-then-write
//! counters let N simultaneous requests each see room under the cap and all
//! pass. So a decision and its reservation are one step of the ledger
//! ([`SpendLedger::decide_and_reserve`]): the ledger answers the decision's
//! cap queries, the decision runs on those totals, and what it approved is
//! reserved before any other decision sees the totals.
//!
//! Reservations become spend when the vendor answers 2xx and are released on
//! 4xx/5xx; with no answer (timeout, reset) they stay, because the money may
//! have moved.
//!
//! [`SpendLedger`] is the seam between the gate and where the counters
//! live: [`SledLedger`] keeps them in the embedded database, one process; a
//! shared store (SPEC §11) implements the same trait. Nothing outside this
//! module touches a ledger's storage. Every implementation answers cap
//! queries with the same meaning, which [`buckets::totals`] defines for an
//! in-memory store and the tools (`explain`, `policy test`, `policy replay`)
//! use too.

pub mod buckets;
pub mod postgres;
pub mod recover;
mod sled_ledger;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::policy::caps::{CapQuery, CapTotal, Totals};
use crate::policy::engine::SpendEvent;
use crate::store::StoreError;

pub use buckets::{totals, totals_of_events, Buckets};
pub use postgres::PostgresLedger;
pub use sled_ledger::{EntryState, SledLedger};

/// The ids of the entries one request reserved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reservation {
    pub ids: Vec<u64>,
}

impl Reservation {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Why the ledger could not do what was asked. Either way nothing may be
/// forwarded on its account: caps that cannot be counted fail closed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger cannot be reached or did not answer (a shared store).
    #[error("spend ledger unavailable: {0}")]
    Unavailable(String),
}

/// What a ledger's operations return: a boxed future, so that the trait is
/// object-safe and the gate holds any ledger as `dyn SpendLedger`.
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

/// A decision over cap totals: returns what to reserve (nothing for a
/// decision that forwards nothing).
pub type Decide<'d> = dyn FnMut(&Totals<'_>) -> Vec<SpendEvent> + Send + 'd;

/// Where caps' counters live.
pub trait SpendLedger: Send + Sync {
    /// Answers `queries` (the decision's [`cap_queries`]), runs `decide` on
    /// the totals, and reserves the events it returns, as one step: no other
    /// decision sees totals between this one's reading and its reservation.
    /// `now` is the decision's clock (windows that ended long before it may
    /// be forgotten).
    ///
    /// `decide` may run more than once: a store that runs decisions
    /// optimistically (read, decide, commit if nothing changed) runs it
    /// again on fresh totals when a commit conflicts. Only the last run's
    /// reservation is made, so `decide` must have no effect besides what it
    /// returns (and what it leaves for its caller to read after the last
    /// run). An error means nothing was reserved.
    ///
    /// [`cap_queries`]: crate::policy::engine::cap_queries
    fn decide_and_reserve<'a>(
        &'a self,
        now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
        decide: &'a mut Decide<'_>,
    ) -> LedgerFuture<'a, Reservation>;

    /// The vendor accepted: the reservation is spend (it keeps counting).
    fn settle<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()>;

    /// The vendor refused, or the request was never sent: the reservation
    /// no longer counts. Releasing what is already released does nothing.
    fn release<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()>;

    /// What each of `queries` counts at `now`, and how much of that is
    /// still reserved (waiting for the vendor's answer), in order: what
    /// `leash spend` shows. Read only and off the request path: a store
    /// may read its reservations to answer. `Err` per query: why that one
    /// cannot be said.
    fn usage<'a>(
        &'a self,
        now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
    ) -> LedgerFuture<'a, Vec<Result<Usage, String>>>;

    /// Why the ledger cannot be used right now (a shared store that does
    /// not answer), for `/healthz` and `GET /metrics`; `None` when it can.
    /// The embedded ledger always can.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// One cap query's spend, as [`SpendLedger::usage`] answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Everything the query counts: reserved and settled.
    pub counted: CapTotal,
    /// The part of `counted` still waiting for the vendor's answer.
    pub reserved: CapTotal,
}

/// [`SpendLedger::decide_and_reserve`] for a decision that also produces a
/// value (the engine's decisions): `decide` returns it with the events to
/// reserve; the value of its last run is returned with the reservation.
pub async fn decide_and_reserve<T: Send>(
    ledger: &dyn SpendLedger,
    now: DateTime<Utc>,
    queries: &[CapQuery<'_>],
    mut decide: impl FnMut(&Totals<'_>) -> (T, Vec<SpendEvent>) + Send,
) -> Result<(T, Reservation), LedgerError> {
    let mut last: Option<T> = None;
    let mut run = |totals: &Totals<'_>| {
        let (value, reserve) = decide(totals);
        last = Some(value);
        reserve
    };
    let reservation = ledger.decide_and_reserve(now, queries, &mut run).await?;
    match last {
        Some(value) => Ok((value, reservation)),
        None => Err(LedgerError::Unavailable(
            "the ledger answered without running the decision".to_string(),
        )),
    }
}
