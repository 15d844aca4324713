//! Regional mode, the leader's side (DESIGN §8b, docs/PROTOCOL.md "Regional secure
//! aggregation"): complete regional totals that no party — not even this coordinator — sees a
//! state's figures of.
//!
//! 1. [`Leader::collect`] signs one envelope per node with a `regional` block (helper identity,
//!    `min_nodes`, the sorted node list, the σ each aggregator adds, the per-cell bound) and
//!    sends them concurrently; each node that agrees returns the leader's part of its Prio3
//!    report. A node that refuses, fails or is late is simply not in the batch.
//! 2. [`Leader::finish`] draws the batch's verification key, starts verifying each report,
//!    and sends the batch to the helper, which fetches its own shares from the nodes, verifies
//!    with the leader's verifier shares, refuses a batch below `min_nodes`, and returns its
//!    verifier shares and its noisy aggregate share. The leader finishes verification of the
//!    reports the helper accepted (they must verify for it too), checks `min_nodes` itself,
//!    aggregates, adds its own noise and unshards.
//!
//! The result lists noisy regional totals with σ = √(σ_leader² + σ_helper²) and the
//! contributing nodes; there is no per-node figure of any kind in it.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::transport::Channel;
use vrs_core::codes::Country;
use vrs_core::query::Query;
use vrs_core::regional::{self as crypto, LEADER, SIGMA_SCALE, Vdaf};
use vrs_core::table::Table;
use vrs_core::tls::{self, TlsError};
use vrs_proto::pb;
use vrs_proto::pb::helper_client::HelperClient;

use crate::fanout::{Federation, NodeOutcome, outcome_of_status, receipt_of};
use crate::receipts::{Kept, Kind};
use crate::registry::Registry;

/// How a regional query is run.
#[derive(Debug, Clone)]
pub struct RegionalParams {
    /// The helper's certificate identity.
    pub helper_identity: String,
    /// Where the helper listens (`host:port`).
    pub helper_endpoint: String,
    /// No result over fewer verified nodes.
    pub min_nodes: u32,
    /// Per-cell bound of each node's vector.
    pub max_cell: u64,
    /// σ each aggregator adds, millionths; `None`: the largest σ the nodes' own `Plan` gives
    /// for the query's ρ (so that every node's requirement is met).
    pub sigma_micro: Option<u64>,
    /// Test-only build: the leader adds no noise (to check exactness).
    #[cfg(feature = "test-no-noise")]
    test_no_noise: bool,
}

impl RegionalParams {
    /// Parameters with σ derived from the nodes' plans.
    pub fn new(
        helper_identity: String,
        helper_endpoint: String,
        min_nodes: u32,
        max_cell: u64,
    ) -> RegionalParams {
        RegionalParams {
            helper_identity,
            helper_endpoint,
            min_nodes,
            max_cell,
            sigma_micro: None,
            #[cfg(feature = "test-no-noise")]
            test_no_noise: false,
        }
    }

    /// Test-only build: the leader adds no noise.
    #[cfg(feature = "test-no-noise")]
    pub fn without_noise(mut self) -> RegionalParams {
        self.test_no_noise = true;
        self
    }
}

/// Why a regional query produced no result (each a stable reason).
#[derive(Debug, thiserror::Error)]
pub enum RegionalError {
    /// Fewer reports than `min_nodes` verified (or reached the batch).
    #[error("BATCH_TOO_SMALL: {have} nodes in the batch, at least {need} needed")]
    BatchTooSmall {
        /// Reports that verified.
        have: usize,
        /// `min_nodes`.
        need: u32,
    },
    /// The helper refused the batch.
    #[error("HELPER_REFUSED: {reason}: {message}")]
    HelperRefused {
        /// The helper's stable reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// The helper's answer contradicts the batch or the leader's own verification.
    #[error("BAD_HELPER_RESPONSE: {0}")]
    BadHelper(&'static str),
    /// No σ could be derived (no node would answer the query).
    #[error("NO_NODE_WOULD_ANSWER: no node's Plan would answer this query")]
    NoSigma,
    /// TLS material for the helper.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The VDAF refused an operation.
    #[error(transparent)]
    Crypto(#[from] crypto::RegionalError),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

impl RegionalError {
    /// The stable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            RegionalError::BatchTooSmall { .. } => "BATCH_TOO_SMALL",
            RegionalError::HelperRefused { .. } => "HELPER_REFUSED",
            RegionalError::BadHelper(_) => "BAD_HELPER_RESPONSE",
            RegionalError::NoSigma => "NO_NODE_WOULD_ANSWER",
            RegionalError::Tls(_) => "TLS",
            RegionalError::Crypto(_) => "VDAF",
            RegionalError::Random => "RANDOM",
        }
    }
}

/// A node that is not in the result, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// The node.
    pub country: Country,
    /// Who dropped it: `node` (refused, unreachable, late), `leader` or `helper`.
    pub by: &'static str,
    /// Stable reason.
    pub reason: String,
}

/// One node's report as the leader holds it (its share of the vector, never a value).
#[derive(Debug, Clone)]
struct NodeReport {
    country: Country,
    request: pb::AggregateRequest,
    report: pb::RegionalReport,
    dimensions: Vec<String>,
    keys: Vec<Vec<String>>,
}

/// What the first phase gathered.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The query id.
    pub query_id: String,
    /// The signed regional parameters.
    pub mode: pb::RegionalMode,
    reports: Vec<NodeReport>,
    /// Nodes not in the batch so far.
    pub dropped: Vec<Dropped>,
    /// Bytes each answering node sent the leader (its response), by country.
    pub bytes_to_leader: BTreeMap<Country, usize>,
}

