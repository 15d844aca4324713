//! `vrs-node audit verify` through the real binary: an audit log edited by hand (with the
//! append-only triggers dropped, as an attacker with file access would) is caught, and the
//! command names the entry where the chain breaks and exits non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::process::Command;

use vrs_node::audit::{AuditLog, NewEntry};

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

fn node_with_audit(entries: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir", d, "--country", "IDN"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut log = AuditLog::open(dir.path()).unwrap();
    for i in 0..entries {
        let outcome = if i % 2 == 0 {
            "answered"
        } else {
            "refused:BAD_SIGNATURE"
        };
        log.append(&NewEntry {
            at_ms: 1_764_000_000_000 + i as i64,
            caller: "coordinator.bali-rc.vrs.test",
            query_id: &format!("{i:032x}"),
            envelope: b"envelope",
            signature: b"signature",
            key_id: "kid",
            outcome,
            answer_digest: "",
            privacy: "",
        })
        .unwrap();
    }
    dir
}

fn verify(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn tamper(dir: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join("audit.sqlite")).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"
    ))
    .unwrap();
}

#[test]
fn an_intact_log_verifies() {
    let dir = node_with_audit(6);
    let (ok, out) = verify(dir.path());
    assert!(ok, "{out}");
    assert!(out.contains("intact: 6 entries"), "{out}");
}

#[test]
fn edited_deleted_and_reordered_entries_are_caught() {
    let cases = [
        (
            "UPDATE audit SET outcome = 'answered' WHERE seq = 4;",
            "entry 4",
            "edited",
        ),
        ("DELETE FROM audit WHERE seq = 3;", "entry 4", "missing"),
        (
            "UPDATE audit SET seq = seq + 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = 102;",
            "entry 2",
            "",
        ),
    ];
    for (sql, at, what) in cases {
        let dir = node_with_audit(6);
        tamper(dir.path(), sql);
        let (ok, out) = verify(dir.path());
        assert!(!ok, "{sql}: verify passed: {out}");
        assert!(out.contains(&format!("BROKEN at {at}")), "{sql}: {out}");
        assert!(out.contains(what), "{sql}: {out}");
    }
}

/// Issue 12, item 9: `init` makes the audit log and its key, so a log deleted later is named by
/// `check` (it said "none yet" before), and the audit key is printed for the coordinator.
#[test]
fn check_names_a_deleted_log_and_prints_the_audit_key() {
    let dir = node_with_audit(2);
    let check = |dir: &std::path::Path| {
        let out = Command::new(BIN)
            .args(["check", "--config", dir.join("node.toml").to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let key = std::fs::read(dir.path().join("audit-key.pk8")).unwrap();
    let public = vrs_core::signing::SigningKey::from_pkcs8(&key)
        .unwrap()
        .public_key()
        .to_hex();
    let before = check(dir.path());
    assert!(before.contains(&public), "{before}");
    // The policy in words, not a Debug dump (issue 16, item 7).
    assert!(
        before.contains("policy: publishes all 6 units and all 17 dimensions;"),
        "{before}"
    );
    assert!(!before.contains("PublicPolicy"), "{before}");
    assert!(!before.contains("was removed"), "{before}");
    std::fs::remove_file(dir.path().join("audit.sqlite")).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("audit.sqlite{suffix}")));
    }
    let after = check(dir.path());
    assert!(after.contains("was removed"), "{after}");
}

#[test]
fn audit_show_says_each_question_in_words() {
    use prost::Message as _;
    use vrs_proto::pb;

    let dir = node_with_audit(1); // its envelope is not a query envelope
    let envelope = pb::QueryEnvelope {
        query_id: "0123456789abcdef0123".into(),
        query: Some(pb::Query {
            unit: "migrants".into(),
            group_by: vec!["route".into(), "quarter".into()],
            filters: vec![pb::Filter {
                dimension: "mode".into(),
                values: vec!["sea".into()],
            }],
            period_from: "2024".into(),
            period_to: "2024-Q2".into(),
            margins: true,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    AuditLog::open(dir.path())
        .unwrap()
        .append(&NewEntry {
            at_ms: 1_764_000_100_000,
            caller: "coordinator.bali-rc.vrs.test",
            query_id: "0123456789abcdef0123",
            envelope: &envelope,
            signature: b"signature",
            key_id: "kid",
            outcome: "answered",
            answer_digest: "",
            privacy: "",
        })
        .unwrap();
    let out = Command::new(BIN)
        .args(["audit", "show", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().next().unwrap().trim_end().ends_with("query"),
        "{text}"
    );
    let answered = text
        .lines()
        .find(|l| l.contains("0123456789abcdef0123"))
        .unwrap();
    assert!(
        answered.ends_with(
            "migrants by [route, quarter] where mode in [sea] from 2024 to 2024-Q2 with margins"
        ),
        "{text}"
    );
    let undecodable = text.lines().nth(2).unwrap(); // header, rule, entry 1
    assert!(undecodable.contains("(not a query envelope)"), "{text}");
}

/// `check` says when records fall outside the declared zCDP coverage (they are never released):
/// silent before.
#[test]
fn check_warns_about_records_outside_the_declared_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(run(&["init", "--dir", d, "--country", "IDN"]).0, Some(0));
    let csv = dir.path().join("records.csv");
    let synth = run(&[
        "synth",
        "--country",
        "IDN",
        "--incidents",
        "30",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(synth.0, Some(0), "{}", synth.1);
    let import = run(&["import", "--dir", d, csv.to_str().unwrap()]);
    assert_eq!(import.0, Some(0), "{}", import.1);
    let config = dir.path().join("node.toml");
    let (_, before) = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(!before.contains("declared coverage is"), "{before}");
    // Declare a coverage that starts after every synthetic record.
    let text = std::fs::read_to_string(&config).unwrap();
    let later = text.replacen(
        "coverage_from = \"2010-01\"",
        "coverage_from = \"2099-01\"",
        1,
    );
    assert_ne!(text, later, "the generated file declares coverage_from");
    std::fs::write(&config, later).unwrap();
    let (_, after) = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(after.contains("declared coverage is 2099-01"), "{after}");
    assert!(after.contains("never released"), "{after}");
}
