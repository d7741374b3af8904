"""A/B benchmark: the studio's full campaign analysis against the bare SQL it needs.

Builds (or reuses) a warehouse holding one three-arm e-mail campaign test of 10,000,000
recipients, written straight into the studio schema with DuckDB SQL (the ETL would take
far too long at this size): opens, clicks and unsubscribes at realistic rates, about 2%
of recipients buying within five days (lognormal order totals), pre-period orders that
make CUPED worth something, orders outside every window, cancelled orders and guest
checkouts that must not count, one recipient in 5,000 sent the campaign twice (half of
them in another arm) and a few sends without a variant. Then, in one run and on one
read-only connection, it times

(a) the studio: ``aggregate_campaign`` + ``analyze_experiment`` + ``describe_result``, what
    ``studio ab campaign`` and the A/B results page run;
(b) the bare SQL aggregation that analysis needs: a hand-written DuckDB query returning
    the same per-arm sufficient statistics with the same semantics (each recipient once,
    in the arm of their first send; orders in the five days after that send; spend in the
    30 days up to it as the CUPED covariate; valid orders only).

Both sides must agree (counts exactly, sums to 1e-9 relative: DuckDB adds floating-point
numbers in parallel, in no fixed order) or the run stops. Each timing is the median of
``--repeat`` runs after one untimed warm-up, the sides interleaved so that noise on this
shared machine hits them alike. Goal: studio / SQL at most 1.3.

    python benchmarks/ab.py                          # 10M recipients in /tmp/abbench-home
    python benchmarks/ab.py --recipients 1000000 --home /tmp/abbench-1m
    python benchmarks/ab.py --explain                # EXPLAIN ANALYZE of both queries
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from studio.config import Settings  # noqa: E402
from studio.experiments.analysis import analyze_experiment  # noqa: E402
from studio.experiments.campaigns import aggregate_campaign, campaign_query  # noqa: E402
from studio.experiments.reading import describe_result  # noqa: E402
from studio.warehouse import connect_reader, writer  # noqa: E402

CAMPAIGN_ID = "ABBENCH"
SENT_AT = "TIMESTAMP '2024-05-14 09:00:00'"
VARIANTS = [("A", 0.34), ("B", 0.33), ("C", 0.33)]
# Per arm: open, click, unsubscribe and conversion rates (conversion before the lift that
# pre-period buyers get, which keeps the average near the stated rate).
RATES = {"A": (0.22, 0.030, 0.0020, 0.0200), "B": (0.24, 0.034, 0.0022, 0.0215),
         "C": (0.22, 0.031, 0.0025, 0.0205)}
TWICE_EVERY = 5_000  # every 5,000th recipient is sent the campaign a second time
NO_VARIANT = 100  # extra sends without a variant
BACKGROUND_ORDERS_PER_RECIPIENT = 0.3  # orders of anyone, at any time of the year

# ---------------------------------------------------------------- the warehouse

_MACROS = [
    # A uniform number in [0, 1) drawn from (row, purpose): deterministic and parallel-safe.
    # The text is hashed: DuckDB's hash(i, salt) of two values is strongly correlated
    # across salts (0.98 between two of them), which would tie every draw to the arm.
    "CREATE OR REPLACE TEMP MACRO u(i, salt) AS "
    "hash(salt || ':' || i) / 18446744073709551616.0",
    "CREATE OR REPLACE TEMP MACRO normal(i, salt) AS "
    "sqrt(-2 * ln(greatest(u(i, salt || '1'), 1e-300))) * cos(2 * pi() * u(i, salt || '2'))",
    "CREATE OR REPLACE TEMP MACRO customer(i) AS 'C' || lpad(CAST(i AS VARCHAR), 9, '0')",
]


def _rate(position: int) -> str:
    """SQL for one of :data:`RATES`' columns, chosen by the row's ``variant``."""
    cases = " ".join(f"WHEN '{arm}' THEN {rates[position]}" for arm, rates in RATES.items())
    return f"CASE variant {cases} END"


def _sends_sql(recipients: int) -> str:
    """Every recipient's first send, then the second sends and the sends without a variant."""
    cut_a, cut_b = VARIANTS[0][1], VARIANTS[0][1] + VARIANTS[1][1]
    return f"""
CREATE TEMP TABLE recipients AS
SELECT i, customer(i) AS customer_id,
       CASE WHEN u(i, 'arm') < {cut_a} THEN 'A' WHEN u(i, 'arm') < {cut_b} THEN 'B'
            ELSE 'C' END AS variant,
       {SENT_AT} + to_seconds(CAST(floor(u(i, 'minute') * 7200) AS BIGINT)) AS sent_at,
       u(i, 'pre') < 0.06 AS pre_buyer
FROM range({recipients}) AS t(i);

INSERT INTO campaign_sends (send_id, campaign_id, customer_id, variant, sent_at, opened_at,
                            clicked_at, unsubscribed_at)
SELECT 'S' || i, '{CAMPAIGN_ID}', customer_id, variant, sent_at,
       CASE WHEN u(i, 'open') < {_rate(0)} THEN sent_at + to_minutes(30) END,
       CASE WHEN u(i, 'click') < {_rate(1)} THEN sent_at + to_minutes(40) END,
       CASE WHEN u(i, 'unsubscribe') < {_rate(2)} THEN sent_at + to_minutes(50) END
FROM recipients
UNION ALL  -- a second send ten minutes later, every other one in the next arm
SELECT 'S' || i || '-2', '{CAMPAIGN_ID}', customer_id,
       CASE WHEN i % (2 * {TWICE_EVERY}) = 0 THEN variant
            ELSE CASE variant WHEN 'A' THEN 'B' WHEN 'B' THEN 'C' ELSE 'A' END END,
       sent_at + to_minutes(10), NULL, NULL, NULL
FROM recipients WHERE i % {TWICE_EVERY} = 0
UNION ALL
SELECT 'SX' || i, '{CAMPAIGN_ID}', 'X' || i, NULL, {SENT_AT}, NULL, NULL, NULL
FROM range({NO_VARIANT}) AS t(i);
"""


