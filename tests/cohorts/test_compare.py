"""Segments compared side by side: a known store, a polars reference, the demo store."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import polars as pl
import pytest

from studio.cohorts.common import CohortFilter
from studio.cohorts.compare import KPIS, compare_segments
from studio.config import Settings
from studio.errors import UserError
from studio.segments import library
from studio.segments.definition import parse_definition
from studio.warehouse import connect_reader
from tests.conftest import make_settings

GERMANY = {"name": "Germany", "rule": {"profile": {"field": "country", "op": "equals",
                                                   "value": "DE"}}}
BIG_SPENDERS = {"name": "Big spenders", "rule": {"orders": {"metric": "revenue", "op": "gte",
                                                            "value": 100}}}
NOBODY = {"name": "Nobody", "rule": {"profile": {"field": "country", "op": "equals",
                                                 "value": "XX"}}}
ORDERS = [
    {"customer_id": "a", "ordered_at": "2024-01-05 10:00", "total": 100},
    {"customer_id": "a", "ordered_at": "2024-02-01 10:00", "total": 50},
    {"customer_id": "b", "ordered_at": "2024-01-20 10:00", "total": 20},
    {"customer_id": "b", "ordered_at": "2024-01-25 10:00", "total": 80, "status": "cancelled"},
    {"customer_id": "c", "ordered_at": "2024-03-01 10:00", "total": 30},
    {"customer_id": "c", "ordered_at": "2024-03-01 10:00", "total": 30},
    {"customer_id": None, "is_guest": True, "ordered_at": "2024-02-01 10:00", "total": 900},
]
CUSTOMERS = [{"customer_id": "a", "country": "DE"}, {"customer_id": "b", "country": "DE"},
             {"customer_id": "c", "country": "FR"}, {"customer_id": "z", "country": "DE"}]
CONSENT = [
    {"customer_id": "a", "channel": "email", "status": "subscribed",
     "occurred_at": "2024-01-01"},
    {"customer_id": "b", "channel": "email", "status": "subscribed",
     "occurred_at": "2024-01-01"},
    {"customer_id": "b", "channel": "email", "status": "unsubscribed",
     "occurred_at": "2024-02-15"},
    {"customer_id": "z", "channel": "sms", "status": "subscribed", "occurred_at": "2024-01-01"},
    # after the data's latest order: not yet subscribed as of the comparison's moment
    {"customer_id": "c", "channel": "email", "status": "subscribed",
     "occurred_at": "2024-03-10"},
]


def save(settings, *documents) -> None:
    for document in documents:
        library.save_segment(settings, parse_definition(document), user="tester")


@pytest.fixture
def con(tiny_store, settings):
    save(settings, GERMANY, BIG_SPENDERS, NOBODY)
    return tiny_store(orders=ORDERS, customers=CUSTOMERS, consent_events=CONSENT)


def kpis(view) -> dict[str, tuple]:
    return {row["segment"]: tuple(row[k] for k in KPIS) for row in view.frame.iter_rows(named=True)}


def row(customers, buyers, orders, revenue, repeaters, email, sms) -> tuple:
    """A row of KPIs from its counts, the ratios worked out here (None for 0 / 0)."""
    def share(a, b):
        return None if b == 0 else pytest.approx(float(a) / b, rel=1e-12)
    return (customers, buyers, orders, Decimal(revenue), share(revenue, orders),
            share(orders, buyers), share(repeaters, buyers), share(revenue, customers),
            share(email, customers), share(sms, customers))


def test_kpis_over_the_whole_history(settings, con):
    view = compare_segments(settings, con, ["Germany", "Big spenders", "Nobody"])
    assert kpis(view) == {
        "All customers": row(4, 3, 5, 230, 2, 1, 1),
        "Germany": row(3, 2, 3, 170, 1, 1, 1),
        "Big spenders": row(1, 1, 2, 150, 1, 1, 0),
        "Nobody": row(0, 0, 0, 0, 0, 0, 0),
    }
    assert view.frame["segment"].to_list() == ["All customers", "Germany", "Big spenders",
                                              "Nobody"]


def test_kpis_within_a_date_range(settings, con):
    # members and consent as of 20 February: b has unsubscribed, a is already a big spender
    view = compare_segments(settings, con, ["Big spenders", "Germany"], CohortFilter(
        start=datetime(2024, 1, 10), end=datetime(2024, 2, 20)), baseline=False)
    assert kpis(view) == {"Big spenders": row(1, 1, 1, 50, 0, 1, 0),
                          "Germany": row(3, 2, 2, 70, 0, 1, 1)}
    assert con.sql(view.sql).pl().equals(view.frame)
    assert len(view.figure.data) == len(KPIS)


def test_the_same_segment_twice_is_compared_once(settings, con):
    view = compare_segments(settings, con, ["Germany", "Germany"], baseline=False)
    assert view.frame["segment"].to_list() == ["Germany"]


@pytest.mark.parametrize("names, message", [([], "at least one saved segment"),
                                            (["Germany", "Austria"], "No saved segment")])
def test_bad_choices_are_user_errors(settings, con, names, message):
    with pytest.raises(UserError, match=message):
        compare_segments(settings, con, names)


# ------------------------------------------------------------------ against the reference


def reference_kpis(reference, members: set[str], moment: datetime, cohort_filter) -> tuple:
    purchases = reference.purchases.filter(pl.col("customer_id").is_in(sorted(members)))
    if cohort_filter.start is not None:
        purchases = purchases.filter(pl.col("ordered_at") >= cohort_filter.start)
    if cohort_filter.end is not None:
        purchases = purchases.filter(pl.col("ordered_at") < cohort_filter.end)
    per_buyer = purchases.group_by("customer_id").agg(pl.len().alias("n"),
                                                      pl.col("total").sum().alias("spent"))
    latest = (reference.consent.filter(pl.col("occurred_at") <= moment)
              .sort("occurred_at", "consent_event_id")
              .group_by("customer_id", "channel").last())
    subscribed = {channel: set(latest.filter((pl.col("channel") == channel)
                                             & (pl.col("status") == "subscribed"))
                               ["customer_id"].to_list()) for channel in ("email", "sms")}
    return row(len(members), per_buyer.height, int(per_buyer["n"].sum()),
               Decimal(str(per_buyer["spent"].sum())), int((per_buyer["n"] >= 2).sum()),
               len(members & subscribed["email"]), len(members & subscribed["sms"]))


@pytest.mark.parametrize("cohort_filter", [
    CohortFilter(), CohortFilter(start=datetime(2023, 5, 1), end=datetime(2023, 12, 24, 6))])
def test_kpis_equal_the_reference_on_random_data(random_store, tmp_path, cohort_filter):
    rows, reference, con = random_store
    settings = make_settings(tmp_path / "home")  # only the state database is written to
    save(settings, GERMANY, {"name": "France", "rule": {"profile": {
        "field": "country", "op": "equals", "value": "FR"}}})
    view = compare_segments(settings, con, ["Germany", "France"], cohort_filter)
    moment = cohort_filter.end or reference.orders["ordered_at"].max()
    everyone = {c["customer_id"] for c in rows["customers"]}
    expected = {"All customers": reference_kpis(reference, everyone, moment, cohort_filter)}
    for name, code in (("Germany", "DE"), ("France", "FR")):
        members = {c["customer_id"] for c in rows["customers"] if c["country"] == code}
        expected[name] = reference_kpis(reference, members, moment, cohort_filter)
    assert kpis(view) == expected


def test_the_demo_store_matches_its_rollups(demo_home, tmp_path):
    # the demo warehouse, with a private state database for the saved segment
    settings = Settings(home=demo_home.home, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    save(settings, GERMANY)
    con = connect_reader(settings)
    try:
        view = compare_segments(settings, con, ["Germany"])
        buyers, orders, revenue = con.execute(
            "SELECT count(*), sum(purchases), sum(revenue) FROM customer_order_summary"
        ).fetchall()[0]
        customers, germans = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE country = 'DE') FROM customers"
        ).fetchall()[0]
    finally:
        con.close()
    everyone, germany = view.frame.iter_rows(named=True)
    assert (everyone["customers"], everyone["buyers"], everyone["orders"],
            everyone["revenue"]) == (customers, buyers, orders, revenue)
    assert germany["customers"] == germans > 0
    assert 0 < germany["buyers"] < everyone["buyers"]
