//! Import: files an operator holds → checked [`IncidentRecord`]s → the store, one transaction per
//! file.
//!
//! - [`template`]: the project's own CSV template (and its writer); JSON Lines needs no module of
//!   its own, as serde defines it on [`IncidentRecord`].
//! - [`mapping`]: declarative TOML mappings for any other CSV or spreadsheet layout.
//! - `rows`: the bounded, line-numbered CSV and JSON Lines readers underneath both.
//! - `sheet`: XLSX and ODS workbooks (calamine), whose rows go to the template layout or a
//!   mapping like CSV rows, numbered by their spreadsheet row.
//!
//! Every row is parsed and checked before it is written ([`crate::store::ImportTx::insert`]
//! runs [`IncidentRecord::check`] and the FX conversion). A bad row is a rejection with its
//! physical line number and a short reason; a row whose `source_id` is already stored (or came
//! earlier in the file) is a duplicate, counted and left alone. A file that cannot be read as a
//! whole (unreadable, no usable header, a mapping that does not fit) is an [`ImportError`] and
//! imports nothing. With `strict`, a file with any rejection is rolled back entirely.
//! [`preview_file`] is the same import rolled back at its end: the console's upload preview.
//!
//! Counts and reasons go to the operator in the [`ImportReport`]; they are pre-disclosure figures
//! of the node's own data, so nothing here logs them above debug level.

pub mod mapping;
mod rows;
mod sheet;
pub mod template;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc::{Receiver, SyncSender};

use serde::Serialize;
use vrs_core::cli::Status;

use crate::fx::FxRates;
use crate::record::{IncidentRecord, RecordLimits};
use crate::store::{ImportCounts, Inserted, Store, StoreError};

pub use mapping::{Mapping, MappingError};
pub use rows::{HeaderError, MAX_FIELDS, MAX_QUOTED_LINE_BREAKS, MAX_ROW_BYTES, QuoteError};
pub use sheet::SheetError;
pub use template::{CsvReader, CsvWriter};

/// Most rejection reasons kept in a report; the rest are only counted.
pub const MAX_REPORTED_REJECTIONS: usize = 1_000;
/// Longest rejection reason kept, in characters.
const MAX_REASON_CHARS: usize = 300;
/// Read buffer size.
const BUFFER: usize = 1 << 16;

/// The encoding of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV: the template, or any layout through a [`Mapping`].
    Csv,
    /// JSON Lines: one [`IncidentRecord`] per line, as serde defines it.
    JsonLines,
    /// An Office Open XML workbook (`.xlsx`): the template's columns, or a [`Mapping`].
    Xlsx,
    /// An OpenDocument workbook (`.ods`): the template's columns, or a [`Mapping`].
    Ods,
}

impl Format {
    /// The format a file name implies: `.csv`, `.jsonl` / `.ndjson`, `.xlsx` or `.ods` (any
    /// case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "xlsx" => Some(Format::Xlsx),
            "ods" => Some(Format::Ods),
            _ => None,
        }
    }

    /// The workbook format, for a spreadsheet.
    fn book(self) -> Option<sheet::Book> {
        match self {
            Format::Xlsx => Some(sheet::Book::Xlsx),
            Format::Ods => Some(sheet::Book::Ods),
            Format::Csv | Format::JsonLines => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::JsonLines),
            "xlsx" => Ok(Format::Xlsx),
            "ods" => Ok(Format::Ods),
            other => Err(format!(
                "{:?} is not an input format (csv, jsonl, ndjson, xlsx, ods)",
                rows::short(other)
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
        })
    }
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Roll a file back entirely if any of its rows is rejected.
    pub strict: bool,
    /// Read CSV and spreadsheets through this mapping instead of the template.
    pub mapping: Option<Mapping>,
    /// The input format, instead of telling it from the file name.
    pub format: Option<Format>,
    /// Spreadsheets: the sheet to read, over the mapping's `sheet` (default: the first sheet).
    pub sheet: Option<String>,
    /// Show a progress bar on stderr (the binary sets this only when stderr is a terminal).
    pub progress: bool,
}

