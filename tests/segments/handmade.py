"""A tiny hand-made warehouse whose every member is known, for the segment tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from studio import schema

AS_OF = datetime(2024, 6, 30, 12, 0, 0)

CUSTOMERS = [
    # id, email, phone, country, channel, signed_up_at, attributes
    ("c1", "ann@shop.de", "+4911", "DE", "organic", "2024-01-05 10:00:00",
     '{"tier": "gold", "points": 120}'),
    ("c2", "bob@mail.com", None, "FR", "social", "2024-03-01 09:00:00", '{"tier": "silver"}'),
    ("c3", "cat@shop.de", "+4913", "DE", "email", "2024-06-20 08:00:00", None),
    ("c4", None, "+4914", None, "organic", None, '{"points": 5}'),
]

ORDERS = [
    # id, customer, kind, status, total, ordered_at
    ("o1", "c1", "sale", "completed", 120.0, "2024-02-01 10:00:00"),
    ("o2", "c1", "sale", "completed", 80.0, "2024-06-25 10:00:00"),
    ("o3", "c2", "sale", "completed", 40.0, "2024-04-01 10:00:00"),
    ("o4", "c2", "sale", "cancelled", 999.0, "2024-06-29 10:00:00"),
    ("o5", "c3", "sale", "completed", 10.0, "2024-07-05 10:00:00"),  # after as_of
]

CONSENT = [
    # id, customer, channel, status, occurred_at
    ("k1", "c1", "email", "subscribed", "2024-01-05 10:00:00"),
    ("k2", "c1", "sms", "subscribed", "2024-01-05 10:00:00"),
    ("k3", "c2", "email", "subscribed", "2024-03-01 09:00:00"),
    ("k4", "c2", "email", "unsubscribed", "2024-05-01 09:00:00"),
    ("k5", "c3", "email", "subscribed", "2024-06-20 08:00:00"),
    ("k6", "c4", "sms", "subscribed", "2024-06-01 08:00:00"),
    ("k7", "c3", "sms", "subscribed", "2024-07-01 08:00:00"),  # after as_of
]


def build_store(path: Path) -> Path:
    """Write the hand-made store to a DuckDB file and return its path."""
    with duckdb.connect(str(path)) as con:
        schema.create_all(con)
        con.executemany("INSERT INTO customers (customer_id, email, phone, country, "
                        "acquisition_channel, signed_up_at, attributes) VALUES (?, ?, ?, ?, ?, "
                        "?, ?)", CUSTOMERS)
        con.executemany("INSERT INTO orders (order_id, customer_id, is_guest, kind, status, "
                        "total, ordered_at) VALUES (?, ?, false, ?, ?, ?, ?)", ORDERS)
        con.executemany("INSERT INTO consent_events (consent_event_id, customer_id, channel, "
                        "status, occurred_at) VALUES (?, ?, ?, ?, ?)", CONSENT)
    return path
