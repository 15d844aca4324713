//! The interval auditor: how far an attacker can narrow each suppressed cell.
//!
//! Input: one released [`Answer`] and, per dimension, whether its margin is the sum of its cells.
//! For every suppressed cell, [`audit_intervals`] computes the tightest interval `[lo, hi]` that
//! the true value can take given:
//!
//! - every released value, **taken as exact** (the attacker ignores the noise: conservative,
//!   since the true values are only near the released ones);
//! - every listed cell is at least 1, and every unlisted cell is exactly 0 (absence means zero);
//! - the table's relations: along an additive dimension a margin equals the sum of its cells;
//!   along a multi-valued one (method, transit…) a margin is at most the sum of its cells and at
//!   least each of them;
//! - values are integers (the LP bounds are rounded inwards).
//!
//! The bounds are linear programs (minimise, then maximise, the cell), solved with `microlp`,
//! one pair per suppressed cell, on each connected group of suppressed cells separately. Interval
//! propagation would be faster but gives bounds that are too wide, and too-wide bounds would
//! wrongly pass a table.
//!
//! Perturbation and rounding can make the released values inconsistent (a released margin that
//! is not the sum of its released cells). Such a table has no exact reading, so the auditor takes
//! the attacker's *closest* one: every relation gets a correction term, the smallest total
//! correction is found first (an LP), and the bounds are then taken over every reading with that
//! smallest total correction. When the released values are consistent the correction is zero and
//! this is exactly the classical audit. A solver failure is reported as an unknown interval,
//! which callers treat as unprotected.

use std::collections::HashMap;

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, Variable};
use serde::{Deserialize, Serialize};
use vrs_core::answer::{Answer, CellValue, MARGIN};

/// The values an attacker cannot rule out for one suppressed cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeasibleInterval {
    /// Smallest possible value (at least 1: a listed cell is never zero).
    pub lo: u64,
    /// Largest possible value; `None` when nothing bounds it from above.
    pub hi: Option<u64>,
}

impl FeasibleInterval {
    /// `hi − lo`, or `None` when unbounded.
    pub fn width(&self) -> Option<u64> {
        self.hi.map(|hi| hi.saturating_sub(self.lo))
    }

    /// Whether the interval is at least `width` wide.
    pub fn protects(&self, width: u64) -> bool {
        self.width().is_none_or(|w| w >= width)
    }
}

/// One suppressed cell and its audited interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditedCell {
    /// The cell's key.
    pub key: Vec<String>,
    /// Its feasible interval; `None` when the solver failed (treat as unprotected).
    pub interval: Option<FeasibleInterval>,
}

impl AuditedCell {
    /// Whether the cell is provably protected to `width`.
    pub fn protected(&self, width: u64) -> bool {
        self.interval.is_some_and(|i| i.protects(width))
    }
}

/// The audit of one released answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    /// Every suppressed cell, in the answer's order.
    pub cells: Vec<AuditedCell>,
    /// The smallest total correction that makes the released values consistent with the
    /// relations (0 when they already are).
    pub correction: f64,
}

impl Audit {
    /// The suppressed cells whose interval is narrower than `width` (or unknown).
    pub fn unprotected(&self, width: u64) -> impl Iterator<Item = &AuditedCell> {
        self.cells.iter().filter(move |c| !c.protected(width))
    }
}

/// Audits a released answer. `additive[d]` says whether the margin over dimension `d` is the sum
/// of its cells; a missing entry counts as additive (the stronger relation). Cells whose key has
/// the wrong number of parts, or repeats an earlier key, are ignored.
pub fn audit_intervals(answer: &Answer, additive: &[bool]) -> Audit {
    let arity = answer.dimensions.len();
    let mut seen = HashMap::new();
    let mut keys: Vec<&[String]> = Vec::new();
    let mut known: Vec<Option<u64>> = Vec::new();
    for cell in &answer.cells {
        if cell.key.len() != arity || seen.insert(cell.key.as_slice(), ()).is_some() {
            continue;
        }
        keys.push(&cell.key);
        known.push(match cell.value {
            CellValue::Released(v) => Some(v),
            CellValue::Suppressed(_) => None,
        });
    }
    let structure = Structure::new(&keys, additive);
    let found = intervals(&structure, &known);
    let cells = keys
        .iter()
        .zip(&found.bounds)
        .filter_map(|(key, bound)| match bound {
            Bound::Known => None,
            Bound::Interval(i) => Some(AuditedCell {
                key: key.to_vec(),
                interval: Some(*i),
            }),
            Bound::Failed => Some(AuditedCell {
                key: key.to_vec(),
                interval: None,
            }),
        })
        .collect();
    Audit {
        cells,
        correction: found.correction,
    }
}

