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
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Statement, params};
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::codes::{Country, FeeBand, Method};
use vrs_core::period::Month;

use crate::fx::FxRates;
use crate::record::{
    Fee, IncidentRecord, Leg, MigrantGroup, RecordError, RecordKind, RecordLimits, Smuggler,
};

/// File name of the store inside a node directory.
pub const STORE_FILE: &str = "node.sqlite";

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 3;

/// Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    // Version 2: fewer index entries per incident, so that an import writes about half as much.
    // Queries scan incidents and reach the other tables through `incident_id`: fees, migrant groups
    // and smugglers become tables clustered on (incident_id, seq) — no separate index to keep — and
    // the indexes that only a seek on a code would use go. Codes have few values (a destination
    // holds a large share of a country's incidents), so a filtered count scans the table as fast
    // as it follows such an index (1M incidents, origin = MMR: 0.15 s by scan, 0.23 s by index).
    // The month index stays: it covers period ranges and counts over periods alone.
    r#"
DROP INDEX incident_quarter;
DROP INDEX incident_year;
DROP INDEX incident_route;
DROP INDEX incident_destination;
DROP INDEX incident_mode;
DROP INDEX transit_country;
DROP INDEX method_code;

CREATE TABLE fee_v2 (
    incident_id  INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    amount       REAL NOT NULL CHECK (amount >= 0),
    currency     TEXT NOT NULL,
    amount_usd   INTEGER NOT NULL CHECK (amount_usd >= 0),
    band         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    payment_mode TEXT NOT NULL,
    record_key   INTEGER NOT NULL,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;
INSERT INTO fee_v2
    SELECT incident_id, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY id) - 1,
           amount, currency, amount_usd, band, scope, payment_mode, record_key
    FROM fee;
DROP TABLE fee;
ALTER TABLE fee_v2 RENAME TO fee;

CREATE TABLE migrant_group_v2 (
    incident_id   INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    citizenship   TEXT NOT NULL,
    sex           TEXT NOT NULL,
    age_group     TEXT NOT NULL,
    unaccompanied INTEGER NOT NULL CHECK (unaccompanied IN (0, 1)),
    count         INTEGER NOT NULL CHECK (count > 0),
    record_key    INTEGER NOT NULL,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;
INSERT INTO migrant_group_v2
    SELECT incident_id, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY id) - 1,
           citizenship, sex, age_group, unaccompanied, count, record_key
    FROM migrant_group;
DROP TABLE migrant_group;
ALTER TABLE migrant_group_v2 RENAME TO migrant_group;

CREATE TABLE smuggler_v2 (
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    citizenship TEXT NOT NULL,
    sex         TEXT NOT NULL,
    age_group   TEXT NOT NULL,
    role        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    record_key  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;
INSERT INTO smuggler_v2
    SELECT incident_id, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY id) - 1,
           citizenship, sex, age_group, role, stage, record_key
    FROM smuggler;
DROP TABLE smuggler;
ALTER TABLE smuggler_v2 RENAME TO smuggler;
"#,
    // Version 3: agencies' exports as they come. `kind` tells an incident (0) from a
    // pre-aggregated statistics row (1: one migrant group, no incident identity), which
    // incident and fee units skip; `corridor` is the named migration corridor, if given.
    // Every stored row was an incident without a corridor.
    r#"
ALTER TABLE incident ADD COLUMN kind INTEGER NOT NULL DEFAULT 0 CHECK (kind IN (0, 1));
ALTER TABLE incident ADD COLUMN corridor TEXT;
-- The month index covers counts of incidents over periods alone; it now needs the kind.
DROP INDEX incident_month;
CREATE INDEX incident_month ON incident(month, record_key, dead, missing, kind);
"#,
];

