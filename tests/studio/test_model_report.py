"""The Models page's library: card tables, recomputed curves, scores, drivers, background jobs.

A purchase model is trained once on a copy of the demo store (two backtest origins,
LightGBM against the heuristic, so the champion has contributions) and scored; the report's
figures are then held against the card written at training time, the ``scores`` table and
LightGBM's own raw margin.
"""

from __future__ import annotations

import shutil
from datetime import date

import numpy as np
import polars as pl
import pytest

from models.backtest import Target
from models.features import FEATURE_NAMES, FEATURES
from models.registry import load_model
from models.scoring import score_customers
from models.training import train_target
from studio import model_report as report
from studio.errors import UserError
from studio.warehouse import connect_reader
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def trained(demo_home, tmp_path_factory):
    """A demo home copy with purchase_90d trained (LightGBM champion) and scored."""
    home = tmp_path_factory.mktemp("report") / "home"
    shutil.copytree(demo_home.home, home)
    settings = make_settings(home)
    with connect_reader(settings) as con:
        result = train_target(settings, con, Target("purchase", 90), origins=2,
                              kinds=("lightgbm", "heuristic"))
    score_customers(settings, "purchase_90d")
    con = connect_reader(settings)
    yield settings, con, load_model(settings, result.version)
    con.close()


def newest_champion_row(card: dict) -> dict:
    newest = max(row["test_cutoff"] for row in card["backtest"])
    [row] = [r for r in card["backtest"] if r["champion"] and r["test_cutoff"] == newest]
    return row


def test_the_backtest_table_holds_every_candidate_and_origin_of_the_card(trained):
    settings, _con, model = trained
    card = model.card
    assert card["candidate"] == "lightgbm"
    table = report.backtest_table(card)
    assert table.height == 4  # two origins x two candidates
    assert table["test_cutoff"].n_unique() == 2
    champions = table.filter(pl.col("champion"))
    assert set(champions["candidate"]) == {"lightgbm"}
    # training averaged these rows into the card's headline figure
    assert champions["auroc"].mean() == pytest.approx(card["champion_metrics"]["auroc"],
                                                      abs=1e-12)
    first = table.row(0, named=True)
    assert first["champion"] and first["test_cutoff"] == max(table["test_cutoff"])
    assert "purchase_90d" in report.registered_targets(settings)
    assert report.shown_version(settings, "purchase_90d") == model.version
    facts = dict(report.card_facts(card).iter_rows())
    assert facts["Version"] == model.version
    assert facts["Data fingerprint"].startswith(card["data"]["digest"])
    assert facts["Training rows"] == f"{card['training_rows']:,}"


@pytest.mark.parametrize("stored", [True, False], ids=["curves from the card", "refitted"])
def test_champion_curves_reproduce_the_cards_newest_backtest_row(trained, stored):
    # New cards carry their curves; an older card without them gets the champion refitted,
    # which must give the same numbers on an unchanged warehouse.
    _settings, con, model = trained
    row = newest_champion_row(model.card)
    card = model.card if stored else {k: v for k, v in model.card.items()
                                      if k != "champion_curves"}
    assert ("champion_curves" in card) == stored
    curves = report.champion_curves(con, card)
    assert curves.origin.test_cutoff == date.fromisoformat(row["test_cutoff"])
    assert curves.recorded == row and curves.matches_card
    for name in ("auroc", "pr_auc", "log_loss", "brier", "lift_at_10", "capture_at_20"):
        assert curves.metrics[name] == pytest.approx(row[name], abs=1e-12), name
    calibration = curves.calibration
    assert calibration["count"].sum() == row["n"]
    weighted = (calibration["count"] * calibration["mean_prediction"]).sum() / row["n"]
    assert weighted == pytest.approx(row["mean_prediction"], abs=1e-12)
    positives = (calibration["count"] * calibration["actual_rate"]).sum()
    assert positives == pytest.approx(row["positives"])
    at_ten = curves.lift.filter(pl.col("fraction").is_close(0.1))
    assert at_ten["lift"][0] == pytest.approx(row["lift_at_10"], abs=1e-12)


def test_the_score_run_summary_counts_every_scored_customer(trained, demo_home):
    _settings, con, model = trained
    scores = con.execute("SELECT score, decile FROM scores WHERE target = 'purchase_90d'"
                         ).fetchnumpy()
    run = report.latest_score_run(con, "purchase_90d")
    assert run.model_version == model.version
    assert run.customers == len(scores["score"]) > 2_000
    assert run.mean_score == pytest.approx(float(np.mean(scores["score"])))
    counts, _edges = np.histogram(scores["score"], bins=20, range=(0.0, 1.0))
    assert run.histogram["customers"].to_list() == counts.tolist()
    assert run.deciles["customers"].to_list() == np.bincount(scores["decile"])[1:].tolist()
    assert report.latest_score_run(con, "churn_90d") is None
    with connect_reader(demo_home) as untouched:  # never scored: no scores table at all
        assert report.latest_score_run(untouched, "purchase_90d") is None


