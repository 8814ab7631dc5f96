//! The writing side: one writer thread, grouped durable appends, recovery,
//! and the checkpoint schedule.
//!
//! SPEC §8 makes the audit log write-ahead: a decision must be on disk
//! before the request goes upstream. An fsync per request would serialise
//! the proxy behind the disk, so appends are grouped, like a database's
//! group commit: callers queue their entries; a single writer thread takes
//! everything queued, gives the entries consecutive sequence numbers, writes
//! them as one atomic sled batch, flushes once, and only then answers every
//! caller. While it flushes, the next group queues up, so the number of
//! flushes per second stays constant and the group grows with the load.
//!
//! The writer is a plain OS thread rather than a tokio task: a flush blocks
//! on the disk, and that must not stall a runtime worker that is serving
//! agents. [`AuditLog::append`] is an ordinary future and works in any
//! executor; [`AuditLog::append_blocking`] serves CLI tools without one.
//!
//! Failure is sticky. If a write or a flush fails, nobody knows which
//! entries reached the disk, so no further sequence number can be handed out
//! safely: every waiting caller gets the error, later appends fail at once,
//! and [`AuditLog::is_healthy`] turns false. The request path refuses to
//! forward (fail closed) and `/healthz` reports why; a restart resumes from
//! what is durable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::oneshot;

use super::archive::{Chain, ReadError, Sealer, DEFAULT_SEGMENT_ENTRIES};
use super::checkpoint::{parse_checkpoint_file, write_note, Checkpoint, PublicKey, SigningKey};
use super::entry::{format_at, key, parse_hash, Hash, Kind, NewEntry, Prepared, GENESIS};
use super::{AuditError, TREE};
use crate::store::Store;

/// At most this many entries go into one batch, to bound the latency of the
/// callers at the front of a very long queue.
const MAX_GROUP: usize = 8192;

/// When the log signs its head (SPEC §8: "on a schedule").
///
/// A checkpoint is written after `every_entries` new entries, or `every`
/// after the first entry it does not cover yet — whichever comes first — so
/// an idle log writes none, and no entry stays unsigned longer than `every`.
/// Zero disables a trigger. Dropping the last [`AuditLog`] handle also
/// checkpoints whatever is not covered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_entries: u64,
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    /// 1000 entries or 10 seconds: a checkpoint costs one signature and one
    /// small entry, and the last unsigned stretch of the chain — the part a
    /// truncation can remove undetected — stays short.
    fn default() -> Self {
        Self {
            every_entries: 1000,
            every: Duration::from_secs(10),
        }
    }
}

/// Where an appended entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number (`X-Leash-Audit-Seq`).
    pub seq: u64,
    /// Its hash, 64 lowercase hex digits.
    pub hash: String,
}

/// A handle to the audit log. Cheap to clone; all clones share one writer.
///
/// Dropping the last handle flushes a final checkpoint and waits for the
/// writer thread to finish (so the database can be reopened right away).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("entries", &self.entries())
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

struct Inner {
    tx: Option<mpsc::Sender<Msg>>,
    shared: Arc<Shared>,
    public_key: PublicKey,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue tells the writer to checkpoint and stop.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the handles and the writer both see.
#[derive(Default)]
struct Shared {
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    latest: Mutex<Option<Checkpoint>>,
    /// The number of entries in the chain (the next sequence number).
    entries: AtomicU64,
    /// Since the failure: when it happened, and how many appends were
    /// refused (what the `recovered` entry reports).
    failed_at: Mutex<Option<String>>,
    refused: AtomicU64,
    /// Writes are refused while less than this is free (0: no floor).
    min_free_space: AtomicU64,
    /// Flushes to disk so far.
    flushes: AtomicU64,
    /// Entries per sealed segment (`audit.segment_entries`; 0: the whole
    /// chain stays in the database). Set at open.
    segment_entries: AtomicU64,
    /// The instance id written into every appended entry's
    /// `details.instance` (SPEC §11), once set.
    instance: Mutex<Option<String>>,
    #[cfg(test)]
    fail_writes: AtomicBool,
    #[cfg(test)]
    probe_every_ms: AtomicU64,
}

/// How often a failed log tries to write again.
const PROBE_EVERY: Duration = Duration::from_secs(5);

impl Shared {
    fn fail(&self, reason: String) {
        if self.failed.load(Ordering::SeqCst) {
            return;
        }
        tracing::error!(%reason, "the audit log failed; it refuses every entry (nothing is forwarded) and tries to write again every few seconds");
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(reason);
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(format_at(Utc::now()));
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Healthy again: the `recovered` entry is durable.
    fn recover(&self) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.refused.store(0, Ordering::SeqCst);
        self.failed.store(false, Ordering::SeqCst);
    }

    fn probe_every(&self) -> Duration {
        #[cfg(test)]
        {
            let ms = self.probe_every_ms.load(Ordering::SeqCst);
            if ms > 0 {
                return Duration::from_millis(ms);
            }
        }
        PROBE_EVERY
    }

    fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::SeqCst) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed_error(&self) -> AuditError {
        AuditError::Failed(
            self.failure()
                .unwrap_or_else(|| "the audit writer has stopped".to_string()),
        )
    }
}

// Appends are nearly every message: boxing the entry would cost an
// allocation each, to shrink the rare checkpoint request.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// An entry, and whether its caller waits for it to be on disk.
    Append(Prepared, Durability, Reply<Result<Appended, AuditError>>),
    Checkpoint(Reply<Result<Option<Checkpoint>, AuditError>>),
}

/// When an appended entry must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Before the caller hears back: a decision, which is the write-ahead
    /// record of what leaves.
    Now,
    /// With the next flush (the next durable entry's group, or sled's own
    /// background flush, at most `flush_every_ms` = 500 ms later): what
    /// follows a decision and is conservative to lose in a crash (an
    /// outcome: without it the reservation stays counted).
    WithNext,
}

/// Where the writer sends an answer: an awaiting future, a blocked thread,
/// or nobody (a caller that does not wait: a failure is logged instead).
enum Reply<T> {
    Async(oneshot::Sender<T>),
    Blocking(mpsc::SyncSender<T>),
    Unawaited,
}

impl<T> Reply<Result<T, AuditError>> {
    fn send(self, value: Result<T, AuditError>) {
        // A caller that went away (its future dropped) no longer needs the
        // answer; its entry is written regardless.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(value);
            }
            Reply::Unawaited => {
                if let Err(error) = value {
                    tracing::error!(%error, "could not append an audit entry nobody waited for");
                }
            }
        }
    }
}

