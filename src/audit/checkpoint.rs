//! Signed checkpoints of the chain head, and the key that signs them.
//!
//! A hash chain alone proves order and integrity, but not completeness:
//! whoever can write the database can cut entries off the end (or rewrite
//! the tail and re-hash it) and the rest still verifies. Certificate
//! Transparency's answer is a signed tree head that leaves the machine; this
//! is the same idea for a linear chain. Every so often the log signs
//! `(seq, hash, time)` of its head with an Ed25519 key kept beside the CA
//! key, records the signature as a `checkpoint` entry, and writes it as a
//! small text note (`data_dir/checkpoint`) that webhooks carry off-box. A
//! verifier holding an old note can prove that the chain still reaches that
//! entry with that hash.
//!
//! The signed bytes are exactly
//!
//! ```text
//! leash-checkpoint-v1\n{seq}\n{hash as 64 lowercase hex}\n{time, RFC 3339}\n
//! ```
//!
//! so anyone can check a note with stock tools:
//! `openssl pkeyutl -verify -pubin -inkey leash-audit.pub -rawin -in signed.txt -sigfile sig.bin`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::entry::{parse_hash, Hash};
use super::AuditError;
use crate::keyfile::pem;

/// The first line of the signed bytes and of the note: the format version.
pub const CHECKPOINT_FORMAT: &str = "leash-checkpoint-v1";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte
/// key follows it.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An Ed25519 public key that checkpoints are verified against.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a key from its base64 form (as in a checkpoint note).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| format!("public key is not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("public key has {} bytes, not 32", b.len()))?;
        Ok(Self(bytes))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Reads `certs/leash-audit.pub` (PEM SubjectPublicKeyInfo, as written
    /// by [`AuditLog::open`](super::AuditLog::open) and by
    /// `openssl pkey -pubout`), or a file holding the bare base64 key.
    pub fn read_file(path: &Path) -> Result<Self, AuditError> {
        let key_err = |reason: String| AuditError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let text = fs::read_to_string(path).map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if text.contains("-----BEGIN") {
            let der = SubjectPublicKeyInfoDer::from_pem_slice(text.as_bytes())
                .map_err(|e| key_err(format!("not a PEM public key: {e}")))?;
            Self::from_spki(der.as_ref()).map_err(key_err)
        } else {
            Self::from_base64(&text).map_err(key_err)
        }
    }

    fn from_spki(der: &[u8]) -> Result<Self, String> {
        match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Some(key) => key
                .try_into()
                .map(Self)
                .map_err(|_| "not an Ed25519 public key".to_string()),
            None => Err("not an Ed25519 public key".to_string()),
        }
    }

    /// The key as a PEM SubjectPublicKeyInfo (what `openssl` reads).
    pub fn to_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// A short name for the key: the first 8 bytes of its SHA-256, in hex.
    /// Recorded in every checkpoint so that a rotated key is named, not
    /// mistaken for a forgery.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0);
        hex::encode(&digest[..8])
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// The log's signing key.
pub(crate) struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    /// Names the key, never shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public.key_id())
    }
}

impl SigningKey {
    pub(crate) fn public(&self) -> PublicKey {
        self.public
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// Loads the key at `path`, or creates it (mode 0600) and its public
    /// half beside it when neither exists.
    ///
    /// Like the CA key, an existing key is never overwritten: checkpoints
    /// already copied off-box name it. A public key file without its private
    /// key is refused rather than silently replaced, since whoever kept the
    /// public key will verify future checkpoints with it.
    pub(crate) fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let pub_path = public_key_path(path);
        let key_err = |reason: String| AuditError::Key {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            if pub_path.exists() {
                return Err(key_err(format!(
                    "missing, but its public key {} exists: restore the signing key, or move the public key away to start a new one (checkpoints signed so far will then only verify with the old public key)",
                    pub_path.display()
                )));
            }
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| key_err("cannot generate an Ed25519 key".into()))?;
            let der = pkcs8_v1(pkcs8.as_ref()).unwrap_or_else(|| pkcs8.as_ref().to_vec());
            write_new(path, pem("PRIVATE KEY", &der).as_bytes(), 0o600)?;
            tracing::info!(path = %path.display(), "created the audit signing key");
        }
        let text = fs::read(path).map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&text)
            .map_err(|e| key_err(format!("not a PEM PKCS#8 private key: {e}")))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| key_err(format!("not an Ed25519 key: {e}")))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        let public = PublicKey(public);
        warn_if_readable_by_others(path);

        if pub_path.exists() {
            let on_disk = PublicKey::read_file(&pub_path)?;
            if on_disk != public {
                return Err(AuditError::Key {
                    path: pub_path,
                    reason: format!(
                        "is the public key {}, but the signing key {} has public key {}",
                        on_disk.key_id(),
                        path.display(),
                        public.key_id()
                    ),
                });
            }
        } else {
            write_new(&pub_path, public.to_pem().as_bytes(), 0o644)?;
        }
        Ok(Self { pair, public })
    }
}

