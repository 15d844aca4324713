//! `vrs-coordinator`: ask the federation, print regional tables, write the report.
//!
//! Flags are parsed here, logging is set up once, and [`vrs_coordinator::cli`] does the rest.
//! The demo federation is a separate binary, `vrs-demo` (coordinator/demo), so that this one
//! links no node store.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use vrs_coordinator::cli::{self, CliError, Command};
use vrs_core::cli::{CommonArgs, Status};
use vrs_core::manual::WithManual;

/// A regional query makes and frees hundreds of thousands of small cells, decoded on the
/// runtime's threads and merged and freed on another: mimalloc frees across threads without the
/// locks glibc's allocator takes there (docs/BENCHMARKS.md, issue 15 item 5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "vrs-coordinator",
    version,
    about = "VRS Federation regional coordinator",
    after_help = Status::help(cli::STATUSES)
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: WithManual<Command>,
}

fn main() -> ExitCode {
    vrs_core::cli::main(|| {
        let cli = Cli::parse();
        // `completions` and `man` are answered from this binary's own definition.
        let Some(command) =
            vrs_core::manual::own_or_run(cli.command, Cli::command()).map_err(CliError::from)?
        else {
            return Ok(ExitCode::SUCCESS);
        };
        cli.common
            .logging(None, "warn")
            .map_err(CliError::from)?
            .install();
        cli::run(command)
    })
}
