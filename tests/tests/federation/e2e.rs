//! End to end: a coordinator asks real nodes over mutual TLS; every node cell is checked against
//! an exact computation made here from the same synthetic records (see `reference`), and every
//! regional cell against the node cells it merges.

use std::collections::BTreeMap;

use vrs_coordinator::fanout::{Federation, NodeOutcome, NodeResult};
use vrs_coordinator::merge::{self, CellStatus, Contribution};
use vrs_core::answer::{Answer, CellValue, SuppressionReason};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::record::IncidentRecord;
use vrs_tests::{NO_PERTURBATION, RULES_V1, TestFederation, spec_with};

use crate::reference::{self, DEFAULT_RULES, Exact};

/// `(country, incidents, seed)` of the nodes.
const NODES: [(&str, u64, u64); 4] = [
    ("THA", 1200, 21),
    ("IDN", 800, 22),
    ("MYS", 500, 23),
    ("AUS", 300, 24),
];

/// The default policy's perturbation bound.
const MAX_DEVIATION: u64 = 2;

/// Exact cells of one node for one query.
type ExactCells = BTreeMap<Vec<String>, Exact>;

/// The questions asked: counts and sums, one and two dimensions, a multi-valued dimension with
/// margins.
fn questions() -> Vec<Query> {
    [
        ("incidents", "mode", false),
        ("migrants", "origin,quarter", false),
        ("smugglers", "smuggler_role", false),
        ("deaths", "quarter", false),
        ("incidents", "method,mode", true),
    ]
    .into_iter()
    .map(|(unit, by, margins)| {
        let raw = RawQuery {
            unit: unit.into(),
            group_by: by.split(',').map(str::to_owned).collect(),
            margins,
            ..RawQuery::default()
        };
        Query::parse(&raw, &QueryLimits::default()).unwrap()
    })
    .collect()
}

/// The records each node holds, by country.
fn node_records() -> BTreeMap<String, Vec<IncidentRecord>> {
    NODES
        .iter()
        .map(|(c, n, seed)| (c.to_string(), reference::records(c, *n, *seed)))
        .collect()
}

/// How released values must relate to exact ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Perturbation off: equal.
    Exact,
    /// Perturbation on: within the bound, never below `min_count`.
    Perturbed,
}

/// What the checks saw, so a test can insist that every rule was exercised.
#[derive(Debug, Default)]
struct Tally {
    released: usize,
    /// Released values that differ from the exact value.
    moved: usize,
    suppressed: BTreeMap<SuppressionReason, usize>,
}

fn answer_of(r: &NodeResult) -> &Answer {
    match &r.outcome {
        NodeOutcome::Answered(a) => a,
        other => panic!("{} did not answer: {other:?}", r.country),
    }
}

/// One node's answer against the exact cells: the same keys (no cell missing, none extra, zeros
/// absent); each released cell the exact value (or within the perturbation bound) and passing
/// every primary rule; each suppressed cell with the reason of the first rule it breaks, or
/// complementary (only when margins were asked for).
fn check_node(
    country: &str,
    query: &Query,
    answer: &Answer,
    exact: &ExactCells,
    release: Release,
    tally: &mut Tally,
) {
    let what = format!("{country}: {} by {:?}", query.unit(), query.group_by());
    assert_eq!(answer.dimensions, query.group_by(), "{what}");
    let keys: Vec<&Vec<String>> = answer.cells.iter().map(|c| &c.key).collect();
    let expected: Vec<&Vec<String>> = exact.keys().collect();
    assert_eq!(keys, expected, "{what}: cell keys");
    for cell in &answer.cells {
        let e = &exact[&cell.key];
        let rule = reference::primary(e, query.unit(), DEFAULT_RULES);
        let at = format!("{what}, cell {:?} (exact {e:?})", cell.key);
        match (rule, cell.value) {
            (None, CellValue::Released(v)) => {
                tally.released += 1;
                let exact = u64::try_from(e.value).unwrap();
                match release {
                    Release::Exact => assert_eq!(v, exact, "{at}"),
                    Release::Perturbed => {
                        assert!(v.abs_diff(exact) <= MAX_DEVIATION, "{at}: released {v}");
                        assert!(v >= 5, "{at}: released {v} below min_count");
                    }
                }
                if v != exact {
                    tally.moved += 1;
                }
            }
            (None, CellValue::Suppressed(SuppressionReason::Complementary)) => {
                assert!(query.margins(), "{at}: complementary without margins");
                *tally
                    .suppressed
                    .entry(SuppressionReason::Complementary)
                    .or_default() += 1;
            }
            (Some(rule), CellValue::Suppressed(reason)) => {
                assert_eq!(reason, rule, "{at}");
                *tally.suppressed.entry(reason).or_default() += 1;
            }
            (rule, value) => panic!("{at}: expected {rule:?}, node sent {value:?}"),
        }
    }
}

