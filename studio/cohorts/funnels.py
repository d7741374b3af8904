"""Funnels over events: who went from one step to the next, in order, within a time limit.

Definitions (the Funnels tab's caption sums them up):

* A **step** is an event type of the ``events`` table (``page_view``, ``product_view``,
  ``add_to_cart``, ``checkout_start``) or ``order``, which means a valid purchase
  (:func:`studio.rfm.valid_purchase`) read from ``orders``, not the storefront's ``order``
  event. Only occurrences in the filter's date range ``[start, end)`` count, for every step.
* Every occurrence of step 1 starts an **attempt**. Step k of an attempt is the earliest
  occurrence of step k strictly after the attempt's step k - 1 and at most ``within`` after
  its step 1. Taking the earliest occurrence never reaches fewer steps than any other
  choice, and "strictly after" keeps one event from counting twice.
* Each customer counts with **one attempt**: the one that reaches the most steps, and of
  those the earliest. A customer therefore reaches step k exactly when some attempt of theirs
  does, and every time between steps is taken from that one attempt.

Per step: ``customers`` reaching it, ``conversion_from_previous`` (``NULL`` for step 1),
``conversion_from_first``, and ``median_seconds_from_previous``: the median time between the
previous step and this one among the customers reaching it (``NULL`` for step 1).
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.cohorts.common import (
    CohortFilter,
    CohortView,
    FrameReader,
    in_range,
    read_frame,
    run_view,
)
from studio.errors import UserError
from studio.rfm import valid_purchase
from studio.segments.catalog import EVENT_TYPES
from studio.sql import AsofOuterJoin, events, orders, plus_seconds

ORDER_STEP = "order"
"""The pseudo-step "a valid purchase", read from ``orders``."""

STEPS = EVENT_TYPES
"""Every step a funnel may use: the event types, ``order`` meaning a valid purchase."""

DEFAULT_STEPS = ("product_view", "add_to_cart", "checkout_start", ORDER_STEP)


def check_steps(steps: list[str], within: timedelta) -> None:
    """Raise a :class:`UserError` for unknown steps, fewer than two, or a time limit <= 0."""
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise UserError(f"Unknown funnel step {unknown[0]!r}; use one of {', '.join(STEPS)}.")
    if len(steps) < 2:
        raise UserError("A funnel needs at least two steps; add the step that should follow.")
    if within <= timedelta(0):
        raise UserError(f"The funnel's time limit must be positive, not {within}; give one "
                        "such as 1 day.")


def occurrences(step: str, number: int, filter: CohortFilter) -> sa.Subquery:
    """``customer_id, happened_at``: every occurrence of ``step`` in the date range."""
    if step == ORDER_STEP:
        source = orders.alias(f"step_{number}_orders")
        return (sa.select(source.c.customer_id, source.c.ordered_at.label("happened_at"))
                .where(valid_purchase(source), source.c.customer_id.is_not(None),
                       *in_range(source.c.ordered_at, filter))
                .subquery(f"step_{number}_occurrences"))
    source = events.alias(f"step_{number}_events")
    return (sa.select(source.c.customer_id, source.c.occurred_at.label("happened_at"))
            .where(source.c.event_type == step, *in_range(source.c.occurred_at, filter))
            .subquery(f"step_{number}_occurrences"))


def attempts(steps: list[str], within: timedelta, filter: CohortFilter,
             members: sa.Select | None) -> sa.CTE:
    """``customer_id, step_1_at .. step_n_at``: every attempt, later steps ``NULL`` if missed.

    Step k is found with an ASOF join: the customer's earliest occurrence strictly after
    step k - 1, kept when it is within the limit of step 1 (if the earliest is too late,
    every later one is too).
    """
    first = occurrences(steps[0], 1, filter)
    conditions = [] if members is None else [first.c.customer_id.in_(members)]
    reached = (sa.select(first.c.customer_id, first.c.happened_at.label("step_1_at"))
               .where(*conditions).distinct().cte("step_1"))
    for number, step in enumerate(steps[1:], start=2):
        found = occurrences(step, number, filter)
        deadline = plus_seconds(reached.c.step_1_at, within.total_seconds())
        nearest = AsofOuterJoin(reached, found, sa.and_(
            found.c.customer_id == reached.c.customer_id,
            found.c.happened_at > reached.c[f"step_{number - 1}_at"]))
        step_at = sa.case((found.c.happened_at <= deadline, found.c.happened_at))
        reached = (sa.select(*reached.c, step_at.label(f"step_{number}_at"))
                   .select_from(nearest).cte(f"step_{number}"))
    return reached


def best_attempts(steps: list[str], within: timedelta, filter: CohortFilter,
                  members: sa.Select | None) -> sa.CTE:
    """Each customer's counted attempt: the most steps reached, then the earliest start."""
    every = attempts(steps, within, filter, members)
    depth = sum(sa.case((every.c[f"step_{number}_at"].is_not(None), 1), else_=0)
                for number in range(2, len(steps) + 1))
    ranked = sa.select(every, sa.func.row_number().over(
        partition_by=every.c.customer_id,
        order_by=(depth.desc(), every.c.step_1_at)).label("attempt_rank")
    ).subquery("ranked_attempts")
    return (sa.select(*(ranked.c[f"step_{number}_at"] for number in range(1, len(steps) + 1)))
            .where(ranked.c.attempt_rank == 1).cte("counted_attempts"))


