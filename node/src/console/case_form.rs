//! The ORT form as typed, and how it becomes a record: through the import's own reader.
//!
//! [`CaseForm`] is what the officer typed, kept whole (a draft is this as JSON). [`read_form`]
//! turns it into one row of the project's CSV template ([`crate::import::template`]: the same
//! cells, the same `route` / `fees` / `migrants` syntax) and has the import's [`CsvReader`] read
//! that row into an [`IncidentRecord`], then checks [`IncidentRecord::check_with`] (which the
//! store's insert runs again). Nothing here decides whether a value is acceptable: [`place`]
//! only decides which input a reason of the import's belongs to, and [`translate`] says the
//! common kinds of reason in the viewer's language.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vrs_core::codes::{
    AgeGroup, Country, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex, SmugglerRole,
    SmugglerStage,
};

use super::i18n::Tr;
use crate::import::CsvReader;
use crate::import::template::COLUMNS;
use crate::record::{IncidentRecord, MAX_ITEMS, RecordError};

// ---- the form as typed ------------------------------------------------------------------------

/// One route leg as typed: where it goes and how (it starts where the one before ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegForm {
    /// Country the leg ends in.
    pub to: String,
    /// Mode code, or "".
    pub mode: String,
}

/// One fee as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeForm {
    /// Amount.
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Scope code.
    pub scope: String,
    /// Payment mode code.
    pub payment: String,
}

impl Default for FeeForm {
    fn default() -> Self {
        FeeForm {
            amount: String::new(),
            currency: String::new(),
            scope: String::new(),
            payment: PaymentMode::Unknown.code().into(),
        }
    }
}

/// One migrant group as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupForm {
    /// Citizenship code.
    pub citizenship: String,
    /// Sex code.
    pub sex: String,
    /// Age group code.
    pub age: String,
    /// Unaccompanied minors.
    pub unaccompanied: bool,
    /// Number of people.
    pub count: String,
}

impl Default for GroupForm {
    fn default() -> Self {
        GroupForm {
            citizenship: String::new(),
            sex: Sex::Unknown.code().into(),
            age: AgeGroup::Unknown.code().into(),
            unaccompanied: false,
            count: String::new(),
        }
    }
}

/// One smuggler as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmugglerForm {
    /// Citizenship code.
    pub citizenship: String,
    /// Sex code.
    pub sex: String,
    /// Age group code.
    pub age: String,
    /// Role code, or "".
    pub role: String,
    /// Stage code, or "".
    pub stage: String,
}

impl Default for SmugglerForm {
    fn default() -> Self {
        SmugglerForm {
            citizenship: String::new(),
            sex: Sex::Unknown.code().into(),
            age: AgeGroup::Unknown.code().into(),
            role: String::new(),
            stage: String::new(),
        }
    }
}

/// The ORT form exactly as typed (a draft is this, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseForm {
    /// The agency's key for the incident.
    pub source_id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// `YYYY-MM-DD` or "".
    pub date: String,
    /// Reporting agency.
    pub agency: String,
    /// Country of the incident.
    pub country: String,
    /// Place type code or "".
    pub place_type: String,
    /// Mode code or "".
    pub mode: String,
    /// People found dead.
    pub dead: String,
    /// People missing.
    pub missing: String,
    /// Where the journey began.
    pub origin: String,
    /// Legs after the origin.
    pub legs: Vec<LegForm>,
    /// Method codes ticked.
    pub methods: Vec<String>,
    /// Fees.
    pub fees: Vec<FeeForm>,
    /// Migrant groups.
    pub groups: Vec<GroupForm>,
    /// Smugglers.
    pub smugglers: Vec<SmugglerForm>,
    /// Free text (never released).
    pub note: String,
}

/// What a post of the form asks for, besides its fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Posted {
    pub(super) form: CaseForm,
    /// `save`, `draft`, `add-leg`, `remove-fee-2`, ….
    pub(super) action: String,
    /// The draft this form was resumed from (0: none).
    pub(super) draft: i64,
    /// The stored record being edited ("" for a new one).
    pub(super) original: String,
    /// The SHA-256 of the stored record's JSON when the edit began ("" unknown): a save over a
    /// record changed since is refused instead of silently undoing the other change.
    pub(super) base: String,
}

/// The most rows of one kind a post may hold: the import refuses more than [`MAX_ITEMS`], so
/// one more is enough for its refusal to be shown; beyond, rows are not even read (a post of a
/// thousand legs gets the same refusal, not a thousand rows back).
pub(super) const MAX_ROWS_READ: usize = MAX_ITEMS + 1;

/// `leg-3-to` → (3, "to") for prefix `leg`.
fn indexed<'a>(key: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('-')?;
    let (i, field) = rest.split_once('-')?;
    let i: usize = i.parse().ok()?;
    (i < 10_000).then_some((i, field))
}

/// Rows of one kind, in index order, at most [`MAX_ROWS_READ`] of them; `over` is set when
/// more were posted.
fn rows_in_order<T>(rows: BTreeMap<usize, T>, over: &mut bool) -> Vec<T> {
    if rows.len() > MAX_ROWS_READ {
        *over = true;
    }
    rows.into_values().take(MAX_ROWS_READ).collect()
}

