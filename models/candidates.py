"""The candidate models: LightGBM, logistic regression, a recency/frequency rule, BG/NBD.

Every candidate has the same small life: ``fit`` on the features of one cutoff and their
labels (LightGBM also sees a later validation window, for early stopping), ``raw_scores``
on the features of another cutoff, and ``to_document`` / :func:`candidate_from_document`
to be stored as plain JSON (LightGBM's own text format inside it). Raw scores rank
customers; :mod:`models.calibration` turns them into probabilities.

Loading never executes code from a file: documents are JSON, the booster is parsed from
LightGBM's text model format, and the kind must be one of :data:`CANDIDATE_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from models import bgnbd
from models.features import CATEGORICAL, FEATURE_NAMES

CANDIDATE_KINDS = ("lightgbm", "logistic", "heuristic", "bgnbd")
LOG_RFM = ("frequency", "recency_days", "monetary_total", "tenure_days")
"""The logistic regression's inputs, each as log(1 + x): the published protocol's log RFM."""

LIGHTGBM_PARAMS = {
    "objective": "binary", "learning_rate": 0.02, "num_leaves": 15, "min_data_in_leaf": 100,
    "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
    "metric": "binary_logloss", "num_threads": 1, "seed": 7, "deterministic": True,
    "verbosity": -1,
}
"""Conservative settings: on a few thousand customers more freedom only overfits (on the
20,000-customer demo, 15 leaves at rate 0.02 beat 31 at 0.05 by 0.002 AUROC). One thread:
on a busy two-core machine two OpenMP threads spin against each other (a fit took 15 s
with two and 1.9 s with one, with identical trees)."""
MAX_ROUNDS = 2_000
EARLY_STOPPING_ROUNDS = 50


def _numbers(frame: pl.DataFrame, names) -> np.ndarray:
    """Columns as a float matrix, nulls as NaN."""
    return frame.select([pl.col(n).cast(pl.Float64) for n in names]).to_numpy()


@dataclass
class CategoryCodes:
    """Each categorical feature's values, in a fixed order.

    Codes then mean the same at training and at scoring; a value first seen at scoring
    becomes missing.
    """

    vocabulary: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def learn(cls, frame: pl.DataFrame) -> CategoryCodes:
        """The vocabulary of ``frame``'s categorical columns."""
        return cls({name: sorted(str(v) for v in frame[name].drop_nulls().unique())
                    for name in CATEGORICAL})

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """Every feature in :data:`FEATURE_NAMES` order, categoricals as codes."""
        columns = []
        for name in FEATURE_NAMES:
            if name in CATEGORICAL:
                index = {value: code for code, value in enumerate(self.vocabulary[name])}
                codes = [index.get(value, np.nan) if value is not None else np.nan
                         for value in frame[name].cast(pl.String).to_list()]
                columns.append(np.asarray(codes, dtype=np.float64))
            else:
                columns.append(frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy())
        return np.column_stack(columns)


