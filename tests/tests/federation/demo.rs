//! Issue 16, item 2: the demo's directory outlives the command. The report it names exists
//! afterwards, the directory can be restarted as OUTPUTS.md says (each node.toml listens where
//! the registry says), running the demo again replaces its own directory, and a directory it
//! did not make is refused and left alone.

use std::time::Duration;

use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_coordinator::registry::Registry;
use vrs_core::query::{Query, QueryLimits, RawQuery};

/// README command 1 runs the demo with its default, relative directory: the paths it writes into
/// node.toml and the registry must not be read against those files' own directories.
#[test]
fn the_default_directory_is_made_absolute() {
    let dir = vrs_demo::demo_dir(None).unwrap();
    assert!(dir.is_absolute(), "{}", dir.display());
    assert!(dir.ends_with(vrs_demo::DEFAULT_DIR));
    let given = vrs_demo::demo_dir(Some(std::path::Path::new("some/where"))).unwrap();
    assert!(given.is_absolute() && given.ends_with("some/where"));
}

#[test]
fn the_demo_keeps_a_directory_that_restarts_and_is_replaced_only_when_it_is_its_own() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("demo");
    vrs_demo::cli(Some(&dir), None).unwrap();
    assert!(std::fs::metadata(dir.join("report.html")).unwrap().len() > 10_000);
    assert!(dir.join(vrs_demo::MARKER).is_file());
    // The demo ran a helper and answered one question in regional mode: the report has the
    // section, the registry names the helper, the helper kept its state (no values in it).
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"regional\""));
    assert!(html.contains("4 nodes in the totals"));
    let registry_text = std::fs::read_to_string(dir.join("registry.toml")).unwrap();
    assert!(registry_text.contains("[regional]"));
    let state = std::fs::read_to_string(dir.join("helper").join("helper-state.jsonl")).unwrap();
    assert!(state.contains("\"aggregated\""), "{state}");

    // Every node.toml listens on the port the registry lists.
    let registry = Registry::load(&dir.join("registry.toml")).unwrap();
    let configs: Vec<vrs_node::config::NodeConfig> = registry
        .nodes
        .iter()
        .map(|n| {
            let path = dir
                .join(format!("node-{}", n.country.as_str().to_ascii_lowercase()))
                .join("node.toml");
            let config = vrs_node::config::NodeConfig::load(&path).unwrap();
            assert_eq!(config.file.server.listen.to_string(), n.endpoint);
            config
        })
        .collect();

    // Restarted as OUTPUTS.md says (here in-process rather than `vrs-node serve`), the nodes
    // answer the registry's coordinator.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        for config in configs {
            let mut stopped = stopped.clone();
            let listener = tokio::net::TcpListener::bind(config.file.server.listen)
                .await
                .unwrap();
            servers.push(tokio::spawn(async move {
                vrs_node::server::serve(listener, &config, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
            }));
        }
        let federation = Federation::connect(&registry).unwrap();
        let raw = RawQuery {
            unit: "incidents".into(),
            group_by: vec!["quarter".into()],
            ..RawQuery::default()
        };
        let query = Query::parse(&raw, &QueryLimits::default()).unwrap();
        let (_, results) = federation.ask(&query).await.unwrap();
        for r in &results {
            assert!(
                matches!(r.outcome, NodeOutcome::Answered(_)),
                "{}: {:?}",
                r.country,
                r.outcome
            );
        }
        let _ = stop.send(true);
        for s in servers {
            tokio::time::timeout(Duration::from_secs(10), s)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    });

    // Running it again replaces its own directory; a directory of someone else's is refused.
    assert!(
        vrs_demo::prepare_dir(&dir).unwrap(),
        "an earlier demo is replaced"
    );
    assert!(!dir.join("report.html").exists());
    let other = root.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    assert!(matches!(
        vrs_demo::prepare_dir(&other),
        Err(vrs_demo::DemoError::Occupied(_))
    ));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "keep me"
    );
}
