//! The node's configuration file, `node.toml`: who the node is, where it listens, its TLS files,
//! which coordinators may ask, its disclosure policy and its exchange rates.
//!
//! Every section rejects unknown keys, so a typo is an error at start-up rather than a silently
//! ignored setting. Relative paths are resolved against the directory holding `node.toml`.
//! [`NodeConfig::load`] is the one entry point; the policy inside is checked against its floors
//! there, so a running node can never hold a policy below them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Unit};
use vrs_core::telemetry::{Logging, LoggingError};
use vrs_core::tls::TlsPaths;

use crate::disclosure::{
    Policy, PolicyConfig, PolicyError, PrivacyConfig, PrivacyError, PrivacyPolicy,
};
use crate::fx::{FxError, FxRates};

/// File name of the configuration inside a node directory.
pub const CONFIG_FILE: &str = "node.toml";

/// `node.toml` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfigFile {
    /// `[node]`
    pub node: NodeSection,
    /// `[server]`
    #[serde(default)]
    pub server: ServerSection,
    /// `[tls]`, needed by `serve` only: the federation CA that client certificates must chain
    /// to, this node's certificate (SAN `node.<iso3>.vrs.test` in development) and its key.
    #[serde(default)]
    pub tls: Option<TlsPaths>,
    /// `[[callers]]`: coordinators allowed to query.
    #[serde(default)]
    pub callers: Vec<CallerSection>,
    /// `[policy]`: the disclosure policy (structural limits, published units and dimensions;
    /// thresholds and cell-key noise apply in rules mode only).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[privacy]`: protection mode, privacy-loss budget, noise and declared coverage.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// `[fx]`: USD per unit of each currency.
    #[serde(default)]
    pub fx: FxRates,
    /// `[log]`
    #[serde(default)]
    pub log: LogSection,
    /// `[budget]`: per-caller rate limit and daily budget.
    #[serde(default)]
    pub budget: BudgetSection,
    /// `[approval]`: whether queries wait for the operator.
    #[serde(default)]
    pub approval: ApprovalSection,
    /// `[revocation]`: where revoked certificates and signing keys are listed.
    #[serde(default)]
    pub revocation: RevocationSection,
    /// `[console]`: the web console for the node's staff (`vrs-node console`).
    #[serde(default)]
    pub console: crate::console::ConsoleSection,
    /// `[[regional]]`: (leader, helper) pairs this node takes part in regional mode with
    /// (secure aggregation, DESIGN §8b); none by default.
    #[serde(default)]
    pub regional: Vec<crate::regional::RegionalSection>,
}

/// `[budget]`
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSection {
    /// Sustained queries per minute per caller. Default 60.
    pub rate_per_minute: u32,
    /// Queries a caller may send in a burst above the sustained rate. Default 20.
    pub burst: u32,
    /// Queries answered per caller per UTC day. Default 5000.
    pub daily_queries: u64,
}

impl Default for BudgetSection {
    fn default() -> Self {
        BudgetSection {
            rate_per_minute: 60,
            burst: 20,
            daily_queries: 5_000,
        }
    }
}

/// `[approval]`
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSection {
    /// `auto` (answer at once) or `manual` (hold each new query until the operator approves it
    /// with `vrs-node approvals approve`). Default `auto`.
    pub mode: ApprovalMode,
}

/// How queries are approved.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// Answer at once.
    #[default]
    Auto,
    /// Hold for the operator.
    Manual,
}

/// `[revocation]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationSection {
    /// File listing revoked certificates (SHA-256 fingerprints) and signing keys (key ids or
    /// public keys), re-read whenever it changes. Default: `revoked.toml` beside node.toml.
    pub file: Option<PathBuf>,
}

/// `[node]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// ISO 3166-1 alpha-3 code of the node's country.
    pub country: Country,
    /// Directory of the store; default: the directory of `node.toml`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on. Default `127.0.0.1:7443`.
    pub listen: SocketAddr,
    /// Requests served at once; more wait, each only while it can still be answered before
    /// its deadline. Default 8.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for one of those slots; past them a request is refused at once
    /// (`BUSY`). Default 512.
    pub max_queued_requests: usize,
    /// Deadline for one request, seconds. Default 30.
    pub request_timeout_secs: u64,
    /// Largest request message accepted, bytes. Default 64 KiB.
    pub max_request_bytes: usize,
    /// Deadline for a TLS handshake, seconds. Default 3.
    pub handshake_timeout_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            max_concurrent_requests: 8,
            max_queued_requests: 512,
            request_timeout_secs: 30,
            max_request_bytes: 64 * 1024,
            handshake_timeout_secs: 3,
        }
    }
}

