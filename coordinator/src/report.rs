//! The regional trend report: one self-contained HTML file with charts a person can read.
//!
//! [`build`] asks the federation the report's questions ([`Figure::ALL`]: migrants by route and
//! quarter, route flows origin × destination, methods by mode, fee bands by route, migrant and
//! smuggler profiles, deaths by quarter) and each node to describe its public policy, and returns
//! a [`ReportData`]. [`render`] turns that into HTML with no network access at all: inline CSS,
//! inline SVG charts ([`chart`]) over one shared [`model`], no scripts, no fonts or images to fetch. Rendering is a pure
//! function, so tests feed it hand-made answers.
//!
//! What a regional figure is worth is never hidden: partial figures (lower bounds, because some
//! node suppressed its part) and suppressed figures are marked on every chart and in every table,
//! with a legend; per-node status (answered, refused with the node's reason, unreachable, timed
//! out), coverage, the period asked, the generation time and each node's public disclosure
//! policy come first. Every string on the page is escaped ([`model::escape`]): node messages and
//! cell keys come from the network.
//!
//! The charts are hand-built SVG rather than `plotters`: the report needs per-mark `<title>`s,
//! `role="img"` and ARIA labels, hatch patterns for lower bounds and CSS classes for each status,
//! none of which plotters' SVG backend emits.

pub mod chart;
pub mod html;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use vrs_core::answer::MARGIN;
use vrs_core::query::{Dimension, Query, QueryError, QueryLimits, RawQuery, Unit};

use vrs_core::clock::Clock;
use vrs_core::codes::Country;

use crate::budget;
use crate::fanout::{FanoutError, Federation, NodeOutcome, NodeResult};
pub use crate::fanout::{NodeDescription, PolicySummary};
use crate::merge::{self, CellStatus, Regional, Shown};
use crate::output::rho_text;
use crate::registry::Registry;
use chart::{CATEGORICAL, ChartText, Layout, SEQUENTIAL};
use model::{Datum, Grid, escape, thousands};

/// One chart of the report and the question behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Migrants detected by route and quarter: lines.
    Trend,
    /// Migrants by origin × destination: a matrix.
    Flows,
    /// Incidents by method and mode: stacked bars.
    Methods,
    /// Fee records by route and USD band: stacked bars.
    Fees,
    /// Migrants by age group and sex: grouped bars.
    Migrants,
    /// Smugglers by role and case stage: stacked bars.
    Smugglers,
    /// Deaths by quarter: a line.
    Deaths,
}

/// Lines drawn on the trend chart (the table lists every route).
const TREND_ROUTES: usize = 6;
/// Routes drawn on the fee chart.
const FEE_ROUTES: usize = 12;
/// Origins and destinations drawn on the flow matrix.
const FLOW_ROWS: usize = 20;
const FLOW_COLS: usize = 10;

impl Figure {
    /// Every figure, in page order.
    pub const ALL: &'static [Figure] = &[
        Figure::Trend,
        Figure::Flows,
        Figure::Methods,
        Figure::Fees,
        Figure::Migrants,
        Figure::Smugglers,
        Figure::Deaths,
    ];

    /// Id in the page (anchors, SVG ids).
    pub const fn id(self) -> &'static str {
        match self {
            Figure::Trend => "trend",
            Figure::Flows => "flows",
            Figure::Methods => "methods",
            Figure::Fees => "fees",
            Figure::Migrants => "migrants",
            Figure::Smugglers => "smugglers",
            Figure::Deaths => "deaths",
        }
    }

    /// Heading of the section.
    pub const fn title(self) -> &'static str {
        match self {
            Figure::Trend => "Migrants detected by route, per quarter",
            Figure::Flows => "Route flows: where journeys start and where they lead",
            Figure::Methods => "Smuggling methods by mode of transport",
            Figure::Fees => "Smuggling fees by route, in US-dollar bands",
            Figure::Migrants => "Profile of migrants: age group and sex",
            Figure::Smugglers => "Profile of smugglers: role and case stage",
            Figure::Deaths => "Deaths by quarter",
        }
    }

    /// Column heading in the node status table.
    pub const fn short(self) -> &'static str {
        match self {
            Figure::Trend => "Trend",
            Figure::Flows => "Flows",
            Figure::Methods => "Methods",
            Figure::Fees => "Fees",
            Figure::Migrants => "Migrants",
            Figure::Smugglers => "Smugglers",
            Figure::Deaths => "Deaths",
        }
    }

    /// The unit counted.
    pub const fn unit(self) -> Unit {
        match self {
            Figure::Trend | Figure::Flows | Figure::Migrants => Unit::Migrants,
            Figure::Methods => Unit::Incidents,
            Figure::Fees => Unit::Fees,
            Figure::Smugglers => Unit::Smugglers,
            Figure::Deaths => Unit::Deaths,
        }
    }

    /// Group-by dimensions: rows first, then series.
    pub const fn group_by(self) -> &'static [Dimension] {
        match self {
            Figure::Trend => &[Dimension::Route, Dimension::Quarter],
            Figure::Flows => &[Dimension::Origin, Dimension::Destination],
            Figure::Methods => &[Dimension::Method, Dimension::Mode],
            Figure::Fees => &[Dimension::Route, Dimension::FeeBand],
            Figure::Migrants => &[Dimension::AgeGroup, Dimension::Sex],
            Figure::Smugglers => &[Dimension::SmugglerRole, Dimension::SmugglerStage],
            Figure::Deaths => &[Dimension::Quarter],
        }
    }

    /// The question sent to the nodes for `range`.
    pub fn query(self, range: &PeriodRange) -> RawQuery {
        RawQuery {
            unit: self.unit().code().into(),
            group_by: self
                .group_by()
                .iter()
                .map(|d| d.code().to_string())
                .collect(),
            filters: Vec::new(),
            period_from: range.from.clone().unwrap_or_default(),
            period_to: range.to.clone().unwrap_or_default(),
            margins: false,
            rho_micro: 0,
        }
    }
}

/// The period the report covers: bounds as written (`YYYY`, `YYYY-Qn`, `YYYY-MM`); none for all
/// periods the nodes hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodRange {
    /// First period, inclusive.
    pub from: Option<String>,
    /// Last period, inclusive.
    pub to: Option<String>,
}

/// One node of the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Its country.
    pub country: String,
    /// Its description, or why it gave none (status and detail).
    pub description: Result<NodeDescription, String>,
}

/// One figure with the merged regional answer behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Which figure.
    pub figure: Figure,
    /// The regional answer.
    pub regional: Regional,
    /// The same question asked by year, when the quarterly series were mostly suppressed or not
    /// distinguishable from 0 ([`coarser_question`]); its figures replace those series.
    pub coarser: Option<Regional>,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// The coordinator's identity.
    pub coordinator: String,
    /// When the questions were asked, as shown (UTC).
    pub generated_at: String,
    /// The period asked.
    pub range: PeriodRange,
    /// The nodes, in registry order.
    pub nodes: Vec<NodeInfo>,
    /// The figures, in page order.
    pub sections: Vec<Section>,
    /// Regional-mode answers to some of the same questions (secure aggregation; empty unless
    /// the report was asked with `--regional`).
    pub regional: Vec<RegionalSection>,
}

/// One question answered in regional mode, or why it was not.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionalSection {
    /// Which figure's question.
    pub figure: Figure,
    /// The noisy regional totals, or the refusal.
    pub result: Result<crate::regional::RegionalResult, String>,
}

/// The figures a regional-mode report answers (the route figures' universes — every origin ×
/// destination pair — are too large for one vector per node).
pub const REGIONAL_FIGURES: &[Figure] = &[
    Figure::Methods,
    Figure::Migrants,
    Figure::Smugglers,
    Figure::Deaths,
];

/// Asks [`REGIONAL_FIGURES`]' questions in regional mode through `leader`, one after another.
pub async fn ask_regional(
    leader: &crate::regional::Leader,
    range: &PeriodRange,
    rho_micro: u64,
) -> Result<Vec<RegionalSection>, ReportError> {
    let mut out = Vec::new();
    for f in REGIONAL_FIGURES {
        let mut raw = f.query(range);
        raw.rho_micro = rho_micro;
        let query = Query::parse(&raw, &QueryLimits::default())?;
        let result = leader.ask(&query).await.map_err(|e| e.to_string());
        out.push(RegionalSection { figure: *f, result });
    }
    Ok(out)
}

impl ReportData {
    /// Every answer the report got, the coarser questions' included: what it spent.
    pub fn answers(&self) -> impl Iterator<Item = &Regional> {
        self.sections
            .iter()
            .flat_map(|s| std::iter::once(&s.regional).chain(&s.coarser))
    }
}

/// Whether a figure tells nothing about its quarter: suppressed, or a noisy figure not
/// distinguishable from 0. (A lower bound says something; none reported says zero.)
fn says_nothing(d: Datum) -> bool {
    match d {
        Datum::Suppressed => true,
        Datum::Noisy { .. } => !d.is_figure(),
        Datum::Exact(_) | Datum::Partial(_) | Datum::Absent => false,
    }
}

/// Quarters a series needs before it is judged (fewer are read as they are).
const MIN_QUARTERS: usize = 4;

/// Whether a quarterly series is mostly unreadable: at least [`MIN_QUARTERS`] quarters, more
/// than half of which say nothing ([`says_nothing`]).
pub fn mostly_unknown(series: &[Datum]) -> bool {
    let unknown = series.iter().filter(|d| says_nothing(**d)).count();
    series.len() >= MIN_QUARTERS && 2 * unknown > series.len()
}

/// Routes one coarser question asks for (a filter holds at most 50 values).
const COARSER_ROUTES: usize = 50;

