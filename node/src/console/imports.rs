//! Imports in the browser (docs/CONSOLE.md, "Imports"): upload a CSV, JSON Lines, XLSX or ODS
//! export with a mapping, see what the import would do, then commit or cancel it.
//!
//! There is one import path: the preview is [`crate::import::preview_file`] (the CLI's import
//! run inside its transaction and rolled back) and the commit is [`crate::import::import_file`],
//! both on the uploaded bytes kept on disk between the two. What is committed is what was
//! previewed: the upload's SHA-256 (and its mapping's) is taken at upload, shown on the preview
//! and sent back by the commit form, and the commit refuses when the stored file no longer has
//! that digest.
//!
//! Uploads wait in `<data dir>/console-uploads/<id>/` (directory 0700, files 0600), at most
//! [`MAX_PENDING`] at once, each removed at commit, at cancel, or [`UPLOAD_TTL_MS`] after upload.
//! The body of `POST /imports/upload` may be [`MAX_UPLOAD_BYTES`] (every other form:
//! [`super::web::MAX_FORM_BYTES`]); it is `multipart/form-data`, read by multer in [`read_form`], and
//! its CSRF token is a form field like any other (checked by [`super::web::guard`]).
//!
//! Role: clerk and above (clerks enter records, DESIGN.md §8c). Every upload, commit and cancel
//! is in the change log with who, the file name, its SHA-256 and the counts.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::{Deserialize, Serialize};

use super::accounts::Role;
use super::pages::{Frame, Page, render};
use super::sessions::Token;
use super::web::{self, Refusal, Viewer};
use super::{Console, ConsoleError, blocking};
use crate::import::{self, FileReport, ImportOptions, Mapping};
use crate::store::Store;

/// The largest upload body accepted (the file, its mapping and the form's fields).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Uploads waiting for a commit or cancel at once; more are refused until one is decided.
pub const MAX_PENDING: usize = 8;
/// An upload not committed or cancelled within this time is removed (one hour).
pub const UPLOAD_TTL_MS: i64 = 3_600_000;
/// Rejections listed on the preview page (all are counted).
const LISTED_REJECTIONS: usize = 200;
/// The path of the upload route, whose body limit is [`MAX_UPLOAD_BYTES`].
pub const UPLOAD_PATH: &str = "/imports/upload";
/// Directory (under the data directory) of waiting uploads.
const UPLOADS_DIR: &str = "console-uploads";
/// Directory (under node.toml's) whose `*.toml` files are offered as saved mappings.
const MAPPINGS_DIR: &str = "mappings";

/// Whether a request to `path` is an upload (its body may be [`MAX_UPLOAD_BYTES`]).
pub fn is_upload(path: &str) -> bool {
    path == UPLOAD_PATH
}

/// One imported or previewed file at a time from the console: a commit racing a second commit
/// of the same upload, or two previews holding the store's write lock, gain nothing.
static IMPORTING: Mutex<()> = Mutex::new(());

// ---- multipart/form-data ------------------------------------------------------------------

/// One part of the upload form, as multer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The form field's name.
    pub name: String,
    /// The file name the browser sent, for a file field ("" when no file was chosen).
    pub filename: Option<String>,
    /// The part's bytes.
    pub data: Bytes,
}

/// Most parts the upload form may have (it has six fields). multer has no count limit, so
/// [`read_form`] counts: without one, a body of tiny parts costs a header parse and an
/// allocation for every few bytes.
const MAX_PARTS: usize = 16;

/// The boundary of a `multipart/form-data` request, from its `Content-Type`.
pub fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    // RFC 2046 allows 1 to 70 characters; a longer one is no browser's.
    multer::parse_boundary(ct)
        .ok()
        .filter(|b| (1..=70).contains(&b.len()))
}

