"""Labels: what each customer did in the ``horizon_days`` after a cutoff.

For a cutoff ``T`` (see :mod:`models.population`) and horizon ``H`` the label window is
``(T, T + H days]``; with a date cutoff that is exactly the calendar days ``D + 1 ..
D + H``. Labels read only orders placed in that window and judge them by their final
status (``studio.schema.VALID_ORDER_SQL``): the targets are completed purchases.

* ``purchased``: at least one valid order in the window (purchase likelihood);
* ``churned``: no valid order in the window (churn risk; meaningful for buyers);
* ``orders`` and ``spend``: their number and total (expected spend).

A window that runs past the data would call every late buyer a churner, so
:func:`build_labels` refuses it. The data are taken to be complete through the last
day that has a valid order: the UCI file stops at 12:50 on 2011-12-09, and the published
protocol's cutoffs (2011-09-10 for 90 days, 2011-11-09 for 30) are exactly that day
minus the horizon.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import polars as pl

from models.population import AT, as_cutoff, check_horizon, population_sql
from studio.errors import UserError
from studio.schema import VALID_ORDER_SQL

_QUERY = """
WITH population AS ({population}),
window_orders AS (
    SELECT customer_id, count(*) AS orders, sum(CAST(total AS DECIMAL(18, 2))) AS spend
    FROM orders
    WHERE {valid} AND ordered_at > {at}
        AND ordered_at <= {at} + to_days(CAST($2 AS INTEGER))
    GROUP BY customer_id
)
SELECT p.customer_id,
    w.customer_id IS NOT NULL AS purchased,
    w.customer_id IS NULL AS churned,
    CAST(coalesce(w.orders, 0) AS INTEGER) AS orders,
    CAST(coalesce(w.spend, 0) AS DOUBLE) AS spend
FROM population AS p
LEFT JOIN window_orders AS w ON w.customer_id = p.customer_id
ORDER BY p.customer_id
"""


def label_query(cutoff: date | datetime | str, horizon_days: int, *,
                population: str = "buyers") -> tuple[str, list]:
    """The SQL and bound parameters (cutoff, horizon) of :func:`build_labels`."""
    sql = _QUERY.format(population=population_sql(population), valid=VALID_ORDER_SQL, at=AT)
    return sql, [as_cutoff(cutoff), check_horizon(horizon_days)]


def build_labels(con: duckdb.DuckDBPyConnection, cutoff: date | datetime | str,
                 horizon_days: int, *, population: str = "buyers") -> pl.DataFrame:
    """``customer_id, purchased, churned, orders, spend`` for ``population`` at ``cutoff``.

    The population is the one :func:`models.features.build_features` returns for the same
    cutoff, in the same order (by ``customer_id``).

    Raises
    ------
    UserError
        When the label window runs past the data (see :func:`check_label_window`).
    """
    check_label_window(con, cutoff, horizon_days)
    sql, params = label_query(cutoff, horizon_days, population=population)
    return con.sql(sql, params=params).pl()


def last_complete_day(con: duckdb.DuckDBPyConnection) -> date:
    """The day of the data's last valid order: the data are complete through it.

    Raises
    ------
    UserError
        When the warehouse holds no valid order.
    """
    last = con.execute(f"SELECT max(ordered_at) FROM orders WHERE {VALID_ORDER_SQL}"
                       ).fetchall()[0][0]
    if last is None:
        raise UserError("The warehouse holds no valid (completed, sale) orders; load orders "
                        "before building labels.")
    return last.date()


def latest_labelable_cutoff(con: duckdb.DuckDBPyConnection, horizon_days: int) -> date:
    """The last cutoff day whose ``horizon_days`` window the data cover completely.

    It is the day of the last valid order minus the horizon; any cutoff up to the end
    of that day has complete labels.
    """
    return last_complete_day(con) - timedelta(days=check_horizon(horizon_days))


def check_label_window(con: duckdb.DuckDBPyConnection, cutoff: date | datetime | str,
                       horizon_days: int) -> None:
    """Refuse a cutoff whose label window ends after the data do.

    Raises
    ------
    UserError
        Naming the latest cutoff that has complete labels for this horizon.
    """
    latest = latest_labelable_cutoff(con, horizon_days)
    if as_cutoff(cutoff) > as_cutoff(latest):
        raise UserError(
            f"The {horizon_days}-day label window after {as_cutoff(cutoff):%Y-%m-%d %H:%M} "
            f"runs past the data (last valid order on {last_complete_day(con)}); choose a "
            f"cutoff on or before {latest}.")
