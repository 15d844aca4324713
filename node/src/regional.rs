//! Regional mode on the node (DESIGN §8b, docs/PROTOCOL.md "Regional secure aggregation").
//!
//! A signed envelope with a `regional` block asks the node not for noisy cells but for a Prio3
//! report of its exact, bounded cell vector over the query's data-independent universe. The
//! service runs every check it runs for a per-node release (signature, audience, query limits,
//! ρ, universe, approval, daily budget, the ledger's reservation) and then, here:
//!
//! 1. [`RegionalPolicy::check`]: the (leader, helper) pair is opted in (`[[regional]]` in
//!    node.toml), the query's `min_nodes` is at least the node's, the node is in the query's
//!    node list, and the σ each aggregator promises is at least the node's own zCDP σ for the
//!    ρ it charges — so either honest aggregator's noise alone gives this node's records the
//!    same ρ-zCDP guarantee as a per-node release;
//! 2. [`exact_vector`]: the exact counts (contribution bounds applied, as in v2) over every
//!    cell of the universe, in key order, each clamped to `[0, max_cell]`;
//! 3. [`vrs_core::regional::Vdaf::shard`]: the leader's share goes back in the answer; the
//!    helper's share is [`Held`] in memory (never on disk), bounded in number and age, until
//!    the helper named in the query fetches it once with the same signed request.
//!
//! The ledger is charged exactly as for a per-node release (reserved with the query id,
//! committed with the audit entry), once per query id; nothing is stored as a release.
//!
//! Under `[approval] mode = "manual"` a regional query is held like any other (the node is not
//! in that batch). Once approved, the same query id is refused `REGIONAL_NOT_RESUMABLE`,
//! before anything is read, sharded or charged: the batch of that id has already been
//! aggregated or refused without this node, and the helper spends a query id once, so a late
//! report could only cost ρ for nothing. No helper share is ever made for it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use vrs_core::regional::{Report, SIGMA_SCALE, Vdaf};
use vrs_proto::pb;

use crate::disclosure::PrivacyPolicy;
use crate::query::{PlanError, Restriction, aggregate_restricted};
use crate::release::ReleasePlan;
use crate::store::Store;

/// Least `min_nodes` a node may configure (a "regional" total of one node is its own figure).
pub const MIN_NODES_FLOOR: u32 = 2;
/// Most helper shares a node holds at once.
pub const MAX_HELD: usize = 256;
/// How long a helper share is held before it is dropped unfetched (ms).
pub const HELD_FOR_MS: i64 = 10 * 60 * 1000;

/// `[[regional]]` in node.toml: one (leader, helper) pair this node takes part in regional
/// mode with. Without any, regional queries are refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionalSection {
    /// The leader's certificate identity (a `[[callers]]` entry that signs the queries).
    pub leader: String,
    /// The helper's certificate identity (a `[[callers]]` entry too, signing keys optional).
    pub helper: String,
    /// No regional result over fewer nodes: queries asking for less are refused. At least 2.
    #[serde(default = "default_min_nodes")]
    pub min_nodes: u32,
}

fn default_min_nodes() -> u32 {
    3
}

/// Why a regional request is refused (each a stable reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionalRefusal {
    /// This (leader, helper) pair is not opted in.
    #[error("this node takes no part in regional mode with this leader and helper")]
    NotOptedIn,
    /// The query's `min_nodes` is below the node's.
    #[error("min_nodes is below this node's minimum of {0}")]
    MinNodesTooLow(u32),
    /// The node is not in the query's node list, or the list is malformed.
    #[error("the node list is malformed or does not name this node")]
    NodeList,
    /// The aggregators' noise would be below this node's zCDP σ.
    #[error("each aggregator's sigma must be at least {0} (millionths) for the rho charged")]
    NoiseTooSmall(u128),
    /// `max_cell` or the universe is outside what regional mode accepts.
    #[error("max_cell or the number of cells is outside what regional mode accepts")]
    Parameters,
    /// Regional mode needs the zCDP ledger.
    #[error("regional mode needs a zCDP node")]
    NeedsZcdp,
    /// The node holds too many unfetched helper shares.
    #[error("too many regional shares waiting for their helper")]
    TooManyHeld,
    /// No share is held for this query id (never made, fetched already, or expired).
    #[error("no helper share is held for this query")]
    UnknownQuery,
    /// The caller is not the helper the query names.
    #[error("only the helper named in the query may fetch its share")]
    NotHelper,
    /// The fetch presented another envelope than the one answered.
    #[error("the envelope differs from the one this node answered")]
    Mismatch,
    /// A regional query held for the operator's approval was approved and asked again: its
    /// batch was aggregated (or refused) without this node, and the helper never aggregates a
    /// query id twice, so a report now would be charged to the ledger and never be used.
    #[error("a regional query held for approval cannot be answered later; ask a new query")]
    NotResumable,
}

