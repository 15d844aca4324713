//! The `vrs-certs-dev` binary: writes the files, prints a summary, refuses to replace a CA
//! without `--force`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::process::Command;

fn run(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vrs-certs-dev"))
        .arg("--out")
        .arg(dir)
        .args([
            "--coordinator",
            "bali-rc",
            "--nodes",
            "THA,IDN",
            "--days",
            "7",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn writes_then_refuses_then_forces() {
    let tmp = tempfile::tempdir().unwrap();
    let first = run(tmp.path(), &[]);
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert!(stdout.contains("node.tha.vrs.test.pem"), "{stdout}");
    assert!(
        stdout.contains("coordinator.bali-rc.signing.pub"),
        "{stdout}"
    );
    assert!(tmp.path().join("node.idn.vrs.test.key").is_file());

    let ca = std::fs::read(tmp.path().join("ca.pem")).unwrap();
    let second = run(tmp.path(), &[]);
    assert!(!second.status.success());
    let stderr = String::from_utf8(second.stderr).unwrap();
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(tmp.path().join("ca.pem")).unwrap(), ca);

    let third = run(tmp.path(), &["--force"]);
    assert!(third.status.success(), "{third:?}");
    assert_ne!(std::fs::read(tmp.path().join("ca.pem")).unwrap(), ca);
}
