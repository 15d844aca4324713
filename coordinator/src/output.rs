//! Outputs of a regional answer: an aligned table for a terminal, CSV and JSON.
//!
//! Display rules apply here, after merging ([`crate::merge::Shown`]). In every format a figure
//! that is not exact says so: a noisy (zCDP) figure reads `value ± 1.96·SE` in the table and
//! carries `se`, `ci95_low` and `ci95_high` in CSV and JSON; a noisy figure whose 95 % interval
//! contains 0 is "not distinguishable from 0" (`<upper` in the table, no `value` in CSV and
//! JSON), so a negative noisy total is never printed as a count; a partial cell's value is
//! prefixed `≥` in the table and carries `status = partial` in CSV and JSON; a cell no node
//! released shows `suppressed` with no value. Every node's protection mode, the ρ its answer
//! charged and the budget it has left are shown next to its status. The JSON schema is
//! documented in docs/OUTPUTS.md and versioned by its `schema` field.

use serde_json::json;
use vrs_core::answer::MICRO_RHO;
use vrs_core::table::Table;

use crate::merge::{CellStatus, Contribution, NodeStatus, Regional, RegionalCell, Shown, shown};

/// Version of the JSON output schema.
pub const JSON_SCHEMA: &str = "vrs.regional.v2";

/// A micro-ρ amount as ρ with three decimals (`50000` → `0.050`).
pub fn rho_text(micro: u64) -> String {
    format!("{:.3}", micro as f64 / MICRO_RHO as f64)
}

/// How a regional value reads in a table.
pub fn value_text(cell: &RegionalCell) -> String {
    cell.shown().text()
}

/// How one node's part reads: the same display rule as a regional figure.
fn contribution_shown(c: &Contribution) -> Shown {
    match *c {
        Contribution::Value(v) => Shown::Count(v),
        Contribution::Noisy { value, sigma } => shown(value, sigma, CellStatus::Noisy),
        Contribution::Suppressed(_) => Shown::Suppressed,
    }
}

