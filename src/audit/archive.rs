//! Sealed stretches of the chain, moved out of the live database.
//!
//! sled keeps bookkeeping in memory for every page it holds, and gives it
//! back only when the page's keys are removed: measured here, about 20
//! bytes of resident memory per entry kept, so a chain kept whole in the
//! database makes leash's memory grow with every request it ever decided
//! (`examples/bench`: 53 MiB after 10k requests, 156 MiB after 1M). The
//! writer therefore keeps only the recent part of the chain in the tree:
//! once `audit.segment_entries` and a few more ([`SEAL_SLACK`]) are
//! unsealed, the oldest `segment_entries` are written to a segment file,
//! the file is made durable, and only then are they removed from the tree.
//!
//! A segment is `<data_dir>/audit-archive/chain-<first>-<last>.jsonl`
//! (both numbers 20 digits, so name order is chain order): JSON Lines,
//! entry `first + i` on line `i`, each line exactly the bytes the tree held
//! (canonical JSON escapes every control character, so an entry never holds
//! a raw newline). `verify` checks archived entries exactly as it checks
//! live ones, and any JSON Lines tool can read a segment.
//!
//! [`Chain`] reads the chain wherever its entries are. A crash between a
//! segment's rename and the removal from the tree leaves an entry in both
//! places, byte for byte the same; readers take the segment's, and the next
//! open removes the tree's copies.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::entry::{key, seq_of_key};
use super::TREE;
use crate::store::{Store, StoreError};

/// The directory under `data_dir` that holds the segments.
pub const DIR: &str = "audit-archive";

/// Entries per segment unless `audit.segment_entries` says otherwise: a
/// segment of decisions is about 17 MiB, and the tree holds about one
/// segment's worth. Smaller segments keep less in sled (whose memory grows
/// with what it holds); larger ones make fewer files.
pub const DEFAULT_SEGMENT_ENTRIES: u64 = 16_384;

/// A seal starts once this many entries beyond a segment's worth are
/// unsealed (or a segment's worth again, for tiny segments). Early, so
/// that the seal reads entries sled still has in its cache: sealing once
/// two segments had gathered, so that it read the older one back, cost a
/// lasting 10-12 MiB more resident memory in the load benchmark (65
/// against 53 MiB after 40k requests, 66 against 56 after 1M).
pub const SEAL_SLACK: u64 = 64;

/// After a failed seal, the next try waits this long (the chain is sound
/// meanwhile; only memory grows).
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// One sealed segment: entries `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub first: u64,
    pub last: u64,
    pub path: PathBuf,
}

/// Why a stretch of the chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A key in the audit tree that is not a sequence number.
    #[error("the audit tree holds a key that is not a sequence number ({})", hex::encode(.0))]
    ForeignKey(Vec<u8>),
    #[error("{}: {source}", path.display())]
    Segment {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn segment_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Segment {
        path: path.to_path_buf(),
        source,
    }
}

