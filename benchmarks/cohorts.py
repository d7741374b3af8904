"""Cohort benchmark: every Cohorts view against a hand-written DuckDB query, and the page.

On a demo warehouse of about 3,000,000 orders and 20,000,000 events (the 1,000,000-customer
store), in one run and on one read-only connection, times

(a) each view as the Cohorts page builds it (SQLAlchemy statement, compile, run, polars
    frame, figure, readable SQL): the retention matrix, days to the second order, the
    repeat-purchase curve, the RFM grid, the RFM movement, the funnel and the segment
    comparison, all over the whole date range;
(b) a hand-written DuckDB query for the same numbers, the way an analyst who knows DuckDB
    writes it (CTEs, FILTER, QUALIFY, ASOF joins, ``list_position``), fetched into polars.

Both sides must return the same frame (same rows, equal numbers) or the run stops. Each
timing is the median of ``--repeat`` runs after one untimed warm-up, the sides interleaved
so that noise on this shared machine hits them alike. Goal: studio/SQL at most 1.3 per view.

Then (c) the page: ``pages/cohorts.py`` rendered by Streamlit's AppTest until the retention
heatmap is drawn, against the hand-written retention query. The first render in the process
pays for the imports and opening the warehouse; later renders are new sessions on the
cached connection, with the page's query results cleared (a first look at a newly loaded
warehouse) and kept (someone has looked already).

    python benchmarks/cohorts.py                          # the store in /tmp/segbench-home
    python benchmarks/cohorts.py --home /tmp/other --customers 50000   # a quick look
    python benchmarks/cohorts.py --views funnel --explain  # EXPLAIN ANALYZE both sides

``--home`` is only read when it already holds a warehouse: the saved segments and the page's
state live in a scratch home (``--scratch``) whose ``warehouse.duckdb`` links to it. An empty
``--home`` gets a generated store of ``--customers`` customers (as benchmarks/segments.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import polars as pl  # noqa: E402

from studio.cohorts import compare, repeat_purchase, retention  # noqa: E402
from studio.cohorts.common import EVERYTHING  # noqa: E402
from studio.cohorts.funnels import DEFAULT_STEPS, funnel, funnel_statement  # noqa: E402
from studio.cohorts.rfm_movement import NO_PURCHASE, rfm_grid, rfm_movement  # noqa: E402
from studio.config import Settings  # noqa: E402
from studio.rfm import GROUP_GRID  # noqa: E402
from studio.segments import library  # noqa: E402
from studio.segments.catalog import RFM_GROUPS  # noqa: E402
from studio.segments.definition import parse_definition  # noqa: E402
from studio.sql import to_sql  # noqa: E402
from studio.warehouse import connect_reader  # noqa: E402

DEFAULT_HOME = Path("/tmp/segbench-home")
FUNNEL_WITHIN = timedelta(days=1)
MOVEMENT_DAYS = 90
SEGMENTS = {
    "Germany": {"profile": {"field": "country", "op": "equals", "value": "DE"}},
    "Repeat buyers": {"orders": {"metric": "count", "op": "gte", "value": 2}},
}
"""Saved in the scratch home for the comparison; the hand-written SQL below mirrors them."""

# ---------------------------------------------------------------- the warehouse


def prepare_homes(home: Path, scratch: Path, customers_wanted: int, seed: int) -> Settings:
    """The scratch home's settings: its warehouse links to ``home``'s, its segments are saved.

    ``home`` is written only when it holds no warehouse yet (a store is generated there).
    """
    source = Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")
    if not source.warehouse_path.exists():
        from etl.generate import generate_store
        from etl.load import load_files

        source.ensure_home()
        started = time.perf_counter()
        generate_store(home / "store", customers=customers_wanted, seed=seed)
        load_files(source, [home / "store"], mapping="canonical")
        print(f"generated and loaded {customers_wanted:,} customers into {home} in "
              f"{time.perf_counter() - started:.0f} s")
    scratch.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=scratch, state_url=f"sqlite:///{scratch / 'state.db'}")
    link = settings.warehouse_path
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source.warehouse_path.resolve())
    for name, rule in SEGMENTS.items():
        library.save_segment(settings, parse_definition({"name": name, "rule": rule}),
                             user="benchmark")
    return settings


def describe_store(con) -> str:
    orders, buyers, events, latest = con.execute(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customer_order_summary), "
        "(SELECT count(*) FROM events), (SELECT max(ordered_at) FROM orders)").fetchall()[0]
    return (f"{orders:,} orders ({buyers:,} buyers), {events:,} events, "
            f"latest order {latest}")


# ---------------------------------------------------------------- (b) hand-written SQL

VALID = ("kind = 'sale' AND status = 'completed' AND NOT coalesce(is_guest, false) "
         "AND customer_id IS NOT NULL")


def _rfm_groups_values() -> str:
    """The (r, f, group) grid as a VALUES list, and the groups' display order."""
    return ", ".join(f"({r}, {f + 1}, '{name.replace(chr(39), chr(39) * 2)}')"
                     for r, names in GROUP_GRID.items() for f, name in enumerate(names))


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def retention_sql() -> str:
    """Monthly first-purchase cohorts over everything: the usual triangle, by hand."""
    return f"""
WITH valid AS (SELECT customer_id, ordered_at, CAST(total AS DECIMAL(18, 2)) AS total
               FROM orders WHERE {VALID}),
cap AS (SELECT date_trunc('month', max(ordered_at)) AS last_month FROM orders),
firsts AS (SELECT customer_id, date_trunc('month', min(ordered_at)) AS cohort_start
           FROM valid GROUP BY customer_id),
sizes AS (SELECT cohort_start, count(*) AS customers FROM firsts GROUP BY cohort_start),
cells AS (SELECT f.cohort_start,
                 date_diff('month', f.cohort_start, date_trunc('month', v.ordered_at)) AS k,
                 count(DISTINCT v.customer_id) AS returning, sum(v.total) AS revenue
          FROM valid v JOIN firsts f USING (customer_id) GROUP BY ALL),
grid AS (SELECT cohort_start, customers,
                unnest(range(0, date_diff('month', cohort_start, (SELECT last_month FROM cap))
                             + 1)) AS k
         FROM sizes)
SELECT strftime(g.cohort_start, '%Y-%m') AS cohort, g.k AS period_offset, g.customers,
       coalesce(c.returning, 0) AS returning,
       coalesce(c.returning, 0) / g.customers AS share_returning,
       coalesce(c.revenue, 0) AS revenue,
       coalesce(c.revenue, 0)::DOUBLE
           / first_value(c.revenue) OVER (PARTITION BY g.cohort_start ORDER BY g.k)::DOUBLE
           AS revenue_retention,
       sum(coalesce(c.revenue, 0)) OVER (PARTITION BY g.cohort_start ORDER BY g.k)::DOUBLE
           / g.customers AS cumulative_revenue_per_customer
FROM grid g LEFT JOIN cells c USING (cohort_start, k)
ORDER BY cohort, period_offset"""


