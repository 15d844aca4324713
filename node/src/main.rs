//! `vrs-node`: a country's node. Create it, load records, see what it would release, serve it.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use vrs_core::cli::QueryArgs;
use vrs_core::codes::Country;
use vrs_core::query::Query;
use vrs_core::table::Table;
use vrs_core::telemetry::{self, LogFormat};
use vrs_node::audit::AuditLog;
use vrs_node::config::{CONFIG_FILE, NodeConfig, initial_config};
use vrs_node::disclosure::{self, PerturbationSecret};
use vrs_node::import::mapping::Mapping;
use vrs_node::import::template::CsvWriter;
use vrs_node::import::{ImportOptions, import_files};
use vrs_node::store::Store;
use vrs_node::synth::{self, SynthConfig};
use vrs_node::{query, render, server, service};

#[derive(Debug, Parser)]
#[command(name = "vrs-node", version, about = "VRS Federation country node")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SynthFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node directory: the store and a documented node.toml.
    Init {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// ISO 3166-1 alpha-3 code of the node's country.
        #[arg(long)]
        country: String,
    },
    /// Import records (template CSV / JSON Lines, or any layout through a mapping file).
    Import {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Mapping file (TOML) for a layout other than the template.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Import nothing from a file if any of its rows is rejected.
        #[arg(long)]
        strict: bool,
        /// Summary format.
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
}

#[derive(Debug, Subcommand)]
enum AuditAction {
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

#[derive(Debug, Subcommand)]
enum ApprovalAction {
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

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line per cause; no backtrace for an operator's mistake.
            eprintln!("error: {}", vrs_core::cli::error_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    vrs_core::tls::install_crypto_provider();
    let cli = Cli::parse();
    telemetry::init(cli.log_format, "info");
    match cli.command {
        Command::Init { dir, country } => init(dir, &country),
        Command::Import {
            dir,
            mapping,
            strict,
            format,
            files,
        } => import(dir, mapping, strict, format, &files),
        Command::Synth {
            country,
            incidents,
            seed,
            out,
            format,
        } => synthesize(&country, incidents, seed, out, format),
        Command::Query {
            dir,
            query,
            format,
            explain,
        } => local_query(dir, &query, format, explain),
        Command::Audit { action } => audit(action),
        Command::Approvals { action } => approvals(action),
        Command::Migrate { dir } => migrate(&dir),
        Command::Check { config } => check(config),
        Command::Budget {
            config,
            by_caller,
            all,
            format,
        } => budget(&config, by_caller, all, format),
        Command::Serve { config } => serve(config),
    }
}

fn parse_country(s: &str) -> Result<Country> {
    s.parse::<Country>()
        .with_context(|| format!("--country {s}"))
}

fn init(dir: PathBuf, country: &str) -> Result<()> {
    let country = parse_country(country)?;
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} already exists: this directory is already a node",
            config_path.display()
        );
    }
    let store = Store::create(&dir, country)?;
    std::fs::write(&config_path, initial_config(country))
        .with_context(|| format!("write {}", config_path.display()))?;
    println!(
        "Created node {country} in {}:\n  {}  (store, schema v{})\n  {}  (configuration: policy, TLS, callers — edit it)",
        dir.display(),
        store.path().display(),
        store.schema_version()?,
        config_path.display()
    );
    Ok(())
}

fn import(
    dir: PathBuf,
    mapping: Option<PathBuf>,
    strict: bool,
    format: SummaryFormat,
    files: &[PathBuf],
) -> Result<()> {
    let config = NodeConfig::load(&dir)?;
    let mut store = Store::open(&config.data_dir())?;
    let mapping = match mapping {
        Some(p) => Some(Mapping::load(&p)?),
        None => None,
    };
    let opts = ImportOptions {
        strict,
        mapping,
        format: None,
        progress: std::io::stderr().is_terminal(),
    };
    let report = import_files(&mut store, files, &config.file.fx, &opts)?;
    match format {
        SummaryFormat::Json => println!("{}", serde_json::to_string(&report)?),
        SummaryFormat::Text => {
            const SHOWN: usize = 20;
            for r in report.rejections.iter().take(SHOWN) {
                println!("{}:{}: {}", r.file, r.line, r.reason);
            }
            let more = report
                .rejected
                .saturating_sub(SHOWN.min(report.rejections.len()) as u64);
            if more > 0 {
                println!("… and {more} more rejected rows (--format json lists them)");
            }
            for f in &report.files {
                println!(
                    "{}: {} imported, {} rejected, {} duplicates{}",
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
            println!(
                "total: {} imported, {} rejected, {} duplicates",
                report.imported, report.rejected, report.duplicates
            );
        }
    }
    match report.outcome().exit_code() {
        0 => {}
        code => std::process::exit(i32::from(code)),
    }
    Ok(())
}

fn synthesize(
    country: &str,
    incidents: u64,
    seed: u64,
    out: Option<PathBuf>,
    format: SynthFormat,
) -> Result<()> {
    let cfg = SynthConfig::new(parse_country(country)?, incidents, seed);
    let sink: Box<dyn Write> = match &out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?)
        }
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
    Ok(())
}

