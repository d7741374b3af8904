"""Campaign tests from the warehouse: a hand-made store, an independent recount of the demo
store, and the generator's true effects inside the reported intervals."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import stats

from studio import schema
from studio.errors import UserError
from studio.experiments.analysis import AnalysisSettings, analyze_experiment
from studio.experiments.campaigns import aggregate_campaign, list_campaign_tests
from studio.warehouse import connect_reader

SENT = datetime(2024, 3, 1, 10, 0, 0)
DAY = timedelta(days=1)
CAMPAIGNS = [
    ("T1", "Spring test", "email", SENT, '[{"name":"A","weight":0.5},{"name":"B","weight":0.5}]',
     "A"),
    ("P1", "Plain send", "sms", SENT, '[{"name":"A","weight":1}]', None),
]
SENDS = [  # send, campaign, customer, variant, sent_at, opened, clicked, unsubscribed
    ("s1", "T1", "c1", "A", SENT, SENT + DAY, SENT + DAY, None),
    ("s2", "T1", "c2", "A", SENT, None, None, None),
    ("s3", "T1", "c3", "B", SENT, SENT + DAY, None, SENT + DAY),
    ("s4", "T1", "c4", "B", SENT, None, None, None),
    ("s5", "T1", "c4", "A", SENT + timedelta(minutes=5), None, None, None),  # a second arm
    ("s6", "T1", "c5", "B", SENT, None, None, None),
    ("s7", "T1", "c5", "B", SENT + timedelta(minutes=1), None, None, None),  # sent twice
    ("s8", "T1", "c6", None, SENT, None, None, None),  # no variant
]
ORDERS = [  # order, customer, is_guest, kind, status, total, ordered_at
    ("o1", "c1", False, "sale", "completed", 100.0, SENT + DAY),
    ("o2", "c1", False, "sale", "completed", 50.0, SENT + 5 * DAY),  # last second of the window
    ("o3", "c1", False, "sale", "completed", 70.0, SENT + 5 * DAY + timedelta(seconds=1)),
    ("o4", "c1", False, "sale", "completed", 30.0, SENT - 10 * DAY),  # pre-period
    ("o5", "c1", False, "sale", "completed", 999.0, SENT - 31 * DAY),  # before the pre-period
    ("o6", "c2", False, "sale", "cancelled", 80.0, SENT + DAY),
    ("o7", "c2", True, "sale", "completed", 60.0, SENT + DAY),  # a guest checkout
    ("o8", "c3", False, "sale", "completed", 40.0, SENT + 2 * DAY),
    ("o9", "c3", False, "sale", "completed", 20.0, SENT + 3 * DAY),
    ("o10", "c3", False, "sale", "completed", 10.0, SENT - DAY),
    ("o11", "c3", False, "sale", "completed", 5.0, SENT),  # at the send: before it
    ("o12", "c5", False, "sale", "completed", 25.0, SENT + DAY),
]


@pytest.fixture
def shop(settings):
    with duckdb.connect(str(settings.warehouse_path)) as con:
        schema.create_all(con)
        con.executemany("INSERT INTO campaigns (campaign_id, name, channel, sent_at, variants, "
                        "control_variant) VALUES (?, ?, ?, ?, ?, ?)", CAMPAIGNS)
        con.executemany("INSERT INTO campaign_sends (send_id, campaign_id, customer_id, variant, "
                        "sent_at, opened_at, clicked_at, unsubscribed_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", SENDS)
        con.executemany("INSERT INTO orders (order_id, customer_id, is_guest, kind, status, "
                        "total, ordered_at) VALUES (?, ?, ?, ?, ?, ?, ?)", ORDERS)
    connection = connect_reader(settings)
    yield connection
    connection.close()


def test_the_hand_made_campaign_adds_up_to_the_hand_counted_sums(shop):
    data = aggregate_campaign(shop, "T1")
    a, b = data.arm("A"), data.arm("B")
    assert (a.units, b.units, a.weight) == (2, 3, 0.5)  # c4 stays in B, its first arm
    assert (a.statistics["open_rate"].sum, b.statistics["open_rate"].sum) == (1, 1)
    assert (a.statistics["click_rate"].sum, b.statistics["unsubscribe_rate"].sum) == (1, 1)
    conversion_a, conversion_b = a.statistics["conversion_rate"], b.statistics["conversion_rate"]
    assert (conversion_a.post.sum, conversion_b.post.sum) == (1, 2)
    assert (conversion_a.sum_products, conversion_b.sum_products) == (30, 15)
    revenue = b.statistics["revenue_per_recipient"]
    assert (revenue.post.sum, revenue.post.sum_squares) == (85, 60**2 + 25**2)
    assert (revenue.pre.sum, revenue.pre.sum_squares, revenue.sum_products) == (15, 225, 900)
    aov = a.statistics["average_order_value"]
    assert (aov.numerator.sum, aov.denominator.sum, aov.sum_products, aov.mean) == (
        150, 2, 300, 75)
    assert a.statistics["revenue_per_recipient"].pre.sum == 30
    assert (data.assignment.units_in_several_arms, data.assignment.duplicate_assignments) == (
        1, 2)  # c4 got A after B; c5 got B twice
    assert data.notes == ("1 recipients have no variant and were left out.",)


def test_the_revenue_cap_is_the_pooled_percentile_computed_in_sql(shop):
    nonzero = aggregate_campaign(shop, "T1", cap_percentile=50, cap_nonzero=True)
    assert nonzero.source["revenue_cap"] == 60  # the median of 150, 60, 25
    assert [nonzero.arm(n).statistics["revenue_per_recipient"].post.sum for n in "AB"] == [60, 85]
    everyone = aggregate_campaign(shop, "T1", cap_percentile=50)
    assert everyone.source["revenue_cap"] == 25  # the median of 150, 0, 60, 0, 25
    assert [everyone.arm(n).statistics["revenue_per_recipient"].post.sum for n in "AB"] == [25, 50]


def test_a_campaign_must_exist_and_be_a_test(shop):
    with pytest.raises(UserError, match="There is no campaign 'NOPE'"):
        aggregate_campaign(shop, "NOPE")
    with pytest.raises(UserError, match="'P1' is not an A/B test"):
        aggregate_campaign(shop, "P1")
    with pytest.raises(UserError, match="cap percentile must be a percent between 50 and 100"):
        aggregate_campaign(shop, "T1", cap_percentile=0.99)
    assert [c["campaign_id"] for c in list_campaign_tests(shop)] == ["T1"]


def recount(con, campaign_id: str) -> pl.DataFrame:
    """Per-recipient outcomes recomputed with polars from the raw tables."""
    sends = con.sql("SELECT customer_id, variant, sent_at, opened_at, clicked_at, "
                    "unsubscribed_at FROM campaign_sends WHERE campaign_id = $id",
                    params={"id": campaign_id}).pl()
    orders = con.sql("SELECT customer_id, ordered_at, total FROM orders WHERE kind = 'sale' "
                     "AND status = 'completed' AND NOT is_guest").pl()
    joined = sends.join(orders, on="customer_id", how="left")
    after = (pl.col("ordered_at") > pl.col("sent_at")) & (
        pl.col("ordered_at") <= pl.col("sent_at") + pl.duration(days=5))
    before = (pl.col("ordered_at") <= pl.col("sent_at")) & (
        pl.col("ordered_at") > pl.col("sent_at") - pl.duration(days=30))
    return joined.group_by("customer_id", "variant").agg(
        pl.col("opened_at").is_not_null().any().alias("opened"),
        after.fill_null(False).sum().alias("orders"),
        pl.col("total").filter(after).sum().alias("revenue"),
        pl.col("total").filter(before).sum().alias("pre"),
    )


@pytest.mark.parametrize("cap_nonzero", [True, False], ids=["cap of buyers", "cap of all"])
@pytest.mark.parametrize("campaign_id", ["CMP004", "CMP043"])
def test_the_demo_campaigns_match_an_independent_recount(demo_home, campaign_id, cap_nonzero):
    con = connect_reader(demo_home)
    units = recount(con, campaign_id)
    pooled = units.filter(pl.col("revenue") > 0) if cap_nonzero else units
    cap = float(np.percentile(pooled["revenue"].fill_null(0.0), 99))
    assert cap > 0
    data = aggregate_campaign(con, campaign_id, cap_percentile=99, cap_nonzero=cap_nonzero)
    assert data.source["revenue_cap"] == pytest.approx(cap, rel=1e-9)
    for arm in data.arms:
        rows = units.filter(pl.col("variant") == arm.name)
        revenue = np.minimum(rows["revenue"].fill_null(0.0).to_numpy(), cap)
        pre = rows["pre"].fill_null(0.0).to_numpy()
        stats_ = arm.statistics
        assert arm.units == rows.height
        assert stats_["open_rate"].sum == rows["opened"].sum()
        assert stats_["conversion_rate"].post.sum == (rows["orders"] > 0).sum()
        revenue_stat = stats_["revenue_per_recipient"]
        assert revenue_stat.post.sum == pytest.approx(revenue.sum(), rel=1e-9)
        assert revenue_stat.post.sum_squares == pytest.approx((revenue**2).sum(), rel=1e-9)
        assert revenue_stat.pre.sum == pytest.approx(pre.sum(), rel=1e-9)
        assert revenue_stat.sum_products == pytest.approx((revenue * pre).sum(), rel=1e-9)
        assert stats_["average_order_value"].denominator.sum == rows["orders"].sum()
    con.close()


def test_the_true_effects_of_the_demo_campaigns_fall_inside_the_intervals(demo_home, demo_store):
    """At 5,000 customers an arm has a few hundred recipients, so a 95% interval is about
    two points wide against true effects under one point: every interval is tested, and
    they must hold the truth as often as their level says (here 34 of 38; fewer than 33,
    probability about 3% if coverage is right, fails), every truth must lie in its 99.9%
    interval, and the standardised errors must be as spread as N(0, 1) says, so intervals
    that are too wide cannot pass either."""
    truth = json.loads((demo_store / "truth" / "campaigns.json").read_text())
    con = connect_reader(demo_home)
    settings = AnalysisSettings(correction="none")
    inside, z_scores = 0, {"conversion_rate": [], "revenue_per_recipient": []}
    for campaign in (c for c in truth["campaigns"] if c["is_test"]):
        data = aggregate_campaign(con, campaign["campaign_id"])
        result = analyze_experiment(data, settings)
        for variant in campaign["variants"]:
            assert data.arm(variant["name"]).units == variant["recipients"]
            effects = variant["effect_vs_control"]
            if effects is None:
                continue
            for metric, key in (("conversion_rate", "conversion_5d"),
                                ("revenue_per_recipient", "completed_revenue_per_recipient")):
                lift = result.comparison(metric, variant["name"]).absolute
                inside += lift.ci_low <= effects[key] <= lift.ci_high
                z_scores[metric].append((lift.estimate - effects[key]) / lift.standard_error)
    con.close()
    total = sum(len(z) for z in z_scores.values())
    assert total == 38
    assert inside >= 33
    for z in z_scores.values():
        z = np.array(z)
        assert np.abs(z).max() < stats.norm.ppf(0.9995)
        low, high = stats.chi2.ppf([0.001, 0.999], len(z))
        assert low < (z**2).sum() < high
