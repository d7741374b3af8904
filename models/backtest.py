"""Time-based backtests: train on the past, calibrate on a later window, test after it.

For a test cutoff ``t0`` and horizon ``H`` (an **origin**), every candidate is

* trained on the features at ``t0 - 2H`` with labels in ``(t0 - 2H, t0 - H]``, and at two
  more cutoffs 30 and 60 days earlier (their labels end earlier still);
* early-stopped (LightGBM) on half of the customers at ``t0 - H`` (labels ``(t0 - H, t0]``)
  and calibrated on the other half: a later window, disjoint from the training labels;
* tested on the features at ``t0`` against the labels in ``(t0, t0 + H]``.

No row of a later window reaches an earlier step, and there is no random cross-validation:
customers are only ever split inside the one calibration window. The same procedure with
``t0`` = the last day of the data (and no test) makes the model that scores customers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from models.calibration import Calibration, fit_calibration, seasonal_offset
from models.candidates import CANDIDATE_KINDS, new_candidate
from models.features import build_features
from models.labels import build_labels, last_complete_day
from models.metrics import calibration_by_decile, evaluate, lift_curve
from models.population import cutoff_day
from studio.errors import UserError

EXTRA_TRAINING_WINDOWS = 2
TRAINING_WINDOW_STEP_DAYS = 30
"""Training rows come from the origin's training cutoff and two more, a month apart each:
three times the examples, over more than one season, with every label still before the
calibration window."""
MIN_BUYERS = 500
MIN_POSITIVES = 200
"""The minimum-data gate at the training cutoff (Klaviyo asks for 500 buyers)."""
TARGET_KINDS = ("purchase", "churn", "spend")


@dataclass(frozen=True)
class Target:
    """What is predicted, for customers with a valid order by the cutoff.

    ``purchase``: any valid order in the next H days; ``churn``: none in the next H days;
    ``spend``: the money spent on valid orders in the next H days (:mod:`models.spend`).
    """

    kind: str
    horizon_days: int

    def __post_init__(self):
        if self.kind not in TARGET_KINDS:
            raise UserError(f"Unknown target {self.kind!r}; use purchase, churn or spend.")
        if not 1 <= int(self.horizon_days) <= 730:
            raise UserError(f"A horizon of {self.horizon_days} days is not usable; give a "
                            "number of days from 1 to 730, such as 30 or 90.")

    @property
    def name(self) -> str:
        """The key in the ``scores`` table and the registry, e.g. ``purchase_90d``."""
        return f"{self.kind}_{self.horizon_days}d"

    def labels(self, frame: pl.DataFrame) -> np.ndarray:
        """The 0/1 label column of a :func:`models.labels.build_labels` frame."""
        column = "purchased" if self.kind == "purchase" else "churned"
        return frame[column].cast(pl.Int8).to_numpy()


@dataclass(frozen=True)
class Origin:
    """The three cutoffs of one backtest."""

    test_cutoff: date
    horizon_days: int

    @property
    def calibration_cutoff(self) -> date:
        """Where the calibration (and early-stopping) window starts: ``t0 - H``."""
        return self.test_cutoff - timedelta(days=self.horizon_days)

    @property
    def train_cutoff(self) -> date:
        """Where the training window starts: ``t0 - 2H``."""
        return self.test_cutoff - timedelta(days=2 * self.horizon_days)

    def to_dict(self) -> dict:
        """The cutoffs as ISO dates."""
        return {"train_cutoff": self.train_cutoff.isoformat(),
                "calibration_cutoff": self.calibration_cutoff.isoformat(),
                "test_cutoff": self.test_cutoff.isoformat()}


@dataclass
class Window:
    """Features and labels of one cutoff, rows aligned by customer."""

    cutoff: date
    features: pl.DataFrame
    labels: np.ndarray | None


def load_window(con: duckdb.DuckDBPyConnection, target: Target, cutoff: date,
                with_labels: bool = True) -> Window:
    """The buyers' features at ``cutoff`` and, if asked, their labels after it."""
    features = build_features(con, cutoff, population="buyers")
    if not with_labels:
        return Window(cutoff, features, None)
    labels = build_labels(con, cutoff, target.horizon_days, population="buyers")
    joined = features.select("customer_id").join(labels, on="customer_id", how="left",
                                                 maintain_order="left")
    return Window(cutoff, features, target.labels(joined.fill_null(False)))


