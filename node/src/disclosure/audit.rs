//! The interval auditor: how far an attacker can narrow each suppressed cell.
//!
//! Input: one released [`Answer`] and, per dimension, whether its margin is the sum of its cells.
//! For every suppressed cell, [`audit_intervals`] computes the tightest interval `[lo, hi]` that
//! the true value can take given:
//!
//! - every released value, **taken as exact** (the attacker ignores the noise). With
//!   [`audit_with_exact`] the released cells' *exact* values are used instead: the strongest
//!   attacker, and the audit that secondary suppression guarantees;
//! - every listed cell is at least 1, and every unlisted cell is exactly 0 (absence means zero);
//! - the table's relations: along an additive dimension a margin equals the sum of its cells;
//!   along a multi-valued one (method, transit…) a margin is at least each of its cells, and
//!   nothing more: a record may have several values there or none at all (an incident without a
//!   transit country is in the margin and in no cell), so the margin can be above or below the sum;
//! - values are integers (the LP bounds are rounded inwards).
//!
//! The bounds are linear programs (minimise, then maximise, the cell), solved with `microlp`,
//! one pair per suppressed cell, on each connected group of suppressed cells separately. Interval
//! propagation would be faster but gives bounds that are too wide, and too-wide bounds would
//! wrongly pass a table.
//!
//! Perturbation and rounding can make the released values inconsistent (a released margin that
//! is not the sum of its released cells). Such a table has no exact reading, so
//! [`audit_intervals`] takes the attacker's *closest* one: every relation gets a correction term,
//! the smallest total correction is found first (an LP), and the bounds are then taken over every
//! reading with that smallest total correction. When the released values are consistent the
//! correction is zero and this is exactly the classical audit. When they are not, the bounds can
//! be wider than what an attacker who trusts only some lines would get (the correction may land
//! on any line), which is why secondary suppression is driven by [`audit_with_exact`] (always
//! consistent, and never wider than what the noisy release allows) and checked with both.
//!
//! On two-way tables with additive margins the LP bounds are the exact integer bounds (the
//! constraint matrix is totally unimodular; a property test checks this against brute force).
//! On three-way tables and multi-valued dimensions the LP can be wider than the integer bounds,
//! as in τ-ARGUS's audit: an attacker would need integer programming to do better.
//! A solver failure is reported as an unknown interval, which callers treat as unprotected.

use std::collections::HashMap;

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, Variable};
use serde::{Deserialize, Serialize};
use vrs_core::answer::{Answer, Cell, CellValue, MARGIN};

use super::ExactTable;

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

/// Audits a released answer, as anyone holding it can. `additive[d]` says whether the margin
/// over dimension `d` is the sum of its cells; a missing entry counts as additive (the stronger
/// relation). Cells whose key has the wrong number of parts, or repeats an earlier key, are
/// ignored.
pub fn audit_intervals(answer: &Answer, additive: &[bool]) -> Audit {
    audit_with(answer, additive, |cell| cell.value.released())
}

/// Audits a released answer against the strongest attacker: one who knows the **exact** value of
/// every cell the answer releases (taken from `table`), and only that. This is the audit that
/// secondary suppression guarantees; the noisy released values give an attacker less.
pub fn audit_with_exact(table: &ExactTable, answer: &Answer) -> Audit {
    let exact: HashMap<&[String], i64> = table
        .cells
        .iter()
        .map(|c| (c.key.as_slice(), c.value))
        .collect();
    audit_with(answer, &table.additive, |cell| match cell.value {
        CellValue::Released(_) => exact
            .get(cell.key.as_slice())
            .map(|v| u64::try_from(*v).unwrap_or(0)),
        CellValue::Noisy(_) | CellValue::Suppressed(_) => None,
    })
}

