//! The records a node holds, as checked domain values.
//!
//! An [`IncidentRecord`] is one detection, interception or case event with its route legs,
//! methods, fees, migrant groups and smuggler profiles (DESIGN §4). Every importer (template CSV,
//! JSON Lines, mapped layouts) and the synthetic generator produce these; the store writes them.
//! [`IncidentRecord::check`] holds the cross-field rules, so an importer only has to build fields.
//!
//! A record is of one of two [`RecordKind`]s. An *incident* is a case event. A *statistics* row
//! is a pre-aggregated figure an agency publishes — "N migrants of nationality X detected in
//! month M on route R by mode Y" — with no incident behind it: one migrant group, optionally a
//! route and a corridor, mode and place type, and nothing else (no fees, methods, smugglers,
//! deaths or missing). It counts in person units (migrants) only; incident and fee units skip
//! it (docs/IMPORT.md, docs/PRIVACY.md).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use vrs_core::codes::{
    AgeGroup, Corridor, Country, Currency, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex,
    SmugglerRole, SmugglerStage,
};
use vrs_core::period::Month;

/// Longest `source_id` accepted.
pub const MAX_SOURCE_ID_LEN: usize = 128;
/// Longest free-text note kept (it never leaves the node).
pub const MAX_NOTE_LEN: usize = 2_000;
/// Largest count of people in `dead` or `missing`, and the default cap on one migrant group
/// (and on all groups of one record together); see [`RecordLimits`].
pub const MAX_PEOPLE: u32 = 100_000;
/// The hard ceiling on [`RecordLimits::max_group_count`]: no configuration goes above it.
pub const MAX_GROUP_CEILING: u32 = 10_000_000;
/// Most legs, fees, groups or smugglers on one incident.
pub const MAX_ITEMS: usize = 64;
/// Largest fee amount accepted, in its own currency.
pub const MAX_FEE_AMOUNT: f64 = 1.0e9;

/// One leg of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    /// Country the leg starts in.
    pub from: Country,
    /// Country the leg ends in.
    pub to: Country,
    /// Mode of transport on this leg, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// A fee paid to smugglers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    /// Amount in `currency`.
    pub amount: f64,
    /// ISO 4217 currency.
    pub currency: Currency,
    /// What the fee paid for.
    pub scope: FeeScope,
    /// How it was paid.
    #[serde(default = "unknown_payment")]
    pub payment: PaymentMode,
}

fn unknown_payment() -> PaymentMode {
    PaymentMode::Unknown
}

/// A group of migrants with one profile ("42 nationals of X").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrantGroup {
    /// Citizenship.
    pub citizenship: Country,
    /// Sex.
    pub sex: Sex,
    /// Age group.
    pub age_group: AgeGroup,
    /// Whether the group are unaccompanied minors.
    #[serde(default)]
    pub unaccompanied: bool,
    /// Number of people in the group (≥ 1).
    pub count: u32,
}

/// One smuggler's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smuggler {
    /// Citizenship.
    pub citizenship: Country,
    /// Sex.
    pub sex: Sex,
    /// Age group.
    pub age_group: AgeGroup,
    /// Role in the operation.
    pub role: SmugglerRole,
    /// Stage of the case.
    pub stage: SmugglerStage,
}

/// What a record stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// One detection, interception or case event.
    #[default]
    Incident,
    /// A pre-aggregated figure: one migrant group detected in a month (on a route, by a mode),
    /// with no incident identity. Counted in person units only.
    Statistics,
}

impl RecordKind {
    /// The stable code (`incident`, `statistics`).
    pub const fn code(self) -> &'static str {
        match self {
            RecordKind::Incident => "incident",
            RecordKind::Statistics => "statistics",
        }
    }

    fn is_incident(&self) -> bool {
        *self == RecordKind::Incident
    }
}

