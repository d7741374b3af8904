"""Run every family of tests over an experiment's arms and metrics.

For each metric and each treatment arm, :func:`compare_metric` applies CUPED when the
metric carries a covariate, computes the absolute and relative lift with their
frequentist intervals (a z test for rates, Welch's t otherwise), the Bayesian chance to
win and risk, and, when the planned sample size is known, the sequential intervals.
:func:`analyze_experiment` then adjusts the p-values of the non-guardrail comparisons
for multiplicity, checks the split and collects the hygiene warnings. Guardrail metrics
are always tested two-sided and never adjusted, so harm is not explained away.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from studio.errors import UserError
from studio.experiments import cuped, hygiene
from studio.experiments.adjustments import CORRECTIONS, adjust_p_values
from studio.experiments.bayesian import BayesianResult, GaussianPrior, run_bayesian_test
from studio.experiments.effects import compute_effect
from studio.experiments.experiment import ExperimentData, Metric
from studio.experiments.frequentist import ALTERNATIVES, TestResult, run_frequentist_test
from studio.experiments.power import additional_units_per_arm
from studio.experiments.sequential import run_sequential_test
from studio.experiments.srm import SRM_THRESHOLD, SrmResult, check_sample_ratio
from studio.experiments.statistics import CovariateStatistic, Statistic


@dataclass(frozen=True)
class AnalysisSettings:
    """How to read a test.

    Attributes
    ----------
    alpha
        One minus the confidence level (0.05 for 95% intervals).
    alternative
        ``two-sided``, ``greater`` (only a rise of the treatment counts) or ``less``.
    correction
        ``holm``, ``bh`` (Benjamini-Hochberg) or ``none`` across metrics and arms.
    planned_units
        Units the test was planned to reach, all arms together; when given, intervals
        and decisions are sequential (valid however often the test is read).
    prior
        A Gaussian prior on relative lifts for the Bayesian numbers (flat by default).
    power
        The power the plain-language reading plans with.
    """

    alpha: float = 0.05
    alternative: str = "two-sided"
    correction: str = "holm"
    planned_units: int | None = None
    prior: GaussianPrior | None = None
    power: float = 0.8
    srm_threshold: float = SRM_THRESHOLD

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 0.5:
            raise UserError(f"Alpha must be between 0 and 0.5 (e.g. 0.05), not {self.alpha:g}.")
        if self.alternative not in ALTERNATIVES:
            raise UserError(f"The alternative must be one of {', '.join(ALTERNATIVES)}, "
                            f"not {self.alternative!r}.")
        if self.correction not in CORRECTIONS:
            raise UserError(f"The correction must be one of {', '.join(CORRECTIONS)}, "
                            f"not {self.correction!r}.")
        if self.planned_units is not None and self.planned_units < 2:
            raise UserError(f"The planned sample size must be at least 2 units, "
                            f"not {self.planned_units}.")


@dataclass(frozen=True)
class ArmSummary:
    """One arm's value of one metric, for the per-arm table."""

    arm: str
    metric: str
    units: int
    value: float
    total: float


