"""studio.ui's cached query results: each query once per published warehouse version."""

import duckdb
import pytest

from studio import ui


class CountingConnection:
    """A DuckDB connection that records every query it is asked to run."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.queries: list[tuple[str, list]] = []

    def sql(self, query: str, params=None):
        self.queries.append((query, list(params or [])))
        return self.con.sql(query, params=params)


@pytest.fixture
def counting(settings):
    del settings  # cached_frames names the cache after this home's warehouse
    con = duckdb.connect()
    con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(10)")
    yield CountingConnection(con)
    con.close()


def test_a_query_runs_once_per_version_and_parameters(counting):
    query = "SELECT count(*) AS below FROM numbers WHERE n < $1"
    first = ui.cached_frames((1, 1))
    assert first(counting, query, [4])["below"].to_list() == [4]
    assert first(counting, query, [4])["below"].to_list() == [4]
    assert len(counting.queries) == 1

    assert first(counting, query, [7])["below"].to_list() == [7]  # other parameters
    assert len(counting.queries) == 2

    counting.con.execute("INSERT INTO numbers VALUES (0)")
    republished = ui.cached_frames((1, 2))  # what a new publication's version looks like
    assert republished(counting, query, [4])["below"].to_list() == [5]
    assert len(counting.queries) == 3
    assert first(counting, query, [4])["below"].to_list() == [4]  # the old version's result
    assert len(counting.queries) == 3


def follow_default_page():
    """A number input whose default the test sets through the session."""
    import streamlit as st

    from studio import ui

    ui.follow_default("number", st.session_state.get("default_for_test", 1))
    st.number_input("Number", key="number")


def test_an_untouched_widget_follows_its_default_and_a_changed_one_stays():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(follow_default_page, default_timeout=30).run()
    assert app.number_input(key="number").value == 1
    app.session_state["default_for_test"] = 2  # as a load moves the data's last day
    app.run()
    assert app.number_input(key="number").value == 2

    app.number_input(key="number").set_value(5).run()
    app.session_state["default_for_test"] = 3
    app.run()
    assert not app.exception and app.number_input(key="number").value == 5
