"""The sample-ratio check against GrowthBook's vectors and scipy's chi-square test."""

from __future__ import annotations

import pytest
from scipy import stats

from studio.experiments.srm import check_sample_ratio
from tests.experiments.printed import assert_printed


@pytest.mark.parametrize(("counts", "weights", "printed", "flagged"), [
    ([1000, 1200], [0.5, 0.5], "2.0079e-5", True),
    ([135, 115], [0.5, 0.5], "0.205903211", False),
    ([310, 98], [0.75, 0.25], "0.647434186", False),
    ([500, 500, 600], [0.34, 0.33, 0.33], "0.000592638", True),
])
def test_growthbook_vector_5(counts, weights, printed, flagged):
    result = check_sample_ratio(counts, weights)
    assert_printed(result.p_value, printed)
    assert result.flagged is flagged
    total = sum(counts)
    oracle = stats.chisquare(counts, [total * w / sum(weights) for w in weights])
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert result.chi_square == pytest.approx(oracle.statistic, rel=1e-12)


def test_equal_split_is_assumed_without_weights_and_weights_need_not_sum_to_one():
    assert check_sample_ratio([135, 115]).p_value == pytest.approx(
        check_sample_ratio([135, 115], [3, 3]).p_value)