/// `incident.kind` of an incident.
pub const KIND_INCIDENT: i64 = 0;
/// `incident.kind` of a statistics row.
pub const KIND_STATISTICS: i64 = 1;

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
    /// The file was written by an older version and must be migrated before it is read.
    #[error(
        "store schema version {found} is older than this software's {supported}: \
         `vrs-node migrate` (or `vrs-node serve`, `import`) brings it up to date"
    )]
    TooOld {
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
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
    /// Stamps import runs (`import_run.started_at`).
    clock: Arc<dyn Clock>,
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
        create_private(dir, &path).map_err(|(path, source)| StoreError::Io { path, source })?;
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
            clock: Arc::new(SystemClock),
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
            clock: Arc::new(SystemClock),
            conn,
            path,
            country,
        })
    }

    /// The schema version of the store in `dir`, read without migrating it.
    pub fn schema_version_of(dir: &Path) -> Result<u32, StoreError> {
        let path = store_path(dir);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
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
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::TooOld {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let country = read_country(&conn)?;
        Ok(Store {
            clock: Arc::new(SystemClock),
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

    /// Number of records stored: incidents and statistics rows.
    pub fn incident_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM incident", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Statistics rows stored (records of kind `statistics`; [`Store::incident_count`] counts
    /// them with the incidents).
    pub fn statistics_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM incident WHERE kind = ?1",
            [KIND_STATISTICS],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The store's data version: a counter that every import adding records moves on (0 for a
    /// store that never imported any). With the canonical query it identifies a release.
    pub fn data_version(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta("data_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
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

    /// Uses `clock` from now on to stamp import runs (the system clock by default).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Starts importing one file: everything inserted through the returned transaction is
    /// committed together by [`ImportTx::commit`], or not at all.
    pub fn begin_import<'a>(
        &'a mut self,
        file_name: &str,
        file_sha256: &str,
        fx: &'a FxRates,
    ) -> Result<ImportTx<'a>, StoreError> {
        let conn: &'a Connection = &self.conn;
        // Index upkeep dominates a bulk load: a larger page cache keeps the upper levels of every
        // B-tree in memory while the import runs (the default is 2 MiB). Index builds sort with
        // helper threads, one per core.
        // Foreign keys are not checked row by row: every child row is written with the id of
        // the incident just inserted, in the same statement sequence (and `vrs-node check`
        // runs SQLite's foreign-key check). The pragmas go back when the import ends.
        conn.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        conn.pragma_update(None, "threads", i64::try_from(threads).unwrap_or(1))?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            restore_pragmas(conn);
            return Err(e.into());
        }
        let started_at = chrono::DateTime::from_timestamp_millis(self.clock.now_ms())
            .unwrap_or_default()
            .to_rfc3339();
        match start_import(conn, file_name, file_sha256, &started_at) {
            Ok((import_id, deferred, stmts)) => Ok(ImportTx {
                conn,
                open: true,
                import_id,
                fx,
                keys: KeySource::new(),
                deferred,
                stmts,
                written: 0,
                limits: RecordLimits::default(),
            }),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                restore_pragmas(conn);
                Err(e)
            }
        }
    }
}

/// Puts back what [`Store::begin_import`] changed for the import's duration. Best effort: the
/// settings die with the connection anyway.
fn restore_pragmas(conn: &Connection) {
    let _ = conn
        .execute_batch("PRAGMA foreign_keys = ON; PRAGMA cache_size = -2000; PRAGMA threads = 0;");
}

/// The first steps of an import, inside its transaction: deferring indexes, the run's row, the
/// statements. Returns the run's id, the deferred indexes and the statements.
fn start_import<'a>(
    conn: &'a Connection,
    file_name: &str,
    file_sha256: &str,
    started_at: &str,
) -> Result<(i64, Vec<IndexDef>, Statements<'a>), StoreError> {
    // Into an empty store, secondary indexes are dropped and built again from sorted data at
    // commit, in the same transaction: a reader or a crash sees them all, or as they were.
    let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM incident)", [], |r| {
        r.get(0)
    })?;
    let deferred = if empty {
        secondary_indexes(conn)?
    } else {
        Vec::new()
    };
    for (name, _) in &deferred {
        conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
    }
    conn.execute(
        "INSERT INTO import_run(started_at, file_name, file_sha256, imported, rejected, duplicates)
         VALUES (?1, ?2, ?3, 0, 0, 0)",
        params![started_at, file_name, file_sha256],
    )?;
    let import_id = conn.last_insert_rowid();
    Ok((import_id, deferred, Statements::prepare(conn)?))
}

/// An index's name and its `CREATE INDEX` statement.
type IndexDef = (String, String);

/// Page cache of an import, in KiB.
const IMPORT_CACHE_KIB: i64 = 128 * 1024;

/// The indexes that SQLite does not make for a key or constraint, with their definitions:
/// what [`Store::begin_import`] may drop and build again.
fn secondary_indexes(conn: &Connection) -> Result<Vec<IndexDef>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    conn: &'a Connection,
    /// The transaction is still open: `Drop` rolls it back.
    open: bool,
    import_id: i64,
    fx: &'a FxRates,
    keys: KeySource,
    /// Secondary indexes dropped for this import, built again by [`ImportTx::commit`].
    deferred: Vec<IndexDef>,
    /// Prepared once per file.
    stmts: Statements<'a>,
    /// Records written so far (the data version moves on only when some were).
    written: u64,
    /// Caps records are checked against (the file's mapping may raise the group cap).
    limits: RecordLimits,
}

/// The import's insert statements, prepared once. Rows of the tables under `incident` are
/// gathered and written [`CHUNK`] to a statement: SQLite's cost per statement run is a large
/// part of a bulk load's, and these rows cannot fail once their incident is written.
struct Statements<'a> {
    incident: Statement<'a>,
    leg: Chunked<'a, LegRow>,
    transit: Chunked<'a, TransitRow>,
    method: Chunked<'a, MethodRow>,
    fee: Chunked<'a, FeeRow>,
    group: Chunked<'a, GroupRow>,
    smuggler: Chunked<'a, SmugglerRow>,
}

