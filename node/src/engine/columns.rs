//! The columnar projection: the counted fields of every incident and migrant group, read once
//! from SQLite and held in memory as dictionary codes.
//!
//! Each grouped or filtered field is a [`Column`]: one `u16` code per row and a dictionary from
//! code to the value SQL would group by (the stored value, after the same `COALESCE` the SQL
//! path applies). Two rows share a code exactly when SQL would put them in one group, so grouping
//! by codes gives the SQL path's cells. Counted fields (`dead`, `missing`, `count`, the secret
//! `record_key`) are plain `u32` vectors: the schema's checks and the import keep them in that
//! range; a store where one is not (or where a dictionary outgrows `u16`) gets no projection and
//! every query takes the SQL path.

use foldhash::{HashMap, HashMapExt};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};

/// One dictionary-coded field.
#[derive(Debug, Default)]
pub(crate) struct Column {
    /// The code of each row.
    pub codes: Vec<u16>,
    /// The value of each code, as SQL groups and compares it.
    pub dict: Vec<Value>,
}

/// Why a store has no projection (it is answered by SQL instead).
#[derive(Debug)]
pub(crate) enum BuildError {
    /// A value the projection cannot hold exactly (a counted field outside `u32`, a dictionary
    /// past `u16`, a value of an unexpected type).
    Unsupported(&'static str),
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for BuildError {
    fn from(e: rusqlite::Error) -> Self {
        BuildError::Sqlite(e)
    }
}

/// Builds a [`Column`], interning values as they come.
#[derive(Default)]
struct ColumnBuilder {
    column: Column,
    ints: HashMap<i64, u16>,
    texts: HashMap<String, u16>,
    null: Option<u16>,
    name: &'static str,
}

impl ColumnBuilder {
    fn new(name: &'static str, rows: usize) -> Self {
        ColumnBuilder {
            column: Column {
                codes: Vec::with_capacity(rows),
                dict: Vec::new(),
            },
            ints: HashMap::new(),
            texts: HashMap::new(),
            null: None,
            name,
        }
    }

    fn next_code(&mut self, v: Value) -> Result<u16, BuildError> {
        let code = u16::try_from(self.column.dict.len())
            .map_err(|_| BuildError::Unsupported(self.name))?;
        self.column.dict.push(v);
        Ok(code)
    }

    /// The code of `v` (`unknown` stands for NULL when the SQL path coalesces it).
    fn code(&mut self, v: ValueRef<'_>, coalesce: bool) -> Result<u16, BuildError> {
        match v {
            ValueRef::Integer(i) => match self.ints.get(&i) {
                Some(&c) => Ok(c),
                None => {
                    let c = self.next_code(Value::Integer(i))?;
                    self.ints.insert(i, c);
                    Ok(c)
                }
            },
            ValueRef::Text(t) => {
                let t = std::str::from_utf8(t).map_err(|_| BuildError::Unsupported(self.name))?;
                self.text_code(t)
            }
            ValueRef::Null if coalesce => self.text_code(vrs_core::query::UNKNOWN),
            ValueRef::Null => match self.null {
                Some(c) => Ok(c),
                None => {
                    let c = self.next_code(Value::Null)?;
                    self.null = Some(c);
                    Ok(c)
                }
            },
            ValueRef::Real(_) | ValueRef::Blob(_) => Err(BuildError::Unsupported(self.name)),
        }
    }

    fn text_code(&mut self, t: &str) -> Result<u16, BuildError> {
        match self.texts.get(t) {
            Some(&c) => Ok(c),
            None => {
                let c = self.next_code(Value::Text(t.to_string()))?;
                self.texts.insert(t.to_string(), c);
                Ok(c)
            }
        }
    }

    fn push(&mut self, v: ValueRef<'_>, coalesce: bool) -> Result<(), BuildError> {
        let c = self.code(v, coalesce)?;
        self.column.codes.push(c);
        Ok(())
    }

    fn finish(self) -> Column {
        self.column
    }
}

/// The incident table's counted fields, one entry per stored row (incidents and statistics
/// rows), in `id` order.
#[derive(Debug, Default)]
pub(crate) struct Incidents {
    pub month: Column,
    pub quarter: Column,
    pub year: Column,
    pub origin: Column,
    pub destination: Column,
    /// `origin || '>' || destination`.
    pub route: Column,
    /// `COALESCE(corridor, 'unknown')`, likewise mode and place type.
    pub corridor: Column,
    pub mode: Column,
    pub place_type: Column,
    /// 0 for an incident, 1 for a statistics row.
    pub kind: Vec<u8>,
    pub dead: Vec<u32>,
    pub missing: Vec<u32>,
    pub record_key: Vec<u32>,
}

/// The migrant groups, in `(incident_id, seq)` order: the groups of one incident are adjacent.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// Row of the group's incident in [`Incidents`].
    pub incident: Vec<u32>,
    pub citizenship: Column,
    pub sex: Column,
    pub age_group: Column,
    pub count: Vec<u32>,
    pub record_key: Vec<u32>,
}

/// Everything the column engine reads.
#[derive(Debug, Default)]
pub(crate) struct Projection {
    pub incidents: Incidents,
    pub groups: Groups,
}

impl Projection {
    /// Bytes held (for the log line of a build).
    pub fn heap_bytes(&self) -> usize {
        let col = |c: &Column| c.codes.len() * 2 + c.dict.len() * 32;
        let i = &self.incidents;
        let g = &self.groups;
        [
            &i.month,
            &i.quarter,
            &i.year,
            &i.origin,
            &i.destination,
            &i.route,
            &i.corridor,
            &i.mode,
            &i.place_type,
            &g.citizenship,
            &g.sex,
            &g.age_group,
        ]
        .into_iter()
        .map(col)
        .sum::<usize>()
            + i.kind.len()
            + 4 * (i.dead.len() + i.missing.len() + i.record_key.len())
            + 4 * (g.incident.len() + g.count.len() + g.record_key.len())
    }
}

fn as_u32(v: ValueRef<'_>, what: &'static str) -> Result<u32, BuildError> {
    match v {
        ValueRef::Integer(i) => u32::try_from(i).map_err(|_| BuildError::Unsupported(what)),
        _ => Err(BuildError::Unsupported(what)),
    }
}

/// Reads the projection through `conn`. The caller holds a read transaction, so that the
/// projection is one snapshot of the store.
pub(crate) fn build(conn: &Connection) -> Result<Projection, BuildError> {
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM incident", [], |r| r.get(0))?;
    let rows = usize::try_from(rows).unwrap_or(0);
    let mut ids: Vec<i64> = Vec::with_capacity(rows);
    let mut month = ColumnBuilder::new("month", rows);
    let mut quarter = ColumnBuilder::new("quarter", rows);
    let mut year = ColumnBuilder::new("year", rows);
    let mut origin = ColumnBuilder::new("origin", rows);
    let mut destination = ColumnBuilder::new("destination", rows);
    let mut route = ColumnBuilder::new("route", rows);
    let mut corridor = ColumnBuilder::new("corridor", rows);
    let mut mode = ColumnBuilder::new("mode", rows);
    let mut place_type = ColumnBuilder::new("place_type", rows);
    let mut kind = Vec::with_capacity(rows);
    let mut dead = Vec::with_capacity(rows);
    let mut missing = Vec::with_capacity(rows);
    let mut record_key = Vec::with_capacity(rows);
    // A route's code from the codes of its two ends: the string is made once per pair.
    let mut routes: HashMap<(u16, u16), u16> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT id, month, quarter, year, origin, destination, corridor, mode, place_type, kind,
                dead, missing, record_key
         FROM incident ORDER BY id",
    )?;
    let mut it = stmt.query([])?;
    while let Some(r) = it.next()? {
        ids.push(r.get(0)?);
        let m = r.get_ref(1)?;
        // Year and quarter may be computed from the month (the month index path): that needs
        // integer months, as the schema declares.
        if !matches!(m, ValueRef::Integer(_)) {
            return Err(BuildError::Unsupported("month"));
        }
        month.push(m, false)?;
        quarter.push(r.get_ref(2)?, false)?;
        year.push(r.get_ref(3)?, false)?;
        let (o, d) = (r.get_ref(4)?, r.get_ref(5)?);
        let (oc, dc) = (origin.code(o, false)?, destination.code(d, false)?);
        origin.column.codes.push(oc);
        destination.column.codes.push(dc);
        let rc = match routes.get(&(oc, dc)) {
            Some(&c) => c,
            None => {
                let c = match (o, d) {
                    (ValueRef::Text(a), ValueRef::Text(b)) => {
                        let a = std::str::from_utf8(a)
                            .map_err(|_| BuildError::Unsupported("origin"))?;
                        let b = std::str::from_utf8(b)
                            .map_err(|_| BuildError::Unsupported("destination"))?;
                        route.text_code(&format!("{a}>{b}"))?
                    }
                    _ => return Err(BuildError::Unsupported("route")),
                };
                routes.insert((oc, dc), c);
                c
            }
        };
        route.column.codes.push(rc);
        corridor.push(r.get_ref(6)?, true)?;
        mode.push(r.get_ref(7)?, true)?;
        place_type.push(r.get_ref(8)?, true)?;
        kind.push(
            u8::try_from(as_u32(r.get_ref(9)?, "kind")?)
                .map_err(|_| BuildError::Unsupported("kind"))?,
        );
        dead.push(as_u32(r.get_ref(10)?, "dead")?);
        missing.push(as_u32(r.get_ref(11)?, "missing")?);
        record_key.push(as_u32(r.get_ref(12)?, "record_key")?);
    }
    drop(it);
    drop(stmt);