def _orders_sql(recipients: int) -> str:
    """Orders in the window, after it, in the pre-period, and all year round."""
    background = int(recipients * BACKGROUND_ORDERS_PER_RECIPIENT)
    converts = f"u(i, 'convert') < {_rate(3)} * CASE WHEN pre_buyer THEN 2.5 ELSE 0.904 END"
    return f"""
INSERT INTO orders (order_id, customer_id, is_guest, ordered_at, kind, status, currency, total)
SELECT 'W' || i || '-' || k, customer_id, false,
       sent_at + to_seconds(1 + CAST(floor(u(i, 'when' || k) * 431999) AS BIGINT)),
       'sale', CASE WHEN u(i, 'cancel' || k) < 0.03 THEN 'cancelled' ELSE 'completed' END,
       'EUR', round(exp(4.0 + 0.8 * normal(i, 'total' || k)), 2)
FROM recipients, range(2) AS t(k)
WHERE {converts} AND (k = 0 OR u(i, 'second') < 0.2)
UNION ALL  -- converters often buy again a few days after the window closes
SELECT 'L' || i, customer_id, false,
       sent_at + to_days(5) + to_seconds(1 + CAST(floor(u(i, 'late') * 431999) AS BIGINT)),
       'sale', 'completed', 'EUR', round(exp(4.0 + 0.8 * normal(i, 'late')), 2)
FROM recipients WHERE {converts} AND u(i, 'again') < 0.3
UNION ALL  -- the pre-period: some spend in the 30 days before the send
SELECT 'P' || i, customer_id, false,
       sent_at - to_seconds(CAST(floor(u(i, 'pre_when') * 2591999) AS BIGINT)),
       'sale', 'completed', 'EUR', round(exp(4.2 + 0.9 * normal(i, 'pre_total')), 2)
FROM recipients WHERE pre_buyer
UNION ALL  -- anyone (some of them recipients), any time in the year before and after
SELECT 'B' || j, CASE WHEN u(j, 'guest') < 0.01 THEN NULL
                      ELSE customer(CAST(floor(u(j, 'who') * {2 * recipients}) AS BIGINT)) END,
       u(j, 'guest') < 0.01,
       TIMESTAMP '2023-11-01' + to_seconds(CAST(floor(u(j, 'day') * 31536000) AS BIGINT)),
       CASE WHEN u(j, 'kind') < 0.05 THEN 'return' ELSE 'sale' END,
       CASE WHEN u(j, 'status') < 0.04 THEN 'refunded' ELSE 'completed' END, 'EUR',
       round(CASE WHEN u(j, 'kind') < 0.05 THEN -1 ELSE 1 END
             * exp(4.0 + 0.8 * normal(j, 'total')), 2)
FROM range({background}) AS t(j);
"""


