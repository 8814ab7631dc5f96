//! `ledger:` and `instance_id` in `leash.yaml` (SPEC §11): where the spend
//! counters of caps live, and the name this leash goes by among the
//! instances that share them.
//!
//! The PostgreSQL URL is never written here: it holds a password, so the
//! file names the environment variable that holds it (`url_env`), like the
//! other secrets of `leash.yaml`.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{env_name, nonzero_duration, required};

/// Where caps' counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// Embedded in `data_dir` (sled): one process.
    #[default]
    Sled,
    /// One PostgreSQL database shared by every leash pointed at it.
    Postgres,
}

/// The `ledger:` key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    pub kind: LedgerKind,
    /// The environment variable holding the PostgreSQL URL
    /// (`postgres://user:password@host:5432/db`). Read at start; the URL
    /// is never logged.
    #[serde(deserialize_with = "env_var")]
    pub url_env: String,
    /// Connections kept open to the database.
    pub pool: NonZeroUsize,
    /// How long one ledger operation (a connection from the pool and its
    /// transaction) may take before the request is refused with
    /// `leash_ledger_unavailable`.
    #[serde(deserialize_with = "nonzero_duration")]
    pub timeout: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            kind: LedgerKind::Sled,
            url_env: "LEASH_PG_URL".to_string(),
            pool: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            timeout: Duration::from_secs(2),
        }
    }
}

/// The name of the variable, never its value: a URL written here by
/// mistake is refused without being echoed (it holds a password).
fn env_var<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    required(d, "an environment variable name", |s| {
        if s.contains("://") || s.contains('@') {
            Err("write the name of the environment variable that holds the PostgreSQL URL (like LEASH_PG_URL), not the URL itself: it holds a password".to_string())
        } else {
            env_name(s)
        }
    })
}

/// `instance_id`: letters, digits, `.`, `_`, `-`, at most 128 characters
/// (it is a column in the shared database and a member of audit entries).
pub(super) fn instance_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Id(String);
    impl<'de> Deserialize<'de> for Id {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            required(d, "an instance id", parse_instance_id).map(Id)
        }
    }
    Ok(Option::<Id>::deserialize(d)?.map(|i| i.0))
}

fn parse_instance_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an instance id: letters, digits, `.`, `_` and `-`, at most 128 characters"
        ))
    }
}

/// The instance id when `instance_id` is not written: the host name and
/// the first 8 hex digits of SHA-256 of the absolute `data_dir`, so two
/// leash on one host (two data dirs) differ, and one leash keeps its id
/// across restarts.
pub fn default_instance_id(data_dir: &Path) -> String {
    let host = host_name();
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hash = hex::encode(digest.get(..4).unwrap_or_default());
    format!("{host}-{hash}")
}

/// The host name, reduced to the characters an instance id allows.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(100)
        .collect();
    if clean.is_empty() {
        "leash".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use super::*;

    fn config(text: &str) -> Config {
        match Config::parse(Path::new("leash.yaml"), text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn fails(text: &str) -> String {
        match Config::parse(Path::new("leash.yaml"), text) {
            Err(ConfigError::Yaml(e)) => e.to_string(),
            other => panic!("expected an error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_spec_example_and_defaults() {
        let c = config(
            "ledger: { kind: postgres, url_env: SHARED_PG, pool: 4, timeout: 500ms }\ninstance_id: pod-7.eu_west\n",
        );
        assert_eq!(c.ledger.kind, LedgerKind::Postgres);
        assert_eq!(c.ledger.url_env, "SHARED_PG");
        assert_eq!(c.ledger.pool.get(), 4);
        assert_eq!(c.ledger.timeout, Duration::from_millis(500));
        assert_eq!(c.instance_id(), "pod-7.eu_west");

        let d = Config::default();
        assert_eq!(d.ledger, LedgerConfig::default());
        assert_eq!(d.ledger.kind, LedgerKind::Sled);
        assert_eq!(d.ledger.url_env, "LEASH_PG_URL");
        assert_eq!(d.ledger.pool.get(), 8);
        assert_eq!(d.ledger.timeout, Duration::from_secs(2));
    }

    #[test]
    fn the_default_instance_id_is_stable_and_differs_per_data_dir() {
        let a = default_instance_id(Path::new("/var/lib/leash/a"));
        assert_eq!(a, default_instance_id(Path::new("/var/lib/leash/a")));
        assert_ne!(a, default_instance_id(Path::new("/var/lib/leash/b")));
        assert!(parse_instance_id(&a).is_ok(), "{a}");
    }

    /// Every mistake names the place it is written.
    #[test]
    fn mistakes_are_placed() {
        let cases = [
            ("ledger:\n  kind: redis\n", "leash.yaml:2:", "redis"),
            (
                "ledger:\n  url_env: postgres://u:p@h/db\n",
                "leash.yaml:2:",
                "environment variable",
            ),
            ("ledger:\n  pool: 0\n", "leash.yaml:2:", "pool"),
            (
                "ledger:\n  timeout: 0s\n",
                "leash.yaml:2:",
                "longer than 0s",
            ),
            ("ledger:\n  url: x\n", "leash.yaml:2:", "url"),
            ("instance_id: \"a b\"\n", "leash.yaml:1:", "instance id"),
            ("instance_id: \"\"\n", "leash.yaml:1:", "no value"),
        ];
        for (text, place, says) in cases {
            let e = fails(text);
            assert!(e.starts_with(place) && e.contains(says), "{text:?}: {e}");
        }
    }
}
