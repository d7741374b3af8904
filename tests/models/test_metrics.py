"""The model metrics against scikit-learn, and lift, capture and deciles worked by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from models.metrics import (
    calibration_by_decile,
    evaluate,
    lift_and_capture,
    lift_curve,
)
from studio.errors import UserError


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = 2_000
    y = rng.random(n) < 0.3
    # Rounded scores make many ties, the case where implementations differ.
    score = np.round(np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999), 2)
    report = evaluate(y.astype(int), score)
    assert report["auroc"] == pytest.approx(roc_auc_score(y, score), rel=1e-12)
    assert report["pr_auc"] == pytest.approx(average_precision_score(y, score), rel=1e-12)
    assert report["log_loss"] == pytest.approx(log_loss(y, score), rel=1e-12)
    assert report["brier"] == pytest.approx(brier_score_loss(y, score), rel=1e-12)
    assert report["n"] == n and report["positives"] == int(y.sum())
    assert report["actual_rate"] == pytest.approx(y.mean())
    assert report["mean_prediction"] == pytest.approx(score.mean())


def test_lift_and_capture_by_hand():
    # Ten customers, distinct scores; the top 20% are the first two: one buyer of four.
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
    score = np.arange(10, 0, -1) / 10
    lift, capture = lift_and_capture(y, score, 0.2)
    assert capture == pytest.approx(1 / 4)
    assert lift == pytest.approx((1 / 2) / (4 / 10))
    report = evaluate(y, score)
    assert report["capture_at_10"] == pytest.approx(1 / 4)  # the single top customer buys
    assert report["lift_at_10"] == pytest.approx(1 / 0.4)


def test_ties_at_the_cut_off_share_the_remaining_slots():
    # The top 20% of ten is two customers: one scores 0.9 (a buyer), then three tie at 0.5
    # holding two buyers, so the last slot holds 2/3 of a buyer on average.
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1])
    score = np.array([0.9, 0.5, 0.5, 0.5, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1])
    lift, capture = lift_and_capture(y, score, 0.2)
    assert capture == pytest.approx((1 + 2 / 3) / 4)
    assert lift == pytest.approx(((1 + 2 / 3) / 2) / 0.4)
    # Row order changes nothing.
    order = np.random.default_rng(0).permutation(10)
    assert lift_and_capture(y[order], score[order], 0.2) == pytest.approx((lift, capture))


def test_ranking_scores_have_no_probability_metrics():
    y = np.array([0, 1, 0, 1, 1, 0])
    points = np.array([3, 9, 1, 7, 7, 2])
    report = evaluate(y, points, is_probability=False)
    assert report["log_loss"] is None and report["brier"] is None
    assert report["mean_prediction"] is None
    assert report["auroc"] == pytest.approx(1.0)
    with pytest.raises(UserError, match="is_probability=False"):
        evaluate(y, points)


def test_calibration_deciles_run_from_the_highest_scores():
    rng = np.random.default_rng(3)
    score = rng.random(1_000)
    y = (rng.random(1_000) < score).astype(int)
    table = calibration_by_decile(y, score)
    assert table["decile"].to_list() == list(range(1, 11))
    assert table["count"].to_list() == [100] * 10
    top = np.argsort(-score)[:100]
    first = table.row(0, named=True)
    assert first["mean_prediction"] == pytest.approx(score[top].mean())
    assert first["actual_rate"] == pytest.approx(y[top].mean())
    assert first["min_score"] == pytest.approx(np.sort(score)[-100])
    assert table["mean_prediction"].is_sorted(descending=True)


def test_tied_scores_share_a_decile():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    score = np.array([0.8, 0.8, 0.8, 0.8, 0.3, 0.3, 0.1, 0.1, 0.1, 0.1])
    table = calibration_by_decile(y, score)
    # 40% score at least 0.8 -> decile 4; 60% at least 0.3 -> decile 6; the rest decile 10.
    assert table.select("decile", "count", "actual_rate").rows() == [
        (4, 4, 0.5), (6, 2, 0.5), (10, 4, 0.0)]


def test_lift_curve_reaches_every_positive_at_the_end():
    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.2).astype(int)
    y[0] = 1
    score = rng.random(500) + y
    curve = lift_curve(y, score, points=20)
    assert isinstance(curve, pl.DataFrame) and curve.height == 20
    assert curve["capture"].is_sorted() and curve["capture"][-1] == pytest.approx(1.0)
    assert curve["lift"][-1] == pytest.approx(1.0)
    lift, capture = lift_and_capture(y, score, 0.25)
    assert curve.filter(pl.col("fraction") == 0.25)["capture"][0] == pytest.approx(capture)


@pytest.mark.parametrize(("y", "score", "fragment"), [
    ([0, 1], [0.2], "2 labels but 1 scores"),
    ([0, 2], [0.2, 0.4], "0 or 1"),
    ([1, 1], [0.2, 0.4], "only one class"),
    ([0, 1], [0.2, float("nan")], "missing"),
])
def test_bad_inputs_are_user_errors(y, score, fragment):
    with pytest.raises(UserError, match=fragment):
        evaluate(y, score)