/// The segment directory of a database.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    pub fn of(store: &Store) -> Archive {
        Archive {
            dir: store.dir().join(DIR),
        }
    }

    /// The sealed segments, in chain order. A directory that does not
    /// exist holds none; files that are not segments (a `.partial` left by
    /// a crash mid-seal) are not read.
    pub fn segments(&self) -> Result<Vec<Segment>, ReadError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(segment_error(&self.dir)(e)),
        };
        let mut segments = Vec::new();
        for entry in entries {
            let entry = entry.map_err(segment_error(&self.dir))?;
            let name = entry.file_name();
            if let Some((first, last)) = name.to_str().and_then(parse_name) {
                segments.push(Segment {
                    first,
                    last,
                    path: entry.path(),
                });
            }
        }
        segments.sort_by_key(|s| (s.first, s.last));
        Ok(segments)
    }

    /// The last entry a segment holds, if any is sealed.
    pub fn last_sealed(&self) -> Result<Option<u64>, ReadError> {
        Ok(self.segments()?.iter().map(|s| s.last).max())
    }

    /// Writes entries `first..=last` of `tree` to a new segment and makes
    /// it durable (file and directory synced). The tree is not changed:
    /// removing the entries is the caller's next step, once this returned.
    pub fn seal(&self, tree: &sled::Tree, first: u64, last: u64) -> Result<Segment, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.dir.join(segment_name(first, last));
        let partial = path.with_extension("jsonl.partial");
        let fail = |e: std::io::Error| format!("{}: {e}", partial.display());
        let file = File::create(&partial).map_err(fail)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        let mut expected = first;
        for item in tree.range(key(first)..=key(last)) {
            let (k, bytes) = item.map_err(|e| format!("reading the audit tree: {e}"))?;
            let seq = seq_of_key(&k);
            if seq != Some(expected) {
                return Err(format!(
                    "entry {expected} is not in the audit tree; not sealing entries {first}..={last} (run `leash audit verify`)"
                ));
            }
            if bytes.contains(&b'\n') {
                return Err(format!(
                    "entry {expected} holds a raw newline; not sealing (run `leash audit verify`)"
                ));
            }
            out.write_all(&bytes).map_err(fail)?;
            out.write_all(b"\n").map_err(fail)?;
            expected += 1;
        }
        if expected != last + 1 {
            return Err(format!(
                "entry {expected} is not in the audit tree; not sealing entries {first}..={last}"
            ));
        }
        let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.sync_all().map_err(fail)?;
        drop(file);
        std::fs::rename(&partial, &path).map_err(fail)?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        Ok(Segment { first, last, path })
    }
}

fn segment_name(first: u64, last: u64) -> String {
    format!("chain-{first:020}-{last:020}.jsonl")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let range = name.strip_prefix("chain-")?.strip_suffix(".jsonl")?;
    let (first, last) = range.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return None;
    }
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

/// Removes from `tree` the entries up to `last` in one batch (a crash
/// after a seal, in tests).
#[cfg(test)]
fn forget_sealed(tree: &sled::Tree, last: u64) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for item in tree.range(..=key(last)) {
        let (k, _) = item?;
        batch.remove(k);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// The whole chain of a database: sealed segments, then the live tree.
pub struct Chain {
    archive: Archive,
    tree: sled::Tree,
}

/// An entry as stored: its sequence number (its key, or its line in a
/// segment) and its bytes.
pub type StoredEntry = (u64, Vec<u8>);

impl Chain {
    pub fn open(store: &Store) -> Result<Chain, ReadError> {
        Ok(Chain {
            archive: Archive::of(store),
            tree: store.tree(TREE)?,
        })
    }

    /// The entries from `start` on, in chain order.
    ///
    /// Safe against a seal running meanwhile: an entry that left the tree
    /// while this read is in a segment by then, and the reader looks there.
    pub fn forward(&self, start: u64) -> Forward<'_> {
        Forward {
            chain: self,
            next: start,
            pending: None,
            relisted_at: None,
            reader: None,
            live: None,
            done: false,
        }
    }

    /// The entries from the last one back to the first. For a chain no
    /// writer is sealing (start-up, a stopped leash): a segment is read
    /// whole to be walked backwards.
    pub fn backward(&self) -> Result<Backward, ReadError> {
        let segments = self.archive.segments()?;
        let floor = segments.iter().map(|s| s.last).max();
        let live = match floor {
            Some(last) => self.tree.range(key(last.saturating_add(1))..),
            None => self.tree.iter(),
        };
        Ok(Backward {
            live: Some(live),
            segments,
            current: Vec::new(),
        })
    }

    /// The bytes of entry `seq`, wherever it is.
    pub fn get(&self, seq: u64) -> Result<Option<Vec<u8>>, ReadError> {
        if let Some(bytes) = self.tree.get(key(seq)).map_err(StoreError::from)? {
            return Ok(Some(bytes.to_vec()));
        }
        match self.forward(seq).next() {
            Some(Ok((found, bytes))) if found == seq => Ok(Some(bytes)),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }
}

/// See [`Chain::forward`].
pub struct Forward<'c> {
    chain: &'c Chain,
    next: u64,
    /// Segments still to read (listed on first use).
    pending: Option<VecDeque<Segment>>,
    /// The `next` at which the segments were listed again because the tree
    /// skipped ahead: once per gap, so a real gap is reported, not chased.
    relisted_at: Option<u64>,
    reader: Option<SegmentReader>,
    live: Option<sled::Iter>,
    done: bool,
}

