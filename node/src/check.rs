//! `vrs-node check`: everything an operator should know before serving, in one report.
//!
//! Checks the configuration (parses, policy above its floors), the TLS files (readable, the key
//! matches the certificate, the certificate chains to the CA, carries this node's identity, and
//! is not expired or about to be), the allowed callers (signing keys well-formed), the revocation
//! list, the store (schema, SQLite integrity, foreign keys, country matches), and the audit log's
//! hash chain. Each line says what is wrong and, where it can, what to do.

use std::fmt::Write as _;
use std::path::Path;

use vrs_core::clock::Clock;
use vrs_core::signing::PublicKey;

use crate::audit::AuditLog;
use crate::config::NodeConfig;
use crate::store::Store;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: the node cannot serve correctly.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Level.
    pub level: Level,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub message: String,
}

/// All findings.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, what: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            level,
            what: what.to_string(),
            message: message.into(),
        });
    }

    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Fail)
    }

    /// Text for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {}: {}", f.what, f.message);
        }
        let fails = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Fail)
            .count();
        let warns = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Warn)
            .count();
        let _ = writeln!(
            out,
            "{fails} failed, {warns} warnings, {} checks",
            self.findings.len()
        );
        out
    }
}

/// Days before expiry at which a certificate is reported.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

fn check_certificate(report: &mut Report, config: &NodeConfig, clock: &dyn Clock) {
    let Some(tls) = &config.file.tls else {
        report.add(
            Level::Warn,
            "tls",
            "no [tls] section: `serve` will refuse to start",
        );
        return;
    };
    match vrs_core::tls::server_config(tls) {
        Ok(_) => report.add(
            Level::Ok,
            "tls",
            "CA, certificate and key load; the key matches",
        ),
        Err(e) => {
            report.add(Level::Fail, "tls", e.to_string());
            return;
        }
    }
    let read_pem = |p: &Path| -> Result<Vec<u8>, String> {
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(pem.contents)
    };
    let (cert_der, ca_der) = match (read_pem(&tls.cert), read_pem(&tls.ca)) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => {
            report.add(Level::Fail, "certificate", e);
            return;
        }
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&cert_der),
        x509_parser::parse_x509_certificate(&ca_der),
    ) else {
        report.add(
            Level::Fail,
            "certificate",
            "cannot parse the certificate or the CA",
        );
        return;
    };
    match cert.verify_signature(Some(ca.public_key())) {
        Ok(()) => report.add(
            Level::Ok,
            "certificate chain",
            "signed by the configured CA",
        ),
        Err(_) => report.add(
            Level::Fail,
            "certificate chain",
            "not signed by the configured CA",
        ),
    }
    let expected = vrs_core::tls::node_identity(config.file.node.country.as_str());
    match vrs_core::tls::cert_identity(&cert_der) {
        Ok(id) if id == expected => {
            report.add(Level::Ok, "certificate identity", format!("SAN {id}"))
        }
        Ok(id) => report.add(
            Level::Fail,
            "certificate identity",
            format!("SAN {id}, but coordinators expect {expected} for this country"),
        ),
        Err(e) => report.add(Level::Fail, "certificate identity", e.to_string()),
    }
    let now = clock.now_secs();
    for (name, c) in [("certificate", &cert), ("CA", &ca)] {
        let not_after = c.validity().not_after.timestamp();
        let not_before = c.validity().not_before.timestamp();
        let days = (not_after - now) / 86_400;
        if now < not_before {
            report.add(Level::Fail, &format!("{name} validity"), "not valid yet");
        } else if now > not_after {
            report.add(
                Level::Fail,
                &format!("{name} validity"),
                "expired: issue a new one (docs/OPERATING.md)",
            );
        } else if days < EXPIRY_WARNING_DAYS {
            report.add(
                Level::Warn,
                &format!("{name} validity"),
                format!("expires in {days} days: rotate it"),
            );
        } else {
            report.add(
                Level::Ok,
                &format!("{name} validity"),
                format!("valid for {days} more days"),
            );
        }
    }
}

