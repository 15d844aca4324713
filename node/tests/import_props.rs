//! Properties of import: the template round-trips; any mix of good and bad rows stores exactly the
//! good ones and reports each bad one at its line; strict mode changes nothing; importing twice
//! imports nothing new.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vrs_core::codes::{
    AgeGroup, Country, Currency, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex, SmugglerRole,
    SmugglerStage,
};
use vrs_core::period::Month;
use vrs_node::fx::FxRates;
use vrs_node::import::{CsvReader, CsvWriter, ImportOptions, import_file};
use vrs_node::record::{Fee, IncidentRecord, Leg, MigrantGroup, RecordKind, Smuggler};
use vrs_node::store::Store;

// ---------------------------------------------------------------------------------------------
// Generators of valid records.

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

fn country() -> impl Strategy<Value = Country> {
    prop::sample::select(
        &[
            "THA", "MMR", "MYS", "AFG", "IRN", "UNK", "XXA", "XKX", "AUS", "VNM", "LBY", "ITA",
        ][..],
    )
    .prop_map(|c| c.parse().unwrap())
}

fn month() -> impl Strategy<Value = Month> {
    (2015u16..=2025, 1u8..=12).prop_map(|(y, m)| Month::new(y, m).unwrap())
}

/// Printable text with the characters the CSV syntax cares about.
fn printable() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,;:\"'>#é漢-]{1,20}"
}

/// Free text: also line breaks, tabs and quotes.
fn note() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,;:\"'>#é漢\n\r\t-]{1,60}"
}

fn route() -> impl Strategy<Value = Vec<Leg>> {
    prop_oneof![
        Just(Vec::new()),
        (
            prop::collection::vec(country(), 2..5),
            prop::collection::vec(prop::option::of(pick(Mode::ALL)), 4),
        )
            .prop_map(|(cs, modes)| cs
                .windows(2)
                .zip(modes)
                .map(|(w, mode)| Leg {
                    from: w[0],
                    to: w[1],
                    mode,
                })
                .collect()),
    ]
}

fn fee() -> impl Strategy<Value = Fee> {
    (
        0u64..10_000_000,
        prop::sample::select(&["USD", "THB", "EUR", "MYR"][..]),
        pick(FeeScope::ALL),
        pick(PaymentMode::ALL),
    )
        .prop_map(|(cents, cur, scope, payment)| Fee {
            amount: cents as f64 / 100.0,
            currency: cur.parse::<Currency>().unwrap(),
            scope,
            payment,
        })
}

fn group() -> impl Strategy<Value = MigrantGroup> {
    (
        country(),
        pick(Sex::ALL),
        pick(AgeGroup::ALL),
        any::<bool>(),
        1u32..500,
    )
        .prop_map(|(citizenship, sex, age_group, u, count)| MigrantGroup {
            citizenship,
            sex,
            age_group,
            unaccompanied: u && age_group.is_minor(),
            count,
        })
}

fn smuggler() -> impl Strategy<Value = Smuggler> {
    (
        country(),
        pick(Sex::ALL),
        pick(AgeGroup::ALL),
        pick(SmugglerRole::ALL),
        pick(SmugglerStage::ALL),
    )
        .prop_map(|(citizenship, sex, age_group, role, stage)| Smuggler {
            citizenship,
            sex,
            age_group,
            role,
            stage,
        })
}

