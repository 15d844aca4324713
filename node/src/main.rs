//! `vrs-node`: a country's node. Create it, load records, see what it would release, serve it.
//!
//! Flags are parsed here, logging is set up once (the `--log-format` flag, else the `[log]`
//! section of the node.toml `serve` reads), and [`vrs_node::cli`] does the rest.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use vrs_core::cli::{CommonArgs, Status};
use vrs_core::manual::WithManual;
use vrs_node::cli::{self, CliError, Command};

#[derive(Debug, Parser)]
#[command(
    name = "vrs-node",
    version,
    about = "VRS Federation country node",
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
        let config = cli::log_config(&command)?;
        let config = config.as_ref().map(|(f, l)| (f.as_str(), l.as_str()));
        cli.common
            .logging(config, "info")
            .map_err(CliError::from)?
            .install();
        cli::run(command)
    })
}
