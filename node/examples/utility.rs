//! What disclosure control costs on real data: the IOM Missing Migrants incidents partitioned by
//! country of incident (`geo`: one node per country, as a federation of ~150 nodes would hold
//! them), a set of standard questions, and three ways to release them:
//!
//! - **zCDP, every cell** (the default policy): each node releases every cell of the universe
//!   with discrete Gaussian noise, negatives included; the coordinator sums them;
//! - **zCDP, thresholded at the node** (`threshold_sigmas = 2`): each node withholds cells whose
//!   noisy value is below 2σ, before the merge — which biases regional sums downwards;
//! - **v1 rules** (`mode = "rules_v1"`): threshold, contributors, dominance, complementary
//!   suppression and cell-key noise; NOT protected against many queries;
//! - **regional mode** (secure aggregation, DESIGN §8b): each node's exact bounded vector is
//!   sharded with Prio3SumVec exactly as `vrs-node` does (`vrs_node::regional`), both
//!   aggregators verify and aggregate (`vrs_core::regional`, in this process: no network) and
//!   each adds discrete Gaussian noise of the node's σ; no node withholds anything.
//!
//! For every question and mode it prints the share of regional cells (with a true value > 0)
//! that the regional table shows, the share that are lower bounds (some node withheld its part), the median and mean signed relative error of regional cells
//! whose true value is ≥ 100, the median regional standard error (zCDP), and the share of one
//! quarter's budget the question spends (ρ / rho_per_quarter on each quarter it touches).
//!
//! `cargo run --release -p vrs-node --example utility [-- CSV]` (default CSV:
//! `../shared/data/missing-migrants-incidents.csv` beside the repository).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vrs_core::answer::CellValue;
use vrs_core::period::Month;
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::disclosure::zcdp::rho_of;
use vrs_node::disclosure::{
    self, PerturbationSecret, Policy, PolicyConfig, PrivacyConfig, PrivacyPolicy,
};
use vrs_node::fx::FxRates;
use vrs_node::import::mapping::Mapping;
use vrs_node::import::{ImportOptions, import_file};
use vrs_node::query::aggregate;
use vrs_node::release;
use vrs_node::store::Store;

const QUESTIONS: &[(&str, &str, &str)] = &[
    ("incidents by year", "incidents", "year"),
    ("deaths by year", "deaths", "year"),
    ("incidents by quarter", "incidents", "quarter"),
    ("deaths by quarter", "deaths", "quarter"),
    ("migrants by citizenship", "migrants", "citizenship"),
    ("incidents by year × mode", "incidents", "year,mode"),
    ("deaths by year × mode", "deaths", "year,mode"),
];

/// How the nodes release.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    ZcdpAll,
    ZcdpThresholded,
    RulesV1,
    Regional,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::ZcdpAll => "zCDP, every cell",
            Mode::ZcdpThresholded => "zCDP, 2σ at node",
            Mode::RulesV1 => "v1 rules",
            Mode::Regional => "regional mode",
        }
    }
}

/// One regional cell: exact total, released sum, whether any node released a value, and the
/// variance of the noise in the released sum.
#[derive(Default)]
struct Regional {
    truth: i64,
    value: i64,
    shown: bool,
    variance: f64,
    /// Some node withheld its part (suppressed, or clamped in regional mode): a lower bound.
    withheld: bool,
}

/// Per-cell bound of the regional-mode vectors (no Missing Migrants node reaches it).
const MAX_CELL: u64 = 100_000;

/// A regional-mode cell: key, noisy total, noise variance, whether any node's cell was clamped.
type RegionalCell = (Vec<String>, i64, f64, bool);

