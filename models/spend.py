"""Expected spend over the next H days: BG/NBD purchases times Gamma-Gamma value.

The third target beside purchase and churn. BG/NBD and Gamma-Gamma need no labels, so
they are fitted on the purchase histories up to the cutoff they score, and a backtest
compares their estimate with what each buyer actually spent in ``(t0, t0 + H]``, against
the baseline a marketer would use: the customer's last-year spend scaled to H days.
Neither output is a probability; the scoring job writes the estimate in money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
from scipy.stats import spearmanr

from models import bgnbd, gamma_gamma
from models.features import build_features
from models.labels import build_labels, last_complete_day
from models.population import cutoff_day
from studio.errors import UserError

SPEND_KINDS = ("bgnbd_gamma_gamma", "last_year_rate")
MIN_BUYERS = 500
"""The same gate as the purchase models' (:data:`models.backtest.MIN_BUYERS`)."""


def _inputs(features: pl.DataFrame) -> tuple[np.ndarray, ...]:
    columns = ("bgnbd_x", "bgnbd_t_x", "bgnbd_T", "gg_mean_repeat_value")
    x, t_x, big_t, value = (features[c].cast(pl.Float64).fill_null(0.0).to_numpy()
                            for c in columns)
    return x, t_x, big_t, np.clip(value, 0.0, None)


class SpendCandidate:
    """BG/NBD x Gamma-Gamma, fitted by maximum likelihood on the histories it scores."""

    kind = "bgnbd_gamma_gamma"
    is_probability = False

    def __init__(self, horizon_days: int, purchases=None, values=None):
        self.horizon_days = horizon_days
        self.purchases, self.values = purchases, values

    def fit(self, features: pl.DataFrame, labels=None, validation=None) -> SpendCandidate:
        """Fit both models on the buyers' histories (no labels needed)."""
        x, t_x, big_t, value = _inputs(features)
        self.purchases = bgnbd.fit_bgnbd(x, t_x, big_t)
        repeat = (x > 0) & (value > 0)
        self.values = gamma_gamma.fit_gamma_gamma(x[repeat], value[repeat])
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Expected spend of each buyer over the horizon, in the store's currency."""
        x, t_x, big_t, value = _inputs(features)
        return gamma_gamma.expected_spend(self.purchases, self.values, x, t_x, big_t,
                                          np.where(x > 0, value, 0.0), self.horizon_days)

    @property
    def flags(self) -> list[str]:
        """Warnings about degenerate fits, from either model."""
        return [*self.purchases.flags, *self.values.flags]

    def to_document(self) -> dict:
        """The two fits' parameters as JSON values."""
        return {"kind": self.kind, "horizon_days": self.horizon_days,
                "bgnbd": self.purchases.params, "gamma_gamma": self.values.params,
                "flags": self.flags}

    @classmethod
    def from_document(cls, document: dict) -> SpendCandidate:
        """The candidate :meth:`to_document` wrote."""
        purchases = bgnbd.BgNbdFit(**{k: float(v) for k, v in document["bgnbd"].items()},
                                   log_likelihood=float("nan"), n_customers=0, converged=True)
        values = gamma_gamma.GammaGammaFit(
            **{k: float(v) for k, v in document["gamma_gamma"].items()},
            log_likelihood=float("nan"), n_customers=0, converged=True)
        return cls(int(document["horizon_days"]), purchases, values)


class LastYearRate:
    """The baseline: what the buyer spent in the last 365 days, scaled to the horizon."""

    kind = "last_year_rate"
    is_probability = False

    def __init__(self, horizon_days: int):
        self.horizon_days = horizon_days

    def fit(self, features: pl.DataFrame, labels=None, validation=None) -> LastYearRate:
        """Nothing to fit."""
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Last year's spend times H / 365."""
        spent = features["revenue_365d"].cast(pl.Float64).fill_null(0.0).to_numpy()
        return spent * self.horizon_days / 365

    def to_document(self) -> dict:
        """The horizon is all there is."""
        return {"kind": self.kind, "horizon_days": self.horizon_days}

    @classmethod
    def from_document(cls, document: dict) -> LastYearRate:
        """The baseline :meth:`to_document` wrote."""
        return cls(int(document["horizon_days"]))


def new_spend_candidate(kind: str, horizon_days: int):
    """A fresh spend candidate of ``kind``."""
    return SpendCandidate(horizon_days) if kind == "bgnbd_gamma_gamma" else LastYearRate(
        horizon_days)


def spend_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict:
    """How well predicted spend matches actual spend: totals, error, ranking, capture."""
    order = np.argsort(-predicted, kind="stable")
    top = order[: max(1, len(order) // 10)]
    total = float(actual.sum())
    return {
        "n": int(len(actual)),
        "actual_total": total,
        "predicted_total": float(predicted.sum()),
        "total_ratio": float(predicted.sum() / total) if total else None,
        "mae": float(np.abs(predicted - actual).mean()),
        "spearman": float(spearmanr(predicted, actual).statistic),
        "spend_capture_at_10": float(actual[top].sum() / total) if total else None,
    }


@dataclass
class SpendRow:
    """One spend candidate's backtest at one cutoff."""

    kind: str
    test_cutoff: date
    metrics: dict
    flags: list[str]
    champion: bool = False

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"candidate": self.kind, "champion": self.champion,
                "test_cutoff": self.test_cutoff.isoformat(), **self.metrics,
                "flags": self.flags}


def backtest_spend(con: duckdb.DuckDBPyConnection, horizon_days: int,
                   test_cutoff: date | str) -> list[SpendRow]:
    """Both spend candidates against the buyers' actual spend after ``test_cutoff``.

    The champion is the lower mean absolute error.
    """
    cutoff = cutoff_day(test_cutoff)
    if cutoff > last_complete_day(con) - timedelta(days=horizon_days):
        raise UserError(f"The spend window after {cutoff} runs past the data; choose an "
                        "earlier cutoff.")
    features = build_features(con, cutoff, population="buyers")
    if len(features) < MIN_BUYERS:
        raise UserError(f"Too little history to estimate spend at {cutoff}: {len(features):,} "
                        f"buyers, and the studio needs at least {MIN_BUYERS}; load more order "
                        "history or choose a later cutoff.")
    labels = features.select("customer_id").join(
        build_labels(con, cutoff, horizon_days, population="buyers"), on="customer_id",
        how="left", maintain_order="left")
    actual = labels["spend"].fill_null(0.0).to_numpy()
    rows = []
    for model in (SpendCandidate(horizon_days), LastYearRate(horizon_days)):
        model.fit(features)
        flags = model.flags if isinstance(model, SpendCandidate) else []
        rows.append(SpendRow(model.kind, cutoff,
                             spend_metrics(actual, model.raw_scores(features)), flags))
    min(rows, key=lambda row: row.metrics["mae"]).champion = True
    return rows
