//! Query planning and exact aggregation: a checked [`Query`] becomes parameterised SQL over the
//! node's own schema, run read-only, giving an [`ExactTable`] for disclosure control.
//!
//! Nothing here releases anything: exact cells go straight to [`crate::disclosure::release`].
//! The SQL text is built only from fixed fragments chosen by the query's enums; every value from a
//! query travels as a bound parameter.
//!
//! Counting rules. Each unit has a *row* (incident, migrant group, smuggler or fee) and a value per
//! row (1, or the group's count, or the incident's dead / missing). A row falls in a cell once for
//! each combination of the cell's dimension values it has: an incident with two methods falls in
//! two method cells (multi-valued dimensions are marked non-additive for the disclosure step).
//! Profile dimensions of an incident (citizenship, sex, age group) come from one migrant group at a
//! time, so "incidents by sex × age group" never pairs the sex of one group with the age of another.
//! Margins are computed by the same SQL with the margin dimensions left out, never by adding cells.

use rusqlite::types::{Value, ValueRef};
// Grouping keys are the node's own stored values: a fast hash with a per-process random seed.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use vrs_core::answer::MARGIN;
use vrs_core::period::Month;
use vrs_core::query::{DimValue, Dimension, Query, QueryError, UNKNOWN, Unit};

use crate::disclosure::{Bounds, ExactCell, ExactTable};
use crate::engine::{Engine, groupby};
use crate::store::{Store, StoreError};

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The query is structurally wrong or outside the data.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The unit or a dimension is not published by this node's policy.
    #[error("{0} is not published by this node")]
    NotPublished(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PlanError {
    fn from(e: rusqlite::Error) -> Self {
        PlanError::Store(StoreError::Sqlite(e))
    }
}

/// Where a dimension's value comes from, for the unit being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A column of the incident (`i`) or of the unit's own row (`u`): one value per row.
    Row(&'static str),
    /// A table joined per incident, several values per incident.
    Multi(MultiTable),
}

/// Tables that hold several values per incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MultiTable {
    Transit,
    Method,
    MigrantGroup,
    Smuggler,
    Fee,
}

impl MultiTable {
    fn table(self) -> &'static str {
        match self {
            MultiTable::Transit => "transit",
            MultiTable::Method => "method",
            MultiTable::MigrantGroup => "migrant_group",
            MultiTable::Smuggler => "smuggler",
            MultiTable::Fee => "fee",
        }
    }

    fn alias(self) -> &'static str {
        match self {
            MultiTable::Transit => "jt",
            MultiTable::Method => "jm",
            MultiTable::MigrantGroup => "jg",
            MultiTable::Smuggler => "js",
            MultiTable::Fee => "jf",
        }
    }
}

/// The unit's row table, its value expression and filter, and its key column.
struct UnitRows {
    from: &'static str,
    value: &'static str,
    key: &'static str,
    only: Option<&'static str>,
}

fn unit_rows(unit: Unit) -> UnitRows {
    match unit {
        // Statistics rows (kind 1) are people, not incidents: incident and fee units skip them.
        Unit::Incidents => UnitRows {
            from: "incident i",
            value: "1",
            key: "i.record_key",
            only: Some("i.kind = 0"),
        },
        Unit::Deaths => UnitRows {
            from: "incident i",
            value: "i.dead",
            key: "i.record_key",
            only: Some("i.dead > 0"),
        },
        Unit::Missing => UnitRows {
            from: "incident i",
            value: "i.missing",
            key: "i.record_key",
            only: Some("i.missing > 0"),
        },
        Unit::Migrants => UnitRows {
            from: "migrant_group u JOIN incident i ON i.id = u.incident_id",
            value: "u.count",
            key: "u.record_key",
            only: None,
        },
        Unit::Smugglers => UnitRows {
            from: "smuggler u JOIN incident i ON i.id = u.incident_id",
            value: "1",
            key: "u.record_key",
            only: None,
        },
        Unit::Fees => UnitRows {
            from: "fee u JOIN incident i ON i.id = u.incident_id",
            value: "1",
            key: "u.record_key",
            only: Some("i.kind = 0"),
        },
    }
}

