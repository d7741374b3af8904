"""Multiple-comparison adjustment of p-values across arms and metrics.

Five metrics and two treatment arms make ten chances for noise to look like a win.
Holm's step-down keeps the chance of *any* false win at ``alpha`` (family-wise error),
uniformly better than Bonferroni; Benjamini-Hochberg keeps the expected *share* of false
wins among the declared wins at ``alpha`` (false discovery rate), which suits many
exploratory metrics. Adjusted p-values come back in the input order; NaN (a comparison
that could not be computed) stays NaN and does not count as a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CORRECTIONS = ("holm", "bh", "none")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: ``max_{j<=i} (m - j + 1) p_(j)``, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = p.copy()
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values: ``min_{j>=i} m p_(j) / j``, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = m * p[order] / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = p.copy()
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """Adjust with ``holm``, ``bh`` (Benjamini-Hochberg) or ``none``."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return [float(p) for p in p_values]
    raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
