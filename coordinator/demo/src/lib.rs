//! The demo federation: everything on one machine, in one process, over real mutual TLS.
//!
//! [`LocalFederation::start`] makes a development CA and certificates in a directory, creates one
//! node store per country filled by the synthetic generator, starts each node's gRPC server on
//! `127.0.0.1:0`, and writes a registry pointing at them. [`run_demo`] then asks the standard
//! regional questions, prints the tables and writes the HTML report (`report.html`, see
//! [`vrs_coordinator::report`]). The integration tests start their federations the same way, so the demo is
//! exercised by CI.
//!
//! This crate is the demo's home so that the production coordinator (`vrs-coordinator`) links
//! no node store: only `vrs-demo` and the benchmark harness (`benches/limits`) link `vrs-node`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vrs_core::cli::IoError;
use vrs_core::codes::Country;
use vrs_core::query::{QueryLimits, RawQuery};
use vrs_node::config::NodeConfig;
use vrs_node::fx::FxRates;
use vrs_node::store::{ImportCounts, Store};
use vrs_node::synth::{self, SynthConfig};

use vrs_coordinator::fanout::Federation;
use vrs_coordinator::merge::Regional;
use vrs_coordinator::output;
use vrs_coordinator::registry::Registry;

pub mod regional;

/// Name of the demo coordinator (identity `coordinator.bali-rc.vrs.test`).
pub const COORDINATOR: &str = "bali-rc";

/// One node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Its country.
    pub country: Country,
    /// Synthetic incidents to load.
    pub incidents: u64,
    /// Generator seed.
    pub seed: u64,
    /// Extra TOML appended to the `[policy]` section (e.g. `min_count = 10`).
    pub policy: String,
    /// Extra TOML appended to the `[privacy]` section (e.g. `mode = "rules_v1"`); the demo
    /// declares the synthetic data's coverage there.
    pub privacy: String,
    /// Further whole sections appended to node.toml (e.g. regional mode's helper caller and
    /// `[[regional]]`, [`regional::node_sections`]).
    pub sections: String,
    /// Extra TOML in the `[server]` section (e.g. `max_concurrent_requests = 1`).
    pub server: String,
}

impl NodeSpec {
    /// A node with the default policy.
    pub fn new(country: &str, incidents: u64, seed: u64) -> Result<NodeSpec, DemoError> {
        Ok(NodeSpec {
            country: country
                .parse()
                .map_err(|_| DemoError::Setup(format!("{country} is not a country code")))?,
            incidents,
            seed,
            policy: String::new(),
            privacy: String::new(),
            sections: String::new(),
            server: String::new(),
        })
    }
}

/// A node running in this process.
#[derive(Debug)]
pub struct RunningNode {
    /// Its country.
    pub country: Country,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its node directory (store and node.toml).
    pub dir: PathBuf,
    task: JoinHandle<()>,
}

/// A development federation: certificates, running nodes and a registry file.
#[derive(Debug)]
pub struct LocalFederation {
    /// Root directory.
    pub dir: PathBuf,
    /// The registry file the coordinator reads.
    pub registry_path: PathBuf,
    /// The development PKI (for tests that need extra certificates).
    pub pki: vrs_certs_dev::DevPki,
    /// The nodes.
    pub nodes: Vec<RunningNode>,
    shutdown: watch::Sender<bool>,
}

/// Demo set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Something could not be set up; the message says what.
    #[error("demo set-up: {0}")]
    Setup(String),
    /// `--dir` names a directory that already holds files other than an earlier demo's.
    #[error(
        "{0} holds files that are not an earlier demo's: the demo needs a new or empty directory, or one it made"
    )]
    Occupied(String),
    /// A file or directory could not be made or copied.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl vrs_core::cli::CommandError for DemoError {}

/// The directory the demo keeps its files in when no `--dir` is given (relative to where it
/// runs), so the report and the nodes outlive the command.
pub const DEFAULT_DIR: &str = "vrs-demo";

