//! leash's own certificate authority.
//!
//! To read a request to a vendor's host leash has to finish the agent's TLS
//! handshake itself, with a certificate for that host that the agent trusts.
//! The agent trusts leash's CA (see `leash env`); this module creates that CA
//! once, reloads it on every start, and mints one leaf certificate per host on
//! first use, cached for the life of the process.
//!
//! The CA key is the most sensitive file leash owns: anyone holding it can
//! impersonate every intercepted vendor to the agents. It is written once with
//! mode 0600 and never overwritten — an existing CA is always reused, so agents
//! that already trust it keep working.

use std::collections::HashMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

/// ALPN protocols leash offers to agents inside an intercepted tunnel, in
/// order of preference: HTTP/2 when the client offers it, else HTTP/1.1.
pub const INTERCEPT_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// How long a minted leaf certificate is valid. Leaves live only in memory,
/// so a short life costs nothing; a day of backdating absorbs clock skew.
const LEAF_VALIDITY_DAYS: i64 = 365;
/// How long a newly created CA is valid.
const CA_VALIDITY_DAYS: i64 = 3650;

/// Why the CA could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a usable CA ({reason})")]
    Invalid { path: PathBuf, reason: String },
    #[error("{cert} exists but {key} does not (or the other way round); leash never overwrites one half of a CA: restore the missing file or move both away")]
    HalfPresent { cert: PathBuf, key: PathBuf },
    #[error("minting a certificate for {host}: {reason}")]
    Mint { host: String, reason: String },
}

/// Whether [`CertificateAuthority::load_or_create`] found a CA or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    Created,
    Loaded,
}

/// The CA and the per-host TLS server configurations minted from it.
pub struct CertificateAuthority {
    cert_path: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    /// One `ServerConfig` per intercepted host name (or IP literal), at
    /// most [`MAX_LEAVES`].
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

/// Leaves kept minted at once. Intercepted hosts are the vendors' (a few
/// dozen), but IP literals and host spellings are the agent's choice: past
/// this many, a new leaf replaces an old one (minting again costs a key
/// generation, a bounded map costs nothing).
pub const MAX_LEAVES: usize = 1024;

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the CA at `cert`/`key`, or creates both files when neither exists.
    ///
    /// One file without the other is an error: silently replacing half a CA
    /// would break every agent that trusts the old one.
    pub fn load_or_create(cert: &Path, key: &Path) -> Result<(Self, CaOrigin), CaError> {
        match (cert.exists(), key.exists()) {
            (true, true) => Ok((Self::load(cert, key)?, CaOrigin::Loaded)),
            (false, false) => {
                Self::create(cert, key)?;
                Ok((Self::load(cert, key)?, CaOrigin::Created))
            }
            _ => Err(CaError::HalfPresent {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            }),
        }
    }

