//! End to end: a coordinator asks real nodes over mutual TLS.
//!
//! Rules mode (`rules_v1`, asked for explicitly): every node cell is checked against an exact
//! computation made here from the same synthetic records (see `reference`), and every regional
//! cell against the node cells it merges. zCDP mode (the default): every node releases the whole
//! universe with noise; every regional value is the sum of the nodes' noisy values and its SE
//! exactly √Σσ²; a dry run (`Plan`) spends nothing and leaves the query id usable; the budget
//! shows the spend of a query just made; and a node whose response lists a cell twice, echoes
//! another query id or carries a wrong digest is refused as `BAD_RESPONSE` (a tampering proxy in
//! front of a real node).

use std::collections::BTreeMap;

use vrs_coordinator::fanout::{Federation, NodeOutcome, NodeResult};
use vrs_coordinator::merge::{self, CellStatus, Contribution};
use vrs_core::answer::{Answer, CellValue, ProtectionMode, SuppressionReason};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::record::IncidentRecord;
use vrs_tests::{NO_PERTURBATION, RULES_V1, TestFederation, spec_with};

use crate::reference::{self, DEFAULT_RULES, Exact};

/// `(country, incidents, seed)` of the nodes.
const NODES: [(&str, u64, u64); 4] = [
    ("THA", 1200, 21),
    ("IDN", 800, 22),
    ("MYS", 500, 23),
    ("AUS", 300, 24),
];

/// The default policy's perturbation bound.
const MAX_DEVIATION: u64 = 2;

/// Exact cells of one node for one query.
type ExactCells = BTreeMap<Vec<String>, Exact>;

/// The questions asked: counts and sums, one and two dimensions, a multi-valued dimension with
/// margins.
fn questions() -> Vec<Query> {
    [
        ("incidents", "mode", false),
        ("migrants", "origin,quarter", false),
        ("smugglers", "smuggler_role", false),
        ("deaths", "quarter", false),
        ("incidents", "method,mode", true),
    ]
    .into_iter()
    .map(|(unit, by, margins)| {
        let raw = RawQuery {
            unit: unit.into(),
            group_by: by.split(',').map(str::to_owned).collect(),
            margins,
            ..RawQuery::default()
        };
        Query::parse(&raw, &QueryLimits::default()).unwrap()
    })
    .collect()
}

/// The records each node holds, by country.
fn node_records() -> BTreeMap<String, Vec<IncidentRecord>> {
    NODES
        .iter()
        .map(|(c, n, seed)| (c.to_string(), reference::records(c, *n, *seed)))
        .collect()
}

/// How released values must relate to exact ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Perturbation off: equal.
    Exact,
    /// Perturbation on: within the bound, never below `min_count`.
    Perturbed,
}

/// What the checks saw, so a test can insist that every rule was exercised.
#[derive(Debug, Default)]
struct Tally {
    released: usize,
    /// Released values that differ from the exact value.
    moved: usize,
    suppressed: BTreeMap<SuppressionReason, usize>,
}

fn answer_of(r: &NodeResult) -> &Answer {
    match &r.outcome {
        NodeOutcome::Answered(a) => a,
        other => panic!("{} did not answer: {other:?}", r.country),
    }
}