/// Column of a dimension in its source table (without alias).
fn column(d: Dimension) -> &'static str {
    match d {
        Dimension::Year => "year",
        Dimension::Quarter => "quarter",
        Dimension::Month => "month",
        Dimension::Origin => "origin",
        Dimension::Destination => "destination",
        Dimension::Route => "origin || '>' || destination",
        Dimension::Corridor => "corridor",
        Dimension::Mode => "mode",
        Dimension::PlaceType => "place_type",
        Dimension::Transit => "country",
        Dimension::Method => "code",
        Dimension::Citizenship => "citizenship",
        Dimension::Sex => "sex",
        Dimension::AgeGroup => "age_group",
        Dimension::SmugglerRole => "role",
        Dimension::SmugglerStage => "stage",
        Dimension::FeeBand => "band",
    }
}

fn source(d: Dimension, unit: Unit) -> Source {
    let own_row = match d {
        Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup => {
            matches!(unit, Unit::Migrants | Unit::Smugglers)
        }
        Dimension::SmugglerRole | Dimension::SmugglerStage => unit == Unit::Smugglers,
        Dimension::FeeBand => unit == Unit::Fees,
        _ => false,
    };
    if own_row {
        return Source::Row(match d {
            Dimension::Citizenship => "u.citizenship",
            Dimension::Sex => "u.sex",
            Dimension::AgeGroup => "u.age_group",
            Dimension::SmugglerRole => "u.role",
            Dimension::SmugglerStage => "u.stage",
            _ => "u.band",
        });
    }
    match d {
        Dimension::Year => Source::Row("i.year"),
        Dimension::Quarter => Source::Row("i.quarter"),
        Dimension::Month => Source::Row("i.month"),
        Dimension::Origin => Source::Row("i.origin"),
        Dimension::Destination => Source::Row("i.destination"),
        Dimension::Route => Source::Row("(i.origin || '>' || i.destination)"),
        Dimension::Corridor => Source::Row("COALESCE(i.corridor, 'unknown')"),
        Dimension::Mode => Source::Row("COALESCE(i.mode, 'unknown')"),
        Dimension::PlaceType => Source::Row("COALESCE(i.place_type, 'unknown')"),
        Dimension::Transit => Source::Multi(MultiTable::Transit),
        Dimension::Method => Source::Multi(MultiTable::Method),
        Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup => {
            Source::Multi(MultiTable::MigrantGroup)
        }
        Dimension::SmugglerRole | Dimension::SmugglerStage => Source::Multi(MultiTable::Smuggler),
        Dimension::FeeBand => Source::Multi(MultiTable::Fee),
    }
}

/// Whether the margin over `d` is the sum of its cells when counting `unit`.
pub fn is_additive(d: Dimension, unit: Unit) -> bool {
    matches!(source(d, unit), Source::Row(_))
}

/// The storage form of a filter value, bound as an SQL parameter.
pub(crate) fn storage_value(v: &DimValue) -> Value {
    match v {
        DimValue::Year(y) => Value::Integer(i64::from(*y)),
        DimValue::Quarter(y, q) => Value::Integer(i64::from(*y) * 10 + i64::from(*q)),
        DimValue::Month(m) => Value::Integer(m.to_int()),
        other => Value::Text(other.to_string()),
    }
}

/// The year of `i.month` (`YYYYMM`), in the stored form of `incident.year`.
const YEAR_OF_MONTH: &str = "(i.month / 100)";

/// The quarter of `i.month`, in the stored form of `incident.quarter` (`YYYYQ`).
const QUARTER_OF_MONTH: &str = "(i.month / 100 * 10 + (i.month % 100 + 2) / 3)";

/// The first and last month (storage form) covered by period filter values; `None` for others.
pub(crate) fn month_span<'a>(values: impl IntoIterator<Item = &'a DimValue>) -> Option<(i64, i64)> {
    let span = |v: &DimValue| match v {
        DimValue::Year(y) => Some((i64::from(*y) * 100 + 1, i64::from(*y) * 100 + 12)),
        DimValue::Quarter(y, q) => {
            let first = i64::from(*y) * 100 + (i64::from(*q) - 1) * 3 + 1;
            Some((first, first + 2))
        }
        DimValue::Month(m) => Some((m.to_int(), m.to_int())),
        _ => None,
    };
    let mut spans = values.into_iter().map(span);
    let first = spans.next()??;
    spans.try_fold(first, |(lo, hi), s| s.map(|(l, h)| (lo.min(l), hi.max(h))))
}

