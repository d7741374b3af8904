"""A campaign's A/B test from the warehouse, aggregated to sufficient statistics in one query.

The unit is the recipient. Each recipient counts once, in the first variant they were
sent, with outcomes measured from that first send; recipients sent several variants, and
sends beyond a recipient's first, are counted for the hygiene warnings. Outcomes:

* **open, click, unsubscribe**: the send has a timestamp for it (e-mail opens only);
* **conversion**: at least one valid order (:data:`studio.schema.VALID_ORDER_SQL`) with
  ``sent_at < ordered_at <= sent_at + window``;
* **revenue per recipient**: the total of those orders (0 for non-buyers), optionally
  winsorised at a pooled percentile computed in the same query;
* **average order value**: revenue over orders, a ratio metric whose unit is still the
  recipient (numerator, denominator and their cross-product per recipient);
* **pre-period spend**: the total of valid orders in the ``pre_days`` before the send,
  the CUPED covariate of conversion and revenue.

The query returns one row per variant; Python never sees a recipient. Its two costly
steps are one hash aggregation of the campaign's sends by recipient and one join of the
recipients with their orders around the send, the orders first narrowed to the campaign's
span; only buyers come out of it. The per-arm counts come from the recipients and the
buyers' sums are added per arm (a non-buyer adds zero to every sum), so the recipients are
never joined back to the buyers: on 10,000,000 recipients, dropping that join and
narrowing the orders took 17-19% off the query's time (``benchmarks/ab.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from studio.errors import UserError
from studio.experiments.capping import cap_warning, check_percentile
from studio.experiments.experiment import Arm, AssignmentCounts, ExperimentData, Metric
from studio.experiments.statistics import (
    CovariateStatistic,
    ProportionStatistic,
    RatioStatistic,
    SampleMeanStatistic,
)
from studio.schema import VALID_ORDER_SQL

DEFAULT_WINDOW_DAYS = 5
DEFAULT_PRE_DAYS = 30

_AGGREGATE_SQL = f"""
WITH recipients AS (
    SELECT customer_id,
           arg_min(variant, sent_at) AS variant,
           min(sent_at) AS sent_at,
           count(*) AS sends,
           min(variant) <> max(variant) AS several_arms,
           max(CAST(opened_at IS NOT NULL AS INTEGER)) AS opened,
           max(CAST(clicked_at IS NOT NULL AS INTEGER)) AS clicked,
           max(CAST(unsubscribed_at IS NOT NULL AS INTEGER)) AS unsubscribed
    FROM campaign_sends
    WHERE campaign_id = $campaign
    GROUP BY customer_id
),
arms AS (
    SELECT variant,
           count(*) AS units,
           count(*) FILTER (WHERE several_arms) AS several_arms,
           CAST(sum(sends - 1) AS BIGINT) AS repeated_sends,
           CAST(sum(opened) AS BIGINT) AS opens,
           CAST(sum(clicked) AS BIGINT) AS clicks,
           CAST(sum(unsubscribed) AS BIGINT) AS unsubscribes
    FROM recipients
    GROUP BY variant
),
valid_orders AS (
    SELECT customer_id, ordered_at, total FROM orders
    WHERE {VALID_ORDER_SQL}
      AND ordered_at > (SELECT min(sent_at) FROM recipients)
                       - to_days(CAST($pre_days AS INTEGER))
      AND ordered_at <= (SELECT max(sent_at) FROM recipients)
                        + to_days(CAST($window_days AS INTEGER))
),
buyers AS (
    SELECT r.variant,
           count(*) FILTER (WHERE o.ordered_at > r.sent_at) AS orders,
           coalesce(sum(o.total) FILTER (WHERE o.ordered_at > r.sent_at), 0) AS revenue,
           coalesce(sum(o.total) FILTER (WHERE o.ordered_at <= r.sent_at), 0) AS pre_spend
    FROM recipients AS r
    JOIN valid_orders AS o
      ON o.customer_id = r.customer_id
     AND o.ordered_at > r.sent_at - to_days(CAST($pre_days AS INTEGER))
     AND o.ordered_at <= r.sent_at + to_days(CAST($window_days AS INTEGER))
    GROUP BY r.customer_id, r.variant
){{cap_cte}},
sums AS (
    SELECT variant,
           count(*) FILTER (WHERE orders > 0) AS converters,
           sum({{revenue}}) AS revenue,
           sum({{revenue}} * {{revenue}}) AS revenue_squares,
           CAST(sum(orders) AS BIGINT) AS orders,
           CAST(sum(orders * orders) AS BIGINT) AS orders_squares,
           sum({{revenue}} * orders) AS revenue_orders,
           sum(pre_spend) AS pre_spend,
           sum(pre_spend * pre_spend) AS pre_spend_squares,
           sum({{revenue}} * pre_spend) AS revenue_pre_spend,
           sum(pre_spend) FILTER (WHERE orders > 0) AS converters_pre_spend
    FROM buyers{{cap_join}}
    GROUP BY variant
)
SELECT a.variant, a.units, a.several_arms, a.repeated_sends, a.opens, a.clicks,
       a.unsubscribes,
       coalesce(s.converters, 0) AS converters,
       coalesce(s.revenue, 0) AS revenue,
       coalesce(s.revenue_squares, 0) AS revenue_squares,
       coalesce(s.orders, 0) AS orders,
       coalesce(s.orders_squares, 0) AS orders_squares,
       coalesce(s.revenue_orders, 0) AS revenue_orders,
       coalesce(s.pre_spend, 0) AS pre_spend,
       coalesce(s.pre_spend_squares, 0) AS pre_spend_squares,
       coalesce(s.revenue_pre_spend, 0) AS revenue_pre_spend,
       coalesce(s.converters_pre_spend, 0) AS converters_pre_spend,
       {{cap_value}} AS cap