impl Forward<'_> {
    fn list(&mut self) -> Result<(), ReadError> {
        let next = self.next;
        let segments = self.chain.archive.segments()?;
        self.pending = Some(segments.into_iter().filter(|s| s.last >= next).collect());
        Ok(())
    }

    fn step(&mut self) -> Result<Option<StoredEntry>, ReadError> {
        loop {
            if let Some(reader) = &mut self.reader {
                match reader.next_line()? {
                    Some((seq, bytes)) => {
                        self.next = seq.saturating_add(1);
                        return Ok(Some((seq, bytes)));
                    }
                    None => {
                        // A short segment does not hold the reader in place.
                        self.next = self.next.max(reader.last.saturating_add(1));
                        self.reader = None;
                        continue;
                    }
                }
            }
            if let Some(live) = &mut self.live {
                let Some(item) = live.next() else {
                    return Ok(None);
                };
                let (k, bytes) = item.map_err(StoreError::from)?;
                let seq = seq_of_key(&k).ok_or_else(|| ReadError::ForeignKey(k.to_vec()))?;
                if seq > self.next && self.relisted_at != Some(self.next) {
                    // Sealed away while this read ran? Look again, once.
                    self.relisted_at = Some(self.next);
                    self.live = None;
                    self.list()?;
                    continue;
                }
                self.next = seq.saturating_add(1);
                return Ok(Some((seq, bytes.to_vec())));
            }
            if self.pending.is_none() {
                self.list()?;
            }
            let next = self.next;
            match self.pending.as_mut().and_then(VecDeque::pop_front) {
                Some(segment) if segment.last >= next => {
                    self.reader = Some(SegmentReader::open(&segment, next)?);
                }
                Some(_) => {}
                None => self.live = Some(self.chain.tree.range(key(next)..)),
            }
        }
    }
}

impl Iterator for Forward<'_> {
    type Item = Result<StoredEntry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Reads one segment's lines from a given entry on.
struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    seq: u64,
    last: u64,
    line: Vec<u8>,
}

impl SegmentReader {
    /// Positioned at entry `from` (or the segment's first, if later).
    ///
    /// A page in the middle of a segment is found by bisection on the
    /// entries' own `seq` (the lines are in chain order), then by skipping
    /// the few lines left: a page costs a few reads, not the segment's
    /// length. Where a probe cannot read a `seq` (a damaged line), the
    /// lines are counted from the start instead. Either way, this places a
    /// page for reading; `verify` walks every segment from its first line.
    fn open(segment: &Segment, from: u64) -> Result<SegmentReader, ReadError> {
        let mut file = File::open(&segment.path).map_err(segment_error(&segment.path))?;
        let (offset, mut seq) = if from > segment.first {
            bisect(&mut file, segment.first, from).map_err(segment_error(&segment.path))?
        } else {
            (0, segment.first)
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(segment_error(&segment.path))?;
        let mut file = BufReader::with_capacity(1 << 16, file);
        while seq < from {
            let skipped = file
                .skip_until(b'\n')
                .map_err(segment_error(&segment.path))?;
            if skipped == 0 {
                break;
            }
            seq += 1;
        }
        Ok(SegmentReader {
            path: segment.path.clone(),
            file,
            seq,
            last: segment.last,
            line: Vec::new(),
        })
    }

    fn next_line(&mut self) -> Result<Option<StoredEntry>, ReadError> {
        if self.seq > self.last {
            return Ok(None);
        }
        self.line.clear();
        let read = self
            .file
            .read_until(b'\n', &mut self.line)
            .map_err(segment_error(&self.path))?;
        if read == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        let seq = self.seq;
        self.seq += 1;
        Ok(Some((seq, std::mem::take(&mut self.line))))
    }
}

/// Below this many bytes left to search, [`bisect`] stops and lines are
/// skipped.
const BISECT_SPAN: u64 = 1 << 16;

/// The start of a line at or before entry `target`'s, and that line's
/// entry: `(0, first)` when no probe helps.
fn bisect(file: &mut File, first: u64, target: u64) -> std::io::Result<(u64, u64)> {
    let len = file.metadata()?.len();
    let (mut lo, mut lo_seq) = (0u64, first);
    let mut hi = len;
    while hi - lo > BISECT_SPAN {
        let mid = lo + (hi - lo) / 2;
        match probe(file, mid)? {
            Some((start, seq)) if seq <= target && seq >= lo_seq && start < hi => {
                (lo, lo_seq) = (start, seq);
            }
            Some((_, seq)) if seq > target => hi = mid,
            None => hi = mid,
            // Out of order: not a segment bisection can trust.
            Some(_) => return Ok((0, first)),
        }
    }
    Ok((lo, lo_seq))
}

/// The first whole line starting after byte `at`: where it starts and the
/// `seq` it holds; `None` past the last line or when it has no `seq`.
fn probe(file: &mut File, at: u64) -> std::io::Result<Option<(u64, u64)>> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    file.seek(SeekFrom::Start(at))?;
    let mut reader = BufReader::with_capacity(1 << 14, &mut *file);
    let skipped = reader.skip_until(b'\n')?;
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    let start = at + skipped as u64;
    Ok(
        serde_json::from_slice::<Seq>(line.strip_suffix(b"\n").unwrap_or(&line))
            .ok()
            .map(|s| (start, s.seq)),
    )
}