impl RegionalRefusal {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            RegionalRefusal::NotOptedIn => "REGIONAL_NOT_ALLOWED",
            RegionalRefusal::MinNodesTooLow(_) => "MIN_NODES_TOO_LOW",
            RegionalRefusal::NodeList => "BAD_NODE_LIST",
            RegionalRefusal::NoiseTooSmall(_) => "NOISE_TOO_SMALL",
            RegionalRefusal::Parameters => "BAD_REGIONAL_PARAMETERS",
            RegionalRefusal::NeedsZcdp => "REGIONAL_NEEDS_ZCDP",
            RegionalRefusal::TooManyHeld => "BUSY",
            RegionalRefusal::UnknownQuery => "UNKNOWN_QUERY_ID",
            RegionalRefusal::NotHelper => "NOT_HELPER",
            RegionalRefusal::Mismatch => "QUERY_MISMATCH",
            RegionalRefusal::NotResumable => "REGIONAL_NOT_RESUMABLE",
        }
    }

    /// gRPC code.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            RegionalRefusal::NotOptedIn | RegionalRefusal::NotHelper => Code::PermissionDenied,
            RegionalRefusal::TooManyHeld => Code::Unavailable,
            RegionalRefusal::UnknownQuery => Code::NotFound,
            RegionalRefusal::NeedsZcdp | RegionalRefusal::NotResumable => Code::FailedPrecondition,
            _ => Code::InvalidArgument,
        }
    }
}

/// The node's regional policy: its opted-in pairs.
#[derive(Debug, Clone, Default)]
pub struct RegionalPolicy {
    pairs: Vec<RegionalSection>,
}

impl RegionalPolicy {
    /// From node.toml's `[[regional]]` sections (`min_nodes` raised to the floor).
    pub fn new(sections: &[RegionalSection]) -> RegionalPolicy {
        RegionalPolicy {
            pairs: sections
                .iter()
                .map(|s| RegionalSection {
                    min_nodes: s.min_nodes.max(MIN_NODES_FLOOR),
                    ..s.clone()
                })
                .collect(),
        }
    }

    /// Checks a regional query from `leader` against the policy and its release plan.
    pub fn check(
        &self,
        leader: &str,
        country: &str,
        mode: &pb::RegionalMode,
        plan: &ReleasePlan,
    ) -> Result<(), RegionalRefusal> {
        let pair = self
            .pairs
            .iter()
            .find(|p| p.leader == leader && p.helper == mode.helper)
            .ok_or(RegionalRefusal::NotOptedIn)?;
        if mode.min_nodes < pair.min_nodes {
            return Err(RegionalRefusal::MinNodesTooLow(pair.min_nodes));
        }
        let sorted = mode.nodes.windows(2).all(|w| w[0] < w[1]);
        if !sorted || !mode.nodes.iter().any(|n| n == country) {
            return Err(RegionalRefusal::NodeList);
        }
        let needed = plan.sigma.scaled_micro();
        if u128::from(mode.sigma_micro) < needed {
            return Err(RegionalRefusal::NoiseTooSmall(needed));
        }
        Vdaf::new(plan.universe.keys.len(), mode.max_cell)
            .map_err(|_| RegionalRefusal::Parameters)?;
        Ok(())
    }
}

/// The exact, bounded vector of `plan` over its universe (key order), clamped to
/// `[0, max_cell]`. Never leaves the node: it goes straight into [`Vdaf::shard`].
pub fn exact_vector(
    store: &Store,
    plan: &ReleasePlan,
    privacy: &PrivacyPolicy,
    max_cell: u64,
) -> Result<Vec<u128>, PlanError> {
    let restriction = Restriction {
        bounds: Some(*privacy.bounds()),
        months: Some(plan.universe.months),
    };
    let table = aggregate_restricted(store, &plan.query, &restriction)?;
    let exact: foldhash::HashMap<Vec<String>, i64> =
        table.cells.into_iter().map(|c| (c.key, c.value)).collect();
    Ok(plan
        .universe
        .keys
        .iter()
        .map(|k| {
            let v = exact.get(k).copied().unwrap_or(0).max(0) as u64;
            u128::from(v.min(max_cell))
        })
        .collect())
}

/// Shards `vector` for `query_id` under the query's parameters.
pub fn shard(
    query_id: &str,
    vector: &[u128],
    max_cell: u64,
) -> Result<Report, vrs_core::regional::RegionalError> {
    Vdaf::new(vector.len(), max_cell)?.shard(query_id, vector)
}

/// The σ a regional query promises, as a float (for the audit entry).
pub fn sigma_of(mode: &pb::RegionalMode) -> f64 {
    mode.sigma_micro as f64 / SIGMA_SCALE as f64
}

/// One helper share waiting for its helper.
struct HeldShare {
    helper: String,
    envelope: Vec<u8>,
    nonce: Vec<u8>,
    public_share: Vec<u8>,
    helper_share: Vec<u8>,
    until_ms: i64,
}

