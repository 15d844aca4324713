//! A determined coordinator against one node, through the real query path: signed `Aggregate`
//! calls over mutual TLS, the node's own planning, ledger, audit and release. Each attack of
//! issue 11 is played against a node with the DEFAULT privacy policy until the node refuses
//! (its budget is spent) or a bounded number of queries, and then — the same code, unchanged —
//! against a node in the older `rules_v1` mode, which must leak. A test that only ever passed
//! would prove nothing; the v1 run shows that these attacks and their judges do catch a leak.
//!
//! What the attacker knows is everything a node publishes: its policy (`Describe`), and for
//! every released value its noise model (zCDP: σ of a discrete Gaussian; v1: the bound
//! `±max_deviation` of cell-key noise and the exact meaning of suppression reasons and of an
//! omitted cell). The tests also hold the truth (they read the node's own store) and judge:
//!
//! - **targets**: citizenship × month cells whose true value is small (1–9);
//! - **recovery**: the attacker's estimate, rounded and clamped at 0, equals the truth;
//! - **certification**: the attacker can prove the value — the set of integers consistent with
//!   every answer under the published noise is one integer (v1: intervals from the hard bound
//!   ±D; zCDP: the 1 − 10⁻⁹ Gaussian interval of the attacker's estimator).
//!
//! **The bar** is what rounding ONE release of the cell bought with the cell's whole quarter
//! budget would give: the estimate's error is then Gaussian with σ_b = Δ₂ / √(2ρ_quarter)
//! (Δ₂ = 1: one person, one cell), and P(exact) = P(|N(0, σ_b²)| < ½). No attacker does better
//! than that with an unbiased estimator: the Fisher information a set of Gaussian releases
//! carries about one unit's cell is Σ_q a_q²/σ_q² ≤ Σ_q 2ρ_q ≤ 2ρ_quarter (a_q² ≤ Δ₂,q² and
//! σ_q² = Δ₂,q² / 2ρ_q), so by Cramér–Rao its variance is at least σ_b². The zCDP node must keep
//! the attacker's recovery rate at or below that bar plus a one-sided binomial slack of three
//! standard errors over the targets (a false alarm about once in 740 runs for an attacker as
//! good as the bar; the attackers here are far weaker, see the printed figures), and no value
//! may be certified. The v1 node must exceed the same bar by the same slack, or certify cells.
//!
//! Figures are printed with `eprintln!` (run with `--nocapture`) for docs/THREAT_MODEL.md.
//! Every node here gets a rate limit it will not reach: the privacy budget, not the rate limit,
//! is what must stop the attacker.

use std::collections::{BTreeMap, BTreeSet};

use vrs_core::query::{Query, QueryLimits, RawQuery};
use vrs_node::disclosure::zcdp::normal_upper_tail;
use vrs_node::query::aggregate;
use vrs_node::store::Store;
use vrs_proto::pb;
use vrs_tests::{NodeClient, RULES_V1, Signer, TestFederation, reason, spec_with};

const COUNTRY: &str = "THA";
/// A few hundred synthetic incidents over 48 months: about eight a month, so most
/// citizenship × month cells are small.
const INCIDENTS: u64 = 3000;
const SEED: u64 = 7;
/// Appended to `[privacy]`: opens `[budget]` with limits no attack here reaches.
const NO_RATE_LIMIT: &str =
    "\n[budget]\nrate_per_minute = 1000000\nburst = 1000000\ndaily_queries = 10000000\n";
/// Two-sided normal quantile for 1 − 10⁻⁹ (Φ⁻¹(1 − 5·10⁻¹⁰)).
const Z_CERTIFY: f64 = 6.109;
/// One-sided slack over the bar, in binomial standard errors.
const SLACK_SE: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// A tiny deterministic generator (SplitMix64): the attack's own choices, reproducible.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

// ---------------------------------------------------------------------------------------------
// The node under attack, as the attacker sees it.

/// The published noise model of a node.
#[derive(Debug, Clone, Copy)]
enum Model {
    /// zCDP: budget per quarter and the per-query ρ range, micro-ρ.
    Zcdp {
        rho_per_quarter_micro: u64,
        min_rho_micro: u64,
        max_rho_micro: u64,
    },
    /// Rules mode: cell-key noise within ±`max_deviation`, suppression below `min_count`.
    RulesV1 { max_deviation: u64 },
}

impl Model {
    fn name(&self) -> &'static str {
        match self {
            Model::Zcdp { .. } => "zCDP",
            Model::RulesV1 { .. } => "rules_v1",
        }
    }

    /// The ρ an attacker planning `queries` answers per quarter spends on each, so that the
    /// node refuses about three quarters of the way through its plan (rules mode: none).
    fn rho_for(&self, queries: usize) -> u64 {
        match *self {
            Model::Zcdp {
                rho_per_quarter_micro,
                min_rho_micro,
                max_rho_micro,
            } => (rho_per_quarter_micro * 4 / (3 * queries as u64))
                .clamp(min_rho_micro, max_rho_micro),
            Model::RulesV1 { .. } => 0,
        }
    }

    /// Variance of the noise of a value released under this model with published σ `sigma`.
    fn variance(&self, sigma: f64) -> f64 {
        match *self {
            Model::Zcdp { .. } => sigma * sigma,
            // Triangular cell-key noise: P(j) ∝ D + 1 − |j| on [−D, D].
            Model::RulesV1 { max_deviation } => {
                let d = max_deviation as i64;
                let w: i64 = (-d..=d).map(|j| d + 1 - j.abs()).sum();
                (-d..=d)
                    .map(|j| (j * j * (d + 1 - j.abs())) as f64)
                    .sum::<f64>()
                    / w as f64
            }
        }
    }
}

