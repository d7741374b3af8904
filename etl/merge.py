"""Merging checked rows into a canonical table, and counting what happened to each.

Within one run, rows sharing a natural key are collapsed to one: the newest by the
table's version column (or the first seen, for tables without one); the others count
as duplicates. Against the warehouse, a row whose key is new is inserted, a row with a
strictly newer version replaces the stored one (updated), and anything else is left as
stored (unchanged). Derived records never replace stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from etl.checks import quote_identifier
from studio.schema import Table


@dataclass(frozen=True)
class MergeCounts:
    """What became of the rows of one table in one run."""

    rows_in: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    quarantined: int

    def balanced(self) -> bool:
        """The ledger identity: every row is accounted for exactly once."""
        return self.rows_in == (self.inserted + self.updated + self.unchanged
                                + self.duplicates + self.quarantined)


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return int(con.execute(query).fetchall()[0][0])


def merge_typed_table(con: duckdb.DuckDBPyConnection, table: Table, typed: str, run_id: int,
                      *, derived: bool = False) -> MergeCounts:
    """Merge the good rows of temp table ``typed`` into ``table``; return the ledger counts."""
    target = quote_identifier(table.name)
    key = ", ".join(quote_identifier(k) for k in table.key)
    columns = [c for c in table.column_names if c != "_run_id"]
    column_sql = ", ".join(quote_identifier(c) for c in columns)
    version = quote_identifier(table.version_column) if table.version_column else None
    if version:
        order = f"{version} DESC NULLS LAST, _source_file DESC, _source_line DESC"
    else:
        order = "_source_file, _source_line"

    rows_in, quarantined = con.execute(
        f"SELECT count(*), count(_reason) FROM {typed}").fetchall()[0]
    target_empty = _count(con, f"SELECT count(*) FROM (SELECT 1 FROM {target} LIMIT 1)") == 0
    con.execute("DROP TABLE IF EXISTS _incoming")
    if target_empty:
        inserted = con.execute(
            f"""INSERT INTO {target} ({column_sql}, _run_id)
            SELECT {column_sql}, {int(run_id)} FROM {typed} WHERE _reason IS NULL
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1""").fetchall()[0][0]
        return MergeCounts(rows_in, inserted, 0, 0, rows_in - quarantined - inserted,
                           quarantined)

    con.execute(
        f"""CREATE TEMP TABLE _incoming AS
        SELECT {column_sql} FROM {typed} WHERE _reason IS NULL
        QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1""")
    distinct_valid = _count(con, "SELECT count(*) FROM _incoming")
    join = " AND ".join(f"i.{quote_identifier(k)} = t.{quote_identifier(k)}" for k in table.key)
    if version and not derived:
        newer = f"i.{version} > t.{version} OR (t.{version} IS NULL AND i.{version} IS NOT NULL)"
    else:
        newer = "false"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _incoming AS
        SELECT i.*, CASE WHEN t.{quote_identifier(table.key[0])} IS NULL THEN 'insert'
                         WHEN {newer} THEN 'update' ELSE 'unchanged' END AS _action
        FROM _incoming i LEFT JOIN (SELECT {key}{', ' + version if version else ''}
                                    FROM {target}) t ON {join}""")
    inserted, updated = con.execute(
        "SELECT count(*) FILTER (_action = 'insert'), count(*) FILTER (_action = 'update') "
        "FROM _incoming").fetchall()[0]
    if updated:
        con.execute(
            f"""DELETE FROM {target} t USING _incoming i
            WHERE {join} AND i._action = 'update'""")
    con.execute(
        f"""INSERT INTO {target} ({column_sql}, _run_id)
        SELECT {column_sql}, {int(run_id)} FROM _incoming WHERE _action <> 'unchanged'""")
    con.execute("DROP TABLE _incoming")
    unchanged = distinct_valid - inserted - updated
    duplicates = rows_in - quarantined - distinct_valid
    return MergeCounts(rows_in, inserted, updated, unchanged, duplicates, quarantined)
