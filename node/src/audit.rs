//! The node's audit log: every query it answers, refuses or holds for approval, in an
//! append-only, hash-chained SQLite file (`audit.sqlite`, beside the store).
//!
//! Entry `n` stores the caller's certificate identity, the signed envelope exactly as received,
//! its signature and key id, the outcome, and the SHA-256 digest of the released answer. Its
//! `hash` is SHA-256 over the previous entry's hash and every field of entry `n`, each
//! length-prefixed, so editing, removing, inserting or reordering any entry breaks the chain at
//! that point, and [`AuditLog::verify`] names where. Triggers refuse `UPDATE` and `DELETE`, so only
//! someone bypassing SQLite's own checks can change history, and then `verify` shows it.
//!
//! The same file remembers the query ids the node has accepted (`seen_query`), so replay
//! protection survives a restart, and the queries waiting for the operator's approval.
//! Released values are never written here: only the digest of the released answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// File name of the audit log inside a node directory.
pub const AUDIT_FILE: &str = "audit.sqlite";

/// Hash of the (absent) entry before the first.
pub use vrs_core::audit_chain::GENESIS;
use vrs_core::audit_chain::entry_hash;
use vrs_core::group_flush::GroupFlush;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS audit (
    seq           INTEGER PRIMARY KEY,
    at_ms         INTEGER NOT NULL,
    caller        TEXT NOT NULL,
    query_id      TEXT NOT NULL,
    envelope      BLOB NOT NULL,
    signature     BLOB NOT NULL,
    key_id        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    answer_digest TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    privacy       TEXT NOT NULL DEFAULT ''
);
-- The daily budget counts a caller's answered queries since midnight: this index holds all three
-- columns, so the count reads index entries only, never the entries' envelopes. (Logs written
-- before it had audit_caller_time(caller, at_ms), which left every counted row to be read.)
DROP INDEX IF EXISTS audit_caller_time;
CREATE INDEX IF NOT EXISTS audit_caller_outcome_time ON audit(caller, outcome, at_ms);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- One row the health probe rewrites: proof the file takes a committed write (not part of the chain).
CREATE TABLE IF NOT EXISTS health_probe (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS seen_query (
    query_id TEXT PRIMARY KEY,
    at_ms    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS pending (
    query_id    TEXT PRIMARY KEY,
    caller      TEXT NOT NULL,
    query       BLOB NOT NULL,
    summary     TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'answered')),
    decided_ms  INTEGER
) WITHOUT ROWID;
"#;

/// File name of the node's audit key (Ed25519, PKCS#8) inside a node directory: it signs the
/// head of the audit log in every answer and in `Describe` (an audit receipt), so a coordinator
/// holding receipts can tell a rewritten log from the one it was shown.
pub const AUDIT_KEY_FILE: &str = "audit-key.pk8";

/// Loads the node's audit key, making one (0600) when the directory has none. Returns the key
/// and whether it was made now. A key file that exists but cannot be read or parsed is an error,
/// never replaced: a new key is what a coordinator sees when a log is replaced.
pub fn audit_key(dir: &Path) -> Result<(vrs_core::signing::SigningKey, bool), AuditError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(AUDIT_KEY_FILE);
    let unreadable = |why: String| AuditError::Corrupt(format!("{}: {why}", path.display()));
    match std::fs::read(&path) {
        Ok(bytes) => vrs_core::signing::SigningKey::from_pkcs8(&bytes)
            .map(|k| (k, false))
            .map_err(|_| unreadable("not an Ed25519 PKCS#8 key".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 =
                vrs_core::signing::generate_pkcs8().map_err(|e| unreadable(e.to_string()))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(&pkcs8)?;
            f.sync_all()?;
            let key = vrs_core::signing::SigningKey::from_pkcs8(&pkcs8)
                .map_err(|e| unreadable(e.to_string()))?;
            Ok((key, true))
        }
        Err(e) => Err(AuditError::Io(e)),
    }
}

/// Creates `path` empty with mode 0600 unless it exists (an existing file is left as it is), so
/// that SQLite, opening it next, never makes it with the process's umask: for the node's SQLite
/// files that hold signed queries, the ledger or accounts (audit.sqlite, console.sqlite).
pub(crate) fn ensure_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// SQLite failed.
    #[error("audit log: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No audit log in this directory.
    #[error("no audit log at {0}")]
    Missing(PathBuf),
    /// No pending query with this id.
    #[error("no pending query {0}")]
    NoSuchPending(String),
    /// The file cannot be created.
    #[error("audit log: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value does not read back.
    #[error("audit log: corrupt {0}")]
    Corrupt(String),
}

