"""Export benchmark: the REST destination against its rate-limit floor, Parquet against COPY.

Two parts, on a demo warehouse large enough for a 1,000,000-member audience (the
generator's 1,700,000 customers, of whom about 1,016,000 are e-mail subscribers with an
address; built once into ``--home`` and reused):

1. **REST** (``--rest``): ``export_audience`` of ``--members`` (default 100,000) people
   to ``omnisend:http://127.0.0.1:PORT``, served by the test suite's stand-in engine
   (``tests/audiences/send_engine.SendEngine``) enforcing 400 requests a minute as a
   steady rate with no burst and answering synchronously (the POST returns the finished
   batch). Batches of 1,000 make 100 requests, which the server cannot take in less than
   100 x 60/400 = 15 s: the floor. The run is timed from the call to its return
   (building the audience, the diff, the outbox and the sending), and must take at most
   1.1x the floor (the floor counts requests, so it does not shrink with a last batch a
   little short of 1,000). Every round checks that the engine holds each member once, under
   their e-mail, and nobody else, and counts the server's 429 answers.
2. **Parquet** (``--parquet``): ``export_audience`` of ``--members`` (default 1,000,000)
   people to ``parquet:PATH`` against a bare DuckDB ``COPY (<the same consented-members
   query>) TO 'PATH' (FORMAT parquet)`` on the same warehouse, ``--repeat`` rounds after
   an untimed warm-up, interleaved (the order flips every round), medians compared
   (goal: at most 1.5). The studio is timed twice a round: a first export to a new file
   (all members added) and a re-export of the unchanged audience to the same file, as a
   scheduled sync does (the previous file's state read and compared); the worse counts.
   Both sides' files must hold the same rows (both snappy-compressed).

How the audience gets its size: a saved profile rule, "signed up before day D", with D
the last day that keeps the consented audience at ``--members`` or fewer (the tests'
reference consent SQL counts; a day brings about 700 subscribers, so 100,000 asked gives
a little under 100,000: still 100 batches). The studio checks consent itself, and the
benchmark stops unless the studio's audience is exactly the reference's.

The warehouse is only read: the studio home used is ``--scratch`` (state database,
export state, output files), holding a symlink to ``--home``'s warehouse, so an existing
warehouse such as ``/tmp/segbench-home`` can serve (if it has enough subscribers).

    python benchmarks/export.py                       # both parts
    python benchmarks/export.py --rest                # the REST part only
    python benchmarks/export.py --parquet --members 500000 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from studio.audiences.audience import consented_members  # noqa: E402
from studio.audiences.rest_client import PACING_HEADROOM  # noqa: E402
from studio.audiences.runner import export_audience  # noqa: E402
from studio.config import Settings  # noqa: E402
from studio.rollups import rollup_coverage  # noqa: E402
from studio.segments import library  # noqa: E402
from studio.segments.compiler import Compiler  # noqa: E402
from studio.segments.definition import parse_definition  # noqa: E402
from studio.segments.operations import default_as_of  # noqa: E402
from studio.sql import to_sql  # noqa: E402
from studio.warehouse import connect_reader  # noqa: E402
from tests.audiences.reference import CONSENTED_SQL  # noqa: E402
from tests.audiences.send_engine import SendEngine  # noqa: E402

RATE_PER_MINUTE = 400
BATCH_ITEMS = 1000
REST_GOAL, PARQUET_GOAL = 1.1, 1.5
API_KEY = "bench-key"
console = Console(width=150)

# ---------------------------------------------------------------- the warehouse


def prepare_warehouse(home: Path, customers: int, seed: int) -> Path:
    """The warehouse file in ``home``, generated and loaded first if there is none."""
    settings = Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")
    if settings.warehouse_path.exists():
        return settings.warehouse_path
    settings.ensure_home()
    from etl.generate import generate_store
    from etl.load import load_files

    started = time.perf_counter()
    generate_store(home / "store", customers=customers, seed=seed)
    load_files(settings, [home / "store"], mapping="canonical")
    console.print(f"generated and loaded {customers:,} customers into {home} in "
                  f"{time.perf_counter() - started:.0f} s")
    return settings.warehouse_path


def scratch_settings(scratch: Path, warehouse: Path) -> Settings:
    """A fresh studio home reading ``warehouse`` through a symlink; state of its own.

    Only a folder this benchmark made (it holds a marker file) is emptied first.
    """
    marker = scratch / ".export-benchmark"
    if scratch.exists() and any(scratch.iterdir()) and not marker.exists():
        raise SystemExit(f"{scratch} is not empty and was not made by this benchmark; "
                         "pass another --scratch.")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    marker.touch()
    (scratch / "warehouse.duckdb").symlink_to(warehouse.resolve())
    return Settings(home=scratch, state_url=f"sqlite:///{scratch / 'state.db'}")


def save_audience(settings: Settings, members: int) -> tuple[str, set[str]]:
    """Save "signed up before day D", D the last day that keeps ``members`` or fewer consented.

    Returns the segment's name and the customer ids it should reach, by the tests'
    reference consent SQL (not the studio's).
    """
    query = (f"SELECT customer_id, signed_up_at FROM customers WHERE customer_id IN "
             f"({CONSENTED_SQL}) ORDER BY signed_up_at, customer_id")
    with connect_reader(settings) as con:
        consented = con.execute(query, ["email", "email"]).fetchall()
    if len(consented) <= members:
        raise SystemExit(f"the warehouse has {len(consented):,} e-mail subscribers, not more "
                         f"than {members:,}; use a larger --home (or --customers to build one).")
    day = consented[members][1].date()  # the first member too many signed up that day
    chosen = {customer for customer, at in consented if at.date() < day}
    name = f"Export bench {members}"
    rule = {"profile": {"field": "signed_up_at", "op": "before", "value": str(day)}}
    library.save_segment(settings, parse_definition({"name": name, "rule": rule}), user="bench")
    return name, chosen


def emails_of(settings: Settings, customer_ids: set[str]) -> set[str]:
    """The engine's keys for these customers: ``email:<address>``."""
    with connect_reader(settings) as con:
        rows = con.execute("SELECT customer_id, email FROM customers").fetchall()
    return {f"email:{email}" for customer, email in rows if customer in customer_ids}


# ---------------------------------------------------------------- (1) REST


class Clock:
    """Progress callback noting when the first batch was confirmed (the setup's end)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first_batch: float | None = None

    def __call__(self, label: str, _fraction: float) -> None:
        """Note the time of the first "Sending" report."""
        if label.startswith("Sending") and self.first_batch is None:
            self.first_batch = time.perf_counter() - self.started


def serve_engine(pipe, **knobs) -> None:
    """Run the send engine in this (child) process until told to stop; send back its state.

    The engine runs apart from the exporting process, as a real one does, so that its
    threads and the client's do not share one interpreter lock. Its cyclic garbage
    collector is off: the store grows to 100,000 contacts of nested dicts (no cycles,
    freed by reference counting anyway), and full collections over them paused the
    stand-in for 150 to 300 ms every few seconds, a latency of Python's, not of the API.
    """
    gc.disable()
    with SendEngine(**knobs) as engine:
        pipe.send(engine.url)
        pipe.recv()
        pipe.send({"contacts": set(engine.contacts), "applied": Counter(engine.applied),
                   "statuses": engine.statuses(), "body_sizes": engine.body_sizes})


def rest_round(settings: Settings, segment: str, expected: set[str]) -> dict:
    """One timed export to a fresh engine; checks it holds everyone once."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve_engine, args=(theirs,), kwargs={
            "api_key": API_KEY, "rate_per_minute": RATE_PER_MINUTE, "burst": 1,
            "polls_in_progress": 0})
    child.start()
    try:
        url = ours.recv()
        clock = Clock()
        result = export_audience(settings, segment, f"omnisend:{url}", progress=clock)
        seconds = time.perf_counter() - clock.started
        ours.send("stop")
        engine = ours.recv()
    finally:
        child.join(30)
    applied, statuses = engine["applied"], engine["statuses"]
    if engine["contacts"] != expected or set(applied.values()) != {1}:
        raise SystemExit(f"the engine holds {len(engine['contacts']):,} contacts (expected "
                         f"{len(expected):,}), applied at most {max(applied.values())}x")
    if result.status != "succeeded" or result.counts["sent"] != len(expected):
        raise SystemExit(f"the run ended {result.status} with {result.counts}")
    batches = math.ceil(len(expected) / BATCH_ITEMS)
    floor = batches * 60 / RATE_PER_MINUTE
    return {"members": len(expected), "seconds": seconds, "batches": batches, "floor": floor,
            "ratio": seconds / floor, "requests": sum(statuses.values()),
            "429s": statuses.get(429, 0), "first_batch": clock.first_batch,
            "max_body": max(engine["body_sizes"])}


