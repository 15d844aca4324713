//! Regional mode in the demo and the tests: the helper aggregator on `127.0.0.1:0` with a
//! development certificate of its own (`helper.bali-rc.vrs.test`), the node.toml sections that
//! opt a node in, and the leader's parameters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vrs_coordinator::helper::{self, HelperConfig};
use vrs_coordinator::regional::RegionalParams;
use vrs_core::codes::Country;

use crate::{COORDINATOR, DemoError, LocalFederation, setup};

/// The demo helper's certificate identity.
pub fn helper_identity() -> String {
    format!("helper.{COORDINATOR}.vrs.test")
}

/// node.toml sections that let the demo helper fetch shares and opt the node in to regional
/// mode with the demo coordinator as leader, refusing results over fewer than `min_nodes`.
pub fn node_sections(min_nodes: u32) -> String {
    format!(
        "[[callers]]\nidentity = \"{helper}\"\n\n[[regional]]\nleader = \"{leader}\"\nhelper = \"{helper}\"\nmin_nodes = {min_nodes}\n",
        helper = helper_identity(),
        leader = vrs_core::tls::coordinator_identity(COORDINATOR),
    )
}

/// A helper running in this process.
#[derive(Debug)]
pub struct RunningHelper {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its directory (helper.toml, certificate, state file).
    pub dir: PathBuf,
    /// Its state file.
    pub state: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningHelper {
    /// Starts the helper for `nodes` (country and address) under `dir`, with `fed`'s PKI
    /// (`extra` is added to `[helper]`, e.g. `test_no_noise = true` in a test-only build).
    pub async fn start(
        fed: &LocalFederation,
        nodes: &[(Country, SocketAddr)],
        dir: &Path,
        extra: &str,
    ) -> Result<RunningHelper, DemoError> {
        std::fs::create_dir_all(dir).map_err(setup("helper dir"))?;
        let (cert, key) = fed
            .pki
            .issue_extra(
                &helper_identity(),
                vrs_certs_dev::ExtraKind::Valid,
                "helper",
            )
            .map_err(setup("helper certificate"))?;
        let signing_pub = std::fs::read_to_string(fed.pki.coordinator_paths().signing_pub)
            .map_err(setup("read signing key"))?;
        let mut text = format!(
            "[helper]\nleader = \"{leader}\"\nleader_signing_keys = [\"{key_hex}\"]\nfetch_deadline_ms = 5000\n{extra}\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            leader = vrs_core::tls::coordinator_identity(COORDINATOR),
            key_hex = signing_pub.trim(),
            ca = fed.pki.ca_path().display(),
            cert = cert.display(),
            key = key.display(),
        );
        for (country, addr) in nodes {
            text.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{country}\"\nendpoint = \"{addr}\"\n"
            ));
        }
        let path = dir.join("helper.toml");
        std::fs::write(&path, text).map_err(setup("write helper.toml"))?;
        let config = HelperConfig::load(&path).map_err(setup("helper config"))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(setup("bind"))?;
        let addr = listener.local_addr().map_err(setup("local address"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let state = config.state.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = helper::serve(listener, &config, |_| {}, shutdown).await {
                tracing::error!(error = %e, "helper stopped with an error");
            }
        });
        Ok(RunningHelper {
            addr,
            dir: dir.to_path_buf(),
            state,
            stop: Some(stop),
            task,
        })
    }

    /// The leader's parameters for this helper.
    pub fn params(&self, min_nodes: u32, max_cell: u64) -> RegionalParams {
        RegionalParams::new(
            helper_identity(),
            self.addr.to_string(),
            min_nodes,
            max_cell,
        )
    }

    /// Stops the helper (at most 10 s).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Every node of `fed` with its address, for [`RunningHelper::start`].
pub fn nodes_of(fed: &LocalFederation) -> Vec<(Country, SocketAddr)> {
    fed.nodes.iter().map(|n| (n.country, n.addr)).collect()
}
