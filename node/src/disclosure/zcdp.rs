//! The zCDP release: privacy policy, contribution bounds, sensitivity, noise scale and the
//! noisy release of a data-independent cell universe.
//!
//! Pure: no I/O and no clock. Randomness comes in as a generator the caller seeds from the
//! operating system's CSPRNG ([`os_rng`]); the sampler is libprio's exact discrete Gaussian
//! (Canonne–Kamath–Steinke 2020, integer arithmetic over big rationals, ported from OpenDP).
//!
//! # The guarantee
//!
//! A release `M(D)` is ρ-zCDP when for every pair of neighbouring stores `D`, `D'` (one privacy
//! unit added or removed) and every α > 1 the Rényi divergence `D_α(M(D) ‖ M(D')) ≤ ρα`. Adding
//! discrete Gaussian noise of variance σ² to each coordinate of an integer vector whose L2
//! sensitivity is Δ₂ is (Δ₂² / 2σ²)-zCDP (CKS20, Thm. 4); we choose σ ≥ Δ₂ / √(2ρ). zCDP
//! composes by adding ρ, and any function of the released vector (thresholds, sums, rounding,
//! the coordinator's merge) costs nothing more (post-processing).
//!
//! # Privacy unit and sensitivity
//!
//! One *person* in one incident for person units (migrants, smugglers, deaths, missing), one
//! *incident* for incident units (incidents, fees). Before noise each unit's contribution is
//! bounded: of a multi-valued table (transit countries, methods, migrant groups seen from the
//! incident, smugglers seen from the incident, fees) at most `max_per_incident` rows (distinct
//! values of the grouped columns, in value order) count per incident, and a fee unit counts at
//! most `fee` fee rows of its incident. Then, for each grouping set `g` of the query (the
//! interior, and each margin when margins are asked for) a unit adds 1 to at most
//! `Π_{t joined in g} k_t` cells, `R` times over for fees (`R = k_fee`), so
//!
//! `Δ₂² = Σ_g R² · Π_{t ∈ joins(g)} k_t`.

use std::collections::BTreeMap;

use num_traits::ToPrimitive;
use prio::dp::Rational;
use prio::dp::distributions::DiscreteGaussian;
use rand_prio::SeedableRng;
use rand_prio::distr::Distribution;
use rand_prio::rngs::StdRng;
use serde::{Deserialize, Serialize};
use vrs_core::answer::{Cell, CellValue, MICRO_RHO, SuppressionReason};
use vrs_core::query::{Dimension, Unit};

/// The most a node may set as the lifetime budget of one quarter (ρ = 2).
pub const RHO_PER_QUARTER_CEILING_MICRO: u64 = 2 * MICRO_RHO;
/// The most one query may spend on a quarter (ρ = 0.5).
pub const MAX_RHO_CEILING_MICRO: u64 = MICRO_RHO / 2;
/// The least one query may spend (ρ = 0.0001): below it the noise drowns any figure.
pub const MIN_RHO_FLOOR_MICRO: u64 = 100;
/// Largest contribution bound a node may publish for a multi-valued table.
pub const BOUND_CEILING: u32 = 16;
/// Largest cell universe a node may allow in one answer.
pub const MAX_CELLS_CEILING: u32 = 200_000;

/// Tables with several rows per incident, whose contributions are bounded before noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundedTable {
    /// Transit countries of an incident.
    Transit,
    /// Method codes of an incident.
    Method,
    /// Migrant groups, when an incident-level unit is grouped by a profile dimension.
    MigrantGroup,
    /// Smugglers, when an incident-level unit is grouped by a smuggler dimension.
    Smuggler,
    /// Fee records of an incident (also the most fee rows a fee unit counts).
    Fee,
}

impl BoundedTable {
    /// Every table, in publication order.
    pub const ALL: [BoundedTable; 5] = [
        BoundedTable::Transit,
        BoundedTable::Method,
        BoundedTable::MigrantGroup,
        BoundedTable::Smuggler,
        BoundedTable::Fee,
    ];

    /// The stable code (also the SQL table name).
    pub const fn code(self) -> &'static str {
        match self {
            BoundedTable::Transit => "transit",
            BoundedTable::Method => "method",
            BoundedTable::MigrantGroup => "migrant_group",
            BoundedTable::Smuggler => "smuggler",
            BoundedTable::Fee => "fee",
        }
    }
}