/// One released cell as the attacker reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// A value with noise of this variance.
    Value { value: f64, variance: f64 },
    /// Rules mode: the cell is not listed, so it is exactly zero.
    ExactZero,
    /// Withheld, with the node's reason.
    Suppressed(i32),
}

/// One answer's cells by key.
type Cells = BTreeMap<Vec<String>, Seen>;

/// What one `Aggregate` call gave the attacker.
enum Asked {
    Cells(Cells),
    /// `PRIVACY_BUDGET_EXHAUSTED`: a touched quarter is spent.
    Exhausted,
}

struct Victim {
    fed: TestFederation,
    client: NodeClient,
    signer: Signer,
    model: Model,
    queries: usize,
    refusals: usize,
}

impl Victim {
    /// A node with the default `[privacy]` section plus `privacy`.
    async fn start(privacy: &str) -> Victim {
        Victim::start_with(privacy, INCIDENTS, SEED).await
    }

    async fn start_with(privacy: &str, incidents: u64, seed: u64) -> Victim {
        let text = format!("{privacy}{NO_RATE_LIMIT}");
        let fed = TestFederation::start(&[spec_with(COUNTRY, incidents, seed, "", &text)]).await;
        let client = fed.coordinator_client(COUNTRY).await;
        let signer = fed.signer();
        let policy = client.describe().await.unwrap().policy.unwrap();
        let model = match policy.privacy {
            Some(p) if policy.mode == pb::ProtectionMode::Zcdp as i32 => Model::Zcdp {
                rho_per_quarter_micro: p.caller_rho_per_quarter_micro,
                min_rho_micro: p.min_rho_micro,
                max_rho_micro: p.max_rho_micro,
            },
            _ => Model::RulesV1 {
                max_deviation: u64::from(policy.perturbation_max_deviation),
            },
        };
        Victim {
            fed,
            client,
            signer,
            model,
            queries: 0,
            refusals: 0,
        }
    }

    /// The exact table, read from the node's own store (the judge's view, never the attacker's).
    fn truth(&self, unit: &str, by: &[&str], from: &str, to: &str) -> BTreeMap<Vec<String>, i64> {
        let store = Store::open_read_only(&self.fed.node_dir(COUNTRY)).unwrap();
        let raw = RawQuery {
            unit: unit.into(),
            group_by: by.iter().map(|s| s.to_string()).collect(),
            period_from: from.into(),
            period_to: to.into(),
            ..RawQuery::default()
        };
        let q = Query::parse(&raw, &QueryLimits::default()).unwrap();
        aggregate(&store, &q)
            .unwrap()
            .cells
            .into_iter()
            .map(|c| (c.key, c.value))
            .collect()
    }

    /// One signed `Aggregate` call.
    async fn ask(&mut self, q: pb::Query) -> Asked {
        self.queries += 1;
        let request = self.signer.sign(&self.signer.envelope(COUNTRY, q));
        match self.client.aggregate(request).await {
            Ok(r) => {
                let mut cells = BTreeMap::new();
                for c in r.cells {
                    let seen = match c.outcome {
                        Some(pb::cell::Outcome::Noisy(v)) => Seen::Value {
                            value: v as f64,
                            variance: self.model.variance(c.sigma),
                        },
                        Some(pb::cell::Outcome::Value(v)) => Seen::Value {
                            value: v as f64,
                            variance: self.model.variance(0.0),
                        },
                        Some(pb::cell::Outcome::Suppressed(reason)) => Seen::Suppressed(reason),
                        None => panic!("a cell without an outcome: {:?}", c.key),
                    };
                    cells.insert(c.key, seen);
                }
                Asked::Cells(cells)
            }
            Err(status) if reason(&status).as_deref() == Some("PRIVACY_BUDGET_EXHAUSTED") => {
                self.refusals += 1;
                Asked::Exhausted
            }
            Err(status) => panic!("unexpected refusal: {status:?}"),
        }
    }

    /// What the attacker reads for `key` in an answer: in rules mode an omitted cell is an
    /// exact zero; in zCDP mode every cell of the universe is listed.
    fn seen(cells: &BTreeMap<Vec<String>, Seen>, key: &[String]) -> Seen {
        cells.get(key).copied().unwrap_or(Seen::ExactZero)
    }

    async fn stop(self) {
        drop(self.client);
        self.fed.stop().await;
    }
}

fn filter(dimension: &str, values: &[String]) -> pb::Filter {
    pb::Filter {
        dimension: dimension.into(),
        values: values.to_vec(),
    }
}

