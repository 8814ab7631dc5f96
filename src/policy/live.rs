//! The policy set a running leash decides with, and its hot reload
//! (SPEC §5.5).
//!
//! Policies change while leash runs (ops teams ship them from git). A valid
//! new set is swapped in atomically: a decision uses either the old set or the
//! new one, never a mix. An invalid set is refused and the old one stays —
//! a typo in a policy file must never leave leash without a policy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use super::load::load_policy_set;
use super::model::PolicySet;
use crate::config::Config;
use crate::yaml::YamlError;

/// What a reload attempt did.
#[derive(Debug)]
pub enum Reload {
    /// No file changed.
    Unchanged,
    /// A new valid set is in use.
    Swapped(Arc<PolicySet>),
    /// The files changed but do not load; the previous set stays.
    Refused(Vec<YamlError>),
}

/// The current policy set, swappable.
pub struct LivePolicies {
    dir: PathBuf,
    config: Config,
    current: RwLock<Arc<PolicySet>>,
    stamp: Mutex<Vec<FileStamp>>,
}

/// Enough of a file's metadata to notice that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl LivePolicies {
    /// Loads the set in `dir`. At start-up an invalid set is an error: leash
    /// does not start without a policy it can read.
    pub fn load(dir: &Path, config: &Config) -> Result<Self, Vec<YamlError>> {
        let stamp = stamp(dir);
        let set = load_policy_set(dir, config)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config: config.clone(),
            current: RwLock::new(Arc::new(set)),
            stamp: Mutex::new(stamp),
        })
    }

    /// The set to decide with now.
    pub fn current(&self) -> Arc<PolicySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reloads when any file under the directory changed.
    pub fn reload_if_changed(&self) -> Reload {
        let now = stamp(&self.dir);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if *last == now {
                return Reload::Unchanged;
            }
            *last = now;
        }
        match load_policy_set(&self.dir, &self.config) {
            Ok(set) => {
                let set = Arc::new(set);
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                if current.hash == set.hash {
                    return Reload::Unchanged;
                }
                *current = Arc::clone(&set);
                Reload::Swapped(set)
            }
            Err(errors) => Reload::Refused(errors),
        }
    }

    /// Polls the directory every `interval` and reloads, logging the result.
    /// Polling (rather than inotify) works the same on every filesystem,
    /// including bind mounts and network shares where policies often live.
    /// `on_change` hears of every swap and every refused reload (to record
    /// them in the audit chain).
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        on_change: impl Fn(&Reload) + Send + 'static,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let this = Arc::clone(&self);
            let outcome = match tokio::task::spawn_blocking(move || this.reload_if_changed()).await
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::error!(%error, "policy reload task failed");
                    continue;
                }
            };
            match &outcome {
                Reload::Unchanged => continue,
                Reload::Swapped(set) => {
                    tracing::info!(hash = %set.hash, files = ?set.files, "policies reloaded");
                }
                Reload::Refused(errors) => {
                    for error in errors {
                        tracing::error!(%error, "policy reload refused; the previous policies stay in force");
                    }
                }
            }
            on_change(&outcome);
        }
    }
}

/// Stamps of every file under `dir` (recursively), sorted by path.
fn stamp(dir: &Path) -> Vec<FileStamp> {
    let mut stamps = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(path);
            } else {
                stamps.push(FileStamp {
                    path,
                    len: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
    }
    stamps.sort_by(|a, b| a.path.cmp(&b.path));
    stamps
}