/// The file that marks a directory as the demo's own: only such a directory is replaced when
/// the demo runs again.
pub const MARKER: &str = ".vrs-demo";

/// The demo's directory as an absolute path (default [`DEFAULT_DIR`] in the current directory):
/// the node.toml files and the registry name their certificates by it, and a relative name
/// would be read against each file's own directory.
pub fn demo_dir(dir: Option<&Path>) -> Result<PathBuf, DemoError> {
    let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_DIR), Path::to_path_buf);
    Ok(std::path::absolute(&dir).map_err(IoError::doing(format!("resolve {}", dir.display())))?)
}

/// Makes `dir` ready for a fresh demo: created when new, kept when empty, replaced when an
/// earlier demo made it (it holds [`MARKER`]); any other non-empty directory is refused, never
/// touched. Returns whether an earlier demo was replaced.
pub fn prepare_dir(dir: &Path) -> Result<bool, DemoError> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    let replaced = if occupied {
        if !dir.join(MARKER).is_file() {
            return Err(DemoError::Occupied(dir.display().to_string()));
        }
        std::fs::remove_dir_all(dir).map_err(IoError::doing(format!(
            "remove the earlier demo in {}",
            dir.display()
        )))?;
        true
    } else {
        false
    };
    std::fs::create_dir_all(dir).map_err(IoError::doing(format!("create {}", dir.display())))?;
    std::fs::write(
        dir.join(MARKER),
        "Made by vrs-demo; running vrs-demo again with this directory replaces it.\n",
    )
    .map_err(IoError::doing(format!("mark {}", dir.display())))?;
    Ok(replaced)
}

