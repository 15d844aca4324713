//! The data-independent cell universe of a query (DESIGN §6 step 4) and the reference quarters it
//! touches (step 3).
//!
//! The universe is the cross product of the *published* values of the requested dimensions after
//! filters — never "the cells that exist" — so which cells an answer lists says nothing about the
//! records. Period dimensions take their values from the months the query may read: its period
//! range clamped to the node's declared coverage (set by the operator, never read off the data)
//! and narrowed by any period filters. With margins, each margin's keys (`*` for the totalled
//! dimensions) are in the universe too. Pure: the current month comes in as an argument.

use std::collections::BTreeSet;

use vrs_core::answer::MARGIN;
use vrs_core::period::Month;
use vrs_core::query::{DimValue, Dimension, Query};

use crate::disclosure::PrivacyPolicy;

/// Why a query has no universe the node will release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UniverseError {
    /// The query's periods do not overlap the node's declared coverage.
    #[error("the requested periods are outside the node's declared coverage")]
    OutsideCoverage,
    /// The universe has more cells than the policy allows.
    #[error(
        "the answer would have {cells} cells; the node releases at most {max} (filter or group by less)"
    )]
    TooLarge {
        /// Cells the universe would have.
        cells: u64,
        /// The policy's cap.
        max: u32,
    },
}

/// A query's universe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Universe {
    /// Every key the answer lists, sorted.
    pub keys: Vec<Vec<String>>,
    /// First and last month the query reads (inside the coverage).
    pub months: (Month, Month),
    /// Reference quarters the query reads, as `YYYYQ` integers, ascending: each is charged.
    pub quarters: Vec<i64>,
}

/// The months the node's declared coverage spans, given the current month.
pub fn coverage(privacy: &PrivacyPolicy, today: Month) -> (Month, Month) {
    let from = privacy.coverage_from();
    let to = privacy.coverage_to().unwrap_or(today).max(from);
    (from, to)
}

fn month_matches(m: Month, v: &DimValue) -> bool {
    match v {
        DimValue::Year(y) => m.year() == *y,
        DimValue::Quarter(y, q) => m.year() == *y && m.quarter() == *q,
        DimValue::Month(x) => m == *x,
        _ => false,
    }
}

fn period_label(d: Dimension, m: Month) -> String {
    match d {
        Dimension::Year => format!("{:04}", m.year()),
        Dimension::Quarter => m.quarter_label(),
        _ => m.to_string(),
    }
}

/// `YYYYQ` of a quarter label `YYYY-Qn`.
pub fn quarter_label_of(q: i64) -> String {
    format!("{:04}-Q{}", q / 10, q % 10)
}

/// Builds the universe of `query` (whose ρ and unit are not needed here).
pub fn build(
    query: &Query,
    privacy: &PrivacyPolicy,
    today: Month,
) -> Result<Universe, UniverseError> {
    let (cov_from, cov_to) = coverage(privacy, today);
    let from = query.from().map_or(cov_from, |f| f.max(cov_from));
    let to = query.to().map_or(cov_to, |t| t.min(cov_to));
    if to < from {
        return Err(UniverseError::OutsideCoverage);
    }
    let period_filters: Vec<_> = query
        .filters()
        .iter()
        .filter(|f| f.dimension().is_period())
        .collect();
    let mut months: Vec<Month> = Vec::new();
    let mut m = Some(from);
    while let Some(cur) = m {
        if cur > to {
            break;
        }
        if period_filters
            .iter()
            .all(|f| f.values().iter().any(|v| month_matches(cur, v)))
        {
            months.push(cur);
        }
        m = cur.succ();
    }
    let (Some(first), Some(last)) = (months.first().copied(), months.last().copied()) else {
        return Err(UniverseError::OutsideCoverage);
    };
    let quarters: Vec<i64> = months
        .iter()
        .map(|m| m.quarter_int())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let filter_of = |d: Dimension| query.filters().iter().find(|f| f.dimension() == d);
    let values: Vec<Vec<String>> = query
        .group_by()
        .iter()
        .map(|&d| {
            if d.is_period() {
                let mut out: Vec<String> = Vec::new();
                for m in &months {
                    let v = period_label(d, *m);
                    if out.last() != Some(&v) {
                        out.push(v);
                    }
                }
                return out;
            }
            if let Some(f) = filter_of(d) {
                return f.values().iter().map(|v| v.to_string()).collect();
            }
            if d == Dimension::Route {
                let side = |s: Dimension| -> Vec<String> {
                    match filter_of(s) {
                        Some(f) => f.values().iter().map(|v| v.to_string()).collect(),
                        None => Dimension::Origin.closed_values().unwrap_or_default(),
                    }
                };
                let (origins, destinations) =
                    (side(Dimension::Origin), side(Dimension::Destination));
                let mut out = Vec::with_capacity(origins.len() * destinations.len());
                for o in &origins {
                    for t in &destinations {
                        out.push(format!("{o}>{t}"));
                    }
                }
                return out;
            }
            d.closed_values().unwrap_or_default()
        })
        .collect();

    let n = values.len();
    let masks: Vec<u32> = if query.margins() {
        (0..(1u32 << n)).collect()
    } else {
        vec![(1u32 << n) - 1]
    };
    let mut cells: u64 = 0;
    for mask in &masks {
        let mut c: u64 = 1;
        for (i, v) in values.iter().enumerate() {
            if mask & (1 << i) != 0 {
                c = c.saturating_mul(v.len() as u64);
            }
        }
        cells = cells.saturating_add(c);
    }
    if cells > u64::from(privacy.max_cells()) {
        return Err(UniverseError::TooLarge {
            cells,
            max: privacy.max_cells(),
        });
    }
    let mut keys: Vec<Vec<String>> = Vec::with_capacity(usize::try_from(cells).unwrap_or(0));
    for mask in &masks {
        let mut partial: Vec<Vec<String>> = vec![Vec::with_capacity(n)];
        for (i, v) in values.iter().enumerate() {
            if mask & (1 << i) != 0 {
                partial = partial
                    .into_iter()
                    .flat_map(|k| {
                        v.iter().map(move |x| {
                            let mut k = k.clone();
                            k.push(x.clone());
                            k
                        })
                    })
                    .collect();
            } else {
                for k in &mut partial {
                    k.push(MARGIN.to_string());
                }
            }
        }
        keys.extend(partial);
    }
    keys.sort();
    keys.dedup();
    Ok(Universe {
        keys,
        months: (first, last),
        quarters,
    })
}

