//! The release preview (docs/CONSOLE.md, "Release preview"): the question `vrs-node query`
//! takes, as a form, and what the node would release for it — the table, a bar chart drawn on
//! the server (SVG: the console runs no script), and the budget the question would cost.
//!
//! It is the CLI's preview, called the same way: the query is parsed with the node's limits,
//! checked against what the node publishes, and given to [`crate::release::preview`], which
//! plans the release, draws one possible noisy answer and reads the budget of the quarters it
//! touches. Nothing is charged and nothing is written: the store is opened read-only and the
//! audit log (with its ledger) is only read. It is the node's own view: a coordinator asking
//! the same question gets its own noise draw, and is charged.
//!
//! A `GET` form (nothing changes, so no CSRF token); role: clerk and above.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use vrs_core::answer::{Answer, CellValue};
use vrs_core::query::{Dimension, RawQuery, Unit};

use super::accounts::Role;
use super::i18n::Tr;
use super::pages::{Frame, Page, render};
use super::web::{self, Viewer};
use super::{Console, ConsoleError, blocking};
use crate::audit::AuditLog;
use crate::disclosure::zcdp::rho_of;
use crate::store::Store;

/// Bars drawn in the chart at most (the table lists every cell).
const MAX_BARS: usize = 60;
/// Longest form field read, in characters (a filter list of 50 values fits).
const MAX_FIELD_CHARS: usize = 2_000;

/// The form, as `vrs-node query` takes it: `unit`, up to three group-by dimensions, filters
/// (`DIM=V[,V...]`, several separated by `;`), the period range and margins.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    by1: String,
    #[serde(default)]
    by2: String,
    #[serde(default)]
    by3: String,
    #[serde(default, rename = "where")]
    filters: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    margins: Option<String>,
}

impl PreviewForm {
    /// The `--by` list of the form.
    fn by(&self) -> String {
        [&self.by1, &self.by2, &self.by3]
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn too_long(&self) -> bool {
        [
            &self.unit,
            &self.by1,
            &self.by2,
            &self.by3,
            &self.filters,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|s| s.chars().count() > MAX_FIELD_CHARS)
    }

    /// The raw query of the form, exactly as `vrs-node query` builds it from its flags.
    fn to_raw(&self) -> Result<RawQuery, vrs_core::query::QueryError> {
        let by = self.by();
        let wheres: Vec<String> = self
            .filters
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let opt = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
        RawQuery::from_cli(
            self.unit.trim(),
            Some(by.as_str()).filter(|b| !b.is_empty()),
            &wheres,
            opt(&self.from).as_deref(),
            opt(&self.to).as_deref(),
            self.margins.is_some(),
        )
    }
}

/// One option of a select.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    selected: bool,
}

/// One row of the released table.
#[derive(Debug, Clone)]
struct Row {
    key: Vec<String>,
    value: String,
    interval: String,
    suppressed: bool,
    /// The cell's exact value in this node's store: shown to the node's own staff beside what
    /// would be released (they can read every record anyway), never sent anywhere.
    exact: String,
}

/// One bar of the chart, in SVG user units.
#[derive(Debug, Clone)]
struct Bar {
    label: String,
    y: i64,
    text_y: i64,
    x: i64,
    width: i64,
    /// The 95% interval's whisker.
    lo: i64,
    hi: i64,
    mid_y: i64,
    value: String,
    value_x: i64,
    suppressed: bool,
}

/// The chart: bars, the zero line and the size.
#[derive(Debug, Clone)]
struct Chart {
    bars: Vec<Bar>,
    zero_x: i64,
    height: i64,
    label: String,
    omitted: Option<String>,
}

/// One touched quarter's budget.
#[derive(Debug, Clone)]
struct QuarterRow {
    quarter: String,
    left: String,
    after: String,
    short: bool,
}

/// What the preview found.
#[derive(Debug, Clone)]
struct Outcome {
    summary: String,
    dimensions: Vec<String>,
    unit: String,
    rows: Vec<Row>,
    chart: Option<Chart>,
    cost: Option<String>,
    quarters: Vec<QuarterRow>,
    refused: Option<String>,
    sigma: Option<String>,
}

#[derive(Template)]
#[template(path = "console/preview.html")]
struct PreviewPage {
    f: Frame,
    units: Vec<Choice>,
    dims: Vec<Vec<Choice>>,
    form: PreviewForm,
    margins: bool,
    error: Option<String>,
    outcome: Option<Outcome>,
}

/// Why a question gets no preview: a message for the page, or a failure for the log.
enum Failure {
    Question(String),
    Internal(ConsoleError),
}

impl<E: Into<ConsoleError>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Internal(e.into())
    }
}

