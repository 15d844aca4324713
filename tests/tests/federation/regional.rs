//! Regional mode (issue 14, DESIGN §8b): real nodes, the leader (the coordinator's fan-out) and
//! the helper aggregator as separate servers on 127.0.0.1 over mutual TLS.
//!
//! - with noise off (the test-only `test-no-noise` build of the aggregators) the regional
//!   totals equal the sum of the nodes' exact vectors, computed independently of the node's
//!   SQL (`reference`); each node's ledger is charged the query's ρ, as for a per-node release;
//! - with noise on, (total − exact) / σ over a few hundred cells has mean 0 and variance 1,
//!   σ = √2 × the σ each aggregator adds (≥ every node's own σ);
//! - a node that submits an out-of-range report is dropped by the proof check;
//! - after a query, nothing the leader or the helper wrote (receipt book, helper state, logs)
//!   nor the leader's output holds any node's cell values, and the output has no per-node
//!   column;
//! - a batch below `min_nodes` is refused by the leader, and by the helper on its own;
//! - a node that dies between its report and the helper's fetch leaves a result over the
//!   others, which says so;
//! - hostile requests get stable refusals: a fetch by a non-helper, of an unknown or already
//!   fetched query, a replayed batch, a non-leader at the helper, parameters a node refuses.
//! - a node whose quarter's ρ is spent refuses (PRIVACY_BUDGET_EXHAUSTED) and is not in the
//!   batch, which is refused when that leaves fewer than `min_nodes`;
//! - a node under manual approval holds the query and is not in the batch; approved, the same
//!   id is refused REGIONAL_NOT_RESUMABLE (no charge, no helper share).
//! - the leader's verification key reaches the helper and nothing a node receives.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use prost::Message;
use tonic::{Request, Response, Status};
use vrs_certs_dev::ExtraKind;
use vrs_coordinator::fanout::Federation;
use vrs_coordinator::regional::{self, Leader, RegionalError, RegionalParams, RegionalResult};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_core::regional::{Vdaf, tamper_leader_share};
use vrs_core::tls;
use vrs_demo::regional::{RunningHelper, helper_identity, node_sections, nodes_of};
use vrs_proto::pb;
use vrs_tests::{RegistryNode, TestFederation, reason, spec, spec_with};

use crate::reference;

const MIN_NODES: u32 = 3;
const MAX_CELL: u64 = 10_000;

/// Every log line of this test binary from the moment a regional test starts (debug level
/// for our crates): what the leader, the helper and the nodes said.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info,tonic=info",
            ))
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// `(country, incidents, seed)` of the regional federations.
const NODES: [(&str, u64, u64); 4] = [
    ("THA", 400, 141),
    ("IDN", 300, 142),
    ("PHL", 250, 143),
    ("MYS", 200, 144),
];

async fn start(nodes: &[(&str, u64, u64)], opted_in: &[&str]) -> TestFederation {
    capture_logs();
    let specs: Vec<_> = nodes
        .iter()
        .map(|(c, n, seed)| {
            let mut s = spec(c, *n, *seed, "");
            if opted_in.contains(c) {
                s.sections = node_sections(MIN_NODES);
            }
            s
        })
        .collect();
    TestFederation::start(&specs).await
}

async fn helper(fed: &TestFederation, noise: bool) -> RunningHelper {
    let extra = if noise { "" } else { "test_no_noise = true" };
    let local = fed.local_federation();
    RunningHelper::start(local, &nodes_of(local), &fed.dir().join("helper"), extra)
        .await
        .unwrap()
}

fn leader(fed: &TestFederation, helper: &RunningHelper, noise: bool) -> Leader {
    leader_for(fed, fed.federation(), helper, noise)
}

fn leader_for(
    fed: &TestFederation,
    federation: Federation,
    helper: &RunningHelper,
    noise: bool,
) -> Leader {
    let params: RegionalParams = helper.params(MIN_NODES, MAX_CELL);
    let params = if noise {
        params
    } else {
        params.without_noise()
    };
    Leader::connect(&fed.registry(), federation, params).unwrap()
}

fn query(group_by: &[&str], from: &str, to: &str) -> Query {
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: group_by.iter().map(|d| d.to_string()).collect(),
        period_from: from.into(),
        period_to: to.into(),
        ..RawQuery::default()
    };
    Query::parse(&raw, &QueryLimits::default()).unwrap()
}

/// Each node's exact cells for `q`, independently of the node (reference aggregator).
pub(crate) fn exact_by_node(
    nodes: &[(&str, u64, u64)],
    q: &Query,
) -> BTreeMap<String, BTreeMap<Vec<String>, i64>> {
    nodes
        .iter()
        .map(|(c, n, seed)| {
            let recs = reference::records(c, *n, *seed);
            let cells = reference::exact(&recs, q.unit(), q.group_by(), q.margins())
                .into_iter()
                .map(|(k, e)| (k, e.value))
                .collect();
            (c.to_string(), cells)
        })
        .collect()
}

fn assert_exact_sum(
    result: &RegionalResult,
    exact: &BTreeMap<String, BTreeMap<Vec<String>, i64>>,
    countries: &[&str],
) {
    assert!(!result.cells.is_empty());
    let mut nonzero = 0;
    for cell in &result.cells {
        let want: i64 = countries
            .iter()
            .map(|c| exact[*c].get(&cell.key).copied().unwrap_or(0))
            .sum();
        assert_eq!(cell.noisy, want, "cell {:?}", cell.key);
        nonzero += usize::from(want > 0);
    }
    assert!(nonzero > 5, "the query must have real counts to sum");
    // No exact cell falls outside the universe.
    for c in countries {
        for k in exact[*c].keys() {
            assert!(
                result.cells.iter().any(|x| &x.key == k),
                "{c}: {k:?} outside the universe"
            );
        }
    }
}

