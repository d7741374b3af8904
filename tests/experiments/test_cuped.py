"""CUPED: the ANCOVA estimate, unbiased, and a real variance reduction when x correlates."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from studio.experiments.cuped import adjust_arms, compute_theta, variance_reduction
from studio.experiments.effects import compute_effect
from studio.experiments.statistics import CovariateStatistic, SampleMeanStatistic


def covariate_stat(y: np.ndarray, x: np.ndarray) -> CovariateStatistic:
    return CovariateStatistic(SampleMeanStatistic(len(y), y.sum(), (y**2).sum()),
                              SampleMeanStatistic(len(x), x.sum(), (x**2).sum()),
                              float((x * y).sum()))


def test_the_cuped_lift_is_the_ancova_treatment_coefficient():
    """OLS of y on a treatment dummy and x gives the same slope and the same lift."""
    rng = np.random.default_rng(5)
    x = rng.gamma(2, 50, size=900)
    treated = np.arange(900) >= 420
    y = 20 + 0.4 * x + 6 * treated + rng.normal(0, 25, size=900)
    control = covariate_stat(y[~treated], x[~treated])
    treatment = covariate_stat(y[treated], x[treated])
    fit = sm.OLS(y, sm.add_constant(np.column_stack([treated.astype(float), x]))).fit()
    assert compute_theta(control, treatment) == pytest.approx(fit.params[2], rel=1e-9)
    lift = compute_effect(*adjust_arms(control, treatment), relative=False)
    assert lift.estimate == pytest.approx(fit.params[1], rel=1e-9)
    assert lift.standard_error == pytest.approx(fit.bse[1], rel=0.02)


def simulate(rng, sims: int, n: int, rho: float, effect: float):
    """Per-arm sums of ``sims`` experiments with a covariate correlated ``rho`` with y."""
    stats = []
    for shift in (0.0, effect):
        x = rng.normal(0, 1, size=(sims, n))
        y = shift + rho * x + np.sqrt(1 - rho**2) * rng.normal(0, 1, size=(sims, n))
        stats.append([covariate_stat(y[i], x[i]) for i in range(sims)])
    return stats


def test_cuped_cuts_the_variance_by_rho_squared_and_stays_unbiased():
    rng = np.random.default_rng(8)
    rho, effect, sims = 0.6, 0.1, 600
    controls, treatments = simulate(rng, sims, 300, rho, effect)
    plain = np.array([compute_effect(c, t, relative=False).estimate
                      for c, t in zip(controls, treatments, strict=True)])
    adjusted = np.array([compute_effect(*adjust_arms(c, t), relative=False).estimate
                         for c, t in zip(controls, treatments, strict=True)])
    reported = np.mean([variance_reduction(c, t)
                        for c, t in zip(controls, treatments, strict=True)])
    assert reported == pytest.approx(rho**2, abs=0.01)
    achieved = 1 - adjusted.var() / plain.var()
    assert achieved == pytest.approx(rho**2, abs=0.07)  # sampling error of two variances
    standard_error = adjusted.std() / np.sqrt(sims)
    assert abs(adjusted.mean() - effect) < 3 * standard_error


def test_a_useless_covariate_changes_almost_nothing():
    rng = np.random.default_rng(9)
    controls, treatments = simulate(rng, 1, 5_000, 0.0, 0.0)
    assert abs(variance_reduction(controls[0], treatments[0])) < 0.003
