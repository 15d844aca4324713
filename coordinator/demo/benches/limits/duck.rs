//! The node's engine against DuckDB (issue 15, item 1): the same rows of each node store loaded
//! into a DuckDB file, the same questions, timed in process on both sides, interleaved round by
//! round. DuckDB (pinned below) comes from PyPI into a venv beside the harness's target
//! directory, like the console's Selenium; `duckdb_bench.py` answers the harness's commands on a
//! pipe and times each query inside its own process.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vrs_core::query::Query;
use vrs_node::query::{aggregate, aggregate_by_sql};
use vrs_node::store::Store;

use crate::measure::{median, ms};

/// The DuckDB release compared with (PyPI).
pub const DUCKDB_VERSION: &str = "2.0.1";

/// One question, asked of both: the node's query and DuckDB's SQL over the exported tables.
pub struct Question {
    pub label: &'static str,
    pub unit: &'static str,
    pub by: &'static [&'static str],
    pub sql: &'static str,
}

/// Incidents and the person units over migrant groups, by 1, 2 and 3 dimensions. Incidents
/// exclude statistics rows (kind 1), as the node counts them.
pub const QUESTIONS: [Question; 6] = [
    Question {
        label: "incidents by quarter",
        unit: "incidents",
        by: &["quarter"],
        sql: "SELECT quarter, COUNT(*) FROM incident WHERE kind = 0 GROUP BY quarter",
    },
    Question {
        label: "incidents by origin × quarter",
        unit: "incidents",
        by: &["origin", "quarter"],
        sql: "SELECT origin, quarter, COUNT(*) FROM incident WHERE kind = 0 GROUP BY origin, quarter",
    },
    Question {
        label: "incidents by origin × quarter × mode",
        unit: "incidents",
        by: &["origin", "quarter", "mode"],
        sql: "SELECT origin, quarter, mode, COUNT(*) FROM incident WHERE kind = 0 GROUP BY origin, quarter, mode",
    },
    Question {
        label: "migrants by quarter",
        unit: "migrants",
        by: &["quarter"],
        sql: "SELECT i.quarter, SUM(g.count) FROM migrant_group g JOIN incident i ON i.id = g.incident_id GROUP BY i.quarter",
    },
    Question {
        label: "migrants by citizenship × quarter",
        unit: "migrants",
        by: &["citizenship", "quarter"],
        sql: "SELECT g.citizenship, i.quarter, SUM(g.count) FROM migrant_group g JOIN incident i ON i.id = g.incident_id GROUP BY g.citizenship, i.quarter",
    },
    Question {
        label: "migrants by citizenship × sex × quarter",
        unit: "migrants",
        by: &["citizenship", "sex", "quarter"],
        sql: "SELECT g.citizenship, g.sex, i.quarter, SUM(g.count) FROM migrant_group g JOIN incident i ON i.id = g.incident_id GROUP BY g.citizenship, g.sex, i.quarter",
    },
];

/// Medians of one question at one store size.
pub struct Row {
    pub incidents: u64,
    pub question: &'static str,
    /// `vrs_node::query::aggregate`: the exact cells.
    pub node: Duration,
    /// The same by the node's SQL path alone (the engine before the column engine).
    pub sql: Duration,
    /// DuckDB with 1 and with 2 threads.
    pub duck1: Duration,
    pub duck2: Duration,
}

/// The venv's Python with the pinned DuckDB, made if missing.
pub fn python() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // …/<target>/release/deps/limits-HASH
    let target = exe
        .ancestors()
        .nth(3)
        .context("cannot tell the target directory")?;
    let venv = target.join("duckdb-venv");
    let py = venv.join("bin/python");
    let check = format!("import duckdb, sys; sys.exit(duckdb.__version__ != '{DUCKDB_VERSION}')");
    if Command::new(&py)
        .args(["-c", &check])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Ok(py);
    }
    eprintln!("duckdb {DUCKDB_VERSION} into {}", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?
        .success()
        && Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("duckdb=={DUCKDB_VERSION}"),
            ])
            .status()?
            .success();
    if !ok {
        bail!(
            "cannot install duckdb {DUCKDB_VERSION} into {}",
            venv.display()
        );
    }
    Ok(py)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/limits/duckdb_bench.py")
}

