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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tonic::{Request, Response, Status};
use vrs_core::answer::{Answer, CellValue, ReleasePrivacy, SuppressionReason};
use vrs_core::audit_chain::AuditReceipt;
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::query::{Dimension, Query, QueryError, RawQuery, Unit};
use vrs_core::signing::{PublicKey, SigningKey};
use vrs_proto::pb;

use crate::admission::{Admission, Refused, Slot};
use crate::audit::{AuditError, AuditLog, NewEntry};
use crate::config::{ApprovalMode, BudgetSection, NodeConfig};
use crate::disclosure::zcdp;
use crate::disclosure::{self, PerturbationSecret, Policy, PrivacyPolicy, PublicPolicy};
use crate::ledger::{Charge, Limits, Reservation};
use crate::query::{PlanError, aggregate};
use crate::regional::{Held, RegionalPolicy, RegionalRefusal};
use crate::release::{self, ReleaseError, ReleasePlan};
use crate::revocation::{RevocationList, Revoked};
use crate::store::{SCHEMA_VERSION, Store, StoreError};
use crate::universe::{self, UniverseError};

/// Refusals written to the audit log one by one, per client certificate: sustained per minute,
/// and in a burst. Past them a flood costs the disk one entry, however long it lasts.
pub const REFUSALS_AUDITED_PER_MINUTE: u32 = 600;
/// See [`REFUSALS_AUDITED_PER_MINUTE`].
pub const REFUSALS_AUDITED_BURST: u32 = 100;

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
    /// The request waited past its deadline before it was looked at; nothing was spent.
    #[error("the request's deadline passed before the node reached it")]
    QueuedPastDeadline,
    /// The deadline passed after the query was admitted and before its answer was computed;
    /// the query id is spent, no budget is.
    #[error("the request's deadline passed before its answer was computed")]
    DeadlineExceeded,
    /// The query asks for a ρ outside the node's per-query range.
    #[error("rho must be between {min} and {max} micro-rho (0 asks for the node's default)")]
    RhoOutOfRange {
        /// Least, micro-ρ.
        min: u64,
        /// Most, micro-ρ.
        max: u64,
    },
    /// A touched quarter's privacy-loss budget cannot pay for the query.
    #[error(
        "privacy budget of quarter {quarter} has {left_micro} micro-rho left; the query needs {asked_micro}"
    )]
    BudgetExhausted {
        /// `YYYY-Qn`.
        quarter: String,
        /// Left for this caller, micro-ρ.
        left_micro: u64,
        /// Asked, micro-ρ.
        asked_micro: u64,
    },
    /// The answer's cell universe is larger than the policy allows.
    #[error("{0}")]
    Universe(#[from] UniverseError),
    /// Regional mode refused the request (docs/PROTOCOL.md, "Regional secure aggregation").
    #[error("{0}")]
    Regional(#[from] RegionalRefusal),
    /// Something failed inside the node; details are in its log only.
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// Whether the request was refused before its signature was verified: its bytes are then
    /// anyone's, so the audit log keeps their digest and length, not the bytes (issue 12, 3).
    pub fn before_signature(&self) -> bool {
        matches!(
            self,
            ServiceError::Unauthenticated
                | ServiceError::CallerNotAllowed
                | ServiceError::TooLarge
                | ServiceError::RateLimited
                | ServiceError::UnknownKey
                | ServiceError::Revoked
                | ServiceError::BadSignature
                | ServiceError::Busy
                | ServiceError::QueuedPastDeadline
        )
    }

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
            ServiceError::QueuedPastDeadline | ServiceError::DeadlineExceeded => {
                "DEADLINE_EXCEEDED"
            }
            ServiceError::RhoOutOfRange { .. } => "RHO_OUT_OF_RANGE",
            ServiceError::BudgetExhausted { .. } => "PRIVACY_BUDGET_EXHAUSTED",
            ServiceError::Universe(UniverseError::TooLarge { .. }) => "UNIVERSE_TOO_LARGE",
            ServiceError::Universe(UniverseError::OutsideCoverage) => "PERIOD_OUTSIDE_COVERAGE",
            ServiceError::Regional(r) => r.reason(),
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
            ServiceError::TooLarge
            | ServiceError::RateLimited
            | ServiceError::BudgetSpent
            | ServiceError::BudgetExhausted { .. } => Code::ResourceExhausted,
            ServiceError::RhoOutOfRange { .. }
            | ServiceError::Universe(UniverseError::TooLarge { .. }) => Code::InvalidArgument,
            ServiceError::Universe(UniverseError::OutsideCoverage) => Code::OutOfRange,
            ServiceError::Revoked | ServiceError::Denied => Code::PermissionDenied,
            ServiceError::QueryMismatch => Code::InvalidArgument,
            ServiceError::Busy => Code::Unavailable,
            ServiceError::QueuedPastDeadline | ServiceError::DeadlineExceeded => {
                Code::DeadlineExceeded
            }
            ServiceError::Replay => Code::AlreadyExists,
            ServiceError::StaleQuery => Code::FailedPrecondition,
            ServiceError::NotPublished(_) => Code::PermissionDenied,
            ServiceError::Query(QueryError::PeriodOutsideData) => Code::OutOfRange,
            ServiceError::MalformedEnvelope | ServiceError::BadQueryId | ServiceError::Query(_) => {
                Code::InvalidArgument
            }
            ServiceError::Regional(r) => r.code(),
            ServiceError::Internal => Code::Internal,
        };
        let mut status = Status::new(code, format!("{}: {}", self.reason(), self));
        if let Ok(v) = self.reason().parse() {
            status.metadata_mut().insert("vrs-reason", v);
        }
        status
    }
}

impl From<ReleaseError> for ServiceError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::RhoOutOfRange { min, max } => ServiceError::RhoOutOfRange { min, max },
            ReleaseError::Universe(u) => ServiceError::Universe(u),
            ReleaseError::Plan(p) => p.into(),
            ReleaseError::Noise(n) => {
                tracing::error!(error = %n, "noise");
                ServiceError::Internal
            }
        }
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
        RateLimiter::with(b.rate_per_minute, b.burst)
    }

    fn with(rate_per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(rate_per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
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

/// The gRPC service. Every request's work — SQLite reads and writes, fsyncs, aggregation —
/// runs on a blocking thread that owns a handle to the shared state, so it finishes and is
/// audited even when the caller goes away (the entry then says `cancelled`), and the async
/// runtime's threads never wait on the disk.
pub struct NodeService {
    inner: Arc<Inner>,
}

/// Whether a node can answer at all: nothing is released without its audit entry, so a node
/// whose audit log does not take writes is not serving, whatever else works (issue 12, 11).
#[derive(Clone)]
pub struct AuditHealth {
    audit: Arc<Mutex<AuditLog>>,
    failing: Arc<AtomicBool>,
    floods: Floods,
    clock: Arc<dyn Clock>,
}

/// Refusals counted but not yet written, per client-certificate fingerprint: the caller's
/// identity and how many.
type Floods = Arc<Mutex<HashMap<String, (String, u64)>>>;

impl std::fmt::Debug for AuditHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHealth").finish_non_exhaustive()
    }
}

impl AuditHealth {
    /// Probes the log with a real write (on a blocking thread; waits at most about a second
    /// for the write lock): healthy when it commits and the last audit write did not fail.
    pub async fn writable(&self) -> bool {
        let audit = self.audit.clone();
        let probed = tokio::task::spawn_blocking(move || {
            audit
                .lock()
                .ok()
                .is_some_and(|mut log| log.probe_write().is_ok())
        })
        .await
        .unwrap_or(false);
        if probed {
            self.flush_floods().await;
        }
        probed && !self.failing.load(Ordering::Relaxed)
    }

