//! Bounded, line-numbered readers: CSV records and JSON lines, streamed from a `BufRead`.
//!
//! Both readers hold at most one row in memory, and never more than [`MAX_ROW_BYTES`] of it: a
//! longer row is consumed to its end and reported as [`RowStatus::TooLong`], so one hostile row
//! costs a rejection, not the process's memory. Line numbers are physical lines (the first line of
//! the file is line 1); a CSV record whose quoted fields span several lines is numbered by the
//! line it starts on.
//!
//! A quoted CSV field may hold line breaks, but at most [`MAX_QUOTED_LINE_BREAKS`] per record,
//! and must be closed before the end of the file. Either failure is a [`QuoteError`] that ends
//! the read (reading cannot tell where the next record starts): one stray `"` can otherwise turn
//! the rest of a file into one field, losing every row after it (issue 12).

use std::io::{self, BufRead};

/// Most bytes of field data one row may hold.
pub const MAX_ROW_BYTES: usize = 1 << 20;
/// Most fields one CSV row may hold.
pub const MAX_FIELDS: usize = 4_096;

/// Most line breaks the quoted fields of one CSV record may hold (a note over a few lines is
/// normal; a field that runs on for more is a stray quote swallowing rows).
pub const MAX_QUOTED_LINE_BREAKS: u64 = 64;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// A quoted CSV field that cannot be delimited. Reading stops: nothing of the file is imported.
///
/// Carried inside an [`io::Error`] of kind [`io::ErrorKind::InvalidData`] by the readers, and
/// taken out again by the importer ([`QuoteError::from_io`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// A quote opens a field and the file ends before it closes.
    #[error("line {line}: a quoted field opens here and is never closed (a stray '\"'?)")]
    Unterminated {
        /// Physical line of the opening quote.
        line: u64,
    },
    /// A quoted field runs over more line breaks than a record may hold.
    #[error(
        "line {line}: a quoted field opens here and runs over more than {max} lines (a stray '\"'?)"
    )]
    TooManyLines {
        /// Physical line of the opening quote.
        line: u64,
        /// [`MAX_QUOTED_LINE_BREAKS`].
        max: u64,
    },
}

impl QuoteError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The quote error an [`io::Error`] from a reader here carries, if any.
    pub fn from_io(error: &io::Error) -> Option<QuoteError> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<QuoteError>())
            .cloned()
    }
}

/// A CSV header that cannot be used. Importing stops before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Reading failed.
    #[error("cannot read the header: {0}")]
    Io(#[from] io::Error),
    /// The file holds no header line.
    #[error("the file is empty: a header line is required")]
    Empty,
    /// The header is not UTF-8.
    #[error("the header is not valid UTF-8 (save the file as UTF-8)")]
    NotUtf8,
    /// The header is longer than a row may be.
    #[error("the header is longer than {MAX_ROW_BYTES} bytes or {MAX_FIELDS} columns")]
    TooLong,
    /// Columns the format requires are absent.
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// Columns the format does not know (a typo would otherwise drop data silently).
    #[error("unknown column(s): {} (expected some of: {})", .unknown.join(", "), .expected.join(", "))]
    UnknownColumns {
        /// The unknown names, shortened.
        unknown: Vec<String>,
        /// The names the format knows.
        expected: Vec<String>,
    },
    /// A column name appears twice.
    #[error("column {0:?} appears more than once")]
    DuplicateColumn(String),
}

/// Shortens a value for a message: at most 40 characters.
pub(crate) fn short(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// What became of one row read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowStatus {
    /// The row is complete and valid UTF-8.
    Ok,
    /// The row exceeded [`MAX_ROW_BYTES`] or [`MAX_FIELDS`]; it was consumed and dropped.
    TooLong,
    /// The row is not valid UTF-8.
    NotUtf8,
}

/// Skips a UTF-8 byte-order mark at the very start of the input.
fn skip_bom<R: BufRead>(src: &mut R) -> io::Result<u64> {
    let buf = src.fill_buf()?;
    if buf.starts_with(UTF8_BOM) {
        src.consume(UTF8_BOM.len());
        return Ok(UTF8_BOM.len() as u64);
    }
    Ok(0)
}