impl<'a> Statements<'a> {
    fn prepare(conn: &'a Connection) -> Result<Statements<'a>, rusqlite::Error> {
        Ok(Statements {
            incident: conn.prepare(
                "INSERT INTO incident(source_id, month, quarter, year, date, agency, country,
                     place_type, mode, origin, destination, dead, missing, note, record_key, import_id,
                 kind, corridor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT(source_id) DO NOTHING",
            )?,
            leg: Chunked::prepare(conn)?,
            transit: Chunked::prepare(conn)?,
            method: Chunked::prepare(conn)?,
            fee: Chunked::prepare(conn)?,
            group: Chunked::prepare(conn)?,
            smuggler: Chunked::prepare(conn)?,
        })
    }

    /// Writes every gathered row.
    fn flush(&mut self) -> Result<(), rusqlite::Error> {
        self.leg.flush()?;
        self.transit.flush()?;
        self.method.flush()?;
        self.fee.flush()?;
        self.group.flush()?;
        self.smuggler.flush()
    }
}

/// Rows per multi-row `INSERT`.
const CHUNK: usize = 32;

/// A row of a table under `incident`, bound as `COLUMNS.len()` parameters.
trait ChildRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// Binds the row's values to parameters `at`, `at + 1`, ….
    fn bind(&self, stmt: &mut Statement<'_>, at: usize) -> rusqlite::Result<()>;
}

/// One table's rows waiting to be written, with its one-row and [`CHUNK`]-row statements.
struct Chunked<'a, T> {
    one: Statement<'a>,
    many: Statement<'a>,
    rows: Vec<T>,
}

impl<'a, T: ChildRow> Chunked<'a, T> {
    fn prepare(conn: &'a Connection) -> Result<Chunked<'a, T>, rusqlite::Error> {
        let sql = |rows: usize| {
            let one = format!("({})", vec!["?"; T::COLUMNS.len()].join(", "));
            format!(
                "INSERT INTO {}({}) VALUES {}",
                T::TABLE,
                T::COLUMNS.join(", "),
                vec![one; rows].join(", ")
            )
        };
        Ok(Chunked {
            one: conn.prepare(&sql(1))?,
            many: conn.prepare(&sql(CHUNK))?,
            rows: Vec::with_capacity(CHUNK),
        })
    }

    fn push(&mut self, row: T) -> Result<(), rusqlite::Error> {
        self.rows.push(row);
        if self.rows.len() == CHUNK {
            for (i, r) in self.rows.iter().enumerate() {
                r.bind(&mut self.many, i * T::COLUMNS.len() + 1)?;
            }
            self.many.raw_execute()?;
            self.rows.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), rusqlite::Error> {
        for r in &self.rows {
            r.bind(&mut self.one, 1)?;
            self.one.raw_execute()?;
        }
        self.rows.clear();
        Ok(())
    }
}

struct LegRow {
    incident: i64,
    seq: i64,
    leg: Leg,
}

impl ChildRow for LegRow {
    const TABLE: &'static str = "route_leg";
    const COLUMNS: &'static [&'static str] =
        &["incident_id", "seq", "from_country", "to_country", "mode"];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.seq)?;
        st.raw_bind_parameter(at + 2, self.leg.from.as_str())?;
        st.raw_bind_parameter(at + 3, self.leg.to.as_str())?;
        st.raw_bind_parameter(at + 4, self.leg.mode.map(|m| m.code()))
    }
}

struct TransitRow {
    incident: i64,
    country: Country,
}

impl ChildRow for TransitRow {
    const TABLE: &'static str = "transit";
    const COLUMNS: &'static [&'static str] = &["incident_id", "country"];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.country.as_str())
    }
}

struct MethodRow {
    incident: i64,
    method: Method,
}

impl ChildRow for MethodRow {
    const TABLE: &'static str = "method";
    const COLUMNS: &'static [&'static str] = &["incident_id", "code"];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.method.code())
    }
}

struct FeeRow {
    incident: i64,
    seq: i64,
    fee: Fee,
    usd: i64,
    key: i64,
}

impl ChildRow for FeeRow {
    const TABLE: &'static str = "fee";
    const COLUMNS: &'static [&'static str] = &[
        "incident_id",
        "seq",
        "amount",
        "currency",
        "amount_usd",
        "band",
        "scope",
        "payment_mode",
        "record_key",
    ];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.seq)?;
        st.raw_bind_parameter(at + 2, self.fee.amount)?;
        st.raw_bind_parameter(at + 3, self.fee.currency.as_str())?;
        st.raw_bind_parameter(at + 4, self.usd)?;
        st.raw_bind_parameter(at + 5, FeeBand::of_usd(self.usd).code())?;
        st.raw_bind_parameter(at + 6, self.fee.scope.code())?;
        st.raw_bind_parameter(at + 7, self.fee.payment.code())?;
        st.raw_bind_parameter(at + 8, self.key)
    }
}

struct GroupRow {
    incident: i64,
    seq: i64,
    group: MigrantGroup,
    key: i64,
}

