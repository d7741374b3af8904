"""An experiment from a CSV file of one row per unit: a variant column and metric columns.

The file is read as text and each column is checked before it is used, so a mistake
(a missing column, an unknown control, a word in a number column, a 2 in a 0/1 column)
comes back as one sentence naming the column and the line. The rows are then reduced to
per-arm sums with one polars group-by, after which the analysis is the warehouse's.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from studio.errors import UserError
from studio.experiments.capping import cap_warning, compute_cap
from studio.experiments.experiment import Arm, AssignmentCounts, ExperimentData, Metric
from studio.experiments.statistics import (
    CovariateStatistic,
    ProportionStatistic,
    SampleMeanStatistic,
)

FILE_METRIC_KINDS = ("binary", "mean")
_TRUE, _FALSE = ("true", "yes"), ("false", "no")
LINE, ARM = "__studio_line", "__studio_arm"
"""Helper columns: each row's line in the file, and its arm with blanks stripped."""


def parse_metric(text: str) -> Metric:
    """``NAME:binary`` or ``NAME:mean`` as a :class:`Metric`."""
    name, _, kind = text.rpartition(":")
    if not name or kind not in FILE_METRIC_KINDS:
        raise UserError(f"--metric {text!r} must read NAME:binary or NAME:mean, "
                        "e.g. conversion:binary.")
    return Metric(name=name, kind=kind)


