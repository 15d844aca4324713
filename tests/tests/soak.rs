//! Soak test (issue 12): not in CI's critical path; run by hand and read the figures.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target cargo test -p vrs-tests --release --test soak -- --ignored --nocapture
//! ```
//!
//! Phase 1: 500 concurrent signed queries at one node over one connection. Phase 2: 2,000 from 50
//! connections. Both under the default policy, then again with the rate limit lifted and 24
//! distinct questions (so releases are computed, budgets spent and permits contended). Every request must be answered or refused with a stable reason
//! (`vrs-reason`), none answered after its deadline ([`vrs_tests::CALL_TIMEOUT`]), RSS bounded,
//! health `SERVING` afterwards (the node is healthy), and the audit chain intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tonic_health::pb::health_check_response::ServingStatus;
use vrs_node::audit::AuditLog;
use vrs_tests::{CALL_TIMEOUT, NodeClient, Tamper, TestFederation, query, reason};

/// Most resident memory the test process (node included) may reach, in MiB.
const MAX_RSS_MIB: u64 = 1_024;

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The `i`-th question of a burst: with `varied`, one of 24 distinct questions (years × units ×
/// group-bys), so fresh releases are computed and budgets spent; otherwise always the same one.
fn question(i: usize, varied: bool) -> vrs_proto::pb::Query {
    if !varied {
        return query("incidents", &["mode"]);
    }
    let years = ["2021", "2022", "2023", "2024"];
    let units = ["incidents", "migrants", "smugglers"];
    let shapes: [&[&str]; 2] = [&["quarter"], &["quarter", "mode"]];
    let y = years[i % years.len()];
    let mut q = query(
        units[(i / 4) % units.len()],
        shapes[(i / 12) % shapes.len()],
    );
    q.period_from = y.into();
    q.period_to = y.into();
    q
}

/// Sends `total` signed queries over `clients` (round robin), all at once; returns outcome counts.
async fn burst(
    fed: &TestFederation,
    clients: &[NodeClient],
    total: usize,
    varied: bool,
) -> BTreeMap<String, u64> {
    let signer = fed.signer();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let client = clients[i % clients.len()].clone();
        let request = signer.request("THA", question(i, varied), Tamper::None);
        tasks.spawn(async move {
            let started = Instant::now();
            let result = client.aggregate(request).await;
            (result, started.elapsed())
        });
    }
    let mut outcomes = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (result, elapsed) = done.expect("the task ran");
        let key = match result {
            Ok(_) => {
                assert!(
                    elapsed <= CALL_TIMEOUT,
                    "answered after its deadline: {elapsed:?}"
                );
                slowest = slowest.max(elapsed);
                "answered".to_owned()
            }
            Err(status) => match reason(&status) {
                Some(r) => format!("refused:{r}"),
                None => format!("no-reason:{:?}", status.code()),
            },
        };
        *outcomes.entry(key).or_insert(0) += 1;
    }
    eprintln!("  slowest answer {slowest:?}");
    outcomes
}

/// What the node's audit log says happened, by outcome (FLOOD entries count their requests).
fn audited(fed: &TestFederation) -> BTreeMap<String, u64> {
    let log = AuditLog::open_existing(&fed.node_dir("THA")).unwrap();
    let mut out = BTreeMap::new();
    for e in log.entries(1, 1_000_000).unwrap() {
        let (key, n) = match e.outcome.strip_prefix("refused:FLOOD:") {
            Some(n) => (
                "refused:(coalesced flood)".to_string(),
                n.parse().unwrap_or(1),
            ),
            None => (e.outcome.clone(), 1),
        };
        *out.entry(key).or_insert(0) += n;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak test: run by hand (docs/BENCHMARKS.md)"]
async fn soak_one_node() {
    // The default policy, and one with the per-caller rate limit lifted so every request reaches
    // the release path (permits, the ledger, deadlines) instead of RATE_LIMITED.
    let open = "[budget]\nrate_per_minute = 1000000\nburst = 100000\ndaily_queries = 1000000\n";
    for (policy_name, policy, varied) in [
        ("default policy", "", false),
        ("rate limit lifted, 24 distinct questions", open, true),
    ] {
        let fed = TestFederation::start(&[vrs_tests::spec("THA", 2_000, 99, policy)]).await;
        eprintln!("== {policy_name}");
        let rss_before = rss_mib();
        for (what, connections, total) in [
            ("500 concurrent, 1 connection", 1, 500),
            ("2,000 from 50 connections", 50, 2_000),
        ] {
            let mut clients = Vec::new();
            for _ in 0..connections {
                clients.push(fed.coordinator_client("THA").await);
            }
            let started = Instant::now();
            let outcomes = burst(&fed, &clients, total, varied).await;
            let rss = rss_mib();
            eprintln!(
                "{what}: {outcomes:?} in {:?}; RSS {rss} MiB (before {rss_before} MiB)",
                started.elapsed()
            );
            assert_eq!(outcomes.values().sum::<u64>(), total as u64);
            assert!(
                outcomes.keys().all(|k| !k.starts_with("no-reason")),
                "a request failed without a stable reason: {outcomes:?}"
            );
            assert!(rss <= MAX_RSS_MIB, "RSS {rss} MiB");
            let health = clients[0].health("").await.expect("health answers");
            assert_eq!(health, ServingStatus::Serving);
        }
        // Counted refusals are written by the next health probe (every 2 s).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let log = AuditLog::open_existing(&fed.node_dir("THA")).unwrap();
        assert_eq!(
            log.verify().unwrap().map(|_| ()),
            Ok(()),
            "the audit chain holds"
        );
        let audited = audited(&fed);
        eprintln!("  audit log: {audited:?}");
        assert_eq!(
            audited.values().sum::<u64>(),
            2_500,
            "every request has its entry (or is counted in a flood entry)"
        );
        fed.stop().await;
    }
}
