//! The shared ledger: caps' counters in one PostgreSQL database that every
//! leash of an agent's replicas points at (SPEC §11).
//!
//! # Tables (see [`schema`])
//!
//! - `leash_reservations`: one row per reserved amount, keyed by
//!   (instance id, the reservation id the instance gave it), with its state
//!   (`reserved`, `settled`, `released`) and the spend's fields.
//! - `leash_slots`: the running sums — one row per cap window × scope value
//!   × (vendor, operation, category, currency), reserved and settled apart
//!   ([`slots`] says exactly what they mean; it is
//!   [`Buckets`](super::Buckets)' meaning).
//! - `leash_zones`: the timezones spend is counted in.
//!
//! A reservation's row and its slot updates are one transaction, so the
//! sums are always the sum of the rows.
//!
//! # Why advisory locks per window head, taken in a fixed order
//!
//! A decision reads the totals of its cap queries and reserves on them:
//! read-decide-write must be serialisable across every instance. The
//! choices were:
//!
//! - a conditional `UPDATE … WHERE total + x <= limit`: exact and one
//!   statement, but only for a cap that is a single number in a single
//!   currency. leash's decisions are the policy engine's (several caps,
//!   currency conversion, REQUIRE_HUMAN above one amount, REJECT above
//!   another), which must run in leash on the totals: the store cannot
//!   evaluate them;
//! - `SERIALIZABLE` with retry: exact, but a cap everyone spends against
//!   is exactly the hot spot where every concurrent transaction conflicts,
//!   so under load most transactions would abort and retry (256 requests
//!   at one cap would each retry up to ~256 times), and predicate locks on
//!   index pages give false conflicts besides;
//! - `SELECT … FOR UPDATE` on the rows read: rows a query reads can be
//!   *absent* (no spend yet in that slot), and absent rows cannot be
//!   locked, so two decisions could both see an empty window and both
//!   pass (a phantom).
//!
//! So the lock is on the *head* — one window of one scope value, exactly
//! what a cap query reads — as a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`) on a 64-bit hash of it ([`slots::Head::lock_key`]).
//! It exists whether or not any row does, so phantoms are covered; it is
//! released by commit or rollback, and by the server when a connection
//! dies (a `kill -9`ed leash holds nothing). Every transaction that reads
//! or writes a slot holds its head's lock, so decisions on one cap are
//! serialised across instances and decisions on different caps run in
//! parallel. Deadlocks are avoided by taking locks only in ascending key
//! order: a decision first locks the heads it reads (sorted); the heads it
//! then writes are known only after it decided, so those it does not hold
//! yet are *tried* (`pg_try_advisory_xact_lock`, never waits); if one is
//! busy, the transaction rolls back and runs again with every head locked
//! up front, in order (`decide` may run more than once, as the trait
//! allows). `tests/shared_ledger.rs` proves the exactness: many
//! concurrent decisions through several ledgers (connection pools, as
//! separate instances have) never pass a cap together.
//!
//! The zone list is guarded the same way: every transaction holds a shared
//! advisory lock on it, and adding a zone (which counts the stored spend
//! into its windows) holds it exclusively.
//!
//! # Failing closed, and what an unknown outcome becomes
//!
//! Every operation runs under `ledger.timeout`. The database unreachable,
//! a timeout or any error is [`LedgerError::Unavailable`]: the gate answers
//! `503 leash_ledger_unavailable` and forwards nothing. A connection that
//! failed or timed out mid-transaction is closed, never returned to the
//! pool, so the server rolls its transaction back. Only a `COMMIT` sent
//! without an answer has an unknown outcome: its reservation ids are
//! *doubtful*, written to the local outbox (sled, in `data_dir`) as
//! releases. The request was refused, so the right end for its reservation
//! is released, and a release is idempotent: on reconnect the outbox is
//! drained, and a release of an id that does not exist inserts a
//! `released` tombstone, which makes a commit arriving later fail on the
//! primary key. Either way the reservation ends counted zero times. The
//! same outbox retries settles and releases that failed while the
//! database was away. leash keeps probing the database in the background,
//! so `/healthz` and the gate recover without a restart.

pub mod schema;
pub mod slots;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::buckets::HORIZON_DAYS;
use super::{Decide, LedgerError, LedgerFuture, Reservation, SpendLedger, Usage};
use crate::config::LedgerConfig;
use crate::policy::caps::CapQuery;
use crate::policy::engine::SpendEvent;
use crate::store::{Store, StoreError};
use slots::{Head, SlotKey, SlotRow, State};

/// Spend older than this is in no window a cap can ask about (as for the
/// sled ledger): a new zone is counted from the rows since then.
const READ_BACK_DAYS: i64 = HORIZON_DAYS + 33;

/// How often a decision retries when a head it must write is busy.
const ATTEMPTS: usize = 8;

/// How often the background task probes the database while it is away and
/// drains the outbox.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How often old windows and reservations are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

fn unavailable(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("{what}: {e}"))
}

fn db(e: tokio_postgres::Error) -> LedgerError {
    unavailable("PostgreSQL", e)
}

