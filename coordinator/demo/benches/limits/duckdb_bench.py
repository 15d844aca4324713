"""DuckDB contender of the limits harness (docs/BENCHMARKS.md, "Node engine against DuckDB").

Run by the harness in a venv with a pinned duckdb. `load DB CSV_DIR` makes the DuckDB file from
the CSV files the harness exported from a node store (the same rows); without it, the file is
opened as it is. Then it answers commands on stdin, one per line, so that the harness can
interleave its own engine with DuckDB round by round:

    run THREADS SQL   ->  elapsed milliseconds of executing SQL and fetching every row
    quit

Timing is in process (time.perf_counter around execute + fetchall), after the harness's own
warm-up run, like the node engine's figure.
"""

import sys
import time

import duckdb


def main() -> None:
    db = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "load":
        csv_dir = sys.argv[3]
        con = duckdb.connect(db)
        con.execute(
            f"CREATE TABLE incident AS SELECT * FROM read_csv('{csv_dir}/incident.csv', header = true)"
        )
        con.execute(
            f"CREATE TABLE migrant_group AS SELECT * FROM read_csv('{csv_dir}/migrant_group.csv', header = true)"
        )
        con.execute("CHECKPOINT")
        con.close()
        print("loaded", flush=True)
        return
    con = duckdb.connect(db, read_only=True)
    print(f"ready {duckdb.__version__}", flush=True)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line == "quit":
            break
        _, threads, sql = line.split(" ", 2)
        con.execute(f"SET threads = {int(threads)}")
        start = time.perf_counter()
        rows = con.execute(sql).fetchall()
        elapsed = time.perf_counter() - start
        if not rows:
            print("error no rows", flush=True)
            continue
        print(f"{elapsed * 1000.0:.4f}", flush=True)


if __name__ == "__main__":
    main()
