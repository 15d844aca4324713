//! `vrs-helper`: the helper aggregator of regional mode (docs/PROTOCOL.md, "Regional secure
//! aggregation"), run by another party than the coordinator. Flags are parsed here, logging is
//! set up once, and [`vrs_coordinator::helper::serve`] does the rest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "vrs-helper",
    version,
    about = "VRS Federation regional-mode helper aggregator"
)]
struct Cli {
    /// The helper's configuration (helper.toml).
    #[arg(long, default_value = "helper.toml")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vrs_core::tls::install_crypto_provider();
    let _ = tracing_subscriber_init();
    let run = || -> Result<(), String> {
        let config =
            vrs_coordinator::helper::HelperConfig::load(&cli.config).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(&config.file.helper.listen)
                .await
                .map_err(|e| format!("bind {}: {e}", config.file.helper.listen))?;
            vrs_coordinator::helper::serve(
                listener,
                &config,
                |addr| {
                    if let Some(a) = addr {
                        println!("vrs-helper listening on {a}");
                    }
                },
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )
            .await
            .map_err(|e| e.to_string())
        })
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrs-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tracing_subscriber_init() -> Result<(), String> {
    vrs_core::telemetry::Logging::resolve(None, None, "info")
        .map(|l| l.install())
        .map_err(|e| e.to_string())
}
