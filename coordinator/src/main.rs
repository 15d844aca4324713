//! `vrs-coordinator`: ask the federation, print regional tables, run the demo.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
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
        } => {
            let registry = Registry::load(&registry)?;
            let raw = query.to_raw()?;
            let limits = QueryLimits {
                max_dimensions: 3,
                ..QueryLimits::default()
            };
            let query = Query::parse(&raw, &limits).context("invalid query")?;
            let fed = Federation::connect(&registry)?;
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
                match r {
                    Ok(d) => {
                        let policy = d.policy.unwrap_or_default();
                        let line = format!(
                            "{country}: schema v{}, data {}..{}, units [{}], {} dimensions, min_count {}, min_contributors {}, perturbation {}",
                            d.schema_version,
                            d.first_period,
                            d.last_period,
                            d.units.join(", "),
                            d.dimensions.len(),
                            policy.min_count,
                            policy.min_contributors,
                            if policy.perturbation { "on" } else { "off" },
                        );
                        println!("{}", vrs_core::terminal::sanitize(&line));
                    }
                    Err(outcome) => {
                        let line = format!("{country}: {} ({})", outcome.label(), outcome.detail());
                        println!("{}", vrs_core::terminal::sanitize(&line));
                    }
                }
            }
        }
        Command::Report {
            registry,
            out,
            from,
            to,
        } => {
            let registry = Registry::load(&registry)?;
            let range = report::PeriodRange { from, to };
            let data = report::build(&registry, &range).await?;
            std::fs::write(&out, report::render(&data))
                .with_context(|| format!("write {}", out.display()))?;
            println!("{}: {}", out.display(), report::summary(&data));
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
