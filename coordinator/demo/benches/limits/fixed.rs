//! Per-answer fixed cost and concurrency (issue 15, items 2 and 3), on one `vrs-node serve`
//! process answering a light query (incidents by quarter for one month).
//!
//! - **CPU per answered light query**: the node process's CPU time (`/proc/<pid>/stat`) over
//!   `n` sequential answers on a warm connection, against the same process answering `n` plain
//!   tonic unary calls over the same mutual TLS (the standard gRPC health `Check`, which does no
//!   work of its own): what a query costs beyond the transport.
//! - **Concurrency**: `c` callers (tasks sharing one connection, as a coordinator's are) asking
//!   light queries back to back for a fixed time; answered queries per second, refusals, and the
//!   share of the best throughput.

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

use crate::measure::{cpu_ticks, ticks_per_second};

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
}

/// Plain calls timed per light query.
const PLAIN_PER_QUERY: usize = 20;

fn node_cpu(pid: u32) -> Result<Duration> {
    Ok(Duration::from_secs_f64(
        cpu_ticks(pid)? as f64 / ticks_per_second(),
    ))
}

/// CPU per answered light query against CPU per plain mTLS unary call, same node process.
pub fn fixed_cost(
    rt: &Runtime,
    fed: &Federation,
    registry: &Registry,
    pid: u32,
    q: &Query,
    calls: usize,
) -> Result<FixedCost> {
    let node = &registry.nodes[0];
    let config = vrs_core::tls::client_config(&registry.tls)?;
    let channel = vrs_core::tls::connect_lazy(
        &node.endpoint,
        &node.expected_identity(),
        config,
        registry.connect_timeout(),
    )?;
    let mut health = HealthClient::new(channel);
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
        query_cpu += node_cpu(pid)? - c0;
        // A plain call costs a few tens of µs: 20 times as many of them, so that the CPU
        // clock's 10 ms ticks still resolve it.
        let (c0, t0) = (node_cpu(pid)?, Instant::now());
        for _ in 0..per * PLAIN_PER_QUERY {
            check(&mut health)?;
        }
        plain_wall += t0.elapsed();
        plain_cpu += node_cpu(pid)? - c0;
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

/// `callers` tasks asking `q` back to back for `secs` seconds over `fed`'s one connection.
pub fn level(
    rt: &Runtime,
    fed: &Arc<Federation>,
    q: &Query,
    callers: usize,
    secs: f64,
) -> Result<Level> {
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
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
    Ok(Level {
        callers,
        answered: answered.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
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
    println!("| callers | answered/s | answered | refused | share of best | target |");
    println!("|---|---|---|---|---|---|");
    for l in levels {
        let rate = l.answered as f64 / l.seconds;
        let share = if best > 0.0 { rate / best } else { 0.0 };
        println!(
            "| {} | {:.0} | {} | {} | {:.0}% | {} |",
            l.callers,
            rate,
            l.answered,
            l.refused,
            share * 100.0,
            if share >= 0.8 { "meets" } else { "**misses**" }
        );
    }
    if let (Some(f), Some(one)) = (fixed, levels.iter().find(|l| l.callers == 1)) {
        // One caller has one query in flight: its rate is bound by one call's wall time, which
        // on 2 cores also bars it from the CPU of the other core.
        let bound = 1.0 / f.query_wall.as_secs_f64().max(1e-9);
        println!(
            "
One caller asks one query at a time: its rate cannot pass 1 / (wall time of one call, {}) = {bound:.0}/s; it answered {:.0}/s, {:.0}% of that bound. The best rate above ({best:.0}/s) needs queries in flight on both cores.",
            msf(f.query_wall),
            one.answered as f64 / one.seconds,
            one.answered as f64 / one.seconds / bound * 100.0,
        );
    }
}
