//! The command-line skeleton both binaries share: the global flags ([`CommonArgs`]), the query
//! flags of `vrs-node query` and `vrs-coordinator query` (so both accept the same question in the
//! same words), and [`main`], which installs the crypto provider, runs a command and turns its
//! error into one readable line and an exit status.
//!
//! A binary's `main.rs` is then: parse flags, choose [`Logging`] once (flag, else the
//! configuration's `[log]`), call the library's command function.
//!
//! Exit statuses are defined once, here ([`Status`]): both binaries return them, list them in
//! their `--help` ([`Status::help`]) and docs/OPERATING.md lists them for scripts.

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

/// The exit status of a command, the same numbers in both binaries. The numbers are stable:
/// scripts test them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: the command did what it was asked.
    Ok,
    /// 1: the command failed (the error line says why), or a check found a problem (`check`,
    /// `audit verify`, `audit-receipts verify`).
    Failed,
    /// 2: the command line is wrong: an unknown flag or subcommand, a missing argument, a flag
    /// value that is not valid (a country, a code, a question the node does not publish).
    Usage,
    /// 3: an import finished, but some rows were rejected (listed in the summary); the rest went
    /// in. `--allow-rejected` makes this 0.
    ImportRejectedRows,
    /// 4: an import put nothing of a file in the store: `--strict` rolled it back, or every one
    /// of its rows was rejected.
    ImportNothing,
    /// 5: a query or report: some nodes answered, others did not (the table says which).
    QueryPartial,
    /// 6: a query or report: no node answered (all refused, unreachable, timed out or held for
    /// approval).
    QueryNoAnswer,
}

impl Status {
    /// Every status, by number.
    pub const ALL: &'static [Status] = &[
        Status::Ok,
        Status::Failed,
        Status::Usage,
        Status::ImportRejectedRows,
        Status::ImportNothing,
        Status::QueryPartial,
        Status::QueryNoAnswer,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::ImportRejectedRows => 3,
            Status::ImportNothing => 4,
            Status::QueryPartial => 5,
            Status::QueryNoAnswer => 6,
        }
    }

    /// What the status means, in a few words (the `--help` line).
    pub const fn meaning(self) -> &'static str {
        match self {
            Status::Ok => "success",
            Status::Failed => "error, or a check found a problem (check, verify)",
            Status::Usage => "usage error: a wrong flag, argument or flag value",
            Status::ImportRejectedRows => {
                "import: some rows rejected, the rest imported (0 with --allow-rejected)"
            }
            Status::ImportNothing => {
                "import: nothing of a file imported (--strict rollback, or every row rejected)"
            }
            Status::QueryPartial => "query/report: only some nodes answered",
            Status::QueryNoAnswer => "query/report: no node answered",
        }
    }

    /// The `Exit status:` block of a binary's `--help`, listing `statuses`.
    pub fn help(statuses: &[Status]) -> String {
        let mut text = String::from("Exit status:");
        for s in statuses {
            text.push_str(&format!("\n  {}  {}", s.code(), s.meaning()));
        }
        text
    }

    /// The worst of several statuses of one command (the highest number; `Ok` only if all are).
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses
            .into_iter()
            .max_by_key(|s| s.code())
            .unwrap_or(Status::Ok)
    }
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// A command's error, with the exit status it ends the process with.
pub trait CommandError: std::error::Error + 'static {
    /// [`Status::Failed`] unless the error is the operator's command line ([`Status::Usage`]).
    fn status(&self) -> Status {
        Status::Failed
    }
}

/// Runs a binary's command: installs the process-wide crypto provider (ring) first, then `run`;
/// an error becomes one line on stderr (`error: …`, each cause once, no backtrace for an
/// operator's mistake) and its [`CommandError::status`].
pub fn main<E: CommandError>(run: impl FnOnce() -> Result<ExitCode, E>) -> ExitCode {
    crate::tls::install_crypto_provider();
    exit_code(run())
}

/// The exit status of a command's result; an error is printed as in [`main`].
pub fn exit_code<E: CommandError>(result: Result<ExitCode, E>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            e.status().into()
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
    fn statuses_are_distinct_and_listed_in_help() {
        let codes: std::collections::BTreeSet<u8> = Status::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), Status::ALL.len());
        assert_eq!(Status::Usage.code(), 2, "clap exits 2 on a usage error");
        let help = Status::help(Status::ALL);
        for s in Status::ALL {
            assert!(
                help.contains(&format!("  {}  {}", s.code(), s.meaning())),
                "{help}"
            );
        }
        assert_eq!(
            Status::worst([Status::Ok, Status::QueryPartial, Status::Ok]),
            Status::QueryPartial
        );
        assert_eq!(Status::worst([]), Status::Ok);
    }

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let e = Outer {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error_line(&e), "cannot read x: gone");
    }
}
