//! The data sets: synthetic node stores (loaded through the store API), the synthetic template
//! CSV for the import figure, and the Missing Migrants file partitioned by country of incident.
//!
//! With `--work DIR` a data set is kept between runs and reused when its marker (what was asked
//! for and the store schema version) matches; otherwise it is rebuilt.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vrs_core::codes::Country;
use vrs_demo::{NodeSpec, load_synthetic};
use vrs_node::fx::FxRates;
use vrs_node::import::{ImportOptions, Mapping, import_file};
use vrs_node::store::{SCHEMA_VERSION, Store};
use vrs_node::synth::{self, SynthConfig};

/// Builds `dir` with `build` unless it already holds a data set made with the same `marker`.
/// Returns whether it was built now.
pub fn cached(dir: &Path, marker: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<bool> {
    let marker = format!("{marker}; schema v{SCHEMA_VERSION}\n");
    let marker_path = dir.join(".bench-done");
    if std::fs::read_to_string(&marker_path).is_ok_and(|m| m == marker) {
        return Ok(false);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    build(dir)?;
    std::fs::write(marker_path, marker)?;
    Ok(true)
}

/// A synthetic node store: `incidents` incidents of `country` from the seeded generator, written
/// with `Store::begin_import` / `ImportTx::insert` in one transaction.
pub fn synthetic_store(dir: &Path, country: Country, incidents: u64, seed: u64) -> Result<()> {
    let spec = NodeSpec::new(country.as_str(), incidents, seed)?;
    load_synthetic(dir, &spec)?;
    Ok(())
}

/// The template CSV of `incidents` synthetic incidents.
pub fn synthetic_csv(path: &Path, country: Country, incidents: u64, seed: u64) -> Result<()> {
    let file = std::fs::File::create(path)?;
    synth::write_csv(&SynthConfig::new(country, incidents, seed), file)?;
    Ok(())
}

/// Splits an RFC 4180 CSV text into records (header first), keeping each record's raw bytes
/// (line breaks inside quoted fields included), and gives the unquoted text of field `field`.
fn records(text: &str, field: usize) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut quoted, mut n, mut field_start) = (0, false, 0, 0);
    let mut value = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                if n == field {
                    value = text[field_start..i].trim_matches('"').to_string();
                }
                n += 1;
                field_start = i + 1;
            }
            b'\n' if !quoted => {
                if n == field {
                    value = text[field_start..i]
                        .trim_end_matches('\r')
                        .trim_matches('"')
                        .into();
                }
                out.push((&text[start..=i], std::mem::take(&mut value)));
                start = i + 1;
                field_start = i + 1;
                n = 0;
            }
            _ => {}
        }
    }
    if start < bytes.len() {
        out.push((&text[start..], value));
    }
    out
}

/// One Missing Migrants node: its country, directory and number of rows in its partition.
#[derive(Debug, Clone)]
pub struct MmNode {
    /// Country of incident (`geo`).
    pub country: Country,
    /// Node directory (store; node.toml is written later).
    pub dir: PathBuf,
    /// Rows of the source file in its partition.
    pub rows: usize,
}

/// Partitions the Missing Migrants file by `geo` into `<dir>/csv/<ISO>.csv` and imports each
/// partition into its own store `<dir>/nodes/<iso>` with the shipped mapping. Values of `geo`
/// that are not valid country codes are left out (listed in `<dir>/left-out.txt`). `limit` keeps
/// only the largest partitions (for the smoke run). The nodes, largest first, are listed in
/// `<dir>/nodes.txt` for [`mm_nodes`].
pub fn missing_migrants(
    source: &Path,
    mapping: &Path,
    dir: &Path,
    limit: Option<usize>,
) -> Result<()> {
    let text =
        std::fs::read_to_string(source).with_context(|| format!("read {}", source.display()))?;
    let mut recs = records(&text, 4).into_iter();
    let (header, _) = recs.next().context("empty Missing Migrants file")?;
    let mut parts: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (raw, geo) in recs {
        parts.entry(geo).or_default().push(raw);
    }
    let mut invalid = Vec::new();
    let mut nodes: Vec<(Country, Vec<&str>)> = Vec::new();
    for (geo, rows) in parts {
        match geo.parse::<Country>() {
            Ok(c) => nodes.push((c, rows)),
            Err(_) => invalid.push(format!("{geo:?} ({} rows)", rows.len())),
        }
    }
    nodes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    if let Some(n) = limit {
        nodes.truncate(n);
    }
    let mapping = Mapping::load(mapping)?;
    let opts = ImportOptions {
        mapping: Some(mapping),
        ..ImportOptions::default()
    };
    let fx = FxRates::sample();
    std::fs::create_dir_all(dir.join("csv"))?;
    let mut list = String::new();
    for (country, rows) in nodes {
        let csv_path = dir.join("csv").join(format!("{country}.csv"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        f.write_all(header.as_bytes())?;
        for r in &rows {
            f.write_all(r.as_bytes())?;
        }
        f.into_inner()?.sync_all()?;
        let node_dir = dir
            .join("nodes")
            .join(country.as_str().to_ascii_lowercase());
        let mut store = Store::create(&node_dir, country)?;
        import_file(&mut store, &csv_path, &fx, &opts)
            .with_context(|| format!("import {}", csv_path.display()))?;
        list.push_str(&format!("{country} {}\n", rows.len()));
    }
    std::fs::write(dir.join("nodes.txt"), list)?;
    std::fs::write(dir.join("left-out.txt"), invalid.join("\n"))?;
    Ok(())
}

/// The nodes [`missing_migrants`] made in `dir`, largest first, and the `geo` values left out.
pub fn mm_nodes(dir: &Path) -> Result<(Vec<MmNode>, Vec<String>)> {
    let mut nodes = Vec::new();
    for line in std::fs::read_to_string(dir.join("nodes.txt"))?.lines() {
        let (c, rows) = line.split_once(' ').context("nodes.txt")?;
        let country: Country = c.parse()?;
        nodes.push(MmNode {
            country,
            dir: dir
                .join("nodes")
                .join(country.as_str().to_ascii_lowercase()),
            rows: rows.parse()?,
        });
    }
    let left_out = std::fs::read_to_string(dir.join("left-out.txt"))?
        .lines()
        .map(str::to_string)
        .collect();
    Ok((nodes, left_out))
}
