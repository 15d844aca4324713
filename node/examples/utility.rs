//! What disclosure control costs on real data: the IOM Missing Migrants incidents partitioned by
//! country of incident (one node per country, as a federation of ~150 nodes would hold them),
//! the default policy, and a set of standard questions. For every node and question it compares
//! the exact table with the released one and prints:
//!
//! - the share of cells suppressed (and why), and the share of the total they hold;
//! - the mean absolute and relative perturbation of released cells;
//! - at the regional level, the share of regional cells that are partial or suppressed.
//!
//! `cargo run --release -p vrs-node --example utility [-- CSV]` (default CSV:
//! `../shared/data/missing-migrants-incidents.csv` beside the repository).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vrs_core::answer::{CellValue, SuppressionReason};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::disclosure::{self, PerturbationSecret, Policy, PolicyConfig};
use vrs_node::fx::FxRates;
use vrs_node::import::mapping::Mapping;
use vrs_node::import::{ImportOptions, import_file};
use vrs_node::query::aggregate;
use vrs_node::store::Store;

const QUESTIONS: &[(&str, &str, &str)] = &[
    ("incidents by year", "incidents", "year"),
    ("deaths by year", "deaths", "year"),
    ("incidents by quarter", "incidents", "quarter"),
    ("deaths by quarter", "deaths", "quarter"),
    ("migrants by citizenship", "migrants", "citizenship"),
    ("incidents by year × mode", "incidents", "year,mode"),
];

#[derive(Default)]
struct Tally {
    cells: u64,
    suppressed: BTreeMap<SuppressionReason, u64>,
    exact_total: i64,
    suppressed_total: i64,
    released: u64,
    abs_noise: u64,
    rel_noise: f64,
}

fn split_by_country(csv_path: &Path, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut reader =
        csv::Reader::from_path(csv_path).with_context(|| format!("read {}", csv_path.display()))?;
    let headers = reader.headers()?.clone();
    let geo = headers
        .iter()
        .position(|h| h == "geo")
        .context("no geo column")?;
    let mut writers: HashMap<String, csv::Writer<std::fs::File>> = HashMap::new();
    let mut files = Vec::new();
    for row in reader.records() {
        let row = row?;
        let country = row.get(geo).unwrap_or("UNK").to_string();
        if !writers.contains_key(&country) {
            let path = out.join(format!("{country}.csv"));
            let mut w = csv::Writer::from_path(&path)?;
            w.write_record(&headers)?;
            writers.insert(country.clone(), w);
            files.push((country.clone(), path));
        }
        if let Some(w) = writers.get_mut(&country) {
            w.write_record(&row)?;
        }
    }
    for w in writers.values_mut() {
        w.flush()?;
    }
    files.sort();
    Ok(files)
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let csv_path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("shared/data/missing-migrants-incidents.csv"));
    let mapping = Mapping::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/samples/mappings/missing-migrants.toml"),
    )?;
    let work = tempfile::tempdir()?;
    let files = split_by_country(&csv_path, work.path())?;
    let policy = Policy::new(PolicyConfig::default())?;
    let fx = FxRates::sample();
    let opts = ImportOptions {
        mapping: Some(mapping),
        ..ImportOptions::default()
    };
    let mut stores = Vec::new();
    for (country, file) in &files {
        let Ok(code) = country.parse() else {
            eprintln!("skipping {country}: not a country code");
            continue;
        };
        let dir = work.path().join(format!("node-{country}"));
        let mut store = Store::create(&dir, code)?;
        import_file(&mut store, file, &fx, &opts)?;
        stores.push((country.clone(), store));
    }
    println!(
        "Missing Migrants incidents, {} nodes (one per country of incident), default policy: {:?}\n",
        stores.len(),
        policy.public()
    );
    println!(
        "{:<26} {:>7} {:>10} {:>10} {:>13} {:>9} {:>9} {:>11} {:>11}",
        "question",
        "cells",
        "suppr. %",
        "of total %",
        "thr/contr/dom",
        "mean |Δ|",
        "mean Δ/v",
        "regional",
        "partial %"
    );
    for (title, unit, by) in QUESTIONS {
        let raw = RawQuery {
            unit: (*unit).into(),
            group_by: by.split(',').map(str::to_string).collect(),
            ..RawQuery::default()
        };
        let query = Query::parse(&raw, &QueryLimits::default())?;
        let mut t = Tally::default();
        let mut regional: BTreeMap<Vec<String>, (bool, bool)> = BTreeMap::new();
        for (_, store) in &stores {
            let exact = aggregate(store, &query)?;
            let secret = PerturbationSecret::from_bytes(store.perturbation_secret()?);
            let released = disclosure::release(&exact, &policy, &secret).answer;
            let exact_by_key: HashMap<&Vec<String>, i64> =
                exact.cells.iter().map(|c| (&c.key, c.value)).collect();
            for c in &released.cells {
                let truth = exact_by_key.get(&c.key).copied().unwrap_or(0);
                t.cells += 1;
                t.exact_total += truth;
                let entry = regional.entry(c.key.clone()).or_default();
                match c.value {
                    CellValue::Released(_) | CellValue::Noisy(_) => {
                        let v = c.value.value().unwrap_or(0);
                        t.released += 1;
                        let d = (v - truth).unsigned_abs();
                        t.abs_noise += d;
                        if truth > 0 {
                            t.rel_noise += d as f64 / truth as f64;
                        }
                        entry.0 = true;
                    }
                    CellValue::Suppressed(r) => {
                        *t.suppressed.entry(r).or_default() += 1;
                        t.suppressed_total += truth;
                        entry.1 = true;
                    }
                }
            }
        }
        let suppressed: u64 = t.suppressed.values().sum();
        let reasons = format!(
            "{}/{}/{}",
            t.suppressed
                .get(&SuppressionReason::BelowThreshold)
                .unwrap_or(&0),
            t.suppressed
                .get(&SuppressionReason::TooFewContributors)
                .unwrap_or(&0),
            t.suppressed
                .get(&SuppressionReason::Dominance)
                .unwrap_or(&0)
        );
        let partial = regional.values().filter(|(_, s)| *s).count();
        println!(
            "{:<26} {:>7} {:>10.1} {:>10.1} {:>13} {:>9.2} {:>9.3} {:>11} {:>11.1}",
            title,
            t.cells,
            100.0 * suppressed as f64 / t.cells.max(1) as f64,
            100.0 * t.suppressed_total as f64 / t.exact_total.max(1) as f64,
            reasons,
            t.abs_noise as f64 / t.released.max(1) as f64,
            t.rel_noise / t.released.max(1) as f64,
            regional.len(),
            100.0 * partial as f64 / regional.len().max(1) as f64,
        );
    }
    println!("\nsuppr. %: node cells withheld; of total %: share of the exact total they hold;");
    println!("thr/contr/dom: suppressed below threshold / too few contributors / dominance;");
    println!(
        "mean |Δ|, mean Δ/v: perturbation of released cells (absolute, relative to the true value);"
    );
    println!(
        "regional, partial %: regional cells, and the share a node suppressed (a lower bound)."
    );
    Ok(())
}
