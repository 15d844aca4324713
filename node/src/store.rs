//! The node's record store: one SQLite file per node.
//!
//! WAL mode, foreign keys on, schema migrations versioned in the file (`PRAGMA user_version`).
//! Tables follow DESIGN §4; each counted row (incident, fee, migrant group, smuggler) carries a
//! secret random `record_key` (a `u32` from ring's `SystemRandom`) made at import, which the
//! disclosure step sums into cell keys. Raw rows never leave this module except as exact
//! aggregates handed to disclosure control inside the process.
//!
//! Writing goes through [`ImportTx`]: one transaction per file, so a file either goes in as a
//! whole or not at all; a row already present (same `source_id`) is skipped, never changed.

use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use vrs_core::codes::{Country, FeeBand};
use vrs_core::period::Month;

use crate::fx::FxRates;
use crate::record::{IncidentRecord, RecordError};

/// File name of the store inside a node directory.
pub const STORE_FILE: &str = "node.sqlite";

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE import_run (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    imported    INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL
);

CREATE TABLE incident (
    id          INTEGER PRIMARY KEY,
    source_id   TEXT NOT NULL UNIQUE,
    month       INTEGER NOT NULL,
    quarter     INTEGER NOT NULL,
    year        INTEGER NOT NULL,
    date        TEXT,
    agency      TEXT,
    country     TEXT NOT NULL,
    place_type  TEXT,
    mode        TEXT,
    origin      TEXT NOT NULL,
    destination TEXT NOT NULL,
    dead        INTEGER NOT NULL CHECK (dead >= 0),
    missing     INTEGER NOT NULL CHECK (missing >= 0),
    note        TEXT,
    record_key  INTEGER NOT NULL,
    import_id   INTEGER NOT NULL REFERENCES import_run(id)
);
CREATE INDEX incident_month ON incident(month, record_key, dead, missing);
CREATE INDEX incident_quarter ON incident(quarter);
CREATE INDEX incident_year ON incident(year);
CREATE INDEX incident_route ON incident(origin, destination);
CREATE INDEX incident_destination ON incident(destination);
CREATE INDEX incident_mode ON incident(mode, place_type);

CREATE TABLE route_leg (
    incident_id  INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    from_country TEXT NOT NULL,
    to_country   TEXT NOT NULL,
    mode         TEXT,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;

-- Derived from route_leg at import: the countries a journey passed through.
CREATE TABLE transit (
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    country     TEXT NOT NULL,
    PRIMARY KEY (incident_id, country)
) WITHOUT ROWID;
CREATE INDEX transit_country ON transit(country, incident_id);

CREATE TABLE method (
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    code        TEXT NOT NULL,
    PRIMARY KEY (incident_id, code)
) WITHOUT ROWID;
CREATE INDEX method_code ON method(code, incident_id);

CREATE TABLE fee (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    amount       REAL NOT NULL CHECK (amount >= 0),
    currency     TEXT NOT NULL,
    amount_usd   INTEGER NOT NULL CHECK (amount_usd >= 0),
    band         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    payment_mode TEXT NOT NULL,
    record_key   INTEGER NOT NULL
);
CREATE INDEX fee_incident ON fee(incident_id);
CREATE INDEX fee_band ON fee(band, incident_id);

CREATE TABLE migrant_group (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    citizenship   TEXT NOT NULL,
    sex           TEXT NOT NULL,
    age_group     TEXT NOT NULL,
    unaccompanied INTEGER NOT NULL CHECK (unaccompanied IN (0, 1)),
    count         INTEGER NOT NULL CHECK (count > 0),
    record_key    INTEGER NOT NULL
);
CREATE INDEX migrant_group_incident ON migrant_group(incident_id);
CREATE INDEX migrant_group_profile ON migrant_group(citizenship, sex, age_group);

CREATE TABLE smuggler (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    citizenship TEXT NOT NULL,
    sex         TEXT NOT NULL,
    age_group   TEXT NOT NULL,
    role        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    record_key  INTEGER NOT NULL
);
CREATE INDEX smuggler_incident ON smuggler(incident_id);
CREATE INDEX smuggler_role ON smuggler(role, stage);
"#];

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The node directory has no store: run `vrs-node init` first.
    #[error("no store at {0}: run `vrs-node init` first")]
    Missing(PathBuf),
    /// A store already exists where one was to be created.
    #[error("a store already exists at {0}")]
    Exists(PathBuf),
    /// The file was written by a newer version of the software.
    #[error("store schema version {found} is newer than this software's {supported}")]
    TooNew {
        /// Version found in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// The store's recorded country is missing or invalid.
    #[error("the store does not record a valid country")]
    NoCountry,
    /// The store's perturbation secret is missing or malformed.
    #[error("the store's perturbation secret is missing or malformed")]
    NoSecret,
    /// A record breaks a cross-field rule.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A fee's currency has no configured exchange rate.
    #[error("no exchange rate configured for {0}")]
    NoRate(String),
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file-system operation failed.
    #[error("cannot use {path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the error is about one record (report it and go on) rather than the store itself.
    pub fn is_row_error(&self) -> bool {
        matches!(self, StoreError::Record(_) | StoreError::NoRate(_))
    }
}

/// An open node store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    country: Country,
}

