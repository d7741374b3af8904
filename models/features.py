"""Point-in-time features: one row per customer, computed in DuckDB as of a cutoff.

Every feature for a cutoff uses only rows known at the cutoff (timestamp ``<= T``; see
:mod:`models.population` for ``T``, and for why order status changes after ``T`` are
ignored), so a backtest scores the past exactly as it could have been scored then.

Day resolution, everywhere: a timestamp counts by the calendar day it falls on, and a
number of days between two moments is the difference of their days (DuckDB's
``date_diff('day', ...)``, the ``lifetimes`` package's ``freq="D"``). The cutoff's own
day is day 0, so an order placed on the cutoff's day has recency 0. "The last N days"
are the N calendar days ending with the cutoff's day; with a date cutoff (the end of
that day) that is exactly the span ``(T - N days, T]``.

Profile columns (country, acquisition channel) come from the customer's current record:
the warehouse keeps one version per customer, so there is no earlier one to read.
Blanking records updated after the cutoff instead would leak more, since stores bump
``updated_at`` on activity.

It is one statement. Orders are read once (materialised and shared by the purchase,
refund and basket parts); events twice, both with ``FILTER`` aggregates: the last 90
days grouped by session (visits and funnel counts, without a DISTINCT per window) and
all of history per customer (first and last visit); order lines, campaign sends and
consent events once each. It binds the cutoff as ``$1`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import polars as pl

from models.population import (
    AT,
    KNOWN_ORDER_SQL,
    REFUND_AS_OF_SQL,
    VALID_AS_OF_SQL,
    as_cutoff,
    check_population,
)

EVENT_WINDOWS = (7, 30, 90)
ORDER_WINDOWS = (30, 90, 365)
MESSAGE_WINDOWS = (30, 90)
FUNNEL_EVENTS = (("product_views", "product_view"), ("add_to_carts", "add_to_cart"),
                 ("checkout_starts", "checkout_start"))


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its column name, ``numeric`` or ``categorical``, and what it means."""

    name: str
    kind: str
    meaning: str


def _numeric(name: str, meaning: str) -> FeatureSpec:
    return FeatureSpec(name, "numeric", meaning)


def _categorical(name: str, meaning: str) -> FeatureSpec:
    return FeatureSpec(name, "categorical", meaning)


FEATURES: tuple[FeatureSpec, ...] = (
    _categorical("country", "Country on the customer's record ('unknown' when empty)."),
    _categorical("acquisition_channel",
                 "How the customer first arrived, e.g. organic or paid_search ('unknown' "
                 "when empty)."),
    _categorical("email_consent", "E-mail consent at the cutoff: subscribed, unsubscribed, "
                 "non_subscribed, or none when the customer was never asked."),
    _categorical("sms_consent", "SMS consent at the cutoff, with the same values."),
    _numeric("tenure_days", "Days since the customer became known (sign-up, or the first "
             "order or visit if earlier)."),
    _numeric("has_purchased", "1 if the customer has at least one valid order, else 0."),
    _numeric("frequency", "Number of valid orders."),
    _numeric("recency_days", "Days since the last valid order (empty without one)."),
    _numeric("monetary_total", "Total spent on valid orders."),
    _numeric("monetary_mean", "Average value of a valid order (empty without one)."),
    *(_numeric(f"orders_{n}d", f"Valid orders in the last {n} days.") for n in ORDER_WINDOWS),
    *(_numeric(f"revenue_{n}d", f"Spent on valid orders in the last {n} days.")
      for n in ORDER_WINDOWS),
    _numeric("gap_mean_days", "Average days between consecutive purchase days (empty "
             "before a second purchase day)."),
    _numeric("gap_std_days", "Spread (standard deviation) of those gaps, in days (empty "
             "before a third purchase day)."),
    _numeric("recency_gap_ratio", "Days since the last order divided by the average gap: "
             "above 1 means overdue (empty before a second purchase day)."),
    _numeric("refund_count", "Refunds: return documents and sales marked refunded."),
    _numeric("refund_value", "Money refunded, as a positive amount."),
    _numeric("category_count", "Different product categories bought."),
    _numeric("product_count", "Different products bought."),
    _numeric("discount_order_share", "Share of valid orders that carried a discount."),
    _numeric("discount_rate", "Discounts as a share of the list value of valid orders."),
    _numeric("bgnbd_x", "Repeat purchase days: distinct purchase days minus one (BG/NBD x)."),
    _numeric("bgnbd_t_x", "Days from the first to the last purchase day (BG/NBD t_x)."),
    _numeric("bgnbd_T", "Days from the first purchase day to the cutoff's day (BG/NBD T)."),
    _numeric("gg_mean_repeat_value", "Average spend per repeat purchase day, first day "
             "left out (Gamma-Gamma input; empty without a repeat)."),
    *(_numeric(f"sessions_{n}d", f"Storefront visits (sessions) in the last {n} days.")
      for n in EVENT_WINDOWS),
    *(_numeric(f"{name}_{n}d", f"{label} in the last {n} days.")
      for name, label in (("product_views", "Product views"), ("add_to_carts", "Add-to-carts"),
                          ("checkout_starts", "Checkouts started"))
      for n in EVENT_WINDOWS),
    _numeric("messages_90d", "Marketing messages (e-mail or SMS) received in the last 90 days."),
    *(_numeric(f"opens_{n}d", f"Marketing e-mails opened in the last {n} days.")
      for n in MESSAGE_WINDOWS),
    *(_numeric(f"clicks_{n}d", f"Clicks in marketing messages in the last {n} days.")
      for n in MESSAGE_WINDOWS),
    _numeric("days_since_engagement", "Days since the last visit, order, e-mail open or "
             "click (empty when there was none)."),
)
"""The model inputs in column order, as the model card lists them."""

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)
CATEGORICAL: tuple[str, ...] = tuple(s.name for s in FEATURES if s.kind == "categorical")