    /// Reads an existing CA certificate and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CaError> {
        let cert_pem = fs::read_to_string(cert).map_err(|source| CaError::Io {
            path: cert.to_path_buf(),
            source,
        })?;
        let key_pem = fs::read_to_string(key).map_err(|source| CaError::Io {
            path: key.to_path_buf(),
            source,
        })?;
        let key_pair = KeyPair::from_pem(&key_pem).map_err(|e| CaError::Invalid {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| CaError::Invalid {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key_pair).map_err(|e| CaError::Invalid {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            cert_path: cert.to_path_buf(),
            cert_pem,
            cert_der,
            issuer,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// Creates a new CA (ECDSA P-256) and writes it; refuses to overwrite.
    fn create(cert: &Path, key: &Path) -> Result<(), CaError> {
        let key_pair = KeyPair::generate().map_err(|e| CaError::Invalid {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "leash proxy CA");
        name.push(DnType::OrganizationName, "leash");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let certificate = params
            .self_signed(&key_pair)
            .map_err(|e| CaError::Invalid {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })?;
        // Key first, with its restrictive mode set at creation so it is never
        // readable by others even for an instant.
        write_new(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
        write_new(cert, certificate.pem().as_bytes(), 0o644)?;
        Ok(())
    }

    /// The CA certificate in PEM, as agents must trust it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Where the CA certificate lives (for `leash env`).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A TLS server configuration presenting a leaf for `host`, minted on
    /// first use and cached.
    pub fn server_config_for(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // A poisoned lock only means another minting panicked; the map itself
        // is still a valid cache.
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = leaves.get(&host) {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(self.mint(&host)?);
        if leaves.len() >= MAX_LEAVES {
            // Any one: the hosts that matter are minted again on their next
            // handshake.
            if let Some(old) = leaves.keys().next().cloned() {
                leaves.remove(&old);
            }
        }
        leaves.insert(host, Arc::clone(&config));
        Ok(config)
    }

    fn mint(&self, host: &str) -> Result<ServerConfig, CaError> {
        let mint_err = |reason: String| CaError::Mint {
            host: host.to_string(),
            reason,
        };
        let leaf_key = KeyPair::generate().map_err(|e| mint_err(e.to_string()))?;
        let mut params = CertificateParams::default();
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.to_string()
                    .try_into()
                    .map_err(|e: rcgen::Error| mint_err(e.to_string()))?,
            ),
        };
        params.subject_alt_names = vec![san];
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        let leaf = params
            .signed_by(&leaf_key, &self.issuer)
            .map_err(|e| mint_err(e.to_string()))?;

        let chain = vec![leaf.der().clone(), self.cert_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| mint_err(e.to_string()))?;
        config.alpn_protocols = INTERCEPT_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// Writes a new CA file (never overwrites).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    crate::keyfile::create_new(path, bytes, mode).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// PEM-encodes DER certificates (for the trust bundle `leash env` writes).
pub fn pem_encode_certificates<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> String {
    certs
        .into_iter()
        .map(|der| crate::keyfile::pem("CERTIFICATE", der))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn creates_once_with_private_key_mode_and_reuses() {
        provider();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("certs/ca.pem");
        let key = dir.path().join("certs/ca.key");
        let (first, origin) = CertificateAuthority::load_or_create(&cert, &key).unwrap();
        assert_eq!(origin, CaOrigin::Created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, origin) = CertificateAuthority::load_or_create(&cert, &key).unwrap();
        assert_eq!(origin, CaOrigin::Loaded);
        assert_eq!(first.cert_pem(), second.cert_pem());
    }

    #[test]
    fn half_a_ca_is_refused_not_replaced() {
        provider();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("ca.key");
        fs::write(&cert, "not a cert").unwrap();
        let err = CertificateAuthority::load_or_create(&cert, &key).unwrap_err();
        assert!(matches!(err, CaError::HalfPresent { .. }), "{err}");
        assert_eq!(fs::read_to_string(&cert).unwrap(), "not a cert");
    }

    #[test]
    fn leaf_configs_are_cached_per_host() {
        provider();
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = CertificateAuthority::load_or_create(
            &dir.path().join("ca.pem"),
            &dir.path().join("ca.key"),
        )
        .unwrap();
        let a = ca.server_config_for("api.example.com").unwrap();
        let b = ca.server_config_for("API.example.com.").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = ca.server_config_for("127.0.0.1").unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    /// However many host spellings an agent tries, the cache stays bounded
    /// and every host still gets a working leaf.
    #[test]
    fn the_leaf_cache_is_bounded() {
        provider();
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = CertificateAuthority::load_or_create(
            &dir.path().join("ca.pem"),
            &dir.path().join("ca.key"),
        )
        .unwrap();
        for i in 0..MAX_LEAVES + 40 {
            ca.server_config_for(&format!("h{i}.example.com")).unwrap();
        }
        let cached = ca.leaves.lock().unwrap().len();
        assert_eq!(cached, MAX_LEAVES);
        let again = ca.server_config_for("h0.example.com").unwrap();
        assert_eq!(again.alpn_protocols.len(), 2);
    }
}
