"""Segment benchmark: the studio's preset counts against hand-written DuckDB SQL and pandas.

Builds (or reuses) a demo warehouse of 1,000,000 customers (about 20,000,000 events), then,
for each preset, in one run and on one read-only connection, times

(a) the studio: ``operations.count`` (compile + run; matched, e-mail sendable and SMS
    sendable) and, like for like with a bare count, the compiled rule alone
    (``SELECT count(*) FROM customers WHERE <rule>``);
(b) a hand-written DuckDB query for the same rule, the way a good analyst writes it (CTEs,
    GROUP BY ... HAVING, ANTI/SEMI joins, QUALIFY), once returning the same three figures
    and once the matched count alone;
(c) the pandas way: the needed columns of the needed tables read into DataFrames (DuckDB ->
    Arrow -> pandas, the fastest read there is; ``.df()`` is about 7x slower), then
    filters, ``groupby`` and ``merge`` for the same three figures. The read and the compute
    are timed and printed apart; the "x faster than pandas" ratio is (read + compute) over
    the studio's ``count``, since an analyst without the studio pays both.

Every side must return the same figures as the studio or the run stops. Each timing is the
median of ``--repeat`` runs after one untimed warm-up, the sides interleaved so that noise
on this shared machine hits them alike. Goals: median studio/SQL ratio at most 1.2 (on
the three-figure count, like with like); the studio at least 10x faster than pandas on
every preset.

    python benchmarks/segments.py --store /tmp/bigstore --home /tmp/segbench-home
    python benchmarks/segments.py --customers 50000          # a quick look
    python benchmarks/segments.py --explain abandoned-cart   # EXPLAIN ANALYZE both queries

The warehouse is cached in ``--home``: a rerun reuses any warehouse there that holds
exactly ``--customers`` customers, and a store folder (``--store``, default
``<home>/store``) whose manifest has that size is loaded rather than generated again.
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from studio.config import Settings  # noqa: E402
from studio.rollups import rollup_coverage  # noqa: E402
from studio.segments import operations  # noqa: E402
from studio.segments.compiler import Compiler  # noqa: E402
from studio.segments.presets import presets  # noqa: E402
from studio.sql import customers, to_sql  # noqa: E402
from studio.warehouse import connect_reader  # noqa: E402

Figures = tuple[int, int, int]  # matched, e-mail sendable, SMS sendable

# ---------------------------------------------------------------- the warehouse


def prepare_warehouse(home: Path, store: Path | None, customers_wanted: int,
                      seed: int) -> Settings:
    """A settings object whose warehouse holds a demo store of ``customers_wanted``."""
    settings = Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")
    settings.ensure_home()
    if settings.warehouse_path.exists():
        con = connect_reader(settings)
        held = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
        con.close()
        if held == customers_wanted:
            print(f"reusing the warehouse in {home} ({held:,} customers)")
            return settings
        raise SystemExit(f"{settings.warehouse_path} holds {held:,} customers, not "
                         f"{customers_wanted:,}; pass another --home or --customers {held}.")
    store = store or home / "store"
    manifest = store / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get(
            "customers") == customers_wanted:
        print(f"reusing the store in {store}")
    else:
        from etl.generate import generate_store

        started = time.perf_counter()
        generate_store(store, customers=customers_wanted, seed=seed)
        print(f"generated {customers_wanted:,} customers in {store} in "
              f"{time.perf_counter() - started:.0f} s")
    from etl.load import load_files

    started = time.perf_counter()
    load_files(settings, [store], mapping="canonical")
    print(f"loaded the store into {settings.warehouse_path} in "
          f"{time.perf_counter() - started:.0f} s")
    return settings


# ---------------------------------------------------------------- (a) the studio


def studio_count(con, definition, as_of: datetime) -> Figures:
    """What the studio's Segments page shows: ``operations.count``."""
    result = operations.count(con, definition, as_of)
    return result.matched, result.email_sendable, result.sms_sendable


def studio_matched(con, definition, as_of: datetime) -> int:
    """The compiled rule alone, counted: what ``operations.members`` runs, minus the ids."""
    compiler = Compiler(as_of, has_scores=operations.has_table(con, "scores"),
                        rollups=rollup_coverage(con))
    sql, params = to_sql(sa.select(sa.func.count()).select_from(customers)
                         .where(compiler.node(definition.rule)))
    return con.execute(sql, params).fetchall()[0][0]


