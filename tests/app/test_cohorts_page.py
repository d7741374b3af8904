"""The Cohorts page as Streamlit runs it (AppTest), checked against hand-written SQL."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from studio.segments import library
from studio.segments.definition import parse_definition
from studio.warehouse import connect_reader, writer
from tests.app.page_checks import assert_clean
from tests.conftest import make_settings

pytestmark = pytest.mark.app

APP = "../../studio/app.py"  # relative to this file, as AppTest.from_file resolves it
PAGE = "../pages/cohorts.py"  # relative to the app script
TIMEOUT = 60
VALID = "kind = 'sale' AND status = 'completed' AND NOT coalesce(is_guest, false)"
GERMANY = {"name": "Germany", "rule": {"profile": {"field": "country", "op": "equals",
                                                   "value": "DE"}}}


@pytest.fixture(scope="module")
def home(demo_home, tmp_path_factory):
    """A private copy of the demo home with the saved segment "Germany"."""
    target = tmp_path_factory.mktemp("cohorts-home") / "home"
    shutil.copytree(demo_home.home, target)
    settings = make_settings(target)
    library.save_segment(settings, parse_definition(GERMANY), user="tester")
    return settings


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home.home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.switch_page(PAGE).run()
    assert_clean(app)
    return app


def open_tab(app: AppTest, tab: str) -> AppTest:
    app.session_state["cohorts_tab"] = tab
    app.run()
    assert_clean(app)
    return app


def figures(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def heatmap(app: AppTest) -> dict:
    found = [trace for figure in figures(app) for trace in figure["data"]
             if trace["type"] == "heatmap"]
    assert len(found) == 1, f"one heatmap expected, got {len(found)}"
    return found[0]


def rows(con, query: str, params=None) -> list[tuple]:
    return con.execute(query, params or []).fetchall()


def test_retention_heatmap_matches_hand_written_sql(home, monkeypatch):
    app = open_page(home, monkeypatch)
    trace = heatmap(app)
    with connect_reader(home) as con:
        # share of each monthly cohort buying again in the month after its first
        expected = dict(rows(con, f"""
            WITH firsts AS (SELECT customer_id, date_trunc('month', min(ordered_at)) AS m
                            FROM orders WHERE {VALID} GROUP BY customer_id)
            SELECT strftime(f.m, '%Y-%m'),
                   count(DISTINCT o.customer_id) FILTER (
                       WHERE date_trunc('month', o.ordered_at) = f.m + INTERVAL 1 MONTH)
                   / count(DISTINCT f.customer_id)
            FROM firsts f JOIN orders o ON o.customer_id = f.customer_id AND {VALID.replace(
                'kind', 'o.kind').replace('status', 'o.status').replace('is_guest', 'o.is_guest')}
            GROUP BY f.m"""))
        last_month = rows(con, "SELECT strftime(max(ordered_at), '%Y-%m') FROM orders")[0][0]
    assert trace["y"] == sorted(expected)
    for cohort, row in zip(trace["y"], trace["z"], strict=True):
        assert row[0] == 1.0
        if cohort != last_month:
            assert row[1] == pytest.approx(expected[cohort], abs=1e-12), cohort
    assert any(download.label == "Download CSV" for download in app.get("download_button"))
    assert any(e.label == "SQL behind this chart" for e in app.expander)


def test_week_period_and_date_range_change_the_cohorts(home, monkeypatch):
    app = open_page(home, monkeypatch)
    app.segmented_control(key="cohorts_period").set_value("week").run()
    assert_clean(app)
    with connect_reader(home) as con:
        weeks = [w for (w,) in rows(con, f"""
            SELECT DISTINCT strftime(date_trunc('week', min(ordered_at)), '%Y-%m-%d')
            FROM orders WHERE {VALID} GROUP BY customer_id ORDER BY 1""")]
        march = [w for (w,) in rows(con, f"""
            SELECT DISTINCT strftime(date_trunc('week', first_at), '%Y-%m-%d') FROM (
                SELECT min(ordered_at) AS first_at FROM orders WHERE {VALID}
                GROUP BY customer_id)
            WHERE first_at >= '2024-03-01' AND first_at < '2024-04-01' ORDER BY 1""")]
    assert heatmap(app)["y"] == weeks
    app.date_input(key="cohorts_dates").set_value((date(2024, 3, 1), date(2024, 3, 31))).run()
    assert_clean(app)
    assert march and heatmap(app)["y"] == march


def test_segment_filter_counts_only_members(home, monkeypatch):
    app = open_page(home, monkeypatch)
    app.selectbox(key="cohorts_segment").set_value("Germany").run()
    assert_clean(app)
    with connect_reader(home) as con:
        sizes = dict(rows(con, """
            SELECT strftime(date_trunc('month', min(o.ordered_at)), '%Y-%m'), NULL
            FROM orders o JOIN customers c USING (customer_id)
            WHERE c.country = 'DE' AND o.kind = 'sale' AND o.status = 'completed'
              AND NOT coalesce(o.is_guest, false)
            GROUP BY o.customer_id"""))
    assert heatmap(app)["y"] == sorted(sizes)


def test_every_tab_renders(home, monkeypatch):
    app = open_page(home, monkeypatch)
    open_tab(app, "Repeat purchase")
    kinds = [trace["type"] for figure in figures(app) for trace in figure["data"]]
    assert "bar" in kinds and "scatter" in kinds
    for tab in ("RFM", "Funnels"):  # the views of studio.cohorts.rfm_view and funnel_view
        open_tab(app, tab)
        assert app.get("plotly_chart"), tab
    open_tab(app, "Compare segments")
    app.multiselect(key="cohorts_compare").set_value(["Germany"]).run()
    assert_clean(app)
    table = [d.value for d in app.dataframe if "segment" in d.value.columns]
    assert table and list(table[0]["segment"]) == ["All customers", "Germany"]


def test_the_overview_links_to_the_cohorts_page(home, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(home.home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_clean(app)
    links = [link.proto for link in app.get("page_link")]
    assert [link.page for link in links] == ["cohorts"]
    assert links[0].label.startswith("Cohorts")



def add_buyer(settings, customer: str, ordered_at: str) -> None:
    """Publish a warehouse with one more customer and their one valid order."""
    with writer(settings) as con:
        con.execute("INSERT INTO customers (customer_id) VALUES (?)", [customer])
        con.execute("INSERT INTO orders (order_id, customer_id, is_guest, ordered_at, kind, "
                    "status, total) VALUES (?, ?, false, ?, 'sale', 'completed', 10)",
                    [f"order-{customer}", customer, ordered_at])


def cohort_sizes(app: AppTest) -> dict[str, int]:
    """Customers per cohort, read from the hover text of offset 0 in the heatmap."""
    trace = heatmap(app)
    return {cohort: int(row[0].split("Customers: ")[1].split("<br>")[0].replace(",", ""))
            for cohort, row in zip(trace["y"], trace["text"], strict=True)}


def test_cached_results_give_way_to_a_newly_published_warehouse(settings, monkeypatch):
    add_buyer(settings, "a", "2024-05-01 10:00")
    app = open_page(settings, monkeypatch)
    assert cohort_sizes(app) == {"2024-05": 1}
    app.selectbox(key="cohorts_metric").set_value("revenue").run()  # a rerun, same queries
    assert_clean(app)
    assert cohort_sizes(app) == {"2024-05": 1}

    add_buyer(settings, "b", "2024-05-20 10:00")  # the next load publishes a new file
    add_buyer(settings, "c", "2024-06-02 10:00")
    app.run()
    assert_clean(app)
    assert cohort_sizes(app) == {"2024-05": 2, "2024-06": 1}
