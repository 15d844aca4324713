//! The registry: who the coordinator is and which nodes it asks.
//!
//! One TOML file (`registry.toml`): the coordinator's name, TLS files and signing key, deadlines,
//! and one `[[nodes]]` entry per country with its endpoint and the certificate identity the node
//! must present. Relative paths resolve against the file's directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vrs_core::codes::Country;
use vrs_core::tls::TlsPaths;

/// The registry file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `[coordinator]`
    pub coordinator: CoordinatorSection,
    /// `[tls]`: the federation CA the nodes' certificates chain to, the coordinator's client
    /// certificate and its key.
    pub tls: TlsPaths,
    /// `[[nodes]]`
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// `[regional]`: the helper aggregator of regional mode (`query --regional`).
    #[serde(default)]
    pub regional: Option<RegionalSection>,
}

/// `[regional]`: regional mode's helper and its parameters (docs/PROTOCOL.md, "Regional secure
/// aggregation").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionalSection {
    /// The helper's certificate identity, e.g. `helper.bali-rc.vrs.test`.
    pub helper: String,
    /// Where the helper listens, `host:port`.
    pub helper_endpoint: String,
    /// No result over fewer nodes. Default 3.
    #[serde(default = "default_min_nodes")]
    pub min_nodes: u32,
    /// Per-cell bound of each node's vector. Default 100000.
    #[serde(default = "default_max_cell")]
    pub max_cell: u64,
}

fn default_min_nodes() -> u32 {
    3
}

fn default_max_cell() -> u64 {
    100_000
}

/// `[coordinator]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSection {
    /// Short name; the certificate identity is `coordinator.<name>.vrs.test`.
    pub name: String,
    /// PKCS#8 Ed25519 key that signs queries.
    pub signing_key: PathBuf,
    /// Per-node deadline for one query, milliseconds. Default 5000.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Deadline for establishing a connection, milliseconds. Default 3000.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// The receipt book: every audit receipt the nodes give (JSON Lines, appended). Default
    /// `receipts.jsonl` beside the registry.
    #[serde(default)]
    pub receipts: Option<PathBuf>,
}

fn default_deadline_ms() -> u64 {
    5_000
}

fn default_connect_ms() -> u64 {
    3_000
}

/// `[[nodes]]`: one country node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Country of the node.
    pub country: Country,
    /// `host:port` to dial.
    pub endpoint: String,
    /// Identity the node's certificate must carry; default `node.<iso3>.vrs.test`.
    #[serde(default)]
    pub identity: Option<String>,
    /// The node's audit key (hex Ed25519, as `vrs-node check` prints it), when agreed out of
    /// band. Without it, the key the node first publishes in `Describe` is the one its receipts
    /// are checked under.
    #[serde(default)]
    pub audit_key: Option<String>,
}

impl NodeEntry {
    /// The identity the node must present.
    pub fn expected_identity(&self) -> String {
        self.identity
            .clone()
            .unwrap_or_else(|| vrs_core::tls::node_identity(self.country.as_str()))
    }
}

/// A registry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// Two entries for one country.
    #[error("{0} is listed twice")]
    Duplicate(Country),
    /// No nodes.
    #[error("the registry lists no nodes")]
    Empty,
    /// A node's pinned audit key is not 64 hex characters.
    #[error("{0}: audit_key is not 64 hex characters")]
    BadAuditKey(Country),
    /// A coordinator name that cannot be part of a DNS name.
    #[error("coordinator name must be 1-40 characters of [a-z0-9-]")]
    BadName,
}

impl Registry {
    /// Loads and checks a registry file.
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, dir)
    }

    /// Parses registry text; `dir` resolves relative paths.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Registry, RegistryError> {
        let mut r: Registry = toml::from_str(text).map_err(|e| RegistryError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let name = &r.coordinator.name;
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(RegistryError::BadName);
        }
        if r.nodes.is_empty() {
            return Err(RegistryError::Empty);
        }
        let mut seen = BTreeSet::new();
        for n in &r.nodes {
            if !seen.insert(n.country) {
                return Err(RegistryError::Duplicate(n.country));
            }
        }
        let receipts = r
            .coordinator
            .receipts
            .get_or_insert_with(|| PathBuf::from(crate::receipts::DEFAULT_FILE));
        if receipts.is_relative() {
            *receipts = dir.join(&*receipts);
        }
        for n in &r.nodes {
            if let Some(k) = &n.audit_key
                && vrs_core::signing::PublicKey::from_hex(k).is_err()
            {
                return Err(RegistryError::BadAuditKey(n.country));
            }
        }
        for p in [
            &mut r.tls.ca,
            &mut r.tls.cert,
            &mut r.tls.key,
            &mut r.coordinator.signing_key,
        ] {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(r)
    }

    /// The coordinator's certificate identity.
    pub fn identity(&self) -> String {
        vrs_core::tls::coordinator_identity(&self.coordinator.name)
    }

    /// Per-node deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.coordinator.deadline_ms)
    }

    /// Connection deadline.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.coordinator.connect_timeout_ms)
    }

    /// Where the receipt book is kept.
    pub fn receipts_path(&self) -> PathBuf {
        self.coordinator
            .receipts
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::receipts::DEFAULT_FILE))
    }

    /// The audit keys pinned in the registry, by country code.
    pub fn pinned_audit_keys(
        &self,
    ) -> std::collections::HashMap<String, vrs_core::signing::PublicKey> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let k = vrs_core::signing::PublicKey::from_hex(n.audit_key.as_deref()?).ok()?;
                Some((n.country.to_string(), k))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../docs/samples/registry.toml");

    #[test]
    fn the_shipped_sample_parses() {
        let r = Registry::parse(SAMPLE, Path::new("registry.toml"), Path::new("/etc/vrs")).unwrap();
        assert_eq!(r.identity(), "coordinator.bali-rc.vrs.test");
        assert!(r.tls.ca.starts_with("/etc/vrs"));
        assert_eq!(r.nodes[0].expected_identity(), "node.tha.vrs.test");
    }

    #[test]
    fn refuses_duplicates_bad_names_and_unknown_keys() {
        let base = "[coordinator]\nname = \"x\"\nsigning_key = \"k\"\n[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n";
        let dup = format!(
            "{base}[[nodes]]\ncountry = \"THA\"\nendpoint = \"h:1\"\n[[nodes]]\ncountry = \"THA\"\nendpoint = \"h:2\"\n"
        );
        assert!(matches!(
            Registry::parse(&dup, Path::new("r"), Path::new(".")),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            Registry::parse(base, Path::new("r"), Path::new(".")),
            Err(RegistryError::Empty)
        ));
        let bad = base.replace("name = \"x\"", "name = \"X Y\"");
        assert!(matches!(
            Registry::parse(
                &format!("{bad}[[nodes]]\ncountry = \"THA\"\nendpoint = \"h:1\"\n"),
                Path::new("r"),
                Path::new(".")
            ),
            Err(RegistryError::BadName)
        ));
        let typo = format!("{base}[[nodes]]\ncountry = \"THA\"\nendpoint = \"h:1\"\nport = 3\n");
        assert!(matches!(
            Registry::parse(&typo, Path::new("r"), Path::new(".")),
            Err(RegistryError::Parse { .. })
        ));
    }
}
