//! The console's workflow pages over real HTTP on 127.0.0.1:0: an upload is previewed through
//! the import code without storing anything, committed only with the digest that was
//! previewed, cancelled without a trace in the store; a hostile upload body keeps nothing; an
//! upload over the cap is refused before it is read; the release preview never charges the
//! budget nor writes the ledger; a clerk cannot decide a held query, a reviewer can, through
//! the audit log's `decide`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: failing loudly is the point

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrs_core::clock::SystemClock;
use vrs_node::audit::AuditLog;
use vrs_node::config::{NodeConfig, initial_config};
use vrs_node::console::accounts::{Password, Role, Username};
use vrs_node::console::db::ConsoleDb;
use vrs_node::console::{self, Console};
use vrs_node::fx::FxRates;
use vrs_node::store::{ImportCounts, Store};
use vrs_node::synth::{self, SynthConfig};

const PASSWORD: &str = "correct horse battery staple";

/// A node with 300 synthetic incidents, an audit log, a clerk and a reviewer, its console on
/// 127.0.0.1:0 (stopped when the runtime ends).
struct Node {
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        Node::start_with(Arc::new(SystemClock)).await
    }

    /// The node with its console reading the time from `clock`.
    async fn start_with(clock: Arc<dyn vrs_core::clock::Clock>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let country = "IDN".parse().unwrap();
        let mut store = Store::create(dir.path(), country).unwrap();
        let fx = FxRates::sample();
        let mut tx = store.begin_import("synthetic", "-", &fx).unwrap();
        let mut counts = ImportCounts::default();
        for r in synth::generate(&SynthConfig::new(country, 300, 5)) {
            tx.insert(&r).unwrap();
            counts.imported += 1;
        }
        tx.commit(counts).unwrap();
        drop(store);
        drop(AuditLog::open(dir.path()).unwrap());
        std::fs::write(dir.path().join("node.toml"), initial_config(country)).unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        for (name, role) in [("budi", Role::Clerk), ("rina", Role::Reviewer)] {
            db.add_user(
                0,
                "test",
                &Username::parse(name).unwrap(),
                name,
                role,
                &Password::new(PASSWORD.into()).unwrap(),
            )
            .unwrap();
        }
        drop(db);
        let config = NodeConfig::load(dir.path()).unwrap();
        let console = Arc::new(Console::new(config, clock).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            console::serve(listener, console, std::future::pending())
                .await
                .unwrap();
        });
        Node { addr, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn records(&self) -> u64 {
        Store::open_read_only(self.path())
            .unwrap()
            .incident_count()
            .unwrap()
    }

    fn changes(&self) -> Vec<String> {
        ConsoleDb::open(self.path())
            .unwrap()
            .changes(None, 1000)
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {} {} {}", c.actor, c.action, c.subject, c.detail))
            .collect()
    }

    fn uploads_waiting(&self) -> usize {
        std::fs::read_dir(self.path().join("console-uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.strip_prefix("vrs_console_session="))
            .map(|v| format!("vrs_console_session={v}"))
            .next()
    }

    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.body[at..at + 64].to_string()
    }
}

/// One HTTP/1.1 exchange over a fresh connection; `body` is sent as `content_type`.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    content_type: &str,
    body: &[u8],
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept-Language: en\r\n"
    );
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn get(addr: SocketAddr, path: &str, cookie: &str) -> Reply {
    http(addr, "GET", path, cookie, "", b"").await
}

async fn post(addr: SocketAddr, path: &str, cookie: &str, form: &str) -> Reply {
    http(addr, "POST", path, cookie, FORM, form.as_bytes()).await
}

/// Signs in; returns the session cookie and its CSRF token.
async fn sign_in(addr: SocketAddr, user: &str) -> (String, String) {
    let page = get(addr, "/login", "").await;
    let cookie = page.set_cookie().unwrap();
    let form = format!(
        "csrf={}&username={user}&password={}",
        page.csrf(),
        form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect::<String>()
    );
    let reply = post(addr, "/login", &cookie, &form).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = reply.set_cookie().unwrap();
    let csrf = get(addr, "/imports", &cookie).await.csrf();
    (cookie, csrf)
}

