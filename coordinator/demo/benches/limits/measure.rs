//! Timing and process figures: medians of interleaved runs, peak RSS and CPU time from `/proc`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Median of a non-empty sample (the upper middle for even counts).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times one call.
pub fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let t = Instant::now();
    let out = f()?;
    Ok((t.elapsed(), out))
}

/// Runs every contender once to warm up, then `rounds` rounds in which each runs once, in turn,
/// so that a burst of load from elsewhere on the machine hits all of them alike. Returns each
/// contender's median.
pub fn interleave(
    rounds: usize,
    contenders: &mut [Box<dyn FnMut() -> Result<()> + '_>],
) -> Result<Vec<Duration>> {
    for c in contenders.iter_mut() {
        c()?;
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds.max(1) {
        for (c, s) in contenders.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            c()?;
            s.push(t.elapsed());
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

/// `VmHWM` (peak resident set size) of a process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(name) {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return kib.parse().with_context(|| format!("{name} in {path}"));
        }
    }
    bail!("{path} has no {name}")
}

/// User + system CPU time of a process so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, utime field 14 and stime field 15.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// A process's CPU time so far, read two ways: per thread in nanoseconds
/// (`/proc/<pid>/task/*/schedstat`, exact, where the kernel keeps it) and for the whole process
/// in clock ticks (`/proc/<pid>/stat`, which also holds the time of threads that have ended, but
/// only to 10 ms: a window of 50 ms of CPU was off by up to a fifth).
pub struct CpuSnapshot {
    threads: Option<std::collections::HashMap<u32, u64>>,
    ticks: u64,
}

impl CpuSnapshot {
    pub fn read(pid: u32) -> Result<CpuSnapshot> {
        Ok(CpuSnapshot {
            threads: thread_times(pid).ok(),
            ticks: cpu_ticks(pid)?,
        })
    }

    /// The CPU spent between `earlier` and this snapshot: from the thread times when every
    /// thread of `earlier` is still there (threads started since count whole) and they agree
    /// with the ticks to two ticks; else from the ticks (a thread that ended, or started and
    /// ended in between, has its time only in those).
    pub fn since(&self, earlier: &CpuSnapshot) -> Duration {
        let tick = 1.0 / ticks_per_second();
        let by_ticks = self.ticks.saturating_sub(earlier.ticks) as f64 * tick;
        if let (Some(now), Some(then)) = (&self.threads, &earlier.threads)
            && then.keys().all(|tid| now.contains_key(tid))
        {
            let ns: u64 = now
                .iter()
                .map(|(tid, t)| t.saturating_sub(then.get(tid).copied().unwrap_or(0)))
                .sum();
            let by_threads = Duration::from_nanos(ns);
            if (by_threads.as_secs_f64() - by_ticks).abs() <= 2.0 * tick {
                return by_threads;
            }
            if std::env::var_os("VRS_BENCH_CPU_DEBUG").is_some() {
                eprintln!("cpu: threads {by_threads:?}, ticks {by_ticks:.3} s: ticks kept");
            }
        }
        Duration::from_secs_f64(by_ticks)
    }
}

/// Each thread's time on a CPU so far, in nanoseconds (the first field of its `schedstat`).
fn thread_times(pid: u32) -> Result<std::collections::HashMap<u32, u64>> {
    let mut times = std::collections::HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read: it is then simply not counted,
        // and `since` falls back to the ticks.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let ns = text
            .split_whitespace()
            .next()
            .context("empty schedstat")?
            .parse()?;
        times.insert(tid, ns);
    }
    Ok(times)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Median time of a 4 KiB write made durable (`write` + `fdatasync`) in `dir`: what one audit-log
/// commit waits for on this disk.
pub fn fsync_latency(dir: &Path, samples: usize) -> Result<Duration> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        times.push(t.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok(median(times))
}