impl Posted {
    /// Reads a urlencoded post. Unknown fields are ignored; nothing here can fail.
    pub(super) fn parse(body: &[u8]) -> (Posted, bool) {
        let mut p = Posted::default();
        let mut legs = BTreeMap::<usize, LegForm>::new();
        let mut fees = BTreeMap::<usize, FeeForm>::new();
        let mut groups = BTreeMap::<usize, GroupForm>::new();
        let mut smugglers = BTreeMap::<usize, SmugglerForm>::new();
        let f = &mut p.form;
        for (k, v) in form_urlencoded::parse(body) {
            let v = v.into_owned();
            match k.as_ref() {
                "action" => p.action = v,
                "draft" => p.draft = v.parse().unwrap_or(0),
                "original" => p.original = v,
                "base" => p.base = v,
                "source_id" => f.source_id = v,
                "period" => f.period = v,
                "date" => f.date = v,
                "agency" => f.agency = v,
                "country" => f.country = v,
                "place_type" => f.place_type = v,
                "mode" => f.mode = v,
                "dead" => f.dead = v,
                "missing" => f.missing = v,
                "origin" => f.origin = v,
                "method" if f.methods.len() < Method::ALL.len() + 1 => f.methods.push(v),
                "note" => f.note = v,
                key => {
                    if let Some((i, field)) = indexed(key, "leg") {
                        let l = legs.entry(i).or_default();
                        match field {
                            "to" => l.to = v,
                            "mode" => l.mode = v,
                            _ => {}
                        }
                    } else if let Some((i, field)) = indexed(key, "fee") {
                        let x = fees.entry(i).or_default();
                        match field {
                            "amount" => x.amount = v,
                            "currency" => x.currency = v,
                            "scope" => x.scope = v,
                            "payment" => x.payment = v,
                            _ => {}
                        }
                    } else if let Some((i, field)) = indexed(key, "group") {
                        let g = groups.entry(i).or_default();
                        match field {
                            "citizenship" => g.citizenship = v,
                            "sex" => g.sex = v,
                            "age" => g.age = v,
                            "unaccompanied" => g.unaccompanied = !v.is_empty(),
                            "count" => g.count = v,
                            _ => {}
                        }
                    } else if let Some((i, field)) = indexed(key, "smuggler") {
                        let s = smugglers.entry(i).or_default();
                        match field {
                            "citizenship" => s.citizenship = v,
                            "sex" => s.sex = v,
                            "age" => s.age = v,
                            "role" => s.role = v,
                            "stage" => s.stage = v,
                            _ => {}
                        }
                    }
                }
            }
        }
        let mut over = false;
        f.legs = rows_in_order(legs, &mut over);
        f.fees = rows_in_order(fees, &mut over);
        f.groups = rows_in_order(groups, &mut over);
        f.smugglers = rows_in_order(smugglers, &mut over);
        (p, over)
    }
}

impl CaseForm {
    /// A new, empty form: one empty row of each kind, ready to type into.
    pub fn blank() -> CaseForm {
        CaseForm {
            legs: vec![LegForm::default()],
            fees: vec![FeeForm::default()],
            groups: vec![GroupForm::default()],
            smugglers: vec![SmugglerForm::default()],
            ..CaseForm::default()
        }
    }

    /// The form showing a stored record.
    pub fn of_record(r: &IncidentRecord) -> CaseForm {
        let opt = |o: Option<&str>| o.unwrap_or_default().to_string();
        let zero_blank = |n: u32| if n == 0 { String::new() } else { n.to_string() };
        let mut f = CaseForm {
            source_id: r.source_id.clone(),
            period: r.period.to_string(),
            date: opt(r.date.as_deref()),
            agency: opt(r.agency.as_deref()),
            country: r.country.to_string(),
            place_type: opt(r.place_type.map(|p| p.code())),
            mode: opt(r.mode.map(|m| m.code())),
            dead: zero_blank(r.dead),
            missing: zero_blank(r.missing),
            origin: r
                .route
                .first()
                .map(|l| l.from.to_string())
                .unwrap_or_default(),
            legs: r
                .route
                .iter()
                .map(|l| LegForm {
                    to: l.to.to_string(),
                    mode: opt(l.mode.map(|m| m.code())),
                })
                .collect(),
            methods: r.methods.iter().map(|m| m.code().to_string()).collect(),
            fees: r
                .fees
                .iter()
                .map(|x| FeeForm {
                    amount: x.amount.to_string(),
                    currency: x.currency.to_string(),
                    scope: x.scope.code().into(),
                    payment: x.payment.code().into(),
                })
                .collect(),
            groups: r
                .migrants
                .iter()
                .map(|g| GroupForm {
                    citizenship: g.citizenship.to_string(),
                    sex: g.sex.code().into(),
                    age: g.age_group.code().into(),
                    unaccompanied: g.unaccompanied,
                    count: g.count.to_string(),
                })
                .collect(),
            smugglers: r
                .smugglers
                .iter()
                .map(|s| SmugglerForm {
                    citizenship: s.citizenship.to_string(),
                    sex: s.sex.code().into(),
                    age: s.age_group.code().into(),
                    role: s.role.code().into(),
                    stage: s.stage.code().into(),
                })
                .collect(),
            note: opt(r.note.as_deref()),
        };
        // Keep one row of each kind to type into.
        if f.legs.is_empty() {
            f.legs.push(LegForm::default());
        }
        if f.fees.is_empty() {
            f.fees.push(FeeForm::default());
        }
        if f.groups.is_empty() {
            f.groups.push(GroupForm::default());
        }
        if f.smugglers.is_empty() {
            f.smugglers.push(SmugglerForm::default());
        }
        f
    }

