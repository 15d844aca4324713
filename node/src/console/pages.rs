//! The console's pages: one handler each, each with its askama template
//! (`node/templates/console/`). Every handler asks [`Viewer::require`] for the role it needs
//! before it reads anything; every text shown comes from the Fluent messages.
//!
//! | page                 | role     |
//! |----------------------|----------|
//! | `/` status           | clerk    |
//! | `/imports` (+ upload, commit, cancel; imports.rs) | clerk |
//! | `/preview` (preview.rs) | clerk |
//! | `/approvals` (+ approve, deny; approvals.rs) | reviewer |
//! | `/budget`            | clerk    |
//! | `/audit` (+ verify, export) | reviewer |
//! | `/changes` (+ verify)| reviewer |
//! | `/users` (+ actions) | admin    |

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::accounts::{Password, Role, SignIn, User, Username};
use super::i18n::{Catalog, Lang, Tr};
use super::web::{self, LANG_COOKIE, Refusal, SESSION_COOKIE, Viewer, set_cookie};
use super::{Console, ConsoleError, blocking};
use crate::audit::AuditLog;
use crate::store::Store;

/// The console's routes behind [`web::guard`].
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang/{tag}", get(switch_lang))
        .route("/audit", get(audit))
        .route("/audit/verify", post(audit_verify))
        .route("/audit/export", post(audit_export))
        .route("/budget", get(budget))
        .route("/users", get(users).post(add_user))
        .route("/users/{name}/{action}", post(user_action))
        .route("/changes", get(changes))
        .route("/changes/verify", post(changes_verify))
        // workflow: imports, release preview, approval queue (imports.rs, preview.rs,
        // approvals.rs)
        .route("/imports", get(super::imports::imports))
        .route(super::imports::UPLOAD_PATH, post(super::imports::upload))
        .route("/imports/{id}", get(super::imports::preview))
        .route("/imports/{id}/{action}", post(super::imports::decide))
        .route("/preview", get(super::preview::preview))
        .route("/approvals", get(super::approvals::approvals))
        .route("/approvals/{id}/{action}", post(super::approvals::decide))
        .route("/assets/console.css", get(css))
        .merge(super::records::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            web::guard,
        ))
        .with_state(console)
}

/// What a handler returns: a page, or the refusal shown instead.
pub(super) type Page = Result<Response, Refusal>;

/// One link of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub(super) href: &'static str,
    pub(super) label: String,
    pub(super) current: bool,
}

/// One entry of the language switch.
#[derive(Debug, Clone)]
pub struct LangLink {
    pub(super) href: String,
    pub(super) tag: &'static str,
    pub(super) name: &'static str,
    pub(super) current: bool,
}

/// What every page's frame shows: language, title, who is signed in, the navigation.
#[derive(Debug, Clone)]
pub struct Frame {
    pub(super) t: Tr,
    pub(super) title: String,
    pub(super) user: Option<User>,
    pub(super) role_label: String,
    pub(super) csrf: String,
    pub(super) nav: Vec<NavItem>,
    pub(super) langs: Vec<LangLink>,
    pub(super) country: String,
}

impl Frame {
    /// The frame of a page titled by message `title_key`, for `viewer`.
    pub(super) fn new(console: &Console, viewer: &Viewer, title_key: &str) -> Frame {
        let t = web::tr(console, viewer.lang);
        let user = viewer.session.as_ref().and_then(|s| s.user.clone());
        let role = user.as_ref().map(|u| u.role);
        let pages: [(&'static str, &str, Role); 9] = [
            ("/", "nav-status", Role::Clerk),
            ("/cases", "case-nav", Role::Clerk),
            // workflow: imports, release preview, approval queue
            ("/imports", "import-nav", Role::Clerk),
            ("/preview", "preview-nav", Role::Clerk),
            ("/approvals", "approval-nav", Role::Reviewer),
            ("/budget", "nav-budget", Role::Clerk),
            ("/audit", "nav-audit", Role::Reviewer),
            ("/changes", "nav-changes", Role::Reviewer),
            ("/users", "nav-users", Role::Admin),
        ];
        let nav = pages
            .into_iter()
            .filter(|(_, _, needed)| role.is_some_and(|r| r.at_least(*needed)))
            .map(|(href, key, _)| NavItem {
                href,
                label: t.t(key),
                current: viewer.path == href,
            })
            .collect();
        let langs = Lang::ALL
            .into_iter()
            .map(|l| LangLink {
                href: format!("/lang/{}?next={}", l.tag(), safe_next(&viewer.path)),
                tag: l.tag(),
                name: l.native_name(),
                current: l == viewer.lang,
            })
            .collect();
        Frame {
            title: t.t(title_key),
            role_label: role.map(|r| t.t(role_key(r))).unwrap_or_default(),
            t,
            user,
            csrf: viewer
                .session
                .as_ref()
                .map(|s| s.csrf.as_str().to_string())
                .unwrap_or_default(),
            nav,
            langs,
            country: console.config.file.node.country.to_string(),
        }
    }
}

fn role_key(r: Role) -> &'static str {
    match r {
        Role::Clerk => "role-clerk",
        Role::Reviewer => "role-reviewer",
        Role::Admin => "role-admin",
    }
}

