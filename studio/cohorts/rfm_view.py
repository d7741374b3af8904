"""The RFM tab of the Cohorts page: the grid at a day, and the movement between two days.

Streamlit layout only; the figures come from :mod:`studio.cohorts.rfm_movement`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb
import sqlalchemy as sa
import streamlit as st

from studio import ui
from studio.cohorts.common import CohortFilter, FrameReader, read_frame
from studio.cohorts.panel import show_view
from studio.cohorts.rfm_movement import rfm_grid, rfm_movement

MOVEMENT_DAYS = 90
"""How far before the grid's day the movement starts by default."""


def end_of_day(day: date) -> datetime:
    """The last moment of ``day``: RFM at a day counts every purchase made that day."""
    return datetime.combine(day, time.max)


def default_days(filter: CohortFilter, bounds: tuple[date, date]) -> tuple[date, date]:
    """The grid's day (the range's last day) and, 90 days earlier, the movement's start."""
    last = bounds[1] if filter.end is None else (filter.end - timedelta(microseconds=1)).date()
    last = min(max(last, bounds[0]), bounds[1])
    return max(bounds[0], last - timedelta(days=MOVEMENT_DAYS)), last


def render(con: duckdb.DuckDBPyConnection, filter: CohortFilter, bounds: tuple[date, date],
           members: sa.Select | None, read: FrameReader = read_frame) -> None:
    """The tab's two day pickers, the grid at the later day and the movement between them.

    ``bounds`` are the data's first and last order days and ``members`` the filter's
    segment, both as the page already has them; ``read`` runs the views' queries (the
    page passes one that caches results).
    """
    first, last = default_days(filter, bounds)
    row = st.columns(2)
    ui.follow_default("rfm_day", last)
    ui.follow_default("rfm_from_day", first)
    grid_day = row[0].date_input("Groups at the end of", min_value=bounds[0],
                                 max_value=bounds[1], key="rfm_day",
                                 help="RFM scores every valid purchase up to this day; the "
                                 "date range's start does not apply.")
    from_day = row[1].date_input("Movement since the end of",
                                 min_value=bounds[0], max_value=bounds[1], key="rfm_from_day",
                                 help="Where each customer stood on this day, against where "
                                 "they stand on the day on the left.")
    grid = rfm_grid(con, end_of_day(grid_day), members, read)
    show_view(grid, "rfm_grid")
    if from_day >= grid_day:
        st.info("Pick a 'movement since' day before the groups' day to see who moved.")
        return
    movement = rfm_movement(con, end_of_day(from_day), end_of_day(grid_day), members, read)
    show_view(movement, "rfm_movement",
              empty="Nobody had bought by the later day, so nobody moved.")
