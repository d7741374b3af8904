"""Power, minimum detectable effect and sample size, for planning a test and reading one.

All three come from one normal approximation: a two-arm test of an effect ``delta`` with
per-unit variances ``v_c``, ``v_t`` and ``n`` units per arm has standard error
``se = sqrt((v_c + v_t) / n)`` and power

    Phi(|delta| / se - z) + Phi(-|delta| / se - z)     (two-sided, z = z_{1 - alpha/2})

(one-sided: the first term, with ``z = z_{1 - alpha}``). The sample size per arm is
``(z + z_power)^2 (v_c + v_t) / delta^2``, rounded up; it ignores the far tail, which at
any useful power changes nothing. With more than two arms every treatment is compared
with control, so ``alpha`` is split Bonferroni-style across those ``arms - 1``
comparisons, a slightly conservative stand-in for the Holm adjustment used on results.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import optimize, stats

from studio.errors import UserError
from studio.experiments.frequentist import check_alternative


def critical_value(alpha: float, alternative: str = "two-sided") -> float:
    """The normal quantile a test statistic must pass to be significant."""
    check_alternative(alternative)
    return float(stats.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha))


def compute_power(effect: float, variance_control: float, variance_treatment: float,
                  units_per_arm: float, alpha: float = 0.05,
                  alternative: str = "two-sided") -> float:
    """The chance that a test with ``units_per_arm`` units per arm detects ``effect``."""
    se = math.sqrt((variance_control + variance_treatment) / units_per_arm)
    z = critical_value(alpha, alternative)
    shift = effect / se
    if alternative == "two-sided":
        return float(stats.norm.cdf(abs(shift) - z) + stats.norm.cdf(-abs(shift) - z))
    return float(stats.norm.cdf((shift if alternative == "greater" else -shift) - z))


def required_units_per_arm(effect: float, variance_control: float, variance_treatment: float,
                           power: float = 0.8, alpha: float = 0.05,
                           alternative: str = "two-sided") -> int:
    """Units per arm for a test of ``effect`` to reach ``power`` (rounded up)."""
    if effect == 0:
        raise ValueError("a zero effect cannot be detected with any sample size")
    z = critical_value(alpha, alternative) + float(stats.norm.ppf(power))
    return math.ceil(z**2 * (variance_control + variance_treatment) / effect**2)


def detectable_mean_effect(variance: float, units_per_arm: float, power: float = 0.8,
                           alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """The smallest absolute effect on a mean (equal variances) detected with ``power``."""
    z = critical_value(alpha, alternative) + float(stats.norm.ppf(power))
    return z * math.sqrt(2 * variance / units_per_arm)


def detectable_rate_effect(baseline_rate: float, units_per_arm: float, power: float = 0.8,
                           alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """The smallest absolute rise of a rate over ``baseline_rate`` detected with ``power``.

    The treatment's variance depends on the rise itself, so it is solved for numerically.
    Returns ``nan`` when no rise up to a rate of 1 is enough.
    """
    def shortfall(delta: float) -> float:
        rate = baseline_rate + delta
        return compute_power(delta, baseline_rate * (1 - baseline_rate), rate * (1 - rate),
                             units_per_arm, alpha, alternative) - power

    top = 1 - baseline_rate - 1e-12
    if shortfall(top) < 0:
        return math.nan
    return float(optimize.brentq(shortfall, 1e-12, top, xtol=1e-12))


@dataclass(frozen=True)
class PowerPlan:
    """How many units a rate test needs.

    Attributes
    ----------
    baseline_rate, treatment_rate
        The control's expected rate and the rate the test should detect.
    absolute_effect, relative_effect
        The minimum detectable effect both ways.
    units_per_arm, total_units
        The sample size (every arm gets ``units_per_arm``).
    alpha_per_comparison
        ``alpha`` split across the ``arms - 1`` comparisons with control.
    """

    baseline_rate: float
    treatment_rate: float
    absolute_effect: float
    relative_effect: float
    power: float
    alpha: float
    arms: int
    alpha_per_comparison: float
    units_per_arm: int
    total_units: int
    alternative: str

    def to_dict(self) -> dict:
        """Plain values for JSON."""
        return asdict(self)


def _check_plan(baseline_rate: float, mde: float, power: float, alpha: float, arms: int) -> None:
    if not 0 < baseline_rate < 1:
        raise UserError(f"The baseline rate must be between 0 and 1 (e.g. 0.03 for 3%), "
                        f"not {baseline_rate:g}.")
    if mde <= 0:
        raise UserError(f"The minimum detectable effect must be positive, not {mde:g}.")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise UserError("Power and alpha must both be between 0 and 1 (e.g. 0.8 and 0.05).")
    if arms < 2:
        raise UserError(f"A test needs at least two arms, not {arms}.")


def plan_rate_test(baseline_rate: float, mde: float, *, power: float = 0.8, alpha: float = 0.05,
                   arms: int = 2, relative: bool = True,
                   alternative: str = "two-sided") -> PowerPlan:
    """Units needed to detect a rise of ``mde`` over ``baseline_rate``.

    Parameters
    ----------
    baseline_rate
        The control's expected rate (0.03 for 3%).
    mde
        The minimum detectable effect: relative (0.1 = a 10% rise) or absolute
        (0.003 = 0.3 points) as ``relative`` says.
    power, alpha
        Chance of detecting the effect if real; false-positive rate of the whole test.
    arms
        Arms including control; each gets the same number of units.
    relative
        Whether ``mde`` is relative to the baseline rate.
    alternative
        ``two-sided``, or ``greater`` for a test that only looks for a rise.
    """
    _check_plan(baseline_rate, mde, power, alpha, arms)
    effect = baseline_rate * mde if relative else mde
    treatment_rate = baseline_rate + effect
    if treatment_rate >= 1:
        raise UserError(f"A rise of {mde:g} over {baseline_rate:g} passes a rate of 1; "
                        "use a smaller effect.")
    alpha_each = alpha / (arms - 1)
    per_arm = required_units_per_arm(effect, baseline_rate * (1 - baseline_rate),
                                     treatment_rate * (1 - treatment_rate), power, alpha_each,
                                     alternative)
    return PowerPlan(baseline_rate, treatment_rate, effect, effect / baseline_rate, power, alpha,
                     arms, alpha_each, per_arm, per_arm * arms, alternative)


def additional_units_per_arm(effect: float, standard_error: float, units: int,
                             power: float = 0.8, alpha: float = 0.05,
                             alternative: str = "two-sided") -> int | None:
    """More units per arm (at the current split) for a test to detect ``effect`` with ``power``.

    The standard error shrinks with the square root of the sample, so the sample must
    grow by ``k = (se (z + z_power) / effect)^2``; ``units`` are both arms' units now.
    ``None`` when the effect is zero (nothing to detect); 0 when already enough.
    """
    if effect == 0 or not math.isfinite(standard_error):
        return None
    z = critical_value(alpha, alternative) + float(stats.norm.ppf(power))
    growth = (standard_error * z / effect) ** 2
    return max(0, math.ceil((growth - 1) * units / 2))


def plan_detectable_effect(baseline_rate: float, units_per_arm: int, *, power: float = 0.8,
                           alpha: float = 0.05, arms: int = 2,
                           alternative: str = "two-sided") -> PowerPlan:
    """The smallest rise over ``baseline_rate`` that ``units_per_arm`` per arm detect.

    The planner backwards: for a list of a given size, what can a test hope to see?
    """
    _check_plan(baseline_rate, 1.0, power, alpha, arms)
    if units_per_arm < 2:
        raise UserError(f"Each arm needs at least 2 units, not {units_per_arm}.")
    alpha_each = alpha / (arms - 1)
    effect = detectable_rate_effect(baseline_rate, units_per_arm, power, alpha_each, alternative)
    if math.isnan(effect):
        raise UserError(f"{units_per_arm:,} units per arm cannot detect any rise over "
                        f"{baseline_rate:g} with {power:.0%} power; plan a larger test.")
    return PowerPlan(baseline_rate, baseline_rate + effect, effect, effect / baseline_rate, power,
                     alpha, arms, alpha_each, units_per_arm, units_per_arm * arms, alternative)
