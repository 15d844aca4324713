//! Cell-key perturbation (after the ABS/ONS cell key method).
//!
//! Every record carries a secret random `u32` record key, made at import. A cell's key is the sum
//! of its records' keys; this module reduces it modulo `2^32` ([`KEY_BITS`]), so a cell key is
//! uniform on the key space as soon as one of its records' keys is, and the same set of records
//! gives the same cell key in any query, margin or repeat.
//!
//! The noise of a cell is a function of (exact value `v`, reduced cell key `c`) and the node's
//! [`PerturbationSecret`]:
//!
//! 1. `offset(v)` = the first 8 bytes of HMAC-SHA256(secret, `"vrs-ckm-v1/offset" ‖ v`), reduced
//!    to the key space;
//! 2. `position` = (`c` + `offset(v)`) mod `2^32` — for each value a secret rotation of the key
//!    space, so knowing record keys without the secret does not give the noise, and cells with
//!    equal keys but different values get unrelated noise;
//! 3. the noise is the entry of the perturbation table for `v` whose interval holds `position`.
//!
//! The table for `v` splits the key space into intervals, one per noise value `j` in `[−D, D]`
//! (`D` = `max_deviation`), of integer lengths `L_v(j)`. Because step 2 is a bijection of the key
//! space, a uniformly random cell key gives noise `j` with probability exactly `L_v(j) / 2^32`,
//! and the mean over the key space is exactly `Σ j·L_v(j) / 2^32`, which the construction makes
//! zero (tested exhaustively on a reduced key space).
//!
//! Shape: triangular, `P(j) ∝ D + 1 − |j|`. For `D = 2` that is 1/9, 2/9, 3/9, 2/9, 1/9 for
//! −2…+2: the noise is non-zero two times in three, and its variance is 4/3.
//!
//! Near the threshold the table is adjusted so that a cell that passed primary suppression (`v ≥
//! min_count`) is never released below `min_count`: with `k = v − min_count < D`, the negative
//! side is cut at `−k`, and the positive side is rescaled so that the mean stays exactly zero.
//! The one value where zero mean and "some noise" conflict is `v = min_count` (`k = 0`, no room
//! below): there the noise is +1 with probability `D/(D+1)²` (2/9 for `D = 2`) and 0 otherwise,
//! a **bias of +D/(D+1)²** on cells whose exact value is exactly `min_count`, and on no other cell.
//! We accept it rather than release every cell at the threshold exactly.

use ring::hmac;

use super::secret::PerturbationSecret;

/// Bits of the cell-key space: cell keys are reduced modulo `2^KEY_BITS`.
pub const KEY_BITS: u32 = 32;

/// Domain separation for the offset HMAC.
const OFFSET_LABEL: &[u8] = b"vrs-ckm-v1/offset";

/// One perturbation table: `(noise, interval length)` in increasing noise order; the lengths add
/// up to the size of the key space.
type Table = Vec<(i64, u64)>;

/// The noise source for one release: the keyed HMAC and the tables for one policy.
pub(crate) struct Perturber {
    key: hmac::Key,
    min_count: u64,
    key_bits: u32,
    /// `tables[k]` is the table for `v = min_count + k`, `k` in `0..=D`; larger `k` use `tables[D]`.
    /// Empty when perturbation is off.
    tables: Vec<Table>,
}

impl Perturber {
    /// A perturber for `min_count` and `max_deviation` (0 = no noise).
    pub(crate) fn new(secret: &PerturbationSecret, min_count: u64, max_deviation: u64) -> Self {
        Self::with_key_bits(secret, min_count, max_deviation, KEY_BITS)
    }

    /// As [`Perturber::new`] on a key space of `2^key_bits` (tests use small spaces to check the
    /// tables exhaustively). `key_bits` is clamped to `1..=32`.
    pub(crate) fn with_key_bits(
        secret: &PerturbationSecret,
        min_count: u64,
        max_deviation: u64,
        key_bits: u32,
    ) -> Self {
        let key_bits = key_bits.clamp(1, 32);
        let tables = if max_deviation == 0 {
            Vec::new()
        } else {
            (0..=max_deviation)
                .map(|k| table(k, max_deviation, key_bits))
                .collect()
        };
        Perturber {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
            min_count,
            key_bits,
            tables,
        }
    }

    fn mask(&self) -> u64 {
        (1u64 << self.key_bits) - 1
    }

