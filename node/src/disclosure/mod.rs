//! Disclosure control: exact cells + policy + secret in, released cells out.
//!
//! Two modes. The default, **zCDP** ([`zcdp`]), releases every cell of a data-independent
//! universe with discrete Gaussian noise calibrated to the query's sensitivity and the ρ it
//! charges to the node's privacy-loss budget; that is the only mode whose protection survives
//! many different queries (docs/THREAT_MODEL.md). The older **rules** mode ([`release`],
//! described below) stays for federations that accept its documented limits: it is NOT
//! protected against a caller who asks many different questions (averaged differencing and
//! least-squares reconstruction recover suppressed cells exactly; measured in node/tests).
//!
//! # Rules mode (v1)
//!
//! A pure module: no I/O, no SQLite, no clock. The query engine hands [`release`] an
//! [`ExactTable`] (exact counts or sums, never leaving the process); `release` returns the
//! [`Answer`] that may leave the node and, for the operator only, one [`Explanation`] per cell.
//!
//! # Pipeline (DESIGN §6), in order
//!
//! 1. **Primary suppression** (`primary.rs`): per cell, alone.
//!    - *threshold*: value < `min_count` → suppressed `threshold`. Stops the release of small
//!      counts that single out a few people or incidents.
//!    - *contributors*: fewer than `min_contributors` distinct incidents → `contributors`. Stops a
//!      large figure that still describes one or two incidents (42 migrants on one boat).
//!    - *dominance* (magnitude units: migrants, deaths, missing): with total `T` and the two
//!      largest per-incident contributions `x1 ≥ x2`, unsafe when `T − x1 − x2 < p%·x1` →
//!      `dominance`. Stops the second-largest contributor from estimating the largest to within p%.
//!    - *zero*: a cell whose exact value is 0 is not listed at all (absence means zero).
//! 2. **Cell-key perturbation** (`perturb.rs`): each passing cell gets noise in
//!    `[−max_deviation, max_deviation]`, a deterministic function of (exact value, sum of the
//!    records' secret keys mod 2³²) keyed by the node's [`PerturbationSecret`]. Exactly zero mean
//!    over the key space, never below `min_count`. Stops **differencing** (two overlapping
//!    queries whose difference is one small group: both sides are noisy, so the difference is
//!    not the group's size) and **averaging** (the same records get the same noise in any query,
//!    margin or repeat, so repeating a query gives nothing new).
//! 3. **Rounding** (optional, `rounding_base` > 1): to the nearest multiple, never below
//!    `min_count` (rounded up instead). Coarsens what differencing could still learn.
//! 4. **Secondary suppression** (`secondary.rs`, auditor in `audit.rs`): when margins are present, suppress more
//!    cells (least loss first: interior before margins, then small values) until every
//!    suppressed cell's feasible interval is at least `protection_width` wide, both against an
//!    attacker who knows every released cell's *exact* value ([`audit_with_exact`]: the
//!    guarantee) and in the public audit of the released values ([`audit_intervals`]: what any
//!    reviewer computes). Stops **margin subtraction** (recomputing a suppressed cell as a margin
//!    minus the released cells of its line, or by solving several lines together as an LP).
//! 5. **Release**: cells sorted by key, each a value or `Suppressed(reason)`; a suppressed cell
//!    carries no value in any form.
//!
//! # What it does not stop (known limits)
//!
//! - The reason code is released: a `threshold` cell is known to hold 1..`min_count`−1, a
//!   `complementary` cell at least 1. `protection_width` (default `min_count`) is measured by the
//!   auditor without that knowledge; it bounds what *subtraction* reveals, not what the reason
//!   code says.
//! - Zeros are exact: an unlisted cell is 0. This reveals that no record has some combination of
//!   values (a group-level fact), and the auditor counts zeros as known.
//! - The auditor sees one answer. Linking suppressed cells across *different* answers (the same
//!   margin released in one query, its cells in another) is limited by perturbation (released
//!   values are noisy, so cross-query sums do not close exactly), by the caller's query budget,
//!   and not by this module.
//! - Membership: cell keys make the same record set release the same value, so two queries whose
//!   record sets are equal release equal values, and unequal sets usually (not always) differ.
//!   Perturbation hides how large the difference is, not whether there is one.
//! - Replacing the [`PerturbationSecret`] changes every cell's noise: releases under the old and
//!   the new secret can be averaged. Rotate it only with a fresh record-key set.
//! - Noise for magnitude units is in the same absolute units as for counts (±`max_deviation`
//!   migrants), which is small next to large sums; dominance and threshold carry that load.
//! - The LP bounds are exact on two-way tables with additive margins; on three-way tables and
//!   multi-valued dimensions they can be wider than the integer bounds (as in τ-ARGUS).
//! - Work is bounded by a count of LPs (deterministic, so the same table always gets the same
//!   answer): a table too large to audit within it is released fully suppressed. A 20×20 table
//!   with margins needs about 1 500 LPs of the 20 000 allowed.
//! - The public parameters ([`Policy::public`]) include `max_deviation`, so readers can judge
//!   accuracy; the secret and the record keys, which the noise actually depends on, never leave.
//!
//! # Bias
//!
//! The noise has exactly zero mean for every exact value except `min_count` itself, where it is
//! +1 with probability `D/(D+1)²` (2/9 for the default `D = 2`) so that threshold cells are not
//! released exactly; rounding up to `min_count` adds a small upward bias on the smallest cells.