    /// Writes every flood count not yet in the log as one `refused:FLOOD:<n>` entry per
    /// certificate (the probe does it every interval, and the server once more when it stops),
    /// so a flood that ends without a later request from that certificate is still logged.
    pub async fn flush_floods(&self) {
        let (audit, floods, now) = (self.audit.clone(), self.floods.clone(), self.clock.now_ms());
        let written = tokio::task::spawn_blocking(move || -> Result<(), AuditError> {
            let pending: Vec<(String, u64)> = floods
                .lock()
                .map(|mut f| f.drain().map(|(_, v)| v).collect())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            let mut log = audit
                .lock()
                .map_err(|_| AuditError::Corrupt("audit lock poisoned".into()))?;
            for (caller, n) in pending {
                let outcome = format!("refused:FLOOD:{n}");
                log.append(&NewEntry {
                    at_ms: now,
                    caller: &caller,
                    query_id: "",
                    envelope: b"",
                    signature: b"",
                    key_id: "",
                    outcome: &outcome,
                    answer_digest: "",
                    privacy: "",
                })?;
            }
            Ok(())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!("cannot write the counted refusals to the audit log");
        }
    }
}

/// Everything the service needs, shared across requests.
struct Inner {
    country: vrs_core::codes::Country,
    policy: Policy,
    privacy: PrivacyPolicy,
    /// The time of day for freshness, the daily budget, the coverage's current month and the
    /// audit log's timestamps.
    clock: Arc<dyn Clock>,
    secret: PerturbationSecret,
    callers: HashMap<String, Vec<PublicKey>>,
    pool: Arc<ReadPool>,
    audit: Arc<Mutex<AuditLog>>,
    revoked: RevocationList,
    limiter: RateLimiter,
    /// Audit writes of refusals, per client-certificate fingerprint: past it, refusals are
    /// counted and logged as one `refused:FLOOD:<n>` entry with that certificate's next entry.
    refusal_audit: RateLimiter,
    coalesced: Floods,
    daily_budget: u64,
    /// Queries past the daily-budget check whose audit entry is not written yet, per caller:
    /// counted with the answered ones, so concurrent queries cannot all pass one last slot.
    in_flight: Arc<Mutex<HashMap<String, u64>>>,
    approval: ApprovalMode,
    admission: Arc<Admission>,
    peer_names: PeerNames,
    clock_window: Duration,
    max_request_bytes: usize,
    /// Signs the audit log's head in every answer and in `Describe`.
    audit_key: Arc<SigningKey>,
    /// The server's own limit on one request (the caller's `grpc-timeout` may be shorter).
    request_timeout: Duration,
    /// The last audit write failed: health says NOT_SERVING until one succeeds.
    audit_failing: Arc<AtomicBool>,
    /// Regional mode: the opted-in (leader, helper) pairs.
    regional: RegionalPolicy,
    /// Regional mode: helper shares waiting for their helper (memory only).
    held: Held,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("country", &self.inner.country)
            .field("callers", &self.inner.callers.keys().collect::<Vec<_>>())
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

/// What the TLS layer says about the caller.
#[derive(Debug, Default)]
struct Peer {
    identity: Option<String>,
    leaf: Option<Vec<u8>>,
}

impl Peer {
    /// Hex SHA-256 of the client certificate ("" without one).
    fn fingerprint(&self) -> String {
        self.leaf
            .as_deref()
            .map(|der| hex::encode(ring::digest::digest(&ring::digest::SHA256, der)))
            .unwrap_or_default()
    }

    /// The caller as its TLS layer presented it; the certificate's identity is read from
    /// `known` when the same certificate was seen before (parsing it is most of the cost).
    fn of<T>(req: &Request<T>, known: &PeerNames) -> Peer {
        let leaf = req
            .peer_certs()
            .and_then(|chain| chain.first().map(|c| c.as_ref().to_vec()));
        let identity = leaf.as_deref().and_then(|der| known.identity(der));
        Peer { identity, leaf }
    }
}

/// Identities of client certificates already parsed, by their DER bytes. Only certificates
/// that the TLS layer verified reach it; it forgets everything past [`PeerNames::MAX`] entries.
#[derive(Debug, Default)]
struct PeerNames(Mutex<HashMap<Vec<u8>, Option<String>>>);

impl PeerNames {
    const MAX: usize = 256;

    fn identity(&self, der: &[u8]) -> Option<String> {
        if let Some(known) = self.0.lock().ok().and_then(|m| m.get(der).cloned()) {
            return known;
        }
        let identity = vrs_core::tls::cert_identity(der).ok();
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(der.to_vec(), identity.clone());
        }
        identity
    }
}

/// A request that passed every check, with what is needed to answer it.
struct Admitted {
    query: Query,
    /// Regional mode's signed parameters, when the envelope asks for it.
    regional: Option<pb::RegionalMode>,
}

/// Where an entry landed in the audit log: its sequence number and chain hash.
type Logged = (i64, String);

/// The outcome of one `Aggregate` call. An answer `audited` at a position (with the digest it
/// was logged with) was logged on its zCDP path; the others are logged by the caller of
/// [`NodeService::handle`].
enum Handled {
    Answered {
        answer: Answer,
        audited: Option<(Logged, String)>,
    },
    Pending,
    /// Regional mode: the leader's part of the node's Prio3 report, logged with its charge.
    Regional {
        report: pb::RegionalReport,
        privacy: ReleasePrivacy,
        dimensions: Vec<Dimension>,
        keys: Vec<Vec<String>>,
        digest: String,
        audited: Logged,
    },
}

/// The raw request, kept for the audit entry a blocking release writes itself.
#[derive(Debug, Clone)]
struct Evidence {
    caller: String,
    query_id: String,
    envelope: Vec<u8>,
    signature: Vec<u8>,
    key_id: String,
}

impl Evidence {
    /// The audit entry of an answer to this request, logged now.
    fn answered<'a>(
        &'a self,
        at_ms: i64,
        call: &Call<'_>,
        digest: &'a str,
        charge: &'a str,
    ) -> NewEntry<'a> {
        NewEntry {
            at_ms,
            caller: &self.caller,
            query_id: &self.query_id,
            envelope: &self.envelope,
            signature: &self.signature,
            key_id: &self.key_id,
            outcome: if call.gone() { CANCELLED } else { "answered" },
            answer_digest: digest,
            privacy: charge,
        }
    }
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
        let audit = AuditLog::open(&dir)?;
        let (audit_key, made) = crate::audit::audit_key(&dir)?;
        if made {
            tracing::warn!(
                key = %audit_key.public_key().to_hex(),
                "made a new audit key: coordinators holding receipts signed by an earlier key \
                 will report the change"
            );
        }
        let server = &config.file.server;
        Ok(NodeService {
            inner: Arc::new(Inner {
                country: store.country(),
                policy: config.policy.clone(),
                privacy: config.privacy.clone(),
                clock: Arc::new(SystemClock),
                secret,
                callers,
                pool: Arc::new(ReadPool {
                    dir,
                    idle: Mutex::new(vec![store]),
                }),
                audit: Arc::new(Mutex::new(audit)),
                revoked: RevocationList::new(&config.revocation_file()),
                limiter: RateLimiter::new(&config.file.budget),
                refusal_audit: RateLimiter::with(
                    REFUSALS_AUDITED_PER_MINUTE,
                    REFUSALS_AUDITED_BURST,
                ),
                coalesced: Floods::default(),
                daily_budget: config.file.budget.daily_queries,
                in_flight: Arc::new(Mutex::new(HashMap::new())),
                approval: config.file.approval.mode,
                admission: Admission::new(
                    server.max_concurrent_requests,
                    server.max_queued_requests,
                ),
                peer_names: PeerNames::default(),
                clock_window: DEFAULT_CLOCK_WINDOW,
                max_request_bytes: server.max_request_bytes,
                audit_key: Arc::new(audit_key),
                request_timeout: Duration::from_secs(server.request_timeout_secs.max(1)),
                audit_failing: Arc::new(AtomicBool::new(false)),
                regional: RegionalPolicy::new(&config.file.regional),
                held: Held::default(),
            }),
        })
    }

    /// What the health service reports: whether this node's audit log takes writes.
    pub fn audit_health(&self) -> AuditHealth {
        AuditHealth {
            audit: self.inner.audit.clone(),
            failing: self.inner.audit_failing.clone(),
            floods: self.inner.coalesced.clone(),
            clock: self.inner.clock.clone(),
        }
    }

    /// The same service reading the time from `clock` (tests use a manual one). Called on a
    /// service no request has seen yet.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> NodeService {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.clock = clock,
            None => tracing::error!("with_clock on a service already serving: clock unchanged"),
        }
        self
    }
}

