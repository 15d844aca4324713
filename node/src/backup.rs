//! `vrs-node backup` and `vrs-node restore`: a copy of a node that can be taken while it serves,
//! and put back only when it is whole.
//!
//! A backup is a directory holding `node.sqlite` and `audit.sqlite`, each copied with SQLite's
//! online backup API in one step (one read transaction, so each copy is a consistent snapshot of
//! its file while the service and imports go on writing), `node.toml`, `audit-key.pk8`,
//! `revoked.toml` when the node has one beside its configuration, and `manifest.json`, written
//! last: the SHA-256 and size of every file, the store's schema version and record counts and the
//! audit log's entry count and head hash, as read back from the copies. A directory without a
//! manifest is not a backup.
//!
//! The copies are single files in SQLite's rollback-journal mode, so a backup can be read from
//! read-only media. Every file is made 0600 and the directory 0700: a backup holds raw records,
//! the perturbation secret and the audit key.
//!
//! [`restore`] copies a backup into a staging directory inside the node directory, checking each
//! file's digest as it copies, then opens the staged copies: the audit chain must verify to the
//! manifest's head, the store must pass SQLite's integrity check with the manifest's counts, the
//! key and configuration must load. Only then are the files renamed into place (stale `-wal` and
//! `-shm` files of the old ones removed first). A node directory that is not empty is refused
//! unless `force` is given; the service must be stopped first.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use vrs_core::cli::IoError;
use vrs_core::clock::Clock;

use crate::audit::{AUDIT_FILE, AUDIT_KEY_FILE, AuditError, AuditLog};
use crate::config::{CONFIG_FILE, ConfigError, NodeConfig};
use crate::store::{SCHEMA_VERSION, STORE_FILE, Store, StoreError};

/// File name of the manifest inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The `format` a manifest of this version carries.
pub const FORMAT: &str = "vrs-node-backup/1";

/// File name of the revocation list beside node.toml (the default `[revocation] file`).
const REVOCATION_FILE: &str = "revoked.toml";

/// Files every backup holds.
const REQUIRED: [&str; 4] = [STORE_FILE, AUDIT_FILE, AUDIT_KEY_FILE, CONFIG_FILE];

/// Largest manifest read back (a real one is under a kilobyte).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Name of the staging directory a restore builds inside the node directory.
const STAGING: &str = ".vrs-restore";

/// Why a backup or a restore failed. Each message is for the operator at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory could not be read, written, created or moved.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The node's configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store cannot be read (or its copy is not sound).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log cannot be read.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// SQLite failed while copying or checking one file.
    #[error("{file}: {source}")]
    Sqlite {
        /// The file.
        file: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite kept the file busy for longer than a backup waits.
    #[error("{0}: the file stayed locked; try again")]
    Busy(&'static str),
    /// The backup directory exists and is not empty.
    #[error("{0} exists and is not empty: back up into a new directory")]
    TargetNotEmpty(PathBuf),
    /// The node directory is not empty and `--force` was not given.
    #[error(
        "{0} is not empty: stop the node and pass --force to replace its store, audit log, key and configuration"
    )]
    NodeNotEmpty(PathBuf),
    /// The audit chain is broken (in the node at backup time, or in the backup).
    #[error("{where_}: audit log broken at entry {seq}: {problem}")]
    AuditBroken {
        /// The node or the backup.
        where_: String,
        /// The entry where the chain breaks.
        seq: i64,
        /// What is wrong there.
        problem: String,
    },
    /// The directory has no readable manifest of this format.
    #[error("{path}: not a vrs-node backup: {why}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file does not match what the manifest says of it.
    #[error("backup refused: {file} {problem}")]
    Corrupt {
        /// The file.
        file: String,
        /// How it differs.
        problem: String,
    },
}

/// What a backup holds, written as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the backup was taken (milliseconds since the epoch, UTC).
    pub created_ms: i64,
    /// The same, for a person.
    pub created_utc: String,
    /// The `vrs-node` that took it.
    pub software: String,
    /// The node's country.
    pub country: String,
    /// The store as copied.
    pub store: StoreSummary,
    /// The audit log as copied.
    pub audit: AuditSummary,
    /// Every file of the backup but the manifest, by name.
    pub files: BTreeMap<String, FileDigest>,
}

