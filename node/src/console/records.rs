//! The ORT (Online Reporting Template) form and the case pages: enter one incident with its
//! route, methods, fees, migrant groups and smugglers; list, search, edit, soft delete and
//! restore records; drafts; and, under `[console] review_records = true`, a reviewer's approval
//! before a clerk's record counts (docs/CONSOLE.md, "Cases").
//!
//! **One validation path.** The form does not check records itself. What was typed becomes one
//! row of the project's CSV template ([`crate::import::template`]: the same cells, the same
//! `route` / `fees` / `migrants` syntax), and that row is read by the import's own
//! [`crate::import::CsvReader`] into an [`IncidentRecord`] ([`super::case_form`]), then written
//! by the import's own [`ImportTx::insert`] (which runs [`IncidentRecord::check_with`] and the
//! FX conversion) in an import run named `console:<user>`. A value the import refuses is
//! refused here with the same reason, beside the input it is about. The form's one convenience
//! before that: text boxes are trimmed (the note is kept as typed) and country and currency
//! codes upper-cased.
//!
//! Adding and removing rows needs no script (the console's policy forbids scripts): the row
//! buttons are submit buttons that bring the same form back with everything typed kept.
//!
//! Where things live: counted records in the store; drafts (possibly invalid, as typed),
//! records awaiting review and soft-deleted records (the whole record as JSON, with who and
//! when) in `console.sqlite`, which no query reads. An edit is a removal and an insert in one
//! store transaction; a soft delete removes the record from the store in one transaction. Both
//! move the store's data version on, so an old release is never replayed for the new data.
//! Every change is in the console's hash-chained change log with who, when, and the SHA-256 of
//! the record's JSON.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use vrs_core::codes::{
    AgeGroup, Country, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex, SmugglerRole,
    SmugglerStage,
};
use vrs_core::period::Month;

use super::accounts::Role;
use super::case_form::{
    CaseForm, FormErrors, Posted, Refused, code_text, place, read_form, record_message,
};
use super::changelog;
use super::db::ConsoleDb;
use super::i18n::Tr;
use super::pages::{Frame, Page, render};
use super::web::{self, Refusal, Viewer};
use super::{Console, ConsoleError, blocking};
use crate::record::{IncidentRecord, MAX_ITEMS, RecordKind};
use crate::store::{ImportCounts, ImportTx, Inserted, RecordFilter, RecordRow, Store, StoreError};

/// Records on one page of the case list.
pub const LIST_PAGE_ROWS: u32 = 50;

/// The case pages' routes (merged into the console's router, behind its guard).
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/cases", get(list))
        .route("/cases/new", get(new_form))
        .route("/cases/edit", get(edit_form))
        .route("/cases/form", post(submit))
        .route("/cases/delete", post(delete))
        .route("/cases/deleted", get(deleted))
        .route("/cases/restore", post(restore))
        .route("/cases/review", get(review))
        .route("/cases/review/{id}/{action}", post(review_action))
        .route("/cases/drafts/{id}/discard", post(discard))
}

/// How a store write of a record went.
enum Written {
    /// Done (committed, or, for a trial, would be), with the version replaced, if any (read
    /// in the same transaction, so it is the one the edit replaced).
    Done(Option<IncidentRecord>),
    /// The form's record is refused.
    Refused(FormErrors),
}

/// Hex SHA-256 of a record's JSON: what the change log commits to without holding the record.
fn digest(r: &IncidentRecord) -> String {
    let json = serde_json::to_vec(r).unwrap_or_default();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &json))
}

/// Writes `record` through the import (replacing `replaces` when editing) in one store
/// transaction named `console:<user>`; with `trial`, everything is checked and rolled back.
/// The stored record an edit replaces, and the digest it had when the edit began ("": not
/// checked).
#[derive(Debug, Clone, Copy)]
struct Replacing<'a> {
    source: &'a str,
    base: &'a str,
}

fn write_record(
    console: &Console,
    user: &str,
    record: &IncidentRecord,
    replaces: Option<Replacing<'_>>,
    trial: bool,
    refuse: impl Fn(Refused) -> FormErrors,
    t: &Tr,
) -> Result<Written, ConsoleError> {
    let mut store = Store::open(&console.config.data_dir())?;
    store.set_clock(console.clock.clone());
    let fx = &console.config.file.fx;
    let mut tx = store.begin_import(&format!("console:{user}"), &digest(record), fx)?;
    let mut old = None;
    if let Some(r) = replaces {
        old = tx.record(r.source)?;
        let changed = old
            .as_ref()
            .is_some_and(|o| !r.base.is_empty() && digest(o) != r.base);
        if changed {
            return Ok(Written::Refused(FormErrors {
                top: vec![t.t("case-error-changed")],
                ..FormErrors::default()
            }));
        }
        if !tx.remove(r.source)? {
            return Ok(Written::Refused(FormErrors {
                top: vec![t.t("case-error-gone")],
                ..FormErrors::default()
            }));
        }
    }
    let inserted = match tx.insert(record) {
        Ok(i) => i,
        Err(StoreError::Record(r)) => return Ok(Written::Refused(refuse(Refused::Record(r)))),
        Err(StoreError::NoRate(c)) => return Ok(Written::Refused(refuse(Refused::NoRate(c)))),
        Err(e) => return Err(e.into()),
    };
    if inserted == Inserted::Duplicate {
        let mut e = FormErrors::default();
        e.field("source_id".into(), t.t("case-error-duplicate"));
        return Ok(Written::Refused(e));
    }
    if trial {
        tx.rollback()?;
    } else {
        tx.commit(ImportCounts {
            imported: 1,
            ..ImportCounts::default()
        })?;
    }
    Ok(Written::Done(old))
}

/// Runs the removal of one record in its own store transaction: whether there was one.
fn remove_record(console: &Console, user: &str, source_id: &str) -> Result<bool, ConsoleError> {
    let mut store = Store::open(&console.config.data_dir())?;
    store.set_clock(console.clock.clone());
    let fx = &console.config.file.fx;
    let mut tx: ImportTx<'_> = store.begin_import(&format!("console:{user}:delete"), "", fx)?;
    if tx.remove(source_id)? {
        tx.commit(ImportCounts::default())?;
        Ok(true)
    } else {
        tx.rollback()?;
        Ok(false)
    }
}

