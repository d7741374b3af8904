"""Chance to win, risk and credible intervals against GrowthBook's vector and integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from studio.experiments.bayesian import GaussianPrior, run_bayesian_test
from studio.experiments.effects import EffectMoments, compute_effect
from studio.experiments.statistics import ProportionStatistic
from tests.experiments.printed import assert_printed


def test_growthbook_vector_4_flat_prior():
    moments = compute_effect(ProportionStatistic(100, 49), ProportionStatistic(100, 51),
                             relative=True)
    result = run_bayesian_test(moments)
    assert_printed(result.mean, "0.04082")
    assert_printed(result.ci_low, "-0.24779")
    assert_printed(result.ci_high, "0.32943")
    assert_printed(result.chance_to_win, "0.60918")
    assert_printed(result.risk_control, "0.0814")
    assert_printed(result.risk_treatment, "0.04058")


@pytest.mark.parametrize(("estimate", "variance"), [(0.02, 0.0004), (-0.3, 0.09), (1.5, 4.0)])
def test_risk_is_the_expected_loss_by_numerical_integration(estimate, variance):
    moments = EffectMoments(estimate, variance, math.inf, 1000, relative=False)
    result = run_bayesian_test(moments)
    posterior = stats.norm(estimate, math.sqrt(variance))
    loss_treatment, _ = integrate.quad(lambda x: -x * posterior.pdf(x), -np.inf, 0)
    loss_control, _ = integrate.quad(lambda x: x * posterior.pdf(x), 0, np.inf)
    assert result.risk_treatment == pytest.approx(loss_treatment, rel=1e-7)
    assert result.risk_control == pytest.approx(loss_control, rel=1e-7)
    assert result.chance_to_win == pytest.approx(posterior.sf(0), rel=1e-12)


def test_lower_is_better_swaps_winning_and_losing():
    moments = EffectMoments(0.1, 0.01, math.inf, 1000, relative=True)
    up = run_bayesian_test(moments)
    down = run_bayesian_test(moments, higher_is_better=False)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win)
    assert (down.risk_control, down.risk_treatment) == pytest.approx(
        (up.risk_treatment, up.risk_control))


def test_a_proper_prior_gives_the_conjugate_normal_posterior():
    moments = EffectMoments(0.2, 0.01, math.inf, 1000, relative=True)
    prior = GaussianPrior(mean=0.0, variance=0.01, proper=True)
    result = run_bayesian_test(moments, prior=prior)
    assert result.mean == pytest.approx(0.1)  # equal precisions: halfway
    assert result.standard_deviation == pytest.approx(math.sqrt(0.005))