/// Physical line ends seen: `\n`, `\r\n` and a lone `\r` each end a line, as each ends a record
/// for `csv_core` (a file saved with classic Mac line ends is numbered line by line, not all on
/// line 1). `csv_core`'s own count sees `\n` only.
#[derive(Debug, Default, Clone, Copy)]
struct LineEnds {
    count: u64,
    after_cr: bool,
}

impl LineEnds {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' => {
                    self.count += 1;
                    self.after_cr = true;
                }
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => self.count += 1,
                _ => self.after_cr = false,
            }
        }
    }
}

/// Where the CSV scanner is within a record, following `csv_core`'s rules (quote `"`, doubled
/// to escape it; a quote not at the start of a field is an ordinary character).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// At the start of a field.
    #[default]
    FieldStart,
    /// In a field that did not start with a quote.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: it closes the field or escapes a second one.
    QuoteInQuoted,
}

/// Follows quoting byte by byte beside `csv_core`, which does not expose it: which line the open
/// quoted field started on and how many line breaks the current record's quoted fields hold.
#[derive(Debug, Clone, Copy)]
struct QuoteScan {
    delimiter: u8,
    state: QuoteState,
    /// Line of the quote that opened the current quoted field.
    open_line: u64,
    /// Line breaks inside quoted fields of the current record.
    breaks: u64,
}

impl QuoteScan {
    fn new(delimiter: u8) -> QuoteScan {
        QuoteScan {
            delimiter,
            state: QuoteState::FieldStart,
            open_line: 0,
            breaks: 0,
        }
    }

    /// A new record starts.
    fn reset(&mut self) {
        self.state = QuoteState::FieldStart;
        self.breaks = 0;
    }

