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

use tracing::Instrument;

use crate::audit::{AuditError, AuditLog, NewEntry};
use crate::config::{ApprovalMode, BudgetSection, NodeConfig};
use crate::disclosure::{self, PerturbationSecret, Policy, PublicPolicy};
use crate::query::{PlanError, aggregate};
use crate::revocation::RevocationList;
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
    /// The caller's certificate or signing key is revoked.
    #[error("certificate or signing key revoked")]
    Revoked,
    /// The caller sent more queries than the rate limit allows.
    #[error("rate limit exceeded, slow down")]
    RateLimited,
    /// The caller's daily query budget is spent.
    #[error("daily query budget spent")]
    BudgetSpent,
    /// The operator denied this query.
    #[error("the node's operator denied this query")]
    Denied,
    /// A query id held for approval was re-sent with a different query.
    #[error("query id is held for approval with a different query")]
    QueryMismatch,
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
            ServiceError::Revoked => "REVOKED",
            ServiceError::RateLimited => "RATE_LIMITED",
            ServiceError::BudgetSpent => "DAILY_BUDGET_SPENT",
            ServiceError::Denied => "DENIED_BY_OPERATOR",
            ServiceError::QueryMismatch => "QUERY_MISMATCH",
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
            ServiceError::TooLarge | ServiceError::RateLimited | ServiceError::BudgetSpent => {
                Code::ResourceExhausted
            }
            ServiceError::Revoked | ServiceError::Denied => Code::PermissionDenied,
            ServiceError::QueryMismatch => Code::InvalidArgument,
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

/// A token bucket per caller: `burst` queries at once, refilled at `rate_per_minute`.
#[derive(Debug)]
struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, tokio::time::Instant)>>,
}

impl RateLimiter {
    fn new(b: &BudgetSection) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(b.rate_per_minute) / 60.0,
            burst: f64::from(b.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `caller`; false when the bucket is empty.
    fn allow(&self, caller: &str) -> bool {
        let now = tokio::time::Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let (tokens, last) = buckets
            .entry(caller.to_string())
            .or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Everything the service needs, shared across requests.
pub struct NodeService {
    country: vrs_core::codes::Country,
    policy: Policy,
    secret: PerturbationSecret,
    callers: HashMap<String, Vec<PublicKey>>,
    pool: Arc<ReadPool>,
    audit: Mutex<AuditLog>,
    revoked: RevocationList,
    limiter: RateLimiter,
    daily_budget: u64,
    approval: ApprovalMode,
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
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
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

/// What the TLS layer says about the caller.
#[derive(Debug, Default)]
struct Peer {
    identity: Option<String>,
    leaf: Option<Vec<u8>>,
}

impl Peer {
    fn of<T>(req: &Request<T>) -> Peer {
        Peer {
            identity: vrs_core::tls::peer_identity(req),
            leaf: req
                .peer_certs()
                .and_then(|chain| chain.first().map(|c| c.as_ref().to_vec())),
        }
    }
}

/// A request that passed every check, with what is needed to answer it.
struct Admitted {
    query: Query,
}

/// The outcome of one `Aggregate` call, before it is audited.
enum Handled {
    Answered(Answer),
    Pending,
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
        let audit = AuditLog::open(&dir)?;
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
            audit: Mutex::new(audit),
            revoked: RevocationList::new(&config.revocation_file()),
            limiter: RateLimiter::new(&config.file.budget),
            daily_budget: config.file.budget.daily_queries,
            approval: config.file.approval.mode,
            permits: Arc::new(tokio::sync::Semaphore::new(
                server.max_concurrent_requests.max(1),
            )),
            clock_window: DEFAULT_CLOCK_WINDOW,
            max_request_bytes: server.max_request_bytes,
            describe,
        })
    }

    fn audit(&self) -> Result<std::sync::MutexGuard<'_, AuditLog>, ServiceError> {
        self.audit.lock().map_err(|_| ServiceError::Internal)
    }

