"""Storefront events: each session becomes a short funnel of page and product events.

A session is page views, then product views, then possibly an add-to-cart (of the last
product viewed) and a checkout start; a buying session always ends with add-to-cart,
checkout start and the ``order`` event, at the order's own timestamp, and its last
product view and cart are the order's first line. Events of a session are seconds to
a few minutes apart and end at the session's anchor time.
"""

from __future__ import annotations

import numpy as np

from etl.generate.catalogue import Catalogue
from etl.generate.columns import Columns
from etl.generate.shopping import BEFORE_BROWSE, BEFORE_BUY, FINAL_BROWSE, FINAL_BUY

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "order")
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT_START, ORDER = range(5)
VIEW_CATEGORY_LOYALTY = 0.8  # chance a viewed product is from the session's category

# kind: (mean extra page views, minimum product views, mean extra product views,
#        chance of a cart given a product view, chance of a checkout given a cart)
SESSION_SHAPES = {
    FINAL_BUY: (0.05, 1, 0.15, 1.0, 1.0),
    FINAL_BROWSE: (0.1, 0, 0.9, 0.2, 0.3),
    BEFORE_BUY: (0.05, 0, 0.9, 0.65, 0.1),
    BEFORE_BROWSE: (0.05, 0, 0.7, 0.1, 0.05),
}


def _shape(kind: np.ndarray, column: int) -> np.ndarray:
    table = np.zeros(max(SESSION_SHAPES) + 1)
    for k, shape in SESSION_SHAPES.items():
        table[k] = shape[column]
    return table[kind]


def _funnel_counts(rng: np.random.Generator, sessions: Columns) -> np.ndarray:
    """Events per session and type: an int32 array of shape (sessions, 5)."""
    kind = sessions["kind"]
    n = len(kind)
    page_views = 1 + rng.poisson(_shape(kind, 0))
    product_views = _shape(kind, 1).astype(np.int64) + rng.poisson(_shape(kind, 2))
    cart = (product_views > 0) & (rng.random(n) < _shape(kind, 3))
    checkout = cart & (rng.random(n) < _shape(kind, 4))
    buys = sessions["order"] >= 0
    return np.column_stack([page_views, product_views, cart, checkout, buys]).astype(np.int32)


def _event_times(rng: np.random.Generator, sessions: Columns, session: np.ndarray,
                 steps_to_end: np.ndarray) -> np.ndarray:
    """Times that rise through a session and end at its anchor.

    An event ``k`` steps before the last one happens ``90k`` to ``90k + 89`` seconds
    before the anchor, so consecutive events are 1 to 179 seconds apart.
    """
    before_end = steps_to_end * 90 + rng.integers(0, 90, size=len(session), dtype=np.int32)
    before_end[steps_to_end == 0] = 0
    return np.maximum(sessions["anchor"][session] - before_end, sessions["floor"][session])


def build_events(rng: np.random.Generator, sessions: Columns, first_product: np.ndarray,
                 catalogue: Catalogue) -> Columns:
    """All events, sorted by time.

    ``first_product`` is the product of each order's first line. Arrays are kept to 32
    bits where they can be: at a million customers there are over 20 million events.

    Returns
    -------
    Columns
        customer, session (1-based number in anchor order), event_type, occurred_at,
        product (-1 for none) and order (row, -1 for none).
    """
    counts = _funnel_counts(rng, sessions)
    per_session = counts.sum(axis=1, dtype=np.int32)
    session = np.repeat(np.arange(len(per_session), dtype=np.int32), per_session)
    first = (np.cumsum(per_session, dtype=np.int64) - per_session).astype(np.int64)
    position = (np.arange(len(session), dtype=np.int64) - first[session]).astype(np.int32)
    del first
    bounds = np.cumsum(counts, axis=1, dtype=np.int32)
    event_type = np.zeros(len(session), dtype=np.int8)
    for column in range(bounds.shape[1] - 1):
        event_type += position >= bounds[session, column]
    occurred_at = _event_times(rng, sessions, session, per_session[session] - 1 - position)
    del position, bounds

    product = np.full(len(session), -1, dtype=np.int16)
    viewed = np.flatnonzero(event_type == PRODUCT_VIEW)
    product[viewed] = catalogue.draw(rng, sessions["category"][session[viewed]],
                                     VIEW_CATEGORY_LOYALTY)
    del viewed
    session_order = sessions["order"].astype(np.int32)
    carts = np.flatnonzero(event_type == ADD_TO_CART)
    buying_carts = carts[session_order[session[carts]] >= 0]
    product[buying_carts - 1] = first_product[session_order[session[buying_carts]]]
    product[carts] = product[carts - 1]
    del carts, buying_carts

    number = np.empty(len(per_session), dtype=np.int32)
    number[np.argsort(sessions["anchor"], kind="stable")] = np.arange(
        1, len(per_session) + 1, dtype=np.int32)
    by_time = np.argsort(occurred_at, kind="stable")
    session = session[by_time]
    event_type = event_type[by_time]
    return {
        "customer": sessions["customer"][session],
        "session": number[session],
        "event_type": event_type,
        "occurred_at": occurred_at[by_time],
        "product": product[by_time],
        "order": np.where(event_type == ORDER, session_order[session], -1),
    }
