"""What the A/B results page shows, computed without Streamlit.

The page is layout; this module holds its choices and conversions:

* the **sources**: the campaign tests in the warehouse as labelled choices, and an uploaded
  CSV read as text, with guesses for its variant column, its control arm and the kind of
  each metric column, so a file analyses with a few clicks;
* the **per-arm table**, values written the way each metric is read (a rate as a percent,
  money with two decimals), and the **download**, which is
  :func:`~studio.experiments.reading.result_frame` as CSV;
* the **lift chart**: one row per metric and variant, the relative lift with its interval
  around a zero line, coloured by the decision;
* the **sample-ratio banner**, with the check's p-value written out.

The planner's conversions live in :mod:`studio.ab_planner`.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import polars as pl

from studio.errors import UserError
from studio.experiments.analysis import (
    AnalysisSettings,
    Comparison,
    ExperimentResult,
    analyze_experiment,
)
from studio.experiments.campaigns import list_campaign_tests
from studio.experiments.experiment import Metric
from studio.experiments.reading import describe_srm, format_share, result_frame
from studio.experiments.unit_file import read_unit_file

MAX_ARMS = 20
"""A column with more distinct values than this is a metric or an id, not an assignment."""
VARIANT_NAMES = ("variant", "arm", "group", "treatment", "bucket", "segment", "cell")
CONTROL_NAMES = ("control", "a", "baseline", "holdout", "no e-mail", "no email", "off")
BINARY_WORDS = {"0", "1", "true", "false", "yes", "no"}
COLOURS = {"better": "#2E7D32", "worse": "#C62828", "not significant": "#757575"}

# ---------------------------------------------------------------- sources


def campaign_choices(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The campaign tests, newest first, as ``{campaign_id: label}`` for a picker."""
    return {row["campaign_id"]: f"{row['campaign_id']} · {row['name'] or 'unnamed'} "
            f"({row['channel']}, {row['sent_at']:%d %b %Y})"
            for row in list_campaign_tests(con)}


def read_upload(content: bytes, name: str) -> pl.DataFrame:
    """An uploaded CSV as text columns, for the pickers; one sentence if it cannot be one.

    The analysis reads the file again with every check of
    :func:`~studio.experiments.unit_file.read_unit_file`; this read only offers choices.
    """
    try:
        frame = pl.read_csv(io.BytesIO(content), infer_schema=False)
    except pl.exceptions.NoDataError:
        frame = pl.DataFrame()
    except (pl.exceptions.ComputeError, UnicodeDecodeError) as error:
        raise UserError(f"{name} is not a readable CSV file ({str(error).splitlines()[0]}); "
                        "save it as comma-separated text with a header row.") from None
    if frame.height == 0:
        raise UserError(f"{name} has no rows; it needs a header and one row per unit.")
    if frame.width < 2:
        raise UserError(f"{name} has only the column {frame.columns[0]!r}; an A/B file needs a "
                        "column naming each unit's variant and at least one metric column.")
    return frame


def arm_names(frame: pl.DataFrame, column: str) -> list[str]:
    """The distinct non-blank values of ``column``, sorted: the arms it would define."""
    values = frame[column].str.strip_chars()
    return sorted(values.filter(values.is_not_null() & (values != "")).unique().to_list())


def variant_columns(frame: pl.DataFrame, name: str) -> list[str]:
    """The columns that could name the arms (2 to :data:`MAX_ARMS` values), likeliest first.

    Columns called like an assignment (``variant``, ``group``, ...) come first.
    """
    candidates = [c for c in frame.columns if 2 <= len(arm_names(frame, c)) <= MAX_ARMS]
    if not candidates:
        raise UserError(f"{name} has no column that could name the arms (one with 2 to "
                        f"{MAX_ARMS} different values, such as variant or group); add one and "
                        "upload the file again.")
    return sorted(candidates, key=lambda c: c.strip().lower() not in VARIANT_NAMES)


def guess_control(arms: list[str]) -> str:
    """The arm whose name says control (``control``, ``A``, ``baseline``...), else the first."""
    return next((arm for arm in arms if arm.strip().lower() in CONTROL_NAMES), arms[0])


