"""The ``orders-csv`` mapping: the simplest export any store can make.

A CSV with the header ``customer_id,ordered_at,total`` and, optionally, ``order_id``,
``currency`` and ``status``. Each row is a sale (a negative total is booked as a
return); an order without an ``order_id`` gets a stable one derived from its customer,
time and total, so loading the same rows again finds them unchanged. Customers seen in
the file are added when they are new, never overwritten.
"""

from __future__ import annotations

import duckdb

from etl.mappings import require_columns, union_sql
from etl.sources import SourceFile, scan_sql, source_columns
from etl.staging import StagedEntity
from studio.schema import CUSTOMERS, ORDERS

REQUIRED = ["customer_id", "ordered_at", "total"]
OPTIONAL = ["order_id", "currency", "status"]
HINT = "its header must be customer_id,ordered_at,total (optionally order_id,currency,status)."


def _order_rows(source: SourceFile, available: dict[str, str]) -> tuple[str, list]:
    scan, params = scan_sql(source)
    order_id = ("coalesce(nullif(trim(order_id), ''), " if "order_id" in available else "(")
    order_id += ("'h' || left(md5(concat_ws('|', customer_id, ordered_at, total)), 16))")
    currency = "currency" if "currency" in available else "CAST(NULL AS VARCHAR)"
    status = ("coalesce(lower(nullif(trim(status), '')), 'completed')"
              if "status" in available else "'completed'")
    sql = f"""
        SELECT {order_id} AS order_id, customer_id, false AS is_guest, ordered_at,
            CASE WHEN TRY_CAST(total AS DOUBLE) < 0 THEN 'return' ELSE 'sale' END AS kind,
            {status} AS status, {currency} AS currency,
            total AS subtotal, 0.0 AS discount, total, _source_file, _source_line
        FROM ({scan})"""
    return sql, params


class OrdersCsvMapping:
    """Stage a plain orders CSV as orders, plus the customers it mentions."""

    name = "orders-csv"

    def stage(self, con: duckdb.DuckDBPyConnection,
              sources: list[SourceFile]) -> list[StagedEntity]:
        """Check each file's header, then stack the files' orders and derive customers."""
        scans = []
        for source in sources:
            available = source_columns(con, source)
            require_columns(source, available, REQUIRED, self.name, HINT)
            scans.append(_order_rows(source, available))
        orders_sql, params = union_sql(scans)
        customers_sql = f"""
            SELECT nullif(trim(customer_id), '') AS customer_id,
                CAST(min(TRY_CAST(ordered_at AS TIMESTAMP)) AS VARCHAR) AS signed_up_at,
                any_value(_source_file) AS _source_file, min(_source_line) AS _source_line
            FROM ({orders_sql})
            WHERE nullif(trim(customer_id), '') IS NOT NULL
            GROUP BY 1"""
        files = tuple(sources)
        return [
            StagedEntity(CUSTOMERS, customers_sql, params=list(params), source_files=files,
                         derived=True),
            StagedEntity(ORDERS, orders_sql, params=list(params), source_files=files),
        ]
