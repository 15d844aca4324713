//! Fan-out: one signed query to every node at once, each with its own deadline.
//!
//! [`Federation::connect`] opens one reused connection per node (lazily, so an unreachable node
//! costs only its own deadline). [`Federation::ask`] signs a fresh envelope per node (the audience
//! is that node), sends them concurrently, and returns a [`NodeOutcome`] per node: answered,
//! pending approval, refused with the node's stable reason, unreachable, or timed out. A slow or
//! failing node never holds the others back. [`Federation::plan`] sends the same signed envelopes
//! to `Plan` (what each node would charge, nothing spent, the query id not consumed), and
//! [`Federation::describe`] converts each node's `Describe` into a [`NodeDescription`].
//!
//! This is the one place where wire types become domain types. A response that contradicts
//! itself (another country, another query id, a cell key listed twice, noise scales that differ
//! from the answer's, a digest that is not the SHA-256 of the cells received) is never merged:
//! it becomes a `BAD_RESPONSE` refusal.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use vrs_core::answer::{
    Answer, Cell, CellValue, ProtectionMode, QuarterBudget, ReleasePrivacy, SuppressionReason,
};
use vrs_core::audit_chain::AuditReceipt;
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Query};
use vrs_core::signing::{SigningError, SigningKey};
use vrs_core::tls::{self, TlsError};
use vrs_proto::pb;
use vrs_proto::pb::federation_client::FederationClient;

use crate::receipts::{Book, Kept, Kind, ReceiptsError};
use crate::registry::Registry;

/// What one node did with a query.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeOutcome {
    /// Released cells.
    Answered(Answer),
    /// The node's operator must approve first; ask again later with the same query id.
    PendingApproval,
    /// The node refused, with its stable reason code and message.
    Refused {
        /// Stable reason (e.g. `TOO_MANY_DIMENSIONS`), or the gRPC code name.
        reason: String,
        /// The node's short message.
        message: String,
    },
    /// The node could not be reached (connection or TLS failure).
    Unreachable(String),
    /// No answer within the deadline.
    TimedOut,
}

impl NodeOutcome {
    /// One word for tables: answered, pending, refused, unreachable, timed_out.
    pub fn label(&self) -> &'static str {
        match self {
            NodeOutcome::Answered(_) => "answered",
            NodeOutcome::PendingApproval => "pending_approval",
            NodeOutcome::Refused { .. } => "refused",
            NodeOutcome::Unreachable(_) => "unreachable",
            NodeOutcome::TimedOut => "timed_out",
        }
    }

    /// The detail shown next to the label.
    pub fn detail(&self) -> String {
        match self {
            NodeOutcome::Answered(a) if a.cells.len() == 1 => "1 cell".into(),
            NodeOutcome::Answered(a) => format!("{} cells", a.cells.len()),
            NodeOutcome::PendingApproval => "waiting for the node operator".into(),
            NodeOutcome::Refused { reason, message } => format!("{reason}: {message}"),
            NodeOutcome::Unreachable(e) => e.clone(),
            NodeOutcome::TimedOut => "no answer before the deadline".into(),
        }
    }
}

/// A node's outcome with its country and how long it took.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// The node's country.
    pub country: Country,
    /// What happened.
    pub outcome: NodeOutcome,
    /// Time from sending to the outcome.
    pub elapsed: Duration,
    /// The node's signed receipt for the audit entry of this outcome (answers and held queries),
    /// kept in the receipt book.
    pub receipt: Option<AuditReceipt>,
}

/// Set-up failures of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The signing key could not be loaded.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// The receipt book cannot be opened.
    #[error(transparent)]
    Receipts(#[from] ReceiptsError),
}

struct NodeConn {
    country: Country,
    client: FederationClient<Channel>,
}

/// Connections to every node in the registry, and the key that signs queries.
pub struct Federation {
    nodes: Vec<NodeConn>,
    key: Arc<SigningKey>,
    pub(crate) issuer: String,
    pub(crate) deadline: Duration,
    rng: SystemRandom,
    /// Stamps envelopes (`issued_at_ms`).
    pub(crate) clock: Arc<dyn Clock>,
    /// Where every audit receipt a node gives is kept.
    book: Arc<Book>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| n.country).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Largest response accepted from a node.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