/// A local path to come back to: only `/…` paths of this console (never `//host`).
fn safe_next(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'));
    if ok { path } else { "/" }
}

/// Renders `page` with `status`; a template failure is logged and becomes a 500 page.
pub(super) fn render(status: StatusCode, page: &impl Template, viewer_lang: Lang) -> Page {
    match page.render() {
        Ok(html) => Ok((status, Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            Err(Refusal::Internal(viewer_lang))
        }
    }
}

// ---- errors -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    lang: &'static str,
    title: String,
    message: String,
    home: String,
    app: String,
}

/// The page of a refusal (`forbidden`, `not-found`, `bad-token`, `internal`, `throttled`).
pub fn error_page(lang: Lang, status: StatusCode, key: &str) -> Response {
    let Ok(catalog) = Catalog::shared() else {
        return (status, "error").into_response();
    };
    let t = Tr::new(catalog, lang);
    let page = ErrorPage {
        lang: lang.tag(),
        title: t.t(&format!("{key}-title")),
        message: t.t(&format!("{key}-message")),
        home: t.t("back-home"),
        app: t.t("app-name"),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, "error").into_response(),
    }
}

async fn not_found(
    State(console): State<Arc<Console>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let _ = console;
    error_page(web::lang_of(&headers), StatusCode::NOT_FOUND, "not-found")
}

async fn css() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
        ],
        include_str!("../../assets/console/console.css"),
    )
        .into_response()
}

// ---- sign in / out, language --------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    f: Frame,
    error: Option<String>,
    username: String,
}

async fn login_form(State(console): State<Arc<Console>>, mut viewer: Viewer) -> Page {
    if viewer.require(Role::Clerk).is_ok() {
        return Ok(Redirect::to("/").into_response());
    }
    let mut set = None;
    if viewer.session.is_none() {
        let session = console
            .with_db(|db, now| db.start_session(now, None))
            .await
            .map_err(|e| viewer.internal(e))?;
        set = Some(set_cookie(
            SESSION_COOKIE,
            session.id.as_str(),
            console.secure(),
            None,
        ));
        viewer.session = Some(session);
    }
    let page = LoginPage {
        f: Frame::new(&console, &viewer, "sign-in-title"),
        error: None,
        username: String::new(),
    };
    let mut response = render(StatusCode::OK, &page, viewer.lang)?;
    if let Some(c) = set {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Form(form): Form<LoginForm>,
) -> Page {
    let now = console.now_ms();
    let refuse = |key: &str, status: StatusCode, username: String| {
        let page = LoginPage {
            f: Frame::new(&console, &viewer, "sign-in-title"),
            error: Some(web::tr(&console, viewer.lang).t(key)),
            username,
        };
        render(status, &page, viewer.lang)
    };
    if !console.sign_in_allowed(now) {
        let name = form.username.clone();
        console
            .with_db(move |db, now| {
                db.record(
                    now,
                    "-",
                    "sign_in_throttled",
                    &name,
                    "too many failed sign-ins this minute",
                )
            })
            .await
            .map_err(|e| viewer.internal(e))?;
        return refuse(
            "sign-in-throttled",
            StatusCode::TOO_MANY_REQUESTS,
            form.username,
        );
    }
    let lockout_ms =
        i64::try_from(console.section.lockout_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let name = form.username.clone();
    let password = Password::typed(form.password);
    let outcome = console
        .with_db(move |db, now| db.sign_in(now, &name, &password, lockout_ms))
        .await
        .map_err(|e| viewer.internal(e))?;
    match outcome {
        SignIn::Ok(user) => {
            let old = viewer.session.as_ref().map(|s| s.id.clone());
            let session = console
                .with_db(move |db, now| {
                    if let Some(old) = old {
                        db.end_session(&old)?;
                    }
                    db.start_session(now, Some(&user))
                })
                .await
                .map_err(|e| viewer.internal(e))?;
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, session.id.as_str(), console.secure(), None),
            );
            Ok(response)
        }
        SignIn::Wrong => {
            console.note_failure(now);
            refuse("sign-in-wrong", StatusCode::UNAUTHORIZED, form.username)
        }
        SignIn::Locked => {
            console.note_failure(now);
            refuse("sign-in-locked", StatusCode::UNAUTHORIZED, form.username)
        }
        SignIn::Disabled => {
            console.note_failure(now);
            refuse("sign-in-disabled", StatusCode::UNAUTHORIZED, form.username)
        }
    }
}

