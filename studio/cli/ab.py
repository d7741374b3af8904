"""``studio ab``: read an A/B test from a file or a campaign, and plan the next one.

``analyze`` reads a CSV of one row per unit, ``campaign`` a campaign test in the
warehouse; both print a per-arm table, the lifts with their intervals, the sample-ratio
check, warnings and a plain-language reading (or all of it as JSON with ``--json``).
``plan`` sizes a test of a rate.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.output import out, print_json
from studio.config import load_settings
from studio.errors import UserError

ab_app = typer.Typer(help="Read A/B tests from a file or a campaign; plan sample sizes.",
                     no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Alpha = Annotated[float, typer.Option(help="One minus the confidence level.")]
Alternative = Annotated[str, typer.Option(
    help="two-sided, greater (only a rise counts) or less.")]
Correction = Annotated[str, typer.Option(
    help="Multiple-comparison adjustment: holm, bh (Benjamini-Hochberg) or none.")]
PlannedUnits = Annotated[int | None, typer.Option(
    "--planned-units", help="Units the test was planned for (all arms); makes the intervals "
    "sequential, valid however often you look.")]
CapPercentile = Annotated[float | None, typer.Option(
    "--cap-percentile", help="Winsorise revenue-like metrics at this pooled percentile "
    "(e.g. 99.9).")]
CapNonzero = Annotated[bool, typer.Option(
    "--cap-nonzero", help="Take the cap's percentile over non-zero values only.")]


def _settings(alpha: float, alternative: str, correction: str, planned_units: int | None):
    from studio.experiments.analysis import AnalysisSettings

    return AnalysisSettings(alpha=alpha, alternative=alternative, correction=correction,
                            planned_units=planned_units)


def _weights(texts: list[str] | None) -> dict[str, float] | None:
    if not texts:
        return None
    weights = {}
    for text in texts:
        name, _, value = text.rpartition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            name = ""
        if not name or not weights[name] > 0:
            raise UserError(f"--weight {text!r} must read ARM=WEIGHT with a positive weight, "
                            "e.g. --weight B=0.5.")
    return weights


def _number(value: float | None, relative: bool = False, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.1%}" if relative else f"{value:+,.4g}" if signed else f"{value:,.4g}"


def _lift_cells(row: dict) -> tuple[str, str]:
    """The relative lift and its interval (sequential when given), else the difference."""
    if math.isnan(row["difference"]):
        return "", "n/a"
    relative = not math.isnan(row["lift"])
    kind = "lift" if relative else "difference"
    sequential = row[f"sequential_{kind}_low"] is not None
    prefix = f"sequential_{kind}" if sequential else kind
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    return (_number(row[kind], relative, signed=True),
            f"{_number(low, relative, True)} to {_number(high, relative, True)}"
            + (" (seq.)" if sequential else ""))


def _result_table(result) -> Table:
    from studio.experiments.reading import format_share, result_rows

    table = Table(title=f"{' / '.join(result.arms)} ({result.control} is control)")
    for column in ("metric", "arm", "units", "value", "lift", "interval", "p (adj.)",
                   "chance to win"):
        table.add_column(column, justify="left" if column in ("metric", "arm") else "right")
    for row in result_rows(result):
        if "lift" not in row:  # control
            table.add_row(row["metric"], row["arm"], f"{row['units']:,}", _number(row["value"]),
                          "", "", "", "")
            continue
        table.add_row(row["metric"], row["arm"], f"{row['units']:,}", _number(row["value"]),
                      *_lift_cells(row), _number(row["adjusted_p_value"]),
                      format_share(row["chance_to_win"]))
    return table


def _show(result, as_json: bool) -> None:
    from studio.experiments.reading import describe_result

    reading = describe_result(result)
    if as_json:
        print_json({**result.to_dict(), "reading": reading})
        return
    out.print(_result_table(result))
    style = "bold red" if result.srm.flagged else "green"
    out.print(f"[{style}]{reading[0]}[/{style}]", highlight=False)
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for line in reading[1:]:
        out.print(f"- {line}", highlight=False)


@ab_app.command("analyze")
def analyze(
    file: Annotated[Path, typer.Argument(help="CSV with one row per unit.")],
    variant_col: Annotated[str, typer.Option("--variant-col", help="Column naming each "
                                             "unit's arm.")],
    control: Annotated[str, typer.Option("--control", help="The control arm's name.")],
    metric: Annotated[list[str], typer.Option(
        "--metric", help="NAME:binary (0/1) or NAME:mean; repeat for several.")],
    unit_col: Annotated[str | None, typer.Option(
        "--unit-col", help="Unit id column, to spot units in several arms.")] = None,
    covariate: Annotated[str | None, typer.Option(
        "--covariate", help="Pre-period column for CUPED variance reduction.")] = None,
    weight: Annotated[list[str] | None, typer.Option(
        "--weight", help="Planned share ARM=WEIGHT for the sample-ratio check "
        "(default: equal).")] = None,
    cap_percentile: CapPercentile = None, cap_nonzero: CapNonzero = False,
    alpha: Alpha = 0.05, alternative: Alternative = "two-sided", correction: Correction = "holm",
    planned_units: PlannedUnits = None, as_json: Json = False,
) -> None:
    """Analyse a file of units: lifts, intervals, chance to win, split check, warnings."""
    from studio.experiments.analysis import analyze_experiment
    from studio.experiments.unit_file import parse_metric, read_unit_file

    settings = _settings(alpha, alternative, correction, planned_units)
    data = read_unit_file(file, variant_col=variant_col, control=control,
                          metrics=[parse_metric(m) for m in metric], unit_col=unit_col,
                          covariate=covariate, cap_percentile=cap_percentile,
                          cap_nonzero=cap_nonzero, weights=_weights(weight))
    _show(analyze_experiment(data, settings), as_json)


@ab_app.command("campaign")
def campaign(
    campaign_id: Annotated[str, typer.Argument(metavar="CAMPAIGN_ID")],
    window_days: Annotated[int, typer.Option(
        "--window-days", help="Days after the send in which orders count.")] = 5,
    cap_percentile: CapPercentile = None, cap_nonzero: CapNonzero = False,
    alpha: Alpha = 0.05, alternative: Alternative = "two-sided", correction: Correction = "holm",
    planned_units: PlannedUnits = None, as_json: Json = False,
) -> None:
    """Analyse a campaign's A/B test from the warehouse."""
    from studio.experiments.analysis import analyze_experiment
    from studio.experiments.campaigns import aggregate_campaign
    from studio.warehouse import connect_reader

    settings = _settings(alpha, alternative, correction, planned_units)
    con = connect_reader(load_settings())
    try:
        data = aggregate_campaign(con, campaign_id, window_days=window_days,
                                  cap_percentile=cap_percentile, cap_nonzero=cap_nonzero)
    finally:
        con.close()
    if not as_json:
        out.print(f"{campaign_id}: {data.source['campaign']} ({data.source['channel']}), orders "
                  f"within {window_days} days of each send", highlight=False)
    _show(analyze_experiment(data, settings), as_json)