def _read_text(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the path of a CSV file.")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        frame = pl.DataFrame()
    except pl.exceptions.ComputeError as error:
        raise UserError(f"{path} is not a readable CSV file ({str(error).splitlines()[0]}); "
                        "save it as comma-separated text with a header row.") from None
    if frame.height == 0:
        raise UserError(f"{path} has no rows; it needs a header and one row per unit.")
    return frame.with_row_index(LINE, offset=2)  # the header is line 1


def _check_columns(frame: pl.DataFrame, wanted: list[str]) -> None:
    missing = [column for column in wanted if column not in frame.columns]
    if missing:
        raise UserError(f"The file has no column {', '.join(repr(m) for m in missing)}; "
                        f"its columns are {', '.join(c for c in frame.columns if c != LINE)}.")


def _numbers(frame: pl.DataFrame, column: str, binary: bool) -> pl.Series:
    """The column as floats, or a one-sentence error naming the first bad line.

    Lines count the header as line 1, as a spreadsheet does (column ``LINE``).
    """
    cleaned = pl.col(column).str.strip_chars()
    if binary:
        lowered = cleaned.str.to_lowercase()
        cleaned = (pl.when(lowered.is_in(_TRUE)).then(pl.lit("1"))
                   .when(lowered.is_in(_FALSE)).then(pl.lit("0")).otherwise(cleaned))
    text = frame.select(cleaned.alias(column))[column]
    values = text.cast(pl.Float64, strict=False)
    lines = frame[LINE]
    empty = (text.is_null() | (text == "")).arg_true()
    if len(empty):
        raise UserError(f"Column {column!r} is empty on line {lines[empty[0]]}; fill it in "
                        "(0 for none) or drop the row.")
    bad = (~values.is_finite()).fill_null(True).arg_true()  # words, nan and inf
    if len(bad):
        raise UserError(f"Column {column!r} must be numeric, but line {lines[bad[0]]} holds "
                        f"{text[bad[0]]!r}.")
    if binary:
        off = (~values.is_in([0.0, 1.0])).arg_true()
        if len(off):
            raise UserError(f"Column {column!r} is declared binary but line {lines[off[0]]} "
                            f"holds {text[off[0]]!r}; use 0/1 or declare it NAME:mean.")
    return values


def _assignment(frame: pl.DataFrame, unit_col: str | None) -> AssignmentCounts:
    if unit_col is None:
        return AssignmentCounts()
    arms_per_unit = frame.group_by(unit_col).agg(pl.col(ARM).n_unique().alias("arms"))
    return AssignmentCounts(
        units_in_several_arms=arms_per_unit.filter(pl.col("arms") > 1).height,
        duplicate_assignments=frame.height - arms_per_unit.height,
    )


def _aggregate(frame: pl.DataFrame, metrics: list[Metric], covariate: str | None) -> pl.DataFrame:
    """Per arm: units, and per metric the sums, squares and cross-products."""
    columns = [m.name for m in metrics] + ([covariate] if covariate else [])
    sums = [pl.len().alias("_n")]
    for column in dict.fromkeys(columns):
        sums += [pl.col(column).sum().alias(f"{column}|sum"),
                 (pl.col(column) ** 2).sum().alias(f"{column}|squares")]
    if covariate:
        sums += [(pl.col(m.name) * pl.col(covariate)).sum().alias(f"{m.name}|products")
                 for m in metrics]
    return frame.group_by(ARM).agg(sums)


def _statistic(row: dict, metric: Metric, covariate: str | None):
    n, name = row["_n"], metric.name
    post = (ProportionStatistic(n, row[f"{name}|sum"]) if metric.kind == "binary"
            else SampleMeanStatistic(n, row[f"{name}|sum"], row[f"{name}|squares"]))
    if not covariate:
        return post
    pre = SampleMeanStatistic(n, row[f"{covariate}|sum"], row[f"{covariate}|squares"])
    return CovariateStatistic(post, pre, row[f"{name}|products"])


def _cap(frame: pl.DataFrame, metrics: list[Metric], percentile: float | None,
         nonzero: bool) -> tuple[pl.DataFrame, dict, list[str]]:
    """Winsorise every mean metric at its pooled percentile."""
    caps, notes = {}, []
    if percentile is None:
        return frame, caps, notes
    for metric in metrics:
        if metric.kind != "mean":
            continue
        cap = compute_cap(frame[metric.name].to_numpy(), percentile, nonzero)
        caps[metric.name] = cap
        if (note := cap_warning(cap, metric.name)) is not None:
            notes.append(note)
        frame = frame.with_columns(pl.col(metric.name).clip(upper_bound=cap))
    return frame, caps, notes


def read_unit_file(path: Path, *, variant_col: str, control: str, metrics: list[Metric],
                   unit_col: str | None = None, covariate: str | None = None,
                   cap_percentile: float | None = None, cap_nonzero: bool = False,
                   weights: dict[str, float] | None = None) -> ExperimentData:
    """Read, check and aggregate a file of units into an :class:`ExperimentData`.

    Parameters
    ----------
    path
        A CSV file with a header and one row per unit.
    variant_col, control
        The column naming each unit's arm, and the arm the others are compared with.
    metrics
        The metric columns (``binary`` 0/1 or ``mean`` numbers).
    unit_col
        A unit identifier, to spot units in several arms and repeated rows.
    covariate
        A pre-period numeric column for CUPED, applied to every metric.
    cap_percentile, cap_nonzero
        Winsorise ``mean`` metrics at this pooled percentile (of non-zero values).
    weights
        Planned share per arm for the sample-ratio check (equal when ``None``).
    """
    if not metrics:
        raise UserError("Name at least one metric, e.g. --metric conversion:binary.")
    frame = _read_text(Path(path))
    _check_columns(frame, [variant_col, *(m.name for m in metrics),
                           *([unit_col] if unit_col else []), *([covariate] if covariate else [])])
    frame = frame.with_columns(pl.col(variant_col).str.strip_chars().alias(ARM))
    notes = []
    present = pl.col(ARM).is_not_null() & (pl.col(ARM) != "")
    blank = frame.height - frame.filter(present).height
    if blank:
        notes.append(f"{blank:,} rows have no {variant_col!r} value and were left out.")
        frame = frame.filter(present)
    names = frame[ARM].unique(maintain_order=True).to_list()
    if control not in names:
        raise UserError(f"Control {control!r} is not a value of column {variant_col!r}; "
                        f"it holds {', '.join(repr(n) for n in sorted(names)[:10])}.")
    unknown = sorted(set(weights or ()) - set(names))
    if unknown:
        raise UserError(f"The planned weights name {', '.join(repr(u) for u in unknown)}, which "
                        f"column {variant_col!r} does not hold.")
    if len(names) < 2:
        raise UserError(f"Column {variant_col!r} holds only {control!r}; an A/B test needs "
                        "at least one other arm.")
    frame = frame.with_columns(
        [_numbers(frame, m.name, m.kind == "binary").alias(m.name) for m in metrics]
        + ([_numbers(frame, covariate, False).alias(covariate)] if covariate else []))
    frame, caps, cap_notes = _cap(frame, metrics, cap_percentile, cap_nonzero)
    sums = {row[ARM]: row for row in _aggregate(frame, metrics, covariate).to_dicts()}
    order = [control, *sorted(n for n in names if n != control)]
    arms = tuple(
        Arm(name, sums[name]["_n"],
            {m.name: _statistic(sums[name], m, covariate) for m in metrics},
            _weight(weights, name))
        for name in order)
    return ExperimentData(
        arms=arms, control=control, metrics=tuple(metrics),
        assignment=_assignment(frame, unit_col), notes=tuple(notes + cap_notes),
        unit_name="units",
        source={"file": str(path), "variant_col": variant_col, "covariate": covariate,
                "cap_percentile": cap_percentile, "cap_nonzero": cap_nonzero, "caps": caps},
    )


def _weight(weights: dict[str, float] | None, name: str) -> float | None:
    if weights is None:
        return None
    if name not in weights:
        raise UserError(f"No planned weight for arm {name!r}; give one per arm, e.g. "
                        f"--weight {name!r}=0.5.")
    return weights[name]
