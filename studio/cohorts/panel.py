"""Show one cohort view in a page: its chart, the SQL behind it and a CSV download.

With :mod:`studio.ui`, the only library module that imports Streamlit; it shows things
and computes nothing.
"""

from __future__ import annotations

import streamlit as st

from studio.cohorts.common import CohortView


def show_view(view: CohortView, key: str, *, empty: str | None = None,
              note: str | None = None, titled: bool = True) -> None:
    """The title, the figure (or the table when there is none), its SQL, and its data as CSV.

    ``key`` names the widgets and the downloaded file, so it must be unique in the page.
    ``empty`` is said instead of a chart when the view holds no rows; ``note`` is a caption
    under the title.
    """
    if titled:
        st.subheader(view.title)
    if note:
        st.caption(note)
    if empty is not None and view.frame.is_empty():
        st.info(empty)
        return
    if view.figure is not None:
        st.plotly_chart(view.figure, key=f"{key}_chart")
    else:
        st.dataframe(view.frame, hide_index=True, key=f"{key}_table")
    with st.expander("SQL behind this chart"):
        st.code(view.sql, language="sql")
    st.download_button("Download CSV", view.frame.write_csv(), file_name=f"{key}.csv",
                       mime="text/csv", key=f"{key}_csv")
