//! Secondary (complementary) suppression, driven by the interval auditor.
//!
//! After primary suppression, perturbation and rounding, the candidate answer is audited
//! ([`super::audit`]). While some suppressed cell's feasible interval is narrower than the
//! policy's `protection_width`, more cells are suppressed:
//!
//! 1. for each such cell, pick the relation (line) through it with the fewest suppressed cells
//!    that still has a released one, and suppress the released cell of that line that loses
//!    least: interior cells before margins (fewest `*` in the key), then a cell that also lies on
//!    another line with a suppressed cell (it closes a cycle, so one suppression protects both
//!    lines), then the smallest released value;
//! 2. if no line through it has a released cell, suppress every cell of every line through it;
//! 3. if that changes nothing either, suppress every released cell on any line that touches its
//!    group of linked suppressed cells;
//!
//! then audit again. Each round suppresses at least one more cell, so there are at most as many
//! rounds as cells; if the rounds run out, every cell is suppressed (a table with nothing
//! released cannot be used to recompute anything).
//!
//! The choice looks only at the candidate answer (released values and the suppression pattern),
//! never at exact values, so it reveals nothing the released values do not.

use vrs_core::answer::SuppressionReason;

use super::audit::{Bound, Structure, intervals};

/// A cell's state in the candidate answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// To be released with this value.
    Released(u64),
    /// Suppressed for this reason.
    Suppressed(SuppressionReason),
}

impl State {
    fn released(self) -> Option<u64> {
        match self {
            State::Released(v) => Some(v),
            State::Suppressed(_) => None,
        }
    }
}

/// What secondary suppression did.
#[derive(Debug, Clone)]
pub(crate) struct Protection {
    /// For each cell suppressed as complementary, the cells it was suppressed to protect.
    pub protects: Vec<Vec<usize>>,
    /// The final audit of every cell.
    pub bounds: Vec<Bound>,
    /// Whether every suppressed cell is provably protected.
    pub complete: bool,
}

/// Suppresses more cells of `states` until every suppressed cell is protected to `width`.
/// `levels[i]` is the number of margin parts of cell `i`'s key.
pub(crate) fn protect(
    structure: &Structure,
    states: &mut [State],
    levels: &[usize],
    width: u64,
) -> Protection {
    let n = states.len();
    let mut protects = vec![Vec::new(); n];
    let mut rounds = 0;
    let mut risky: Vec<usize>;
    loop {
        rounds += 1;
        let known: Vec<Option<u64>> = states.iter().map(|s| s.released()).collect();
        let found = intervals(structure, &known);
        risky = (0..n)
            .filter(|&i| known[i].is_none() && !found.bounds[i].protects(width))
            .collect();
        if risky.is_empty() {
            return Protection {
                protects,
                bounds: found.bounds,
                complete: true,
            };
        }
        if rounds > n {
            break;
        }
        risky.sort_by_key(|&i| (width_of(&found.bounds[i]), i));

        let mut changed = false;
        let mut touched = vec![false; structure.relations.len()];
        for &r in &risky {
            if structure.of_cell[r].iter().any(|&rel| touched[rel]) {
                continue;
            }
            if let Some(c) = pick(structure, states, levels, r) {
                states[c] = State::Suppressed(SuppressionReason::Complementary);
                protects[c].push(r);
                changed = true;
                for &rel in structure.of_cell[c].iter().chain(&structure.of_cell[r]) {
                    touched[rel] = true;
                }
            }
        }
        if !changed {
            // Whole lines through each unprotected cell.
            for &r in &risky {
                for &rel in &structure.of_cell[r] {
                    for m in structure.relations[rel].members() {
                        changed |= suppress(states, &mut protects, m, r);
                    }
                }
            }
        }
        if !changed {
            // Every line touching the group of linked suppressed cells.
            for &r in &risky {
                for m in group_lines(structure, states, r) {
                    changed |= suppress(states, &mut protects, m, r);
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Out of rounds, or nothing left to suppress near the unprotected cells: release nothing.
    let first = risky.first().copied().unwrap_or(0);
    for i in 0..n {
        suppress(states, &mut protects, i, first);
    }
    let found = intervals(structure, &vec![None; n]);
    let complete = (0..n).all(|i| found.bounds[i].protects(width));
    Protection {
        protects,
        bounds: found.bounds,
        complete,
    }
}

/// Sort key: narrower (and failed) first.
fn width_of(bound: &Bound) -> u64 {
    match bound {
        Bound::Interval(i) => i.width().unwrap_or(u64::MAX),
        _ => 0,
    }
}

fn suppress(
    states: &mut [State],
    protects: &mut [Vec<usize>],
    cell: usize,
    for_cell: usize,
) -> bool {
    match states.get(cell) {
        Some(State::Released(_)) => {
            states[cell] = State::Suppressed(SuppressionReason::Complementary);
            protects[cell].push(for_cell);
            true
        }
        _ => false,
    }
}

/// The released cell to suppress next for unprotected cell `r`, if any line through it has one.
fn pick(structure: &Structure, states: &[State], levels: &[usize], r: usize) -> Option<usize> {
    let suppressed_in = |rel: usize| {
        structure.relations[rel]
            .members()
            .filter(|&m| states[m].released().is_none())
            .count()
    };
    let mut lines = structure.of_cell[r].clone();
    lines.sort_by_key(|&rel| (suppressed_in(rel), rel));
    for rel in lines {
        let closes_cycle = |c: usize| {
            structure.of_cell[c].iter().any(|&other| {
                other != rel
                    && structure.relations[other]
                        .members()
                        .any(|m| m != c && states[m].released().is_none())
            })
        };
        let best = structure.relations[rel]
            .members()
            .filter_map(|c| states[c].released().map(|v| (c, v)))
            .min_by_key(|&(c, v)| (levels.get(c).copied().unwrap_or(0), !closes_cycle(c), v, c));
        if let Some((c, _)) = best {
            return Some(c);
        }
    }
    None
}

/// The released cells on every line that touches the group of suppressed cells linked to `r`.
fn group_lines(structure: &Structure, states: &[State], r: usize) -> Vec<usize> {
    let mut seen = vec![false; states.len()];
    let mut stack = vec![r];
    let mut out = Vec::new();
    seen[r] = true;
    while let Some(c) = stack.pop() {
        for &rel in &structure.of_cell[c] {
            for m in structure.relations[rel].members() {
                if seen[m] {
                    continue;
                }
                seen[m] = true;
                if states[m].released().is_some() {
                    out.push(m);
                } else {
                    stack.push(m);
                }
            }
        }
    }
    out
}
