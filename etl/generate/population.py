"""The customers: who they are (profile) and how they behave (latent traits).

Each customer signs up once, buys at their own rate while alive, and drops out after an
exponential lifetime (a Pareto/NBD-like process):

* ``purchase_rate``: orders per year while alive, Gamma-distributed (most buy rarely, a
  few buy often), nudged by acquisition channel and scaled so the store averages
  :data:`BACKGROUND_ORDERS_PER_CUSTOMER` orders per customer over the window;
* ``dropout_rate``: the lifetime's hazard per year, itself Gamma-distributed, so some
  customers churn within months while others stay for years;
* ``episode_conversion``: the share of a customer's shopping episodes that end in an
  order (see :mod:`.shopping`); the rest are window shopping.

Customer numbers follow sign-up order: customer ``k`` (0-based) is ``C{k+1:07d}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.generate.catalogue import CATEGORY_WEIGHTS
from etl.generate.clock import SeasonalClock
from etl.generate.seasons import AS_OF_S, DAY, HISTORY_START_S, N_DAYS, START_S

YEAR = 365.25 * DAY
BACKGROUND_ORDERS_PER_CUSTOMER = 2.6
"""Orders per customer over the window from the background process; campaigns add ~0.2."""
PRE_WINDOW_SHARE = 0.25
PHONE_SHARE = 0.55

# code, share of customers, mobile prefix of E.164 numbers, digits after the prefix
COUNTRIES: tuple[tuple[str, float, str, int], ...] = (
    ("DE", 0.28, "+4915", 9), ("GB", 0.14, "+447", 9), ("FR", 0.12, "+336", 8),
    ("NL", 0.08, "+316", 8), ("ES", 0.07, "+346", 8), ("IT", 0.07, "+393", 9),
    ("US", 0.05, "+1555", 7), ("AT", 0.05, "+43664", 7), ("BE", 0.04, "+324", 8),
    ("SE", 0.03, "+467", 8), ("PL", 0.03, "+485", 8), ("CH", 0.02, "+417", 8),
    ("DK", 0.02, "+452", 7),
)
# channel, share of customers, multiplier on the purchase rate
CHANNELS: tuple[tuple[str, float, float], ...] = (
    ("organic", 0.34, 1.0), ("paid_search", 0.22, 0.95), ("social", 0.18, 0.8),
    ("email", 0.08, 1.15), ("referral", 0.10, 1.25), ("affiliate", 0.08, 0.8),
)
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")


def shares(table: tuple[tuple, ...]) -> np.ndarray:
    """The normalised second column of a (name, share, ...) table."""
    weights = np.array([row[1] for row in table])
    return weights / weights.sum()


@dataclass(frozen=True)
class Population:
    """Per-customer arrays, index ``k`` being customer ``C{k+1}``."""

    signed_up_at: np.ndarray  # int64 seconds, non-decreasing
    updated_at: np.ndarray
    country: np.ndarray  # int8 index into COUNTRIES
    channel: np.ndarray  # int8 index into CHANNELS
    name_seed: np.ndarray  # int64: picks first name, last name and e-mail domain
    phone_number: np.ndarray  # int64, 9 random digits (cut to the country's length), 0 = none
    birth_year: np.ndarray  # int16, 0 = not given
    loyalty_tier: np.ndarray  # int8 index into LOYALTY_TIERS
    purchase_rate: np.ndarray  # orders per year while alive
    dropout_rate: np.ndarray  # lifetime hazard per year
    churn_at: np.ndarray  # int64 seconds the customer drops out (may be after as_of)
    episode_conversion: np.ndarray
    favourite_category: np.ndarray  # int8
    open_propensity: np.ndarray  # chance of opening a marketing e-mail

    @property
    def size(self) -> int:
        """Number of customers."""
        return len(self.signed_up_at)

    @property
    def has_phone(self) -> np.ndarray:
        """Customers who gave a mobile number (the only ones SMS can reach)."""
        return self.phone_number > 0

    def alive_span(self) -> tuple[np.ndarray, np.ndarray]:
        """The part of the window each customer is alive in (start > end when never)."""
        return np.maximum(self.signed_up_at, START_S), np.minimum(self.churn_at, AS_OF_S)


def _signup_times(rng: np.random.Generator, n: int, clock: SeasonalClock) -> np.ndarray:
    """A quarter before the window, the rest inside it, growing over time."""
    before = int(round(PRE_WINDOW_SHARE * n))
    early = rng.integers(HISTORY_START_S, START_S, size=before)
    growth = 1.0 + np.arange(N_DAYS) / N_DAYS
    late = np.minimum(clock.sample_days(rng, n - before, tilt=growth), AS_OF_S - DAY)
    return np.sort(np.concatenate([early, late]))


def _calibrate(raw_rate: np.ndarray, exposure_years: np.ndarray) -> np.ndarray:
    """Scale raw rates so the expected background orders per customer hit the target."""
    expected = float(raw_rate @ exposure_years)
    scale = BACKGROUND_ORDERS_PER_CUSTOMER * len(raw_rate) / max(expected, 1e-9)
    return raw_rate * scale


def _loyalty_tiers(rng: np.random.Generator, purchase_rate: np.ndarray) -> np.ndarray:
    """Tiers that loosely follow spending: the top 5% platinum, next 15% gold, ..."""
    noisy = purchase_rate * rng.lognormal(0.0, 0.6, size=len(purchase_rate))
    rank = np.argsort(np.argsort(noisy, kind="stable"), kind="stable") / max(len(noisy), 1)
    return np.searchsorted(np.array([0.5, 0.8, 0.95]), rank, side="right").astype(np.int8)


def draw_population(rng: np.random.Generator, n: int, clock: SeasonalClock) -> Population:
    """Draw ``n`` customers: profiles, sign-ups, purchase rates and lifetimes."""
    signed_up_at = _signup_times(rng, n, clock)
    channel = rng.choice(len(CHANNELS), size=n, p=shares(CHANNELS)).astype(np.int8)
    country = rng.choice(len(COUNTRIES), size=n, p=shares(COUNTRIES)).astype(np.int8)
    channel_effect = np.array([row[2] for row in CHANNELS])[channel]
    raw_rate = rng.gamma(shape=0.9, scale=1.0, size=n) * channel_effect
    dropout_rate = rng.gamma(shape=1.2, scale=0.45 / 1.2, size=n)
    lifetime = rng.exponential(1.0, size=n) / np.maximum(dropout_rate, 1e-6) * YEAR
    churn_at = signed_up_at + np.minimum(lifetime, 100 * YEAR).astype(np.int64)
    start, end = np.maximum(signed_up_at, START_S), np.minimum(churn_at, AS_OF_S)
    purchase_rate = _calibrate(raw_rate, clock.exposure_days(start, end) / 365.25)
    has_phone = rng.random(n) < PHONE_SHARE
    birth_year = np.clip(np.round(rng.normal(1984, 13, size=n)), 1940, 2006).astype(np.int16)
    return Population(
        signed_up_at=signed_up_at,
        updated_at=np.minimum(signed_up_at + rng.integers(0, 2 * DAY, size=n), AS_OF_S),
        country=country,
        channel=channel,
        name_seed=rng.integers(0, 2**31, size=n),
        phone_number=np.where(has_phone, rng.integers(10**8, 10**9, size=n), 0),
        birth_year=np.where(rng.random(n) < 0.8, birth_year, 0).astype(np.int16),
        loyalty_tier=_loyalty_tiers(rng, purchase_rate),
        purchase_rate=purchase_rate,
        dropout_rate=dropout_rate,
        churn_at=churn_at,
        episode_conversion=rng.beta(7.0, 3.0, size=n),
        favourite_category=rng.choice(len(CATEGORY_WEIGHTS), size=n,
                                      p=CATEGORY_WEIGHTS).astype(np.int8),
        open_propensity=rng.beta(2.0, 4.0, size=n),
    )
