//! The embedded database under `data_dir` (sled).
//!
//! sled is kept behind this one module: everything else asks it for a named
//! tree. (sled 0.34 is the last stable release; keeping it here makes a later
//! swap one module's work.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the database: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// Another process holds the database's lock: almost always another
    /// leash (`leash run`, or a command reading the chain) on the same
    /// `data_dir`.
    #[error(
        "{path}: another leash is running on this data_dir (its database is locked; sled allows one process at a time). Stop the other leash, or give this one another data_dir"
    )]
    Locked { path: PathBuf },
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("database record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// How long [`Store::open`] waits for a database lock that is being let go.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether sled failed only because another handle holds the file lock.
///
/// sled 0.34 wraps the `flock` failure in an `Other` error whose text is
/// "could not acquire lock on …", so the text is all there is to match.
fn is_lock_contention(error: &sled::Error) -> bool {
    match error {
        sled::Error::Io(e) => {
            e.kind() == std::io::ErrorKind::WouldBlock
                || e.to_string().starts_with("could not acquire lock")
        }
        _ => false,
    }
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    claims: Arc<Mutex<HashSet<&'static str>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database in `data_dir`.
    ///
    /// When the database's lock is taken, tries again for up to
    /// [`LOCK_WAIT`]: sled 0.34 releases its file lock from a background
    /// thread that outlives the dropped `Db` for a moment, so a reopen right
    /// after a close (a restart, a CLI command after `leash run` exits) can
    /// find the lock still held by a process that is letting go of it
    /// (spacejam/sled#1289). A lock still held after the wait belongs to a
    /// live process and is reported.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(data_dir, crate::config::DEFAULT_DB_CACHE)
    }

    /// [`Store::open`] with at most `cache_bytes` of pages cached in memory
    /// (`limits.db_cache`).
    pub fn open_with_cache(data_dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut pause = std::time::Duration::from_millis(5);
        let db = loop {
            match sled::Config::new()
                .path(data_dir)
                .cache_capacity(cache_bytes)
                .open()
            {
                Ok(db) => break db,
                Err(source)
                    if is_lock_contention(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(source) if is_lock_contention(&source) => {
                    return Err(StoreError::Locked {
                        path: data_dir.to_path_buf(),
                    })
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: data_dir.to_path_buf(),
                        source,
                    })
                }
            }
        };
        Ok(Self {
            db,
            claims: Arc::default(),
            dir: data_dir.to_path_buf(),
        })
    }

    /// Bytes an unprivileged writer can still use on the file system that
    /// holds the database (`statvfs`: available blocks × fragment size).
    pub fn available_space(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Where the database lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A named tree (created on first use).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// A process-wide unique, monotonic id that survives restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Claims `name` for one owner in this process, until the returned
    /// [`Claim`] is dropped; `None` if someone holds it.
    ///
    /// sled keeps other processes out of the database, but clones of one
    /// `Store` share it freely. Some parts need a single writer — two audit
    /// logs on one database would hand out the same sequence numbers and
    /// fork the chain — and claim their tree here.
    pub fn claim(&self, name: &'static str) -> Option<Claim> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.insert(name).then(|| Claim {
            name,
            claims: Arc::clone(&self.claims),
        })
    }

    /// Inserts every `(key, value)` pair into `tree` and removes every key
    /// of `removals`, as one atomic batch: after a crash either all of it
    /// happened or none did.
    ///
    /// The audit chain relies on this: a group of entries written together
    /// must never leave a gap, so a recovered chain always ends at the last
    /// whole group. (Durability still needs [`Store::flush`].)
    pub fn write_batch(
        &self,
        tree: &sled::Tree,
        items: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        removals: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in items {
            batch.insert(key, value);
        }
        for key in removals {
            batch.remove(key);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }
}

/// One write of [`Store::write_atomically`].
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

impl std::fmt::Debug for Write {
    /// Keys only: values may be sealed secrets or large records.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Put { key, value } => write!(
                f,
                "Put({}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Write::Delete { key } => write!(f, "Delete({})", String::from_utf8_lossy(key)),
        }
    }
}

impl Store {
    /// Applies writes to several trees as one transaction: after a crash
    /// either every write is there or none is.
    ///
    /// A record and its indexes (a hold, its sealed request, its retry key)
    /// must never be seen half-written: a hold whose retry index was lost
    /// would let a retried request open a second hold for the same payment.
    /// Read-modify-write atomicity is the caller's (a lock around the read
    /// and this write); this only makes the write itself indivisible.
    pub fn write_atomically(&self, writes: &[(&sled::Tree, Vec<Write>)]) -> Result<(), StoreError> {
        use sled::transaction::{TransactionError, Transactional};

        let trees: Vec<&sled::Tree> = writes.iter().map(|(tree, _)| *tree).collect();
        let result: Result<(), TransactionError<()>> = trees[..].transaction(|views| {
            for (view, (_, tree_writes)) in views.iter().zip(writes) {
                for write in tree_writes {
                    match write {
                        Write::Put { key, value } => {
                            view.insert(key.as_slice(), value.as_slice())?;
                        }
                        Write::Delete { key } => {
                            view.remove(key.as_slice())?;
                        }
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            // The closure never aborts.
            Err(TransactionError::Abort(())) => Err(StoreError::Corrupt {
                key: "transaction".into(),
                reason: "aborted".into(),
            }),
        }
    }
}

/// An exclusive claim on part of the database (see [`Store::claim`]).
pub struct Claim {
    name: &'static str,
    claims: Arc<Mutex<HashSet<&'static str>>>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Claim").field(&self.name).finish()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_let_go_while_opening_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        first.tree("t").unwrap().insert("k", "v").unwrap();
        first.flush().unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(LOCK_WAIT / 5);
            drop(first);
        });
        let second = Store::open(dir.path()).unwrap();
        closer.join().unwrap();
        assert_eq!(
            second.tree("t").unwrap().get("k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }

    #[test]
    fn a_lock_held_by_a_live_handle_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("another leash is running on this data_dir"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("another data_dir"), "{message}");
    }
}