impl Federation {
    /// Prepares one connection per node (made on first use) and loads the signing key.
    pub fn connect(registry: &Registry) -> Result<Federation, FanoutError> {
        let config = tls::client_config(&registry.tls)?;
        let key = SigningKey::load(&registry.coordinator.signing_key)?;
        let mut nodes = Vec::with_capacity(registry.nodes.len());
        for n in &registry.nodes {
            let channel = tls::connect_lazy(
                &n.endpoint,
                &n.expected_identity(),
                config.clone(),
                registry.connect_timeout(),
            )?;
            nodes.push(NodeConn {
                country: n.country,
                client: FederationClient::new(channel)
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
            });
        }
        Ok(Federation {
            nodes,
            key: Arc::new(key),
            issuer: registry.identity(),
            deadline: registry.deadline(),
            rng: SystemRandom::new(),
            clock: Arc::new(SystemClock),
            book: Arc::new(Book::open(&registry.receipts_path())?),
        })
    }

    /// The receipt book this federation keeps its nodes' audit receipts in.
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Appends what came with each outcome to the receipt book, on a blocking thread. The
    /// lines are in the file before the answers are returned (a crash of this process loses
    /// none of them); the same thread then flushes them to disk, one flush for concurrent
    /// queries, without holding the answers back (a book let go of with lines unflushed flushes
    /// them: [`Book`]'s drop). A book that cannot be written is reported loudly and does not
    /// hold the answers back either (they came over mutual TLS).
    pub(crate) async fn keep(&self, lines: Vec<Kept>) {
        if lines.is_empty() {
            return;
        }
        let book = self.book.clone();
        let count = lines.len();
        let (appended, in_file) = tokio::sync::oneshot::channel();
        drop(tokio::task::spawn_blocking(move || {
            let ticket = book.append(&lines);
            let flush = ticket.as_ref().ok().copied().flatten();
            let _ = appended.send(ticket.map(drop));
            if let Some(ticket) = flush
                && let Err(e) = book.sync(ticket)
            {
                tracing::error!(error = %e, receipts = count, "cannot flush audit receipts");
            }
        }));
        let failed = match in_file.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the receipt book's thread ended".to_string(),
        };
        tracing::error!(error = %failed, receipts = count, "cannot keep audit receipts");
    }

    /// Stamps envelopes with `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Federation {
        self.clock = clock;
        self
    }

    /// The countries asked, in registry order.
    pub fn countries(&self) -> Vec<Country> {
        self.nodes.iter().map(|n| n.country).collect()
    }

    /// A fresh random query id (32 hex characters).
    pub fn new_query_id(&self) -> Result<String, FanoutError> {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b).map_err(|_| FanoutError::Random)?;
        Ok(hex::encode(b))
    }

    /// Sends `query` to every node concurrently; returns one result per node, in registry order.
    pub async fn ask(&self, query: &Query) -> Result<(String, Vec<NodeResult>), FanoutError> {
        let query_id = self.new_query_id()?;
        let results = self.ask_with_id(query, &query_id).await;
        Ok((query_id, results))
    }

    /// Like [`Federation::ask`] with a given query id (to collect a pending answer later, the
    /// same id is sent again with a fresh signature and timestamp).
    ///
    /// Each response is checked and converted in its node's own task as it arrives
    /// ([`outcome_of_response`]), while the other nodes are still working.
    pub async fn ask_with_id(&self, query: &Query, query_id: &str) -> Vec<NodeResult> {
        self.ask_each(query, query_id, |_, _| {}).await
    }

    /// Like [`Federation::ask`], and merges the answers as they arrive ([`Merging`]): the
    /// regional cells are ready soon after the slowest node's answer, not merged only then.
    /// The same as [`merge::merge`] of the results. Each answer's cells are let go once merged
    /// (a regional query's answers can hold half a million of them): the results' answers come
    /// back without their cells, with everything else (privacy, receipt, timing).
    ///
    /// [`Merging`]: crate::merge::Merging
    /// [`merge::merge`]: crate::merge::merge
    pub async fn ask_merged(
        &self,
        query: &Query,
    ) -> Result<(String, Vec<NodeResult>, crate::merge::Regional), FanoutError> {
        let query_id = self.new_query_id()?;
        let countries = self.countries();
        let mut merging = crate::merge::Merging::new(query.group_by(), &countries);
        let results = self
            .ask_each(query, &query_id, |position, outcome| {
                if let NodeOutcome::Answered(answer) = outcome {
                    merging.add(position, answer);
                    answer.cells = Vec::new();
                }
            })
            .await;
        let regional = merging.finish(&query_id, query.unit(), &results);
        Ok((query_id, results, regional))
    }

    /// [`Federation::ask_with_id`], telling `each` every node's outcome (by registry position)
    /// as it arrives.
    async fn ask_each(
        &self,
        query: &Query,
        query_id: &str,
        mut each: impl FnMut(usize, &mut NodeOutcome),
    ) -> Vec<NodeResult> {
        let id: Arc<str> = Arc::from(query_id);
        let requests = self.sign_all(query, query_id, None);
        let checked = self
            .send_and_check(
                requests,
                |mut client, req| async move { client.aggregate(req).await },
                move |country, resp| outcome_of_response(country, &id, resp),
                |position, checked: &mut Result<Checked, NodeOutcome>| {
                    if let Ok(c) = checked {
                        each(position, &mut c.outcome);
                    }
                },
            )
            .await;
        let now = self.clock.now_ms();
        let mut kept = Vec::new();
        let mut results = Vec::with_capacity(checked.len());
        for (country, checked, elapsed) in checked {
            let Checked {
                outcome,
                receipt,
                answer_digest,
            } = checked.unwrap_or_else(|failed| Checked {
                outcome: failed,
                receipt: None,
                answer_digest: String::new(),
            });
            let kind = match &outcome {
                NodeOutcome::Answered(_) => Some(Kind::Answer),
                NodeOutcome::PendingApproval => Some(Kind::Pending),
                _ => None,
            };
            if let (Some(kind), Some(receipt)) = (kind, &receipt) {
                kept.push(Kept {
                    kind,
                    query_id: query_id.to_string(),
                    answer_digest,
                    audit_key: String::new(),
                    receipt: receipt.clone(),
                    kept_at_ms: now,
                });
            }
            results.push(NodeResult {
                country,
                outcome,
                elapsed,
                receipt,
            });
        }
        self.keep(kept).await;
        results
    }

    /// Sends `query` to every node's `Plan` with a fresh query id: what each would charge, and
    /// whether it would answer. Nothing is spent and the id is not consumed.
    pub async fn plan(&self, query: &Query) -> Result<(String, Vec<PlanResult>), FanoutError> {
        let query_id = self.new_query_id()?;
        let results = self.plan_with_id(query, &query_id).await;
        Ok((query_id, results))
    }

    /// Like [`Federation::plan`] with a given query id; the same id can be sent to
    /// [`Federation::ask_with_id`] afterwards.
    pub async fn plan_with_id(&self, query: &Query, query_id: &str) -> Vec<PlanResult> {
        self.send(query, query_id, |mut client, req| async move {
            client.plan(req).await
        })
        .await
        .into_iter()
        .map(|(country, outcome, elapsed)| PlanResult {
            country,
            outcome: match outcome {
                Ok(r) => plan_of_response(country, query_id, r).map_err(bad),
                Err(failed) => Err(failed),
            },
            elapsed,
        })
        .collect()
    }

    /// Signs one envelope per node (audience = that node) and runs `call` for each node
    /// concurrently under the deadline. A connection that cannot be made (nothing was sent) is
    /// tried again, with backoff, while the node's deadline leaves time (issue 12, item 8): a
    /// node restarting or briefly flooded is still asked. A node that runs out of time is
    /// `Err(NodeOutcome::TimedOut)`, one that refuses is its refusal; results are in registry
    /// order.
    async fn send<R, F, Fut>(
        &self,
        query: &Query,
        query_id: &str,
        call: F,
    ) -> Vec<(Country, Result<R, NodeOutcome>, Duration)>
    where
        R: Send + 'static,
        F: Fn(FederationClient<Channel>, tonic::Request<pb::AggregateRequest>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>> + Send,
    {
        let requests = self.sign_all(query, query_id, None);
        self.send_signed(requests, call).await
    }

    /// One signed request per node, in registry order (audience = that node), with
    /// `regional` in every envelope when set.
    pub(crate) fn sign_all(
        &self,
        query: &Query,
        query_id: &str,
        regional: Option<&pb::RegionalMode>,
    ) -> Vec<pb::AggregateRequest> {
        let pb_query = pb::Query::from(query.to_raw());
        let issued_at_ms = self.clock.now_ms();
        self.nodes
            .iter()
            .map(|node| {
                let envelope = pb::QueryEnvelope {
                    query_id: query_id.to_string(),
                    issued_at_ms,
                    audience: node.country.to_string(),
                    issuer: self.issuer.clone(),
                    query: Some(pb_query.clone()),
                    regional: regional.cloned(),
                }
                .encode_to_vec();
                pb::AggregateRequest {
                    signature: self.key.sign(&envelope),
                    envelope,
                    key_id: self.key.key_id(),
                }
            })
            .collect()
    }

    /// Sends `requests` (one per node, registry order, from [`Federation::sign_all`]) with
    /// `call`; see [`Federation::send`].
    pub(crate) async fn send_signed<R, F, Fut>(
        &self,
        requests: Vec<pb::AggregateRequest>,
        call: F,
    ) -> Vec<(Country, Result<R, NodeOutcome>, Duration)>
    where
        R: Send + 'static,
        F: Fn(FederationClient<Channel>, tonic::Request<pb::AggregateRequest>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>> + Send,
    {
        self.send_and_check(requests, call, |_, response| response, |_, _| {})
            .await
    }

    /// Like [`Federation::send_signed`], and `check` turns each node's response into `T` in
    /// that node's task, as soon as it arrives: one node's answer is checked while the others
    /// are still being computed; `each` sees it then (by registry position). `elapsed` is the
    /// time to the response, before `check`.
    async fn send_and_check<R, T, F, Fut, C, E>(
        &self,
        requests: Vec<pb::AggregateRequest>,
        call: F,
        check: C,
        mut each: E,
    ) -> Vec<(Country, Result<T, NodeOutcome>, Duration)>
    where
        E: FnMut(usize, &mut Result<T, NodeOutcome>),
        R: Send + 'static,
        T: Send + 'static,
        F: Fn(FederationClient<Channel>, tonic::Request<pb::AggregateRequest>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>> + Send,
        C: Fn(Country, R) -> T + Send + Sync + 'static,
    {
        let call = Arc::new(call);
        let check = Arc::new(check);
        let mut set = JoinSet::new();
        for (i, (node, request)) in self.nodes.iter().zip(requests).enumerate() {
            let deadline = self.deadline;
            let client = node.client.clone();
            let country = node.country;
            let call = call.clone();
            let check = check.clone();
            set.spawn(async move {
                let started = tokio::time::Instant::now();
                let attempts = async {
                    let mut backoff = CONNECT_RETRY_FIRST;
                    loop {
                        let mut req = tonic::Request::new(request.clone());
                        req.set_timeout(deadline.saturating_sub(started.elapsed()));
                        match call(client.clone(), req).await {
                            Ok(response) => return Ok(response.into_inner()),
                            Err(status)
                                if not_connected(&status)
                                    && started.elapsed() + backoff < deadline =>
                            {
                                tracing::debug!(error = %status.message(), "connect failed; retrying");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(CONNECT_RETRY_MAX);
                            }
                            Err(status) => return Err(outcome_of_status(&status)),
                        }
                    }
                };
                let outcome = tokio::time::timeout(deadline, attempts)
                    .await
                    .unwrap_or(Err(NodeOutcome::TimedOut));
                let elapsed = started.elapsed();
                (i, outcome.map(|response| check(country, response)), elapsed)
            });
        }
        let mut results: Vec<(Country, Result<T, NodeOutcome>, Duration)> = self
            .nodes
            .iter()
            .map(|n| {
                let failed = NodeOutcome::Unreachable("request task failed".into());
                (n.country, Err(failed), Duration::ZERO)
            })
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, mut outcome, elapsed)) = joined
                && let Some(slot) = results.get_mut(i)
            {
                each(i, &mut outcome);
                slot.1 = outcome;
                slot.2 = elapsed;
            }
        }
        results
    }

    /// Asks every node to describe itself (country, dimensions, public policy, budget).
    pub async fn describe(&self) -> Vec<(Country, Result<NodeDescription, NodeOutcome>)> {
        let mut set = JoinSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut client = node.client.clone();
            let deadline = self.deadline;
            let country = node.country;
            set.spawn(async move {
                let r =
                    match tokio::time::timeout(deadline, client.describe(pb::DescribeRequest {}))
                        .await
                    {
                        Err(_) => Err(NodeOutcome::TimedOut),
                        Ok(Err(status)) => Err(outcome_of_status(&status)),
                        Ok(Ok(resp)) => {
                            description_of_response(country, resp.into_inner()).map_err(bad)
                        }
                    };
                (i, r)
            });
        }
        let mut out: Vec<(Country, Result<NodeDescription, NodeOutcome>)> = self
            .nodes
            .iter()
            .map(|n| {
                let failed = NodeOutcome::Unreachable("request task failed".into());
                (n.country, Err(failed))
            })
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                slot.1 = r;
            }
        }
        let now = self.clock.now_ms();
        self.keep(
            out.iter()
                .filter_map(|(_, d)| {
                    let d = d.as_ref().ok()?;
                    Some(Kept {
                        kind: Kind::Describe,
                        query_id: String::new(),
                        answer_digest: String::new(),
                        audit_key: d.audit_key.clone(),
                        receipt: d.audit_head.clone()?,
                        kept_at_ms: now,
                    })
                })
                .collect(),
        )
        .await;
        out
    }
}

