//! Agencies' exports as they come: XLSX and ODS workbooks through mappings, pre-aggregated
//! statistics rows, the configurable group cap, corridors and non-ISO country codes.
//!
//! Every workbook is written here, at test time (rust_xlsxwriter for XLSX, a zip of XML for
//! ODS), and every total is checked against an independent reading of the same file with
//! calamine (or of the CSV with the `csv` crate), never against the importer's own figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{Data, Reader as _, Xlsx};
use proptest::prelude::*;
use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Formula, Workbook};
use vrs_core::query::{Dimension, Query, QueryLimits, RawQuery, Unit};
use vrs_node::disclosure::Bounds;
use vrs_node::disclosure::zcdp::l2_sensitivity_squared;
use vrs_node::fx::FxRates;
use vrs_node::import::{
    Format, ImportError, ImportOptions, ImportOutcome, Mapping, SheetError, import_file,
    import_files,
};
use vrs_node::store::Store;

// ---------------------------------------------------------------------------------------------
// Writing workbooks.

/// One cell of a fixture.
#[derive(Debug, Clone)]
enum C {
    S(String),
    N(f64),
    /// A date cell (a number with a date format).
    D(u16, u8, u8),
    /// A formula whose cached result is an error, e.g. `#DIV/0!`.
    E(&'static str),
    Blank,
}

fn s(v: &str) -> C {
    C::S(v.to_string())
}

/// Writes an XLSX workbook with the given sheets (name, rows from row 1).
fn xlsx(path: &Path, sheets: &[(&str, &[Vec<C>])]) {
    let mut wb = Workbook::new();
    let date = XFormat::new().set_num_format("yyyy-mm-dd");
    for (name, rows) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    C::S(v) => {
                        ws.write_string(r, c, v).unwrap();
                    }
                    C::N(v) => {
                        ws.write_number(r, c, *v).unwrap();
                    }
                    C::D(y, m, d) => {
                        let dt = ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
                        ws.write_datetime_with_format(r, c, &dt, &date).unwrap();
                    }
                    C::E(e) => {
                        ws.write_formula(r, c, Formula::new("=1/0").set_result(*e))
                            .unwrap();
                    }
                    C::Blank => {}
                }
            }
        }
    }
    wb.save(path).unwrap();
}

