//! Per-answer fixed cost and concurrency (issue 15, items 2 and 3), on one `vrs-node serve`
//! process answering a light query (incidents by quarter for one month).
//!
//! - **CPU per answered light query**: the node process's CPU time (its threads' `schedstat`,
//!   [`crate::measure::CpuSnapshot`]) over `n` sequential answers on a warm connection, against
//!   the same process answering `n` plain tonic unary calls over the same mutual TLS (the
//!   standard gRPC health `Check`, which does no work of its own): what a query costs beyond the
//!   transport.
//! - **Concurrency**: `c` callers (tasks sharing one connection, as a coordinator's are) asking
//!   light queries back to back for a fixed time; answered queries per second, refusals, and the
//!   share of the best throughput. At each level the node's CPU per answer is read too, against
//!   its CPU per plain call from as many callers: concurrent answers share their audit flush
//!   (the group commit), which one caller asking one query at a time never can.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::runtime::Runtime;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vrs_coordinator::fanout::{Federation, NodeOutcome};
use vrs_coordinator::registry::Registry;
use vrs_core::query::Query;

use crate::measure::CpuSnapshot;

/// The fixed cost of an answer and of a plain call, per call.
pub struct FixedCost {
    pub calls: usize,
    pub query_cpu: Duration,
    pub plain_cpu: Duration,
    pub query_wall: Duration,
    pub plain_wall: Duration,
}

/// One concurrency level.
pub struct Level {
    pub callers: usize,
    pub answered: u64,
    pub refused: u64,
    pub seconds: f64,
    /// The node process's CPU over the level, per answered query.
    pub cpu_per_answer: Duration,
    /// Its CPU per plain call (health `Check`) from as many callers over the same connection.
    pub cpu_per_plain: Duration,
    /// This process's CPU (the callers: the coordinator's side) over the level, per answer.
    pub caller_cpu_per_answer: Duration,
}

/// Plain calls timed per light query.
const PLAIN_PER_QUERY: usize = 20;

fn node_cpu(pid: u32) -> Result<CpuSnapshot> {
    CpuSnapshot::read(pid)
}

/// A connection of its own to the registry's first node, over the same mutual TLS as the
/// federation's, for plain calls.
pub fn plain_channel(registry: &Registry) -> Result<tonic::transport::Channel> {
    let node = &registry.nodes[0];
    let config = vrs_core::tls::client_config(&registry.tls)?;
    Ok(vrs_core::tls::connect_lazy(
        &node.endpoint,
        &node.expected_identity(),
        config,
        registry.connect_timeout(),
    )?)
}

/// CPU per answered light query against CPU per plain mTLS unary call, same node process.
pub fn fixed_cost(
    rt: &Runtime,
    fed: &Federation,
    plain: &tonic::transport::Channel,
    pid: u32,
    q: &Query,
    calls: usize,
) -> Result<FixedCost> {
    let mut health = HealthClient::new(plain.clone());
    let ask = |fed: &Federation| -> Result<()> {
        let (_, results) = rt.block_on(fed.ask(q))?;
        if !matches!(results[0].outcome, NodeOutcome::Answered(_)) {
            bail!("light query: {}", results[0].outcome.detail());
        }
        Ok(())
    };
    let check = |h: &mut HealthClient<_>| -> Result<()> {
        rt.block_on(h.check(HealthCheckRequest {
            service: String::new(),
        }))?;
        Ok(())
    };
    // Warm both connections, then time each kind in turn (the other's CPU never overlaps).
    for _ in 0..20 {
        ask(fed)?;
        check(&mut health)?;
    }
    let mut query_cpu = Duration::ZERO;
    let mut plain_cpu = Duration::ZERO;
    let mut query_wall = Duration::ZERO;
    let mut plain_wall = Duration::ZERO;
    let batches = 5;
    let per = calls.div_ceil(batches).max(1);
    for _ in 0..batches {
        let (c0, t0) = (node_cpu(pid)?, Instant::now());
        for _ in 0..per {
            ask(fed)?;
        }
        query_wall += t0.elapsed();
        query_cpu += node_cpu(pid)?.since(&c0);
        // A plain call costs a few tens of µs: 20 times as many of them, so that the CPU
        // clock still resolves it where only the process's 10 ms ticks can be read.
        let (c0, t0) = (node_cpu(pid)?, Instant::now());
        for _ in 0..per * PLAIN_PER_QUERY {
            check(&mut health)?;
        }
        plain_wall += t0.elapsed();
        plain_cpu += node_cpu(pid)?.since(&c0);
    }
    let n = (per * batches) as u32;
    let plain_n = n * PLAIN_PER_QUERY as u32;
    Ok(FixedCost {
        calls: per * batches,
        query_cpu: query_cpu / n,
        plain_cpu: plain_cpu / plain_n,
        query_wall: query_wall / n,
        plain_wall: plain_wall / plain_n,
    })
}