/// The regional table against the node answers it merges: the same keys; each value the sum of
/// the released node values; exact iff no node suppressed the cell, partial when some node
/// suppressed it and another released it, suppressed when none released it. Without
/// perturbation an exact regional figure is the true regional total and a partial one is below it.
fn check_regional(
    query_id: &str,
    query: &Query,
    results: &[NodeResult],
    exact: &BTreeMap<String, ExactCells>,
    release: Release,
) {
    let regional = merge::merge(query_id, query.unit(), query.group_by(), results);
    assert_eq!(regional.coverage.answered, results.len());
    assert!(regional.coverage.complete());

    // key → country → what that node sent.
    let mut sent: BTreeMap<Vec<String>, BTreeMap<String, CellValue>> = BTreeMap::new();
    for r in results {
        for cell in &answer_of(r).cells {
            sent.entry(cell.key.clone())
                .or_default()
                .insert(r.country.to_string(), cell.value);
        }
    }
    let keys: Vec<&Vec<String>> = regional.cells.iter().map(|c| &c.key).collect();
    assert_eq!(keys, sent.keys().collect::<Vec<_>>(), "regional keys");

    for cell in &regional.cells {
        let nodes = &sent[&cell.key];
        let at = format!(
            "{} by {:?}, regional cell {:?}",
            query.unit(),
            query.group_by(),
            cell.key
        );
        let released: u64 = nodes.values().filter_map(|v| v.released()).sum();
        let any_released = nodes.values().any(|v| v.released().is_some());
        let any_suppressed = nodes.values().any(|v| v.released().is_none());
        assert_eq!(cell.value, released, "{at}");
        let status = match (any_released, any_suppressed) {
            (_, false) => CellStatus::Exact,
            (true, true) => CellStatus::Partial,
            (false, true) => CellStatus::Suppressed,
        };
        assert_eq!(cell.status, status, "{at}");
        for (country, value) in nodes {
            let contribution = match value {
                CellValue::Released(v) => Contribution::Value(*v),
                CellValue::Noisy(v) => Contribution::Noisy(*v),
                CellValue::Suppressed(r) => Contribution::Suppressed(*r),
            };
            assert_eq!(
                cell.nodes.get(country),
                Some(&contribution),
                "{at}, {country}"
            );
        }
        assert_eq!(cell.nodes.len(), nodes.len(), "{at}");

        let truth: i64 = exact
            .values()
            .filter_map(|cells| cells.get(&cell.key))
            .map(|e| e.value)
            .sum();
        let truth = u64::try_from(truth).unwrap();
        match (release, cell.status) {
            (Release::Exact, CellStatus::Exact) => assert_eq!(cell.value, truth, "{at}"),
            (Release::Exact, _) => assert!(cell.value < truth, "{at}: not a strict lower bound"),
            (Release::Perturbed, CellStatus::Exact) => {
                let bound = MAX_DEVIATION * nodes.len() as u64;
                assert!(cell.value.abs_diff(truth) <= bound, "{at}: {truth}");
            }
            (Release::Perturbed, _) => {}
        }
    }
}

