"""The Models page as Streamlit runs it (AppTest), checked against the registry and the models.

A purchase model is trained once on a copy of the demo store and scored; the page's
figures are held against its card, an independent refit's calibration table, LightGBM's
own raw margin and the ``scores`` table. Retraining runs the real background job.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from models.backtest import Target, fit_origin, load_window
from models.metrics import calibration_by_decile
from models.registry import champion_version, list_versions, load_model
from models.scoring import score_customers
from models.training import train_target
from studio import jobs, model_report
from studio.config import Settings, load_settings
from studio.warehouse import connect_reader
from tests.app.page_checks import assert_clean
from tests.conftest import make_settings

pytestmark = pytest.mark.app

PAGE = "../../pages/predictive_models.py"  # relative to this file, as AppTest.from_file resolves it
TIMEOUT = 60
TARGET = "purchase_90d"


@pytest.fixture(scope="module")
def trained_home(demo_home, tmp_path_factory) -> Settings:
    """A demo home copy with purchase_90d trained on one backtest origin and scored."""
    home = tmp_path_factory.mktemp("models-page") / "home"
    shutil.copytree(demo_home.home, home)
    settings = make_settings(home)
    with connect_reader(settings) as con:
        train_target(settings, con, Target("purchase", 90), origins=1)
    score_customers(settings, TARGET)
    return settings


@pytest.fixture
def writable_home(trained_home, tmp_path) -> Settings:
    """A copy of the trained home, for tests that retrain: the module's home stays as is."""
    home = tmp_path / "home"
    shutil.copytree(trained_home.home, home)
    return make_settings(home)


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert_clean(app)
    return app


def open_section(app: AppTest, section: str) -> AppTest:
    app.session_state[f"models_section_{TARGET}"] = section
    app.run()
    assert_clean(app)
    return app


def metric(app: AppTest, label: str) -> str:
    matches = [m.value for m in app.metric if m.label == label]
    assert len(matches) == 1, f"one metric labelled {label!r} expected, got {matches}"
    return matches[0]


def table(app: AppTest, *columns: str):
    """The one table on the page with these columns (AppTest keeps no table keys)."""
    frames = [d.value for d in app.dataframe if set(columns) <= set(d.value.columns)]
    assert len(frames) == 1, f"one table with columns {columns} expected, got {len(frames)}"
    return frames[0]


def card_fact(app: AppTest, field: str) -> str:
    [facts] = [t.value for t in app.table if "Field" in t.value.columns]
    return facts.loc[facts["Field"] == field, "Value"].item()


def retrain(app: AppTest, horizon: int) -> jobs.Job:
    """Start a one-origin purchase retrain on the page and wait for its background job."""
    app.selectbox(key="models_retrain_kind").set_value("purchase")
    app.number_input(key="models_retrain_horizon").set_value(horizon)
    app.number_input(key="models_retrain_origins").set_value(1)
    app.button(key="models_retrain").click().run()
    job = jobs.current_job(load_settings())
    assert job is not None and job.title == f"Retraining purchase_{horizon}d"
    assert job.wait(120), "the retrain did not finish"
    app.run()
    return job


def test_an_untrained_store_shows_how_to_train(demo_home, monkeypatch):
    app = open_page(demo_home.home, monkeypatch)
    assert [i.value for i in app.info] == [model_report.NO_MODELS]
    assert "studio models train --target purchase --horizon 90" in model_report.NO_MODELS
    assert app.button(key="models_retrain").label == "Retrain"


def test_the_card_shows_the_champions_backtest_auroc(trained_home, monkeypatch):
    card = load_model(trained_home, champion_version(trained_home, TARGET)).card
    app = open_page(trained_home.home, monkeypatch)
    assert [t.label for t in app.tabs][:1] == [TARGET]
    assert metric(app, "Backtest AUROC") == f"{card['champion_metrics']['auroc']:.3f}"
    assert metric(app, "Champion") == card["candidate"] == "lightgbm"
    assert metric(app, "Training rows") == f"{card['training_rows']:,}"
    assert card_fact(app, "Version") == card["version"]
    assert card_fact(app, "Scores from") == card["cutoffs"]["scoring_from"]

    app = open_section(app, "Backtest")
    backtest = table(app, "test_cutoff", "candidate", "auroc")
    assert len(backtest) == len(card["backtest"]) == 4  # one origin, four candidates
    champion = backtest[backtest["champion"]]
    assert champion["candidate"].tolist() == ["lightgbm"]
    assert champion["auroc"].item() == pytest.approx(card["champion_metrics"]["auroc"],
                                                     abs=1e-12)


