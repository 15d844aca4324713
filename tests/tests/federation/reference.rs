//! A reference aggregator over the synthetic records, independent of the node's SQL, and the
//! primary disclosure rules of DESIGN §6, to check released answers against.
//!
//! Counting rules (node/src/query.rs): each unit has rows (incidents; migrant groups valued by
//! their count; smuggler rows; incidents with deaths valued by their dead) and a row falls in a
//! cell once for each combination of the cell's dimension values it has (an incident with two
//! methods falls in two method cells). A margin (`*`) leaves the dimension out: the row falls in
//! it once. Cells with a true value of zero do not exist.

use std::collections::{BTreeMap, BTreeSet};

use vrs_core::answer::{MARGIN, SuppressionReason};
use vrs_core::query::{Dimension, UNKNOWN, Unit};
use vrs_node::record::{IncidentRecord, Smuggler};
use vrs_node::synth::{self, SynthConfig};

/// The records a node of `country` was filled with (the store ignores repeated source ids).
pub fn records(country: &str, incidents: u64, seed: u64) -> Vec<IncidentRecord> {
    let country = country.parse().expect("a country code");
    let mut seen = BTreeSet::new();
    synth::generate(&SynthConfig::new(country, incidents, seed))
        .filter(|r| seen.insert(r.source_id.clone()))
        .collect()
}

/// One exact cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exact {
    /// Count or sum.
    pub value: i64,
    /// Distinct incidents contributing.
    pub contributors: usize,
    /// The two largest per-incident contributions, largest first.
    pub largest: [i64; 2],
}

/// What one row of the counted unit is.
enum Row<'a> {
    Incident,
    Smuggler(&'a Smuggler),
    MigrantGroup,
}

/// The rows of `unit` in one incident, each with its value.
fn rows(r: &IncidentRecord, unit: Unit) -> Vec<(Row<'_>, i64)> {
    match unit {
        Unit::Incidents => vec![(Row::Incident, 1)],
        Unit::Migrants => r
            .migrants
            .iter()
            .map(|g| (Row::MigrantGroup, i64::from(g.count)))
            .collect(),
        Unit::Smugglers => r.smugglers.iter().map(|s| (Row::Smuggler(s), 1)).collect(),
        Unit::Deaths if r.dead > 0 => vec![(Row::Incident, i64::from(r.dead))],
        Unit::Deaths => Vec::new(),
        other => unimplemented!("the reference aggregator does not count {other}"),
    }
}

/// The values of `d` for one row of an incident.
fn values(d: Dimension, r: &IncidentRecord, row: &Row<'_>) -> BTreeSet<String> {
    let one = |v: String| BTreeSet::from([v]);
    match (d, row) {
        (Dimension::Year, _) => one(format!("{:04}", r.period.year())),
        (Dimension::Quarter, _) => one(r.period.quarter_label()),
        (Dimension::Origin, _) => one(r.origin().to_string()),
        (Dimension::Destination, _) => one(r.destination().to_string()),
        (Dimension::Route, _) => one(format!("{}>{}", r.origin(), r.destination())),
        (Dimension::Mode, _) => one(r.mode.map_or(UNKNOWN, |m| m.code()).to_owned()),
        (Dimension::PlaceType, _) => one(r.place_type.map_or(UNKNOWN, |p| p.code()).to_owned()),
        (Dimension::Method, _) => r.methods.iter().map(|m| m.code().to_owned()).collect(),
        (Dimension::Transit, _) => r.transit().iter().map(|c| c.to_string()).collect(),
        (Dimension::SmugglerRole, Row::Smuggler(s)) => one(s.role.code().to_owned()),
        (Dimension::SmugglerRole, Row::Incident) => r
            .smugglers
            .iter()
            .map(|s| s.role.code().to_owned())
            .collect(),
        (d, _) => unimplemented!("the reference aggregator does not group by {d}"),
    }
}

/// Every combination of one value per dimension.
fn combinations(parts: &[BTreeSet<String>]) -> Vec<Vec<String>> {
    parts.iter().fold(vec![Vec::new()], |acc, part| {
        acc.iter()
            .flat_map(|prefix| {
                part.iter().map(move |v| {
                    let mut key = prefix.clone();
                    key.push(v.clone());
                    key
                })
            })
            .collect()
    })
}

/// The exact cells of `unit` by `dims` (with every margin when `margins`), keyed like the answer.
pub fn exact(
    records: &[IncidentRecord],
    unit: Unit,
    dims: &[Dimension],
    margins: bool,
) -> BTreeMap<Vec<String>, Exact> {
    let n = dims.len();
    let masks: Vec<Vec<bool>> = if margins {
        (0..1u32 << n)
            .map(|bits| (0..n).map(|i| bits & (1 << i) == 0).collect())
            .collect()
    } else {
        vec![vec![true; n]]
    };
    // cell key → incident → that incident's contribution to the cell.
    let mut sums: BTreeMap<Vec<String>, BTreeMap<usize, i64>> = BTreeMap::new();
    for (incident, r) in records.iter().enumerate() {
        for (row, value) in rows(r, unit) {
            for mask in &masks {
                let parts: Vec<BTreeSet<String>> = dims
                    .iter()
                    .zip(mask)
                    .map(|(d, grouped)| {
                        if *grouped {
                            values(*d, r, &row)
                        } else {
                            BTreeSet::from([MARGIN.to_owned()])
                        }
                    })
                    .collect();
                for key in combinations(&parts) {
                    *sums.entry(key).or_default().entry(incident).or_default() += value;
                }
            }
        }
    }
    sums.into_iter()
        .map(|(key, per_incident)| {
            let mut parts: Vec<i64> = per_incident.values().copied().collect();
            parts.sort_unstable_by(|a, b| b.cmp(a));
            let exact = Exact {
                value: parts.iter().sum(),
                contributors: parts.len(),
                largest: [
                    parts.first().copied().unwrap_or(0),
                    parts.get(1).copied().unwrap_or(0),
                ],
            };
            (key, exact)
        })
        .filter(|(_, e)| e.value > 0)
        .collect()
}

/// The public thresholds of a policy.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `min_count`.
    pub min_count: i64,
    /// `min_contributors`.
    pub min_contributors: usize,
    /// `dominance_p`, percent.
    pub dominance_p: i64,
}

/// The default policy's thresholds.
pub const DEFAULT_RULES: Rules = Rules {
    min_count: 5,
    min_contributors: 3,
    dominance_p: 25,
};

/// The primary rule a cell breaks (threshold, then contributors, then dominance for sums), if any.
pub fn primary(cell: &Exact, unit: Unit, rules: Rules) -> Option<SuppressionReason> {
    if cell.value < rules.min_count {
        return Some(SuppressionReason::BelowThreshold);
    }
    if cell.contributors < rules.min_contributors {
        return Some(SuppressionReason::TooFewContributors);
    }
    let [x1, x2] = cell.largest;
    // p% rule: the rest of the total must be at least p% of the largest contribution.
    if unit.is_magnitude() && 100 * (cell.value - x1 - x2) < rules.dominance_p * x1 {
        return Some(SuppressionReason::Dominance);
    }
    None
}
