"""The ``online-retail`` mapping: the UCI Online Retail invoice-line file.

One row per invoice line (``InvoiceNo,StockCode,Description,Quantity,InvoiceDate,
UnitPrice,CustomerID,Country``) feeds four tables:

* ``order_items``: every line. Exact repeats of a line (all eight fields equal) are
  counted as duplicates: a line's number is the file line of its first occurrence.
* ``orders``: one per invoice. Invoices starting with ``C`` are cancellations, booked as
  returns (refunds) with negative totals; ``A`` invoices are bad-debt adjustments.
  Lines without a CustomerID are guest checkouts: kept for revenue, left out of
  customer-level analytics.
* ``customers``: one per CustomerID, normalised from float text (``17850.0`` -> ``17850``),
  with the country of their latest invoice and their first invoice as sign-up.
* ``products``: one per StockCode, with its latest description and price.

Customers and products are derived, so they never overwrite richer records loaded
from elsewhere. The data are from the UCI Machine Learning Repository (Chen, Sain &
Guo 2012).
"""

from __future__ import annotations

import duckdb

from etl.mappings import require_columns
from etl.sources import SourceFile, scan_sql, source_columns
from etl.staging import StagedEntity
from studio.errors import UserError
from studio.schema import CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"]

_LINES = """
    SELECT *,
        nullif(regexp_replace(trim(CustomerID), '\\.0+$', ''), '') AS _customer_id,
        TRY_CAST(InvoiceDate AS TIMESTAMP) AS _invoiced_at,
        TRY_CAST(Quantity AS INTEGER) * TRY_CAST(UnitPrice AS DOUBLE) AS _amount
    FROM ({scan})
"""

_ORDER_ITEMS = """
    SELECT InvoiceNo AS order_id,
        min(_source_line) OVER (PARTITION BY InvoiceNo, StockCode, Description, Quantity,
                                InvoiceDate, UnitPrice, CustomerID, Country) AS line_number,
        StockCode AS product_id, Quantity AS quantity, UnitPrice AS unit_price,
        0.0 AS discount, _source_file, _source_line
    FROM _online_retail_lines
"""

_ORDERS = """
    SELECT InvoiceNo AS order_id,
        any_value(_customer_id) AS customer_id,
        bool_and(_customer_id IS NULL) AS is_guest,
        CAST(min(_invoiced_at) AS VARCHAR) AS ordered_at,
        CASE WHEN InvoiceNo LIKE 'C%' THEN 'return'
             WHEN InvoiceNo LIKE 'A%' THEN 'adjustment' ELSE 'sale' END AS kind,
        'completed' AS status, 'GBP' AS currency,
        round(sum(_amount), 2) AS subtotal, 0.0 AS discount, round(sum(_amount), 2) AS total,
        any_value(_source_file) AS _source_file, min(_source_line) AS _source_line
    FROM _online_retail_lines
    GROUP BY InvoiceNo
"""

_CUSTOMERS = """
    SELECT _customer_id AS customer_id,
        arg_max(Country, _invoiced_at) AS country,
        CAST(min(_invoiced_at) AS VARCHAR) AS signed_up_at,
        any_value(_source_file) AS _source_file, min(_source_line) AS _source_line
    FROM _online_retail_lines
    WHERE _customer_id IS NOT NULL
    GROUP BY _customer_id
"""

_PRODUCTS = """
    SELECT StockCode AS product_id,
        arg_max(Description, _invoiced_at) AS name,
        CASE WHEN regexp_matches(StockCode, '^[0-9]') THEN 'merchandise'
             ELSE 'service' END AS category,
        arg_max(TRY_CAST(UnitPrice AS DOUBLE), _invoiced_at)
            FILTER (TRY_CAST(UnitPrice AS DOUBLE) >= 0) AS price,
        any_value(_source_file) AS _source_file, min(_source_line) AS _source_line
    FROM _online_retail_lines
    WHERE StockCode IS NOT NULL
    GROUP BY StockCode
"""


class OnlineRetailMapping:
    """Stage the UCI Online Retail file as products, customers, orders and order lines."""

    name = "online-retail"

    def stage(self, con: duckdb.DuckDBPyConnection,
              sources: list[SourceFile]) -> list[StagedEntity]:
        """Read the invoice lines once into a temp table and derive the four tables."""
        if len(sources) != 1:
            raise UserError("The online-retail mapping reads exactly one file "
                            "(online_retail_uci.csv.gz); load one file at a time.")
        source = sources[0]
        require_columns(source, source_columns(con, source), COLUMNS, self.name,
                        "its header must be " + ",".join(COLUMNS) + ".")
        scan, params = scan_sql(source)
        con.execute("DROP TABLE IF EXISTS _online_retail_lines")
        con.sql("CREATE TEMP TABLE _online_retail_lines AS " + _LINES.format(scan=scan),
                params=params)
        files = (source,)
        return [
            StagedEntity(PRODUCTS, _PRODUCTS, source_files=files, derived=True),
            StagedEntity(CUSTOMERS, _CUSTOMERS, source_files=files, derived=True),
            StagedEntity(ORDERS, _ORDERS, source_files=files, derived=True),
            StagedEntity(ORDER_ITEMS, _ORDER_ITEMS, source_files=files),
        ]