    /// Adds or removes a row for a row button; whether `action` was one.
    pub(super) fn apply_row_action(&mut self, action: &str) -> bool {
        fn add<T: Default>(rows: &mut Vec<T>) {
            if rows.len() < MAX_ITEMS {
                rows.push(T::default());
            }
        }
        fn remove<T>(rows: &mut Vec<T>, i: &str) {
            if let Ok(i) = i.parse::<usize>()
                && i < rows.len()
            {
                rows.remove(i);
            }
        }
        match action {
            "add-leg" => add(&mut self.legs),
            "add-fee" => add(&mut self.fees),
            "add-group" => add(&mut self.groups),
            "add-smuggler" => add(&mut self.smugglers),
            a => {
                if let Some(i) = a.strip_prefix("remove-leg-") {
                    remove(&mut self.legs, i)
                } else if let Some(i) = a.strip_prefix("remove-fee-") {
                    remove(&mut self.fees, i)
                } else if let Some(i) = a.strip_prefix("remove-group-") {
                    remove(&mut self.groups, i)
                } else if let Some(i) = a.strip_prefix("remove-smuggler-") {
                    remove(&mut self.smugglers, i)
                } else {
                    return false;
                }
            }
        }
        true
    }
}

// ---- form → template row → the import's reader --------------------------------------------

/// Which form row each entry of a list cell came from (empty rows are left out of the cell,
/// as the import's reader leaves out empty entries).
#[derive(Debug, Default)]
pub(super) struct RowMap {
    /// Route stops: 0 is the origin, `i + 1` leg `i`'s destination (`None`: origin).
    legs: Vec<usize>,
    fees: Vec<usize>,
    groups: Vec<usize>,
    smugglers: Vec<usize>,
}

