//! Entry points for fuzzing: each takes arbitrary bytes, drives one of the node's parsers over them
//! the way the node does, and checks what comes out. The cargo-fuzz targets in `node/fuzz` and the
//! corpus replay test `node/tests/fuzz_corpus.rs` call the same functions, so an input that once
//! broke an invariant fails CI as soon as the bug comes back. See `docs/FUZZING.md`.
//!
//! Every entry point returns quietly when the input is refused with an error, and panics only
//! when an invariant breaks (a panic in the code under test, or a wrong result):
//!
//! - [`query_envelope`]: bytes → `QueryEnvelope` → [`RawQuery`] → [`Query::parse`] →
//!   [`aggregate`] over a small synthetic store → [`disclosure::release`] under two policies.
//!   Checks the exact table (keys of the right length and valid values, filters and period range
//!   respected, margins consistent, no store error for a query that parsed) and the release (every
//!   released cell passed the policy and stays within the noise bound, nothing invented or lost,
//!   and, on tables up to `AUDIT_MAX_CELLS` cells, secondary suppression holds against both
//!   audits and the exact audit's intervals hold the true values).
//! - [`import_csv`]: bytes → the template [`CsvReader`]. Every row is a rejection with a reason or
//!   a record; a record passing [`IncidentRecord::check`] goes back through [`CsvWriter`] and JSON
//!   unchanged and inserts without a store-level error.
//! - [`mapping_toml`]: text → [`Mapping::from_toml`]; if the text holds a [`CSV_MARKER`] line,
//!   what follows is imported through the mapping into a scratch store ([`import::import_file`]).
//! - [`cell_syntax`]: text → every template cell parser, the period parser and every query
//!   dimension's value parser; whatever parses must round-trip.
//!
//! Not part of the node's API: nothing here runs in a node, and the module is hidden from docs.
//! Setting up (the scratch directory under the system temp dir, the synthetic store) may panic;
//! that is a broken environment, not a finding.
// Test scaffolding (built only with the `fuzzing` feature): its checks panic by design, so a
// fuzzer or the corpus replay test stops on the first broken invariant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use prost::Message;
use vrs_core::answer::{Answer, MARGIN};
use vrs_core::codes::Country;
use vrs_core::period::{Month, PeriodSpec};
use vrs_core::query::{Dimension, Query, RawQuery, UNKNOWN};
use vrs_proto::pb;

use crate::disclosure::{
    self, ExactTable, PerturbationConfig, PerturbationSecret, Policy, PolicyConfig,
    audit_intervals, audit_with_exact,
};
use crate::fx::FxRates;
use crate::import::template::{
    CsvReader, CsvWriter, parse_amount, parse_fees, parse_methods, parse_migrants, parse_route,
    parse_smugglers, parse_whole,
};
use crate::import::{self, ImportError, ImportOptions, Mapping};
use crate::query::{PlanError, aggregate};
use crate::record::{IncidentRecord, RecordKind};
use crate::service::check_published;
use crate::store::Store;
use crate::synth::{self, SynthConfig};

/// An entry point: what a fuzz target and the replay test call with one input.
pub type EntryPoint = fn(&[u8]);

/// Every fuzz target by name (the name of its `fuzz_targets/*.rs` file and of its corpus
/// directory), with its entry point.
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("query_envelope", query_envelope),
    ("import_csv", import_csv),
    ("mapping_toml", mapping_toml),
    ("cell_syntax", cell_syntax),
];

/// In a [`mapping_toml`] input, the line that ends the mapping; the rest is the CSV file to import
/// through it. A TOML comment, so a seed stays a valid mapping file up to it.
pub const CSV_MARKER: &str = "\n#csv\n";

/// The reporting country of the synthetic query store.
const NODE_COUNTRY: &str = "THA";
/// Incidents in the synthetic query store.
const NODE_INCIDENTS: u64 = 300;
/// Largest table whose release [`query_envelope`] audits again from scratch (both audits); larger
/// ones get every other check. The audits are linear programs: a 3-way table of 220 cells takes
/// half a second in a debug build, over ten in an instrumented fuzz build.
const AUDIT_MAX_CELLS: usize = 120;
/// Above this many stored incidents the import targets' scratch store is started afresh.
const IMPORT_STORE_CAP: u64 = 20_000;

// ---------------------------------------------------------------------------------------------
// Scratch space and stores, made once per process.