@ab_app.command("plan")
def plan(
    baseline_rate: Annotated[float, typer.Option(
        "--baseline-rate", help="The control's expected rate, e.g. 0.03 for 3%.")],
    mde: Annotated[float | None, typer.Option(
        "--mde", help="Minimum detectable effect, relative (0.1 = +10%) unless --absolute; "
        "prints the units needed.")] = None,
    units_per_arm: Annotated[int | None, typer.Option(
        "--units-per-arm", help="Instead of --mde: the units you have per arm; prints the "
        "smallest rise they detect.")] = None,
    power: Annotated[float, typer.Option(help="Chance to detect the effect if real.")] = 0.8,
    alpha: Alpha = 0.05,
    arms: Annotated[int, typer.Option(help="Arms including control.")] = 2,
    absolute: Annotated[bool, typer.Option(
        "--absolute", help="Read --mde as absolute points (0.005 = +0.5 points).")] = False,
    as_json: Json = False,
) -> None:
    """Units needed per arm to detect a rise of a rate, or the rise a given size detects."""
    from studio.experiments.power import plan_detectable_effect, plan_rate_test

    if (mde is None) == (units_per_arm is None):
        raise UserError("Give either --mde (to get the units needed) or --units-per-arm (to "
                        "get the smallest detectable rise), not both or neither.")
    if mde is not None:
        result = plan_rate_test(baseline_rate, mde, power=power, alpha=alpha, arms=arms,
                                relative=not absolute)
    else:
        result = plan_detectable_effect(baseline_rate, units_per_arm, power=power, alpha=alpha,
                                        arms=arms)
    if as_json:
        print_json(result.to_dict())
        return
    out.print(f"{result.units_per_arm:,} units per arm ({result.total_units:,} in all) detect a "
              f"rise from {result.baseline_rate:.3%} to {result.treatment_rate:.3%} "
              f"({result.relative_effect:+.1%}) with {result.power:.0%} power at alpha "
              f"{result.alpha:g}" + (f" ({result.alpha_per_comparison:.3g} per comparison with "
                                    "control)" if result.arms > 2 else "") + ".",
              highlight=False)
