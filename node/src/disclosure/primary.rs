//! Primary suppression: the rules that look at one cell alone.
//!
//! - **threshold**: the value is below `min_count` → [`SuppressionReason::BelowThreshold`]. Stops
//!   the release of small counts, which single out the few people or incidents in them.
//! - **contributors**: fewer than `min_contributors` distinct incidents contribute →
//!   [`SuppressionReason::TooFewContributors`]. Stops a large count that still describes one or two
//!   incidents (42 migrants on one boat) from being released.
//! - **dominance** (magnitude units only): with total `T` and the two largest per-incident
//!   contributions `x1 ≥ x2`, the cell is unsafe when `T − x1 − x2 < (p/100)·x1` →
//!   [`SuppressionReason::Dominance`]. Stops the second-largest contributor (who knows their own
//!   share) from estimating the largest contribution to within p%.
//!
//! A cell whose value is exactly zero is not released at all (absence means zero).

use vrs_core::answer::SuppressionReason;
use vrs_core::query::Unit;

use super::ExactCell;
use super::policy::Policy;

/// What primary suppression decides for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Primary {
    /// Exact zero: not listed.
    Zero,
    /// Suppressed for this reason.
    Suppress(SuppressionReason),
    /// Passes; the value is at least `min_count` (so positive).
    Pass(u64),
}

/// Applies the primary rules to one cell. Values that cannot be right (negative, or a largest
/// contribution inconsistent with the total) are suppressed, never released.
pub(crate) fn primary(cell: &ExactCell, unit: Unit, policy: &Policy) -> Primary {
    if cell.value == 0 {
        return Primary::Zero;
    }
    let value = match u64::try_from(cell.value) {
        Ok(v) if v >= policy.min_count() => v,
        _ => return Primary::Suppress(SuppressionReason::BelowThreshold),
    };
    if cell.contributors < policy.min_contributors() {
        return Primary::Suppress(SuppressionReason::TooFewContributors);
    }
    if unit.is_magnitude() && dominated(cell.value, cell.largest, policy.dominance_p()) {
        return Primary::Suppress(SuppressionReason::Dominance);
    }
    Primary::Pass(value)
}

/// The p% rule: unsafe when `100·(T − x1 − x2) < p·x1`. A cell whose largest contributions are
/// missing or larger than the total is treated as unsafe.
fn dominated(total: i64, largest: [i64; 2], p: u64) -> bool {
    let x1 = i128::from(largest[0].max(largest[1]));
    let x2 = i128::from(largest[0].min(largest[1]));
    let total = i128::from(total);
    if x1 <= 0 || x2 < 0 || x1 + x2 > total {
        return true;
    }
    100 * (total - x1 - x2) < i128::from(p) * x1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: i64, contributors: u64, largest: [i64; 2]) -> ExactCell {
        ExactCell {
            key: vec![],
            value,
            contributors,
            largest,
            cell_key: 0,
        }
    }

    #[test]
    fn rules_fire_in_order() {
        let p = Policy::default();
        let r = |c: ExactCell, u: Unit| primary(&c, u, &p);
        use SuppressionReason::*;
        assert_eq!(r(cell(0, 0, [0, 0]), Unit::Incidents), Primary::Zero);
        assert_eq!(
            r(cell(-3, 3, [1, 1]), Unit::Incidents),
            Primary::Suppress(BelowThreshold)
        );
        assert_eq!(
            r(cell(4, 4, [1, 1]), Unit::Incidents),
            Primary::Suppress(BelowThreshold)
        );
        assert_eq!(r(cell(5, 5, [1, 1]), Unit::Incidents), Primary::Pass(5));
        assert_eq!(
            r(cell(40, 2, [30, 10]), Unit::Migrants),
            Primary::Suppress(TooFewContributors)
        );
        // Counts never meet the dominance rule.
        assert_eq!(r(cell(40, 3, [30, 9]), Unit::Smugglers), Primary::Pass(40));
        // 40 = 30 + 9 + 1: the rest (1) is below 25% of 30.
        assert_eq!(
            r(cell(40, 3, [30, 9]), Unit::Migrants),
            Primary::Suppress(Dominance)
        );
        // 40 = 20 + 10 + 10: the rest (10) is at least 25% of 20 (5).
        assert_eq!(r(cell(40, 4, [20, 10]), Unit::Deaths), Primary::Pass(40));
        // Boundary: rest 5 = 25% of 20 is safe; 4 is not.
        assert_eq!(r(cell(35, 3, [20, 10]), Unit::Missing), Primary::Pass(35));
        assert_eq!(
            r(cell(34, 3, [20, 10]), Unit::Missing),
            Primary::Suppress(Dominance)
        );
        // Inconsistent largest values are unsafe.
        assert_eq!(
            r(cell(40, 4, [0, 0]), Unit::Migrants),
            Primary::Suppress(Dominance)
        );
        assert_eq!(
            r(cell(40, 4, [50, 0]), Unit::Migrants),
            Primary::Suppress(Dominance)
        );
        assert_eq!(
            r(cell(i64::MAX, 4, [i64::MAX, 1]), Unit::Migrants),
            Primary::Suppress(Dominance)
        );
    }
}
