//! `vrs-coordinator`: ask the federation, print regional tables, write the report.
//!
//! Flags are parsed here, logging is set up once, and [`vrs_coordinator::cli`] does the rest.
//! The demo federation is a separate binary, `vrs-demo` (coordinator/demo), so that this one
//! links no node store.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use vrs_coordinator::cli::{self, CliError, Command};
use vrs_core::cli::{CommonArgs, Status};
use vrs_core::manual::ManualCommand;

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
    command: TopCommand,
}

/// The coordinator's commands, then `completions` and `man` (generated from this definition).
#[derive(Debug, Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Coordinator(Command),
    #[command(flatten)]
    Manual(ManualCommand),
}

fn main() -> ExitCode {
    vrs_core::cli::main(|| {
        let cli = Cli::parse();
        let command = match cli.command {
            TopCommand::Coordinator(command) => command,
            TopCommand::Manual(action) => {
                vrs_core::manual::run(&action, Cli::command()).map_err(CliError::from)?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        cli.common
            .logging(None, "warn")
            .map_err(CliError::from)?
            .install();
        cli::run(command)
    })
}
