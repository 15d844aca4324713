//! Spreadsheet exports (XLSX, ODS), read with calamine and handed to the same template layout
//! or [`Mapping`](super::Mapping) as CSV rows.
//!
//! A sheet is read when the file is opened: its non-empty cells, row by row (never the grid
//! between them: a stray cell at `XFD1048576` costs one cell, not seventeen billion). The header
//! is the first row with a value, or the mapping's `header_row`; rows above it are not read.
//! Each later row with a value becomes a row of text cells, numbered by its spreadsheet row:
//!
//! - text as written; numbers as decimals without an exponent (`12`, not `12.0`; `0.5`);
//!   booleans `true` / `false`;
//! - dates (a number with a date format, or an ODS date) as ISO `YYYY-MM-DD`, with
//!   `THH:MM:SS` when the cell has a time of day; durations as their number of days;
//! - empty cells and cells of only spaces as empty; a row with no value at all is blank
//!   (skipped, as a blank CSV line);
//! - a formula error (`#DIV/0!`, `#N/A`, `#REF!`…) in a column that is read rejects the row,
//!   naming the column and the cell; in a column nothing reads it is ignored;
//! - a value outside the header's columns rejects the row: no header names it, so it would
//!   otherwise be dropped unseen.
//!
//! Before calamine opens a workbook, its zip directory is read: a workbook whose parts would
//! unpack to more than [`MAX_UNPACKED_BYTES`] (a zip bomb, or a sheet no node should load into
//! memory) is refused. The zip reader refuses to unpack an entry past its declared size, so the
//! declared sizes bound what is read.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use calamine::{Data, DataRef, Ods, Reader, Xlsx};

use super::mapping::Bound;
use super::rows::{Fields, HeaderError, MAX_FIELDS, MAX_ROW_BYTES, short};
use super::template::{self, Layout};
use super::{Row, RowSource};

/// Most bytes a workbook's parts may unpack to, by the sizes its zip directory declares (2 GiB:
/// a 100 MB export of XML unpacks to about 1 GiB).
pub const MAX_UNPACKED_BYTES: u64 = 2 << 30;
/// Most entries in a workbook's zip.
pub const MAX_ZIP_ENTRIES: usize = 10_000;

/// The two spreadsheet formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Book {
    /// Office Open XML (`.xlsx`).
    Xlsx,
    /// OpenDocument (`.ods`).
    Ods,
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// A zip archive that is not an OpenDocument spreadsheet (XLSX is one).
    Zip,
    /// An OpenDocument spreadsheet (a zip whose first entry is its `mimetype`).
    Ods,
    /// A legacy binary Office file (`.xls`, OLE compound document).
    LegacyOffice,
    /// Anything else (text, we hope).
    Other,
}

impl Content {
    /// What the content is, for a message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Content::Zip => "a zip archive (an XLSX spreadsheet?)",
            Content::Ods => "an OpenDocument (ODS) spreadsheet",
            Content::LegacyOffice => "a legacy binary Office file (.xls: save it as .xlsx or .ods)",
            Content::Other => "not a zip archive (text? a CSV file named as a spreadsheet?)",
        }
    }
}

/// Sniffs the first bytes of `path`.
pub(crate) fn sniff(path: &Path) -> io::Result<Content> {
    const ODS_MIME: &[u8] = b"application/vnd.oasis.opendocument.spreadsheet";
    let mut head = Vec::with_capacity(128);
    File::open(path)?.take(128).read_to_end(&mut head)?;
    Ok(if head.starts_with(b"PK\x03\x04") {
        // A local file header is 30 bytes, then the name: ODS stores `mimetype` first,
        // uncompressed, so its content follows the name.
        if head.get(30..38) == Some(b"mimetype")
            && head.get(38..38 + ODS_MIME.len()) == Some(ODS_MIME)
        {
            Content::Ods
        } else {
            Content::Zip
        }
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Content::LegacyOffice
    } else {
        Content::Other
    })
}

