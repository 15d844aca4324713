//! Revoked certificates and signing keys, from a small TOML file the operator edits.
//!
//! The file is re-read whenever its modification time or size changes, so a revocation takes
//! effect on the next request without a restart. A file that disappears revokes nothing; a file
//! that does not parse keeps the last good list and logs an error, so a typo never silently
//! un-revokes anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedFile {
    /// SHA-256 fingerprints (hex) of revoked certificates.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Revoked signing keys: key ids or public keys (hex).
    #[serde(default)]
    pub signing_keys: Vec<String>,
}

/// What is revoked now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    certificates: HashSet<String>,
    signing_keys: HashSet<String>,
}

impl Revoked {
    /// From the parsed file (hex normalised to lower case).
    pub fn from_file(f: &RevokedFile) -> Revoked {
        let norm = |v: &Vec<String>| v.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
        Revoked {
            certificates: norm(&f.certificates),
            signing_keys: norm(&f.signing_keys),
        }
    }

    /// Whether a certificate (DER) is revoked.
    pub fn certificate(&self, der: &[u8]) -> bool {
        self.certificates.contains(&fingerprint(der))
    }

    /// Whether a signing key is revoked, by key id or public key.
    pub fn signing_key(&self, key: &vrs_core::signing::PublicKey) -> bool {
        self.signing_keys.contains(&key.key_id()) || self.signing_keys.contains(&key.to_hex())
    }
}

/// SHA-256 fingerprint of a certificate, lower-case hex (as `openssl x509 -fingerprint -sha256`
/// prints it, without colons).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// The revocation list, reloaded when its file changes.
#[derive(Debug)]
pub struct RevocationList {
    path: PathBuf,
    state: Mutex<(Option<(SystemTime, u64)>, Revoked)>,
}

impl RevocationList {
    /// Watches `path` (which need not exist yet).
    pub fn new(path: &Path) -> RevocationList {
        let list = RevocationList {
            path: path.to_path_buf(),
            state: Mutex::new((None, Revoked::default())),
        };
        list.current();
        list
    }

    /// The current list, re-reading the file if it changed.
    pub fn current(&self) -> Revoked {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let Ok(mut state) = self.state.lock() else {
            return Revoked::default();
        };
        if state.0 != stamp {
            match stamp {
                None => *state = (None, Revoked::default()),
                Some(_) => match std::fs::read_to_string(&self.path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| toml::from_str::<RevokedFile>(&t).map_err(|e| e.to_string()))
                {
                    Ok(f) => {
                        *state = (stamp, Revoked::from_file(&f));
                        tracing::info!(path = %self.path.display(), "revocation list loaded");
                    }
                    Err(e) => {
                        tracing::error!(path = %self.path.display(), error = %e, "revocation list unreadable; keeping the previous one");
                        state.0 = stamp;
                    }
                },
            }
        }
        state.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_when_the_file_changes_and_keeps_the_last_good_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.toml");
        let list = RevocationList::new(&path);
        assert!(!list.current().certificate(b"cert"));
        std::fs::write(
            &path,
            format!("certificates = [\"{}\"]\n", fingerprint(b"cert")),
        )
        .unwrap();
        assert!(list.current().certificate(b"cert"));
        std::fs::write(&path, "certificates = [unparseable\n").unwrap();
        assert!(
            list.current().certificate(b"cert"),
            "a broken file must not un-revoke"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(!list.current().certificate(b"cert"));
    }

    #[test]
    fn the_sample_parses() {
        let f: RevokedFile =
            toml::from_str(include_str!("../../docs/samples/revoked.toml")).unwrap();
        assert_eq!(f.certificates.len(), 1);
    }
}