async fn logout(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    if let Some(session) = viewer.session.clone() {
        let who = session.user.as_ref().map(|u| u.username.clone());
        console
            .with_db(move |db, now| {
                db.end_session(&session.id)?;
                if let Some(who) = who {
                    db.record(now, &who, "sign_out", &who, "signed out")?;
                }
                Ok(())
            })
            .await
            .map_err(|e| viewer.internal(e))?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", console.secure(), Some(0)),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    next: String,
}

async fn switch_lang(
    State(console): State<Arc<Console>>,
    Path(tag): Path<String>,
    Query(next): Query<Next>,
) -> Response {
    let lang = Lang::from_tag(&tag).unwrap_or_default();
    let mut response = Redirect::to(safe_next(&next.next)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LANG_COOKIE,
            lang.tag(),
            console.secure(),
            Some(365 * 86_400),
        ),
    );
    response
}

// ---- status ---------------------------------------------------------------------------------

/// One line of the status page.
#[derive(Debug, Clone)]
struct Fact {
    label: String,
    value: String,
    /// `ok`, `warn` or `fail` (a CSS class and a word beside the value), or "".
    state: &'static str,
    state_label: String,
}

#[derive(Template)]
#[template(path = "console/status.html")]
struct StatusPage {
    f: Frame,
    facts: Vec<Fact>,
    callers: Vec<String>,
}

async fn status(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    viewer.require(Role::Clerk)?;
    let t = web::tr(&console, viewer.lang);
    let me = console.clone();
    let facts = blocking(move || Ok(status_facts(&me, &t)))
        .await
        .map_err(|e| viewer.internal(e))?;
    let page = StatusPage {
        f: Frame::new(&console, &viewer, "status-title"),
        facts,
        callers: console
            .config
            .file
            .callers
            .iter()
            .map(|c| c.identity.clone())
            .collect(),
    };
    render(StatusCode::OK, &page, viewer.lang)
}

fn fact(t: &Tr, key: &str, value: String, state: &'static str) -> Fact {
    Fact {
        label: t.t(key),
        value,
        state,
        state_label: if state.is_empty() {
            String::new()
        } else {
            t.t(&format!("state-{state}"))
        },
    }
}

