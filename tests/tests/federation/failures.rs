//! Node failures behind one fan-out: a node that answers, one that refuses, one that is down and
//! three that are slower than the deadline. The coordinator answers with what it has, reports
//! each node's outcome, and takes about one deadline in all, not the sum of them.

use std::time::{Duration, Instant};

use vrs_certs_dev::ExtraKind;
use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_coordinator::merge::{self, CellStatus};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_core::tls;
use vrs_tests::{RegistryNode, SlowNode, TestFederation, spec, unused_addr};

/// The per-node deadline of the registry under test.
const DEADLINE: Duration = Duration::from_millis(1000);
/// How long the slow nodes take: far past the deadline.
const SLOW: Duration = Duration::from_secs(10);

#[tokio::test]
async fn down_slow_and_refusing_nodes_do_not_hold_the_others_back() {
    let fed = TestFederation::start(&[
        spec("THA", 400, 41, ""),
        // Answers at most one group-by dimension.
        spec("IDN", 300, 42, "max_dimensions = 1"),
    ])
    .await;
    // Three stand-in nodes with certificates from the federation CA for their own identities.
    let mut slow = Vec::new();
    for country in ["PHL", "LKA", "NZL"] {
        let identity = tls::node_identity(country);
        let paths = fed.extra_tls(&identity, ExtraKind::Valid, &identity);
        slow.push(SlowNode::start(&paths, SLOW).await);
    }
    let registry = fed.write_registry(
        "failures.toml",
        &[
            RegistryNode::new("THA", fed.addr("THA")),
            RegistryNode::new("IDN", fed.addr("IDN")),
            RegistryNode::new("AUS", unused_addr()),
            RegistryNode::new("PHL", slow[0].addr()),
            RegistryNode::new("LKA", slow[1].addr()),
            RegistryNode::new("NZL", slow[2].addr()),
        ],
        DEADLINE,
        Duration::from_millis(500),
    );
    let federation = Federation::connect(&registry).unwrap();
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["mode".into(), "year".into()],
        ..RawQuery::default()
    };
    let query = Query::parse(&raw, &QueryLimits::default()).unwrap();

    let started = Instant::now();
    let (query_id, results) = federation.ask(&query).await.unwrap();
    let elapsed = started.elapsed();

    let outcomes: Vec<(String, &NodeOutcome)> = results
        .iter()
        .map(|r| (r.country.to_string(), &r.outcome))
        .collect();
    assert_eq!(
        outcomes.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["THA", "IDN", "AUS", "PHL", "LKA", "NZL"],
        "results come in registry order"
    );
    let NodeOutcome::Answered(answer) = outcomes[0].1 else {
        panic!("THA: {:?}", outcomes[0].1);
    };
    assert!(!answer.cells.is_empty());
    match outcomes[1].1 {
        NodeOutcome::Refused { reason, message } => {
            assert_eq!(reason, "TOO_MANY_DIMENSIONS");
            assert!(message.starts_with("TOO_MANY_DIMENSIONS: "), "{message}");
        }
        other => panic!("IDN: {other:?}"),
    }
    assert!(
        matches!(outcomes[2].1, NodeOutcome::Unreachable(_)),
        "AUS: {:?}",
        outcomes[2].1
    );
    for (country, outcome) in &outcomes[3..] {
        assert_eq!(**outcome, NodeOutcome::TimedOut, "{country}");
    }
    for r in &results[3..] {
        assert!(r.elapsed >= DEADLINE, "{}: {:?}", r.country, r.elapsed);
    }

    // Concurrent: about one deadline in all, well below the three the slow nodes would take one
    // after the other.
    assert!(elapsed >= DEADLINE, "{elapsed:?}");
    assert!(elapsed < DEADLINE * 2, "{elapsed:?}");

    // The regional table holds THA's cells only, and says so.
    let regional = merge::merge(&query_id, query.unit(), query.group_by(), &results);
    assert_eq!(regional.coverage.answered, 1);
    assert_eq!(regional.coverage.asked, 6);
    assert!(!regional.coverage.complete());
    assert_eq!(regional.cells.len(), answer.cells.len());
    for cell in &regional.cells {
        assert_eq!(cell.nodes.keys().collect::<Vec<_>>(), ["THA"]);
        assert_ne!(cell.status, CellStatus::Partial, "{:?}", cell.key);
    }
    let statuses: Vec<&str> = regional.nodes.iter().map(|n| n.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "answered",
            "refused",
            "unreachable",
            "timed_out",
            "timed_out",
            "timed_out"
        ]
    );

    drop(federation);
    for node in slow {
        node.stop().await;
    }
    fed.stop().await;
}

/// `vrs-coordinator query` exits 0 when every node answered, 5 when only some did, 6 when none
/// did, and 2 on a question that does not parse (issue 16, item 4).
#[tokio::test]
async fn the_query_exit_status_says_how_many_nodes_answered() {
    use std::process::ExitCode;

    use vrs_coordinator::cli::{self, CliError, Format};
    use vrs_core::cli::{CommandError, QueryArgs, Status};

    let fed = TestFederation::start(&[spec("THA", 200, 51, ""), spec("IDN", 200, 52, "")]).await;
    let registry = |name: &str, nodes: &[RegistryNode]| {
        fed.write_registry(name, nodes, DEADLINE, Duration::from_millis(500));
        fed.dir().join(name)
    };
    let all = registry(
        "all.toml",
        &[
            RegistryNode::new("THA", fed.addr("THA")),
            RegistryNode::new("IDN", fed.addr("IDN")),
        ],
    );
    let some = registry(
        "some.toml",
        &[
            RegistryNode::new("THA", fed.addr("THA")),
            RegistryNode::new("AUS", unused_addr()),
        ],
    );
    let none = registry("none.toml", &[RegistryNode::new("AUS", unused_addr())]);
    let args = |unit: &str| QueryArgs {
        unit: unit.into(),
        by: Some("year".into()),
        filters: Vec::new(),
        from: None,
        to: None,
        margins: false,
    };
    let ask = |registry: std::path::PathBuf, unit: &'static str| async move {
        cli::ask(&registry, &args(unit), Format::Csv, false, None, None).await
    };
    let code = |s: Status| ExitCode::from(s.code());
    assert_eq!(ask(all, "incidents").await.unwrap(), code(Status::Ok));
    assert_eq!(
        ask(some.clone(), "incidents").await.unwrap(),
        code(Status::QueryPartial)
    );
    assert_eq!(
        ask(none, "incidents").await.unwrap(),
        code(Status::QueryNoAnswer)
    );
    let usage = ask(some, "incidnets").await.unwrap_err();
    assert!(matches!(usage, CliError::Query(_)), "{usage:?}");
    assert_eq!(usage.status(), Status::Usage);
    fed.stop().await;
}
