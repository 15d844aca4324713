//! Declarative mappings (TOML) from any CSV layout to [`IncidentRecord`]s, so an agency can load
//! its own export without code.
//!
//! A mapping says, for each record field, where its value comes from (a column, a template of
//! several columns, the sum of several columns, or a constant), how to split a multi-valued cell,
//! how to translate values (`map`), what to use when the cell is empty (`default`), which date
//! formats to try, and under which conditions (`when`) the value applies. It also says how the
//! `source_id` is built and which rows to skip. The schema is documented in `docs/IMPORT.md`.
//!
//! [`Mapping::load`] checks everything that can be checked without the data file: the schema
//! (unknown keys are errors), that each field names one source, that every constant and value-map
//! target is a valid value of its field, that date formats are valid. Binding to a file's header
//! then checks that every column named exists.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use vrs_core::codes::{
    AgeGroup, Corridor, Country, Currency, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex,
    SmugglerRole, SmugglerStage,
};
use vrs_core::period::Month;

use super::rows::{Fields, short};
use super::template::{parse_amount, parse_code, parse_whole};
use crate::record::{Fee, IncidentRecord, Leg, MigrantGroup, RecordKind, RecordLimits, Smuggler};

/// Largest mapping file read.
const MAX_MAPPING_BYTES: u64 = 1 << 20;

/// A mapping that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The mapping file cannot be read.
    #[error("cannot read mapping {path}: {source}")]
    Io {
        /// The mapping file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The mapping file is larger than any sensible mapping.
    #[error("mapping {0} is larger than 1 MiB")]
    TooLarge(PathBuf),
    /// The mapping is not TOML, or does not fit the schema (unknown key, wrong type).
    #[error("mapping is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A rule in the mapping is wrong; `at` says where (e.g. `fields.mode.map`).
    #[error("mapping: {at}: {reason}")]
    Invalid {
        /// Where in the mapping.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The mapping names columns the file's header does not have.
    #[error("the mapping names column(s) not in the file's header: {} (the header has: {})", .unknown.join(", "), .available.join(", "))]
    UnknownColumns {
        /// Names the mapping uses that the header lacks.
        unknown: Vec<String>,
        /// The header's names.
        available: Vec<String>,
    },
    /// The mapping names a column that appears more than once in the header.
    #[error("column {0:?} appears more than once in the file's header")]
    AmbiguousColumn(String),
}

fn invalid(at: &str, reason: impl Into<String>) -> MappingError {
    MappingError::Invalid {
        at: at.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The schema, as written in TOML.

/// A constant written as a string, number or boolean.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl From<Scalar> for String {
    fn from(s: Scalar) -> String {
        match s {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(String::from))
}

fn default_delimiter() -> String {
    ",".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default = "default_delimiter")]
    delimiter: String,
    /// What every row is: incidents (default) or pre-aggregated statistics.
    #[serde(default)]
    kind: RecordKind,
    /// Most people in one migrant group (and in one row's groups together).
    max_group_count: Option<u32>,
    /// Spreadsheets: the sheet to read (default: the first).
    sheet: Option<String>,
    /// Spreadsheets: the row number of the header (default: the first row with a value).
    header_row: Option<u32>,
    source_id: SourceIdSpec,
    #[serde(default)]
    skip: Vec<CondSpec>,
    fields: FieldsSpec,
    #[serde(default)]
    fees: Vec<FeeSpec>,
    #[serde(default)]
    migrants: Vec<MigrantSpec>,
    #[serde(default)]
    smugglers: Vec<SmugglerSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceIdSpec {
    column: Option<String>,
    template: Option<String>,
    hash: Option<Vec<String>>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    occurrence: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CondSpec {
    column: String,
    equals: Option<Vec<String>>,
    not_equals: Option<Vec<String>>,
    empty: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsSpec {
    period: Option<ValueSpec>,
    date: Option<ValueSpec>,
    agency: Option<ValueSpec>,
    country: Option<ValueSpec>,
    place_type: Option<ValueSpec>,
    mode: Option<ValueSpec>,
    dead: Option<ValueSpec>,
    missing: Option<ValueSpec>,
    note: Option<ValueSpec>,
    route: Option<ValueSpec>,
    route_modes: Option<ValueSpec>,
    corridor: Option<ValueSpec>,
    methods: Option<ValueSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Unmapped {
    /// A value not in `map` is used as it is.
    #[default]
    Keep,
    /// A value not in `map` counts as empty.
    Empty,
    /// A value not in `map` rejects the row.
    Reject,
}

/// What a negative number in a count's cell means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Negative {
    /// The row is rejected.
    #[default]
    Reject,
    /// The cell counts as empty (0 in a `sum`): for exports that write -1 for unknown.
    Empty,
}

/// Whether a cell is a negative number.
fn is_negative_number(cell: &str) -> bool {
    cell.strip_prefix('-')
        .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok_and(f64::is_finite))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueSpec {
    column: Option<String>,
    template: Option<String>,
    sum: Option<Vec<String>>,
    #[serde(default, deserialize_with = "scalar")]
    value: Option<String>,
    split: Option<String>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    #[serde(default)]
    unmapped: Unmapped,
    #[serde(default)]
    negative: Negative,
    #[serde(default, deserialize_with = "scalar")]
    default: Option<String>,
    #[serde(default)]
    formats: Vec<String>,
    #[serde(default)]
    when: Vec<CondSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeSpec {
    amount: ValueSpec,
    currency: ValueSpec,
    scope: ValueSpec,
    payment: Option<ValueSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Several {
    /// Every value of the split cell gets the whole count.
    Repeat,
    /// Every value gets a count of 1 (the rest, if `remainder` is set, goes to that value).
    OneEach,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrantSpec {
    citizenship: Option<ValueSpec>,
    sex: Option<ValueSpec>,
    age_group: Option<ValueSpec>,
    unaccompanied: Option<ValueSpec>,
    count: ValueSpec,
    several: Option<Several>,
    remainder: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmugglerSpec {
    citizenship: Option<ValueSpec>,
    sex: Option<ValueSpec>,
    age_group: Option<ValueSpec>,
    role: Option<ValueSpec>,
    stage: Option<ValueSpec>,
}

// ---------------------------------------------------------------------------------------------
// Kinds of values, and how a text becomes one.

/// What a field holds, for checking constants and converting cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Date,
    Period,
    Country,
    Currency,
    Corridor,
    Mode,
    PlaceType,
    Method,
    Sex,
    AgeGroup,
    Role,
    Stage,
    Scope,
    Payment,
    Count,
    Amount,
    Bool,
}

const DEFAULT_DATE_FORMATS: &[&str] = &["%Y-%m-%d"];

fn parse_date(s: &str, formats: &[String]) -> Result<NaiveDate, String> {
    let found = if formats.is_empty() {
        DEFAULT_DATE_FORMATS
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
    } else {
        formats
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
    };
    found.ok_or_else(|| {
        let tried = if formats.is_empty() {
            DEFAULT_DATE_FORMATS.join(", ")
        } else {
            formats.join(", ")
        };
        format!("{:?} matches none of the date formats {tried}", short(s))
    })
}

fn month_of(d: NaiveDate) -> Option<Month> {
    Month::new(u16::try_from(d.year()).ok()?, u8::try_from(d.month()).ok()?)
}

fn parse_period(s: &str, formats: &[String]) -> Result<Month, String> {
    if formats.is_empty() {
        return s.parse::<Month>().map_err(|e| e.to_string());
    }
    for f in formats {
        let date = NaiveDate::parse_from_str(s, f)
            // A month-only format (`%Y-%m`, `%b %Y`): supply the day.
            .or_else(|_| NaiveDate::parse_from_str(&format!("{s}|1"), &format!("{f}|%d")));
        if let Ok(d) = date {
            return month_of(d).ok_or_else(|| {
                format!("{:?} is outside the years a period may fall in", short(s))
            });
        }
    }
    Err(format!(
        "{:?} matches none of the period formats {}",
        short(s),
        formats.join(", ")
    ))
}

/// A country as agencies write it: an ISO code in any case, or one of the documented non-ISO
/// codes ([`vrs_core::codes::AGENCY_COUNTRY_CODES`]: `XXB` → `UNK`, `stateless` → `XXA`, …).
fn parse_country(s: &str) -> Result<Country, String> {
    Country::from_agency_code(s).ok_or_else(|| {
        vrs_core::codes::CodeError {
            list: Country::LIST,
            value: short(s),
        }
        .to_string()
    })
}

/// A corridor: its code, or a common name of it ([`Corridor::from_label`]).
fn parse_corridor(s: &str) -> Result<Corridor, String> {
    Corridor::from_label(s).ok_or_else(|| {
        vrs_core::codes::CodeError {
            list: Corridor::LIST,
            value: short(s),
        }
        .to_string()
    })
}

/// A spreadsheet's date cell, as the reader writes it: `YYYY-MM-DD`, or with a time of day
/// `YYYY-MM-DDTHH:MM:SS` (the time is not kept).
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.date())
    })
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("{:?} is not true/false/yes/no/1/0", short(s))),
    }
}

/// Checks that `s` is a valid value of `kind`.
fn check_kind(kind: Kind, s: &str, formats: &[String]) -> Result<(), String> {
    match kind {
        Kind::Text => Ok(()),
        Kind::Date => parse_date(s, formats).map(drop),
        Kind::Period => parse_period(s, formats).map(drop),
        Kind::Country => parse_country(s).map(drop),
        Kind::Currency => parse_code::<Currency>(s).map(drop),
        Kind::Corridor => parse_corridor(s).map(drop),
        Kind::Mode => parse_code::<Mode>(s).map(drop),
        Kind::PlaceType => parse_code::<PlaceType>(s).map(drop),
        Kind::Method => parse_code::<Method>(s).map(drop),
        Kind::Sex => parse_code::<Sex>(s).map(drop),
        Kind::AgeGroup => parse_code::<AgeGroup>(s).map(drop),
        Kind::Role => parse_code::<SmugglerRole>(s).map(drop),
        Kind::Stage => parse_code::<SmugglerStage>(s).map(drop),
        Kind::Scope => parse_code::<FeeScope>(s).map(drop),
        Kind::Payment => parse_code::<PaymentMode>(s).map(drop),
        Kind::Count => parse_whole(s).map(drop),
        Kind::Amount => parse_amount(s).map(drop),
        Kind::Bool => parse_bool(s).map(drop),
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled rules: the schema with columns resolved to indices.

/// Resolves a column name to its index; at load time every name resolves (to 0), at bind time
/// unknown names are collected.
struct Resolver<'h> {
    header: Option<&'h [String]>,
    unknown: BTreeSet<String>,
    ambiguous: Option<String>,
    /// The columns named, by index.
    used: BTreeSet<usize>,
}

impl Resolver<'_> {
    fn column(&mut self, name: &str) -> usize {
        let Some(header) = self.header else {
            return 0;
        };
        let mut hits = header.iter().enumerate().filter(|(_, h)| *h == name);
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => {
                self.used.insert(i);
                i
            }
            (Some(_), Some(_)) => {
                self.ambiguous.get_or_insert_with(|| short(name));
                0
            }
            (None, _) => {
                self.unknown.insert(short(name));
                0
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Column(usize),
}

/// Parses `{column}` templates; `{{` and `}}` are literal braces.
fn parse_template(t: &str, at: &str, r: &mut Resolver<'_>) -> Result<Vec<Piece>, MappingError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(invalid(
                                at,
                                "a `{` is not closed (write `{{` for a brace)",
                            ));
                        }
                    }
                }
                if name.trim().is_empty() {
                    return Err(invalid(at, "`{}` names no column"));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Column(r.column(name.trim())));
            }
            '}' => return Err(invalid(at, "a `}` has no `{` (write `}}` for a brace)")),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn fill_template(pieces: &[Piece], f: &Fields<'_>) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Column(i) => out.push_str(f.get(*i).trim()),
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Vec<String>),
    NotEquals(Vec<String>),
    Empty(bool),
}

