"""Training a target end to end: backtests over several origins, a champion, a model card.

1. Backtest every candidate at ``origins`` test cutoffs, ``step_days`` apart, ending at
   the latest cutoff whose test window the data cover (:mod:`models.backtest`).
2. The champion is the candidate with the best **mean AUROC** over the origins. Segments
   use a score to rank ("top 10% by purchase likelihood"), and AUROC measures exactly
   the ranking, whatever the base rate; calibration is fixed afterwards for every
   candidate alike, so it cannot be what separates them. LightGBM thus ships only where
   it out-ranks the baselines on data it has not seen.
3. The champion is trained once more with the data's last day as its "test" cutoff
   (trained at ``last - 2H``, calibrated at ``last - H``), registered with its card and,
   by default, promoted.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version as package_version

import duckdb

from models.backtest import (
    BacktestRow,
    FittedCandidate,
    Origin,
    Target,
    fit_origin,
    test_origin,
)
from models.calibration import UNCALIBRATED_SPEND
from models.candidates import CANDIDATE_KINDS
from models.features import FEATURES, build_features
from models.labels import last_complete_day
from models.registry import new_version, promote, save_model
from models.spend import backtest_spend, new_spend_candidate
from studio.config import Settings
from studio.segments.library import current_user

LIBRARIES = ("lightgbm", "scikit-learn", "duckdb", "polars", "numpy", "scipy")


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> dict:
    """Row counts and latest times of the tables a model reads, and their digest."""
    facts = {}
    for table, moment in (("customers", "updated_at"), ("orders", "ordered_at"),
                          ("events", "occurred_at"), ("campaign_sends", "sent_at"),
                          ("consent_events", "occurred_at")):
        rows, latest = con.execute(f"SELECT count(*), max({moment}) FROM {table}").fetchall()[0]
        facts[table] = {"rows": int(rows), "latest": latest.isoformat() if latest else None}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return {"tables": facts, "digest": digest}


def library_versions() -> dict:
    """The versions of the libraries that shape a model's numbers."""
    return {"python": platform.python_version(),
            **{name: package_version(name) for name in LIBRARIES}}


def backtest_origins(con: duckdb.DuckDBPyConnection, horizon_days: int, origins: int = 3,
                     step_days: int = 30) -> list[Origin]:
    """``origins`` test cutoffs, newest first, the newest with a complete test window."""
    latest = last_complete_day(con) - timedelta(days=horizon_days)
    return [Origin(latest - timedelta(days=step_days * k), horizon_days)
            for k in range(origins)]


def summarise(rows: list[BacktestRow]) -> dict[str, dict]:
    """Per candidate, the mean of every metric over the origins."""
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row.metrics)
    summary = {}
    for kind, metrics in by_kind.items():
        summary[kind] = {name: statistics.fmean(m[name] for m in metrics)
                         for name, value in metrics[0].items()
                         if isinstance(value, (int, float)) and all(
                             m[name] is not None for m in metrics)}
    return summary


def choose_champion(summary: dict[str, dict]) -> str:
    """The candidate with the best mean AUROC (the simpler one on an exact tie)."""
    simplest_first = [k for k in ("heuristic", "logistic", "bgnbd", "lightgbm") if k in summary]
    return max(simplest_first, key=lambda kind: summary[kind]["auroc"])


@dataclass
class TrainingResult:
    """What a training run produced."""

    version: str
    card: dict
    rows: list[BacktestRow]
    promoted: bool
    fitted: FittedCandidate


