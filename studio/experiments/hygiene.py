"""Warnings about a test's data that no p-value shows.

Each check returns sentences (empty when all is well) for the page and the CLI to list
beside the results: units assigned to more than one arm or more than once, rates that
rest on fewer than :data:`MIN_CONVERSIONS` events in an arm, and guardrail metrics that
got significantly worse.
"""

from __future__ import annotations

from collections.abc import Iterable

from studio.experiments.experiment import AssignmentCounts, ExperimentData

MIN_CONVERSIONS = 25
"""Below this many events in an arm, a rate's normal approximation is shaky."""


def check_assignments(counts: AssignmentCounts, unit_name: str = "units") -> list[str]:
    """Sentences about units in several arms and repeated assignments."""
    notes = []
    if counts.units_in_several_arms:
        notes.append(f"{counts.units_in_several_arms:,} {unit_name} were assigned to more than "
                     "one arm, so the arms are not cleanly separated; check how units were "
                     "assigned.")
    if counts.duplicate_assignments:
        notes.append(f"{counts.duplicate_assignments:,} assignments repeat {unit_name} already "
                     "assigned (a second send or a duplicated row); check the assignment or the "
                     "export for duplicates.")
    return notes


def check_conversions(data: ExperimentData) -> list[str]:
    """One sentence per rate with fewer than :data:`MIN_CONVERSIONS` events in some arm."""
    notes = []
    for metric in data.metrics:
        if metric.kind != "binary" or metric.guardrail:
            continue
        few = []
        for arm in data.arms:
            statistic = arm.statistics.get(metric.name)
            events = round(getattr(statistic, "post", statistic).sum) if statistic else None
            if events is not None and events < MIN_CONVERSIONS:
                few.append(f"{arm.name} ({events})")
        if few:
            arms = "arm" if len(few) == 1 else "arms"
            notes.append(f"{metric.title.capitalize()} has fewer than {MIN_CONVERSIONS} events "
                         f"in {arms} {', '.join(few)}; its intervals are unreliable until more "
                         "data arrive.")
    return notes


def check_guardrails(comparisons: Iterable) -> list[str]:
    """Sentences about guardrail metrics whose interval lies wholly on the bad side.

    ``comparisons`` are :class:`~studio.experiments.analysis.Comparison` objects.
    """
    notes = []
    for comparison in comparisons:
        metric, result = comparison.metric, comparison.absolute
        if not metric.guardrail or result.error_message:
            continue
        worse = result.ci_high < 0 if metric.higher_is_better else result.ci_low > 0
        if worse:
            notes.append(f"Guardrail {metric.title} got worse in {comparison.variant} "
                         f"({comparison.variant_mean:.4g} vs {comparison.control_mean:.4g} in "
                         f"{comparison.control}); weigh that against any win.")
    return notes
