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