mod audit;
mod explain;
mod perturb;
mod policy;
mod primary;
mod round;
mod secondary;
mod secret;
pub mod zcdp;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use vrs_core::answer::{Answer, Cell, CellValue, MARGIN, SuppressionReason};
use vrs_core::query::{Dimension, Unit};

pub use audit::{Audit, AuditedCell, FeasibleInterval, audit_intervals, audit_with_exact};
pub use explain::{CellValues, Explanation, Rule};
pub use perturb::KEY_BITS;
pub use policy::{
    COUNT_CEILING, DOMINANCE_P_CEILING, DOMINANCE_P_FLOOR, MAX_DEVIATION_CEILING,
    MAX_DEVIATION_FLOOR, MAX_DIMENSIONS_CEILING, MAX_FILTER_VALUES_CEILING,
    MAX_PERIOD_SPAN_CEILING, MIN_CONTRIBUTORS_FLOOR, MIN_COUNT_FLOOR, PROTECTION_WIDTH_FLOOR,
    PerturbationConfig, Policy, PolicyConfig, PolicyError, PublicPolicy,
};
pub use secret::{PerturbationSecret, SECRET_LEN, SecretError};
pub use zcdp::{BoundedTable, Bounds, ModeConfig, PrivacyConfig, PrivacyError, PrivacyPolicy};

use audit::{Bound, Structure};
use perturb::Perturber;
use primary::{Primary, primary};
use secondary::{State, protect};

/// One exact cell, computed by the node's query engine; never leaves the process.
///
/// `Debug` shows the key only.
#[derive(Clone, PartialEq, Eq)]
pub struct ExactCell {
    /// One value per dimension; [`MARGIN`] (`"*"`) where it is a total over that dimension.
    pub key: Vec<String>,
    /// The count (record units) or sum (magnitude units: migrants, deaths, missing).
    pub value: i64,
    /// Distinct incidents contributing.
    pub contributors: u64,
    /// The two largest per-incident contributions to `value` (0 when absent); for counts too.
    pub largest: [i64; 2],
    /// Sum over the counted records of their secret record keys (`u32` each), not yet reduced.
    pub cell_key: u64,
}

impl fmt::Debug for ExactCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactCell")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// An exact table: the query engine's output, disclosure control's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactTable {
    /// What is counted.
    pub unit: Unit,
    /// The group-by dimensions, in the order of each cell's key.
    pub dimensions: Vec<Dimension>,
    /// Per dimension: whether the margin over it equals the sum of the cells (false for
    /// multi-valued dimensions such as method or transit, where one incident may sit in several
    /// cells). A missing entry counts as additive.
    pub additive: Vec<bool>,
    /// Interior cells, plus margin cells when the query asked for margins.
    pub cells: Vec<ExactCell>,
}

/// The outcome of [`release`].
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// What may leave the node.
    pub answer: Answer,
    /// Local only (the operator's `--explain`): one per exact cell, sorted by key.
    pub explanations: Vec<Explanation>,
}

/// A listed cell on its way through the pipeline.
struct Listed<'a> {
    cell: &'a ExactCell,
    state: State,
    noise: i64,
}

