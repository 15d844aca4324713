//! The zCDP release path end to end, over real mutual TLS with signed queries: every cell of the
//! data-independent universe comes back noisy with its σ; each touched quarter is charged in
//! the node's ledger; the same release is replayed free and identical; a quarter out of budget
//! refuses by name; concurrent queries never overspend; `Plan` spends nothing.

use std::collections::BTreeSet;

use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::query::aggregate;
use vrs_node::store::Store;
use vrs_proto::pb;
use vrs_tests::{RULES_V1, TestFederation, reason, spec, spec_with};

const RHO_DEFAULT: u64 = 50_000;
const RHO_PER_QUARTER: u64 = 1_000_000;

fn incidents_by_quarter(from: &str, rho_micro: u64) -> pb::Query {
    pb::Query {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        period_from: from.into(),
        period_to: from.into(),
        rho_micro,
        ..pb::Query::default()
    }
}

fn budget_of<'a>(quarters: &'a [pb::QuarterBudget], q: &str) -> &'a pb::QuarterBudget {
    quarters
        .iter()
        .find(|b| b.quarter == q)
        .unwrap_or_else(|| panic!("no budget for {q} in {quarters:?}"))
}

#[tokio::test]
async fn a_release_lists_the_whole_universe_with_calibrated_noise_and_charges_each_quarter() {
    let fed = TestFederation::start(&[spec("THA", 600, 81, "")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();

    let describe = client.describe().await.unwrap();
    let policy = describe.policy.clone().unwrap();
    assert_eq!(policy.mode, pb::ProtectionMode::Zcdp as i32);
    let privacy = policy.privacy.clone().unwrap();
    assert_eq!(privacy.rho_per_quarter_micro, RHO_PER_QUARTER);
    assert_eq!(privacy.default_rho_micro, RHO_DEFAULT);
    assert_eq!(describe.first_period, "2021-01", "the declared coverage");
    assert!(describe.budget.iter().all(|b| b.rho_spent_micro == 0));

    let query = pb::Query {
        unit: "incidents".into(),
        group_by: vec!["quarter".into(), "mode".into()],
        period_from: "2024".into(),
        period_to: "2024".into(),
        ..pb::Query::default()
    };
    let r = client
        .aggregate(signer.sign(&signer.envelope("THA", query.clone())))
        .await
        .unwrap();
    let modes = vrs_core::query::Dimension::Mode
        .closed_values()
        .unwrap()
        .len();
    assert_eq!(
        r.cells.len(),
        4 * modes,
        "every quarter × every published mode"
    );
    let p = r.privacy.clone().unwrap();
    assert_eq!(p.rho_micro, RHO_DEFAULT);
    assert_eq!(p.l2_sensitivity_squared, 1);
    assert_eq!(p.privacy_unit, "incident");
    assert!(!p.replayed);
    let sigma = (1.0f64 / (2.0 * 0.05)).sqrt();
    assert!((p.sigma - sigma).abs() < 1e-5, "{} vs {sigma}", p.sigma);
    let quarters: BTreeSet<&str> = p.quarters.iter().map(|q| q.quarter.as_str()).collect();
    assert_eq!(
        quarters,
        BTreeSet::from(["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"])
    );
    for q in &p.quarters {
        assert_eq!(q.rho_spent_micro, RHO_DEFAULT);
        assert_eq!(q.caller_rho_left_micro, RHO_PER_QUARTER - RHO_DEFAULT);
    }

    // Against the exact counts (read here from the node's own store): noisy, within 7σ.
    let store = Store::open_read_only(&fed.node_dir("THA")).unwrap();
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["quarter".into(), "mode".into()],
        period_from: "2024".into(),
        period_to: "2024".into(),
        ..RawQuery::default()
    };
    let exact = aggregate(
        &store,
        &Query::parse(&raw, &QueryLimits::default()).unwrap(),
    )
    .unwrap();
    let mut moved = 0;
    for c in &r.cells {
        let Some(pb::cell::Outcome::Noisy(v)) = c.outcome else {
            panic!("cell {:?} is not noisy: {:?}", c.key, c.outcome);
        };
        assert!((c.sigma - p.sigma).abs() < 1e-12);
        let truth = exact
            .cells
            .iter()
            .find(|e| e.key == c.key)
            .map_or(0, |e| e.value);
        assert!(
            (v - truth).abs() as f64 <= 7.0 * sigma,
            "{:?}: {v} vs {truth}",
            c.key
        );
        moved += usize::from(v != truth);
    }
    assert!(
        moved > r.cells.len() / 3,
        "noise is really added ({moved} moved)"
    );

    // Describe shows the spend on exactly the touched quarters.
    let after = client.describe().await.unwrap();
    assert_eq!(
        budget_of(&after.budget, "2024-Q3").rho_spent_micro,
        RHO_DEFAULT
    );
    assert_eq!(budget_of(&after.budget, "2023-Q3").rho_spent_micro, 0);

    // The same release asked again (a new query id): the stored answer, charged nothing.
    let again = client
        .aggregate(signer.sign(&signer.envelope("THA", query)))
        .await
        .unwrap();
    assert_ne!(again.query_id, r.query_id);
    assert_eq!(again.cells, r.cells, "same numbers");
    let ap = again.privacy.unwrap();
    assert!(ap.replayed);
    assert_eq!(ap.release_id, p.release_id);
    assert_eq!(
        budget_of(&ap.quarters, "2024-Q1").rho_spent_micro,
        RHO_DEFAULT
    );

    // The audit chain covers every entry, charges included.
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn a_quarter_out_of_budget_refuses_by_name_and_is_never_overspent() {
    let fed = TestFederation::start(&[spec("THA", 300, 82, "")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    // Four distinct queries at the most ρ one may ask (0.25) spend 2024-Q1 entirely.
    let shapes = [
        vec!["quarter"],
        vec!["month"],
        vec!["mode"],
        vec!["place_type"],
        vec!["year"],
    ];
    let mut answered = 0;
    let mut refused = None;
    for by in &shapes {
        let q = pb::Query {
            unit: "incidents".into(),
            group_by: by.iter().map(|s| s.to_string()).collect(),
            period_from: "2024-Q1".into(),
            period_to: "2024-Q1".into(),
            rho_micro: 250_000,
            ..pb::Query::default()
        };
        match client
            .aggregate(signer.sign(&signer.envelope("THA", q)))
            .await
        {
            Ok(_) => answered += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    assert_eq!(answered, 4);
    let status = refused.expect("the fifth query is refused");
    assert_eq!(reason(&status).as_deref(), Some("PRIVACY_BUDGET_EXHAUSTED"));
    assert!(status.message().contains("2024-Q1"), "{}", status.message());
    // Other quarters still have their budget.
    let ok = client
        .aggregate(signer.sign(&signer.envelope("THA", incidents_by_quarter("2024-Q2", 0))))
        .await
        .unwrap();
    assert_eq!(ok.cells.len(), 1);
    let d = client.describe().await.unwrap();
    assert_eq!(
        budget_of(&d.budget, "2024-Q1").rho_spent_micro,
        RHO_PER_QUARTER
    );
    assert_eq!(budget_of(&d.budget, "2024-Q1").caller_rho_left_micro, 0);
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn concurrent_queries_never_spend_more_than_the_budget() {
    // Default limits: burst 20 admits all twelve; some may be refused BUSY (8 at a time).
    let fed = TestFederation::start(&[spec("THA", 300, 83, "")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    // Twelve different questions at ρ = 0.25 on one quarter, all at once: at most four fit.
    let dims = [
        "quarter",
        "month",
        "mode",
        "place_type",
        "year",
        "origin",
        "destination",
        "method",
        "sex",
        "age_group",
        "citizenship",
        "transit",
    ];
    let mut tasks = Vec::new();
    for d in dims {
        let client = client.clone();
        let q = pb::Query {
            unit: "incidents".into(),
            group_by: vec![d.into()],
            period_from: "2024-Q3".into(),
            period_to: "2024-Q3".into(),
            rho_micro: 250_000,
            ..pb::Query::default()
        };
        let request = signer.sign(&signer.envelope("THA", q));
        tasks.push(tokio::spawn(async move { client.aggregate(request).await }));
    }
    let mut answered = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => answered += 1,
            Err(s) => {
                let r = reason(&s);
                assert!(
                    matches!(r.as_deref(), Some("PRIVACY_BUDGET_EXHAUSTED" | "BUSY")),
                    "{s:?}"
                );
            }
        }
    }
    assert!((1..=4).contains(&answered), "{answered} answered");
    let d = client.describe().await.unwrap();
    let spent = budget_of(&d.budget, "2024-Q3").rho_spent_micro;
    assert!(spent <= RHO_PER_QUARTER, "{spent}");
    assert_eq!(
        spent,
        answered * 250_000,
        "every answer charged, nothing else"
    );
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn plan_spends_nothing_and_leaves_the_query_id_for_aggregate() {
    let fed = TestFederation::start(&[spec("THA", 300, 84, "")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let request = signer.sign(&signer.envelope("THA", incidents_by_quarter("2022", 100_000)));
    let before = client.describe().await.unwrap().budget;
    let plan = client.plan(request.clone()).await.unwrap();
    assert!(plan.would_answer, "{plan:?}");
    assert_eq!(plan.cells, 4);
    let p = plan.privacy.unwrap();
    assert_eq!(p.rho_micro, 100_000);
    assert_eq!(p.quarters.len(), 4);
    assert_eq!(
        client.describe().await.unwrap().budget,
        before,
        "nothing spent"
    );
    let r = client.aggregate(request).await.unwrap();
    assert_eq!(r.privacy.unwrap().rho_micro, 100_000);
    // A plan for a query the budget cannot pay says so, and why.
    let big = signer.sign(&signer.envelope("THA", incidents_by_quarter("2022", 250_000)));
    // 0.1 spent; three more distinct questions at 0.25 leave 0.15 of each 2022 quarter.
    for by in ["month", "mode", "place_type"] {
        let q = pb::Query {
            group_by: vec![by.into()],
            ..incidents_by_quarter("2022", 250_000)
        };
        client
            .aggregate(signer.sign(&signer.envelope("THA", q)))
            .await
            .unwrap();
    }
    let plan = client.plan(big).await.unwrap();
    assert!(!plan.would_answer);
    assert_eq!(plan.refusal, "PRIVACY_BUDGET_EXHAUSTED");
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn out_of_range_rho_oversized_universes_and_periods_outside_the_coverage_are_refused() {
    let fed = TestFederation::start(&[spec("THA", 300, 85, "")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let ask = |q: pb::Query| client.aggregate(signer.sign(&signer.envelope("THA", q)));
    let too_much = ask(incidents_by_quarter("2024", 600_000))
        .await
        .unwrap_err();
    assert_eq!(reason(&too_much).as_deref(), Some("RHO_OUT_OF_RANGE"));
    let routes = pb::Query {
        unit: "migrants".into(),
        group_by: vec!["route".into()],
        ..pb::Query::default()
    };
    let big = ask(routes).await.unwrap_err();
    assert_eq!(reason(&big).as_deref(), Some("UNIVERSE_TOO_LARGE"));
    let outside = ask(incidents_by_quarter("2019", 0)).await.unwrap_err();
    assert_eq!(reason(&outside).as_deref(), Some("PERIOD_OUTSIDE_COVERAGE"));
    // None of them spent anything.
    let d = client.describe().await.unwrap();
    assert!(
        d.budget.iter().all(|b| b.rho_spent_micro == 0),
        "{:?}",
        d.budget
    );
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn a_rules_mode_node_says_so() {
    let fed = TestFederation::start(&[spec_with("THA", 100, 86, "", RULES_V1)]).await;
    let client = fed.coordinator_client("THA").await;
    let d = client.describe().await.unwrap();
    let policy = d.policy.unwrap();
    assert_eq!(policy.mode, pb::ProtectionMode::RulesV1 as i32);
    assert!(policy.privacy.is_none());
    assert!(d.budget.is_empty());
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn the_daily_budget_holds_under_concurrent_queries() {
    // Issue 12, item 4: with daily_queries = 1, 20 concurrent queries (8 served at once) got 8
    // answers, because each was counted only once its audit entry was written.
    // Enough records that each answer takes a while: the queries overlap in the node.
    let fed =
        TestFederation::start(&[spec("THA", 30_000, 87, "[budget]\ndaily_queries = 1\n")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let client = client.clone();
        // Twenty different releases (distinct ρ), so none is a stored replay of another.
        let q = incidents_by_quarter("2023", 10_000 + i * 1_000);
        let request = signer.sign(&signer.envelope("THA", q));
        tasks.push(tokio::spawn(async move { client.aggregate(request).await }));
    }
    let mut answered = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => answered += 1,
            Err(s) => assert!(
                matches!(
                    reason(&s).as_deref(),
                    Some("DAILY_BUDGET_SPENT" | "BUSY" | "RATE_LIMITED")
                ),
                "{s:?}"
            ),
        }
    }
    assert_eq!(answered, 1, "one answer a day");
    drop(client);
    fed.stop().await;
}

#[tokio::test]
async fn freshness_and_the_daily_budget_follow_the_node_s_clock() {
    use std::sync::Arc;
    use std::time::Duration;
    use vrs_core::clock::ManualClock;

    // A second server over the same node directory, reading the time from a manual clock set
    // to 23:58 UTC on 30 June 2024.
    let fed = TestFederation::start(&[spec("THA", 300, 88, "[budget]\ndaily_queries = 1\n")]).await;
    let config =
        vrs_node::config::NodeConfig::load(&fed.node_dir("THA").join("node.toml")).unwrap();
    let clock = ManualClock::new(1_719_791_880_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let clock: Arc<dyn vrs_core::clock::Clock> = Arc::new(clock.clone());
        async move {
            vrs_node::server::serve_with_clock(listener, &config, clock, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let client = vrs_tests::NodeClient::connect(
        addr,
        &vrs_core::tls::node_identity("THA"),
        vrs_tests::client_config(&fed.coordinator_tls()),
    )
    .await
    .unwrap();
    let signer = fed.signer();
    let at = |q: pb::Query, issued_at_ms: i64| {
        let mut e = signer.envelope("THA", q);
        e.issued_at_ms = issued_at_ms;
        signer.sign(&e)
    };
    use vrs_core::clock::Clock;
    let t0 = clock.now_ms();
    // Issued at the node's "now": answered, although it is years from the real time.
    client
        .aggregate(at(incidents_by_quarter("2022", 0), t0))
        .await
        .unwrap();
    // The day's one answer is spent.
    let spent = client
        .aggregate(at(incidents_by_quarter("2023", 0), t0))
        .await
        .unwrap_err();
    assert_eq!(reason(&spent).as_deref(), Some("DAILY_BUDGET_SPENT"));
    // Six minutes later an envelope issued at t0 is stale; the next UTC day has a fresh budget.
    clock.advance(Duration::from_secs(6 * 60));
    let stale = client
        .aggregate(at(incidents_by_quarter("2023", 0), t0))
        .await
        .unwrap_err();
    assert_eq!(reason(&stale).as_deref(), Some("STALE_QUERY"));
    client
        .aggregate(at(incidents_by_quarter("2023", 0), clock.now_ms()))
        .await
        .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    drop(client);
    fed.stop().await;
}
