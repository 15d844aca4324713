//! The helper aggregator of regional mode (`vrs-helper`, DESIGN §8b): the second of the two
//! non-colluding aggregators, run by another party than the coordinator (the leader).
//!
//! For one `AggregateBatch` from the leader (the only caller it serves, by certificate
//! identity), in order:
//!
//! 1. every report's signed request verifies under the leader's key, is fresh, names its
//!    node as audience and the leader as issuer, and every envelope carries the same query and
//!    regional parameters (otherwise the whole batch is refused `INCONSISTENT_BATCH`); the
//!    query id was never aggregated before (`REPLAYED_QUERY_ID`; remembered in the state
//!    file before any share is fetched, so a refused batch cannot be retried with another set);
//! 2. the helper fetches its own input share from each node (`FetchHelperShare`, over mTLS as
//!    itself, dialling the node by its expected identity from its own node list), and checks
//!    that the node's nonce and public share are those the leader sent;
//! 3. it runs Prio3 verification with the leader's verifier share; a report that fails is
//!    dropped (`PROOF_FAILED`); fewer than `min_nodes` accepted → `BATCH_TOO_SMALL`, and no
//!    aggregate share leaves;
//! 4. it sums the accepted output shares, adds discrete Gaussian noise of the query's σ to
//!    every element, and returns its verifier shares and that noisy aggregate share.
//!
//! What it keeps: one JSON line per batch in its state file (query id, time, which nodes were
//! accepted or dropped and why) — never a share, a vector or a value; its logs say as much.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::regional::{self as crypto, HELPER, Vdaf};
use vrs_core::signing::PublicKey;
use vrs_core::tls::{self, TlsError, TlsPaths};
use vrs_proto::pb;
use vrs_proto::pb::federation_client::FederationClient;
use vrs_proto::pb::helper_server::{Helper, HelperServer};

use crate::registry::NodeEntry;

/// Most reports in one batch.
pub const MAX_REPORTS: usize = 4096;
/// How far an envelope's timestamp may be from the helper's clock (ms).
pub const CLOCK_WINDOW_MS: i64 = 5 * 60 * 1000;

/// `helper.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperConfigFile {
    /// `[helper]`
    pub helper: HelperSection,
    /// `[tls]`: the federation CA, the helper's certificate (its identity) and key.
    pub tls: TlsPaths,
    /// `[[nodes]]`: where to fetch shares (same form as the registry's).
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// `[helper]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperSection {
    /// `host:port` to listen on (127.0.0.1:0 in tests).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The leader's certificate identity: the only caller served.
    pub leader: String,
    /// The leader's query-signing public keys (hex Ed25519).
    pub leader_signing_keys: Vec<String>,
    /// The state file (JSON lines, one per batch); default `helper-state.jsonl` beside the
    /// config.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Deadline for fetching each node's share (ms). Default 5000.
    #[serde(default = "default_fetch_ms")]
    pub fetch_deadline_ms: u64,
    /// Connect timeout (ms). Default 2000.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Test-only build: add no noise (to check exactness). Refused by the default build.
    #[cfg(feature = "test-no-noise")]
    #[serde(default)]
    pub test_no_noise: bool,
}

fn default_listen() -> String {
    "127.0.0.1:0".into()
}
fn default_fetch_ms() -> u64 {
    5000
}
fn default_connect_ms() -> u64 {
    2000
}

/// A helper configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A leader key is not hex Ed25519.
    #[error("leader signing key is not 64 hex characters")]
    BadKey,
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Serving failed.
    #[error("serve: {0}")]
    Serve(String),
}

/// A loaded helper configuration.
#[derive(Debug, Clone)]
pub struct HelperConfig {
    /// As written, relative paths resolved.
    pub file: HelperConfigFile,
    /// The state file.
    pub state: PathBuf,
}