/// Why the shared ledger could not be set up (a configuration mistake;
/// the database being away is not one: leash starts and refuses spend
/// until it answers).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ledger.kind is postgres, but the environment variable {0} (ledger.url_env) is not set: export the PostgreSQL URL there, like postgres://leash:PASSWORD@db.internal:5432/leash")]
    NoUrl(String),
    /// The URL itself is never shown: it holds a password.
    #[error("the environment variable {0} (ledger.url_env) does not hold a PostgreSQL URL (postgres://user:password@host:port/database); its value is not shown because it holds a password")]
    BadUrl(String),
    #[error("the shared ledger's pool: {0}")]
    Pool(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The spend ledger on PostgreSQL, shared by every instance pointed at it.
pub struct PostgresLedger {
    pool: Pool,
    instance: String,
    timeout: Duration,
    /// Settles and releases still to be applied: id → state.
    outbox: sled::Tree,
    /// Zones known to be registered (a cache; transactions re-read the list).
    zones: Mutex<std::collections::HashSet<Tz>>,
    migrated: AtomicBool,
    /// Why the ledger is unavailable, if it is.
    down: Mutex<Option<String>>,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLedger")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl PostgresLedger {
    /// Sets up the pool for the URL in `url` (read by the caller from
    /// `config.url_env`) and starts the background task (probing,
    /// draining the outbox, pruning). Tries the database once, within the
    /// timeout, and migrates it; a database that does not answer yet is
    /// logged, and every decision is refused until it does.
    pub async fn start(
        config: &LedgerConfig,
        url: &str,
        instance: &str,
        store: &Store,
    ) -> Result<Arc<PostgresLedger>, StartError> {
        let ledger = Arc::new(Self::new(config, url, instance, store)?);
        match tokio::time::timeout(ledger.timeout, ledger.ensure_ready()).await {
            Ok(Ok(())) => tracing::info!(instance, "shared spend ledger ready (PostgreSQL)"),
            Ok(Err(error)) => {
                ledger.mark_down(&error);
                tracing::error!(%error, "the shared spend ledger is unavailable; spend is refused until it answers");
            }
            Err(_) => {
                let error = LedgerError::Unavailable("the database did not answer in time".into());
                ledger.mark_down(&error);
                tracing::error!(%error, "the shared spend ledger is unavailable; spend is refused until it answers");
            }
        }
        tokio::spawn(background(Arc::downgrade(&ledger)));
        Ok(ledger)
    }

    fn new(
        config: &LedgerConfig,
        url: &str,
        instance: &str,
        store: &Store,
    ) -> Result<PostgresLedger, StartError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StartError::BadUrl(config.url_env.clone()))?;
        let ms = config.timeout.as_millis().max(1);
        // Server-side bounds: a statement or a lock wait never outlasts the
        // client's timeout, and a transaction whose client vanished (a
        // partition; a killed process closes its socket and is seen at
        // once) is rolled back, releasing its locks, soon after.
        let idle = (ms * 3).max(5_000);
        pg.options(format!(
            "-c lock_timeout={ms} -c statement_timeout={ms} -c idle_in_transaction_session_timeout={idle}"
        ));
        pg.application_name(format!("leash {instance}"));
        pg.connect_timeout(config.timeout);
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(10));
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool.get())
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| StartError::Pool(e.to_string()))?;
        Ok(PostgresLedger {
            pool,
            instance: instance.to_string(),
            timeout: config.timeout,
            outbox: store.tree("pg_outbox")?,
            zones: Mutex::new(std::collections::HashSet::new()),
            migrated: AtomicBool::new(false),
            down: Mutex::new(None),
        })
    }

    /// This instance's id, as written into its reservations.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Why the ledger is unavailable (`None`: it answered last time).
    pub fn unavailable_reason(&self) -> Option<String> {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn mark_down(&self, error: &LedgerError) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::error!(%error, "shared spend ledger unavailable");
        }
        *down = Some(error.to_string());
    }

    fn mark_up(&self) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.take().is_some() {
            tracing::info!("shared spend ledger available again");
        }
    }

    /// Runs `op` under the timeout and records whether the database
    /// answered.
    async fn timed<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, LedgerError>>,
    ) -> Result<T, LedgerError> {
        let result = match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(LedgerError::Unavailable(format!(
                "no answer within ledger.timeout ({})",
                humantime::format_duration(self.timeout)
            ))),
        };
        match &result {
            Ok(_) => self.mark_up(),
            Err(e @ LedgerError::Unavailable(_)) => self.mark_down(e),
            Err(_) => {}
        }
        result
    }

    async fn conn(&self) -> Result<Conn<'_>, LedgerError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| unavailable("cannot reach PostgreSQL", e))?;
        Ok(Conn {
            client: Some(client),
            ledger: self,
            in_tx: false,
            committing: None,
        })
    }

    /// Migrates the schema once per process (and after the database was
    /// replaced: a missing table resets it).
    async fn ensure_ready(&self) -> Result<(), LedgerError> {
        if self.migrated.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        conn.begin().await?;
        schema::migrate(conn.client()?).await?;
        conn.commit_plain().await?;
        self.migrated.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn known_zone(&self, tz: Tz) -> bool {
        self.zones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&tz)
    }

    fn learn_zones(&self, zones: &[Tz]) {
        self.zones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(zones.iter().copied());
    }

    /// Starts counting spend in `tz`: adds it to the zone list and counts
    /// the stored active spend into its windows, holding the zone list's
    /// lock exclusively so that no reservation or release runs meanwhile.
    async fn register_zone(&self, tz: Tz, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let mut conn = self.conn().await?;
        conn.begin().await?;
        let client = conn.client()?;
        exec(client, "SELECT pg_advisory_xact_lock($1)", &[&zones_key()])
            .await
            .map_err(db)?;
        let inserted = exec(
            client,
            "INSERT INTO leash_zones (tz) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&tz.name()],
        )
        .await
        .map_err(db)?;
        if inserted == 1 {
            let since = now
                .checked_sub_signed(chrono::Duration::days(READ_BACK_DAYS))
                .map(slots::nanos)
                .transpose()
                .map_err(LedgerError::Unavailable)?
                .unwrap_or(i64::MIN);
            let rows = rows(client,
                    "SELECT state, at_ns, agent, vendor, operation, category, beneficiary, currency, amount::text
                     FROM leash_reservations WHERE state <> 'released' AND at_ns >= $1",
                    &[&since],
                )
                .await
                .map_err(db)?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let state: String = row.try_get(0).map_err(db)?;
                let state = State::parse(&state).ok_or_else(|| {
                    LedgerError::Unavailable(format!("unknown reservation state {state:?}"))
                })?;
                events.push((stored_event(row, 1)?, state));
            }
            let cutoff = now.checked_sub_signed(chrono::Duration::days(HORIZON_DAYS));
            let deltas = slots::deltas(
                events.iter().map(|(e, state)| (e, None, *state)),
                &[tz],
                cutoff,
            )
            .map_err(LedgerError::Unavailable)?;
            upsert_slots(client, &deltas).await?;
            tracing::info!(
                zone = tz.name(),
                reservations = events.len(),
                "shared ledger counts spend in a new timezone"
            );
        }
        conn.commit_plain().await?;
        self.learn_zones(&[tz]);
        Ok(())
    }

    async fn decide_inner(
        &self,
        now: DateTime<Utc>,
        queries: &[CapQuery<'_>],
        decide: &mut Decide<'_>,
    ) -> Result<Reservation, LedgerError> {
        self.ensure_ready().await?;
        for query in queries {
            let tz = query.period.tz;
            if !self.known_zone(tz) {
                self.register_zone(tz, now).await?;
            }
        }
        let cutoff = now.checked_sub_signed(chrono::Duration::days(HORIZON_DAYS));
        let mut heads: Vec<Head> = queries.iter().map(Head::of_query).collect();
        heads.sort();
        heads.dedup();
        // The heads the decision will write, predicted so that they are
        // locked up front with the ones it reads (in one sorted pass)
        // rather than tried after it: the decision on zero spend reserves
        // what the real one reserves whenever that one forwards at all
        // (spend only makes caps stricter). A wrong guess costs a retry
        // (too few) or a wider lock (too many), never exactness.
        let mut extra: BTreeSet<i64> = BTreeSet::new();
        {
            let mut zero = crate::policy::caps::Totals::new();
            for query in queries {
                zero.insert(*query, Ok(crate::policy::caps::CapTotal::default()));
            }
            let predicted = decide(&zero);
            let zones: Vec<Tz> = self
                .zones
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect();
            if let Ok(deltas) = slots::deltas(
                predicted.iter().map(|e| (e, None, State::Reserved)),
                &zones,
                cutoff,
            ) {
                extra.extend(deltas.keys().map(|k| k.head.lock_key()));
            }
        }
        for _ in 0..ATTEMPTS {
            let mut conn = self.conn().await?;
            conn.begin_shared().await?;
            let zones = conn.zones().await?;
            if let Some(tz) = queries
                .iter()
                .map(|q| q.period.tz)
                .find(|tz| !zones.contains(tz))
            {
                // The cache was wrong (the database was replaced).
                conn.rollback().await;
                self.zones
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&tz);
                self.register_zone(tz, now).await?;
                continue;
            }
            self.learn_zones(&zones);
            let mut held: BTreeSet<i64> = heads.iter().map(Head::lock_key).collect();
            held.extend(&extra);
            conn.lock(&held).await?;
            let rows = conn.read_slots(&heads).await?;
            let totals = slots::totals(queries, &heads, &rows);
            let events = decide(&totals);
            if events.is_empty() {
                conn.commit_plain().await?;
                return Ok(Reservation::default());
            }
            let deltas = slots::deltas(
                events.iter().map(|e| (e, None, State::Reserved)),
                &zones,
                cutoff,
            )
            .map_err(LedgerError::Unavailable)?;
            let missing: Vec<i64> = deltas
                .keys()
                .map(|k| k.head.lock_key())
                .collect::<BTreeSet<_>>()
                .difference(&held)
                .copied()
                .collect();
            if !missing.is_empty() && !conn.try_lock(&missing).await? {
                conn.rollback().await;
                extra.extend(missing);
                continue;
            }
            let mut ids = Vec::with_capacity(events.len());
            for _ in &events {
                ids.push(reservation_id());
            }
            conn.insert_reservations(&ids, &events).await?;
            upsert_slots(conn.client()?, &deltas).await?;
            conn.commit_reservation(&ids).await?;
            return Ok(Reservation { ids });
        }
        Err(LedgerError::Unavailable(
            "the cap's counters stayed busy; try again".to_string(),
        ))
    }

    /// Moves the reservations `ids` to `to` (settled or released), taking
    /// their amounts out of (or across) the running sums. Idempotent: an
    /// id already there, or released, is left alone; releasing an id that
    /// does not exist writes a tombstone.
    async fn change(&self, ids: &[u64], to: State) -> Result<(), LedgerError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.ensure_ready().await?;
        let keys = db_ids(ids)?;
        let mut conn = self.conn().await?;
        // Without waiting for the WAL flush: a settle or a release lost
        // in a database crash leaves the amount counted (a settle moves
        // nothing in the totals; a lost release over-counts, never
        // under-counts), and the outbox retries what failed. A
        // reservation's commit always waits for it.
        conn.begin_shared_relaxed().await?;
        let zones = conn.zones().await?;
        let client = conn.client()?;
        if to == State::Released {
            exec(
                client,
                "INSERT INTO leash_reservations (instance, id, state)
                     SELECT $1, unnest($2::bigint[]), 'released' ON CONFLICT DO NOTHING",
                &[&self.instance, &keys],
            )
            .await
            .map_err(db)?;
        }
        let rows = rows(client,
                "SELECT id, state, at_ns, agent, vendor, operation, category, beneficiary, currency, amount::text
                 FROM leash_reservations WHERE instance = $1 AND id = ANY($2::bigint[])
                 ORDER BY id FOR UPDATE",
                &[&self.instance, &keys],
            )
            .await
            .map_err(db)?;
        let mut moves: Vec<(i64, SpendEvent, State)> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get(0).map_err(db)?;
            let state: String = row.try_get(1).map_err(db)?;
            let from = State::parse(&state).ok_or_else(|| {
                LedgerError::Unavailable(format!("unknown reservation state {state:?}"))
            })?;
            let moves_now = match (from, to) {
                (State::Released, _) => false,
                (State::Reserved, State::Settled) => true,
                (_, State::Released) => true,
                _ => false,
            };
            if moves_now {
                moves.push((id, stored_event(row, 2)?, from));
            }
        }
        if moves.is_empty() {
            conn.commit_plain().await?;
            return Ok(());
        }
        let deltas = slots::deltas(
            moves.iter().map(|(_, e, from)| (e, Some(*from), to)),
            &zones,
            None,
        )
        .map_err(LedgerError::Unavailable)?;
        let locks: BTreeSet<i64> = deltas.keys().map(|k| k.head.lock_key()).collect();
        conn.lock(&locks).await?;
        let moved: Vec<i64> = moves.iter().map(|(id, _, _)| *id).collect();
        let client = conn.client()?;
        exec(client,
                "UPDATE leash_reservations SET state = $3 WHERE instance = $1 AND id = ANY($2::bigint[])",
                &[&self.instance, &moved, &to.as_str()],
            )
            .await
            .map_err(db)?;
        update_slots(client, &deltas).await?;
        conn.commit_plain().await?;
        Ok(())
    }

    /// Records `ids` to be moved to `to` later (the database was away).
    fn queue(&self, ids: &[u64], to: State) {
        for id in ids {
            if let Err(error) = self.outbox.insert(id.to_be_bytes(), to.as_str().as_bytes()) {
                tracing::error!(%error, id, "cannot queue a spend-ledger change for later");
            }
        }
    }

    /// A `COMMIT` went unanswered: the reservation may or may not exist.
    /// Its request is refused, so it is released when the database is back.
    fn doubt(&self, ids: &[u64]) {
        tracing::warn!(?ids, "a reservation's commit outcome is unknown; it will be released (or tombstoned) when the database answers");
        self.queue(ids, State::Released);
    }

    /// Applies the queued settles and releases. Returns how many are left.
    async fn drain(&self) -> Result<usize, LedgerError> {
        let mut by_state: BTreeMap<&'static str, Vec<(u64, sled::IVec)>> = BTreeMap::new();
        for item in self.outbox.iter() {
            let (key, value) = item.map_err(StoreError::from)?;
            let Ok(bytes) = <[u8; 8]>::try_from(key.as_ref()) else {
                continue;
            };
            let id = u64::from_be_bytes(bytes);
            let state = match value.as_ref() {
                b"settled" => State::Settled,
                _ => State::Released,
            };
            by_state
                .entry(state.as_str())
                .or_default()
                .push((id, value));
        }
        for (state, items) in by_state {
            let to = State::parse(state).unwrap_or(State::Released);
            for chunk in items.chunks(256) {
                let ids: Vec<u64> = chunk.iter().map(|(id, _)| *id).collect();
                self.timed(self.change(&ids, to)).await?;
                for (id, value) in chunk {
                    // Only if no newer change was queued meanwhile.
                    let _ = self.outbox.compare_and_swap(
                        id.to_be_bytes(),
                        Some(value.clone()),
                        None as Option<&[u8]>,
                    );
                }
                tracing::info!(
                    count = ids.len(),
                    to = state,
                    "queued spend-ledger changes applied"
                );
            }
        }
        Ok(self.outbox.len())
    }

    /// Deletes windows no cap can ask about any more, and reservations too
    /// old to be counted into a new zone's windows.
    async fn prune(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let Some(slot_cutoff) = now.checked_sub_signed(chrono::Duration::days(HORIZON_DAYS)) else {
            return Ok(());
        };
        let Some(row_cutoff) = now.checked_sub_signed(chrono::Duration::days(READ_BACK_DAYS))
        else {
            return Ok(());
        };
        let slot_cutoff = slots::nanos(slot_cutoff).map_err(LedgerError::Unavailable)?;
        let row_cutoff = slots::nanos(row_cutoff).map_err(LedgerError::Unavailable)?;
        let conn = self.conn().await?;
        let client = conn.client()?;
        exec(
            client,
            "DELETE FROM leash_slots WHERE ends_ns <= $1",
            &[&slot_cutoff],
        )
        .await
        .map_err(db)?;
        exec(client,
                "DELETE FROM leash_reservations WHERE at_ns < $1 OR (at_ns IS NULL AND created < now() - interval '1 day')",
                &[&row_cutoff],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// What each query counts, reserved (awaiting the vendor) and settled
    /// apart, read without locks: for tools and `leash spend`.
    pub async fn split_totals(
        &self,
        queries: &[CapQuery<'_>],
    ) -> Result<Vec<Result<slots::Split, String>>, LedgerError> {
        self.timed(async {
            self.ensure_ready().await?;
            let mut heads: Vec<Head> = queries.iter().map(Head::of_query).collect();
            heads.sort();
            heads.dedup();
            let conn = self.conn().await?;
            let rows = read_slots(conn.client()?, &heads).await?;
            Ok(slots::split_totals(queries, &heads, &rows))
        })
        .await
    }
}

/// A pooled client: its statements are prepared once per connection
/// (`prepare_cached`), so each query is one round trip.
type Pg = deadpool_postgres::ClientWrapper;

async fn exec(
    c: &Pg,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

async fn rows(
    c: &Pg,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

async fn one(
    c: &Pg,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_one(&statement, params).await
}

/// A new reservation id: 63 random bits. Not the data_dir's counter: a
/// replica whose data_dir is fresh (an emptyDir) but whose instance id is
/// the same (a StatefulSet's host name) would count again from 0 and meet
/// its own old rows. A collision (2^-63 per pair) fails that one
/// transaction on the primary key: refused, never double-counted.
fn reservation_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 & (i64::MAX as u64)
}

/// The zone list's lock key.
fn zones_key() -> i64 {
    slots::named_key("leash-zones")
}

fn db_ids(ids: &[u64]) -> Result<Vec<i64>, LedgerError> {
    ids.iter()
        .map(|id| {
            i64::try_from(*id)
                .map_err(|_| LedgerError::Unavailable(format!("reservation id {id} is too large")))
        })
        .collect()
}

/// A reservation row's spend, from column `at` on (at_ns, agent, vendor,
/// operation, category, beneficiary, currency, amount).
fn stored_event(row: &tokio_postgres::Row, at: usize) -> Result<SpendEvent, LedgerError> {
    let text = |i: usize| -> Result<String, LedgerError> {
        row.try_get::<_, Option<String>>(i)
            .map_err(db)?
            .ok_or_else(|| LedgerError::Unavailable("a reservation row lacks its spend".into()))
    };
    let at_ns: Option<i64> = row.try_get(at).map_err(db)?;
    let at_ns =
        at_ns.ok_or_else(|| LedgerError::Unavailable("a reservation row lacks its time".into()))?;
    let amount = slots::money(&text(at + 7)?, &text(at + 6)?).map_err(LedgerError::Unavailable)?;
    Ok(SpendEvent {
        at: DateTime::from_timestamp_nanos(at_ns),
        agent: text(at + 1)?,
        vendor: text(at + 2)?,
        operation: text(at + 3)?,
        category: text(at + 4)?,
        beneficiary: row.try_get(at + 5).map_err(db)?,
        amount,
    })
}

async fn read_slots(client: &Pg, heads: &[Head]) -> Result<Vec<SlotRow>, LedgerError> {
    let tz: Vec<&str> = heads.iter().map(|h| h.tz.as_str()).collect();
    let window: Vec<&str> = heads.iter().map(|h| h.window).collect();
    let first: Vec<&str> = heads.iter().map(|h| h.first.as_str()).collect();
    let kind: Vec<i16> = heads.iter().map(|h| h.scope_kind).collect();
    let value: Vec<&str> = heads.iter().map(|h| h.scope_value.as_str()).collect();
    let rows = rows(client,
            "SELECT h.i, s.vendor, s.operation, s.category, s.currency,
                    s.reserved_count, s.reserved_sum::text, s.settled_count, s.settled_sum::text, s.latest_ns
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[])
                  WITH ORDINALITY AS h(tz, win, first, kind, value, i)
             JOIN leash_slots s ON s.tz = h.tz AND s.win = h.win AND s.first = h.first
                  AND s.scope_kind = h.kind AND s.scope_value = h.value
             WHERE s.reserved_count > 0 OR s.settled_count > 0",
            &[&tz, &window, &first, &kind, &value],
        )
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let i: i64 = row.try_get(0).map_err(db)?;
        out.push(SlotRow {
            head: usize::try_from(i - 1).unwrap_or(usize::MAX),
            vendor: row.try_get(1).map_err(db)?,
            operation: row.try_get(2).map_err(db)?,
            category: row.try_get(3).map_err(db)?,
            currency: row.try_get(4).map_err(db)?,
            reserved_count: row.try_get(5).map_err(db)?,
            reserved_sum: row.try_get(6).map_err(db)?,
            settled_count: row.try_get(7).map_err(db)?,
            settled_sum: row.try_get(8).map_err(db)?,
            latest_ns: row.try_get(9).map_err(db)?,
        });
    }
    Ok(out)
}

/// The columns of `deltas`, as arrays for `unnest`.
struct Columns<'d> {
    tz: Vec<&'d str>,
    window: Vec<&'d str>,
    first: Vec<&'d str>,
    kind: Vec<i16>,
    value: Vec<&'d str>,
    vendor: Vec<&'d str>,
    operation: Vec<&'d str>,
    category: Vec<&'d str>,
    currency: Vec<&'d str>,
    ends: Vec<i64>,
    rc: Vec<i64>,
    rs: Vec<String>,
    sc: Vec<i64>,
    ss: Vec<String>,
    latest: Vec<i64>,
}

