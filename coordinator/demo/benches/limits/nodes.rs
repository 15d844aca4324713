//! Node processes: `vrs-node serve` children on 127.0.0.1 (port 0, one each), their node.toml,
//! the development certificates they use, and the coordinator's registry pointing at them.
//! [`NodeProcs`] stops every child it started when it is dropped, also on an error path.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use vrs_coordinator::registry::Registry;
use vrs_core::codes::Country;

/// Name of the benchmark coordinator.
pub const COORDINATOR: &str = "bench";

/// A development PKI for a set of nodes.
pub struct Pki {
    inner: vrs_certs_dev::DevPki,
    signing_pub: String,
}

impl Pki {
    /// Makes a fresh CA and certificates for `countries` in `dir`.
    pub fn generate(dir: &Path, countries: &[Country]) -> Result<Pki> {
        let names: Vec<&str> = countries.iter().map(|c| c.as_str()).collect();
        let inner = vrs_certs_dev::generate(dir, COORDINATOR, &names, 7)
            .with_context(|| format!("certificates in {}", dir.display()))?;
        let signing_pub = std::fs::read_to_string(inner.coordinator_paths().signing_pub)?
            .trim()
            .to_string();
        Ok(Pki { inner, signing_pub })
    }
}

/// The benchmark helper's certificate identity (regional mode).
pub fn helper_identity() -> String {
    format!("helper.{COORDINATOR}.vrs.test")
}

impl Pki {
    /// Issues the helper's certificate into the PKI's directory: `(ca, cert, key)`.
    pub fn helper_paths(&self) -> Result<(PathBuf, PathBuf, PathBuf)> {
        let (cert, key) = self.inner.issue_extra(
            &helper_identity(),
            vrs_certs_dev::ExtraKind::Valid,
            "helper",
        )?;
        Ok((self.inner.ca_path(), cert, key))
    }

    /// The coordinator's query-signing public key (hex).
    pub fn signing_pub(&self) -> &str {
        &self.signing_pub
    }
}

/// Writes `node.toml` into a node directory that already holds its store: the default disclosure
/// policy, a budget that the benchmark's repeated queries cannot exhaust, warnings-only logging,
/// and regional mode opted in with the benchmark coordinator and helper (`min_nodes` 3).
pub fn write_node_toml(node_dir: &Path, country: Country, pki: &Pki) -> Result<PathBuf> {
    let text = vrs_demo::dev_node_toml(
        country,
        &pki.inner,
        COORDINATOR,
        &pki.signing_pub,
        "request_timeout_secs = 600\n",
        &format!(
            "[budget]\nrate_per_minute = 1000000\nburst = 1000000\ndaily_queries = 100000000\n\n[log]\nlevel = \"warn\"\n\n[[callers]]\nidentity = \"{helper}\"\n\n[[regional]]\nleader = \"{leader}\"\nhelper = \"{helper}\"\nmin_nodes = 3\n",
            helper = helper_identity(),
            leader = vrs_core::tls::coordinator_identity(COORDINATOR),
        ),
    )?;
    let path = node_dir.join("node.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// One running `vrs-node serve`.
pub struct NodeProc {
    /// Its country.
    pub country: Country,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    // Held so that the node's stdout stays open while it runs.
    _stdout: BufReader<ChildStdout>,
}

impl NodeProc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Node processes, stopped (killed and reaped) on drop.
#[derive(Default)]
pub struct NodeProcs(pub Vec<NodeProc>);

impl Drop for NodeProcs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.child.kill();
        }
        for p in &mut self.0 {
            let _ = p.child.wait();
        }
    }
}

impl NodeProcs {
    /// Starts `vrs-node serve --config <dir>/node.toml` for each `(country, node_dir)` and waits
    /// for each to print the address it bound. A node's stderr goes to `<dir>/serve.log`.
    pub fn start(bin: &Path, nodes: &[(Country, PathBuf)]) -> Result<NodeProcs> {
        let mut procs = NodeProcs::default();
        for (country, dir) in nodes {
            procs.0.push(start_one(bin, *country, dir)?);
        }
        Ok(procs)
    }