/// The facts of the status page; a part that cannot be read says so in its line.
fn status_facts(console: &Console, t: &Tr) -> Vec<Fact> {
    let config = &console.config;
    let mut facts = Vec::new();
    let country = config.file.node.country;
    facts.push(fact(
        t,
        "status-country",
        format!(
            "{country} ({})",
            vrs_core::tls::node_identity(country.as_str())
        ),
        "",
    ));
    facts.push(if config.privacy.is_zcdp() {
        fact(t, "status-protection", t.t("protection-zcdp"), "ok")
    } else {
        fact(t, "status-protection", t.t("protection-rules"), "warn")
    });
    let dir = config.data_dir();
    match Store::open_read_only(&dir) {
        Ok(store) => {
            let counts = store
                .incident_count()
                .and_then(|n| Ok((n, store.statistics_count()?)));
            match counts {
                Ok((n, stats)) => facts.push(fact(
                    t,
                    "status-records",
                    t.ta(
                        "records-value",
                        &[
                            ("incidents", t.int(n - stats.min(n))),
                            ("statistics", t.int(stats)),
                        ],
                    ),
                    "",
                )),
                Err(e) => facts.push(unreadable(t, "status-records", &e.to_string())),
            }
            match store.period_range() {
                Ok(Some((a, b))) => facts.push(fact(t, "status-period", format!("{a} – {b}"), "")),
                Ok(None) => facts.push(fact(t, "status-period", t.t("none-yet"), "")),
                Err(e) => facts.push(unreadable(t, "status-period", &e.to_string())),
            }
            let last: Result<Option<(String, String, i64, i64)>, rusqlite::Error> = {
                use rusqlite::OptionalExtension;
                store
                    .conn()
                    .query_row(
                        "SELECT started_at, file_name, imported, rejected FROM import_run ORDER BY id DESC LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()
            };
            match last {
                Ok(Some((at, file, imported, rejected))) => facts.push(fact(
                    t,
                    "status-last-import",
                    t.ta(
                        "last-import-value",
                        &[
                            ("file", file),
                            ("at", t.date_text(&at)),
                            ("imported", t.signed(imported)),
                            ("rejected", t.signed(rejected)),
                        ],
                    ),
                    "",
                )),
                Ok(None) => facts.push(fact(t, "status-last-import", t.t("none-yet"), "")),
                Err(e) => facts.push(unreadable(t, "status-last-import", &e.to_string())),
            }
        }
        Err(e) => facts.push(unreadable(t, "status-records", &e.to_string())),
    }
    facts.push(certificate_fact(console, t));
    match AuditLog::open_existing(&dir) {
        Ok(log) => match (log.verify(), log.head()) {
            (Ok(Ok(n)), Ok((_, head))) => facts.push(fact(
                t,
                "status-audit",
                t.ta(
                    "audit-intact",
                    &[
                        ("entries", t.int(n)),
                        ("head", head.chars().take(16).collect()),
                    ],
                ),
                "ok",
            )),
            (Ok(Err(b)), _) => facts.push(fact(
                t,
                "status-audit",
                t.ta(
                    "audit-broken",
                    &[("seq", t.signed(b.seq)), ("problem", b.problem)],
                ),
                "fail",
            )),
            (Err(e), _) | (_, Err(e)) => facts.push(unreadable(t, "status-audit", &e.to_string())),
        },
        Err(_) => facts.push(fact(t, "status-audit", t.t("none-yet"), "")),
    }
    match std::fs::read(dir.join(crate::audit::AUDIT_KEY_FILE)) {
        Ok(bytes) => match vrs_core::signing::SigningKey::from_pkcs8(&bytes) {
            Ok(k) => facts.push(fact(t, "status-audit-key", k.public_key().to_hex(), "ok")),
            Err(_) => facts.push(fact(t, "status-audit-key", t.t("audit-key-bad"), "fail")),
        },
        Err(_) => facts.push(fact(t, "status-audit-key", t.t("none-yet"), "")),
    }
    let mut approval = t.t(match config.file.approval.mode {
        crate::config::ApprovalMode::Auto => "approval-auto",
        crate::config::ApprovalMode::Manual => "approval-manual",
    });
    // workflow: how many held queries wait in the approval queue.
    let waiting = AuditLog::open_existing(&dir)
        .and_then(|log| log.pending(false))
        .map(|p| p.len() as u64)
        .unwrap_or(0);
    let state = if waiting > 0 {
        approval.push_str(&t.ta("approval-waiting", &[("n", t.int(waiting))]));
        "warn"
    } else {
        ""
    };
    facts.push(fact(t, "status-approval", approval, state));
    facts
}

fn unreadable(t: &Tr, key: &str, detail: &str) -> Fact {
    // The detail (a path, an SQLite message) goes to the log, not the page.
    tracing::warn!(what = key, error = detail, "console status: cannot read");
    fact(t, key, t.t("cannot-read"), "fail")
}

fn certificate_fact(console: &Console, t: &Tr) -> Fact {
    let Some(tls) = &console.config.file.tls else {
        return fact(t, "status-certificate", t.t("certificate-none"), "warn");
    };
    let not_after = std::fs::read(&tls.cert).ok().and_then(|bytes| {
        let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).ok()?;
        Some(cert.validity().not_after.timestamp())
    });
    let Some(not_after) = not_after else {
        return unreadable(t, "status-certificate", "certificate does not parse");
    };
    let days = (not_after - console.clock.now_secs()).div_euclid(86_400);
    let value = t.ta(
        "certificate-expires",
        &[
            ("date", t.datetime(not_after.saturating_mul(1000))),
            ("days", t.signed(days)),
        ],
    );
    let state = if days < 0 {
        "fail"
    } else if days < crate::check::EXPIRY_WARNING_DAYS {
        "warn"
    } else {
        "ok"
    };
    fact(t, "status-certificate", value, state)
}