impl<'d> Columns<'d> {
    fn of(deltas: &'d BTreeMap<SlotKey, slots::Delta>) -> Self {
        let mut c = Columns {
            tz: vec![],
            window: vec![],
            first: vec![],
            kind: vec![],
            value: vec![],
            vendor: vec![],
            operation: vec![],
            category: vec![],
            currency: vec![],
            ends: vec![],
            rc: vec![],
            rs: vec![],
            sc: vec![],
            ss: vec![],
            latest: vec![],
        };
        for (k, d) in deltas {
            c.tz.push(&k.head.tz);
            c.window.push(k.head.window);
            c.first.push(&k.head.first);
            c.kind.push(k.head.scope_kind);
            c.value.push(&k.head.scope_value);
            c.vendor.push(&k.vendor);
            c.operation.push(&k.operation);
            c.category.push(&k.category);
            c.currency.push(&k.currency);
            c.ends.push(d.ends_ns);
            c.rc.push(d.reserved_count);
            c.rs.push(d.reserved_sum.to_string());
            c.sc.push(d.settled_count);
            c.ss.push(d.settled_sum.to_string());
            c.latest.push(d.latest_ns);
        }
        c
    }

    /// The parameters `$1..$15` of [`UNNEST_SLOTS`], in its order.
    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 15] {
        [
            &self.tz,
            &self.window,
            &self.first,
            &self.kind,
            &self.value,
            &self.vendor,
            &self.operation,
            &self.category,
            &self.currency,
            &self.ends,
            &self.rc,
            &self.rs,
            &self.sc,
            &self.ss,
            &self.latest,
        ]
    }
}