#[derive(Debug, Clone)]
struct Cond {
    column: usize,
    test: Test,
}

impl Cond {
    fn compile(spec: &CondSpec, at: &str, r: &mut Resolver<'_>) -> Result<Cond, MappingError> {
        let test = match (&spec.equals, &spec.not_equals, spec.empty) {
            (Some(v), None, None) => Test::Equals(v.clone()),
            (None, Some(v), None) => Test::NotEquals(v.clone()),
            (None, None, Some(e)) => Test::Empty(e),
            _ => {
                return Err(invalid(
                    at,
                    "a condition needs exactly one of `equals`, `not_equals`, `empty`",
                ));
            }
        };
        Ok(Cond {
            column: r.column(&spec.column),
            test,
        })
    }

    fn holds(&self, f: &Fields<'_>) -> bool {
        let cell = f.get(self.column).trim();
        match &self.test {
            Test::Equals(v) => v.iter().any(|x| x == cell),
            Test::NotEquals(v) => !v.iter().any(|x| x == cell),
            Test::Empty(e) => cell.is_empty() == *e,
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    Column(usize),
    Template(Vec<Piece>),
    Sum(Vec<(usize, String)>),
    Value(String),
}

/// One field's rule, compiled.
#[derive(Debug, Clone)]
struct Value {
    name: String,
    kind: Kind,
    source: Source,
    reads_columns: bool,
    /// A negative number in a cell counts as empty.
    negative_empty: bool,
    split: Option<String>,
    map: HashMap<String, String>,
    unmapped: Unmapped,
    default: Option<String>,
    formats: Vec<String>,
    when: Vec<Cond>,
}

/// Whether and how a field may be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    No,
    May,
    Must,
}

impl Value {
    fn compile(
        spec: &ValueSpec,
        at: &str,
        kind: Kind,
        split: Split,
        r: &mut Resolver<'_>,
    ) -> Result<Value, MappingError> {
        let source = match (&spec.column, &spec.template, &spec.sum, &spec.value) {
            (Some(c), None, None, None) => Source::Column(r.column(c)),
            (None, Some(t), None, None) => Source::Template(parse_template(t, at, r)?),
            (None, None, Some(cols), None) => {
                if kind != Kind::Count {
                    return Err(invalid(at, "`sum` is only for counts"));
                }
                if cols.is_empty() {
                    return Err(invalid(at, "`sum` needs at least one column"));
                }
                Source::Sum(cols.iter().map(|c| (r.column(c), short(c))).collect())
            }
            (None, None, None, Some(v)) => Source::Value(v.clone()),
            _ => {
                return Err(invalid(
                    at,
                    "give exactly one of `column`, `template`, `sum`, `value`",
                ));
            }
        };
        let reads_columns = !matches!(source, Source::Value(_));
        match (&spec.split, split) {
            (Some(_), Split::No) => {
                return Err(invalid(
                    at,
                    "this field holds one value: `split` is not allowed",
                ));
            }
            (Some(s), _) if s.is_empty() => return Err(invalid(at, "`split` must not be empty")),
            (None, Split::Must) => {
                return Err(invalid(
                    at,
                    "this field is a list: give `split` (e.g. \">\")",
                ));
            }
            _ => {}
        }
        if !spec.formats.is_empty() {
            if !matches!(kind, Kind::Date | Kind::Period) {
                return Err(invalid(at, "`formats` is only for `date` and `period`"));
            }
            for f in &spec.formats {
                let bad = chrono::format::StrftimeItems::new(f)
                    .any(|i| matches!(i, chrono::format::Item::Error));
                if bad || f.is_empty() {
                    return Err(invalid(
                        &format!("{at}.formats"),
                        format!("{f:?} is not a valid strftime format"),
                    ));
                }
            }
        }
        if spec.negative == Negative::Empty && kind != Kind::Count {
            return Err(invalid(at, "`negative` is only for counts"));
        }
        if spec.unmapped == Unmapped::Reject && spec.map.is_empty() {
            return Err(invalid(at, "`unmapped = \"reject\"` needs a `map`"));
        }
        let check = |what: &str, v: &str| {
            check_kind(kind, v, &spec.formats).map_err(|e| invalid(&format!("{at}.{what}"), e))
        };
        for (from, to) in &spec.map {
            if !to.is_empty() {
                check(&format!("map.{from:?}"), to)?;
            }
        }
        if let Some(d) = &spec.default {
            check("default", d)?;
        }
        if let Source::Value(v) = &source {
            let pieces: Vec<&str> = match &spec.split {
                Some(sep) if !sep.is_empty() => v.split(sep.as_str()).collect(),
                _ => vec![v.as_str()],
            };
            for p in pieces.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
                if !spec.map.contains_key(p) {
                    check("value", p)?;
                }
            }
        }
        let when = spec
            .when
            .iter()
            .enumerate()
            .map(|(i, c)| Cond::compile(c, &format!("{at}.when[{i}]"), r))
            .collect::<Result<_, _>>()?;
        Ok(Value {
            name: at.strip_prefix("fields.").unwrap_or(at).to_string(),
            kind,
            source,
            reads_columns,
            negative_empty: spec.negative == Negative::Empty,
            split: spec.split.clone(),
            map: spec
                .map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            unmapped: spec.unmapped,
            default: spec.default.clone(),
            formats: spec.formats.clone(),
            when,
        })
    }