SECOND_PURCHASES = f"""
WITH buyers AS (SELECT customer_id, min(ordered_at, 2) AS earliest
                FROM orders WHERE {VALID} GROUP BY customer_id),
days AS (SELECT strftime(date_trunc('month', earliest[1]), '%Y-%m') AS cohort,
                earliest[2] AS second_at,
                floor(date_diff('microsecond', earliest[1], earliest[2]) / 86400e6)::BIGINT
                    AS second_day,
                floor(date_diff('microsecond', earliest[1],
                                (SELECT max(ordered_at) FROM orders)) / 86400e6)::BIGINT
                    AS observed_days
         FROM buyers)"""
"""Every buyer's first and second purchase (the whole range: every purchase is before the
cap, the latest order) and whole days to the second and of observation. ``min(x, 2)``
keeps the two earliest times in one grouping pass (a ``row_number`` window over every
order takes about three times as long)."""


def second_order_sql(bin_days: int = 7) -> str:
    return SECOND_PURCHASES + f"""
SELECT (floor(second_day / {bin_days}) * {bin_days})::BIGINT AS days_from,
       days_from + {bin_days} AS days_to, count(*) AS customers,
       count(*) / sum(count(*)) OVER () AS share_of_repeaters,
       count(*) / (SELECT count(*) FROM days) AS share_of_customers
FROM days WHERE second_day IS NOT NULL GROUP BY days_from ORDER BY days_from"""