@dataclass(frozen=True)
class Comparison:
    """One treatment against control on one metric.

    Attributes
    ----------
    control_mean, variant_mean
        The metric's plain values in the two arms.
    absolute, relative
        Frequentist lift, interval and p-value, absolute and relative to control.
    bayesian
        Chance to win, risk and credible interval (on the relative lift when it exists).
    sequential_absolute, sequential_relative
        Always-valid intervals, when the planned sample size is known.
    p_value, adjusted_p_value
        The p-value the decision rests on (absolute lift, sequential when planned),
        before and after the multiplicity adjustment.
    significant
        ``adjusted_p_value < alpha``.
    theta, variance_reduction
        CUPED's slope and the share of the lift's variance it removed (None without).
    more_units_per_arm
        Units per arm still needed to detect the observed lift at the planned power.
    error_message
        Why the comparison could not be made at all; a relative lift that alone is
        undefined (a control at zero) says so in ``relative.error_message``.
    """

    metric: Metric
    variant: str
    control: str
    control_units: int
    variant_units: int
    control_mean: float
    variant_mean: float
    absolute: TestResult
    relative: TestResult
    bayesian: BayesianResult
    sequential_absolute: TestResult | None
    sequential_relative: TestResult | None
    p_value: float
    adjusted_p_value: float
    significant: bool
    theta: float | None = None
    variance_reduction: float | None = None
    more_units_per_arm: int | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class ExperimentResult:
    """Everything a page or the CLI shows about a test."""

    control: str
    arms: tuple[str, ...]
    metrics: tuple[Metric, ...]
    summaries: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SrmResult
    warnings: tuple[str, ...]
    settings: AnalysisSettings
    unit_name: str = "units"
    source: dict = field(default_factory=dict)

    def comparison(self, metric: str, variant: str) -> Comparison:
        """The comparison of ``variant`` with control on ``metric``."""
        for item in self.comparisons:
            if item.metric.name == metric and item.variant == variant:
                return item
        raise KeyError((metric, variant))

    def to_dict(self) -> dict:
        """Plain JSON-ready values (NaN and infinities become ``None``)."""
        return _plain(asdict(self))


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def compare_metric(metric: Metric, control: Statistic, treatment: Statistic,
                   settings: AnalysisSettings, names: tuple[str, str]) -> Comparison:
    """Every test of one metric for one treatment; ``names`` are (control, treatment)."""
    theta = reduction = None
    plain_control, plain_treatment = control, treatment
    if isinstance(control, CovariateStatistic) and isinstance(treatment, CovariateStatistic):
        reduction = cuped.variance_reduction(control, treatment)
        control, treatment = cuped.adjust_arms(control, treatment)
        theta = control.theta
    alternative = "two-sided" if metric.guardrail else settings.alternative
    normal, alpha = metric.kind == "binary", settings.alpha
    absolute_moments = compute_effect(control, treatment, relative=False)
    relative_moments = compute_effect(control, treatment, relative=True)
    absolute = run_frequentist_test(absolute_moments, alpha=alpha, alternative=alternative,
                                    normal=normal)
    relative = run_frequentist_test(relative_moments, alpha=alpha, alternative=alternative,
                                    normal=normal)
    bayes_moments = absolute_moments if relative_moments.error_message else relative_moments
    bayesian = run_bayesian_test(bayes_moments, alpha=alpha, prior=settings.prior,
                                 higher_is_better=metric.higher_is_better)
    sequential_absolute = sequential_relative = None
    if settings.planned_units:
        sequential_absolute, sequential_relative = (
            run_sequential_test(moments, planned_units=settings.planned_units, alpha=alpha,
                                alternative=alternative)
            for moments in (absolute_moments, relative_moments))
    decisive = sequential_absolute or absolute
    return Comparison(
        metric=metric, variant=names[1], control=names[0],
        control_units=plain_control.n, variant_units=plain_treatment.n,
        control_mean=plain_control.mean, variant_mean=plain_treatment.mean,
        absolute=absolute, relative=relative, bayesian=bayesian,
        sequential_absolute=sequential_absolute, sequential_relative=sequential_relative,
        p_value=decisive.p_value, adjusted_p_value=decisive.p_value,
        significant=decisive.p_value < alpha, theta=theta, variance_reduction=reduction,
        more_units_per_arm=additional_units_per_arm(
            absolute.estimate, absolute.standard_error, plain_control.n + plain_treatment.n,
            settings.power, alpha, alternative) if not absolute.error_message else None,
        error_message=absolute.error_message,
    )


def _adjust(comparisons: list[Comparison], settings: AnalysisSettings) -> list[Comparison]:
    """Multiplicity-adjusted p-values for the non-guardrail comparisons."""
    primary = [i for i, c in enumerate(comparisons) if not c.metric.guardrail]
    adjusted = adjust_p_values([comparisons[i].p_value for i in primary], settings.correction)
    result = list(comparisons)
    for i, p_value in zip(primary, adjusted, strict=True):
        result[i] = replace(result[i], adjusted_p_value=p_value,
                            significant=p_value < settings.alpha)
    return result


def _summaries(data: ExperimentData) -> list[ArmSummary]:
    rows = []
    for metric in data.metrics:
        for arm in data.arms:
            statistic = arm.statistics[metric.name]
            plain = getattr(statistic, "post", None) or getattr(statistic, "numerator", statistic)
            rows.append(ArmSummary(arm.name, metric.name, statistic.n, statistic.mean,
                                   plain.sum))
    return rows


def analyze_experiment(data: ExperimentData,
                       settings: AnalysisSettings | None = None) -> ExperimentResult:
    """Compare every treatment with control on every metric; check the split and hygiene."""
    settings = settings or AnalysisSettings()
    control = data.arm(data.control)
    comparisons = [
        compare_metric(metric, control.statistics[metric.name], arm.statistics[metric.name],
                       settings, (control.name, arm.name))
        for metric in data.metrics for arm in data.treatments
    ]
    comparisons = _adjust(comparisons, settings)
    srm = check_sample_ratio([arm.units for arm in data.arms], data.planned_weights,
                             settings.srm_threshold)
    warnings = [*data.notes, *hygiene.check_assignments(data.assignment, data.unit_name),
                *hygiene.check_conversions(data), *hygiene.check_guardrails(comparisons)]
    return ExperimentResult(
        control=data.control, arms=tuple(arm.name for arm in data.arms), metrics=data.metrics,
        summaries=tuple(_summaries(data)), comparisons=tuple(comparisons), srm=srm,
        warnings=tuple(warnings), settings=settings, unit_name=data.unit_name,
        source=dict(data.source),
    )
