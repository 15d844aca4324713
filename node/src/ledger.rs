//! The privacy-loss ledger (DESIGN §6 steps 2–3): what every reference quarter of records has
//! spent of its lifetime zCDP budget, and the releases already made.
//!
//! It lives in `audit.sqlite`, beside the audit log it is chained with. A query's charge is
//! **reserved** in the same `IMMEDIATE` transaction that records its query id (so a replayed
//! id charges nothing and N concurrent queries can never together spend more than a quarter
//! has: SQLite serialises the check-and-insert), before any record is read; it is **committed**
//! in the same transaction that writes the query's audit entry (whose hash covers the charge)
//! and stores the released answer. A reservation whose query failed before anything was
//! released is cancelled; a committed charge can never be updated or deleted (triggers).
//!
//! A release is identified by the canonical query and the store's data version: asked again,
//! the stored answer is returned — the same numbers — and nothing is charged. Only released
//! (noisy) values are stored, never exact ones.

use rusqlite::{OptionalExtension, params};
use vrs_core::answer::{Answer, QuarterBudget};

use crate::audit::{AuditError, AuditLog, Immediate, NewEntry, append_in};
use crate::universe::quarter_label_of;

/// Where an entry landed: its sequence number and chain hash.
type Logged = (i64, String);

/// Tables of the ledger, created with the audit log.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ledger (
    query_id  TEXT NOT NULL,
    quarter   INTEGER NOT NULL,
    caller    TEXT NOT NULL,
    rho_micro INTEGER NOT NULL CHECK (rho_micro > 0),
    state     TEXT NOT NULL CHECK (state IN ('reserved', 'committed')),
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (query_id, quarter)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_quarter_caller ON ledger(quarter, caller, rho_micro);
CREATE TRIGGER IF NOT EXISTS ledger_committed_no_update BEFORE UPDATE ON ledger
    WHEN OLD.state = 'committed'
    BEGIN SELECT RAISE(ABORT, 'a committed charge is permanent'); END;
CREATE TRIGGER IF NOT EXISTS ledger_committed_no_delete BEFORE DELETE ON ledger
    WHEN OLD.state = 'committed'
    BEGIN SELECT RAISE(ABORT, 'a committed charge is permanent'); END;

CREATE TABLE IF NOT EXISTS release (
    release_id TEXT PRIMARY KEY,
    query_id   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS release_no_update BEFORE UPDATE ON release
    BEGIN SELECT RAISE(ABORT, 'a release is permanent'); END;
CREATE TRIGGER IF NOT EXISTS release_no_delete BEFORE DELETE ON release
    BEGIN SELECT RAISE(ABORT, 'a release is permanent'); END;
"#;

/// What one query asks of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Reference quarters touched, `YYYYQ`.
    pub quarters: Vec<i64>,
    /// ρ per quarter, micro-ρ.
    pub rho_micro: u64,
}

/// The budgets a charge is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lifetime budget per quarter, all callers, micro-ρ.
    pub per_quarter_micro: u64,
    /// The caller's own share per quarter, micro-ρ.
    pub caller_micro: u64,
}