pub(super) fn code_text(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

impl CaseForm {
    /// The template row this form stands for, cell by cell in [`COLUMNS`] order, and which form
    /// row each list entry came from.
    fn template_row(&self) -> ([String; COLUMNS.len()], RowMap) {
        let mut map = RowMap::default();
        let legs: Vec<(usize, &LegForm)> = self
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.to.trim().is_empty() || !l.mode.trim().is_empty())
            .collect();
        let (route, route_modes) = if self.origin.trim().is_empty() && legs.is_empty() {
            (String::new(), String::new())
        } else {
            let mut stops = vec![code_text(&self.origin)];
            stops.extend(legs.iter().map(|(_, l)| code_text(&l.to)));
            map.legs = legs.iter().map(|(i, _)| *i).collect();
            let modes: Vec<&str> = legs.iter().map(|(_, l)| l.mode.trim()).collect();
            let modes = if modes.iter().all(|m| m.is_empty()) {
                String::new()
            } else {
                modes.join(";")
            };
            (stops.join(">"), modes)
        };
        let fees: Vec<String> = self
            .fees
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != FeeForm::default())
            .map(|(i, x)| {
                map.fees.push(i);
                let payment = if x.payment.trim().is_empty() {
                    PaymentMode::Unknown.code()
                } else {
                    x.payment.trim()
                };
                format!(
                    "{} {} {} {payment}",
                    x.amount.trim(),
                    code_text(&x.currency),
                    x.scope.trim()
                )
            })
            .collect();
        let groups: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| **g != GroupForm::default())
            .map(|(i, g)| {
                map.groups.push(i);
                let u = if g.unaccompanied { ":U" } else { "" };
                format!(
                    "{}:{}:{}{u}:{}",
                    code_text(&g.citizenship),
                    g.sex.trim(),
                    g.age.trim(),
                    g.count.trim()
                )
            })
            .collect();
        let smugglers: Vec<String> = self
            .smugglers
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != SmugglerForm::default())
            .map(|(i, s)| {
                map.smugglers.push(i);
                format!(
                    "{}:{}:{}:{}:{}",
                    code_text(&s.citizenship),
                    s.sex.trim(),
                    s.age.trim(),
                    s.role.trim(),
                    s.stage.trim()
                )
            })
            .collect();
        let cells = [
            self.source_id.trim().to_string(),
            self.period.trim().to_string(),
            self.date.trim().to_string(),
            self.agency.trim().to_string(),
            code_text(&self.country),
            self.place_type.trim().to_string(),
            self.mode.trim().to_string(),
            self.dead.trim().to_string(),
            self.missing.trim().to_string(),
            route,
            route_modes,
            self.methods
                .iter()
                .map(|m| m.trim())
                .collect::<Vec<_>>()
                .join(";"),
            fees.join(";"),
            groups.join(";"),
            smugglers.join(";"),
            self.note.clone(),
        ];
        (cells, map)
    }

    /// Values that would change the shape of the template row (a `;` in a code splits an
    /// entry in two, a `>` adds a route stop): they cannot be codes, and the import's own code
    /// parser says so for the input that holds them.
    fn structural_errors(&self) -> Vec<(String, String)> {
        fn bad(s: &str, seps: &[char]) -> bool {
            s.chars().any(|c| seps.contains(&c) || c.is_control())
                || s.trim().chars().any(char::is_whitespace)
        }
        fn code_error<T>(s: &str) -> String
        where
            T: std::str::FromStr<Err = vrs_core::codes::CodeError>,
        {
            crate::import::template::parse_code::<T>(s.trim())
                .err()
                .unwrap_or_default()
        }
        let mut out = Vec::new();
        let route_seps = ['>', ';'];
        if bad(&self.origin, &route_seps) {
            out.push(("origin".into(), code_error::<Country>(&self.origin)));
        }
        for (i, l) in self.legs.iter().enumerate() {
            if bad(&l.to, &route_seps) {
                out.push((format!("leg-{i}-to"), code_error::<Country>(&l.to)));
            }
            if bad(&l.mode, &route_seps) {
                out.push((format!("leg-{i}-mode"), code_error::<Mode>(&l.mode)));
            }
        }
        let list = [';', ':'];
        for (i, x) in self.fees.iter().enumerate() {
            if bad(&x.amount, &list) {
                let e = crate::import::template::parse_amount(x.amount.trim())
                    .err()
                    .unwrap_or_default();
                out.push((format!("fee-{i}-amount"), e));
            }
            if bad(&x.currency, &list) {
                out.push((
                    format!("fee-{i}-currency"),
                    code_error::<vrs_core::codes::Currency>(&x.currency),
                ));
            }
            if bad(&x.scope, &list) {
                out.push((format!("fee-{i}-scope"), code_error::<FeeScope>(&x.scope)));
            }
            if bad(&x.payment, &list) {
                out.push((
                    format!("fee-{i}-payment"),
                    code_error::<PaymentMode>(&x.payment),
                ));
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            for (field, v) in [
                ("citizenship", &g.citizenship),
                ("sex", &g.sex),
                ("age", &g.age),
            ] {
                if bad(v, &list) {
                    let e = match field {
                        "citizenship" => code_error::<Country>(v),
                        "sex" => code_error::<Sex>(v),
                        _ => code_error::<AgeGroup>(v),
                    };
                    out.push((format!("group-{i}-{field}"), e));
                }
            }
            if bad(&g.count, &list) {
                let e = crate::import::template::parse_whole(g.count.trim())
                    .err()
                    .unwrap_or_default();
                out.push((format!("group-{i}-count"), e));
            }
        }
        for (i, s) in self.smugglers.iter().enumerate() {
            for (field, v) in [
                ("citizenship", &s.citizenship),
                ("sex", &s.sex),
                ("age", &s.age),
                ("role", &s.role),
                ("stage", &s.stage),
            ] {
                if bad(v, &list) {
                    let e = match field {
                        "citizenship" => code_error::<Country>(v),
                        "sex" => code_error::<Sex>(v),
                        "age" => code_error::<AgeGroup>(v),
                        "role" => code_error::<SmugglerRole>(v),
                        _ => code_error::<SmugglerStage>(v),
                    };
                    out.push((format!("smuggler-{i}-{field}"), e));
                }
            }
        }
        for m in &self.methods {
            if bad(m, &[';']) {
                out.push(("methods".into(), code_error::<Method>(m)));
            }
        }
        for (name, v) in [
            ("place_type", &self.place_type),
            ("mode", &self.mode),
            ("country", &self.country),
        ] {
            if bad(v, &[]) {
                let e = match name {
                    "place_type" => code_error::<PlaceType>(v),
                    "mode" => code_error::<Mode>(v),
                    _ => code_error::<Country>(v),
                };
                out.push((name.to_string(), e));
            }
        }
        out
    }
}

/// Why a form was not accepted: reasons by input name, and reasons that belong to no one
/// input (shown at the top).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormErrors {
    /// Input name → reason.
    pub fields: BTreeMap<String, String>,
    /// Reasons for the form as a whole.
    pub top: Vec<String>,
}

impl FormErrors {
    pub(super) fn field(&mut self, name: String, reason: String) {
        self.fields.entry(name).or_insert(reason);
    }
}

/// A reason the import gave, and the form it came from: which input it belongs to.
#[derive(Debug)]
pub(super) enum Refused {
    /// The import's reader refused the row (a cell does not parse).
    Row(String),
    /// The record breaks a rule of [`IncidentRecord::check_with`].
    Record(RecordError),
    /// No exchange rate for this currency.
    NoRate(String),
}

