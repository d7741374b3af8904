"""The Exports page in a real browser: dry run, export to CSV, download it, see the history."""

from __future__ import annotations

import polars as pl
import pytest
from playwright.sync_api import expect

from studio.audiences import history
from tests.audiences.conftest import benelux_home
from tests.audiences.reference import consented_ids, ids_in_countries
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


@pytest.fixture(scope="module")
def exports_home(demo_home, tmp_path_factory):
    """A served copy of the demo warehouse with the saved segment "Benelux"."""
    settings = benelux_home(demo_home, tmp_path_factory.mktemp("exports-e2e") / "home")
    with serve(settings.home, tmp_path_factory.mktemp("exports-server")) as url:
        yield settings, url


def wait_until_idle(page) -> None:
    page.wait_for_selector(IDLE, state="attached")


def metric_value(page, box: str, label: str):
    metric = page.locator(f".st-key-{box}").get_by_test_id("stMetric").filter(
        has=page.get_by_text(label, exact=True))
    return metric.get_by_test_id("stMetricValue")


def test_dry_run_then_export_to_csv_and_see_the_history(exports_home, page, tmp_path):
    settings, url = exports_home
    consented = ids_in_countries(settings, ["NL", "BE"]) & consented_ids(settings)
    assert 0 < len(consented) < 639

    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Exports").click()
    page.get_by_role("heading", name="Exports").wait_for()
    wait_until_idle(page)
    assert "/exports" in page.url

    page.locator(".st-key-exports_dry_run button").click()
    expect(metric_value(page, "exports_result_box", "Consented")).to_have_text(
        f"{len(consented):,}")
    wait_until_idle(page)
    assert metric_value(page, "exports_result_box", "Matched").inner_text() == "639"
    assert metric_value(page, "exports_result_box", "To add").inner_text() == (
        f"{len(consented):,}")
    expect(page.get_by_text("nothing was sent")).to_be_visible()

    page.locator(".st-key-exports_run button").click()
    expect(metric_value(page, "exports_result_box", "Sent")).to_have_text(f"{len(consented):,}")
    wait_until_idle(page)
    runs = history.list_runs(settings)
    assert [(r["dry_run"], r["status"]) for r in runs] == [(False, "succeeded"),
                                                          (True, "succeeded")]
    with page.expect_download() as download:
        page.locator(".st-key-exports_download button").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(f"-run-{runs[0]['run_id']}.csv")
    assert sorted(pl.read_csv(saved, infer_schema=False)["customer_id"]) == sorted(consented)

    # the history picks the new run and shows its reconciliation
    picker = page.locator(f".st-key-exports_history_run_{runs[0]['run_id']} input")
    expect(picker).to_have_value(f"Run {runs[0]['run_id']} · Benelux v1 → "
                                 f"{runs[0]['destination']} · succeeded")
    assert metric_value(page, "exports_run_box", "Sent").inner_text() == f"{len(consented):,}"
    assert metric_value(page, "exports_run_box", "Dead").inner_text() == "0"
    assert not page.get_by_test_id("stException").count()
