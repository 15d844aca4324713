//! How a node shows its operator a released answer: the same cells the federation would get,
//! as an aligned table, CSV or JSON. Suppressed cells show their reason, never a value.

use serde_json::json;
use vrs_core::answer::{Answer, CellValue};
use vrs_core::codes::Country;
use vrs_core::query::Unit;
use vrs_core::table::Table;

/// The answer's cells in the order a reader expects (fee bands by amount,
/// [`vrs_core::query::compare_keys`]); the answer itself keeps its wire order.
fn in_reading_order(answer: &Answer) -> Vec<&vrs_core::answer::Cell> {
    let mut cells: Vec<&vrs_core::answer::Cell> = answer.cells.iter().collect();
    cells.sort_by(|a, b| vrs_core::query::compare_keys(&answer.dimensions, &a.key, &b.key));
    cells
}

/// Text shown in place of a suppressed value.
pub fn suppressed_label(reason: vrs_core::answer::SuppressionReason) -> String {
    format!("suppressed ({reason})")
}

/// The answer as a table: one column per dimension, then the unit.
pub fn table(unit: Unit, answer: &Answer) -> Table {
    let mut header: Vec<String> = answer
        .dimensions
        .iter()
        .map(|d| d.code().to_string())
        .collect();
    header.push(unit.code().to_string());
    let value_col = header.len() - 1;
    let mut t = Table::new(header).align_right(value_col);
    for c in in_reading_order(answer) {
        let mut row = c.key.clone();
        row.push(match c.value {
            CellValue::Released(v) => v.to_string(),
            CellValue::Noisy(v) => match &answer.privacy {
                Some(p) => format!("{v} ± {:.1}", 1.96 * p.sigma),
                None => v.to_string(),
            },
            CellValue::Suppressed(r) => suppressed_label(r),
        });
        t.push(row);
    }
    t
}

/// The answer as CSV: one column per dimension, then `value` (empty when suppressed), `status`
/// (`released` or `suppressed`) and `reason` (the suppression reason, or empty).
pub fn csv(answer: &Answer) -> String {
    let mut header: Vec<String> = answer
        .dimensions
        .iter()
        .map(|d| d.code().to_string())
        .collect();
    header.extend([
        "value".to_string(),
        "status".to_string(),
        "reason".to_string(),
    ]);
    let mut t = Table::new(header);
    for c in in_reading_order(answer) {
        let mut row = c.key.clone();
        match c.value {
            CellValue::Released(v) => row.extend([v.to_string(), "released".into(), String::new()]),
            CellValue::Noisy(v) => row.extend([v.to_string(), "noisy".into(), String::new()]),
            CellValue::Suppressed(r) => {
                row.extend([String::new(), "suppressed".into(), r.code().into()])
            }
        }
        t.push(row);
    }
    t.to_csv()
}

/// The answer as JSON: `{"country","unit","dimensions","cells":[{"key":[..],"value":N}|{"key":[..],"suppressed":"reason"}]}`.
pub fn json(country: Country, unit: Unit, answer: &Answer) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = in_reading_order(answer)
        .into_iter()
        .map(|c| match c.value {
            CellValue::Released(v) => json!({"key": c.key, "value": v}),
            CellValue::Noisy(v) => json!({"key": c.key, "noisy": v}),
            CellValue::Suppressed(r) => json!({"key": c.key, "suppressed": r.code()}),
        })
        .collect();
    json!({
        "schema": "vrs.node-answer.v1",
        "country": country.as_str(),
        "unit": unit.code(),
        "dimensions": answer.dimensions.iter().map(|d| d.code()).collect::<Vec<_>>(),
        "cells": cells,
    })
}

/// The operator's zCDP preview as text: what the query would cost, then one possible release
/// (and, with `explain`, each cell's exact value and the noise drawn — local only).
pub fn preview_text(unit: Unit, p: &crate::release::Preview, explain: bool) -> String {
    use crate::disclosure::zcdp::rho_of;
    let mut out = String::new();
    let quarters: Vec<String> = p
        .plan
        .universe
        .quarters
        .iter()
        .map(|q| crate::universe::quarter_label_of(*q))
        .collect();
    out.push_str(&format!(
        "PREVIEW, not a release: a query from a coordinator would spend rho {} on each of {} quarter(s) ({}); sigma {:.3} (95% of values within ±{:.1}); {} cells; privacy unit: {}.\n",
        rho_of(p.plan.rho_micro),
        quarters.len(),
        quarters.join(", "),
        p.plan.sigma.as_f64(),
        1.96 * p.plan.sigma.as_f64(),
        p.plan.universe.keys.len(),
        crate::disclosure::zcdp::privacy_unit(unit),
    ));
    if let Some(short) = p
        .quarters
        .iter()
        .find(|q| q.rho_left_micro < p.plan.rho_micro)
    {
        out.push_str(&format!(
            "It would be REFUSED: quarter {} has rho {} left.\n",
            short.quarter,
            rho_of(short.rho_left_micro)
        ));
    }
    out.push('\n');
    out.push_str(&table(unit, &p.answer).to_aligned());
    if explain {
        out.push_str("\nexact values and the noise drawn for this preview (never sent):\n");
        for n in &p.noisy {
            out.push_str(&format!(
                "{}: exact {}, noise {:+}\n",
                n.key.join(" / "),
                n.exact,
                n.noise
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_core::answer::Cell;
    use vrs_core::query::Dimension;

    #[test]
    fn fee_bands_are_shown_by_amount_in_every_format() {
        let answer = Answer {
            dimensions: vec![Dimension::FeeBand],
            // Code order, as the answer is released and digested.
            cells: ["0-499", "1000-2499", "10000+", "500-999"]
                .iter()
                .map(|k| Cell {
                    key: vec![k.to_string()],
                    value: CellValue::Released(7),
                })
                .collect(),
            privacy: None,
        };
        let want = ["0-499", "500-999", "1000-2499", "10000+"];
        let first_column = |text: &str, skip: usize| -> Vec<String> {
            text.lines()
                .skip(skip)
                .map(|l| l.split([' ', ',']).next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            first_column(&table(Unit::Fees, &answer).to_aligned(), 2),
            want
        );
        assert_eq!(first_column(&csv(&answer), 1), want);
        let doc = json("THA".parse().unwrap(), Unit::Fees, &answer);
        let keys: Vec<&str> = doc["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"][0].as_str().unwrap())
            .collect();
        assert_eq!(keys, want);
    }
}
