"""The RFM grid and movement: a hand-built store where every group is known, and polars."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa

from studio.cohorts.rfm_movement import NO_PURCHASE, rfm_grid, rfm_movement
from studio.errors import UserError
from studio.rfm import group_of
from studio.segments.catalog import RFM_GROUPS
from studio.sql import customers
from studio.warehouse import connect_reader


def bought(customer: str, day: str, total: float = 10.0, **extra) -> dict:
    return {"customer_id": customer, "ordered_at": f"2024-{day} 12:00:00", "total": total} | extra


# At the end of 2024 the five buyers rank 1..5 on recency (b1 oldest), so R is that rank,
# and F is the purchase count: b2 1, b4 2, b3 3, b5 4, b1 5.
ORDERS = [
    *(bought("b1", day, 20.0) for day in ("01-01", "01-02", "01-03", "01-04", "01-10")),
    bought("b2", "03-01", 99.99),
    bought("b3", "02-01", 5.0), bought("b3", "04-01", 5.0), bought("b3", "05-01", 5.01),
    bought("b4", "06-01", 30.0), bought("b4", "07-01", 30.0),
    *(bought("b5", day, 12.5) for day in ("01-05", "06-15", "08-01", "09-01")),
    # no valid purchases: cancelled, a return, a guest checkout
    bought("x1", "05-05", 500.0, status="cancelled"),
    bought("x2", "05-05", -20.0, kind="return"),
    bought("x3", "05-05", 70.0, is_guest=True),
]
AFTER = datetime(2024, 12, 31, 23, 59, 59)
BEFORE = datetime(2024, 4, 15)
AT_AFTER = {"b1": "Can't lose",           # R1 F5
            "b2": "Hibernating",          # R2 F1
            "b3": "Need attention",       # R3 F3
            "b4": "Potential loyalist",   # R4 F2
            "b5": "Champions"}            # R5 F4
# By 15 April: b5 (1 purchase, 5 Jan), b1 (5, 10 Jan), b2 (1, 1 Mar), b3 (2, 1 Apr); b4 has
# not bought. Recency cume_dist 1/4, 2/4, 3/4, 1 -> R 2, 3, 4, 5; F is the purchase count.
AT_BEFORE = {"b5": "Hibernating",         # R2 F1
             "b1": "Loyal",               # R3 F5
             "b2": "Promising",           # R4 F1
             "b3": "Potential loyalist"}  # R5 F2


@pytest.fixture
def shop(tiny_store):
    return tiny_store(orders=ORDERS)


def test_the_grid_lists_all_eleven_groups_with_known_counts(shop):
    view = rfm_grid(shop, AFTER)
    frame = view.frame
    assert frame.columns == ["rfm_group", "customers", "share_of_customers", "revenue",
                             "share_of_revenue"]
    assert frame["rfm_group"].to_list() == list(RFM_GROUPS)
    revenue = {"b1": Decimal("100.00"), "b2": Decimal("99.99"), "b3": Decimal("15.01"),
               "b4": Decimal("60.00"), "b5": Decimal("50.00")}
    total = sum(revenue.values())
    for row in frame.iter_rows(named=True):
        members = [c for c, group in AT_AFTER.items() if group == row["rfm_group"]]
        assert row["customers"] == len(members), row
        assert row["share_of_customers"] == pytest.approx(len(members) / 5)
        assert row["revenue"] == sum((revenue[c] for c in members), Decimal("0.00"))
        assert row["share_of_revenue"] == pytest.approx(
            float(sum((revenue[c] for c in members), Decimal(0)) / total))
    assert frame["revenue"].sum() == Decimal("325.00")
    assert view.figure.data[0].type == "treemap"
    assert sorted(view.figure.data[0].labels) == sorted(set(AT_AFTER.values()))
    assert "customer_order_summary" in view.sql  # the summary is exact at the data's end


def test_an_earlier_grid_reads_the_orders_up_to_that_moment(shop):
    frame = rfm_grid(shop, BEFORE).frame
    counts = dict(zip(frame["rfm_group"], frame["customers"], strict=True))
    assert {g: n for g, n in counts.items() if n} == {g: 1 for g in AT_BEFORE.values()}
    revenue = dict(zip(frame["rfm_group"], frame["revenue"], strict=True))
    assert revenue["Potential loyalist"] == Decimal("10.00")  # b3's two purchases by 15 April
    assert revenue["Loyal"] == Decimal("100.00")


def test_members_are_placed_among_every_buyer(shop):
    members = sa.select(customers.c.customer_id).where(customers.c.customer_id.in_(["b1", "b2"]))
    frame = rfm_grid(shop, AFTER, members).frame
    counts = {g: n for g, n in zip(frame["rfm_group"], frame["customers"], strict=True) if n}
    assert counts == {"Can't lose": 1, "Hibernating": 1}
    shares = dict(zip(frame["rfm_group"], frame["share_of_revenue"], strict=True))
    assert shares["Can't lose"] == pytest.approx(100 / 199.99)


def test_movement_follows_every_buyer_from_before_to_after(shop):
    view = rfm_movement(shop, BEFORE, AFTER)
    assert view.frame.columns == ["from_group", "to_group", "customers", "share_of_from"]
    expected = {(AT_BEFORE.get(c, NO_PURCHASE), to) for c, to in AT_AFTER.items()}
    assert {(r["from_group"], r["to_group"]) for r in view.frame.iter_rows(named=True)} == expected
    assert view.frame["customers"].to_list() == [1] * 5
    assert view.frame["share_of_from"].to_list() == [1.0] * 5
    # ordered by the groups' order, "No purchase yet" first
    assert view.frame["from_group"].to_list() == [NO_PURCHASE, "Loyal", "Potential loyalist",
                                                  "Promising", "Hibernating"]
    assert view.figure.data[0].type == "sankey"
    assert sum(view.figure.data[0].link.value) == 5


def test_movement_needs_before_earlier_than_after(shop):
    with pytest.raises(UserError, match="pick a 'from' date before the 'to' date"):
        rfm_movement(shop, AFTER, BEFORE)


def test_an_empty_store_lists_empty_groups(tiny_store):
    con = tiny_store(orders=[bought("x1", "05-05", status="cancelled")])
    frame = rfm_grid(con, AFTER).frame
    assert frame["customers"].to_list() == [0] * 11
    assert frame["share_of_customers"].to_list() == [None] * 11
    assert rfm_movement(con, BEFORE, AFTER).frame.is_empty()


# ------------------------------------------------------------------ random stores

def random_orders(seed: int) -> list[dict]:
    """About 2,000 orders of 300 customers; whole days, so that recency ties are common."""
    rng = random.Random(seed)
    rows = []
    for number in range(300):
        for _ in range(rng.choice((0, 1, 1, 2, 3, 5, 8))):
            rows.append({"customer_id": f"r{number}",
                         "ordered_at": datetime(2024, 1, 1) + timedelta(days=rng.randint(0, 180)),
                         "total": round(rng.uniform(1, 300), 2),
                         "status": rng.choice(("completed",) * 5 + ("cancelled", "refunded")),
                         "is_guest": rng.random() < 0.05})
    return rows


def reference_groups(orders: list[dict], as_of: datetime) -> pl.DataFrame:
    """``customer_id, rfm_group, revenue`` with polars: cume_dist is rank('max') / n."""
    valid = (pl.DataFrame(orders).filter(pl.col("status") == "completed", ~pl.col("is_guest"),
                                         pl.col("ordered_at") <= as_of)
             .group_by("customer_id")
             .agg(pl.col("ordered_at").max().alias("last"), pl.len().alias("purchases"),
                  pl.col("total").cast(pl.Decimal(18, 2)).sum().alias("revenue")))
    n = valid.height

    def score(column: str) -> pl.Expr:
        return (5 * (pl.col(column).rank("max") / n)).ceil().cast(pl.Int64)

    scored = valid.with_columns(score("last").alias("r"),
                                pl.col("purchases").clip(upper_bound=5).alias("f"))
    return scored.with_columns(pl.struct("r", "f").map_elements(
        lambda s: group_of(s["r"], s["f"]), pl.String).alias("rfm_group"))


def moved(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    return {(r["from_group"], r["to_group"]): r["customers"] for r in frame.iter_rows(named=True)}


@pytest.mark.parametrize("seed", [11, 12])
def test_random_grids_and_movements_match_polars(tiny_store, seed):
    orders = random_orders(seed)
    con = tiny_store(orders=orders)
    members = {f"r{n}" for n in range(0, 300, 3)}
    chosen = sa.select(customers.c.customer_id).where(customers.c.customer_id.in_(sorted(members)))
    latest = max(o["ordered_at"] for o in orders)
    for as_of, who in ((latest, None), (datetime(2024, 3, 10), members)):
        expected = reference_groups(orders, as_of)
        if who is not None:
            expected = expected.filter(pl.col("customer_id").is_in(sorted(who)))
        per_group = expected.group_by("rfm_group").agg(pl.len().alias("customers"),
                                                       pl.col("revenue").sum())
        got = rfm_grid(con, as_of, None if who is None else chosen).frame
        want = {r["rfm_group"]: (r["customers"], r["revenue"])
                for r in per_group.iter_rows(named=True)}
        for row in got.iter_rows(named=True):
            customers_in, revenue = want.get(row["rfm_group"], (0, Decimal(0)))
            assert (row["customers"], row["revenue"]) == (customers_in, revenue), row
            assert row["share_of_customers"] == pytest.approx(customers_in / expected.height)
    before, after = datetime(2024, 2, 20), datetime(2024, 5, 31)
    start = reference_groups(orders, before).select("customer_id",
                                                    pl.col("rfm_group").alias("from_group"))
    moves = (reference_groups(orders, after).filter(pl.col("customer_id").is_in(sorted(members)))
             .join(start, on="customer_id", how="left")
             .with_columns(pl.col("from_group").fill_null(NO_PURCHASE))
             .group_by("from_group", pl.col("rfm_group").alias("to_group"))
             .agg(pl.len().alias("customers")))
    got = rfm_movement(con, before, after, chosen).frame
    assert moved(got) == moved(moves)
    started = moves.group_by("from_group").agg(pl.col("customers").sum().alias("n"))
    totals = dict(started.iter_rows())
    for row in got.iter_rows(named=True):
        assert row["share_of_from"] == pytest.approx(row["customers"] / totals[row["from_group"]])


def test_grid_and_movement_on_the_demo_store(demo_home):
    con = connect_reader(demo_home)
    try:
        latest = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
        buyers = con.execute(
            "SELECT count(DISTINCT customer_id), sum(CAST(total AS DECIMAL(18, 2))) FROM orders "
            "WHERE kind = 'sale' AND status = 'completed' AND NOT coalesce(is_guest, false) "
            "AND customer_id IS NOT NULL").fetchall()[0]
        grid = rfm_grid(con, latest).frame
        movement = rfm_movement(con, latest - timedelta(days=90), latest).frame
    finally:
        con.close()
    assert (grid["customers"].sum(), grid["revenue"].sum()) == buyers
    assert grid["share_of_customers"].sum() == pytest.approx(1.0)
    assert movement["customers"].sum() == buyers[0]
