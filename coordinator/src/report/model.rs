//! The report's data model, shared by the charts ([`super::chart`]) and the HTML building blocks
//! ([`super::html`]): a [`Datum`] (a regional figure with its status), a [`Grid`] of them, and
//! the text helpers every renderer uses ([`escape`], [`thousands`]).
//!
//! Dependencies run one way: `report` → `chart`, `html` → `model`; nothing here renders.

use crate::merge::{CellStatus, Shown, shown};

/// What a regional cell says, as a chart draws it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Datum {
    /// Every node that holds the cell released it without noise: the value is the sum.
    Exact(u64),
    /// Every node that holds the cell released it, some with zCDP noise: a signed estimate with
    /// its standard error. Drawn at `max(value, 0)` with a 95 % error bar.
    Noisy {
        /// The signed sum of the nodes' values.
        value: i64,
        /// √Σσ².
        se: f64,
    },
    /// Some node suppressed the cell: the value is a lower bound.
    Partial(u64),
    /// No node released a figure.
    Suppressed,
    /// No node reported the cell: zero records.
    Absent,
}

impl Datum {
    /// The value a chart may draw: the exact value, the lower bound, a noisy estimate clamped at
    /// 0; 0 for suppressed and absent.
    pub fn lower_bound(self) -> u64 {
        match self {
            Datum::Exact(v) | Datum::Partial(v) => v,
            Datum::Noisy { value, .. } => u64::try_from(value).unwrap_or(0),
            Datum::Suppressed | Datum::Absent => 0,
        }
    }

    /// How the figure may be shown, by the coordinator's display rules.
    pub fn shown(self) -> Option<Shown> {
        match self {
            Datum::Noisy { value, se } => Some(shown(value, se, CellStatus::Noisy)),
            _ => None,
        }
    }

    /// Whether it says anything: a released, partial or suppressed figure, or a noisy one
    /// distinguishable from 0 (not absent, not a noisy "<U").
    pub fn is_figure(self) -> bool {
        match self {
            Datum::Absent => false,
            Datum::Noisy { .. } => matches!(self.shown(), Some(Shown::Estimate { .. })),
            _ => true,
        }
    }

    /// The 95 % interval of a noisy figure, clamped at 0.
    pub fn interval(self) -> Option<(f64, f64)> {
        self.shown().and_then(Shown::interval)
    }

    /// The largest value a chart must make room for (the top of an error bar).
    pub fn upper(self) -> u64 {
        match self.interval() {
            Some((_, hi)) => hi.ceil() as u64,
            None => self.lower_bound(),
        }
    }

    /// The number as a table or a label shows it (`≥` for a lower bound, `×` for suppressed,
    /// `–` for none reported).
    pub fn text(self) -> String {
        match self {
            Datum::Exact(v) => thousands(v),
            Datum::Noisy { .. } => match self.shown() {
                Some(Shown::Estimate {
                    value, half_width, ..
                }) => format!(
                    "{} ± {}",
                    thousands(value),
                    thousands(half_width.round() as u64)
                ),
                Some(Shown::NotDistinguishable { upper, .. }) => {
                    format!("<{}", thousands(upper.ceil() as u64))
                }
                _ => "–".into(),
            },
            Datum::Partial(v) => format!("≥{}", thousands(v)),
            Datum::Suppressed => "×".into(),
            Datum::Absent => "–".into(),
        }
    }

    /// The words a tooltip or screen reader uses, with the unit counted ("migrants").
    pub fn spoken(self, unit: &str) -> String {
        match self {
            Datum::Exact(v) => format!("{} {unit}", thousands(v)),
            Datum::Noisy { .. } => match (self.shown(), self.interval()) {
                (Some(Shown::Estimate { value, .. }), Some((lo, hi))) => format!(
                    "about {} {unit} (noisy estimate; 95% interval {} to {})",
                    thousands(value),
                    thousands(lo.floor() as u64),
                    thousands(hi.ceil() as u64)
                ),
                (_, Some((_, hi))) => format!(
                    "not distinguishable from 0 (noisy estimate; below {} {unit} at 95%)",
                    thousands(hi.ceil() as u64)
                ),
                _ => "none reported".into(),
            },
            Datum::Partial(v) => format!(
                "at least {} {unit} (partial: some node suppressed part of this figure)",
                thousands(v)
            ),
            Datum::Suppressed => "suppressed (no node released this figure)".into(),
            Datum::Absent => "none reported".into(),
        }
    }

