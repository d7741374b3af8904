"""The retention matrix: how each acquisition cohort keeps buying, period after period.

Definitions (also in ``docs/cohorts.md``):

* A customer's **first purchase** is their earliest valid purchase ever
  (:func:`studio.rfm.valid_purchase`), whatever the date filter says; the **cohort period** is
  the week (starting Monday), month or quarter it falls in.
* The **cohort** is that period (``cohort_by="first_order"``), or the category of the first
  product of the first purchase (the line with the lowest ``line_number``; ties between
  purchases at the same moment go to the smaller ``order_id``), or the customer's
  acquisition channel or country. Missing values form the cohort ``(unknown)``.
* **Offset** k of a purchase is the number of periods between the customer's cohort period
  and the period the purchase falls in; offset 0 holds the first purchase.
* The date filter keeps the customers whose first purchase lies in ``[start, end)`` and
  counts purchases up to the **cap**: the last moment before ``end``, or the data's latest
  order time without an end. A customer is **observed** at offset k when the period of
  offset k starts at or before the cap (the last period may be partial).

Per cohort and offset k, over the customers observed at k:

``customers``
    how many there are;
``returning``
    those with a valid purchase in offset k (at k = 0, everyone);
``share_returning``
    ``returning / customers``;
``revenue``
    the total of their valid purchases in offset k;
``revenue_retention``
    ``revenue`` over the same customers' revenue in offset 0;
``cumulative_revenue_per_customer``
    their revenue in offsets 0 to k, divided by ``customers``.

For period cohorts every customer of a cohort is observed for the same offsets, so these
are the usual figures. For channel, country and category cohorts, which mix acquisition
periods, restricting each cell to the customers observed at k keeps recently acquired
customers from reading as lost.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.cohorts.common import (
    EVERYTHING,
    CohortFilter,
    CohortView,
    FrameReader,
    as_double,
    in_range,
    read_frame,
    run_view,
)
from studio.errors import UserError
from studio.rfm import valid_purchase
from studio.sql import customers, money, order_items, orders, products

PERIODS = ("week", "month", "quarter")
COHORT_BY = {"first_order": "first-order period", "first_category": "first product category",
             "channel": "acquisition channel", "country": "country"}
"""Cohort kind -> how it reads in a sentence."""

METRICS = {"share_returning": "Share returning", "revenue_retention": "Revenue retention",
           "cumulative_revenue_per_customer": "Cumulative revenue per customer",
           "returning": "Returning customers", "revenue": "Revenue"}
"""The matrix's metrics a heatmap can show, with their labels."""

UNKNOWN = "(unknown)"
_LABEL_FORMATS = {"week": "%Y-%m-%d", "month": "%Y-%m"}


def check_choices(period: str, cohort_by: str) -> None:
    """Raise a :class:`UserError` for a period or cohort kind the views do not know."""
    if period not in PERIODS:
        raise UserError(f"Unknown period {period!r}; use one of {', '.join(PERIODS)}.")
    if cohort_by not in COHORT_BY:
        raise UserError(f"Unknown cohort {cohort_by!r}; use one of {', '.join(COHORT_BY)}.")


def period_start(period: str, moment) -> sa.ColumnElement:
    """The start of the week (Monday), month or quarter holding ``moment``."""
    return sa.func.date_trunc(period, moment, type_=sa.DateTime)


def periods_between(period: str, earlier, later) -> sa.ColumnElement:
    """Whole periods from one period start to another (both already truncated)."""
    return sa.func.date_diff(period, earlier, later, type_=sa.Integer)


def period_label(period: str, start) -> sa.ColumnElement:
    """``2024-03`` (month), ``2024-03-04`` (week, its Monday) or ``2024-Q1`` (quarter)."""
    if period == "quarter":
        return (sa.func.strftime(start, "%Y", type_=sa.String) + "-Q"
                + sa.cast(sa.extract("quarter", start), sa.String))
    return sa.func.strftime(start, _LABEL_FORMATS[period], type_=sa.String)


