//! Inline SVG charts for the report: lines over time, horizontal bars (stacked or grouped) and a
//! heat-map matrix.
//!
//! Every chart is a pure function from a [`Grid`] to one `<svg>` string with `role="img"`, an
//! `aria-label`, a `<title>` and a `<desc>`. Every data mark carries the class `mark` plus its
//! status (`exact`, `partial`, `suppressed`) and its own `<title>` (the tooltip and what a screen
//! reader announces). The status is drawn, never only coloured:
//!
//! - exact: a solid mark;
//! - partial (a lower bound: some node suppressed part of the figure): a hollow point with an
//!   upward arrow (the figure is this or more) that no line joins, or a hatched bar or cell, and
//!   `≥` before the number;
//! - suppressed (no node released a figure): a cross, `×`, where the mark would be.
//!
//! A line joins two neighbouring points only when both are figures (exact, noisy or none
//! reported): a lower bound says nothing about the trend, so the line breaks there. Every chart
//! names what its axes count ([`ChartText::x_title`], [`ChartText::y_title`]), and is drawn for a
//! desktop window or re-laid out for a phone ([`Size`]): labels keep their size, the layout
//! changes (legends under the chart, category labels above their bars).
//!
//! Element ids (hatch patterns) are prefixed with the chart's id, so several charts can share one
//! HTML document. All text is escaped here.

use std::fmt::Write as _;

use super::model::{Datum, Grid, escape, thousands};
use crate::merge::Shown;

/// Colour-blind safe categorical colours (Okabe and Ito, 2008), in order of use.
pub const CATEGORICAL: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#999999",
];

/// An ordered ramp for ordered categories such as fee bands, light to dark (viridis, reversed:
/// perceptually uniform and colour-blind safe). Unlike a single-hue ramp its six steps differ in
/// hue as well as lightness, so neighbouring bands stay apart (a unit test keeps every pair at
/// least [`MIN_DELTA_E`] apart in CIELAB).
pub const SEQUENTIAL: &[&str] = &[
    "#fde725", "#7ad151", "#22a884", "#2a788e", "#414487", "#440154",
];

/// The least CIE76 colour difference (ΔE*ab) between any two colours of [`SEQUENTIAL`].
pub const MIN_DELTA_E: f64 = 20.0;

/// What a chart needs besides its data.
#[derive(Debug, Clone, Copy)]
pub struct ChartText<'a> {
    /// Unique id in the document (letters, digits, `-`).
    pub id: &'a str,
    /// Short title (the SVG `<title>`).
    pub title: &'a str,
    /// One sentence describing what is drawn (the SVG `<desc>` and `aria-label`).
    pub desc: &'a str,
    /// The unit counted, plural ("migrants").
    pub unit: &'a str,
    /// What the horizontal axis shows ("Quarter", "Migrants detected").
    pub x_title: &'a str,
    /// What the vertical axis shows ("Migrants detected per quarter", "Route").
    pub y_title: &'a str,
    /// For which window the chart is laid out.
    pub size: Size,
}

/// The window a chart is laid out for. The page carries both layouts and shows one (a CSS
/// media query): a phone gets a chart drawn for its width rather than a desktop chart shrunk
/// until its labels cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A desktop window: 960 units wide, drawn at that size.
    Wide,
    /// A phone (down to 360 px): 380 units wide, drawn at about 95 % of that.
    Narrow,
}

impl Size {
    /// Width of the SVG in user units.
    pub const fn width(self) -> f64 {
        match self {
            Size::Wide => 960.0,
            Size::Narrow => 380.0,
        }
    }
}

const FONT: f64 = 13.0;
const AXIS_COLOUR: &str = "#4d4d4d";
const GRID_COLOUR: &str = "#e3e3e3";
const SUPPRESSED_COLOUR: &str = "#333333";
/// Error bars (95 % intervals of noisy figures).
const ERROR_COLOUR: &str = "#1a1a1a";

/// A number for an SVG attribute: one decimal, never NaN or infinite.
fn n(v: f64) -> String {
    if v.is_finite() {
        let r = (v * 10.0).round() / 10.0;
        if r == r.trunc() {
            format!("{r:.0}")
        } else {
            format!("{r:.1}")
        }
    } else {
        "0".into()
    }
}

/// Width of `text` at `size` in the system sans-serif, roughly (wide enough for most fonts).
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// A "nice" upper bound for an axis (1, 2, 2.5 or 5 × 10^k) and its tick step.
fn nice_scale(max: u64) -> (f64, f64) {
    let max = (max.max(1)) as f64;
    let raw_step = max / 5.0;
    let mag = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * mag)
        .max(1.0);
    ((max / step).ceil() * step, step)
}

fn ticks(top: f64, step: f64) -> Vec<f64> {
    let count = (top / step).round() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    thousands(v.round() as u64)
}

/// An SVG document under construction.
struct Svg {
    out: String,
}