impl ChildRow for GroupRow {
    const TABLE: &'static str = "migrant_group";
    const COLUMNS: &'static [&'static str] = &[
        "incident_id",
        "seq",
        "citizenship",
        "sex",
        "age_group",
        "unaccompanied",
        "count",
        "record_key",
    ];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        let g = &self.group;
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.seq)?;
        st.raw_bind_parameter(at + 2, g.citizenship.as_str())?;
        st.raw_bind_parameter(at + 3, g.sex.code())?;
        st.raw_bind_parameter(at + 4, g.age_group.code())?;
        st.raw_bind_parameter(at + 5, g.unaccompanied)?;
        st.raw_bind_parameter(at + 6, i64::from(g.count))?;
        st.raw_bind_parameter(at + 7, self.key)
    }
}

struct SmugglerRow {
    incident: i64,
    seq: i64,
    smuggler: Smuggler,
    key: i64,
}

impl ChildRow for SmugglerRow {
    const TABLE: &'static str = "smuggler";
    const COLUMNS: &'static [&'static str] = &[
        "incident_id",
        "seq",
        "citizenship",
        "sex",
        "age_group",
        "role",
        "stage",
        "record_key",
    ];
    fn bind(&self, st: &mut Statement<'_>, at: usize) -> rusqlite::Result<()> {
        let s = &self.smuggler;
        st.raw_bind_parameter(at, self.incident)?;
        st.raw_bind_parameter(at + 1, self.seq)?;
        st.raw_bind_parameter(at + 2, s.citizenship.as_str())?;
        st.raw_bind_parameter(at + 3, s.sex.code())?;
        st.raw_bind_parameter(at + 4, s.age_group.code())?;
        st.raw_bind_parameter(at + 5, s.role.code())?;
        st.raw_bind_parameter(at + 6, s.stage.code())?;
        st.raw_bind_parameter(at + 7, self.key)
    }
}

impl std::fmt::Debug for ImportTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTx")
            .field("import_id", &self.import_id)
            .field("deferred_indexes", &self.deferred.len())
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
    /// Checks the records inserted from now on against `limits` (the default caps otherwise).
    pub fn set_limits(&mut self, limits: RecordLimits) {
        self.limits = limits;
    }

    /// Checks and writes one record. A row error ([`StoreError::is_row_error`]) leaves the
    /// transaction usable and nothing of that record written.
    pub fn insert(&mut self, r: &IncidentRecord) -> Result<Inserted, StoreError> {
        r.check_with(&self.limits)?;
        let mut fees_usd = Vec::with_capacity(r.fees.len());
        for f in &r.fees {
            let usd = self
                .fx
                .to_usd(f.amount, f.currency)
                .ok_or_else(|| StoreError::NoRate(f.currency.to_string()))?;
            fees_usd.push(usd);
        }
        let st = &mut self.stmts;
        let changed = st.incident.execute(params![
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
            match r.kind {
                RecordKind::Incident => KIND_INCIDENT,
                RecordKind::Statistics => KIND_STATISTICS,
            },
            r.corridor.map(|c| c.code()),
        ])?;
        if changed == 0 {
            return Ok(Inserted::Duplicate);
        }
        let id = self.conn.last_insert_rowid();
        for (seq, leg) in r.route.iter().enumerate() {
            st.leg.push(LegRow {
                incident: id,
                seq: seq as i64,
                leg: leg.clone(),
            })?;
        }
        for country in r.transit() {
            st.transit.push(TransitRow {
                incident: id,
                country,
            })?;
        }
        for &method in &r.methods {
            st.method.push(MethodRow {
                incident: id,
                method,
            })?;
        }
        for (seq, (fee, usd)) in r.fees.iter().zip(fees_usd).enumerate() {
            st.fee.push(FeeRow {
                incident: id,
                seq: seq as i64,
                fee: fee.clone(),
                usd,
                key: self.keys.next()?,
            })?;
        }
        for (seq, group) in r.migrants.iter().enumerate() {
            st.group.push(GroupRow {
                incident: id,
                seq: seq as i64,
                group: group.clone(),
                key: self.keys.next()?,
            })?;
        }
        for (seq, smuggler) in r.smugglers.iter().enumerate() {
            st.smuggler.push(SmugglerRow {
                incident: id,
                seq: seq as i64,
                smuggler: smuggler.clone(),
                key: self.keys.next()?,
            })?;
        }
        self.written += 1;
        Ok(Inserted::New)
    }

    /// Records the run's counts, builds any deferred indexes and commits everything written
    /// through this transaction.
    pub fn commit(mut self, counts: ImportCounts) -> Result<(), StoreError> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.stmts.flush()?;
        self.conn.execute(
            "UPDATE import_run SET imported = ?1, rejected = ?2, duplicates = ?3 WHERE id = ?4",
            params![
                as_i64(counts.imported),
                as_i64(counts.rejected),
                as_i64(counts.duplicates),
                self.import_id
            ],
        )?;
        let started = std::time::Instant::now();
        for (_, sql) in &self.deferred {
            self.conn.execute_batch(sql)?;
        }
        let indexed = started.elapsed();
        if self.written > 0 || counts.imported > 0 {
            // A new data version: releases of the old one are not replayed for the new.
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES ('data_version', '1')
                 ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
                [],
            )?;
        }
        self.conn.execute_batch("COMMIT")?;
        tracing::debug!(
            indexes = self.deferred.len(),
            index_ms = indexed.as_millis() as u64,
            commit_ms = (started.elapsed() - indexed).as_millis() as u64,
            "import committed"
        );
        self.open = false;
        restore_pragmas(self.conn);
        Ok(())
    }

    /// Discards everything written through this transaction.
    pub fn rollback(mut self) -> Result<(), StoreError> {
        self.open = false;
        let rolled_back = self.conn.execute_batch("ROLLBACK");
        restore_pragmas(self.conn);
        Ok(rolled_back?)
    }
}