/// `GET /preview`: the form; with `unit` given, the preview under it.
pub(super) async fn preview(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(form): Query<PreviewForm>,
) -> Page {
    viewer.require(Role::Clerk)?;
    let t = web::tr(&console, viewer.lang);
    let asked = !form.unit.trim().is_empty();
    let (status, error, outcome) = if !asked {
        (StatusCode::OK, None, None)
    } else if form.too_long() {
        (
            StatusCode::BAD_REQUEST,
            Some(t.t("preview-error-long")),
            None,
        )
    } else {
        let me = console.clone();
        let f2 = form.clone();
        let t2 = t.clone();
        let result = blocking(move || Ok(compute(&me, &f2, &t2))).await;
        match result {
            Ok(Ok(o)) => (StatusCode::OK, None, Some(o)),
            Ok(Err(Failure::Question(m))) => (
                StatusCode::BAD_REQUEST,
                Some(t.ta("preview-error", &[("reason", m)])),
                None,
            ),
            Ok(Err(Failure::Internal(e))) | Err(e) => return Err(viewer.internal(e)),
        }
    };
    let by = [&form.by1, &form.by2, &form.by3];
    let page = PreviewPage {
        f: Frame::new(&console, &viewer, "preview-title"),
        units: Unit::ALL
            .iter()
            .map(|u| Choice {
                value: u.code().to_string(),
                selected: form.unit.trim() == u.code(),
            })
            .collect(),
        dims: by
            .iter()
            .map(|chosen| {
                Dimension::ALL
                    .iter()
                    .map(|d| Choice {
                        value: d.code().to_string(),
                        selected: chosen.trim() == d.code(),
                    })
                    .collect()
            })
            .collect(),
        margins: form.margins.is_some(),
        form,
        error,
        outcome,
    };
    render(status, &page, viewer.lang)
}

/// The preview, as `vrs-node query` computes it ([`crate::cli::local_query`]).
fn compute(console: &Console, form: &PreviewForm, t: &Tr) -> Result<Outcome, Failure> {
    let config = &console.config;
    let raw = form
        .to_raw()
        .map_err(|e| Failure::Question(e.to_string()))?;
    let q = vrs_core::query::Query::parse(&raw, &config.policy.query_limits())
        .map_err(|e| Failure::Question(e.to_string()))?;
    crate::service::check_published(&config.policy, &q)
        .map_err(|e| Failure::Question(e.to_string()))?;
    let store = Store::open_read_only(&config.data_dir())?;
    let exact = exact_cells(&store, &q)?;
    let summary = super::approvals::question_words(&q.to_raw(), t);
    let unit = q.unit();
    let dimensions: Vec<String> = q.group_by().iter().map(|d| d.code().to_string()).collect();
    if !config.privacy.is_zcdp() {
        // rules_v1: the released table as the CLI shows it; no budget is spent in this mode.
        let table =
            crate::query::aggregate(&store, &q).map_err(|e| Failure::Question(e.to_string()))?;
        let secret =
            crate::disclosure::PerturbationSecret::from_bytes(store.perturbation_secret()?);
        let released = crate::disclosure::release(&table, &config.policy, &secret);
        let (rows, chart) = table_and_chart(&released.answer, None, &exact, t);
        return Ok(Outcome {
            summary,
            dimensions,
            unit: unit.code().to_string(),
            rows,
            chart,
            cost: None,
            quarters: Vec::new(),
            refused: None,
            sigma: None,
        });
    }
    let audit = AuditLog::open_existing(&config.data_dir()).ok();
    let today = crate::universe::current_month(console.now_ms(), config.privacy.coverage_from());
    let p = crate::release::preview(&store, &config.privacy, q, today, audit.as_ref()).map_err(
        |e| match e {
            crate::release::ReleaseError::Plan(crate::query::PlanError::Store(s)) => {
                Failure::Internal(s.into())
            }
            other => Failure::Question(other.to_string()),
        },
    )?;
    let sigma = p.plan.sigma.as_f64();
    let (rows, chart) = table_and_chart(&p.answer, Some(sigma), &exact, t);
    let rho = p.plan.rho_micro;
    let quarters: Vec<QuarterRow> = p
        .quarters
        .iter()
        .map(|b| QuarterRow {
            quarter: b.quarter.clone(),
            left: t.decimal(rho_of(b.rho_left_micro), 6),
            after: t.decimal(rho_of(b.rho_left_micro.saturating_sub(rho)), 6),
            short: b.rho_left_micro < rho,
        })
        .collect();
    let refused = p.quarters.iter().find(|b| b.rho_left_micro < rho).map(|b| {
        t.ta(
            "preview-refused",
            &[
                ("quarter", b.quarter.clone()),
                ("left", t.decimal(rho_of(b.rho_left_micro), 6)),
            ],
        )
    });
    let labels: Vec<String> = p
        .plan
        .universe
        .quarters
        .iter()
        .map(|q| crate::universe::quarter_label_of(*q))
        .collect();
    Ok(Outcome {
        summary,
        dimensions,
        unit: unit.code().to_string(),
        cost: Some(t.ta(
            "preview-cost",
            &[
                ("rho", t.decimal(rho_of(rho), 6)),
                ("n", t.int(labels.len() as u64)),
                ("quarters", super::approvals::quarter_span(&labels)),
                ("cells", t.int(p.plan.universe.keys.len() as u64)),
                (
                    "unit",
                    crate::disclosure::zcdp::privacy_unit(unit).to_string(),
                ),
            ],
        )),
        sigma: Some(t.ta(
            "preview-sigma",
            &[
                ("sigma", t.decimal(sigma, 3)),
                ("half", t.decimal(1.96 * sigma, 1)),
            ],
        )),
        quarters,
        refused,
        rows,
        chart,
    })
}

