//! Verifying a chain: what `leash audit verify` runs.
//!
//! The walk checks, entry by entry in key order, everything a tamperer could
//! touch, and stops at the first problem, because the first entry that is
//! wrong is what an investigation needs (everything after it is suspect
//! anyway):
//!
//! 1. keys are `0, 1, 2, …` with no gap (a removed entry is named);
//! 2. the entry is readable, with exactly the members leash writes;
//! 3. its `seq` equals its key (moved or swapped entries are named);
//! 4. its content hashes to its recorded `hash` (an edited entry);
//! 5. its `prev_hash` is the previous entry's hash (an entry rewritten
//!    together with its own hash, or a splice);
//! 6. its bytes are the canonical form (nothing smuggled in duplicate keys
//!    or whitespace that one JSON reader would see and another not);
//! 7. a checkpoint entry's signature verifies with the trusted key, and the
//!    head it signs is the entry just before it.
//!
//! Finally, an external checkpoint (a copy of `data_dir/checkpoint` kept
//! elsewhere) must be reached with the same hash: that is what detects a
//! tail cut off together with its checkpoints, which no check inside the
//! chain can see.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::archive::{Chain, ReadError};
use super::canonical::{self, utf16_order, write_string, write_value};
use super::checkpoint::{Checkpoint, PublicKey};
use super::entry::{parse_hash, recompute_hash, Hash, Kind, GENESIS, MEMBERS};
use crate::store::{Store, StoreError};

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many entries the chain has (checkpoints included).
    pub entries: u64,
    /// The last entry's hash; `None` for an empty chain.
    pub head_hash: Option<String>,
    /// How many checkpoint entries were checked.
    pub checkpoints_checked: u64,
    /// The sequence number of the last entry a checkpoint in the chain signs.
    pub last_signed_seq: Option<u64>,
    /// Whether an external checkpoint was given and matched.
    pub external_checked: bool,
}

/// The first thing wrong with a chain, naming the entry and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the database: {0}")]
    Store(#[from] StoreError),
    #[error("the audit tree holds a key that is not a sequence number ({key}): something other than leash wrote to it")]
    ForeignKey { key: String },
    #[error("entry {seq} is missing: {}", missing_context(*seq, *next))]
    Missing { seq: u64, next: u64 },
    #[error("entry {seq} is out of place: the entry stored as {seq} says it is entry {found} (entries were reordered or moved)")]
    Reordered { seq: u64, found: u64 },
    #[error("entry {seq} cannot be read: {reason}")]
    Unreadable { seq: u64, reason: String },
    #[error(
        "entry {seq} was changed: its content no longer hashes to its recorded hash {recorded}"
    )]
    Changed { seq: u64, recorded: String },
    #[error("the chain is broken after entry {seq}: entry {next} records prev_hash {recorded}, but entry {seq} hashes to {actual} (entry {seq} was rewritten together with its hash, entry {next} was, or entries between them were removed)")]
    BrokenLink {
        seq: u64,
        next: u64,
        recorded: String,
        actual: String,
    },
    #[error("entry {seq} was rewritten: its bytes are not the canonical form of its content, although its hash matches")]
    NotCanonical { seq: u64 },
    #[error("checkpoint entry {seq} does not verify: {reason}")]
    BadCheckpoint { seq: u64, reason: String },
    #[error("the external checkpoint does not verify: {0}")]
    BadExternal(String),
    #[error("the chain was cut short: it ends {}, but the external checkpoint signed entry {checkpoint_seq} (entries {first_missing}..={checkpoint_seq} or more were removed)", ends(*entries))]
    CutShort {
        checkpoint_seq: u64,
        entries: u64,
        first_missing: u64,
    },
    #[error("entry {seq} was rewritten: the external checkpoint signed hash {expected} for it, the chain has {found} (the chain was changed at or before entry {seq})")]
    ExternalMismatch {
        seq: u64,
        expected: String,
        found: String,
    },
}

fn missing_context(seq: u64, next: u64) -> String {
    match seq.checked_sub(1) {
        Some(prev) if next == seq + 1 => {
            format!("the chain goes from entry {prev} to entry {next}")
        }
        Some(prev) => format!(
            "the chain goes from entry {prev} to entry {next} (entries {seq}..{next} were removed)"
        ),
        None => format!("the chain starts at entry {next}"),
    }
}

