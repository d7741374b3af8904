"""Cohort analytics: how customers behave over time, for analysts in the browser.

Each view (retention matrix, repeat purchase, RFM grid and movement, funnels, segment
comparison) is one SQLAlchemy Core statement over the declared warehouse tables, run on
DuckDB and returned as a :class:`studio.cohorts.common.CohortView`: the data, the readable
SQL that produced it, and a figure. :mod:`studio.cohorts.common` holds what every view
shares (the filter, the segment's members, running a statement); :mod:`studio.cohorts.panel`
is the one Streamlit piece that shows a view. Definitions are in ``docs/cohorts.md``.
"""