impl HelperConfig {
    /// Loads `helper.toml`.
    pub fn load(path: &Path) -> Result<HelperConfig, HelperError> {
        let text = std::fs::read_to_string(path).map_err(|source| HelperError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        HelperConfig::parse(&text, path, &dir)
    }

    /// Parses configuration text; `dir` resolves relative paths.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<HelperConfig, HelperError> {
        let mut file: HelperConfigFile = toml::from_str(text).map_err(|e| HelperError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for p in [&mut file.tls.ca, &mut file.tls.cert, &mut file.tls.key] {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        let state = match &file.helper.state {
            Some(p) if p.is_relative() => dir.join(p),
            Some(p) => p.clone(),
            None => dir.join("helper-state.jsonl"),
        };
        for k in &file.helper.leader_signing_keys {
            PublicKey::from_hex(k).map_err(|_| HelperError::BadKey)?;
        }
        Ok(HelperConfig { file, state })
    }
}

/// Why a batch is refused (each a stable reason).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("no client certificate identity")]
    Unauthenticated,
    #[error("only the configured leader may send batches")]
    NotLeader,
    #[error("the batch is malformed")]
    Malformed,
    #[error("a report's request does not verify under the leader's key")]
    BadSignature,
    #[error("the reports' envelopes differ or do not match the batch")]
    Inconsistent,
    #[error("an envelope's timestamp is outside the allowed window")]
    Stale,
    #[error("this query id was aggregated before")]
    Replay,
    #[error("{have} reports verified, at least {need} needed")]
    TooSmall { have: usize, need: u32 },
    #[error("internal error")]
    Internal,
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "UNAUTHENTICATED",
            Refusal::NotLeader => "NOT_LEADER",
            Refusal::Malformed => "MALFORMED_BATCH",
            Refusal::BadSignature => "BAD_SIGNATURE",
            Refusal::Inconsistent => "INCONSISTENT_BATCH",
            Refusal::Stale => "STALE_QUERY",
            Refusal::Replay => "REPLAYED_QUERY_ID",
            Refusal::TooSmall { .. } => "BATCH_TOO_SMALL",
            Refusal::Internal => "INTERNAL",
        }
    }

    fn to_status(&self) -> Status {
        use tonic::Code;
        let code = match self {
            Refusal::Unauthenticated => Code::Unauthenticated,
            Refusal::NotLeader | Refusal::BadSignature => Code::PermissionDenied,
            Refusal::Malformed | Refusal::Inconsistent => Code::InvalidArgument,
            Refusal::Stale | Refusal::TooSmall { .. } => Code::FailedPrecondition,
            Refusal::Replay => Code::AlreadyExists,
            Refusal::Internal => Code::Internal,
        };
        let mut s = Status::new(code, format!("{}: {}", self.reason(), self));
        if let Ok(v) = self.reason().parse() {
            s.metadata_mut().insert("vrs-reason", v);
        }
        s
    }
}

/// The helper service.
pub struct HelperService {
    leader: String,
    keys: Vec<PublicKey>,
    nodes: HashMap<String, FederationClient<Channel>>,
    fetch_deadline: Duration,
    state: PathBuf,
    seen: Mutex<BTreeSet<String>>,
    clock: Arc<dyn Clock>,
    noise: bool,
}

impl std::fmt::Debug for HelperService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelperService")
            .field("leader", &self.leader)
            .finish_non_exhaustive()
    }
}

/// One line of the state file.
#[derive(Debug, serde::Serialize, Deserialize)]
struct StateLine {
    query_id: String,
    at_ms: i64,
    #[serde(default)]
    accepted: Vec<String>,
    #[serde(default)]
    dropped: Vec<(String, String)>,
    #[serde(default)]
    outcome: String,
}

