"""The RFM grid at a date, and how customers moved between its groups from one date to another.

Definitions (the groups are :mod:`studio.rfm`'s; its docstring says how R and F are scored):

* The **grid at** ``as_of`` scores every customer with a valid purchase up to ``as_of``
  (inclusive) against all such buyers, and lists the eleven groups in a fixed order
  (:data:`studio.segments.catalog.RFM_GROUPS`), each always present, zero when empty:
  ``customers``, ``share_of_customers`` (of the customers listed), ``revenue`` (their valid
  purchases up to ``as_of``, exact cents) and ``share_of_revenue``.
* The **movement** from ``before`` to ``after`` follows every customer with a valid purchase
  up to ``after``: ``from_group`` is their group at ``before``, or :data:`NO_PURCHASE` when
  they had not bought yet; ``to_group`` their group at ``after``. One row per pair that
  holds anyone, with ``customers`` and ``share_of_from`` (of everyone who started in
  ``from_group``).
* A segment (``members``) only chooses whom to list: scores stay relative to every buyer, so
  a segment's Champions are Champions of the whole store.

Scores are read from the ETL's order summary when it covers exactly the orders up to the date
(as segments do, :mod:`studio.rollups`), else from the orders themselves.
"""

from __future__ import annotations

import functools
from datetime import datetime, time

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.cohorts.common import CohortView, FrameReader, as_double, read_frame, run_view
from studio.errors import UserError
from studio.rfm import GROUP_GRID, group_of, rfm_scored
from studio.rollups import RollupCoverage, rollup_coverage
from studio.segments.catalog import RFM_GROUPS

NO_PURCHASE = "No purchase yet"
"""The ``from_group`` of customers whose first valid purchase came after ``before``."""


def scores_at(as_of: datetime, name: str, coverage: RollupCoverage | None) -> sa.Subquery:
    """:func:`studio.rfm.rfm_scored` at ``as_of``, from the order summary when it is exact.

    The groups are named later, from the (R, F) cells (:func:`cell_names`).
    """
    exact = coverage is not None and coverage.orders_complete_at(as_of)
    return rfm_scored(as_of, from_summary=exact, name=name)


def group_position(group: sa.ColumnElement) -> sa.Case:
    """The place of an RFM group in :data:`RFM_GROUPS` (``No purchase yet`` comes first)."""
    return sa.case({name: position for position, name in enumerate(RFM_GROUPS, start=1)},
                   value=group, else_=0)


def describe_moment(moment: datetime) -> str:
    """``2024-06-30`` for the end of that day (how the page picks dates), else with the time."""
    return f"{moment:%Y-%m-%d}" if moment.time() == time.max else f"{moment:%Y-%m-%d %H:%M}"


@functools.cache
def cell_names(name: str = "rfm_cell_names") -> sa.Values:
    """``r, f, rfm_group``: the 25 cells of :data:`studio.rfm.GROUP_GRID` as a table.

    Joining the scores to it names each (R, F) pair as ``rfm_group`` does, with one hash
    lookup per buyer instead of a 25-branch ``CASE``. Built once per name, its values
    written into the SQL rather than passed as 75 parameters: they never change, and
    building and binding them was a fair part of a small chart's time.
    """
    return (sa.values(sa.column("r", sa.Integer), sa.column("f", sa.Integer),
                      sa.column("rfm_group", sa.String), name=name, literal_binds=True)
            .data([(r, f, group_of(r, f)) for r in GROUP_GRID for f in range(1, 6)]))


@functools.cache
def group_order() -> sa.Values:
    """``position, rfm_group``: the eleven groups in the grid's order, as a table.

    Built once, its values written into the SQL, as :func:`cell_names`.
    """
    return (sa.values(sa.column("position", sa.Integer), sa.column("rfm_group", sa.String),
                      name="rfm_groups", literal_binds=True)
            .data(list(enumerate(RFM_GROUPS, start=1))))


def groups_at(as_of: datetime, name: str, coverage: RollupCoverage | None) -> sa.Subquery:
    """``customer_id, rfm_group`` of every buyer up to ``as_of``."""
    scores = scores_at(as_of, f"rfm_{name}", coverage)
    names = cell_names(f"{name}_cell_names")
    return (sa.select(scores.c.customer_id, names.c.rfm_group)
            .select_from(scores.join(names, sa.and_(names.c.r == scores.c.r,
                                                    names.c.f == scores.c.f)))
            .subquery(f"groups_{name}"))


