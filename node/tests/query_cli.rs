//! `vrs-node query` through the real binary: it shows the operator what the node would release,
//! and never prints a value for a suppressed cell — in any format, with or without `--explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run vrs-node");
    assert!(
        out.status.success(),
        "vrs-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A store where the sea cell holds exactly 37 migrants in 2 incidents (too few contributors),
/// the air cell 4 migrants in 4 incidents (below the threshold), and the land cell 30 migrants in
/// 6 incidents (released). 37 and 4 are the secrets the output must never show.
fn node_with_known_cells(dir: &Path) {
    let d = dir.to_str().unwrap();
    run(&["init", "--dir", d, "--country", "THA"]);
    // These tests read the rules mode's suppression; the zCDP preview has its own test below.
    let config = dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("mode = \"zcdp\"", "mode = \"rules_v1\""),
    )
    .unwrap();
    let mut csv = String::from(
        "source_id,period,date,agency,country,place_type,mode,dead,missing,route,route_modes,methods,fees,migrants,smugglers,note\n",
    );
    for i in 0..2 {
        let n = if i == 0 { 20 } else { 17 };
        csv.push_str(&format!(
            "S{i},2024-02,,A,THA,sea,sea,0,0,MMR>THA,,,,MMR:M:18-24:{n},,\n"
        ));
    }
    for i in 0..4 {
        csv.push_str(&format!(
            "A{i},2024-02,,A,THA,airport,air,0,0,VNM>THA,,,,VNM:F:25-34:1,,\n"
        ));
    }
    for i in 0..6 {
        csv.push_str(&format!(
            "L{i},2024-02,,A,THA,green_border,land,0,0,MMR>THA,,,,MMR:M:25-34:5,,\n"
        ));
    }
    let file = dir.join("cells.csv");
    std::fs::write(&file, csv).unwrap();
    let summary = run(&[
        "import",
        "--dir",
        d,
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(v["imported"], 12, "{summary}");
}

#[test]
fn suppressed_cells_never_show_a_value() {
    let dir = tempfile::tempdir().unwrap();
    node_with_known_cells(dir.path());
    let d = dir.path().to_str().unwrap();
    let base = ["query", "--dir", d, "--unit", "migrants", "--by", "mode"];

    let json: serde_json::Value =
        serde_json::from_str(&run(&[&base[..], &["--format", "json"]].concat())).unwrap();
    let cells = json["cells"].as_array().unwrap();
    let cell = |mode: &str| cells.iter().find(|c| c["key"][0] == mode).unwrap().clone();
    assert_eq!(cell("sea")["suppressed"], "contributors");
    assert_eq!(cell("air")["suppressed"], "threshold");
    for mode in ["sea", "air"] {
        assert!(
            cell(mode).get("value").is_none(),
            "{mode} carries a value: {}",
            cell(mode)
        );
    }
    let land = cell("land")["value"].as_u64().unwrap();
    assert!(
        (28..=32).contains(&land),
        "land released as {land}, true value 30 ± 2"
    );

    for format in ["table", "csv"] {
        let text = run(&[&base[..], &["--format", format, "--explain"]].concat());
        for line in text
            .lines()
            .filter(|l| l.contains("sea") || l.contains("air"))
        {
            assert!(
                !line.contains("37"),
                "{format}: the sea total leaked: {line}"
            );
            assert!(
                !line.split(|c: char| !c.is_ascii_digit()).any(|n| n == "4"),
                "{format}: the air total leaked: {line}"
            );
        }
        assert!(text.contains("suppressed"), "{format}: {text}");
    }
}

#[test]
fn a_query_outside_the_published_structure_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    node_with_known_cells(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["query", "--dir", d, "--unit", "deaths", "--by", "sex"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sex cannot be used when counting deaths"),
        "{err}"
    );
}

#[test]
fn migrate_says_the_store_is_up_to_date_and_a_missing_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run(&["init", "--dir", d, "--country", "THA"]);
    let out = run(&["migrate", "--dir", d]);
    assert_eq!(
        out.trim(),
        format!(
            "store schema v{}: up to date",
            vrs_node::store::SCHEMA_VERSION
        )
    );
    std::fs::remove_file(dir.path().join("node.sqlite")).unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--dir", d])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vrs-node init"), "{err}");
}

