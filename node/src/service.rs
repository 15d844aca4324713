//! The gRPC service: the only place wire types (`vrs_proto::pb`) meet domain types.
//!
//! For each `Aggregate` call, in order: the caller's identity is the SAN of its verified client
//! certificate and must be an allowed caller; the request size is bounded; the envelope's Ed25519
//! signature is checked over the exact bytes received, against that caller's keys; the envelope is
//! decoded and its audience, issuer, timestamp window and query id (replay) are checked; the query
//! is parsed into a checked [`Query`] under the policy's limits; exact aggregation runs on a
//! blocking thread over a read-only connection; [`disclosure::release`] turns it into released
//! cells; only those are sent. Every refusal maps to a stable reason code through
//! [`ServiceError::to_status`], whose messages never carry data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use tonic::{Request, Response, Status};
use vrs_core::answer::{Answer, CellValue, SuppressionReason};
use vrs_core::query::{Dimension, Query, QueryError, RawQuery, Unit};
use vrs_core::signing::PublicKey;
use vrs_proto::pb;

use crate::config::NodeConfig;
use crate::disclosure::{self, PerturbationSecret, Policy, PublicPolicy};
use crate::query::{PlanError, aggregate};
use crate::store::{SCHEMA_VERSION, Store, StoreError};

/// How far a query's timestamp may be from the node's clock.
pub const DEFAULT_CLOCK_WINDOW: Duration = Duration::from_secs(300);

/// Why a request was refused. Each variant maps to one gRPC code and one stable reason.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No verified client certificate identity.
    #[error("no client certificate identity")]
    Unauthenticated,
    /// The caller is not an allowed coordinator.
    #[error("caller is not allowed to query this node")]
    CallerNotAllowed,
    /// The request is larger than the node accepts.
    #[error("request too large")]
    TooLarge,
    /// The key id is not one of the caller's keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The envelope does not decode.
    #[error("malformed query envelope")]
    MalformedEnvelope,
    /// The envelope names another node.
    #[error("query is addressed to another node")]
    WrongAudience,
    /// The envelope's issuer is not the TLS peer.
    #[error("query issuer does not match the caller's certificate")]
    IssuerMismatch,
    /// The timestamp is outside the allowed window.
    #[error("query timestamp outside the allowed window")]
    StaleQuery,
    /// The query id was seen before.
    #[error("query id already used")]
    Replay,
    /// The query id is not of the accepted form.
    #[error("query id must be 16-64 characters of [A-Za-z0-9-]")]
    BadQueryId,
    /// The query is invalid.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// The unit or dimension is not published.
    #[error("{0} is not published by this node")]
    NotPublished(String),
    /// The node is busy.
    #[error("node busy, try again later")]
    Busy,
    /// Something failed inside the node; details are in its log only.
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ServiceError::Unauthenticated => "UNAUTHENTICATED",
            ServiceError::CallerNotAllowed => "CALLER_NOT_ALLOWED",
            ServiceError::TooLarge => "REQUEST_TOO_LARGE",
            ServiceError::UnknownKey => "UNKNOWN_SIGNING_KEY",
            ServiceError::BadSignature => "BAD_SIGNATURE",
            ServiceError::MalformedEnvelope => "MALFORMED_ENVELOPE",
            ServiceError::WrongAudience => "WRONG_AUDIENCE",
            ServiceError::IssuerMismatch => "ISSUER_MISMATCH",
            ServiceError::StaleQuery => "STALE_QUERY",
            ServiceError::Replay => "REPLAYED_QUERY_ID",
            ServiceError::BadQueryId => "BAD_QUERY_ID",
            ServiceError::Query(q) => q.code(),
            ServiceError::NotPublished(_) => "NOT_PUBLISHED",
            ServiceError::Busy => "BUSY",
            ServiceError::Internal => "INTERNAL",
        }
    }

    /// The gRPC status sent to the peer: code, `REASON: message`, and the reason in the
    /// `vrs-reason` metadata key. Never any data.
    pub fn to_status(&self) -> Status {
        use tonic::Code;
        let code = match self {
            ServiceError::Unauthenticated => Code::Unauthenticated,
            ServiceError::CallerNotAllowed
            | ServiceError::UnknownKey
            | ServiceError::BadSignature
            | ServiceError::WrongAudience
            | ServiceError::IssuerMismatch => Code::PermissionDenied,
            ServiceError::TooLarge => Code::ResourceExhausted,
            ServiceError::Busy => Code::Unavailable,
            ServiceError::Replay => Code::AlreadyExists,
            ServiceError::StaleQuery => Code::FailedPrecondition,
            ServiceError::NotPublished(_) => Code::PermissionDenied,
            ServiceError::Query(QueryError::PeriodOutsideData) => Code::OutOfRange,
            ServiceError::MalformedEnvelope | ServiceError::BadQueryId | ServiceError::Query(_) => {
                Code::InvalidArgument
            }
            ServiceError::Internal => Code::Internal,
        };
        let mut status = Status::new(code, format!("{}: {}", self.reason(), self));
        if let Ok(v) = self.reason().parse() {
            status.metadata_mut().insert("vrs-reason", v);
        }
        status
    }
}

