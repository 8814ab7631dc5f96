//! Spend accounting for caps (SPEC §5.4).
//!
//! A cap is only as good as its counter under concurrency: read-then-write
//! counters let N simultaneous requests each see room under the cap and all
//! pass. So the ledger runs the whole decision inside one critical section —
//! read the spend, decide, reserve what was approved — and the next request's
//! decision sees that reservation.
//!
//! Reservations become spend when the vendor answers 2xx and are released on
//! 4xx/5xx; with no answer (timeout, reset) they stay, because the money may
//! have moved. Every entry is persisted in sled, so caps survive restarts.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::policy::engine::SpendEvent;
use crate::store::{Store, StoreError};

/// How far back spend is kept in memory: the longest window (a month) plus
/// slack for timezones.
const HORIZON_DAYS: i64 = 40;

/// State of one reserved amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Approved, the vendor's answer not seen yet. Counts against caps.
    Reserved,
    /// The vendor accepted it (2xx). Counts against caps.
    Settled,
    /// The vendor refused it (4xx/5xx). No longer counts.
    Released,
}

/// What the ledger stores per reserved intent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    state: EntryState,
    at: DateTime<Utc>,
    agent: String,
    vendor: String,
    operation: String,
    category: String,
    beneficiary: Option<String>,
    amount: Money,
}

impl StoredEntry {
    fn new(event: &SpendEvent) -> Self {
        Self {
            state: EntryState::Reserved,
            at: event.at,
            agent: event.agent.clone(),
            vendor: event.vendor.clone(),
            operation: event.operation.clone(),
            category: event.category.clone(),
            beneficiary: event.beneficiary.clone(),
            amount: event.amount,
        }
    }

    fn event(&self) -> SpendEvent {
        SpendEvent {
            at: self.at,
            agent: self.agent.clone(),
            vendor: self.vendor.clone(),
            operation: self.operation.clone(),
            category: self.category.clone(),
            beneficiary: self.beneficiary.clone(),
            amount: self.amount,
        }
    }
}

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

/// Active spend (reserved or settled), oldest first, with ids alongside.
#[derive(Default)]
struct Active {
    ids: Vec<u64>,
    events: Vec<SpendEvent>,
}

impl Active {
    fn push(&mut self, id: u64, event: SpendEvent) {
        self.ids.push(id);
        self.events.push(event);
    }

    fn remove(&mut self, id: u64) {
        if let Some(position) = self.ids.iter().position(|i| *i == id) {
            self.ids.remove(position);
            self.events.remove(position);
        }
    }

    /// Drops events older than the horizon (they are in no window).
    fn prune(&mut self, now: DateTime<Utc>) {
        let cutoff = now - Duration::days(HORIZON_DAYS);
        let keep = self.events.iter().take_while(|e| e.at < cutoff).count();
        if keep > 0 {
            self.ids.drain(..keep);
            self.events.drain(..keep);
        }
    }
}

/// The spend ledger: caps' counters, persisted.
pub struct SpendLedger {
    store: Store,
    tree: sled::Tree,
    active: Mutex<Active>,
}

