//! Integration-test harness: real nodes and a coordinator on 127.0.0.1 over real mutual TLS.
//!
//! - [`TestFederation`] starts country nodes through the demo's
//!   [`LocalFederation`](vrs_demo::LocalFederation) (development CA, synthetic stores,
//!   `vrs_node::server::serve` on `127.0.0.1:0`), waits until each answers `Describe`, and hands
//!   out the registry, a [`Federation`] (the coordinator's fan-out), extra certificates, and
//!   registries of its own making. `stop()` shuts every node down; dropping it does too.
//! - [`NodeClient`] talks to one node directly with any rustls client config: the coordinator's
//!   ([`client_config`]), none ([`no_certificate_config`]) or TLS 1.2 only ([`tls12_config`]).
//! - [`Signer`] builds and signs `QueryEnvelope`s the way the coordinator does, with [`Tamper`]
//!   knobs for the refusals a node must make.
//! - [`SlowNode`] stands in for a node that answers only after a delay, behind real mutual TLS.
//!
//! Everything is bounded: every call has a timeout, readiness is polled a bounded number of
//! times, and stopping a server is bounded too.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The test harness: a set-up that fails should stop the test loudly, not be handled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vrs_certs_dev::{DevPki, ExtraKind};
use vrs_coordinator::fanout::Federation;
use vrs_coordinator::registry::Registry;
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::signing::SigningKey;
use vrs_core::tls::{self, TlsError, TlsPaths};
use vrs_demo::{COORDINATOR, LocalFederation, NodeSpec};
use vrs_proto::pb;
use vrs_proto::pb::federation_client::FederationClient;
use vrs_proto::pb::federation_server::FederationServer;

/// Longest any single test call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest stopping a server may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times readiness is polled before a test gives up.
const READY_ATTEMPTS: u32 = 20;
/// Pause between readiness polls (grows linearly with the attempt).
const READY_PAUSE: Duration = Duration::from_millis(25);

/// Policy text (appended inside `[policy]`, so it may open the `[policy.perturbation]` table)
/// that keeps the default thresholds but turns perturbation off: released values are exact.
pub const NO_PERTURBATION: &str = concat!(
    "min_count = 5\n",
    "min_contributors = 3\n",
    "dominance_p = 25\n",
    "[policy.perturbation]\n",
    "enabled = false\n",
);

/// The certificate identity of the demo coordinator, `coordinator.bali-rc.vrs.test`.
pub fn coordinator_identity() -> String {
    tls::coordinator_identity(COORDINATOR)
}

/// A node spec: `incidents` synthetic incidents from `seed`, with `policy` appended to `[policy]`.
pub fn spec(country: &str, incidents: u64, seed: u64, policy: &str) -> NodeSpec {
    let mut spec = NodeSpec::new(country, incidents, seed).expect("a valid country code");
    spec.policy = policy.to_owned();
    spec
}

/// `[privacy]` text that puts a node in the older rules mode (not protected against many
/// queries), for tests of that mode.
pub const RULES_V1: &str = "mode = \"rules_v1\"\n";

/// Like [`spec`], with `privacy` appended to `[privacy]` (the synthetic data's coverage is
/// declared unless `privacy` declares its own).
pub fn spec_with(
    country: &str,
    incidents: u64,
    seed: u64,
    policy: &str,
    privacy: &str,
) -> NodeSpec {
    let mut spec = spec(country, incidents, seed, policy);
    spec.privacy = privacy.to_owned();
    spec
}

/// One `[[nodes]]` entry of a registry written by [`TestFederation::write_registry`].
#[derive(Debug, Clone)]
pub struct RegistryNode {
    /// ISO3 code.
    pub country: String,
    /// `host:port`.
    pub endpoint: String,
    /// Identity the node must present; `None` for the default `node.<iso3>.vrs.test`.
    pub identity: Option<String>,
}

impl RegistryNode {
    /// An entry with the default identity.
    pub fn new(country: &str, endpoint: impl ToString) -> RegistryNode {
        RegistryNode {
            country: country.to_owned(),
            endpoint: endpoint.to_string(),
            identity: None,
        }
    }
}

