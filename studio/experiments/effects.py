"""The effect of a treatment arm against control: its estimate and the estimate's variance.

Every family of tests starts here, so the lifts mean the same thing everywhere:

* absolute lift ``mean_t - mean_c`` with variance ``var_t / n_t + var_c / n_c``;
* relative lift ``(mean_t - mean_c) / mean_c`` with the delta-method variance
  ``var_t / (mean_c^2 n_t) + var_c mean_t^2 / (mean_c^4 n_c)``, the means in the
  variance being the unadjusted ones (they differ from the adjusted ones under CUPED).

The degrees of freedom are Welch-Satterthwaite's unless ``equal_variance`` asks for the
pooled (Student) variance, which exists to reproduce published figures computed that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.experiments.statistics import Statistic

TOO_FEW_UNITS = "An arm has fewer than two units, so its variance is unknown."
ZERO_BASELINE = "The control's mean is zero, so a relative lift is undefined."
NO_VARIATION = ("The metric does not vary within either arm, so its uncertainty cannot be "
                "estimated.")


@dataclass(frozen=True)
class EffectMoments:
    """An effect estimate and the variance of that estimate.

    Attributes
    ----------
    estimate
        The lift (absolute or relative).
    variance
        The variance of ``estimate`` (the square of its standard error).
    dof
        Degrees of freedom for a t distribution.
    units
        Units in both arms together (the sequential intervals' clock).
    relative
        Whether ``estimate`` is a relative lift.
    error_message
        Why no effect could be computed; ``estimate`` and ``variance`` are NaN then.
    """

    estimate: float
    variance: float
    dof: float
    units: int
    relative: bool
    error_message: str | None = None

    @property
    def standard_error(self) -> float:
        """The square root of ``variance``."""
        return math.sqrt(self.variance)


def _failed(message: str, units: int, relative: bool) -> EffectMoments:
    return EffectMoments(math.nan, math.nan, math.nan, units, relative, message)


def welch_dof(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    """Welch-Satterthwaite degrees of freedom from per-unit variances and sizes."""
    a, b = var_c / n_c, var_t / n_t
    denominator = a**2 / (n_c - 1) + b**2 / (n_t - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else math.inf


def compute_effect(control: Statistic, treatment: Statistic, *, relative: bool,
                   equal_variance: bool = False) -> EffectMoments:
    """The lift of ``treatment`` over ``control`` with the variance of that lift.

    Parameters
    ----------
    control, treatment
        Sufficient statistics of the two arms for one metric.
    relative
        ``True`` for ``(t - c) / c``, ``False`` for ``t - c``.
    equal_variance
        Pool the two arms' variances (Student's t) instead of Welch's separate variances.
    """
    n_c, n_t = control.n, treatment.n
    units = n_c + n_t
    if n_c < 2 or n_t < 2:
        return _failed(TOO_FEW_UNITS, units, relative)
    var_c, var_t = control.variance, treatment.variance
    if equal_variance:
        var_c = var_t = ((n_c - 1) * var_c + (n_t - 1) * var_t) / (units - 2)
        dof = float(units - 2)
    else:
        dof = welch_dof(var_c, n_c, var_t, n_t)
    if var_c == 0 and var_t == 0:
        return _failed(NO_VARIATION, units, relative)
    difference = treatment.mean - control.mean
    if not relative:
        return EffectMoments(difference, var_t / n_t + var_c / n_c, dof, units, False)
    base, top = control.unadjusted_mean, treatment.unadjusted_mean
    if base == 0:
        return _failed(ZERO_BASELINE, units, relative)
    variance = var_t / (base**2 * n_t) + var_c * top**2 / (base**4 * n_c)
    if variance <= 0:  # a treatment stuck at zero: the delta method has nothing to go on
        return _failed(NO_VARIATION, units, relative)
    return EffectMoments(difference / base, variance, dof, units, True)
