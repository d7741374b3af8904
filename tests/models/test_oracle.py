"""The oracle agrees with what the demo customers then did, on average and per decile."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.labels import build_labels
from models.oracle import oracle_probabilities
from studio.errors import UserError


def _judged(demo_store, demo_con, cutoff: str, horizon: int) -> pl.DataFrame:
    oracle = oracle_probabilities(demo_store, cutoff, horizon)
    labels = build_labels(demo_con, cutoff, horizon, population="known")
    return labels.join(oracle, on="customer_id", how="left")


@pytest.mark.parametrize(("cutoff", "horizon"), [("2024-06-30", 90), ("2023-12-31", 30),
                                                 ("2024-09-30", 90)])
def test_the_oracle_is_calibrated_against_the_realised_labels(demo_store, demo_con, cutoff,
                                                               horizon):
    judged = _judged(demo_store, demo_con, cutoff, horizon)
    assert judged["probability"].null_count() == 0  # every known customer has a probability
    p = judged["probability"].to_numpy()
    bought = judged["purchased"].to_numpy().astype(float)

    # the customers who had dropped out by the cutoff get 0, and indeed never buy again
    gone = ~judged["alive"].to_numpy()
    assert gone.sum() > 300
    assert (p[gone] == 0).all() and bought[gone].sum() == 0

    # overall: the realised share is within three standard errors of the mean probability
    standard_error = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(bought.mean() - p.mean()) < 3 * standard_error

    # per decile of the living: a chi-square test with known (not fitted) probabilities
    alive = judged.filter(pl.col("alive")).with_columns(
        decile=(pl.col("probability").rank("ordinal") * 10 // (pl.len() + 1)))
    deciles = alive.group_by("decile").agg(
        expected=pl.col("probability").sum(), observed=pl.col("purchased").sum(),
        variance=(pl.col("probability") * (1 - pl.col("probability"))).sum())
    chi_square = ((deciles["observed"] - deciles["expected"]) ** 2 / deciles["variance"]).sum()
    assert deciles.height == 10
    assert stats.chi2.sf(chi_square, df=10) > 0.001

    assert roc_auc_score(bought, p) > 0.8


def test_the_oracle_ranks_buyers_well_above_chance(demo_store, demo_con):
    judged = _judged(demo_store, demo_con, "2024-06-30", 90)
    buyers = judged.filter(pl.col("customer_id").is_in(
        build_labels(demo_con, "2024-06-30", 90)["customer_id"].implode()))
    assert roc_auc_score(buyers["purchased"].to_numpy(), buyers["probability"].to_numpy()) > 0.8


def test_the_oracle_needs_a_whole_day_cutoff_inside_the_history(demo_store):
    with pytest.raises(UserError, match="whole-day cutoff"):
        oracle_probabilities(demo_store, "2024-06-30 12:00:00", 30)
    with pytest.raises(UserError, match="not inside the demo store's history"):
        oracle_probabilities(demo_store, "2024-12-01", 90)
