//! Planning with the privacy-loss budget: what a query would cost before anything is spent,
//! and what every node has left.
//!
//! [`dry_run`] sends a query to every node's `Plan` ([`Federation::plan_with_id`]): no record is
//! read, no budget spent, and the query id is not consumed, so the same id can be asked for
//! real afterwards (`vrs-coordinator query --query-id`). [`plan_table`] shows per node whether
//! it would answer or why not, the ρ it would charge to each touched quarter, the quarters, σ and
//! the number of cells. [`budgets`] collects every node's remaining budget per quarter from
//! `Describe`; [`budget_table`], [`budget_csv`] and [`budget_json`] print it.
//!
//! [`fit_universe`] keeps a question under the nodes' `max_cells`: a `route` (or origin ×
//! destination) universe is every pair of published countries (≈63,000 cells), so route
//! questions ask for destinations in the federation ([`federation_destinations`]) and, when a
//! node's plan still says `UNIVERSE_TOO_LARGE`, origins in the federation too. [`spend`] adds up
//! what a set of answers charged each node per quarter ([`spend_text`]: how many quarters'
//! budgets a report spends).
//!
//! ρ is shown as ρ (`0.050`); the wire and the ledgers count integer micro-ρ ([`MICRO_RHO`]).

use std::collections::BTreeMap;

use serde_json::json;
use vrs_core::answer::{MICRO_RHO, QuarterBudget};
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Query, QueryError, QueryLimits, RawQuery};
use vrs_core::table::Table;

use crate::fanout::{FanoutError, Federation, NodeDescription, NodeOutcome, PlanResult};
use crate::merge::Regional;
use crate::output::rho_text;

/// Why a ρ asked on the command line is not usable.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Not a finite number in (0, 1000].
    #[error("rho must be a positive number of at most 1000 (e.g. 0.05)")]
    BadRho,
}

/// ρ as written (`0.05`) in micro-ρ (`50000`); a ρ that rounds to 0 micro-ρ is refused.
pub fn rho_micro(rho: f64) -> Result<u64, BudgetError> {
    if !rho.is_finite() || rho <= 0.0 || rho > 1000.0 {
        return Err(BudgetError::BadRho);
    }
    let micro = (rho * MICRO_RHO as f64).round();
    if micro < 1.0 {
        return Err(BudgetError::BadRho);
    }
    Ok(micro as u64)
}

/// Plans `query` on every node under a fresh query id; returns the id and the plans.
pub async fn dry_run(
    fed: &Federation,
    query: &Query,
    query_id: Option<&str>,
) -> Result<(String, Vec<PlanResult>), FanoutError> {
    match query_id {
        Some(id) => Ok((id.to_string(), fed.plan_with_id(query, id).await)),
        None => fed.plan(query).await,
    }
}

/// Whether a question's universe crosses origins with destinations (`route`, or both sides).
fn crosses_countries(raw: &RawQuery) -> bool {
    let by = |d: Dimension| raw.group_by.iter().any(|g| g == d.code());
    by(Dimension::Route) || (by(Dimension::Origin) && by(Dimension::Destination))
}

/// Adds `dimension ∈ countries` to `raw` unless it already filters that dimension.
fn add_country_filter(raw: &mut RawQuery, dimension: Dimension, countries: &[Country]) {
    if raw.filters.iter().any(|(d, _)| d == dimension.code()) {
        return;
    }
    raw.filters.push((
        dimension.code().to_string(),
        countries.iter().map(|c| c.to_string()).collect(),
    ));
}

/// A question whose universe crosses origins with destinations, asked for destinations in
/// the federation only (the nodes' own countries); other questions unchanged.
pub fn federation_destinations(raw: &RawQuery, countries: &[Country]) -> RawQuery {
    let mut raw = raw.clone();
    if crosses_countries(&raw) {
        add_country_filter(&mut raw, Dimension::Destination, countries);
    }
    raw
}

/// `raw` narrowed until no node's plan refuses it as `UNIVERSE_TOO_LARGE`: first destinations
/// in the federation, then origins in the federation too. Planning reads and spends nothing.
/// A question that still does not fit is returned narrowed; the nodes will say why they refuse.
pub async fn fit_universe(
    fed: &Federation,
    raw: &RawQuery,
    limits: &QueryLimits,
) -> Result<Query, FitError> {
    let countries = fed.countries();
    let first = federation_destinations(raw, &countries);
    let query = Query::parse(&first, limits)?;
    if !crosses_countries(&first) {
        return Ok(query);
    }
    let (_, plans) = fed.plan(&query).await?;
    let too_large = plans.iter().any(
        |p| matches!(&p.outcome, Ok(plan) if plan.refusal.as_deref() == Some("UNIVERSE_TOO_LARGE")),
    );
    if !too_large {
        return Ok(query);
    }
    let mut narrow = first;
    add_country_filter(&mut narrow, Dimension::Origin, &countries);
    Ok(Query::parse(&narrow, limits)?.with_rho_micro(query.rho_micro()))
}