def _seconds_between(earlier, later) -> sa.ColumnElement:
    return sa.func.epoch(later, type_=sa.Double) - sa.func.epoch(earlier, type_=sa.Double)


def funnel_statement(steps: list[str], within: timedelta, filter: CohortFilter,
                     members: sa.Select | None = None) -> sa.Select:
    """The funnel as one statement: one row per step (columns as in the module docstring)."""
    check_steps(steps, within)
    best = best_attempts(steps, within, filter, members)
    per_step = []
    for number, step in enumerate(steps, start=1):
        reached_at = best.c[f"step_{number}_at"]
        median = (sa.func.median(_seconds_between(best.c[f"step_{number - 1}_at"], reached_at))
                  if number > 1 else sa.null())
        per_step.append(sa.select(
            sa.literal(number, sa.Integer).label("step"), sa.literal(step).label("name"),
            sa.func.count(reached_at).label("customers"),
            sa.cast(median, sa.Double).label("median_seconds_from_previous")))
    counts = sa.union_all(*per_step).subquery("step_counts")
    reached = sa.cast(counts.c.customers, sa.Double)
    by_step = {"order_by": counts.c.step}
    return (sa.select(
        counts.c.step, counts.c.name, counts.c.customers,
        (reached / sa.func.nullif(sa.func.lag(reached).over(**by_step), 0))
        .label("conversion_from_previous"),
        (reached / sa.func.nullif(sa.func.first_value(reached).over(**by_step), 0))
        .label("conversion_from_first"),
        counts.c.median_seconds_from_previous,
    ).order_by(counts.c.step))


def describe_duration(seconds: float | None) -> str:
    """``5400`` -> ``"1.5 h"``: a duration in the unit that reads best."""
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def describe_limit(within: timedelta) -> str:
    """``timedelta(days=7)`` -> ``"7 days"``: a time limit in the largest whole unit."""
    seconds = int(within.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0 and not within.microseconds:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{within.total_seconds()} seconds"


def funnel_figure(frame: pl.DataFrame) -> go.Figure:
    """A plotly funnel: customers per step, conversions and median times on hover."""
    hover = [f"{row['customers']:,} customers<br>"
             + (f"{row['conversion_from_previous']:.1%} of the previous step, "
                if row["conversion_from_previous"] is not None else "")
             + (f"{row['conversion_from_first']:.1%} of the first"
                if row["conversion_from_first"] is not None else "")
             + (f"<br>median {describe_duration(row['median_seconds_from_previous'])} "
                "after the previous step" if row["step"] > 1 else "")
             for row in frame.iter_rows(named=True)]
    figure = go.Figure(go.Funnel(
        y=[f"{row['step']}. {row['name']}" for row in frame.iter_rows(named=True)],
        x=frame["customers"].to_list(), text=hover, textinfo="value+percent initial",
        hovertemplate="%{text}<extra></extra>"))
    figure.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def funnel(con: duckdb.DuckDBPyConnection, steps: list[str], *, within: timedelta,
           filter: CohortFilter, members: sa.Select | None = None,
           read: FrameReader = read_frame) -> CohortView:
    """Customers reaching each step of ``steps`` in order within ``within`` of the first.

    ``members`` (from :func:`studio.cohorts.common.segment_members`) limits whom the funnel
    follows; see the module docstring for which attempt counts.

    Raises
    ------
    UserError
        For an unknown step, fewer than two steps, or a time limit that is not positive.
    """
    statement = funnel_statement(list(steps), within, filter, members)
    return run_view(con, statement, f"Funnel {' → '.join(steps)} within {describe_limit(within)}",
                    funnel_figure, read)
