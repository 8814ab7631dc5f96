//! The shared ledger's schema, created and migrated by leash on start.
//!
//! Migrations are numbered and applied in order, each once, in one
//! transaction under an advisory lock, so that several leash starting at
//! once migrate the database once. `leash_schema` records which versions
//! were applied. A database migrated by a newer leash (a version this one
//! does not know) is refused rather than written with an older idea of the
//! tables.

use super::{db, exec, one, slots, Pg};
use crate::spend::LedgerError;

/// `(version, SQL)`, in order. Never edit a migration that shipped: add one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE leash_zones (
    tz text PRIMARY KEY
);

-- One row per reserved amount. `id` is the reservation id the instance
-- gave it (unique per instance). A row with state 'released' and no spend
-- is a tombstone: a release of an id that was never committed, which makes
-- a late commit of that id fail.
CREATE TABLE leash_reservations (
    instance    text   NOT NULL,
    id          bigint NOT NULL,
    state       text   NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
    at_ns       bigint,
    agent       text,
    vendor      text,
    operation   text,
    category    text,
    beneficiary text,
    currency    text,
    amount      numeric,
    created     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, id)
);
CREATE INDEX leash_reservations_active ON leash_reservations (at_ns) WHERE state <> 'released';

-- The running sums: one row per cap window (tz, win, first) x scope value
-- x (vendor, operation, category, currency). Reserved (awaiting the
-- vendor) and settled (accepted) are kept apart; a cap counts both.
CREATE TABLE leash_slots (
    tz             text     NOT NULL,
    win            text     NOT NULL,
    first          text     NOT NULL,
    scope_kind     smallint NOT NULL,
    scope_value    text     NOT NULL,
    vendor         text     NOT NULL,
    operation      text     NOT NULL,
    category       text     NOT NULL,
    currency       text     NOT NULL,
    ends_ns        bigint   NOT NULL,
    reserved_count bigint   NOT NULL,
    reserved_sum   numeric  NOT NULL,
    settled_count  bigint   NOT NULL,
    settled_sum    numeric  NOT NULL,
    latest_ns      bigint   NOT NULL,
    PRIMARY KEY (tz, win, first, scope_kind, scope_value, vendor, operation, category, currency)
);
CREATE INDEX leash_slots_ends ON leash_slots (ends_ns);
"#,
)];

/// The newest schema version this leash knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies the migrations the database lacks. Runs inside the caller's
/// transaction.
pub async fn migrate(client: &Pg) -> Result<(), LedgerError> {
    exec(
        client,
        "SELECT pg_advisory_xact_lock($1)",
        &[&slots::named_key("leash-migrate")],
    )
    .await
    .map_err(db)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS leash_schema (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(db)?;
    let row = one(client, "SELECT max(version) FROM leash_schema", &[])
        .await
        .map_err(db)?;
    let current: Option<i32> = row.try_get(0).map_err(db)?;
    let current = current.unwrap_or(0);
    if current > latest() {
        return Err(LedgerError::Unavailable(format!(
            "the shared ledger's schema is version {current}, newer than this leash knows ({}): upgrade this leash",
            latest()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        client.batch_execute(sql).await.map_err(db)?;
        exec(
            client,
            "INSERT INTO leash_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
        tracing::info!(version, "shared ledger schema migrated");
    }
    Ok(())
}