/// Nodes started by [`LocalFederation`] in a temporary directory.
#[derive(Debug)]
pub struct TestFederation {
    /// `None` once stopped.
    local: Option<LocalFederation>,
    /// Certificates, stores and registries; removed when the harness is dropped.
    dir: tempfile::TempDir,
}

impl TestFederation {
    /// Nodes with the default policy: `(country, incidents, seed)`.
    pub async fn with_nodes(nodes: &[(&str, u64, u64)]) -> TestFederation {
        let specs: Vec<NodeSpec> = nodes
            .iter()
            .map(|(country, incidents, seed)| spec(country, *incidents, *seed, ""))
            .collect();
        TestFederation::start(&specs).await
    }

    /// Starts `specs` and waits until every node answers `Describe` to the coordinator.
    pub async fn start(specs: &[NodeSpec]) -> TestFederation {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let local = LocalFederation::start(dir.path(), specs)
            .await
            .expect("the federation starts");
        let fed = TestFederation {
            local: Some(local),
            dir,
        };
        for country in fed.countries() {
            fed.wait_ready(&country).await;
        }
        fed
    }

    fn local(&self) -> &LocalFederation {
        self.local.as_ref().expect("the federation is running")
    }

    /// The running [`LocalFederation`] (regional mode's helper starts from it).
    pub fn local_federation(&self) -> &LocalFederation {
        self.local()
    }

    /// The directory holding certificates, stores and registries.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The development PKI (to issue extra certificates).
    pub fn pki(&self) -> &DevPki {
        &self.local().pki
    }

    /// The countries of the running nodes, in start order.
    pub fn countries(&self) -> Vec<String> {
        self.local()
            .nodes
            .iter()
            .map(|n| n.country.to_string())
            .collect()
    }

    /// Where the node of `country` listens.
    pub fn addr(&self, country: &str) -> SocketAddr {
        self.local()
            .nodes
            .iter()
            .find(|n| n.country.as_str() == country)
            .unwrap_or_else(|| panic!("no node {country}"))
            .addr
    }

    /// The directory of the node of `country` (its store, node.toml and audit log).
    pub fn node_dir(&self, country: &str) -> PathBuf {
        self.local()
            .nodes
            .iter()
            .find(|n| n.country.as_str() == country)
            .unwrap_or_else(|| panic!("no node {country}"))
            .dir
            .clone()
    }

    /// The registry the demo wrote (every node, default identities, 5 s deadline).
    pub fn registry(&self) -> Registry {
        self.local().registry().expect("the registry loads")
    }

    /// The coordinator's fan-out over [`TestFederation::registry`].
    pub fn federation(&self) -> Federation {
        Federation::connect(&self.registry()).expect("the coordinator connects")
    }

    /// The coordinator's TLS files.
    pub fn coordinator_tls(&self) -> TlsPaths {
        let c = self.pki().coordinator_paths();
        TlsPaths {
            ca: c.ca,
            cert: c.cert,
            key: c.key,
        }
    }

    /// The TLS files of the node of `country` (its server certificate and key).
    pub fn node_tls(&self, country: &str) -> TlsPaths {
        let (ca, cert, key) = self.pki().node_paths(country);
        TlsPaths { ca, cert, key }
    }

    /// TLS files with an extra certificate for `san` (see [`DevPki::issue_extra`]).
    pub fn extra_tls(&self, san: &str, kind: ExtraKind, name: &str) -> TlsPaths {
        let (cert, key) = self
            .pki()
            .issue_extra(san, kind, name)
            .expect("the extra certificate is issued");
        TlsPaths {
            ca: self.pki().ca_path(),
            cert,
            key,
        }
    }

    /// The coordinator's query signer.
    pub fn signer(&self) -> Signer {
        let key = SigningKey::load(&self.pki().coordinator_paths().signing_key)
            .expect("the coordinator's signing key loads");
        Signer::new(key, coordinator_identity())
    }

