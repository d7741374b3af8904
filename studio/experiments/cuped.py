"""CUPED: take out the part of a metric that a pre-period covariate already predicted.

Randomisation balances anything measured before the send, so subtracting
``theta * (x - mean(x))`` from each unit's metric ``y`` leaves the expected lift alone
while removing the variance that ``x`` explains (Deng et al. 2013). The best ``theta``
is the regression slope of ``y`` on ``x``; it is pooled within arms, so a treatment's
shift of ``y`` does not leak into it. The variance of each arm's mean shrinks by about
``corr(x, y)^2``; :func:`variance_reduction` reports what was achieved for the lift.
"""

from __future__ import annotations

from studio.experiments.effects import compute_effect
from studio.experiments.statistics import CovariateStatistic, RegressionAdjustedStatistic


def compute_theta(*arms: CovariateStatistic) -> float:
    """The within-arm pooled slope ``cov(x, y) / var(x)``; 0 when ``x`` never varies."""
    covariance = sum(arm.covariance * (arm.n - 1) for arm in arms if arm.n > 1)
    variance = sum(arm.pre.variance * (arm.n - 1) for arm in arms if arm.n > 1)
    return covariance / variance if variance > 0 else 0.0


def adjust_arms(control: CovariateStatistic, treatment: CovariateStatistic,
                ) -> tuple[RegressionAdjustedStatistic, RegressionAdjustedStatistic]:
    """Both arms adjusted with the slope they share."""
    theta = compute_theta(control, treatment)
    return tuple(RegressionAdjustedStatistic(arm.post, arm.pre, arm.sum_products, theta)
                 for arm in (control, treatment))  # type: ignore[return-value]


def variance_reduction(control: CovariateStatistic, treatment: CovariateStatistic) -> float:
    """The share of the absolute lift's variance that CUPED removed (0.3 = 30% less).

    Negative only if the covariate is useless and the slope, estimated from noise, adds
    a little variance; 0 when either arm is too small to tell.
    """
    plain = compute_effect(control, treatment, relative=False)
    adjusted = compute_effect(*adjust_arms(control, treatment), relative=False)
    if plain.error_message or adjusted.error_message or plain.variance == 0:
        return 0.0
    return 1 - adjusted.variance / plain.variance