/// The import's list reasons name their entry from 1 (`fees: entry 2: …`).
fn entry_of(rest: &str) -> Option<(usize, &str)> {
    let rest = rest.strip_prefix("entry ")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    let n: usize = rest[..end].parse().ok()?;
    let tail = rest[end..].trim_start_matches(':').trim_start();
    Some((n.checked_sub(1)?, tail))
}

/// The value a code error names: `"XYZ" is not a valid country code` → `XYZ`, `country`.
fn code_error_parts(reason: &str) -> Option<(String, &str)> {
    let rest = reason.strip_prefix('"')?;
    let (value, tail) = rest.split_once("\" is not a valid ")?;
    let list = tail.strip_suffix(" code")?;
    Some((value.replace("\\\"", "\""), list))
}

/// Which input of a list entry a reason is about, from the reason's kind.
fn entry_field(kind: &str, reason: &str) -> Option<&'static str> {
    if let Some((_, list)) = code_error_parts(reason) {
        return Some(match (kind, list) {
            ("fees", "currency") => "currency",
            ("fees", "fee_scope") => "scope",
            ("fees", "payment_mode") => "payment",
            (_, "country") => "citizenship",
            (_, "sex") => "sex",
            (_, "age_group") => "age",
            (_, "smuggler_role") => "role",
            (_, "smuggler_stage") => "stage",
            _ => return None,
        });
    }
    if reason.contains("is not an amount") {
        return Some("amount");
    }
    if kind == "migrants" && (reason.contains("whole number") || reason.contains("too large")) {
        return Some("count");
    }
    None
}

/// Puts each reason next to the input it is about; a reason that fits no input goes to the
/// top (never dropped).
pub(super) fn place(form: &CaseForm, map: &RowMap, refused: &Refused, t: &Tr) -> FormErrors {
    let mut e = FormErrors::default();
    let say = |reason: &str| translate(t, reason);
    match refused {
        Refused::Row(reason) => {
            let (col, rest) = reason.split_once(": ").unwrap_or(("", reason.as_str()));
            match col {
                "period" | "country" | "place_type" | "mode" | "dead" | "missing" => {
                    e.field(col.to_string(), say(rest))
                }
                "methods" => e.field("methods".into(), say(rest)),
                "route" | "route_modes" => {
                    // Which stop: the first whose value is the one named.
                    let named = code_error_parts(rest).map(|(v, _)| v);
                    let mut stops = vec![("origin".to_string(), code_text(&form.origin))];
                    for &i in &map.legs {
                        let l = &form.legs[i];
                        let value = if col == "route" {
                            code_text(&l.to)
                        } else {
                            l.mode.trim().to_string()
                        };
                        let field = if col == "route" { "to" } else { "mode" };
                        stops.push((format!("leg-{i}-{field}"), value));
                    }
                    if col == "route_modes" {
                        stops.remove(0);
                    }
                    let at = named
                        .and_then(|v| stops.iter().find(|(_, s)| *s == v))
                        .map(|(n, _)| n.clone())
                        .unwrap_or_else(|| {
                            // "needs at least two countries", "modes without a route": the
                            // first leg's destination (or the origin) is where to look.
                            map.legs
                                .first()
                                .map(|i| format!("leg-{i}-to"))
                                .unwrap_or_else(|| "origin".into())
                        });
                    e.field(at, say(rest));
                }
                "fees" | "migrants" | "smugglers" => {
                    let (prefix, rows) = match col {
                        "fees" => ("fee", &map.fees),
                        "migrants" => ("group", &map.groups),
                        _ => ("smuggler", &map.smugglers),
                    };
                    match entry_of(rest).and_then(|(n, tail)| Some((*rows.get(n)?, tail))) {
                        Some((row, tail)) => match entry_field(col, tail) {
                            Some(field) => e.field(format!("{prefix}-{row}-{field}"), say(tail)),
                            None => e.field(format!("{prefix}-{row}"), say(tail)),
                        },
                        None => e.top.push(say(reason)),
                    }
                }
                _ => e.top.push(say(reason)),
            }
        }
        Refused::Record(r) => {
            let msg = record_message(t, r);
            match r {
                RecordError::BadSourceId => e.field("source_id".into(), msg),
                RecordError::BadDate => e.field("date".into(), msg),
                RecordError::BadAgency => e.field("agency".into(), msg),
                RecordError::TooMany(what) => e.field((*what).to_string(), msg),
                RecordError::NoteTooLong => e.field("note".into(), msg),
                RecordError::BrokenRoute(_) => e.field("origin".into(), msg),
                RecordError::BadFeeAmount => {
                    let row = map.fees.iter().copied().find(|&i| {
                        form.fees[i]
                            .amount
                            .trim()
                            .parse::<f64>()
                            .map_or(true, |a| a > crate::record::MAX_FEE_AMOUNT)
                    });
                    match row {
                        Some(i) => e.field(format!("fee-{i}-amount"), msg),
                        None => e.top.push(msg),
                    }
                }
                RecordError::EmptyGroup | RecordError::OverGroupCap { .. } => {
                    let zero = matches!(r, RecordError::EmptyGroup);
                    let row = map.groups.iter().copied().find(|&i| {
                        let n = form.groups[i].count.trim().parse::<f64>().unwrap_or(0.0);
                        if zero {
                            n == 0.0
                        } else {
                            n > f64::from(crate::record::MAX_PEOPLE)
                        }
                    });
                    match row {
                        Some(i) => e.field(format!("group-{i}-count"), msg),
                        None => e.top.push(msg),
                    }
                }
                RecordError::UnaccompaniedAdult => {
                    let row = map.groups.iter().copied().find(|&i| {
                        let g = &form.groups[i];
                        g.unaccompanied && !g.age.parse::<AgeGroup>().is_ok_and(AgeGroup::is_minor)
                    });
                    match row {
                        Some(i) => e.field(format!("group-{i}-age"), msg),
                        None => e.top.push(msg),
                    }
                }
                RecordError::TooManyItems(_) | RecordError::Statistics(_) => e.top.push(msg),
            }
        }
        Refused::NoRate(currency) => {
            let msg = t.ta("case-error-no-rate", &[("currency", currency.clone())]);
            let row = map
                .fees
                .iter()
                .copied()
                .find(|&i| code_text(&form.fees[i].currency) == *currency);
            match row {
                Some(i) => e.field(format!("fee-{i}-currency"), msg),
                None => e.top.push(msg),
            }
        }
    }
    e
}