impl std::str::FromStr for RecordKind {
    type Err = String;
    fn from_str(s: &str) -> Result<RecordKind, String> {
        match s {
            "incident" => Ok(RecordKind::Incident),
            "statistics" => Ok(RecordKind::Statistics),
            other => Err(format!(
                "{:?} is not a record kind (incident, statistics)",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// Caps a record is checked against that an import may set (a mapping's `max_group_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Most people in one migrant group, and in all groups of one record together.
    /// Default [`MAX_PEOPLE`]; never above [`MAX_GROUP_CEILING`].
    max_group_count: u32,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits {
            max_group_count: MAX_PEOPLE,
        }
    }
}

impl RecordLimits {
    /// Limits with a per-group cap of `max_group_count` (1 to [`MAX_GROUP_CEILING`]).
    pub fn with_max_group_count(max_group_count: u32) -> Result<RecordLimits, String> {
        if (1..=MAX_GROUP_CEILING).contains(&max_group_count) {
            Ok(RecordLimits { max_group_count })
        } else {
            Err(format!(
                "{max_group_count} is not a group cap from 1 to {MAX_GROUP_CEILING}"
            ))
        }
    }

    /// The per-group cap.
    pub fn max_group_count(&self) -> u32 {
        self.max_group_count
    }
}

/// One incident (or statistics row, see [`RecordKind`]) with everything attached to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRecord {
    /// Incident or statistics row; `incident` when absent.
    #[serde(default, skip_serializing_if = "RecordKind::is_incident")]
    pub kind: RecordKind,
    /// The agency's own key for the incident; unique within a node. Re-importing a record with a
    /// known `source_id` changes nothing.
    pub source_id: String,
    /// Month of the incident.
    pub period: Month,
    /// Day of the incident, `YYYY-MM-DD`, if known (kept locally, never released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Reporting agency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Country where the incident took place.
    pub country: Country,
    /// Place type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_type: Option<PlaceType>,
    /// Mode of transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// People found dead.
    #[serde(default)]
    pub dead: u32,
    /// People missing.
    #[serde(default)]
    pub missing: u32,
    /// Journey legs in order (origin → … → destination).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<Leg>,
    /// The named migration corridor the journey belongs to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corridor: Option<Corridor>,
    /// Methods observed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub methods: BTreeSet<Method>,
    /// Fees paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<Fee>,
    /// Migrant groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrants: Vec<MigrantGroup>,
    /// Smuggler profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smugglers: Vec<Smuggler>,
    /// Free text. Stored, never released in any form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A cross-field rule an [`IncidentRecord`] breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// `source_id` empty, too long, or with control characters.
    #[error("source_id must be 1-{MAX_SOURCE_ID_LEN} printable characters")]
    BadSourceId,
    /// `date` is not `YYYY-MM-DD` within `period`.
    #[error("date must be YYYY-MM-DD within the period")]
    BadDate,
    /// The agency code is empty, too long or not printable.
    #[error("agency must be 1-64 printable characters")]
    BadAgency,
    /// Consecutive legs do not join up.
    #[error("route leg {0} does not start where the previous leg ended")]
    BrokenRoute(usize),
    /// A count of dead or missing above [`MAX_PEOPLE`].
    #[error("{0} is above {MAX_PEOPLE}")]
    TooMany(&'static str),
    /// A migrant group (or a record's groups together) above the import's per-group cap.
    #[error(
        "{what} {count} is above the cap of {max} people per group (a mapping's `max_group_count` raises it, up to {MAX_GROUP_CEILING})"
    )]
    OverGroupCap {
        /// `migrant group count` or `migrants` (all groups of the record).
        what: &'static str,
        /// The count found.
        count: u64,
        /// The cap in force.
        max: u32,
    },
    /// A statistics row with something only an incident has, or without its one group.
    #[error("a statistics row {0}")]
    Statistics(&'static str),
    /// More items than allowed in a list.
    #[error("more than {MAX_ITEMS} {0}")]
    TooManyItems(&'static str),
    /// A fee amount that is negative, not finite or absurd.
    #[error("fee amount must be a number from 0 to {MAX_FEE_AMOUNT}")]
    BadFeeAmount,
    /// A migrant group with a count of zero.
    #[error("a migrant group must count at least one person")]
    EmptyGroup,
    /// An unaccompanied-minor group whose age group is not a minor's.
    #[error("an unaccompanied group must have a minor's age group")]
    UnaccompaniedAdult,
    /// A note too long to keep.
    #[error("note longer than {MAX_NOTE_LEN} characters")]
    NoteTooLong,
}

impl IncidentRecord {
    /// Checks the cross-field rules with the default [`RecordLimits`].
    pub fn check(&self) -> Result<(), RecordError> {
        self.check_with(&RecordLimits::default())
    }

    /// Checks the cross-field rules with the caps of `limits`.
    pub fn check_with(&self, limits: &RecordLimits) -> Result<(), RecordError> {
        let cap = limits.max_group_count;
        let printable = |s: &str| !s.chars().any(char::is_control);
        if self.source_id.is_empty()
            || self.source_id.len() > MAX_SOURCE_ID_LEN
            || !printable(&self.source_id)
        {
            return Err(RecordError::BadSourceId);
        }
        if let Some(d) = &self.date {
            let ok = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
                && d.len() == 10
                && d.get(..7) == Some(self.period.to_string().as_str());
            if !ok {
                return Err(RecordError::BadDate);
            }
        }
        if let Some(a) = &self.agency
            && (a.is_empty() || a.chars().count() > 64 || !printable(a))
        {
            return Err(RecordError::BadAgency);
        }
        for (i, w) in self.route.windows(2).enumerate() {
            if w[0].to != w[1].from {
                return Err(RecordError::BrokenRoute(i + 2));
            }
        }
        if self.dead > MAX_PEOPLE {
            return Err(RecordError::TooMany("dead"));
        }
        if self.missing > MAX_PEOPLE {
            return Err(RecordError::TooMany("missing"));
        }
        for (len, what) in [
            (self.route.len(), "route legs"),
            (self.fees.len(), "fees"),
            (self.migrants.len(), "migrant groups"),
            (self.smugglers.len(), "smugglers"),
        ] {
            if len > MAX_ITEMS {
                return Err(RecordError::TooManyItems(what));
            }
        }
        for f in &self.fees {
            if !f.amount.is_finite() || f.amount < 0.0 || f.amount > MAX_FEE_AMOUNT {
                return Err(RecordError::BadFeeAmount);
            }
        }
        for g in &self.migrants {
            if g.count == 0 {
                return Err(RecordError::EmptyGroup);
            }
            if g.count > cap {
                return Err(RecordError::OverGroupCap {
                    what: "migrant group count",
                    count: u64::from(g.count),
                    max: cap,
                });
            }
            if g.unaccompanied && !g.age_group.is_minor() {
                return Err(RecordError::UnaccompaniedAdult);
            }
        }
        let people = self
            .migrants
            .iter()
            .map(|g| u64::from(g.count))
            .sum::<u64>();
        if people > u64::from(cap) {
            return Err(RecordError::OverGroupCap {
                what: "migrants (all groups of the row)",
                count: people,
                max: cap,
            });
        }
        if self.kind == RecordKind::Statistics {
            let broken = if self.migrants.len() != 1 {
                Some("holds exactly one migrant group")
            } else if !self.fees.is_empty() {
                Some("has no fees")
            } else if !self.smugglers.is_empty() {
                Some("has no smugglers")
            } else if !self.methods.is_empty() {
                Some("has no methods")
            } else if self.dead > 0 || self.missing > 0 {
                Some("has no dead or missing")
            } else {
                None
            };
            if let Some(rule) = broken {
                return Err(RecordError::Statistics(rule));
            }
        }
        if let Some(n) = &self.note
            && n.chars().count() > MAX_NOTE_LEN
        {
            return Err(RecordError::NoteTooLong);
        }
        Ok(())
    }

    /// Origin of the journey: where the first leg starts, `UNK` without legs.
    pub fn origin(&self) -> Country {
        self.route.first().map_or(Country::UNKNOWN, |l| l.from)
    }

    /// Destination of the journey: where the last leg ends, `UNK` without legs.
    pub fn destination(&self) -> Country {
        self.route.last().map_or(Country::UNKNOWN, |l| l.to)
    }

    /// Transit countries: where each leg but the last ends, de-duplicated, excluding the origin
    /// and the destination.
    pub fn transit(&self) -> BTreeSet<Country> {
        let (o, d) = (self.origin(), self.destination());
        let n = self.route.len();
        self.route
            .iter()
            .take(n.saturating_sub(1))
            .map(|l| l.to)
            .filter(|c| *c != o && *c != d)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> IncidentRecord {
        IncidentRecord {
            kind: RecordKind::Incident,
            source_id: "THA-2024-0001".into(),
            period: "2024-03".parse().unwrap(),
            date: Some("2024-03-14".into()),
            agency: Some("RTP-IMM".into()),
            country: "THA".parse().unwrap(),
            place_type: Some(PlaceType::GreenBorder),
            mode: Some(Mode::Land),
            dead: 0,
            missing: 0,
            route: vec![
                Leg {
                    from: "MMR".parse().unwrap(),
                    to: "THA".parse().unwrap(),
                    mode: Some(Mode::Land),
                },
                Leg {
                    from: "THA".parse().unwrap(),
                    to: "MYS".parse().unwrap(),
                    mode: Some(Mode::Land),
                },
            ],
            corridor: None,
            methods: [Method::GuideEscort, Method::ConcealmentVehicle]
                .into_iter()
                .collect(),
            fees: vec![Fee {
                amount: 15_000.0,
                currency: "THB".parse().unwrap(),
                scope: FeeScope::FullJourney,
                payment: PaymentMode::Cash,
            }],
            migrants: vec![MigrantGroup {
                citizenship: "MMR".parse().unwrap(),
                sex: Sex::Male,
                age_group: AgeGroup::Age18To24,
                unaccompanied: false,
                count: 12,
            }],
            smugglers: vec![Smuggler {
                citizenship: "THA".parse().unwrap(),
                sex: Sex::Male,
                age_group: AgeGroup::Age35To49,
                role: SmugglerRole::Transporter,
                stage: SmugglerStage::Arrested,
            }],
            note: Some("seen near the river crossing".into()),
        }
    }

    #[test]
    fn sample_is_valid_and_derives_route_ends() {
        let r = sample();
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.origin().as_str(), "MMR");
        assert_eq!(r.destination().as_str(), "MYS");
        assert_eq!(
            r.transit()
                .into_iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            ["THA"]
        );
    }

    #[test]
    fn cross_field_rules_are_enforced() {
        let mut r = sample();
        r.route[1].from = "LAO".parse().unwrap();
        assert_eq!(r.check(), Err(RecordError::BrokenRoute(2)));
        let mut r = sample();
        r.date = Some("2024-04-01".into());
        assert_eq!(r.check(), Err(RecordError::BadDate));
        let mut r = sample();
        r.migrants[0].unaccompanied = true;
        assert_eq!(r.check(), Err(RecordError::UnaccompaniedAdult));
        let mut r = sample();
        r.migrants[0].count = 0;
        assert_eq!(r.check(), Err(RecordError::EmptyGroup));
        let mut r = sample();
        r.fees[0].amount = f64::NAN;
        assert_eq!(r.check(), Err(RecordError::BadFeeAmount));
        let mut r = sample();
        r.source_id = "a\nb".into();
        assert_eq!(r.check(), Err(RecordError::BadSourceId));
    }

    /// A statistics row: 150,000 Syrians detected in a month on the Eastern Mediterranean.
    pub(crate) fn statistics_sample() -> IncidentRecord {
        let mut r = sample();
        r.kind = RecordKind::Statistics;
        r.source_id = "FX-2024-03-SYR".into();
        r.fees.clear();
        r.smugglers.clear();
        r.methods.clear();
        r.date = None;
        r.note = None;
        r.route.truncate(1);
        r.corridor = Some(Corridor::EasternMediterranean);
        r.migrants[0].citizenship = "SYR".parse().unwrap();
        r.migrants[0].count = 150_000;
        r
    }

    #[test]
    fn the_group_cap_is_configurable_up_to_its_ceiling() {
        let mut r = sample();
        r.migrants[0].count = MAX_PEOPLE + 1;
        let e = r.check().unwrap_err();
        assert!(
            matches!(e, RecordError::OverGroupCap { count, max, .. } if count == u64::from(MAX_PEOPLE) + 1 && max == MAX_PEOPLE)
        );
        assert!(e.to_string().contains("max_group_count"), "{e}");
        let wide = RecordLimits::with_max_group_count(1_000_000).unwrap();
        assert_eq!(r.check_with(&wide), Ok(()));
        r.migrants[0].count = 1_000_001;
        assert!(r.check_with(&wide).is_err());
        assert!(RecordLimits::with_max_group_count(MAX_GROUP_CEILING).is_ok());
        assert!(RecordLimits::with_max_group_count(MAX_GROUP_CEILING + 1).is_err());
        assert!(RecordLimits::with_max_group_count(0).is_err());
        // The record's groups together are capped too.
        let mut r = sample();
        let mut second = r.migrants[0].clone();
        second.sex = Sex::Female;
        r.migrants[0].count = 60_000;
        second.count = 60_000;
        r.migrants.push(second);
        assert!(matches!(
            r.check(),
            Err(RecordError::OverGroupCap { count: 120_000, .. })
        ));
    }

    #[test]
    fn statistics_rows_hold_one_group_and_nothing_an_incident_has() {
        let wide = RecordLimits::with_max_group_count(1_000_000).unwrap();
        let s = statistics_sample();
        assert_eq!(s.check_with(&wide), Ok(()));
        let mut bad = s.clone();
        bad.fees = sample().fees;
        assert_eq!(
            bad.check_with(&wide),
            Err(RecordError::Statistics("has no fees"))
        );
        let mut bad = s.clone();
        bad.smugglers = sample().smugglers;
        assert!(bad.check_with(&wide).is_err());
        let mut bad = s.clone();
        bad.methods = sample().methods;
        assert!(bad.check_with(&wide).is_err());
        let mut bad = s.clone();
        bad.dead = 1;
        assert!(bad.check_with(&wide).is_err());
        let mut bad = s.clone();
        bad.migrants.clear();
        assert!(bad.check_with(&wide).is_err());
        let mut bad = s.clone();
        let mut g = bad.migrants[0].clone();
        g.citizenship = "IRQ".parse().unwrap();
        g.count = 1;
        bad.migrants.push(g);
        assert!(bad.check_with(&wide).is_err());
        // Kind and corridor go through JSON; an incident writes neither when absent.
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("\"kind\":\"statistics\""), "{j}");
        assert!(j.contains("\"corridor\":\"eastern_mediterranean\""), "{j}");
        assert_eq!(serde_json::from_str::<IncidentRecord>(&j).unwrap(), s);
        assert!(!serde_json::to_string(&sample()).unwrap().contains("kind"));
    }

    #[test]
    fn json_round_trip_refuses_unknown_fields() {
        let r = sample();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<IncidentRecord>(&j).unwrap(), r);
        let bad = j.replacen('{', "{\"surprise\":1,", 1);
        assert!(serde_json::from_str::<IncidentRecord>(&bad).is_err());
    }
}