impl Inner {
    fn audit(&self) -> Result<std::sync::MutexGuard<'_, AuditLog>, ServiceError> {
        self.audit.lock().map_err(|_| ServiceError::Internal)
    }

    /// The caller's identity, if it is an allowed, unrevoked coordinator.
    /// Counts a call that was not admitted (`why`) as a refusal of its allowed caller, to be
    /// logged with that certificate's next entry like a flood (`refused:FLOOD:<n>`): an
    /// overloaded node does not also wait for a durable write per refusal. False, nothing
    /// counted, for a caller that is refused anyway (its own refusal is logged as usual).
    fn refused_busy(&self, peer: &Peer, why: Refused) -> bool {
        let Ok(caller) = self.caller(peer) else {
            return false;
        };
        tracing::warn!(?why, %caller, "not admitted: BUSY");
        if let Ok(mut c) = self.coalesced.lock() {
            c.entry(peer.fingerprint()).or_insert_with(|| (caller, 0)).1 += 1;
        }
        true
    }

    fn caller(&self, peer: &Peer) -> Result<String, ServiceError> {
        self.caller_listed(peer).map(|(id, _)| id)
    }

    /// The allowed caller, and the revocation list its certificate was checked against (read
    /// once per request: [`Inner::admit`] checks the signing key against the same list).
    fn caller_listed(&self, peer: &Peer) -> Result<(String, Arc<Revoked>), ServiceError> {
        let id = peer.identity.clone().ok_or(ServiceError::Unauthenticated)?;
        if !self.callers.contains_key(&id) {
            return Err(ServiceError::CallerNotAllowed);
        }
        let revoked = self.revoked.current();
        if peer
            .leaf
            .as_deref()
            .is_some_and(|der| revoked.certificate(der))
        {
            return Err(ServiceError::Revoked);
        }
        Ok((id, revoked))
    }

    /// Every check before any data is touched. `query_id` is filled in as soon as it is known,
    /// so the audit entry of a refusal names it.
    fn admit(
        &self,
        caller: &str,
        revoked: &Revoked,
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
        if revoked.signing_key(key) {
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
        let window = u64::try_from(self.clock_window.as_millis()).unwrap_or(u64::MAX);
        if !is_fresh(env.issued_at_ms, self.clock.now_ms(), window) {
            return Err(ServiceError::StaleQuery);
        }
        let q = env.query.ok_or(ServiceError::MalformedEnvelope)?;
        let query_bytes = q.encode_to_vec();
        let query = Query::parse(&raw_query(q), &self.policy.query_limits())?;
        check_published(&self.policy, &query)?;
        Ok((
            Admitted {
                query,
                regional: env.regional,
            },
            query_bytes,
        ))
    }

    /// Replay protection, approval and the daily budget: the checks that consult the audit file.
    /// Approval and the daily budget: the checks that consult the audit file before any
    /// data is read. With `remember`, the query id is recorded here (rules mode); otherwise the
    /// ledger records it together with the charge.
    fn gate(
        &self,
        caller: &str,
        query_id: &str,
        query: &Query,
        query_bytes: &[u8],
        remember: bool,
        slot: &mut Option<DailySlot>,
    ) -> Result<Gate, ServiceError> {
        let now = self.clock.now_ms();
        let mut audit = self.audit()?;
        let mut gate = Gate::Go {
            id_known: false,
            approved: false,
        };
        match self.approval {
            ApprovalMode::Auto => {
                if remember {
                    if !audit.remember_query_id(query_id, now).map_err(internal)? {
                        return Err(ServiceError::Replay);
                    }
                    gate = Gate::Go {
                        id_known: true,
                        approved: false,
                    };
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
                    return Ok(Gate::Hold);
                }
                Some((state, held_caller, held_query)) => {
                    if held_caller != caller {
                        return Err(ServiceError::Replay);
                    }
                    if held_query != query_bytes {
                        return Err(ServiceError::QueryMismatch);
                    }
                    match state.as_str() {
                        "pending" => return Ok(Gate::Hold),
                        "denied" => return Err(ServiceError::Denied),
                        "approved" => {
                            gate = Gate::Go {
                                id_known: true,
                                approved: true,
                            }
                        }
                        _ => return Err(ServiceError::Replay),
                    }
                }
            },
        }
        let day_start = now - now.rem_euclid(86_400_000);
        let answered = audit.answered_since(caller, day_start).map_err(internal)?;
        // Still under the audit lock: the count and the reservation of a slot are one step.
        let mut in_flight = self.in_flight.lock().map_err(|_| ServiceError::Internal)?;
        let pending = in_flight.get(caller).copied().unwrap_or(0);
        if answered.saturating_add(pending) >= self.daily_budget {
            return Err(ServiceError::BudgetSpent);
        }
        *in_flight.entry(caller.to_string()).or_insert(0) += 1;
        *slot = Some(DailySlot {
            caller: caller.to_string(),
            in_flight: self.in_flight.clone(),
        });
        Ok(gate)
    }

    /// Marks an approved query answered, once its answer is committed (a transient failure
    /// before that leaves the approval standing, to be collected again).
    fn mark_answered(&self, query_id: &str) {
        let done = self.audit().and_then(|mut a| {
            a.decide(query_id, "answered", self.clock.now_ms())
                .map_err(internal)
        });
        if done.is_err() {
            tracing::error!("cannot mark an approved query answered");
        }
    }

    /// The budget limits of `caller`.
    fn limits(&self, caller: &str) -> Limits {
        Limits {
            per_quarter_micro: self.privacy.rho_per_quarter_micro(),
            caller_micro: self.privacy.caller_share_micro(caller),
        }
    }

    /// Decides what a zCDP release of `query` will be, before any record is read: its ρ, its
    /// universe (and so the quarters charged), its sensitivity and noise scale, and its id.
    fn plan_release(&self, query: Query) -> Result<ReleasePlan, ServiceError> {
        let data_version = {
            let store = self.pool.take().map_err(|e| {
                tracing::error!(error = %e, "cannot open store");
                ServiceError::Internal
            })?;
            let v = store.data_version();
            self.pool.give_back(store);
            v.map_err(|e| {
                tracing::error!(error = %e, "cannot read the data version");
                ServiceError::Internal
            })?
        };
        Ok(release::plan(
            query,
            &self.privacy,
            universe::current_month(self.clock.now_ms(), self.privacy.coverage_from()),
            data_version,
        )?)
    }

    /// The privacy block of an answer for `plan`.
    fn release_privacy(
        &self,
        plan: &ReleasePlan,
        caller: &str,
        replayed: bool,
        audit: &AuditLog,
    ) -> Result<ReleasePrivacy, ServiceError> {
        let mut block = release::privacy_block(plan, &self.privacy, replayed);
        block.quarters = audit
            .budgets(&plan.universe.quarters, caller, self.limits(caller))
            .map_err(internal)?;
        Ok(block)
    }

    /// The zCDP path after the gate: a stored release is returned as it was, free, logged with
    /// its query id in one commit; otherwise
    /// the charge is reserved with the query id, the release computed and noised, and the
    /// charge committed with the audit entry in one transaction — outcome `cancelled` when the
    /// caller has gone by then (the release is kept and its budget spent: the noise was drawn).
    /// Work still queued when the deadline passes is dropped and its reservation given back.
    fn answer_zcdp(
        &self,
        plan: ReleasePlan,
        evidence: Evidence,
        id_known: bool,
        call: &Call<'_>,
    ) -> Result<Handled, ServiceError> {
        let now = self.clock.now_ms();
        let caller = evidence.caller.clone();
        let stored = {
            let mut audit = self.audit()?;
            if let Some(mut answer) = audit.released(&plan.release_id).map_err(internal)? {
                answer.privacy = Some(self.release_privacy(&plan, &caller, true, &audit)?);
                // The id and the entry in one commit, flushed with the others waiting.
                let digest = answer_digest(&answer);
                let charge = charge_summary(&answer, true);
                let entry = evidence.answered(self.clock.now_ms(), call, &digest, &charge);
                let logged = audit.log_replay_grouped(&entry, id_known, now);
                self.audit_failing.store(logged.is_err(), Ordering::Relaxed);
                match logged {
                    Ok(Some(done)) => Some((answer, digest, done)),
                    Ok(None) => return Err(ServiceError::Replay),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot log a replayed release; refusing");
                        return Err(ServiceError::Internal);
                    }
                }
            } else {
                self.reserve(&mut audit, &plan, &evidence, id_known, now)?;
                None
            }
        };
        if let Some((answer, digest, (logged, durable))) = stored {
            if let Err(e) = durable.wait() {
                tracing::error!(error = %e, "cannot flush the audit log; refusing");
                self.audit_failing.store(true, Ordering::Relaxed);
                return Err(ServiceError::Internal);
            }
            return Ok(Handled::Answered {
                answer,
                audited: Some((logged, digest)),
            });
        }
        let privacy = {
            let audit = self.audit()?;
            self.release_privacy(&plan, &caller, false, &audit)?
        };
        let released = if call.past_deadline() {
            Err(ServiceError::DeadlineExceeded)
        } else {
            self.pool
                .take()
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot open store");
                    ServiceError::Internal
                })
                .and_then(|store| {
                    let r = release::compute(&store, &plan, &self.privacy, privacy);
                    self.pool.give_back(store);
                    Ok(r?.0)
                })
        };
        let mut log = self.audit()?;
        let answer = match released {
            Ok(a) => a,
            Err(e) => {
                // Nothing was released: the reservation is given back.
                if let Err(c) = log.cancel(&evidence.query_id) {
                    tracing::error!(error = %c, "cannot cancel a reservation");
                }
                return Err(e);
            }
        };
        let digest = answer_digest(&answer);
        let charge = charge_summary(&answer, false);
        let entry = evidence.answered(self.clock.now_ms(), call, &digest, &charge);
        let mut stored = answer.clone();
        if let Some(p) = &mut stored.privacy {
            p.quarters.clear();
        }
        let committed = log.commit_release_grouped(&entry, &plan.release_id, &stored, false);
        self.audit_failing
            .store(committed.is_err(), Ordering::Relaxed);
        let (logged, durable) = match committed {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "cannot commit the release; refusing");
                let _ = log.cancel(&evidence.query_id);
                return Err(ServiceError::Internal);
            }
        };
        // Group commit: the flush runs without the log's lock, so that concurrent answers
        // share one; the answer leaves only once its entry is on disk.
        drop(log);
        if let Err(e) = durable.wait() {
            tracing::error!(error = %e, "cannot flush the audit log; refusing");
            self.audit_failing.store(true, Ordering::Relaxed);
            return Err(ServiceError::Internal);
        }
        Ok(Handled::Answered {
            answer,
            audited: Some((logged, digest)),
        })
    }

    /// Records the query id (unless known) and reserves the plan's charge on every quarter it
    /// touches, in one transaction (see [`AuditLog::reserve`]).
    fn reserve(
        &self,
        audit: &mut AuditLog,
        plan: &ReleasePlan,
        evidence: &Evidence,
        id_known: bool,
        now: i64,
    ) -> Result<(), ServiceError> {
        let charge = Charge {
            quarters: plan.universe.quarters.clone(),
            rho_micro: plan.rho_micro,
        };
        match audit
            .reserve(
                &evidence.query_id,
                &evidence.caller,
                &charge,
                self.limits(&evidence.caller),
                id_known,
                now,
            )
            .map_err(internal)?
        {
            Reservation::Reserved => Ok(()),
            Reservation::Replay => Err(ServiceError::Replay),
            Reservation::Overspent {
                quarter,
                left_micro,
            } => Err(ServiceError::BudgetExhausted {
                quarter,
                left_micro,
                asked_micro: plan.rho_micro,
            }),
        }
    }

    /// Regional mode after the gate: the charge is reserved with the query id exactly as for a
    /// per-node release; the exact bounded vector is read and sharded; the helper's share is
    /// held for the helper; the charge is committed with the audit entry (no release is
    /// stored: a regional query id is answered once). Dropped, its reservation given back,
    /// when the deadline passed or anything fails before the commit.
    fn answer_regional(
        &self,
        plan: ReleasePlan,
        mode: pb::RegionalMode,
        evidence: Evidence,
        id_known: bool,
        call: &Call<'_>,
    ) -> Result<Handled, ServiceError> {
        let now = self.clock.now_ms();
        let privacy = {
            let mut audit = self.audit()?;
            self.reserve(&mut audit, &plan, &evidence, id_known, now)?;
            self.release_privacy(&plan, &evidence.caller, false, &audit)?
        };
        let give_back = |e: ServiceError| {
            if let Ok(mut log) = self.audit()
                && let Err(c) = log.cancel(&evidence.query_id)
            {
                tracing::error!(error = %c, "cannot cancel a reservation");
            }
            e
        };
        if call.past_deadline() {
            return Err(give_back(ServiceError::DeadlineExceeded));
        }
        let vector = self
            .pool
            .take()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot open store");
                ServiceError::Internal
            })
            .and_then(|store| {
                let v = crate::regional::exact_vector(&store, &plan, &self.privacy, mode.max_cell);
                self.pool.give_back(store);
                Ok(v?)
            })
            .map_err(give_back)?;
        let report =
            crate::regional::shard(&evidence.query_id, &vector, mode.max_cell).map_err(|e| {
                tracing::error!(error = %e, "cannot shard the regional vector");
                give_back(ServiceError::Internal)
            })?;
        drop(vector);
        self.held
            .keep(
                &evidence.query_id,
                &mode.helper,
                &evidence.envelope,
                &report,
                now,
            )
            .map_err(|e| give_back(e.into()))?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [
            report.nonce.as_slice(),
            &report.public_share,
            &report.leader_share,
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let digest = hex::encode(ctx.finish());
        let charge = serde_json::json!({
            "mode": "regional",
            "release_id": plan.release_id,
            "rho_micro": plan.rho_micro,
            "quarters": privacy.quarters.iter().map(|q| q.quarter.as_str()).collect::<Vec<_>>(),
            "l2_sq": plan.l2_sq,
            "sigma": plan.sigma.as_f64(),
            "aggregator_sigma": crate::regional::sigma_of(&mode),
            "helper": mode.helper,
            "min_nodes": mode.min_nodes,
            "cells": plan.universe.keys.len(),
        })
        .to_string();
        let entry = evidence.answered(self.clock.now_ms(), call, &digest, &charge);
        let committed = self.audit().and_then(|mut log| {
            let c = log.commit_charge(&entry);
            self.audit_failing.store(c.is_err(), Ordering::Relaxed);
            c.map_err(|e| {
                tracing::error!(error = %e, "cannot commit the regional charge; refusing");
                let _ = log.cancel(&evidence.query_id);
                ServiceError::Internal
            })
        });
        let audited = match committed {
            Ok(l) => l,
            Err(e) => {
                self.held.drop_share(&evidence.query_id);
                return Err(e);
            }
        };
        Ok(Handled::Regional {
            report: pb::RegionalReport {
                nonce: report.nonce.to_vec(),
                public_share: report.public_share,
                leader_share: report.leader_share,
                cells: u32::try_from(plan.universe.keys.len()).unwrap_or(u32::MAX),
            },
            privacy,
            dimensions: plan.query.group_by().to_vec(),
            keys: plan.universe.keys,
            digest,
            audited,
        })
    }

    /// Regional mode: the helper named in a query this node answered fetches its share, once,
    /// with the same signed request; audited either way.
    fn fetch_now(
        &self,
        peer: &Peer,
        body: &pb::AggregateRequest,
    ) -> Result<pb::HelperShareResponse, Status> {
        let mut query_id = String::new();
        let fetched = (|| {
            let caller = self.caller(peer)?;
            if body.envelope.len() + body.signature.len() + body.key_id.len()
                > self.max_request_bytes
            {
                return Err(ServiceError::TooLarge);
            }
            let env = pb::QueryEnvelope::decode(body.envelope.as_slice())
                .map_err(|_| ServiceError::MalformedEnvelope)?;
            query_id.clone_from(&env.query_id);
            let mut share =
                self.held
                    .take(&env.query_id, &caller, &body.envelope, self.clock.now_ms())?;
            share.country = self.country.to_string();
            Ok(share)
        })();
        let outcome = match &fetched {
            Ok(_) => "regional_share_fetched".to_string(),
            Err(e) => format!("refused:{}", e.reason()),
        };
        // Only a fetch that matched a held envelope presented verified bytes.
        let (envelope, signature, key_id) = kept(body, fetched.is_err());
        let entry = NewEntry {
            at_ms: self.clock.now_ms(),
            caller: peer.identity.as_deref().unwrap_or(""),
            query_id: if fetched.is_ok() { &query_id } else { "" },
            envelope: &envelope,
            signature,
            key_id: &key_id,
            outcome: &outcome,
            answer_digest: "",
            privacy: "",
        };
        let fingerprint = peer.fingerprint();
        let write = fetched.is_ok() || self.refusal_audit.allow(&fingerprint);
        self.write_entry(write, &fingerprint, &entry)?;
        match fetched {
            Ok(share) => {
                tracing::info!(%query_id, "regional helper share fetched");
                Ok(share)
            }
            Err(e) => {
                tracing::warn!(reason = e.reason(), "regional fetch refused");
                Err(e.to_status())
            }
        }
    }

    /// Rules mode: exact aggregation, then the v1 disclosure rules (dropped when its deadline
    /// passed while it waited).
    fn answer(&self, query: Query, call: &Call<'_>) -> Result<Answer, ServiceError> {
        if call.past_deadline() {
            return Err(ServiceError::DeadlineExceeded);
        }
        let store = self.pool.take().map_err(|e| {
            tracing::error!(error = %e, "cannot open store");
            ServiceError::Internal
        })?;
        let result = aggregate(&store, &query);
        self.pool.give_back(store);
        let table = result?;
        Ok(disclosure::release(&table, &self.policy, &self.secret).answer)
    }

    fn handle(
        &self,
        peer: &Peer,
        req: &pb::AggregateRequest,
        query_id: &mut String,
        slot: &mut Option<DailySlot>,
        call: &Call<'_>,
    ) -> Result<Handled, ServiceError> {
        let (caller, revoked) = self.caller_listed(peer)?;
        // A node that is busy says so before anything is spent: no rate token, no query id,
        // no budget (issue 12, item 11). The permit, taken when the request arrived, is held
        // until the answer is computed.
        if call.permit.is_none() {
            return Err(ServiceError::Busy);
        }
        // Queued past its deadline: dropped before anything is spent.
        if call.past_deadline() {
            return Err(ServiceError::QueuedPastDeadline);
        }
        let (mut admitted, query_bytes) = self.admit(&caller, &revoked, req, query_id)?;
        let regional = admitted.regional.take();
        if regional.is_some() && !self.privacy.is_zcdp() {
            return Err(RegionalRefusal::NeedsZcdp.into());
        }
        if !self.privacy.is_zcdp() {
            let approved =
                match self.gate(&caller, query_id, &admitted.query, &query_bytes, true, slot)? {
                    Gate::Hold => return Ok(Handled::Pending),
                    Gate::Go { approved, .. } => approved,
                };
            let answer = self.answer(admitted.query, call)?;
            if approved {
                self.mark_answered(query_id);
            }
            return Ok(Handled::Answered {
                answer,
                audited: None,
            });
        }
        // zCDP: everything that can refuse the query is decided before the gate records its id.
        let plan = self.plan_release(admitted.query)?;
        if let Some(mode) = &regional {
            self.regional
                .check(&caller, self.country.as_str(), mode, &plan)?;
        }
        let (id_known, approved) =
            match self.gate(&caller, query_id, &plan.query, &query_bytes, false, slot)? {
                Gate::Hold => return Ok(Handled::Pending),
                Gate::Go { id_known, approved } => (id_known, approved),
            };
        // A regional query held for approval cannot join its batch any more (that batch was
        // aggregated or refused without this node): refused before any read or charge.
        if approved && regional.is_some() {
            return Err(RegionalRefusal::NotResumable.into());
        }
        let evidence = Evidence {
            caller,
            query_id: query_id.clone(),
            envelope: req.envelope.clone(),
            signature: req.signature.clone(),
            key_id: req.key_id.clone(),
        };
        let handled = match regional {
            Some(mode) => self.answer_regional(plan, mode, evidence, id_known, call)?,
            None => self.answer_zcdp(plan, evidence, id_known, call)?,
        };
        if approved {
            self.mark_answered(query_id);
        }
        Ok(handled)
    }

    /// Writes `entry` (after any flood counted for `fingerprint`) and returns where it landed,
    /// or, when `write` is false, only counts it for that certificate's next entry.
    fn write_entry(
        &self,
        write: bool,
        fingerprint: &str,
        entry: &NewEntry<'_>,
    ) -> Result<Option<Logged>, Status> {
        if !write {
            if let Ok(mut c) = self.coalesced.lock() {
                c.entry(fingerprint.to_string())
                    .or_insert_with(|| (entry.caller.to_string(), 0))
                    .1 += 1;
            }
            return Ok(None);
        }
        self.flush_flood(fingerprint, entry)?;
        let (logged, durable) = self
            .audit()
            .and_then(|mut log| {
                let appended = log.append_grouped(entry);
                self.audit_failing
                    .store(appended.is_err(), Ordering::Relaxed);
                appended.map_err(|e| {
                    tracing::error!(error = %e, "cannot write the audit log; refusing");
                    ServiceError::Internal
                })
            })
            .map_err(|e| e.to_status())?;
        // Group commit, as for releases: flushed without the log's lock, before any answer.
        durable.wait().map_err(|e| {
            tracing::error!(error = %e, "cannot flush the audit log; refusing");
            self.audit_failing.store(true, Ordering::Relaxed);
            ServiceError::Internal.to_status()
        })?;
        Ok(Some(logged))
    }

    /// The audit receipt for the entry at `logged`: the node's signature over its country, the
    /// entry's position and its chain hash. Every answer carries the receipt of its own entry.
    fn receipt(&self, logged: Option<&Logged>) -> Option<pb::AuditReceipt> {
        let (seq, hash) = logged?;
        let entries = u64::try_from(*seq).ok()?;
        let signed = AuditReceipt::sign(
            &self.audit_key,
            self.country.as_str(),
            entries,
            hash,
            self.clock.now_ms(),
        );
        match signed {
            Ok(r) => Some(pb_receipt(&r)),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the audit head");
                None
            }
        }
    }

    /// Logs the refusals counted but not written for `fingerprint`, as one entry.
    fn flush_flood(&self, fingerprint: &str, like: &NewEntry<'_>) -> Result<(), Status> {
        let flood = self
            .coalesced
            .lock()
            .ok()
            .and_then(|mut c| c.remove(fingerprint))
            .map_or(0, |(_, n)| n);
        if flood == 0 {
            return Ok(());
        }
        let outcome = format!("refused:FLOOD:{flood}");
        self.audit()
            .and_then(|mut log| {
                log.append(&NewEntry {
                    query_id: "",
                    envelope: b"",
                    signature: b"",
                    key_id: "",
                    outcome: &outcome,
                    answer_digest: "",
                    privacy: "",
                    ..like.clone()
                })
                .map(|_| ())
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot write the audit log; refusing");
                    ServiceError::Internal
                })
            })
            .map_err(|e| e.to_status())
    }

    /// `Plan`: what `Aggregate` would do with the same signed query, without consuming its id,
    /// reading a record or spending budget.
    fn plan(
        &self,
        peer: &Peer,
        req: &pb::AggregateRequest,
        query_id: &mut String,
    ) -> Result<pb::PlanResponse, ServiceError> {
        let (caller, revoked) = self.caller_listed(peer)?;
        let (admitted, _) = self.admit(&caller, &revoked, req, query_id)?;
        let mut out = pb::PlanResponse {
            country: self.country.to_string(),
            query_id: query_id.clone(),
            ..pb::PlanResponse::default()
        };
        if !self.privacy.is_zcdp() {
            out.would_answer = true;
            return Ok(out);
        }
        let plan = match self.plan_release(admitted.query) {
            Ok(p) => p,
            Err(e) => {
                out.refusal = e.reason().to_string();
                return Ok(out);
            }
        };
        let audit = self.audit()?;
        let replayed = audit
            .released(&plan.release_id)
            .map_err(internal)?
            .is_some();
        let privacy = self.release_privacy(&plan, &caller, replayed, &audit)?;
        let short = privacy
            .quarters
            .iter()
            .find(|q| q.caller_rho_left_micro < plan.rho_micro);
        out.would_answer = replayed || short.is_none();
        if !out.would_answer {
            out.refusal = "PRIVACY_BUDGET_EXHAUSTED".into();
        }
        out.cells = u32::try_from(plan.universe.keys.len()).unwrap_or(u32::MAX);
        out.privacy = Some(pb_release_privacy(&privacy));
        Ok(out)
    }
}