/// See [`Chain::backward`].
pub struct Backward {
    live: Option<sled::Iter>,
    /// Segments not read yet, oldest first (read from the end).
    segments: Vec<Segment>,
    /// The segment being walked, oldest entry first (popped from the end).
    current: Vec<StoredEntry>,
}

impl Backward {
    fn step(&mut self) -> Result<Option<StoredEntry>, ReadError> {
        if let Some(live) = &mut self.live {
            match live.next_back() {
                Some(item) => {
                    let (k, bytes) = item.map_err(StoreError::from)?;
                    let seq = seq_of_key(&k).ok_or_else(|| ReadError::ForeignKey(k.to_vec()))?;
                    return Ok(Some((seq, bytes.to_vec())));
                }
                None => self.live = None,
            }
        }
        loop {
            if let Some(entry) = self.current.pop() {
                return Ok(Some(entry));
            }
            let Some(segment) = self.segments.pop() else {
                return Ok(None);
            };
            let mut reader = SegmentReader::open(&segment, segment.first)?;
            while let Some(entry) = reader.next_line()? {
                self.current.push(entry);
            }
        }
    }
}

impl Iterator for Backward {
    type Item = Result<StoredEntry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// The writer's side of sealing: when a segment's worth of entries (and
/// [`SEAL_SLACK`]) is unsealed, a background thread writes the oldest segment's
/// file (reading the tree, off the writer thread, so appends do not wait
/// for it). The sealed entries then leave the tree a few at a time, in the
/// writer's own batches ([`Sealer::forgettable`]): measured on sled 0.34,
/// removing a segment's keys in one batch left hundreds of MiB resident,
/// removing them alongside the inserts keeps memory flat.
pub struct Sealer {
    tx: Option<mpsc::SyncSender<Seal>>,
    /// One past the last sealed entry (0: none sealed yet).
    sealed_end: Arc<AtomicU64>,
    busy: Arc<AtomicBool>,
    /// No new seal before this (after a failure).
    paused_until: Arc<std::sync::Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Starts the thread. Also returns the first entry still in the tree
    /// (where the writer's removals start: entries a crash left both in a
    /// segment and in the tree leave it like any other sealed entry).
    pub fn start(store: &Store, tree: &sled::Tree) -> Result<(Sealer, u64), String> {
        let archive = Archive::of(store);
        let sealed_end = archive
            .last_sealed()
            .map_err(|e| e.to_string())?
            .map_or(0, |last| last.saturating_add(1));
        let first_in_tree = tree
            .first()
            .map_err(|e| e.to_string())?
            .and_then(|(k, _)| seq_of_key(&k))
            .unwrap_or(sealed_end);
        let sealed_end = Arc::new(AtomicU64::new(sealed_end));
        let busy = Arc::new(AtomicBool::new(false));
        let paused_until = Arc::new(std::sync::Mutex::new(None));
        let (tx, rx) = mpsc::sync_channel::<Seal>(1);
        let thread = {
            let (store, tree) = (store.clone(), tree.clone());
            let (sealed_end, busy) = (Arc::clone(&sealed_end), Arc::clone(&busy));
            let paused_until = Arc::clone(&paused_until);
            std::thread::Builder::new()
                .name("leash-audit-seal".into())
                .spawn(move || {
                    for Seal { first, last, floor } in rx {
                        let sealed = room_for_a_segment(&store, floor)
                            .and_then(|()| archive.seal(&tree, first, last));
                        match sealed {
                            Ok(segment) => {
                                sealed_end.store(last + 1, Ordering::SeqCst);
                                tracing::debug!(first, last, path = %segment.path.display(), "audit entries sealed");
                            }
                            Err(error) => {
                                tracing::error!(%error, first, last, "cannot seal audit entries into a segment; they stay in the database (memory grows) and sealing is tried again in a minute");
                                *paused_until.lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(Instant::now() + RETRY_AFTER);
                            }
                        }
                        busy.store(false, Ordering::SeqCst);
                    }
                })
                .map_err(|e| format!("cannot start the audit sealing thread: {e}"))?
        };
        let sealer = Sealer {
            tx: Some(tx),
            sealed_end,
            busy,
            paused_until,
            thread: Some(thread),
        };
        Ok((sealer, first_in_tree))
    }