const UNNEST_SLOTS: &str = "unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::int8[], $12::text[], $13::int8[], $14::text[], $15::int8[])
     AS d(tz, win, first, kind, value, vendor, operation, category, currency, ends, rc, rs, sc, ss, latest)";

async fn upsert_slots(
    client: &Pg,
    deltas: &BTreeMap<SlotKey, slots::Delta>,
) -> Result<(), LedgerError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let c = Columns::of(deltas);
    let sql = format!(
        "INSERT INTO leash_slots (tz, win, first, scope_kind, scope_value, vendor, operation, category, currency,
                                  ends_ns, reserved_count, reserved_sum, settled_count, settled_sum, latest_ns)
         SELECT tz, win, first, kind, value, vendor, operation, category, currency,
                ends, rc, rs::numeric, sc, ss::numeric, latest FROM {UNNEST_SLOTS}
         ON CONFLICT (tz, win, first, scope_kind, scope_value, vendor, operation, category, currency) DO UPDATE SET
           reserved_count = leash_slots.reserved_count + EXCLUDED.reserved_count,
           reserved_sum = leash_slots.reserved_sum + EXCLUDED.reserved_sum,
           settled_count = leash_slots.settled_count + EXCLUDED.settled_count,
           settled_sum = leash_slots.settled_sum + EXCLUDED.settled_sum,
           latest_ns = GREATEST(leash_slots.latest_ns, EXCLUDED.latest_ns)"
    );
    exec(client, &sql, &c.params()).await.map_err(db)?;
    Ok(())
}