/// Whether a query issued at `issued_ms` is within `window_ms` of `now_ms`, for every pair of
/// `i64` (no overflow: the distance is computed without sign, as `u64`).
pub fn is_fresh(issued_ms: i64, now_ms: i64, window_ms: u64) -> bool {
    issued_ms.abs_diff(now_ms) <= window_ms
}

/// One query counted against its caller's daily budget until its audit entry is written.
struct DailySlot {
    caller: String,
    in_flight: Arc<Mutex<HashMap<String, u64>>>,
}

impl Drop for DailySlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.in_flight.lock()
            && let Some(n) = m.get_mut(&self.caller)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// What the audit log keeps of a request: as received once its signature verified; before
/// that, only the envelope's SHA-256 and length, and at most 64 bytes of signature and key id
/// (issue 12, item 3).
fn kept(
    body: &pb::AggregateRequest,
    unverified: bool,
) -> (std::borrow::Cow<'_, [u8]>, &[u8], std::borrow::Cow<'_, str>) {
    if !unverified {
        return (
            std::borrow::Cow::Borrowed(body.envelope.as_slice()),
            &body.signature,
            std::borrow::Cow::Borrowed(body.key_id.as_str()),
        );
    }
    let stand_in = format!(
        "unverified sha256:{} len:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &body.envelope)),
        body.envelope.len()
    );
    (
        std::borrow::Cow::Owned(stand_in.into_bytes()),
        &body.signature[..body.signature.len().min(64)],
        std::borrow::Cow::Owned(body.key_id.chars().take(64).collect()),
    )
}