    fn emit<'r>(&'r self, piece: Cow<'r, str>, out: &mut Vec<Cow<'r, str>>) -> Result<(), String> {
        match self.map.get(piece.as_ref()) {
            Some(to) if to.is_empty() => {}
            Some(to) => out.push(Cow::Borrowed(to.as_str())),
            None => match self.unmapped {
                Unmapped::Keep => out.push(piece),
                Unmapped::Empty => {}
                Unmapped::Reject => {
                    return Err(format!(
                        "{}: {:?} is not in the mapping's value map",
                        self.name,
                        short(&piece)
                    ));
                }
            },
        }
        Ok(())
    }

    /// The field's values in this row, trimmed and non-empty, after `when`, `split`, `map` and
    /// `default`.
    fn values<'r>(&'r self, f: &Fields<'r>) -> Result<Vec<Cow<'r, str>>, String> {
        let mut out = self.given(f)?;
        if out.is_empty()
            && let Some(d) = &self.default
        {
            out.push(Cow::Borrowed(d.as_str()));
        }
        Ok(out)
    }

    /// The values the row itself gives: as [`Value::values`], without `default`.
    fn given<'r>(&'r self, f: &Fields<'r>) -> Result<Vec<Cow<'r, str>>, String> {
        let mut out = Vec::new();
        if self.when.iter().all(|c| c.holds(f)) {
            let raw: Cow<'r, str> = match &self.source {
                Source::Column(i) => {
                    let cell = f.get(*i);
                    if self.negative_empty && is_negative_number(cell.trim()) {
                        Cow::Borrowed("")
                    } else {
                        Cow::Borrowed(cell)
                    }
                }
                Source::Value(v) => Cow::Borrowed(v.as_str()),
                Source::Template(p) => Cow::Owned(fill_template(p, f)),
                Source::Sum(cols) => {
                    let mut total: u64 = 0;
                    for (i, name) in cols {
                        let cell = f.get(*i).trim();
                        let unknown = self.negative_empty && is_negative_number(cell);
                        if !cell.is_empty() && !unknown {
                            let n = parse_whole(cell)
                                .map_err(|e| format!("{}: column {name}: {e}", self.name))?;
                            total += u64::from(n);
                        }
                    }
                    Cow::Owned(total.to_string())
                }
            };
            match (raw, &self.split) {
                (Cow::Borrowed(s), Some(sep)) => {
                    for p in s
                        .split(sep.as_str())
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                    {
                        self.emit(Cow::Borrowed(p), &mut out)?;
                    }
                }
                (Cow::Owned(s), Some(sep)) => {
                    for p in s
                        .split(sep.as_str())
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                    {
                        self.emit(Cow::Owned(p.to_string()), &mut out)?;
                    }
                }
                (Cow::Borrowed(s), None) => {
                    let s = s.trim();
                    if !s.is_empty() {
                        self.emit(Cow::Borrowed(s), &mut out)?;
                    }
                }
                (Cow::Owned(s), None) => {
                    let t = s.trim();
                    if !t.is_empty() {
                        self.emit(Cow::Owned(t.to_string()), &mut out)?;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The field's single value in this row, if any.
    fn one<'r>(&'r self, f: &Fields<'r>) -> Result<Option<Cow<'r, str>>, String> {
        Ok(self.values(f)?.into_iter().next())
    }

    /// Converts a value with the field's name in the error.
    fn parse<T>(&self, s: &str, p: impl FnOnce(&str) -> Result<T, String>) -> Result<T, String> {
        p(s).map_err(|e| format!("{}: {e}", self.name))
    }
}

/// The `citizenship`, `sex` and `age_group` of a migrant or smuggler rule, compiled (in that
/// order) at `at`.
fn profile(
    [citizenship, sex, age_group]: [&Option<ValueSpec>; 3],
    at: &str,
    r: &mut Resolver<'_>,
) -> Result<[Option<Value>; 3], MappingError> {
    Ok([
        opt_value(
            citizenship,
            &format!("{at}.citizenship"),
            Kind::Country,
            Split::May,
            r,
        )?,
        opt_value(sex, &format!("{at}.sex"), Kind::Sex, Split::May, r)?,
        opt_value(
            age_group,
            &format!("{at}.age_group"),
            Kind::AgeGroup,
            Split::May,
            r,
        )?,
    ])
}

fn opt_value(
    spec: &Option<ValueSpec>,
    at: &str,
    kind: Kind,
    split: Split,
    r: &mut Resolver<'_>,
) -> Result<Option<Value>, MappingError> {
    spec.as_ref()
        .map(|s| Value::compile(s, at, kind, split, r))
        .transpose()
}

#[derive(Debug, Clone)]
enum IdSource {
    Column(usize),
    Template(Vec<Piece>),
    Hash(Vec<usize>),
}

#[derive(Debug, Clone)]
struct FeeRule {
    amount: Value,
    currency: Value,
    scope: Value,
    payment: Option<Value>,
}

#[derive(Debug, Clone)]
struct MigrantRule {
    citizenship: Option<Value>,
    sex: Option<Value>,
    age_group: Option<Value>,
    unaccompanied: Option<Value>,
    count: Value,
    several: Option<Several>,
    remainder: Option<String>,
}

#[derive(Debug, Clone)]
struct SmugglerRule {
    citizenship: Option<Value>,
    sex: Option<Value>,
    age_group: Option<Value>,
    role: Option<Value>,
    stage: Option<Value>,
}

/// Everything a mapping does, with columns resolved.
#[derive(Debug, Clone)]
struct Rules {
    id: IdSource,
    prefix: String,
    occurrence: bool,
    skip: Vec<Cond>,
    period: Option<Value>,
    date: Option<Value>,
    agency: Option<Value>,
    country: Value,
    place_type: Option<Value>,
    mode: Option<Value>,
    dead: Option<Value>,
    missing: Option<Value>,
    note: Option<Value>,
    route: Option<Value>,
    route_modes: Option<Value>,
    corridor: Option<Value>,
    methods: Option<Value>,
    kind: RecordKind,
    fees: Vec<FeeRule>,
    migrants: Vec<MigrantRule>,
    smugglers: Vec<SmugglerRule>,
}

/// At most one field of a group may be split.
fn one_split(at: &str, fields: &[Option<&Value>]) -> Result<(), MappingError> {
    if fields
        .iter()
        .flatten()
        .filter(|v| v.split.is_some())
        .count()
        > 1
    {
        return Err(invalid(at, "only one field of a group may be `split`"));
    }
    Ok(())
}

impl Rules {
    fn compile(m: &MappingFile, r: &mut Resolver<'_>) -> Result<Rules, MappingError> {
        let s = &m.source_id;
        let id = match (&s.column, &s.template, &s.hash) {
            (Some(c), None, None) => IdSource::Column(r.column(c)),
            (None, Some(t), None) => {
                IdSource::Template(parse_template(t, "source_id.template", r)?)
            }
            (None, None, Some(cols)) if !cols.is_empty() => {
                IdSource::Hash(cols.iter().map(|c| r.column(c)).collect())
            }
            (None, None, Some(_)) => {
                return Err(invalid("source_id.hash", "name at least one column"));
            }
            _ => {
                return Err(invalid(
                    "source_id",
                    "give exactly one of `column`, `template`, `hash`",
                ));
            }
        };
        if s.prefix.chars().any(char::is_control) || s.prefix.len() > 32 {
            return Err(invalid(
                "source_id.prefix",
                "at most 32 printable characters",
            ));
        }
        let skip = m
            .skip
            .iter()
            .enumerate()
            .map(|(i, c)| Cond::compile(c, &format!("skip[{i}]"), r))
            .collect::<Result<_, _>>()?;
        let f = &m.fields;
        let country = match &f.country {
            Some(c) => Value::compile(c, "fields.country", Kind::Country, Split::No, r)?,
            None => return Err(invalid("fields", "`country` is required")),
        };
        if f.period.is_none() && f.date.is_none() {
            return Err(invalid(
                "fields",
                "give `period` or `date` (the period is then the date's month)",
            ));
        }
        let fees = m
            .fees
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("fees[{i}]");
                let rule = FeeRule {
                    amount: Value::compile(
                        &s.amount,
                        &format!("{at}.amount"),
                        Kind::Amount,
                        Split::May,
                        r,
                    )?,
                    currency: Value::compile(
                        &s.currency,
                        &format!("{at}.currency"),
                        Kind::Currency,
                        Split::May,
                        r,
                    )?,
                    scope: Value::compile(
                        &s.scope,
                        &format!("{at}.scope"),
                        Kind::Scope,
                        Split::May,
                        r,
                    )?,
                    payment: opt_value(
                        &s.payment,
                        &format!("{at}.payment"),
                        Kind::Payment,
                        Split::May,
                        r,
                    )?,
                };
                one_split(
                    &at,
                    &[
                        Some(&rule.amount),
                        Some(&rule.currency),
                        Some(&rule.scope),
                        rule.payment.as_ref(),
                    ],
                )?;
                Ok(rule)
            })
            .collect::<Result<_, MappingError>>()?;
        let migrants = m
            .migrants
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("migrants[{i}]");
                let [citizenship, sex, age_group] =
                    profile([&s.citizenship, &s.sex, &s.age_group], &at, r)?;
                let rule = MigrantRule {
                    citizenship,
                    sex,
                    age_group,
                    unaccompanied: opt_value(&s.unaccompanied, &format!("{at}.unaccompanied"), Kind::Bool, Split::May, r)?,
                    count: Value::compile(&s.count, &format!("{at}.count"), Kind::Count, Split::No, r)?,
                    several: s.several,
                    remainder: s.remainder.clone(),
                };
                let fields = [
                    rule.citizenship.as_ref(),
                    rule.sex.as_ref(),
                    rule.age_group.as_ref(),
                    rule.unaccompanied.as_ref(),
                ];
                one_split(&at, &fields)?;
                let split = fields.iter().flatten().find(|v| v.split.is_some());
                match (split, rule.several, &rule.remainder) {
                    (Some(_), None, _) => {
                        return Err(invalid(
                            &at,
                            "a split field needs `several = \"one_each\"` or `\"repeat\"`: how is the count shared?",
                        ));
                    }
                    (None, Some(_), _) => {
                        return Err(invalid(&format!("{at}.several"), "only meaningful with a split field"));
                    }
                    (Some(v), Some(Several::OneEach), Some(rem)) => {
                        check_kind(v.kind, rem, &[])
                            .map_err(|e| invalid(&format!("{at}.remainder"), e))?;
                    }
                    (_, _, Some(_)) => {
                        return Err(invalid(
                            &format!("{at}.remainder"),
                            "only meaningful with `several = \"one_each\"`",
                        ));
                    }
                    _ => {}
                }
                Ok(rule)
            })
            .collect::<Result<_, MappingError>>()?;
        let smugglers = m
            .smugglers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("smugglers[{i}]");
                let [citizenship, sex, age_group] =
                    profile([&s.citizenship, &s.sex, &s.age_group], &at, r)?;
                let rule = SmugglerRule {
                    citizenship,
                    sex,
                    age_group,
                    role: opt_value(&s.role, &format!("{at}.role"), Kind::Role, Split::May, r)?,
                    stage: opt_value(&s.stage, &format!("{at}.stage"), Kind::Stage, Split::May, r)?,
                };
                if rule.role.is_none() || rule.stage.is_none() {
                    return Err(invalid(&at, "`role` and `stage` are required"));
                }
                one_split(
                    &at,
                    &[
                        rule.citizenship.as_ref(),
                        rule.sex.as_ref(),
                        rule.age_group.as_ref(),
                        rule.role.as_ref(),
                        rule.stage.as_ref(),
                    ],
                )?;
                Ok(rule)
            })
            .collect::<Result<_, MappingError>>()?;
        Ok(Rules {
            id,
            prefix: s.prefix.clone(),
            occurrence: s.occurrence,
            skip,
            period: opt_value(&f.period, "fields.period", Kind::Period, Split::No, r)?,
            date: opt_value(&f.date, "fields.date", Kind::Date, Split::No, r)?,
            agency: opt_value(&f.agency, "fields.agency", Kind::Text, Split::No, r)?,
            country,
            place_type: opt_value(
                &f.place_type,
                "fields.place_type",
                Kind::PlaceType,
                Split::No,
                r,
            )?,
            mode: opt_value(&f.mode, "fields.mode", Kind::Mode, Split::No, r)?,
            dead: opt_value(&f.dead, "fields.dead", Kind::Count, Split::No, r)?,
            missing: opt_value(&f.missing, "fields.missing", Kind::Count, Split::No, r)?,
            note: opt_value(&f.note, "fields.note", Kind::Text, Split::No, r)?,
            route: opt_value(&f.route, "fields.route", Kind::Country, Split::Must, r)?,
            route_modes: opt_value(
                &f.route_modes,
                "fields.route_modes",
                Kind::Mode,
                Split::May,
                r,
            )?,
            corridor: opt_value(&f.corridor, "fields.corridor", Kind::Corridor, Split::No, r)?,
            methods: opt_value(&f.methods, "fields.methods", Kind::Method, Split::May, r)?,
            kind: m.kind,
            fees,
            migrants,
            smugglers,
        })
    }

    /// A statistics mapping makes one migrant group per row and nothing an incident has.
    fn check_statistics(&self) -> Result<(), MappingError> {
        if self.kind != RecordKind::Statistics {
            return Ok(());
        }
        let why = "a statistics row is one migrant group";
        if self.migrants.len() != 1 {
            return Err(invalid(
                "migrants",
                format!("{why}: give exactly one [[migrants]] table"),
            ));
        }
        let m = &self.migrants[0];
        if [&m.citizenship, &m.sex, &m.age_group, &m.unaccompanied]
            .into_iter()
            .flatten()
            .any(|v| v.split.is_some())
        {
            return Err(invalid(
                "migrants[0]",
                format!("{why}: no field of it may be `split`"),
            ));
        }
        for (present, what) in [
            (!self.fees.is_empty(), "fees"),
            (!self.smugglers.is_empty(), "smugglers"),
            (self.methods.is_some(), "fields.methods"),
            (self.dead.is_some(), "fields.dead"),
            (self.missing.is_some(), "fields.missing"),
        ] {
            if present {
                return Err(invalid(
                    what,
                    format!("{why}, without fees, smugglers, methods, dead or missing"),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The public face.

/// A checked mapping, ready to bind to a file's header.
#[derive(Clone)]
pub struct Mapping {
    spec: MappingFile,
    delimiter: u8,
    limits: RecordLimits,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("delimiter", &char::from(self.delimiter))
            .finish_non_exhaustive()
    }
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let io = |source| MappingError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_MAPPING_BYTES {
            return Err(MappingError::TooLarge(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Mapping::from_toml(&text)
    }

    /// Parses and checks a mapping from TOML text.
    pub fn from_toml(text: &str) -> Result<Mapping, MappingError> {
        let spec: MappingFile = toml::from_str(text)?;
        let delimiter = match spec.delimiter.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
            _ => {
                return Err(invalid(
                    "delimiter",
                    "must be one ASCII character other than a quote or line break",
                ));
            }
        };
        let limits = match spec.max_group_count {
            None => RecordLimits::default(),
            Some(n) => {
                RecordLimits::with_max_group_count(n).map_err(|e| invalid("max_group_count", e))?
            }
        };
        if let Some(sheet) = &spec.sheet
            && (sheet.is_empty() || sheet.chars().count() > 100)
        {
            return Err(invalid("sheet", "a sheet name has 1-100 characters"));
        }
        if spec.header_row == Some(0) {
            return Err(invalid("header_row", "rows are numbered from 1"));
        }
        let mut r = Resolver {
            header: None,
            unknown: BTreeSet::new(),
            ambiguous: None,
            used: BTreeSet::new(),
        };
        Rules::compile(&spec, &mut r)?.check_statistics()?;
        Ok(Mapping {
            spec,
            delimiter,
            limits,
        })
    }

    /// The field delimiter of the files this mapping reads.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The caps rows are checked against (`max_group_count`, or the default).
    pub fn limits(&self) -> RecordLimits {
        self.limits
    }

    /// The kind of record every row makes.
    pub fn kind(&self) -> RecordKind {
        self.spec.kind
    }

    /// Spreadsheets: the sheet the mapping names, if any.
    pub fn sheet(&self) -> Option<&str> {
        self.spec.sheet.as_deref()
    }

    /// Spreadsheets: the header's row number (from 1) the mapping gives, if any.
    pub fn header_row(&self) -> Option<u32> {
        self.spec.header_row
    }

    /// Binds the mapping to a file's header: every column named must be in it, once.
    pub(crate) fn bind(&self, header: &[String]) -> Result<Bound, MappingError> {
        let mut r = Resolver {
            header: Some(header),
            unknown: BTreeSet::new(),
            ambiguous: None,
            used: BTreeSet::new(),
        };
        let rules = Rules::compile(&self.spec, &mut r)?;
        if !r.unknown.is_empty() {
            return Err(MappingError::UnknownColumns {
                unknown: r.unknown.into_iter().collect(),
                available: header.iter().map(|h| short(h)).collect(),
            });
        }
        if let Some(a) = r.ambiguous {
            return Err(MappingError::AmbiguousColumn(a));
        }
        Ok(Bound {
            rules,
            width: header.len(),
            seen: HashMap::new(),
            reads: (0..header.len()).map(|i| r.used.contains(&i)).collect(),
            iso_dates: false,
        })
    }
}

/// What a mapped row became.
#[derive(Debug)]
pub(crate) enum Mapped {
    /// A record, not yet checked.
    Record(Box<IncidentRecord>),
    /// A row the mapping's `skip` rules exclude.
    Skipped,
}

/// A mapping bound to one file's header, with the state of its `occurrence` numbering.
#[derive(Debug)]
pub(crate) struct Bound {
    rules: Rules,
    width: usize,
    seen: HashMap<String, u32>,
    /// Per header column, whether a rule reads it.
    reads: Vec<bool>,
    /// Whether an ISO date (`YYYY-MM-DD`, or with a time) is taken in a date or period field
    /// when no `formats` entry matches: how a spreadsheet's date cells are read.
    iso_dates: bool,
}

/// Pads an `Option<Value>` lookup: a field without a rule has no value.
fn one<'r>(v: &'r Option<Value>, f: &Fields<'r>) -> Result<Option<Cow<'r, str>>, String> {
    match v {
        Some(v) => v.one(f),
        None => Ok(None),
    }
}

fn opt_parse<T>(
    v: &Option<Value>,
    f: &Fields<'_>,
    p: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match (v, one(v, f)?) {
        (Some(rule), Some(s)) => rule.parse(&s, p).map(Some),
        _ => Ok(None),
    }
}

fn count(v: &Option<Value>, f: &Fields<'_>) -> Result<u32, String> {
    Ok(opt_parse(v, f, parse_whole)?.unwrap_or(0))
}

/// A group's fields in one row: the split field's values, or one value each.
struct GroupValues<'r> {
    /// Values per field, in the group's field order.
    fields: Vec<Vec<Cow<'r, str>>>,
    /// Whether the row itself gave a value (not a `default`), per field.
    given: Vec<bool>,
    /// Index of the split field, if any.
    split: Option<usize>,
}

impl<'r> GroupValues<'r> {
    fn read(rules: &[Option<&'r Value>], f: &Fields<'r>) -> Result<GroupValues<'r>, String> {
        let mut fields = Vec::with_capacity(rules.len());
        let mut given = Vec::with_capacity(rules.len());
        let mut split = None;
        for (i, r) in rules.iter().enumerate() {
            match r {
                Some(v) => {
                    if v.split.is_some() {
                        split = Some(i);
                    }
                    let mut vals = v.given(f)?;
                    given.push(!vals.is_empty() && v.reads_columns);
                    if vals.is_empty()
                        && let Some(d) = &v.default
                    {
                        vals.push(Cow::Borrowed(d.as_str()));
                    }
                    fields.push(vals);
                }
                None => {
                    fields.push(Vec::new());
                    given.push(false);
                }
            }
        }
        Ok(GroupValues {
            fields,
            given,
            split,
        })
    }

    /// Number of groups the row makes (at least 1).
    fn n(&self) -> usize {
        self.split.map_or(1, |i| self.fields[i].len().max(1))
    }

    /// Field `field`'s value in group `k`.
    fn get(&self, field: usize, k: usize) -> Option<&str> {
        let vals = &self.fields[field];
        if Some(field) == self.split {
            vals.get(k).map(|c| c.as_ref())
        } else {
            vals.first().map(|c| c.as_ref())
        }
    }
}

fn field<T>(
    g: &GroupValues<'_>,
    rule: Option<&Value>,
    i: usize,
    k: usize,
    fallback: Option<T>,
    p: impl FnOnce(&str) -> Result<T, String>,
    what: &str,
) -> Result<T, String> {
    match (g.get(i, k), rule) {
        (Some(s), Some(rule)) => rule.parse(s, p),
        _ => fallback.ok_or_else(|| format!("{what} is empty")),
    }
}

impl Bound {
    /// Whether a rule reads column `i` of the header.
    pub(crate) fn reads(&self, i: usize) -> bool {
        self.reads.get(i).copied().unwrap_or(false)
    }

    /// Takes ISO dates in date and period fields after the mapping's own formats: a
    /// spreadsheet's date cells come as `YYYY-MM-DD` (or `YYYY-MM-DDTHH:MM:SS`).
    pub(crate) fn accept_iso_dates(&mut self) {
        self.iso_dates = true;
    }

    /// Builds the record a row describes. Errors are row rejections.
    pub(crate) fn apply(&mut self, f: &Fields<'_>) -> Result<Mapped, String> {
        if f.len() != self.width {
            return Err(format!(
                "row has {} fields, the header has {}",
                f.len(),
                self.width
            ));
        }
        let r = &self.rules;
        if r.skip.iter().any(|c| c.holds(f)) {
            return Ok(Mapped::Skipped);
        }
        let iso = self.iso_dates;
        let date = opt_parse(&r.date, f, |s| {
            parse_date(s, r.date.as_ref().map_or(&[][..], |d| &d.formats)).or_else(|e| {
                if iso {
                    parse_iso_date(s).ok_or(e)
                } else {
                    Err(e)
                }
            })
        })?;
        let period = match (&r.period, one(&r.period, f)?) {
            (Some(rule), Some(s)) => rule.parse(&s, |s| {
                parse_period(s, &rule.formats).or_else(|e| match (iso, parse_iso_date(s)) {
                    (true, Some(d)) => month_of(d).ok_or_else(|| {
                        format!("{:?} is outside the years a period may fall in", short(s))
                    }),
                    _ => Err(e),
                })
            })?,
            _ => match date {
                Some(d) => month_of(d).ok_or("date: outside the years a period may fall in")?,
                None => return Err("period: empty, and no date to take it from".into()),
            },
        };
        let country = match r.country.one(f)? {
            Some(s) => r.country.parse(&s, parse_country)?,
            None => return Err("country: empty".into()),
        };
        let route = self.route(f)?;
        let r = &self.rules;
        if r.kind == RecordKind::Statistics
            && let Some(rule) = r.migrants.first()
        {
            // A statistics table's zero cells carry no one: skipped, and counted as skipped.
            // An empty count is not a zero: it is rejected.
            match rule.count.one(f)? {
                None => {
                    return Err(format!(
                        "{}: empty (a statistics row needs its count; 0 for none)",
                        rule.count.name
                    ));
                }
                Some(s) if rule.count.parse(&s, parse_whole)? == 0 => return Ok(Mapped::Skipped),
                Some(_) => {}
            }
        }
        let mut methods = BTreeSet::new();
        if let Some(m) = &r.methods {
            for v in m.values(f)? {
                methods.insert(m.parse(&v, parse_code::<Method>)?);
            }
        }
        let record = IncidentRecord {
            kind: r.kind,
            source_id: String::new(),
            period,
            date: date.map(|d| d.format("%Y-%m-%d").to_string()),
            agency: one(&r.agency, f)?.map(Cow::into_owned),
            country,
            place_type: opt_parse(&r.place_type, f, parse_code::<PlaceType>)?,
            mode: opt_parse(&r.mode, f, parse_code::<Mode>)?,
            dead: count(&r.dead, f)?,
            missing: count(&r.missing, f)?,
            route,
            corridor: opt_parse(&r.corridor, f, parse_corridor)?,
            methods,
            fees: self.fees(f)?,
            migrants: self.migrants(f)?,
            smugglers: self.smugglers(f)?,
            note: one(&r.note, f)?.map(Cow::into_owned),
        };
        let source_id = self.source_id(f)?;
        Ok(Mapped::Record(Box::new(IncidentRecord {
            source_id,
            ..record
        })))
    }

    fn source_id(&mut self, f: &Fields<'_>) -> Result<String, String> {
        let r = &self.rules;
        let base = match &r.id {
            IdSource::Column(i) => f.get(*i).trim().to_string(),
            IdSource::Template(p) => fill_template(p, f),
            IdSource::Hash(cols) => {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                for i in cols {
                    let cell = f.get(*i).as_bytes();
                    ctx.update(&(cell.len() as u64).to_le_bytes());
                    ctx.update(cell);
                }
                hex::encode(&ctx.finish().as_ref()[..10])
            }
        };
        if base.is_empty() {
            return Err("source_id: empty".into());
        }
        let mut id = format!("{}{base}", r.prefix);
        if r.occurrence {
            let n = self.seen.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                id = format!("{id}#{n}");
            }
        }
        Ok(id)
    }

    fn route(&self, f: &Fields<'_>) -> Result<Vec<Leg>, String> {
        let r = &self.rules;
        let Some(rule) = &r.route else {
            return Ok(Vec::new());
        };
        let countries = rule
            .values(f)?
            .iter()
            .map(|c| rule.parse(c, parse_country))
            .collect::<Result<Vec<_>, _>>()?;
        if countries.is_empty() {
            return Ok(Vec::new());
        }
        if countries.len() < 2 {
            return Err("route: needs at least two countries (map an unknown one to UNK)".into());
        }
        let legs = countries.len() - 1;
        let modes = match &r.route_modes {
            Some(m) => m
                .values(f)?
                .iter()
                .map(|v| m.parse(v, parse_code::<Mode>))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let mode_of = |i: usize| match modes.len() {
            0 => Ok(None),
            1 => Ok(Some(modes[0])),
            n if n == legs => Ok(Some(modes[i])),
            n => Err(format!("route_modes: {n} mode(s) for {legs} leg(s)")),
        };
        countries
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                Ok(Leg {
                    from: w[0],
                    to: w[1],
                    mode: mode_of(i)?,
                })
            })
            .collect()
    }

    fn fees(&self, f: &Fields<'_>) -> Result<Vec<Fee>, String> {
        let mut fees = Vec::new();
        for rule in &self.rules.fees {
            let rules = [
                Some(&rule.amount),
                Some(&rule.currency),
                Some(&rule.scope),
                rule.payment.as_ref(),
            ];
            let g = GroupValues::read(&rules, f)?;
            for k in 0..g.n() {
                if g.get(0, k).is_none() {
                    continue;
                }
                fees.push(Fee {
                    amount: field(&g, rules[0], 0, k, None, parse_amount, "fee amount")?,
                    currency: field(&g, rules[1], 1, k, None, parse_code, "fee currency")?,
                    scope: field(&g, rules[2], 2, k, None, parse_code, "fee scope")?,
                    payment: field(
                        &g,
                        rules[3],
                        3,
                        k,
                        Some(PaymentMode::Unknown),
                        parse_code,
                        "fee payment",
                    )?,
                });
            }
        }
        Ok(fees)
    }

    fn migrants(&self, f: &Fields<'_>) -> Result<Vec<MigrantGroup>, String> {
        let mut groups: Vec<MigrantGroup> = Vec::new();
        for rule in &self.rules.migrants {
            let total = match rule.count.one(f)? {
                Some(s) => rule.count.parse(&s, parse_whole)?,
                None => 0,
            };
            if total == 0 {
                continue;
            }
            let rules = [
                rule.citizenship.as_ref(),
                rule.sex.as_ref(),
                rule.age_group.as_ref(),
                rule.unaccompanied.as_ref(),
            ];
            let g = GroupValues::read(&rules, f)?;
            let n = g.n();
            let make = |k: usize, count: u32| -> Result<MigrantGroup, String> {
                Ok(MigrantGroup {
                    citizenship: field(
                        &g,
                        rules[0],
                        0,
                        k,
                        Some(Country::UNKNOWN),
                        parse_country,
                        "citizenship",
                    )?,
                    sex: field(&g, rules[1], 1, k, Some(Sex::Unknown), parse_code, "sex")?,
                    age_group: field(
                        &g,
                        rules[2],
                        2,
                        k,
                        Some(AgeGroup::Unknown),
                        parse_code,
                        "age_group",
                    )?,
                    unaccompanied: field(
                        &g,
                        rules[3],
                        3,
                        k,
                        Some(false),
                        parse_bool,
                        "unaccompanied",
                    )?,
                    count,
                })
            };
            if n == 1 {
                groups.push(make(0, total)?);
                continue;
            }
            let each = match rule.several {
                Some(Several::Repeat) | None => total,
                Some(Several::OneEach) => 1,
            };
            let mut made = Vec::with_capacity(n + 1);
            for k in 0..n {
                made.push(make(k, each)?);
            }
            let given = u32::try_from(n).unwrap_or(u32::MAX);
            if let (Some(Several::OneEach), Some(rem), Some(first)) =
                (rule.several, &rule.remainder, made.first())
                && total > given
            {
                // The remainder goes to a group like the first, with the split field set to
                // `remainder`.
                let mut extra = first.clone();
                extra.count = total - given;
                match g.split {
                    Some(0) => extra.citizenship = parse_country(rem)?,
                    Some(1) => extra.sex = parse_code(rem)?,
                    Some(2) => extra.age_group = parse_code(rem)?,
                    _ => extra.unaccompanied = parse_bool(rem)?,
                }
                made.push(extra);
            }
            groups.extend(made);
        }
        // One group per profile: identical profiles (e.g. a nationality listed twice) add up.
        let mut merged: Vec<MigrantGroup> = Vec::with_capacity(groups.len());
        for g in groups {
            match merged.iter_mut().find(|m| {
                (m.citizenship, m.sex, m.age_group, m.unaccompanied)
                    == (g.citizenship, g.sex, g.age_group, g.unaccompanied)
            }) {
                Some(m) => m.count = m.count.saturating_add(g.count),
                None => merged.push(g),
            }
        }
        Ok(merged)
    }

    fn smugglers(&self, f: &Fields<'_>) -> Result<Vec<Smuggler>, String> {
        let mut out = Vec::new();
        for rule in &self.rules.smugglers {
            let rules = [
                rule.citizenship.as_ref(),
                rule.sex.as_ref(),
                rule.age_group.as_ref(),
                rule.role.as_ref(),
                rule.stage.as_ref(),
            ];
            let g = GroupValues::read(&rules, f)?;
            let reads: Vec<usize> = (0..rules.len())
                .filter(|i| rules[*i].is_some_and(|v| v.reads_columns))
                .collect();
            // A smuggler is described when a field read from the file has a value (or when
            // every field is a constant: one smuggler per row).
            if !reads.is_empty() && reads.iter().all(|i| !g.given[*i]) {
                continue;
            }
            for k in 0..g.n() {
                out.push(Smuggler {
                    citizenship: field(
                        &g,
                        rules[0],
                        0,
                        k,
                        Some(Country::UNKNOWN),
                        parse_country,
                        "smuggler citizenship",
                    )?,
                    sex: field(
                        &g,
                        rules[1],
                        1,
                        k,
                        Some(Sex::Unknown),
                        parse_code,
                        "smuggler sex",
                    )?,
                    age_group: field(
                        &g,
                        rules[2],
                        2,
                        k,
                        Some(AgeGroup::Unknown),
                        parse_code,
                        "smuggler age_group",
                    )?,
                    role: field(&g, rules[3], 3, k, None, parse_code, "smuggler role")?,
                    stage: field(&g, rules[4], 4, k, None, parse_code, "smuggler stage")?,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::rows::{CsvRows, RowStatus};

    /// Binds `mapping` to the header of `csv` and maps every row.
    fn run(mapping: &str, csv: &str) -> Result<Vec<Result<Mapped, String>>, MappingError> {
        let m = Mapping::from_toml(mapping)?;
        let mut rows = CsvRows::new(csv.as_bytes(), m.delimiter());
        let header = rows.read_header().unwrap();
        let mut bound = m.bind(&header)?;
        let mut out = Vec::new();
        while let Some(s) = rows.read().unwrap() {
            assert_eq!(s, RowStatus::Ok);
            out.push(bound.apply(&rows.fields()));
        }
        Ok(out)
    }

    fn record(m: &Result<Mapped, String>) -> &IncidentRecord {
        match m {
            Ok(Mapped::Record(r)) => r,
            other => panic!("not a record: {other:?}"),
        }
    }

    const BASIC: &str = r#"
        [source_id]
        column = "case"
        prefix = "X-"
        [fields]
        date = { column = "when", formats = ["%d/%m/%Y", "%Y-%m-%d"] }
        country = { column = "where", map = { "Thailand" = "THA", "Malaysia" = "MYS" } }
        dead = { sum = ["dead_m", "dead_f"] }
        missing = { value = 0 }
        mode = { column = "how", map = { "boat" = "sea", "Mixed or unknown" = "" }, unmapped = "reject" }
        route = { template = "{from}>{to}", split = ">", map = { "?" = "UNK" } }
        methods = { column = "methods", split = "|" }
        note = { column = "text" }
        [[migrants]]
        citizenship = { column = "nat", split = "," }
        count = { column = "people" }
        several = "one_each"
        remainder = "UNK"
        [[fees]]
        amount = { column = "fee" }
        currency = { value = "USD" }
        scope = { value = "full_journey" }
    "#;

    const HEADER: &str = "case,when,where,dead_m,dead_f,how,from,to,methods,text,nat,people,fee\n";

    #[test]
    fn a_mapping_builds_records_from_columns_templates_sums_and_constants() {
        let csv = format!(
            "{HEADER}\
             7,14/03/2024,Thailand,1,2.0,boat,MMR,?,guide_escort|corruption, by the river ,AFG,4,1500\n\
             8,2024-03-15,MYS,,,Mixed or unknown,,,,,\"AFG,IRN,IRN\",6,\n"
        );
        let rows = run(BASIC, &csv).unwrap();
        let a = record(&rows[0]);
        assert_eq!(a.source_id, "X-7");
        assert_eq!(a.date.as_deref(), Some("2024-03-14"));
        assert_eq!(a.period.to_string(), "2024-03");
        assert_eq!(a.country.as_str(), "THA");
        assert_eq!((a.dead, a.missing), (3, 0));
        assert_eq!(a.mode, Some(Mode::Sea));
        assert_eq!(a.route.len(), 1);
        assert_eq!(
            (a.route[0].from.as_str(), a.route[0].to.as_str()),
            ("MMR", "UNK")
        );
        assert_eq!(a.methods.len(), 2);
        assert_eq!(a.note.as_deref(), Some("by the river"));
        assert_eq!(a.migrants.len(), 1);
        assert_eq!(a.migrants[0].count, 4);
        assert_eq!(a.fees.len(), 1);
        assert_eq!(a.fees[0].amount, 1500.0);
        assert_eq!(a.check(), Ok(()));

        let b = record(&rows[1]);
        assert_eq!(
            (b.dead, b.mode, b.route.len(), b.fees.len()),
            (0, None, 0, 0)
        );
        // AFG 1, IRN listed twice → 2, and the remaining 3 of 6 to UNK.
        let groups: Vec<(String, u32)> = b
            .migrants
            .iter()
            .map(|g| (g.citizenship.to_string(), g.count))
            .collect();
        assert_eq!(
            groups,
            [("AFG".into(), 1), ("IRN".into(), 2), ("UNK".into(), 3)]
        );
    }

    #[test]
    fn row_errors_name_the_field_and_a_short_value() {
        let csv = format!(
            "{HEADER}\
             1,31/02/2024,Thailand,,,boat,,,,,,,\n\
             2,2024-03-01,Narnia,,,boat,,,,,,,\n\
             3,2024-03-01,THA,1.5,,boat,,,,,,,\n\
             4,2024-03-01,THA,,,by camel,,,,,,,\n\
             5,2024-03-01,THA,,,,MMR,,,,,,\n\
             ,2024-03-01,THA,,,,,,,,,,\n\
             7,2024-03-01,THA\n"
        );
        let rows = run(BASIC, &csv).unwrap();
        let errs: Vec<String> = rows.into_iter().map(|r| r.unwrap_err()).collect();
        assert!(
            errs[0].starts_with("date: \"31/02/2024\" matches none of the date formats"),
            "{}",
            errs[0]
        );
        assert_eq!(errs[1], "country: \"Narnia\" is not a valid country code");
        assert_eq!(
            errs[2],
            "dead: column dead_m: \"1.5\" is not a whole number ≥ 0"
        );
        assert_eq!(
            errs[3],
            "mode: \"by camel\" is not in the mapping's value map"
        );
        assert!(
            errs[4].starts_with("route: needs at least two countries"),
            "{}",
            errs[4]
        );
        assert_eq!(errs[5], "source_id: empty");
        assert_eq!(errs[6], "row has 3 fields, the header has 13");
    }

    #[test]
    fn skip_rules_and_when_conditions() {
        let m = r#"
            [source_id]
            hash = ["a", "b"]
            occurrence = true
            [[skip]]
            column = "kind"
            equals = ["total"]
            [fields]
            period = { column = "m", formats = ["%Y-%m", "%b %Y"] }
            country = { value = "ESP" }
            place_type = { value = "sea", when = [{ column = "kind", equals = ["boat"] }, { column = "b", empty = false }] }
        "#;
        let rows = run(m, "a,b,kind,m\nx,1,boat,2024-05\nx,1,boat,Jun 2024\nx,,boat,2024-05\ny,1,total,2024-05\nx,1,boat,2024-05\n").unwrap();
        let ids: Vec<String> = rows[..3]
            .iter()
            .map(|r| record(r).source_id.clone())
            .collect();
        assert_eq!(ids[0].len(), 20);
        assert_eq!(ids[1], format!("{}#2", ids[0]));
        assert_ne!(ids[2][..20], ids[0][..20]);
        assert_eq!(record(&rows[4]).source_id, format!("{}#3", &ids[0][..20]));
        assert_eq!(record(&rows[1]).period.to_string(), "2024-06");
        assert_eq!(record(&rows[0]).place_type, Some(PlaceType::Sea));
        assert_eq!(record(&rows[2]).place_type, None);
        assert!(matches!(rows[3], Ok(Mapped::Skipped)));
    }

    #[test]
    fn spreadsheet_dates_read_as_iso_with_or_without_a_time() {
        let d = |s: &str| parse_iso_date(s).map(|d| d.to_string());
        assert_eq!(d("2024-03-14").as_deref(), Some("2024-03-14"));
        assert_eq!(d("2024-03-14T10:30:00").as_deref(), Some("2024-03-14"));
        assert_eq!(d("2024-03-14T10:30:00.250").as_deref(), Some("2024-03-14"));
        for bad in [
            "14/03/2024",
            "2024-02-30",
            "2024-03-14 10:30:00",
            "",
            "2024-03",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
        // In a mapped row, ISO is tried after the mapping's formats only for spreadsheets.
        let m = "[source_id]\ncolumn = \"id\"\n[fields]\ncountry = { value = \"THA\" }\ndate = { column = \"d\", formats = [\"%d/%m/%Y\"] }\n";
        let rows = run(m, "id,d\n1,2024-03-14T08:00:00\n2,14/03/2024\n").unwrap();
        assert!(
            rows[0]
                .as_ref()
                .unwrap_err()
                .contains("matches none of the date formats")
        );
        assert_eq!(record(&rows[1]).date.as_deref(), Some("2024-03-14"));
        let mapping = Mapping::from_toml(m).unwrap();
        let header: Vec<String> = ["id", "d"].map(String::from).into();
        let mut bound = mapping.bind(&header).unwrap();
        bound.accept_iso_dates();
        let text = "12024-03-14T08:00:00";
        let ends = [1, text.len()];
        let fields = Fields::new(text, &ends);
        match bound.apply(&fields).unwrap() {
            Mapped::Record(r) => assert_eq!(r.date.as_deref(), Some("2024-03-14")),
            Mapped::Skipped => panic!("skipped"),
        }
        assert!(bound.reads(0) && bound.reads(1) && !bound.reads(2));
    }

    #[test]
    fn negative_counts_can_mean_unknown() {
        let m = r#"
            [source_id]
            column = "id"
            [fields]
            period = { value = "2024-01" }
            country = { value = "THA" }
            dead = { column = "dead", negative = "empty", default = 1 }
            [[migrants]]
            count = { sum = ["dead", "surv"], negative = "empty" }
        "#;
        let rows = run(m, "id,dead,surv\n1,-1,\n2,2.0,-1.0\n3,2,-x\n").unwrap();
        assert_eq!(record(&rows[0]).dead, 1);
        assert_eq!(record(&rows[1]).migrants[0].count, 2);
        assert!(
            rows[2]
                .as_ref()
                .unwrap_err()
                .contains("\"-x\" is not a whole number")
        );
        let strict = m.replace(", negative = \"empty\" }", " }");
        let rows = run(&strict, "id,dead,surv\n2,2.0,-1.0\n").unwrap();
        assert!(
            rows[0]
                .as_ref()
                .unwrap_err()
                .contains("\"-1.0\" is not a whole number")
        );
        assert!(
            load_err(&format!(
                "{MIN}note = {{ column = \"n\", negative = \"empty\" }}\n"
            ))
            .contains("only for counts")
        );
    }

    #[test]
    fn route_modes_apply_per_leg_or_to_every_leg() {
        let m = r#"
            [source_id]
            column = "id"
            [fields]
            period = { value = "2024-01" }
            country = { value = "THA" }
            route = { column = "route", split = "-" }
            route_modes = { column = "modes", split = "/" }
        "#;
        let rows = run(m, "id,route,modes\n1,MMR-THA-MYS,land\n2,MMR-THA-MYS,land/sea\n3,MMR-THA-MYS,land/sea/air\n4,,\n").unwrap();
        let legs = &record(&rows[0]).route;
        assert_eq!(
            (legs[0].mode, legs[1].mode),
            (Some(Mode::Land), Some(Mode::Land))
        );
        let legs = &record(&rows[1]).route;
        assert_eq!(
            (legs[0].mode, legs[1].mode),
            (Some(Mode::Land), Some(Mode::Sea))
        );
        assert_eq!(
            rows[2].as_ref().unwrap_err(),
            "route_modes: 3 mode(s) for 2 leg(s)"
        );
        assert!(record(&rows[3]).route.is_empty());
    }

    #[test]
    fn smugglers_appear_only_when_described() {
        let m = r#"
            [source_id]
            column = "id"
            [fields]
            period = { value = "2024-01" }
            country = { value = "THA" }
            [[smugglers]]
            citizenship = { column = "s_nat", split = ";" }
            role = { column = "s_role", default = "other" }
            stage = { value = "arrested" }
        "#;
        let rows = run(m, "id,s_nat,s_role\n1,,\n2,THA;MMR,guide\n3,LAO,\n").unwrap();
        assert!(record(&rows[0]).smugglers.is_empty());
        let s = &record(&rows[1]).smugglers;
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[1].citizenship.as_str(), s[1].role),
            ("MMR", SmugglerRole::Guide)
        );
        assert_eq!(record(&rows[2]).smugglers[0].role, SmugglerRole::Other);
    }

    fn load_err(toml: &str) -> String {
        Mapping::from_toml(toml).unwrap_err().to_string()
    }

    const MIN: &str = "[source_id]\ncolumn = \"id\"\n[fields]\nperiod = { column = \"m\" }\ncountry = { column = \"c\" }\n";

    #[test]
    fn mappings_are_checked_at_load_with_clear_messages() {
        assert!(Mapping::from_toml(MIN).is_ok());
        for (extra, want) in [
            (
                "place_typ = { value = \"sea\" }",
                "unknown field `place_typ`",
            ),
            (
                "mode = { value = \"boat\" }",
                "fields.mode.value: \"boat\" is not a valid mode code",
            ),
            (
                "mode = { column = \"x\", map = { \"Boat\" = \"ship\" } }",
                "fields.mode.map.\"Boat\": \"ship\" is not a valid mode code",
            ),
            (
                "mode = { column = \"x\", default = \"ship\" }",
                "fields.mode.default",
            ),
            (
                "mode = { column = \"x\", value = \"sea\" }",
                "exactly one of",
            ),
            (
                "mode = { column = \"x\", colour = 1 }",
                "unknown field `colour`",
            ),
            (
                "mode = { column = \"x\", split = \",\" }",
                "`split` is not allowed",
            ),
            ("route = { column = \"x\" }", "give `split`"),
            ("note = { sum = [\"a\"] }", "`sum` is only for counts"),
            ("dead = { sum = [] }", "at least one column"),
            (
                "dead = { column = \"x\", formats = [\"%Y\"] }",
                "`formats` is only for",
            ),
            (
                "date = { column = \"x\", formats = [\"%Q\"] }",
                "fields.date.formats: \"%Q\" is not a valid strftime format",
            ),
            ("agency = { template = \"{a\" }", "is not closed"),
            ("agency = { template = \"a}\" }", "has no `{`"),
            ("agency = { template = \"{}\" }", "names no column"),
            (
                "mode = { column = \"x\", unmapped = \"reject\" }",
                "needs a `map`",
            ),
            (
                "mode = { column = \"x\", unmapped = \"drop\" }",
                "unknown variant `drop`",
            ),
            (
                "mode = { column = \"x\", when = [{ column = \"y\" }] }",
                "fields.mode.when[0]: a condition needs exactly one",
            ),
        ] {
            let e = load_err(&format!("{MIN}{extra}\n"));
            assert!(e.contains(want), "{extra}: {e}");
        }
        assert!(
            load_err("[source_id]\ncolumn = \"id\"\n[fields]\nperiod = { column = \"m\" }\n")
                .contains("`country` is required")
        );
        assert!(
            load_err("[source_id]\ncolumn = \"id\"\n[fields]\ncountry = { column = \"c\" }\n")
                .contains("give `period` or `date`")
        );
        assert!(
            load_err(
                "[source_id]\n[fields]\ncountry = { column = \"c\" }\ndate = { column = \"d\" }\n"
            )
            .contains("source_id: give exactly one")
        );
        assert!(load_err(&format!("delimiter = \";;\"\n{MIN}")).contains("delimiter"));
        assert!(load_err("this is not toml").contains("mapping is not valid"));
        let mig = "[[migrants]]\ncitizenship = { column = \"n\", split = \",\" }\ncount = { value = 1 }\n";
        assert!(load_err(&format!("{MIN}{mig}")).contains("needs `several"));
        assert!(
            load_err(&format!(
                "{MIN}{mig}several = \"repeat\"\nremainder = \"UNK\"\n"
            ))
            .contains("remainder: only meaningful")
        );
        assert!(
            load_err(&format!(
                "{MIN}{mig}several = \"one_each\"\nremainder = \"ZZZ\"\n"
            ))
            .contains("\"ZZZ\" is not a valid country")
        );
        assert!(
            Mapping::from_toml(&format!(
                "{MIN}{mig}several = \"one_each\"\nremainder = \"UNK\"\n"
            ))
            .is_ok()
        );
        let smug = "[[smugglers]]\nrole = { value = \"guide\" }\n";
        assert!(load_err(&format!("{MIN}{smug}")).contains("`role` and `stage` are required"));
    }

    #[test]
    fn binding_reports_columns_missing_from_the_header() {
        let m = Mapping::from_toml(&format!(
            "{MIN}note = {{ template = \"{{where}} {{what}}\" }}\n"
        ))
        .unwrap();
        let header: Vec<String> = ["id", "m", "c", "what", "where"].map(String::from).into();
        assert!(m.bind(&header).is_ok());
        let header: Vec<String> = ["id", "month", "c"].map(String::from).into();
        let e = m.bind(&header).unwrap_err().to_string();
        assert_eq!(
            e,
            "the mapping names column(s) not in the file's header: m, what, where (the header has: id, month, c)"
        );
        let header: Vec<String> = ["id", "m", "c", "c", "what", "where"]
            .map(String::from)
            .into();
        assert!(matches!(m.bind(&header), Err(MappingError::AmbiguousColumn(c)) if c == "c"));
    }

    #[test]
    fn the_shipped_missing_migrants_mapping_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/samples/mappings/missing-migrants.toml"
        );
        let m = Mapping::load(Path::new(path)).unwrap();
        let header: Vec<String> = "date,month,type,route,geo,dead,cause,surv,nat,location,lon,lat"
            .split(',')
            .map(String::from)
            .collect();
        assert!(m.bind(&header).is_ok());
    }
}
