//! Tests of the whole pipeline on tables built from in-memory records.
//!
//! [`aggregate`] is a tiny reference aggregator: it builds an [`ExactTable`] from a list of
//! synthetic records exactly as the query engine does from SQLite (margins as grouping sets,
//! multi-valued dimensions counted once per value, cell keys as sums of record keys), so the
//! property and attack tests can check releases against the truth.

mod attacks;
mod props;

use std::collections::{BTreeMap, BTreeSet};

use vrs_core::answer::{Answer, CellValue, MARGIN};
use vrs_core::query::{Dimension, Unit};

use super::*;

/// One synthetic record.
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// The incident it belongs to (distinct incidents are the contributors).
    pub incident: u32,
    /// Per dimension, the record's values: one for an additive dimension, one or more for a
    /// multi-valued one.
    pub values: Vec<Vec<String>>,
    /// What it adds to a magnitude cell (a count adds 1).
    pub magnitude: i64,
    /// Its secret record key.
    pub key: u32,
}

/// Per-key accumulator.
#[derive(Default)]
struct Acc {
    value: i64,
    cell_key: u64,
    by_incident: BTreeMap<u32, i64>,
}

/// Builds the exact table of `records` over the dimensions `dims` (indices into each record's
/// `values`), with all margins when `margins`.
pub(super) fn aggregate(
    records: &[Record],
    unit: Unit,
    dims: &[usize],
    additive: &[bool],
    margins: bool,
) -> ExactTable {
    let n = dims.len();
    let masks: Vec<Vec<bool>> = if margins {
        (0..(1u32 << n))
            .map(|bits| (0..n).map(|i| bits & (1 << i) == 0).collect())
            .collect()
    } else {
        vec![vec![true; n]]
    };
    let mut cells: BTreeMap<Vec<String>, Acc> = BTreeMap::new();
    for r in records {
        let add = if unit.is_magnitude() { r.magnitude } else { 1 };
        for mask in &masks {
            // Every distinct key this record falls in for this grouping set.
            let mut keys: BTreeSet<Vec<String>> = BTreeSet::from([Vec::new()]);
            for (i, &d) in dims.iter().enumerate() {
                let parts: Vec<String> = if mask[i] {
                    r.values[d].clone()
                } else {
                    vec![MARGIN.to_string()]
                };
                keys = keys
                    .into_iter()
                    .flat_map(|k| {
                        parts.iter().map(move |p| {
                            let mut k = k.clone();
                            k.push(p.clone());
                            k
                        })
                    })
                    .collect();
            }
            for key in keys {
                let acc = cells.entry(key).or_default();
                acc.value += add;
                acc.cell_key += u64::from(r.key);
                *acc.by_incident.entry(r.incident).or_default() += add;
            }
        }
    }
    let dimension_names = [
        Dimension::Origin,
        Dimension::Mode,
        Dimension::Method,
        Dimension::Sex,
    ];
    ExactTable {
        unit,
        dimensions: dims
            .iter()
            .map(|&d| dimension_names[d % dimension_names.len()])
            .collect(),
        additive: dims.iter().map(|&d| additive[d]).collect(),
        cells: cells
            .into_iter()
            .map(|(key, acc)| {
                let mut shares: Vec<i64> = acc.by_incident.values().copied().collect();
                shares.sort_unstable_by(|a, b| b.cmp(a));
                ExactCell {
                    key,
                    value: acc.value,
                    contributors: acc.by_incident.len() as u64,
                    largest: [
                        shares.first().copied().unwrap_or(0),
                        shares.get(1).copied().unwrap_or(0),
                    ],
                    cell_key: acc.cell_key,
                }
            })
            .collect(),
    }
}

/// A fixed secret for tests.
pub(super) fn secret() -> PerturbationSecret {
    PerturbationSecret::from_bytes(*b"vrs-federation-test-secret-00001")
}

/// The released value of `key`, if listed and released.
pub(super) fn released(answer: &Answer, key: &[String]) -> Option<u64> {
    answer
        .cells
        .iter()
        .find(|c| c.key == key)
        .and_then(|c| c.value.released())
}

/// The exact cell of `key`.
pub(super) fn exact<'a>(table: &'a ExactTable, key: &[String]) -> Option<&'a ExactCell> {
    table.cells.iter().find(|c| c.key == key)
}

