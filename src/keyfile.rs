//! Writing key and certificate files: created once, never overwritten, with
//! their permissions set at creation.
//!
//! leash keeps several secrets beside its CA (the CA key, the audit signing
//! key, the key that seals held requests). Each must be readable by nobody
//! else from the first instant, and an existing one must never be replaced:
//! agents trust the CA, auditors trust the signing key, and held requests are
//! sealed under the sealing key.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine;

/// Writes `bytes` to `path`, which must not exist yet, creating parent
/// directories; `mode` (e.g. 0o600) is applied at creation on Unix.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// PEM text for one DER object under `label` (`CERTIFICATE`, `PUBLIC KEY`).
pub fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret.key");
        create_new(&path, b"one", 0o600).unwrap();
        let again = create_new(&path, b"two", 0o600).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem("CERTIFICATE", &[7u8; 100]);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
        assert!(text
            .lines()
            .all(|l| l.len() <= 64 || l.starts_with("-----")));
    }
}
