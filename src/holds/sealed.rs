//! The held request itself, sealed at rest.
//!
//! To forward a request after a human approves it, leash must keep it whole:
//! method, target, headers and body — including the `Authorization` header
//! with the agent's API key, and a body that may carry personal data. That
//! is the most sensitive thing leash ever writes to disk, so it is written
//! only encrypted (AES-256-GCM), under a key kept beside the CA key rather
//! than in the database: a copy of `data/` alone (a backup, a support
//! bundle) reveals nothing.
//!
//! Each record is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag`,
//! with a fresh random nonce and the hold id as associated data. Binding the
//! id means a record copied onto another hold does not open: an attacker
//! with write access to the database cannot make hold B forward hold A's
//! request. Opening either authenticates everything or fails — never
//! garbage.
//!
//! The record is deleted as soon as the hold can no longer be forwarded
//! (see [`super::HoldStore`]).

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The key file's name, beside the CA key.
pub const HOLD_KEY_FILE: &str = "leash-holds.key";

/// The one record format so far.
const VERSION: u8 = 1;

/// Where the sealing key lives: beside the CA key, like the audit signing
/// key, so that one directory holds every secret and the data directory
/// none.
pub fn hold_key_path(ca_key: &Path) -> PathBuf {
    ca_key
        .parent()
        .map(|dir| dir.join(HOLD_KEY_FILE))
        .unwrap_or_else(|| PathBuf::from(HOLD_KEY_FILE))
}

/// Why a key could not be loaded or a record not sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// Wrong key, tampered record, or a record for another hold: the
    /// cipher cannot tell these apart, and neither should anyone else.
    #[error("sealed request for {hold_id} does not open (wrong key, or the record was altered)")]
    Open { hold_id: String },
    #[error("sealed request for {hold_id}: {reason}")]
    Format { hold_id: String, reason: String },
    #[error("cannot seal: {0}")]
    Seal(String),
}

/// The AES-256-GCM key that seals held requests.
pub struct HoldKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for HoldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HoldKey(AES-256-GCM, redacted)")
    }
}

impl HoldKey {
    /// A key from raw bytes (tests, or a key kept elsewhere).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SealError::Seal("AES-256-GCM rejected the key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Loads the key at `path` (32 raw bytes), creating it on first use:
    /// 32 bytes from the system CSPRNG, mode 0600, created exclusively.
    ///
    /// An existing file is never overwritten, even a damaged one: a new key
    /// would make every pending hold's request unopenable, so a file of the
    /// wrong size is an error for a human to look at, not something to fix
    /// silently. Two processes creating it at once both end up with the one
    /// that won the exclusive create.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::Io {
            path: path.to_path_buf(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => return Self::from_file_bytes(path, &bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let rng = SystemRandom::new();
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).map_err(|_| SealError::Key {
            path: path.to_path_buf(),
            reason: "the system random generator failed".into(),
        })?;
        match crate::keyfile::create_new(path, &bytes, 0o600) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the hold sealing key");
                Self::from_bytes(&bytes)
            }
            // Someone else created it between our read and our create.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let bytes = fs::read(path).map_err(io)?;
                Self::from_file_bytes(path, &bytes)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self, SealError> {
        let key: &[u8; 32] = bytes.try_into().map_err(|_| SealError::Key {
            path: path.to_path_buf(),
            reason: format!(
                "a hold sealing key is 32 bytes, this file has {}; it is not replaced, since held requests sealed with it would no longer open",
                bytes.len()
            ),
        })?;
        warn_if_readable_by_others(path);
        Self::from_bytes(key)
    }