/// A file that cannot be imported at all. Nothing of that file is written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be opened or read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Underlying error.
        source: io::Error,
    },
    /// The format is neither given nor implied by the file name.
    #[error(
        "{file}: cannot tell the format from the name (use .csv, .jsonl, .ndjson, .xlsx or .ods, or give --input-format)"
    )]
    UnknownFormat {
        /// The file.
        file: String,
    },
    /// A mapping was given for a JSON Lines file.
    #[error("{file}: mappings read CSV and spreadsheet files, not JSON Lines")]
    MappingNeedsCsv {
        /// The file.
        file: String,
    },
    /// The file's content is not of the format it is read as (a workbook named `.csv`, a CSV
    /// named `.xlsx`, an ODS read as XLSX…).
    #[error(
        "{file}: read as {format}, but its content is {found} (give the right --input-format, or name the file for what it is)"
    )]
    WrongContent {
        /// The file.
        file: String,
        /// The format it was to be read as.
        format: Format,
        /// What the content is.
        found: &'static str,
    },
    /// A sheet was asked for, but the file is not a spreadsheet.
    #[error("{file}: --sheet is for spreadsheets (xlsx, ods), and this file is read as {format}")]
    SheetOfText {
        /// The file.
        file: String,
        /// Its format.
        format: Format,
    },
    /// The workbook cannot be read, or has no such sheet.
    #[error("{file}: {source}")]
    Sheet {
        /// The file.
        file: String,
        /// What is wrong.
        source: SheetError,
    },
    /// The CSV header is unusable.
    #[error("{file}: {source}")]
    Header {
        /// The file.
        file: String,
        /// What is wrong with it.
        source: HeaderError,
    },
    /// The mapping does not fit the file.
    #[error("{file}: {source}")]
    Mapping {
        /// The file.
        file: String,
        /// What does not fit.
        source: MappingError,
    },
    /// A quoted field cannot be delimited (a stray quote): where the rows after it end cannot
    /// be told, so none of the file is imported.
    #[error("{file}: {source}")]
    Quote {
        /// The file.
        file: String,
        /// Where and why.
        source: QuoteError,
    },
    /// The rows read do not add up to those imported, rejected, duplicate and skipped: a row
    /// went unaccounted for, so the file is rolled back rather than reported wrongly.
    #[error(
        "{file}: {read} rows read but {accounted} accounted for (imported, rejected, duplicates, skipped); nothing imported"
    )]
    Unreconciled {
        /// The file.
        file: String,
        /// Rows the reader delimited.
        read: u64,
        /// Imported + rejected + duplicates + skipped.
        accounted: u64,
    },
    /// The store failed (not a problem with one row).
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// A file failed after earlier files of the same run were imported and committed.
    #[error("{source} (the {} file(s) before it were imported: {} new records)", .done.files.len(), .done.imported)]
    AfterFiles {
        /// What the earlier files did.
        done: Box<ImportReport>,
        /// The failure.
        source: Box<ImportError>,
    },
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The file, as given.
    pub file: String,
    /// Physical line the row starts on (the CSV header is line 1).
    pub line: u64,
    /// Why: the field and a short offending value at most, never the row.
    pub reason: String,
}

/// What importing one file did: its figures ([`FileSummary`], which it derefs to) and the
/// rejections it lists. Serializes as the summary's fields followed by `rejections` and
/// `rejections_omitted`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The figures: file, digest and counts.
    #[serde(flatten)]
    pub summary: FileSummary,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejections.
    pub rejections: Vec<Rejection>,
    /// Rejections counted but not listed.
    pub rejections_omitted: u64,
}

impl std::ops::Deref for FileReport {
    type Target = FileSummary;

    fn deref(&self) -> &FileSummary {
        &self.summary
    }
}

impl std::ops::DerefMut for FileReport {
    fn deref_mut(&mut self) -> &mut FileSummary {
        &mut self.summary
    }
}

/// One file's figures, in a [`FileReport`] and in an [`ImportReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// The file, as given.
    pub file: String,
    /// SHA-256 of the file's bytes, hex; recorded with the import run.
    pub sha256: String,
    /// Spreadsheets: the sheet read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// New records written (0 when rolled back).
    pub imported: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rows whose `source_id` was already stored or came earlier in the file.
    pub duplicates: u64,
    /// Rows a mapping's `skip` rules exclude.
    pub skipped: u64,
    /// Rows read (after the header; blank lines are not rows): always imported + rejected +
    /// duplicates + skipped, or the import is an [`ImportError::Unreconciled`].
    pub rows_read: u64,
    /// Whether the file was rolled back (`strict` with rejections).
    pub rolled_back: bool,
}

/// What importing several files did, combined. Serializes as
/// `{"imported":N,"rejected":M,"duplicates":K,"rejections":[{"file":…,"line":L,"reason":…}],"rejections_omitted":X,"files":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// New records written.
    pub imported: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Duplicate rows.
    pub duplicates: u64,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejections over all files.
    pub rejections: Vec<Rejection>,
    /// Rejections counted but not listed.
    pub rejections_omitted: u64,
    /// Per-file figures.
    pub files: Vec<FileSummary>,
}