def metric_kind(frame: pl.DataFrame, column: str) -> str:
    """``binary`` when every value reads as 0/1 (or true/false, yes/no), else ``mean``."""
    values = frame[column].str.strip_chars().str.to_lowercase().drop_nulls().unique()
    return "binary" if len(values) and set(values.to_list()) <= BINARY_WORDS else "mean"


def file_metrics(frame: pl.DataFrame, columns: list[str]) -> list[Metric]:
    """The chosen metric columns, each with the kind its values show."""
    return [Metric(column, metric_kind(frame, column)) for column in columns]


def parse_split(text: str) -> dict[str, float] | None:
    """``"A=0.5, B=0.5"`` as planned weights; ``None`` (an equal split) when blank."""
    if not text.strip():
        return None
    weights = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text))):
        arm, _, value = part.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not arm.strip() or not weight > 0:
            raise UserError(f"The planned split {part!r} must read ARM=WEIGHT with a positive "
                            "weight, e.g. A=0.5, B=0.5.")
        weights[arm.strip()] = weight
    return weights


def analyze_upload(content: bytes, name: str, *, variant_col: str, control: str,
                   metrics: list[Metric], settings: AnalysisSettings,
                   covariate: str | None = None, unit_col: str | None = None,
                   cap_percentile: float | None = None, cap_nonzero: bool = False,
                   split: dict[str, float] | None = None) -> ExperimentResult:
    """Analyse an uploaded file of units exactly as ``studio ab analyze`` does.

    The bytes are written to a private folder under the upload's own name, so that
    messages about the file name it rather than a temporary path.
    """
    safe_name = Path(name).name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="studio-ab-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        try:
            data = read_unit_file(path, variant_col=variant_col, control=control,
                                  metrics=metrics, unit_col=unit_col, covariate=covariate,
                                  cap_percentile=cap_percentile, cap_nonzero=cap_nonzero,
                                  weights=split)
        except UserError as error:
            raise UserError(str(error).replace(str(path), safe_name)) from None
    data.source["file"] = safe_name
    return analyze_experiment(data, settings)


# ---------------------------------------------------------------- tables and text


def format_value(metric: Metric, value: float) -> str:
    """A metric's value the way it is read: rates as percents, the rest with two decimals."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2%}" if metric.kind == "binary" else f"{value:,.2f}"


def verdict(comparison: Comparison) -> str:
    """``better``, ``worse`` or ``not significant``, in the metric's own direction."""
    if comparison.error_message or not comparison.significant:
        return "not significant"
    rose = comparison.absolute.estimate > 0
    return "better" if rose == comparison.metric.higher_is_better else "worse"