#[test]
fn in_zcdp_mode_the_query_previews_a_release_and_its_cost() {
    let dir = tempfile::tempdir().unwrap();
    node_with_known_cells(dir.path());
    let config = dir.path().join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("mode = \"rules_v1\"", "mode = \"zcdp\"")
        .replace("coverage_from = \"2010-01\"", "coverage_from = \"2024-01\"")
        .replace("coverage_to = \"\"", "coverage_to = \"2024-12\"");
    std::fs::write(&config, text).unwrap();
    let d = dir.path().to_str().unwrap();
    let base = ["query", "--dir", d, "--unit", "migrants", "--by", "mode"];
    let out = run(&base);
    assert!(out.starts_with("PREVIEW, not a release"), "{out}");
    assert!(out.contains("rho 0.05 on each of 4 quarter(s)"), "{out}");
    let modes = vrs_core::query::Dimension::Mode.closed_values().unwrap();
    for m in &modes {
        assert!(
            out.lines().any(|l| l.starts_with(m.as_str())),
            "{m} missing: {out}"
        );
    }
    assert!(
        !out.contains("exact"),
        "exact values only with --explain: {out}"
    );
    let explained = run(&[&base[..], &["--explain"]].concat());
    assert!(explained.contains("sea: exact 37"), "{explained}");
    // Nothing was charged: a preview is not a release.
    let budget = run(&["budget", "--config", d, "--format", "json"]);
    let lines: serde_json::Value = serde_json::from_str(&budget).unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["spent_micro"] == 0),
        "{budget}"
    );
}

#[test]
fn serve_refuses_a_log_format_it_does_not_know_instead_of_ignoring_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run(&["init", "--dir", d, "--country", "THA"]);
    let config = dir.path().join("node.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("format = \"human\""));
    std::fs::write(
        &config,
        toml.replace("format = \"human\"", "format = \"jsn\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", d])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[log] format") && err.contains("jsn"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

#[test]
fn codes_lists_every_dimension_and_value_and_a_typo_gets_a_suggestion() {
    use vrs_core::query::{Dimension, Unit};
    let all = run(&["codes"]);
    for u in Unit::ALL {
        assert!(all.contains(u.code()), "{u} not listed:\n{all}");
    }
    for d in Dimension::ALL {
        assert!(
            all.lines()
                .any(|l| l.trim_start().starts_with(&format!("{:<15} ", d.code()))),
            "{d} not listed:\n{all}"
        );
        let values = d.closed_values().unwrap_or_default();
        let one = run(&["codes", d.code()]);
        if values.is_empty() {
            assert!(one.contains(d.values_note().unwrap()), "{d}: {one}");
        } else {
            assert_eq!(one.lines().collect::<Vec<_>>(), values, "{d}");
        }
    }
    for (typo, meant) in [("rout", "route"), ("feeband", "fee_band"), ("Mode", "mode")] {
        let out = Command::new(BIN).args(["codes", typo]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{typo}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("did you mean {meant}?")), "{err}");
    }
    // The same suggestions where a query names a dimension or a value.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    run(&["init", "--dir", d, "--country", "THA"]);
    for (args, want) in [
        (&["--by", "rout"][..], "did you mean route?"),
        (&["--where", "mode=se"][..], "did you mean sea?"),
        (&["--where", "origin=mmr"][..], "did you mean MMR?"),
    ] {
        let mut all = vec!["query", "--dir", d, "--unit", "incidents"];
        all.extend_from_slice(args);
        let out = Command::new(BIN).args(&all).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
