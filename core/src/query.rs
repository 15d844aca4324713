//! The query model: what may be asked of a node.
//!
//! A query is data, never SQL: a [`Unit`] to count, up to `max_dimensions` group-by
//! [`Dimension`]s, [`Filter`]s on published dimensions, an optional period range and an optional
//! request for margins. [`Query::parse`] is the only way to build one, so a `Query` value is proof
//! that it passed every structural check. The node adds the checks that need its data (periods
//! outside its range) and compiles the query into parameterised SQL over its own schema.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codes::{
    AgeGroup, CodeError, Corridor, Country, FeeBand, Method, Mode, PlaceType, Sex, SmugglerRole,
    SmugglerStage, closest,
};
use crate::period::{Month, PeriodError, PeriodSpec};

/// The value of an optional dimension (mode, place type) that a record does not state.
pub const UNKNOWN: &str = "unknown";

/// What a query counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Incidents (detections, interceptions, case events).
    Incidents,
    /// Migrants: the sum of the `count` of migrant-group rows.
    Migrants,
    /// Smugglers: smuggler profile rows.
    Smugglers,
    /// Deaths: the sum of `dead` over incidents.
    Deaths,
    /// Missing persons: the sum of `missing` over incidents.
    Missing,
    /// Fee records (amounts are only ever released as bands).
    Fees,
}

impl Unit {
    /// Every unit.
    pub const ALL: &'static [Unit] = &[
        Unit::Incidents,
        Unit::Migrants,
        Unit::Smugglers,
        Unit::Deaths,
        Unit::Missing,
        Unit::Fees,
    ];

    /// The stable code.
    pub const fn code(self) -> &'static str {
        match self {
            Unit::Incidents => "incidents",
            Unit::Migrants => "migrants",
            Unit::Smugglers => "smugglers",
            Unit::Deaths => "deaths",
            Unit::Missing => "missing",
            Unit::Fees => "fees",
        }
    }

    /// The unit `given` most likely stands for, if it is a near miss ([`closest`]).
    pub fn suggest(given: &str) -> Option<Unit> {
        let code = closest(given, Unit::ALL.iter().map(|u| u.code()))?;
        Unit::ALL.iter().copied().find(|u| u.code() == code)
    }

    /// Whether a cell of this unit is a sum of per-record magnitudes (so the dominance rule applies)
    /// rather than a count of records.
    pub const fn is_magnitude(self) -> bool {
        matches!(self, Unit::Migrants | Unit::Deaths | Unit::Missing)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Unit {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Unit, QueryError> {
        Unit::ALL
            .iter()
            .copied()
            .find(|u| u.code() == s)
            .ok_or_else(|| QueryError::UnknownUnit(clip(s)))
    }
}

/// A published group-by / filter dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Calendar year, `YYYY`.
    Year,
    /// Quarter, `YYYY-Qn`.
    Quarter,
    /// Month, `YYYY-MM`.
    Month,
    /// Country where the journey started.
    Origin,
    /// A country the journey passed through (an incident counts once per transit country).
    Transit,
    /// Country the journey was headed for.
    Destination,
    /// Origin → destination pair, written `ORIG>DEST`.
    Route,
    /// Named migration corridor (Central Mediterranean, Western Balkan…), when the record
    /// names one.
    Corridor,
    /// Mode of transport of the incident.
    Mode,
    /// Place type of the incident.
    PlaceType,
    /// Smuggling method (an incident counts once per method).
    Method,
    /// Citizenship of the migrants (or of the smugglers, when counting smugglers).
    Citizenship,
    /// Sex of the migrants (or smugglers).
    Sex,
    /// Age group of the migrants (or smugglers).
    AgeGroup,
    /// Role of the smuggler.
    SmugglerRole,
    /// Stage of the smuggler's case.
    SmugglerStage,
    /// Band of the fee in USD.
    FeeBand,
}