/// One audit entry as written (its fields are hashed as [`vrs_core::audit_chain`] says, so an
/// auditor can recompute the chain from an export).
pub use vrs_core::audit_chain::NewEntry;

/// One audit entry as read back: the form `audit export` writes, which an auditor's tool reads
/// back and recomputes ([`vrs_core::audit_chain::verify_export`]).
pub use vrs_core::audit_chain::ExportedEntry as Entry;

/// The question an entry's signed envelope asks, in words ([`vrs_core::query::RawQuery::in_words`],
/// as `approvals list` shows it), or `None` when the envelope is not a query envelope (the entry
/// of a malformed request). The text is the caller's: sanitize it before printing.
pub fn question_in_words(envelope_hex: &str) -> Option<String> {
    use prost::Message as _;
    let bytes = hex::decode(envelope_hex).ok()?;
    let envelope = vrs_proto::pb::QueryEnvelope::decode(bytes.as_slice()).ok()?;
    Some(crate::service::raw_query(envelope.query?).in_words())
}

/// Where the chain breaks, as found by [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The entry at which the chain no longer holds.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// A query held for the operator's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// Query id.
    pub query_id: String,
    /// Caller identity.
    pub caller: String,
    /// One-line description of the query.
    pub summary: String,
    /// When it arrived.
    pub received_ms: i64,
    /// pending / approved / denied / answered.
    pub state: String,
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    pub(crate) conn: Connection,
    /// Makes grouped commits durable (see [`GroupSync`]).
    sync: Arc<GroupSync>,
    /// [`AuditLog::answered_since`] counted so far, per caller and start time: the last entry
    /// counted and the count. Entries are append-only, so later calls count only newer ones.
    answered: std::cell::RefCell<HashMap<(String, i64), (i64, u64)>>,
}

/// Group commit: an answer's entry is committed without its own flush
/// ([`AuditLog::append_grouped`], [`AuditLog::commit_release_grouped`]), and the answer waits on
/// the [`Durable`] it got back, outside the log's lock, until one flush of the WAL has covered
/// it ([`GroupFlush`]). Concurrent answers commit while an earlier flush runs and are then made
/// durable together by the next one: one fsync for many answers, and still no answer leaves
/// before its entry is on disk. A WAL is appended in order, so a flush covers every commit
/// written before it; a checkpoint at `synchronous = NORMAL` flushes the WAL before it copies
/// anything out of it.
#[derive(Debug)]
pub struct GroupSync {
    wal: PathBuf,
    /// The WAL file as the last flush opened it, with its identity (only the one flushing
    /// caller touches it).
    opened: Mutex<Option<(std::fs::File, FileId)>>,
    group: GroupFlush,
}

/// A file's device and inode, read by `statx` asking for nothing else. Asking for its times
/// (`stat`, `fstat`, `std::fs::metadata`) would make the file system (one with fine-grained
/// timestamps on demand, ext4 on Linux ≥ 6.13) stamp the next write with a new modification
/// time, and without a journal `fdatasync` then writes the inode too: a third synchronous write
/// in every flush (issue 15, item 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: (u32, u32),
    ino: u64,
}

impl FileId {
    fn of(st: &rustix::fs::Statx) -> FileId {
        FileId {
            dev: (st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
        }
    }

    /// From a full `stat`, where `statx` cannot be had (a kernel before 4.11, or a sandbox
    /// that filters it): correct, only without the saving.
    fn of_metadata(m: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev())),
            ino: m.ino(),
        }
    }

    fn at(path: &Path) -> std::io::Result<FileId> {
        let asked = rustix::fs::statx(
            rustix::fs::CWD,
            path,
            rustix::fs::AtFlags::empty(),
            rustix::fs::StatxFlags::INO,
        );
        match asked {
            Ok(st) => Ok(FileId::of(&st)),
            Err(e) if no_statx(e) => Ok(FileId::of_metadata(&std::fs::metadata(path)?)),
            Err(e) => Err(e.into()),
        }
    }

    fn of_file(file: &std::fs::File) -> std::io::Result<FileId> {
        let asked = rustix::fs::statx(
            file,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::INO,
        );
        match asked {
            Ok(st) => Ok(FileId::of(&st)),
            Err(e) if no_statx(e) => Ok(FileId::of_metadata(&file.metadata()?)),
            Err(e) => Err(e.into()),
        }
    }
}