/// The display form of a stored dimension value.
pub(crate) fn display_value(d: Dimension, v: &Value) -> String {
    match (d, v) {
        (Dimension::Year, Value::Integer(y)) => format!("{y:04}"),
        (Dimension::Quarter, Value::Integer(q)) => format!("{:04}-Q{}", q / 10, q % 10),
        (Dimension::Month, Value::Integer(m)) => {
            Month::from_int(*m).map_or_else(|| UNKNOWN.to_string(), |m| m.to_string())
        }
        (_, Value::Text(t)) => t.clone(),
        (_, Value::Integer(i)) => i.to_string(),
        _ => UNKNOWN.to_string(),
    }
}

/// What a zCDP release adds to a query before any record is read: contribution bounds (at most
/// `k` rows of each multi-valued table per incident, in value order; at most `fee` fee rows per
/// fee unit, in their stored order) and the months inside the declared coverage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restriction {
    /// Contribution bounds; `None` in rules mode.
    pub bounds: Option<Bounds>,
    /// First and last month to read (the universe's months); `None` reads the query's own range.
    pub months: Option<(Month, Month)>,
}

/// The bound of a multi-valued table.
fn bound_of(b: &Bounds, t: MultiTable) -> u32 {
    match t {
        MultiTable::Transit => b.transit,
        MultiTable::Method => b.method,
        MultiTable::MigrantGroup => b.migrant_group,
        MultiTable::Smuggler => b.smuggler,
        MultiTable::Fee => b.fee,
    }
}

/// SQL and parameters for one grouping set.
struct Compiled {
    sql: String,
    params: Vec<Value>,
}