def run_rest(settings: Settings, members: int, rounds: int) -> list[dict]:
    os.environ["STUDIO_OMNISEND_API_KEY"] = API_KEY
    segment, ids = save_audience(settings, members)
    expected = emails_of(settings, ids)
    results = []
    for number in range(rounds):
        results.append(rest_round(settings, segment, expected))
        r = results[-1]
        console.print(f"REST round {number + 1}: {r['seconds']:.2f} s for {r['members']:,} "
                      f"members, floor {r['floor']:.2f} s, ratio {r['ratio']:.3f}, "
                      f"{r['429s']} x 429", highlight=False)
    return results


# ---------------------------------------------------------------- (2) Parquet


def baseline_copy(settings: Settings, segment: str, channel: str = "email") -> tuple[str, list]:
    """The consented-members query the studio runs for ``segment``, compiled the same way."""
    definition = library.load_segment(settings, segment)
    with connect_reader(settings) as con:
        compiler = Compiler(default_as_of(con), library.resolver(settings),
                            rollups=rollup_coverage(con))
        return to_sql(consented_members(con, compiler.members_query(definition.rule),
                                        channel))


def bare_duckdb(settings: Settings) -> duckdb.DuckDBPyConnection:
    """DuckDB as an analyst opens it: the warehouse attached read-only, files allowed."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{settings.warehouse_path}' AS warehouse (READ_ONLY)")
    con.execute("USE warehouse")
    return con


def run_parquet(settings: Settings, members: int, repeat: int) -> dict:
    segment, ids = save_audience(settings, members)
    sql, params = baseline_copy(settings, segment)
    con = bare_duckdb(settings)
    baseline_path = settings.home / "baseline.parquet"
    studio_path = settings.home / "studio.parquet"

    def studio(path: Path) -> float:
        started = time.perf_counter()
        result = export_audience(settings, segment, f"parquet:{path}")
        seconds = time.perf_counter() - started
        if result.counts["consented"] != len(ids) or result.status != "succeeded":
            raise SystemExit(f"the studio exported {result.counts}, not {len(ids):,} members")
        return seconds

    def baseline() -> float:
        started = time.perf_counter()
        con.execute(f"COPY ({sql}) TO '{baseline_path}' (FORMAT parquet)", params)
        return time.perf_counter() - started

    studio(studio_path), baseline()  # warm-up: caches, and the file's first state
    ours, theirs = pl.read_parquet(studio_path), pl.read_parquet(baseline_path)
    if not ours.equals(theirs) or set(ours["customer_id"]) != ids:
        raise SystemExit("the studio's file and COPY's differ; the timings would compare "
                         "different work.")
    sides = [("first", lambda n: studio(settings.home / f"first-{n}.parquet")),
             ("again", lambda _n: studio(studio_path)), ("baseline", lambda _n: baseline())]
    times: dict[str, list[float]] = {side: [] for side, _ in sides}
    for number in range(repeat):
        for side, function in sides if number % 2 == 0 else reversed(sides):
            times[side].append(function(number))
        (settings.home / f"first-{number}.parquet").unlink()
        console.print(f"Parquet round {number + 1}: " + ", ".join(
            f"{side} {t[-1]:.2f} s" for side, t in times.items()), highlight=False)
    medians = {side: statistics.median(t) for side, t in times.items()}
    return {"members": len(ids), "times": times, "medians": medians,
            "bytes": (studio_path.stat().st_size, baseline_path.stat().st_size)}


# ---------------------------------------------------------------- report


def report_rest(results: list[dict]) -> None:
    table = Table(title=f"REST: omnisend at {RATE_PER_MINUTE}/min, no burst, client headroom "
                        f"{PACING_HEADROOM:.0%}")
    for column in ("round", "members", "batches", "seconds", "floor s", "ratio", "requests",
                   "429s", "first batch s", "largest body"):
        table.add_column(column, justify="right")
    for number, r in enumerate(results, 1):
        table.add_row(str(number), f"{r['members']:,}", str(r["batches"]),
                      f"{r['seconds']:.2f}", f"{r['floor']:.2f}", f"{r['ratio']:.3f}",
                      str(r["requests"]), str(r["429s"]), f"{r['first_batch']:.2f}",
                      f"{r['max_body']:,} B")
    console.print(table)
    worst = max(r["ratio"] for r in results)
    console.print(f"REST: worst ratio {worst:.3f} (goal <= {REST_GOAL}): "
                  f"{'met' if worst <= REST_GOAL else 'NOT met'}", highlight=False)


def report_parquet(r: dict) -> None:
    medians = r["medians"]
    table = Table(title=f"Parquet: {r['members']:,} members, median of "
                        f"{len(r['times']['baseline'])} interleaved rounds")
    for column in ("side", "median s", "rounds s", "/ COPY", "file bytes"):
        table.add_column(column, justify="right")
    for side, label in (("first", "export_audience, a new file"),
                        ("again", "export_audience, the same file again"),
                        ("baseline", "bare DuckDB COPY")):
        size = r["bytes"][1] if side == "baseline" else r["bytes"][0]
        table.add_row(label, f"{medians[side]:.3f}",
                      " ".join(f"{t:.2f}" for t in r["times"][side]),
                      f"{medians[side] / medians['baseline']:.2f}", f"{size:,}")
    console.print(table)
    worst = max(medians["first"], medians["again"]) / medians["baseline"]
    console.print(f"Parquet: ratio {worst:.2f} (the slower studio side; goal <= "
                  f"{PARQUET_GOAL}): {'met' if worst <= PARQUET_GOAL else 'NOT met'}",
                  highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", action="store_true", help="run the REST part")
    parser.add_argument("--parquet", action="store_true", help="run the Parquet part")
    parser.add_argument("--members", type=int, help="audience size (default: 100,000 for "
                        "REST, 1,000,000 for Parquet)")
    parser.add_argument("--home", type=Path, default=Path("/tmp/exportbench-home"),
                        help="studio home whose warehouse is read (built there if missing)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/exportbench-scratch"),
                        help="studio home for the state and files (emptied first)")
    parser.add_argument("--customers", type=int, default=1_700_000,
                        help="customers to generate when --home has no warehouse")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed Parquet rounds")
    parser.add_argument("--rest-rounds", type=int, default=1, help="timed REST exports")
    args = parser.parse_args()
    both = not (args.rest or args.parquet)

    warehouse = prepare_warehouse(args.home, args.customers, args.seed)
    settings = scratch_settings(args.scratch, warehouse)
    console.print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
                  f"warehouse {warehouse}", highlight=False)
    if both or args.rest:
        report_rest(run_rest(settings, args.members or 100_000, args.rest_rounds))
    if both or args.parquet:
        report_parquet(run_parquet(settings, args.members or 1_000_000, args.repeat))
    console.print(f"load average after: {os.getloadavg()[0]:.1f}", highlight=False)


if __name__ == "__main__":
    main()