FROM arms AS a
LEFT JOIN sums AS s ON s.variant IS NOT DISTINCT FROM a.variant
ORDER BY a.variant
"""

# The pooled percentile of every recipient's revenue: the buyers' non-zero revenues plus,
# unless only non-zero values count, one zero for each other recipient (generated rather
# than joined, so the recipients never meet the buyers row by row). Valid sales are never
# negative, so neither is the cap, and a capped non-buyer still adds zero to every sum.
_CAP_CTE = """,
cap AS (
    SELECT quantile_cont(revenue, $quantile) AS value
    FROM (
        SELECT revenue FROM buyers WHERE variant IS NOT NULL AND revenue <> 0
        UNION ALL
        SELECT 0.0 FROM (
            SELECT CAST(coalesce((SELECT sum(units) FROM arms WHERE variant IS NOT NULL), 0)
                        - (SELECT count(*) FROM buyers
                           WHERE variant IS NOT NULL AND revenue <> 0) AS BIGINT) AS zeros
        ) AS others, range(others.zeros)
        WHERE NOT $nonzero
    )
)"""


def campaign_query(capped: bool) -> str:
    """The aggregation SQL, with the pooled revenue cap or without it.

    Only these two fixed texts ever run; every value is a bound parameter.
    """
    if not capped:
        return _AGGREGATE_SQL.format(cap_cte="", revenue="revenue",
                                     cap_value="CAST(NULL AS DOUBLE)", cap_join="")
    return _AGGREGATE_SQL.format(cap_cte=_CAP_CTE, revenue="least(revenue, cap.value)",
                                 cap_value="(SELECT value FROM cap)", cap_join=", cap")


def campaign_metrics(channel: str) -> tuple[Metric, ...]:
    """The metrics of a campaign test; SMS has no opens."""
    metrics = [
        Metric("open_rate", "binary", "open rate"),
        Metric("click_rate", "binary", "click rate"),
        Metric("conversion_rate", "binary", "conversion rate"),
        Metric("revenue_per_recipient", "mean", "revenue per recipient"),
        Metric("average_order_value", "ratio", "average order value"),
        Metric("unsubscribe_rate", "binary", "unsubscribe rate", guardrail=True,
               higher_is_better=False),
    ]
    return tuple(m for m in metrics if channel == "email" or m.name != "open_rate")


@dataclass(frozen=True)
class CampaignTest:
    """A campaign's plan: its variants with their planned weights, and the control."""

    campaign_id: str
    name: str
    channel: str
    variants: tuple[tuple[str, float], ...]
    control: str


def load_campaign_test(con: duckdb.DuckDBPyConnection, campaign_id: str) -> CampaignTest:
    """The plan of campaign ``campaign_id``, which must be an A/B test."""
    rows = con.execute("SELECT name, channel, variants, control_variant FROM campaigns "
                       "WHERE campaign_id = ? ORDER BY updated_at DESC NULLS LAST LIMIT 1",
                       [campaign_id]).fetchall()
    if not rows:
        raise UserError(f"There is no campaign {campaign_id!r}; check the id in the "
                        "campaigns table.")
    name, channel, variants_json, control = rows[0]
    try:
        variants = tuple((str(v["name"]), float(v.get("weight") or 0))
                         for v in json.loads(variants_json or "[]"))
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UserError(f"Campaign {campaign_id!r} has unreadable variants "
                        f"({variants_json!r}); fix its variants column.") from None
    if len(variants) < 2:
        raise UserError(f"Campaign {campaign_id!r} is not an A/B test (it has "
                        f"{len(variants)} variant); pick a campaign with two or more variants.")
    control = control or variants[0][0]
    if control not in dict(variants):
        raise UserError(f"Campaign {campaign_id!r} names control {control!r}, which is not one "
                        "of its variants; fix its control_variant column.")
    return CampaignTest(campaign_id, name or campaign_id, channel, variants, control)