def build_warehouse(settings: Settings, recipients: int) -> None:
    """Write the campaign, its sends and the orders into a new warehouse."""
    started = time.perf_counter()
    variants = json.dumps([{"name": name, "weight": weight} for name, weight in VARIANTS])
    with writer(settings) as con:
        con.execute("SET enable_progress_bar = false")
        for macro in _MACROS:
            con.execute(macro)
        con.execute("INSERT INTO campaigns (campaign_id, name, channel, sent_at, variants, "
                    f"control_variant) VALUES (?, ?, 'email', {SENT_AT}, ?, 'A')",
                    [CAMPAIGN_ID, f"Benchmark test, {recipients:,} recipients", variants])
        con.execute(_sends_sql(recipients))
        con.execute(_orders_sql(recipients))
        con.execute("DROP TABLE recipients")
    print(f"built {settings.warehouse_path} in {time.perf_counter() - started:.0f} s")


def expected_sends(recipients: int) -> int:
    """Rows of ``campaign_sends`` that a warehouse built for ``recipients`` holds."""
    return recipients + len(range(0, recipients, TWICE_EVERY)) + NO_VARIANT


def prepare_warehouse(home: Path, recipients: int) -> Settings:
    """Settings whose warehouse holds the benchmark campaign for ``recipients``."""
    settings = Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")
    settings.ensure_home()
    if not settings.warehouse_path.exists():
        build_warehouse(settings, recipients)
    con = connect_reader(settings)
    try:
        held = con.execute("SELECT count(*) FROM campaign_sends WHERE campaign_id = ?",
                           [CAMPAIGN_ID]).fetchall()[0][0]
        orders = con.execute("SELECT count(*) FROM orders").fetchall()[0][0]
    finally:
        con.close()
    if held != expected_sends(recipients):
        raise SystemExit(f"{settings.warehouse_path} holds {held:,} sends of {CAMPAIGN_ID}, not "
                         f"the {expected_sends(recipients):,} of {recipients:,} recipients; "
                         "pass another --home or the matching --recipients.")
    print(f"warehouse {settings.warehouse_path}: {held:,} sends, {orders:,} orders")
    return settings


# ---------------------------------------------------------------- (a) the studio


def studio_analysis(con, campaign_id: str) -> tuple:
    """What ``studio ab campaign`` runs: aggregate, analyse, put into sentences.

    Returns the data, the reading and the seconds spent after the aggregation (the
    statistics and the sentences), so the run can say what the analysis itself adds.
    """
    data = aggregate_campaign(con, campaign_id)
    started = time.perf_counter()
    lines = describe_result(analyze_experiment(data))
    return data, lines, time.perf_counter() - started


# ---------------------------------------------------------------- (b) hand-written SQL
#
# Written apart from the studio's query, the way an analyst who knows DuckDB would: one
# row per recipient (first send's arm), the orders narrowed to the campaign's span before
# the join, the per-arm counts and the buyers' sums aggregated separately and put side by
# side. ``{campaign}`` becomes a string literal.