/// Applies deltas to rows that exist (a settle or a release: a window
/// never written, or pruned, has nothing to take out of).
async fn update_slots(
    client: &Pg,
    deltas: &BTreeMap<SlotKey, slots::Delta>,
) -> Result<(), LedgerError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let c = Columns::of(deltas);
    let sql = format!(
        "UPDATE leash_slots s SET
           reserved_count = s.reserved_count + d.rc,
           reserved_sum = s.reserved_sum + d.rs::numeric,
           settled_count = s.settled_count + d.sc,
           settled_sum = s.settled_sum + d.ss::numeric
         FROM {UNNEST_SLOTS}
         WHERE s.tz = d.tz AND s.win = d.win AND s.first = d.first AND s.scope_kind = d.kind
           AND s.scope_value = d.value AND s.vendor = d.vendor AND s.operation = d.operation
           AND s.category = d.category AND s.currency = d.currency"
    );
    exec(client, &sql, &c.params()).await.map_err(db)?;
    Ok(())
}

/// A pooled connection in use. Dropped mid-transaction (an error, a
/// timeout) it is closed instead of returned to the pool, so the server
/// rolls the transaction back and nobody else ever runs inside it; dropped
/// with a `COMMIT` unanswered, its reservation ids are doubtful.
struct Conn<'l> {
    client: Option<Object>,
    ledger: &'l PostgresLedger,
    in_tx: bool,
    committing: Option<Vec<u64>>,
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(ids) = self.committing.take() {
            self.ledger.doubt(&ids);
        }
        if self.in_tx {
            if let Some(client) = self.client.take() {
                drop(Object::take(client));
            }
        }
    }
}

