//! The ORT form and the case pages over real HTTP on 127.0.0.1:0: the form goes through the
//! import's reader and insert (same record as importing the same row, same refusals), field
//! errors beside their inputs with nothing saved and nothing typed lost, edit and soft delete
//! move the data version on, delete and restore take the record out of the counts and back,
//! every change is in the hash-chained change log, CSRF, clerk and reviewer permissions,
//! drafts, the review policy, hostile posts.
//!
//! The harness (TestConsole, http, sign_in) is tests/support, shared with tests/console.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: failing loudly is the point

use std::net::SocketAddr;
use std::path::Path;

use vrs_node::config::{NodeConfig, initial_config};
use vrs_node::console::accounts::Role;
use vrs_node::console::db::ConsoleDb;
use vrs_node::record::IncidentRecord;
use vrs_node::store::Store;

mod support;
use support::*;

/// The change log as (who, what, to what, detail), after checking its hash chain and that
/// every case change says when (the harness adds its users at time 0).
fn changes(dir: &Path) -> Vec<(String, String, String, String)> {
    let db = ConsoleDb::open(dir).unwrap();
    assert!(db.verify_changes().unwrap().is_ok(), "the chain holds");
    let all = db.changes(None, 1000).unwrap();
    assert!(
        all.iter()
            .filter(|c| c.action.starts_with("case_"))
            .all(|c| c.at_ms > 1_700_000_000_000),
        "every case change has its time"
    );
    all.into_iter()
        .map(|c| (c.actor, c.action, c.subject, c.detail))
        .collect()
}

fn stored(dir: &Path, source: &str) -> Option<IncidentRecord> {
    Store::open_read_only(dir).unwrap().record(source).unwrap()
}

/// Every unit's total over the whole store, as the query engine aggregates it (before
/// disclosure control): what a release would count.
fn totals(dir: &Path) -> Vec<(String, i64)> {
    use vrs_core::query::{Query, QueryLimits, RawQuery, Unit};
    let store = Store::open_read_only(dir).unwrap();
    Unit::ALL
        .iter()
        .map(|u| {
            let raw = RawQuery {
                unit: u.code().into(),
                ..RawQuery::default()
            };
            let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
            let total = vrs_node::query::aggregate(&store, &q)
                .unwrap()
                .cells
                .iter()
                .map(|c| c.value)
                .sum();
            (u.code().to_string(), total)
        })
        .collect()
}

fn counts(dir: &Path) -> (u64, u64) {
    let s = Store::open_read_only(dir).unwrap();
    (s.incident_count().unwrap(), s.data_version().unwrap())
}