impl Collected {
    /// Countries whose reports reached the leader.
    pub fn reporting(&self) -> Vec<Country> {
        self.reports.iter().map(|r| r.country).collect()
    }
}

/// One regional cell: a noisy total with its standard deviation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionalCell {
    /// One value per dimension.
    pub key: Vec<String>,
    /// The noisy regional total (may be small or negative).
    pub noisy: i64,
    /// σ of its noise: √(σ_leader² + σ_helper²).
    pub sigma: f64,
}

/// A regional-mode result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionalResult {
    /// The query id.
    pub query_id: String,
    /// Dimension names.
    pub dimensions: Vec<String>,
    /// Every cell of the universe.
    pub cells: Vec<RegionalCell>,
    /// Nodes whose reports are in the totals.
    pub contributing: Vec<Country>,
    /// Nodes that are not, with why.
    pub dropped: Vec<Dropped>,
    /// The query's `min_nodes`.
    pub min_nodes: u32,
    /// σ the leader added, and the helper said it added.
    pub sigma_leader: f64,
    /// See `sigma_leader`.
    pub sigma_helper: f64,
    /// σ of every cell.
    pub sigma: f64,
    /// The per-cell bound.
    pub max_cell: u64,
}

/// The leader: the coordinator's federation plus a connection to the helper.
#[derive(Debug)]
pub struct Leader {
    fed: Federation,
    helper: HelperClient<Channel>,
    params: RegionalParams,
}

/// Largest helper response accepted.
const MAX_HELPER_RESPONSE: usize = 64 * 1024 * 1024;

impl Leader {
    /// Connects (lazily) to the helper with the coordinator's TLS identity.
    pub fn connect(
        registry: &Registry,
        fed: Federation,
        params: RegionalParams,
    ) -> Result<Leader, RegionalError> {
        let config = tls::client_config(&registry.tls)?;
        let channel = tls::connect_lazy(
            &params.helper_endpoint,
            &params.helper_identity,
            config,
            registry.connect_timeout(),
        )?;
        Ok(Leader {
            fed,
            helper: HelperClient::new(channel).max_decoding_message_size(MAX_HELPER_RESPONSE),
            params,
        })
    }

    /// The federation.
    pub fn federation(&self) -> &Federation {
        &self.fed
    }