/// A record that passes `check()` (its `source_id` is set by the caller).
fn record() -> impl Strategy<Value = IncidentRecord> {
    (
        (
            month(),
            prop::option::of(1u32..=28),
            prop::option::of(printable()),
            country(),
            prop::option::of(pick(PlaceType::ALL)),
            prop::option::of(pick(Mode::ALL)),
            0u32..100,
            0u32..100,
        ),
        (
            route(),
            prop::collection::btree_set(pick(Method::ALL), 0..4),
            prop::collection::vec(fee(), 0..3),
            prop::collection::vec(group(), 0..4),
            prop::collection::vec(smuggler(), 0..3),
            prop::option::of(note()),
        ),
    )
        .prop_map(
            |(
                (period, day, agency, country, place_type, mode, dead, missing),
                (route, methods, fees, migrants, smugglers, note),
            )| IncidentRecord {
                kind: RecordKind::Incident,
                source_id: String::new(),
                period,
                date: day.map(|d| format!("{period}-{d:02}")),
                agency,
                country,
                place_type,
                mode,
                dead,
                missing,
                route,
                corridor: None,
                methods,
                fees,
                migrants,
                smugglers,
                note,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Files with good and bad rows.

/// Ways to spoil a template row. Each makes the importer reject the row.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Period,
    Country,
    OneCountryRoute,
    MigrantSyntax,
    UnaccompaniedAdult,
    DateOutsidePeriod,
    NoExchangeRate,
    TooFewFields,
    NotUtf8,
}

const BADS: &[Bad] = &[
    Bad::Period,
    Bad::Country,
    Bad::OneCountryRoute,
    Bad::MigrantSyntax,
    Bad::UnaccompaniedAdult,
    Bad::DateOutsidePeriod,
    Bad::NoExchangeRate,
    Bad::TooFewFields,
    Bad::NotUtf8,
];

const NOT_UTF8_MARKER: &str = "\u{1}NOT-UTF8\u{1}";

#[derive(Debug, Clone)]
enum Row {
    /// A new, valid record.
    Good(IncidentRecord),
    /// A valid record whose `source_id` is already stored.
    Dup(IncidentRecord),
    /// A spoilt row.
    Bad(IncidentRecord, Bad),
}

/// The template cells of a record, read back with the `csv` crate (independent of the importer).
fn cells(r: &IncidentRecord) -> Vec<String> {
    let mut w = CsvWriter::new(Vec::new()).unwrap();
    w.write(r).unwrap();
    let bytes = w.finish().unwrap();
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let rec = rdr.records().next().unwrap().unwrap();
    rec.iter().map(String::from).collect()
}

fn spoil(mut c: Vec<String>, bad: Bad) -> Vec<String> {
    match bad {
        Bad::Period => c[1] = "2024-13".into(),
        Bad::Country => c[4] = "ZZZ".into(),
        Bad::OneCountryRoute => {
            c[9] = "MMR".into();
            c[10] = String::new();
        }
        Bad::MigrantSyntax => c[13] = "MMR:M".into(),
        Bad::UnaccompaniedAdult => c[13] = "MMR:M:25-34:U:2".into(),
        Bad::DateOutsidePeriod => {
            c[1] = "2020-01".into();
            c[2] = "2020-02-01".into();
        }
        Bad::NoExchangeRate => c[12] = "100 CHF leg".into(),
        Bad::TooFewFields => c.truncate(13),
        Bad::NotUtf8 => c[15] = format!("a{NOT_UTF8_MARKER}b"),
    }
    c
}

/// The file's bytes and, for each row, the line it starts on.
fn template_file(rows: &[Row]) -> (Vec<u8>, Vec<u64>) {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    w.write_record(vrs_node::import::template::COLUMNS).unwrap();
    let mut starts = Vec::new();
    for row in rows {
        w.flush().unwrap();
        starts.push(w.get_ref().len());
        let c = match row {
            Row::Good(r) | Row::Dup(r) => cells(r),
            Row::Bad(r, bad) => spoil(cells(r), *bad),
        };
        w.write_record(&c).unwrap();
    }
    let text = w.into_inner().unwrap();
    // `\n`, `\r\n` and a lone `\r` (a note may hold one) each end a physical line.
    let line_ends = |t: &[u8]| {
        t.iter()
            .enumerate()
            .filter(|(i, b)| **b == b'\r' || (**b == b'\n' && (*i == 0 || t[i - 1] != b'\r')))
            .count() as u64
    };
    let lines = starts.iter().map(|s| 1 + line_ends(&text[..*s])).collect();
    // Swap the marker for invalid UTF-8 (neither holds a line break).
    let marker = NOT_UTF8_MARKER.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(marker) {
            out.extend_from_slice(b"\xff\xfe");
            i += marker.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    (out, lines)
}

fn rows_strategy(existing: usize) -> impl Strategy<Value = Vec<Row>> {
    let row = (0u8..10, record(), pick(BADS), 0..existing.max(1));
    prop::collection::vec(row, 0..16).prop_map(move |rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (kind, mut r, bad, dup))| match kind {
                0..=5 => {
                    r.source_id = format!("N-{i}");
                    Row::Good(r)
                }
                6 if existing > 0 => {
                    r.source_id = format!("E-{dup}");
                    Row::Dup(r)
                }
                _ => {
                    r.source_id = format!("N-{i}");
                    Row::Bad(r, bad)
                }
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// The store, seen from outside.

const TABLES: [&str; 8] = [
    "import_run",
    "incident",
    "route_leg",
    "transit",
    "method",
    "fee",
    "migrant_group",
    "smuggler",
];

/// Every row of every table, as text.
fn dump(store: &Store) -> BTreeMap<&'static str, BTreeSet<String>> {
    TABLES
        .iter()
        .map(|t| {
            let mut stmt = store.conn().prepare(&format!("SELECT * FROM {t}")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (*t, rows)
        })
        .collect()
}

fn counts(store: &Store) -> BTreeMap<&'static str, usize> {
    dump(store).into_iter().map(|(t, r)| (t, r.len())).collect()
}

fn source_ids(store: &Store) -> BTreeSet<String> {
    let mut stmt = store
        .conn()
        .prepare("SELECT source_id FROM incident")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Rows each table gains from a record.
fn gains(r: &IncidentRecord) -> [(&'static str, usize); 7] {
    [
        ("incident", 1),
        ("route_leg", r.route.len()),
        ("transit", r.transit().len()),
        ("method", r.methods.len()),
        ("fee", r.fees.len()),
        ("migrant_group", r.migrants.len()),
        ("smuggler", r.smugglers.len()),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    fx: FxRates,
}

impl Fixture {
    /// A store holding `existing` records `E-0`, `E-1`… imported from JSON Lines.
    fn new(existing: &[IncidentRecord]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("node"), "THA".parse().unwrap()).unwrap();
        let mut f = Fixture {
            dir,
            store,
            fx: FxRates::sample(),
        };
        let mut text = String::new();
        for (j, r) in existing.iter().enumerate() {
            let mut r = r.clone();
            r.source_id = format!("E-{j}");
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        let p = f.write("existing.jsonl", text.as_bytes());
        let rep = f.import(&p, false);
        assert_eq!(rep.imported as usize, existing.len());
        f
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn import(&mut self, path: &Path, strict: bool) -> vrs_node::import::FileReport {
        let opts = ImportOptions {
            strict,
            ..ImportOptions::default()
        };
        import_file(&mut self.store, path, &self.fx, &opts).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn template_csv_round_trips(records in prop::collection::vec(record(), 0..12)) {
        let records: Vec<IncidentRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| { r.source_id = format!("R-{i}"); r })
            .collect();
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut rdr = CsvReader::new(&bytes[..]).unwrap();
        let mut back = Vec::new();
        while let Some((_, r)) = rdr.read_record().unwrap() {
            back.push(r.unwrap());
        }
        prop_assert_eq!(back, records);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn exactly_the_good_rows_go_in_and_each_bad_row_is_reported_at_its_line(
        existing in prop::collection::vec(record(), 0..4),
        rows in rows_strategy(3),
    ) {
        let mut f = Fixture::new(&existing);
        // Dups refer to E-0..E-2; keep only those that exist.
        let rows: Vec<Row> = rows
            .into_iter()
            .filter(|r| match r {
                Row::Dup(r) => existing.len() > r.source_id[2..].parse::<usize>().unwrap(),
                _ => true,
            })
            .collect();
        let (bytes, lines) = template_file(&rows);
        let path = f.write("new.csv", &bytes);
        let before = dump(&f.store);
        let before_counts = counts(&f.store);

        let report = f.import(&path, false);

        let good: Vec<&IncidentRecord> = rows
            .iter()
            .filter_map(|r| if let Row::Good(r) = r { Some(r) } else { None })
            .collect();
        let bad_lines: Vec<u64> = rows
            .iter()
            .zip(&lines)
            .filter(|(r, _)| matches!(r, Row::Bad(..)))
            .map(|(_, l)| *l)
            .collect();
        let dups = rows.iter().filter(|r| matches!(r, Row::Dup(_))).count();
        prop_assert_eq!(report.imported as usize, good.len());
        prop_assert_eq!(report.duplicates as usize, dups);
        prop_assert_eq!(report.rejected as usize, bad_lines.len());
        let got_lines: Vec<u64> = report.rejections.iter().map(|r| r.line).collect();
        prop_assert_eq!(&got_lines, &bad_lines, "{:?}", report.rejections);

        // Exactly the good records were added…
        let mut want_ids: BTreeSet<String> = (0..existing.len()).map(|j| format!("E-{j}")).collect();
        want_ids.extend(good.iter().map(|r| r.source_id.clone()));
        prop_assert_eq!(source_ids(&f.store), want_ids);
        let mut want_counts = before_counts.clone();
        *want_counts.get_mut("import_run").unwrap() += 1;
        for r in &good {
            for (t, n) in gains(r) {
                *want_counts.get_mut(t).unwrap() += n;
            }
        }
        prop_assert_eq!(counts(&f.store), want_counts);
        // …and nothing already stored changed.
        let after = dump(&f.store);
        for (t, rows) in &before {
            prop_assert!(rows.is_subset(&after[t]), "{} changed", t);
        }
    }

    #[test]
    fn strict_mode_with_any_bad_row_changes_nothing(
        existing in prop::collection::vec(record(), 0..3),
        rows in rows_strategy(0),
        bad in (record(), pick(BADS)),
    ) {
        let mut f = Fixture::new(&existing);
        let mut rows = rows;
        let (mut r, kind) = bad;
        r.source_id = "BAD".into();
        let at = rows.len() / 2;
        rows.insert(at, Row::Bad(r, kind));
        let (bytes, lines) = template_file(&rows);
        let path = f.write("new.csv", &bytes);
        let before = dump(&f.store);

        let report = f.import(&path, true);

        prop_assert!(report.rolled_back);
        prop_assert_eq!(report.imported, 0);
        prop_assert!(report.rejections.iter().any(|x| x.line == lines[at]));
        prop_assert_eq!(dump(&f.store), before);
    }

    #[test]
    fn importing_the_same_file_twice_imports_nothing_the_second_time(
        records in prop::collection::vec(record(), 0..12),
        jsonl in any::<bool>(),
    ) {
        let mut f = Fixture::new(&[]);
        let records: Vec<IncidentRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| { r.source_id = format!("T-{i}"); r })
            .collect();
        let path = if jsonl {
            let mut text = String::new();
            for r in &records {
                text.push_str(&serde_json::to_string(r).unwrap());
                text.push('\n');
            }
            f.write("twice.jsonl", text.as_bytes())
        } else {
            let mut w = CsvWriter::new(Vec::new()).unwrap();
            for r in &records {
                w.write(r).unwrap();
            }
            f.write("twice.csv", &w.finish().unwrap())
        };
        let first = f.import(&path, true);
        prop_assert_eq!((first.imported as usize, first.rejected), (records.len(), 0));
        let before = dump(&f.store);
        let second = f.import(&path, false);
        prop_assert_eq!(
            (second.imported, second.rejected, second.duplicates as usize),
            (0, 0, records.len())
        );
        let after = dump(&f.store);
        for t in TABLES.iter().skip(1) {
            prop_assert_eq!(&before[t], &after[t]);
        }
    }
}

#[test]
fn json_lines_rejections_carry_their_line_numbers() {
    let mut f = Fixture::new(&[]);
    let mut good = IncidentRecord {
        kind: RecordKind::Incident,
        source_id: "J-1".into(),
        period: "2024-01".parse().unwrap(),
        date: None,
        agency: None,
        country: "THA".parse().unwrap(),
        place_type: None,
        mode: None,
        dead: 0,
        missing: 0,
        route: Vec::new(),
        corridor: None,
        methods: Default::default(),
        fees: Vec::new(),
        migrants: Vec::new(),
        smugglers: Vec::new(),
        note: None,
    };
    let line1 = serde_json::to_string(&good).unwrap();
    good.source_id = "J-2".into();
    let line5 = serde_json::to_string(&good).unwrap();
    let text = format!(
        "{line1}\n\n{{\"source_id\":\"J-3\",\"period\":\"2024-01\",\"country\":\"ZZZ\"}}\n{{\"source_id\":\"J-4\",\"period\":\"2024-01\",\"country\":\"THA\",\"colour\":1}}\n{line5}\n{{\"source_id\":\"J-5\",\n"
    );
    let p = f.write("j.jsonl", text.as_bytes());
    let r = f.import(&p, false);
    assert_eq!((r.imported, r.rejected), (2, 3));
    let lines: Vec<u64> = r.rejections.iter().map(|x| x.line).collect();
    assert_eq!(lines, [3, 4, 6]);
    assert!(
        r.rejections[0]
            .reason
            .contains("\"ZZZ\" is not a valid country code")
    );
    assert!(r.rejections[1].reason.contains("unknown field `colour`"));
}