    let groups_n: i64 = conn.query_row("SELECT COUNT(*) FROM migrant_group", [], |r| r.get(0))?;
    let groups_n = usize::try_from(groups_n).unwrap_or(0);
    let mut incident = Vec::with_capacity(groups_n);
    let mut citizenship = ColumnBuilder::new("citizenship", groups_n);
    let mut sex = ColumnBuilder::new("sex", groups_n);
    let mut age_group = ColumnBuilder::new("age_group", groups_n);
    let mut count = Vec::with_capacity(groups_n);
    let mut group_key = Vec::with_capacity(groups_n);
    let mut stmt = conn.prepare(
        "SELECT incident_id, citizenship, sex, age_group, count, record_key
         FROM migrant_group ORDER BY incident_id, seq",
    )?;
    let mut it = stmt.query([])?;
    // Both scans are in incident order: a merge finds each group's incident row.
    let mut at = 0usize;
    while let Some(r) = it.next()? {
        let id: i64 = r.get(0)?;
        while at < ids.len() && ids[at] < id {
            at += 1;
        }
        if ids.get(at) != Some(&id) {
            return Err(BuildError::Unsupported("migrant_group.incident_id"));
        }
        incident.push(u32::try_from(at).map_err(|_| BuildError::Unsupported("incident rows"))?);
        citizenship.push(r.get_ref(1)?, false)?;
        sex.push(r.get_ref(2)?, false)?;
        age_group.push(r.get_ref(3)?, false)?;
        count.push(as_u32(r.get_ref(4)?, "count")?);
        group_key.push(as_u32(r.get_ref(5)?, "record_key")?);
    }
    Ok(Projection {
        incidents: Incidents {
            month: month.finish(),
            quarter: quarter.finish(),
            year: year.finish(),
            origin: origin.finish(),
            destination: destination.finish(),
            route: route.finish(),
            corridor: corridor.finish(),
            mode: mode.finish(),
            place_type: place_type.finish(),
            kind,
            dead,
            missing,
            record_key,
        },
        groups: Groups {
            incident,
            citizenship: citizenship.finish(),
            sex: sex.finish(),
            age_group: age_group.finish(),
            count,
            record_key: group_key,
        },
    })
}