/// One relation of the table: a margin and the cells it totals along one dimension.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    /// The margin cell.
    pub margin: usize,
    /// The cells it totals (listed ones only: the others are zero).
    pub parts: Vec<usize>,
    /// Equality (sum) rather than cover (`max ≤ margin ≤ sum`).
    pub additive: bool,
}

impl Relation {
    /// The margin and the parts.
    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.margin).chain(self.parts.iter().copied())
    }
}

/// The relations among a table's listed cells.
#[derive(Debug, Clone)]
pub(crate) struct Structure {
    /// Every relation.
    pub relations: Vec<Relation>,
    /// For each cell, the relations it belongs to (as margin or part).
    pub of_cell: Vec<Vec<usize>>,
}

impl Structure {
    /// Finds the relations among `keys` (well formed: one arity, no repeats).
    pub fn new(keys: &[&[String]], additive: &[bool]) -> Structure {
        let index: HashMap<&[String], usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut relations = Vec::new();
        let mut by_margin: HashMap<(usize, usize), usize> = HashMap::new();
        for (m, key) in keys.iter().enumerate() {
            for (d, part) in key.iter().enumerate() {
                if part == MARGIN {
                    by_margin.insert((m, d), relations.len());
                    relations.push(Relation {
                        margin: m,
                        parts: Vec::new(),
                        additive: additive.get(d).copied().unwrap_or(true),
                    });
                }
            }
        }
        let mut parent: Vec<String> = Vec::new();
        for (c, key) in keys.iter().enumerate() {
            for (d, part) in key.iter().enumerate() {
                if part == MARGIN {
                    continue;
                }
                parent.clear();
                parent.extend(key.iter().cloned());
                parent[d] = MARGIN.to_string();
                if let Some(r) = index
                    .get(parent.as_slice())
                    .and_then(|m| by_margin.get(&(*m, d)))
                {
                    relations[*r].parts.push(c);
                }
            }
        }
        let mut of_cell = vec![Vec::new(); keys.len()];
        for (r, rel) in relations.iter().enumerate() {
            for m in rel.members() {
                of_cell[m].push(r);
            }
        }
        Structure { relations, of_cell }
    }
}

/// The audit outcome for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Released: not audited.
    Known,
    /// Suppressed, with its feasible interval.
    Interval(FeasibleInterval),
    /// Suppressed; the solver failed (treat as unprotected).
    Failed,
}

impl Bound {
    /// Whether the cell is suppressed and provably protected to `width`.
    pub fn protects(&self, width: u64) -> bool {
        matches!(self, Bound::Interval(i) if i.protects(width))
    }
}

/// The bounds of every cell, and the total correction used.
#[derive(Debug, Clone)]
pub(crate) struct Intervals {
    /// One per cell.
    pub bounds: Vec<Bound>,
    /// Smallest total correction making the released values consistent.
    pub correction: f64,
}

/// A linear constraint over suppressed cells, released values moved to the right-hand side.
#[derive(Debug, Clone)]
struct Row {
    terms: Vec<(usize, f64)>,
    equal: bool,
    rhs: f64,
}

/// Absolute slack when rounding LP bounds to integers, and when bounding the total correction.
const EPS: f64 = 1e-6;

