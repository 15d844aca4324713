//! The project's own CSV template: one row per incident, multi-valued cells in a compact syntax.
//!
//! Columns (header required, any order; `source_id`, `period` and `country` must be present, the
//! others may be left out; an unknown column is an error so a typo never drops data silently):
//!
//! `source_id,period,date,agency,country,place_type,mode,dead,missing,route,route_modes,methods,fees,migrants,smugglers,note`
//!
//! | cell | syntax | example |
//! |---|---|---|
//! | `route` | countries in order, `>`-separated; legs are consecutive pairs | `MMR>THA>MYS` |
//! | `route_modes` | one mode per leg, `;`-separated; an empty entry is an unknown mode | `land;sea`, `;sea` |
//! | `methods` | method codes, `;`-separated | `guide_escort;concealment_vehicle` |
//! | `fees` | `amount currency scope [payment]`, `;`-separated | `15000 THB full_journey cash;300 USD documents` |
//! | `migrants` | `citizenship:sex:age_group[:U]:count`, `;`-separated (`U` = unaccompanied) | `MMR:M:18-24:12;MMR:F:14-17:U:3` |
//! | `smugglers` | `citizenship:sex:age_group:role:stage`, `;`-separated | `THA:M:35-49:transporter:arrested` |
//!
//! An empty cell means none or unknown (`dead`/`missing`: 0). Code cells are trimmed; the text
//! cells `source_id`, `agency` and `note` are taken as written. [`CsvWriter`] writes the template,
//! [`CsvReader`] reads it; `write` then `read` gives back the same records.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::str::FromStr;

use vrs_core::codes::{AgeGroup, CodeError, Country, Method, Mode, Sex};

use super::rows::{CsvRows, Fields, HeaderError, RowStatus, short};
use crate::record::{Fee, IncidentRecord, Leg, MigrantGroup, RecordKind, Smuggler};

/// The template's columns, in the order [`CsvWriter`] writes them.
pub const COLUMNS: [&str; 16] = [
    "source_id",
    "period",
    "date",
    "agency",
    "country",
    "place_type",
    "mode",
    "dead",
    "missing",
    "route",
    "route_modes",
    "methods",
    "fees",
    "migrants",
    "smugglers",
    "note",
];

/// Columns a template file must have.
pub const REQUIRED: [&str; 3] = ["source_id", "period", "country"];

/// Index of each column in [`COLUMNS`].
#[derive(Debug, Clone, Copy)]
enum Col {
    SourceId,
    Period,
    Date,
    Agency,
    Country,
    PlaceType,
    Mode,
    Dead,
    Missing,
    Route,
    RouteModes,
    Methods,
    Fees,
    Migrants,
    Smugglers,
    Note,
}

/// Parses a code with its list's error message.
pub(crate) fn parse_code<T: FromStr<Err = CodeError>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

/// A whole, non-negative number: `12`, or `12.0` as spreadsheets write it.
pub(crate) fn parse_whole(s: &str) -> Result<u32, String> {
    let bad = || format!("{:?} is not a whole number ≥ 0", short(s));
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b == b'0')
    {
        return Err(bad());
    }
    int.parse::<u32>()
        .map_err(|_| format!("{:?} is too large", short(s)))
}

/// A count cell: empty is 0.
fn parse_count(cell: &str) -> Result<u32, String> {
    let s = cell.trim();
    if s.is_empty() { Ok(0) } else { parse_whole(s) }
}

/// Splits a list cell on `sep`, trimming entries and dropping empty ones.
fn entries(cell: &str, sep: char) -> impl Iterator<Item = &str> {
    cell.split(sep).map(str::trim).filter(|e| !e.is_empty())
}

