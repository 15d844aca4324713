//! Merge: regional cells from the nodes' released cells.
//!
//! A regional cell's value is the sum of what the nodes released for that key, signed: a zCDP
//! node releases every cell of its universe with discrete Gaussian noise (small and negative
//! values included, which keeps the sum unbiased), and the regional standard error is
//! `√Σσ²` over the noisy contributions ([`RegionalCell::se`]); a rules-mode node's released value
//! adds no σ. When any node suppressed the key (a rules-mode suppression, or a zCDP node's noisy
//! threshold) the sum is only a lower bound and the cell is [`CellStatus::Partial`] (or
//! [`CellStatus::Suppressed`] when no node released a value): it is never shown as exact. Every
//! node's contribution (value, or noisy value and σ, or reason) is kept.
//!
//! Display rules apply after merging, never before: [`RegionalCell::shown`] says how a figure
//! may be shown; a noisy figure whose 95 % interval (±1.96·SE) contains 0 is "not
//! distinguishable from 0", and a negative noisy total is never shown as a count.
//!
//! A node that did not answer makes every regional figure incomplete; that is reported once for
//! the whole table ([`Regional::coverage`]), and the per-node status says why.

use std::collections::HashMap;

use serde::Serialize;
use vrs_core::answer::{Answer, CellValue, ProtectionMode, QuarterBudget, SuppressionReason};
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Unit};

use crate::fanout::{NodeOutcome, NodeResult};

/// z of a two-sided 95 % normal interval.
pub const Z95: f64 = 1.96;

/// How far a regional figure can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Every answering node that has this cell released it, none with noise: the value is the
    /// sum (rules-mode values, which may be perturbed and rounded by their node).
    Exact,
    /// Every answering node released it and at least one added zCDP noise: the value is an
    /// unbiased estimate with standard error [`RegionalCell::se`].
    Noisy,
    /// At least one node suppressed it and another released it: the value is a lower bound.
    Partial,
    /// Every node that has this cell suppressed it: no figure, lower bound 0.
    Suppressed,
}

impl CellStatus {
    /// Stable code, as in CSV and JSON.
    pub const fn code(self) -> &'static str {
        match self {
            CellStatus::Exact => "exact",
            CellStatus::Noisy => "noisy",
            CellStatus::Partial => "partial",
            CellStatus::Suppressed => "suppressed",
        }
    }
}

/// One node's contribution to a regional cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contribution {
    /// A rules-mode released value.
    Value(u64),
    /// A zCDP noisy value and the standard deviation of its noise.
    Noisy {
        /// The noisy value (may be small or negative).
        value: i64,
        /// σ of its noise.
        sigma: f64,
    },
    /// Suppressed, with the node's reason.
    Suppressed(SuppressionReason),
}

/// How a figure may be shown, after the display rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown {
    /// A count (no noise): exact sum of released values.
    Count(u64),
    /// A lower bound with no noise (some node suppressed its part).
    AtLeast(u64),
    /// A noisy estimate distinguishable from 0: `value ± half_width` (95 %).
    Estimate {
        /// The estimate (positive).
        value: u64,
        /// 1.96·SE.
        half_width: f64,
        /// Some node suppressed its part: the estimate is of a lower bound.
        partial: bool,
    },
    /// A noisy figure whose 95 % interval contains 0: shown as `< upper`, never as a count.
    NotDistinguishable {
        /// Upper end of the 95 % interval, `max(value, 0) + 1.96·SE`.
        upper: f64,
        /// Some node suppressed its part.
        partial: bool,
    },
    /// No figure.
    Suppressed,
}

/// The display rule for a signed sum with standard error `se`.
pub fn shown(value: i64, se: f64, status: CellStatus) -> Shown {
    let partial = status == CellStatus::Partial;
    let clamped = u64::try_from(value).unwrap_or(0);
    if status == CellStatus::Suppressed {
        return Shown::Suppressed;
    }
    if se <= 0.0 || !se.is_finite() {
        return if partial {
            Shown::AtLeast(clamped)
        } else {
            Shown::Count(clamped)
        };
    }
    let half_width = Z95 * se;
    if (value as f64) - half_width <= 0.0 {
        Shown::NotDistinguishable {
            upper: (clamped as f64) + half_width,
            partial,
        }
    } else {
        Shown::Estimate {
            value: clamped,
            half_width,
            partial,
        }
    }
}

