//! What every console request passes through.
//!
//! - [`guard`]: security headers on every response (a strict Content-Security-Policy: no
//!   script runs, nothing loads from elsewhere, no framing); every request other than GET and
//!   HEAD must come from this console's own pages (a foreign `Origin` is refused) and carry the
//!   CSRF token of the browser's session in its form (else 403, and the form is not acted on).
//!   Forms are at most [`MAX_FORM_BYTES`], except the upload route's `multipart/form-data`
//!   ([`super::imports::MAX_UPLOAD_BYTES`], 413 above it), whose token is a multipart field.
//! - [`Viewer`]: the browser's language and live session, and [`Viewer::require`], the
//!   server-side role check every page makes.
//! - Cookies: the session cookie is `HttpOnly; SameSite=Strict; Path=/` (and `Secure` under
//!   TLS); the language cookie likewise.
//! - [`TlsListener`]: HTTPS for `[console.tls]`, through the node's hardened handshake loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::accounts::{Role, User};
use super::i18n::{Lang, Tr};
use super::sessions::{Session, Token};
use super::{Console, ConsoleError, ConsoleTls};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vrs_console_session";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "vrs_console_lang";
/// The largest form body read (a console form is a few hundred bytes).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The value of cookie `name` in a request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, `Secure` when `secure`,
/// `Max-Age` when given (0 removes the cookie).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        v.push_str("; Secure");
    }
    if let Some(age) = max_age {
        v.push_str(&format!("; Max-Age={age}"));
    }
    // Names are constants and values are hex or language tags: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The language of a request: its cookie, else its `Accept-Language`, else English.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(|c| Lang::from_tag(&c))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// A request's language and live session (if any).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The language pages are shown in.
    pub lang: Lang,
    /// The live session the cookie names, if any (before sign-in it has no user).
    pub session: Option<Session>,
    /// The path asked for (the language switch comes back to it).
    pub path: String,
}

/// Why a page is not shown.
#[derive(Debug)]
pub enum Refusal {
    /// Nobody is signed in: go to the sign-in page.
    SignIn,
    /// Signed in, without the role the page needs (403).
    Forbidden(Lang),
    /// No such page or object (404).
    NotFound(Lang),
    /// The form's CSRF token is missing or wrong (403).
    BadToken(Lang),
    /// Something broke; detail goes to the log, the page says only that (500).
    Internal(Lang),
    /// An upload over its cap (413); nothing was read or kept.
    TooLarge(Lang),
}

impl Viewer {
    /// The signed-in user, if their role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(&Session, &User), Refusal> {
        let Some(session) = &self.session else {
            return Err(Refusal::SignIn);
        };
        let Some(user) = &session.user else {
            return Err(Refusal::SignIn);
        };
        if user.role.at_least(needed) {
            Ok((session, user))
        } else {
            Err(Refusal::Forbidden(self.lang))
        }
    }

    /// A failure: logged in full, answered with a plain 500 page.
    pub fn internal(&self, e: ConsoleError) -> Refusal {
        tracing::error!(error = %e, "console request failed");
        Refusal::Internal(self.lang)
    }
}

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Viewer, Refusal> {
        let lang = lang_of(&parts.headers);
        let path = parts.uri.path().to_string();
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) => {
                let lifetimes = console.lifetimes();
                console
                    .with_db(move |db, now| db.session(now, &Token::from_client(&id), lifetimes))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "session lookup failed");
                        Refusal::Internal(lang)
                    })?
            }
            None => None,
        };
        Ok(Viewer {
            lang,
            session,
            path,
        })
    }
}

/// Renders refusals; the pages module supplies the page for each.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/login").into_response(),
            Refusal::Forbidden(lang) => {
                super::pages::error_page(lang, StatusCode::FORBIDDEN, "forbidden")
            }
            Refusal::NotFound(lang) => {
                super::pages::error_page(lang, StatusCode::NOT_FOUND, "not-found")
            }
            Refusal::BadToken(lang) => {
                super::pages::error_page(lang, StatusCode::FORBIDDEN, "bad-token")
            }
            Refusal::Internal(lang) => {
                super::pages::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            Refusal::TooLarge(lang) => {
                super::pages::error_page(lang, StatusCode::PAYLOAD_TOO_LARGE, "import-too-large")
            }
        }
    }
}

/// The security headers every response carries (a handler's own `Cache-Control` is kept).
fn secure_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: under it a browser sends `Origin: null` with a form, which the origin
    // check refuses. `same-origin` sends nothing to other sites.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// Whether a request's `Origin` (when it sends one) is this console.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The `csrf` field of a urlencoded form body.