// ---- audit log -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
struct AuditFilter {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    before: Option<i64>,
}

/// One row of the audit table.
#[derive(Debug, Clone)]
struct AuditRow {
    seq: i64,
    at: String,
    caller: String,
    query_id: String,
    outcome: String,
    refused: bool,
    digest: String,
}

/// An option of a filter.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    f: Frame,
    rows: Vec<AuditRow>,
    outcomes: Vec<Choice>,
    callers: Vec<Choice>,
    verified: Option<Verdict>,
    older: Option<String>,
    missing: bool,
}

/// A verification's result as shown.
#[derive(Debug, Clone)]
struct Verdict {
    ok: bool,
    text: String,
}

const AUDIT_PAGE_ROWS: i64 = 100;
const OUTCOMES: [(&str, &str); 5] = [
    ("", "filter-any"),
    ("answered", "outcome-answered"),
    ("refused", "outcome-refused-any"),
    ("pending_approval", "outcome-pending"),
    ("cancelled", "outcome-cancelled"),
];

fn outcome_label(t: &Tr, outcome: &str) -> String {
    match outcome {
        "answered" => t.t("outcome-answered"),
        "pending_approval" => t.t("outcome-pending"),
        "cancelled" => t.t("outcome-cancelled"),
        o => match o.strip_prefix("refused:") {
            Some(reason) => t.ta("outcome-refused", &[("reason", reason.to_string())]),
            None => o.to_string(),
        },
    }
}

async fn audit(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(filter): Query<AuditFilter>,
) -> Page {
    viewer.require(Role::Reviewer)?;
    audit_page(&console, &viewer, filter, None).await
}