/// Why a workbook cannot be read. Nothing of it is imported.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// The spreadsheet library could not read the workbook (not a zip, truncated, corrupt XML,
    /// password-protected…).
    #[error("cannot read the workbook: {0}")]
    Book(String),
    /// The workbook has no sheet of the name asked for.
    #[error("no sheet named {asked:?} (the workbook has: {})", .available.join(", "))]
    NoSuchSheet {
        /// The name asked for.
        asked: String,
        /// The sheets the workbook has.
        available: Vec<String>,
    },
    /// The workbook has no sheet at all.
    #[error("the workbook has no sheet")]
    NoSheets,
    /// The workbook would unpack to more than a node reads.
    #[error(
        "the workbook unpacks to {unpacked} bytes in {entries} parts, more than the {max} bytes (or {MAX_ZIP_ENTRIES} parts) a node reads: save it as CSV"
    )]
    TooLarge {
        /// Bytes its parts declare.
        unpacked: u64,
        /// Parts in the zip.
        entries: usize,
        /// The limit.
        max: u64,
    },
    /// The cells of a sheet do not come in row order.
    #[error("the sheet's cells are out of order (row {0}): the file is damaged")]
    OutOfOrder(u64),
    /// The header row holds a formula error.
    #[error("the header (row {row}) holds the formula error {error} in column {column}")]
    ErrorInHeader {
        /// Header row number.
        row: u64,
        /// Column letters.
        column: String,
        /// The error, e.g. `#REF!`.
        error: String,
    },
}

/// One cell's content.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    /// A formula error, as Excel shows it (`#DIV/0!`).
    Error(String),
}

/// One row with a value: its spreadsheet row number (from 1) and its cells by column (from 0).
#[derive(Debug)]
struct SheetRow {
    line: u64,
    cells: Vec<(u32, Cell)>,
}

/// A sheet read into rows: the header, then the rows after it.
#[derive(Debug)]
pub(crate) struct Sheet {
    /// The sheet's name.
    pub(crate) name: String,
    /// Header names, trimmed, one per column from `first_col`.
    pub(crate) header: Vec<String>,
    first_col: u32,
    header_line: u64,
    rows: std::vec::IntoIter<SheetRow>,
    total: u64,
}

/// Column letters of a 0-based column (`0` → `A`, `27` → `AB`).
pub(crate) fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let r = ((n - 1) % 26) as u8;
        out.push(char::from(b'A' + r));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// A number as text: an integer without `.0`, otherwise Rust's shortest decimal that reads back
/// as the same number (never an exponent).
fn number(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    f.to_string()
}

