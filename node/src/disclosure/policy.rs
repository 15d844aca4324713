//! The node's disclosure policy: the `[policy]` section of `node.toml`, checked against floors.
//!
//! [`PolicyConfig`] is the section as written (every field optional, documented defaults);
//! [`Policy`] is built from it by [`Policy::new`] (or `TryFrom`), which refuses any value below
//! a floor or above a ceiling with a [`PolicyError`]. A `Policy` value is therefore proof that the
//! floors hold: no configuration can make a node release below them (DESIGN §2, invariant 2).
//!
//! ```toml
//! [policy]
//! min_count = 5            # floor 3
//! min_contributors = 3     # floor 2
//! dominance_p = 25         # percent, 10..=100
//! protection_width = 5     # default: min_count; floor 3
//! rounding_base = 0        # 0 or 1 = off
//! max_dimensions = 3
//! max_filter_values = 50
//! max_period_span_months = 600
//! units = ["incidents", "migrants"]          # default: all
//! dimensions = ["quarter", "route", "mode"]  # default: all
//!
//! [policy.perturbation]
//! enabled = true
//! max_deviation = 2        # floor 1 when enabled
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use vrs_core::query::{Dimension, QueryLimits, Unit};

/// Lowest `min_count` any configuration may set.
pub const MIN_COUNT_FLOOR: u64 = 3;
/// Lowest `min_contributors` any configuration may set.
pub const MIN_CONTRIBUTORS_FLOOR: u64 = 2;
/// Lowest `dominance_p` (percent). Below 10 the p% rule protects almost nothing.
pub const DOMINANCE_P_FLOOR: u64 = 10;
/// Highest `dominance_p` (percent): at 100 no one may be estimated to within 100% of their share.
pub const DOMINANCE_P_CEILING: u64 = 100;
/// Lowest `protection_width`: a suppressed cell may never be pinned to fewer than 4 values.
pub const PROTECTION_WIDTH_FLOOR: u64 = 3;
/// Lowest `max_deviation` when perturbation is enabled.
pub const MAX_DEVIATION_FLOOR: u64 = 1;
/// Highest `max_deviation`: beyond this counts stop being useful and the table is large.
pub const MAX_DEVIATION_CEILING: u64 = 25;
/// Highest `min_count`, `min_contributors`, `protection_width` and `rounding_base`: a sanity bound
/// that keeps arithmetic far from overflow.
pub const COUNT_CEILING: u64 = 1_000_000;
/// Highest `max_dimensions`: the table (with margins) grows as the product of the value lists.
pub const MAX_DIMENSIONS_CEILING: usize = 6;
/// Highest `max_filter_values`.
pub const MAX_FILTER_VALUES_CEILING: usize = 10_000;
/// Highest `max_period_span_months` (100 years).
pub const MAX_PERIOD_SPAN_CEILING: u32 = 1_200;

/// `[policy]` as written in `node.toml`. Every field has a documented default; unknown keys are
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A cell whose value is below this is suppressed (`threshold`). Default 5, floor 3.
    pub min_count: u64,
    /// A cell with fewer distinct contributing incidents is suppressed (`contributors`).
    /// Default 3, floor 2.
    pub min_contributors: u64,
    /// p% dominance rule for magnitude units, in percent. Default 25, range 10..=100.
    pub dominance_p: u64,
    /// Every suppressed cell's feasible interval (what an attacker can narrow it to from the
    /// released cells and the table's sums) must be at least this wide. Default: `min_count`, so
    /// a suppressed cell is never pinned more tightly than the threshold band itself. Floor 3.
    pub protection_width: Option<u64>,
    /// Released values are rounded to this base after perturbation; 0 or 1 = off. Default 0.
    pub rounding_base: u64,
    /// Most group-by dimensions in one query. Default 3, range 1..=6.
    pub max_dimensions: usize,
    /// Most values in one filter. Default 50, range 1..=10 000.
    pub max_filter_values: usize,
    /// Longest period range, in months. Default 600, range 1..=1 200.
    pub max_period_span_months: u32,
    /// Units this node answers for. Default: all.
    pub units: Vec<Unit>,
    /// Dimensions this node allows in group-by and filters. Default: all.
    pub dimensions: Vec<Dimension>,
    /// `[policy.perturbation]`: cell-key perturbation.
    pub perturbation: PerturbationConfig,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let limits = QueryLimits::default();
        PolicyConfig {
            min_count: 5,
            min_contributors: 3,
            dominance_p: 25,
            protection_width: None,
            rounding_base: 0,
            max_dimensions: limits.max_dimensions,
            max_filter_values: limits.max_filter_values,
            max_period_span_months: limits.max_period_span_months,
            units: Unit::ALL.to_vec(),
            dimensions: Dimension::ALL.to_vec(),
            perturbation: PerturbationConfig::default(),
        }
    }
}

