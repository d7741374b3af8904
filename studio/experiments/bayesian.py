"""Bayesian reading of an effect: chance to beat control, expected loss, credible interval.

The effect's likelihood is the normal approximation of
:func:`~studio.experiments.effects.compute_effect`; with the default flat prior the
posterior is ``N(estimate, standard_error^2)`` (GrowthBook's effect-based engine). A
proper Gaussian prior on the effect shrinks it towards the prior mean.

* **Chance to win**: the posterior probability that the treatment is better than
  control (higher, or lower for a metric where lower is better). It is *not* ``1 - p``.
* **Risk** (expected loss): what choosing an arm costs on average in the worlds where
  it is the worse one, ``E[max(0, -effect)]`` for the treatment and
  ``E[max(0, effect)]`` for control (signs flipped when lower is better), in the
  effect's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from studio.experiments.effects import EffectMoments


@dataclass(frozen=True)
class GaussianPrior:
    """A normal prior on the effect; ``proper=False`` means flat (no prior information)."""

    mean: float = 0.0
    variance: float = 0.3**2
    proper: bool = False


@dataclass(frozen=True)
class BayesianResult:
    """The posterior of an effect.

    Attributes
    ----------
    mean, standard_deviation
        The posterior of the lift.
    chance_to_win
        Posterior probability that the treatment beats control.
    risk_control, risk_treatment
        Expected loss of shipping control, and of shipping the treatment.
    ci_low, ci_high
        Equal-tailed credible interval at ``1 - alpha``.
    relative
        Whether the lift is relative (else absolute).
    error_message
        Why nothing could be computed (the numbers are NaN then).
    """

    mean: float
    standard_deviation: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    ci_low: float
    ci_high: float
    relative: bool
    error_message: str | None = None


def expected_positive_part(mean: float, sd: float) -> float:
    """``E[max(0, X)]`` for ``X ~ N(mean, sd^2)``: ``mean Phi(mean/sd) + sd phi(mean/sd)``."""
    z = mean / sd
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return float(mean * special.ndtr(z) + sd * density)


def run_bayesian_test(moments: EffectMoments, *, alpha: float = 0.05,
                      prior: GaussianPrior | None = None,
                      higher_is_better: bool = True) -> BayesianResult:
    """Posterior chance to win, risk and credible interval of an effect.

    Parameters
    ----------
    moments
        The effect and its variance.
    alpha
        One minus the credible level.
    prior
        A Gaussian prior on the effect's scale; flat when ``None`` or not ``proper``.
    higher_is_better
        ``False`` for a metric such as unsubscribes, where the treatment wins by being lower.
    """
    if moments.error_message:
        nan = math.nan
        return BayesianResult(nan, nan, nan, nan, nan, nan, nan, moments.relative,
                              moments.error_message)
    precision = 1 / moments.variance
    mean = moments.estimate
    if prior is not None and prior.proper:
        posterior_precision = precision + 1 / prior.variance
        mean = (mean * precision + prior.mean / prior.variance) / posterior_precision
        precision = posterior_precision
    sd = math.sqrt(1 / precision)
    gain = mean if higher_is_better else -mean  # the effect in the "better" direction
    half = float(special.ndtri(1 - alpha / 2)) * sd
    return BayesianResult(
        mean=mean, standard_deviation=sd,
        chance_to_win=float(special.ndtr(gain / sd)),
        risk_control=expected_positive_part(gain, sd),
        risk_treatment=expected_positive_part(-gain, sd),
        ci_low=mean - half, ci_high=mean + half, relative=moments.relative,
    )