    /// The entries from `from` on that are sealed and may leave the tree
    /// with the next batch: at most `at_most` of them.
    pub fn forgettable(&self, from: u64, at_most: u64) -> std::ops::Range<u64> {
        let end = self.sealed_end.load(Ordering::SeqCst);
        from..end.min(from.saturating_add(at_most)).max(from)
    }

    /// Called after each write: seals the oldest unsealed `segment`
    /// entries once [`SEAL_SLACK`] more are unsealed (`0`: never).
    /// `floor` is `audit.min_free_space`: a seal is not started with less
    /// than that and [`SEAL_ROOM`] free.
    pub fn after_write(&self, next_seq: u64, segment: u64, floor: u64) {
        if segment == 0 || self.busy.load(Ordering::SeqCst) {
            return;
        }
        let first = self.sealed_end.load(Ordering::SeqCst);
        let threshold = segment.saturating_add(SEAL_SLACK.min(segment));
        if next_seq.saturating_sub(first) < threshold {
            return;
        }
        {
            let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            match *paused {
                Some(until) if Instant::now() < until => return,
                _ => *paused = None,
            }
        }
        let Some(tx) = &self.tx else { return };
        self.busy.store(true, Ordering::SeqCst);
        let seal = Seal {
            first,
            last: first + segment - 1,
            floor,
        };
        if tx.try_send(seal).is_err() {
            self.busy.store(false, Ordering::SeqCst);
        }
    }
}

/// One seal for the sealing thread to do.
struct Seal {
    first: u64,
    last: u64,
    floor: u64,
}

/// Room a seal wants beyond `audit.min_free_space` (a segment of large
/// decisions, and some): sealing must never be what fills the disk the
/// floor protects.
pub const SEAL_ROOM: u64 = 256 * 1024 * 1024;

fn room_for_a_segment(store: &Store, floor: u64) -> Result<(), String> {
    if floor == 0 {
        return Ok(());
    }
    let free = store
        .available_space()
        .map_err(|e| format!("cannot read the free space: {e}"))?;
    if free < floor.saturating_add(SEAL_ROOM) {
        return Err(format!(
            "only {} MiB free, under audit.min_free_space and {} MiB for the segment",
            free / (1024 * 1024),
            SEAL_ROOM / (1024 * 1024)
        ));
    }
    Ok(())
}

impl Drop for Sealer {
    /// Lets a running seal finish (its file and the tree agree either way,
    /// but a reopen in this process should find the thread gone).
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        read_entries, reservations_named_since, verify, AuditLog, CheckpointPolicy,
    };
    use crate::audit::{NewEntry, VerifyError};
    use serde_json::json;