impl HelperService {
    /// Builds the service (reading the query ids of the state file).
    pub fn new(config: &HelperConfig) -> Result<HelperService, HelperError> {
        let client = tls::client_config(&config.file.tls)?;
        let connect = Duration::from_millis(config.file.helper.connect_timeout_ms);
        let mut nodes = HashMap::new();
        for n in &config.file.nodes {
            let channel =
                tls::connect_lazy(&n.endpoint, &n.expected_identity(), client.clone(), connect)?;
            nodes.insert(n.country.to_string(), FederationClient::new(channel));
        }
        let keys = config
            .file
            .helper
            .leader_signing_keys
            .iter()
            .map(|k| PublicKey::from_hex(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| HelperError::BadKey)?;
        let seen = std::fs::read_to_string(&config.state)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<StateLine>(l).ok())
            .map(|l| l.query_id)
            .collect();
        #[cfg(feature = "test-no-noise")]
        let noise = !config.file.helper.test_no_noise;
        #[cfg(not(feature = "test-no-noise"))]
        let noise = true;
        Ok(HelperService {
            leader: config.file.helper.leader.clone(),
            keys,
            nodes,
            fetch_deadline: Duration::from_millis(config.file.helper.fetch_deadline_ms),
            state: config.state.clone(),
            seen: Mutex::new(seen),
            clock: Arc::new(SystemClock),
            noise,
        })
    }

