//! Fan-out: one signed query to every node at once, each with its own deadline.
//!
//! [`Federation::connect`] opens one reused connection per node (lazily, so an unreachable node
//! costs only its own deadline). [`Federation::ask`] signs a fresh envelope per node (the audience
//! is that node), sends them concurrently, and returns a [`NodeOutcome`] per node: answered,
//! pending approval, refused with the node's stable reason, unreachable, or timed out. A slow or
//! failing node never holds the others back.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use vrs_core::answer::{Answer, Cell, CellValue, SuppressionReason};
use vrs_core::clock::{Clock, SystemClock};
use vrs_core::codes::Country;
use vrs_core::query::{Dimension, Query};
use vrs_core::signing::{SigningError, SigningKey};
use vrs_core::tls::{self, TlsError};
use vrs_proto::pb;
use vrs_proto::pb::federation_client::FederationClient;

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
}

struct NodeConn {
    country: Country,
    client: FederationClient<Channel>,
}

/// Connections to every node in the registry, and the key that signs queries.
pub struct Federation {
    nodes: Vec<NodeConn>,
    key: Arc<SigningKey>,
    issuer: String,
    deadline: Duration,
    rng: SystemRandom,
    /// Stamps envelopes (`issued_at_ms`).
    clock: Arc<dyn Clock>,
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
        })
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
    pub async fn ask_with_id(&self, query: &Query, query_id: &str) -> Vec<NodeResult> {
        let pb_query = pb::Query::from(query.to_raw());
        let issued_at_ms = self.clock.now_ms();
        let mut set = JoinSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let envelope = pb::QueryEnvelope {
                query_id: query_id.to_string(),
                issued_at_ms,
                audience: node.country.to_string(),
                issuer: self.issuer.clone(),
                query: Some(pb_query.clone()),
            }
            .encode_to_vec();
            let request = pb::AggregateRequest {
                signature: self.key.sign(&envelope),
                envelope,
                key_id: self.key.key_id(),
            };
            let mut client = node.client.clone();
            let deadline = self.deadline;
            let country = node.country;
            set.spawn(async move {
                let started = tokio::time::Instant::now();
                let mut req = tonic::Request::new(request);
                req.set_timeout(deadline);
                let outcome = match tokio::time::timeout(deadline, client.aggregate(req)).await {
                    Err(_) => NodeOutcome::TimedOut,
                    Ok(Err(status)) => outcome_of_status(&status),
                    Ok(Ok(resp)) => outcome_of_response(country, resp.into_inner()),
                };
                (
                    i,
                    NodeResult {
                        country,
                        outcome,
                        elapsed: started.elapsed(),
                    },
                )
            });
        }
        let mut results: Vec<Option<NodeResult>> = vec![None; self.nodes.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                results[i] = Some(r);
            }
        }
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| NodeResult {
                    country: self.nodes[i].country,
                    outcome: NodeOutcome::Unreachable("request task failed".into()),
                    elapsed: Duration::ZERO,
                })
            })
            .collect()
    }

    /// Asks every node to describe itself (country, dimensions, public policy).
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
                        Ok(Ok(resp)) => Ok(NodeDescription::from(resp.into_inner())),
                    };
                (i, country, r)
            });
        }
        let mut out: Vec<(usize, Country, Result<NodeDescription, NodeOutcome>)> = Vec::new();
        while let Some(Ok(r)) = set.join_next().await {
            out.push(r);
        }
        out.sort_by_key(|r| r.0);
        out.into_iter().map(|(_, c, r)| (c, r)).collect()
    }
}

/// What a node says about itself in its `Describe` answer, converted from the wire once, here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDescription {
    /// The node's store schema version.
    pub schema_version: u32,
    /// First period of data held.
    pub first_period: String,
    /// Last period of data held.
    pub last_period: String,
    /// The node's software version.
    pub software_version: String,
    /// Units it counts.
    pub units: Vec<String>,
    /// Dimensions it publishes (names).
    pub dimensions: Vec<String>,
    /// Its public policy.
    pub policy: PolicySummary,
}

/// A node's public disclosure policy, as it describes it.
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
    /// Released values are multiples of this (1: no rounding).
    pub rounding_base: u32,
}

impl From<pb::DescribeResponse> for NodeDescription {
    fn from(d: pb::DescribeResponse) -> NodeDescription {
        let p = d.policy.unwrap_or_default();
        NodeDescription {
            schema_version: d.schema_version,
            first_period: d.first_period,
            last_period: d.last_period,
            software_version: d.software_version,
            units: d.units,
            dimensions: d.dimensions.into_iter().map(|d| d.name).collect(),
            policy: PolicySummary {
                min_count: p.min_count,
                min_contributors: p.min_contributors,
                dominance_p: p.dominance_p,
                perturbation: p.perturbation,
                perturbation_max_deviation: p.perturbation_max_deviation,
                rounding_base: p.rounding_base,
            },
        }
    }
}

/// Maps a gRPC status from a node to an outcome: refusals carry the node's `vrs-reason`;
/// transport failures are "unreachable".
fn outcome_of_status(status: &tonic::Status) -> NodeOutcome {
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

/// Node messages are shown to people; keep them short.
fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Checks and converts a node's response into an [`Answer`]. A response that contradicts itself
/// (wrong country, keys of the wrong length, unknown dimensions, cells with no outcome) is
/// treated as a refusal, never merged.
fn outcome_of_response(country: Country, r: pb::AggregateResponse) -> NodeOutcome {
    let bad = |why: &str| NodeOutcome::Refused {
        reason: "BAD_RESPONSE".into(),
        message: why.into(),
    };
    if r.status == pb::AnswerStatus::PendingApproval as i32 {
        return NodeOutcome::PendingApproval;
    }
    if r.country != country.as_str() {
        return bad("response names another country");
    }
    let dims: Result<Vec<Dimension>, _> = r.dimensions.iter().map(|d| d.parse()).collect();
    let Ok(dimensions) = dims else {
        return bad("response names an unknown dimension");
    };
    let mut cells = Vec::with_capacity(r.cells.len());
    for c in r.cells {
        if c.key.len() != dimensions.len() {
            return bad("cell key length differs from the dimensions");
        }
        let value = match c.outcome {
            Some(pb::cell::Outcome::Value(v)) => CellValue::Released(v),
            Some(pb::cell::Outcome::Noisy(v)) => CellValue::Noisy(v),
            Some(pb::cell::Outcome::Suppressed(code)) => {
                match pb::SuppressionReason::try_from(code) {
                    Ok(pb::SuppressionReason::BelowThreshold) => {
                        CellValue::Suppressed(SuppressionReason::BelowThreshold)
                    }
                    Ok(pb::SuppressionReason::TooFewContributors) => {
                        CellValue::Suppressed(SuppressionReason::TooFewContributors)
                    }
                    Ok(pb::SuppressionReason::Dominance) => {
                        CellValue::Suppressed(SuppressionReason::Dominance)
                    }
                    Ok(pb::SuppressionReason::Complementary) => {
                        CellValue::Suppressed(SuppressionReason::Complementary)
                    }
                    Ok(pb::SuppressionReason::NoisyBelowThreshold) => {
                        CellValue::Suppressed(SuppressionReason::NoisyBelowThreshold)
                    }
                    _ => return bad("cell has an unknown suppression reason"),
                }
            }
            None => return bad("cell has no outcome"),
        };
        cells.push(Cell { key: c.key, value });
    }
    NodeOutcome::Answered(Answer {
        dimensions,
        cells,
        privacy: None,
    })
}
