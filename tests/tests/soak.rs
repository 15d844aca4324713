//! Soak test (issue 12): not in CI's critical path; run by hand and read the figures.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target cargo test -p vrs-tests --release --test soak -- --ignored --nocapture
//! ```
//!
//! Phase 1: 500 concurrent signed queries at one node over one connection. Phase 2: 2,000 from 50
//! connections. Default policy. Every request must be answered or refused with a stable reason
//! (`vrs-reason`), none answered after its deadline ([`vrs_tests::CALL_TIMEOUT`]), RSS bounded,
//! health `SERVING` afterwards (the node is healthy), and the audit chain intact.

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

/// Sends `total` signed queries over `clients` (round robin), all at once; returns outcome counts.
async fn burst(
    fed: &TestFederation,
    clients: &[NodeClient],
    total: usize,
) -> BTreeMap<String, u64> {
    let signer = fed.signer();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let client = clients[i % clients.len()].clone();
        let request = signer.request("THA", query("incidents", &["mode"]), Tamper::None);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak test: run by hand (docs/BENCHMARKS.md)"]
async fn soak_one_node() {
    let fed = TestFederation::with_nodes(&[("THA", 2_000, 99)]).await;
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
        let outcomes = burst(&fed, &clients, total).await;
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
    let log = AuditLog::open_existing(&fed.node_dir("THA")).unwrap();
    assert_eq!(
        log.verify().unwrap().map(|_| ()),
        Ok(()),
        "the audit chain holds"
    );
    fed.stop().await;
}