/// This process's scratch directory, `<temp>/vrs-node-fuzz/<pid>`. Directories of processes
/// that no longer run are removed when it is made (on Linux, where `/proc` says so).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::env::temp_dir().join("vrs-node-fuzz");
        if let Ok(entries) = fs::read_dir(&root) {
            for e in entries.flatten() {
                let name = e.file_name();
                let dead = name
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|pid| {
                        Path::new("/proc/self").exists()
                            && !Path::new(&format!("/proc/{pid}")).exists()
                    });
                if dead {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("fuzzing: cannot create the scratch directory");
        dir
    })
}

/// Makes a fresh store in `dir`, tuned for speed (these stores are thrown away).
fn fresh_store(dir: &Path) -> Store {
    let _ = fs::remove_dir_all(dir);
    let country = NODE_COUNTRY.parse().expect("a valid country code");
    let store = Store::create(dir, country).expect("fuzzing: cannot create a scratch store");
    store
        .conn()
        .pragma_update(None, "synchronous", "OFF")
        .expect("fuzzing: cannot tune the scratch store");
    store
}

/// The synthetic node [`query_envelope`] asks, and what it releases with.
struct QueryNode {
    store: Store,
    incidents: u64,
    secret: PerturbationSecret,
    /// The default policy, and a stricter one with rounding and wider noise.
    policies: [Policy; 2],
}

fn query_node() -> MutexGuard<'static, QueryNode> {
    static NODE: OnceLock<Mutex<QueryNode>> = OnceLock::new();
    let node = NODE.get_or_init(|| {
        let mut store = fresh_store(&scratch().join("query"));
        let fx = FxRates::sample();
        let cfg = SynthConfig::new(
            NODE_COUNTRY.parse().expect("a valid country code"),
            NODE_INCIDENTS,
            7,
        );
        let mut tx = store
            .begin_import("synthetic", "", &fx)
            .expect("fuzzing: cannot start the synthetic import");
        let mut incidents = 0;
        for r in synth::generate(&cfg) {
            if tx.insert(&r).is_ok() {
                incidents += 1;
            }
        }
        tx.commit(Default::default())
            .expect("fuzzing: cannot commit the synthetic import");
        assert!(incidents >= NODE_INCIDENTS / 2, "synthetic import failed");
        let strict = Policy::new(PolicyConfig {
            min_count: 10,
            min_contributors: 4,
            dominance_p: 50,
            protection_width: Some(12),
            rounding_base: 5,
            perturbation: PerturbationConfig {
                enabled: true,
                max_deviation: 6,
            },
            ..PolicyConfig::default()
        })
        .expect("a valid policy");
        Mutex::new(QueryNode {
            store,
            incidents,
            secret: PerturbationSecret::from_bytes([7; 32]),
            policies: [Policy::default(), strict],
        })
    });
    // A panic while the lock was held (a finding) must not hide the next input's result.
    node.lock().unwrap_or_else(|p| p.into_inner())
}

/// The scratch store [`import_csv`] and [`mapping_toml`] import into, started afresh when it has
/// grown past [`IMPORT_STORE_CAP`] incidents. Always `Some` once returned.
fn import_store() -> MutexGuard<'static, Option<Store>> {
    static STORE: OnceLock<Mutex<Option<Store>>> = OnceLock::new();
    let mut guard = STORE
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let full = guard
        .as_ref()
        .is_none_or(|s| s.incident_count().unwrap_or(u64::MAX) > IMPORT_STORE_CAP);
    if full {
        // Close the old store before its directory goes.
        *guard = None;
        *guard = Some(fresh_store(&scratch().join("import")));
    }
    guard
}

// ---------------------------------------------------------------------------------------------
// query_envelope