def check_enough_data(window: Window, target: Target) -> None:
    """The minimum-data gate: refuse to train on too few buyers or positives."""
    buyers, positives = len(window.features), int(window.labels.sum())
    if buyers < MIN_BUYERS or positives < MIN_POSITIVES:
        raise UserError(
            f"Too little history to train {target.name} at {window.cutoff}: {buyers:,} buyers "
            f"and {positives:,} positives in the training window, and the studio needs at "
            f"least {MIN_BUYERS} buyers and {MIN_POSITIVES} positives; load more order "
            "history or choose a later cutoff.")


def first_order_day(con) -> date | None:
    """The day of the warehouse's first order, or None when it has none."""
    first = con.execute("SELECT min(ordered_at) FROM orders").fetchall()[0][0]
    return first.date() if first else None


def earlier_windows(con, target: Target, origin: Origin) -> list[Window]:
    """Up to :data:`EXTRA_TRAINING_WINDOWS` more training cutoffs before the origin's own.

    They are 30 days apart; one the data do not reach (too few buyers) ends the list.
    """
    windows = []
    first = first_order_day(con)
    for k in range(1, EXTRA_TRAINING_WINDOWS + 1):
        cutoff = origin.train_cutoff - timedelta(days=TRAINING_WINDOW_STEP_DAYS * k)
        if first is None or cutoff <= first:
            break
        window = load_window(con, target, cutoff)
        if len(window.features) < MIN_BUYERS:
            break
        windows.append(window)
    return windows


def stack_windows(windows: list[Window]) -> Window:
    """Several training windows as one set of rows (a customer may appear in each)."""
    if len(windows) == 1:
        return windows[0]
    return Window(windows[0].cutoff, pl.concat([w.features for w in windows]),
                  np.concatenate([w.labels for w in windows]))


def _halves(customer_ids: pl.Series) -> np.ndarray:
    """A fixed, content-based split of a window's customers into two halves."""
    return np.fromiter((hashlib.blake2b(c.encode(), digest_size=1).digest()[0] % 2 == 0
                        for c in customer_ids.to_list()), dtype=bool, count=len(customer_ids))


def _buying_rate(con, target: Target, cutoff: date) -> float | None:
    """The share of buyers at ``cutoff`` who bought in the horizon after it.

    None when the data do not cover that span (too early, or too few buyers to say).
    """
    first = first_order_day(con)
    if first is None or cutoff - timedelta(days=target.horizon_days) < first:
        return None
    labels = build_labels(con, cutoff, target.horizon_days, population="buyers")
    if len(labels) < MIN_BUYERS:
        return None
    return float(labels["purchased"].mean())


def season_shift(con, target: Target, origin: Origin) -> tuple[float, str]:
    """The log-odds offset for the season between calibration and prediction windows."""
    year = timedelta(days=365)
    predicted = _buying_rate(con, target, origin.test_cutoff - year)
    calibrated = _buying_rate(con, target, origin.calibration_cutoff - year)
    offset = seasonal_offset(predicted, calibrated)
    if target.kind == "churn":
        offset = -offset
    if predicted is None or calibrated is None:
        return 0.0, "no seasonal correction: the data do not reach a year before the windows"
    return offset, (f"seasonal correction {offset:+.3f} log-odds: a year earlier the buying "
                    f"rate was {predicted:.3f} in the predicted span and {calibrated:.3f} in "
                    "the calibration span")