/// What a node would do with a query, as its `Plan` says: nothing read, nothing spent.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Whether `Aggregate` would answer (or hold the query for approval).
    pub would_answer: bool,
    /// The node's stable reason when it would refuse (e.g. `UNIVERSE_TOO_LARGE`).
    pub refusal: Option<String>,
    /// What the release would cost and how noisy it would be (zCDP nodes; `None` in rules mode).
    pub privacy: Option<ReleasePrivacy>,
    /// Cells the answer would have (zCDP: the whole universe).
    pub cells: u32,
}

/// A node's plan (or why it gave none) with its country and how long it took.
#[derive(Debug, Clone)]
pub struct PlanResult {
    /// The node's country.
    pub country: Country,
    /// The plan, or the outcome that stopped it (refused, unreachable, timed out).
    pub outcome: Result<Plan, NodeOutcome>,
    /// Time from sending to the outcome.
    pub elapsed: Duration,
}

/// The disclosure rules of a node (rules mode; published in both modes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySummary {
    /// Smallest count released.
    pub min_count: u32,
    /// Fewest distinct contributing incidents.
    pub min_contributors: u32,
    /// Dominance rule p (%), 0 when off.
    pub dominance_p: u32,
    /// Whether cell-key perturbation is on.
    pub perturbation: bool,
    /// Largest perturbation, in units.
    pub perturbation_max_deviation: u32,
    /// Released values are multiples of this (0 or 1: no rounding).
    pub rounding_base: u32,
    /// Most group-by dimensions per query.
    pub max_dimensions: u32,
}