/// Contribution bounds per table, as written in `[privacy.bounds]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bounds {
    /// Transit countries counted per incident.
    pub transit: u32,
    /// Methods counted per incident.
    pub method: u32,
    /// Migrant groups (distinct profile values) counted per incident.
    pub migrant_group: u32,
    /// Smugglers (distinct profile values) counted per incident.
    pub smuggler: u32,
    /// Fee rows counted per incident.
    pub fee: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            transit: 3,
            method: 3,
            migrant_group: 4,
            smuggler: 4,
            fee: 3,
        }
    }
}

impl Bounds {
    /// The bound of one table.
    pub fn of(&self, t: BoundedTable) -> u32 {
        match t {
            BoundedTable::Transit => self.transit,
            BoundedTable::Method => self.method,
            BoundedTable::MigrantGroup => self.migrant_group,
            BoundedTable::Smuggler => self.smuggler,
            BoundedTable::Fee => self.fee,
        }
    }
}

/// Which protection a node applies, as written in `[privacy] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeConfig {
    /// zCDP with a finite budget per quarter (the default).
    #[default]
    Zcdp,
    /// Version 1 rules: NOT protected against many different queries.
    RulesV1,
}

/// The `[privacy]` section of `node.toml`, as written. ρ values are plain numbers (`0.05`);
/// they are held as integers of micro-ρ once checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// `zcdp` (default) or `rules_v1`.
    pub mode: ModeConfig,
    /// Lifetime budget of every reference quarter, shared by all callers (default 1.0, at most 2).
    pub rho_per_quarter: f64,
    /// ρ a query spends when it asks for none (default 0.05).
    pub default_rho: f64,
    /// Least ρ one query may ask for (default 0.001).
    pub min_rho: f64,
    /// Most ρ one query may ask for (default 0.25, at most 0.5).
    pub max_rho: f64,
    /// Suppress cells whose noisy value is below this many σ (default 0: release every cell,
    /// which keeps regional sums unbiased).
    pub threshold_sigmas: f64,
    /// Largest cell universe of one answer, margins included (default 20,000).
    pub max_cells: u32,
    /// First month of the node's declared coverage (`YYYY-MM`, default `2010-01`). Never read
    /// off the data: records before it are never counted.
    pub coverage_from: String,
    /// Last month of the declared coverage (`YYYY-MM`); empty means "the current month".
    pub coverage_to: String,
    /// Contribution bounds of multi-valued tables.
    pub bounds: Bounds,
    /// Optional per-caller shares: identity → lifetime ρ per quarter (each ≤ `rho_per_quarter`).
    pub callers: BTreeMap<String, f64>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            mode: ModeConfig::Zcdp,
            rho_per_quarter: 1.0,
            default_rho: 0.05,
            min_rho: 0.001,
            max_rho: 0.25,
            threshold_sigmas: 0.0,
            max_cells: 20_000,
            coverage_from: "2010-01".into(),
            coverage_to: String::new(),
            bounds: Bounds::default(),
            callers: BTreeMap::new(),
        }
    }
}

/// Why a `[privacy]` section was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrivacyError {
    /// A ρ is not a finite positive number.
    #[error("privacy.{field}: must be a positive number")]
    NotPositive {
        /// Which key.
        field: String,
    },
    /// A value is above the ceiling no configuration may cross.
    #[error("privacy.{field} = {value} is above the ceiling {ceiling}")]
    AboveCeiling {
        /// Which key.
        field: String,
        /// As written.
        value: String,
        /// The ceiling.
        ceiling: String,
    },
    /// A value is below its floor.
    #[error("privacy.{field} = {value} is below the floor {floor}")]
    BelowFloor {
        /// Which key.
        field: String,
        /// As written.
        value: String,
        /// The floor.
        floor: String,
    },
    /// The rho bounds are inconsistent.
    #[error("privacy: need min_rho ≤ default_rho ≤ max_rho ≤ rho_per_quarter")]
    Inconsistent,
    /// A coverage month does not parse or the range is inverted.
    #[error("privacy.coverage_from/coverage_to: {0}")]
    Coverage(String),
}