fn k(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn cell(key: &[&str], value: i64, cell_key: u64) -> ExactCell {
    ExactCell {
        key: k(key),
        value,
        contributors: value.max(0) as u64,
        largest: [1, i64::from(value > 1)],
        cell_key,
    }
}

#[test]
fn a_one_way_table_with_margin_gets_a_complement() {
    let table = ExactTable {
        unit: Unit::Incidents,
        dimensions: vec![Dimension::Mode],
        additive: vec![true],
        cells: vec![
            cell(&["*"], 47, 11),
            cell(&["air"], 2, 22),
            cell(&["land"], 30, 33),
            cell(&["sea"], 15, 44),
        ],
    };
    let r = release(&table, &Policy::default(), &secret());
    let v = |key: &[&str]| {
        r.answer
            .cells
            .iter()
            .find(|c| c.key == k(key))
            .map(|c| c.value)
    };
    use SuppressionReason::*;
    assert_eq!(v(&["air"]), Some(CellValue::Suppressed(BelowThreshold)));
    // The smaller interior cell is the complement; the margin stays.
    assert_eq!(v(&["sea"]), Some(CellValue::Suppressed(Complementary)));
    assert!(matches!(v(&["land"]), Some(CellValue::Released(_))));
    assert!(matches!(v(&["*"]), Some(CellValue::Released(_))));
    let audit = audit_intervals(&r.answer, &table.additive);
    assert_eq!(audit.unprotected(5).count(), 0, "{audit:?}");
    let sea = r
        .explanations
        .iter()
        .find(|e| e.key == k(&["sea"]))
        .unwrap();
    assert_eq!(sea.rule, Rule::Complementary);
    assert_eq!(sea.protects, vec![k(&["air"])]);
    assert!(sea.interval.is_some());
}

#[test]
fn zero_cells_are_not_listed_and_malformed_cells_are_dropped() {
    let table = ExactTable {
        unit: Unit::Incidents,
        dimensions: vec![Dimension::Mode],
        additive: vec![true],
        cells: vec![
            cell(&["air"], 0, 1),
            cell(&["land"], 30, 2),
            cell(&["land"], 31, 3),
            cell(&["sea", "x"], 15, 4),
        ],
    };
    let r = release(&table, &Policy::default(), &secret());
    assert_eq!(r.answer.cells.len(), 1);
    assert_eq!(r.answer.cells[0].key, k(&["land"]));
    let rules: Vec<Rule> = r.explanations.iter().map(|e| e.rule).collect();
    assert_eq!(
        rules,
        vec![Rule::Zero, Rule::Malformed, Rule::Released, Rule::Malformed]
    );
}

#[test]
fn explanations_print_values_only_when_asked() {
    let table = ExactTable {
        unit: Unit::Migrants,
        dimensions: vec![],
        additive: vec![],
        cells: vec![ExactCell {
            key: vec![],
            value: 9_137,
            contributors: 4,
            largest: [9_000, 100],
            cell_key: 7,
        }],
    };
    let r = release(&table, &Policy::default(), &secret());
    assert_eq!(
        r.answer.cells[0].value,
        CellValue::Suppressed(SuppressionReason::Dominance)
    );
    let e = &r.explanations[0];
    let quiet = e.describe(false);
    assert!(quiet.contains("dominance") && !quiet.contains("9137") && !quiet.contains("9000"));
    assert_eq!(quiet, e.to_string());
    let loud = e.describe(true);
    assert!(
        loud.contains("exact 9137") && loud.contains("9000"),
        "{loud}"
    );
    for debug in [format!("{r:?}"), format!("{table:?}"), format!("{e:?}")] {
        assert!(
            !debug.contains("9137") && !debug.contains("9000"),
            "{debug}"
        );
    }
    assert_eq!(e.values().exact, 9_137);
}

#[test]
#[ignore = "prints the auditor's runtime on a 20×20 table; run with --ignored --nocapture"]
fn timing_of_a_20_by_20_table_with_margins() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    let records: Vec<Record> = (0..2_000u32)
        .map(|i| Record {
            incident: i,
            values: vec![
                vec![format!(
                    "r{:02}",
                    rng.random_range(0..20u32).min(rng.random_range(0..20u32))
                )],
                vec![format!(
                    "c{:02}",
                    rng.random_range(0..20u32).min(rng.random_range(0..20u32))
                )],
            ],
            magnitude: 1,
            key: rng.random(),
        })
        .collect();
    let table = aggregate(&records, Unit::Incidents, &[0, 1], &[true, true], true);
    let started = std::time::Instant::now();
    let r = release(&table, &Policy::default(), &secret());
    let release_time = started.elapsed();
    let started = std::time::Instant::now();
    let audit = audit_intervals(&r.answer, &table.additive);
    let audit_time = started.elapsed();
    let count = |reason: SuppressionReason| {
        r.answer
            .cells
            .iter()
            .filter(|c| c.value == CellValue::Suppressed(reason))
            .count()
    };
    println!(
        "20x20 + margins: {} cells, {} primary, {} complementary; release {:?}, one audit {:?}",
        r.answer.cells.len(),
        count(SuppressionReason::BelowThreshold) + count(SuppressionReason::TooFewContributors),
        count(SuppressionReason::Complementary),
        release_time,
        audit_time,
    );
    assert_eq!(audit.unprotected(5).count(), 0);
}
