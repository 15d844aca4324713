//! Merge: regional cells from the nodes' released cells.
//!
//! A regional cell's value is the sum of the values the nodes released for that key. When any
//! node suppressed the key, the sum is only a lower bound and the cell is marked
//! [`CellStatus::Partial`] (or [`CellStatus::Suppressed`] when no node released a value): it is
//! never shown as exact. A node that did not answer makes every regional figure incomplete; that
//! is reported once for the whole table ([`Regional::coverage`]), and the per-node status says why.

use std::collections::BTreeMap;

use serde::Serialize;
use vrs_core::answer::CellValue;
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Unit};

use crate::fanout::{NodeOutcome, NodeResult};

/// How far a regional figure can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Every answering node that has this cell released it: the value is the sum.
    Exact,
    /// At least one node suppressed it: the value is a lower bound.
    Partial,
    /// Every node that has this cell suppressed it: no figure, lower bound 0.
    Suppressed,
}

/// One node's contribution to a regional cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contribution {
    /// A released value.
    Value(u64),
    /// A zCDP noisy value.
    Noisy(i64),
    /// Suppressed, with the node's reason.
    Suppressed(vrs_core::answer::SuppressionReason),
}

/// One regional cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionalCell {
    /// One value per dimension ("*" for a margin).
    pub key: Vec<String>,
    /// Sum of released node values (a lower bound unless `status` is exact).
    pub value: u64,
    /// Exact, partial or suppressed.
    pub status: CellStatus,
    /// Per node, what it released for this key (nodes without the key are absent: zero).
    pub nodes: BTreeMap<String, Contribution>,
}

/// A node's status line for the table header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The country.
    pub country: String,
    /// answered / pending_approval / refused / unreachable / timed_out.
    pub status: String,
    /// Reason or detail.
    pub detail: String,
    /// Milliseconds the node took.
    pub elapsed_ms: u64,
}

/// The merged regional answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Regional {
    /// The query id sent to the nodes.
    pub query_id: String,
    /// The unit counted.
    pub unit: Unit,
    /// Group-by dimensions.
    pub dimensions: Vec<Dimension>,
    /// Regional cells, sorted by key.
    pub cells: Vec<RegionalCell>,
    /// Per-node status, in registry order.
    pub nodes: Vec<NodeStatus>,
    /// Nodes that answered, of nodes asked.
    pub coverage: Coverage,
}

/// How many nodes contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Nodes that answered.
    pub answered: usize,
    /// Nodes asked.
    pub asked: usize,
}

impl Coverage {
    /// Whether every node answered.
    pub fn complete(&self) -> bool {
        self.answered == self.asked
    }
}