/// One node's answer against the exact cells: the same keys (no cell missing, none extra, zeros
/// absent); each released cell the exact value (or within the perturbation bound) and passing
/// every primary rule; each suppressed cell with the reason of the first rule it breaks, or
/// complementary (only when margins were asked for).
fn check_node(
    country: &str,
    query: &Query,
    answer: &Answer,
    exact: &ExactCells,
    release: Release,
    tally: &mut Tally,
) {
    let what = format!("{country}: {} by {:?}", query.unit(), query.group_by());
    assert_eq!(answer.dimensions, query.group_by(), "{what}");
    let keys: Vec<&Vec<String>> = answer.cells.iter().map(|c| &c.key).collect();
    let expected: Vec<&Vec<String>> = exact.keys().collect();
    assert_eq!(keys, expected, "{what}: cell keys");
    for cell in &answer.cells {
        let e = &exact[&cell.key];
        let rule = reference::primary(e, query.unit(), DEFAULT_RULES);
        let at = format!("{what}, cell {:?} (exact {e:?})", cell.key);
        match (rule, cell.value) {
            (None, CellValue::Released(v)) => {
                tally.released += 1;
                let exact = u64::try_from(e.value).unwrap();
                match release {
                    Release::Exact => assert_eq!(v, exact, "{at}"),
                    Release::Perturbed => {
                        assert!(v.abs_diff(exact) <= MAX_DEVIATION, "{at}: released {v}");
                        assert!(v >= 5, "{at}: released {v} below min_count");
                    }
                }
                if v != exact {
                    tally.moved += 1;
                }
            }
            (None, CellValue::Suppressed(SuppressionReason::Complementary)) => {
                assert!(query.margins(), "{at}: complementary without margins");
                *tally
                    .suppressed
                    .entry(SuppressionReason::Complementary)
                    .or_default() += 1;
            }
            (Some(rule), CellValue::Suppressed(reason)) => {
                assert_eq!(reason, rule, "{at}");
                *tally.suppressed.entry(reason).or_default() += 1;
            }
            (rule, value) => panic!("{at}: expected {rule:?}, node sent {value:?}"),
        }
    }
}

/// The regional table against the node answers it merges: the same keys; each value the sum of
/// the released node values; exact iff no node suppressed the cell, partial when some node
/// suppressed it and another released it, suppressed when none released it. Without
/// perturbation an exact regional figure is the true regional total and a partial one is below it.
fn check_regional(
    query_id: &str,
    query: &Query,
    results: &[NodeResult],
    exact: &BTreeMap<String, ExactCells>,
    release: Release,
) {
    let regional = merge::merge(query_id, query.unit(), query.group_by(), results);
    assert_eq!(regional.coverage.answered, results.len());
    assert!(regional.coverage.complete());

    // key → country → what that node sent.
    let mut sent: BTreeMap<Vec<String>, BTreeMap<String, CellValue>> = BTreeMap::new();
    for r in results {
        for cell in &answer_of(r).cells {
            sent.entry(cell.key.clone())
                .or_default()
                .insert(r.country.to_string(), cell.value);
        }
    }
    let keys: Vec<&Vec<String>> = regional.cells.iter().map(|c| &c.key).collect();
    assert_eq!(keys, sent.keys().collect::<Vec<_>>(), "regional keys");

    for cell in &regional.cells {
        let nodes = &sent[&cell.key];
        let at = format!(
            "{} by {:?}, regional cell {:?}",
            query.unit(),
            query.group_by(),
            cell.key
        );
        let released: u64 = nodes.values().filter_map(|v| v.released()).sum();
        let released = i64::try_from(released).unwrap();
        let any_released = nodes.values().any(|v| v.released().is_some());
        let any_suppressed = nodes.values().any(|v| v.released().is_none());
        assert_eq!(cell.value, released, "{at}");
        let status = match (any_released, any_suppressed) {
            (_, false) => CellStatus::Exact,
            (true, true) => CellStatus::Partial,
            (false, true) => CellStatus::Suppressed,
        };
        assert_eq!(cell.status, status, "{at}");
        for (country, value) in nodes {
            let contribution = match value {
                CellValue::Released(v) => Contribution::Value(*v),
                CellValue::Noisy(v) => panic!("{at}: a rules-mode node sent a noisy value {v}"),
                CellValue::Suppressed(r) => Contribution::Suppressed(*r),
            };
            assert_eq!(
                cell.nodes.get(country),
                Some(&contribution),
                "{at}, {country}"
            );
        }
        assert_eq!(cell.nodes.len(), nodes.len(), "{at}");

        let truth: i64 = exact
            .values()
            .filter_map(|cells| cells.get(&cell.key))
            .map(|e| e.value)
            .sum();

        match (release, cell.status) {
            (Release::Exact, CellStatus::Exact) => assert_eq!(cell.value, truth, "{at}"),
            (Release::Exact, _) => assert!(cell.value < truth, "{at}: not a strict lower bound"),
            (Release::Perturbed, CellStatus::Exact) => {
                let bound = MAX_DEVIATION * nodes.len() as u64;
                assert!(cell.value.abs_diff(truth) <= bound, "{at}: {truth}");
                assert_eq!(cell.se, 0.0, "{at}: no noise in rules mode");
            }
            (Release::Perturbed, _) => {}
        }
    }
}