/// The DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410); the
/// 32-byte seed follows it.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// ring's PKCS#8 v2 document after its outer SEQUENCE header: version 1,
/// the algorithm, the seed (then the public key, which v1 leaves out).
const ED25519_PKCS8_V2_BODY: [u8; 14] = [
    0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Rewrites ring's PKCS#8 v2 key as the v1 form of RFC 8410, which is what
/// `openssl genpkey -algorithm ed25519` writes and every tool reads (OpenSSL
/// 3 refuses ring's v2 documents). `None` if the layout is not the expected
/// one, in which case the v2 document is kept as is.
fn pkcs8_v1(v2: &[u8]) -> Option<Vec<u8>> {
    let body = match v2 {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() => body,
        _ => return None,
    };
    let seed = body.strip_prefix(&ED25519_PKCS8_V2_BODY[..])?.get(..32)?;
    let mut v1 = ED25519_PKCS8_V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    Some(v1)
}

/// Where the public half of `signing_key_path` lives: beside it, `.pub`.
pub fn public_key_path(signing_key_path: &Path) -> PathBuf {
    signing_key_path.with_extension("pub")
}

/// A signed statement that entry `seq` of the chain had hash `hash` at
/// `time`. Serializable as it travels in webhooks; [`Checkpoint::to_note`]
/// and [`parse_checkpoint_file`] are its text form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The sequence number of the head entry signed.
    pub seq: u64,
    /// Its hash, 64 lowercase hex digits.
    pub hash: String,
    /// When it was signed, RFC 3339 UTC (also the checkpoint entry's `at`).
    pub time: String,
    /// [`PublicKey::key_id`] of the signing key.
    pub key_id: String,
    /// The signing public key, base64 of the 32 raw bytes.
    pub public_key: String,
    /// The Ed25519 signature of [`Checkpoint::signed_bytes`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// Signs the head `(seq, hash)` at `time`.
    pub(crate) fn sign(key: &SigningKey, seq: u64, hash: &Hash, time: String) -> Self {
        let hash = hex::encode(hash);
        let signature = key.sign(&signed_bytes(seq, &hash, &time));
        let public = key.public();
        Self {
            seq,
            hash,
            time,
            key_id: public.key_id(),
            public_key: public.to_base64(),
            signature: B64.encode(signature),
        }
    }

    /// The exact bytes the signature covers (see the module documentation).
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(self.seq, &self.hash, &self.time)
    }

    /// Checks the signature against `trusted` — never against the key the
    /// checkpoint carries, which anyone could replace along with the
    /// signature.
    pub fn verify_signature(&self, trusted: &PublicKey) -> Result<(), String> {
        if self.key_id != trusted.key_id() || self.public_key != trusted.to_base64() {
            return Err(format!(
                "signed by key {}, not by the trusted key {}",
                self.key_id,
                trusted.key_id()
            ));
        }
        let signature = B64
            .decode(&self.signature)
            .map_err(|e| format!("signature is not base64: {e}"))?;
        if trusted.verifies(&self.signed_bytes(), &signature) {
            Ok(())
        } else {
            Err("the signature does not match its seq, hash and time".to_string())
        }
    }

    /// The head hash as bytes, if it is well-formed.
    pub(crate) fn hash_bytes(&self) -> Option<Hash> {
        parse_hash(&self.hash)
    }

    /// The text note written to `data_dir/checkpoint`: small, line-based,
    /// self-describing, meant to be copied off the machine.
    pub fn to_note(&self) -> String {
        format!(
            "{CHECKPOINT_FORMAT}\n\
             # leash audit checkpoint: entry {seq} of the chain had hash {hash} at {time}.\n\
             # Signature: Ed25519 over \"{CHECKPOINT_FORMAT}\\n<seq>\\n<hash>\\n<time>\\n\".\n\
             # Keep a copy off this machine; `leash audit verify --checkpoint FILE` checks the chain against it.\n\
             seq: {seq}\n\
             hash: {hash}\n\
             time: {time}\n\
             key_id: {key_id}\n\
             public_key: {public_key}\n\
             signature: {signature}\n",
            seq = self.seq,
            hash = self.hash,
            time = self.time,
            key_id = self.key_id,
            public_key = self.public_key,
            signature = self.signature,
        )
    }
}

fn signed_bytes(seq: u64, hash_hex: &str, time: &str) -> Vec<u8> {
    format!("{CHECKPOINT_FORMAT}\n{seq}\n{hash_hex}\n{time}\n").into_bytes()
}

/// Why a checkpoint note could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint note, line {line}: {reason}")]
pub struct CheckpointParseError {
    pub line: usize,
    pub reason: String,
}