/// Bounds every suppressed cell (`known[i]` is `None`) of `structure`.
pub(crate) fn intervals(structure: &Structure, known: &[Option<u64>]) -> Intervals {
    let n = known.len();
    let mut bounds: Vec<Bound> = known
        .iter()
        .map(|k| match k {
            Some(_) => Bound::Known,
            None => Bound::Interval(FeasibleInterval { lo: 1, hi: None }),
        })
        .collect();

    // Rows with at least one suppressed cell; released values become constants.
    let mut rows = Vec::new();
    let mut push = |terms: Vec<(usize, f64)>, equal: bool| {
        let mut rhs = 0.0;
        let mut free = Vec::new();
        for (cell, coeff) in terms {
            match known.get(cell).copied().flatten() {
                Some(v) => rhs -= coeff * v as f64,
                None => free.push((cell, coeff)),
            }
        }
        if !free.is_empty() {
            rows.push(Row {
                terms: free,
                equal,
                rhs,
            });
        }
    };
    for rel in &structure.relations {
        let total: Vec<(usize, f64)> = std::iter::once((rel.margin, 1.0))
            .chain(rel.parts.iter().map(|&p| (p, -1.0)))
            .collect();
        push(total, rel.additive);
        if !rel.additive {
            for &p in &rel.parts {
                push(vec![(p, 1.0), (rel.margin, -1.0)], false);
            }
        }
    }

    // Group suppressed cells that share a row (union-find); each group is solved alone.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for row in &rows {
        let first = find(&mut parent, row.terms[0].0);
        for &(cell, _) in &row.terms[1..] {
            let root = find(&mut parent, cell);
            parent[root] = first;
        }
    }
    let mut groups: HashMap<usize, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let root = find(&mut parent, row.terms[0].0);
        groups.entry(root).or_default().1.push(i);
    }
    for (i, k) in known.iter().enumerate() {
        if k.is_none() {
            let root = find(&mut parent, i);
            if let Some(g) = groups.get_mut(&root) {
                g.0.push(i);
            }
        }
    }

    let mut correction = 0.0;
    let mut roots: Vec<usize> = groups.keys().copied().collect();
    roots.sort_unstable();
    for root in roots {
        let Some((cells, row_ids)) = groups.get(&root) else {
            continue;
        };
        let group_rows: Vec<&Row> = row_ids.iter().filter_map(|&i| rows.get(i)).collect();
        match solve_group(cells, &group_rows) {
            Some((found, used)) => {
                correction += used;
                for (cell, bound) in cells.iter().zip(found) {
                    bounds[*cell] = bound;
                }
            }
            None => {
                for &cell in cells {
                    bounds[cell] = Bound::Failed;
                }
            }
        }
    }
    Intervals { bounds, correction }
}

/// Builds the LP for one group: cells `x ≥ 1`, each row with its correction variables.
/// `objective` is the cell to minimise/maximise, or `None` to minimise the total correction;
/// `budget` caps the total correction (`None`: no correction variables at all).
fn build(
    cells: &[usize],
    rows: &[&Row],
    objective: Option<(usize, OptimizationDirection)>,
    budget: Option<f64>,
) -> Problem {
    let direction = objective.map_or(OptimizationDirection::Minimize, |(_, d)| d);
    let mut problem = Problem::new(direction);
    let vars: HashMap<usize, Variable> = cells
        .iter()
        .map(|&c| {
            let coeff = match objective {
                Some((target, _)) if target == c => 1.0,
                _ => 0.0,
            };
            (c, problem.add_var(coeff, (1.0, f64::INFINITY)))
        })
        .collect();
    let correction_cost = if objective.is_none() { 1.0 } else { 0.0 };
    let mut corrections = LinearExpr::empty();
    for row in rows {
        let mut expr = LinearExpr::empty();
        for &(cell, coeff) in &row.terms {
            if let Some(v) = vars.get(&cell) {
                expr.add(*v, coeff);
            }
        }
        if budget.is_some() || objective.is_none() {
            let up = problem.add_var(correction_cost, (0.0, f64::INFINITY));
            expr.add(up, -1.0);
            corrections.add(up, 1.0);
            if row.equal {
                let down = problem.add_var(correction_cost, (0.0, f64::INFINITY));
                expr.add(down, 1.0);
                corrections.add(down, 1.0);
            }
        }
        let op = if row.equal {
            ComparisonOp::Eq
        } else {
            ComparisonOp::Le
        };
        problem.add_constraint(expr, op, row.rhs);
    }
    if let (Some(b), Some(_)) = (budget, objective) {
        problem.add_constraint(corrections, ComparisonOp::Le, b);
    }
    problem
}

