"""The pieces every cohort view shares: the filter, segment members, running a view, the panel."""

from __future__ import annotations

from datetime import date, datetime

import plotly.graph_objects as go
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from studio.cohorts.common import (
    CohortFilter,
    CohortView,
    filter_for_days,
    in_range,
    order_days,
    run_view,
    segment_members,
)
from studio.errors import UserError
from studio.segments import library
from studio.segments.definition import parse_definition
from studio.sql import orders, to_sql

ORDERS = [{"customer_id": "a", "ordered_at": "2024-01-05 10:00", "total": 12.5},
          {"customer_id": "b", "ordered_at": "2024-03-01 00:00", "total": 20},
          {"customer_id": "c", "ordered_at": "2024-03-30 23:00", "total": 7.25}]
RECENT = {"name": "Recent buyers", "rule": {"orders": {"metric": "count", "op": "gte",
                                                       "value": 1, "window": {"last_days": 40}}}}


@pytest.fixture
def con(tiny_store):
    return tiny_store(orders=ORDERS)


def ids(con, statement) -> set[str]:
    return {row[0] for row in con.execute(*to_sql(statement)).fetchall()}


def test_a_range_that_ends_before_it_starts_is_a_user_error():
    with pytest.raises(UserError, match="starts .* on or after it ends"):
        CohortFilter(start=datetime(2024, 3, 1), end=datetime(2024, 3, 1))
    with pytest.raises(UserError, match="without a segment"):
        CohortFilter(segment_version=2)


def test_in_range_includes_the_start_and_excludes_the_end(con):
    query = sa.select(orders.c.customer_id)
    assert ids(con, query.where(*in_range(orders.c.ordered_at, CohortFilter(
        start=datetime(2024, 3, 1), end=datetime(2024, 3, 30, 23))))) == {"b"}
    assert ids(con, query.where(*in_range(orders.c.ordered_at, CohortFilter(
        end=datetime(2024, 3, 1))))) == {"a"}
    assert ids(con, query.where(*in_range(orders.c.ordered_at, CohortFilter()))) == {"a", "b",
                                                                                    "c"}


def test_segment_members_are_evaluated_at_the_end_of_the_range(settings, con):
    library.save_segment(settings, parse_definition(RECENT), user="tester")
    library.save_segment(settings, parse_definition(RECENT | {"rule": {"profile": {
        "field": "customer_id", "op": "equals", "value": "a"}}}), user="tester")
    assert segment_members(settings, con, CohortFilter()) is None
    first = CohortFilter(segment="Recent buyers", segment_version=1)
    # the last 40 days before the data's latest order (30 March): b and c
    assert ids(con, segment_members(settings, con, first)) == {"b", "c"}
    # as of 10 January: only a bought in the 40 days before
    early = CohortFilter(end=datetime(2024, 1, 10), segment="Recent buyers", segment_version=1)
    assert ids(con, segment_members(settings, con, early)) == {"a"}
    latest = CohortFilter(segment="Recent buyers")  # version 2: customer a
    assert ids(con, segment_members(settings, con, latest)) == {"a"}


def test_an_unknown_segment_is_a_user_error(settings, con):
    with pytest.raises(UserError, match="No saved segment is called 'Lapsed'"):
        segment_members(settings, con, CohortFilter(segment="Lapsed"))


def test_run_view_returns_the_frame_its_readable_sql_and_figure(con):
    seen = []

    def figure_of(frame):
        seen.append(frame.height)
        return go.Figure(go.Bar(x=frame["customer_id"].to_list(), y=frame["total"].to_list()))

    statement = (sa.select(orders.c.customer_id, orders.c.total)
                 .where(orders.c.ordered_at >= datetime(2024, 3, 1), orders.c.total > 7.5)
                 .order_by(orders.c.customer_id))
    view = run_view(con, statement, "Big March orders", figure_of)
    assert view.title == "Big March orders"
    assert view.frame.rows() == [("b", 20.0)]
    assert seen == [1] and list(view.figure.data[0].x) == ["b"]
    assert "'2024-03-01 00:00:00'" in view.sql and "7.5" in view.sql
    assert con.sql(view.sql).pl().equals(view.frame)
    assert run_view(con, statement, "no figure").figure is None


def test_order_days_and_filters_for_picked_days(con, tiny_store):
    bounds = order_days(con)
    assert bounds == (date(2024, 1, 5), date(2024, 3, 30))
    assert filter_for_days(*bounds, bounds) == CohortFilter()
    assert filter_for_days(date(2024, 2, 1), date(2024, 3, 1), bounds, "Recent buyers") == \
        CohortFilter(start=datetime(2024, 2, 1), end=datetime(2024, 3, 2),
                     segment="Recent buyers")
    assert order_days(tiny_store(orders=[])) is None


def show_a_view():
    import plotly.graph_objects as go
    import polars as pl

    from studio.cohorts.common import CohortView
    from studio.cohorts.panel import show_view

    frame = pl.DataFrame({"cohort": ["2024-01"], "customers": [3]})
    show_view(CohortView("t", frame, "SELECT 1", go.Figure(go.Bar(x=[1], y=[3]))), "sizes")
    show_view(CohortView("t", frame, "SELECT 2"), "table")


def test_the_panel_shows_chart_sql_and_csv():
    app = AppTest.from_function(show_a_view).run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 1
    assert [e.label for e in app.expander] == ["SQL behind this chart"] * 2
    assert [c.value for c in app.code] == ["SELECT 1", "SELECT 2"]
    assert [c.language for c in app.code] == ["sql", "sql"]
    assert app.dataframe[0].value["customers"].tolist() == [3]
    downloads = app.get("download_button")
    assert [d.proto.label for d in downloads] == ["Download CSV"] * 2
    assert CohortView.__dataclass_fields__.keys() == {"title", "frame", "sql", "figure"}
