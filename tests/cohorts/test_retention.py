"""The retention matrix: hand-built stores with known cells, and a polars reference."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import partial

import polars as pl
import pytest
import sqlalchemy as sa

from studio.cohorts.common import CohortFilter, run_view
from studio.cohorts.retention import METRICS, retention_matrix, retention_statement
from studio.errors import UserError
from studio.sql import customers
from studio.warehouse import connect_reader
from tests.cohorts.conftest import Reference, period_index

ORDERS = [
    # c: first purchase on the last second of 2023, again on New Year's Day
    {"customer_id": "c", "ordered_at": "2023-12-31 23:59:59", "total": 40},
    {"customer_id": "c", "ordered_at": "2024-01-01 00:00:00", "total": 10},
    # a: 23:00 on 31 January, then midnight on 1 February (the next month), then April
    {"order_id": "a1", "customer_id": "a", "ordered_at": "2024-01-31 23:00", "total": 100},
    {"customer_id": "a", "ordered_at": "2024-02-01 00:00", "total": 50},
    {"customer_id": "a", "ordered_at": "2024-04-10 12:00", "total": 25},
    # b: two purchases in January; a cancelled sale and a return in February do not count
    {"order_id": "b1", "customer_id": "b", "ordered_at": "2024-01-15 09:00", "total": 20},
    {"customer_id": "b", "ordered_at": "2024-01-20 09:00", "total": 30},
    {"customer_id": "b", "ordered_at": "2024-02-15 09:00", "total": 999, "status": "cancelled"},
    {"customer_id": "b", "ordered_at": "2024-02-16 09:00", "total": -10, "kind": "return"},
    {"order_id": "d1", "customer_id": "d", "ordered_at": "2024-02-29 18:00", "total": 60},
    # e: a refunded sale in January is not a purchase, so e's cohort is March
    {"customer_id": "e", "ordered_at": "2024-01-02 10:00", "total": 70, "status": "refunded"},
    {"order_id": "e1", "customer_id": "e", "ordered_at": "2024-03-05 10:00", "total": 15},
    # f: two purchases at the same moment; the first is the smaller order id, f1
    {"order_id": "f2", "customer_id": "f", "ordered_at": "2024-02-10 10:00", "total": 5},
    {"order_id": "f1", "customer_id": "f", "ordered_at": "2024-02-10 10:00", "total": 7},
    # a guest checkout is nobody's purchase; the latest order (cancelled) sets the cap
    {"customer_id": None, "is_guest": True, "ordered_at": "2024-01-10 10:00", "total": 500},
    {"customer_id": "d", "ordered_at": "2024-04-20 08:00", "total": 1, "status": "cancelled"},
]
CUSTOMERS = [{"customer_id": "a", "country": "DE"}, {"customer_id": "b", "country": "DE"},
             {"customer_id": "c", "country": "FR"}, {"customer_id": "d", "country": None},
             {"customer_id": "e", "country": ""}, {"customer_id": "f", "country": "FR"}]
PRODUCTS = [{"product_id": "bag", "category": "bags"}, {"product_id": "shoe", "category": "shoes"},
            {"product_id": "hat", "category": "hats"}, {"product_id": "odd", "category": ""}]
ITEMS = [{"order_id": "a1", "product_id": "shoe", "line_number": 2},
         {"order_id": "a1", "product_id": "bag", "line_number": 1},
         {"order_id": "d1", "product_id": "odd"},
         {"order_id": "e1", "product_id": "shoe"},
         {"order_id": "f2", "product_id": "shoe"},
         {"order_id": "f1", "product_id": "hat"}]
COLUMNS = ("customers", "returning", "share_returning", "revenue", "revenue_retention",
           "cumulative_revenue_per_customer")


@pytest.fixture
def con(tiny_store):
    return tiny_store(orders=ORDERS, customers=CUSTOMERS, products=PRODUCTS, order_items=ITEMS)


def cells(view) -> dict[tuple[str, int], tuple]:
    return {(row["cohort"], row["period_offset"]): tuple(row[c] for c in COLUMNS)
            for row in view.frame.iter_rows(named=True)}


def cell(customers, returning, revenue, base, cumulative):
    """A row of the matrix from its counts and sums, ratios worked out here."""
    return (customers, returning, returning / customers, Decimal(revenue),
            None if base == 0 else revenue / base, cumulative / customers)


def test_monthly_cells(con):
    assert cells(retention_matrix(con)) == {
        ("2023-12", 0): cell(1, 1, 40, 40, 40), ("2023-12", 1): cell(1, 1, 10, 40, 50),
        ("2023-12", 2): cell(1, 0, 0, 40, 50), ("2023-12", 3): cell(1, 0, 0, 40, 50),
        ("2023-12", 4): cell(1, 0, 0, 40, 50),
        ("2024-01", 0): cell(2, 2, 150, 150, 150), ("2024-01", 1): cell(2, 1, 50, 150, 200),
        ("2024-01", 2): cell(2, 0, 0, 150, 200), ("2024-01", 3): cell(2, 1, 25, 150, 225),
        ("2024-02", 0): cell(2, 2, 72, 72, 72), ("2024-02", 1): cell(2, 0, 0, 72, 72),
        ("2024-02", 2): cell(2, 0, 0, 72, 72),
        ("2024-03", 0): cell(1, 1, 15, 15, 15), ("2024-03", 1): cell(1, 0, 0, 15, 15),
    }


def test_the_date_range_picks_cohorts_and_caps_the_matrix(con):
    # c bought on 1 January but its first purchase ever was in December: not a cohort of
    # the range; e's first is in March, after it; a's April purchase is after the end
    view = retention_matrix(con, filter=CohortFilter(start=datetime(2024, 1, 1),
                                                     end=datetime(2024, 3, 1)))
    assert cells(view) == {
        ("2024-01", 0): cell(2, 2, 150, 150, 150), ("2024-01", 1): cell(2, 1, 50, 150, 200),
        ("2024-02", 0): cell(2, 2, 72, 72, 72),
    }


def test_an_end_at_midnight_leaves_that_moment_out(con):
    # a's purchase at exactly 1 February 00:00 is outside [.., 1 February)
    view = retention_matrix(con, filter=CohortFilter(end=datetime(2024, 2, 1)))
    assert cells(view) == {
        ("2023-12", 0): cell(1, 1, 40, 40, 40), ("2023-12", 1): cell(1, 1, 10, 40, 50),
        ("2024-01", 0): cell(2, 2, 150, 150, 150),
    }


def test_quarters_and_weeks(con):
    quarters = cells(retention_matrix(con, period="quarter"))
    assert quarters == {
        ("2023-Q4", 0): cell(1, 1, 40, 40, 40), ("2023-Q4", 1): cell(1, 1, 10, 40, 50),
        ("2023-Q4", 2): cell(1, 0, 0, 40, 50),
        ("2024-Q1", 0): cell(5, 5, 287, 287, 287), ("2024-Q1", 1): cell(5, 1, 25, 287, 312),
    }
    weeks = cells(retention_matrix(con, period="week"))
    # a's 31 January (a Wednesday) and 1 February fall in the week of Monday 29 January
    assert weeks[("2024-01-29", 0)] == cell(1, 1, 150, 150, 150)
    assert weeks[("2024-01-29", 10)] == cell(1, 1, 25, 150, 175)  # 10 April: 10 weeks on
    assert weeks[("2023-12-25", 1)] == cell(1, 1, 10, 40, 50)  # Sunday 31 Dec -> Monday 1 Jan
    assert max(k for c, k in weeks if c == "2024-03-04") == 6  # the cap, 20 April, is week 6


def test_country_cohorts_count_each_offset_over_the_customers_observed(con):
    # (unknown) mixes d (February, observed to offset 2) and e (March, observed to
    # offset 1): offset 2 is d's alone
    assert cells(retention_matrix(con, cohort_by="country")) == {
        ("(unknown)", 0): cell(2, 2, 75, 75, 75), ("(unknown)", 1): cell(2, 0, 0, 75, 75),
        ("(unknown)", 2): cell(1, 0, 0, 60, 60),
        ("DE", 0): cell(2, 2, 150, 150, 150), ("DE", 1): cell(2, 1, 50, 150, 200),
        ("DE", 2): cell(2, 0, 0, 150, 200), ("DE", 3): cell(2, 1, 25, 150, 225),
        # c (December, observed to 4) and f (February, to 2)
        ("FR", 0): cell(2, 2, 52, 52, 52), ("FR", 1): cell(2, 1, 10, 52, 62),
        ("FR", 2): cell(2, 0, 0, 52, 62), ("FR", 3): cell(1, 0, 0, 40, 50),
        ("FR", 4): cell(1, 0, 0, 40, 50),
    }


def test_first_category_is_the_first_line_of_the_first_purchase(con):
    view = retention_matrix(con, cohort_by="first_category")
    sizes = {c: n for (c, k), (n, *_) in cells(view).items() if k == 0}
    # a: line 1 is the bag; e: shoes; f: f1 (hats) comes before f2 at the same moment;
    # b and c bought nothing with lines, d's product has an empty category
    assert sizes == {"bags": 1, "shoes": 1, "hats": 1, "(unknown)": 3}


@pytest.mark.parametrize("bad, message", [
    ({"period": "day"}, "Unknown period 'day'"),
    ({"cohort_by": "city"}, "Unknown cohort 'city'"),
    ({"metric": "ltv"}, "Unknown metric 'ltv'"),
])
def test_unknown_choices_are_user_errors(con, bad, message):
    with pytest.raises(UserError, match=message):
        retention_matrix(con, **bad)


def test_the_heatmap_shows_the_chosen_metric(con):
    for metric in METRICS:
        view = retention_matrix(con, metric=metric)
        trace = view.figure.data[0]
        assert list(trace.y) == ["2023-12", "2024-01", "2024-02", "2024-03"]
        expected = {(c, k): view.frame.row(i, named=True)[metric]
                    for i, (c, k) in enumerate(zip(view.frame["cohort"],
                                                   view.frame["period_offset"], strict=True))}
        for i, cohort in enumerate(trace.y):
            for k, value in enumerate(trace.z[i]):
                want = expected.get((cohort, k))
                assert value == (None if want is None else float(want))
    assert "Cohort 2024-01, month 1" in view.figure.data[0].text[1][1]


def test_the_readable_sql_gives_the_same_matrix(con):
    view = retention_matrix(con, period="week", cohort_by="first_category",
                            filter=CohortFilter(start=datetime(2024, 1, 1),
                                                end=datetime(2024, 4, 1)))
    assert "'2024-03-31 23:59:59.999999'" in view.sql
    assert con.sql(view.sql).pl().equals(view.frame)


# ------------------------------------------------------------------ against the reference


def reference_matrix(reference: Reference, period, cohort_by, cohort_filter, members=None):
    """Every cell in polars, customer by customer and offset by offset (docs/cohorts.md)."""
    cap = reference.cap(cohort_filter)
    index = partial(period_index, period)
    cohorts = (reference.cohorts(period, cohort_by, cohort_filter, members)
               .with_columns(index(pl.col("first_at")).alias("first_index"))
               .with_columns((index(pl.lit(cap)) - pl.col("first_index")).alias("last")))
    spent = (reference.purchases.filter(pl.col("ordered_at") <= cap)
             .join(cohorts, on="customer_id")
             .with_columns((index(pl.col("ordered_at")) - pl.col("first_index")).alias("k"))
             .group_by("customer_id", "k").agg(pl.col("total").sum().alias("spent")))
    observed = (cohorts.with_columns(pl.int_ranges(0, pl.col("last") + 1).alias("at"))
                .explode("at").select("customer_id", "cohort", "at"))
    base = spent.filter(pl.col("k") == 0).select("customer_id", pl.col("spent").alias("base"))
    so_far = (observed.join(spent, on="customer_id").filter(pl.col("k") <= pl.col("at"))
              .group_by("customer_id", "at").agg(pl.col("spent").sum().alias("so_far")))
    per_customer = (observed
                    .join(spent.rename({"k": "at"}), on=["customer_id", "at"], how="left")
                    .join(base, on="customer_id", how="left")
                    .join(so_far, on=["customer_id", "at"], how="left"))
    matrix = (per_customer.group_by("cohort", "at").agg(
        pl.len().alias("customers"), pl.col("spent").is_not_null().sum().alias("returning"),
        pl.col("spent").sum().alias("revenue"), pl.col("base").sum().alias("base"),
        pl.col("so_far").sum().alias("so_far")))
    return {(row["cohort"], row["at"]): (
        row["customers"], row["returning"], row["returning"] / row["customers"],
        Decimal(str(row["revenue"])),
        None if row["base"] == 0 else row["revenue"] / row["base"],
        row["so_far"] / row["customers"]) for row in matrix.iter_rows(named=True)}


def assert_same_matrix(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        have = got[key]
        assert have[:2] == want[:2] and have[3] == want[3], key
        for i in (2, 4, 5):
            assert have[i] == pytest.approx(want[i], rel=1e-12, abs=1e-12), key


FILTERS = [CohortFilter(), CohortFilter(start=datetime(2023, 3, 1)),
           CohortFilter(start=datetime(2023, 2, 13, 5), end=datetime(2024, 1, 1)),
           CohortFilter(end=datetime(2023, 9, 30, 17))]


@pytest.mark.parametrize("period", ["week", "month", "quarter"])
@pytest.mark.parametrize("cohort_by", ["first_order", "first_category", "channel", "country"])
def test_matrix_equals_the_reference_on_random_data(random_store, period, cohort_by):
    _, reference, con = random_store
    for cohort_filter in FILTERS:
        # the statement alone: the heatmap is checked on the hand-built store
        view = run_view(con, retention_statement(period, cohort_by, cohort_filter), "matrix")
        assert view.frame.height > 0
        assert_same_matrix(cells(view),
                           reference_matrix(reference, period, cohort_by, cohort_filter))


def test_members_limit_the_matrix_on_random_data(random_store):
    rows, reference, con = random_store
    german = {c["customer_id"] for c in rows["customers"] if c["country"] == "DE"}
    members = sa.select(customers.c.customer_id).where(customers.c.country == "DE")
    view = run_view(con, retention_statement("month", "channel", FILTERS[1], members), "matrix")
    assert_same_matrix(cells(view), reference_matrix(reference, "month", "channel", FILTERS[1],
                                                     german))


def test_the_demo_store_matrix_adds_up_to_its_rollups(demo_home):
    con = connect_reader(demo_home)
    try:
        view = retention_matrix(con, period="month")
        buyers, revenue = con.execute(
            "SELECT count(*), sum(revenue) FROM customer_order_summary").fetchall()[0]
    finally:
        con.close()
    first = view.frame.filter(pl.col("period_offset") == 0)
    assert first["customers"].sum() == buyers
    assert first["share_returning"].to_list() == [1.0] * first.height
    # every valid purchase lands in exactly one cell
    assert view.frame["revenue"].sum() == revenue
    assert view.frame.height > 12