    /// The caller's identity, if it is an allowed, unrevoked coordinator.
    fn caller(&self, peer: &Peer) -> Result<String, ServiceError> {
        let id = peer.identity.clone().ok_or(ServiceError::Unauthenticated)?;
        if !self.callers.contains_key(&id) {
            return Err(ServiceError::CallerNotAllowed);
        }
        if peer
            .leaf
            .as_deref()
            .is_some_and(|der| self.revoked.current().certificate(der))
        {
            return Err(ServiceError::Revoked);
        }
        Ok(id)
    }

    /// Every check before any data is touched. `query_id` is filled in as soon as it is known,
    /// so the audit entry of a refusal names it.
    fn admit(
        &self,
        caller: &str,
        req: &pb::AggregateRequest,
        query_id: &mut String,
    ) -> Result<(Admitted, Vec<u8>), ServiceError> {
        if req.envelope.len() + req.signature.len() + req.key_id.len() > self.max_request_bytes {
            return Err(ServiceError::TooLarge);
        }
        if !self.limiter.allow(caller) {
            return Err(ServiceError::RateLimited);
        }
        let keys = self
            .callers
            .get(caller)
            .ok_or(ServiceError::CallerNotAllowed)?;
        let key = keys
            .iter()
            .find(|k| k.key_id() == req.key_id)
            .ok_or(ServiceError::UnknownKey)?;
        if self.revoked.current().signing_key(key) {
            return Err(ServiceError::Revoked);
        }
        key.verify(&req.envelope, &req.signature)
            .map_err(|_| ServiceError::BadSignature)?;
        let env = pb::QueryEnvelope::decode(req.envelope.as_slice())
            .map_err(|_| ServiceError::MalformedEnvelope)?;
        let id = &env.query_id;
        if !(16..=64).contains(&id.len())
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ServiceError::BadQueryId);
        }
        query_id.clone_from(id);
        if env.audience != self.country.as_str() {
            return Err(ServiceError::WrongAudience);
        }
        if env.issuer != caller {
            return Err(ServiceError::IssuerMismatch);
        }
        let window = i64::try_from(self.clock_window.as_millis()).unwrap_or(i64::MAX);
        if (env.issued_at_ms.saturating_sub(now_ms())).abs() > window {
            return Err(ServiceError::StaleQuery);
        }
        let q = env.query.ok_or(ServiceError::MalformedEnvelope)?;
        let query_bytes = q.encode_to_vec();
        let query = Query::parse(&raw_query(q), &self.policy.query_limits())?;
        check_published(&self.policy, &query)?;
        Ok((Admitted { query }, query_bytes))
    }

    /// Replay protection, approval and the daily budget: the checks that consult the audit file.
    fn gate(
        &self,
        caller: &str,
        query_id: &str,
        query: &Query,
        query_bytes: &[u8],
    ) -> Result<Option<Handled>, ServiceError> {
        let now = now_ms();
        let mut audit = self.audit()?;
        let internal = |e: AuditError| {
            tracing::error!(error = %e, "audit log");
            ServiceError::Internal
        };
        match self.approval {
            ApprovalMode::Auto => {
                if !audit.remember_query_id(query_id, now).map_err(internal)? {
                    return Err(ServiceError::Replay);
                }
            }
            ApprovalMode::Manual => match audit.pending_state(query_id).map_err(internal)? {
                None => {
                    if !audit.remember_query_id(query_id, now).map_err(internal)? {
                        return Err(ServiceError::Replay);
                    }
                    let summary = summarize(query);
                    audit
                        .add_pending(query_id, caller, query_bytes, &summary, now)
                        .map_err(internal)?;
                    return Ok(Some(Handled::Pending));
                }
                Some((state, held_caller, held_query)) => {
                    if held_caller != caller {
                        return Err(ServiceError::Replay);
                    }
                    if held_query != query_bytes {
                        return Err(ServiceError::QueryMismatch);
                    }
                    match state.as_str() {
                        "pending" => return Ok(Some(Handled::Pending)),
                        "denied" => return Err(ServiceError::Denied),
                        "approved" => audit.decide(query_id, "answered", now).map_err(internal)?,
                        _ => return Err(ServiceError::Replay),
                    }
                }
            },
        }
        let day_start = now - now.rem_euclid(86_400_000);
        if audit.answered_since(caller, day_start).map_err(internal)? >= self.daily_budget {
            return Err(ServiceError::BudgetSpent);
        }
        Ok(None)
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

    async fn handle(
        &self,
        peer: &Peer,
        req: &pb::AggregateRequest,
        query_id: &mut String,
    ) -> Result<Handled, ServiceError> {
        let caller = self.caller(peer)?;
        let (admitted, query_bytes) = self.admit(&caller, req, query_id)?;
        if let Some(done) = self.gate(&caller, query_id, &admitted.query, &query_bytes)? {
            return Ok(done);
        }
        Ok(Handled::Answered(self.answer(admitted.query).await?))
    }
}