impl Conn<'_> {
    fn client(&self) -> Result<&Pg, LedgerError> {
        self.client
            .as_deref()
            .ok_or_else(|| LedgerError::Unavailable("connection closed".into()))
    }

    async fn begin(&mut self) -> Result<(), LedgerError> {
        self.in_tx = true;
        self.client()?.batch_execute("BEGIN").await.map_err(db)
    }

    /// `BEGIN` and the zone list's lock, shared.
    async fn begin_shared(&mut self) -> Result<(), LedgerError> {
        self.in_tx = true;
        // One round trip: simple-query statements run one after another.
        self.client()?
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({})",
                zones_key()
            ))
            .await
            .map_err(db)
    }

    /// [`Conn::begin_shared`] for a transaction whose commit need not
    /// wait for the WAL flush.
    async fn begin_shared_relaxed(&mut self) -> Result<(), LedgerError> {
        self.in_tx = true;
        self.client()?
            .batch_execute(&format!(
                "BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_advisory_xact_lock_shared({})",
                zones_key()
            ))
            .await
            .map_err(db)
    }

    async fn zones(&self) -> Result<Vec<Tz>, LedgerError> {
        let rows = rows(self.client()?, "SELECT tz FROM leash_zones", &[])
            .await
            .map_err(db)?;
        let mut zones = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0).map_err(db)?;
            // A zone this build's tz database does not know is skipped: it
            // was added by a newer leash; this one cannot count in it, and
            // no cap of this one asks about it.
            if let Ok(tz) = name.parse::<Tz>() {
                zones.push(tz);
            }
        }
        Ok(zones)
    }

    /// Takes the advisory locks of `keys`, waiting, in ascending order
    /// (`unnest` yields the sorted array in order).
    async fn lock(&self, keys: &BTreeSet<i64>) -> Result<(), LedgerError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<i64> = keys.iter().copied().collect();
        exec(
            self.client()?,
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k",
            &[&keys],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Tries the locks of `keys` without waiting: whether all were taken.
    async fn try_lock(&self, keys: &[i64]) -> Result<bool, LedgerError> {
        let row = one(
            self.client()?,
            "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k",
            &[&keys],
        )
        .await
        .map_err(db)?;
        Ok(row
            .try_get::<_, Option<bool>>(0)
            .map_err(db)?
            .unwrap_or(true))
    }

    async fn read_slots(&self, heads: &[Head]) -> Result<Vec<SlotRow>, LedgerError> {
        read_slots(self.client()?, heads).await
    }

    async fn insert_reservations(
        &self,
        ids: &[u64],
        events: &[SpendEvent],
    ) -> Result<(), LedgerError> {
        let keys = db_ids(ids)?;
        let mut at = Vec::with_capacity(events.len());
        for e in events {
            at.push(slots::nanos(e.at).map_err(LedgerError::Unavailable)?);
        }
        let agent: Vec<&str> = events.iter().map(|e| e.agent.as_str()).collect();
        let vendor: Vec<&str> = events.iter().map(|e| e.vendor.as_str()).collect();
        let operation: Vec<&str> = events.iter().map(|e| e.operation.as_str()).collect();
        let category: Vec<&str> = events.iter().map(|e| e.category.as_str()).collect();
        let beneficiary: Vec<Option<&str>> =
            events.iter().map(|e| e.beneficiary.as_deref()).collect();
        let currency: Vec<String> = events
            .iter()
            .map(|e| e.amount.currency.to_string())
            .collect();
        let amount: Vec<String> = events.iter().map(|e| e.amount.amount.to_string()).collect();
        // A plain INSERT: an id that exists (a tombstone left by the
        // reconciliation of a doubtful commit, or another instance with
        // the same instance id) fails the transaction.
        exec(self.client()?,
                "INSERT INTO leash_reservations
                   (instance, id, state, at_ns, agent, vendor, operation, category, beneficiary, currency, amount)
                 SELECT $1, id, 'reserved', at, agent, vendor, operation, category, beneficiary, currency, amount::numeric
                 FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
                      AS r(id, at, agent, vendor, operation, category, beneficiary, currency, amount)",
                &[
                    &self.ledger.instance,
                    &keys,
                    &at,
                    &agent,
                    &vendor,
                    &operation,
                    &category,
                    &beneficiary,
                    &currency,
                    &amount,
                ],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                    LedgerError::Unavailable(format!(
                        "reservation id already in the shared ledger for instance {:?}: does another leash use the same instance_id?",
                        self.ledger.instance
                    ))
                } else {
                    db(e)
                }
            })?;
        Ok(())
    }

    async fn commit_plain(&mut self) -> Result<(), LedgerError> {
        self.client()?.batch_execute("COMMIT").await.map_err(db)?;
        self.in_tx = false;
        Ok(())
    }

    /// Commits a reservation. An answer that is an error from the server
    /// means it was not committed; no answer means nobody knows, and the
    /// ids are doubted (released on reconnect).
    async fn commit_reservation(&mut self, ids: &[u64]) -> Result<(), LedgerError> {
        self.committing = Some(ids.to_vec());
        let result = self.client()?.batch_execute("COMMIT").await;
        match result {
            Ok(()) => {
                self.committing = None;
                self.in_tx = false;
                Ok(())
            }
            Err(e) if e.as_db_error().is_some() => {
                self.committing = None;
                Err(db(e))
            }
            Err(e) => Err(unavailable("the commit's outcome is unknown", e)),
        }
    }

    async fn rollback(&mut self) {
        let rolled_back = match self.client() {
            Ok(c) => c.batch_execute("ROLLBACK").await.is_ok(),
            Err(_) => false,
        };
        if rolled_back {
            self.in_tx = false;
        }
    }
}

