//! The node's web console for its own staff (DESIGN.md §8c; docs/CONSOLE.md): server-rendered
//! pages over HTTP on the node's own machine, never to the coordinator.
//!
//! - [`db`]: `console.sqlite` (0600): accounts, sessions, change log.
//! - [`accounts`]: users, roles, argon2id hashes, lockout after five wrong passwords.
//! - [`sessions`]: hashed random session ids, per-session CSRF tokens, idle and absolute expiry.
//! - [`changelog`]: the hash-chained log of every sign-in and change, and its verification.
//! - [`i18n`]: Fluent messages (English, Bahasa Indonesia), numbers and dates per language.
//! - [`web`]: what every request passes through: security headers, the CSRF check of every
//!   POST, the signed-in user and role checks, cookies.
//! - [`pages`]: one handler per page, each with its compiled (askama) template.
//! - [`records`]: the case pages (the ORT form, list, edit, drafts, review, soft delete), and
//!   [`case_form`]: the form as typed, read into a record by the import's own reader.
//! - [`cli`]: `vrs-node console` and `vrs-node user …`.
//! - Workflow pages: [`imports`] (upload, preview, commit or cancel), [`preview`] (the release
//!   preview: table, chart, budget cost), [`approvals`] (held queries, approve or deny).
//!
//! A request flows: [`web::guard`] (headers; POST → CSRF token checked against the session) →
//! a handler in [`pages`] that asks [`web::Viewer`] for the role it needs → blocking work
//! (SQLite, argon2) on the blocking pool → a template rendered with the viewer's language.
//!
//! The console writes `console.sqlite`; the store only through the import code (an upload's
//! commit, [`imports`]; the case pages, [`records`], through the import's own transaction);
//! the audit log only to decide a held query ([`approvals`], the same `AuditLog::decide` as
//! the CLI). Everything else it reads, read-only.
//! It listens on its own port (`[console] listen`, default `127.0.0.1:7480`), apart from the
//! federation's mutual-TLS port; a non-loopback address is refused unless `[console.tls]` is set.

pub mod accounts;
pub mod approvals;
pub mod case_form;
pub mod changelog;
pub mod cli;
pub mod db;
pub mod i18n;
pub mod imports;
pub mod pages;
pub mod preview;
pub mod records;
pub mod sessions;
pub mod web;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use vrs_core::clock::Clock;

use crate::config::NodeConfig;
use db::ConsoleDb;
use i18n::Catalog;
use sessions::Lifetimes;

/// `[console]` in node.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Address the console listens on. Default `127.0.0.1:7480` (the node's machine only). Any
    /// other than a loopback address needs `[console.tls]`.
    pub listen: SocketAddr,
    /// A session ends after this long without a request, seconds. Default 1800 (30 minutes).
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in whatever happens, seconds. Default 43200 (12 h).
    pub session_lifetime_secs: u64,
    /// How long five wrong passwords lock an account (an admin may unlock it sooner), seconds.
    /// Default 900 (15 minutes).
    pub lockout_secs: u64,
    /// Wrong sign-ins (all accounts together) accepted per minute; beyond, sign-in is refused
    /// for the rest of the minute. Default 20.
    pub sign_in_failures_per_minute: u32,
    /// `[console.tls]`: serve HTTPS with this certificate and key (PEM) instead of plain HTTP;
    /// session cookies are then `Secure`.
    pub tls: Option<ConsoleTls>,
    /// Records a clerk enters or edits in the ORT form wait for a reviewer's approval before
    /// they go into the store (and count). Default false: they count when saved.
    pub review_records: bool,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            idle_timeout_secs: 1_800,
            session_lifetime_secs: 43_200,
            lockout_secs: 900,
            sign_in_failures_per_minute: 20,
            tls: None,
            review_records: false,
        }
    }
}

/// `[console.tls]`: the console's own certificate (not the federation's: browsers do not trust
/// the federation CA). Relative paths are read against node.toml's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleTls {
    /// Certificate chain, leaf first, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Input the console refuses; each has a message in the Fluent files (`error-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// A username outside `a-z 0-9 . _ -`, or too long.
    #[error(
        "a username is 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )]
    Username,
    /// An empty or too long display name, or one with control characters.
    #[error("a display name is 1 to 100 characters, without control characters")]
    DisplayName,
    /// A password too short or too long.
    #[error("a password is 12 to 256 characters")]
    PasswordLength,
    /// The two passwords typed differ.
    #[error("the two passwords differ")]
    PasswordsDiffer,
    /// The username is taken.
    #[error("this username already exists")]
    UserExists,
    /// Disabling the last enabled admin.
    #[error("this is the last enabled admin: add or enable another admin first")]
    LastAdmin,
    /// Not one of the roles.
    #[error("a role is clerk, reviewer or admin")]
    Role,
}

