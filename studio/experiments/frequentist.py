"""Fixed-horizon tests: a p-value and a confidence interval for an effect.

Welch's t test for means and ratios; a z test (the normal distribution) for proportions,
whose large-sample Wald test it is. Intervals are two-sided at level ``1 - alpha``, or
one-sided (``greater``: the treatment is better, a lower bound; ``less``: an upper bound).
These numbers are valid when the sample size was fixed before looking; for a test read
every day, use :mod:`~studio.experiments.sequential`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from studio.experiments.effects import EffectMoments

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class TestResult:
    """An effect with its interval and p-value.

    Attributes
    ----------
    estimate, standard_error
        The lift and its standard error.
    ci_low, ci_high
        The interval (``-inf`` or ``inf`` on the open side of a one-sided test).
    p_value
        The chance of an effect at least this far from zero if there were none.
    error_message
        Why nothing could be computed (the numbers are NaN then).
    """

    __test__ = False  # not a pytest test class, despite its name

    estimate: float
    standard_error: float
    ci_low: float
    ci_high: float
    p_value: float
    error_message: str | None = None

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of no effect."""
        return self.ci_low > 0 or self.ci_high < 0


def failed_result(message: str | None) -> TestResult:
    """A result that carries only the reason it could not be computed."""
    return TestResult(math.nan, math.nan, math.nan, math.nan, math.nan, message)


def check_alternative(alternative: str) -> str:
    """``alternative`` if it is known; otherwise a ``ValueError`` naming the choices."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, "
                         f"not {alternative!r}")
    return alternative


def run_frequentist_test(moments: EffectMoments, *, alpha: float = 0.05,
                         alternative: str = "two-sided", normal: bool = False) -> TestResult:
    """The p-value and confidence interval of an effect.

    Parameters
    ----------
    moments
        The effect and its variance (:func:`~studio.experiments.effects.compute_effect`).
    alpha
        One minus the confidence level.
    alternative
        ``two-sided``, ``greater`` (treatment above control) or ``less``.
    normal
        Use the normal distribution (a z test) instead of Welch's t.
    """
    check_alternative(alternative)
    if moments.error_message:
        return failed_result(moments.error_message)
    estimate, se = moments.estimate, moments.standard_error
    cdf, ppf = _distribution(moments.dof, normal)
    statistic = estimate / se
    if alternative == "two-sided":
        half = ppf(1 - alpha / 2) * se
        return TestResult(estimate, se, estimate - half, estimate + half,
                          2 * cdf(-abs(statistic)))
    half = ppf(1 - alpha) * se
    if alternative == "greater":
        return TestResult(estimate, se, estimate - half, math.inf, cdf(-statistic))
    return TestResult(estimate, se, -math.inf, estimate + half, cdf(statistic))


def _distribution(dof: float, normal: bool):
    """``(cdf, ppf)`` of the normal or of Student's t with ``dof`` degrees of freedom.

    scipy's special functions, which its distribution objects wrap, at a fraction of
    their cost: a campaign with many arms and metrics calls these hundreds of times.
    """
    if normal or math.isinf(dof):
        return (lambda x: float(special.ndtr(x))), (lambda p: float(special.ndtri(p)))
    return (lambda x: float(special.stdtr(dof, x))), (lambda p: float(special.stdtrit(dof, p)))