    /// The noise for a cell of exact value `value` (≥ `min_count`) and unreduced `cell_key`.
    /// Always in `[−D, D]`, and `value + noise ≥ min_count`.
    pub(crate) fn noise(&self, value: u64, cell_key: u64) -> i64 {
        let Some(k) = value.checked_sub(self.min_count) else {
            return 0;
        };
        let Some(table) = usize::try_from(k)
            .ok()
            .and_then(|k| self.tables.get(k))
            .or_else(|| self.tables.last())
        else {
            return 0;
        };
        let position = cell_key.wrapping_add(self.offset(value)) & self.mask();
        lookup(table, position)
    }

    /// The secret rotation of the key space for `value`.
    fn offset(&self, value: u64) -> u64 {
        let mut msg = Vec::with_capacity(OFFSET_LABEL.len() + 8);
        msg.extend_from_slice(OFFSET_LABEL);
        msg.extend_from_slice(&value.to_be_bytes());
        let tag = hmac::sign(&self.key, &msg);
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_be_bytes(first) & self.mask()
    }
}

/// The noise whose interval holds `position`.
fn lookup(table: &Table, position: u64) -> i64 {
    let mut end = 0u64;
    for &(noise, len) in table {
        end += len;
        if position < end {
            return noise;
        }
    }
    0
}

/// Triangular weight of noise `j` for maximum deviation `d`.
fn weight(j: u64, d: u64) -> u64 {
    d + 1 - j.min(d + 1)
}

/// The table for `v = min_count + k` with maximum deviation `d ≥ 1` on `2^key_bits` keys.
fn table(k: u64, d: u64, key_bits: u32) -> Table {
    let size = 1u128 << key_bits;
    let total_weight = u128::from((d + 1) * (d + 1));
    let share = |w: u64, scale: u128| -> u64 {
        u64::try_from(size * u128::from(w) / (total_weight * scale)).unwrap_or(0)
    };
    let depth = k.min(d);
    // neg[j-1] = L(−j), pos[j-1] = L(+j), for j in 1..=d.
    let mut neg = vec![0u64; usize::try_from(d).unwrap_or(0)];
    let mut pos = neg.clone();
    if depth == d {
        // Full range: symmetric, so the mean is exactly zero.
        for j in 1..=d {
            let l = share(weight(j, d), 1);
            set(&mut neg, j, l);
            set(&mut pos, j, l);
        }
    } else if depth == 0 {
        // At the threshold: nothing below, so only a small upward step (the one bias).
        set(&mut pos, 1, share(weight(1, d), 1));
    } else {
        // Cut below at −depth; rescale the positive side to the same first moment. Halve the
        // negative side until everything fits in the key space (only matters for large d).
        let positive_moment: u128 = (1..=d).map(|j| u128::from(j * weight(j, d))).sum();
        let mut scale = 1u128;
        loop {
            neg.iter_mut().for_each(|l| *l = 0);
            pos.iter_mut().for_each(|l| *l = 0);
            let mut moment: u128 = 0;
            for j in 1..=depth {
                let l = share(weight(j, d), scale);
                set(&mut neg, j, l);
                moment += u128::from(j) * u128::from(l);
            }
            let mut rest = moment;
            for j in 2..=d {
                let l = moment * u128::from(weight(j, d)) / positive_moment;
                rest -= u128::from(j) * l;
                set(&mut pos, j, u64::try_from(l).unwrap_or(0));
            }
            set(&mut pos, 1, u64::try_from(rest).unwrap_or(0));
            let used: u128 = neg.iter().chain(&pos).map(|&l| u128::from(l)).sum();
            if used <= size {
                break;
            }
            scale *= 2;
        }
    }
    let used: u128 = neg.iter().chain(&pos).map(|&l| u128::from(l)).sum();
    let zero = u64::try_from(size.saturating_sub(used)).unwrap_or(0);
    let mut out = Table::new();
    for j in (1..=d).rev() {
        out.push((-signed(j), get(&neg, j)));
    }
    out.push((0, zero));
    for j in 1..=d {
        out.push((signed(j), get(&pos, j)));
    }
    out
}

fn signed(j: u64) -> i64 {
    i64::try_from(j).unwrap_or(i64::MAX)
}

fn set(side: &mut [u64], j: u64, len: u64) {
    if let Some(slot) = usize::try_from(j - 1).ok().and_then(|i| side.get_mut(i)) {
        *slot = len;
    }
}