def list_campaign_tests(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The campaigns that are A/B tests, newest first (id, name, channel, sent_at)."""
    rows = con.execute(
        "SELECT campaign_id, name, channel, sent_at FROM campaigns "
        "WHERE json_array_length(CASE WHEN json_valid(variants) THEN variants END) > 1 "
        "ORDER BY sent_at DESC").fetchall()
    return [dict(zip(("campaign_id", "name", "channel", "sent_at"), row, strict=True))
            for row in rows]


def _arm_statistics(row: dict) -> dict:
    n = row["units"]
    revenue = SampleMeanStatistic(n, row["revenue"], row["revenue_squares"])
    orders = SampleMeanStatistic(n, row["orders"], row["orders_squares"])
    pre = SampleMeanStatistic(n, row["pre_spend"], row["pre_spend_squares"])
    return {
        "open_rate": ProportionStatistic(n, row["opens"]),
        "click_rate": ProportionStatistic(n, row["clicks"]),
        "conversion_rate": CovariateStatistic(ProportionStatistic(n, row["converters"]), pre,
                                              row["converters_pre_spend"]),
        "revenue_per_recipient": CovariateStatistic(revenue, pre, row["revenue_pre_spend"]),
        "average_order_value": RatioStatistic(revenue, orders, row["revenue_orders"]),
        "unsubscribe_rate": ProportionStatistic(n, row["unsubscribes"]),
    }


_EMPTY_ROW = dict.fromkeys(
    ("units", "opens", "clicks", "unsubscribes", "converters", "revenue", "revenue_squares",
     "orders", "orders_squares", "revenue_orders", "pre_spend", "pre_spend_squares",
     "revenue_pre_spend", "converters_pre_spend"), 0)


def aggregate_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, *,
                       window_days: int = DEFAULT_WINDOW_DAYS, pre_days: int = DEFAULT_PRE_DAYS,
                       cap_percentile: float | None = None,
                       cap_nonzero: bool = False) -> ExperimentData:
    """Per-variant sufficient statistics of a campaign test, from one SQL query.

    Parameters
    ----------
    con
        A warehouse connection (read-only is enough).
    campaign_id
        The campaign; it must have two or more variants.
    window_days
        Days after each recipient's send in which orders count (the attribution window).
    pre_days
        Days before the send whose spend is the CUPED covariate.
    cap_percentile, cap_nonzero
        Winsorise revenue per recipient at this pooled percentile (of non-zero values).
    """
    if window_days < 1 or pre_days < 1:
        raise UserError("The attribution window and the pre-period must be at least one day.")
    test = load_campaign_test(con, campaign_id)
    capped = cap_percentile is not None
    params = {"campaign": campaign_id, "window_days": window_days, "pre_days": pre_days}
    if capped:
        params |= {"quantile": check_percentile(cap_percentile) / 100, "nonzero": cap_nonzero}
    rows = con.sql(campaign_query(capped), params=params).pl().to_dicts()
    by_variant = {row["variant"]: row for row in rows}
    notes = []
    if None in by_variant:
        notes.append(f"{by_variant.pop(None)['units']:,} recipients have no variant and were "
                     "left out.")
    planned = dict(test.variants)
    unplanned = sorted(set(by_variant) - set(planned))
    if unplanned:
        notes.append(f"Variants {', '.join(unplanned)} were sent but are not in the plan; they "
                     "are left out.")
    cap = next((row["cap"] for row in rows if row["cap"] is not None), None)
    if capped and cap is not None and (note := cap_warning(cap, "revenue")):
        notes.append(note)
    arms = tuple(
        Arm(name, int(by_variant.get(name, _EMPTY_ROW)["units"]),
            _arm_statistics(by_variant.get(name, _EMPTY_ROW)), planned[name])
        for name in [test.control, *(n for n in planned if n != test.control)])
    kept = [by_variant[a.name] for a in arms if a.name in by_variant]
    return ExperimentData(
        arms=arms, control=test.control, metrics=campaign_metrics(test.channel),
        assignment=AssignmentCounts(sum(r["several_arms"] for r in kept),
                                    int(sum(r["repeated_sends"] for r in kept))),
        notes=tuple(notes), unit_name="recipients",
        source={"campaign_id": campaign_id, "campaign": test.name, "channel": test.channel,
                "window_days": window_days, "pre_days": pre_days,
                "cap_percentile": cap_percentile, "cap_nonzero": cap_nonzero,
                "revenue_cap": cap},
    )