/// A zCDP node's privacy-loss budget and noise parameters. ρ values are in micro-ρ.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivacyParameters {
    /// Lifetime budget of each reference quarter, shared by all callers.
    pub rho_per_quarter_micro: u64,
    /// This coordinator's own share of it.
    pub caller_rho_per_quarter_micro: u64,
    /// ρ a query spends when it asks for none.
    pub default_rho_micro: u64,
    /// Least ρ one query may ask for.
    pub min_rho_micro: u64,
    /// Most ρ one query may ask for.
    pub max_rho_micro: u64,
    /// Largest cell universe of one query.
    pub max_cells: u32,
    /// Noisy values below this many σ are suppressed (0: every cell released).
    pub threshold_sigmas: f64,
    /// Share of empty cells that still pass that threshold.
    pub empty_cell_pass_rate: f64,
    /// Contribution bounds: table → most values counted per incident.
    pub bounds: Vec<(String, u32)>,
}

/// What a node publishes about itself (`Describe`), in domain form.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDescription {
    /// Its store schema version.
    pub schema_version: u32,
    /// Its software version.
    pub software_version: String,
    /// Units it counts.
    pub units: Vec<String>,
    /// Published dimensions with their closed value lists.
    pub dimensions: Vec<(String, Vec<String>)>,
    /// First month of its declared coverage (`YYYY-MM`; rules mode: of the data held).
    pub first_period: String,
    /// Last month of its declared coverage.
    pub last_period: String,
    /// Its protection mode.
    pub mode: ProtectionMode,
    /// Its disclosure rules.
    pub policy: PolicySummary,
    /// Its privacy-loss budget and noise parameters (zCDP mode).
    pub privacy: Option<PrivacyParameters>,
    /// Budget of every quarter of its coverage (zCDP mode; empty in rules mode).
    pub budget: Vec<QuarterBudget>,
    /// The key it signs its audit heads with (hex Ed25519).
    pub audit_key: String,
    /// Its audit log's signed head when it answered.
    pub audit_head: Option<AuditReceipt>,
}