@dataclass
class FittedCandidate:
    """A trained candidate with its calibration."""

    kind: str
    model: object
    calibration: Calibration

    def probabilities(self, features: pl.DataFrame) -> np.ndarray:
        """Calibrated probabilities for ``features``."""
        return self.calibration.apply(self.model.raw_scores(features))


@dataclass
class FittedOrigin:
    """Every candidate trained and calibrated for one origin."""

    origin: Origin
    target: Target
    candidates: dict[str, FittedCandidate]
    train_size: int
    train_positives: int
    season_note: str
    flags: dict[str, list[str]] = field(default_factory=dict)


def fit_origin(con: duckdb.DuckDBPyConnection, target: Target, origin: Origin,
               kinds=CANDIDATE_KINDS, progress=None) -> FittedOrigin:
    """Train, early-stop and calibrate every candidate for ``origin``."""
    report = progress or (lambda _label, _fraction: None)
    report(f"features at {origin.train_cutoff}", 0.0)
    train = load_window(con, target, origin.train_cutoff)
    check_enough_data(train, target)
    train = stack_windows([train, *earlier_windows(con, target, origin)])
    report(f"features at {origin.calibration_cutoff}", 0.2)
    later = load_window(con, target, origin.calibration_cutoff)
    stop = _halves(later.features["customer_id"])
    offset, note = season_shift(con, target, origin)
    fitted, flags = {}, {}
    for index, kind in enumerate(kinds):
        report(f"training {kind}", 0.4 + 0.5 * index / len(kinds))
        model = new_candidate(kind, target.horizon_days, churn=target.kind == "churn").fit(
            train.features, train.labels,
            validation=(later.features.filter(pl.Series(stop)), later.labels[stop]))
        calibrate = ~stop
        raw = model.raw_scores(later.features.filter(pl.Series(calibrate)))
        calibration = fit_calibration(raw, later.labels[calibrate],
                                      is_probability=model.is_probability)
        fitted[kind] = FittedCandidate(kind, model, calibration.with_seasonal_offset(offset))
        if kind == "bgnbd" and model.fitted.flags:
            flags[kind] = list(model.fitted.flags)
    report("trained", 1.0)
    return FittedOrigin(origin, target, fitted, len(train.features), int(train.labels.sum()),
                        note, flags)


@dataclass
class BacktestRow:
    """One candidate's test metrics at one origin."""

    kind: str
    origin: Origin
    metrics: dict
    calibration: pl.DataFrame
    lift: pl.DataFrame
    champion: bool = False
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: the metrics, flat, with the cutoffs."""
        return {"candidate": self.kind, "champion": self.champion, **self.origin.to_dict(),
                **self.metrics, "flags": self.flags}


def test_origin(con: duckdb.DuckDBPyConnection, fitted: FittedOrigin) -> list[BacktestRow]:
    """Score the test cutoff with every fitted candidate and measure against its labels."""
    test = load_window(con, fitted.target, fitted.origin.test_cutoff)
    rows = []
    for kind, candidate in fitted.candidates.items():
        probabilities = candidate.probabilities(test.features)
        rows.append(BacktestRow(kind, fitted.origin, evaluate(test.labels, probabilities),
                                calibration_by_decile(test.labels, probabilities),
                                lift_curve(test.labels, probabilities),
                                flags=fitted.flags.get(kind, [])))
    return rows


def backtest(con: duckdb.DuckDBPyConnection, target: Target, test_cutoff: date | str,
             kinds=CANDIDATE_KINDS, progress=None) -> list[BacktestRow]:
    """Every candidate's metrics at one origin; the best AUROC is marked champion."""
    origin = Origin(cutoff_day(test_cutoff), target.horizon_days)
    latest = last_complete_day(con) - timedelta(days=target.horizon_days)
    if origin.test_cutoff > latest:
        raise UserError(f"The test window after {origin.test_cutoff} runs past the data; "
                        f"choose a cutoff on or before {latest}.")
    rows = test_origin(con, fit_origin(con, target, origin, kinds, progress))
    best = max(rows, key=lambda row: row.metrics["auroc"])
    best.champion = True
    return rows