/// The store in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSummary {
    /// `PRAGMA user_version`.
    pub schema_version: u32,
    /// Records (incidents and statistics rows).
    pub records: u64,
    /// Of which statistics rows.
    pub statistics_rows: u64,
    /// The store's data version.
    pub data_version: u64,
}

/// The audit log in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSummary {
    /// Entries, all verified.
    pub entries: u64,
    /// Sequence number of the last entry (0: none).
    pub head_seq: i64,
    /// Hash of the last entry.
    pub head_hash: String,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// Reads and checks `manifest.json` in a backup directory.
    pub fn load(backup: &Path) -> Result<Manifest, BackupError> {
        let path = backup.join(MANIFEST_FILE);
        let not_a_backup = |why: String| BackupError::Manifest {
            path: path.clone(),
            why,
        };
        let file = File::open(&path).map_err(|e| not_a_backup(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| not_a_backup(e.to_string()))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| not_a_backup(e.to_string()))?;
        if m.format != FORMAT {
            return Err(not_a_backup(format!(
                "format {:?}, this version reads {FORMAT:?}",
                m.format
            )));
        }
        for name in m.files.keys() {
            if !REQUIRED.contains(&name.as_str()) && name != REVOCATION_FILE {
                return Err(not_a_backup(format!("unexpected file {name:?} listed")));
            }
        }
        for name in REQUIRED {
            if !m.files.contains_key(name) {
                return Err(not_a_backup(format!("{name} is not listed")));
            }
        }
        Ok(m)
    }

    /// A few lines for the operator.
    pub fn summary(&self) -> String {
        format!(
            "  node {}, taken {} by {}\n  store: schema v{}, {} records ({} statistics rows), data version {}\n  audit log: {} entries, head {} {}\n  files: {}\n",
            self.country,
            self.created_utc,
            self.software,
            self.store.schema_version,
            self.store.records,
            self.store.statistics_rows,
            self.store.data_version,
            self.audit.entries,
            self.audit.head_seq,
            self.audit.head_hash,
            self.files
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `vrs-node backup`: backs up and prints what the backup holds.
pub fn run_backup(node: &Path, to: &Path, clock: &dyn Clock) -> Result<ExitCode, BackupError> {
    let m = backup(node, to, clock)?;
    print!(
        "Backed up to {} ({MANIFEST_FILE} lists every file and its SHA-256):\n{}",
        to.display(),
        m.summary()
    );
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node restore`: restores and prints what was put back.
pub fn run_restore(from: &Path, dir: &Path, force: bool) -> Result<ExitCode, BackupError> {
    let r = restore(from, dir, force)?;
    print!(
        "Restored {} into {} (every file, the audit chain and the store checked):\n{}",
        from.display(),
        dir.display(),
        r.manifest.summary()
    );
    if let Some(v) = r.migrated_from {
        println!("  the store was brought from schema v{v} to v{SCHEMA_VERSION}");
    }
    if let Some(d) = &r.data_dir_elsewhere {
        println!(
            "  note: node.toml sets [node] data_dir = {}; the store was restored into {}: edit data_dir or move the files",
            d.display(),
            dir.display()
        );
    }
    println!(
        "  note: if the node answered queries after this backup was taken, its audit log and privacy-loss ledger are back as they were then (docs/OPERATING.md, \"Back up and restore\")"
    );
    Ok(ExitCode::SUCCESS)
}

/// `node` (a node directory or its node.toml): the file node.toml is read from.
fn config_file(node: &Path) -> PathBuf {
    if node.is_dir() {
        node.join(CONFIG_FILE)
    } else {
        node.to_path_buf()
    }
}

/// Backs the node up into `to`, a new or empty directory, while it may be serving. Returns the
/// manifest written. On failure nothing is left in `to`.
pub fn backup(node: &Path, to: &Path, clock: &dyn Clock) -> Result<Manifest, BackupError> {
    let config_path = config_file(node);
    let config = NodeConfig::load(node)?;
    let data = config.data_dir();
    let created = make_empty_dir(to)?;
    let result = backup_into(&config_path, &data, to, clock);
    if result.is_err() {
        // Leave nothing that looks like part of a backup.
        if created {
            let _ = std::fs::remove_dir_all(to);
        } else {
            for name in
                REQUIRED
                    .iter()
                    .chain(&[REVOCATION_FILE, MANIFEST_FILE, "manifest.json.tmp"])
            {
                let _ = std::fs::remove_file(to.join(name));
            }
        }
    }
    result
}

fn backup_into(
    config_path: &Path,
    data: &Path,
    to: &Path,
    clock: &dyn Clock,
) -> Result<Manifest, BackupError> {
    let created_ms = clock.now_ms();
    online_copy(STORE_FILE, &data.join(STORE_FILE), &to.join(STORE_FILE))?;
    online_copy(AUDIT_FILE, &data.join(AUDIT_FILE), &to.join(AUDIT_FILE))?;
    copy_private(&data.join(AUDIT_KEY_FILE), &to.join(AUDIT_KEY_FILE))?;
    copy_private(config_path, &to.join(CONFIG_FILE))?;
    let revoked = config_path
        .parent()
        .map(|d| d.join(REVOCATION_FILE))
        .filter(|p| p.is_file());
    if let Some(revoked) = &revoked {
        copy_private(revoked, &to.join(REVOCATION_FILE))?;
    }

    // What the manifest says is read back from the copies, not the live files.
    let (country, store) = store_summary(to)?;
    let audit = audit_summary(
        &AuditLog::open_read_only(to)?,
        &format!("the node's audit log ({})", data.display()),
    )?;
    let mut files = BTreeMap::new();
    for name in REQUIRED
        .iter()
        .chain(revoked.is_some().then_some(&REVOCATION_FILE))
    {
        files.insert((*name).to_string(), digest_file(&to.join(name))?);
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        created_ms,
        created_utc: chrono::DateTime::from_timestamp_millis(created_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default(),
        software: format!("vrs-node {}", env!("CARGO_PKG_VERSION")),
        country,
        store,
        audit,
        files,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| {
        IoError::doing("write the manifest")(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e,
        ))
    })?;
    let tmp = to.join("manifest.json.tmp");
    write_private(&tmp, text.as_bytes())?;
    let path = to.join(MANIFEST_FILE);
    std::fs::rename(&tmp, &path).map_err(IoError::doing(format!("write {}", path.display())))?;
    sync_dir(to)?;
    Ok(manifest)
}

/// Copies one live SQLite file with the online backup API: all pages in one step, under one read
/// transaction, so the copy is the file as of one moment; writers in WAL mode go on meanwhile.
fn online_copy(file: &'static str, src: &Path, dst: &Path) -> Result<(), BackupError> {
    let sqlite = |source| BackupError::Sqlite { file, source };
    if !src.is_file() {
        return Err(match file {
            AUDIT_FILE => AuditError::Missing(src.to_path_buf()).into(),
            _ => StoreError::Missing(src.to_path_buf()).into(),
        });
    }
    // Read-only: a backup run as root never leaves root-owned -wal/-shm files for the service.
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    from.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite)?;
    create_private(dst)?;
    let mut to = Connection::open(dst).map_err(sqlite)?;
    {
        let copy = Backup::new(&from, &mut to).map_err(sqlite)?;
        let mut waits = 0;
        loop {
            match copy.step(-1).map_err(sqlite)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    waits += 1;
                    if waits > 200 {
                        return Err(BackupError::Busy(file));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                // StepResult is non-exhaustive; anything new is treated as not done yet.
                _ => {
                    waits += 1;
                    if waits > 200 {
                        return Err(BackupError::Busy(file));
                    }
                }
            }
        }
    }
    // One self-contained file (no -wal beside it): readable from read-only media.
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite)?;
    to.close().map_err(|(_, e)| sqlite(e))?;
    File::open(dst)
        .and_then(|f| f.sync_all())
        .map_err(IoError::doing(format!("flush {}", dst.display())))?;
    Ok(())
}

/// The country and counts of the store copy in `dir`.
fn store_summary(dir: &Path) -> Result<(String, StoreSummary), BackupError> {
    let store = match Store::open_read_only(dir) {
        Ok(s) => s,
        // A store written by an older version is brought up to date (as `serve` would do).
        Err(StoreError::TooOld { .. }) => {
            drop(Store::open(dir)?);
            Store::open_read_only(dir)?
        }
        Err(e) => return Err(e.into()),
    };
    let problems = store.integrity_problems()?;
    if !problems.is_empty() {
        return Err(BackupError::Corrupt {
            file: STORE_FILE.into(),
            problem: format!("fails SQLite's integrity check: {}", problems.join("; ")),
        });
    }
    Ok((
        store.country().as_str().to_string(),
        StoreSummary {
            schema_version: store.schema_version()?,
            records: store.incident_count()?,
            statistics_rows: store.statistics_count()?,
            data_version: store.data_version()?,
        },
    ))
}

/// The verified entry count and head of an audit log.
fn audit_summary(log: &AuditLog, where_: &str) -> Result<AuditSummary, BackupError> {
    match log.verify()? {
        Ok(entries) => {
            let (head_seq, head_hash) = log.head()?;
            Ok(AuditSummary {
                entries,
                head_seq,
                head_hash,
            })
        }
        Err(b) => Err(BackupError::AuditBroken {
            where_: where_.to_string(),
            seq: b.seq,
            problem: b.problem,
        }),
    }
}

/// What [`restore`] put in place.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest, every claim in it checked.
    pub manifest: Manifest,
    /// Whether the store was brought to this version's schema on the way.
    pub migrated_from: Option<u32>,
    /// Set when the restored node.toml keeps its store elsewhere (`[node] data_dir`).
    pub data_dir_elsewhere: Option<PathBuf>,
}

/// Restores the backup in `from` into the node directory `dir`, after checking it whole. `dir`
/// must be absent or empty unless `force`; then its store, audit log, key and configuration are
/// replaced (the node must not be running).
pub fn restore(from: &Path, dir: &Path, force: bool) -> Result<Restored, BackupError> {
    let manifest = Manifest::load(from)?;
    if dir.exists() {
        let stale_staging = dir.join(STAGING);
        if stale_staging.is_dir() {
            // Left by a restore that was interrupted: never part of a node.
            std::fs::remove_dir_all(&stale_staging).map_err(IoError::doing(format!(
                "remove {}",
                stale_staging.display()
            )))?;
        }
        if !force && !is_empty_dir(dir)? {
            return Err(BackupError::NodeNotEmpty(dir.to_path_buf()));
        }
    } else {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(IoError::doing(format!("create {}", dir.display())))?;
    }
    let staging = dir.join(STAGING);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(IoError::doing(format!("create {}", staging.display())))?;
    let result = stage(from, &staging, &manifest).and_then(|migrated_from| {
        put_in_place(&staging, dir, &manifest)?;
        Ok(migrated_from)
    });
    let _ = std::fs::remove_dir_all(&staging);
    let migrated_from = result?;
    let data_dir_elsewhere = NodeConfig::load(dir)
        .ok()
        .map(|c| c.data_dir())
        .filter(|d| !same_dir(d, dir));
    Ok(Restored {
        manifest,
        migrated_from,
        data_dir_elsewhere,
    })
}

/// Copies the backup into `staging`, checking each file's digest, then every claim of the
/// manifest against the copies. Returns the schema version the store was migrated from, if any.
fn stage(from: &Path, staging: &Path, manifest: &Manifest) -> Result<Option<u32>, BackupError> {
    for (name, want) in &manifest.files {
        let got = copy_checked(&from.join(name), &staging.join(name))?;
        if got.bytes != want.bytes {
            return Err(BackupError::Corrupt {
                file: name.clone(),
                problem: format!(
                    "is {} bytes, the manifest says {} (truncated or changed)",
                    got.bytes, want.bytes
                ),
            });
        }
        if got.sha256 != want.sha256 {
            return Err(BackupError::Corrupt {
                file: name.clone(),
                problem: "does not match its SHA-256 in the manifest (corrupt or changed)".into(),
            });
        }
    }
    let corrupt = |file: &str, problem: String| BackupError::Corrupt {
        file: file.to_string(),
        problem,
    };

    // The audit chain, to the manifest's head.
    let audit = audit_summary(&AuditLog::open_existing(staging)?, "the backup")?;
    if audit != manifest.audit {
        return Err(corrupt(
            AUDIT_FILE,
            format!(
                "holds {} entries to head {} {}, the manifest says {} to {} {}",
                audit.entries,
                audit.head_seq,
                audit.head_hash,
                manifest.audit.entries,
                manifest.audit.head_seq,
                manifest.audit.head_hash
            ),
        ));
    }

    // The store: schema, integrity, country and counts.
    let version = Store::schema_version_of(staging)?;
    if version != manifest.store.schema_version {
        return Err(corrupt(
            STORE_FILE,
            format!(
                "has schema v{version}, the manifest says v{}",
                manifest.store.schema_version
            ),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    {
        let conn =
            Connection::open(staging.join(STORE_FILE)).map_err(|source| BackupError::Sqlite {
                file: STORE_FILE,
                source,
            })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|source| BackupError::Sqlite {
                file: STORE_FILE,
                source,
            })?;
    }
    let (country, mut store) = store_summary(staging)?;
    let migrated_from = (store.schema_version != version).then_some(version);
    store.schema_version = version;
    if country != manifest.country || store != manifest.store {
        return Err(corrupt(
            STORE_FILE,
            format!(
                "holds node {country} with {store:?}, the manifest says {} with {:?}",
                manifest.country, manifest.store
            ),
        ));
    }

    // The key and the configuration load, and the configuration is this node's.
    let (_, made) = crate::audit::audit_key(staging)?;
    if made {
        return Err(corrupt(AUDIT_KEY_FILE, "is missing".into()));
    }
    let config = NodeConfig::load(&staging.join(CONFIG_FILE))?;
    if config.file.node.country.as_str() != manifest.country {
        return Err(corrupt(
            CONFIG_FILE,
            format!(
                "is for {}, the backup is of {}",
                config.file.node.country, manifest.country
            ),
        ));
    }
    Ok(migrated_from)
}

/// Renames the staged files over the node's; stale WAL files of the replaced databases go first
/// (SQLite would otherwise replay them into the restored file).
fn put_in_place(staging: &Path, dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let owner =
        std::fs::metadata(dir).map_err(IoError::doing(format!("read {}", dir.display())))?;
    for db in [STORE_FILE, AUDIT_FILE] {
        for suffix in ["-wal", "-shm", "-journal"] {
            let stale = dir.join(format!("{db}{suffix}"));
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(IoError::doing(format!("remove {}", stale.display()))(e).into());
                }
            }
        }
    }
    for name in manifest.files.keys() {
        let staged = staging.join(name);
        // The files belong to whoever owns the node directory (a restore run as root into
        // /var/lib/vrs leaves files the `vrs` service can open).
        let meta = std::fs::metadata(&staged)
            .map_err(IoError::doing(format!("read {}", staged.display())))?;
        if (meta.uid(), meta.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(&staged, Some(owner.uid()), Some(owner.gid()))
                .map_err(IoError::doing(format!("chown {}", staged.display())))?;
        }
        let target = dir.join(name);
        std::fs::rename(&staged, &target)
            .map_err(IoError::doing(format!("move {}", target.display())))?;
    }
    sync_dir(dir)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Makes `dir` (0700) or accepts it empty; returns whether it was made now.
fn make_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    if dir.exists() {
        if !is_empty_dir(dir)? {
            return Err(BackupError::TargetNotEmpty(dir.to_path_buf()));
        }
        return Ok(false);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(IoError::doing(format!("create {}", dir.display())))?;
    Ok(true)
}

fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    let mut entries =
        std::fs::read_dir(dir).map_err(IoError::doing(format!("read {}", dir.display())))?;
    Ok(entries.next().is_none())
}

fn create_private(path: &Path) -> Result<File, BackupError> {
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(IoError::doing(format!("create {}", path.display())))?)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = create_private(path)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(IoError::doing(format!("write {}", path.display())))?;
    Ok(())
}

/// Copies a plain file (0600), flushed.
fn copy_private(src: &Path, dst: &Path) -> Result<(), BackupError> {
    let mut from = File::open(src).map_err(IoError::doing(format!("read {}", src.display())))?;
    let mut to = create_private(dst)?;
    std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .map_err(IoError::doing(format!("copy {}", src.display())))?;
    Ok(())
}

/// Copies `src` to a new 0600 file `dst`, hashing what was written: the digest checked is that
/// of the bytes restored, not of a second read.
fn copy_checked(src: &Path, dst: &Path) -> Result<FileDigest, BackupError> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut from = File::open(src).map_err(|e| BackupError::Corrupt {
        file: name,
        problem: format!("cannot be read: {e}"),
    })?;
    let mut to = create_private(dst)?;
    let digest = hash_through(&mut from, Some(&mut to))
        .map_err(IoError::doing(format!("copy {}", src.display())))?;
    to.sync_all()
        .map_err(IoError::doing(format!("flush {}", dst.display())))?;
    Ok(digest)
}

fn digest_file(path: &Path) -> Result<FileDigest, BackupError> {
    let mut f = File::open(path).map_err(IoError::doing(format!("read {}", path.display())))?;
    Ok(hash_through(&mut f, None).map_err(IoError::doing(format!("read {}", path.display())))?)
}

/// SHA-256 and length of everything read from `from`, written on to `to` if given.
fn hash_through(from: &mut File, mut to: Option<&mut File>) -> std::io::Result<FileDigest> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        ctx.update(chunk);
        if let Some(to) = to.as_deref_mut() {
            to.write_all(chunk)?;
        }
        bytes += n as u64;
    }
    Ok(FileDigest {
        bytes,
        sha256: hex::encode(ctx.finish()),
    })
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(IoError::doing(format!("flush {}", dir.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_core::clock::ManualClock;

    fn node() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::create(dir.path(), "IDN".parse().unwrap()).unwrap());
        drop(AuditLog::open(dir.path()).unwrap());
        crate::audit::audit_key(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            crate::config::initial_config("IDN".parse().unwrap()),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_manifest_lists_every_file_and_reads_back() {
        let n = node();
        let out = tempfile::tempdir().unwrap();
        let to = out.path().join("b");
        let m = backup(n.path(), &to, &ManualClock::new(1_764_000_000_000)).unwrap();
        assert_eq!(m.created_utc, "2025-11-24T16:00:00Z");
        assert_eq!(m.country, "IDN");
        assert_eq!(m.audit.entries, 0);
        assert_eq!(
            m.files.keys().map(String::as_str).collect::<Vec<_>>(),
            [AUDIT_KEY_FILE, AUDIT_FILE, STORE_FILE, CONFIG_FILE]
        );
        assert_eq!(Manifest::load(&to).unwrap(), m);
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(&to).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // The copies are single files: no -wal beside them.
        assert!(!to.join("node.sqlite-wal").exists());
    }

    #[test]
    fn a_backup_goes_only_into_a_new_or_empty_directory() {
        let n = node();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("something"), "x").unwrap();
        let e = backup(n.path(), out.path(), &ManualClock::new(0)).unwrap_err();
        assert!(matches!(e, BackupError::TargetNotEmpty(_)), "{e}");
    }

    #[test]
    fn a_failed_backup_leaves_nothing() {
        let n = node();
        std::fs::remove_file(n.path().join(AUDIT_FILE)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let e = backup(n.path(), out.path(), &ManualClock::new(0)).unwrap_err();
        assert!(e.to_string().contains("no audit log"), "{e}");
        assert!(is_empty_dir(out.path()).unwrap());
    }

    #[test]
    fn manifests_naming_other_files_or_formats_are_refused() {
        let n = node();
        let out = tempfile::tempdir().unwrap();
        let to = out.path().join("b");
        backup(n.path(), &to, &ManualClock::new(0)).unwrap();
        let text = std::fs::read_to_string(to.join(MANIFEST_FILE)).unwrap();
        let edit = |from: &str, with: &str, why: &str| {
            std::fs::write(to.join(MANIFEST_FILE), text.replacen(from, with, 1)).unwrap();
            let e = Manifest::load(&to).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        };
        edit("\"node.toml\"", "\"../../etc/passwd\"", "unexpected file");
        edit(FORMAT, "vrs-node-backup/9", "format");
        edit("\"country\"", "\"countri\"", "unknown field");
    }
}