fn xml_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes an ODS workbook with one sheet.
fn ods(path: &Path, sheet: &str, rows: &[Vec<C>]) {
    let mut body = String::new();
    for row in rows {
        body.push_str("<table:table-row>");
        if row.is_empty() {
            body.push_str("<table:table-cell/>");
        }
        for cell in row {
            match cell {
                C::S(v) => body.push_str(&format!(
                    "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
                    xml_escape(v)
                )),
                C::N(v) => body.push_str(&format!(
                    "<table:table-cell office:value-type=\"float\" office:value=\"{v}\"><text:p>{v}</text:p></table:table-cell>"
                )),
                C::D(y, m, d) => body.push_str(&format!(
                    "<table:table-cell office:value-type=\"date\" office:date-value=\"{y:04}-{m:02}-{d:02}\"><text:p>{d:02}/{m:02}/{y:04}</text:p></table:table-cell>"
                )),
                C::E(_) | C::Blank => body.push_str("<table:table-cell/>"),
            }
        }
        body.push_str("</table:table-row>");
    }
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet><table:table table:name=\"{}\">{body}</table:table>\
         </office:spreadsheet></office:body></office:document-content>",
        xml_escape(sheet)
    );
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\">\
        <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
        <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>\
        </manifest:manifest>";
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("mimetype", stored).unwrap();
    z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    let deflated = zip::write::SimpleFileOptions::default();
    z.start_file("META-INF/manifest.xml", deflated).unwrap();
    z.write_all(manifest.as_bytes()).unwrap();
    z.start_file("content.xml", deflated).unwrap();
    z.write_all(content.as_bytes()).unwrap();
    z.finish().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Stores and queries.

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    files: PathBuf,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("node"), "ESP".parse().unwrap()).unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        Node {
            _dir: dir,
            store,
            files,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.files.join(name)
    }

    fn import(&mut self, path: &Path, opts: &ImportOptions) -> vrs_node::import::FileReport {
        import_file(&mut self.store, path, &FxRates::sample(), opts).unwrap()
    }

    fn import_err(&mut self, path: &Path, opts: &ImportOptions) -> ImportError {
        import_file(&mut self.store, path, &FxRates::sample(), opts).unwrap_err()
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Exact cells of `unit` grouped by `by` (no disclosure control: the store's own view).
    fn cells(&self, unit: &str, by: &[&str]) -> Vec<(Vec<String>, i64)> {
        let raw = RawQuery {
            unit: unit.into(),
            group_by: by.iter().map(|d| d.to_string()).collect(),
            ..RawQuery::default()
        };
        let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
        let mut cells: Vec<(Vec<String>, i64)> = vrs_node::query::aggregate(&self.store, &q)
            .unwrap()
            .cells
            .into_iter()
            .map(|c| (c.key, c.value))
            .collect();
        cells.sort();
        cells
    }

    fn total(&self, unit: &str) -> i64 {
        self.cells(unit, &[]).iter().map(|(_, v)| v).sum()
    }

    /// Rows in the store's tables (what an import may change).
    fn tables(&self) -> Vec<i64> {
        [
            "import_run",
            "incident",
            "route_leg",
            "migrant_group",
            "fee",
        ]
        .iter()
        .map(|t| self.scalar(&format!("SELECT COUNT(*) FROM {t}")))
        .collect()
    }
}

fn mapping(toml: &str) -> ImportOptions {
    ImportOptions {
        mapping: Some(Mapping::from_toml(toml).unwrap()),
        ..ImportOptions::default()
    }
}

/// Reads a sheet independently: every row after the header as calamine gives it.
fn read_back(path: &Path, sheet: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let range = wb.worksheet_range(sheet).unwrap();
    range.rows().skip(1).map(|r| r.to_vec()).collect()
}

fn number_of(d: &Data) -> Option<f64> {
    match d {
        Data::Float(f) => Some(*f),
        Data::Int(i) => Some(*i as f64),
        Data::String(s) if !s.trim().is_empty() => s.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// An agency's XLSX export through a mapping.

/// A detections export as a border agency might keep it: case numbers as numbers, dates as
/// date cells, nationalities with ICAO and free-text codes, route names, counts above the old
/// 100,000 cap, an empty row, empty cells, and a second sheet that must not be read.
const DETECTIONS: &str = r#"
    max_group_count = 1000000
    [source_id]
    column = "Case No"
    prefix = "ESP-"
    [fields]
    date = { column = "Date", formats = ["%d/%m/%Y"] }
    country = { value = "ESP" }
    mode = { column = "Means", map = { "boat" = "sea", "truck" = "land" }, unmapped = "reject" }
    route = { template = "{From}>ESP", split = ">" }
    corridor = { column = "Route" }
    [[migrants]]
    citizenship = { column = "Nationality" }
    count = { column = "Persons" }
"#;

fn detections_rows() -> Vec<Vec<C>> {
    let header = [
        "Case No",
        "Date",
        "Nationality",
        "Persons",
        "From",
        "Route",
        "Means",
    ]
    .map(s)
    .to_vec();
    vec![
        header,
        vec![
            C::N(1.0),
            C::D(2024, 3, 14),
            s("MAR"),
            C::N(12.0),
            s("MAR"),
            s("Western Mediterranean Route"),
            s("boat"),
        ],
        vec![
            C::N(2.0),
            C::D(2024, 3, 15),
            s("XXB"),
            C::N(150_000.0),
            s("TUR"),
            s("Eastern Mediterranean"),
            s("boat"),
        ],
        vec![],
        vec![
            C::N(3.0),
            s("16/03/2024"),
            s("Stateless"),
            C::N(250_000.0),
            s("LBY"),
            s("central_mediterranean"),
            C::Blank,
        ],
        vec![
            C::N(4.0),
            C::D(2024, 4, 1),
            s("syr"),
            C::N(7.0),
            s("SRB"),
            s("Western Balkans"),
            s("truck"),
        ],
        vec![
            C::N(5.0),
            C::D(2024, 4, 2),
            s("AFG"),
            C::N(2_000_000.0),
            s("SRB"),
            s("Western Balkan"),
            s("truck"),
        ],
        vec![
            C::N(6.0),
            C::D(2024, 4, 3),
            s("Narnia"),
            C::N(3.0),
            s("SRB"),
            s("Western Balkan"),
            s("truck"),
        ],
        vec![
            C::N(7.0),
            C::D(2024, 4, 4),
            s("IRQ"),
            C::N(5.0),
            s("BLR"),
            s("Eastern Borders"),
            s("by camel"),
        ],
    ]
}

#[test]
fn an_xlsx_export_imports_through_a_mapping_with_totals_from_an_independent_reading() {
    let mut n = Node::new();
    let p = n.path("detections.xlsx");
    let rows = detections_rows();
    let lookup = vec![
        vec![s("Case No"), s("Persons")],
        vec![C::N(99.0), C::N(1.0)],
    ];
    xlsx(&p, &[("Detections", &rows), ("Lookup", &lookup)]);

    let r = n.import(&p, &mapping(DETECTIONS));
    assert_eq!(r.sheet.as_deref(), Some("Detections"));
    // Spreadsheet row numbers: the header is row 1, the empty row 4 is blank.
    let rejected: Vec<(u64, &str)> = r
        .rejections
        .iter()
        .map(|x| (x.line, x.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert_eq!(rejected[0].0, 7);
    assert!(
        rejected[0]
            .1
            .contains("2000000 is above the cap of 1000000"),
        "{}",
        rejected[0].1
    );
    assert_eq!(
        rejected[1],
        (
            8,
            "migrants[0].citizenship: \"Narnia\" is not a valid country code"
        )
    );
    assert_eq!(
        rejected[2],
        (9, "mode: \"by camel\" is not in the mapping's value map")
    );
    assert_eq!(
        (r.imported, r.rejected, r.duplicates, r.skipped),
        (4, 3, 0, 0)
    );
    assert_eq!(r.rows_read, 7);

    // Independently: the rows calamine reads, minus the three rejected (by case number).
    let independent: f64 = read_back(&p, "Detections")
        .iter()
        .filter(|row| !row.iter().all(|c| matches!(c, Data::Empty)))
        .filter(|row| !matches!(number_of(&row[0]), Some(5.0 | 6.0 | 7.0)))
        .filter_map(|row| number_of(&row[3]))
        .sum();
    assert_eq!(independent, 12.0 + 150_000.0 + 250_000.0 + 7.0);
    assert_eq!(n.total("migrants"), independent as i64);
    assert_eq!(n.total("incidents"), 4);
    assert!(n.scalar("SELECT MAX(count) FROM migrant_group") > 100_000);

    // Non-ISO codes by their documented defaults; corridors from their names.
    assert_eq!(
        n.cells("migrants", &["citizenship"]),
        [
            (vec!["MAR".to_string()], 12),
            (vec!["SYR".to_string()], 7),
            (vec!["UNK".to_string()], 150_000),
            (vec!["XXA".to_string()], 250_000),
        ]
    );
    let corridors = n.cells("migrants", &["corridor"]);
    assert_eq!(
        corridors,
        [
            (vec!["central_mediterranean".to_string()], 250_000),
            (vec!["eastern_mediterranean".to_string()], 150_000),
            (vec!["western_balkan".to_string()], 7),
            (vec!["western_mediterranean".to_string()], 12),
        ]
    );
    // Date cells and a text date both become the stored day.
    assert_eq!(
        n.scalar("SELECT COUNT(*) FROM incident WHERE date IN ('2024-03-14', '2024-03-15', '2024-03-16', '2024-04-01')"),
        4
    );
    // The mode: an empty cell mapped to none, the others mapped.
    assert_eq!(
        n.cells("incidents", &["mode"]),
        [
            (vec!["land".to_string()], 1),
            (vec!["sea".to_string()], 2),
            (vec!["unknown".to_string()], 1),
        ]
    );

    // A re-import changes nothing; the sheet chosen by name reads the other sheet's layout.
    let again = n.import(&p, &mapping(DETECTIONS));
    assert_eq!((again.imported, again.duplicates), (0, 4));
    let mut other = mapping(DETECTIONS);
    other.sheet = Some("Lookup".into());
    let e = n.import_err(&p, &other);
    assert!(e.to_string().contains("not in the file's header"), "{e}");
}

#[test]
fn rows_over_the_default_group_cap_are_rejected_loudly_with_their_rows() {
    let mut n = Node::new();
    let p = n.path("detections.xlsx");
    xlsx(&p, &[("Detections", &detections_rows())]);
    let default_cap = DETECTIONS.replace("max_group_count = 1000000", "");
    let r = n.import(&p, &mapping(&default_cap));
    let over: Vec<(u64, &str)> = r
        .rejections
        .iter()
        .filter(|x| {
            x.reason
                .contains("is above the cap of 100000 people per group")
        })
        .map(|x| (x.line, x.reason.as_str()))
        .collect();
    // Rows 3, 5 and 7 hold 150,000, 250,000 and 2,000,000 people.
    assert_eq!(
        over.iter().map(|o| o.0).collect::<Vec<_>>(),
        [3, 5, 7],
        "{over:?}"
    );
    assert!(over[0].1.contains("max_group_count"), "{}", over[0].1);
    assert_eq!((r.imported, r.rejected), (2, 5));
    assert_eq!(n.total("migrants"), 12 + 7);
    // Through import_files: the over-cap rows are rejections like any other, in the summary's
    // list and count, and the outcome (the exit status) is the one for rejected rows.
    let mut n = Node::new();
    let report = import_files(
        &mut n.store,
        &[&p],
        &FxRates::sample(),
        &mapping(&default_cap),
    )
    .unwrap();
    assert_eq!(report.rejected, 5);
    assert_eq!(report.rejections.len(), 5);
    assert_eq!(report.outcome(), ImportOutcome::SomeRejected);
    // A file of nothing but over-cap rows imports nothing, and says so with a non-zero status.
    let big = n.path("big.xlsx");
    let header = [
        "Case No",
        "Date",
        "Nationality",
        "Persons",
        "From",
        "Route",
        "Means",
    ]
    .map(s)
    .to_vec();
    let row = vec![
        C::N(1.0),
        C::D(2024, 3, 14),
        s("MAR"),
        C::N(100_001.0),
        s("MAR"),
        s("other"),
        C::Blank,
    ];
    xlsx(&big, &[("Detections", &[header, row])]);
    let report = import_files(
        &mut n.store,
        &[&big],
        &FxRates::sample(),
        &mapping(&default_cap),
    )
    .unwrap();
    assert_eq!(report.outcome(), ImportOutcome::NothingImported);
    assert_eq!(
        report.outcome().status(true),
        vrs_core::cli::Status::ImportNothing
    );
    // A cap above the hard ceiling is refused when the mapping loads.
    let e = Mapping::from_toml(&DETECTIONS.replace("1000000", "10000001")).unwrap_err();
    assert!(e.to_string().contains("max_group_count"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Statistics rows.

const STATISTICS: &str = r#"
    kind = "statistics"
    max_group_count = 5000000
    [source_id]
    template = "{Month}/{Nationality}/{Route}/{Mode}"
    prefix = "FX-"
    [fields]
    period = { column = "Month", formats = ["%Y-%m"] }
    country = { value = "ESP" }
    corridor = { column = "Route" }
    mode = { column = "Mode" }
    route = { template = "{Nationality}>ESP", split = ">" }
    [[migrants]]
    citizenship = { column = "Nationality" }
    count = { column = "Detections" }
"#;

#[test]
fn statistics_rows_count_people_and_never_incidents_or_fees() {
    let mut n = Node::new();
    // Incidents first, from the template: 2 incidents, 5 + 3 migrants, one fee.
    let incidents = n.path("cases.csv");
    std::fs::write(
        &incidents,
        "source_id,period,country,mode,route,fees,migrants\n\
         C1,2024-01,ESP,sea,MAR>ESP,1000 USD full_journey,MAR:M:18-24:5\n\
         C2,2024-02,ESP,land,DZA>ESP,,DZA:F:25-34:3\n",
    )
    .unwrap();
    assert_eq!(n.import(&incidents, &ImportOptions::default()).imported, 2);

    let p = n.path("monthly.xlsx");
    let header = ["Month", "Nationality", "Route", "Mode", "Detections"]
        .map(s)
        .to_vec();
    let rows = vec![
        header,
        vec![
            s("2024-01"),
            s("SYR"),
            s("Eastern Mediterranean"),
            s("sea"),
            C::N(150_000.0),
        ],
        vec![
            s("2024-01"),
            s("AFG"),
            s("Western Balkan"),
            s("land"),
            C::N(0.0),
        ],
        vec![
            s("2024-02"),
            s("MAR"),
            s("Western Mediterranean"),
            s("sea"),
            C::N(1_200.0),
        ],
        vec![
            C::D(2024, 2, 1),
            s("MLI"),
            s("Western African Atlantic"),
            s("sea"),
            C::N(4_100_000.0),
        ],
        vec![
            s("2024-03"),
            s("XXX"),
            s("Central Mediterranean"),
            s("sea"),
            C::Blank,
        ],
        vec![
            s("2024-03"),
            s("SEN"),
            s("Central Mediterranean"),
            s("sea"),
            C::E("#N/A"),
        ],
    ];
    xlsx(&p, &[("Monthly", &rows)]);
    let r = n.import(&p, &mapping(STATISTICS));
    // The zero cell is skipped; an empty count and an error cell are rejected by row.
    assert_eq!(
        (r.imported, r.skipped, r.rejected),
        (3, 1, 2),
        "{:?}",
        r.rejections
    );
    assert_eq!(r.rejections[0].line, 6);
    assert!(
        r.rejections[0].reason.contains("needs its count"),
        "{}",
        r.rejections[0].reason
    );
    assert_eq!(r.rejections[1].line, 7);
    assert!(
        r.rejections[1]
            .reason
            .contains("cell E7 holds the formula error #N/A"),
        "{}",
        r.rejections[1].reason
    );

    // Independent reading: every positive count calamine sees in the Detections column.
    let independent: f64 = read_back(&p, "Monthly")
        .iter()
        .filter_map(|row| number_of(&row[4]))
        .filter(|v| *v > 0.0)
        .sum();
    assert_eq!(independent, 150_000.0 + 1_200.0 + 4_100_000.0);
    assert_eq!(n.total("migrants"), 5 + 3 + independent as i64);
    // Incident and fee units skip statistics rows, also by a profile dimension.
    assert_eq!(n.total("incidents"), 2);
    assert_eq!(n.total("fees"), 1);
    assert_eq!(n.cells("incidents", &["citizenship"]).len(), 2);
    assert_eq!(n.total("deaths"), 0);
    assert_eq!(n.total("smugglers"), 0);
    // Person units see them by every dimension a statistics row has.
    let by_month = n.cells("migrants", &["month"]);
    assert_eq!(
        by_month,
        [
            (vec!["2024-01".to_string()], 5 + 150_000),
            (vec!["2024-02".to_string()], 3 + 1_200 + 4_100_000),
        ]
    );
    assert_eq!(
        n.cells("migrants", &["corridor"])
            .iter()
            .find(|(k, _)| k[0] == "unknown")
            .map(|c| c.1),
        Some(5 + 3)
    );
    assert_eq!(n.scalar("SELECT COUNT(*) FROM incident WHERE kind = 1"), 3);
    // A person in a statistics row counts once in a person-unit cell, as a group member does.
    assert_eq!(
        l2_sensitivity_squared(
            Unit::Migrants,
            &[Dimension::Corridor, Dimension::Month],
            false,
            &Bounds::default()
        ),
        1
    );
}

#[test]
fn a_statistics_mapping_refuses_what_only_incidents_have() {
    for (extra, want) in [
        (
            "[[fees]]\namount = { value = 1 }\ncurrency = { value = \"USD\" }\nscope = { value = \"leg\" }\n",
            "fees",
        ),
        (
            "[[smugglers]]\nrole = { value = \"guide\" }\nstage = { value = \"arrested\" }\n",
            "smugglers",
        ),
        (
            "[[migrants]]\ncount = { value = 1 }\n",
            "exactly one [[migrants]]",
        ),
    ] {
        let e = Mapping::from_toml(&format!("{STATISTICS}\n{extra}")).unwrap_err();
        assert!(e.to_string().contains(want), "{extra}: {e}");
    }
    let split = STATISTICS.replace(
        "citizenship = { column = \"Nationality\" }",
        "citizenship = { column = \"Nationality\", split = \",\" }\nseveral = \"repeat\"",
    );
    assert!(
        Mapping::from_toml(&split)
            .unwrap_err()
            .to_string()
            .contains("split")
    );
    let dead = STATISTICS.replace("[[migrants]]", "dead = { value = 1 }\n[[migrants]]");
    assert!(
        Mapping::from_toml(&dead)
            .unwrap_err()
            .to_string()
            .contains("fields.dead")
    );
}

// ---------------------------------------------------------------------------------------------
// ODS.

#[test]
fn an_ods_export_imports_like_the_same_xlsx() {
    let rows = detections_rows();
    let mut a = Node::new();
    let x = a.path("d.xlsx");
    xlsx(&x, &[("Detections", &rows)]);
    let ra = a.import(&x, &mapping(DETECTIONS));
    let mut b = Node::new();
    let o = b.path("d.ods");
    ods(&o, "Detections", &rows);
    let rb = b.import(&o, &mapping(DETECTIONS));
    assert_eq!(rb.sheet.as_deref(), Some("Detections"));
    let lines = |r: &vrs_node::import::FileReport| -> Vec<(u64, String)> {
        r.rejections
            .iter()
            .map(|x| (x.line, x.reason.clone()))
            .collect()
    };
    assert_eq!(lines(&ra), lines(&rb));
    assert_eq!((ra.imported, ra.rejected), (rb.imported, rb.rejected));
    for unit in ["migrants", "incidents"] {
        for by in [&["citizenship"][..], &["corridor", "month"], &["mode"]] {
            assert_eq!(a.cells(unit, by), b.cells(unit, by), "{unit} {by:?}");
        }
    }
    let ids = |n: &Node| -> Vec<(String, Option<String>)> {
        n.store
            .conn()
            .prepare("SELECT source_id, date FROM incident ORDER BY source_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(
        ids(&a)[0],
        ("ESP-1".to_string(), Some("2024-03-14".to_string()))
    );
}

// ---------------------------------------------------------------------------------------------
// Broken workbooks and files that are not what they say.

#[test]
fn broken_or_mislabelled_files_are_file_errors_and_import_nothing() {
    let mut n = Node::new();
    let good = n.path("good.xlsx");
    xlsx(&good, &[("Detections", &detections_rows())]);
    let bytes = std::fs::read(&good).unwrap();
    let m = mapping(DETECTIONS);
    let before = n.tables();

    // Text named .xlsx.
    let text = n.path("text.xlsx");
    std::fs::write(&text, "Case No,Date\n1,2024-01-01\n").unwrap();
    let e = n.import_err(&text, &m);
    assert!(
        matches!(
            e,
            ImportError::WrongContent {
                format: Format::Xlsx,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("not a zip archive"), "{e}");
    // A truncated workbook.
    let cut = n.path("cut.xlsx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = n.import_err(&cut, &m);
    assert!(
        matches!(
            e,
            ImportError::Sheet {
                source: SheetError::Book(_),
                ..
            }
        ),
        "{e}"
    );
    // Not a zip at all, with a spreadsheet's name and a zip's first bytes.
    let junk = n.path("junk.xlsx");
    std::fs::write(&junk, b"PK\x03\x04 this is not really a zip archive at all").unwrap();
    assert!(matches!(n.import_err(&junk, &m), ImportError::Sheet { .. }));
    // A workbook named .csv: before, "the header is not valid UTF-8"; now it says what it is.
    let as_csv = n.path("export.csv");
    std::fs::write(&as_csv, &bytes).unwrap();
    for opts in [&m, &ImportOptions::default()] {
        let e = n.import_err(&as_csv, opts);
        assert!(
            e.to_string().contains("its content is a zip archive"),
            "{e}"
        );
    }
    assert_eq!(n.tables(), before, "a failed file changed the store");
    // ... and read as XLSX on request, whatever its name.
    let mut as_xlsx = mapping(DETECTIONS);
    as_xlsx.format = Some(Format::Xlsx);
    assert_eq!(n.import(&as_csv, &as_xlsx).imported, 4);
    let mut n = Node::new();
    let before_empty = n.tables();
    // An ODS read as XLSX, and an XLSX read as ODS.
    let o = n.path("d.ods");
    ods(&o, "Detections", &detections_rows());
    let mut wrong = mapping(DETECTIONS);
    wrong.format = Some(Format::Xlsx);
    assert!(
        n.import_err(&o, &wrong)
            .to_string()
            .contains("OpenDocument")
    );
    wrong.format = Some(Format::Ods);
    assert!(matches!(
        n.import_err(&good, &wrong),
        ImportError::WrongContent { .. }
    ));
    // A legacy .xls.
    let xls = n.path("old.xlsx");
    std::fs::write(&xls, [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0]).unwrap();
    assert!(n.import_err(&xls, &m).to_string().contains(".xls"));
    // No such sheet: the message lists the sheets.
    let mut named = mapping(DETECTIONS);
    named.sheet = Some("Sheet9".into());
    let e = n.import_err(&good, &named);
    assert!(
        e.to_string()
            .contains("no sheet named \"Sheet9\" (the workbook has: Detections)"),
        "{e}"
    );
    // --sheet with a CSV file.
    let csv = n.path("a.csv");
    std::fs::write(&csv, "source_id,period,country\nA,2024-01,ESP\n").unwrap();
    named.mapping = None;
    assert!(matches!(
        n.import_err(&csv, &named),
        ImportError::SheetOfText { .. }
    ));
    // An empty workbook, and a header with a formula error.
    let empty = n.path("empty.xlsx");
    xlsx(&empty, &[("Detections", &[])]);
    assert!(n.import_err(&empty, &m).to_string().contains("empty"));
    let bad_header = n.path("bad-header.xlsx");
    xlsx(
        &bad_header,
        &[("Detections", &[vec![s("Case No"), C::E("#REF!")]])],
    );
    let e = n.import_err(&bad_header, &m);
    assert!(
        e.to_string().contains("#REF!") && e.to_string().contains("column B"),
        "{e}"
    );
    assert_eq!(n.tables(), before_empty);
}

#[test]
fn formula_errors_reject_their_row_only_where_a_column_is_read() {
    let mut n = Node::new();
    let p = n.path("errors.xlsx");
    let header = [
        "Case No",
        "Date",
        "Nationality",
        "Persons",
        "From",
        "Route",
        "Means",
        "Check",
    ]
    .map(s)
    .to_vec();
    let rows = vec![
        header,
        // An error in a column the mapping does not read: imported.
        vec![
            C::N(1.0),
            C::D(2024, 3, 14),
            s("MAR"),
            C::N(2.0),
            s("MAR"),
            s("other"),
            s("boat"),
            C::E("#DIV/0!"),
        ],
        // In the count: rejected, with the sheet row and the cell.
        vec![
            C::N(2.0),
            C::D(2024, 3, 14),
            s("MAR"),
            C::E("#VALUE!"),
            s("MAR"),
            s("other"),
            s("boat"),
        ],
        // In the id.
        vec![
            C::E("#REF!"),
            C::D(2024, 3, 14),
            s("MAR"),
            C::N(2.0),
            s("MAR"),
            s("other"),
            s("boat"),
        ],
        // A value right of the header: no column names it, so the row is rejected.
        vec![
            C::N(4.0),
            C::D(2024, 3, 14),
            s("MAR"),
            C::N(2.0),
            s("MAR"),
            s("other"),
            s("boat"),
            C::Blank,
            s("stray"),
        ],
    ];
    xlsx(&p, &[("Detections", &rows)]);
    let r = n.import(&p, &mapping(DETECTIONS));
    assert_eq!((r.imported, r.rejected), (1, 3), "{:?}", r.rejections);
    let got: Vec<(u64, String)> = r
        .rejections
        .iter()
        .map(|x| (x.line, x.reason.clone()))
        .collect();
    assert_eq!(
        got[0],
        (
            3,
            "column Persons: cell D3 holds the formula error #VALUE!".to_string()
        )
    );
    assert_eq!(
        got[1],
        (
            4,
            "column Case No: cell A4 holds the formula error #REF!".to_string()
        )
    );
    assert_eq!(got[2].0, 5);
    assert!(
        got[2]
            .1
            .contains("cell I5 has a value outside the header's columns"),
        "{}",
        got[2].1
    );
}

#[test]
fn the_mapping_names_the_sheet_and_a_header_below_title_rows() {
    let mut n = Node::new();
    let p = n.path("report.xlsx");
    let mut rows = vec![vec![s("Border agency - detections, March 2024")], vec![]];
    rows.extend(detections_rows().into_iter().take(3));
    let cover = vec![vec![s("About this workbook")]];
    xlsx(&p, &[("Cover", &cover), ("Data", &rows)]);
    let with_keys = format!("sheet = \"Data\"\nheader_row = 3\n{DETECTIONS}");
    let r = n.import(&p, &mapping(&with_keys));
    assert_eq!(r.sheet.as_deref(), Some("Data"));
    assert_eq!((r.imported, r.rejected), (2, 0), "{:?}", r.rejections);
    // --sheet wins over the mapping's sheet.
    let mut opts = mapping(&with_keys);
    opts.sheet = Some("Cover".into());
    assert!(matches!(
        n.import_err(&p, &opts),
        ImportError::Header { .. }
    ));
    // Without header_row the title row is the header: the mapping does not fit it.
    let e = n.import_err(&p, &mapping(&format!("sheet = \"Data\"\n{DETECTIONS}")));
    assert!(e.to_string().contains("not in the file's header"), "{e}");
    // A row number with no value is no header.
    let e = n.import_err(
        &p,
        &mapping(&format!("sheet = \"Data\"\nheader_row = 2\n{DETECTIONS}")),
    );
    assert!(e.to_string().contains("empty"), "{e}");
    assert!(Mapping::from_toml(&format!("header_row = 0\n{DETECTIONS}")).is_err());
    // The rows keep their spreadsheet numbers below a header on row 3.
    let mut n = Node::new();
    let mut bad = rows.clone();
    bad[4][2] = s("Narnia");
    xlsx(&p, &[("Data", &bad)]);
    let r = n.import(&p, &mapping(&format!("header_row = 3\n{DETECTIONS}")));
    assert_eq!(r.rejections.iter().map(|x| x.line).collect::<Vec<_>>(), [5]);
}

#[test]
fn a_template_workbook_imports_without_a_mapping() {
    let mut n = Node::new();
    let p = n.path("template.xlsx");
    let rows = vec![
        [
            "source_id",
            "period",
            "date",
            "country",
            "route",
            "migrants",
        ]
        .map(s)
        .to_vec(),
        vec![
            s("T-1"),
            s("2024-05"),
            C::D(2024, 5, 2),
            s("ESP"),
            s("MAR>ESP"),
            s("MAR:M:18-24:4"),
        ],
        vec![
            C::N(2.0),
            s("2024-05"),
            C::Blank,
            s("ESP"),
            C::Blank,
            s("DZA:U:U:3"),
        ],
    ];
    xlsx(&p, &[("Sheet1", &rows)]);
    let r = n.import(&p, &ImportOptions::default());
    assert_eq!((r.imported, r.rejected), (2, 0), "{:?}", r.rejections);
    assert_eq!(n.total("migrants"), 7);
    assert_eq!(
        n.scalar("SELECT COUNT(*) FROM incident WHERE source_id = '2'"),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// The property: every row of a generated workbook is accounted for, and the people imported
// are exactly the valid rows' counts.

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn every_row_of_a_workbook_is_accounted_for(
        rows in proptest::collection::vec(
            (0u32..3, 0u32..400_000, 1u8..29, prop::bool::ANY, 0u8..6),
            1..40,
        ),
    ) {
        let mut n = Node::new();
        let p = n.path("gen.xlsx");
        let mut sheet = vec![
            ["Case No", "Date", "Nationality", "Persons", "From", "Route", "Means"].map(s).to_vec(),
        ];
        let mut want_people: u64 = 0;
        let mut want_rejected = 0u64;
        let mut blank = 0u64;
        for (i, (nat, persons, day, date_cell, kind)) in rows.iter().enumerate() {
            let nat = ["MAR", "xxb", "Atlantis"][*nat as usize];
            let mut row = vec![
                C::N(i as f64 + 1.0),
                if *date_cell { C::D(2024, 2, *day) } else { s(&format!("{day:02}/02/2024")) },
                s(nat),
                C::N(f64::from(*persons)),
                s("MAR"),
                s("Western Mediterranean"),
                s("boat"),
            ];
            match kind {
                0 => row[3] = C::E("#DIV/0!"),
                1 => { row = vec![]; }
                _ => {}
            }
            sheet.push(row);
            if *kind == 1 {
                blank += 1;
            } else if *kind == 0 || nat == "Atlantis" || *persons > 300_000 {
                want_rejected += 1;
            } else if *persons > 0 {
                want_people += u64::from(*persons);
            }
        }
        let toml = DETECTIONS.replace("max_group_count = 1000000", "max_group_count = 300000");
        xlsx(&p, &[("Detections", &sheet)]);
        let r = n.import(&p, &mapping(&toml));
        let rows_with_values = rows.len() as u64 - blank;
        prop_assert_eq!(r.rows_read, rows_with_values);
        prop_assert_eq!(r.imported + r.rejected + r.duplicates + r.skipped, rows_with_values);
        prop_assert_eq!(r.rejected, want_rejected);
        prop_assert_eq!(n.total("migrants") as u64, want_people);
        // Each rejection names a row that holds data, by its sheet row number.
        for x in &r.rejections {
            prop_assert!(x.line >= 2 && x.line <= rows.len() as u64 + 1);
            prop_assert!(!matches!(sheet[(x.line - 1) as usize].as_slice(), []));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real data: the Missing Migrants CSV, as an agency would get it in a workbook.

const MMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/missing-migrants-incidents.csv"
);
const MMP_MAPPING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/samples/mappings/missing-migrants.toml"
);

#[test]
fn the_missing_migrants_file_imports_the_same_from_xlsx_as_from_csv() {
    let csv_path = PathBuf::from(MMP);
    if !csv_path.exists() {
        eprintln!(
            "SKIPPED: the Missing Migrants data file is not at {MMP} (this test needs the shared/ \
             directory with data/missing-migrants-incidents.csv beside the repository clone)"
        );
        return;
    }
    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (dead, surv) = (col("dead"), col("surv"));
    let mut sheet: Vec<Vec<C>> = vec![header.iter().map(|h| s(h)).collect()];
    let mut want_dead = 0.0;
    for row in rdr.records() {
        let row = row.unwrap();
        want_dead += row[dead].parse::<f64>().unwrap_or(0.0);
        sheet.push(
            row.iter()
                .enumerate()
                .map(|(i, v)| match v.parse::<f64>() {
                    // Counts as number cells, the way a spreadsheet holds them.
                    Ok(f) if i == dead || i == surv => C::N(f),
                    _ if v.is_empty() => C::Blank,
                    _ => s(v),
                })
                .collect(),
        );
    }
    let mut a = Node::new();
    let x = a.path("mmp.xlsx");
    xlsx(&x, &[("incidents", &sheet)]);
    let opts = ImportOptions {
        mapping: Some(Mapping::load(Path::new(MMP_MAPPING)).unwrap()),
        ..ImportOptions::default()
    };
    let from_xlsx = a.import(&x, &opts);
    let mut b = Node::new();
    let from_csv = b.import(&csv_path, &opts);
    assert_eq!(from_xlsx.imported, 19_669);
    assert_eq!(
        (from_xlsx.imported, from_xlsx.rejected, from_xlsx.duplicates),
        (from_csv.imported, from_csv.rejected, from_csv.duplicates)
    );
    assert_eq!(a.total("deaths"), want_dead as i64);
    for (unit, by) in [
        ("deaths", &["origin"][..]),
        ("migrants", &["citizenship"][..]),
        ("incidents", &["mode", "year"][..]),
        ("incidents", &["corridor"][..]),
    ] {
        assert_eq!(a.cells(unit, by), b.cells(unit, by), "{unit} {by:?}");
    }
    // Corridors, counted independently from IOM's route names.
    let corridor_of = |route: &str| match route {
        "Central Mediterranean Route" => "central_mediterranean",
        "Western Mediterranean Route" => "western_mediterranean",
        "Eastern Mediterranean Route" => "eastern_mediterranean",
        "Western African Atlantic Route" => "western_african_atlantic",
        "Central American Route" => "central_american",
        "South American Route" => "south_american",
        "EHOA Eastern Route" => "ehoa_eastern",
        "EHOA Northern Route" => "ehoa_northern",
        "EHOA Southern Route" => "ehoa_southern",
        _ => "unknown",
    };
    let mut want: std::collections::BTreeMap<String, i64> = Default::default();
    let route = col("route");
    for row in csv::Reader::from_path(&csv_path).unwrap().records() {
        *want
            .entry(corridor_of(&row.unwrap()[route]).to_string())
            .or_default() += 1;
    }
    let got: std::collections::BTreeMap<String, i64> = b
        .cells("incidents", &["corridor"])
        .into_iter()
        .map(|(k, v)| (k[0].clone(), v))
        .collect();
    assert_eq!(got, want);
    assert_eq!(want["central_mediterranean"], 1_473);
}

// ---------------------------------------------------------------------------------------------
// The binary: --input-format, --sheet, and the exit status.

#[test]
fn the_cli_reads_workbooks_by_flag_and_reports_over_cap_rows() {
    const BIN: &str = env!("CARGO_BIN_EXE_vrs-node");
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let d = node.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir", d, "--country", "ESP"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let file = dir.path().join("export.dat");
    let lookup = vec![vec![s("x")]];
    xlsx(
        &file,
        &[("Lookup", &lookup), ("Detections", &detections_rows())],
    );
    let map = dir.path().join("map.toml");
    std::fs::write(&map, DETECTIONS.replace("max_group_count = 1000000", "")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["import", "--dir", d, "--mapping", map.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        Command::new(BIN).args(&args).output().unwrap()
    };
    // Without --input-format a .dat file with a mapping is read as CSV: its content says no.
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("its content is a zip archive"));
    // The first sheet is the lookup table: the mapping does not fit it.
    let out = run(&["--input-format", "xlsx"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the file's header"));
    let out = run(&["--input-format", "xlsx", "--sheet", "Detections"]);
    let text = String::from_utf8_lossy(&out.stdout);
    // Some rows imported, some rejected: the same status as any partly rejected file.
    assert_eq!(out.status.code(), Some(3), "{text}");
    let file_label = file.display().to_string();
    for line in [3, 5, 7] {
        let want = format!("{file_label}:{line}: migrant group count");
        assert!(text.contains(&want), "{want} not in {text}");
    }
    assert!(
        text.contains("(sheet \"Detections\"): 2 imported, 5 rejected"),
        "{text}"
    );
    let out = run(&[
        "--input-format",
        "xlsx",
        "--sheet",
        "Detections",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rejected"], 5);
    assert_eq!(json["duplicates"], 2);
    assert_eq!(json["files"][0]["sheet"], "Detections");
    let bad = Command::new(BIN)
        .args([
            "import",
            "--dir",
            d,
            "--input-format",
            "xls",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("xlsx"));
}