def studio_count_sql(con, definition, as_of: datetime) -> tuple[str, list]:
    """The statement ``operations.count`` runs, rebuilt here for EXPLAIN ANALYZE."""
    compiler = Compiler(as_of, has_scores=operations.has_table(con, "scores"),
                        rollups=rollup_coverage(con))
    return to_sql(operations.count_query(compiler, definition.rule))


# ---------------------------------------------------------------- (b) hand-written SQL
#
# Each preset is a ``matched`` CTE (distinct customer ids); the wrappers below count it,
# with or without the sendable figures. ``{as_of}`` becomes a TIMESTAMP literal.

VALID = ("kind = 'sale' AND status = 'completed' AND is_guest IS NOT TRUE "
         "AND customer_id IS NOT NULL AND ordered_at <= {as_of}")

def _subscribed_cte(name: str, channel: str, among: str | None = None) -> str:
    """A CTE of the customers whose latest ``channel`` consent is "subscribed".

    With ``among`` (a CTE's name), only the consent of its customers is ranked.
    """
    limit = f"\n      AND customer_id IN (SELECT customer_id FROM {among})" if among else ""
    return f"""
{name} AS (
    SELECT customer_id FROM consent_events
    WHERE channel = '{channel}' AND occurred_at <= {{as_of}}{limit}
    QUALIFY row_number() OVER (PARTITION BY customer_id
                               ORDER BY occurred_at DESC, consent_event_id DESC) = 1
        AND status = 'subscribed')"""


SUBSCRIBED = _subscribed_cte("email_on", "email")
"""Everyone subscribed by e-mail: the presets whose rule asks for it use it."""


def _sql_not_followed(first: str, then: str, days: int, hours: int) -> str:
    """``first`` events of the last ``days`` days with no ``then`` within ``hours`` after."""
    return f"""
firsts AS (
    SELECT customer_id, occurred_at FROM events
    WHERE event_type = '{first}' AND occurred_at > {{as_of}} - INTERVAL {days} DAY
      AND occurred_at <= {{as_of}} - INTERVAL {hours} HOUR),
thens AS (
    SELECT customer_id, occurred_at FROM events
    WHERE event_type = '{then}' AND occurred_at > {{as_of}} - INTERVAL {days} DAY
      AND occurred_at <= {{as_of}}),
abandoned AS (
    SELECT DISTINCT customer_id FROM firsts f
    WHERE NOT EXISTS (SELECT 1 FROM thens t
                      WHERE t.customer_id = f.customer_id AND t.occurred_at > f.occurred_at
                        AND t.occurred_at <= f.occurred_at + INTERVAL {hours} HOUR))"""


