"""Sufficient statistics reproduce what numpy computes from the rows they summarise."""

from __future__ import annotations

import numpy as np
import pytest

from studio.experiments.statistics import (
    CovariateStatistic,
    ProportionStatistic,
    RatioStatistic,
    SampleMeanStatistic,
)


def sums(values: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(len(values), float(values.sum()), float((values**2).sum()))


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_sample_mean_and_variance_match_numpy_and_pool_by_addition(rng):
    a, b = rng.gamma(0.5, 40, size=317), rng.gamma(0.7, 30, size=89)
    stat = sums(a)
    assert stat.mean == pytest.approx(a.mean(), rel=1e-12)
    assert stat.variance == pytest.approx(a.var(ddof=1), rel=1e-9)
    pooled = sums(a) + sums(b)
    assert pooled.variance == pytest.approx(np.concatenate([a, b]).var(ddof=1), rel=1e-9)


def test_proportion_variance_is_bernoulli():
    stat = ProportionStatistic(40, 10) + ProportionStatistic(60, 20)
    assert (stat.n, stat.mean, stat.variance) == (100, 0.3, pytest.approx(0.21))


def test_ratio_variance_is_the_variance_of_the_linearised_units(rng):
    """Delta method, independently: Var(m - R d) / mean(d)^2 over the per-unit rows."""
    orders = rng.poisson(0.3, size=2_000).astype(float)
    revenue = orders * rng.gamma(2.0, 40.0, size=2_000)
    stat = RatioStatistic(sums(revenue), sums(orders), float((revenue * orders).sum()))
    ratio = revenue.sum() / orders.sum()
    assert stat.mean == pytest.approx(ratio, rel=1e-12)
    linearised = (revenue - ratio * orders) / orders.mean()
    assert stat.variance == pytest.approx(linearised.var(ddof=1), rel=1e-9)


def test_covariance_from_sums_matches_numpy(rng):
    x = rng.normal(10, 3, size=500)
    y = 0.5 * x + rng.normal(0, 1, size=500)
    stat = CovariateStatistic(sums(y), sums(x), float((x * y).sum()))
    assert stat.covariance == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-9)