/// How an import run ended, as the operator's exit status should say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// Every row read went in (or was a duplicate or skipped by the mapping).
    Clean,
    /// Some rows were rejected; the rest of every file went in.
    SomeRejected,
    /// A file had rows and every one of them was rejected: nothing of it went in.
    NothingImported,
    /// `strict`: a file had rejections and was rolled back.
    RolledBack,
}

impl ImportOutcome {
    /// The process exit status for this outcome ([`vrs_core::cli::Status`]): 0 when every row
    /// went in; 3 when some rows were rejected and the rest went in (0 if `allow_rejected`); 4
    /// when a file with rejections put nothing in the store.
    pub fn status(self, allow_rejected: bool) -> Status {
        match self {
            ImportOutcome::Clean => Status::Ok,
            ImportOutcome::SomeRejected if allow_rejected => Status::Ok,
            ImportOutcome::SomeRejected => Status::ImportRejectedRows,
            ImportOutcome::NothingImported | ImportOutcome::RolledBack => Status::ImportNothing,
        }
    }
}

impl ImportReport {
    /// How the run ended; the worst file decides.
    pub fn outcome(&self) -> ImportOutcome {
        if self.files.iter().any(|f| f.rolled_back) {
            ImportOutcome::RolledBack
        } else if self
            .files
            .iter()
            .any(|f| f.rejected > 0 && f.imported == 0 && f.duplicates == 0)
        {
            ImportOutcome::NothingImported
        } else if self.rejected > 0 {
            ImportOutcome::SomeRejected
        } else {
            ImportOutcome::Clean
        }
    }

    /// Adds one file's report.
    pub fn add(&mut self, f: FileReport) {
        self.imported += f.imported;
        self.rejected += f.rejected;
        self.duplicates += f.duplicates;
        let room = MAX_REPORTED_REJECTIONS.saturating_sub(self.rejections.len());
        let listed = f.rejections.len();
        self.rejections.extend(f.rejections.into_iter().take(room));
        self.rejections_omitted += f.rejections_omitted + listed.saturating_sub(room) as u64;
        self.files.push(f.summary);
    }
}

impl FileReport {
    fn reject(&mut self, line: u64, reason: &str) {
        self.rejected += 1;
        if self.rejections.len() < MAX_REPORTED_REJECTIONS {
            let reason = if reason.chars().count() > MAX_REASON_CHARS {
                let mut cut: String = reason.chars().take(MAX_REASON_CHARS).collect();
                cut.push('…');
                cut
            } else {
                reason.to_string()
            };
            self.rejections.push(Rejection {
                file: self.file.clone(),
                line,
                reason,
            });
        } else {
            self.rejections_omitted += 1;
        }
    }
}

/// One row of input, parsed.
enum Row {
    Record(u64, Box<IncidentRecord>),
    Rejected(u64, String),
    Skipped,
}

/// A stream of parsed rows.
trait RowSource {
    fn next_row(&mut self) -> io::Result<Option<Row>>;
    fn bytes_read(&self) -> u64;
    /// Rows the reader delimited so far, counted by the reader itself (not from what it yielded).
    fn rows_read(&self) -> u64;
}

impl<R: io::BufRead> RowSource for CsvReader<R> {
    fn next_row(&mut self) -> io::Result<Option<Row>> {
        Ok(self.read_record()?.map(|(line, r)| match r {
            Ok(r) => Row::Record(line, Box::new(r)),
            Err(e) => Row::Rejected(line, e),
        }))
    }
    fn bytes_read(&self) -> u64 {
        CsvReader::bytes_read(self)
    }
    fn rows_read(&self) -> u64 {
        CsvReader::rows_read(self)
    }
}

struct Mapped<R> {
    rows: rows::CsvRows<R>,
    bound: mapping::Bound,
}

impl<R: io::BufRead> RowSource for Mapped<R> {
    fn next_row(&mut self) -> io::Result<Option<Row>> {
        let Some(status) = self.rows.read()? else {
            return Ok(None);
        };
        let line = self.rows.line();
        Ok(Some(match status {
            rows::RowStatus::Ok => match self.bound.apply(&self.rows.fields()) {
                Ok(mapping::Mapped::Record(r)) => Row::Record(line, r),
                Ok(mapping::Mapped::Skipped) => Row::Skipped,
                Err(e) => Row::Rejected(line, e),
            },
            rows::RowStatus::TooLong => Row::Rejected(line, template::too_long()),
            rows::RowStatus::NotUtf8 => Row::Rejected(line, template::not_utf8()),
        }))
    }
    fn bytes_read(&self) -> u64 {
        self.rows.bytes_read()
    }
    fn rows_read(&self) -> u64 {
        self.rows.records_read()
    }
}