/// `[[callers]]`: one allowed coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSection {
    /// Certificate identity (SAN) of the coordinator, e.g. `coordinator.bali-rc.vrs.test`.
    pub identity: String,
    /// Hex Ed25519 public key(s) the coordinator signs queries with.
    #[serde(default)]
    pub signing_keys: Vec<String>,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `human` or `json`. Default `human`.
    pub format: String,
    /// Default filter when `RUST_LOG` is unset. Default `info`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The file as written, with relative paths resolved.
    pub file: NodeConfigFile,
    /// The checked policy.
    pub policy: Policy,
    /// The checked `[privacy]` section.
    pub privacy: PrivacyPolicy,
    /// Directory holding `node.toml`.
    pub dir: PathBuf,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, key).
        message: String,
    },
    /// The policy is below a floor or inconsistent.
    #[error("{path}: [policy]: {source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PolicyError,
    },
    /// The `[privacy]` section crosses a floor or ceiling.
    #[error("{path}: [privacy]: {source}")]
    Privacy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PrivacyError,
    },
    /// The `[log]` section names a format or level that does not exist.
    #[error("{path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: LoggingError,
    },
    /// An exchange rate is not usable.
    #[error("{path}: [fx]: {source}")]
    Fx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: FxError,
    },
}

impl NodeConfig {
    /// Loads `node.toml` from a node directory or a file path.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let file_path = if path.is_dir() || !path.exists() && path.extension().is_none() {
            path.join(CONFIG_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file_path).map_err(|source| ConfigError::Read {
            path: file_path.clone(),
            source,
        })?;
        let dir = file_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &file_path, &dir)
    }

    /// Parses configuration text; `dir` resolves relative paths.
    pub fn parse(text: &str, file_path: &Path, dir: &Path) -> Result<NodeConfig, ConfigError> {
        let mut file: NodeConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: file_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let policy = Policy::new(file.policy.clone()).map_err(|source| ConfigError::Policy {
            path: file_path.to_path_buf(),
            source,
        })?;
        let privacy = PrivacyPolicy::new(&file.privacy).map_err(|source| ConfigError::Privacy {
            path: file_path.to_path_buf(),
            source,
        })?;
        Logging::resolve(None, Some((&file.log.format, &file.log.level)), "info").map_err(
            |source| ConfigError::Log {
                path: file_path.to_path_buf(),
                source,
            },
        )?;
        file.fx.check().map_err(|source| ConfigError::Fx {
            path: file_path.to_path_buf(),
            source,
        })?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(tls) = &mut file.tls {
            resolve(&mut tls.ca);
            resolve(&mut tls.cert);
            resolve(&mut tls.key);
        }
        if let Some(d) = &mut file.node.data_dir {
            resolve(d);
        }
        if let Some(f) = &mut file.revocation.file {
            resolve(f);
        }
        Ok(NodeConfig {
            file,
            policy,
            privacy,
            dir: dir.to_path_buf(),
        })
    }

    /// The revocation list's path.
    pub fn revocation_file(&self) -> PathBuf {
        self.file
            .revocation
            .file
            .clone()
            .unwrap_or_else(|| self.dir.join("revoked.toml"))
    }

    /// Directory of the store.
    pub fn data_dir(&self) -> PathBuf {
        self.file
            .node
            .data_dir
            .clone()
            .unwrap_or_else(|| self.dir.clone())
    }
}