/// Why a question could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The question is not valid.
    #[error("invalid question")]
    Query(#[from] QueryError),
    /// Planning failed to start.
    #[error(transparent)]
    Fanout(#[from] FanoutError),
}

/// What a set of answers charged one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpend {
    /// The node.
    pub country: String,
    /// Quarters charged at all.
    pub quarters: usize,
    /// ρ charged to the most-charged quarter, in micro-ρ.
    pub max_quarter_micro: u64,
    /// ρ charged over all quarters, in micro-ρ ("quarter-ρ").
    pub total_micro: u64,
    /// The lifetime budget of one quarter (spent + left), in micro-ρ; 0 when unknown.
    pub quarter_budget_micro: u64,
}

impl NodeSpend {
    /// How many whole quarters' budgets the answers spent (total / one quarter's budget).
    pub fn quarter_budgets(&self) -> f64 {
        if self.quarter_budget_micro == 0 {
            return 0.0;
        }
        self.total_micro as f64 / self.quarter_budget_micro as f64
    }
}

/// Adds up, per zCDP node, what `answers` charged to each quarter (replays charge nothing).
pub fn spend<'a>(answers: impl IntoIterator<Item = &'a Regional>) -> Vec<NodeSpend> {
    let mut per: BTreeMap<String, (BTreeMap<String, u64>, u64)> = BTreeMap::new();
    for r in answers {
        for n in &r.nodes {
            let Some(p) = &n.privacy else { continue };
            let entry = per.entry(n.country.clone()).or_default();
            for q in &p.quarters {
                *entry.0.entry(q.quarter.clone()).or_default() += p.rho_charged_micro;
                entry.1 = entry
                    .1
                    .max(q.rho_spent_micro.saturating_add(q.rho_left_micro));
            }
        }
    }
    per.into_iter()
        .map(|(country, (quarters, budget))| NodeSpend {
            country,
            quarters: quarters.len(),
            max_quarter_micro: quarters.values().copied().max().unwrap_or(0),
            total_micro: quarters.values().sum(),
            quarter_budget_micro: budget,
        })
        .collect()
}

/// A heading naming `what` was asked, then one line per node: the ρ charged to its most-charged
/// quarter (and its share of that quarter's budget), and how many quarters' budgets were spent
/// in all (Σ ρ over quarters ÷ one quarter's budget).
pub fn spend_text(what: &str, spends: &[NodeSpend]) -> String {
    if spends.is_empty() {
        return format!(
            "Privacy-loss budget spent by {what}: none (no zCDP node charged anything).\n"
        );
    }
    let mut out = format!(
        "Privacy-loss budget spent by {what}, per zCDP node (replayed releases are free):\n"
    );
    for s in spends {
        let share = if s.quarter_budget_micro == 0 {
            String::new()
        } else {
            format!(
                " ({:.0}% of a quarter's budget of {})",
                100.0 * s.max_quarter_micro as f64 / s.quarter_budget_micro as f64,
                rho_text(s.quarter_budget_micro)
            )
        };
        out.push_str(&format!(
            "  {}: ρ {} on the most-charged of {} quarters{share}; {:.2} quarters' budgets in all (Σ ρ over quarters {})\n",
            s.country,
            rho_text(s.max_quarter_micro),
            s.quarters,
            s.quarter_budgets(),
            rho_text(s.total_micro),
        ));
    }
    out
}

/// Quarters as a short range: `2023-Q1..2024-Q4 (8)`, or the one quarter.
fn quarters_text(quarters: &[QuarterBudget]) -> String {
    match quarters {
        [] => "-".into(),
        [one] => one.quarter.clone(),
        [first, .., last] => format!("{}..{} ({})", first.quarter, last.quarter, quarters.len()),
    }
}

