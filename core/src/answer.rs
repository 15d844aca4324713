//! Released answers: cells that are either a released value or suppressed with a reason.
//!
//! This is the only shape in which numbers leave a node. A suppressed cell carries its reason
//! and nothing else: no value, no bound, no hint. In the default (zCDP) protection mode every
//! value is [`CellValue::Noisy`] and the answer's [`ReleasePrivacy`] says what it cost and how
//! noisy it is; in the older rules mode values are [`CellValue::Released`].

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
    /// zCDP mode: the *noisy* value is below the published threshold (post-processing).
    NoisyBelowThreshold,
}

impl SuppressionReason {
    /// Stable code, as shown in tables and exports.
    pub const fn code(self) -> &'static str {
        match self {
            SuppressionReason::BelowThreshold => "threshold",
            SuppressionReason::TooFewContributors => "contributors",
            SuppressionReason::Dominance => "dominance",
            SuppressionReason::Complementary => "complementary",
            SuppressionReason::NoisyBelowThreshold => "noisy_threshold",
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
    /// Rules mode: the released value (after perturbation and rounding).
    Released(u64),
    /// zCDP mode: the exact value plus discrete Gaussian noise (may be small or negative); its
    /// standard deviation is the answer's [`ReleasePrivacy::sigma`].
    Noisy(i64),
    /// Withheld, with the reason.
    Suppressed(SuppressionReason),
}

impl CellValue {
    /// The released rules-mode value, if any (`None` for noisy and suppressed cells).
    pub fn released(self) -> Option<u64> {
        match self {
            CellValue::Released(v) => Some(v),
            CellValue::Noisy(_) | CellValue::Suppressed(_) => None,
        }
    }

    /// The released value as a signed number, whatever the mode (`None` when suppressed).
    pub fn value(self) -> Option<i64> {
        match self {
            CellValue::Released(v) => Some(i64::try_from(v).unwrap_or(i64::MAX)),
            CellValue::Noisy(v) => Some(v),
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The group-by dimensions, in the order of each cell's key.
    pub dimensions: Vec<Dimension>,
    /// Released and suppressed cells, sorted by key. zCDP mode: every cell of the query's
    /// data-independent universe; rules mode: zero cells are not listed.
    pub cells: Vec<Cell>,
    /// What the release cost and how noisy it is; `None` in rules mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<ReleasePrivacy>,
}

impl Answer {
    /// Hex SHA-256 over the JSON rendering of the answer: what a node records in its audit log
    /// and sends as `answer_digest`, and what the coordinator recomputes from the cells it
    /// received. Both sides hash this one rendering of this one type, so they agree byte for byte.
    ///
    /// The rendering is streamed into the hash through a buffer, never held whole; an answer
    /// that cannot be rendered hashes as the empty rendering, as it always has.
    pub fn digest(&self) -> String {
        let mut out = std::io::BufWriter::with_capacity(DIGEST_BUFFER, Sha256Writer::new());
        let rendered = serde_json::to_writer(&mut out, self).is_ok();
        let digest = match out.into_inner() {
            Ok(hashed) if rendered => hashed.0.finish(),
            _ => ring::digest::digest(&ring::digest::SHA256, b""),
        };
        hex::encode(digest)
    }

    /// The protection the answer was released under: zCDP when it carries its privacy
    /// accounting, the v1 rules otherwise.
    pub fn mode(&self) -> ProtectionMode {
        if self.privacy.is_some() {
            ProtectionMode::Zcdp
        } else {
            ProtectionMode::RulesV1
        }
    }
}

/// Bytes of the answer's JSON rendering hashed at a time by [`Answer::digest`].
const DIGEST_BUFFER: usize = 64 * 1024;

/// A writer that hashes what is written to it (SHA-256).
struct Sha256Writer(ring::digest::Context);

impl Sha256Writer {
    fn new() -> Sha256Writer {
        Sha256Writer(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Which protection a node applies to what it releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionMode {
    /// Zero-concentrated differential privacy with a finite budget per reference quarter.
    Zcdp,
    /// Version 1 rules (threshold, suppression, bounded cell-key noise): not protected against
    /// many different queries.
    RulesV1,
}

impl ProtectionMode {
    /// Stable code.
    pub const fn code(self) -> &'static str {
        match self {
            ProtectionMode::Zcdp => "zcdp",
            ProtectionMode::RulesV1 => "rules_v1",
        }
    }
}

impl fmt::Display for ProtectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Millionths of zCDP ρ: budgets and charges are integers so that a ledger never drifts.
pub const MICRO_RHO: u64 = 1_000_000;

/// One reference quarter's privacy-loss budget, as a node publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterBudget {
    /// `YYYY-Qn`.
    pub quarter: String,
    /// Spent by all callers, in micro-ρ.
    pub rho_spent_micro: u64,
    /// Left of the node's budget for the quarter, in micro-ρ.
    pub rho_left_micro: u64,
    /// Left of the asking caller's own share, in micro-ρ.
    pub caller_rho_left_micro: u64,
}

/// What a zCDP release cost and how noisy its values are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasePrivacy {
    /// Hex SHA-256 of the canonical query and the store's data version.
    pub release_id: String,
    /// The same release was asked before: the stored answer, charged nothing now.
    pub replayed: bool,
    /// ρ charged to every touched quarter when first released, in micro-ρ.
    pub rho_micro: u64,
    /// Squared L2 sensitivity of the released vector for one privacy unit.
    pub l2_sensitivity_squared: u64,
    /// `person` or `incident`.
    pub privacy_unit: String,
    /// Standard deviation of the noise in every released value.
    pub sigma: f64,
    /// Noisy values below this were suppressed (0: none were).
    pub threshold: f64,
    /// Budget of every touched quarter after this release.
    pub quarters: Vec<QuarterBudget>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest as it was first defined: SHA-256 of the whole JSON rendering in memory.
    fn digest_of_rendering(answer: &Answer) -> String {
        let text = serde_json::to_vec(answer).unwrap();
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &text))
    }