/// Solves one group: the smallest total correction, then each cell's bounds under it.
/// `None` when the solver fails.
fn solve_group(cells: &[usize], rows: &[&Row]) -> Option<(Vec<Bound>, f64)> {
    if rows.is_empty() {
        let free = Bound::Interval(FeasibleInterval { lo: 1, hi: None });
        return Some((vec![free; cells.len()], 0.0));
    }
    let used = build(cells, rows, None, None)
        .solve()
        .ok()?
        .into_solution()
        .ok()?
        .objective()
        .max(0.0);
    let budget = if used <= EPS {
        None
    } else {
        Some(used + EPS * (1.0 + used))
    };
    let mut out = Vec::with_capacity(cells.len());
    for &cell in cells {
        let lo = extreme(cells, rows, cell, OptimizationDirection::Minimize, budget);
        let hi = extreme(cells, rows, cell, OptimizationDirection::Maximize, budget);
        out.push(match (lo, hi) {
            (Extreme::At(lo), Extreme::At(hi)) => {
                let lo = lo - EPS * (1.0 + lo.abs());
                let hi = hi + EPS * (1.0 + hi.abs());
                let lo = to_count(lo.ceil()).max(1);
                let hi = to_count(hi.floor()).max(lo);
                Bound::Interval(FeasibleInterval { lo, hi: Some(hi) })
            }
            (Extreme::At(lo), Extreme::Unbounded) => {
                let lo = to_count((lo - EPS * (1.0 + lo.abs())).ceil()).max(1);
                Bound::Interval(FeasibleInterval { lo, hi: None })
            }
            _ => Bound::Failed,
        });
    }
    Some((out, used))
}

/// The result of one bound LP.
enum Extreme {
    At(f64),
    Unbounded,
    Failed,
}

fn extreme(
    cells: &[usize],
    rows: &[&Row],
    cell: usize,
    direction: OptimizationDirection,
    budget: Option<f64>,
) -> Extreme {
    match build(cells, rows, Some((cell, direction)), budget).solve() {
        Ok(outcome) => match outcome.into_solution() {
            Ok(s) if s.objective().is_finite() => Extreme::At(s.objective()),
            _ => Extreme::Failed,
        },
        Err(microlp::Error::Unbounded) => Extreme::Unbounded,
        Err(_) => Extreme::Failed,
    }
}

