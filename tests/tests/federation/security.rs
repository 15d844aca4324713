//! Node-side protections that go beyond one envelope: revocation reloaded without a restart,
//! per-caller rate limits and daily budgets, and manual approval — each refusal audited.

use tonic::Code;
use vrs_certs_dev::ExtraKind;
use vrs_coordinator::fanout::NodeOutcome;
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_core::signing::SigningKey;
use vrs_node::audit::AuditLog;
use vrs_node::revocation::fingerprint;
use vrs_tests::{NodeClient, Signer, TestFederation, client_config, query, reason, spec};

const SECOND: &str = "coordinator.second.vrs.test";

fn audit_outcomes(fed: &TestFederation, country: &str) -> Vec<String> {
    let log = AuditLog::open_existing(&fed.node_dir(country)).unwrap();
    assert_eq!(log.verify().unwrap().map(|_| ()), Ok(()), "the chain holds");
    log.entries(1, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| e.outcome)
        .collect()
}

async fn refused_with(
    client: &NodeClient,
    request: vrs_proto::pb::AggregateRequest,
) -> (Code, String) {
    let status = client
        .aggregate(request)
        .await
        .expect_err("the node answered");
    (status.code(), reason(&status).unwrap_or_default())
}

#[tokio::test]
async fn revoked_keys_and_certificates_are_refused_without_a_restart() {
    let fed = TestFederation::with_nodes(&[("THA", 300, 71)]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let q = || query("incidents", &["mode"]);
    client
        .aggregate(signer.request("THA", q(), vrs_tests::Tamper::None))
        .await
        .unwrap();

    let revoked = fed.node_dir("THA").join("revoked.toml");
    std::fs::write(
        &revoked,
        format!("signing_keys = [\"{}\"]\n", signer.key_id()),
    )
    .unwrap();
    assert_eq!(
        refused_with(&client, signer.request("THA", q(), vrs_tests::Tamper::None)).await,
        (Code::PermissionDenied, "REVOKED".to_string())
    );

    let cert_pem = std::fs::read(fed.coordinator_tls().cert).unwrap();
    let der = x509_parser::pem::parse_x509_pem(&cert_pem)
        .unwrap()
        .1
        .contents;
    std::fs::write(
        &revoked,
        format!("certificates = [\"{}\"]\n", fingerprint(&der)),
    )
    .unwrap();
    assert_eq!(
        refused_with(&client, signer.request("THA", q(), vrs_tests::Tamper::None)).await,
        (Code::PermissionDenied, "REVOKED".to_string())
    );
    let status = client
        .describe()
        .await
        .expect_err("a revoked certificate may not describe");
    assert_eq!(reason(&status).as_deref(), Some("REVOKED"));

    // A broken list keeps the last good one: the certificate stays revoked.
    std::fs::write(&revoked, "certificates = [oops\n").unwrap();
    assert_eq!(
        refused_with(&client, signer.request("THA", q(), vrs_tests::Tamper::None))
            .await
            .1,
        "REVOKED"
    );

    // Fails closed (issue 12): a list that cannot be read, or that is gone (deleted, or between
    // the two steps of a rename), keeps the last good one too.
    std::fs::remove_file(&revoked).unwrap();
    std::fs::create_dir(&revoked).unwrap();
    assert_eq!(
        refused_with(&client, signer.request("THA", q(), vrs_tests::Tamper::None))
            .await
            .1,
        "REVOKED",
        "an unreadable list un-revoked the certificate"
    );
    std::fs::remove_dir(&revoked).unwrap();
    assert_eq!(
        refused_with(&client, signer.request("THA", q(), vrs_tests::Tamper::None))
            .await
            .1,
        "REVOKED",
        "a missing list un-revoked the certificate"
    );

    // Only a list that parses changes what is revoked: an empty one lifts the revocation.
    std::fs::write(&revoked, "certificates = []\n").unwrap();
    client
        .aggregate(signer.request("THA", q(), vrs_tests::Tamper::None))
        .await
        .unwrap();

    let outcomes = audit_outcomes(&fed, "THA");
    assert_eq!(
        outcomes,
        [
            "answered",
            "refused:REVOKED",
            "refused:REVOKED",
            "refused:REVOKED",
            "refused:REVOKED",
            "refused:REVOKED",
            "answered"
        ]
    );
    fed.stop().await;
}

#[tokio::test]
async fn a_node_whose_configured_revocation_list_cannot_be_read_refuses_to_start() {
    let fed = TestFederation::with_nodes(&[("THA", 50, 72)]).await;
    let dir = fed.node_dir("THA");
    let config_path = dir.join("node.toml");
    let base = std::fs::read_to_string(&config_path).unwrap();
    let try_serve = |text: String| {
        std::fs::write(&config_path, text).unwrap();
        let config = vrs_node::config::NodeConfig::load(&dir).unwrap();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            // Shut down at once: a node that starts returns Ok.
            let served = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                vrs_node::server::serve(listener, &config, std::future::ready(())),
            )
            .await
            .expect("serve returns");
            served.map_err(|e| e.to_string())
        }
    };
    // Configured but missing, configured but a directory, configured but unparseable.
    std::fs::create_dir(dir.join("revoked-dir.toml")).unwrap();
    std::fs::write(dir.join("broken.toml"), "certificates = [oops\n").unwrap();
    for file in ["absent.toml", "revoked-dir.toml", "broken.toml"] {
        let text = format!("{base}\n[revocation]\nfile = \"{file}\"\n");
        let err = try_serve(text)
            .await
            .expect_err(&format!("a node started with revocation file {file}"));
        assert!(err.contains("revocation"), "{file}: {err}");
    }
    // The default file (not configured) may be absent: a fresh node has none.
    try_serve(base.clone()).await.unwrap();
    std::fs::write(&config_path, base).unwrap();
    fed.stop().await;
}

