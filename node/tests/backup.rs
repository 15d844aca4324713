//! `vrs-node backup` / `restore`: a backup taken while one thread appends to the audit log and
//! another imports into the store restores to a node whose store opens, whose chain verifies and
//! whose counts are the manifest's (and each copy is one moment of its file: never half an
//! import). Through the real binary: a node directory that is not empty is refused without
//! `--force`, and a corrupted or doctored backup is refused with a message naming the file,
//! leaving the node directory as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use vrs_core::clock::ManualClock;
use vrs_node::audit::{AuditLog, NewEntry};
use vrs_node::backup::{self, BackupError, Manifest};
use vrs_node::fx::FxRates;
use vrs_node::store::{ImportCounts, Store};
use vrs_node::synth::{self, SynthConfig};

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");
/// Records per import in the writer thread: a consistent copy holds a multiple of it.
const BATCH: u64 = 40;

fn vrs_node(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn init(dir: &Path) {
    let (ok, out) = vrs_node(&["init", "--dir", dir.to_str().unwrap(), "--country", "IDN"]);
    assert!(ok, "{out}");
}

fn entry(log: &mut AuditLog, i: u64) {
    log.append(&NewEntry {
        at_ms: 1_764_000_000_000 + i as i64,
        caller: "coordinator.bali-rc.vrs.test",
        query_id: &format!("{i:032x}"),
        envelope: b"envelope",
        signature: b"signature",
        key_id: "kid",
        outcome: "answered",
        answer_digest: "digest",
        privacy: "",
    })
    .unwrap();
}

/// One import of `BATCH` records whose source ids are unique to `batch`.
fn import_batch(store: &mut Store, batch: u64) {
    let fx = FxRates::sample();
    let country = store.country();
    let mut tx = store
        .begin_import(&format!("batch-{batch}"), "-", &fx)
        .unwrap();
    for mut r in synth::generate(&SynthConfig::new(country, BATCH, batch)) {
        r.source_id = format!("B{batch}-{}", r.source_id);
        tx.insert(&r).unwrap();
    }
    tx.commit(ImportCounts {
        imported: BATCH,
        ..ImportCounts::default()
    })
    .unwrap();
}

#[test]
fn a_backup_taken_while_writers_run_restores_whole() {
    let node = tempfile::tempdir().unwrap();
    init(node.path());
    {
        let mut store = Store::open(node.path()).unwrap();
        import_batch(&mut store, 0);
        let mut log = AuditLog::open(node.path()).unwrap();
        for i in 0..5 {
            entry(&mut log, i);
        }
    }

    // Two writers, as a serving node and an import would be, until told to stop (bounded).
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(5));
    let imported = Arc::new(AtomicU64::new(1));
    let audit_writer = {
        let (dir, stop, appended) = (node.path().to_path_buf(), stop.clone(), appended.clone());
        std::thread::spawn(move || {
            let mut log = AuditLog::open(&dir).unwrap();
            for i in 5..20_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                entry(&mut log, i);
                appended.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    let importer = {
        let (dir, stop, imported) = (node.path().to_path_buf(), stop.clone(), imported.clone());
        std::thread::spawn(move || {
            let mut store = Store::open(&dir).unwrap();
            for batch in 1..400 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                import_batch(&mut store, batch);
                imported.store(batch + 1, Ordering::SeqCst);
            }
        })
    };
    // Wait until both have written something of their own (polling, no fixed sleep).
    while appended.load(Ordering::SeqCst) < 10 || imported.load(Ordering::SeqCst) < 2 {
        std::thread::yield_now();
    }

    let out = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_764_000_000_000);
    let mut taken = Vec::new();
    for n in 0..3 {
        let to = out.path().join(format!("backup-{n}"));
        let before = (
            appended.load(Ordering::SeqCst),
            imported.load(Ordering::SeqCst),
        );
        let m = backup::backup(node.path(), &to, &clock).unwrap();
        let after = (
            appended.load(Ordering::SeqCst),
            imported.load(Ordering::SeqCst),
        );
        taken.push((to, m, before, after));
    }
    stop.store(true, Ordering::SeqCst);
    audit_writer.join().unwrap();
    importer.join().unwrap();
    let final_entries = appended.load(Ordering::SeqCst);
    let final_batches = imported.load(Ordering::SeqCst);

    let mut mid_write = false;
    for (to, m, before, after) in &taken {
        // Each copy is one moment of its file: between what the writers had written before and
        // after the backup, and never half an import.
        assert!(
            before.0 <= m.audit.entries && m.audit.entries <= after.0,
            "{before:?} {after:?} {m:?}"
        );
        assert_eq!(m.store.records % BATCH, 0, "half an import copied: {m:?}");
        let batches = m.store.records / BATCH;
        assert!(before.1 <= batches && batches <= after.1, "{m:?}");
        mid_write |= m.audit.entries < final_entries && batches < final_batches;

        let restored = out.path().join(format!("{}-restored", to.display()));
        let r = backup::restore(to, &restored, false).unwrap();
        assert_eq!(&r.manifest, m);
        let store = Store::open_read_only(&restored).unwrap();
        assert_eq!(store.incident_count().unwrap(), m.store.records);
        assert_eq!(store.country().as_str(), "IDN");
        assert!(store.integrity_problems().unwrap().is_empty());
        let mode: String = store
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "a restored store is back in WAL mode");
        let log = AuditLog::open_existing(&restored).unwrap();
        assert_eq!(log.verify().unwrap(), Ok(m.audit.entries));
        assert_eq!(
            log.head().unwrap(),
            (m.audit.head_seq, m.audit.head_hash.clone())
        );
        // The restored node is the same node: same audit key.
        assert_eq!(
            std::fs::read(restored.join("audit-key.pk8")).unwrap(),
            std::fs::read(node.path().join("audit-key.pk8")).unwrap()
        );
        let (ok, out) = vrs_node(&["audit", "verify", "--dir", restored.to_str().unwrap()]);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("intact: {} entries", m.audit.entries)),
            "{out}"
        );
    }
    assert!(
        mid_write,
        "no backup was taken while both writers were still writing"
    );
}

