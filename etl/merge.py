"""Merging checked rows into a canonical table, and counting what happened to each.

Within one run, rows sharing a natural key are collapsed to one: the newest by the
table's version column (or the first seen, for tables without one); the others count
as duplicates. Against the warehouse, a row whose key is new is inserted, a row with a
strictly newer version replaces the stored one (updated), and anything else is left as
stored (unchanged). Derived records never replace stored ones.

Duplicates are rare, so they are found with one grouping on a 64-bit hash of the key and
only the rows whose key hash repeats are ranked (by the real key, so a hash collision
costs a little time, never a row): ranking every row would cost more than the load.
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


def _scalars(con: duckdb.DuckDBPyConnection, query: str) -> tuple:
    return tuple(con.execute(query).fetchall()[0])


def _key_hash(table: Table) -> str:
    return f"hash({', '.join(quote_identifier(k) for k in table.key)})"


def _deduplicated_rows(table: Table, typed: str) -> str:
    """SQL for the good rows of ``typed``, one per key (needs temp table ``_repeated_keys``)."""
    key_list = ", ".join(quote_identifier(k) for k in table.key)
    key_hash = _key_hash(table)
    if table.version_column:
        version = quote_identifier(table.version_column)
        order = f"{version} DESC NULLS LAST, _source_file DESC, _source_line DESC"
    else:
        order = "_source_file, _source_line"
    return f"""
        SELECT * FROM {typed}
        WHERE _reason IS NULL AND {key_hash} NOT IN (SELECT _key_hash FROM _repeated_keys)
        UNION ALL
        SELECT * FROM (
            SELECT * FROM {typed}
            WHERE _reason IS NULL AND {key_hash} IN (SELECT _key_hash FROM _repeated_keys)
            QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY {order}) = 1)"""


def merge_typed_table(con: duckdb.DuckDBPyConnection, table: Table, typed: str, run_id: int,
                      *, derived: bool = False) -> MergeCounts:
    """Merge the good rows of temp table ``typed`` into ``table``; return the ledger counts."""
    target = quote_identifier(table.name)
    key_list = ", ".join(quote_identifier(k) for k in table.key)
    columns = ", ".join(quote_identifier(c) for c in table.column_names if c != "_run_id")
    run = int(run_id)

    rows_in, quarantined = _scalars(con, f"SELECT count(*), count(_reason) FROM {typed}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _repeated_keys AS
        SELECT {_key_hash(table)} AS _key_hash FROM {typed} WHERE _reason IS NULL
        GROUP BY ALL HAVING count(*) > 1""")
    rows = _deduplicated_rows(table, typed)
    (target_has_rows,) = _scalars(con, f"SELECT count(*) FROM (SELECT 1 FROM {target} LIMIT 1)")
    if not target_has_rows:  # the first load: everything is new
        (inserted,) = _scalars(con, f"""INSERT INTO {target} ({columns}, _run_id)
            SELECT {columns}, {run} FROM ({rows})""")
        con.execute("DROP TABLE _repeated_keys")
        return MergeCounts(rows_in, inserted, 0, 0, rows_in - quarantined - inserted,
                           quarantined)

    join = " AND ".join(f"i.{quote_identifier(k)} = t.{quote_identifier(k)}" for k in table.key)
    stored_version = ""
    newer = "false"
    if table.version_column and not derived:
        version = quote_identifier(table.version_column)
        stored_version = f", {version}"
        newer = f"i.{version} > t.{version} OR (t.{version} IS NULL AND i.{version} IS NOT NULL)"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _incoming AS
        SELECT i.*, CASE WHEN t.{quote_identifier(table.key[0])} IS NULL THEN 'insert'
                         WHEN {newer} THEN 'update' ELSE 'unchanged' END AS _action
        FROM ({rows}) i
        LEFT JOIN (SELECT {key_list}{stored_version} FROM {target}) t ON {join}""")
    distinct_valid, inserted, updated = _scalars(
        con, "SELECT count(*), count(*) FILTER (_action = 'insert'), "
             "count(*) FILTER (_action = 'update') FROM _incoming")
    if updated:
        con.execute(f"""DELETE FROM {target} t USING _incoming i
            WHERE {join} AND i._action = 'update'""")
    con.execute(f"""INSERT INTO {target} ({columns}, _run_id)
        SELECT {columns}, {run} FROM _incoming WHERE _action <> 'unchanged'""")
    con.execute("DROP TABLE _incoming")
    con.execute("DROP TABLE _repeated_keys")
    return MergeCounts(rows_in, inserted, updated, distinct_valid - inserted - updated,
                       rows_in - quarantined - distinct_valid, quarantined)
