"""Turning a candidate's raw scores into probabilities people can read as rates.

A raw score ranks; a calibrated one also means what it says: among customers scored
0.3, about 30% buy. Calibration is Platt scaling (a one-input logistic regression) fitted
on a window *later than and disjoint from* the training window, so the probabilities
track the recent rate rather than the training period's. The input is the raw score's
log-odds for candidates that output probabilities, and the raw score itself for the
heuristic.

Seasonality: the calibration window and the window being predicted may fall in seasons
with different buying rates (a summer window calibrating a Christmas prediction). When
the data reach a year further back, the shift between the two seasons a year earlier is
added on the log-odds scale (:func:`seasonal_offset`); without a year of history no
honest correction exists and the offset is zero (the model card says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

EPSILON = 1e-6


@dataclass(frozen=True)
class Calibration:
    """``P = expit(slope * f(raw) + intercept + seasonal_offset)``, f per ``transform``."""

    transform: str  # "logit" (raw scores are probabilities), "identity", or "none" (money)
    slope: float
    intercept: float
    seasonal_offset: float = 0.0

    def _inputs(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.transform == "logit":
            return logit(np.clip(raw, EPSILON, 1 - EPSILON))
        return raw

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities for raw scores (the raw scores themselves for ``none``)."""
        if self.transform == "none":
            return np.asarray(raw, dtype=float)
        return expit(self.slope * self._inputs(raw) + self.intercept + self.seasonal_offset)

    def with_seasonal_offset(self, offset: float) -> Calibration:
        """The same calibration shifted by ``offset`` on the log-odds scale."""
        return Calibration(self.transform, self.slope, self.intercept, offset)

    def to_document(self) -> dict:
        """JSON values for the registry."""
        return {"transform": self.transform, "slope": self.slope, "intercept": self.intercept,
                "seasonal_offset": self.seasonal_offset}

    @classmethod
    def from_document(cls, document: dict) -> Calibration:
        """The calibration :meth:`to_document` wrote."""
        if document.get("transform") not in ("logit", "identity", "none"):
            raise ValueError(f"unknown calibration transform {document.get('transform')!r}")
        return cls(document["transform"], float(document["slope"]),
                   float(document["intercept"]), float(document.get("seasonal_offset", 0.0)))


def fit_calibration(raw: np.ndarray, labels: np.ndarray, *, is_probability: bool) -> Calibration:
    """Platt scaling of ``raw`` scores against 0/1 ``labels`` of a later window.

    The logistic fit has an intercept and (almost) no penalty, so on the calibration
    window the mean probability equals the observed rate.
    """
    transform = "logit" if is_probability else "identity"
    draft = Calibration(transform, 1.0, 0.0)
    inputs = draft._inputs(raw).reshape(-1, 1)
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():  # one class only: the rate is all there is to learn
        rate = float(np.clip(labels.mean(), EPSILON, 1 - EPSILON))
        return Calibration(transform, 0.0, float(logit(rate)))
    model = LogisticRegression(C=1e6, max_iter=1_000).fit(inputs, labels)
    return Calibration(transform, float(model.coef_[0][0]), float(model.intercept_[0]))


def seasonal_offset(rate_then_predicted: float | None,
                    rate_then_calibrated: float | None) -> float:
    """Log-odds shift between two seasons, measured a year earlier.

    ``rate_then_predicted`` is the buying rate in the predicted window's calendar span one
    year before; ``rate_then_calibrated`` the same for the calibration window. Either
    missing (no data that far back) means no correction.
    """
    if rate_then_predicted is None or rate_then_calibrated is None:
        return 0.0
    clip = lambda rate: min(max(rate, EPSILON), 1 - EPSILON)  # noqa: E731
    return math.log(clip(rate_then_predicted) / (1 - clip(rate_then_predicted))) - math.log(
        clip(rate_then_calibrated) / (1 - clip(rate_then_calibrated)))


UNCALIBRATED_SPEND = Calibration("none", 1.0, 0.0)
"""Expected spend is money, not a probability: it is stored and scored as estimated."""