/// The path of the store file in a node directory.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join(STORE_FILE)
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if version > supported {
        return Err(StoreError::TooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

impl Store {
    /// Creates a new store for `country` in `dir` (which is created if needed).
    pub fn create(dir: &Path, country: Country) -> Result<Store, StoreError> {
        let path = store_path(dir);
        if path.exists() {
            return Err(StoreError::Exists(path));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| StoreError::Random)?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('country', ?1), ('perturbation_secret', ?2)",
            params![country.as_str(), hex::encode(secret)],
        )?;
        Ok(Store {
            conn,
            path,
            country,
        })
    }

    /// Opens the store in `dir` for reading and writing, applying pending migrations.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = store_path(dir);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let country = read_country(&conn)?;
        Ok(Store {
            conn,
            path,
            country,
        })
    }

    /// Opens the store in `dir` read-only: what the query path uses.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = store_path(dir);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let country = read_country(&conn)?;
        Ok(Store {
            conn,
            path,
            country,
        })
    }

    /// The node's country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the query engine (read paths only).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Schema version in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// First and last month held, if any incident is stored.
    pub fn period_range(&self) -> Result<Option<(Month, Month)>, StoreError> {
        // Two subqueries: SQLite reads a lone MIN or MAX off the end of the month index, but
        // scans the whole index for MIN and MAX in one SELECT.
        let row: (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT (SELECT MIN(month) FROM incident), (SELECT MAX(month) FROM incident)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match row {
            (Some(a), Some(b)) => Month::from_int(a).zip(Month::from_int(b)),
            _ => None,
        })
    }

    /// Number of incidents stored.
    pub fn incident_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM incident", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// The node's secret perturbation key (made at `init`, never leaves the node).
    pub fn perturbation_secret(&self) -> Result<[u8; 32], StoreError> {
        let hex_key = self
            .meta("perturbation_secret")?
            .ok_or(StoreError::NoSecret)?;
        let bytes = hex::decode(hex_key).map_err(|_| StoreError::NoSecret)?;
        bytes.try_into().map_err(|_| StoreError::NoSecret)
    }

    /// Runs SQLite's integrity and foreign-key checks; returns the problems found (empty when sound).
    pub fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let row = row?;
            if row != "ok" {
                problems.push(row);
            }
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let n = stmt.query_map([], |_| Ok(()))?.count();
        if n > 0 {
            problems.push(format!("{n} rows break foreign keys"));
        }
        Ok(problems)
    }

    /// Starts importing one file: everything inserted through the returned transaction is
    /// committed together by [`ImportTx::commit`], or not at all.
    pub fn begin_import<'a>(
        &'a mut self,
        file_name: &str,
        file_sha256: &str,
        fx: &'a FxRates,
    ) -> Result<ImportTx<'a>, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO import_run(started_at, file_name, file_sha256, imported, rejected, duplicates)
             VALUES (?1, ?2, ?3, 0, 0, 0)",
            params![chrono::Utc::now().to_rfc3339(), file_name, file_sha256],
        )?;
        let import_id = tx.last_insert_rowid();
        Ok(ImportTx {
            tx,
            import_id,
            fx,
            keys: KeySource::new(),
        })
    }
}

