//! The column engine against the SQL path: random synthetic stores, random queries of every
//! shape the node accepts (units, dimensions, filters, period windows, margins, zCDP
//! restrictions); the two must give the same cells, field for field, before any disclosure step.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vrs_core::period::Month;
use vrs_core::query::{Dimension, Query, QueryLimits, RawQuery, Unit};

use super::{Engine, engine_for, groupby};
use crate::disclosure::{Bounds, ExactCell};
use crate::fx::FxRates;
use crate::query::{PlanError, Restriction, aggregate_cells};
use crate::store::Store;
use crate::synth::{self, SynthConfig};

/// A synthetic store of `incidents`, with statistics rows, corridors and missing codes mixed in
/// (the generator makes none of them), so that every branch of the counting rules is exercised.
fn store(dir: &std::path::Path, incidents: u64, seed: u64) -> Store {
    let mut store = Store::create(dir, "THA".parse().unwrap()).unwrap();
    let fx = FxRates::sample();
    let mut cfg = SynthConfig::new("THA".parse().unwrap(), incidents, seed);
    cfg.months = 18;
    let mut tx = store.begin_import("synthetic", "", &fx).unwrap();
    for r in synth::generate(&cfg) {
        tx.insert(&r).unwrap();
    }
    tx.commit(Default::default()).unwrap();
    let corridors = Dimension::Corridor.closed_values().unwrap();
    let conn = store.conn();
    conn.execute(
        "UPDATE incident SET corridor = ?1 WHERE id % 3 = 0",
        [&corridors[0]],
    )
    .unwrap();
    conn.execute(
        "UPDATE incident SET corridor = ?1 WHERE id % 7 = 1",
        [&corridors[1]],
    )
    .unwrap();
    conn.execute("UPDATE incident SET mode = NULL WHERE id % 5 = 0", [])
        .unwrap();
    conn.execute("UPDATE incident SET place_type = NULL WHERE id % 4 = 1", [])
        .unwrap();
    conn.execute("UPDATE incident SET kind = 1 WHERE id % 11 = 0", [])
        .unwrap();
    store
}

/// Values a filter may name: those in the store (display form) and a valid one that may not be.
fn values(store: &Store, d: Dimension) -> Vec<String> {
    let sql = match d {
        Dimension::Year => "SELECT DISTINCT printf('%04d', year) FROM incident",
        Dimension::Quarter => {
            "SELECT DISTINCT printf('%04d-Q%d', quarter / 10, quarter % 10) FROM incident"
        }
        Dimension::Month => {
            "SELECT DISTINCT printf('%04d-%02d', month / 100, month % 100) FROM incident"
        }
        Dimension::Origin => "SELECT DISTINCT origin FROM incident",
        Dimension::Destination => "SELECT DISTINCT destination FROM incident",
        Dimension::Route => "SELECT DISTINCT origin || '>' || destination FROM incident",
        Dimension::Corridor => "SELECT DISTINCT corridor FROM incident WHERE corridor IS NOT NULL",
        Dimension::Mode => "SELECT DISTINCT mode FROM incident WHERE mode IS NOT NULL",
        Dimension::PlaceType => {
            "SELECT DISTINCT place_type FROM incident WHERE place_type IS NOT NULL"
        }
        Dimension::Transit => "SELECT DISTINCT country FROM transit",
        Dimension::Method => "SELECT DISTINCT code FROM method",
        Dimension::Citizenship => "SELECT DISTINCT citizenship FROM migrant_group",
        Dimension::Sex => "SELECT DISTINCT sex FROM migrant_group",
        Dimension::AgeGroup => "SELECT DISTINCT age_group FROM migrant_group",
        Dimension::SmugglerRole => "SELECT DISTINCT role FROM smuggler",
        Dimension::SmugglerStage => "SELECT DISTINCT stage FROM smuggler",
        Dimension::FeeBand => "SELECT DISTINCT band FROM fee",
    };
    let mut stmt = store.conn().prepare(sql).unwrap();
    let mut out: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out.sort();
    match d {
        Dimension::Year => out.push("2030".into()),
        Dimension::Route => out.push("AFG>NZL".into()),
        _ => {
            if let Some(v) = d.closed_values().and_then(|v| v.last().cloned()) {
                out.push(v);
            }
        }
    }
    out
}

fn random_query(rng: &mut ChaCha8Rng, store: &Store) -> Option<Query> {
    let unit = *Unit::ALL.choose(rng)?;
    let mut dims: Vec<Dimension> = Dimension::ALL.to_vec();
    dims.shuffle(rng);
    let k = rng.random_range(0..=3);
    let group_by: Vec<String> = dims[..k].iter().map(|d| d.code().to_string()).collect();
    let mut filters = Vec::new();
    for _ in 0..rng.random_range(0..=2) {
        let d = *Dimension::ALL.choose(rng)?;
        let vs = values(store, d);
        let n = rng.random_range(1..=3.min(vs.len()));
        let picked: Vec<String> = vs.choose_multiple(rng, n).cloned().collect();
        filters.push((d.code().to_string(), picked));
    }
    let month = |rng: &mut ChaCha8Rng| format!("2021-{:02}", rng.random_range(1..=12));
    let period_from = if rng.random_bool(0.3) {
        month(rng)
    } else {
        String::new()
    };
    let period_to = if rng.random_bool(0.3) {
        format!("2022-{:02}", rng.random_range(1..=6))
    } else {
        String::new()
    };
    let raw = RawQuery {
        unit: unit.code().to_string(),
        group_by,
        filters,
        period_from,
        period_to,
        margins: rng.random_bool(0.3),
        rho_micro: 0,
    };
    // Shapes the node refuses (a dimension not for the unit, a duplicate) are skipped.
    Query::parse(&raw, &QueryLimits::default()).ok()
}

