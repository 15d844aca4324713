//! Imports real files: the IOM Missing Migrants Project incidents through the shipped mapping
//! (checked against an independent reading of the CSV), and the sample with broken rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use vrs_node::fx::FxRates;
use vrs_node::import::{ImportOptions, Mapping, import_file};
use vrs_node::store::Store;

const MMP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/missing-migrants-incidents.csv"
);
const MAPPING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/samples/mappings/missing-migrants.toml"
);
const BROKEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/samples/broken.csv");

const SEA_ROUTES: [&str; 3] = [
    "Central Mediterranean Route",
    "Western Mediterranean Route",
    "Western African Atlantic Route",
];

fn mmp_path() -> PathBuf {
    let p = PathBuf::from(MMP);
    assert!(
        p.exists(),
        "the Missing Migrants data file is not at {MMP}: this test expects the shared/ directory \
         (with data/missing-migrants-incidents.csv) beside the repository clone"
    );
    p
}

/// What the file says, read directly with the `csv` crate, following the rules the mapping
/// documents.
#[derive(Debug, Default)]
struct Expected {
    incidents: u64,
    dead: u64,
    by_geo: BTreeMap<String, u64>,
    groups: u64,
    migrants: u64,
    nationalities: BTreeSet<String>,
    sea: u64,
    notes: u64,
    exact_copies: u64,
    negative_survivors: u64,
}

fn whole(s: &str) -> u64 {
    if s.is_empty() {
        return 0;
    }
    let v: f64 = s.parse().unwrap();
    assert_eq!(v.fract(), 0.0, "{s}");
    v as u64
}

fn expected(path: &Path) -> Expected {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (geo, dead, surv, nat, route, cause, location) = (
        col("geo"),
        col("dead"),
        col("surv"),
        col("nat"),
        col("route"),
        col("cause"),
        col("location"),
    );
    let mut e = Expected::default();
    let mut seen = BTreeSet::new();
    for row in rdr.records() {
        let row = row.unwrap();
        e.incidents += 1;
        if !seen.insert(row.iter().collect::<Vec<_>>().join("\u{1f}")) {
            e.exact_copies += 1;
        }
        let d = whole(&row[dead]);
        e.dead += d;
        *e.by_geo.entry(row[geo].to_string()).or_default() += 1;
        // A negative survivor count (IOM's correction of an earlier incident) counts as none.
        let survivors = if row[surv].starts_with('-') {
            e.negative_survivors += 1;
            0
        } else {
            whole(&row[surv])
        };
        let people = d + survivors;
        let listed: Vec<&str> = row[nat].split(',').map(str::trim).collect();
        let distinct: BTreeSet<&str> = listed.iter().copied().collect();
        e.nationalities
            .extend(distinct.iter().map(|s| s.to_string()));
        if listed.len() == 1 {
            e.groups += 1;
            e.migrants += people;
        } else {
            let n = listed.len() as u64;
            let remainder_group = people > n && !distinct.contains("UNK");
            e.groups += distinct.len() as u64 + u64::from(remainder_group);
            e.migrants += people.max(n);
            if people > n {
                e.nationalities.insert("UNK".into());
            }
        }
        if &row[cause] == "Drowning" && SEA_ROUTES.contains(&&row[route]) {
            e.sea += 1;
        }
        if !row[location].trim().is_empty() {
            e.notes += 1;
        }
    }
    e
}

fn count(store: &Store, sql: &str) -> u64 {
    let v: i64 = store
        .conn()
        .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(0);
    v as u64
}

/// Row counts of every table, the store's content in figures.
fn table_counts(store: &Store) -> Vec<(String, u64)> {
    [
        "import_run",
        "incident",
        "route_leg",
        "transit",
        "method",
        "fee",
        "migrant_group",
        "smuggler",
    ]
    .iter()
    .map(|t| {
        (
            t.to_string(),
            count(store, &format!("SELECT COUNT(*) FROM {t}")),
        )
    })
    .collect()
}