impl PrivacyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PrivacyError::NotPositive { .. } => "PRIVACY_NOT_POSITIVE",
            PrivacyError::AboveCeiling { .. } => "PRIVACY_ABOVE_CEILING",
            PrivacyError::BelowFloor { .. } => "PRIVACY_BELOW_FLOOR",
            PrivacyError::Inconsistent => "PRIVACY_INCONSISTENT",
            PrivacyError::Coverage(_) => "PRIVACY_COVERAGE",
        }
    }
}

/// ρ as written → micro-ρ, refusing non-finite and non-positive values.
pub fn micro_of(field: &str, rho: f64) -> Result<u64, PrivacyError> {
    if !rho.is_finite() || rho <= 0.0 {
        return Err(PrivacyError::NotPositive {
            field: field.into(),
        });
    }
    let micro = (rho * MICRO_RHO as f64).round();
    if micro < 1.0 || micro > u64::MAX as f64 / 2.0 {
        return Err(PrivacyError::NotPositive {
            field: field.into(),
        });
    }
    Ok(micro as u64)
}

/// Micro-ρ as a plain number for people.
pub fn rho_of(micro: u64) -> f64 {
    micro as f64 / MICRO_RHO as f64
}

/// A checked `[privacy]` section: floors and ceilings hold.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyPolicy {
    mode: ModeConfig,
    rho_per_quarter_micro: u64,
    default_rho_micro: u64,
    min_rho_micro: u64,
    max_rho_micro: u64,
    threshold_sigmas: f64,
    max_cells: u32,
    coverage_from: vrs_core::period::Month,
    coverage_to: Option<vrs_core::period::Month>,
    bounds: Bounds,
    callers: BTreeMap<String, u64>,
}

impl Default for PrivacyPolicy {
    /// The checked form of [`PrivacyConfig::default`] (equal to it: tested).
    fn default() -> Self {
        let c = PrivacyConfig::default();
        PrivacyPolicy {
            mode: c.mode,
            rho_per_quarter_micro: MICRO_RHO,
            default_rho_micro: MICRO_RHO / 20,
            min_rho_micro: MICRO_RHO / 1000,
            max_rho_micro: MICRO_RHO / 4,
            threshold_sigmas: c.threshold_sigmas,
            max_cells: c.max_cells,
            coverage_from: vrs_core::period::Month::new(2010, 1)
                .unwrap_or(vrs_core::period::Month::FIRST),
            coverage_to: None,
            bounds: c.bounds,
            callers: BTreeMap::new(),
        }
    }
}

impl PrivacyPolicy {
    /// Checks a `[privacy]` section.
    pub fn new(c: &PrivacyConfig) -> Result<PrivacyPolicy, PrivacyError> {
        let budget = micro_of("rho_per_quarter", c.rho_per_quarter)?;
        let default = micro_of("default_rho", c.default_rho)?;
        let min = micro_of("min_rho", c.min_rho)?;
        let max = micro_of("max_rho", c.max_rho)?;
        let above = |field: &str, v: u64, ceiling: u64| {
            if v > ceiling {
                Err(PrivacyError::AboveCeiling {
                    field: field.into(),
                    value: rho_of(v).to_string(),
                    ceiling: rho_of(ceiling).to_string(),
                })
            } else {
                Ok(())
            }
        };
        above("rho_per_quarter", budget, RHO_PER_QUARTER_CEILING_MICRO)?;
        above("max_rho", max, MAX_RHO_CEILING_MICRO)?;
        if min < MIN_RHO_FLOOR_MICRO {
            return Err(PrivacyError::BelowFloor {
                field: "min_rho".into(),
                value: rho_of(min).to_string(),
                floor: rho_of(MIN_RHO_FLOOR_MICRO).to_string(),
            });
        }
        if !(min <= default && default <= max && max <= budget) {
            return Err(PrivacyError::Inconsistent);
        }
        if !c.threshold_sigmas.is_finite() || !(0.0..=10.0).contains(&c.threshold_sigmas) {
            return Err(PrivacyError::AboveCeiling {
                field: "threshold_sigmas".into(),
                value: c.threshold_sigmas.to_string(),
                ceiling: "10 (and at least 0)".into(),
            });
        }
        if c.max_cells == 0 || c.max_cells > MAX_CELLS_CEILING {
            return Err(PrivacyError::AboveCeiling {
                field: "max_cells".into(),
                value: c.max_cells.to_string(),
                ceiling: MAX_CELLS_CEILING.to_string(),
            });
        }
        for t in BoundedTable::ALL {
            let k = c.bounds.of(t);
            if k == 0 || k > BOUND_CEILING {
                return Err(PrivacyError::AboveCeiling {
                    field: format!("bounds.{}", t.code()),
                    value: k.to_string(),
                    ceiling: format!("{BOUND_CEILING} (and at least 1)"),
                });
            }
        }
        let from: vrs_core::period::Month = c
            .coverage_from
            .trim()
            .parse()
            .map_err(|e: vrs_core::period::PeriodError| PrivacyError::Coverage(e.to_string()))?;
        let to = if c.coverage_to.trim().is_empty() {
            None
        } else {
            let to: vrs_core::period::Month =
                c.coverage_to
                    .trim()
                    .parse()
                    .map_err(|e: vrs_core::period::PeriodError| {
                        PrivacyError::Coverage(e.to_string())
                    })?;
            if to < from {
                return Err(PrivacyError::Coverage(
                    "coverage_to is before coverage_from".into(),
                ));
            }
            Some(to)
        };
        let mut callers = BTreeMap::new();
        for (id, rho) in &c.callers {
            let share = micro_of(&format!("callers.\"{id}\""), *rho)?;
            above(&format!("callers.\"{id}\""), share, budget)?;
            callers.insert(id.clone(), share);
        }
        Ok(PrivacyPolicy {
            mode: c.mode,
            rho_per_quarter_micro: budget,
            default_rho_micro: default,
            min_rho_micro: min,
            max_rho_micro: max,
            threshold_sigmas: c.threshold_sigmas,
            max_cells: c.max_cells,
            coverage_from: from,
            coverage_to: to,
            bounds: c.bounds,
            callers,
        })
    }