/// `vrs-demo`: runs the demo in `dir` (default [`DEFAULT_DIR`]; see [`prepare_dir`]) on a
/// runtime of its own, printing to standard output, and copies the report to `report` if given.
/// Everything stays in the directory afterwards: the report, the registry, the nodes' stores
/// and `node.toml` files (each naming the port the registry lists).
pub fn cli(dir: Option<&Path>, report: Option<&Path>) -> Result<std::process::ExitCode, DemoError> {
    let dir = demo_dir(dir)?;
    if prepare_dir(&dir)? {
        println!("Replacing the demo of an earlier run in {}", dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(IoError::doing("tokio runtime"))?;
    let mut stdout = std::io::stdout();
    runtime.block_on(run_demo(&dir, &mut stdout))?;
    if let Some(path) = report {
        std::fs::copy(dir.join("report.html"), path).map_err(IoError::doing(format!(
            "copy the report to {}",
            path.display()
        )))?;
        println!("Report copied to {}", path.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::Setup(format!("{what}: {e}"))
}

/// Loads `spec.incidents` synthetic incidents into a new store in `dir`.
pub fn load_synthetic(dir: &Path, spec: &NodeSpec) -> Result<(), DemoError> {
    let mut store = Store::create(dir, spec.country).map_err(setup("create store"))?;
    let fx = FxRates::sample();
    let mut tx = store
        .begin_import("synthetic", "-", &fx)
        .map_err(setup("begin import"))?;
    let mut counts = ImportCounts::default();
    for r in synth::generate(&SynthConfig::new(spec.country, spec.incidents, spec.seed)) {
        tx.insert(&r).map_err(setup("insert synthetic record"))?;
        counts.imported += 1;
    }
    tx.commit(counts).map_err(setup("commit"))?;
    Ok(())
}

/// The `[privacy]` lines of a demo node: the synthetic records' months as its declared
/// coverage, unless the spec declares its own.
pub fn privacy_section(spec: &NodeSpec) -> String {
    if spec.privacy.contains("coverage_from") {
        return spec.privacy.clone();
    }
    let synth = vrs_node::synth::SynthConfig::new(spec.country, spec.incidents, spec.seed);
    let last = (1..synth.months).fold(synth.start, |m, _| m.succ().unwrap_or(m));
    format!(
        "coverage_from = \"{}\"\ncoverage_to = \"{}\"\n{}",
        synth.start, last, spec.privacy
    )
}

/// The node.toml of a demo node.
fn node_toml(spec: &NodeSpec, pki: &vrs_certs_dev::DevPki) -> Result<String, DemoError> {
    let signing_pub = std::fs::read_to_string(pki.coordinator_paths().signing_pub)
        .map_err(setup("read signing key"))?;
    dev_node_toml(
        spec.country,
        pki,
        COORDINATOR,
        signing_pub.trim(),
        &spec.server,
        &format!(
            "[policy]\n{}\n\n[privacy]\n{}\n{}\n",
            spec.policy,
            privacy_section(spec),
            spec.sections
        ),
    )
    .map_err(setup("fx"))
}

/// A node.toml for a node on `127.0.0.1:0` with development certificates from `pki`, the
/// coordinator named `coordinator` as its one caller (`signing_pub`: its public key, hex) and
/// the sample exchange rates. `server` is added to `[server]` (e.g. `request_timeout_secs = 600`);
/// `sections` are further whole sections (`[policy]`, `[budget]`, `[log]`). The demo and the
/// benchmark harness both write their nodes' configuration with it.
pub fn dev_node_toml(
    country: Country,
    pki: &vrs_certs_dev::DevPki,
    coordinator: &str,
    signing_pub: &str,
    server: &str,
    sections: &str,
) -> Result<String, toml::ser::Error> {
    let (ca, cert, key) = pki.node_paths(country.as_str());
    let fx: String = toml::to_string(&FxRates::sample())?;
    Ok(format!(
        r#"[node]
country = "{country}"

[server]
listen = "127.0.0.1:0"
{server}
[tls]
ca = "{ca}"
cert = "{cert}"
key = "{key}"

[[callers]]
identity = "{caller}"
signing_keys = ["{signing_pub}"]

{sections}
[fx]
{fx}
"#,
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
        caller = vrs_core::tls::coordinator_identity(coordinator),
    ))
}

impl LocalFederation {
    /// Starts a federation of `specs` under `dir`.
    pub async fn start(dir: &Path, specs: &[NodeSpec]) -> Result<LocalFederation, DemoError> {
        vrs_core::tls::install_crypto_provider();
        let countries: Vec<&str> = specs.iter().map(|s| s.country.as_str()).collect();
        let pki = vrs_certs_dev::generate(&dir.join("certs"), COORDINATOR, &countries, 30)
            .map_err(setup("certificates"))?;
        let (shutdown, watcher) = watch::channel(false);
        let mut nodes = Vec::with_capacity(specs.len());
        let mut registry = String::new();
        for spec in specs {
            let node_dir = dir.join(format!(
                "node-{}",
                spec.country.as_str().to_ascii_lowercase()
            ));
            let spec_owned = spec.clone();
            let dir_owned = node_dir.clone();
            tokio::task::spawn_blocking(move || load_synthetic(&dir_owned, &spec_owned))
                .await
                .map_err(setup("load task"))??;
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(setup("bind"))?;
            let addr = listener.local_addr().map_err(setup("local address"))?;
            // node.toml names the port the registry lists, so a kept demo directory's nodes can
            // be started again with `vrs-node serve --config …` and found where they were.
            let toml_text = node_toml(spec, &pki)?.replacen(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"{addr}\""),
                1,
            );
            let config_path = node_dir.join("node.toml");
            std::fs::write(&config_path, &toml_text).map_err(setup("write node.toml"))?;
            let config = NodeConfig::load(&config_path).map_err(setup("node config"))?;
            let mut rx = watcher.clone();
            let country = spec.country;
            let task = tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                if let Err(e) = vrs_node::server::serve(listener, &config, stop).await {
                    tracing::error!(%country, error = %e, "node stopped with an error");
                }
            });
            registry.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{country}\"\nendpoint = \"{addr}\"\n"
            ));
            nodes.push(RunningNode {
                country,
                addr,
                dir: node_dir,
                task,
            });
        }
        let c = pki.coordinator_paths();
        let registry_text = format!(
            "[coordinator]\nname = \"{COORDINATOR}\"\nsigning_key = \"{sk}\"\ndeadline_ms = 5000\nconnect_timeout_ms = 2000\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n{registry}",
            sk = c.signing_key.display(),
            ca = c.ca.display(),
            cert = c.cert.display(),
            key = c.key.display(),
        );
        let registry_path = dir.join("registry.toml");
        std::fs::write(&registry_path, registry_text).map_err(setup("write registry"))?;
        Ok(LocalFederation {
            dir: dir.to_path_buf(),
            registry_path,
            pki,
            nodes,
            shutdown,
        })
    }

    /// Stops the node of `country` at once, as a crash would (its listener closes; the
    /// others keep running). False when there is no such node.
    pub fn abort_node(&self, country: &str) -> bool {
        match self.nodes.iter().find(|n| n.country.as_str() == country) {
            Some(n) => {
                n.task.abort();
                true
            }
            None => false,
        }
    }

    /// The registry.
    pub fn registry(&self) -> Result<Registry, DemoError> {
        Registry::load(&self.registry_path).map_err(setup("registry"))
    }

    /// Stops every node and waits (at most 10 s each) for them to finish; a node that does not
    /// stop in time is aborted.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for n in self.nodes {
            let abort = n.task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(10), n.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// The demo node whose console gets an account ([`console_account`]).
