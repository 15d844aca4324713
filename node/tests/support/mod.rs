//! What the console's HTTP tests share (tests/console.rs, tests/console_records.rs): a node
//! directory with a console on 127.0.0.1:0 and its accounts, a minimal HTTP/1.1 client over a
//! raw socket (what a browser sends, nothing more), and sign-in.
#![allow(dead_code)] // each test binary uses its own part of it

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrs_core::clock::SystemClock;
use vrs_node::config::{NodeConfig, initial_config};
use vrs_node::console::accounts::{Password, Role, Username};
use vrs_node::console::db::ConsoleDb;
use vrs_node::console::{self, Console};
use vrs_node::store::Store;

pub const PASSWORD: &str = "correct horse battery staple";

/// A node directory with a store and a console, serving on 127.0.0.1:0 until dropped.
pub struct TestConsole {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl TestConsole {
    pub async fn start(users: &[(&str, &str, Role)]) -> TestConsole {
        TestConsole::start_with(users, false).await
    }

    /// With `review`, `[console] review_records = true`.
    pub async fn start_with(users: &[(&str, &str, Role)], review: bool) -> TestConsole {
        let dir = tempfile::tempdir().unwrap();
        let country = "IDN".parse().unwrap();
        Store::create(dir.path(), country).unwrap();
        let mut toml = initial_config(country);
        if review {
            toml = toml.replace("# review_records = false", "review_records = true");
            assert!(toml.contains("\nreview_records = true"));
        }
        std::fs::write(dir.path().join("node.toml"), toml).unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        for (name, display, role) in users {
            db.add_user(
                0,
                "test",
                &Username::parse(name).unwrap(),
                display,
                *role,
                &Password::new(PASSWORD.into()).unwrap(),
            )
            .unwrap();
        }
        drop(db);
        let config = NodeConfig::load(dir.path()).unwrap();
        let console = Arc::new(Console::new(config, Arc::new(SystemClock)).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            console::serve(listener, console, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestConsole {
            addr,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }
}

/// One HTTP/1.1 exchange as the test saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value the reply sets for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .next()
    }

    /// The first CSRF token of the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.body[at..at + 64].to_string()
    }
}

/// A raw HTTP/1.1 request over a fresh TCP connection (no client library between the test and
/// the wire).
pub async fn http(addr: SocketAddr, method: &str, path: &str, cookie: &str, form: &str) -> Reply {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept-Language: en\r\n"
    );
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(form);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
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

pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The sign-in page's session cookie and token.
pub async fn login_page(addr: SocketAddr) -> (String, String) {
    let page = http(addr, "GET", "/login", "", "").await;
    assert_eq!(page.status, 200);
    let id = page.set_cookie("vrs_console_session").unwrap();
    (format!("vrs_console_session={id}"), page.csrf())
}

pub async fn try_sign_in(addr: SocketAddr, user: &str, password: &str) -> Reply {
    let (cookie, csrf) = login_page(addr).await;
    let form = format!(
        "csrf={csrf}&username={}&password={}",
        enc(user),
        enc(password)
    );
    http(addr, "POST", "/login", &cookie, &form).await
}

/// Signs in; returns the session cookie.
pub async fn sign_in(addr: SocketAddr, user: &str) -> String {
    let reply = try_sign_in(addr, user, PASSWORD).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/"));
    let cookie = reply.set_cookie("vrs_console_session").unwrap();
    let flags = reply.header("set-cookie").unwrap();
    assert!(
        flags.contains("HttpOnly") && flags.contains("SameSite=Strict"),
        "{flags}"
    );
    format!("vrs_console_session={cookie}")
}
