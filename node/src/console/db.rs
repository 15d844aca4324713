//! `console.sqlite`: the console's own file beside the store (accounts, sessions, change log).
//!
//! It is created 0600 before SQLite opens it, in WAL mode with full sync. It holds password
//! hashes and session hashes, never a password or a session id. Nothing of the store or the
//! audit log is copied into it.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::ConsoleError;

/// File name of the console's database inside a node directory.
pub const CONSOLE_FILE: &str = "console.sqlite";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS user (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('clerk', 'reviewer', 'admin')),
    password_hash    TEXT NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    failed_count     INTEGER NOT NULL DEFAULT 0,
    locked_until_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    last_sign_in_ms  INTEGER
);

-- A session is known by the SHA-256 of its id (the id itself is only in the browser's cookie).
-- user_id NULL: a session before sign-in, which carries the sign-in form's CSRF token.
CREATE TABLE IF NOT EXISTS session (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER REFERENCES user(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_ms    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS change_log (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS change_log_no_update BEFORE UPDATE ON change_log
    BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS change_log_no_delete BEFORE DELETE ON change_log
    BEGIN SELECT RAISE(ABORT, 'the change log is append-only'); END;
"#;

/// The open console database.
#[derive(Debug)]
pub struct ConsoleDb {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl ConsoleDb {
    /// Opens (creating, 0600, if needed) `console.sqlite` in the node's data directory.
    pub fn open(dir: &Path) -> Result<ConsoleDb, ConsoleError> {
        let path = dir.join(CONSOLE_FILE);
        crate::audit::ensure_private_file(&path).map_err(ConsoleError::Io)?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(ConsoleDb { conn, path })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
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

    #[test]
    fn the_file_is_made_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = ConsoleDb::open(dir.path()).unwrap();
        let mode = std::fs::metadata(db.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(db);
        ConsoleDb::open(dir.path()).unwrap();
    }
}
