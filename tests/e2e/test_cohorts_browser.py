"""The Cohorts page in a real browser: weekly retention, its hover values and its SQL."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from studio.warehouse import connect_reader

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
VALID = "kind = 'sale' AND status = 'completed' AND NOT coalesce(is_guest, false)"


def wait_until_idle(page) -> None:
    """Wait until Streamlit has finished running the script after the last action."""
    page.wait_for_selector(IDLE, state="attached")


def open_cohorts(page, studio_url: str) -> None:
    """Open the studio and go to the Cohorts page through the sidebar, as a visitor does."""
    page.goto(studio_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Cohorts").click()
    page.get_by_role("heading", name="Cohorts", exact=True).wait_for()
    wait_until_idle(page)


def test_weekly_retention_heatmap_and_its_sql(studio_url, page, demo_home):
    with connect_reader(demo_home) as con:
        first_week, size = con.execute(f"""
            SELECT strftime(week, '%Y-%m-%d'), count(*) FROM (
                SELECT date_trunc('week', min(ordered_at)) AS week FROM orders
                WHERE {VALID} GROUP BY customer_id)
            GROUP BY week ORDER BY week LIMIT 1""").fetchall()[0]

    open_cohorts(page, studio_url)
    assert "/cohorts" in page.url

    page.locator(".st-key-cohorts_period").get_by_text("Week", exact=True).click()
    expect(page.get_by_role("heading", name="Retention by first-order period (weeks)")
           ).to_be_visible()
    wait_until_idle(page)
    chart = page.locator(".st-key-retention_matrix_chart .js-plotly-plot")
    expect(chart.locator(".heatmaplayer")).to_have_count(1)

    # hover the top-left cell: the first weekly cohort at offset 0
    plot = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(plot["x"] + 3, plot["y"] + 3)
    hover = chart.locator(".hovertext")
    expect(hover).to_contain_text(f"Cohort {first_week}, week 0")
    expect(hover).to_contain_text(f"Customers: {size:,}")

    page.get_by_text("SQL behind this chart").first.click()
    code = page.get_by_test_id("stCode").first
    expect(code).to_contain_text("date_trunc('week'")
    expect(code).to_contain_text("FROM orders")
    assert not page.get_by_test_id("stException").count()


def test_repeat_purchase_curve_draws_a_line_per_cohort(studio_url, page, demo_home):
    with connect_reader(demo_home) as con:
        cohorts = con.execute(f"""
            SELECT count(DISTINCT date_trunc('month', first_at)) FROM (
                SELECT min(ordered_at) AS first_at FROM orders WHERE {VALID}
                GROUP BY customer_id)""").fetchall()[0][0]

    open_cohorts(page, studio_url)
    page.get_by_role("tab", name="Repeat purchase").click()
    wait_until_idle(page)
    chart = page.locator(".st-key-repeat_purchase_curve_chart .js-plotly-plot")
    # the points travel as typed arrays: a line with many vertices shows they were read
    lines = chart.locator(".scatterlayer .trace path.js-line")
    expect(lines).to_have_count(cohorts)
    assert lines.first.get_attribute("d").count("L") > 20
    assert not page.get_by_test_id("stException").count()
