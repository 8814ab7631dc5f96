//! The spend ledgers a test can run on: the embedded one (sled) and the
//! shared one on the test PostgreSQL server that `.ci/run` starts
//! (`LEASH_TEST_PG_URL`). Cap tests run their body on both.
//!
//! Outside CI, a test on PostgreSQL is skipped, with the reason printed,
//! when `LEASH_TEST_PG_URL` is not set; in CI (`CI` set) it fails instead.

use std::collections::BTreeMap;

use leash::config::{Config, LedgerKind};

/// The variable leash reads the URL from in these tests.
pub const URL_ENV: &str = "LEASH_PG_URL";

/// Which ledger a test's leash keeps its caps in.
#[derive(Debug, Clone)]
pub enum TestLedger {
    Sled,
    /// A database of its own on the test server.
    Postgres {
        url: String,
    },
}

/// The test server's URL, or `None` (after printing why) when there is
/// none outside CI. Panics in CI: a cap test that cannot run there must
/// fail, not pass silently.
pub fn server_url() -> Option<String> {
    match std::env::var("LEASH_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("LEASH_TEST_PG_URL is not set in CI: .ci/run starts a PostgreSQL server and sets it")
        }
        _ => {
            eprintln!("skipped on PostgreSQL: LEASH_TEST_PG_URL is not set (.ci/run starts a throwaway server and sets it)");
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A new, empty database on the test server: its URL.
pub async fn fresh_database() -> Option<String> {
    let url = server_url()?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at LEASH_TEST_PG_URL: {e}"));
    tokio::spawn(connection);
    let name = format!("leash_t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(with_database(&url, &name))
}

impl TestLedger {
    /// A PostgreSQL ledger on a fresh database, or `None` to skip.
    pub async fn postgres() -> Option<TestLedger> {
        Some(TestLedger::Postgres {
            url: fresh_database().await?,
        })
    }

    /// Points `config` at this ledger.
    pub fn apply(&self, config: &mut Config) {
        if let TestLedger::Postgres { .. } = self {
            config.ledger.kind = LedgerKind::Postgres;
            config.ledger.url_env = URL_ENV.to_string();
            // The test machine is shared and the build unoptimised: 256
            // decisions queued on one cap can wait longer than the 2 s
            // default, and a 503 would fail a test about exactness.
            config.ledger.timeout = std::time::Duration::from_secs(30);
        }
    }

    /// The environment leash reads the URL from.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let TestLedger::Postgres { url } = self {
            env.insert(URL_ENV.to_string(), url.clone());
        }
        env
    }
}

/// Runs a cap test's body on both ledgers: `mod NAME { sled, postgres }`.
/// The body is `async fn NAME(ledger: TestLedger)` beside the macro call.
#[macro_export]
macro_rules! on_both_ledgers {
    ($name:ident) => {
        mod $name {
            use super::common::pg::TestLedger;

            #[tokio::test(flavor = "multi_thread")]
            async fn sled() {
                super::$name(TestLedger::Sled).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(ledger) = TestLedger::postgres().await {
                    super::$name(ledger).await
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@127.0.0.1:5/postgres", "x"),
            "postgres://u@127.0.0.1:5/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
