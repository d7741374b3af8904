"""Repeat purchase: how long until a second order, and how fast each cohort comes back.

Definitions (also in ``docs/cohorts.md``); cohorts, the date filter and the **cap** (the
last moment counted) are those of :mod:`studio.cohorts.retention`:

* A customer's **second purchase** is their second valid purchase by time (two purchases
  at the same moment make it the first one's moment), counted only up to the cap.
* **Days to the second order** are whole days (24-hour spans) elapsed from the first
  purchase to the second: a second order 30 hours after the first is on day 1.
* A customer is **observed for d days** when the cap is at least d whole days after their
  first purchase.

:func:`time_to_second_order` is the distribution of those days over the customers with a
second purchase, in bins of ``bin_days``. :func:`repeat_purchase_curve` gives, per cohort
and day d = 0 .. ``max_days``, the share of the customers observed for d days whose second
purchase came within d days; customers acquired too recently to have been watched for d
days are left out of that day's share rather than counted as not having come back.
"""

from __future__ import annotations

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.cohorts.common import (
    EVERYTHING,
    CohortFilter,
    CohortView,
    FrameReader,
    in_range,
    read_frame,
    run_view,
)
from studio.cohorts.retention import COHORT_BY, data_cap, label_cohorts, up_to_cap
from studio.errors import UserError
from studio.rfm import valid_purchase
from studio.sql import orders

DAY_MICROSECONDS = 86_400_000_000
SHOWN_WHILE_OBSERVED = 0.5
"""The share of a cohort that must still be observed on a day for its curve to show it."""


def whole_days(earlier, later) -> sa.ColumnElement:
    """Whole 24-hour spans from ``earlier`` to ``later`` (microsecond exact)."""
    elapsed = sa.func.date_diff("microsecond", earlier, later, type_=sa.BigInteger)
    return sa.cast(sa.func.floor(elapsed / float(DAY_MICROSECONDS)), sa.BigInteger)


def first_two_purchases(filter: CohortFilter = EVERYTHING,
                        members: sa.Select | None = None) -> sa.CTE:
    """``customer_id, first_at, second_at, second_day, observed_days`` per buyer in range.

    ``second_at`` and ``second_day`` are NULL for a customer without a second purchase by
    the cap. One grouping pass over the orders: DuckDB's ``min(ordered_at, 2)`` keeps each
    customer's two earliest purchase times, so two purchases at the same moment make the
    second the first one's moment. Orders after the cap are left out, which cannot change
    the first purchase of anyone in range: it lies before the range's end.
    """
    earliest = sa.func.min(orders.c.ordered_at, 2)
    purchases = (sa.select(orders.c.customer_id, earliest.label("earliest"))
                 .where(valid_purchase(orders), orders.c.customer_id.is_not(None),
                        *([] if members is None else [orders.c.customer_id.in_(members)]),
                        *up_to_cap(filter))
                 .group_by(orders.c.customer_id).cte("earliest_purchases"))
    first_at = sa.func.list_extract(purchases.c.earliest, 1, type_=sa.DateTime)
    second_at = sa.func.list_extract(purchases.c.earliest, 2, type_=sa.DateTime)
    pairs = (sa.select(purchases.c.customer_id, first_at.label("first_at"),
                       second_at.label("second_at"))
             .where(*in_range(first_at, filter)).cte("first_two_purchases"))
    cap = data_cap(filter)
    return (sa.select(pairs, whole_days(pairs.c.first_at, pairs.c.second_at).label("second_day"),
                      whole_days(pairs.c.first_at, cap).label("observed_days"))
            .cte("repeat_buyers"))


def second_purchases(period: str = "month", cohort_by: str = "first_order",
                     filter: CohortFilter = EVERYTHING,
                     members: sa.Select | None = None) -> sa.CTE:
    """:func:`first_two_purchases` with each buyer's ``cohort``."""
    labelled = label_cohorts(period, cohort_by, first_two_purchases(filter, members), filter,
                             members).subquery("labelled_buyers")
    # read three times: materialised with the cohort labels in it, so each buyer's label is
    # written once, not once per reader (DuckDB would otherwise materialise the unlabelled
    # buyers and label them three times)
    return (sa.select(labelled.c.customer_id, labelled.c.cohort, labelled.c.second_at,
                      labelled.c.second_day, labelled.c.observed_days)
            .cte("cohort_buyers").prefix_with("MATERIALIZED"))


