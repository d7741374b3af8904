"""Drawing timestamps that follow the store's seasons and the hours people shop.

Inside the generator every time is whole seconds since the Unix epoch in an ``int64``
array; two sentinels stand for what is not a time: :data:`NULL_TIME` (the value is
empty) and :data:`NEVER` (an event that does not happen, sorting after every time).
Dirty rows use small negative codes for unparseable text (see :mod:`.dirt`).
"""

from __future__ import annotations

import numpy as np

from etl.generate.seasons import DAY, HOUR, N_DAYS, START_S, day_weights

NULL_TIME = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max

# Share of the day's activity in each hour: a lunchtime bump and an evening peak.
HOUR_WEIGHTS = np.array([
    0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 1.0, 1.4, 1.6, 1.8, 2.0,
    2.3, 2.2, 1.9, 1.8, 1.9, 2.1, 2.5, 2.9, 3.1, 2.9, 2.1, 1.2,
])
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight, ``n`` of them, following :data:`HOUR_WEIGHTS`."""
    hours = rng.choice(24, size=n, p=HOUR_WEIGHTS)
    return hours.astype(np.int64) * HOUR + rng.integers(0, HOUR, size=n)


class SeasonalClock:
    """Places events in time in proportion to the day weights of :mod:`.seasons`.

    Time is mapped onto "demand days": the cumulative day weight up to a moment. Drawing
    uniformly in demand days between two moments and mapping back gives times whose
    density follows the seasons; the exposure of a customer is the length of their
    alive span in demand days.
    """

    def __init__(self, weights: np.ndarray | None = None) -> None:
        self.weights = day_weights() if weights is None else weights
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.weights)])

    def demand_position(self, seconds: np.ndarray) -> np.ndarray:
        """Cumulative demand (in average days) from the window start to ``seconds``."""
        days = (np.asarray(seconds, dtype=np.int64) - START_S) / DAY
        whole = np.clip(np.floor(days).astype(np.int64), 0, N_DAYS - 1)
        fraction = np.clip(days - whole, 0.0, 1.0)
        return self.cumulative[whole] + self.weights[whole] * fraction

    def exposure_days(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Demand days between ``start`` and ``end`` (0 when the span is empty)."""
        span = self.demand_position(end) - self.demand_position(start)
        return np.where(end > start, np.maximum(span, 0.0), 0.0)

    def sample_between(self, rng: np.random.Generator, start: np.ndarray,
                       end: np.ndarray) -> np.ndarray:
        """One seasonal time per pair ``start <= t <= end``, at a plausible hour."""
        low, high = self.demand_position(start), self.demand_position(end)
        position = rng.uniform(low, np.maximum(high, low))
        day = np.clip(np.searchsorted(self.cumulative, position, side="right") - 1,
                      0, N_DAYS - 1)
        seconds = START_S + day * DAY + time_of_day(rng, len(day))
        return np.clip(seconds, start, end)

    def sample_days(self, rng: np.random.Generator, n: int,
                    tilt: np.ndarray | None = None) -> np.ndarray:
        """``n`` times over the whole window; ``tilt`` reweights the days (e.g. growth)."""
        weights = self.weights if tilt is None else self.weights * tilt
        day = rng.choice(N_DAYS, size=n, p=weights / weights.sum())
        return START_S + day.astype(np.int64) * DAY + time_of_day(rng, n)
