//! Outputs of a regional answer: an aligned table for a terminal, CSV and JSON.
//!
//! In every format a figure that is not exact says so: a partial cell's value is prefixed `≥`
//! in the table and carries `status = partial` in CSV and JSON; a cell no node released shows
//! `suppressed` with no value. The JSON schema is documented in docs/OUTPUTS.md and versioned by
//! its `schema` field.

use serde_json::json;
use vrs_core::table::Table;

use crate::merge::{CellStatus, Contribution, Regional};

/// Version of the JSON output schema.
pub const JSON_SCHEMA: &str = "vrs.regional.v1";

/// How a regional value reads in a table.
pub fn value_text(value: u64, status: CellStatus) -> String {
    match status {
        CellStatus::Exact => value.to_string(),
        CellStatus::Partial => format!("≥{value}"),
        CellStatus::Suppressed => "suppressed".to_string(),
    }
}

fn contribution_text(c: Option<&Contribution>) -> String {
    match c {
        None => "-".into(),
        Some(Contribution::Value(v)) => v.to_string(),
        Some(Contribution::Noisy(v)) => v.to_string(),
        Some(Contribution::Suppressed(r)) => format!("supp. ({r})"),
    }
}

/// Countries whose answers were merged, in registry order (the per-node columns).
fn answered(r: &Regional) -> Vec<String> {
    r.nodes
        .iter()
        .filter(|n| n.status == "answered")
        .map(|n| n.country.clone())
        .collect()
}

/// The regional cells as a table; with `per_node`, one extra column per answering node.
pub fn table(r: &Regional, per_node: bool) -> Table {
    let countries = answered(r);
    let mut header: Vec<String> = r.dimensions.iter().map(|d| d.code().to_string()).collect();
    let first_value = header.len();
    header.push(r.unit.code().to_string());
    if per_node {
        header.extend(countries.iter().cloned());
    }
    let n = header.len();
    let mut t = Table::new(header);
    for i in first_value..n {
        t = t.align_right(i);
    }
    for c in &r.cells {
        let mut row = c.key.clone();
        row.push(value_text(c.value, c.status));
        if per_node {
            for country in &countries {
                row.push(contribution_text(c.nodes.get(country)));
            }
        }
        t.push(row);
    }
    t
}

/// The per-node status as a table.
pub fn node_table(r: &Regional) -> Table {
    let mut t = Table::new(["node", "status", "ms", "detail"]).align_right(2);
    for n in &r.nodes {
        t.push(vec![
            n.country.clone(),
            n.status.clone(),
            n.elapsed_ms.to_string(),
            n.detail.clone(),
        ]);
    }
    t
}

/// The text a terminal shows: node status, the regional table and a legend.
pub fn text(r: &Regional, per_node: bool) -> String {
    let mut out = String::new();
    out.push_str(&node_table(r).to_aligned());
    out.push('\n');
    out.push_str(&table(r, per_node).to_aligned());
    let partial = r.cells.iter().any(|c| c.status != CellStatus::Exact);
    if partial {
        out.push_str("\n≥N: at least one node suppressed this cell; N is a lower bound.\n");
        out.push_str("suppressed: every node holding this cell withheld it.\n");
    }
    if !r.coverage.complete() {
        out.push_str(&format!(
            "Only {} of {} nodes answered: every figure is a lower bound for the region.\n",
            r.coverage.answered, r.coverage.asked
        ));
    }
    out
}

/// CSV: the key columns, `value`, `status` (exact/partial/suppressed), and with `per_node` one
/// column per answering node (a number, `suppressed:<reason>`, or empty for zero).
pub fn csv(r: &Regional, per_node: bool) -> String {
    let countries = answered(r);
    let mut header: Vec<String> = r.dimensions.iter().map(|d| d.code().to_string()).collect();
    header.push("value".into());
    header.push("status".into());
    if per_node {
        header.extend(countries.iter().cloned());
    }
    let mut t = Table::new(header);
    for c in &r.cells {
        let mut row = c.key.clone();
        row.push(match c.status {
            CellStatus::Suppressed => String::new(),
            _ => c.value.to_string(),
        });
        row.push(
            match c.status {
                CellStatus::Exact => "exact",
                CellStatus::Partial => "partial",
                CellStatus::Suppressed => "suppressed",
            }
            .into(),
        );
        if per_node {
            for country in &countries {
                row.push(match c.nodes.get(country) {
                    None => String::new(),
                    Some(Contribution::Value(v)) => v.to_string(),
                    Some(Contribution::Noisy(v)) => v.to_string(),
                    Some(Contribution::Suppressed(reason)) => format!("suppressed:{reason}"),
                });
            }
        }
        t.push(row);
    }
    t.to_csv()
}

/// JSON with a stable, versioned schema (docs/OUTPUTS.md, docs/schema/regional.v1.json).
pub fn json(r: &Regional) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = r
        .cells
        .iter()
        .map(|c| {
            let nodes: serde_json::Map<String, serde_json::Value> = c
                .nodes
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Contribution::Value(n) => json!({"value": n}),
                        Contribution::Noisy(n) => json!({"noisy": n}),
                        Contribution::Suppressed(reason) => json!({"suppressed": reason.code()}),
                    };
                    (k.clone(), v)
                })
                .collect();
            let mut cell = json!({
                "key": c.key,
                "status": c.status,
                "nodes": nodes,
            });
            if c.status != CellStatus::Suppressed {
                cell["value"] = json!(c.value);
                cell["lower_bound"] = json!(c.status == CellStatus::Partial);
            }
            cell
        })
        .collect();
    json!({
        "schema": JSON_SCHEMA,
        "query_id": r.query_id,
        "unit": r.unit.code(),
        "dimensions": r.dimensions.iter().map(|d| d.code()).collect::<Vec<_>>(),
        "coverage": {"answered": r.coverage.answered, "asked": r.coverage.asked},
        "nodes": r.nodes,
        "cells": cells,
    })
}