impl Dimension {
    /// Every dimension, in publication order.
    pub const ALL: &'static [Dimension] = &[
        Dimension::Year,
        Dimension::Quarter,
        Dimension::Month,
        Dimension::Origin,
        Dimension::Transit,
        Dimension::Destination,
        Dimension::Route,
        Dimension::Corridor,
        Dimension::Mode,
        Dimension::PlaceType,
        Dimension::Method,
        Dimension::Citizenship,
        Dimension::Sex,
        Dimension::AgeGroup,
        Dimension::SmugglerRole,
        Dimension::SmugglerStage,
        Dimension::FeeBand,
    ];

    /// The stable code.
    pub const fn code(self) -> &'static str {
        match self {
            Dimension::Year => "year",
            Dimension::Quarter => "quarter",
            Dimension::Month => "month",
            Dimension::Origin => "origin",
            Dimension::Transit => "transit",
            Dimension::Destination => "destination",
            Dimension::Route => "route",
            Dimension::Corridor => "corridor",
            Dimension::Mode => "mode",
            Dimension::PlaceType => "place_type",
            Dimension::Method => "method",
            Dimension::Citizenship => "citizenship",
            Dimension::Sex => "sex",
            Dimension::AgeGroup => "age_group",
            Dimension::SmugglerRole => "smuggler_role",
            Dimension::SmugglerStage => "smuggler_stage",
            Dimension::FeeBand => "fee_band",
        }
    }

    /// What the dimension is, in a few words (the `codes` listing).
    pub const fn about(self) -> &'static str {
        match self {
            Dimension::Year => "calendar year",
            Dimension::Quarter => "calendar quarter",
            Dimension::Month => "month",
            Dimension::Origin => "country where the journey started",
            Dimension::Transit => "a country the journey passed through",
            Dimension::Destination => "country the journey was headed for",
            Dimension::Route => "origin > destination pair",
            Dimension::Corridor => "named migration corridor",
            Dimension::Mode => "mode of transport of the incident",
            Dimension::PlaceType => "place type of the incident",
            Dimension::Method => "smuggling method",
            Dimension::Citizenship => "citizenship of the migrants (or smugglers)",
            Dimension::Sex => "sex of the migrants (or smugglers)",
            Dimension::AgeGroup => "age group of the migrants (or smugglers)",
            Dimension::SmugglerRole => "role of the smuggler",
            Dimension::SmugglerStage => "stage of the smuggler's case",
            Dimension::FeeBand => "band of the fee in USD",
        }
    }

    /// How the values are written, for dimensions whose values are too many to list one by
    /// one (periods, countries, routes); `None` for the short closed lists.
    pub const fn values_note(self) -> Option<&'static str> {
        match self {
            Dimension::Year => Some("YYYY, e.g. 2024 (the years the node covers)"),
            Dimension::Quarter => Some("YYYY-Qn, e.g. 2024-Q1 (the quarters the node covers)"),
            Dimension::Month => Some("YYYY-MM, e.g. 2024-01 (the months the node covers)"),
            Dimension::Origin
            | Dimension::Transit
            | Dimension::Destination
            | Dimension::Citizenship => Some(
                "ISO 3166-1 alpha-3 country code, e.g. MMR; UNK unknown, XKX Kosovo, XXA stateless",
            ),
            Dimension::Route => Some("ORIG>DEST, two country codes, e.g. MMR>THA"),
            _ => None,
        }
    }

    /// How two values of this dimension sort for a reader: fee bands by amount (`500-999`
    /// before `1000-2499`), everything else by its code (margins, `*`, first).
    pub fn compare_values(self, a: &str, b: &str) -> std::cmp::Ordering {
        if self == Dimension::FeeBand
            && let (Ok(x), Ok(y)) = (a.parse::<FeeBand>(), b.parse::<FeeBand>())
        {
            return x.cmp(&y);
        }
        a.cmp(b)
    }

    /// The dimension `given` most likely stands for, if it is a near miss ([`closest`]).
    pub fn suggest(given: &str) -> Option<Dimension> {
        let code = closest(given, Dimension::ALL.iter().map(|d| d.code()))?;
        Dimension::ALL.iter().copied().find(|d| d.code() == code)
    }

    /// The value of this dimension `given` most likely stands for, if it is a near miss of a
    /// value of a closed list (a route's two countries are suggested each).
    pub fn suggest_value(self, given: &str) -> Option<String> {
        if self == Dimension::Route {
            let (o, d) = given.trim().split_once('>')?;
            let fix = |c: &str| {
                c.trim()
                    .parse::<Country>()
                    .map(|c| c.to_string())
                    .ok()
                    .or_else(|| Dimension::Origin.suggest_value(c))
            };
            return Some(format!("{}>{}", fix(o)?, fix(d)?));
        }
        let values = self.closed_values()?;
        closest(given, values.iter().map(String::as_str)).map(str::to_string)
    }

    /// Whether records may lack a value for this dimension, which then falls in the
    /// [`UNKNOWN`] bucket (mode, place type and corridor are optional on an incident).
    pub const fn has_unknown_bucket(self) -> bool {
        matches!(
            self,
            Dimension::Mode | Dimension::PlaceType | Dimension::Corridor
        )
    }

    /// Whether the dimension is a period (its values depend on the data held).
    pub const fn is_period(self) -> bool {
        matches!(
            self,
            Dimension::Year | Dimension::Quarter | Dimension::Month
        )
    }

    /// Whether this dimension may be used with `unit`.
    ///
    /// Profile dimensions (citizenship, sex, age group) describe the rows being counted, so they go
    /// with incidents, migrants and smugglers; smuggler role and stage with incidents and smugglers;
    /// the fee band with incidents and fees. Death and missing totals are per incident, so they can
    /// be split by the incident's own dimensions only.
    pub const fn applies_to(self, unit: Unit) -> bool {
        match self {
            Dimension::Citizenship | Dimension::Sex | Dimension::AgeGroup => {
                matches!(unit, Unit::Incidents | Unit::Migrants | Unit::Smugglers)
            }
            Dimension::SmugglerRole | Dimension::SmugglerStage => {
                matches!(unit, Unit::Incidents | Unit::Smugglers)
            }
            Dimension::FeeBand => matches!(unit, Unit::Incidents | Unit::Fees),
            _ => true,
        }
    }

    /// The closed list of values, for dimensions whose values do not depend on the data.
    /// Period dimensions return `None`: their values are the periods the node holds.
    pub fn closed_values(self) -> Option<Vec<String>> {
        fn codes<T: fmt::Display>(all: impl IntoIterator<Item = T>) -> Option<Vec<String>> {
            Some(all.into_iter().map(|v| v.to_string()).collect())
        }
        match self {
            Dimension::Year | Dimension::Quarter | Dimension::Month => None,
            Dimension::Origin
            | Dimension::Transit
            | Dimension::Destination
            | Dimension::Citizenship => codes(Country::all()),
            // Pairs of countries: too many to list; any `ORIG>DEST` of two valid codes.
            Dimension::Route => Some(Vec::new()),
            Dimension::Corridor => codes(Corridor::ALL.iter().map(|c| c.code()).chain([UNKNOWN])),
            Dimension::Mode => codes(Mode::ALL.iter().map(|m| m.code()).chain([UNKNOWN])),
            Dimension::PlaceType => codes(PlaceType::ALL.iter().map(|p| p.code()).chain([UNKNOWN])),
            Dimension::Method => codes(Method::ALL.iter()),
            Dimension::Sex => codes(Sex::ALL.iter()),
            Dimension::AgeGroup => codes(AgeGroup::ALL.iter()),
            Dimension::SmugglerRole => codes(SmugglerRole::ALL.iter()),
            Dimension::SmugglerStage => codes(SmugglerStage::ALL.iter()),
            Dimension::FeeBand => codes(FeeBand::ALL.iter()),
        }
    }

    /// Checks a value of this dimension and returns it in canonical form.
    pub fn parse_value(self, raw: &str) -> Result<DimValue, QueryError> {
        let bad = |_| QueryError::InvalidFilterValue {
            dimension: self,
            value: clip(raw),
        };
        let v = raw.trim();
        if v == UNKNOWN && self.has_unknown_bucket() {
            return Ok(DimValue::Code(UNKNOWN));
        }
        match self {
            Dimension::Year => match v
                .parse::<PeriodSpec>()
                .map_err(|e: PeriodError| bad(e.to_string()))?
            {
                PeriodSpec::Year(y) => Ok(DimValue::Year(y)),
                _ => Err(bad(String::new())),
            },
            Dimension::Quarter => match v.parse::<PeriodSpec>().map_err(|e| bad(e.to_string()))? {
                PeriodSpec::Quarter(y, q) => Ok(DimValue::Quarter(y, q)),
                _ => Err(bad(String::new())),
            },
            Dimension::Month => v
                .parse::<Month>()
                .map(DimValue::Month)
                .map_err(|e| bad(e.to_string())),
            Dimension::Origin
            | Dimension::Transit
            | Dimension::Destination
            | Dimension::Citizenship => v
                .parse::<Country>()
                .map(DimValue::Country)
                .map_err(|e: CodeError| bad(e.to_string())),
            Dimension::Route => {
                let (o, d) = v.split_once('>').ok_or_else(|| bad(String::new()))?;
                let o: Country = o.parse().map_err(|e: CodeError| bad(e.to_string()))?;
                let d: Country = d.parse().map_err(|e: CodeError| bad(e.to_string()))?;
                Ok(DimValue::Route(o, d))
            }
            Dimension::Corridor => v
                .parse::<Corridor>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::Mode => v
                .parse::<Mode>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::PlaceType => v
                .parse::<PlaceType>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::Method => v
                .parse::<Method>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::Sex => v
                .parse::<Sex>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::AgeGroup => v
                .parse::<AgeGroup>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::SmugglerRole => v
                .parse::<SmugglerRole>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::SmugglerStage => v
                .parse::<SmugglerStage>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
            Dimension::FeeBand => v
                .parse::<FeeBand>()
                .map(|c| DimValue::Code(c.code()))
                .map_err(|e| bad(e.to_string())),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Dimension {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Dimension, QueryError> {
        Dimension::ALL
            .iter()
            .copied()
            .find(|d| d.code() == s)
            .ok_or_else(|| QueryError::UnknownDimension(clip(s)))
    }
}

/// A checked value of a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimValue {
    /// A year.
    Year(u16),
    /// A year and quarter 1–4.
    Quarter(u16, u8),
    /// A month.
    Month(Month),
    /// A country code.
    Country(Country),
    /// An origin → destination pair.
    Route(Country, Country),
    /// A code from a closed list (mode, method, sex…).
    Code(&'static str),
}

impl fmt::Display for DimValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimValue::Year(y) => write!(f, "{y:04}"),
            DimValue::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            DimValue::Month(m) => write!(f, "{m}"),
            DimValue::Country(c) => write!(f, "{c}"),
            DimValue::Route(o, d) => write!(f, "{o}>{d}"),
            DimValue::Code(c) => f.write_str(c),
        }
    }
}