impl From<PlanError> for ServiceError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Query(q) => ServiceError::Query(q),
            PlanError::NotPublished(what) => ServiceError::NotPublished(what),
            PlanError::Store(err) => {
                tracing::error!(error = %err, "store error while answering");
                ServiceError::Internal
            }
        }
    }
}

/// A pool of read-only store connections for blocking query threads.
#[derive(Debug)]
struct ReadPool {
    dir: std::path::PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl ReadPool {
    fn take(&self) -> Result<Store, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(s) => Ok(s),
            None => Store::open_read_only(&self.dir),
        }
    }

    fn give_back(&self, s: Store) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(s);
        }
    }
}

/// Query ids seen recently, kept for twice the clock window.
#[derive(Debug, Default)]
struct ReplayCache {
    seen: HashMap<String, i64>,
}

impl ReplayCache {
    /// Records `id` at `now_ms`; false if it was seen already.
    fn insert(&mut self, id: &str, now_ms: i64, keep_ms: i64) -> bool {
        if self.seen.len() > 10_000 {
            self.seen.retain(|_, t| now_ms - *t < keep_ms);
        }
        if self.seen.contains_key(id) {
            return false;
        }
        self.seen.insert(id.to_string(), now_ms);
        true
    }
}

/// Everything the service needs, shared across requests.
pub struct NodeService {
    country: vrs_core::codes::Country,
    policy: Policy,
    secret: PerturbationSecret,
    callers: HashMap<String, Vec<PublicKey>>,
    pool: Arc<ReadPool>,
    replay: Mutex<ReplayCache>,
    permits: Arc<tokio::sync::Semaphore>,
    clock_window: Duration,
    max_request_bytes: usize,
    describe: pb::DescribeResponse,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("country", &self.country)
            .field("callers", &self.callers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Service set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A caller's signing key is not valid hex Ed25519.
    #[error("caller {0}: signing key is not 64 hex characters")]
    BadCallerKey(String),
    /// The store's country differs from the configuration's.
    #[error("store country {store} differs from configured country {config}")]
    CountryMismatch {
        /// In the store.
        store: String,
        /// In node.toml.
        config: String,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl NodeService {
    /// Builds the service from a loaded configuration.
    pub fn new(config: &NodeConfig) -> Result<NodeService, SetupError> {
        let dir = config.data_dir();
        let store = Store::open_read_only(&dir)?;
        if store.country() != config.file.node.country {
            return Err(SetupError::CountryMismatch {
                store: store.country().to_string(),
                config: config.file.node.country.to_string(),
            });
        }
        let secret = PerturbationSecret::from_bytes(store.perturbation_secret()?);
        let mut callers = HashMap::new();
        for c in &config.file.callers {
            let keys = c
                .signing_keys
                .iter()
                .map(|k| PublicKey::from_hex(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| SetupError::BadCallerKey(c.identity.clone()))?;
            callers.insert(c.identity.clone(), keys);
        }
        let describe = describe(&store, &config.policy)?;
        let server = &config.file.server;
        Ok(NodeService {
            country: store.country(),
            policy: config.policy.clone(),
            secret,
            callers,
            pool: Arc::new(ReadPool {
                dir,
                idle: Mutex::new(vec![store]),
            }),
            replay: Mutex::new(ReplayCache::default()),
            permits: Arc::new(tokio::sync::Semaphore::new(
                server.max_concurrent_requests.max(1),
            )),
            clock_window: DEFAULT_CLOCK_WINDOW,
            max_request_bytes: server.max_request_bytes,
            describe,
        })
    }

    fn caller<T>(&self, req: &Request<T>) -> Result<String, ServiceError> {
        let id = vrs_core::tls::peer_identity(req).ok_or(ServiceError::Unauthenticated)?;
        if self.callers.contains_key(&id) {
            Ok(id)
        } else {
            Err(ServiceError::CallerNotAllowed)
        }
    }

    /// Checks signature, envelope and query; returns the query id and checked query.
    fn admit(
        &self,
        caller: &str,
        req: &pb::AggregateRequest,
    ) -> Result<(String, Query), ServiceError> {
        if req.envelope.len() + req.signature.len() + req.key_id.len() > self.max_request_bytes {
            return Err(ServiceError::TooLarge);
        }
        let keys = self
            .callers
            .get(caller)
            .ok_or(ServiceError::CallerNotAllowed)?;
        let key = keys
            .iter()
            .find(|k| k.key_id() == req.key_id)
            .ok_or(ServiceError::UnknownKey)?;
        key.verify(&req.envelope, &req.signature)
            .map_err(|_| ServiceError::BadSignature)?;
        let env = pb::QueryEnvelope::decode(req.envelope.as_slice())
            .map_err(|_| ServiceError::MalformedEnvelope)?;
        if env.audience != self.country.as_str() {
            return Err(ServiceError::WrongAudience);
        }
        if env.issuer != caller {
            return Err(ServiceError::IssuerMismatch);
        }
        let id = &env.query_id;
        if !(16..=64).contains(&id.len())
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ServiceError::BadQueryId);
        }
        let now = now_ms();
        let window = i64::try_from(self.clock_window.as_millis()).unwrap_or(i64::MAX);
        if (env.issued_at_ms - now).abs() > window {
            return Err(ServiceError::StaleQuery);
        }
        let q = env.query.ok_or(ServiceError::MalformedEnvelope)?;
        let raw = RawQuery {
            unit: q.unit,
            group_by: q.group_by,
            filters: q
                .filters
                .into_iter()
                .map(|f| (f.dimension, f.values))
                .collect(),
            period_from: q.period_from,
            period_to: q.period_to,
            margins: q.margins,
        };
        let query = Query::parse(&raw, &self.policy.query_limits())?;
        check_published(&self.policy, &query)?;
        let fresh = self
            .replay
            .lock()
            .map_err(|_| ServiceError::Internal)?
            .insert(id, now, 2 * window);
        if !fresh {
            return Err(ServiceError::Replay);
        }
        Ok((env.query_id, query))
    }

    async fn answer(&self, query: Query) -> Result<Answer, ServiceError> {
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy)?;
        let pool = self.pool.clone();
        let policy = self.policy.clone();
        let secret = self.secret.clone();
        tokio::task::spawn_blocking(move || -> Result<Answer, ServiceError> {
            let store = pool.take().map_err(|e| {
                tracing::error!(error = %e, "cannot open store");
                ServiceError::Internal
            })?;
            let result = aggregate(&store, &query);
            pool.give_back(store);
            let table = result?;
            Ok(disclosure::release(&table, &policy, &secret).answer)
        })
        .await
        .map_err(|_| ServiceError::Internal)?
    }
}

/// Refuses units and dimensions the policy does not publish.
pub fn check_published(policy: &Policy, query: &Query) -> Result<(), ServiceError> {
    if !policy.allows_unit(query.unit()) {
        return Err(ServiceError::NotPublished(query.unit().to_string()));
    }
    for d in query.group_by().iter().chain(
        query
            .filters()
            .iter()
            .map(|f| f.dimension())
            .collect::<Vec<_>>()
            .iter(),
    ) {
        if !policy.allows_dimension(*d) {
            return Err(ServiceError::NotPublished(d.to_string()));
        }
    }
    Ok(())
}

fn public_policy(p: &PublicPolicy) -> pb::PublicPolicy {
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    pb::PublicPolicy {
        min_count: u(p.min_count),
        min_contributors: u(p.min_contributors),
        dominance_p: u(p.dominance_p),
        perturbation: p.perturbation,
        perturbation_max_deviation: u(p.max_deviation),
        rounding_base: u(p.rounding_base),
        max_dimensions: u(p.max_dimensions as u64),
        max_filter_values: u(p.max_filter_values as u64),
        protection_width: u(p.protection_width),
    }
}

/// Values of a period dimension over the months a node holds.
fn period_values(
    d: Dimension,
    first: vrs_core::period::Month,
    last: vrs_core::period::Month,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut m = Some(first);
    while let Some(cur) = m {
        if cur > last {
            break;
        }
        let v = match d {
            Dimension::Year => format!("{:04}", cur.year()),
            Dimension::Quarter => cur.quarter_label(),
            _ => cur.to_string(),
        };
        if out.last() != Some(&v) {
            out.push(v);
        }
        m = cur.succ();
    }
    out
}

fn describe(store: &Store, policy: &Policy) -> Result<pb::DescribeResponse, StoreError> {
    let range = store.period_range()?;
    let dimensions = Dimension::ALL
        .iter()
        .filter(|d| policy.allows_dimension(**d))
        .map(|d| pb::DimensionInfo {
            name: d.code().to_string(),
            values: match (d.closed_values(), range) {
                (Some(v), _) => v,
                (None, Some((first, last))) => period_values(*d, first, last),
                (None, None) => Vec::new(),
            },
        })
        .collect();
    Ok(pb::DescribeResponse {
        country: store.country().to_string(),
        schema_version: SCHEMA_VERSION,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        units: Unit::ALL
            .iter()
            .filter(|u| policy.allows_unit(**u))
            .map(|u| u.code().to_string())
            .collect(),
        dimensions,
        policy: Some(public_policy(&policy.public())),
        first_period: range.map(|r| r.0.to_string()).unwrap_or_default(),
        last_period: range.map(|r| r.1.to_string()).unwrap_or_default(),
    })
}

fn to_pb_reason(r: SuppressionReason) -> pb::SuppressionReason {
    match r {
        SuppressionReason::BelowThreshold => pb::SuppressionReason::BelowThreshold,
        SuppressionReason::TooFewContributors => pb::SuppressionReason::TooFewContributors,
        SuppressionReason::Dominance => pb::SuppressionReason::Dominance,
        SuppressionReason::Complementary => pb::SuppressionReason::Complementary,
    }
}

/// Hex SHA-256 over a canonical rendering of the released answer (what the audit log records).
pub fn answer_digest(answer: &Answer) -> String {
    let text = serde_json::to_vec(answer).unwrap_or_default();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &text))
}