/// A multipart/form-data body as a browser sends it: `fields`, then the file `name`.
fn multipart(csrf: &str, name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----vrsTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in [("csrf", csrf), ("mapping", ""), ("sheet", "")] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Template CSV of `n` synthetic incidents with source ids of their own (`prefix`); the row on
/// `broken` (the header is line 1) gets an impossible date.
fn csv(prefix: &str, n: u64, broken: Option<usize>) -> Vec<u8> {
    let country = "IDN".parse().unwrap();
    let mut w = vrs_node::import::CsvWriter::new(Vec::new()).unwrap();
    for r in synth::generate(&SynthConfig::new(country, n, 41)) {
        w.write(&r).unwrap();
    }
    let text = String::from_utf8(w.finish().unwrap()).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = l.replace("SYN-IDN-", &format!("{prefix}-"));
            if Some(i + 1) == broken {
                let mut f: Vec<&str> = l.split(',').collect();
                f[2] = "2024-13-45";
                f.join(",")
            } else {
                l
            }
        })
        .collect();
    (lines.join("\n") + "\n").into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

async fn upload(node: &Node, cookie: &str, csrf: &str, name: &str, file: &[u8]) -> String {
    let (ct, body) = multipart(csrf, name, file);
    let r = http(node.addr, "POST", "/imports/upload", cookie, &ct, &body).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.header("location").unwrap().to_string()
}

#[tokio::test]
async fn an_upload_is_previewed_without_storing_then_committed_as_previewed() {
    let node = Node::start().await;
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    let before = node.records();
    let file = csv("T-A", 8, Some(3));
    let at = upload(&node, &cookie, &csrf, "may.csv", &file).await;
    assert_eq!(node.records(), before, "a preview stores nothing");
    let page = get(node.addr, &at, &cookie).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("date must be YYYY-MM-DD"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&sha256(&file)));
    assert!(
        page.body.contains("id=\"count-accepted\">7<"),
        "{}",
        page.body
    );

    // A commit naming another digest is refused; nothing is stored and the upload waits on.
    let wrong = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(b"other")),
    )
    .await;
    assert_eq!(wrong.status, 409);
    assert_eq!(node.records(), before);
    // The stored upload edited behind the console's back: refused too.
    let dir = node
        .path()
        .join("console-uploads")
        .join(at.trim_start_matches("/imports/"));
    std::fs::write(dir.join("may.csv"), csv("T-X", 8, None)).unwrap();
    let edited = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(&file)),
    )
    .await;
    assert_eq!(edited.status, 409);
    assert_eq!(node.records(), before);
    std::fs::write(dir.join("may.csv"), &file).unwrap();

    let done = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(&file)),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(node.records(), before + 7);
    assert_eq!(node.uploads_waiting(), 0);
    let log = node.changes();
    assert!(
        log.iter()
            .any(|c| c.starts_with("budi import_committed may.csv")
                && c.contains(&sha256(&file))
                && c.contains("imported 7, rejected 1")),
        "{log:?}"
    );
    // Committed once: a second commit finds nothing.
    let again = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(&file)),
    )
    .await;
    assert_eq!(again.status, 404);
    assert_eq!(node.records(), before + 7);
}

