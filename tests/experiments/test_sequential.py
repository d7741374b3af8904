"""Confidence sequences stay valid under daily peeking, where fixed intervals do not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.experiments.effects import EffectMoments, compute_effect
from studio.experiments.frequentist import run_frequentist_test
from studio.experiments.sequential import run_sequential_test
from studio.experiments.statistics import ProportionStatistic, SampleMeanStatistic

LOOKS, SIMS = 30, 1_000


def coverage(controls, treatments, truth: float, planned: int, normal: bool):
    """Share of simulated tests whose interval held the truth at every look."""
    sequential_ok = fixed_ok = 0
    for control_looks, treatment_looks in zip(controls, treatments, strict=True):
        seq = fix = True
        for control, treatment in zip(control_looks, treatment_looks, strict=True):
            moments = compute_effect(control, treatment, relative=False)
            s = run_sequential_test(moments, planned_units=planned)
            f = run_frequentist_test(moments, normal=normal)
            seq &= s.ci_low <= truth <= s.ci_high
            fix &= f.ci_low <= truth <= f.ci_high
        sequential_ok += seq
        fixed_ok += fix
    return sequential_ok / len(controls), fixed_ok / len(controls)


def test_rates_read_every_day_keep_95_percent_coverage():
    rng = np.random.default_rng(21)
    per_look, rates = 200, (0.05, 0.056)
    n = per_look * np.arange(1, LOOKS + 1)
    arms = []
    for rate in rates:
        counts = rng.binomial(per_look, rate, size=(SIMS, LOOKS)).cumsum(axis=1)
        arms.append([[ProportionStatistic(int(k), float(c)) for k, c in zip(n, row, strict=True)]
                     for row in counts])
    sequential, fixed = coverage(*arms, truth=rates[1] - rates[0], planned=2 * n[-1],
                                 normal=True)
    assert sequential >= 0.95
    assert fixed < 0.90  # the simulation can tell: peeking breaks the fixed interval


def test_means_read_every_day_keep_95_percent_coverage():
    """Normal data, with each day's sum and sum of squares drawn from their exact laws."""
    rng = np.random.default_rng(22)
    per_look, sigma, means = 100, 30.0, (50.0, 52.0)
    n = per_look * np.arange(1, LOOKS + 1)
    arms = []
    for mean in means:
        day_sums = rng.normal(per_look * mean, sigma * math.sqrt(per_look), size=(SIMS, LOOKS))
        within = sigma**2 * rng.chisquare(per_look - 1, size=(SIMS, LOOKS))
        squares = (within + day_sums**2 / per_look).cumsum(axis=1)
        totals = day_sums.cumsum(axis=1)
        arms.append([[SampleMeanStatistic(int(k), float(s), float(q))
                      for k, s, q in zip(n, total, square, strict=True)]
                     for total, square in zip(totals, squares, strict=True)])
    sequential, fixed = coverage(*arms, truth=means[1] - means[0], planned=2 * n[-1],
                                 normal=False)
    assert sequential >= 0.95
    assert fixed < 0.90


def test_at_the_planned_size_the_sequence_is_about_1_55_times_as_wide():
    moments = EffectMoments(0.01, 0.002**2, math.inf, 20_000, relative=False)
    sequential = run_sequential_test(moments, planned_units=20_000)
    fixed = run_frequentist_test(moments, normal=True)
    ratio = (sequential.ci_high - sequential.ci_low) / (fixed.ci_high - fixed.ci_low)
    assert ratio == pytest.approx(1.55, abs=0.01)


@pytest.mark.parametrize("seed", range(4))
def test_the_p_value_crosses_alpha_exactly_where_the_interval_leaves_zero(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        units = int(rng.integers(100, 50_000))
        moments = EffectMoments(rng.normal(0, 0.02), rng.uniform(1e-5, 4e-4), math.inf, units,
                                relative=False)
        result = run_sequential_test(moments, planned_units=int(rng.integers(1_000, 50_000)),
                                     alpha=0.05)
        assert (result.p_value <= 0.05) == (result.ci_low > 0 or result.ci_high < 0)