fn read_country(conn: &Connection) -> Result<Country, StoreError> {
    let c: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'country'", [], |r| {
            r.get(0)
        })
        .optional()?;
    c.and_then(|c| c.parse().ok()).ok_or(StoreError::NoCountry)
}

/// Secret record keys, drawn from the system random source in blocks.
struct KeySource {
    rng: SystemRandom,
    buf: Vec<u8>,
    pos: usize,
}

impl KeySource {
    const BLOCK: usize = 4096;

    fn new() -> KeySource {
        KeySource {
            rng: SystemRandom::new(),
            buf: vec![0; Self::BLOCK],
            pos: Self::BLOCK,
        }
    }

    fn next(&mut self) -> Result<i64, StoreError> {
        if self.pos + 4 > self.buf.len() {
            self.rng
                .fill(&mut self.buf)
                .map_err(|_| StoreError::Random)?;
            self.pos = 0;
        }
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        Ok(i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The record is new and was written.
    New,
    /// A record with the same `source_id` is already stored (or came earlier in this file);
    /// nothing was changed.
    Duplicate,
}

/// One file's import transaction. Dropping it without [`ImportTx::commit`] rolls everything back.
pub struct ImportTx<'a> {
    tx: Transaction<'a>,
    import_id: i64,
    fx: &'a FxRates,
    keys: KeySource,
}

impl std::fmt::Debug for ImportTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTx")
            .field("import_id", &self.import_id)
            .finish_non_exhaustive()
    }
}

/// Counts recorded with an import run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    /// New records written.
    pub imported: u64,
    /// Rows rejected with a reason.
    pub rejected: u64,
    /// Rows already present.
    pub duplicates: u64,
}

