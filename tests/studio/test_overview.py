"""The Overview's KPIs on a hand-built warehouse whose answers are worked out by hand."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import duckdb
import polars as pl
import pytest

from studio import overview, schema
from studio.errors import UserError

AS_OF = datetime(2024, 6, 30, 12, 0)
DAY_30 = AS_OF - timedelta(days=30)  # 2024-05-31 12:00, outside the 30-day window
DAY_90 = AS_OF - timedelta(days=90)  # 2024-04-01 12:00, outside the 90-day window
SECOND = timedelta(seconds=1)

ORDER_COLUMNS = ("order_id", "customer_id", "is_guest", "ordered_at", "kind", "status",
                 "currency", "total")
# order_id, customer, guest, ordered_at, kind, status, currency, total
ORDERS = [
    ("o1", "c1", False, datetime(2024, 1, 10, 10), "sale", "completed", "GBP", 100.0),
    ("o2", "c1", False, AS_OF, "sale", "completed", "GBP", 50.0),
    ("o3", "c2", False, DAY_30, "sale", "completed", "GBP", 80.0),
    ("o4", "c3", False, DAY_30 + SECOND, "sale", "completed", "GBP", 20.0),
    ("o5", "c4", False, DAY_90, "sale", "completed", "GBP", 40.0),
    ("o6", "c4", False, DAY_90 + SECOND, "sale", "cancelled", "GBP", 999.0),
    ("o7", "c5", False, datetime(2024, 6, 15), "sale", "refunded", "GBP", 70.0),
    ("o8", None, True, datetime(2024, 6, 20), "sale", "completed", "GBP", 30.0),
    ("o9", "c1", False, datetime(2024, 6, 25), "return", "completed", "GBP", -25.0),
    ("o10", "c2", False, datetime(2024, 3, 1), "sale", "completed", "GBP", 60.0),
    ("o11", "c3", False, datetime(2024, 6, 10), "adjustment", "completed", "GBP", 5.0),
    ("o12", "c5", False, datetime(2024, 6, 28), "return", "cancelled", "GBP", -10.0),
    ("o13", None, True, datetime(2024, 6, 22), "return", "completed", "GBP", -7.0),
]
CUSTOMERS = ["c1", "c2", "c3", "c4", "c5"]


def build_warehouse(path, customers, orders) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    schema.create_all(con)
    con.executemany("INSERT INTO customers (customer_id) VALUES (?)", [[c] for c in customers])
    if orders:
        con.executemany(
            f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [list(row) for row in orders],
        )
    return con


@pytest.fixture
def con(tmp_path):
    con = build_warehouse(tmp_path / "warehouse.duckdb", CUSTOMERS, ORDERS)
    yield con
    con.close()


def test_as_of_is_the_latest_order(con):
    assert overview.as_of_date(con) == AS_OF


def test_kpis_match_the_hand_computed_figures(con):
    kpis = overview.overview_kpis(con)
    assert kpis.as_of == AS_OF
    assert kpis.customers == 5
    # Valid: o1, o2, o3, o4, o5, o10. Not o6 (cancelled), o7 (refunded), o8 (guest).
    assert kpis.orders == 6
    # Valid sales 350 + guest sale 30 - return 25 - guest return 7; adjustment and the
    # cancelled return are left out.
    assert kpis.revenue == pytest.approx(348.0)
    assert kpis.average_order_value == pytest.approx(350.0 / 6)
    # (May 31 12:00, Jun 30 12:00]: c1 (o2) and c3 (o4, one second inside); o3 sits on
    # the boundary and is out.
    assert kpis.active_30d == 2
    # (Apr 1 12:00, Jun 30 12:00]: c1, c2, c3; c4's only order inside is cancelled.
    assert kpis.active_90d == 3
    # Buyers c1 (2 orders), c2 (2), c3 (1), c4 (1).
    assert kpis.repeat_rate == pytest.approx(0.5)
    assert kpis.currency == "GBP"


def test_an_earlier_as_of_ignores_later_orders(con):
    kpis = overview.overview_kpis(con, as_of=DAY_30)
    # o1, o3 (exactly at as_of, included), o5, o10.
    assert kpis.orders == 4
    assert kpis.revenue == pytest.approx(100 + 80 + 40 + 60)
    # (May 1 12:00, May 31 12:00]: c2 (o3). (Mar 2 12:00, May 31 12:00]: c2, c4.
    assert (kpis.active_30d, kpis.active_90d) == (1, 2)
    assert kpis.repeat_rate == pytest.approx(1 / 3)  # c2 of c1, c2, c4


def test_mixed_currencies_are_not_labelled(tmp_path):
    orders = [*ORDERS, ("o99", "c1", False, datetime(2024, 2, 1), "sale", "completed",
                        "EUR", 10.0)]
    con = build_warehouse(tmp_path / "w.duckdb", CUSTOMERS, orders)
    assert overview.overview_kpis(con).currency is None


def test_empty_warehouse_has_no_as_of_and_zero_kpis(tmp_path):
    con = build_warehouse(tmp_path / "w.duckdb", ["c1"], [])
    kpis = overview.overview_kpis(con)
    assert kpis.as_of is None
    assert (kpis.customers, kpis.orders, kpis.revenue) == (1, 0, 0.0)
    assert kpis.repeat_rate is None and kpis.average_order_value is None
    assert overview.sales_over_time(con, "month").is_empty()


def test_monthly_sales_fill_empty_months_and_add_up(con):
    sales = overview.sales_over_time(con, "month")
    assert sales.to_dicts() == [
        {"period": date(2024, 1, 1), "orders": 1, "revenue": 100.0},
        {"period": date(2024, 2, 1), "orders": 0, "revenue": 0.0},
        {"period": date(2024, 3, 1), "orders": 1, "revenue": 60.0},
        {"period": date(2024, 4, 1), "orders": 1, "revenue": 40.0},
        {"period": date(2024, 5, 1), "orders": 2, "revenue": 100.0},
        {"period": date(2024, 6, 1), "orders": 1, "revenue": 50.0 + 30.0 - 25.0 - 7.0},
    ]


@pytest.mark.parametrize(("grain", "periods", "first"), [
    ("day", 173, date(2024, 1, 10)),   # Jan 10 to Jun 30 inclusive
    ("week", 25, date(2024, 1, 8)),    # Mondays from Jan 8 to Jun 24
])
def test_finer_grains_cover_every_period_and_sum_to_the_kpis(con, grain, periods, first):
    sales = overview.sales_over_time(con, grain)
    assert sales.height == periods
    assert sales["period"][0] == first
    assert sales["period"].is_unique().all()
    assert sales["orders"].sum() == 6
    assert sales["revenue"].sum() == pytest.approx(348.0)


def test_unknown_grain_is_a_user_error(con):
    with pytest.raises(UserError, match="quarter"):
        overview.sales_over_time(con, "quarter")


def test_sales_figure_has_revenue_bars_and_order_line(con):
    figure = overview.sales_figure(overview.sales_over_time(con, "month"), "GBP")
    bars, line = figure.data
    assert list(bars.y) == [100.0, 0.0, 60.0, 40.0, 100.0, 48.0]
    assert list(line.y) == [1, 0, 1, 1, 2, 1]
    assert "GBP" in bars.name


def random_orders(seed: int, customers: list[str], n: int) -> list[tuple]:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1)
    rows = []
    for i in range(n):
        guest = rng.random() < 0.1
        kind = rng.choices(["sale", "return", "adjustment"], [0.85, 0.1, 0.05])[0]
        total = round(rng.uniform(1, 200), 2) * (-1 if kind == "return" else 1)
        rows.append((
            f"r{i}", None if guest else rng.choice(customers), guest,
            start + timedelta(minutes=rng.randrange(0, 60 * 24 * 500)), kind,
            rng.choices(["completed", "cancelled", "refunded"], [0.85, 0.1, 0.05])[0],
            "GBP", total,
        ))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kpis_agree_with_an_independent_polars_computation(tmp_path, seed):
    customers = [f"c{i}" for i in range(60)]
    rows = random_orders(seed, customers, 800)
    con = build_warehouse(tmp_path / "w.duckdb", customers, rows)
    kpis = overview.overview_kpis(con)

    frame = pl.DataFrame(rows, schema=list(ORDER_COLUMNS), orient="row")
    as_of = frame["ordered_at"].max()
    valid = frame.filter((pl.col("kind") == "sale") & (pl.col("status") == "completed")
                         & ~pl.col("is_guest"))
    revenue = frame.filter(pl.col("kind").is_in(["sale", "return"])
                           & (pl.col("status") == "completed"))["total"].sum()
    per_customer = valid.group_by("customer_id").len()

    def active(days):
        since = as_of - timedelta(days=days)
        return valid.filter(pl.col("ordered_at") > since)["customer_id"].n_unique()

    assert kpis.as_of == as_of
    assert kpis.orders == valid.height
    assert kpis.revenue == pytest.approx(revenue)
    assert kpis.average_order_value == pytest.approx(valid["total"].sum() / valid.height)
    assert kpis.active_30d == active(30)
    assert kpis.active_90d == active(90)
    assert kpis.repeat_rate == pytest.approx(
        per_customer.filter(pl.col("len") >= 2).height / per_customer.height)

    weekly = overview.sales_over_time(con, "week")
    assert weekly["orders"].sum() == kpis.orders
    assert weekly["revenue"].sum() == pytest.approx(kpis.revenue)
    assert (weekly["period"].diff().drop_nulls() == timedelta(days=7)).all()