/// A filter: one dimension restricted to a non-empty set of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    dimension: Dimension,
    values: BTreeSet<DimValue>,
}

impl Filter {
    /// The filtered dimension.
    pub fn dimension(&self) -> Dimension {
        self.dimension
    }

    /// The allowed values, sorted and de-duplicated.
    pub fn values(&self) -> &BTreeSet<DimValue> {
        &self.values
    }
}

/// Structural limits a node applies to every query (the node's policy sets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryLimits {
    /// Group-by dimensions per query.
    pub max_dimensions: usize,
    /// Values per filter.
    pub max_filter_values: usize,
    /// Months between the start and the end of the period range, inclusive.
    pub max_period_span_months: u32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_dimensions: 3,
            max_filter_values: 50,
            max_period_span_months: 600,
        }
    }
}

/// A query as it arrives: plain strings, from a command line or the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawQuery {
    /// Unit code.
    pub unit: String,
    /// Group-by dimension codes.
    pub group_by: Vec<String>,
    /// `(dimension, values)` pairs.
    pub filters: Vec<(String, Vec<String>)>,
    /// Start of the period range, empty for none.
    pub period_from: String,
    /// End of the period range, empty for none.
    pub period_to: String,
    /// Whether margins are requested.
    pub margins: bool,
    /// zCDP mode: ρ to spend on every touched quarter, in micro-ρ; 0 = the node's default.
    #[serde(default)]
    pub rho_micro: u64,
}