def data_cap(filter: CohortFilter) -> sa.ColumnElement:
    """The last moment counted: just before ``filter.end``, else the latest order time."""
    if filter.end is not None:
        return sa.cast(sa.literal(filter.end - timedelta(microseconds=1), sa.DateTime), sa.DateTime)
    return sa.select(sa.func.max(orders.c.ordered_at)).scalar_subquery()


def up_to_cap(filter: CohortFilter) -> list[sa.ColumnElement[bool]]:
    """``ordered_at <= cap`` on ``orders``; nothing without an end, where it always holds."""
    return [] if filter.end is None else [orders.c.ordered_at <= data_cap(filter)]


def _buyer_orders(members: sa.Select | None) -> list[sa.ColumnElement[bool]]:
    conditions = [valid_purchase(orders), orders.c.customer_id.is_not(None)]
    if members is not None:
        conditions.append(orders.c.customer_id.in_(members))
    return conditions


def _first_purchases(filter: CohortFilter, members: sa.Select | None) -> sa.CTE:
    """``customer_id, first_at`` of the buyers whose first purchase ever is in the range."""
    firsts = (sa.select(orders.c.customer_id, sa.func.min(orders.c.ordered_at).label("first_at"))
              .where(*_buyer_orders(members)).group_by(orders.c.customer_id).cte("firsts"))
    return (sa.select(firsts).where(*in_range(firsts.c.first_at, filter))
            .cte("first_purchases"))


def _first_categories(filter: CohortFilter, members: sa.Select | None) -> sa.CTE:
    """``customer_id, first_at, value``: the category of each buyer's first product."""
    ranked = sa.select(
        orders.c.customer_id, orders.c.order_id, orders.c.ordered_at.label("first_at"),
        sa.func.row_number().over(partition_by=orders.c.customer_id,
                                  order_by=(orders.c.ordered_at, orders.c.order_id))
        .label("purchase_rank"),
    ).where(*_buyer_orders(members)).cte("ranked_purchases")
    first = (sa.select(ranked.c.customer_id, ranked.c.order_id, ranked.c.first_at)
             .where(ranked.c.purchase_rank == 1, *in_range(ranked.c.first_at, filter))
             .cte("first_orders"))
    lines = (sa.select(first.c.customer_id, first.c.first_at, products.c.category.label("value"),
                       sa.func.row_number().over(partition_by=first.c.customer_id,
                                                 order_by=order_items.c.line_number)
                       .label("line_rank"))
             .select_from(first.outerjoin(order_items, order_items.c.order_id == first.c.order_id)
                          .outerjoin(products, products.c.product_id == order_items.c.product_id))
             .cte("first_lines"))
    return (sa.select(lines.c.customer_id, lines.c.first_at, lines.c.value)
            .where(lines.c.line_rank == 1).cte("first_categories"))


def customer_cohorts(period: str, cohort_by: str, filter: CohortFilter,
                     members: sa.Select | None = None) -> sa.CTE:
    """``customer_id, first_at, cohort_start, cohort``: each buyer's first purchase and cohort.

    Only buyers whose first purchase ever lies in the filter's range (and members, when
    given) are kept; see the module docstring for how cohorts are assigned.
    """
    check_choices(period, cohort_by)
    if cohort_by == "first_category":
        buyers = _first_categories(filter, members)
        start = period_start(period, buyers.c.first_at)
        return (sa.select(buyers.c.customer_id, buyers.c.first_at, start.label("cohort_start"),
                          _named(buyers.c.value).label("cohort")).cte("cohorts"))
    return label_cohorts(period, cohort_by, _first_purchases(filter, members), filter,
                         members).cte("cohorts")