impl<R: io::BufRead> RowSource for rows::JsonLines<R> {
    fn next_row(&mut self) -> io::Result<Option<Row>> {
        loop {
            let Some(status) = self.read()? else {
                return Ok(None);
            };
            let line = self.line();
            return Ok(Some(match status {
                rows::RowStatus::TooLong => Row::Rejected(line, template::too_long()),
                rows::RowStatus::NotUtf8 => Row::Rejected(line, template::not_utf8()),
                rows::RowStatus::Ok => {
                    let text = self.text();
                    if text.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<IncidentRecord>(text) {
                        Ok(r) => Row::Record(line, Box::new(r)),
                        Err(e) => Row::Rejected(line, json_reason(&e)),
                    }
                }
            }));
        }
    }
    fn bytes_read(&self) -> u64 {
        rows::JsonLines::bytes_read(self)
    }
    fn rows_read(&self) -> u64 {
        rows::JsonLines::records_read(self)
    }
}

/// serde_json's message, with its position given as a column (the line is the row's own).
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(m) => format!("{m} (column {})", e.column()),
        None => msg,
    }
}

fn sha256_hex(file: &mut File, label: &str) -> Result<String, ImportError> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = file.read(&mut buf).map_err(|source| ImportError::Io {
            file: label.to_string(),
            source,
        })?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex::encode(ctx.finish().as_ref()))
}

/// An opened file with its header checked, ready to stream rows.
struct Opened {
    label: String,
    name: String,
    sha256: String,
    len: u64,
    source: Box<dyn RowSource + Send>,
    /// The sheet read, for a spreadsheet.
    sheet: Option<String>,
    /// Caps the rows are checked against (the mapping's, or the default).
    limits: RecordLimits,
}

/// Opens a file and checks its header; `hash` reads it once first for its SHA-256 (a check-only
/// open skips that).
fn open(path: &Path, opts: &ImportOptions, hash: bool) -> Result<Opened, ImportError> {
    let label = path.display().to_string();
    let io_err = |source| ImportError::Io {
        file: label.clone(),
        source,
    };
    // An explicit format wins, then the name; a mapping reads a file of any other name as CSV.
    let format = match (opts.format, Format::from_path(path), &opts.mapping) {
        (Some(f), _, _) | (None, Some(f), _) => f,
        (None, None, Some(_)) => Format::Csv,
        (None, None, None) => {
            return Err(ImportError::UnknownFormat {
                file: label.clone(),
            });
        }
    };
    if format == Format::JsonLines && opts.mapping.is_some() {
        return Err(ImportError::MappingNeedsCsv { file: label });
    }
    if opts.sheet.is_some() && format.book().is_none() {
        return Err(ImportError::SheetOfText {
            file: label,
            format,
        });
    }
    // The content must be what the file is read as: a workbook is never read as text (its
    // bytes would make a "header not UTF-8" or garbage rows), nor text as a workbook.
    let content = sheet::sniff(path).map_err(io_err)?;
    let fits = match format {
        Format::Csv | Format::JsonLines => content == sheet::Content::Other,
        Format::Xlsx => content == sheet::Content::Zip,
        Format::Ods => content == sheet::Content::Ods,
    };
    if !fits {
        return Err(ImportError::WrongContent {
            file: label,
            format,
            found: content.describe(),
        });
    }
    let limits = opts
        .mapping
        .as_ref()
        .map_or_else(RecordLimits::default, Mapping::limits);
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let sha256 = if hash {
        let h = sha256_hex(&mut file, &label)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        h
    } else {
        String::new()
    };
    let name = path
        .file_name()
        .map_or_else(|| label.clone(), |n| n.to_string_lossy().into_owned());
    let text = || BufReader::with_capacity(BUFFER, file);
    let (source, sheet): (Box<dyn RowSource + Send>, Option<String>) = match (format, &opts.mapping)
    {
        (Format::Xlsx, _) => open_sheet(path, sheet::Book::Xlsx, opts, &label, len)?,
        (Format::Ods, _) => open_sheet(path, sheet::Book::Ods, opts, &label, len)?,
        (Format::JsonLines, _) => (Box::new(rows::JsonLines::new(text())), None),
        (Format::Csv, None) => (
            Box::new(
                CsvReader::new(text()).map_err(|source| ImportError::Header {
                    file: label.clone(),
                    source,
                })?,
            ),
            None,
        ),
        (Format::Csv, Some(m)) => {
            let mut rows = rows::CsvRows::new(text(), m.delimiter());
            let header = rows.read_header().map_err(|source| ImportError::Header {
                file: label.clone(),
                source,
            })?;
            let bound = m.bind(&header).map_err(|source| ImportError::Mapping {
                file: label.clone(),
                source,
            })?;
            (Box::new(Mapped { rows, bound }), None)
        }
    };
    Ok(Opened {
        label,
        name,
        sha256,
        len,
        source,
        sheet,
        limits,
    })
}