#[tokio::test]
async fn a_flood_is_refused_while_another_caller_is_served() {
    let second_key = SigningKey::from_pkcs8(&vrs_core::signing::generate_pkcs8().unwrap()).unwrap();
    let policy = format!(
        "[budget]\nrate_per_minute = 6\nburst = 5\ndaily_queries = 1000\n\n[[callers]]\nidentity = \"{SECOND}\"\nsigning_keys = [\"{}\"]\n",
        second_key.public_key().to_hex()
    );
    let fed = TestFederation::start(&[spec("THA", 300, 72, &policy)]).await;
    let flooder = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    let second_tls = fed.extra_tls(SECOND, ExtraKind::Valid, "second");
    let second = fed.client("THA", client_config(&second_tls)).await.unwrap();
    let second_signer = Signer::new(second_key, SECOND.to_string());

    let mut answered = 0;
    let mut limited = 0;
    for _ in 0..20 {
        match flooder
            .aggregate(signer.request(
                "THA",
                query("incidents", &["mode"]),
                vrs_tests::Tamper::None,
            ))
            .await
        {
            Ok(_) => answered += 1,
            Err(status) => {
                assert_eq!(
                    (status.code(), reason(&status).as_deref()),
                    (Code::ResourceExhausted, Some("RATE_LIMITED"))
                );
                limited += 1;
            }
        }
    }
    // The burst (5) plus at most one token refilled while the flood ran.
    assert!((5..=6).contains(&answered), "{answered} answered");
    assert_eq!(answered + limited, 20);
    // The other caller has its own bucket.
    for _ in 0..3 {
        second
            .aggregate(second_signer.request(
                "THA",
                query("incidents", &["mode"]),
                vrs_tests::Tamper::None,
            ))
            .await
            .expect("the second caller is served");
    }
    let outcomes = audit_outcomes(&fed, "THA");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| *o == "refused:RATE_LIMITED")
            .count(),
        limited
    );
    fed.stop().await;
}

#[tokio::test]
async fn the_daily_budget_is_counted_from_the_audit_log() {
    let fed = TestFederation::start(&[spec("THA", 300, 73, "[budget]\ndaily_queries = 2\n")]).await;
    let client = fed.coordinator_client("THA").await;
    let signer = fed.signer();
    for _ in 0..2 {
        client
            .aggregate(signer.request(
                "THA",
                query("incidents", &["mode"]),
                vrs_tests::Tamper::None,
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        refused_with(
            &client,
            signer.request(
                "THA",
                query("incidents", &["mode"]),
                vrs_tests::Tamper::None
            )
        )
        .await,
        (Code::ResourceExhausted, "DAILY_BUDGET_SPENT".to_string())
    );
    fed.stop().await;
}

#[tokio::test]
async fn manual_approval_holds_then_answers_or_denies() {
    let fed = TestFederation::start(&[
        spec("THA", 400, 74, "[approval]\nmode = \"manual\"\n"),
        spec("IDN", 400, 75, ""),
    ])
    .await;
    let federation = fed.federation();
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["mode".into()],
        ..RawQuery::default()
    };
    let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
    let (id, first) = federation.ask(&q).await.unwrap();
    assert_eq!(
        first[0].outcome,
        NodeOutcome::PendingApproval,
        "THA holds it"
    );
    assert!(
        matches!(first[1].outcome, NodeOutcome::Answered(_)),
        "IDN answers at once"
    );

    // Asking again before a decision: still pending.
    let again = federation.ask_with_id(&q, &id).await;
    assert_eq!(again[0].outcome, NodeOutcome::PendingApproval);

    let mut log = AuditLog::open(&fed.node_dir("THA")).unwrap();
    let held = log.pending(false).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].query_id, id);
    assert!(
        held[0].summary.contains("incidents by [mode]"),
        "{}",
        held[0].summary
    );
    log.decide(&id, "approved", 0).unwrap();

    let collected = federation.ask_with_id(&q, &id).await;
    let NodeOutcome::Answered(answer) = &collected[0].outcome else {
        panic!("approved query not answered: {:?}", collected[0].outcome);
    };
    assert!(!answer.cells.is_empty());
    // Once answered, the id is spent.
    let replay = federation.ask_with_id(&q, &id).await;
    assert!(
        matches!(&replay[0].outcome, NodeOutcome::Refused { reason, .. } if reason == "REPLAYED_QUERY_ID"),
        "{:?}",
        replay[0].outcome
    );

    // A denied query is refused with its reason.
    let (denied_id, _) = federation.ask(&q).await.unwrap();
    log.decide(&denied_id, "denied", 0).unwrap();
    let denied = federation.ask_with_id(&q, &denied_id).await;
    assert!(
        matches!(&denied[0].outcome, NodeOutcome::Refused { reason, .. } if reason == "DENIED_BY_OPERATOR"),
        "{:?}",
        denied[0].outcome
    );

    // The same id with a different question is refused.
    let other = Query::parse(
        &RawQuery {
            unit: "migrants".into(),
            ..RawQuery::default()
        },
        &QueryLimits::default(),
    )
    .unwrap();
    let (held_id, _) = federation.ask(&q).await.unwrap();
    let mismatch = federation.ask_with_id(&other, &held_id).await;
    assert!(
        matches!(&mismatch[0].outcome, NodeOutcome::Refused { reason, .. } if reason == "QUERY_MISMATCH"),
        "{:?}",
        mismatch[0].outcome
    );
    drop(log);
    let outcomes = audit_outcomes(&fed, "THA");
    assert_eq!(outcomes.iter().filter(|o| *o == "answered").count(), 1);
    assert!(outcomes.contains(&"pending_approval".to_string()));
    fed.stop().await;
}