/// The `route` and `route_modes` cells as legs.
pub fn parse_route(route: &str, modes: &str) -> Result<Vec<Leg>, String> {
    let (route, modes) = (route.trim(), modes.trim());
    if route.is_empty() {
        if !modes.is_empty() {
            return Err("route_modes given without a route".into());
        }
        return Ok(Vec::new());
    }
    let countries = route
        .split('>')
        .map(|c| parse_code::<Country>(c.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("route: {e}"))?;
    if countries.len() < 2 {
        return Err("route: needs at least two countries, e.g. MMR>THA (UNK for unknown)".into());
    }
    let legs = countries.len() - 1;
    let modes: Vec<Option<Mode>> = if modes.is_empty() {
        vec![None; legs]
    } else {
        modes
            .split(';')
            .map(|m| match m.trim() {
                "" => Ok(None),
                m => parse_code::<Mode>(m).map(Some),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("route_modes: {e}"))?
    };
    if modes.len() != legs {
        return Err(format!(
            "route_modes: {} mode(s) for {legs} leg(s)",
            modes.len()
        ));
    }
    Ok(countries
        .windows(2)
        .zip(modes)
        .map(|(w, mode)| Leg {
            from: w[0],
            to: w[1],
            mode,
        })
        .collect())
}

/// The `methods` cell.
pub fn parse_methods(cell: &str) -> Result<BTreeSet<Method>, String> {
    entries(cell, ';')
        .map(parse_code::<Method>)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("methods: {e}"))
}

/// A fee amount: a finite number ≥ 0.
pub(crate) fn parse_amount(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if a.is_finite() && a >= 0.0 => Ok(a),
        _ => Err(format!("{:?} is not an amount ≥ 0", short(s))),
    }
}

/// The `fees` cell.
pub fn parse_fees(cell: &str) -> Result<Vec<Fee>, String> {
    entries(cell, ';')
        .enumerate()
        .map(|(i, e)| {
            let n = i + 1;
            let parts: Vec<&str> = e.split_whitespace().collect();
            if !(3..=4).contains(&parts.len()) {
                return Err(format!(
                    "fees: entry {n} must be \"amount currency scope [payment]\""
                ));
            }
            let err = |e: String| format!("fees: entry {n}: {e}");
            Ok(Fee {
                amount: parse_amount(parts[0]).map_err(err)?,
                currency: parse_code(parts[1]).map_err(err)?,
                scope: parse_code(parts[2]).map_err(err)?,
                payment: match parts.get(3) {
                    Some(p) => parse_code(p).map_err(err)?,
                    None => vrs_core::codes::PaymentMode::Unknown,
                },
            })
        })
        .collect()
}

/// The `migrants` cell.
pub fn parse_migrants(cell: &str) -> Result<Vec<MigrantGroup>, String> {
    entries(cell, ';')
        .enumerate()
        .map(|(i, e)| {
            let n = i + 1;
            let parts: Vec<&str> = e.split(':').map(str::trim).collect();
            let err = |e: String| format!("migrants: entry {n}: {e}");
            let (unaccompanied, count) = match parts.len() {
                4 => (false, parts[3]),
                5 if parts[3] == "U" => (true, parts[4]),
                5 => {
                    return Err(err(
                        "the 4th part must be U (unaccompanied) or absent".into()
                    ));
                }
                _ => {
                    return Err(err("must be \"citizenship:sex:age_group[:U]:count\"".into()));
                }
            };
            let (citizenship, sex, age_group) = profile(&parts).map_err(err)?;
            Ok(MigrantGroup {
                citizenship,
                sex,
                age_group,
                unaccompanied,
                count: parse_whole(count).map_err(err)?,
            })
        })
        .collect()
}

/// The `citizenship:sex:age_group` profile that opens a `migrants` or `smugglers` entry (the
/// caller has checked that `parts` has at least three parts).
fn profile(parts: &[&str]) -> Result<(Country, Sex, AgeGroup), String> {
    match parts {
        [citizenship, sex, age_group, ..] => Ok((
            parse_code(citizenship)?,
            parse_code(sex)?,
            parse_code(age_group)?,
        )),
        _ => Err("must start with \"citizenship:sex:age_group\"".into()),
    }
}

/// The `smugglers` cell.
pub fn parse_smugglers(cell: &str) -> Result<Vec<Smuggler>, String> {
    entries(cell, ';')
        .enumerate()
        .map(|(i, e)| {
            let n = i + 1;
            let parts: Vec<&str> = e.split(':').map(str::trim).collect();
            let err = |e: String| format!("smugglers: entry {n}: {e}");
            if parts.len() != 5 {
                return Err(err(
                    "must be \"citizenship:sex:age_group:role:stage\"".into()
                ));
            }
            let (citizenship, sex, age_group) = profile(&parts).map_err(err)?;
            Ok(Smuggler {
                citizenship,
                sex,
                age_group,
                role: parse_code(parts[3]).map_err(err)?,
                stage: parse_code(parts[4]).map_err(err)?,
            })
        })
        .collect()
}