/// Reads a checkpoint note (a copy of `data_dir/checkpoint`). Comment lines
/// (`#`) and blank lines are ignored; every field must appear exactly once.
/// The signature is not checked here: that needs a trusted key
/// ([`Checkpoint::verify_signature`], or [`verify`](super::verify)).
pub fn parse_checkpoint_file(text: &str) -> Result<Checkpoint, CheckpointParseError> {
    let err = |line: usize, reason: String| CheckpointParseError { line, reason };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, CHECKPOINT_FORMAT)) => {}
        Some((n, other)) => {
            return Err(err(
                n,
                format!("expected the format line {CHECKPOINT_FORMAT:?}, found {other:?}"),
            ))
        }
        None => return Err(err(1, "empty".into())),
    }
    let mut fields: [Option<String>; 6] = Default::default();
    const NAMES: [&str; 6] = ["seq", "hash", "time", "key_id", "public_key", "signature"];
    for (n, line) in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(err(n, format!("expected `name: value`, found {line:?}")));
        };
        let Some(slot) = NAMES.iter().position(|&f| f == name.trim()) else {
            return Err(err(n, format!("unknown field {:?}", name.trim())));
        };
        if fields[slot].is_some() {
            return Err(err(n, format!("{} appears twice", NAMES[slot])));
        }
        fields[slot] = Some(value.trim().to_string());
    }
    let [seq, hash, time, key_id, public_key, signature] = fields;
    let last = text.lines().count().max(1);
    let need =
        |v: Option<String>, name: &str| v.ok_or_else(|| err(last, format!("{name} is missing")));
    let seq_text = need(seq, "seq")?;
    let checkpoint = Checkpoint {
        seq: seq_text
            .parse()
            .map_err(|_| err(last, format!("seq {seq_text:?} is not a number")))?,
        hash: need(hash, "hash")?,
        time: need(time, "time")?,
        key_id: need(key_id, "key_id")?,
        public_key: need(public_key, "public_key")?,
        signature: need(signature, "signature")?,
    };
    if checkpoint.hash_bytes().is_none() {
        return Err(err(last, "hash is not 64 lowercase hex digits".into()));
    }
    if chrono::DateTime::parse_from_rfc3339(&checkpoint.time).is_err() {
        return Err(err(
            last,
            format!("time {:?} is not RFC 3339", checkpoint.time),
        ));
    }
    PublicKey::from_base64(&checkpoint.public_key).map_err(|e| err(last, e))?;
    Ok(checkpoint)
}

/// Writes the note atomically (temporary file, fsync, rename), so a crash
/// leaves the old note or the new one, never half of one.
pub(crate) fn write_note(path: &Path, checkpoint: &Checkpoint) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(checkpoint.to_note().as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the rename itself durable; not every platform can open a
        // directory, and the note is re-derived from the chain on open.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Creates `path` (which must not exist) with `mode` set at creation.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuditError> {
    crate::keyfile::create_new(path, bytes, mode).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the audit signing key is readable by other users; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certs/leash-audit.key");
        let first = SigningKey::load_or_create(&path).unwrap().public();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // PKCS#8 v1 (RFC 8410), as `openssl genpkey -algorithm ed25519` writes.
        let pem_text = fs::read_to_string(&path).unwrap();
        assert!(
            pem_text.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAw"),
            "{pem_text}"
        );
        let again = SigningKey::load_or_create(&path).unwrap().public();
        assert_eq!(first, again);
        assert_eq!(
            PublicKey::read_file(&public_key_path(&path)).unwrap(),
            first
        );

        fs::remove_file(&path).unwrap();
        let err = SigningKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("restore the signing key"), "{err}");
    }

    #[test]
    fn note_round_trips_and_signature_binds_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(&dir.path().join("k.key")).unwrap();
        let cp = Checkpoint::sign(&key, 41, &[7u8; 32], "2025-06-01T12:00:00.000000Z".into());
        let parsed = parse_checkpoint_file(&cp.to_note()).unwrap();
        assert_eq!(parsed, cp);
        assert!(parsed.verify_signature(&key.public()).is_ok());
        assert_eq!(
            cp.signed_bytes(),
            format!(
                "leash-checkpoint-v1\n41\n{}\n2025-06-01T12:00:00.000000Z\n",
                "07".repeat(32)
            )
            .into_bytes()
        );

        let mut moved = cp.clone();
        moved.seq = 40;
        assert!(moved.verify_signature(&key.public()).is_err());
        let other = SigningKey::load_or_create(&dir.path().join("other.key")).unwrap();
        let err = cp.verify_signature(&other.public()).unwrap_err();
        assert!(err.contains("not by the trusted key"), "{err}");
    }

    #[test]
    fn bad_notes_name_the_problem() {
        assert!(parse_checkpoint_file("").is_err());
        let err = parse_checkpoint_file("leash-checkpoint-v1\nseq: 1\n").unwrap_err();
        assert!(err.reason.contains("hash is missing"), "{err}");
        let err = parse_checkpoint_file("leash-checkpoint-v1\nseq: x\nseq: 2\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = parse_checkpoint_file("v2\n").unwrap_err();
        assert!(err.reason.contains("format line"), "{err}");
    }
}