/// The wire query in its raw domain form, ready for [`Query::parse`] (the one conversion from `pb`).
pub fn raw_query(q: pb::Query) -> RawQuery {
    RawQuery {
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
    }
}

/// A one-line description of a query for the operator's approval list.
fn summarize(q: &Query) -> String {
    let raw = q.to_raw();
    let mut s = format!("{} by [{}]", raw.unit, raw.group_by.join(", "));
    for (d, v) in &raw.filters {
        s.push_str(&format!(" where {d} in [{}]", v.join(", ")));
    }
    if !raw.period_from.is_empty() || !raw.period_to.is_empty() {
        s.push_str(&format!(" from {} to {}", raw.period_from, raw.period_to));
    }
    if raw.margins {
        s.push_str(" with margins");
    }
    s
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
        let caller = self.caller(&Peer::of(&req)).map_err(|e| {
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
        let peer = Peer::of(&req);
        let body = req.into_inner();
        let span = tracing::info_span!(
            "aggregate",
            caller = peer.identity.as_deref().unwrap_or("-"),
            node = %self.country,
            query_id = tracing::field::Empty
        );
        let mut query_id = String::new();
        let handled = self
            .handle(&peer, &body, &mut query_id)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        if !query_id.is_empty() {
            span.record("query_id", query_id.as_str());
        }
        let (outcome, digest) = match &handled {
            Ok(Handled::Answered(a)) => ("answered".to_string(), answer_digest(a)),
            Ok(Handled::Pending) => ("pending_approval".to_string(), String::new()),
            Err(e) => (format!("refused:{}", e.reason()), String::new()),
        };
        // Invariant 4: nothing is released unless its audit entry is written first.
        let entry = NewEntry {
            at_ms: now_ms(),
            caller: peer.identity.as_deref().unwrap_or(""),
            query_id: &query_id,
            envelope: &body.envelope,
            signature: &body.signature,
            key_id: &body.key_id,
            outcome: &outcome,
            answer_digest: &digest,
        };
        let audited = self.audit().and_then(|mut log| {
            log.append(&entry).map_err(|e| {
                tracing::error!(error = %e, "cannot write the audit log; refusing");
                ServiceError::Internal
            })
        });
        if let Err(e) = audited {
            return Err(e.to_status());
        }
        match handled {
            Err(e) => {
                tracing::warn!(reason = e.reason(), "query refused");
                Err(e.to_status())
            }
            Ok(Handled::Pending) => {
                tracing::info!("query held for approval");
                Ok(Response::new(pb::AggregateResponse {
                    country: self.country.to_string(),
                    query_id,
                    status: pb::AnswerStatus::PendingApproval as i32,
                    policy: Some(public_policy(&self.policy.public())),
                    ..pb::AggregateResponse::default()
                }))
            }
            Ok(Handled::Answered(answer)) => {
                let released = answer
                    .cells
                    .iter()
                    .filter(|c| c.value.released().is_some())
                    .count();
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
    }
}
