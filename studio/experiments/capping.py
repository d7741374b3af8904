"""Outlier capping (winsorising): a few huge orders should not decide a revenue test.

Revenue per recipient is mostly zeros with a heavy tail; one wholesaler's order can
swing a mean by more than any e-mail ever will. Capping every unit's value at a high
percentile trades a little bias for a lot less variance. The cap is computed once over
all arms pooled (never per arm, which would cap the better arm harder), optionally over
the non-zero values only: with 97% zeros, the 99th percentile of all values is a small
order, while that of the buyers is a genuinely large one (Statsig caps at the 99.9th).

Percentiles interpolate linearly between order statistics, as numpy's default and
DuckDB's ``quantile_cont`` both do, so a file and the warehouse cap alike.
"""

from __future__ import annotations

import numpy as np

from studio.errors import UserError

MIN_PERCENTILE = 50.0


def check_percentile(percentile: float) -> float:
    """``percentile`` as given, if it is a percent between 50 and 100 (e.g. 99 or 99.9)."""
    if not MIN_PERCENTILE <= percentile <= 100:
        raise UserError(f"The cap percentile must be a percent between 50 and 100 (e.g. 99.9), "
                        f"not {percentile:g}.")
    return percentile


def compute_cap(values: np.ndarray, percentile: float, nonzero_only: bool = False) -> float:
    """The pooled cap: the ``percentile``-th percentile of ``values`` (or of those not 0).

    Returns ``inf`` (no cap) when there is nothing to take a percentile of.
    """
    check_percentile(percentile)
    values = np.asarray(values, dtype=float)
    if nonzero_only:
        values = values[values != 0]
    if values.size == 0:
        return float("inf")
    return float(np.percentile(values, percentile))


def cap_warning(cap: float, metric: str) -> str | None:
    """A sentence when a cap at or below zero would flatten the metric entirely."""
    if cap <= 0:
        return (f"The cap for {metric} is {cap:g}, so capping erases it; cap at the "
                "percentile of non-zero values instead.")
    return None
