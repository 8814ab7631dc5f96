//! The embedded ledger: every reservation is an entry in sled (so caps
//! survive restarts) until it settles, when it is folded into a stored sum
//! per kind of payment and quarter hour ([`SettledSum`]); the running sums
//! per cap window ([`Buckets`]) live in memory behind one lock, rebuilt
//! from the entries and sums at startup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::buckets::{totals, Buckets, Counted, HORIZON_DAYS};
use super::{Decide, LedgerError, LedgerFuture, Reservation, SpendLedger, Usage};
use crate::money::Money;
use crate::policy::caps::{scan, CapQuery, CapTotal};
use crate::policy::engine::SpendEvent;
use crate::store::{Store, StoreError};

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

/// Settled spend of one kind made in one quarter hour, summed: what the
/// ledger keeps of settled payments once they are compacted
/// ([`SledLedger::compact`]). sled's resident memory grows with the number
/// of keys it holds (about 20 bytes each, measured), so a million payments
/// a day kept one key each would make leash's memory grow with the day's
/// payments; summed, it grows with the kinds of payment per quarter hour.
///
/// A quarter hour never straddles two cap windows: every window starts at
/// a local midnight or a DST transition, and every zone's offset from UTC
/// is a whole number of quarter hours, so counting the sum at its quarter
/// hour's start puts it in exactly the windows its payments were in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SettledSum {
    /// The kind of payment, settled, `at` the start of the quarter hour
    /// (UTC), for the `amount` of all of them.
    #[serde(flatten)]
    payments: StoredEntry,
    /// When the last of them was made.
    latest: DateTime<Utc>,
    count: u64,
}

/// A [`SettledSum`] as the running sums count it.
struct Summed {
    event: SpendEvent,
    count: u64,
    latest: DateTime<Utc>,
}

impl Counted for Summed {
    fn event(&self) -> &SpendEvent {
        &self.event
    }
    fn count(&self) -> u64 {
        self.count
    }
    fn latest(&self) -> DateTime<Utc> {
        self.latest
    }
}

impl SettledSum {
    fn summed(&self) -> Summed {
        Summed {
            event: self.payments.event(),
            count: self.count,
            latest: self.latest,
        }
    }
}

/// Sums are stored after every entry: their keys start with this byte, an
/// entry's (an 8-byte id from sled's id generator, counting from 0) never
/// does.
const SUM_PREFIX: u8 = 0xFF;

