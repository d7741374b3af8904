"""Shopping episodes: the latent, time-varying intent behind browsing and buying.

A customer's purchase rate is realised through *episodes*: bursts of intent, placed in
time by the seasons while the customer is alive. An episode ends in an order with the
customer's ``episode_conversion`` probability, otherwise in window shopping. Before its
last session an episode has a few earlier sessions spread over the preceding days, and
an episode that will end in an order has more of them, and more carts.

That is why browsing predicts buying beyond recency and frequency: product views and
carts in the last weeks reveal an episode that is under way, and the order it may end
in lies in the coming days. Churned customers neither browse nor buy.
"""

from __future__ import annotations

import numpy as np

from etl.generate.catalogue import CATEGORY_WEIGHTS
from etl.generate.clock import SeasonalClock
from etl.generate.columns import Columns
from etl.generate.population import Population
from etl.generate.seasons import DAY

# Session kinds; the events each holds are drawn in :mod:`.events`.
FINAL_BUY, FINAL_BROWSE, BEFORE_BUY, BEFORE_BROWSE = range(4)
FAVOURITE_CATEGORY_SHARE = 0.5
EARLIER_SESSIONS = {True: 0.7, False: 0.2}  # mean count, by whether the episode buys
EARLIER_SESSION_LEAD_DAYS = 9.0  # mean time from an earlier session to the episode's end


def _episodes(rng: np.random.Generator, population: Population,
              clock: SeasonalClock) -> Columns:
    """One row per episode: customer, end time, whether it buys, category."""
    start, end = population.alive_span()
    exposure_years = clock.exposure_days(start, end) / 365.25
    episode_rate = population.purchase_rate / population.episode_conversion
    counts = rng.poisson(episode_rate * exposure_years)
    customer = np.repeat(np.arange(population.size, dtype=np.int32), counts)
    n = len(customer)
    favourite = rng.random(n) < FAVOURITE_CATEGORY_SHARE
    any_category = rng.choice(len(CATEGORY_WEIGHTS), size=n, p=CATEGORY_WEIGHTS)
    return {
        "customer": customer,
        "ends_at": clock.sample_between(rng, start[customer], end[customer]),
        "buys": rng.random(n) < population.episode_conversion[customer],
        "category": np.where(favourite, population.favourite_category[customer],
                             any_category).astype(np.int8),
    }


def simulate_shopping(rng: np.random.Generator, population: Population,
                      clock: SeasonalClock) -> tuple[Columns, Columns]:
    """Sessions of every episode and the background purchases they end in.

    Returns
    -------
    sessions
        customer, anchor (time of the session's last event), kind, category and floor
        (the earliest time its events may have: sign-up or the window start).
    purchases
        customer, ordered_at, category and session (the row of its final session).
    """
    episodes = _episodes(rng, population, clock)
    start, _ = population.alive_span()
    buys = episodes["buys"]
    earlier = rng.poisson(np.where(buys, EARLIER_SESSIONS[True], EARLIER_SESSIONS[False]))
    parent = np.repeat(np.arange(len(buys)), earlier)
    lead = (rng.exponential(EARLIER_SESSION_LEAD_DAYS * DAY, size=len(parent)) + 1_800)
    earlier_at = episodes["ends_at"][parent] - lead.astype(np.int64)
    kept = earlier_at >= start[episodes["customer"][parent]]
    parent, earlier_at = parent[kept], earlier_at[kept]

    customer = np.concatenate([episodes["customer"], episodes["customer"][parent]])
    sessions = {
        "customer": customer,
        "anchor": np.concatenate([episodes["ends_at"], earlier_at]),
        "kind": np.concatenate([np.where(buys, FINAL_BUY, FINAL_BROWSE),
                                np.where(buys[parent], BEFORE_BUY, BEFORE_BROWSE)]
                               ).astype(np.int8),
        "category": np.concatenate([episodes["category"], episodes["category"][parent]]),
        "floor": start[customer],
    }
    final_buy = np.flatnonzero(buys)
    purchases = {
        "customer": episodes["customer"][final_buy],
        "ordered_at": episodes["ends_at"][final_buy],
        "category": episodes["category"][final_buy],
        "session": final_buy,
    }
    return sessions, purchases