#[tokio::test]
async fn a_cancelled_upload_leaves_nothing_and_bad_uploads_are_refused() {
    let node = Node::start().await;
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    let before = node.records();
    let file = csv("T-B", 5, None);
    let at = upload(&node, &cookie, &csrf, "june.csv", &file).await;
    let r = post(
        node.addr,
        &format!("{at}/cancel"),
        &cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(node.records(), before);
    assert_eq!(node.uploads_waiting(), 0);
    assert!(
        node.changes()
            .iter()
            .any(|c| c.starts_with("budi import_cancelled june.csv"))
    );

    // Without the session's token: refused before anything is kept.
    let (ct, body) = multipart("not-the-token", "june.csv", &file);
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 403);
    // A file type the import does not read: a clear 400.
    let (ct, body) = multipart(&csrf, "run.sh", b"echo hi\n");
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("cannot be imported"), "{}", r.body);
    // A body cut short is no form: its token cannot be read, so it is refused like a forgery.
    let (ct, mut body) = multipart(&csrf, "june.csv", &file);
    body.truncate(body.len() - 20);
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Nothing was changed"));
    // A file whose header is not the template's.
    let (ct, body) = multipart(&csrf, "odd.csv", b"a,b,c\n1,2,3\n");
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Nothing was stored"), "{}", r.body);
    assert_eq!(node.uploads_waiting(), 0);
    assert_eq!(node.records(), before);
}

#[tokio::test]
async fn a_hostile_upload_body_is_refused_and_nothing_is_kept() {
    let node = Node::start().await;
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    let before = node.records();
    let file = csv("T-H", 3, None);
    let send = |ct: String, body: Vec<u8>| {
        let cookie = cookie.clone();
        async move { http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await }
    };
    let refused = |r: Reply| {
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    };
    // No boundary: the body is no multipart form, so its token cannot be read.
    let (_, body) = multipart(&csrf, "h.csv", &file);
    refused(send("multipart/form-data".into(), body).await);
    // No boundary, the token sent urlencoded: past the guard, and still no form to read.
    let r = send(
        "multipart/form-data".into(),
        format!("csrf={csrf}").into_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("could not be read as this page"),
        "{}",
        r.body
    );
    // A part without a name after a good token: the whole body is refused.
    let (ct, body) = multipart_with(&[("csrf", &csrf)], &[("file", "h.csv", &file)]);
    let nameless = String::from_utf8(body)
        .unwrap()
        .replace("name=\"file\"; ", "");
    refused(send(ct, nameless.into_bytes()).await);
    // 10,000 tiny parts after a good token.
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(std::iter::repeat_n(("x", ""), 9_999));
    let (ct, body) = multipart_with(&fields, &[("file", "h.csv", &file)]);
    refused(send(ct, body).await);
    assert_eq!(node.uploads_waiting(), 0);

    // A file field twice: the first file is the upload, the second is not read.
    let (ct, body) = multipart_with(
        &[("csrf", &csrf)],
        &[
            ("file", "first.csv", &file),
            ("file", "second.csv", b"a,b\n"),
        ],
    );
    let r = send(ct, body).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let preview = get(node.addr, r.header("location").unwrap(), &cookie).await;
    assert!(preview.body.contains("first.csv"), "{}", preview.body);
    assert!(!preview.body.contains("second.csv"));
    assert!(preview.body.contains(&sha256(&file)));
    // A quoted file name with a `;` keeps its extension (the old parser cut it at the `;`).
    let (ct, body) = multipart(&csrf, "Laporan; Mei.csv", &file);
    let r = send(ct, body).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let preview = get(node.addr, r.header("location").unwrap(), &cookie).await;
    assert!(
        preview.body.contains("Laporan__Mei.csv"),
        "{}",
        preview.body
    );
    assert_eq!(node.uploads_waiting(), 2);
    assert_eq!(node.records(), before, "previews store nothing");
}

