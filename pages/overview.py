"""Overview: the store's headline KPIs and its sales over time."""

import streamlit as st

from studio import overview, ui

st.title("Overview")

with ui.user_errors():
    con = ui.require_reader()
    kpis = overview.overview_kpis(con)
    if kpis.as_of is None:
        st.info("The warehouse has no orders yet, so there is nothing to summarise.")
        st.stop()

    st.caption(
        f"Data as of **{kpis.as_of:%d %B %Y, %H:%M}**, the latest order in the warehouse. "
        "Orders, active customers, repeat rate and average order value count valid orders "
        "(completed sales by known customers); revenue is net of returns."
    )
    currency = f" ({kpis.currency})" if kpis.currency else ""

    first = st.columns(4)
    first[0].metric("Customers", ui.format_count(kpis.customers), border=True,
                    help="Known customers in the warehouse; guest checkouts are not customers.")
    first[1].metric("Orders", ui.format_count(kpis.orders), border=True,
                    help="Valid orders: completed sales by known customers.")
    first[2].metric(f"Net revenue{currency}", ui.format_money(kpis.revenue), border=True,
                    help="Completed sales, guest checkouts included, minus completed returns. "
                    "Cancelled and refunded orders and adjustments are left out.")
    first[3].metric(f"Average order value{currency}",
                    ui.format_money(kpis.average_order_value, decimals=2), border=True,
                    help="Revenue of valid orders divided by their number (before returns).")

    second = st.columns(4)
    second[0].metric("Active customers, 30 days", ui.format_count(kpis.active_30d), border=True,
                     help="Customers with a valid order in the 30 days up to the as-of date.")
    second[1].metric("Active customers, 90 days", ui.format_count(kpis.active_90d), border=True,
                     help="Customers with a valid order in the 90 days up to the as-of date.")
    second[2].metric("Repeat-purchase rate", ui.format_share(kpis.repeat_rate), border=True,
                     help="Customers with two or more valid orders, out of those with one.")
    second[3].metric("As of", f"{kpis.as_of:%d %b %Y}", border=True,
                     help="The latest order timestamp in the data; windows end here.")

    st.page_link("../pages/cohorts.py", icon=":material/stacked_line_chart:",
                 label="Cohorts: retention, repeat purchase, RFM movement and funnels")

    st.subheader("Sales over time")
    grain = st.segmented_control(
        "Grain", options=list(overview.GRAINS), default="week", required=True,
        format_func=str.capitalize, key="overview_grain",
    )
    sales = overview.sales_over_time(con, grain)
    st.plotly_chart(overview.sales_figure(sales, kpis.currency), key="overview_sales")
    st.caption(f"Each point is one {grain}, labelled by its first day; the first and last "
               f"{grain}s may be partial. Returns count on the {grain} they were booked.")