/// The dry run as a table: per node, whether it would answer (or its refusal), ρ per touched
/// quarter, the quarters, the least budget left over them before the query, σ and cells.
pub fn plan_table(plans: &[PlanResult]) -> Table {
    let mut t = Table::new([
        "node", "would", "rho", "quarters", "rho_left", "sigma", "cells", "detail",
    ])
    .align_right(2)
    .align_right(4)
    .align_right(5)
    .align_right(6);
    for p in plans {
        let dash = || "-".to_string();
        let row = match &p.outcome {
            Err(outcome) => vec![
                p.country.to_string(),
                outcome.label().to_string(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                outcome.detail(),
            ],
            Ok(plan) => {
                let (rho, quarters, left, sigma, detail) = match &plan.privacy {
                    None => (
                        dash(),
                        dash(),
                        dash(),
                        dash(),
                        "rules_v1: no privacy-loss budget".to_string(),
                    ),
                    Some(pr) => (
                        if pr.replayed {
                            "0 (replayed)".into()
                        } else {
                            rho_text(pr.rho_micro)
                        },
                        quarters_text(&pr.quarters),
                        pr.quarters
                            .iter()
                            .map(|q| q.caller_rho_left_micro)
                            .min()
                            .map_or_else(dash, rho_text),
                        format!("{:.2}", pr.sigma),
                        format!("zcdp, {} unit", pr.privacy_unit),
                    ),
                };
                vec![
                    p.country.to_string(),
                    if plan.would_answer {
                        "answer".into()
                    } else {
                        "refuse".into()
                    },
                    rho,
                    quarters,
                    left,
                    sigma,
                    plan.cells.to_string(),
                    match &plan.refusal {
                        Some(reason) => reason.clone(),
                        None => detail,
                    },
                ]
            }
        };
        t.push(row);
    }
    t
}

/// The text a terminal shows for a dry run.
pub fn plan_text(query_id: &str, plans: &[PlanResult]) -> String {
    let mut out = plan_table(plans).to_aligned();
    out.push_str(&format!(
        "\nDry run: nothing was read or spent. To ask for real under the same id: --query-id {query_id}\n"
    ));
    out.push_str("rho: zCDP ρ the query would charge to each quarter it touches; rho_left: the least of this coordinator's budget left over those quarters now.\n");
    out
}

/// The dry run as JSON (`vrs.plan.v1`).
pub fn plan_json(query_id: &str, plans: &[PlanResult]) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| match &p.outcome {
            Err(o) => {
                json!({"country": p.country.as_str(), "status": o.label(), "detail": o.detail()})
            }
            Ok(plan) => {
                let mut v = json!({
                    "country": p.country.as_str(),
                    "status": "planned",
                    "would_answer": plan.would_answer,
                    "cells": plan.cells,
                });
                if let Some(r) = &plan.refusal {
                    v["refusal"] = json!(r);
                }
                if let Some(pr) = &plan.privacy {
                    v["privacy"] = json!({
                        "replayed": pr.replayed,
                        "rho_micro": pr.rho_micro,
                        "sigma": pr.sigma,
                        "l2_sensitivity_squared": pr.l2_sensitivity_squared,
                        "privacy_unit": pr.privacy_unit,
                        "quarters": pr.quarters.iter().map(quarter_json).collect::<Vec<_>>(),
                    });
                }
                v
            }
        })
        .collect();
    json!({"schema": "vrs.plan.v1", "query_id": query_id, "dry_run": true, "nodes": nodes})
}

fn quarter_json(q: &QuarterBudget) -> serde_json::Value {
    json!({
        "quarter": q.quarter,
        "rho_spent_micro": q.rho_spent_micro,
        "rho_left_micro": q.rho_left_micro,
        "caller_rho_left_micro": q.caller_rho_left_micro,
    })
}

/// Every node's description (its budget per quarter), or why it gave none.
pub async fn budgets(fed: &Federation) -> Vec<(Country, Result<NodeDescription, NodeOutcome>)> {
    fed.describe().await
}