def test_importance_is_zero_exactly_for_the_features_no_tree_splits_on(trained):
    _settings, con, model = trained
    features = report.scoring_features(con)
    importance = report.feature_importance(model, features)
    splits = dict(zip(FEATURE_NAMES, model.fitted.model.booster.feature_importance("split"),
                      strict=True))
    assert importance.height == len(FEATURES)
    assert importance["mean_abs_contribution"].is_sorted(descending=True)
    for feature, value in importance.select("feature", "mean_abs_contribution").iter_rows():
        assert (value > 0) == (splits[feature] > 0), feature
    meanings = {spec.name: spec.meaning for spec in FEATURES}
    assert all(meanings[f] == m for f, m in importance.select("feature", "meaning").iter_rows())


def test_a_customers_contributions_add_up_to_the_boosters_raw_margin(trained):
    _settings, con, model = trained
    features = report.scoring_features(con)
    stored = dict(con.execute("SELECT customer_id, score FROM scores "
                              "WHERE target = 'purchase_90d'").fetchall())
    booster, codes = model.fitted.model.booster, model.fitted.model.codes
    for index in (0, len(features) // 2, len(features) - 1):
        customer = features["customer_id"][index]
        explanation = report.explain_customer(con, model, features, customer)
        margin = booster.predict(codes.matrix(features[index:index + 1]), raw_score=True,
                                 num_iteration=booster.best_iteration)[0]
        table = explanation.contributions
        assert table["feature"][0] == "(baseline)"
        assert table.height == len(FEATURE_NAMES) + 1
        assert table["contribution"].sum() == pytest.approx(margin, abs=1e-9)
        assert explanation.log_odds == pytest.approx(margin, abs=1e-9)
        assert explanation.score == pytest.approx(stored[customer], abs=1e-12)
        pushes = table["contribution"][1:].abs()
        assert pushes.is_sorted(descending=True)


def test_explaining_someone_the_models_do_not_score_says_why(trained):
    _settings, con, model = trained
    features = report.scoring_features(con)
    never_bought = con.execute(
        "SELECT customer_id FROM customers EXCEPT SELECT customer_id FROM orders "
        "WHERE kind = 'sale' AND status = 'completed' AND NOT is_guest ORDER BY 1 LIMIT 1"
    ).fetchall()[0][0]
    assert never_bought not in set(features["customer_id"])
    with pytest.raises(UserError, match="has no valid order yet"):
        report.explain_customer(con, model, features, never_bought)
    with pytest.raises(UserError, match="There is no customer 'nobody'"):
        report.explain_customer(con, model, features, "nobody")


def test_a_model_without_contributions_shows_the_customers_features(trained):
    settings, con, _model = trained
    with connect_reader(settings) as training_con:
        result = train_target(settings, training_con, Target("purchase", 30), origins=1,
                              kinds=("heuristic",))
    model = load_model(settings, result.version)
    assert not report.has_contributions(model)
    features = report.scoring_features(con)
    customer = features["customer_id"][7]
    explanation = report.explain_customer(con, model, features, customer)
    assert explanation.contributions is None and explanation.log_odds is None
    shown = dict(explanation.features.select("feature", "value").iter_rows())
    assert shown["frequency"] == str(features["frequency"][7])
    assert explanation.score == pytest.approx(model.fitted.probabilities(features[7:8])[0])
    with pytest.raises(UserError, match="LightGBM models only"):
        report.feature_importance(model, features)


def test_a_spend_model_reads_in_money(trained):
    settings, _con, _model = trained
    with connect_reader(settings) as training_con:
        result = train_target(settings, training_con, Target("spend", 90), origins=1)
    score_customers(settings, "spend_90d")
    card = load_model(settings, result.version).card
    assert report.predicts_money(card)
    labels = [figure.label for figure in report.headline(card)]
    assert labels == ["Champion", "Mean absolute error", "Spearman", "Predicted / actual"]
    table = report.backtest_table(card)
    assert {"mae", "spearman", "total_ratio"} <= set(table.columns)
    assert "auroc" not in table.columns and table.height == len(card["backtest"])
    facts = dict(report.card_facts(card).iter_rows())
    assert facts["Calibration"].startswith("none") and "Training rows" not in facts

    with connect_reader(settings) as con:  # scoring published a new warehouse
        spend = con.execute("SELECT score FROM scores WHERE target = 'spend_90d'"
                            ).fetchnumpy()["score"]
        run = report.latest_score_run(con, "spend_90d", upper=None)
    assert run.histogram["customers"].sum() == run.customers == len(spend)
    assert run.histogram["bin_end"][-1] == pytest.approx(np.quantile(spend, 0.99))
    assert run.histogram["customers"][-1] == int(
        (spend >= run.histogram["bin_start"][-1]).sum())


# ---------------------------------------------------------------- background retrain


def test_a_retrain_with_too_little_history_fails_on_the_data_gate(demo_home, tmp_path):
    shutil.copytree(demo_home.home, tmp_path / "home")
    settings = make_settings(tmp_path / "home")
    job = report.start_retrain(settings, Target("purchase", 365), origins=1)
    assert job.wait(60)
    assert job.status == "failed"
    assert job.message.startswith("Too little history to train purchase_365d")
    assert report.registered_targets(settings) == []
    with pytest.raises(UserError, match="13 backtest origins"):
        report.start_retrain(settings, Target("purchase", 90), origins=13)
