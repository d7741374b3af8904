"""The demo store's year: its time window, daily demand and discount calendar.

Demand is a weight per day of the window (mean 1) that multiplies every customer's
shopping rate: a weekly rhythm (Saturdays quiet, Sundays busy), a monthly rhythm,
Black Friday (the last Friday of November), its weekend and Cyber Monday, and the run-up
to Christmas. The same days drive the discounts shoppers get.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

DAY = 86_400
HOUR = 3_600
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

WINDOW_START = date(2023, 1, 1)
WINDOW_END = date(2024, 12, 31)
HISTORY_START = date(2021, 1, 1)
"""The earliest sign-up: some customers predate the window, none of their activity does."""


def seconds_at(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Whole seconds since the Unix epoch (UTC) at a wall-clock time on ``day``."""
    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp())


def format_seconds(seconds: int) -> str:
    """``YYYY-MM-DD HH:MM:SS``, the one timestamp format of every generated file."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(TIMESTAMP_FORMAT)


START_S = seconds_at(WINDOW_START)
AS_OF_S = seconds_at(WINDOW_END, 23, 59, 59)
HISTORY_START_S = seconds_at(HISTORY_START)
N_DAYS = (WINDOW_END - WINDOW_START).days + 1

# Monday .. Sunday: shoppers browse and buy most on Sunday evenings, least on Saturdays.
WEEKDAY_WEIGHTS = (1.02, 1.0, 0.98, 0.97, 0.92, 0.82, 1.14)
# January .. December, before the Black Friday and Christmas peaks are laid on top.
MONTH_WEIGHTS = (0.88, 0.86, 0.95, 0.96, 1.0, 0.95, 0.9, 0.9, 1.0, 1.02, 1.08, 1.0)


def black_friday(year: int) -> date:
    """The last Friday of November."""
    last = date(year, 11, 30)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def window_days() -> list[date]:
    """Every calendar day of the window, in order."""
    return [WINDOW_START + timedelta(days=i) for i in range(N_DAYS)]


def _peak_multiplier(day: date) -> float:
    """How much busier than usual a day of the retail peaks is."""
    since_black_friday = (day - black_friday(day.year)).days
    peak = {0: 4.0, 1: 2.2, 2: 2.0, 3: 3.0}  # Friday, the weekend, Cyber Monday
    if since_black_friday in peak:
        return peak[since_black_friday]
    if -7 <= since_black_friday < 0:
        return 1.25  # early "Black Week" deals
    if day.month == 12:
        if day.day <= 21:
            return 1.55
        return {22: 1.2, 23: 1.2, 24: 0.6, 25: 0.35, 26: 1.4}.get(day.day, 1.1)
    return 1.0


def day_weights() -> np.ndarray:
    """Relative demand of each day of the window, with mean 1."""
    weights = np.array([
        MONTH_WEIGHTS[d.month - 1] * WEEKDAY_WEIGHTS[d.weekday()] * _peak_multiplier(d)
        for d in window_days()
    ])
    return weights / weights.mean()


def discount_calendar() -> tuple[np.ndarray, np.ndarray]:
    """Per day: the chance an order carries a discount, and that discount's rate.

    Returns
    -------
    probability, rate
        Arrays of length ``N_DAYS``. Black Friday to Cyber Monday is the deepest sale.
    """
    probability = np.full(N_DAYS, 0.1)
    rate = np.full(N_DAYS, 0.10)
    for i, day in enumerate(window_days()):
        since_black_friday = (day - black_friday(day.year)).days
        if 0 <= since_black_friday <= 3:
            probability[i], rate[i] = 0.65, 0.25
        elif -7 <= since_black_friday < 0:
            probability[i], rate[i] = 0.3, 0.15
        elif day.month == 12 and day.day <= 21:
            probability[i], rate[i] = 0.3, 0.15
        elif (day.month == 12 and day.day >= 26) or (day.month == 1 and day.day <= 10):
            probability[i], rate[i] = 0.35, 0.20
    return probability, rate