def repeat_curve_sql(max_days: int = 365) -> str:
    """Of those watched d days, who came back within d: running sums of two histograms."""
    return SECOND_PURCHASES + f"""
, sizes AS (SELECT cohort, count(*) AS n FROM days GROUP BY cohort),
by_second AS (SELECT cohort, second_day AS day, count(*) AS n FROM days
              WHERE second_day <= {max_days} GROUP BY ALL),
by_watch AS (SELECT cohort, observed_days AS day, count(*) AS n, count(second_at) AS back
             FROM days WHERE observed_days <= {max_days} GROUP BY ALL),
grid AS (SELECT cohort, n, unnest(range(0, {max_days + 1})) AS day FROM sizes),
curve AS (
    SELECT g.cohort, g.day,
           g.n - coalesce(sum(w.n) OVER earlier, 0) AS customers,
           coalesce(sum(s.n) OVER so_far, 0) - coalesce(sum(w.back) OVER earlier, 0)
               AS repeaters
    FROM grid g LEFT JOIN by_second s USING (cohort, day) LEFT JOIN by_watch w USING (cohort, day)
    WINDOW earlier AS (PARTITION BY g.cohort ORDER BY g.day
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           so_far AS (PARTITION BY g.cohort ORDER BY g.day ROWS UNBOUNDED PRECEDING))
SELECT cohort, day, customers::BIGINT AS customers, repeaters::BIGINT AS repeaters,
       repeaters / customers AS share_repeat
FROM curve WHERE customers > 0 ORDER BY cohort, day"""


def _scored(name: str, buyers: str) -> str:
    """A CTE scoring ``buyers`` (customer_id, last_at, purchases, revenue) into RFM groups."""
    return f"""{name} AS (
    SELECT b.customer_id, b.revenue, m.rfm_group FROM (
        SELECT *, ceil(5 * cume_dist() OVER (ORDER BY last_at)) AS r,
                  least(purchases, 5) AS f FROM ({buyers})) b
    JOIN (VALUES {_rfm_groups_values()}) m(r, f, rfm_group) USING (r, f))"""


SUMMARY_BUYERS = ("SELECT customer_id, last_order_at AS last_at, purchases, revenue "
                  "FROM customer_order_summary")
"""The ETL's per-buyer summary, exact at the latest order (the studio reads it there too)."""


def rfm_grid_sql() -> str:
    return f"""
WITH {_scored("scored", SUMMARY_BUYERS)},
per_group AS (SELECT rfm_group, count(*) AS customers, sum(revenue) AS revenue
              FROM scored GROUP BY rfm_group)
SELECT g.rfm_group, coalesce(p.customers, 0) AS customers,
       coalesce(p.customers, 0) / sum(coalesce(p.customers, 0)) OVER () AS share_of_customers,
       coalesce(p.revenue, 0) AS revenue,
       coalesce(p.revenue, 0)::DOUBLE / sum(coalesce(p.revenue, 0)) OVER ()::DOUBLE
           AS share_of_revenue
FROM (SELECT unnest({_sql_list(RFM_GROUPS)}) AS rfm_group,
             generate_subscripts({_sql_list(RFM_GROUPS)}, 1) AS position) g
LEFT JOIN per_group p USING (rfm_group) ORDER BY g.position"""


def rfm_movement_sql(before: datetime) -> str:
    earlier = (f"SELECT customer_id, max(ordered_at) AS last_at, count(*) AS purchases, "
               f"sum(CAST(total AS DECIMAL(18, 2))) AS revenue FROM orders "
               f"WHERE {VALID} AND ordered_at <= {_ts(before)} GROUP BY customer_id")
    order = _sql_list([NO_PURCHASE, *RFM_GROUPS])
    return f"""
WITH {_scored("at_before", earlier)}, {_scored("at_after", SUMMARY_BUYERS)},
moves AS (SELECT coalesce(b.rfm_group, '{NO_PURCHASE}') AS from_group, a.rfm_group AS to_group,
                 count(*) AS customers
          FROM at_after a LEFT JOIN at_before b USING (customer_id) GROUP BY 1, 2)
SELECT *, customers / sum(customers) OVER (PARTITION BY from_group) AS share_of_from
FROM moves
ORDER BY list_position({order}, from_group), list_position({order}, to_group)"""