fn contributing(r: &RegionalResult) -> Vec<String> {
    let mut v: Vec<String> = r.contributing.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// ρ spent on `quarter` of every node, micro-ρ.
async fn spent(federation: &Federation, quarter: &str) -> BTreeMap<String, u64> {
    federation
        .describe()
        .await
        .into_iter()
        .map(|(c, d)| {
            let d = d.unwrap();
            let q = d.budget.iter().find(|b| b.quarter == quarter).unwrap();
            (c.to_string(), q.rho_spent_micro)
        })
        .collect()
}

#[tokio::test]
async fn noise_off_the_regional_total_is_the_exact_sum_and_each_ledger_is_charged() {
    let fed = start(&NODES, &["THA", "IDN", "PHL", "MYS"]).await;
    let helper = helper(&fed, false).await;
    let leader = leader(&fed, &helper, false);
    let q = query(&["quarter", "mode"], "2021-01", "2024-12");
    let before = spent(leader.federation(), "2022-Q3").await;

    let result = leader.ask(&q).await.unwrap();

    assert_eq!(contributing(&result), sorted(&["THA", "IDN", "PHL", "MYS"]));
    assert!(result.dropped.is_empty(), "{:?}", result.dropped);
    assert_eq!(result.sigma, 0.0, "test-only build: no noise");
    assert_exact_sum(
        &result,
        &exact_by_node(&NODES, &q),
        &["THA", "IDN", "PHL", "MYS"],
    );
    // Each node charged its ledger the query's ρ (the default, 0.05) on the quarters read.
    let after = spent(leader.federation(), "2022-Q3").await;
    for (c, b) in &before {
        assert_eq!(after[c] - b, 50_000, "{c}");
    }
    // Each node audited the report (with its charge) and the helper's fetch of its share.
    for (c, ..) in NODES {
        let log = vrs_node::audit::AuditLog::open_existing(&fed.node_dir(c)).unwrap();
        assert!(log.verify().unwrap().is_ok(), "{c}");
        let entries = log.entries(1, 10_000).unwrap();
        let answered = entries
            .iter()
            .find(|e| e.query_id == result.query_id && e.outcome == "answered")
            .unwrap_or_else(|| panic!("{c}: no answered entry"));
        let privacy: serde_json::Value = serde_json::from_str(&answered.privacy).unwrap();
        assert_eq!(privacy["mode"], "regional", "{c}");
        assert_eq!(privacy["rho_micro"], 50_000, "{c}");
        assert_eq!(privacy["helper"], helper_identity().as_str(), "{c}");
        assert!(
            entries.iter().any(|e| e.query_id == result.query_id
                && e.outcome == "regional_share_fetched"
                && e.caller == helper_identity()),
            "{c}: the helper's fetch is audited"
        );
    }
    helper.stop().await;
    fed.stop().await;
}

#[tokio::test]
async fn noise_on_the_error_has_the_published_scale() {
    let fed = start(&NODES[..3], &["THA", "IDN", "PHL"]).await;
    let helper = helper(&fed, true).await;
    let leader = leader(&fed, &helper, true);
    let q = query(&["quarter", "mode", "place_type"], "2021-01", "2024-12");
    let result = leader.ask(&q).await.unwrap();
    let exact = exact_by_node(&NODES[..3], &q);

    // Every node's own σ for the charged ρ (Δ₂ = 1 for incidents by quarter × mode × place,
    // ρ = 0.05:
    // σ = √10 ≈ 3.162); each aggregator adds at least that, the total is √2 times it.
    let node_sigma = (1.0f64 / (2.0 * 0.05)).sqrt();
    assert!(result.sigma_leader >= node_sigma && result.sigma_leader < node_sigma + 0.01);
    assert_eq!(result.sigma_leader, result.sigma_helper);
    assert!((result.sigma - result.sigma_leader * 2f64.sqrt()).abs() < 1e-9);
    let z: Vec<f64> = result
        .cells
        .iter()
        .map(|c| {
            let want: i64 = ["THA", "IDN", "PHL"]
                .iter()
                .map(|n| exact[*n].get(&c.key).copied().unwrap_or(0))
                .sum();
            (c.noisy - want) as f64 / c.sigma
        })
        .collect();
    let n = z.len() as f64;
    assert!(n >= 200.0, "{n} cells");
    let mean = z.iter().sum::<f64>() / n;
    let var = z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    // 4 standard errors: mean s.e. 1/√n, variance s.e. √(2/n).
    assert!(mean.abs() < 4.0 / n.sqrt(), "mean of z {mean}");
    assert!(
        (var - 1.0).abs() < 4.0 * (2.0 / n).sqrt(),
        "variance of z {var}"
    );
    assert!(z.iter().any(|x| *x != 0.0), "noise was added");
    helper.stop().await;
    fed.stop().await;
}

/// A node that follows the protocol but submits a report with a cell encoding out of range
/// (its leader share's first element shifted: a "bit" that is not 0 or 1), as a malicious
/// node bypassing the Prio3 client's checks would.
struct Malicious {
    country: String,
    /// Instead of an out-of-range cell, a leader share cut short (a wrong length).
    truncate: bool,
    keys: Vec<Vec<String>>,
    dims: Vec<String>,
    held: Mutex<Option<(String, vrs_core::regional::Report)>>,
}

#[tonic::async_trait]
impl pb::federation_server::Federation for Malicious {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        Err(Status::unimplemented("malicious test node"))
    }

    async fn plan(
        &self,
        _: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        Err(Status::unimplemented("malicious test node"))
    }

    async fn aggregate(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let env = pb::QueryEnvelope::decode(req.into_inner().envelope.as_slice()).unwrap();
        let mode = env.regional.unwrap();
        let vdaf = Vdaf::new(self.keys.len(), mode.max_cell).unwrap();
        let mut report = vdaf
            .shard(&env.query_id, &vec![1; self.keys.len()])
            .unwrap();
        if self.truncate {
            report.leader_share.truncate(report.leader_share.len() / 2);
        } else {
            tamper_leader_share(&mut report, 1 << 20).unwrap();
        }
        *self.held.lock().unwrap() = Some((env.query_id.clone(), report.clone()));
        Ok(Response::new(pb::AggregateResponse {
            country: self.country.clone(),
            query_id: env.query_id,
            status: pb::AnswerStatus::Answered as i32,
            dimensions: self.dims.clone(),
            cells: self
                .keys
                .iter()
                .map(|k| pb::Cell {
                    key: k.clone(),
                    ..pb::Cell::default()
                })
                .collect(),
            receipt: Some(pb::AuditReceipt {
                entries: 1,
                head: "0".repeat(64),
                signed_at_ms: 0,
                signature: vec![0; 64],
            }),
            regional: Some(pb::RegionalReport {
                nonce: report.nonce.to_vec(),
                public_share: report.public_share,
                leader_share: report.leader_share,
                cells: self.keys.len() as u32,
            }),
            ..pb::AggregateResponse::default()
        }))
    }

    async fn fetch_helper_share(
        &self,
        _: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::HelperShareResponse>, Status> {
        let (query_id, r) = self.held.lock().unwrap().clone().unwrap();
        Ok(Response::new(pb::HelperShareResponse {
            country: self.country.clone(),
            query_id,
            nonce: r.nonce.to_vec(),
            public_share: r.public_share,
            helper_share: r.helper_share,
        }))
    }
}

#[tokio::test]
async fn an_out_of_range_report_is_dropped_by_the_proof_check() {
    let fed = start(&NODES, &["THA", "IDN", "PHL", "MYS"]).await;
    let q = query(&["quarter", "mode"], "2021-01", "2024-12");
    // The universe's keys, as a per-node zCDP answer lists them.
    let (_, per_node) = fed.federation().ask(&q).await.unwrap();
    let answer = match &per_node[0].outcome {
        vrs_coordinator::fanout::NodeOutcome::Answered(a) => a.clone(),
        other => panic!("{other:?}"),
    };
    let keys: Vec<Vec<String>> = answer.cells.iter().map(|c| c.key.clone()).collect();
    // NZL and FJI: valid node certificates, hostile reports (a cell out of range; a share of
    // the wrong length).
    let mut hostile = Vec::new();
    for (country, truncate) in [("NZL", false), ("FJI", true)] {
        let identity = tls::node_identity(country);
        let paths = fed.extra_tls(&identity, ExtraKind::Valid, &identity);
        let config = tls::server_config(&paths).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::federation_server::FederationServer::new(Malicious {
                    country: country.into(),
                    truncate,
                    keys: keys.clone(),
                    dims: vec!["quarter".into(), "mode".into()],
                    held: Mutex::new(None),
                }))
                .serve_with_incoming_shutdown(
                    tls::incoming(listener, config, std::time::Duration::from_secs(5)),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        hostile.push((country, addr, stop, server));
    }
    let mut nodes: Vec<RegistryNode> = NODES
        .iter()
        .map(|(c, ..)| RegistryNode::new(c, fed.addr(c)))
        .collect();
    for (country, addr, ..) in &hostile {
        nodes.push(RegistryNode::new(country, addr));
    }
    let registry = fed.write_registry(
        "with-nzl.toml",
        &nodes,
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(2),
    );
    let local = fed.local_federation();
    let mut helper_nodes = nodes_of(local);
    for (country, addr, ..) in &hostile {
        helper_nodes.push((country.parse().unwrap(), *addr));
    }
    let helper = RunningHelper::start(
        local,
        &helper_nodes,
        &fed.dir().join("helper"),
        "test_no_noise = true",
    )
    .await
    .unwrap();
    let params = helper.params(MIN_NODES, MAX_CELL).without_noise();
    let leader =
        Leader::connect(&registry, Federation::connect(&registry).unwrap(), params).unwrap();

    let result = leader.ask(&q).await.unwrap();

    assert_eq!(contributing(&result), sorted(&["THA", "IDN", "PHL", "MYS"]));
    let nzl_dropped: Vec<_> = result
        .dropped
        .iter()
        .filter(|d| d.country.as_str() == "NZL")
        .collect();
    assert_eq!(nzl_dropped.len(), 1, "{:?}", result.dropped);
    assert_eq!(nzl_dropped[0].by, "helper");
    assert_eq!(nzl_dropped[0].reason, "PROOF_FAILED");
    // The share of the wrong length never reaches the helper: the leader cannot decode it.
    let fji: Vec<_> = result
        .dropped
        .iter()
        .filter(|d| d.country.as_str() == "FJI")
        .collect();
    assert_eq!(fji.len(), 1, "{:?}", result.dropped);
    assert_eq!(
        (fji[0].by, fji[0].reason.as_str()),
        ("leader", "MALFORMED_REPORT")
    );
    // The hostile report is not in the totals at all.
    assert_exact_sum(
        &result,
        &exact_by_node(&NODES, &q),
        &["THA", "IDN", "PHL", "MYS"],
    );
    for (_, _, stop, server) in hostile {
        let _ = stop.send(());
        let _ = server.await;
    }
    helper.stop().await;
    fed.stop().await;
}

/// The encodings a node's exact vector could appear in: decimal runs of five consecutive
/// cells with common separators, a JSON array of the whole vector, and its little-endian
/// field encoding (as bytes and as hex).
fn encodings(values: &[i64]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for w in values.windows(5) {
        if w.iter().filter(|v| **v > 0).count() < 4 || w.iter().sum::<i64>() < 10 {
            continue;
        }
        for sep in [",", ", ", " ", ";", "\t", "|", "\",\""] {
            out.push(
                w.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(sep)
                    .into_bytes(),
            );
        }
        let mut le = Vec::new();
        for v in w {
            le.extend_from_slice(&(*v as u128).to_le_bytes());
        }
        out.push(hex::encode(&le).into_bytes());
        out.push(le);
    }
    out.push(serde_json::to_vec(values).unwrap());
    out
}

fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn neither_aggregator_holds_a_cell_value_and_the_output_has_no_per_node_column() {
    let fed = start(&NODES, &["THA", "IDN", "PHL", "MYS"]).await;
    let helper = helper(&fed, false).await;
    let leader = leader(&fed, &helper, false);
    // Incidents by quarter: every cell of every node holds a real count.
    let q = query(&["quarter"], "2021-01", "2024-12");
    let log_start = LOGS.lock().unwrap().len();

    let result = leader.ask(&q).await.unwrap();
    assert_eq!(result.contributing.len(), 4);

    let exact = exact_by_node(&NODES, &q);
    let vectors: BTreeMap<String, Vec<i64>> = exact
        .iter()
        .map(|(c, cells)| {
            let v = result
                .cells
                .iter()
                .map(|x| cells.get(&x.key).copied().unwrap_or(0))
                .collect();
            (c.clone(), v)
        })
        .collect();
    // What the leader and the helper hold: the receipt book (beside the registry), the
    // helper's directory (config, certificate, state file), the log lines of the run, and the
    // leader's outputs.
    let mut held = Vec::new();
    let receipts = fed.registry().receipts_path();
    assert!(receipts.exists());
    held.push((
        receipts.display().to_string(),
        std::fs::read(&receipts).unwrap(),
    ));
    files_under(&helper.dir, &mut held);
    assert!(helper.state.exists(), "the helper keeps its state file");
    let logs = LOGS.lock().unwrap()[log_start..].to_vec();
    assert!(
        contains(&logs, b"regional result"),
        "the leader's log was captured"
    );
    assert!(
        contains(&logs, b"batch aggregated"),
        "the helper's log was captured"
    );
    held.push(("logs".into(), logs));
    let outputs = [
        ("text", regional::text(&result).into_bytes()),
        ("csv", regional::csv(&result).into_bytes()),
        (
            "json",
            serde_json::to_vec(&regional::json(&result)).unwrap(),
        ),
    ];
    for (name, body) in &outputs {
        held.push((name.to_string(), body.clone()));
    }
    let mut checked = 0;
    for (country, v) in &vectors {
        let needles = encodings(v);
        assert!(needles.len() > 5, "{country}: a vector with real counts");
        for (what, bytes) in &held {
            for n in &needles {
                assert!(
                    !contains(bytes, n),
                    "{what} holds a run of {country}'s cell values ({})",
                    String::from_utf8_lossy(n)
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100);
    // The check can fire: a log line or file that printed a vector would be caught.
    for v in vectors.values() {
        let debug = format!("cells = {v:?}");
        assert!(encodings(v).iter().any(|n| contains(debug.as_bytes(), n)));
    }
    // No per-node column: the table's header is the dimensions and the total's three columns;
    // the JSON's cells carry key, total and σ only; countries appear only as contributors.
    let csv = String::from_utf8(outputs[1].1.clone()).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "quarter,regional_total,sigma,ci95"
    );
    let json = regional::json(&result);
    for cell in json["cells"].as_array().unwrap() {
        let mut keys: Vec<&String> = cell.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["key", "noisy", "sigma"]);
    }
    helper.stop().await;
    fed.stop().await;
}

#[tokio::test]
async fn a_batch_below_min_nodes_is_refused_by_both_aggregators() {
    // MYS never opted in: it refuses, and three of four is the minimum.
    let fed = start(&NODES, &["THA", "IDN", "PHL"]).await;
    let helper = helper(&fed, true).await;
    let leader = leader(&fed, &helper, true);
    let q = query(&["quarter", "mode"], "2021-01", "2024-12");
    let collected = leader.collect(&q).await.unwrap();
    assert_eq!(collected.reporting().len(), 3);
    let mys = collected
        .dropped
        .iter()
        .find(|d| d.country.as_str() == "MYS")
        .unwrap();
    assert_eq!(mys.reason, "REGIONAL_NOT_ALLOWED");

    // One more node stops before the helper fetches its share: only two reports remain, the
    // leader passes three to the helper, and the helper refuses on its own count.
    assert!(fed.local_federation().abort_node("PHL"));
    match leader.finish(collected).await {
        Err(RegionalError::HelperRefused { reason, .. }) => assert_eq!(reason, "BATCH_TOO_SMALL"),
        other => panic!("{other:?}"),
    }
    let state = std::fs::read_to_string(&helper.state).unwrap();
    assert!(state.contains("refused:BATCH_TOO_SMALL"), "{state}");

    // The leader refuses by itself when fewer than min_nodes report.
    match leader.ask(&q).await {
        Err(RegionalError::BatchTooSmall { have: 2, need: 3 }) => {}
        other => panic!("{other:?}"),
    }
    helper.stop().await;
    fed.stop().await;
}

#[tokio::test]
async fn a_node_that_dies_mid_query_leaves_a_result_over_the_others() {
    let fed = start(&NODES, &["THA", "IDN", "PHL", "MYS"]).await;
    let helper = helper(&fed, false).await;
    let leader = leader(&fed, &helper, false);
    let q = query(&["quarter", "mode"], "2021-01", "2024-12");
    let collected = leader.collect(&q).await.unwrap();
    assert_eq!(collected.reporting().len(), 4);
    // IDN has sent its report to the leader; it dies before the helper fetches its share.
    assert!(fed.local_federation().abort_node("IDN"));

    let result = leader.finish(collected).await.unwrap();

    assert_eq!(contributing(&result), sorted(&["THA", "PHL", "MYS"]));
    assert_eq!(result.dropped.len(), 1);
    assert_eq!(result.dropped[0].country.as_str(), "IDN");
    assert_eq!(result.dropped[0].by, "helper");
    assert_eq!(result.dropped[0].reason, "FETCH_FAILED");
    assert_exact_sum(&result, &exact_by_node(&NODES, &q), &["THA", "PHL", "MYS"]);
    let text = regional::text(&result);
    assert!(text.contains("3 nodes in the totals"), "{text}");
    assert!(
        text.contains("not in the totals: IDN (helper FETCH_FAILED)"),
        "{text}"
    );
    helper.stop().await;
    fed.stop().await;
}

/// A regional envelope for `audience`, signed by the coordinator.
fn regional_request(
    fed: &TestFederation,
    audience: &str,
    mode: pb::RegionalMode,
    query_id: &str,
) -> pb::AggregateRequest {
    let signer = fed.signer();
    let mut env = signer.envelope(audience, vrs_tests::query("incidents", &["quarter"]));
    env.query_id = query_id.to_string();
    env.regional = Some(mode);
    signer.sign(&env)
}

fn mode(nodes: &[&str]) -> pb::RegionalMode {
    pb::RegionalMode {
        helper: helper_identity(),
        min_nodes: MIN_NODES,
        nodes: sorted(nodes),
        sigma_micro: 10_000_000,
        max_cell: MAX_CELL,
    }
}

#[tokio::test]
async fn hostile_regional_requests_get_clear_refusals() {
    let fed = start(&NODES[..3], &["THA", "IDN", "PHL"]).await;
    let helper = helper(&fed, true).await;
    let all = ["THA", "IDN", "PHL"];
    let tha = fed.coordinator_client("THA").await;
    let refused = |r: Result<pb::AggregateResponse, Status>| reason(&r.unwrap_err()).unwrap();

    // Parameters the node refuses, each before anything is charged.
    let mut m = mode(&all);
    m.helper = "helper.someone-else.vrs.test".into();
    let id = vrs_tests::fresh_query_id();
    assert_eq!(
        refused(tha.aggregate(regional_request(&fed, "THA", m, &id)).await),
        "REGIONAL_NOT_ALLOWED"
    );
    let mut m = mode(&all);
    m.min_nodes = 2;
    let id = vrs_tests::fresh_query_id();
    assert_eq!(
        refused(tha.aggregate(regional_request(&fed, "THA", m, &id)).await),
        "MIN_NODES_TOO_LOW"
    );
    let mut m = mode(&all);
    m.sigma_micro = 1_000_000; // σ 1 < √10
    let id = vrs_tests::fresh_query_id();
    assert_eq!(
        refused(tha.aggregate(regional_request(&fed, "THA", m, &id)).await),
        "NOISE_TOO_SMALL"
    );
    let mut m = mode(&all);
    m.max_cell = 0;
    let id = vrs_tests::fresh_query_id();
    assert_eq!(
        refused(tha.aggregate(regional_request(&fed, "THA", m, &id)).await),
        "BAD_REGIONAL_PARAMETERS"
    );
    let m = mode(&["IDN", "PHL"]);
    let id = vrs_tests::fresh_query_id();
    assert_eq!(
        refused(tha.aggregate(regional_request(&fed, "THA", m, &id)).await),
        "BAD_NODE_LIST"
    );

    // A good one; then fetches of its helper share.
    let id = vrs_tests::fresh_query_id();
    let good = regional_request(&fed, "THA", mode(&all), &id);
    let answered = tha.aggregate(good.clone()).await.unwrap();
    assert!(answered.regional.is_some());
    assert!(
        answered.cells.iter().all(|c| c.outcome.is_none()),
        "no value of any kind"
    );
    let fetch = |client_paths: vrs_core::tls::TlsPaths, req: pb::AggregateRequest| {
        let addr = fed.addr("THA");
        async move {
            let channel = tls::connect(
                &addr.to_string(),
                &tls::node_identity("THA"),
                tls::client_config(&client_paths).unwrap(),
                std::time::Duration::from_secs(5),
            )
            .await
            .unwrap();
            pb::federation_client::FederationClient::new(channel)
                .fetch_helper_share(req)
                .await
                .map(Response::into_inner)
        }
    };
    // The coordinator (leader) is a caller, but not the helper.
    let e = fetch(fed.coordinator_tls(), good.clone())
        .await
        .unwrap_err();
    assert_eq!(reason(&e).unwrap(), "NOT_HELPER");
    let helper_paths = vrs_core::tls::TlsPaths {
        ca: fed.pki().ca_path(),
        cert: fed.dir().join("certs").join("helper.pem"),
        key: fed.dir().join("certs").join("helper.key"),
    };
    // Unknown query id.
    let other = regional_request(&fed, "THA", mode(&all), &vrs_tests::fresh_query_id());
    let e = fetch(helper_paths.clone(), other).await.unwrap_err();
    assert_eq!(reason(&e).unwrap(), "UNKNOWN_QUERY_ID");
    // Another envelope under the same id.
    let tampered = regional_request(&fed, "THA", mode(&all), &id);
    let e = fetch(helper_paths.clone(), tampered).await.unwrap_err();
    assert_eq!(reason(&e).unwrap(), "QUERY_MISMATCH");
    // The helper fetches it once; a second fetch finds nothing.
    let share = fetch(helper_paths.clone(), good.clone()).await.unwrap();
    assert_eq!(share.country, "THA");
    assert!(!share.helper_share.is_empty());
    let e = fetch(helper_paths.clone(), good.clone()).await.unwrap_err();
    assert_eq!(reason(&e).unwrap(), "UNKNOWN_QUERY_ID");
    // The replayed query id is refused by the node.
    assert_eq!(
        refused(tha.aggregate(good.clone()).await),
        "REPLAYED_QUERY_ID"
    );

    // The helper: a non-leader caller, then a replayed batch.
    let helper_client = |paths: vrs_core::tls::TlsPaths| {
        let addr = helper.addr;
        async move {
            let channel = tls::connect(
                &addr.to_string(),
                &helper_identity(),
                tls::client_config(&paths).unwrap(),
                std::time::Duration::from_secs(5),
            )
            .await
            .unwrap();
            pb::helper_client::HelperClient::new(channel)
        }
    };
    let batch = |query_id: &str, req: pb::AggregateRequest| pb::HelperBatchRequest {
        query_id: query_id.to_string(),
        verify_key: vec![7; 32],
        reports: vec![pb::BatchReport {
            country: "THA".into(),
            request: Some(req),
            nonce: vec![0; 16],
            public_share: Vec::new(),
            leader_verifier_share: Vec::new(),
        }],
        cells: 4,
    };
    let intruder = fed.extra_tls("intruder.bali-rc.vrs.test", ExtraKind::Valid, "intruder");
    let e = helper_client(intruder)
        .await
        .aggregate_batch(batch(&id, good.clone()))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).unwrap(), "NOT_LEADER");
    // A request signed by someone else than the leader.
    let mut forged = good.clone();
    forged.signature[0] ^= 1;
    let e = helper_client(fed.coordinator_tls())
        .await
        .aggregate_batch(batch(&id, forged))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).unwrap(), "BAD_SIGNATURE");
    // A full run spends its id at the helper; the same id again is a replay.
    let leader = leader(&fed, &helper, true);
    let result = leader
        .ask(&query(&["quarter"], "2022-01", "2022-12"))
        .await
        .unwrap();
    let replay = regional_request(&fed, "THA", mode(&all), &result.query_id);
    let e = helper_client(fed.coordinator_tls())
        .await
        .aggregate_batch(batch(&result.query_id, replay))
        .await
        .unwrap_err();
    assert_eq!(reason(&e).unwrap(), "REPLAYED_QUERY_ID");
    // Nothing was lost: the node still answers per-node queries.
    let per_node = tha
        .aggregate(fed.signer().request(
            "THA",
            vrs_tests::query("incidents", &["quarter"]),
            vrs_tests::Tamper::None,
        ))
        .await
        .unwrap();
    assert!(!per_node.cells.is_empty());
    helper.stop().await;
    fed.stop().await;
}