    /// Feeds `bytes`, keeping `line_ends` too.
    fn feed(&mut self, line_ends: &mut LineEnds, bytes: &[u8]) -> Result<(), QuoteError> {
        for &b in bytes {
            let before = line_ends.count;
            line_ends.feed(std::slice::from_ref(&b));
            let line_break = b == b'\n' || b == b'\r';
            self.state = match (self.state, b) {
                (QuoteState::FieldStart, b'"') => {
                    self.open_line = line_ends.count + 1;
                    QuoteState::Quoted
                }
                (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
                (QuoteState::Quoted, _) => {
                    if line_ends.count > before {
                        self.breaks += 1;
                        if self.breaks > MAX_QUOTED_LINE_BREAKS {
                            return Err(QuoteError::TooManyLines {
                                line: self.open_line,
                                max: MAX_QUOTED_LINE_BREAKS,
                            });
                        }
                    }
                    QuoteState::Quoted
                }
                (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
                (_, d) if d == self.delimiter => QuoteState::FieldStart,
                (_, _) if line_break => QuoteState::FieldStart,
                (_, _) => QuoteState::Unquoted,
            };
        }
        Ok(())
    }

    /// The input ended: an error if a quoted field is still open.
    fn finish(&self) -> Result<(), QuoteError> {
        if self.state == QuoteState::Quoted {
            return Err(QuoteError::Unterminated {
                line: self.open_line,
            });
        }
        Ok(())
    }
}

/// CSV records over `csv_core`, with the row cap, physical line numbers and byte counts.
pub(crate) struct CsvRows<R> {
    src: R,
    core: csv_core::Reader,
    line_ends: LineEnds,
    quotes: QuoteScan,
    /// Records read since the header.
    records: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Length of the current row's text and number of its fields.
    len: usize,
    nfields: usize,
    /// Line the current row starts on.
    line: u64,
    /// Bytes consumed from the source so far.
    bytes: u64,
    started: bool,
}

impl<R> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("line", &self.line)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> CsvRows<R> {
    /// A reader of records separated by `delimiter`, quoted with `"`.
    pub(crate) fn new(src: R, delimiter: u8) -> Self {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        CsvRows {
            src,
            core,
            line_ends: LineEnds::default(),
            quotes: QuoteScan::new(delimiter),
            records: 0,
            out: vec![0; 4_096],
            ends: vec![0; 64],
            len: 0,
            nfields: 0,
            line: 0,
            bytes: 0,
            started: false,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Line the last row read starts on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Records read after the header (each is a row, whatever became of it).
    pub(crate) fn records_read(&self) -> u64 {
        self.records
    }

    /// Skips blank lines before a record, keeping the line count, so that a record's line is the
    /// line its first byte is on.
    fn skip_blank_lines(&mut self) -> io::Result<()> {
        loop {
            let buf = self.src.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            self.line_ends.feed(&buf[..n]);
            self.src.consume(n);
            self.bytes += n as u64;
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Reads the next record; `None` at the end of the input.
    pub(crate) fn read(&mut self) -> io::Result<Option<RowStatus>> {
        if !self.started {
            self.started = true;
            self.bytes += skip_bom(&mut self.src)?;
        }
        self.skip_blank_lines()?;
        self.line = self.line_ends.count + 1;
        self.quotes.reset();
        let (mut outlen, mut endlen) = (0usize, 0usize);
        let mut too_long = false;
        loop {
            let input = self.src.fill_buf()?;
            let at_end = input.is_empty();
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            self.quotes
                .feed(&mut self.line_ends, &input[..nin])
                .map_err(QuoteError::into_io)?;
            if at_end {
                self.quotes.finish().map_err(QuoteError::into_io)?;
            }
            self.src.consume(nin);
            self.bytes += nin as u64;
            outlen += nout;
            endlen += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if self.out.len() < MAX_ROW_BYTES {
                        let grown = (self.out.len() * 2).min(MAX_ROW_BYTES);
                        self.out.resize(grown, 0);
                    } else {
                        // Keep consuming the row, overwriting what was kept: it is dropped.
                        too_long = true;
                        outlen = 0;
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() < MAX_FIELDS {
                        let grown = (self.ends.len() * 2).min(MAX_FIELDS);
                        self.ends.resize(grown, 0);
                    } else {
                        too_long = true;
                        endlen = 0;
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    self.records += 1;
                    if too_long {
                        self.len = 0;
                        self.nfields = 0;
                        return Ok(Some(RowStatus::TooLong));
                    }
                    self.len = outlen;
                    self.nfields = endlen;
                    return Ok(Some(self.check_utf8()));
                }
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
    }

    fn check_utf8(&self) -> RowStatus {
        match std::str::from_utf8(&self.out[..self.len]) {
            Ok(s)
                if self.ends[..self.nfields]
                    .iter()
                    .all(|e| s.is_char_boundary(*e)) =>
            {
                RowStatus::Ok
            }
            _ => RowStatus::NotUtf8,
        }
    }

    /// Reads the header row: its column names, trimmed.
    pub(crate) fn read_header(&mut self) -> Result<Vec<String>, HeaderError> {
        match self.read()? {
            None => Err(HeaderError::Empty),
            Some(RowStatus::TooLong) => Err(HeaderError::TooLong),
            Some(RowStatus::NotUtf8) => Err(HeaderError::NotUtf8),
            Some(RowStatus::Ok) => {
                self.records = 0;
                Ok(self.fields().iter().map(|c| c.trim().to_string()).collect())
            }
        }
    }

    /// The fields of the last row read with [`RowStatus::Ok`].
    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            text: std::str::from_utf8(&self.out[..self.len]).unwrap_or(""),
            ends: &self.ends[..self.nfields],
        }
    }
}

/// The fields of one CSV row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    text: &'a str,
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    /// The fields of `text` ending at `ends` (byte offsets, in order): how a spreadsheet row is
    /// handed to the same readers as a CSV row.
    pub(crate) fn new(text: &'a str, ends: &'a [usize]) -> Fields<'a> {
        Fields { text, ends }
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i`, untrimmed; `""` when out of range.
    pub(crate) fn get(&self, i: usize) -> &'a str {
        let start = if i == 0 {
            0
        } else {
            match self.ends.get(i - 1) {
                Some(s) => *s,
                None => return "",
            }
        };
        match self.ends.get(i) {
            Some(end) => self.text.get(start..*end).unwrap_or(""),
            None => "",
        }
    }

    /// All fields in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Lines of a JSON Lines file, with the row cap, line numbers and byte counts.
pub(crate) struct JsonLines<R> {
    src: R,
    buf: Vec<u8>,
    line: u64,
    /// Lines read that are not blank (each is a row, whatever became of it).
    records: u64,
    bytes: u64,
    started: bool,
}

impl<R> std::fmt::Debug for JsonLines<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("line", &self.line)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> JsonLines<R> {
    pub(crate) fn new(src: R) -> Self {
        JsonLines {
            src,
            buf: Vec::new(),
            line: 0,
            records: 0,
            bytes: 0,
            started: false,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Number of the last line read.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Lines read that are not blank.
    pub(crate) fn records_read(&self) -> u64 {
        self.records
    }

    /// Reads the next line (without its terminator); `None` at the end of the input.
    pub(crate) fn read(&mut self) -> io::Result<Option<RowStatus>> {
        if !self.started {
            self.started = true;
            self.bytes += skip_bom(&mut self.src)?;
        }
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let input = self.src.fill_buf()?;
            if input.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (take, done) = match input.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (input.len(), false),
            };
            let content = &input[..if done { take - 1 } else { take }];
            if self.buf.len() + content.len() > MAX_ROW_BYTES {
                too_long = true;
                self.buf.clear();
            } else if !too_long {
                self.buf.extend_from_slice(content);
            }
            self.src.consume(take);
            self.bytes += take as u64;
            if done {
                break;
            }
        }
        self.line += 1;
        if too_long {
            self.buf.clear();
            self.records += 1;
            return Ok(Some(RowStatus::TooLong));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let status = match std::str::from_utf8(&self.buf) {
            Ok(text) if text.trim().is_empty() => return Ok(Some(RowStatus::Ok)),
            Ok(_) => RowStatus::Ok,
            Err(_) => RowStatus::NotUtf8,
        };
        self.records += 1;
        Ok(Some(status))
    }

    /// The text of the last line read with [`RowStatus::Ok`].
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.buf).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(input: &[u8]) -> Vec<(u64, RowStatus, Vec<String>)> {
        let mut r = CsvRows::new(io::BufReader::with_capacity(7, input), b',');
        let mut rows = Vec::new();
        while let Some(status) = r.read().unwrap() {
            let fields = if status == RowStatus::Ok {
                r.fields().iter().map(String::from).collect()
            } else {
                Vec::new()
            };
            rows.push((r.line(), status, fields));
        }
        rows
    }

    #[test]
    fn csv_lines_count_physical_lines_including_quoted_newlines_and_blank_lines() {
        let input = b"\xef\xbb\xbfa,b\r\n1,\"x\ny\"\n\n\n2,z\n\"3\n\n\",w";
        let rows = csv_rows(input);
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 6, 7]);
        assert_eq!(rows[0].2, ["a", "b"]);
        assert_eq!(rows[1].2, ["1", "x\ny"]);
        assert_eq!(rows[3].2, ["3\n\n", "w"]);
    }

    fn csv_error(input: &[u8]) -> Option<QuoteError> {
        let mut r = CsvRows::new(io::BufReader::with_capacity(7, input), b',');
        loop {
            match r.read() {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => return QuoteError::from_io(&e),
            }
        }
    }

    #[test]
    fn stray_quotes_end_the_read_with_the_line_they_open_on() {
        assert_eq!(
            csv_error(b"a,b\n1,2\n3,\"x\n4,5\n"),
            Some(QuoteError::Unterminated { line: 3 })
        );
        // At the very end, without a final line break, and after an escaped quote.
        assert_eq!(
            csv_error(b"a,b\n1,\"x\"\"y"),
            Some(QuoteError::Unterminated { line: 2 })
        );
        let mut long = b"a,b\n1,\"".to_vec();
        long.extend(b"x\r\n".repeat(MAX_QUOTED_LINE_BREAKS as usize + 1));
        long.extend(b"\"\n");
        assert_eq!(
            csv_error(&long),
            Some(QuoteError::TooManyLines {
                line: 2,
                max: MAX_QUOTED_LINE_BREAKS
            })
        );
    }

    #[test]
    fn quotes_that_close_or_are_ordinary_characters_are_fine() {
        let mut ok = b"a,b\n1,\"".to_vec();
        ok.extend(b"x\r\n".repeat(MAX_QUOTED_LINE_BREAKS as usize));
        ok.extend(b"\"\n");
        // A quote inside an unquoted field, an escaped quote, text after a closing quote.
        ok.extend(b"ab\"c,d\n\"e\"\"f\",g\n\"h\"i,j\n  \"k,l\n");
        assert_eq!(csv_error(&ok), None);
        let rows = csv_rows(&ok);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[2].2, ["ab\"c", "d"]);
        assert_eq!(rows[3].2, ["e\"f", "g"]);
        // Another delimiter: a quote after ';' opens a field.
        let mut r = CsvRows::new(&b"a;b\n1;\"x\n"[..], b';');
        r.read().unwrap();
        let e = r.read().unwrap_err();
        assert_eq!(
            QuoteError::from_io(&e),
            Some(QuoteError::Unterminated { line: 2 })
        );
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_too() {
        // Classic Mac line ends, then mixed ones; CR LF split across reads counts once.
        let rows = csv_rows(b"a,b\r1,2\r\r3,\"x\ry\"\r\n4,5\n\r\n6,7\r");
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 4, 6, 8]);
        assert_eq!(rows[2].2, ["3", "x\ry"]);
    }

    #[test]
    fn csv_rows_over_the_cap_are_dropped_and_reading_goes_on() {
        let mut input = b"a,b\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES + 10));
        input.extend(b",1\n2,\xff\n3,4\n");
        let rows = csv_rows(&input);
        let got: Vec<(u64, RowStatus)> = rows.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            got,
            [
                (1, RowStatus::Ok),
                (2, RowStatus::TooLong),
                (3, RowStatus::NotUtf8),
                (4, RowStatus::Ok)
            ]
        );
        assert_eq!(rows[3].2, ["3", "4"]);
    }

    #[test]
    fn csv_rows_with_too_many_fields_are_dropped() {
        let mut input = ",".repeat(MAX_FIELDS + 5).into_bytes();
        input.extend(b"\nok\n");
        let rows = csv_rows(&input);
        assert_eq!(rows[0].1, RowStatus::TooLong);
        assert_eq!((rows[1].0, &rows[1].2[..]), (2, &["ok".to_string()][..]));
    }

    #[test]
    fn a_multibyte_character_split_across_fields_is_not_utf8() {
        // "é" is C3 A9; put the two bytes in two fields.
        let rows = csv_rows(b"\xc3,\xa9\n");
        assert_eq!(rows[0].1, RowStatus::NotUtf8);
    }

    #[test]
    fn json_lines_are_numbered_capped_and_strip_cr() {
        let mut input = b"{\"a\":1}\r\n\n".to_vec();
        input.extend(std::iter::repeat_n(b' ', MAX_ROW_BYTES + 1));
        input.extend(b"\n\xff\nlast");
        let mut r = JsonLines::new(io::BufReader::with_capacity(5, &input[..]));
        let mut got = Vec::new();
        while let Some(s) = r.read().unwrap() {
            let text = if s == RowStatus::Ok {
                r.text().to_string()
            } else {
                String::new()
            };
            got.push((r.line(), s, text));
        }
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], (1, RowStatus::Ok, "{\"a\":1}".to_string()));
        assert_eq!(got[1], (2, RowStatus::Ok, String::new()));
        assert_eq!((got[2].0, got[2].1), (3, RowStatus::TooLong));
        assert_eq!((got[3].0, got[3].1), (4, RowStatus::NotUtf8));
        assert_eq!(got[4], (5, RowStatus::Ok, "last".to_string()));
        assert_eq!(r.bytes_read(), input.len() as u64);
    }
}