class LightGbmCandidate:
    """Gradient-boosted trees on every feature, stopped early on a later window."""

    kind = "lightgbm"
    is_probability = True

    def __init__(self, booster: lgb.Booster | None = None, codes: CategoryCodes | None = None):
        self.booster = booster
        self.codes = codes or CategoryCodes()

    def fit(self, features: pl.DataFrame, labels: np.ndarray,
            validation: tuple[pl.DataFrame, np.ndarray] | None = None) -> LightGbmCandidate:
        """Learn from ``features`` and their 0/1 ``labels``; returns itself."""
        self.codes = CategoryCodes.learn(features)
        categorical = [FEATURE_NAMES.index(name) for name in CATEGORICAL]
        train = lgb.Dataset(self.codes.matrix(features), labels.astype(float),
                            feature_name=list(FEATURE_NAMES), categorical_feature=categorical,
                            free_raw_data=True)
        sets, callbacks = [], []
        if validation is not None:
            valid_features, valid_labels = validation
            sets = [lgb.Dataset(self.codes.matrix(valid_features), valid_labels.astype(float),
                                reference=train)]
            callbacks = [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
        self.booster = lgb.train(LIGHTGBM_PARAMS, train,
                                 num_boost_round=MAX_ROUNDS if sets else 300,
                                 valid_sets=sets, callbacks=callbacks)
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Scores that rank customers (higher: likelier), one per row of ``features``."""
        return self.booster.predict(self.codes.matrix(features),
                                    num_iteration=self.booster.best_iteration or None)

    def contributions(self, features: pl.DataFrame) -> np.ndarray:
        """Per customer and feature, the feature's push on the log-odds (SHAP values).

        The last column is the baseline, the same for everyone.
        """
        return self.booster.predict(self.codes.matrix(features), pred_contrib=True,
                                    num_iteration=self.booster.best_iteration or None)

    def to_document(self) -> dict:
        """The fitted model as JSON values, for the registry."""
        return {"kind": self.kind, "vocabulary": self.codes.vocabulary,
                "best_iteration": self.booster.best_iteration,
                "model": self.booster.model_to_string()}

    @classmethod
    def from_document(cls, document: dict) -> LightGbmCandidate:
        """The fitted model a document from :meth:`to_document` describes."""
        booster = lgb.Booster(model_str=document["model"])
        booster.best_iteration = int(document.get("best_iteration") or 0)
        return cls(booster, CategoryCodes(document["vocabulary"]))


class LogisticCandidate:
    """Logistic regression on log recency, frequency, monetary value and tenure."""

    kind = "logistic"
    is_probability = True

    def __init__(self, center=None, scale=None, coefficients=None, intercept: float = 0.0):
        self.center, self.scale = center, scale
        self.coefficients, self.intercept = coefficients, intercept

    @staticmethod
    def _inputs(features: pl.DataFrame) -> np.ndarray:
        values = np.log1p(np.clip(np.nan_to_num(_numbers(features, LOG_RFM), nan=0.0), 0, None))
        return values

    def fit(self, features: pl.DataFrame, labels: np.ndarray,
            validation=None) -> LogisticCandidate:
        """Learn from ``features`` and their 0/1 ``labels``; returns itself."""
        inputs = self._inputs(features)
        self.center = inputs.mean(axis=0)
        self.scale = np.where(inputs.std(axis=0) > 0, inputs.std(axis=0), 1.0)
        model = LogisticRegression(C=1.0, max_iter=1_000)
        model.fit((inputs - self.center) / self.scale, labels.astype(int))
        self.coefficients, self.intercept = model.coef_[0], float(model.intercept_[0])
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Scores that rank customers (higher: likelier), one per row of ``features``."""
        logit = ((self._inputs(features) - self.center) / self.scale) @ self.coefficients
        return 1.0 / (1.0 + np.exp(-(logit + self.intercept)))

    def to_document(self) -> dict:
        """The fitted model as JSON values, for the registry."""
        return {"kind": self.kind, "inputs": list(LOG_RFM), "center": list(self.center),
                "scale": list(self.scale), "coefficients": list(self.coefficients),
                "intercept": self.intercept}

    @classmethod
    def from_document(cls, document: dict) -> LogisticCandidate:
        """The fitted model a document from :meth:`to_document` describes."""
        return cls(np.asarray(document["center"]), np.asarray(document["scale"]),
                   np.asarray(document["coefficients"]), float(document["intercept"]))


class HeuristicCandidate:
    """The rule a marketer would use: often and recently beats rarely and long ago.

    Score = log(1 + purchases) - log(1 + days since the last purchase), negated for churn.
    Nothing is fitted; it is the floor any model has to clear.
    """

    def __init__(self, churn: bool = False):
        self.churn = churn

    kind = "heuristic"
    is_probability = False

    def fit(self, features: pl.DataFrame, labels: np.ndarray,
            validation=None) -> HeuristicCandidate:
        """Learn from ``features`` and their 0/1 ``labels``; returns itself."""
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Scores that rank customers (higher: likelier), one per row of ``features``."""
        frequency, recency = _numbers(features, ("frequency", "recency_days")).T
        score = np.log1p(np.nan_to_num(frequency)) - np.log1p(np.nan_to_num(recency, nan=1e4))
        return -score if self.churn else score

    def to_document(self) -> dict:
        """The fitted model as JSON values, for the registry."""
        return {"kind": self.kind, "churn": self.churn}

    @classmethod
    def from_document(cls, document: dict) -> HeuristicCandidate:
        """The fitted model a document from :meth:`to_document` describes."""
        return cls(bool(document.get("churn", False)))


class BgNbdCandidate:
    """BG/NBD: P(at least one purchase in the horizon), fitted by maximum likelihood.

    It needs no labels, so it is fitted on the purchase histories up to the cutoff it scores.

    Customers without a purchase have no BG/NBD history and score 0 (they are outside
    the buyers population the purchase targets use).
    """

    kind = "bgnbd"
    is_probability = True

    def __init__(self, horizon_days: int, fit: bgnbd.BgNbdFit | None = None,
                 churn: bool = False):
        self.horizon_days = horizon_days
        self.fitted = fit
        self.churn = churn

    @staticmethod
    def _histories(features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, t_x, big_t = _numbers(features, ("bgnbd_x", "bgnbd_t_x", "bgnbd_T")).T
        known = ~np.isnan(x) & ~np.isnan(big_t)
        return known, np.nan_to_num(x), np.nan_to_num(t_x), np.nan_to_num(big_t)

    def fit(self, features: pl.DataFrame, labels: np.ndarray | None = None,
            validation=None) -> BgNbdCandidate:
        """Learn from ``features`` and their 0/1 ``labels``; returns itself."""
        known, x, t_x, big_t = self._histories(features)
        self.fitted = bgnbd.fit_bgnbd(x[known], t_x[known], big_t[known])
        return self

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """Scores that rank customers (higher: likelier), one per row of ``features``."""
        known, x, t_x, big_t = self._histories(features)
        scores = np.zeros(len(x))
        scores[known] = bgnbd.probability_of_purchase(self.fitted, x[known], t_x[known],
                                                      big_t[known], self.horizon_days)
        return 1.0 - scores if self.churn else scores

    def to_document(self) -> dict:
        """The fitted model as JSON values, for the registry."""
        fit = self.fitted
        return {"kind": self.kind, "horizon_days": self.horizon_days, "churn": self.churn,
                "params": fit.params,
                "log_likelihood": fit.log_likelihood, "n_customers": fit.n_customers,
                "converged": fit.converged, "at_bounds": list(fit.at_bounds),
                "std_errors": dict(fit.std_errors), "flags": list(fit.flags)}

    @classmethod
    def from_document(cls, document: dict) -> BgNbdCandidate:
        """The fitted model a document from :meth:`to_document` describes."""
        params = document["params"]
        fit = bgnbd.BgNbdFit(
            r=float(params["r"]), alpha=float(params["alpha"]), a=float(params["a"]),
            b=float(params["b"]), log_likelihood=float(document["log_likelihood"]),
            n_customers=int(document["n_customers"]), converged=bool(document["converged"]),
            at_bounds=tuple(document["at_bounds"]), std_errors=document.get("std_errors", {}),
            flags=tuple(document["flags"]))
        return cls(int(document["horizon_days"]), fit, bool(document.get("churn", False)))


def new_candidate(kind: str, horizon_days: int, churn: bool = False):
    """A fresh, unfitted candidate of ``kind`` (``churn``: scores say "will not buy")."""
    if kind == "lightgbm":
        return LightGbmCandidate()
    if kind == "logistic":
        return LogisticCandidate()
    if kind == "heuristic":
        return HeuristicCandidate(churn)
    if kind == "bgnbd":
        return BgNbdCandidate(horizon_days, churn=churn)
    raise ValueError(f"unknown candidate {kind!r}; one of {', '.join(CANDIDATE_KINDS)}")


def candidate_from_document(document: dict):
    """The fitted candidate a stored document describes (JSON values only)."""
    from models.spend import LastYearRate, SpendCandidate

    kind = document.get("kind")
    classes = {"lightgbm": LightGbmCandidate, "logistic": LogisticCandidate,
               "heuristic": HeuristicCandidate, "bgnbd": BgNbdCandidate,
               "bgnbd_gamma_gamma": SpendCandidate, "last_year_rate": LastYearRate}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r} in the artifact")
    return classes[kind].from_document(document)