/// Maps a gRPC status from a node to an outcome: refusals carry the node's `vrs-reason`;
/// transport failures are "unreachable".
pub(crate) fn outcome_of_status(status: &tonic::Status) -> NodeOutcome {
    let reason = status
        .metadata()
        .get("vrs-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (reason, status.code()) {
        (Some(reason), _) => NodeOutcome::Refused {
            reason,
            message: clip(status.message()),
        },
        (None, tonic::Code::Unavailable | tonic::Code::Unknown) => {
            NodeOutcome::Unreachable(clip(status.message()))
        }
        (None, tonic::Code::DeadlineExceeded | tonic::Code::Cancelled) => NodeOutcome::TimedOut,
        (None, code) => NodeOutcome::Refused {
            reason: format!("{code:?}").to_uppercase(),
            message: clip(status.message()),
        },
    }
}

/// First wait before a connection is tried again; it doubles up to [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between two connection attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(800);

/// Whether a call failed because no connection could be made (the transport's `Unavailable`,
/// not a node's refusal, which carries its reason): nothing reached the node, so sending the
/// same signed envelope again cannot be a second query.
pub(crate) fn not_connected(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.metadata().get("vrs-reason").is_none()
}

/// Node messages are shown to people; keep them short.
fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn bad(why: &str) -> NodeOutcome {
    NodeOutcome::Refused {
        reason: "BAD_RESPONSE".into(),
        message: why.into(),
    }
}