impl SpendLedger for PostgresLedger {
    fn decide_and_reserve<'a>(
        &'a self,
        now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
        decide: &'a mut Decide<'_>,
    ) -> LedgerFuture<'a, Reservation> {
        Box::pin(self.timed(self.decide_inner(now, queries, decide)))
    }

    fn settle<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()> {
        Box::pin(async move {
            let result = self
                .timed(self.change(&reservation.ids, State::Settled))
                .await;
            if result.is_err() {
                self.queue(&reservation.ids, State::Settled);
            }
            result
        })
    }

    fn release<'a>(&'a self, reservation: &'a Reservation) -> LedgerFuture<'a, ()> {
        Box::pin(async move {
            let result = self
                .timed(self.change(&reservation.ids, State::Released))
                .await;
            if result.is_err() {
                self.queue(&reservation.ids, State::Released);
            }
            result
        })
    }

    fn usage<'a>(
        &'a self,
        _now: DateTime<Utc>,
        queries: &'a [CapQuery<'a>],
    ) -> LedgerFuture<'a, Vec<Result<Usage, String>>> {
        Box::pin(async move {
            let split = self.split_totals(queries).await?;
            Ok(split
                .into_iter()
                .map(|answer| {
                    answer.map(|split| {
                        let mut counted = split.settled;
                        counted.merge(&split.reserved);
                        Usage {
                            counted,
                            reserved: split.reserved,
                        }
                    })
                })
                .collect())
        })
    }

    fn unavailable(&self) -> Option<String> {
        self.unavailable_reason()
    }
}

/// Probes the database while it is away, drains the outbox, prunes.
async fn background(ledger: Weak<PostgresLedger>) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(ledger) = ledger.upgrade() else {
            return;
        };
        let away = ledger.unavailable_reason().is_some();
        if away {
            let probe = ledger
                .timed(async {
                    ledger.migrated.store(false, Ordering::SeqCst);
                    ledger.ensure_ready().await?;
                    let conn = ledger.conn().await?;
                    conn.client()?.batch_execute("SELECT 1").await.map_err(db)?;
                    Ok(())
                })
                .await;
            if probe.is_err() {
                continue;
            }
        }
        if !ledger.outbox.is_empty() {
            if let Err(error) = ledger.drain().await {
                tracing::warn!(%error, "queued spend-ledger changes wait for the database");
                continue;
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            if let Err(error) = ledger.timed(ledger.prune(Utc::now())).await {
                tracing::warn!(%error, "could not prune the shared ledger");
            }
        }
    }
}