/// Decodes an envelope, parses its query under the default limits and, if it parses, answers it
/// from a synthetic store of a few hundred incidents under two policies, checking the exact table
/// and each release.
pub fn query_envelope(data: &[u8]) {
    let Ok(env) = pb::QueryEnvelope::decode(data) else {
        return;
    };
    let Some(q) = env.query else {
        return;
    };
    let raw = crate::service::raw_query(q);
    let node = query_node();
    let limits = node.policies[0].query_limits();
    let query = match Query::parse(&raw, &limits) {
        Ok(q) => q,
        Err(e) => {
            assert!(!e.code().is_empty() && !e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(
        Query::parse(&query.to_raw(), &limits).as_ref(),
        Ok(&query),
        "the canonical form of a query parses to the same query"
    );
    if check_published(&node.policies[0], &query).is_err() {
        return;
    }
    let table = match aggregate(&node.store, &query) {
        Ok(t) => t,
        Err(PlanError::Query(e)) => {
            assert_eq!(e.code(), "PERIOD_OUTSIDE_DATA", "{e}");
            return;
        }
        Err(e) => panic!("a query that parsed failed in the store: {e}"),
    };
    check_table(&query, &table, node.incidents);
    for policy in &node.policies {
        assert!(check_published(policy, &query).is_ok());
        let released = disclosure::release(&table, policy, &node.secret);
        check_release(&table, policy, &released.answer);
    }
}

/// Whether a key part is a valid, canonical value of `d`.
fn valid_value(d: Dimension, part: &str) -> bool {
    (part == UNKNOWN && d.has_unknown_bucket())
        || d.parse_value(part).is_ok_and(|v| v.to_string() == part)
}

/// Whether a period key part lies in the query's range.
fn in_range(d: Dimension, part: &str, from: Option<Month>, to: Option<Month>) -> bool {
    let (first, last) = match (d, part.parse::<PeriodSpec>()) {
        (Dimension::Year | Dimension::Quarter | Dimension::Month, Ok(p)) => {
            (p.first_month(), p.last_month())
        }
        _ => return true,
    };
    from.is_none_or(|f| last >= f) && to.is_none_or(|t| first <= t)
}

/// Invariants of the query engine's exact table.
fn check_table(query: &Query, table: &ExactTable, incidents: u64) {
    let dims = query.group_by();
    assert_eq!(table.dimensions, dims);
    assert_eq!(table.unit, query.unit());
    assert_eq!(table.additive.len(), dims.len());
    let mut by_key = HashMap::new();
    for c in &table.cells {
        assert_eq!(c.key.len(), dims.len(), "key {:?}", c.key);
        assert!(
            by_key.insert(c.key.as_slice(), c).is_none(),
            "key {:?} twice",
            c.key
        );
        assert!(
            c.value > 0,
            "cell {:?} listed with value {}",
            c.key,
            c.value
        );
        assert!(c.contributors >= 1, "cell {:?} without contributors", c.key);
        assert!(
            c.largest[0] >= c.largest[1] && c.largest[1] >= 0 && c.largest[0] <= c.value,
            "cell {:?}: largest contributions {:?} of {}",
            c.key,
            c.largest,
            c.value
        );
        if !query.unit().is_magnitude() {
            assert!(c.contributors <= c.value.unsigned_abs(), "cell {:?}", c.key);
        }
        for (d, part) in dims.iter().zip(&c.key) {
            if part == MARGIN {
                assert!(query.margins(), "margin {:?} without margins asked", c.key);
                continue;
            }
            assert!(valid_value(*d, part), "{d} value {part:?} in {:?}", c.key);
            assert!(
                in_range(*d, part, query.from(), query.to()),
                "{d} value {part:?} outside the query's range"
            );
            if let Some(f) = query.filters().iter().find(|f| f.dimension() == *d) {
                assert!(
                    f.values().iter().any(|v| v.to_string() == *part),
                    "{d} value {part:?} not in the filter"
                );
            }
        }
    }
    if !query.margins() {
        return;
    }
    // A cell's rows are a subset of its margin's rows; over an additive dimension the margin is
    // the sum of its cells (values and record keys).
    let mut sums: HashMap<(usize, Vec<String>), (i64, u64)> = HashMap::new();
    for c in &table.cells {
        for (i, part) in c.key.iter().enumerate() {
            if part == MARGIN {
                continue;
            }
            let mut mk = c.key.clone();
            mk[i] = MARGIN.to_string();
            let m = by_key
                .get(mk.as_slice())
                .unwrap_or_else(|| panic!("cell {:?} without its margin {mk:?}", c.key));
            assert!(
                c.value <= m.value && c.contributors <= m.contributors,
                "cell {:?} larger than its margin {mk:?}",
                c.key
            );
            if table.additive[i] {
                let s = sums.entry((i, mk)).or_insert((0, 0));
                s.0 += c.value;
                s.1 = s.1.wrapping_add(c.cell_key);
            }
        }
    }
    for m in &table.cells {
        for (i, part) in m.key.iter().enumerate() {
            if part == MARGIN && table.additive[i] {
                assert_eq!(
                    sums.get(&(i, m.key.clone())),
                    Some(&(m.value, m.cell_key)),
                    "margin {:?} over {} is not the sum of its cells",
                    m.key,
                    table.dimensions[i]
                );
            }
        }
    }
    if query.unit() == vrs_core::query::Unit::Incidents
        && query.filters().is_empty()
        && query.from().is_none()
        && query.to().is_none()
    {
        let total = vec![MARGIN.to_string(); dims.len()];
        let all = by_key.get(total.as_slice()).map_or(0, |c| c.value);
        assert_eq!(
            all.unsigned_abs(),
            incidents,
            "the grand total is not every incident"
        );
    }
}

/// Invariants of one release of `table` under `policy`.
fn check_release(table: &ExactTable, policy: &Policy, answer: &Answer) {
    assert_eq!(answer.dimensions, table.dimensions);
    let exact: HashMap<&[String], _> = table.cells.iter().map(|c| (c.key.as_slice(), c)).collect();
    assert_eq!(
        answer.cells.len(),
        table.cells.len(),
        "cells invented or lost"
    );
    assert!(
        answer.cells.windows(2).all(|w| w[0].key < w[1].key),
        "released cells not sorted and unique"
    );
    let deviation = if policy.perturbation() {
        policy.max_deviation()
    } else {
        0
    };
    let base = policy.rounding_base();
    for cell in &answer.cells {
        let e = exact
            .get(cell.key.as_slice())
            .unwrap_or_else(|| panic!("released cell {:?} not in the table", cell.key));
        let Some(v) = cell.value.released() else {
            continue;
        };
        let x = e.value.unsigned_abs();
        assert!(
            x >= policy.min_count() && e.contributors >= policy.min_contributors(),
            "cell {:?} released below the policy",
            cell.key
        );
        assert!(
            v >= policy.min_count(),
            "cell {:?} released below min_count",
            cell.key
        );
        assert!(
            v.abs_diff(x) <= deviation + base,
            "cell {:?} released too far from its value",
            cell.key
        );
        if base > 1 {
            assert_eq!(v % base, 0, "cell {:?} not rounded", cell.key);
        }
        if table.unit.is_magnitude() {
            let [x1, x2] = e.largest;
            let rest = i128::from(e.value - x1 - x2);
            assert!(
                100 * rest >= i128::from(policy.dominance_p()) * i128::from(x1),
                "dominated cell {:?} released",
                cell.key
            );
        }
    }
    if table.cells.len() > AUDIT_MAX_CELLS {
        return;
    }
    let width = policy.protection_width();
    let strong = audit_with_exact(table, answer);
    assert_eq!(strong.unprotected(width).count(), 0, "{strong:?}");
    for c in &strong.cells {
        let truth = exact
            .get(c.key.as_slice())
            .map(|e| e.value.unsigned_abs())
            .unwrap_or_default();
        if let Some(i) = c.interval {
            assert!(
                i.lo <= truth && i.hi.is_none_or(|hi| truth <= hi),
                "the auditor's interval {i:?} for {:?} misses the value {truth}",
                c.key
            );
        }
    }
    let public = audit_intervals(answer, &table.additive);
    assert_eq!(public.unprotected(width).count(), 0, "{public:?}");
}

/// The seed corpus of `query_envelope`, by file name, written as
/// `UNIT [by DIM,..] [where DIM=V,..]... [from P] [to P] [margins]`: every unit, with and without
/// margins, filters and period bounds, multi-valued dimensions, and queries the parser refuses.
const QUERY_SEEDS: &[(&str, &str)] = &[
    ("seed-incidents-total", "incidents"),
    ("seed-incidents-year-margins", "incidents by year margins"),
    (
        "seed-migrants-quarter-route",
        "migrants by quarter,route where origin=MMR,AFG,KHM from 2022 to 2023-Q2 margins",
    ),
    (
        "seed-smugglers-role-sex",
        "smugglers by smuggler_role,sex where smuggler_stage=arrested,suspected margins",
    ),
    (
        "seed-deaths-month",
        "deaths by month from 2021-01 to 2021-12",
    ),
    ("seed-missing-origin", "missing by origin margins"),
    ("seed-fees-band", "fees by fee_band from 2023 margins"),
    (
        "seed-incidents-method-transit",
        "incidents by method,transit margins",
    ),
    (
        "seed-incidents-profile",
        "incidents by citizenship,sex,age_group to 2022 margins",
    ),
    (
        "seed-migrants-mode-place",
        "migrants by mode,place_type where mode=unknown,sea,land where year=2022,2023 margins",
    ),
    (
        "seed-incidents-destination",
        "incidents by destination where route=MMR>MYS,MMR>THA margins",
    ),
    ("seed-refused-unit", "people by year"),
    (
        "seed-refused-dimensions",
        "incidents by year,mode,method,sex",
    ),
    ("seed-refused-period", "incidents from 2024-05 to 2024-01"),
    ("seed-refused-filter", "deaths where sex=M"),
    ("seed-outside-data", "incidents by year from 2099 margins"),
];

/// Reads one of [`QUERY_SEEDS`].
fn seed_query(text: &str) -> RawQuery {
    let mut words = text.split_whitespace();
    let unit = words.next().unwrap_or_default();
    let (mut by, mut wheres, mut from, mut to, mut margins) = (None, Vec::new(), None, None, false);
    while let Some(w) = words.next() {
        match w {
            "by" => by = words.next(),
            "where" => wheres.extend(words.next().map(str::to_string)),
            "from" => from = words.next(),
            "to" => to = words.next(),
            "margins" => margins = true,
            other => panic!("seed query {text:?}: unexpected {other:?}"),
        }
    }
    RawQuery::from_cli(unit, by, &wheres, from, to, margins).expect("a well-formed seed query")
}

/// Encoded envelopes for the seed corpus of `query_envelope`, by file name.
pub fn query_seeds() -> Vec<(&'static str, Vec<u8>)> {
    QUERY_SEEDS
        .iter()
        .enumerate()
        .map(|(n, (name, text))| {
            let raw = seed_query(text);
            let env = pb::QueryEnvelope {
                query_id: format!("fuzz-seed-query-{n:04}"),
                issued_at_ms: 1_735_689_600_000,
                audience: NODE_COUNTRY.to_string(),
                issuer: "coordinator.example".to_string(),
                query: Some(pb::Query::from(raw)),
                regional: None,
            };
            (*name, env.encode_to_vec())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Records: what every parsed record must survive.

/// A record that passes [`IncidentRecord::check`] is written by the template writer and read back
/// unchanged, goes through JSON unchanged, and inserts without a store-level error.
fn accept(record: &IncidentRecord, tx: Option<&mut crate::store::ImportTx<'_>>) {
    if let Err(e) = record.check() {
        assert!(!e.to_string().is_empty());
        return;
    }
    let mut w = CsvWriter::new(Vec::new()).expect("writing to memory");
    w.write(record).expect("a checked record writes");
    let bytes = w.finish().expect("writing to memory");
    let mut r = CsvReader::new(bytes.as_slice()).expect("the writer's header reads");
    let back = r.read_record().expect("reading from memory");
    assert_eq!(
        back.map(|(_, b)| b),
        Some(Ok(record.clone())),
        "template round trip"
    );
    assert!(
        matches!(r.read_record(), Ok(None)),
        "one record written, more read"
    );
    let json = serde_json::to_string(record).expect("a record serializes");
    let back: IncidentRecord = serde_json::from_str(&json).expect("a record's JSON reads back");
    assert_eq!(&back, record, "JSON round trip");
    if let Some(tx) = tx {
        match tx.insert(record) {
            Ok(_) => {}
            Err(e) => assert!(e.is_row_error(), "a checked record fails in the store: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// import_csv

/// Reads bytes as a template CSV file: a header error, or rows that are each a rejection with a
/// reason or a record. A record that passes [`IncidentRecord::check`] round-trips through the
/// template writer and JSON, and inserts without a store-level error (in a transaction that is
/// rolled back).
pub fn import_csv(data: &[u8]) {
    let mut reader = match CsvReader::new(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let fx = FxRates::sample();
    let mut guard = import_store();
    let store = guard.as_mut().expect("import_store returns a store");
    let mut tx = store
        .begin_import("fuzz.csv", "", &fx)
        .expect("fuzzing: cannot start an import");
    let mut last_line = 1;
    loop {
        let row = match reader.read_record() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => panic!("reading from memory failed: {e}"),
        };
        let (line, result) = row;
        assert!(line > last_line, "line {line} after line {last_line}");
        last_line = line;
        match result {
            Ok(record) => accept(&record, Some(&mut tx)),
            Err(reason) => assert!(!reason.trim().is_empty(), "a rejection without a reason"),
        }
    }
    tx.rollback().expect("fuzzing: cannot roll back");
}

// ---------------------------------------------------------------------------------------------
// mapping_toml

/// Parses text as a mapping; if it holds a [`CSV_MARKER`] line, imports the rest as a CSV file
/// through it (into a scratch store), checking the report.
pub fn mapping_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, csv) = match text.split_once(CSV_MARKER) {
        Some((t, c)) => (t, Some(c)),
        None => (text, None),
    };
    let mapping = match Mapping::from_toml(toml) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let Some(csv) = csv else {
        return;
    };
    let mut guard = import_store();
    let store = guard.as_mut().expect("import_store returns a store");
    let path = scratch().join("mapped.csv");
    fs::write(&path, csv).expect("fuzzing: cannot write the input file");
    let opts = ImportOptions {
        mapping: Some(mapping),
        ..ImportOptions::default()
    };
    match import::import_file(store, &path, &FxRates::sample(), &opts) {
        Ok(report) => {
            let mut last = 1;
            for r in &report.rejections {
                assert!(
                    r.line > last,
                    "rejection on line {} after line {last}",
                    r.line
                );
                last = r.line;
                assert!(!r.reason.trim().is_empty(), "a rejection without a reason");
            }
            assert_eq!(report.rejected, report.rejections.len() as u64);
        }
        Err(ImportError::Store(e)) => panic!("a mapped file failed in the store: {e}"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

// ---------------------------------------------------------------------------------------------
// cell_syntax

/// A checked record with nothing in its optional fields, for [`cell_syntax`] to fill one at a time.
fn blank_record() -> IncidentRecord {
    IncidentRecord {
        kind: RecordKind::Incident,
        source_id: "FUZZ-1".into(),
        period: Month::new(2024, 1).expect("a valid month"),
        date: None,
        agency: None,
        country: NODE_COUNTRY.parse().expect("a valid country code"),
        place_type: None,
        mode: None,
        dead: 0,
        missing: 0,
        route: Vec::new(),
        corridor: None,
        methods: BTreeSet::new(),
        fees: Vec::new(),
        migrants: Vec::new(),
        smugglers: Vec::new(),
        note: None,
    }
}

/// Runs every template cell parser over the text (the route parser with the text's first line as
/// `route` and the rest as `route_modes`), the period parser and every query dimension's value
/// parser. Whatever parses round-trips: through a record (template writer and reader, JSON), or
/// through its display form.
pub fn cell_syntax(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (route, modes) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(legs) = parse_route(route, modes) {
        assert!(
            legs.windows(2).all(|w| w[0].to == w[1].from),
            "legs do not join up"
        );
        assert_eq!(legs.len(), route.split('>').count() - 1);
        accept(
            &IncidentRecord {
                route: legs,
                ..blank_record()
            },
            None,
        );
    }
    if let Ok(methods) = parse_methods(text) {
        accept(
            &IncidentRecord {
                methods,
                ..blank_record()
            },
            None,
        );
    }
    if let Ok(fees) = parse_fees(text) {
        assert!(fees.iter().all(|f| f.amount.is_finite() && f.amount >= 0.0));
        accept(
            &IncidentRecord {
                fees,
                ..blank_record()
            },
            None,
        );
    }
    if let Ok(migrants) = parse_migrants(text) {
        accept(
            &IncidentRecord {
                migrants,
                ..blank_record()
            },
            None,
        );
    }
    if let Ok(smugglers) = parse_smugglers(text) {
        accept(
            &IncidentRecord {
                smugglers,
                ..blank_record()
            },
            None,
        );
    }
    if let Ok(n) = parse_whole(text) {
        assert_eq!(parse_whole(&n.to_string()), Ok(n));
    }
    if let Ok(a) = parse_amount(text) {
        assert!(a.is_finite() && a >= 0.0);
        assert_eq!(parse_amount(&a.to_string()), Ok(a));
    }
    if let Ok(p) = text.parse::<PeriodSpec>() {
        assert!(p.first_month() <= p.last_month());
    }
    if let Ok(m) = text.parse::<Month>() {
        assert_eq!(m.to_string().parse::<Month>().ok(), Some(m));
        assert_eq!(Month::from_int(m.to_int()), Some(m));
    }
    if let Ok(c) = text.parse::<Country>() {
        assert_eq!(c.as_str().parse::<Country>().ok(), Some(c));
    }
    for d in Dimension::ALL {
        if let Ok(v) = d.parse_value(text) {
            let shown = v.to_string();
            assert_eq!(d.parse_value(&shown), Ok(v), "{d} value {shown:?}");
        }
    }
}