/// Exports the store's incidents and migrant groups as CSV and loads them into `db`.
pub fn load(py: &Path, store_dir: &Path, db: &Path) -> Result<()> {
    let csv_dir = db.parent().context("db path")?.join("csv");
    std::fs::create_dir_all(&csv_dir)?;
    let conn = rusqlite::Connection::open_with_flags(
        vrs_node::store::store_path(store_dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let export = |name: &str, sql: &str, header: &str| -> Result<()> {
        let mut out = BufWriter::new(std::fs::File::create(csv_dir.join(name))?);
        writeln!(out, "{header}")?;
        let mut stmt = conn.prepare(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            for i in 0..n {
                if i > 0 {
                    out.write_all(b",")?;
                }
                match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Integer(v) => write!(out, "{v}")?,
                    rusqlite::types::ValueRef::Text(t) => out.write_all(t)?,
                    _ => {}
                }
            }
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    };
    export(
        "incident.csv",
        "SELECT id, month, quarter, year, origin, destination, mode, place_type, corridor, kind, dead, missing, record_key FROM incident",
        "id,month,quarter,year,origin,destination,mode,place_type,corridor,kind,dead,missing,record_key",
    )?;
    export(
        "migrant_group.csv",
        "SELECT incident_id, seq, citizenship, sex, age_group, count, record_key FROM migrant_group",
        "incident_id,seq,citizenship,sex,age_group,count,record_key",
    )?;
    let status = Command::new(py)
        .arg(script())
        .arg(db)
        .arg("load")
        .arg(&csv_dir)
        .stdout(Stdio::null())
        .status()?;
    std::fs::remove_dir_all(&csv_dir)?;
    if !status.success() {
        bail!("duckdb load failed");
    }
    Ok(())
}

/// A DuckDB process with `db` open, answering timed queries.
pub struct Duck {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Duck {
    pub fn open(py: &Path, db: &Path) -> Result<Duck> {
        let mut child = Command::new(py)
            .arg(script())
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut d = Duck {
            child,
            stdin,
            stdout,
        };
        let ready = d.line()?;
        if !ready.starts_with("ready") {
            bail!("duckdb: {ready}");
        }
        Ok(d)
    }

    fn line(&mut self) -> Result<String> {
        let mut s = String::new();
        self.stdout.read_line(&mut s)?;
        Ok(s.trim().to_string())
    }

    /// DuckDB's own time for `sql` with `threads` threads.
    pub fn run(&mut self, threads: usize, sql: &str) -> Result<Duration> {
        writeln!(self.stdin, "run {threads} {sql}")?;
        self.stdin.flush()?;
        let l = self.line()?;
        let ms: f64 = l.parse().with_context(|| format!("duckdb: {l}"))?;
        Ok(Duration::from_secs_f64(ms / 1e3))
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// Every question at one store size: the node's exact aggregation and DuckDB with 1 and 2
/// threads, one warm-up each, then `rounds` rounds in which each runs once in turn.
pub fn measure(
    incidents: u64,
    store: &Store,
    duck: &mut Duck,
    queries: &[Query],
    rounds: usize,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for (question, q) in QUESTIONS.iter().zip(queries) {
        let mut node = Vec::new();
        let mut d1 = Vec::new();
        let mut d2 = Vec::new();
        let mut sql = Vec::new();
        for round in 0..=rounds.max(1) {
            let t = Instant::now();
            let table = aggregate(store, q)?;
            let e = t.elapsed();
            if table.cells.is_empty() {
                bail!("{}: no cells", question.label);
            }
            std::hint::black_box(&table);
            let a = duck.run(1, question.sql)?;
            let b = duck.run(2, question.sql)?;
            let t = Instant::now();
            let by_sql = aggregate_by_sql(store, q)?;
            let s = t.elapsed();
            if by_sql.cells.len() != table.cells.len() {
                bail!(
                    "{}: the SQL path and the column engine differ",
                    question.label
                );
            }
            // Round 0 warms up (the node builds its projection, DuckDB reads its file).
            if round > 0 {
                node.push(e);
                d1.push(a);
                d2.push(b);
                sql.push(s);
            }
        }
        out.push(Row {
            incidents,
            question: question.label,
            node: median(node),
            sql: median(sql),
            duck1: median(d1),
            duck2: median(d2),
        });
    }
    Ok(out)
}

/// The table of [`Row`]s.
pub fn print(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    println!(
        "\n## Node engine against DuckDB {DUCKDB_VERSION} (exact aggregation, in process, warm; medians)\n"
    );
    println!(
        "| incidents | question | node SQL path (before) | node column engine (1 thread) | DuckDB 1 thread | ratio | DuckDB 2 threads | ratio | before: SQL path / DuckDB 1 thread |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} ms | {:.2} ms | {:.2} ms | {:.2}× | {:.2} ms | {:.2}× | {:.1}× |",
            r.incidents,
            r.question,
            ms(r.sql),
            ms(r.node),
            ms(r.duck1),
            r.node.as_secs_f64() / r.duck1.as_secs_f64(),
            ms(r.duck2),
            r.node.as_secs_f64() / r.duck2.as_secs_f64(),
            r.sql.as_secs_f64() / r.duck1.as_secs_f64(),
        );
    }
}
