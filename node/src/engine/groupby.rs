//! Group-by over dictionary codes: one pass over the unit's rows per grouping set.
//!
//! A cell is a mixed-radix number over the grouped dimensions' codes, so a row's cell is a sum of
//! table look-ups (`lut[code]`, the code already multiplied by its stride) and filters are
//! boolean tables over codes. Cells are gathered in a dense array when the cross product of the
//! dictionaries is small, in a hash map otherwise. The counting rules are those of the SQL path
//! in [`crate::query`], for the shapes [`covers`] admits; the equivalence test in
//! `engine/tests.rs` holds the two paths to the same cells.

use foldhash::{HashMap, HashMapExt};
use rusqlite::types::Value;
use vrs_core::answer::MARGIN;
use vrs_core::query::{Dimension, Query, Unit};

use super::columns::{Column, Projection};
use crate::disclosure::ExactCell;
use crate::query::{Restriction, display_value, month_span, storage_value};

/// Which rows a column is indexed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Incident,
    Group,
}

/// Whether the column engine answers `query` (otherwise the SQL path does): units counted on
/// incident rows or migrant groups, grouped and filtered by single-valued fields of those rows.
/// Multi-valued dimensions (transit, method, an incident's migrant profile), smugglers and fees
/// go to SQL.
pub(crate) fn covers(query: &Query) -> bool {
    let unit = query.unit();
    let own = |d: Dimension| {
        matches!(
            d,
            Dimension::Year
                | Dimension::Quarter
                | Dimension::Month
                | Dimension::Origin
                | Dimension::Destination
                | Dimension::Route
                | Dimension::Corridor
                | Dimension::Mode
                | Dimension::PlaceType
        ) || (unit == Unit::Migrants
            && matches!(
                d,
                Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup
            ))
    };
    matches!(
        unit,
        Unit::Incidents | Unit::Deaths | Unit::Missing | Unit::Migrants
    ) && query.group_by().iter().all(|d| own(*d))
        && query.filters().iter().all(|f| own(f.dimension()))
}

/// A dimension as the engine reads it: a column, and a map from its codes to the codes of the
/// values grouped (the identity, or a year or quarter computed from the month).
struct View<'a> {
    side: Side,
    codes: &'a [u16],
    map: Vec<u32>,
    dict: Vec<Value>,
}

impl<'a> View<'a> {
    fn identity(side: Side, c: &'a Column) -> Self {
        View {
            side,
            codes: &c.codes,
            map: (0..c.dict.len() as u32).collect(),
            dict: c.dict.clone(),
        }
    }

    /// The month column seen through `f` (SQL's expression over `i.month`), its results interned.
    fn of_month(c: &'a Column, f: impl Fn(i64) -> i64) -> Self {
        let mut dict: Vec<Value> = Vec::new();
        let mut map = Vec::with_capacity(c.dict.len());
        for v in &c.dict {
            let derived = match v {
                Value::Integer(m) => Value::Integer(f(*m)),
                other => other.clone(),
            };
            let code = match dict.iter().position(|d| *d == derived) {
                Some(p) => p,
                None => {
                    dict.push(derived);
                    dict.len() - 1
                }
            };
            map.push(code as u32);
        }
        View {
            side: Side::Incident,
            codes: &c.codes,
            map,
            dict,
        }
    }
}

/// The view of `d` when counting `unit`; `index_only` as in the SQL path (year and quarter then
/// come from the month, as SQL computes them reading only the month index).
fn view<'a>(p: &'a Projection, d: Dimension, unit: Unit, index_only: bool) -> View<'a> {
    let i = &p.incidents;
    let g = &p.groups;
    let inc = |c: &'a Column| View::identity(Side::Incident, c);
    match d {
        Dimension::Year if index_only => View::of_month(&i.month, |m| m / 100),
        Dimension::Quarter if index_only => {
            View::of_month(&i.month, |m| m / 100 * 10 + (m % 100 + 2) / 3)
        }
        Dimension::Year => inc(&i.year),
        Dimension::Quarter => inc(&i.quarter),
        Dimension::Month => inc(&i.month),
        Dimension::Origin => inc(&i.origin),
        Dimension::Destination => inc(&i.destination),
        Dimension::Route => inc(&i.route),
        Dimension::Corridor => inc(&i.corridor),
        Dimension::Mode => inc(&i.mode),
        Dimension::PlaceType => inc(&i.place_type),
        Dimension::Citizenship if unit == Unit::Migrants => {
            View::identity(Side::Group, &g.citizenship)
        }
        Dimension::Sex if unit == Unit::Migrants => View::identity(Side::Group, &g.sex),
        Dimension::AgeGroup if unit == Unit::Migrants => View::identity(Side::Group, &g.age_group),
        // `covers` admits no other dimension: an empty view groups nothing and passes no row.
        _ => View {
            side: Side::Incident,
            codes: &[],
            map: Vec::new(),
            dict: Vec::new(),
        },
    }
}