fn audit_with(
    answer: &Answer,
    additive: &[bool],
    known_of: impl Fn(&Cell) -> Option<u64>,
) -> Audit {
    let arity = answer.dimensions.len();
    let mut seen = HashMap::new();
    let mut keys: Vec<&[String]> = Vec::new();
    let mut known: Vec<Option<u64>> = Vec::new();
    let mut listed: Vec<bool> = Vec::new();
    for cell in &answer.cells {
        if cell.key.len() != arity || seen.insert(cell.key.as_slice(), ()).is_some() {
            continue;
        }
        keys.push(&cell.key);
        known.push(known_of(cell));
        listed.push(cell.value.released().is_none());
    }
    let structure = Structure::new(&keys, additive);
    let found = intervals(&structure, &known);
    let cells = keys
        .iter()
        .zip(&found.bounds)
        .zip(&listed)
        .filter(|(_, suppressed)| **suppressed)
        .map(|((key, bound), _)| AuditedCell {
            key: key.to_vec(),
            interval: match bound {
                Bound::Interval(i) => Some(*i),
                _ => None,
            },
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
    /// Equality (sum) rather than cover (`max ≤ margin`).
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
    intervals_memo(
        structure,
        known,
        None,
        Hints::default(),
        &mut Memo::default(),
    )
}

/// Most LPs one release (or one public audit) may solve. Counted, not timed, so that the same
/// table always gets the same answer; past it, unsolved cells are reported as failed (and a
/// release then suppresses everything). A 20×20 table with margins needs about 1 500.
pub(crate) const LP_BUDGET: usize = 20_000;

/// Solved groups, by their exact content, so that repeated audits of a table that changes in
/// one place (secondary suppression) solve only the groups that changed; and the LP budget.
#[derive(Debug)]
pub(crate) struct Memo {
    groups: HashMap<Vec<u64>, Option<(Vec<Bound>, f64)>>,
    lps_left: usize,
}

impl Default for Memo {
    fn default() -> Self {
        Memo::with_budget(LP_BUDGET)
    }
}

impl Memo {
    /// A memo that may solve at most `lps` LPs.
    pub fn with_budget(lps: usize) -> Memo {
        Memo {
            groups: HashMap::new(),
            lps_left: lps,
        }
    }

    /// Whether the LP budget is spent.
    pub fn exhausted(&self) -> bool {
        self.lps_left == 0
    }
}

/// The content of a group (and the width asked for), as one key.
fn signature(cells: &[usize], rows: &[&Row], width: Option<u64>) -> Vec<u64> {
    let mut key = Vec::with_capacity(3 + cells.len() + rows.len() * 6);
    key.push(width.map_or(0, |w| w.saturating_add(1)));
    key.push(cells.len() as u64);
    key.extend(cells.iter().map(|&c| c as u64));
    for row in rows {
        key.push(row.terms.len() as u64 * 2 + u64::from(row.equal));
        key.push(row.rhs.to_bits());
        for &(cell, coeff) in &row.terms {
            key.push(cell as u64);
            key.push(coeff.to_bits());
        }
    }
    key
}

/// Suppressed cells that are the only suppressed cell of an additive relation: with consistent
/// released values each of them is recomputed exactly by one subtraction (no LP needed).
pub(crate) fn pinned(structure: &Structure, known: &[Option<u64>]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for rel in structure.relations.iter().filter(|r| r.additive) {
        let mut hidden = rel
            .members()
            .filter(|&m| known.get(m).is_some_and(Option::is_none));
        if let (Some(only), None) = (hidden.next(), hidden.next()) {
            out.push(only);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// As [`intervals`], reusing groups already solved in `memo`. With `width`, a cell's bound may
/// be only the part of its feasible interval needed to show it is at least `width` wide (see
/// [`solve_group`]); cells narrower than that get their exact bounds.
pub(crate) fn intervals_memo(
    structure: &Structure,
    known: &[Option<u64>],
    width: Option<u64>,
    hints: Hints<'_>,
    memo: &mut Memo,
) -> Intervals {
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
        if rel.additive {
            let total: Vec<(usize, f64)> = std::iter::once((rel.margin, 1.0))
                .chain(rel.parts.iter().map(|&p| (p, -1.0)))
                .collect();
            push(total, true);
        } else {
            // Not `margin ≤ sum`: records without a value of the dimension are in the margin only.
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
        let Memo { groups, lps_left } = &mut *memo;
        let solved = groups
            .entry(signature(cells, &group_rows, width))
            .or_insert_with(|| solve_group(cells, &group_rows, width, hints, lps_left));
        match solved.clone() {
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

/// A row over a group's own variables (indices into the group's cells).
struct LocalRow {
    terms: Vec<(usize, f64)>,
    equal: bool,
    rhs: f64,
}

/// What an LP optimises.
#[derive(Clone, Copy)]
enum Goal {
    /// The smallest total correction.
    Correction,
    /// One cell (index into the group), down or up.
    Cell(usize, OptimizationDirection),
    /// The sum of all cells, each capped at the given value (any point found is still feasible
    /// without the cap): one LP that moves many cells at once.
    Sum(f64, OptimizationDirection),
}

/// Builds the LP for one group: cells `x ≥ 1`, each row with its correction variables;
/// `budget` caps the total correction (`None`: no correction variables at all).
/// Returns the problem and the variable of each cell.
fn build(
    size: usize,
    rows: &[LocalRow],
    goal: Goal,
    budget: Option<f64>,
) -> (Problem, Vec<Variable>) {
    let direction = match goal {
        Goal::Correction => OptimizationDirection::Minimize,
        Goal::Cell(_, d) | Goal::Sum(_, d) => d,
    };
    let mut problem = Problem::new(direction);
    let vars: Vec<Variable> = (0..size)
        .map(|i| match goal {
            Goal::Correction => problem.add_var(0.0, (1.0, f64::INFINITY)),
            Goal::Cell(target, _) => {
                problem.add_var(if target == i { 1.0 } else { 0.0 }, (1.0, f64::INFINITY))
            }
            Goal::Sum(cap, _) => problem.add_var(1.0, (1.0, cap)),
        })
        .collect();
    let objective = match goal {
        Goal::Correction => None,
        _ => Some(()),
    };
    let correction_cost = if objective.is_none() { 1.0 } else { 0.0 };
    let corrected = budget.is_some() || objective.is_none();
    let mut corrections = LinearExpr::empty();
    for row in rows {
        let mut expr = LinearExpr::empty();
        for &(i, coeff) in &row.terms {
            if let Some(v) = vars.get(i) {
                expr.add(*v, coeff);
            }
        }
        if corrected {
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
    (problem, vars)
}

/// The result of one LP: its optimum and the optimal point (one value per cell).
enum Solved {
    At(f64, Vec<f64>),
    Unbounded,
    Failed,
}

/// Solves one LP, if the budget allows. A panic inside the solver (a third-party crate) is
/// caught and reported as a failure, like any other solver error.
fn solve(problem: &Problem, vars: &[Variable], lps_left: &mut usize) -> Solved {
    if *lps_left == 0 {
        return Solved::Failed;
    }
    *lps_left -= 1;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| problem.solve()));
    let Ok(outcome) = outcome else {
        return Solved::Failed;
    };
    match outcome {
        Ok(outcome) => match outcome.into_solution() {
            Ok(s) if s.objective().is_finite() => {
                let point = vars.iter().map(|v| s.var_value(*v)).collect();
                Solved::At(s.objective(), point)
            }
            _ => Solved::Failed,
        },
        Err(microlp::Error::Unbounded) => Solved::Unbounded,
        Err(_) => Solved::Failed,
    }
}

/// An LP lower bound as a count: rounded up (values are integers), with float slack.
fn lower_count(x: f64) -> u64 {
    to_count((x - EPS * (1.0 + x.abs())).ceil()).max(1)
}

/// An LP upper bound as a count: rounded down, with float slack.
fn upper_count(x: f64) -> u64 {
    to_count((x + EPS * (1.0 + x.abs())).floor())
}

/// What the caller already knows about a table, to save LPs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hints<'a> {
    /// A point believed feasible, one value per cell (the exact values). It is checked before
    /// use; when it is feasible the smallest correction is known to be zero.
    pub start: Option<&'a [u64]>,
    /// Per cell, a bound certified earlier that is still valid because the feasible set has
    /// only grown since (more cells suppressed, values consistent). Used with a width only.
    pub settled: Option<&'a [Option<FeasibleInterval>]>,
}

/// Whether `point` meets every row (and every cell is at least 1), up to float slack.
fn feasible(rows: &[LocalRow], point: &[f64]) -> bool {
    let tolerance = |x: f64| 1e-9 * (1.0 + x.abs());
    point.iter().all(|&x| x >= 1.0)
        && rows.iter().all(|row| {
            let lhs: f64 = row
                .terms
                .iter()
                .map(|&(i, c)| c * point.get(i).copied().unwrap_or(f64::NAN))
                .sum();
            if row.equal {
                (lhs - row.rhs).abs() <= tolerance(row.rhs)
            } else {
                lhs <= row.rhs + tolerance(row.rhs)
            }
        })
}

/// Solves one group: the smallest total correction, then each cell's bounds under it.
///
/// With `width`, a cell is settled as soon as two feasible points (from any LP solved so far)
/// show it can take values at least `width` apart; its bound is then that certified part of its
/// feasible interval, not the whole. Without `width`, every bound is exact. `None` when the
/// solver fails on the correction LP.
fn solve_group(
    cells: &[usize],
    rows: &[&Row],
    width: Option<u64>,
    hints: Hints<'_>,
    lps_left: &mut usize,
) -> Option<(Vec<Bound>, f64)> {
    if rows.is_empty() {
        let free = Bound::Interval(FeasibleInterval { lo: 1, hi: None });
        return Some((vec![free; cells.len()], 0.0));
    }
    let local: HashMap<usize, usize> = cells.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let rows: Vec<LocalRow> = rows
        .iter()
        .map(|r| LocalRow {
            terms: r
                .terms
                .iter()
                .filter_map(|(c, coeff)| local.get(c).map(|i| (*i, *coeff)))
                .collect(),
            equal: r.equal,
            rhs: r.rhs,
        })
        .collect();
    let size = cells.len();
    let settled_before: Vec<Option<FeasibleInterval>> = cells
        .iter()
        .map(|&c| match (width, hints.settled) {
            (Some(w), Some(s)) => s.get(c).copied().flatten().filter(|iv| iv.protects(w)),
            _ => None,
        })
        .collect();
    let given: Option<Vec<f64>> = hints
        .start
        .and_then(|s| cells.iter().map(|&c| s.get(c).map(|v| *v as f64)).collect())
        .filter(|p: &Vec<f64>| feasible(&rows, p));
    let (used, start) = match given {
        Some(point) => (0.0, point),
        None => {
            let (problem, vars) = build(size, &rows, Goal::Correction, None);
            let Solved::At(used, point) = solve(&problem, &vars, lps_left) else {
                return None;
            };
            (used.max(0.0), point)
        }
    };
    let budget = if used <= EPS {
        None
    } else {
        Some(used + EPS * (1.0 + used))
    };
    // The smallest and largest value of each cell seen at any feasible point so far.
    let mut seen_lo = start.clone();
    let mut seen_hi = start;
    let settled = |lo: f64, hi: f64, w: u64| upper_count(hi).saturating_sub(lower_count(lo)) >= w;
    let open = settled_before.iter().filter(|s| s.is_none()).count();
    if width.is_some() && open > 2 {
        // Two LPs that move every cell at once usually settle most of them. The cap leaves room
        // for a feasible point (all-hidden tables need margins up to the number of cells).
        let cap = 2.0 * rows.iter().map(|r| r.rhs.abs()).sum::<f64>() + 2.0 * size as f64 + 10.0;
        for direction in [
            OptimizationDirection::Maximize,
            OptimizationDirection::Minimize,
        ] {
            let (problem, vars) = build(size, &rows, Goal::Sum(cap, direction), budget);
            if let Solved::At(_, point) = solve(&problem, &vars, lps_left) {
                see(&point, &mut seen_lo, &mut seen_hi);
            }
        }
    }
    let mut out = Vec::with_capacity(size);
    for i in 0..size {
        if let Some(iv) = settled_before[i] {
            out.push(Bound::Interval(iv));
            continue;
        }
        if let Some(w) = width
            && settled(seen_lo[i], seen_hi[i], w)
        {
            out.push(Bound::Interval(FeasibleInterval {
                lo: lower_count(seen_lo[i]),
                hi: Some(upper_count(seen_hi[i])),
            }));
            continue;
        }
        let (problem, vars) = build(
            size,
            &rows,
            Goal::Cell(i, OptimizationDirection::Maximize),
            budget,
        );
        let hi = match solve(&problem, &vars, lps_left) {
            Solved::At(v, point) => {
                see(&point, &mut seen_lo, &mut seen_hi);
                Some(v)
            }
            Solved::Unbounded => None,
            Solved::Failed => {
                out.push(Bound::Failed);
                continue;
            }
        };
        if let Some(w) = width
            && hi.is_none_or(|hi| settled(seen_lo[i], hi, w))
        {
            out.push(Bound::Interval(FeasibleInterval {
                lo: lower_count(seen_lo[i]),
                hi: hi.map(upper_count),
            }));
            continue;
        }
        let (problem, vars) = build(
            size,
            &rows,
            Goal::Cell(i, OptimizationDirection::Minimize),
            budget,
        );
        out.push(match solve(&problem, &vars, lps_left) {
            Solved::At(lo, point) => {
                see(&point, &mut seen_lo, &mut seen_hi);
                let lo = lower_count(lo);
                Bound::Interval(FeasibleInterval {
                    lo,
                    hi: hi.map(|h| upper_count(h).max(lo)),
                })
            }
            _ => Bound::Failed,
        });
    }
    Some((out, used))
}

/// Widens the seen range of each cell to include `point`.
fn see(point: &[f64], lo: &mut [f64], hi: &mut [f64]) {
    for (i, &x) in point.iter().enumerate() {
        if let (Some(l), Some(h)) = (lo.get_mut(i), hi.get_mut(i)) {
            *l = l.min(x);
            *h = h.max(x);
        }
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
            privacy: None,
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
        // Method is multi-valued: total 10 incidents, cells a (suppressed) and b = 8. Only
        // a ≤ 10: incidents with no method are in the total and in no cell, so not 10 ≤ a + 8.
        let a = answer(1, &[(&["*"], Some(10)), (&["a"], None), (&["b"], Some(8))]);
        let audit = audit_intervals(&a, &[false]);
        assert_eq!(
            interval(&audit, &["a"]),
            Some(FeasibleInterval {
                lo: 1,
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
