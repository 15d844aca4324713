//! The console's change log: every sign-in (success and failure), sign-out and change made
//! through the console or `vrs-node user`, in a hash chain like the audit log's.
//!
//! Entry `n`'s hash is SHA-256 over a domain tag, entry `n − 1`'s hash and every field of entry
//! `n`, each length-prefixed (the pattern of [`vrs_core::audit_chain::entry_hash`]). Triggers
//! refuse `UPDATE` and `DELETE`; someone who bypasses them breaks the chain, and [`verify`] names
//! the first entry where it breaks.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::ConsoleError;
use super::db::ConsoleDb;

/// Hash of the (absent) entry before the first.
pub use vrs_core::audit_chain::GENESIS;

/// One change as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// Who: a username, `cli` for `vrs-node user`, or `-` when nobody signed in.
    pub actor: String,
    /// What kind of change (`sign_in`, `sign_in_failed`, `user_added`, …).
    pub action: String,
    /// What it was done to (a username), or "".
    pub subject: String,
    /// What changed, in words (never a password).
    pub detail: String,
    /// The hash of the entry before.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The first entry at which the chain no longer holds.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

fn entry_hash(prev: &str, seq: i64, at_ms: i64, fields: [&str; 4]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    field(b"vrs.console.change.v1");
    field(prev.as_bytes());
    field(&seq.to_be_bytes());
    field(&at_ms.to_be_bytes());
    for f in fields {
        field(f.as_bytes());
    }
    hex::encode(ctx.finish())
}

/// Longest actor, subject or detail kept (a hostile sign-in form cannot fill the file).
const FIELD_MAX: usize = 200;

fn bounded(s: &str) -> String {
    s.chars().take(FIELD_MAX).collect()
}

/// Appends one change inside the caller's transaction (so a change and its record are one
/// write); returns its sequence number.
pub fn append(
    tx: &rusqlite::Transaction<'_>,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<i64, ConsoleError> {
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let (actor, subject, detail) = (bounded(actor), bounded(subject), bounded(detail));
    let hash = entry_hash(&prev, seq, at_ms, [&actor, action, &subject, &detail]);
    tx.prepare_cached(
        "INSERT INTO change_log(seq, at_ms, actor, action, subject, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq, at_ms, actor, action, subject, detail, prev, hash
    ])?;
    Ok(seq)
}

impl ConsoleDb {
    /// Records one change on its own.
    pub fn record(
        &mut self,
        at_ms: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<i64, ConsoleError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let seq = append(&tx, at_ms, actor, action, subject, detail)?;
        tx.commit()?;
        Ok(seq)
    }

    /// The newest `limit` changes, newest first, below `before` (a sequence number) if given.
    pub fn changes(&self, before: Option<i64>, limit: i64) -> Result<Vec<Change>, ConsoleError> {
        let mut st = self.conn.prepare(
            "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash FROM change_log
             WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
            Ok(Change {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                detail: r.get(5)?,
                prev_hash: r.get(6)?,
                hash: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recomputes the chain: the number of entries checked, or the first break.
    pub fn verify_changes(&self) -> Result<Result<u64, Break>, ConsoleError> {
        let mut st = self.conn.prepare(
            "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash
             FROM change_log ORDER BY rowid",
        )?;
        let mut rows = st.query([])?;
        let mut expected = 1i64;
        let mut prev = GENESIS.to_string();
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let at_ms: i64 = r.get(1)?;
            let fields: [String; 4] = [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?];
            let stored_prev: String = r.get(6)?;
            let stored_hash: String = r.get(7)?;
            let problem = if seq != expected {
                Some(if seq > expected {
                    format!("entries {expected}..{} are missing (removed)", seq - 1)
                } else {
                    format!("entry {seq} appears where {expected} was expected (reordered)")
                })
            } else if stored_prev != prev {
                Some("does not link to the entry before it (inserted or removed)".to_string())
            } else if entry_hash(
                &prev,
                seq,
                at_ms,
                [&fields[0], &fields[1], &fields[2], &fields[3]],
            ) != stored_hash
            {
                Some("content does not match its hash (edited)".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(Err(Break { seq, problem }));
            }
            prev = stored_hash;
            expected += 1;
        }
        Ok(Ok(u64::try_from(expected - 1).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: i64) -> (tempfile::TempDir, ConsoleDb) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        for i in 0..n {
            db.record(
                1_000 + i,
                "admin",
                "user_added",
                &format!("u{i}"),
                "role clerk",
            )
            .unwrap();
        }
        (dir, db)
    }

    fn tamper(db: &ConsoleDb, sql: &str) {
        db.raw_connection()
            .execute_batch(&format!(
                "DROP TRIGGER change_log_no_update; DROP TRIGGER change_log_no_delete; {sql}"
            ))
            .unwrap();
    }

    #[test]
    fn an_intact_log_verifies() {
        let (_d, db) = log_of(4);
        assert_eq!(db.verify_changes().unwrap(), Ok(4));
        assert_eq!(db.changes(None, 10).unwrap()[0].seq, 4);
        assert_eq!(db.changes(Some(3), 10).unwrap().len(), 2);
    }

    #[test]
    fn the_triggers_refuse_edits() {
        let (_d, db) = log_of(2);
        assert!(
            db.raw_connection()
                .execute("UPDATE change_log SET detail = 'x' WHERE seq = 1", [])
                .is_err()
        );
        assert!(
            db.raw_connection()
                .execute("DELETE FROM change_log WHERE seq = 2", [])
                .is_err()
        );
    }

    #[test]
    fn verify_names_an_edited_row() {
        let (_d, db) = log_of(5);
        tamper(
            &db,
            "UPDATE change_log SET detail = 'role admin' WHERE seq = 3;",
        );
        let b = db.verify_changes().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("edited"), "{}", b.problem);
    }

    #[test]
    fn verify_names_a_removed_row() {
        let (_d, db) = log_of(5);
        tamper(&db, "DELETE FROM change_log WHERE seq = 2;");
        let b = db.verify_changes().unwrap().unwrap_err();
        assert_eq!(b.seq, 3);
    }

    #[test]
    fn hostile_fields_are_bounded() {
        let (_d, mut db) = log_of(0);
        let long = "x".repeat(10_000);
        db.record(1, "-", "sign_in_failed", &long, "").unwrap();
        assert_eq!(db.changes(None, 1).unwrap()[0].subject.len(), FIELD_MAX);
        assert_eq!(db.verify_changes().unwrap(), Ok(1));
    }
}
