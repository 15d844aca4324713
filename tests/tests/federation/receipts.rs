//! Issue 12, item 9: a node's audit log checked from outside. The coordinator keeps the audit
//! receipt of every answer (and the signed head of every `Describe`) in its book; each way a
//! local attacker rewrote the log in the hostile review — an answer edited into a refusal with
//! the chain recomputed, tail truncation, delete + renumber + re-chain, deleting `audit.sqlite`
//! (and its key) — passes the node's own `audit verify` and is caught by the receipts.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, params};
use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_coordinator::receipts::{self, Kind, NodeCheck};
use vrs_core::audit_chain::{ExportedEntry, GENESIS, NewEntry, entry_hash};
use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::audit::{AUDIT_FILE, AUDIT_KEY_FILE, AuditLog};
use vrs_tests::{RegistryNode, TestFederation, spec};

const COUNTRY: &str = "THA";

fn question(from: &str) -> Query {
    let raw = RawQuery {
        unit: "incidents".into(),
        group_by: vec!["quarter".into()],
        period_from: from.into(),
        period_to: from.into(),
        ..RawQuery::default()
    };
    Query::parse(&raw, &QueryLimits::default()).unwrap()
}

/// The node's log as `vrs-node audit export` writes it (one JSON object per entry, the same
/// serialisation), read back as an auditor's tool reads it.
fn export(dir: &std::path::Path) -> Vec<ExportedEntry> {
    let log = AuditLog::open_existing(dir).unwrap();
    log.entries(1, 100_000)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
        .collect()
}

