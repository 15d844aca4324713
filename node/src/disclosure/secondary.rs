//! Secondary (complementary) suppression, driven by the interval auditor.
//!
//! After primary suppression, perturbation and rounding, the candidate answer is audited
//! ([`super::audit`]) twice:
//!
//! - **against the exact values** of the cells it would release (the strongest attacker, who
//!   somehow knows every released cell without noise). This is the guarantee: the noisy release
//!   is a garbling of those exact values (the noise depends only on each released cell's own
//!   exact value and on record keys that are independent of every value), so nothing an attacker
//!   does with the noisy values can pin a suppressed cell more tightly than this audit allows;
//! - **on the released values themselves**, as any reviewer of the answer would (see
//!   [`super::audit_intervals`]), so that the published table also passes the public check.
//!
//! While some suppressed cell's interval is narrower than `protection_width` in either audit
//! (the exact one first), more cells are suppressed:
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
//! rounds as cells; if the rounds or the LP budget run out, every cell is suppressed (a table
//! with nothing released cannot be used to recompute anything).
//!
//! Which cells are chosen depends on released values and on the exact audit, as in τ-ARGUS; the
//! pattern of suppression is itself visible, and is part of what the public audit checks.

use vrs_core::answer::SuppressionReason;

use super::audit::{Bound, FeasibleInterval, Hints, Memo, Structure, intervals_memo, pinned};

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
    /// The final audit of every cell on the released values (what anyone can compute).
    pub public: Vec<Bound>,
    /// The final audit of every cell against the exact values of the released cells.
    pub strong: Vec<Bound>,
    /// Whether every suppressed cell is provably protected in both audits.
    pub complete: bool,
}

/// The audits of one candidate answer.
struct Audits {
    public: Vec<Bound>,
    strong: Vec<Bound>,
    /// Suppressed cells not protected to the width, narrowest first.
    risky: Vec<usize>,
}

/// Audits the candidate: the exact audit first, the public one only when the exact one passes.
/// Cells pinned by a single subtraction are reported without solving anything. `settled` keeps
/// the cells the exact audit has shown protected: suppressing more cells only widens a
/// consistent feasible set, so they stay protected (cleared if the exact values ever need a
/// correction, which only a malformed table can cause).
fn audit(
    structure: &Structure,
    states: &[State],
    exact: &[u64],
    width: u64,
    settled: &mut [Option<FeasibleInterval>],
    memo: &mut Memo,
) -> Audits {
    let n = states.len();
    let risky_in = |bounds: &[Bound]| -> Vec<usize> {
        let mut risky: Vec<usize> = (0..n)
            .filter(|&i| states[i].released().is_none() && !bounds[i].protects(width))
            .collect();
        risky.sort_by_key(|&i| (width_of(&bounds[i]), i));
        risky
    };
    let strong_known: Vec<Option<u64>> = states
        .iter()
        .zip(exact)
        .map(|(s, e)| s.released().map(|_| *e))
        .collect();
    let pinned = pinned(structure, &strong_known);
    if !pinned.is_empty() {
        return Audits {
            public: Vec::new(),
            strong: Vec::new(),
            risky: pinned,
        };
    }
    let hints = Hints {
        start: Some(exact),
        settled: Some(settled),
    };
    let found = intervals_memo(structure, &strong_known, Some(width), hints, memo);
    for (slot, bound) in settled.iter_mut().zip(&found.bounds) {
        *slot = match bound {
            Bound::Interval(iv) if found.correction == 0.0 && iv.protects(width) => Some(*iv),
            _ => None,
        };
    }
    let strong = found.bounds;
    let risky = risky_in(&strong);
    if !risky.is_empty() {
        return Audits {
            public: Vec::new(),
            strong,
            risky,
        };
    }
    let public_known: Vec<Option<u64>> = states.iter().map(|s| s.released()).collect();
    let public = intervals_memo(
        structure,
        &public_known,
        Some(width),
        Hints::default(),
        memo,
    )
    .bounds;
    let risky = risky_in(&public);
    Audits {
        public,
        strong,
        risky,
    }
}

