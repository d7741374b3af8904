"""Cutoffs and populations: who is scored at a cutoff, and what "known by then" means.

A **cutoff** is one instant ``T``: a row is known at the cutoff when its timestamp is
``<= T``. A plain date ``D`` means the *end* of that day (``T = D 23:59:59.999999``), so
everything that happened on ``D`` is known and a label window of ``H`` days covers
exactly the days ``D + 1 .. D + H``. That is the convention of the published UCI Online
Retail protocol ("features as of 2011-09-10"), whose 4,086 eligible customers at
2011-11-09 include that Wednesday's buyers.

Order status changes after the cutoff are not known at the cutoff: an order placed by
``T`` whose record was last updated after ``T`` (``updated_at > T``) is taken as it
stood when placed, a sale in progress, whatever its final status says. That is the one
place where "valid order as known at the cutoff" (:data:`VALID_AS_OF_SQL`) differs from
the studio's final definition, ``studio.schema.VALID_ORDER_SQL``. Orders without
``updated_at`` (the UCI file has none) keep their recorded status.

Populations:

* ``buyers``: customers with at least one valid order known at the cutoff (the published
  UCI protocol, and the only customers churn is defined for);
* ``known``: every customer known by the cutoff: signed up by then, or with any order or
  storefront event by then, so that non-buyers can be scored from their browsing.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from numbers import Integral

from studio.errors import UserError

POPULATIONS = ("buyers", "known")

AT = "CAST($1 AS TIMESTAMP)"
"""The cutoff instant inside a query: every query here binds the cutoff as ``$1``."""

KNOWN_ORDER_SQL = (f"customer_id IS NOT NULL AND NOT coalesce(is_guest, false) "
                   f"AND ordered_at <= {AT}")
"""A customer's own order (not a guest checkout) placed at or before the cutoff."""

STATUS_KNOWN_SQL = f"(updated_at IS NULL OR updated_at <= {AT})"
"""The order's recorded status was already its status at the cutoff."""

VALID_AS_OF_SQL = (f"(kind = 'sale' AND (status = 'completed' OR NOT {STATUS_KNOWN_SQL}))")
"""A sale that counted as a purchase at the cutoff (used together with KNOWN_ORDER_SQL)."""

REFUND_AS_OF_SQL = (f"(kind = 'return' OR (kind = 'sale' AND status = 'refunded' "
                    f"AND {STATUS_KNOWN_SQL}))")
"""A refund known at the cutoff: a return document, or a sale already marked refunded."""


def as_cutoff(value: date | datetime | str) -> datetime:
    """The cutoff instant for a date (its last microsecond), a datetime or ISO text.

    Raises
    ------
    UserError
        When ``value`` is neither a date, a datetime nor ISO date or time text.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise UserError(f"The cutoff {value!r} is not a date; write it as YYYY-MM-DD "
                            "or YYYY-MM-DD HH:MM:SS.") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise UserError(f"The cutoff {value} carries a time zone, but the warehouse "
                            "stores times without one; pass it without the time zone.")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time.max)
    raise UserError(f"The cutoff {value!r} is not a date; pass a date such as 2024-06-30.")


def cutoff_day(cutoff: date | datetime | str) -> date:
    """The calendar day the cutoff falls on: day counts are measured from it."""
    return as_cutoff(cutoff).date()


def check_population(population: str) -> str:
    """Refuse an unknown population name in one sentence."""
    if population not in POPULATIONS:
        raise UserError(f"Unknown population {population!r}; use one of "
                        f"{', '.join(POPULATIONS)}.")
    return population


def population_sql(population: str) -> str:
    """``SELECT customer_id`` of the population at the cutoff bound as ``$1``.

    The features query derives the same sets from its own aggregates; a test keeps the
    two in step.
    """
    check_population(population)
    buyers = (f"SELECT DISTINCT customer_id FROM orders "
              f"WHERE {KNOWN_ORDER_SQL} AND {VALID_AS_OF_SQL}")
    if population == "buyers":
        return buyers
    return (f"SELECT customer_id FROM customers WHERE signed_up_at <= {AT} "
            f"UNION SELECT customer_id FROM orders WHERE {KNOWN_ORDER_SQL} "
            f"UNION SELECT customer_id FROM events WHERE occurred_at <= {AT}")


def horizon_end(cutoff: date | datetime | str, horizon_days: int) -> datetime:
    """The end of the label window ``(cutoff, cutoff + horizon_days]``."""
    return as_cutoff(cutoff) + timedelta(days=check_horizon(horizon_days))


def check_horizon(horizon_days: int) -> int:
    """Refuse a horizon that is not a positive whole number of days."""
    if (isinstance(horizon_days, bool) or not isinstance(horizon_days, Integral)
            or horizon_days < 1):
        raise UserError(f"The horizon must be a whole number of days of 1 or more, not "
                        f"{horizon_days!r}; 30 and 90 are the usual choices.")
    return int(horizon_days)