    /// Phase 1: asks every node for its report.
    pub async fn collect(&self, query: &Query) -> Result<Collected, RegionalError> {
        let query_id = self.fed.new_query_id().map_err(|_| RegionalError::Random)?;
        let sigma_micro = match self.params.sigma_micro {
            Some(s) => s,
            None => self.sigma_from_plans(query, &query_id).await?,
        };
        let mut nodes: Vec<String> = self.fed.countries().iter().map(|c| c.to_string()).collect();
        nodes.sort();
        let mode = pb::RegionalMode {
            helper: self.params.helper_identity.clone(),
            min_nodes: self.params.min_nodes,
            nodes,
            sigma_micro,
            max_cell: self.params.max_cell,
        };
        let requests = self.fed.sign_all(query, &query_id, Some(&mode));
        let results = self
            .fed
            .send_signed(requests.clone(), |mut client, req| async move {
                client.aggregate(req).await
            })
            .await;
        let mut reports = Vec::new();
        let mut dropped = Vec::new();
        let mut bytes_to_leader = BTreeMap::new();
        let mut kept = Vec::new();
        let now = self.fed.clock.now_ms();
        for ((country, outcome, _), request) in results.into_iter().zip(requests) {
            let resp = match outcome {
                Ok(r) => r,
                Err(failed) => {
                    dropped.push(Dropped {
                        country,
                        by: "node",
                        reason: reason_of(&failed),
                    });
                    continue;
                }
            };
            bytes_to_leader.insert(country, prost::Message::encoded_len(&resp));
            match report_of(country, &query_id, resp) {
                Ok((report, receipt)) => {
                    if let Some(receipt) = receipt {
                        kept.push(Kept {
                            kind: Kind::Answer,
                            query_id: query_id.clone(),
                            answer_digest: report.digest.clone(),
                            audit_key: String::new(),
                            receipt,
                            kept_at_ms: now,
                        });
                    }
                    reports.push(NodeReport {
                        country,
                        request,
                        report: report.report,
                        dimensions: report.dimensions,
                        keys: report.keys,
                    });
                }
                Err(why) => dropped.push(Dropped {
                    country,
                    by: "leader",
                    reason: why.to_string(),
                }),
            }
        }
        self.fed.keep(kept).await;
        // Every report in a batch has the same universe; the most common one is used.
        let mut universes: BTreeMap<(Vec<String>, Vec<Vec<String>>), usize> = BTreeMap::new();
        for r in &reports {
            *universes
                .entry((r.dimensions.clone(), r.keys.clone()))
                .or_insert(0) += 1;
        }
        if let Some((best, _)) = universes.into_iter().max_by_key(|(_, n)| *n) {
            let (same, other): (Vec<_>, Vec<_>) = reports
                .into_iter()
                .partition(|r| r.dimensions == best.0 && r.keys == best.1);
            dropped.extend(other.into_iter().map(|r| Dropped {
                country: r.country,
                by: "leader",
                reason: "UNIVERSE_DIFFERS".into(),
            }));
            reports = same;
        }
        tracing::info!(
            %query_id,
            reports = reports.len(),
            dropped = dropped.len(),
            "regional reports collected"
        );
        Ok(Collected {
            query_id,
            mode,
            reports,
            dropped,
            bytes_to_leader,
        })
    }

    /// The largest σ the nodes' `Plan` gives for `query` (millionths, rounded up).
    async fn sigma_from_plans(&self, query: &Query, query_id: &str) -> Result<u64, RegionalError> {
        let plans = self.fed.plan_with_id(query, query_id).await;
        plans
            .iter()
            .filter_map(|p| p.outcome.as_ref().ok())
            .filter(|p| p.would_answer)
            .filter_map(|p| p.privacy.as_ref().map(|x| x.sigma))
            .map(|s| (s * SIGMA_SCALE as f64).ceil() as u64 + 1)
            .max()
            .ok_or(RegionalError::NoSigma)
    }

