//! The embedded database under `data_dir` (sled).
//!
//! sled is kept behind this one module: everything else asks it for a named
//! tree. (sled 0.34 is the last stable release; keeping it here makes a later
//! swap one module's work.)

use std::path::{Path, PathBuf};

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the database: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("database record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(data_dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Ok(Self { db })
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
}