fn mode_of(code: i32) -> Option<ProtectionMode> {
    match pb::ProtectionMode::try_from(code) {
        Ok(pb::ProtectionMode::Zcdp) => Some(ProtectionMode::Zcdp),
        Ok(pb::ProtectionMode::RulesV1) => Some(ProtectionMode::RulesV1),
        _ => None,
    }
}

fn budget_of(b: pb::QuarterBudget) -> QuarterBudget {
    QuarterBudget {
        quarter: b.quarter,
        rho_spent_micro: b.rho_spent_micro,
        rho_left_micro: b.rho_left_micro,
        caller_rho_left_micro: b.caller_rho_left_micro,
    }
}

/// A release's privacy accounting; refused unless it says zCDP and its σ is a usable number.
pub(crate) fn privacy_of(p: pb::ReleasePrivacy) -> Result<ReleasePrivacy, &'static str> {
    if mode_of(p.mode) != Some(ProtectionMode::Zcdp) {
        return Err("privacy accounting of an unknown protection mode");
    }
    if !p.sigma.is_finite() || p.sigma < 0.0 || !p.threshold.is_finite() {
        return Err("noise scale is not a finite non-negative number");
    }
    Ok(ReleasePrivacy {
        release_id: p.release_id,
        replayed: p.replayed,
        rho_micro: p.rho_micro,
        l2_sensitivity_squared: p.l2_sensitivity_squared,
        privacy_unit: p.privacy_unit,
        sigma: p.sigma,
        threshold: p.threshold,
        quarters: p.quarters.into_iter().map(budget_of).collect(),
    })
}

fn suppression_of(code: i32) -> Option<SuppressionReason> {
    Some(match pb::SuppressionReason::try_from(code).ok()? {
        pb::SuppressionReason::BelowThreshold => SuppressionReason::BelowThreshold,
        pb::SuppressionReason::TooFewContributors => SuppressionReason::TooFewContributors,
        pb::SuppressionReason::Dominance => SuppressionReason::Dominance,
        pb::SuppressionReason::Complementary => SuppressionReason::Complementary,
        pb::SuppressionReason::NoisyBelowThreshold => SuppressionReason::NoisyBelowThreshold,
        pb::SuppressionReason::Unspecified => return None,
    })
}

/// A node's response to `Aggregate`, checked and converted.
struct Checked {
    outcome: NodeOutcome,
    receipt: Option<AuditReceipt>,
    /// The answer's digest, checked against the cells received (empty unless answered): what
    /// the receipt book keeps, so that it is not computed again.
    answer_digest: String,
}

/// Checks and converts a node's response into an [`Answer`]. A response that contradicts itself
/// is treated as a refusal (`BAD_RESPONSE`), never merged: another country or query id than
/// asked, unknown dimensions, keys of the wrong length or listed twice, cells with no outcome,
/// noisy cells without privacy accounting or with a σ other than the answer's, and an
/// `answer_digest` that is not the SHA-256 of what was received ([`Answer::digest`], the
/// function the node records in its audit log).
fn outcome_of_response(country: Country, query_id: &str, mut r: pb::AggregateResponse) -> Checked {
    let refused = |why| Checked {
        outcome: bad(why),
        receipt: None,
        answer_digest: String::new(),
    };
    let receipt = match r.receipt.take().map(|x| receipt_of(country, x)).transpose() {
        Ok(x) => x,
        Err(why) => return refused(why),
    };
    let (outcome, answer_digest) = match answer_of_response(country, query_id, r) {
        Ok(answered) => answered,
        Err(why) => (bad(why), String::new()),
    };
    if matches!(outcome, NodeOutcome::Answered(_)) && receipt.is_none() {
        // Every answer is logged before it is sent; a node that cannot show where is not
        // believed (invariant 4, checkable from outside).
        return refused("answer carries no audit receipt");
    }
    Checked {
        outcome,
        receipt,
        answer_digest,
    }
}

