//! `vrs-node init` through the real binary: the node directory is 0700 and the store (records
//! and the perturbation secret) 0600, as docs/OPERATING.md says (issue 12, item 11).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_the_node_directory_and_store_private() {
    let parent = tempfile::tempdir().unwrap();
    for dir in [parent.path().join("new-node"), parent.path().to_path_buf()] {
        let out = Command::new(BIN)
            .args(["init", "--dir", dir.to_str().unwrap(), "--country", "THA"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        let store = dir.join("node.sqlite");
        assert_eq!(mode(&store), 0o600, "{}", store.display());
        for side in ["node.sqlite-wal", "node.sqlite-shm"] {
            let p = dir.join(side);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
}