def label_cohorts(period: str, cohort_by: str, buyers: sa.CTE, filter: CohortFilter,
                  members: sa.Select | None = None) -> sa.Select:
    """Every column of ``buyers`` (which has ``customer_id, first_at``) with its cohort.

    Adds ``cohort_start`` (the period of ``first_at``) and ``cohort`` as in the module
    docstring; ``filter`` and ``members`` are only read for first-category cohorts, whose
    first product is looked up again.
    """
    check_choices(period, cohort_by)
    start = period_start(period, buyers.c.first_at)
    if cohort_by == "first_order":
        return sa.select(buyers, start.label("cohort_start"),
                         period_label(period, start).label("cohort"))
    if cohort_by == "first_category":
        categories = _first_categories(filter, members)
        source = buyers.outerjoin(categories, categories.c.customer_id == buyers.c.customer_id)
        value = categories.c.value
    else:
        source = buyers.outerjoin(customers, customers.c.customer_id == buyers.c.customer_id)
        value = {"channel": customers.c.acquisition_channel,
                 "country": customers.c.country}[cohort_by]
    return (sa.select(buyers, start.label("cohort_start"), _named(value).label("cohort"))
            .select_from(source))


def _named(value: sa.ColumnElement) -> sa.ColumnElement:
    """The cohort of a profile or category value: :data:`UNKNOWN` when missing or empty."""
    return sa.func.coalesce(sa.func.nullif(value, ""), UNKNOWN)


def _as_count(value) -> sa.Cast:
    return sa.cast(value, sa.BigInteger)


def retention_statement(period: str = "month", cohort_by: str = "first_order",
                        filter: CohortFilter = EVERYTHING,
                        members: sa.Select | None = None) -> sa.Select:
    """The retention matrix as one statement (columns as in the module docstring)."""
    check_choices(period, cohort_by)
    if cohort_by == "first_order":
        return _period_retention_statement(period, filter, members)
    cohorts = customer_cohorts(period, cohort_by, filter, members)
    cap = data_cap(filter)
    observed = sa.select(
        cohorts.c.customer_id, cohorts.c.cohort, cohorts.c.cohort_start,
        periods_between(period, cohorts.c.cohort_start, period_start(period, cap))
        .label("last_offset"),
    ).cte("observed")
    offset = periods_between(period, observed.c.cohort_start,
                             period_start(period, orders.c.ordered_at))
    activity = (sa.select(observed.c.cohort, observed.c.last_offset, orders.c.customer_id,
                          offset.label("period_offset"),
                          sa.func.sum(money(orders.c.total)).label("revenue"))
                .select_from(orders.join(observed,
                                         observed.c.customer_id == orders.c.customer_id))
                .where(valid_purchase(orders), *up_to_cap(filter))
                .group_by(observed.c.cohort, observed.c.last_offset, orders.c.customer_id,
                          offset)
                .cte("activity"))
    cells = (sa.select(activity.c.cohort, activity.c.last_offset, activity.c.period_offset,
                       sa.func.count().label("buyers"),
                       sa.func.sum(activity.c.revenue).label("revenue"))
             .group_by(activity.c.cohort, activity.c.last_offset, activity.c.period_offset)
             .cte("cells"))
    sizes = (sa.select(observed.c.cohort, observed.c.last_offset,
                       sa.func.count().label("customers"))
             .group_by(observed.c.cohort, observed.c.last_offset).cte("sizes"))
    spans = (sa.select(sizes.c.cohort, sa.func.max(sizes.c.last_offset).label("last_offset"))
             .group_by(sizes.c.cohort).cte("spans"))
    grid = sa.select(spans.c.cohort, sa.func.unnest(sa.func.range(0, spans.c.last_offset + 1),
                                                    type_=sa.Integer).label("period_offset")
                     ).cte("grid")
    counted = (sa.select(grid.c.cohort, grid.c.period_offset,
                         _as_count(sa.func.sum(sizes.c.customers)).label("customers"))
               .select_from(grid.join(sizes, sa.and_(sizes.c.cohort == grid.c.cohort,
                                                     sizes.c.last_offset >= grid.c.period_offset)))
               .group_by(grid.c.cohort, grid.c.period_offset).cte("counted"))
    seen = cells.c.last_offset >= grid.c.period_offset
    measured = (sa.select(
        grid.c.cohort, grid.c.period_offset,
        sa.func.sum(cells.c.buyers).filter(cells.c.period_offset == grid.c.period_offset)
        .label("returning"),
        sa.func.sum(cells.c.revenue).filter(cells.c.period_offset == grid.c.period_offset)
        .label("revenue"),
        sa.func.sum(cells.c.revenue).filter(cells.c.period_offset == 0, seen).label("base"),
        sa.func.sum(cells.c.revenue).filter(cells.c.period_offset <= grid.c.period_offset, seen)
        .label("cumulative"),
    ).select_from(grid.outerjoin(cells, cells.c.cohort == grid.c.cohort))
        .group_by(grid.c.cohort, grid.c.period_offset).cte("measured"))
    returning = _as_count(sa.func.coalesce(measured.c.returning, 0))
    revenue = sa.func.coalesce(measured.c.revenue, 0)
    return (sa.select(
        counted.c.cohort, counted.c.period_offset, counted.c.customers,
        returning.label("returning"),
        (as_double(returning) / counted.c.customers).label("share_returning"),
        revenue.label("revenue"),
        (as_double(revenue) / sa.func.nullif(as_double(measured.c.base), 0))
        .label("revenue_retention"),
        (as_double(sa.func.coalesce(measured.c.cumulative, 0)) / counted.c.customers)
        .label("cumulative_revenue_per_customer"),
    ).select_from(counted.join(measured, sa.and_(
        measured.c.cohort == counted.c.cohort,
        measured.c.period_offset == counted.c.period_offset)))
        .order_by(counted.c.cohort, counted.c.period_offset))