    /// Dials the node of `country` with `config`, expecting its own identity.
    pub async fn client(
        &self,
        country: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<NodeClient, TlsError> {
        NodeClient::connect(self.addr(country), &tls::node_identity(country), config).await
    }

    /// Dials the node of `country` as the coordinator; panics if that fails.
    pub async fn coordinator_client(&self, country: &str) -> NodeClient {
        self.client(country, client_config(&self.coordinator_tls()))
            .await
            .expect("the coordinator connects")
    }

    /// Writes a registry of the coordinator's files and `nodes` to `<dir>/<file_name>` and loads it.
    pub fn write_registry(
        &self,
        file_name: &str,
        nodes: &[RegistryNode],
        deadline: Duration,
        connect_timeout: Duration,
    ) -> Registry {
        let c = self.pki().coordinator_paths();
        let mut text = format!(
            "[coordinator]\nname = \"{COORDINATOR}\"\nsigning_key = \"{}\"\ndeadline_ms = {}\nconnect_timeout_ms = {}\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            c.signing_key.display(),
            deadline.as_millis(),
            connect_timeout.as_millis(),
            c.ca.display(),
            c.cert.display(),
            c.key.display(),
        );
        for n in nodes {
            text.push_str(&format!(
                "\n[[nodes]]\ncountry = \"{}\"\nendpoint = \"{}\"\n",
                n.country, n.endpoint
            ));
            if let Some(identity) = &n.identity {
                text.push_str(&format!("identity = \"{identity}\"\n"));
            }
        }
        let path = self.dir().join(file_name);
        std::fs::write(&path, text).expect("the registry is written");
        Registry::load(&path).expect("the registry loads")
    }

    /// Polls `Describe` on the node of `country` until it answers (a bounded number of times).
    async fn wait_ready(&self, country: &str) {
        let mut last = String::new();
        for attempt in 1..=READY_ATTEMPTS {
            match self
                .client(country, client_config(&self.coordinator_tls()))
                .await
            {
                Ok(client) => match client.describe().await {
                    Ok(d) if d.country == country => return,
                    Ok(d) => panic!("node {country} describes itself as {}", d.country),
                    Err(status) => last = status.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(READY_PAUSE * attempt).await;
        }
        panic!("node {country} is not ready: {last}");
    }

    /// Stops every node and waits (bounded) until they have finished.
    pub async fn stop(mut self) {
        if let Some(local) = self.local.take() {
            tokio::time::timeout(STOP_TIMEOUT, local.stop())
                .await
                .expect("the nodes stop in time");
        }
    }
}

impl Drop for TestFederation {
    /// Backstop for a test that panicked before `stop()`: dropping the [`LocalFederation`] drops
    /// its shutdown sender, which every node's shutdown signal waits on.
    fn drop(&mut self) {
        drop(self.local.take());
    }
}

/// A free port on 127.0.0.1 with nothing listening (bound, then released).
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address")
}

// ---------------------------------------------------------------------------------------------
// Client TLS configs

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let pem = std::fs::read(path).expect("a PEM file");
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("PEM certificates")
}

fn key(path: &Path) -> rustls::pki_types::PrivateKeyDer<'static> {
    let pem = std::fs::read(path).expect("a PEM file");
    rustls_pemfile::private_key(&mut pem.as_slice())
        .expect("a PEM key file")
        .expect("a private key")
}

fn roots(ca: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca) {
        roots.add(cert).expect("a CA certificate");
    }
    roots
}

/// The coordinator-style client config (TLS 1.3, presents `paths.cert`), as the coordinator
/// builds it.
pub fn client_config(paths: &TlsPaths) -> Arc<rustls::ClientConfig> {
    tls::client_config(paths).expect("a client config")
}

/// A TLS 1.3 client that trusts the federation CA but presents no certificate.
pub fn no_certificate_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots(ca))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A client that speaks only TLS 1.2, presenting `paths.cert`.
pub fn tls12_config(paths: &TlsPaths) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots(&paths.ca))
        .with_client_auth_cert(certs(&paths.cert), key(&paths.key))
        .expect("a certificate and its key");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------------
// Talking to one node

/// A gRPC connection to one node; every call is bounded by [`CALL_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct NodeClient {
    channel: Channel,
}

/// Runs a call with [`CALL_TIMEOUT`]; a timeout becomes `DEADLINE_EXCEEDED`.
async fn bounded<T>(call: impl Future<Output = Result<Response<T>, Status>>) -> Result<T, Status> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map(Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("test call timed out")),
    }
}