/// The months `from..=to` as `YYYY-MM` labels.
fn months(from: (i32, u32), to: (i32, u32)) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = from;
    while (y, m) <= to {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The attacker's algebra: weighted least squares with its estimator's weights, and intervals.

/// One linear observation `Σ_{j ∈ cols} x_j + noise = value`.
#[derive(Debug, Clone)]
struct Obs {
    cols: Vec<usize>,
    value: f64,
    variance: f64,
    /// The noise is bounded by ±this (rules mode), or Gaussian (`None`).
    bound: Option<f64>,
}

/// A linear estimate of one unknown with what the published noise model says about its error.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    value: f64,
    /// Standard error from the published variances.
    se: f64,
    /// Worst-case error from the published bounds (rules mode); infinite when any observation
    /// used has unbounded (Gaussian) noise.
    worst: f64,
}

/// Weighted least squares for `n` unknowns (a tiny ridge keeps unobserved unknowns at 0).
fn least_squares(n: usize, obs: &[Obs]) -> Vec<Estimate> {
    let mut m = vec![vec![0.0f64; n]; n];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1e-9;
    }
    let mut b = vec![0.0f64; n];
    for o in obs {
        let w = 1.0 / o.variance;
        for &j in &o.cols {
            b[j] += w * o.value;
            for &k in &o.cols {
                m[j][k] += w;
            }
        }
    }
    let inv = invert(m);
    (0..n)
        .map(|j| {
            let value: f64 = (0..n).map(|k| inv[j][k] * b[k]).sum();
            let mut worst = 0.0f64;
            for o in obs {
                // Weight of this observation in the estimate of x_j.
                let g: f64 = o.cols.iter().map(|&k| inv[j][k]).sum::<f64>() / o.variance;
                worst += match o.bound {
                    Some(d) => g.abs() * d,
                    None if g.abs() > 1e-12 => f64::INFINITY,
                    None => 0.0,
                };
            }
            Estimate {
                value,
                se: inv[j][j].max(0.0).sqrt(),
                worst,
            }
        })
        .collect()
}

/// Least squares under "counts are not negative" (the bounded least squares of issue 11): an
/// unknown estimated below zero is pinned at zero by a pseudo-observation and the rest solved
/// again, a few rounds. The pins are the attacker's prior, not facts the node released, so they: the estimates returned for certification are the unpinned ones.
/// Returns the attacker's values (pinned) and the plain estimates (for certification).
fn nonneg_least_squares(n: usize, obs: &[Obs]) -> (Vec<f64>, Vec<Estimate>) {
    let plain = least_squares(n, obs);
    let mut pinned = vec![false; n];
    let mut est = plain.clone();
    for _ in 0..10 {
        let mut changed = false;
        for (j, e) in est.iter().enumerate() {
            if e.value < 0.0 && !pinned[j] {
                pinned[j] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut with_pins = obs.to_vec();
        with_pins.extend((0..n).filter(|&j| pinned[j]).map(|j| Obs {
            cols: vec![j],
            value: 0.0,
            variance: 1e-4,
            bound: None,
        }));
        est = least_squares(n, &with_pins);
    }
    (est.iter().map(|e| e.value).collect(), plain)
}

/// Gauss–Jordan inverse of a symmetric positive definite matrix.
fn invert(mut a: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        a[col].iter_mut().for_each(|x| *x /= p);
        inv[col].iter_mut().for_each(|x| *x /= p);
        let (prow, pinv) = (a[col].clone(), inv[col].clone());
        for (r, (row, irow)) in a.iter_mut().zip(inv.iter_mut()).enumerate() {
            let f = row[col];
            if r == col || f == 0.0 {
                continue;
            }
            row.iter_mut().zip(&prow).for_each(|(x, y)| *x -= f * y);
            irow.iter_mut().zip(&pinv).for_each(|(x, y)| *x -= f * y);
        }
    }
    inv
}

/// An integer interval `[lo, hi]` of values consistent with the answers.
#[derive(Debug, Clone, Copy)]
struct Feasible {
    lo: i64,
    hi: i64,
}

impl Feasible {
    fn any() -> Feasible {
        Feasible {
            lo: 0,
            hi: i64::MAX,
        }
    }

    /// Intersects with the reals `[a, b]`.
    fn within(self, a: f64, b: f64) -> Feasible {
        let lo = if a.is_finite() { a.ceil() as i64 } else { 0 };
        let hi = if b.is_finite() {
            b.floor() as i64
        } else {
            i64::MAX
        };
        Feasible {
            lo: self.lo.max(lo),
            hi: self.hi.min(hi),
        }
    }

    fn single(self) -> Option<i64> {
        (self.lo == self.hi).then_some(self.lo)
    }
}

/// The set of integers an estimate proves under the published noise: rules mode, the hard
/// interval `x̂ ± worst`; zCDP, the 1 − 10⁻⁹ Gaussian interval `x̂ ± z·se`.
fn certify(model: Model, e: Estimate) -> Feasible {
    let half = match model {
        Model::RulesV1 { .. } => e.worst,
        Model::Zcdp { .. } => Z_CERTIFY * e.se,
    };
    Feasible::any().within(e.value - half, e.value + half)
}

// ---------------------------------------------------------------------------------------------
// Judging

/// What one attack achieved against one node.
#[derive(Debug, Clone)]
struct Outcome {
    attack: &'static str,
    mode: &'static str,
    queries: usize,
    refusals: usize,
    targets: usize,
    recovered: usize,
    certified: usize,
    /// Certified values that are wrong: the certifier itself is broken if this is not 0.
    certified_wrong: usize,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.recovered as f64 / self.targets.max(1) as f64
    }
}