/// Asks `query`, checks every node and the regional table; returns the released answers by
/// country.
async fn ask_and_check(
    federation: &Federation,
    query: &Query,
    records: &BTreeMap<String, Vec<IncidentRecord>>,
    release: Release,
    tally: &mut Tally,
) -> (String, BTreeMap<String, Answer>) {
    let (query_id, results) = federation.ask(query).await.unwrap();
    assert_eq!(results.len(), records.len());
    let exact: BTreeMap<String, ExactCells> = records
        .iter()
        .map(|(country, recs)| {
            let cells = reference::exact(recs, query.unit(), query.group_by(), query.margins());
            (country.clone(), cells)
        })
        .collect();
    let mut answers = BTreeMap::new();
    for r in &results {
        let country = r.country.to_string();
        let answer = answer_of(r);
        check_node(&country, query, answer, &exact[&country], release, tally);
        answers.insert(country, answer.clone());
    }
    check_regional(&query_id, query, &results, &exact, release);
    (query_id, answers)
}

/// The published policy of every node says whether perturbation is on.
async fn assert_perturbation(federation: &Federation, on: bool) {
    for (country, described) in federation.describe().await {
        let described = described.unwrap();
        assert_eq!(described.mode, ProtectionMode::RulesV1, "{country}");
        assert!(
            described.budget.is_empty(),
            "{country}: no budget in rules mode"
        );
        // Describe publishes the corridor dimension with its closed list (and `unknown`).
        let corridor = described
            .dimensions
            .iter()
            .find(|(name, _)| name == "corridor")
            .map(|(_, values)| values.clone());
        assert_eq!(
            corridor,
            vrs_core::query::Dimension::Corridor.closed_values(),
            "{country}"
        );
        let policy = described.policy;
        assert_eq!(policy.perturbation, on, "{country}");
        let deviation = if on { MAX_DEVIATION as u32 } else { 0 };
        assert_eq!(policy.perturbation_max_deviation, deviation, "{country}");
        assert_eq!(
            (
                policy.min_count,
                policy.min_contributors,
                policy.dominance_p
            ),
            (5, 3, 25)
        );
    }
}

#[tokio::test]
async fn without_perturbation_released_cells_are_the_exact_values() {
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| spec_with(c, *n, *seed, NO_PERTURBATION, RULES_V1))
        .collect();
    let fed = TestFederation::start(&specs).await;
    let records = node_records();
    let federation = fed.federation();
    assert_perturbation(&federation, false).await;

    let mut tally = Tally::default();
    for query in questions() {
        ask_and_check(&federation, &query, &records, Release::Exact, &mut tally).await;
    }
    assert_eq!(tally.moved, 0);
    // Every primary rule was exercised, and most cells were released.
    assert!(tally.released > 100, "{tally:?}");
    for rule in [
        SuppressionReason::BelowThreshold,
        SuppressionReason::TooFewContributors,
        SuppressionReason::Dominance,
    ] {
        assert!(tally.suppressed.contains_key(&rule), "{rule:?}: {tally:?}");
    }

    drop(federation);
    fed.stop().await;
}

