"""A test's result in plain language, and as a flat table for a page or a CSV download.

The sentences say what the numbers allow and no more: a lift with its interval, whether
it is significant, how much more data a non-significant lift would need, and what
"chance to win" is (a posterior probability, not ``1 - p``), which people misread.
"""

from __future__ import annotations

import math

import polars as pl

from studio.experiments.analysis import Comparison, ExperimentResult


def format_lift(value: float, relative: bool, digits: int = 1) -> str:
    """``+12.3%`` for a relative lift, ``+0.0123`` for an absolute one; ``n/a`` for NaN."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.{digits}%}" if relative else f"{value:+.4g}"


def format_share(value: float) -> str:
    """A probability or share as a percent that never rounds to a false 0% or 100%."""
    if value is None or math.isnan(value):
        return "n/a"
    if value < 0:
        return f"{value:.1%}"
    if value > 0.995:  # a normal tail never quite reaches 1, whatever the rounding says
        return ">99%"
    if value < 0.005:
        return "<1%"
    return f"{value:.1%}" if abs(value) < 0.1 else f"{value:.0%}"


def format_p(p_value: float) -> str:
    """``p = 0.031`` or ``p < 0.001``."""
    if p_value is None or math.isnan(p_value):
        return "p n/a"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _interval(result, relative: bool) -> str:
    return f"{format_lift(result.ci_low, relative)} to {format_lift(result.ci_high, relative)}"


def _lift_text(comparison: Comparison) -> tuple[str, bool]:
    """The lift with its interval, relative when it exists."""
    relative = comparison.relative.error_message is None
    result = comparison.relative if relative else comparison.absolute
    if comparison.sequential_relative is not None:
        result = comparison.sequential_relative if relative else comparison.sequential_absolute
    return f"{format_lift(result.estimate, relative)} ({_interval(result, relative)})", relative


def describe_comparison(comparison: Comparison, result: ExperimentResult) -> str:
    """One sentence about one treatment against control on one metric."""
    head = f"{comparison.variant} vs {comparison.control} on {comparison.metric.title}"
    if comparison.error_message:
        return f"{head}: {comparison.error_message}"
    lift, relative = _lift_text(comparison)
    level = f"{1 - result.settings.alpha:.0%}"
    chance = f"chance to win {format_share(comparison.bayesian.chance_to_win)}"
    p_text = format_p(comparison.adjusted_p_value)
    if comparison.significant:
        better = (comparison.absolute.estimate > 0) == comparison.metric.higher_is_better
        verdict = "significantly better" if better else "significantly worse"
        return f"{head}: {lift} at {level}, {verdict} ({p_text}; {chance})."
    more = comparison.more_units_per_arm
    if more is None:
        tail = "no difference at all so far"
    elif more == 0:
        tail = "the sample is already large enough for a lift this size, yet it is not there"
    else:
        size = format_lift(comparison.relative.estimate if relative
                           else comparison.absolute.estimate, relative)
        kind = "lift" if comparison.absolute.estimate > 0 else "drop"
        tail = (f"about {more:,} more {result.unit_name} per arm would detect a {kind} of "
                f"{size.lstrip('+-')} with {result.settings.power:.0%} power")
    return f"{head}: {lift} at {level}, not significant yet ({p_text}; {chance}): {tail}."


def describe_srm(result: ExperimentResult) -> str:
    """The sample-ratio sentence: a warning banner or a reassurance."""
    srm = result.srm
    observed = " / ".join(f"{n:,}" for n in srm.observed)
    expected = " / ".join(f"{e:,.0f}" for e in srm.expected)
    if srm.flagged:
        return (f"Sample ratio mismatch: the arms got {observed} {result.unit_name} where the "
                f"plan expected about {expected} ({format_p(srm.p_value)}); assignment or "
                "tracking is broken, so do not trust the lifts until that is explained.")
    return (f"The split {observed} matches the plan (sample-ratio check p = "
            f"{srm.p_value:.3g}).")


def describe_result(result: ExperimentResult) -> list[str]:
    """The plain-language reading of a whole test, one sentence per line."""
    lines = [describe_srm(result)]
    lines += [describe_comparison(c, result) for c in result.comparisons]
    for c in result.comparisons:
        if c.variance_reduction is not None and not c.error_message:
            lines.append(f"CUPED cut the variance of the {c.metric.title} lift for {c.variant} "
                         f"by {format_share(c.variance_reduction)} using the pre-period "
                         "covariate.")
    if result.settings.planned_units:
        lines.append(f"Intervals are sequential, valid however often the test is read "
                     f"(tuned for {result.settings.planned_units:,} {result.unit_name}); "
                     "they are wider than fixed-horizon intervals.")
    if result.settings.correction != "none" and len(result.comparisons) > 1:
        name = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[result.settings.correction]
        lines.append(f"p-values are {name}-adjusted across metrics and arms (guardrails "
                     "excepted); intervals are not.")
    lines.append("Chance to win is the probability, given the data and a flat prior, that "
                 "the variant is truly better than control; it is not a p-value, and one "
                 "minus a p-value is not the chance to win.")
    return lines


def result_rows(result: ExperimentResult) -> list[dict]:
    """One row per metric and arm, control first: the table to show or download."""
    rows = []
    for metric in result.metrics:
        for summary in result.summaries:
            if summary.metric != metric.name:
                continue
            row = {"metric": metric.title, "arm": summary.arm, "units": summary.units,
                   "value": summary.value, "total": summary.total}
            if summary.arm != result.control:
                row.update(_comparison_columns(result.comparison(metric.name, summary.arm)))
            rows.append(row)
    return rows


def _comparison_columns(c: Comparison) -> dict:
    sequential = c.sequential_relative
    return {
        "lift": c.relative.estimate, "lift_low": c.relative.ci_low,
        "lift_high": c.relative.ci_high,
        "difference": c.absolute.estimate, "difference_low": c.absolute.ci_low,
        "difference_high": c.absolute.ci_high,
        "p_value": c.p_value, "adjusted_p_value": c.adjusted_p_value,
        "significant": c.significant,
        "chance_to_win": c.bayesian.chance_to_win,
        "risk_control": c.bayesian.risk_control, "risk_variant": c.bayesian.risk_treatment,
        "sequential_lift_low": sequential.ci_low if sequential else None,
        "sequential_lift_high": sequential.ci_high if sequential else None,
        "sequential_difference_low": c.sequential_absolute.ci_low if sequential else None,
        "sequential_difference_high": c.sequential_absolute.ci_high if sequential else None,
        "variance_reduction": c.variance_reduction,
        "note": c.error_message or c.relative.error_message,
    }


TABLE_SCHEMA = {
    "metric": pl.String, "arm": pl.String, "units": pl.Int64, "value": pl.Float64,
    "total": pl.Float64, "lift": pl.Float64, "lift_low": pl.Float64, "lift_high": pl.Float64,
    "difference": pl.Float64, "difference_low": pl.Float64, "difference_high": pl.Float64,
    "p_value": pl.Float64, "adjusted_p_value": pl.Float64, "significant": pl.Boolean,
    "chance_to_win": pl.Float64, "risk_control": pl.Float64, "risk_variant": pl.Float64,
    "sequential_lift_low": pl.Float64, "sequential_lift_high": pl.Float64,
    "sequential_difference_low": pl.Float64, "sequential_difference_high": pl.Float64,
    "variance_reduction": pl.Float64, "note": pl.String,
}


def result_frame(result: ExperimentResult) -> pl.DataFrame:
    """:func:`result_rows` as a polars frame with fixed columns (``write_csv`` for download)."""
    rows = [{column: row.get(column) for column in TABLE_SCHEMA} for row in result_rows(result)]
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)