impl RawQuery {
    /// The question in words, one line, as an operator's lists show it (`incidents by [route,
    /// quarter] where mode in [sea] from 2024 to 2024-Q2 with margins`). The text is the
    /// caller's: make it safe ([`crate::terminal::sanitize`]) before printing.
    pub fn in_words(&self) -> String {
        let mut s = format!("{} by [{}]", self.unit, self.group_by.join(", "));
        for (d, v) in &self.filters {
            s.push_str(&format!(" where {d} in [{}]", v.join(", ")));
        }
        if !self.period_from.is_empty() || !self.period_to.is_empty() {
            s.push_str(&format!(" from {} to {}", self.period_from, self.period_to));
        }
        if self.margins {
            s.push_str(" with margins");
        }
        s
    }

    /// Builds a raw query from command-line style arguments: `by` is `DIM[,DIM...]`, each `where`
    /// item is `DIM=V[,V...]`.
    pub fn from_cli(
        unit: &str,
        by: Option<&str>,
        wheres: &[String],
        from: Option<&str>,
        to: Option<&str>,
        margins: bool,
    ) -> Result<RawQuery, QueryError> {
        let group_by = by
            .map(|b| {
                b.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut filters = Vec::new();
        for w in wheres {
            let (dim, vals) = w
                .split_once('=')
                .ok_or_else(|| QueryError::MalformedFilter(clip(w)))?;
            let values = vals
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            filters.push((dim.trim().to_string(), values));
        }
        Ok(RawQuery {
            unit: unit.to_string(),
            group_by,
            filters,
            period_from: from.unwrap_or_default().to_string(),
            period_to: to.unwrap_or_default().to_string(),
            margins,
            rho_micro: 0,
        })
    }
}

/// A structurally valid query. Only [`Query::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    unit: Unit,
    group_by: Vec<Dimension>,
    filters: Vec<Filter>,
    from: Option<Month>,
    to: Option<Month>,
    margins: bool,
    rho_micro: u64,
}

impl Query {
    /// Parses and checks a raw query against `limits`.
    pub fn parse(raw: &RawQuery, limits: &QueryLimits) -> Result<Query, QueryError> {
        let unit: Unit = raw.unit.trim().parse()?;
        if raw.group_by.len() > limits.max_dimensions {
            return Err(QueryError::TooManyDimensions {
                asked: raw.group_by.len(),
                max: limits.max_dimensions,
            });
        }
        let mut group_by = Vec::with_capacity(raw.group_by.len());
        for d in &raw.group_by {
            let d: Dimension = d.trim().parse()?;
            if group_by.contains(&d) {
                return Err(QueryError::DuplicateDimension(d));
            }
            if !d.applies_to(unit) {
                return Err(QueryError::DimensionNotForUnit { dimension: d, unit });
            }
            group_by.push(d);
        }
        if raw.filters.len() > Dimension::ALL.len() {
            return Err(QueryError::TooManyFilters);
        }
        let mut filters: Vec<Filter> = Vec::with_capacity(raw.filters.len());
        for (d, values) in &raw.filters {
            let d: Dimension = d.trim().parse()?;
            if filters.iter().any(|f| f.dimension == d) {
                return Err(QueryError::DuplicateFilter(d));
            }
            if !d.applies_to(unit) {
                return Err(QueryError::DimensionNotForUnit { dimension: d, unit });
            }
            if values.is_empty() {
                return Err(QueryError::EmptyFilter(d));
            }
            if values.len() > limits.max_filter_values {
                return Err(QueryError::TooManyFilterValues {
                    dimension: d,
                    max: limits.max_filter_values,
                });
            }
            let values = values
                .iter()
                .map(|v| d.parse_value(v))
                .collect::<Result<BTreeSet<_>, _>>()?;
            filters.push(Filter {
                dimension: d,
                values,
            });
        }
        filters.sort_by_key(|f| f.dimension);
        let bound = |s: &str| -> Result<Option<PeriodSpec>, QueryError> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<PeriodSpec>()
                    .map(Some)
                    .map_err(|_| QueryError::InvalidPeriod(clip(s)))
            }
        };
        let from = bound(&raw.period_from)?.map(PeriodSpec::first_month);
        let to = bound(&raw.period_to)?.map(PeriodSpec::last_month);
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(QueryError::PeriodRangeInverted);
            }
            if f.span_to(t) > limits.max_period_span_months {
                return Err(QueryError::PeriodSpanTooLong {
                    max_months: limits.max_period_span_months,
                });
            }
        }
        Ok(Query {
            unit,
            group_by,
            filters,
            from,
            to,
            margins: raw.margins,
            rho_micro: raw.rho_micro,
        })
    }

    /// The unit counted.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Group-by dimensions, in the order asked.
    pub fn group_by(&self) -> &[Dimension] {
        &self.group_by
    }

    /// Filters, sorted by dimension.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// First month of the range, if bounded.
    pub fn from(&self) -> Option<Month> {
        self.from
    }

    /// Last month of the range, if bounded.
    pub fn to(&self) -> Option<Month> {
        self.to
    }

    /// Whether margins were asked for.
    pub fn margins(&self) -> bool {
        self.margins
    }

    /// The ρ asked for, in micro-ρ (0: the node's default).
    pub fn rho_micro(&self) -> u64 {
        self.rho_micro
    }

    /// The same query with the ρ the node resolved (its default when none was asked).
    pub fn with_rho_micro(mut self, rho_micro: u64) -> Query {
        self.rho_micro = rho_micro;
        self
    }

    /// Back to the raw, canonical form (sorted filters, canonical values): what the coordinator
    /// signs and sends, and what an audit log shows.
    pub fn to_raw(&self) -> RawQuery {
        RawQuery {
            unit: self.unit.code().to_string(),
            group_by: self.group_by.iter().map(|d| d.code().to_string()).collect(),
            filters: self
                .filters
                .iter()
                .map(|f| {
                    (
                        f.dimension.code().to_string(),
                        f.values.iter().map(|v| v.to_string()).collect(),
                    )
                })
                .collect(),
            period_from: self.from.map(|m| m.to_string()).unwrap_or_default(),
            period_to: self.to.map(|m| m.to_string()).unwrap_or_default(),
            margins: self.margins,
            rho_micro: self.rho_micro,
        }
    }
}