def funnel_sql(steps: list[str], within: timedelta) -> str:
    """The funnel with ASOF joins: each step the first occurrence after the previous one."""
    def source(step: str) -> str:
        if step == "order":
            return f"(SELECT customer_id, ordered_at AS happened_at FROM orders WHERE {VALID})"
        return (f"(SELECT customer_id, occurred_at AS happened_at FROM events "
                f"WHERE event_type = '{step}')")

    limit = f"INTERVAL {int(within.total_seconds())} SECOND"
    ctes = [f"a1 AS (SELECT DISTINCT customer_id, happened_at AS t1 FROM {source(steps[0])})"]
    for k, step in enumerate(steps[1:], start=2):
        earlier = ", ".join(f"p.t{j}" for j in range(1, k))
        ctes.append(
            f"a{k} AS (SELECT p.customer_id, {earlier}, "
            f"CASE WHEN e.happened_at <= p.t1 + {limit} THEN e.happened_at END AS t{k} "
            f"FROM a{k - 1} p ASOF LEFT JOIN {source(step)} e "
            f"ON e.customer_id = p.customer_id AND e.happened_at > p.t{k - 1})")
    n = len(steps)
    depth = " + ".join(f"(t{k} IS NOT NULL)::INT" for k in range(2, n + 1))
    per_step = " UNION ALL ".join(
        f"SELECT {k} AS step, '{step}' AS name, count(t{k}) AS customers, "
        + (f"median(epoch(t{k}) - epoch(t{k - 1}))" if k > 1 else "NULL::DOUBLE")
        + " AS median_seconds FROM best"
        for k, step in enumerate(steps, start=1))
    return ("WITH " + ",\n".join(ctes) + f""",
best AS (SELECT * FROM a{n}
         QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY {depth} DESC, t1) = 1),
counts AS ({per_step})
SELECT step, name, customers,
       customers / nullif(lag(customers) OVER (ORDER BY step), 0) AS conversion_from_previous,
       customers / nullif(first_value(customers) OVER (ORDER BY step), 0)
           AS conversion_from_first,
       median_seconds AS median_seconds_from_previous
FROM counts ORDER BY step""")


def compare_sql() -> str:
    """KPIs of every customer, the Germans and the repeat buyers (see ``SEGMENTS``)."""
    return f"""
WITH bought AS (SELECT customer_id, count(*) AS orders,
                       sum(CAST(total AS DECIMAL(18, 2))) AS revenue
                FROM orders WHERE {VALID} GROUP BY customer_id),
members AS (
    SELECT 0 AS position, 'All customers' AS segment, customer_id FROM customers
    UNION ALL SELECT 1, 'Germany', customer_id FROM customers WHERE country = 'DE'
    UNION ALL SELECT 2, 'Repeat buyers', customer_id FROM customers
              WHERE customer_id IN (SELECT customer_id FROM customer_order_summary
                                    WHERE purchases >= 2)),
consent AS (SELECT customer_id, bool_or(channel = 'email') AS email,
                   bool_or(channel = 'sms') AS sms
            FROM consent_current WHERE status = 'subscribed' GROUP BY customer_id),
kpis AS (
    SELECT position, segment, count(*) AS customers, count(b.customer_id) AS buyers,
           coalesce(sum(b.orders), 0)::BIGINT AS orders, coalesce(sum(b.revenue), 0) AS revenue,
           count(*) FILTER (WHERE b.orders >= 2) AS repeat_buyers,
           count(*) FILTER (WHERE c.email) AS email, count(*) FILTER (WHERE c.sms) AS sms
    FROM members m LEFT JOIN bought b USING (customer_id) LEFT JOIN consent c USING (customer_id)
    GROUP BY position, segment)
SELECT segment, customers, buyers, orders, revenue,
       revenue::DOUBLE / nullif(orders, 0) AS average_order_value,
       orders / nullif(buyers, 0) AS orders_per_buyer,
       repeat_buyers / nullif(buyers, 0) AS repeat_rate,
       revenue::DOUBLE / nullif(customers, 0) AS revenue_per_customer,
       email / nullif(customers, 0) AS share_email_subscribed,
       sms / nullif(customers, 0) AS share_sms_subscribed
FROM kpis ORDER BY position"""


# ---------------------------------------------------------------- the views