/// Regional mode over `stores`: every node's report as `vrs-node` makes it, both aggregators'
/// verification, aggregation and noise as the leader and `vrs-helper` run them. Returns the
/// universe's cells (value, variance, whether any node's cell was clamped) and the ρ charged.
fn regional_mode(
    stores: &[(String, Store)],
    query: &Query,
    privacy: &PrivacyPolicy,
    today: Month,
) -> Result<(Vec<RegionalCell>, u64)> {
    use vrs_core::regional::{HELPER, LEADER, Vdaf, add_noise, random_bytes};
    let qid = "utility-regional-0001";
    let mut reports = Vec::new();
    let mut keys = Vec::new();
    let mut sigma_micro = 0u64;
    let mut rho = 0;
    let mut clamped = Vec::new();
    for (_, store) in stores {
        let plan = release::plan(query.clone(), privacy, today, store.data_version()?)?;
        let vector = vrs_node::regional::exact_vector(store, &plan, privacy, u64::MAX)?;
        if clamped.is_empty() {
            clamped = vec![false; vector.len()];
        }
        for (c, v) in clamped.iter_mut().zip(&vector) {
            *c |= *v > u128::from(MAX_CELL);
        }
        let vector: Vec<u128> = vector
            .into_iter()
            .map(|v| v.min(u128::from(MAX_CELL)))
            .collect();
        reports.push(vrs_node::regional::shard(qid, &vector, MAX_CELL)?);
        sigma_micro = sigma_micro.max(u64::try_from(plan.sigma.scaled_micro())?);
        rho = plan.rho_micro;
        keys = plan.universe.keys;
    }
    let vdaf = Vdaf::new(keys.len(), MAX_CELL)?;
    let key: [u8; 32] = random_bytes()?;
    let (mut leader, mut helper) = (Vec::new(), Vec::new());
    for r in &reports {
        let (ls, lv) = vdaf.verify_start(
            &key,
            qid,
            LEADER,
            &r.nonce,
            &r.public_share,
            &r.leader_share,
        )?;
        let (hs, hv) = vdaf.verify_start(
            &key,
            qid,
            HELPER,
            &r.nonce,
            &r.public_share,
            &r.helper_share,
        )?;
        leader.push(vdaf.verify_finish(qid, ls, &lv, &hv)?);
        helper.push(vdaf.verify_finish(qid, hs, &lv, &hv)?);
    }
    let n = reports.len();
    let mut l = vdaf.aggregate(leader)?;
    let mut h = vdaf.aggregate(helper)?;
    add_noise(&mut l, sigma_micro)?;
    add_noise(&mut h, sigma_micro)?;
    let sums = vdaf.unshard([l, h], n)?;
    let s = sigma_micro as f64 / 1e6;
    Ok((
        keys.into_iter()
            .zip(sums)
            .zip(clamped)
            .map(|((k, v), c)| (k, v as i64, 2.0 * s * s, c))
            .collect(),
        rho,
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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
    // The declared coverage: the months the IOM file covers (public), the same on every node.
    let (first, last) = months_of(&csv_path)?;
    let today: Month = last.parse()?;
    let privacy_of = |threshold_sigmas: f64| {
        PrivacyPolicy::new(&PrivacyConfig {
            coverage_from: first.clone(),
            coverage_to: last.clone(),
            threshold_sigmas,
            ..PrivacyConfig::default()
        })
    };
    let all = privacy_of(0.0)?;
    let thresholded = privacy_of(2.0)?;
    let v1 = Policy::new(PolicyConfig::default())?;
    println!(
        "Missing Migrants incidents {first}..{last}, {} nodes (one per country of incident); default policy\n\
         (zCDP: rho_per_quarter {}, default_rho {} per question; v1: min_count 5, contributors 3, dominance 25 %, noise ±2)\n",
        stores.len(),
        rho_of(all.rho_per_quarter_micro()),
        rho_of(all.default_rho_micro()),
    );
    println!(
        "{:<26} {:<17} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "question",
        "release",
        "regional",
        "shown %",
        "lower b. %",
        "≥100",
        "med |err|",
        "mean err",
        "med s.e.",
        "budget"
    );
    let mut spent: BTreeMap<i64, u64> = BTreeMap::new();
    for (title, unit, by) in QUESTIONS {
        let raw = RawQuery {
            unit: (*unit).into(),
            group_by: by.split(',').map(str::to_string).collect(),
            ..RawQuery::default()
        };
        let query = Query::parse(&raw, &QueryLimits::default())?;
        for mode in [
            Mode::ZcdpAll,
            Mode::ZcdpThresholded,
            Mode::RulesV1,
            Mode::Regional,
        ] {
            let mut regional: BTreeMap<Vec<String>, Regional> = BTreeMap::new();
            let mut charge = 0u64;
            if mode == Mode::Regional {
                let (cells, rho) = regional_mode(&stores, &query, &all, today)?;
                charge = rho;
                for (key, value, variance, clamped) in cells {
                    let r = regional.entry(key).or_default();
                    r.value = value;
                    r.shown = true;
                    r.variance = variance;
                    r.withheld = clamped;
                }
                for (_, store) in &stores {
                    for c in &aggregate(store, &query)?.cells {
                        regional.entry(c.key.clone()).or_default().truth += c.value;
                    }
                }
            }
            for (node, (_, store)) in stores.iter().enumerate() {
                if mode == Mode::Regional {
                    break;
                }
                let exact = aggregate(store, &query)?;
                let cells: Vec<(Vec<String>, Option<i64>, f64)> = if mode == Mode::RulesV1 {
                    let secret = PerturbationSecret::from_bytes(store.perturbation_secret()?);
                    disclosure::release(&exact, &v1, &secret)
                        .answer
                        .cells
                        .into_iter()
                        .map(|c| (c.key, c.value.value(), 0.0))
                        .collect()
                } else {
                    let privacy = if mode == Mode::ZcdpAll {
                        &all
                    } else {
                        &thresholded
                    };
                    let plan = release::plan(query.clone(), privacy, today, store.data_version()?)?;
                    charge = plan.rho_micro;
                    // Every node has its own ledger and spends the same on its quarters:
                    // count one node's.
                    if mode == Mode::ZcdpAll && node == 0 {
                        for q in &plan.universe.quarters {
                            *spent.entry(*q).or_default() += plan.rho_micro;
                        }
                    }
                    let variance = plan.sigma.variance();
                    let block = release::privacy_block(&plan, privacy, false);
                    let (answer, _) = release::compute(store, &plan, privacy, block)?;
                    answer
                        .cells
                        .into_iter()
                        .map(|c| match c.value {
                            CellValue::Noisy(v) => (c.key, Some(v), variance),
                            _ => (c.key, None, 0.0),
                        })
                        .collect()
                };
                for (key, value, variance) in cells {
                    let r = regional.entry(key).or_default();
                    if let Some(v) = value {
                        r.value += v;
                        r.shown = true;
                        r.variance += variance;
                    } else {
                        r.withheld = true;
                    }
                }
                // The truth, from the exact table (a cell outside the universe still counts).
                for c in &exact.cells {
                    regional.entry(c.key.clone()).or_default().truth += c.value;
                }
            }
            let wanted: Vec<&Regional> = regional.values().filter(|r| r.truth > 0).collect();
            let shown = wanted.iter().filter(|r| r.shown).count();
            let lower = wanted.iter().filter(|r| r.withheld).count();
            let big: Vec<&&Regional> = wanted.iter().filter(|r| r.truth >= 100).collect();
            let rel: Vec<f64> = big
                .iter()
                .map(|r| (r.value - r.truth) as f64 / r.truth as f64)
                .collect();
            let mean_err = rel.iter().sum::<f64>() / rel.len().max(1) as f64;
            let med_abs = median(rel.iter().map(|x| x.abs()).collect());
            let se = median(
                big.iter()
                    .filter(|r| r.variance > 0.0)
                    .map(|r| r.variance.sqrt())
                    .collect(),
            );
            let budget = if mode == Mode::RulesV1 {
                "—".to_string()
            } else {
                format!("{:.3}", charge as f64 / all.rho_per_quarter_micro() as f64)
            };
            println!(
                "{:<26} {:<17} {:>8} {:>9.1} {:>9.1} {:>9} {:>9.2}% {:>9.2}% {:>9} {:>9}",
                title,
                mode.name(),
                wanted.len(),
                100.0 * shown as f64 / wanted.len().max(1) as f64,
                100.0 * lower as f64 / wanted.len().max(1) as f64,
                big.len(),
                100.0 * med_abs,
                100.0 * mean_err,
                if se.is_nan() {
                    "—".to_string()
                } else {
                    format!("{se:.1}")
                },
                budget,
            );
        }
    }
    let most = spent.values().copied().max().unwrap_or(0);
    println!(
        "\nThe full report (every question once, default rho) spends, on every node, {:.3} of the budget of each of the\n\
         {} quarters it touches (rho_per_quarter = {}): the report can be run {:.0} times before a quarter runs out.",
        most as f64 / all.rho_per_quarter_micro() as f64,
        spent.len(),
        rho_of(all.rho_per_quarter_micro()),
        (all.rho_per_quarter_micro() as f64 / most.max(1) as f64).floor(),
    );
    println!(
        "regional: regional cells with a true value > 0; shown %: of those, the share the regional table shows"
    );
    println!("(zCDP every cell: all; thresholded / v1: cells at least one node released);");
    println!(
        "lower b. %: of those, the share at least one node withheld (suppressed; in regional mode: clamped), a lower bound;"
    );
    println!(
        "≥100: regional cells whose true value is at least 100; med |err|, mean err: their median absolute and"
    );
    println!(
        "mean signed relative error (a negative mean is the downward bias of withholding before the merge);"
    );
    println!(
        "med s.e.: median standard error √Σσ² of those regional values; budget: ρ / rho_per_quarter charged to"
    );
    println!("each quarter the question touches.");
    Ok(())
}

/// First and last `month` of the IOM file.
fn months_of(csv_path: &Path) -> Result<(String, String)> {
    let mut reader = csv::Reader::from_path(csv_path)?;
    let headers = reader.headers()?.clone();
    let col = headers
        .iter()
        .position(|h| h == "month")
        .context("no month column")?;
    let mut first: Option<String> = None;
    let mut last: Option<String> = None;
    for row in reader.records() {
        let row = row?;
        let m = row.get(col).unwrap_or("").to_string();
        if m.len() != 7 {
            continue;
        }
        if first.as_ref().is_none_or(|f| m < *f) {
            first = Some(m.clone());
        }
        if last.as_ref().is_none_or(|l| m > *l) {
            last = Some(m);
        }
    }
    Ok((first.context("no months")?, last.context("no months")?))
}