impl Svg {
    fn start(text: &ChartText<'_>, width: f64, height: f64) -> Svg {
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            r#"<svg id="svg-{id}" class="chart" role="img" aria-labelledby="svg-{id}-title svg-{id}-desc" aria-label="{label}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-size="{FONT}"><title id="svg-{id}-title">{title}</title><desc id="svg-{id}-desc">{desc}</desc>"#,
            id = escape(text.id),
            label = escape(&format!("{}. {}", text.title, text.desc)),
            w = n(width),
            h = n(height),
            title = escape(text.title),
            desc = escape(text.desc),
        );
        Svg { out }
    }

    /// A hatch pattern for partial figures: diagonal stripes of `colour` over a pale tint.
    fn hatch(&mut self, id: &str, colour: &str) {
        let _ = write!(
            self.out,
            r#"<pattern id="{id}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="{colour}" fill-opacity="0.18"/><line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" stroke-width="3"/></pattern>"#,
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str, width: f64) {
        let _ = write!(
            self.out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="{}"/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            n(width)
        );
    }

    fn text(&mut self, x: f64, y: f64, anchor: &str, class: &str, text: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{}" y="{}" text-anchor="{anchor}" class="{class}">{}</text>"#,
            n(x),
            n(y),
            escape(text)
        );
    }

    /// A cross marking a suppressed figure, centred on `(x, y)`: a dark `×` over a small square
    /// tinted with the series colour, so it reads on any background and still names its series.
    fn cross(&mut self, x: f64, y: f64, colour: &str, title: &str) {
        let r = 3.5;
        let _ = write!(
            self.out,
            r#"<g class="mark suppressed"><title>{}</title><rect x="{}" y="{}" width="11" height="11" rx="2" fill="{colour}" fill-opacity="0.3" stroke="{colour}" stroke-width="1"/><path d="M{} {}L{} {}M{} {}L{} {}" stroke="{SUPPRESSED_COLOUR}" stroke-width="2" stroke-linecap="round" fill="none"/></g>"#,
            escape(title),
            n(x - 5.5),
            n(y - 5.5),
            n(x - r),
            n(y - r),
            n(x + r),
            n(y + r),
            n(x - r),
            n(y + r),
            n(x + r),
            n(y - r),
        );
    }

    /// A bar or cell: solid for exact figures, hatched for partial ones.
    #[allow(clippy::too_many_arguments)]
    fn bar(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        colour: &str,
        hatch: &str,
        d: Datum,
        title: &str,
    ) {
        let fill = match d {
            Datum::Partial(_) => format!("url(#{hatch})"),
            _ => colour.to_string(),
        };
        let _ = write!(
            self.out,
            r#"<rect class="mark {class}" x="{}" y="{}" width="{}" height="{}" fill="{fill}" stroke="{colour}" stroke-width="1"><title>{}</title></rect>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0)),
            escape(title),
            class = d.class(),
        );
    }

    /// A 95 % error bar of a noisy figure: from `lo` to `hi` along x at height `y` (horizontal
    /// bars) or along y at `x` (`vertical`), with end caps.
    fn error_bar(&mut self, at: f64, lo: f64, hi: f64, vertical: bool, title: &str) {
        let cap = 3.5;
        let (a, b) = (lo.min(hi), lo.max(hi));
        let (x1, y1, x2, y2, c1, c2) = if vertical {
            (
                at,
                a,
                at,
                b,
                format!("M{} {}L{} {}", n(at - cap), n(a), n(at + cap), n(a)),
                format!("M{} {}L{} {}", n(at - cap), n(b), n(at + cap), n(b)),
            )
        } else {
            (
                a,
                at,
                b,
                at,
                format!("M{} {}L{} {}", n(a), n(at - cap), n(a), n(at + cap)),
                format!("M{} {}L{} {}", n(b), n(at - cap), n(b), n(at + cap)),
            )
        };
        let _ = write!(
            self.out,
            r#"<g class="errorbar"><title>{}</title><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{ERROR_COLOUR}" stroke-width="1.4"/><path d="{c1}{c2}" stroke="{ERROR_COLOUR}" stroke-width="1.4" fill="none"/></g>"#,
            escape(title),
            n(x1),
            n(y1),
            n(x2),
            n(y2),
        );
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// Tooltip text of one figure.
fn mark_title(parts: &[&str], d: Datum, unit: &str) -> String {
    format!("{}: {}", parts.join(", "), d.spoken(unit))
}

/// Whether a line may pass through a point: a figure (exact or noisy) or none reported (zero).
/// A lower bound or a suppressed figure breaks the line.
pub fn joins(d: Datum) -> bool {
    matches!(d, Datum::Exact(_) | Datum::Noisy { .. } | Datum::Absent)
}

/// The runs of neighbouring points a line joins: maximal index ranges, at least two points long,
/// of points that [`joins`] accepts.
pub fn line_runs(data: &[Datum]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in 0..=data.len() {
        match (data.get(i).copied().is_some_and(joins), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= 2 {
                    runs.push(s..i);
                }
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// A line per row of `grid` over its columns (the x axis, e.g. quarters). A line joins only
/// figures ([`line_runs`]): at a lower bound it breaks, and the lower bound is a hollow point
/// with an arrow pointing up (this or more); a suppressed figure sits as a cross in a lane of
/// its own under the axis. Wide charts label each line at its right end, narrow ones list the
/// lines under the chart.
pub fn lines(text: &ChartText<'_>, grid: &Grid) -> String {
    let narrow = text.size == Size::Narrow;
    let width = text.size.width();
    let any_suppressed = grid.cells.iter().flatten().any(|d| *d == Datum::Suppressed);
    // Suppressed figures have no value: they sit in a lane of their own under the axis, never
    // on the zero line.
    let lane = if any_suppressed { 18.0 } else { 0.0 };
    let (left, right, plot_h, labels_h) = if narrow {
        (46.0, 14.0, 220.0, 40.0)
    } else {
        let legend_w = grid
            .rows
            .iter()
            .map(|r| text_width(r, FONT))
            .fold(0.0, f64::max)
            .clamp(40.0, 220.0)
            * 1.12
            + 34.0;
        (58.0, legend_w, 280.0, 56.0)
    };
    let top = 34.0;
    let legend_h = if narrow {
        18.0 * grid.rows.len() as f64 + 6.0
    } else {
        0.0
    };
    let height = top + plot_h + lane + labels_h + legend_h;
    let plot_w = width - left - right;
    let count = grid.cols.len();
    let x = |i: usize| {
        if count <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (count - 1) as f64
        }
    };
    let (top_value, step) = nice_scale(grid.max_cell());
    let yf = |v: f64| top + plot_h - plot_h * v.max(0.0) / top_value;
    let y = |v: u64| yf(v as f64);
    let base = top + plot_h;

    let mut svg = Svg::start(text, width, height);
    svg.out.push_str("<g class=\"axes\">");
    svg.text(4.0, 16.0, "start", "axis-title", text.y_title);
    for t in ticks(top_value, step) {
        let ty = yf(t);
        svg.line(left, ty, left + plot_w, ty, GRID_COLOUR, 1.0);
        svg.text(left - 8.0, ty + 4.0, "end", "tick", &tick_label(t));
    }
    svg.line(left, base, left + plot_w, base, AXIS_COLOUR, 1.0);
    if any_suppressed {
        svg.text(left - 8.0, base + 16.0, "end", "tick", "supp.");
    }
    // Quarter labels read "Q1" with the year below (on a phone: the year alone, under a tick
    // per quarter); other labels are thinned to fit.
    let quarters: Vec<Option<(&str, &str)>> = grid
        .cols
        .iter()
        .map(|c| c.split_once("-Q").filter(|(y, _)| y.len() == 4))
        .collect();
    let below = base + lane;
    if !quarters.is_empty() && quarters.iter().all(Option::is_some) {
        for (i, q) in quarters.iter().enumerate() {
            let Some((year, q)) = q else { continue };
            if narrow {
                svg.line(x(i), below, x(i), below + 4.0, AXIS_COLOUR, 1.0);
                if *q == "1" || i == 0 {
                    svg.text(x(i), below + 18.0, "middle", "tick year", year);
                }
            } else {
                svg.text(x(i), below + 17.0, "middle", "tick", &format!("Q{q}"));
                if *q == "1" || i == 0 {
                    svg.text(x(i), below + 34.0, "middle", "tick year", year);
                }
            }
        }
    } else {
        let widest = grid
            .cols
            .iter()
            .map(|c| text_width(c, FONT))
            .fold(0.0, f64::max);
        let room = if count > 1 {
            plot_w / (count - 1) as f64
        } else {
            plot_w
        };
        let every = ((widest + 8.0) / room).ceil().max(1.0) as usize;
        for (i, c) in grid.cols.iter().enumerate() {
            if i % every == 0 {
                svg.text(x(i), below + 17.0, "middle", "tick", c);
            }
        }
    }
    svg.text(
        left + plot_w / 2.0,
        below + labels_h - 6.0,
        "middle",
        "axis-title",
        text.x_title,
    );
    svg.out.push_str("</g>");

    let mut ends: Vec<(f64, usize)> = Vec::new();
    for (s, name) in grid.rows.iter().enumerate() {
        let colour = CATEGORICAL[s % CATEGORICAL.len()];
        let data = &grid.cells[s];
        // Series sit a little apart so that their error bars do not cover each other; the line
        // goes through the points where they are drawn.
        let nudge = (s as f64 - (grid.rows.len() as f64 - 1.0) / 2.0) * 4.0;
        let px = |i: usize| x(i) + nudge;
        let _ = write!(
            svg.out,
            r#"<g class="series" data-series="{}">"#,
            escape(name)
        );
        for run in line_runs(data) {
            let mut d = String::new();
            for i in run.clone() {
                let _ = write!(
                    d,
                    "{}{} {}",
                    if i == run.start { 'M' } else { 'L' },
                    n(px(i)),
                    n(y(data[i].lower_bound()))
                );
            }
            let _ = write!(
                svg.out,
                r#"<path class="line" data-points="{}-{}" d="{d}" fill="none" stroke="{colour}" stroke-width="2.4" stroke-linejoin="round"/>"#,
                run.start,
                run.end - 1,
            );
        }
        for (i, d) in data.iter().enumerate() {
            let title = mark_title(&[name, &grid.cols[i]], *d, text.unit);
            match d {
                Datum::Exact(v) => {
                    let _ = write!(
                        svg.out,
                        r#"<circle class="mark exact" data-i="{i}" cx="{}" cy="{}" r="3.6" fill="{colour}"><title>{}</title></circle>"#,
                        n(px(i)),
                        n(y(*v)),
                        escape(&title)
                    );
                }
                Datum::Partial(v) => {
                    let (cx, cy) = (px(i), y(*v));
                    let _ = write!(
                        svg.out,
                        r##"<g class="mark partial" data-i="{i}"><title>{}</title><path class="range" d="M{} {}L{} {}M{} {}L{} {}L{} {}" stroke="{colour}" stroke-width="1.8" fill="none" stroke-linecap="round"/><circle cx="{}" cy="{}" r="4.6" fill="#ffffff" stroke="{colour}" stroke-width="2.2"/></g>"##,
                        escape(&title),
                        n(cx),
                        n(cy - 4.6),
                        n(cx),
                        n(cy - 20.0),
                        n(cx - 4.0),
                        n(cy - 15.0),
                        n(cx),
                        n(cy - 20.0),
                        n(cx + 4.0),
                        n(cy - 15.0),
                        n(cx),
                        n(cy),
                    );
                }
                Datum::Noisy { .. } => {
                    if let Some((lo, hi)) = d.interval() {
                        svg.error_bar(px(i), yf(lo), yf(hi), true, &title);
                    }
                    let _ = write!(
                        svg.out,
                        r#"<circle class="mark noisy" data-i="{i}" cx="{}" cy="{}" r="3.6" fill="{colour}"><title>{}</title></circle>"#,
                        n(px(i)),
                        n(y(d.lower_bound())),
                        escape(&title)
                    );
                }
                Datum::Suppressed => svg.cross(px(i), base + 12.0, colour, &title),
                Datum::Absent => {
                    let _ = write!(
                        svg.out,
                        r#"<circle class="point absent" data-i="{i}" cx="{}" cy="{}" r="2.2" fill="{colour}"><title>{}</title></circle>"#,
                        n(px(i)),
                        n(base),
                        escape(&title)
                    );
                }
            }
        }
        svg.out.push_str("</g>");
        if let Some(last) = data.iter().rposition(|d| *d != Datum::Suppressed) {
            ends.push((y(data[last].lower_bound()), s));
        }
    }
    if narrow {
        // The key under the chart, one line per row.
        svg.out.push_str("<g class=\"labels\">");
        let key_top = below + labels_h + 4.0;
        for (s, name) in grid.rows.iter().enumerate() {
            let colour = CATEGORICAL[s % CATEGORICAL.len()];
            let ly = key_top + 18.0 * s as f64 + 8.0;
            svg.line(left, ly, left + 14.0, ly, colour, 3.0);
            svg.text(left + 19.0, ly + 4.5, "start", "series-label", name);
        }
        svg.out.push_str("</g>");
        return svg.finish();
    }
    // Direct labels at the right end of each line, pushed apart so they do not overlap.
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let gap = FONT + 3.0;
    let mut placed: Vec<(f64, usize)> = Vec::with_capacity(ends.len());
    for (want, s) in ends {
        let at = placed.last().map_or(want, |(p, _)| want.max(p + gap));
        placed.push((at, s));
    }
    if let Some(overflow) = placed.last().map(|(p, _)| p - (base - 4.0))
        && overflow > 0.0
    {
        for (p, _) in &mut placed {
            *p -= overflow;
        }
    }
    svg.out.push_str("<g class=\"labels\">");
    for (ly, s) in placed {
        let colour = CATEGORICAL[s % CATEGORICAL.len()];
        let lx = left + plot_w + 8.0;
        svg.line(lx, ly, lx + 14.0, ly, colour, 3.0);
        svg.text(lx + 19.0, ly + 4.5, "start", "series-label", &grid.rows[s]);
    }
    svg.out.push_str("</g>");
    svg.finish()
}

/// How bars of several series share a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One bar per category, one segment per series.
    Stacked,
    /// One bar per series side by side, with its number.
    Grouped,
}

/// Horizontal bars: one category per row of `grid`, one colour per column (series). The value
/// axis is titled [`ChartText::x_title`], the categories [`ChartText::y_title`]. Wide charts put
/// each category's label left of its bars; narrow ones put it above them, so the bars keep the
/// width of the window.
pub fn bars(text: &ChartText<'_>, grid: &Grid, layout: Layout, palette: &[&str]) -> String {
    let narrow = text.size == Size::Narrow;
    let width = text.size.width();
    let (label_w, label_h, right) = if narrow {
        (8.0, 17.0, 96.0)
    } else {
        let w = grid
            .rows
            .iter()
            .map(|r| text_width(r, FONT))
            .fold(0.0, f64::max)
            .clamp(60.0, 260.0)
            + 14.0;
        (w, 0.0, 120.0)
    };
    let series = grid.cols.len().max(1);
    let (bar_h, band) = match layout {
        Layout::Stacked => (20.0, 30.0 + label_h),
        Layout::Grouped => (11.0, series as f64 * 12.0 + 12.0 + label_h),
    };
    let (top, bottom) = (26.0, 44.0);
    let plot_w = width - label_w - right;
    let height = top + band * grid.rows.len() as f64 + bottom;
    let max = match layout {
        Layout::Stacked => (0..grid.rows.len())
            .map(|r| grid.row_total(r).upper())
            .max()
            .unwrap_or(0),
        Layout::Grouped => grid.max_cell(),
    };
    let (top_value, step) = nice_scale(max);
    let w = |v: u64| plot_w * v as f64 / top_value;
    let wf = |v: f64| plot_w * v.max(0.0) / top_value;
    let x0 = label_w;
    let base = height - bottom;

    let mut svg = Svg::start(text, width, height);
    svg.out.push_str("<defs>");
    for (c, _) in grid.cols.iter().enumerate() {
        svg.hatch(
            &format!("{}-hatch-{c}", text.id),
            palette[c % palette.len()],
        );
    }
    svg.out.push_str("</defs><g class=\"axes\">");
    if narrow {
        svg.text(x0, 16.0, "start", "axis-title", text.y_title);
    } else {
        svg.text(x0 - 8.0, 16.0, "end", "axis-title", text.y_title);
    }
    for t in ticks(top_value, step) {
        let tx = x0 + plot_w * t / top_value;
        svg.line(tx, top, tx, base, GRID_COLOUR, 1.0);
        // On a phone every other tick keeps its number, so that numbers never touch.
        let i = (t / step).round() as usize;
        if !narrow || i.is_multiple_of(2) {
            svg.text(tx, base + 18.0, "middle", "tick", &tick_label(t));
        }
    }
    svg.line(x0, top, x0, base, AXIS_COLOUR, 1.0);
    svg.text(
        x0 + plot_w / 2.0,
        base + 38.0,
        "middle",
        "axis-title",
        text.x_title,
    );
    svg.out.push_str("</g>");

    for (r, category) in grid.rows.iter().enumerate() {
        let band_y = top + band * r as f64;
        if narrow {
            svg.text(x0, band_y + 14.0, "start", "category", category);
        } else {
            svg.text(
                x0 - 8.0,
                band_y + band / 2.0 + 4.5,
                "end",
                "category",
                category,
            );
        }
        let _ = write!(
            svg.out,
            r#"<g class="category" data-category="{}">"#,
            escape(category)
        );
        let bars_y = band_y + label_h;
        match layout {
            Layout::Stacked => {
                let y = bars_y + (band - label_h - bar_h) / 2.0;
                let mut cursor = x0;
                let mut crosses = Vec::new();
                for (c, d) in grid.cells[r].iter().enumerate() {
                    let colour = palette[c % palette.len()];
                    let title = mark_title(&[category, &grid.cols[c]], *d, text.unit);
                    match d {
                        Datum::Exact(_) | Datum::Partial(_) | Datum::Noisy { .. } => {
                            let width = w(d.lower_bound());
                            let hatch = format!("{}-hatch-{c}", text.id);
                            svg.bar(cursor, y, width, bar_h, colour, &hatch, *d, &title);
                            cursor += width;
                        }
                        Datum::Suppressed => crosses.push((colour, title)),
                        Datum::Absent => {}
                    }
                }
                // The stack's total carries the error bar: noise adds up over its segments.
                let total = grid.row_total(r);
                if let Some((lo, hi)) = total.interval() {
                    let title = mark_title(&[category], total, text.unit);
                    svg.error_bar(y + bar_h / 2.0, x0 + wf(lo), x0 + wf(hi), false, &title);
                    cursor = cursor.max(x0 + wf(hi));
                }
                let mut end = cursor + 4.0;
                for (colour, title) in crosses {
                    svg.cross(end + 6.0, y + bar_h / 2.0, colour, &title);
                    end += 13.0;
                }
                svg.text(
                    end + 6.0,
                    y + bar_h / 2.0 + 4.5,
                    "start",
                    "value",
                    &grid.row_total(r).text(),
                );
            }
            Layout::Grouped => {
                for (c, d) in grid.cells[r].iter().enumerate() {
                    let colour = palette[c % palette.len()];
                    let y = bars_y + 6.0 + c as f64 * (bar_h + 1.0);
                    let title = mark_title(&[category, &grid.cols[c]], *d, text.unit);
                    match d {
                        Datum::Exact(_) | Datum::Partial(_) | Datum::Noisy { .. } => {
                            let mut width = w(d.lower_bound());
                            let hatch = format!("{}-hatch-{c}", text.id);
                            svg.bar(x0, y, width, bar_h, colour, &hatch, *d, &title);
                            if let Some((lo, hi)) = d.interval() {
                                svg.error_bar(
                                    y + bar_h / 2.0,
                                    x0 + wf(lo),
                                    x0 + wf(hi),
                                    false,
                                    &title,
                                );
                                width = width.max(wf(hi));
                            }
                            svg.text(
                                x0 + width + 5.0,
                                y + bar_h - 1.5,
                                "start",
                                "value small",
                                &d.text(),
                            );
                        }
                        Datum::Suppressed => svg.cross(x0 + 7.0, y + bar_h / 2.0, colour, &title),
                        Datum::Absent => {}
                    }
                }
            }
        }
        svg.out.push_str("</g>");
    }
    svg.finish()
}

/// A matrix: rows × columns, each cell shaded by its figure (square-root scale, so small flows
/// stay visible), its number written in it; partial cells hatched, suppressed cells crossed.
/// [`ChartText::y_title`] names what the rows are and [`ChartText::x_title`] the columns. A narrow
/// chart is as wide as the window; the caller gives it fewer columns.
pub fn heatmap(text: &ChartText<'_>, grid: &Grid) -> String {
    let label_w = grid
        .rows
        .iter()
        .map(|r| text_width(r, FONT))
        .fold(0.0, f64::max)
        .clamp(30.0, 220.0)
        + 14.0;
    let col_count = grid.cols.len().max(1);
    let widest_value = grid
        .cells
        .iter()
        .flatten()
        .map(|d| text_width(&d.text(), 12.0))
        .fold(0.0, f64::max);
    let widest_col = grid
        .cols
        .iter()
        .map(|c| text_width(c, FONT))
        .fold(0.0, f64::max);
    let room = text.size.width();
    let cell_w = ((room - label_w - 16.0) / col_count as f64)
        .min(96.0)
        .min(widest_value.max(widest_col) + 34.0)
        .max(34.0);
    let cell_h = 24.0;
    let (top, legend_h) = (58.0, 72.0);
    let width = (label_w + cell_w * col_count as f64 + 16.0)
        .max(label_w + 300.0)
        .min(room);
    let height = top + cell_h * grid.rows.len() as f64 + legend_h;
    let max = grid.max_cell().max(1);
    let shade = |v: u64| ((v as f64) / (max as f64)).sqrt();

    let mut svg = Svg::start(text, width, height);
    let hatch = format!("{}-hatch", text.id);
    svg.out.push_str("<defs>");
    svg.hatch(&hatch, "#1a1a1a");
    svg.out.push_str("</defs><g class=\"axes\">");
    svg.text(
        4.0,
        14.0,
        "start",
        "axis-title",
        &format!("Rows: {} ↓", text.y_title),
    );
    svg.text(
        label_w,
        31.0,
        "start",
        "axis-title",
        &format!("Columns: {} →", text.x_title),
    );
    for (c, col) in grid.cols.iter().enumerate() {
        svg.text(
            label_w + cell_w * (c as f64 + 0.5),
            top - 10.0,
            "middle",
            "category",
            col,
        );
    }
    for (r, row) in grid.rows.iter().enumerate() {
        svg.text(
            label_w - 8.0,
            top + cell_h * (r as f64 + 0.5) + 4.5,
            "end",
            "category",
            row,
        );
    }
    svg.out.push_str("</g><g class=\"cells\">");
    for (r, row) in grid.rows.iter().enumerate() {
        for (c, d) in grid.cells[r].iter().enumerate() {
            let x = label_w + cell_w * c as f64;
            let y = top + cell_h * r as f64;
            let title = mark_title(&[row, &grid.cols[c]], *d, text.unit);
            match d {
                Datum::Exact(_) | Datum::Partial(_) | Datum::Noisy { .. } => {
                    let t = shade(d.lower_bound());
                    let fill = ramp(t);
                    let _ = write!(
                        svg.out,
                        r##"<rect class="mark {}" x="{}" y="{}" width="{}" height="{}" fill="{fill}" stroke="#ffffff" stroke-width="1.5"><title>{}</title></rect>"##,
                        d.class(),
                        n(x),
                        n(y),
                        n(cell_w),
                        n(cell_h),
                        escape(&title)
                    );
                    if matches!(d, Datum::Partial(_)) {
                        let _ = write!(
                            svg.out,
                            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="url(#{hatch})" opacity="0.55" pointer-events="none"/>"#,
                            n(x + 1.0),
                            n(y + 1.0),
                            n(cell_w - 2.0),
                            n(cell_h - 2.0),
                        );
                    }
                    let class = if t > 0.55 {
                        "cell-value on-dark"
                    } else {
                        "cell-value"
                    };
                    // A noisy cell shows its estimate; its interval is in the tooltip.
                    let shown = match d.shown() {
                        Some(Shown::Estimate { value, .. }) => thousands(value),
                        _ => d.text(),
                    };
                    svg.text(
                        x + cell_w / 2.0,
                        y + cell_h / 2.0 + 4.0,
                        "middle",
                        class,
                        &shown,
                    );
                }
                Datum::Suppressed => {
                    let _ = write!(
                        svg.out,
                        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#f4f4f4" stroke="#ffffff" stroke-width="1.5"/>"##,
                        n(x),
                        n(y),
                        n(cell_w),
                        n(cell_h),
                    );
                    svg.cross(
                        x + cell_w / 2.0,
                        y + cell_h / 2.0,
                        SUPPRESSED_COLOUR,
                        &title,
                    );
                }
                Datum::Absent => {
                    let _ = write!(
                        svg.out,
                        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fbfbfb" stroke="#ffffff" stroke-width="1.5"/>"##,
                        n(x),
                        n(y),
                        n(cell_w),
                        n(cell_h),
                    );
                }
            }
        }
    }
    svg.out.push_str("</g><g class=\"scale\">");
    // Colour key: five steps of the square-root scale.
    let key_y = top + cell_h * grid.rows.len() as f64 + 16.0;
    let key_w = 56.0;
    svg.text(
        label_w,
        key_y + 10.0,
        "start",
        "axis-title",
        &format!("{} (square-root scale)", sentence(text.unit)),
    );
    for i in 0..5 {
        let t = i as f64 / 4.0;
        let v = (t * t * max as f64).round() as u64;
        let kx = label_w + key_w * i as f64;
        let _ = write!(
            svg.out,
            r#"<rect x="{}" y="{}" width="{}" height="12" fill="{}"/>"#,
            n(kx),
            n(key_y + 18.0),
            n(key_w),
            ramp(t)
        );
        svg.text(kx, key_y + 45.0, "start", "tick", &thousands(v));
    }
    svg.out.push_str("</g>");
    svg.finish()
}

fn sentence(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A light-to-dark blue for `t` in 0..=1.
fn ramp(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let (from, to) = ([0xe8, 0xf0, 0xf8], [0x08, 0x30, 0x6b]);
    let c: Vec<u8> = from
        .iter()
        .zip(to)
        .map(|(a, b)| (f64::from(*a) + (f64::from(b) - f64::from(*a)) * t).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            rows: vec!["A>B".into(), "C>D".into()],
            cols: vec!["2024-Q1".into(), "2024-Q2".into(), "2024-Q3".into()],
            cells: vec![
                vec![Datum::Exact(10), Datum::Partial(7), Datum::Suppressed],
                vec![Datum::Absent, Datum::Exact(3), Datum::Exact(1_200)],
            ],
        }
    }

    const TEXT: ChartText<'static> = ChartText {
        id: "t",
        title: "T",
        desc: "D",
        unit: "migrants",
        x_title: "Quarter",
        y_title: "Migrants per quarter",
        size: Size::Wide,
    };

    #[test]
    fn nice_scales_cover_the_maximum() {
        for max in [0, 1, 7, 10, 99, 101, 1_234, 98_765] {
            let (top, step) = nice_scale(max);
            assert!(top >= max as f64 && step > 0.0, "{max}: {top} {step}");
            assert!(top / step <= 10.0, "{max}: {top} {step}");
        }
    }

    #[test]
    fn every_chart_marks_each_status_and_has_finite_geometry() {
        let g = grid();
        for svg in [
            lines(&TEXT, &g),
            bars(&TEXT, &g, Layout::Stacked, CATEGORICAL),
            bars(&TEXT, &g, Layout::Grouped, SEQUENTIAL),
            heatmap(&TEXT, &g),
        ] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
            assert!(svg.contains(r#"role="img""#) && svg.contains("<title"));
            assert!(svg.contains("mark exact"), "{svg}");
            assert!(svg.contains("mark partial"), "{svg}");
            assert!(svg.contains("mark suppressed"), "{svg}");
            assert!(!svg.contains("NaN") && !svg.contains("=\"inf"), "{svg}");
        }
    }

    #[test]
    fn chart_text_is_escaped() {
        let g = Grid {
            rows: vec!["<script>alert(1)</script>".into()],
            cols: vec!["\"x\" & y".into()],
            cells: vec![vec![Datum::Exact(1)]],
        };
        for svg in [
            lines(&TEXT, &g),
            bars(&TEXT, &g, Layout::Stacked, CATEGORICAL),
            heatmap(&TEXT, &g),
        ] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"));
            assert!(svg.contains("&quot;x&quot; &amp; y"));
        }
    }

    #[test]
    fn empty_grids_still_draw_axes() {
        let g = Grid {
            rows: vec![],
            cols: vec![],
            cells: vec![],
        };
        assert!(lines(&TEXT, &g).ends_with("</svg>"));
        assert!(bars(&TEXT, &g, Layout::Stacked, CATEGORICAL).ends_with("</svg>"));
        assert!(heatmap(&TEXT, &g).ends_with("</svg>"));
    }

    /// The vertices of every `<path class="line">` of a chart, as (x, y).
    fn line_vertices(svg: &str) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for part in svg.split(r#"<path class="line""#).skip(1) {
            let d = part
                .split(r#" d=""#)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let nums: Vec<f64> = d
                .split(['M', 'L', ' '])
                .filter(|t| !t.is_empty())
                .map(|t| t.parse().unwrap())
                .collect();
            out.extend(nums.chunks(2).map(|p| (p[0], p[1])));
        }
        out
    }

    /// The centre of every point of status `class` (`cx`, `cy` of its circle).
    fn points(svg: &str, class: &str) -> Vec<(f64, f64)> {
        let attr = |s: &str, a: &str| -> f64 {
            let at = s.find(&format!(r#" {a}=""#)).unwrap() + a.len() + 3;
            s[at..].split('"').next().unwrap().parse().unwrap()
        };
        svg.split(&format!(r#"class="mark {class}""#))
            .skip(1)
            // The first cx after the class: the point's own, or its circle's in a group.
            .map(|part| (attr(part, "cx"), attr(part, "cy")))
            .collect()
    }

    #[test]
    fn lines_join_figures_only() {
        use Datum::*;
        let p = Partial(5);
        let e = Exact(5);
        let s = Suppressed;
        let z = Noisy { value: 3, se: 1.0 };
        for (data, runs) in [
            (vec![], Vec::<(usize, usize)>::new()),
            (vec![e], vec![]),
            (vec![e, e], vec![(0, 2)]),
            (vec![e, p, e], vec![]),
            (vec![e, e, p, e, z, Absent], vec![(0, 2), (3, 6)]),
            (vec![p, p, p], vec![]),
            (vec![e, s, e, e], vec![(2, 4)]),
            (vec![z, z, s, p, e, e, e], vec![(0, 2), (4, 7)]),
        ] {
            let got: Vec<(usize, usize)> =
                line_runs(&data).iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(got, runs, "{data:?}");
        }
    }

    #[test]
    fn no_line_touches_a_lower_bound() {
        let g = Grid {
            rows: vec!["A>B".into(), "C>D".into()],
            cols: (1..=6)
                .map(|q| format!("2024-Q{}", (q - 1) % 4 + 1))
                .collect(),
            cells: vec![
                vec![
                    Datum::Exact(10),
                    Datum::Exact(12),
                    Datum::Partial(7),
                    Datum::Exact(9),
                    Datum::Exact(11),
                    Datum::Suppressed,
                ],
                vec![
                    Datum::Partial(4),
                    Datum::Partial(6),
                    Datum::Exact(3),
                    Datum::Noisy { value: 8, se: 2.0 },
                    Datum::Partial(20),
                    Datum::Absent,
                ],
            ],
        };
        for size in [Size::Wide, Size::Narrow] {
            let svg = lines(&ChartText { size, ..TEXT }, &g);
            let vertices = line_vertices(&svg);
            // Runs: A>B 0..2 and 3..5, C>D 2..4: 2 + 2 + 2 vertices.
            assert_eq!(vertices.len(), 6, "{svg}");
            let partial = points(&svg, "partial");
            assert_eq!(partial.len(), 4, "{svg}");
            for v in &vertices {
                assert!(
                    partial
                        .iter()
                        .all(|p| (p.0 - v.0).abs() > 0.5 || (p.1 - v.1).abs() > 0.5),
                    "a line reaches the lower bound at {v:?}: {svg}"
                );
            }
            let figures: Vec<(f64, f64)> = [points(&svg, "exact"), points(&svg, "noisy")].concat();
            for v in &vertices {
                assert!(
                    figures
                        .iter()
                        .any(|p| (p.0 - v.0).abs() < 0.05 && (p.1 - v.1).abs() < 0.05),
                    "a line vertex {v:?} is not on a figure: {svg}"
                );
            }
            assert!(
                svg.contains(r#"class="range""#),
                "lower bounds drawn as ranges"
            );
            assert!(
                !svg.contains("stroke-dasharray"),
                "no dashed line joins lower bounds"
            );
        }
    }

    /// sRGB hex to CIELAB (D65).
    fn lab(hex: &str) -> [f64; 3] {
        let c = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let (r, g, b) = (c(1), c(3), c(5));
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [
            116.0 * f(y) - 16.0,
            500.0 * (f(x) - f(y)),
            200.0 * (f(y) - f(z)),
        ]
    }

    fn delta_e(a: &str, b: &str) -> f64 {
        let (a, b) = (lab(a), lab(b));
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    }

    #[test]
    fn ordered_colours_are_pairwise_distinguishable() {
        assert_eq!(SEQUENTIAL.len(), 6, "one colour per fee band");
        for (i, a) in SEQUENTIAL.iter().enumerate() {
            for b in &SEQUENTIAL[i + 1..] {
                let d = delta_e(a, b);
                assert!(d >= MIN_DELTA_E, "{a} and {b}: ΔE {d:.1}");
            }
        }
        // Light to dark, so cheap to dear reads as an order.
        let l: Vec<f64> = SEQUENTIAL.iter().map(|c| lab(c)[0]).collect();
        assert!(l.windows(2).all(|w| w[0] > w[1]), "{l:?}");
        // The old single-hue ramp failed: its neighbours were too close.
        assert!(delta_e("#c6dbef", "#9ecae1") < MIN_DELTA_E);
    }

    #[test]
    fn every_chart_names_its_axes() {
        let g = grid();
        for size in [Size::Wide, Size::Narrow] {
            let text = ChartText { size, ..TEXT };
            for svg in [
                lines(&text, &g),
                bars(&text, &g, Layout::Stacked, CATEGORICAL),
                bars(&text, &g, Layout::Grouped, SEQUENTIAL),
                heatmap(&text, &g),
            ] {
                assert!(
                    svg.matches(r#"class="axis-title""#).count() >= 2,
                    "{size:?}: {svg}"
                );
                assert!(svg.contains("Quarter") && svg.contains("Migrants per quarter"));
            }
        }
    }

    #[test]
    fn narrow_charts_are_drawn_for_a_phone() {
        let g = grid();
        let text = ChartText {
            size: Size::Narrow,
            ..TEXT
        };
        for svg in [
            lines(&text, &g),
            bars(&text, &g, Layout::Stacked, CATEGORICAL),
            heatmap(&text, &g),
        ] {
            let w: f64 = svg
                .split(r#"viewBox="0 0 "#)
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(w <= Size::Narrow.width() && w > 300.0, "{w}: {svg}");
        }
    }
}