/// The quarter hour `at` is in, and the key of the sum of `entry`'s kind
/// in it.
fn sum_key(entry: &StoredEntry) -> Option<(DateTime<Utc>, Vec<u8>)> {
    let seconds = entry.at.timestamp();
    let slot_seconds = seconds - seconds.rem_euclid(QUARTER_HOUR);
    let slot = DateTime::<Utc>::from_timestamp(slot_seconds, 0)?;
    let kind = serde_json::to_vec(&(
        &entry.agent,
        &entry.vendor,
        &entry.operation,
        &entry.category,
        &entry.beneficiary,
        entry.amount.currency,
    ))
    .ok()?;
    let mut key = Vec::with_capacity(9 + kind.len());
    key.push(SUM_PREFIX);
    // Offset so that byte order is time order across 1970.
    key.extend_from_slice(&((slot_seconds as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&kind);
    Some((slot, key))
}

const QUARTER_HOUR: i64 = 15 * 60;

/// Settled entries are compacted after this many settlements, this many
/// (twice) at a time: a few milliseconds under the lock per thousand
/// payments.
const COMPACT_EVERY: u64 = 1024;

/// A reservation younger than this may still be answered: compaction
/// stops at it (and compacts it once settled) rather than pass it by.
const ANSWER_WINDOW: Duration = Duration::minutes(5);

/// Spend made this long before `now` is in no window a cap can still ask
/// about (windows are kept [`HORIZON_DAYS`] after they end, and a window is
/// at most a month and a day long): it need not be read back.
const READ_BACK_DAYS: i64 = HORIZON_DAYS + 33;

/// The spend ledger on sled: caps' counters, persisted.
pub struct SledLedger {
    store: Store,
    tree: sled::Tree,
    buckets: Mutex<Buckets>,
    /// The entries that were still reserved when the ledger opened (id,
    /// time): what [`super::recover`] checks against the chain's tail.
    reserved_at_open: Vec<(u64, DateTime<Utc>)>,
    /// Compaction resumes at this entry id.
    compact_from: AtomicU64,
    /// Settlements since the last compaction.
    settled: AtomicU64,
    /// The time of the latest decision (microseconds since 1970): the
    /// ledger's "now" when a settlement compacts (it reads no clock).
    last_now: AtomicI64,
}

impl SledLedger {
    /// Opens the ledger and counts the stored active spend into the windows
    /// of `zones` (the timezones of the caps in force; a zone first asked
    /// about later is counted then, once). Every entry is read, so a
    /// corrupt one stops the start rather than a decision; entries older
    /// than any window a cap can ask about are deleted, so that neither the
    /// file nor the next start grows with the history.
    ///
    /// The entries stream into the running sums one at a time: memory at
    /// start is the sums' size (per window and kind of payment), not the
    /// number of payments made.
    pub fn open(
        store: &Store,
        now: DateTime<Utc>,
        zones: impl IntoIterator<Item = Tz>,
    ) -> Result<Self, StoreError> {
        let tree = store.tree("spend")?;
        let mut buckets = Buckets::new();
        buckets.advance(now);
        for tz in zones {
            buckets.track(tz, std::iter::empty::<SpendEvent>());
        }
        let mut expired = sled::Batch::default();
        let mut expired_count = 0usize;
        let mut reserved_at_open = Vec::new();
        for_each_entry(&tree, |id, entry| {
            if too_old(entry.at, now) {
                expired.remove(&id.to_be_bytes());
                expired_count += 1;
            } else if entry.state != EntryState::Released {
                if entry.state == EntryState::Reserved {
                    reserved_at_open.push((id, entry.at));
                }
                buckets.add(&entry.event());
            }
        })?;
        for_each_sum(&tree, |key, sum| {
            if too_old(sum.payments.at, now) {
                expired.remove(key);
                expired_count += 1;
            } else {
                buckets.add(&sum.summed());
            }
        })?;
        if expired_count > 0 {
            tree.apply_batch(expired)?;
            tracing::info!(
                entries = expired_count,
                "spend entries older than every cap window deleted"
            );
        }
        let ledger = Self {
            store: store.clone(),
            tree,
            buckets: Mutex::new(buckets),
            reserved_at_open,
            compact_from: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            last_now: AtomicI64::new(now.timestamp_micros()),
        };
        while ledger.compact(now, 8 * COMPACT_EVERY)? {}
        Ok(ledger)
    }

    /// Folds settled entries, from where the last compaction stopped, into
    /// their quarter hours' [`SettledSum`]s, and deletes released ones and
    /// ones older than every window: at most `limit` entries, in one
    /// batch, under the lock (so no release or decision races it; the
    /// running sums do not change, only how the spend is stored). Stops at
    /// a reservation young enough to be answered yet. Returns whether
    /// there is more to do now.
    fn compact(&self, now: DateTime<Utc>, limit: u64) -> Result<bool, StoreError> {
        let _buckets = self.lock();
        let start = self.compact_from.load(Ordering::SeqCst);
        let mut batch = sled::Batch::default();
        let mut sums: BTreeMap<Vec<u8>, SettledSum> = BTreeMap::new();
        let mut next = start;
        let mut more = false;
        let end: &[u8] = &[SUM_PREFIX];
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        for (read, item) in self
            .tree
            .range(start.to_be_bytes().as_slice()..end)
            .enumerate()
        {
            if read == limit {
                more = true;
                break;
            }
            let (key, value) = item?;
            let id = decode_id(&key)?;
            let entry = decode(&id, &value)?;
            match entry.state {
                EntryState::Reserved if now - entry.at < ANSWER_WINDOW => break,
                // Never answered: it keeps counting as a reservation.
                EntryState::Reserved => {}
                EntryState::Released => batch.remove(key),
                EntryState::Settled if too_old(entry.at, now) => batch.remove(key),
                EntryState::Settled => {
                    if fold(&self.tree, &mut sums, &entry)? {
                        batch.remove(key);
                    }
                }
            }
            next = id.saturating_add(1);
        }
        for (key, sum) in sums {
            batch.insert(key, encode_sum(&sum)?);
        }
        self.tree.apply_batch(batch)?;
        self.compact_from.store(next, Ordering::SeqCst);
        Ok(more)
    }

    /// After `n` settlements: compacts once enough have gathered. A
    /// failure leaves the entries as they are (they count the same).
    fn settled(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        let total = self
            .settled
            .fetch_add(n, Ordering::SeqCst)
            .saturating_add(n);
        if total < COMPACT_EVERY {
            return;
        }
        self.settled.store(0, Ordering::SeqCst);
        let now = DateTime::<Utc>::from_timestamp_micros(self.last_now.load(Ordering::SeqCst));
        if let Some(now) = now {
            if let Err(error) = self.compact(now, 2 * COMPACT_EVERY) {
                tracing::warn!(%error, "could not compact settled spend entries; they stay as they are");
            }
        }
    }

    /// The entries that were still reserved (the vendor's answer not
    /// recorded) when the ledger opened, as (id, time reserved).
    pub fn reserved_at_open(&self) -> &[(u64, DateTime<Utc>)] {
        &self.reserved_at_open
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decide_now(
        &self,
        now: DateTime<Utc>,
        queries: &[CapQuery<'_>],
        decide: &mut Decide<'_>,
    ) -> Result<Reservation, LedgerError> {
        let mut buckets = self.lock();
        buckets.advance(now);
        self.last_now
            .fetch_max(now.timestamp_micros(), Ordering::SeqCst);
        // A zone no cap asked about before (a policy reloaded with a new
        // timezone): its windows are counted from the stored spend, once.
        for query in queries {
            let tz = query.period.tz;
            track_zone(&self.tree, &mut buckets, tz, now)?;
        }
        let to_reserve = decide(&totals(&buckets, queries));
        if to_reserve.is_empty() {
            return Ok(Reservation::default());
        }
        // Persist first: a reservation that is not stored would be lost by
        // a restart and the cap would forget the money. One intent (the
        // usual request) is one insert; several go in one batch, so that a
        // failure stores none of them. (A sled batch takes a write lock
        // every other sled operation waits for: not worth it for one.)
        let mut reservation = Reservation::default();
        let mut entries = Vec::with_capacity(to_reserve.len());
        for event in &to_reserve {
            let id = self.store.next_id()?;
            entries.push((id, encode(id, &StoredEntry::new(event))?));
            reservation.ids.push(id);
        }
        if let [(id, bytes)] = entries.as_slice() {
            self.tree
                .insert(id.to_be_bytes(), bytes.as_slice())
                .map_err(StoreError::from)?;
        } else {
            let mut batch = sled::Batch::default();
            for (id, bytes) in entries {
                batch.insert(&id.to_be_bytes(), bytes);
            }
            self.tree.apply_batch(batch).map_err(StoreError::from)?;
        }
        for event in &to_reserve {
            buckets.add(event);
        }
        Ok(reservation)
    }

    /// [`SpendLedger::usage`]: the running sums for what counts, and a read
    /// of the stored entries still reserved (few: requests in flight, and
    /// those whose answer never came) for the reserved part. An operator's
    /// command, not a decision: the read is not under the buckets' lock, so
    /// a request deciding meanwhile may be in one number and not the other.
    fn usage_now(
        &self,
        now: DateTime<Utc>,
        queries: &[CapQuery<'_>],
    ) -> Result<Vec<Result<Usage, String>>, LedgerError> {
        let counted: Vec<Result<CapTotal, String>> = {
            let mut buckets = self.lock();
            buckets.advance(now);
            for query in queries {
                let tz = query.period.tz;
                track_zone(&self.tree, &mut buckets, tz, now)?;
            }
            queries.iter().map(|q| buckets.total(q)).collect()
        };
        let reserved = read_reserved(&self.tree, now)?;
        Ok(queries
            .iter()
            .zip(counted)
            .map(|(query, counted)| {
                Ok(Usage {
                    counted: counted?,
                    reserved: scan(&reserved, query),
                })
            })
            .collect())
    }

    /// Marks the entries of `reservation` settled. They keep counting, so
    /// the running sums do not change and the lock is not taken: each entry
    /// moves from reserved to settled by compare-and-swap, so that a
    /// release racing it is never undone.
    fn settle_entries(&self, reservation: &Reservation) -> Result<(), LedgerError> {
        for id in &reservation.ids {
            let key = id.to_be_bytes();
            // A lost race re-reads; a few rounds are plenty (only a release
            // can race a settle, and it ends the entry's life).
            for _ in 0..8 {
                let Some(value) = self.tree.get(key).map_err(StoreError::from)? else {
                    break;
                };
                let mut entry = decode(id, &value)?;
                if entry.state != EntryState::Reserved {
                    break;
                }
                entry.state = EntryState::Settled;
                let swapped = self
                    .tree
                    .compare_and_swap(key, Some(value), Some(encode(*id, &entry)?))
                    .map_err(StoreError::from)?;
                if swapped.is_ok() {
                    break;
                }
            }
        }
        self.settled(reservation.ids.len());
        Ok(())
    }

    /// Marks the entries of `reservation` released and takes them out of
    /// the running sums, under the lock (so a release cannot race a
    /// decision, or itself). Releasing twice takes nothing out twice.
    fn release_entries(&self, reservation: &Reservation) -> Result<(), LedgerError> {
        let mut buckets = self.lock();
        for id in &reservation.ids {
            let key = id.to_be_bytes();
            let Some(value) = self.tree.get(key).map_err(StoreError::from)? else {
                continue;
            };
            let mut entry = decode(id, &value)?;
            if entry.state == EntryState::Released {
                continue;
            }
            entry.state = EntryState::Released;
            self.tree
                .insert(key, encode(*id, &entry)?)
                .map_err(StoreError::from)?;
            buckets.remove(&entry.event());
        }
        Ok(())
    }
}

impl SpendLedger for SledLedger {
    fn decide_and_reserve<'a>(
        &'a self,
        now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
        decide: &'a mut Decide<'_>,
    ) -> LedgerFuture<'a, Reservation> {
        // Runs at once, under the lock, with no await inside: the decision
        // is pure and quick, the sled writes are in memory (flushed in the
        // background).
        let result = self.decide_now(now, queries, decide);
        Box::pin(std::future::ready(result))
    }

    fn settle<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()> {
        Box::pin(std::future::ready(self.settle_entries(reservation)))
    }

    fn release<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()> {
        Box::pin(std::future::ready(self.release_entries(reservation)))
    }

    fn usage<'a>(
        &'a self,
        now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
    ) -> LedgerFuture<'a, Vec<Result<Usage, String>>> {
        Box::pin(std::future::ready(self.usage_now(now, queries)))
    }
}

/// Whether spend made at `at` is before every window a cap can still ask
/// about at `now`.
fn too_old(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.checked_sub_signed(Duration::days(READ_BACK_DAYS))
        .is_some_and(|cutoff| at < cutoff)
}

/// Runs `f` on every stored entry, in id order, one at a time.
fn for_each_entry(
    tree: &sled::Tree,
    mut f: impl FnMut(u64, StoredEntry),
) -> Result<(), StoreError> {
    let end: &[u8] = &[SUM_PREFIX];
    for item in tree.range(..end) {
        let (key, value) = item?;
        let id = decode_id(&key)?;
        f(id, decode(&id, &value)?);
    }
    Ok(())
}

/// Runs `f` on every stored sum (its key and value), in key order.
fn for_each_sum(tree: &sled::Tree, mut f: impl FnMut(&[u8], SettledSum)) -> Result<(), StoreError> {
    for item in tree.scan_prefix([SUM_PREFIX]) {
        let (key, value) = item?;
        f(&key, decode_sum(&key, &value)?);
    }
    Ok(())
}

/// Adds `entry` into the sum of its kind and quarter hour in `sums` (read
/// from the tree when first touched). `false` when it cannot be added (an
/// amount the sum cannot hold): the entry then stays as it is.
fn fold(
    tree: &sled::Tree,
    sums: &mut BTreeMap<Vec<u8>, SettledSum>,
    entry: &StoredEntry,
) -> Result<bool, StoreError> {
    let Some((slot, key)) = sum_key(entry) else {
        return Ok(false);
    };
    let sum = match sums.entry(key.clone()) {
        std::collections::btree_map::Entry::Occupied(sum) => sum.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot_sum) => {
            let stored = match tree.get(slot_sum.key())? {
                Some(value) => decode_sum(slot_sum.key(), &value)?,
                None => SettledSum {
                    payments: StoredEntry {
                        state: EntryState::Settled,
                        at: slot,
                        amount: Money::new(rust_decimal::Decimal::ZERO, entry.amount.currency),
                        ..entry.clone()
                    },
                    latest: entry.at,
                    count: 0,
                },
            };
            slot_sum.insert(stored)
        }
    };
    let Some(amount) = sum.payments.amount.amount.checked_add(entry.amount.amount) else {
        if sum.count == 0 {
            // Not stored yet, and nothing in it: not written either.
            sums.remove(&key);
        }
        return Ok(false);
    };
    sum.payments.amount = Money::new(amount, entry.amount.currency);
    sum.count = sum.count.saturating_add(1);
    sum.latest = sum.latest.max(entry.at);
    Ok(true)
}