/// Merges node results into regional cells.
pub fn merge(
    query_id: &str,
    unit: Unit,
    dimensions: &[Dimension],
    results: &[NodeResult],
) -> Regional {
    let mut cells: BTreeMap<Vec<String>, RegionalCell> = BTreeMap::new();
    let mut answered = 0;
    for r in results {
        let NodeOutcome::Answered(answer) = &r.outcome else {
            continue;
        };
        if answer.dimensions != dimensions {
            continue;
        }
        answered += 1;
        for c in &answer.cells {
            let cell = cells.entry(c.key.clone()).or_insert_with(|| RegionalCell {
                key: c.key.clone(),
                value: 0,
                status: CellStatus::Exact,
                nodes: BTreeMap::new(),
            });
            let contribution = match c.value {
                CellValue::Released(v) => {
                    cell.value = cell.value.saturating_add(v);
                    Contribution::Value(v)
                }
                CellValue::Noisy(v) => {
                    cell.value = cell.value.saturating_add_signed(v);
                    Contribution::Noisy(v)
                }
                CellValue::Suppressed(reason) => Contribution::Suppressed(reason),
            };
            cell.nodes.insert(r.country.to_string(), contribution);
        }
    }
    for cell in cells.values_mut() {
        let released = cell
            .nodes
            .values()
            .any(|c| matches!(c, Contribution::Value(_) | Contribution::Noisy(_)));
        let suppressed = cell
            .nodes
            .values()
            .any(|c| matches!(c, Contribution::Suppressed(_)));
        cell.status = match (released, suppressed) {
            (_, false) => CellStatus::Exact,
            (true, true) => CellStatus::Partial,
            (false, true) => CellStatus::Suppressed,
        };
    }
    Regional {
        query_id: query_id.to_string(),
        unit,
        dimensions: dimensions.to_vec(),
        cells: cells.into_values().collect(),
        nodes: results
            .iter()
            .map(|r| {
                let mismatched =
                    matches!(&r.outcome, NodeOutcome::Answered(a) if a.dimensions != dimensions);
                NodeStatus {
                    country: r.country.to_string(),
                    status: if mismatched {
                        "refused"
                    } else {
                        r.outcome.label()
                    }
                    .to_string(),
                    detail: if mismatched {
                        "BAD_RESPONSE: the answer is grouped by other dimensions; not merged"
                            .to_string()
                    } else {
                        r.outcome.detail()
                    },
                    elapsed_ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect(),
        coverage: Coverage {
            answered,
            asked: results.len(),
        },
    }
}

/// Countries whose answers were merged.
pub fn answered_countries(results: &[NodeResult]) -> Vec<Country> {
    results
        .iter()
        .filter(|r| matches!(r.outcome, NodeOutcome::Answered(_)))
        .map(|r| r.country)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vrs_core::answer::{Answer, Cell, SuppressionReason};

    fn answered(country: &str, cells: &[(&str, Option<u64>)]) -> NodeResult {
        NodeResult {
            country: country.parse().unwrap(),
            outcome: NodeOutcome::Answered(Answer {
                dimensions: vec![Dimension::Mode],
                cells: cells
                    .iter()
                    .map(|(k, v)| Cell {
                        key: vec![k.to_string()],
                        value: v.map_or(
                            CellValue::Suppressed(SuppressionReason::BelowThreshold),
                            CellValue::Released,
                        ),
                    })
                    .collect(),
                privacy: None,
            }),
            elapsed: Duration::from_millis(3),
        }
    }

    #[test]
    fn sums_released_values_and_marks_partial_cells() {
        let results = vec![
            answered("THA", &[("land", Some(10)), ("sea", None), ("air", None)]),
            answered("IDN", &[("land", Some(7)), ("sea", Some(20))]),
            NodeResult {
                country: "MYS".parse().unwrap(),
                outcome: NodeOutcome::TimedOut,
                elapsed: Duration::from_secs(5),
            },
        ];
        let r = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        let get = |k: &str| r.cells.iter().find(|c| c.key[0] == k).unwrap();
        assert_eq!(
            (get("land").value, get("land").status),
            (17, CellStatus::Exact)
        );
        assert_eq!(
            (get("sea").value, get("sea").status),
            (20, CellStatus::Partial)
        );
        assert_eq!(
            (get("air").value, get("air").status),
            (0, CellStatus::Suppressed)
        );
        assert_eq!(
            r.coverage,
            Coverage {
                answered: 2,
                asked: 3
            }
        );
        assert_eq!(r.nodes[2].status, "timed_out");
    }

    #[test]
    fn an_answer_grouped_by_other_dimensions_is_not_merged_nor_reported_as_answered() {
        let mut odd = answered("IDN", &[("2024", Some(50))]);
        if let NodeOutcome::Answered(a) = &mut odd.outcome {
            a.dimensions = vec![Dimension::Year];
        }
        let results = vec![answered("THA", &[("land", Some(10))]), odd];
        let r = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        assert_eq!(r.cells.len(), 1);
        assert_eq!(
            r.coverage,
            Coverage {
                answered: 1,
                asked: 2
            }
        );
        assert_eq!(r.nodes[1].status, "refused");
        assert!(r.nodes[1].detail.starts_with("BAD_RESPONSE"));
    }

    #[test]
    fn a_suppressed_cell_never_contributes_a_value() {
        let results = vec![answered("THA", &[("sea", None)])];
        let r = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        assert_eq!(r.cells[0].value, 0);
        assert!(matches!(
            r.cells[0].nodes["THA"],
            Contribution::Suppressed(_)
        ));
    }
}