fn ends(entries: u64) -> String {
    match entries.checked_sub(1) {
        Some(last) => format!("at entry {last}"),
        None => "before its first entry (it is empty)".to_string(),
    }
}

impl VerifyError {
    /// The first entry the error is about, if it is about one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::Missing { seq, .. }
            | VerifyError::Reordered { seq, .. }
            | VerifyError::Unreadable { seq, .. }
            | VerifyError::Changed { seq, .. }
            | VerifyError::BrokenLink { seq, .. }
            | VerifyError::NotCanonical { seq }
            | VerifyError::BadCheckpoint { seq, .. }
            | VerifyError::ExternalMismatch { seq, .. } => Some(*seq),
            VerifyError::CutShort { first_missing, .. } => Some(*first_missing),
            VerifyError::Store(_)
            | VerifyError::ForeignKey { .. }
            | VerifyError::BadExternal(_) => None,
        }
    }
}

/// Walks the chain in `store` and checks everything listed in the module
/// documentation. `public_key` is the trusted checkpoint key (a copy of
/// `certs/leash-audit.pub` kept where the database's attacker cannot reach
/// is worth more than the one beside it). `external` is a checkpoint note
/// kept elsewhere (parse it with
/// [`parse_checkpoint_file`](super::parse_checkpoint_file)).
///
/// Reads the database only; run it against a stopped leash or a copy (sled
/// lets one process open a database at a time).
pub fn verify(
    store: &Store,
    public_key: &PublicKey,
    external: Option<&Checkpoint>,
) -> Result<VerifyReport, VerifyError> {
    let mut walk = ChainWalk::new(public_key, external)?;
    let chain = Chain::open(store).map_err(|e| unread(0, e))?;
    for item in chain.forward(0) {
        let (seq, bytes) = item.map_err(|e| unread(walk.next_seq(), e))?;
        walk.stored(seq, &bytes)?;
    }
    walk.finish()
}

/// A read of the chain that failed at entry `seq`.
fn unread(seq: u64, error: ReadError) -> VerifyError {
    match error {
        ReadError::Store(e) => VerifyError::Store(e),
        ReadError::ForeignKey(key) => VerifyError::ForeignKey {
            key: hex::encode(key),
        },
        segment @ ReadError::Segment { .. } => VerifyError::Unreadable {
            seq,
            reason: segment.to_string(),
        },
    }
}

/// The walk of [`verify`], one entry at a time, for chains that do not come
/// from a local database: `leash audit verify --admin` feeds it the pages
/// of a running leash's `GET /v1/audit`.
///
/// An entry read over the API was parsed and written again by the server,
/// so its bytes say nothing (check 6 is skipped for [`ChainWalk::served`]);
/// everything else — order, members, content hash, links, checkpoint
/// signatures, the external checkpoint — is checked as for a database, by
/// the client, with the key it trusts.
pub struct ChainWalk<'k> {
    public_key: &'k PublicKey,
    external: Option<(u64, Hash)>,
    expected: u64,
    prev: Hash,
    checkpoints: u64,
    last_signed: Option<u64>,
}