/// Suppresses more cells of `states` until every suppressed cell is protected to `width`.
/// `exact[i]` is cell `i`'s exact value; `levels[i]` the number of margin parts of its key.
pub(crate) fn protect(
    structure: &Structure,
    states: &mut [State],
    exact: &[u64],
    levels: &[usize],
    width: u64,
) -> Protection {
    protect_within(structure, states, exact, levels, width, Memo::default())
}

/// As [`protect`], with the LP budget of `memo`.
fn protect_within(
    structure: &Structure,
    states: &mut [State],
    exact: &[u64],
    levels: &[usize],
    width: u64,
    mut memo: Memo,
) -> Protection {
    let n = states.len();
    let mut protects = vec![Vec::new(); n];
    let mut settled = vec![None; n];
    let mut rounds = 0;
    let mut risky: Vec<usize>;
    loop {
        rounds += 1;
        let found = audit(structure, states, exact, width, &mut settled, &mut memo);
        risky = found.risky;
        if risky.is_empty() {
            return Protection {
                protects,
                public: found.public,
                strong: found.strong,
                complete: true,
            };
        }
        if rounds > n || memo.exhausted() {
            break;
        }

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
    if memo.exhausted() {
        let failed = vec![Bound::Failed; n];
        return Protection {
            protects,
            public: failed.clone(),
            strong: failed,
            complete: false,
        };
    }
    let found = audit(structure, states, exact, width, &mut settled, &mut memo);
    let mut all_hidden = || {
        intervals_memo(
            structure,
            &vec![None; n],
            Some(width),
            Hints::default(),
            &mut memo,
        )
        .bounds
    };
    let public = if found.public.is_empty() {
        all_hidden()
    } else {
        found.public
    };
    let strong = if found.strong.is_empty() {
        all_hidden()
    } else {
        found.strong
    };
    Protection {
        protects,
        public,
        strong,
        complete: found.risky.is_empty(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×2 table with margins, one small cell: (a,x)=2, (a,y)=10, (b,x)=9, (b,y)=12.
    fn table() -> (Structure, Vec<State>, Vec<u64>, Vec<usize>) {
        let keys: Vec<Vec<String>> = [
            ["*", "*"],
            ["*", "x"],
            ["*", "y"],
            ["a", "*"],
            ["a", "x"],
            ["a", "y"],
            ["b", "*"],
            ["b", "x"],
            ["b", "y"],
        ]
        .iter()
        .map(|k| k.iter().map(|s| s.to_string()).collect())
        .collect();
        let exact = vec![33, 11, 22, 12, 2, 10, 21, 9, 12];
        let refs: Vec<&[String]> = keys.iter().map(|k| k.as_slice()).collect();
        let structure = Structure::new(&refs, &[true, true]);
        let mut states: Vec<State> = exact.iter().map(|v| State::Released(*v)).collect();
        states[4] = State::Suppressed(SuppressionReason::BelowThreshold);
        let levels = keys
            .iter()
            .map(|k| k.iter().filter(|p| *p == "*").count())
            .collect();
        (structure, states, exact, levels)
    }

    #[test]
    fn a_two_by_two_table_loses_its_whole_interior() {
        let (structure, mut states, exact, levels) = table();
        let p = protect(&structure, &mut states, &exact, &levels, 5);
        assert!(p.complete);
        let hidden: Vec<usize> = (0..9).filter(|&i| states[i].released().is_none()).collect();
        assert_eq!(
            hidden,
            vec![4, 5, 7, 8],
            "the four interior cells, margins kept"
        );
        assert_eq!(p.protects[5], vec![4]);
    }

    #[test]
    fn out_of_budget_releases_nothing() {
        let (structure, mut states, exact, levels) = table();
        let p = protect_within(
            &structure,
            &mut states,
            &exact,
            &levels,
            5,
            Memo::with_budget(0),
        );
        assert!(!p.complete);
        assert!(states.iter().all(|s| s.released().is_none()));
    }
}