/// Builds the SQL for `query`, grouped by `dims` (a subset of its group-by, for margins).
fn compile(query: &Query, dims: &[Dimension], restriction: &Restriction) -> Compiled {
    let unit = query.unit();
    let rows = unit_rows(unit);
    // A query of incidents over periods alone can read just the month index
    // `(month, record_key, dead, missing)`: its year and quarter are then computed from the month.
    // Otherwise the table is read anyway, and its stored year and quarter are cheaper.
    let is_period =
        |d: Dimension| matches!(d, Dimension::Year | Dimension::Quarter | Dimension::Month);
    let index_only = matches!(unit, Unit::Incidents | Unit::Deaths | Unit::Missing)
        && dims.iter().all(|d| is_period(*d))
        && query.filters().iter().all(|f| is_period(f.dimension()));
    let source = |d: Dimension, unit: Unit| match (d, index_only) {
        (Dimension::Year, true) => Source::Row(YEAR_OF_MONTH),
        (Dimension::Quarter, true) => Source::Row(QUARTER_OF_MONTH),
        _ => source(d, unit),
    };
    let mut params: Vec<Value> = Vec::new();

    // Joins: one per multi-valued table among the grouped dimensions. Profile dimensions from one
    // table come from one row of it (a DISTINCT projection of just the grouped columns).
    let mut joins: Vec<(MultiTable, Vec<Dimension>)> = Vec::new();
    let mut selects: Vec<String> = Vec::new();
    for &d in dims {
        match source(d, unit) {
            Source::Row(expr) => selects.push(expr.to_string()),
            Source::Multi(t) => {
                match joins.iter_mut().find(|(jt, _)| *jt == t) {
                    Some((_, ds)) => ds.push(d),
                    None => joins.push((t, vec![d])),
                }
                selects.push(format!("{}.{}", t.alias(), column(d)));
            }
        }
    }
    let mut from = match (restriction.bounds, unit) {
        // A fee unit counts at most `fee` fee rows of its incident, the first by sequence.
        (Some(b), Unit::Fees) => format!(
            "(SELECT * FROM (SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.incident_id ORDER BY f.seq) AS rn FROM fee f) WHERE rn <= {}) u JOIN incident i ON i.id = u.incident_id",
            b.fee
        ),
        _ => String::from(rows.from),
    };
    for (t, ds) in &joins {
        let cols: Vec<&str> = ds.iter().map(|d| column(*d)).collect();
        let cols = cols.join(", ");
        let projection = match restriction.bounds {
            // At most k distinct values per incident, the smallest first: a function of the
            // incident's own rows only, so one unit's bound never depends on another's.
            Some(b) => format!(
                "SELECT incident_id, {cols} FROM (SELECT incident_id, {cols}, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY {cols}) AS rn FROM (SELECT DISTINCT incident_id, {cols} FROM {table})) WHERE rn <= {k}",
                table = t.table(),
                k = bound_of(&b, *t),
            ),
            None => format!(
                "SELECT DISTINCT incident_id, {cols} FROM {table}",
                table = t.table()
            ),
        };
        from.push_str(&format!(
            " JOIN ({projection}) {alias} ON {alias}.incident_id = i.id",
            alias = t.alias(),
        ));
    }

    let mut wheres: Vec<String> = Vec::new();
    if let Some(only) = rows.only {
        wheres.push(only.to_string());
    }
    if let Some(f) = query.from() {
        wheres.push("i.month >= ?".into());
        params.push(Value::Integer(f.to_int()));
    }
    if let Some(t) = query.to() {
        wheres.push("i.month <= ?".into());
        params.push(Value::Integer(t.to_int()));
    }
    if let Some((first, last)) = restriction.months {
        wheres.push("i.month BETWEEN ? AND ?".into());
        params.extend([
            Value::Integer(first.to_int()),
            Value::Integer(last.to_int()),
        ]);
    }
    // Filters on multi-valued tables become one EXISTS per table, so that all conditions on one
    // table hold for the same row of it, and nothing is multiplied.
    let mut exists: Vec<(MultiTable, Vec<String>, Vec<Value>)> = Vec::new();
    for f in query.filters() {
        let d = f.dimension();
        let placeholders = vec!["?"; f.values().len()].join(", ");
        let values = f.values().iter().map(storage_value);
        match source(d, unit) {
            Source::Row(expr) => {
                wheres.push(format!("{expr} IN ({placeholders})"));
                params.extend(values);
                // The months the period values span, which the month index can seek.
                if let Some((lo, hi)) = month_span(f.values()) {
                    wheres.push("i.month BETWEEN ? AND ?".into());
                    params.extend([Value::Integer(lo), Value::Integer(hi)]);
                }
            }
            Source::Multi(t) => {
                let cond = format!("x.{} IN ({placeholders})", column(d));
                match exists.iter_mut().find(|(et, _, _)| *et == t) {
                    Some((_, conds, ps)) => {
                        conds.push(cond);
                        ps.extend(values);
                    }
                    None => exists.push((t, vec![cond], values.collect())),
                }
            }
        }
    }
    for (t, conds, ps) in exists {
        wheres.push(format!(
            "EXISTS (SELECT 1 FROM {} x WHERE x.incident_id = i.id AND {})",
            t.table(),
            conds.join(" AND ")
        ));
        params.extend(ps);
    }
    let where_sql = if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    };

    let dim_cols: Vec<String> = selects
        .iter()
        .enumerate()
        .map(|(n, e)| format!("{e} AS d{n}"))
        .collect();
    let group_cols: Vec<String> = (0..selects.len()).map(|n| format!("d{n}")).collect();
    let sql = if unit.is_magnitude() {
        // One row per (cell, incident): the per-contributor sums the dominance rule needs.
        let mut group = group_cols;
        group.push("i.id".into());
        format!(
            "SELECT {dims}{sep}SUM({value}), SUM({key}) FROM {from}{where_sql} GROUP BY {group}",
            dims = dim_cols.join(", "),
            sep = if dim_cols.is_empty() { "" } else { ", " },
            value = rows.value,
            key = rows.key,
            group = group.join(", "),
        )
    } else {
        // One row per counted record, grouped into cells by `run_grouping` as the rows stream
        // in: SQLite groups by sorting every row, which costs more than reading them.
        format!(
            "SELECT {dims}{sep}{key}, i.id FROM {from}{where_sql}",
            dims = dim_cols.join(", "),
            sep = if dim_cols.is_empty() { "" } else { ", " },
            key = rows.key,
        )
    };
    Compiled { sql, params }
}

