//! The approval queue (docs/CONSOLE.md, "Approval queue"): with `[approval] mode = "manual"`
//! every new coordinator query waits in the audit log's `pending` table until someone decides.
//! Reviewers see each held query in plain words, who asks, when it came, what it would cost in
//! ρ and what would be left, and approve or deny it; the coordinator's next request with the
//! same query id is then answered or refused (`vrs-coordinator query --query-id …`).
//!
//! Decisions go through [`AuditLog::decide`], as `vrs-node approvals approve|deny` do, and are
//! in the change log. The cost shown is [`crate::release::plan`] of the held query against the
//! store's current data version: what the node would charge if it answered now (nothing is read
//! or charged to show it).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use prost::Message as _;
use serde::Deserialize;
use vrs_core::query::RawQuery;

use super::accounts::Role;
use super::i18n::Tr;
use super::pages::{Frame, Page, render};
use super::web::{self, Refusal, Viewer};
use super::{Console, ConsoleError, blocking};
use crate::audit::{AuditError, AuditLog};
use crate::config::ApprovalMode;
use crate::disclosure::zcdp::rho_of;
use crate::store::Store;

/// One held (or decided) query.
#[derive(Debug, Clone)]
struct HeldRow {
    id: String,
    words: String,
    caller: String,
    received: String,
    cost: String,
    left: String,
    would_refuse: bool,
    state: String,
    pending: bool,
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
struct ApprovalsPage {
    f: Frame,
    manual: bool,
    notice: Option<String>,
    error: Option<String>,
    held: Vec<HeldRow>,
    decided: Vec<HeldRow>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// A query id as the service accepts it (16 to 64 of `A-Z a-z 0-9 -`).
fn valid_id(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `GET /approvals`: held queries first, then the last decided ones.
pub(super) async fn approvals(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Page {
    viewer.require(Role::Reviewer)?;
    let t = web::tr(&console, viewer.lang);
    let id = done.id.filter(|i| valid_id(i)).unwrap_or_default();
    let notice = match done.done.as_deref() {
        Some("approved") => Some(t.ta("approval-approved", &[("id", id)])),
        Some("denied") => Some(t.ta("approval-denied", &[("id", id)])),
        _ => None,
    };
    approvals_page(&console, &viewer, StatusCode::OK, notice, None).await
}

async fn approvals_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let me = console.clone();
    let t2 = t.clone();
    let rows = blocking(move || rows(&me, &t2))
        .await
        .map_err(|e| viewer.internal(e))?;
    let (held, decided): (Vec<HeldRow>, Vec<HeldRow>) = rows.into_iter().partition(|r| r.pending);
    let page = ApprovalsPage {
        f: Frame::new(console, viewer, "approval-title"),
        manual: console.config.file.approval.mode == ApprovalMode::Manual,
        notice,
        error,
        held,
        decided: decided.into_iter().take(50).collect(),
    };
    render(status, &page, viewer.lang)
}

/// Every held query with its words and cost, newest first.
fn rows(console: &Console, t: &Tr) -> Result<Vec<HeldRow>, ConsoleError> {
    let dir = console.config.data_dir();
    let Ok(log) = AuditLog::open_existing(&dir) else {
        return Ok(Vec::new());
    };
    let store = Store::open_read_only(&dir).ok();
    let data_version = store.as_ref().and_then(|s| s.data_version().ok());
    let mut out = Vec::new();
    for p in log.pending(true)? {
        let query = log
            .pending_state(&p.query_id)?
            .and_then(|(_, _, bytes)| vrs_proto::pb::Query::decode(bytes.as_slice()).ok())
            .map(crate::service::raw_query);
        let (cost, left, would_refuse) = match (&query, data_version) {
            (Some(raw), Some(v)) => cost(console, &log, raw, &p.caller, v, t),
            _ => (t.t("approval-cost-unknown"), String::new(), false),
        };
        out.push(HeldRow {
            words: query
                .as_ref()
                .map_or_else(|| p.summary.clone(), |q| in_words(q, &p.caller, t)),
            received: t.datetime(p.received_ms),
            state: t.t(&format!("approval-state-{}", p.state)),
            pending: p.state == "pending",
            id: p.query_id,
            caller: p.caller,
            cost,
            left,
            would_refuse,
        });
    }
    Ok(out)
}

/// The held question in plain words, with who asks.
fn in_words(q: &RawQuery, caller: &str, t: &Tr) -> String {
    let mut s = question_words(q, t);
    s.push_str(&t.ta("approval-words-caller", &[("caller", caller.to_string())]));
    s
}

/// A question in plain words, in the viewer's language: "incidents by origin country and
/// quarter, 2023 to 2024, only mode: sea" (units, dimensions and values stay codes).
pub(super) fn question_words(q: &RawQuery, t: &Tr) -> String {
    let dims: Vec<String> = q.group_by.iter().map(|d| d.replace('_', " ")).collect();
    let mut s = if dims.is_empty() {
        t.ta("approval-words-total", &[("unit", q.unit.clone())])
    } else {
        t.ta(
            "approval-words",
            &[
                ("unit", q.unit.clone()),
                ("dims", dims.join(&format!(" {} ", t.t("approval-and")))),
            ],
        )
    };
    if !q.period_from.is_empty() || !q.period_to.is_empty() {
        let open = t.t("approval-open-end");
        let from = if q.period_from.is_empty() {
            open.clone()
        } else {
            q.period_from.clone()
        };
        let to = if q.period_to.is_empty() {
            open
        } else {
            q.period_to.clone()
        };
        s.push_str(&t.ta("approval-words-period", &[("from", from), ("to", to)]));
    }
    for (d, v) in &q.filters {
        s.push_str(&t.ta(
            "approval-words-filter",
            &[("dim", d.replace('_', " ")), ("values", v.join(", "))],
        ));
    }
    if q.margins {
        s.push_str(&t.t("approval-words-margins"));
    }
    s
}

/// The ρ the held query would charge each quarter it touches, and what would be left (of the
/// node's budget and of the caller's share), as the service plans and charges it.
fn cost(
    console: &Console,
    log: &AuditLog,
    raw: &RawQuery,
    caller: &str,
    data_version: u64,
    t: &Tr,
) -> (String, String, bool) {
    let config = &console.config;
    if !config.privacy.is_zcdp() {
        return (t.t("approval-cost-rules"), String::new(), false);
    }
    let planned = vrs_core::query::Query::parse(raw, &config.policy.query_limits())
        .ok()
        .and_then(|q| {
            let today =
                crate::universe::current_month(console.now_ms(), config.privacy.coverage_from());
            crate::release::plan(q, &config.privacy, today, data_version).ok()
        });
    let Some(plan) = planned else {
        return (t.t("approval-cost-invalid"), String::new(), true);
    };
    let limits = crate::ledger::Limits {
        per_quarter_micro: config.privacy.rho_per_quarter_micro(),
        caller_micro: config.privacy.caller_share_micro(caller),
    };
    let budgets = log
        .budgets(&plan.universe.quarters, caller, limits)
        .unwrap_or_default();
    let rho = plan.rho_micro;
    let labels: Vec<String> = budgets.iter().map(|b| b.quarter.clone()).collect();
    let cost = t.ta(
        "approval-cost",
        &[
            ("rho", t.decimal(rho_of(rho), 6)),
            ("n", t.int(labels.len() as u64)),
            ("quarters", quarter_span(&labels)),
        ],
    );
    let least = budgets
        .iter()
        .map(|b| b.rho_left_micro.min(b.caller_rho_left_micro))
        .min();
    let refuse = least.is_some_and(|l| l < rho);
    let left = match least {
        Some(l) if l < rho => t.ta("approval-left-short", &[("left", t.decimal(rho_of(l), 6))]),
        Some(l) => t.ta("approval-left", &[("after", t.decimal(rho_of(l - rho), 6))]),
        None => String::new(),
    };
    (cost, left, refuse)
}

/// Quarters as a reader takes them in: listed when few, else the first and last (a query's
/// quarters are one unbroken range: the months of its period).
pub(super) fn quarter_span(labels: &[String]) -> String {
    match labels {
        [first, .., last] if labels.len() > 8 => format!("{first} – {last}"),
        _ => labels.join(", "),
    }
}

/// `POST /approvals/{id}/{approve|deny}` (reviewer).
pub(super) async fn decide(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    UrlPath((id, action)): UrlPath<(String, String)>,
) -> Page {
    let (_, user) = viewer.require(Role::Reviewer)?;
    let who = user.username.clone();
    let state = match action.as_str() {
        "approve" => "approved",
        "deny" => "denied",
        _ => return Err(Refusal::NotFound(viewer.lang)),
    };
    if !valid_id(&id) {
        return Err(Refusal::NotFound(viewer.lang));
    }
    let me = console.clone();
    let id2 = id.clone();
    let decided = blocking(move || {
        let dir = me.config.data_dir();
        let mut log = AuditLog::open_existing(&dir)?;
        let held = log.pending_state(&id2)?;
        match log.decide(&id2, state, me.now_ms()) {
            Ok(()) => {}
            Err(AuditError::NoSuchPending(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let (caller, words) = held
            .map(|(_, caller, bytes)| {
                let words = vrs_proto::pb::Query::decode(bytes.as_slice())
                    .map(|q| crate::service::raw_query(q).in_words())
                    .unwrap_or_default();
                (caller, words)
            })
            .unwrap_or_default();
        let mut db = me
            .db
            .lock()
            .map_err(|_| ConsoleError::Internal("console database lock poisoned".into()))?;
        db.record(
            me.now_ms(),
            &who,
            if state == "approved" {
                "query_approved"
            } else {
                "query_denied"
            },
            &id2,
            &format!("{words}; asked by {caller}"),
        )?;
        Ok(true)
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    if decided {
        let done = if state == "approved" {
            "approved"
        } else {
            "denied"
        };
        Ok(Redirect::to(&format!("/approvals?done={done}&id={id}")).into_response())
    } else {
        let t = web::tr(&console, viewer.lang);
        approvals_page(
            &console,
            &viewer,
            StatusCode::CONFLICT,
            None,
            Some(t.t("approval-error-gone")),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_quarters_are_listed_many_are_a_range() {
        let q = |n: usize| -> Vec<String> { (0..n).map(|i| format!("Q{i}")).collect() };
        assert_eq!(quarter_span(&q(2)), "Q0, Q1");
        assert_eq!(quarter_span(&q(8)).matches(", ").count(), 7);
        assert_eq!(quarter_span(&q(9)), "Q0 – Q8");
        assert_eq!(quarter_span(&[]), "");
        assert!(valid_id("89e649b3d6337e4f4f245eb3255d10ba"));
        assert!(!valid_id("short"));
        assert!(!valid_id("../../etc/passwd-xxxxxxxx"));
    }
}
