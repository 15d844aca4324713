//! One zCDP release, from a checked query to the answer that may leave the node (DESIGN §6
//! steps 3–6), without the network, the ledger or the audit log around it: [`plan`] decides
//! everything that does not depend on the records (ρ, universe, quarters charged, sensitivity,
//! σ, release id) and [`compute`] reads the records under the plan's restriction and noises
//! every cell of the universe. The service calls both between its ledger steps; tests and the
//! operator's local preview call them directly.

use vrs_core::answer::{Answer, ReleasePrivacy};
use vrs_core::period::Month;
use vrs_core::query::Query;

use crate::disclosure::PrivacyPolicy;
use crate::disclosure::zcdp::{self, Noise, NoiseError, NoisyCell, Sigma};
use crate::query::{PlanError, Restriction, aggregate_restricted};
use crate::store::Store;
use crate::universe::{self, Universe, UniverseError};

/// Why a release could not be planned or computed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The query asks for a ρ outside the node's per-query range.
    #[error("rho must be between {min} and {max} micro-rho")]
    RhoOutOfRange {
        /// Least, micro-ρ.
        min: u64,
        /// Most, micro-ρ.
        max: u64,
    },
    /// No universe the node will release.
    #[error(transparent)]
    Universe(#[from] UniverseError),
    /// The exact aggregation failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Noise could not be drawn.
    #[error(transparent)]
    Noise(#[from] NoiseError),
}

/// What a zCDP release of a query will be, decided before any record is read.
#[derive(Debug, Clone)]
pub struct ReleasePlan {
    /// The query with the ρ it spends.
    pub query: Query,
    /// Its cell universe, months and quarters.
    pub universe: Universe,
    /// ρ charged to every touched quarter, micro-ρ.
    pub rho_micro: u64,
    /// Squared L2 sensitivity.
    pub l2_sq: u64,
    /// The noise scale.
    pub sigma: Sigma,
    /// Identifies the release (canonical query, months, data version, policy).
    pub release_id: String,
}

/// Plans the release of `query` under `privacy`, for the store's `data_version` and the
/// current month `today`. Reads nothing.
pub fn plan(
    query: Query,
    privacy: &PrivacyPolicy,
    today: Month,
    data_version: u64,
) -> Result<ReleasePlan, ReleaseError> {
    let rho_micro = privacy
        .resolve_rho(query.rho_micro())
        .map_err(|(min, max)| ReleaseError::RhoOutOfRange { min, max })?;
    let query = query.with_rho_micro(rho_micro);
    let universe = universe::build(&query, privacy, today)?;
    let l2_sq = zcdp::l2_sensitivity_squared(
        query.unit(),
        query.group_by(),
        query.margins(),
        privacy.bounds(),
    );
    let sigma = Sigma::for_release(l2_sq, rho_micro);
    let release_id = release_id(&query, &universe, data_version, privacy);
    Ok(ReleasePlan {
        query,
        universe,
        rho_micro,
        l2_sq,
        sigma,
        release_id,
    })
}

/// Hex SHA-256 identifying a release: the canonical query (with its resolved ρ), the months it
/// reads, the store's data version and what in the policy shapes the release.
pub fn release_id(
    query: &Query,
    universe: &Universe,
    data_version: u64,
    privacy: &PrivacyPolicy,
) -> String {
    let canonical = serde_json::to_vec(&query.to_raw()).unwrap_or_default();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        b"vrs.release.v1".as_slice(),
        &canonical,
        universe.months.0.to_string().as_bytes(),
        universe.months.1.to_string().as_bytes(),
        &data_version.to_be_bytes(),
        privacy.fingerprint().as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    hex::encode(ctx.finish())
}

/// The privacy block of a release (without the budgets of its quarters, which the ledger adds).
pub fn privacy_block(
    plan: &ReleasePlan,
    privacy: &PrivacyPolicy,
    replayed: bool,
) -> ReleasePrivacy {
    let threshold = if privacy.threshold_sigmas() > 0.0 {
        privacy.threshold_sigmas() * plan.sigma.as_f64()
    } else {
        0.0
    };
    ReleasePrivacy {
        release_id: plan.release_id.clone(),
        replayed,
        rho_micro: plan.rho_micro,
        l2_sensitivity_squared: plan.l2_sq,
        privacy_unit: zcdp::privacy_unit(plan.query.unit()).to_string(),
        sigma: plan.sigma.as_f64(),
        threshold,
        quarters: Vec::new(),
    }
}

/// Reads the records under the plan's restriction (contribution bounds, coverage months),
/// noises every cell of the universe and applies the noisy threshold. Returns the answer that
/// may leave the node (with `block` as its privacy) and, for the operator only, each cell's
/// exact value and noise.
pub fn compute(
    store: &Store,
    plan: &ReleasePlan,
    privacy: &PrivacyPolicy,
    block: ReleasePrivacy,
) -> Result<(Answer, Vec<NoisyCell>), ReleaseError> {
    let restriction = Restriction {
        bounds: Some(*privacy.bounds()),
        months: Some(plan.universe.months),
    };
    let table = aggregate_restricted(store, &plan.query, &restriction)?;
    let exact: foldhash::HashMap<Vec<String>, i64> =
        table.cells.into_iter().map(|c| (c.key, c.value)).collect();
    let noise = Noise::new(plan.sigma)?;
    let mut rng = zcdp::os_rng()?;
    let released = zcdp::release_universe(
        &plan.universe.keys,
        &exact,
        &noise,
        privacy.threshold_sigmas(),
        &mut rng,
    )?;
    Ok((
        Answer {
            dimensions: plan.query.group_by().to_vec(),
            cells: released.cells,
            privacy: Some(block),
        },
        released.noisy,
    ))
}

/// What the operator's local preview shows: the plan, one draw of what a release could look
/// like (never stored, never sent: a real release draws its own noise), each cell's exact value
/// and noise, and the budget of the quarters it would charge.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The plan (ρ, universe, σ).
    pub plan: ReleasePlan,
    /// One possible release.
    pub answer: Answer,
    /// Exact value and noise per cell, same order (local only).
    pub noisy: Vec<NoisyCell>,
    /// Budget of each touched quarter before the query, for all callers.
    pub quarters: Vec<vrs_core::answer::QuarterBudget>,
}

/// Plans and computes a preview of `query` for the operator; charges nothing.
pub fn preview(
    store: &Store,
    privacy: &PrivacyPolicy,
    query: Query,
    today: Month,
    audit: Option<&crate::audit::AuditLog>,
) -> Result<Preview, ReleaseError> {
    let plan = plan(
        query,
        privacy,
        today,
        store.data_version().map_err(PlanError::from)?,
    )?;
    let (answer, noisy) = compute(store, &plan, privacy, privacy_block(&plan, privacy, false))?;
    let limits = crate::ledger::Limits {
        per_quarter_micro: privacy.rho_per_quarter_micro(),
        caller_micro: privacy.rho_per_quarter_micro(),
    };
    let quarters = match audit {
        Some(a) => a
            .budgets(&plan.universe.quarters, "", limits)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Preview {
        plan,
        answer,
        noisy,
        quarters,
    })
}