/// The import's reason in the viewer's language where it is one of the common kinds (a code
/// not in its list, a bad number, a bad month); else as the import wrote it (English).
pub(super) fn translate(t: &Tr, reason: &str) -> String {
    if let Some((value, list)) = code_error_parts(reason) {
        return t.ta(
            "case-error-code",
            &[("value", value), ("list", list.to_string())],
        );
    }
    if let Some(v) = reason.strip_suffix(" is not an amount ≥ 0") {
        return t.ta(
            "case-error-amount",
            &[("value", v.trim_matches('"').into())],
        );
    }
    if let Some(v) = reason.strip_suffix(" is not a whole number ≥ 0") {
        return t.ta("case-error-whole", &[("value", v.trim_matches('"').into())]);
    }
    if reason.contains("is not a month") || reason.contains("month") && reason.contains("YYYY") {
        return t.t("case-error-period");
    }
    reason.to_string()
}

pub(super) fn record_message(t: &Tr, r: &RecordError) -> String {
    match r {
        RecordError::BadSourceId => t.t("case-error-source-id"),
        RecordError::BadDate => t.t("case-error-date"),
        RecordError::BadAgency => t.t("case-error-agency"),
        RecordError::TooMany(_) => t.ta(
            "case-error-too-many-people",
            &[("max", t.int(u64::from(crate::record::MAX_PEOPLE)))],
        ),
        RecordError::NoteTooLong => t.ta(
            "case-error-note",
            &[("max", t.int(crate::record::MAX_NOTE_LEN as u64))],
        ),
        RecordError::BadFeeAmount => t.t("case-error-fee-amount"),
        RecordError::EmptyGroup => t.t("case-error-empty-group"),
        RecordError::UnaccompaniedAdult => t.t("case-error-unaccompanied"),
        RecordError::TooManyItems(_) => t.ta(
            "case-error-too-many-rows",
            &[("max", t.int(MAX_ITEMS as u64))],
        ),
        // Rules a form cannot break (its route always joins up; it enters incidents) or whose
        // detail is the import's own: its words.
        other => other.to_string(),
    }
}

/// The record a form stands for, read by the import's template reader: `Err` with the reasons
/// the import gives, placed on the form.
///
/// The reader stops at the first cell it cannot read. So that an officer sees every problem at
/// once, not one per save, a refused input is given a stand-in value the reader accepts (in a
/// working copy only) and the row is read again, up to [`MAX_PASSES`] times; every reason shown
/// is still the reader's own. Once the row reads, the record's cross-field rules are checked
/// the same way ([`IncidentRecord::check_with`], which the store's insert runs again).
pub(super) fn read_form(form: &CaseForm, t: &Tr) -> Result<(IncidentRecord, RowMap), FormErrors> {
    let structural = form.structural_errors();
    if !structural.is_empty() {
        let mut e = FormErrors::default();
        for (name, reason) in structural {
            e.field(name, translate(t, &reason));
        }
        return Err(e);
    }
    let mut errors = FormErrors::default();
    let mut work = form.clone();
    for _ in 0..MAX_PASSES {
        match read_row(&work, t) {
            Ok((record, map)) => {
                let rules = check_rules(&work, record, map, t);
                if errors.fields.is_empty() && errors.top.is_empty() {
                    return rules;
                }
                // Read with stand-ins: a rule it breaks is shown too, unless it is about an
                // input already refused (or the date, judged against a stand-in month).
                if let Err(more) = rules {
                    let month_stood_in = errors.fields.contains_key("period");
                    for (k, v) in more.fields {
                        if !(month_stood_in && k == "date") {
                            errors.field(k, v);
                        }
                    }
                    errors.top.extend(more.top);
                }
                return Err(errors);
            }
            Err(found) => {
                let fresh: Vec<String> = found
                    .fields
                    .keys()
                    .filter(|k| !errors.fields.contains_key(*k))
                    .cloned()
                    .collect();
                let stuck = !found.top.is_empty() || fresh.is_empty();
                errors.top.extend(found.top);
                for (k, v) in found.fields {
                    errors.field(k, v);
                }
                if stuck || !fresh.iter().all(|name| work.stand_in(name)) {
                    return Err(errors);
                }
            }
        }
    }
    Err(errors)
}

