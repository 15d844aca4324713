//! The JSON outputs against their published schemas (docs/schema/*.json, draft 2020-12).
//!
//! Real documents from `vrs_coordinator::output::json` (over a `Regional` that
//! `vrs_coordinator::merge::merge` builds from hand-made node results) and from
//! `vrs_node::render::json` must validate; the schemas must be valid draft 2020-12 documents;
//! every JSON example in docs/OUTPUTS.md must validate; and documents with one deliberate fault
//! each (a suppressed cell carrying a value, a partial figure not marked as a lower bound, ...)
//! must not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::path::PathBuf;
use std::time::Duration;

use jsonschema::Validator;
use serde_json::{Value, json};
use vrs_coordinator::fanout::{NodeOutcome, NodeResult};
use vrs_coordinator::merge::{self, Regional};
use vrs_coordinator::output;
use vrs_core::answer::{
    Answer, Cell, CellValue, MARGIN, QuarterBudget, ReleasePrivacy, SuppressionReason,
};
use vrs_core::query::{Dimension, Unit};

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn load_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

fn validator(rel: &str) -> Validator {
    let schema = load_json(rel);
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{rel} is not a valid draft 2020-12 schema: {e}"));
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn regional_schema() -> Validator {
    validator("docs/schema/regional.v2.json")
}

fn node_answer_schema() -> Validator {
    validator("docs/schema/node-answer.v1.json")
}

/// Every validation error, one per line (empty when valid).
fn errors(v: &Validator, doc: &Value) -> String {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_valid(v: &Validator, doc: &Value, what: &str) {
    let errs = errors(v, doc);
    assert!(
        errs.is_empty(),
        "{what} does not match its schema:\n{errs}\n{doc:#}"
    );
}

fn cell(key: &[&str], value: Option<u64>, reason: SuppressionReason) -> Cell {
    Cell {
        key: key.iter().map(|k| k.to_string()).collect(),
        value: value.map_or(CellValue::Suppressed(reason), CellValue::Released),
    }
}

fn answered(country: &str, dims: &[Dimension], cells: Vec<Cell>) -> NodeResult {
    NodeResult {
        country: country.parse().unwrap(),
        outcome: NodeOutcome::Answered(Answer {
            dimensions: dims.to_vec(),
            cells,
            privacy: None,
        }),
        elapsed: Duration::from_millis(12),
        receipt: None,
    }
}

fn noisy_cell(key: &[&str], value: i64) -> Cell {
    Cell {
        key: key.iter().map(|k| k.to_string()).collect(),
        value: CellValue::Noisy(value),
    }
}

/// A zCDP node's answer: every cell noisy with `sigma`.
fn answered_noisy(country: &str, dims: &[Dimension], sigma: f64, cells: Vec<Cell>) -> NodeResult {
    NodeResult {
        country: country.parse().unwrap(),
        outcome: NodeOutcome::Answered(Answer {
            dimensions: dims.to_vec(),
            cells,
            privacy: Some(ReleasePrivacy {
                release_id: "ab".repeat(32),
                replayed: false,
                rho_micro: 50_000,
                l2_sensitivity_squared: 1,
                privacy_unit: "person".into(),
                sigma,
                threshold: 0.0,
                quarters: vec![QuarterBudget {
                    quarter: "2024-Q1".into(),
                    rho_spent_micro: 100_000,
                    rho_left_micro: 900_000,
                    caller_rho_left_micro: 900_000,
                }],
            }),
        }),
        elapsed: Duration::from_millis(15),
        receipt: None,
    }
}

fn other(country: &str, outcome: NodeOutcome) -> NodeResult {
    NodeResult {
        country: country.parse().unwrap(),
        outcome,
        elapsed: Duration::from_millis(2_000),
        receipt: None,
    }
}

const DIMS: [Dimension; 2] = [Dimension::Route, Dimension::Quarter];

/// A regional answer with every kind of cell (exact, noisy and distinguishable, noisy and not,
/// partial with and without noise, suppressed), every suppression reason, a margin, both
/// protection modes and every kind of node outcome.
fn rich_regional() -> Regional {
    use SuppressionReason::*;
    let m = MARGIN;
    let results = vec![
        answered_noisy(
            "PHL",
            &DIMS,
            4.5,
            vec![
                noisy_cell(&["BGD>MYS", "2024-Q3"], 12),
                noisy_cell(&["PHL>MYS", "2024-Q1"], 310),
                noisy_cell(&["PHL>MYS", "2024-Q2"], -3),
            ],
        ),
        answered_noisy(
            "VNM",
            &DIMS,
            6.0,
            vec![
                noisy_cell(&["PHL>MYS", "2024-Q1"], 41),
                noisy_cell(&["PHL>MYS", "2024-Q2"], 2),
            ],
        ),
        answered(
            "THA",
            &DIMS,
            vec![
                cell(&["BGD>MYS", "2024-Q1"], Some(423), BelowThreshold),
                cell(&["BGD>MYS", "2024-Q3"], None, Dominance),
                cell(&["MMR>THA", "2024-Q1"], Some(812), BelowThreshold),
                cell(&[m, m], Some(1250), BelowThreshold),
            ],
        ),
        answered(
            "MYS",
            &DIMS,
            vec![
                cell(&["BGD>MYS", "2024-Q1"], Some(86), BelowThreshold),
                cell(&["BGD>MYS", "2024-Q3"], Some(46), BelowThreshold),
                cell(&["IND>MYS", "2024-Q1"], None, BelowThreshold),
                cell(&["IND>MYS", "2024-Q2"], None, TooFewContributors),
                cell(&["IND>MYS", "2024-Q3"], None, Complementary),
                cell(&[m, m], Some(140), BelowThreshold),
            ],
        ),
        other(
            "IDN",
            NodeOutcome::Refused {
                reason: "DAILY_BUDGET_SPENT".into(),
                message: "daily query budget spent".into(),
            },
        ),
        other("AUS", NodeOutcome::Unreachable("connection refused".into())),
        other("KHM", NodeOutcome::TimedOut),
        other("LKA", NodeOutcome::PendingApproval),
    ];
    merge::merge("interop-0123456789abcdef", Unit::Migrants, &DIMS, &results)
}

fn rich_node_answer() -> Value {
    use SuppressionReason::*;
    let answer = Answer {
        dimensions: DIMS.to_vec(),
        cells: vec![
            cell(&["BGD>MYS", "2024-Q1"], Some(86), BelowThreshold),
            cell(&["IND>MYS", "2024-Q1"], None, BelowThreshold),
            cell(&["IND>MYS", "2024-Q2"], None, TooFewContributors),
            cell(&["IND>MYS", "2024-Q3"], None, Complementary),
            cell(&["IND>MYS", "2024-Q4"], None, Dominance),
            cell(&[MARGIN, MARGIN], Some(140), BelowThreshold),
        ],
        privacy: None,
    };
    vrs_node::render::json("MYS".parse().unwrap(), Unit::Migrants, &answer)
}

/// What the schema cannot say: keys as long as `dimensions`, coverage consistent with the node
/// list, values the sums of the node values (noisy ones included), standard errors the root of
/// the nodes' summed variances, intervals ±1.96·se clamped at 0, partial cells with both a
/// value and a suppression.
fn check_regional_semantics(doc: &Value) {
    let dims = doc["dimensions"].as_array().unwrap().len();
    let nodes = doc["nodes"].as_array().unwrap();
    let answered = nodes.iter().filter(|n| n["status"] == "answered").count();
    assert_eq!(doc["coverage"]["answered"], json!(answered));
    assert_eq!(doc["coverage"]["asked"], json!(nodes.len()));
    for c in doc["cells"].as_array().unwrap() {
        assert_eq!(c["key"].as_array().unwrap().len(), dims, "{c}");
        let contributions: Vec<&Value> = c["nodes"].as_object().unwrap().values().collect();
        let sum: i64 = contributions
            .iter()
            .filter_map(|n| n.get("value").or(n.get("noisy")).and_then(Value::as_i64))
            .sum();
        let variance: f64 = contributions
            .iter()
            .filter_map(|n| n.get("sigma").and_then(Value::as_f64))
            .map(|s| s * s)
            .sum();
        let any_value = contributions
            .iter()
            .any(|n| n.get("value").is_some() || n.get("noisy").is_some());
        let any_noisy = contributions.iter().any(|n| n.get("noisy").is_some());
        let any_suppressed = contributions.iter().any(|n| n.get("suppressed").is_some());
        match c["status"].as_str().unwrap() {
            "exact" => assert!(any_value && !any_suppressed && !any_noisy, "{c}"),
            "noisy" => assert!(any_noisy && !any_suppressed, "{c}"),
            "partial" => assert!(any_value && any_suppressed, "{c}"),
            "suppressed" => assert!(!any_value && any_suppressed, "{c}"),
            s => panic!("status {s}"),
        }
        if let Some(v) = c.get("value") {
            assert_eq!(v, &json!(sum), "{c}");
        }
        if let Some(se) = c.get("se").and_then(Value::as_f64) {
            assert!((se - variance.sqrt()).abs() < 1e-9, "{c}");
            let half = 1.96 * se;
            let high = c["ci95_high"].as_f64().unwrap();
            let low = c["ci95_low"].as_f64().unwrap();
            assert!((high - (sum.max(0) as f64 + half)).abs() < 1e-9, "{c}");
            assert!((low - (sum as f64 - half).max(0.0)).abs() < 1e-9, "{c}");
            let distinguishable = sum as f64 - half > 0.0;
            assert_eq!(c["distinguishable"], json!(distinguishable), "{c}");
            assert_eq!(c.get("value").is_some(), distinguishable, "{c}");
        } else {
            assert!(!any_noisy, "{c}");
        }
    }
}

#[test]
fn regional_json_matches_the_schema() {
    let r = rich_regional();
    let statuses: Vec<_> = r.cells.iter().map(|c| c.status).collect();
    for s in [
        merge::CellStatus::Exact,
        merge::CellStatus::Noisy,
        merge::CellStatus::Partial,
        merge::CellStatus::Suppressed,
    ] {
        assert!(statuses.contains(&s), "fixture lacks a {s:?} cell");
    }
    let shown: Vec<_> = r.cells.iter().map(|c| c.shown()).collect();
    assert!(
        shown
            .iter()
            .any(|s| matches!(s, merge::Shown::NotDistinguishable { .. }))
    );
    assert!(
        shown
            .iter()
            .any(|s| matches!(s, merge::Shown::Estimate { partial: true, .. }))
    );
    assert!(
        shown
            .iter()
            .any(|s| matches!(s, merge::Shown::Estimate { partial: false, .. }))
    );
    let doc = output::json(&r);
    assert_valid(&regional_schema(), &doc, "output::json");
    check_regional_semantics(&doc);
    assert_eq!(doc["schema"], output::JSON_SCHEMA);
}

#[test]
fn the_schema_id_is_the_one_the_coordinator_writes() {
    let schema = load_json("docs/schema/regional.v2.json");
    assert_eq!(schema["title"], output::JSON_SCHEMA);
    assert_eq!(schema["properties"]["schema"]["const"], output::JSON_SCHEMA);
}

#[test]
fn regional_json_of_edge_cases_matches_the_schema() {
    let v = regional_schema();
    // Nobody answered: no cells.
    let none = merge::merge(
        "interop-0123456789abcdef",
        Unit::Incidents,
        &[Dimension::Mode],
        &[other("THA", NodeOutcome::TimedOut)],
    );
    assert_valid(&v, &output::json(&none), "a regional answer with no cells");
    // No group-by: the grand total only, with an empty key.
    let total = merge::merge(
        "interop-0123456789abcdef",
        Unit::Fees,
        &[],
        &[answered(
            "THA",
            &[],
            vec![cell(&[], Some(5_000), SuppressionReason::BelowThreshold)],
        )],
    );
    let doc = output::json(&total);
    assert_valid(&v, &doc, "a grand total");
    check_regional_semantics(&doc);
}

#[test]
fn node_answer_json_matches_the_schema() {
    let v = node_answer_schema();
    assert_valid(&v, &rich_node_answer(), "render::json");
    let empty = Answer {
        dimensions: vec![Dimension::Mode],
        cells: Vec::new(),
        privacy: None,
    };
    let doc = vrs_node::render::json("THA".parse().unwrap(), Unit::Incidents, &empty);
    assert_valid(&v, &doc, "an empty node answer");
}

/// Applies `fault` to a copy of `doc` and asserts the result is refused.
fn assert_refused(v: &Validator, doc: &Value, what: &str, fault: impl FnOnce(&mut Value)) {
    let mut bad = doc.clone();
    fault(&mut bad);
    assert_ne!(&bad, doc, "{what}: the fault changed nothing");
    assert!(
        !v.is_valid(&bad),
        "{what}: a wrong document passed the schema:\n{bad:#}"
    );
}

fn find_cell<'a>(doc: &'a mut Value, status: &str) -> &'a mut Value {
    doc["cells"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["status"] == status)
        .unwrap()
}