impl Shown {
    /// The 95 % interval of a noisy figure, clamped at 0 (counts are never negative);
    /// `None` for figures without noise.
    pub fn interval(self) -> Option<(f64, f64)> {
        match self {
            Shown::Estimate {
                value, half_width, ..
            } => Some((
                (value as f64 - half_width).max(0.0),
                value as f64 + half_width,
            )),
            Shown::NotDistinguishable { upper, .. } => Some((0.0, upper)),
            _ => None,
        }
    }

    /// The figure as text: `123`, `≥123`, `123 ± 4.5`, `≥123 ± 4.5`, `<9.8`, `suppressed`.
    pub fn text(self) -> String {
        let ge = |partial: bool| if partial { "≥" } else { "" };
        match self {
            Shown::Count(v) => v.to_string(),
            Shown::AtLeast(v) => format!("≥{v}"),
            Shown::Estimate {
                value,
                half_width,
                partial,
            } => format!("{}{value} ± {}", ge(partial), one_decimal(half_width)),
            Shown::NotDistinguishable { upper, partial } => {
                format!(
                    "{}<{}",
                    if partial { "≥0, " } else { "" },
                    one_decimal(upper)
                )
            }
            Shown::Suppressed => "suppressed".into(),
        }
    }
}

/// A non-negative number with one decimal (`4.5`, `12.0`).
pub fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}

/// One regional cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionalCell {
    /// One value per dimension ("*" for a margin).
    pub key: Vec<String>,
    /// Signed sum of the nodes' released and noisy values (a lower bound when partial). Never
    /// show it directly: see [`RegionalCell::shown`].
    pub value: i64,
    /// Standard error of `value`: `√Σσ²` over the noisy contributions (0 without noise).
    pub se: f64,
    /// Exact, noisy, partial or suppressed.
    pub status: CellStatus,
    /// Per node, what it released for this key (nodes without the key are absent: zero).
    pub nodes: Contributions,
}

/// What each node released for one key, by country in alphabetical order; a node without the
/// key is absent. A sorted vector of `Copy` pairs: a regional query builds one per cell and
/// node, so a map of owned country names per cell was most of what merging cost (issue 15,
/// item 5). Serialised as a map from country code to contribution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contributions(Vec<(Country, Contribution)>);

impl Contributions {
    /// What `country` (an ISO3 code) released here.
    pub fn get(&self, country: &str) -> Option<&Contribution> {
        self.0
            .binary_search_by(|(c, _)| c.as_str().cmp(country))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The contributions, by country.
    pub fn iter(&self) -> impl Iterator<Item = (Country, &Contribution)> {
        self.0.iter().map(|(c, v)| (*c, v))
    }

    /// The countries that released something here, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(c, _)| c.as_str())
    }

    /// The contributions alone, by country.
    pub fn values(&self) -> impl Iterator<Item = &Contribution> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many nodes released something here.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No node released anything here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets what `country` released here (replacing what it had).
    pub fn insert(&mut self, country: Country, contribution: Contribution) {
        match self
            .0
            .binary_search_by(|(c, _)| c.as_str().cmp(country.as_str()))
        {
            Ok(i) => self.0[i].1 = contribution,
            Err(i) => self.0.insert(i, (country, contribution)),
        }
    }
}

impl FromIterator<(Country, Contribution)> for Contributions {
    /// By country; of a country given twice, the last one counts.
    fn from_iter<I: IntoIterator<Item = (Country, Contribution)>>(items: I) -> Self {
        let mut all: Vec<(Country, Contribution)> = items.into_iter().collect();
        all.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        // After a stable sort the last of equal countries is the one given last.
        let mut kept: Vec<(Country, Contribution)> = Vec::with_capacity(all.len());
        for (country, c) in all {
            match kept.last_mut() {
                Some(last) if last.0 == country => last.1 = c,
                _ => kept.push((country, c)),
            }
        }
        Contributions(kept)
    }
}

impl Serialize for Contributions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (country, c) in &self.0 {
            map.serialize_entry(country.as_str(), c)?;
        }
        map.end()
    }
}

impl RegionalCell {
    /// How the figure may be shown.
    pub fn shown(&self) -> Shown {
        shown(self.value, self.se, self.status)
    }
}

