"""Cohorts: retention, repeat purchase, RFM movement, funnels and segments side by side."""

import streamlit as st

from studio import ui
from studio.cohorts import compare, repeat_purchase, retention
from studio.cohorts.common import filter_for_days, order_days, segment_members
from studio.cohorts.panel import show_view
from studio.segments import library

TABS = ["Retention", "Repeat purchase", "RFM", "Funnels", "Compare segments"]
EVERYONE = "Everyone"
PERIOD_NAMES = {"week": "Week", "month": "Month", "quarter": "Quarter"}


def choose_cohorts(row, period_key: str, cohort_by_key: str) -> tuple[str, str]:
    """The period and the cohort choice, drawn in the first two columns of ``row``."""
    period = row[0].segmented_control(
        "Period", list(PERIOD_NAMES), default="month", required=True,
        format_func=PERIOD_NAMES.get, key=period_key)
    cohort_by = row[1].selectbox("Cohort by", list(retention.COHORT_BY),
                                 format_func=lambda k: retention.COHORT_BY[k].capitalize(),
                                 key=cohort_by_key)
    return period, cohort_by


st.title("Cohorts")

with ui.user_errors():
    con, version = ui.require_snapshot()
    read = ui.cached_frames(version)  # a rerun runs only the queries it changed
    settings = ui.settings()
    bounds = order_days(con)
    if bounds is None:
        st.info("The warehouse has no orders yet, so there are no cohorts to show.")
        st.stop()

    top = st.columns([2, 2, 3])
    ui.follow_default("cohorts_dates", bounds)  # the whole range, as new data arrives
    days = top[0].date_input("Date range", min_value=bounds[0], max_value=bounds[1],
                             key="cohorts_dates",
                             help="Cohorts whose first purchase falls in the range; purchases "
                             "and events are counted up to its last day.")
    saved = [s["name"] for s in library.list_segments(settings)]
    segment = top[1].selectbox("Segment", [EVERYONE, *saved], key="cohorts_segment",
                               help="Count only the members of a saved segment, evaluated "
                               "as of the range's end.")
    if not isinstance(days, tuple | list) or len(days) != 2:
        st.info("Pick the last day of the date range too.")
        st.stop()
    first_day, last_day = days
    cohort_filter = filter_for_days(first_day, last_day, bounds,
                                    None if segment == EVERYONE else segment)
    members = segment_members(settings, con, cohort_filter)
    top[2].caption(f"Orders run from {bounds[0]:%d %b %Y} to {bounds[1]:%d %b %Y}. A "
                   "customer's cohort is set by their first valid purchase ever; see "
                   "docs/cohorts.md for every definition.")

    tab_retention, tab_repeat, tab_rfm, tab_funnels, tab_compare = st.tabs(
        TABS, key="cohorts_tab", on_change="rerun")

    if tab_retention.open:
        with tab_retention:
            row = st.columns(3)
            period, cohort_by = choose_cohorts(row, "cohorts_period", "cohorts_by")
            metric = row[2].selectbox("Show", list(retention.METRICS),
                                      format_func=retention.METRICS.get, key="cohorts_metric")
            view = retention.retention_matrix(con, period=period, cohort_by=cohort_by,
                                              filter=cohort_filter, members=members,
                                              metric=metric, read=read)
            show_view(view, "retention_matrix",
                      empty="No customer made a first purchase in this range.")

    if tab_repeat.open:
        with tab_repeat:
            row = st.columns(4)
            period, cohort_by = choose_cohorts(row, "repeat_period", "repeat_by")
            bin_days = row[2].number_input("Days per bar", min_value=1, max_value=365, value=7,
                                           key="repeat_bin_days")
            max_days = row[3].number_input("Curve up to day", min_value=0, max_value=3650,
                                           value=365, key="repeat_max_days")
            histogram = repeat_purchase.time_to_second_order(
                con, filter=cohort_filter, members=members, bin_days=int(bin_days), read=read)
            show_view(histogram, "time_to_second_order",
                      empty="Nobody in this range has made a second purchase yet.")
            curve = repeat_purchase.repeat_purchase_curve(
                con, period=period, cohort_by=cohort_by, filter=cohort_filter,
                members=members, max_days=int(max_days), read=read)
            show_view(curve, "repeat_purchase_curve",
                      empty="No customer made a first purchase in this range.",
                      note="Each line stops where fewer than half of its cohort has been "
                      "watched that long (the newest customers have not); the CSV has every day.")

    if tab_rfm.open:
        with tab_rfm:
            from studio.cohorts import rfm_view

            rfm_view.render(con, cohort_filter, bounds, members, read)

    if tab_funnels.open:
        with tab_funnels:
            from studio.cohorts import funnel_view

            funnel_view.render(con, cohort_filter, members, read)

    if tab_compare.open:
        with tab_compare:
            chosen = st.multiselect("Segments to compare", saved, key="cohorts_compare",
                                    placeholder="Choose saved segments",
                                    help="Each segment's members as of the range's end, next "
                                    "to all customers, over the same dates.")
            if not saved:
                st.info("No segment is saved yet; save one on the Segments page to compare it.")
            elif not chosen:
                st.info("Choose one or more saved segments to see them side by side.")
            else:
                view = compare.compare_segments(settings, con, chosen, cohort_filter, read=read)
                st.subheader(view.title)
                st.dataframe(view.frame, hide_index=True, key="compare_table")
                show_view(view, "compare_segments", titled=False)