/// The coarser question for a figure whose quarterly series are mostly unreadable
/// ([`mostly_unknown`]): the same unit by year instead of quarter, for those series only
/// (the routes, for the trend). `None` when no series needs it, or the figure is not quarterly.
pub fn coarser_question(
    figure: Figure,
    regional: &Regional,
    range: &PeriodRange,
) -> Option<RawQuery> {
    if !figure.group_by().contains(&Dimension::Quarter) {
        return None;
    }
    let keyed = figure.group_by().len() > 1;
    let quarterly = quarter_series(regional)?;
    let sparse: Vec<String> = quarterly
        .into_iter()
        // A route with no figure at all is not in the table (a zCDP universe lists thousands
        // of empty ones): there is nothing to replace.
        .filter(|(_, series)| !keyed || series.iter().any(|d| d.is_figure()))
        .filter(|(_, series)| mostly_unknown(series))
        .map(|(key, _)| key)
        .take(COARSER_ROUTES)
        .collect();
    if sparse.is_empty() {
        return None;
    }
    let mut raw = figure.query(range);
    raw.group_by = figure
        .group_by()
        .iter()
        .map(|d| match d {
            Dimension::Quarter => Dimension::Year.code().to_string(),
            d => d.code().to_string(),
        })
        .collect();
    if let Some(row) = figure.group_by().iter().find(|d| **d != Dimension::Quarter) {
        raw.filters.push((row.code().to_string(), sparse));
    }
    Some(raw)
}