pub fn form_token(body: &[u8]) -> Option<Token> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| Token::from_client(&v))
}

/// The middleware in front of every route: security headers, and the CSRF check of every
/// request that is not GET or HEAD.
pub async fn guard(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let mut response = if req.method() == Method::GET || req.method() == Method::HEAD {
        next.run(req).await
    } else {
        match checked(&console, req).await {
            Ok(req) => next.run(req).await,
            Err(refusal) => refusal.into_response(),
        }
    };
    secure_headers(response.headers_mut());
    response
}

/// The request again, if its origin and CSRF token are right.
async fn checked(console: &Arc<Console>, req: Request) -> Result<Request, Refusal> {
    let lang = lang_of(req.headers());
    if !same_origin(req.headers()) {
        return Err(Refusal::BadToken(lang));
    }
    let session_id = cookie(req.headers(), SESSION_COOKIE);
    let (parts, body) = req.into_parts();
    // Only the upload route takes a large body (a file, as multipart/form-data); over its cap
    // the answer says so (413) before the body is read, rather than "form expired".
    let upload = super::imports::is_upload(parts.uri.path());
    let limit = if upload {
        super::imports::MAX_UPLOAD_BYTES
    } else {
        MAX_FORM_BYTES
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if upload && declared.is_some_and(|n| n > limit as u64) {
        return Err(Refusal::TooLarge(lang));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        if upload {
            Refusal::TooLarge(lang)
        } else {
            Refusal::BadToken(lang)
        }
    })?;
    let sent = match super::imports::boundary(&parts.headers) {
        Some(b) if upload => super::imports::multipart_token(Body::from(bytes.clone()), &b).await,
        _ => form_token(&bytes),
    };
    let (Some(id), Some(sent)) = (session_id, sent) else {
        return Err(Refusal::BadToken(lang));
    };
    let lifetimes = console.lifetimes();
    let session = console
        .with_db(move |db, now| db.session(now, &Token::from_client(&id), lifetimes))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "session lookup failed");
            Refusal::Internal(lang)
        })?;
    match session {
        Some(s) if s.csrf.matches(&sent) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(Refusal::BadToken(lang)),
    }
}

/// A page's translator for a viewer.
pub fn tr(console: &Console, lang: Lang) -> Tr {
    Tr::new(console.catalog.clone(), lang)
}

/// The rustls server configuration of `[console.tls]`: TLS 1.2 and 1.3 (browsers), ALPN
/// `http/1.1`, no client certificate, ring only.
pub fn tls_config(t: &ConsoleTls, dir: &Path) -> Result<Arc<rustls::ServerConfig>, ConsoleError> {
    let path = |p: &Path| {
        if p.is_relative() {
            dir.join(p)
        } else {
            p.to_path_buf()
        }
    };
    let (cert_path, key_path) = (path(&t.cert), path(&t.key));
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| ConsoleError::Tls(format!("{}: {e}", p.display())));
    let cert_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConsoleError::Tls(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(ConsoleError::Tls(format!(
            "{}: no certificate",
            cert_path.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ConsoleError::Tls(format!("{}: {e}", key_path.display())))?
        .ok_or_else(|| ConsoleError::Tls(format!("{}: no private key", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConsoleError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ConsoleError::Tls(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// HTTPS connections for axum: the node's TLS accept loop (concurrent, bounded handshakes).
#[derive(Debug)]
pub struct TlsListener {
    incoming: vrs_core::tls::TlsIncoming,
}

impl TlsListener {
    /// Handshakes on `listener` under `config`, each within 5 s.
    pub fn new(listener: tokio::net::TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        TlsListener {
            incoming: vrs_core::tls::incoming(listener, config, Duration::from_secs(5)),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use tokio_stream::StreamExt;
        loop {
            // The stream never ends (vrs_core::tls::incoming); should it, wait for shutdown.
            match self.incoming.next().await {
                Some(Ok(stream)) => {
                    if let Ok(addr) = stream.get_ref().0.peer_addr() {
                        return (stream, addr);
                    }
                }
                Some(Err(_)) => {}
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.incoming.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; vrs_console_lang=id; b=2"),
        );
        assert_eq!(cookie(&h, LANG_COOKIE).as_deref(), Some("id"));
        assert_eq!(lang_of(&h), Lang::Id);
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "ab", true, None);
        assert_eq!(
            c.to_str().unwrap(),
            "vrs_console_session=ab; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn a_foreign_origin_is_not_same_origin() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7480"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7480"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        assert!(
            form_token(b"a=1&csrf=xyz")
                .unwrap()
                .matches(&Token::from_client("xyz"))
        );
    }
}