DAY = f"CAST({AT} AS DATE)"


def _since(days: int) -> str:
    """The first instant of the last ``days`` calendar days ending with the cutoff's day."""
    return f"CAST({DAY} - {days - 1} AS TIMESTAMP)"


def _money(expression: str) -> str:
    """Exact cents, so sums do not depend on the order DuckDB adds rows in."""
    return f"CAST({expression} AS DECIMAL(18, 2))"


def _order_windows() -> str:
    return ",\n        ".join(
        [f"sum(orders) FILTER (day > {DAY} - {n}) AS orders_{n}d" for n in ORDER_WINDOWS]
        + [f"sum(revenue) FILTER (day > {DAY} - {n}) AS revenue_{n}d" for n in ORDER_WINDOWS])


def _event_windows() -> tuple[str, str]:
    """Per-session counts (first level) and their per-customer sums (second level).

    Grouping the last 90 days' events by session first counts the sessions of each
    window without a DISTINCT aggregate: a session is in a window when its last event is.
    """
    per_session = [f"CAST(count(*) FILTER (event_type = '{kind}' AND occurred_at >= "
                   f"{_since(n)}) AS INTEGER) AS {name}_{n}d"
                   for name, kind in FUNNEL_EVENTS for n in EVENT_WINDOWS]
    per_customer = [f"count(*) FILTER (session_id IS NOT NULL AND last_at >= {_since(n)}) "
                    f"AS sessions_{n}d" for n in EVENT_WINDOWS]
    per_customer += [f"sum({name}_{n}d) AS {name}_{n}d"
                     for name, _ in FUNNEL_EVENTS for n in EVENT_WINDOWS]
    return ",\n        ".join(per_session), ",\n        ".join(per_customer)


def _message_windows() -> str:
    parts = [f"count(*) FILTER (sent_at >= {_since(90)}) AS messages_90d"]
    for column, name in (("opened_at", "opens"), ("clicked_at", "clicks")):
        parts += [f"count(*) FILTER ({column} <= {AT} AND {column} >= {_since(n)}) "
                  f"AS {name}_{n}d" for n in MESSAGE_WINDOWS]
        parts.append(f"max({column}) FILTER ({column} <= {AT}) AS last_{name[:-1]}_at")
    return ",\n        ".join(parts)


def _counts(names: list[str]) -> str:
    return ",\n    ".join(f"CAST(coalesce({n}, 0) AS INTEGER) AS {n}" for n in names)