pub const CONSOLE_NODE: &str = "node-tha";
/// The console account the demo makes.
pub const CONSOLE_ADMIN: &str = "admin";

/// Makes the admin account [`CONSOLE_ADMIN`] in the console of the node in `node_dir`, with a
/// fresh random password (80 bits from the OS's generator), and returns that password for the
/// demo to print once: the demo's nodes are new each run, so a fixed password would be a
/// well-known one, and the console stores only the password's argon2id hash.
pub fn console_account(node_dir: &Path) -> Result<String, DemoError> {
    use vrs_node::console::accounts::{Password, Role, Username};
    let random = vrs_node::console::sessions::Token::random().map_err(setup("randomness"))?;
    let password: String = random.as_str().chars().take(20).collect();
    let mut db =
        vrs_node::console::db::ConsoleDb::open(node_dir).map_err(setup("console.sqlite"))?;
    let now = vrs_core::clock::Clock::now_ms(&vrs_core::clock::SystemClock);
    db.add_user(
        now,
        "vrs-demo",
        &Username::parse(CONSOLE_ADMIN).map_err(setup("username"))?,
        "Demo admin",
        Role::Admin,
        &Password::new(password.clone()).map_err(setup("password"))?,
    )
    .map_err(setup("console account"))?;
    Ok(password)
}

/// A standard regional question.
#[derive(Debug, Clone)]
pub struct Question {
    /// Title printed above the table.
    pub title: &'static str,
    /// The query.
    pub query: RawQuery,
}

fn q(title: &'static str, unit: &str, by: &str, from: &str, margins: bool) -> Question {
    Question {
        title,
        query: RawQuery {
            unit: unit.into(),
            group_by: by.split(',').map(str::to_string).collect(),
            filters: Vec::new(),
            period_from: from.into(),
            period_to: String::new(),
            margins,
            rho_micro: 0,
        },
    }
}

/// The standard regional questions of the demo and the report. Under zCDP a node releases its
/// whole data-independent universe and refuses one above `max_cells`; the route question's
/// (origins × destinations × quarters) is narrowed to the federation's countries when asked
/// ([`ask`]), the others are small.
pub fn standard_questions() -> Vec<Question> {
    vec![
        q(
            "Migrants detected by route (to the federation's countries) and quarter, 2024",
            "migrants",
            "route,quarter",
            "2024",
            false,
        ),
        q(
            "Incidents by method and mode",
            "incidents",
            "method,mode",
            "",
            false,
        ),
        q(
            "Smugglers by role and stage",
            "smugglers",
            "smuggler_role,smuggler_stage",
            "",
            false,
        ),
        q("Fees by band (USD)", "fees", "fee_band", "", true),
        q(
            "Deaths by quarter, 2024",
            "deaths",
            "quarter",
            "2024",
            false,
        ),
    ]
}

