//! Rounding after perturbation (optional): to the nearest multiple of `rounding_base`, halves
//! up. Zero stays zero, and a value that passed primary suppression is never rounded below
//! `min_count`: it goes up to the first multiple of the base at or above `min_count` instead
//! (an upward bias on the smallest released values, documented in the module docs).

/// Rounds `value` (≥ `min_count`) to `base` (0 or 1 = no rounding).
pub(crate) fn round(value: u64, base: u64, min_count: u64) -> u64 {
    if base <= 1 || value == 0 {
        return value;
    }
    let nearest = value
        .saturating_add(base / 2)
        .checked_div(base)
        .unwrap_or(0)
        .saturating_mul(base);
    if nearest >= min_count {
        nearest
    } else {
        min_count.div_ceil(base).saturating_mul(base)
    }
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn rounds_to_nearest_never_below_min_count() {
        assert_eq!(round(7, 0, 5), 7);
        assert_eq!(round(7, 1, 5), 7);
        assert_eq!(round(0, 5, 5), 0);
        assert_eq!(round(7, 5, 5), 5);
        assert_eq!(round(8, 5, 5), 10);
        assert_eq!(round(12, 5, 5), 10);
        assert_eq!(round(5, 10, 5), 10);
        assert_eq!(round(4, 10, 3), 10, "nearest is 0, below min_count: up");
        assert_eq!(round(14, 10, 3), 10);
        assert_eq!(round(15, 10, 3), 20);
        for base in 2..30 {
            for m in 3..12 {
                for v in m..200 {
                    let r = round(v, base, m);
                    assert!(r >= m && r.is_multiple_of(base));
                    assert!(r.abs_diff(v) < base, "v={v} base={base} m={m} r={r}");
                }
            }
        }
        assert!(round(u64::MAX, 10, 5).is_multiple_of(10));
    }
}