def arm_table(result: ExperimentResult) -> pl.DataFrame:
    """One row per metric and arm: the page's table (the download has every column)."""
    frame = result_frame(result)
    by_title = {metric.title: metric for metric in result.metrics}
    readings = []
    for row in frame.iter_rows(named=True):
        if row["arm"] == result.control:
            readings.append("control")
            continue
        comparison = result.comparison(by_title[row["metric"]].name, row["arm"])
        readings.append(row["note"] if comparison.error_message else verdict(comparison))
    shown = [format_value(by_title[metric], value)
             for metric, value in zip(frame["metric"], frame["value"], strict=True)]
    # As text: a probability must never round to a false 0% or 100%.
    chances = [None if chance is None or math.isnan(chance) else format_share(chance)
               for chance in frame["chance_to_win"]]
    return frame.select(
        "metric", "arm", "units", pl.Series("value", shown), "lift", "lift_low", "lift_high",
        "difference", "adjusted_p_value", pl.Series("chance_to_win", chances, dtype=pl.String),
        pl.Series("reading", readings),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


def results_csv(result: ExperimentResult) -> str:
    """The full results table as CSV text, for the download button."""
    return result_frame(result).write_csv()


def download_name(result: ExperimentResult) -> str:
    """``ab-CMP004.csv`` for a campaign, ``ab-<file stem>.csv`` for an upload."""
    source = result.source.get("campaign_id") or Path(result.source.get("file", "test")).stem
    return f"ab-{re.sub(r'[^A-Za-z0-9_.-]+', '-', source)}.csv"


def headline_metric(result: ExperimentResult) -> Metric:
    """The metric the page leads with: conversion when measured, else the first goal."""
    goals = [m for m in result.metrics if not m.guardrail] or list(result.metrics)
    return next((m for m in goals if m.name == "conversion_rate"), goals[0])


def headline_cards(result: ExperimentResult) -> list[dict]:
    """One card per arm for the headline metric: its value, lift and chance to win.

    Each card has ``label``, ``value``, ``delta`` (the relative lift as text, ``None`` for
    control or when undefined), ``chance_to_win`` (text, ``None`` for control) and
    ``inverse`` (a fall is good news for this metric).
    """
    metric = headline_metric(result)
    values = {s.arm: s.value for s in result.summaries if s.metric == metric.name}
    title = metric.title[:1].upper() + metric.title[1:]
    cards = []
    for arm in result.arms:
        card = {"label": f"{title} · {arm}", "value": format_value(metric, values[arm]),
                "delta": None, "chance_to_win": None, "inverse": not metric.higher_is_better}
        if arm == result.control:
            card["label"] += " (control)"
        else:
            comparison = result.comparison(metric.name, arm)
            lift = comparison.relative.estimate
            card["delta"] = None if math.isnan(lift) else f"{lift:+.1%}"
            card["chance_to_win"] = format_share(comparison.bayesian.chance_to_win)
        cards.append(card)
    return cards


def srm_banner(result: ExperimentResult) -> str:
    """The sample-ratio sentence with the check's p-value written out in full."""
    srm = result.srm
    return (f"{describe_srm(result)} The chi-square p-value is {srm.p_value:.1e}; the check "
            f"flags a split below p = {srm.threshold:g}.")


# ---------------------------------------------------------------- the lift chart


def lift_rows(result: ExperimentResult) -> list[dict]:
    """The chart's rows: relative lift and interval per metric and variant.

    Comparisons without a relative lift (a control at zero) are left out; the table
    still shows their absolute difference.
    """
    rows = []
    for c in result.comparisons:
        lift = c.relative
        if c.error_message or lift.error_message or not math.isfinite(lift.estimate):
            continue
        rows.append({"label": f"{c.metric.title} · {c.variant}", "lift": lift.estimate,
                     "low": lift.ci_low, "high": lift.ci_high, "verdict": verdict(c),
                     "chance_to_win": c.bayesian.chance_to_win})
    return rows


def lift_figure(result: ExperimentResult) -> go.Figure:
    """Relative lifts with their intervals, one row per metric and variant, and a zero line.

    The open side of a one-sided interval is drawn to the edge of the chart.
    """
    rows = lift_rows(result)
    finite = [abs(v) for row in rows for v in (row["low"], row["lift"], row["high"])
              if math.isfinite(v)]
    edge = max(finite, default=0.05) * 1.15 or 0.05
    figure = go.Figure()
    for name, colour in COLOURS.items():
        chosen = [row for row in rows if row["verdict"] == name]
        if not chosen:
            continue
        lows = [max(row["low"], -edge) for row in chosen]
        highs = [min(row["high"], edge) for row in chosen]
        figure.add_trace(go.Scatter(
            x=[row["lift"] for row in chosen], y=[row["label"] for row in chosen],
            mode="markers", name=name, marker={"color": colour, "size": 10},
            error_x={"type": "data", "symmetric": False, "color": colour, "thickness": 2,
                     "array": [h - row["lift"] for h, row in zip(highs, chosen, strict=True)],
                     "arrayminus": [row["lift"] - lo
                                    for lo, row in zip(lows, chosen, strict=True)]},
            customdata=[[row["low"], row["high"], row["chance_to_win"]] for row in chosen],
            hovertemplate="%{y}: %{x:+.1%} (%{customdata[0]:+.1%} to %{customdata[1]:+.1%})"
                          "<br>chance to win %{customdata[2]:.0%}<extra></extra>",
        ))
    figure.add_vline(x=0, line_dash="dash", line_color="#9E9E9E")
    figure.update_xaxes(title_text=f"Relative lift vs {result.control} "
                        f"({1 - result.settings.alpha:.0%} interval)", tickformat="+.0%",
                        range=[-edge, edge], zeroline=False)
    figure.update_yaxes(categoryorder="array",
                        categoryarray=[row["label"] for row in reversed(rows)])
    figure.update_layout(height=90 + 34 * max(len(rows), 1), showlegend=True,
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
                         margin={"t": 40, "b": 10, "l": 10, "r": 10})
    return figure