def grid_statement(con: duckdb.DuckDBPyConnection, as_of: datetime,
                   members: sa.Select | None = None) -> sa.Select:
    """The grid at ``as_of`` as one statement (columns as in the module docstring)."""
    scores = scores_at(as_of, "rfm_at", rollup_coverage(con))
    conditions = [] if members is None else [scores.c.customer_id.in_(members)]
    # count the 25 (R, F) cells first and name them after: the same groups as rfm_group,
    # without naming every buyer
    cells = (sa.select(scores.c.r, scores.c.f, sa.func.count().label("customers"),
                       sa.func.sum(scores.c.revenue).label("revenue"))
             .where(*conditions).group_by(scores.c.r, scores.c.f).subquery("rfm_cells"))
    names = cell_names()
    per_group = (sa.select(names.c.rfm_group, sa.func.sum(cells.c.customers).label("customers"),
                           sa.func.sum(cells.c.revenue).label("revenue"))
                 .select_from(cells.join(names, sa.and_(names.c.r == cells.c.r,
                                                        names.c.f == cells.c.f)))
                 .group_by(names.c.rfm_group).subquery("per_group"))
    groups = group_order()
    customers = sa.cast(sa.func.coalesce(per_group.c.customers, 0), sa.BigInteger)
    revenue = sa.func.coalesce(per_group.c.revenue, 0)
    return (sa.select(
        groups.c.rfm_group, customers.label("customers"),
        (as_double(customers) / sa.func.nullif(sa.func.sum(customers).over(), 0))
        .label("share_of_customers"),
        revenue.label("revenue"),
        (as_double(revenue) / sa.func.nullif(as_double(sa.func.sum(revenue).over()), 0))
        .label("share_of_revenue"),
    ).select_from(groups.outerjoin(per_group, per_group.c.rfm_group == groups.c.rfm_group))
        .order_by(groups.c.position))


def movement_statement(con: duckdb.DuckDBPyConnection, before: datetime, after: datetime,
                       members: sa.Select | None = None) -> sa.Select:
    """The movement from ``before`` to ``after`` as one statement (see the module docstring)."""
    coverage = rollup_coverage(con)
    start = groups_at(before, "before", coverage)
    finish = groups_at(after, "after", coverage)
    conditions = [] if members is None else [finish.c.customer_id.in_(members)]
    from_group = sa.func.coalesce(start.c.rfm_group, NO_PURCHASE)
    moves = (sa.select(from_group.label("from_group"), finish.c.rfm_group.label("to_group"),
                       sa.func.count().label("customers"))
             .select_from(finish.outerjoin(start, start.c.customer_id == finish.c.customer_id))
             .where(*conditions).group_by(from_group, finish.c.rfm_group).subquery("moves"))
    started = sa.func.sum(moves.c.customers).over(partition_by=moves.c.from_group)
    return (sa.select(moves.c.from_group, moves.c.to_group, moves.c.customers,
                      (as_double(moves.c.customers) / started).label("share_of_from"))
            .order_by(group_position(moves.c.from_group), group_position(moves.c.to_group)))


def grid_figure(frame: pl.DataFrame) -> go.Figure:
    """A treemap of the groups sized by customers, with both shares on hover."""
    shown = frame.filter(pl.col("customers") > 0)
    hover = [f"{row['rfm_group']}<br>Customers: {row['customers']:,} "
             f"({row['share_of_customers']:.1%})<br>Revenue: {float(row['revenue']):,.2f} "
             f"({row['share_of_revenue'] or 0:.1%} of revenue)"
             for row in shown.iter_rows(named=True)]
    figure = go.Figure(go.Treemap(
        labels=shown["rfm_group"].to_list(), parents=[""] * shown.height,
        values=shown["customers"].to_list(), text=hover, textinfo="label+value+percent root",
        hovertemplate="%{text}<extra></extra>", sort=False))
    figure.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def movement_figure(frame: pl.DataFrame, before: datetime, after: datetime) -> go.Figure:
    """A Sankey diagram: groups at ``before`` on the left, at ``after`` on the right."""
    sources = [NO_PURCHASE, *RFM_GROUPS]
    left = [g for g in sources if g in set(frame["from_group"].to_list())]
    right = [g for g in RFM_GROUPS if g in set(frame["to_group"].to_list())]
    index = {("from", g): i for i, g in enumerate(left)}
    index |= {("to", g): len(left) + i for i, g in enumerate(right)}
    figure = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": [f"{g} ({before:%Y-%m-%d})" for g in left]
              + [f"{g} ({after:%Y-%m-%d})" for g in right], "pad": 12},
        link={"source": [index["from", g] for g in frame["from_group"].to_list()],
              "target": [index["to", g] for g in frame["to_group"].to_list()],
              "value": frame["customers"].to_list(),
              "customdata": [f"{share:.1%}" for share in frame["share_of_from"].to_list()],
              "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} customers "
                               "(%{customdata} of the group)<extra></extra>"}))
    figure.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=560)
    return figure


def rfm_grid(con: duckdb.DuckDBPyConnection, as_of: datetime,
             members: sa.Select | None = None, read: FrameReader = read_frame) -> CohortView:
    """The eleven RFM groups at ``as_of``: customers and revenue, with their shares.

    ``members`` (from :func:`studio.cohorts.common.segment_members`) limits whom the grid
    counts; see the module docstring.
    """
    return run_view(con, grid_statement(con, as_of, members),
                    f"RFM groups at {describe_moment(as_of)}",
                    grid_figure, read)


def rfm_movement(con: duckdb.DuckDBPyConnection, before: datetime, after: datetime,
                 members: sa.Select | None = None,
                 read: FrameReader = read_frame) -> CohortView:
    """How customers moved between RFM groups from ``before`` to ``after``.

    Raises
    ------
    UserError
        When ``before`` is not earlier than ``after``.
    """
    if before >= after:
        raise UserError(f"The movement starts ({before:%Y-%m-%d}) on or after it ends "
                        f"({after:%Y-%m-%d}); pick a 'from' date before the 'to' date.")
    return run_view(con, movement_statement(con, before, after, members),
                    f"RFM movement from {describe_moment(before)} to {describe_moment(after)}",
                    lambda frame: movement_figure(frame, before, after), read)