/// Scores estimates of the targets (truth 1–9) and prints the figures.
fn score(attack: &'static str, victim: &Victim, guesses: &[(i64, f64, Feasible)]) -> Outcome {
    let mut o = Outcome {
        attack,
        mode: victim.model.name(),
        queries: victim.queries,
        refusals: victim.refusals,
        targets: 0,
        recovered: 0,
        certified: 0,
        certified_wrong: 0,
    };
    for &(truth, estimate, feasible) in guesses {
        if !(1..=9).contains(&truth) {
            continue;
        }
        o.targets += 1;
        o.recovered += usize::from(estimate.max(0.0).round() as i64 == truth);
        if let Some(v) = feasible.single() {
            o.certified += 1;
            o.certified_wrong += usize::from(v != truth);
        }
    }
    o
}

/// P(|N(0, σ_b²)| < ½) with σ_b = 1/√(2ρ_quarter): rounding one release of a Δ₂ = 1 cell bought
/// with the quarter's whole budget.
fn bar(rho_per_quarter_micro: u64) -> f64 {
    let sigma_b = (1.0 / (2.0 * rho_per_quarter_micro as f64 / 1e6)).sqrt();
    1.0 - 2.0 * normal_upper_tail(0.5 / sigma_b)
}

/// Asserts that the zCDP node held and the rules-mode node leaked, and prints both.
fn judge(zcdp: &Outcome, v1: &Outcome, rho_per_quarter_micro: u64) {
    let p = bar(rho_per_quarter_micro);
    let allowed = |n: usize| p + SLACK_SE * (p * (1.0 - p) / n.max(1) as f64).sqrt();
    for o in [zcdp, v1] {
        eprintln!(
            "ATTACK {:<28} {:<8} queries {:>4} (refused {:>3})  targets {:>3}  exact {:>3} = {:>5.1} %  certified {:>3}  | bar {:.1} %, allowed ≤ {:.1} %",
            o.attack,
            o.mode,
            o.queries,
            o.refusals,
            o.targets,
            o.recovered,
            100.0 * o.rate(),
            o.certified,
            100.0 * p,
            100.0 * allowed(o.targets),
        );
        assert_eq!(
            o.certified_wrong, 0,
            "{o:?}: the certifier proved a wrong value"
        );
    }
    assert!(zcdp.targets >= 20, "too few targets to judge: {zcdp:?}");
    assert!(
        zcdp.refusals > 0,
        "the zCDP node must have stopped the attacker: {zcdp:?}"
    );
    assert!(
        zcdp.rate() <= allowed(zcdp.targets),
        "zCDP: the attacker beat the bar: {zcdp:?}"
    );
    assert_eq!(zcdp.certified, 0, "zCDP: a value was certified: {zcdp:?}");
    assert!(
        v1.rate() > allowed(v1.targets) || v1.certified > 0,
        "rules_v1: the attack found no leak, so it proves nothing: {v1:?}"
    );
}

/// Runs `attack` against a default zCDP node and a rules-mode node holding the same records.
async fn against_both<F>(attack: F, zcdp_privacy: &str) -> (Outcome, Outcome, u64)
where
    F: AsyncFn(&mut Victim) -> Outcome,
{
    let mut z = Victim::start(zcdp_privacy).await;
    let Model::Zcdp {
        rho_per_quarter_micro,
        ..
    } = z.model
    else {
        panic!("the default node is not in zCDP mode");
    };
    let oz = attack(&mut z).await;
    z.stop().await;
    let mut v = Victim::start(RULES_V1).await;
    let ov = attack(&mut v).await;
    v.stop().await;
    (oz, ov, rho_per_quarter_micro)
}

// ---------------------------------------------------------------------------------------------
// The attacks

/// Citizenships seen in the window (the attacker would know them from any released table).
fn citizenships(v: &Victim, from: &str, to: &str) -> Vec<String> {
    let t = v.truth("migrants", &["citizenship"], from, to);
    t.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k[0].clone())
        .collect()
}

/// Least-squares reconstruction: `migrants by month` with citizenship ∈ a random half-subset,
/// many times, then least squares per month for the citizenship × month table.
async fn reconstruction(v: &mut Victim) -> Outcome {
    const PLANNED: usize = 200;
    let (from, to) = ("2021-01", "2021-12");
    let cits = citizenships(v, from, to);
    let months = months((2021, 1), (2021, 12));
    let n = cits.len();
    let rho = v.model.rho_for(PLANNED);
    let mut rng = Rng(0x5EED_0001);
    let mut used: BTreeSet<Vec<usize>> = BTreeSet::new();
    let mut obs: Vec<Vec<Obs>> = vec![Vec::new(); months.len()];
    while v.queries < PLANNED {
        let subset: Vec<usize> = (0..n).filter(|_| rng.coin()).collect();
        if subset.is_empty() || subset.len() == n || !used.insert(subset.clone()) {
            continue;
        }
        let values: Vec<String> = subset.iter().map(|&j| cits[j].clone()).collect();
        let q = pb::Query {
            unit: "migrants".into(),
            group_by: vec!["month".into()],
            filters: vec![filter("citizenship", &values)],
            period_from: from.into(),
            period_to: to.into(),
            rho_micro: rho,
            ..pb::Query::default()
        };
        let Asked::Cells(cells) = v.ask(q).await else {
            break; // the budget is spent: nothing more to learn from this node
        };
        for (mi, m) in months.iter().enumerate() {
            if let Some(o) = observation(
                v.model,
                Victim::seen(&cells, std::slice::from_ref(m)),
                &subset,
            ) {
                obs[mi].push(o);
            }
        }
    }
    let truth = v.truth("migrants", &["citizenship", "month"], from, to);
    let mut guesses = Vec::new();
    for (mi, m) in months.iter().enumerate() {
        let (values, plain) = nonneg_least_squares(n, &obs[mi]);
        for (j, c) in cits.iter().enumerate() {
            let t = truth.get(&vec![c.clone(), m.clone()]).copied().unwrap_or(0);
            guesses.push((t, values[j], certify(v.model, plain[j])));
        }
    }
    score("least-squares reconstruction", v, &guesses)
}