#[tokio::test]
async fn with_perturbation_released_cells_stay_close_and_repeat_exactly() {
    let specs: Vec<_> = NODES
        .iter()
        .map(|(c, n, seed)| spec_with(c, *n, *seed, "", RULES_V1))
        .collect();
    let fed = TestFederation::start(&specs).await;
    let records = node_records();
    let federation = fed.federation();
    assert_perturbation(&federation, true).await;

    let mut tally = Tally::default();
    for query in questions() {
        let (first_id, first) = ask_and_check(
            &federation,
            &query,
            &records,
            Release::Perturbed,
            &mut tally,
        )
        .await;
        let (again_id, again) = ask_and_check(
            &federation,
            &query,
            &records,
            Release::Perturbed,
            &mut tally,
        )
        .await;
        assert_ne!(first_id, again_id);
        // The same records get the same noise: asking again teaches nothing new.
        assert_eq!(first, again, "{} by {:?}", query.unit(), query.group_by());
    }
    // Perturbation really moved values (it is not silently off).
    assert!(tally.moved > 10, "{tally:?}");
    assert!(tally.released > 100, "{tally:?}");

    drop(federation);
    fed.stop().await;
}

// ---------------------------------------------------------------------------------------------
// zCDP (the default mode)

/// Nodes of the zCDP tests: `(country, incidents, seed)`.
const ZCDP_NODES: [(&str, u64, u64); 3] = [("THA", 600, 31), ("IDN", 400, 32), ("MYS", 300, 33)];

/// The node default ρ (micro-ρ) when a query asks for none.
const DEFAULT_RHO_MICRO: u64 = 50_000;

fn parse(unit: &str, by: &str, margins: bool) -> Query {
    let raw = RawQuery {
        unit: unit.into(),
        group_by: by.split(',').map(str::to_owned).collect(),
        margins,
        ..RawQuery::default()
    };
    Query::parse(&raw, &QueryLimits::default()).unwrap()
}

/// Every node's budget per quarter, as `Describe` says: country → [(quarter, spent, left)].
async fn budgets(federation: &Federation) -> BTreeMap<String, Vec<(String, u64, u64)>> {
    vrs_coordinator::budget::budgets(federation)
        .await
        .into_iter()
        .map(|(country, d)| {
            let d = d.unwrap_or_else(|o| panic!("{country}: {o:?}"));
            assert_eq!(d.mode, ProtectionMode::Zcdp, "{country}");
            assert!(
                !d.budget.is_empty(),
                "{country}: a zCDP node publishes its budget"
            );
            let quarters = d
                .budget
                .iter()
                .map(|q| (q.quarter.clone(), q.rho_spent_micro, q.rho_left_micro))
                .collect();
            (country.to_string(), quarters)
        })
        .collect()
}

#[tokio::test]
async fn zcdp_regional_values_are_sums_of_noisy_values_with_se_the_root_of_summed_variances() {
    let fed = TestFederation::with_nodes(&ZCDP_NODES).await;
    let federation = fed.federation();
    let mut noisy_cells = 0;
    for query in [
        parse("incidents", "mode", false),
        parse("migrants", "sex,age_group", true),
    ] {
        let (query_id, results) = federation.ask(&query).await.unwrap();
        let regional = merge::merge(&query_id, query.unit(), query.group_by(), &results);
        assert!(regional.coverage.complete());
        // Every node releases the same data-independent universe, every cell noisy.
        let mut universe = None;
        for r in &results {
            let answer = answer_of(r);
            let privacy = answer.privacy.as_ref().expect("a zCDP answer has privacy");
            assert!(privacy.sigma > 0.0);
            assert_eq!(privacy.rho_micro, DEFAULT_RHO_MICRO);
            assert!(!privacy.quarters.is_empty());
            let keys: Vec<&Vec<String>> = answer.cells.iter().map(|c| &c.key).collect();
            assert!(
                answer
                    .cells
                    .iter()
                    .all(|c| matches!(c.value, CellValue::Noisy(_)))
            );
            match &universe {
                None => universe = Some(keys.iter().map(|k| (*k).clone()).collect::<Vec<_>>()),
                Some(u) => assert_eq!(&keys, &u.iter().collect::<Vec<_>>(), "{}", r.country),
            }
        }
        let universe = universe.unwrap();
        assert_eq!(
            regional.cells.iter().map(|c| &c.key).collect::<Vec<_>>(),
            universe.iter().collect::<Vec<_>>()
        );
        for cell in &regional.cells {
            let mut sum = 0i64;
            let mut variance = 0.0f64;
            for r in &results {
                let answer = answer_of(r);
                let sigma = answer.privacy.as_ref().unwrap().sigma;
                let node_cell = answer.cells.iter().find(|c| c.key == cell.key).unwrap();
                let CellValue::Noisy(v) = node_cell.value else {
                    unreachable!()
                };
                sum += v;
                variance += sigma * sigma;
                assert_eq!(
                    *cell.nodes.get(r.country.as_str()).unwrap(),
                    Contribution::Noisy { value: v, sigma },
                    "{:?}",
                    cell.key
                );
            }
            assert_eq!(cell.value, sum, "{:?}", cell.key);
            assert_eq!(cell.se, variance.sqrt(), "{:?}", cell.key);
            assert_eq!(cell.status, CellStatus::Noisy, "{:?}", cell.key);
            // Display: never a negative count.
            let text = cell.shown().text();
            assert!(!text.starts_with('-'), "{:?}: {text}", cell.key);
            noisy_cells += 1;
        }
        for n in &regional.nodes {
            assert_eq!(n.mode, Some(ProtectionMode::Zcdp), "{}", n.country);
            let p = n.privacy.as_ref().unwrap();
            assert_eq!(p.rho_charged_micro, DEFAULT_RHO_MICRO);
            assert!(!p.replayed);
        }
    }
    assert!(noisy_cells > 20, "{noisy_cells}");
    drop(federation);
    fed.stop().await;
}