/// Reads a workbook's sheet (`--sheet`, else the mapping's `sheet`, else the first) and binds
/// its header to the template or the mapping. Returns the rows and the sheet's name.
fn open_sheet(
    path: &Path,
    book: sheet::Book,
    opts: &ImportOptions,
    label: &str,
    len: u64,
) -> Result<(Box<dyn RowSource + Send>, Option<String>), ImportError> {
    let asked = opts
        .sheet
        .as_deref()
        .or_else(|| opts.mapping.as_ref().and_then(Mapping::sheet));
    let header_row = opts.mapping.as_ref().and_then(Mapping::header_row);
    let header_err = |source| ImportError::Header {
        file: label.to_string(),
        source,
    };
    let sheet = sheet::read(path, book, asked, header_row)
        .map_err(|source| ImportError::Sheet {
            file: label.to_string(),
            source,
        })?
        .map_err(header_err)?;
    let target = match &opts.mapping {
        None => sheet::Target::Template(Box::new(
            template::Layout::from_header(&sheet.header).map_err(header_err)?,
        )),
        Some(m) => {
            let mut bound = m
                .bind(&sheet.header)
                .map_err(|source| ImportError::Mapping {
                    file: label.to_string(),
                    source,
                })?;
            bound.accept_iso_dates();
            sheet::Target::Mapped(Box::new(bound))
        }
    };
    let name = sheet.name.clone();
    Ok((
        Box::new(sheet::SheetSource::new(sheet, target, len)),
        Some(name),
    ))
}

/// A progress bar over the bytes of one file, or nothing.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(show: bool, len: u64, label: &str) -> Progress {
        if !show {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(len),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(rows::short(label));
        Progress(Some(bar))
    }

    fn set(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(bytes);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Rows handed from the reading thread to the writing one at a time.
const BATCH_ROWS: usize = 256;

/// Batches the reader may be ahead of the writer.
const PIPELINE_DEPTH: usize = 8;

/// Parsed rows, and how far into the file they reach.
struct Batch {
    rows: Vec<Row>,
    bytes_read: u64,
    rows_read: u64,
}

/// Reads `source` to its end in batches, until the receiver is gone or reading fails (the
/// error is the last thing sent). Batches coming back on `written` are freed here.
fn read_batches(
    source: &mut (dyn RowSource + Send),
    send: &SyncSender<io::Result<Batch>>,
    written: &Receiver<Vec<Row>>,
) {
    loop {
        written.try_iter().for_each(drop);
        let mut rows = Vec::with_capacity(BATCH_ROWS);
        let mut end = false;
        while rows.len() < BATCH_ROWS {
            match source.next_row() {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    let _ = send.send(Ok(Batch {
                        rows,
                        bytes_read: source.bytes_read(),
                        rows_read: source.rows_read(),
                    }));
                    let _ = send.send(Err(e));
                    return;
                }
            }
        }
        let batch = Batch {
            rows,
            bytes_read: source.bytes_read(),
            rows_read: source.rows_read(),
        };
        if send.send(Ok(batch)).is_err() || end {
            return;
        }
    }
}

/// Imports one file in one transaction. See the module documentation for what counts as a
/// rejection, a duplicate and a file error.
pub fn import_file(
    store: &mut Store,
    path: &Path,
    fx: &FxRates,
    opts: &ImportOptions,
) -> Result<FileReport, ImportError> {
    let opened = open(path, opts, true)?;
    import_opened(store, opened, fx, opts, Keep::Commit)
}

/// Whether an import keeps what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Commit the transaction: the records are stored.
    Commit,
    /// Roll it back at the end: a preview.
    RollBack,
}

/// What [`import_file`] would do with this file, with nothing written: the very same import
/// (reader, checks, FX conversion, duplicates against the store and within the file) runs in
/// its transaction, which is then rolled back. The console's upload preview calls this, so a
/// preview and the commit after it cannot disagree on how a row is read; only a change to the
/// store in between (another import adding a `source_id`) can change the counts.
pub fn preview_file(
    store: &mut Store,
    path: &Path,
    fx: &FxRates,
    opts: &ImportOptions,
) -> Result<FileReport, ImportError> {
    let opened = open(path, opts, true)?;
    import_opened(store, opened, fx, opts, Keep::RollBack)
}