def views(settings: Settings, latest: datetime) -> dict[str, tuple[Callable, Callable, str]]:
    """Each view's studio call, its statement's SQL (for EXPLAIN) and the hand-written SQL."""
    before = latest - timedelta(days=MOVEMENT_DAYS)
    steps = list(DEFAULT_STEPS)
    return {
        "retention": (lambda con: retention.retention_matrix(con),
                      lambda con: to_sql(retention.retention_statement()), retention_sql()),
        "second order": (lambda con: repeat_purchase.time_to_second_order(con),
                         lambda con: to_sql(repeat_purchase.time_to_second_order_statement()),
                         second_order_sql()),
        "repeat curve": (lambda con: repeat_purchase.repeat_purchase_curve(con),
                         lambda con: to_sql(repeat_purchase.repeat_curve_statement()),
                         repeat_curve_sql()),
        "rfm grid": (lambda con: rfm_grid(con, latest), None, rfm_grid_sql()),
        "rfm movement": (lambda con: rfm_movement(con, before, latest), None,
                         rfm_movement_sql(before)),
        "funnel": (lambda con: funnel(con, steps, within=FUNNEL_WITHIN, filter=EVERYTHING),
                   lambda con: to_sql(funnel_statement(steps, FUNNEL_WITHIN, EVERYTHING)),
                   funnel_sql(steps, FUNNEL_WITHIN)),
        "compare": (lambda con: compare.compare_segments(settings, con, list(SEGMENTS)),
                    lambda con: to_sql(compare.compare_statement(settings, con,
                                                                 list(SEGMENTS))),
                    compare_sql()),
    }


def hand_frame(con, sql: str) -> pl.DataFrame:
    return con.sql(sql).pl()


def check_same(name: str, studio: pl.DataFrame, hand: pl.DataFrame) -> None:
    """Stop unless both frames hold the same rows: exact for text and counts, 1e-9 for ratios."""
    if studio.shape != hand.shape:
        raise SystemExit(f"{name}: the studio gives {studio.shape} rows x columns, the "
                         f"hand-written SQL {hand.shape}")
    for mine, theirs in zip(studio.columns, hand.columns, strict=True):
        a, b = studio[mine], hand[theirs]
        if a.dtype.is_numeric() and b.dtype.is_numeric():
            a, b = a.cast(pl.Float64), b.cast(pl.Float64)
            same = ((a - b).abs() <= 1e-9 * b.abs().clip(lower_bound=1)) | (
                a.is_null() & b.is_null())
            agree = bool(same.fill_null(False).all())
        else:
            agree = a.cast(pl.String).to_list() == b.cast(pl.String).to_list()
        if not agree:
            raise SystemExit(f"{name}: column {mine!r} differs between the studio and the "
                             "hand-written SQL, so the timings would compare different things")