/// A grouped dimension: `lut[code]` is the code's contribution to the cell number.
struct Grouped<'a> {
    side: Side,
    codes: &'a [u16],
    lut: Vec<usize>,
}

/// A filter: rows whose code maps to `false` are left out.
struct Kept<'a> {
    side: Side,
    codes: &'a [u16],
    keep: Vec<bool>,
}

/// Cells of a record unit: rows and the sum of their keys.
#[derive(Clone, Copy, Default)]
struct Count {
    rows: u64,
    key: u64,
}

/// Cells of a magnitude unit, gathered per contributing incident.
#[derive(Clone, Copy, Default)]
struct Magnitude {
    touched: bool,
    value: i64,
    contributors: u64,
    largest: [i64; 2],
    key: u64,
}

impl Magnitude {
    /// Adds one incident's contribution (its value and key sums in this cell).
    fn add(&mut self, v: i64, key: u64) {
        self.touched = true;
        self.value += v;
        self.contributors += 1;
        self.key = self.key.wrapping_add(key);
        if v > self.largest[0] {
            self.largest = [v, self.largest[0]];
        } else if v > self.largest[1] {
            self.largest[1] = v;
        }
    }
}

/// Cells gathered densely (small cross products) or sparsely.
enum Cells<T> {
    Dense(Vec<T>),
    Sparse(HashMap<usize, T>),
}

/// Cross products up to this many cells are gathered in an array (4 MiB of counts at most).
const DENSE_CELLS: usize = 1 << 18;

impl<T: Default + Clone> Cells<T> {
    fn new(cells: usize) -> Self {
        if cells <= DENSE_CELLS {
            Cells::Dense(vec![T::default(); cells])
        } else {
            Cells::Sparse(HashMap::new())
        }
    }

    #[inline]
    fn at(&mut self, cell: usize) -> &mut T {
        match self {
            Cells::Dense(v) => &mut v[cell],
            Cells::Sparse(m) => m.entry(cell).or_default(),
        }
    }

    /// Every gathered cell in cell order, `keep` deciding which are listed.
    fn into_sorted(self, keep: impl Fn(&T) -> bool) -> Vec<(usize, T)> {
        match self {
            Cells::Dense(v) => v.into_iter().enumerate().filter(|(_, t)| keep(t)).collect(),
            Cells::Sparse(m) => {
                let mut v: Vec<(usize, T)> = m.into_iter().filter(|(_, t)| keep(t)).collect();
                v.sort_unstable_by_key(|(c, _)| *c);
                v
            }
        }
    }
}

