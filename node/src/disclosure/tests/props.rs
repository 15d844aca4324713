//! Property tests: the privacy invariants of DESIGN §6 on random tables.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;
use vrs_core::answer::{Cell, CellValue, MARGIN};

use super::*;

/// A random table: records, how to group them, and a policy.
#[derive(Debug, Clone)]
struct Case {
    records: Vec<Record>,
    unit: Unit,
    dims: Vec<usize>,
    additive: Vec<bool>,
    margins: bool,
    config: PolicyConfig,
}

fn policy_config() -> impl Strategy<Value = PolicyConfig> {
    (
        3u64..=6,
        2u64..=3,
        10u64..=50,
        proptest::option::of(3u64..=8),
        any::<bool>(),
        1u64..=3,
        prop_oneof![3 => Just(0u64), 1 => 2u64..=5],
    )
        .prop_map(
            |(min_count, min_contributors, p, width, enabled, dev, base)| PolicyConfig {
                min_count,
                min_contributors,
                dominance_p: p,
                protection_width: width,
                rounding_base: base,
                perturbation: PerturbationConfig {
                    enabled,
                    max_deviation: dev,
                },
                ..PolicyConfig::default()
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=3,
        any::<bool>(),
        any::<bool>(),
        vec(any::<bool>(), 3),
        vec(1usize..=4, 3),
        policy_config(),
    )
        .prop_flat_map(|(n, magnitude, margins, additive, nvals, config)| {
            // Mostly tiny magnitudes, sometimes a large one (for dominance).
            let size = prop_oneof![4 => 0i64..4, 1 => 0i64..60];
            let record = (0u32..25, vec(vec(0usize..4, 1..=2), 3), size, any::<u32>());
            (
                Just((n, magnitude, margins, additive, nvals, config)),
                vec(record, 0..45),
            )
        })
        .prop_map(|((n, magnitude, margins, additive, nvals, config), raw)| {
            let records = raw
                .into_iter()
                .enumerate()
                .map(|(i, (incident, values, magnitude_of, key))| Record {
                    // Counted units: each record is its own incident.
                    incident: if magnitude { incident } else { i as u32 },
                    values: values
                        .into_iter()
                        .enumerate()
                        .map(|(d, idx)| {
                            let mut vs: Vec<String> =
                                idx.iter().map(|j| format!("v{}", j % nvals[d])).collect();
                            vs.sort();
                            vs.dedup();
                            if additive[d] {
                                vs.truncate(1);
                            }
                            vs
                        })
                        .collect(),
                    magnitude: magnitude_of,
                    key,
                })
                .collect();
            Case {
                records,
                unit: if magnitude {
                    Unit::Migrants
                } else {
                    Unit::Incidents
                },
                dims: (0..n).collect(),
                additive,
                margins,
                config,
            }
        })
}

fn table_of(case: &Case, dims: &[usize], margins: bool) -> ExactTable {
    aggregate(&case.records, case.unit, dims, &case.additive, margins)
}

fn dominated(c: &ExactCell, p: u64) -> bool {
    let (x1, x2) = (c.largest[0] as i128, c.largest[1] as i128);
    100 * (c.value as i128 - x1 - x2) < p as i128 * x1
}

// Case counts: about 2 500 tables in all, well under a minute in debug on two cores.
proptest! {
    #![proptest_config(ProptestConfig { cases: 700, ..ProptestConfig::default() })]

    /// No released cell is below the policy; every suppressed cell is protected; the same
    /// table gives the same answer.
    #[test]
    fn released_cells_pass_and_suppressed_cells_are_protected(case in case()) {
        let policy = Policy::new(case.config.clone()).unwrap();
        let table = table_of(&case, &case.dims, case.margins);
        let r = release(&table, &policy, &secret());
        let m = policy.min_count();
        let slack = policy.max_deviation() + policy.rounding_base();

        for c in &table.cells {
            let listed = r.answer.cells.iter().find(|a| a.key == c.key);
            prop_assert_eq!(listed.is_some(), c.value != 0, "zero cells, and only they, are unlisted");
        }
        prop_assert!(r.answer.cells.windows(2).all(|w| w[0].key < w[1].key), "sorted by key");
        for a in &r.answer.cells {
            let e = exact(&table, &a.key).unwrap();
            if let CellValue::Released(v) = a.value {
                prop_assert!(e.value >= m as i64, "released below min_count");
                prop_assert!(e.contributors >= policy.min_contributors());
                prop_assert!(v >= m, "released value below min_count");
                prop_assert!(v.abs_diff(e.value as u64) <= slack);
                if case.unit.is_magnitude() {
                    prop_assert!(!dominated(e, policy.dominance_p()));
                }
            }
        }
        // Protected against an attacker who knows every released cell exactly, and in the
        // public audit of the released values.
        let width = policy.protection_width();
        let strong = audit_with_exact(&table, &r.answer);
        prop_assert_eq!(strong.correction, 0.0);
        prop_assert_eq!(strong.unprotected(width).count(), 0, "{:?}", strong);
        for c in &strong.cells {
            // The strongest attacker's interval holds the truth (the auditor is sound).
            let i = c.interval.unwrap();
            let v = exact(&table, &c.key).unwrap().value as u64;
            prop_assert!(i.lo <= v && i.hi.is_none_or(|hi| v <= hi), "{:?} {}", i, v);
        }
        let audit = audit_intervals(&r.answer, &table.additive);
        prop_assert_eq!(audit.unprotected(width).count(), 0, "{:?}", audit);
        if !policy.perturbation() && policy.rounding_base() <= 1 {
            prop_assert_eq!(audit, strong, "without noise both audits agree");
        }
        prop_assert_eq!(release(&table, &policy, &secret()), r);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The same records (same exact value and cell key) get the same released value in any
    /// table: another dimension order, a one-way table, with or without margins.
    #[test]
    fn same_records_same_released_value_across_tables(case in case()) {
        let policy = Policy::new(case.config.clone()).unwrap();
        let mut reversed = case.dims.clone();
        reversed.reverse();
        let tables = [
            table_of(&case, &case.dims, true),
            table_of(&case, &reversed, case.margins),
            table_of(&case, &case.dims[..1], false),
            table_of(&case, &case.dims[..1], true),
        ];
        let mut seen: HashMap<(i64, u64), u64> = HashMap::new();
        let mut by_records: HashMap<Vec<String>, u64> = HashMap::new();
        for (t, table) in tables.iter().enumerate() {
            let r = release(table, &policy, &secret());
            for a in &r.answer.cells {
                let Some(v) = a.value.released() else { continue };
                let e = exact(table, &a.key).unwrap();
                let first = *seen.entry((e.value, e.cell_key)).or_insert(v);
                prop_assert_eq!(first, v, "same (value, cell key), different release");
                // The record set of a key does not depend on dimension order: compare by the
                // key sorted back into the original order.
                if t == 1 {
                    let mut key = a.key.clone();
                    key.reverse();
                    let first = *by_records.entry(key).or_insert(v);
                    prop_assert_eq!(first, v);
                } else if t == 0 {
                    by_records.entry(a.key.clone()).or_insert(v);
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1200, ..ProptestConfig::default() })]

    /// On two-way tables the LP bounds are the exact integer bounds when every dimension is
    /// additive, and never narrower than them otherwise (brute force over small tables).
    #[test]
    fn auditor_agrees_with_brute_force(
        rows in 1usize..=3,
        cols in 1usize..=3,
        values in vec(0u64..=4, 9),
        hide in vec(0usize..16, 1..=3),
        additive in vec(any::<bool>(), 2),
    ) {
        let mut cells: Vec<(Vec<String>, u64)> = Vec::new();
        let name = |p: &str, i: usize| format!("{p}{i}");
        for r in 0..rows {
            for c in 0..cols {
                cells.push((vec![name("r", r), name("c", c)], values[r * 3 + c]));
            }
            let total = (0..cols).map(|c| values[r * 3 + c]).sum();
            cells.push((vec![name("r", r), MARGIN.into()], total));
        }
        for c in 0..cols {
            let total = (0..rows).map(|r| values[r * 3 + c]).sum();
            cells.push((vec![MARGIN.into(), name("c", c)], total));
        }
        let grand: u64 = (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).map(|(r, c)| values[r * 3 + c]).sum();
        cells.push((vec![MARGIN.into(), MARGIN.into()], grand));
        cells.retain(|(_, v)| *v > 0);
        prop_assume!(!cells.is_empty());
        let mut hidden: Vec<usize> = hide.iter().map(|h| h % cells.len()).collect();
        hidden.sort_unstable();
        hidden.dedup();
        let answer = Answer {
            dimensions: vec![Dimension::Origin, Dimension::Mode],
            cells: cells
                .iter()
                .enumerate()
                .map(|(i, (key, v))| Cell {
                    key: key.clone(),
                    value: if hidden.contains(&i) {
                        CellValue::Suppressed(SuppressionReason::BelowThreshold)
                    } else {
                        CellValue::Released(*v)
                    },
                })
                .collect(),
                privacy: None,
        };
        let audit = audit_intervals(&answer, &additive);
        prop_assert_eq!(audit.correction, 0.0);

        // Brute force: every assignment of the hidden cells in 1..=cap meeting every relation.
        let cap = 3 * grand + 5;
        let keys: Vec<&Vec<String>> = cells.iter().map(|(k, _)| k).collect();
        let structure = crate::disclosure::audit::Structure::new(
            &keys.iter().map(|k| k.as_slice()).collect::<Vec<_>>(),
            &additive,
        );
        let mut lo = vec![u64::MAX; hidden.len()];
        let mut hi = vec![0u64; hidden.len()];
        let mut x: Vec<u64> = cells.iter().map(|(_, v)| *v).collect();
        let total = (cap as usize).pow(hidden.len() as u32);
        for mut code in 0..total {
            for &h in &hidden {
                x[h] = (code % cap as usize) as u64 + 1;
                code /= cap as usize;
            }
            let ok = structure.relations.iter().all(|rel| {
                let sum: u64 = rel.parts.iter().map(|&p| x[p]).sum();
                if rel.additive {
                    x[rel.margin] == sum
                } else {
                    rel.parts.iter().all(|&p| x[p] <= x[rel.margin])
                }
            });
            if ok {
                for (j, &h) in hidden.iter().enumerate() {
                    lo[j] = lo[j].min(x[h]);
                    hi[j] = hi[j].max(x[h]);
                }
            }
        }
        for (j, &h) in hidden.iter().enumerate() {
            let i = audit.cells.iter().find(|c| c.key == cells[h].0).unwrap().interval.unwrap();
            let exact_bounds = additive.iter().all(|a| *a);
            prop_assert!(i.lo <= lo[j], "{:?} vs [{}, {}]", i, lo[j], hi[j]);
            // Bounded cells stay at most the grand total (their bounds come from released values);
            // an unbounded one reaches the cap less a shift of at most the grand total.
            let unbounded = hi[j] > grand;
            match i.hi {
                None => prop_assert!(unbounded, "{:?} vs [{}, {}]", i, lo[j], hi[j]),
                Some(h) => {
                    prop_assert!(!unbounded && h >= hi[j], "{:?} vs [{}, {}]", i, lo[j], hi[j]);
                    if exact_bounds {
                        prop_assert_eq!((i.lo, h), (lo[j], hi[j]));
                    }
                }
            }
        }
    }
}
