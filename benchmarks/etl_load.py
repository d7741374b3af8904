"""ETL load benchmark: the studio's checked load against a raw DuckDB CREATE TABLE AS.

Generates (or reuses) a demo store, then in one run times

(a) the studio's ETL (`etl.load.load_files`: typing, every row check, quarantine,
    dedupe, merge, ledger, Great Expectations suites, atomic publication), and
(b) a bare ``CREATE TABLE <t> AS SELECT * FROM read_<format>(<files>)`` per table into a
    fresh DuckDB file, the least any load of the same files must do,

each in its own process so that its peak memory (max RSS) is its own. Prints both
times, the ratio (goal: at most 2.0) and the peak memory (goal: at most 6 GiB).

    python benchmarks/etl_load.py                      # 1,000,000 customers
    python benchmarks/etl_load.py --customers 50000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def peak_rss_bytes() -> int:
    """Peak resident memory of the current process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_studio(store: Path, home: Path) -> dict:
    from etl.load import load_files
    from studio.config import Settings

    settings = Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")
    started = time.perf_counter()
    result = load_files(settings, [store], mapping="canonical")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss": peak_rss_bytes(),
            "rows_in": sum(r["rows_in"] for r in result.ledger),
            "inserted": sum(r["inserted"] for r in result.ledger),
            "quarantined": sum(r["quarantined"] for r in result.ledger),
            "steps": result.step_seconds}


def run_baseline(store: Path, home: Path) -> dict:
    import duckdb

    from etl.mappings.canonical import table_for_file
    from etl.sources import describe, expand_paths

    started = time.perf_counter()
    by_table: dict[str, list[str]] = {}
    formats: dict[str, str] = {}
    for path, found_in in expand_paths([store]):
        source = describe(path, found_in)
        table = table_for_file(source)
        if table:
            by_table.setdefault(table, []).append(str(source.path))
            formats[table] = source.format
    readers = {"csv": "read_csv(?, all_varchar = true)", "parquet": "read_parquet(?)",
               "json": "read_json(?, format = 'newline_delimited')"}
    con = duckdb.connect(str(home / "raw.duckdb"))
    rows = 0
    for table, files in by_table.items():
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {readers[formats[table]]}", [files])
        rows += con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.execute("CHECKPOINT")
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss": peak_rss_bytes(), "rows_in": rows}


def in_child(kind: str, store: Path, home: Path) -> dict:
    """Run one side in a fresh process and read back its figures."""
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--store", str(store), "--home", str(home)],
        check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path,
                        help="reuse the store in this folder, or generate it there")
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["studio", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runner = run_studio if args.child == "studio" else run_baseline
        print(json.dumps(runner(args.store, args.home)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    store = args.store or workdir / "store"
    manifest = store / "manifest.json"
    if args.store and store.exists() and (
            not manifest.exists()
            or json.loads(manifest.read_text()).get("customers") == args.customers):
        print(f"reusing the store in {store}")
    else:
        from etl.generate import generate_store

        started = time.perf_counter()
        info = generate_store(store, customers=args.customers, seed=args.seed)
        counts = info.get("rows", info.get("counts", {}))
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s:"
              f" {json.dumps(counts)}")
    try:
        for kind in ("baseline", "studio"):
            home = workdir / kind
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            figures = in_child(kind, store, home)
            print(f"{kind:>9}: {figures['seconds']:7.1f} s, peak memory "
                  f"{figures['peak_rss'] / 2**30:5.2f} GiB, rows read {figures['rows_in']:,}"
                  + (f", quarantined {figures['quarantined']:,}" if "quarantined" in figures
                     else ""))
            if "steps" in figures:
                print("           steps (s): " + ", ".join(
                    f"{name} {seconds:.1f}" for name, seconds in figures["steps"].items()))
            if kind == "baseline":
                baseline = figures
            else:
                studio = figures
        ratio = studio["seconds"] / baseline["seconds"]
        print(f"ratio studio/baseline: {ratio:.2f} (goal <= 2.0); studio peak memory "
              f"{studio['peak_rss'] / 2**30:.2f} GiB (goal <= 6)")
    finally:
        shutil.rmtree(workdir / "baseline", ignore_errors=True)
        shutil.rmtree(workdir / "studio", ignore_errors=True)
        if not args.store:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