def _period_retention_statement(period: str, filter: CohortFilter,
                                members: sa.Select | None) -> sa.Select:
    """:func:`retention_statement` for first-order cohorts, where each cohort is one period.

    Everyone in such a cohort was acquired in the same period, so all of them are observed
    for the same offsets: each cell counts the cohort's distinct buyers in that offset, and
    revenue retention and the running total are window functions over the cohort's row.
    Same figures as the general statement, whose per-customer bookkeeping (mixed
    acquisition periods in one cohort) costs about a fifth more time here.
    """
    buyers = _first_purchases(filter, members)
    cohorts = sa.select(buyers.c.customer_id,
                        period_start(period, buyers.c.first_at).label("cohort_start")
                        ).cte("cohort_starts")
    offset = periods_between(period, cohorts.c.cohort_start,
                             period_start(period, orders.c.ordered_at))
    # grouped by the period's start, a timestamp, and labelled at the end: grouping three
    # million orders by a text label is measurably slower
    cells = (sa.select(cohorts.c.cohort_start, offset.label("period_offset"),
                       sa.func.count(sa.distinct(orders.c.customer_id)).label("returning"),
                       sa.func.sum(money(orders.c.total)).label("revenue"))
             .select_from(orders.join(cohorts, cohorts.c.customer_id == orders.c.customer_id))
             .where(valid_purchase(orders), *up_to_cap(filter))
             .group_by(cohorts.c.cohort_start, offset).cte("cells"))
    sizes = (sa.select(cohorts.c.cohort_start, sa.func.count().label("customers"))
             .group_by(cohorts.c.cohort_start).cte("sizes"))
    last_offset = periods_between(period, sizes.c.cohort_start,
                                  period_start(period, data_cap(filter)))
    grid = sa.select(sizes.c.cohort_start, _as_count(sizes.c.customers).label("customers"),
                     sa.func.unnest(sa.func.range(0, last_offset + 1), type_=sa.Integer)
                     .label("period_offset")).cte("grid")
    returning = _as_count(sa.func.coalesce(cells.c.returning, 0))
    revenue = sa.func.coalesce(cells.c.revenue, 0)
    along = {"partition_by": grid.c.cohort_start, "order_by": grid.c.period_offset}
    base = sa.func.first_value(cells.c.revenue).over(**along)
    cumulative = sa.func.sum(revenue).over(**along, rows=(None, 0))
    return (sa.select(
        period_label(period, grid.c.cohort_start).label("cohort"), grid.c.period_offset,
        grid.c.customers, returning.label("returning"),
        (as_double(returning) / grid.c.customers).label("share_returning"),
        revenue.label("revenue"),
        (as_double(revenue) / sa.func.nullif(as_double(base), 0)).label("revenue_retention"),
        (as_double(cumulative) / grid.c.customers).label("cumulative_revenue_per_customer"),
    ).select_from(grid.outerjoin(cells, sa.and_(
        cells.c.cohort_start == grid.c.cohort_start,
        cells.c.period_offset == grid.c.period_offset)))
        .order_by(grid.c.cohort_start, grid.c.period_offset))