impl AuditLog {
    /// Opens the chain in `store` (tree `audit`) and starts its writer.
    ///
    /// - `signing_key_path` is the Ed25519 checkpoint key (conventionally
    ///   `certs/leash-audit.key`, beside the CA key); it is created on first
    ///   open with mode 0600, with its public half beside it
    ///   ([`public_key_path`](super::public_key_path)), and never overwritten.
    /// - `checkpoint_file` is the off-box note (`data_dir/checkpoint`),
    ///   rewritten after every checkpoint.
    ///
    /// The chain resumes after its last durable entry. Before writing
    /// anything, the note is compared with the chain: if it covers an entry
    /// the chain no longer has, or the chain has a different hash there,
    /// entries were cut or rewritten since, and opening fails rather than
    /// writing a fork over the evidence.
    ///
    /// Starts one OS thread; needs no async runtime (appends are futures
    /// that any executor can poll).
    pub fn open(
        store: &Store,
        signing_key_path: &Path,
        checkpoint: CheckpointPolicy,
        checkpoint_file: PathBuf,
    ) -> Result<AuditLog, AuditError> {
        let claim = store.claim(TREE).ok_or(AuditError::AlreadyOpen)?;
        let key = SigningKey::load_or_create(signing_key_path)?;
        let tree = store.tree(TREE)?;
        let chain = Chain::open(store).map_err(read_error)?;
        let resume = Resume::read(&chain)?;
        check_note_against_chain(&checkpoint_file, &chain, resume.next_seq)?;
        let (sealer, forget_from) = Sealer::start(store, &tree).map_err(AuditError::Seal)?;
        if let Some(latest) = &resume.latest {
            if latest.key_id != key.public().key_id() {
                tracing::warn!(
                    previous = %latest.key_id,
                    current = %key.public().key_id(),
                    "the audit signing key changed since the last checkpoint; verify older checkpoints with the previous public key"
                );
            }
            let current = std::fs::read_to_string(&checkpoint_file)
                .ok()
                .and_then(|t| parse_checkpoint_file(&t).ok());
            if current.as_ref() != Some(latest) {
                write_note(&checkpoint_file, latest)?;
            }
        }

        let shared = Arc::new(Shared::default());
        shared.entries.store(resume.next_seq, Ordering::SeqCst);
        shared
            .segment_entries
            .store(DEFAULT_SEGMENT_ENTRIES, Ordering::SeqCst);
        *shared.latest.lock().unwrap_or_else(|p| p.into_inner()) = resume.latest.clone();
        let public_key = key.public();
        let writer = Writer {
            store: store.clone(),
            tree,
            key,
            policy: checkpoint,
            note_path: checkpoint_file,
            next_seq: resume.next_seq,
            head: resume.head,
            uncovered: resume.uncovered,
            uncovered_since: (resume.uncovered > 0).then(Instant::now),
            shared: Arc::clone(&shared),
            free_space: std::cell::Cell::new(None),
            sealer,
            forget_from,
            _claim: claim,
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("leash-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(AuditError::Thread)?;
        tracing::info!(
            entries = resume.next_seq,
            key_id = %public_key.key_id(),
            "audit chain open"
        );
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx: Some(tx),
                shared,
                public_key,
                thread: Some(thread),
            }),
        })
    }

    /// Appends `entry` and returns once it is durable on disk, with its
    /// sequence number and hash.
    ///
    /// Fails without waiting when the entry is invalid (a float, a
    /// `checkpoint` kind) or the log has failed. Dropping the future after
    /// the entry was queued does not withdraw it.
    pub async fn append(&self, entry: NewEntry) -> Result<Appended, AuditError> {
        let prepared = self.prepare(entry)?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Append(prepared, Durability::Now, Reply::Async(tx)))?;
        rx.await
            .unwrap_or_else(|_| Err(self.inner.shared.failed_error()))
    }

    /// Appends `entry` and returns once it is in the chain (its sequence
    /// number and hash given), without waiting for the disk: it becomes
    /// durable with the next flush — the next [`append`](Self::append)'s
    /// group, or sled's background flush within 500 ms — whichever comes
    /// first. A group of such entries alone costs no flush.
    ///
    /// For entries whose loss in a crash is safe because something durable
    /// already says more (an `outcome`: its decision is on disk, and the
    /// reservation it would settle or release stays counted without it).
    /// Chain order is unaffected: a later durable entry's flush covers
    /// every entry before it.
    pub async fn append_with_next_flush(&self, entry: NewEntry) -> Result<Appended, AuditError> {
        let prepared = self.prepare(entry)?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Append(
            prepared,
            Durability::WithNext,
            Reply::Async(tx),
        ))?;
        rx.await
            .unwrap_or_else(|_| Err(self.inner.shared.failed_error()))
    }

    /// [`append_with_next_flush`](Self::append_with_next_flush) without
    /// waiting for the entry's place in the chain: queued for the writer
    /// and forgotten, so the caller needs no task of its own to wait in
    /// (an `outcome` after every forwarded request). A failure to write it
    /// is logged by the writer; one to queue it (an invalid entry, a failed
    /// log) is returned here.
    pub fn submit_with_next_flush(&self, entry: NewEntry) -> Result<(), AuditError> {
        let prepared = self.prepare(entry)?;
        self.send(Msg::Append(
            prepared,
            Durability::WithNext,
            Reply::Unawaited,
        ))
    }

    /// How many times the log flushed to disk since it opened.
    pub fn flushes(&self) -> u64 {
        self.inner.shared.flushes.load(Ordering::SeqCst)
    }

    /// [`append`](Self::append) for threads outside an async runtime (CLI
    /// tools). Blocks the calling thread until the entry is durable.
    pub fn append_blocking(&self, entry: NewEntry) -> Result<Appended, AuditError> {
        let prepared = self.prepare(entry)?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Append(prepared, Durability::Now, Reply::Blocking(tx)))?;
        rx.recv()
            .unwrap_or_else(|_| Err(self.inner.shared.failed_error()))
    }

    /// Signs the current head now (if any entry is not covered yet) and
    /// returns the checkpoint covering the head, if the chain has one. For
    /// shutdown paths and tests; the schedule does this on its own.
    pub async fn checkpoint_now(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.check_healthy()?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Checkpoint(Reply::Async(tx)))?;
        rx.await
            .unwrap_or_else(|_| Err(self.inner.shared.failed_error()))
    }

    /// Whether the log accepts entries. False for good once a write failed.
    pub fn is_healthy(&self) -> bool {
        !self.inner.shared.failed.load(Ordering::SeqCst)
    }

    /// Why the log failed, for `/healthz`.
    pub fn failure(&self) -> Option<String> {
        self.inner.shared.failure()
    }

    /// The latest signed checkpoint (webhooks carry it off-box).
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.inner
            .shared
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The number of entries in the chain, checkpoints included.
    pub fn entries(&self) -> u64 {
        self.inner.shared.entries.load(Ordering::SeqCst)
    }

    /// The key checkpoints are signed with.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// Refuse writes while less than `bytes` is free on the database's
    /// file system (`audit.min_free_space`; 0 turns it off). A write
    /// refused this way fails the log like any write error, and the probe
    /// brings it back once there is room again.
    pub fn set_min_free_space(&self, bytes: u64) {
        self.inner
            .shared
            .min_free_space
            .store(bytes, Ordering::SeqCst);
    }

    /// Keep about `entries` of the chain's latest entries in the database,
    /// sealing older ones, that many at a time, into segment files (`audit.segment_entries`; 0
    /// keeps the whole chain in the database). See [`super::archive`].
    pub fn set_segment_entries(&self, entries: u64) {
        self.inner
            .shared
            .segment_entries
            .store(entries, Ordering::SeqCst);
    }

    fn check_healthy(&self) -> Result<(), AuditError> {
        if self.is_healthy() {
            Ok(())
        } else {
            self.inner.shared.refused.fetch_add(1, Ordering::SeqCst);
            Err(self.inner.shared.failed_error())
        }
    }

    /// Names the instance that writes this chain: from now on every entry
    /// appended carries it as `details.instance` (unless the caller set
    /// one). Checkpoint and recovery entries, written by the log itself,
    /// keep their fixed shape.
    pub fn set_instance(&self, instance: &str) {
        *self
            .inner
            .shared
            .instance
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(instance.to_string());
    }

    fn prepare(&self, mut entry: NewEntry) -> Result<Prepared, AuditError> {
        self.check_healthy()?;
        let instance = self
            .inner
            .shared
            .instance
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (Some(instance), serde_json::Value::Object(details)) = (instance, &mut entry.details)
        {
            details
                .entry("instance")
                .or_insert(serde_json::Value::String(instance));
        }
        Prepared::new(entry)
    }

    fn send(&self, msg: Msg) -> Result<(), AuditError> {
        let sent = match &self.inner.tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            self.inner
                .shared
                .fail("the audit writer has stopped".to_string());
            Err(self.inner.shared.failed_error())
        }
    }

    /// Makes every later write fail, as a full disk would.
    #[cfg(test)]
    pub(crate) fn inject_write_failure(&self) {
        self.inner.shared.fail_writes.store(true, Ordering::SeqCst);
    }

    /// Lets writes succeed again (the disk has room again), and probes
    /// every `every` instead of every 5 s.
    #[cfg(test)]
    pub(crate) fn heal_writes(&self, every: Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner.shared.probe_every_ms.store(ms, Ordering::SeqCst);
        self.inner.shared.fail_writes.store(false, Ordering::SeqCst);
    }
}

