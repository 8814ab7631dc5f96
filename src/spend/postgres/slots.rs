//! The shared store's buckets, as rows: what a cap query reads and what a
//! reservation, a settle or a release writes. Pure: no database here.
//!
//! The meaning is [`Buckets`](crate::spend::Buckets)'s, row for row: a
//! *head* is one window (zone × kind × first local date) of one scope value
//! (everyone, an agent, a beneficiary, a category); under it, one *slot*
//! row per (vendor, operation, category, currency) holds the running count
//! and exact sum, kept apart for spend still awaiting the vendor
//! (`reserved`) and spend the vendor accepted (`settled`), so that both
//! are one read away. Spend made at an instant is counted in the windows
//! that hold that instant ([`CapPeriod::containing`]), in every zone any
//! cap counts in (the `leash_zones` table); a query reads its head's slots
//! and keeps those its filters select ([`CapQuery::selects`]).
//!
//! A head is also the unit of locking: every transaction takes the
//! advisory lock of each head it reads or writes ([`Head::lock_key`]).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::money::{Currency, Money};
use crate::policy::caps::{
    CapPeriod, CapQuery, CapTotal, CurrencyTotal, ExactSum, ScopeKey, Totals,
};
use crate::policy::engine::SpendEvent;
use crate::policy::model::CapWindow;

const WINDOWS: [CapWindow; 3] = [CapWindow::Day, CapWindow::Week, CapWindow::Month];

/// `scope_kind` values.
const ALL: i16 = 0;
const AGENT: i16 = 1;
const BENEFICIARY: i16 = 2;
const CATEGORY: i16 = 3;

/// One window of one scope value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Head {
    pub tz: String,
    pub window: &'static str,
    /// The window's first local date, `YYYY-MM-DD`.
    pub first: String,
    pub scope_kind: i16,
    /// `""` for everyone.
    pub scope_value: String,
}

fn window_name(window: CapWindow) -> &'static str {
    match window {
        CapWindow::Day => "day",
        CapWindow::Week => "week",
        CapWindow::Month => "month",
    }
}

impl Head {
    fn new(period: &CapPeriod, scope_kind: i16, scope_value: &str) -> Head {
        Head {
            tz: period.tz.name().to_string(),
            window: window_name(period.window),
            first: period.first.format("%Y-%m-%d").to_string(),
            scope_kind,
            scope_value: scope_value.to_string(),
        }
    }

    /// The head a cap query reads.
    pub fn of_query(query: &CapQuery<'_>) -> Head {
        let (kind, value) = match query.scope {
            ScopeKey::AllAgents => (ALL, ""),
            ScopeKey::Agent(a) => (AGENT, a),
            ScopeKey::Beneficiary(b) => (BENEFICIARY, b),
            ScopeKey::Category(c) => (CATEGORY, c),
        };
        Head::new(&query.period, kind, value)
    }

    /// The advisory lock that guards this head: 64 bits of SHA-256 of its
    /// parts, with a prefix of leash's own so that other users of the
    /// database's advisory locks are unlikely to meet them. Two heads that
    /// share a key (2^-64) only wait for each other.
    pub fn lock_key(&self) -> i64 {
        let mut h = Sha256::new();
        h.update(b"leash-cap-head\0");
        for part in [
            self.tz.as_str(),
            self.window,
            self.first.as_str(),
            &self.scope_kind.to_string(),
            self.scope_value.as_str(),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        named_key_of(&h.finalize())
    }
}

fn named_key_of(digest: &[u8]) -> i64 {
    let mut bytes = [0u8; 8];
    for (b, d) in bytes.iter_mut().zip(digest) {
        *b = *d;
    }
    i64::from_be_bytes(bytes)
}

/// The advisory lock key of a name (the zone list, migrations).
pub fn named_key(name: &str) -> i64 {
    named_key_of(&Sha256::digest(name.as_bytes()))
}

/// One slot row's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotKey {
    pub head: Head,
    pub vendor: String,
    pub operation: String,
    pub category: String,
    pub currency: String,
}