impl Drop for ImportTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: a failed rollback leaves the transaction to SQLite, which
            // rolls it back when the connection closes.
            let _ = self.conn.execute_batch("ROLLBACK");
            restore_pragmas(self.conn);
        }
    }
}

/// Makes the node directory (0700, tightened if it already exists) and an empty store file
/// (0600) before SQLite opens it: the store holds the records and the perturbation secret, and
/// SQLite gives its `-wal` and `-shm` files the store file's mode.
fn create_private(dir: &Path, store: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| (dir.to_path_buf(), e))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(store)
        .map(drop)
        .map_err(|e| (store.to_path_buf(), e))
}

// ---- the console's case pages: one record read back, a page of the list, a removal ----------
//
// The ORT form edits what import wrote: it reads a record back whole ([`Store::record`]), lists
// records for the case list ([`Store::records`]) and removes one inside an import transaction
// ([`ImportTx::remove`]) so that an edit (remove, then insert) or a soft delete is one write
// that moves the data version on like any other import.

/// One stored record as the case list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    /// The store's row id (newer records have larger ids; an edit gives a new one).
    pub id: i64,
    /// The agency's key.
    pub source_id: String,
    /// Month of the incident.
    pub period: Month,
    /// Day, if known.
    pub date: Option<String>,
    /// Reporting agency.
    pub agency: Option<String>,
    /// Where the journey began (`UNK` without legs).
    pub origin: String,
    /// Where it ended (`UNK` without legs).
    pub destination: String,
    /// People in all migrant groups.
    pub migrants: u64,
    /// Incident or statistics row.
    pub kind: RecordKind,
}

/// Which records a page of the case list holds. Empty parts do not filter.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Part of the source id, agency or note (case-insensitive for ASCII letters).
    pub text: String,
    /// First month.
    pub from: Option<Month>,
    /// Last month.
    pub to: Option<Month>,
    /// Origin country.
    pub origin: Option<Country>,
    /// Destination country.
    pub destination: Option<Country>,
    /// Only rows older than this row id (the next page).
    pub before: Option<i64>,
    /// Most rows returned.
    pub limit: u32,
}

/// A stored code that no longer parses: the file was edited outside the node.
fn stored<T: std::str::FromStr>(s: String) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse::<T>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn stored_opt<T: std::str::FromStr>(v: Option<String>) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.map(stored).transpose()
}

fn stored_month(v: i64) -> rusqlite::Result<Month> {
    Month::from_int(v).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, v))
}