/// Asks one question (kept under the nodes' cell cap: [`vrs_coordinator::budget::fit_universe`]) and
/// merges the answers.
pub async fn ask(fed: &Federation, raw: &RawQuery) -> Result<Regional, DemoError> {
    let query = vrs_coordinator::budget::fit_universe(fed, raw, &QueryLimits::default())
        .await
        .map_err(setup("query"))?;
    let (_, _, regional) = fed.ask_merged(&query).await.map_err(setup("fan-out"))?;
    Ok(regional)
}

/// The default demo nodes: four countries of the Bali Process region, each opted in to
/// regional mode with the demo coordinator and helper (`min_nodes` 3).
pub fn default_specs() -> Result<Vec<NodeSpec>, DemoError> {
    let mut specs = vec![
        NodeSpec::new("THA", 4_000, 1)?,
        NodeSpec::new("IDN", 3_000, 2)?,
        NodeSpec::new("MYS", 2_500, 3)?,
        NodeSpec::new("AUS", 600, 4)?,
    ];
    for s in &mut specs {
        s.sections = regional::node_sections(3);
    }
    Ok(specs)
}

/// The demo's regional-mode question, asked beside the per-node one of the same title.
pub fn regional_question() -> Question {
    q(
        "Deaths by quarter, 2024",
        "deaths",
        "quarter",
        "2024",
        false,
    )
}

/// Starts the demo helper, names it in the registry's `[regional]` section, and asks
/// [`regional_question`] in regional mode.
async fn ask_regional(
    fed_nodes: &LocalFederation,
    dir: &Path,
) -> Result<vrs_coordinator::regional::RegionalResult, DemoError> {
    let helper = regional::RunningHelper::start(
        fed_nodes,
        &regional::nodes_of(fed_nodes),
        &dir.join("helper"),
        "",
    )
    .await?;
    let section = format!(
        "\n[regional]\nhelper = \"{}\"\nhelper_endpoint = \"{}\"\nmin_nodes = 3\nmax_cell = 100000\n",
        regional::helper_identity(),
        helper.addr
    );
    let answer = async {
        let mut text =
            std::fs::read_to_string(&fed_nodes.registry_path).map_err(setup("read registry"))?;
        if !text.contains("[regional]") {
            text.push_str(&section);
            std::fs::write(&fed_nodes.registry_path, text).map_err(setup("write registry"))?;
        }
        let registry = fed_nodes.registry()?;
        let fed = Federation::connect(&registry).map_err(setup("connect"))?;
        let leader =
            vrs_coordinator::regional::Leader::connect(&registry, fed, helper.params(3, 100_000))
                .map_err(setup("helper"))?;
        let query =
            vrs_core::query::Query::parse(&regional_question().query, &QueryLimits::default())
                .map_err(setup("query"))?;
        leader.ask(&query).await.map_err(setup("regional mode"))
    }
    .await;
    helper.stop().await;
    answer
}

