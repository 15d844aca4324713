//! HTML building blocks of the report: escaping, numbers, the style sheet, data tables and the
//! legend of marks.
//!
//! Every string that reaches the page goes through [`escape`]: node messages, cell keys and
//! dimension values all come from the network.

use std::fmt::Write as _;

use super::model::{Datum, Grid, escape, thousands};
use crate::merge::Shown;

/// One table cell for a figure: `≥` and hatching for a lower bound, `×` for suppressed, `–` for
/// none reported; each with a title that says so in words. A noisy estimate whose ± is `common`
/// (said once, in the caption) shows its value alone.
pub fn datum_cell(d: Datum, common: Option<u64>) -> String {
    match d {
        Datum::Exact(_) => format!("<td>{}</td>", d.text()),
        Datum::Noisy { .. } => {
            let text = match (d.shown(), common) {
                (Some(Shown::Estimate { value, .. }), Some(h)) if half_width(d) == Some(h) => {
                    thousands(value)
                }
                _ => d.text(),
            };
            format!(
                r#"<td class="noisy"><abbr title="{}">{}</abbr></td>"#,
                escape(&d.spoken("")),
                escape(&text)
            )
        }
        Datum::Partial(_) => format!(
            r#"<td class="partial"><abbr title="lower bound: at least one node suppressed part of this figure">{}</abbr></td>"#,
            d.text()
        ),
        Datum::Suppressed => r#"<td class="suppressed"><abbr title="suppressed: no node released this figure">×</abbr></td>"#.into(),
        Datum::Absent => {
            r#"<td class="absent"><abbr title="none reported">–</abbr></td>"#.into()
        }
    }
}

/// The ± of a noisy estimate as a table prints it (whole units), if it is one.
fn half_width(d: Datum) -> Option<u64> {
    match d.shown() {
        Some(Shown::Estimate { half_width, .. }) => Some(half_width.round() as u64),
        _ => None,
    }
}

/// The ± every noisy estimate of the grid shares, when at least three do and none differs: the
/// nodes' noise is the same for every cell of a question, so the table says it once instead of
/// in every cell (and fits a wider span of quarters).
pub fn common_half_width(grid: &Grid) -> Option<u64> {
    let widths: Vec<u64> = grid
        .cells
        .iter()
        .flatten()
        .filter_map(|d| half_width(*d))
        .collect();
    let first = *widths.first()?;
    (widths.len() >= 3 && widths.iter().all(|w| *w == first)).then_some(first)
}