/// Starts counting in `tz`'s windows (a zone no cap asked about before: a
/// policy reloaded with a new timezone) from the stored active spend,
/// streamed. A read that fails leaves the zone uncounted, never half
/// counted: a cap in it then fails closed rather than seeing less spend.
fn track_zone(
    tree: &sled::Tree,
    buckets: &mut Buckets,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if buckets.tracks(tz) {
        return Ok(());
    }
    let mut failed = None;
    // Entries, then sums (their keys sort after every entry's).
    let active = tree
        .iter()
        .map_while(|item| {
            let read = item
                .map_err(StoreError::from)
                .and_then(|(key, value)| counted(&key, &value, now));
            match read {
                Ok(counted) => Some(counted),
                Err(error) => {
                    failed = Some(error);
                    None
                }
            }
        })
        .flatten();
    buckets.track(tz, active);
    match failed {
        Some(error) => {
            buckets.untrack(tz);
            Err(error)
        }
        None => Ok(()),
    }
}

/// What a stored record counts for in the windows a cap can ask about at
/// `now`: an active entry as one payment, a sum as its payments; `None`
/// for a released entry or one too old to count.
fn counted(key: &[u8], value: &[u8], now: DateTime<Utc>) -> Result<Option<Summed>, StoreError> {
    if key.first() == Some(&SUM_PREFIX) {
        let sum = decode_sum(key, value)?;
        return Ok((!too_old(sum.payments.at, now)).then(|| sum.summed()));
    }
    let id = decode_id(key)?;
    let entry = decode(&id, value)?;
    let active = entry.state != EntryState::Released && !too_old(entry.at, now);
    Ok(active.then(|| Summed {
        latest: entry.at,
        event: entry.event(),
        count: 1,
    }))
}

