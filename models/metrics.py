"""How well a purchase or churn score ranks and calibrates: the metrics every candidate reports.

All metrics are computed here with numpy (the tests hold them against scikit-learn) so that
ties are treated one documented way everywhere:

* AUROC counts a tied positive-negative pair as half right (the Mann-Whitney statistic).
* Average precision steps through distinct scores, a group of tied scores at a time.
* Top-k% lift and capture are what random tie-breaking would give on average: customers
  strictly above the cut-off score count fully, and the slots left at the cut-off are shared
  in proportion by the customers tied there. The result never depends on row order.
* Deciles follow the RFM convention: decile = ceil(10 * share of customers scoring at least
  as high), so decile 1 holds the highest scores and tied customers share a decile (deciles
  may then differ in size, and some may be empty and absent).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.stats import rankdata

from studio.errors import UserError

LOG_LOSS_EPSILON = np.finfo(float).eps
"""Probabilities are clipped to [eps, 1 - eps] before log-loss, as scikit-learn does."""


def evaluate(y_true, y_score, *, is_probability: bool = True) -> dict[str, float | int | None]:
    """The standard report for a binary score.

    Parameters
    ----------
    y_true
        0/1 outcomes (1 = bought, or churned).
    y_score
        Scores, higher meaning more likely; probabilities unless ``is_probability`` is False.
    is_probability
        False for scores that only rank (a heuristic's points): log-loss, Brier and the mean
        prediction are then None, since they only mean something for probabilities.

    Returns
    -------
    dict
        ``auroc``, ``pr_auc`` (average precision), ``log_loss``, ``brier``, ``lift_at_10``,
        ``capture_at_10``, ``lift_at_20``, ``capture_at_20``, ``mean_prediction``,
        ``actual_rate``, ``n``, ``positives``.
    """
    y, score = _validate(y_true, y_score, is_probability)
    report: dict[str, float | int | None] = {
        "auroc": auroc(y, score),
        "pr_auc": average_precision(y, score),
        "log_loss": None,
        "brier": None,
    }
    if is_probability:
        clipped = np.clip(score, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
        report["log_loss"] = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log1p(-clipped)))
        report["brier"] = float(np.mean((score - y) ** 2))
    for percent in (10, 20):
        lift, capture = lift_and_capture(y, score, percent / 100)
        report[f"lift_at_{percent}"] = lift
        report[f"capture_at_{percent}"] = capture
    report["mean_prediction"] = float(score.mean()) if is_probability else None
    report["actual_rate"] = float(y.mean())
    report["n"] = int(y.size)
    report["positives"] = int(y.sum())
    return report


def auroc(y_true, y_score) -> float:
    """Area under the ROC curve: P(a random positive outscores a random negative), ties half."""
    y, score = _validate(y_true, y_score, False)
    ranks = rankdata(score)  # average ranks: a tie counts half
    positives = int(y.sum())
    negatives = y.size - positives
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def average_precision(y_true, y_score) -> float:
    """Average precision: sum over distinct thresholds of (recall gain) * precision."""
    y, score = _validate(y_true, y_score, False)
    order = np.argsort(-score, kind="stable")
    score, y = score[order], y[order]
    last_of_group = np.r_[score[1:] != score[:-1], True]
    true_positives = np.cumsum(y)[last_of_group]
    flagged = np.flatnonzero(last_of_group) + 1
    precision = true_positives / flagged
    recall = true_positives / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def lift_and_capture(y_true, y_score, fraction: float) -> tuple[float, float]:
    """Lift and capture of the top ``fraction`` of customers by score.

    The top holds ceil(fraction * n) customers; customers tied at the cut-off share the
    remaining slots in proportion (the expectation under random tie-breaking).
    Lift = positive rate in the top / overall positive rate; capture = share of all
    positives that fall in the top.
    """
    y, score = _validate(y_true, y_score, False)
    if not 0 < fraction <= 1:
        raise UserError(f"The top fraction must be in (0, 1], not {fraction}.")
    slots = max(1, math.ceil(fraction * y.size - 1e-9))
    positives_in_top = _expected_positives_in_top(y, score, slots)
    capture = positives_in_top / y.sum()
    lift = (positives_in_top / slots) / y.mean()
    return float(lift), float(capture)


def _expected_positives_in_top(y: np.ndarray, score: np.ndarray, slots: int) -> float:
    cut = np.sort(score)[::-1][slots - 1]
    above = score > cut
    tied = score == cut
    shared = slots - int(above.sum())
    return float(y[above].sum() + shared * y[tied].sum() / tied.sum())


def lift_curve(y_true, y_score, *, points: int = 100) -> pl.DataFrame:
    """Capture and lift at each of ``points`` evenly spaced top fractions, for charts.

    Returns
    -------
    polars.DataFrame
        ``fraction`` (share of customers targeted, 1/points ... 1), ``capture`` (share of
        positives reached), ``lift`` (positive rate in the top / overall), ``baseline``
        (what random targeting captures: the fraction itself).
    """
    y, score = _validate(y_true, y_score, False)
    fractions = np.arange(1, points + 1) / points
    rows = [lift_and_capture(y, score, fraction) for fraction in fractions]
    return pl.DataFrame({
        "fraction": fractions,
        "capture": [capture for _, capture in rows],
        "lift": [lift for lift, _ in rows],
        "baseline": fractions,
    })


def calibration_by_decile(y_true, y_score) -> pl.DataFrame:
    """Mean prediction against the actual rate in each score decile (decile 1 = highest).

    Returns
    -------
    polars.DataFrame
        ``decile``, ``count``, ``mean_prediction``, ``actual_rate``, ``min_score``,
        ``max_score``; one row per non-empty decile, decile 1 first.
    """
    y, score = _validate(y_true, y_score, False)
    at_least_as_high = rankdata(-score, method="max")
    decile = np.ceil(10 * at_least_as_high / y.size - 1e-9).astype(int)
    frame = pl.DataFrame({"decile": decile, "y": y, "score": score})
    return (frame.group_by("decile")
            .agg(pl.len().alias("count"), pl.col("score").mean().alias("mean_prediction"),
                 pl.col("y").mean().alias("actual_rate"),
                 pl.col("score").min().alias("min_score"),
                 pl.col("score").max().alias("max_score"))
            .sort("decile"))


def _validate(y_true, y_score, is_probability: bool) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    score = np.asarray(y_score, dtype=float).ravel()
    if y.shape != score.shape:
        raise UserError(f"There are {y.size} labels but {score.size} scores; "
                        "score exactly the labelled customers.")
    if y.size == 0:
        raise UserError("There is nothing to evaluate: no labelled customers.")
    if not np.all(np.isin(y, (0, 1))):
        raise UserError("Labels must be 0 or 1; map the outcome to a binary label first.")
    if not np.all(np.isfinite(score)):
        raise UserError("Some scores are missing or infinite; score every customer.")
    if is_probability and (score.min() < 0 or score.max() > 1):
        raise UserError("Scores outside [0, 1] are not probabilities; "
                        "pass is_probability=False for a ranking score.")
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise UserError("The labels hold only one class, so ranking cannot be judged; "
                        "choose a longer horizon or an earlier cutoff.")
    return y, score
