"""The Funnels tab of the Cohorts page: steps in order, a time limit, the funnel.

Streamlit layout only; the funnel comes from :mod:`studio.cohorts.funnels`.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import sqlalchemy as sa
import streamlit as st

from studio.cohorts.common import CohortFilter, FrameReader, read_frame
from studio.cohorts.funnels import DEFAULT_STEPS, STEPS, funnel
from studio.cohorts.panel import show_view

STEP_LABELS = {"page_view": "Page view", "product_view": "Product view",
               "add_to_cart": "Add to cart", "checkout_start": "Checkout start",
               "order": "Order (valid purchase)"}
UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}


def render(con: duckdb.DuckDBPyConnection, filter: CohortFilter, members: sa.Select | None,
           read: FrameReader = read_frame) -> None:
    """The tab's steps (in the order chosen), time limit and the funnel they give.

    ``members`` is the filter's segment, as the page already has it; ``read`` runs the
    funnel's query (the page passes one that caches results).
    """
    row = st.columns([4, 1, 1])
    steps = row[0].multiselect("Steps, in order", list(STEPS), default=list(DEFAULT_STEPS),
                               format_func=STEP_LABELS.get, key="funnel_steps",
                               help="Each step must follow the previous one; the order in "
                               "which you pick them is the funnel's order.")
    amount = row[1].number_input("Time limit", min_value=1, max_value=1000, value=1,
                                 key="funnel_within",
                                 help="Every step must happen within this long of step 1.")
    unit = row[2].selectbox("Unit", list(UNITS), index=1, key="funnel_unit")
    if len(steps) < 2:
        st.info("Choose at least two steps to see a funnel.")
        return
    view = funnel(con, steps, within=int(amount) * UNITS[unit], filter=filter, members=members,
                  read=read)
    show_view(view, "funnel", note="Each customer counts once, with their attempt that got "
              "furthest (the earliest of those); every step strictly after the previous one, "
              "in the date range.")
