//! The `vrs-node` commands, one function per subcommand; `main.rs` only parses flags, sets up
//! logging and calls [`run`].
//!
//! Every command prints for an operator (tables, summaries, the `listening on` line scripts read)
//! and returns an exit status; what goes wrong is a [`CliError`], printed as one line by
//! [`vrs_core::cli::main`]. Nothing here decides what a node releases: `query` runs the same
//! planning and disclosure code as the service, locally.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use vrs_core::cli::{CommandError, IoError, QueryArgs, Status};
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::codes::{CodeError, Country};
use vrs_core::query::{Query, QueryError};
use vrs_core::table::Table;
use vrs_core::telemetry::LoggingError;

use crate::audit::{AuditError, AuditLog};
use crate::config::{CONFIG_FILE, ConfigError, NodeConfig, initial_config};
use crate::disclosure::{self, PerturbationSecret};
use crate::import::mapping::{Mapping, MappingError};
use crate::import::template::CsvWriter;
use crate::import::{ImportError, ImportOptions, import_files};
use crate::query::PlanError;
use crate::server::ServeError;
use crate::store::{Store, StoreError};
use crate::synth::{self, SynthConfig};
use crate::{check, query, render, server, service};

/// Why a command failed. Each message is for the operator at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A `--country` that is not a country code.
    #[error("--country {given}")]
    Country {
        /// As given.
        given: String,
        /// Why it is not a code.
        #[source]
        source: CodeError,
    },
    /// The directory is already a node.
    #[error("{0} already exists: this directory is already a node")]
    AlreadyANode(String),
    /// A file or terminal could not be written, or a socket or runtime set up.
    #[error(transparent)]
    Io(#[from] IoError),
    /// node.toml cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log settings cannot be used.
    #[error(transparent)]
    Logging(#[from] LoggingError),
    /// The store cannot be opened or used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mapping file cannot be used.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A file cannot be imported.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The question is not a valid query.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The node does not publish what the question asks for.
    #[error("{0}")]
    NotPublished(String),
    /// The question cannot be planned or run over the store.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The audit log cannot be read or written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A zCDP preview cannot be planned or computed.
    #[error(transparent)]
    Release(#[from] crate::release::ReleaseError),
    /// The server could not start or stopped with an error.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The console or an account command failed.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// JSON output could not be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A backup could not be made or restored.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

impl CommandError for CliError {
    fn status(&self) -> Status {
        match self {
            CliError::Country { .. } | CliError::Query(_) | CliError::NotPublished(_) => {
                Status::Usage
            }
            _ => Status::Failed,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(source: std::io::Error) -> CliError {
        IoError::doing("write to the terminal")(source).into()
    }
}

/// Output format of `query`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// An aligned table.
    Table,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// Output format of the import summary.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SummaryFormat {
    /// Readable lines.
    Text,
    /// One JSON document.
    Json,
}

/// Output format of `synth`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SynthFormat {
    /// The template's CSV.
    Csv,
    /// JSON Lines.
    Jsonl,
}

/// The exit statuses `vrs-node` returns, listed in its `--help` and in that of `import`.
pub const STATUSES: &[Status] = &[
    Status::Ok,
    Status::Failed,
    Status::Usage,
    Status::ImportRejectedRows,
    Status::ImportNothing,
];

/// The subcommands of `vrs-node`.
#[derive(Debug, Subcommand)]
// Each field's doc is its flag's help text; the flattened question and nested subcommands are
// documented where they are defined.
#[allow(missing_docs)]
pub enum Command {
    /// Create a node directory: the store and a documented node.toml.
    Init {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// ISO 3166-1 alpha-3 code of the node's country.
        #[arg(long)]
        country: String,
    },
    /// Import records (template CSV / JSON Lines / XLSX / ODS, or any layout through a mapping
    /// file).
    #[command(after_help = Status::help(STATUSES))]
    Import {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Mapping file (TOML) for a layout other than the template.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Format of the input files: csv, jsonl (ndjson), xlsx or ods. Default: from each
        /// file's extension (a mapping reads a file of another name as CSV).
        #[arg(long, value_name = "FORMAT")]
        input_format: Option<crate::import::Format>,
        /// Spreadsheets: the sheet to read (default: the mapping's `sheet`, else the first).
        #[arg(long, value_name = "NAME")]
        sheet: Option<String>,
        /// Import nothing from a file if any of its rows is rejected (exit status 4).
        #[arg(long)]
        strict: bool,
        /// Exit 0, not 3, when some rows were rejected and the rest imported.
        #[arg(long, conflicts_with = "strict")]
        allow_rejected: bool,
        /// Format of the summary printed (not of the input: see --input-format).
        #[arg(long, value_enum, default_value = "text")]
        format: SummaryFormat,
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write realistic synthetic records in the template format.
    Synth {
        /// Reporting country.
        #[arg(long)]
        country: String,
        /// Number of incidents.
        #[arg(long)]
        incidents: u64,
        /// Seed: the same seed gives the same records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: SynthFormat,
    },
    /// List every unit, dimension and value a query may use (`codes DIMENSION`: that
    /// dimension's values, one per line).
    Codes {
        /// A dimension, e.g. route or fee_band.
        dimension: Option<String>,
    },
    /// Show exactly what the node would release for a query.
    Query {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        query: QueryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Explain locally why each cell was suppressed (never sent to anyone).
        #[arg(long)]
        explain: bool,
    },
    /// Read and check the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Queries held for the operator (when `[approval] mode = "manual"`).
    Approvals {
        #[command(subcommand)]
        action: ApprovalAction,
    },
    /// Bring the store's schema up to this version (`serve` and `query` do it too).
    Migrate {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Back the node up into a new directory, consistently while it serves.
    ///
    /// The store and the audit log are copied with SQLite's online backup API; the audit key
    /// and node.toml are copied beside them, and manifest.json lists every file's SHA-256 with
    /// the store's counts and the audit log's head.
    Backup {
        /// Node directory (or its node.toml).
        #[arg(long)]
        dir: PathBuf,
        /// Backup directory to create (or an empty one).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a node directory, after checking it whole.
    ///
    /// Every file must match its SHA-256 in the manifest, the audit chain must verify to the
    /// manifest's head and the store must pass SQLite's integrity check with the manifest's
    /// counts before anything is put in place.
    Restore {
        /// Backup directory (made by `vrs-node backup`).
        #[arg(long)]
        from: PathBuf,
        /// Node directory to restore into (absent or empty, unless --force).
        #[arg(long)]
        dir: PathBuf,
        /// Replace the store, audit log, key and configuration of a node directory that is not
        /// empty. Stop the node first.
        #[arg(long)]
        force: bool,
    },
    /// Privacy-loss budget: spent and left per reference quarter (and per caller).
    Budget {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// One column per caller.
        #[arg(long)]
        by_caller: bool,
        /// Every quarter of the coverage, not only those with a charge.
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Check configuration, certificates and store; say what is wrong.
    Check {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve the node to its allowed coordinators over mutual TLS.
    Serve {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve the web console for the node's staff (default http://127.0.0.1:7480).
    Console {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead of `[console] listen` (port 0: any free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Console accounts: add, list, disable, enable, passwd, unlock.
    User {
        #[command(subcommand)]
        action: crate::console::cli::UserAction,
    },
}

/// `vrs-node audit …`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Show entries (newest last).
    Show {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Show at most this many of the newest entries.
        #[arg(long, default_value_t = 50)]
        last: i64,
    },
    /// Recompute the hash chain; name the first entry where it breaks.
    Verify {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Export every entry as JSON Lines (with envelopes and signatures, for an auditor).
    Export {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `vrs-node approvals …`
#[derive(Debug, Subcommand)]
pub enum ApprovalAction {
    /// List queries waiting for a decision (`--all`: every held query).
    List {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Include decided queries.
        #[arg(long)]
        all: bool,
    },
    /// Approve a held query: the coordinator's next ask with the same id is answered.
    Approve {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// The query id.
        query_id: String,
    },
    /// Deny a held query.
    Deny {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// The query id.
        query_id: String,
    },
}

/// The `[log]` section (`format`, `level`) of the node.toml a command works on, if it reads
/// one: the command logs as its configuration says, unless `--log-format` overrides the format.
/// `check` is left out: it reports a configuration it cannot load instead of stopping on it.
pub fn log_config(command: &Command) -> Result<Option<(String, String)>, CliError> {
    let path = match command {
        Command::Serve { config } | Command::Budget { config, .. } => config,
        Command::Import { dir, .. } | Command::Query { dir, .. } | Command::Migrate { dir } => dir,
        Command::Audit {
            action:
                AuditAction::Show { dir, .. }
                | AuditAction::Verify { dir }
                | AuditAction::Export { dir },
        }
        | Command::Approvals {
            action:
                ApprovalAction::List { dir, .. }
                | ApprovalAction::Approve { dir, .. }
                | ApprovalAction::Deny { dir, .. },
        } => dir,
        _ => return Ok(None),
    };
    let log = NodeConfig::load(path)?.file.log;
    Ok(Some((log.format, log.level)))
}

/// Runs one subcommand.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Init { dir, country } => init(&dir, &country),
        Command::Import {
            dir,
            mapping,
            input_format,
            sheet,
            strict,
            allow_rejected,
            format,
            files,
        } => import(
            &dir,
            &ImportFlags {
                mapping: mapping.as_deref(),
                input_format,
                sheet,
                strict,
                allow_rejected,
            },
            format,
            &files,
        ),
        Command::Synth {
            country,
            incidents,
            seed,
            out,
            format,
        } => synthesize(&country, incidents, seed, out.as_deref(), format),
        Command::Codes { dimension } => codes(dimension.as_deref()),
        Command::Query {
            dir,
            query,
            format,
            explain,
        } => local_query(&dir, &query, format, explain),
        Command::Audit { action } => audit(action),
        Command::Approvals { action } => approvals(action, &SystemClock),
        Command::Migrate { dir } => migrate(&dir),
        Command::Backup { dir, to } => Ok(crate::backup::run_backup(&dir, &to, &SystemClock)?),
        Command::Restore { from, dir, force } => {
            Ok(crate::backup::run_restore(&from, &dir, force)?)
        }
        Command::Check { config } => check(&config),
        Command::Budget {
            config,
            by_caller,
            all,
            format,
        } => budget(&config, by_caller, all, format, &SystemClock),
        Command::Serve { config } => serve(&config),
        Command::Console { config, listen } => Ok(crate::console::cli::console(&config, listen)?),
        Command::User { action } => Ok(crate::console::cli::user(action)?),
    }
}

fn parse_country(s: &str) -> Result<Country, CliError> {
    s.parse::<Country>().map_err(|source| CliError::Country {
        given: s.to_string(),
        source,
    })
}

/// `vrs-node init`: the store and a documented node.toml.
pub fn init(dir: &Path, country: &str) -> Result<ExitCode, CliError> {
    let country = parse_country(country)?;
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(CliError::AlreadyANode(config_path.display().to_string()));
    }
    let store = Store::create(dir, country)?;
    // The audit log and the key that signs its head exist from the start, so a log that is
    // missing later was removed (`check` says so) and receipts carry one key for the node's life.
    drop(AuditLog::open(dir)?);
    let (key, _) = crate::audit::audit_key(dir)?;
    std::fs::write(&config_path, initial_config(country))
        .map_err(IoError::doing(format!("write {}", config_path.display())))?;
    println!(
        "Created node {country} in {}:\n  {}  (store, schema v{})\n  {}  (audit log)\n  {}  (audit key {})\n  {}  (configuration: policy, TLS, callers — edit it)",
        dir.display(),
        store.path().display(),
        store.schema_version()?,
        dir.join(crate::audit::AUDIT_FILE).display(),
        dir.join(crate::audit::AUDIT_KEY_FILE).display(),
        key.public_key().to_hex(),
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// How `vrs-node import` reads its files.
#[derive(Debug, Clone, Default)]
pub struct ImportFlags<'a> {
    /// `--mapping`.
    pub mapping: Option<&'a Path>,
    /// `--input-format`.
    pub input_format: Option<crate::import::Format>,
    /// `--sheet`.
    pub sheet: Option<String>,
    /// `--strict`.
    pub strict: bool,
    /// `--allow-rejected`.
    pub allow_rejected: bool,
}

/// `vrs-node import`: files into the store, one transaction per file; a summary. Exit status 3
/// when some rows were rejected (0 with `allow_rejected`), 4 when a file's rows were all
/// rejected or `strict` rolled a file back ([`crate::import::ImportOutcome::status`]).
pub fn import(
    dir: &Path,
    flags: &ImportFlags<'_>,
    format: SummaryFormat,
    files: &[PathBuf],
) -> Result<ExitCode, CliError> {
    let config = NodeConfig::load(dir)?;
    let mut store = Store::open(&config.data_dir())?;
    let mapping = match flags.mapping {
        Some(p) => Some(Mapping::load(p)?),
        None => None,
    };
    let opts = ImportOptions {
        strict: flags.strict,
        mapping,
        format: flags.input_format,
        sheet: flags.sheet.clone(),
        progress: std::io::stderr().is_terminal(),
    };
    let report = import_files(&mut store, files, &config.file.fx, &opts)?;
    match format {
        SummaryFormat::Json => println!("{}", serde_json::to_string(&report)?),
        SummaryFormat::Text => print!("{}", import_summary(&report)),
    }
    Ok(report.outcome().status(flags.allow_rejected).into())
}

/// `vrs-node synth`: seeded synthetic records in the template format.
pub fn synthesize(
    country: &str,
    incidents: u64,
    seed: u64,
    out: Option<&Path>,
    format: SynthFormat,
) -> Result<ExitCode, CliError> {
    let cfg = SynthConfig::new(parse_country(country)?, incidents, seed);
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(IoError::doing(format!("create {}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let w = std::io::BufWriter::with_capacity(1 << 16, sink);
    let n = match format {
        SynthFormat::Csv => {
            let mut writer = CsvWriter::new(w)?;
            let mut n = 0u64;
            for r in synth::generate(&cfg) {
                writer.write(&r)?;
                n += 1;
            }
            writer.finish()?.flush()?;
            n
        }
        SynthFormat::Jsonl => synth::write_jsonl(&cfg, w)?,
    };
    if let Some(p) = out {
        eprintln!("wrote {n} synthetic incidents to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node codes [DIMENSION]`: the vocabulary of queries (and of the template's columns).
pub fn codes(dimension: Option<&str>) -> Result<ExitCode, CliError> {
    let units: Vec<&str> = vrs_core::query::Unit::ALL
        .iter()
        .map(|u| u.code())
        .collect();
    let listing = vrs_core::cli::codes_listing(&units, &vrs_core::cli::known_codes(), dimension)?;
    print!("{listing}");
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node query`: exactly what the node would release for a question, optionally with the
/// local explanation of each suppression.
pub fn local_query(
    dir: &Path,
    args: &QueryArgs,
    format: Format,
    explain: bool,
) -> Result<ExitCode, CliError> {
    let config = NodeConfig::load(dir)?;
    drop(Store::open(&config.data_dir())?); // applies pending migrations
    let store = Store::open_read_only(&config.data_dir())?;
    let q = Query::parse(&args.to_raw()?, &config.policy.query_limits())?;
    service::check_published(&config.policy, &q)
        .map_err(|e| CliError::NotPublished(e.to_string()))?;
    if config.privacy.is_zcdp() {
        let audit = AuditLog::open_existing(&config.data_dir()).ok();
        let today =
            crate::universe::current_month(SystemClock.now_ms(), config.privacy.coverage_from());
        let preview =
            crate::release::preview(&store, &config.privacy, q.clone(), today, audit.as_ref())?;
        match format {
            Format::Table => print!("{}", render::preview_text(q.unit(), &preview, explain)),
            Format::Csv => print!("{}", render::csv(&preview.answer)),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&render::json(
                    store.country(),
                    q.unit(),
                    &preview.answer
                ))?
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table = query::aggregate(&store, &q)?;
    let secret = PerturbationSecret::from_bytes(store.perturbation_secret()?);
    let released = disclosure::release(&table, &config.policy, &secret);
    match format {
        Format::Table => print!("{}", render::table(q.unit(), &released.answer).to_aligned()),
        Format::Csv => print!("{}", render::csv(&released.answer)),
        Format::Json => {
            let mut doc = render::json(store.country(), q.unit(), &released.answer);
            if explain {
                doc["explanations"] = released
                    .explanations
                    .iter()
                    .map(|e| serde_json::Value::String(e.to_string()))
                    .collect();
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(ExitCode::SUCCESS);
        }
    }
    if explain {
        // Tables get the explanations below them; CSV keeps stdout machine-readable.
        let mut out: Box<dyn Write> = match format {
            Format::Csv => Box::new(std::io::stderr()),
            _ => Box::new(std::io::stdout()),
        };
        writeln!(out)?;
        for e in &released.explanations {
            writeln!(out, "{e}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node budget`: spent and left per reference quarter, from the ledger.
pub fn budget(
    config_path: &Path,
    by_caller: bool,
    all: bool,
    format: Format,
    clock: &dyn Clock,
) -> Result<ExitCode, CliError> {
    let config = NodeConfig::load(config_path)?;
    let audit = AuditLog::open_existing(&config.data_dir()).ok();
    let today = crate::universe::current_month(clock.now_ms(), config.privacy.coverage_from());
    let lines = crate::budget::lines(&config, audit.as_ref(), today)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&lines)?),
        Format::Csv => print!("{}", crate::budget::table(&lines, true, all).to_csv()),
        Format::Table => {
            if !config.privacy.is_zcdp() {
                println!(
                    "rules_v1 mode: no privacy-loss budget (not protected against many queries)"
                );
            }
            print!(
                "{}",
                crate::budget::table(&lines, by_caller, all).to_aligned()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The import summary for a terminal: the first rejected rows, then one line per file and the
/// totals.
fn import_summary(report: &crate::import::ImportReport) -> String {
    use std::fmt::Write as _;
    const SHOWN: usize = 20;
    let mut out = String::new();
    for r in report.rejections.iter().take(SHOWN) {
        let _ = writeln!(out, "{}:{}: {}", r.file, r.line, r.reason);
    }
    let more = report
        .rejected
        .saturating_sub(SHOWN.min(report.rejections.len()) as u64);
    if more > 0 {
        let _ = writeln!(
            out,
            "… and {more} more rejected rows (--format json lists them)"
        );
    }
    for f in &report.files {
        let sheet = f
            .sheet
            .as_ref()
            .map(|s| format!(" (sheet {s:?})"))
            .unwrap_or_default();
        let skipped = if f.skipped > 0 {
            format!(", {} skipped", f.skipped)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}{sheet}: {} imported, {} rejected, {} duplicates{skipped}{}",
            f.file,
            f.imported,
            f.rejected,
            f.duplicates,
            if f.rolled_back {
                " (strict: nothing imported)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "total: {} imported, {} rejected, {} duplicates",
        report.imported, report.rejected, report.duplicates
    );
    out
}

/// A time in milliseconds since the epoch as an operator reads it (UTC).
fn utc_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `text` cut to at most `max` characters (a caller's long question), marked with `…`.
fn clip_words(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn audit_dir(dir: &Path) -> Result<PathBuf, CliError> {
    Ok(NodeConfig::load(dir)?.data_dir())
}

/// `vrs-node audit show | verify | export`. `verify` exits 1 when the chain is broken.
pub fn audit(action: AuditAction) -> Result<ExitCode, CliError> {
    match action {
        AuditAction::Show { dir, last } => {
            let log = AuditLog::open_existing(&audit_dir(&dir)?)?;
            let (head, _) = log.head()?;
            let mut t = Table::new([
                "seq",
                "time",
                "caller",
                "query id",
                "outcome",
                "answer digest",
                "query",
            ])
            .align_right(0);
            for e in log.entries((head - last + 1).max(1), last)? {
                let question = crate::audit::question_in_words(&e.envelope_hex)
                    .map(|q| clip_words(&vrs_core::terminal::sanitize(&q), 120))
                    .unwrap_or_else(|| "(not a query envelope)".into());
                t.push(vec![
                    e.seq.to_string(),
                    utc_ms(e.at_ms),
                    vrs_core::terminal::sanitize(&e.caller).into_owned(),
                    vrs_core::terminal::sanitize(&e.query_id).into_owned(),
                    e.outcome,
                    e.answer_digest.chars().take(16).collect(),
                    question,
                ]);
            }
            print!("{}", t.to_aligned());
        }
        AuditAction::Verify { dir } => {
            let log = AuditLog::open_existing(&audit_dir(&dir)?)?;
            match log.verify()? {
                Ok(n) => {
                    let (_, head) = log.head()?;
                    println!("audit log intact: {n} entries, head {head}");
                }
                Err(b) => {
                    println!("audit log BROKEN at entry {}: {}", b.seq, b.problem);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        AuditAction::Export { dir } => {
            let log = AuditLog::open_existing(&audit_dir(&dir)?)?;
            let mut out = std::io::stdout().lock();
            let mut from = 1;
            loop {
                let batch = log.entries(from, 1000)?;
                let Some(last) = batch.last() else { break };
                from = last.seq + 1;
                for e in &batch {
                    writeln!(out, "{}", serde_json::to_string(e)?)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node approvals list | approve | deny`; decisions are stamped with `clock`.
pub fn approvals(action: ApprovalAction, clock: &dyn Clock) -> Result<ExitCode, CliError> {
    match action {
        ApprovalAction::List { dir, all } => {
            let log = AuditLog::open(&audit_dir(&dir)?)?;
            let mut t = Table::new(["query id", "received", "caller", "state", "query"]);
            for p in log.pending(all)? {
                t.push(vec![
                    p.query_id,
                    utc_ms(p.received_ms),
                    p.caller,
                    p.state,
                    p.summary,
                ]);
            }
            print!("{}", t.to_aligned());
        }
        ApprovalAction::Approve { dir, query_id } => {
            AuditLog::open(&audit_dir(&dir)?)?.decide(&query_id, "approved", clock.now_ms())?;
            println!(
                "approved {query_id}: the coordinator's next request with this id is answered"
            );
        }
        ApprovalAction::Deny { dir, query_id } => {
            AuditLog::open(&audit_dir(&dir)?)?.decide(&query_id, "denied", clock.now_ms())?;
            println!("denied {query_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node migrate`: the store's schema brought up to this version.
pub fn migrate(dir: &Path) -> Result<ExitCode, CliError> {
    let config = NodeConfig::load(dir)?;
    let was = Store::schema_version_of(&config.data_dir())?;
    let store = Store::open(&config.data_dir())?;
    let now = store.schema_version()?;
    if was == now {
        println!("store schema v{now}: up to date");
    } else {
        println!("store schema v{was} → v{now}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node check`: configuration, certificates, store and audit chain; exit 1 on a failure.
pub fn check(config_path: &Path) -> Result<ExitCode, CliError> {
    let report = check::run(config_path, &SystemClock);
    print!("{}", report.text());
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The serving runtime's worker threads on a machine with `cores` cores: half of them, at
/// least one. Those threads only move TLS records and HTTP/2 frames (about a third of an
/// answer's CPU); the checks, SQLite and the audit flush run on blocking threads beside them,
/// which take the other cores. A worker per core left both workers waking for every lone
/// answer, one to take the request and one to look for work it could steal: on 2 cores one
/// worker spent 0.026 ms less CPU per sequential answer on average over six A/B pairs, with no
/// loss of throughput at 8, 64 or 512 callers (docs/BENCHMARKS.md, issue 15, item 2).
pub fn serving_workers(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// `vrs-node serve`: the node over mutual TLS until Ctrl-C or SIGTERM. Prints `listening on
/// ADDR` (the bound address; scripts and port-0 set-ups read it) once the node has loaded
/// everything it needs and accepts connections ([`server::serve_with_ready`]), so a node that
/// cannot start never says it listens.
pub fn serve(config_path: &Path) -> Result<ExitCode, CliError> {
    let config = NodeConfig::load(config_path)?;
    drop(Store::open(&config.data_dir())?); // applies pending migrations
    // What `server::serve` refuses to start without, checked before the line scripts wait for.
    let tls = config.file.tls.as_ref().ok_or(ServeError::NoTls)?;
    vrs_core::tls::server_config(tls).map_err(ServeError::from)?;
    crate::revocation::RevocationList::for_config(&config).map_err(ServeError::from)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // `TOKIO_WORKER_THREADS`, when set, is tokio's own override and wins.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        runtime.worker_threads(serving_workers(cores));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(IoError::doing("tokio runtime"))?;
    runtime.block_on(async {
        let addr = config.file.server.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(IoError::doing(format!("bind {addr}")))?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(IoError::doing("SIGTERM handler"))?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down");
        };
        // Scripts (and port-0 test set-ups) read the actual address from this line, printed
        // once the node has loaded everything and is about to accept connections.
        let ready = |addr: Option<std::net::SocketAddr>| {
            if let Some(addr) = addr {
                println!("listening on {addr}");
                let _ = std::io::stdout().flush();
            }
        };
        let clock = std::sync::Arc::new(vrs_core::clock::SystemClock);
        server::serve_with_ready(listener, &config, clock, ready, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::serving_workers;

    #[test]
    fn half_the_cores_serve_and_never_none() {
        let got: Vec<usize> = [0, 1, 2, 3, 4, 8, 64].map(serving_workers).to_vec();
        assert_eq!(got, [1, 1, 1, 1, 2, 4, 32]);
    }
}