/// What [`NodeService::gate`] decided.
enum Gate {
    /// Held for the operator's approval.
    Hold,
    /// Go on; `id_known` when the query id is already recorded, `approved` when the operator
    /// approved it.
    Go { id_known: bool, approved: bool },
}

fn internal(e: AuditError) -> ServiceError {
    tracing::error!(error = %e, "audit log");
    ServiceError::Internal
}

/// What a release charged, as the compact JSON the audit entry's hash covers.
fn charge_summary(answer: &Answer, replayed: bool) -> String {
    match &answer.privacy {
        None => String::new(),
        Some(p) => serde_json::json!({
            "release_id": p.release_id,
            "replayed": replayed,
            "rho_micro": if replayed { 0 } else { p.rho_micro },
            "quarters": p.quarters.iter().map(|q| q.quarter.as_str()).collect::<Vec<_>>(),
            "l2_sq": p.l2_sensitivity_squared,
            "sigma": p.sigma,
        })
        .to_string(),
    }
}

fn pb_mode(zcdp: bool) -> i32 {
    if zcdp {
        pb::ProtectionMode::Zcdp as i32
    } else {
        pb::ProtectionMode::RulesV1 as i32
    }
}

fn pb_budget(b: &vrs_core::answer::QuarterBudget) -> pb::QuarterBudget {
    pb::QuarterBudget {
        quarter: b.quarter.clone(),
        rho_spent_micro: b.rho_spent_micro,
        rho_left_micro: b.rho_left_micro,
        caller_rho_left_micro: b.caller_rho_left_micro,
    }
}

