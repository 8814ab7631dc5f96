//! Cap queries and the totals that answer them (SPEC §5.4).
//!
//! A cap counts the spend of one scope (the intent's agent, beneficiary or
//! category, or everyone) that its filters select, inside one calendar
//! window of the rule's timezone. The engine works that out *purely* from
//! the rule, the intent and the clock: a [`CapQuery`]. Whatever holds the
//! spend (the ledger's running buckets, a remote store, an in-memory list in
//! `leash explain`) answers each query with per-currency [`CapTotal`]s,
//! through [`SpendTotals`]; the engine converts and adds them.
//!
//! So a decision costs a few lookups per cap rule, however much spend came
//! before: nothing on the request path walks past events.
//!
//! Sums are kept exactly ([`ExactSum`]): adding and then removing an amount
//! (a reservation the vendor refused) gives back exactly what was there,
//! whatever the amounts' scales, which a running `Decimal` sum could not
//! promise once its 28 digits run out.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::engine::{day_start, SpendEvent};
use super::model::CapWindow;
use crate::money::{Currency, Money};

/// Whose spend a cap counts, with the value the intent gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKey<'a> {
    Agent(&'a str),
    AllAgents,
    Beneficiary(&'a str),
    Category(&'a str),
}

impl ScopeKey<'_> {
    /// Whether `event` is spend of this scope.
    pub fn holds(&self, event: &SpendEvent) -> bool {
        match self {
            ScopeKey::Agent(agent) => event.agent == *agent,
            ScopeKey::AllAgents => true,
            ScopeKey::Beneficiary(b) => event.beneficiary.as_deref() == Some(*b),
            ScopeKey::Category(c) => event.category == *c,
        }
    }
}

/// One calendar window of a cap: the local dates `[first, next)` in `tz`,
/// which are the instants `[start, end)`.
///
/// Windows of one kind and zone tile time: a window's `end` is the next
/// one's `start` (both are [`day_start`] of the same date). So every instant
/// lies in exactly one of them, which is what lets a store keep one running
/// sum per window ([`CapPeriod::containing`]) and answer a cap with one
/// lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapPeriod {
    pub tz: Tz,
    pub window: CapWindow,
    /// The window's first local date (a Monday for a week, the 1st for a
    /// month): with `tz` and `window`, what names the window.
    pub first: NaiveDate,
    /// The first local date after the window.
    pub next: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl CapPeriod {
    /// The window a cap decided at `now` counts: the one of `now`'s local
    /// date in `tz` (the engine's definition, see
    /// [`cap_window`](super::engine::cap_window)). `None` when a date at
    /// the edge of the calendar cannot be computed.
    pub fn of(now: DateTime<Utc>, tz: Tz, window: CapWindow) -> Option<CapPeriod> {
        CapPeriod::for_date(tz, window, now.with_timezone(&tz).date_naive())
    }

    /// The window of `window`'s kind that holds the local date `date`.
    pub fn for_date(tz: Tz, window: CapWindow, date: NaiveDate) -> Option<CapPeriod> {
        let (first, next) = match window {
            CapWindow::Day => (date, date.checked_add_days(Days::new(1))?),
            CapWindow::Week => {
                let back = u64::from(date.weekday().num_days_from_monday());
                let monday = date.checked_sub_days(Days::new(back))?;
                (monday, monday.checked_add_days(Days::new(7))?)
            }
            CapWindow::Month => {
                let first = date.with_day(1)?;
                (first, first.checked_add_months(Months::new(1))?)
            }
        };
        Some(CapPeriod {
            tz,
            window,
            first,
            next,
            start: day_start(tz, first)?,
            end: day_start(tz, next)?,
        })
    }

    /// Whether the instant `at` is inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// The window that holds the *instant* `at`: where a store counts spend
    /// made at `at`, so that a cap over `[start, end)` finds exactly the
    /// spend whose instant is inside, as a scan would.
    ///
    /// Almost always the window of `at`'s local date. A zone whose local
    /// date steps back (a fall-back across midnight) can put an instant
    /// just before its local date's start; then the neighbouring window is
    /// the one. `None` only at the edge of the calendar.
    pub fn containing(at: DateTime<Utc>, tz: Tz, window: CapWindow) -> Option<CapPeriod> {
        let mut period = CapPeriod::of(at, tz, window)?;
        // Local dates and instants disagree by at most a transition, so one
        // or two steps always reach the window; the bound only guards
        // against a zone table that does not tile.
        for _ in 0..4 {
            if at < period.start {
                let before = period.first.checked_sub_days(Days::new(1))?;
                period = CapPeriod::for_date(tz, window, before)?;
            } else if at >= period.end {
                period = CapPeriod::for_date(tz, window, period.next)?;
            } else {
                return Some(period);
            }
        }
        period.contains(at).then_some(period)
    }
}

/// The past spend one cap counts, as the engine computes it from the rule,
/// the intent and the clock. Pure data: a store answers it without knowing
/// any policy.
///
/// The filters are the rule's `vendors`, `operations` and `categories`
/// (`None` selects anything). `accounts` cannot narrow a cap (the loader
/// refuses it) and `amount` narrows which *intents* a cap looks at, not
/// which past spend it counts, so neither is here.
#[derive(Debug, Clone, Copy)]
pub struct CapQuery<'a> {
    pub scope: ScopeKey<'a>,
    pub vendors: Option<&'a BTreeSet<String>>,
    pub operations: Option<&'a BTreeSet<String>>,
    pub categories: Option<&'a BTreeSet<String>>,
    pub period: CapPeriod,
}