/// The documented `node.toml` that `vrs-node init` writes.
pub fn initial_config(country: Country) -> String {
    let lower = country.as_str().to_ascii_lowercase();
    let fx = toml::to_string(&FxRates::sample()).unwrap_or_default();
    let quoted = |codes: &mut dyn Iterator<Item = &str>| {
        codes
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let units = quoted(&mut Unit::ALL.iter().map(|u| u.code()));
    let dimensions = quoted(&mut Dimension::ALL.iter().map(|d| d.code()));
    format!(
        r#"# VRS Federation node configuration.
# Every key is optional unless marked required; unknown keys are errors.
# Relative paths are resolved against the directory of this file.

[node]
# Required: ISO 3166-1 alpha-3 code of this node's country.
country = "{country}"
# Directory of the store (node.sqlite). Default: this file's directory.
# data_dir = "."

[server]
# Address to listen on. Keep it on an internal interface behind your firewall.
listen = "127.0.0.1:7443"
# Requests served at once; how many more may wait (each only while it can still be answered
# before its deadline; past that, or past the queue, BUSY at once); deadline per request;
# largest request accepted.
max_concurrent_requests = 8
max_queued_requests = 512
request_timeout_secs = 30
max_request_bytes = 65536
handshake_timeout_secs = 3

# Mutual TLS (needed by `vrs-node serve`). Client certificates must chain to `ca`.
# [tls]
# ca = "certs/ca.pem"
# cert = "certs/node.{lower}.vrs.test.pem"
# key = "certs/node.{lower}.vrs.test.key"

# Coordinators allowed to query, by certificate identity (SAN), with the public keys
# (hex Ed25519) they sign queries with. No entry: nobody may query.
# [[callers]]
# identity = "coordinator.bali-rc.vrs.test"
# signing_keys = ["<hex public key>"]

# Regional mode (secure aggregation, docs/PROTOCOL.md): take part with this (leader, helper)
# pair, which must not collude; the helper is also a [[callers]] entry (no signing key needed).
# No entry: regional queries are refused.
# [[regional]]
# leader = "coordinator.bali-rc.vrs.test"
# helper = "helper.bali-rc.vrs.test"
# min_nodes = 3

[privacy]
# Protection mode: "zcdp" (default) releases every figure with calibrated noise charged to a
# finite privacy-loss budget per quarter of records (docs/PRIVACY.md). "rules_v1" is the older
# threshold + suppression + bounded-noise mode: NOT protected against a caller who asks many
# different questions (docs/THREAT_MODEL.md); use it only if your federation accepts that.
mode = "zcdp"
# Lifetime budget (zCDP rho) of every reference quarter of records, shared by all callers.
# At most 2.0; lower it to protect more and answer less.
rho_per_quarter = 1.0
# rho one query spends on each quarter it reads when it asks for none; least and most it may ask.
default_rho = 0.05
min_rho = 0.001
max_rho = 0.25
# Suppress noisy values below this many standard deviations; 0 releases every cell (keeps
# regional sums unbiased: the coordinator applies display rules after merging).
threshold_sigmas = 0.0
# Largest number of cells one answer may have (margins included).
max_cells = 20000
# The months your records cover, as you declare them (never read off the data). Records
# outside are never counted. An empty coverage_to means "up to the current month".
coverage_from = "2010-01"
coverage_to = ""

[privacy.bounds]
# At most this many values of a multi-valued table count per incident (more are dropped,
# smallest values kept): what one incident or person can add to an answer is bounded.
transit = 3
method = 3
migrant_group = 4
smuggler = 4
fee = 3

# Optional: give each coordinator its own share of every quarter's budget.
# [privacy.callers]
# "coordinator.bali-rc.vrs.test" = 0.5

[policy]
# Structural limits and what is published apply in both modes; thresholds, dominance and
# cell-key noise below apply in rules_v1 mode only.
# Floors: min_count >= 3, min_contributors >= 2.
# A cell whose count is below min_count is suppressed.
min_count = 5
# A cell with fewer distinct contributing incidents is suppressed.
min_contributors = 3
# p% dominance rule for sums (migrants, deaths, missing), in percent.
dominance_p = 25
# Released values are rounded to this base after perturbation; 0 = off.
rounding_base = 0
# Every suppressed cell's feasible interval (what the released cells and their sums narrow
# it to) must be at least this wide. Default: min_count. Floor 3.
# protection_width = 5
# Most group-by dimensions in one query; most values in one filter; longest period range one
# query may span, in months (at most 1200).
max_dimensions = 3
max_filter_values = 50
max_period_span_months = 600
# Units and dimensions this node answers for. Default: all of them (`vrs-node codes` lists
# them); to stop publishing one, uncomment the list and remove it. A node that lists them keeps
# that list when a later version adds more.
# units = [{units}]
# dimensions = [{dimensions}]

[policy.perturbation]
# Cell-key perturbation: the same records always get the same small noise.
enabled = true
max_deviation = 2

[fx]
# USD per one unit of each currency, used to convert fees at import. USD is always 1.
# A fee in a currency without a rate is rejected at import. These are approximate 2024
# averages: replace them with the rates your agency uses.
{fx}
[budget]
# Per calling coordinator: sustained queries per minute, burst above it, answers per UTC day.
rate_per_minute = 60
burst = 20
daily_queries = 5000

[approval]
# "auto" answers at once; "manual" holds each new query until you run
# `vrs-node approvals approve --dir DIR QUERY_ID` (or deny it).
mode = "auto"

[revocation]
# Revoked certificates and signing keys, re-read whenever the file changes (no restart):
#   certificates = ["<sha256 fingerprint of the certificate, hex>"]
#   signing_keys = ["<key id or public key, hex>"]
# file = "revoked.toml"

[log]
# "human" or "json"; level applies when RUST_LOG is unset.
format = "human"
level = "info"

[console]
# The web console for the node's staff (`vrs-node console`, docs/CONSOLE.md). It listens on
# this machine only unless [console.tls] gives it a certificate.
# listen = "127.0.0.1:7480"
# idle_timeout_secs = 1800
# session_lifetime_secs = 43200
# lockout_secs = 900
# sign_in_failures_per_minute = 20
# Records clerks enter in the ORT form wait for a reviewer's approval before they count.
# review_records = false
# HTTPS with the console's own certificate (browsers do not trust the federation CA):
# [console.tls]
# cert = "console.pem"
# key = "console.key"
"#
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_initial_config_parses_with_default_policy() {
        let text = initial_config("THA".parse().unwrap());
        let c = NodeConfig::parse(&text, Path::new("node.toml"), Path::new("/srv/vrs")).unwrap();
        assert_eq!(c.file.node.country.as_str(), "THA");
        assert_eq!(c.data_dir(), PathBuf::from("/srv/vrs"));
        assert!(c.file.callers.is_empty());
        // Every [privacy] key is written out, with the compiled-in defaults.
        assert_eq!(c.file.privacy, crate::disclosure::PrivacyConfig::default());
        assert!(c.privacy.is_zcdp());
    }

    #[test]
    fn unknown_keys_and_low_floors_are_refused() {
        let typo = "[node]\ncountry = \"THA\"\ncountri = \"X\"\n";
        assert!(matches!(
            NodeConfig::parse(typo, Path::new("n.toml"), Path::new(".")),
            Err(ConfigError::Parse { .. })
        ));
        let low = "[node]\ncountry = \"THA\"\n[policy]\nmin_count = 1\n";
        assert!(matches!(
            NodeConfig::parse(low, Path::new("n.toml"), Path::new(".")),
            Err(ConfigError::Policy { .. })
        ));
        let bad_fx = "[node]\ncountry = \"THA\"\n[fx]\nEUR = -2.0\n";
        assert!(matches!(
            NodeConfig::parse(bad_fx, Path::new("n.toml"), Path::new(".")),
            Err(ConfigError::Fx { .. })
        ));
    }

    /// Maps whose keys are the operator's (currencies, caller identities): one key each.
    const OPERATOR_MAPS: &[&str] = &["fx", "privacy.callers"];

    /// Every key of `value` as a dotted path; a list of tables counts the keys of its first.
    fn key_paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) if !OPERATOR_MAPS.contains(&prefix) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    key_paths(v, &path, out);
                }
            }
            serde_json::Value::Array(items) if items.first().is_some_and(|i| i.is_object()) => {
                key_paths(&items[0], prefix, out);
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }

    /// Every key of [`NodeConfigFile`]: a file with every optional part filled in, serialized
    /// (an `Option` serializes as `null`, so a field added later is a key here at once).
    fn keys_of_the_type() -> BTreeSet<String> {
        let mut file: NodeConfigFile = toml::from_str("[node]\ncountry = \"THA\"\n").unwrap();
        file.node.data_dir = Some(".".into());
        file.tls = Some(TlsPaths {
            ca: "ca.pem".into(),
            cert: "node.pem".into(),
            key: "node.key".into(),
        });
        file.callers = vec![CallerSection {
            identity: "coordinator.x.vrs.test".into(),
            signing_keys: vec!["00".into()],
        }];
        file.revocation.file = Some("revoked.toml".into());
        file.regional = vec![crate::regional::RegionalSection {
            leader: "coordinator.x.vrs.test".into(),
            helper: "helper.x.vrs.test".into(),
            min_nodes: 3,
        }];
        file.console.tls = Some(crate::console::ConsoleTls {
            cert: "console.pem".into(),
            key: "console.key".into(),
        });
        let mut keys = BTreeSet::new();
        key_paths(&serde_json::to_value(&file).unwrap(), "", &mut keys);
        keys
    }

    /// Every key the text names, set or commented out (`# key = …` under `[section]` or
    /// `# [section]`), as dotted paths; section names count too.
    fn keys_written(text: &str) -> BTreeSet<String> {
        let mut section = String::new();
        let mut keys = BTreeSet::new();
        for line in text.lines() {
            let line = line.trim_start_matches('#').trim();
            if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_string();
                keys.insert(section.clone());
            } else if let Some((key, _)) = line.split_once('=') {
                let key = key.trim().trim_matches('"');
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    keys.insert(format!("{section}.{key}"));
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_of_the_config_type_is_in_the_generated_file_and_the_sample() {
        let keys = keys_of_the_type();
        // The enumeration itself: the keys the issue names are among them.
        for k in [
            "policy.units",
            "policy.dimensions",
            "policy.protection_width",
            "policy.max_period_span_months",
            "log.format",
            "callers.identity",
            "tls.key",
            "fx",
        ] {
            assert!(keys.contains(k), "{k} not among {keys:?}");
        }
        let generated = keys_written(&initial_config("THA".parse().unwrap()));
        let missing: Vec<_> = keys.difference(&generated).collect();
        assert!(missing.is_empty(), "not in initial_config: {missing:?}");
        let sample: toml::Value =
            toml::from_str(include_str!("../../docs/samples/node.toml")).unwrap();
        let mut in_sample = BTreeSet::new();
        key_paths(&serde_json::to_value(&sample).unwrap(), "", &mut in_sample);
        let missing: Vec<_> = keys.difference(&in_sample).collect();
        assert!(
            missing.is_empty(),
            "not in docs/samples/node.toml: {missing:?}"
        );
        // The commented-out lists in the generated file are valid and complete.
        let text = initial_config("THA".parse().unwrap());
        let uncommented = text
            .replace("# units = ", "units = ")
            .replace("# dimensions = ", "dimensions = ")
            .replace("# protection_width = ", "protection_width = ");
        let c = NodeConfig::parse(&uncommented, Path::new("n.toml"), Path::new(".")).unwrap();
        assert_eq!(
            c.file.policy,
            crate::disclosure::PolicyConfig {
                protection_width: Some(5),
                ..crate::disclosure::PolicyConfig::default()
            }
        );
    }

    #[test]
    fn a_wrong_log_value_is_an_error() {
        for (section, want) in [
            ("[log]\nformat = \"jsn\"\n", "format"),
            ("[log]\nlevel = \"info,[=\"\n", "level"),
        ] {
            let text = format!("[node]\ncountry = \"THA\"\n{section}");
            let e = NodeConfig::parse(&text, Path::new("n.toml"), Path::new(".")).unwrap_err();
            assert!(matches!(e, ConfigError::Log { .. }), "{e:?}");
            assert!(e.to_string().contains(want), "{e}");
        }
        let ok = "[node]\ncountry = \"THA\"\n[log]\nformat = \"json\"\nlevel = \"vrs_node=debug,warn\"\n";
        assert!(NodeConfig::parse(ok, Path::new("n.toml"), Path::new(".")).is_ok());
    }

    #[test]
    fn the_shipped_sample_parses() {
        let text = include_str!("../../docs/samples/node.toml");
        let c = NodeConfig::parse(text, Path::new("node.toml"), Path::new("/srv/vrs")).unwrap();
        assert_eq!(
            c.privacy.caller_share_micro("coordinator.bali-rc.vrs.test"),
            500_000
        );
        assert_eq!(c.privacy.caller_share_micro("someone.else"), 1_000_000);
        assert_eq!(
            c.privacy.coverage_to().map(|m| m.to_string()).as_deref(),
            Some("2025-12")
        );
    }
}