/// `statx` itself is missing or refused (not: the file is missing).
fn no_statx(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM
}

/// A committed entry that is not yet known to be durable: [`Durable::wait`] before releasing
/// anything that depends on it.
#[derive(Debug)]
#[must_use = "an answer may leave only after its audit entry is durable"]
pub struct Durable {
    sync: Arc<GroupSync>,
    ticket: u64,
}

impl GroupSync {
    fn new(db: &Path) -> GroupSync {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        GroupSync {
            wal: PathBuf::from(wal),
            opened: Mutex::new(None),
            group: GroupFlush::new(),
        }
    }

    /// Notes one more grouped commit; called with the log's lock held, after the commit.
    fn written(self: &Arc<Self>) -> Durable {
        Durable {
            sync: self.clone(),
            ticket: self.group.written(),
        }
    }

    /// Flushes done so far.
    pub fn flushes(&self) -> u64 {
        self.group.flushes()
    }

    /// `fdatasync` of the WAL file now at the log's path: the file opened by an earlier flush
    /// when it is still that file (same device and inode, [`FileId`]), else opened again.
    fn flush_wal(&self) -> std::io::Result<()> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        let now = FileId::at(&self.wal)?;
        if !opened.as_ref().is_some_and(|(_, id)| *id == now) {
            let file = std::fs::OpenOptions::new().write(true).open(&self.wal)?;
            // The identity of what was opened, not of what the path held a moment before.
            let id = FileId::of_file(&file)?;
            *opened = Some((file, id));
        }
        match opened.as_ref() {
            Some((f, _)) => f.sync_data(),
            None => Err(std::io::Error::other("the WAL file is not open")),
        }
    }
}

impl Durable {
    /// Returns once the entry is on disk: by a flush that started after it was written, made
    /// by this caller or by another one waiting at the same time. A failed flush makes nothing
    /// durable: this caller refuses, the others try again.
    pub fn wait(self) -> Result<(), AuditError> {
        let sync = &self.sync;
        Ok(sync.group.wait(self.ticket, || sync.flush_wal())?)
    }
}

impl AuditLog {
    /// Opens (creating if needed) the audit log in a node directory.
    pub fn open(dir: &Path) -> Result<AuditLog, AuditError> {
        let path = dir.join(AUDIT_FILE);
        // Created 0600 before SQLite opens it (its -wal and -shm files take the same mode): the
        // log holds every signed query and the ledger (issue 12, item 11).
        ensure_private_file(&path)?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Switching a new file to WAL needs the file to itself and SQLite does not wait for it
        // (the busy timeout does not apply): when several openers race on a new log, retry.
        let mut tries = 0;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // One writer at a time sets the schema up (several services or tools may open the
        // file together); logs written before the ledger get its column.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let set_up = (|| -> Result<(), rusqlite::Error> {
            conn.execute_batch(SCHEMA)?;
            let has_privacy: bool = conn
                .prepare("SELECT 1 FROM pragma_table_info('audit') WHERE name = 'privacy'")?
                .exists([])?;
            if !has_privacy {
                conn.execute_batch(
                    "ALTER TABLE audit ADD COLUMN privacy TEXT NOT NULL DEFAULT ''",
                )?;
            }
            conn.execute_batch(crate::ledger::SCHEMA)
        })();
        match set_up {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
        Ok(AuditLog {
            conn,
            sync: Arc::new(GroupSync::new(&path)),
            answered: Default::default(),
        })
    }

    /// Opens an existing audit log without creating one.
    pub fn open_existing(dir: &Path) -> Result<AuditLog, AuditError> {
        let path = dir.join(AUDIT_FILE);
        if !path.exists() {
            return Err(AuditError::Missing(path));
        }
        Self::open(dir)
    }

    /// Opens an existing audit log read-only: no schema set-up, no change of journal mode, so a
    /// copy (a backup) is read without being written to.
    pub fn open_read_only(dir: &Path) -> Result<AuditLog, AuditError> {
        let path = dir.join(AUDIT_FILE);
        if !path.exists() {
            return Err(AuditError::Missing(path));
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(AuditLog {
            conn,
            sync: Arc::new(GroupSync::new(&path)),
            answered: Default::default(),
        })
    }

    /// Appends an entry; returns its sequence number and hash.
    pub fn append(&mut self, e: &NewEntry<'_>) -> Result<(i64, String), AuditError> {
        let tx = Immediate::begin(&self.conn)?;
        let appended = append_in(&tx, e)?;
        tx.commit()?;
        Ok(appended)
    }

    /// Appends an entry with group commit: committed now, durable once the returned
    /// [`Durable`] has been waited on (after the caller let go of the log).
    pub fn append_grouped(
        &mut self,
        e: &NewEntry<'_>,
    ) -> Result<((i64, String), Durable), AuditError> {
        self.unflushed(|log| log.append(e))
    }

    /// Runs `write` with commits left unflushed, and notes them for the group flush.
    pub(crate) fn unflushed<T>(
        &mut self,
        write: impl FnOnce(&mut AuditLog) -> Result<T, AuditError>,
    ) -> Result<(T, Durable), AuditError> {
        let written = self.flushed_later(write)?;
        Ok((written, self.sync.written()))
    }

    /// Runs `write` with its commits left unflushed, for writes that a later flushed commit
    /// always follows before anything is released (a WAL is written in order, so that flush
    /// makes them durable too).
    pub(crate) fn flushed_later<T>(
        &mut self,
        write: impl FnOnce(&mut AuditLog) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        self.conn
            .prepare_cached("PRAGMA synchronous = NORMAL")?
            .execute([])?;
        let written = write(self);
        self.conn
            .prepare_cached("PRAGMA synchronous = FULL")?
            .execute([])?;
        written
    }

    /// The log's group flush (for figures and tests).
    pub fn group_sync(&self) -> &GroupSync {
        &self.sync
    }
}

