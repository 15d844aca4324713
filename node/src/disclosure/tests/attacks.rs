//! Attacks at the pure level: an attacker who sees releases of overlapping tables built from a
//! known synthetic record set, and tries to learn an exact small count.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vrs_core::answer::CellValue;

use super::*;

/// `n` records, one per incident, with random keys and `dims` values drawn from `width` each.
fn population(rng: &mut ChaCha8Rng, n: usize, dims: usize, width: u32) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            incident: i as u32,
            values: (0..dims)
                .map(|_| vec![format!("v{}", rng.random_range(0..width))])
                .collect(),
            magnitude: 1,
            key: rng.random(),
        })
        .collect()
}

/// The released grand total of `records` (a query with no group-by).
fn total(records: &[Record], policy: &Policy) -> Option<u64> {
    let table = aggregate(records, Unit::Incidents, &[], &[], false);
    let r = release(&table, policy, &secret());
    r.answer.cells.first().and_then(|c| c.value.released())
}

/// Differencing: count(X) and count(X and not Y) are both large enough to release; their
/// difference would be |Y| exactly without noise. Over many (X, Y) pairs the attacker's estimate
/// is wrong most of the time, and one observed difference is consistent with several true sizes.
#[test]
fn differencing_two_overlapping_queries_does_not_give_the_small_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let noisy = Policy::default();
    let exact = Policy::new(PolicyConfig {
        perturbation: PerturbationConfig {
            enabled: false,
            max_deviation: 0,
        },
        ..PolicyConfig::default()
    })
    .unwrap();
    let trials = 600;
    let (mut right, mut right_without_noise) = (0, 0);
    let mut truths_by_estimate: HashMap<i64, BTreeSet<usize>> = HashMap::new();
    for _ in 0..trials {
        let n = rng.random_range(12..40);
        let x = population(&mut rng, n, 0, 1);
        let y = rng.random_range(1..=3usize);
        let rest = &x[y..];
        let (Some(a), Some(b)) = (total(&x, &noisy), total(rest, &noisy)) else {
            continue;
        };
        let estimate = a as i64 - b as i64;
        right += usize::from(estimate == y as i64);
        truths_by_estimate.entry(estimate).or_default().insert(y);
        let (a, b) = (total(&x, &exact).unwrap(), total(rest, &exact).unwrap());
        right_without_noise += usize::from(a - b == y as u64);
    }
    assert_eq!(
        right_without_noise, trials,
        "without noise the attack always works"
    );
    assert!(
        right * 2 < trials,
        "with noise the estimate is right only {right} of {trials} times"
    );
    let ambiguous = truths_by_estimate.values().filter(|t| t.len() > 1).count();
    assert!(
        ambiguous >= 3,
        "an observed difference does not determine the true count: {truths_by_estimate:?}"
    );
}

/// Margin subtraction: in a two-way table with margins, no suppressed cell can be recomputed
/// from its line, and the LP bound (every line solved together) stays at least as wide as the
/// protection width. Without secondary suppression the attack would work.
#[test]
fn margins_do_not_give_back_a_suppressed_cell() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let policy = Policy::default();
    let width = policy.protection_width();
    let mut primary_only_recoverable = 0;
    for round in 0..40 {
        let records = population(&mut rng, 60 + round, 2, 4);
        let table = aggregate(&records, Unit::Incidents, &[0, 1], &[true, true], true);
        let r = release(&table, &policy, &secret());
        let audit = audit_intervals(&r.answer, &table.additive);
        assert_eq!(audit.unprotected(width).count(), 0);

        // Line by line: a line whose margin is released never has exactly one suppressed cell.
        let value = |key: &[String]| {
            r.answer
                .cells
                .iter()
                .find(|c| c.key == key)
                .map(|c| c.value)
        };
        for c in &r.answer.cells {
            for d in 0..2 {
                if c.key[d] != MARGIN || !matches!(c.value, CellValue::Released(_)) {
                    continue;
                }
                let hidden = r
                    .answer
                    .cells
                    .iter()
                    .filter(|p| {
                        p.key[d] != MARGIN
                            && p.key[1 - d] == c.key[1 - d]
                            && p.value.released().is_none()
                    })
                    .count();
                assert_ne!(hidden, 1, "line {:?} gives away its one hidden cell", c.key);
            }
        }

        // The same table with primary suppression only: subtraction recovers cells exactly.
        let primary_only = Answer {
            dimensions: r.answer.dimensions.clone(),
            cells: table
                .cells
                .iter()
                .filter(|c| c.value != 0)
                .map(|c| Cell {
                    key: c.key.clone(),
                    value: match value(&c.key) {
                        Some(CellValue::Suppressed(reason))
                            if reason != SuppressionReason::Complementary =>
                        {
                            CellValue::Suppressed(reason)
                        }
                        _ => CellValue::Released(c.value as u64),
                    },
                })
                .collect(),
            privacy: None,
        };
        let exposed = audit_intervals(&primary_only, &table.additive);
        primary_only_recoverable += exposed
            .cells
            .iter()
            .filter(|c| c.interval.is_some_and(|i| i.hi == Some(i.lo)))
            .count();
    }
    assert!(
        primary_only_recoverable > 10,
        "the attack is real without complements: {primary_only_recoverable} cells pinned"
    );
}