/// `[policy.perturbation]` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerturbationConfig {
    /// Whether released values carry cell-key noise. Default true.
    pub enabled: bool,
    /// Largest absolute noise added to a cell. Default 2, floor 1 when enabled, ceiling 25.
    pub max_deviation: u64,
}

impl Default for PerturbationConfig {
    fn default() -> Self {
        PerturbationConfig {
            enabled: true,
            max_deviation: 2,
        }
    }
}

/// Why a `[policy]` section cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A value is below the floor that no configuration may go under.
    #[error("{field} = {value} is below the floor of {floor}")]
    BelowFloor {
        /// The field, as written in `node.toml`.
        field: &'static str,
        /// The configured value.
        value: u64,
        /// The floor.
        floor: u64,
    },
    /// A value is above its sanity ceiling.
    #[error("{field} = {value} is above the ceiling of {ceiling}")]
    AboveCeiling {
        /// The field, as written in `node.toml`.
        field: &'static str,
        /// The configured value.
        value: u64,
        /// The ceiling.
        ceiling: u64,
    },
    /// A list that must name at least one item is empty.
    #[error("{field} is empty: at least one value is needed")]
    Empty {
        /// The field, as written in `node.toml`.
        field: &'static str,
    },
}

impl PolicyError {
    /// Stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::BelowFloor { .. } => "POLICY_BELOW_FLOOR",
            PolicyError::AboveCeiling { .. } => "POLICY_ABOVE_CEILING",
            PolicyError::Empty { .. } => "POLICY_EMPTY_LIST",
        }
    }
}

/// A checked disclosure policy. Only [`Policy::new`] (or `TryFrom`/serde, which call it) builds
/// one, so every `Policy` respects the floors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PolicyConfig")]
pub struct Policy {
    min_count: u64,
    min_contributors: u64,
    dominance_p: u64,
    protection_width: u64,
    rounding_base: u64,
    perturbation: bool,
    max_deviation: u64,
    limits: QueryLimits,
    units: BTreeSet<Unit>,
    dimensions: BTreeSet<Dimension>,
}

/// The parameters a reader of released tables needs, and that a node may publish (`Describe`,
/// and in each answer). Secrets (the perturbation secret, record keys) are never in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicPolicy {
    /// Cells below this value are suppressed.
    pub min_count: u64,
    /// Cells with fewer contributing incidents are suppressed.
    pub min_contributors: u64,
    /// p% dominance rule for magnitude units, in percent.
    pub dominance_p: u64,
    /// Whether released values carry cell-key noise.
    pub perturbation: bool,
    /// Largest absolute noise (0 when perturbation is off).
    pub max_deviation: u64,
    /// Rounding base after perturbation (0 = off).
    pub rounding_base: u64,
    /// Most group-by dimensions in one query.
    pub max_dimensions: usize,
    /// Most values in one filter.
    pub max_filter_values: usize,
    /// Smallest feasible-interval width of any suppressed cell.
    pub protection_width: u64,
}

fn at_least(field: &'static str, value: u64, floor: u64) -> Result<(), PolicyError> {
    if value < floor {
        Err(PolicyError::BelowFloor {
            field,
            value,
            floor,
        })
    } else {
        Ok(())
    }
}

fn at_most(field: &'static str, value: u64, ceiling: u64) -> Result<(), PolicyError> {
    if value > ceiling {
        Err(PolicyError::AboveCeiling {
            field,
            value,
            ceiling,
        })
    } else {
        Ok(())
    }
}

fn within(field: &'static str, value: u64, floor: u64, ceiling: u64) -> Result<(), PolicyError> {
    at_least(field, value, floor)?;
    at_most(field, value, ceiling)
}

