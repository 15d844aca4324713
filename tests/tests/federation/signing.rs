//! Signed-query checks over real mutual TLS: every way an envelope can be wrong is refused with
//! its own stable reason, refusals never carry data, every answer and refusal is in the node's
//! hash-chained audit log, and the node keeps answering good queries.

use std::collections::BTreeSet;

use prost::Message;
use tonic::Code;
use vrs_core::query::{Dimension, Unit};
use vrs_node::audit::AuditLog;
use vrs_proto::pb;
use vrs_tests::{NodeClient, Signer, Tamper, TestFederation, coordinator_identity, query, reason};

use crate::reference;

const COUNTRY: &str = "THA";
const INCIDENTS: u64 = 400;
const SEED: u64 = 51;

/// The requests sent to the node, each with the audit outcome it must leave, and the messages of
/// the refusals.
#[derive(Debug, Default)]
struct Sent {
    audited: Vec<(pb::AggregateRequest, String)>,
    messages: Vec<String>,
}

impl Sent {
    /// Sends `request`, which must be refused with `code` and the node's reason `expected`
    /// (in the metadata and leading the message).
    async fn refused(
        &mut self,
        client: &NodeClient,
        request: pb::AggregateRequest,
        code: Code,
        expected: &str,
    ) {
        let status = client
            .aggregate(request.clone())
            .await
            .expect_err(&format!("{expected}: the node answered"));
        assert_eq!(
            (status.code(), reason(&status).as_deref()),
            (code, Some(expected)),
            "{status:?}"
        );
        assert!(
            status.message().starts_with(&format!("{expected}: ")),
            "{status:?}"
        );
        self.messages.push(status.message().to_owned());
        self.audited.push((request, format!("refused:{expected}")));
    }

    /// Sends `request`, which must be answered under its query id.
    async fn answered(&mut self, client: &NodeClient, request: pb::AggregateRequest) {
        let query_id = pb::QueryEnvelope::decode(request.envelope.as_slice())
            .unwrap()
            .query_id;
        let response = client.aggregate(request.clone()).await.unwrap();
        assert_eq!(response.country, COUNTRY);
        assert_eq!(response.query_id, query_id);
        assert_eq!(response.status, pb::AnswerStatus::Answered as i32);
        assert!(!response.cells.is_empty());
        self.audited.push((request, "answered".into()));
    }
}

/// Figures of the node's data: the exact values and contributor counts of a few tables with their
/// margins (totals included). Small numbers also occur in fixed wording ("16-64 characters"), so
/// only figures of three digits or more are kept.
fn data_figures() -> BTreeSet<u64> {
    let records = reference::records(COUNTRY, INCIDENTS, SEED);
    let mut figures = BTreeSet::new();
    for (unit, dim) in [
        (Unit::Incidents, Dimension::Mode),
        (Unit::Incidents, Dimension::Quarter),
        (Unit::Incidents, Dimension::Origin),
        (Unit::Migrants, Dimension::Origin),
        (Unit::Migrants, Dimension::Quarter),
        (Unit::Smugglers, Dimension::SmugglerRole),
        (Unit::Deaths, Dimension::Quarter),
    ] {
        for cell in reference::exact(&records, unit, &[dim], true).values() {
            figures.insert(u64::try_from(cell.value).unwrap());
            figures.insert(cell.contributors as u64);
        }
    }
    figures.retain(|n| *n >= 100);
    figures
}

/// The numbers written in a message.
fn numbers_in(message: &str) -> Vec<u64> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The node's audit log holds exactly the audited requests, in order, each with the caller's
/// certificate identity, the envelope and signature as sent, and its outcome; the chain verifies.
fn check_audit_log(fed: &TestFederation, sent: &Sent) {
    let log = AuditLog::open_existing(&fed.node_dir(COUNTRY)).unwrap();
    let checked = log.verify().unwrap().expect("the audit chain verifies");
    assert_eq!(checked, sent.audited.len() as u64);
    let entries = log.entries(1, 1000).unwrap();
    assert_eq!(entries.len(), sent.audited.len());
    for (entry, (request, outcome)) in entries.iter().zip(&sent.audited) {
        let at = format!("audit entry {}", entry.seq);
        assert_eq!(entry.caller, coordinator_identity(), "{at}");
        assert_eq!(&entry.outcome, outcome, "{at}");
        // Refused before the signature verified: the bytes are anyone's, and only their
        // digest and length are kept (issue 12, item 3).
        let unverified = [
            "refused:BAD_SIGNATURE",
            "refused:UNKNOWN_SIGNING_KEY",
            "refused:REQUEST_TOO_LARGE",
        ]
        .contains(&outcome.as_str());
        let envelope = if unverified {
            hex::encode(format!(
                "unverified sha256:{} len:{}",
                hex::encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    &request.envelope
                )),
                request.envelope.len()
            ))
        } else {
            hex::encode(&request.envelope)
        };
        assert_eq!(entry.envelope_hex, envelope, "{at}");
        assert!(entry.envelope_hex.len() <= 2 * 200 || !unverified, "{at}");
        assert_eq!(entry.signature_hex, hex::encode(&request.signature), "{at}");
        assert_eq!(entry.key_id, request.key_id, "{at}");
        assert_eq!(
            entry.answer_digest.is_empty(),
            outcome != "answered",
            "{at}"
        );
    }
}