/// What answering a query cost a zCDP node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodePrivacy {
    /// The stored answer was replayed: nothing charged now.
    pub replayed: bool,
    /// ρ charged now to every touched quarter, in micro-ρ (0 when replayed).
    pub rho_charged_micro: u64,
    /// σ of the noise in every value this node released.
    pub sigma: f64,
    /// `person` or `incident`.
    pub privacy_unit: String,
    /// Budget left of every touched quarter after the release.
    pub quarters: Vec<QuarterBudget>,
}

impl NodePrivacy {
    /// Least of this coordinator's budget left over the touched quarters, in micro-ρ.
    pub fn min_left_micro(&self) -> Option<u64> {
        self.quarters.iter().map(|q| q.caller_rho_left_micro).min()
    }
}

/// A node's status line for the table header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The country.
    pub country: String,
    /// answered / pending_approval / refused / unreachable / timed_out.
    pub status: String,
    /// Reason or detail.
    pub detail: String,
    /// Milliseconds the node took.
    pub elapsed_ms: u64,
    /// The protection its answer was released under (answered nodes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ProtectionMode>,
    /// What the answer cost (zCDP answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<NodePrivacy>,
}

/// The merged regional answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regional {
    /// The query id sent to the nodes.
    pub query_id: String,
    /// The unit counted.
    pub unit: Unit,
    /// Group-by dimensions.
    pub dimensions: Vec<Dimension>,
    /// Regional cells, sorted by key as a reader expects (fee bands by amount).
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

fn node_privacy(answer: &Answer) -> Option<NodePrivacy> {
    answer.privacy.as_ref().map(|p| NodePrivacy {
        replayed: p.replayed,
        rho_charged_micro: if p.replayed { 0 } else { p.rho_micro },
        sigma: p.sigma,
        privacy_unit: p.privacy_unit.clone(),
        quarters: p.quarters.clone(),
    })
}

/// Merges node results into regional cells.
pub fn merge(
    query_id: &str,
    unit: Unit,
    dimensions: &[Dimension],
    results: &[NodeResult],
) -> Regional {
    let countries: Vec<Country> = results.iter().map(|r| r.country).collect();
    let mut merging = Merging::new(dimensions, &countries);
    for (position, r) in results.iter().enumerate() {
        if let NodeOutcome::Answered(answer) = &r.outcome {
            merging.add(position, answer);
        }
    }
    merging.finish(query_id, unit, results)
}

/// A merge fed one answer at a time, in any order: the nodes' answers are merged as they
/// arrive, while the slowest are still computing theirs ([`crate::fanout::Federation::ask_merged`]),
/// and [`Merging::finish`] gives what [`merge`] gives for the same answers in registry order.
#[derive(Debug)]
pub struct Merging {
    dimensions: Vec<Dimension>,
    /// Each registry position's column: its country's rank (equal countries in registry order).
    rank: Vec<usize>,
    /// Cells in order of first appearance (sorted for readers at the end).
    cells: Vec<RegionalCell>,
    /// The cells by key, for an answer that does not list them in the order already seen.
    index: HashMap<Vec<String>, usize>,
    /// Every node's contribution to every cell: one row of a slot per node for each cell, each
    /// node in the column of its country's rank, so that a row read in order is sorted by
    /// country and becomes the cell's `nodes` without a search per node.
    contributions: Vec<Option<Contribution>>,
    answered: usize,
}

impl Merging {
    /// A merge of answers to a query grouped by `dimensions`, from the nodes of a registry
    /// (`countries`, in registry order).
    pub fn new(dimensions: &[Dimension], countries: &[Country]) -> Merging {
        let mut order: Vec<usize> = (0..countries.len()).collect();
        order.sort_by(|&a, &b| countries[a].as_str().cmp(countries[b].as_str()));
        let mut rank = vec![0; countries.len()];
        for (r, i) in order.into_iter().enumerate() {
            rank[i] = r;
        }
        Merging {
            dimensions: dimensions.to_vec(),
            rank,
            cells: Vec::new(),
            index: HashMap::new(),
            contributions: Vec::new(),
            answered: 0,
        }
    }