#[test]
fn wrong_regional_documents_fail_validation() {
    let v = regional_schema();
    let doc = output::json(&rich_regional());
    assert_valid(&v, &doc, "the unmodified document");

    assert_refused(&v, &doc, "a suppressed cell carrying a value", |d| {
        find_cell(d, "suppressed")["value"] = json!(0);
    });
    assert_refused(&v, &doc, "a suppressed cell with a lower bound", |d| {
        find_cell(d, "suppressed")["lower_bound"] = json!(true);
    });
    assert_refused(&v, &doc, "a partial figure not marked lower bound", |d| {
        find_cell(d, "partial")["lower_bound"] = json!(false);
    });
    assert_refused(&v, &doc, "a partial cell shown as exact", |d| {
        let c = find_cell(d, "partial");
        c["status"] = json!("exact");
        c["lower_bound"] = json!(false);
    });
    assert_refused(&v, &doc, "an exact cell without its value", |d| {
        find_cell(d, "exact")
            .as_object_mut()
            .unwrap()
            .remove("value");
    });
    assert_refused(&v, &doc, "a node contribution with value and reason", |d| {
        let c = find_cell(d, "exact");
        let (_, n) = c["nodes"]
            .as_object_mut()
            .unwrap()
            .iter_mut()
            .next()
            .unwrap();
        n["suppressed"] = json!("threshold");
    });
    assert_refused(&v, &doc, "an unknown suppression reason", |d| {
        let c = find_cell(d, "suppressed");
        let (_, n) = c["nodes"]
            .as_object_mut()
            .unwrap()
            .iter_mut()
            .next()
            .unwrap();
        n["suppressed"] = json!("small");
    });
    assert_refused(&v, &doc, "a value as a string", |d| {
        let c = find_cell(d, "exact");
        c["value"] = json!(c["value"].to_string());
    });
    assert_refused(&v, &doc, "a negative value", |d| {
        find_cell(d, "exact")["value"] = json!(-1);
    });
    assert_refused(&v, &doc, "another schema version", |d| {
        d["schema"] = json!("vrs.regional.v1");
    });
    assert_refused(&v, &doc, "a noisy cell without its standard error", |d| {
        find_cell(d, "noisy").as_object_mut().unwrap().remove("se");
    });
    assert_refused(&v, &doc, "a noisy cell shown as exact", |d| {
        find_cell(d, "noisy")["status"] = json!("exact");
    });
    assert_refused(
        &v,
        &doc,
        "a value on a figure not distinguishable from 0",
        |d| {
            let c = d["cells"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|c| c["distinguishable"] == json!(false))
                .unwrap();
            c["value"] = json!(0);
        },
    );
    assert_refused(&v, &doc, "a negative interval end", |d| {
        find_cell(d, "noisy")["ci95_low"] = json!(-4.0);
    });
    assert_refused(&v, &doc, "a node contribution noisy without sigma", |d| {
        let c = find_cell(d, "noisy");
        let (_, n) = c["nodes"]
            .as_object_mut()
            .unwrap()
            .iter_mut()
            .next()
            .unwrap();
        n.as_object_mut().unwrap().remove("sigma");
    });
    assert_refused(&v, &doc, "an unknown protection mode", |d| {
        d["nodes"][0]["mode"] = json!("dp");
    });
    assert_refused(&v, &doc, "no schema field", |d| {
        d.as_object_mut().unwrap().remove("schema");
    });
    assert_refused(&v, &doc, "an unknown node status", |d| {
        d["nodes"][0]["status"] = json!("ok");
    });
    assert_refused(&v, &doc, "a lower-case country", |d| {
        d["nodes"][0]["country"] = json!("tha");
    });
    assert_refused(&v, &doc, "an unknown top-level field", |d| {
        d["raw_rows"] = json!([]);
    });
    assert_refused(&v, &doc, "an unknown unit", |d| {
        d["unit"] = json!("people");
    });
}