def time_to_second_order_statement(filter: CohortFilter = EVERYTHING,
                                   members: sa.Select | None = None,
                                   bin_days: int = 7) -> sa.Select:
    """Days to the second order in bins: ``days_from, days_to, customers`` and two shares.

    ``share_of_repeaters`` divides by the customers with a second purchase,
    ``share_of_customers`` by every customer whose first purchase is in the range.
    """
    buyers = first_two_purchases(filter, members)
    days_from = (sa.cast(sa.func.floor(buyers.c.second_day / float(bin_days)), sa.BigInteger)
                 * bin_days)
    everyone = sa.select(sa.func.count()).select_from(buyers).scalar_subquery()
    customers = sa.func.count()
    return (sa.select(days_from.label("days_from"), (days_from + bin_days).label("days_to"),
                      customers.label("customers"),
                      (sa.cast(customers, sa.Double) / sa.func.sum(customers).over())
                      .label("share_of_repeaters"),
                      (sa.cast(customers, sa.Double) / everyone).label("share_of_customers"))
            .where(buyers.c.second_day.is_not(None))
            .group_by(days_from).order_by(days_from))


def repeat_curve_statement(period: str = "month", cohort_by: str = "first_order",
                           filter: CohortFilter = EVERYTHING, members: sa.Select | None = None,
                           max_days: int = 365) -> sa.Select:
    """Per cohort and day: ``customers`` observed, ``repeaters`` within d days, the share.

    Counted from three small histograms per cohort (second-purchase day, observed days,
    observed days of those who repeated) with running sums, so the work does not grow
    with customers times days: of those observed for d days, the repeaters are everyone
    whose second purchase came by day d, less those who repeated but are observed for
    fewer than d days (their second purchase, before the cap, came earlier still).
    """
    buyers = second_purchases(period, cohort_by, filter, members)
    sizes = (sa.select(buyers.c.cohort, sa.func.count().label("customers"))
             .group_by(buyers.c.cohort).cte("cohort_sizes"))
    grid = sa.select(sizes.c.cohort, sizes.c.customers,
                     sa.func.unnest(sa.func.range(0, max_days + 1), type_=sa.Integer)
                     .label("day")).cte("days")
    by_second = (sa.select(buyers.c.cohort, buyers.c.second_day.label("day"),
                           sa.func.count().label("repeated"))
                 .where(buyers.c.second_day <= max_days)
                 .group_by(buyers.c.cohort, buyers.c.second_day).cte("by_second_day"))
    by_watch = (sa.select(buyers.c.cohort, buyers.c.observed_days.label("day"),
                          sa.func.count().label("watched"),
                          sa.func.count(buyers.c.second_at).label("watched_repeaters"))
                .where(buyers.c.observed_days <= max_days)
                .group_by(buyers.c.cohort, buyers.c.observed_days).cte("by_observed_days"))
    window = {"partition_by": grid.c.cohort, "order_by": grid.c.day}
    before = {"rows": (None, -1)}
    through = {"rows": (None, 0)}
    running = (sa.select(
        grid.c.cohort, grid.c.day,
        (grid.c.customers - sa.func.coalesce(sa.func.sum(by_watch.c.watched)
                                             .over(**window, **before), 0)).label("customers"),
        (sa.func.coalesce(sa.func.sum(by_second.c.repeated).over(**window, **through), 0)
         - sa.func.coalesce(sa.func.sum(by_watch.c.watched_repeaters)
                            .over(**window, **before), 0)).label("repeaters"),
    ).select_from(
        grid.outerjoin(by_second, sa.and_(by_second.c.cohort == grid.c.cohort,
                                          by_second.c.day == grid.c.day))
        .outerjoin(by_watch, sa.and_(by_watch.c.cohort == grid.c.cohort,
                                     by_watch.c.day == grid.c.day))
    ).cte("running"))
    return (sa.select(running.c.cohort, running.c.day,
                      sa.cast(running.c.customers, sa.BigInteger).label("customers"),
                      sa.cast(running.c.repeaters, sa.BigInteger).label("repeaters"),
                      (sa.cast(running.c.repeaters, sa.Double) / running.c.customers)
                      .label("share_repeat"))
            .where(running.c.customers > 0).order_by(running.c.cohort, running.c.day))


