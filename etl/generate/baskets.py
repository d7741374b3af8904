"""What each order holds: its lines, their prices and how a discount spreads over them.

Money is integer cents throughout, so an order's subtotal is exactly the sum of
``quantity * unit_price`` over its lines and its discount exactly the sum of the line
discounts; conversion to euros happens only when files are written.
"""

from __future__ import annotations

import numpy as np

from etl.generate.catalogue import Catalogue
from etl.generate.columns import Columns

EXTRA_LINES_MEAN = 1.5  # lines per order: 1 + Poisson(1.5), 2.5 on average
EXTRA_UNITS_MEAN = 0.25  # units per line: 1 + Poisson(0.25)
CATEGORY_LOYALTY = 0.6  # chance a line comes from the order's category


def expected_subtotal_cents(catalogue: Catalogue) -> float:
    """Mean subtotal of an order whose category follows the global mix."""
    return (1 + EXTRA_LINES_MEAN) * (1 + EXTRA_UNITS_MEAN) * catalogue.expected_price_cents()


def fill_baskets(rng: np.random.Generator, category: np.ndarray,
                 catalogue: Catalogue) -> Columns:
    """Lines for orders ``0 .. len(category) - 1``, grouped by order in that order.

    Returns
    -------
    Columns
        order (row of the order), line_number (from 1), product, quantity and
        unit_price (cents, the list price).
    """
    lines = 1 + rng.poisson(EXTRA_LINES_MEAN, size=len(category))
    order = np.repeat(np.arange(len(category), dtype=np.int64), lines)
    first = np.cumsum(lines) - lines
    line_number = (np.arange(len(order)) - np.repeat(first, lines) + 1).astype(np.int32)
    product = catalogue.draw(rng, category[order], CATEGORY_LOYALTY)
    return {
        "order": order,
        "line_number": line_number,
        "product": product,
        "quantity": (1 + rng.poisson(EXTRA_UNITS_MEAN, size=len(order))).astype(np.int32),
        "unit_price": catalogue.price_cents[product],
    }


def apply_discounts(items: Columns, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread each order's discount (``rate`` of its subtotal) over its lines.

    Sets ``items["discount"]`` (cents per line: proportional to the line's value, the
    rounding remainder on the first line).

    Returns
    -------
    subtotal, discount
        Cents per order.
    """
    n_orders = len(rate)
    value = items["quantity"].astype(np.int64) * items["unit_price"]
    subtotal = np.bincount(items["order"], weights=value, minlength=n_orders)
    subtotal = np.rint(subtotal).astype(np.int64)
    discount = np.floor(subtotal * rate + 0.5).astype(np.int64)
    order = items["order"]
    line_discount = value * discount[order] // np.maximum(subtotal[order], 1)
    allocated = np.rint(np.bincount(order, weights=line_discount, minlength=n_orders))
    first_line = items["line_number"] == 1
    line_discount[first_line] += discount[order[first_line]] - allocated.astype(np.int64)[
        order[first_line]]
    items["discount"] = line_discount
    return subtotal, discount
