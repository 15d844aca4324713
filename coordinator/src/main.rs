//! `vrs-coordinator`: ask the federation, print regional tables, write the report.
//!
//! Flags are parsed here, logging is set up once, and [`vrs_coordinator::cli`] does the rest.
//! The demo federation is a separate binary, `vrs-demo` (coordinator/demo), so that this one
//! links no node store.

use std::process::ExitCode;

use clap::Parser;
use vrs_coordinator::cli::{self, CliError, Command};
use vrs_core::cli::{CommonArgs, Status};

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
    command: Command,
}

fn main() -> ExitCode {
    vrs_core::cli::main(|| {
        let cli = Cli::parse();
        cli.common
            .logging(None, "warn")
            .map_err(CliError::from)?
            .install();
        cli::run(cli.command)
    })
}
