//! Standard gRPC health and reflection on a node, over the same mutual TLS as the service.

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use vrs_tests::{TestFederation, no_certificate_config};

#[tokio::test]
async fn health_and_reflection_answer_the_coordinator_over_mutual_tls() {
    let fed = TestFederation::with_nodes(&[("THA", 100, 61)]).await;
    let client = fed.coordinator_client("THA").await;

    assert_eq!(client.health("").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        client.health("vrs.federation.v2.Federation").await.unwrap(),
        ServingStatus::Serving
    );
    let unknown = client.health("no.such.Service").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let services = client.reflection_services().await.unwrap();
    for name in ["vrs.federation.v2.Federation", "grpc.health.v1.Health"] {
        assert!(services.iter().any(|s| s == name), "{name} in {services:?}");
    }

    // Health is behind the same mutual TLS: no client certificate, no answer.
    let anonymous = fed
        .client("THA", no_certificate_config(&fed.pki().ca_path()))
        .await
        .unwrap();
    let refused = anonymous.health("").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unknown, "{refused:?}");

    fed.stop().await;
}

/// Issue 12, item 11: health follows the audit log. Nothing is released without its audit
/// entry, so a node whose log takes no writes says NOT_SERVING (before: SERVING while every
/// query failed), and SERVING again once the log takes a write.
#[tokio::test]
async fn health_says_not_serving_while_the_audit_log_takes_no_writes() {
    use std::time::Duration;
    let fed = TestFederation::with_nodes(&[("THA", 100, 62)]).await;
    let client = fed.coordinator_client("THA").await;
    let dir = fed.node_dir("THA");
    let status = || async {
        (
            client.health("").await.unwrap(),
            client.health("vrs.federation.v2.Federation").await.unwrap(),
        )
    };
    let becomes = |want: ServingStatus| async move {
        for _ in 0..80 {
            if status().await == (want, want) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    };
    assert_eq!(
        status().await,
        (ServingStatus::Serving, ServingStatus::Serving)
    );

    // The file's write lock held elsewhere (a stuck writer): no audit entry can be written.
    let blocker = rusqlite::Connection::open(dir.join("audit.sqlite")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(
        becomes(ServingStatus::NotServing).await,
        "still serving while the log is locked"
    );
    blocker.execute_batch("COMMIT").unwrap();
    assert!(
        becomes(ServingStatus::Serving).await,
        "not serving once the log is free"
    );

    // Every audit write refused (as on a full disk): the first query that cannot be logged
    // fails, and health says so until a write succeeds again.
    blocker
        .execute_batch(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    let signer = fed.signer();
    let query = || vrs_proto::pb::Query {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        period_from: "2023".into(),
        period_to: "2023".into(),
        ..vrs_proto::pb::Query::default()
    };
    let failed = client
        .aggregate(signer.sign(&signer.envelope("THA", query())))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");
    assert!(
        becomes(ServingStatus::NotServing).await,
        "serving while no entry can be written"
    );
    blocker.execute_batch("DROP TRIGGER refuse_all").unwrap();
    client
        .aggregate(signer.sign(&signer.envelope("THA", query())))
        .await
        .unwrap();
    assert!(becomes(ServingStatus::Serving).await);
    drop(client);
    fed.stop().await;
}