#[tokio::test]
async fn an_upload_over_the_cap_is_refused_before_it_is_read() {
    let node = Node::start().await;
    let (cookie, _) = sign_in(node.addr, "budi").await;
    let mut stream = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = format!(
        "POST /imports/upload HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n",
        node.addr,
        console::imports::MAX_UPLOAD_BYTES + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let r = parse(&raw);
    assert_eq!(r.status, 413);
    assert!(r.body.contains("File too large"), "{}", r.body);
    // Any other form keeps the small limit.
    let big = "x".repeat(70 * 1024);
    let r = post(node.addr, "/logout", &cookie, &big).await;
    assert_eq!(r.status, 403);
}

/// Everything in the audit log that a release writes: entries, ledger charges, stored releases.
fn ledger_state(dir: &Path) -> (i64, i64, i64) {
    let log = AuditLog::open(dir).unwrap();
    let conn = log.raw_connection();
    let n = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (n("audit"), n("ledger"), n("release"))
}

#[tokio::test]
async fn the_release_preview_never_spends_the_budget_nor_writes_the_ledger() {
    let node = Node::start().await;
    let (cookie, _) = sign_in(node.addr, "budi").await;
    let before = ledger_state(node.path());
    let mut seen = 0;
    for q in [
        "unit=incidents&by1=quarter&from=2023&to=2024",
        "unit=migrants&by1=mode&by2=quarter&from=2024&to=2024&margins=1",
        "unit=fees&by1=fee_band",
    ] {
        let r = get(node.addr, &format!("/preview?{q}"), &cookie).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("<svg id=\"chart\""), "{q}");
        assert!(r.body.contains("rect class=\"bar\""), "{q}");
        assert!(r.body.contains("on each of"), "{q}: the cost");
        seen += 1;
    }
    assert_eq!(seen, 3);
    assert_eq!(
        ledger_state(node.path()),
        before,
        "a preview wrote to the audit log"
    );
    // Hostile or malformed questions are errors on the page, never a failure.
    for q in [
        "unit=nobody",
        "unit=incidents&by1=quarter&by2=quarter",
        "unit=incidents&where=%3Cscript%3E",
        "unit=incidents&from=9999-99",
    ] {
        let r = get(node.addr, &format!("/preview?{q}"), &cookie).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert!(r.body.contains("cannot be previewed"), "{q}");
        assert!(!r.body.contains("<script>"), "{q}");
    }
    let long = "a".repeat(5000);
    let r = get(
        node.addr,
        &format!("/preview?unit=incidents&where={long}"),
        &cookie,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(ledger_state(node.path()), before);
}

#[tokio::test]
async fn a_clerk_cannot_decide_a_held_query_and_a_reviewer_can() {
    use prost::Message as _;
    let node = Node::start().await;
    let id = "q-0123456789abcdef";
    let query = vrs_proto::pb::Query {
        unit: "incidents".into(),
        group_by: vec!["mode".into()],
        ..Default::default()
    };
    AuditLog::open(node.path())
        .unwrap()
        .add_pending(
            id,
            "coordinator.bali-rc.vrs.test",
            &query.encode_to_vec(),
            "incidents by [mode]",
            1,
        )
        .unwrap();
    let state = || {
        AuditLog::open(node.path())
            .unwrap()
            .pending_state(id)
            .unwrap()
            .unwrap()
            .0
    };
    let (clerk, clerk_csrf) = sign_in(node.addr, "budi").await;
    assert_eq!(get(node.addr, "/approvals", &clerk).await.status, 403);
    let r = post(
        node.addr,
        &format!("/approvals/{id}/approve"),
        &clerk,
        &format!("csrf={clerk_csrf}"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(state(), "pending");

    let (reviewer, csrf) = sign_in(node.addr, "rina").await;
    let page = get(node.addr, "/approvals", &reviewer).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("incidents by mode, asked by coordinator.bali-rc.vrs.test")
    );
    assert!(page.body.contains("ρ 0.050000 on each of"), "{}", page.body);
    // Without the token: refused, undecided.
    let r = post(
        node.addr,
        &format!("/approvals/{id}/approve"),
        &reviewer,
        "",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(state(), "pending");
    let r = post(
        node.addr,
        &format!("/approvals/{id}/approve"),
        &reviewer,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(state(), "approved");
    assert!(
        node.changes()
            .iter()
            .any(|c| c.starts_with(&format!("rina query_approved {id}"))),
        "{:?}",
        node.changes()
    );
    // An id that is not held: a clear refusal, nothing decided.
    let r = post(
        node.addr,
        "/approvals/q-unknown-0000000000/deny",
        &reviewer,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 409);
}

/// A mapping for an agency's own layout (`Case,Date,Mode,From,Nat,Persons`).
const AGENCY_MAPPING: &str = r#"
[source_id]
column = "Case"
prefix = "AG-"
[fields]
date = { column = "Date", formats = ["%Y-%m-%d"] }
country = { value = "IDN" }
mode = { column = "Mode" }
route = { template = "{From}>IDN", split = ">" }
[[migrants]]
citizenship = { column = "Nat" }
count = { column = "Persons" }
"#;

const AGENCY_ROWS: [[&str; 6]; 4] = [
    ["Case", "Date", "Mode", "From", "Nat", "Persons"],
    ["1", "2024-03-05", "sea", "MMR", "MMR", "12"],
    ["2", "2024-04-11", "land", "MYS", "BGD", "3"],
    ["3", "not a date", "sea", "MMR", "MMR", "4"],
];

/// A multipart body with text `fields` and `files` (field, file name, bytes).
fn multipart_with(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----vrsTestBoundaryQ2x9";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (k, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_saved_mapping_reads_a_chosen_sheet_and_an_uploaded_mapping_reads_a_csv() {
    let node = Node::start().await;
    std::fs::create_dir(node.path().join("mappings")).unwrap();
    std::fs::write(node.path().join("mappings/agency.toml"), AGENCY_MAPPING).unwrap();
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    let page = get(node.addr, "/imports", &cookie).await;
    assert!(
        page.body.contains("<option value=\"agency.toml\">"),
        "a saved mapping is offered"
    );

    // A workbook whose first sheet is something else: the sheet is chosen by name.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "not records").unwrap();
    let ws = wb.add_worksheet();
    ws.set_name("Detections").unwrap();
    for (r, row) in AGENCY_ROWS.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, *v).unwrap();
        }
    }
    let xlsx = wb.save_to_buffer().unwrap();
    let (ct, body) = multipart_with(
        &[
            ("csrf", &csrf),
            ("mapping", "agency.toml"),
            ("sheet", "Detections"),
        ],
        &[("file", "agency.xlsx", &xlsx)],
    );
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let preview = get(node.addr, r.header("location").unwrap(), &cookie).await;
    assert!(
        preview.body.contains("id=\"count-accepted\">2<"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("id=\"count-rejected\">1<"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Detections"));

    // A sheet that does not exist: the import's own error, nothing kept.
    let (ct, body) = multipart_with(
        &[
            ("csrf", &csrf),
            ("mapping", "agency.toml"),
            ("sheet", "Nope"),
        ],
        &[("file", "agency.xlsx", &xlsx)],
    );
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Nope"), "{}", r.body);
    assert!(
        !r.body.contains(node.path().to_str().unwrap()),
        "no path of the node on a page"
    );
    // A saved mapping that is not offered (a path, say) is refused.
    let (ct, body) = multipart_with(
        &[("csrf", &csrf), ("mapping", "../node.toml")],
        &[("file", "agency.xlsx", &xlsx)],
    );
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("no such saved mapping"), "{}", r.body);

    // The same rows as CSV with the mapping uploaded beside it.
    let text: String = AGENCY_ROWS.iter().map(|r| r.join(",") + "\n").collect();
    let (ct, body) = multipart_with(
        &[("csrf", &csrf), ("mapping", "")],
        &[
            ("file", "agency.csv", text.as_bytes()),
            ("mapping_file", "agency.toml", AGENCY_MAPPING.as_bytes()),
        ],
    );
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at = r.header("location").unwrap().to_string();
    let preview = get(node.addr, &at, &cookie).await;
    assert!(preview.body.contains("uploaded: agency.toml"));
    assert!(
        preview.body.contains("id=\"count-accepted\">2<"),
        "{}",
        preview.body
    );
    let before = node.records();
    let done = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(text.as_bytes())),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(node.records(), before + 2);
}

#[tokio::test]
async fn under_rules_v1_the_preview_shows_the_released_table_without_a_budget() {
    let node = Node::start().await;
    // The same node, its console restarted under rules_v1 (a second console on the same files).
    let toml = std::fs::read_to_string(node.path().join("node.toml"))
        .unwrap()
        .replacen("mode = \"zcdp\"", "mode = \"rules_v1\"", 1);
    std::fs::write(node.path().join("node.toml"), toml).unwrap();
    let config = NodeConfig::load(node.path()).unwrap();
    assert!(!config.privacy.is_zcdp());
    let console = Arc::new(Console::new(config, Arc::new(SystemClock)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        console::serve(listener, console, std::future::pending())
            .await
            .unwrap();
    });
    let (cookie, _) = sign_in(addr, "rina").await;
    let before = ledger_state(node.path());
    let r = get(addr, "/preview?unit=incidents&by1=mode", &cookie).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<table id=\"answer\""));
    assert!(!r.body.contains("id=\"cost\""), "no budget in rules_v1");
    assert_eq!(ledger_state(node.path()), before);
    // The queue of a node that answers at once says so.
    let q = get(addr, "/approvals", &cookie).await;
    assert_eq!(q.status, 200);
    assert!(q.body.contains("answers queries at once"), "{}", q.body);
}