/// What a record holds, in words, for the change log.
fn summary(r: &IncidentRecord) -> String {
    let people: u64 = r.migrants.iter().map(|g| u64::from(g.count)).sum();
    format!(
        "period {}; {} legs, {} methods, {} fees, {} groups ({people} people), {} smugglers; sha256 {}",
        r.period,
        r.route.len(),
        r.methods.len(),
        r.fees.len(),
        r.migrants.len(),
        r.smugglers.len(),
        &digest(r)[..16]
    )
}

/// The parts of a record an edit changed, in words.
fn changed_parts(old: &IncidentRecord, new: &IncidentRecord) -> String {
    let mut parts = Vec::new();
    let mut diff = |name: &str, same: bool| {
        if !same {
            parts.push(name.to_string());
        }
    };
    diff("period", old.period == new.period);
    diff("date", old.date == new.date);
    diff("agency", old.agency == new.agency);
    diff("country", old.country == new.country);
    diff("place_type", old.place_type == new.place_type);
    diff("mode", old.mode == new.mode);
    diff("dead", old.dead == new.dead);
    diff("missing", old.missing == new.missing);
    diff("route", old.route == new.route);
    diff("methods", old.methods == new.methods);
    diff("fees", old.fees == new.fees);
    diff("migrants", old.migrants == new.migrants);
    diff("smugglers", old.smugglers == new.smugglers);
    diff("note", old.note == new.note);
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

// ---- console.sqlite: drafts, records awaiting review, deleted records ------------------------

const SCHEMA: &str = r#"
-- A draft (the form as typed, JSON, possibly invalid) or a record awaiting review (the form as
-- typed and accepted by the import's checks, JSON). Neither is counted or released.
CREATE TABLE IF NOT EXISTS case_held (
    id         INTEGER PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('draft', 'pending')),
    source_id  TEXT NOT NULL,
    replaces   TEXT,
    -- For a pending edit: the SHA-256 of the stored version it was made on.
    base       TEXT,
    form       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- A soft-deleted record, whole (IncidentRecord JSON, as JSON Lines import reads it).
CREATE TABLE IF NOT EXISTS case_deleted (
    id         INTEGER PRIMARY KEY,
    source_id  TEXT NOT NULL,
    record     TEXT NOT NULL,
    deleted_by TEXT NOT NULL,
    deleted_ms INTEGER NOT NULL
);
"#;

fn schema(db: &ConsoleDb) -> Result<(), ConsoleError> {
    db.conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// A draft or a record awaiting review.
#[derive(Debug, Clone)]
struct Held {
    id: i64,
    pending: bool,
    source_id: String,
    replaces: Option<String>,
    base: Option<String>,
    form: CaseForm,
    owner: String,
    updated_ms: i64,
}

/// Drafts and cases awaiting review, newest first: of `only_owner` if given, the one `id` if
/// given.
fn held_rows(
    db: &ConsoleDb,
    only_owner: Option<&str>,
    id: Option<i64>,
) -> Result<Vec<Held>, ConsoleError> {
    schema(db)?;
    let mut st = db.conn.prepare(
        "SELECT id, state, source_id, replaces, form, owner, updated_ms, base FROM case_held
         WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR id = ?2)
         ORDER BY id DESC LIMIT 500",
    )?;
    let rows = st.query_map(params![only_owner, id], |r| {
        Ok(Held {
            id: r.get(0)?,
            pending: r.get::<_, String>(1)? == "pending",
            source_id: r.get(2)?,
            replaces: r.get(3)?,
            form: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
            owner: r.get(5)?,
            updated_ms: r.get(6)?,
            base: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn held(db: &ConsoleDb, id: i64) -> Result<Option<Held>, ConsoleError> {
    Ok(held_rows(db, None, Some(id))?.pop())
}

/// Saves a draft (new, or over draft `id` of the same owner); its id.
fn save_draft(
    db: &mut ConsoleDb,
    now: i64,
    owner: &str,
    id: i64,
    original: &str,
    form: &CaseForm,
) -> Result<i64, ConsoleError> {
    schema(db)?;
    let json = serde_json::to_string(form).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let replaces = (!original.is_empty()).then_some(original);
    let tx = db
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let updated = if id > 0 {
        tx.execute(
            "UPDATE case_held SET form = ?1, source_id = ?2, updated_ms = ?3
             WHERE id = ?4 AND owner = ?5 AND state = 'draft'",
            params![json, form.source_id.trim(), now, id, owner],
        )?
    } else {
        0
    };
    let id = if updated == 1 {
        id
    } else {
        tx.execute(
            "INSERT INTO case_held(state, source_id, replaces, form, owner, created_ms, updated_ms)
             VALUES ('draft', ?1, ?2, ?3, ?4, ?5, ?5)",
            params![form.source_id.trim(), replaces, json, owner, now],
        )?;
        tx.last_insert_rowid()
    };
    changelog::append(
        &tx,
        now,
        owner,
        "case_draft_saved",
        form.source_id.trim(),
        &format!("draft {id}"),
    )?;
    tx.commit()?;
    Ok(id)
}

// ---- the pages --------------------------------------------------------------------------------

/// An option of a select.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The label of a code in the viewer's language (`case-code-<list>-<code>`); the code itself
/// when there is none (a value not in the list).
fn code_label(t: &Tr, list: &str, code: &str) -> String {
    let key = format!(
        "case-code-{}-{}",
        list.replace('_', "-"),
        code.replace('+', "plus").replace('_', "-").to_lowercase()
    );
    let label = t.t(&key);
    if label == key {
        code.to_string()
    } else {
        label
    }
}

fn choices<'a>(
    t: &Tr,
    list: &str,
    codes: impl IntoIterator<Item = &'a str>,
    selected: &str,
    blank: Option<String>,
) -> Vec<Choice> {
    let mut out: Vec<Choice> = blank
        .map(|label| Choice {
            value: String::new(),
            label,
            selected: selected.trim().is_empty(),
        })
        .into_iter()
        .collect();
    let mut found = selected.trim().is_empty();
    for c in codes {
        let is = c == selected.trim();
        found |= is;
        out.push(Choice {
            value: c.to_string(),
            label: code_label(t, list, c),
            selected: is,
        });
    }
    // A value not in the list (a hostile post, an old code) stays visible, so nothing typed is
    // lost and the error beside it makes sense.
    if !found {
        out.push(Choice {
            value: selected.to_string(),
            label: selected.to_string(),
            selected: true,
        });
    }
    out
}

/// A text input of the form.
#[derive(Debug, Clone)]
struct Input {
    name: String,
    label: String,
    value: String,
    error: Option<String>,
    /// A hint under the label (the format expected), or "".
    hint: String,
    /// Offers the country codes as suggestions.
    countries: bool,
    /// Shown, not editable (an edit keeps the source id).
    readonly: bool,
    /// A short box (codes, numbers).
    short: bool,
}

/// A select of the form.
#[derive(Debug, Clone)]
struct Pick {
    name: String,
    label: String,
    options: Vec<Choice>,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct LegView {
    i: usize,
    legend: String,
    to: Input,
    mode: Pick,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct FeeView {
    i: usize,
    legend: String,
    amount: Input,
    currency: Input,
    scope: Pick,
    payment: Pick,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct GroupView {
    i: usize,
    legend: String,
    citizenship: Input,
    sex: Pick,
    age: Pick,
    unaccompanied: bool,
    count: Input,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct SmugglerView {
    i: usize,
    legend: String,
    citizenship: Input,
    sex: Pick,
    age: Pick,
    role: Pick,
    stage: Pick,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct MethodView {
    code: String,
    label: String,
    checked: bool,
}

/// A link from the error summary to the input it is about.
#[derive(Debug, Clone)]
struct ErrorLink {
    id: String,
    label: String,
    message: String,
}

#[derive(Template)]
#[template(path = "console/case_form.html")]
struct FormPage {
    f: Frame,
    notice: Option<String>,
    top: Vec<String>,
    links: Vec<ErrorLink>,
    editing: bool,
    original: String,
    base: String,
    draft: i64,
    review: bool,
    head: Vec<Input>,
    source_id: Input,
    place_type: Pick,
    mode: Pick,
    origin: Input,
    legs: Vec<LegView>,
    methods: Vec<MethodView>,
    methods_error: Option<String>,
    fees: Vec<FeeView>,
    groups: Vec<GroupView>,
    smugglers: Vec<SmugglerView>,
    note: Input,
    countries: Vec<String>,
    room_legs: bool,
    room_fees: bool,
    room_groups: bool,
    room_smugglers: bool,
}

fn form_page(
    console: &Console,
    viewer: &Viewer,
    role: Role,
    p: &Posted,
    errors: &FormErrors,
    notice: Option<String>,
) -> FormPage {
    let t = web::tr(console, viewer.lang);
    let f = &p.form;
    let err = |name: &str| errors.fields.get(name).cloned();
    let input = |name: &str, key: &str, value: &str| Input {
        name: name.to_string(),
        label: t.t(key),
        value: value.to_string(),
        error: err(name),
        hint: String::new(),
        countries: false,
        readonly: false,
        short: false,
    };
    let hinted = |mut i: Input, hint: String| {
        i.hint = hint;
        i
    };
    let short = |mut i: Input| {
        i.short = true;
        i
    };
    // Country boxes in rows carry no hint of their own: the section's hint says it once.
    let country = |mut i: Input| {
        i.countries = true;
        i.short = true;
        i
    };
    let country_hinted = |i: Input| hinted(country(i), t.t("case-hint-country"));
    let pick = |name: &str, key: &str, options: Vec<Choice>| Pick {
        name: name.to_string(),
        label: t.t(key),
        options,
        error: err(name),
    };
    let none = || Some(t.t("case-none"));
    let modes = || Mode::ALL.iter().map(|m| m.code());
    let sexes = || Sex::ALL.iter().map(|s| s.code());
    let ages = || AgeGroup::ALL.iter().map(|a| a.code());
    let head = vec![
        short(hinted(
            input("period", "case-field-period", &f.period),
            t.t("case-hint-period"),
        )),
        short(hinted(
            input("date", "case-field-date", &f.date),
            t.t("case-hint-date"),
        )),
        input("agency", "case-field-agency", &f.agency),
        country_hinted(input("country", "case-field-country", &f.country)),
        short(input("dead", "case-field-dead", &f.dead)),
        short(input("missing", "case-field-missing", &f.missing)),
    ];
    let legs = f
        .legs
        .iter()
        .enumerate()
        .map(|(i, l)| LegView {
            i,
            legend: t.ta("case-leg-n", &[("n", t.int(i as u64 + 1))]),
            to: country(input(&format!("leg-{i}-to"), "case-field-leg-to", &l.to)),
            mode: pick(
                &format!("leg-{i}-mode"),
                "case-field-leg-mode",
                choices(&t, Mode::LIST, modes(), &l.mode, none()),
            ),
            error: err(&format!("leg-{i}")),
        })
        .collect();
    let fees = f
        .fees
        .iter()
        .enumerate()
        .map(|(i, x)| FeeView {
            i,
            legend: t.ta("case-fee-n", &[("n", t.int(i as u64 + 1))]),
            amount: short(input(
                &format!("fee-{i}-amount"),
                "case-field-amount",
                &x.amount,
            )),
            currency: short(hinted(
                input(
                    &format!("fee-{i}-currency"),
                    "case-field-currency",
                    &x.currency,
                ),
                t.t("case-hint-currency"),
            )),
            scope: pick(
                &format!("fee-{i}-scope"),
                "case-field-scope",
                choices(
                    &t,
                    FeeScope::LIST,
                    FeeScope::ALL.iter().map(|s| s.code()),
                    &x.scope,
                    none(),
                ),
            ),
            payment: pick(
                &format!("fee-{i}-payment"),
                "case-field-payment",
                choices(
                    &t,
                    PaymentMode::LIST,
                    PaymentMode::ALL.iter().map(|s| s.code()),
                    &x.payment,
                    None,
                ),
            ),
            error: err(&format!("fee-{i}")),
        })
        .collect();
    let groups = f
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| GroupView {
            i,
            legend: t.ta("case-group-n", &[("n", t.int(i as u64 + 1))]),
            citizenship: country(input(
                &format!("group-{i}-citizenship"),
                "case-field-citizenship",
                &g.citizenship,
            )),
            sex: pick(
                &format!("group-{i}-sex"),
                "case-field-sex",
                choices(&t, Sex::LIST, sexes(), &g.sex, None),
            ),
            age: pick(
                &format!("group-{i}-age"),
                "case-field-age",
                choices(&t, AgeGroup::LIST, ages(), &g.age, None),
            ),
            unaccompanied: g.unaccompanied,
            count: short(input(
                &format!("group-{i}-count"),
                "case-field-count",
                &g.count,
            )),
            error: err(&format!("group-{i}")),
        })
        .collect();
    let smugglers = f
        .smugglers
        .iter()
        .enumerate()
        .map(|(i, s)| SmugglerView {
            i,
            legend: t.ta("case-smuggler-n", &[("n", t.int(i as u64 + 1))]),
            citizenship: country(input(
                &format!("smuggler-{i}-citizenship"),
                "case-field-citizenship",
                &s.citizenship,
            )),
            sex: pick(
                &format!("smuggler-{i}-sex"),
                "case-field-sex",
                choices(&t, Sex::LIST, sexes(), &s.sex, None),
            ),
            age: pick(
                &format!("smuggler-{i}-age"),
                "case-field-age",
                choices(&t, AgeGroup::LIST, ages(), &s.age, None),
            ),
            role: pick(
                &format!("smuggler-{i}-role"),
                "case-field-role",
                choices(
                    &t,
                    SmugglerRole::LIST,
                    SmugglerRole::ALL.iter().map(|s| s.code()),
                    &s.role,
                    none(),
                ),
            ),
            stage: pick(
                &format!("smuggler-{i}-stage"),
                "case-field-stage",
                choices(
                    &t,
                    SmugglerStage::LIST,
                    SmugglerStage::ALL.iter().map(|s| s.code()),
                    &s.stage,
                    none(),
                ),
            ),
            error: err(&format!("smuggler-{i}")),
        })
        .collect();
    let mut methods: Vec<MethodView> = Method::ALL
        .iter()
        .map(|m| MethodView {
            code: m.code().to_string(),
            label: code_label(&t, Method::LIST, m.code()),
            checked: f.methods.iter().any(|x| x == m.code()),
        })
        .collect();
    for m in &f.methods {
        if !methods.iter().any(|v| v.code == *m) {
            methods.push(MethodView {
                code: m.clone(),
                label: m.clone(),
                checked: true,
            });
        }
    }
    let links = errors
        .fields
        .iter()
        .map(|(name, message)| ErrorLink {
            id: format!("f-{name}"),
            label: field_label(&t, name),
            message: message.clone(),
        })
        .collect();
    let review = console.section.review_records && !role.at_least(Role::Reviewer);
    FormPage {
        f: Frame::new(
            console,
            viewer,
            if p.original.is_empty() {
                "case-new-title"
            } else {
                "case-edit-title"
            },
        ),
        notice,
        top: errors.top.clone(),
        links,
        editing: !p.original.is_empty(),
        original: p.original.clone(),
        base: p.base.clone(),
        draft: p.draft,
        review,
        head,
        source_id: Input {
            readonly: !p.original.is_empty(),
            ..hinted(
                input("source_id", "case-field-source-id", &f.source_id),
                t.t("case-hint-source-id"),
            )
        },
        place_type: pick(
            "place_type",
            "case-field-place-type",
            choices(
                &t,
                PlaceType::LIST,
                PlaceType::ALL.iter().map(|x| x.code()),
                &f.place_type,
                none(),
            ),
        ),
        mode: pick(
            "mode",
            "case-field-mode",
            choices(&t, Mode::LIST, modes(), &f.mode, none()),
        ),
        origin: country(input("origin", "case-field-origin", &f.origin)),
        legs,
        methods,
        methods_error: err("methods"),
        fees,
        groups,
        smugglers,
        note: input("note", "case-field-note", &f.note),
        countries: Country::all().map(|c| c.to_string()).collect(),
        room_legs: f.legs.len() < MAX_ITEMS,
        room_fees: f.fees.len() < MAX_ITEMS,
        room_groups: f.groups.len() < MAX_ITEMS,
        room_smugglers: f.smugglers.len() < MAX_ITEMS,
    }
}

/// The label of the input an error is about, for the error summary.
fn field_label(t: &Tr, name: &str) -> String {
    let key = match name.rsplit('-').next().unwrap_or(name) {
        "source_id" => "case-field-source-id",
        "period" => "case-field-period",
        "date" => "case-field-date",
        "agency" => "case-field-agency",
        "country" => "case-field-country",
        "place_type" => "case-field-place-type",
        "mode" if name == "mode" => "case-field-mode",
        "mode" => "case-field-leg-mode",
        "dead" => "case-field-dead",
        "missing" => "case-field-missing",
        "origin" => "case-field-origin",
        "to" => "case-field-leg-to",
        "methods" => "case-methods",
        "amount" => "case-field-amount",
        "currency" => "case-field-currency",
        "scope" => "case-field-scope",
        "payment" => "case-field-payment",
        "citizenship" => "case-field-citizenship",
        "sex" => "case-field-sex",
        "age" => "case-field-age",
        "count" => "case-field-count",
        "role" => "case-field-role",
        "stage" => "case-field-stage",
        "note" => "case-field-note",
        _ => return name.to_string(),
    };
    let row = name
        .split('-')
        .nth(1)
        .and_then(|i| i.parse::<usize>().ok())
        .map(|i| format!(" ({})", i + 1))
        .unwrap_or_default();
    format!("{}{row}", t.t(key))
}

#[derive(Debug, Default, Deserialize)]
struct NewQuery {
    #[serde(default)]
    draft: Option<i64>,
    /// Set when coming back from saving the draft.
    #[serde(default)]
    saved: Option<String>,
}

async fn new_form(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(q): Query<NewQuery>,
) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let (role, me) = (user.role, user.username.clone());
    let mut p = Posted {
        form: CaseForm::blank(),
        ..Posted::default()
    };
    if let Some(id) = q.draft {
        let h = console
            .with_db(move |db, _| held(db, id))
            .await
            .map_err(|e| viewer.internal(e))?;
        match h {
            Some(h) if h.owner == me && !h.pending => {
                p.form = h.form;
                p.draft = h.id;
                p.original = h.replaces.unwrap_or_default();
                // A case returned from review keeps the version its edit was made on.
                p.base = h.base.unwrap_or_default();
            }
            _ => return Err(Refusal::NotFound(viewer.lang)),
        }
    }
    let notice = q
        .saved
        .is_some()
        .then(|| web::tr(&console, viewer.lang).t("case-draft-saved"));
    let page = form_page(&console, &viewer, role, &p, &FormErrors::default(), notice);
    render(StatusCode::OK, &page, viewer.lang)
}

#[derive(Debug, Default, Deserialize)]
struct SourceQuery {
    #[serde(default)]
    source: String,
}

#[derive(Template)]
#[template(path = "console/case_view.html")]
struct ViewPage {
    f: Frame,
    source_id: String,
    json: String,
}

async fn edit_form(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(q): Query<SourceQuery>,
) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let role = user.role;
    let me = console.clone();
    let source = q.source.clone();
    let record = blocking(move || {
        let store = Store::open_read_only(&me.config.data_dir())?;
        Ok(store.record(&source)?)
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let Some(record) = record else {
        return Err(Refusal::NotFound(viewer.lang));
    };
    // Statistics rows and corridors come from import layouts the form does not show: shown
    // as they are, not offered for an edit that would drop what the form cannot hold.
    if record.kind == RecordKind::Statistics || record.corridor.is_some() {
        let page = ViewPage {
            f: Frame::new(&console, &viewer, "case-view-title"),
            source_id: record.source_id.clone(),
            json: serde_json::to_string_pretty(&record).unwrap_or_default(),
        };
        return render(StatusCode::OK, &page, viewer.lang);
    }
    let p = Posted {
        form: CaseForm::of_record(&record),
        original: record.source_id.clone(),
        base: digest(&record),
        ..Posted::default()
    };
    let page = form_page(&console, &viewer, role, &p, &FormErrors::default(), None);
    render(StatusCode::OK, &page, viewer.lang)
}

fn done_redirect(done: &str, source: &str) -> Page {
    Ok(Redirect::to(&format!(
        "/cases?done={done}&source={}",
        form_urlencoded::byte_serialize(source.as_bytes()).collect::<String>()
    ))
    .into_response())
}

async fn submit(State(console): State<Arc<Console>>, viewer: Viewer, body: Bytes) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let (role, me) = (user.role, user.username.clone());
    let t = web::tr(&console, viewer.lang);
    let (mut p, over) = Posted::parse(&body);
    let bad = |p: &Posted, errors: FormErrors| {
        let page = form_page(&console, &viewer, role, p, &errors, None);
        render(StatusCode::BAD_REQUEST, &page, viewer.lang)
    };
    if over {
        let errors = FormErrors {
            top: vec![t.ta(
                "case-error-too-many-rows",
                &[("max", t.int(MAX_ITEMS as u64))],
            )],
            ..FormErrors::default()
        };
        return bad(&p, errors);
    }
    if p.form.apply_row_action(&p.action) {
        let page = form_page(&console, &viewer, role, &p, &FormErrors::default(), None);
        return render(StatusCode::OK, &page, viewer.lang);
    }
    match p.action.as_str() {
        "draft" => {
            let (form, draft, original, who) =
                (p.form.clone(), p.draft, p.original.clone(), me.clone());
            let id = console
                .with_db(move |db, now| save_draft(db, now, &who, draft, &original, &form))
                .await
                .map_err(|e| viewer.internal(e))?;
            // Back to the draft by its address (a reload does not post it again).
            Ok(Redirect::to(&format!("/cases/new?draft={id}&saved=1")).into_response())
        }
        "save" => save(&console, &viewer, role, &me, p, &t).await,
        _ => Err(Refusal::NotFound(viewer.lang)),
    }
}

/// Whether `source_id` is taken by a soft-deleted record or one awaiting review (other than
/// `own_pending`): a new record may not take it.
fn held_elsewhere(
    db: &ConsoleDb,
    source_id: &str,
    editing: bool,
) -> Result<Option<&'static str>, ConsoleError> {
    schema(db)?;
    let deleted: bool = db.conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM case_deleted WHERE source_id = ?1)",
        [source_id],
        |r| r.get(0),
    )?;
    if deleted && !editing {
        return Ok(Some("case-error-deleted-id"));
    }
    let pending: bool = db.conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM case_held WHERE state = 'pending' AND source_id = ?1)",
        [source_id],
        |r| r.get(0),
    )?;
    Ok(pending.then_some("case-error-pending-id"))
}

async fn save(
    console: &Arc<Console>,
    viewer: &Viewer,
    role: Role,
    me: &str,
    p: Posted,
    t: &Tr,
) -> Page {
    let bad = |errors: FormErrors| {
        let page = form_page(console, viewer, role, &p, &errors, None);
        render(StatusCode::BAD_REQUEST, &page, viewer.lang)
    };
    let (record, map) = match read_form(&p.form, t) {
        Ok(x) => x,
        Err(errors) => return bad(errors),
    };
    let editing = !p.original.is_empty();
    if editing && record.source_id != p.original {
        // The source id is the record's key: an edit keeps it (the input is read-only).
        let mut e = FormErrors::default();
        e.field("source_id".into(), t.t("case-error-source-id-fixed"));
        return bad(e);
    }
    let sid = record.source_id.clone();
    let taken = console
        .with_db(move |db, _| held_elsewhere(db, &sid, editing))
        .await
        .map_err(|e| viewer.internal(e))?;
    if let Some(key) = taken {
        let mut e = FormErrors::default();
        e.field("source_id".into(), t.t(key));
        return bad(e);
    }
    let review = console.section.review_records && !role.at_least(Role::Reviewer);
    let me2 = console.clone();
    let (who, form, rec) = (me.to_string(), p.form.clone(), record.clone());
    let (original, base) = (p.original.clone(), p.base.clone());
    let t2 = t.clone();
    let written = blocking(move || {
        let refuse = |r: Refused| place(&form, &map, &r, &t2);
        let replaces = (!original.is_empty()).then_some(Replacing {
            source: &original,
            base: &base,
        });
        write_record(&me2, &who, &rec, replaces, review, refuse, &t2)
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    // The old version gives the change log the parts an edit changed.
    let old = match written {
        Written::Refused(errors) => return bad(errors),
        Written::Done(old) => old,
    };
    let (who, draft, form, original) =
        (me.to_string(), p.draft, p.form.clone(), p.original.clone());
    let detail = match &old {
        Some(old) => format!(
            "changed: {}; {}",
            changed_parts(old, &record),
            summary(&record)
        ),
        None => summary(&record),
    };
    let source = record.source_id.clone();
    let sid = source.clone();
    let base = old.as_ref().map(digest);
    console
        .with_db(move |db, now| {
            schema(db)?;
            let tx = db
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if draft > 0 {
                tx.execute(
                    "DELETE FROM case_held WHERE id = ?1 AND owner = ?2 AND state = 'draft'",
                    params![draft, who],
                )?;
            }
            let action = if review {
                let json = serde_json::to_string(&form)
                    .map_err(|e| ConsoleError::Internal(e.to_string()))?;
                tx.execute(
                    "INSERT INTO case_held(state, source_id, replaces, base, form, owner, created_ms, updated_ms)
                     VALUES ('pending', ?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![sid, (!original.is_empty()).then_some(&original), base, json, who, now],
                )?;
                "case_submitted"
            } else if original.is_empty() {
                "case_created"
            } else {
                "case_edited"
            };
            changelog::append(&tx, now, &who, action, &sid, &detail)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    let done = if review {
        "submitted"
    } else if p.original.is_empty() {
        "created"
    } else {
        "edited"
    };
    done_redirect(done, &source)
}

// ---- the list ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    done: String,
    #[serde(default)]
    source: String,
}

/// A draft or pending record in the list.
#[derive(Debug, Clone)]
struct HeldRow {
    id: i64,
    source_id: String,
    period: String,
    owner: String,
    updated: String,
    editing: bool,
}

#[derive(Debug, Clone)]
struct ListRow {
    source_id: String,
    href: String,
    period: String,
    date: String,
    agency: String,
    route: String,
    migrants: String,
    statistics: bool,
}

#[derive(Template)]
#[template(path = "console/cases.html")]
struct ListPage {
    f: Frame,
    notice: Option<String>,
    filter_error: Option<String>,
    q: String,
    from: String,
    to: String,
    origin: String,
    destination: String,
    rows: Vec<ListRow>,
    older: Option<String>,
    drafts: Vec<HeldRow>,
    pending: Vec<HeldRow>,
    reviewer: bool,
    review_on: bool,
}

fn held_row(t: &Tr, h: &Held) -> HeldRow {
    HeldRow {
        id: h.id,
        source_id: h.source_id.clone(),
        period: h.form.period.clone(),
        owner: h.owner.clone(),
        updated: t.datetime(h.updated_ms),
        editing: h.replaces.is_some(),
    }
}

async fn list(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let (role, me) = (user.role, user.username.clone());
    let t = web::tr(&console, viewer.lang);
    let notice = match q.done.as_str() {
        k @ ("created" | "edited" | "submitted" | "deleted" | "restored" | "approved"
        | "returned" | "discarded") => {
            Some(t.ta(&format!("case-done-{k}"), &[("source", q.source.clone())]))
        }
        _ => None,
    };
    let mut filter = RecordFilter {
        text: q.q.trim().chars().take(100).collect(),
        before: q.before,
        limit: LIST_PAGE_ROWS,
        ..RecordFilter::default()
    };
    let mut filter_error = None;
    let month = |s: &str| -> Result<Option<Month>, ()> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| ())
        }
    };
    let country = |s: &str| -> Result<Option<Country>, ()> {
        let s = code_text(s);
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| ())
        }
    };
    match (
        month(&q.from),
        month(&q.to),
        country(&q.origin),
        country(&q.destination),
    ) {
        (Ok(a), Ok(b), Ok(o), Ok(d)) => {
            filter.from = a;
            filter.to = b;
            filter.origin = o;
            filter.destination = d;
        }
        _ => filter_error = Some(t.t("case-filter-invalid")),
    }
    let me2 = console.clone();
    let rows = blocking(move || {
        let store = Store::open_read_only(&me2.config.data_dir())?;
        Ok(store.records(&filter)?)
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let reviewer = role.at_least(Role::Reviewer);
    let who = me.clone();
    let held = console
        .with_db(move |db, _| held_rows(db, if reviewer { None } else { Some(&who) }, None))
        .await
        .map_err(|e| viewer.internal(e))?;
    let older = (rows.len() == LIST_PAGE_ROWS as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten()
        .map(|id| {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!(
                "/cases?q={}&from={}&to={}&origin={}&destination={}&before={id}",
                enc(&q.q),
                enc(&q.from),
                enc(&q.to),
                enc(&q.origin),
                enc(&q.destination)
            )
        });
    let list_row = |r: RecordRow| ListRow {
        href: format!(
            "/cases/edit?source={}",
            form_urlencoded::byte_serialize(r.source_id.as_bytes()).collect::<String>()
        ),
        period: r.period.to_string(),
        date: r.date.unwrap_or_default(),
        agency: r.agency.unwrap_or_default(),
        route: format!("{} → {}", r.origin, r.destination),
        migrants: t.int(r.migrants),
        statistics: r.kind == RecordKind::Statistics,
        source_id: r.source_id,
    };
    let page = ListPage {
        f: Frame::new(&console, &viewer, "case-list-title"),
        notice,
        filter_error,
        q: q.q.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        origin: q.origin.clone(),
        destination: q.destination.clone(),
        rows: rows.into_iter().map(list_row).collect(),
        older,
        drafts: held
            .iter()
            .filter(|h| !h.pending && h.owner == me)
            .map(|h| held_row(&t, h))
            .collect(),
        pending: held
            .iter()
            .filter(|h| h.pending)
            .map(|h| held_row(&t, h))
            .collect(),
        reviewer,
        review_on: console.section.review_records,
    };
    render(StatusCode::OK, &page, viewer.lang)
}

// ---- soft delete and restore ------------------------------------------------------------------

/// The body of the delete and restore buttons.
#[derive(Debug, Default)]
struct SourceForm {
    /// The case's source id (delete).
    source: String,
    /// The deleted copy's id (restore).
    id: i64,
}

async fn delete(State(console): State<Arc<Console>>, viewer: Viewer, body: Bytes) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let me = user.username.clone();
    let form: SourceForm = small_form(&body);
    let source = form.source.clone();
    let c = console.clone();
    let found = blocking(move || Ok(Store::open_read_only(&c.config.data_dir())?.record(&source)?))
        .await
        .map_err(|e| viewer.internal(e))?;
    let Some(record) = found else {
        return Err(Refusal::NotFound(viewer.lang));
    };
    // The copy is kept first: should the store's removal fail, the copy is taken back; should
    // the process die between the two, the record is both stored and restorable, never lost.
    let json = serde_json::to_string(&record)
        .map_err(|e| viewer.internal(ConsoleError::Internal(e.to_string())))?;
    let (who, sid, detail) = (me.clone(), record.source_id.clone(), summary(&record));
    let kept = console
        .with_db(move |db, now| {
            schema(db)?;
            let tx = db
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO case_deleted(source_id, record, deleted_by, deleted_ms) VALUES (?1, ?2, ?3, ?4)",
                params![sid, json, who, now],
            )?;
            let id = tx.last_insert_rowid();
            changelog::append(&tx, now, &who, "case_deleted", &sid, &detail)?;
            tx.commit()?;
            Ok(id)
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    let (c, who, sid) = (console.clone(), me.clone(), record.source_id.clone());
    let removed = blocking(move || remove_record(&c, &who, &sid)).await;
    if !matches!(removed, Ok(true)) {
        let _ = console
            .with_db(move |db, _| {
                db.conn
                    .execute("DELETE FROM case_deleted WHERE id = ?1", [kept])?;
                Ok(())
            })
            .await;
        return match removed {
            Err(e) => Err(viewer.internal(e)),
            _ => Err(Refusal::NotFound(viewer.lang)),
        };
    }
    done_redirect("deleted", &record.source_id)
}

/// A small form body (`source`, `id`); anything unreadable is empty.
fn small_form(body: &[u8]) -> SourceForm {
    let mut f = SourceForm::default();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "source" => f.source = v.into_owned(),
            "id" => f.id = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    f
}

#[derive(Debug, Clone)]
struct DeletedRow {
    id: i64,
    source_id: String,
    period: String,
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "console/cases_deleted.html")]
struct DeletedPage {
    f: Frame,
    rows: Vec<DeletedRow>,
    error: Option<String>,
}

async fn deleted(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    viewer.require(Role::Reviewer)?;
    deleted_page(&console, &viewer, None, StatusCode::OK).await
}

async fn deleted_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    error: Option<String>,
    status: StatusCode,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let rows = console
        .with_db(|db, _| {
            schema(db)?;
            let mut st = db.conn.prepare(
                "SELECT id, source_id, record, deleted_by, deleted_ms FROM case_deleted
                 ORDER BY id DESC LIMIT 500",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    let rows = rows
        .into_iter()
        .map(|(id, source_id, json, by, at)| DeletedRow {
            id,
            source_id,
            period: serde_json::from_str::<IncidentRecord>(&json)
                .map(|r| r.period.to_string())
                .unwrap_or_default(),
            by,
            at: t.datetime(at),
        })
        .collect();
    let page = DeletedPage {
        f: Frame::new(console, viewer, "case-list-deleted-title"),
        rows,
        error,
    };
    render(status, &page, viewer.lang)
}

async fn restore(State(console): State<Arc<Console>>, viewer: Viewer, body: Bytes) -> Page {
    let (_, user) = viewer.require(Role::Reviewer)?;
    let me = user.username.clone();
    let t = web::tr(&console, viewer.lang);
    let id = small_form(&body).id;
    let row = console
        .with_db(move |db, _| {
            schema(db)?;
            Ok(db
                .conn
                .query_row(
                    "SELECT source_id, record FROM case_deleted WHERE id = ?1",
                    [id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?)
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    let Some((source, json)) = row else {
        return Err(Refusal::NotFound(viewer.lang));
    };
    // The kept copy is read as JSON Lines import reads a record, and written by the import.
    let record: IncidentRecord = serde_json::from_str(&json).map_err(|e| {
        viewer.internal(ConsoleError::Internal(format!("deleted record {id}: {e}")))
    })?;
    let (c, who, rec, t2) = (console.clone(), me.clone(), record.clone(), t.clone());
    let written = blocking(move || {
        write_record(
            &c,
            &who,
            &rec,
            None,
            false,
            |r| match r {
                Refused::Record(e) => FormErrors {
                    top: vec![record_message(&t2, &e)],
                    ..FormErrors::default()
                },
                Refused::NoRate(c) => FormErrors {
                    top: vec![t2.ta("case-error-no-rate", &[("currency", c)])],
                    ..FormErrors::default()
                },
                Refused::Row(r) => FormErrors {
                    top: vec![r],
                    ..FormErrors::default()
                },
            },
            &t2,
        )
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    if let Written::Refused(e) = written {
        let why = e
            .top
            .into_iter()
            .chain(e.fields.into_values())
            .collect::<Vec<_>>()
            .join(" ");
        return deleted_page(&console, &viewer, Some(why), StatusCode::CONFLICT).await;
    }
    let (who, sid, detail) = (me.clone(), source.clone(), summary(&record));
    console
        .with_db(move |db, now| {
            let tx = db
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM case_deleted WHERE id = ?1", [id])?;
            changelog::append(&tx, now, &who, "case_restored", &sid, &detail)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    done_redirect("restored", &source)
}

// ---- drafts and review ------------------------------------------------------------------------

async fn discard(State(console): State<Arc<Console>>, viewer: Viewer, Path(id): Path<i64>) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let me = user.username.clone();
    let gone = console
        .with_db(move |db, now| {
            schema(db)?;
            let tx = db
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let source: Option<String> = tx
                .query_row(
                    "SELECT source_id FROM case_held WHERE id = ?1 AND owner = ?2 AND state = 'draft'",
                    params![id, me],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(s) = &source {
                tx.execute("DELETE FROM case_held WHERE id = ?1", [id])?;
                changelog::append(&tx, now, &me, "case_draft_discarded", s, &format!("draft {id}"))?;
            }
            tx.commit()?;
            Ok(source)
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    match gone {
        Some(s) => done_redirect("discarded", &s),
        None => Err(Refusal::NotFound(viewer.lang)),
    }
}

#[derive(Debug, Clone)]
struct ReviewRow {
    id: i64,
    source_id: String,
    period: String,
    owner: String,
    updated: String,
    editing: bool,
    route: String,
    people: String,
    note: String,
    /// The whole case as it would be stored (read by the same path as the approval will).
    json: String,
}

#[derive(Template)]
#[template(path = "console/cases_review.html")]
struct ReviewPage {
    f: Frame,
    rows: Vec<ReviewRow>,
    review_on: bool,
    error: Option<String>,
}

async fn review(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    viewer.require(Role::Reviewer)?;
    review_page(&console, &viewer, None, StatusCode::OK).await
}

async fn review_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    error: Option<String>,
    status: StatusCode,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let held = console
        .with_db(|db, _| held_rows(db, None, None))
        .await
        .map_err(|e| viewer.internal(e))?;
    let rows = held
        .into_iter()
        .filter(|h| h.pending)
        .map(|h| {
            let route: Vec<String> = std::iter::once(code_text(&h.form.origin))
                .chain(h.form.legs.iter().map(|l| code_text(&l.to)))
                .filter(|s| !s.is_empty())
                .collect();
            let people: u64 = h
                .form
                .groups
                .iter()
                .filter_map(|g| g.count.trim().parse::<u64>().ok())
                .sum();
            ReviewRow {
                id: h.id,
                source_id: h.source_id.clone(),
                period: h.form.period.clone(),
                owner: h.owner.clone(),
                updated: t.datetime(h.updated_ms),
                editing: h.replaces.is_some(),
                route: route.join(" → "),
                people: t.int(people),
                note: h.form.note.clone(),
                json: match read_form(&h.form, &t) {
                    Ok((r, _)) => serde_json::to_string_pretty(&r).unwrap_or_default(),
                    Err(e) => e
                        .top
                        .into_iter()
                        .chain(e.fields.into_values())
                        .collect::<Vec<_>>()
                        .join(" "),
                },
            }
        })
        .collect();
    let page = ReviewPage {
        f: Frame::new(console, viewer, "case-list-review-title"),
        rows,
        review_on: console.section.review_records,
        error,
    };
    render(status, &page, viewer.lang)
}

async fn review_action(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Path((id, action)): Path<(i64, String)>,
) -> Page {
    let (_, user) = viewer.require(Role::Reviewer)?;
    let me = user.username.clone();
    let t = web::tr(&console, viewer.lang);
    let h = console
        .with_db(move |db, _| held(db, id))
        .await
        .map_err(|e| viewer.internal(e))?;
    let Some(h) = h.filter(|h| h.pending) else {
        return Err(Refusal::NotFound(viewer.lang));
    };
    match action.as_str() {
        "approve" => {
            // The same path as a save: the form as typed → the import's reader → the store.
            let (record, map) = match read_form(&h.form, &t) {
                Ok(x) => x,
                Err(e) => {
                    let why = e
                        .top
                        .into_iter()
                        .chain(e.fields.into_values())
                        .collect::<Vec<_>>()
                        .join(" ");
                    return review_page(&console, &viewer, Some(why), StatusCode::CONFLICT).await;
                }
            };
            let (c, who, rec, form, replaces, base, t2) = (
                console.clone(),
                me.clone(),
                record.clone(),
                h.form.clone(),
                h.replaces.clone(),
                h.base.clone().unwrap_or_default(),
                t.clone(),
            );
            let written = blocking(move || {
                let refuse = |r: Refused| place(&form, &map, &r, &t2);
                // A pending edit replaces the version it was made on, or nothing.
                let replaces = replaces.as_deref().map(|source| Replacing {
                    source,
                    base: &base,
                });
                write_record(&c, &who, &rec, replaces, false, refuse, &t2)
            })
            .await
            .map_err(|e| viewer.internal(e))?;
            if let Written::Refused(e) = written {
                let why = e
                    .top
                    .into_iter()
                    .chain(e.fields.into_values())
                    .collect::<Vec<_>>()
                    .join(" ");
                return review_page(&console, &viewer, Some(why), StatusCode::CONFLICT).await;
            }
            let (who, sid, detail) = (
                me.clone(),
                h.source_id.clone(),
                format!("entered by {}; {}", h.owner, summary(&record)),
            );
            console
                .with_db(move |db, now| {
                    let tx = db
                        .conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    tx.execute("DELETE FROM case_held WHERE id = ?1", [id])?;
                    changelog::append(&tx, now, &who, "case_approved", &sid, &detail)?;
                    tx.commit()?;
                    Ok(())
                })
                .await
                .map_err(|e| viewer.internal(e))?;
            done_redirect("approved", &h.source_id)
        }
        "return" => {
            let (who, sid, owner) = (me.clone(), h.source_id.clone(), h.owner.clone());
            console
                .with_db(move |db, now| {
                    let tx = db
                        .conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    tx.execute(
                        "UPDATE case_held SET state = 'draft', updated_ms = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                    changelog::append(
                        &tx,
                        now,
                        &who,
                        "case_returned",
                        &sid,
                        &format!("back to {owner} as draft {id}"),
                    )?;
                    tx.commit()?;
                    Ok(())
                })
                .await
                .map_err(|e| viewer.internal(e))?;
            done_redirect("returned", &h.source_id)
        }
        _ => Err(Refusal::NotFound(viewer.lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::{Catalog, Lang};

    #[test]
    fn every_code_the_form_offers_has_a_label_in_both_languages() {
        let catalog = Catalog::load().unwrap();
        let lists: Vec<(&str, Vec<&str>)> = vec![
            (Mode::LIST, Mode::ALL.iter().map(|c| c.code()).collect()),
            (
                PlaceType::LIST,
                PlaceType::ALL.iter().map(|c| c.code()).collect(),
            ),
            (Method::LIST, Method::ALL.iter().map(|c| c.code()).collect()),
            (Sex::LIST, Sex::ALL.iter().map(|c| c.code()).collect()),
            (
                AgeGroup::LIST,
                AgeGroup::ALL.iter().map(|c| c.code()).collect(),
            ),
            (
                SmugglerRole::LIST,
                SmugglerRole::ALL.iter().map(|c| c.code()).collect(),
            ),
            (
                SmugglerStage::LIST,
                SmugglerStage::ALL.iter().map(|c| c.code()).collect(),
            ),
            (
                FeeScope::LIST,
                FeeScope::ALL.iter().map(|c| c.code()).collect(),
            ),
            (
                PaymentMode::LIST,
                PaymentMode::ALL.iter().map(|c| c.code()).collect(),
            ),
        ];
        for lang in Lang::ALL {
            let t = Tr::new(catalog.clone(), lang);
            for (list, codes) in &lists {
                for code in codes {
                    let label = code_label(&t, list, code);
                    assert_ne!(label, *code, "{lang:?} {list} {code}: no label");
                }
            }
        }
        // A value outside the list is shown as it is.
        let t = Tr::new(catalog, Lang::Id);
        assert_eq!(code_label(&t, Mode::LIST, "rocket"), "rocket");
        assert_eq!(code_label(&t, Sex::LIST, "F"), "Perempuan");
    }
}