HAND_SQL: dict[str, tuple[str, bool]] = {
    # slug: (CTEs ending in ``matched``, whether they use the ``email_on`` CTE)
    "abandoned-cart": (_sql_not_followed("add_to_cart", "order", 7, 24) + """,
matched AS (SELECT customer_id FROM abandoned)""", False),
    "browse-abandonment": (_sql_not_followed("product_view", "add_to_cart", 3, 24) + f""",
recent_buyers AS (
    SELECT DISTINCT customer_id FROM orders
    WHERE {VALID} AND ordered_at > {{as_of}} - INTERVAL 3 DAY),
matched AS (SELECT customer_id FROM abandoned ANTI JOIN recent_buyers USING (customer_id))""",
                           False),
    "high-intent-no-recent-order": (f"""
intent AS (
    SELECT customer_id FROM events
    WHERE event_type IN ('add_to_cart', 'product_view')
      AND occurred_at > {{as_of}} - INTERVAL 14 DAY AND occurred_at <= {{as_of}}
    GROUP BY customer_id
    HAVING count(*) FILTER (WHERE event_type = 'add_to_cart') >= 1
        OR count(*) FILTER (WHERE event_type = 'product_view') >= 3),
recent_buyers AS (
    SELECT DISTINCT customer_id FROM orders
    WHERE {VALID} AND ordered_at > {{as_of}} - INTERVAL 30 DAY),
matched AS (SELECT customer_id FROM intent ANTI JOIN recent_buyers USING (customer_id))""",
                                    False),
    "lapsed-vips": (f"""
matched AS (
    SELECT customer_id FROM orders WHERE {VALID}
    GROUP BY customer_id
    HAVING sum(total::DECIMAL(18, 2)) >= 500
       AND max(ordered_at) <= {{as_of}} - INTERVAL 120 DAY)""", False),
    "new-subscribers-without-purchase": (f"""
buyers AS (SELECT DISTINCT customer_id FROM orders WHERE {VALID}),
matched AS (
    SELECT customer_id FROM customers
    SEMI JOIN email_on USING (customer_id)
    ANTI JOIN buyers USING (customer_id)
    WHERE signed_up_at > {{as_of}} - INTERVAL 30 DAY AND signed_up_at <= {{as_of}})""", True),
    "one-time-buyers": (f"""
matched AS (
    SELECT customer_id FROM orders WHERE {VALID}
    GROUP BY customer_id
    HAVING count(*) = 1 AND max(ordered_at) <= {{as_of}} - INTERVAL 30 DAY
       AND max(ordered_at) > {{as_of}} - INTERVAL 90 DAY)""", False),
    "winback-candidates": (f"""
repeat_buyers AS (
    SELECT customer_id FROM orders WHERE {VALID}
    GROUP BY customer_id
    HAVING count(*) >= 2 AND max(ordered_at) <= {{as_of}} - INTERVAL 180 DAY),
matched AS (SELECT customer_id FROM repeat_buyers SEMI JOIN email_on USING (customer_id))""",
                           True),
}


def hand_sql(slug: str, as_of: datetime, with_sendable: bool) -> str:
    """The hand-written query for a preset: three figures, or the matched count alone.

    The sendable figures rank the consent of the matched customers only, as an analyst
    who counts a small audience would; a rule that needs everyone's e-mail consent
    reuses it for the e-mail figure.
    """
    ctes, uses_consent = HAND_SQL[slug]
    if uses_consent:
        ctes = SUBSCRIBED + "," + ctes
    if with_sendable:
        email = "email_on" if uses_consent else "email_reach"
        reach = [] if uses_consent else [_subscribed_cte("email_reach", "email", "matched")]
        ctes += "," + ",".join([*reach, _subscribed_cte("sms_reach", "sms", "matched")])
        final = f"""
SELECT count(*),
       count(*) FILTER (WHERE e.customer_id IS NOT NULL AND nullif(c.email, '') IS NOT NULL),
       count(*) FILTER (WHERE s.customer_id IS NOT NULL AND nullif(c.phone, '') IS NOT NULL)
FROM matched m JOIN customers c USING (customer_id)
LEFT JOIN {email} e USING (customer_id) LEFT JOIN sms_reach s USING (customer_id)"""
    else:
        final = "\nSELECT count(*) FROM matched m JOIN customers c USING (customer_id)"
    literal = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'"
    return ("WITH" + ctes + final).replace("{as_of}", literal)


def sql_count(con, slug: str, as_of: datetime) -> Figures:
    return tuple(con.execute(hand_sql(slug, as_of, True)).fetchall()[0])


def sql_matched(con, slug: str, as_of: datetime) -> int:
    return con.execute(hand_sql(slug, as_of, False)).fetchall()[0][0]


# ---------------------------------------------------------------- (c) the pandas way

COLUMNS = {
    "customers": "customer_id, email, phone, signed_up_at",
    "consent_events": "consent_event_id, customer_id, channel, status, occurred_at",
    "orders": "customer_id, is_guest, ordered_at, kind, status, total",
    "events": "customer_id, event_type, occurred_at",
}
EVENT_PRESETS = {"abandoned-cart", "browse-abandonment", "high-intent-no-recent-order"}
ORDER_PRESETS = set(HAND_SQL) - {"abandoned-cart"}


def read_frames(con, slug: str) -> dict[str, pd.DataFrame]:
    """The needed columns of the needed tables, whole, as pandas DataFrames."""
    names = ["customers", "consent_events"]
    names += ["orders"] if slug in ORDER_PRESETS else []
    names += ["events"] if slug in EVENT_PRESETS else []
    return {name: con.sql(f"SELECT {COLUMNS[name]} FROM {name}").to_arrow_table().to_pandas()
            for name in names}


