//! The `vrs-coordinator` commands, one function per subcommand; `main.rs` only parses flags,
//! sets up logging and calls [`run`].
//!
//! Every command prints for a person or a script (tables, CSV, JSON, one line per node) and
//! returns an exit status; what goes wrong is a [`CliError`], printed as one line by
//! [`vrs_core::cli::main`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use vrs_core::cli::{CommandError, IoError, QueryArgs, Status};
use vrs_core::clock::SystemClock;
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Query, QueryError, QueryLimits};
use vrs_core::telemetry::LoggingError;

use crate::budget::{self, BudgetError};
use crate::fanout::{FanoutError, Federation, NodeDescription, NodeOutcome};
use crate::receipts::{self, ReceiptsError};
use crate::registry::{Registry, RegistryError};
use crate::report::{self, ReportError};
use crate::{merge, output};

/// Output format of `query`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// An aligned table.
    Table,
    /// CSV.
    Csv,
    /// JSON (versioned schema, docs/OUTPUTS.md).
    Json,
}

/// The exit statuses `vrs-coordinator` returns, listed in its `--help` and in that of `query` and
/// `report`.
pub const STATUSES: &[Status] = &[
    Status::Ok,
    Status::Failed,
    Status::Usage,
    Status::QueryPartial,
    Status::QueryNoAnswer,
];