#[test]
fn missing_migrants_imports_through_the_shipped_mapping() {
    let path = mmp_path();
    let want = expected(&path);
    assert_eq!(want.incidents, 19_669);

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), "UNK".parse().unwrap()).unwrap();
    let opts = ImportOptions {
        mapping: Some(Mapping::load(Path::new(MAPPING)).unwrap()),
        ..ImportOptions::default()
    };
    let fx = FxRates::sample();
    let started = Instant::now();
    let report = import_file(&mut store, &path, &fx, &opts).unwrap();
    let took = started.elapsed();
    eprintln!(
        "missing migrants: imported {} rejected {} duplicates {} skipped {} in {took:.2?}",
        report.imported, report.rejected, report.duplicates, report.skipped
    );
    assert!(
        report.rejections.is_empty(),
        "{:?}",
        &report.rejections[..report.rejections.len().min(5)]
    );
    assert_eq!(
        (
            report.imported,
            report.rejected,
            report.duplicates,
            report.skipped
        ),
        (want.incidents, 0, 0, 0)
    );
    assert_eq!(want.exact_copies, 708, "the data file changed");
    assert_eq!(want.negative_survivors, 5, "the data file changed");

    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM incident"),
        want.incidents
    );
    assert_eq!(count(&store, "SELECT SUM(dead) FROM incident"), want.dead);
    assert_eq!(count(&store, "SELECT SUM(missing) FROM incident"), 0);
    for geo in ["USA", "IRN", "LBY", "MEX", "ESP", "GRC", "MLT"] {
        assert_eq!(
            count(
                &store,
                &format!("SELECT COUNT(*) FROM incident WHERE country = '{geo}'")
            ),
            want.by_geo[geo],
            "{geo}"
        );
    }
    assert_eq!(
        count(&store, "SELECT COUNT(DISTINCT country) FROM incident"),
        want.by_geo.len() as u64
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM migrant_group"),
        want.groups
    );
    assert_eq!(
        count(&store, "SELECT SUM(count) FROM migrant_group"),
        want.migrants
    );
    let nationalities: BTreeSet<String> = {
        let mut stmt = store
            .conn()
            .prepare("SELECT DISTINCT citizenship FROM migrant_group")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(nationalities, want.nationalities);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM incident WHERE mode = 'sea'"),
        want.sea
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM incident WHERE place_type = 'sea'"
        ),
        want.sea
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM incident WHERE mode IS NOT NULL AND mode <> 'sea'"
        ),
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM incident WHERE note IS NOT NULL"
        ),
        want.notes
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM incident WHERE date IS NULL"),
        0
    );
    assert!(store.integrity_problems().unwrap().is_empty());

    // Again: nothing new.
    let before = table_counts(&store);
    let again = import_file(&mut store, &path, &fx, &opts).unwrap();
    assert_eq!(
        (again.imported, again.rejected, again.duplicates),
        (0, 0, want.incidents)
    );
    let after = table_counts(&store);
    assert_eq!(&after[1..], &before[1..], "only the import run is new");
    assert_eq!(after[0].1, before[0].1 + 1);
}

#[test]
fn broken_rows_are_reported_by_line_and_strict_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), "THA".parse().unwrap()).unwrap();
    let fx = FxRates::sample();
    let path = Path::new(BROKEN);

    let strict = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let before = table_counts(&store);
    let r = import_file(&mut store, path, &fx, &strict).unwrap();
    assert!(r.rolled_back);
    assert_eq!((r.imported, r.rejected), (0, 9));
    assert_eq!(table_counts(&store), before);

    let r = import_file(&mut store, path, &fx, &ImportOptions::default()).unwrap();
    assert!(!r.rolled_back);
    assert_eq!((r.imported, r.rejected, r.duplicates), (2, 9, 1));
    let got: Vec<(u64, &str)> = r
        .rejections
        .iter()
        .map(|x| (x.line, x.reason.as_str()))
        .collect();
    let want: [(u64, &str); 9] = [
        (3, "period: \"2024-13\" is not a month"),
        (4, "country: \"THX\" is not a valid country code"),
        (5, "route_modes: 1 mode(s) for 2 leg(s)"),
        (7, "date must be YYYY-MM-DD within the period"),
        (8, "no exchange rate configured for CHF"),
        (9, "an unaccompanied group must have a minor's age group"),
        (10, "methods: \"walking\" is not a valid method code"),
        (11, "dead: \"1.5\" is not a whole number"),
        (12, "row has 5 fields, the header has 16"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, reason), (wline, wreason)) in got.iter().zip(want) {
        assert_eq!(*line, wline, "{reason}");
        assert!(reason.starts_with(wreason), "line {line}: {reason}");
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM incident"), 2);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["rejections"][0]["file"], BROKEN);
}
