"""The Streamlit entry point: a router over the pages and nothing else.

Launched as ``streamlit run <repo>/studio/app.py`` (``studio serve`` does it). Every
page is registered here: with ``st.navigation`` the ``pages/`` folder is not
discovered on its own.
"""

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Audience Studio", page_icon=":material/insights:", layout="wide")

navigation = st.navigation([
    st.Page(PAGES_DIR / "overview.py", title="Overview", icon=":material/dashboard:",
            default=True),
    st.Page(PAGES_DIR / "segments.py", title="Segments", icon=":material/groups:"),
    st.Page(PAGES_DIR / "cohorts.py", title="Cohorts", icon=":material/stacked_line_chart:"),
    st.Page(PAGES_DIR / "ab_results.py", title="A/B results", icon=":material/science:"),
    st.Page(PAGES_DIR / "predictive_models.py", title="Models", icon=":material/model_training:"),
    st.Page(PAGES_DIR / "exports.py", title="Exports", icon=":material/outbox:"),
    st.Page(PAGES_DIR / "data_quality.py", title="Data quality", icon=":material/fact_check:"),
])
navigation.run()