_QUERY = """
WITH known_orders AS MATERIALIZED (
    SELECT order_id, customer_id, CAST(ordered_at AS DATE) AS day, {total} AS total,
        {subtotal} AS subtotal, {discount} AS discount,
        {valid} AS is_valid, {refund} AS is_refund
    FROM orders
    WHERE {known_order}
),
order_days AS (
    SELECT customer_id, day, count(*) AS orders, sum(total) AS revenue,
        count(*) FILTER (discount > 0) AS discounted, sum(discount) AS discount,
        sum(subtotal) AS subtotal,
        day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap
    FROM known_orders
    WHERE is_valid
    GROUP BY customer_id, day
),
purchases AS (
    SELECT customer_id, sum(orders) AS frequency, sum(revenue) AS monetary_total,
        min(day) AS first_day, max(day) AS last_day, count(*) - 1 AS repeat_days,
        sum(gap) AS gap_sum, sum(gap * gap) AS gap_squares,
        sum(revenue) FILTER (gap IS NOT NULL) AS repeat_revenue,
        sum(discounted) AS discounted_orders, sum(discount) AS discount_sum,
        sum(subtotal) AS subtotal_sum,
        {order_windows}
    FROM order_days
    GROUP BY customer_id
),
order_summary AS (
    SELECT customer_id, min(day) AS first_order_day, max(day) AS last_order_day,
        count(*) FILTER (is_refund) AS refund_count,
        sum(abs(total)) FILTER (is_refund) AS refund_value
    FROM known_orders
    GROUP BY customer_id
),
bought AS (
    SELECT o.customer_id, i.product_id
    FROM order_items AS i
    JOIN known_orders AS o ON o.order_id = i.order_id AND o.is_valid
    GROUP BY o.customer_id, i.product_id
),
baskets AS (
    SELECT b.customer_id, count(*) AS product_count,
        count(DISTINCT p.category) AS category_count
    FROM bought AS b
    LEFT JOIN products AS p ON p.product_id = b.product_id
    GROUP BY b.customer_id
),
recent_sessions AS (
    SELECT customer_id, session_id, max(occurred_at) AS last_at,
        {session_windows}
    FROM events
    WHERE occurred_at <= {at} AND occurred_at >= {since_events}
    GROUP BY customer_id, session_id
),
recent_browsing AS (
    SELECT customer_id,
        {event_windows}
    FROM recent_sessions
    GROUP BY customer_id
),
browsing AS (
    SELECT customer_id, min(occurred_at) AS first_event_at, max(occurred_at) AS last_event_at
    FROM events
    WHERE occurred_at <= {at}
    GROUP BY customer_id
),
messages AS (
    SELECT customer_id,
        {message_windows}
    FROM campaign_sends
    WHERE sent_at <= {at}
    GROUP BY customer_id
),
consent AS (
    SELECT customer_id,
        arg_max(status, (occurred_at, consent_event_id)) FILTER (channel = 'email')
            AS email_consent,
        arg_max(status, (occurred_at, consent_event_id)) FILTER (channel = 'sms')
            AS sms_consent
    FROM consent_events
    WHERE occurred_at <= {at}
    GROUP BY customer_id
),
joined AS (
    SELECT c.customer_id, c.country, c.acquisition_channel,
        CASE WHEN c.signed_up_at <= {at} THEN CAST(c.signed_up_at AS DATE) END AS signup_day,
        p.* EXCLUDE (customer_id), s.* EXCLUDE (customer_id), b.* EXCLUDE (customer_id),
        e.* EXCLUDE (customer_id), r.* EXCLUDE (customer_id), m.* EXCLUDE (customer_id),
        k.* EXCLUDE (customer_id),
        p.customer_id IS NOT NULL AS _buyer
    FROM customers AS c
    LEFT JOIN purchases AS p ON p.customer_id = c.customer_id
    LEFT JOIN order_summary AS s ON s.customer_id = c.customer_id
    LEFT JOIN baskets AS b ON b.customer_id = c.customer_id
    LEFT JOIN browsing AS e ON e.customer_id = c.customer_id
    LEFT JOIN recent_browsing AS r ON r.customer_id = c.customer_id
    LEFT JOIN messages AS m ON m.customer_id = c.customer_id
    LEFT JOIN consent AS k ON k.customer_id = c.customer_id
    WHERE {population}
)
SELECT customer_id,
    coalesce(country, 'unknown') AS country,
    coalesce(acquisition_channel, 'unknown') AS acquisition_channel,
    coalesce(email_consent, 'none') AS email_consent,
    coalesce(sms_consent, 'none') AS sms_consent,
    CAST({day} - least(signup_day, first_order_day, CAST(first_event_at AS DATE))
         AS INTEGER) AS tenure_days,
    CAST(frequency IS NOT NULL AS INTEGER) AS has_purchased,
    CAST(coalesce(frequency, 0) AS INTEGER) AS frequency,
    CAST({day} - last_day AS INTEGER) AS recency_days,
    CAST(coalesce(monetary_total, 0) AS DOUBLE) AS monetary_total,
    CAST(monetary_total / frequency AS DOUBLE) AS monetary_mean,
    {order_counts},
    {order_revenues},
    CAST(CASE WHEN repeat_days > 0 THEN (last_day - first_day) / repeat_days END AS DOUBLE)
        AS gap_mean_days,
    CASE WHEN repeat_days > 1 THEN sqrt(greatest(
        (repeat_days * gap_squares - gap_sum * gap_sum) / (repeat_days * (repeat_days - 1)),
        0)) END AS gap_std_days,
    CAST(CASE WHEN repeat_days > 0 THEN ({day} - last_day) * repeat_days
         / (last_day - first_day) END AS DOUBLE) AS recency_gap_ratio,
    CAST(coalesce(refund_count, 0) AS INTEGER) AS refund_count,
    CAST(coalesce(refund_value, 0) AS DOUBLE) AS refund_value,
    CAST(coalesce(category_count, 0) AS INTEGER) AS category_count,
    CAST(coalesce(product_count, 0) AS INTEGER) AS product_count,
    CAST(discounted_orders / frequency AS DOUBLE) AS discount_order_share,
    CAST(CASE WHEN subtotal_sum > 0 THEN discount_sum / subtotal_sum END AS DOUBLE)
        AS discount_rate,
    CAST(repeat_days AS INTEGER) AS bgnbd_x,
    CAST(last_day - first_day AS INTEGER) AS bgnbd_t_x,
    CAST({day} - first_day AS INTEGER) AS bgnbd_T,
    CAST(CASE WHEN repeat_days > 0 THEN repeat_revenue / repeat_days END AS DOUBLE)
        AS gg_mean_repeat_value,
    {event_counts},
    {message_counts},
    CAST({day} - greatest(CAST(last_event_at AS DATE), CAST(last_open_at AS DATE),
                          CAST(last_click_at AS DATE), last_order_day)
         AS INTEGER) AS days_since_engagement
FROM joined
ORDER BY customer_id
"""