def train_target(settings: Settings, con: duckdb.DuckDBPyConnection, target: Target, *,
                 origins: int = 3, step_days: int = 30, kinds=CANDIDATE_KINDS,
                 promote_champion: bool = True, progress=None) -> TrainingResult:
    """Backtest, choose, retrain and register the champion for ``target``."""
    report = progress or (lambda _label, _fraction: None)
    planned = backtest_origins(con, target.horizon_days, origins, step_days)
    if target.kind == "spend":
        return _train_spend(settings, con, target, planned, promote_champion, report)
    rows: list[BacktestRow] = []
    share = 0.8 / len(planned)
    for index, origin in enumerate(planned):
        def step(label, fraction, index=index, origin=origin):
            report(f"backtest at {origin.test_cutoff}: {label}", share * (index + fraction))

        fitted = fit_origin(con, target, origin, kinds, step)
        rows.extend(test_origin(con, fitted))
    summary = summarise(rows)
    champion = choose_champion(summary)
    for row in rows:
        row.champion = row.kind == champion
    report(f"training the champion ({champion}) on the latest data", 0.8)
    final_origin = Origin(last_complete_day(con), target.horizon_days)
    final = fit_origin(con, target, final_origin, (champion,))
    newest = max(rows, key=lambda row: (row.champion, row.origin.test_cutoff))
    card = _card(con, target, champion, "best mean AUROC over the backtest origins", summary,
                 rows, final_origin) | {
        "champion_curves": {"test_cutoff": newest.origin.test_cutoff.isoformat(),
                            "calibration": newest.calibration.to_dicts(),
                            "lift": newest.lift.to_dicts()},
        "training_rows": final.train_size, "training_positives": final.train_positives,
        "calibration": final.candidates[champion].calibration.to_document(),
        "season": final.season_note,
        "flags": final.flags.get(champion, []),
    }
    return _register(settings, target, card, rows, final.candidates[champion],
                     promote_champion, report)


DEFINITIONS = {
    "purchase": "P(at least one valid order in the {h} days after the scoring date)",
    "churn": "P(no valid order in the {h} days after the scoring date)",
    "spend": "expected money spent on valid orders in the {h} days after the scoring date",
}


def _card(con, target: Target, champion: str, rule: str, summary: dict, rows: list,
          final_origin: Origin) -> dict:
    """The model card's fields every target shares."""
    return {
        "target": target.name, "target_kind": target.kind, "horizon_days": target.horizon_days,
        "definition": DEFINITIONS[target.kind].format(h=target.horizon_days)
        + ", for customers with at least one valid order by then",
        "candidate": champion,
        "champion_rule": rule,
        "champion_metrics": summary[champion],
        "candidates_mean": summary,
        "backtest": [row.to_dict() for row in rows],
        "cutoffs": final_origin.to_dict() | {"scoring_from": final_origin.test_cutoff.isoformat()},
        "features": [{"name": f.name, "kind": f.kind, "meaning": f.meaning} for f in FEATURES],
        "data": data_fingerprint(con),
        "libraries": library_versions(),
        "created_at": datetime.now().isoformat(timespec="seconds"),
        "created_by": current_user(),
    }


def _register(settings: Settings, target: Target, card: dict, rows: list,
              fitted: FittedCandidate, promote_champion: bool, report) -> TrainingResult:
    version = new_version(settings, target.name)
    save_model(settings, version, card, fitted)
    if promote_champion:
        promote(settings, version)
    report("done", 1.0)
    return TrainingResult(version, {**card, "version": version}, rows, promote_champion, fitted)


def _train_spend(settings: Settings, con, target: Target, planned: list[Origin],
                 promote_champion: bool, report) -> TrainingResult:
    """Expected spend: backtest both spend candidates, keep the lower mean absolute error."""
    rows = []
    for index, origin in enumerate(planned):
        report(f"spend backtest at {origin.test_cutoff}", 0.8 * index / len(planned))
        rows.extend(backtest_spend(con, target.horizon_days, origin.test_cutoff))
    summary = summarise(rows)
    champion = min(summary, key=lambda kind: summary[kind]["mae"])
    for row in rows:
        row.champion = row.kind == champion
    report(f"fitting {champion} on the latest data", 0.8)
    final_origin = Origin(last_complete_day(con), target.horizon_days)
    model = new_spend_candidate(champion, target.horizon_days).fit(
        build_features(con, final_origin.test_cutoff, population="buyers"))
    fitted = FittedCandidate(champion, model, UNCALIBRATED_SPEND)
    card = _card(con, target, champion, "lowest mean absolute error over the backtest origins",
                 summary, rows, final_origin) | {
        "calibration": UNCALIBRATED_SPEND.to_document(),
        "season": "fitted on the purchase histories up to the scoring date; no calibration",
        "flags": list(getattr(model, "flags", [])),
    }
    return _register(settings, target, card, rows, fitted, promote_champion, report)