    /// Writes a registry for the nodes (in this order) to `path`, and loads it.
    pub fn registry(&self, pki: &Pki, path: &Path) -> Result<Registry> {
        let addrs: Vec<SocketAddr> = self.0.iter().map(|n| n.addr).collect();
        self.registry_at(pki, path, &addrs)
    }

    /// [`NodeProcs::registry`] with each node reached at `addrs[i]` instead (a proxy in front).
    pub fn registry_at(&self, pki: &Pki, path: &Path, addrs: &[SocketAddr]) -> Result<Registry> {
        let c = pki.inner.coordinator_paths();
        let mut text = format!(
            "[coordinator]\nname = \"{COORDINATOR}\"\nsigning_key = \"{sk}\"\ndeadline_ms = 600000\nconnect_timeout_ms = 30000\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            sk = c.signing_key.display(),
            ca = c.ca.display(),
            cert = c.cert.display(),
            key = c.key.display(),
        );
        for (n, addr) in self.0.iter().zip(addrs) {
            text.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{}\"\nendpoint = \"{}\"\n",
                n.country, addr
            ));
        }
        std::fs::write(path, text)?;
        Ok(Registry::load(path)?)
    }
}

/// A running `vrs-helper`, stopped (killed and reaped) on drop.
pub struct HelperProc {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for HelperProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HelperProc {
    /// Writes `helper.toml` in `dir` for `nodes` and starts `bin` on 127.0.0.1:0.
    pub fn start(bin: &Path, dir: &Path, pki: &Pki, nodes: &NodeProcs) -> Result<HelperProc> {
        std::fs::create_dir_all(dir)?;
        let (ca, cert, key) = pki.helper_paths()?;
        let mut text = format!(
            "[helper]\nleader = \"{leader}\"\nleader_signing_keys = [\"{sk}\"]\nfetch_deadline_ms = 600000\nconnect_timeout_ms = 30000\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            leader = vrs_core::tls::coordinator_identity(COORDINATOR),
            sk = pki.signing_pub(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
        );
        for n in &nodes.0 {
            text.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{}\"\nendpoint = \"{}\"\n",
                n.country, n.addr
            ));
        }
        let config = dir.join("helper.toml");
        std::fs::write(&config, text)?;
        let log_path = dir.join("helper.log");
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("helper stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("vrs-helper listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the helper did not start (stdout {line:?}); its log:\n{log}");
        };
        let addr: SocketAddr = addr.parse().context("helper address")?;
        Ok(HelperProc {
            addr,
            child,
            _stdout: stdout,
        })
    }
}

/// Removes a cached store's audit log (with its ledger) before its node starts: the stores are
/// kept between runs, but what a run's nodes have answered and spent must be that run's alone.
/// Kept, the log of the fixed-cost node had grown to 1.6M entries (1.5 GB) in a day of runs, and
/// the 148 nodes' ledgers had spent the regional query's budget, so that a later run's
/// regional-mode query found no node able to answer ("0 nodes in the batch").
fn fresh_audit_log(dir: &Path) -> Result<()> {
    let log = dir.join(vrs_node::audit::AUDIT_FILE);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = log.clone().into_os_string();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("remove {}", PathBuf::from(path).display()));
            }
        }
    }
    Ok(())
}

fn start_one(bin: &Path, country: Country, dir: &Path) -> Result<NodeProc> {
    fresh_audit_log(dir)?;
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(dir.join("node.toml"))
        // `VRS_NODE_WORKERS=N` runs the nodes with N runtime workers (`TOKIO_WORKER_THREADS`)
        // without changing the harness's own runtime: how item 2's A/B was measured.
        .envs(
            std::env::var("VRS_NODE_WORKERS")
                .ok()
                .map(|v| ("TOKIO_WORKER_THREADS", v)),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("node {country} did not start (stdout {line:?}); its log:\n{log}");
    };
    let addr: SocketAddr = addr.parse().context("node address")?;
    Ok(NodeProc {
        country,
        addr,
        child,
        _stdout: stdout,
    })
}