HAND_SQL = """
WITH recipient AS (
    SELECT customer_id,
           arg_min(variant, sent_at) AS arm,
           min(sent_at) AS first_sent,
           count(*) AS sends,
           min(variant) <> max(variant) AS in_several,
           bool_or(opened_at IS NOT NULL) AS opened,
           bool_or(clicked_at IS NOT NULL) AS clicked,
           bool_or(unsubscribed_at IS NOT NULL) AS unsubscribed
    FROM campaign_sends
    WHERE campaign_id = '{campaign}'
    GROUP BY ALL
),
per_arm AS (
    SELECT arm, count(*) AS units, count_if(in_several) AS several_arms,
           sum(sends) - count(*) AS repeated_sends, count_if(opened) AS opens,
           count_if(clicked) AS clicks, count_if(unsubscribed) AS unsubscribes
    FROM recipient
    GROUP BY ALL
),
purchase AS (
    SELECT customer_id, ordered_at, total
    FROM orders
    WHERE kind = 'sale' AND status = 'completed' AND NOT is_guest
      AND ordered_at > (SELECT min(first_sent) FROM recipient) - INTERVAL 30 DAY
      AND ordered_at <= (SELECT max(first_sent) FROM recipient) + INTERVAL 5 DAY
),
buyer AS (
    SELECT r.arm,
           count_if(p.ordered_at > r.first_sent) AS n_orders,
           coalesce(sum(p.total) FILTER (p.ordered_at > r.first_sent), 0) AS spend,
           coalesce(sum(p.total) FILTER (p.ordered_at <= r.first_sent), 0) AS pre
    FROM recipient AS r
    JOIN purchase AS p
      ON p.customer_id = r.customer_id
     AND p.ordered_at > r.first_sent - INTERVAL 30 DAY
     AND p.ordered_at <= r.first_sent + INTERVAL 5 DAY
    GROUP BY r.customer_id, r.arm
),
buyer_sums AS (
    SELECT arm, count_if(n_orders > 0) AS converters,
           sum(spend) AS revenue, sum(spend ^ 2) AS revenue_squares,
           sum(n_orders) AS orders, sum(n_orders * n_orders) AS orders_squares,
           sum(spend * n_orders) AS revenue_orders,
           sum(pre) AS pre_spend, sum(pre ^ 2) AS pre_spend_squares,
           sum(spend * pre) AS revenue_pre_spend,
           coalesce(sum(pre) FILTER (n_orders > 0), 0) AS converters_pre_spend
    FROM buyer
    GROUP BY ALL
)
SELECT * EXCLUDE (arm), arm AS variant
FROM per_arm LEFT JOIN buyer_sums USING (arm)
WHERE arm IS NOT NULL
ORDER BY arm
"""


def hand_sql(campaign_id: str) -> str:
    """The hand-written aggregation for ``campaign_id`` (a benchmark id: no quoting needed)."""
    return HAND_SQL.format(campaign=campaign_id)


def hand_aggregation(con, campaign_id: str) -> list[dict]:
    """Per-arm sufficient statistics from the hand-written query."""
    return con.sql(hand_sql(campaign_id)).pl().to_dicts()


# ---------------------------------------------------------------- agreement


def statistics_of(data) -> dict[str, dict[str, float]]:
    """The sums the analysis rests on, per arm, from the studio's ``ExperimentData``."""
    figures = {}
    for arm in data.arms:
        s = arm.statistics
        revenue, aov = s["revenue_per_recipient"], s["average_order_value"]
        figures[arm.name] = {
            "units": arm.units, "opens": s["open_rate"].sum, "clicks": s["click_rate"].sum,
            "unsubscribes": s["unsubscribe_rate"].sum,
            "converters": s["conversion_rate"].post.sum,
            "converters_pre_spend": s["conversion_rate"].sum_products,
            "revenue": revenue.post.sum, "revenue_squares": revenue.post.sum_squares,
            "pre_spend": revenue.pre.sum, "pre_spend_squares": revenue.pre.sum_squares,
            "revenue_pre_spend": revenue.sum_products, "orders": aov.denominator.sum,
            "orders_squares": aov.denominator.sum_squares, "revenue_orders": aov.sum_products,
        }
    return figures


def check_agreement(data, rows: list[dict]) -> None:
    """Stop unless the hand-written query gives the studio's figures (counts exactly)."""
    studio = statistics_of(data)
    hand = {row["variant"]: row for row in rows}
    if set(hand) != set(studio):
        raise SystemExit(f"the arms differ: studio {sorted(studio)}, hand-written {sorted(hand)}")
    several = sum(row["several_arms"] for row in rows)
    repeated = sum(row["repeated_sends"] for row in rows)
    if (several, repeated) != (data.assignment.units_in_several_arms,
                               data.assignment.duplicate_assignments):
        raise SystemExit(f"assignment counts differ: hand-written {(several, repeated)}, "
                         f"studio {data.assignment}")
    for arm, figures in studio.items():
        for name, value in figures.items():
            other = hand[arm][name] or 0
            exact = isinstance(other, int) and name not in (
                "revenue", "revenue_squares", "pre_spend", "pre_spend_squares",
                "revenue_pre_spend", "revenue_orders", "converters_pre_spend")
            if (value != other) if exact else not math.isclose(value, other, rel_tol=1e-9):
                raise SystemExit(f"arm {arm}, {name}: studio {value!r}, hand-written "
                                 f"{other!r}; the two disagree, so the timings would compare "
                                 "different things.")


