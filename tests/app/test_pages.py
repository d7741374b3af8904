"""The pages as Streamlit runs them (AppTest), checked against direct SQL on the warehouse."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from studio.schema import VALID_ORDER_SQL
from studio.state import etl_runs, state_engine
from studio.warehouse import connect_reader, writer
from tests.app.page_checks import assert_clean

pytestmark = pytest.mark.app

APP = "../../studio/app.py"  # relative to this file, as AppTest.from_file resolves it
DATA_QUALITY = "../pages/data_quality.py"  # relative to the app script
TIMEOUT = 60


def run_app(home, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page is not None:
        app.switch_page(page).run()
    return app


def metric(app: AppTest, label: str) -> str:
    matches = [m.value for m in app.metric if m.label.startswith(label)]
    assert len(matches) == 1, f"one metric labelled {label!r} expected, got {matches}"
    return matches[0]


def as_number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def scalar(con, query: str, params=None):
    return con.sql(query, params=params or []).fetchall()[0][0]


def dataframe_with(app: AppTest, *columns: str):
    frames = [d.value for d in app.dataframe if set(columns) <= set(d.value.columns)]
    assert len(frames) == 1, f"one table with columns {columns} expected, got {len(frames)}"
    return frames[0]


def test_overview_metrics_equal_direct_sql(demo_home, monkeypatch):
    app = run_app(demo_home.home, monkeypatch)
    assert_clean(app)
    con = connect_reader(demo_home)
    try:
        customers = scalar(con, "SELECT count(*) FROM customers")
        orders = scalar(con, f"SELECT count(*) FROM orders WHERE {VALID_ORDER_SQL}")
        as_of = scalar(con, "SELECT max(ordered_at) FROM orders")
        active = {
            days: scalar(
                con,
                f"SELECT count(DISTINCT customer_id) FROM orders WHERE {VALID_ORDER_SQL} "
                "AND ordered_at > ? AND ordered_at <= ?",
                [as_of - timedelta(days=days), as_of],
            )
            for days in (30, 90)
        }
        revenue = scalar(con, "SELECT sum(total) FROM orders WHERE status = 'completed' "
                              "AND kind IN ('sale', 'return')")
    finally:
        con.close()
    assert customers > 0 and orders > 0
    assert int(as_number(metric(app, "Customers"))) == customers
    assert int(as_number(metric(app, "Orders"))) == orders
    assert int(as_number(metric(app, "Active customers, 30 days"))) == active[30]
    assert int(as_number(metric(app, "Active customers, 90 days"))) == active[90]
    assert as_number(metric(app, "Net revenue")) == pytest.approx(revenue, abs=0.5)
    assert metric(app, "As of") == f"{as_of:%d %b %Y}"
    assert len(app.get("plotly_chart")) == 1


def test_overview_grain_selector_reruns_the_chart(demo_home, monkeypatch):
    app = run_app(demo_home.home, monkeypatch)
    grain = app.segmented_control(key="overview_grain")
    assert grain.value == "week"
    grain.set_value("month").run()
    assert_clean(app)
    assert app.segmented_control(key="overview_grain").value == "month"
    assert len(app.get("plotly_chart")) == 1


def test_data_quality_tables_equal_direct_sql(demo_home, monkeypatch):
    app = run_app(demo_home.home, monkeypatch, DATA_QUALITY)
    assert_clean(app)
    with state_engine(demo_home).connect() as state:
        runs = state.execute(select(func.count()).select_from(etl_runs)).scalar_one()
    con = connect_reader(demo_home)
    try:
        latest = scalar(con, "SELECT max(run_id) FROM etl_ledger")
        ledger_rows = scalar(con, "SELECT count(*) FROM etl_ledger WHERE run_id = ?", [latest])
        inserted = scalar(con, "SELECT sum(inserted) FROM etl_ledger WHERE run_id = ?", [latest])
        reasons = scalar(con, "SELECT count(DISTINCT (entity, reason)) FROM etl_quarantine")
        top_reason_rows = reasons and scalar(
            con, "SELECT count(*) AS n FROM etl_quarantine GROUP BY entity, reason "
                 "ORDER BY n DESC LIMIT 1")
        expectations = scalar(con, "SELECT count(*) FROM etl_expectations WHERE run_id = "
                                   "(SELECT max(run_id) FROM etl_expectations)")
    finally:
        con.close()

    runs_table = dataframe_with(app, "run_id", "status", "rows_in", "quarantined")
    assert len(runs_table) == runs
    assert runs_table.loc[runs_table["run_id"] == latest, "inserted"].item() == inserted

    ledger = dataframe_with(app, "entity", "source_files", "rows_in")
    assert len(ledger) == ledger_rows
    assert ledger["inserted"].sum() == inserted

    if reasons:
        assert len(app.selectbox(key="quarantine_reason").options) == reasons
        rows = dataframe_with(app, "source_file", "source_line")
        assert len(rows) == min(top_reason_rows, 100)
        if top_reason_rows > 100:  # the last page holds the remainder
            last = -(-top_reason_rows // 100)
            app.number_input(key="quarantine_page_0").set_value(last).run()
            assert_clean(app)
            rows = dataframe_with(app, "source_file", "source_line")
            assert len(rows) == top_reason_rows - 100 * (last - 1)
    assert len(dataframe_with(app, "result", "expectation", "rows_validated")) == expectations


@pytest.mark.parametrize("page", [None, DATA_QUALITY])
def test_empty_home_shows_how_to_load_data(tmp_path, monkeypatch, page):
    app = run_app(tmp_path / "nothing-here", monkeypatch, page)
    assert_clean(app)
    assert not app.metric
    messages = [info.value for info in app.info]
    assert len(messages) == 1 and "make demo" in messages[0] and "studio etl load" in messages[0]
    assert not (tmp_path / "nothing-here").exists()  # looking created nothing


def test_a_user_error_is_one_sentence_on_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_PORT", "eighty")
    app = run_app(tmp_path / "home", monkeypatch)
    assert not app.exception
    assert [error.value for error in app.error] == [
        "STUDIO_PORT must be a port number, not 'eighty'."
    ]


def test_a_newly_published_warehouse_is_picked_up(settings, monkeypatch):
    with writer(settings) as con:
        con.execute("INSERT INTO customers (customer_id) VALUES ('a'), ('b')")
        con.execute("INSERT INTO orders (order_id, customer_id, is_guest, ordered_at, kind, "
                    "status, total) VALUES ('o1', 'a', false, '2024-05-01', 'sale', "
                    "'completed', 10)")
    app = run_app(settings.home, monkeypatch)
    assert metric(app, "Customers") == "2"

    with writer(settings) as con:  # a second ETL run publishes a new file
        con.execute("INSERT INTO customers (customer_id) VALUES ('c')")
    app.run()
    assert_clean(app)
    assert metric(app, "Customers") == "3"


def test_a_failed_first_run_is_listed_before_any_warehouse_exists(settings, monkeypatch):
    message = "orders.csv: 9 of 10 orders rows (90.0%) failed the checks."
    with state_engine(settings).begin() as state:
        state.execute(etl_runs.insert(), [{
            "started_at": datetime(2024, 7, 1, 9), "finished_at": datetime(2024, 7, 1, 9, 1),
            "status": "failed", "mapping": "canonical", "paths": json.dumps(["/in"]),
            "pid": 1, "message": message,
        }])
    app = run_app(settings.home, monkeypatch, DATA_QUALITY)
    assert_clean(app)
    runs_table = dataframe_with(app, "run_id", "status", "rows_in", "quarantined")
    assert runs_table[["status", "message"]].values.tolist() == [["failed", message]]
    assert runs_table["rows_in"].isna().all()
    assert len(app.info) == 1 and "make demo" in app.info[0].value
