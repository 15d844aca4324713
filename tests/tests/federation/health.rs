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