/// The parts of a `multipart/form-data` body (RFC 7578), or `None` if it is not the upload
/// form: not multipart, cut short, a part without a name, more than [`MAX_PARTS`] parts, or
/// more than [`MAX_UPLOAD_BYTES`] in all. It is all or nothing, so that the guard's token and
/// the handler's file come from one and the same well-formed body.
pub async fn read_form(body: Body, boundary: &str) -> Option<Vec<Part>> {
    let limits = multer::SizeLimit::new().whole_stream(MAX_UPLOAD_BYTES as u64);
    let constraints = multer::Constraints::new().size_limit(limits);
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut parts = Vec::new();
    let not_a_form = |e: multer::Error| tracing::debug!(error = %e, "upload body is not a form");
    while let Some(field) = form.next_field().await.map_err(not_a_form).ok()? {
        if parts.len() == MAX_PARTS {
            tracing::debug!("upload body has too many parts");
            return None;
        }
        // RFC 7578 §4.2: every part names its field; one without a name is no browser's form.
        let Some(name) = field.name().map(str::to_string) else {
            tracing::debug!("upload body has a part without a name");
            return None;
        };
        let filename = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(not_a_form).ok()?;
        parts.push(Part {
            name,
            filename,
            data,
        });
    }
    Some(parts)
}

/// The file sent in file field `field`: its first part with a file name (a browser sends
/// `filename=""` when none was chosen). A second file in the same field is not read.
fn chosen_file<'a>(parts: &'a [Part], field: &str) -> Option<&'a Part> {
    parts
        .iter()
        .find(|p| p.name == field && p.filename.as_deref().is_some_and(|n| !n.is_empty()))
}

/// The `csrf` field of a multipart body, for [`super::web::guard`]: the first text field so
/// named, in a body that is wholly a form.
pub async fn multipart_token(body: Body, boundary: &str) -> Option<Token> {
    read_form(body, boundary)
        .await?
        .into_iter()
        .find(|p| p.name == "csrf" && p.filename.is_none())
        .and_then(|p| std::str::from_utf8(&p.data).ok().map(Token::from_client))
}

// ---- uploads on disk ----------------------------------------------------------------------

/// What the console keeps about a waiting upload (`meta.json` beside the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Upload {
    id: String,
    /// The file's name as stored: the browser's name, reduced to safe characters.
    name: String,
    /// SHA-256 of the file's bytes, hex.
    sha256: String,
    /// The mapping: "" for the template layout, else a saved mapping's name or "uploaded: NAME".
    mapping: String,
    /// SHA-256 of the mapping's TOML as copied beside the file ("" without one).
    mapping_sha256: String,
    /// Spreadsheets: the sheet asked for.
    sheet: Option<String>,
    uploaded_by: String,
    at_ms: i64,
    /// What the preview found.
    preview: Counts,
}

/// A preview's or a commit's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    rows: u64,
    imported: u64,
    rejected: u64,
    duplicates: u64,
    skipped: u64,
    rejections: Vec<(u64, String)>,
    rejections_omitted: u64,
}

impl Counts {
    fn of(r: &FileReport, clean: &dyn Fn(&str) -> String) -> Counts {
        Counts {
            rows: r.rows_read,
            imported: r.imported,
            rejected: r.rejected,
            duplicates: r.duplicates,
            skipped: r.skipped,
            rejections: r
                .rejections
                .iter()
                .take(LISTED_REJECTIONS)
                .map(|j| (j.line, clean(&j.reason)))
                .collect(),
            rejections_omitted: r.rejected.saturating_sub(LISTED_REJECTIONS as u64),
        }
    }
}

fn uploads_root(console: &Console) -> PathBuf {
    console.config.data_dir().join(UPLOADS_DIR)
}

