//! `vrs-coordinator query --regional` as an operator runs it: the real `vrs-coordinator` and
//! `vrs-helper` binaries as separate processes, against real nodes on 127.0.0.1 (the harness's
//! servers, dev certificates), with a registry whose `[regional]` section names the helper.
//!
//! The binaries are the release build's (noise on, no test-only feature): they are looked for
//! beside this test binary (`target/debug/`), where `cargo build --workspace --bins` (.ci/run,
//! before the tests) puts them. `cargo test -p vrs-tests` alone does not build another
//! package's binaries, and cargo holds the target directory's lock while tests run, so a test
//! cannot build them itself: a missing or stale binary fails the test with the command to run.
//!
//! - every node answers: the table and the JSON list the totals with their ± interval, the four
//!   contributing nodes and no per-node column; exit status 0;
//! - one node stopped first: the totals are over the other three, the output names the missing
//!   node, and the exit status is 5 (`vrs_core::cli::Status::QueryPartial`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use vrs_certs_dev::ExtraKind;
use vrs_core::cli::Status;
use vrs_demo::COORDINATOR;
use vrs_demo::regional::{helper_identity, node_sections};
use vrs_tests::{RegistryNode, TestFederation, spec};

use crate::regional::exact_by_node;

/// `(country, incidents, seed)`.
const NODES: [(&str, u64, u64); 4] = [
    ("THA", 400, 151),
    ("IDN", 300, 152),
    ("PHL", 250, 153),
    ("MYS", 200, 154),
];

/// How long one CLI run or the helper's start may take.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// A workspace binary beside this test binary; fails if it is missing or older than the
/// sources it is built from (a stale binary would test yesterday's code).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/federation-… → target/debug/
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    let hint = "run `cargo build --workspace --bins` (as .ci/run does) before this test";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", path.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let newest = ["coordinator/src", "core/src", "proto"]
        .iter()
        .map(|d| newest_file(&root.join(d)))
        .max()
        .unwrap();
    assert!(
        built >= newest,
        "{} is older than its sources: {hint}",
        path.display()
    );
    path
}

fn newest_file(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let t = if p.is_dir() {
            newest_file(&p)
        } else {
            std::fs::metadata(&p).unwrap().modified().unwrap()
        };
        newest = newest.max(t);
    }
    newest
}

/// A `vrs-helper` process; killed when dropped (a failing test leaves no process behind).
struct HelperProcess {
    child: Child,
    addr: String,
}