#[tokio::test]
async fn a_dry_run_spends_nothing_and_the_same_query_id_then_answers() {
    let fed = TestFederation::with_nodes(&ZCDP_NODES).await;
    let federation = fed.federation();
    let query = parse("smugglers", "smuggler_role", false).with_rho_micro(70_000);
    let before = budgets(&federation).await;

    let (query_id, plans) = vrs_coordinator::budget::dry_run(&federation, &query, None)
        .await
        .unwrap();
    assert_eq!(plans.len(), ZCDP_NODES.len());
    for p in &plans {
        let plan = p
            .outcome
            .as_ref()
            .unwrap_or_else(|o| panic!("{}: {o:?}", p.country));
        assert!(plan.would_answer, "{}: {plan:?}", p.country);
        assert_eq!(plan.refusal, None);
        let privacy = plan.privacy.as_ref().unwrap();
        assert_eq!(privacy.rho_micro, 70_000);
        assert!(privacy.sigma > 0.0 && !privacy.replayed);
        assert!(plan.cells > 0);
    }
    let text = vrs_coordinator::budget::plan_text(&query_id, &plans);
    assert!(text.contains("0.070") && text.contains(&query_id), "{text}");
    // Nothing was spent.
    assert_eq!(budgets(&federation).await, before);

    // The same id is still fresh: the real query answers under it, and charges 0.07.
    let results = federation.ask_with_id(&query, &query_id).await;
    for r in &results {
        let answer = answer_of(r);
        assert_eq!(answer.privacy.as_ref().unwrap().rho_micro, 70_000);
    }
    let after = budgets(&federation).await;
    let mut charged = 0;
    for (country, quarters) in &after {
        for ((q, spent, left), (q0, spent0, left0)) in quarters.iter().zip(&before[country]) {
            assert_eq!(q, q0);
            // Every quarter of the declared coverage is touched by a query over all periods.
            assert_eq!(*spent, spent0 + 70_000, "{country} {q}");
            assert_eq!(*left, left0 - 70_000, "{country} {q}");
            charged += 1;
        }
    }
    assert!(charged > 0);

    // The budget command shows the spend of the query just made.
    let described = vrs_coordinator::budget::budgets(&federation).await;
    let csv = vrs_coordinator::budget::budget_csv(&described);
    let (country, quarters) = after.iter().next().unwrap();
    let (q, spent, left) = &quarters[0];
    let row = format!("{country},zcdp,{q},{spent},{left},");
    assert!(csv.contains(&row), "{row} not in\n{csv}");
    let table = vrs_coordinator::budget::budget_text(&described);
    assert!(table.contains("0.070"), "{table}");

    // A second dry run of the same query under a new id sees the stored release: free.
    let (_, again) = vrs_coordinator::budget::dry_run(&federation, &query, None)
        .await
        .unwrap();
    for p in &again {
        let plan = p.outcome.as_ref().unwrap();
        assert!(plan.privacy.as_ref().unwrap().replayed, "{}", p.country);
    }
    drop(federation);
    fed.stop().await;
}