/// Widens a `usize` for range checks; saturates on (hypothetical) 128-bit targets.
fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Policy {
    /// Checks a `[policy]` section against the floors and ceilings.
    pub fn new(config: PolicyConfig) -> Result<Policy, PolicyError> {
        within(
            "min_count",
            config.min_count,
            MIN_COUNT_FLOOR,
            COUNT_CEILING,
        )?;
        within(
            "min_contributors",
            config.min_contributors,
            MIN_CONTRIBUTORS_FLOOR,
            COUNT_CEILING,
        )?;
        within(
            "dominance_p",
            config.dominance_p,
            DOMINANCE_P_FLOOR,
            DOMINANCE_P_CEILING,
        )?;
        let protection_width = config.protection_width.unwrap_or(config.min_count);
        within(
            "protection_width",
            protection_width,
            PROTECTION_WIDTH_FLOOR,
            COUNT_CEILING,
        )?;
        at_most("rounding_base", config.rounding_base, COUNT_CEILING)?;
        let p = config.perturbation;
        if p.enabled {
            at_least(
                "perturbation.max_deviation",
                p.max_deviation,
                MAX_DEVIATION_FLOOR,
            )?;
        }
        at_most(
            "perturbation.max_deviation",
            p.max_deviation,
            MAX_DEVIATION_CEILING,
        )?;
        within(
            "max_dimensions",
            wide(config.max_dimensions),
            1,
            wide(MAX_DIMENSIONS_CEILING),
        )?;
        within(
            "max_filter_values",
            wide(config.max_filter_values),
            1,
            wide(MAX_FILTER_VALUES_CEILING),
        )?;
        within(
            "max_period_span_months",
            u64::from(config.max_period_span_months),
            1,
            u64::from(MAX_PERIOD_SPAN_CEILING),
        )?;
        if config.units.is_empty() {
            return Err(PolicyError::Empty { field: "units" });
        }
        if config.dimensions.is_empty() {
            return Err(PolicyError::Empty {
                field: "dimensions",
            });
        }
        Ok(Policy {
            min_count: config.min_count,
            min_contributors: config.min_contributors,
            dominance_p: config.dominance_p,
            protection_width,
            rounding_base: config.rounding_base,
            perturbation: p.enabled,
            max_deviation: if p.enabled { p.max_deviation } else { 0 },
            limits: QueryLimits {
                max_dimensions: config.max_dimensions,
                max_filter_values: config.max_filter_values,
                max_period_span_months: config.max_period_span_months,
            },
            units: config.units.into_iter().collect(),
            dimensions: config.dimensions.into_iter().collect(),
        })
    }

    /// Cells below this value are suppressed.
    pub fn min_count(&self) -> u64 {
        self.min_count
    }

    /// Cells with fewer distinct contributing incidents are suppressed.
    pub fn min_contributors(&self) -> u64 {
        self.min_contributors
    }

    /// The p of the p% dominance rule, in percent.
    pub fn dominance_p(&self) -> u64 {
        self.dominance_p
    }

    /// Smallest allowed feasible-interval width of a suppressed cell.
    pub fn protection_width(&self) -> u64 {
        self.protection_width
    }

    /// Rounding base (0 or 1 = off).
    pub fn rounding_base(&self) -> u64 {
        self.rounding_base
    }

    /// Whether cell-key perturbation is on.
    pub fn perturbation(&self) -> bool {
        self.perturbation
    }

    /// Largest absolute noise (0 when perturbation is off).
    pub fn max_deviation(&self) -> u64 {
        self.max_deviation
    }

    /// Whether the node answers for `unit`.
    pub fn allows_unit(&self, unit: Unit) -> bool {
        self.units.contains(&unit)
    }

    /// Whether the node allows `dimension` in group-by and filters.
    pub fn allows_dimension(&self, dimension: Dimension) -> bool {
        self.dimensions.contains(&dimension)
    }

    /// The units the node answers for, in publication order.
    pub fn units(&self) -> impl Iterator<Item = Unit> + '_ {
        self.units.iter().copied()
    }

    /// The dimensions the node allows, in publication order.
    pub fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.dimensions.iter().copied()
    }

    /// The structural limits the query parser applies.
    pub fn query_limits(&self) -> QueryLimits {
        self.limits
    }

    /// The policy in words, for `check`: what is published, the structural limits, then the
    /// suppression and noise rules, said to apply only when `rules_apply` (rules_v1 mode; in
    /// zCDP mode noise calibrated to the budget replaces them).
    pub fn in_words(&self, rules_apply: bool) -> String {
        fn which<T: std::fmt::Display>(what: &str, all: usize, items: &[T]) -> String {
            if items.len() == all {
                format!("all {all} {what}")
            } else {
                let names: Vec<String> = items.iter().map(T::to_string).collect();
                format!("{what} {}", names.join(", "))
            }
        }
        let units: Vec<Unit> = self.units().collect();
        let dimensions: Vec<Dimension> = self.dimensions().collect();
        let noise = if self.perturbation {
            format!("cell-key noise up to ±{}", self.max_deviation)
        } else {
            "no cell-key noise".to_string()
        };
        let rounding = if self.rounding_base > 1 {
            format!("rounded to multiples of {}", self.rounding_base)
        } else {
            "no rounding".to_string()
        };
        format!(
            "publishes {} and {}; at most {} group-by dimensions, {} values per filter, {} months \
             per question; {}: a cell below {} or from fewer than {} incidents is suppressed, \
             {}% dominance rule, suppressed cells at least {} wide, {noise}, {rounding}",
            which("units", Unit::ALL.len(), &units),
            which("dimensions", Dimension::ALL.len(), &dimensions),
            self.limits.max_dimensions,
            self.limits.max_filter_values,
            self.limits.max_period_span_months,
            if rules_apply {
                "rules"
            } else {
                "rules (rules_v1 mode only, not applied)"
            },
            self.min_count,
            self.min_contributors,
            self.dominance_p,
            self.protection_width,
        )
    }

    /// The public parameters (no secrets).
    pub fn public(&self) -> PublicPolicy {
        PublicPolicy {
            min_count: self.min_count,
            min_contributors: self.min_contributors,
            dominance_p: self.dominance_p,
            perturbation: self.perturbation,
            max_deviation: self.max_deviation,
            rounding_base: self.rounding_base,
            max_dimensions: self.limits.max_dimensions,
            max_filter_values: self.limits.max_filter_values,
            protection_width: self.protection_width,
        }
    }
}