# ---------------------------------------------------------------- timing and report


def timed(function: Callable, *args) -> tuple[float, object]:
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


def measure(con, campaign_id: str, repeat: int) -> dict[str, list[float]]:
    """Time both sides ``repeat`` times, interleaved, after one checked warm-up."""
    data, lines, _ = studio_analysis(con, campaign_id)
    check_agreement(data, hand_aggregation(con, campaign_id))
    print(f"warm-up done; the studio and the hand-written SQL agree. The reading begins: "
          f"{lines[0]}", flush=True)
    times: dict[str, list[float]] = {"studio": [], "sql": [], "analysis": []}
    for round_number in range(repeat):
        seconds, (_data, _lines, analysis) = timed(studio_analysis, con, campaign_id)
        times["studio"].append(seconds)
        times["analysis"].append(analysis)
        times["sql"].append(timed(hand_aggregation, con, campaign_id)[0])
        print(f"round {round_number + 1}: studio {times['studio'][-1]:.2f} s (of which "
              f"statistics and sentences {analysis * 1000:.1f} ms), hand-written SQL "
              f"{times['sql'][-1]:.2f} s", flush=True)
    return times


def report(times: dict[str, list[float]], recipients: int, load_before: float) -> None:
    studio, sql = statistics.median(times["studio"]), statistics.median(times["sql"])
    ratio = studio / sql
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"campaign of {recipients:,} recipients, median of {len(times['sql'])} runs:")
    print(f"  studio (aggregate_campaign + analyze_experiment + describe_result): {studio:.2f} s"
          f"\n    of which statistics and sentences: "
          f"{statistics.median(times['analysis']) * 1000:.1f} ms")
    print(f"  hand-written SQL, same per-arm sums:                                {sql:.2f} s")
    print(f"studio / SQL ratio: {ratio:.2f} (goal <= 1.3): {'met' if ratio <= 1.3 else 'NOT met'}")


def explain(con, campaign_id: str) -> None:
    """EXPLAIN ANALYZE of the studio's query and the hand-written one, as operator trees."""
    params = {"campaign": campaign_id, "window_days": 5, "pre_days": 30}
    for label, text, values in (("studio", campaign_query(False), params),
                                ("hand-written SQL", hand_sql(campaign_id), None)):
        print(f"\n===== {label}")
        (_key, plan), = con.execute("EXPLAIN (ANALYZE, FORMAT json) " + text,
                                    values).fetchall()
        for node in json.loads(plan)["operator"]:
            _print_plan(node)


def _print_plan(node: dict, depth: int = 0) -> None:
    info = node.get("extra_info", {})
    details = "; ".join(f"{key}: {info[key]}" for key in (
        "Table", "Join Type", "Conditions", "Groups", "CTE Name") if isinstance(
        info.get(key), str))
    print(f"{'  ' * depth}{node['name']}  rows={node.get('intermediate_rows', 0):,} "
          f"{node.get('timing', 0):.3f}s  {details[:160]}")
    for child in node.get("children", []):
        _print_plan(child, depth + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000_000)
    parser.add_argument("--home", type=Path, default=Path("/tmp/abbench-home"),
                        help="studio home caching the benchmark warehouse")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN ANALYZE of both queries instead of timing")
    args = parser.parse_args()

    settings = prepare_warehouse(args.home, args.recipients)
    con = connect_reader(settings)
    if args.explain:
        explain(con, CAMPAIGN_ID)
        return
    load_before = os.getloadavg()[0]
    times = measure(con, CAMPAIGN_ID, args.repeat)
    report(times, args.recipients, load_before)


if __name__ == "__main__":
    main()