/// Where the chain ends, read back at open.
struct Resume {
    next_seq: u64,
    head: Hash,
    /// Entries after the last checkpoint entry.
    uncovered: u64,
    latest: Option<Checkpoint>,
}

/// The few members recovery reads from an entry.
#[derive(Deserialize)]
struct Stored {
    seq: u64,
    kind: String,
    hash: String,
    #[serde(default)]
    details: Value,
}

impl Resume {
    fn read(chain: &Chain) -> Result<Self, AuditError> {
        let mut backward = chain.backward().map_err(read_error)?;
        let Some((seq, v)) = backward.next().transpose().map_err(read_error)? else {
            return Ok(Self {
                next_seq: 0,
                head: GENESIS,
                uncovered: 0,
                latest: None,
            });
        };
        let corrupt = |seq: u64, reason: String| AuditError::Corrupt { seq, reason };
        let last: Stored = serde_json::from_slice(&v).map_err(|e| {
            corrupt(
                seq,
                format!("the last entry is unreadable ({e}), so the chain cannot continue after it; run `leash audit verify`"),
            )
        })?;
        if last.seq != seq {
            return Err(corrupt(
                seq,
                format!(
                    "the last entry says it is entry {}; run `leash audit verify`",
                    last.seq
                ),
            ));
        }
        let head = parse_hash(&last.hash).ok_or_else(|| {
            corrupt(
                seq,
                "the last entry's hash is not 64 lowercase hex digits".into(),
            )
        })?;
        let next_seq = seq
            .checked_add(1)
            .ok_or_else(|| corrupt(seq, "the chain is full".into()))?;

        // Find the last checkpoint, counting the entries after it. Anything
        // unreadable on the way is left to `verify` to report.
        let mut uncovered = 0;
        let mut latest = None;
        for item in std::iter::once(Ok((seq, v))).chain(backward) {
            let (_, value) = item.map_err(read_error)?;
            let Ok(entry) = serde_json::from_slice::<Stored>(&value) else {
                uncovered += 1;
                continue;
            };
            if entry.kind == Kind::Checkpoint.as_str() {
                latest = entry
                    .details
                    .get("checkpoint")
                    .and_then(|c| serde_json::from_value::<Checkpoint>(c.clone()).ok());
                if latest.is_none() {
                    tracing::warn!(seq = entry.seq, "checkpoint entry is unreadable");
                }
                break;
            }
            uncovered += 1;
        }
        Ok(Self {
            next_seq,
            head,
            uncovered,
            latest,
        })
    }
}

/// A read of the chain that failed, as the log reports it.
pub(super) fn read_error(error: ReadError) -> AuditError {
    match error {
        ReadError::Store(e) => AuditError::Store(e),
        other => AuditError::Read(other),
    }
}