def histogram_figure(frame: pl.DataFrame) -> go.Figure:
    """Bars of customers per bin of days to the second order."""
    figure = go.Figure(go.Bar(
        x=[(a + b) / 2 for a, b in zip(frame["days_from"], frame["days_to"], strict=True)],
        width=[b - a for a, b in zip(frame["days_from"], frame["days_to"], strict=True)],
        y=frame["customers"].to_list(), marker_color="#818CF8",
        customdata=list(zip(frame["days_from"], frame["days_to"],
                            frame["share_of_repeaters"], strict=True)),
        hovertemplate=("Days %{customdata[0]} to %{customdata[1]}<br>Customers: %{y:,}"
                       "<br>Share of repeaters: %{customdata[2]:.1%}<extra></extra>")))
    figure.update_layout(xaxis_title="Days from the first to the second order",
                         yaxis_title="Customers", bargap=0.05,
                         margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def curve_figure(frame: pl.DataFrame) -> go.Figure:
    """One line per cohort: the share with a second order within d days.

    A line stops where fewer than :data:`SHOWN_WHILE_OBSERVED` of its cohort is still
    observed: near the end of the data only the cohort's earliest customers have been
    watched that long, and a share over a handful of them jumps about (the frame, and
    the CSV, keep every day). The points go to plotly as numpy arrays, which it passes
    on as typed arrays: a year of days for a few dozen cohorts validates about four
    times faster than as Python lists.
    """
    shown = frame.filter(pl.col("customers")
                         >= SHOWN_WHILE_OBSERVED * pl.col("customers").max().over("cohort"))
    traces = [go.Scatter(
        x=part["day"].to_numpy(), y=part["share_repeat"].to_numpy(), mode="lines",
        name=str(cohort), customdata=part.select("customers", "repeaters").to_numpy(),
        hovertemplate=(f"{cohort}, day %{{x}}<br>Repeated: %{{y:.1%}} "
                       "(%{customdata[1]:,} of %{customdata[0]:,})<extra></extra>"))
        for (cohort,), part in shown.group_by("cohort", maintain_order=True)]
    figure = go.Figure(traces)
    figure.update_layout(xaxis_title="Days since the first order",
                         yaxis_title="Share with a second order", yaxis_tickformat=".0%",
                         margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def time_to_second_order(con: duckdb.DuckDBPyConnection, *, filter: CohortFilter = EVERYTHING,
                         members: sa.Select | None = None, bin_days: int = 7,
                         read: FrameReader = read_frame) -> CohortView:
    """The distribution of days to the second order, in bins of ``bin_days`` days.

    Raises
    ------
    UserError
        For a bin narrower than one day.
    """
    if bin_days < 1:
        raise UserError(f"A bin must span at least one day, not {bin_days}; pick 1 or more.")
    return run_view(con, time_to_second_order_statement(filter, members, bin_days),
                    "Days to the second order", histogram_figure, read)


def repeat_purchase_curve(con: duckdb.DuckDBPyConnection, *, period: str = "month",
                          cohort_by: str = "first_order", filter: CohortFilter = EVERYTHING,
                          members: sa.Select | None = None, max_days: int = 365,
                          read: FrameReader = read_frame) -> CohortView:
    """Per cohort, the share with a second order within d days, for d = 0 .. ``max_days``.

    Raises
    ------
    UserError
        For an unknown period or cohort kind, or a negative ``max_days``.
    """
    if max_days < 0:
        raise UserError(f"The curve needs a number of days of 0 or more, not {max_days}.")
    statement = repeat_curve_statement(period, cohort_by, filter, members, max_days)
    return run_view(con, statement, f"Repeat purchase by {COHORT_BY[cohort_by]} ({period}s)",
                    curve_figure, read)
