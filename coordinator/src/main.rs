//! `vrs-coordinator`: ask the federation, print regional tables, run the demo.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use vrs_coordinator::budget;
use vrs_coordinator::fanout::Federation;
use vrs_coordinator::merge;
use vrs_coordinator::output;
use vrs_coordinator::registry::Registry;
use vrs_coordinator::report;
use vrs_core::cli::QueryArgs;
use vrs_core::query::{Query, QueryLimits};
use vrs_core::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "vrs-coordinator",
    version,
    about = "VRS Federation regional coordinator"
)]
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask every node in the registry one aggregate question and merge the answers.
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
    },
    /// Ask the report's regional questions and write one self-contained HTML report with charts.
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
    },
    /// Start a demo federation on 127.0.0.1 (development certificates, synthetic data), ask the
    /// standard regional questions over mutual TLS, print the tables and stop.
    #[cfg(feature = "demo")]
    Demo {
        /// Keep the demo's files (certificates, stores, registry) in this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also copy the HTML report here (it is always written as report.html in the demo's
        /// directory, which is temporary without --dir).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", vrs_core::cli::error_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    vrs_core::tls::install_crypto_provider();
    let cli = Cli::parse();
    telemetry::init(cli.log_format, "warn");
    match cli.command {
        Command::Query {
            registry,
            query,
            format,
            per_node,
            query_id,
            dry_run,
            rho,
        } => {
            let registry = Registry::load(&registry)?;
            let raw = query.to_raw()?;
            let limits = QueryLimits {
                max_dimensions: 3,
                ..QueryLimits::default()
            };
            let query = Query::parse(&raw, &limits).context("invalid query")?;
            let query = query.with_rho_micro(rho.map(budget::rho_micro).transpose()?.unwrap_or(0));
            let fed = Federation::connect(&registry)?;
            if dry_run {
                let (id, plans) = budget::dry_run(&fed, &query, query_id.as_deref()).await?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&budget::plan_json(&id, &plans))?
                    ),
                    Format::Csv => print!("{}", budget::plan_table(&plans).to_csv()),
                    Format::Table => print!("{}", budget::plan_text(&id, &plans)),
                }
                return Ok(());
            }
            let (id, results) = match query_id {
                Some(id) => {
                    let results = fed.ask_with_id(&query, &id).await;
                    (id, results)
                }
                None => fed.ask(&query).await?,
            };
            let regional = merge::merge(&id, query.unit(), query.group_by(), &results);
            match format {
                Format::Table => print!("{}", output::text(&regional, per_node)),
                Format::Csv => print!("{}", output::csv(&regional, per_node)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&output::json(&regional))?
                ),
            }
        }
        Command::Describe { registry } => {
            let registry = Registry::load(&registry)?;
            let fed = Federation::connect(&registry)?;
            for (country, r) in fed.describe().await {
                println!("{}", budget::description_line(country, &r));
            }
        }
        Command::Budget { registry, format } => {
            let described =
                budget::budgets(&Federation::connect(&Registry::load(&registry)?)?).await;
            match format {
                Format::Table => print!("{}", budget::budget_text(&described)),
                Format::Csv => print!("{}", budget::budget_csv(&described)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&budget::budget_json(&described))?
                ),
            }
        }
        Command::Report {
            registry,
            out,
            from,
            to,
            rho,
        } => {
            let registry = Registry::load(&registry)?;
            let range = report::PeriodRange { from, to };
            let rho_micro = rho.map(budget::rho_micro).transpose()?.unwrap_or(0);
            let data = report::build_with_rho(&registry, &range, rho_micro).await?;
            std::fs::write(&out, report::render(&data))
                .with_context(|| format!("write {}", out.display()))?;
            println!("{}: {}", out.display(), report::summary(&data));
            print!(
                "{}",
                budget::spend_text(
                    "the report",
                    &budget::spend(data.sections.iter().map(|s| &s.regional))
                )
            );
        }
        #[cfg(feature = "demo")]
        Command::Demo { dir, report } => {
            let (_temp, dir) = match dir {
                Some(d) => {
                    let occupied =
                        std::fs::read_dir(&d).is_ok_and(|mut entries| entries.next().is_some());
                    if occupied {
                        bail!(
                            "{} is not empty: the demo needs an empty or new directory",
                            d.display()
                        );
                    }
                    std::fs::create_dir_all(&d)
                        .with_context(|| format!("create {}", d.display()))?;
                    (None, d)
                }
                None => {
                    let t = tempfile::tempdir().context("temporary directory")?;
                    let p = t.path().to_path_buf();
                    (Some(t), p)
                }
            };
            let mut stdout = std::io::stdout();
            vrs_coordinator::demo::run_demo(&dir, &mut stdout).await?;
            if let Some(path) = report {
                std::fs::copy(dir.join("report.html"), &path)
                    .with_context(|| format!("copy the report to {}", path.display()))?;
                println!("Report copied to {}", path.display());
            }
        }
    }
    Ok(())
}
