"""Confidence sequences: intervals that stay valid however often the test is read.

A fixed-horizon interval covers the truth 95% of the time *at one planned look*; read
every day and stopped at the first "significant" day, it is wrong far more often. The
asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9; GrowthBook's
sequential engine) covers the truth at every look simultaneously with probability
``1 - alpha``. With ``N`` units so far and per-unit variance ``s2`` (here the effect's
variance times ``N``), its half-width is::

    sqrt(s2) * sqrt(2 (N rho^2 + 1) / (N rho)^2 * log(sqrt(N rho^2 + 1) / alpha))

The mixing parameter ``rho`` (their eq. 161) makes the sequence tightest at the planned
number of units, so tune it with the sample size the test was planned for. The price of
peeking is width: at the planned size and ``alpha = 0.05`` the sequence is about 1.55
times as wide as the fixed-horizon interval, and wider still before and after it.

The always-valid p-value is the smallest ``alpha`` whose sequence excludes zero, with
``rho`` held at its planned value; it solves the half-width equation in closed form.
One-sided tests take one bound of the two-sided sequence at ``2 alpha``.
"""

from __future__ import annotations

import math

from studio.experiments.effects import EffectMoments
from studio.experiments.frequentist import TestResult, check_alternative, failed_result


def sequential_rho(alpha: float, planned_units: float) -> float:
    """The mixing parameter that makes the sequence tightest after ``planned_units`` units."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / planned_units)


def sequential_halfwidth(unit_variance: float, units: int, rho: float, alpha: float) -> float:
    """Half-width of the two-sided confidence sequence after ``units`` units."""
    spread = units * rho**2 + 1
    return math.sqrt(unit_variance) * math.sqrt(
        2 * spread / (units * rho) ** 2 * math.log(math.sqrt(spread) / alpha))


def sequential_p_value(estimate: float, unit_variance: float, units: int, rho: float) -> float:
    """The smallest two-sided ``alpha`` whose sequence (at this ``rho``) excludes zero."""
    spread = units * rho**2 + 1
    exponent = -(estimate**2) * (units * rho) ** 2 / (2 * unit_variance * spread)
    return min(1.0, math.sqrt(spread) * math.exp(exponent))


def run_sequential_test(moments: EffectMoments, *, planned_units: float, alpha: float = 0.05,
                        alternative: str = "two-sided") -> TestResult:
    """An always-valid interval and p-value for an effect.

    Parameters
    ----------
    moments
        The effect and its variance so far.
    planned_units
        Units (both arms together) the test was planned to reach; it tunes the sequence.
    alpha
        One minus the coverage of the whole sequence.
    alternative
        ``two-sided``, ``greater`` or ``less``.
    """
    check_alternative(alternative)
    if planned_units <= 0:
        raise ValueError("planned_units must be positive")
    if moments.error_message:
        return failed_result(moments.error_message)
    level = alpha if alternative == "two-sided" else 2 * alpha
    rho = sequential_rho(level, planned_units)
    unit_variance = moments.variance * moments.units
    half = sequential_halfwidth(unit_variance, moments.units, rho, level)
    p_two = sequential_p_value(moments.estimate, unit_variance, moments.units, rho)
    estimate, se = moments.estimate, moments.standard_error
    if alternative == "two-sided":
        return TestResult(estimate, se, estimate - half, estimate + half, p_two)
    favoured = estimate > 0 if alternative == "greater" else estimate < 0
    p_value = p_two / 2 if favoured else 1.0
    if alternative == "greater":
        return TestResult(estimate, se, estimate - half, math.inf, p_value)
    return TestResult(estimate, se, -math.inf, estimate + half, p_value)