/// Refuses to continue a chain that lost or changed entries the last note
/// vouched for (see [`AuditLog::open`]).
fn check_note_against_chain(
    note_path: &Path,
    chain: &Chain,
    next_seq: u64,
) -> Result<(), AuditError> {
    let text = match std::fs::read_to_string(note_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AuditError::Io {
                path: note_path.to_path_buf(),
                source,
            })
        }
    };
    let note = match parse_checkpoint_file(&text) {
        Ok(note) => note,
        Err(error) => {
            tracing::warn!(path = %note_path.display(), %error, "unreadable checkpoint note; it will be rewritten at the next checkpoint");
            return Ok(());
        }
    };
    if note.seq >= next_seq {
        return Err(AuditError::Truncated {
            note: note_path.to_path_buf(),
            checkpoint_seq: note.seq,
            entries: next_seq,
        });
    }
    let found = chain
        .get(note.seq)
        .map_err(read_error)?
        .and_then(|v| serde_json::from_slice::<Stored>(&v).ok())
        .map(|s| s.hash);
    if found.as_deref() != Some(note.hash.as_str()) {
        return Err(AuditError::Diverged {
            note: note_path.to_path_buf(),
            seq: note.seq,
            expected: note.hash,
            found: found.unwrap_or_else(|| "an unreadable entry".into()),
        });
    }
    Ok(())
}

/// The writer thread's state: the only place sequence numbers are assigned.
struct Writer {
    store: Store,
    tree: sled::Tree,
    key: SigningKey,
    policy: CheckpointPolicy,
    note_path: PathBuf,
    next_seq: u64,
    head: Hash,
    /// Entries (not checkpoints) written since the last checkpoint.
    uncovered: u64,
    /// When the oldest of those was written.
    uncovered_since: Option<Instant>,
    shared: Arc<Shared>,
    /// The last free-space reading and when it was taken: `statvfs` is
    /// read at most every [`FREE_SPACE_EVERY`], not on every group (under
    /// load it stalled groups by tens of milliseconds at the 99th
    /// percentile).
    free_space: std::cell::Cell<Option<(Instant, u64)>>,
    /// Moves the oldest entries out of the tree (declared before the
    /// claim: dropped, and its thread joined, while the writer still holds
    /// the chain).
    sealer: Sealer,
    /// The first entry still in the tree: sealed entries from here on
    /// leave it with the next batches.
    forget_from: u64,
    /// This writer is the chain's only one while it runs.
    _claim: crate::store::Claim,
}

/// How stale the free-space reading may be. At the rate the log can write,
/// a second of entries is a few MiB, far under any sensible floor.
const FREE_SPACE_EVERY: Duration = Duration::from_secs(1);

