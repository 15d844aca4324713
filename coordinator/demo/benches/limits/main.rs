//! `limits`: the figures of issue "Benchmarks against the limit", measured in one run and printed
//! as Markdown tables of ratios (docs/BENCHMARKS.md has the commands and the last results).
//!
//! - **Node vs plain SQLite.** Synthetic stores (100k, 1M, 5M incidents of one country, loaded
//!   through `Store::begin_import` / `ImportTx::insert`). On each: "incidents by origin × quarter"
//!   answered by the local engine (`query::aggregate` + `disclosure::release`), by a
//!   `vrs-node serve` process over mutual TLS on loopback, and by the SQL an expert would write
//!   (`SELECT origin, quarter, COUNT(*) FROM incident GROUP BY 1, 2`) run with rusqlite on the same
//!   file: interleaved rounds, medians. The node's peak RSS (`VmHWM`) after answering.
//! - **Dimensions.** The same with 1, 2 and 3 group-by dimensions at 1M.
//! - **DuckDB** (`duck.rs`). The same stores' rows loaded into DuckDB files; incidents and
//!   migrants by 1–3 dimensions, the node's exact aggregation against DuckDB with 1 and 2
//!   threads, both timed in process, interleaved.
//! - **Fixed cost and concurrency** (`fixed.rs`). One node: CPU per answered light query against
//!   a plain tonic mTLS unary call to the same process; throughput at 1–512 concurrent callers.
//! - **Import.** 1M synthetic incidents as template CSV through `import::import_file` into a
//!   fresh store, against the `sqlite3` CLI's `.import` of the same file into an indexed table.
//! - **Fan-out.** 32 `vrs-node serve` processes of 100k incidents each: a regional query against
//!   the slowest node answering it alone; 1, 8 and 32 nodes; the nodes' CPU time per query.
//! - **Missing Migrants.** The IOM file partitioned by country of incident (about 150 nodes),
//!   imported with the shipped mapping, each a `vrs-node serve` process: one regional query from
//!   a cold `vrs-coordinator query` process (wall time), warm queries over 1, 8, 32 and all
//!   nodes, and the coordinator's peak RSS (this program re-run as a child process that reads its
//!   own `/proc/self/status` after the query).
//!
//! `--smoke` runs all of it at tiny sizes (for CI: it checks that the harness runs, nothing else).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

/// The coordinator's allocator (`vrs-coordinator` sets the same): this process stands for it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod data;
mod distance;
mod duck;
mod fixed;
mod measure;
mod nodes;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tokio::runtime::Runtime;
use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_coordinator::merge::{self, Regional};
use vrs_coordinator::registry::Registry;
use vrs_core::codes::Country;
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::disclosure::{self, PerturbationSecret, Policy};
use vrs_node::fx::FxRates;
use vrs_node::import::{ImportOptions, import_file};
use vrs_node::query::aggregate;
use vrs_node::store::Store;

use measure::{interleave, ms, time};
use nodes::{NodeProcs, Pki};

/// The reporting country of the single-node stores and of the import file.
const COUNTRY: &str = "THA";

/// Countries of the synthetic federation (Bali Process members and observers).
const FEDERATION: [&str; 32] = [
    "THA", "IDN", "MYS", "AUS", "MMR", "BGD", "AFG", "PAK", "IND", "LKA", "NPL", "IRN", "IRQ",
    "JOR", "SYR", "TUR", "CHN", "VNM", "KHM", "LAO", "PHL", "SGP", "BRN", "TLS", "PNG", "NZL",
    "FJI", "JPN", "KOR", "MNG", "SLB", "VUT",
];

/// Group-by dimensions of the node figures, in the order they are added (1, 2, 3 dimensions).
const DIMS: [&str; 3] = ["quarter", "origin", "mode"];

/// The plain SQL an expert would write for "incidents by the first `k` of [`DIMS`]".
fn expert_sql(k: usize) -> &'static str {
    match k {
        1 => "SELECT quarter, COUNT(*) FROM incident GROUP BY 1",
        2 => "SELECT origin, quarter, COUNT(*) FROM incident GROUP BY 1, 2",
        _ => "SELECT origin, quarter, mode, COUNT(*) FROM incident GROUP BY 1, 2, 3",
    }
}

/// The engine's query: incidents by `origin × quarter` for k = 2 (and `quarter`, or
/// `origin × quarter × mode`).
fn node_query(k: usize) -> Result<Query> {
    let by: Vec<String> = match k {
        1 => vec!["quarter".into()],
        2 => vec!["origin".into(), "quarter".into()],
        _ => DIMS.iter().map(|d| d.to_string()).collect(),
    };
    query("incidents", by)
}

fn query(unit: &str, by: Vec<String>) -> Result<Query> {
    let raw = RawQuery {
        unit: unit.into(),
        group_by: by,
        filters: Vec::new(),
        period_from: String::new(),
        period_to: String::new(),
        margins: false,
        rho_micro: 0,
    };
    Ok(Query::parse(&raw, &QueryLimits::default())?)
}

#[derive(Debug, Parser)]
#[command(about = "VRS Federation benchmarks against the limits (docs/BENCHMARKS.md)")]
struct Args {
    /// Tiny sizes and one round: checks that the harness runs; the figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Store sizes (incidents) for "node time vs records".
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,5000000")]
    sizes: Vec<u64>,
    /// The store size of the headline node figures and of the dimension scaling.
    #[arg(long, default_value_t = 1_000_000)]
    headline: u64,
    /// Incidents in the import figure.
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: u64,
    /// Timed imports of each kind (alternating).
    #[arg(long, default_value_t = 1)]
    import_runs: usize,
    /// Nodes of the synthetic federation (at most 32).
    #[arg(long, default_value_t = 32)]
    fed_nodes: usize,
    /// Incidents per node of the synthetic federation.
    #[arg(long, default_value_t = 100_000)]
    fed_incidents: u64,
    /// Timed rounds per figure (medians are reported); stores above 2M incidents get 3.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Keep the data sets in this directory and reuse them on the next run.
    #[arg(long)]
    work: Option<PathBuf>,
    /// The `vrs-node` binary (default: the one in this benchmark's target directory).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// The Missing Migrants incidents file.
    #[arg(
        long,
        default_value = "/work/shared/data/missing-migrants-incidents.csv"
    )]
    missing_migrants: PathBuf,
    /// Keep only the largest N Missing Migrants partitions (default: all).
    #[arg(long)]
    mm_nodes: Option<usize>,
    /// Run only these parts: node, duckdb, fixed, import, federation, mm (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(subcommand)]
    child: Option<ChildCommand>,
}

#[derive(Debug, Subcommand)]
enum ChildCommand {
    /// (internal) Be the coordinator process: connect, ask, merge, report timings and VmHWM.
    Coordinator {
        #[arg(long)]
        registry: PathBuf,
        #[arg(long)]
        unit: String,
        #[arg(long, value_delimiter = ',')]
        by: Vec<String>,
        #[arg(long)]
        rounds: usize,
    },
}