/// A complete case: two legs, two methods, a fee, two migrant groups, a smuggler.
fn full_case(source: &str) -> Vec<(String, String)> {
    [
        ("source_id", source),
        ("period", "2024-03"),
        ("date", "2024-03-14"),
        ("agency", "POLRI"),
        ("country", "IDN"),
        ("place_type", "sea"),
        ("mode", "sea"),
        ("dead", "1"),
        ("missing", ""),
        ("origin", "mmr"),
        ("leg-0-to", "MYS"),
        ("leg-0-mode", "land"),
        ("leg-1-to", "IDN"),
        ("leg-1-mode", "sea"),
        ("method", "guide_escort"),
        ("method", "concealment_vessel"),
        ("fee-0-amount", "1500"),
        ("fee-0-currency", "usd"),
        ("fee-0-scope", "full_journey"),
        ("fee-0-payment", "cash"),
        ("group-0-citizenship", "MMR"),
        ("group-0-sex", "M"),
        ("group-0-age", "18-24"),
        ("group-0-count", "12"),
        ("group-1-citizenship", "MMR"),
        ("group-1-sex", "F"),
        ("group-1-age", "14-17"),
        ("group-1-unaccompanied", "1"),
        ("group-1-count", "3"),
        ("smuggler-0-citizenship", "IDN"),
        ("smuggler-0-sex", "M"),
        ("smuggler-0-age", "35-49"),
        ("smuggler-0-role", "transporter"),
        ("smuggler-0-stage", "arrested"),
        ("note", "boat intercepted <script>alert(1)</script>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The same case as one row of the CSV template, as `vrs-node import` reads it.
const FULL_CASE_CSV: &str = "source_id,period,date,agency,country,place_type,mode,dead,missing,route,route_modes,methods,fees,migrants,smugglers,note\n\
CASE,2024-03,2024-03-14,POLRI,IDN,sea,sea,1,,MMR>MYS>IDN,land;sea,guide_escort;concealment_vessel,1500 USD full_journey cash,MMR:M:18-24:12;MMR:F:14-17:U:3,IDN:M:35-49:transporter:arrested,boat intercepted <script>alert(1)</script>\n";

fn with(mut form: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    match form.iter_mut().find(|(k, _)| k == key) {
        Some(kv) => kv.1 = value.to_string(),
        None => form.push((key.to_string(), value.to_string())),
    }
    form
}

fn encode(csrf: &str, action: &str, form: &[(String, String)]) -> String {
    let mut out = format!("csrf={csrf}&action={action}");
    for (k, v) in form {
        out.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    out
}

/// A page's CSRF token (signed in).
async fn token(addr: SocketAddr, cookie: &str) -> String {
    let page = http(addr, "GET", "/cases/new", cookie, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.csrf()
}

async fn post_case(
    addr: SocketAddr,
    cookie: &str,
    action: &str,
    form: &[(String, String)],
) -> Reply {
    let csrf = token(addr, cookie).await;
    http(
        addr,
        "POST",
        "/cases/form",
        cookie,
        &encode(&csrf, action, form),
    )
    .await
}

/// Imports `csv` into a fresh store of the same configuration; the import's report.
fn import_csv(csv: &str) -> (vrs_node::import::FileReport, Option<IncidentRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let country = "IDN".parse().unwrap();
    let mut store = Store::create(dir.path(), country).unwrap();
    std::fs::write(dir.path().join("node.toml"), initial_config(country)).unwrap();
    let config = NodeConfig::load(dir.path()).unwrap();
    let file = dir.path().join("rows.csv");
    std::fs::write(&file, csv).unwrap();
    let report = vrs_node::import::import_file(
        &mut store,
        &file,
        &config.file.fx,
        &vrs_node::import::ImportOptions::default(),
    )
    .unwrap();
    let record = store.record("CASE").unwrap();
    (report, record)
}

/// Whether the page marks input `name` invalid with a message beside it.
fn field_error(body: &str, name: &str) -> bool {
    body.contains(&format!("id=\"f-{name}\" name=\"{name}\""))
        && body.contains(&format!("id=\"f-{name}-error\""))
}

#[tokio::test]
async fn the_form_stores_what_importing_the_same_row_stores() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    let (n0, v0) = counts(c.path());
    let r = post_case(c.addr, &clerk, "save", &full_case("CASE")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("/cases?done=created")
    );
    let from_form = stored(c.path(), "CASE").expect("stored");
    let (report, imported) = import_csv(FULL_CASE_CSV);
    assert_eq!(report.imported, 1, "{report:?}");
    assert_eq!(
        Some(from_form.clone()),
        imported,
        "the form and the import store the same record"
    );
    assert_eq!(from_form.route.len(), 2);
    assert_eq!(from_form.migrants.len(), 2);
    let (n1, v1) = counts(c.path());
    assert_eq!(
        (n1, v1),
        (n0 + 1, v0 + 1),
        "counted, and a new data version"
    );
    // The import run is named for the console and its user.
    let run: String = Store::open_read_only(c.path())
        .unwrap()
        .conn()
        .query_row(
            "SELECT file_name FROM import_run ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(run, "console:budi");
    // In the change log with who and what.
    let log = changes(c.path());
    let e = log.iter().find(|l| l.1 == "case_created").expect("logged");
    assert_eq!((e.0.as_str(), e.2.as_str()), ("budi", "CASE"));
    assert!(e.3.contains("2 legs") && e.3.contains("sha256"), "{}", e.3);
    // The note's markup is text on the edit page.
    let page = http(c.addr, "GET", "/cases/edit?source=CASE", &clerk, "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(!page.body.contains("<script>"));
    // Listed, and found by search; a search for something else does not find it.
    let list = http(c.addr, "GET", "/cases?q=intercepted", &clerk, "").await;
    assert!(
        list.body.contains("/cases/edit?source=CASE"),
        "{}",
        list.body
    );
    let list = http(c.addr, "GET", "/cases?q=nothing-like-it", &clerk, "").await;
    assert!(!list.body.contains("/cases/edit?source=CASE"));
    let list = http(
        c.addr,
        "GET",
        "/cases?origin=MMR&from=2024-01&to=2024-06",
        &clerk,
        "",
    )
    .await;
    assert!(list.body.contains("/cases/edit?source=CASE"));
    let list = http(c.addr, "GET", "/cases?destination=THA", &clerk, "").await;
    assert!(!list.body.contains("/cases/edit?source=CASE"));
    // The same source id again is refused beside the source id, and nothing changes.
    let again = post_case(c.addr, &clerk, "save", &full_case("CASE")).await;
    assert_eq!(again.status, 400);
    assert!(field_error(&again.body, "source_id"), "{}", again.body);
    assert_eq!(counts(c.path()), (n1, v1));
    c.stop().await;
}

#[tokio::test]
async fn bad_values_are_refused_as_the_import_refuses_them_beside_their_field() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    // (form field, bad value, the same value in the CSV row, the input marked).
    let cases = [
        ("date", "2024-02-30", "2024-03-14", "2024-02-30", "date"),
        ("country", "XYZ", ",IDN,", ",XYZ,", "country"),
        ("leg-0-to", "QQQ", "MMR>MYS", "MMR>QQQ", "leg-0-to"),
        (
            "fee-0-currency",
            "ZZZ",
            "1500 USD",
            "1500 ZZZ",
            "fee-0-currency",
        ),
        ("group-1-count", "0", ":U:3", ":U:0", "group-1-count"),
        (
            "group-0-age",
            "50+",
            "MMR:M:18-24:12",
            "MMR:M:50+:12",
            "group-0-age",
        ),
        (
            "smuggler-0-citizenship",
            "ABCD",
            "IDN:M:35-49",
            "ABCD:M:35-49",
            "smuggler-0-citizenship",
        ),
        (
            "period",
            "2024-13",
            "CASE,2024-03,2024-03-14",
            "CASE,2024-13,2024-03-14",
            "period",
        ),
    ];
    for (field, bad, csv_good, csv_bad, marked) in cases {
        let mut form = with(full_case("CASE"), field, bad);
        if field == "group-0-age" {
            // An unaccompanied group of adults: a cross-field rule, not a code.
            form = with(form, "group-0-unaccompanied", "1");
        }
        let r = post_case(c.addr, &clerk, "save", &form).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert!(
            field_error(&r.body, marked),
            "{field}: no error beside {marked}"
        );
        assert!(stored(c.path(), "CASE").is_none(), "{field}: nothing saved");
        // Nothing typed is lost: every value comes back, the bad one too.
        for (k, v) in &form {
            if k == "note" || k == "method" || k.ends_with("unaccompanied") {
                continue;
            }
            let shown = format!(
                "value=\"{}\"",
                v.replace('<', "&#60;").replace('>', "&#62;")
            );
            assert!(
                r.body.contains(&shown)
                    || r.body.contains(&format!("<option value=\"{v}\" selected>")),
                "{field}: {k}={v} lost"
            );
        }
        assert!(
            r.body.contains("boat intercepted &#60;script&#62;"),
            "the note is kept"
        );
        // The import refuses the same row.
        let mut row = FULL_CASE_CSV.replacen(csv_good, csv_bad, 1);
        if field == "group-0-age" {
            row = row.replacen("MMR:M:50+:12", "MMR:M:50+:U:12", 1);
        }
        assert_ne!(row, FULL_CASE_CSV, "{field}: the CSV changed");
        let (report, record) = import_csv(&row);
        assert_eq!(
            (report.imported, report.rejected),
            (0, 1),
            "{field}: {report:?}"
        );
        assert!(record.is_none());
        let reason = &report.rejections[0].reason;
        // A code the import names is named in the same words on the form.
        if reason.contains("is not a valid") {
            let said = reason.split(": ").last().unwrap();
            assert!(
                r.body.contains(&said.replace('"', "&#34;")),
                "{field}: {said} not on the page"
            );
        }
    }
    c.stop().await;
}

#[tokio::test]
async fn edit_and_soft_delete_move_the_data_version_and_restore_brings_it_back() {
    let c = TestConsole::start(&[
        ("budi", "Budi", Role::Clerk),
        ("rina", "Rina", Role::Reviewer),
    ])
    .await;
    let clerk = sign_in(c.addr, "budi").await;
    let empty = totals(c.path());
    assert_eq!(
        post_case(c.addr, &clerk, "save", &full_case("CASE"))
            .await
            .status,
        303
    );
    let (n1, v1) = counts(c.path());
    let counted = totals(c.path());
    let migrants = counted.iter().find(|(u, _)| u == "migrants").unwrap().1;
    assert_eq!(migrants, 15, "{counted:?}");
    // Edit: the same source id, one more person, a new data version, the count unchanged.
    let edited = with(
        with(full_case("CASE"), "group-0-count", "13"),
        "note",
        "edited",
    );
    let csrf = token(c.addr, &clerk).await;
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!("{}&original=CASE", encode(&csrf, "save", &edited)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let rec = stored(c.path(), "CASE").unwrap();
    assert_eq!(rec.migrants[0].count, 13);
    assert_eq!(rec.note.as_deref(), Some("edited"));
    assert_eq!(counts(c.path()), (n1, v1 + 1));
    let log = changes(c.path());
    let e = log.iter().find(|l| l.1 == "case_edited").unwrap();
    assert!(e.3.starts_with("changed: migrants, note"), "{}", e.3);
    // Two people edit at once: the second save, begun on the version before the first, is
    // refused and the first change stays.
    let page = http(c.addr, "GET", "/cases/edit?source=CASE", &clerk, "").await;
    let needle = "name=\"base\" value=\"";
    let at = page.body.find(needle).unwrap() + needle.len();
    let base = &page.body[at..at + 64];
    let csrf = page.csrf();
    let first = with(edited.clone(), "note", "first");
    let second = with(edited.clone(), "note", "second");
    for (form, status) in [(first, 303), (second, 400)] {
        let r = http(
            c.addr,
            "POST",
            "/cases/form",
            &clerk,
            &format!("{}&original=CASE&base={base}", encode(&csrf, "save", &form)),
        )
        .await;
        assert_eq!(r.status, status, "{}", r.body);
        if status == 400 {
            assert!(r.body.contains("changed by someone else"));
        }
    }
    assert_eq!(
        stored(c.path(), "CASE").unwrap().note.as_deref(),
        Some("first")
    );
    // Put the note back as the rest of the test expects.
    let page = http(c.addr, "GET", "/cases/edit?source=CASE", &clerk, "").await;
    let csrf = page.csrf();
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!("{}&original=CASE", encode(&csrf, "save", &edited)),
    )
    .await;
    assert_eq!(r.status, 303);
    let rec = stored(c.path(), "CASE").unwrap();
    let v1 = v1 + 2;
    // An edit cannot change the source id.
    let csrf = token(c.addr, &clerk).await;
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!(
            "{}&original=CASE",
            encode(&csrf, "save", &full_case("OTHER"))
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(stored(c.path(), "OTHER").is_none());
    // Soft delete: out of the store and the counts, a new data version, kept for restoring.
    let csrf = token(c.addr, &clerk).await;
    let r = http(
        c.addr,
        "POST",
        "/cases/delete",
        &clerk,
        &format!("csrf={csrf}&source=CASE"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(stored(c.path(), "CASE").is_none());
    assert_eq!(counts(c.path()), (n1 - 1, v1 + 2));
    assert_eq!(totals(c.path()), empty, "no unit counts the deleted case");
    let integrity = Store::open_read_only(c.path())
        .unwrap()
        .integrity_problems()
        .unwrap();
    assert!(integrity.is_empty(), "{integrity:?}");
    // A clerk may not restore, nor see the deleted cases or the review queue.
    for path in ["/cases/deleted", "/cases/review"] {
        assert_eq!(
            http(c.addr, "GET", path, &clerk, "").await.status,
            403,
            "{path}"
        );
    }
    let list = http(c.addr, "GET", "/cases", &clerk, "").await;
    assert!(
        !list.body.contains("/cases/deleted"),
        "not offered to a clerk"
    );
    let r = http(
        c.addr,
        "POST",
        "/cases/restore",
        &clerk,
        &format!("csrf={csrf}&id=1"),
    )
    .await;
    assert_eq!(r.status, 403);
    // A new case may not take a deleted case's source id.
    let r = post_case(c.addr, &clerk, "save", &full_case("CASE")).await;
    assert_eq!(r.status, 400);
    assert!(field_error(&r.body, "source_id"));
    // The reviewer restores it: as it was, counted again, a new data version.
    let reviewer = sign_in(c.addr, "rina").await;
    let page = http(c.addr, "GET", "/cases/deleted", &reviewer, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<code>CASE</code>"));
    let csrf = page.csrf();
    let r = http(
        c.addr,
        "POST",
        "/cases/restore",
        &reviewer,
        &format!("csrf={csrf}&id=1"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(stored(c.path(), "CASE"), Some(rec));
    assert_eq!(counts(c.path()), (n1, v1 + 3));
    let restored = totals(c.path());
    assert_eq!(
        restored.iter().find(|(u, _)| u == "migrants").unwrap().1,
        16,
        "as edited"
    );
    let log = changes(c.path());
    let actions: Vec<_> = log.iter().map(|l| (l.0.as_str(), l.1.as_str())).collect();
    for want in [
        ("budi", "case_created"),
        ("budi", "case_edited"),
        ("budi", "case_deleted"),
        ("rina", "case_restored"),
    ] {
        assert!(actions.contains(&want), "{want:?} in {actions:?}");
    }
    c.stop().await;
}

#[tokio::test]
async fn a_statistics_row_opens_read_only_and_can_be_deleted() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    {
        let mut store = Store::open(c.path()).unwrap();
        let config = NodeConfig::load(c.path()).unwrap();
        let rec: IncidentRecord = serde_json::from_str(
            r#"{"kind":"statistics","source_id":"STAT-1","period":"2024-05","country":"IDN",
                "migrants":[{"citizenship":"AFG","sex":"M","age_group":"18-24","count":40}]}"#,
        )
        .unwrap();
        let mut tx = store
            .begin_import("stats.jsonl", "", &config.file.fx)
            .unwrap();
        tx.insert(&rec).unwrap();
        tx.commit(vrs_node::store::ImportCounts::default()).unwrap();
    }
    let clerk = sign_in(c.addr, "budi").await;
    let page = http(c.addr, "GET", "/cases/edit?source=STAT-1", &clerk, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("cannot show in full"), "{}", page.body);
    assert!(
        !page.body.contains("action=\"/cases/form\""),
        "not offered for editing"
    );
    let list = http(c.addr, "GET", "/cases", &clerk, "").await;
    assert!(list.body.contains("statistics</span>"));
    let csrf = page.csrf();
    let r = http(
        c.addr,
        "POST",
        "/cases/delete",
        &clerk,
        &format!("csrf={csrf}&source=STAT-1"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(stored(c.path(), "STAT-1").is_none());
    c.stop().await;
}

#[tokio::test]
async fn the_list_pages_newest_first() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    {
        let mut store = Store::open(c.path()).unwrap();
        let config = NodeConfig::load(c.path()).unwrap();
        let mut tx = store.begin_import("many.csv", "", &config.file.fx).unwrap();
        for i in 0..55 {
            let rec: IncidentRecord = serde_json::from_str(&format!(
                r#"{{"source_id":"P-{i:02}","period":"2024-05","country":"IDN"}}"#
            ))
            .unwrap();
            tx.insert(&rec).unwrap();
        }
        tx.commit(vrs_node::store::ImportCounts::default()).unwrap();
    }
    let clerk = sign_in(c.addr, "budi").await;
    let first = http(c.addr, "GET", "/cases", &clerk, "").await;
    assert!(first.body.contains(">P-54<") && first.body.contains(">P-05<"));
    assert!(!first.body.contains(">P-04<"), "50 a page");
    let at = first.body.find("/cases?q=").expect("a link to older cases");
    let href: String = first.body[at..].chars().take_while(|c| *c != '"').collect();
    let href = href.replace("&amp;", "&").replace("&#38;", "&");
    let older = http(c.addr, "GET", &href, &clerk, "").await;
    assert_eq!(older.status, 200, "{href}");
    assert!(older.body.contains(">P-04<") && older.body.contains(">P-00<"));
    assert!(!older.body.contains(">P-05<"));
    c.stop().await;
}

#[tokio::test]
async fn posts_without_the_csrf_token_change_nothing() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    let before = counts(c.path());
    let form = encode("", "save", &full_case("CASE"));
    let form = form.trim_start_matches("csrf=&");
    let r = http(c.addr, "POST", "/cases/form", &clerk, form).await;
    assert_eq!(r.status, 403);
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!("csrf={}&{form}", "0".repeat(64)),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(counts(c.path()), before);
    assert!(stored(c.path(), "CASE").is_none());
    // Delete and restore without the token change nothing either.
    assert_eq!(
        post_case(c.addr, &clerk, "save", &full_case("CASE"))
            .await
            .status,
        303
    );
    let stored_now = counts(c.path());
    for (path, body) in [("/cases/delete", "source=CASE"), ("/cases/restore", "id=1")] {
        let r = http(c.addr, "POST", path, &clerk, body).await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(counts(c.path()), stored_now);
    assert!(stored(c.path(), "CASE").is_some());
    // Not signed in: to the sign-in page, for every case page.
    for path in [
        "/cases",
        "/cases/new",
        "/cases/edit?source=CASE",
        "/cases/review",
    ] {
        let r = http(c.addr, "GET", path, "", "").await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "{path}"
        );
    }
    c.stop().await;
}

#[tokio::test]
async fn rows_are_added_and_removed_in_place_and_a_draft_is_resumed() {
    let c =
        TestConsole::start(&[("budi", "Budi", Role::Clerk), ("siti", "Siti", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    let form = with(full_case("CASE"), "date", "not a date");
    let r = post_case(c.addr, &clerk, "add-leg", &form).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"leg-2-to\""), "a third leg");
    assert!(r.body.contains("value=\"not a date\""), "typed values kept");
    let r = post_case(c.addr, &clerk, "remove-group-0", &form).await;
    assert!(!r.body.contains("name=\"group-1-count\""), "one group left");
    assert!(r.body.contains("value=\"3\""), "the second group moved up");
    assert!(
        stored(c.path(), "CASE").is_none(),
        "a row button saves nothing"
    );
    // A draft may be invalid; it is kept in console.sqlite, not counted.
    let before = counts(c.path());
    let r = post_case(c.addr, &clerk, "draft", &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("/cases/new?draft=")
    );
    assert_eq!(counts(c.path()), before);
    let list = http(c.addr, "GET", "/cases", &clerk, "").await;
    let at = list
        .body
        .find("/cases/new?draft=")
        .expect("the draft is listed")
        + 17;
    let id: String = list.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let resumed = http(c.addr, "GET", &format!("/cases/new?draft={id}"), &clerk, "").await;
    assert_eq!(resumed.status, 200);
    assert!(resumed.body.contains("value=\"not a date\""));
    assert!(
        resumed
            .body
            .contains(&format!("name=\"draft\" value=\"{id}\""))
    );
    // Another clerk cannot open it.
    let other = sign_in(c.addr, "siti").await;
    let r = http(c.addr, "GET", &format!("/cases/new?draft={id}"), &other, "").await;
    assert_eq!(r.status, 404);
    // Saved from the draft (fixed), the draft is gone.
    let fixed = with(form, "date", "2024-03-15");
    let csrf = token(c.addr, &clerk).await;
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!("{}&draft={id}", encode(&csrf, "save", &fixed)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let list = http(c.addr, "GET", "/cases", &clerk, "").await;
    assert!(!list.body.contains("/cases/new?draft="));
    let log = changes(c.path());
    assert!(
        log.iter()
            .any(|l| l.0 == "budi" && l.1 == "case_draft_saved")
    );
    c.stop().await;
}

#[tokio::test]
async fn with_review_on_a_clerks_case_counts_only_once_approved() {
    let c = TestConsole::start_with(
        &[
            ("budi", "Budi", Role::Clerk),
            ("rina", "Rina", Role::Reviewer),
        ],
        true,
    )
    .await;
    let clerk = sign_in(c.addr, "budi").await;
    let before = counts(c.path());
    // A bad value is refused by the same checks before anything waits for review.
    let r = post_case(
        c.addr,
        &clerk,
        "save",
        &with(full_case("CASE"), "country", "XYZ"),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post_case(c.addr, &clerk, "save", &full_case("CASE")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().contains("done=submitted"));
    assert_eq!(
        counts(c.path()),
        before,
        "not counted, the data version unchanged"
    );
    assert!(stored(c.path(), "CASE").is_none());
    let reviewer = sign_in(c.addr, "rina").await;
    let queue = http(c.addr, "GET", "/cases/review", &reviewer, "").await;
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains("&#34;source_id&#34;: &#34;CASE&#34;"),
        "the whole case is shown"
    );
    let at = queue.body.find("/cases/review/").expect("queued") + 14;
    let id: String = queue.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // A clerk cannot approve.
    let csrf = queue.csrf();
    let clerk_csrf = token(c.addr, &clerk).await;
    let r = http(
        c.addr,
        "POST",
        &format!("/cases/review/{id}/approve"),
        &clerk,
        &format!("csrf={clerk_csrf}"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(stored(c.path(), "CASE").is_none());
    let r = http(
        c.addr,
        "POST",
        &format!("/cases/review/{id}/approve"),
        &reviewer,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(stored(c.path(), "CASE").is_some());
    assert_eq!(counts(c.path()), (before.0 + 1, before.1 + 1));
    let log = changes(c.path());
    assert!(log.iter().any(|l| l.0 == "budi" && l.1 == "case_submitted"));
    let approved = log.iter().find(|l| l.1 == "case_approved").unwrap();
    assert_eq!(approved.0, "rina");
    assert!(approved.3.contains("entered by budi"));
    // A reviewer's own case counts at once.
    let csrf = token(c.addr, &reviewer).await;
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &reviewer,
        &encode(&csrf, "save", &full_case("R-1")),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(stored(c.path(), "R-1").is_some());
    // A clerk's pending edit of R-1 is not approved over a change made to R-1 meanwhile.
    let csrf = token(c.addr, &clerk).await;
    let clerk_edit = with(full_case("R-1"), "note", "clerk's edit");
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &clerk,
        &format!("{}&original=R-1", encode(&csrf, "save", &clerk_edit)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let csrf = token(c.addr, &reviewer).await;
    let reviewer_edit = with(full_case("R-1"), "note", "reviewer's edit");
    let r = http(
        c.addr,
        "POST",
        "/cases/form",
        &reviewer,
        &format!("{}&original=R-1", encode(&csrf, "save", &reviewer_edit)),
    )
    .await;
    assert_eq!(r.status, 400, "the clerk's edit is pending: {}", r.status);
    let queue = http(c.addr, "GET", "/cases/review", &reviewer, "").await;
    let at = queue.body.find("/cases/review/").expect("queued") + 14;
    let id: String = queue.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // The record changes under the pending edit (here: by an import, outside the console).
    {
        let mut store = Store::open(c.path()).unwrap();
        let config = NodeConfig::load(c.path()).unwrap();
        let mut tx = store.begin_import("fix.csv", "", &config.file.fx).unwrap();
        let mut rec = tx.record("R-1").unwrap().unwrap();
        rec.note = Some("changed meanwhile".into());
        tx.remove("R-1").unwrap();
        tx.insert(&rec).unwrap();
        tx.commit(vrs_node::store::ImportCounts::default()).unwrap();
    }
    let csrf = queue.csrf();
    let r = http(
        c.addr,
        "POST",
        &format!("/cases/review/{id}/approve"),
        &reviewer,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("changed by someone else"));
    assert_eq!(
        stored(c.path(), "R-1").unwrap().note.as_deref(),
        Some("changed meanwhile")
    );
    c.stop().await;
}

#[tokio::test]
async fn hostile_posts_get_an_answer_never_a_failure() {
    let c = TestConsole::start(&[("budi", "Budi", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    // A thousand legs: refused with a reason, not a thousand rows.
    let mut form = full_case("CASE");
    for i in 2..1000 {
        form.push((format!("leg-{i}-to"), "IDN".into()));
    }
    let r = post_case(c.addr, &clerk, "save", &form).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("At most 64 rows"),
        "{}",
        &r.body[..500.min(r.body.len())]
    );
    // 65 legs: the import's own limit.
    let mut form = full_case("CASE");
    for i in 2..65 {
        form.push((format!("leg-{i}-to"), "IDN".into()));
    }
    let r = post_case(c.addr, &clerk, "save", &form).await;
    assert_eq!(r.status, 400);
    // Nothing at all, unknown codes in the selects, separators inside codes, huge indexes.
    for form in [
        vec![],
        vec![("source_id".to_string(), "X".to_string())],
        with(full_case("CASE"), "mode", "rocket"),
        with(full_case("CASE"), "method", "teleport"),
        with(full_case("CASE"), "origin", "MMR>THA"),
        with(full_case("CASE"), "fee-0-amount", "1 000"),
        with(full_case("CASE"), "group-0-citizenship", "MMR:F"),
        with(full_case("CASE"), "fee-0-amount", "1e300"),
        with(full_case("CASE"), "group-0-count", "99999999999"),
        with(full_case("CASE"), "note", &"x".repeat(5000)),
        with(full_case("CASE"), "note", &"line\n".repeat(100)),
        with(full_case("CASE"), "source_id", "bad\u{7}id"),
    ] {
        let r = post_case(c.addr, &clerk, "save", &form).await;
        assert_eq!(
            r.status,
            400,
            "{form:?}: {}",
            &r.body[..300.min(r.body.len())]
        );
        assert!(r.body.contains("error-summary"), "{form:?}");
    }
    // A body over the console's limit is refused before any handler.
    let csrf = token(c.addr, &clerk).await;
    let huge = format!("csrf={csrf}&action=save&note={}", "x".repeat(100 * 1024));
    let r = http(c.addr, "POST", "/cases/form", &clerk, &huge).await;
    assert_eq!(r.status, 403);
    // A row index beyond any form's is not a field of the form (ignored like any unknown
    // field): the case is saved with its two legs.
    let r = post_case(
        c.addr,
        &clerk,
        "save",
        &with(full_case("HUGE-INDEX"), "leg-99999999999-to", "THA"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(stored(c.path(), "HUGE-INDEX").unwrap().route.len(), 2);
    let before = counts(c.path());
    // An unknown action.
    let r = post_case(c.addr, &clerk, "explode", &full_case("CASE")).await;
    assert_eq!(r.status, 404);
    assert_eq!(counts(c.path()), before);
    c.stop().await;
}