    const SEGMENT: u64 = 8;

    fn open(dir: &Path) -> (Store, AuditLog) {
        let store = Store::open(&dir.join("data")).unwrap();
        let log = open_log(&store, dir);
        (store, log)
    }

    fn open_log(store: &Store, dir: &Path) -> AuditLog {
        let log = AuditLog::open(
            store,
            &dir.join("certs/leash-audit.key"),
            CheckpointPolicy {
                every_entries: 5,
                every: Duration::ZERO,
            },
            dir.join("data/checkpoint"),
        )
        .unwrap();
        log.set_segment_entries(SEGMENT);
        log
    }

    /// A log that seals nothing itself (the test seals by hand), with the
    /// default checkpoints.
    fn unsealed_log(store: &Store, dir: &Path) -> AuditLog {
        let log = AuditLog::open(
            store,
            &dir.join("certs/leash-audit.key"),
            CheckpointPolicy::default(),
            dir.join("data/checkpoint"),
        )
        .unwrap();
        log.set_segment_entries(0);
        log
    }

    /// Appends `n` decisions naming reservations `base..base + n`.
    async fn append(log: &AuditLog, base: u64, n: u64) {
        for id in base..base + n {
            let entry =
                NewEntry::outcome("agent", Some(200)).with_detail("reservation", json!([id]));
            log.append(entry).await.unwrap();
        }
    }

    /// Appends entries naming no reservation until every sealed entry has
    /// left the tree (they leave with the writer's batches) and fewer than
    /// a seal's threshold are unsealed. The test harness bounds the wait.
    async fn sealed(store: &Store, log: &AuditLog) -> Vec<Segment> {
        let tree = store.tree(TREE).unwrap();
        loop {
            let segments = Archive::of(store).segments().unwrap();
            let sealed_end = segments.last().map_or(0, |s| s.last + 1);
            let first = tree.first().unwrap().and_then(|(k, _)| seq_of_key(&k));
            if first == Some(sealed_end) && log.entries() - sealed_end < 2 * SEGMENT {
                return segments;
            }
            log.append(NewEntry::outcome("idle", Some(200)))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn seqs(entries: &[serde_json::Value]) -> Vec<u64> {
        entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
    }

    fn key_of(dir: &Path) -> crate::audit::PublicKey {
        crate::audit::PublicKey::read_file(&crate::audit::public_key_path(
            &dir.join("certs/leash-audit.key"),
        ))
        .unwrap()
    }

    /// The oldest entries leave the tree for segment files, and every
    /// reader still sees one whole chain: pages across the boundary,
    /// `verify`, the tail a restart reads, and a reopened writer.
    #[tokio::test]
    async fn sealed_entries_leave_the_database_and_stay_in_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = open(dir.path());
        append(&log, 0, 40).await;
        let segments = sealed(&store, &log).await;
        let entries = log.entries();
        assert!(segments.len() >= 2, "{segments:?}");
        let mut expected = 0;
        for segment in &segments {
            assert_eq!(segment.first, expected);
            assert_eq!(segment.last - segment.first + 1, SEGMENT);
            expected = segment.last + 1;
        }
        let tree = store.tree(TREE).unwrap();
        assert_eq!(
            tree.first().unwrap().and_then(|(k, _)| seq_of_key(&k)),
            Some(expected),
            "sealed entries are no longer in the tree"
        );

        let all = read_entries(&store, None, 1000).unwrap();
        assert_eq!(seqs(&all), (0..entries).collect::<Vec<_>>());
        let page = read_entries(&store, Some(SEGMENT - 2), 4).unwrap();
        assert_eq!(seqs(&page), (SEGMENT - 1..SEGMENT + 3).collect::<Vec<_>>());
        let tail = reservations_named_since(&store, chrono::DateTime::UNIX_EPOCH).unwrap();
        assert_eq!(tail.reservations, (0..40).collect());
        assert!(tail.complete);
        drop(log);

        let report = verify(&store, &key_of(dir.path()), None).unwrap();
        let count = read_entries(&store, None, 1000).unwrap().len() as u64;
        assert!(report.entries >= entries);
        assert_eq!(report.entries, count);

        let log = open_log(&store, dir.path());
        assert_eq!(log.entries(), count);
        let next = log
            .append(NewEntry::outcome("agent", Some(200)))
            .await
            .unwrap();
        assert_eq!(next.seq, count, "the reopened writer continues the chain");
        drop(log);
        verify(&store, &key_of(dir.path()), None).unwrap();
    }

    /// A segment is part of the evidence: a changed line and a missing
    /// file are reported by `verify` at the entry concerned.
    #[tokio::test]
    async fn verify_names_a_changed_or_missing_segment_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = open(dir.path());
        append(&log, 0, 40).await;
        let segments = sealed(&store, &log).await;
        drop(log);
        let key = key_of(dir.path());

        let second = &segments[1];
        let original = std::fs::read_to_string(&second.path).unwrap();
        let changed = original.replacen("\"upstream_status\":200", "\"upstream_status\":201", 1);
        assert_ne!(changed, original);
        std::fs::write(&second.path, &changed).unwrap();
        let error = verify(&store, &key, None).unwrap_err();
        assert!(
            matches!(error, VerifyError::Changed { seq, .. } if seq == second.first),
            "{error}"
        );

        std::fs::remove_file(&second.path).unwrap();
        let error = verify(&store, &key, None).unwrap_err();
        assert!(
            matches!(error, VerifyError::Missing { seq, .. } if seq == second.first),
            "{error}"
        );
    }