/// A `BEGIN IMMEDIATE` transaction whose `BEGIN`, `COMMIT` and `ROLLBACK` are cached
/// statements: parsed once per connection, not once per answer (`execute_batch` parsed them on
/// every audit write, ~1.3% of a light answer's CPU). Rolled back when dropped uncommitted
/// (an error, or a panic), like `rusqlite::Transaction`.
pub(crate) struct Immediate<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Immediate<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> Result<Immediate<'c>, rusqlite::Error> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Immediate { conn, open: true })
    }

    /// Commits; on an error (a `COMMIT` refused as busy, say) the drop rolls back.
    pub(crate) fn commit(mut self) -> Result<(), rusqlite::Error> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Immediate<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let rolled_back = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
            if let Err(error) = rolled_back {
                tracing::error!(%error, "audit log: rollback failed");
            }
        }
    }
}

/// Appends an entry inside an open transaction (so that a ledger commit and its audit entry are
/// one write); returns its sequence number and hash.
pub(crate) fn append_in(tx: &Connection, e: &NewEntry<'_>) -> Result<(i64, String), AuditError> {
    {
        let last: Option<(i64, String)> = tx
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        let hash = entry_hash(&prev, seq, e);
        tx.prepare_cached(
            "INSERT INTO audit(seq, at_ms, caller, query_id, envelope, signature, key_id, outcome, answer_digest, prev_hash, hash, privacy)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![seq, e.at_ms, e.caller, e.query_id, e.envelope, e.signature, e.key_id, e.outcome, e.answer_digest, prev, hash, e.privacy])?;
        Ok((seq, hash))
    }
}

impl AuditLog {
    /// A committed write to the probe row, waiting at most a second for the write lock: what
    /// the health service checks. The chain is not touched.
    pub fn probe_write(&mut self) -> Result<(), AuditError> {
        self.conn.busy_timeout(std::time::Duration::from_secs(1))?;
        let probed = (|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO health_probe(id, at_ms) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms",
                [now],
            )?;
            tx.commit()
        })();
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(probed?)
    }

    /// Every entry, in order (for `audit show` / `export`).
    pub fn entries(&self, since_seq: i64, limit: i64) -> Result<Vec<Entry>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, caller, query_id, envelope, signature, key_id, outcome, answer_digest, prev_hash, hash, privacy
             FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since_seq, limit], |r| {
            Ok(Entry {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                caller: r.get(2)?,
                query_id: r.get(3)?,
                envelope_hex: hex::encode(r.get::<_, Vec<u8>>(4)?),
                signature_hex: hex::encode(r.get::<_, Vec<u8>>(5)?),
                key_id: r.get(6)?,
                outcome: r.get(7)?,
                answer_digest: r.get(8)?,
                privacy: r.get(11)?,
                prev_hash: r.get(9)?,
                hash: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recomputes the chain. Returns the number of entries checked, or the first break.
    pub fn verify(&self) -> Result<Result<u64, Break>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, caller, query_id, envelope, signature, key_id, outcome, answer_digest, prev_hash, hash, privacy
             FROM audit ORDER BY rowid",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_seq = 1i64;
        let mut prev = GENESIS.to_string();
        let mut checked = 0u64;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let envelope: Vec<u8> = r.get(4)?;
            let signature: Vec<u8> = r.get(5)?;
            let (caller, query_id, key_id, outcome, digest): (
                String,
                String,
                String,
                String,
                String,
            ) = (r.get(2)?, r.get(3)?, r.get(6)?, r.get(7)?, r.get(8)?);
            let privacy: String = r.get(11)?;
            let e = NewEntry {
                at_ms: r.get(1)?,
                caller: &caller,
                query_id: &query_id,
                envelope: &envelope,
                signature: &signature,
                key_id: &key_id,
                outcome: &outcome,
                answer_digest: &digest,
                privacy: &privacy,
            };
            let stored_prev: String = r.get(9)?;
            let stored_hash: String = r.get(10)?;
            if seq != expected_seq {
                let problem = if seq > expected_seq {
                    format!("entries {expected_seq}..{} are missing (removed)", seq - 1)
                } else {
                    format!(
                        "entry {seq} appears where {expected_seq} was expected (reordered or duplicated)"
                    )
                };
                return Ok(Err(Break { seq, problem }));
            }
            if stored_prev != prev {
                return Ok(Err(Break {
                    seq,
                    problem:
                        "does not link to the entry before it (reordered, inserted or removed)"
                            .into(),
                }));
            }
            if entry_hash(&prev, seq, &e) != stored_hash {
                return Ok(Err(Break {
                    seq,
                    problem: "content does not match its hash (edited)".into(),
                }));
            }
            prev = stored_hash;
            expected_seq += 1;
            checked += 1;
        }
        Ok(Ok(checked))
    }

    /// The hash of the last entry (publish it elsewhere to detect truncation of the tail).
    pub fn head(&self) -> Result<(i64, String), AuditError> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, GENESIS.to_string())))
    }

    /// Records a query id; false if it was already recorded (a replay).
    ///
    /// The write is not flushed to disk on its own: every query that gets this far ends with
    /// [`AuditLog::append`], whose flush makes this earlier write durable too (a WAL is written
    /// in order). A crash in between loses only the id of a query that was never answered, so
    /// accepting it again releases nothing twice. One flush per query instead of two.
    pub fn remember_query_id(&mut self, query_id: &str, at_ms: i64) -> Result<bool, AuditError> {
        self.conn
            .prepare_cached("PRAGMA synchronous = NORMAL")?
            .execute([])?;
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO seen_query(query_id, at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![query_id, at_ms]));
        self.conn
            .prepare_cached("PRAGMA synchronous = FULL")?
            .execute([])?;
        Ok(n? == 1)
    }

    /// Queries this caller had answered since `since_ms` (the daily budget counts these).
    ///
    /// The first call for a caller and start time counts them through the index; later calls
    /// add only the entries appended since (a range of `seq`), so the check does not grow with
    /// the queries answered that day.
    pub fn answered_since(&self, caller: &str, since_ms: i64) -> Result<u64, AuditError> {
        let key = (caller.to_string(), since_ms);
        let cached = self.answered.borrow().get(&key).copied();
        let (last, count) = match cached {
            Some((last, count)) => {
                let (newest, more): (Option<i64>, i64) = self
                    .conn
                    .prepare_cached(
                        "SELECT MAX(seq), COUNT(CASE WHEN caller = ?1 AND outcome = 'answered' AND at_ms >= ?2 THEN 1 END)
                         FROM audit WHERE seq > ?3",
                    )?
                    .query_row(params![caller, since_ms, last], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                (
                    newest.unwrap_or(last),
                    count + u64::try_from(more).unwrap_or(0),
                )
            }
            None => {
                let (newest, n): (Option<i64>, i64) = self
                    .conn
                    .prepare_cached(
                        "SELECT (SELECT MAX(seq) FROM audit), COUNT(*) FROM audit
                         WHERE caller = ?1 AND outcome = 'answered' AND at_ms >= ?2",
                    )?
                    .query_row(params![caller, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
                (newest.unwrap_or(0), u64::try_from(n).unwrap_or(0))
            }
        };
        let mut memo = self.answered.borrow_mut();
        // Only the current day's counts are worth keeping.
        memo.retain(|(_, since), _| *since == since_ms);
        memo.insert(key, (last, count));
        Ok(count)
    }

    /// Holds a query for the operator.
    pub fn add_pending(
        &mut self,
        query_id: &str,
        caller: &str,
        query: &[u8],
        summary: &str,
        at_ms: i64,
    ) -> Result<(), AuditError> {
        self.conn.execute(
            "INSERT INTO pending(query_id, caller, query, summary, received_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![query_id, caller, query, summary, at_ms],
        )?;
        Ok(())
    }

    /// The state and stored query bytes of a held query.
    pub fn pending_state(
        &self,
        query_id: &str,
    ) -> Result<Option<(String, String, Vec<u8>)>, AuditError> {
        Ok(self
            .conn
            .query_row(
                "SELECT state, caller, query FROM pending WHERE query_id = ?1",
                [query_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// Sets a held query's state (`approved`, `denied`, `answered`).
    pub fn decide(&mut self, query_id: &str, state: &str, at_ms: i64) -> Result<(), AuditError> {
        let n = self.conn.execute(
            "UPDATE pending SET state = ?2, decided_ms = ?3 WHERE query_id = ?1 AND state IN ('pending', 'approved')",
            params![query_id, state, at_ms],
        )?;
        if n == 0 {
            return Err(AuditError::NoSuchPending(
                query_id.chars().take(64).collect(),
            ));
        }
        Ok(())
    }

    /// Held queries, newest first.
    pub fn pending(&self, all: bool) -> Result<Vec<Pending>, AuditError> {
        let sql = if all {
            "SELECT query_id, caller, summary, received_ms, state FROM pending ORDER BY received_ms DESC"
        } else {
            "SELECT query_id, caller, summary, received_ms, state FROM pending WHERE state = 'pending' ORDER BY received_ms DESC"
        };
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(Pending {
                query_id: r.get(0)?,
                caller: r.get(1)?,
                summary: r.get(2)?,
                received_ms: r.get(3)?,
                state: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The raw connection, for tests that play an attacker editing the file.
    #[doc(hidden)]
    pub fn raw_connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(outcome: &str) -> NewEntry<'_> {
        NewEntry {
            at_ms: 1_700_000_000_000,
            caller: "coordinator.bali-rc.vrs.test",
            query_id: "0123456789abcdef0123",
            envelope: b"env",
            signature: b"sig",
            key_id: "kid",
            outcome,
            answer_digest: "",
            privacy: "",
        }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 0..n {
            let outcome = format!("answered-{i}");
            log.append(&entry(&outcome)).unwrap();
        }
        (dir, log)
    }

    /// An `Immediate` dropped uncommitted (an error or a panic on the way) rolls its writes
    /// back and leaves the connection ready for the next one; a committed one keeps them.
    #[test]
    fn an_immediate_transaction_rolls_back_unless_committed() {
        let (_dir, mut log) = log_with(2);
        let count = |log: &AuditLog| -> i64 {
            log.conn
                .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
                .unwrap()
        };
        {
            let tx = Immediate::begin(&log.conn).unwrap();
            append_in(&tx, &entry("answered-dropped")).unwrap();
            assert_eq!(count(&log), 3, "visible inside its transaction");
        }
        assert_eq!(count(&log), 2, "dropped uncommitted: rolled back");
        assert!(log.conn.is_autocommit());
        let failed: Result<(), AuditError> = (|| {
            let tx = Immediate::begin(&log.conn)?;
            append_in(&tx, &entry("answered-failed"))?;
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            tx.commit()?;
            Ok(())
        })();
        assert!(failed.is_err());
        assert_eq!(count(&log), 2, "an error half-way writes nothing");
        let tx = Immediate::begin(&log.conn).unwrap();
        append_in(&tx, &entry("answered-kept")).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&log), 3);
        log.append(&entry("answered-after")).unwrap();
        assert_eq!(
            log.verify().unwrap().ok(),
            Some(4),
            "the chain holds across them"
        );
    }

    /// Plays an attacker with write access to the file: drops the triggers first.
    fn tamper(log: &AuditLog, sql: &str) {
        log.raw_connection()
            .execute_batch(&format!(
                "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"
            ))
            .unwrap();
    }

    #[test]
    fn a_new_log_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        drop(AuditLog::open(dir.path()).unwrap());
        let mode = std::fs::metadata(dir.path().join(AUDIT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_d, log) = log_with(5);
        assert_eq!(log.verify().unwrap(), Ok(5));
        assert_eq!(log.head().unwrap().0, 5);
    }

    #[test]
    fn updates_and_deletes_are_refused_by_sqlite() {
        let (_d, log) = log_with(2);
        assert!(
            log.raw_connection()
                .execute("UPDATE audit SET outcome = 'x' WHERE seq = 1", [])
                .is_err()
        );
        assert!(
            log.raw_connection()
                .execute("DELETE FROM audit WHERE seq = 1", [])
                .is_err()
        );
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (_d, log) = log_with(5);
        tamper(
            &log,
            "UPDATE audit SET outcome = 'refused:BUDGET' WHERE seq = 3;",
        );
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("edited"), "{b:?}");
    }

    #[test]
    fn a_removed_entry_is_named() {
        let (_d, log) = log_with(5);
        tamper(&log, "DELETE FROM audit WHERE seq = 2;");
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("missing"), "{b:?}");
    }

    #[test]
    fn reordered_entries_are_named() {
        let (_d, log) = log_with(5);
        // Swap the contents of entries 2 and 4, keeping their sequence numbers: only the
        // chain of hashes can tell.
        tamper(
            &log,
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 4);
             UPDATE audit SET outcome = (SELECT outcome FROM t WHERE seq = 4), hash = (SELECT hash FROM t WHERE seq = 4), prev_hash = (SELECT prev_hash FROM t WHERE seq = 4) WHERE seq = 2;
             UPDATE audit SET outcome = (SELECT outcome FROM t WHERE seq = 2), hash = (SELECT hash FROM t WHERE seq = 2), prev_hash = (SELECT prev_hash FROM t WHERE seq = 2) WHERE seq = 4;",
        );
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 2);
    }

    #[test]
    fn a_rehashed_edit_still_breaks_the_link_to_the_next_entry() {
        let (_d, log) = log_with(4);
        // The attacker edits entry 2 and recomputes its hash, but cannot fix entry 3's link
        // without rewriting the rest of the chain (whose head may be published elsewhere).
        let e = entry("refused:FORGED");
        let (prev,): (String,) = log
            .raw_connection()
            .query_row("SELECT prev_hash FROM audit WHERE seq = 2", [], |r| {
                Ok((r.get(0)?,))
            })
            .unwrap();
        let forged = entry_hash(&prev, 2, &e);
        tamper(
            &log,
            &format!(
                "UPDATE audit SET outcome = 'refused:FORGED', hash = '{forged}' WHERE seq = 2;"
            ),
        );
        let b = log.verify().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
    }

    #[test]
    fn the_daily_count_reads_only_its_index() {
        let (_dir, log) = log_with(3);
        let plan: String = log
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM audit
                 WHERE caller = 'c' AND outcome = 'answered' AND at_ms >= 0",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(
            plan.contains("COVERING INDEX audit_caller_outcome_time"),
            "{plan}"
        );
    }

    #[test]
    fn the_daily_count_counted_in_steps_equals_a_count_from_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let callers = ["a.vrs.test", "b.vrs.test"];
        let outcomes = ["answered", "refused:BUSY", "answered", "cancelled"];
        let since = 1_700_000_000_500;
        for i in 0..60i64 {
            log.append(&NewEntry {
                at_ms: 1_700_000_000_000 + i * 37,
                caller: callers[(i % 2) as usize],
                outcome: outcomes[(i % 4) as usize],
                ..entry("answered")
            })
            .unwrap();
            if i % 7 == 0 {
                for c in callers {
                    let fresh = AuditLog::open(dir.path()).unwrap();
                    let expected = fresh.answered_since(c, since).unwrap();
                    assert_eq!(
                        log.answered_since(c, since).unwrap(),
                        expected,
                        "{c} at {i}"
                    );
                }
            }
        }
        assert!(log.answered_since(callers[0], since).unwrap() > 5);
        assert_eq!(log.answered_since(callers[1], since).unwrap(), 0);
    }

    #[test]
    fn grouped_commits_are_made_durable_by_one_flush_and_stay_flushed_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let tickets: Vec<Durable> = (0..10)
            .map(|_| log.append_grouped(&entry("answered")).unwrap().1)
            .collect();
        assert_eq!(log.group_sync().flushes(), 0);
        for t in tickets {
            t.wait().unwrap();
        }
        assert_eq!(log.group_sync().flushes(), 1, "ten entries, one flush");
        assert_eq!(log.verify().unwrap(), Ok(10));
        // A commit written after the flush needs a flush of its own.
        let (_, t) = log.append_grouped(&entry("answered")).unwrap();
        t.wait().unwrap();
        assert_eq!(log.group_sync().flushes(), 2);
        let sync: i64 = log
            .raw_connection()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "other writes are still flushed on commit");
    }

    #[test]
    fn concurrent_waiters_all_return_once_their_entries_are_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Mutex::new(AuditLog::open(dir.path()).unwrap()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let durable = log
                            .lock()
                            .unwrap()
                            .append_grouped(&entry("answered"))
                            .unwrap()
                            .1;
                        durable.wait().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.verify().unwrap(), Ok(80));
        let flushes = log.group_sync().flushes();
        assert!((1..=80).contains(&flushes), "{flushes}");
    }

    #[test]
    fn a_failed_flush_is_an_error_for_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let (_, durable) = log.append_grouped(&entry("answered")).unwrap();
        // The flush opens the WAL by its path: a log whose WAL cannot be opened has nothing
        // durable, and the waiter must hear so rather than release.
        let mut moved = log.sync.wal.clone().into_os_string();
        moved.push(".gone");
        let broken = Arc::new(GroupSync {
            wal: PathBuf::from(moved),
            opened: Mutex::new(None),
            group: GroupFlush::new(),
        });
        let stranded = Durable {
            sync: broken.clone(),
            ticket: broken.written().ticket,
        };
        assert!(stranded.wait().is_err());
        durable.wait().unwrap();
    }

    /// The fallback identity (from a full `stat`) is the same as the `statx` one, so a flush
    /// never takes one file for another when a sandbox refuses `statx` for some calls only.
    #[test]
    fn both_ways_of_reading_a_files_identity_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let by_stat = FileId::of_metadata(&std::fs::metadata(&path).unwrap());
        assert_eq!(FileId::at(&path).unwrap(), by_stat);
        assert_eq!(FileId::of_file(&file).unwrap(), by_stat);
        assert!(
            !no_statx(rustix::io::Errno::NOENT),
            "a missing file is an error, not a fallback"
        );
    }

    /// The flush keeps the WAL open while the path still names that file, and opens the new
    /// one when the file at the path was replaced (it must not flush a file nobody writes).
    #[test]
    fn the_flush_follows_the_file_at_the_wal_path() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("log.sqlite-wal");
        std::fs::write(&wal, b"first").unwrap();
        let sync = GroupSync::new(&dir.path().join("log.sqlite"));
        let opened_id = |sync: &GroupSync| sync.opened.lock().unwrap().as_ref().map(|(_, id)| *id);
        sync.flush_wal().unwrap();
        let first = opened_id(&sync).unwrap();
        assert_eq!(first, FileId::at(&wal).unwrap());
        sync.flush_wal().unwrap();
        assert_eq!(opened_id(&sync), Some(first), "still the file at the path");
        // A new file renamed over the path (a restore, say): kept alive by the old handle, the
        // first file keeps its inode, so the two cannot be taken for each other.
        let next = dir.path().join("next");
        std::fs::write(&next, b"second").unwrap();
        std::fs::rename(&next, &wal).unwrap();
        sync.flush_wal().unwrap();
        let second = opened_id(&sync).unwrap();
        assert_ne!(second, first);
        assert_eq!(second, FileId::at(&wal).unwrap());
        std::fs::remove_file(&wal).unwrap();
        assert!(
            sync.flush_wal().is_err(),
            "no WAL at the path: nothing made durable"
        );
    }

    #[test]
    fn query_ids_are_remembered_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        assert!(log.remember_query_id("abc", 1).unwrap());
        assert!(!log.remember_query_id("abc", 2).unwrap());
        drop(log);
        let mut log = AuditLog::open(dir.path()).unwrap();
        assert!(!log.remember_query_id("abc", 3).unwrap());
        // Entries are still flushed on commit (FULL = 2) after a query id was remembered.
        let sync: i64 = log
            .raw_connection()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2);
    }
}
