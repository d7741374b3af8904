"""What an experiment looks like once its data are aggregated: arms, metrics, statistics.

Both sources, the warehouse (:mod:`~studio.experiments.campaigns`) and a file of units
(:mod:`~studio.experiments.unit_file`), produce an :class:`ExperimentData`; the analysis
never sees a per-unit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.experiments.statistics import Statistic

METRIC_KINDS = ("binary", "mean", "ratio")


@dataclass(frozen=True)
class Metric:
    """One thing the test measures.

    Attributes
    ----------
    name
        Identifier (a column name for files).
    kind
        ``binary`` (a rate of 0/1 outcomes), ``mean`` (a number per unit) or ``ratio``
        (a ratio of two per-unit sums, such as average order value).
    label
        How people call it ("conversion rate"); the name when empty.
    guardrail
        A metric that must not get worse (unsubscribes), rather than one to improve.
    higher_is_better
        ``False`` when the treatment wins by lowering the metric.
    """

    name: str
    kind: str
    label: str = ""
    guardrail: bool = False
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"metric kind must be one of {', '.join(METRIC_KINDS)}, "
                             f"not {self.kind!r}")

    @property
    def title(self) -> str:
        """The label, or the name when there is none."""
        return self.label or self.name


@dataclass(frozen=True)
class AssignmentCounts:
    """How clean the assignment was.

    Attributes
    ----------
    units_in_several_arms
        Units that were assigned to more than one arm (kept in their first arm when the
        order is known, else in the row's arm).
    duplicate_assignments
        Assignments beyond each unit's first: a second send of the campaign, a repeated row.
    """

    units_in_several_arms: int = 0
    duplicate_assignments: int = 0


@dataclass(frozen=True)
class Arm:
    """One arm's units and, per metric name, its sufficient statistics."""

    name: str
    units: int
    statistics: dict[str, Statistic]
    weight: float | None = None


@dataclass(frozen=True)
class ExperimentData:
    """Everything the analysis needs, all of it aggregated.

    Attributes
    ----------
    arms
        Control and treatments, in display order.
    control
        The control arm's name.
    metrics
        What to compare, in display order.
    assignment
        Hygiene counts of the assignment.
    notes
        Warnings raised while aggregating (rows dropped, a cap of zero, ...).
    unit_name
        What a unit is called in sentences ("recipients", "units").
    source
        How the data were obtained (campaign, window, cap), for the record.
    """

    arms: tuple[Arm, ...]
    control: str
    metrics: tuple[Metric, ...]
    assignment: AssignmentCounts = AssignmentCounts()
    notes: tuple[str, ...] = ()
    unit_name: str = "units"
    source: dict = field(default_factory=dict)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    @property
    def treatments(self) -> tuple[Arm, ...]:
        """Every arm but control."""
        return tuple(arm for arm in self.arms if arm.name != self.control)

    @property
    def planned_weights(self) -> list[float] | None:
        """The planned split, when every arm has one."""
        weights = [arm.weight for arm in self.arms]
        return None if any(w is None for w in weights) else weights  # type: ignore[return-value]