/// The stored spend still reserved and recent enough to be in a window a
/// cap can ask about.
fn read_reserved(tree: &sled::Tree, now: DateTime<Utc>) -> Result<Vec<SpendEvent>, StoreError> {
    let mut reserved = Vec::new();
    for_each_entry(tree, |_, entry| {
        if entry.state == EntryState::Reserved && !too_old(entry.at, now) {
            reserved.push(entry.event());
        }
    })?;
    Ok(reserved)
}

fn encode(id: u64, entry: &StoredEntry) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt {
        key: format!("spend/{id}"),
        reason: e.to_string(),
    })
}

fn decode(id: &u64, value: &[u8]) -> Result<StoredEntry, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: format!("spend/{id}"),
        reason: e.to_string(),
    })
}

fn encode_sum(sum: &SettledSum) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(sum).map_err(|e| StoreError::Corrupt {
        key: "spend/sum".to_string(),
        reason: e.to_string(),
    })
}

fn decode_sum(key: &[u8], value: &[u8]) -> Result<SettledSum, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: format!("spend/sum/{}", hex::encode(key)),
        reason: e.to_string(),
    })
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
    use crate::policy::caps::{CapPeriod, ScopeKey, SpendTotals};
    use crate::policy::model::CapWindow;
    use rust_decimal::Decimal;

    const PARIS: Tz = chrono_tz::Europe::Paris;

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

    fn query(now: DateTime<Utc>, window: CapWindow) -> CapQuery<'static> {
        CapQuery {
            scope: ScopeKey::Agent("growth-agent"),
            vendors: None,
            operations: None,
            categories: None,
            period: CapPeriod::of(now, PARIS, window).unwrap(),
        }
    }

    /// Runs one decision: returns the EUR total the query saw (and the
    /// number of payments) and reserves `reserve`.
    fn decide(
        ledger: &SledLedger,
        now: DateTime<Utc>,
        reserve: Vec<SpendEvent>,
    ) -> ((Decimal, u64), Reservation) {
        let queries = [query(now, CapWindow::Day)];
        let run = super::super::decide_and_reserve(ledger, now, &queries, |totals| {
            let total = totals.total(&queries[0]).unwrap();
            let seen = total
                .by_currency
                .first()
                .map(|(_, t)| (t.sum.value().unwrap(), t.count))
                .unwrap_or_default();
            (seen, reserve.clone())
        });
        block_on(run).unwrap()
    }

    /// Polls a future that is ready at once (the sled ledger's are).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn reservations_persist_settle_and_release_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let (a, b);
        {
            let store = Store::open(dir.path()).unwrap();
            let ledger = SledLedger::open(&store, now, [PARIS]).unwrap();
            let (seen, reserved) = decide(&ledger, now, vec![event(100, now)]);
            assert_eq!(seen, (Decimal::ZERO, 0));
            a = reserved;
            let (seen, reserved) = decide(&ledger, now, vec![event(40, now)]);
            assert_eq!(seen, (Decimal::from(100), 1));
            b = reserved;
            block_on(ledger.settle(&a)).unwrap();
            block_on(ledger.release(&b)).unwrap();
            // Releasing twice takes nothing more out; settling a released
            // entry does not bring it back.
            block_on(ledger.release(&b)).unwrap();
            block_on(ledger.settle(&b)).unwrap();
            let (seen, _) = decide(&ledger, now, vec![]);
            assert_eq!(seen, (Decimal::from(100), 1));
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        // Reopened without the zone: counted from the stored entries when
        // first asked.
        let ledger = SledLedger::open(&store, now, []).unwrap();
        let (seen, _) = decide(&ledger, now, vec![]);
        assert_eq!(seen, (Decimal::from(100), 1));
    }

    #[test]
    fn old_spend_falls_out_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let store = Store::open(dir.path()).unwrap();
        let ledger = SledLedger::open(&store, now, [PARIS]).unwrap();
        let old = now - Duration::days(HORIZON_DAYS + 3);
        decide(&ledger, old, vec![event(1, old)]);
        let (seen, _) = decide(&ledger, now, vec![]);
        assert_eq!(seen, (Decimal::ZERO, 0));
        // The windows it was counted in are dropped once long over.
        let (seen, _) = decide(&ledger, old, vec![]);
        assert_eq!(seen, (Decimal::ZERO, 0));
    }

    /// Opening streams the entries into the sums and deletes those older
    /// than any window: the next start does not read them again, and what
    /// still counts is counted the same, in the zones given at open and in
    /// a zone first asked about later.
    #[test]
    fn opening_forgets_spend_older_than_every_window_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let ancient = now - Duration::days(READ_BACK_DAYS + 1);
        {
            let store = Store::open(dir.path()).unwrap();
            let ledger = SledLedger::open(&store, ancient, [PARIS]).unwrap();
            decide(&ledger, ancient, vec![event(7, ancient), event(8, ancient)]);
            let (_, kept) = decide(&ledger, now, vec![event(30, now)]);
            decide(&ledger, now, vec![event(12, now)]);
            block_on(ledger.settle(&kept)).unwrap();
            assert_eq!(ledger.tree.len(), 4);
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let ledger = SledLedger::open(&store, now, [PARIS]).unwrap();
        assert_eq!(ledger.tree.len(), 2, "the two ancient entries are gone");
        let (seen, _) = decide(&ledger, now, vec![]);
        assert_eq!(seen, (Decimal::from(42), 2));
        drop(ledger);
        let ledger = SledLedger::open(&store, now, []).unwrap();
        let (seen, _) = decide(&ledger, now, vec![]);
        assert_eq!(seen, (Decimal::from(42), 2));
    }

    /// Settled entries are folded into sums per kind and quarter hour, and
    /// every cap window, in zones a quarter or half hour off UTC and across
    /// DST, counts exactly what a scan over the payments counts: after
    /// compaction, after a reopen, and in a zone first asked about later.
    #[test]
    fn compacted_spend_counts_exactly_what_its_payments_did() {
        use chrono::TimeZone;
        let zones: [Tz; 4] = [
            PARIS,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Adelaide,
        ];
        let dir = tempfile::tempdir().unwrap();
        // Across the end of DST in Paris and New York (late October / early
        // November 2026) and its start in Adelaide (4 October 2026).
        let base = Utc.with_ymd_and_hms(2026, 10, 24, 21, 0, 0).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ledger = SledLedger::open(&store, base, zones[..2].iter().copied()).unwrap();
        let mut active = Vec::new();
        let mut kinds = std::collections::HashSet::new();
        let mut last = base;
        for i in 0..8000i64 {
            let at = base + Duration::seconds(i * 90);
            last = at;
            let mut e = event(i % 7, at);
            e.amount = Money::new(
                Decimal::new(i % 7 * 100 + i % 3 * 25, 2),
                Currency::parse(if i % 5 == 0 { "USD" } else { "EUR" }).unwrap(),
            );
            e.agent = format!("agent-{}", i % 2);
            e.beneficiary = (i % 3 == 0).then(|| format!("b-{}", i % 2));
            let (_, reservation) = decide(&ledger, at, vec![e.clone()]);
            if i % 10 == 9 {
                block_on(ledger.release(&reservation)).unwrap();
            } else {
                if i < 7990 {
                    block_on(ledger.settle(&reservation)).unwrap();
                    kinds.insert((
                        at.timestamp().div_euclid(900),
                        e.agent.clone(),
                        e.beneficiary.clone(),
                        e.amount.currency,
                    ));
                }
                active.push(e);
            }
        }
        while ledger.compact(last, 1 << 20).unwrap() {}
        let entries_left = ledger.tree.range(..[SUM_PREFIX].as_slice()).count();
        assert!(entries_left <= 10, "{entries_left} entries left");
        let sums = ledger.tree.scan_prefix([SUM_PREFIX]).count();
        assert_eq!(sums, kinds.len(), "one sum per kind and quarter hour");
        assert!(
            sums < 7200 * 2 / 3,
            "{sums} sums for 7,200 settled payments"
        );

        let check = |ledger: &SledLedger| {
            for tz in zones {
                for step in 0..20 {
                    let now = base + Duration::hours(step * 10 + 1);
                    for window in [CapWindow::Day, CapWindow::Week, CapWindow::Month] {
                        let period = CapPeriod::of(now, tz, window).unwrap();
                        let scopes = [
                            ScopeKey::AllAgents,
                            ScopeKey::Agent("agent-1"),
                            ScopeKey::Beneficiary("b-0"),
                        ];
                        let queries: Vec<CapQuery<'_>> = scopes
                            .into_iter()
                            .map(|scope| CapQuery {
                                scope,
                                vendors: None,
                                operations: None,
                                categories: None,
                                period,
                            })
                            .collect();
                        let run =
                            super::super::decide_and_reserve(ledger, last, &queries, |totals| {
                                let seen: Vec<_> = queries
                                    .iter()
                                    .map(|q| view(&totals.total(q).unwrap()))
                                    .collect();
                                (seen, vec![])
                            });
                        let (seen, _) = block_on(run).unwrap();
                        for (query, seen) in queries.iter().zip(seen) {
                            let expected = view(&scan(&active, query));
                            assert_eq!(
                                seen, expected,
                                "{tz} {window:?} {:?} at {now}",
                                query.scope
                            );
                        }
                    }
                }
            }
        };
        check(&ledger);
        drop(ledger);
        let ledger = SledLedger::open(&store, last, zones[..1].iter().copied()).unwrap();
        check(&ledger);
    }

    fn view(total: &CapTotal) -> Vec<(String, Decimal, u64)> {
        total
            .by_currency
            .iter()
            .map(|(c, t)| (c.to_string(), t.sum.value().unwrap().normalize(), t.count))
            .collect()
    }
}
