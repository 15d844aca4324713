//! A federation across real distances, simulated on one machine (issue 15, item 4): a
//! delay-injecting TCP proxy on 127.0.0.1 in front of each node (this kernel has no netem), each
//! with its own round-trip time drawn from 30–300 ms. Every chunk of bytes is held for half the
//! round trip in each direction, in order, through a bounded queue; bandwidth is not limited.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Round-trip times of `n` nodes, uniform in 30–300 ms, fixed by `seed`.
pub fn round_trips(n: usize, seed: u64) -> Vec<Duration> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            // SplitMix64: enough for spreading delays, and reproducible.
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            Duration::from_millis(30 + z % 271)
        })
        .collect()
}

/// Proxies running on the harness's runtime; stopped on drop.
pub struct Proxies {
    pub addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts one proxy per `(target, rtt)`.
pub fn start(rt: &Runtime, targets: &[(SocketAddr, Duration)]) -> Result<Proxies> {
    let mut addrs = Vec::with_capacity(targets.len());
    let mut tasks = Vec::with_capacity(targets.len());
    for &(target, rtt) in targets {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        addrs.push(listener.local_addr()?);
        let one_way = rtt / 2;
        tasks.push(rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        tokio::join!(pump(cr, sw, one_way), pump(sr, cw, one_way));
                    }
                });
            }
        }));
    }
    Ok(Proxies { addrs, tasks })
}

/// Copies `from` to `to`, each chunk delivered `delay` after it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    // Bounded: a reader more than 256 chunks ahead of the delayed writer waits.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// The figures.
pub struct DistanceRow {
    pub nodes: usize,
    pub max_rtt: Duration,
    pub min_rtt: Duration,
    /// The largest partition alone, warm, without a proxy: the slowest node's own time.
    pub slowest_alone: Duration,
    pub cold: Vec<Duration>,
    pub warm: Duration,
}

pub fn print(d: Option<&DistanceRow>) {
    let Some(d) = d else { return };
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    let cold = crate::measure::median(d.cold.clone());
    let cold_bound = d.max_rtt * 4 + d.slowest_alone;
    let warm_bound = d.max_rtt.mul_f64(1.2) + d.slowest_alone;
    let verdict = |ok: bool| if ok { "meets" } else { "**misses**" };
    println!(
        "\n## A federation across distances: {} nodes behind delay proxies, RTT {:.0}–{:.0} ms\n",
        d.nodes,
        ms(d.min_rtt),
        ms(d.max_rtt)
    );
    println!("| query | measured | bound | ratio to bound | |");
    println!("|---|---|---|---|---|");
    println!(
        "| cold `vrs-coordinator query` process ({} handshakes; median of {}) | {:.0} ms | 4 × {:.0} + {:.1} = {:.0} ms | {:.2}× | {} |",
        d.nodes,
        d.cold.len(),
        ms(cold),
        ms(d.max_rtt),
        ms(d.slowest_alone),
        ms(cold_bound),
        cold.as_secs_f64() / cold_bound.as_secs_f64(),
        verdict(cold <= cold_bound)
    );
    println!(
        "| warm regional query | {:.0} ms | 1.2 × {:.0} + {:.1} = {:.0} ms | {:.2}× | {} |",
        ms(d.warm),
        ms(d.max_rtt),
        ms(d.slowest_alone),
        ms(warm_bound),
        d.warm.as_secs_f64() / warm_bound.as_secs_f64(),
        verdict(d.warm <= warm_bound)
    );
}