impl ImportTx<'_> {
    /// Checks and writes one record. A row error ([`StoreError::is_row_error`]) leaves the
    /// transaction usable and nothing of that record written.
    pub fn insert(&mut self, r: &IncidentRecord) -> Result<Inserted, StoreError> {
        r.check()?;
        let mut fees_usd = Vec::with_capacity(r.fees.len());
        for f in &r.fees {
            let usd = self
                .fx
                .to_usd(f.amount, f.currency)
                .ok_or_else(|| StoreError::NoRate(f.currency.to_string()))?;
            fees_usd.push(usd);
        }
        let tx = &self.tx;
        let mut stmt = tx.prepare_cached(
            "INSERT INTO incident(source_id, month, quarter, year, date, agency, country, place_type,
                 mode, origin, destination, dead, missing, note, record_key, import_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(source_id) DO NOTHING",
        )?;
        let changed = stmt.execute(params![
            r.source_id,
            r.period.to_int(),
            r.period.quarter_int(),
            i64::from(r.period.year()),
            r.date,
            r.agency,
            r.country.as_str(),
            r.place_type.map(|p| p.code()),
            r.mode.map(|m| m.code()),
            r.origin().as_str(),
            r.destination().as_str(),
            i64::from(r.dead),
            i64::from(r.missing),
            r.note,
            self.keys.next()?,
            self.import_id,
        ])?;
        if changed == 0 {
            return Ok(Inserted::Duplicate);
        }
        let id = tx.last_insert_rowid();
        let mut leg = tx.prepare_cached(
            "INSERT INTO route_leg(incident_id, seq, from_country, to_country, mode) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (seq, l) in r.route.iter().enumerate() {
            leg.execute(params![
                id,
                seq as i64,
                l.from.as_str(),
                l.to.as_str(),
                l.mode.map(|m| m.code())
            ])?;
        }
        let mut transit =
            tx.prepare_cached("INSERT INTO transit(incident_id, country) VALUES (?1, ?2)")?;
        for c in r.transit() {
            transit.execute(params![id, c.as_str()])?;
        }
        let mut method =
            tx.prepare_cached("INSERT INTO method(incident_id, code) VALUES (?1, ?2)")?;
        for m in &r.methods {
            method.execute(params![id, m.code()])?;
        }
        let mut fee = tx.prepare_cached(
            "INSERT INTO fee(incident_id, amount, currency, amount_usd, band, scope, payment_mode, record_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (f, usd) in r.fees.iter().zip(fees_usd) {
            fee.execute(params![
                id,
                f.amount,
                f.currency.as_str(),
                usd,
                FeeBand::of_usd(usd).code(),
                f.scope.code(),
                f.payment.code(),
                self.keys.next()?,
            ])?;
        }
        let mut group = tx.prepare_cached(
            "INSERT INTO migrant_group(incident_id, citizenship, sex, age_group, unaccompanied, count, record_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for g in &r.migrants {
            group.execute(params![
                id,
                g.citizenship.as_str(),
                g.sex.code(),
                g.age_group.code(),
                g.unaccompanied,
                i64::from(g.count),
                self.keys.next()?,
            ])?;
        }
        let mut smuggler = tx.prepare_cached(
            "INSERT INTO smuggler(incident_id, citizenship, sex, age_group, role, stage, record_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for s in &r.smugglers {
            smuggler.execute(params![
                id,
                s.citizenship.as_str(),
                s.sex.code(),
                s.age_group.code(),
                s.role.code(),
                s.stage.code(),
                self.keys.next()?,
            ])?;
        }
        Ok(Inserted::New)
    }

    /// Records the run's counts and commits everything written through this transaction.
    pub fn commit(self, counts: ImportCounts) -> Result<(), StoreError> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.tx.execute(
            "UPDATE import_run SET imported = ?1, rejected = ?2, duplicates = ?3 WHERE id = ?4",
            params![
                as_i64(counts.imported),
                as_i64(counts.rejected),
                as_i64(counts.duplicates),
                self.import_id
            ],
        )?;
        self.tx.commit()?;
        Ok(())
    }

    /// Discards everything written through this transaction.
    pub fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        drop(s);
        assert!(matches!(
            Store::create(dir.path(), "THA".parse().unwrap()),
            Err(StoreError::Exists(_))
        ));
        let s = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(s.country().as_str(), "THA");
        let journal: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        assert!(matches!(
            Store::open(&dir.path().join("nope")),
            Err(StoreError::Missing(_))
        ));
    }

    #[test]
    fn insert_is_idempotent_by_source_id_and_rollback_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let fx = FxRates::sample();
        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        assert_eq!(tx.insert(&sample()).unwrap(), Inserted::New);
        assert_eq!(tx.insert(&sample()).unwrap(), Inserted::Duplicate);
        tx.commit(ImportCounts::default()).unwrap();
        assert_eq!(s.incident_count().unwrap(), 1);

        let mut other = sample();
        other.source_id = "THA-2024-0002".into();
        let mut tx = s.begin_import("b.csv", "01", &fx).unwrap();
        assert_eq!(tx.insert(&other).unwrap(), Inserted::New);
        tx.rollback().unwrap();
        assert_eq!(s.incident_count().unwrap(), 1);
        let transit: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM transit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(transit, 1);
        assert!(s.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn a_fee_without_a_rate_is_a_row_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let fx = FxRates::default();
        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        let err = tx.insert(&sample()).unwrap_err();
        assert!(err.is_row_error(), "{err}");
        let mut no_fee = sample();
        no_fee.fees.clear();
        assert_eq!(tx.insert(&no_fee).unwrap(), Inserted::New);
        tx.commit(ImportCounts::default()).unwrap();
        let fees: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM fee", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fees, 0);
    }
}