    /// Adds the answer of the node at registry `position` (an answer grouped by other
    /// dimensions, or from a position the registry does not have, is not merged).
    pub fn add(&mut self, position: usize, answer: &Answer) {
        let Some(&column) = self.rank.get(position) else {
            return;
        };
        if answer.dimensions != self.dimensions {
            return;
        }
        self.answered += 1;
        let width = self.rank.len();
        let sigma = answer.privacy.as_ref().map_or(0.0, |p| p.sigma);
        for (i, c) in answer.cells.iter().enumerate() {
            // A zCDP node lists its data-independent universe in the same order as the others:
            // the cell at the same position is then the one the index would find (keys in
            // `cells` are unique), found without hashing the key. Any other order falls back
            // to the index.
            let at = match self.cells.get(i) {
                Some(same) if same.key == c.key => Some(i),
                _ => self.index.get(&c.key).copied(),
            };
            let at = match at {
                Some(at) => at,
                None => {
                    self.cells.push(RegionalCell {
                        key: c.key.clone(),
                        value: 0,
                        se: 0.0,
                        status: CellStatus::Exact,
                        nodes: Contributions::default(),
                    });
                    self.index.insert(c.key.clone(), self.cells.len() - 1);
                    self.contributions.resize(self.cells.len() * width, None);
                    self.cells.len() - 1
                }
            };
            self.contributions[at * width + column] = Some(match c.value {
                CellValue::Released(v) => Contribution::Value(v),
                CellValue::Noisy(v) => Contribution::Noisy { value: v, sigma },
                CellValue::Suppressed(reason) => Contribution::Suppressed(reason),
            });
        }
    }

    /// The regional cells of every answer added, with each node's status from `results` (the
    /// registry's nodes, in its order).
    pub fn finish(self, query_id: &str, unit: Unit, results: &[NodeResult]) -> Regional {
        let Merging {
            dimensions,
            rank,
            mut cells,
            contributions,
            answered,
            ..
        } = self;
        let width = rank.len();
        // Countries in rank order, to name each column.
        let mut by_rank: Vec<Country> = vec![Country::UNKNOWN; width];
        for (r, &column) in results.iter().zip(&rank) {
            by_rank[column] = r.country;
        }
        // The cells are settled on every core: this runs after the slowest node has answered.
        let width = width.max(1);
        let threads = if cells.len() >= PARALLEL_CELLS {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        } else {
            1
        };
        let per = cells.len().div_ceil(threads).max(1);
        if threads == 1 {
            settle(&mut cells, &contributions, width, &rank, &by_rank);
        } else {
            std::thread::scope(|scope| {
                for (cells, rows) in cells.chunks_mut(per).zip(contributions.chunks(per * width)) {
                    let (rank, by_rank) = (&rank, &by_rank);
                    scope.spawn(move || settle(cells, rows, width, rank, by_rank));
                }
            });
        }
        // Keys that read the same order by their text, as when the cells came out of a BTreeMap.
        cells.sort_by(|a, b| {
            vrs_core::query::compare_keys(&dimensions, &a.key, &b.key)
                .then_with(|| a.key.cmp(&b.key))
        });
        let dimensions = dimensions.as_slice();
        Regional {
            query_id: query_id.to_string(),
            unit,
            dimensions: dimensions.to_vec(),
            cells,
        nodes: results
            .iter()
            .map(|r| {
                let mismatched =
                    matches!(&r.outcome, NodeOutcome::Answered(a) if a.dimensions != dimensions);
                let merged = match &r.outcome {
                    NodeOutcome::Answered(a) if !mismatched => Some(a),
                    _ => None,
                };
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
                    mode: merged.map(Answer::mode),
                    privacy: merged.and_then(node_privacy),
                }
            })
            .collect(),
        coverage: Coverage {
            answered,
            asked: results.len(),
        },
    }
    }
}

/// Cells past which [`Merging::finish`] settles them on several threads.
const PARALLEL_CELLS: usize = 4096;