    /// The protection mode.
    pub fn mode(&self) -> ModeConfig {
        self.mode
    }

    /// Whether releases are zCDP (the default); false for the weaker rules mode.
    pub fn is_zcdp(&self) -> bool {
        self.mode == ModeConfig::Zcdp
    }

    /// Lifetime budget of each quarter, micro-ρ.
    pub fn rho_per_quarter_micro(&self) -> u64 {
        self.rho_per_quarter_micro
    }

    /// A caller's own lifetime share per quarter, micro-ρ (the whole budget when not split).
    pub fn caller_share_micro(&self, caller: &str) -> u64 {
        self.callers
            .get(caller)
            .copied()
            .unwrap_or(self.rho_per_quarter_micro)
    }

    /// ρ of a query that asks for none, micro-ρ.
    pub fn default_rho_micro(&self) -> u64 {
        self.default_rho_micro
    }

    /// Least and most ρ one query may ask for, micro-ρ.
    pub fn rho_range_micro(&self) -> (u64, u64) {
        (self.min_rho_micro, self.max_rho_micro)
    }

    /// The ρ a query will spend: its own (checked against the range) or the default.
    pub fn resolve_rho(&self, asked_micro: u64) -> Result<u64, (u64, u64)> {
        if asked_micro == 0 {
            return Ok(self.default_rho_micro);
        }
        if asked_micro < self.min_rho_micro || asked_micro > self.max_rho_micro {
            return Err((self.min_rho_micro, self.max_rho_micro));
        }
        Ok(asked_micro)
    }

    /// Noisy values below `threshold_sigmas × σ` are suppressed (0: none).
    pub fn threshold_sigmas(&self) -> f64 {
        self.threshold_sigmas
    }

    /// Largest cell universe of one answer.
    pub fn max_cells(&self) -> u32 {
        self.max_cells
    }

    /// Contribution bounds.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// First month of the declared coverage.
    pub fn coverage_from(&self) -> vrs_core::period::Month {
        self.coverage_from
    }

    /// Last month of the declared coverage (`None`: the current month).
    pub fn coverage_to(&self) -> Option<vrs_core::period::Month> {
        self.coverage_to
    }

    /// A digest of everything that shapes a release (bounds, threshold), so that a changed
    /// policy never replays an answer released under another.
    pub fn fingerprint(&self) -> String {
        format!(
            "b{}-{}-{}-{}-{};t{}",
            self.bounds.transit,
            self.bounds.method,
            self.bounds.migrant_group,
            self.bounds.smuggler,
            self.bounds.fee,
            self.threshold_sigmas
        )
    }
}