    fn answer(cells: usize, privacy: bool) -> Answer {
        let values = [
            CellValue::Noisy(-3),
            CellValue::Released(12),
            CellValue::Suppressed(SuppressionReason::NoisyBelowThreshold),
            CellValue::Noisy(i64::MAX),
        ];
        Answer {
            dimensions: vec![Dimension::Origin, Dimension::Quarter],
            cells: (0..cells)
                .map(|i| Cell {
                    key: vec![format!("C{:02}\"é", i / 8), format!("2024-Q{}", i % 8)],
                    value: values[i % values.len()],
                })
                .collect(),
            privacy: privacy.then(|| ReleasePrivacy {
                release_id: "ab".repeat(32),
                replayed: false,
                rho_micro: 50_000,
                l2_sensitivity_squared: 4,
                privacy_unit: "incident".into(),
                sigma: 3.162_277_660_168_379_5,
                threshold: 0.1,
                quarters: vec![QuarterBudget {
                    quarter: "2024-Q1".into(),
                    rho_spent_micro: 50_000,
                    rho_left_micro: 950_000,
                    caller_rho_left_micro: 450_000,
                }],
            }),
        }
    }

    #[test]
    fn the_streamed_digest_is_the_digest_of_the_whole_rendering() {
        // Empty, small, and renderings several times the hashing buffer.
        for cells in [0, 1, 7, 4_000, 20_000] {
            for privacy in [false, true] {
                let a = answer(cells, privacy);
                assert_eq!(a.digest(), digest_of_rendering(&a), "{cells} cells");
            }
        }
    }

    #[test]
    fn the_digest_of_a_known_answer_does_not_change() {
        // A protocol value: nodes record it in their audit logs.
        assert_eq!(
            answer(3, true).digest(),
            "9c16bd7439c832573f5383f0cab2cb9f6c2ede617f51792f79cf7020f9d7acd2"
        );
    }
}
