//! Replays the fuzz corpus through the fuzzing entry points, as CI does on every run: every file in
//! `node/fuzz/corpus/<target>/` (the committed seeds, plus any corpus grown locally) and in
//! `node/fuzz/regressions/<target>/` (minimised inputs that once broke an invariant). A panic in
//! an entry point fails the test and names the file. See `docs/FUZZING.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use vrs_node::fuzzing::{TARGETS, query_seeds};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file of `kind/<target>/` through its target; returns the files that panicked.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut failed = Vec::new();
    for (name, entry) in TARGETS {
        for file in files(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&file).unwrap();
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                failed.push(format!("{name}: {}", file.display()));
            }
        }
    }
    (count, failed)
}

#[test]
fn every_target_has_seeds_and_they_all_pass() {
    for (name, _) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            seeds.iter().any(|f| f
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))),
            "no seed-* files for fuzz target {name}"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "no fuzz target file for {name}"
        );
    }
    let (count, failed) = replay("corpus");
    assert!(count > 0);
    assert!(
        failed.is_empty(),
        "corpus inputs that panic:\n{}",
        failed.join("\n")
    );
}

#[test]
fn regressions_stay_fixed() {
    let (_, failed) = replay("regressions");
    assert!(
        failed.is_empty(),
        "regression inputs that panic again:\n{}",
        failed.join("\n")
    );
}

/// The committed query seeds are the envelopes `query_seeds` encodes (regenerate them with
/// `cargo test -p vrs-node --test fuzz_corpus -- --ignored write_query_seeds`).
#[test]
fn query_seeds_are_committed() {
    let dir = fuzz_dir().join("corpus").join("query_envelope");
    for (name, bytes) in query_seeds() {
        let on_disk = std::fs::read(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{name} differs from query_seeds(); run the ignored test write_query_seeds"
        );
    }
}

#[test]
#[ignore = "writes the query seed files into node/fuzz/corpus/query_envelope"]
fn write_query_seeds() {
    let dir = fuzz_dir().join("corpus").join("query_envelope");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in query_seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
