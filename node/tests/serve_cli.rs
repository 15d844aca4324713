//! `vrs-node serve` through the real binary (issue 16, item 7): a node that cannot start (no
//! `[tls]`, certificate files that are not there) says why and never prints the `listening on`
//! line scripts wait for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

#[test]
fn a_node_that_cannot_start_never_says_it_is_listening() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir", d, "--country", "THA"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let config = dir.path().join("node.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen = \"127.0.0.1:7443\"", "listen = \"127.0.0.1:0\"");
    let missing_certs = text.replace(
        "# [tls]\n# ca = \"certs/ca.pem\"",
        "[tls]\nca = \"certs/ca.pem\"",
    );
    let missing_certs = missing_certs
        .replace("# cert = \"certs/", "cert = \"certs/")
        .replace("# key = \"certs/", "key = \"certs/");
    assert_ne!(missing_certs, text, "the [tls] lines were not found");
    for (case, toml, want) in [
        ("no [tls]", &text, "no [tls] section"),
        ("no certificate files", &missing_certs, "ca.pem"),
    ] {
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config", d])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{case}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("listening"), "{case}: {stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{case}: {stderr}");
    }
}