/// Why a query was refused. Each variant has a stable machine-readable [`QueryError::code`]; the
/// message names the offending part of the query but never any data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The unit is not one of the published units.
    #[error("unknown unit {given:?}{}: expected one of {}", did_you_mean(Unit::suggest(.0)), unit_list(), given = .0)]
    UnknownUnit(String),
    /// A dimension is not one of the published dimensions.
    #[error("unknown dimension {given:?}{}", did_you_mean(Dimension::suggest(.0)), given = .0)]
    UnknownDimension(String),
    /// More group-by dimensions than the policy allows.
    #[error("{asked} group-by dimensions asked, at most {max} allowed")]
    TooManyDimensions {
        /// How many were asked.
        asked: usize,
        /// The policy's maximum.
        max: usize,
    },
    /// The same dimension twice in group-by.
    #[error("dimension {0} is grouped by twice")]
    DuplicateDimension(Dimension),
    /// The dimension does not describe the counted unit.
    #[error("dimension {dimension} cannot be used when counting {unit}")]
    DimensionNotForUnit {
        /// The dimension.
        dimension: Dimension,
        /// The unit.
        unit: Unit,
    },
    /// A filter item is not `DIM=V[,V...]`.
    #[error("filter {0:?} is not of the form DIM=V[,V...]")]
    MalformedFilter(String),
    /// Two filters on one dimension.
    #[error("dimension {0} is filtered twice")]
    DuplicateFilter(Dimension),
    /// More filters than dimensions.
    #[error("too many filters")]
    TooManyFilters,
    /// A filter with no values.
    #[error("filter on {0} has no values")]
    EmptyFilter(Dimension),
    /// A filter with more values than the policy allows.
    #[error("filter on {dimension} has more than {max} values")]
    TooManyFilterValues {
        /// The dimension.
        dimension: Dimension,
        /// The policy's maximum.
        max: usize,
    },
    /// A filter value that the dimension cannot take.
    #[error(
        "{value:?} is not a valid value of {dimension}{}",
        did_you_mean(dimension.suggest_value(value))
    )]
    InvalidFilterValue {
        /// The dimension.
        dimension: Dimension,
        /// The offending value, clipped.
        value: String,
    },
    /// A period bound that does not parse.
    #[error("{0:?} is not a period (YYYY-MM, YYYY-Qn or YYYY)")]
    InvalidPeriod(String),
    /// The end of the range is before its start.
    #[error("the period range ends before it starts")]
    PeriodRangeInverted,
    /// The range spans more months than the policy allows.
    #[error("the period range spans more than {max_months} months")]
    PeriodSpanTooLong {
        /// The policy's maximum.
        max_months: u32,
    },
    /// The range lies wholly outside the periods the node holds.
    #[error("the period range lies outside the data held")]
    PeriodOutsideData,
}