fn main() -> Result<()> {
    vrs_core::tls::install_crypto_provider();
    let mut args = Args::parse();
    if let Some(ChildCommand::Coordinator {
        registry,
        unit,
        by,
        rounds,
    }) = &args.child
    {
        return coordinator_child(registry, unit, by.clone(), *rounds);
    }
    if args.smoke {
        args.sizes = vec![500, 2_000];
        args.headline = 2_000;
        args.import_rows = 1_000;
        args.fed_nodes = 3;
        args.fed_incidents = 300;
        args.rounds = 1;
        args.mm_nodes = Some(4);
    }
    if !args.sizes.contains(&args.headline) {
        args.sizes.push(args.headline);
    }
    args.sizes.sort_unstable();
    args.fed_nodes = args.fed_nodes.clamp(1, FEDERATION.len());

    let node_bin = find_node_bin(args.node_bin.clone())?;
    let (_temp, work) = match &args.work {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    // Per-run files (certificates, registries) never come from the cache.
    let run = tempfile::tempdir_in(&work)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _entered = rt.enter();
    let mut report = Report::new(&args, &node_bin);
    eprintln!("work directory {}", work.display());

    // Each part starts with the disk written back: otherwise the kernel flushes the previous
    // part's writes (the fixed-cost node's audit log, about 100 MB) under the next part's timings.
    let part = |name: &str| {
        let run = args.only.is_empty() || args.only.iter().any(|p| p == name);
        if run {
            settle_disk();
        }
        run
    };
    if part("node") {
        node_figures(&args, &rt, &node_bin, &work, run.path(), &mut report)?;
    }
    if part("duckdb") {
        duckdb_figures(&args, &work, &mut report)?;
    }
    if part("fixed") {
        fixed_figures(&args, &rt, &node_bin, &work, run.path(), &mut report)?;
    }
    if part("import") {
        import_figure(&args, &work, &mut report)?;
    }
    if part("federation") {
        federation_figures(&args, &rt, &node_bin, &work, run.path(), &mut report)?;
    }
    if part("mm") {
        missing_migrants_figures(&args, &rt, &node_bin, &work, run.path(), &mut report)?;
    }

    report.print();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/// `sync(1)`: every dirty page written back before a part is timed (a failure to run it is
/// only reported: the figures are still measured, on a disk that may be busy).
fn settle_disk() {
    match std::process::Command::new("sync").status() {
        Ok(s) if s.success() => {}
        other => eprintln!("sync before a part: {other:?}"),
    }
}

fn rounds_for(args: &Args, incidents: u64) -> usize {
    if incidents > 2_000_000 {
        args.rounds.min(3)
    } else {
        args.rounds
    }
}

/// Stores of each size: local engine, mTLS node and plain SQL; node RSS; then 1–3 dimensions.
fn node_figures(
    args: &Args,
    rt: &Runtime,
    node_bin: &Path,
    work: &Path,
    run: &Path,
    report: &mut Report,
) -> Result<()> {
    let country: Country = COUNTRY.parse()?;
    let pki = Pki::generate(&run.join("pki-node"), &[country])?;
    let policy = Policy::default();
    for &size in &args.sizes {
        let dir = work.join(format!("node-{size}"));
        let t = Instant::now();
        if data::cached(&dir, &format!("{COUNTRY} {size} seed 1"), |d| {
            data::synthetic_store(d, country, size, 1)
        })? {
            report.note(format!(
                "loaded {size} synthetic incidents through the store API in {:.1} s ({:.0} incidents/s)",
                t.elapsed().as_secs_f64(),
                size as f64 / t.elapsed().as_secs_f64()
            ));
        }
        eprintln!("node figures at {size} incidents");
        let store = Store::open_read_only(&dir)?;
        let secret = PerturbationSecret::from_bytes(store.perturbation_secret()?);
        let plain = plain_connection(&dir)?;
        nodes::write_node_toml(&dir, country, &pki)?;
        let procs = NodeProcs::start(node_bin, &[(country, dir.clone())])?;
        let registry = procs.registry(&pki, &run.join(format!("registry-{size}.toml")))?;
        let fed = Federation::connect(&registry)?;
        let q = node_query(2)?;
        let medians = interleave(
            rounds_for(args, size),
            &mut [
                Box::new(|| local(&store, &q, &policy, &secret)),
                Box::new(|| ask(rt, &fed, &q).map(drop)),
                Box::new(|| plain_sql(&plain, expert_sql(2))),
            ],
        )?;
        let rss = measure::vm_hwm_kib(procs.0[0].pid())?;
        drop(procs);
        report.sizes.push(SizeRow {
            incidents: size,
            local: medians[0],
            remote: medians[1],
            plain: medians[2],
            node_rss_kib: rss,
        });
        if size == args.headline {
            let queries: Vec<Query> = (1..=3).map(node_query).collect::<Result<_>>()?;
            let mut contenders: Vec<Box<dyn FnMut() -> Result<()> + '_>> = Vec::new();
            for (k, q) in queries.iter().enumerate() {
                let (store, plain, policy, secret) = (&store, &plain, &policy, &secret);
                contenders.push(Box::new(move || local(store, q, policy, secret)));
                contenders.push(Box::new(move || plain_sql(plain, expert_sql(k + 1))));
            }
            let m = interleave(rounds_for(args, size), &mut contenders)?;
            for k in 0..3 {
                report.dims.push((k + 1, m[2 * k], m[2 * k + 1]));
            }
        }
    }
    Ok(())
}

/// The node's exact aggregation against DuckDB on the same rows, at every store size (the stores
/// of [`node_figures`], made here if that part did not run). Skipped with a note when DuckDB
/// cannot be installed.
fn duckdb_figures(args: &Args, work: &Path, report: &mut Report) -> Result<()> {
    let py = match duck::python() {
        Ok(p) => p,
        Err(e) => {
            report.note(format!("DuckDB figures skipped: {e:#}"));
            return Ok(());
        }
    };
    let country: Country = COUNTRY.parse()?;
    let queries: Vec<Query> = duck::QUESTIONS
        .iter()
        .map(|q| query(q.unit, q.by.iter().map(|d| d.to_string()).collect()))
        .collect::<Result<_>>()?;
    for &size in &args.sizes {
        let dir = work.join(format!("node-{size}"));
        data::cached(&dir, &format!("{COUNTRY} {size} seed 1"), |d| {
            data::synthetic_store(d, country, size, 1)
        })?;
        let duck_dir = work.join(format!("duckdb-{size}"));
        let db = duck_dir.join("data.duckdb");
        let t = Instant::now();
        if data::cached(
            &duck_dir,
            &format!("{COUNTRY} {size} seed 1, duckdb {}", duck::DUCKDB_VERSION),
            |_| duck::load(&py, &dir, &db),
        )? {
            report.note(format!(
                "exported {size} incidents and their migrant groups to DuckDB in {:.1} s",
                t.elapsed().as_secs_f64()
            ));
        }
        eprintln!("DuckDB figures at {size} incidents");
        let store = Store::open_read_only(&dir)?;
        let mut duck = duck::Duck::open(&py, &db)?;
        report.duck.extend(duck::measure(
            size,
            &store,
            &mut duck,
            &queries,
            rounds_for(args, size),
        )?);
    }
    Ok(())
}

/// Fixed cost per answer and throughput under concurrency, on one node process serving the
/// smallest synthetic store.
fn fixed_figures(
    args: &Args,
    rt: &Runtime,
    node_bin: &Path,
    work: &Path,
    run: &Path,
    report: &mut Report,
) -> Result<()> {
    let country: Country = COUNTRY.parse()?;
    let size = args.sizes[0];
    let dir = work.join(format!("node-{size}"));
    data::cached(&dir, &format!("{COUNTRY} {size} seed 1"), |d| {
        data::synthetic_store(d, country, size, 1)
    })?;
    let pki = Pki::generate(&run.join("pki-fixed"), &[country])?;
    nodes::write_node_toml(&dir, country, &pki)?;
    let procs = NodeProcs::start(node_bin, &[(country, dir.clone())])?;
    let registry = procs.registry(&pki, &run.join("registry-fixed.toml"))?;
    let fed = Arc::new(Federation::connect(&registry)?);
    let q = light_query()?;
    eprintln!("fixed cost per answer at {size} incidents");
    let calls = if args.smoke { 10 } else { 500 };
    let plain = fixed::plain_channel(&registry)?;
    let pid = procs.0[0].pid();
    report.fixed = Some(fixed::fixed_cost(rt, &fed, &plain, pid, &q, calls)?);
    // The smoke run checks that the part works, not how it scales: two small levels.
    let (secs, levels): (f64, &[usize]) = if args.smoke {
        (0.2, &[1, 8])
    } else {
        (5.0, &[1, 8, 64, 512])
    };
    for &callers in levels {
        eprintln!("concurrency: {callers} callers");
        report
            .levels
            .push(fixed::level(rt, &fed, &plain, pid, &q, callers, secs)?);
    }
    Ok(())
}

/// The import of `import_rows` synthetic incidents: `import_file` against `sqlite3 .import`.
fn import_figure(args: &Args, work: &Path, report: &mut Report) -> Result<()> {
    let n = args.import_rows;
    let country: Country = COUNTRY.parse()?;
    let csv_dir = work.join(format!("import-{n}"));
    data::cached(&csv_dir, &format!("{COUNTRY} {n} seed 7 csv"), |d| {
        data::synthetic_csv(&d.join("incidents.csv"), country, n, 7)
    })?;
    let csv = csv_dir.join("incidents.csv");
    let csv_bytes = std::fs::metadata(&csv)?.len();
    // Warm the page cache so that both importers read the file from memory.
    std::io::copy(&mut std::fs::File::open(&csv)?, &mut std::io::sink())?;
    let target = csv_dir.join("out");
    let mut ours = Vec::new();
    let mut cli = Vec::new();
    let have_cli = Command::new("sqlite3").arg("--version").output().is_ok();
    if !have_cli {
        if !args.smoke {
            bail!("no sqlite3 CLI for the import baseline: install it (apt-get install sqlite3)");
        }
        report.note("no sqlite3 CLI: the import baseline is skipped (smoke run)".into());
    }
    for _ in 0..args.import_runs.max(1) {
        if have_cli {
            eprintln!("import of {n} rows: sqlite3 .import");
            reset_dir(&target)?;
            cli.push(sqlite3_import(&csv, &target.join("plain.db"), n)?);
        }
        eprintln!("import of {n} rows: import_file");
        reset_dir(&target)?;
        let mut store = Store::create(&target.join("node"), country)?;
        let (d, r) = time(|| {
            let r = import_file(
                &mut store,
                &csv,
                &FxRates::sample(),
                &ImportOptions::default(),
            )?;
            // Closing checkpoints the WAL into the database file: part of the import.
            drop(store);
            Ok(r)
        })?;
        if r.imported != n {
            bail!(
                "import_file imported {} of {n} rows ({} rejected)",
                r.imported,
                r.rejected
            );
        }
        ours.push(d);
    }
    std::fs::remove_dir_all(&target)?;
    report.import = Some(ImportRow {
        rows: n,
        csv_bytes,
        ours: measure::median(ours),
        cli: (!cli.is_empty()).then(|| measure::median(cli)),
    });
    Ok(())
}

/// `sqlite3 <db>`: an indexed table with the CSV's columns, `.import` of the file (the CLI does
/// it in one transaction), in a fresh process. Returns the wall time of the process.
fn sqlite3_import(csv: &Path, db: &Path, rows: u64) -> Result<Duration> {
    let script = format!(
        "CREATE TABLE incident(source_id TEXT NOT NULL UNIQUE, period TEXT NOT NULL, date TEXT, \
         agency TEXT, country TEXT NOT NULL, place_type TEXT, mode TEXT, dead INTEGER, \
         missing INTEGER, route TEXT, route_modes TEXT, methods TEXT, fees TEXT, migrants TEXT, \
         smugglers TEXT, note TEXT);\n\
         CREATE INDEX incident_period ON incident(period);\n\
         CREATE INDEX incident_route ON incident(route);\n\
         CREATE INDEX incident_mode ON incident(mode, place_type);\n\
         .import --csv --skip 1 {} incident\n",
        csv.display()
    );
    let (d, status) = time(|| {
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .spawn()
            .context("run sqlite3 (Debian package sqlite3)")?;
        use std::io::Write;
        child
            .stdin
            .take()
            .context("sqlite3 stdin")?
            .write_all(script.as_bytes())?;
        Ok(child.wait()?)
    })?;
    if !status.success() {
        bail!("sqlite3 .import failed: {status}");
    }
    let n: i64 = plain_file(db)?.query_row("SELECT COUNT(*) FROM incident", [], |r| r.get(0))?;
    if u64::try_from(n)? != rows {
        bail!("sqlite3 .import stored {n} of {rows} rows");
    }
    Ok(d)
}

/// The synthetic federation: one regional query against the slowest node alone; 1, 8, all nodes.
fn federation_figures(
    args: &Args,
    rt: &Runtime,
    node_bin: &Path,
    work: &Path,
    run: &Path,
    report: &mut Report,
) -> Result<()> {
    let n = args.fed_nodes;
    let per = args.fed_incidents;
    let countries: Vec<Country> = FEDERATION[..n]
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()?;
    let base = work.join(format!("federation-{per}"));
    let dirs: Vec<(Country, PathBuf)> = countries
        .iter()
        .map(|c| (*c, base.join(c.as_str().to_ascii_lowercase())))
        .collect();
    eprintln!("federation: {n} stores of {per} incidents");
    let t = Instant::now();
    let built = parallel(&dirs, |(country, dir), i| {
        data::cached(dir, &format!("{country} {per} seed {}", 100 + i), |d| {
            data::synthetic_store(d, *country, per, 100 + i as u64)
        })
    })?;
    if built.iter().any(|b| *b) {
        report.note(format!(
            "loaded {n} × {per} synthetic incidents (2 threads) in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }
    let pki = Pki::generate(&run.join("pki-federation"), &countries)?;
    for (c, d) in &dirs {
        nodes::write_node_toml(d, *c, &pki)?;
    }
    eprintln!("federation: starting {n} vrs-node processes");
    let procs = NodeProcs::start(node_bin, &dirs)?;
    let registry = procs.registry(&pki, &run.join("registry-federation.toml"))?;
    let q = node_query(2)?;
    let all = Federation::connect(&registry)?;
    let eight = Federation::connect(&subset(&registry, 8))?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let per_core = Federation::connect(&subset(&registry, cores))?;
    let singles: Vec<Federation> = (0..n)
        .map(|i| Federation::connect(&only(&registry, i)))
        .collect::<Result<_, _>>()?;
    eprintln!("federation: timing");
    let (id, results) = rt.block_on(all.ask(&q))?;
    let listed: usize = results
        .iter()
        .filter_map(|r| match &r.outcome {
            NodeOutcome::Answered(a) => Some(a.cells.len()),
            _ => None,
        })
        .sum();
    let merged = merge::merge(&id, q.unit(), q.group_by(), &results)
        .cells
        .len();
    report.note(format!(
        "the {n} answers to incidents by origin × quarter list {listed} cells in all; merged, {merged} keys"
    ));
    let pc = (&per_core, cores);
    let heavy = regional_vs_alone(rt, args.rounds, &all, &eight, pc, &singles, &node_query(2)?)?;
    let light = regional_vs_alone(rt, args.rounds, &all, &eight, pc, &singles, &light_query()?)?;
    // CPU time the nodes and this coordinator spend per regional query (a few more queries).
    let pids: Vec<u32> = procs.0.iter().map(|p| p.pid()).collect();
    let cpu_rounds = args.rounds.max(3);
    let cpu = |q: &Query| -> Result<[Duration; 2]> {
        let read = |pids: &[u32]| -> Result<Vec<measure::CpuSnapshot>> {
            pids.iter()
                .map(|p| measure::CpuSnapshot::read(*p))
                .collect()
        };
        let spent = |after: &[measure::CpuSnapshot], before: &[measure::CpuSnapshot]| {
            let total: Duration = after.iter().zip(before).map(|(a, b)| a.since(b)).sum();
            total / u32::try_from(cpu_rounds).unwrap_or(u32::MAX)
        };
        let me = [std::process::id()];
        let before = [read(&pids)?, read(&me)?];
        for _ in 0..cpu_rounds {
            ask(rt, &all, q)?;
        }
        let after = [read(&pids)?, read(&me)?];
        Ok([0, 1].map(|i| spent(&after[i], &before[i])))
    };
    let [node_cpu, coordinator_cpu] = cpu(&q)?;
    let [light_node_cpu, _] = cpu(&light_query()?)?;
    let fsync = measure::fsync_latency(work, 50)?;
    drop(procs);
    report.federation = Some(FederationRow {
        nodes: n,
        incidents: per,
        countries,
        heavy,
        light,
        node_cpu,
        coordinator_cpu,
        light_node_cpu,
        fsync,
    });
    Ok(())
}

/// A query that costs the nodes almost nothing (one month, through the month index), to show
/// what the fan-out itself costs.
fn light_query() -> Result<Query> {
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        filters: Vec::new(),
        period_from: "2024-12".into(),
        period_to: "2024-12".into(),
        margins: false,
        rho_micro: 0,
    };
    Ok(Query::parse(&raw, &QueryLimits::default())?)
}

/// Medians of one query asked of every node at once, of the first eight, and of each node alone
/// (interleaved rounds).
fn regional_vs_alone(
    rt: &Runtime,
    rounds: usize,
    all: &Federation,
    eight: &Federation,
    (per_core, cores): (&Federation, usize),
    singles: &[Federation],
    q: &Query,
) -> Result<RegionalTimes> {
    let mut contenders: Vec<Box<dyn FnMut() -> Result<()> + '_>> = vec![
        Box::new(|| ask(rt, all, q).map(drop)),
        Box::new(|| ask(rt, eight, q).map(drop)),
        Box::new(|| ask(rt, per_core, q).map(drop)),
    ];
    for f in singles {
        contenders.push(Box::new(move || ask(rt, f, q).map(drop)));
    }
    let m = interleave(rounds, &mut contenders)?;
    let alone = m[3..].to_vec();
    let per_core_slowest = alone[..cores.min(alone.len())]
        .iter()
        .copied()
        .max()
        .context("no nodes")?;
    let (slowest_i, slowest) = alone
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|(_, d)| *d)
        .context("no nodes")?;
    Ok(RegionalTimes {
        regional: m[0],
        per_core: m[2],
        per_core_slowest,
        eight: m[1],
        one: alone[0],
        slowest,
        slowest_i,
    })
}

/// The Missing Migrants nodes behind delay-injecting proxies (item 4 of issue 15): a cold
/// `vrs-coordinator query` process and warm regional queries, against the largest round trip
/// plus `slowest_alone` (the largest partition asked alone, warm, without a proxy).
#[allow(clippy::too_many_arguments)]
fn distance_figures(
    args: &Args,
    rt: &Runtime,
    procs: &NodeProcs,
    pki: &Pki,
    run: &Path,
    coordinator_bin: &Path,
    q: &Query,
    slowest_alone: Duration,
) -> Result<distance::DistanceRow> {
    let rtts = distance::round_trips(procs.0.len(), 15);
    let targets: Vec<_> = procs
        .0
        .iter()
        .map(|p| p.addr)
        .zip(rtts.iter().copied())
        .collect();
    let proxies = distance::start(rt, &targets)?;
    let path = run.join("registry-distance.toml");
    let registry = procs.registry_at(pki, &path, &proxies.addrs)?;
    eprintln!("distance: {} nodes behind delay proxies", procs.0.len());
    let mut cold = Vec::new();
    for _ in 0..3 {
        let (d, out) = time(|| {
            Ok(Command::new(coordinator_bin)
                .args(["query", "--registry"])
                .arg(&path)
                .args(["--unit", "deaths", "--by", "quarter", "--format", "json"])
                .stderr(Stdio::inherit())
                .output()?)
        })?;
        if !out.status.success() {
            bail!(
                "vrs-coordinator query through the proxies failed: {}",
                out.status
            );
        }
        cold.push(d);
    }
    let fed = Federation::connect(&registry)?;
    let warm = interleave(args.rounds, &mut [Box::new(|| ask(rt, &fed, q).map(drop))])?[0];
    drop(proxies);
    Ok(distance::DistanceRow {
        nodes: procs.0.len(),
        max_rtt: rtts.iter().copied().max().unwrap_or_default(),
        min_rtt: rtts.iter().copied().min().unwrap_or_default(),
        slowest_alone,
        cold,
        warm,
    })
}

/// The Missing Migrants federation: a cold regional query from a fresh coordinator process, warm
/// queries over 1, 8, 32 and all nodes, and the coordinator's peak RSS.
fn missing_migrants_figures(
    args: &Args,
    rt: &Runtime,
    node_bin: &Path,
    work: &Path,
    run: &Path,
    report: &mut Report,
) -> Result<()> {
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/samples/mappings/missing-migrants.toml");
    let source_len = match std::fs::metadata(&args.missing_migrants) {
        Ok(m) => m.len(),
        Err(e) if args.smoke => {
            report.note(format!(
                "no {} ({e}): the Missing Migrants figures are skipped (smoke run)",
                args.missing_migrants.display()
            ));
            return Ok(());
        }
        Err(e) => {
            return Err(e).with_context(|| args.missing_migrants.display().to_string());
        }
    };
    let dir = work.join("missing-migrants");
    let t = Instant::now();
    let marker = format!("{source_len} bytes, largest {:?}", args.mm_nodes);
    if data::cached(&dir, &marker, |d| {
        data::missing_migrants(&args.missing_migrants, &mapping, d, args.mm_nodes)
    })? {
        report.note(format!(
            "partitioned and imported the Missing Migrants file (one store per country) in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }
    let (mm, left_out) = data::mm_nodes(&dir)?;
    if !left_out.is_empty() {
        report.note(format!(
            "Missing Migrants rows left out (geo is not a country code): {}",
            left_out.join(", ")
        ));
    }
    let countries: Vec<Country> = mm.iter().map(|n| n.country).collect();
    let pki = Pki::generate(&run.join("pki-mm"), &countries)?;
    let dirs: Vec<(Country, PathBuf)> = mm.iter().map(|n| (n.country, n.dir.clone())).collect();
    for (c, d) in &dirs {
        nodes::write_node_toml(d, *c, &pki)?;
    }
    eprintln!(
        "missing migrants: starting {} vrs-node processes",
        dirs.len()
    );
    let procs = NodeProcs::start(node_bin, &dirs)?;
    let registry_path = run.join("registry-mm.toml");
    let registry = procs.registry(&pki, &registry_path)?;
    let (unit, by) = ("deaths", "quarter");

    // One regional query from a cold `vrs-coordinator query` process, three times.
    let coordinator_bin = find_bin(
        "vrs-coordinator",
        &["coordinator/src", "core/src", "proto"],
        "as .ci/bench-smoke does",
    )?;
    let mut cold = Vec::new();
    for _ in 0..3 {
        let (d, out) = time(|| {
            Ok(Command::new(&coordinator_bin)
                .args(["query", "--registry"])
                .arg(&registry_path)
                .args(["--unit", unit, "--by", by, "--format", "json"])
                .stderr(Stdio::inherit())
                .output()?)
        })?;
        if !out.status.success() {
            bail!("vrs-coordinator query failed: {}", out.status);
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let answered = json["coverage"]["answered"].as_u64().unwrap_or(0);
        if answered != dirs.len() as u64 {
            bail!(
                "vrs-coordinator query: {answered} of {} nodes answered",
                dirs.len()
            );
        }
        cold.push(d);
    }

    // The coordinator's peak RSS, from a child process that reads its own VmHWM.
    let out = Command::new(std::env::current_exe()?)
        .args(["coordinator", "--registry"])
        .arg(&registry_path)
        .args(["--unit", unit, "--by", by, "--rounds"])
        .arg(args.rounds.to_string())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("coordinator child failed: {}", out.status);
    }
    let child = ChildReport::parse(&String::from_utf8_lossy(&out.stdout))?;

    // Warm queries over the largest 1, 8, 32 and all nodes.
    let q = query(unit, vec![by.into()])?;
    let mut counts: Vec<usize> = [1, 8, 32].into_iter().filter(|k| *k < dirs.len()).collect();
    counts.push(dirs.len());
    let feds: Vec<Federation> = counts
        .iter()
        .map(|k| Federation::connect(&subset(&registry, *k)))
        .collect::<Result<_, _>>()?;
    let mut contenders: Vec<Box<dyn FnMut() -> Result<()> + '_>> = Vec::new();
    for f in &feds {
        let q = &q;
        contenders.push(Box::new(move || ask(rt, f, q).map(drop)));
    }
    let warm = interleave(args.rounds, &mut contenders)?;
    drop(contenders);
    report.distance = Some(distance_figures(
        args,
        rt,
        &procs,
        &pki,
        run,
        &coordinator_bin,
        &q,
        warm[0],
    )?);
    let rss: Vec<u64> = procs
        .0
        .iter()
        .map(|p| measure::vm_hwm_kib(p.pid()))
        .collect::<Result<_>>()?;
    let regional = regional_figures(rt, &pki, &procs, run, &registry_path, &q)?;
    drop(procs);
    report.mm = Some(MmRow {
        regional,
        nodes: dirs.len(),
        rows: mm.iter().map(|n| n.rows).sum(),
        largest: (mm[0].country, mm[0].rows),
        cold,
        child,
        warm: counts.into_iter().zip(warm).collect(),
        node_rss_max_kib: rss.iter().copied().max().unwrap_or(0),
        node_rss_total_kib: rss.iter().sum(),
    });
    Ok(())
}

/// Regional mode over the Missing Migrants node processes.
struct MmRegional {
    /// Cold `vrs-coordinator query --regional` processes.
    cold: Vec<Duration>,
    /// In-process leader: whole query, collect phase, helper phase (one per round).
    total: Vec<Duration>,
    collect: Vec<Duration>,
    finish: Vec<Duration>,
    /// Nodes in the totals (every round).
    contributing: usize,
    cells: usize,
    /// Bytes one node sends: its response to the leader (median, largest), and its answer to
    /// the helper's fetch.
    to_leader: (usize, usize),
    to_helper: usize,
}

/// Regional-mode queries of `q` over `procs` with a `vrs-helper` process: three cold CLI runs
/// and three in-process runs, phases timed; a node's bytes to each aggregator. Each run charges
/// every node's ledger (a regional query id is never replayed for free).
fn regional_figures(
    rt: &Runtime,
    pki: &Pki,
    procs: &NodeProcs,
    run: &Path,
    registry_path: &Path,
    q: &Query,
) -> Result<MmRegional> {
    use vrs_coordinator::regional::{Leader, RegionalParams};
    let helper_bin = find_bin(
        "vrs-helper",
        &["coordinator/src", "core/src", "proto"],
        "as for vrs-coordinator",
    )?;
    let helper = nodes::HelperProc::start(&helper_bin, &run.join("helper-mm"), pki, procs)?;
    let mut text = std::fs::read_to_string(registry_path)?;
    text.push_str(&format!(
        "\n[regional]\nhelper = \"{}\"\nhelper_endpoint = \"{}\"\nmin_nodes = 3\nmax_cell = 100000\n",
        nodes::helper_identity(),
        helper.addr
    ));
    let regional_registry = run.join("registry-mm-regional.toml");
    std::fs::write(&regional_registry, text)?;
    let coordinator_bin = find_bin(
        "vrs-coordinator",
        &["coordinator/src", "core/src", "proto"],
        "as .ci/bench-smoke does",
    )?;
    let n = procs.0.len();
    let mut cold = Vec::new();
    for _ in 0..3 {
        let (d, out) = time(|| {
            Ok(Command::new(&coordinator_bin)
                .args(["query", "--regional", "--registry"])
                .arg(&regional_registry)
                .args(["--unit", "deaths", "--by", "quarter", "--format", "json"])
                .stderr(Stdio::inherit())
                .output()?)
        })?;
        if !out.status.success() {
            bail!("vrs-coordinator query --regional failed: {}", out.status);
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let got = json["contributing_nodes"].as_array().map_or(0, Vec::len);
        if got != n {
            bail!("regional query: {got} of {n} nodes in the totals");
        }
        cold.push(d);
    }
    let registry = Registry::load(&regional_registry)?;
    let params = RegionalParams::new(
        nodes::helper_identity(),
        helper.addr.to_string(),
        3,
        100_000,
    );
    let leader = Leader::connect(&registry, Federation::connect(&registry)?, params)?;
    let (mut total, mut collect, mut finish) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes = Vec::new();
    let mut contributing = n;
    let mut cells = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let collected = rt.block_on(leader.collect(q))?;
        let c = t.elapsed();
        sizes = collected.bytes_to_leader.values().copied().collect();
        let t2 = Instant::now();
        let result = rt.block_on(leader.finish(collected))?;
        finish.push(t2.elapsed());
        collect.push(c);
        total.push(t.elapsed());
        contributing = contributing.min(result.contributing.len());
        cells = result.cells.len();
    }
    sizes.sort_unstable();
    let to_helper = vrs_coordinator::regional::helper_share_bytes(cells.max(1), 100_000)?;
    drop(helper);
    Ok(MmRegional {
        cold,
        total,
        collect,
        finish,
        contributing,
        cells,
        to_leader: (
            sizes.get(sizes.len() / 2).copied().unwrap_or(0),
            sizes.last().copied().unwrap_or(0),
        ),
        to_helper,
    })
}

// ---------------------------------------------------------------------------------------------
// Contenders and helpers
// ---------------------------------------------------------------------------------------------

/// The local engine: exact aggregation and disclosure control, no network.
fn local(store: &Store, q: &Query, policy: &Policy, secret: &PerturbationSecret) -> Result<()> {
    let table = aggregate(store, q)?;
    let released = disclosure::release(&table, policy, secret);
    black_box(released.answer.cells.len());
    Ok(())
}

/// One regional query (sign, send, merge each answer as it arrives); fails unless every node
/// answered.
fn ask(rt: &Runtime, fed: &Federation, q: &Query) -> Result<Regional> {
    let (_, results, regional) = rt.block_on(fed.ask_merged(q))?;
    for r in &results {
        if !matches!(r.outcome, NodeOutcome::Answered(_)) {
            bail!(
                "{}: {} ({})",
                r.country,
                r.outcome.label(),
                r.outcome.detail()
            );
        }
    }
    Ok(regional)
}

/// A plain read-only rusqlite connection to a node's store file (default settings).
fn plain_connection(node_dir: &Path) -> Result<rusqlite::Connection> {
    plain_file(&vrs_node::store::store_path(node_dir))
}

fn plain_file(path: &Path) -> Result<rusqlite::Connection> {
    Ok(rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

/// The baseline: run `sql` and read every row (group values by reference, the count as i64).
fn plain_sql(conn: &rusqlite::Connection, sql: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql)?;
    let k = stmt.column_count() - 1;
    let mut rows = stmt.query([])?;
    let mut total = 0i64;
    while let Some(row) = rows.next()? {
        for i in 0..k {
            black_box(row.get_ref(i)?);
        }
        total += row.get::<_, i64>(k)?;
    }
    black_box(total);
    Ok(())
}

/// The registry restricted to its first `k` nodes.
fn subset(registry: &Registry, k: usize) -> Registry {
    let mut r = registry.clone();
    r.nodes.truncate(k);
    r
}

/// The registry restricted to node `i`.
fn only(registry: &Registry, i: usize) -> Registry {
    let mut r = registry.clone();
    r.nodes = vec![registry.nodes[i].clone()];
    r
}

/// Runs `f` over `items` on two threads (the machine's core count), in order of index.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T, usize) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<R>>>> =
        std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item, i);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?
        .into_iter()
        .map(|r| r.context("a worker stopped")?)
        .collect()
}

fn reset_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// The `vrs-node` binary: `--node-bin`, or the one in this benchmark's target directory (refused
/// when a source file of the node or of the shared crates is newer than it).
fn find_node_bin(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    find_bin(
        "vrs-node",
        &["node/src", "core/src", "proto"],
        "or pass --node-bin",
    )
}

/// A workspace binary in this benchmark's target directory, refused when a file under one of
/// `sources` (relative to the workspace root) is newer than it.
fn find_bin(name: &str, sources: &[&str], alternative: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("target profile directory")?;
    let bin = profile_dir.join(name);
    let build = format!(
        "build it first with `cargo build --release --locked --bin {name}` in the same profile \
         and target directory (see docs/BENCHMARKS.md), {alternative}"
    );
    let bin_time = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .with_context(|| format!("no {}: {build}", bin.display()))?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut newest = None;
    for dir in sources {
        newest = newest.max(newest_file(&root.join(dir)));
    }
    if newest.is_some_and(|t| t > bin_time) {
        bail!("{} is older than its sources: {build}", bin.display());
    }
    Ok(bin)
}

/// The newest modification time of any file under `dir`.
fn newest_file(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_file(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

// ---------------------------------------------------------------------------------------------
// The coordinator child process
// ---------------------------------------------------------------------------------------------

/// What the coordinator child reports.
#[derive(Debug, Clone, Copy)]
struct ChildReport {
    first: Duration,
    warm: Duration,
    vm_hwm_kib: u64,
}

impl ChildReport {
    fn parse(stdout: &str) -> Result<ChildReport> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .context("the coordinator child printed no RESULT line")?;
        let field = |name: &str| -> Result<f64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .context("field")?
                .parse::<f64>()
                .with_context(|| format!("{name} in {line}"))
        };
        Ok(ChildReport {
            first: Duration::from_secs_f64(field("first_ms")? / 1e3),
            warm: Duration::from_secs_f64(field("warm_ms")? / 1e3),
            vm_hwm_kib: field("vm_hwm_kib")? as u64,
        })
    }
}

fn coordinator_child(registry: &Path, unit: &str, by: Vec<String>, rounds: usize) -> Result<()> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _entered = rt.enter();
    let registry = Registry::load(registry)?;
    let fed = Federation::connect(&registry)?;
    let q = query(unit, by)?;
    let first = ask(&rt, &fed, &q)?;
    let first_time = started.elapsed();
    black_box(first.cells.len());
    let mut warm = Vec::new();
    for _ in 0..rounds.max(1) {
        let (d, r) = time(|| ask(&rt, &fed, &q))?;
        black_box(r.cells.len());
        warm.push(d);
    }
    println!(
        "RESULT first_ms={:.3} warm_ms={:.3} vm_hwm_kib={}",
        ms(first_time),
        ms(measure::median(warm)),
        measure::vm_hwm_kib(std::process::id())?
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

struct SizeRow {
    incidents: u64,
    local: Duration,
    remote: Duration,
    plain: Duration,
    node_rss_kib: u64,
}

struct ImportRow {
    rows: u64,
    csv_bytes: u64,
    ours: Duration,
    cli: Option<Duration>,
}

struct RegionalTimes {
    regional: Duration,
    /// Over as many nodes as the machine has cores: one core per node, as the target assumes.
    per_core: Duration,
    /// The slowest of those nodes alone.
    per_core_slowest: Duration,
    eight: Duration,
    one: Duration,
    slowest: Duration,
    slowest_i: usize,
}

struct FederationRow {
    nodes: usize,
    incidents: u64,
    countries: Vec<Country>,
    heavy: RegionalTimes,
    light: RegionalTimes,
    node_cpu: Duration,
    coordinator_cpu: Duration,
    light_node_cpu: Duration,
    fsync: Duration,
}

struct MmRow {
    regional: MmRegional,
    nodes: usize,
    rows: usize,
    largest: (Country, usize),
    cold: Vec<Duration>,
    child: ChildReport,
    warm: Vec<(usize, Duration)>,
    node_rss_max_kib: u64,
    node_rss_total_kib: u64,
}

struct Report {
    machine: Vec<String>,
    notes: Vec<String>,
    headline: u64,
    smoke: bool,
    sizes: Vec<SizeRow>,
    dims: Vec<(usize, Duration, Duration)>,
    import: Option<ImportRow>,
    federation: Option<FederationRow>,
    mm: Option<MmRow>,
    duck: Vec<duck::Row>,
    fixed: Option<fixed::FixedCost>,
    levels: Vec<fixed::Level>,
    distance: Option<distance::DistanceRow>,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

impl Report {
    fn new(args: &Args, node_bin: &Path) -> Report {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|s| s.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "?".into());
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(str::to_string))
            .unwrap_or_default();
        let sqlite: String = rusqlite::Connection::open_in_memory()
            .and_then(|c| c.query_row("SELECT sqlite_version()", [], |r| r.get(0)))
            .unwrap_or_else(|_| "?".into());
        Report {
            machine: vec![
                format!(
                    "CPU: {cpu}, {} cores available",
                    std::thread::available_parallelism().map_or(0, |n| n.get())
                ),
                format!(
                    "memory: {}",
                    mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
                ),
                format!(
                    "kernel: {}",
                    std::fs::read_to_string("/proc/sys/kernel/osrelease")
                        .unwrap_or_default()
                        .trim()
                ),
                format!(
                    "profile: {}",
                    if cfg!(debug_assertions) {
                        "debug"
                    } else {
                        "release"
                    }
                ),
                format!("SQLite (bundled with rusqlite): {sqlite}"),
                format!("sqlite3 CLI: {}", first_line("sqlite3", &["--version"])),
                format!("vrs-node: {}", node_bin.display()),
                format!("load average at start: {}", loadavg()),
            ],
            notes: Vec::new(),
            headline: args.headline,
            smoke: args.smoke,
            sizes: Vec::new(),
            dims: Vec::new(),
            import: None,
            federation: None,
            mm: None,
            duck: Vec::new(),
            fixed: None,
            levels: Vec::new(),
            distance: None,
        }
    }

    fn note(&mut self, n: String) {
        eprintln!("{n}");
        self.notes.push(n);
    }

    fn print(&self) {
        let kib = |k: u64| format!("{:.1} MB", k as f64 / 1024.0);
        let msf = |d: Duration| format!("{:.1} ms", ms(d));
        let verdict = |ok: bool| if ok { "meets" } else { "**misses**" };
        println!("# VRS Federation benchmarks");
        if self.smoke {
            println!("\nSMOKE RUN: tiny sizes, one round; the figures mean nothing.");
        }
        println!();
        for m in &self.machine {
            println!("- {m}");
        }
        println!("- load average at end: {}", loadavg());
        for n in &self.notes {
            println!("- {n}");
        }

        println!("\n## Against the limits\n");
        println!("| figure | measured | baseline | ratio | target | |");
        println!("|---|---|---|---|---|---|");
        let row = |figure: String,
                   measured: String,
                   base: String,
                   ratio: String,
                   target: &str,
                   ok: bool| {
            println!(
                "| {figure} | {measured} | {base} | {ratio} | {target} | {} |",
                verdict(ok)
            );
        };
        let n = self.headline;
        if let Some(s) = self.sizes.iter().find(|s| s.incidents == n) {
            let r = s.remote.as_secs_f64() / s.plain.as_secs_f64();
            row(
                format!("node `Aggregate` over mTLS, 2 dims, {n} incidents"),
                msf(s.remote),
                format!("{} (rusqlite GROUP BY)", msf(s.plain)),
                format!("{r:.2}×"),
                "≤ 1.2×",
                r <= 1.2,
            );
            let r = s.local.as_secs_f64() / s.plain.as_secs_f64();
            row(
                format!("local engine (aggregate + release), 2 dims, {n} incidents"),
                msf(s.local),
                format!("{} (rusqlite GROUP BY)", msf(s.plain)),
                format!("{r:.2}×"),
                "≤ 1.1×",
                r <= 1.1,
            );
        }
        if let Some((i, cli)) = self.import.as_ref().and_then(|i| Some((i, i.cli?))) {
            let r = i.ours.as_secs_f64() / cli.as_secs_f64();
            row(
                format!(
                    "import_file of {} CSV rows ({:.1} MB)",
                    i.rows,
                    i.csv_bytes as f64 / 1e6
                ),
                format!("{:.2} s", i.ours.as_secs_f64()),
                format!("{:.2} s (sqlite3 .import)", cli.as_secs_f64()),
                format!("{r:.2}×"),
                "≤ 1.5×",
                r <= 1.5,
            );
        }
        if let Some(f) = &self.federation {
            for (what, t) in [("", &f.heavy), (" (light query: one month)", &f.light)] {
                let r = t.regional.as_secs_f64() / t.slowest.as_secs_f64();
                row(
                    format!(
                        "regional query, {} node processes × {} incidents{what}",
                        f.nodes, f.incidents
                    ),
                    msf(t.regional),
                    format!(
                        "{} (slowest alone: {})",
                        msf(t.slowest),
                        f.countries[t.slowest_i]
                    ),
                    format!("{r:.2}×"),
                    "≤ 1.3×",
                    r <= 1.3,
                );
            }
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let t = &f.heavy;
            let r = t.per_core.as_secs_f64() / t.per_core_slowest.as_secs_f64();
            row(
                format!("same query, {cores} node processes (one per core, as the target assumes)"),
                msf(t.per_core),
                format!("{} (slowest of them alone)", msf(t.per_core_slowest)),
                format!("{r:.2}×"),
                "≤ 1.3×",
                r <= 1.3,
            );
        }
        if let Some(m) = &self.mm {
            let cold = measure::median(m.cold.clone());
            row(
                format!(
                    "Missing Migrants, {} nodes: one regional query (cold `vrs-coordinator query` process)",
                    m.nodes
                ),
                format!("{:.2} s", cold.as_secs_f64()),
                "—".into(),
                "—".into(),
                "< 2 s",
                cold < Duration::from_secs(2),
            );
        }
        if let Some(m) = &self.mm {
            row(
                format!(
                    "Missing Migrants, {} nodes: one **regional-mode** query (cold `vrs-coordinator query --regional`, helper process)",
                    m.nodes
                ),
                format!(
                    "{:.2} s",
                    measure::median(m.regional.cold.clone()).as_secs_f64()
                ),
                "—".into(),
                "—".into(),
                "—",
                true,
            );
        }
        if let Some(s) = self.sizes.iter().find(|s| s.incidents == n) {
            row(
                format!("peak RSS of the node answering over {n} incidents"),
                kib(s.node_rss_kib),
                "—".into(),
                "—".into(),
                "≤ 150 MB",
                s.node_rss_kib <= 150 * 1024,
            );
        }
        if let Some(m) = &self.mm {
            row(
                format!("peak RSS of the coordinator with {} nodes", m.nodes),
                kib(m.child.vm_hwm_kib),
                "—".into(),
                "—".into(),
                "≤ 100 MB",
                m.child.vm_hwm_kib <= 100 * 1024,
            );
        }

        println!("\n## Node time vs records (incidents by origin × quarter)\n");
        println!(
            "| incidents | rusqlite GROUP BY | local engine | ratio | node over mTLS | ratio | node peak RSS |"
        );
        println!("|---|---|---|---|---|---|---|");
        for s in &self.sizes {
            let p = s.plain.as_secs_f64();
            println!(
                "| {} | {} | {} | {:.2}× | {} | {:.2}× | {} |",
                s.incidents,
                msf(s.plain),
                msf(s.local),
                s.local.as_secs_f64() / p,
                msf(s.remote),
                s.remote.as_secs_f64() / p,
                kib(s.node_rss_kib)
            );
        }

        println!(
            "\n## Time vs group-by dimensions ({n} incidents; {})\n",
            DIMS.join(", then ")
        );
        println!("| dimensions | rusqlite GROUP BY | local engine | ratio |");
        println!("|---|---|---|---|");
        for (k, local, plain) in &self.dims {
            println!(
                "| {k} | {} | {} | {:.2}× |",
                msf(*plain),
                msf(*local),
                local.as_secs_f64() / plain.as_secs_f64()
            );
        }

        duck::print(&self.duck);
        fixed::print(self.fixed.as_ref(), &self.levels);
        distance::print(self.distance.as_ref());

        if let Some(f) = &self.federation {
            println!(
                "\n## Coordinator time vs nodes: synthetic federation ({} incidents per node, warm connections)\n",
                f.incidents
            );
            println!("| nodes | incidents by origin × quarter | light query (one month) |");
            println!("|---|---|---|");
            println!("| 1 | {} | {} |", msf(f.heavy.one), msf(f.light.one));
            if f.nodes > 8 {
                println!("| 8 | {} | {} |", msf(f.heavy.eight), msf(f.light.eight));
            }
            println!(
                "| {} | {} | {} |",
                f.nodes,
                msf(f.heavy.regional),
                msf(f.light.regional)
            );
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let cpu = f.node_cpu + f.coordinator_cpu;
            let floor = (cpu.as_secs_f64() / cores).max(f.heavy.slowest.as_secs_f64());
            println!(
                "\nPer regional query (origin × quarter) the nodes spend {} of CPU time in total and the coordinator {}; on {cores} cores it cannot take less than max(their sum / {cores}, slowest node alone) = {:.1} ms. The measured {} is {:.2}× that floor.",
                msf(f.node_cpu),
                msf(f.coordinator_cpu),
                floor * 1e3,
                msf(f.heavy.regional),
                f.heavy.regional.as_secs_f64() / floor,
            );
            println!(
                "\nThe light query costs the nodes {} of CPU time in total per regional query ({:.1} ms on {cores} cores), but every answer also waits for one durable commit of the node's audit log (the entry; the query id rides on it). One durable 4 KiB write takes {} on this disk, so {} nodes sharing it need about {:.0} ms of disk time per regional query when the disk serves them one at a time; the light query's regional time is {}.",
                msf(f.light_node_cpu),
                ms(f.light_node_cpu) / cores,
                msf(f.fsync),
                f.nodes,
                ms(f.fsync) * f.nodes as f64,
                msf(f.light.regional),
            );
        }
        if let Some(m) = &self.mm {
            println!(
                "\n## Coordinator time vs nodes: Missing Migrants ({} rows in {} nodes, largest {} with {}; deaths by quarter)\n",
                m.rows, m.nodes, m.largest.0, m.largest.1
            );
            println!("| nodes (largest first) | regional query, warm (median) |");
            println!("|---|---|");
            for (k, d) in &m.warm {
                println!("| {k} | {} |", msf(*d));
            }
            let cold: Vec<String> = m
                .cold
                .iter()
                .map(|d| format!("{:.2} s", d.as_secs_f64()))
                .collect();
            println!(
                "\nCold `vrs-coordinator query` processes (start, {} TLS connections, query, merge, print): {}. Coordinator child process: first query {} after start, then {} warm; peak RSS {}. Node processes: largest peak RSS {}, all {} together {}.",
                m.nodes,
                cold.join(", "),
                msf(m.child.first),
                msf(m.child.warm),
                kib(m.child.vm_hwm_kib),
                kib(m.node_rss_max_kib),
                m.nodes,
                kib(m.node_rss_total_kib),
            );
            let r = &m.regional;
            let secs = |v: &[Duration]| {
                v.iter()
                    .map(|d| format!("{:.2} s", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "\n## Regional mode (secure aggregation): Missing Migrants, {} node processes and a `vrs-helper` process (deaths by quarter, {} cells)\n",
                m.nodes, r.cells
            );
            println!("| figure | measured |");
            println!("|---|---|");
            println!(
                "| one regional-mode query, cold `vrs-coordinator query --regional` process (3 runs) | {} |",
                secs(&r.cold)
            );
            println!(
                "| one regional-mode query, in-process leader, warm connections (3 runs) | {} |",
                secs(&r.total)
            );
            println!(
                "| of which: collect (every node plans, reads, shards, answers the leader) | {} |",
                secs(&r.collect)
            );
            println!(
                "| of which: helper (fetches {} shares, verifies, aggregates, noise; leader finishes) | {} |",
                m.nodes,
                secs(&r.finish)
            );
            println!(
                "| nodes in the totals (fewest over the runs) | {} of {} |",
                r.contributing, m.nodes
            );
            println!(
                "| bytes a node sends the leader (its `AggregateResponse`: median, largest) | {} B, {} B |",
                r.to_leader.0, r.to_leader.1
            );
            println!(
                "| bytes a node sends the helper (its `HelperShareResponse`) | {} B |",
                r.to_helper
            );
        }
    }
}