def _ids(ids: pd.Series) -> pd.DataFrame:
    return ids.drop_duplicates().to_frame("customer_id")


def _among(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Rows of ``frame`` whose customer is among ``ids`` (a merge: ``isin`` is slow on str)."""
    return frame.merge(_ids(ids), on="customer_id")


def _not_among(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    merged = frame.merge(_ids(ids), on="customer_id", how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")


def _subscribed(consent: pd.DataFrame, channel: str, as_of: datetime) -> pd.Series:
    rows = consent[(consent["channel"] == channel) & (consent["occurred_at"] <= as_of)]
    latest = rows.sort_values(["occurred_at", "consent_event_id"]).drop_duplicates(
        "customer_id", keep="last")
    return latest.loc[latest["status"] == "subscribed", "customer_id"]


def _valid_orders(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    return orders[(orders["kind"] == "sale") & (orders["status"] == "completed")
                  & ~orders["is_guest"].fillna(False).astype(bool)
                  & orders["customer_id"].notna() & (orders["ordered_at"] <= as_of)]


def _per_buyer(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    return _valid_orders(orders, as_of).groupby("customer_id", as_index=False).agg(
        purchases=("total", "size"), revenue=("total", "sum"), last=("ordered_at", "max"))


def _frame_not_followed(events: pd.DataFrame, first: str, then: str, days: int, hours: int,
                        as_of: datetime) -> pd.DataFrame:
    since, within = as_of - timedelta(days=days), timedelta(hours=hours)
    recent = events[(events["occurred_at"] > since) & (events["occurred_at"] <= as_of)]
    firsts = recent[(recent["event_type"] == first)
                    & (recent["occurred_at"] <= as_of - within)].sort_values("occurred_at")
    thens = recent.loc[recent["event_type"] == then, ["customer_id", "occurred_at"]].rename(
        columns={"occurred_at": "next_at"}).sort_values("next_at")
    paired = pd.merge_asof(firsts, thens, left_on="occurred_at", right_on="next_at",
                           by="customer_id", direction="forward", allow_exact_matches=False)
    alone = paired["next_at"].isna() | (paired["next_at"] > paired["occurred_at"] + within)
    return _ids(paired.loc[alone, "customer_id"])


def _recent_buyers(orders: pd.DataFrame, days: int, as_of: datetime) -> pd.Series:
    valid = _valid_orders(orders, as_of)
    return valid.loc[valid["ordered_at"] > as_of - timedelta(days=days), "customer_id"]


def _pandas_matched(slug: str, frames: dict[str, pd.DataFrame], as_of: datetime,
                    email_on: pd.Series) -> pd.DataFrame:
    orders, events = frames.get("orders"), frames.get("events")
    if slug == "abandoned-cart":
        return _frame_not_followed(events, "add_to_cart", "order", 7, 24, as_of)
    if slug == "browse-abandonment":
        abandoned = _frame_not_followed(events, "product_view", "add_to_cart", 3, 24, as_of)
        return _not_among(abandoned, _recent_buyers(orders, 3, as_of))
    if slug == "high-intent-no-recent-order":
        recent = events[(events["occurred_at"] > as_of - timedelta(days=14))
                        & (events["occurred_at"] <= as_of)
                        & events["event_type"].isin(["add_to_cart", "product_view"])]
        counts = recent.groupby(["customer_id", "event_type"]).size().unstack(fill_value=0)
        intent = counts[(counts.get("add_to_cart", 0) >= 1)
                        | (counts.get("product_view", 0) >= 3)].reset_index()
        return _not_among(intent[["customer_id"]], _recent_buyers(orders, 30, as_of))
    if slug == "new-subscribers-without-purchase":
        people = frames["customers"]
        new = people.loc[(people["signed_up_at"] > as_of - timedelta(days=30))
                         & (people["signed_up_at"] <= as_of), ["customer_id"]]
        return _not_among(_among(new, email_on),
                          _valid_orders(orders, as_of)["customer_id"])
    buyers = _per_buyer(orders, as_of)
    if slug == "lapsed-vips":
        return buyers[(buyers["revenue"].round(2) >= 500)  # money in cents, as in SQL
                      & (buyers["last"] <= as_of - timedelta(days=120))]
    if slug == "one-time-buyers":
        return buyers[(buyers["purchases"] == 1)
                      & (buyers["last"] <= as_of - timedelta(days=30))
                      & (buyers["last"] > as_of - timedelta(days=90))]
    if slug == "winback-candidates":
        return _among(buyers[(buyers["purchases"] >= 2)
                             & (buyers["last"] <= as_of - timedelta(days=180))], email_on)
    raise KeyError(slug)


def pandas_count(slug: str, frames: dict[str, pd.DataFrame], as_of: datetime) -> Figures:
    consent = frames["consent_events"]
    email_on, sms_on = _subscribed(consent, "email", as_of), _subscribed(consent, "sms", as_of)
    matched = _pandas_matched(slug, frames, as_of, email_on)["customer_id"]
    people = _among(frames["customers"], matched)
    email_ok = _among(people, email_on)["email"].fillna("").ne("")
    sms_ok = _among(people, sms_on)["phone"].fillna("").ne("")
    return len(people), int(email_ok.sum()), int(sms_ok.sum())


# ---------------------------------------------------------------- timing and report


def timed(function: Callable, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


@dataclass
class Row:
    """One preset's figures and median seconds per side."""

    slug: str
    figures: Figures
    studio: float
    studio_matched: float
    sql: float
    sql_matched: float
    pandas_read: float
    pandas_compute: float

    @property
    def pandas(self) -> float:
        """Read plus compute: what an analyst without the studio waits for."""
        return self.pandas_read + self.pandas_compute


def check(side: str, slug: str, got, expected) -> None:
    if got != expected:
        raise SystemExit(f"{slug}: {side} gives {got}, the studio {expected}; "
                         "the two disagree, so the timings would compare different things.")


def measure(con, slug: str, definition, as_of: datetime, repeat: int) -> Row:
    """Time every side ``repeat`` times (interleaved) after one warm-up; check agreement."""
    expected = studio_count(con, definition, as_of)
    check("hand-written SQL", slug, sql_count(con, slug, as_of), expected)
    check("hand-written SQL (matched)", slug, sql_matched(con, slug, as_of), expected[0])
    check("studio rule alone", slug, studio_matched(con, definition, as_of), expected[0])
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for side, function, args in (
                ("studio", studio_count, (con, definition, as_of)),
                ("sql", sql_count, (con, slug, as_of)),
                ("studio_matched", studio_matched, (con, definition, as_of)),
                ("sql_matched", sql_matched, (con, slug, as_of))):
            seconds, _ = timed(function, *args)
            times.setdefault(side, []).append(seconds)
        seconds, frames = timed(read_frames, con, slug)
        times.setdefault("pandas_read", []).append(seconds)
        seconds, figures = timed(pandas_count, slug, frames, as_of)
        times.setdefault("pandas_compute", []).append(seconds)
        del frames
        check("pandas", slug, figures, expected)
    return Row(slug, expected, **{side: statistics.median(v) for side, v in times.items()})


def _print_plan(node: dict, depth: int = 0) -> None:
    """One line per operator: name, rows out, its own seconds and the key details."""
    info = node.get("extra_info", {})
    details = "; ".join(f"{key}: {info[key]}" for key in (
        "Table", "Join Type", "Conditions", "Filters", "Groups", "Aggregates", "Projections",
        "Expression", "CTE Name") if isinstance(info.get(key), str))
    print(f"{'  ' * depth}{node['name']}  rows={node.get('intermediate_rows', 0):,} "
          f"{node.get('timing', 0):.3f}s  {details[:220]}")
    for child in node.get("children", []):
        _print_plan(child, depth + 1)


def explain(con, slug: str, definition, as_of: datetime) -> None:
    """EXPLAIN ANALYZE of the studio's count and the hand-written query, as operator trees."""
    sql, params = studio_count_sql(con, definition, as_of)
    for label, (text, values) in (("studio operations.count", (sql, params)),
                                  ("hand-written SQL", (hand_sql(slug, as_of, True), []))):
        print(f"\n===== {slug}: {label}\n{text}\n")
        (_key, plan), = con.execute("EXPLAIN (ANALYZE, FORMAT json) " + text,
                                    values).fetchall()
        for node in json.loads(plan)["operator"]:
            _print_plan(node)


def report(rows: list[Row], as_of: datetime, repeat: int, load_before: float) -> None:
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after (DuckDB runs on every CPU, pandas on one: a busy "
          "machine shrinks the pandas ratio)")
    print(f"as_of {as_of}, median of {repeat} runs; studio = operations.count (three "
          "figures) vs hand-written SQL returning the same three figures;\n'rule' columns: "
          "the matched count alone on both sides; pandas = read + compute.\n")
    header = (f"{'preset':34} {'matched':>8} {'email':>7} {'sms':>6} {'studio s':>9} "
              f"{'SQL s':>7} {'st/SQL':>7} {'rule st':>8} {'rule SQL':>8} {'st/SQL':>7} "
              f"{'pd read':>8} {'pd comp':>8} {'pandas s':>9} {'pd/st':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        matched, email, sms = r.figures
        print(f"{r.slug:34} {matched:8,} {email:7,} {sms:6,} {r.studio:9.3f} {r.sql:7.3f} "
              f"{r.studio / r.sql:7.2f} {r.studio_matched:8.3f} {r.sql_matched:8.3f} "
              f"{r.studio_matched / r.sql_matched:7.2f} {r.pandas_read:8.2f} "
              f"{r.pandas_compute:8.2f} {r.pandas:9.2f} {r.pandas / r.studio:6.1f}")
    ratio = statistics.median(r.studio / r.sql for r in rows)
    rule_ratio = statistics.median(r.studio_matched / r.sql_matched for r in rows)
    slowest = min(rows, key=lambda r: r.pandas / r.studio)
    faster = slowest.pandas / slowest.studio
    print(f"\nmedian studio/SQL ratio (three figures): {ratio:.2f} (goal <= 1.2): "
          f"{'met' if ratio <= 1.2 else 'NOT met'}")
    print(f"median studio/SQL ratio (rule alone):    {rule_ratio:.2f}")
    print(f"studio vs pandas (read + compute): at least {faster:.1f}x faster ({slowest.slug}), "
          f"median {statistics.median(r.pandas / r.studio for r in rows):.1f}x "
          f"(goal >= 10x on every preset): {'met' if faster >= 10 else 'NOT met'}")
    slow = [r.slug for r in rows if r.studio / r.sql > 1.5 or r.studio_matched / r.sql_matched
            > 1.5]
    if slow:
        print(f"studio more than 1.5x the hand-written SQL on: {', '.join(slow)} "
              "(rerun with --explain SLUG to see both plans)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", type=Path, help="reuse the store in this folder, "
                        "or generate it there")
    parser.add_argument("--home", type=Path, help="studio home caching the warehouse "
                        "(default: a folder in the temp directory named after the size)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    parser.add_argument("--presets", nargs="*", help="only these presets (slugs)")
    parser.add_argument("--explain", metavar="SLUG", nargs="*",
                        help="print EXPLAIN ANALYZE of both queries for these presets")
    args = parser.parse_args()

    home = args.home or Path(tempfile.gettempdir()) / (
        f"studio-segments-bench-{args.customers}-seed{args.seed}")
    settings = prepare_warehouse(home, args.store, args.customers, args.seed)
    con = connect_reader(settings)
    as_of = operations.default_as_of(con)
    chosen = {slug: d for slug, d in presets().items()
              if not args.presets or slug in args.presets}
    if set(chosen) - set(HAND_SQL):
        raise SystemExit(f"no hand-written query for {', '.join(set(chosen) - set(HAND_SQL))}")
    if args.explain is not None:
        for slug in args.explain or chosen:
            explain(con, slug, presets()[slug], as_of)
        return
    rows, load_before = [], os.getloadavg()[0]
    for slug, definition in chosen.items():
        rows.append(measure(con, slug, definition, as_of, args.repeat))
        r = rows[-1]
        print(f"{slug}: studio {r.studio:.3f} s, SQL {r.sql:.3f} s, pandas {r.pandas:.2f} s",
              flush=True)
    report(rows, as_of, args.repeat, load_before)


if __name__ == "__main__":
    main()
