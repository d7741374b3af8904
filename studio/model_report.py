"""The model report behind the Models page: card, backtest, curves, scores, drivers, retrain.

Everything the page shows that is not layout lives here, importable without Streamlit:

* the champion's **card** as a table of facts, and its **backtest** table;
* the **lift and calibration curves**, which the card does not store: they are recomputed
  for the champion at the newest backtest origin (:func:`champion_curves`), with the same
  procedure and seed as training, so its metrics match the card's row for that origin;
* the **distribution** of the latest scores, aggregated in DuckDB;
* what **drives** a score: LightGBM's SHAP contributions, over a sample of customers and
  for one customer;
* a **background retrain** or rescore, run by :mod:`studio.jobs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import plotly.graph_objects as go
import polars as pl

from models.backtest import Origin, Target, backtest
from models.candidates import LightGbmCandidate
from models.features import FEATURE_NAMES, FEATURES, build_features
from models.labels import last_complete_day
from models.registry import LoadedModel, champion_version, list_versions
from models.scoring import score_customers
from models.training import train_target
from studio.config import Settings
from studio.errors import UserError
from studio.jobs import Job, start_job
from studio.warehouse import connect_reader

NO_MODELS = ("No model is trained yet. Train a model: studio models train --target purchase "
             "--horizon 90, or press Retrain.")
NOT_METRICS = {"candidate", "champion", "train_cutoff", "calibration_cutoff", "test_cutoff",
               "flags"}
MEANINGS = {spec.name: spec.meaning for spec in FEATURES}
BASELINE = "Where every customer starts: the model's average log-odds."
IMPORTANCE_SAMPLE = 2_000
"""Customers whose contributions are averaged: enough for a stable ranking, fast on a page."""
LINE, DIAGONAL = "#4C78A8", "#9E9E9E"


# ---------------------------------------------------------------- registry and card


def registered_targets(settings: Settings) -> list[str]:
    """Every target with a registered version, in name order."""
    return sorted({row["target"] for row in list_versions(settings)})


def target_versions(settings: Settings, target_name: str) -> list[dict]:
    """The target's versions, newest first, each with ``champion`` marked."""
    return [row for row in list_versions(settings) if row["target"] == target_name]


def shown_version(settings: Settings, target_name: str) -> str:
    """The champion, or the newest version when none is champion (trained with --no-promote)."""
    return champion_version(settings, target_name) or target_versions(
        settings, target_name)[0]["version"]


def predicts_money(card: dict) -> bool:
    """Whether the target is expected spend (money) rather than a probability."""
    return card["target_kind"] == "spend"


@dataclass(frozen=True)
class Headline:
    """One headline figure of a card, formatted, with what it means."""

    label: str
    value: str
    help: str


def headline(card: dict) -> list[Headline]:
    """The four figures a reviewer looks at first, for probability or spend targets."""
    metrics = card["champion_metrics"]
    champion = Headline("Champion", card["candidate"], card["champion_rule"])
    if predicts_money(card):
        return [champion,
                Headline("Mean absolute error", f"{metrics['mae']:,.2f}",
                         "Mean over the backtest origins of |predicted - actual spend|."),
                Headline("Spearman", f"{metrics['spearman']:.3f}",
                         "Rank correlation of predicted and actual spend."),
                Headline("Predicted / actual", f"{metrics['total_ratio']:.2f}",
                         "Total predicted spend over total actual spend; 1 is unbiased.")]
    return [champion,
            Headline("Backtest AUROC", f"{metrics['auroc']:.3f}",
                     "Mean over the backtest origins: the chance that a random positive "
                     "scores above a random negative."),
            Headline("Lift, top 10%", f"{metrics['lift_at_10']:.2f}",
                     "Positive rate among the top-scored 10% over the overall rate."),
            Headline("Training rows", f"{card['training_rows']:,}",
                     f"{card['training_positives']:,} of them positive.")]


def _calibration_text(calibration: dict) -> str:
    if calibration["transform"] == "none":
        return "none: the estimate is money and is stored as estimated"
    return (f"Platt on {calibration['transform']} scores: slope {calibration['slope']:.4f}, "
            f"intercept {calibration['intercept']:.4f}, seasonal offset "
            f"{calibration['seasonal_offset']:+.4f}")