/// Runs one grouping set and adds its cells to `out`. `dims` are the grouped dimensions, `mask`
/// says for each of the query's dimensions whether it is grouped (true) or a margin.
fn run_grouping(
    store: &Store,
    query: &Query,
    mask: &[bool],
    restriction: &Restriction,
    out: &mut Vec<ExactCell>,
) -> Result<(), PlanError> {
    let all = query.group_by();
    let dims: Vec<Dimension> = all
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(d, _)| *d)
        .collect();
    let compiled = compile(query, &dims, restriction);
    tracing::debug!(dims = dims.len(), "running grouping set");
    let mut stmt = store.conn().prepare_cached(&compiled.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(compiled.params.iter()))?;
    let k = dims.len();
    let key_of = |row: &rusqlite::Row<'_>| -> Result<Vec<String>, rusqlite::Error> {
        let mut key = Vec::with_capacity(all.len());
        let mut n = 0;
        for (d, grouped) in all.iter().zip(mask) {
            if *grouped {
                key.push(display_value(*d, &row.get::<_, Value>(n)?));
                n += 1;
            } else {
                key.push(MARGIN.to_string());
            }
        }
        Ok(key)
    };
    if query.unit().is_magnitude() {
        let mut cells: HashMap<Vec<String>, ExactCell> = HashMap::new();
        while let Some(row) = rows.next()? {
            let key = key_of(row)?;
            let v: i64 = row.get(k)?;
            let ck: i64 = row.get(k + 1)?;
            let cell = cells.entry(key.clone()).or_insert_with(|| ExactCell {
                key,
                value: 0,
                contributors: 0,
                largest: [0, 0],
                cell_key: 0,
            });
            cell.value += v;
            cell.contributors += 1;
            cell.cell_key = cell.cell_key.wrapping_add(u64::try_from(ck).unwrap_or(0));
            if v > cell.largest[0] {
                cell.largest = [v, cell.largest[0]];
            } else if v > cell.largest[1] {
                cell.largest[1] = v;
            }
        }
        out.extend(cells.into_values().filter(|c| c.value > 0));
    } else {
        // Counting incidents, a cell never holds two rows of one incident: the joined tables
        // enter as DISTINCT projections of exactly the grouped columns, which are all in the
        // cell's key. Other record units (smugglers, fees) can have several rows per incident.
        let rows_are_incidents = query.unit() == Unit::Incidents;
        let mut seen: HashSet<(usize, i64)> = HashSet::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut cells: Vec<ExactCell> = Vec::new();
        let mut group = Vec::new();
        while let Some(row) = rows.next()? {
            group.clear();
            for n in 0..k {
                encode_group_value(row.get_ref(n)?, &mut group);
            }
            let c = match index.get(group.as_slice()) {
                Some(&c) => c,
                None => {
                    cells.push(ExactCell {
                        key: key_of(row)?,
                        value: 0,
                        contributors: 0,
                        largest: [1, 0],
                        cell_key: 0,
                    });
                    index.insert(group.clone(), cells.len() - 1);
                    cells.len() - 1
                }
            };
            let ck: i64 = row.get(k)?;
            let incident: i64 = row.get(k + 1)?;
            let new_contributor = rows_are_incidents || seen.insert((c, incident));
            let cell = &mut cells[c];
            cell.value += 1;
            cell.cell_key = cell.cell_key.wrapping_add(u64::try_from(ck).unwrap_or(0));
            cell.contributors += u64::from(new_contributor);
            cell.largest[1] = i64::from(cell.value > 1);
        }
        out.extend(cells);
    }
    Ok(())
}