/// The privacy unit of a counted unit.
pub fn privacy_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Incidents | Unit::Fees => "incident",
        Unit::Migrants | Unit::Smugglers | Unit::Deaths | Unit::Missing => "person",
    }
}

/// The bounded table a dimension's values come from when counting `unit`, or `None` when the
/// dimension is one value per counted row (a column of the incident or of the unit's own row).
pub fn joined_table(d: Dimension, unit: Unit) -> Option<BoundedTable> {
    let own_row = match d {
        Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup => {
            matches!(unit, Unit::Migrants | Unit::Smugglers)
        }
        Dimension::SmugglerRole | Dimension::SmugglerStage => unit == Unit::Smugglers,
        Dimension::FeeBand => unit == Unit::Fees,
        _ => true,
    };
    if own_row && !matches!(d, Dimension::Transit | Dimension::Method) {
        return None;
    }
    Some(match d {
        Dimension::Transit => BoundedTable::Transit,
        Dimension::Method => BoundedTable::Method,
        Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup => BoundedTable::MigrantGroup,
        Dimension::SmugglerRole | Dimension::SmugglerStage => BoundedTable::Smuggler,
        _ => BoundedTable::Fee,
    })
}

/// Squared L2 sensitivity of a query's released vector: `Σ_g R² · Π_{t ∈ joins(g)} k_t` over
/// its grouping sets (see the module docs).
pub fn l2_sensitivity_squared(
    unit: Unit,
    group_by: &[Dimension],
    margins: bool,
    bounds: &Bounds,
) -> u64 {
    let rows = if unit == Unit::Fees {
        u64::from(bounds.fee)
    } else {
        1
    };
    let n = group_by.len();
    let masks: Vec<u32> = if margins {
        (0..(1u32 << n)).collect()
    } else {
        vec![(1u32 << n) - 1]
    };
    let mut total: u64 = 0;
    for mask in masks {
        let mut tables: Vec<BoundedTable> = Vec::new();
        for (i, d) in group_by.iter().enumerate() {
            if mask & (1 << i) != 0
                && let Some(t) = joined_table(*d, unit)
                && !tables.contains(&t)
            {
                tables.push(t);
            }
        }
        let cells: u64 = tables.iter().map(|t| u64::from(bounds.of(*t))).product();
        total = total.saturating_add(rows.saturating_mul(rows).saturating_mul(cells));
    }
    total
}

/// A noise scale σ as an exact rational `num / den`, never below `Δ₂ / √(2ρ)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sigma {
    num: u128,
    den: u128,
}

/// Denominator of σ: six decimal places, rounded up.
const SIGMA_SCALE: u128 = 1_000_000;

impl Sigma {
    /// σ for squared sensitivity `l2_sq` and `rho_micro` micro-ρ: the smallest multiple of 10⁻⁶
    /// with σ² ≥ Δ₂² / (2ρ).
    pub fn for_release(l2_sq: u64, rho_micro: u64) -> Sigma {
        let rho = u128::from(rho_micro.max(1));
        // σ² · 10¹² = Δ² · 10⁶ · 10¹² / (2 · ρ_micro), rounded up.
        let target = (u128::from(l2_sq) * 1_000_000 * SIGMA_SCALE * SIGMA_SCALE).div_ceil(2 * rho);
        let mut s = isqrt(target);
        if s * s < target {
            s += 1;
        }
        Sigma {
            num: s,
            den: SIGMA_SCALE,
        }
    }

    /// σ as a float, for publication and error bars.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// σ in millionths, rounded up (regional mode's wire unit).
    pub fn scaled_micro(self) -> u128 {
        (self.num * 1_000_000).div_ceil(self.den)
    }

    /// σ² as a float.
    pub fn variance(self) -> f64 {
        let s = self.as_f64();
        s * s
    }
}

/// Integer square root (floor).
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// Why noise could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// The sampler refused its parameters or drew a value outside `i64`.
    #[error("noise sampler: {0}")]
    Sampler(String),
}

/// A generator for one release, seeded from the operating system's CSPRNG (ring's
/// `SystemRandom`): ChaCha12, itself a CSPRNG.
pub fn os_rng() -> Result<StdRng, NoiseError> {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| NoiseError::Random)?;
    Ok(StdRng::from_seed(seed))
}

