"""The A/B planner's inputs, as a marketer types them, turned into a sample size.

The page asks in percents (a 3% baseline, a 10% lift, 80% power) and the planner in
:mod:`studio.experiments.power` works in fractions; this module converts one way and
writes the answer back as a sentence, for both directions: the recipients a lift needs,
and the lift a list of a given size can detect.
"""

from __future__ import annotations

from studio.experiments.power import PowerPlan, plan_detectable_effect, plan_rate_test


def plan_for_lift(baseline_percent: float, mde_percent: float, *, relative: bool = True,
                  power_percent: float = 80.0, alpha: float = 0.05, arms: int = 2,
                  alternative: str = "two-sided") -> PowerPlan:
    """Recipients per arm to detect a rise of the rate, from percent inputs.

    Parameters
    ----------
    baseline_percent
        The control's expected rate in percent (3 for 3%).
    mde_percent, relative
        The smallest rise worth detecting: a relative percent (10 = a tenth more) or,
        with ``relative=False``, percentage points (0.3 = from 3.0% to 3.3%).
    power_percent, alpha
        Chance to detect the rise if it is real (percent); false-positive rate.
    arms
        Arms including control.
    alternative
        ``two-sided``, or ``greater`` for a test that only looks for a rise.
    """
    return plan_rate_test(baseline_percent / 100, mde_percent / 100,
                          power=power_percent / 100, alpha=alpha, arms=arms,
                          relative=relative, alternative=alternative)


def plan_for_size(baseline_percent: float, units_per_arm: int, *, power_percent: float = 80.0,
                  alpha: float = 0.05, arms: int = 2,
                  alternative: str = "two-sided") -> PowerPlan:
    """The smallest rise that ``units_per_arm`` recipients per arm detect."""
    return plan_detectable_effect(baseline_percent / 100, int(units_per_arm),
                                  power=power_percent / 100, alpha=alpha, arms=arms,
                                  alternative=alternative)


def describe_plan(plan: PowerPlan, unit_name: str = "recipients") -> str:
    """The plan in one sentence, as ``studio ab plan`` prints it."""
    split = (f" ({plan.alpha_per_comparison:.3g} for each of the {plan.arms - 1} comparisons "
             "with control)" if plan.arms > 2 else "")
    return (f"{plan.units_per_arm:,} {unit_name} per arm ({plan.total_units:,} in all) detect "
            f"a rise from {plan.baseline_rate:.2%} to {plan.treatment_rate:.2%} "
            f"({plan.relative_effect:+.1%}, {plan.absolute_effect * 100:+.2f} points) with "
            f"{plan.power:.0%} power at alpha {plan.alpha:g}{split}.")