/// The current month (UTC), for a coverage that runs to "now" (`fallback` if the clock is
/// outside the years a month can name).
pub fn current_month(now_ms: i64, fallback: Month) -> Month {
    let days = now_ms.div_euclid(86_400_000);
    let date = chrono::DateTime::from_timestamp(days * 86_400, 0).map(|d| d.date_naive());
    use chrono::Datelike;
    date.and_then(|d| Month::new(u16::try_from(d.year()).ok()?, u8::try_from(d.month()).ok()?))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::PrivacyConfig;
    use vrs_core::query::{QueryLimits, RawQuery};

    fn q(by: &[&str], filters: &[(&str, &[&str])], from: &str, to: &str, margins: bool) -> Query {
        let raw = RawQuery {
            unit: "incidents".into(),
            group_by: by.iter().map(|s| s.to_string()).collect(),
            filters: filters
                .iter()
                .map(|(d, v)| (d.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            period_from: from.into(),
            period_to: to.into(),
            margins,
            rho_micro: 0,
        };
        Query::parse(&raw, &QueryLimits::default()).unwrap()
    }

    fn policy(from: &str, to: &str) -> PrivacyPolicy {
        PrivacyPolicy::new(&PrivacyConfig {
            coverage_from: from.into(),
            coverage_to: to.into(),
            ..PrivacyConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn periods_come_from_the_range_clamped_to_the_coverage_and_the_filters() {
        let p = policy("2023-01", "2024-06");
        let today: Month = "2026-12".parse().unwrap();
        let u = build(&q(&["quarter"], &[], "2022", "", false), &p, today).unwrap();
        assert_eq!(u.keys.len(), 6, "2023-Q1 .. 2024-Q2");
        assert_eq!(u.quarters, vec![20231, 20232, 20233, 20234, 20241, 20242]);
        let u = build(
            &q(&["month"], &[("quarter", &["2024-Q1"])], "", "", false),
            &p,
            today,
        )
        .unwrap();
        assert_eq!(
            u.keys,
            vec![
                vec!["2024-01".to_string()],
                vec!["2024-02".into()],
                vec!["2024-03".into()]
            ]
        );
        assert_eq!(u.quarters, vec![20241]);
        assert_eq!(
            build(&q(&["month"], &[], "2025-01", "", false), &p, today),
            Err(UniverseError::OutsideCoverage)
        );
    }

    #[test]
    fn closed_dimensions_list_every_published_value_and_margins_add_their_keys() {
        let p = policy("2024-01", "2024-12");
        let today: Month = "2026-12".parse().unwrap();
        let modes = Dimension::Mode.closed_values().unwrap().len();
        let u = build(&q(&["mode", "year"], &[], "", "", true), &p, today).unwrap();
        assert_eq!(u.keys.len(), modes + modes + 1 + 1);
        assert!(u.keys.contains(&vec!["*".to_string(), "*".to_string()]));
        let u = build(
            &q(&["origin"], &[("origin", &["THA", "MMR"])], "", "", false),
            &p,
            today,
        )
        .unwrap();
        assert_eq!(
            u.keys,
            vec![vec!["MMR".to_string()], vec!["THA".to_string()]]
        );
    }

    #[test]
    fn a_universe_over_the_cap_is_refused_before_anything_is_read() {
        let p = policy("2010-01", "2024-12");
        let today: Month = "2026-12".parse().unwrap();
        match build(&q(&["route"], &[], "", "", false), &p, today) {
            Err(UniverseError::TooLarge { cells, max }) => {
                assert!(cells > 60_000);
                assert_eq!(max, 20_000);
            }
            other => panic!("{other:?}"),
        }
        let u = build(
            &q(
                &["route"],
                &[("origin", &["MMR"]), ("destination", &["THA", "MYS"])],
                "",
                "",
                false,
            ),
            &p,
            today,
        )
        .unwrap();
        assert_eq!(u.keys.len(), 2);
    }
}
