//! `[log]` in node.toml through the real binary (issue 16, item 6): it takes effect for the
//! commands that read node.toml, a wrong value is an error, and a log that is not a terminal
//! carries no colour codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

/// Runs vrs-node with stderr captured (not a terminal) and `RUST_LOG` unset, so the
/// configuration decides.
fn vrs_node(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run vrs-node")
}

fn node_with_log(dir: &Path, log: &str) -> String {
    let d = dir.to_str().unwrap();
    assert!(
        vrs_node(&["init", "--dir", d, "--country", "THA"])
            .status
            .success()
    );
    let config = dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("[log]").unwrap();
    std::fs::write(&config, format!("{}[log]\n{log}", &text[..at])).unwrap();
    let csv = dir.join("one.csv");
    std::fs::write(
        &csv,
        "source_id,period,date,agency,country,place_type,mode,dead,missing,route,route_modes,methods,fees,migrants,smugglers,note\n\
         S1,2024-02,,A,THA,sea,sea,0,0,MMR>THA,,,,MMR:M:18-24:3,,\n",
    )
    .unwrap();
    csv.to_str().unwrap().to_owned()
}

#[test]
fn the_log_section_takes_effect_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = node_with_log(dir.path(), "format = \"json\"\nlevel = \"debug\"\n");
    let d = dir.path().to_str().unwrap();
    let out = vrs_node(&["import", "--dir", d, &csv]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let finished = stderr
        .lines()
        .find(|l| l.contains("import finished"))
        .unwrap_or_else(|| panic!("no debug line at level = \"debug\": {stderr:?}"));
    let line: serde_json::Value = serde_json::from_str(finished).unwrap();
    assert_eq!(line["fields"]["imported"], 1, "{line}");

    // Human lines on a pipe: no escape codes.
    let dir = tempfile::tempdir().unwrap();
    let csv = node_with_log(dir.path(), "format = \"human\"\nlevel = \"debug\"\n");
    let d = dir.path().to_str().unwrap();
    let out = vrs_node(&["import", "--dir", d, &csv]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("import finished"), "{stderr:?}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on a pipe: {stderr:?}"
    );

    // The default level (info) keeps debug lines out.
    let dir = tempfile::tempdir().unwrap();
    let csv = node_with_log(dir.path(), "format = \"human\"\n");
    let d = dir.path().to_str().unwrap();
    let out = vrs_node(&["import", "--dir", d, &csv]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("import finished"));
}

#[test]
fn a_wrong_log_value_is_an_error() {
    for (log, want) in [
        ("format = \"jsn\"\n", "[log] format"),
        ("level = \"info,[=\"\n", "[log] level"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let csv = node_with_log(dir.path(), log);
        let d = dir.path().to_str().unwrap();
        let out = vrs_node(&["import", "--dir", d, &csv]);
        assert_eq!(out.status.code(), Some(1), "{log}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{log}: {stderr}");
        // check reports it rather than stopping on it.
        let out = vrs_node(&["check", "--config", d]);
        assert_eq!(out.status.code(), Some(1), "{log}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(want), "{log}: {stdout}");
    }
}