#[tokio::test]
async fn an_upload_left_undecided_expires_after_an_hour() {
    let clock = vrs_core::clock::ManualClock::new(1_750_000_000_000);
    let node = Node::start_with(Arc::new(clock.clone())).await;
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    let file = csv("T-E", 3, None);
    let at = upload(&node, &cookie, &csrf, "late.csv", &file).await;
    assert_eq!(node.uploads_waiting(), 1);
    clock.advance(Duration::from_secs(59 * 60));
    let (cookie, _) = sign_in(node.addr, "budi").await;
    assert_eq!(get(node.addr, &at, &cookie).await.status, 200, "still kept");
    clock.advance(Duration::from_secs(2 * 60));
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    assert_eq!(get(node.addr, &at, &cookie).await.status, 404, "expired");
    let r = post(
        node.addr,
        &format!("{at}/commit"),
        &cookie,
        &format!("csrf={csrf}&sha256={}", sha256(&file)),
    )
    .await;
    assert_eq!(r.status, 404);
    // The imports page (visited by sign_in) has removed it from the disk.
    assert_eq!(node.uploads_waiting(), 0);
    assert!(
        node.changes()
            .iter()
            .all(|c| !c.contains("import_committed"))
    );
}

#[tokio::test]
async fn json_lines_already_stored_are_duplicates_and_a_workbook_named_csv_is_refused() {
    let node = Node::start().await;
    let (cookie, csrf) = sign_in(node.addr, "budi").await;
    // The node holds seed 5's SYN-IDN-000000001…300: these three ids are among them.
    let mut jsonl = Vec::new();
    synth::write_jsonl(&SynthConfig::new("IDN".parse().unwrap(), 3, 41), &mut jsonl).unwrap();
    let at = upload(&node, &cookie, &csrf, "again.jsonl", &jsonl).await;
    let page = get(node.addr, &at, &cookie).await;
    assert!(
        page.body.contains("id=\"count-duplicates\">3<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"count-accepted\">0<"),
        "{}",
        page.body
    );

    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet().write_string(0, 0, "source_id").unwrap();
    let xlsx = wb.save_to_buffer().unwrap();
    let (ct, body) = multipart(&csrf, "looks.csv", &xlsx);
    let r = http(node.addr, "POST", "/imports/upload", &cookie, &ct, &body).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("read as csv"), "{}", r.body);
    assert_eq!(
        node.uploads_waiting(),
        1,
        "only the JSON Lines upload waits"
    );
}
