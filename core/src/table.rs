//! Plain tables for people and spreadsheets: an aligned text rendering and CSV.
//!
//! Both the node (`vrs-node query`) and the coordinator print their results through this, so the
//! two look alike and CSV quoting is done once, by the `csv` crate.

/// A table of text cells with a header row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows; each as long as the header.
    pub rows: Vec<Vec<String>>,
    /// Columns aligned to the right (numbers).
    pub right: Vec<bool>,
}

impl Table {
    /// A table with these column names, all left-aligned.
    pub fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Table {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let right = vec![false; header.len()];
        Table {
            header,
            rows: Vec::new(),
            right,
        }
    }

    /// Marks column `i` as right-aligned.
    pub fn align_right(mut self, i: usize) -> Table {
        if let Some(r) = self.right.get_mut(i) {
            *r = true;
        }
        self
    }

    /// Adds a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned text, columns separated by two spaces, with a rule under the header. Meant for a
    /// terminal: control characters in any cell (a node's message, say) are shown as escapes
    /// ([`crate::terminal::sanitize`]), so they neither act on the terminal nor break alignment.
    pub fn to_aligned(&self) -> String {
        let safe = |cells: &[String]| -> Vec<String> {
            cells
                .iter()
                .map(|c| crate::terminal::sanitize(c).into_owned())
                .collect()
        };
        let header = safe(&self.header);
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| safe(r)).collect();
        let n = header.len();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (i, c) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut parts = Vec::with_capacity(n);
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = w.saturating_sub(c.chars().count());
                if self.right.get(i).copied().unwrap_or(false) {
                    parts.push(format!("{}{c}", " ".repeat(pad)));
                } else {
                    parts.push(format!("{c}{}", " ".repeat(pad)));
                }
            }
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        line(&header, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &rows {
            line(row, &mut out);
        }
        out
    }

    /// RFC 4180 CSV with a header line.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing to memory cannot fail; a failure would only drop the row.
        let _ = w.write_record(&self.header);
        for row in &self.rows {
            let _ = w.write_record(row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_quotes() {
        let mut t = Table::new(["route", "migrants"]).align_right(1);
        t.push(vec!["MMR>THA".into(), "120".into()]);
        t.push(vec!["A, \"B\"".into(), "5".into()]);
        let text = t.to_aligned();
        assert!(text.contains("MMR>THA       120"), "{text}");
        assert!(text.lines().nth(1).unwrap().starts_with("-------"));
        assert!(t.to_csv().contains("\"A, \"\"B\"\"\",5"));
    }
}