fn contribution_text(c: Option<&Contribution>) -> String {
    match c {
        None => "-".into(),
        Some(Contribution::Suppressed(r)) => format!("supp. ({r})"),
        Some(c) => contribution_shown(c).text(),
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
    table_of(r, per_node, |_| true)
}

/// The table of the cells `keep` selects.
fn table_of(r: &Regional, per_node: bool, keep: impl Fn(&RegionalCell) -> bool) -> Table {
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
    for c in r.cells.iter().filter(|c| keep(c)) {
        let mut row = c.key.clone();
        row.push(value_text(c));
        if per_node {
            for country in &countries {
                row.push(contribution_text(c.nodes.get(country)));
            }
        }
        t.push(row);
    }
    t
}

/// Mode, ρ charged and least budget left of a node, as table text (`-` when not known).
fn node_privacy_text(n: &NodeStatus) -> [String; 4] {
    let dash = || "-".to_string();
    let mode = n.mode.map_or_else(dash, |m| m.code().to_string());
    match &n.privacy {
        None => [mode, dash(), dash(), dash()],
        Some(p) => [
            mode,
            if p.replayed {
                "0 (replayed)".into()
            } else {
                rho_text(p.rho_charged_micro)
            },
            p.min_left_micro().map_or_else(dash, rho_text),
            format!("{:.2}", p.sigma),
        ],
    }
}

/// The per-node status as a table: status, protection mode, ρ charged to each touched quarter,
/// the least budget left over those quarters, σ, time and detail.
pub fn node_table(r: &Regional) -> Table {
    let mut t = Table::new([
        "node", "status", "mode", "rho", "rho_left", "sigma", "ms", "detail",
    ])
    .align_right(3)
    .align_right(4)
    .align_right(5)
    .align_right(6);
    for n in &r.nodes {
        let [mode, rho, left, sigma] = node_privacy_text(n);
        t.push(vec![
            n.country.clone(),
            n.status.clone(),
            mode,
            rho,
            left,
            sigma,
            n.elapsed_ms.to_string(),
            n.detail.clone(),
        ]);
    }
    t
}

/// The text a terminal shows: node status, the regional table and a legend.
pub fn text(r: &Regional, per_node: bool) -> String {
    text_of(r, per_node, false)
}

/// Like [`text`], leaving out the rows of noisy figures not distinguishable from 0 (a zCDP
/// universe lists every cell, most of them empty) and saying how many were left out.
pub fn text_distinguishable(r: &Regional, per_node: bool) -> String {
    text_of(r, per_node, true)
}

fn text_of(r: &Regional, per_node: bool, only_distinguishable: bool) -> String {
    let hidden = |c: &RegionalCell| {
        only_distinguishable && matches!(c.shown(), Shown::NotDistinguishable { .. })
    };
    let mut out = String::new();
    out.push_str(&node_table(r).to_aligned());
    out.push('\n');
    out.push_str(&table_of(r, per_node, |c| !hidden(c)).to_aligned());
    let left_out = r.cells.iter().filter(|c| hidden(c)).count();
    if left_out > 0 {
        out.push_str(&format!(
            "({left_out} of {} cells not distinguishable from 0 are not shown.)\n",
            r.cells.len()
        ));
    }
    let shown: Vec<Shown> = r.cells.iter().map(RegionalCell::shown).collect();
    if shown.iter().any(|s| matches!(s, Shown::Estimate { .. })) {
        out.push_str("\nN ± H: noisy (zCDP) estimate; H = 1.96·SE, the half-width of its 95% interval (SE = √Σσ² over the nodes).\n");
    }
    if shown
        .iter()
        .any(|s| matches!(s, Shown::NotDistinguishable { .. }))
    {
        out.push_str("<U: not distinguishable from 0 (its 95% interval contains 0); the figure is below U.\n");
    }
    if r.cells
        .iter()
        .any(|c| matches!(c.status, CellStatus::Partial | CellStatus::Suppressed))
    {
        out.push_str("≥N: at least one node suppressed this cell; N is a lower bound.\n");
        out.push_str("suppressed: every node holding this cell withheld it.\n");
    }
    if r.nodes.iter().any(|n| n.privacy.is_some()) {
        out.push_str("rho: zCDP ρ this answer charged to each quarter it touches; rho_left: the least budget left over those quarters.\n");
    }
    if !r.coverage.complete() {
        out.push_str(&format!(
            "Only {} of {} nodes answered: every figure is a lower bound for the region.\n",
            r.coverage.answered, r.coverage.asked
        ));
    }
    out
}

/// The `value`, `se`, `ci95_low`, `ci95_high` of a figure as CSV fields (empty when absent).
fn figure_fields(s: Shown, se: f64) -> [String; 4] {
    let value = match s {
        Shown::Count(v) | Shown::AtLeast(v) => v.to_string(),
        Shown::Estimate { value, .. } => value.to_string(),
        Shown::NotDistinguishable { .. } | Shown::Suppressed => String::new(),
    };
    match s.interval() {
        Some((lo, hi)) => [
            value,
            format!("{se:.3}"),
            format!("{lo:.1}"),
            format!("{hi:.1}"),
        ],
        None => [value, String::new(), String::new(), String::new()],
    }
}

/// CSV: the key columns, `value`, `se`, `ci95_low`, `ci95_high`, `status`
/// (exact/noisy/partial/suppressed), `distinguishable` (noisy figures: `true` or `false`), and
/// with `per_node` one column per answering node (a number, a noisy value as `v ± h` or `<u`,
/// `suppressed:<reason>`, or empty for zero).
pub fn csv(r: &Regional, per_node: bool) -> String {
    let countries = answered(r);
    let mut header: Vec<String> = r.dimensions.iter().map(|d| d.code().to_string()).collect();
    for h in [
        "value",
        "se",
        "ci95_low",
        "ci95_high",
        "status",
        "distinguishable",
    ] {
        header.push(h.into());
    }
    if per_node {
        header.extend(countries.iter().cloned());
    }
    let mut t = Table::new(header);
    for c in &r.cells {
        let mut row = c.key.clone();
        let s = c.shown();
        row.extend(figure_fields(s, c.se));
        row.push(c.status.code().into());
        row.push(match s {
            Shown::Estimate { .. } => "true".into(),
            Shown::NotDistinguishable { .. } => "false".into(),
            _ => String::new(),
        });
        if per_node {
            for country in &countries {
                row.push(match c.nodes.get(country) {
                    None => String::new(),
                    Some(Contribution::Suppressed(reason)) => format!("suppressed:{reason}"),
                    Some(c) => contribution_shown(c).text(),
                });
            }
        }
        t.push(row);
    }
    t.to_csv()
}

/// One node's contribution in JSON: `{"value"}`, `{"noisy", "sigma"}` or `{"suppressed"}`.
fn contribution_json(c: &Contribution) -> serde_json::Value {
    match c {
        Contribution::Value(n) => json!({"value": n}),
        Contribution::Noisy { value, sigma } => json!({"noisy": value, "sigma": sigma}),
        Contribution::Suppressed(reason) => json!({"suppressed": reason.code()}),
    }
}

fn node_json(n: &NodeStatus) -> serde_json::Value {
    let mut v = json!({
        "country": n.country,
        "status": n.status,
        "detail": n.detail,
        "elapsed_ms": n.elapsed_ms,
    });
    if let Some(mode) = n.mode {
        v["mode"] = json!(mode.code());
    }
    if let Some(p) = &n.privacy {
        v["privacy"] = json!({
            "replayed": p.replayed,
            "rho_charged_micro": p.rho_charged_micro,
            "sigma": p.sigma,
            "privacy_unit": p.privacy_unit,
            "quarters": p.quarters.iter().map(|q| json!({
                "quarter": q.quarter,
                "rho_spent_micro": q.rho_spent_micro,
                "rho_left_micro": q.rho_left_micro,
                "caller_rho_left_micro": q.caller_rho_left_micro,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// JSON with a stable, versioned schema (docs/OUTPUTS.md, docs/schema/regional.v2.json).
pub fn json(r: &Regional) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = r
        .cells
        .iter()
        .map(|c| {
            let nodes: serde_json::Map<String, serde_json::Value> = c
                .nodes
                .iter()
                .map(|(k, v)| (k.to_string(), contribution_json(v)))
                .collect();
            let mut cell = json!({
                "key": c.key,
                "status": c.status.code(),
                "nodes": nodes,
            });
            let s = c.shown();
            match s {
                Shown::Count(v) | Shown::AtLeast(v) | Shown::Estimate { value: v, .. } => {
                    cell["value"] = json!(v);
                }
                Shown::NotDistinguishable { .. } | Shown::Suppressed => {}
            }
            if c.status != CellStatus::Suppressed {
                cell["lower_bound"] = json!(c.status == CellStatus::Partial);
            }
            if let Some((lo, hi)) = s.interval() {
                cell["se"] = json!(c.se);
                cell["ci95_low"] = json!(lo);
                cell["ci95_high"] = json!(hi);
                cell["distinguishable"] = json!(matches!(s, Shown::Estimate { .. }));
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
        "nodes": r.nodes.iter().map(node_json).collect::<Vec<_>>(),
        "cells": cells,
    })
}