/// Nodes opted in to regional mode, each with `[privacy]` text of its own.
async fn start_with_privacy(nodes: &[(&str, u64, u64)], privacy: &[&str]) -> TestFederation {
    capture_logs();
    let specs: Vec<_> = nodes
        .iter()
        .zip(privacy)
        .map(|((c, n, seed), p)| {
            let mut s = spec_with(c, *n, *seed, "", p);
            s.sections = node_sections(MIN_NODES);
            s
        })
        .collect();
    TestFederation::start(&specs).await
}

fn dropped_reason(dropped: &[regional::Dropped], country: &str) -> Option<(String, String)> {
    dropped
        .iter()
        .find(|d| d.country.as_str() == country)
        .map(|d| (d.by.to_string(), d.reason.clone()))
}

/// A node whose quarter's ρ is spent refuses the regional query like any other release
/// (PRIVACY_BUDGET_EXHAUSTED, nothing charged), is reported as not in the batch, and the batch
/// is refused when that leaves fewer than `min_nodes`. Would catch: a node that makes a report
/// past its budget (its ledger would go over), a leader that drops such a node silently or
/// releases a result over two nodes.
#[tokio::test]
async fn a_node_out_of_budget_is_not_in_the_batch_and_may_take_it_below_min_nodes() {
    // ρ 0.2 a query: MYS (0.3) answers once, PHL (0.5) twice, THA and IDN (1.0) four times.
    let fed = start_with_privacy(
        &NODES,
        &["", "", "rho_per_quarter = 0.5\n", "rho_per_quarter = 0.3\n"],
    )
    .await;
    let helper = helper(&fed, false).await;
    let leader = leader(&fed, &helper, false);
    let q = query(&["quarter"], "2021-01", "2024-12").with_rho_micro(200_000);

    let first = leader.ask(&q).await.unwrap();
    assert_eq!(contributing(&first), sorted(&["THA", "IDN", "PHL", "MYS"]));

    let second = leader.ask(&q).await.unwrap();
    assert_eq!(contributing(&second), sorted(&["THA", "IDN", "PHL"]));
    assert_eq!(
        dropped_reason(&second.dropped, "MYS"),
        Some(("node".into(), "PRIVACY_BUDGET_EXHAUSTED".into()))
    );
    assert_eq!(second.dropped.len(), 1, "{:?}", second.dropped);
    assert_exact_sum(&second, &exact_by_node(&NODES, &q), &["THA", "IDN", "PHL"]);
    let spent_now = spent(leader.federation(), "2022-Q3").await;
    assert_eq!(
        spent_now["MYS"], 200_000,
        "MYS charged once, not for the refusal"
    );
    assert_eq!(spent_now["PHL"], 400_000);

    // PHL is spent too: two reports remain, and the leader refuses the batch itself.
    let collected = leader.collect(&q).await.unwrap();
    for c in ["PHL", "MYS"] {
        assert_eq!(
            dropped_reason(&collected.dropped, c),
            Some(("node".into(), "PRIVACY_BUDGET_EXHAUSTED".into())),
            "{c}"
        );
    }
    assert_eq!(collected.reporting().len(), 2);
    match leader.finish(collected).await {
        Err(RegionalError::BatchTooSmall { have: 2, need: 3 }) => {}
        other => panic!("{other:?}"),
    }
    let spent_last = spent(leader.federation(), "2022-Q3").await;
    assert_eq!(spent_last["MYS"], 200_000);
    assert_eq!(spent_last["PHL"], 400_000);
    helper.stop().await;
    fed.stop().await;
}

