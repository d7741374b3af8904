"""Frequentist lifts against GrowthBook's published vectors, scipy and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from studio.experiments.effects import ZERO_BASELINE, compute_effect
from studio.experiments.frequentist import run_frequentist_test
from studio.experiments.statistics import ProportionStatistic, SampleMeanStatistic
from tests.experiments.printed import assert_printed

CONTROL_SUMS = (1396.87, 52377.9767)
TREATMENT = SampleMeanStatistic(3461, 2422.7, 134698.29)


def run(control, treatment, relative, **options):
    moments = compute_effect(control, treatment, relative=relative,
                             equal_variance=options.pop("equal_variance", False))
    return run_frequentist_test(moments, **options)


def test_growthbook_vector_1_proportions_relative():
    result = run(ProportionStatistic(28, 14), ProportionStatistic(30, 16), relative=True)
    assert_printed(result.estimate, "0.06667")
    assert_printed(result.standard_error, "0.27170")
    assert_printed(result.ci_low, "-0.47767")
    assert_printed(result.ci_high, "0.61101")
    assert_printed(result.p_value, "0.80707")


def test_growthbook_vector_2_means_from_sums():
    control = SampleMeanStatistic(3407, *CONTROL_SUMS)
    relative = run(control, TREATMENT, relative=True)
    assert_printed(relative.estimate, "0.70732")
    assert_printed(relative.ci_low, "-0.03526")
    assert_printed(relative.ci_high, "1.44989")
    assert_printed(relative.p_value, "0.06191")
    absolute = run(control, TREATMENT, relative=False)
    assert_printed(absolute.estimate, "0.29")
    assert_printed(absolute.standard_error, "0.12478")
    assert_printed(absolute.ci_low, "0.04538")
    assert_printed(absolute.ci_high, "0.53462")
    assert_printed(absolute.p_value, "0.02016")


def test_growthbook_vector_3_one_sided_treatment_greater():
    control = SampleMeanStatistic(3000, *CONTROL_SUMS)
    relative = run(control, TREATMENT, relative=True, alternative="greater")
    assert_printed(relative.p_value, "0.065583")
    assert_printed(relative.ci_low, "-0.045137")
    assert relative.ci_high == math.inf
    absolute = run(control, TREATMENT, relative=False, alternative="greater")
    assert_printed(absolute.estimate, "0.234377")
    assert_printed(absolute.ci_low, "0.020791")
    assert_printed(absolute.p_value, "0.035543")


def sums(values: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(len(values), float(values.sum()), float((values**2).sum()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_and_student_match_scipy_and_statsmodels_on_raw_data(seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(1.0, 1.2, size=rng.integers(30, 400))
    b = rng.lognormal(1.1, 1.0, size=rng.integers(30, 400))
    for equal_var in (False, True):
        ours = run(sums(a), sums(b), relative=False, alpha=0.1, equal_variance=equal_var)
        oracle = stats.ttest_ind(b, a, equal_var=equal_var)
        interval = oracle.confidence_interval(0.9)
        assert ours.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
        assert (ours.ci_low, ours.ci_high) == pytest.approx((interval.low, interval.high),
                                                            rel=1e-9)
    usevar = CompareMeans(DescrStatsW(b), DescrStatsW(a))
    for alternative, sm_name in (("greater", "larger"), ("less", "smaller")):
        ours = run(sums(a), sums(b), relative=False, alternative=alternative)
        _, p_value, _ = usevar.ttest_ind(alternative=sm_name, usevar="unequal")
        assert ours.p_value == pytest.approx(p_value, rel=1e-9)


@pytest.mark.parametrize(("count_c", "n_c", "count_t", "n_t"),
                         [(120, 4000, 151, 4100), (14, 28, 16, 30), (2, 900, 9, 880)])
def test_proportions_z_test_is_statsmodels_wald_test(count_c, n_c, count_t, n_t):
    result = run(ProportionStatistic(n_c, count_c), ProportionStatistic(n_t, count_t),
                 relative=False, normal=True)
    counts = (count_t, n_t, count_c, n_c)
    oracle = sm_proportion.test_proportions_2indep(*counts, method="wald", compare="diff")
    low, high = sm_proportion.confint_proportions_2indep(*counts, method="wald", compare="diff")
    assert result.estimate == pytest.approx(oracle.diff, rel=1e-12)
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_relative_lift_variance_is_the_delta_method():
    """An independent delta method: the gradient of t/c - 1 by finite differences."""
    control, treatment = SampleMeanStatistic(500, 900.0, 4200.0), TREATMENT
    moments = compute_effect(control, treatment, relative=True)
    mean_c, mean_t = control.mean, treatment.mean
    step = 1e-6
    gradient = np.array([((mean_t / (mean_c + step)) - (mean_t / (mean_c - step))) / (2 * step),
                         (((mean_t + step) / mean_c) - ((mean_t - step) / mean_c)) / (2 * step)])
    covariance = np.diag([control.variance / control.n, treatment.variance / treatment.n])
    assert moments.variance == pytest.approx(gradient @ covariance @ gradient, rel=1e-6)


def test_a_zero_control_mean_comes_back_as_an_error_message():
    result = run(ProportionStatistic(100, 0), ProportionStatistic(100, 3), relative=True)
    assert result.error_message == ZERO_BASELINE
    assert math.isnan(result.p_value)
    absolute = run(ProportionStatistic(100, 0), ProportionStatistic(100, 3), relative=False)
    assert absolute.error_message is None and absolute.estimate == pytest.approx(0.03)
