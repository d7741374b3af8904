"""Time to the second order and the repeat-purchase curve: known stores and a polars reference."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from studio.cohorts.common import CohortFilter, run_view
from studio.cohorts.repeat_purchase import (
    curve_figure,
    repeat_curve_statement,
    repeat_purchase_curve,
    time_to_second_order,
    time_to_second_order_statement,
)
from studio.errors import UserError
from studio.warehouse import connect_reader
from tests.cohorts.conftest import Reference

ORDERS = [
    # a: 30 hours to the second purchase is day 1; a's third sets the cap (10 Feb 10:00)
    {"customer_id": "a", "ordered_at": "2024-01-05 10:00"},
    {"customer_id": "a", "ordered_at": "2024-01-06 16:00"},
    {"customer_id": "a", "ordered_at": "2024-02-10 10:00"},
    # b: two purchases at the same moment: the second came on day 0
    {"customer_id": "b", "ordered_at": "2024-01-20 10:00"},
    {"customer_id": "b", "ordered_at": "2024-01-20 10:00"},
    # c: one second short of 10 days is day 9
    {"customer_id": "c", "ordered_at": "2024-01-20 10:00"},
    {"customer_id": "c", "ordered_at": "2024-01-30 09:59:59"},
    # d: a cancelled sale and a guest checkout are not second purchases
    {"customer_id": "d", "ordered_at": "2024-01-31 10:00"},
    {"customer_id": "d", "ordered_at": "2024-02-02 10:00", "status": "cancelled"},
    {"customer_id": None, "is_guest": True, "ordered_at": "2024-02-03 10:00"},
    # e: exactly 7 days is day 7; e is the February cohort
    {"customer_id": "e", "ordered_at": "2024-02-01 00:00"},
    {"customer_id": "e", "ordered_at": "2024-02-08 00:00"},
]


@pytest.fixture
def con(tiny_store):
    return tiny_store(orders=ORDERS)


def histogram(view) -> list[tuple]:
    return [tuple(row.values()) for row in view.frame.iter_rows(named=True)]


def curve(view) -> dict[tuple[str, int], tuple[int, int]]:
    return {(r["cohort"], r["day"]): (r["customers"], r["repeaters"])
            for r in view.frame.iter_rows(named=True)}


def test_days_to_the_second_order_in_weekly_bins(con):
    # days: a 1, b 0, c 9, e 7; d has none; five customers in all
    assert histogram(time_to_second_order(con)) == [(0, 7, 2, 0.5, 0.4), (7, 14, 2, 0.5, 0.4)]
    assert histogram(time_to_second_order(con, bin_days=1)) == [
        (0, 1, 1, 0.25, 0.2), (1, 2, 1, 0.25, 0.2), (7, 8, 1, 0.25, 0.2), (9, 10, 1, 0.25, 0.2)]


def test_curve_counts_each_day_over_the_customers_observed_that_long(con):
    got = curve(repeat_purchase_curve(con, max_days=40))
    # January: a (day 1, watched 36 days), b (0, 21), c (9, 21), d (none, 10)
    january = {0: (4, 1), 1: (4, 2), 8: (4, 2), 9: (4, 3), 10: (4, 3), 11: (3, 3), 21: (3, 3),
               22: (1, 1), 36: (1, 1)}
    for day, counts in january.items():
        assert got[("2024-01", day)] == counts, day
    assert ("2024-01", 37) not in got
    # February: e (day 7, watched 9 days and 10 hours)
    assert [got[("2024-02", d)] for d in range(10)] == [(1, 0)] * 7 + [(1, 1)] * 3
    assert ("2024-02", 10) not in got
    assert len(got) == 37 + 10


def test_the_end_of_the_range_caps_what_is_seen(con):
    view = repeat_purchase_curve(con, max_days=30,
                                 filter=CohortFilter(end=datetime(2024, 1, 30, 10)))
    got = curve(view)
    # d and e start after the end; c's second purchase is one second before it, and c
    # was watched 9 days, 23:59:59.999999
    assert {c for c, _ in got} == {"2024-01"}
    assert got[("2024-01", 9)] == (3, 3)
    assert got[("2024-01", 10)] == (1, 1)
    assert max(d for _, d in got) == 24
    assert histogram(time_to_second_order(con, filter=CohortFilter(
        start=datetime(2024, 1, 20, 10), end=datetime(2024, 1, 30, 10)))) == [
        (0, 7, 1, 0.5, 0.5), (7, 14, 1, 0.5, 0.5)]


def test_the_curve_by_country_and_the_figures(tiny_store):
    con = tiny_store(orders=ORDERS, customers=[{"customer_id": "a", "country": "DE"},
                                               {"customer_id": "e", "country": "DE"}])
    view = repeat_purchase_curve(con, cohort_by="country", max_days=8)
    got = curve(view)
    assert got[("DE", 7)] == (2, 2) and got[("DE", 6)] == (2, 1)
    assert got[("(unknown)", 0)] == (3, 1)
    assert [trace.name for trace in view.figure.data] == ["(unknown)", "DE"]
    bars = time_to_second_order(con).figure.data[0]
    assert list(bars.y) == [2, 2] and list(bars.x) == [3.5, 10.5]


def test_a_curve_stops_where_less_than_half_its_cohort_is_observed():
    frame = pl.DataFrame({"cohort": ["2024-01"] * 4 + ["2024-02"] * 2,
                          "day": [0, 1, 2, 3, 0, 1], "customers": [10, 10, 5, 4, 3, 3],
                          "repeaters": [0, 2, 2, 3, 0, 1],
                          "share_repeat": [0.0, 0.2, 0.4, 0.75, 0.0, 1 / 3]})
    lines = {trace.name: list(trace.x) for trace in curve_figure(frame).data}
    assert lines == {"2024-01": [0, 1, 2], "2024-02": [0, 1]}


@pytest.mark.parametrize("call, message", [
    (lambda con: time_to_second_order(con, bin_days=0), "at least one day"),
    (lambda con: repeat_purchase_curve(con, max_days=-1), "0 or more"),
    (lambda con: repeat_purchase_curve(con, period="year"), "Unknown period"),
])
def test_bad_settings_are_user_errors(con, call, message):
    with pytest.raises(UserError, match=message):
        call(con)


def test_the_readable_sql_gives_the_same_curve(con):
    view = repeat_purchase_curve(con, period="week", max_days=20,
                                 filter=CohortFilter(start=datetime(2024, 1, 6)))
    assert con.sql(view.sql).pl().equals(view.frame)


# ------------------------------------------------------------------ against the reference

DAY_US = 86_400_000_000


def reference_buyers(reference: Reference, period, cohort_by, cohort_filter) -> pl.DataFrame:
    """``cohort, second_day, observed`` per customer, in polars."""
    cap = reference.cap(cohort_filter)
    cohorts = reference.cohorts(period, cohort_by, cohort_filter)
    seconds = (reference.purchases.filter(pl.col("ordered_at") <= cap)
               .join(cohorts.select("customer_id"), on="customer_id")
               .group_by("customer_id")
               .agg(pl.col("ordered_at").sort().get(1, null_on_oob=True).alias("second_at")))
    return cohorts.join(seconds, on="customer_id", how="left").select(
        "cohort",
        ((pl.col("second_at") - pl.col("first_at")).dt.total_microseconds() // DAY_US)
        .alias("second_day"),
        ((pl.lit(cap) - pl.col("first_at")).dt.total_microseconds() // DAY_US)
        .alias("observed"))


def reference_curve(buyers: pl.DataFrame, max_days: int) -> dict:
    days = pl.DataFrame({"day": list(range(max_days + 1))})
    table = (buyers.join(days, how="cross").filter(pl.col("observed") >= pl.col("day"))
             .group_by("cohort", "day")
             .agg(pl.len().alias("customers"),
                  (pl.col("second_day") <= pl.col("day")).sum().alias("repeaters")))
    return {(r["cohort"], r["day"]): (r["customers"], r["repeaters"])
            for r in table.iter_rows(named=True)}


def reference_histogram(buyers: pl.DataFrame, bin_days: int) -> list[tuple]:
    everyone = buyers.height
    table = (buyers.filter(pl.col("second_day").is_not_null())
             .group_by((pl.col("second_day") // bin_days * bin_days).alias("days_from"))
             .agg(pl.len().alias("customers")).sort("days_from"))
    repeaters = table["customers"].sum()
    return [(r["days_from"], r["days_from"] + bin_days, r["customers"],
             r["customers"] / repeaters, r["customers"] / everyone)
            for r in table.iter_rows(named=True)]


FILTERS = [CohortFilter(), CohortFilter(start=datetime(2023, 4, 1)),
           CohortFilter(start=datetime(2023, 2, 1), end=datetime(2023, 11, 15, 13))]


@pytest.mark.parametrize("period, cohort_by", [("month", "first_order"), ("week", "country"),
                                               ("quarter", "first_category")])
def test_curve_equals_the_reference_on_random_data(random_store, period, cohort_by):
    _, reference, con = random_store
    for cohort_filter in FILTERS:
        view = run_view(con, repeat_curve_statement(period, cohort_by, cohort_filter,
                                                    max_days=120), "curve")
        got = {(r["cohort"], r["day"]): (r["customers"], r["repeaters"], r["share_repeat"])
               for r in view.frame.iter_rows(named=True)}
        expected = reference_curve(reference_buyers(reference, period, cohort_by,
                                                    cohort_filter), 120)
        assert {key: value[:2] for key, value in got.items()} == expected
        assert all(share == pytest.approx(rep / n, rel=1e-12) for n, rep, share in got.values())


@pytest.mark.parametrize("bin_days", [1, 7, 30])
def test_histogram_equals_the_reference_on_random_data(random_store, bin_days):
    _, reference, con = random_store
    for cohort_filter in FILTERS:
        view = run_view(con, time_to_second_order_statement(cohort_filter, None, bin_days),
                        "histogram")
        expected = reference_histogram(
            reference_buyers(reference, "month", "first_order", cohort_filter), bin_days)
        got = histogram(view)
        assert [row[:3] for row in got] == [row[:3] for row in expected]
        for have, want in zip(got, expected, strict=True):
            assert have[3:] == pytest.approx(want[3:], rel=1e-12)


def test_the_demo_store_repeaters_match_its_rollups(demo_home):
    con = connect_reader(demo_home)
    try:
        bars = time_to_second_order(con)
        curve_view = repeat_purchase_curve(con, cohort_by="channel", max_days=60)
        repeaters, buyers = con.execute(
            "SELECT count(*) FILTER (WHERE purchases >= 2), count(*) FROM customer_order_summary"
        ).fetchall()[0]
    finally:
        con.close()
    assert bars.frame["customers"].sum() == repeaters > 0
    day_zero = curve_view.frame.filter(pl.col("day") == 0)
    assert day_zero["customers"].sum() == buyers
    assert curve_view.frame["share_repeat"].max() <= 1.0