/// Same filter: the same set (usually the same rule's), or equal sets.
fn same_filter(a: Option<&BTreeSet<String>>, b: Option<&BTreeSet<String>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => std::ptr::eq(a, b) || a == b,
        _ => false,
    }
}

impl PartialEq for CapQuery<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.period == other.period
            && self.scope == other.scope
            && same_filter(self.vendors, other.vendors)
            && same_filter(self.operations, other.operations)
            && same_filter(self.categories, other.categories)
    }
}

impl Eq for CapQuery<'_> {}

impl CapQuery<'_> {
    /// Whether the filters select spend with these fields.
    pub fn selects(&self, vendor: &str, operation: &str, category: &str) -> bool {
        let ok =
            |set: Option<&BTreeSet<String>>, value: &str| set.is_none_or(|s| s.contains(value));
        ok(self.vendors, vendor) && ok(self.operations, operation) && ok(self.categories, category)
    }

    /// Whether `event` is spend of the scope that the filters select,
    /// whenever it was made.
    pub fn matches(&self, event: &SpendEvent) -> bool {
        self.scope.holds(event) && self.selects(&event.vendor, &event.operation, &event.category)
    }

    /// Whether the cap counts `event`: it matches and was made inside the
    /// window. The definition every store must agree with.
    pub fn counts(&self, event: &SpendEvent) -> bool {
        self.period.contains(event.at) && self.matches(event)
    }
}

/// An exact sum of decimal amounts: one integer per scale, so adding and
/// removing never rounds. Read out with [`ExactSum::value`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactSum {
    /// `(scale, Σ mantissas)`, by scale, no zero parts.
    parts: Vec<(u32, i128)>,
    /// An `i128` overflowed (about 2^31 amounts of the largest size): the
    /// sum is unknown until it empties.
    overflowed: bool,
}

impl ExactSum {
    /// Adds `delta` units of `10^-scale`.
    fn add_part(&mut self, scale: u32, delta: i128) {
        if delta == 0 {
            return;
        }
        match self.parts.binary_search_by_key(&scale, |(s, _)| *s) {
            Ok(i) => {
                let sum = self.parts.get(i).and_then(|(_, v)| v.checked_add(delta));
                match sum {
                    Some(0) => {
                        self.parts.remove(i);
                    }
                    Some(v) => {
                        if let Some(part) = self.parts.get_mut(i) {
                            part.1 = v;
                        }
                    }
                    None => self.overflowed = true,
                }
            }
            Err(i) => self.parts.insert(i, (scale, delta)),
        }
    }

    pub fn add(&mut self, amount: Decimal) {
        self.add_part(amount.scale(), amount.mantissa());
    }

    pub fn sub(&mut self, amount: Decimal) {
        // A mantissa has at most 96 bits: its negation always fits.
        self.add_part(amount.scale(), -amount.mantissa());
    }

    pub fn add_sum(&mut self, other: &ExactSum) {
        for (scale, value) in &other.parts {
            self.add_part(*scale, *value);
        }
        self.overflowed |= other.overflowed;
    }

    /// The sum as a `Decimal`, or `None` when it is too large for one (or
    /// overflowed on the way).
    pub fn value(&self) -> Option<Decimal> {
        if self.overflowed {
            return None;
        }
        let mut total = Decimal::ZERO;
        for (scale, value) in &self.parts {
            let part = Decimal::try_from_i128_with_scale(*value, *scale).ok()?;
            total = total.checked_add(part)?;
        }
        Some(total)
    }
}

/// The spend in one currency that a cap counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotal {
    /// How many payments (a zero amount counts: it must still convert).
    pub count: u64,
    pub sum: ExactSum,
    /// The latest instant spend in this currency was counted at (for
    /// messages; after a release it may name the released payment).
    pub latest: DateTime<Utc>,
}

/// Per-currency spend that a cap counts, by currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapTotal {
    pub by_currency: Vec<(Currency, CurrencyTotal)>,
}

impl CapTotal {
    /// Counts `amount`, made at `at`.
    pub fn add(&mut self, amount: Money, at: DateTime<Utc>) {
        self.add_many(amount, 1, at);
    }