/// `callers` tasks asking `q` back to back for `secs` seconds over `fed`'s one connection, then
/// as many tasks making plain calls over `plain` for a fifth of that time.
pub fn level(
    rt: &Runtime,
    fed: &Arc<Federation>,
    plain: &tonic::transport::Channel,
    pid: u32,
    q: &Query,
    callers: usize,
    secs: f64,
) -> Result<Level> {
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let cpu0 = node_cpu(pid)?;
    let caller0 = node_cpu(std::process::id())?;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let (fed, q) = (fed.clone(), q.clone());
            let (answered, refused) = (answered.clone(), refused.clone());
            set.spawn(async move {
                while Instant::now() < until {
                    match fed.ask(&q).await {
                        Ok((_, r)) if matches!(r[0].outcome, NodeOutcome::Answered(_)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    let seconds = started.elapsed().as_secs_f64();
    let query_cpu = node_cpu(pid)?.since(&cpu0);
    let caller_cpu = node_cpu(std::process::id())?.since(&caller0);
    let answered = answered.load(Ordering::Relaxed);
    let (plain_calls, plain_cpu) = plain_level(rt, plain, pid, callers, secs / 5.0)?;
    Ok(Level {
        callers,
        answered,
        refused: refused.load(Ordering::Relaxed),
        seconds,
        cpu_per_answer: query_cpu / u32::try_from(answered.max(1))?,
        caller_cpu_per_answer: caller_cpu / u32::try_from(answered.max(1))?,
        cpu_per_plain: plain_cpu / u32::try_from(plain_calls.max(1))?,
    })
}

/// `callers` tasks making health `Check` calls back to back for `secs` seconds: how many, and
/// the node's CPU over them.
fn plain_level(
    rt: &Runtime,
    channel: &tonic::transport::Channel,
    pid: u32,
    callers: usize,
    secs: f64,
) -> Result<(u64, Duration)> {
    let calls = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = node_cpu(pid)?;
    let until = Instant::now() + Duration::from_secs_f64(secs);
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let mut health = HealthClient::new(channel.clone());
            let (calls, failed) = (calls.clone(), failed.clone());
            set.spawn(async move {
                while Instant::now() < until {
                    let checked = health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await;
                    let counter = if checked.is_ok() { &calls } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} plain calls failed at {callers} callers");
    }
    Ok((calls.load(Ordering::Relaxed), node_cpu(pid)?.since(&cpu0)))
}

/// The two tables.
pub fn print(fixed: Option<&FixedCost>, levels: &[Level]) {
    let msf = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    if let Some(f) = fixed {
        println!(
            "\n## Fixed cost per answer (one node process, light query, warm connection; {} queries, {} plain calls)\n",
            f.calls,
            f.calls * PLAIN_PER_QUERY
        );
        println!("| call | node CPU per call | wall per call |");
        println!("|---|---|---|");
        println!(
            "| `Aggregate`, light query (signed, checked, audited, answered) | {} | {} |",
            msf(f.query_cpu),
            msf(f.query_wall)
        );
        println!(
            "| plain tonic mTLS unary call (gRPC health `Check`) | {} | {} |",
            msf(f.plain_cpu),
            msf(f.plain_wall)
        );
        println!(
            "\nAn answer costs the node {} of CPU beyond a plain call ({:.1}× the plain call); target ≤ 0.4 ms per answer.",
            msf(f.query_cpu.saturating_sub(f.plain_cpu)),
            f.query_cpu.as_secs_f64() / f.plain_cpu.as_secs_f64().max(1e-9)
        );
    }
    if levels.is_empty() {
        return;
    }
    let best = levels
        .iter()
        .map(|l| l.answered as f64 / l.seconds)
        .fold(0.0, f64::max);
    println!("\n## Concurrency: light queries from concurrent callers over one connection\n");
    println!(
        "| callers | answered/s | answered | refused | share of best | target | node CPU per answer | per plain call, as many callers | answer ÷ plain | callers' CPU per answer |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for l in levels {
        let rate = l.answered as f64 / l.seconds;
        let share = if best > 0.0 { rate / best } else { 0.0 };
        println!(
            "| {} | {:.0} | {} | {} | {:.0}% | {} | {} | {} | {:.1}× | {} |",
            l.callers,
            rate,
            l.answered,
            l.refused,
            share * 100.0,
            if share >= 0.8 { "meets" } else { "**misses**" },
            msf(l.cpu_per_answer),
            msf(l.cpu_per_plain),
            l.cpu_per_answer.as_secs_f64() / l.cpu_per_plain.as_secs_f64().max(1e-9),
            msf(l.caller_cpu_per_answer)
        );
    }
    let within: Vec<String> = levels
        .iter()
        .filter(|l| l.cpu_per_answer <= Duration::from_micros(400))
        .map(|l| l.callers.to_string())
        .collect();
    println!(
        "\nNode CPU per answer ≤ 0.4 ms (item 2's target) at {} callers. The node's CPU is its threads' time on a CPU (`/proc/<pid>/task/*/schedstat`, in ns; the process's 10 ms ticks if a thread ended meanwhile).",
        if within.is_empty() {
            "no level of".to_string()
        } else {
            within.join(", ")
        }
    );
    if let Some(one) = levels.iter().find(|l| l.callers == 1) {
        // One caller has one query in flight: the node and the caller work on it in turn, so
        // its rate cannot pass 1 / (both CPUs per answer), whatever the cores.
        let serial = one.cpu_per_answer + one.caller_cpu_per_answer;
        let bound = 1.0 / serial.as_secs_f64().max(1e-9);
        println!(
            "\nOne caller asks one query at a time, and the node and the caller work on it in turn: its rate cannot pass 1 / (node + caller CPU per answer, {}) = {bound:.0}/s, {:.0}% of the best rate ({best:.0}/s, queries in flight on both cores). It answered {:.0}/s. 80% of the best at one caller would need ≤ {} of CPU per answer, node and caller together.",
            msf(serial),
            bound / best.max(1e-9) * 100.0,
            one.answered as f64 / one.seconds,
            msf(Duration::from_secs_f64(1.0 / (0.8 * best).max(1e-9))),
        );
    }
}
