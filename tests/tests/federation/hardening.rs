//! Issue 12 hardening over the real path: a hostile node's text cannot act on the operator's
//! terminal.

use std::time::Duration;

use vrs_certs_dev::ExtraKind;
use vrs_coordinator::fanout::Federation;
use vrs_coordinator::{merge, output};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_core::tls;
use vrs_tests::{RegistryNode, SlowNode, TestFederation};

/// Escape sequences (clear screen, retitle, hide) and a bidi override in a node's message.
const HOSTILE: &str = "ok\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}[8mhidden\u{202e}txt.exe\r\nfake line";

#[tokio::test]
async fn a_node_message_with_control_characters_reaches_the_terminal_escaped() {
    let fed = TestFederation::with_nodes(&[("THA", 100, 91)]).await;
    let hostile = SlowNode::with_message(
        &fed.extra_tls(&tls::node_identity("IDN"), ExtraKind::Valid, "idn"),
        Duration::ZERO,
        HOSTILE,
    )
    .await;
    let registry = fed.write_registry(
        "hostile.toml",
        &[
            RegistryNode::new("THA", fed.addr("THA")),
            RegistryNode::new("IDN", hostile.addr()),
        ],
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let federation = Federation::connect(&registry).unwrap();
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["mode".into()],
        ..RawQuery::default()
    };
    let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
    let (id, results) = federation.ask(&q).await.unwrap();
    let regional = merge::merge(&id, q.unit(), q.group_by(), &results);
    let text = output::text(&regional, true);
    assert!(
        !text
            .chars()
            .any(|c| vrs_core::terminal::is_unsafe(c) && c != '\n'),
        "{text:?}"
    );
    assert!(
        text.contains("\\u{1b}[2J"),
        "the message is shown, escaped: {text}"
    );
    assert!(!text.contains("\nfake line"), "{text}");
    drop(federation);
    hostile.stop().await;
    fed.stop().await;
}

/// Issue 12, item 8: 1,100 idle TCP connections from one source (more than the node's 1,024
/// pending handshakes) do not lock the coordinator out: its handshakes complete and evict them.
#[tokio::test]
async fn idle_connections_do_not_lock_callers_out() {
    let fed = TestFederation::with_nodes(&[("THA", 100, 92)]).await;
    let addr = fed.addr("THA");
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(tcp)) => idle.push(tcp),
            _ => break,
        }
    }
    assert!(idle.len() > 1_024, "only {} idle connections", idle.len());
    let started = std::time::Instant::now();
    for i in 0..10 {
        let client = tokio::time::timeout(Duration::from_secs(4), fed.coordinator_client("THA"))
            .await
            .unwrap_or_else(|_| panic!("query {i}: no connection within 4 s"));
        let d = tokio::time::timeout(Duration::from_secs(4), client.describe())
            .await
            .unwrap_or_else(|_| panic!("query {i}: no answer within 4 s"))
            .unwrap();
        assert_eq!(d.country, "THA");
    }
    eprintln!(
        "10 callers served among {} idle connections in {:?}",
        idle.len(),
        started.elapsed()
    );
    drop(idle);
    fed.stop().await;
}