#[tokio::test]
async fn a_universe_above_max_cells_is_refused_in_the_dry_run() {
    let fed = TestFederation::with_nodes(&ZCDP_NODES[..1]).await;
    let federation = fed.federation();
    let (_, plans) = vrs_coordinator::budget::dry_run(
        &federation,
        &parse("migrants", "route,quarter", false),
        None,
    )
    .await
    .unwrap();
    let plan = plans[0].outcome.as_ref().unwrap();
    assert!(!plan.would_answer);
    assert_eq!(plan.refusal.as_deref(), Some("UNIVERSE_TOO_LARGE"));
    drop(federation);
    fed.stop().await;
}

/// How the proxy spoils the real node's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    /// Forward it unchanged (the control).
    Nothing,
    /// List the first cell twice.
    DuplicateCell,
    /// Echo another query id.
    OtherQueryId,
    /// Send a digest of other cells.
    WrongDigest,
    /// Change one noisy value (the digest no longer matches the cells).
    ChangedValue,
}

/// A proxy with the real node's certificate in front of it: forwards every call and spoils
/// `Aggregate` responses.
struct Proxy {
    upstream: vrs_proto::pb::federation_client::FederationClient<tonic::transport::Channel>,
    spoil: Spoil,
}

#[tonic::async_trait]
impl vrs_proto::pb::federation_server::Federation for Proxy {
    async fn describe(
        &self,
        req: tonic::Request<vrs_proto::pb::DescribeRequest>,
    ) -> Result<tonic::Response<vrs_proto::pb::DescribeResponse>, tonic::Status> {
        self.upstream.clone().describe(req.into_inner()).await
    }

    async fn plan(
        &self,
        req: tonic::Request<vrs_proto::pb::AggregateRequest>,
    ) -> Result<tonic::Response<vrs_proto::pb::PlanResponse>, tonic::Status> {
        self.upstream.clone().plan(req.into_inner()).await
    }

    async fn fetch_helper_share(
        &self,
        req: tonic::Request<vrs_proto::pb::AggregateRequest>,
    ) -> Result<tonic::Response<vrs_proto::pb::HelperShareResponse>, tonic::Status> {
        self.upstream
            .clone()
            .fetch_helper_share(req.into_inner())
            .await
    }

    async fn aggregate(
        &self,
        req: tonic::Request<vrs_proto::pb::AggregateRequest>,
    ) -> Result<tonic::Response<vrs_proto::pb::AggregateResponse>, tonic::Status> {
        let mut r = self
            .upstream
            .clone()
            .aggregate(req.into_inner())
            .await?
            .into_inner();
        match self.spoil {
            Spoil::Nothing => {}
            Spoil::DuplicateCell => {
                let first = r.cells[0].clone();
                r.cells.insert(1, first);
            }
            Spoil::OtherQueryId => r.query_id = "0".repeat(32),
            Spoil::WrongDigest => r.answer_digest = "ab".repeat(32),
            Spoil::ChangedValue => {
                if let Some(vrs_proto::pb::cell::Outcome::Noisy(v)) = &mut r.cells[0].outcome {
                    *v += 1;
                }
            }
        }
        Ok(tonic::Response::new(r))
    }
}