#[tonic::async_trait]
impl pb::federation_server::Federation for NodeService {
    async fn describe(
        &self,
        req: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let caller = self.caller(&req).map_err(|e| {
            tracing::warn!(reason = e.reason(), "describe refused");
            e.to_status()
        })?;
        tracing::info!(%caller, "describe");
        Ok(Response::new(self.describe.clone()))
    }

    async fn aggregate(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let caller = match self.caller(&req) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(reason = e.reason(), "aggregate refused");
                return Err(e.to_status());
            }
        };
        let span = tracing::info_span!("aggregate", %caller, node = %self.country, query_id = tracing::field::Empty);
        let _enter = span.enter();
        let body = req.into_inner();
        let (query_id, query) = match self.admit(&caller, &body) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(reason = e.reason(), "query refused");
                return Err(e.to_status());
            }
        };
        span.record("query_id", query_id.as_str());
        let answer = match self.answer(query).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(reason = e.reason(), "query refused");
                return Err(e.to_status());
            }
        };
        let released = answer
            .cells
            .iter()
            .filter(|c| c.value.released().is_some())
            .count();
        let digest = answer_digest(&answer);
        tracing::info!(cells = answer.cells.len(), released, "query answered");
        let cells = answer
            .cells
            .into_iter()
            .map(|c| pb::Cell {
                key: c.key,
                outcome: Some(match c.value {
                    CellValue::Released(v) => pb::cell::Outcome::Value(v),
                    CellValue::Suppressed(r) => {
                        pb::cell::Outcome::Suppressed(to_pb_reason(r) as i32)
                    }
                }),
            })
            .collect();
        Ok(Response::new(pb::AggregateResponse {
            country: self.country.to_string(),
            query_id,
            status: pb::AnswerStatus::Answered as i32,
            dimensions: answer
                .dimensions
                .iter()
                .map(|d| d.code().to_string())
                .collect(),
            cells,
            policy: Some(public_policy(&self.policy.public())),
            answer_digest: digest,
        }))
    }
}