/// A receipt in domain form, its shape checked (its signature is checked against the node's
/// key by [`crate::receipts::verify`]).
pub(crate) fn receipt_of(
    country: Country,
    r: pb::AuditReceipt,
) -> Result<AuditReceipt, &'static str> {
    let head_ok = r.head.len() == 64 && r.head.bytes().all(|b| b.is_ascii_hexdigit());
    if !head_ok || r.signature.len() != 64 {
        return Err("audit receipt is malformed");
    }
    Ok(AuditReceipt {
        country: country.to_string(),
        entries: r.entries,
        head: r.head.to_ascii_lowercase(),
        signed_at_ms: r.signed_at_ms,
        signature: hex::encode(r.signature),
    })
}

/// The answer (or pending approval) with its checked digest; a bad response is `Err` with
/// the reason it is refused.
fn answer_of_response(
    country: Country,
    query_id: &str,
    r: pb::AggregateResponse,
) -> Result<(NodeOutcome, String), &'static str> {
    if r.country != country.as_str() {
        return Err("response names another country");
    }
    if r.query_id != query_id {
        return Err("response echoes another query id");
    }
    if r.status == pb::AnswerStatus::PendingApproval as i32 {
        return Ok((NodeOutcome::PendingApproval, String::new()));
    }
    if r.status != pb::AnswerStatus::Answered as i32 {
        return Err("response has an unknown status");
    }
    let dims: Result<Vec<Dimension>, _> = r.dimensions.iter().map(|d| d.parse()).collect();
    let Ok(dimensions) = dims else {
        return Err("response names an unknown dimension");
    };
    let privacy = r.privacy.map(privacy_of).transpose()?;
    // Every cell is checked in order before any is taken apart, so that the first fault found
    // is the one reported.
    let mut seen = SeenKeys::new(&r.cells);
    let mut values = Vec::with_capacity(r.cells.len());
    for (i, c) in r.cells.iter().enumerate() {
        if c.key.len() != dimensions.len() {
            return Err("cell key length differs from the dimensions");
        }
        if !seen.is_new(i) {
            return Err("a cell key is listed twice");
        }
        let value = match c.outcome {
            Some(pb::cell::Outcome::Value(v)) => CellValue::Released(v),
            Some(pb::cell::Outcome::Noisy(v)) => CellValue::Noisy(v),
            Some(pb::cell::Outcome::Suppressed(code)) => match suppression_of(code) {
                Some(reason) => CellValue::Suppressed(reason),
                None => return Err("cell has an unknown suppression reason"),
            },
            None => return Err("cell has no outcome"),
        };
        // σ is the answer's for every noisy cell and 0 for every other one.
        let expected_sigma = match (&value, &privacy) {
            (CellValue::Noisy(_), Some(p)) => p.sigma,
            (CellValue::Noisy(_), None) => {
                return Err("noisy cell without privacy accounting");
            }
            (_, _) => 0.0,
        };
        if c.sigma != expected_sigma {
            return Err("cell noise scale differs from the answer's");
        }
        values.push(value);
    }
    drop(seen);
    let cells = r
        .cells
        .into_iter()
        .zip(values)
        .map(|(c, value)| Cell { key: c.key, value })
        .collect();
    let answer = Answer {
        dimensions,
        cells,
        privacy,
    };
    if answer.digest() != r.answer_digest {
        return Err("answer digest does not match the cells received");
    }
    Ok((NodeOutcome::Answered(answer), r.answer_digest))
}

/// Which cell keys of a response were seen before, without copying any. Nodes list their cells
/// sorted by key, so a key greater than the one before it is new; at the first key out of that
/// order, the keys before it go into a hash set, and every later key is looked up there.
struct SeenKeys<'a> {
    cells: &'a [pb::Cell],
    set: Option<HashSet<&'a [String]>>,
}