/// Runs every check for the node whose `node.toml` is at `config_path` (or in that directory);
/// certificate validity is judged at `clock`'s time.
pub fn run(config_path: &Path, clock: &dyn Clock) -> Report {
    let mut report = Report::default();
    let config = match NodeConfig::load(config_path) {
        Ok(c) => {
            report.add(
                Level::Ok,
                "configuration",
                format!(
                    "parsed; policy: {}",
                    c.policy.in_words(!c.privacy.is_zcdp())
                ),
            );
            if c.privacy.is_zcdp() {
                report.add(
                    Level::Ok,
                    "protection",
                    format!(
                        "zCDP: a lifetime budget of rho {} per quarter of records (default rho {} per query), every figure noised; coverage from {}",
                        crate::disclosure::zcdp::rho_of(c.privacy.rho_per_quarter_micro()),
                        crate::disclosure::zcdp::rho_of(c.privacy.default_rho_micro()),
                        c.privacy.coverage_from()
                    ),
                );
            } else {
                report.add(
                    Level::Warn,
                    "protection",
                    "rules_v1 mode: NOT protected against a caller who asks many different questions (suppressed cells can be rebuilt exactly by averaging and least squares); set [privacy] mode = \"zcdp\" unless your federation accepts this",
                );
            }
            c
        }
        Err(e) => {
            report.add(Level::Fail, "configuration", e.to_string());
            return report;
        }
    };
    if config.file.callers.is_empty() {
        report.add(
            Level::Warn,
            "callers",
            "no [[callers]]: no coordinator may query this node",
        );
    }
    for c in &config.file.callers {
        let bad = c
            .signing_keys
            .iter()
            .filter(|k| PublicKey::from_hex(k).is_err())
            .count();
        if c.signing_keys.is_empty() {
            report.add(
                Level::Fail,
                "callers",
                format!(
                    "{} has no signing key: its queries cannot verify",
                    c.identity
                ),
            );
        } else if bad > 0 {
            report.add(
                Level::Fail,
                "callers",
                format!(
                    "{}: {bad} signing key(s) are not 64 hex characters",
                    c.identity
                ),
            );
        } else {
            report.add(
                Level::Ok,
                "callers",
                format!("{} ({} signing key(s))", c.identity, c.signing_keys.len()),
            );
        }
    }
    check_certificate(&mut report, &config, clock);
    let revocation = config.revocation_file();
    if revocation.exists() {
        match std::fs::read_to_string(&revocation)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                toml::from_str::<crate::revocation::RevokedFile>(&t).map_err(|e| e.to_string())
            }) {
            Ok(f) => report.add(
                Level::Ok,
                "revocation list",
                format!(
                    "{} certificate(s), {} signing key(s) revoked",
                    f.certificates.len(),
                    f.signing_keys.len()
                ),
            ),
            Err(e) => report.add(
                Level::Fail,
                "revocation list",
                format!("{}: {e}", revocation.display()),
            ),
        }
    }
    let dir = config.data_dir();
    match Store::open_read_only(&dir) {
        Ok(store) => {
            if store.country() != config.file.node.country {
                report.add(
                    Level::Fail,
                    "store",
                    format!(
                        "holds {} but node.toml says {}",
                        store.country(),
                        config.file.node.country
                    ),
                );
            }
            let counts = store
                .incident_count()
                .and_then(|n| Ok((n, store.statistics_count()?)));
            match (store.integrity_problems(), counts, store.period_range()) {
                (Ok(p), Ok((n, stats)), Ok(range)) if p.is_empty() => report.add(
                    Level::Ok,
                    "store",
                    format!(
                        "integrity ok, {} incidents{}{}",
                        n - stats.min(n),
                        if stats > 0 {
                            format!(" and {stats} statistics rows")
                        } else {
                            String::new()
                        },
                        range
                            .map(|(a, b)| format!(", {a} to {b}"))
                            .unwrap_or_default()
                    ),
                ),
                (Ok(p), _, _) if !p.is_empty() => report.add(Level::Fail, "store", p.join("; ")),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    report.add(Level::Fail, "store", e.to_string())
                }
                _ => {}
            }
            // zCDP releases only the declared coverage: records outside it are never counted.
            if config.privacy.is_zcdp()
                && let Ok(Some((first, last))) = store.period_range()
            {
                let today =
                    crate::universe::current_month(clock.now_ms(), config.privacy.coverage_from());
                let (from, to) = crate::universe::coverage(&config.privacy, today);
                if first < from || last > to {
                    report.add(
                        Level::Warn,
                        "coverage",
                        format!(
                            "records run from {first} to {last} but the declared coverage is {from} to {to}: records outside it are never released (set [privacy] coverage_from / coverage_to)"
                        ),
                    );
                }
            }
            if store.perturbation_secret().is_err() {
                report.add(Level::Fail, "store", "perturbation secret missing");
            }
        }
        Err(e) => report.add(Level::Fail, "store", e.to_string()),
    }
    match AuditLog::open_existing(&dir) {
        Ok(log) => match log.verify() {
            Ok(Ok(n)) => report.add(
                Level::Ok,
                "audit log",
                format!("hash chain intact, {n} entries"),
            ),
            Ok(Err(b)) => report.add(
                Level::Fail,
                "audit log",
                format!("chain breaks at entry {}: {}", b.seq, b.problem),
            ),
            Err(e) => report.add(Level::Fail, "audit log", e.to_string()),
        },
        Err(_) if dir.join(crate::audit::AUDIT_KEY_FILE).exists() => report.add(
            Level::Fail,
            "audit log",
            "missing, but the node has an audit key: the log was removed (coordinators holding \
             its receipts will see it)",
        ),
        Err(_) => report.add(Level::Ok, "audit log", "none yet (created on first query)"),
    }
    match std::fs::read(dir.join(crate::audit::AUDIT_KEY_FILE)) {
        Ok(bytes) => match vrs_core::signing::SigningKey::from_pkcs8(&bytes) {
            Ok(k) => report.add(
                Level::Ok,
                "audit key",
                format!("signs receipts as {}", k.public_key().to_hex()),
            ),
            Err(_) => report.add(Level::Fail, "audit key", "not an Ed25519 PKCS#8 key"),
        },
        Err(_) => report.add(
            Level::Ok,
            "audit key",
            "none yet (made when the node starts)",
        ),
    }
    report
}