/// A node under `[approval] mode = "manual"` holds a regional query (pending, nothing read or
/// charged) and is not in that batch. Approved later, the same query id is refused
/// REGIONAL_NOT_RESUMABLE: the batch of that id was aggregated without the node and the helper
/// never aggregates an id twice, so a report now would be charged and never used. Nothing is
/// charged and no helper share is made. Would catch: a node that answers the approved id (it
/// would charge its ledger and hold a share the helper can fetch), or a leader that counts a
/// pending node in the batch.
#[tokio::test]
async fn a_node_under_manual_approval_holds_the_query_and_refuses_it_once_approved() {
    capture_logs();
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| {
            let policy = if *c == "MYS" {
                "[approval]\nmode = \"manual\"\n"
            } else {
                ""
            };
            let mut s = spec(c, *n, *seed, policy);
            s.sections = node_sections(MIN_NODES);
            s
        })
        .collect();
    let fed = TestFederation::start(&specs).await;
    let helper = helper(&fed, false).await;
    let leader = leader(&fed, &helper, false);
    let q = query(&["quarter"], "2021-01", "2024-12");
    let before = spent(leader.federation(), "2022-Q3").await;

    let result = leader.ask(&q).await.unwrap();
    assert_eq!(contributing(&result), sorted(&["THA", "IDN", "PHL"]));
    assert_eq!(
        dropped_reason(&result.dropped, "MYS"),
        Some(("leader".into(), "PENDING_APPROVAL".into()))
    );
    assert_exact_sum(&result, &exact_by_node(&NODES, &q), &["THA", "IDN", "PHL"]);
    let held_then = spent(leader.federation(), "2022-Q3").await;
    assert_eq!(
        held_then["MYS"], before["MYS"],
        "nothing charged while held"
    );

    // The operator approves it; the same query id is asked again, as the leader signed it.
    let mut log = vrs_node::audit::AuditLog::open(&fed.node_dir("MYS")).unwrap();
    let pending = log.pending(false).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].query_id, result.query_id);
    log.decide(&result.query_id, "approved", 0).unwrap();
    drop(log);
    let signer = fed.signer();
    let mut env = signer.envelope("MYS", pb::Query::from(q.to_raw()));
    env.query_id = result.query_id.clone();
    env.regional = Some(mode(&["THA", "IDN", "PHL", "MYS"]));
    let again = signer.sign(&env);
    let mys = fed.coordinator_client("MYS").await;
    for _ in 0..2 {
        let e = mys.aggregate(again.clone()).await.unwrap_err();
        assert_eq!(
            reason(&e).as_deref(),
            Some("REGIONAL_NOT_RESUMABLE"),
            "{e:?}"
        );
    }
    let after = spent(leader.federation(), "2022-Q3").await;
    assert_eq!(after["MYS"], before["MYS"], "never charged for that id");

    // No helper share was made for it: the helper's fetch finds none.
    let helper_paths = vrs_core::tls::TlsPaths {
        ca: fed.pki().ca_path(),
        cert: fed.dir().join("certs").join("helper.pem"),
        key: fed.dir().join("certs").join("helper.key"),
    };
    let channel = tls::connect(
        &fed.addr("MYS").to_string(),
        &tls::node_identity("MYS"),
        tls::client_config(&helper_paths).unwrap(),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let e = pb::federation_client::FederationClient::new(channel)
        .fetch_helper_share(again)
        .await
        .unwrap_err();
    assert_eq!(reason(&e).as_deref(), Some("UNKNOWN_QUERY_ID"));
    helper.stop().await;
    fed.stop().await;
}

