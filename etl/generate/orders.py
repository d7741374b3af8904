"""The order book: background, campaign-induced and guest orders, in time order.

Every order is a ``sale``. Its status is drawn independently of everything else
(3% cancelled, 4% refunded), so campaign truths hold for completed orders too. Guest
checkouts (about 5% of orders) have no customer and no browsing events; they follow
the seasons but none of the customer processes.
"""

from __future__ import annotations

import numpy as np

from etl.generate.baskets import apply_discounts, fill_baskets
from etl.generate.campaign_plan import Campaign
from etl.generate.catalogue import CATEGORY_WEIGHTS, Catalogue
from etl.generate.clock import SeasonalClock
from etl.generate.columns import Columns, stack
from etl.generate.seasons import AS_OF_S, DAY, HOUR, N_DAYS, START_S, discount_calendar
from etl.generate.shopping import FINAL_BUY

GUEST_SHARE = 0.05
STATUSES = ("completed", "cancelled", "refunded")
STATUS_SHARES = (0.93, 0.03, 0.04)
PROMO_CODE_USE = 0.8  # share of campaign buyers who use the message's discount code


def _guest_orders(rng: np.random.Generator, n: int, clock: SeasonalClock) -> Columns:
    growth = 1.0 + np.arange(N_DAYS) / N_DAYS
    return {
        "customer": np.full(n, -1, dtype=np.int32),
        "ordered_at": np.minimum(clock.sample_days(rng, n, tilt=growth), AS_OF_S),
        "category": rng.choice(len(CATEGORY_WEIGHTS), size=n, p=CATEGORY_WEIGHTS).astype(np.int8),
        "campaign": np.full(n, -1, dtype=np.int16),
        "session": np.full(n, -1, dtype=np.int64),
        "send_row": np.full(n, -1, dtype=np.int64),
    }


def _discount_rates(rng: np.random.Generator, orders: Columns,
                    campaigns: list[Campaign]) -> np.ndarray:
    """Seasonal discounts for ordinary orders, the message's code for campaign orders."""
    probability, rate = discount_calendar()
    day = np.clip((orders["ordered_at"] - START_S) // DAY, 0, N_DAYS - 1)
    n = len(day)
    seasonal = np.where(rng.random(n) < probability[day], rate[day], 0.0)
    promo = np.array([c.promo_rate for c in campaigns] + [0.0])[orders["campaign"]]
    uses_code = rng.random(n) < PROMO_CODE_USE
    return np.where(orders["campaign"] >= 0, np.where(uses_code, promo, 0.0), seasonal)


def _updated_at(rng: np.random.Generator, ordered_at: np.ndarray,
                status: np.ndarray) -> np.ndarray:
    """Completed orders settle within hours; cancellations and refunds come later."""
    n = len(ordered_at)
    delay = np.select(
        [status == 0, status == 1],
        [rng.integers(60, 6 * HOUR, size=n), rng.integers(6 * HOUR, 3 * DAY, size=n)],
        rng.integers(3 * DAY, 30 * DAY, size=n),
    )
    return np.minimum(ordered_at + delay, np.maximum(AS_OF_S, ordered_at))


def assemble_orders(rng: np.random.Generator, purchases: Columns, induced: Columns,
                    sessions: Columns, campaigns: list[Campaign], catalogue: Catalogue,
                    clock: SeasonalClock, floor: np.ndarray) -> tuple[Columns, Columns]:
    """Merge the order sources, price the baskets and link buying sessions to orders.

    ``sessions`` gains a session per campaign-induced order and an ``order`` column
    (row of the order a session ends in, -1 for none). ``floor`` is each customer's
    earliest possible event time.

    Returns
    -------
    orders, items
        Orders sorted by ``ordered_at`` (row ``i`` becomes ``O{i+1:08d}``) and their lines.
    """
    n_sessions = len(sessions["customer"])
    n_induced = len(induced["customer"])
    induced_category = rng.choice(len(CATEGORY_WEIGHTS), size=n_induced,
                                  p=CATEGORY_WEIGHTS).astype(np.int8)
    _append_sessions(sessions, {
        "customer": induced["customer"], "anchor": induced["ordered_at"],
        "kind": np.full(n_induced, FINAL_BUY, dtype=np.int8), "category": induced_category,
        "floor": floor[induced["customer"]]})
    n_background = len(purchases["customer"])
    n_guests = round(GUEST_SHARE / (1 - GUEST_SHARE) * (n_background + n_induced))
    parts = [
        {"customer": purchases["customer"], "ordered_at": purchases["ordered_at"],
         "category": purchases["category"],
         "campaign": np.full(n_background, -1, dtype=np.int16),
         "session": purchases["session"].astype(np.int64),
         "send_row": np.full(n_background, -1, dtype=np.int64)},
        {"customer": induced["customer"], "ordered_at": induced["ordered_at"],
         "category": induced_category, "campaign": induced["campaign"],
         "session": n_sessions + np.arange(n_induced, dtype=np.int64),
         "send_row": induced["send_row"].astype(np.int64)},
        _guest_orders(rng, n_guests, clock),
    ]
    merged = stack(parts)
    by_time = np.argsort(merged["ordered_at"], kind="stable")
    orders = {name: values[by_time] for name, values in merged.items()}

    n = len(by_time)
    items = fill_baskets(rng, orders["category"], catalogue)
    subtotal, discount = apply_discounts(items, _discount_rates(rng, orders, campaigns))
    status = rng.choice(len(STATUSES), size=n, p=STATUS_SHARES).astype(np.int8)
    orders.update(subtotal=subtotal, discount=discount, total=subtotal - discount,
                  status=status, updated_at=_updated_at(rng, orders["ordered_at"], status))

    link = np.full(len(sessions["customer"]), -1, dtype=np.int64)
    buying = orders["session"] >= 0
    link[orders["session"][buying]] = np.flatnonzero(buying)
    sessions["order"] = link
    return orders, items


def _append_sessions(sessions: Columns, extra: Columns) -> None:
    for name in sessions:
        sessions[name] = np.concatenate([sessions[name], extra[name].astype(sessions[name].dtype)])