/// Each cell's value, standard error, nodes and status from its row of contributions (`width`
/// slots, by country rank; `rank` gives each registry position's column, `by_rank` each
/// column's country).
fn settle(
    cells: &mut [RegionalCell],
    rows: &[Option<Contribution>],
    width: usize,
    rank: &[usize],
    by_rank: &[Country],
) {
    for (cell, row) in cells.iter_mut().zip(rows.chunks(width)) {
        // Sums in registry order, whatever order the answers came in.
        let (mut value, mut variance) = (0i64, 0.0f64);
        for &column in rank {
            match row[column] {
                Some(Contribution::Value(v)) => {
                    value = value.saturating_add(i64::try_from(v).unwrap_or(i64::MAX));
                }
                Some(Contribution::Noisy { value: v, sigma }) => {
                    value = value.saturating_add(v);
                    variance += sigma * sigma;
                }
                _ => {}
            }
        }
        cell.value = value;
        cell.se = variance.sqrt();
        // Sorted by country (equal countries, which a registry does not allow, keep the
        // last in registry order, as inserting one after the other would).
        cell.nodes = by_rank
            .iter()
            .zip(row)
            .filter_map(|(country, c)| Some((*country, (*c)?)))
            .collect();
        let (mut released, mut noisy, mut suppressed) = (false, false, false);
        for c in cell.nodes.values() {
            match c {
                Contribution::Value(_) => released = true,
                Contribution::Noisy { .. } => (released, noisy) = (true, true),
                Contribution::Suppressed(_) => suppressed = true,
            }
        }
        cell.status = match (released, suppressed, noisy) {
            (_, false, false) => CellStatus::Exact,
            (_, false, true) => CellStatus::Noisy,
            (true, true, _) => CellStatus::Partial,
            (false, true, _) => CellStatus::Suppressed,
        };
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
    use std::collections::BTreeMap;
    use std::time::Duration;
    use vrs_core::answer::{Cell, ReleasePrivacy};

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
            receipt: None,
        }
    }

    #[test]
    fn fee_bands_come_out_by_amount() {
        let mut node = answered("THA", &[]);
        let NodeOutcome::Answered(answer) = &mut node.outcome else {
            unreachable!()
        };
        answer.dimensions = vec![Dimension::FeeBand];
        // Code order, as a node sends them.
        answer.cells = [
            "0-499",
            "1000-2499",
            "10000+",
            "2500-4999",
            "500-999",
            "5000-9999",
        ]
        .iter()
        .map(|k| Cell {
            key: vec![k.to_string()],
            value: CellValue::Released(3),
        })
        .collect();
        let r = merge("q", Unit::Fees, &[Dimension::FeeBand], &[node]);
        let keys: Vec<&str> = r.cells.iter().map(|c| c.key[0].as_str()).collect();
        assert_eq!(
            keys,
            [
                "0-499",
                "500-999",
                "1000-2499",
                "2500-4999",
                "5000-9999",
                "10000+"
            ]
        );
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
                receipt: None,
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
            *r.cells[0].nodes.get("THA").unwrap(),
            Contribution::Suppressed(_)
        ));
    }

    fn noisy(country: &str, sigma: f64, cells: &[(&str, i64)]) -> NodeResult {
        NodeResult {
            country: country.parse().unwrap(),
            outcome: NodeOutcome::Answered(Answer {
                dimensions: vec![Dimension::Mode],
                cells: cells
                    .iter()
                    .map(|(k, v)| Cell {
                        key: vec![k.to_string()],
                        value: CellValue::Noisy(*v),
                    })
                    .collect(),
                privacy: Some(ReleasePrivacy {
                    release_id: "r".into(),
                    replayed: false,
                    rho_micro: 50_000,
                    l2_sensitivity_squared: 1,
                    privacy_unit: "incident".into(),
                    sigma,
                    threshold: 0.0,
                    quarters: vec![QuarterBudget {
                        quarter: "2024-Q1".into(),
                        rho_spent_micro: 50_000,
                        rho_left_micro: 950_000,
                        caller_rho_left_micro: 950_000,
                    }],
                }),
            }),
            elapsed: Duration::from_millis(3),
            receipt: None,
        }
    }

    #[test]
    fn noisy_values_sum_signed_with_the_root_of_summed_variances() {
        let results = vec![
            noisy("THA", 3.0, &[("land", 40), ("sea", -2)]),
            noisy("IDN", 4.0, &[("land", 10), ("sea", 1)]),
        ];
        let r = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        let land = &r.cells[0];
        assert_eq!(
            (land.value, land.se, land.status),
            (50, 5.0, CellStatus::Noisy)
        );
        assert_eq!(
            *land.nodes.get("THA").unwrap(),
            Contribution::Noisy {
                value: 40,
                sigma: 3.0
            }
        );
        assert_eq!(
            land.shown(),
            Shown::Estimate {
                value: 50,
                half_width: 9.8,
                partial: false
            }
        );
        assert_eq!(land.shown().text(), "50 ± 9.8");
        let sea = &r.cells[1];
        assert_eq!((sea.value, sea.se), (-1, 5.0));
        // A negative total is never a count: its interval contains 0.
        assert_eq!(sea.shown().text(), "<9.8");
        assert_eq!(sea.shown().interval(), Some((0.0, 9.8)));
        assert_eq!(r.nodes[0].mode, Some(ProtectionMode::Zcdp));
        let p = r.nodes[0].privacy.as_ref().unwrap();
        assert_eq!(
            (p.rho_charged_micro, p.min_left_micro()),
            (50_000, Some(950_000))
        );
    }

    #[test]
    fn a_noisy_node_and_a_suppressing_rules_node_make_a_partial_cell() {
        let results = vec![
            noisy("THA", 2.0, &[("land", 30)]),
            answered("IDN", &[("land", None)]),
            answered("MYS", &[("land", Some(7))]),
        ];
        let r = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        let land = &r.cells[0];
        assert_eq!(
            (land.value, land.se, land.status),
            (37, 2.0, CellStatus::Partial)
        );
        assert_eq!(land.shown().text(), "≥37 ± 3.9");
        assert_eq!(r.nodes[2].mode, Some(ProtectionMode::RulesV1));
        assert_eq!(r.nodes[2].privacy, None);
    }

    /// The keyed merge the positional path must equal: every cell found by its key.
    fn keyed_cells(dimensions: &[Dimension], results: &[NodeResult]) -> Vec<RegionalCell> {
        let mut cells: BTreeMap<Vec<String>, RegionalCell> = BTreeMap::new();
        for r in results {
            let NodeOutcome::Answered(answer) = &r.outcome else {
                continue;
            };
            let sigma = answer.privacy.as_ref().map_or(0.0, |p| p.sigma);
            for c in &answer.cells {
                let cell = cells.entry(c.key.clone()).or_insert_with(|| RegionalCell {
                    key: c.key.clone(),
                    value: 0,
                    se: 0.0,
                    status: CellStatus::Exact,
                    nodes: Contributions::default(),
                });
                let contribution = match c.value {
                    CellValue::Released(v) => {
                        cell.value = cell
                            .value
                            .saturating_add(i64::try_from(v).unwrap_or(i64::MAX));
                        Contribution::Value(v)
                    }
                    CellValue::Noisy(v) => {
                        cell.value = cell.value.saturating_add(v);
                        cell.se += sigma * sigma;
                        Contribution::Noisy { value: v, sigma }
                    }
                    CellValue::Suppressed(reason) => Contribution::Suppressed(reason),
                };
                cell.nodes.insert(r.country, contribution);
            }
        }
        let mut cells: Vec<RegionalCell> = cells.into_values().collect();
        for cell in &mut cells {
            let any = |f: fn(&Contribution) -> bool| cell.nodes.values().any(f);
            let released = any(|c| !matches!(c, Contribution::Suppressed(_)));
            let suppressed = any(|c| matches!(c, Contribution::Suppressed(_)));
            let noisy = any(|c| matches!(c, Contribution::Noisy { .. }));
            cell.se = cell.se.sqrt();
            cell.status = match (released, suppressed, noisy) {
                (_, false, false) => CellStatus::Exact,
                (_, false, true) => CellStatus::Noisy,
                (true, true, _) => CellStatus::Partial,
                (false, true, _) => CellStatus::Suppressed,
            };
        }
        cells.sort_by(|a, b| {
            vrs_core::query::compare_keys(dimensions, &a.key, &b.key)
                .then_with(|| a.key.cmp(&b.key))
        });
        cells
    }

    /// One node of a random federation: a cell kind (0 missing, 1 released, 2 noisy,
    /// 3 suppressed) and value per universe cell, the order it lists them in, its σ.
    type RandomNode = (Vec<(u8, i64)>, Option<Vec<usize>>, Option<f64>);

    fn universe() -> Vec<Vec<String>> {
        let modes = ["land", "sea", "air", "*"];
        let years = ["2023", "2024", "*"];
        modes
            .iter()
            .flat_map(|m| {
                years
                    .iter()
                    .map(move |y| vec![m.to_string(), y.to_string()])
            })
            .collect()
    }

    fn random_node() -> impl Strategy<Value = RandomNode> {
        let n = universe().len();
        (
            prop::collection::vec((0u8..4, -50i64..500), n),
            prop::option::of(Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
            prop::option::of(0.5f64..6.0),
        )
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_positional_merge_equals_the_keyed_merge_in_any_arrival_order(
            nodes in prop::collection::vec(random_node(), 0..6),
            arrival in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            let dimensions = [Dimension::Mode, Dimension::Year];
            let universe = universe();
            // A country twice too (a registry does not allow it): its last answer is kept.
            let countries = ["THA", "IDN", "MYS", "VNM", "IDN", "SGP"];
            let results: Vec<NodeResult> = nodes
                .iter()
                .zip(countries)
                .map(|((values, order, sigma), country)| {
                    let order = order.clone().unwrap_or_else(|| (0..universe.len()).collect());
                    let cells = order
                        .iter()
                        .filter_map(|&i| {
                            let (kind, v) = values[i];
                            let value = match kind {
                                0 => return None,
                                1 => CellValue::Released(v.unsigned_abs()),
                                2 => CellValue::Noisy(v),
                                _ => CellValue::Suppressed(SuppressionReason::BelowThreshold),
                            };
                            Some(Cell { key: universe[i].clone(), value })
                        })
                        .collect::<Vec<_>>();
                    let mut node = match sigma {
                        Some(s) => noisy(country, *s, &[]),
                        None => answered(country, &[]),
                    };
                    if let NodeOutcome::Answered(a) = &mut node.outcome {
                        a.dimensions = dimensions.to_vec();
                        a.cells = cells;
                    }
                    node
                })
                .collect();
            let merged = merge("q", Unit::Incidents, &dimensions, &results);
            // The same answers merged as they might arrive, in any order: the same cells.
            let countries: Vec<Country> = results.iter().map(|r| r.country).collect();
            let mut merging = Merging::new(&dimensions, &countries);
            for &position in arrival.iter().filter(|&&p| p < results.len()) {
                if let NodeOutcome::Answered(a) = &results[position].outcome {
                    merging.add(position, a);
                }
            }
            let arrived = merging.finish("q", Unit::Incidents, &results);
            prop_assert_eq!(&arrived.cells, &merged.cells);
            prop_assert_eq!(&arrived.coverage, &merged.coverage);
            prop_assert_eq!(merged.cells, keyed_cells(&dimensions, &results));
        }
    }

    /// A merge large enough to be settled on several threads gives the cells of the keyed
    /// merge: four nodes over 6,000 cells, one listing them in another order, one missing some.
    #[test]
    fn a_large_merge_settled_on_several_threads_equals_the_keyed_merge() {
        let keys: Vec<String> = (0..6_000).map(|i| format!("m{i:05}")).collect();
        let node = |country: &str, sigma: f64, skip: usize, reverse: bool| {
            let mut cells: Vec<(&str, i64)> = keys
                .iter()
                .enumerate()
                .filter(|(i, _)| skip == 0 || i % skip != 0)
                .map(|(i, k)| (k.as_str(), (i as i64 * 7) % 23 - 5))
                .collect();
            if reverse {
                cells.reverse();
            }
            noisy(country, sigma, &cells)
        };
        let results = vec![
            node("THA", 1.5, 0, false),
            node("IDN", 2.0, 0, true),
            node("MYS", 0.5, 3, false),
            node("VNM", 3.0, 0, false),
        ];
        assert!(keys.len() >= PARALLEL_CELLS);
        let merged = merge("q", Unit::Incidents, &[Dimension::Mode], &results);
        assert_eq!(merged.cells.len(), keys.len());
        assert_eq!(merged.cells, keyed_cells(&[Dimension::Mode], &results));
    }

    #[test]
    fn an_interval_touching_zero_is_not_distinguishable() {
        assert_eq!(shown(9, 5.0, CellStatus::Noisy).text(), "<18.8");
        assert_eq!(shown(10, 5.0, CellStatus::Noisy).text(), "10 ± 9.8");
        assert_eq!(shown(-40, 5.0, CellStatus::Noisy).text(), "<9.8");
        assert_eq!(shown(12, 0.0, CellStatus::Exact).text(), "12");
    }
}