fn pb_release_privacy(p: &ReleasePrivacy) -> pb::ReleasePrivacy {
    pb::ReleasePrivacy {
        mode: pb_mode(true),
        release_id: p.release_id.clone(),
        replayed: p.replayed,
        rho_micro: p.rho_micro,
        l2_sensitivity_squared: p.l2_sensitivity_squared,
        privacy_unit: p.privacy_unit.clone(),
        sigma: p.sigma,
        threshold: p.threshold,
        quarters: p.quarters.iter().map(pb_budget).collect(),
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
        rho_micro: q.rho_micro,
    }
}

/// A one-line description of a query for the operator's approval list.
fn summarize(q: &Query) -> String {
    q.to_raw().in_words()
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

fn public_policy(p: &PublicPolicy, privacy: &PrivacyPolicy, caller: &str) -> pb::PublicPolicy {
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let (min_rho, max_rho) = privacy.rho_range_micro();
    let bounds = privacy.bounds();
    pb::PublicPolicy {
        mode: pb_mode(privacy.is_zcdp()),
        privacy: privacy.is_zcdp().then(|| pb::PrivacyPolicy {
            rho_per_quarter_micro: privacy.rho_per_quarter_micro(),
            caller_rho_per_quarter_micro: privacy.caller_share_micro(caller),
            default_rho_micro: privacy.default_rho_micro(),
            min_rho_micro: min_rho,
            max_rho_micro: max_rho,
            bounds: disclosure::BoundedTable::ALL
                .iter()
                .map(|t| pb::ContributionBound {
                    table: t.code().to_string(),
                    max_per_incident: bounds.of(*t),
                })
                .collect(),
            max_cells: privacy.max_cells(),
            threshold_sigmas: privacy.threshold_sigmas(),
            empty_cell_pass_rate: zcdp::empty_cell_pass_rate(privacy.threshold_sigmas()),
        }),
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

/// What `Describe` publishes. In zCDP mode the periods are the operator's declared coverage,
/// never read off the records, and each quarter's budget is shown as the caller sees it.
fn describe(
    store: &Store,
    policy: &Policy,
    privacy: &PrivacyPolicy,
    audit: &AuditLog,
    caller: &str,
    now_ms: i64,
) -> Result<pb::DescribeResponse, ServiceError> {
    let store_error = |e: StoreError| {
        tracing::error!(error = %e, "store");
        ServiceError::Internal
    };
    let (range, budget) = if privacy.is_zcdp() {
        let (from, to) = universe::coverage(
            privacy,
            universe::current_month(now_ms, privacy.coverage_from()),
        );
        let mut quarters: Vec<i64> = Vec::new();
        let mut m = Some(from);
        while let Some(cur) = m.filter(|c| *c <= to) {
            if quarters.last() != Some(&cur.quarter_int()) {
                quarters.push(cur.quarter_int());
            }
            m = cur.succ();
        }
        let limits = Limits {
            per_quarter_micro: privacy.rho_per_quarter_micro(),
            caller_micro: privacy.caller_share_micro(caller),
        };
        let budget = audit
            .budgets(&quarters, caller, limits)
            .map_err(internal)?
            .iter()
            .map(pb_budget)
            .collect();
        (Some((from, to)), budget)
    } else {
        (store.period_range().map_err(store_error)?, Vec::new())
    };
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
        policy: Some(public_policy(&policy.public(), privacy, caller)),
        first_period: range.map(|r| r.0.to_string()).unwrap_or_default(),
        last_period: range.map(|r| r.1.to_string()).unwrap_or_default(),
        budget,
        audit_head: None,
        audit_key: String::new(),
    })
}

/// The wire form of a receipt (its signature as raw bytes).
fn pb_receipt(r: &AuditReceipt) -> pb::AuditReceipt {
    pb::AuditReceipt {
        entries: r.entries,
        head: r.head.clone(),
        signed_at_ms: r.signed_at_ms,
        signature: hex::decode(&r.signature).unwrap_or_default(),
    }
}

fn to_pb_reason(r: SuppressionReason) -> pb::SuppressionReason {
    match r {
        SuppressionReason::BelowThreshold => pb::SuppressionReason::BelowThreshold,
        SuppressionReason::TooFewContributors => pb::SuppressionReason::TooFewContributors,
        SuppressionReason::Dominance => pb::SuppressionReason::Dominance,
        SuppressionReason::Complementary => pb::SuppressionReason::Complementary,
        SuppressionReason::NoisyBelowThreshold => pb::SuppressionReason::NoisyBelowThreshold,
    }
}

/// Hex SHA-256 over a canonical rendering of the released answer (what the audit log records).
pub fn answer_digest(answer: &Answer) -> String {
    answer.digest()
}

/// The three calls, as their blocking work runs them.
impl Inner {
    fn describe_now(&self, peer: &Peer) -> Result<pb::DescribeResponse, Status> {
        let caller = self.caller(peer).map_err(|e| {
            tracing::warn!(reason = e.reason(), "describe refused");
            e.to_status()
        })?;
        tracing::info!(%caller, "describe");
        let described = (|| {
            let store = self.pool.take().map_err(|e| {
                tracing::error!(error = %e, "cannot open store");
                ServiceError::Internal
            })?;
            let audit = self.audit();
            let out = audit.and_then(|a| {
                let mut out = describe(
                    &store,
                    &self.policy,
                    &self.privacy,
                    &a,
                    &caller,
                    self.clock.now_ms(),
                )?;
                // The log's head as of now, signed: a coordinator that sees a later head with
                // fewer entries, or another key, knows the log was replaced.
                let head = a.head().map_err(internal)?;
                out.audit_head = self.receipt(Some(&head));
                out.audit_key = self.audit_key.public_key().to_hex();
                Ok(out)
            });
            self.pool.give_back(store);
            out
        })();
        described.map_err(|e| e.to_status())
    }

    fn plan_now(
        &self,
        peer: &Peer,
        body: &pb::AggregateRequest,
    ) -> Result<pb::PlanResponse, Status> {
        let mut query_id = String::new();
        let planned = self.plan(peer, body, &mut query_id);
        let outcome = match &planned {
            Ok(p) if p.would_answer => "planned".to_string(),
            Ok(p) => format!("planned:would_refuse:{}", p.refusal),
            Err(e) => format!("refused:{}", e.reason()),
        };
        // Plans are audited like queries: unverified bytes by digest, floods counted.
        let unverified = matches!(&planned, Err(e) if e.before_signature());
        let (envelope, signature, key_id) = kept(body, unverified);
        let entry = NewEntry {
            at_ms: self.clock.now_ms(),
            caller: peer.identity.as_deref().unwrap_or(""),
            query_id: &query_id,
            envelope: &envelope,
            signature,
            key_id: &key_id,
            outcome: &outcome,
            answer_digest: "",
            privacy: "",
        };
        let fingerprint = peer.fingerprint();
        let write = planned.is_ok() || self.refusal_audit.allow(&fingerprint);
        self.write_entry(write, &fingerprint, &entry)?;
        planned.map_err(|e| {
            tracing::warn!(reason = e.reason(), "plan refused");
            e.to_status()
        })
    }

    /// One `Aggregate` call from start to audit entry, on its blocking thread. An answer or
    /// held query whose caller has gone by the time its entry is written is logged as
    /// `cancelled` (the id is spent; a fresh zCDP release is kept, its budget spent).
    fn aggregate_now(
        &self,
        peer: &Peer,
        body: &pb::AggregateRequest,
        call: &Call<'_>,
    ) -> Result<pb::AggregateResponse, Status> {
        let mut query_id = String::new();
        // Held until this query's audit entry is written (the end of this function).
        let mut _slot: Option<DailySlot> = None;
        let handled = self.handle(peer, body, &mut query_id, &mut _slot, call);
        if !query_id.is_empty() {
            tracing::Span::current().record("query_id", query_id.as_str());
        }
        let gone = handled.is_ok() && call.gone();
        let (outcome, digest, charge, already) = match &handled {
            Ok(Handled::Answered {
                audited: Some((logged, digest)),
                ..
            }) => (
                String::new(),
                digest.clone(),
                String::new(),
                Some(logged.clone()),
            ),
            Ok(Handled::Answered {
                answer,
                audited: None,
            }) => (
                if gone { CANCELLED } else { "answered" }.to_string(),
                answer_digest(answer),
                charge_summary(answer, true),
                None,
            ),
            Ok(Handled::Pending) => (
                if gone { CANCELLED } else { "pending_approval" }.to_string(),
                String::new(),
                String::new(),
                None,
            ),
            Ok(Handled::Regional {
                digest, audited, ..
            }) => (
                if gone { CANCELLED } else { "answered" }.to_string(),
                digest.clone(),
                String::new(),
                Some(audited.clone()),
            ),
            Err(e) => (
                format!("refused:{}", e.reason()),
                String::new(),
                String::new(),
                None,
            ),
        };
        // Invariant 4: nothing is released unless its audit entry is written first. A fresh
        // zCDP release wrote its own, in one transaction with its ledger commit.
        let logged = if let Some(logged) = already {
            // A fresh release was logged with its ledger commit; a flood counted before it
            // still gets its entry.
            let fingerprint = peer.fingerprint();
            let flood_only = NewEntry {
                at_ms: self.clock.now_ms(),
                caller: peer.identity.as_deref().unwrap_or(""),
                query_id: "",
                envelope: b"",
                signature: b"",
                key_id: "",
                outcome: "",
                answer_digest: "",
                privacy: "",
            };
            self.flush_flood(&fingerprint, &flood_only)?;
            Some(logged)
        } else {
            // Unverified bytes are not kept: a refusal before the signature holds their
            // SHA-256 and length, so a flood of junk cannot fill the node's disk.
            let unverified = matches!(&handled, Err(e) if e.before_signature());
            let (envelope, signature, key_id) = kept(body, unverified);
            let entry = NewEntry {
                at_ms: self.clock.now_ms(),
                caller: peer.identity.as_deref().unwrap_or(""),
                query_id: &query_id,
                envelope: &envelope,
                signature,
                key_id: &key_id,
                outcome: &outcome,
                answer_digest: &digest,
                privacy: &charge,
            };
            let fingerprint = peer.fingerprint();
            let write = handled.is_ok() || self.refusal_audit.allow(&fingerprint);
            self.write_entry(write, &fingerprint, &entry)?
        };
        let caller = peer.identity.as_deref().unwrap_or("");
        match handled {
            Err(e) => {
                tracing::warn!(reason = e.reason(), "query refused");
                Err(e.to_status())
            }
            Ok(Handled::Pending) => {
                tracing::info!("query held for approval");
                Ok(pb::AggregateResponse {
                    country: self.country.to_string(),
                    query_id,
                    status: pb::AnswerStatus::PendingApproval as i32,
                    receipt: self.receipt(logged.as_ref()),
                    policy: Some(public_policy(&self.policy.public(), &self.privacy, caller)),
                    ..pb::AggregateResponse::default()
                })
            }
            Ok(Handled::Regional {
                report,
                privacy,
                dimensions,
                keys,
                digest,
                ..
            }) => {
                tracing::info!(cells = report.cells, "regional report made");
                Ok(pb::AggregateResponse {
                    country: self.country.to_string(),
                    query_id,
                    status: pb::AnswerStatus::Answered as i32,
                    dimensions: dimensions.iter().map(|d| d.code().to_string()).collect(),
                    cells: keys
                        .into_iter()
                        .map(|key| pb::Cell {
                            key,
                            outcome: None,
                            sigma: 0.0,
                        })
                        .collect(),
                    policy: Some(public_policy(&self.policy.public(), &self.privacy, caller)),
                    answer_digest: digest,
                    privacy: Some(pb_release_privacy(&privacy)),
                    receipt: self.receipt(logged.as_ref()),
                    regional: Some(report),
                })
            }
            Ok(Handled::Answered { answer, .. }) => {
                let released = answer
                    .cells
                    .iter()
                    .filter(|c| c.value.value().is_some())
                    .count();
                tracing::info!(cells = answer.cells.len(), released, "query answered");
                let sigma = answer.privacy.as_ref().map_or(0.0, |p| p.sigma);
                let cells = answer
                    .cells
                    .into_iter()
                    .map(|c| pb::Cell {
                        key: c.key,
                        outcome: Some(match c.value {
                            CellValue::Released(v) => pb::cell::Outcome::Value(v),
                            CellValue::Noisy(v) => pb::cell::Outcome::Noisy(v),
                            CellValue::Suppressed(r) => {
                                pb::cell::Outcome::Suppressed(to_pb_reason(r) as i32)
                            }
                        }),
                        sigma: if matches!(c.value, CellValue::Noisy(_)) {
                            sigma
                        } else {
                            0.0
                        },
                    })
                    .collect();
                Ok(pb::AggregateResponse {
                    country: self.country.to_string(),
                    query_id,
                    status: pb::AnswerStatus::Answered as i32,
                    dimensions: answer
                        .dimensions
                        .iter()
                        .map(|d| d.code().to_string())
                        .collect(),
                    cells,
                    policy: Some(public_policy(&self.policy.public(), &self.privacy, caller)),
                    answer_digest: digest,
                    privacy: answer.privacy.as_ref().map(pb_release_privacy),
                    receipt: self.receipt(logged.as_ref()),
                    regional: None,
                })
            }
        }
    }
}

/// One `Aggregate` call as its blocking work sees it: the concurrency permit taken when it
/// arrived (`None`: the node was busy), its deadline, and the channel its answer goes back on
/// (closed once the caller has gone).
struct Call<'a> {
    permit: Option<Slot>,
    deadline: std::time::Instant,
    reply: &'a tokio::sync::oneshot::Sender<Result<pb::AggregateResponse, Status>>,
}