/// Column headers. Quarters (`YYYY-Qn`) are grouped under their year, so a column is as wide
/// as its numbers rather than its label.
fn header(out: &mut String, corner: &str, cols: &[String], total: bool) {
    let quarters: Option<Vec<(&str, &str)>> = cols
        .iter()
        .map(|c| c.split_once("-Q").filter(|(y, _)| y.len() == 4))
        .collect();
    let total_th = |rowspan: &str| {
        if total {
            format!(r#"<th scope="col"{rowspan} data-total="1">Total</th>"#)
        } else {
            String::new()
        }
    };
    match quarters {
        Some(q) if !q.is_empty() => {
            let _ = write!(
                out,
                r#"<tr><th scope="col" rowspan="2">{}</th>"#,
                escape(corner)
            );
            let mut i = 0;
            while i < q.len() {
                let year = q[i].0;
                let span = q[i..].iter().take_while(|(y, _)| *y == year).count();
                let _ = write!(
                    out,
                    r#"<th scope="colgroup" colspan="{span}" class="year">{}</th>"#,
                    escape(year)
                );
                i += span;
            }
            out.push_str(&total_th(r#" rowspan="2""#));
            out.push_str("</tr><tr>");
            for (c, (year, n)) in cols.iter().zip(&q) {
                let _ = write!(
                    out,
                    r#"<th scope="col" data-col="{}"><abbr title="{} quarter {}">Q{}</abbr></th>"#,
                    escape(c),
                    escape(year),
                    escape(n),
                    escape(n)
                );
            }
            out.push_str("</tr>");
        }
        _ => {
            let _ = write!(out, r#"<tr><th scope="col">{}</th>"#, escape(corner));
            for c in cols {
                let _ = write!(
                    out,
                    r#"<th scope="col" data-col="{}">{}</th>"#,
                    escape(c),
                    escape(c)
                );
            }
            out.push_str(&total_th(""));
            out.push_str("</tr>");
        }
    }
}

/// The numbers of a chart as an accessible table: a caption, column headers, one row header per
/// row, and a total column when `total` is set (a lower bound when any part is). The table
/// scrolls inside its box when it is wider than the window, starting at its right end: the
/// newest quarters and the total are what a reader looks for first, and the row headers stay
/// in view.
pub fn grid_table(caption: &str, corner: &str, grid: &Grid, total: bool) -> String {
    let common = common_half_width(grid);
    let caption = match common {
        Some(h) => format!(
            "{caption} (every noisy figure ± {}, its 95% interval, unless it shows its own)",
            thousands(h)
        ),
        None => caption.to_string(),
    };
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        r#"<div class="table-scroll newest-first" tabindex="0"><table class="figures"><caption><span class="cap">{}</span></caption><thead>"#,
        escape(&caption),
    );
    header(&mut out, corner, &grid.cols, total);
    out.push_str("</thead><tbody>");
    for (r, row) in grid.rows.iter().enumerate() {
        let _ = write!(out, r#"<tr><th scope="row">{}</th>"#, escape(row));
        for d in &grid.cells[r] {
            out.push_str(&datum_cell(*d, common));
        }
        if total {
            let cell = datum_cell(grid.row_total(r), common);
            out.push_str(&cell.replacen("<td", r#"<td data-total="1""#, 1));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `csv` as a `data:` URL: percent-encoded UTF-8, so the page carries it and needs no script or
/// server to hand it out.
pub fn csv_data_url(csv: &str) -> String {
    let mut out = String::with_capacity(csv.len() * 2 + 32);
    out.push_str("data:text/csv;charset=utf-8,");
    for b in csv.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',' | b'*') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A link that saves `csv` as `NAME.csv` ([`csv_data_url`]; `download` works without scripts).
pub fn csv_link(name: &str, csv: &str, what: &str) -> String {
    let rows = csv.lines().count().saturating_sub(1);
    format!(
        r#"<p class="download"><a class="csv" download="{name}.csv" type="text/csv" href="{url}">Download {what} as CSV</a> <span class="note">({rows} rows: every cell the nodes released, with the columns of <code>vrs-coordinator query --format csv</code>)</span></p>"#,
        name = escape(name),
        url = csv_data_url(csv),
        what = escape(what),
    )
}

/// The key to the marks used on every chart and table.
pub fn status_legend() -> &'static str {
    r##"<ul class="legend status-legend" aria-label="How figures are marked">
<li><span class="keys" aria-hidden="true"><svg width="30" height="14"><rect x="1" y="2" width="28" height="10" fill="#0072B2"/></svg><svg width="14" height="14"><circle cx="7" cy="7" r="4" fill="#0072B2"/></svg></span><span><b>Exact</b>: every node holding the figure released it. Solid bars and cells, filled points, solid lines.</span></li>
<li><span class="keys" aria-hidden="true"><svg width="30" height="14"><defs><pattern id="legend-hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#0072B2" fill-opacity="0.18"/><line x1="0" y1="0" x2="0" y2="6" stroke="#0072B2" stroke-width="3"/></pattern></defs><rect x="1" y="2" width="28" height="10" fill="url(#legend-hatch)" stroke="#0072B2"/></svg><svg width="14" height="20"><path d="M7 8L7 1.5M4 4.5L7 1.5L10 4.5" stroke="#0072B2" stroke-width="1.6" fill="none" stroke-linecap="round"/><circle cx="7" cy="13" r="4.5" fill="#fff" stroke="#0072B2" stroke-width="2"/></svg></span><span><b>Partial, ≥N</b>: a lower bound. At least one node suppressed its part, so the true figure is N or more. Hatched bars and cells; on line charts a hollow point with an arrow up, which no line joins (a lower bound is not a trend).</span></li>
<li><span class="keys" aria-hidden="true"><svg width="14" height="14"><rect x="1.5" y="1.5" width="11" height="11" rx="2" fill="#0072B2" fill-opacity="0.3" stroke="#0072B2"/><path d="M3.5 3.5L10.5 10.5M3.5 10.5L10.5 3.5" stroke="#333" stroke-width="2" stroke-linecap="round"/></svg></span><span><b>Suppressed, ×</b>: no node released a figure (too few records or contributors, one dominant contributor, or to protect another suppressed cell). Unknown, not zero: on line charts these sit in the “supp.” lane under the axis.</span></li>
<li><span class="keys" aria-hidden="true"><svg width="30" height="14"><rect x="1" y="3" width="18" height="8" fill="#0072B2"/><path d="M12 7L28 7M12 3.5L12 10.5M28 3.5L28 10.5" stroke="#1a1a1a" stroke-width="1.4" fill="none"/></svg></span><span><b>Noisy, N ± H</b>: a zCDP estimate (nodes add calibrated random noise to protect people; the noise of several nodes adds up). The error bar is its 95% interval, ±1.96 standard errors (SE = √Σσ²). A figure whose interval contains 0 reads <b>&lt;U</b>: not distinguishable from 0, below U.</span></li>
<li><span class="keys" aria-hidden="true"><b>–</b></span><span><b>None reported</b>: no answering node holds records for it.</span></li>
</ul>"##
}

/// Series colours as an HTML legend.
pub fn series_legend(label: &str, names: &[String], palette: &[&str]) -> String {
    let mut out = format!(
        r#"<ul class="legend series-legend" aria-label="{}">"#,
        escape(label)
    );
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            out,
            r#"<li><span class="swatch" style="background:{}"></span>{}</li>"#,
            palette[i % palette.len()],
            escape(name)
        );
    }
    out.push_str("</ul>");
    out
}

/// The style sheet: system fonts, calm colours, responsive width, print rules.
pub const STYLE: &str = r#"
:root { --ink:#1f2328; --muted:#59636e; --line:#d8dee4; --soft:#f6f8fa; --accent:#0b4f8a;
  --ok:#116329; --warn:#8a4600; --bad:#a40e26; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; color:var(--ink); background:#fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif; }
.page { max-width: 1232px; margin: 0 auto; padding: 28px 24px 48px; }
header.top { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 28px; line-height:1.2; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
.subtitle { color: var(--muted); margin: 0; }
.meta { display:grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 12px 0 0; font-size: 14px; }
.meta dt { color: var(--muted); } .meta dd { margin:0; }
.kpis { display:grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; margin: 18px 0 8px; }
.kpi { border:1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft); }
.kpi .n { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; color: var(--accent); }
.kpi .l { font-size: 13px; color: var(--muted); }
section { margin: 30px 0 0; }
section.figure { border-top: 1px solid var(--line); padding-top: 22px; }
.lede { margin: 2px 0 10px; color: #333; max-width: 75ch; }
.note { font-size: 13px; color: var(--muted); margin: 6px 0; max-width: 80ch; }
.coverage { display:inline-block; font-size: 13px; border-radius: 999px; padding: 1px 10px; margin: 4px 0 8px;
  background:#e9f5ec; color: var(--ok); border: 1px solid #b7dfc1; }
.coverage.incomplete { background:#fff4e5; color: var(--warn); border-color:#f2c894; }
.callout { border-left: 4px solid var(--warn); background:#fff8ee; padding: 8px 12px; margin: 10px 0; font-size: 14px; }
figure { margin: 8px 0 6px; }
svg.chart { display:block; max-width:100%; height:auto; }
.narrow-only { display: none; }
@media (max-width: 640px) { .wide-only { display: none; } .narrow-only { display: block; } }
svg.chart text { fill: #333; font-family: inherit; }
svg.chart .tick { fill: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
svg.chart .year { font-weight: 600; }
svg.chart .value { font-size: 12px; font-variant-numeric: tabular-nums; fill:#333; }
svg.chart .small { font-size: 11px; }
svg.chart .series-label { font-size: 13px; font-weight: 600; }
svg.chart .axis-title { font-size: 12px; fill: var(--muted); }
svg.chart .cell-value { font-size: 12px; fill:#1f2328; font-variant-numeric: tabular-nums; }
svg.chart .cell-value.on-dark { fill: #fff; }
.legend { list-style:none; padding:0; margin: 6px 0; display:flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; }
.legend li { display:flex; align-items:center; gap: 4px; }
.status-legend li { align-items: flex-start; gap: 10px; }
.status-legend .keys { flex: none; width: 50px; display:flex; gap: 4px; align-items:center; justify-content: center; padding-top: 3px; }
.status-legend { flex-direction: column; gap: 6px; font-size: 14px; }
.status-legend li svg { flex: none; }
.swatch { display:inline-block; width: 14px; height: 14px; border-radius: 2px; margin-right: 2px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); font-size: 14px; }
.table-scroll { overflow-x: auto; max-width: 100%; }
/* A wide figure table opens at its right end (newest quarters, Total); its row headers stay put. */
.table-scroll.newest-first { direction: rtl; }
.table-scroll.newest-first > table { direction: ltr; margin-right: auto; }
table.figures tbody th, table.figures thead tr:first-child th:first-child { position: sticky; left: 0; background: #fff; z-index: 1; }
table.figures caption .cap { position: sticky; left: 0; display: inline-block; max-width: min(100%, calc(100vw - 32px)); }
table.figures thead th.year { text-align: center; border-bottom: 1px solid var(--line); }
.download { font-size: 13px; margin: 4px 0 8px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0 6px; color: #333; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; }
thead th { border-bottom: 2px solid var(--line); text-align: right; white-space: nowrap; }
thead th:first-child, tbody th { text-align: left; }
tbody th { font-weight: 500; white-space: nowrap; }
td { text-align: right; white-space: nowrap; }
td[data-total], th[data-total] { font-weight: 600; border-left: 1px solid var(--line); }
td.partial { background: repeating-linear-gradient(135deg, #fff 0 3px, #e4ecf5 3px 6px); }
td.noisy { white-space: nowrap; }
td.suppressed { color: #5f5f5f; font-weight: 700; }
td.absent { color: #9aa4ad; }
abbr { text-decoration: none; }
table.status td, table.status th { text-align:left; white-space: normal; vertical-align: top; }
.badge { display:inline-block; font-size: 12px; font-weight:600; border-radius: 4px; padding: 0 6px; white-space: nowrap; }
.badge.answered { background:#e9f5ec; color: var(--ok); }
.badge.refused, .badge.unreachable { background:#fdecee; color: var(--bad); }
.badge.timed_out, .badge.pending_approval, .badge.other { background:#fff4e5; color: var(--warn); }
.detail { display:block; font-size: 12px; color: var(--muted); max-width: 28ch; overflow-wrap: anywhere; }
footer { margin-top: 40px; border-top: 1px solid var(--line); padding-top: 12px; font-size: 13px; color: var(--muted); }
code { font-size: 12px; }
@media (max-width: 640px) { .page { padding: 16px 12px; } h1 { font-size: 22px; } }
@media print {
  body { font-size: 11pt; } .page { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  summary { display:none; } .table-scroll { overflow: visible; }
  table { font-size: 7.5pt; } th, td { padding: 1px 3px; } thead th { white-space: normal; }
  figure, tr { break-inside: avoid; } h2, .lede, .coverage, .legend { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_mark_each_status_in_words() {
        let g = Grid {
            rows: vec!["r<1>".into()],
            cols: vec!["a".into(), "b".into(), "c".into()],
            cells: vec![vec![Datum::Exact(5), Datum::Partial(3), Datum::Suppressed]],
        };
        let t = grid_table("Cap", "row", &g, true);
        assert!(t.contains("<caption><span class=\"cap\">Cap</span></caption>"));
        assert!(t.contains(r#"<th scope="row">r&lt;1&gt;</th>"#));
        assert!(t.contains(r#"<td class="partial"><abbr title="lower bound"#));
        assert!(t.contains(">≥3<"));
        assert!(t.contains(r#"class="suppressed""#));
        assert!(t.contains(r#"<td data-total="1" class="partial">"#), "{t}");
        assert!(t.contains(">≥8<"));
    }
}
