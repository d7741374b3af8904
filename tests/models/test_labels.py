"""Labels: the published UCI protocols, the window's edges, and refusal past the data."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from models.features import build_features
from models.labels import (
    build_labels,
    check_label_window,
    label_query,
    last_complete_day,
    latest_labelable_cutoff,
)
from studio.errors import UserError

CUTOFF = date(2024, 6, 30)
HORIZON = 30
T = datetime.combine(CUTOFF, time.max)


@pytest.mark.parametrize(("cutoff", "horizon", "eligible", "share"), [
    ("2011-09-10", 90, 3_370, 0.570),  # published: 3,370 eligible, 57% buy
    ("2011-11-09", 30, 4_086, 0.337),  # published: 4,086 eligible, 34% buy
])
def test_uci_labels_match_the_published_protocol(retail_con, cutoff, horizon, eligible, share):
    labels = build_labels(retail_con, cutoff, horizon)
    assert labels.height == eligible
    assert round(labels["purchased"].mean(), 3) == share
    assert (labels["churned"] == ~labels["purchased"]).all()
    assert ((labels["orders"] > 0) == labels["purchased"]).all()
    assert (labels.filter(~labels["purchased"])["spend"] == 0).all()


def test_uci_spend_is_the_sum_of_the_window_invoices(retail_con):
    labels = build_labels(retail_con, "2011-09-10", 90)
    expected = retail_con.execute(
        "SELECT round(sum(total), 2) FROM orders WHERE kind = 'sale' AND NOT is_guest "
        "AND ordered_at >= TIMESTAMP '2011-09-11' AND ordered_at < TIMESTAMP '2011-12-10' "
        "AND customer_id IN (SELECT customer_id FROM orders WHERE kind = 'sale' "
        "AND NOT is_guest AND ordered_at < TIMESTAMP '2011-09-11')").fetchall()[0][0]
    assert round(labels["spend"].sum(), 2) == expected


def test_the_latest_labelable_cutoff_is_the_last_order_day_minus_the_horizon(retail_con, demo_con):
    # the UCI file ends at 12:50 on 2011-12-09: the published cutoffs are that day minus H
    assert last_complete_day(retail_con) == date(2011, 12, 9)
    assert latest_labelable_cutoff(retail_con, 90) == date(2011, 9, 10)
    assert latest_labelable_cutoff(retail_con, 30) == date(2011, 11, 9)
    assert latest_labelable_cutoff(demo_con, 90) == date(2024, 12, 31) - timedelta(days=90)
    check_label_window(retail_con, "2011-09-10 23:59:59", 90)
    with pytest.raises(UserError, match="choose a cutoff on or before 2011-09-10"):
        build_labels(retail_con, date(2011, 9, 11), 90)


@pytest.mark.parametrize("horizon", [0, -5, 2.5, "90", True])
def test_a_horizon_that_is_not_a_positive_whole_number_is_refused(demo_con, horizon):
    with pytest.raises(UserError, match="whole number of days"):
        build_labels(demo_con, CUTOFF, horizon)


def test_a_cutoff_that_is_not_a_date_is_refused(demo_con):
    with pytest.raises(UserError, match="is not a date"):
        build_labels(demo_con, "end of June", 30)


@pytest.mark.parametrize("population", ["buyers", "known"])
def test_labels_cover_exactly_the_features_population(demo_con, population):
    features = build_features(demo_con, CUTOFF, population=population)
    labels = build_labels(demo_con, CUTOFF, HORIZON, population=population)
    assert labels["customer_id"].equals(features["customer_id"])


def _labels(con):
    sql, params = label_query(CUTOFF, HORIZON, population="known")
    return con.sql(sql, params=params).pl()


def _add_order(con, order_id: str, customer_id: str, at: datetime) -> None:
    con.execute("INSERT INTO orders (order_id, customer_id, is_guest, ordered_at, kind, status, "
                "total, updated_at) VALUES (?, ?, false, ?, 'sale', 'completed', 10.0, ?)",
                [order_id, customer_id, at, at])


def test_labels_change_only_with_orders_inside_the_window(demo_copy):
    before = _labels(demo_copy)
    end = T + timedelta(days=HORIZON)

    # after the window: deleting every later order changes nothing
    assert demo_copy.execute("DELETE FROM orders WHERE ordered_at > ?", [end]
                             ).fetchall()[0][0] > 1_000
    assert _labels(demo_copy).equals(before)

    quiet = before.filter(~before["purchased"])["customer_id"].to_list()[:4]
    _add_order(demo_copy, "X-AT-CUTOFF", quiet[0], T)  # the cutoff itself is the past
    _add_order(demo_copy, "X-AFTER-END", quiet[1], end + timedelta(microseconds=1))
    assert _labels(demo_copy).equals(before)

    # inside: the window's first and last moments count, for those customers only
    _add_order(demo_copy, "X-FIRST", quiet[2], T + timedelta(microseconds=1))
    _add_order(demo_copy, "X-LAST", quiet[3], end)
    buyer = before.filter(before["orders"] == 1)["customer_id"][0]
    demo_copy.execute("DELETE FROM orders WHERE customer_id = ? AND ordered_at > ?", [buyer, T])
    after = _labels(demo_copy)
    flipped = after.filter(after["purchased"] != before["purchased"])["customer_id"].to_list()
    assert sorted(flipped) == sorted([quiet[2], quiet[3], buyer])
    unchanged = ~after["customer_id"].is_in(flipped)
    assert after.filter(unchanged).equals(before.filter(unchanged))