/// The exact value of every cell the store holds for `q` (the node's own records, before any
/// bound, noise or suppression), by cell key. A question outside the stored months has none:
/// every cell of the release then shows 0.
fn exact_cells(
    store: &Store,
    q: &vrs_core::query::Query,
) -> Result<HashMap<Vec<String>, i64>, Failure> {
    match crate::query::aggregate(store, q) {
        Ok(table) => Ok(table.cells.into_iter().map(|c| (c.key, c.value)).collect()),
        Err(crate::query::PlanError::Store(e)) => Err(Failure::Internal(e.into())),
        Err(_) => Ok(HashMap::new()),
    }
}

/// The table rows (reading order: fee bands by amount) and the chart of an answer, each row
/// with its exact value from `exact`.
fn table_and_chart(
    answer: &Answer,
    sigma: Option<f64>,
    exact: &HashMap<Vec<String>, i64>,
    t: &Tr,
) -> (Vec<Row>, Option<Chart>) {
    let mut cells: Vec<&vrs_core::answer::Cell> = answer.cells.iter().collect();
    cells.sort_by(|a, b| vrs_core::query::compare_keys(&answer.dimensions, &a.key, &b.key));
    let half = sigma.map(|s| 1.96 * s);
    let rows: Vec<Row> = cells
        .iter()
        .map(|c| {
            let (value, interval, suppressed) = match c.value {
                CellValue::Released(v) => (t.int(v), String::new(), false),
                CellValue::Noisy(v) => (
                    t.signed(v),
                    half.map(|h| format!("± {}", t.decimal(h, 1)))
                        .unwrap_or_default(),
                    false,
                ),
                CellValue::Suppressed(r) => (
                    t.ta("preview-suppressed", &[("reason", r.code().to_string())]),
                    String::new(),
                    true,
                ),
            };
            Row {
                key: c.key.clone(),
                value,
                interval,
                suppressed,
                exact: t.int(exact.get(&c.key).copied().unwrap_or(0).max(0) as u64),
            }
        })
        .collect();
    if cells.is_empty() {
        return (rows, None);
    }
    // A horizontal bar per cell: labels in the left 220 units, bars in 460 units after them,
    // scaled so that the largest |value ± half-interval| fits; negative noisy values extend
    // left of the zero line.
    let shown = &cells[..cells.len().min(MAX_BARS)];
    let h = half.unwrap_or(0.0);
    let values: Vec<Option<f64>> = shown
        .iter()
        .map(|c| c.value.value().map(|v| v as f64))
        .collect();
    let max = values
        .iter()
        .flatten()
        .map(|v| v + h)
        .fold(1.0_f64, f64::max);
    let min = values
        .iter()
        .flatten()
        .map(|v| v - h)
        .fold(0.0_f64, f64::min);
    let (left, width) = (230.0, 460.0);
    let scale = width / (max - min);
    let x_of = |v: f64| (left + (v - min) * scale).round() as i64;
    let zero_x = x_of(0.0);
    let bars = shown
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (c, v))| {
            let y = 10 + 24 * i as i64;
            let label = c.key.join(" / ");
            match v {
                Some(v) => {
                    let (a, b) = (x_of(v.min(0.0)), x_of(v.max(0.0)));
                    Bar {
                        label,
                        y,
                        text_y: y + 14,
                        x: a,
                        width: (b - a).max(1),
                        lo: x_of(v - h),
                        hi: x_of(v + h),
                        mid_y: y + 9,
                        value: t.signed(v as i64),
                        value_x: x_of(v + h) + 6,
                        suppressed: false,
                    }
                }
                None => Bar {
                    label,
                    y,
                    text_y: y + 14,
                    x: zero_x,
                    width: 0,
                    lo: zero_x,
                    hi: zero_x,
                    mid_y: y + 9,
                    value: t.t("preview-bar-suppressed"),
                    value_x: zero_x + 6,
                    suppressed: true,
                },
            }
        })
        .collect::<Vec<_>>();
    let height = 20 + 24 * bars.len() as i64;
    let omitted = (cells.len() > MAX_BARS).then(|| {
        t.ta(
            "preview-chart-omitted",
            &[
                ("shown", t.int(MAX_BARS as u64)),
                ("n", t.int(cells.len() as u64)),
            ],
        )
    });
    (
        rows,
        Some(Chart {
            bars,
            zero_x,
            height,
            label: t.t("preview-chart-label"),
            omitted,
        }),
    )
}
