"""Sample-ratio mismatch: whether the arms got the share of units the plan gave them.

A split that drifts from the plan (50/50 planned, 1,000 vs 1,200 observed) means the
assignment or the tracking is broken, and then no lift can be trusted, however
significant. The check is Pearson's chi-square goodness of fit of the observed counts
against the planned weights; like GrowthBook and Eppo, it is flagged at ``p < 0.001``,
strict enough that a healthy test almost never trips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The chi-square check of the split.

    Attributes
    ----------
    p_value
        The chance of a split at least this uneven if assignment followed the plan.
    chi_square
        Pearson's statistic (``arms - 1`` degrees of freedom).
    observed, expected
        Units per arm, and what the planned weights predicted.
    flagged
        ``p_value < threshold``: treat every result of the test with suspicion.
    """

    p_value: float
    chi_square: float
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    flagged: bool
    threshold: float = SRM_THRESHOLD


def check_sample_ratio(counts: Sequence[int], weights: Sequence[float] | None = None,
                       threshold: float = SRM_THRESHOLD) -> SrmResult:
    """Chi-square test of ``counts`` against the planned ``weights`` (equal when ``None``).

    Weights need not sum to one; they are normalised.
    """
    observed = np.asarray(counts, dtype=float)
    if weights is None:
        weights = [1.0] * len(observed)
    planned = np.asarray(weights, dtype=float)
    if len(planned) != len(observed) or len(observed) < 2 or (planned <= 0).any():
        raise ValueError("need at least two arms, each with a positive planned weight")
    expected = observed.sum() * planned / planned.sum()
    if observed.sum() == 0:
        return SrmResult(1.0, 0.0, tuple(int(c) for c in counts), tuple(expected), False,
                         threshold)
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    p_value = float(stats.chi2.sf(chi_square, len(observed) - 1))
    return SrmResult(p_value, chi_square, tuple(int(c) for c in counts),
                     tuple(float(e) for e in expected), p_value < threshold, threshold)