fn date_time(dt: &calamine::ExcelDateTime) -> String {
    if dt.is_duration() {
        return number(dt.as_f64());
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    if (h, mi, s, ms) == (0, 0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    }
}

fn cell_of_ref(v: DataRef<'_>) -> Option<Cell> {
    Some(Cell::Text(match v {
        DataRef::Empty => return None,
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number(f),
        DataRef::String(s) => s,
        DataRef::SharedString(s) => s.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => date_time(&dt),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s,
        DataRef::Error(e) => return Some(Cell::Error(e.to_string())),
    }))
}

fn cell_of(v: &Data) -> Option<Cell> {
    Some(Cell::Text(match v {
        Data::Empty => return None,
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number(*f),
        Data::String(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => date_time(dt),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => return Some(Cell::Error(e.to_string())),
    }))
}

/// Gathers cells (0-based row, column) arriving in row order into rows.
#[derive(Default)]
struct Gather {
    rows: Vec<SheetRow>,
}

impl Gather {
    fn push(&mut self, row: u32, col: u32, cell: Cell) -> Result<(), SheetError> {
        let line = u64::from(row) + 1;
        match self.rows.last_mut() {
            Some(last) if last.line == line => {
                if last.cells.last().is_some_and(|(c, _)| *c >= col) {
                    return Err(SheetError::OutOfOrder(line));
                }
                last.cells.push((col, cell));
            }
            Some(last) if last.line > line => return Err(SheetError::OutOfOrder(line)),
            _ => self.rows.push(SheetRow {
                line,
                cells: vec![(col, cell)],
            }),
        }
        Ok(())
    }
}

fn book_error(e: impl std::fmt::Display) -> SheetError {
    SheetError::Book(e.to_string())
}

/// Reads the workbook's zip directory: at most [`MAX_ZIP_ENTRIES`] parts that unpack to at most
/// `max` bytes together.
fn check_unpacked(path: &Path, max: u64) -> Result<(), SheetError> {
    let file = File::open(path).map_err(book_error)?;
    let mut z = zip::ZipArchive::new(BufReader::new(file)).map_err(book_error)?;
    let entries = z.len();
    let mut unpacked: u64 = 0;
    for i in 0..entries.min(MAX_ZIP_ENTRIES + 1) {
        unpacked = unpacked.saturating_add(z.by_index_raw(i).map_err(book_error)?.size());
    }
    if unpacked > max || entries > MAX_ZIP_ENTRIES {
        return Err(SheetError::TooLarge {
            unpacked,
            entries,
            max,
        });
    }
    Ok(())
}

fn choose(names: &[String], asked: Option<&str>) -> Result<String, SheetError> {
    match asked {
        Some(a) => names
            .iter()
            .find(|n| n.as_str() == a)
            .cloned()
            .ok_or_else(|| SheetError::NoSuchSheet {
                asked: short(a),
                available: names.iter().map(|n| short(n)).collect(),
            }),
        None => names.first().cloned().ok_or(SheetError::NoSheets),
    }
}

/// Reads sheet `asked` (the first by default) of the workbook at `path`, with its header at row
/// `header_row` (from 1; the first row with a value by default).
pub(crate) fn read(
    path: &Path,
    book: Book,
    asked: Option<&str>,
    header_row: Option<u32>,
) -> Result<Result<Sheet, HeaderError>, SheetError> {
    check_unpacked(path, MAX_UNPACKED_BYTES)?;
    let file = File::open(path).map_err(book_error)?;
    let reader = BufReader::new(file);
    let mut gather = Gather::default();
    let name = match book {
        Book::Xlsx => {
            let mut wb: Xlsx<_> = Xlsx::new(reader).map_err(book_error)?;
            let name = choose(&wb.sheet_names(), asked)?;
            let mut cells = wb.worksheet_cells_reader(&name).map_err(book_error)?;
            while let Some(c) = cells.next_cell().map_err(book_error)? {
                let (row, col) = c.get_position();
                if let Some(cell) = cell_of_ref(c.get_value().clone()) {
                    gather.push(row, col, cell)?;
                }
            }
            name
        }
        Book::Ods => {
            let mut wb: Ods<_> = Ods::new(reader).map_err(book_error)?;
            let name = choose(&wb.sheet_names(), asked)?;
            let range = wb.worksheet_range(&name).map_err(book_error)?;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            for (r, c, v) in range.used_cells() {
                if let Some(cell) = cell_of(v) {
                    let row = r0.saturating_add(u32::try_from(r).unwrap_or(u32::MAX));
                    let col = c0.saturating_add(u32::try_from(c).unwrap_or(u32::MAX));
                    gather.push(row, col, cell)?;
                }
            }
            name
        }
    };
    let mut rows = gather.rows;
    // Rows whose every cell is empty text are blank.
    rows.retain(|r| {
        r.cells
            .iter()
            .any(|(_, c)| !matches!(c, Cell::Text(t) if t.trim().is_empty()))
    });
    let at = match header_row {
        Some(h) => rows.iter().position(|r| r.line == u64::from(h)),
        None => (!rows.is_empty()).then_some(0),
    };
    let Some(at) = at else {
        return Ok(Err(HeaderError::Empty));
    };
    let mut rest = rows.split_off(at);
    let head = rest.remove(0);
    let header_line = head.line;
    let non_empty: Vec<&(u32, Cell)> = head
        .cells
        .iter()
        .filter(|(_, c)| !matches!(c, Cell::Text(t) if t.trim().is_empty()))
        .collect();
    let (Some(first), Some(last)) = (non_empty.first(), non_empty.last()) else {
        return Ok(Err(HeaderError::Empty));
    };
    let (first_col, last_col) = (first.0, last.0);
    if (last_col - first_col) as usize >= MAX_FIELDS {
        return Ok(Err(HeaderError::TooLong));
    }
    let mut header = vec![String::new(); (last_col - first_col + 1) as usize];
    for (col, cell) in &head.cells {
        if *col < first_col || *col > last_col {
            continue;
        }
        match cell {
            Cell::Text(t) => header[(col - first_col) as usize] = t.trim().to_string(),
            Cell::Error(e) => {
                return Err(SheetError::ErrorInHeader {
                    row: header_line,
                    column: column_letters(*col),
                    error: e.clone(),
                });
            }
        }
    }
    let total = rest.len() as u64;
    Ok(Ok(Sheet {
        name,
        header,
        first_col,
        header_line,
        rows: rest.into_iter(),
        total,
    }))
}

/// What reads a sheet's rows: the template's layout or a bound mapping.
#[derive(Debug)]
pub(crate) enum Target {
    /// The project's template.
    Template(Box<Layout>),
    /// A mapping, bound to the sheet's header.
    Mapped(Box<Bound>),
}

impl Target {
    fn reads(&self, i: usize) -> bool {
        match self {
            // Every column of a template file is a template column.
            Target::Template(_) => true,
            Target::Mapped(b) => b.reads(i),
        }
    }
}

/// The rows of a sheet as a [`RowSource`].
#[derive(Debug)]
pub(crate) struct SheetSource {
    sheet: Sheet,
    target: Target,
    /// The file's length, for progress: rows done × length / rows.
    len: u64,
    done: u64,
    text: String,
    ends: Vec<usize>,
}

impl SheetSource {
    pub(crate) fn new(sheet: Sheet, target: Target, len: u64) -> SheetSource {
        SheetSource {
            sheet,
            target,
            len,
            done: 0,
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// Lays the row's cells out as the header's columns; `Err` is the row's rejection.
    fn lay_out(&mut self, row: &SheetRow) -> Result<(), String> {
        let width = self.sheet.header.len();
        let first = self.sheet.first_col;
        let mut cells: Vec<&str> = vec![""; width];
        for (col, cell) in &row.cells {
            let at = col
                .checked_sub(first)
                .map(|c| c as usize)
                .filter(|c| *c < width);
            let place = format!("{}{}", column_letters(*col), row.line);
            match (at, cell) {
                (None, Cell::Text(t)) if t.trim().is_empty() => {}
                (None, _) => {
                    return Err(format!(
                        "cell {place} has a value outside the header's columns ({}{} to {}{})",
                        column_letters(first),
                        self.sheet.header_line,
                        column_letters(first + width as u32 - 1),
                        self.sheet.header_line,
                    ));
                }
                (Some(i), Cell::Error(e)) => {
                    if self.target.reads(i) {
                        return Err(format!(
                            "column {}: cell {place} holds the formula error {e}",
                            short(&self.sheet.header[i])
                        ));
                    }
                }
                (Some(i), Cell::Text(t)) => cells[i] = t,
            }
        }
        let bytes: usize = cells.iter().map(|c| c.len()).sum();
        if bytes > MAX_ROW_BYTES {
            return Err(template::too_long());
        }
        self.text.clear();
        self.ends.clear();
        for c in cells {
            self.text.push_str(c);
            self.ends.push(self.text.len());
        }
        Ok(())
    }
}

impl RowSource for SheetSource {
    fn next_row(&mut self) -> io::Result<Option<Row>> {
        let Some(row) = self.sheet.rows.next() else {
            return Ok(None);
        };
        self.done += 1;
        let line = row.line;
        if let Err(reason) = self.lay_out(&row) {
            return Ok(Some(Row::Rejected(line, reason)));
        }
        let fields = Fields::new(&self.text, &self.ends);
        Ok(Some(match &mut self.target {
            Target::Template(layout) => match layout.record(&fields) {
                Ok(r) => Row::Record(line, Box::new(r)),
                Err(e) => Row::Rejected(line, e),
            },
            Target::Mapped(bound) => match bound.apply(&fields) {
                Ok(super::mapping::Mapped::Record(r)) => Row::Record(line, r),
                Ok(super::mapping::Mapped::Skipped) => Row::Skipped,
                Err(e) => Row::Rejected(line, e),
            },
        }))
    }

    fn bytes_read(&self) -> u64 {
        match self.sheet.total {
            0 => self.len,
            n => self.len.saturating_mul(self.done) / n,
        }
    }

    fn rows_read(&self) -> u64 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_lettered_as_spreadsheets_do() {
        for (c, want) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
            (16_383, "XFD"),
        ] {
            assert_eq!(column_letters(c), want);
        }
    }

    #[test]
    fn numbers_read_as_decimals() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(150_000.0), "150000");
        assert_eq!(number(1e16), "10000000000000000");
    }

    #[test]
    fn a_workbook_that_unpacks_to_too_much_is_refused_by_its_directory() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.xlsx");
        let mut z = zip::ZipWriter::new(File::create(&p).unwrap());
        z.start_file(
            "xl/sharedStrings.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.write_all(&vec![b'a'; 1 << 20]).unwrap();
        z.finish().unwrap();
        // 1 MiB of `a` packs to a few kilobytes.
        assert!(std::fs::metadata(&p).unwrap().len() < 1 << 14);
        assert!(check_unpacked(&p, 1 << 20).is_ok());
        let e = check_unpacked(&p, (1 << 20) - 1).unwrap_err();
        assert!(
            matches!(e, SheetError::TooLarge { unpacked, .. } if unpacked == 1 << 20),
            "{e}"
        );
        assert!(e.to_string().contains("save it as CSV"), "{e}");
    }

    #[test]
    fn cells_out_of_order_are_a_damaged_file() {
        let mut g = Gather::default();
        g.push(0, 0, Cell::Text("a".into())).unwrap();
        g.push(0, 2, Cell::Text("b".into())).unwrap();
        assert!(matches!(
            g.push(0, 1, Cell::Text("c".into())),
            Err(SheetError::OutOfOrder(1))
        ));
        g.push(3, 0, Cell::Text("d".into())).unwrap();
        assert!(matches!(
            g.push(1, 0, Cell::Text("e".into())),
            Err(SheetError::OutOfOrder(2))
        ));
        assert_eq!(g.rows.len(), 2);
        assert_eq!(g.rows[1].line, 4);
    }
}
