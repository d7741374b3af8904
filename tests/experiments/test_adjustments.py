"""Holm and Benjamini-Hochberg against GrowthBook's vectors and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from studio.experiments.adjustments import adjust_p_values, benjamini_hochberg, holm


def test_growthbook_vector_6_holm():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, 0.55, 0.6])
    assert [round(p, 4) for p in adjusted] == [0.05, 0.12, 0.12, 0.03, 1, 1]


def test_growthbook_vector_6_benjamini_hochberg():
    adjusted = benjamini_hochberg([0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138])
    assert [round(p, 4) for p in adjusted] == [0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245,
                                               0.2415]


@pytest.mark.parametrize("seed", range(5))
def test_random_p_values_match_statsmodels(seed):
    p_values = np.random.default_rng(seed).beta(0.5, 2, size=12)
    for ours, method in (("holm", "holm"), ("bh", "fdr_bh")):
        _, oracle, _, _ = multipletests(p_values, method=method)
        assert adjust_p_values(p_values, ours) == pytest.approx(oracle.tolist(), rel=1e-12)


def test_nan_stays_nan_and_does_not_count_as_a_test():
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