/// The subcommands of `vrs-coordinator`.
#[derive(Debug, Subcommand)]
// Each field's doc is its flag's help text; the flattened question and nested subcommands are
// documented where they are defined.
#[allow(missing_docs)]
pub enum Command {
    /// Ask every node in the registry one aggregate question and merge the answers.
    #[command(after_help = Status::help(STATUSES))]
    Query {
        /// Registry file (TOML).
        #[arg(long)]
        registry: PathBuf,
        #[command(flatten)]
        query: QueryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Show each node's released value next to the regional one.
        #[arg(long)]
        per_node: bool,
        /// Re-send an earlier query id (to collect answers from nodes that held the query for
        /// their operator's approval). Default: a fresh id.
        #[arg(long)]
        query_id: Option<String>,
        /// Ask each node what the query would cost (`Plan`) without reading or spending anything.
        #[arg(long)]
        dry_run: bool,
        /// zCDP ρ to spend on every quarter the query touches (default: each node's default).
        #[arg(long)]
        rho: Option<f64>,
        /// Regional mode (secure aggregation with the registry's `[regional]` helper): complete
        /// noisy regional totals, no state's figures seen by anyone; no per-node column.
        #[arg(long, conflicts_with_all = ["per_node", "dry_run", "query_id"])]
        regional: bool,
    },
    /// Every node's remaining privacy-loss budget per quarter (from Describe).
    Budget {
        /// Registry file (TOML).
        #[arg(long)]
        registry: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Ask every node what it publishes (dimensions, units, public policy).
    Describe {
        /// Registry file (TOML).
        #[arg(long)]
        registry: PathBuf,
        /// Also list each node's units, dimensions and values (`--codes DIMENSION`: that
        /// dimension's values, one per line).
        #[arg(long, value_name = "DIMENSION")]
        codes: Option<Option<String>>,
    },
    /// The audit receipts the nodes gave: check them, and a node's exported log against them.
    #[command(name = "audit-receipts", subcommand)]
    AuditReceipts(ReceiptAction),
    /// Ask the report's regional questions and write one self-contained HTML report with charts.
    #[command(after_help = Status::help(STATUSES))]
    Report {
        /// Registry file (TOML).
        #[arg(long)]
        registry: PathBuf,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
        /// Start of the period range: YYYY, YYYY-Qn or YYYY-MM (default: all data held).
        #[arg(long)]
        from: Option<String>,
        /// End of the period range: YYYY, YYYY-Qn or YYYY-MM.
        #[arg(long)]
        to: Option<String>,
        /// zCDP ρ each question spends on every quarter it touches (default: each node's default).
        #[arg(long)]
        rho: Option<f64>,
        /// Also answer the methods, migrant, smuggler and death questions in regional mode
        /// (secure aggregation with the registry's `[regional]` helper).
        #[arg(long)]
        regional: bool,
    },
}

/// `vrs-coordinator audit-receipts …`
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum ReceiptAction {
    /// Check every kept receipt (signature under the node's audit key, no fork, no rollback) and,
    /// for each `--log COUNTRY=FILE`, that the node's export (`vrs-node audit export`) still
    /// holds every entry a receipt commits to. Exit status 1 when anything does not hold.
    Verify {
        /// Registry file (TOML); the book is its `receipts` file.
        #[arg(long)]
        registry: PathBuf,
        /// A node's exported audit log, as COUNTRY=FILE (repeatable).
        #[arg(long = "log", value_name = "COUNTRY=FILE")]
        logs: Vec<String>,
        /// Ask every node for its signed head now (Describe) before checking.
        #[arg(long)]
        live: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// Why a command failed. Each message is for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The registry cannot be used.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The flags do not make a valid query.
    #[error("invalid query")]
    Query(#[from] QueryError),
    /// The coordinator could not set up its connections or sign.
    #[error(transparent)]
    Fanout(#[from] FanoutError),
    /// The report could not be built.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A file could not be written, or the runtime set up.
    #[error(transparent)]
    Io(#[from] IoError),
    /// JSON output could not be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A ρ on the command line is not usable.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The log settings cannot be used.
    #[error(transparent)]
    Logging(#[from] LoggingError),
    /// The receipt book or an export cannot be read.
    #[error(transparent)]
    Receipts(#[from] ReceiptsError),
    /// A `--log` flag is not COUNTRY=FILE.
    #[error("--log {0}: expected COUNTRY=FILE, e.g. --log IDN=idn-audit.jsonl")]
    LogFlag(String),
    /// `--regional` with a registry that has no `[regional]` section.
    #[error("--regional needs a [regional] section (helper, helper_endpoint) in the registry")]
    NoHelper,
    /// Regional mode produced no result.
    #[error(transparent)]
    Regional(#[from] crate::regional::RegionalError),
}

impl CommandError for CliError {
    fn status(&self) -> Status {
        match self {
            CliError::Query(_)
            | CliError::Budget(_)
            | CliError::LogFlag(_)
            | CliError::NoHelper => Status::Usage,
            CliError::Regional(_) => Status::QueryNoAnswer,
            _ => Status::Failed,
        }
    }
}

/// The exit status of a question asked of the federation: [`Status::Ok`] when every node
/// answered, [`Status::QueryPartial`] when some did, [`Status::QueryNoAnswer`] when none did
/// (refused, unreachable, timed out or held for approval).
pub fn coverage_status(coverage: &merge::Coverage) -> Status {
    if coverage.complete() {
        Status::Ok
    } else if coverage.answered == 0 {
        Status::QueryNoAnswer
    } else {
        Status::QueryPartial
    }
}

/// Runs one subcommand on a multi-threaded runtime of its own.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(IoError::doing("tokio runtime"))?;
    runtime.block_on(async {
        match command {
            Command::Query {
                registry,
                query,
                format,
                per_node: _,
                query_id,
                dry_run: true,
                rho,
                ..
            } => dry_run(&registry, &query, format, query_id, rho).await,
            Command::Query {
                registry,
                query,
                format,
                rho,
                regional: true,
                ..
            } => ask_regional(&registry, &query, format, rho).await,
            Command::Query {
                registry,
                query,
                format,
                per_node,
                query_id,
                dry_run: false,
                rho,
                regional: false,
            } => ask(&registry, &query, format, per_node, query_id, rho).await,
            Command::Budget { registry, format } => budgets(&registry, format).await,
            Command::Describe { registry, codes } => describe(&registry, codes.as_ref()).await,
            Command::AuditReceipts(ReceiptAction::Verify {
                registry,
                logs,
                live,
                format,
            }) => verify_receipts(&registry, &logs, live, format).await,
            Command::Report {
                registry,
                out,
                from,
                to,
                rho,
                regional,
            } => {
                write_report(
                    &registry,
                    &out,
                    report::PeriodRange { from, to },
                    rho,
                    regional,
                )
                .await
            }
        }
    })
}

/// `vrs-coordinator query`: one question to every node, merged, printed as `format`; the exit
/// status says whether every node answered ([`coverage_status`]).
pub async fn ask(
    registry: &Path,
    args: &QueryArgs,
    format: Format,
    per_node: bool,
    query_id: Option<String>,
    rho: Option<f64>,
) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let query = parse_query(args, rho)?;
    let fed = Federation::connect(&registry)?;
    // A fresh query is merged as its answers arrive; a collected one after them.
    let (_, _, regional) = match query_id {
        Some(id) => {
            let results = fed.ask_with_id(&query, &id).await;
            let regional = merge::merge(&id, query.unit(), query.group_by(), &results);
            (id, results, regional)
        }
        None => fed.ask_merged(&query).await?,
    };
    match format {
        Format::Table => print!("{}", output::text(&regional, per_node)),
        Format::Csv => print!("{}", output::csv(&regional, per_node)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::json(&regional))?
        ),
    }
    Ok(coverage_status(&regional.coverage).into())
}

/// `vrs-coordinator query --regional`: one regional-mode question (secure aggregation with the
/// registry's helper), printed as `format`; the exit status is partial when some node is not in
/// the totals, and "no answer" when no result could be released.
pub async fn ask_regional(
    registry: &Path,
    args: &QueryArgs,
    format: Format,
    rho: Option<f64>,
) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let query = parse_query(args, rho)?;
    let leader = regional_leader(&registry)?;
    let result = leader.ask(&query).await?;
    match format {
        Format::Table => print!("{}", crate::regional::text(&result)),
        Format::Csv => print!("{}", crate::regional::csv(&result)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crate::regional::json(&result))?
        ),
    }
    Ok(if result.dropped.is_empty() {
        Status::Ok
    } else {
        Status::QueryPartial
    }
    .into())
}

/// The leader of regional mode over `registry`'s nodes and `[regional]` helper.
fn regional_leader(registry: &Registry) -> Result<crate::regional::Leader, CliError> {
    let section = registry.regional.clone().ok_or(CliError::NoHelper)?;
    let fed = Federation::connect(registry)?;
    let params = crate::regional::RegionalParams::new(
        section.helper,
        section.helper_endpoint,
        section.min_nodes,
        section.max_cell,
    );
    Ok(crate::regional::Leader::connect(registry, fed, params)?)
}

/// The query the flags describe, asking `rho` (as ρ) of zCDP nodes when given.
fn parse_query(args: &QueryArgs, rho: Option<f64>) -> Result<Query, CliError> {
    let limits = QueryLimits {
        max_dimensions: 3,
        ..QueryLimits::default()
    };
    let rho_micro = rho.map(budget::rho_micro).transpose()?.unwrap_or(0);
    Ok(Query::parse(&args.to_raw()?, &limits)?.with_rho_micro(rho_micro))
}

/// `vrs-coordinator query --dry-run`: every node's `Plan` (nothing read or spent).
pub async fn dry_run(
    registry: &Path,
    args: &QueryArgs,
    format: Format,
    query_id: Option<String>,
    rho: Option<f64>,
) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let query = parse_query(args, rho)?;
    let fed = Federation::connect(&registry)?;
    let (id, plans) = budget::dry_run(&fed, &query, query_id.as_deref()).await?;
    match format {
        Format::Table => print!("{}", budget::plan_text(&id, &plans)),
        Format::Csv => print!("{}", budget::plan_table(&plans).to_csv()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&budget::plan_json(&id, &plans))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-coordinator budget`: every node's budget per quarter.
pub async fn budgets(registry: &Path, format: Format) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let described = budget::budgets(&Federation::connect(&registry)?).await;
    match format {
        Format::Table => print!("{}", budget::budget_text(&described)),
        Format::Csv => print!("{}", budget::budget_csv(&described)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&budget::budget_json(&described))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-coordinator describe`: one line per node; with `codes`, each node's units, dimensions
/// and values below it (`Some(Some(dimension))`: that dimension's values).
pub async fn describe(
    registry: &Path,
    codes: Option<&Option<String>>,
) -> Result<ExitCode, CliError> {
    let codes = codes.map(Option::as_deref);
    if let Some(Some(d)) = codes {
        d.trim().parse::<Dimension>()?; // a typo is a usage error, before anyone is asked
    }
    let registry = Registry::load(registry)?;
    let fed = Federation::connect(&registry)?;
    for (country, described) in fed.describe().await {
        print!("{}", describe_text(country, &described, codes)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `describe` prints for one node: its line ([`describe_line`]) and, with `codes`, its
/// units, dimensions and values indented below ([`vrs_core::cli::codes_listing`]); the node's
/// text made safe for a terminal.
pub fn describe_text(
    country: Country,
    described: &Result<NodeDescription, NodeOutcome>,
    codes: Option<Option<&str>>,
) -> Result<String, CliError> {
    let mut text = vrs_core::terminal::sanitize(&describe_line(country, described)).into_owned();
    text.push('\n');
    if let (Some(only), Ok(d)) = (codes, described) {
        let units: Vec<&str> = d.units.iter().map(String::as_str).collect();
        let listing = vrs_core::cli::codes_listing(&units, &d.dimensions, only)?;
        for line in listing.lines() {
            text.push_str("  ");
            text.push_str(&vrs_core::terminal::sanitize(line));
            text.push('\n');
        }
    }
    Ok(text)
}

/// `vrs-coordinator audit-receipts verify`: one line per node (or JSON); exit 1 on any problem.
pub async fn verify_receipts(
    registry: &Path,
    logs: &[String],
    live: bool,
    format: Format,
) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let mut exports = HashMap::new();
    for flag in logs {
        let (country, file) = flag
            .split_once('=')
            .filter(|(c, f)| !c.is_empty() && !f.is_empty())
            .ok_or_else(|| CliError::LogFlag(flag.clone()))?;
        let country = parse_country_flag(country).ok_or_else(|| CliError::LogFlag(flag.clone()))?;
        exports.insert(country, receipts::read_export(Path::new(file))?);
    }
    if live {
        // Describe appends each node's signed head to the book.
        let fed = Federation::connect(&registry)?;
        for (country, described) in fed.describe().await {
            if let Err(e) = described {
                eprintln!(
                    "{}",
                    vrs_core::terminal::sanitize(&format!(
                        "{country}: no live head ({}: {})",
                        e.label(),
                        e.detail()
                    ))
                );
            }
        }
    }
    let path = registry.receipts_path();
    let book = if path.exists() || !exports.is_empty() {
        receipts::read(&path).or_else(|e| match e {
            ReceiptsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            e => Err(e),
        })?
    } else {
        Vec::new()
    };
    let checks = receipts::verify(&book, &registry.pinned_audit_keys(), &exports);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Table | Format::Csv => {
            if checks.is_empty() {
                println!("no receipts kept yet in {}", path.display());
            }
            for c in &checks {
                let export = c
                    .export_entries
                    .map(|n| format!(", export of {n} entries checked"))
                    .unwrap_or_default();
                let status = if c.ok() { "OK" } else { "FAILED" };
                println!(
                    "{}",
                    vrs_core::terminal::sanitize(&format!(
                        "{} {status}: {} receipts up to entry {}{export}",
                        c.country, c.receipts, c.highest_entry
                    ))
                );
                for p in &c.problems {
                    println!("  - {}", vrs_core::terminal::sanitize(p));
                }
            }
        }
    }
    Ok(if checks.iter().all(receipts::NodeCheck::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_country_flag(s: &str) -> Option<String> {
    s.parse::<Country>().ok().map(|c| c.to_string())
}

/// What `describe` prints for one node.
pub fn describe_line(country: Country, described: &Result<NodeDescription, NodeOutcome>) -> String {
    budget::description_line(country, described)
}

/// `vrs-coordinator report`: the HTML report written to `out`, a one-line summary printed; the
/// exit status is the worst of its questions' ([`coverage_status`]).
pub async fn write_report(
    registry: &Path,
    out: &Path,
    range: report::PeriodRange,
    rho: Option<f64>,
    regional: bool,
) -> Result<ExitCode, CliError> {
    let registry = Registry::load(registry)?;
    let rho_micro = rho.map(budget::rho_micro).transpose()?.unwrap_or(0);
    let mut data =
        report::build_with_rho(&registry, &range, rho_micro, Arc::new(SystemClock)).await?;
    if regional {
        let leader = regional_leader(&registry)?;
        data.regional = report::ask_regional(&leader, &range, rho_micro).await?;
    }
    std::fs::write(out, report::render(&data))
        .map_err(IoError::doing(format!("write {}", out.display())))?;
    println!("{}: {}", out.display(), report::summary(&data));
    let spent = budget::spend(data.answers());
    print!("{}", budget::spend_text("the report", &spent));
    let status = Status::worst(
        data.sections
            .iter()
            .map(|s| coverage_status(&s.regional.coverage)),
    );
    Ok(status.into())
}
