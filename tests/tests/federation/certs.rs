//! The certificate matrix against a real node: who may connect and call, and who may not. Every
//! refused client is followed by a good call, so a refusal never takes the node down.
//!
//! Under TLS 1.3 the node checks the client certificate after the client has finished its side of
//! the handshake, so a refused client certificate shows up on the first call (a transport error
//! carrying the node's TLS alert), not at connect. A certificate the node accepts but whose
//! identity is not an allowed caller reaches the service and is refused there, with a reason.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use vrs_certs_dev::ExtraKind;
use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_core::tls::{self, TlsError};
use vrs_tests::{
    RegistryNode, Tamper, TestFederation, client_config, coordinator_identity,
    no_certificate_config, query, reason, tls12_config,
};

/// How a client's first `Describe` went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The node answered.
    Answered,
    /// `connect` failed; the error and its causes.
    ConnectFailed(String),
    /// Connected, but the first call failed in TLS: the innermost cause (the node's alert).
    TlsRefused(String),
    /// The service refused: gRPC code and the node's reason.
    Refused(Code, String),
}

/// An error and all its causes, joined.
fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

async fn describe_with(fed: &TestFederation, config: Arc<rustls::ClientConfig>) -> Outcome {
    let client = match fed.client("THA", config).await {
        Ok(c) => c,
        Err(e) => return Outcome::ConnectFailed(causes(&e).join(": ")),
    };
    match client.describe().await {
        Ok(d) => {
            assert_eq!(d.country, "THA");
            Outcome::Answered
        }
        Err(status) => match reason(&status) {
            Some(r) => Outcome::Refused(status.code(), r),
            None => {
                assert_eq!(status.code(), Code::Unknown, "{status:?}");
                let innermost = status
                    .source()
                    .map(|s| causes(s).pop().unwrap_or_default())
                    .unwrap_or_default();
                Outcome::TlsRefused(innermost)
            }
        },
    }
}

/// The coordinator is still served.
async fn good_call(fed: &TestFederation) {
    let outcome = describe_with(fed, client_config(&fed.coordinator_tls())).await;
    assert_eq!(
        outcome,
        Outcome::Answered,
        "the coordinator is no longer served"
    );
}

fn alert(name: &str) -> Outcome {
    Outcome::TlsRefused(format!("received fatal alert: {name}"))
}

#[tokio::test]
async fn refused_client_certificates_never_reach_the_service() {
    let fed = TestFederation::with_nodes(&[("THA", 200, 31)]).await;
    good_call(&fed).await;
    let coordinator = coordinator_identity();
    let rogue = fed.extra_tls("coordinator.rogue.vrs.test", ExtraKind::Valid, "rogue");
    let cases = [
        (
            "no client certificate",
            no_certificate_config(&fed.pki().ca_path()),
            alert("CertificateRequired"),
        ),
        (
            // The unrelated CA has the same name, so the chain fails on its signature.
            "a client certificate from another CA",
            client_config(&fed.extra_tls(&coordinator, ExtraKind::OtherCa, "other-ca")),
            alert("DecryptError"),
        ),
        (
            "an expired client certificate",
            client_config(&fed.extra_tls(&coordinator, ExtraKind::Expired, "expired")),
            alert("CertificateExpired"),
        ),
        (
            // Node certificates carry only the serverAuth extended key usage: the node refuses
            // one as a client certificate in the handshake, before any caller check.
            "a node's certificate as a client certificate",
            client_config(&fed.node_tls("THA")),
            alert("UnsupportedCertificate"),
        ),
        (
            "a valid certificate whose identity is not an allowed caller",
            client_config(&rogue),
            Outcome::Refused(Code::PermissionDenied, "CALLER_NOT_ALLOWED".into()),
        ),
        (
            // Even with the clientAuth usage, a node's identity is not a coordinator's.
            "a node identity with a client-auth certificate",
            client_config(&fed.extra_tls(
                &tls::node_identity("THA"),
                ExtraKind::Valid,
                "node-as-client",
            )),
            Outcome::Refused(Code::PermissionDenied, "CALLER_NOT_ALLOWED".into()),
        ),
    ];
    for (what, config, expected) in cases {
        assert_eq!(describe_with(&fed, config).await, expected, "{what}");
        good_call(&fed).await;
    }

    // A caller that is not allowed cannot query either, even with a correctly signed envelope
    // naming itself or the coordinator as issuer.
    let client = fed.client("THA", client_config(&rogue)).await.unwrap();
    let signer = fed.signer();
    for issuer in ["coordinator.rogue.vrs.test".to_owned(), coordinator] {
        let request = signer.request(
            "THA",
            query("incidents", &["mode"]),
            Tamper::Issuer(issuer.clone()),
        );
        let status = client.aggregate(request).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "issuer {issuer}");
        assert_eq!(reason(&status).as_deref(), Some("CALLER_NOT_ALLOWED"));
    }

    // The coordinator still gets answers.
    let client = fed.coordinator_client("THA").await;
    let answer = client
        .aggregate(signer.request("THA", query("incidents", &["mode"]), Tamper::None))
        .await
        .unwrap();
    assert!(!answer.cells.is_empty());
    fed.stop().await;
}