/// Most readings of one form for [`read_form`].
const MAX_PASSES: usize = 16;

/// One reading of the form's template row by the import's reader.
fn read_row(form: &CaseForm, t: &Tr) -> Result<(IncidentRecord, RowMap), FormErrors> {
    let top = |reason: String| FormErrors {
        top: vec![reason],
        ..FormErrors::default()
    };
    let (cells, map) = form.template_row();
    let mut csv = csv::WriterBuilder::new().from_writer(Vec::new());
    let bytes = csv
        .write_record(COLUMNS)
        .and_then(|()| csv.write_record(&cells))
        .map_err(|e| e.to_string())
        .and_then(|()| csv.into_inner().map_err(|e| e.to_string()))
        .map_err(top)?;
    let mut reader = CsvReader::new(bytes.as_slice()).map_err(|e| top(e.to_string()))?;
    match reader.read_record() {
        Ok(Some((_, Ok(record)))) => Ok((record, map)),
        Ok(Some((_, Err(reason)))) => Err(place(form, &map, &Refused::Row(reason), t)),
        Ok(None) => Err(top(t.t("case-error-empty"))),
        // A quoted cell with too many line breaks (the note): the reader's own words.
        Err(e) => {
            let mut errs = FormErrors::default();
            errs.field("note".into(), e.to_string());
            Err(errs)
        }
    }
}

/// The record's cross-field rules, every broken one placed: a part that breaks one is set
/// aside in a working copy and the rules checked again.
fn check_rules(
    form: &CaseForm,
    record: IncidentRecord,
    map: RowMap,
    t: &Tr,
) -> Result<(IncidentRecord, RowMap), FormErrors> {
    let limits = crate::record::RecordLimits::default();
    let mut errors = FormErrors::default();
    let mut work = record.clone();
    for _ in 0..MAX_PASSES {
        let Err(rule) = work.check_with(&limits) else {
            break;
        };
        let found = place(form, &map, &Refused::Record(rule.clone()), t);
        let before = errors.fields.len() + errors.top.len();
        errors.top.extend(found.top);
        for (k, v) in found.fields {
            errors.field(k, v);
        }
        let set_aside = match rule {
            RecordError::BadDate => work.date.take().is_some(),
            RecordError::BadAgency => work.agency.take().is_some(),
            RecordError::NoteTooLong => work.note.take().is_some(),
            RecordError::TooMany("dead") => std::mem::take(&mut work.dead) > 0,
            RecordError::TooMany(_) => std::mem::take(&mut work.missing) > 0,
            RecordError::EmptyGroup | RecordError::OverGroupCap { .. } => {
                let n = work.migrants.len();
                work.migrants
                    .retain(|g| g.count > 0 && g.count <= limits.max_group_count());
                work.migrants.len() < n
            }
            RecordError::UnaccompaniedAdult => {
                let mut changed = false;
                for g in &mut work.migrants {
                    if g.unaccompanied && !g.age_group.is_minor() {
                        g.unaccompanied = false;
                        changed = true;
                    }
                }
                changed
            }
            RecordError::BadFeeAmount => {
                let n = work.fees.len();
                work.fees.retain(|f| {
                    f.amount.is_finite()
                        && (0.0..=crate::record::MAX_FEE_AMOUNT).contains(&f.amount)
                });
                work.fees.len() < n
            }
            _ => false,
        };
        if !set_aside || errors.fields.len() + errors.top.len() == before {
            break;
        }
    }
    if errors.fields.is_empty() && errors.top.is_empty() {
        Ok((record, map))
    } else {
        Err(errors)
    }
}

