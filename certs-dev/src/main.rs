//! `vrs-certs-dev`: writes a development CA, node and coordinator certificates and the
//! coordinator's query-signing key. Development only, never production.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use vrs_certs_dev::{DEFAULT_VALIDITY_DAYS, Overwrite, generate_with};

/// Generate a development PKI for VRS Federation (never for production).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Coordinator name: its identity becomes `coordinator.<NAME>.vrs.test`.
    #[arg(long)]
    coordinator: String,
    /// Node countries, ISO 3166-1 alpha-3, comma-separated (e.g. THA,IDN,MYS).
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Validity of every certificate, in days.
    #[arg(long, default_value_t = DEFAULT_VALIDITY_DAYS)]
    days: u32,
    /// Replace an existing CA in the directory.
    #[arg(long)]
    force: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nodes: Vec<&str> = args.nodes.iter().map(|n| n.trim()).collect();
    let overwrite = if args.force {
        Overwrite::Force
    } else {
        Overwrite::Refuse
    };
    let pki = generate_with(&args.out, &args.coordinator, &nodes, args.days, overwrite)
        .with_context(|| format!("generating a development PKI in {}", args.out.display()))?;

    println!(
        "development PKI (NOT for production) in {}, valid {} days:",
        pki.dir.display(),
        args.days
    );
    for path in &pki.written {
        println!("  {}", path.display());
    }
    println!(
        "nodes: {}; coordinator: {}",
        pki.nodes.join(", "),
        pki.coordinator
    );
    Ok(())
}