/// Marks the log failed if the writer thread unwinds, so that callers get
/// an error and `/healthz` a reason instead of a silent hang.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail("the audit writer crashed".to_string());
        }
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let _guard = PanicGuard(Arc::clone(&self.shared));
        loop {
            let wait = if self.shared.failed.load(Ordering::SeqCst) {
                Some(self.shared.probe_every())
            } else {
                self.time_to_checkpoint()
            };
            let first = match wait {
                Some(wait) => match rx.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if self.shared.failed.load(Ordering::SeqCst) {
                            self.probe();
                        } else {
                            self.scheduled_checkpoint();
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(msg) => group.push(msg),
                    Err(_) => break,
                }
            }
            self.write_group(group);
        }
        // Every handle is gone: sign what is not signed yet, so a clean
        // shutdown leaves the whole chain covered.
        if !self.shared.failed.load(Ordering::SeqCst) && self.uncovered > 0 {
            if let Err(reason) = self.commit(&[], true, true) {
                tracing::error!(%reason, "final audit checkpoint failed");
            }
        }
    }

    /// How long until the time trigger fires; `None` when it cannot.
    fn time_to_checkpoint(&self) -> Option<Duration> {
        if self.policy.every.is_zero() || self.shared.failed.load(Ordering::SeqCst) {
            return None;
        }
        let since = self.uncovered_since?;
        Some(self.policy.every.saturating_sub(since.elapsed()))
    }

    /// A failed log tries one write: a `recovered` entry recording the gap.
    /// Once it is durable the log is healthy again (so `/healthz` is 200 and
    /// requests are decided and forwarded again), without a restart.
    fn probe(&mut self) {
        let failed_at = self
            .shared
            .failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reason = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let entry = NewEntry::new(Kind::Recovered).with_details(serde_json::json!({
            "failed_at": failed_at,
            "reason": reason,
            "refused_entries": self.shared.refused.load(Ordering::SeqCst),
        }));
        let prepared = match Prepared::new(entry) {
            Ok(prepared) => prepared,
            Err(error) => {
                tracing::error!(%error, "cannot build the audit recovery entry");
                return;
            }
        };
        match self.try_commit(&[prepared], false, true) {
            Ok(_) => {
                tracing::info!(
                    ?failed_at,
                    "the audit log writes again; leash decides and forwards again"
                );
                self.shared.recover();
            }
            Err(reason) => tracing::debug!(%reason, "the audit log still cannot write"),
        }
    }

    fn scheduled_checkpoint(&mut self) {
        if self.uncovered > 0 && !self.shared.failed.load(Ordering::SeqCst) {
            // A failure is recorded in `Shared`; nobody waits for this one.
            let _ = self.commit(&[], true, true);
        }
    }

    fn write_group(&mut self, group: Vec<Msg>) {
        let mut entries = Vec::with_capacity(group.len());
        let mut entry_replies = Vec::with_capacity(group.len());
        let mut checkpoint_replies = Vec::new();
        let mut durable = false;
        for msg in group {
            match msg {
                Msg::Append(prepared, durability, reply) => {
                    durable |= durability == Durability::Now;
                    entries.push(prepared);
                    entry_replies.push(reply);
                }
                Msg::Checkpoint(reply) => checkpoint_replies.push(reply),
            }
        }
        if self.shared.failed.load(Ordering::SeqCst) {
            let refused = u64::try_from(entry_replies.len()).unwrap_or(u64::MAX);
            self.shared.refused.fetch_add(refused, Ordering::SeqCst);
            for reply in entry_replies {
                reply.send(Err(self.shared.failed_error()));
            }
            for reply in checkpoint_replies {
                reply.send(Err(self.shared.failed_error()));
            }
            return;
        }
        let forced = !checkpoint_replies.is_empty();
        match self.commit(&entries, forced, durable || forced) {
            Ok(appended) => {
                for (reply, appended) in entry_replies.into_iter().zip(appended) {
                    reply.send(Ok(appended));
                }
                let latest = self
                    .shared
                    .latest
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                for reply in checkpoint_replies {
                    reply.send(Ok(latest.clone()));
                }
            }
            Err(reason) => {
                // Lost in the failure too: the gap counts them.
                let lost = u64::try_from(entry_replies.len()).unwrap_or(u64::MAX);
                self.shared.refused.fetch_add(lost, Ordering::SeqCst);
                for reply in entry_replies {
                    reply.send(Err(AuditError::Failed(reason.clone())));
                }
                for reply in checkpoint_replies {
                    reply.send(Err(AuditError::Failed(reason.clone())));
                }
            }
        }
    }

    /// Chains `entries` after the head, adds a checkpoint entry when one is
    /// due (or `force`d and something is uncovered), writes it all as one
    /// batch and flushes (unless nothing in it needs to be durable yet: no
    /// `durable` entry and no checkpoint, whose note must never lead the
    /// disk). The in-memory head moves only once the batch is written; on
    /// any error the log is marked failed.
    fn commit(
        &mut self,
        entries: &[Prepared],
        force: bool,
        durable: bool,
    ) -> Result<Vec<Appended>, String> {
        self.try_commit(entries, force, durable)
            .inspect_err(|reason| {
                self.shared.fail(reason.clone());
            })
    }

    fn try_commit(
        &mut self,
        entries: &[Prepared],
        force: bool,
        durable: bool,
    ) -> Result<Vec<Appended>, String> {
        // One timestamp per group: the wall clock when it was written. The
        // chain's order is `seq`; `at` is what the clock said, unadjusted,
        // so a clock that jumped shows up as such instead of being smoothed
        // over (or dragging every later entry into the future).
        let at = format_at(Utc::now());
        let mut seq = self.next_seq;
        let mut head = self.head;
        let mut items = Vec::with_capacity(entries.len() + 1);
        let mut appended = Vec::with_capacity(entries.len());
        for prepared in entries {
            let (hash, bytes) = prepared.seal(seq, &at, &head);
            items.push((key(seq).to_vec(), bytes));
            appended.push(Appended {
                seq,
                hash: hex::encode(hash),
            });
            head = hash;
            seq = seq.checked_add(1).ok_or("the audit chain is full")?;
        }

        let added = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        let uncovered = self.uncovered.saturating_add(added);
        let uncovered_since = match self.uncovered_since {
            Some(since) => Some(since),
            None if added > 0 => Some(Instant::now()),
            None => None,
        };
        let due = uncovered > 0
            && (force
                || (self.policy.every_entries > 0 && uncovered >= self.policy.every_entries)
                || (!self.policy.every.is_zero()
                    && uncovered_since.is_some_and(|s| s.elapsed() >= self.policy.every)));
        let checkpoint = if due {
            // `seq - 1` is the head: `uncovered > 0` means there is one.
            let signed = Checkpoint::sign(&self.key, seq.saturating_sub(1), &head, at.clone());
            let details = serde_json::json!({ "checkpoint": signed });
            let prepared = Prepared::checkpoint(&details).map_err(|e| e.to_string())?;
            let (hash, bytes) = prepared.seal(seq, &at, &head);
            items.push((key(seq).to_vec(), bytes));
            head = hash;
            seq = seq.checked_add(1).ok_or("the audit chain is full")?;
            Some(signed)
        } else {
            None
        };
        if items.is_empty() {
            return Ok(appended);
        }

        // Sealed entries leave the tree alongside: twice as many as come in,
        // so the tree shrinks back between seals.
        let at_most = u64::try_from(items.len().saturating_mul(2))
            .unwrap_or(u64::MAX)
            .max(64);
        let forget = self.sealer.forgettable(self.forget_from, at_most);
        self.write(items, forget.clone(), durable || checkpoint.is_some())?;
        self.forget_from = forget.end;
        self.next_seq = seq;
        self.head = head;
        self.shared.entries.store(seq, Ordering::SeqCst);
        self.sealer.after_write(
            seq,
            self.shared.segment_entries.load(Ordering::SeqCst),
            self.shared.min_free_space.load(Ordering::SeqCst),
        );
        match checkpoint {
            Some(signed) => {
                self.uncovered = 0;
                self.uncovered_since = None;
                // The note follows the durable chain, never leads it. If it
                // cannot be written the chain is still sound (and the note is
                // rewritten on the next checkpoint or open), so this is not a
                // reason to stop forwarding.
                if let Err(error) = write_note(&self.note_path, &signed) {
                    tracing::error!(%error, "cannot write the audit checkpoint note");
                }
                *self.shared.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(signed);
            }
            None => {
                self.uncovered = uncovered;
                self.uncovered_since = uncovered_since;
            }
        }
        Ok(appended)
    }

    fn write(
        &self,
        items: Vec<(Vec<u8>, Vec<u8>)>,
        forget: std::ops::Range<u64>,
        flush: bool,
    ) -> Result<(), String> {
        #[cfg(test)]
        if self.shared.fail_writes.load(Ordering::SeqCst) {
            return Err("audit write failed: injected disk failure".to_string());
        }
        self.check_free_space()?;
        self.store
            .write_batch(&self.tree, items, forget.map(|seq| key(seq).to_vec()))
            .map_err(|e| format!("audit write failed: {e}"))?;
        if !flush {
            return Ok(());
        }
        self.shared.flushes.fetch_add(1, Ordering::SeqCst);
        self.store
            .flush()
            .map_err(|e| format!("audit flush failed: {e}"))
    }
}

