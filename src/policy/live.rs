//! The policy set a running leash decides with, and its hot reload
//! (SPEC §5.5).
//!
//! Policies change while leash runs (ops teams ship them from git). A valid
//! new set is swapped in atomically: a decision uses either the old set or the
//! new one, never a mix. An invalid set is refused and the old one stays —
//! a typo in a policy file must never leave leash without a policy.
//!
//! Two more guards, because a reload is also a way to *lose* a policy:
//!
//! - **Settling.** An editor or `git checkout` writes files in several
//!   steps, and a half-written file can be valid YAML that means something
//!   else (its REJECT rules not yet written). A change is loaded only once
//!   the directory — names, sizes, times and contents — is the same across
//!   two consecutive polls.
//! - **No stack dropped.** A reload whose set has no stack for an agent
//!   listed under `agents:` that the set in force has is refused: an
//!   agent's policy disappearing is never the intended way to change it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::load::load_policy_set;
use super::model::{AgentSelector, PolicySet};
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
    /// The files load, but the new set drops the stack of agents listed
    /// under `agents:`; the previous set stays.
    DropsAgents(Vec<String>),
    /// The files are still changing; nothing is loaded until they stop.
    Settling,
}

/// The current policy set, swappable.
pub struct LivePolicies {
    dir: PathBuf,
    config: Config,
    current: RwLock<Arc<PolicySet>>,
    stamps: Mutex<Stamps>,
}

/// What the directory looked like when last loaded, and the change seen at
/// the previous poll, if any.
#[derive(Debug, Default)]
struct Stamps {
    loaded: Vec<FileStamp>,
    seen: Option<Vec<FileStamp>>,
}

/// Enough of a file to notice that it changed: its metadata and a digest of
/// its contents (a rewrite within one timestamp tick with the same length
/// still differs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    digest: Option<[u8; 32]>,
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
            stamps: Mutex::new(Stamps {
                loaded: stamp,
                seen: None,
            }),
        })
    }

    /// The set to decide with now.
    pub fn current(&self) -> Arc<PolicySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reloads when the directory changed and has stayed the same since the
    /// previous call (see the module docs: a change is loaded only once it
    /// has settled).
    pub fn reload_if_changed(&self) -> Reload {
        let now = stamp(&self.dir);
        {
            let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
            if stamps.loaded == now {
                stamps.seen = None;
                return Reload::Unchanged;
            }
            if stamps.seen.as_ref() != Some(&now) {
                stamps.seen = Some(now);
                return Reload::Settling;
            }
            stamps.seen = None;
            stamps.loaded = now;
        }
        match load_policy_set(&self.dir, &self.config) {
            Ok(set) => {
                let set = Arc::new(set);
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                if current.hash == set.hash {
                    return Reload::Unchanged;
                }
                let dropped = self.dropped_agents(&current, &set);
                if !dropped.is_empty() {
                    return Reload::DropsAgents(dropped);
                }
                *current = Arc::clone(&set);
                Reload::Swapped(set)
            }
            Err(errors) => Reload::Refused(errors),
        }
    }

    /// Agents listed under `agents:` whose own stack is in `old` but not in
    /// `new`.
    fn dropped_agents(&self, old: &PolicySet, new: &PolicySet) -> Vec<String> {
        let has_own = |set: &PolicySet, agent: &str| {
            set.stacks
                .iter()
                .any(|stack| matches!(&stack.agent, AgentSelector::Named(name) if name == agent))
        };
        self.config
            .agents
            .keys()
            .filter(|agent| has_own(old, agent) && !has_own(new, agent))
            .cloned()
            .collect()
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
                Reload::Unchanged | Reload::Settling => continue,
                Reload::Swapped(set) => {
                    tracing::info!(hash = %set.hash, files = ?set.files, "policies reloaded");
                }
                Reload::Refused(errors) => {
                    for error in errors {
                        tracing::error!(%error, "policy reload refused; the previous policies stay in force");
                    }
                }
                Reload::DropsAgents(agents) => {
                    tracing::error!(?agents, "policy reload refused: it drops the stack of agents listed under agents:; the previous policies stay in force");
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
                let digest = std::fs::read(&path)
                    .ok()
                    .map(|bytes| Sha256::digest(&bytes).into());
                stamps.push(FileStamp {
                    path,
                    len: meta.len(),
                    modified: meta.modified().ok(),
                    digest,
                });
            }
        }
    }
    stamps.sort_by(|a, b| a.path.cmp(&b.path));
    stamps
}
