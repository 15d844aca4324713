//! The web console over real HTTP on 127.0.0.1:0: CSRF, lockout, roles, escaping, sessions
//! bound to their own console.sqlite, the change log's verification, the language switch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: failing loudly is the point

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrs_core::clock::SystemClock;
use vrs_node::config::{NodeConfig, initial_config};
use vrs_node::console::accounts::Role;
use vrs_node::console::db::ConsoleDb;
use vrs_node::console::{self, Console};
use vrs_node::store::Store;

mod support;
use support::*;

fn changes(dir: &Path) -> Vec<String> {
    ConsoleDb::open(dir)
        .unwrap()
        .changes(None, 1000)
        .unwrap()
        .into_iter()
        .map(|c| format!("{} {} {}", c.action, c.subject, c.detail))
        .collect()
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let c = TestConsole::start(&[("ana", "Ana", Role::Admin)]).await;
    // Sign-in form without a token, with another session's token, and with none at all.
    let (cookie, csrf) = login_page(c.addr).await;
    let (_, other) = login_page(c.addr).await;
    let creds = format!("username=ana&password={}", enc(PASSWORD));
    for form in [
        creds.clone(),
        format!("csrf={other}&{creds}"),
        format!("csrf=&{creds}"),
    ] {
        let r = http(c.addr, "POST", "/login", &cookie, &form).await;
        assert_eq!(r.status, 403, "{form}");
        assert!(r.body.contains("Form expired"));
    }
    let r = http(
        c.addr,
        "POST",
        "/login",
        "",
        &format!("csrf={csrf}&{creds}"),
    )
    .await;
    assert_eq!(r.status, 403, "a token without its session");
    assert!(!changes(c.path()).iter().any(|l| l.starts_with("sign_in ")));
    // Signed in, a form without the token does not add a user.
    let admin = sign_in(c.addr, "ana").await;
    let add = format!(
        "username=eve&display_name=Eve&role=admin&password={0}&confirm={0}",
        enc(PASSWORD)
    );
    let r = http(c.addr, "POST", "/users", &admin, &add).await;
    assert_eq!(r.status, 403);
    let users = http(c.addr, "GET", "/users", &admin, "").await;
    assert!(!users.body.contains(">eve<"));
    // With it, the same form does.
    let r = http(
        c.addr,
        "POST",
        "/users",
        &admin,
        &format!("csrf={}&{add}", users.csrf()),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        http(c.addr, "GET", "/users", &admin, "")
            .await
            .body
            .contains(">eve<")
    );
    c.stop().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_until_an_admin_unlocks_it() {
    let c = TestConsole::start(&[("ana", "Ana", Role::Admin), ("budi", "Budi", Role::Clerk)]).await;
    for i in 1..=5 {
        let r = try_sign_in(c.addr, "budi", "not the password").await;
        assert_eq!(r.status, 401, "attempt {i}");
        let expected = if i < 5 {
            "Wrong username or password"
        } else {
            "locked"
        };
        assert!(r.body.contains(expected), "attempt {i}: {}", r.body);
    }
    let r = try_sign_in(c.addr, "budi", PASSWORD).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("locked"),
        "the right password is refused too"
    );
    let log = changes(c.path());
    assert!(
        log.iter().any(|l| l.starts_with("user_locked budi")),
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("sign_in_failed budi"))
            .count(),
        6
    );
    // The admin unlocks it from the user page.
    let admin = sign_in(c.addr, "ana").await;
    let users = http(c.addr, "GET", "/users", &admin, "").await;
    assert!(users.body.contains("locked"));
    let r = http(
        c.addr,
        "POST",
        "/users/budi/unlock",
        &admin,
        &format!("csrf={}", users.csrf()),
    )
    .await;
    assert_eq!(r.status, 303);
    sign_in(c.addr, "budi").await;
    c.stop().await;
}

