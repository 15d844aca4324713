//! `vrs-demo`: the one-command tour. Starts several country nodes on 127.0.0.1 (development
//! certificates, synthetic data), asks the standard regional questions over mutual TLS, prints
//! the tables, writes the HTML report and stops.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vrs_core::cli::CommonArgs;
use vrs_demo::DemoError;

#[derive(Debug, Parser)]
#[command(
    name = "vrs-demo",
    version,
    about = "VRS Federation demo: nodes on 127.0.0.1, regional questions over mTLS"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the demo keeps its files (certificates, stores, registry, report.html): new, empty,
    /// or made by an earlier demo (then replaced). Default ./vrs-demo.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also copy the HTML report here (it is always written as report.html in the demo's
    /// directory).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    vrs_core::cli::main(|| {
        let cli = Cli::parse();
        cli.common
            .logging(None, "warn")
            .map_err(|e| DemoError::Setup(e.to_string()))?
            .install();
        vrs_demo::cli(cli.dir.as_deref(), cli.report.as_deref())
    })
}
