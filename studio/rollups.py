"""Per-customer rollups the ETL keeps beside the raw tables, so common counts skip a scan.

Most segments ask about a customer's whole purchase history ("two or more orders, the
last one over 180 days ago") or current consent, as of the latest data. Grouping every
order (or ranking every consent change) for each count is what made such rules slow;
the load therefore publishes, with every warehouse it writes:

``customer_order_summary``
    one row per buyer: valid purchases (``VALID_ORDER_SQL``), their total, the first and
    last purchase time;
``consent_current``
    one row per customer and channel: the latest consent status (ties broken by the
    later ``consent_event_id``, as the segment rules do) and whether it was ever
    "subscribed";
``rollup_state``
    the latest ``ordered_at`` and consent ``occurred_at`` the rollups cover.

A rollup answers a question as of ``as_of`` only when nothing in its table happened after
``as_of``; otherwise the compiler reads the raw rows (see :class:`RollupCoverage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

ROLLUP_TABLES = ("customer_order_summary", "consent_current", "rollup_state")
ROLLUP_VERSION = 2
"""Bumped whenever a rollup's definition changes: rollups of another version are ignored by
the compiler and rebuilt by the next load (version 2: revenue in exact cents)."""

BUILD_SQL = (
    """CREATE OR REPLACE TABLE customer_order_summary AS
    SELECT customer_id, count(*) AS purchases,
           sum(CAST(total AS DECIMAL(18, 2))) AS revenue,
           min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at
    FROM orders
    WHERE kind = 'sale' AND status = 'completed' AND NOT coalesce(is_guest, false)
      AND customer_id IS NOT NULL
    GROUP BY customer_id""",
    """CREATE OR REPLACE TABLE consent_current AS
    SELECT customer_id, channel,
           arg_max(status, (occurred_at, consent_event_id)) AS status,
           bool_or(status = 'subscribed') AS ever_subscribed
    FROM consent_events
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id, channel""",
    f"""CREATE OR REPLACE TABLE rollup_state AS
    SELECT (SELECT max(ordered_at) FROM orders) AS orders_through,
           (SELECT max(occurred_at) FROM consent_events) AS consent_through,
           now()::TIMESTAMP AS built_at, {ROLLUP_VERSION} AS version""",
)


def build_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build every rollup from the raw tables on a writer connection."""
    for statement in BUILD_SQL:
        con.execute(statement)


def has_rollups(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse holds every rollup table, built by this version's definitions."""
    return _rollup_state(con) is not None


def _rollup_state(con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime] | None:
    """``orders_through, consent_through`` when every rollup of this version is there.

    Every page and segment count asks, so the checks are two small queries, each catalog
    lookup by a single name (a lookup of several names at once costs more).
    """
    has_version = con.execute(
        "SELECT count(*) FROM duckdb_columns() "
        "WHERE table_name = 'rollup_state' AND column_name = 'version'").fetchall()[0][0]
    if not has_version:
        return None
    others = ", ".join(f"(SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}')"
                       for name in ROLLUP_TABLES if name != "rollup_state")
    rows = con.execute(f"SELECT orders_through, consent_through, version, {others} "
                       "FROM rollup_state").fetchall()
    if len(rows) != 1:
        return None
    orders_through, consent_through, version, *tables = rows[0]
    if version != ROLLUP_VERSION or not all(tables):
        return None
    return orders_through, consent_through


@dataclass(frozen=True)
class RollupCoverage:
    """Up to when the rollups hold every row; ``None`` means the table was empty."""

    orders_through: datetime | None
    consent_through: datetime | None

    def orders_complete_at(self, as_of: datetime) -> bool:
        """Whether the order summary equals the orders as of ``as_of``."""
        return self.orders_through is None or self.orders_through <= as_of

    def consent_complete_at(self, as_of: datetime) -> bool:
        """Whether the current consent equals the consent history as of ``as_of``."""
        return self.consent_through is None or self.consent_through <= as_of


def rollup_coverage(con: duckdb.DuckDBPyConnection) -> RollupCoverage | None:
    """What the warehouse's rollups cover, or ``None`` when it has none."""
    state = _rollup_state(con)
    return None if state is None else RollupCoverage(*state)