fn import_opened(
    store: &mut Store,
    opened: Opened,
    fx: &FxRates,
    opts: &ImportOptions,
    keep: Keep,
) -> Result<FileReport, ImportError> {
    let Opened {
        label,
        name,
        sha256,
        len,
        mut source,
        sheet,
        limits,
    } = opened;
    let mut report = FileReport {
        summary: FileSummary {
            file: label.clone(),
            sha256: sha256.clone(),
            sheet,
            ..FileSummary::default()
        },
        ..FileReport::default()
    };
    let progress = Progress::new(opts.progress, len, &label);
    let mut tx = store.begin_import(&name, &sha256, fx)?;
    tx.set_limits(limits);
    // Parsing and checking rows runs on a second thread, a batch ahead of the writes: on a
    // bulk load the two take comparable time. Returning early drops the receiver, which stops
    // the reader at its next batch.
    // Written batches go back to the reader, which frees them: freeing on the thread that
    // allocated is cheaper, and it is the writer that has no time to spare.
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let (send, batches) = std::sync::mpsc::sync_channel::<io::Result<Batch>>(PIPELINE_DEPTH);
        let (give_back, written) = std::sync::mpsc::channel::<Vec<Row>>();
        scope.spawn(move || read_batches(&mut *source, &send, &written));
        for batch in batches {
            let batch = batch.map_err(|source| match QuoteError::from_io(&source) {
                Some(quote) => ImportError::Quote {
                    file: label.clone(),
                    source: quote,
                },
                None => ImportError::Io {
                    file: label.clone(),
                    source,
                },
            })?;
            report.rows_read = batch.rows_read;
            for row in &batch.rows {
                match row {
                    Row::Skipped => report.skipped += 1,
                    Row::Rejected(line, reason) => report.reject(*line, reason),
                    Row::Record(line, record) => match tx.insert(record) {
                        Ok(Inserted::New) => report.imported += 1,
                        Ok(Inserted::Duplicate) => report.duplicates += 1,
                        Err(e) if e.is_row_error() => report.reject(*line, &e.to_string()),
                        // Dropping `tx` rolls the file back.
                        Err(e) => return Err(e.into()),
                    },
                }
            }
            progress.set(batch.bytes_read);
            // The reader may have finished and gone: then the batch is freed here.
            let _ = give_back.send(batch.rows);
        }
        Ok(())
    })?;
    drop(progress);
    let accounted = report.imported + report.rejected + report.duplicates + report.skipped;
    if accounted != report.rows_read {
        // Dropping `tx` rolls the file back.
        return Err(ImportError::Unreconciled {
            file: label,
            read: report.rows_read,
            accounted,
        });
    }
    if opts.strict && report.rejected > 0 {
        tx.rollback()?;
        report.imported = 0;
        report.rolled_back = true;
    } else if keep == Keep::RollBack {
        // `imported` stays what a commit would store.
        tx.rollback()?;
    } else {
        tx.commit(ImportCounts {
            imported: report.imported,
            rejected: report.rejected,
            duplicates: report.duplicates,
        })?;
    }
    tracing::debug!(
        file = %label,
        imported = report.imported,
        rejected = report.rejected,
        duplicates = report.duplicates,
        skipped = report.skipped,
        rolled_back = report.rolled_back,
        "import finished"
    );
    Ok(report)
}

