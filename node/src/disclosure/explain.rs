//! Local explanations of a release, for the operator's `--explain`.
//!
//! One [`Explanation`] per exact cell: which rule decided it and why, in words that carry no
//! pre-disclosure value. The exact values (value, contributors, largest contributions, noise) are
//! kept apart in [`CellValues`], whose `Debug` is redacted, and are printed only when asked for
//! ([`Explanation::describe`] with `with_values = true`). Explanations never leave the node.

use std::fmt;

use super::audit::FeasibleInterval;

/// Which rule decided a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Passed every rule; released (perturbed and rounded as the policy says).
    Released,
    /// Exact value zero: not listed (absence means zero).
    Zero,
    /// Suppressed: value below `min_count`.
    BelowThreshold,
    /// Suppressed: fewer than `min_contributors` distinct incidents.
    TooFewContributors,
    /// Suppressed: the p% dominance rule.
    Dominance,
    /// Suppressed so that other suppressed cells cannot be recomputed.
    Complementary,
    /// Dropped: the key has the wrong number of parts or repeats an earlier cell's key.
    Malformed,
}

impl Rule {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Rule::Released => "released",
            Rule::Zero => "zero",
            Rule::BelowThreshold => "threshold",
            Rule::TooFewContributors => "contributors",
            Rule::Dominance => "dominance",
            Rule::Complementary => "complementary",
            Rule::Malformed => "malformed",
        }
    }
}

/// The exact figures behind one cell. Local only; `Debug` prints nothing of them.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CellValues {
    /// The exact value.
    pub exact: i64,
    /// Distinct contributing incidents.
    pub contributors: u64,
    /// The two largest per-incident contributions.
    pub largest: [i64; 2],
    /// The cell-key noise (0 when not perturbed).
    pub noise: i64,
    /// The released value, when released.
    pub released: Option<u64>,
    /// For a suppressed cell: the certified part of its feasible interval against the exact
    /// values of the released cells (the strongest attacker; what secondary suppression
    /// guarantees).
    pub exact_interval: Option<FeasibleInterval>,
}

impl fmt::Debug for CellValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CellValues(…)")
    }
}

/// Why one cell was released, suppressed or left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The cell's key.
    pub key: Vec<String>,
    /// The rule that decided it.
    pub rule: Rule,
    /// Why, in words, without any pre-disclosure value.
    pub reason: String,
    /// For a complementary suppression: the keys of the cells it protects.
    pub protects: Vec<Vec<String>>,
    /// For a suppressed cell: the part of its feasible interval (as audited on the released
    /// figures only) that secondary suppression certified; the whole interval contains it, and
    /// [`super::audit_intervals`] gives the whole. `None` for released cells or when the solver
    /// failed.
    pub interval: Option<FeasibleInterval>,
    pub(crate) values: CellValues,
}

impl Explanation {
    /// The exact figures (opt-in: print them only when the operator asks).
    pub fn values(&self) -> &CellValues {
        &self.values
    }

    /// One line: key, rule and reason; with `with_values`, the exact figures too.
    pub fn describe(&self, with_values: bool) -> String {
        let key = if self.key.is_empty() {
            "(total)".to_string()
        } else {
            self.key.join(" | ")
        };
        let mut line = format!("{key}: {}: {}", self.rule.code(), self.reason);
        if !self.protects.is_empty() {
            let keys: Vec<String> = self.protects.iter().map(|k| k.join(" | ")).collect();
            line.push_str(&format!("; protects {}", keys.join(", ")));
        }
        if let Some(i) = self.interval {
            match i.width() {
                Some(w) => line.push_str(&format!("; feasible interval width ≥ {w}")),
                None => line.push_str("; feasible interval unbounded above"),
            }
        }
        if with_values {
            let v = &self.values;
            line.push_str(&format!(
                " [exact {}, contributors {}, largest {}/{}, noise {:+}",
                v.exact, v.contributors, v.largest[0], v.largest[1], v.noise
            ));
            if let Some(r) = v.released {
                line.push_str(&format!(", released {r}"));
            }
            for (label, interval) in [
                ("interval ⊇", self.interval),
                ("exact-attacker interval ⊇", v.exact_interval),
            ] {
                if let Some(i) = interval {
                    match i.hi {
                        Some(hi) => line.push_str(&format!(", {label} [{}, {hi}]", i.lo)),
                        None => line.push_str(&format!(", {label} [{}, ∞)", i.lo)),
                    }
                }
            }
            line.push(']');
        }
        line
    }
}

impl fmt::Display for Explanation {
    /// The line without values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(false))
    }
}
