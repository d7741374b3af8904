"""The Models page in a real browser, on a home with a trained and scored model."""

from __future__ import annotations

import shutil

import pytest

from models.backtest import Target
from models.scoring import score_customers
from models.training import train_target
from studio.warehouse import connect_reader
from tests.conftest import make_settings
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


@pytest.fixture(scope="module")
def trained_url(demo_home, tmp_path_factory):
    """A copy of the demo home with purchase_90d trained and scored, served."""
    settings = make_settings(tmp_path_factory.mktemp("models-e2e") / "home")
    shutil.copyfile(demo_home.warehouse_path, settings.warehouse_path)
    with connect_reader(settings) as con:
        result = train_target(settings, con, Target("purchase", 90), origins=1)
    score_customers(settings, "purchase_90d")
    with serve(settings.home, tmp_path_factory.mktemp("models-server")) as url:
        yield url, result.card


def test_the_champion_card_shows_the_backtest_figures(trained_url, page):
    url, card = trained_url
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Models").click()
    page.get_by_role("heading", name="Models").wait_for()
    page.wait_for_selector(IDLE, state="attached")

    def metric(label: str) -> str:
        box = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
        return box.first.get_by_test_id("stMetricValue").inner_text()

    assert metric("Champion") == card["candidate"]
    assert metric("Backtest AUROC") == f"{card['champion_metrics']['auroc']:.3f}"
    assert metric("Training rows") == f"{card['training_rows']:,}"
    assert "Traceback" not in page.content()
