"""Mappings turn a source's own columns into the canonical schema.

Three are built in (``canonical``, ``online-retail``, ``orders-csv``); any other name is
read as a mapping file (YAML or JSON, see :mod:`etl.mappings.declared`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import duckdb

from etl.sources import SourceFile
from etl.staging import StagedEntity
from studio.errors import UserError


class Mapping(Protocol):
    """Something that stages source files as canonical tables."""

    name: str

    def stage(self, con: duckdb.DuckDBPyConnection,
              sources: list[SourceFile]) -> list[StagedEntity]:
        """One staged relation per canonical table the sources feed."""
        ...


def builtin_mappings() -> dict[str, Mapping]:
    """The mappings that ship with the studio, by name."""
    from etl.mappings.canonical import CanonicalMapping
    from etl.mappings.online_retail import OnlineRetailMapping
    from etl.mappings.orders_csv import OrdersCsvMapping

    return {m.name: m for m in (CanonicalMapping(), OnlineRetailMapping(), OrdersCsvMapping())}


def resolve_mapping(name_or_file: str) -> Mapping:
    """The built-in mapping called ``name_or_file``, or the mapping file at that path."""
    builtins = builtin_mappings()
    if name_or_file in builtins:
        return builtins[name_or_file]
    path = Path(name_or_file)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        from etl.mappings.declared import load_declared_mapping

        return load_declared_mapping(path)
    raise UserError(
        f"Unknown mapping {name_or_file!r}; use one of {', '.join(sorted(builtins))} "
        "or the path of a mapping file (.yaml or .json)."
    )


def require_columns(source: SourceFile, available: dict[str, str], needed: list[str],
                    mapping: str, hint: str) -> None:
    """Fail with one sentence when ``source`` lacks columns the mapping needs."""
    missing = [column for column in needed if column not in available]
    if missing:
        raise UserError(
            f"{source.path.name} lacks the column(s) {', '.join(missing)} that the {mapping} "
            f"mapping needs; {hint}"
        )


def union_sql(scans: list[tuple[str, list]]) -> tuple[str, list]:
    """Stack several scans into one relation, matching columns by name."""
    sql = " UNION ALL BY NAME ".join(f"({query})" for query, _ in scans)
    params = [value for _, values in scans for value in values]
    return sql, params
