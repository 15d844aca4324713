//! The server install as shipped (issue 16, item 8): the systemd unit is hardened as
//! docs/OPERATING.md says, its command line is one `vrs-node` accepts, the maintainer scripts
//! make the `vrs` user and never delete records, and every file the Debian package takes from the
//! source tree exists. The package itself is built and installed with `dpkg -i` by
//! `.ci/package-test` (minutes: a release build).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../packaging/vrs-node/vrs-node.service");
const POSTINST: &str = include_str!("../../packaging/vrs-node/postinst");
const POSTRM: &str = include_str!("../../packaging/vrs-node/postrm");
const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

/// A unit file as systemd reads it: section → key → every value given (in order; an empty value
/// is kept, as it resets a list).
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "continued lines are not used: {line}"
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        let section = current.clone().expect("a key before any section");
        sections
            .get_mut(&section)
            .unwrap()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    sections
}

fn service() -> BTreeMap<String, Vec<String>> {
    parse_unit(UNIT)
        .remove("Service")
        .expect("a [Service] section")
}

/// The one value of `key` in [Service].
fn one(service: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    match service.get(key).map(Vec::as_slice) {
        Some([v]) => v.clone(),
        other => panic!("{key}: expected one value, found {other:?}"),
    }
}

#[test]
fn the_unit_runs_as_its_own_user_without_privileges() {
    let s = service();
    for (key, want) in [
        ("User", "vrs"),
        ("Group", "vrs"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("StateDirectory", "vrs"),
        ("StateDirectoryMode", "0700"),
        ("ConfigurationDirectory", "vrs"),
        ("UMask", "0077"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(one(&s, key), want, "{key}");
    }
    let filters = &s["SystemCallFilter"];
    assert_eq!(filters[0], "@system-service", "{filters:?}");
    assert!(
        filters[1..].iter().all(|f| f.starts_with('~')),
        "later filters only take away: {filters:?}"
    );
    // Nothing but the state directory is writable; the configuration and the audit key are not.
    assert!(!s.contains_key("ReadWritePaths"), "{s:?}");
    let read_only = one(&s, "ReadOnlyPaths");
    for path in ["/var/lib/vrs/node.toml", "/var/lib/vrs/audit-key.pk8"] {
        assert!(read_only.contains(path), "{read_only}");
    }
    for key in ["PermissionsStartOnly", "DynamicUser", "PrivateNetwork"] {
        assert!(
            !s.contains_key(key),
            "{key} would break the layout or the service"
        );
    }
}

#[test]
fn the_unit_serves_the_packaged_node_directory_with_a_command_vrs_node_accepts() {
    let s = service();
    let exec = one(&s, "ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        args,
        [
            "/usr/bin/vrs-node",
            "serve",
            "--config",
            "/var/lib/vrs/node.toml"
        ]
    );
    // The flags parse: with a node.toml that is not there, serve fails reading it (exit 1),
    // not on its command line (clap's usage error is exit 2).
    let missing = tempfile::tempdir().unwrap();
    let config = missing.path().join("node.toml");
    let out = Command::new(BIN)
        .args([args[1], args[2], config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node.toml"), "{stderr}");

    let unit = parse_unit(UNIT);
    assert_eq!(
        unit["Unit"]["ConditionPathExists"],
        ["/var/lib/vrs/node.toml"],
        "an installed but uncreated node does not start (and does not restart in a loop)"
    );
    assert_eq!(one(&s, "WorkingDirectory"), "/var/lib/vrs");
    assert_eq!(one(&s, "KillSignal"), "SIGTERM");
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
}

#[test]
fn the_maintainer_scripts_make_the_user_and_keep_the_records() {
    assert!(POSTINST.contains("adduser --system --group --home /var/lib/vrs"));
    assert!(POSTINST.contains("install -d -m 0700 /var/lib/vrs"));
    assert!(POSTINST.contains("chown vrs:vrs /var/lib/vrs"));
    assert!(POSTINST.contains("install -d -m 0750 -o root -g vrs /etc/vrs"));
    for script in [POSTINST, POSTRM] {
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("\nset -e\n"));
        // cargo-deb puts the systemd snippets here.
        assert!(script.contains("\n#DEBHELPER#\n"));
    }
    assert!(
        !POSTRM.contains("rm -r") && !POSTRM.contains("rm -f"),
        "a purge never deletes records"
    );
}

#[test]
fn every_packaged_source_file_exists() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in ["Cargo.toml", "../coordinator/Cargo.toml"] {
        let text = std::fs::read_to_string(crate_dir.join(manifest)).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let deb = &doc["package"]["metadata"]["deb"];
        let base = crate_dir.join(manifest).parent().unwrap().to_path_buf();
        let assets = deb["assets"].as_array().unwrap();
        assert!(!assets.is_empty());
        let mut generated = 0;
        for asset in assets {
            let source = asset[0].as_str().unwrap();
            if source.starts_with("target/release/") {
                // Built, or generated by .ci/package from the binary.
                generated += 1;
                continue;
            }
            assert!(
                base.join(source).is_file(),
                "{manifest}: {source} is missing"
            );
        }
        assert!(generated >= 5, "binary, man pages and three completions");
        if let Some(scripts) = deb.get("maintainer-scripts") {
            let dir = base.join(scripts.as_str().unwrap());
            assert!(dir.join("postinst").is_file() && dir.join("vrs-node.service").is_file());
        }
    }
}
