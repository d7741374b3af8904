"""The store at a glance: headline KPIs and sales over time, computed in the warehouse.

The definitions the Overview page shows live here, once:

* **valid order**: :data:`studio.schema.VALID_ORDER_SQL`, a completed sale by a known
  customer. Orders, active customers, the repeat-purchase rate and the average order
  value count valid orders only, because they describe customers.
* **net revenue**: every completed sale (guest checkouts included, since the money was
  taken) plus every completed return, whose total is negative. Cancelled and refunded
  documents and adjustments are left out. Revenue is booked on the date of each
  document, so a return lowers the period in which it happened, not that of its sale.

Every function takes an open DuckDB connection (read-only is enough) and returns plain
values or a polars frame; none of them imports Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from studio.errors import UserError
from studio.schema import VALID_ORDER_SQL

REVENUE_SQL = "status = 'completed' AND kind IN ('sale', 'return')"
"""The documents that make up net revenue: completed sales (guests included) and returns."""

ACTIVE_WINDOWS_DAYS = (30, 90)
REVENUE_COLOUR = "#818CF8"
ORDERS_COLOUR = "#EA580C"

GRAINS: dict[str, tuple[str, str]] = {
    "day": ("day", "1 day"),
    "week": ("week", "7 days"),
    "month": ("month", "1 month"),
}
"""Grain name -> (``date_trunc`` part, step between periods). Only these reach the SQL."""


@dataclass(frozen=True)
class OverviewKpis:
    """The headline figures of the store as of one moment.

    Attributes
    ----------
    as_of
        The moment the figures describe: the latest order timestamp in the data, not
        today, so a demo or an old export reads the same whenever it is opened.
    customers
        Rows of ``customers`` (known customers; guests are not customers).
    orders
        Valid orders placed up to ``as_of``.
    revenue
        Net revenue up to ``as_of`` (see the module docstring).
    active_30d, active_90d
        Distinct customers with a valid order in ``(as_of - N days, as_of]``.
    repeat_rate
        Customers with two or more valid orders over customers with at least one;
        ``None`` when nobody has ordered.
    average_order_value
        Valid sales revenue over valid orders (returns not netted: it is the size of a
        basket); ``None`` without orders.
    currency
        The one currency of the revenue documents, or ``None`` when there are none or
        several (then the revenue adds up different currencies and says so).
    """

    as_of: datetime | None
    customers: int
    orders: int
    revenue: float
    active_30d: int
    active_90d: int
    repeat_rate: float | None
    average_order_value: float | None
    currency: str | None


def _rows(con: duckdb.DuckDBPyConnection, query: str, params: list) -> list[tuple]:
    return con.sql(query, params=params).fetchall()


def as_of_date(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The latest order timestamp in the warehouse (any kind or status); ``None`` if empty."""
    return _rows(con, "SELECT max(ordered_at) FROM orders", [])[0][0]


def overview_kpis(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None) -> OverviewKpis:
    """Compute the Overview's KPIs as of ``as_of`` (default: :func:`as_of_date`).

    Orders after ``as_of`` are ignored, so passing an earlier moment gives the store as
    it looked then (except ``customers``, which counts every customer row).
    """
    if as_of is None:
        as_of = as_of_date(con)
    customers = _rows(con, "SELECT count(*) FROM customers", [])[0][0]
    if as_of is None:
        return OverviewKpis(None, customers, 0, 0.0, 0, 0, None, None, None)

    short, long = (as_of - timedelta(days=days) for days in ACTIVE_WINDOWS_DAYS)
    orders, revenue, valid_sales, active_short, active_long, currencies = _rows(
        con,
        f"""
        SELECT
            count(*) FILTER (WHERE {VALID_ORDER_SQL}),
            coalesce(sum(total) FILTER (WHERE {REVENUE_SQL}), 0),
            coalesce(sum(total) FILTER (WHERE {VALID_ORDER_SQL}), 0),
            count(DISTINCT customer_id) FILTER (WHERE {VALID_ORDER_SQL} AND ordered_at > $2),
            count(DISTINCT customer_id) FILTER (WHERE {VALID_ORDER_SQL} AND ordered_at > $3),
            list(DISTINCT currency) FILTER (WHERE {REVENUE_SQL} AND currency IS NOT NULL)
        FROM orders
        WHERE ordered_at <= $1
        """,
        [as_of, short, long],
    )[0]
    repeaters, buyers = _rows(
        con,
        f"""
        SELECT count(*) FILTER (WHERE n >= 2), count(*)
        FROM (SELECT customer_id, count(*) AS n FROM orders
              WHERE {VALID_ORDER_SQL} AND ordered_at <= $1 GROUP BY customer_id)
        """,
        [as_of],
    )[0]
    return OverviewKpis(
        as_of=as_of,
        customers=customers,
        orders=orders,
        revenue=float(revenue),
        active_30d=active_short,
        active_90d=active_long,
        repeat_rate=repeaters / buyers if buyers else None,
        average_order_value=float(valid_sales) / orders if orders else None,
        currency=currencies[0] if currencies is not None and len(currencies) == 1 else None,
    )