    /// Phase 2: verification and aggregation with the helper, then the noisy totals.
    pub async fn finish(&self, collected: Collected) -> Result<RegionalResult, RegionalError> {
        let Collected {
            query_id,
            mode,
            reports,
            mut dropped,
            ..
        } = collected;
        let need = mode.min_nodes;
        let Some(first) = reports.first() else {
            return Err(RegionalError::BatchTooSmall { have: 0, need });
        };
        let (dimensions, keys) = (first.dimensions.clone(), first.keys.clone());
        let vdaf = Vdaf::new(keys.len(), mode.max_cell)?;
        let verify_key: [u8; crypto::VERIFY_KEY_LEN] = crypto::random_bytes()?;
        let mut batch = Vec::new();
        let mut states = Vec::new();
        for r in reports {
            match vdaf.verify_start(
                &verify_key,
                &query_id,
                LEADER,
                &r.report.nonce,
                &r.report.public_share,
                &r.report.leader_share,
            ) {
                Ok((state, share)) => {
                    states.push((r.country, state, share.clone()));
                    batch.push(pb::BatchReport {
                        country: r.country.to_string(),
                        request: Some(r.request),
                        nonce: r.report.nonce,
                        public_share: r.report.public_share,
                        leader_verifier_share: share,
                    });
                }
                Err(_) => dropped.push(Dropped {
                    country: r.country,
                    by: "leader",
                    reason: "MALFORMED_REPORT".into(),
                }),
            }
        }
        if batch.len() < need as usize {
            return Err(RegionalError::BatchTooSmall {
                have: batch.len(),
                need,
            });
        }
        let mut req = tonic::Request::new(pb::HelperBatchRequest {
            query_id: query_id.clone(),
            verify_key: verify_key.to_vec(),
            reports: batch,
            cells: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        });
        req.set_timeout(self.fed.deadline.saturating_mul(2));
        let mut helper = self.helper.clone();
        let resp = tokio::time::timeout(
            self.fed.deadline.saturating_mul(2) + Duration::from_secs(1),
            helper.aggregate_batch(req),
        )
        .await
        .map_err(|_| RegionalError::HelperRefused {
            reason: "TIMED_OUT".into(),
            message: "no answer from the helper before the deadline".into(),
        })?
        .map_err(|status| {
            let outcome = outcome_of_status(&status);
            let (reason, message) = match outcome {
                NodeOutcome::Refused { reason, message } => (reason, message),
                other => (other.label().to_uppercase(), other.detail()),
            };
            RegionalError::HelperRefused { reason, message }
        })?
        .into_inner();
        if resp.query_id != query_id || resp.verdicts.len() != states.len() {
            return Err(RegionalError::BadHelper("verdicts do not match the batch"));
        }
        let mut outputs = Vec::new();
        let mut contributing = Vec::new();
        for ((country, state, leader_share), verdict) in states.into_iter().zip(resp.verdicts) {
            if verdict.country != country.as_str() {
                return Err(RegionalError::BadHelper("verdicts out of order"));
            }
            if !verdict.accepted {
                dropped.push(Dropped {
                    country,
                    by: "helper",
                    reason: verdict.reason,
                });
                continue;
            }
            // The helper accepted it: it must verify for the leader too, or the two disagree
            // and no result is released.
            let out = vdaf
                .verify_finish(
                    &query_id,
                    state,
                    &leader_share,
                    &verdict.helper_verifier_share,
                )
                .map_err(|_| RegionalError::BadHelper("a report the helper accepted fails"))?;
            outputs.push(out);
            contributing.push(country);
        }
        if outputs.len() != resp.accepted as usize {
            return Err(RegionalError::BadHelper(
                "accepted count differs from verdicts",
            ));
        }
        if outputs.len() < need as usize {
            return Err(RegionalError::BatchTooSmall {
                have: outputs.len(),
                need,
            });
        }
        let n = outputs.len();
        let mut mine = vdaf.aggregate(outputs)?;
        let sigma_leader_micro = if self.noise_off() {
            0
        } else {
            mode.sigma_micro
        };
        if sigma_leader_micro > 0 {
            crypto::add_noise(&mut mine, sigma_leader_micro)?;
        }
        if resp.sigma_micro != mode.sigma_micro && !self.noise_off() {
            return Err(RegionalError::BadHelper(
                "the helper did not add the promised noise",
            ));
        }
        let theirs = vdaf.decode_share(&resp.aggregate_share)?;
        let sums = vdaf.unshard([mine, theirs], n)?;
        let s_l = sigma_leader_micro as f64 / SIGMA_SCALE as f64;
        let s_h = resp.sigma_micro as f64 / SIGMA_SCALE as f64;
        let sigma = (s_l * s_l + s_h * s_h).sqrt();
        tracing::info!(%query_id, nodes = n, cells = keys.len(), "regional result");
        Ok(RegionalResult {
            query_id,
            dimensions,
            cells: keys
                .into_iter()
                .zip(sums)
                .map(|(key, v)| RegionalCell {
                    key,
                    noisy: i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }),
                    sigma,
                })
                .collect(),
            contributing,
            dropped,
            min_nodes: need,
            sigma_leader: s_l,
            sigma_helper: s_h,
            sigma,
            max_cell: mode.max_cell,
        })
    }

    /// Both phases.
    pub async fn ask(&self, query: &Query) -> Result<RegionalResult, RegionalError> {
        let collected = self.collect(query).await?;
        self.finish(collected).await
    }

    #[cfg(feature = "test-no-noise")]
    fn noise_off(&self) -> bool {
        self.params.test_no_noise
    }

    #[cfg(not(feature = "test-no-noise"))]
    fn noise_off(&self) -> bool {
        false
    }
}

fn reason_of(o: &NodeOutcome) -> String {
    match o {
        NodeOutcome::Refused { reason, .. } => reason.clone(),
        other => other.label().to_uppercase(),
    }
}