fn check(fed: &TestFederation, export: Option<Vec<ExportedEntry>>) -> NodeCheck {
    let book = receipts::read(&fed.registry().receipts_path()).unwrap();
    let exports: HashMap<String, Vec<ExportedEntry>> = export
        .into_iter()
        .map(|e| (COUNTRY.to_string(), e))
        .collect();
    let mut out = receipts::verify(&book, &HashMap::new(), &exports);
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

/// Drops the append-only triggers, as a local attacker with the file would.
fn tamper(dir: &std::path::Path) -> Connection {
    let c = Connection::open(dir.join(AUDIT_FILE)).unwrap();
    c.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    c
}

/// One audit row's hashed fields, in column order.
type Row = (
    i64,
    i64,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    String,
    String,
);

/// Recomputes every hash from entry `from` on, so the node's own check passes again.
fn rechain(c: &Connection, from: i64) {
    let mut prev: String = c
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap_or_else(|_| GENESIS.to_string());
    let rows: Vec<Row> = c
        .prepare("SELECT seq, at_ms, caller, query_id, envelope, signature, key_id, outcome, answer_digest, privacy FROM audit WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| {
            Ok((
                r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?,
                r.get(7)?, r.get(8)?, r.get(9)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, at_ms, caller, query_id, envelope, signature, key_id, outcome, digest, privacy) in
        rows
    {
        let hash = entry_hash(
            &prev,
            seq,
            &NewEntry {
                at_ms,
                caller: &caller,
                query_id: &query_id,
                envelope: &envelope,
                signature: &signature,
                key_id: &key_id,
                outcome: &outcome,
                answer_digest: &digest,
                privacy: &privacy,
            },
        );
        c.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
}

fn intact_by_its_own_check(dir: &std::path::Path) -> bool {
    AuditLog::open_existing(dir)
        .unwrap()
        .verify()
        .unwrap()
        .is_ok()
}

/// Four answers and a `Describe`, each with its receipt in the book.
async fn answered(fed: &TestFederation) -> Federation {
    let federation = fed.federation();
    assert!(federation.describe().await[0].1.is_ok());
    for year in ["2021", "2022", "2023", "2024"] {
        let (_, results) = federation.ask(&question(year)).await.unwrap();
        assert!(
            matches!(results[0].outcome, NodeOutcome::Answered(_)),
            "{:?}",
            results[0].outcome
        );
        let r = results[0]
            .receipt
            .as_ref()
            .expect("every answer has a receipt");
        assert_eq!(r.country, COUNTRY);
    }
    federation
}

#[tokio::test]
async fn every_answer_s_receipt_is_kept_and_an_honest_log_matches_them() {
    let fed = TestFederation::start(&[spec(COUNTRY, 200, 7, "")]).await;
    answered(&fed).await;
    let book = receipts::read(&fed.registry().receipts_path()).unwrap();
    assert_eq!(book.iter().filter(|k| k.kind == Kind::Answer).count(), 4);
    assert_eq!(book.iter().filter(|k| k.kind == Kind::Describe).count(), 1);
    let dir = fed.node_dir(COUNTRY);
    let log = export(&dir);
    let entries = log.len() as u64;
    // Each answer's receipt is its own entry: that answer, that query id, that digest.
    for k in book.iter().filter(|k| k.kind == Kind::Answer) {
        let e = &log[k.receipt.entries as usize - 1];
        assert_eq!(
            (&e.outcome[..], &e.query_id, &e.answer_digest, &e.hash),
            ("answered", &k.query_id, &k.answer_digest, &k.receipt.head)
        );
    }
    let c = check(&fed, Some(log));
    assert!(c.ok(), "{:?}", c.problems);
    assert_eq!(
        c.highest_entry, entries,
        "the last answer is the log's last entry"
    );
    fed.stop().await;
}

#[tokio::test]
async fn an_answer_edited_into_a_refusal_and_rechained_is_caught() {
    let fed = TestFederation::start(&[spec(COUNTRY, 200, 8, "")]).await;
    answered(&fed).await;
    let dir = fed.node_dir(COUNTRY);
    // The command an auditor runs, on an honest export first.
    let registry = fed.dir().join("registry.toml");
    let exported = fed.dir().join("tha-audit.jsonl");
    let write_export = |entries: Vec<ExportedEntry>| {
        let text: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(&exported, text).unwrap();
    };
    let log_flag = [format!("{COUNTRY}={}", exported.display())];
    let verify_cli = || {
        vrs_coordinator::cli::verify_receipts(
            &registry,
            &log_flag,
            true,
            vrs_coordinator::cli::Format::Json,
        )
    };
    write_export(export(&dir));
    assert_eq!(verify_cli().await.unwrap(), std::process::ExitCode::SUCCESS);
    let c = tamper(&dir);
    c.execute(
        "UPDATE audit SET outcome = 'refused:TOO_MANY_DIMENSIONS', answer_digest = '' WHERE seq = 2",
        [],
    )
    .unwrap();
    rechain(&c, 2);
    assert!(intact_by_its_own_check(&dir), "the weaker check is fooled");
    let found = check(&fed, Some(export(&dir)));
    assert!(
        found.problems.iter().any(|p| p.contains("entry 2")),
        "{:?}",
        found.problems
    );
    write_export(export(&dir));
    assert_eq!(verify_cli().await.unwrap(), std::process::ExitCode::FAILURE);
    fed.stop().await;
}

#[tokio::test]
async fn a_truncated_tail_and_a_delete_renumber_rechain_are_caught() {
    let fed = TestFederation::start(&[spec(COUNTRY, 200, 9, "")]).await;
    answered(&fed).await;
    let dir = fed.node_dir(COUNTRY);
    let c = tamper(&dir);
    // Delete the second answer, renumber the ones after it and re-chain.
    let last: i64 = c
        .query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))
        .unwrap();
    c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    for seq in 3..=last {
        c.execute("UPDATE audit SET seq = ?1 WHERE seq = ?2", [seq - 1, seq])
            .unwrap();
    }
    rechain(&c, 2);
    assert!(intact_by_its_own_check(&dir));
    let renumbered = check(&fed, Some(export(&dir)));
    assert!(!renumbered.ok());
    assert!(
        renumbered.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        renumbered.problems
    );
    // And the tail cut off (the triggers were put back when the log was opened to export it).
    let c = tamper(&dir);
    c.execute("DELETE FROM audit WHERE seq > 1", []).unwrap();
    assert!(intact_by_its_own_check(&dir));
    let cut = check(&fed, Some(export(&dir)));
    assert!(
        cut.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        cut.problems
    );
    fed.stop().await;
}

/// A second server over the node's directory (after its files were changed), on its own port,
/// and a federation over a registry beside the first one, so the two share one receipt book.
async fn restarted(fed: &TestFederation) -> (Federation, tokio::sync::oneshot::Sender<()>) {
    let config =
        vrs_node::config::NodeConfig::load(&fed.node_dir(COUNTRY).join("node.toml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let clock: Arc<dyn vrs_core::clock::Clock> = Arc::new(vrs_core::clock::SystemClock);
        vrs_node::server::serve_with_clock(listener, &config, clock, async {
            let _ = stopped.await;
        })
        .await
    });
    let registry = fed.write_registry(
        "restarted.toml",
        &[RegistryNode::new(COUNTRY, addr)],
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(3),
    );
    assert_eq!(registry.receipts_path(), fed.registry().receipts_path());
    (Federation::connect(&registry).unwrap(), stop)
}

async fn describe_until_up(federation: &Federation) {
    for _ in 0..50 {
        if federation.describe().await[0].1.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the restarted node never answered Describe");
}

#[tokio::test]
async fn a_deleted_audit_log_is_caught_at_the_next_describe() {
    let fed = TestFederation::start(&[spec(COUNTRY, 200, 10, "")]).await;
    answered(&fed).await;
    let dir = fed.node_dir(COUNTRY);
    std::fs::remove_file(dir.join(AUDIT_FILE)).unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{AUDIT_FILE}-wal")));
    let _ = std::fs::remove_file(dir.join(format!("{AUDIT_FILE}-shm")));
    let (federation, stop) = restarted(&fed).await;
    describe_until_up(&federation).await;
    assert!(intact_by_its_own_check(&dir), "a new, empty log verifies");
    let found = check(&fed, None);
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.contains("truncated, deleted or restored")),
        "{:?}",
        found.problems
    );
    let _ = stop.send(());
    fed.stop().await;
}

#[tokio::test]
async fn a_replaced_audit_key_is_caught() {
    let fed = TestFederation::start(&[spec(COUNTRY, 200, 11, "")]).await;
    answered(&fed).await;
    let dir = fed.node_dir(COUNTRY);
    std::fs::remove_file(dir.join(AUDIT_KEY_FILE)).unwrap();
    let (federation, stop) = restarted(&fed).await;
    describe_until_up(&federation).await;
    let (_, results) = federation.ask(&question("2023")).await.unwrap();
    assert!(
        matches!(results[0].outcome, NodeOutcome::Answered(_)),
        "{:?}",
        results[0].outcome
    );
    let found = check(&fed, None);
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.contains("another audit key")),
        "{:?}",
        found.problems
    );
    assert!(found.problems.iter().any(|p| p.contains("does not verify")));
    let _ = stop.send(());
    fed.stop().await;
}