def sales_over_time(con: duckdb.DuckDBPyConnection, grain: str = "week") -> pl.DataFrame:
    """Valid orders and net revenue per period, with empty periods shown as zeros.

    Parameters
    ----------
    con
        A warehouse connection.
    grain
        ``"day"``, ``"week"`` (weeks start on Monday) or ``"month"``.

    Returns
    -------
    polars.DataFrame
        ``period`` (date of the period's first day), ``orders`` and ``revenue``, one row
        per period from the first to the last revenue document. The columns add up to
        :func:`overview_kpis`' ``orders`` and ``revenue``.
    """
    if grain not in GRAINS:
        raise UserError(f"Unknown grain {grain!r}; choose one of {', '.join(GRAINS)}.")
    part, step = GRAINS[grain]
    return con.sql(
        f"""
        WITH docs AS (
            SELECT date_trunc($1, ordered_at) AS period, total,
                   {VALID_ORDER_SQL} AS is_valid, {REVENUE_SQL} AS is_revenue
            FROM orders
            WHERE ({VALID_ORDER_SQL}) OR ({REVENUE_SQL})
        ),
        per_period AS (
            SELECT period,
                   count(*) FILTER (WHERE is_valid) AS orders,
                   coalesce(sum(total) FILTER (WHERE is_revenue), 0) AS revenue
            FROM docs GROUP BY period
        ),
        periods AS (
            SELECT unnest(generate_series(min(period), max(period), $2::INTERVAL)) AS period
            FROM docs
        )
        SELECT periods.period::DATE AS period,
               coalesce(per_period.orders, 0)::BIGINT AS orders,
               coalesce(per_period.revenue, 0)::DOUBLE AS revenue
        FROM periods LEFT JOIN per_period USING (period)
        ORDER BY period
        """,
        params=[part, step],
    ).pl()


def sales_figure(sales: pl.DataFrame, currency: str | None = None) -> go.Figure:
    """Revenue as bars and orders as a line on a second axis, from :func:`sales_over_time`.

    Two axes because revenue is in money and orders in counts; the bars carry the
    figure a marketer watches first.
    """
    periods: list[date] = sales["period"].to_list()
    revenue_title = f"Net revenue ({currency})" if currency else "Net revenue"
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(x=periods, y=sales["revenue"].to_list(), name=revenue_title,
               marker_color=REVENUE_COLOUR),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(x=periods, y=sales["orders"].to_list(), name="Valid orders",
                   mode="lines+markers" if len(periods) <= 60 else "lines",
                   line={"color": ORDERS_COLOUR, "width": 2}),
        secondary_y=True,
    )
    figure.update_yaxes(title_text=revenue_title, secondary_y=False, rangemode="tozero")
    # Ticks of its own: aligned to the revenue grid they would land on odd counts.
    figure.update_yaxes(title_text="Valid orders", secondary_y=True, rangemode="tozero",
                        showgrid=False, tickmode="auto", tickformat=",d")
    figure.update_layout(
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        bargap=0.1,
    )
    return figure