/// What one statement adds to a slot row (negative to take out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// When the window ends (ns since the epoch): old rows are pruned by it.
    pub ends_ns: i64,
    pub reserved_count: i64,
    pub reserved_sum: Decimal,
    pub settled_count: i64,
    pub settled_sum: Decimal,
    pub latest_ns: i64,
}

/// Where a reservation's amount counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Reserved,
    Settled,
    Released,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Reserved => "reserved",
            State::Settled => "settled",
            State::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "reserved" => Some(State::Reserved),
            "settled" => Some(State::Settled),
            "released" => Some(State::Released),
            _ => None,
        }
    }
}

/// Nanoseconds since the epoch, exact (PostgreSQL's timestamps keep
/// microseconds and round: an instant a few hundred nanoseconds before
/// midnight would move to the next day's window).
pub fn nanos(at: DateTime<Utc>) -> Result<i64, String> {
    at.timestamp_nanos_opt()
        .ok_or_else(|| format!("{at} is outside the range the shared ledger stores"))
}

/// The deltas that move `events` from state `from` to state `to`, in every
/// zone of `zones`; windows that ended at or before `cutoff` are skipped
/// (no cap asks about them any more, as in [`Buckets`](crate::spend::Buckets)).
/// `from: None` is a new reservation.
pub fn deltas<'e>(
    events: impl IntoIterator<Item = (&'e SpendEvent, Option<State>, State)>,
    zones: &[Tz],
    cutoff: Option<DateTime<Utc>>,
) -> Result<BTreeMap<SlotKey, Delta>, String> {
    let mut out: BTreeMap<SlotKey, Delta> = BTreeMap::new();
    for (event, from, to) in events {
        let at_ns = nanos(event.at)?;
        let amount = event.amount.amount;
        let currency = event.amount.currency.to_string();
        for tz in zones {
            for window in WINDOWS {
                let Some(period) = CapPeriod::containing(event.at, *tz, window) else {
                    continue;
                };
                if cutoff.is_some_and(|c| period.end <= c) {
                    continue;
                }
                let ends_ns = nanos(period.end)?;
                let mut heads = vec![
                    Head::new(&period, ALL, ""),
                    Head::new(&period, AGENT, &event.agent),
                    Head::new(&period, CATEGORY, &event.category),
                ];
                if let Some(b) = &event.beneficiary {
                    heads.push(Head::new(&period, BENEFICIARY, b));
                }
                for head in heads {
                    let key = SlotKey {
                        head,
                        vendor: event.vendor.clone(),
                        operation: event.operation.clone(),
                        category: event.category.clone(),
                        currency: currency.clone(),
                    };
                    let delta = out.entry(key).or_insert(Delta {
                        ends_ns,
                        reserved_count: 0,
                        reserved_sum: Decimal::ZERO,
                        settled_count: 0,
                        settled_sum: Decimal::ZERO,
                        latest_ns: at_ns,
                    });
                    delta.latest_ns = delta.latest_ns.max(at_ns);
                    for (state, sign) in [(from, -1i64), (Some(to), 1)] {
                        let (count, sum) = match state {
                            Some(State::Reserved) => {
                                (&mut delta.reserved_count, &mut delta.reserved_sum)
                            }
                            Some(State::Settled) => {
                                (&mut delta.settled_count, &mut delta.settled_sum)
                            }
                            Some(State::Released) | None => continue,
                        };
                        *count += sign;
                        let signed = if sign < 0 { -amount } else { amount };
                        *sum = sum
                            .checked_add(signed)
                            .ok_or("a spend total is too large to count exactly")?;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// One slot row as read for a query.
#[derive(Debug, Clone)]
pub struct SlotRow {
    /// Which of the heads asked about it is under.
    pub head: usize,
    pub vendor: String,
    pub operation: String,
    pub category: String,
    pub currency: String,
    pub reserved_count: i64,
    pub reserved_sum: String,
    pub settled_count: i64,
    pub settled_sum: String,
    pub latest_ns: i64,
}

/// What a query counts, split as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Awaiting the vendor's answer.
    pub reserved: CapTotal,
    /// Accepted by the vendor.
    pub settled: CapTotal,
}

/// Adds a count and a sum read from the database to `total`.
fn add_to(
    total: &mut CapTotal,
    currency: Currency,
    count: i64,
    sum: &str,
    latest: DateTime<Utc>,
) -> Result<(), String> {
    if count <= 0 {
        return Ok(());
    }
    let sum = Decimal::from_str(sum)
        .map_err(|_| format!("the shared ledger holds a sum leash cannot read exactly ({sum})"))?;
    let count = u64::try_from(count).unwrap_or(0);
    let mut exact = ExactSum::default();
    exact.add(sum);
    let mut theirs = CapTotal::default();
    theirs.by_currency.push((
        currency,
        CurrencyTotal {
            count,
            sum: exact,
            latest,
        },
    ));
    total.merge(&theirs);
    Ok(())
}

fn currency(code: &str) -> Result<Currency, String> {
    Currency::parse(code)
        .or_else(|_| Currency::asset(code))
        .map_err(|_| format!("the shared ledger holds an unknown currency {code:?}"))
}

/// The split totals of each query from the rows of `heads`
/// (`heads[i]` is [`Head::of_query`] of some query).
pub fn split_totals(
    queries: &[CapQuery<'_>],
    heads: &[Head],
    rows: &[SlotRow],
) -> Vec<Result<Split, String>> {
    queries
        .iter()
        .map(|query| {
            let head = Head::of_query(query);
            let index = heads.iter().position(|h| *h == head);
            let mut split = Split::default();
            for row in rows.iter().filter(|r| Some(r.head) == index) {
                if !query.selects(&row.vendor, &row.operation, &row.category) {
                    continue;
                }
                let currency = currency(&row.currency)?;
                let latest = DateTime::from_timestamp_nanos(row.latest_ns);
                add_to(
                    &mut split.reserved,
                    currency,
                    row.reserved_count,
                    &row.reserved_sum,
                    latest,
                )?;
                add_to(
                    &mut split.settled,
                    currency,
                    row.settled_count,
                    &row.settled_sum,
                    latest,
                )?;
            }
            Ok(split)
        })
        .collect()
}

/// The totals a decision runs on: reserved and settled spend together.
pub fn totals<'q>(queries: &[CapQuery<'q>], heads: &[Head], rows: &[SlotRow]) -> Totals<'q> {
    let mut out = Totals::new();
    for (query, split) in queries.iter().zip(split_totals(queries, heads, rows)) {
        out.insert(
            *query,
            split.map(|s| {
                let mut all = s.reserved;
                all.merge(&s.settled);
                all
            }),
        );
    }
    out
}

/// A stored reservation's amount, read back.
pub fn money(amount: &str, code: &str) -> Result<Money, String> {
    let amount = Decimal::from_str(amount)
        .map_err(|_| format!("the shared ledger holds an amount leash cannot read ({amount})"))?;
    Ok(Money::new(amount, currency(code)?))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::policy::caps::SpendTotals;
    use crate::spend::totals_of_events;

    const ZONES: [Tz; 4] = [
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::America::Santiago,
    ];

    /// Applies deltas to an in-memory table, as the upsert does.
    fn apply(table: &mut BTreeMap<SlotKey, Delta>, deltas: BTreeMap<SlotKey, Delta>) {
        for (key, d) in deltas {
            match table.get_mut(&key) {
                Some(row) => {
                    row.reserved_count += d.reserved_count;
                    row.reserved_sum += d.reserved_sum;
                    row.settled_count += d.settled_count;
                    row.settled_sum += d.settled_sum;
                    row.latest_ns = row.latest_ns.max(d.latest_ns);
                }
                None => {
                    table.insert(key, d);
                }
            }
        }
    }

    /// What the slot query returns for `heads`.
    fn read(table: &BTreeMap<SlotKey, Delta>, heads: &[Head]) -> Vec<SlotRow> {
        table
            .iter()
            .filter_map(|(k, d)| {
                let head = heads.iter().position(|h| *h == k.head)?;
                Some(SlotRow {
                    head,
                    vendor: k.vendor.clone(),
                    operation: k.operation.clone(),
                    category: k.category.clone(),
                    currency: k.currency.clone(),
                    reserved_count: d.reserved_count,
                    reserved_sum: d.reserved_sum.to_string(),
                    settled_count: d.settled_count,
                    settled_sum: d.settled_sum.to_string(),
                    latest_ns: d.latest_ns,
                })
            })
            .collect()
    }

    fn counted(total: &CapTotal) -> Vec<(Currency, u64, Option<Decimal>)> {
        total
            .by_currency
            .iter()
            .map(|(c, t)| (*c, t.count, t.sum.value()))
            .collect()
    }

    fn arb_event() -> impl Strategy<Value = SpendEvent> {
        let base = DateTime::parse_from_rfc3339("2026-03-28T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        (
            -3 * 86_400i64..3 * 86_400,
            0..2usize,
            0..2usize,
            prop::option::of(0..2usize),
            (0i64..100_000, 0u32..4),
            0..2usize,
        )
            .prop_map(move |(secs, a, v, b, (m, s), c)| SpendEvent {
                at: base + Duration::seconds(secs),
                agent: ["growth-agent", "ops-agent"][a].into(),
                vendor: ["stripe", "wise"][v].into(),
                operation: "charge.create".into(),
                category: ["payment", "transfer"][v].into(),
                beneficiary: b.map(|b| format!("cus_{b}")),
                amount: Money::new(
                    Decimal::new(m, s),
                    Currency::parse(["EUR", "JPY"][c]).unwrap(),
                ),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Reserving, settling and releasing through slot deltas answers
        /// every query exactly as the in-memory buckets do: the shared
        /// store and the embedded one mean the same thing.
        #[test]
        fn slot_totals_equal_bucket_totals(
            events in prop::collection::vec((arb_event(), 0..3u8), 1..30),
            probe in -3 * 86_400i64..3 * 86_400,
        ) {
            let mut table = BTreeMap::new();
            let mut active = Vec::new();
            // fate 0: stays reserved; 1: settled; 2: settled, then
            // released (both moves must come out right).
            for (event, fate) in &events {
                apply(&mut table, deltas([(event, None, State::Reserved)], &ZONES, None).unwrap());
                if *fate >= 1 {
                    apply(&mut table, deltas([(event, Some(State::Reserved), State::Settled)], &ZONES, None).unwrap());
                }
                if *fate == 2 {
                    apply(&mut table, deltas([(event, Some(State::Settled), State::Released)], &ZONES, None).unwrap());
                } else {
                    active.push(event.clone());
                }
            }
            let now = events[0].0.at + Duration::seconds(probe);
            let vendors: BTreeSet<String> = ["stripe".to_string()].into();
            for tz in ZONES {
                for window in WINDOWS {
                    let Some(period) = CapPeriod::of(now, tz, window) else { continue };
                    for scope in [ScopeKey::AllAgents, ScopeKey::Agent("growth-agent"), ScopeKey::Beneficiary("cus_1"), ScopeKey::Category("payment")] {
                        for filter in [None, Some(&vendors)] {
                            let queries = [CapQuery { scope, vendors: filter, operations: None, categories: None, period }];
                            let heads: Vec<Head> = queries.iter().map(Head::of_query).collect();
                            let ours = totals(&queries, &heads, &read(&table, &heads));
                            let reference = totals_of_events(&active, &queries);
                            let a = ours.total(&queries[0]).unwrap();
                            let b = reference.total(&queries[0]).unwrap();
                            prop_assert_eq!(counted(&a), counted(&b));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lock_keys_differ_by_every_part() {
        let period = CapPeriod::of(Utc::now(), chrono_tz::Europe::Paris, CapWindow::Day).unwrap();
        let a = Head::new(&period, AGENT, "a");
        let keys: BTreeSet<i64> = [
            a.clone(),
            Head::new(&period, CATEGORY, "a"),
            Head::new(&period, AGENT, "b"),
            Head {
                window: "week",
                ..a.clone()
            },
            Head {
                first: "2000-01-01".into(),
                ..a.clone()
            },
        ]
        .iter()
        .map(Head::lock_key)
        .collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(a.lock_key(), a.clone().lock_key());
    }
}