#[tokio::test]
async fn bad_envelopes_are_refused_with_their_reason_and_audited() {
    let fed = TestFederation::with_nodes(&[(COUNTRY, INCIDENTS, SEED)]).await;
    let client = fed.coordinator_client(COUNTRY).await;
    let signer: Signer = fed.signer();
    let q = || query("incidents", &["mode"]);
    let mut sent = Sent::default();
    sent.answered(&client, signer.request(COUNTRY, q(), Tamper::None))
        .await;

    let ten_minutes_ms = 10 * 60 * 1000;
    let cases = [
        (Tamper::Signature, Code::PermissionDenied, "BAD_SIGNATURE"),
        (
            Tamper::IssuedAt {
                offset_ms: -ten_minutes_ms,
            },
            Code::FailedPrecondition,
            "STALE_QUERY",
        ),
        (
            Tamper::IssuedAt {
                offset_ms: ten_minutes_ms,
            },
            Code::FailedPrecondition,
            "STALE_QUERY",
        ),
        // Issued at about i64::MIN: the distance to now overflows a signed subtraction
        // (`saturating_sub(..).abs()` wrapped and accepted it in release builds).
        (
            Tamper::IssuedAt {
                offset_ms: i64::MIN,
            },
            Code::FailedPrecondition,
            "STALE_QUERY",
        ),
        (
            Tamper::Audience("IDN".into()),
            Code::PermissionDenied,
            "WRONG_AUDIENCE",
        ),
        (
            Tamper::Issuer("coordinator.other-rc.vrs.test".into()),
            Code::PermissionDenied,
            "ISSUER_MISMATCH",
        ),
        (
            Tamper::UnknownKey,
            Code::PermissionDenied,
            "UNKNOWN_SIGNING_KEY",
        ),
        (
            Tamper::QueryId("short".into()),
            Code::InvalidArgument,
            "BAD_QUERY_ID",
        ),
    ];
    for (tamper, code, expected) in cases {
        let request = signer.request(COUNTRY, q(), tamper);
        sent.refused(&client, request, code, expected).await;
    }

    // The same request twice: the second is a replay. So is the same id signed again later.
    let envelope = signer.envelope(COUNTRY, q());
    let request = signer.sign(&envelope);
    sent.answered(&client, request.clone()).await;
    let resigned = signer.request(COUNTRY, q(), Tamper::QueryId(envelope.query_id));
    for again in [request, resigned] {
        sent.refused(&client, again, Code::AlreadyExists, "REPLAYED_QUERY_ID")
            .await;
    }

    // Validly signed bytes that are not an envelope, and an envelope without a query.
    let garbage = signer.sign_bytes(vec![0x0a, 0xff, 0xff, 0xff]);
    sent.refused(
        &client,
        garbage,
        Code::InvalidArgument,
        "MALFORMED_ENVELOPE",
    )
    .await;
    let mut empty = signer.envelope(COUNTRY, q());
    empty.query = None;
    let empty = signer.sign(&empty);
    sent.refused(&client, empty, Code::InvalidArgument, "MALFORMED_ENVELOPE")
        .await;

    // A validly signed envelope just over the node's default request limit (64 KiB): the
    // service refuses it itself, with its stable reason, and audits it by digest.
    let mut big = q();
    big.filters.push(pb::Filter {
        dimension: "origin".into(),
        values: vec!["X".repeat(64); 991],
    });
    let request = signer.sign(&signer.envelope(COUNTRY, big));
    let size = request.envelope.len() + request.signature.len() + request.key_id.len();
    assert!((65_537..65_536 + 200).contains(&size), "{size}");
    sent.refused(
        &client,
        request,
        Code::ResourceExhausted,
        "REQUEST_TOO_LARGE",
    )
    .await;
    // Twice the limit never reaches the service: the transport refuses to decode it (it was
    // read, buffered and fully stored in the audit log before).
    let mut huge = q();
    huge.filters.push(pb::Filter {
        dimension: "origin".into(),
        values: vec!["X".repeat(64); 2048],
    });
    let status = client
        .aggregate(signer.sign(&signer.envelope(COUNTRY, huge)))
        .await
        .expect_err("a 128 KiB request is refused");
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{status:?}"
    );
    assert_eq!(
        reason(&status),
        None,
        "refused by the transport: {status:?}"
    );

    // No refusal says anything about the data (spot check against the node's exact figures).
    let figures = data_figures();
    assert!(figures.len() >= 10, "{figures:?}");
    for message in &sent.messages {
        for n in numbers_in(message) {
            assert!(
                !figures.contains(&n),
                "{message:?} contains {n}, a figure of the data"
            );
        }
    }

    // After all that, good queries are still answered.
    sent.answered(&client, signer.request(COUNTRY, q(), Tamper::None))
        .await;

    check_audit_log(&fed, &sent);
    fed.stop().await;
}