impl Writer {
    /// Refuses the write while the data directory's file system has less
    /// free than the floor. sled 0.34 does not survive running out of
    /// space: after one `ENOSPC` its next write blocks forever, even once
    /// space is back, and only a restart helps. Stopping short of the
    /// floor turns a full disk into a failure the probe recovers from.
    fn check_free_space(&self) -> Result<(), String> {
        let floor = self.shared.min_free_space.load(Ordering::SeqCst);
        if floor == 0 {
            return Ok(());
        }
        let free = match self.free_space.get() {
            Some((at, free)) if at.elapsed() < FREE_SPACE_EVERY => free,
            _ => {
                let free = self.store.available_space().map_err(|e| {
                    format!(
                        "audit write refused: cannot read the free space of {}: {e}",
                        self.store.dir().display()
                    )
                })?;
                self.free_space.set(Some((Instant::now(), free)));
                free
            }
        };
        if free < floor {
            return Err(format!(
                "audit write refused: {} has {} MiB free, below audit.min_free_space ({} MiB)",
                self.store.dir().display(),
                free / (1024 * 1024),
                floor / (1024 * 1024)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open(dir: &Path, policy: CheckpointPolicy) -> (Store, AuditLog) {
        let store = Store::open(&dir.join("data")).unwrap();
        let log = AuditLog::open(
            &store,
            &dir.join("certs/leash-audit.key"),
            policy,
            dir.join("data/checkpoint"),
        )
        .unwrap();
        (store, log)
    }

    /// Entries appended "with the next flush" cost no flush of their own;
    /// the next durable entry's flush covers them, in chain order, and a
    /// reopened log reads them all back.
    #[tokio::test]
    async fn outcomes_ride_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            every_entries: 0,
            every: Duration::ZERO,
        };
        {
            let (_store, log) = open(dir.path(), policy);
            log.append(NewEntry::started(json!({}))).await.unwrap();
            let before = log.flushes();
            let mut seqs = Vec::new();
            for i in 0..5 {
                let entry = NewEntry::outcome(format!("agent-{i}"), Some(200));
                if i % 2 == 0 {
                    seqs.push(log.append_with_next_flush(entry).await.unwrap().seq);
                } else {
                    // Queued without waiting: still in order.
                    log.submit_with_next_flush(entry).unwrap();
                }
            }
            assert_eq!(log.flushes(), before, "no flush for outcomes alone");
            assert_eq!(seqs, [1, 3, 5]);
            let durable = log
                .append(NewEntry::outcome("agent-x", Some(201)))
                .await
                .unwrap();
            assert_eq!(durable.seq, 6);
            assert_eq!(log.flushes(), before + 1, "one flush covers them all");
        }
        let store = Store::open(&dir.path().join("data")).unwrap();
        let entries = crate::audit::read_entries(&store, None, 100).unwrap();
        let kinds: Vec<&str> = entries
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds.len(), 7 + usize::from(kinds.contains(&"checkpoint")));
        assert_eq!(entries[6]["seq"], 6);
        let agents: Vec<&str> = entries[1..6]
            .iter()
            .map(|e| e["agent"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            agents,
            ["agent-0", "agent-1", "agent-2", "agent-3", "agent-4"]
        );
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_waiter_and_then_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, log) = open(dir.path(), CheckpointPolicy::default());
        log.append(NewEntry::started(json!({}))).await.unwrap();
        assert!(log.is_healthy());

        log.inject_write_failure();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.append(NewEntry::outcome(format!("agent-{i}"), Some(200)))
                        .await
                })
            })
            .collect();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(matches!(err, AuditError::Failed(_)), "{err}");
        }
        assert!(!log.is_healthy());
        assert!(log.failure().unwrap().contains("injected disk failure"));
        let err = log
            .append_blocking(NewEntry::outcome("a", None))
            .unwrap_err();
        assert!(err.to_string().contains("injected disk failure"), "{err}");
        assert_eq!(log.entries(), 1);
    }

    #[tokio::test]
    async fn a_failed_log_recovers_once_writes_succeed_and_records_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = open(dir.path(), CheckpointPolicy::default());
        log.append(NewEntry::started(json!({}))).await.unwrap();
        log.inject_write_failure();
        assert!(log.append(NewEntry::outcome("a", Some(200))).await.is_err());
        assert!(log.append(NewEntry::outcome("b", Some(200))).await.is_err());
        assert!(!log.is_healthy());

        // The disk has room again: the probe writes, and the log is healthy.
        log.heal_writes(Duration::from_millis(20));
        let mut healthy = false;
        for _ in 0..500 {
            if log.is_healthy() {
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(healthy, "the log did not recover");
        let appended = log.append(NewEntry::outcome("c", Some(200))).await.unwrap();
        assert_eq!(appended.seq, 2, "started, recovered, then this");
        let entries = crate::audit::read_entries(&store, None, 10).unwrap();
        let recovered = &entries[1];
        assert_eq!(recovered["kind"], "recovered");
        assert!(recovered["details"]["refused_entries"].as_u64().unwrap() >= 2);
        assert!(recovered["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("injected disk failure"));
        assert!(recovered["details"]["failed_at"].is_string());
    }

    #[test]
    fn one_database_has_one_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = open(dir.path(), CheckpointPolicy::default());
        let second = AuditLog::open(
            &store,
            &dir.path().join("certs/leash-audit.key"),
            CheckpointPolicy::default(),
            dir.path().join("data/checkpoint"),
        );
        assert!(matches!(second, Err(AuditError::AlreadyOpen)));
        drop(log);
        let again = AuditLog::open(
            &store,
            &dir.path().join("certs/leash-audit.key"),
            CheckpointPolicy::default(),
            dir.path().join("data/checkpoint"),
        );
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn invalid_entries_are_refused_without_failing_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, log) = open(dir.path(), CheckpointPolicy::default());
        let err = log
            .append(NewEntry::started(json!({"rate": 0.92})))
            .await
            .unwrap_err();
        assert!(matches!(err, AuditError::Invalid(_)), "{err}");
        assert!(log.append(NewEntry::new(Kind::Checkpoint)).await.is_err());
        assert!(log.is_healthy());
        assert_eq!(
            log.append(NewEntry::started(json!({}))).await.unwrap().seq,
            0
        );
    }

    #[tokio::test]
    async fn checkpoints_follow_the_entry_and_time_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CheckpointPolicy {
            every_entries: 3,
            every: Duration::from_millis(100),
        };
        let (_store, log) = open(dir.path(), policy);
        for _ in 0..3 {
            log.append(NewEntry::outcome("a", Some(200))).await.unwrap();
        }
        // Entries 0..=2, then the checkpoint entry 3 signing entry 2.
        let cp = log.latest_checkpoint().unwrap();
        assert_eq!(cp.seq, 2);
        assert_eq!(log.entries(), 4);

        let last = log.append(NewEntry::outcome("a", Some(201))).await.unwrap();
        assert_eq!(last.seq, 4);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let cp = log.latest_checkpoint().unwrap();
        assert_eq!((cp.seq, cp.hash.as_str()), (4, last.hash.as_str()));
        assert!(cp.verify_signature(&log.public_key()).is_ok());
        let note = std::fs::read_to_string(dir.path().join("data/checkpoint")).unwrap();
        assert_eq!(parse_checkpoint_file(&note).unwrap(), cp);

        // Idle: no new checkpoints.
        let entries = log.entries();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(log.entries(), entries);

        // On demand: signs the head right away, or says what covers it.
        let head = log.append(NewEntry::outcome("a", None)).await.unwrap();
        let cp = log.checkpoint_now().await.unwrap().unwrap();
        assert_eq!((cp.seq, cp.hash.as_str()), (head.seq, head.hash.as_str()));
        assert_eq!(log.checkpoint_now().await.unwrap(), Some(cp));
    }
}