    /// Appends one line to the state file (flushed to disk).
    fn record(&self, line: &StateLine) -> Result<(), Refusal> {
        let text = serde_json::to_string(line).map_err(|_| Refusal::Internal)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.state)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot write the helper state");
                Refusal::Internal
            })?;
        writeln!(f, "{text}")
            .and_then(|_| f.sync_data())
            .map_err(|_| Refusal::Internal)
    }

    /// Checks every report's signed request; returns the common regional parameters.
    fn check_requests(&self, batch: &pb::HelperBatchRequest) -> Result<pb::RegionalMode, Refusal> {
        let now = self.clock.now_ms();
        let mut common: Option<(Vec<u8>, pb::RegionalMode)> = None;
        for r in &batch.reports {
            let req = r.request.as_ref().ok_or(Refusal::Malformed)?;
            let key = self
                .keys
                .iter()
                .find(|k| k.key_id() == req.key_id)
                .ok_or(Refusal::BadSignature)?;
            key.verify(&req.envelope, &req.signature)
                .map_err(|_| Refusal::BadSignature)?;
            let env = pb::QueryEnvelope::decode(req.envelope.as_slice())
                .map_err(|_| Refusal::Malformed)?;
            if env.query_id != batch.query_id
                || env.audience != r.country
                || env.issuer != self.leader
            {
                return Err(Refusal::Inconsistent);
            }
            if env.issued_at_ms.abs_diff(now) > CLOCK_WINDOW_MS.unsigned_abs() {
                return Err(Refusal::Stale);
            }
            let mode = env.regional.ok_or(Refusal::Inconsistent)?;
            let query = env.query.ok_or(Refusal::Malformed)?.encode_to_vec();
            match &common {
                None => common = Some((query, mode)),
                Some((q, m)) if *q == query && *m == mode => {}
                Some(_) => return Err(Refusal::Inconsistent),
            }
        }
        common.map(|(_, m)| m).ok_or(Refusal::Malformed)
    }

    async fn aggregate_batch_now(
        &self,
        identity: Option<String>,
        batch: pb::HelperBatchRequest,
    ) -> Result<pb::HelperBatchResponse, Refusal> {
        let caller = identity.ok_or(Refusal::Unauthenticated)?;
        if caller != self.leader {
            return Err(Refusal::NotLeader);
        }
        let id_ok = (16..=64).contains(&batch.query_id.len())
            && batch
                .query_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !id_ok
            || batch.reports.is_empty()
            || batch.reports.len() > MAX_REPORTS
            || batch.verify_key.len() != crypto::VERIFY_KEY_LEN
        {
            return Err(Refusal::Malformed);
        }
        let mode = self.check_requests(&batch)?;
        let vdaf =
            Vdaf::new(batch.cells as usize, mode.max_cell).map_err(|_| Refusal::Malformed)?;
        // The id is spent before any share is fetched: the same reports are never aggregated
        // twice, in any subset.
        {
            let mut seen = self.seen.lock().map_err(|_| Refusal::Internal)?;
            if !seen.insert(batch.query_id.clone()) {
                return Err(Refusal::Replay);
            }
        }
        self.record(&StateLine {
            query_id: batch.query_id.clone(),
            at_ms: self.clock.now_ms(),
            accepted: Vec::new(),
            dropped: Vec::new(),
            outcome: "started".into(),
        })?;
        let fetched = self.fetch_all(&batch).await;
        let listed: BTreeSet<&str> = mode.nodes.iter().map(String::as_str).collect();
        let mut countries = BTreeSet::new();
        let mut nonces = BTreeSet::new();
        let mut verdicts = Vec::with_capacity(batch.reports.len());
        let mut outputs = Vec::new();
        for (r, share) in batch.reports.iter().zip(fetched) {
            let mut verdict = pb::BatchVerdict {
                country: r.country.clone(),
                ..Default::default()
            };
            let judged: Result<crypto::Output, &'static str> = (|| {
                if !listed.contains(r.country.as_str()) {
                    return Err("NOT_IN_QUERY");
                }
                if !countries.insert(r.country.clone()) || !nonces.insert(r.nonce.clone()) {
                    return Err("DUPLICATE");
                }
                let share = share?;
                if share.country != r.country
                    || share.query_id != batch.query_id
                    || share.nonce != r.nonce
                    || share.public_share != r.public_share
                {
                    return Err("MISMATCH");
                }
                let (state, mine) = vdaf
                    .verify_start(
                        &batch.verify_key,
                        &batch.query_id,
                        HELPER,
                        &share.nonce,
                        &share.public_share,
                        &share.helper_share,
                    )
                    .map_err(|_| "PROOF_FAILED")?;
                verdict.helper_verifier_share = mine.clone();
                vdaf.verify_finish(&batch.query_id, state, &r.leader_verifier_share, &mine)
                    .map_err(|_| "PROOF_FAILED")
            })();
            match judged {
                Ok(out) => {
                    verdict.accepted = true;
                    outputs.push(out);
                }
                Err(reason) => verdict.reason = reason.into(),
            }
            verdicts.push(verdict);
        }
        let accepted: Vec<String> = verdicts
            .iter()
            .filter(|v| v.accepted)
            .map(|v| v.country.clone())
            .collect();
        let dropped: Vec<(String, String)> = verdicts
            .iter()
            .filter(|v| !v.accepted)
            .map(|v| (v.country.clone(), v.reason.clone()))
            .collect();
        let have = outputs.len();
        let too_small = have < mode.min_nodes as usize;
        self.record(&StateLine {
            query_id: batch.query_id.clone(),
            at_ms: self.clock.now_ms(),
            accepted: accepted.clone(),
            dropped,
            outcome: if too_small {
                "refused:BATCH_TOO_SMALL"
            } else {
                "aggregated"
            }
            .into(),
        })?;
        if too_small {
            tracing::warn!(query_id = %batch.query_id, have, need = mode.min_nodes, "batch below min_nodes: refused");
            return Err(Refusal::TooSmall {
                have,
                need: mode.min_nodes,
            });
        }
        let mut share = vdaf.aggregate(outputs).map_err(|_| Refusal::Internal)?;
        let sigma_micro = if self.noise { mode.sigma_micro } else { 0 };
        if sigma_micro > 0 {
            crypto::add_noise(&mut share, sigma_micro).map_err(|e| {
                tracing::error!(error = %e, "noise");
                Refusal::Internal
            })?;
        }
        tracing::info!(query_id = %batch.query_id, accepted = have, reports = batch.reports.len(), "batch aggregated");
        Ok(pb::HelperBatchResponse {
            query_id: batch.query_id.clone(),
            verdicts,
            aggregate_share: share.encode().map_err(|_| Refusal::Internal)?,
            accepted: u32::try_from(have).unwrap_or(u32::MAX),
            sigma_micro,
        })
    }

    /// Fetches every report's helper share from its node, concurrently, each under the fetch
    /// deadline; in the batch's order.
    async fn fetch_all(
        &self,
        batch: &pb::HelperBatchRequest,
    ) -> Vec<Result<pb::HelperShareResponse, &'static str>> {
        let mut set = JoinSet::new();
        for (i, r) in batch.reports.iter().enumerate() {
            let (Some(client), Some(req)) = (self.nodes.get(&r.country), r.request.clone()) else {
                continue;
            };
            let mut client = client.clone();
            let deadline = self.fetch_deadline;
            set.spawn(async move {
                let mut request = Request::new(req);
                request.set_timeout(deadline);
                let got = tokio::time::timeout(deadline, client.fetch_helper_share(request))
                    .await
                    .map_err(|_| "FETCH_FAILED")
                    .and_then(|r| r.map_err(|_| "FETCH_FAILED"))
                    .map(Response::into_inner);
                (i, got)
            });
        }
        let mut out: Vec<Result<pb::HelperShareResponse, &'static str>> =
            batch.reports.iter().map(|_| Err("FETCH_FAILED")).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, got)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                *slot = got;
            }
        }
        out
    }
}

