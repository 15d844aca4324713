//! Released answers: cells that are either a released value or suppressed with a reason.
//!
//! This is the only shape in which numbers leave a node. A suppressed cell carries its reason
//! and nothing else: no value, no bound, no hint.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::query::Dimension;

/// Key part that marks a margin: the total over that dimension.
pub const MARGIN: &str = "*";

/// Why a cell was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The count is below the policy's `min_count`.
    BelowThreshold,
    /// Fewer distinct incidents contribute than the policy's `min_contributors`.
    TooFewContributors,
    /// One contributor dominates a magnitude cell (p% rule).
    Dominance,
    /// Withheld so that another suppressed cell cannot be recomputed by subtraction.
    Complementary,
}

impl SuppressionReason {
    /// Stable code, as shown in tables and exports.
    pub const fn code(self) -> &'static str {
        match self {
            SuppressionReason::BelowThreshold => "threshold",
            SuppressionReason::TooFewContributors => "contributors",
            SuppressionReason::Dominance => "dominance",
            SuppressionReason::Complementary => "complementary",
        }
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What is released for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellValue {
    /// The released value (after perturbation and rounding).
    Released(u64),
    /// Withheld, with the reason.
    Suppressed(SuppressionReason),
}

impl CellValue {
    /// The released value, if any.
    pub fn released(self) -> Option<u64> {
        match self {
            CellValue::Released(v) => Some(v),
            CellValue::Suppressed(_) => None,
        }
    }
}

/// One released cell: a key (one value per group-by dimension, [`MARGIN`] for a total) and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// One value per dimension, in the query's order.
    pub key: Vec<String>,
    /// Released value or suppression.
    pub value: CellValue,
}

impl Cell {
    /// Whether any key part is a margin.
    pub fn is_margin(&self) -> bool {
        self.key.iter().any(|k| k == MARGIN)
    }
}

/// A node's released answer to one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The group-by dimensions, in the order of each cell's key.
    pub dimensions: Vec<Dimension>,
    /// Released and suppressed cells, sorted by key; zero cells are not listed.
    pub cells: Vec<Cell>,
}