/// Runs one grouping set of `query` (`mask` as in the SQL path: true for a grouped dimension,
/// false for a margin) over the projection and appends its cells to `out`.
pub(crate) fn grouping(
    p: &Projection,
    query: &Query,
    mask: &[bool],
    restriction: &Restriction,
    out: &mut Vec<ExactCell>,
) {
    let unit = query.unit();
    let is_period =
        |d: Dimension| matches!(d, Dimension::Year | Dimension::Quarter | Dimension::Month);
    let all = query.group_by();
    let dims: Vec<Dimension> = all
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|(d, _)| *d)
        .collect();
    let index_only = matches!(unit, Unit::Incidents | Unit::Deaths | Unit::Missing)
        && dims.iter().all(|d| is_period(*d))
        && query.filters().iter().all(|f| is_period(f.dimension()));

    // Grouped dimensions, the last varying fastest.
    let views: Vec<View<'_>> = dims.iter().map(|d| view(p, *d, unit, index_only)).collect();
    let mut stride = 1usize;
    let mut strides = vec![0usize; views.len()];
    for (n, v) in views.iter().enumerate().rev() {
        strides[n] = stride;
        stride = stride.saturating_mul(v.dict.len().max(1));
    }
    let cells_n = stride;
    let grouped: Vec<Grouped<'_>> = views
        .iter()
        .zip(&strides)
        .map(|(v, s)| Grouped {
            side: v.side,
            codes: v.codes,
            lut: v.map.iter().map(|c| *c as usize * s).collect(),
        })
        .collect();

    // Filters, each a table over its column's codes: the listed values, and for period values
    // the span of months they cover (as the SQL path adds for the month index).
    let mut kept: Vec<Kept<'_>> = Vec::new();
    let mut months: Vec<(i64, i64)> = Vec::new();
    for f in query.filters() {
        let v = view(p, f.dimension(), unit, index_only);
        let wanted: Vec<Value> = f.values().iter().map(storage_value).collect();
        let allowed: Vec<bool> = v.dict.iter().map(|x| wanted.contains(x)).collect();
        kept.push(Kept {
            side: v.side,
            codes: v.codes,
            keep: v.map.iter().map(|c| allowed[*c as usize]).collect(),
        });
        if let Some(span) = month_span(f.values()) {
            months.push(span);
        }
    }
    if let Some(f) = query.from() {
        months.push((f.to_int(), i64::MAX));
    }
    if let Some(t) = query.to() {
        months.push((i64::MIN, t.to_int()));
    }
    if let Some((first, last)) = restriction.months {
        months.push((first.to_int(), last.to_int()));
    }
    if !months.is_empty() {
        let month = &p.incidents.month;
        kept.push(Kept {
            side: Side::Incident,
            codes: &month.codes,
            keep: month
                .dict
                .iter()
                .map(|v| match v {
                    Value::Integer(m) => months.iter().all(|(lo, hi)| lo <= m && m <= hi),
                    _ => false,
                })
                .collect(),
        });
    }

    let key_of = |cell: usize| -> Vec<String> {
        let mut key = Vec::with_capacity(all.len());
        let mut n = 0;
        for (d, on) in all.iter().zip(mask) {
            if *on {
                let code = (cell / strides[n]) % views[n].dict.len().max(1);
                key.push(display_value(*d, &views[n].dict[code]));
                n += 1;
            } else {
                key.push(MARGIN.to_string());
            }
        }
        key
    };

    let inc = &p.incidents;
    // The cell of a row (`i` its incident row, `g` its group row), or None when filtered out.
    let cell_of = |i: usize, g: usize| -> Option<usize> {
        for k in &kept {
            let r = if k.side == Side::Incident { i } else { g };
            if !k.keep[k.codes[r] as usize] {
                return None;
            }
        }
        let mut cell = 0;
        for d in &grouped {
            let r = if d.side == Side::Incident { i } else { g };
            cell += d.lut[d.codes[r] as usize];
        }
        Some(cell)
    };

    match unit {
        Unit::Incidents => {
            let mut cells: Cells<Count> = Cells::new(cells_n);
            for i in 0..inc.kind.len() {
                // Statistics rows are people, not incidents.
                if inc.kind[i] != 0 {
                    continue;
                }
                if let Some(c) = cell_of(i, 0) {
                    let cell = cells.at(c);
                    cell.rows += 1;
                    cell.key = cell.key.wrapping_add(u64::from(inc.record_key[i]));
                }
            }
            out.extend(
                cells
                    .into_sorted(|c| c.rows > 0)
                    .into_iter()
                    .map(|(c, t)| ExactCell {
                        key: key_of(c),
                        value: t.rows as i64,
                        contributors: t.rows,
                        largest: [1, i64::from(t.rows > 1)],
                        cell_key: t.key,
                    }),
            );
        }
        Unit::Deaths | Unit::Missing => {
            let values = if unit == Unit::Deaths {
                &inc.dead
            } else {
                &inc.missing
            };
            let mut cells: Cells<Magnitude> = Cells::new(cells_n);
            for (i, v) in values.iter().enumerate() {
                if *v == 0 {
                    continue;
                }
                if let Some(c) = cell_of(i, 0) {
                    cells.at(c).add(i64::from(*v), u64::from(inc.record_key[i]));
                }
            }
            out.extend(finish_magnitude(cells, key_of));
        }
        Unit::Migrants => {
            let g = &p.groups;
            let mut cells: Cells<Magnitude> = Cells::new(cells_n);
            // One incident's groups are adjacent: sum them per cell, then add each of its cells
            // once (the SQL path groups by cell and incident).
            let mut run: Vec<(usize, i64, u64)> = Vec::new();
            let mut current = u32::MAX;
            let flush = |run: &mut Vec<(usize, i64, u64)>, cells: &mut Cells<Magnitude>| {
                for (c, v, k) in run.drain(..) {
                    cells.at(c).add(v, k);
                }
            };
            for r in 0..g.incident.len() {
                let i = g.incident[r];
                if i != current {
                    flush(&mut run, &mut cells);
                    current = i;
                }
                if let Some(c) = cell_of(i as usize, r) {
                    let (v, k) = (i64::from(g.count[r]), u64::from(g.record_key[r]));
                    match run.iter_mut().find(|(rc, _, _)| *rc == c) {
                        Some(e) => {
                            e.1 += v;
                            e.2 += k;
                        }
                        None => run.push((c, v, k)),
                    }
                }
            }
            flush(&mut run, &mut cells);
            out.extend(finish_magnitude(cells, key_of));
        }
        // Not admitted by `covers`.
        Unit::Smugglers | Unit::Fees => {}
    }
}

fn finish_magnitude(
    cells: Cells<Magnitude>,
    key_of: impl Fn(usize) -> Vec<String>,
) -> impl Iterator<Item = ExactCell> {
    cells
        .into_sorted(|m| m.touched && m.value > 0)
        .into_iter()
        .map(move |(c, m)| ExactCell {
            key: key_of(c),
            value: m.value,
            contributors: m.contributors,
            largest: m.largest,
            cell_key: m.key,
        })
}