impl QueryError {
    /// Stable, machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::UnknownUnit(_) => "UNKNOWN_UNIT",
            QueryError::UnknownDimension(_) => "UNKNOWN_DIMENSION",
            QueryError::TooManyDimensions { .. } => "TOO_MANY_DIMENSIONS",
            QueryError::DuplicateDimension(_) => "DUPLICATE_DIMENSION",
            QueryError::DimensionNotForUnit { .. } => "DIMENSION_NOT_FOR_UNIT",
            QueryError::MalformedFilter(_) => "MALFORMED_FILTER",
            QueryError::DuplicateFilter(_) => "DUPLICATE_FILTER",
            QueryError::TooManyFilters => "TOO_MANY_FILTERS",
            QueryError::EmptyFilter(_) => "EMPTY_FILTER",
            QueryError::TooManyFilterValues { .. } => "TOO_MANY_FILTER_VALUES",
            QueryError::InvalidFilterValue { .. } => "INVALID_FILTER_VALUE",
            QueryError::InvalidPeriod(_) => "INVALID_PERIOD",
            QueryError::PeriodRangeInverted => "PERIOD_RANGE_INVERTED",
            QueryError::PeriodSpanTooLong { .. } => "PERIOD_SPAN_TOO_LONG",
            QueryError::PeriodOutsideData => "PERIOD_OUTSIDE_DATA",
        }
    }
}