impl NodeClient {
    /// Dials `addr` with `config`; the server must prove it is `identity`. Under TLS 1.3 a client
    /// certificate the server refuses shows up on the first call, not here.
    pub async fn connect(
        addr: SocketAddr,
        identity: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<NodeClient, TlsError> {
        let channel = tls::connect(&addr.to_string(), identity, config, CONNECT_TIMEOUT).await?;
        Ok(NodeClient { channel })
    }

    /// `Describe`.
    pub async fn describe(&self) -> Result<pb::DescribeResponse, Status> {
        let mut client = FederationClient::new(self.channel.clone());
        bounded(client.describe(pb::DescribeRequest {})).await
    }

    /// `Aggregate` with a request as given (see [`Signer`]).
    pub async fn aggregate(
        &self,
        request: pb::AggregateRequest,
    ) -> Result<pb::AggregateResponse, Status> {
        let mut client =
            FederationClient::new(self.channel.clone()).max_encoding_message_size(64 * 1024 * 1024);
        bounded(client.aggregate(request)).await
    }

    /// `Aggregate` sent with `grpc-timeout` = `deadline`, and abandoned by this side after
    /// `abandon_after` (the stream is reset, as when a caller goes away): `None` when abandoned.
    pub async fn aggregate_abandoned(
        &self,
        request: pb::AggregateRequest,
        deadline: Duration,
        abandon_after: Duration,
    ) -> Option<Result<pb::AggregateResponse, Status>> {
        let mut client = FederationClient::new(self.channel.clone());
        let mut req = tonic::Request::new(request);
        req.set_timeout(deadline);
        tokio::time::timeout(abandon_after, client.aggregate(req))
            .await
            .ok()
            .map(|r| r.map(Response::into_inner))
    }

    /// `Plan` with a request as given.
    pub async fn plan(&self, request: pb::AggregateRequest) -> Result<pb::PlanResponse, Status> {
        let mut client = FederationClient::new(self.channel.clone());
        bounded(client.plan(request)).await
    }

    /// `grpc.health.v1.Health/Check` for `service` ("" for the whole server).
    pub async fn health(&self, service: &str) -> Result<ServingStatus, Status> {
        let mut client = HealthClient::new(self.channel.clone());
        let response = bounded(client.check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        }))
        .await?;
        Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
    }

    /// The services listed by `grpc.reflection.v1` server reflection.
    pub async fn reflection_services(&self) -> Result<Vec<String>, Status> {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

        let mut client = ServerReflectionClient::new(self.channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream =
            bounded(client.server_reflection_info(tokio_stream::iter([request]))).await?;
        let first: Option<ServerReflectionResponse> =
            match tokio::time::timeout(CALL_TIMEOUT, stream.message()).await {
                Ok(message) => message?,
                Err(_) => return Err(Status::deadline_exceeded("test call timed out")),
            };
        match first.and_then(|r| r.message_response) {
            Some(MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => Err(Status::internal(format!(
                "unexpected reflection answer: {other:?}"
            ))),
        }
    }
}

/// The node's stable reason (`vrs-reason` metadata) of a refusal, if it sent one.
pub fn reason(status: &Status) -> Option<String> {
    status
        .metadata()
        .get("vrs-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Signed queries

/// A fresh random query id (32 hex characters), like the coordinator's.
pub fn fresh_query_id() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    hex::encode(bytes)
}

/// A query on the wire: `unit` grouped by `group_by`, no filters, whole period.
pub fn query(unit: &str, group_by: &[&str]) -> pb::Query {
    pb::Query {
        unit: unit.to_owned(),
        group_by: group_by.iter().map(|d| (*d).to_owned()).collect(),
        ..pb::Query::default()
    }
}

/// How [`Signer::request`] spoils a request.
#[derive(Debug, Clone)]
pub enum Tamper {
    /// Nothing: a correct request.
    None,
    /// One bit of the signature flipped.
    Signature,
    /// Issued at `now + offset_ms` (negative: in the past).
    IssuedAt {
        /// Milliseconds from now.
        offset_ms: i64,
    },
    /// Addressed to this country instead.
    Audience(String),
    /// Names this issuer instead of the coordinator's identity.
    Issuer(String),
    /// Uses this query id.
    QueryId(String),
    /// Signed with a key the node does not know, under that key's id.
    UnknownKey,
}

/// Builds and signs `QueryEnvelope`s like the coordinator: Ed25519 over the exact envelope bytes.
pub struct Signer {
    key: SigningKey,
    issuer: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Signer {
    /// A signer with `key` that names `issuer` in its envelopes.
    pub fn new(key: SigningKey, issuer: String) -> Signer {
        Signer { key, issuer }
    }

    /// The id of the signing key.
    pub fn key_id(&self) -> String {
        self.key.key_id()
    }

    /// A correct envelope for the node of `audience`: fresh id, issued now.
    pub fn envelope(&self, audience: &str, query: pb::Query) -> pb::QueryEnvelope {
        pb::QueryEnvelope {
            query_id: fresh_query_id(),
            issued_at_ms: SystemClock.now_ms(),
            audience: audience.to_owned(),
            issuer: self.issuer.clone(),
            query: Some(query),
            regional: None,
        }
    }

    /// Signs the encoding of `envelope`.
    pub fn sign(&self, envelope: &pb::QueryEnvelope) -> pb::AggregateRequest {
        self.sign_bytes(envelope.encode_to_vec())
    }

    /// Signs `envelope` bytes as they are (they need not decode).
    pub fn sign_bytes(&self, envelope: Vec<u8>) -> pb::AggregateRequest {
        pb::AggregateRequest {
            signature: self.key.sign(&envelope),
            envelope,
            key_id: self.key.key_id(),
        }
    }

    /// A signed request for `audience`, spoiled as `tamper` says.
    pub fn request(
        &self,
        audience: &str,
        query: pb::Query,
        tamper: Tamper,
    ) -> pb::AggregateRequest {
        let mut envelope = self.envelope(audience, query);
        match &tamper {
            Tamper::IssuedAt { offset_ms } => envelope.issued_at_ms += offset_ms,
            Tamper::Audience(a) => envelope.audience = a.clone(),
            Tamper::Issuer(i) => envelope.issuer = i.clone(),
            Tamper::QueryId(id) => envelope.query_id = id.clone(),
            Tamper::None | Tamper::Signature | Tamper::UnknownKey => {}
        }
        match tamper {
            Tamper::Signature => {
                let mut request = self.sign(&envelope);
                request.signature[0] ^= 1;
                request
            }
            Tamper::UnknownKey => {
                let pkcs8 = vrs_core::signing::generate_pkcs8().expect("a fresh key");
                let stranger = SigningKey::from_pkcs8(&pkcs8).expect("a valid key");
                Signer::new(stranger, self.issuer.clone()).sign(&envelope)
            }
            _ => self.sign(&envelope),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A node that answers too late

/// A stand-in node: mutual TLS with the given certificate, and a `Federation` service that
/// answers every call only after `delay` (with `UNAVAILABLE`).
#[derive(Debug)]
pub struct SlowNode {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// The service behind a [`SlowNode`].
#[derive(Debug)]
struct Slow {
    delay: Duration,
    /// The message of its `UNAVAILABLE` status.
    message: String,
}

#[tonic::async_trait]
impl pb::federation_server::Federation for Slow {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Err(Status::unavailable(self.message.clone()))
    }

    async fn aggregate(
        &self,
        _: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Err(Status::unavailable(self.message.clone()))
    }

    async fn plan(
        &self,
        _: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Err(Status::unavailable("slow test node"))
    }

    async fn fetch_helper_share(
        &self,
        _: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::HelperShareResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Err(Status::unavailable("slow test node"))
    }
}

impl SlowNode {
    /// Serves on `127.0.0.1:0` over `vrs_core::tls::incoming` with `paths`.
    pub async fn start(paths: &TlsPaths, delay: Duration) -> SlowNode {
        SlowNode::with_message(paths, delay, "slow test node").await
    }

    /// Like [`SlowNode::start`], refusing with `message` (a hostile node's text, say).
    pub async fn with_message(paths: &TlsPaths, delay: Duration, message: &str) -> SlowNode {
        tls::install_crypto_provider();
        let config = tls::server_config(paths).expect("a server config");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let incoming = tls::incoming(listener, config, CONNECT_TIMEOUT);
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(FederationServer::new(Slow {
                    delay,
                    message: message.to_owned(),
                }))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = signal.await;
                }),
        );
        SlowNode {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it; a call still sleeping in it is abandoned after a bounded wait.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SlowNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