impl<'a> SeenKeys<'a> {
    fn new(cells: &'a [pb::Cell]) -> SeenKeys<'a> {
        SeenKeys { cells, set: None }
    }

    /// Whether the key of cell `i` differs from the keys of cells `0..i` (called for every `i`
    /// in order).
    fn is_new(&mut self, i: usize) -> bool {
        let key = self.cells[i].key.as_slice();
        if let Some(set) = &mut self.set {
            return set.insert(key);
        }
        // Cells 0..i are in strictly increasing order: a key above the last is above them all.
        match i.checked_sub(1) {
            None => return true,
            Some(last) if self.cells[last].key.as_slice() < key => return true,
            Some(_) => {}
        }
        let mut set: HashSet<&[String]> =
            self.cells[..i].iter().map(|c| c.key.as_slice()).collect();
        let new = set.insert(key);
        self.set = Some(set);
        new
    }
}

/// Checks and converts a node's `Plan` answer.
fn plan_of_response(
    country: Country,
    query_id: &str,
    r: pb::PlanResponse,
) -> Result<Plan, &'static str> {
    if r.country != country.as_str() {
        return Err("response names another country");
    }
    if r.query_id != query_id {
        return Err("response echoes another query id");
    }
    if r.would_answer != r.refusal.is_empty() {
        return Err("plan both answers and refuses");
    }
    Ok(Plan {
        would_answer: r.would_answer,
        refusal: (!r.refusal.is_empty()).then(|| clip(&r.refusal)),
        privacy: r.privacy.map(privacy_of).transpose()?,
        cells: r.cells,
    })
}

/// Checks and converts a node's `Describe` answer.
fn description_of_response(
    country: Country,
    d: pb::DescribeResponse,
) -> Result<NodeDescription, &'static str> {
    if d.country != country.as_str() {
        return Err("response names another country");
    }
    if d.audit_head.is_none() || d.audit_key.is_empty() {
        return Err("description carries no signed audit head");
    }
    let p = d.policy.unwrap_or_default();
    let Some(mode) = mode_of(p.mode) else {
        return Err("description names no protection mode");
    };
    let privacy = match (mode, p.privacy) {
        (ProtectionMode::Zcdp, Some(z)) => Some(PrivacyParameters {
            rho_per_quarter_micro: z.rho_per_quarter_micro,
            caller_rho_per_quarter_micro: z.caller_rho_per_quarter_micro,
            default_rho_micro: z.default_rho_micro,
            min_rho_micro: z.min_rho_micro,
            max_rho_micro: z.max_rho_micro,
            max_cells: z.max_cells,
            threshold_sigmas: z.threshold_sigmas,
            empty_cell_pass_rate: z.empty_cell_pass_rate,
            bounds: z
                .bounds
                .into_iter()
                .map(|b| (b.table, b.max_per_incident))
                .collect(),
        }),
        (ProtectionMode::Zcdp, None) => {
            return Err("a zCDP description without its privacy parameters");
        }
        (ProtectionMode::RulesV1, _) => None,
    };
    Ok(NodeDescription {
        schema_version: d.schema_version,
        software_version: clip(&d.software_version),
        units: d.units,
        dimensions: d
            .dimensions
            .into_iter()
            .map(|i| (i.name, i.values))
            .collect(),
        first_period: d.first_period,
        last_period: d.last_period,
        mode,
        policy: PolicySummary {
            min_count: p.min_count,
            min_contributors: p.min_contributors,
            dominance_p: p.dominance_p,
            perturbation: p.perturbation,
            perturbation_max_deviation: p.perturbation_max_deviation,
            rounding_base: p.rounding_base,
            max_dimensions: p.max_dimensions,
        },
        privacy,
        budget: d.budget.into_iter().map(budget_of).collect(),
        audit_key: clip(&d.audit_key),
        audit_head: d.audit_head.map(|h| receipt_of(country, h)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn cells(keys: &[Vec<String>]) -> Vec<pb::Cell> {
        keys.iter()
            .map(|key| pb::Cell {
                key: key.clone(),
                ..Default::default()
            })
            .collect()
    }

    proptest! {
        /// Sorted, shuffled, with repeats: the same verdicts as a set of every key seen.
        #[test]
        fn seen_keys_agrees_with_a_set_of_copies(
            mut keys in prop::collection::vec(prop::collection::vec("[a-c*]{0,2}", 0..3), 0..40),
            sort in any::<bool>(),
        ) {
            if sort {
                keys.sort();
            }
            let cells = cells(&keys);
            let mut seen = SeenKeys::new(&cells);
            let mut copies = BTreeSet::new();
            for (i, key) in keys.iter().enumerate() {
                prop_assert_eq!(seen.is_new(i), copies.insert(key.clone()), "key {}", i);
            }
        }
    }
}