#[test]
fn wrong_node_answers_fail_validation() {
    let v = node_answer_schema();
    let doc = rich_node_answer();
    assert_valid(&v, &doc, "the unmodified document");
    let suppressed = |d: &mut Value| -> usize {
        d["cells"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c.get("suppressed").is_some())
            .unwrap()
    };
    assert_refused(&v, &doc, "a suppressed cell carrying a value", |d| {
        let i = suppressed(d);
        d["cells"][i]["value"] = json!(2);
    });
    assert_refused(&v, &doc, "a cell with neither value nor reason", |d| {
        let i = suppressed(d);
        d["cells"][i].as_object_mut().unwrap().remove("suppressed");
    });
    assert_refused(&v, &doc, "an unknown suppression reason", |d| {
        let i = suppressed(d);
        d["cells"][i]["suppressed"] = json!("small");
    });
    assert_refused(&v, &doc, "a bound next to a suppressed cell", |d| {
        let i = suppressed(d);
        d["cells"][i]["upper_bound"] = json!(4);
    });
    assert_refused(&v, &doc, "no country", |d| {
        d.as_object_mut().unwrap().remove("country");
    });
    assert_refused(&v, &doc, "an unknown dimension", |d| {
        d["dimensions"][0] = json!("passport_number");
    });
}

/// Every ```json block in docs/OUTPUTS.md is a complete document that validates.
#[test]
fn the_examples_in_outputs_md_validate() {
    let text = std::fs::read_to_string(repo_file("docs/OUTPUTS.md")).unwrap();
    let regional = regional_schema();
    let node = node_answer_schema();
    let mut seen = (0, 0);
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```json" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let doc: Value = serde_json::from_str(&block.join("\n"))
            .unwrap_or_else(|e| panic!("a json block in OUTPUTS.md does not parse: {e}"));
        if doc.get("schema") == Some(&json!(output::JSON_SCHEMA)) {
            assert_valid(&regional, &doc, "a vrs.regional.v2 example in OUTPUTS.md");
            check_regional_semantics(&doc);
            seen.0 += 1;
        } else {
            assert_valid(&node, &doc, "a node answer example in OUTPUTS.md");
            seen.1 += 1;
        }
    }
    assert!(
        seen.0 > 0 && seen.1 > 0,
        "OUTPUTS.md should show both JSON outputs"
    );
}