    /// Counts `count` payments summing to `amount`, the last made at
    /// `latest` (a ledger's stored sum of settled payments).
    pub fn add_many(&mut self, amount: Money, count: u64, latest: DateTime<Utc>) {
        let at = latest;
        match self
            .by_currency
            .binary_search_by_key(&amount.currency, |(c, _)| *c)
        {
            Ok(i) => {
                if let Some((_, t)) = self.by_currency.get_mut(i) {
                    t.count = t.count.saturating_add(count);
                    t.sum.add(amount.amount);
                    t.latest = t.latest.max(at);
                }
            }
            Err(i) => {
                let mut sum = ExactSum::default();
                sum.add(amount.amount);
                self.by_currency.insert(
                    i,
                    (
                        amount.currency,
                        CurrencyTotal {
                            count,
                            sum,
                            latest: at,
                        },
                    ),
                );
            }
        }
    }

    /// No longer counts `amount` (a released reservation). A currency whose
    /// last payment goes is gone.
    pub fn remove(&mut self, amount: Money) {
        let Ok(i) = self
            .by_currency
            .binary_search_by_key(&amount.currency, |(c, _)| *c)
        else {
            return;
        };
        let empty = match self.by_currency.get_mut(i) {
            Some((_, t)) => {
                t.count = t.count.saturating_sub(1);
                t.sum.sub(amount.amount);
                t.count == 0
            }
            None => false,
        };
        if empty {
            self.by_currency.remove(i);
        }
    }

    /// Adds everything `other` counts.
    pub fn merge(&mut self, other: &CapTotal) {
        for (currency, theirs) in &other.by_currency {
            match self.by_currency.binary_search_by_key(currency, |(c, _)| *c) {
                Ok(i) => {
                    if let Some((_, t)) = self.by_currency.get_mut(i) {
                        t.count = t.count.saturating_add(theirs.count);
                        t.sum.add_sum(&theirs.sum);
                        t.latest = t.latest.max(theirs.latest);
                    }
                }
                Err(i) => self.by_currency.insert(i, (*currency, theirs.clone())),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_currency.is_empty()
    }
}

/// What answers cap queries: the spend a cap counts, per currency.
///
/// `Err` is a reason the spend cannot be known (the store was not asked
/// about this cap, a zone it cannot count in); the engine then treats the
/// cap's input as missing and fails closed.
pub trait SpendTotals: fmt::Debug + Sync {
    fn total(&self, query: &CapQuery<'_>) -> Result<Cow<'_, CapTotal>, String>;
}

/// The definition, by a scan: every event the query [counts](CapQuery::counts).
/// O(events): for tests, benchmarks and checking stores against, never the
/// request path.
impl SpendTotals for [SpendEvent] {
    fn total(&self, query: &CapQuery<'_>) -> Result<Cow<'_, CapTotal>, String> {
        Ok(Cow::Owned(scan(self, query)))
    }
}

impl SpendTotals for Vec<SpendEvent> {
    fn total(&self, query: &CapQuery<'_>) -> Result<Cow<'_, CapTotal>, String> {
        self.as_slice().total(query)
    }
}

/// Every event of `events` that `query` counts, totalled.
pub fn scan<'e>(
    events: impl IntoIterator<Item = &'e SpendEvent>,
    query: &CapQuery<'_>,
) -> CapTotal {
    let mut total = CapTotal::default();
    for event in events {
        if query.counts(event) {
            total.add(event.amount, event.at);
        }
    }
    total
}

/// The answers to a set of queries, as a store gives them for one decision.
#[derive(Debug, Clone)]
pub struct Totals<'q> {
    answers: Vec<(CapQuery<'q>, Result<CapTotal, String>)>,
}

impl<'q> Totals<'q> {
    pub fn new() -> Self {
        Self {
            answers: Vec::new(),
        }
    }

    /// Records the answer to `query`.
    pub fn insert(&mut self, query: CapQuery<'q>, answer: Result<CapTotal, String>) {
        self.answers.push((query, answer));
    }

    /// The answers, in the order they were given.
    pub fn answers(&self) -> impl Iterator<Item = (&CapQuery<'q>, &Result<CapTotal, String>)> {
        self.answers.iter().map(|(q, a)| (q, a))
    }
}

impl Default for Totals<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl SpendTotals for Totals<'_> {
    fn total(&self, query: &CapQuery<'_>) -> Result<Cow<'_, CapTotal>, String> {
        // A linear look-up: a decision asks a few dozen caps at most, and
        // comparing a query is a handful of word compares.
        let same = |q: &CapQuery<'_>| {
            q.period == query.period
                && q.scope == query.scope
                && same_filter(q.vendors, query.vendors)
                && same_filter(q.operations, query.operations)
                && same_filter(q.categories, query.categories)
        };
        match self.answers.iter().find(|(q, _)| same(q)) {
            Some((_, Ok(total))) => Ok(Cow::Borrowed(total)),
            Some((_, Err(why))) => Err(why.clone()),
            None => Err("the spend ledger was not asked about this cap".to_string()),
        }
    }
}