/// An optional code cell: empty is none.
fn optional_code<T: FromStr<Err = CodeError>>(cell: &str, col: &str) -> Result<Option<T>, String> {
    match cell.trim() {
        "" => Ok(None),
        s => parse_code(s).map(Some).map_err(|e| format!("{col}: {e}")),
    }
}

/// An optional text cell, as written: empty is none.
fn optional_text(cell: &str) -> Option<String> {
    (!cell.is_empty()).then(|| cell.to_string())
}

/// Which column of the file holds each template column.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    index: [Option<usize>; COLUMNS.len()],
    width: usize,
}

impl Layout {
    pub(crate) fn from_header(header: &[String]) -> Result<Layout, HeaderError> {
        let mut index = [None; COLUMNS.len()];
        let mut unknown = Vec::new();
        for (i, name) in header.iter().enumerate() {
            match COLUMNS.iter().position(|c| c == name) {
                Some(c) if index[c].is_some() => {
                    return Err(HeaderError::DuplicateColumn(short(name)));
                }
                Some(c) => index[c] = Some(i),
                None => unknown.push(short(name)),
            }
        }
        if !unknown.is_empty() {
            return Err(HeaderError::UnknownColumns {
                unknown,
                expected: COLUMNS.iter().map(|c| c.to_string()).collect(),
            });
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|r| {
                COLUMNS
                    .iter()
                    .position(|c| c == *r)
                    .and_then(|c| index[c])
                    .is_none()
            })
            .map(|r| r.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::MissingColumns(missing));
        }
        Ok(Layout {
            index,
            width: header.len(),
        })
    }

    fn cell<'a>(&self, f: &Fields<'a>, col: Col) -> &'a str {
        self.index[col as usize].map_or("", |i| f.get(i))
    }

    pub(crate) fn record(&self, f: &Fields<'_>) -> Result<IncidentRecord, String> {
        if f.len() != self.width {
            return Err(format!(
                "row has {} fields, the header has {}",
                f.len(),
                self.width
            ));
        }
        let c = |col| self.cell(f, col);
        let period = c(Col::Period).trim();
        Ok(IncidentRecord {
            kind: RecordKind::Incident,
            source_id: c(Col::SourceId).to_string(),
            period: period.parse().map_err(|e| format!("period: {e}"))?,
            date: optional_text(c(Col::Date).trim()),
            agency: optional_text(c(Col::Agency)),
            country: parse_code(c(Col::Country).trim()).map_err(|e| format!("country: {e}"))?,
            place_type: optional_code(c(Col::PlaceType), "place_type")?,
            mode: optional_code(c(Col::Mode), "mode")?,
            dead: parse_count(c(Col::Dead)).map_err(|e| format!("dead: {e}"))?,
            missing: parse_count(c(Col::Missing)).map_err(|e| format!("missing: {e}"))?,
            route: parse_route(c(Col::Route), c(Col::RouteModes))?,
            corridor: None,
            methods: parse_methods(c(Col::Methods))?,
            fees: parse_fees(c(Col::Fees))?,
            migrants: parse_migrants(c(Col::Migrants))?,
            smugglers: parse_smugglers(c(Col::Smugglers))?,
            note: optional_text(c(Col::Note)),
        })
    }
}

/// Reads the template CSV: a header, then one incident per row.
pub struct CsvReader<R> {
    rows: CsvRows<R>,
    layout: Layout,
}

impl<R> std::fmt::Debug for CsvReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// One row read: its line number and the record, or why the row was rejected.
pub type ReadRow = (u64, Result<IncidentRecord, String>);

impl<R: BufRead> CsvReader<R> {
    /// Reads and checks the header.
    pub fn new(src: R) -> Result<CsvReader<R>, HeaderError> {
        let mut rows = CsvRows::new(src, b',');
        let header = rows.read_header()?;
        let layout = Layout::from_header(&header)?;
        Ok(CsvReader { rows, layout })
    }

    /// The next row; `None` at the end of the file. Only reading can fail as a whole; a bad row
    /// is an `Err` reason beside its line number (records are not yet [`IncidentRecord::check`]ed).
    pub fn read_record(&mut self) -> io::Result<Option<ReadRow>> {
        let Some(status) = self.rows.read()? else {
            return Ok(None);
        };
        let line = self.rows.line();
        let result = match status {
            RowStatus::Ok => self.layout.record(&self.rows.fields()),
            RowStatus::TooLong => Err(too_long()),
            RowStatus::NotUtf8 => Err(not_utf8()),
        };
        Ok(Some((line, result)))
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.rows.bytes_read()
    }