    /// Seals `request` for hold `hold_id`.
    pub fn seal(&self, hold_id: &str, request: &StoredRequest) -> Result<Vec<u8>, SealError> {
        let mut plain =
            serde_json::to_vec(&Wire::from(request)).map_err(|e| SealError::Seal(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal("the system random generator failed".into()))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(hold_id.as_bytes()),
                &mut plain,
            )
            .map_err(|_| SealError::Seal("AES-256-GCM refused to seal".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plain);
        Ok(out)
    }

    /// Opens a record sealed for `hold_id`: the request, or an error if the
    /// key is wrong or any byte of the record (or the id) differs.
    pub fn open(&self, hold_id: &str, sealed: &[u8]) -> Result<StoredRequest, SealError> {
        let format = |reason: &str| SealError::Format {
            hold_id: hold_id.to_string(),
            reason: reason.to_string(),
        };
        let (&version, rest) = sealed.split_first().ok_or_else(|| format("empty record"))?;
        if version != VERSION {
            return Err(format("unknown record version"));
        }
        if rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(format("record too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| format("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(hold_id.as_bytes()), &mut buffer)
            .map_err(|_| SealError::Open {
                hold_id: hold_id.to_string(),
            })?;
        let wire: Wire = serde_json::from_slice(plain).map_err(|e| SealError::Format {
            hold_id: hold_id.to_string(),
            reason: format!("authenticated but unreadable: {e}"),
        })?;
        wire.into_request().map_err(|reason| SealError::Format {
            hold_id: hold_id.to_string(),
            reason,
        })
    }
}

/// A request as it must be forwarded later. Also what [`super::HoldStore::create`]
/// takes ([`SealedRequestInput`]).
///
/// Its `Debug` never shows header values, the body or the query string:
/// `Authorization` is in the headers, and some APIs (the Graph API's
/// `access_token`) put credentials in the query.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub method: String,
    /// The request target as the upstream sees it: path and query.
    pub path_and_query: String,
    pub host: String,
    pub port: u16,
    /// In order, repeated names kept; values as raw bytes (header values
    /// need not be UTF-8).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// What [`super::HoldStore::create`] seals: the same shape it gives back.
pub type SealedRequestInput = StoredRequest;

impl fmt::Debug for StoredRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path);
        let query = if self.path_and_query.contains('?') {
            "?<redacted>"
        } else {
            ""
        };
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("StoredRequest")
            .field("method", &self.method)
            .field("target", &format_args!("{path}{query}"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("headers", &headers)
            .field(
                "body",
                &format_args!("<{} bytes redacted>", self.body.len()),
            )
            .finish()
    }
}

impl StoredRequest {
    /// The headers as an [`http::HeaderMap`], for forwarding. Fails on a
    /// name or value that HTTP does not allow (which the proxy never
    /// stores, since it read them from an HTTP request).
    pub fn header_map(&self) -> Result<http::HeaderMap, String> {
        let mut map = http::HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = http::HeaderValue::from_bytes(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            map.append(name, value);
        }
        Ok(map)
    }
}

/// The serialized (then sealed) form: binary parts as base64, so the JSON
/// stays compact and lossless.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    method: String,
    path_and_query: String,
    host: String,
    port: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl From<&StoredRequest> for Wire {
    fn from(r: &StoredRequest) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Wire {
            method: r.method.clone(),
            path_and_query: r.path_and_query.clone(),
            host: r.host.clone(),
            port: r.port,
            headers: r
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), b64.encode(value)))
                .collect(),
            body: b64.encode(&r.body),
        }
    }
}

impl Wire {
    fn into_request(self) -> Result<StoredRequest, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let headers = self
            .headers
            .into_iter()
            .map(|(name, value)| {
                b64.decode(value)
                    .map(|v| (name, v))
                    .map_err(|e| format!("header value: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = b64.decode(self.body).map_err(|e| format!("body: {e}"))?;
        Ok(StoredRequest {
            method: self.method,
            path_and_query: self.path_and_query,
            host: self.host,
            port: self.port,
            headers,
            body: Bytes::from(body),
        })
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the hold sealing key is readable by other users; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> StoredRequest {
        StoredRequest {
            method: "POST".into(),
            path_and_query: "/v1/payouts?expand[]=destination".into(),
            host: "api.example.com".into(),
            port: 443,
            headers: vec![
                ("authorization".into(), b"Bearer sk_live_SECRET123".to_vec()),
                ("idempotency-key".into(), b"k-1".to_vec()),
                ("x-raw".into(), vec![0xff, 0x00, 0x80]),
            ],
            body: Bytes::from_static(b"amount=180000&currency=eur&destination=acct_PRIVATE"),
        }
    }

    #[test]
    fn seals_and_opens_and_binds_the_hold_id() {
        let key = HoldKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal("hold_a", &request()).unwrap();
        assert_eq!(key.open("hold_a", &sealed).unwrap(), request());
        // A fresh nonce each time.
        assert_ne!(sealed, key.seal("hold_a", &request()).unwrap());
        // Another hold's id, another key, a flipped bit, a cut record: errors.
        assert!(matches!(
            key.open("hold_b", &sealed),
            Err(SealError::Open { .. })
        ));
        let other = HoldKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(matches!(
            other.open("hold_a", &sealed),
            Err(SealError::Open { .. })
        ));
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(key.open("hold_a", &tampered).is_err(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(key.open("hold_a", &sealed[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", request());
        for secret in ["sk_live_SECRET123", "acct_PRIVATE", "expand", "k-1"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("authorization"), "{shown}");
        assert!(shown.contains("/v1/payouts?<redacted>"), "{shown}");
        assert!(!format!("{:?}", HoldKey::from_bytes(&[7u8; 32]).unwrap()).contains('7'));
    }

    #[test]
    fn header_map_keeps_repeats() {
        let mut r = request();
        r.headers.retain(|(n, _)| n != "x-raw");
        r.headers.push(("x-tag".into(), b"a".to_vec()));
        r.headers.push(("x-tag".into(), b"b".to_vec()));
        let map = r.header_map().unwrap();
        assert_eq!(map.get_all("x-tag").iter().count(), 2);
    }

    #[test]
    fn key_file_is_created_once_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = hold_key_path(&dir.path().join("certs/leash-ca.key"));
        assert_eq!(path, dir.path().join("certs/leash-holds.key"));
        let first = HoldKey::load_or_create(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let sealed = first.seal("hold_x", &request()).unwrap();
        let again = HoldKey::load_or_create(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(again.open("hold_x", &sealed).unwrap(), request());

        fs::write(&path, b"short").unwrap();
        let err = HoldKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"short");
    }
}
