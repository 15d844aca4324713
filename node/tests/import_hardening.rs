//! Import hardening (issue 12, item 2) through the real binary and real files: a stray quote
//! never swallows rows silently, every row read is accounted for, and an import that rejects
//! every row does not report success.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");
const HEADER: &str = "source_id,period,date,agency,country,place_type,mode,dead,missing,route,route_modes,methods,fees,migrants,smugglers,note\n";

fn vrs_node(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run vrs-node")
}

fn init(dir: &Path) {
    let out = vrs_node(&["init", "--dir", dir.to_str().unwrap(), "--country", "THA"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A template CSV of `rows` valid incidents (the header is line 1, row `i` is line `i + 2`).
fn csv(rows: usize) -> Vec<String> {
    (0..rows)
        .map(|i| format!("S{i},2024-02,,A,THA,sea,sea,0,0,MMR>THA,,,,MMR:M:18-24:3,,\n"))
        .collect()
}

fn write(dir: &Path, name: &str, rows: &[String]) -> String {
    let mut text = String::from(HEADER);
    rows.iter().for_each(|r| text.push_str(r));
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn import(dir: &Path, extra: &[&str], file: &str) -> Output {
    let d = dir.to_str().unwrap();
    let mut args = vec!["import", "--dir", d, "--format", "json"];
    args.extend_from_slice(extra);
    args.push(file);
    vrs_node(&args)
}

fn imported(out: &Output) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not a JSON summary: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v["imported"].as_u64().unwrap()
}

#[test]
fn an_unterminated_quote_in_a_large_file_is_an_error_with_its_line_not_lost_rows() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mut rows = csv(100_000);
    // Line 3 (the second data row): the agency field opens a quote that never closes.
    rows[1] = rows[1].replacen(",A,", ",\"A,", 1);
    let file = write(dir.path(), "stray.csv", &rows);
    let out = import(dir.path(), &[], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a stray quote passed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("quote"), "{stderr}");
    // Nothing of that file went in: the clean file imports all its rows afterwards.
    let clean = write(dir.path(), "clean.csv", &csv(100));
    let out = import(dir.path(), &[], &clean);
    assert!(out.status.success());
    assert_eq!(imported(&out), 100);
}

#[test]
fn an_unterminated_quote_near_the_end_fails_even_strict_and_is_not_a_note() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mut rows = csv(10);
    // The last field (note) opens a quote on line 3; the rest of the file would become its text.
    rows[1] = rows[1].replacen(",,\n", ",,\"oops\n", 1);
    let file = write(dir.path(), "tail.csv", &rows);
    for extra in [&[][..], &["--strict"][..]] {
        let out = import(dir.path(), extra, &file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{extra:?}: the swallowed rows passed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.contains("line 3"), "{stderr}");
    }
}

#[test]
fn a_quoted_field_may_span_a_few_lines_but_not_unboundedly_many() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mut rows = csv(3);
    rows[0] = rows[0].replacen(",,\n", ",,\"a note\non three\nlines\"\n", 1);
    let file = write(dir.path(), "notes.csv", &rows);
    let out = import(dir.path(), &[], &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(imported(&out), 3);

    // A closed quote that spans 1,000 lines is refused with the line it opens on.
    let mut rows = csv(2_000);
    rows[10] = rows[10].replacen(",,\n", ",,\"x\n", 1);
    rows[1_010] = rows[1_010].replacen(",,\n", ",,\"\n", 1);
    let file = write(dir.path(), "long.csv", &rows);
    let out = import(dir.path(), &[], &file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("line 12"), "{stderr}");
}

#[test]
fn an_import_that_rejects_every_row_does_not_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let rows: Vec<String> = csv(5)
        .iter()
        .map(|r| r.replace("2024-02", "2024-13"))
        .collect();
    let file = write(dir.path(), "bad.csv", &rows);
    let out = import(dir.path(), &[], &file);
    assert_eq!(out.status.code(), Some(4), "every row rejected");
    assert_eq!(imported(&out), 0);
    // --allow-rejected does not hide a file of which nothing went in.
    let out = import(dir.path(), &["--allow-rejected"], &file);
    assert_eq!(out.status.code(), Some(4));
    // Some rows rejected, others imported: 3, or 0 when the operator allows rejections.
    let mut rows = csv(5);
    rows[0] = rows[0].replace("2024-02", "2024-13");
    let file = write(dir.path(), "partial.csv", &rows);
    let out = import(dir.path(), &[], &file);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(imported(&out), 4);
    let mut rows = csv(14);
    rows[13] = rows[13].replace("2024-02", "2024-13");
    let file = write(dir.path(), "partial2.csv", &rows[10..]);
    let out = import(dir.path(), &["--allow-rejected"], &file);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(imported(&out), 3);
}

#[test]
fn import_exit_statuses_are_distinct_and_listed_in_help() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mut rows = csv(3);
    rows[1] = rows[1].replace("2024-02", "2024-13");
    let file = write(dir.path(), "one-bad.csv", &rows);
    // --strict rolls the file back: 4, nothing imported.
    let strict = import(dir.path(), &["--strict"], &file);
    assert_eq!(strict.status.code(), Some(4));
    assert_eq!(imported(&strict), 0);
    // A usage error (clap's, and a flag value that is not valid) is 2.
    let d = dir.path().to_str().unwrap();
    let usage = vrs_node(&["import", "--dir", d, "--no-such-flag", &file]);
    assert_eq!(usage.status.code(), Some(2));
    let both = vrs_node(&["import", "--dir", d, "--strict", "--allow-rejected", &file]);
    assert_eq!(both.status.code(), Some(2));
    let country = vrs_node(&["init", "--dir", d, "--country", "XX"]);
    assert_eq!(country.status.code(), Some(2));
    // An error that is not the command line (no node here) is 1.
    let missing = dir.path().join("nothing-here");
    let failed = vrs_node(&["import", "--dir", missing.to_str().unwrap(), &file]);
    assert_eq!(failed.status.code(), Some(1));
    // Every status is in --help, for the binary and for import.
    for args in [&["--help"][..], &["import", "--help"][..]] {
        let help = String::from_utf8(vrs_node(args).stdout).unwrap();
        for code in ["0", "1", "2", "3", "4"] {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
                "{args:?}: exit status {code} not listed:\n{help}"
            );
        }
    }
}
