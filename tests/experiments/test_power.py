"""Power, sample size and detectable effects against statsmodels' normal power."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower

from studio.errors import UserError
from studio.experiments.power import (
    additional_units_per_arm,
    compute_power,
    detectable_mean_effect,
    detectable_rate_effect,
    plan_detectable_effect,
    plan_rate_test,
    required_units_per_arm,
)

ORACLE = NormalIndPower()


def standardised(effect: float, variance_c: float, variance_t: float) -> float:
    """statsmodels' effect size for equal arms: the effect over the average sd."""
    return effect / math.sqrt((variance_c + variance_t) / 2)


@pytest.mark.parametrize(("baseline", "mde"), [(0.03, 0.10), (0.2, 0.05), (0.01, 0.5)])
def test_plan_matches_statsmodels_sample_size(baseline, mde):
    plan = plan_rate_test(baseline, mde)
    v_c, v_t = baseline * (1 - baseline), plan.treatment_rate * (1 - plan.treatment_rate)
    oracle = ORACLE.solve_power(standardised(plan.absolute_effect, v_c, v_t), alpha=0.05,
                                power=0.8, ratio=1)
    assert plan.units_per_arm == math.ceil(oracle)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_power_matches_statsmodels(alternative):
    ours = compute_power(0.004, 0.03 * 0.97, 0.034 * 0.966, 20_000, alternative=alternative)
    oracle = ORACLE.power(standardised(0.004, 0.03 * 0.97, 0.034 * 0.966), nobs1=20_000,
                          alpha=0.05, alternative="two-sided" if alternative == "two-sided"
                          else "larger")
    assert ours == pytest.approx(oracle, rel=1e-9)


def test_detectable_effects_invert_power():
    delta = detectable_rate_effect(0.05, 8_000)
    assert compute_power(delta, 0.05 * 0.95, (0.05 + delta) * (0.95 - delta), 8_000) == (
        pytest.approx(0.8, abs=1e-9))
    effect = detectable_mean_effect(400.0, 5_000)
    assert ORACLE.power(effect / 20.0, nobs1=5_000, alpha=0.05) == pytest.approx(0.8, abs=1e-3)


def test_more_units_bring_the_observed_lift_to_the_planned_power():
    variance_c, variance_t, units = 0.05 * 0.95, 0.055 * 0.945, 2 * 3_000
    se = math.sqrt(variance_c / 3_000 + variance_t / 3_000)
    more = additional_units_per_arm(0.005, se, units)
    per_arm = 3_000 + more
    assert compute_power(0.005, variance_c, variance_t, per_arm) == pytest.approx(0.8, abs=2e-3)
    assert more == pytest.approx(required_units_per_arm(0.005, variance_c, variance_t) - 3_000,
                                 abs=1)
    assert additional_units_per_arm(0.0, se, units) is None


def test_more_arms_split_alpha_and_need_more_units():
    two, three = plan_rate_test(0.03, 0.1), plan_rate_test(0.03, 0.1, arms=3)
    assert three.alpha_per_comparison == 0.025
    assert three.units_per_arm > two.units_per_arm
    assert three.total_units == 3 * three.units_per_arm


@pytest.mark.parametrize(("arguments", "message"), [
    ((3, 0.1), "baseline rate must be between 0 and 1"),
    ((0.03, -0.1), "must be positive"),
    ((0.9, 0.2), "passes a rate of 1"),
])
def test_impossible_plans_are_user_errors(arguments, message):
    with pytest.raises(UserError, match=message):
        plan_rate_test(*arguments)


def test_the_detectable_effect_of_a_given_size_is_the_plan_run_backwards():
    plan = plan_rate_test(0.03, 0.1)
    backwards = plan_detectable_effect(0.03, plan.units_per_arm)
    assert backwards.relative_effect == pytest.approx(0.1, abs=2e-4)  # n was rounded up
    assert backwards.relative_effect <= 0.1
