//! An attacker with many queries against a node holding known data, through the node's own query
//! path (checked query → SQL → exact cells → disclosure control), with the default policy.
//!
//! The attacker knows the public policy (thresholds, the noise bound D) and may ask anything the
//! node publishes. The tests hold the true data and assert that the attacker learns no exact small
//! count and no suppressed value:
//!
//! - differencing: `count(X)` vs `count(X and not Y)`;
//! - the n−1 filter attack: the total, then the total without one group at a time;
//! - margin subtraction: totals minus the released cells of a line;
//! - averaging 100 repeats of a query;
//! - the same cell through different dimension orders, filters and margins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::{BTreeMap, HashMap};

use vrs_core::answer::{Answer, MARGIN};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::disclosure::{self, ExactTable, PerturbationSecret, Policy, audit_with_exact};
use vrs_node::fx::FxRates;
use vrs_node::query::aggregate;
use vrs_node::store::{ImportCounts, Store};
use vrs_node::synth::{self, SynthConfig};

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    policy: Policy,
    secret: PerturbationSecret,
}

impl Node {
    fn new(incidents: u64, seed: u64) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let country = "THA".parse().unwrap();
        let mut store = Store::create(dir.path(), country).unwrap();
        let fx = FxRates::sample();
        let mut tx = store.begin_import("synthetic", "-", &fx).unwrap();
        for r in synth::generate(&SynthConfig::new(country, incidents, seed)) {
            tx.insert(&r).unwrap();
        }
        tx.commit(ImportCounts::default()).unwrap();
        let secret = PerturbationSecret::from_bytes(store.perturbation_secret().unwrap());
        Node {
            _dir: dir,
            store,
            policy: Policy::default(),
            secret,
        }
    }

    fn exact(&self, raw: &RawQuery) -> ExactTable {
        let q = Query::parse(raw, &QueryLimits::default()).unwrap();
        aggregate(&self.store, &q).unwrap()
    }

    /// What the attacker sees.
    fn ask(&self, raw: &RawQuery) -> Answer {
        disclosure::release(&self.exact(raw), &self.policy, &self.secret).answer
    }
}

fn raw(unit: &str, by: &[&str], filters: &[(&str, Vec<String>)], margins: bool) -> RawQuery {
    RawQuery {
        unit: unit.into(),
        group_by: by.iter().map(|s| s.to_string()).collect(),
        filters: filters
            .iter()
            .map(|(d, v)| (d.to_string(), v.clone()))
            .collect(),
        margins,
        ..RawQuery::default()
    }
}

/// The same, restricted to one month: small enough for small groups.
fn in_month(mut q: RawQuery) -> RawQuery {
    q.period_from = "2024-03".into();
    q.period_to = "2024-03".into();
    q
}

fn released(a: &Answer) -> BTreeMap<Vec<String>, Option<u64>> {
    a.cells
        .iter()
        .map(|c| (c.key.clone(), c.value.released()))
        .collect()
}

fn exact_values(t: &ExactTable) -> HashMap<Vec<String>, i64> {
    t.cells.iter().map(|c| (c.key.clone(), c.value)).collect()
}

/// The single released value of a query without group-by (None: suppressed or absent).
fn total(node: &Node, raw: &RawQuery) -> Option<u64> {
    node.ask(raw).cells.first().and_then(|c| c.value.released())
}

/// Origins with their true incident counts, and every origin code.
fn origins(node: &Node) -> (Vec<(String, i64)>, Vec<String>) {
    let t = node.exact(&in_month(raw("incidents", &["origin"], &[], false)));
    let mut v: Vec<(String, i64)> = t
        .cells
        .iter()
        .map(|c| (c.key[0].clone(), c.value))
        .collect();
    v.sort();
    let all = v.iter().map(|(k, _)| k.clone()).collect();
    (v, all)
}

#[test]
fn differencing_and_the_n_minus_1_attack_do_not_give_small_counts() {
    let node = Node::new(3_000, 11);
    let (origins, all) = origins(&node);
    assert!(origins.len() >= 6, "{origins:?}");
    let everyone = total(
        &node,
        &in_month(raw("incidents", &[], &[("origin", all.clone())], false)),
    )
    .unwrap();
    let mut small = 0;
    let mut exact_hits = 0;
    let mut all_hits = 0;
    for (origin, truth) in &origins {
        // Everyone but this origin: the n−1 filter attack (and plain differencing).
        let rest: Vec<String> = all.iter().filter(|o| *o != origin).cloned().collect();
        let Some(without) = total(
            &node,
            &in_month(raw("incidents", &[], &[("origin", rest)], false)),
        ) else {
            continue;
        };
        let estimate = everyone as i64 - without as i64;
        all_hits += i64::from(estimate == *truth);
        if *truth < node.policy.min_count() as i64 {
            small += 1;
            exact_hits += i64::from(estimate == *truth);
            // The direct question refuses to say.
            let direct = node.ask(&in_month(raw(
                "incidents",
                &[],
                &[("origin", vec![origin.clone()])],
                false,
            )));
            assert!(
                direct.cells.iter().all(|c| c.value.released().is_none()),
                "{origin}: {direct:?}"
            );
        }
    }
    assert!(
        small >= 1,
        "the data set must hold small groups for this test to mean anything"
    );
    // Without noise every estimate would be exact. With it the attacker is right only by chance
    // and cannot tell when: the estimate is off by up to 2D.
    assert!(
        (all_hits as f64) < 0.6 * origins.len() as f64,
        "{all_hits} of {} differences were exact",
        origins.len()
    );
    assert!(
        exact_hits < small.max(2),
        "{exact_hits} of {small} small origins recovered exactly"
    );
}