/// One row per node and quarter: spent by all callers, left of the node's budget, left of this
/// coordinator's share. A rules-mode node has one row saying so; a node that did not describe
/// itself has one row with its outcome.
pub fn budget_table(described: &[(Country, Result<NodeDescription, NodeOutcome>)]) -> Table {
    let mut t = Table::new([
        "node",
        "mode",
        "quarter",
        "spent",
        "left",
        "caller_left",
        "of",
    ])
    .align_right(3)
    .align_right(4)
    .align_right(5)
    .align_right(6);
    for (country, d) in described {
        match d {
            Err(o) => t.push(vec![
                country.to_string(),
                o.label().into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                o.detail(),
            ]),
            Ok(d) if d.budget.is_empty() => t.push(vec![
                country.to_string(),
                d.mode.code().into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
            Ok(d) => {
                let of = d
                    .privacy
                    .as_ref()
                    .map_or_else(|| "-".into(), |p| rho_text(p.rho_per_quarter_micro));
                for q in &d.budget {
                    t.push(vec![
                        country.to_string(),
                        d.mode.code().into(),
                        q.quarter.clone(),
                        rho_text(q.rho_spent_micro),
                        rho_text(q.rho_left_micro),
                        rho_text(q.caller_rho_left_micro),
                        of.clone(),
                    ]);
                }
            }
        }
    }
    t
}

/// The budget table as text, with a legend.
pub fn budget_text(described: &[(Country, Result<NodeDescription, NodeOutcome>)]) -> String {
    let mut out = budget_table(described).to_aligned();
    out.push_str("\nρ per reference quarter (zCDP): spent by all callers, left of the node's budget, left of this coordinator's share, of the lifetime budget per quarter.\n");
    out
}

/// The budget table as CSV (ρ in micro-ρ, integers).
pub fn budget_csv(described: &[(Country, Result<NodeDescription, NodeOutcome>)]) -> String {
    let mut t = Table::new([
        "node",
        "mode",
        "quarter",
        "rho_spent_micro",
        "rho_left_micro",
        "caller_rho_left_micro",
        "rho_per_quarter_micro",
        "status",
    ]);
    for (country, d) in described {
        match d {
            Err(o) => t.push(vec![
                country.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                o.label().into(),
            ]),
            Ok(d) => {
                let of = d
                    .privacy
                    .as_ref()
                    .map_or_else(String::new, |p| p.rho_per_quarter_micro.to_string());
                for q in &d.budget {
                    t.push(vec![
                        country.to_string(),
                        d.mode.code().into(),
                        q.quarter.clone(),
                        q.rho_spent_micro.to_string(),
                        q.rho_left_micro.to_string(),
                        q.caller_rho_left_micro.to_string(),
                        of.clone(),
                        "described".into(),
                    ]);
                }
                if d.budget.is_empty() {
                    t.push(vec![
                        country.to_string(),
                        d.mode.code().into(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        "described".into(),
                    ]);
                }
            }
        }
    }
    t.to_csv()
}

/// The budgets as JSON (`vrs.budget.v1`).
pub fn budget_json(
    described: &[(Country, Result<NodeDescription, NodeOutcome>)],
) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = described
        .iter()
        .map(|(country, d)| match d {
            Err(o) => json!({"country": country.as_str(), "status": o.label(), "detail": o.detail()}),
            Ok(d) => json!({
                "country": country.as_str(),
                "status": "described",
                "mode": d.mode.code(),
                "rho_per_quarter_micro": d.privacy.as_ref().map(|p| p.rho_per_quarter_micro),
                "caller_rho_per_quarter_micro": d.privacy.as_ref().map(|p| p.caller_rho_per_quarter_micro),
                "quarters": d.budget.iter().map(quarter_json).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({"schema": "vrs.budget.v1", "nodes": nodes})
}

/// One line per node for `vrs-coordinator describe`.
pub fn description_line(country: Country, d: &Result<NodeDescription, NodeOutcome>) -> String {
    match d {
        Err(o) => format!("{country}: {} ({})", o.label(), o.detail()),
        Ok(d) => {
            let mut line = format!(
                "{country}: {} mode, schema v{}, coverage {}..{}, units [{}], {} dimensions",
                d.mode,
                d.schema_version,
                d.first_period,
                d.last_period,
                d.units.join(", "),
                d.dimensions.len(),
            );
            match &d.privacy {
                Some(p) => line.push_str(&format!(
                    ", ρ per quarter {}, default ρ {} (allowed {}..{}), max {} cells",
                    rho_text(p.rho_per_quarter_micro),
                    rho_text(p.default_rho_micro),
                    rho_text(p.min_rho_micro),
                    rho_text(p.max_rho_micro),
                    p.max_cells
                )),
                None => line.push_str(&format!(
                    ", min_count {}, min_contributors {}, perturbation {} (NOT protected against many queries)",
                    d.policy.min_count,
                    d.policy.min_contributors,
                    if d.policy.perturbation { "on" } else { "off" },
                )),
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_is_converted_to_micro_rho_and_nonsense_refused() {
        assert_eq!(rho_micro(0.05).unwrap(), 50_000);
        assert_eq!(rho_micro(1.0).unwrap(), 1_000_000);
        for bad in [0.0, -0.1, f64::NAN, f64::INFINITY, 1e-9, 5000.0] {
            assert!(rho_micro(bad).is_err(), "{bad}");
        }
    }
}