/// Runs the demo: starts the federation under `dir`, asks the standard questions, prints the
/// tables to `out`, stops the nodes.
pub async fn run_demo(
    dir: &Path,
    out: &mut (dyn std::io::Write + Send),
) -> Result<Vec<Regional>, DemoError> {
    let started = std::time::Instant::now();
    let fed_nodes = LocalFederation::start(dir, &default_specs()?).await?;
    let registry = fed_nodes.registry()?;
    let write = |out: &mut (dyn std::io::Write + Send), s: &str| -> Result<(), DemoError> {
        out.write_all(s.as_bytes()).map_err(setup("write output"))
    };
    write(
        out,
        &format!(
            "VRS Federation demo: {} nodes on 127.0.0.1 over mutual TLS 1.3 ({}), started in {:.1} s\n",
            fed_nodes.nodes.len(),
            fed_nodes
                .nodes
                .iter()
                .map(|n| format!("{} {}", n.country, n.addr))
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        ),
    )?;
    let result = async {
        let fed = Federation::connect(&registry).map_err(setup("connect"))?;
        let mut answers = Vec::new();
        for question in standard_questions() {
            let regional = ask(&fed, &question.query).await?;
            write(out, &format!("\n== {} ==\n", question.title))?;
            write(out, &output::text_distinguishable(&regional, true))?;
            answers.push(regional);
        }
        let regional_result = ask_regional(&fed_nodes, dir).await?;
        write(
            out,
            &format!(
                "\n== {} — regional mode (secure aggregation: no party sees a state's figures) ==\n{}",
                regional_question().title,
                vrs_coordinator::regional::text(&regional_result)
            ),
        )?;
        let mut report = vrs_coordinator::report::build(
            &registry,
            &vrs_coordinator::report::PeriodRange::default(),
            std::sync::Arc::new(vrs_core::clock::SystemClock),
        )
        .await
        .map_err(setup("report"))?;
        report.regional = vec![vrs_coordinator::report::RegionalSection {
            figure: vrs_coordinator::report::Figure::Deaths,
            result: Ok(regional_result),
        }];
        let report_path = dir.join("report.html");
        std::fs::write(&report_path, vrs_coordinator::report::render(&report))
            .map_err(setup("write report"))?;
        write(out, &format!("\nReport: {}\n", report_path.display()))?;
        let questions = vrs_coordinator::budget::spend(&answers);
        let report_spend = vrs_coordinator::budget::spend(report.answers());
        write(
            out,
            &format!(
                "\n{}{}",
                vrs_coordinator::budget::spend_text("the standard questions", &questions),
                vrs_coordinator::budget::spend_text("the report (after them)", &report_spend)
            ),
        )?;
        Ok::<_, DemoError>(answers)
    }
    .await;
    fed_nodes.stop().await;
    let answers = result?;
    let console_node = dir.join(CONSOLE_NODE);
    let password = tokio::task::spawn_blocking(move || console_account(&console_node))
        .await
        .map_err(setup("console account task"))??;
    let d = dir.display();
    write(
        out,
        &format!(
            "\nDone in {:.1} s. Everything is kept in {d}:\n  \
             report      {d}/report.html\n  \
             registry    {d}/registry.toml (vrs-coordinator --registry {d}/registry.toml …)\n  \
             nodes       {d}/node-*/node.toml (start one again: vrs-node serve --config {d}/node-tha/node.toml)\n\
             Run the demo again to replace it, or remove it with: rm -r {d}\n\
             Web console of THA: target/debug/vrs-node console --config {d}/{CONSOLE_NODE}, open \
             http://127.0.0.1:7480 and sign in as {CONSOLE_ADMIN} with password {password} \
             (printed only now; the node keeps only its argon2id hash)\n",
            started.elapsed().as_secs_f64(),
        ),
    )?;
    Ok(answers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: failing loudly is the point
    use super::*;
    use vrs_node::console::accounts::{Password, Role, SignIn};

    #[test]
    fn the_console_account_signs_in_with_the_printed_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let password = console_account(dir.path()).unwrap();
        assert_eq!(password.len(), 20);
        let other = tempfile::tempdir().unwrap();
        let again = console_account(other.path()).unwrap();
        assert_ne!(password, again, "a fresh password every run");
        let mut db = vrs_node::console::db::ConsoleDb::open(dir.path()).unwrap();
        let ok = db
            .sign_in(0, CONSOLE_ADMIN, &Password::typed(password.clone()), 1)
            .unwrap();
        assert!(matches!(ok, SignIn::Ok(u) if u.role == Role::Admin));
        let wrong = db
            .sign_in(
                0,
                CONSOLE_ADMIN,
                &Password::typed(format!("{password}x")),
                1,
            )
            .unwrap();
        assert_eq!(wrong, SignIn::Wrong);
    }
}