fn random_restriction(rng: &mut ChaCha8Rng) -> Restriction {
    if rng.random_bool(0.5) {
        return Restriction::default();
    }
    let first = Month::new(2021, rng.random_range(1..=12)).unwrap();
    let last = Month::new(2022, rng.random_range(1..=12)).unwrap();
    Restriction {
        bounds: Some(Bounds {
            transit: rng.random_range(1..=3),
            method: rng.random_range(1..=3),
            migrant_group: rng.random_range(1..=3),
            smuggler: rng.random_range(1..=3),
            fee: rng.random_range(1..=3),
        }),
        months: rng.random_bool(0.7).then_some((first, last)),
    }
}

/// An exact cell's fields: key, value, contributors, two largest, cell key.
type Fields = (Vec<String>, i64, u64, [i64; 2], u64);

/// Every field of every cell, in one canonical order.
fn canonical(cells: Vec<ExactCell>) -> Vec<Fields> {
    let mut v: Vec<_> = cells
        .into_iter()
        .map(|c| (c.key, c.value, c.contributors, c.largest, c.cell_key))
        .collect();
    v.sort();
    v
}

fn run(
    store: &Store,
    q: &Query,
    r: &Restriction,
    engine: Option<Engine>,
) -> Option<Vec<ExactCell>> {
    match aggregate_cells(store, q, r, engine) {
        Ok(t) => Some(t.cells),
        Err(PlanError::Query(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_column_engine_gives_the_cells_of_the_sql_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let (mut covered, mut fallbacks, mut nonempty) = (0, 0, 0);
    for (size, seed) in [(400, 1), (1_500, 2), (3_000, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), size, seed);
        let mut asked = 0;
        while asked < 150 {
            let Some(q) = random_query(&mut rng, &store) else {
                continue;
            };
            asked += 1;
            let r = random_restriction(&mut rng);
            let chosen = engine_for(&store, &q).unwrap();
            match (&chosen, groupby::covers(&q)) {
                (Engine::Columns(_), true) => covered += 1,
                (Engine::Sql, false) => fallbacks += 1,
                (e, c) => panic!("covers = {c} but the engine chosen is {e:?} for {q:?}"),
            }
            let sql = run(&store, &q, &r, Some(Engine::Sql));
            let chosen = run(&store, &q, &r, Some(chosen));
            assert_eq!(sql.is_some(), chosen.is_some(), "{q:?}");
            if let (Some(sql), Some(chosen)) = (sql, chosen) {
                nonempty += usize::from(!sql.is_empty());
                assert_eq!(canonical(sql), canonical(chosen), "{q:?} {r:?}");
            }
        }
    }
    // The comparison means something only if both paths ran on many non-trivial answers.
    assert!(covered >= 100, "{covered} queries covered");
    assert!(fallbacks >= 100, "{fallbacks} fallbacks");
    assert!(nonempty >= 200, "{nonempty} non-empty answers");
}

#[test]
fn the_headline_shapes_are_covered_and_the_multi_valued_ones_are_not() {
    let q = |unit: &str, by: &[&str], filters: &[(&str, &str)]| {
        let raw = RawQuery {
            unit: unit.into(),
            group_by: by.iter().map(|d| d.to_string()).collect(),
            filters: filters
                .iter()
                .map(|(d, v)| (d.to_string(), vec![v.to_string()]))
                .collect(),
            period_from: String::new(),
            period_to: String::new(),
            margins: false,
            rho_micro: 0,
        };
        Query::parse(&raw, &QueryLimits::default()).unwrap()
    };
    for covered in [
        q("incidents", &["origin", "quarter"], &[]),
        q(
            "incidents",
            &["origin", "quarter", "mode"],
            &[("year", "2021")],
        ),
        q("migrants", &["citizenship", "sex", "age_group"], &[]),
        q("deaths", &["route"], &[("mode", "sea")]),
    ] {
        assert!(groupby::covers(&covered), "{covered:?}");
    }
    let method = Dimension::Method.closed_values().unwrap()[0].clone();
    for sql in [
        q("incidents", &["transit"], &[]),
        q("incidents", &["sex"], &[]),
        q("incidents", &["quarter"], &[("method", &method)]),
        q("smugglers", &["smuggler_role"], &[]),
        q("fees", &["fee_band"], &[]),
    ] {
        assert!(!groupby::covers(&sql), "{sql:?}");
    }
}

#[test]
fn an_import_after_the_first_query_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(dir.path(), 500, 4);
    let raw = RawQuery {
        unit: "migrants".into(),
        group_by: vec!["quarter".into(), "sex".into()],
        filters: Vec::new(),
        period_from: String::new(),
        period_to: String::new(),
        margins: true,
        rho_micro: 0,
    };
    let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
    let none = Restriction::default();
    let before = run(&store, &q, &none, None).unwrap();
    assert!(matches!(
        engine_for(&store, &q).unwrap(),
        Engine::Columns(_)
    ));
    let fx = FxRates::sample();
    let mut cfg = SynthConfig::new("THA".parse().unwrap(), 300, 99);
    cfg.months = 18;
    let mut tx = store.begin_import("more", "", &fx).unwrap();
    for mut r in synth::generate(&cfg) {
        r.source_id = format!("more-{}", r.source_id);
        tx.insert(&r).unwrap();
    }
    tx.commit(Default::default()).unwrap();
    let after = run(&store, &q, &none, None).unwrap();
    let sql = run(&store, &q, &none, Some(Engine::Sql)).unwrap();
    assert_ne!(canonical(before), canonical(after.clone()));
    assert_eq!(canonical(sql), canonical(after));
}