impl HelperProcess {
    /// Writes helper.toml under `dir` (listen on 127.0.0.1:0, every node of `fed`) and starts
    /// the binary; the address is the one it prints once it listens.
    async fn start(fed: &TestFederation, dir: &Path) -> HelperProcess {
        std::fs::create_dir_all(dir).unwrap();
        let paths = fed.extra_tls(&helper_identity(), ExtraKind::Valid, "helper-cli");
        let signing_pub =
            std::fs::read_to_string(fed.pki().coordinator_paths().signing_pub).unwrap();
        let mut text = format!(
            "[helper]\nlisten = \"127.0.0.1:0\"\nleader = \"{leader}\"\nleader_signing_keys = [\"{key}\"]\nfetch_deadline_ms = 5000\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{tls_key}\"\n",
            leader = vrs_core::tls::coordinator_identity(COORDINATOR),
            key = signing_pub.trim(),
            ca = paths.ca.display(),
            cert = paths.cert.display(),
            tls_key = paths.key.display(),
        );
        for c in fed.countries() {
            text.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{c}\"\nendpoint = \"{}\"\n",
                fed.addr(&c)
            ));
        }
        let config = dir.join("helper.toml");
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(binary("vrs-helper"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            PROCESS_TIMEOUT,
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let mut helper = HelperProcess {
            child,
            addr: String::new(),
        };
        let line = match line {
            Ok(Ok(Ok(line))) => line,
            other => panic!("vrs-helper did not say where it listens: {other:?}"),
        };
        helper.addr = line
            .trim()
            .strip_prefix("vrs-helper listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        helper
    }
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One finished `vrs-coordinator` run.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs `vrs-coordinator query --regional` over `registry` with `format` (blocking work off
/// the runtime: the nodes serve on it meanwhile).
async fn query_regional(registry: &Path, format: &str) -> Run {
    let mut cmd = Command::new(binary("vrs-coordinator"));
    cmd.arg("query")
        .arg("--registry")
        .arg(registry)
        .args(["--unit", "incidents", "--by", "quarter"])
        .args(["--from", "2021-01", "--to", "2024-12"])
        .args(["--format", format, "--regional"]);
    let out = tokio::time::timeout(
        PROCESS_TIMEOUT,
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("vrs-coordinator finishes in time")
    .unwrap()
    .unwrap();
    Run {
        status: out.status.code().expect("an exit status, not a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Checks the JSON output's cells against the exact sums of `countries` (noise is on: the
/// release binaries cannot turn it off): every cell within 6 σ, and the sum over all cells
/// within 5 σ√n of the exact grand total, a bound that a total over another set of nodes (one
/// more or one fewer, 200 or more incidents) is shown to break.
fn assert_near_exact(json: &serde_json::Value, countries: &[&str]) {
    let q = vrs_core::query::Query::parse(
        &vrs_core::query::RawQuery {
            unit: "incidents".into(),
            group_by: vec!["quarter".into()],
            period_from: "2021-01".into(),
            period_to: "2024-12".into(),
            ..Default::default()
        },
        &vrs_core::query::QueryLimits::default(),
    )
    .unwrap();
    let exact = exact_by_node(&NODES, &q);
    let total_of = |set: &[&str], key: &[String]| -> i64 {
        set.iter()
            .map(|c| exact[*c].get(key).copied().unwrap_or(0))
            .sum()
    };
    let cells = json["cells"].as_array().unwrap();
    assert!(
        cells.len() >= 16,
        "every quarter of 2021–2024: {}",
        cells.len()
    );
    let (mut noisy_sum, mut exact_sum, mut var) = (0i64, 0i64, 0f64);
    let mut grand: std::collections::BTreeMap<&str, i64> = Default::default();
    for cell in cells {
        let key: Vec<String> = serde_json::from_value(cell["key"].clone()).unwrap();
        let want = total_of(countries, &key);
        let noisy = cell["noisy"].as_i64().unwrap();
        let sigma = cell["sigma"].as_f64().unwrap();
        assert!(sigma > 1.0, "noise is on: sigma {sigma}");
        assert!(
            ((noisy - want) as f64).abs() <= 6.0 * sigma,
            "{key:?}: {noisy} is further than 6 sigma ({sigma}) from {want}"
        );
        noisy_sum += noisy;
        exact_sum += want;
        var += sigma * sigma;
        for (c, ..) in NODES {
            *grand.entry(c).or_default() += exact[c].get(&key).copied().unwrap_or(0);
        }
    }
    let bound = 5.0 * var.sqrt();
    assert!(
        ((noisy_sum - exact_sum) as f64).abs() <= bound,
        "grand total {noisy_sum} vs exact {exact_sum} (bound {bound})"
    );
    // The bound can fail: every node's own grand total is larger than it.
    for (c, n) in &grand {
        assert!(
            *n as f64 > 2.0 * bound,
            "{c}: {n} incidents vs bound {bound}"
        );
    }
}

/// The table's header and rows: dimensions, total, σ, ± interval; no country anywhere in
/// them (no per-node column), countries only in the summary lines under it.
fn assert_table(stdout: &str, in_totals: usize) {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["quarter", "regional_total", "sigma", "ci95"],
        "{stdout}"
    );
    let rows: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| !l.trim_start().starts_with('-'))
        .collect();
    assert!(rows.len() >= 16, "{stdout}");
    for row in &rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.len(), 4, "{row}");
        assert!(cols[3].starts_with('±'), "a ± interval: {row}");
        for (c, ..) in NODES {
            assert!(!row.contains(c), "a per-node figure in {row}");
        }
    }
    assert!(
        stdout.contains(&format!("{in_totals} nodes in the totals (min_nodes 3)")),
        "{stdout}"
    );
}

fn sorted(v: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = serde_json::from_value(v.clone()).unwrap();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_regional_totals_and_says_which_node_is_missing() {
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| {
            let mut s = spec(c, *n, *seed, "");
            s.sections = node_sections(3);
            s
        })
        .collect();
    let fed = TestFederation::start(&specs).await;
    let helper = HelperProcess::start(&fed, &fed.dir().join("helper-cli")).await;
    let nodes: Vec<RegistryNode> = fed
        .countries()
        .iter()
        .map(|c| RegistryNode::new(c, fed.addr(c)))
        .collect();
    fed.write_registry(
        "registry-cli.toml",
        &nodes,
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    let registry = fed.dir().join("registry-cli.toml");
    let mut text = std::fs::read_to_string(&registry).unwrap();
    text.push_str(&format!(
        "\n[regional]\nhelper = \"{}\"\nhelper_endpoint = \"{}\"\nmin_nodes = 3\nmax_cell = 10000\n",
        helper_identity(),
        helper.addr
    ));
    std::fs::write(&registry, text).unwrap();
    let all = ["IDN", "MYS", "PHL", "THA"];

    // Every node answers: JSON, then the table. Exit status 0 (a CLI that returned 5 or 0
    // regardless of coverage fails one of the two runs).
    let run = query_regional(&registry, "json").await;
    assert_eq!(run.status, Status::Ok.code() as i32, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["schema"], "vrs.regional-mode.v1");
    assert_eq!(sorted(&json["contributing_nodes"]), all);
    assert_eq!(json["dropped_nodes"], serde_json::json!([]));
    for cell in json["cells"].as_array().unwrap() {
        let mut keys: Vec<&String> = cell.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["key", "noisy", "sigma"],
            "no per-node field in a cell"
        );
    }
    assert_near_exact(&json, &all);

    let run = query_regional(&registry, "table").await;
    assert_eq!(run.status, Status::Ok.code() as i32, "{}", run.stderr);
    assert_table(&run.stdout, 4);
    let summary = run
        .stdout
        .lines()
        .find(|l| l.contains("nodes in the totals"))
        .unwrap();
    for c in all {
        assert!(summary.contains(c), "{summary}");
    }
    assert!(!run.stdout.contains("not in the totals"), "{}", run.stdout);

    // IDN is stopped before the query: the totals are over the other three, the output says
    // IDN is missing, and the exit status is "some nodes missing" (a CLI that exits 0 on a
    // partial result, or a result that silently omits IDN, fails here).
    assert!(fed.local_federation().abort_node("IDN"));
    let run = query_regional(&registry, "table").await;
    assert_eq!(
        run.status,
        Status::QueryPartial.code() as i32,
        "{}",
        run.stderr
    );
    assert_eq!(Status::QueryPartial.code(), 5);
    assert_table(&run.stdout, 3);
    assert!(
        run.stdout.contains("not in the totals: IDN (node "),
        "{}",
        run.stdout
    );

    let run = query_regional(&registry, "json").await;
    assert_eq!(
        run.status,
        Status::QueryPartial.code() as i32,
        "{}",
        run.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(sorted(&json["contributing_nodes"]), ["MYS", "PHL", "THA"]);
    let dropped = json["dropped_nodes"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0]["country"], "IDN");
    assert_eq!(dropped[0]["by"], "node");
    assert_near_exact(&json, &["MYS", "PHL", "THA"]);

    drop(helper);
    fed.stop().await;
}
