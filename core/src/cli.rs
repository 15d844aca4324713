//! The command-line skeleton both binaries share: the global flags ([`CommonArgs`]), the query
//! flags of `vrs-node query` and `vrs-coordinator query` (so both accept the same question in the
//! same words), and [`main`], which installs the crypto provider, runs a command and turns its
//! error into one readable line and an exit status.
//!
//! A binary's `main.rs` is then: parse flags, choose [`Logging`] once (flag, else the
//! configuration's `[log]`), call the library's command function.

use std::process::ExitCode;

use clap::Args;

use crate::query::{QueryError, RawQuery};
use crate::telemetry::{LogFormat, Logging, LoggingError};

/// Flags every binary takes, before or after its subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Log format on stderr: human or json (default: the configuration's `[log] format` where a
    /// command reads one, else human).
    #[arg(long, global = true)]
    pub log_format: Option<LogFormat>,
}

impl CommonArgs {
    /// The log settings: this flag, else `config`'s (`format`, `level`), else human with
    /// `default_filter`.
    pub fn logging(
        &self,
        config: Option<(&str, &str)>,
        default_filter: &str,
    ) -> Result<Logging, LoggingError> {
        Logging::resolve(self.log_format, config, default_filter)
    }
}

/// An I/O failure with what was being done (`write node.toml`, `bind 127.0.0.1:0`): the message
/// a person at the terminal needs, the OS error as its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct IoError {
    /// What was being done.
    pub what: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// For `map_err`: an I/O error while doing `what`.
    pub fn doing(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IoError {
        let what = what.into();
        move |source| IoError { what, source }
    }
}

/// Runs a binary's command: installs the process-wide crypto provider (ring) first, then `run`;
/// an error becomes one line on stderr (`error: …`, each cause once, no backtrace for an
/// operator's mistake) and a failure status.
pub fn main<E>(run: impl FnOnce() -> Result<ExitCode, E>) -> ExitCode
where
    E: std::error::Error + 'static,
{
    crate::tls::install_crypto_provider();
    exit_code(run())
}

/// The exit status of a command's result; an error is printed as in [`main`].
pub fn exit_code<E>(result: Result<ExitCode, E>) -> ExitCode
where
    E: std::error::Error + 'static,
{
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

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