/// A node with a few entries and one import, backed up through the binary.
fn node_and_backup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let node = root.path().join("node");
    init(&node);
    {
        let mut store = Store::open(&node).unwrap();
        import_batch(&mut store, 1);
        let mut log = AuditLog::open(&node).unwrap();
        for i in 0..4 {
            entry(&mut log, i);
        }
    }
    let to = root.path().join("backup");
    let (ok, out) = vrs_node(&[
        "backup",
        "--dir",
        node.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("audit log: 4 entries"), "{out}");
    assert!(out.contains(&format!("{BATCH} records")), "{out}");
    (root, node, to)
}

#[test]
fn restore_refuses_a_node_directory_that_is_not_empty_without_force() {
    let (root, node, to) = node_and_backup();
    // A node directory in use is not overwritten by accident.
    let (ok, out) = vrs_node(&[
        "restore",
        "--from",
        to.to_str().unwrap(),
        "--dir",
        node.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("is not empty") && out.contains("--force"),
        "{out}"
    );

    // With --force, after more was written: the node is back to the backup.
    {
        let mut log = AuditLog::open(&node).unwrap();
        for i in 4..9 {
            entry(&mut log, i);
        }
    }
    let (ok, out) = vrs_node(&[
        "restore",
        "--from",
        to.to_str().unwrap(),
        "--dir",
        node.to_str().unwrap(),
        "--force",
    ]);
    assert!(ok, "{out}");
    assert!(!node.join(".vrs-restore").exists());
    let (ok, out) = vrs_node(&["audit", "verify", "--dir", node.to_str().unwrap()]);
    assert!(ok && out.contains("intact: 4 entries"), "{out}");

    // Into a new directory, no --force needed; the store answers queries there.
    let fresh = root.path().join("fresh");
    let (ok, out) = vrs_node(&[
        "restore",
        "--from",
        to.to_str().unwrap(),
        "--dir",
        fresh.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = vrs_node(&[
        "query",
        "--dir",
        fresh.to_str().unwrap(),
        "--unit",
        "incidents",
        "--by",
        "year",
    ]);
    assert!(ok, "{out}");
}

fn restore_into_empty(to: &Path, root: &Path) -> (bool, String, std::path::PathBuf) {
    let target = root.join("target");
    std::fs::create_dir_all(&target).unwrap();
    let (ok, out) = vrs_node(&[
        "restore",
        "--from",
        to.to_str().unwrap(),
        "--dir",
        target.to_str().unwrap(),
    ]);
    (ok, out, target)
}

fn assert_left_empty(target: &Path) {
    let left: Vec<_> = std::fs::read_dir(target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a refused restore left {left:?}");
}

#[test]
fn a_corrupted_backup_file_is_refused() {
    let (root, _node, to) = node_and_backup();
    // One flipped byte in the middle of the audit log copy.
    let path = to.join("audit.sqlite");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let (ok, out, target) = restore_into_empty(&to, root.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("audit.sqlite does not match its SHA-256"),
        "{out}"
    );
    assert_left_empty(&target);
}

#[test]
fn a_truncated_store_copy_is_refused() {
    let (root, _node, to) = node_and_backup();
    let path = to.join("node.sqlite");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (ok, out, target) = restore_into_empty(&to, root.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("node.sqlite is") && out.contains("truncated"),
        "{out}"
    );
    assert_left_empty(&target);
}

#[test]
fn a_doctored_audit_log_with_a_rewritten_manifest_is_refused() {
    let (root, _node, to) = node_and_backup();
    // Someone edits an entry in the copy and puts the new digest in the manifest: the chain
    // still gives it away.
    {
        let conn = rusqlite::Connection::open(to.join("audit.sqlite")).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'refused:X' WHERE seq = 2;",
        )
        .unwrap();
    }
    let mut m = Manifest::load(&to).unwrap();
    let bytes = std::fs::read(to.join("audit.sqlite")).unwrap();
    let digest = m.files.get_mut("audit.sqlite").unwrap();
    digest.bytes = bytes.len() as u64;
    digest.sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    std::fs::write(to.join("manifest.json"), serde_json::to_string(&m).unwrap()).unwrap();

    let target = root.path().join("target");
    let e = backup::restore(&to, &target, false).unwrap_err();
    assert!(matches!(e, BackupError::AuditBroken { seq: 2, .. }), "{e}");
    assert!(e.to_string().contains("audit log broken at entry 2"), "{e}");
    assert_left_empty(&target);
}

#[test]
fn a_directory_without_a_manifest_is_not_a_backup() {
    let root = tempfile::tempdir().unwrap();
    let node = root.path().join("node");
    init(&node);
    // A plain copy of a node directory is not a backup.
    let (ok, out) = vrs_node(&[
        "restore",
        "--from",
        node.to_str().unwrap(),
        "--dir",
        root.path().join("target").to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("not a vrs-node backup"), "{out}");
}
