"""Point-in-time features: blind to the future, equal to a plain-Python recount, true to UCI."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta

import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from models.features import CATEGORICAL, FEATURE_NAMES, FEATURES, build_features, feature_query
from models.labels import build_labels
from studio.errors import UserError

CUTOFF = date(2024, 6, 7)  # an e-mail campaign went out that day: opens straddle it
T = datetime.combine(CUTOFF, time.max)


def test_the_query_returns_every_feature_in_order_with_one_bound_parameter(demo_con):
    sql, params = feature_query(CUTOFF)
    assert params == [T]
    assert "2024" not in sql  # the cutoff is bound, never pasted in
    frame = build_features(demo_con, CUTOFF)
    assert frame.columns == ["customer_id", *FEATURE_NAMES]
    assert frame["customer_id"].is_unique().all()
    assert frame["customer_id"].is_sorted()
    for name in CATEGORICAL:
        assert frame.schema[name] == pl.String
        assert frame[name].null_count() == 0
    assert len({spec.name for spec in FEATURES}) == len(FEATURES)
    assert all(spec.meaning.endswith(".") for spec in FEATURES)


def test_buyers_are_the_known_customers_who_have_purchased(demo_con):
    buyers = build_features(demo_con, CUTOFF, population="buyers")
    known = build_features(demo_con, CUTOFF, population="known")
    assert known.filter(pl.col("has_purchased") == 1).equals(buyers)
    signed_up = demo_con.execute("SELECT count(*) FROM customers WHERE signed_up_at <= ?",
                                 [T]).fetchall()[0][0]
    assert known.height == signed_up  # the generator's customers act only after signing up
    assert 0 < buyers.height < known.height


def test_an_unknown_population_is_refused(demo_con):
    with pytest.raises(UserError, match="Unknown population 'everyone'"):
        build_features(demo_con, CUTOFF, population="everyone")


def _future_mutations() -> list[str]:
    """Rewrite, wildly, every row or column value that is dated after the cutoff."""
    at = f"TIMESTAMP '{T}'"
    return [
        f"UPDATE order_items SET quantity = quantity * 9, product_id = 'P-WILD' WHERE order_id "
        f"IN (SELECT order_id FROM orders WHERE ordered_at > {at})",
        f"UPDATE orders SET total = total * 7 + 1, kind = 'return', status = 'refunded', "
        f"customer_id = 'C0000001', is_guest = false WHERE ordered_at > {at}",
        # placed before the cutoff, settled after it: the final status was not known then
        f"UPDATE orders SET status = CASE status WHEN 'completed' THEN 'cancelled' "
        f"ELSE 'completed' END, updated_at = TIMESTAMP '2031-01-01' "
        f"WHERE ordered_at <= {at} AND updated_at > {at}",
        f"UPDATE events SET event_type = 'add_to_cart', session_id = 'S-WILD', "
        f"customer_id = 'C0000002' WHERE occurred_at > {at}",
        f"UPDATE campaign_sends SET opened_at = TIMESTAMP '2030-05-05' WHERE opened_at > {at}",
        f"UPDATE campaign_sends SET clicked_at = TIMESTAMP '2030-05-05' "
        f"WHERE clicked_at > {at}",
        f"UPDATE campaign_sends SET customer_id = 'C0000003' WHERE sent_at > {at}",
        f"UPDATE consent_events SET status = CASE status WHEN 'subscribed' THEN 'unsubscribed' "
        f"ELSE 'subscribed' END WHERE occurred_at > {at}",
        f"UPDATE customers SET updated_at = TIMESTAMP '2031-01-01', email = 'wild@example.com' "
        f"WHERE updated_at > {at}",
        f"UPDATE customers SET country = 'XX', acquisition_channel = 'wild', "
        f"signed_up_at = TIMESTAMP '2030-01-01' WHERE signed_up_at > {at}",
    ]


def _future_deletions() -> list[str]:
    at = f"TIMESTAMP '{T}'"
    return [
        f"DELETE FROM order_items WHERE order_id IN "
        f"(SELECT order_id FROM orders WHERE ordered_at > {at})",
        f"DELETE FROM orders WHERE ordered_at > {at}",
        f"DELETE FROM events WHERE occurred_at > {at}",
        f"DELETE FROM campaign_sends WHERE sent_at > {at}",
        f"DELETE FROM consent_events WHERE occurred_at > {at}",
        f"DELETE FROM customers WHERE signed_up_at > {at}",
    ]


def _run_all(con, statements: list[str]) -> int:
    changed = 0
    for statement in statements:
        changed += con.execute(statement).fetchall()[0][0]
    return changed


@pytest.mark.parametrize("population", ["buyers", "known"])
def test_changing_or_deleting_everything_after_the_cutoff_leaves_the_features_unchanged(
        demo_copy, population):
    before = build_features(demo_copy, CUTOFF, population=population)
    straddling = demo_copy.execute(
        "SELECT count(*) FROM campaign_sends WHERE sent_at <= ? AND opened_at > ?",
        [T, T]).fetchall()[0][0]
    assert straddling > 0  # the opens after the cutoff of messages sent before it

    assert _run_all(demo_copy, _future_mutations()) > 50_000
    assert build_features(demo_copy, CUTOFF, population=population).equals(before)

    assert _run_all(demo_copy, _future_deletions()) > 50_000
    assert build_features(demo_copy, CUTOFF, population=population).equals(before)

    # the cutoff's own day is known: taking its orders away does change the features
    on_the_day = f"CAST(ordered_at AS DATE) = DATE '{CUTOFF}'"
    demo_copy.execute(f"DELETE FROM order_items WHERE order_id IN "
                      f"(SELECT order_id FROM orders WHERE {on_the_day})")
    assert demo_copy.execute(f"DELETE FROM orders WHERE {on_the_day}").fetchall()[0][0] > 0
    assert not build_features(demo_copy, CUTOFF, population=population).equals(before)


# --- a plain-Python recount from the raw rows ------------------------------------------------

def _rows(con, query: str, params=None) -> list[dict]:
    return con.sql(query, params=params or []).pl().to_dicts()


def _recount(con, customers: list[str]) -> dict[str, dict]:
    """Recompute a dozen features for ``customers`` with Python loops over their rows."""
    wanted = set(customers)
    orders = [o for o in _rows(con, "SELECT * FROM orders") if o["customer_id"] in wanted]
    items = defaultdict(list)
    for item in _rows(con, "SELECT i.order_id, p.category FROM order_items i "
                           "LEFT JOIN products p USING (product_id)"):
        items[item["order_id"]].append(item["category"])
    events = [e for e in _rows(con, "SELECT * FROM events") if e["customer_id"] in wanted]
    sends = [s for s in _rows(con, "SELECT * FROM campaign_sends") if s["customer_id"] in wanted]
    consent = [c for c in _rows(con, "SELECT * FROM consent_events")
               if c["customer_id"] in wanted]
    result = {}
    for customer in customers:
        mine = [o for o in orders if o["customer_id"] == customer and not o["is_guest"]
                and o["ordered_at"] <= T]
        settled = [o for o in mine if o["updated_at"] is None or o["updated_at"] <= T]
        valid = [o for o in mine if o["kind"] == "sale"
                 and (o["status"] == "completed" or o not in settled)]
        refunds = [o for o in mine if o["kind"] == "return"
                   or (o["status"] == "refunded" and o in settled)]
        by_day = defaultdict(float)
        for o in valid:
            by_day[o["ordered_at"].date()] += o["total"]
        days = sorted(by_day)
        gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
        visits = [e for e in events if e["customer_id"] == customer and e["occurred_at"] <= T]
        last_30 = datetime.combine(CUTOFF - timedelta(days=29), time.min)
        last_90 = datetime.combine(CUTOFF - timedelta(days=89), time.min)
        touches = [e["occurred_at"] for e in visits] + [o["ordered_at"] for o in mine] + [
            s[column] for s in sends if s["customer_id"] == customer
            for column in ("opened_at", "clicked_at") if s[column] is not None and s[column] <= T]
        email = sorted((c["occurred_at"], c["consent_event_id"], c["status"]) for c in consent
                       if c["customer_id"] == customer and c["channel"] == "email"
                       and c["occurred_at"] <= T)
        result[customer] = {
            "frequency": len(valid),
            "monetary_total": round(sum(o["total"] for o in valid), 2),
            "recency_days": (CUTOFF - days[-1]).days if days else None,
            "orders_90d": sum(1 for o in valid if o["ordered_at"] >= last_90),
            "bgnbd_x": len(days) - 1 if days else None,
            "bgnbd_t_x": (days[-1] - days[0]).days if days else None,
            "bgnbd_T": (CUTOFF - days[0]).days if days else None,
            "gg_mean_repeat_value": (round(statistics.mean(by_day[d] for d in days[1:]), 6)
                                     if len(days) > 1 else None),
            "gap_std_days": round(statistics.stdev(gaps), 6) if len(gaps) > 1 else None,
            "refund_count": len(refunds),
            "category_count": len({c for o in valid for c in items[o["order_id"]]}),
            "sessions_30d": len({e["session_id"] for e in visits if e["occurred_at"] >= last_30}),
            "product_views_90d": sum(1 for e in visits if e["event_type"] == "product_view"
                                     and e["occurred_at"] >= last_90),
            "opens_90d": sum(1 for s in sends if s["customer_id"] == customer
                             and s["opened_at"] is not None and last_90 <= s["opened_at"] <= T),
            "email_consent": email[-1][2] if email else "none",
            "days_since_engagement": (CUTOFF - max(touches).date()).days if touches else None,
        }
    return result


def test_features_match_a_plain_python_recount_from_the_raw_rows(demo_con):
    features = build_features(demo_con, CUTOFF, population="known")
    busiest = features.sort("frequency", descending=True)["customer_id"].head(15).to_list()
    refunders = features.filter(pl.col("refund_count") > 0)["customer_id"].head(10).to_list()
    browsers = features.filter((pl.col("has_purchased") == 0) & (pl.col("sessions_90d") > 0)
                               )["customer_id"].head(10).to_list()
    sample = busiest + refunders + browsers + features["customer_id"].gather_every(97).to_list()
    expected = _recount(demo_con, sample)
    got = {row["customer_id"]: row for row in features.filter(
        pl.col("customer_id").is_in(sample)).to_dicts()}
    checked = 0
    for customer, values in expected.items():
        for name, value in values.items():
            actual = got[customer][name]
            if isinstance(value, float):
                actual = round(actual, 6 if "gap" in name or "gg_" in name else 2)
            assert actual == value, (customer, name)
            checked += 1
    assert len(expected) >= 50 and checked >= 50 * 16
    assert any(v["gap_std_days"] is not None for v in expected.values())
    assert any(v["refund_count"] > 0 for v in expected.values())
    assert any(v["frequency"] == 0 and v["sessions_30d"] > 0 for v in expected.values())


# --- UCI Online Retail: the published protocol ----------------------------------------------

def test_uci_at_2011_09_10_reproduces_the_published_single_feature_aurocs(retail_con):
    """Third-party figures for this protocol: frequency alone 0.723, recency alone 0.683.

    "Frequency" there is the lifetimes frequency: repeat purchase days, our ``bgnbd_x``.
    """
    features = build_features(retail_con, "2011-09-10")
    labels = build_labels(retail_con, "2011-09-10", 90)
    assert features.height == 3_370
    assert features["customer_id"].equals(labels["customer_id"])
    bought = labels["purchased"].to_numpy()
    assert round(roc_auc_score(bought, features["bgnbd_x"].to_numpy()), 3) == 0.723
    assert round(roc_auc_score(bought, -features["recency_days"].to_numpy()), 3) == 0.683
    # lifetimes' conventions: T >= t_x >= 0, x = 0 exactly when t_x = 0
    assert (features["bgnbd_T"] >= features["bgnbd_t_x"]).all()
    assert ((features["bgnbd_x"] == 0) == (features["bgnbd_t_x"] == 0)).all()
    assert ((features["bgnbd_x"] == 0) == features["gg_mean_repeat_value"].is_null()).all()
    assert features["acquisition_channel"].unique().to_list() == ["unknown"]