_POPULATION_FILTERS = {
    "buyers": "p.customer_id IS NOT NULL",
    "known": f"(c.signed_up_at <= {AT} OR s.customer_id IS NOT NULL "
             "OR e.customer_id IS NOT NULL)",
}


def feature_query(cutoff: date | datetime | str, *,
                  population: str = "buyers") -> tuple[str, list]:
    """The one SQL statement that computes :data:`FEATURES` as of ``cutoff``.

    Returns
    -------
    sql, params
        The statement and its bound parameters (the cutoff instant only). It returns one
        row per customer of ``population`` with ``customer_id`` and every feature, sorted
        by ``customer_id``.
    """
    check_population(population)
    session_windows, event_windows = _event_windows()
    order_names = [f"orders_{n}d" for n in ORDER_WINDOWS]
    event_names = [f"sessions_{n}d" for n in EVENT_WINDOWS] + [
        f"{name}_{n}d" for name, _ in FUNNEL_EVENTS for n in EVENT_WINDOWS]
    message_names = ["messages_90d"] + [f"{name}_{n}d" for name in ("opens", "clicks")
                                        for n in MESSAGE_WINDOWS]
    sql = _QUERY.format(
        at=AT, day=DAY, known_order=KNOWN_ORDER_SQL, valid=VALID_AS_OF_SQL,
        refund=REFUND_AS_OF_SQL, total=_money("total"), subtotal=_money("subtotal"),
        discount=_money("discount"), order_windows=_order_windows(),
        session_windows=session_windows, since_events=_since(max(EVENT_WINDOWS)),
        event_windows=event_windows,
        message_windows=_message_windows(),
        population=_POPULATION_FILTERS[population],
        order_counts=_counts(order_names),
        order_revenues=",\n    ".join(
            f"CAST(coalesce(revenue_{n}d, 0) AS DOUBLE) AS revenue_{n}d" for n in ORDER_WINDOWS),
        event_counts=_counts(event_names), message_counts=_counts(message_names),
    )
    return sql, [as_cutoff(cutoff)]


def build_features(con: duckdb.DuckDBPyConnection, cutoff: date | datetime | str, *,
                   population: str = "buyers") -> pl.DataFrame:
    """Features of every customer of ``population`` as of ``cutoff``, one row each.

    Parameters
    ----------
    con
        A warehouse connection (``studio.warehouse.connect_reader`` is enough).
    cutoff
        A date (its end: the whole day is known), a datetime or ISO text.
    population
        ``buyers`` (at least one valid order by the cutoff) or ``known`` (signed up, or
        any order or visit, by the cutoff).
    """
    sql, params = feature_query(cutoff, population=population)
    return con.sql(sql, params=params).pl()