/// Clips caller-supplied text for an error message: at most 40 characters.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// How two cell keys of an answer grouped by `dimensions` sort for a reader: by each part in
/// turn, as [`Dimension::compare_values`] orders it. Answers on the wire stay in code order
/// (their digest covers it); tables and exports shown to people use this one.
pub fn compare_keys(dimensions: &[Dimension], a: &[String], b: &[String]) -> std::cmp::Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let order = match dimensions.get(i) {
            Some(d) => d.compare_values(x, y),
            None => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// ` (did you mean X?)`, or nothing.
fn did_you_mean(suggestion: Option<impl fmt::Display>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

fn unit_list() -> String {
    let codes: Vec<&str> = Unit::ALL.iter().map(|u| u.code()).collect();
    codes.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MARGIN_FOR_TESTS: &str = crate::answer::MARGIN;

    #[test]
    fn fee_bands_sort_by_amount_for_a_reader() {
        let mut bands: Vec<String> = FeeBand::ALL.iter().map(|b| b.to_string()).collect();
        bands.sort(); // code order: "10000+" before "500-999"
        assert_ne!(bands, Dimension::FeeBand.closed_values().unwrap());
        let dims = [Dimension::Route, Dimension::FeeBand];
        let mut keys: Vec<Vec<String>> = bands
            .iter()
            .flat_map(|b| ["MMR>THA", MARGIN_FOR_TESTS].map(|r| vec![r.to_string(), b.clone()]))
            .chain([vec!["MMR>THA".to_string(), MARGIN_FOR_TESTS.to_string()]])
            .collect();
        keys.sort_by(|a, b| compare_keys(&dims, a, b));
        let thai: Vec<&str> = keys
            .iter()
            .filter(|k| k[0] == "MMR>THA")
            .map(|k| k[1].as_str())
            .collect();
        assert_eq!(
            thai,
            [
                "*",
                "0-499",
                "500-999",
                "1000-2499",
                "2500-4999",
                "5000-9999",
                "10000+"
            ]
        );
        assert_eq!(keys[0][0], "*", "margins first, as in code order");
    }

    #[test]
    fn near_misses_get_a_suggestion_in_the_error() {
        let e = "rout".parse::<Dimension>().unwrap_err().to_string();
        assert_eq!(e, "unknown dimension \"rout\" (did you mean route?)");
        let e = "qwerty".parse::<Dimension>().unwrap_err().to_string();
        assert_eq!(e, "unknown dimension \"qwerty\"");
        let e = "incident".parse::<Unit>().unwrap_err().to_string();
        assert!(e.contains("(did you mean incidents?)"), "{e}");
        assert!(e.contains("incidents, migrants, smugglers"), "{e}");
        let e = Dimension::Mode.parse_value("se").unwrap_err().to_string();
        assert_eq!(e, "\"se\" is not a valid value of mode (did you mean sea?)");
        let e = Dimension::FeeBand
            .parse_value("1000-2500")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("(did you mean 1000-2499?)"), "{e}");
        assert_eq!(
            Dimension::Route.suggest_value("mmr>tha").as_deref(),
            Some("MMR>THA")
        );
        assert_eq!(Dimension::Year.suggest_value("2O24"), None);
        // Every dimension is described, and exactly those without a short list have a note.
        for d in Dimension::ALL {
            assert!(!d.about().is_empty());
            let listed = d
                .closed_values()
                .is_some_and(|v| !v.is_empty() && v.len() < 100);
            assert_eq!(d.values_note().is_none(), listed, "{d}");
        }
    }

    fn raw(unit: &str, by: &[&str]) -> RawQuery {
        RawQuery {
            unit: unit.into(),
            group_by: by.iter().map(|s| s.to_string()).collect(),
            ..RawQuery::default()
        }
    }

    #[test]
    fn parses_a_typical_query() {
        let r = RawQuery::from_cli(
            "migrants",
            Some("quarter,route"),
            &["method=doc_forged,visa_abuse".into(), "origin=AFG".into()],
            Some("2023"),
            Some("2024-Q2"),
            true,
        )
        .unwrap();
        let q = Query::parse(&r, &QueryLimits::default()).unwrap();
        assert_eq!(q.unit(), Unit::Migrants);
        assert_eq!(q.group_by(), &[Dimension::Quarter, Dimension::Route]);
        assert_eq!(q.filters().len(), 2);
        assert_eq!(q.from().map(|m| m.to_int()), Some(202301));
        assert_eq!(q.to().map(|m| m.to_int()), Some(202406));
        assert!(q.margins());
    }

    #[test]
    fn refuses_with_precise_codes() {
        let l = QueryLimits::default();
        let code = |r: RawQuery| Query::parse(&r, &l).unwrap_err().code();
        assert_eq!(code(raw("people", &[])), "UNKNOWN_UNIT");
        assert_eq!(code(raw("incidents", &["colour"])), "UNKNOWN_DIMENSION");
        assert_eq!(
            code(raw("incidents", &["year", "mode", "method", "sex"])),
            "TOO_MANY_DIMENSIONS"
        );
        assert_eq!(
            code(raw("incidents", &["mode", "mode"])),
            "DUPLICATE_DIMENSION"
        );
        assert_eq!(code(raw("deaths", &["sex"])), "DIMENSION_NOT_FOR_UNIT");
        assert_eq!(
            code(raw("fees", &["smuggler_role"])),
            "DIMENSION_NOT_FOR_UNIT"
        );
        let mut r = raw("incidents", &[]);
        r.filters = vec![("mode".into(), vec![])];
        assert_eq!(code(r.clone()), "EMPTY_FILTER");
        r.filters = vec![("mode".into(), vec!["hovercraft".into()])];
        assert_eq!(code(r.clone()), "INVALID_FILTER_VALUE");
        r.filters = vec![("origin".into(), (0..51).map(|i| format!("X{i}")).collect())];
        assert_eq!(code(r.clone()), "TOO_MANY_FILTER_VALUES");
        r.filters = vec![
            ("mode".into(), vec!["sea".into()]),
            ("mode".into(), vec!["air".into()]),
        ];
        assert_eq!(code(r.clone()), "DUPLICATE_FILTER");
        let mut r = raw("incidents", &[]);
        r.period_from = "2024-05".into();
        r.period_to = "2024-01".into();
        assert_eq!(code(r.clone()), "PERIOD_RANGE_INVERTED");
        r.period_from = "1990".into();
        r.period_to = "2100".into();
        assert_eq!(code(r.clone()), "PERIOD_SPAN_TOO_LONG");
        r.period_from = "2024-W1".into();
        assert_eq!(code(r), "INVALID_PERIOD");
        assert!(
            RawQuery::from_cli("incidents", None, &["mode".into()], None, None, false).is_err()
        );
    }

    #[test]
    fn corridors_are_a_closed_dimension_with_an_unknown_bucket() {
        let values = Dimension::Corridor.closed_values().unwrap();
        assert_eq!(values.len(), Corridor::ALL.len() + 1);
        assert_eq!(values.last().map(String::as_str), Some(UNKNOWN));
        for v in &values {
            assert_eq!(
                Dimension::Corridor.parse_value(v).map(|d| d.to_string()),
                Ok(v.clone())
            );
        }
        assert!(
            Dimension::Corridor
                .parse_value("Central Mediterranean")
                .is_err()
        );
        assert_eq!("corridor".parse::<Dimension>(), Ok(Dimension::Corridor));
        for u in Unit::ALL {
            assert!(Dimension::Corridor.applies_to(*u));
        }
    }

    #[test]
    fn route_values_are_checked_pairs() {
        assert_eq!(
            Dimension::Route
                .parse_value("AFG>GRC")
                .map(|v| v.to_string()),
            Ok("AFG>GRC".into())
        );
        assert!(Dimension::Route.parse_value("AFG-GRC").is_err());
        assert!(Dimension::Route.parse_value("AFG>ZZZ").is_err());
    }

    proptest! {
        /// Any string goes through the parser without a panic, and a query that parses
        /// round-trips through its canonical raw form.
        #[test]
        fn parser_is_total_and_canonical(
            unit in "[a-z_]{0,12}",
            by in proptest::collection::vec("[a-z_]{0,14}", 0..5),
            fdim in "[a-z_]{0,14}",
            fvals in proptest::collection::vec("[A-Za-z0-9_>+-]{0,10}", 0..4),
            from in "[0-9Q-]{0,8}",
        ) {
            let r = RawQuery { unit, group_by: by, filters: vec![(fdim, fvals)], period_from: from, ..RawQuery::default() };
            if let Ok(q) = Query::parse(&r, &QueryLimits::default()) {
                let again = Query::parse(&q.to_raw(), &QueryLimits::default());
                prop_assert_eq!(again, Ok(q));
            }
        }
    }
}
