"""Funnels: hand-built stores where every step is known, and polars on random events."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from studio.cohorts.common import EVERYTHING, CohortFilter, segment_members
from studio.cohorts.funnels import DEFAULT_STEPS, describe_limit, funnel
from studio.errors import UserError
from studio.segments import library
from studio.segments.definition import parse_definition
from studio.sql import customers
from studio.warehouse import connect_reader

HOUR = timedelta(hours=1)
STEPS = list(DEFAULT_STEPS)


def event(customer: str, kind: str, at: str) -> dict:
    return {"customer_id": customer, "event_type": kind, "occurred_at": f"2024-05-01 {at}"}


def order(customer: str, at: str, **extra) -> dict:
    return {"customer_id": customer, "ordered_at": f"2024-05-01 {at}"} | extra


# Steps product_view -> add_to_cart -> checkout_start -> order within one hour, on 1 May 2024.
EVENTS = [
    # c1 goes all the way: 5, 10 and 15 minutes between the steps
    event("c1", "product_view", "10:00"), event("c1", "add_to_cart", "10:05"),
    event("c1", "checkout_start", "10:15"),
    # c2 stops after the cart
    event("c2", "product_view", "10:00"), event("c2", "add_to_cart", "10:20"),
    # c3: the cart at 12:00 is too late for the 10:00 view but exactly one hour after the
    # 11:00 one (the limit is inclusive), so the later attempt counts: 60 minutes
    event("c3", "product_view", "10:00"), event("c3", "product_view", "11:00"),
    event("c3", "add_to_cart", "12:00"),
    # c4 put in the cart before viewing: order matters, so c4 only views
    event("c4", "add_to_cart", "09:00"), event("c4", "product_view", "10:00"),
    # c5's cart is at the very moment of the view: a step must come strictly after
    event("c5", "product_view", "10:00"), event("c5", "add_to_cart", "10:00"),
    # c6 reaches checkout; the cancelled order and the storefront's "order" event are no
    # valid purchase, so c6 stops at step 3 (cart after 2 minutes, checkout after 3)
    event("c6", "product_view", "10:00"), event("c6", "add_to_cart", "10:02"),
    event("c6", "checkout_start", "10:05"), event("c6", "order", "10:06"),
    # c7 reaches checkout twice; the earlier attempt counts (40 then 8 minutes), not the
    # later one (1 then 1 minute)
    event("c7", "product_view", "10:00"), event("c7", "add_to_cart", "10:40"),
    event("c7", "checkout_start", "10:48"),
    event("c7", "product_view", "13:00"), event("c7", "add_to_cart", "13:01"),
    event("c7", "checkout_start", "13:02"),
    # c8 never views a product
    event("c8", "add_to_cart", "10:00"), event("c8", "checkout_start", "10:01"),
]
ORDERS = [
    order("c1", "10:30"),                      # 15 minutes after checkout
    order("c6", "10:06", status="cancelled"),
    order("c7", "14:30"),                      # too late for either attempt
    order("c8", "10:02"),
]


@pytest.fixture
def shop(tiny_store):
    return tiny_store(events=EVENTS, orders=ORDERS)


def as_rows(view) -> list[tuple]:
    return [tuple(row.values()) for row in view.frame.iter_rows(named=True)]


def test_hand_built_funnel_counts_every_step(shop):
    view = funnel(shop, STEPS, within=HOUR, filter=EVERYTHING)
    assert view.frame.columns == ["step", "name", "customers", "conversion_from_previous",
                                  "conversion_from_first", "median_seconds_from_previous"]
    assert view.frame["name"].to_list() == STEPS
    # reached: step 1 c1-c7; step 2 c1 c2 c3 c6 c7; step 3 c1 c6 c7; step 4 c1
    assert view.frame["customers"].to_list() == [7, 5, 3, 1]
    assert view.frame["conversion_from_previous"].to_list() == pytest.approx(
        [None, 5 / 7, 3 / 5, 1 / 3])
    assert view.frame["conversion_from_first"].to_list() == pytest.approx(
        [1.0, 5 / 7, 3 / 7, 1 / 7])
    # view -> cart: c1 5, c2 20, c3 60, c6 2, c7 40 minutes -> median 20 minutes;
    # cart -> checkout: c1 10, c6 3, c7 8 -> 8 minutes; checkout -> order: c1 15 minutes
    assert view.frame["median_seconds_from_previous"].to_list() == [None, 1200.0, 480.0, 900.0]
    assert view.figure.data[0].type == "funnel"
    assert list(view.figure.data[0].x) == [7, 5, 3, 1]
    assert "step_2_occurrences.happened_at > step_1.step_1_at" in view.sql


def test_median_of_an_even_count_averages_the_middle_two(shop):
    view = funnel(shop, ["product_view", "checkout_start"], within=HOUR, filter=EVERYTHING)
    # view -> checkout: c1 15, c6 5, c7 48 minutes... and c7's 13:00 attempt (2 minutes) is
    # as far as its 10:00 one, so the earlier counts: median of 5, 15, 48 = 15 minutes
    assert as_rows(view) == [(1, "product_view", 7, None, 1.0, None),
                             (2, "checkout_start", 3, 3 / 7, 3 / 7, 900.0)]
    view = funnel(shop, ["add_to_cart", "checkout_start"], within=HOUR, filter=EVERYTHING)
    # everyone but c4 and c5 puts in a cart first; cart -> checkout: c1 10, c6 3, c7 8 and
    # c8 1 minutes -> (3 + 8) / 2 = 5.5 minutes
    assert view.frame["customers"].to_list() == [8, 4]
    assert view.frame["median_seconds_from_previous"][1] == 330.0


def test_the_date_range_applies_to_every_step(shop):
    # from 10:05: c1's view and c6's view fall outside, so does c3's first one
    window = CohortFilter(start=datetime(2024, 5, 1, 10, 5), end=datetime(2024, 5, 1, 13, 1))
    view = funnel(shop, ["product_view", "add_to_cart"], within=HOUR, filter=window)
    # views in range: c3 at 11:00 and c7 at 13:00; c7's cart at 13:01 is past the end
    assert view.frame["customers"].to_list() == [2, 1]
    assert view.frame["median_seconds_from_previous"].to_list() == [None, 3600.0]


def test_the_time_limit_decides_who_reaches_a_step(shop):
    view = funnel(shop, STEPS, within=timedelta(minutes=30), filter=EVERYTHING)
    # c1 orders exactly 30 minutes after its view (the limit is inclusive); c3's carts are
    # too late; c7's earlier attempt misses the cart, its later one reaches checkout.
    # view -> cart: c1 5, c2 20, c6 2, c7 1 minutes; cart -> checkout: c1 10, c6 3, c7 1
    assert view.frame["customers"].to_list() == [7, 4, 3, 1]
    assert view.frame["median_seconds_from_previous"].to_list() == [None, 210.0, 180.0, 900.0]


def test_members_limit_the_funnel(shop):
    members = sa.select(customers.c.customer_id).where(
        customers.c.customer_id.in_(["c1", "c2", "c8"]))
    view = funnel(shop, STEPS, within=HOUR, filter=EVERYTHING, members=members)
    assert view.frame["customers"].to_list() == [2, 2, 1, 1]


def test_a_saved_segment_limits_the_funnel(settings, tiny_store):
    con = tiny_store(events=EVENTS, orders=ORDERS,
                     customers=[{"customer_id": c, "country": "DE" if c in ("c6", "c7") else "FR"}
                                for c in ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")])
    library.save_segment(settings, parse_definition(
        {"name": "Germans", "rule": {"profile": {"field": "country", "op": "equals",
                                                 "value": "DE"}}}), user="tester")
    chosen = CohortFilter(segment="Germans")
    view = funnel(con, STEPS, within=HOUR, filter=chosen,
                  members=segment_members(settings, con, chosen))
    assert view.frame["customers"].to_list() == [2, 2, 2, 0]
    assert view.frame["conversion_from_previous"].to_list() == [None, 1.0, 1.0, 0.0]
    assert view.frame["median_seconds_from_previous"].to_list() == [None, 1260.0, 330.0, None]


def test_a_repeated_step_needs_a_second_occurrence(shop):
    view = funnel(shop, ["product_view", "product_view", "add_to_cart"], within=4 * HOUR,
                  filter=EVERYTHING)
    # only c3 (10:00, 11:00, cart 12:00) and c7 (10:00, 13:00, cart 13:01) view twice
    assert view.frame["customers"].to_list() == [7, 2, 2]
    assert view.frame["median_seconds_from_previous"].to_list() == [
        None, (3600 + 3 * 3600) / 2, (3600 + 60) / 2]


def test_nobody_in_range_gives_zeros_not_errors(shop):
    empty = CohortFilter(start=datetime(2030, 1, 1))
    view = funnel(shop, STEPS, within=HOUR, filter=empty)
    assert view.frame["customers"].to_list() == [0, 0, 0, 0]
    assert view.frame["conversion_from_first"].to_list() == [None] * 4


@pytest.mark.parametrize(("steps", "within", "message"), [
    (["product_view", "add_to_basket"], HOUR, "Unknown funnel step 'add_to_basket'; use one of "
     "page_view, product_view, add_to_cart, checkout_start, order."),
    (["order"], HOUR, "at least two steps"),
    (STEPS, timedelta(0), "must be positive"),
])
def test_bad_funnels_are_user_errors(shop, steps, within, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        funnel(shop, steps, within=within, filter=EVERYTHING)


def test_time_limits_read_in_whole_units():
    assert [describe_limit(t) for t in (timedelta(days=7), timedelta(days=1), 2 * HOUR,
                                        timedelta(minutes=90), timedelta(seconds=1.5))] == [
        "7 days", "1 day", "2 hours", "90 minutes", "1.5 seconds"]


# ------------------------------------------------------------------ random stores

KINDS = ("page_view", "product_view", "add_to_cart", "checkout_start")
BASE = datetime(2024, 3, 1)


def random_rows(seed: int) -> tuple[list[dict], list[dict]]:
    """A few thousand events and orders of 150 customers, bunched so that steps collide."""
    rng = random.Random(seed)
    events, orders = [], []
    for number in range(150):
        customer = f"r{number}"
        for _ in range(rng.randint(0, 30)):
            # whole minutes over ten days, so equal moments happen
            at = BASE + timedelta(minutes=rng.randint(0, 10 * 24 * 60 // 7) * 7)
            events.append({"customer_id": customer, "event_type": rng.choice(KINDS),
                           "occurred_at": at})
        for _ in range(rng.randint(0, 12)):
            at = BASE + timedelta(minutes=rng.randint(0, 10 * 24 * 60 // 7) * 7)
            orders.append({"customer_id": customer, "ordered_at": at,
                           "status": rng.choice(("completed", "completed", "cancelled")),
                           "is_guest": rng.random() < 0.1})
    return events, orders


def reference_funnel(events: list[dict], orders: list[dict], steps: list[str],
                     within: timedelta, window: CohortFilter,
                     members: set[str] | None) -> pl.DataFrame:
    """The same funnel with polars' as-of joins (the earliest later occurrence, per step)."""
    moments = pl.concat([
        pl.DataFrame(events, schema={"customer_id": pl.String, "event_type": pl.String,
                                     "occurred_at": pl.Datetime("us")})
        .select("customer_id", pl.col("event_type").alias("step"),
                pl.col("occurred_at").alias("at")),
        pl.DataFrame(orders, schema={"customer_id": pl.String, "ordered_at": pl.Datetime("us"),
                                     "status": pl.String, "is_guest": pl.Boolean})
        .filter(pl.col("status") == "completed", ~pl.col("is_guest"))
        .select("customer_id", pl.lit("order").alias("step"), pl.col("ordered_at").alias("at")),
    ])
    if window.start is not None:
        moments = moments.filter(pl.col("at") >= window.start)
    if window.end is not None:
        moments = moments.filter(pl.col("at") < window.end)
    attempts = (moments.filter(pl.col("step") == steps[0])
                .select("customer_id", pl.col("at").alias("t1")).unique())
    if members is not None:
        attempts = attempts.filter(pl.col("customer_id").is_in(sorted(members)))
    for k, step in enumerate(steps[1:], start=2):
        found = (moments.filter(pl.col("step") == step)
                 .select("customer_id", pl.col("at").alias(f"t{k}"), pl.col("at").alias("key"))
                 .sort("key"))
        attempts = (attempts.with_columns(pl.col(f"t{k - 1}").alias("key")).sort("key")
                    .join_asof(found, on="key", by="customer_id", strategy="forward",
                               allow_exact_matches=False, check_sortedness=False)
                    .drop("key")
                    .with_columns(pl.when(pl.col(f"t{k}") <= pl.col("t1") + within)
                                  .then(pl.col(f"t{k}")).alias(f"t{k}")))
    n = len(steps)
    best = (attempts.with_columns(pl.sum_horizontal(
        [pl.col(f"t{k}").is_not_null() for k in range(1, n + 1)]).alias("depth"))
        .sort(["customer_id", "depth", "t1"], descending=[False, True, False])
        .group_by("customer_id", maintain_order=True).first())
    rows = []
    for k in range(1, n + 1):
        reached = best.filter(pl.col(f"t{k}").is_not_null())
        median = (None if k == 1 or reached.is_empty() else
                  (reached[f"t{k}"] - reached[f"t{k - 1}"]).dt.total_microseconds().median()
                  / 1e6)
        rows.append({"step": k, "customers": reached.height, "median": median})
    return pl.DataFrame(rows)