#[test]
fn margins_never_pin_a_suppressed_cell() {
    let node = Node::new(2_000, 12);
    for by in [
        ["origin", "mode"],
        ["quarter", "place_type"],
        ["citizenship", "sex"],
    ] {
        let unit = if by[0] == "citizenship" {
            "migrants"
        } else {
            "incidents"
        };
        let q = raw(unit, &by, &[], true);
        let exact = node.exact(&q);
        let answer = disclosure::release(&exact, &node.policy, &node.secret).answer;
        let suppressed = answer
            .cells
            .iter()
            .filter(|c| c.value.released().is_none())
            .count();
        assert!(
            suppressed > 0,
            "{by:?}: nothing suppressed, the test is empty"
        );
        // The strongest attacker: knows every released cell exactly and solves the table.
        let audit = audit_with_exact(&exact, &answer);
        let width = node.policy.protection_width();
        let pinned: Vec<_> = audit.unprotected(width).map(|c| c.key.clone()).collect();
        assert!(pinned.is_empty(), "{by:?}: pinned {pinned:?}");
        // The naive attack too: a line with one suppressed cell and a released margin.
        let cells = released(&answer);
        let truth = exact_values(&exact);
        for (key, value) in &cells {
            if value.is_some() || key.iter().any(|k| k == MARGIN) {
                continue;
            }
            let margin_key = vec![key[0].clone(), MARGIN.to_string()];
            let Some(Some(margin)) = cells.get(&margin_key) else {
                continue;
            };
            let line: Vec<&Option<u64>> = cells
                .iter()
                .filter(|(k, _)| k[0] == key[0] && k[1] != MARGIN)
                .map(|(_, v)| v)
                .collect();
            if line.iter().filter(|v| v.is_none()).count() == 1 {
                let guess = *margin as i64
                    - line
                        .iter()
                        .filter_map(|v| **v)
                        .map(|v| v as i64)
                        .sum::<i64>();
                panic!(
                    "{by:?} {key:?}: alone in its line, guessed {guess}, truth {}",
                    truth[key]
                );
            }
        }
    }
}

#[test]
fn averaging_a_hundred_repeats_gives_nothing_new() {
    let node = Node::new(1_500, 13);
    let q = raw("migrants", &["origin", "quarter"], &[], false);
    let first = released(&node.ask(&q));
    let truth = exact_values(&node.exact(&q));
    let mut sums: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for _ in 0..100 {
        let again = released(&node.ask(&q));
        assert_eq!(again, first, "a repeat released different values");
        for (k, v) in again {
            *sums.entry(k).or_default() += v.unwrap_or(0);
        }
    }
    let mut noisy = 0;
    for (k, v) in &first {
        if let Some(v) = v {
            assert_eq!(sums[k], v * 100, "the average is the first value");
            noisy += i64::from(*v as i64 != truth[k]);
        }
    }
    assert!(
        noisy > 10,
        "perturbation must move released values ({noisy} moved)"
    );
}

#[test]
fn the_same_cell_by_another_route_gets_the_same_value() {
    let node = Node::new(2_000, 14);
    let ab = released(&node.ask(&raw("incidents", &["mode", "quarter"], &[], false)));
    let ba = released(&node.ask(&raw("incidents", &["quarter", "mode"], &[], false)));
    let with_margins = released(&node.ask(&raw("incidents", &["mode", "quarter"], &[], true)));
    let mut checked = 0;
    for (key, value) in &ab {
        let Some(v) = value else { continue };
        let swapped = vec![key[1].clone(), key[0].clone()];
        assert_eq!(
            ba.get(&swapped),
            Some(&Some(*v)),
            "{key:?} by another dimension order"
        );
        if let Some(Some(m)) = with_margins.get(key) {
            assert_eq!(m, v, "{key:?} in a query with margins");
        }
        let filtered = released(&node.ask(&raw(
            "incidents",
            &["quarter"],
            &[("mode", vec![key[0].clone()])],
            false,
        )));
        assert_eq!(
            filtered.get(&vec![key[1].clone()]),
            Some(&Some(*v)),
            "{key:?} by a filter"
        );
        checked += 1;
        if checked == 12 {
            break;
        }
    }
    assert_eq!(checked, 12);
    // A one-dimension total equals the margin of the two-dimension query (same records).
    let by_mode = released(&node.ask(&raw("incidents", &["mode"], &[], false)));
    for (key, value) in by_mode {
        let margin = with_margins.get(&vec![key[0].clone(), MARGIN.to_string()]);
        if let (Some(v), Some(Some(m))) = (value, margin) {
            assert_eq!(v, *m, "{key:?}: total and margin differ");
        }
    }
}
