"""The A/B results page in a real browser: pick a campaign, read its figures, download them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import expect
from polars.testing import assert_frame_equal

from studio.ab_report import campaign_choices, format_value
from studio.experiments.analysis import analyze_experiment
from studio.experiments.campaigns import aggregate_campaign
from studio.experiments.reading import describe_result, describe_srm, format_share, result_frame
from studio.warehouse import connect_reader

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CAMPAIGN = "CMP004"


def wait_until_idle(page) -> None:
    """Wait until Streamlit has finished running the script after the last action."""
    page.wait_for_selector(IDLE, state="attached")


def metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))


def test_a_campaign_reads_like_the_library(studio_url, page, demo_home):
    con = connect_reader(demo_home)
    try:
        label = campaign_choices(con)[CAMPAIGN]
        result = analyze_experiment(aggregate_campaign(con, CAMPAIGN))
    finally:
        con.close()
    conversion = result.comparison("conversion_rate", "B")

    page.goto(studio_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="A/B results").click()
    page.get_by_role("heading", name="A/B results").wait_for()
    wait_until_idle(page)
    assert "/ab_results" in page.url

    box = page.locator(".st-key-ab_campaign input")
    box.click()
    box.fill(CAMPAIGN)
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.get_by_text(describe_srm(result), exact=True)).to_be_visible()
    wait_until_idle(page)

    card = metric(page, "Conversion rate · B")
    expect(card.get_by_test_id("stMetricValue")).to_have_text(
        format_value(conversion.metric, conversion.variant_mean))
    expect(card.get_by_test_id("stMetricDelta")).to_have_text(
        f"{conversion.relative.estimate:+.1%}")
    expect(page.get_by_text(
        f"Chance to win: {format_share(conversion.bayesian.chance_to_win)}")).to_be_visible()
    for line in describe_result(result)[1:]:  # lifts with intervals, then the notes
        expect(page.get_by_text(line, exact=True)).to_be_visible()
    assert page.locator(".st-key-ab_lift_chart").count() == 1

    with page.expect_download() as download:
        page.locator(".st-key-ab_download button").click()
    assert download.value.suggested_filename == f"ab-{CAMPAIGN}.csv"
    # the same rows and text; numbers to 1e-12, since DuckDB sums on several threads
    # and the last digit of a float may differ from one run of the query to the next
    assert_frame_equal(pl.read_csv(Path(download.value.path())),
                       pl.read_csv(result_frame(result).write_csv().encode()),
                       rel_tol=1e-12, abs_tol=1e-12)
    assert not page.get_by_test_id("stException").count()