    /// Rows read after the header, whatever became of them.
    pub fn rows_read(&self) -> u64 {
        self.rows.records_read()
    }
}

/// Reason for a row over the size cap.
pub(crate) fn too_long() -> String {
    format!(
        "row longer than {} bytes or {} fields",
        super::rows::MAX_ROW_BYTES,
        super::rows::MAX_FIELDS
    )
}

/// Reason for a row that is not UTF-8.
pub(crate) fn not_utf8() -> String {
    "row is not valid UTF-8 (save the file as UTF-8)".to_string()
}

/// Writes incidents in the template CSV.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
    row: Vec<String>,
}

impl<W: Write> std::fmt::Debug for CsvWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvWriter").finish_non_exhaustive()
    }
}

fn csv_to_io(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

impl<W: Write> CsvWriter<W> {
    /// A writer that has written the header.
    pub fn new(w: W) -> io::Result<CsvWriter<W>> {
        let mut inner = csv::WriterBuilder::new().has_headers(false).from_writer(w);
        inner.write_record(COLUMNS).map_err(csv_to_io)?;
        Ok(CsvWriter {
            inner,
            row: vec![String::new(); COLUMNS.len()],
        })
    }

    /// Writes one incident. Fails (`InvalidInput`) for a route whose legs do not join up, which
    /// the `A>B>C` syntax cannot express (and [`IncidentRecord::check`] refuses anyway), and for
    /// what the template has no column for — a statistics row, a corridor — rather than drop it.
    pub fn write(&mut self, r: &IncidentRecord) -> io::Result<()> {
        use std::fmt::Write as _;
        if r.kind != RecordKind::Incident || r.corridor.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the template has no kind or corridor column: write statistics rows and corridors as JSON Lines",
            ));
        }
        for cell in &mut self.row {
            cell.clear();
        }
        let row = &mut self.row;
        row[Col::SourceId as usize].push_str(&r.source_id);
        let _ = write!(row[Col::Period as usize], "{}", r.period);
        row[Col::Date as usize].push_str(r.date.as_deref().unwrap_or(""));
        row[Col::Agency as usize].push_str(r.agency.as_deref().unwrap_or(""));
        row[Col::Country as usize].push_str(r.country.as_str());
        row[Col::PlaceType as usize].push_str(r.place_type.map_or("", |p| p.code()));
        row[Col::Mode as usize].push_str(r.mode.map_or("", |m| m.code()));
        let _ = write!(row[Col::Dead as usize], "{}", r.dead);
        let _ = write!(row[Col::Missing as usize], "{}", r.missing);
        if let Some(first) = r.route.first() {
            if r.route.windows(2).any(|w| w[0].to != w[1].from) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "route legs do not join up",
                ));
            }
            let route = &mut row[Col::Route as usize];
            route.push_str(first.from.as_str());
            for leg in &r.route {
                route.push('>');
                route.push_str(leg.to.as_str());
            }
            if r.route.iter().any(|l| l.mode.is_some()) {
                let modes: Vec<&str> = r
                    .route
                    .iter()
                    .map(|l| l.mode.map_or("", |m| m.code()))
                    .collect();
                row[Col::RouteModes as usize] = modes.join(";");
            }
        }
        let methods: Vec<&str> = r.methods.iter().map(|m| m.code()).collect();
        row[Col::Methods as usize] = methods.join(";");
        for (i, f) in r.fees.iter().enumerate() {
            let cell = &mut row[Col::Fees as usize];
            if i > 0 {
                cell.push(';');
            }
            let _ = write!(
                cell,
                "{} {} {} {}",
                f.amount, f.currency, f.scope, f.payment
            );
        }
        for (i, g) in r.migrants.iter().enumerate() {
            let cell = &mut row[Col::Migrants as usize];
            if i > 0 {
                cell.push(';');
            }
            let u = if g.unaccompanied { ":U" } else { "" };
            let _ = write!(
                cell,
                "{}:{}:{}{u}:{}",
                g.citizenship, g.sex, g.age_group, g.count
            );
        }
        for (i, s) in r.smugglers.iter().enumerate() {
            let cell = &mut row[Col::Smugglers as usize];
            if i > 0 {
                cell.push(';');
            }
            let _ = write!(
                cell,
                "{}:{}:{}:{}:{}",
                s.citizenship, s.sex, s.age_group, s.role, s.stage
            );
        }
        row[Col::Note as usize].push_str(r.note.as_deref().unwrap_or(""));
        self.inner.write_record(&self.row).map_err(csv_to_io)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;
    use vrs_core::codes::{AgeGroup, FeeScope, PaymentMode, Sex, SmugglerRole, SmugglerStage};

    #[test]
    fn the_writer_refuses_what_it_has_no_column_for() {
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        w.write(&sample()).unwrap();
        let stats = crate::record::tests::statistics_sample();
        let e = w.write(&stats).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let mut with_corridor = sample();
        with_corridor.corridor = Some(vrs_core::codes::Corridor::WesternBalkan);
        assert!(w.write(&with_corridor).is_err());
        // Only the first record was written.
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn whole_numbers_accept_spreadsheet_decimals_only_when_whole() {
        assert_eq!(parse_whole("12"), Ok(12));
        assert_eq!(parse_whole("12.0"), Ok(12));
        assert_eq!(parse_whole("0.00"), Ok(0));
        for bad in [
            "1.5",
            "-1",
            "+1",
            "1e3",
            "",
            ".0",
            "x",
            "1 2",
            "99999999999",
        ] {
            assert!(parse_whole(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn routes_make_legs_from_consecutive_pairs() {
        let legs = parse_route("MMR>THA>MYS", "land;sea").unwrap();
        assert_eq!(legs.len(), 2);
        assert_eq!((legs[0].from.as_str(), legs[0].to.as_str()), ("MMR", "THA"));
        assert_eq!((legs[1].from.as_str(), legs[1].to.as_str()), ("THA", "MYS"));
        assert_eq!(legs[1].mode, Some(Mode::Sea));
        let legs = parse_route(" MMR > THA > MYS ", ";sea").unwrap();
        assert_eq!((legs[0].mode, legs[1].mode), (None, Some(Mode::Sea)));
        assert!(
            parse_route("MMR>THA", "")
                .unwrap()
                .iter()
                .all(|l| l.mode.is_none())
        );
        assert_eq!(parse_route("", "").unwrap(), Vec::new());
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        let e = parse_route("MMR", "").unwrap_err();
        assert!(e.contains("at least two"), "{e}");
        let e = parse_route("MMR>XX>MYS", "").unwrap_err();
        assert!(e.contains("\"XX\" is not a valid country"), "{e}");
        let e = parse_route("MMR>THA>MYS", "land").unwrap_err();
        assert_eq!(e, "route_modes: 1 mode(s) for 2 leg(s)");
        let e = parse_route("MMR>THA", "boat").unwrap_err();
        assert!(e.starts_with("route_modes:") && e.contains("boat"), "{e}");
        let e = parse_route("", "land").unwrap_err();
        assert!(e.contains("without a route"), "{e}");
        assert!(parse_route("MMR>>THA", "").is_err());
    }

    #[test]
    fn methods_parse_as_a_set() {
        let m = parse_methods("guide_escort; concealment_vehicle;guide_escort;").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_methods("").unwrap().is_empty());
        let e = parse_methods("guide_escort;walking").unwrap_err();
        assert!(e.contains("\"walking\" is not a valid method"), "{e}");
    }

    #[test]
    fn fees_parse_with_optional_payment() {
        let f = parse_fees("15000 THB full_journey cash;300.5 USD documents").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].amount, 15000.0);
        assert_eq!(f[0].payment, PaymentMode::Cash);
        assert_eq!(f[1].scope, FeeScope::Documents);
        assert_eq!(f[1].payment, PaymentMode::Unknown);
        for (bad, want) in [
            ("15000 THB", "entry 1 must be"),
            ("15000 THB full_journey cash extra", "entry 1 must be"),
            ("1 USD leg;-5 USD leg", "entry 2: \"-5\" is not an amount"),
            ("NaN USD leg", "not an amount"),
            ("inf USD leg", "not an amount"),
            ("1,000 USD leg", "not an amount"),
            ("10 XYZ leg", "\"XYZ\" is not a valid currency"),
            ("10 USD trip", "\"trip\" is not a valid fee_scope"),
            ("10 USD leg gold", "\"gold\" is not a valid payment_mode"),
        ] {
            let e = parse_fees(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn migrant_groups_parse_with_the_unaccompanied_flag() {
        let g = parse_migrants("MMR:M:18-24:12;MMR:F:14-17:U:3").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].sex, g[0].age_group, g[0].count),
            (Sex::Male, AgeGroup::Age18To24, 12)
        );
        assert!(!g[0].unaccompanied);
        assert!(g[1].unaccompanied);
        assert_eq!(g[1].count, 3);
        assert_eq!(
            parse_migrants("AFG:U:U:1").unwrap()[0].age_group,
            AgeGroup::Unknown
        );
        for (bad, want) in [
            ("MMR:M:18-24", "must be"),
            ("MMR:M:18-24:Y:3", "4th part must be U"),
            ("MMR:M:18-24:x", "not a whole number"),
            ("MMR:Q:18-24:1", "\"Q\" is not a valid sex"),
            ("MMR:M:18-25:1", "\"18-25\" is not a valid age_group"),
        ] {
            let e = parse_migrants(bad).unwrap_err();
            assert!(e.starts_with("migrants: entry 1"), "{e}");
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn smugglers_parse_five_parts() {
        let s = parse_smugglers("THA:M:35-49:transporter:arrested").unwrap();
        assert_eq!(
            (s[0].role, s[0].stage),
            (SmugglerRole::Transporter, SmugglerStage::Arrested)
        );
        let e = parse_smugglers("THA:M:35-49:transporter").unwrap_err();
        assert!(e.contains("must be"), "{e}");
        let e = parse_smugglers("THA:M:35-49:boss:arrested").unwrap_err();
        assert!(e.contains("\"boss\" is not a valid smuggler_role"), "{e}");
    }

    fn read_all(text: &str) -> Result<Vec<ReadRow>, HeaderError> {
        let mut r = CsvReader::new(text.as_bytes())?;
        let mut out = Vec::new();
        while let Some(row) = r.read_record().unwrap() {
            out.push(row);
        }
        Ok(out)
    }

    #[test]
    fn writer_and_reader_round_trip_the_sample() {
        let mut r = sample();
        r.note = Some("line one\nline \"two\", with comma".into());
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        w.write(&r).unwrap();
        w.write(&sample()).unwrap();
        let bytes = w.finish().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(&COLUMNS.join(",")));
        let rows = read_all(&text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1.as_ref().unwrap(), &r);
        // The note spans two physical lines, so the next record starts on line 4.
        assert_eq!(rows[1].0, 4);
        assert_eq!(rows[1].1.as_ref().unwrap(), &sample());
    }

    #[test]
    fn writer_refuses_a_broken_route() {
        let mut r = sample();
        r.route[1].from = "LAO".parse().unwrap();
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        assert_eq!(w.write(&r).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn headers_are_checked() {
        assert!(matches!(read_all(""), Err(HeaderError::Empty)));
        let e = read_all("source_id,period\n").unwrap_err();
        assert_eq!(e.to_string(), "missing required column(s): country");
        let e = read_all("source_id,period,country,methds\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown column(s): methds (expected some of: source_id,"),
            "{e}"
        );
        let e = read_all("source_id,period,country,period\n").unwrap_err();
        assert!(matches!(e, HeaderError::DuplicateColumn(c) if c == "period"));
        assert!(matches!(
            read_all("source_id,\u{0}\u{ff}"),
            Err(HeaderError::UnknownColumns { .. })
        ));
    }

    #[test]
    fn a_minimal_file_reads_with_defaults() {
        let rows =
            read_all("country,source_id,period\nTHA,a-1,2024-01\nTHA,a-2\nTHA,a-3,2024-13\n")
                .unwrap();
        let r = rows[0].1.as_ref().unwrap();
        assert_eq!(
            (
                r.source_id.as_str(),
                r.dead,
                r.route.len(),
                r.note.is_none()
            ),
            ("a-1", 0, 0, true)
        );
        assert_eq!(
            rows[1].1.as_ref().unwrap_err(),
            "row has 2 fields, the header has 3"
        );
        assert!(
            rows[2]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("period: \"2024-13\"")
        );
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 4]);
    }
}