def test_the_calibration_table_matches_an_independent_refit(trained_home, monkeypatch):
    card = load_model(trained_home, champion_version(trained_home, TARGET)).card
    [row] = [r for r in card["backtest"] if r["champion"]]
    app = open_section(open_page(trained_home.home, monkeypatch), "Backtest")
    shown = table(app, "decile", "count", "mean_prediction", "actual_rate")
    assert not app.warning  # the refit reproduced the card's figures

    target, origin = Target("purchase", 90), model_report.newest_origin(card)
    with connect_reader(trained_home) as con:
        fitted = fit_origin(con, target, origin, ("lightgbm",))
        test = load_window(con, target, origin.test_cutoff)
    predictions = fitted.candidates["lightgbm"].probabilities(test.features)
    expected = calibration_by_decile(test.labels, predictions)

    assert str(origin.test_cutoff) == row["test_cutoff"]
    assert shown["decile"].tolist() == expected["decile"].to_list()
    assert shown["count"].tolist() == expected["count"].to_list()
    np.testing.assert_allclose(shown["mean_prediction"], expected["mean_prediction"],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(shown["actual_rate"], expected["actual_rate"], rtol=0,
                               atol=1e-12)
    # and the table agrees with the figures training wrote into the card
    assert shown["count"].sum() == row["n"]
    assert (shown["count"] * shown["actual_rate"]).sum() == pytest.approx(row["positives"])


def test_a_customers_contributions_add_up_to_the_models_log_odds(trained_home, monkeypatch):
    version = champion_version(trained_home, TARGET)
    with connect_reader(trained_home) as con:
        customer, stored = con.execute(
            "SELECT customer_id, score FROM scores WHERE target = ? "
            "ORDER BY score DESC, customer_id LIMIT 1", [TARGET]).fetchall()[0]
        features = model_report.scoring_features(con)
    app = open_section(open_page(trained_home.home, monkeypatch), "Drivers")
    assert len(table(app, "feature", "mean_abs_contribution")) == len(features.columns) - 1

    app.text_input(key=f"models_customer_{TARGET}").input(customer).run()
    assert_clean(app)
    shown = table(app, "feature", "contribution")
    booster = load_model(trained_home, version).fitted.model
    row = features.filter(features["customer_id"] == customer)
    margin = booster.booster.predict(booster.codes.matrix(row), raw_score=True,
                                     num_iteration=booster.booster.best_iteration)[0]
    assert shown["feature"].iloc[0] == "(baseline)"
    assert shown["contribution"].sum() == pytest.approx(margin, abs=1e-9)
    assert metric(app, "Log-odds") == f"{margin:+.3f}"
    assert metric(app, "Score") == f"{stored:.1%}"  # what the scoring job wrote


def test_retrain_registers_a_new_champion_and_roll_back_restores_the_old(
        writable_home, monkeypatch):
    before = champion_version(writable_home, TARGET)
    app = open_page(writable_home.home, monkeypatch)
    job = retrain(app, 90)
    assert_clean(app)
    assert job.status == "done", job.message

    after = champion_version(writable_home, TARGET)
    assert after != before
    assert {row["version"] for row in list_versions(writable_home)} == {before, after}
    assert card_fact(app, "Version") == after
    assert [s.value for s in app.success][0].startswith(f"Trained {after}: the champion is")
    with connect_reader(writable_home) as con:
        assert model_report.latest_score_run(con, TARGET).model_version == after

    app.button(key=f"models_rollback_{TARGET}").click().run()
    assert_clean(app)
    assert not app.success  # a job's outcome shows once
    assert champion_version(writable_home, TARGET) == before
    assert card_fact(app, "Version") == before


def test_a_retrain_that_fails_says_why_in_one_sentence(writable_home, monkeypatch):
    app = open_page(writable_home.home, monkeypatch)
    job = retrain(app, 365)
    assert job.status == "failed"
    errors = [e.value for e in app.error]
    assert errors == [job.message]
    assert errors[0].startswith("Too little history to train purchase_365d")
    assert errors[0].count(". ") == 0  # one sentence
    assert model_report.registered_targets(writable_home) == [TARGET]
