//! Command-line flags shared by `vrs-node query` and `vrs-coordinator query`, so both accept the
//! same question in the same words.

use clap::Args;

use crate::query::{QueryError, RawQuery};

/// The query flags.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Unit to count: incidents, migrants, smugglers, deaths, missing, fees.
    #[arg(long)]
    pub unit: String,
    /// Group-by dimensions, comma-separated (e.g. quarter,route).
    #[arg(long)]
    pub by: Option<String>,
    /// Filter DIM=V[,V...]; repeat for several dimensions.
    #[arg(long = "where", value_name = "DIM=V[,V...]")]
    pub filters: Vec<String>,
    /// Start of the period range: YYYY, YYYY-Qn or YYYY-MM.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period range: YYYY, YYYY-Qn or YYYY-MM.
    #[arg(long)]
    pub to: Option<String>,
    /// Also release totals over each dimension and the grand total.
    #[arg(long)]
    pub margins: bool,
}

impl QueryArgs {
    /// The raw query these flags describe.
    pub fn to_raw(&self) -> Result<RawQuery, QueryError> {
        RawQuery::from_cli(
            &self.unit,
            self.by.as_deref(),
            &self.filters,
            self.from.as_deref(),
            self.to.as_deref(),
            self.margins,
        )
    }
}

/// One line for a command-line error: the error and each cause, leaving out causes whose text
/// the message already contains (many errors quote their source in their own message). Control
/// characters (a peer's text can be among the causes) are shown as escapes
/// ([`crate::terminal::sanitize`]).
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    crate::terminal::sanitize(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let e = Outer {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error_line(&e), "cannot read x: gone");
    }
}