#[tonic::async_trait]
impl Helper for HelperService {
    async fn aggregate_batch(
        &self,
        req: Request<pb::HelperBatchRequest>,
    ) -> Result<Response<pb::HelperBatchResponse>, Status> {
        let identity = tls::peer_identity(&req);
        let batch = req.into_inner();
        let span = tracing::info_span!("batch", query_id = %batch.query_id);
        let _e = span.enter();
        match self.aggregate_batch_now(identity, batch).await {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => {
                tracing::warn!(reason = e.reason(), "batch refused");
                Err(e.to_status())
            }
        }
    }
}

/// Largest batch accepted from the leader.
const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;

/// Serves the helper on `listener` until `shutdown`; `ready` gets the bound address.
pub async fn serve(
    listener: TcpListener,
    config: &HelperConfig,
    ready: impl FnOnce(Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HelperError> {
    let server_config = tls::server_config(&config.file.tls)?;
    let service = HelperService::new(config)?;
    let local = listener.local_addr().ok();
    let incoming = tls::incoming(listener, server_config, Duration::from_secs(10));
    tracing::info!(addr = ?local, leader = %config.file.helper.leader, "helper serving");
    ready(local);
    tonic::transport::Server::builder()
        .add_service(
            HelperServer::new(service)
                .max_decoding_message_size(MAX_BATCH_BYTES)
                .max_encoding_message_size(MAX_BATCH_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| HelperError::Serve(e.to_string()))?;
    tracing::info!("helper stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../docs/samples/helper.toml");

    #[test]
    fn the_shipped_sample_parses() {
        let c =
            HelperConfig::parse(SAMPLE, Path::new("helper.toml"), Path::new("/etc/vrs")).unwrap();
        assert_eq!(c.file.helper.leader, "coordinator.bali-rc.vrs.test");
        assert!(c.file.tls.ca.starts_with("/etc/vrs"));
        assert_eq!(c.state, Path::new("/etc/vrs/helper-state.jsonl"));
        assert_eq!(c.file.nodes.len(), 4);
    }

    #[test]
    fn bad_keys_and_unknown_fields_are_errors() {
        let bad = SAMPLE.replace("leader_signing_keys = [", "leader_signing_keys = [\"zz\", ");
        assert!(matches!(
            HelperConfig::parse(&bad, Path::new("h.toml"), Path::new(".")),
            Err(HelperError::BadKey)
        ));
        let unknown = SAMPLE.replace("[helper]\n", "[helper]\ncolour = \"blue\"\n");
        assert!(matches!(
            HelperConfig::parse(&unknown, Path::new("h.toml"), Path::new(".")),
            Err(HelperError::Parse { .. })
        ));
    }

    /// The default build refuses the test-only knob: it cannot be switched on by configuration.
    #[cfg(not(feature = "test-no-noise"))]
    #[test]
    fn the_release_build_refuses_test_no_noise() {
        let off = SAMPLE.replace("[helper]\n", "[helper]\ntest_no_noise = true\n");
        assert!(HelperConfig::parse(&off, Path::new("h.toml"), Path::new(".")).is_err());
    }
}