/// A finite non-negative float as a count (saturating).
fn to_count(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_core::answer::{Cell, SuppressionReason};
    use vrs_core::query::Dimension;

    fn answer(dims: usize, cells: &[(&[&str], Option<u64>)]) -> Answer {
        Answer {
            dimensions: [Dimension::Origin, Dimension::Mode, Dimension::Sex][..dims].to_vec(),
            cells: cells
                .iter()
                .map(|(k, v)| Cell {
                    key: k.iter().map(|s| s.to_string()).collect(),
                    value: v.map_or(
                        CellValue::Suppressed(SuppressionReason::BelowThreshold),
                        CellValue::Released,
                    ),
                })
                .collect(),
        }
    }

    fn interval(audit: &Audit, key: &[&str]) -> Option<FeasibleInterval> {
        audit
            .cells
            .iter()
            .find(|c| c.key == key)
            .and_then(|c| c.interval)
    }

    #[test]
    fn one_suppressed_cell_in_a_line_is_recomputed_exactly() {
        let a = answer(1, &[(&["*"], Some(20)), (&["a"], None), (&["b"], Some(17))]);
        let audit = audit_intervals(&a, &[true]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval { lo: 3, hi: Some(3) })
        );
        assert_eq!(audit.correction, 0.0);
        assert_eq!(audit.unprotected(5).count(), 1);
    }

    #[test]
    fn two_suppressed_cells_share_the_difference() {
        let a = answer(
            1,
            &[
                (&["*"], Some(20)),
                (&["a"], None),
                (&["b"], None),
                (&["c"], Some(10)),
            ],
        );
        let audit = audit_intervals(&a, &[true]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval { lo: 1, hi: Some(9) })
        );
        assert_eq!(audit.unprotected(5).count(), 0);
        assert_eq!(audit.unprotected(9).count(), 2);
    }

    #[test]
    fn without_margins_nothing_bounds_a_suppressed_cell() {
        let a = answer(1, &[(&["a"], None), (&["b"], Some(10))]);
        let audit = audit_intervals(&a, &[true]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval { lo: 1, hi: None })
        );
    }

    #[test]
    fn the_lp_beats_interval_propagation_on_a_two_way_table() {
        // Rows a, b; columns x, y, z. Suppressed: (a,x), (a,y), (b,x), (b,y). Released:
        // (a,z)=10, (b,z)=10, row totals a=14, b=36, column totals x=12, y=18, z=20, total 50.
        // Row a: ax + ay = 4, so each of ax, ay is in [1, 3]; column y: ay + by = 18.
        let a = answer(
            2,
            &[
                (&["*", "*"], Some(50)),
                (&["*", "x"], Some(12)),
                (&["*", "y"], Some(18)),
                (&["*", "z"], Some(20)),
                (&["a", "*"], Some(14)),
                (&["a", "x"], None),
                (&["a", "y"], None),
                (&["a", "z"], Some(10)),
                (&["b", "*"], Some(36)),
                (&["b", "x"], None),
                (&["b", "y"], None),
                (&["b", "z"], Some(10)),
            ],
        );
        let audit = audit_intervals(&a, &[true, true]);
        assert_eq!(
            interval(&audit, &["a", "x"]),
            Some(FeasibleInterval { lo: 1, hi: Some(3) })
        );
        // bx = 12 − ax, so bx in [9, 11]; by = 18 − ay, in [15, 17].
        assert_eq!(
            interval(&audit, &["b", "x"]),
            Some(FeasibleInterval {
                lo: 9,
                hi: Some(11)
            })
        );
        assert_eq!(
            interval(&audit, &["b", "y"]),
            Some(FeasibleInterval {
                lo: 15,
                hi: Some(17)
            })
        );
    }

    #[test]
    fn cover_relations_bound_multi_valued_dimensions() {
        // Method is multi-valued: total 10 incidents, cells a (suppressed) and b = 8.
        // a ≤ 10 and 10 ≤ a + 8, so a in [2, 10].
        let a = answer(1, &[(&["*"], Some(10)), (&["a"], None), (&["b"], Some(8))]);
        let audit = audit_intervals(&a, &[false]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval {
                lo: 2,
                hi: Some(10)
            })
        );
        // Read as additive, the same release pins a to 2.
        let audit = audit_intervals(&a, &[true]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval { lo: 2, hi: Some(2) })
        );
    }

    #[test]
    fn inconsistent_releases_take_the_closest_reading() {
        // Noise made the released parts exceed the total: 20 < 12 + 10, with a ≥ 1.
        let a = answer(
            1,
            &[
                (&["*"], Some(20)),
                (&["a"], None),
                (&["b"], Some(12)),
                (&["c"], Some(10)),
            ],
        );
        let audit = audit_intervals(&a, &[true]);
        assert!(
            (audit.correction - 3.0).abs() < 1e-6,
            "{}",
            audit.correction
        );
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval { lo: 1, hi: Some(1) })
        );
        // Malformed keys are ignored.
        let mut bad = a.clone();
        bad.cells.push(Cell {
            key: vec!["x".into(), "y".into()],
            value: CellValue::Suppressed(SuppressionReason::Complementary),
        });
        assert_eq!(audit_intervals(&bad, &[true]).cells.len(), 1);
    }
}