fn get(side: &[u64], j: u64) -> u64 {
    usize::try_from(j - 1)
        .ok()
        .and_then(|i| side.get(i))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> PerturbationSecret {
        PerturbationSecret::from_bytes([b; 32])
    }

    fn moment(t: &Table) -> (u128, i128) {
        let total = t.iter().map(|&(_, l)| u128::from(l)).sum();
        let first = t.iter().map(|&(j, l)| i128::from(j) * i128::from(l)).sum();
        (total, first)
    }

    #[test]
    fn tables_cover_the_key_space_with_zero_mean() {
        for bits in [8, 12, 32] {
            for d in 1..=25u64 {
                for k in 0..=d + 2 {
                    let t = table(k, d, bits);
                    let (total, first) = moment(&t);
                    assert_eq!(total, 1u128 << bits, "d={d} k={k} bits={bits}");
                    for &(j, l) in &t {
                        assert!(j.unsigned_abs() <= d);
                        if j < 0 && j.unsigned_abs() > k {
                            assert_eq!(l, 0, "never below min_count: d={d} k={k} j={j}");
                        }
                    }
                    if k == 0 {
                        assert!(first > 0, "the one biased value");
                    } else {
                        assert_eq!(first, 0, "exact zero mean: d={d} k={k} bits={bits}");
                    }
                }
            }
        }
        // D = 2, full range: 1/9, 2/9, 3/9, 2/9, 1/9 (to the last key).
        let t = table(5, 2, 32);
        let ninth = (1u64 << 32) / 9;
        assert_eq!(t[0], (-2, ninth));
        assert_eq!(t[1], (-1, (2u64 << 32) / 9));
        assert_eq!(t[3], (1, (2u64 << 32) / 9));
        // At the threshold: +1 with probability 2/9.
        let t = table(0, 2, 32);
        assert_eq!(t[3], (1, (2u64 << 32) / 9));
        assert_eq!(t[4], (2, 0));
    }

    #[test]
    fn exact_zero_mean_over_the_whole_key_space() {
        // A reduced key space (12 bits) is enumerated through the real lookup, offset included.
        let bits = 12;
        for d in 1..=4u64 {
            let p = Perturber::with_key_bits(&secret(3), 5, d, bits);
            for v in 5..5 + 3 * d {
                let mut sum = 0i64;
                let mut nonzero = 0u64;
                for ck in 0..(1u64 << bits) {
                    let n = p.noise(v, ck);
                    assert!(n.unsigned_abs() <= d);
                    assert!(v.checked_add_signed(n).unwrap() >= 5);
                    sum += n;
                    nonzero += u64::from(n != 0);
                }
                let (_, first) = moment(&table(v - 5, d, bits));
                assert_eq!(i128::from(sum), first, "lookup agrees with the table");
                if v > 5 {
                    assert_eq!(sum, 0, "exactly zero mean: d={d} v={v}");
                }
                assert!(
                    nonzero > 0,
                    "every passing value can be perturbed: d={d} v={v}"
                );
            }
        }
    }

    #[test]
    fn same_value_and_key_same_noise_different_secret_different_noise() {
        let a = Perturber::new(&secret(1), 5, 2);
        let b = Perturber::new(&secret(2), 5, 2);
        let mut differ = 0;
        for i in 0..2000u64 {
            let ck = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let v = 5 + i % 40;
            assert_eq!(a.noise(v, ck), a.noise(v, ck));
            assert_eq!(
                a.noise(v, ck),
                a.noise(v, ck + (1u64 << 32)),
                "reduced mod 2^32"
            );
            differ += u32::from(a.noise(v, ck) != b.noise(v, ck));
        }
        assert!(differ > 500, "the secret matters: {differ}");
    }

    #[test]
    fn empirical_distribution_matches_the_table() {
        let p = Perturber::new(&secret(9), 5, 2);
        let mut counts = [0u32; 5];
        let n = 90_000u64;
        for i in 0..n {
            let ck = i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 7;
            let noise = p.noise(50, ck);
            counts[usize::try_from(noise + 2).unwrap()] += 1;
        }
        for (c, expect) in counts.iter().zip([1.0, 2.0, 3.0, 2.0, 1.0]) {
            let share = f64::from(*c) / n as f64;
            assert!((share - expect / 9.0).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(Perturber::new(&secret(9), 5, 0).noise(50, 1234), 0, "off");
    }
}