/// Applies the policy to an exact table (see the module docs for the pipeline).
pub fn release(table: &ExactTable, policy: &Policy, secret: &PerturbationSecret) -> Released {
    let arity = table.dimensions.len();
    let deviation = if policy.perturbation() {
        policy.max_deviation()
    } else {
        0
    };
    let perturber = Perturber::new(secret, policy.min_count(), deviation);

    let mut explanations = Vec::new();
    let mut seen: HashSet<&[String]> = HashSet::new();
    let mut listed: Vec<Listed<'_>> = Vec::new();
    for cell in &table.cells {
        if cell.key.len() != arity || !seen.insert(cell.key.as_slice()) {
            explanations.push(explain(
                cell,
                Rule::Malformed,
                format!(
                    "key must have {arity} part(s) and appear once; dropped (the query engine is at fault)"
                ),
                0,
            ));
            continue;
        }
        match primary(cell, table.unit, policy) {
            Primary::Zero => explanations.push(explain(
                cell,
                Rule::Zero,
                "exact zero: not listed (absence means zero)".into(),
                0,
            )),
            Primary::Suppress(reason) => listed.push(Listed {
                cell,
                state: State::Suppressed(reason),
                noise: 0,
            }),
            Primary::Pass(value) => {
                let noise = perturber.noise(value, cell.cell_key);
                let perturbed = value.saturating_add_signed(noise);
                let rounded = round::round(perturbed, policy.rounding_base(), policy.min_count());
                listed.push(Listed {
                    cell,
                    state: State::Released(rounded),
                    noise,
                });
            }
        }
    }

    let keys: Vec<&[String]> = listed.iter().map(|l| l.cell.key.as_slice()).collect();
    let levels: Vec<usize> = keys
        .iter()
        .map(|k| k.iter().filter(|p| *p == MARGIN).count())
        .collect();
    let structure = Structure::new(&keys, &table.additive);
    let mut states: Vec<State> = listed.iter().map(|l| l.state).collect();
    let exact: Vec<u64> = listed
        .iter()
        .map(|l| u64::try_from(l.cell.value).unwrap_or(0))
        .collect();
    let protection = protect(
        &structure,
        &mut states,
        &exact,
        &levels,
        policy.protection_width(),
    );

    let mut cells = Vec::with_capacity(listed.len());
    for (i, item) in listed.iter().enumerate() {
        let state = states[i];
        let (value, rule, reason) = match state {
            State::Released(v) => (
                CellValue::Released(v),
                Rule::Released,
                released_reason(policy, table.unit),
            ),
            State::Suppressed(r) => {
                let (rule, why) = suppressed_reason(r, policy);
                (CellValue::Suppressed(r), rule, why)
            }
        };
        cells.push(Cell {
            key: item.cell.key.clone(),
            value,
        });
        let mut e = explain(item.cell, rule, reason, item.noise);
        e.values.released = value.released();
        if let CellValue::Suppressed(_) = value {
            let interval = |bounds: &[Bound]| match bounds.get(i) {
                Some(Bound::Interval(iv)) => Some(*iv),
                _ => None,
            };
            e.interval = interval(&protection.public);
            e.values.exact_interval = interval(&protection.strong);
            if !protection.complete {
                e.reason
                    .push_str("; the auditor could not prove every suppressed cell protected");
            }
        }
        e.protects = protection
            .protects
            .get(i)
            .map(|ps| ps.iter().map(|&p| keys[p].to_vec()).collect())
            .unwrap_or_default();
        explanations.push(e);
    }
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    explanations.sort_by(|a, b| a.key.cmp(&b.key));
    Released {
        answer: Answer {
            dimensions: table.dimensions.clone(),
            cells,
            privacy: None,
        },
        explanations,
    }
}

fn explain(cell: &ExactCell, rule: Rule, reason: String, noise: i64) -> Explanation {
    Explanation {
        key: cell.key.clone(),
        rule,
        reason,
        protects: Vec::new(),
        interval: None,
        values: CellValues {
            exact: cell.value,
            contributors: cell.contributors,
            largest: cell.largest,
            noise,
            released: None,
            exact_interval: None,
        },
    }
}

fn released_reason(policy: &Policy, unit: Unit) -> String {
    let mut why = format!(
        "value ≥ {} and ≥ {} contributing incidents",
        policy.min_count(),
        policy.min_contributors()
    );
    if unit.is_magnitude() {
        why.push_str(&format!(", no dominance (p = {}%)", policy.dominance_p()));
    }
    if policy.perturbation() {
        why.push_str(&format!(
            "; cell-key perturbation (±{})",
            policy.max_deviation()
        ));
    }
    if policy.rounding_base() > 1 {
        why.push_str(&format!("; rounded to {}", policy.rounding_base()));
    }
    why
}

fn suppressed_reason(reason: SuppressionReason, policy: &Policy) -> (Rule, String) {
    match reason {
        SuppressionReason::NoisyBelowThreshold => (
            Rule::BelowThreshold,
            "noisy value below the published threshold (zCDP mode)".to_string(),
        ),
        SuppressionReason::BelowThreshold => (
            Rule::BelowThreshold,
            format!("value below min_count = {}", policy.min_count()),
        ),
        SuppressionReason::TooFewContributors => (
            Rule::TooFewContributors,
            format!(
                "fewer than min_contributors = {} distinct incidents",
                policy.min_contributors()
            ),
        ),
        SuppressionReason::Dominance => (
            Rule::Dominance,
            format!(
                "the two largest contributions dominate the total (p% rule, p = {})",
                policy.dominance_p()
            ),
        ),
        SuppressionReason::Complementary => (
            Rule::Complementary,
            format!(
                "complementary: keeps suppressed cells from being narrowed below width {}",
                policy.protection_width()
            ),
        ),
    }
}
