"""Independent answers to "who should an export reach", written as plain SQL."""

from __future__ import annotations

from studio.warehouse import connect_reader

CONSENTED_SQL = """
WITH latest AS (
    SELECT customer_id, status,
           row_number() OVER (PARTITION BY customer_id
                              ORDER BY occurred_at DESC, consent_event_id DESC) AS rank
    FROM consent_events WHERE channel = ?
)
SELECT c.customer_id FROM customers c JOIN latest l USING (customer_id)
WHERE l.rank = 1 AND l.status = 'subscribed'
  AND coalesce(CASE ? WHEN 'email' THEN c.email ELSE c.phone END, '') <> ''
"""


def consented_ids(settings, channel: str = "email") -> set[str]:
    """Everyone whose latest consent event on ``channel`` is a subscription, with an address."""
    with connect_reader(settings) as con:
        return {row[0] for row in con.execute(CONSENTED_SQL, [channel, channel]).fetchall()}


def ids_in_countries(settings, countries: list[str]) -> set[str]:
    """Customers whose country is one of ``countries``."""
    with connect_reader(settings) as con:
        return {row[0] for row in con.execute(
            "SELECT customer_id FROM customers WHERE country IN (SELECT unnest(?))",
            [countries]).fetchall()}