/// An observation of `Σ_{cols} x` from one released cell, or `None` when it says nothing the
/// attacker's linear algebra can use (suppressed).
fn observation(model: Model, seen: Seen, cols: &[usize]) -> Option<Obs> {
    let bound = match model {
        Model::RulesV1 { max_deviation } => Some(max_deviation as f64),
        Model::Zcdp { .. } => None,
    };
    match seen {
        Seen::Value { value, variance } => Some(Obs {
            cols: cols.to_vec(),
            value,
            variance,
            bound,
        }),
        Seen::ExactZero => Some(Obs {
            cols: cols.to_vec(),
            value: 0.0,
            variance: 1e-4,
            bound: Some(0.0),
        }),
        // Rules mode: "below the threshold" is the exact fact 1 ≤ sum ≤ min_count − 1
        // (default 5): the middle of that range, within its half-width.
        Seen::Suppressed(r) if r == pb::SuppressionReason::BelowThreshold as i32 => Some(Obs {
            cols: cols.to_vec(),
            value: 2.5,
            variance: 1.25,
            bound: Some(1.5),
        }),
        Seen::Suppressed(_) => None,
    }
}

/// Averaged differencing: `r(A_i ∪ {c}) − r(A_i)` by month, with many distinct random
/// complements `A_i`, for a few target citizenships.
async fn differencing(v: &mut Victim) -> Outcome {
    const PAIRS: usize = 40;
    const TARGETS: usize = 4;
    let (from, to) = ("2021-01", "2021-12");
    let cits = citizenships(v, from, to);
    let months = months((2021, 1), (2021, 12));
    let truth = v.truth("migrants", &["citizenship", "month"], from, to);
    // Targets: the citizenships with the most small cells (the attacker's guess: minor ones).
    let mut ranked: Vec<(usize, String)> = cits
        .iter()
        .map(|c| {
            let small = months
                .iter()
                .filter(|m| {
                    let t = truth
                        .get(&vec![c.clone(), (*m).clone()])
                        .copied()
                        .unwrap_or(0);
                    (1..=9).contains(&t)
                })
                .count();
            (small, c.clone())
        })
        .collect();
    ranked.sort_by(|a, b| b.cmp(a));
    let targets: Vec<String> = ranked.into_iter().take(TARGETS).map(|(_, c)| c).collect();
    let rho = v.model.rho_for(2 * PAIRS * TARGETS);
    let mut rng = Rng(0x5EED_0002);
    // Per target and month: the differences seen, with their noise.
    let mut diffs: BTreeMap<(usize, usize), Vec<(f64, f64)>> = BTreeMap::new();
    let mut used: BTreeSet<Vec<String>> = BTreeSet::new();
    let by_month = |values: Vec<String>| pb::Query {
        unit: "migrants".into(),
        group_by: vec!["month".into()],
        filters: vec![filter("citizenship", &values)],
        period_from: from.into(),
        period_to: to.into(),
        rho_micro: rho,
        ..pb::Query::default()
    };
    'plan: for _ in 0..PAIRS {
        for (ti, c) in targets.iter().enumerate() {
            let others: Vec<&String> = cits.iter().filter(|o| *o != c).collect();
            let a: Vec<String> = loop {
                let a: Vec<String> = others
                    .iter()
                    .filter(|_| rng.coin())
                    .map(|s| (*s).clone())
                    .collect();
                let mut key = a.clone();
                key.push(c.clone());
                key.sort();
                if !a.is_empty() && used.insert(key) {
                    break a;
                }
            };
            let mut with = a.clone();
            with.push(c.clone());
            let Asked::Cells(r_with) = v.ask(by_month(with)).await else {
                break 'plan;
            };
            let Asked::Cells(r_without) = v.ask(by_month(a)).await else {
                break 'plan;
            };
            for (mi, m) in months.iter().enumerate() {
                let key = [m.clone()];
                let value = |s: Seen| match s {
                    Seen::Value { value, variance } => Some((value, variance)),
                    Seen::ExactZero => Some((0.0, 0.0)),
                    Seen::Suppressed(_) => None,
                };
                if let (Some(w), Some(wo)) = (
                    value(Victim::seen(&r_with, &key)),
                    value(Victim::seen(&r_without, &key)),
                ) {
                    diffs
                        .entry((ti, mi))
                        .or_default()
                        .push((w.0 - wo.0, w.1 + wo.1));
                }
            }
        }
    }
    let d = match v.model {
        Model::RulesV1 { max_deviation } => max_deviation as f64,
        Model::Zcdp { .. } => f64::INFINITY,
    };
    let mut guesses = Vec::new();
    for (ti, c) in targets.iter().enumerate() {
        for (mi, m) in months.iter().enumerate() {
            let t = truth.get(&vec![c.clone(), m.clone()]).copied().unwrap_or(0);
            let seen = diffs.get(&(ti, mi)).cloned().unwrap_or_default();
            if seen.is_empty() {
                guesses.push((t, 0.0, Feasible::any()));
                continue;
            }
            let k = seen.len() as f64;
            let mean = seen.iter().map(|x| x.0).sum::<f64>() / k;
            let se = (seen.iter().map(|x| x.1).sum::<f64>()).sqrt() / k;
            // Rules mode: every difference is within ±2D of the truth; intersect them all.
            let feasible = match v.model {
                Model::RulesV1 { .. } => seen.iter().fold(Feasible::any(), |f, x| {
                    f.within(x.0 - 2.0 * d, x.0 + 2.0 * d)
                }),
                Model::Zcdp { .. } => certify(
                    v.model,
                    Estimate {
                        value: mean,
                        se,
                        worst: f64::INFINITY,
                    },
                ),
            };
            guesses.push((t, mean, feasible));
        }
    }
    score("averaged differencing", v, &guesses)
}