/// Imports several files, each in its own transaction (`strict` applies per file). Every file is
/// opened and its header checked before any is imported, so a bad header or mapping imports
/// nothing at all; a failure after that leaves the earlier files committed and says so
/// ([`ImportError::AfterFiles`]).
pub fn import_files<P: AsRef<Path>>(
    store: &mut Store,
    paths: &[P],
    fx: &FxRates,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    for p in paths {
        open(p.as_ref(), opts, false)?;
    }
    let mut report = ImportReport::default();
    for p in paths {
        match import_file(store, p.as_ref(), fx, opts) {
            Ok(f) => report.add(f),
            Err(e) if report.files.is_empty() => return Err(e),
            Err(e) => {
                return Err(ImportError::AfterFiles {
                    done: Box::new(report),
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(&dir.path().join("node"), "THA".parse().unwrap()).unwrap();
        (dir, s)
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn formats_come_from_names_or_options() {
        assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("b.ndjson")),
            Some(Format::JsonLines)
        );
        assert_eq!(
            Format::from_path(Path::new("b.jsonl")),
            Some(Format::JsonLines)
        );
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
        assert_eq!("jsonl".parse::<Format>(), Ok(Format::JsonLines));
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn json_lines_reject_broken_lines_by_number_and_import_the_rest() {
        let (dir, mut s) = store();
        let good = serde_json::to_string(&sample()).unwrap();
        let mut other = sample();
        other.source_id = "THA-2".into();
        let other = serde_json::to_string(&other).unwrap();
        let text = format!("{good}\n\n{{\"source_id\": 1\n{other}\n{good}\n{{}}\n");
        let p = write(dir.path(), "a.jsonl", &text);
        let fx = FxRates::sample();
        let r = import_file(&mut s, &p, &fx, &ImportOptions::default()).unwrap();
        assert_eq!((r.imported, r.rejected, r.duplicates), (2, 2, 1));
        assert_eq!(r.rejections[0].line, 3);
        assert!(
            r.rejections[0].reason.contains("(column"),
            "{}",
            r.rejections[0].reason
        );
        assert_eq!(r.rejections[1].line, 6);
        assert!(r.rejections[1].reason.starts_with("missing field"));
        assert_eq!(s.incident_count().unwrap(), 2);
    }

    /// Gives `data` up to `fail_at` bytes, then fails as a disk or network file system might.
    struct FailingReader {
        data: Vec<u8>,
        pos: usize,
        fail_at: usize,
    }

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos >= self.fail_at {
                return Err(io::Error::other("device went away"));
            }
            let n = buf.len().min(self.fail_at - self.pos).min(64);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_deep_into_a_file_imports_nothing_of_it() {
        let (_dir, mut s) = store();
        let mut csv = Vec::new();
        let cfg = crate::synth::SynthConfig::new("THA".parse().unwrap(), 2_000, 5);
        crate::synth::write_csv(&cfg, &mut csv).unwrap();
        let fx = FxRates::sample();
        // Well past the first batches the reader hands over, so that some rows are written.
        let fail_at = csv.len() * 3 / 4;
        let reader = FailingReader {
            data: csv,
            pos: 0,
            fail_at,
        };
        let opened = Opened {
            label: "flaky.csv".into(),
            name: "flaky.csv".into(),
            sha256: "00".into(),
            len: fail_at as u64,
            source: Box::new(CsvReader::new(io::BufReader::with_capacity(256, reader)).unwrap()),
            sheet: None,
            limits: RecordLimits::default(),
        };
        let e = import_opened(&mut s, opened, &fx, &ImportOptions::default(), Keep::Commit)
            .unwrap_err();
        assert!(matches!(e, ImportError::Io { .. }), "{e}");
        assert!(e.to_string().contains("device went away"), "{e}");
        assert_eq!(s.incident_count().unwrap(), 0);
        let runs: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM import_run", [], |r| r.get(0))
            .unwrap();
        assert_eq!(runs, 0);
        assert!(s.integrity_problems().unwrap().is_empty());
        // The store takes the same file whole afterwards, indexes and all.
        let mut csv = Vec::new();
        crate::synth::write_csv(&cfg, &mut csv).unwrap();
        let opened = Opened {
            label: "whole.csv".into(),
            name: "whole.csv".into(),
            sha256: "01".into(),
            len: csv.len() as u64,
            source: Box::new(CsvReader::new(io::BufReader::new(io::Cursor::new(csv))).unwrap()),
            sheet: None,
            limits: RecordLimits::default(),
        };
        let r =
            import_opened(&mut s, opened, &fx, &ImportOptions::default(), Keep::Commit).unwrap();
        assert_eq!(r.imported, 2_000);
        assert_eq!(s.incident_count().unwrap(), 2_000);
    }

    #[test]
    fn file_errors_import_nothing() {
        let (dir, mut s) = store();
        let fx = FxRates::sample();
        let o = ImportOptions::default();
        let p = write(dir.path(), "a.txt", "x");
        assert!(matches!(
            import_file(&mut s, &p, &fx, &o),
            Err(ImportError::UnknownFormat { .. })
        ));
        let p = write(dir.path(), "a.csv", "source_id,period\nx,2024-01\n");
        let e = import_file(&mut s, &p, &fx, &o).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("a.csv: missing required column(s): country"),
            "{e}"
        );
        let p = dir.path().join("b.csv");
        std::fs::write(&p, b"source_id,period,country\xff\n").unwrap();
        assert!(matches!(
            import_file(&mut s, &p, &fx, &o),
            Err(ImportError::Header {
                source: HeaderError::NotUtf8,
                ..
            })
        ));
        assert!(matches!(
            import_file(&mut s, &dir.path().join("none.csv"), &fx, &o),
            Err(ImportError::Io { .. })
        ));
        let runs: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM import_run", [], |r| r.get(0))
            .unwrap();
        assert_eq!(runs, 0);
    }

    #[test]
    fn rejections_are_capped_but_counted_exactly() {
        let (dir, mut s) = store();
        let mut text = String::from("source_id,period,country\n");
        for i in 0..(MAX_REPORTED_REJECTIONS + 7) {
            text.push_str(&format!("r{i},2024-13,THA\n"));
        }
        text.push_str("ok,2024-01,THA\n");
        let p = write(dir.path(), "a.csv", &text);
        let fx = FxRates::sample();
        let r = import_file(&mut s, &p, &fx, &ImportOptions::default()).unwrap();
        assert_eq!(r.rejected, MAX_REPORTED_REJECTIONS as u64 + 7);
        assert_eq!(r.rejections.len(), MAX_REPORTED_REJECTIONS);
        assert_eq!(r.rejections_omitted, 7);
        assert_eq!(r.imported, 1);
        let mut all = ImportReport::default();
        all.add(r.clone());
        all.add(r);
        assert_eq!(all.rejections.len(), MAX_REPORTED_REJECTIONS);
        assert_eq!(
            all.rejections_omitted,
            7 + MAX_REPORTED_REJECTIONS as u64 + 7
        );
        let json = serde_json::to_value(&all).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6);
        assert!(
            json["rejections"][0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("period:")
        );
        assert_eq!(json["rejections"][0]["line"], 2);
    }

    #[test]
    fn the_template_samples_hold_the_same_valid_records() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/samples");
        let csv = std::fs::read(format!("{dir}/template.csv")).unwrap();
        let mut rdr = CsvReader::new(&csv[..]).unwrap();
        let mut from_csv = Vec::new();
        while let Some((_, r)) = rdr.read_record().unwrap() {
            from_csv.push(r.unwrap());
        }
        let jsonl = std::fs::read_to_string(format!("{dir}/template.jsonl")).unwrap();
        let from_json: Vec<IncidentRecord> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(from_csv.len(), 4);
        assert_eq!(from_csv, from_json);
        assert!(from_csv.iter().all(|r| r.check().is_ok()));
        let (_dir, mut s) = store();
        let p = Path::new(dir).join("template.csv");
        let r = import_file(&mut s, &p, &FxRates::sample(), &ImportOptions::default()).unwrap();
        assert_eq!((r.imported, r.rejected), (4, 0));
    }

    #[test]
    fn several_files_combine_and_a_bad_header_anywhere_imports_nothing() {
        let (dir, mut s) = store();
        let fx = FxRates::sample();
        let a = write(
            dir.path(),
            "a.csv",
            "source_id,period,country\na1,2024-01,THA\na2,2024-13,THA\n",
        );
        let b = write(
            dir.path(),
            "b.jsonl",
            "{\"source_id\":\"b1\",\"period\":\"2024-02\",\"country\":\"THA\"}\n",
        );
        let bad = write(dir.path(), "c.csv", "source_id,period\n");
        let opts = ImportOptions {
            progress: true,
            ..ImportOptions::default()
        };
        let e = import_files(&mut s, &[&a, &b, &bad], &fx, &opts).unwrap_err();
        assert!(matches!(e, ImportError::Header { .. }), "{e}");
        assert_eq!(s.incident_count().unwrap(), 0);

        let r = import_files(&mut s, &[&a, &b, &a], &fx, &opts).unwrap();
        assert_eq!((r.imported, r.rejected, r.duplicates), (2, 2, 1));
        assert_eq!(r.files.len(), 3);
        assert_eq!(r.files[0].sha256, r.files[2].sha256);
        assert_eq!(r.files[0].sha256.len(), 64);
        assert_eq!(
            r.rejections
                .iter()
                .map(|x| (x.file.as_str(), x.line))
                .collect::<Vec<_>>(),
            [(a.to_str().unwrap(), 3), (a.to_str().unwrap(), 3)]
        );
        let strict = ImportOptions {
            strict: true,
            ..ImportOptions::default()
        };
        let c = write(
            dir.path(),
            "d.csv",
            "source_id,period,country\nd1,2024-01,THA\nd2,2024-01,ZZZ\n",
        );
        let r = import_files(&mut s, &[&c], &fx, &strict).unwrap();
        assert!(r.files[0].rolled_back);
        assert_eq!((r.imported, r.rejected), (0, 1));
        assert_eq!(s.incident_count().unwrap(), 2);
    }

    #[test]
    fn long_reasons_are_cut() {
        let mut r = FileReport::default();
        r.reject(1, &"x".repeat(10_000));
        r.reject(2, "short");
        assert_eq!(r.rejections[0].reason.chars().count(), MAX_REASON_CHARS + 1);
        assert_eq!(r.rejections[1].reason, "short");
    }
}