/// Discrete Gaussian noise of scale σ (libprio's exact CKS20 sampler).
pub struct Noise {
    sigma: Sigma,
    dist: DiscreteGaussian,
}

impl std::fmt::Debug for Noise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Noise").field("sigma", &self.sigma).finish()
    }
}

impl Noise {
    /// A sampler of scale `sigma`.
    pub fn new(sigma: Sigma) -> Result<Noise, NoiseError> {
        let r = Rational::from_unsigned(sigma.num, sigma.den)
            .map_err(|e| NoiseError::Sampler(e.to_string()))?;
        let dist = DiscreteGaussian::new(r).map_err(|e| NoiseError::Sampler(e.to_string()))?;
        Ok(Noise { sigma, dist })
    }

    /// The scale.
    pub fn sigma(&self) -> Sigma {
        self.sigma
    }

    /// One draw.
    pub fn sample<R: rand_prio::Rng + ?Sized>(&self, rng: &mut R) -> Result<i64, NoiseError> {
        self.dist
            .sample(rng)
            .to_i64()
            .ok_or_else(|| NoiseError::Sampler("noise outside i64".into()))
    }
}

/// Standard normal upper tail `P(Z ≥ z)` (Abramowitz–Stegun 7.1.26, |error| < 1.5·10⁻⁷): only
/// for publishing how often an empty cell passes the threshold, never for sampling.
pub fn normal_upper_tail(z: f64) -> f64 {
    if z < 0.0 {
        return 1.0 - normal_upper_tail(-z);
    }
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

/// Share of cells whose true value is 0 that pass a threshold of `threshold_sigmas` σ.
pub fn empty_cell_pass_rate(threshold_sigmas: f64) -> f64 {
    if threshold_sigmas <= 0.0 {
        0.0
    } else {
        normal_upper_tail(threshold_sigmas)
    }
}

/// One noisy cell before post-processing, for the operator's explanation.
#[derive(Clone, PartialEq, Eq)]
pub struct NoisyCell {
    /// The key.
    pub key: Vec<String>,
    /// The exact value (never leaves the node).
    pub exact: i64,
    /// The noise drawn.
    pub noise: i64,
}

impl std::fmt::Debug for NoisyCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoisyCell")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The zCDP release of one query.
#[derive(Debug, Clone)]
pub struct ZcdpRelease {
    /// Every cell of the universe, in key order: noisy, or suppressed by the noisy threshold.
    pub cells: Vec<Cell>,
    /// Local only: exact value and noise per cell, same order.
    pub noisy: Vec<NoisyCell>,
    /// The threshold applied to noisy values (0: none).
    pub threshold: f64,
}

/// Adds discrete Gaussian noise to every cell of `universe` (exact values from `exact`, 0 when
/// absent), then applies the noisy threshold: post-processing only, nothing here looks at an
/// exact value except to add noise to it. Exact cells outside the universe are not released.
pub fn release_universe<R: rand_prio::Rng + ?Sized>(
    universe: &[Vec<String>],
    exact: &foldhash::HashMap<Vec<String>, i64>,
    noise: &Noise,
    threshold_sigmas: f64,
    rng: &mut R,
) -> Result<ZcdpRelease, NoiseError> {
    let threshold = if threshold_sigmas > 0.0 {
        threshold_sigmas * noise.sigma().as_f64()
    } else {
        0.0
    };
    let mut cells = Vec::with_capacity(universe.len());
    let mut noisy = Vec::with_capacity(universe.len());
    for key in universe {
        let x = exact.get(key).copied().unwrap_or(0);
        let z = noise.sample(rng)?;
        let v = x.saturating_add(z);
        let value = if threshold > 0.0 && (v as f64) < threshold {
            CellValue::Suppressed(SuppressionReason::NoisyBelowThreshold)
        } else {
            CellValue::Noisy(v)
        };
        cells.push(Cell {
            key: key.clone(),
            value,
        });
        noisy.push(NoisyCell {
            key: key.clone(),
            exact: x,
            noise: z,
        });
    }
    Ok(ZcdpRelease {
        cells,
        noisy,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_floors_and_ceilings() {
        let p = PrivacyPolicy::new(&PrivacyConfig::default()).unwrap();
        assert_eq!(p, PrivacyPolicy::default());
        assert_eq!(p.rho_per_quarter_micro(), 1_000_000);
        assert_eq!(p.default_rho_micro(), 50_000);
        assert!(p.is_zcdp());
    }

    #[test]
    fn ceilings_and_consistency_are_enforced() {
        let bad = |f: &dyn Fn(&mut PrivacyConfig)| {
            let mut c = PrivacyConfig::default();
            f(&mut c);
            PrivacyPolicy::new(&c).unwrap_err().code()
        };
        assert_eq!(bad(&|c| c.rho_per_quarter = 2.5), "PRIVACY_ABOVE_CEILING");
        assert_eq!(bad(&|c| c.max_rho = 0.6), "PRIVACY_ABOVE_CEILING");
        assert_eq!(bad(&|c| c.min_rho = 0.00001), "PRIVACY_BELOW_FLOOR");
        assert_eq!(bad(&|c| c.default_rho = 0.5), "PRIVACY_INCONSISTENT");
        assert_eq!(
            bad(&|c| c.rho_per_quarter = f64::NAN),
            "PRIVACY_NOT_POSITIVE"
        );
        assert_eq!(bad(&|c| c.rho_per_quarter = -1.0), "PRIVACY_NOT_POSITIVE");
        assert_eq!(bad(&|c| c.bounds.method = 0), "PRIVACY_ABOVE_CEILING");
        assert_eq!(bad(&|c| c.bounds.fee = 17), "PRIVACY_ABOVE_CEILING");
        assert_eq!(
            bad(&|c| {
                c.callers.insert("coordinator.x".into(), 3.0);
            }),
            "PRIVACY_ABOVE_CEILING"
        );
        assert_eq!(
            bad(&|c| c.coverage_from = "2024-13".into()),
            "PRIVACY_COVERAGE"
        );
        assert_eq!(
            bad(&|c| {
                c.coverage_from = "2024-05".into();
                c.coverage_to = "2024-04".into();
            }),
            "PRIVACY_COVERAGE"
        );
    }

    #[test]
    fn sensitivity_follows_the_query_shape() {
        let b = Bounds::default();
        use Dimension as D;
        // One person, one cell.
        assert_eq!(
            l2_sensitivity_squared(Unit::Migrants, &[D::Citizenship, D::Month], false, &b),
            1
        );
        // Margins: four grouping sets of two dimensions.
        assert_eq!(
            l2_sensitivity_squared(Unit::Migrants, &[D::Citizenship, D::Month], true, &b),
            4
        );
        // Methods are multi-valued: up to 3 cells per incident.
        assert_eq!(
            l2_sensitivity_squared(Unit::Incidents, &[D::Method], false, &b),
            3
        );
        // Incidents by citizenship × sex: both from one migrant-group row.
        assert_eq!(
            l2_sensitivity_squared(Unit::Incidents, &[D::Citizenship, D::Sex], false, &b),
            4
        );
        // Method × transit multiply; with margins: 9 + 3 + 3 + 1.
        assert_eq!(
            l2_sensitivity_squared(Unit::Incidents, &[D::Method, D::Transit], true, &b),
            16
        );
        // Fees: up to 3 fee rows of one incident, possibly in one cell.
        assert_eq!(
            l2_sensitivity_squared(Unit::Fees, &[D::FeeBand], false, &b),
            9
        );
        // Deaths by citizenship: the dead of an incident fall in each of its (≤4) groups' cells.
        assert_eq!(
            l2_sensitivity_squared(Unit::Deaths, &[D::Citizenship], false, &b),
            4
        );
        // No dimension: one total.
        assert_eq!(l2_sensitivity_squared(Unit::Incidents, &[], true, &b), 1);
    }

    #[test]
    fn sigma_is_never_below_the_calibrated_scale() {
        for (l2, rho) in [
            (1u64, 50_000u64),
            (4, 50_000),
            (9, 1_000),
            (1, 1_000_000),
            (16, 333),
        ] {
            let s = Sigma::for_release(l2, rho);
            let exact = (l2 as f64 / (2.0 * rho as f64 / 1e6)).sqrt();
            assert!(
                s.as_f64() >= exact - 1e-9,
                "{l2} {rho}: {} < {exact}",
                s.as_f64()
            );
            assert!(
                s.as_f64() <= exact + 2e-6,
                "{l2} {rho}: {} ≫ {exact}",
                s.as_f64()
            );
        }
        assert!((Sigma::for_release(1, 50_000).as_f64() - 10f64.sqrt()).abs() < 2e-6);
    }

    #[test]
    fn tail_rate_matches_known_values() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_upper_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_upper_tail(3.0) - 0.00135).abs() < 1e-5);
        assert_eq!(empty_cell_pass_rate(0.0), 0.0);
    }

    /// The sampler against the discrete Gaussian: mean, variance, tails and the probability
    /// of 0, from 40,000 draws (bounds at > 5 standard errors, so a correct sampler fails
    /// about once in a few million runs).
    #[test]
    fn sampler_matches_the_discrete_gaussian() {
        let sigma = Sigma::for_release(1, 50_000); // √10 ≈ 3.162
        let noise = Noise::new(sigma).unwrap();
        let mut rng = os_rng().unwrap();
        let n = 40_000usize;
        let draws: Vec<i64> = (0..n).map(|_| noise.sample(&mut rng).unwrap()).collect();
        let s = sigma.as_f64();
        // The exact pmf ∝ exp(−x²/2σ²) over the integers.
        let weight = |x: i64| (-(x as f64).powi(2) / (2.0 * s * s)).exp();
        let norm: f64 = (-200..=200).map(weight).sum();
        let var_exact: f64 = (-200..=200)
            .map(|x| (x as f64).powi(2) * weight(x))
            .sum::<f64>()
            / norm;
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        let var = draws
            .iter()
            .map(|x| (*x as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let se_mean = (var_exact / n as f64).sqrt();
        assert!(mean.abs() < 5.0 * se_mean, "mean {mean}");
        // Var of the sample variance ≈ 2σ⁴/n for a near-normal law.
        let se_var = (2.0 * var_exact * var_exact / n as f64).sqrt();
        assert!(
            (var - var_exact).abs() < 5.0 * se_var,
            "var {var} vs {var_exact}"
        );
        for (k, tail) in [(0i64, None), (3, Some(())), (6, Some(())), (10, Some(()))] {
            let p = if tail.is_none() {
                weight(0) / norm
            } else {
                (-200..=200)
                    .filter(|x: &i64| x.abs() >= k)
                    .map(weight)
                    .sum::<f64>()
                    / norm
            };
            let seen = draws
                .iter()
                .filter(|x| {
                    if tail.is_none() {
                        **x == 0
                    } else {
                        x.abs() >= k
                    }
                })
                .count() as f64
                / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt().max(1.0 / n as f64);
            assert!((seen - p).abs() < 5.0 * se + 1e-4, "k={k}: {seen} vs {p}");
        }
        // Symmetry.
        let pos = draws.iter().filter(|x| **x > 0).count() as f64;
        let neg = draws.iter().filter(|x| **x < 0).count() as f64;
        assert!(
            (pos - neg).abs() < 5.0 * (n as f64).sqrt(),
            "{pos} vs {neg}"
        );
    }

    #[test]
    fn every_universe_cell_is_released_and_the_threshold_reads_noisy_values_only() {
        let universe: Vec<Vec<String>> = (0..50).map(|i| vec![format!("v{i:02}")]).collect();
        let mut exact = foldhash::HashMap::default();
        exact.insert(vec!["v07".to_string()], 1000);
        exact.insert(vec!["outside".to_string()], 5);
        let noise = Noise::new(Sigma::for_release(1, 50_000)).unwrap();
        let mut rng = os_rng().unwrap();
        let r = release_universe(&universe, &exact, &noise, 0.0, &mut rng).unwrap();
        assert_eq!(
            r.cells.len(),
            50,
            "every cell of the universe, none outside it"
        );
        assert!(
            r.cells
                .iter()
                .all(|c| matches!(c.value, CellValue::Noisy(_)))
        );
        let big = r.cells.iter().find(|c| c.key[0] == "v07").unwrap();
        assert!(big.value.value().unwrap() > 950);
        let t = release_universe(&universe, &exact, &noise, 2.0, &mut rng).unwrap();
        for (c, n) in t.cells.iter().zip(&t.noisy) {
            let noisy = n.exact + n.noise;
            match c.value {
                CellValue::Noisy(v) => assert!(v as f64 >= t.threshold && v == noisy),
                CellValue::Suppressed(SuppressionReason::NoisyBelowThreshold) => {
                    assert!((noisy as f64) < t.threshold)
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