/// Helper shares waiting to be fetched, by query id: in memory only (a restarted node has
/// none, and is simply not in the batch), at most [`MAX_HELD`], each for [`HELD_FOR_MS`].
#[derive(Default)]
pub struct Held {
    shares: Mutex<HashMap<String, HeldShare>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held(..)")
    }
}

impl Held {
    /// Keeps the helper's part of `report` for `query_id`.
    pub fn keep(
        &self,
        query_id: &str,
        helper: &str,
        envelope: &[u8],
        report: &Report,
        now_ms: i64,
    ) -> Result<(), RegionalRefusal> {
        let mut shares = self
            .shares
            .lock()
            .map_err(|_| RegionalRefusal::TooManyHeld)?;
        shares.retain(|_, s| s.until_ms > now_ms);
        if shares.len() >= MAX_HELD {
            return Err(RegionalRefusal::TooManyHeld);
        }
        shares.insert(
            query_id.to_string(),
            HeldShare {
                helper: helper.to_string(),
                envelope: envelope.to_vec(),
                nonce: report.nonce.to_vec(),
                public_share: report.public_share.clone(),
                helper_share: report.helper_share.clone(),
                until_ms: now_ms.saturating_add(HELD_FOR_MS),
            },
        );
        Ok(())
    }

    /// Gives the share of `query_id` to `caller` once, if it is the query's helper and
    /// presents the same envelope; a refused fetch leaves the share where it was.
    pub fn take(
        &self,
        query_id: &str,
        caller: &str,
        envelope: &[u8],
        now_ms: i64,
    ) -> Result<pb::HelperShareResponse, RegionalRefusal> {
        let mut shares = self
            .shares
            .lock()
            .map_err(|_| RegionalRefusal::UnknownQuery)?;
        shares.retain(|_, s| s.until_ms > now_ms);
        let held = shares.get(query_id).ok_or(RegionalRefusal::UnknownQuery)?;
        if held.helper != caller {
            return Err(RegionalRefusal::NotHelper);
        }
        if held.envelope != envelope {
            return Err(RegionalRefusal::Mismatch);
        }
        let held = shares
            .remove(query_id)
            .ok_or(RegionalRefusal::UnknownQuery)?;
        Ok(pb::HelperShareResponse {
            country: String::new(),
            query_id: query_id.to_string(),
            nonce: held.nonce,
            public_share: held.public_share,
            helper_share: held.helper_share,
        })
    }

    /// Gives back a share kept for a query whose answer could not be committed.
    pub fn drop_share(&self, query_id: &str) {
        if let Ok(mut s) = self.shares.lock() {
            s.remove(query_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        shard("q-0123456789abcdef", &[1, 2, 3], 10).unwrap()
    }

    #[test]
    fn a_share_goes_once_to_the_named_helper_with_the_same_envelope() {
        let held = Held::default();
        let r = report();
        held.keep("q1", "helper.x", b"env", &r, 1_000).unwrap();
        assert_eq!(
            held.take("q1", "coordinator.x", b"env", 1_001).unwrap_err(),
            RegionalRefusal::NotHelper
        );
        assert_eq!(
            held.take("q1", "helper.x", b"other", 1_001).unwrap_err(),
            RegionalRefusal::Mismatch
        );
        assert_eq!(
            held.take("q2", "helper.x", b"env", 1_001).unwrap_err(),
            RegionalRefusal::UnknownQuery
        );
        let got = held.take("q1", "helper.x", b"env", 1_002).unwrap();
        assert_eq!(got.helper_share, r.helper_share);
        assert_eq!(got.nonce, r.nonce.to_vec());
        assert_eq!(
            held.take("q1", "helper.x", b"env", 1_003).unwrap_err(),
            RegionalRefusal::UnknownQuery,
            "fetched once"
        );
    }

    #[test]
    fn shares_expire_and_are_bounded() {
        let held = Held::default();
        let r = report();
        held.keep("old", "h", b"e", &r, 0).unwrap();
        assert_eq!(
            held.take("old", "h", b"e", HELD_FOR_MS + 1).unwrap_err(),
            RegionalRefusal::UnknownQuery
        );
        for i in 0..MAX_HELD {
            held.keep(&format!("q{i}"), "h", b"e", &r, 10).unwrap();
        }
        assert_eq!(
            held.keep("one-more", "h", b"e", &r, 10).unwrap_err(),
            RegionalRefusal::TooManyHeld
        );
        // Once they expire there is room again.
        held.keep("later", "h", b"e", &r, 11 + HELD_FOR_MS).unwrap();
    }

    #[test]
    fn min_nodes_is_raised_to_the_floor() {
        let p = RegionalPolicy::new(&[RegionalSection {
            leader: "l".into(),
            helper: "h".into(),
            min_nodes: 1,
        }]);
        assert_eq!(p.pairs[0].min_nodes, MIN_NODES_FLOOR);
    }
}
