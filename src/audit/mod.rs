//! The tamper-evident audit chain (SPEC §8).
//!
//! Everything leash decides is written here before it acts on it, so that
//! afterwards an auditor can be shown what happened and that the record was
//! not altered. The pieces:
//!
//! - [`NewEntry`]: what the request path hands in (a decision, an outcome, a
//!   hold event, a policy load). Strings are masked for card numbers
//!   ([`mask_card_numbers`]) and the entry is made canonical JSON
//!   ([`to_canonical`]), so its hash can be recomputed by anyone.
//! - [`AuditLog`]: the single writer. Appends are grouped and durable when
//!   they return; each entry's hash covers the previous entry's hash, and a
//!   signed [`Checkpoint`] of the head is written on a schedule and as a note
//!   that can leave the machine.
//! - [`verify`]: walks the chain and names the first entry that was changed,
//!   removed or reordered, or the checkpoint a cut-short chain no longer
//!   reaches.
//! - [`read_entries`] and [`one_line`]: export, tail and the admin API.
//!
//! How the request path uses it:
//!
//! ```no_run
//! # async fn example(store: leash::store::Store, intent: serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
//! use leash::audit::{AuditLog, CheckpointPolicy, NewEntry};
//!
//! let log = AuditLog::open(
//!     &store,
//!     "certs/leash-audit.key".as_ref(),
//!     CheckpointPolicy::default(),
//!     "data/checkpoint".into(),
//! )?;
//! // Before forwarding: durable when this returns. An error means the
//! // request must not be forwarded (fail closed).
//! let appended = log
//!     .append(NewEntry::decision("growth-agent", intent, "AUTO_APPROVE", Some(10), serde_json::json!([]), "<policy hash>"))
//!     .await?;
//! println!("X-Leash-Audit-Seq: {}", appended.seq);
//! // After the upstream answered:
//! log.append(NewEntry::outcome("growth-agent", Some(200)).with_detail("decision_seq", appended.seq.into()))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Entries live in the sled tree `audit`, keyed by the big-endian sequence
//! number, so sled's key order is chain order.

mod archive;
mod canonical;
mod checkpoint;
mod entry;
mod log;
mod mask;
mod read;
mod verify;

use std::path::PathBuf;

pub use archive::{Segment, DEFAULT_SEGMENT_ENTRIES, DIR as ARCHIVE_DIR};
pub use canonical::{to_canonical, CanonicalError};
pub use checkpoint::{
    parse_checkpoint_file, public_key_path, Checkpoint, CheckpointParseError, PublicKey,
    CHECKPOINT_FORMAT,
};
pub use entry::{Kind, NewEntry};
pub use log::{Appended, AuditLog, CheckpointPolicy};
pub use mask::mask_card_numbers;
pub use read::{one_line, read_entries, reservations_named_since, ChainTail};
pub use verify::{verify, ChainWalk, VerifyError, VerifyReport};

/// The sled tree that holds the chain.
pub const TREE: &str = "audit";

/// Why the audit log could not be opened or refused an entry.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry cannot be chained as given (a float, a `checkpoint` kind,
    /// details that are not an object). The log stays healthy.
    #[error("audit entry refused: {0}")]
    Invalid(String),
    /// A write or flush failed, now or earlier: the log accepts nothing
    /// until it recovers, and the request must not be forwarded.
    #[error("the audit log has failed and refuses entries until it recovers: {0}")]
    Failed(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// A sealed segment of the chain could not be read.
    #[error("audit archive: {0}")]
    Read(archive::ReadError),
    /// The archive could not be prepared at open.
    #[error("audit archive: {0}")]
    Seal(String),
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit entry {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("{note} signs entry {checkpoint_seq}, but the audit chain has only {entries} entries: entries were cut off the end (or the database was restored from an older copy). leash will not write a fork over that evidence: run `leash audit verify`; to start anyway, move {note} aside and keep it, it proves what was lost")]
    Truncated {
        note: PathBuf,
        checkpoint_seq: u64,
        entries: u64,
    },
    #[error("{note} signs hash {expected} for entry {seq}, but the audit chain has {found} there: the chain was rewritten. leash will not write on top of it: run `leash audit verify`; to start anyway, move {note} aside and keep it")]
    Diverged {
        note: PathBuf,
        seq: u64,
        expected: String,
        found: String,
    },
    #[error(
        "the audit chain of this database is already open in this process (it has one writer)"
    )]
    AlreadyOpen,
    #[error("cannot start the audit writer thread: {0}")]
    Thread(#[source] std::io::Error),
}