fn stored_count(v: i64) -> rusqlite::Result<u32> {
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

impl Store {
    /// The record stored under `source_id`, whole, as import was given it (minus nothing: every
    /// field the store keeps is read back).
    pub fn record(&self, source_id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        read_record(&self.conn, source_id)
    }

    /// A page of stored records, newest first (by row id).
    pub fn records(&self, f: &RecordFilter) -> Result<Vec<RecordRow>, StoreError> {
        // LIKE with the wildcards of the typed text escaped: a search for `50%` finds `50%`.
        let pattern = format!(
            "%{}%",
            f.text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut stmt = self.conn.prepare(
            "SELECT i.id, i.source_id, i.month, i.date, i.agency, i.origin, i.destination, i.kind,
                    (SELECT COALESCE(SUM(g.count), 0) FROM migrant_group g WHERE g.incident_id = i.id)
             FROM incident i
             WHERE (?1 = '%%' OR i.source_id LIKE ?1 ESCAPE '\\' OR i.agency LIKE ?1 ESCAPE '\\'
                    OR i.note LIKE ?1 ESCAPE '\\')
               AND (?2 IS NULL OR i.month >= ?2) AND (?3 IS NULL OR i.month <= ?3)
               AND (?4 IS NULL OR i.origin = ?4) AND (?5 IS NULL OR i.destination = ?5)
               AND (?6 IS NULL OR i.id < ?6)
             ORDER BY i.id DESC LIMIT ?7",
        )?;
        let rows = stmt.query_map(
            params![
                pattern,
                f.from.map(Month::to_int),
                f.to.map(Month::to_int),
                f.origin.map(|c| c.to_string()),
                f.destination.map(|c| c.to_string()),
                f.before,
                i64::from(f.limit),
            ],
            |r| {
                Ok(RecordRow {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    period: stored_month(r.get(2)?)?,
                    date: r.get(3)?,
                    agency: r.get(4)?,
                    origin: r.get(5)?,
                    destination: r.get(6)?,
                    kind: if r.get::<_, i64>(7)? == KIND_STATISTICS {
                        RecordKind::Statistics
                    } else {
                        RecordKind::Incident
                    },
                    migrants: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Reads one record and everything under it.
fn read_record(conn: &Connection, source_id: &str) -> Result<Option<IncidentRecord>, StoreError> {
    let head = conn
        .query_row(
            "SELECT id, month, date, agency, country, place_type, mode, dead, missing, note, kind,
                    corridor
             FROM incident WHERE source_id = ?1",
            [source_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    IncidentRecord {
                        kind: if r.get::<_, i64>(10)? == KIND_STATISTICS {
                            RecordKind::Statistics
                        } else {
                            RecordKind::Incident
                        },
                        source_id: source_id.to_string(),
                        period: stored_month(r.get(1)?)?,
                        date: r.get(2)?,
                        agency: r.get(3)?,
                        country: stored(r.get(4)?)?,
                        place_type: stored_opt(r.get(5)?)?,
                        mode: stored_opt(r.get(6)?)?,
                        dead: stored_count(r.get(7)?)?,
                        missing: stored_count(r.get(8)?)?,
                        route: Vec::new(),
                        corridor: stored_opt(r.get(11)?)?,
                        methods: Default::default(),
                        fees: Vec::new(),
                        migrants: Vec::new(),
                        smugglers: Vec::new(),
                        note: r.get(9)?,
                    },
                ))
            },
        )
        .optional()?;
    let Some((id, mut record)) = head else {
        return Ok(None);
    };
    let mut st = conn.prepare(
        "SELECT from_country, to_country, mode FROM route_leg WHERE incident_id = ?1 ORDER BY seq",
    )?;
    record.route = st
        .query_map([id], |r| {
            Ok(Leg {
                from: stored(r.get(0)?)?,
                to: stored(r.get(1)?)?,
                mode: r.get::<_, Option<String>>(2)?.map(stored).transpose()?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare("SELECT code FROM method WHERE incident_id = ?1")?;
    record.methods = st
        .query_map([id], |r| stored(r.get(0)?))?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare(
        "SELECT amount, currency, scope, payment_mode FROM fee WHERE incident_id = ?1 ORDER BY seq",
    )?;
    record.fees = st
        .query_map([id], |r| {
            Ok(Fee {
                amount: r.get(0)?,
                currency: stored(r.get(1)?)?,
                scope: stored(r.get(2)?)?,
                payment: stored(r.get(3)?)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare(
        "SELECT citizenship, sex, age_group, unaccompanied, count FROM migrant_group
         WHERE incident_id = ?1 ORDER BY seq",
    )?;
    record.migrants = st
        .query_map([id], |r| {
            Ok(MigrantGroup {
                citizenship: stored(r.get(0)?)?,
                sex: stored(r.get(1)?)?,
                age_group: stored(r.get(2)?)?,
                unaccompanied: r.get(3)?,
                count: stored_count(r.get(4)?)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare(
        "SELECT citizenship, sex, age_group, role, stage FROM smuggler
         WHERE incident_id = ?1 ORDER BY seq",
    )?;
    record.smugglers = st
        .query_map([id], |r| {
            Ok(Smuggler {
                citizenship: stored(r.get(0)?)?,
                sex: stored(r.get(1)?)?,
                age_group: stored(r.get(2)?)?,
                role: stored(r.get(3)?)?,
                stage: stored(r.get(4)?)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(record))
}

impl ImportTx<'_> {
    /// The record stored under `source_id` as this transaction sees it.
    pub fn record(&mut self, source_id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        self.stmts.flush()?;
        read_record(self.conn, source_id)
    }

    /// Removes the record stored under `source_id` and every row under it; whether there was
    /// one. A removal is a change of the data: the data version moves on at commit, so no
    /// release of the old data is replayed for the new.
    pub fn remove(&mut self, source_id: &str) -> Result<bool, StoreError> {
        // Rows gathered for earlier inserts go in first, so none is left pointing at nothing.
        self.stmts.flush()?;
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM incident WHERE source_id = ?1",
                [source_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        // Foreign keys are off inside an import (see `begin_import`): no cascade, so every
        // table under `incident` is cleared by hand.
        for table in [
            "route_leg",
            "transit",
            "method",
            "fee",
            "migrant_group",
            "smuggler",
        ] {
            self.conn
                .execute(&format!("DELETE FROM {table} WHERE incident_id = ?1"), [id])?;
        }
        self.conn
            .execute("DELETE FROM incident WHERE id = ?1", [id])?;
        self.written += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod case_tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn a_record_reads_back_whole_and_a_removal_moves_the_data_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let fx = FxRates::sample();
        let mut stats = sample();
        stats.source_id = "S-1".into();
        stats.kind = RecordKind::Statistics;
        stats.fees.clear();
        stats.methods.clear();
        stats.smugglers.clear();
        stats.date = None;
        stats.corridor = Some(vrs_core::codes::Corridor::ALL[0]);
        let mut tx = s.begin_import("t", "", &fx).unwrap();
        tx.insert(&sample()).unwrap();
        tx.insert(&stats).unwrap();
        tx.commit(ImportCounts::default()).unwrap();
        assert_eq!(s.record(&sample().source_id).unwrap(), Some(sample()));
        assert_eq!(s.record("S-1").unwrap(), Some(stats));
        assert_eq!(s.record("nope").unwrap(), None);
        let rows = s
            .records(&RecordFilter {
                limit: 10,
                ..RecordFilter::default()
            })
            .unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.source_id.as_str())
                .collect::<Vec<_>>(),
            ["S-1", sample().source_id.as_str()]
        );
        assert_eq!(rows[1].migrants, 12);
        let v = s.data_version().unwrap();
        let mut tx = s.begin_import("t", "", &fx).unwrap();
        assert!(tx.remove(&sample().source_id).unwrap());
        assert!(!tx.remove("nope").unwrap());
        tx.commit(ImportCounts::default()).unwrap();
        assert_eq!(s.data_version().unwrap(), v + 1);
        assert_eq!(s.incident_count().unwrap(), 1);
        for table in [
            "route_leg",
            "transit",
            "method",
            "fee",
            "migrant_group",
            "smuggler",
        ] {
            let n: i64 = s
                .conn()
                .query_row(&format!("SELECT COUNT(*) FROM {table} WHERE incident_id NOT IN (SELECT id FROM incident)"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table} rows left behind");
        }
        // A search's wildcards are the characters typed.
        let found = s
            .records(&RecordFilter {
                text: "%".into(),
                limit: 10,
                ..RecordFilter::default()
            })
            .unwrap();
        assert!(found.is_empty());
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

    /// A store written by the version-2 schema (before record kinds and corridors) is migrated
    /// on open: its incidents stay incidents without a corridor, nothing is lost, and the new
    /// columns take both kinds.
    #[test]
    fn a_version_2_store_migrates_to_kinds_and_corridors() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(dir.path());
        {
            let mut conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(
                "INSERT INTO meta(key, value) VALUES ('country', 'THA'), ('perturbation_secret', '00');
                 INSERT INTO import_run VALUES (1, '2024-01-01', 'old.csv', '00', 1, 0, 0);
                 INSERT INTO incident(id, source_id, month, quarter, year, country, origin, destination,
                     dead, missing, record_key, import_id)
                     VALUES (1, 'OLD-1', 202401, 20241, 2024, 'THA', 'MMR', 'MYS', 2, 0, 7, 1);
                 INSERT INTO migrant_group VALUES (1, 0, 'MMR', 'M', '18-24', 0, 12, 9);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(Store::schema_version_of(dir.path()).unwrap(), 2);
        assert!(matches!(
            Store::open_read_only(dir.path()),
            Err(StoreError::TooOld { found: 2, .. })
        ));
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let old: (String, i64, Option<String>, i64) = s
            .conn()
            .query_row(
                "SELECT source_id, kind, corridor, dead FROM incident",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(old, ("OLD-1".into(), KIND_INCIDENT, None, 2));
        let fx = FxRates::sample();
        let mut tx = s.begin_import("new.jsonl", "01", &fx).unwrap();
        tx.set_limits(RecordLimits::with_max_group_count(1_000_000).unwrap());
        let stats = crate::record::tests::statistics_sample();
        assert_eq!(tx.insert(&stats).unwrap(), Inserted::New);
        tx.commit(ImportCounts::default()).unwrap();
        let kinds: Vec<(i64, Option<String>)> = s
            .conn()
            .prepare("SELECT kind, corridor FROM incident ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kinds,
            [
                (KIND_INCIDENT, None),
                (KIND_STATISTICS, Some("eastern_mediterranean".into()))
            ]
        );
        let people: i64 = s
            .conn()
            .query_row("SELECT SUM(count) FROM migrant_group", [], |r| r.get(0))
            .unwrap();
        assert_eq!(people, 12 + 150_000);
        assert_eq!(
            (s.incident_count().unwrap(), s.statistics_count().unwrap()),
            (2, 1)
        );
        assert!(s.integrity_problems().unwrap().is_empty());
        // A kind the schema does not know is refused by the store itself.
        assert!(
            s.conn()
                .execute("UPDATE incident SET kind = 2 WHERE id = 1", [])
                .is_err()
        );
    }

    #[test]
    fn an_import_run_is_stamped_with_the_store_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let clock = vrs_core::clock::ManualClock::new(1_735_689_600_000);
        s.set_clock(Arc::new(clock.clone()));
        let fx = FxRates::sample();
        let tx = s.begin_import("a.csv", "00", &fx).unwrap();
        tx.commit(ImportCounts::default()).unwrap();
        clock.advance(std::time::Duration::from_secs(3600));
        let tx = s.begin_import("b.csv", "01", &fx).unwrap();
        tx.commit(ImportCounts::default()).unwrap();
        let stamps: Vec<String> = s
            .conn()
            .prepare("SELECT started_at FROM import_run ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            stamps,
            ["2025-01-01T00:00:00+00:00", "2025-01-01T01:00:00+00:00"]
        );
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

    fn count(s: &Store, table: &str) -> i64 {
        s.conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// An incident with `n` migrant groups, `n` smugglers and `n` fees.
    fn wide(i: usize, n: usize) -> IncidentRecord {
        let mut r = sample();
        r.source_id = format!("THA-W-{i}");
        r.migrants = vec![r.migrants[0].clone(); n];
        r.smugglers = vec![r.smugglers[0].clone(); n];
        r.fees = vec![r.fees[0].clone(); n];
        r
    }

    #[test]
    fn gathered_child_rows_are_all_written_with_their_sequence_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let fx = FxRates::sample();
        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        // 3 × 37 rows per table: whole chunks, and a remainder written at commit.
        for i in 0..37 {
            assert_eq!(tx.insert(&wide(i, 3)).unwrap(), Inserted::New);
        }
        assert_eq!(tx.insert(&wide(5, 3)).unwrap(), Inserted::Duplicate);
        tx.commit(ImportCounts::default()).unwrap();
        for table in ["migrant_group", "smuggler", "fee"] {
            assert_eq!(count(&s, table), 111, "{table}");
            let (seqs, keys): (i64, i64) = s
                .conn()
                .query_row(
                    &format!(
                        "SELECT COUNT(DISTINCT incident_id || ':' || seq), COUNT(DISTINCT record_key) FROM {table}"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(seqs, 111, "{table}");
            // 111 draws of 32 random bits: a collision has odds of about 1 in 1.4 million.
            assert_eq!(keys, 111, "{table}");
        }
        assert_eq!(count(&s, "route_leg"), 74);
        assert_eq!(count(&s, "method"), 74);
        assert_eq!(count(&s, "transit"), 37);
        assert!(s.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn indexes_dropped_for_a_first_import_come_back_on_commit_rollback_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let before = secondary_indexes(s.conn()).unwrap();
        assert!(!before.is_empty(), "{before:?}");
        let fx = FxRates::sample();

        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        assert_eq!(tx.deferred.len(), before.len());
        tx.insert(&sample()).unwrap();
        drop(tx);
        assert_eq!(secondary_indexes(s.conn()).unwrap(), before);
        assert_eq!(count(&s, "incident"), 0);

        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        tx.insert(&sample()).unwrap();
        tx.rollback().unwrap();
        assert_eq!(secondary_indexes(s.conn()).unwrap(), before);

        let mut tx = s.begin_import("a.csv", "00", &fx).unwrap();
        tx.insert(&sample()).unwrap();
        tx.commit(ImportCounts::default()).unwrap();
        assert_eq!(secondary_indexes(s.conn()).unwrap(), before);
        let fk: bool = s
            .conn()
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are back on after an import");

        // A store with records keeps its indexes through an import.
        let tx = s.begin_import("b.csv", "01", &fx).unwrap();
        assert!(tx.deferred.is_empty());
        tx.commit(ImportCounts::default()).unwrap();
        assert!(s.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn version_1_stores_migrate_with_their_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(store_path(dir.path())).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO meta VALUES ('country', 'THA'), ('perturbation_secret', '00');
                 INSERT INTO import_run VALUES (1, 'now', 'a.csv', '00', 2, 0, 0);
                 INSERT INTO incident(id, source_id, month, quarter, year, country, origin,
                     destination, dead, missing, record_key, import_id)
                 VALUES (1, 'a', 202401, 20241, 2024, 'THA', 'MMR', 'THA', 0, 0, 11, 1),
                        (2, 'b', 202402, 20241, 2024, 'THA', 'MMR', 'MYS', 1, 0, 12, 1);
                 INSERT INTO migrant_group(id, incident_id, citizenship, sex, age_group,
                     unaccompanied, count, record_key)
                 VALUES (7, 2, 'MMR', 'F', '18-24', 0, 3, 21), (5, 1, 'MMR', 'M', '25-34', 0, 2, 22),
                        (9, 2, 'AFG', 'M', '25-34', 1, 1, 23);
                 INSERT INTO smuggler(incident_id, citizenship, sex, age_group, role, stage, record_key)
                 VALUES (1, 'THA', 'M', '35-49', 'guide', 'arrested', 31);
                 INSERT INTO fee(incident_id, amount, currency, amount_usd, band, scope,
                     payment_mode, record_key)
                 VALUES (2, 100, 'USD', 100, '0-499', 'leg', 'cash', 41);",
            )
            .unwrap();
        }
        assert_eq!(Store::schema_version_of(dir.path()).unwrap(), 1);
        assert!(matches!(
            Store::open_read_only(dir.path()),
            Err(StoreError::TooOld { found: 1, .. })
        ));
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let groups: Vec<(i64, i64, String, i64)> = s
            .conn()
            .prepare("SELECT incident_id, seq, citizenship, record_key FROM migrant_group")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            groups,
            vec![
                (1, 0, "MMR".into(), 22),
                (2, 0, "MMR".into(), 21),
                (2, 1, "AFG".into(), 23)
            ]
        );
        assert_eq!(count(&s, "smuggler"), 1);
        assert_eq!(count(&s, "fee"), 1);
        assert!(s.integrity_problems().unwrap().is_empty());
        drop(s);
        assert!(Store::open_read_only(dir.path()).is_ok());
    }
}