def timed(function: Callable, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def measure(con, name: str, studio: Callable, hand: str, repeat: int) -> tuple[float, float]:
    """Median seconds of the studio's view and of the hand-written query (checked equal)."""
    check_same(name, studio(con).frame, hand_frame(con, hand))
    times: dict[str, list[float]] = {"studio": [], "sql": []}
    for _ in range(repeat):
        times["studio"].append(timed(studio, con))
        times["sql"].append(timed(hand_frame, con, hand))
    return statistics.median(times["studio"]), statistics.median(times["sql"])


def explain(con, name: str, statement_sql: Callable | None, hand: str) -> None:
    """EXPLAIN ANALYZE of both sides, as DuckDB prints it."""
    if statement_sql is None:
        print(f"{name}: no separate statement to explain")
        return
    sql, params = statement_sql(con)
    for label, text, values in (("studio", sql, params), ("hand-written", hand, [])):
        print(f"\n===== {name}: {label}\n")
        print(con.execute("EXPLAIN ANALYZE " + text, values).fetchall()[0][1])


# ---------------------------------------------------------------- (c) the page


def page_renders(settings: Settings, renders: int) -> dict[str, list[float]]:
    """Seconds to render ``pages/cohorts.py`` until the retention heatmap is drawn.

    ``cold``: the first render in the process (imports, opening the warehouse, nothing
    cached). Then ``renders - 1`` times a new session twice: ``uncached`` with the page's
    query results cleared first (a visitor's first look at a newly loaded warehouse), and
    ``cached`` right after (a visitor after someone has already looked).
    """
    os.environ["STUDIO_HOME"] = str(settings.home)
    os.environ.pop("STUDIO_STATE_URL", None)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def render() -> float:
        started = time.perf_counter()
        app = AppTest.from_file(str(REPO_ROOT / "pages" / "cohorts.py"),
                                default_timeout=1800).run()
        seconds = time.perf_counter() - started
        if app.exception or app.error:
            raise SystemExit(f"the page failed: {[e.value for e in app.exception or app.error]}")
        kinds = [trace["type"] for chart in app.get("plotly_chart")
                 for trace in json.loads(chart.proto.spec)["data"]]
        if kinds != ["heatmap"]:
            raise SystemExit(f"the page drew {kinds}, not the retention heatmap")
        return seconds

    seconds: dict[str, list[float]] = {"cold": [render()], "uncached": [], "cached": []}
    for _ in range(renders - 1):
        st.cache_data.clear()
        seconds["uncached"].append(render())
        seconds["cached"].append(render())
    return seconds


def empty_page_render() -> float:
    """Seconds AppTest itself takes to render a page holding only a title (median of 3).

    Part of every page render above; the page's own cost is what is left.
    """
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "empty.py"
        page.write_text("import streamlit as st\n\nst.title('Empty')\n")
        return statistics.median(
            timed(lambda: AppTest.from_file(str(page), default_timeout=60).run())
            for _ in range(3))


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="studio home holding the warehouse (only read when it has one)")
    parser.add_argument("--scratch", type=Path,
                        default=Path(tempfile.gettempdir()) / "studio-cohorts-bench",
                        help="scratch home for the saved segments and the page's state")
    parser.add_argument("--customers", type=int, default=1_000_000,
                        help="store size to generate when --home has no warehouse")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    parser.add_argument("--renders", type=int, default=4,
                        help="page renders (the first is cold)")
    parser.add_argument("--views", nargs="*", help="only these views")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of both sides instead of timing")
    args = parser.parse_args()

    settings = prepare_homes(args.home, args.scratch, args.customers, args.seed)
    con = connect_reader(settings)
    latest = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
    print(f"store: {describe_store(con)}")
    chosen = {name: view for name, view in views(settings, latest).items()
              if not args.views or name in args.views}
    if args.explain:
        for name, (_studio, statement_sql, hand) in chosen.items():
            explain(con, name, statement_sql, hand)
        return
    load_before = os.getloadavg()[0]
    rows = []
    for name, (studio, _statement, hand) in chosen.items():
        studio_s, sql_s = measure(con, name, studio, hand, args.repeat)
        rows.append((name, studio_s, sql_s))
        print(f"  {name:14} studio {studio_s:7.3f} s   SQL {sql_s:7.3f} s   "
              f"ratio {studio_s / sql_s:5.2f}", flush=True)
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the views, "
          f"{os.getloadavg()[0]:.1f} after; median of {args.repeat} runs after a warm-up")
    header = f"{'view':14} {'studio s':>9} {'SQL s':>8} {'ratio':>6}"
    print(header + "\n" + "-" * len(header))
    for name, studio_s, sql_s in rows:
        print(f"{name:14} {studio_s:9.3f} {sql_s:8.3f} {studio_s / sql_s:6.2f}")
    worst = max(rows, key=lambda row: row[1] / row[2])
    print(f"\nworst studio/SQL ratio: {worst[1] / worst[2]:.2f} ({worst[0]}); goal <= 1.3 per "
          f"view: {'met' if worst[1] / worst[2] <= 1.3 else 'NOT met'}")

    if args.renders and (not args.views or "retention" in args.views):
        raw = statistics.median(timed(hand_frame, con, retention_sql()) for _ in range(3))
        con.close()
        renders = page_renders(settings, args.renders)
        harness = empty_page_render()
        print(f"\npage: first render of pages/cohorts.py (retention heatmap) against the raw "
              f"retention query ({raw:.2f} s); AppTest alone renders an empty page in "
              f"{harness:.2f} s")
        for label, seconds in renders.items():
            if seconds:
                median = statistics.median(seconds)
                print(f"  {label:9} {median:6.2f} s (median of {len(seconds)})   ratio "
                      f"{median / raw:5.2f}   without AppTest's own time "
                      f"{(median - harness) / raw:5.2f}")

if __name__ == "__main__":
    main()