#[tokio::test]
async fn a_clerk_is_refused_user_admin_and_the_audit_log() {
    let c = TestConsole::start(&[("ana", "Ana", Role::Admin), ("budi", "Budi", Role::Clerk)]).await;
    let clerk = sign_in(c.addr, "budi").await;
    let status = http(c.addr, "GET", "/", &clerk, "").await;
    assert_eq!(status.status, 200);
    assert!(
        !status.body.contains("href=\"/users\""),
        "no link to what a clerk may not see"
    );
    for path in ["/users", "/audit", "/changes"] {
        assert_eq!(
            http(c.addr, "GET", path, &clerk, "").await.status,
            403,
            "{path}"
        );
    }
    let csrf = status.csrf();
    for path in ["/users/ana/disable", "/audit/verify", "/audit/export"] {
        let r = http(c.addr, "POST", path, &clerk, &format!("csrf={csrf}")).await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert!(
        !ConsoleDb::open(c.path())
            .unwrap()
            .user("ana")
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(http(c.addr, "GET", "/budget", &clerk, "").await.status, 200);
    // Nobody signed in: to the sign-in page.
    let r = http(c.addr, "GET", "/users", "", "").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    c.stop().await;
}

#[tokio::test]
async fn a_display_name_with_markup_is_shown_as_text() {
    let c = TestConsole::start(&[("ana", "<script>alert('ana')</script>", Role::Admin)]).await;
    let admin = sign_in(c.addr, "ana").await;
    let users = http(c.addr, "GET", "/users", &admin, "").await;
    let add = format!(
        "csrf={}&username=x&display_name={}&role=clerk&password={2}&confirm={2}",
        users.csrf(),
        enc("\"><img src=x onerror=alert(1)>"),
        enc(PASSWORD)
    );
    assert_eq!(
        http(c.addr, "POST", "/users", &admin, &add).await.status,
        303
    );
    for path in ["/", "/users", "/changes"] {
        let page = http(c.addr, "GET", path, &admin, "").await;
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
    }
    let page = http(c.addr, "GET", "/users", &admin, "").await;
    assert!(
        page.body
            .contains("&#60;script&#62;alert(&#39;ana&#39;)&#60;/script&#62;")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    c.stop().await;
}

#[tokio::test]
async fn a_session_from_another_consoles_file_is_refused() {
    let a = TestConsole::start(&[("ana", "Ana", Role::Admin)]).await;
    let b = TestConsole::start(&[("ana", "Ana", Role::Admin)]).await;
    let from_a = sign_in(a.addr, "ana").await;
    assert_eq!(http(a.addr, "GET", "/", &from_a, "").await.status, 200);
    let r = http(b.addr, "GET", "/", &from_a, "").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    // Signing out ends the session on its own console.
    let page = http(a.addr, "GET", "/", &from_a, "").await;
    let r = http(
        a.addr,
        "POST",
        "/logout",
        &from_a,
        &format!("csrf={}", page.csrf()),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(http(a.addr, "GET", "/", &from_a, "").await.status, 303);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_change_log_page_names_an_edited_row() {
    let c = TestConsole::start(&[("ana", "Ana", Role::Admin), ("budi", "Budi", Role::Clerk)]).await;
    let admin = sign_in(c.addr, "ana").await;
    let page = http(c.addr, "GET", "/changes", &admin, "").await;
    let verify = format!("csrf={}", page.csrf());
    let r = http(c.addr, "POST", "/changes/verify", &admin, &verify).await;
    assert!(
        r.body.contains("change log intact: 3 entries"),
        "{}",
        r.body
    );
    // Someone with the file rewrites history: budi was made an admin, not a clerk.
    ConsoleDb::open(c.path())
        .unwrap()
        .raw_connection()
        .execute_batch(
            "DROP TRIGGER change_log_no_update;
             UPDATE change_log SET detail = 'role admin' WHERE subject = 'budi' AND action = 'user_added';",
        )
        .unwrap();
    let r = http(c.addr, "POST", "/changes/verify", &admin, &verify).await;
    assert!(
        r.body
            .contains("change log BROKEN at entry 2: content does not match its hash (edited)"),
        "{}",
        r.body
    );
    c.stop().await;
}

#[tokio::test]
async fn pages_follow_the_language_cookie() {
    let c = TestConsole::start(&[("ana", "Ana", Role::Admin)]).await;
    let r = http(c.addr, "GET", "/lang/id?next=/login", "", "").await;
    assert_eq!(r.header("location"), Some("/login"));
    let lang = format!(
        "vrs_console_lang={}",
        r.set_cookie("vrs_console_lang").unwrap()
    );
    let page = http(c.addr, "GET", "/login", &lang, "").await;
    assert!(page.body.contains("<html lang=\"id\">"));
    assert!(page.body.contains("Kata sandi"));
    let r = http(c.addr, "GET", "/lang/id?next=//evil.example", "", "").await;
    assert_eq!(r.header("location"), Some("/"), "never to another site");
    c.stop().await;
}

/// The generated node.toml with `lines` set in its `[console]` section.
fn with_console(country: vrs_core::codes::Country, lines: &str) -> String {
    let text = initial_config(country);
    assert!(text.contains("\n[console]\n"));
    text.replacen("\n[console]\n", &format!("\n[console]\n{lines}"), 1)
}

#[tokio::test]
async fn the_console_refuses_a_public_address_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let country = "IDN".parse().unwrap();
    Store::create(dir.path(), country).unwrap();
    let text = with_console(country, "listen = \"0.0.0.0:0\"\n");
    std::fs::write(dir.path().join("node.toml"), text).unwrap();
    let config = NodeConfig::load(dir.path()).unwrap();
    let listen = config.file.console.listen;
    let e = console::check_listen(listen, &config.file.console).unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let typo = with_console(country, "listen_on = \"127.0.0.1:0\"\n");
    assert!(NodeConfig::parse(&typo, Path::new("node.toml"), dir.path()).is_err());
}

#[tokio::test]
async fn with_console_tls_it_serves_https_and_marks_cookies_secure() {
    use rustls::pki_types::ServerName;
    vrs_core::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let country = "IDN".parse().unwrap();
    Store::create(dir.path(), country).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("console-cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("console-key.pem"),
        made.signing_key.serialize_pem(),
    )
    .unwrap();
    // [console] is the generated file's last section: [console.tls] can follow it.
    let text = with_console(country, "listen = \"0.0.0.0:7480\"\n")
        + "\n[console.tls]\ncert = \"console-cert.pem\"\nkey = \"console-key.pem\"\n";
    std::fs::write(dir.path().join("node.toml"), text).unwrap();
    let config = NodeConfig::load(dir.path()).unwrap();
    // With TLS, a non-loopback address is allowed (the test still binds 127.0.0.1).
    console::check_listen(config.file.console.listen, &config.file.console).unwrap();
    let console = Arc::new(Console::new(config, Arc::new(SystemClock)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(console::serve(listener, console, async {
        let _ = stopped.await;
    }));

    // Plain HTTP on the HTTPS port gets no page.
    let plain = http_raw(addr).await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: vrs_console_session=")
        })
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// What a plain-text HTTP GET gets back (empty when the connection is closed on it).
async fn http_raw(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