impl CaseForm {
    /// Gives input `name` a value the import's reader accepts, in a working copy, so that the
    /// next reading reaches the next problem; whether there is such a value.
    fn stand_in(&mut self, name: &str) -> bool {
        let mut parts = name.splitn(3, '-');
        let (kind, row, field) = (parts.next(), parts.next(), parts.next());
        let row: Option<usize> = row.and_then(|r| r.parse().ok());
        let unknown = || Country::UNKNOWN.to_string();
        match (kind, row, field) {
            (Some("period"), None, None) => self.period = "2000-01".into(),
            (Some("country"), None, None) => self.country = unknown(),
            (Some("origin"), None, None) => self.origin = unknown(),
            (Some("place_type"), None, None) => self.place_type.clear(),
            (Some("mode"), None, None) => self.mode.clear(),
            (Some("dead"), None, None) => self.dead.clear(),
            (Some("missing"), None, None) => self.missing.clear(),
            (Some("methods"), None, None) => self.methods.clear(),
            (Some("leg"), Some(i), f) if i < self.legs.len() => match f {
                Some("to") => self.legs[i].to = unknown(),
                Some("mode") => self.legs[i].mode.clear(),
                _ => return false,
            },
            (Some("fee"), Some(i), f) if i < self.fees.len() => {
                let x = &mut self.fees[i];
                match f {
                    Some("amount") => x.amount = "0".into(),
                    Some("currency") => x.currency = "USD".into(),
                    Some("scope") => x.scope = FeeScope::ALL[0].code().into(),
                    Some("payment") => x.payment = PaymentMode::Unknown.code().into(),
                    // The entry as a whole: left out of the next reading.
                    _ => *x = FeeForm::default(),
                }
            }
            (Some("group"), Some(i), f) if i < self.groups.len() => {
                let g = &mut self.groups[i];
                match f {
                    Some("citizenship") => g.citizenship = unknown(),
                    Some("sex") => g.sex = Sex::Unknown.code().into(),
                    Some("age") => g.age = AgeGroup::Unknown.code().into(),
                    Some("count") => g.count = "1".into(),
                    _ => *g = GroupForm::default(),
                }
            }
            (Some("smuggler"), Some(i), f) if i < self.smugglers.len() => {
                let s = &mut self.smugglers[i];
                match f {
                    Some("citizenship") => s.citizenship = unknown(),
                    Some("sex") => s.sex = Sex::Unknown.code().into(),
                    Some("age") => s.age = AgeGroup::Unknown.code().into(),
                    Some("role") => s.role = SmugglerRole::ALL[0].code().into(),
                    Some("stage") => s.stage = SmugglerStage::ALL[0].code().into(),
                    _ => *s = SmugglerForm::default(),
                }
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::{Catalog, Lang};
    use crate::record::tests::sample;

    fn tr() -> Tr {
        Tr::new(Catalog::load().unwrap(), Lang::En)
    }

    #[test]
    fn a_record_shown_in_the_form_reads_back_the_same() {
        let mut r = sample();
        r.dead = 2;
        r.note = Some("two lines\nand \"quotes\", commas; colons: > signs".into());
        let form = CaseForm::of_record(&r);
        let (back, _) = read_form(&form, &tr()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn every_refused_input_is_named_in_one_reading() {
        let mut form = CaseForm::of_record(&sample());
        form.country = "XYZ".into();
        form.legs[1].to = "QQQ".into();
        form.fees[0].currency = "ABC".into();
        form.groups[0].count = "many".into();
        form.date = "2024-02-30".into();
        let e = read_form(&form, &tr()).unwrap_err();
        let names: Vec<&str> = e.fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "country",
                "date",
                "fee-0-currency",
                "group-0-count",
                "leg-1-to"
            ],
            "{e:?}"
        );
        assert!(e.fields["country"].contains("\"XYZ\" is not a valid country code"));
        assert!(e.top.is_empty(), "{e:?}");
    }

    #[test]
    fn a_rule_is_placed_on_the_row_that_breaks_it() {
        let mut form = CaseForm::of_record(&sample());
        form.groups.push(GroupForm {
            citizenship: "MMR".into(),
            sex: "F".into(),
            age: "25-34".into(),
            unaccompanied: true,
            count: "2".into(),
        });
        form.groups.push(GroupForm {
            count: "0".into(),
            citizenship: "MMR".into(),
            ..GroupForm::default()
        });
        let e = read_form(&form, &tr()).unwrap_err();
        assert!(e.fields.contains_key("group-1-age"), "{e:?}");
        assert!(e.fields.contains_key("group-2-count"), "{e:?}");
    }

    #[test]
    fn empty_rows_are_left_out_and_separators_cannot_make_rows() {
        let mut form = CaseForm::of_record(&sample());
        form.fees.push(FeeForm::default());
        form.smugglers.push(SmugglerForm::default());
        let (r, _) = read_form(&form, &tr()).unwrap();
        assert_eq!(r, sample(), "the empty rows added nothing");
        form.origin = "MMR>THA".into();
        form.groups[0].citizenship = "MMR:F:0-13:1;MMR".into();
        let e = read_form(&form, &tr()).unwrap_err();
        assert!(e.fields.contains_key("origin") && e.fields.contains_key("group-0-citizenship"));
    }

    #[test]
    fn a_post_reads_rows_in_order_and_no_more_than_the_import_allows() {
        let (p, over) = Posted::parse(b"leg-1-to=B&leg-0-to=A&leg-10000-to=Z&action=save&method=x");
        assert!(!over);
        assert_eq!(
            p.form
                .legs
                .iter()
                .map(|l| l.to.as_str())
                .collect::<Vec<_>>(),
            ["A", "B"]
        );
        let many: String = (0..1000).map(|i| format!("fee-{i}-amount=1&")).collect();
        let (p, over) = Posted::parse(many.as_bytes());
        assert!(over);
        assert_eq!(p.form.fees.len(), MAX_ROWS_READ);
    }
}