#[tokio::test]
async fn least_squares_reconstruction_is_held_to_the_bar_and_leaks_in_rules_mode() {
    let (z, v1, rho) = against_both(reconstruction, "").await;
    judge(&z, &v1, rho);
}

#[tokio::test]
async fn averaged_differencing_is_held_to_the_bar_and_leaks_in_rules_mode() {
    let (z, v1, rho) = against_both(differencing, "").await;
    judge(&z, &v1, rho);
}

/// The citizenships with the most small (1–9) months in `truth` (the attacker's targets: the
/// minor nationalities whose counts v1 suppresses).
fn minor(
    truth: &BTreeMap<Vec<String>, i64>,
    cits: &[String],
    months: &[String],
    k: usize,
) -> Vec<String> {
    let mut ranked: Vec<(usize, String)> = cits
        .iter()
        .map(|c| {
            let small = months
                .iter()
                .filter(|m| {
                    let t = truth
                        .get(&vec![c.clone(), (*m).clone()])
                        .copied()
                        .unwrap_or(0);
                    (1..=9).contains(&t)
                })
                .count();
            (small, c.clone())
        })
        .collect();
    ranked.sort_by(|a, b| b.cmp(a));
    ranked.into_iter().take(k).map(|(_, c)| c).collect()
}

/// Period-window differencing: totals over many windows of months (quarters, years, random
/// stretches of 2–24 months, and the months themselves) for a few citizenships, solved by
/// least squares for the months: quarter − months, year − quarters, and every overlap between.
async fn period_windows(v: &mut Victim) -> Outcome {
    const PLANNED: usize = 450;
    const TARGETS: usize = 4;
    let (from, to) = ("2021-01", "2023-12");
    let months = months((2021, 1), (2023, 12));
    let cits = citizenships(v, from, to);
    let truth = v.truth("migrants", &["citizenship", "month"], from, to);
    let targets = minor(&truth, &cits, &months, TARGETS);
    // A window touches about three of the twelve quarters: plan the spend per quarter.
    let rho = v.model.rho_for(PLANNED / 4);
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for q in 0..12 {
        windows.push((3 * q, 3 * q + 2));
    }
    for y in 0..3 {
        windows.push((12 * y, 12 * y + 11));
    }
    let mut rng = Rng(0x5EED_0003);
    let mut seen_windows: BTreeSet<(usize, usize)> = windows.iter().copied().collect();
    let mut tries = 0;
    while windows.len() < PLANNED - 1 && tries < 100 * PLANNED {
        tries += 1;
        let len = 2 + rng.below(23) as usize;
        let a = rng.below((months.len() - len + 1) as u64) as usize;
        if seen_windows.insert((a, a + len - 1)) {
            windows.push((a, a + len - 1));
        }
    }
    let mut obs: Vec<Vec<Obs>> = vec![Vec::new(); targets.len()];
    // The months themselves, in one query (v1 suppresses the small ones).
    let q = pb::Query {
        unit: "migrants".into(),
        group_by: vec!["citizenship".into(), "month".into()],
        filters: vec![filter("citizenship", &targets)],
        period_from: from.into(),
        period_to: to.into(),
        rho_micro: rho,
        ..pb::Query::default()
    };
    if let Asked::Cells(cells) = v.ask(q).await {
        for (ti, c) in targets.iter().enumerate() {
            for (mi, m) in months.iter().enumerate() {
                let seen = Victim::seen(&cells, &[c.clone(), m.clone()]);
                if let Some(o) = observation(v.model, seen, &[mi]) {
                    obs[ti].push(o);
                }
            }
        }
    }
    let mut refused_in_a_row = 0;
    for &(a, b) in &windows {
        if refused_in_a_row >= 20 {
            break; // every quarter is spent
        }
        let q = pb::Query {
            unit: "migrants".into(),
            group_by: vec!["citizenship".into()],
            filters: vec![filter("citizenship", &targets)],
            period_from: months[a].clone(),
            period_to: months[b].clone(),
            rho_micro: rho,
            ..pb::Query::default()
        };
        let Asked::Cells(cells) = v.ask(q).await else {
            refused_in_a_row += 1;
            continue;
        };
        refused_in_a_row = 0;
        let cols: Vec<usize> = (a..=b).collect();
        for (ti, c) in targets.iter().enumerate() {
            if let Some(o) = observation(
                v.model,
                Victim::seen(&cells, std::slice::from_ref(c)),
                &cols,
            ) {
                obs[ti].push(o);
            }
        }
    }
    let mut guesses = Vec::new();
    for (ti, c) in targets.iter().enumerate() {
        let (values, plain) = nonneg_least_squares(months.len(), &obs[ti]);
        for (mi, m) in months.iter().enumerate() {
            let t = truth.get(&vec![c.clone(), m.clone()]).copied().unwrap_or(0);
            guesses.push((t, values[mi], certify(v.model, plain[mi])));
        }
    }
    score("period windows", v, &guesses)
}