impl SpendLedger {
    /// Opens the ledger and loads the spend of the last weeks.
    pub fn open(store: &Store, now: DateTime<Utc>) -> Result<Self, StoreError> {
        let tree = store.tree("spend")?;
        let mut active = Active::default();
        let cutoff = now - Duration::days(HORIZON_DAYS);
        let mut loaded: Vec<(u64, SpendEvent)> = Vec::new();
        for item in tree.iter() {
            let (key, value) = item?;
            let id = decode_id(&key)?;
            let entry: StoredEntry =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: format!("spend/{id}"),
                    reason: e.to_string(),
                })?;
            if entry.state != EntryState::Released && entry.at >= cutoff {
                loaded.push((id, entry.event()));
            }
        }
        loaded.sort_by_key(|(id, event)| (event.at, *id));
        for (id, event) in loaded {
            active.push(id, event);
        }
        Ok(Self {
            store: store.clone(),
            tree,
            active: Mutex::new(active),
        })
    }

    /// Runs `decide` on the current spend and reserves the events it returns,
    /// all in one critical section.
    ///
    /// `decide` must be quick and pure (it is the policy engine): every other
    /// decision waits for it.
    pub fn decide_and_reserve<T>(
        &self,
        now: DateTime<Utc>,
        decide: impl FnOnce(&[SpendEvent]) -> (T, Vec<SpendEvent>),
    ) -> Result<(T, Reservation), StoreError> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.prune(now);
        let (outcome, to_reserve) = decide(&active.events);
        let mut reservation = Reservation::default();
        // Persist first: a reservation that is not stored would be lost by a
        // restart and the cap would forget the money.
        let mut stored = Vec::with_capacity(to_reserve.len());
        for event in &to_reserve {
            let id = self.store.next_id()?;
            let bytes =
                serde_json::to_vec(&StoredEntry::new(event)).map_err(|e| StoreError::Corrupt {
                    key: format!("spend/{id}"),
                    reason: e.to_string(),
                })?;
            self.tree.insert(id.to_be_bytes(), bytes)?;
            stored.push(id);
        }
        for (id, event) in stored.into_iter().zip(to_reserve) {
            active.push(id, event);
            reservation.ids.push(id);
        }
        Ok((outcome, reservation))
    }

    /// The vendor accepted: the reservation is spend.
    pub fn settle(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.set_state(reservation, EntryState::Settled)
    }

    /// The vendor refused: the reservation no longer counts.
    pub fn release(&self, reservation: &Reservation) -> Result<(), StoreError> {
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            for id in &reservation.ids {
                active.remove(*id);
            }
        }
        self.set_state(reservation, EntryState::Released)
    }

    fn set_state(&self, reservation: &Reservation, state: EntryState) -> Result<(), StoreError> {
        for id in &reservation.ids {
            let key = id.to_be_bytes();
            let Some(value) = self.tree.get(key)? else {
                continue;
            };
            let mut entry: StoredEntry =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: format!("spend/{id}"),
                    reason: e.to_string(),
                })?;
            entry.state = state;
            let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt {
                key: format!("spend/{id}"),
                reason: e.to_string(),
            })?;
            self.tree.insert(key, bytes)?;
        }
        Ok(())
    }

    /// Active spend events (for `leash explain` and tests).
    pub fn snapshot(&self) -> Vec<SpendEvent> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }
}

fn decode_id(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        key: hex::encode(key),
        reason: "spend key is not 8 bytes".to_string(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use rust_decimal::Decimal;

    fn event(amount: i64, at: DateTime<Utc>) -> SpendEvent {
        SpendEvent {
            at,
            agent: "growth-agent".into(),
            vendor: "acme".into(),
            operation: "charge.create".into(),
            category: "payment".into(),
            beneficiary: None,
            amount: Money::new(Decimal::from(amount), Currency::parse("EUR").unwrap()),
        }
    }

    #[test]
    fn reservations_persist_settle_and_release_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let (a, b);
        {
            let store = Store::open(dir.path()).unwrap();
            let ledger = SpendLedger::open(&store, now).unwrap();
            a = ledger
                .decide_and_reserve(now, |spent| {
                    assert!(spent.is_empty());
                    ((), vec![event(100, now)])
                })
                .unwrap()
                .1;
            b = ledger
                .decide_and_reserve(now, |spent| {
                    assert_eq!(spent.len(), 1);
                    ((), vec![event(40, now)])
                })
                .unwrap()
                .1;
            ledger.settle(&a).unwrap();
            ledger.release(&b).unwrap();
            assert_eq!(ledger.snapshot().len(), 1);
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let ledger = SpendLedger::open(&store, now).unwrap();
        let spent = ledger.snapshot();
        assert_eq!(spent.len(), 1);
        assert_eq!(spent[0].amount.amount, Decimal::from(100));
    }

    #[test]
    fn old_spend_falls_out_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let store = Store::open(dir.path()).unwrap();
        let ledger = SpendLedger::open(&store, now).unwrap();
        let old = now - Duration::days(HORIZON_DAYS + 1);
        ledger
            .decide_and_reserve(old, |_| ((), vec![event(1, old)]))
            .unwrap();
        let (count, _) = ledger
            .decide_and_reserve(now, |spent| (spent.len(), vec![]))
            .unwrap();
        assert_eq!(count, 0);
    }
}
