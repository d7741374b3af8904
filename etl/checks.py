"""Row-level quality gates: type every value and give each bad row its reason.

Everything is one DuckDB statement per table so that the checks cost about one extra
pass over the data. The SQL is assembled only from the canonical schema's own names and
rules (:mod:`studio.schema`); values from files are data, never SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from etl.staging import StagedEntity
from studio.schema import Table


def quote_identifier(name: str) -> str:
    """Quote ``name`` as a SQL identifier (doubling any embedded quote)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote ``value`` as a SQL string literal (doubling any embedded quote)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class _TypedColumn:
    name: str
    expression: str  # the typed value
    raw: str | None  # the text before typing, when typing can fail


def _type_column(table: Table, column_name: str, source_types: dict[str, str],
                 timestamp_formats: dict[str, str]) -> _TypedColumn:
    column = table.column(column_name)
    name = quote_identifier(column.name)
    source_type = source_types.get(column.name)
    as_text = f"nullif(trim(CAST({name} AS VARCHAR)), '')"
    if source_type is None:
        return _TypedColumn(column.name, f"CAST(NULL AS {column.type})", None)
    if column.name in timestamp_formats:
        fmt = quote_literal(timestamp_formats[column.name])
        return _TypedColumn(column.name, f"try_strptime({as_text}, {fmt})", as_text)
    if column.type == "VARCHAR":
        return _TypedColumn(column.name, as_text, None)
    if source_type == column.type:
        return _TypedColumn(column.name, name, None)
    return _TypedColumn(column.name, f"TRY_CAST({as_text} AS {column.type})", as_text)


def _reason_cases(table: Table, typed: dict[str, _TypedColumn]) -> list[str]:
    """``WHEN ... THEN reason`` clauses, in the order the rules are applied."""
    cases: list[str] = []
    for column in table.columns:
        if (column.required or column.name in table.key) and column.name in typed:
            raw = typed[column.name].raw
            missing = f"{quote_identifier('_raw_' + column.name)} IS NULL" if raw else (
                f"{quote_identifier(column.name)} IS NULL")
            cases.append(f"WHEN {missing} THEN {quote_literal('missing ' + column.name)}")
    for name, column in typed.items():
        if column.raw is not None:
            cases.append(f"WHEN {quote_identifier(name)} IS NULL "
                         f"AND {quote_identifier('_raw_' + name)} IS NOT NULL "
                         f"THEN {quote_literal('unparseable ' + name)}")
    for name, allowed in table.allowed_values.items():
        listed = ", ".join(quote_literal(value) for value in allowed)
        reason = f"{name} not one of {', '.join(allowed)}"
        cases.append(f"WHEN {quote_identifier(name)} NOT IN ({listed}) "
                     f"THEN {quote_literal(reason)}")
    for check in table.checks:
        cases.append(f"WHEN ({check.condition}) IS FALSE THEN {quote_literal(check.reason)}")
    for index, reference in enumerate(table.references):
        unless = f" AND NOT coalesce(({reference.unless}), false)" if reference.unless else ""
        reason = f"{reference.column} not found in {reference.table}"
        cases.append(f"WHEN {quote_identifier(reference.column)} IS NOT NULL "
                     f"AND NOT _ref_ok_{index}{unless} THEN {quote_literal(reason)}")
    return cases


def build_typed_table(con: duckdb.DuckDBPyConnection, staged: StagedEntity, into: str) -> None:
    """Create temp table ``into``: typed canonical columns, provenance, ``_reason``, ``_raw_json``.

    ``_reason`` is NULL for a good row and otherwise the first rule it breaks, in this
    order: a missing required value, a value that does not parse, a value outside the
    allowed set, a broken row rule, a reference to a row that does not exist.
    ``_raw_json`` keeps a bad row's values as they were read, for the quarantine.
    """
    table = staged.table
    probe = con.sql(f"SELECT * FROM ({staged.select_sql}) LIMIT 0", params=staged.params)
    source_types = dict(zip(probe.columns, (str(t) for t in probe.types), strict=True))
    canonical = [c.name for c in table.columns if not c.name.startswith("_")]
    typed = {name: _type_column(table, name, source_types, staged.timestamp_formats)
             for name in canonical}

    typing_sql = ", ".join(
        [f"{c.expression} AS {quote_identifier(c.name)}" for c in typed.values()]
        + [f"{c.raw} AS {quote_identifier('_raw_' + c.name)}"
           for c in typed.values() if c.raw is not None])
    flags_sql = "".join(
        f", {quote_identifier(r.column)} IN (SELECT {quote_identifier(r.table_column)} "
        f"FROM {quote_identifier(r.table)}) AS _ref_ok_{i}"
        for i, r in enumerate(table.references))
    cases = _reason_cases(table, typed)
    reason_sql = f"CASE {' '.join(cases)} END" if cases else "CAST(NULL AS VARCHAR)"
    raw_json_sql = "to_json(struct_pack({}))".format(", ".join(
        f"{quote_identifier(name)} := "
        + (quote_identifier("_raw_" + name) if c.raw is not None else quote_identifier(name))
        for name, c in typed.items() if name in source_types))
    columns_sql = ", ".join(quote_identifier(name) for name in canonical)

    con.execute(f"DROP TABLE IF EXISTS {into}")
    con.sql(
        f"""CREATE TEMP TABLE {into} AS
        SELECT {columns_sql}, _source_file, _source_line, _reason,
               CASE WHEN _reason IS NOT NULL THEN {raw_json_sql} END AS _raw_json
        FROM (
            SELECT *, {reason_sql} AS _reason
            FROM (
                SELECT *{flags_sql}
                FROM (
                    SELECT {typing_sql}, _source_file, _source_line
                    FROM ({staged.select_sql})
                )
            )
        )""",
        params=staged.params,
    )