/// Issue 12, item 3: refusals from before the signature verified stored the whole envelope
/// (up to the transport limit) and every one was fsynced: ~2.2 GB a minute from one connection.
/// Now such a refusal keeps a digest and length, and past a burst a certificate's refusals are
/// counted into one `refused:FLOOD:<n>` entry.
#[tokio::test]
async fn a_flood_of_junk_cannot_fill_the_audit_log() {
    use vrs_node::audit::AuditLog;
    use vrs_node::service::{REFUSALS_AUDITED_BURST, REFUSALS_AUDITED_PER_MINUTE};

    // A generous rate limit, so that what is measured is the audit's own bound.
    let fed = vrs_tests::TestFederation::start(&[vrs_tests::spec(
        "THA",
        100,
        91,
        "[budget]\nrate_per_minute = 60000\nburst = 1000\n",
    )])
    .await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let sent: u64 = 300;
    // The bucket refills while the flood lasts: how many may be logged one by one depends on
    // how long sending took (a loaded machine sends slower), so the bound is computed from it.
    let flood_started = std::time::Instant::now();
    for _ in 0..sent {
        // 60 KB of junk under a broken signature.
        let mut request = signer.sign_bytes(vec![0x5a; 60_000]);
        request.signature[0] ^= 1;
        let status = client.aggregate(request).await.unwrap_err();
        assert_eq!(vrs_tests::reason(&status).as_deref(), Some("BAD_SIGNATURE"));
    }
    // The same junk sent to Plan is audited the same way.
    for _ in 0..sent {
        let mut request = signer.sign_bytes(vec![0x5a; 60_000]);
        request.signature[0] ^= 1;
        let status = client.plan(request).await.unwrap_err();
        assert_eq!(vrs_tests::reason(&status).as_deref(), Some("BAD_SIGNATURE"));
    }
    let refilled = (flood_started.elapsed().as_secs_f64() * f64::from(REFUSALS_AUDITED_PER_MINUTE)
        / 60.0)
        .ceil() as u64;
    // A good query after the flood: the flood's count is logged with it.
    client
        .aggregate(signer.request(
            "THA",
            vrs_tests::query("incidents", &["mode"]),
            vrs_tests::Tamper::None,
        ))
        .await
        .unwrap();
    let log = AuditLog::open_existing(&fed.node_dir("THA")).unwrap();
    assert!(log.verify().unwrap().is_ok());
    let entries = log.entries(1, 10_000).unwrap();
    let individual = entries
        .iter()
        .filter(|e| e.outcome == "refused:BAD_SIGNATURE")
        .count() as u64;
    let flood: u64 = entries
        .iter()
        .filter_map(|e| e.outcome.strip_prefix("refused:FLOOD:"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(
        individual <= u64::from(REFUSALS_AUDITED_BURST) + refilled + 1,
        "{individual} logged one by one; burst {REFUSALS_AUDITED_BURST}, {refilled} refilled"
    );
    let outcomes: std::collections::BTreeMap<&str, usize> =
        entries.iter().fold(Default::default(), |mut m, e| {
            *m.entry(e.outcome.as_str()).or_default() += 1;
            m
        });
    assert_eq!(
        individual + flood,
        2 * sent,
        "every refusal is accounted for: {outcomes:?}"
    );
    assert!(
        entries.iter().all(|e| e.envelope_hex.len() < 400),
        "no junk bytes kept"
    );
    // The answer and the flood's count are the last two entries.
    assert!(
        entries
            .iter()
            .rev()
            .take(2)
            .any(|e| e.outcome == "answered"),
        "{outcomes:?}"
    );
    drop(client);
    fed.stop().await;
}

/// A flood that stops, with no later request from its certificate, is still logged: the health
/// probe writes the counted refusals (before: they waited in memory for the next entry, and were
/// lost when the node stopped).
#[tokio::test]
async fn a_flood_that_stops_is_still_logged() {
    use vrs_node::audit::AuditLog;
    let fed = vrs_tests::TestFederation::start(&[vrs_tests::spec(
        "THA",
        100,
        92,
        "[budget]\nrate_per_minute = 60000\nburst = 1000\n",
    )])
    .await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let sent: u64 = 250;
    for _ in 0..sent {
        let mut request = signer.sign_bytes(vec![0x5a; 100]);
        request.signature[0] ^= 1;
        client.aggregate(request).await.unwrap_err();
    }
    let accounted = || {
        let log = AuditLog::open_existing(&fed.node_dir("THA")).unwrap();
        log.entries(1, 10_000)
            .unwrap()
            .iter()
            .map(|e| match e.outcome.strip_prefix("refused:FLOOD:") {
                Some(n) => n.parse::<u64>().unwrap(),
                None => u64::from(e.outcome == "refused:BAD_SIGNATURE"),
            })
            .sum::<u64>()
    };
    let mut seen = 0;
    for _ in 0..40 {
        seen = accounted();
        if seen == sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(seen, sent, "every refusal of the flood is in the log");
    drop(client);
    fed.stop().await;
}

/// ρ spent on quarter `q` (`YYYY-Qn`), as a node describes it.
fn rho_spent(described: &vrs_proto::pb::DescribeResponse, q: &str) -> u64 {
    described
        .budget
        .iter()
        .find(|b| b.quarter == q)
        .map(|b| b.rho_spent_micro)
        .expect("the quarter is in the description")
}

fn incidents_in(year: &str) -> vrs_proto::pb::Query {
    vrs_proto::pb::Query {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        period_from: year.into(),
        period_to: year.into(),
        ..vrs_proto::pb::Query::default()
    }
}

/// Issue 12, item 5: a caller that goes away, and work that waited past its deadline. The audit
/// log's write lock is held from outside (as a slow disk would hold it), so both queries wait in
/// the node. The one whose caller left is finished and logged `cancelled` (before: the handler
/// was dropped and the blocking release logged `answered`); the one whose deadline passed is
/// dropped before any record is read, logged `refused:DEADLINE_EXCEEDED`, and spends no budget
/// (before: answered a second after its caller had given up).
#[tokio::test]
async fn a_caller_that_goes_away_is_logged_cancelled_and_late_work_is_dropped() {
    let fed = TestFederation::start(&[vrs_tests::spec("THA", 200, 21, "")]).await;
    let dir = fed.node_dir("THA");
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let blocker = rusqlite::Connection::open(dir.join("audit.sqlite")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let gone = signer.envelope("THA", incidents_in("2022"));
    let abandoned = client
        .aggregate_abandoned(
            signer.sign(&gone),
            Duration::from_secs(20),
            Duration::from_millis(300),
        )
        .await;
    assert!(
        abandoned.is_none(),
        "the node answered while its log was locked"
    );

    let late = signer.envelope("THA", incidents_in("2023"));
    let refused = client
        .aggregate_abandoned(
            signer.sign(&late),
            Duration::from_millis(500),
            Duration::from_secs(10),
        )
        .await
        .expect("the deadline ends the call")
        .unwrap_err();
    assert!(
        matches!(
            refused.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    blocker.execute_batch("COMMIT").unwrap();

    let outcome_of = |id: &str| -> Option<(String, String)> {
        let log = vrs_node::audit::AuditLog::open_existing(&dir).unwrap();
        log.entries(1, 10_000)
            .unwrap()
            .into_iter()
            .find(|e| e.query_id == id)
            .map(|e| (e.outcome, e.answer_digest))
    };
    let mut found = (None, None);
    for _ in 0..100 {
        found = (outcome_of(&gone.query_id), outcome_of(&late.query_id));
        if found.0.is_some() && found.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (cancelled, dropped) = (found.0.expect("an entry for the abandoned query"), found.1);
    assert_eq!(cancelled.0, "cancelled");
    assert_eq!(
        cancelled.1.len(),
        64,
        "the release was computed and kept: its digest is logged"
    );
    let dropped = dropped.expect("an entry for the late query");
    assert_eq!(
        dropped,
        ("refused:DEADLINE_EXCEEDED".to_string(), String::new())
    );

    // The late query spent nothing; the abandoned release did (its noise was drawn).
    let described = client.describe().await.unwrap();
    let spent = |q: &str| rho_spent(&described, q);
    assert!(spent("2022-Q1") > 0);
    assert_eq!(spent("2023-Q1"), 0);
    let log = vrs_node::audit::AuditLog::open_existing(&dir).unwrap();
    assert!(log.verify().unwrap().is_ok());
    drop(client);
    fed.stop().await;
}

/// Issue 15, item 3: excess work is refused at once, never queued past its deadline. The node
/// works on one call at a time and lets one more wait; the call in its slot is held inside the
/// node (the audit log's write lock is taken from outside, as a slow disk would hold it). Of
/// three calls, one works, one waits, and one is told `BUSY` at once (before: the node queued
/// calls on their connection without limit and answered them after their callers had waited out
/// the lock). A call that could not start before its deadline is told `BUSY` on arrival (before:
/// it waited in that queue until its caller's own deadline ended it). The refused calls spend
/// nothing and are counted in the log, without a durable write each while the node is busy.
#[tokio::test]
async fn excess_work_is_refused_at_once_not_queued() {
    let mut spec = vrs_tests::spec("THA", 200, 22, "");
    spec.server = "max_concurrent_requests = 1\nmax_queued_requests = 1\n".into();
    let fed = TestFederation::start(&[spec]).await;
    let dir = fed.node_dir("THA");
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let blocker = rusqlite::Connection::open(dir.join("audit.sqlite")).unwrap();
    let ask = |period: &str, deadline: Duration| {
        let (client, request) = (
            client.clone(),
            signer.sign(&signer.envelope("THA", incidents_in(period))),
        );
        tokio::spawn(async move {
            client
                .aggregate_abandoned(request, deadline, Duration::from_secs(20))
                .await
                .expect("the node or the deadline ends the call")
        })
    };
    let busy = |r: &Result<vrs_proto::pb::AggregateResponse, tonic::Status>| matches!(r, Err(s) if vrs_tests::reason(s).as_deref() == Some("BUSY"));

    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let periods = ["2021", "2022", "2023"];
    let mut calls: Vec<_> = periods
        .iter()
        .map(|p| ask(p, Duration::from_secs(20)))
        .collect();
    // Exactly one is refused, and at once: the other two are still in the node.
    let mut refused = None;
    for _ in 0..40 {
        if let Some(i) = calls.iter().position(|c| c.is_finished()) {
            refused = Some(i);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = refused.expect("a call is refused while the slot and the queue are taken");
    let first = calls.remove(refused).await.unwrap();
    assert!(busy(&first), "{first:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        calls.iter().all(|c| !c.is_finished()),
        "the working and the waiting call are still in the node"
    );
    blocker.execute_batch("COMMIT").unwrap();
    for c in calls {
        let answered = c.await.unwrap();
        assert!(answered.is_ok(), "{answered:?}");
    }

    // The slot held again; a call due in 150 ms cannot start in time (a slot is now held for
    // over 150 ms on average, the first call having held it for 1.5 s): BUSY on arrival, before
    // its deadline (the caller's own timer would end it as DEADLINE_EXCEEDED).
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let working = ask("2024-Q1", Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = ask("2024-Q3", Duration::from_millis(150)).await.unwrap();
    assert!(busy(&late), "{late:?}");
    blocker.execute_batch("COMMIT").unwrap();
    assert!(working.await.unwrap().is_ok());

    // Nothing refused was spent; both refusals are counted in the log, which verifies.
    let described = client.describe().await.unwrap();
    let spent = |q: &str| rho_spent(&described, q);
    assert_eq!(spent(&format!("{}-Q1", periods[refused])), 0);
    assert_eq!(spent("2024-Q3"), 0);
    assert!(spent("2024-Q1") > 0);
    let log = vrs_node::audit::AuditLog::open_existing(&dir).unwrap();
    let counted: u64 = log
        .entries(1, 10_000)
        .unwrap()
        .iter()
        .filter_map(|e| {
            e.outcome
                .strip_prefix("refused:FLOOD:")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(counted, 2);
    assert!(log.verify().unwrap().is_ok());
    drop(client);
    fed.stop().await;
}

/// Issue 12, item 8 (the coordinator's side): a node that cannot be reached when the query goes
/// out — restarting, or its handshake slots briefly taken — is tried again within its deadline
/// (before: `unreachable` at the first refused connection).
#[tokio::test]
async fn the_coordinator_retries_a_connection_within_the_deadline() {
    let fed = TestFederation::start(&[vrs_tests::spec("THA", 150, 31, "")]).await;
    let addr = vrs_tests::unused_addr();
    let registry = fed.write_registry(
        "late.toml",
        &[RegistryNode::new("THA", addr)],
        Duration::from_secs(8),
        Duration::from_secs(2),
    );
    let federation = Federation::connect(&registry).unwrap();
    // The node starts listening 700 ms after the query is sent.
    let config =
        vrs_node::config::NodeConfig::load(&fed.node_dir("THA").join("node.toml")).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        vrs_node::server::serve(listener, &config, async {
            let _ = stopped.await;
        })
        .await
    });
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        period_from: "2023".into(),
        period_to: "2023".into(),
        ..RawQuery::default()
    };
    let query = Query::parse(&raw, &QueryLimits::default()).unwrap();
    let started = std::time::Instant::now();
    let (_, results) = federation.ask(&query).await.unwrap();
    assert!(
        matches!(
            results[0].outcome,
            vrs_coordinator::fanout::NodeOutcome::Answered(_)
        ),
        "{:?}",
        results[0].outcome
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    fed.stop().await;
}