/// Averaging: 100 repeats of a query release 100 identical answers, so the mean is one perturbed
/// value, not the truth, wherever the noise is not zero.
#[test]
fn averaging_repeats_gives_back_the_same_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let policy = Policy::default();
    let records = population(&mut rng, 400, 1, 12);
    let table = aggregate(&records, Unit::Incidents, &[0], &[true], false);
    let first = release(&table, &policy, &secret());
    let mut sums: HashMap<Vec<String>, u64> = HashMap::new();
    for _ in 0..100 {
        let r = release(&table, &policy, &secret());
        assert_eq!(r.answer, first.answer, "repeats are identical");
        for c in &r.answer.cells {
            if let Some(v) = c.value.released() {
                *sums.entry(c.key.clone()).or_default() += v;
            }
        }
    }
    let mut off = 0;
    for e in &first.explanations {
        let Some(sum) = sums.get(&e.key) else {
            continue;
        };
        let mean = *sum as f64 / 100.0;
        assert_eq!(mean, e.values().released.unwrap() as f64);
        if e.values().noise != 0 {
            assert_ne!(
                mean,
                e.values().exact as f64,
                "averaging does not remove the noise"
            );
            off += 1;
        }
    }
    assert!(off >= 4, "most released cells carry noise: {off}");
}

/// The same cell reached by another dimension order, a filter, or as a margin of a larger table
/// is released with the same value.
#[test]
fn the_same_cell_by_another_route_gets_the_same_value() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let policy = Policy::default();
    let records = population(&mut rng, 900, 2, 5);
    let ab = aggregate(&records, Unit::Incidents, &[0, 1], &[true, true], true);
    let ba = aggregate(&records, Unit::Incidents, &[1, 0], &[true, true], false);
    let a_only = aggregate(&records, Unit::Incidents, &[0], &[true, true], false);
    // A filter: only records with the first dimension in {v0, v1}.
    let filtered: Vec<Record> = records
        .iter()
        .filter(|r| r.values[0][0] == "v0" || r.values[0][0] == "v1")
        .cloned()
        .collect();
    let filtered_ab = aggregate(&filtered, Unit::Incidents, &[0, 1], &[true, true], false);
    let [r_ab, r_ba, r_a, r_f] =
        [&ab, &ba, &a_only, &filtered_ab].map(|t| release(t, &policy, &secret()));
    let mut compared = 0;
    for c in &r_ab.answer.cells {
        let Some(v) = c.value.released() else {
            continue;
        };
        let (a, b) = (&c.key[0], &c.key[1]);
        if a != MARGIN && b != MARGIN {
            assert_eq!(released(&r_ba.answer, &[b.clone(), a.clone()]), Some(v));
            if a == "v0" || a == "v1" {
                assert_eq!(released(&r_f.answer, &c.key), Some(v));
            }
            compared += 1;
        }
        if a != MARGIN && b == MARGIN {
            assert_eq!(released(&r_a.answer, std::slice::from_ref(a)), Some(v));
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
    // And the noise really is there: some released values differ from the truth.
    let moved = r_ab
        .explanations
        .iter()
        .filter(|e| e.values().noise != 0)
        .count();
    assert!(moved > 5);
}

/// A different secret gives different noise: the noise cannot be computed from record keys alone.
#[test]
fn the_noise_depends_on_the_secret() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let records = population(&mut rng, 600, 1, 10);
    let table = aggregate(&records, Unit::Incidents, &[0], &[true], false);
    let policy = Policy::default();
    let a = release(&table, &policy, &secret());
    let b = release(
        &table,
        &policy,
        &PerturbationSecret::from_bytes([42; SECRET_LEN]),
    );
    assert_ne!(a.answer, b.answer);
}