/// An upload id: 32 hex characters from the OS's generator. Anything else is no upload.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The browser's file name reduced to `A-Z a-z 0-9 . _ -` (at most 80 characters), keeping
/// its extension, which decides the format as it does for the CLI.
fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut out: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out = out.trim_start_matches('.').to_string();
    if out.chars().count() > 80 {
        let ext = out.rsplit_once('.').map(|(_, e)| e.to_string());
        out = out.chars().take(70).collect();
        if let Some(ext) = ext {
            out.push('.');
            out.push_str(&ext);
        }
    }
    import::Format::from_path(Path::new(&out)).map(|_| out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn read_meta(root: &Path, id: &str) -> Option<Upload> {
    if !valid_id(id) {
        return None;
    }
    let text = std::fs::read_to_string(root.join(id).join("meta.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Waiting uploads, newest first. With `purge` (only under [`IMPORTING`], so that no upload is
/// half-written meanwhile) removes those past [`UPLOAD_TTL_MS`] and any directory without a
/// readable `meta.json` (an upload cut short).
fn waiting(root: &Path, now_ms: i64, purge: bool) -> Vec<Upload> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        match read_meta(root, &id) {
            Some(u) if now_ms - u.at_ms < UPLOAD_TTL_MS => out.push(u),
            _ if purge => {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(error = %err, "cannot remove an expired upload");
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|u| std::cmp::Reverse(u.at_ms));
    out
}

/// An import error as the page shows it: the upload's directory (a path on the node) removed
/// from the message, which is otherwise the CLI's.
fn clean_message(message: &str, dir: &Path) -> String {
    let prefix = format!("{}/", dir.display());
    message.replace(&prefix, "")
}

/// The options of an upload's import: its mapping (copied beside it) and sheet.
fn options(dir: &Path, u: &Upload) -> Result<ImportOptions, String> {
    let mapping = if u.mapping.is_empty() {
        None
    } else {
        Some(
            Mapping::load(&dir.join("mapping.toml"))
                .map_err(|e| clean_message(&e.to_string(), dir))?,
        )
    };
    Ok(ImportOptions {
        mapping,
        sheet: u.sheet.clone(),
        ..ImportOptions::default()
    })
}

/// The saved mappings offered: `mappings/*.toml` beside node.toml, by name.
fn saved_mappings(console: &Console) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(console.config.dir.join(MAPPINGS_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            n.ends_with(".toml")
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .collect();
    names.sort();
    names
}

// ---- pages ---------------------------------------------------------------------------------

/// A waiting upload in the list.
#[derive(Debug, Clone)]
struct WaitingRow {
    id: String,
    name: String,
    by: String,
    at: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "console/imports.html")]
struct ImportsPage {
    f: Frame,
    notice: Option<String>,
    error: Option<String>,
    records: String,
    mappings: Vec<String>,
    waiting: Vec<WaitingRow>,
    limit: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    r: Option<u64>,
    #[serde(default)]
    d: Option<u64>,
}

/// `GET /imports`: the upload form and the uploads waiting for a decision.
pub(super) async fn imports(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Page {
    viewer.require(Role::Clerk)?;
    let t = web::tr(&console, viewer.lang);
    let notice = match done.done.as_deref() {
        Some("committed") => Some(t.ta(
            "import-committed",
            &[
                ("imported", t.int(done.n.unwrap_or(0))),
                ("rejected", t.int(done.r.unwrap_or(0))),
                ("duplicates", t.int(done.d.unwrap_or(0))),
            ],
        )),
        Some("cancelled") => Some(t.t("import-cancelled")),
        _ => None,
    };
    imports_page(&console, &viewer, StatusCode::OK, notice, None).await
}

async fn imports_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Page {
    let t = web::tr(console, viewer.lang);
    let me = console.clone();
    let (records, waiting) = blocking(move || {
        let records = Store::open_read_only(&me.config.data_dir())
            .and_then(|s| s.incident_count())
            .ok();
        // Expired uploads go when no import is running (one may be writing its directory).
        let idle = IMPORTING.try_lock().ok();
        let list = waiting(&uploads_root(&me), me.now_ms(), idle.is_some());
        drop(idle);
        Ok((records, list))
    })
    .await
    .map_err(|e| viewer.internal(e))?;
    let waiting = waiting
        .into_iter()
        .map(|u| WaitingRow {
            summary: t.ta(
                "import-waiting-summary",
                &[
                    ("imported", t.int(u.preview.imported)),
                    ("rejected", t.int(u.preview.rejected)),
                    ("duplicates", t.int(u.preview.duplicates)),
                ],
            ),
            at: t.datetime(u.at_ms),
            id: u.id,
            name: u.name,
            by: u.uploaded_by,
        })
        .collect();
    let page = ImportsPage {
        f: Frame::new(console, viewer, "import-title"),
        notice,
        error,
        records: t.ta(
            "import-records",
            &[(
                "n",
                records.map_or_else(|| t.t("cannot-read"), |n| t.int(n)),
            )],
        ),
        mappings: saved_mappings(console),
        waiting,
        limit: t.ta(
            "import-file-hint",
            &[("mib", t.int((MAX_UPLOAD_BYTES / (1024 * 1024)) as u64))],
        ),
    };
    render(status, &page, viewer.lang)
}

/// Why an upload is refused before anything is previewed (each has a message).
enum UploadRefusal {
    /// No file chosen.
    NoFile,
    /// A name whose extension is not a format the import reads.
    Type,
    /// The body is not the form this page sends.
    Form,
    /// Too many uploads wait already.
    TooMany,
    /// The mapping does not parse, or the saved one named does not exist.
    Mapping(String),
    /// The import cannot read the file at all (header, format, sheet, mapping…).
    File(String),
}

/// `POST /imports/upload` (multipart): keeps the file, previews its import, shows the preview.
pub(super) async fn upload(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let who = user.username.clone();
    let lang = viewer.lang;
    // The guard has read and bounded this body already, and found its token in the same form.
    let parts = match boundary(&headers) {
        Some(b) => read_form(body, &b).await,
        None => None,
    };
    let outcome = match parts {
        Some(parts) => {
            let me = console.clone();
            let saved = saved_mappings(&console);
            blocking(move || Ok(store_and_preview(&me, &parts, &saved, &who, me.now_ms())))
                .await
                .map_err(|e| viewer.internal(e))?
        }
        None => Err(UploadRefusal::Form),
    };
    let t = web::tr(&console, lang);
    let message = match outcome {
        Ok(id) => return Ok(Redirect::to(&format!("/imports/{id}")).into_response()),
        Err(UploadRefusal::NoFile) => t.t("import-error-no-file"),
        Err(UploadRefusal::Type) => t.t("import-error-type"),
        Err(UploadRefusal::Form) => t.t("import-error-form"),
        Err(UploadRefusal::TooMany) => {
            t.ta("import-error-too-many", &[("n", t.int(MAX_PENDING as u64))])
        }
        Err(UploadRefusal::Mapping(m)) => t.ta("import-error-mapping", &[("reason", m)]),
        Err(UploadRefusal::File(m)) => t.ta("import-error-file", &[("reason", m)]),
    };
    imports_page(
        &console,
        &viewer,
        StatusCode::BAD_REQUEST,
        None,
        Some(message),
    )
    .await
}

/// The upload's work on the blocking pool: pick the form's fields, keep the file (and
/// mapping), run the import's preview, write `meta.json` last (an upload without it is removed as cut short).
fn store_and_preview(
    console: &Console,
    parts: &[Part],
    saved: &[String],
    who: &str,
    now_ms: i64,
) -> Result<String, UploadRefusal> {
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.data).trim().to_string())
            .unwrap_or_default()
    };
    let file = chosen_file(parts, "file").ok_or(UploadRefusal::NoFile)?;
    if file.data.is_empty() {
        return Err(UploadRefusal::NoFile);
    }
    let name = safe_name(file.filename.as_deref().unwrap_or("")).ok_or(UploadRefusal::Type)?;
    // The mapping: an uploaded file wins over a saved one; none means the template layout.
    let uploaded_mapping = chosen_file(parts, "mapping_file");
    let chosen = field("mapping");
    let (mapping_label, mapping_text) = match uploaded_mapping {
        Some(p) => {
            let text = std::str::from_utf8(&p.data)
                .map_err(|_| UploadRefusal::Mapping("not UTF-8 text".into()))?;
            let label = format!(
                "uploaded: {}",
                p.filename
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect::<String>()
            );
            (label, Some(text.to_string()))
        }
        None if chosen.is_empty() => (String::new(), None),
        None => {
            if !saved.contains(&chosen) {
                return Err(UploadRefusal::Mapping("no such saved mapping".into()));
            }
            let path = console.config.dir.join(MAPPINGS_DIR).join(&chosen);
            let text = std::fs::read_to_string(&path)
                .map_err(|_| UploadRefusal::Mapping("cannot be read".into()))?;
            (chosen.clone(), Some(text))
        }
    };
    if let Some(text) = &mapping_text {
        Mapping::from_toml(text).map_err(|e| UploadRefusal::Mapping(e.to_string()))?;
    }
    let sheet = Some(field("sheet")).filter(|s| !s.is_empty());
    if sheet.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(UploadRefusal::Form);
    }
    let root = uploads_root(console);
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "console upload failed");
        UploadRefusal::File("the upload could not be kept on the node (see its log)".into())
    };
    private_dir(&root).map_err(|e| internal(&e))?;
    let _one = IMPORTING.lock().map_err(|e| internal(&e))?;
    if waiting(&root, now_ms, true).len() >= MAX_PENDING {
        return Err(UploadRefusal::TooMany);
    }
    let id = Token::random().map_err(|e| internal(&e))?.as_str()[..32].to_string();
    let dir = root.join(&id);
    private_dir(&dir).map_err(|e| internal(&e))?;
    let result = (|| {
        write_private(&dir.join(&name), &file.data).map_err(|e| internal(&e))?;
        let mapping_sha256 = match &mapping_text {
            Some(text) => {
                write_private(&dir.join("mapping.toml"), text.as_bytes())
                    .map_err(|e| internal(&e))?;
                sha256_hex(text.as_bytes())
            }
            None => String::new(),
        };
        let mut upload = Upload {
            id: id.clone(),
            name: name.clone(),
            sha256: sha256_hex(&file.data),
            mapping: mapping_label,
            mapping_sha256,
            sheet,
            uploaded_by: who.to_string(),
            at_ms: now_ms,
            preview: Counts::default(),
        };
        let opts = options(&dir, &upload).map_err(UploadRefusal::Mapping)?;
        let mut store = Store::open(&console.config.data_dir()).map_err(|e| internal(&e))?;
        let clean = |m: &str| clean_message(m, &dir);
        let report =
            import::preview_file(&mut store, &dir.join(&name), &console.config.file.fx, &opts)
                .map_err(|e| match e {
                    import::ImportError::Store(s) => internal(&s),
                    other => UploadRefusal::File(clean(&other.to_string())),
                })?;
        upload.preview = Counts::of(&report, &clean);
        let meta = serde_json::to_vec(&upload).map_err(|e| internal(&e))?;
        write_private(&dir.join("meta.json"), &meta).map_err(|e| internal(&e))?;
        Ok(upload)
    })();
    match result {
        Ok(upload) => {
            // The preview is kept whether or not its change-log entry is written: it changed
            // nothing in the store; a failure is logged.
            let logged = console.db.lock().map_err(|_| ()).and_then(|mut db| {
                db.record(
                    now_ms,
                    who,
                    "import_previewed",
                    &upload.name,
                    &format!(
                        "sha256 {}; would import {}, rejected {}, duplicates {}",
                        upload.sha256,
                        upload.preview.imported,
                        upload.preview.rejected,
                        upload.preview.duplicates
                    ),
                )
                .map(drop)
                .map_err(|e| tracing::error!(error = %e, "cannot log an import preview"))
            });
            if logged.is_err() {
                tracing::error!("an import preview is not in the change log");
            }
            Ok(id)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// One rejection of the preview.
#[derive(Debug, Clone)]
struct RejectionRow {
    line: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/import_preview.html")]
struct PreviewPage {
    f: Frame,
    error: Option<String>,
    id: String,
    name: String,
    sha256: String,
    mapping: String,
    sheet: String,
    by: String,
    at: String,
    expires: String,
    rows: String,
    imported: String,
    rejected: String,
    duplicates: String,
    skipped: String,
    rejections: Vec<RejectionRow>,
    omitted: Option<String>,
    commit_label: String,
}

/// `GET /imports/{id}`: an upload's preview, with commit and cancel.
pub(super) async fn preview(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Page {
    viewer.require(Role::Clerk)?;
    preview_page(&console, &viewer, &id, StatusCode::OK, None).await
}

async fn preview_page(
    console: &Arc<Console>,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Page {
    let root = uploads_root(console);
    let now = console.now_ms();
    let Some(u) = read_meta(&root, id).filter(|u| now - u.at_ms < UPLOAD_TTL_MS) else {
        return Err(Refusal::NotFound(viewer.lang));
    };
    let t = web::tr(console, viewer.lang);
    let p = &u.preview;
    let page = PreviewPage {
        f: Frame::new(console, viewer, "import-preview-title"),
        error,
        id: u.id.clone(),
        name: u.name.clone(),
        sha256: u.sha256.clone(),
        mapping: if u.mapping.is_empty() {
            t.t("import-mapping-template")
        } else {
            u.mapping.clone()
        },
        sheet: u.sheet.clone().unwrap_or_default(),
        by: u.uploaded_by.clone(),
        at: t.datetime(u.at_ms),
        expires: t.datetime(u.at_ms + UPLOAD_TTL_MS),
        rows: t.int(p.rows),
        imported: t.int(p.imported),
        rejected: t.int(p.rejected),
        duplicates: t.int(p.duplicates),
        skipped: t.int(p.skipped),
        rejections: p
            .rejections
            .iter()
            .map(|(line, reason)| RejectionRow {
                line: t.int(*line),
                reason: reason.clone(),
            })
            .collect(),
        commit_label: t.ta("import-commit-button", &[("n", t.int(p.imported))]),
        omitted: (p.rejections_omitted > 0).then(|| {
            t.ta(
                "import-rejections-omitted",
                &[("n", t.int(p.rejections_omitted))],
            )
        }),
    };
    render(status, &page, viewer.lang)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Decision {
    #[serde(default)]
    sha256: String,
}

/// `POST /imports/{id}/{commit|cancel}`.
pub(super) async fn decide(
    State(console): State<Arc<Console>>,
    viewer: Viewer,
    UrlPath((id, action)): UrlPath<(String, String)>,
    Form(form): Form<Decision>,
) -> Page {
    let (_, user) = viewer.require(Role::Clerk)?;
    let who = user.username.clone();
    let commit = match action.as_str() {
        "commit" => true,
        "cancel" => false,
        _ => return Err(Refusal::NotFound(viewer.lang)),
    };
    let me = console.clone();
    let id2 = id.clone();
    let outcome = blocking(move || Ok(commit_or_cancel(&me, &id2, &form.sha256, commit, &who)))
        .await
        .map_err(|e| viewer.internal(e))?;
    let t = web::tr(&console, viewer.lang);
    match outcome {
        Decided::Committed(c) => Ok(Redirect::to(&format!(
            "/imports?done=committed&n={}&r={}&d={}",
            c.imported, c.rejected, c.duplicates
        ))
        .into_response()),
        Decided::Cancelled => Ok(Redirect::to("/imports?done=cancelled").into_response()),
        Decided::Gone => Err(Refusal::NotFound(viewer.lang)),
        Decided::Changed => {
            preview_page(
                &console,
                &viewer,
                &id,
                StatusCode::CONFLICT,
                Some(t.t("import-error-changed")),
            )
            .await
        }
        Decided::Failed(m) => {
            preview_page(
                &console,
                &viewer,
                &id,
                StatusCode::BAD_REQUEST,
                Some(t.ta("import-error-file", &[("reason", m)])),
            )
            .await
        }
        Decided::Internal(e) => Err(viewer.internal(e)),
    }
}

enum Decided {
    Committed(Counts),
    Cancelled,
    /// No such upload (decided already, expired, or never).
    Gone,
    /// The stored file (or mapping) is not what was previewed, or the form names another.
    Changed,
    /// The import refused the file (a change to the store since the preview, say).
    Failed(String),
    Internal(ConsoleError),
}

fn commit_or_cancel(console: &Console, id: &str, seen: &str, commit: bool, who: &str) -> Decided {
    let root = uploads_root(console);
    let Ok(_one) = IMPORTING.lock() else {
        return Decided::Internal(ConsoleError::Internal("import lock poisoned".into()));
    };
    let now = console.now_ms();
    let Some(u) = read_meta(&root, id).filter(|u| now - u.at_ms < UPLOAD_TTL_MS) else {
        return Decided::Gone;
    };
    let dir = root.join(id);
    let record = |action: &str, detail: String| -> Result<(), ConsoleError> {
        let mut db = console
            .db
            .lock()
            .map_err(|_| ConsoleError::Internal("console database lock poisoned".into()))?;
        db.record(now, who, action, &u.name, &detail)?;
        Ok(())
    };
    if !commit {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            return Decided::Internal(e.into());
        }
        let p = &u.preview;
        return match record(
            "import_cancelled",
            format!(
                "sha256 {}; nothing imported (the preview: {} new, {} rejected, {} duplicates)",
                u.sha256, p.imported, p.rejected, p.duplicates
            ),
        ) {
            Ok(()) => Decided::Cancelled,
            Err(e) => Decided::Internal(e),
        };
    }
    // What is committed must be what was previewed: the form's digest, the preview's and the
    // file's own now, and the mapping's likewise.
    let file = dir.join(&u.name);
    let now_sha = std::fs::read(&file).map(|b| sha256_hex(&b)).ok();
    let mapping_now = if u.mapping.is_empty() {
        Some(String::new())
    } else {
        std::fs::read(dir.join("mapping.toml"))
            .map(|b| sha256_hex(&b))
            .ok()
    };
    if seen != u.sha256
        || now_sha.as_deref() != Some(u.sha256.as_str())
        || mapping_now.as_deref() != Some(u.mapping_sha256.as_str())
    {
        return Decided::Changed;
    }
    let opts = match options(&dir, &u) {
        Ok(o) => o,
        Err(m) => return Decided::Failed(m),
    };
    let mut store = match Store::open(&console.config.data_dir()) {
        Ok(s) => s,
        Err(e) => return Decided::Internal(e.into()),
    };
    let report = match import::import_file(&mut store, &file, &console.config.file.fx, &opts) {
        Ok(r) => r,
        Err(import::ImportError::Store(e)) => return Decided::Internal(e.into()),
        Err(e) => return Decided::Failed(clean_message(&e.to_string(), &dir)),
    };
    let counts = Counts::of(&report, &|m| m.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    match record(
        "import_committed",
        format!(
            "sha256 {}; mapping {}; imported {}, rejected {}, duplicates {}, skipped {}",
            u.sha256,
            if u.mapping.is_empty() {
                "template"
            } else {
                &u.mapping
            },
            counts.imported,
            counts.rejected,
            counts.duplicates,
            counts.skipped
        ),
    ) {
        Ok(()) => Decided::Committed(counts),
        Err(e) => Decided::Internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER_FORM: &[u8] = b"------B\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n------B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n\r\n------B--\r\n";

    async fn read(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
        read_form(Body::from(body.to_vec()), boundary).await
    }

    /// A body of `parts` (field name, file name, bytes) under boundary `B`.
    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, data) in parts {
            let filename = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            body.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        body
    }

    #[tokio::test]
    async fn a_browser_multipart_body_is_read() {
        let parts = read(BROWSER_FORM, "----B").await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].filename, None);
        assert_eq!(&parts[0].data[..], b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("x.csv"));
        assert_eq!(&parts[1].data[..], b"a,b\r\n1,2\r\n");
        let token = multipart_token(Body::from(BROWSER_FORM), "----B").await;
        assert!(token.unwrap().matches(&Token::from_client("abc")));
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=----B".parse().unwrap(),
        );
        assert_eq!(boundary(&h).as_deref(), Some("----B"));
        h.insert(
            header::CONTENT_TYPE,
            "Multipart/Form-Data; boundary=\"----B\"".parse().unwrap(),
        );
        assert_eq!(boundary(&h).as_deref(), Some("----B"));
    }

    #[tokio::test]
    async fn a_quoted_file_name_keeps_its_extension_and_loses_its_path() {
        // The old hand-rolled parser split the header at every `;`, quoted or not, and kept
        // `"Laporan` as the name: no extension, so the upload was refused as a wrong type.
        let body = form(&[("file", Some("C:\\Users\\ani\\Laporan; Mei.csv"), b"a\n")]);
        let parts = read(&body, "B").await.unwrap();
        let file = chosen_file(&parts, "file").unwrap();
        assert_eq!(
            file.filename.as_deref(),
            Some("C:\\Users\\ani\\Laporan; Mei.csv")
        );
        assert_eq!(
            safe_name(file.filename.as_deref().unwrap()).as_deref(),
            Some("Laporan__Mei.csv")
        );
        let body = form(&[("file", Some("../../x/may.jsonl"), b"{}\n")]);
        let parts = read(&body, "B").await.unwrap();
        let name = parts[0].filename.as_deref().unwrap();
        assert_eq!(safe_name(name).as_deref(), Some("may.jsonl"));
    }

    #[tokio::test]
    async fn a_hostile_body_is_no_form() {
        // No boundary, or not multipart at all: the route has no form to read.
        let mut h = HeaderMap::new();
        for ct in [
            "multipart/form-data",
            "multipart/form-data; charset=utf-8",
            "application/x-www-form-urlencoded",
            "text/plain; boundary=B",
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(boundary(&h), None, "{ct}");
        }
        let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        h.insert(header::CONTENT_TYPE, long.parse().unwrap());
        assert_eq!(boundary(&h), None);
        // Another boundary than the body's, or a body cut anywhere short of its end.
        assert_eq!(read(BROWSER_FORM, "----C").await, None);
        for cut in [1, 20, 60, BROWSER_FORM.len() - 5] {
            assert_eq!(read(&BROWSER_FORM[..cut], "----B").await, None, "{cut}");
        }
        assert_eq!(
            multipart_token(Body::from(&BROWSER_FORM[..60]), "----B").await,
            None
        );
        // A part without a name, even after the token: the whole body is refused.
        let nameless = b"--B\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--B\r\nContent-Disposition: form-data; filename=\"x.csv\"\r\n\r\na\r\n--B--\r\n";
        assert_eq!(read(nameless, "B").await, None);
        assert_eq!(multipart_token(Body::from(&nameless[..]), "B").await, None);
        let headless = b"--B\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--\r\n";
        assert_eq!(read(headless, "B").await, None);
        // 10,000 tiny parts: refused at the 17th, token or not.
        let mut many = vec![("csrf", None, &b"abc"[..])];
        many.extend(std::iter::repeat_n(("x", None, &b""[..]), 9_999));
        let body = form(&many);
        assert_eq!(read(&body, "B").await, None);
        assert_eq!(multipart_token(Body::from(body), "B").await, None);
        let sixteen = form(&many[..MAX_PARTS]);
        assert_eq!(read(&sixteen, "B").await.unwrap().len(), MAX_PARTS);
        let seventeen = form(&many[..=MAX_PARTS]);
        assert_eq!(read(&seventeen, "B").await, None);
        // A body over the cap is no form even when the route's own limit is not in front.
        let mut big =
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
                .to_vec();
        big.resize(MAX_UPLOAD_BYTES + 1, b'a');
        big.extend_from_slice(b"\r\n--B--\r\n");
        assert_eq!(read(&big, "B").await, None);
    }

    #[tokio::test]
    async fn the_first_file_of_a_field_is_the_upload() {
        // A browser sends one file per field here (no `multiple`); a second is never read.
        let body = form(&[
            ("csrf", None, b"abc"),
            ("file", Some(""), b""),
            ("file", Some("first.csv"), b"1\n"),
            ("file", Some("second.csv"), b"2\n"),
            ("mapping_file", Some(""), b""),
        ]);
        let parts = read(&body, "B").await.unwrap();
        let file = chosen_file(&parts, "file").unwrap();
        assert_eq!(file.filename.as_deref(), Some("first.csv"));
        assert_eq!(&file.data[..], b"1\n");
        // No file chosen: the browser's empty file name.
        assert_eq!(chosen_file(&parts, "mapping_file"), None);
        // A file is no token.
        let body = form(&[("csrf", Some("t.txt"), b"abc")]);
        assert_eq!(multipart_token(Body::from(body), "B").await, None);
    }

    #[test]
    fn file_names_are_reduced_and_must_name_a_format() {
        assert_eq!(
            safe_name("C:\\x\\Laporan Mei.csv").as_deref(),
            Some("Laporan_Mei.csv")
        );
        assert_eq!(safe_name("../../etc/passwd"), None);
        assert_eq!(safe_name("..data.xlsx").as_deref(), Some("data.xlsx"));
        assert_eq!(safe_name("a.exe"), None);
        let long = format!("{}.jsonl", "a".repeat(200));
        assert!(safe_name(&long).unwrap().ends_with(".jsonl"));
        assert!(valid_id(&"ab".repeat(16)));
        assert!(!valid_id("../x"));
    }
}