impl Default for Policy {
    /// Every default of [`PolicyConfig`].
    fn default() -> Self {
        let c = PolicyConfig::default();
        let limits = QueryLimits::default();
        Policy {
            min_count: c.min_count,
            min_contributors: c.min_contributors,
            dominance_p: c.dominance_p,
            protection_width: c.min_count,
            rounding_base: c.rounding_base,
            perturbation: c.perturbation.enabled,
            max_deviation: c.perturbation.max_deviation,
            limits,
            units: Unit::ALL.iter().copied().collect(),
            dimensions: Dimension::ALL.iter().copied().collect(),
        }
    }
}

impl TryFrom<PolicyConfig> for Policy {
    type Error = PolicyError;
    fn try_from(config: PolicyConfig) -> Result<Policy, PolicyError> {
        Policy::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_reads_in_words() {
        let policy = Policy::new(PolicyConfig {
            units: vec![Unit::Incidents, Unit::Migrants],
            ..PolicyConfig::default()
        })
        .unwrap();
        let text = policy.in_words(true);
        assert!(
            text.starts_with("publishes units incidents, migrants and all 17 dimensions;"),
            "{text}"
        );
        assert!(
            text.contains("at most 3 group-by dimensions, 50 values per filter, 600 months"),
            "{text}"
        );
        assert!(
            text.contains("a cell below 5 or from fewer than 3 incidents is suppressed"),
            "{text}"
        );
        assert!(
            text.contains("cell-key noise up to ±2, no rounding"),
            "{text}"
        );
        assert!(!text.contains('{') && !text.contains("Some("), "{text}");
        assert!(
            policy
                .in_words(false)
                .contains("rules_v1 mode only, not applied")
        );
    }
    use proptest::prelude::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        policy: PolicyConfig,
    }

    #[test]
    fn default_policy_is_the_defaults_checked() {
        assert_eq!(Policy::new(PolicyConfig::default()), Ok(Policy::default()));
        let p = Policy::default().public();
        assert_eq!(
            p,
            PublicPolicy {
                min_count: 5,
                min_contributors: 3,
                dominance_p: 25,
                perturbation: true,
                max_deviation: 2,
                rounding_base: 0,
                max_dimensions: 3,
                max_filter_values: 50,
                protection_width: 5,
            }
        );
        assert_eq!(Policy::default().query_limits(), QueryLimits::default());
    }

    #[test]
    fn parses_a_toml_sample() {
        let text = r#"
            [policy]
            min_count = 10
            min_contributors = 4
            dominance_p = 20
            rounding_base = 5
            max_dimensions = 2
            max_filter_values = 20
            max_period_span_months = 120
            units = ["incidents", "migrants"]
            dimensions = ["quarter", "route", "mode"]

            [policy.perturbation]
            enabled = true
            max_deviation = 3
        "#;
        let file: File = toml::from_str(text).unwrap();
        let policy = Policy::new(file.policy).unwrap();
        assert_eq!(policy.min_count(), 10);
        assert_eq!(policy.protection_width(), 10, "defaults to min_count");
        assert_eq!(policy.rounding_base(), 5);
        assert_eq!(policy.max_deviation(), 3);
        assert!(policy.allows_unit(Unit::Migrants));
        assert!(!policy.allows_unit(Unit::Fees));
        assert!(policy.allows_dimension(Dimension::Route));
        assert!(!policy.allows_dimension(Dimension::Sex));
        assert_eq!(
            policy.query_limits(),
            QueryLimits {
                max_dimensions: 2,
                max_filter_values: 20,
                max_period_span_months: 120
            }
        );

        // An empty section is all defaults; `Policy` deserializes through the checks.
        let empty: File = toml::from_str("[policy]\n").unwrap();
        assert_eq!(Policy::new(empty.policy), Ok(Policy::default()));
        #[derive(Debug, Deserialize)]
        struct Checked {
            #[allow(dead_code)]
            policy: Policy,
        }
        let low = toml::from_str::<Checked>("[policy]\nmin_count = 2\n").unwrap_err();
        assert!(low.to_string().contains("below the floor"), "{low}");
    }