/// Issue 12, item 7: a coordinator certificate under an intermediate the federation CA issued
/// (the CA's `pathlen:0` forbids it), or naming two DNS identities, never reaches the service.
#[tokio::test]
async fn a_coordinator_certificate_via_an_intermediate_or_with_two_names_is_refused() {
    let fed = TestFederation::with_nodes(&[("THA", 100, 33)]).await;
    let coordinator = coordinator_identity();
    for (kind, name) in [
        (ExtraKind::ViaIntermediate, "via-intermediate"),
        (ExtraKind::TwoDnsNames, "two-names"),
    ] {
        let outcome = describe_with(
            &fed,
            client_config(&fed.extra_tls(&coordinator, kind, name)),
        )
        .await;
        assert!(
            matches!(outcome, Outcome::TlsRefused(_)),
            "{kind:?}: {outcome:?}"
        );
        good_call(&fed).await;
    }
    fed.stop().await;
}

#[tokio::test]
async fn wrong_protocols_and_wrong_server_identities_are_refused() {
    let fed = TestFederation::with_nodes(&[("THA", 200, 32)]).await;
    let addr = fed.addr("THA");

    // A client that speaks only TLS 1.2: the TLS 1.3-only node ends the handshake.
    let outcome = describe_with(&fed, tls12_config(&fed.coordinator_tls())).await;
    let Outcome::ConnectFailed(why) = outcome else {
        panic!("a TLS 1.2 client got {outcome:?}");
    };
    assert!(
        why.ends_with("received fatal alert: ProtocolVersion"),
        "{why}"
    );
    good_call(&fed).await;

    // Plaintext HTTP/2 (gRPC without TLS) to the TLS port.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    if let Ok(channel) = plain.connect().await {
        let mut client = vrs_proto::pb::federation_client::FederationClient::new(channel);
        let call = client.describe(vrs_proto::pb::DescribeRequest {});
        let status = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the plaintext call ends")
            .expect_err("a plaintext call was answered");
        assert_eq!(status.code(), Code::Unknown, "{status:?}");
        assert_eq!(reason(&status), None, "the service saw a plaintext call");
    }
    good_call(&fed).await;

    // The coordinator dials the THA node expecting the IDN node: refused at connect.
    let config = client_config(&fed.coordinator_tls());
    let err = tls::connect(
        &addr.to_string(),
        &tls::node_identity("IDN"),
        config,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TlsError::Connect { .. }), "{err}");
    let why = causes(&err).join(": ");
    assert!(
        why.contains("certificate not valid for name \"node.idn.vrs.test\""),
        "{why}"
    );

    // The same through the fan-out: a registry whose THA entry expects another identity marks
    // that node unreachable and asks nothing of it.
    let registry = fed.write_registry(
        "wrong-identity.toml",
        &[RegistryNode {
            identity: Some(tls::node_identity("IDN")),
            ..RegistryNode::new("THA", addr)
        }],
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    let federation = Federation::connect(&registry).unwrap();
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["mode".into()],
        ..RawQuery::default()
    };
    let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
    let (_, results) = federation.ask(&q).await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(
        matches!(&results[0].outcome, NodeOutcome::Unreachable(_)),
        "{:?}",
        results[0].outcome
    );
    drop(federation);

    good_call(&fed).await;
    fed.stop().await;
}