/// Asks `query`, checks every node and the regional table; returns the released answers by
/// country.
async fn ask_and_check(
    federation: &Federation,
    query: &Query,
    records: &BTreeMap<String, Vec<IncidentRecord>>,
    release: Release,
    tally: &mut Tally,
) -> (String, BTreeMap<String, Answer>) {
    let (query_id, results) = federation.ask(query).await.unwrap();
    assert_eq!(results.len(), records.len());
    let exact: BTreeMap<String, ExactCells> = records
        .iter()
        .map(|(country, recs)| {
            let cells = reference::exact(recs, query.unit(), query.group_by(), query.margins());
            (country.clone(), cells)
        })
        .collect();
    let mut answers = BTreeMap::new();
    for r in &results {
        let country = r.country.to_string();
        let answer = answer_of(r);
        check_node(&country, query, answer, &exact[&country], release, tally);
        answers.insert(country, answer.clone());
    }
    check_regional(&query_id, query, &results, &exact, release);
    (query_id, answers)
}

/// The published policy of every node says whether perturbation is on.
async fn assert_perturbation(federation: &Federation, on: bool) {
    for (country, described) in federation.describe().await {
        let policy = described.unwrap().policy;
        assert_eq!(policy.perturbation, on, "{country}");
        let deviation = if on { MAX_DEVIATION as u32 } else { 0 };
        assert_eq!(policy.perturbation_max_deviation, deviation, "{country}");
        assert_eq!(
            (
                policy.min_count,
                policy.min_contributors,
                policy.dominance_p
            ),
            (5, 3, 25)
        );
    }
}

#[tokio::test]
async fn without_perturbation_released_cells_are_the_exact_values() {
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| spec_with(c, *n, *seed, NO_PERTURBATION, RULES_V1))
        .collect();
    let fed = TestFederation::start(&specs).await;
    let records = node_records();
    let federation = fed.federation();
    assert_perturbation(&federation, false).await;

    let mut tally = Tally::default();
    for query in questions() {
        ask_and_check(&federation, &query, &records, Release::Exact, &mut tally).await;
    }
    assert_eq!(tally.moved, 0);
    // Every primary rule was exercised, and most cells were released.
    assert!(tally.released > 100, "{tally:?}");
    for rule in [
        SuppressionReason::BelowThreshold,
        SuppressionReason::TooFewContributors,
        SuppressionReason::Dominance,
    ] {
        assert!(tally.suppressed.contains_key(&rule), "{rule:?}: {tally:?}");
    }

    drop(federation);
    fed.stop().await;
}

#[tokio::test]
async fn with_perturbation_released_cells_stay_close_and_repeat_exactly() {
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| spec_with(c, *n, *seed, "", RULES_V1))
        .collect();
    let fed = TestFederation::start(&specs).await;
    let records = node_records();
    let federation = fed.federation();
    assert_perturbation(&federation, true).await;

    let mut tally = Tally::default();
    for query in questions() {
        let (first_id, first) = ask_and_check(
            &federation,
            &query,
            &records,
            Release::Perturbed,
            &mut tally,
        )
        .await;
        let (again_id, again) = ask_and_check(
            &federation,
            &query,
            &records,
            Release::Perturbed,
            &mut tally,
        )
        .await;
        assert_ne!(first_id, again_id);
        // The same records get the same noise: asking again teaches nothing new.
        assert_eq!(first, again, "{} by {:?}", query.unit(), query.group_by());
    }
    // Perturbation really moved values (it is not silently off).
    assert!(tally.moved > 10, "{tally:?}");
    assert!(tally.released > 100, "{tally:?}");

    drop(federation);
    fed.stop().await;
}