    #[test]
    fn refuses_unknown_keys_and_values_below_floors() {
        assert!(toml::from_str::<File>("[policy]\nmin_cont = 5\n").is_err());
        assert!(toml::from_str::<File>("[policy.perturbation]\nnoise = 5\n").is_err());
        assert!(toml::from_str::<File>("[policy]\nunits = [\"people\"]\n").is_err());
        let bad = |text: &str| {
            let file: File = toml::from_str(text).unwrap();
            Policy::new(file.policy).unwrap_err()
        };
        assert_eq!(
            bad("[policy]\nmin_count = 2"),
            PolicyError::BelowFloor {
                field: "min_count",
                value: 2,
                floor: 3
            }
        );
        assert_eq!(
            bad("[policy]\nmin_contributors = 1").code(),
            "POLICY_BELOW_FLOOR"
        );
        assert_eq!(
            bad("[policy]\ndominance_p = 0").code(),
            "POLICY_BELOW_FLOOR"
        );
        assert_eq!(
            bad("[policy]\ndominance_p = 101").code(),
            "POLICY_ABOVE_CEILING"
        );
        assert_eq!(
            bad("[policy]\nprotection_width = 2").code(),
            "POLICY_BELOW_FLOOR"
        );
        assert_eq!(
            bad("[policy.perturbation]\nmax_deviation = 0").code(),
            "POLICY_BELOW_FLOOR"
        );
        assert_eq!(
            bad("[policy]\nmax_dimensions = 0").code(),
            "POLICY_BELOW_FLOOR"
        );
        assert_eq!(
            bad("[policy]\nmax_dimensions = 7").code(),
            "POLICY_ABOVE_CEILING"
        );
        assert_eq!(bad("[policy]\nunits = []").code(), "POLICY_EMPTY_LIST");
        assert_eq!(bad("[policy]\ndimensions = []").code(), "POLICY_EMPTY_LIST");
        // Perturbation off: the deviation is not used and may be 0.
        let off: File =
            toml::from_str("[policy.perturbation]\nenabled = false\nmax_deviation = 0").unwrap();
        let off = Policy::new(off.policy).unwrap();
        assert!(!off.perturbation());
        assert_eq!(off.public().max_deviation, 0);
    }

    proptest! {
        /// Any value below a floor is refused; any value in range is accepted.
        #[test]
        fn floors_hold_for_any_config(
            min_count in 0u64..20,
            min_contributors in 0u64..10,
            dominance_p in 0u64..120,
            protection_width in proptest::option::of(0u64..20),
            enabled in any::<bool>(),
            max_deviation in 0u64..30,
        ) {
            let config = PolicyConfig {
                min_count,
                min_contributors,
                dominance_p,
                protection_width,
                perturbation: PerturbationConfig { enabled, max_deviation },
                ..PolicyConfig::default()
            };
            let width = protection_width.unwrap_or(min_count);
            let ok = min_count >= MIN_COUNT_FLOOR
                && min_contributors >= MIN_CONTRIBUTORS_FLOOR
                && (DOMINANCE_P_FLOOR..=DOMINANCE_P_CEILING).contains(&dominance_p)
                && width >= PROTECTION_WIDTH_FLOOR
                && (!enabled || max_deviation >= MAX_DEVIATION_FLOOR)
                && max_deviation <= MAX_DEVIATION_CEILING;
            let built = Policy::new(config);
            prop_assert_eq!(built.is_ok(), ok, "{:?}", built);
            if let Ok(p) = built {
                prop_assert!(p.min_count() >= MIN_COUNT_FLOOR);
                prop_assert!(p.min_contributors() >= MIN_CONTRIBUTORS_FLOOR);
                prop_assert!(p.protection_width() >= PROTECTION_WIDTH_FLOOR);
                prop_assert!(!p.perturbation() || p.max_deviation() >= MAX_DEVIATION_FLOOR);
            }
        }
    }
}