def card_facts(card: dict) -> pl.DataFrame:
    """The card as ``field, value`` text rows, in the order a reviewer reads them."""
    cutoffs, data = card["cutoffs"], card["data"]
    tables = ", ".join(f"{name} {facts['rows']:,}" for name, facts in data["tables"].items())
    facts = [
        ("Version", card["version"]),
        ("Target", f"{card['target']}: {card['definition']}"),
        ("Candidate", f"{card['candidate']} ({card['champion_rule']})"),
        ("Training cutoff", cutoffs["train_cutoff"]),
        ("Calibration cutoff", cutoffs["calibration_cutoff"]),
        ("Scores from", cutoffs["scoring_from"]),
        *((label, f"{card[key]:,}") for label, key in (("Training rows", "training_rows"),
                                                        ("Training positives",
                                                         "training_positives"))
          if key in card),
        ("Calibration", _calibration_text(card["calibration"])),
        ("Seasonality", card["season"]),
        ("Flags", "; ".join(card["flags"]) or "none"),
        ("Data fingerprint", f"{data['digest']} (rows: {tables})"),
        ("Libraries", ", ".join(f"{name} {v}" for name, v in card["libraries"].items())),
        ("Created", f"{card['created_at']} by {card['created_by']}"),
    ]
    return pl.DataFrame(facts, schema=["field", "value"], orient="row")


def backtest_table(card: dict) -> pl.DataFrame:
    """One row per candidate and origin, newest origin first, the champion on top of each.

    The metric columns are the card's own (classification or spend metrics), in its order.
    """
    metrics = [name for name in card["backtest"][0] if name not in NOT_METRICS]
    rows = [{name: row.get(name) for name in ("test_cutoff", "candidate", "champion",
                                              *metrics)} for row in card["backtest"]]
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.sort(["test_cutoff", "champion"], descending=True, maintain_order=True)


# ---------------------------------------------------------------- curves


@dataclass(frozen=True)
class ChampionCurves:
    """The champion's test metrics and curves at one backtest origin."""

    origin: Origin
    metrics: dict
    calibration: pl.DataFrame
    lift: pl.DataFrame
    recorded: dict  # the card's row for the same candidate and origin

    @property
    def matches_card(self) -> bool:
        """Whether the refit reproduced the card (false once the data or the code changed)."""
        return abs(self.metrics["auroc"] - self.recorded["auroc"]) <= 1e-9


def newest_origin(card: dict) -> Origin:
    """The card's latest backtest origin: the one closest to today's data."""
    newest = max(row["test_cutoff"] for row in card["backtest"])
    return Origin(date.fromisoformat(newest), int(card["horizon_days"]))