/// An honest stand-in node that records the encoding of every request it receives.
struct Recorder {
    country: String,
    keys: Vec<Vec<String>>,
    received: Mutex<Vec<Vec<u8>>>,
    held: Mutex<Option<(String, vrs_core::regional::Report)>>,
}

#[tonic::async_trait]
impl pb::federation_server::Federation for Recorder {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        Err(Status::unimplemented("recording test node"))
    }

    async fn plan(
        &self,
        r: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        self.received
            .lock()
            .unwrap()
            .push(r.into_inner().encode_to_vec());
        Err(Status::unimplemented("recording test node"))
    }

    async fn aggregate(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let req = req.into_inner();
        self.received.lock().unwrap().push(req.encode_to_vec());
        let env = pb::QueryEnvelope::decode(req.envelope.as_slice()).unwrap();
        let mode = env.regional.unwrap();
        let vdaf = Vdaf::new(self.keys.len(), mode.max_cell).unwrap();
        let report = vdaf
            .shard(&env.query_id, &vec![1; self.keys.len()])
            .unwrap();
        *self.held.lock().unwrap() = Some((env.query_id.clone(), report.clone()));
        Ok(Response::new(pb::AggregateResponse {
            country: self.country.clone(),
            query_id: env.query_id,
            status: pb::AnswerStatus::Answered as i32,
            dimensions: vec!["quarter".into()],
            cells: self
                .keys
                .iter()
                .map(|k| pb::Cell {
                    key: k.clone(),
                    ..pb::Cell::default()
                })
                .collect(),
            receipt: Some(pb::AuditReceipt {
                entries: 1,
                head: "0".repeat(64),
                signed_at_ms: 0,
                signature: vec![0; 64],
            }),
            regional: Some(pb::RegionalReport {
                nonce: report.nonce.to_vec(),
                public_share: report.public_share,
                leader_share: report.leader_share,
                cells: self.keys.len() as u32,
            }),
            ..pb::AggregateResponse::default()
        }))
    }

    async fn fetch_helper_share(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::HelperShareResponse>, Status> {
        self.received
            .lock()
            .unwrap()
            .push(req.into_inner().encode_to_vec());
        let (query_id, r) = self.held.lock().unwrap().clone().unwrap();
        Ok(Response::new(pb::HelperShareResponse {
            country: self.country.clone(),
            query_id,
            nonce: r.nonce.to_vec(),
            public_share: r.public_share,
            helper_share: r.helper_share,
        }))
    }
}