impl<'k> ChainWalk<'k> {
    /// A walk from the first entry; the external checkpoint's own signature
    /// is checked here.
    pub fn new(
        public_key: &'k PublicKey,
        external: Option<&Checkpoint>,
    ) -> Result<ChainWalk<'k>, VerifyError> {
        let external = match external {
            Some(cp) => {
                cp.verify_signature(public_key)
                    .map_err(VerifyError::BadExternal)?;
                let hash = cp
                    .hash_bytes()
                    .ok_or_else(|| VerifyError::BadExternal("hash is not 64 hex digits".into()))?;
                Some((cp.seq, hash))
            }
            None => None,
        };
        Ok(ChainWalk {
            public_key,
            external,
            expected: 0,
            prev: GENESIS,
            checkpoints: 0,
            last_signed: None,
        })
    }

    /// The entry stored under key `seq`, as its bytes.
    pub fn stored(&mut self, seq: u64, bytes: &[u8]) -> Result<(), VerifyError> {
        self.in_order(seq)?;
        let checked = check_entry(seq, Some(bytes), parse_entry(seq, bytes)?, &self.prev)?;
        self.passed(seq, checked)
    }

    /// The next entry served by a leash's admin API (its `seq` member says
    /// where it belongs).
    pub fn served(&mut self, entry: Value) -> Result<(), VerifyError> {
        let seq =
            entry
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or_else(|| VerifyError::Unreadable {
                    seq: self.expected,
                    reason: "no numeric seq".into(),
                })?;
        self.in_order(seq)?;
        let Value::Object(entry) = entry else {
            return Err(VerifyError::Unreadable {
                seq,
                reason: "not a JSON object".into(),
            });
        };
        let checked = check_entry(seq, None, entry, &self.prev)?;
        self.passed(seq, checked)
    }

    /// The sequence number the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.expected
    }

    fn in_order(&self, seq: u64) -> Result<(), VerifyError> {
        if seq != self.expected {
            return Err(VerifyError::Missing {
                seq: self.expected,
                next: seq,
            });
        }
        Ok(())
    }

    fn passed(&mut self, seq: u64, checked: Checked) -> Result<(), VerifyError> {
        if checked.kind == Kind::Checkpoint {
            self.last_signed = Some(check_checkpoint(
                seq,
                &checked,
                &self.prev,
                self.public_key,
            )?);
            self.checkpoints += 1;
        }
        if let Some((ext_seq, ext_hash)) = self.external {
            if ext_seq == seq && ext_hash != checked.hash {
                return Err(VerifyError::ExternalMismatch {
                    seq,
                    expected: hex::encode(ext_hash),
                    found: hex::encode(checked.hash),
                });
            }
        }
        self.prev = checked.hash;
        self.expected = seq + 1;
        Ok(())
    }

    /// The report, once every entry was given: the external checkpoint must
    /// have been reached.
    pub fn finish(self) -> Result<VerifyReport, VerifyError> {
        if let Some((ext_seq, _)) = self.external {
            if ext_seq >= self.expected {
                return Err(VerifyError::CutShort {
                    checkpoint_seq: ext_seq,
                    entries: self.expected,
                    first_missing: self.expected,
                });
            }
        }
        Ok(VerifyReport {
            entries: self.expected,
            head_hash: (self.expected > 0).then(|| hex::encode(self.prev)),
            checkpoints_checked: self.checkpoints,
            last_signed_seq: self.last_signed,
            external_checked: self.external.is_some(),
        })
    }
}

/// An entry that passed the per-entry checks.
struct Checked {
    kind: Kind,
    hash: Hash,
    entry: Map<String, Value>,
}

fn parse_entry(seq: u64, bytes: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable { seq, reason };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| unreadable(format!("not JSON ({e})")))?;
    match value {
        Value::Object(entry) => Ok(entry),
        _ => Err(unreadable("not a JSON object".into())),
    }
}

