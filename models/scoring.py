"""The scoring job: every customer's score for a target, as of a date, into ``scores``.

It loads the target's champion from the registry, builds the buyers' features as of the
date (the last day of the data by default), turns them into calibrated probabilities and
deciles (1 = the highest tenth), and publishes them through the warehouse writer, so the
pages never see half a run. Rows of an earlier run for the same target and ``scored_at``
are replaced; other runs stay, and segment conditions read each customer's latest score
at or before their ``as_of``. Every row carries the model version, and exports stamp it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl

from models.features import build_features
from models.labels import last_complete_day
from models.population import as_cutoff, cutoff_day
from models.registry import champion_version, load_model
from studio import warehouse
from studio.config import Settings
from studio.errors import UserError
from studio.schema import SCORES_DDL


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run wrote."""

    target: str
    model_version: str
    scored_at: datetime
    customers: int
    mean_score: float

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"target": self.target, "model_version": self.model_version,
                "scored_at": self.scored_at.isoformat(), "customers": self.customers,
                "mean_score": self.mean_score}


def deciles(scores: np.ndarray) -> np.ndarray:
    """1 for the highest tenth of scores ... 10 for the lowest; ties share a decile."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int32)
    ranks = pl.Series(-scores).rank(method="max").to_numpy()  # ties take their last place
    return np.ceil(10 * ranks / len(scores)).astype(np.int32)


def score_frame(settings: Settings, con, target_name: str,
                as_of: date | str | None = None) -> tuple[pl.DataFrame, str, datetime]:
    """``customer_id, score, decile`` for the target's champion as of a day (no writing)."""
    version = champion_version(settings, target_name)
    if version is None:
        raise UserError(f"There is no trained model for {target_name}; train one with "
                        "'studio models train --target ... --horizon ...' first.")
    model = load_model(settings, version)
    if as_of is not None:
        day = cutoff_day(as_of)
        scored_at = as_cutoff(day).replace(microsecond=0)
    else:  # the data's last moment, so segments at the default as_of see these scores
        day = last_complete_day(con)
        scored_at = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
    features = build_features(con, day, population="buyers")
    probabilities = model.fitted.probabilities(features)
    frame = pl.DataFrame({"customer_id": features["customer_id"],
                          "score": probabilities.astype(float),
                          "decile": deciles(probabilities)})
    return frame, version, scored_at


def score_customers(settings: Settings, target_name: str, as_of: date | str | None = None,
                    progress=None) -> ScoreResult:
    """Score every buyer for ``target_name`` with its champion and publish the scores."""
    report = progress or (lambda _label, _fraction: None)
    report(f"scoring {target_name}", 0.1)
    with warehouse.connect_reader(settings) as con:
        frame, version, scored_at = score_frame(settings, con, target_name, as_of)
    report("publishing scores", 0.6)
    rows = frame.with_columns(pl.lit(target_name).alias("target"),
                              pl.lit(version).alias("model_version"),
                              pl.lit(scored_at).alias("scored_at"))
    with warehouse.writer(settings) as con:
        con.execute(SCORES_DDL)
        con.execute("DELETE FROM scores WHERE target = ? AND scored_at = ?",
                    [target_name, scored_at])
        con.register("new_scores", rows.to_arrow())
        con.execute("INSERT INTO scores SELECT customer_id, target, model_version, score, "
                    "decile, scored_at FROM new_scores")
        con.unregister("new_scores")
    report("done", 1.0)
    mean = float(frame["score"].mean()) if len(frame) else 0.0
    return ScoreResult(target_name, version, scored_at, len(frame), mean)