/// Between the leader and the helper: records each batch (and so the verification key) and
/// passes it on.
struct BatchTap {
    helper: pb::helper_client::HelperClient<tonic::transport::Channel>,
    batches: std::sync::Arc<Mutex<Vec<pb::HelperBatchRequest>>>,
}

#[tonic::async_trait]
impl pb::helper_server::Helper for BatchTap {
    async fn aggregate_batch(
        &self,
        req: Request<pb::HelperBatchRequest>,
    ) -> Result<Response<pb::HelperBatchResponse>, Status> {
        let batch = req.into_inner();
        self.batches.lock().unwrap().push(batch.clone());
        self.helper.clone().aggregate_batch(batch).await
    }
}

/// The leader's Prio3 verification key reaches the helper only: nothing a node receives in a
/// whole regional query (the leader's request, the helper's fetch) holds it, as bytes or hex.
/// Would catch: a key drawn before the reports and sent with the envelope, or a helper that
/// passes the batch (or the key) on to the nodes it fetches from. The positive control shows
/// the search finds the key where it is (the batch the helper gets).
#[tokio::test]
async fn the_verification_key_goes_to_the_helper_and_to_no_node() {
    let fed = start(&NODES[..3], &["THA", "IDN", "PHL"]).await;
    let q = query(&["quarter"], "2021-01", "2024-12");
    let keys: Vec<Vec<String>> = {
        let (_, per_node) = fed.federation().ask(&q).await.unwrap();
        match &per_node[0].outcome {
            vrs_coordinator::fanout::NodeOutcome::Answered(a) => {
                a.cells.iter().map(|c| c.key.clone()).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    // NZL: an honest node that records what it receives.
    let recorder = std::sync::Arc::new(Recorder {
        country: "NZL".into(),
        keys,
        received: Mutex::new(Vec::new()),
        held: Mutex::new(None),
    });
    let identity = tls::node_identity("NZL");
    let paths = fed.extra_tls(&identity, ExtraKind::Valid, &identity);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nzl_addr = listener.local_addr().unwrap();
    let (stop_nzl, nzl_stopped) = tokio::sync::oneshot::channel::<()>();
    let nzl = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::federation_server::FederationServer::from_arc(
                recorder.clone(),
            ))
            .serve_with_incoming_shutdown(
                tls::incoming(
                    listener,
                    tls::server_config(&paths).unwrap(),
                    std::time::Duration::from_secs(5),
                ),
                async {
                    let _ = nzl_stopped.await;
                },
            ),
    );
    let local = fed.local_federation();
    let mut helper_nodes = nodes_of(local);
    helper_nodes.push(("NZL".parse().unwrap(), nzl_addr));
    let helper = RunningHelper::start(local, &helper_nodes, &fed.dir().join("helper"), "")
        .await
        .unwrap();
    // The tap presents the helper's certificate to the leader and the leader's to the helper.
    let helper_paths = vrs_core::tls::TlsPaths {
        ca: fed.pki().ca_path(),
        cert: fed.dir().join("certs").join("helper.pem"),
        key: fed.dir().join("certs").join("helper.key"),
    };
    let channel = tls::connect_lazy(
        &helper.addr.to_string(),
        &helper_identity(),
        tls::client_config(&fed.coordinator_tls()).unwrap(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let batches = std::sync::Arc::new(Mutex::new(Vec::new()));
    let tap = BatchTap {
        helper: pb::helper_client::HelperClient::new(channel),
        batches: batches.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tap_addr = listener.local_addr().unwrap();
    let (stop_tap, tap_stopped) = tokio::sync::oneshot::channel::<()>();
    let tap_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::helper_server::HelperServer::new(tap))
            .serve_with_incoming_shutdown(
                tls::incoming(
                    listener,
                    tls::server_config(&helper_paths).unwrap(),
                    std::time::Duration::from_secs(5),
                ),
                async {
                    let _ = tap_stopped.await;
                },
            ),
    );
    let mut nodes: Vec<RegistryNode> = NODES[..3]
        .iter()
        .map(|(c, ..)| RegistryNode::new(c, fed.addr(c)))
        .collect();
    nodes.push(RegistryNode::new("NZL", nzl_addr));
    let registry = fed.write_registry(
        "with-recorder.toml",
        &nodes,
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(2),
    );
    let params = RegionalParams::new(helper_identity(), tap_addr.to_string(), MIN_NODES, MAX_CELL);
    let leader =
        Leader::connect(&registry, Federation::connect(&registry).unwrap(), params).unwrap();

    let result = leader.ask(&q).await.unwrap();

    assert_eq!(contributing(&result), sorted(&["THA", "IDN", "PHL", "NZL"]));
    let batches = batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 1);
    let key = batches[0].verify_key.clone();
    assert_eq!(key.len(), vrs_core::regional::VERIFY_KEY_LEN);
    let needles = [key.clone(), hex::encode(&key).into_bytes()];
    // Positive control: the batch the helper receives holds it.
    assert!(contains(&batches[0].encode_to_vec(), &key));
    let received = recorder.received.lock().unwrap().clone();
    assert!(
        received.len() >= 2,
        "the node got the leader's request and the helper's fetch: {}",
        received.len()
    );
    for (i, bytes) in received.iter().enumerate() {
        for n in &needles {
            assert!(!contains(bytes, n), "message {i} to the node holds the key");
        }
    }
    let _ = stop_tap.send(());
    let _ = tap_server.await;
    let _ = stop_nzl.send(());
    let _ = nzl.await;
    helper.stop().await;
    fed.stop().await;
}
