"""The studio in a real browser: served by ``studio serve``, read through Chromium."""

from __future__ import annotations

import pytest

from studio.warehouse import connect_reader

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def wait_until_idle(page) -> None:
    """Wait until Streamlit has finished running the script after the last action."""
    page.wait_for_selector(IDLE, state="attached")


def test_overview_then_data_quality(studio_url, page, demo_home):
    con = connect_reader(demo_home)
    try:
        customers = con.sql("SELECT count(*) FROM customers").fetchall()[0][0]
    finally:
        con.close()

    page.goto(studio_url)
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Customers", exact=True))
    metric.wait_for()
    wait_until_idle(page)
    shown = metric.get_by_test_id("stMetricValue").inner_text()
    assert int(shown.replace(",", "")) == customers

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data quality").click()
    page.get_by_role("heading", name="Data quality").wait_for()
    wait_until_idle(page)
    assert "/data_quality" in page.url
    page.get_by_role("heading", name="ETL runs").wait_for()
    runs_table = page.locator(".st-key-etl_runs").get_by_test_id("stDataFrame")
    runs_table.wait_for()
    assert runs_table.is_visible()
    assert not page.get_by_test_id("stException").count()
