"""The analysis over arms and metrics: honest error rates, adjustment, guardrails."""

from __future__ import annotations

import numpy as np
import pytest

from studio.errors import UserError
from studio.experiments.adjustments import holm
from studio.experiments.analysis import AnalysisSettings, analyze_experiment, compare_metric
from studio.experiments.experiment import Arm, ExperimentData, Metric
from studio.experiments.statistics import ProportionStatistic, SampleMeanStatistic

SIMS, UNITS = 10_000, 2_000


def zero_inflated_sums(rng, rate: float, size: int):
    """Per simulated arm: the sum and sum of squares of ``size`` mostly-zero revenues."""
    buyers = rng.binomial(UNITS, rate, size=size)
    owner = np.repeat(np.arange(size), buyers)
    values = rng.lognormal(3.5, 1.0, size=buyers.sum())
    return (np.bincount(owner, values, minlength=size),
            np.bincount(owner, values**2, minlength=size))


@pytest.mark.parametrize("kind", ["binary", "mean"])
def test_a_over_a_false_positive_rate_is_within_one_point_of_alpha(kind):
    rng = np.random.default_rng(31 if kind == "binary" else 32)
    settings, metric = AnalysisSettings(alpha=0.05), Metric("m", kind)
    if kind == "binary":
        counts = rng.binomial(UNITS, 0.04, size=(2, SIMS))
        arms = [[ProportionStatistic(UNITS, float(c)) for c in row] for row in counts]
    else:
        arms = [[SampleMeanStatistic(UNITS, float(s), float(q))
                 for s, q in zip(*zero_inflated_sums(rng, 0.04, SIMS), strict=True)]
                for _ in range(2)]
    wins = sum(compare_metric(metric, a, b, settings, ("A", "B")).significant
               for a, b in zip(*arms, strict=True))
    assert abs(wins / SIMS - 0.05) <= 0.01


def arm(name: str, units: int, conversions: int, unsubscribes: int, weight=None) -> Arm:
    return Arm(name, units, {"conversion": ProportionStatistic(units, conversions),
                             "clicks": ProportionStatistic(units, conversions * 3),
                             "unsubscribes": ProportionStatistic(units, unsubscribes)}, weight)


METRICS = (Metric("conversion", "binary"), Metric("clicks", "binary"),
           Metric("unsubscribes", "binary", guardrail=True, higher_is_better=False))


def test_holm_adjusts_goal_metrics_only_and_guardrails_stay_two_sided():
    data = ExperimentData(
        arms=(arm("A", 5000, 200, 10, 0.5), arm("B", 5000, 245, 30, 0.25),
              arm("C", 5000, 215, 11, 0.25)),
        control="A", metrics=METRICS)
    result = analyze_experiment(data, AnalysisSettings(alternative="greater"))
    goals = [c for c in result.comparisons if not c.metric.guardrail]
    assert [c.adjusted_p_value for c in goals] == pytest.approx(holm([c.p_value for c in goals]))
    guardrail = result.comparison("unsubscribes", "B")
    assert guardrail.adjusted_p_value == guardrail.p_value
    assert guardrail.absolute.ci_high < float("inf")  # two-sided although the test is one-sided
    assert any("Guardrail unsubscribes got worse in B" in w for w in result.warnings)
    assert not any("in C" in w for w in result.warnings)
    assert result.srm.flagged  # 5000 / 5000 / 5000 where 50 / 25 / 25 was planned


def test_fewer_than_25_conversions_are_flagged_per_arm():
    data = ExperimentData(arms=(arm("A", 900, 30, 1), arm("B", 900, 18, 1)), control="A",
                          metrics=METRICS)
    warnings = analyze_experiment(data).warnings
    assert [w for w in warnings if "fewer than 25" in w] == [
        "Conversion has fewer than 25 events in arm B (18); its intervals are unreliable "
        "until more data arrive."]


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="correction must be one of holm, bh, none"):
        AnalysisSettings(correction="bonferroni")
    with pytest.raises(UserError, match="Alpha must be between 0 and 0.5"):
        AnalysisSettings(alpha=5)