#[tokio::test]
async fn responses_with_a_duplicate_key_another_query_id_or_a_wrong_digest_are_bad_responses() {
    use vrs_core::tls;
    let fed = TestFederation::with_nodes(&ZCDP_NODES[..1]).await;
    let query = parse("incidents", "mode", false);
    let upstream = tls::connect(
        &fed.addr("THA").to_string(),
        &tls::node_identity("THA"),
        vrs_tests::client_config(&fed.coordinator_tls()),
        vrs_tests::CONNECT_TIMEOUT,
    )
    .await
    .unwrap();
    for (spoil, why) in [
        (Spoil::Nothing, ""),
        (Spoil::DuplicateCell, "listed twice"),
        (Spoil::OtherQueryId, "another query id"),
        (Spoil::WrongDigest, "digest"),
        (Spoil::ChangedValue, "digest"),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = tls::server_config(&fed.node_tls("THA")).unwrap();
        let incoming = tls::incoming(listener, config, vrs_tests::CONNECT_TIMEOUT);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let proxy = Proxy {
            upstream: vrs_proto::pb::federation_client::FederationClient::new(upstream.clone()),
            spoil,
        };
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(vrs_proto::pb::federation_server::FederationServer::new(
                    proxy,
                ))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        let registry = fed.write_registry(
            &format!("proxy-{spoil:?}.toml"),
            &[vrs_tests::RegistryNode::new("THA", addr)],
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(3),
        );
        let federation = Federation::connect(&registry).unwrap();
        let (query_id, results) = federation.ask(&query).await.unwrap();
        match (&results[0].outcome, spoil) {
            (NodeOutcome::Answered(a), Spoil::Nothing) => {
                assert!(a.privacy.is_some());
            }
            (NodeOutcome::Refused { reason, message }, _) if spoil != Spoil::Nothing => {
                assert_eq!(reason, "BAD_RESPONSE", "{spoil:?}");
                assert!(message.contains(why), "{spoil:?}: {message}");
            }
            (other, _) => panic!("{spoil:?}: {other:?}"),
        }
        // A refused response is never merged.
        let regional = merge::merge(&query_id, query.unit(), query.group_by(), &results);
        assert_eq!(
            regional.cells.is_empty(),
            spoil != Spoil::Nothing,
            "{spoil:?}"
        );
        drop(federation);
        let _ = stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("the proxy stops")
            .unwrap()
            .unwrap();
    }
    fed.stop().await;
}

/// `vrs-coordinator describe --codes` lists each node's units, dimensions and values as the node
/// publishes them, periods included; a dimension the node does not publish says so, and a typo
/// is a usage error with a suggestion (issue 16, item 5).
#[tokio::test]
async fn describe_lists_each_nodes_codes() {
    use vrs_coordinator::cli::{CliError, describe_text};
    use vrs_core::cli::{CommandError, Status};

    let fed = TestFederation::start(&[vrs_tests::spec(
        "THA",
        60,
        71,
        "dimensions = [\"quarter\", \"mode\", \"fee_band\"]\n",
    )])
    .await;
    let federation = fed.federation();
    let described = federation.describe().await;
    let (country, node) = &described[0];
    let plain = describe_text(*country, node, None).unwrap();
    assert_eq!(plain.lines().count(), 1, "{plain}");
    let all = describe_text(*country, node, Some(None)).unwrap();
    assert!(all.starts_with(&plain), "{all}");
    assert!(all.contains("  units: incidents"), "{all}");
    assert!(all.contains("land, sea, air, mixed, unknown"), "{all}");
    assert!(all.contains("0-499, 500-999, 1000-2499"), "{all}");
    assert!(!all.contains("route"), "not published, not listed: {all}");
    let quarters = describe_text(*country, node, Some(Some("quarter"))).unwrap();
    let first = node.as_ref().unwrap().first_period.clone();
    let year = &first[..4];
    assert!(
        quarters
            .lines()
            .any(|l| l.trim().starts_with(&format!("{year}-Q"))),
        "the node's quarters: {quarters}"
    );
    let route = describe_text(*country, node, Some(Some("route"))).unwrap();
    assert!(route.contains("route: not published"), "{route}");
    let typo = describe_text(*country, node, Some(Some("rout"))).unwrap_err();
    assert!(matches!(typo, CliError::Query(_)), "{typo:?}");
    assert_eq!(typo.status(), Status::Usage);
    assert!(
        vrs_core::cli::error_line(&typo).contains("did you mean route?"),
        "{}",
        vrs_core::cli::error_line(&typo)
    );
    fed.stop().await;
}