    /// The CSS class of its status.
    pub fn class(self) -> &'static str {
        match self {
            Datum::Exact(_) => "exact",
            Datum::Noisy { .. } => "noisy",
            Datum::Partial(_) => "partial",
            Datum::Suppressed => "suppressed",
            Datum::Absent => "absent",
        }
    }
}

/// The sum of two figures: exact only if both parts are; noisy when a noisy part meets noisy or
/// exact parts (the variances add); a lower bound otherwise.
impl std::ops::Add for Datum {
    type Output = Datum;

    fn add(self, other: Datum) -> Datum {
        let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        match (self, other) {
            (Datum::Absent, d) | (d, Datum::Absent) => d,
            (Datum::Exact(a), Datum::Exact(b)) => Datum::Exact(a.saturating_add(b)),
            (Datum::Noisy { value: a, se: s }, Datum::Noisy { value: b, se: t }) => Datum::Noisy {
                value: a.saturating_add(b),
                se: s.hypot(t),
            },
            (Datum::Noisy { value, se }, Datum::Exact(e))
            | (Datum::Exact(e), Datum::Noisy { value, se }) => Datum::Noisy {
                value: value.saturating_add(signed(e)),
                se,
            },
            (a, b) => Datum::Partial(a.lower_bound().saturating_add(b.lower_bound())),
        }
    }
}

/// A table of figures: one row per category, one column per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Row labels, as shown.
    pub rows: Vec<String>,
    /// Column labels, as shown.
    pub cols: Vec<String>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<Datum>>,
}

impl Grid {
    /// The figure of a row: the sum over its columns.
    pub fn row_total(&self, row: usize) -> Datum {
        self.cells[row]
            .iter()
            .fold(Datum::Absent, |acc, d| acc + *d)
    }

    /// The rows whose cells `keep` accepts.
    pub fn retain_rows(self, keep: impl Fn(&[Datum]) -> bool) -> Grid {
        let (rows, cells): (Vec<String>, Vec<Vec<Datum>>) = self
            .rows
            .into_iter()
            .zip(self.cells)
            .filter(|(_, c)| keep(c))
            .unzip();
        Grid {
            rows,
            cols: self.cols,
            cells,
        }
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Grid {
        let n = n.min(self.rows.len());
        Grid {
            rows: self.rows[..n].to_vec(),
            cols: self.cols.clone(),
            cells: self.cells[..n].to_vec(),
        }
    }

    /// Rows and columns swapped.
    pub fn transposed(&self) -> Grid {
        let cells = (0..self.cols.len())
            .map(|c| self.cells.iter().map(|row| row[c]).collect())
            .collect();
        Grid {
            rows: self.cols.clone(),
            cols: self.rows.clone(),
            cells,
        }
    }

    /// The largest value a chart may draw (the lower bound of every cell, the top of every
    /// error bar).
    pub fn max_cell(&self) -> u64 {
        self.cells
            .iter()
            .flatten()
            .map(|d| d.upper())
            .max()
            .unwrap_or(0)
    }
}

/// Escapes text for HTML element content and quoted attribute values (also valid in SVG).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole number with thousands separators: `12,345`.
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn sums_are_exact_only_when_every_part_is() {
        assert_eq!(Datum::Exact(2) + Datum::Exact(3), Datum::Exact(5));
        assert_eq!(Datum::Exact(2) + Datum::Absent, Datum::Exact(2));
        assert_eq!(Datum::Exact(2) + Datum::Suppressed, Datum::Partial(2));
        assert_eq!(Datum::Suppressed + Datum::Absent, Datum::Suppressed);
        assert_eq!(Datum::Partial(1) + Datum::Exact(1), Datum::Partial(2));
        let g = Grid {
            rows: vec!["A>B".into(), "C>D".into()],
            cols: vec!["2024-Q1".into(), "2024-Q2".into(), "2024-Q3".into()],
            cells: vec![
                vec![Datum::Exact(10), Datum::Partial(7), Datum::Suppressed],
                vec![Datum::Absent, Datum::Exact(3), Datum::Exact(1_200)],
            ],
        };
        assert_eq!(g.row_total(0), Datum::Partial(17));
        assert_eq!(g.row_total(1), Datum::Exact(1_203));
    }
}