def champion_curves(con: duckdb.DuckDBPyConnection, card: dict) -> ChampionCurves:
    """The champion's calibration and lift curves at the newest backtest origin.

    Cards keep them (``champion_curves``) since they were first written; for an older card
    the champion's candidate is retrained at that origin, which is deterministic (fixed
    seeds, the same windows), so on an unchanged warehouse its metrics equal the card's.
    """
    origin = newest_origin(card)
    [recorded] = [r for r in card["backtest"] if r["champion"]
                  and r["test_cutoff"] == origin.test_cutoff.isoformat()]
    stored = card.get("champion_curves")
    if stored and stored["test_cutoff"] == origin.test_cutoff.isoformat():
        metrics = {k: v for k, v in recorded.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return ChampionCurves(origin, metrics, pl.DataFrame(stored["calibration"]),
                              pl.DataFrame(stored["lift"]), recorded)
    target = Target(card["target_kind"], int(card["horizon_days"]))
    [row] = backtest(con, target, origin.test_cutoff, kinds=(card["candidate"],))
    return ChampionCurves(origin, row.metrics, row.calibration, row.lift, recorded)


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class ScoreRun:
    """The latest scoring run of a target, summarised."""

    model_version: str
    scored_at: datetime
    customers: int
    mean_score: float
    histogram: pl.DataFrame  # bin_start, bin_end, customers
    deciles: pl.DataFrame  # decile, customers, min_score, max_score, mean_score


def latest_score_run(con: duckdb.DuckDBPyConnection, target_name: str, bins: int = 20,
                     upper: float | None = 1.0) -> ScoreRun | None:
    """The target's newest run in ``scores``, or None when it was never scored.

    The histogram has ``bins`` equal bands from 0 to ``upper`` (1 for probabilities); with
    ``upper=None`` (money) it ends at the 99th percentile, so a few big spenders do not
    squeeze everyone else into one band. The last band also holds every score above it.
    """
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_name = 'scores'").fetchall()[0][0]
    if not exists:
        return None
    run = ("FROM scores WHERE target = $target AND scored_at = "
           "(SELECT max(scored_at) FROM scores WHERE target = $target)")
    params = {"target": target_name}
    version, scored_at, customers, mean, top = con.execute(
        f"SELECT any_value(model_version), any_value(scored_at), count(*), avg(score), "
        f"quantile_cont(score, 0.99) {run}", params).fetchall()[0]
    if not customers:
        return None
    width = max(upper if upper is not None else top, 1e-9) / bins
    counts = con.sql(f"SELECT CAST(least(floor(score / $width), $bins - 1) AS INTEGER) AS bin, "
                     f"count(*) AS customers {run} GROUP BY bin",
                     params={**params, "width": width, "bins": bins}).pl()
    histogram = (pl.DataFrame({"bin": np.arange(bins, dtype=np.int32)})
                 .join(counts, on="bin", how="left", maintain_order="left")
                 .select((pl.col("bin") * width).alias("bin_start"),
                         ((pl.col("bin") + 1) * width).alias("bin_end"),
                         pl.col("customers").fill_null(0)))
    deciles = con.sql(f"SELECT decile, count(*) AS customers, min(score) AS min_score, "
                      f"max(score) AS max_score, avg(score) AS mean_score {run} "
                      "GROUP BY decile ORDER BY decile", params=params).pl()
    return ScoreRun(version, scored_at, int(customers), float(mean), histogram, deciles)


# ---------------------------------------------------------------- drivers


def scoring_features(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The buyers' features as the scoring job builds them: as of the data's last day."""
    return build_features(con, last_complete_day(con), population="buyers")


def has_contributions(model: LoadedModel) -> bool:
    """Whether the model can split a score into per-feature pushes (LightGBM only)."""
    return isinstance(model.fitted.model, LightGbmCandidate)


def _contributions(model: LoadedModel, features: pl.DataFrame) -> np.ndarray:
    if not has_contributions(model):
        raise UserError(f"Contributions exist for LightGBM models only; {model.version} is a "
                        f"{model.fitted.kind} model.")
    return model.fitted.model.contributions(features)


def feature_importance(model: LoadedModel, features: pl.DataFrame,
                       sample_size: int = IMPORTANCE_SAMPLE, seed: int = 0) -> pl.DataFrame:
    """Mean |contribution| of each feature over a fixed sample of customers, largest first.

    The mean absolute SHAP value is in log-odds: how far, on average, the feature moves a
    customer's score away from the baseline, whichever way.
    """
    sample = features.sample(n=min(sample_size, len(features)), seed=seed)
    pushes = np.abs(_contributions(model, sample)[:, :-1]).mean(axis=0)
    return (pl.DataFrame({"feature": list(FEATURE_NAMES), "mean_abs_contribution": pushes,
                          "meaning": [MEANINGS[name] for name in FEATURE_NAMES]})
            .sort("mean_abs_contribution", descending=True))


@dataclass(frozen=True)
class CustomerExplanation:
    """One customer's score and, for LightGBM, what pushed it up or down."""

    customer_id: str
    score: float
    features: pl.DataFrame  # feature, value, meaning
    baseline: float | None = None  # log-odds every customer starts from
    log_odds: float | None = None  # baseline + the contributions: the booster's raw margin
    contributions: pl.DataFrame | None = None
    """``feature, value, contribution, meaning``: the baseline first, then every feature by
    the size of its push; the column sums to ``log_odds``."""


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def explain_customer(con: duckdb.DuckDBPyConnection, model: LoadedModel,
                     features: pl.DataFrame, customer_id: str) -> CustomerExplanation:
    """The customer's calibrated score, features and (LightGBM) contributions, largest first."""
    row = features.filter(pl.col("customer_id") == customer_id)
    if row.is_empty():
        known = con.execute("SELECT count(*) FROM customers WHERE customer_id = ?",
                            [customer_id]).fetchall()[0][0]
        raise UserError(
            f"Customer {customer_id!r} has no valid order yet, so the models do not score "
            "them; type the id of a customer who has bought." if known else
            f"There is no customer {customer_id!r}; check the id (the Segments page lists "
            "customers).")
    score = float(model.fitted.probabilities(row)[0])
    values = [_shown(row[name][0]) for name in FEATURE_NAMES]
    table = pl.DataFrame({"feature": list(FEATURE_NAMES), "value": values,
                          "meaning": [MEANINGS[name] for name in FEATURE_NAMES]})
    if not has_contributions(model):
        return CustomerExplanation(customer_id, score, table)
    pushes = _contributions(model, row)[0]
    baseline = pl.DataFrame({"feature": ["(baseline)"], "value": [""],
                             "contribution": [float(pushes[-1])], "meaning": [BASELINE]})
    contributions = pl.concat([
        baseline,
        table.with_columns(contribution=pl.Series(pushes[:-1]))
        .select("feature", "value", "contribution", "meaning")
        .sort(pl.col("contribution").abs(), descending=True)])
    return CustomerExplanation(customer_id, score, table, float(pushes[-1]),
                               float(pushes.sum()), contributions)


# ---------------------------------------------------------------- figures


def _layout(figure: go.Figure, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=360,
                         margin={"t": 30, "b": 10, "l": 10, "r": 10},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure


def lift_figure(lift: pl.DataFrame) -> go.Figure:
    """Cumulative gains: the share of positives reached by targeting the top of the ranking."""
    figure = go.Figure([
        go.Scatter(x=lift["fraction"].to_list(), y=lift["capture"].to_list(), name="Model",
                   line={"color": LINE}, customdata=lift["lift"].to_list(),
                   hovertemplate="top %{x:.0%}: %{y:.1%} of positives, lift %{customdata:.2f}"),
        go.Scatter(x=lift["fraction"].to_list(), y=lift["baseline"].to_list(),
                   name="Random targeting", line={"color": DIAGONAL, "dash": "dash"}),
    ])
    figure.update_xaxes(tickformat=".0%")
    figure.update_yaxes(tickformat=".0%")
    return _layout(figure, "Customers targeted, highest scores first", "Positives reached")


def calibration_figure(calibration: pl.DataFrame) -> go.Figure:
    """Mean prediction against the actual rate per decile; on the diagonal means calibrated."""
    top = max(calibration["mean_prediction"].max(), calibration["actual_rate"].max(), 0.01)
    figure = go.Figure([
        go.Scatter(x=[0, top], y=[0, top], name="Perfect calibration", mode="lines",
                   line={"color": DIAGONAL, "dash": "dash"}),
        go.Scatter(x=calibration["mean_prediction"].to_list(),
                   y=calibration["actual_rate"].to_list(), name="Deciles",
                   mode="lines+markers", line={"color": LINE},
                   text=[f"decile {d}" for d in calibration["decile"].to_list()],
                   hovertemplate="%{text}: predicted %{x:.1%}, actual %{y:.1%}"),
    ])
    figure.update_xaxes(tickformat=".0%")
    figure.update_yaxes(tickformat=".0%")
    return _layout(figure, "Mean predicted probability", "Actual rate")


def score_figure(histogram: pl.DataFrame, money: bool = False) -> go.Figure:
    """Customers per score band (per spend band for money)."""
    middles = (histogram["bin_start"] + histogram["bin_end"]) / 2
    widths = histogram["bin_end"] - histogram["bin_start"]
    figure = go.Figure(go.Bar(x=middles.to_list(), y=histogram["customers"].to_list(),
                              width=widths.to_list(), marker_color=LINE, name="",
                              hovertemplate="≈ %{x:,.2f}: %{y:,} customers"))
    if not money:
        figure.update_xaxes(range=[0, 1])
    return _layout(figure, "Expected spend" if money else "Score", "Customers")


def bars_figure(names: list[str], values: list[float], x_title: str) -> go.Figure:
    """Horizontal bars, the first name on top: importances or one customer's pushes."""
    colours = [LINE if value >= 0 else "#E45756" for value in values]
    figure = go.Figure(go.Bar(x=values[::-1], y=names[::-1], orientation="h",
                              marker_color=colours[::-1], name=""))
    figure = _layout(figure, x_title, "")
    figure.update_layout(height=max(240, 26 * len(names) + 60))
    return figure


# ---------------------------------------------------------------- background retrain


def retrain(settings: Settings, target: Target, origins: int,
            report: Callable[[str, float], None]) -> str:
    """Train, register and promote ``target``'s champion, then rescore; the outcome sentence."""
    with connect_reader(settings) as con:
        result = train_target(settings, con, target, origins=origins,
                              progress=lambda step, done: report(step, 0.9 * done))
    outcome = (f"Trained {result.version}: the champion is {result.card['candidate']} with a "
               f"mean backtest AUROC of {result.card['champion_metrics']['auroc']:.3f}.")
    try:
        scored = score_customers(settings, target.name,
                                 progress=lambda step, done: report(step, 0.9 + 0.1 * done))
    except UserError as error:
        return f"{outcome} Its scores were not written: {error}"
    return f"{outcome} {scored.customers:,} customers scored."


def start_retrain(settings: Settings, target: Target, origins: int = 3) -> Job:
    """Retrain ``target`` in the background: :func:`retrain` as a :mod:`studio.jobs` job."""
    if not 1 <= origins <= 12:
        raise UserError(f"{origins} backtest origins is not usable; choose 1 to 12.")
    return start_job(settings, f"Retraining {target.name}",
                     lambda report: retrain(settings, target, origins, report))


def start_rescore(settings: Settings, target_name: str) -> Job:
    """Score every buyer with ``target_name``'s champion in the background."""
    def work(report: Callable[[str, float], None]) -> str:
        scored = score_customers(settings, target_name, progress=report)
        return (f"Scored {scored.customers:,} customers for {target_name} with "
                f"{scored.model_version}.")

    return start_job(settings, f"Scoring {target_name}", work)