/// Appends an unambiguous encoding of one grouped value to `out`: two rows fall in one cell
/// exactly when their grouped values are equal in type and content.
fn encode_group_value(v: ValueRef<'_>, out: &mut Vec<u8>) {
    match v {
        ValueRef::Null => out.push(0),
        ValueRef::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Real(r) => {
            out.push(2);
            out.extend_from_slice(&r.to_bits().to_le_bytes());
        }
        ValueRef::Text(b) | ValueRef::Blob(b) => {
            out.push(if matches!(v, ValueRef::Text(_)) { 3 } else { 4 });
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// Aggregates `query` exactly over the store. The caller hands the table to disclosure control.
pub fn aggregate(store: &Store, query: &Query) -> Result<ExactTable, PlanError> {
    aggregate_restricted(store, query, &Restriction::default())
}

/// Reads the column engine's projection of the store in `dir` ahead of the first query (the
/// server calls it in the background at start). A failure is only logged: the first query
/// that needs the projection tries again.
pub fn prepare_columns(dir: &std::path::Path) {
    let prepared = Store::open_read_only(dir)
        .map_err(PlanError::from)
        .and_then(|store| crate::engine::prepare(&store));
    if let Err(e) = prepared {
        tracing::warn!(error = %e, "cannot read the column projection ahead of the first query");
    }
}

/// [`aggregate`] by the SQL path alone, never the column engine: the benchmark's "before".
#[doc(hidden)]
pub fn aggregate_by_sql(store: &Store, query: &Query) -> Result<ExactTable, PlanError> {
    aggregate_cells(store, query, &Restriction::default(), Some(Engine::Sql))
}

/// Aggregates `query` exactly under a zCDP [`Restriction`] (contribution bounds, coverage
/// months). Unlike [`aggregate`] it never compares the query with the stored periods: the
/// caller's universe already decided which months are read, from the declared coverage.
pub fn aggregate_restricted(
    store: &Store,
    query: &Query,
    restriction: &Restriction,
) -> Result<ExactTable, PlanError> {
    if restriction.months.is_some() {
        return aggregate_cells(store, query, restriction, None);
    }
    if let (Some(range), true) = (
        store.period_range()?,
        query.from().is_some() || query.to().is_some(),
    ) {
        let (first, last) = range;
        let after = query.from().is_some_and(|f| f > last);
        let before = query.to().is_some_and(|t| t < first);
        if after || before {
            return Err(QueryError::PeriodOutsideData.into());
        }
    }
    aggregate_cells(store, query, restriction, None)
}

/// Aggregates with the engine given (`None`: the one [`crate::engine`] chooses). Tests compare
/// the column engine with SQL through it.
pub(crate) fn aggregate_cells(
    store: &Store,
    query: &Query,
    restriction: &Restriction,
    engine: Option<Engine>,
) -> Result<ExactTable, PlanError> {
    let engine = match engine {
        Some(e) => e,
        None => crate::engine::engine_for(store, query)?,
    };
    let n = query.group_by().len();
    let mut cells = Vec::new();
    let masks: Vec<Vec<bool>> = if query.margins() {
        (0..(1u32 << n))
            .map(|bits| (0..n).map(|i| bits & (1 << i) == 0).collect())
            .collect()
    } else {
        vec![vec![true; n]]
    };
    for mask in &masks {
        match &engine {
            Engine::Columns(p) => groupby::grouping(p, query, mask, restriction, &mut cells),
            Engine::Sql => run_grouping(store, query, mask, restriction, &mut cells)?,
        }
    }
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ExactTable {
        unit: query.unit(),
        dimensions: query.group_by().to_vec(),
        additive: query
            .group_by()
            .iter()
            .map(|d| is_additive(*d, query.unit()))
            .collect(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_expressions_over_the_month_match_the_stored_forms() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let (quarter, year) = (QUARTER_OF_MONTH, YEAR_OF_MONTH);
        for y in [1999, 2024] {
            for m in 1..=12 {
                let month: Month = format!("{y}-{m:02}").parse().unwrap();
                let (q, yy): (i64, i64) = conn
                    .query_row(
                        &format!("SELECT {quarter}, {year} FROM (SELECT ?1 AS month) i"),
                        [month.to_int()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                assert_eq!(q, month.quarter_int(), "{month}");
                assert_eq!(yy, i64::from(month.year()), "{month}");
            }
        }
    }

    fn plan(unit: &str, by: &[&str], filters: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
        let raw = vrs_core::query::RawQuery {
            unit: unit.into(),
            group_by: by.iter().map(|d| d.to_string()).collect(),
            filters: filters
                .iter()
                .map(|(d, v)| (d.to_string(), vec![v.to_string()]))
                .collect(),
            period_from: String::new(),
            period_to: String::new(),
            margins: false,
            rho_micro: 0,
        };
        let q = Query::parse(&raw, &vrs_core::query::QueryLimits::default()).unwrap();
        let c = compile(&q, q.group_by(), &Restriction::default());
        let mut stmt = store
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {}", c.sql))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(c.params.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    #[test]
    fn incidents_over_periods_alone_read_only_the_month_index() {
        for (unit, by, filters) in [
            ("incidents", &["quarter"][..], &[][..]),
            (
                "deaths",
                &["year", "month"][..],
                &[("quarter", "2024-Q1")][..],
            ),
        ] {
            let p = plan(unit, by, filters);
            assert!(
                p.contains("COVERING INDEX incident_month"),
                "{unit} {by:?}: {p}"
            );
        }
        let p = plan("incidents", &["origin", "quarter"], &[]);
        assert!(!p.contains("incident_month"), "{p}");
    }

    #[test]
    fn period_filters_give_the_span_of_months_they_cover() {
        let m = |s: &str| DimValue::Month(s.parse().unwrap());
        assert_eq!(
            month_span(&[DimValue::Quarter(2024, 2), DimValue::Year(2023)]),
            Some((202301, 202406))
        );
        assert_eq!(
            month_span(&[m("2024-05"), DimValue::Quarter(2024, 4)]),
            Some((202405, 202412))
        );
        assert_eq!(month_span(&[] as &[DimValue]), None);
        let mixed = [m("2024-05"), DimValue::Country("THA".parse().unwrap())];
        assert_eq!(month_span(&mixed), None);
    }
}