fn local_query(dir: PathBuf, args: &QueryArgs, format: Format, explain: bool) -> Result<()> {
    let config = NodeConfig::load(&dir)?;
    drop(Store::open(&config.data_dir())?); // applies pending migrations
    let store = Store::open_read_only(&config.data_dir())?;
    let q = Query::parse(&args.to_raw()?, &config.policy.query_limits())?;
    service::check_published(&config.policy, &q).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.privacy.is_zcdp() {
        let audit = AuditLog::open_existing(&config.data_dir()).ok();
        let today = vrs_node::universe::current_month(now_ms(), config.privacy.coverage_from());
        let preview =
            vrs_node::release::preview(&store, &config.privacy, q.clone(), today, audit.as_ref())?;
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
        return Ok(());
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
            return Ok(());
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
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn audit_dir(dir: &std::path::Path) -> Result<PathBuf> {
    Ok(NodeConfig::load(dir)?.data_dir())
}

fn audit(action: AuditAction) -> Result<()> {
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
            ])
            .align_right(0);
            for e in log.entries((head - last + 1).max(1), last)? {
                t.push(vec![
                    e.seq.to_string(),
                    format_ms(e.at_ms),
                    e.caller,
                    e.query_id,
                    e.outcome,
                    e.answer_digest.chars().take(16).collect(),
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
                    std::process::exit(1);
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
    Ok(())
}

fn approvals(action: ApprovalAction) -> Result<()> {
    match action {
        ApprovalAction::List { dir, all } => {
            let log = AuditLog::open(&audit_dir(&dir)?)?;
            let mut t = Table::new(["query id", "received", "caller", "state", "query"]);
            for p in log.pending(all)? {
                t.push(vec![
                    p.query_id,
                    format_ms(p.received_ms),
                    p.caller,
                    p.state,
                    p.summary,
                ]);
            }
            print!("{}", t.to_aligned());
        }
        ApprovalAction::Approve { dir, query_id } => {
            AuditLog::open(&audit_dir(&dir)?)?.decide(&query_id, "approved", now_ms())?;
            println!(
                "approved {query_id}: the coordinator's next request with this id is answered"
            );
        }
        ApprovalAction::Deny { dir, query_id } => {
            AuditLog::open(&audit_dir(&dir)?)?.decide(&query_id, "denied", now_ms())?;
            println!("denied {query_id}");
        }
    }
    Ok(())
}

fn migrate(dir: &Path) -> Result<()> {
    let config = NodeConfig::load(dir)?;
    let was = Store::schema_version_of(&config.data_dir())?;
    let store = Store::open(&config.data_dir())?;
    let now = store.schema_version()?;
    if was == now {
        println!("store schema v{now}: up to date");
    } else {
        println!("store schema v{was} → v{now}");
    }
    Ok(())
}

fn budget(config_path: &Path, by_caller: bool, all: bool, format: Format) -> Result<()> {
    let config = NodeConfig::load(config_path)?;
    let audit = vrs_node::audit::AuditLog::open_existing(&config.data_dir()).ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let today = vrs_node::universe::current_month(now, config.privacy.coverage_from());
    let lines = vrs_node::budget::lines(&config, audit.as_ref(), today)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&lines)?),
        Format::Csv => print!("{}", vrs_node::budget::table(&lines, true, all).to_csv()),
        Format::Table => {
            if !config.privacy.is_zcdp() {
                println!(
                    "rules_v1 mode: no privacy-loss budget (not protected against many queries)"
                );
            }
            print!(
                "{}",
                vrs_node::budget::table(&lines, by_caller, all).to_aligned()
            );
        }
    }
    Ok(())
}

fn check(config_path: PathBuf) -> Result<()> {
    let report = vrs_node::check::run(&config_path);
    print!("{}", report.text());
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}

fn serve(config_path: PathBuf) -> Result<()> {
    let config = NodeConfig::load(&config_path)?;
    let format: LogFormat = config.file.log.format.parse().unwrap_or(LogFormat::Human);
    telemetry::init(format, &config.file.log.level);
    drop(Store::open(&config.data_dir())?); // applies pending migrations
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let addr = config.file.server.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind {addr}"))?;
        // Scripts (and port-0 test set-ups) read the actual address from this line.
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutting down");
        };
        server::serve(listener, &config, shutdown).await?;
        Ok(())
    })
}