/// The outcome of [`AuditLog::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved; commit or cancel it.
    Reserved,
    /// The query id was used before: nothing reserved.
    Replay,
    /// A touched quarter has too little left: nothing reserved.
    Overspent {
        /// The first quarter short of budget, `YYYY-Qn`.
        quarter: String,
        /// What is left of it (for this caller, or in all, whichever is smaller), micro-ρ.
        left_micro: u64,
    },
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl AuditLog {
    /// Spent on `quarter` by all callers and by `caller` (reserved and committed), micro-ρ.
    fn spent(&self, quarter: i64, caller: &str) -> Result<(u64, u64), AuditError> {
        let (all, mine): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(rho_micro), 0), COALESCE(SUM(CASE WHEN caller = ?2 THEN rho_micro END), 0)
                 FROM ledger WHERE quarter = ?1",
            )?
            .query_row(params![quarter, caller], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((u64_of(all), u64_of(mine)))
    }

    /// Budget of each quarter for `caller`.
    pub fn budgets(
        &self,
        quarters: &[i64],
        caller: &str,
        limits: Limits,
    ) -> Result<Vec<QuarterBudget>, AuditError> {
        quarters
            .iter()
            .map(|&q| {
                let (all, mine) = self.spent(q, caller)?;
                Ok(QuarterBudget {
                    quarter: quarter_label_of(q),
                    rho_spent_micro: all,
                    rho_left_micro: limits.per_quarter_micro.saturating_sub(all),
                    caller_rho_left_micro: limits
                        .caller_micro
                        .saturating_sub(mine)
                        .min(limits.per_quarter_micro.saturating_sub(all)),
                })
            })
            .collect()
    }

    /// Every quarter with any charge, with what all callers spent (for `vrs-node budget`).
    pub fn spent_by_quarter(&self) -> Result<Vec<(i64, u64)>, AuditError> {
        let mut st = self.conn.prepare(
            "SELECT quarter, SUM(rho_micro) FROM ledger GROUP BY quarter ORDER BY quarter",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, u64_of(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Spent per (quarter, caller), for `vrs-node budget --by-caller`.
    pub fn spent_by_caller(&self) -> Result<Vec<(i64, String, u64)>, AuditError> {
        let mut st = self.conn.prepare(
            "SELECT quarter, caller, SUM(rho_micro) FROM ledger GROUP BY quarter, caller ORDER BY quarter, caller",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?, u64_of(r.get(2)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored answer of an earlier release, if any.
    pub fn released(&self, release_id: &str) -> Result<Option<Answer>, AuditError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT answer FROM release WHERE release_id = ?1")?
            .query_row([release_id], |r| r.get(0))
            .optional()?;
        match text {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| AuditError::Corrupt(format!("stored release: {e}"))),
        }
    }

    /// Records the query id (unless `id_known`: an approved query's id was recorded when it
    /// was held) and reserves `charge` on every touched quarter, in one transaction; nothing is
    /// written unless every quarter has room for it, for all callers and for this one.
    ///
    /// The commit is not flushed on its own: the release's commit (or the refusal's entry)
    /// always follows and its flush covers this one. A crash in between loses a reservation of a
    /// query that was never answered.
    pub fn reserve(
        &mut self,
        query_id: &str,
        caller: &str,
        charge: &Charge,
        limits: Limits,
        id_known: bool,
        at_ms: i64,
    ) -> Result<Reservation, AuditError> {
        self.flushed_later(|log| log.reserve_now(query_id, caller, charge, limits, id_known, at_ms))
    }

    fn reserve_now(
        &mut self,
        query_id: &str,
        caller: &str,
        charge: &Charge,
        limits: Limits,
        id_known: bool,
        at_ms: i64,
    ) -> Result<Reservation, AuditError> {
        let tx = Immediate::begin(&self.conn)?;
        if !id_known {
            let n = tx
                .prepare_cached(
                    "INSERT INTO seen_query(query_id, at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .execute(params![query_id, at_ms])?;
            if n == 0 {
                return Ok(Reservation::Replay);
            }
        }
        let mut quarters = charge.quarters.clone();
        quarters.sort_unstable();
        quarters.dedup();
        // Every quarter is checked before any is reserved: a refused query reserves nothing.
        for &q in &quarters {
            let (all, mine): (i64, i64) = tx
                .prepare_cached(
                    "SELECT COALESCE(SUM(rho_micro), 0), COALESCE(SUM(CASE WHEN caller = ?2 THEN rho_micro END), 0)
                     FROM ledger WHERE quarter = ?1",
                )?
                .query_row(params![q, caller], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let left = limits
                .per_quarter_micro
                .saturating_sub(u64_of(all))
                .min(limits.caller_micro.saturating_sub(u64_of(mine)));
            if left < charge.rho_micro {
                // Keep the id remembered: a refused query id is spent, as any other refusal.
                tx.commit()?;
                return Ok(Reservation::Overspent {
                    quarter: quarter_label_of(q),
                    left_micro: left,
                });
            }
        }
        for &q in &quarters {
            tx.prepare_cached(
                "INSERT INTO ledger(query_id, quarter, caller, rho_micro, state, at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'reserved', ?5)",
            )?
            .execute(params![
                query_id,
                q,
                caller,
                i64_of(charge.rho_micro),
                at_ms
            ])?;
        }
        tx.commit()?;
        Ok(Reservation::Reserved)
    }

    /// Gives back a reservation whose query released nothing.
    pub fn cancel(&mut self, query_id: &str) -> Result<(), AuditError> {
        self.conn
            .prepare_cached("DELETE FROM ledger WHERE query_id = ?1 AND state = 'reserved'")?
            .execute([query_id])?;
        Ok(())
    }

    /// Commits a reserved charge, stores the released answer under `release_id` (unless it is
    /// a replay of one) and appends the audit entry — one transaction, one fsync. Nothing may
    /// leave the node before this returns.
    pub fn commit_release(
        &mut self,
        entry: &NewEntry<'_>,
        release_id: &str,
        answer: &Answer,
        replayed: bool,
    ) -> Result<(i64, String), AuditError> {
        let tx = Immediate::begin(&self.conn)?;
        if !replayed {
            tx.prepare_cached(
                "UPDATE ledger SET state = 'committed' WHERE query_id = ?1 AND state = 'reserved'",
            )?
            .execute([entry.query_id])?;
            let text = serde_json::to_string(answer)
                .map_err(|e| AuditError::Corrupt(format!("answer: {e}")))?;
            tx.prepare_cached(
                "INSERT INTO release(release_id, query_id, answer, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![release_id, entry.query_id, text, entry.at_ms])?;
        }
        let appended = append_in(&tx, entry)?;
        tx.commit()?;
        Ok(appended)
    }

    /// Commits a reserved charge and appends the audit entry, storing no release (regional
    /// mode: what left the node is a secret share, never to be returned again) — one
    /// transaction, one fsync.
    pub fn commit_charge(&mut self, entry: &NewEntry<'_>) -> Result<(i64, String), AuditError> {
        let tx = Immediate::begin(&self.conn)?;
        tx.prepare_cached(
            "UPDATE ledger SET state = 'committed' WHERE query_id = ?1 AND state = 'reserved'",
        )?
        .execute([entry.query_id])?;
        let appended = append_in(&tx, entry)?;
        tx.commit()?;
        Ok(appended)
    }

    /// [`AuditLog::commit_release`] with group commit: the caller waits on the returned
    /// [`crate::audit::Durable`], after letting go of the log, before the answer leaves.
    pub fn commit_release_grouped(
        &mut self,
        entry: &NewEntry<'_>,
        release_id: &str,
        answer: &Answer,
        replayed: bool,
    ) -> Result<((i64, String), crate::audit::Durable), AuditError> {
        self.unflushed(|log| log.commit_release(entry, release_id, answer, replayed))
    }

    /// Logs a stored release replayed for `entry`'s query id: the id remembered (unless the
    /// gate remembered it already, `id_known`) and the entry appended, one commit, unflushed
    /// like [`AuditLog::append_grouped`] (the caller waits on the [`Durable`] before
    /// answering). `None`, and nothing written, when the id was used before.
    ///
    /// [`Durable`]: crate::audit::Durable
    pub fn log_replay_grouped(
        &mut self,
        entry: &NewEntry<'_>,
        id_known: bool,
        seen_at_ms: i64,
    ) -> Result<Option<(Logged, crate::audit::Durable)>, AuditError> {
        let (appended, durable) = self.unflushed(|log| {
            let tx = Immediate::begin(&log.conn)?;
            if !id_known {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO seen_query(query_id, at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![entry.query_id, seen_at_ms])?;
                if n != 1 {
                    return Ok(None);
                }
            }
            let appended = append_in(&tx, entry)?;
            tx.commit()?;
            Ok(Some(appended))
        })?;
        // Nothing was written when the id was known: that ticket is never waited on.
        Ok(appended.map(|a| (a, durable)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(total: u64, caller: u64) -> Limits {
        Limits {
            per_quarter_micro: total,
            caller_micro: caller,
        }
    }

    fn entry<'a>(query_id: &'a str) -> NewEntry<'a> {
        NewEntry {
            at_ms: 1,
            caller: "c",
            query_id,
            envelope: b"",
            signature: b"",
            key_id: "",
            outcome: "answered",
            answer_digest: "d",
            privacy: "{}",
        }
    }

    fn answer() -> Answer {
        Answer {
            dimensions: vec![],
            cells: vec![],
            privacy: None,
        }
    }

    #[test]
    fn a_quarter_short_of_budget_is_named_and_nothing_is_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let lim = limits(100_000, 100_000);
        let c = |qs: &[i64], rho| Charge {
            quarters: qs.to_vec(),
            rho_micro: rho,
        };
        assert_eq!(
            log.reserve(
                "q-000000000000001",
                "c",
                &c(&[20241, 20242], 60_000),
                lim,
                false,
                1
            )
            .unwrap(),
            Reservation::Reserved
        );
        log.commit_release(&entry("q-000000000000001"), "r1", &answer(), false)
            .unwrap();
        match log
            .reserve(
                "q-000000000000002",
                "c",
                &c(&[20243, 20242], 50_000),
                lim,
                false,
                1,
            )
            .unwrap()
        {
            Reservation::Overspent {
                quarter,
                left_micro,
            } => {
                assert_eq!(quarter, "2024-Q2");
                assert_eq!(left_micro, 40_000);
            }
            other => panic!("{other:?}"),
        }
        // 2024-Q3 was checked first and had room, but nothing of the refused query stays.
        let b = log.budgets(&[20243], "c", lim).unwrap();
        assert_eq!(b[0].rho_spent_micro, 0);
        // The same id again is a replay.
        assert_eq!(
            log.reserve("q-000000000000001", "c", &c(&[20244], 1), lim, false, 1)
                .unwrap(),
            Reservation::Replay
        );
        // A committed charge is permanent.
        assert!(
            log.conn
                .execute(
                    "DELETE FROM ledger WHERE query_id = 'q-000000000000001'",
                    []
                )
                .is_err()
        );
        assert!(log.released("r1").unwrap().is_some());
    }

    #[test]
    fn a_caller_share_binds_before_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let c = Charge {
            quarters: vec![20241],
            rho_micro: 30_000,
        };
        let lim = limits(100_000, 50_000);
        assert_eq!(
            log.reserve("a-000000000000001", "a", &c, lim, false, 1)
                .unwrap(),
            Reservation::Reserved
        );
        assert!(matches!(
            log.reserve("a-000000000000002", "a", &c, lim, false, 1)
                .unwrap(),
            Reservation::Overspent {
                left_micro: 20_000,
                ..
            }
        ));
        assert_eq!(
            log.reserve("b-000000000000001", "b", &c, lim, false, 1)
                .unwrap(),
            Reservation::Reserved
        );
        log.cancel("b-000000000000001").unwrap();
        let b = log.budgets(&[20241], "b", lim).unwrap();
        assert_eq!(
            b[0].rho_spent_micro, 30_000,
            "a cancelled reservation is given back"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// However many queries, of whatever sizes, from whichever callers, interleaved with
        /// cancellations, threads included: no quarter ever holds more than its budget.
        #[test]
        fn the_budget_can_never_be_overspent(
            queries in proptest::collection::vec((0u8..3, 1u64..40_000, proptest::collection::vec(0i64..4, 1..4), any::<bool>()), 1..40),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            // The node opens its log once at start; the threads then share the file.
            drop(AuditLog::open(&path).unwrap());
            let lim = limits(100_000, 70_000);
            let chunks: Vec<Vec<_>> = queries.chunks(10).map(|c| c.to_vec()).collect();
            std::thread::scope(|s| {
                for (t, chunk) in chunks.iter().enumerate() {
                    let path = path.clone();
                    s.spawn(move || {
                        let mut log = AuditLog::open(&path).unwrap();
                        for (i, (caller, rho, qs, cancel)) in chunk.iter().enumerate() {
                            let id = format!("t{t}-q{i:014}");
                            let charge = Charge { quarters: qs.iter().map(|q| 20240 + q + 1).collect(), rho_micro: *rho };
                            let caller = format!("c{caller}");
                            if log.reserve(&id, &caller, &charge, lim, false, 1).unwrap() == Reservation::Reserved {
                                if *cancel {
                                    log.cancel(&id).unwrap();
                                } else {
                                    log.commit_release(&NewEntry { caller: &caller, ..entry(&id) }, &id, &answer(), false).unwrap();
                                }
                            }
                        }
                    });
                }
            });
            let log = AuditLog::open(&path).unwrap();
            for (q, spent) in log.spent_by_quarter().unwrap() {
                prop_assert!(spent <= 100_000, "quarter {q}: {spent}");
            }
            for (q, caller, spent) in log.spent_by_caller().unwrap() {
                prop_assert!(spent <= 70_000, "quarter {q} caller {caller}: {spent}");
            }
            prop_assert!(log.verify().unwrap().is_ok());
        }
    }
}