impl Invalid {
    /// The Fluent message of this refusal.
    pub fn message_key(self) -> &'static str {
        match self {
            Invalid::Username => "error-username",
            Invalid::DisplayName => "error-display-name",
            Invalid::PasswordLength => "error-password-length",
            Invalid::PasswordsDiffer => "error-passwords-differ",
            Invalid::UserExists => "error-user-exists",
            Invalid::LastAdmin => "error-last-admin",
            Invalid::Role => "error-role",
        }
    }
}

/// Why the console or a `vrs-node user` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// `console.sqlite` failed.
    #[error("console.sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or socket failed.
    #[error("console: {0}")]
    Io(#[from] std::io::Error),
    /// Randomness or hashing failed.
    #[error("console: {0}")]
    Crypto(String),
    /// Input refused.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No account of this name.
    #[error("no user {0}")]
    NoSuchUser(String),
    /// The shipped message files do not parse (a defect of the build).
    #[error("console messages: {0}")]
    Messages(String),
    /// A template failed to render.
    #[error("console template: {0}")]
    Template(#[from] askama::Error),
    /// node.toml cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store cannot be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The audit log cannot be read.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// `[console.tls]` cannot be used.
    #[error("[console.tls]: {0}")]
    Tls(String),
    /// A non-loopback address without TLS.
    #[error(
        "[console] listen = {0} is not a loopback address: set [console.tls] (cert, key) to serve it beyond this machine"
    )]
    Exposed(SocketAddr),
    /// A worker task failed or a lock was poisoned by a panic.
    #[error("console: internal error ({0})")]
    Internal(String),
}

/// Everything a request may use: the node's configuration, the console's database, the
/// messages, the clock and the sign-in throttle.
#[derive(Debug)]
pub struct Console {
    config: NodeConfig,
    section: ConsoleSection,
    db: Mutex<ConsoleDb>,
    catalog: Catalog,
    clock: Arc<dyn Clock>,
    /// Times of the recent failed sign-ins (all accounts), for the per-minute limit.
    failures: Mutex<VecDeque<i64>>,
}

impl Console {
    /// The console of the node configured by `config`, reading the time from `clock`. Opens
    /// (creating if needed) `console.sqlite` in the data directory.
    pub fn new(config: NodeConfig, clock: Arc<dyn Clock>) -> Result<Console, ConsoleError> {
        let db = ConsoleDb::open(&config.data_dir())?;
        let section = config.file.console.clone();
        Ok(Console {
            config,
            section,
            db: Mutex::new(db),
            catalog: Catalog::shared()?,
            clock,
            failures: Mutex::new(VecDeque::new()),
        })
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Whether session cookies are marked `Secure` (the console is served over TLS).
    pub fn secure(&self) -> bool {
        self.section.tls.is_some()
    }

    fn lifetimes(&self) -> Lifetimes {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        Lifetimes {
            idle_ms: ms(self.section.idle_timeout_secs),
            absolute_ms: ms(self.section.session_lifetime_secs),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs `f` on the console's database on the blocking pool (SQLite and argon2 block).
    pub async fn with_db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ConsoleDb, i64) -> Result<T, ConsoleError> + Send + 'static,
    ) -> Result<T, ConsoleError> {
        let me = self.clone();
        blocking(move || {
            let mut db = me
                .db
                .lock()
                .map_err(|_| ConsoleError::Internal("console database lock poisoned".into()))?;
            f(&mut db, me.now_ms())
        })
        .await
    }

    /// Whether another failed sign-in is allowed now; records the failure when `failed`.
    fn sign_in_allowed(&self, now_ms: i64) -> bool {
        let Ok(mut recent) = self.failures.lock() else {
            return false;
        };
        while recent.front().is_some_and(|t| now_ms - *t >= 60_000) {
            recent.pop_front();
        }
        recent.len() < self.section.sign_in_failures_per_minute as usize
    }

    fn note_failure(&self, now_ms: i64) {
        if let Ok(mut recent) = self.failures.lock() {
            recent.push_back(now_ms);
        }
    }
}

/// Runs blocking work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConsoleError::Internal(format!("worker: {e}")))?
}

/// Checks where the console may listen: a loopback address, or any with TLS.
pub fn check_listen(addr: SocketAddr, section: &ConsoleSection) -> Result<(), ConsoleError> {
    if addr.ip().is_loopback() || section.tls.is_some() {
        Ok(())
    } else {
        Err(ConsoleError::Exposed(addr))
    }
}

/// Serves the console on `listener` until `shutdown` completes: plain HTTP/1.1, or HTTPS when
/// `[console.tls]` is set.
pub async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    let local = listener.local_addr()?;
    check_listen(local, &console.section)?;
    let tls = match &console.section.tls {
        Some(t) => Some(web::tls_config(t, &console.config.dir)?),
        None => None,
    };
    let app = pages::router(console.clone());
    tracing::info!(addr = %local, tls = tls.is_some(), "console serving");
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
        Some(config) => {
            let incoming = web::TlsListener::new(listener, config);
            axum::serve(incoming, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    tracing::info!("console stopped");
    Ok(())
}
