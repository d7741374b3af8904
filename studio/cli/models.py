"""``studio models``: train, backtest, score, list, promote and roll back predictive models.

Targets are ``purchase`` (any valid order in the next H days) and ``churn`` (none in the
next H days); a trained target is named ``<kind>_<H>d`` (``purchase_90d``) in the
registry, the ``scores`` table and segment conditions.
"""

from __future__ import annotations

from typing import Annotated

import typer

from studio.cli.output import out, print_json, print_table, progress_bar
from studio.config import load_settings

models_app = typer.Typer(help="Train, compare and score the churn and purchase models.",
                         no_args_is_help=True)

TargetKind = Annotated[str, typer.Option("--target", help="purchase, churn or spend.")]
Horizon = Annotated[int, typer.Option("--horizon", help="Days ahead the target looks.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
METRIC_COLUMNS = ["candidate", "champion", "test_cutoff", "auroc", "pr_auc", "log_loss", "brier",
                  "lift_at_10", "capture_at_10", "mean_prediction", "actual_rate", "n"]
SPEND_COLUMNS = ["candidate", "champion", "test_cutoff", "actual_total", "predicted_total",
                 "total_ratio", "mae", "spearman", "spend_capture_at_10", "n"]


def _columns(kind: str) -> list[str]:
    return SPEND_COLUMNS if kind == "spend" else METRIC_COLUMNS


def _rounded(row: dict) -> dict:
    return {key: round(value, 4) if isinstance(value, float) else value
            for key, value in row.items()}


@models_app.command("train")
def train(target: TargetKind = "purchase", horizon: Horizon = 90,
          origins: Annotated[int, typer.Option(help="Backtest origins, 30 days apart.")] = 3,
          promote: Annotated[bool, typer.Option(
              "--promote/--no-promote", help="Make the new model the champion.")] = True,
          as_json: Json = False) -> None:
    """Backtest every candidate, pick the champion and register it with its card."""
    from models.backtest import Target
    from models.training import train_target
    from studio.warehouse import connect_reader

    settings = load_settings()
    chosen = Target(target, horizon)
    with connect_reader(settings) as con, progress_bar() as update:
        result = train_target(settings, con, chosen, origins=origins,
                              promote_champion=promote, progress=update)
    if as_json:
        print_json({"version": result.version, "champion": result.card["candidate"],
                    "promoted": result.promoted,
                    "backtest": [row.to_dict() for row in result.rows]})
        return
    print_table(f"Backtest of {chosen.name}", [_rounded(row.to_dict()) for row in result.rows],
                _columns(target))
    out.print(f"Champion: {result.card['candidate']} ({result.card['champion_rule']}); "
              f"registered as {result.version}" + (" and promoted." if result.promoted else "."))


@models_app.command("backtest")
def backtest(target: TargetKind = "purchase", horizon: Horizon = 90,
             cutoff: Annotated[str, typer.Option(
                 "--cutoff", help="Test cutoff date (YYYY-MM-DD); its window must be in the data.")]
             = ..., as_json: Json = False) -> None:
    """One row of test metrics per candidate at one cutoff, the champion marked."""
    from models.backtest import Target
    from models.backtest import backtest as run_backtest
    from models.spend import backtest_spend
    from studio.warehouse import connect_reader

    settings = load_settings()
    chosen = Target(target, horizon)
    with connect_reader(settings) as con, progress_bar() as update:
        if chosen.kind == "spend":
            rows = backtest_spend(con, horizon, cutoff)
        else:
            rows = run_backtest(con, chosen, cutoff, progress=update)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    print_table(f"Backtest of {chosen.name} at {cutoff}",
                [_rounded(row.to_dict()) for row in rows], _columns(target))


@models_app.command("score")
def score(targets: Annotated[list[str] | None, typer.Option(
              "--target", help="Registered target (e.g. purchase_90d); default: every one.")]
          = None,
          as_of: Annotated[str | None, typer.Option(
              "--as-of", help="Score as of this date (default: the data's last day).")] = None,
          as_json: Json = False) -> None:
    """Write every buyer's score for each target's champion into the ``scores`` table."""
    from models.registry import list_versions
    from models.scoring import score_customers
    from studio.errors import UserError

    settings = load_settings()
    names = targets or sorted({row["target"] for row in list_versions(settings)
                               if row["champion"]})
    if not names:
        raise UserError("No model is trained yet; run 'studio models train --target purchase "
                        "--horizon 90' first.")
    results = []
    with progress_bar() as update:
        for name in names:
            results.append(score_customers(settings, name, as_of, progress=update).to_dict())
    if as_json:
        print_json(results)
        return
    print_table("Scores written", [_rounded(row) for row in results])


@models_app.command("list")
def list_models(as_json: Json = False) -> None:
    """Every registered model version, newest first, champions marked."""
    from models.registry import list_versions

    rows = list_versions(load_settings())
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No models yet; train one with 'studio models train --target purchase "
                  "--horizon 90'.")
        return
    print_table("Models", [_rounded(row) for row in rows])


@models_app.command("promote")
def promote(version: Annotated[str, typer.Argument(help="The version to make champion.")]
            ) -> None:
    """Make a version its target's champion (score again to use it)."""
    from models.registry import promote as promote_version

    pointer = promote_version(load_settings(), version)
    out.print(f"{pointer['current']} is now the champion; run 'studio models score' to "
              "rescore with it.")


@models_app.command("rollback")
def rollback(target: Annotated[str, typer.Argument(help="Target name, e.g. purchase_90d.")]
             ) -> None:
    """Make the previous champion of a target current again."""
    from models.registry import rollback as roll_back

    pointer = roll_back(load_settings(), target)
    out.print(f"{target} is back on {pointer['current']}; run 'studio models score' to "
              "rescore with it.")