/// The threshold oracle: every single, pair and triple of the minor citizenships, by month. In
/// rules mode "suppressed below the threshold" is an exact fact (1 ≤ sum < min_count), an
/// omitted cell an exact zero, any other suppression "sum ≥ min_count", a released value
/// within ±D: the attacker enumerates every assignment of the small cells consistent with all
/// of it. In zCDP mode (run with a noisy threshold too) the same answers are noisy values or
/// "the noisy value was below the threshold", and the attacker can only do least squares.
async fn threshold_oracle(v: &mut Victim) -> Outcome {
    const CANDIDATES: usize = 7;
    let (from, to) = ("2021-01", "2021-12");
    let months = months((2021, 1), (2021, 12));
    let cits = citizenships(v, from, to);
    let truth = v.truth("migrants", &["citizenship", "month"], from, to);
    let cand = minor(&truth, &cits, &months, CANDIDATES);
    let n = cand.len();
    let mut sets: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        sets.push(vec![i]);
        for j in i + 1..n {
            sets.push(vec![i, j]);
            for k in j + 1..n {
                sets.push(vec![i, j, k]);
            }
        }
    }
    let rho = v.model.rho_for(sets.len());
    let mut answers: Vec<(Vec<usize>, Cells)> = Vec::new();
    for s in &sets {
        let values: Vec<String> = s.iter().map(|&j| cand[j].clone()).collect();
        let q = pb::Query {
            unit: "migrants".into(),
            group_by: vec!["month".into()],
            filters: vec![filter("citizenship", &values)],
            period_from: from.into(),
            period_to: to.into(),
            rho_micro: rho,
            ..pb::Query::default()
        };
        match v.ask(q).await {
            Asked::Cells(cells) => answers.push((s.clone(), cells)),
            Asked::Exhausted => break,
        }
    }
    let mut guesses = Vec::new();
    for m in &months {
        let key = [m.clone()];
        let seen: Vec<(&Vec<usize>, Seen)> = answers
            .iter()
            .map(|(s, cells)| (s, Victim::seen(cells, &key)))
            .collect();
        let estimates: Vec<(f64, Feasible)> = match v.model {
            Model::RulesV1 { max_deviation } => enumerate(n, &seen, max_deviation as f64),
            Model::Zcdp { .. } => {
                for (_, x) in &seen {
                    if let Seen::Suppressed(r) = x {
                        assert_eq!(
                            *r,
                            pb::SuppressionReason::NoisyBelowThreshold as i32,
                            "zCDP: a suppression decided on something other than the noisy value"
                        );
                    }
                }
                let obs: Vec<Obs> = seen
                    .iter()
                    .filter_map(|(s, x)| observation(v.model, *x, s))
                    .collect();
                least_squares(n, &obs)
                    .into_iter()
                    .map(|e| (e.value, certify(v.model, e)))
                    .collect()
            }
        };
        for (j, c) in cand.iter().enumerate() {
            let t = truth.get(&vec![c.clone(), m.clone()]).copied().unwrap_or(0);
            guesses.push((t, estimates[j].0, estimates[j].1));
        }
    }
    score("threshold oracle", v, &guesses)
}