/// The series of a quarterly answer: per value of its other dimension (`""` when it has none),
/// one figure per quarter from the first to the last quarter answered, largest total first.
fn quarter_series(r: &Regional) -> Option<Vec<(String, Vec<Datum>)>> {
    let q = r.dimensions.iter().position(|d| *d == Dimension::Quarter)?;
    let other = r.dimensions.iter().position(|d| *d != Dimension::Quarter);
    let mut series: BTreeMap<String, BTreeMap<u32, Datum>> = BTreeMap::new();
    for c in &r.cells {
        if c.key.len() != r.dimensions.len() || c.key.iter().any(|k| k == MARGIN) {
            continue;
        }
        let Some(i) = quarter_index(&c.key[q]) else {
            continue;
        };
        let key = other.map_or_else(String::new, |o| c.key[o].clone());
        let e = series
            .entry(key)
            .or_default()
            .entry(i)
            .or_insert(Datum::Absent);
        *e = *e + datum(c.status, c.value, c.se);
    }
    let first = series
        .values()
        .filter_map(|s| s.keys().next())
        .min()
        .copied()?;
    let last = series
        .values()
        .filter_map(|s| s.keys().next_back())
        .max()
        .copied()?;
    let mut out: Vec<(String, Vec<Datum>)> = series
        .into_iter()
        .map(|(k, s)| {
            let row = (first..=last)
                .map(|i| s.get(&i).copied().unwrap_or(Datum::Absent))
                .collect();
            (k, row)
        })
        .collect();
    let total = |row: &[Datum]| row.iter().map(|d| d.lower_bound()).sum::<u64>();
    out.sort_by(|a, b| total(&b.1).cmp(&total(&a.1)).then_with(|| a.0.cmp(&b.0)));
    Some(out)
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period range does not make a valid question.
    #[error("invalid report period")]
    Query(#[from] QueryError),
    /// The coordinator could not set up its connections or sign.
    #[error(transparent)]
    Fanout(#[from] FanoutError),
    /// A question could not be fitted under the nodes' cell cap.
    #[error(transparent)]
    Fit(#[from] budget::FitError),
    /// A question's task ended without an answer (it panicked or was cancelled).
    #[error("a report question was interrupted")]
    Interrupted,
}

/// Asks the federation every figure's question and each node for its public policy, all at
/// once, and returns what came back, stamped with `clock`'s time (which also signs the
/// envelopes). Nothing is rendered here: [`render`] works from the data.
pub async fn build(
    registry: &Registry,
    range: &PeriodRange,
    clock: Arc<dyn Clock>,
) -> Result<ReportData, ReportError> {
    build_with_rho(registry, range, 0, clock).await
}

/// Like [`build`], every question asking zCDP nodes to spend `rho_micro` on each quarter it
/// touches (0: each node's default). Questions that cross origins with destinations are kept
/// under the nodes' cell cap ([`budget::fit_universe`]).
pub async fn build_with_rho(
    registry: &Registry,
    range: &PeriodRange,
    rho_micro: u64,
    clock: Arc<dyn Clock>,
) -> Result<ReportData, ReportError> {
    let limits = QueryLimits::default();
    let questions = Figure::ALL
        .iter()
        .map(|f| {
            let mut raw = f.query(range);
            raw.rho_micro = rho_micro;
            // Checked here, so that a bad period is an error before anything is sent.
            Query::parse(&raw, &limits)?;
            Ok((*f, raw))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let generated_at = chrono::DateTime::from_timestamp_millis(clock.now_ms())
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let fed = Arc::new(Federation::connect(registry)?.with_clock(clock));
    // Route figures (trend, fees) ask for the busiest routes of the flow matrix only: a route
    // universe is every origin × destination pair (tens of thousands of cells, every one noised
    // and sent), and choosing routes from released noisy figures is post-processing.
    let (first, second): (Vec<_>, Vec<_>) = questions
        .into_iter()
        .partition(|(f, _)| !matches!(f, Figure::Trend | Figure::Fees));
    let (described, answers) = tokio::join!(fed.describe(), ask_all(&fed, first));
    let mut sections: Vec<Section> = answers?
        .into_iter()
        .map(|(figure, query, id, results)| Section {
            figure,
            regional: merge::merge(&id, query.unit(), query.group_by(), &results),
            coarser: None,
        })
        .collect();
    let routes = sections
        .iter()
        .find(|s| s.figure == Figure::Flows)
        .map(|s| busiest_routes(&s.regional, ROUTES_ASKED))
        .unwrap_or_default();
    let second = second
        .into_iter()
        .map(|(f, mut raw)| {
            if !routes.is_empty() {
                raw.filters
                    .push((Dimension::Route.code().to_string(), routes.clone()));
            }
            (f, raw)
        })
        .collect();
    for (figure, query, id, results) in ask_all(&fed, second).await? {
        sections.push(Section {
            figure,
            regional: merge::merge(&id, query.unit(), query.group_by(), &results),
            coarser: None,
        });
    }
    sections.sort_by_key(|s| Figure::ALL.iter().position(|f| *f == s.figure));
    // Quarterly series that say too little are asked again by year: one more question each,
    // only when needed (each spends ρ on the quarters it touches; the budget table counts it).
    let coarser: Vec<(Figure, RawQuery)> = sections
        .iter()
        .filter_map(|s| {
            let mut raw = coarser_question(s.figure, &s.regional, range)?;
            raw.rho_micro = rho_micro;
            Query::parse(&raw, &limits).ok()?;
            Some((s.figure, raw))
        })
        .collect();
    for (figure, query, id, results) in ask_all(&fed, coarser).await? {
        if let Some(s) = sections.iter_mut().find(|s| s.figure == figure) {
            s.coarser = Some(merge::merge(&id, query.unit(), query.group_by(), &results));
        }
    }
    Ok(ReportData {
        coordinator: registry.identity(),
        generated_at,
        range: range.clone(),
        nodes: described
            .into_iter()
            .map(|(country, d)| node_info(country, d))
            .collect(),
        sections,
        regional: Vec::new(),
    })
}

/// Routes the route figures ask for (a filter holds at most 50 values).
const ROUTES_ASKED: usize = 40;

/// The `limit` busiest `ORIG>DEST` routes of an origin × destination answer: cells whose figure
/// is shown as a number (distinguishable from 0), largest first.
pub fn busiest_routes(flows: &Regional, limit: usize) -> Vec<String> {
    let (Some(o), Some(d)) = (
        flows
            .dimensions
            .iter()
            .position(|x| *x == Dimension::Origin),
        flows
            .dimensions
            .iter()
            .position(|x| *x == Dimension::Destination),
    ) else {
        return Vec::new();
    };
    let mut routes: Vec<(u64, String)> = flows
        .cells
        .iter()
        .filter(|c| !c.key.iter().any(|k| k == MARGIN))
        .filter_map(|c| {
            let v = match c.shown() {
                Shown::Count(v) | Shown::AtLeast(v) | Shown::Estimate { value: v, .. } => v,
                Shown::NotDistinguishable { .. } | Shown::Suppressed => return None,
            };
            let route = format!("{}>{}", c.key.get(o)?, c.key.get(d)?);
            (v > 0).then_some((v, route))
        })
        .collect();
    routes.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    routes.truncate(limit);
    routes.into_iter().map(|(_, r)| r).collect()
}

/// One figure's question with the query id it was sent under and every node's outcome.
type Asked = (Figure, Query, String, Vec<NodeResult>);

/// Fits and sends every figure's question concurrently; the answers come back in figure order.
async fn ask_all(
    fed: &Arc<Federation>,
    questions: Vec<(Figure, RawQuery)>,
) -> Result<Vec<Asked>, ReportError> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (figure, raw)) in questions.into_iter().enumerate() {
        let fed = Arc::clone(fed);
        set.spawn(async move {
            let asked = async {
                let query = budget::fit_universe(&fed, &raw, &QueryLimits::default()).await?;
                let (id, results) = fed.ask(&query).await?;
                Ok::<_, ReportError>((figure, query, id, results))
            }
            .await;
            (i, asked)
        });
    }
    let mut answers = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        let (i, asked) = joined.map_err(|_| ReportError::Interrupted)?;
        answers.push((i, asked?));
    }
    answers.sort_by_key(|(i, _)| *i);
    Ok(answers.into_iter().map(|(_, a)| a).collect())
}

/// What the report shows of a node's description, or why there is none.
fn node_info(country: Country, described: Result<NodeDescription, NodeOutcome>) -> NodeInfo {
    NodeInfo {
        country: country.to_string(),
        description: described.map_err(|o| format!("{}: {}", o.label(), o.detail())),
    }
}

/// A one-line summary for a terminal: figures, coverage, marked cells.
pub fn summary(report: &ReportData) -> String {
    let (partial, suppressed) =
        report
            .sections
            .iter()
            .flat_map(|s| &s.regional.cells)
            .fold((0, 0), |(p, s), c| match c.status {
                CellStatus::Exact | CellStatus::Noisy => (p, s),
                CellStatus::Partial => (p + 1, s),
                CellStatus::Suppressed => (p, s + 1),
            });
    let complete = report
        .sections
        .iter()
        .filter(|s| s.regional.coverage.complete())
        .count();
    format!(
        "{} figures, {} with every node answering; {partial} partial and {suppressed} suppressed cells marked",
        report.sections.len(),
        complete
    )
}

// ---------------------------------------------------------------------------------------------
// From regional answers to grids

/// How the values of a dimension are ordered on a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Largest total first (nominal categories: routes, countries, methods, roles).
    Total,
    /// Code-list order (ordered or small closed lists: modes, bands, sex, age, stages).
    Codes,
    /// Chronological, with missing quarters filled in so a gap shows as a gap.
    Time,
}

/// How a code reads on the page.
fn label(dim: Dimension, code: &str) -> String {
    let method = |c: &str| -> Option<&'static str> {
        Some(match c {
            "doc_counterfeit" => "Counterfeit document",
            "doc_forged" => "Forged document",
            "doc_impostor" => "Impostor (another's document)",
            "doc_fraudulently_obtained" => "Fraudulently obtained document",
            "visa_abuse" => "Visa abuse",
            "concealment_vehicle" => "Concealed in a vehicle",
            "concealment_vessel" => "Concealed in a vessel",
            "concealment_container" => "Concealed in a container",
            "clandestine_on_foot" => "Clandestine crossing on foot",
            "corruption" => "Corruption of officials",
            "guide_escort" => "Guide or escort",
            "other" => "Other",
            _ => return None,
        })
    };
    let sentence = |c: &str| {
        let words = c.replace('_', " ");
        let mut chars = words.chars();
        chars
            .next()
            .map(|f| f.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    };
    match dim {
        Dimension::Route => code.replace('>', " → "),
        Dimension::Method => method(code).map_or_else(|| sentence(code), str::to_string),
        Dimension::Sex => match code {
            "F" => "Female".into(),
            "M" => "Male".into(),
            "X" => "Other (X)".into(),
            "U" => "Unknown".into(),
            other => other.into(),
        },
        Dimension::AgeGroup => match code {
            "U" => "Unknown".into(),
            "50+" => "50 and over".into(),
            other => other.replace('-', "–"),
        },
        Dimension::FeeBand => {
            let usd = |s: &str| s.parse::<u64>().map_or_else(|_| s.to_string(), thousands);
            match code.split_once('-') {
                Some((lo, hi)) => format!("${}–{}", usd(lo), usd(hi)),
                None => format!("${}", usd(code.trim_end_matches('+'))) + "+",
            }
        }
        Dimension::Mode
        | Dimension::PlaceType
        | Dimension::SmugglerRole
        | Dimension::SmugglerStage => sentence(code),
        _ => code.to_string(),
    }
}

fn datum(status: CellStatus, value: i64, se: f64) -> Datum {
    if status == CellStatus::Noisy {
        return Datum::Noisy { value, se };
    }
    let value = u64::try_from(value).unwrap_or(0);
    match status {
        CellStatus::Exact | CellStatus::Noisy => Datum::Exact(value),
        CellStatus::Partial => Datum::Partial(value),
        CellStatus::Suppressed => Datum::Suppressed,
    }
}

/// `YYYY-Qn` as a quarter index, if it is one.
fn quarter_index(s: &str) -> Option<u32> {
    let (y, q) = s.split_once("-Q")?;
    let (y, q): (u32, u32) = (y.parse().ok()?, q.parse().ok()?);
    (y < 10_000 && (1..=4).contains(&q)).then_some(y * 4 + q - 1)
}

fn order_values(
    dim: Dimension,
    values: BTreeSet<String>,
    order: Order,
    total: impl Fn(&str) -> u64,
) -> Vec<String> {
    match order {
        Order::Total => {
            let mut v: Vec<String> = values.into_iter().collect();
            v.sort_by(|a, b| total(b).cmp(&total(a)).then_with(|| a.cmp(b)));
            v
        }
        Order::Codes => {
            let listed = dim.closed_values().unwrap_or_default();
            let mut v: Vec<String> = listed
                .iter()
                .filter(|c| values.contains(*c))
                .cloned()
                .collect();
            v.extend(values.into_iter().filter(|c| !listed.contains(c)));
            v
        }
        Order::Time => {
            let idx: Option<Vec<u32>> = values.iter().map(|v| quarter_index(v)).collect();
            match idx.as_deref() {
                // Fill missing quarters between the first and the last (at most 100 years).
                Some([first, .., last]) if last - first < 400 => (*first..=*last)
                    .map(|i| format!("{}-Q{}", i / 4, i % 4 + 1))
                    .collect(),
                _ => values.into_iter().collect(),
            }
        }
    }
}

/// The cells of `r` as a grid: `row` values down, `col` values across (one column named after the
/// unit when `col` is `None`). Margin cells and cells whose key does not fit are left out.
fn pivot(
    r: &Regional,
    row: (Dimension, Order),
    col: Option<(Dimension, Order)>,
    unit_label: &str,
) -> Grid {
    let position = |d: Dimension| r.dimensions.iter().position(|x| *x == d);
    let Some(ri) = position(row.0) else {
        return Grid {
            rows: vec![],
            cols: vec![],
            cells: vec![],
        };
    };
    let ci = col.and_then(|(d, _)| position(d));
    let mut cells: BTreeMap<(String, String), Datum> = BTreeMap::new();
    for c in &r.cells {
        if c.key.len() != r.dimensions.len() || c.key.iter().any(|k| k == MARGIN) {
            continue;
        }
        let rk = c.key[ri].clone();
        let ck = ci.map_or_else(String::new, |i| c.key[i].clone());
        let d = datum(c.status, c.value, c.se);
        let e = cells.entry((rk, ck)).or_insert(Datum::Absent);
        *e = *e + d;
    }
    let row_total = |k: &str| -> u64 {
        cells
            .iter()
            .filter(|((r, _), _)| r == k)
            .map(|(_, d)| d.lower_bound())
            .sum()
    };
    let col_total = |k: &str| -> u64 {
        cells
            .iter()
            .filter(|((_, c), _)| c == k)
            .map(|(_, d)| d.lower_bound())
            .sum()
    };
    let row_keys = order_values(
        row.0,
        cells.keys().map(|(r, _)| r.clone()).collect(),
        row.1,
        row_total,
    );
    let col_keys = match col {
        Some((d, order)) if ci.is_some() => order_values(
            d,
            cells.keys().map(|(_, c)| c.clone()).collect(),
            order,
            col_total,
        ),
        _ => vec![String::new()],
    };
    Grid {
        rows: row_keys.iter().map(|k| label(row.0, k)).collect(),
        cols: match col {
            Some((d, _)) if ci.is_some() => col_keys.iter().map(|k| label(d, k)).collect(),
            _ => vec![unit_label.to_string()],
        },
        cells: row_keys
            .iter()
            .map(|rk| {
                col_keys
                    .iter()
                    .map(|ck| {
                        cells
                            .get(&(rk.clone(), ck.clone()))
                            .copied()
                            .unwrap_or(Datum::Absent)
                    })
                    .collect()
            })
            .collect(),
    }
}

/// The total of every cell of a grid (a lower bound when any cell is, or when a node did not
/// answer).
fn grand_total(grid: &Grid, complete: bool) -> Datum {
    let t = (0..grid.rows.len()).fold(Datum::Absent, |acc, r| acc + grid.row_total(r));
    match t {
        Datum::Exact(v) if !complete => Datum::Partial(v),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// The page

/// The report as one self-contained HTML document.
pub fn render(report: &ReportData) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vrs-coordinator {version}">
<title>Regional smuggling trends — VRS Federation report, {date}</title>
<style>{style}</style>
</head>
<body>
<div class="page">
"#,
        version = env!("CARGO_PKG_VERSION"),
        date = escape(&report.generated_at),
        style = html::STYLE,
    );
    header(&mut out, report);
    out.push_str("<main>\n");
    kpis(&mut out, report);
    node_status(&mut out, report);
    policies(&mut out, report);
    privacy(&mut out, report);
    out.push_str(r#"<section id="reading" aria-labelledby="reading-h"><h2 id="reading-h">How to read the figures</h2>"#);
    out.push_str(html::status_legend());
    out.push_str(r#"<p class="note">Nodes release only aggregate figures that pass their own disclosure control; in zCDP mode every figure carries random noise (so small or negative node values occur, and regional figures come with 95% error bars), in rules mode released values may be perturbed and rounded slightly. A regional figure is the sum of what the nodes released; display rules are applied after that sum, so a figure not distinguishable from 0 reads &lt;U. No record-level data reaches the coordinator or this report.</p></section>"#);
    for s in &report.sections {
        section(&mut out, report, s);
    }
    regional_sections(&mut out, &report.regional);
    out.push_str("</main>\n");
    let _ = write!(
        out,
        r#"<footer><p>Generated {} by <code>{}</code> with vrs-coordinator {}. This file is self-contained: it loads nothing from any network.</p></footer>
</div>
</body>
</html>
"#,
        escape(&report.generated_at),
        escape(&report.coordinator),
        env!("CARGO_PKG_VERSION"),
    );
    out
}

/// Regional mode's answers: noisy totals with 95% error bars and the contributing nodes; no
/// per-node figure exists to show.
fn regional_sections(out: &mut String, sections: &[RegionalSection]) {
    if sections.is_empty() {
        return;
    }
    out.push_str(r#"<section id="regional" aria-labelledby="regional-h"><h2 id="regional-h">Regional mode: complete totals, no state's figures</h2><p class="note">These figures come from secure aggregation: each node secret-shared its exact counts between the coordinator and an independent helper (Prio3), neither of which saw any state's figures; both added noise to the sum. No cell is a lower bound, and there is no per-state column.</p>"#);
    for s in sections {
        let _ = write!(out, "<h3>{}</h3>", escape(s.figure.title()));
        match &s.result {
            Err(e) => {
                let _ = write!(
                    out,
                    r#"<p class="note">No regional result: {}</p>"#,
                    escape(e)
                );
            }
            Ok(r) => {
                let _ = write!(
                    out,
                    r#"<p class="note">{} nodes in the totals (at least {} required): {}. Each figure ± {:.1} (95%).{}</p><table><thead><tr>"#,
                    r.contributing.len(),
                    r.min_nodes,
                    escape(
                        &r.contributing
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    1.96 * r.sigma,
                    if r.dropped.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " Not in the totals: {}.",
                            escape(
                                &r.dropped
                                    .iter()
                                    .map(|d| format!("{} ({})", d.country, d.reason))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        )
                    }
                );
                for d in &r.dimensions {
                    let _ = write!(out, "<th>{}</th>", escape(d));
                }
                out.push_str("<th>Regional total</th><th>± 95%</th></tr></thead><tbody>");
                for c in &r.cells {
                    out.push_str("<tr>");
                    for k in &c.key {
                        let _ = write!(out, "<td>{}</td>", escape(k));
                    }
                    let _ = write!(
                        out,
                        r#"<td class="num">{}</td><td class="num">{:.1}</td></tr>"#,
                        c.noisy,
                        1.96 * c.sigma
                    );
                }
                out.push_str("</tbody></table>");
            }
        }
    }
    out.push_str("</section>\n");
}

/// The period in words, with the data the nodes hold when no bound was given.
fn period_text(report: &ReportData) -> String {
    let held: Vec<&NodeDescription> = report
        .nodes
        .iter()
        .filter_map(|n| n.description.as_ref().ok())
        .collect();
    let first = held
        .iter()
        .map(|d| d.first_period.as_str())
        .filter(|p| !p.is_empty())
        .min();
    let last = held
        .iter()
        .map(|d| d.last_period.as_str())
        .filter(|p| !p.is_empty())
        .max();
    let held = match (first, last) {
        (Some(f), Some(l)) => format!(" (nodes hold {f} to {l})"),
        _ => String::new(),
    };
    match (&report.range.from, &report.range.to) {
        (None, None) => format!("all periods{held}"),
        (Some(f), None) => format!("from {f}{held}"),
        (None, Some(t)) => format!("up to {t}{held}"),
        (Some(f), Some(t)) => format!("{f} to {t}"),
    }
}

fn answered_everything(report: &ReportData) -> (usize, usize) {
    let countries = node_countries(report);
    let full = countries
        .iter()
        .filter(|c| {
            report.sections.iter().all(|s| {
                s.regional
                    .nodes
                    .iter()
                    .any(|n| &n.country == *c && n.status == "answered")
            })
        })
        .count();
    (full, countries.len())
}

fn node_countries(report: &ReportData) -> Vec<String> {
    let mut countries: Vec<String> = report.nodes.iter().map(|n| n.country.clone()).collect();
    for s in &report.sections {
        for n in &s.regional.nodes {
            if !countries.contains(&n.country) {
                countries.push(n.country.clone());
            }
        }
    }
    countries
}

fn header(out: &mut String, report: &ReportData) {
    let (full, asked) = answered_everything(report);
    let _ = write!(
        out,
        r#"<header class="top">
<h1>Regional smuggling trends</h1>
<p class="subtitle">VRS Federation report: figures released by the region's country nodes, merged by the regional coordinator.</p>
<dl class="meta">
<dt>Period</dt><dd>{period}</dd>
<dt>Coverage</dt><dd>{full} of {asked} nodes answered every question</dd>
<dt>Generated</dt><dd>{generated}</dd>
<dt>Coordinator</dt><dd><code>{coordinator}</code></dd>
</dl>
</header>
"#,
        period = escape(&period_text(report)),
        generated = escape(&report.generated_at),
        coordinator = escape(&report.coordinator),
    );
    if full < asked {
        let _ = write!(
            out,
            r##"<p class="callout" role="note">Not every node answered every question (see <a href="#status">node status</a>). Where a node is missing, every regional figure of that question is a lower bound and is marked ≥.</p>"##
        );
    }
}

fn kpis(out: &mut String, report: &ReportData) {
    let cards: [(Figure, &str); 4] = [
        (Figure::Trend, "migrants detected"),
        (Figure::Smugglers, "smugglers recorded"),
        (Figure::Fees, "fee payments reported"),
        (Figure::Deaths, "deaths recorded"),
    ];
    out.push_str(r#"<section class="kpis" aria-label="Regional totals">"#);
    for (figure, what) in cards {
        let Some(s) = report.sections.iter().find(|s| s.figure == figure) else {
            continue;
        };
        let grid = grid_of(s);
        let total = grand_total(&grid, s.regional.coverage.complete());
        let (shown, spoken) = if s.regional.coverage.answered == 0 {
            ("no answer".to_string(), "no node answered".to_string())
        } else {
            (total.text(), total.spoken(what))
        };
        let _ = write!(
            out,
            r#"<div class="kpi"><div class="n"><abbr title="{}">{}</abbr></div><div class="l">{}</div></div>"#,
            escape(&spoken),
            escape(&shown),
            escape(what)
        );
    }
    out.push_str("</section>\n");
}

fn badge(status: &str) -> String {
    let (class, text) = match status {
        "answered" => ("answered", "✓ answered"),
        "refused" => ("refused", "✕ refused"),
        "unreachable" => ("unreachable", "✕ unreachable"),
        "timed_out" => ("timed_out", "◷ timed out"),
        "pending_approval" => ("pending_approval", "◷ pending approval"),
        _ => ("other", status),
    };
    format!(r#"<span class="badge {class}">{}</span>"#, escape(text))
}

fn node_status(out: &mut String, report: &ReportData) {
    let countries = node_countries(report);
    let (full, asked) = answered_everything(report);
    let _ = write!(
        out,
        r#"<section id="status" aria-labelledby="status-h"><h2 id="status-h">Node status</h2>
<p class="lede">{full} of {asked} nodes answered every question. Each column is one question; a node that refused, could not be reached or did not answer in time is listed with its reason.</p>
<div class="table-scroll" tabindex="0"><table class="status"><caption>What each node did with each question</caption><thead><tr><th scope="col">Node</th>"#
    );
    for s in &report.sections {
        let _ = write!(
            out,
            r##"<th scope="col"><a href="#fig-{}">{}</a></th>"##,
            s.figure.id(),
            escape(s.figure.short())
        );
    }
    out.push_str("</tr></thead><tbody>");
    for country in &countries {
        let _ = write!(out, r#"<tr><th scope="row">{}</th>"#, escape(country));
        for s in &report.sections {
            match s.regional.nodes.iter().find(|n| &n.country == country) {
                Some(n) if n.status == "answered" => {
                    let _ = write!(
                        out,
                        r#"<td>{}<span class="detail">{} ms</span></td>"#,
                        badge(&n.status),
                        n.elapsed_ms
                    );
                }
                Some(n) => {
                    let _ = write!(
                        out,
                        r#"<td>{}<span class="detail">{}</span></td>"#,
                        badge(&n.status),
                        escape(&n.detail)
                    );
                }
                None => out.push_str(r#"<td><span class="detail">not asked</span></td>"#),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>\n");
}

fn policies(out: &mut String, report: &ReportData) {
    out.push_str(
        r#"<section id="policy" aria-labelledby="policy-h"><h2 id="policy-h">Public disclosure policies</h2>
<p class="lede">Each node decides what it releases. A figure below a node's minimum count, with fewer contributing incidents than its minimum, or dominated by one incident is suppressed, and further cells may be suppressed so that it cannot be recomputed from totals.</p>
<div class="table-scroll" tabindex="0"><table class="status"><caption>Policy each node publishes</caption><thead><tr><th scope="col">Node</th><th scope="col">Data held</th><th scope="col">Minimum count</th><th scope="col">Minimum contributors</th><th scope="col">Dominance rule</th><th scope="col">Perturbation</th><th scope="col">Rounding</th><th scope="col">Software</th></tr></thead><tbody>"#,
    );
    for n in &report.nodes {
        let _ = write!(out, r#"<tr><th scope="row">{}</th>"#, escape(&n.country));
        match &n.description {
            Ok(d) => {
                let p = &d.policy;
                let _ = write!(
                    out,
                    "<td>{} to {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    escape(&d.first_period),
                    escape(&d.last_period),
                    p.min_count,
                    p.min_contributors,
                    if p.dominance_p == 0 {
                        "off".to_string()
                    } else {
                        format!("p = {} %", p.dominance_p)
                    },
                    if p.perturbation {
                        format!("on, at most ±{}", p.perturbation_max_deviation)
                    } else {
                        "off".to_string()
                    },
                    if p.rounding_base <= 1 {
                        "none".to_string()
                    } else {
                        format!("to multiples of {}", p.rounding_base)
                    },
                    escape(&d.software_version),
                );
            }
            Err(why) => {
                let _ = write!(
                    out,
                    r#"<td colspan="7"><span class="detail">No description: {}</span></td>"#,
                    escape(why)
                );
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// Each node's protection mode and what this report's questions cost it: ρ charged to its
/// most-charged quarter, quarters' budgets spent in all, and the least budget left afterwards.
fn privacy(out: &mut String, report: &ReportData) {
    let spends = budget::spend(report.answers());
    out.push_str(
        r#"<section id="privacy" aria-labelledby="privacy-h"><h2 id="privacy-h">Protection and privacy-loss budget</h2>
<p class="lede">Nodes in zCDP mode add calibrated random noise to every figure and keep a finite privacy-loss budget (ρ) for every quarter of records; every new question spends some of it, asking the same question again is free, and a node refuses a question that would overspend. Nodes in rules_v1 mode use the older rules, which are not protected against many different questions.</p>
<div class="table-scroll" tabindex="0"><table class="status"><caption>Protection mode and budget spent by this report, per node</caption><thead><tr><th scope="col">Node</th><th scope="col">Mode</th><th scope="col">Budget per quarter (ρ)</th><th scope="col">ρ charged by this report (most-charged quarter)</th><th scope="col">Quarters’ budgets spent</th><th scope="col">Least budget left (ρ)</th></tr></thead><tbody>"#,
    );
    for n in &report.nodes {
        let (mode, per_quarter) = match &n.description {
            Ok(d) => (
                d.mode.code().to_string(),
                d.privacy
                    .as_ref()
                    .map_or_else(|| "–".into(), |p| rho_text(p.rho_per_quarter_micro)),
            ),
            Err(_) => ("unknown".into(), "–".into()),
        };
        let spend = spends.iter().find(|s| s.country == n.country);
        let left = report
            .sections
            .iter()
            .flat_map(|s| &s.regional.nodes)
            .filter(|x| x.country == n.country)
            .filter_map(|x| x.privacy.as_ref().and_then(|p| p.min_left_micro()))
            .min();
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&n.country),
            escape(&mode),
            per_quarter,
            spend.map_or_else(|| "–".into(), |s| rho_text(s.max_quarter_micro)),
            spend.map_or_else(
                || "–".into(),
                |s| format!("{:.2} of {} quarters", s.quarter_budgets(), s.quarters)
            ),
            left.map_or_else(|| "–".into(), rho_text),
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// The grid behind a figure (every row; the chart may draw fewer).
fn grid_of(s: &Section) -> Grid {
    grid_for(s.figure, &s.regional)
}

/// The grid of one answer to a figure's question (or to its coarser question).
fn grid_for(figure: Figure, r: &Regional) -> Grid {
    let unit = figure.unit().code();
    let dims = &r.dimensions;
    let order = |d: Dimension| match d {
        Dimension::Quarter | Dimension::Year | Dimension::Month => Order::Time,
        Dimension::Route
        | Dimension::Origin
        | Dimension::Transit
        | Dimension::Destination
        | Dimension::Method
        | Dimension::SmugglerRole
        | Dimension::Citizenship => Order::Total,
        _ => Order::Codes,
    };
    let Some(&first) = dims.first() else {
        return Grid {
            rows: vec![],
            cols: vec![],
            cells: vec![],
        };
    };
    let row = (first, order(first));
    let col = dims.get(1).map(|d| (*d, order(*d)));
    let grid = pivot(r, row, col, &sentence_case(unit));
    // A zCDP universe lists every country or route, nearly all of them empty: rows of long
    // category lists with no figure distinguishable from 0 are left out of charts and tables.
    if matches!(
        first,
        Dimension::Route | Dimension::Origin | Dimension::Destination | Dimension::Citizenship
    ) {
        grid.retain_rows(|cells| cells.iter().any(|d| d.is_figure()))
    } else {
        grid
    }
}

fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A grid cut to at most `rows` × `cols`.
fn limit(grid: &Grid, rows: usize, cols: usize) -> Grid {
    grid.head(rows).transposed().head(cols).transposed()
}

/// How a figure's quarterly answer and its coarser (yearly) answer share the section.
struct Layout2 {
    /// What the chart and the main table show.
    grid: Grid,
    /// The answer behind `grid`.
    shown: Regional,
    /// Whether `grid` is by year (the coarser answer replaced the quarterly one).
    yearly: bool,
    /// Routes moved from the quarterly table to a yearly one, with that table's grid.
    moved: Option<Grid>,
}

/// The quarterly grid, less the series the coarser answer replaces: for the trend, routes that
/// are in the yearly answer get a yearly table of their own; a figure with one series (deaths)
/// is shown by year instead. Without a usable coarser answer the quarterly grid stays whole.
fn layout(s: &Section) -> Layout2 {
    let full = grid_of(s);
    let coarse = s
        .coarser
        .as_ref()
        .filter(|c| c.coverage.answered > 0)
        .map(|c| (c, grid_for(s.figure, c)))
        .filter(|(_, g)| !g.rows.is_empty());
    let Some((c, yearly)) = coarse else {
        return Layout2 {
            grid: full,
            shown: s.regional.clone(),
            yearly: false,
            moved: None,
        };
    };
    if s.figure.group_by().len() == 1 {
        return Layout2 {
            grid: yearly,
            shown: c.clone(),
            yearly: true,
            moved: None,
        };
    }
    let (rows, cells): (Vec<String>, Vec<Vec<Datum>>) = full
        .rows
        .into_iter()
        .zip(full.cells)
        .filter(|(row, _)| !yearly.rows.contains(row))
        .unzip();
    Layout2 {
        grid: Grid {
            rows,
            cols: full.cols,
            cells,
        },
        shown: s.regional.clone(),
        yearly: false,
        moved: Some(yearly),
    }
}

fn section(out: &mut String, report: &ReportData, s: &Section) {
    let f = s.figure;
    let Layout2 {
        grid,
        shown,
        yearly,
        moved,
    } = layout(s);
    let r = &shown;
    let unit = f.unit().code();
    let dims: Vec<&str> = r.dimensions.iter().map(|d| d.code()).collect();
    let lede = match f {
        Figure::Trend => format!(
            "Migrants detected each quarter on the {} routes (origin → destination) with the most detections. Every route is in the tables below.",
            TREND_ROUTES.min(grid.rows.len())
        ),
        Figure::Flows => "Where journeys started (rows) and where they were headed (columns): migrants detected over the whole period. Darker cells carry more people.".into(),
        Figure::Methods => "Methods seen in smuggling incidents, by the mode of transport of the incident. An incident with several methods counts once for each, so the bars add up to more than the number of incidents.".into(),
        Figure::Fees => format!(
            "Fees reported for smuggling services, by route and band of the amount in US dollars (nodes release amounts only as bands). The {} routes with the most fee reports are drawn.",
            FEE_ROUTES.min(grid.rows.len())
        ),
        Figure::Migrants => "Migrants detected, by age group and sex.".into(),
        Figure::Smugglers => "Smugglers recorded, by their role in the operation and the stage their case has reached.".into(),
        Figure::Deaths if yearly => "Deaths recorded in smuggling incidents, per year: per quarter, more than half of the figures were suppressed or not distinguishable from 0, so the report asked the same question by year.".into(),
        Figure::Deaths => "Deaths recorded in smuggling incidents, per quarter.".into(),
    };
    let _ = write!(
        out,
        r#"<section class="figure" id="fig-{id}" data-figure="{id}" aria-labelledby="fig-{id}-h">
<h2 id="fig-{id}-h">{title}</h2>
<p class="lede">{lede}</p>
"#,
        id = f.id(),
        title = escape(&title_for(f, r)),
        lede = escape(&lede),
    );
    coverage(out, r);
    if grid.rows.is_empty() {
        out.push_str(r#"<p class="callout" data-empty="true">No node reported any figure for this question in this period.</p>"#);
    } else {
        let (legend, wide, narrow) = charts(f, &grid, r, &lede, yearly);
        if let Some(legend) = legend {
            out.push_str(&legend);
        }
        // Both layouts are in the page; the style sheet shows the one that fits the window.
        let _ = writeln!(
            out,
            r#"<figure class="wide-only">{wide}</figure><figure class="narrow-only">{narrow}</figure>"#
        );
    }
    let table = figure_table(f, r, &grid, "these figures", &format!("vrs-{}", f.id()));
    out.push_str(r#"<details open><summary>Numbers</summary>"#);
    out.push_str(&table);
    if yearly {
        // The quarterly answer is still what the nodes released: downloadable, not drawn.
        out.push_str(&html::csv_link(
            &format!("vrs-{}-quarterly", f.id()),
            &crate::output::csv(&s.regional, false),
            "the quarterly figures",
        ));
    }
    out.push_str("</details>\n");
    let _ = writeln!(
        out,
        r#"<p class="note">Question: {unit} by {dims}, {period}. Query id <code>{id}</code>.</p>"#,
        dims = escape(&dims.join(", ")),
        period = escape(&period_text(report)),
        id = escape(&r.query_id),
    );
    if let (Some(moved), Some(c)) = (moved, &s.coarser) {
        let _ = write!(
            out,
            r#"<h3 id="fig-{id}-yearly">By year, where quarters say too little</h3>
<p class="lede">{n} routes had more than half of their quarters suppressed or not distinguishable from 0, so the report asked the same question by year for them (one more question; its privacy-loss budget is in the budget table). Their yearly figures replace their quarterly rows above.</p>
"#,
            id = f.id(),
            n = moved.rows.len(),
        );
        out.push_str(&figure_table(
            f,
            c,
            &moved,
            "the yearly figures",
            &format!("vrs-{}-yearly", f.id()),
        ));
        let cdims: Vec<&str> = c.dimensions.iter().map(|d| d.code()).collect();
        let _ = writeln!(
            out,
            r#"<p class="note">Question: {unit} by {dims}, {period}, for these routes. Query id <code>{id}</code>.</p>"#,
            dims = escape(&cdims.join(", ")),
            period = escape(&period_text(report)),
            id = escape(&c.query_id),
        );
    }
    out.push_str("</section>\n");
}

/// A figure's title for the answer `r`: by year when `r` is the coarser answer.
fn title_for(f: Figure, r: &Regional) -> String {
    if r.dimensions.contains(&Dimension::Year) {
        f.title()
            .replace("per quarter", "per year")
            .replace("by quarter", "by year")
    } else {
        f.title().to_string()
    }
}

/// A figure's table of `grid` (from the answer `r`) with the link that downloads `r` as CSV.
fn figure_table(f: Figure, r: &Regional, grid: &Grid, what: &str, file: &str) -> String {
    let dims: Vec<&str> = r.dimensions.iter().map(|d| d.code()).collect();
    let caption = format!(
        "{} — {} by {}",
        title_for(f, r),
        f.unit().code(),
        dims.join(" and ").replace('_', " ")
    );
    let corner = sentence_case(&label_of(r, 0));
    let table = html::grid_table(&caption, &corner, grid, r.dimensions.len() > 1);
    let download = html::csv_link(file, &crate::output::csv(r, false), what);
    format!("{table}{download}")
}

/// What a figure's axes show: (horizontal, vertical). Bars are horizontal, so their horizontal
/// axis counts and the vertical one lists categories.
fn axis_titles(f: Figure) -> (&'static str, &'static str) {
    match f {
        Figure::Trend => ("Quarter", "Migrants detected per quarter"),
        Figure::Flows => ("destination", "origin"),
        Figure::Methods => ("Smuggling incidents (once per method seen)", "Method"),
        Figure::Fees => ("Fee payments reported", "Route"),
        Figure::Migrants => ("Migrants detected", "Age group"),
        Figure::Smugglers => ("Smugglers recorded", "Role"),
        Figure::Deaths => ("Quarter", "Deaths recorded per quarter"),
    }
}

/// Rows and columns the flow matrix draws, wide and narrow.
const FLOW_NARROW: (usize, usize) = (12, 5);

/// A figure's series legend (if it has one) and its chart, laid out wide and narrow.
fn charts(
    f: Figure,
    grid: &Grid,
    r: &Regional,
    lede: &str,
    yearly: bool,
) -> (Option<String>, String, String) {
    let (x_title, y_title) = match (f, yearly) {
        (Figure::Deaths, true) => ("Year", "Deaths recorded per year"),
        _ => axis_titles(f),
    };
    let narrow_id = format!("{}-narrow", f.id());
    let text = |size: chart::Size| ChartText {
        id: match size {
            chart::Size::Wide => f.id(),
            chart::Size::Narrow => &narrow_id,
        },
        title: f.title(),
        desc: lede,
        unit: f.unit().code(),
        x_title,
        y_title,
        size,
    };
    let draw = |size: chart::Size| match f {
        Figure::Trend => chart::lines(&text(size), &limit(grid, TREND_ROUTES, usize::MAX)),
        Figure::Flows => {
            let (rows, cols) = match size {
                chart::Size::Wide => (FLOW_ROWS, FLOW_COLS),
                chart::Size::Narrow => FLOW_NARROW,
            };
            chart::heatmap(&text(size), &limit(grid, rows, cols))
        }
        Figure::Methods | Figure::Smugglers => {
            chart::bars(&text(size), grid, Layout::Stacked, CATEGORICAL)
        }
        Figure::Fees => chart::bars(
            &text(size),
            &limit(grid, FEE_ROUTES, usize::MAX),
            Layout::Stacked,
            SEQUENTIAL,
        ),
        Figure::Migrants => chart::bars(&text(size), grid, Layout::Grouped, CATEGORICAL),
        Figure::Deaths => chart::lines(&text(size), &grid.transposed()),
    };
    let legend = match f {
        Figure::Trend | Figure::Deaths => None,
        Figure::Flows => Some(format!(
            r#"<p class="note">Shading follows the square root of the number, so that small flows stay visible.{}</p>"#,
            match (grid.rows.len() > FLOW_ROWS, grid.cols.len() > FLOW_COLS) {
                (false, false) => String::new(),
                (true, false) => format!(
                    " The {FLOW_ROWS} largest of {} origins are drawn; the table has them all.",
                    grid.rows.len()
                ),
                (false, true) => format!(
                    " The {FLOW_COLS} largest of {} destinations are drawn; the table has them all.",
                    grid.cols.len()
                ),
                (true, true) => format!(
                    " The {FLOW_ROWS} largest origins and {FLOW_COLS} largest destinations are drawn (on a phone {} and {}); the table has them all.",
                    FLOW_NARROW.0, FLOW_NARROW.1
                ),
            }
        )),
        Figure::Fees => Some(html::series_legend(&label_of(r, 1), &grid.cols, SEQUENTIAL)),
        Figure::Methods | Figure::Smugglers | Figure::Migrants => Some(html::series_legend(
            &label_of(r, 1),
            &grid.cols,
            CATEGORICAL,
        )),
    };
    (legend, draw(chart::Size::Wide), draw(chart::Size::Narrow))
}

/// The name of the `i`th dimension of an answer, in words.
fn label_of(r: &Regional, i: usize) -> String {
    r.dimensions
        .get(i)
        .map(|d| d.code().replace('_', " "))
        .unwrap_or_default()
}

fn coverage(out: &mut String, r: &Regional) {
    let c = r.coverage;
    if c.complete() {
        let _ = write!(
            out,
            r#"<p class="coverage">{} of {} nodes answered</p>"#,
            c.answered, c.asked
        );
        return;
    }
    let missing: Vec<String> = r
        .nodes
        .iter()
        .filter(|n| n.status != "answered")
        .map(|n| format!("{} {}", n.country, n.status.replace('_', " ")))
        .collect();
    let _ = write!(
        out,
        r#"<p class="coverage incomplete">Only {} of {} nodes answered ({}): every figure here is a lower bound</p>"#,
        c.answered,
        c.asked,
        escape(&missing.join(", "))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{
        Contribution, Contributions, Coverage, NodePrivacy, NodeStatus, RegionalCell,
    };
    use vrs_core::answer::SuppressionReason;

    fn node(country: &str, status: &str, detail: &str) -> NodeStatus {
        NodeStatus {
            country: country.into(),
            status: status.into(),
            detail: detail.into(),
            elapsed_ms: 12,
            mode: None,
            privacy: None,
        }
    }

    fn cell(key: &[&str], value: u64, status: CellStatus) -> RegionalCell {
        let mut nodes = Contributions::default();
        nodes.insert("THA".parse().unwrap(), Contribution::Value(value));
        if status != CellStatus::Exact {
            nodes.insert(
                "MYS".parse().unwrap(),
                Contribution::Suppressed(SuppressionReason::BelowThreshold),
            );
        }
        RegionalCell {
            key: key.iter().map(|s| s.to_string()).collect(),
            value: if status == CellStatus::Suppressed {
                0
            } else {
                i64::try_from(value).unwrap()
            },
            se: 0.0,
            status,
            nodes,
        }
    }

    /// Cells for a figure: a few of each status, keys that make sense for its dimensions.
    fn cells(f: Figure) -> Vec<RegionalCell> {
        let values: Vec<Vec<&str>> = match f {
            Figure::Trend => vec![
                vec!["MMR>THA", "2024-Q1"],
                vec!["MMR>THA", "2024-Q2"],
                vec!["MMR>THA", "2024-Q4"],
                vec!["IDN>MYS", "2024-Q1"],
                vec!["IDN>MYS", "2024-Q3"],
            ],
            Figure::Flows => vec![
                vec!["MMR", "THA"],
                vec!["MMR", "MYS"],
                vec!["IDN", "MYS"],
                vec!["AFG", "AUS"],
            ],
            Figure::Methods => vec![
                vec!["visa_abuse", "air"],
                vec!["guide_escort", "land"],
                vec!["guide_escort", "sea"],
                vec!["corruption", "land"],
            ],
            Figure::Fees => vec![
                vec!["MMR>THA", "0-499"],
                vec!["MMR>THA", "500-999"],
                vec!["AFG>AUS", "10000+"],
                vec!["AFG>AUS", "5000-9999"],
            ],
            Figure::Migrants => vec![
                vec!["18-24", "M"],
                vec!["18-24", "F"],
                vec!["0-13", "F"],
                vec!["50+", "X"],
            ],
            Figure::Smugglers => vec![
                vec!["transporter", "arrested"],
                vec!["transporter", "convicted"],
                vec!["organiser", "suspected"],
                vec!["guide", "acquitted"],
            ],
            Figure::Deaths => vec![
                vec!["2024-Q1"],
                vec!["2024-Q2"],
                vec!["2024-Q3"],
                vec!["2024-Q4"],
            ],
        };
        values
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let status = match i % 4 {
                    1 => CellStatus::Partial,
                    3 => CellStatus::Suppressed,
                    _ => CellStatus::Exact,
                };
                cell(k, 100 + 37 * i as u64, status)
            })
            .collect()
    }

    fn report(nodes: Vec<NodeStatus>) -> ReportData {
        let answered = nodes.iter().filter(|n| n.status == "answered").count();
        ReportData {
            coordinator: "coordinator.bali-rc.vrs.test".into(),
            generated_at: "2025-01-02 03:04 UTC".into(),
            range: PeriodRange {
                from: Some("2024".into()),
                to: None,
            },
            nodes: vec![
                NodeInfo {
                    country: "THA".into(),
                    description: Ok(NodeDescription {
                        schema_version: 3,
                        units: vec!["migrants".into()],
                        dimensions: Vec::new(),
                        first_period: "2021-01".into(),
                        last_period: "2024-12".into(),
                        software_version: "0.1.0".into(),
                        policy: PolicySummary {
                            min_count: 5,
                            min_contributors: 3,
                            dominance_p: 10,
                            perturbation: true,
                            perturbation_max_deviation: 2,
                            rounding_base: 1,
                            max_dimensions: 3,
                        },
                        mode: vrs_core::answer::ProtectionMode::RulesV1,
                        privacy: None,
                        budget: Vec::new(),
                        audit_key: String::new(),
                        audit_head: None,
                    }),
                },
                NodeInfo {
                    country: "MYS".into(),
                    description: Err("unreachable: <b>connection refused</b>".into()),
                },
            ],
            sections: Figure::ALL
                .iter()
                .map(|f| Section {
                    figure: *f,
                    coarser: None,
                    regional: Regional {
                        query_id: "0123abcd".into(),
                        unit: f.unit(),
                        dimensions: f.group_by().to_vec(),
                        cells: cells(*f),
                        nodes: nodes.clone(),
                        coverage: Coverage {
                            answered,
                            asked: nodes.len(),
                        },
                    },
                })
                .collect(),
            regional: Vec::new(),
        }
    }

    #[test]
    fn the_regional_section_shows_totals_error_bars_and_contributors_and_no_node_figures() {
        use crate::regional::{Dropped, RegionalCell, RegionalResult};
        let mut data = report(vec![node("THA", "answered", "5 cells")]);
        assert!(
            !render(&data).contains("id=\"regional\""),
            "no section unless asked"
        );
        data.regional = vec![
            RegionalSection {
                figure: Figure::Deaths,
                result: Ok(RegionalResult {
                    query_id: "q".into(),
                    dimensions: vec!["quarter".into()],
                    cells: vec![RegionalCell {
                        key: vec!["2024-Q1".into()],
                        noisy: 4321,
                        sigma: 4.47,
                    }],
                    contributing: vec!["THA".parse().unwrap(), "IDN".parse().unwrap()],
                    dropped: vec![Dropped {
                        country: "MYS".parse().unwrap(),
                        by: "helper",
                        reason: "FETCH_FAILED".into(),
                    }],
                    min_nodes: 2,
                    sigma_leader: 3.16,
                    sigma_helper: 3.16,
                    sigma: 4.47,
                    max_cell: 100_000,
                }),
            },
            RegionalSection {
                figure: Figure::Methods,
                result: Err("BATCH_TOO_SMALL: 1 nodes in the batch, at least 2 needed".into()),
            },
        ];
        let html = render(&data);
        let section = &html[html.find("id=\"regional\"").unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        assert!(section.contains("<td class=\"num\">4321</td><td class=\"num\">8.8</td>"));
        assert!(section.contains("2 nodes in the totals (at least 2 required): THA, IDN"));
        assert!(section.contains("Not in the totals: MYS (FETCH_FAILED)"));
        assert!(section.contains("No regional result: BATCH_TOO_SMALL"));
        assert!(!section.contains("<th>THA</th>"), "no per-node column");
    }

    #[test]
    fn a_full_report_has_every_chart_with_a_table_and_marks_each_status() {
        let html = render(&report(vec![
            node("THA", "answered", "5 cells"),
            node("MYS", "answered", "4 cells"),
        ]));
        assert!(html.starts_with("<!doctype html>"));
        for f in Figure::ALL {
            let start = html
                .find(&format!(r#"id="fig-{}""#, f.id()))
                .unwrap_or_else(|| panic!("{f:?} missing"));
            let end = html[start..].find("</section>").unwrap() + start;
            let part = &html[start..end];
            assert!(part.contains(r#"role="img""#), "{f:?}: no chart");
            assert!(part.contains("<caption>"), "{f:?}: no table caption");
            assert!(
                part.contains(r#"<th scope="row">"#),
                "{f:?}: no row headers"
            );
            assert!(part.contains("mark exact"), "{f:?}");
            assert!(part.contains("mark partial"), "{f:?}");
            assert!(part.contains("mark suppressed"), "{f:?}");
            assert!(part.contains(r#"<td class="partial">"#), "{f:?}");
            assert!(part.contains(r#"<td class="suppressed">"#), "{f:?}");
        }
        assert!(html.contains("2 of 2 nodes answered every question"));
        assert!(html.contains("How to read the figures"));
        assert!(html.contains("Minimum count"));
        assert!(html.contains("2025-01-02 03:04 UTC"));
        assert!(html.contains("from 2024"));
    }

    /// Every cell of every figure noisy (zCDP): one clearly above 0, the others not
    /// distinguishable from it.
    fn noisy_report() -> ReportData {
        let mut data = report(vec![
            node("THA", "answered", "5 cells"),
            node("MYS", "answered", "4 cells"),
        ]);
        for s in &mut data.sections {
            for (i, c) in s.regional.cells.iter_mut().enumerate() {
                c.status = CellStatus::Noisy;
                c.value = if i == 0 { 500 } else { -3 };
                c.se = 4.0;
                c.nodes = Contributions::from_iter([(
                    "THA".parse().unwrap(),
                    Contribution::Noisy {
                        value: c.value,
                        sigma: 4.0,
                    },
                )]);
            }
        }
        data
    }

    #[test]
    fn noisy_figures_get_error_bars_and_intervals_never_negative_counts() {
        let html = render(&noisy_report());
        for f in [
            Figure::Trend,
            Figure::Methods,
            Figure::Deaths,
            Figure::Migrants,
        ] {
            let start = html.find(&format!(r#"id="fig-{}""#, f.id())).unwrap();
            let end = html[start..].find("</section>").unwrap() + start;
            let part = &html[start..end];
            assert!(part.contains("mark noisy"), "{f:?}");
            assert!(
                part.contains(r#"<g class="errorbar">"#),
                "{f:?}: no error bar"
            );
            assert!(part.contains(r#"<td class="noisy">"#), "{f:?}");
            assert!(part.contains("500 ± 8"), "{f:?}: no ± interval");
            assert!(
                part.contains("&lt;8"),
                "{f:?}: no not-distinguishable figure"
            );
            assert!(!part.contains(">-3<"), "{f:?}: a negative count");
        }
        assert!(html.contains("Protection and privacy-loss budget"));
        assert!(html.contains("95% interval"));
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        let html = render(&report(vec![node("THA", "answered", "5 cells")]));
        assert!(!html.contains("<script"));
        assert!(!html.contains("http:") && !html.contains("https:"));
        assert!(!html.contains("src=") && !html.contains("@import") && !html.contains("url(http"));
        assert!(!html.contains("<link"));
    }

    #[test]
    fn node_messages_are_escaped() {
        let html = render(&report(vec![
            node("THA", "answered", "5 cells"),
            node(
                "MYS",
                "refused",
                r#"POLICY: <script>alert("x")</script><img src=x onerror=alert(1)>"#,
            ),
        ]));
        assert!(!html.contains("<script"), "unescaped script");
        assert!(!html.contains("<img"), "unescaped img");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;connection refused&lt;/b&gt;"));
    }

    #[test]
    fn a_missing_node_is_shown_and_makes_every_total_a_lower_bound() {
        let html = render(&report(vec![
            node("THA", "answered", "5 cells"),
            node("MYS", "timed_out", "no answer before the deadline"),
        ]));
        assert!(html.contains("1 of 2 nodes answered every question"));
        assert!(html.contains("Only 1 of 2 nodes answered (MYS timed out)"));
        assert!(html.contains("timed out"));
        assert!(html.contains(r#"class="callout""#));
        // The migrants card: exact cells only would still be a lower bound.
        let kpi = &html[html.find(r#"class="kpis""#).unwrap()..];
        assert!(kpi[..kpi.find("</section>").unwrap()].contains("≥"));
    }

    #[test]
    fn quarters_are_filled_so_gaps_show() {
        let r = &report(vec![node("THA", "answered", "")]).sections[0];
        let g = grid_of(r);
        assert_eq!(g.cols, ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]);
        assert_eq!(g.rows, ["MMR → THA", "IDN → MYS"]);
        assert_eq!(g.cells[0][2], Datum::Absent);
        assert_eq!(g.cells[0][3], Datum::Exact(174));
        assert_eq!(g.cells[1][0], Datum::Suppressed);
        assert_eq!(g.cells[0][1], Datum::Partial(137));
    }

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label(Dimension::FeeBand, "1000-2499"), "$1,000–2,499");
        assert_eq!(label(Dimension::FeeBand, "10000+"), "$10,000+");
        assert_eq!(label(Dimension::Sex, "F"), "Female");
        assert_eq!(label(Dimension::Mode, "unknown"), "Unknown");
        assert_eq!(
            label(Dimension::SmugglerRole, "corrupt_official"),
            "Corrupt official"
        );
        assert_eq!(label(Dimension::Route, "AFG>AUS"), "AFG → AUS");
    }

    #[test]
    fn code_lists_keep_their_order_and_unknown_values_follow() {
        let values: BTreeSet<String> = ["M", "F", "Q"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            order_values(Dimension::Sex, values, Order::Codes, |_| 0),
            ["F", "M", "Q"]
        );
    }

    #[test]
    fn every_question_parses() {
        for range in [
            PeriodRange::default(),
            PeriodRange {
                from: Some("2023-Q2".into()),
                to: Some("2024".into()),
            },
        ] {
            for f in Figure::ALL {
                Query::parse(&f.query(&range), &QueryLimits::default()).unwrap();
            }
        }
    }

    /// The percent-decoded CSV of the first download link in `part`.
    fn linked_csv(part: &str) -> String {
        let start = part
            .find(r#"href="data:text/csv;charset=utf-8,"#)
            .expect("a CSV link")
            + r#"href="data:text/csv;charset=utf-8,"#.len();
        let url = &part[start..start + part[start..].find('"').unwrap()];
        let mut bytes = Vec::new();
        let mut it = url.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex: Vec<u8> = it.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            } else {
                bytes.push(b);
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    /// The body rows of the first table in `part`: row header, then each cell's text.
    fn table_rows(part: &str) -> Vec<(String, Vec<String>)> {
        let strip = |s: &str| {
            let mut out = String::new();
            let mut tag = false;
            for c in s.chars() {
                match c {
                    '<' => tag = true,
                    '>' => tag = false,
                    c if !tag => out.push(c),
                    _ => {}
                }
            }
            out.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        };
        let body = &part[part.find("<tbody>").unwrap()..part.find("</tbody>").unwrap()];
        body.split("<tr>")
            .skip(1)
            .map(|tr| {
                let head = tr.split("</th>").next().unwrap();
                let cells = tr
                    .split("<td")
                    .skip(1)
                    .map(|td| strip(&format!("<td{td}")))
                    .collect();
                (strip(head), cells)
            })
            .collect()
    }

    #[test]
    fn each_table_downloads_as_csv_with_its_numbers() {
        let data = report(vec![
            node("THA", "answered", "5 cells"),
            node("MYS", "answered", "4 cells"),
        ]);
        let html = render(&data);
        for s in &data.sections {
            let f = s.figure;
            let start = html.find(&format!(r#"id="fig-{}""#, f.id())).unwrap();
            let part = &html[start..start + html[start..].find("</section>").unwrap()];
            assert!(
                part.contains(&format!(r#"download="vrs-{}.csv""#, f.id())),
                "{f:?}"
            );
            let csv = linked_csv(part);
            assert_eq!(csv, crate::output::csv(&s.regional, false), "{f:?}");
            let mut lines = csv.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            let dims = s.regional.dimensions.len();
            assert_eq!(header[dims], "value", "{f:?}");
            let grid = grid_of(s);
            let rows = table_rows(part);
            assert_eq!(rows.len(), grid.rows.len(), "{f:?}");
            let mut matched = 0;
            for line in lines {
                let fields: Vec<&str> = line.split(',').collect();
                let row_label = label(s.regional.dimensions[0], fields[0]);
                let col_label = if dims > 1 {
                    label(s.regional.dimensions[1], fields[1])
                } else {
                    sentence_case(f.unit().code())
                };
                let (value, status) = (fields[dims], fields[dims + 4]);
                let expected = match status {
                    "exact" => thousands(value.parse().unwrap()),
                    "partial" => format!("≥{}", thousands(value.parse().unwrap())),
                    "suppressed" => "×".to_string(),
                    other => panic!("{other}"),
                };
                let r = rows.iter().position(|(h, _)| *h == row_label).unwrap();
                let c = grid.cols.iter().position(|c| *c == col_label).unwrap();
                assert_eq!(rows[r].1[c], expected, "{f:?} {line}");
                matched += 1;
            }
            // Every figure in the table is in the CSV (totals and "none reported" are not).
            let shown = rows
                .iter()
                .flat_map(|(_, cells)| &cells[..grid.cols.len()])
                .filter(|c| *c != "–")
                .count();
            assert_eq!(matched, shown, "{f:?}");
        }
    }

    #[test]
    fn a_shared_interval_is_said_once_and_the_newest_quarters_come_first() {
        let g = Grid {
            rows: vec!["A → B".into()],
            cols: vec![
                "2023-Q4".into(),
                "2024-Q1".into(),
                "2024-Q2".into(),
                "2024-Q3".into(),
            ],
            cells: vec![vec![
                Datum::Noisy {
                    value: 1_500,
                    se: 6.3,
                },
                Datum::Noisy {
                    value: 900,
                    se: 6.3,
                },
                Datum::Noisy { value: 3, se: 6.3 },
                Datum::Noisy {
                    value: 700,
                    se: 6.3,
                },
            ]],
        };
        assert_eq!(html::common_half_width(&g), Some(12));
        let t = html::grid_table("Cap", "Route", &g, true);
        assert!(t.contains("every noisy figure ± 12"), "{t}");
        assert!(t.contains(">1,500<") && t.contains(">900<"), "{t}");
        assert!(t.contains("&lt;16"), "{t}");
        // The total's interval is wider: it keeps its own.
        assert!(t.contains(">3,103 ± 25<"), "{t}");
        assert!(t.contains(r#"colspan="1" class="year">2023<"#), "{t}");
        assert!(t.contains(r#"colspan="3" class="year">2024<"#), "{t}");
        assert!(t.contains("newest-first"), "{t}");
        // Two estimates, or two different intervals: every cell says its own.
        let mut two = g.clone();
        two.cells[0][3] = Datum::Noisy {
            value: 700,
            se: 9.0,
        };
        assert_eq!(html::common_half_width(&two), None);
        assert!(html::grid_table("Cap", "Route", &two, true).contains(">1,500 ± 12<"));
    }

    fn noisy(value: i64) -> Datum {
        Datum::Noisy { value, se: 5.0 }
    }

    #[test]
    fn a_series_is_mostly_unknown_when_more_than_half_says_nothing() {
        use Datum::*;
        let x = Suppressed;
        let u = noisy(2); // not distinguishable from 0 (interval ±9.8)
        let e = Exact(40);
        let p = Partial(40);
        for (series, expected) in [
            (vec![], false),
            (vec![x, x, x], false), // too short to judge
            (vec![x, x, x, x], true),
            (vec![x, x, e, e], false), // half is not more than half
            (vec![x, u, x, e], true),
            (vec![u, u, u, noisy(300)], true),
            (vec![p, p, p, x], false), // lower bounds say something
            (vec![Absent, Absent, Absent, x], false), // none reported is zero
            (vec![e, x, u, e, x], true),
        ] {
            assert_eq!(mostly_unknown(&series), expected, "{series:?}");
        }
    }

    /// A route × quarter answer: one route per series, quarters 2024-Q1.. in order.
    fn trend_answer(series: &[(&str, Vec<Datum>)]) -> Regional {
        let mut cells = Vec::new();
        for (route, data) in series {
            for (i, d) in data.iter().enumerate() {
                let (status, value, se) = match *d {
                    Datum::Exact(v) => (CellStatus::Exact, v as i64, 0.0),
                    Datum::Partial(v) => (CellStatus::Partial, v as i64, 0.0),
                    Datum::Suppressed => (CellStatus::Suppressed, 0, 0.0),
                    Datum::Noisy { value, se } => (CellStatus::Noisy, value, se),
                    Datum::Absent => continue,
                };
                cells.push(RegionalCell {
                    key: vec![
                        route.to_string(),
                        format!("{}-Q{}", 2024 + i / 4, i % 4 + 1),
                    ],
                    value,
                    se,
                    status,
                    nodes: Contributions::default(),
                });
            }
        }
        Regional {
            query_id: "q".into(),
            unit: Unit::Migrants,
            dimensions: vec![Dimension::Route, Dimension::Quarter],
            cells,
            nodes: vec![],
            coverage: Coverage {
                answered: 1,
                asked: 1,
            },
        }
    }

    #[test]
    fn the_coarser_question_asks_by_year_for_the_sparse_series_only() {
        use Datum::*;
        let r = trend_answer(&[
            ("AFG>AUS", vec![Exact(90), Exact(80), Exact(70), Exact(60)]),
            (
                "MMR>THA",
                vec![Suppressed, Exact(9), Suppressed, Suppressed],
            ),
            ("IND>MYS", vec![noisy(1), noisy(-2), noisy(3), noisy(0)]), // nothing at all: not drawn
            ("LAO>THA", vec![noisy(1), noisy(40), noisy(3), noisy(0)]),
        ]);
        let range = PeriodRange::default();
        let raw = coarser_question(Figure::Trend, &r, &range).unwrap();
        assert_eq!(raw.group_by, ["route", "year"]);
        assert_eq!(raw.unit, "migrants");
        assert_eq!(
            raw.filters,
            [(
                "route".to_string(),
                vec!["LAO>THA".to_string(), "MMR>THA".to_string()]
            )]
        );
        Query::parse(&raw, &QueryLimits::default()).unwrap();
        // Every series readable: nothing more is asked, nothing more is spent.
        let fine = trend_answer(&[("AFG>AUS", vec![Exact(1); 4])]);
        assert_eq!(coarser_question(Figure::Trend, &fine, &range), None);
        // Figures that are not quarterly never get one.
        assert_eq!(coarser_question(Figure::Flows, &r, &range), None);
        // Deaths: one series, asked by year with no filter.
        let mut deaths = trend_answer(&[("", vec![Suppressed, Suppressed, Exact(3), Suppressed])]);
        deaths.dimensions = vec![Dimension::Quarter];
        for c in &mut deaths.cells {
            c.key.remove(0);
        }
        let raw = coarser_question(Figure::Deaths, &deaths, &range).unwrap();
        assert_eq!(raw.group_by, ["year"]);
        assert!(raw.filters.is_empty());
    }

    fn any_datum() -> impl proptest::strategy::Strategy<Value = Datum> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..500).prop_map(Datum::Exact),
            (0u64..500).prop_map(Datum::Partial),
            Just(Datum::Suppressed),
            Just(Datum::Absent),
            (-20i64..500).prop_map(noisy),
        ]
    }

    proptest::proptest! {
        /// The choice follows the rule, and hiding more never makes the coarser question less
        /// likely: turning any quarter into a suppressed one keeps a "yes" a "yes".
        #[test]
        fn the_coarser_choice_is_the_rule_and_monotone(
            series in proptest::collection::vec(any_datum(), 0..12),
            at in 0usize..12,
        ) {
            let unknown = series
                .iter()
                .filter(|d| matches!(d, Datum::Suppressed) || matches!(d, Datum::Noisy { .. } if !d.is_figure()))
                .count();
            proptest::prop_assert_eq!(
                mostly_unknown(&series),
                series.len() >= MIN_QUARTERS && 2 * unknown > series.len()
            );
            if mostly_unknown(&series) && !series.is_empty() {
                let mut worse = series.clone();
                let i = at % worse.len();
                worse[i] = Datum::Suppressed;
                proptest::prop_assert!(mostly_unknown(&worse));
            }
            // The question asks for this route exactly when the rule says so and it is drawn.
            let r = trend_answer(&[("MMR>THA", series.clone()), ("AFG>AUS", vec![Datum::Exact(9); 4])]);
            let asked = coarser_question(Figure::Trend, &r, &PeriodRange::default())
                .is_some_and(|q| q.filters.iter().any(|(_, v)| v.contains(&"MMR>THA".to_string())));
            // Absent quarters at either end are not in the answer at all.
            let first = series.iter().position(|d| *d != Datum::Absent);
            let last = series.iter().rposition(|d| *d != Datum::Absent);
            // The answer spans the first quarter to the later of both routes' last quarters.
            let span: Vec<Datum> = match (first, last) {
                (Some(_), Some(l)) => {
                    let mut v = series[..=l].to_vec();
                    v.resize(l.max(3) + 1, Datum::Absent);
                    v
                }
                _ => vec![],
            };
            let drawn = span.iter().any(|d| d.is_figure());
            proptest::prop_assert_eq!(asked, drawn && mostly_unknown(&span), "{:?}", span);
        }
    }

    #[test]
    fn the_coarser_answer_replaces_the_sparse_rows_and_its_cost_is_counted() {
        let mut data = report(vec![node("THA", "answered", "5 cells")]);
        let privacy = |rho: u64| NodePrivacy {
            replayed: false,
            rho_charged_micro: rho,
            sigma: 1.0,
            privacy_unit: "person".into(),
            quarters: vec![vrs_core::answer::QuarterBudget {
                quarter: "2024-Q1".into(),
                rho_spent_micro: 100_000,
                rho_left_micro: 900_000,
                caller_rho_left_micro: 900_000,
            }],
        };
        let mut answered = node("THA", "answered", "");
        answered.privacy = Some(privacy(50_000));
        let trend = data
            .sections
            .iter_mut()
            .find(|s| s.figure == Figure::Trend)
            .unwrap();
        trend.regional.nodes = vec![answered.clone()];
        let mut yearly = trend_answer(&[("IDN>MYS", vec![Datum::Exact(321)])]);
        yearly.dimensions = vec![Dimension::Route, Dimension::Year];
        yearly.cells[0].key = vec!["IDN>MYS".into(), "2024".into()];
        yearly.query_id = "yearly-id".into();
        yearly.nodes = vec![answered];
        trend.coarser = Some(yearly);
        let html = render(&data);
        let start = html.find(r#"id="fig-trend""#).unwrap();
        let part = &html[start..start + html[start..].find("</section>").unwrap()];
        let (quarterly, yearly) = part.split_at(part.find(r#"id="fig-trend-yearly""#).unwrap());
        assert!(
            !quarterly.contains(r#"<th scope="row">IDN → MYS</th>"#),
            "moved: {quarterly}"
        );
        assert!(quarterly.contains(r#"<th scope="row">MMR → THA</th>"#));
        assert!(
            yearly.contains(r#"<th scope="row">IDN → MYS</th>"#),
            "{yearly}"
        );
        assert!(yearly.contains(">321<") && yearly.contains("yearly-id"));
        assert!(yearly.contains(r#"download="vrs-trend-yearly.csv""#));
        // Both questions are charged: 0.05 + 0.05 on the quarter.
        let spent = budget::spend(data.answers());
        assert_eq!(spent[0].max_quarter_micro, 100_000);
        let privacy_part = &html[html.find(r#"id="privacy""#).unwrap()..];
        assert!(
            privacy_part.contains("<td>0.100</td>"),
            "{}",
            &privacy_part[..2000]
        );
    }

    #[test]
    fn a_single_series_is_shown_by_year_instead() {
        let mut data = report(vec![node("THA", "answered", "5 cells")]);
        let deaths = data
            .sections
            .iter_mut()
            .find(|s| s.figure == Figure::Deaths)
            .unwrap();
        let mut yearly = trend_answer(&[("", vec![Datum::Exact(17)])]);
        yearly.dimensions = vec![Dimension::Year];
        yearly.cells[0].key = vec!["2024".into()];
        yearly.unit = Unit::Deaths;
        deaths.coarser = Some(yearly);
        let html = render(&data);
        let start = html.find(r#"id="fig-deaths""#).unwrap();
        let part = &html[start..start + html[start..].find("</section>").unwrap()];
        assert!(part.contains("asked the same question by year"), "{part}");
        assert!(part.contains("Deaths recorded per year") && part.contains(">Year<"));
        assert!(part.contains(">Deaths by year</h2>"), "{part}");
        assert!(part.contains(r#"<th scope="row">2024</th>"#));
        assert!(!part.contains(r#"<th scope="row">2024-Q1</th>"#));
        assert!(part.contains(r#"download="vrs-deaths-quarterly.csv""#));
    }
}