impl Call<'_> {
    fn past_deadline(&self) -> bool {
        std::time::Instant::now() >= self.deadline
    }

    fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// The outcome of an answer or held query whose caller had gone when its entry was written.
pub const CANCELLED: &str = "cancelled";

/// The caller's own deadline (`grpc-timeout`: up to 8 digits and a unit), if it sent one.
pub fn caller_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = metadata.get("grpc-timeout")?.to_str().ok()?;
    if !(2..=9).contains(&v.len()) {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl NodeService {
    /// The deadline of a call: the caller's `grpc-timeout`, at most the server's own limit.
    fn deadline(&self, metadata: &tonic::metadata::MetadataMap) -> std::time::Instant {
        let limit = caller_timeout(metadata).map_or(self.inner.request_timeout, |t| {
            t.min(self.inner.request_timeout)
        });
        std::time::Instant::now() + limit
    }

    /// A slot for a `Describe`, `Plan` or `FetchHelperShare` call, or `BUSY` at once when none
    /// can be had before its deadline (counted like an `Aggregate`'s, [`Inner::refused_busy`]).
    async fn slot(
        &self,
        peer: &Peer,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Slot, Status> {
        let deadline = tokio::time::Instant::from_std(self.deadline(metadata));
        self.inner.admission.enter(deadline).await.map_err(|why| {
            self.inner.refused_busy(peer, why);
            ServiceError::Busy.to_status()
        })
    }
}

/// Runs `work` on a blocking thread (SQLite and fsyncs never run on the runtime's threads).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| Err(ServiceError::Internal.to_status()))
}

#[tonic::async_trait]
impl pb::federation_server::Federation for NodeService {
    async fn describe(
        &self,
        req: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let peer = Peer::of(&req, &self.inner.peer_names);
        let _slot = self.slot(&peer, req.metadata()).await?;
        let inner = self.inner.clone();
        blocking(move || inner.describe_now(&peer))
            .await
            .map(Response::new)
    }

    async fn plan(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        let peer = Peer::of(&req, &self.inner.peer_names);
        let _slot = self.slot(&peer, req.metadata()).await?;
        let body = req.into_inner();
        let inner = self.inner.clone();
        blocking(move || inner.plan_now(&peer, &body))
            .await
            .map(Response::new)
    }

    async fn fetch_helper_share(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::HelperShareResponse>, Status> {
        let peer = Peer::of(&req, &self.inner.peer_names);
        let _slot = self.slot(&peer, req.metadata()).await?;
        let body = req.into_inner();
        let inner = self.inner.clone();
        blocking(move || inner.fetch_now(&peer, &body))
            .await
            .map(Response::new)
    }

    /// The work runs to its audit entry on a blocking thread whether or not the caller waits
    /// for it (issue 12, item 5): tonic dropping this future at the deadline only closes the
    /// reply channel, which the work reads as "cancelled".
    async fn aggregate(
        &self,
        req: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let peer = Peer::of(&req, &self.inner.peer_names);
        let deadline = self.deadline(req.metadata());
        let body = req.into_inner();
        // Waits for a slot only while the answer can still make the deadline (issue 15, 3);
        // an allowed caller is told BUSY at once, without waiting for the audit log.
        let permit = match self
            .inner
            .admission
            .enter(tokio::time::Instant::from_std(deadline))
            .await
        {
            Ok(slot) => Some(slot),
            Err(why) => {
                if self.inner.refused_busy(&peer, why) {
                    return Err(ServiceError::Busy.to_status());
                }
                None
            }
        };
        let span = tracing::info_span!(
            "aggregate",
            caller = peer.identity.as_deref().unwrap_or("-"),
            node = %self.inner.country,
            query_id = tracing::field::Empty
        );
        let inner = self.inner.clone();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let call = Call {
                permit,
                deadline,
                reply: &reply,
            };
            let result = inner.aggregate_now(&peer, &body, &call);
            drop(call);
            let _ = reply.send(result);
        });
        drop(work);
        match answer.await {
            Ok(result) => result.map(Response::new),
            Err(_) => Err(ServiceError::Internal.to_status()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_fresh;
    use proptest::prelude::*;

    proptest! {
        /// Freshness against exact 128-bit arithmetic, over the whole range of both integers.
        #[test]
        fn freshness_never_overflows(issued in any::<i64>(), now in any::<i64>(), window in 0u64..=u64::MAX / 2) {
            let exact = (i128::from(issued) - i128::from(now)).unsigned_abs() <= u128::from(window);
            prop_assert_eq!(is_fresh(issued, now, window), exact);
        }
    }

    #[test]
    fn the_edges_of_the_window() {
        let now = 1_700_000_000_000;
        assert!(is_fresh(now - 300_000, now, 300_000));
        assert!(!is_fresh(now - 300_001, now, 300_000));
        assert!(!is_fresh(i64::MIN, now, 300_000));
        assert!(!is_fresh(i64::MIN + now, now, 300_000));
        assert!(!is_fresh(i64::MAX, now, 300_000));
        assert!(!is_fresh(now, i64::MIN, u64::MAX / 2));
    }
}