/// Rules mode: every assignment of the `n` cells consistent with the hard facts. Cells whose
/// own answer bounds them to at most five values are enumerated; facts about sums involving
/// any other cell are dropped (which can only widen the feasible set: sound). Returns, per
/// cell, the mean of its feasible values and their range.
fn enumerate(n: usize, seen: &[(&Vec<usize>, Seen)], d: f64) -> Vec<(f64, Feasible)> {
    const MIN_COUNT: f64 = 5.0;
    // What one answer proves about its sum: [lo, hi].
    let range = |s: Seen| -> Option<(f64, f64)> {
        match s {
            Seen::ExactZero => Some((0.0, 0.0)),
            Seen::Value { value, .. } => Some(((value - d).max(MIN_COUNT), value + d)),
            Seen::Suppressed(r) if r == pb::SuppressionReason::BelowThreshold as i32 => {
                Some((1.0, MIN_COUNT - 1.0))
            }
            Seen::Suppressed(_) => Some((MIN_COUNT, f64::INFINITY)),
        }
    };
    let mut domain: Vec<Option<(i64, i64)>> = vec![None; n];
    let mut fallback = vec![0.0f64; n];
    for (s, x) in seen {
        if s.len() == 1
            && let Some((lo, hi)) = range(*x)
        {
            if hi - lo <= 4.0 {
                domain[s[0]] = Some((lo.ceil() as i64, hi.floor() as i64));
            }
            fallback[s[0]] = if hi.is_finite() { (lo + hi) / 2.0 } else { lo };
        }
    }
    let narrow: Vec<usize> = (0..n).filter(|&j| domain[j].is_some()).collect();
    let facts: Vec<(&Vec<usize>, f64, f64)> = seen
        .iter()
        .filter(|(s, _)| s.iter().all(|j| domain[*j].is_some()))
        .filter_map(|(s, x)| range(*x).map(|(lo, hi)| (*s, lo, hi)))
        .collect();
    let mut values = vec![0i64; n];
    let mut feasible: Vec<Vec<i64>> = Vec::new();
    fn walk(
        k: usize,
        narrow: &[usize],
        domain: &[Option<(i64, i64)>],
        values: &mut Vec<i64>,
        facts: &[(&Vec<usize>, f64, f64)],
        out: &mut Vec<Vec<i64>>,
    ) {
        if k == narrow.len() {
            let ok = facts.iter().all(|(s, lo, hi)| {
                let sum = s.iter().map(|j| values[*j]).sum::<i64>() as f64;
                *lo <= sum && sum <= *hi
            });
            if ok {
                out.push(values.clone());
            }
            return;
        }
        let j = narrow[k];
        let (lo, hi) = domain[j].unwrap_or((0, 0));
        for x in lo..=hi {
            values[j] = x;
            walk(k + 1, narrow, domain, values, facts, out);
        }
    }
    walk(0, &narrow, &domain, &mut values, &facts, &mut feasible);
    (0..n)
        .map(|j| {
            if domain[j].is_none() || feasible.is_empty() {
                return (fallback[j], Feasible::any());
            }
            let lo = feasible.iter().map(|v| v[j]).min().unwrap_or(0);
            let hi = feasible.iter().map(|v| v[j]).max().unwrap_or(0);
            let mean = feasible.iter().map(|v| v[j] as f64).sum::<f64>() / feasible.len() as f64;
            (mean, Feasible { lo, hi })
        })
        .collect()
}

/// Unlike the other attacks, how far the period windows get against a rules-mode node depends
/// on that node's random perturbation secret and record keys: over many runs it recovers 62–89 %
/// of the targets, and now and then a node's draw leaves it under the bar (68.6 %). So the rules
/// side is played against up to three independently made rules-mode nodes and must beat the bar
/// on one (a false failure then needs three unlucky draws); the zCDP side is held to the bar on
/// its one node, as in every other attack.
#[tokio::test]
async fn period_window_differencing_is_held_to_the_bar_and_leaks_in_rules_mode() {
    let (z, mut v1, rho) = against_both(period_windows, "").await;
    let p = bar(rho);
    let allowed = |n: usize| p + SLACK_SE * (p * (1.0 - p) / n.max(1) as f64).sqrt();
    for _ in 1..3 {
        if v1.rate() > allowed(v1.targets) || v1.certified > 0 {
            break;
        }
        eprintln!(
            "ATTACK period windows: rules_v1 node under the bar this draw: {v1:?}; another node"
        );
        let mut v = Victim::start(RULES_V1).await;
        v1 = period_windows(&mut v).await;
        v.stop().await;
    }
    judge(&z, &v1, rho);
}

#[tokio::test]
async fn the_threshold_oracle_reads_noisy_values_only_and_leaks_in_rules_mode() {
    // zCDP with a noisy threshold as well, so that the oracle has something to read.
    let (z, v1, rho) = against_both(threshold_oracle, "threshold_sigmas = 2\n").await;
    judge(&z, &v1, rho);
}

#[tokio::test]
async fn a_query_repeated_a_hundred_times_is_one_release_charged_once() {
    let v = Victim::start("").await;
    let q = pb::Query {
        unit: "migrants".into(),
        group_by: vec!["citizenship".into(), "month".into()],
        period_from: "2022-Q2".into(),
        period_to: "2022-Q2".into(),
        ..pb::Query::default()
    };
    let first = v
        .client
        .aggregate(v.signer.sign(&v.signer.envelope(COUNTRY, q.clone())))
        .await
        .unwrap();
    let p = first.privacy.clone().unwrap();
    assert!(!p.replayed);
    for _ in 0..99 {
        let again = v
            .client
            .aggregate(v.signer.sign(&v.signer.envelope(COUNTRY, q.clone())))
            .await
            .unwrap();
        assert_eq!(again.cells, first.cells, "the stored release, identical");
        let ap = again.privacy.unwrap();
        assert!(ap.replayed);
        assert_eq!(ap.release_id, p.release_id);
    }
    let d = v.client.describe().await.unwrap();
    let spent = d
        .budget
        .iter()
        .find(|b| b.quarter == "2022-Q2")
        .unwrap()
        .rho_spent_micro;
    assert_eq!(spent, p.rho_micro, "charged once");
    eprintln!("REPLAY 100 asks of one query: 1 release, rho spent {spent} micro on 2022-Q2");
    v.stop().await;
}