    /// A crash after a segment was renamed into place but before its
    /// entries left the tree: readers see each entry once, and the next
    /// open removes the copies.
    #[tokio::test]
    async fn an_entry_in_a_segment_and_the_tree_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let log = unsealed_log(&store, dir.path());
        append(&log, 0, 12).await;
        drop(log);
        let tree = store.tree(TREE).unwrap();
        Archive::of(&store).seal(&tree, 0, 5).unwrap();
        assert_eq!(tree.len(), 13, "still in the tree too");
        assert_eq!(
            Sealer::start(&store, &tree).unwrap().1,
            0,
            "the writer removes them"
        );

        let all = read_entries(&store, None, 100).unwrap();
        assert_eq!(seqs(&all), (0..13).collect::<Vec<_>>());
        verify(&store, &key_of(dir.path()), None).unwrap();

        let log = open_log(&store, dir.path());
        log.append(NewEntry::outcome("agent", Some(200)))
            .await
            .unwrap();
        assert_eq!(
            tree.first().unwrap().and_then(|(k, _)| seq_of_key(&k)),
            Some(6),
            "the next batch took the sealed copies out"
        );
        drop(log);
        verify(&store, &key_of(dir.path()), None).unwrap();
    }

    /// A read that started before a seal finds the entries that left the
    /// tree under it in their segment.
    #[tokio::test]
    async fn a_read_running_while_entries_are_sealed_misses_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let log = unsealed_log(&store, dir.path());
        append(&log, 0, 3000).await;
        let chain = Chain::open(&store).unwrap();
        let mut read = chain.forward(0);
        let first: Vec<u64> = read.by_ref().take(2).map(|e| e.unwrap().0).collect();
        assert_eq!(first, [0, 1]);
        let tree = store.tree(TREE).unwrap();
        Archive::of(&store).seal(&tree, 0, 2499).unwrap();
        forget_sealed(&tree, 2499).unwrap();
        let rest: Vec<u64> = read.map(|e| e.unwrap().0).collect();
        assert_eq!(rest, (2..log.entries()).collect::<Vec<_>>());

        // Pages inside the large segment are found by bisection.
        let page_at = |from: u64| {
            let page = read_entries(&store, from.checked_sub(1), 2).unwrap();
            seqs(&page)
        };
        for from in [0, 1, 17, 1234, 2000, 2498, 2499, 2500, 2501] {
            assert_eq!(page_at(from), [from, from + 1], "page from {from}");
        }
        // A line a probe cannot read does not misplace a page.
        let segment = &Archive::of(&store).segments().unwrap()[0];
        let text = std::fs::read_to_string(&segment.path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for n in [600, 1250, 1251, 1875] {
            lines[n] = "damaged".to_string();
        }
        std::fs::write(&segment.path, lines.join("\n") + "\n").unwrap();
        for from in [1000, 1252, 1500, 2400] {
            assert_eq!(page_at(from), [from, from + 1], "page from {from}");
        }
    }

    #[test]
    fn segment_names_parse_back_and_others_are_ignored() {
        assert_eq!(parse_name(&segment_name(0, 65_535)), Some((0, 65_535)));
        assert_eq!(
            parse_name(&segment_name(u64::MAX - 1, u64::MAX)),
            Some((u64::MAX - 1, u64::MAX))
        );
        assert_eq!(
            parse_name("chain-00000000000000000000-00000000000000000009.jsonl.partial"),
            None
        );
        assert_eq!(parse_name("chain-1-9.jsonl"), None);
        assert_eq!(parse_name(&segment_name(9, 1)), None);
    }

    mod reader {
        use super::super::*;
        use proptest::prelude::*;

        fn segment_of(dir: &Path, first: u64, lines: &[Vec<u8>]) -> Segment {
            let last = first + lines.len().max(1) as u64 - 1;
            let path = dir.join(segment_name(first, last));
            let mut bytes = Vec::new();
            for line in lines {
                bytes.extend_from_slice(line);
                bytes.push(b'\n');
            }
            std::fs::write(&path, bytes).unwrap();
            Segment { first, last, path }
        }

        fn read_from(segment: &Segment, from: u64) -> Vec<StoredEntry> {
            let mut reader = SegmentReader::open(segment, from).unwrap();
            let mut out = Vec::new();
            while let Some(entry) = reader.next_line().unwrap() {
                out.push(entry);
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Any bytes at all: a reader positions, reads and ends
            /// without panicking, in order, never past the segment.
            #[test]
            fn any_file_reads_in_order_and_ends(
                bytes in proptest::collection::vec(
                    prop_oneof![Just(b'\n'), any::<u8>(), Just(b'{')], 0..3000),
                first in 0u64..1000,
                span in 0u64..50,
                from_offset in 0u64..60,
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(segment_name(first, first + span));
                std::fs::write(&path, &bytes).unwrap();
                let segment = Segment { first, last: first + span, path };
                let from = first + from_offset;
                let read = read_from(&segment, from);
                prop_assert!(read.len() as u64 <= span + 1);
                for pair in read.windows(2) {
                    prop_assert_eq!(pair[1].0, pair[0].0 + 1);
                }
                if let Some((seq, _)) = read.last() {
                    prop_assert!(*seq <= first + span);
                }
            }

            /// A segment of entries of any lengths, some lines damaged:
            /// a read from any entry starts exactly there.
            #[test]
            fn a_read_from_any_entry_starts_there(
                pads in proptest::collection::vec(0usize..3000, 1..300),
                damaged in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
                first in 0u64..1_000_000,
                from in any::<prop::sample::Index>(),
            ) {
                let mut lines: Vec<Vec<u8>> = pads
                    .iter()
                    .enumerate()
                    .map(|(i, pad)| {
                        format!("{{\"pad\":\"{}\",\"seq\":{}}}", "x".repeat(*pad), first + i as u64)
                            .into_bytes()
                    })
                    .collect();
                for d in &damaged {
                    let at = d.index(lines.len());
                    lines[at] = b"damaged, no seq".to_vec();
                }
                let dir = tempfile::tempdir().unwrap();
                let segment = segment_of(dir.path(), first, &lines);
                let at = from.index(lines.len());
                let read = read_from(&segment, first + at as u64);
                prop_assert_eq!(read.len(), lines.len() - at);
                prop_assert_eq!(read[0].0, first + at as u64);
                prop_assert_eq!(&read[0].1, &lines[at]);
            }
        }
    }
}
