"""What every cohort view shares: the filter, the segment's members, running a statement.

A view is a SQLAlchemy Core statement over the tables declared in :mod:`studio.sql`;
:func:`run_view` runs it on DuckDB and keeps its readable SQL beside the result, so the
SQL a page shows is exactly the SQL that produced the chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.config import Settings
from studio.errors import UserError
from studio.rollups import rollup_coverage
from studio.segments import library
from studio.segments.compiler import Compiler
from studio.segments.operations import default_as_of, has_table
from studio.sql import to_readable_sql, to_sql


@dataclass(frozen=True)
class CohortFilter:
    """What every view is restricted to.

    Attributes
    ----------
    start
        Orders and events at or after this moment (inclusive); ``None`` is the beginning.
    end
        Orders and events before this moment (exclusive); ``None`` is the data's end.
    segment
        A saved segment's name: only its members are counted. They are evaluated as of
        ``end``, or the data's latest order time when there is no end (see
        :func:`segment_members`).
    segment_version
        The segment's version; ``None`` is its latest.
    """

    start: datetime | None = None
    end: datetime | None = None
    segment: str | None = None
    segment_version: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise UserError(f"The date range starts ({self.start:%Y-%m-%d}) on or after it "
                            f"ends ({self.end:%Y-%m-%d}); pick a start before the end.")
        if self.segment_version is not None and self.segment is None:
            raise UserError("A segment version was given without a segment; choose the "
                            "segment too.")


EVERYTHING = CohortFilter()
"""No restriction: every date, every customer (the views' default filter)."""


def order_days(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """The days of the first and the latest order, or ``None`` when there are no orders."""
    first, last = con.execute("SELECT min(ordered_at), max(ordered_at) FROM orders").fetchall()[0]
    return None if first is None else (first.date(), last.date())


def filter_for_days(first_day: date, last_day: date, bounds: tuple[date, date],
                    segment: str | None = None) -> CohortFilter:
    """The filter for the days ``first_day`` to ``last_day``, both included.

    A side that reaches the data's own first or last day (``bounds``) stays open, so that
    choosing the whole range reads exactly as choosing nothing: the matrix then ends at
    the latest order, not at midnight after it.
    """
    start = None if first_day <= bounds[0] else datetime.combine(first_day, time())
    end = (None if last_day >= bounds[1]
           else datetime.combine(last_day + timedelta(days=1), time()))
    return CohortFilter(start=start, end=end, segment=segment)


def in_range(column: sa.ColumnElement, filter: CohortFilter) -> list[sa.ColumnElement[bool]]:
    """The conditions ``start <= column < end`` of ``filter`` (none for an open side)."""
    conditions = []
    if filter.start is not None:
        conditions.append(column >= filter.start)
    if filter.end is not None:
        conditions.append(column < filter.end)
    return conditions


def as_double(value) -> sa.Cast:
    """``CAST(value AS DOUBLE)``: shares and ratios are floats, whatever their parts are."""
    return sa.cast(value, sa.Double)


def segment_members(settings: Settings, con: duckdb.DuckDBPyConnection,
                    filter: CohortFilter) -> sa.Select | None:
    """``SELECT customer_id`` of the filter's saved segment, or ``None`` without a segment.

    The members are evaluated as of ``filter.end`` (so "bought in the last 30 days" means
    the 30 days before the range ends), else as of the moment the definition pins, else as
    of the data's latest order time, as segment counts are.

    Raises
    ------
    UserError
        For an unknown segment or version.
    """
    if filter.segment is None:
        return None
    return members_of(settings, con, filter.segment, filter.segment_version, filter.end)


def members_of(settings: Settings, con: duckdb.DuckDBPyConnection, name: str,
               version: int | None = None, as_of: datetime | None = None) -> sa.Select:
    """``SELECT customer_id`` of the saved segment ``name`` as of ``as_of`` (see above)."""
    definition = library.load_segment(settings, name, version)
    moment = as_of or definition.as_of or default_as_of(con)
    compiler = Compiler(moment, library.resolver(settings), has_scores=has_table(con, "scores"),
                        rollups=rollup_coverage(con))
    return compiler.members_query(definition.rule)


@dataclass
class CohortView:
    """One chart's data, the SQL behind it, and its figure.

    Attributes
    ----------
    title
        What the chart shows, as a heading.
    frame
        The data, as offered for download (CSV).
    sql
        The readable SQL (values written in) that produced ``frame``.
    figure
        The chart, or ``None`` when the view is a table.
    """

    title: str
    frame: pl.DataFrame
    sql: str
    figure: go.Figure | None = None


FrameReader = Callable[[duckdb.DuckDBPyConnection, str, list], pl.DataFrame]
"""How a view runs its SQL: ``read(con, sql, params)`` gives the result as a polars frame."""


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
    """Run ``sql`` with its positional ``params`` on ``con``: the views' default reader.

    Pages pass a caching reader instead (:func:`studio.ui.cached_frames`), so that a
    rerun does not run again the queries it did not change.
    """
    return con.sql(sql, params=params).pl()


def run_view(con: duckdb.DuckDBPyConnection, statement: sa.Select, title: str,
             figure_of: Callable[[pl.DataFrame], go.Figure] | None = None,
             read: FrameReader = read_frame) -> CohortView:
    """Run ``statement`` on DuckDB and wrap the result, its readable SQL and its figure.

    ``figure_of`` turns the frame into a figure; it is called once, with the result.
    ``read`` runs the compiled SQL (:func:`read_frame` unless a page caches results).
    """
    sql, params = to_sql(statement)
    frame = read(con, sql, params)
    figure = figure_of(frame) if figure_of is not None else None
    return CohortView(title=title, frame=frame, sql=to_readable_sql(statement), figure=figure)
