//! Revoked certificates and signing keys, from a small TOML file the operator edits.
//!
//! The file is re-read whenever its modification time or size changes, so a revocation takes
//! effect on the next request without a restart. The list **fails closed** (issue 12): only a file
//! that was read and parsed in full changes it. A file that is missing (deleted, or between the
//! two steps of a rename), unreadable, or does not parse keeps the last good list and logs an
//! error, and so does a lock poisoned by a panic elsewhere; a typo or a half-finished edit never
//! un-revokes anything. To lift every revocation, write an empty list (`certificates = []`).
//!
//! At start-up ([`RevocationList::open`]): a file named in `[revocation] file` must exist and
//! parse, or the node refuses to start; the default `revoked.toml` beside node.toml may be absent
//! (a new node has none), but if it exists it must parse.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
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

/// Why a revocation list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The file named in `[revocation] file` does not exist.
    #[error("revocation list {} is configured but does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read revocation list {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid revocation list.
    #[error("revocation list {} does not parse: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Modification time and size: what tells a changed file.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

/// Reads and parses the file; `Ok(None)` if it does not exist.
pub fn load(path: &Path) -> Result<Option<Revoked>, RevocationError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RevocationError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file = toml::from_str::<RevokedFile>(&text).map_err(|e| RevocationError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_owned(),
    })?;
    Ok(Some(Revoked::from_file(&file)))
}

/// The last good list and the stamp of the file it was checked against.
#[derive(Debug, Default)]
struct State {
    stamp: Stamp,
    /// Shared with the requests that read it: a request's check costs no copy of the sets.
    list: Arc<Revoked>,
}

/// The revocation list, reloaded when its file changes; it changes only to a list that parsed.
#[derive(Debug)]
pub struct RevocationList {
    path: PathBuf,
    state: Mutex<State>,
}

impl RevocationList {
    /// The list at `path`, for start-up: with `required` (the path was configured) a missing
    /// file is an error; an existing file that cannot be read or parsed always is.
    pub fn open(path: &Path, required: bool) -> Result<RevocationList, RevocationError> {
        let before = stamp(path);
        let list = match load(path)? {
            Some(list) => list,
            None if required => {
                return Err(RevocationError::Missing {
                    path: path.to_path_buf(),
                });
            }
            None => Revoked::default(),
        };
        Ok(RevocationList {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                stamp: before,
                list: Arc::new(list),
            }),
        })
    }

    /// The list a node's configuration names, as [`RevocationList::open`] checks it: required
    /// when `[revocation] file` is set, optional for the default `revoked.toml`.
    pub fn for_config(
        config: &crate::config::NodeConfig,
    ) -> Result<RevocationList, RevocationError> {
        let required = config.file.revocation.file.is_some();
        RevocationList::open(&config.revocation_file(), required)
    }

    /// Watches `path` (which need not exist yet), starting from an empty list if it cannot be
    /// loaded now (logged). Prefer [`RevocationList::open`], which refuses a broken file.
    pub fn new(path: &Path) -> RevocationList {
        let list = RevocationList {
            path: path.to_path_buf(),
            state: Mutex::new(State::default()),
        };
        list.current();
        list
    }

    /// The current list, re-reading the file if it changed. Any failure keeps the last good list.
    pub fn current(&self) -> Arc<Revoked> {
        // The state is replaced whole, never left half-updated: a poisoned lock still holds a
        // good list, and refusing to read it would fail open.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let before = stamp(&self.path);
        if state.stamp == before {
            return state.list.clone();
        }
        let path = self.path.display();
        match load(&self.path) {
            // Changed again while being read (an edit in progress): keep the old list and the
            // old stamp, so the next request reads it again.
            Ok(_) if stamp(&self.path) != before => {
                tracing::warn!(%path, "revocation list changed while being read; keeping the previous one");
            }
            Ok(Some(list)) => {
                *state = State {
                    stamp: before,
                    list: Arc::new(list),
                };
                tracing::info!(%path, "revocation list loaded");
            }
            Ok(None) => {
                state.stamp = before;
                tracing::error!(%path, "revocation list is gone; keeping the previous one (write an empty list to lift revocations)");
            }
            Err(error) => {
                state.stamp = before;
                tracing::error!(%path, %error, "revocation list unusable; keeping the previous one");
            }
        }
        state.list.clone()
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
        assert!(
            list.current().certificate(b"cert"),
            "a missing file must not un-revoke"
        );
        std::fs::create_dir(&path).unwrap();
        assert!(
            list.current().certificate(b"cert"),
            "an unreadable file must not un-revoke"
        );
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, "certificates = []\n").unwrap();
        assert!(
            !list.current().certificate(b"cert"),
            "an empty list lifts it"
        );
    }

    #[test]
    fn a_poisoned_lock_keeps_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.toml");
        std::fs::write(
            &path,
            format!("certificates = [\"{}\"]\n", fingerprint(b"cert")),
        )
        .unwrap();
        let list = RevocationList::open(&path, true).unwrap();
        std::thread::scope(|s| {
            let poisoner = s.spawn(|| {
                let _guard = list.state.lock().unwrap();
                panic!("poison the lock");
            });
            assert!(poisoner.join().is_err());
        });
        assert!(list.state.is_poisoned());
        assert!(list.current().certificate(b"cert"));
    }

    #[test]
    fn opening_refuses_what_cannot_be_read_and_a_missing_configured_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.toml");
        assert!(matches!(
            RevocationList::open(&path, true),
            Err(RevocationError::Missing { .. })
        ));
        assert!(RevocationList::open(&path, false).is_ok());
        std::fs::write(&path, "certificates = [oops\n").unwrap();
        for required in [true, false] {
            assert!(matches!(
                RevocationList::open(&path, required),
                Err(RevocationError::Parse { .. })
            ));
        }
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(
            RevocationList::open(&path, false),
            Err(RevocationError::Read { .. })
        ));
    }

    #[test]
    fn the_sample_parses() {
        let f: RevokedFile =
            toml::from_str(include_str!("../../docs/samples/revoked.toml")).unwrap();
        assert_eq!(f.certificates.len(), 1);
    }
}