/// A node's regional answer, checked.
struct Checked {
    report: pb::RegionalReport,
    dimensions: Vec<String>,
    keys: Vec<Vec<String>>,
    digest: String,
}

/// Checks a node's answer to a regional envelope: its country and query id, a report with a
/// 16-byte nonce and as many keys as cells, and no value of any kind in its cells.
fn report_of(
    country: Country,
    query_id: &str,
    r: pb::AggregateResponse,
) -> Result<(Checked, Option<vrs_core::audit_chain::AuditReceipt>), &'static str> {
    if r.country != country.as_str() || r.query_id != query_id {
        return Err("BAD_RESPONSE");
    }
    if r.status != pb::AnswerStatus::Answered as i32 {
        return Err("PENDING_APPROVAL");
    }
    let report = r.regional.ok_or("NOT_REGIONAL")?;
    if report.nonce.len() != crypto::NONCE_LEN
        || report.cells as usize != r.cells.len()
        || r.cells.iter().any(|c| c.outcome.is_some())
    {
        return Err("BAD_RESPONSE");
    }
    let receipt = match r.receipt {
        Some(x) => Some(receipt_of(country, x).map_err(|_| "BAD_RESPONSE")?),
        None => return Err("BAD_RESPONSE"),
    };
    Ok((
        Checked {
            report,
            dimensions: r.dimensions,
            keys: r.cells.into_iter().map(|c| c.key).collect(),
            digest: r.answer_digest,
        },
        receipt,
    ))
}

/// The size of a node's answer to the helper's fetch (`HelperShareResponse`) for a universe of
/// `cells` cells bounded by `max_cell`: what each node sends the helper (benchmarks).
pub fn helper_share_bytes(cells: usize, max_cell: u64) -> Result<usize, RegionalError> {
    let report =
        Vdaf::new(cells, max_cell)?.shard("0123456789abcdef0123456789abcdef", &vec![0; cells])?;
    Ok(prost::Message::encoded_len(&pb::HelperShareResponse {
        country: "USA".into(),
        query_id: "0".repeat(32),
        nonce: report.nonce.to_vec(),
        public_share: report.public_share,
        helper_share: report.helper_share,
    }))
}

/// Aligned table (or CSV) of a regional result: key, noisy total, ± 1.96 σ. No per-node column
/// exists in this mode.
pub fn table(r: &RegionalResult) -> Table {
    let mut header: Vec<String> = r.dimensions.clone();
    header.extend(["regional_total".into(), "sigma".into(), "ci95".into()]);
    let n = r.dimensions.len();
    let mut t = Table::new(header).align_right(n).align_right(n + 1);
    for c in &r.cells {
        let mut row = c.key.clone();
        row.push(c.noisy.to_string());
        row.push(format!("{:.2}", c.sigma));
        row.push(format!("±{:.1}", 1.96 * c.sigma));
        t.push(row);
    }
    t
}

/// The summary lines printed under a regional table.
pub fn summary(r: &RegionalResult) -> String {
    let names = |v: &[Country]| {
        v.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "regional mode (secure aggregation): {} nodes in the totals (min_nodes {}): {}\n\
         noise: sigma {:.2} per cell (leader {:.2}, helper {:.2}); each cell bounded to {} per node\n",
        r.contributing.len(),
        r.min_nodes,
        names(&r.contributing),
        r.sigma,
        r.sigma_leader,
        r.sigma_helper,
        r.max_cell,
    );
    for d in &r.dropped {
        s.push_str(&format!(
            "not in the totals: {} ({} {})\n",
            d.country, d.by, d.reason
        ));
    }
    s
}

/// Text output: the table and the summary.
pub fn text(r: &RegionalResult) -> String {
    format!("{}\n{}", table(r).to_aligned(), summary(r))
}

/// CSV output (one row per cell).
pub fn csv(r: &RegionalResult) -> String {
    table(r).to_csv()
}

/// JSON output (schema `vrs.regional-mode.v1`, docs/OUTPUTS.md).
pub fn json(r: &RegionalResult) -> serde_json::Value {
    serde_json::json!({
        "schema": "vrs.regional-mode.v1",
        "mode": "regional",
        "query_id": r.query_id,
        "dimensions": r.dimensions,
        "cells": r.cells,
        "contributing_nodes": r.contributing,
        "dropped_nodes": r.dropped,
        "min_nodes": r.min_nodes,
        "sigma": r.sigma,
        "sigma_leader": r.sigma_leader,
        "sigma_helper": r.sigma_helper,
        "max_cell": r.max_cell,
    })
}