async fn audit_verify(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    viewer.require(Role::Reviewer)?;
    let t = web::tr(&console, viewer.lang);
    let dir = console.config.data_dir();
    let verdict = blocking(move || {
        Ok(match AuditLog::open_existing(&dir) {
            Err(_) => Verdict {
                ok: true,
                text: t.t("audit-none"),
            },
            Ok(log) => match log.verify()? {
                Ok(n) => Verdict {
                    ok: true,
                    text: t.ta(
                        "audit-intact",
                        &[
                            ("entries", t.int(n)),
                            ("head", log.head()?.1.chars().take(16).collect()),
                        ],
                    ),
                },
                Err(b) => Verdict {
                    ok: false,
                    text: t.ta(
                        "audit-broken",
                        &[("seq", t.signed(b.seq)), ("problem", b.problem)],
                    ),
                },
            },
        })
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    audit_page(&console, &viewer, AuditFilter::default(), Some(verdict)).await
}

async fn audit_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    filter: AuditFilter,
    verified: Option<Verdict>,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let dir = console.config.data_dir();
    let f2 = filter.clone();
    let t2 = t.clone();
    let found = blocking(move || {
        let Ok(log) = AuditLog::open_existing(&dir) else {
            return Ok(None);
        };
        let mut st = log
            .conn
            .prepare(
                "SELECT seq, at_ms, caller, query_id, outcome, answer_digest FROM audit
             WHERE seq < ?1
               AND (?2 = '' OR outcome = ?2 OR (?2 = 'refused' AND outcome LIKE 'refused:%'))
               AND (?3 = '' OR caller = ?3)
             ORDER BY seq DESC LIMIT ?4",
            )
            .map_err(crate::audit::AuditError::from)?;
        let rows = st
            .query_map(
                rusqlite::params![
                    f2.before.unwrap_or(i64::MAX),
                    f2.outcome,
                    f2.caller,
                    AUDIT_PAGE_ROWS
                ],
                |r| {
                    let outcome: String = r.get(4)?;
                    let caller: String = r.get(2)?;
                    let digest: String = r.get(5)?;
                    Ok(AuditRow {
                        seq: r.get(0)?,
                        at: t2.datetime(r.get(1)?),
                        caller: if caller.is_empty() {
                            t2.t("caller-none")
                        } else {
                            caller
                        },
                        query_id: r.get(3)?,
                        refused: outcome.starts_with("refused"),
                        outcome: outcome_label(&t2, &outcome),
                        digest: digest.chars().take(16).collect(),
                    })
                },
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(crate::audit::AuditError::from)?;
        let callers: Vec<String> = log
            .conn
            .prepare("SELECT DISTINCT caller FROM audit WHERE caller != '' ORDER BY caller")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(crate::audit::AuditError::from)?;
        Ok(Some((rows, callers)))
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let missing = found.is_none();
    let (rows, callers) = found.unwrap_or_default();
    let older = (rows.len() as i64 == AUDIT_PAGE_ROWS)
        .then(|| rows.last().map(|r| r.seq))
        .flatten()
        .map(|seq| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("outcome", &filter.outcome)
                .append_pair("caller", &filter.caller)
                .append_pair("before", &seq.to_string())
                .finish()
        });
    let page = AuditPage {
        f: Frame::new(console, viewer, "audit-title"),
        rows,
        outcomes: OUTCOMES
            .iter()
            .map(|(v, key)| Choice {
                value: v.to_string(),
                label: t.t(key),
                selected: filter.outcome == *v,
            })
            .collect(),
        callers: std::iter::once(Choice {
            value: String::new(),
            label: t.t("filter-any"),
            selected: filter.caller.is_empty(),
        })
        .chain(callers.into_iter().map(|c| Choice {
            selected: filter.caller == c,
            label: c.clone(),
            value: c,
        }))
        .collect(),
        verified,
        older,
        missing,
    };
    render(StatusCode::OK, &page, viewer.lang)
}

async fn audit_export(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    let (_, user) = viewer.require(Role::Reviewer)?;
    let who = user.username.clone();
    let dir = console.config.data_dir();
    let body = blocking(move || {
        let mut out = String::new();
        let Ok(log) = AuditLog::open_existing(&dir) else {
            return Ok((out, 0u64));
        };
        let mut from = 1;
        let mut n = 0u64;
        loop {
            let batch = log.entries(from, 1000)?;
            let Some(last) = batch.last() else { break };
            from = last.seq + 1;
            for e in &batch {
                out.push_str(
                    &serde_json::to_string(e)
                        .map_err(|e| ConsoleError::Internal(format!("json: {e}")))?,
                );
                out.push('\n');
                n += 1;
            }
        }
        Ok((out, n))
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let (text, n) = body;
    console
        .with_db(move |db, now| {
            db.record(
                now,
                &who,
                "audit_exported",
                "",
                &format!("{n} entries as JSON Lines"),
            )
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    let name = format!(
        "attachment; filename=\"audit-{}.jsonl\"",
        console.config.file.node.country
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        text,
    )
        .into_response())
}

// ---- budget -------------------------------------------------------------------------------

/// One quarter of the budget table.
#[derive(Debug, Clone)]
struct BudgetRow {
    quarter: String,
    spent: String,
    left: String,
    percent: u32,
    percent_text: String,
    by_caller: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/budget.html")]
struct BudgetPage {
    f: Frame,
    zcdp: bool,
    intro: String,
    rows: Vec<BudgetRow>,
    all: bool,
}

#[derive(Debug, Default, Deserialize)]
struct BudgetQuery {
    #[serde(default)]
    all: Option<String>,
}

async fn budget(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(q): Query<BudgetQuery>,
) -> Page {
    viewer.require(Role::Clerk)?;
    let all = q.all.is_some();
    let t = web::tr(&console, viewer.lang);
    let me = console.clone();
    let t2 = t.clone();
    let rows = blocking(move || {
        let config = &me.config;
        let audit = AuditLog::open_existing(&config.data_dir()).ok();
        let today =
            crate::universe::current_month(me.clock.now_ms(), config.privacy.coverage_from());
        let total = config.privacy.rho_per_quarter_micro().max(1);
        let lines = crate::budget::lines(config, audit.as_ref(), today)?;
        let rho = crate::disclosure::zcdp::rho_of;
        Ok(lines
            .into_iter()
            .filter(|l| all || l.spent_micro > 0)
            .map(|l| {
                let pct = (l.spent_micro.saturating_mul(100) / total).min(100) as u32;
                BudgetRow {
                    quarter: l.quarter,
                    spent: t2.decimal(rho(l.spent_micro), 6),
                    left: t2.decimal(rho(l.left_micro), 6),
                    percent: pct,
                    percent_text: t2.ta("percent", &[("n", t2.int(u64::from(pct)))]),
                    by_caller: l
                        .by_caller
                        .into_iter()
                        .map(|(c, v)| (c, t2.decimal(rho(v), 6)))
                        .collect(),
                }
            })
            .collect::<Vec<_>>())
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let page = BudgetPage {
        f: Frame::new(&console, &viewer, "budget-title"),
        zcdp: console.config.privacy.is_zcdp(),
        intro: t.ta(
            "budget-intro",
            &[(
                "total",
                t.decimal(
                    crate::disclosure::zcdp::rho_of(console.config.privacy.rho_per_quarter_micro()),
                    6,
                ),
            )],
        ),
        rows,
        all,
    };
    render(StatusCode::OK, &page, viewer.lang)
}

// ---- users ----------------------------------------------------------------------------------

/// One account in the user table.
#[derive(Debug, Clone)]
struct UserRow {
    username: String,
    display_name: String,
    role: String,
    state: String,
    state_class: &'static str,
    disabled: bool,
    lockable: bool,
    last_sign_in: String,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    f: Frame,
    users: Vec<UserRow>,
    roles: Vec<Choice>,
    notice: Option<String>,
    error: Option<String>,
    username: String,
    display_name: String,
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
    #[serde(default)]
    user: String,
}

async fn users(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Page {
    viewer.require(Role::Admin)?;
    let t = web::tr(&console, viewer.lang);
    let notice = match done.done.as_str() {
        k @ ("added" | "disabled" | "enabled" | "unlocked" | "password") => {
            Some(t.ta(&format!("done-{k}"), &[("user", done.user.clone())]))
        }
        _ => None,
    };
    users_page(
        &console,
        &viewer,
        StatusCode::OK,
        notice,
        None,
        Default::default(),
    )
    .await
}

async fn users_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    typed: (String, String, String),
) -> Page {
    let t = web::tr(console, viewer.lang);
    let me = viewer
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let list = console
        .with_db(|db, now| Ok((db.users()?, now)))
        .await
        .map_err(|e| viewer.internal(e))?;
    let (list, now) = list;
    let users = list
        .into_iter()
        .map(|u| {
            let (state, class) = if u.disabled {
                ("user-disabled", "fail")
            } else if u.locked(now) {
                ("user-locked", "warn")
            } else {
                ("user-active", "ok")
            };
            UserRow {
                is_me: u.username == me,
                lockable: u.locked(now) || u.failed_count > 0,
                last_sign_in: u
                    .last_sign_in_ms
                    .map(|ms| t.datetime(ms))
                    .unwrap_or_else(|| t.t("never")),
                role: t.t(role_key(u.role)),
                state: t.t(state),
                state_class: class,
                disabled: u.disabled,
                username: u.username,
                display_name: u.display_name,
            }
        })
        .collect();
    let (username, display_name, role) = typed;
    let page = UsersPage {
        f: Frame::new(console, viewer, "users-title"),
        users,
        roles: Role::ALL
            .into_iter()
            .map(|r| Choice {
                value: r.as_str().to_string(),
                label: t.t(role_key(r)),
                selected: if role.is_empty() {
                    r == Role::Clerk
                } else {
                    role == r.as_str()
                },
            })
            .collect(),
        notice,
        error,
        username,
        display_name,
    };
    render(status, &page, viewer.lang)
}

#[derive(Debug, Deserialize)]
struct NewUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn invalid_message(t: &Tr, e: &ConsoleError) -> Option<String> {
    match e {
        ConsoleError::Invalid(i) => Some(t.ta(
            i.message_key(),
            &[
                ("min", super::accounts::MIN_PASSWORD_CHARS.to_string()),
                ("max", super::accounts::MAX_PASSWORD_CHARS.to_string()),
            ],
        )),
        ConsoleError::NoSuchUser(_) => Some(t.t("error-no-such-user")),
        _ => None,
    }
}

async fn add_user(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Form(form): Form<NewUser>,
) -> Page {
    let (_, admin) = viewer.require(Role::Admin)?;
    let actor = admin.username.clone();
    let typed = (
        form.username.clone(),
        form.display_name.clone(),
        form.role.clone(),
    );
    let username = form.username.clone();
    let added = console
        .with_db(move |db, now| {
            let name = Username::parse(form.username.trim())?;
            let role: Role = form.role.parse()?;
            if form.password != form.confirm {
                return Err(super::Invalid::PasswordsDiffer.into());
            }
            let password = Password::new(form.password)?;
            db.add_user(now, &actor, &name, &form.display_name, role, &password)
        })
        .await;
    match added {
        Ok(_) => Ok(Redirect::to(&format!(
            "/users?done=added&user={}",
            urlencode(username.trim())
        ))
        .into_response()),
        Err(e) => {
            let t = web::tr(&console, viewer.lang);
            match invalid_message(&t, &e) {
                Some(msg) => {
                    users_page(
                        &console,
                        &viewer,
                        StatusCode::BAD_REQUEST,
                        None,
                        Some(msg),
                        typed,
                    )
                    .await
                }
                None => Err(viewer.internal(e)),
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn user_action(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Page {
    let (_, admin) = viewer.require(Role::Admin)?;
    let actor = admin.username.clone();
    if !matches!(
        action.as_str(),
        "disable" | "enable" | "unlock" | "password"
    ) {
        return Err(Refusal::NotFound(viewer.lang));
    }
    let (act, who) = (action.clone(), name.clone());
    let done = console
        .with_db(move |db, now| match act.as_str() {
            "disable" => db.set_disabled(now, &actor, &who, true),
            "enable" => db.set_disabled(now, &actor, &who, false),
            "unlock" => db.unlock(now, &actor, &who),
            _ => {
                if form.password != form.confirm {
                    return Err(super::Invalid::PasswordsDiffer.into());
                }
                db.set_password(now, &actor, &who, &Password::new(form.password)?)
            }
        })
        .await;
    match done {
        Ok(()) => {
            let key = match action.as_str() {
                "disable" => "disabled",
                "enable" => "enabled",
                "unlock" => "unlocked",
                _ => "password",
            };
            Ok(
                Redirect::to(&format!("/users?done={key}&user={}", urlencode(&name)))
                    .into_response(),
            )
        }
        Err(e) => {
            let t = web::tr(&console, viewer.lang);
            match invalid_message(&t, &e) {
                Some(msg) => {
                    users_page(
                        &console,
                        &viewer,
                        StatusCode::BAD_REQUEST,
                        None,
                        Some(msg),
                        Default::default(),
                    )
                    .await
                }
                None => Err(viewer.internal(e)),
            }
        }
    }
}

// ---- change log ----------------------------------------------------------------------------

/// One row of the change log table.
#[derive(Debug, Clone)]
struct ChangeRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    detail: String,
    hash: String,
}

#[derive(Template)]
#[template(path = "console/changes.html")]
struct ChangesPage {
    f: Frame,
    rows: Vec<ChangeRow>,
    verified: Option<Verdict>,
    older: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct Before {
    #[serde(default)]
    before: Option<i64>,
}

const CHANGE_PAGE_ROWS: i64 = 100;

async fn changes(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(before): Query<Before>,
) -> Page {
    viewer.require(Role::Reviewer)?;
    changes_page(&console, &viewer, before.before, None).await
}

async fn changes_verify(State(console): State<Arc<Console>>, viewer: Viewer) -> Page {
    viewer.require(Role::Reviewer)?;
    let t = web::tr(&console, viewer.lang);
    let verdict = console
        .with_db(move |db, _| {
            Ok(match db.verify_changes()? {
                Ok(n) => Verdict {
                    ok: true,
                    text: t.ta("changes-intact", &[("entries", t.int(n))]),
                },
                Err(b) => Verdict {
                    ok: false,
                    text: t.ta(
                        "changes-broken",
                        &[("seq", t.signed(b.seq)), ("problem", b.problem)],
                    ),
                },
            })
        })
        .await
        .map_err(|e| viewer.internal(e))?;
    changes_page(&console, &viewer, None, Some(verdict)).await
}

fn action_label(t: &Tr, action: &str) -> String {
    let key = format!("action-{}", action.replace('_', "-"));
    let text = t.t(&key);
    if text == key {
        action.to_string()
    } else {
        text
    }
}

async fn changes_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    before: Option<i64>,
    verified: Option<Verdict>,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let list = console
        .with_db(move |db, _| db.changes(before, CHANGE_PAGE_ROWS))
        .await
        .map_err(|e| viewer.internal(e))?;
    let older = (list.len() as i64 == CHANGE_PAGE_ROWS)
        .then(|| list.last().map(|c| c.seq))
        .flatten();
    let rows = list
        .into_iter()
        .map(|c| ChangeRow {
            seq: c.seq,
            at: t.datetime(c.at_ms),
            actor: c.actor,
            action: action_label(&t, &c.action),
            subject: c.subject,
            detail: c.detail,
            hash: c.hash.chars().take(12).collect(),
        })
        .collect();
    let page = ChangesPage {
        f: Frame::new(console, viewer, "changes-title"),
        rows,
        verified,
        older,
    };
    render(StatusCode::OK, &page, viewer.lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next("/audit"), "/audit");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/a?b",
            "",
            "/\\evil",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }
}
