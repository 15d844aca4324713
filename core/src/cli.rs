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

/// Dimensions with more values than this are listed by `codes DIMENSION` only.
const LISTED_INLINE: usize = 60;

/// The dimensions and values of a node's vocabulary, for the `codes` commands: `lists` holds
/// each dimension's name with its values (empty when they depend on the data, as periods do
/// offline). Without `only`, every dimension with what it is and its values (long lists by a
/// note: `codes DIMENSION` lists them); with `only`, that dimension's values, one per line. A
/// name that is no dimension is an error with a suggestion.
pub fn codes_listing(
    units: &[&str],
    lists: &[(String, Vec<String>)],
    only: Option<&str>,
) -> Result<String, QueryError> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let dimension = |name: &str| name.parse::<crate::query::Dimension>().ok();
    if let Some(only) = only {
        let d: crate::query::Dimension = only.trim().parse()?;
        let Some((_, values)) = lists.iter().find(|(name, _)| *name == d.code()) else {
            let _ = writeln!(out, "{d}: not published");
            return Ok(out);
        };
        match (values.is_empty(), d.values_note()) {
            (true, Some(note)) => {
                let _ = writeln!(out, "{d}: {note}");
            }
            _ => values.iter().for_each(|v| {
                let _ = writeln!(out, "{v}");
            }),
        }
        return Ok(out);
    }
    let _ = writeln!(out, "units: {}", units.join(", "));
    let _ = writeln!(
        out,
        "dimensions (`codes DIMENSION` lists one's values one per line):"
    );
    for (name, values) in lists {
        let d = dimension(name);
        let about = d.map(|d| d.about()).unwrap_or("");
        let _ = writeln!(out, "  {name:<15} {about}");
        let note = d.and_then(|d| d.values_note());
        let shown = match note {
            Some(note) if values.is_empty() => note.to_string(),
            Some(note) if values.len() > LISTED_INLINE => {
                format!("{} values: {note}", values.len())
            }
            _ if values.len() > LISTED_INLINE => format!("{} values", values.len()),
            _ => values.join(", "),
        };
        for line in wrap(&shown, 92) {
            let _ = writeln!(out, "      {line}");
        }
    }
    Ok(out)
}

/// `text` in lines of at most `width` characters, broken after a comma or at a space.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let Some(line) = lines.last_mut() else { break };
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Every dimension's closed values as the code knows them (periods and routes empty: their
/// values depend on the data, or are pairs), for [`codes_listing`].
pub fn known_codes() -> Vec<(String, Vec<String>)> {
    crate::query::Dimension::ALL
        .iter()
        .map(|d| (d.code().to_string(), d.closed_values().unwrap_or_default()))
        .collect()
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
    fn the_codes_listing_names_every_dimension_and_value() {
        use crate::query::{Dimension, Unit};
        let units: Vec<&str> = Unit::ALL.iter().map(|u| u.code()).collect();
        let all = codes_listing(&units, &known_codes(), None).unwrap();
        for d in Dimension::ALL {
            assert!(
                all.contains(&format!("  {:<15} {}", d.code(), d.about())),
                "{all}"
            );
            let values = d.closed_values().unwrap_or_default();
            if values.len() <= LISTED_INLINE {
                for v in &values {
                    assert!(all.contains(v.as_str()), "{d}: {v} not in {all}");
                }
            }
        }
        assert!(all.contains("0-499, 500-999, 1000-2499"), "{all}");
        assert!(all.contains("incidents, migrants"), "{all}");
        assert!(all.lines().all(|l| l.chars().count() <= 100), "{all}");
        let origin = codes_listing(&units, &known_codes(), Some("origin")).unwrap();
        assert_eq!(origin.lines().count(), crate::codes::Country::all().count());
        assert!(origin.lines().any(|l| l == "MMR"));
        let quarter = codes_listing(&units, &known_codes(), Some("quarter")).unwrap();
        assert!(quarter.contains("2024-Q1"), "{quarter}");
        let typo = codes_listing(&units, &known_codes(), Some("rout")).unwrap_err();
        assert!(typo.to_string().contains("did you mean route?"), "{typo}");
        let fewer = vec![("mode".to_string(), vec!["sea".to_string()])];
        let unpublished = codes_listing(&units, &fewer, Some("sex")).unwrap();
        assert_eq!(unpublished, "sex: not published\n");
    }

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let e = Outer {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error_line(&e), "cannot read x: gone");
    }
}