def reachable_depth(moments: list[tuple[datetime, str]], steps: list[str],
                    within: timedelta) -> int:
    """The most steps any chain of one customer's moments reaches (searching every chain)."""
    best = 0
    starts = [t for t, s in moments if s == steps[0]]

    def extend(start: datetime, previous: datetime, k: int) -> int:
        if k == len(steps):
            return k
        nexts = [t for t, s in moments if s == steps[k] and previous < t <= start + within]
        return max([extend(start, t, k + 1) for t in nexts], default=k)

    for start in starts:
        best = max(best, extend(start, start, 1))
    return best


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_funnels_match_polars(tiny_store, settings, seed):
    events, orders = random_rows(seed)
    con = tiny_store(events=events, orders=orders)
    rng = random.Random(seed)
    cases = [
        (STEPS, timedelta(hours=12), EVERYTHING, None),
        (["product_view", "add_to_cart", "add_to_cart", "order"], timedelta(days=2),
         CohortFilter(start=BASE + timedelta(days=2), end=BASE + timedelta(days=8)), None),
        ([rng.choice(KINDS) for _ in range(3)] + ["order"], timedelta(hours=30), EVERYTHING,
         {f"r{n}" for n in range(0, 150, 2)}),
        (["page_view", "order"], timedelta(minutes=7 * 20), EVERYTHING, None),
    ]
    for steps, within, window, members in cases:
        chosen = None if members is None else sa.select(customers.c.customer_id).where(
            customers.c.customer_id.in_(sorted(members)))
        got = funnel(con, steps, within=within, filter=window, members=chosen).frame
        expected = reference_funnel(events, orders, steps, within, window, members)
        assert got["customers"].to_list() == expected["customers"].to_list(), steps
        assert got["median_seconds_from_previous"].to_list() == pytest.approx(
            expected["median"].to_list()), steps
        first = expected["customers"][0]
        assert got["conversion_from_first"].to_list() == pytest.approx(
            [c / first if first else None for c in expected["customers"]])
    # the earliest-occurrence chain reaches as far as any chain: search them all for one case
    steps, within = STEPS, timedelta(hours=12)
    valid = [(o["ordered_at"], "order", o["customer_id"]) for o in orders
             if o["status"] == "completed" and not o["is_guest"]]
    moments = [(e["occurred_at"], e["event_type"], e["customer_id"]) for e in events] + valid
    depths = [reachable_depth([(t, s) for t, s, c in moments if c == f"r{n}"], steps, within)
              for n in range(150)]
    got = funnel(con, steps, within=within, filter=EVERYTHING).frame["customers"].to_list()
    assert got == [sum(d >= k for d in depths) for k in range(1, len(steps) + 1)]


def test_funnel_on_the_demo_store(demo_home):
    con = connect_reader(demo_home)
    try:
        view = funnel(con, STEPS, within=timedelta(days=1), filter=EVERYTHING)
        viewers = con.execute("SELECT count(DISTINCT customer_id) FROM events "
                              "WHERE event_type = 'product_view'").fetchall()[0][0]
    finally:
        con.close()
    counts = view.frame["customers"].to_list()
    assert counts[0] == viewers
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0
    assert all(0 < m for m in view.frame["median_seconds_from_previous"].to_list()[1:])