/// Checks 2–6 on one entry; `bytes` are its stored bytes when it comes from
/// a database (then they must be its canonical form).
fn check_entry(
    seq: u64,
    bytes: Option<&[u8]>,
    entry: Map<String, Value>,
    prev: &Hash,
) -> Result<Checked, VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable { seq, reason };
    let found = entry
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| unreadable("no numeric seq".into()))?;
    if found != seq {
        return Err(VerifyError::Reordered { seq, found });
    }
    if let Some(member) = MEMBERS.iter().find(|m| !entry.contains_key(**m)) {
        return Err(unreadable(format!("the member {member:?} is missing")));
    }
    if let Some(extra) = entry.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(unreadable(format!("unexpected member {extra:?}")));
    }
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    let recorded_text = text("hash").unwrap_or_default().to_string();
    let recorded = parse_hash(&recorded_text)
        .ok_or_else(|| unreadable("hash is not 64 lowercase hex digits".into()))?;
    let prev_hash = text("prev_hash")
        .and_then(parse_hash)
        .ok_or_else(|| unreadable("prev_hash is not 64 lowercase hex digits".into()))?;
    let kind = text("kind")
        .ok_or_else(|| unreadable("kind is not a string".into()))?
        .parse::<Kind>()
        .map_err(unreadable)?;
    if text("at").is_none_or(|at| chrono::DateTime::parse_from_rfc3339(at).is_err()) {
        return Err(unreadable("at is not an RFC 3339 time".into()));
    }
    if !entry.get("details").is_some_and(Value::is_object) {
        return Err(unreadable("details is not an object".into()));
    }

    // The fast path: canonicalise once, hash the bytes around "hash".
    let (canonical, hash_span) =
        canonical_with_hash_span(&entry).map_err(|e| unreadable(e.to_string()))?;
    // Served entries have no stored bytes: their content is what counts.
    let is_canonical = bytes.is_none_or(|bytes| canonical == bytes);
    let actual = match (is_canonical, hash_span) {
        (true, Some((start, end))) => {
            let mut hasher = Sha256::new();
            hasher.update(prev_hash);
            hasher.update(&canonical[..start]);
            hasher.update(&canonical[end..]);
            hasher.finalize().into()
        }
        _ => recompute_hash(&entry, &prev_hash).map_err(|e| unreadable(e.to_string()))?,
    };
    if actual != recorded {
        return Err(VerifyError::Changed {
            seq,
            recorded: recorded_text,
        });
    }
    if prev_hash != *prev && seq == 0 {
        return Err(VerifyError::Unreadable {
            seq,
            reason: "the first entry's prev_hash is not 32 zero bytes (the chain was spliced)"
                .into(),
        });
    }
    if prev_hash != *prev {
        return Err(VerifyError::BrokenLink {
            seq: seq.saturating_sub(1),
            next: seq,
            recorded: hex::encode(prev_hash),
            actual: hex::encode(prev),
        });
    }
    if !is_canonical {
        return Err(VerifyError::NotCanonical { seq });
    }
    Ok(Checked {
        kind,
        hash: actual,
        entry,
    })
}

/// A byte range `[start, end)`.
type Span = (usize, usize);

/// The canonical bytes of a top-level entry and the byte range of its
/// `"hash":"…",` member, so the hash input is the bytes around it.
fn canonical_with_hash_span(
    entry: &Map<String, Value>,
) -> Result<(Vec<u8>, Option<Span>), canonical::CanonicalError> {
    let mut members: Vec<(&String, &Value)> = entry.iter().collect();
    members.sort_by(|a, b| utf16_order(a.0, b.0));
    let mut out = Vec::with_capacity(1024);
    let mut span = None;
    out.push(b'{');
    let count = members.len();
    for (i, (key, value)) in members.into_iter().enumerate() {
        let start = out.len();
        write_string(key, &mut out);
        out.push(b':');
        write_value(value, &mut out).map_err(|e| e.under(key))?;
        if i + 1 < count {
            out.push(b',');
        }
        if key == "hash" && i + 1 < count {
            span = Some((start, out.len()));
        }
    }
    out.push(b'}');
    Ok((out, span))
}

/// Checks a checkpoint entry; returns the sequence number it signs.
fn check_checkpoint(
    seq: u64,
    checked: &Checked,
    prev: &Hash,
    trusted: &PublicKey,
) -> Result<u64, VerifyError> {
    let bad = |reason: String| VerifyError::BadCheckpoint { seq, reason };
    let signed = checked
        .entry
        .get("details")
        .and_then(|d| d.get("checkpoint"))
        .ok_or_else(|| bad("it carries no checkpoint".into()))?;
    let signed: Checkpoint = serde_json::from_value(signed.clone())
        .map_err(|e| bad(format!("unreadable checkpoint ({e})")))?;
    signed.verify_signature(trusted).map_err(bad)?;
    if Some(signed.seq) != seq.checked_sub(1) {
        return Err(bad(format!(
            "it signs entry {} but must sign the entry before it, {}",
            signed.seq,
            seq.saturating_sub(1)
        )));
    }
    if signed.hash_bytes().as_ref() != Some(prev) {
        return Err(bad(format!(
            "it signed hash {} for entry {}, but the chain has {} there (entries up to {} were rewritten)",
            signed.hash,
            signed.seq,
            hex::encode(prev),
            signed.seq
        )));
    }
    if checked.entry.get("at").and_then(Value::as_str) != Some(signed.time.as_str()) {
        return Err(bad("its time differs from the entry's".into()));
    }
    Ok(signed.seq)
}
