//! The column engine: exact aggregation over an in-memory columnar projection of the store,
//! for the query shapes it covers (the SQL path of [`crate::query`] answers the rest).
//!
//! SQLite stays the store of record. The first query that the engine covers reads the counted
//! fields of every incident and migrant group into dictionary-coded columns ([`columns`]); later
//! queries group those codes in one pass ([`groupby`]) instead of stepping through SQLite's
//! rows: 25 to 75 times faster at 1M incidents (docs/BENCHMARKS.md, "Performance v2"). The
//! projection is kept per store file and rebuilt when the store's fingerprint changes: its
//! `data_version` (moved by every import that adds records, and part of every release id, so the
//! node already assumes that data does not change without it) and the largest incident id. The
//! engine produces the same cells as the SQL path, before any disclosure step; what happens after
//! (universe, noise, rules) is unchanged.

pub(crate) mod columns;
pub(crate) mod groupby;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::Connection;
use vrs_core::query::Query;

use crate::query::PlanError;
use crate::store::{Store, StoreError};
use columns::{BuildError, Projection};

/// What identifies the store's content, as far as the projection is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    data_version: Option<String>,
    last_incident: Option<i64>,
    last_group_incident: Option<i64>,
}

fn fingerprint(conn: &Connection) -> Result<Fingerprint, rusqlite::Error> {
    // Each subquery is one seek: the meta key, and the last entry of each table's key.
    conn.query_row(
        "SELECT (SELECT value FROM meta WHERE key = 'data_version'),
                (SELECT MAX(id) FROM incident),
                (SELECT MAX(incident_id) FROM migrant_group)",
        [],
        |r| {
            Ok(Fingerprint {
                data_version: r.get(0)?,
                last_incident: r.get(1)?,
                last_group_incident: r.get(2)?,
            })
        },
    )
}

/// A projection of one store file, or the note that the store cannot have one.
struct Entry {
    path: PathBuf,
    fingerprint: Fingerprint,
    projection: Option<Arc<Projection>>,
}

/// Projections held by this process. A node serves one store; a second slot keeps a process that
/// alternates between two (the benchmark harness, the operator's CLI) from rebuilding each time.
static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
const KEPT: usize = 2;

/// The engine that answers a query: the column engine, or SQL.
#[derive(Debug, Clone)]
pub(crate) enum Engine {
    /// The columnar projection.
    Columns(Arc<Projection>),
    /// The SQL path (a shape the column engine does not cover, or a store it cannot project).
    Sql,
}

/// Which engine answers `query` on `store`; builds or refreshes the projection when the column
/// engine covers the query.
pub(crate) fn engine_for(store: &Store, query: &Query) -> Result<Engine, PlanError> {
    if !groupby::covers(query) {
        return Ok(Engine::Sql);
    }
    Ok(match projection(store)? {
        Some(p) => Engine::Columns(p),
        None => Engine::Sql,
    })
}

/// Builds (or refreshes) the projection of `store` ahead of the queries that would need it.
pub(crate) fn prepare(store: &Store) -> Result<(), PlanError> {
    projection(store).map(drop)
}

/// The current projection of `store`, built if it is missing or stale; `None` if the store
/// cannot be projected.
fn projection(store: &Store) -> Result<Option<Arc<Projection>>, PlanError> {
    let sql = |e: rusqlite::Error| PlanError::Store(StoreError::Sqlite(e));
    let now = fingerprint(store.conn()).map_err(sql)?;
    // The lock is held while a projection is built, so that concurrent first queries wait for
    // one build instead of each making its own copy.
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let path = store.path();
    if let Some(n) = cache.iter().position(|e| e.path == path) {
        if cache[n].fingerprint == now {
            let e = cache.remove(n);
            let p = e.projection.clone();
            cache.insert(0, e);
            return Ok(p);
        }
        cache.remove(n);
    }
    let (fingerprint, projection) = build(store.conn(), path).map_err(sql)?;
    cache.insert(
        0,
        Entry {
            path: path.to_path_buf(),
            fingerprint,
            projection: projection.clone(),
        },
    );
    cache.truncate(KEPT);
    Ok(projection)
}

/// Reads the projection in one read transaction, with the fingerprint of that snapshot.
fn build(
    conn: &Connection,
    path: &Path,
) -> Result<(Fingerprint, Option<Arc<Projection>>), rusqlite::Error> {
    let started = Instant::now();
    let tx = conn.unchecked_transaction()?;
    let fp = fingerprint(&tx)?;
    let projection = match columns::build(&tx) {
        Ok(p) => {
            tracing::info!(
                store = %path.display(),
                incidents = p.incidents.kind.len(),
                migrant_groups = p.groups.incident.len(),
                mib = p.heap_bytes() / (1 << 20),
                ms = started.elapsed().as_millis() as u64,
                "column projection built"
            );
            Some(Arc::new(p))
        }
        Err(BuildError::Unsupported(what)) => {
            tracing::warn!(
                field = what,
                "the store cannot be projected; queries use SQL"
            );
            None
        }
        Err(BuildError::Sqlite(e)) => return Err(e),
    };
    tx.finish()?;
    Ok((fp, projection))
}