def retention_figure(frame: pl.DataFrame, metric: str = "share_returning",
                     period: str = "month") -> go.Figure:
    """A heatmap of one metric, cohorts down and offsets across, every value on hover."""
    if metric not in METRICS:
        raise UserError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    cohorts = frame["cohort"].unique(maintain_order=True).to_list()
    offsets = list(range(int(frame["period_offset"].max()) + 1)) if frame.height else []
    row, column = {c: i for i, c in enumerate(cohorts)}, {k: i for i, k in enumerate(offsets)}
    z = [[None] * len(offsets) for _ in cohorts]
    hover = [[""] * len(offsets) for _ in cohorts]
    for cell in frame.iter_rows(named=True):
        i, j = row[cell["cohort"]], column[cell["period_offset"]]
        value = cell[metric]
        z[i][j] = None if value is None else float(value)
        hover[i][j] = _hover_text(cell, period)
    figure = go.Figure(go.Heatmap(
        z=z, x=offsets, y=cohorts, text=hover, hovertemplate="%{text}<extra></extra>",
        colorscale="Blues", colorbar={"title": METRICS[metric]}, hoverongaps=False,
        zmin=0 if metric == "share_returning" else None,
        zmax=1 if metric == "share_returning" else None))
    figure.update_layout(
        xaxis_title=f"{period.capitalize()}s since the first purchase",
        yaxis_title="Cohort", yaxis={"autorange": "reversed", "type": "category"},
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=max(320, 22 * len(cohorts) + 120))
    return figure


def _hover_text(cell: dict, period: str) -> str:
    retention = cell["revenue_retention"]
    return "<br>".join((
        f"Cohort {cell['cohort']}, {period} {cell['period_offset']}",
        f"Customers: {cell['customers']:,}",
        f"Returning: {cell['returning']:,} ({cell['share_returning']:.1%})",
        f"Revenue: {float(cell['revenue']):,.2f}",
        "Revenue retention: " + ("—" if retention is None else f"{retention:.1%}"),
        f"Cumulative revenue per customer: {cell['cumulative_revenue_per_customer']:,.2f}",
    ))


def retention_matrix(con: duckdb.DuckDBPyConnection, *, period: str = "month",
                     cohort_by: str = "first_order", filter: CohortFilter = EVERYTHING,
                     members: sa.Select | None = None,
                     metric: str = "share_returning",
                     read: FrameReader = read_frame) -> CohortView:
    """The retention matrix (see the module docstring) with a heatmap of ``metric``.

    ``members`` (from :func:`studio.cohorts.common.segment_members`) limits the customers.

    Raises
    ------
    UserError
        For an unknown period, cohort kind or metric.
    """
    if metric not in METRICS:
        raise UserError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    statement = retention_statement(period, cohort_by, filter, members)
    return run_view(con, statement,
                    f"Retention by {COHORT_BY[cohort_by]} ({period}s): {METRICS[metric].lower()}",
                    lambda frame: retention_figure(frame, metric, period), read)
