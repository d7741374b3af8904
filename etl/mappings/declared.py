"""Mappings declared in a file, for stores whose exports the studio does not know yet.

A mapping file (YAML or JSON) names, for each canonical table it feeds, which source
column fills which canonical column, optional strptime formats for timestamps that are
not ISO text, constant defaults for columns the source lacks, and optionally a glob
that picks the files for that table::

    name: my-shop
    tables:
      orders:
        files: "orders*.csv"
        columns: {order_id: Id, customer_id: Customer, ordered_at: Created, total: Amount}
        timestamp_formats: {ordered_at: "%d/%m/%Y %H:%M"}
        defaults: {kind: sale, status: completed, is_guest: false, currency: EUR}

Source column names are quoted as identifiers and defaults are bound as parameters, so
nothing in the file becomes SQL text.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from etl.checks import quote_identifier
from etl.mappings import require_columns, union_sql
from etl.sources import SourceFile, scan_sql, source_columns
from etl.staging import StagedEntity
from studio.errors import UserError
from studio.schema import CANONICAL_TABLES, TABLES_BY_NAME


@dataclass(frozen=True)
class DeclaredTable:
    """How one canonical table is filled from the source columns."""

    table: str
    files: str
    columns: dict[str, str]
    timestamp_formats: dict[str, str]
    defaults: dict[str, object]


def _as_mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a mapping of names to values.")
    return value


def parse_declared(document: dict, origin: str) -> list[DeclaredTable]:
    """Validate a mapping document; every mistake is named in one sentence."""
    tables = _as_mapping(document.get("tables") if isinstance(document, dict) else None,
                         f"'tables' in {origin}")
    if not tables:
        raise UserError(f"{origin} declares no tables; add a 'tables:' section naming at "
                        f"least one of {', '.join(TABLES_BY_NAME)}.")
    declared = []
    for name, spec in tables.items():
        if name not in TABLES_BY_NAME:
            raise UserError(f"{origin} names an unknown table {name!r}; use one of "
                            f"{', '.join(TABLES_BY_NAME)}.")
        spec = _as_mapping(spec, f"table {name!r} in {origin}")
        table = TABLES_BY_NAME[name]
        columns = {str(k): str(v) for k, v in _as_mapping(
            spec.get("columns"), f"'columns' of {name} in {origin}").items()}
        formats = {str(k): str(v) for k, v in _as_mapping(
            spec.get("timestamp_formats"), f"'timestamp_formats' of {name}").items()}
        defaults = _as_mapping(spec.get("defaults"), f"'defaults' of {name} in {origin}")
        for column in [*columns, *formats, *defaults]:
            if column not in table.column_names or column.startswith("_"):
                raise UserError(f"{origin}: {name} has no column {column!r}; its columns are "
                                f"{', '.join(c for c in table.column_names if c[0] != '_')}.")
        for key in table.key:
            if key not in columns and key not in defaults:
                raise UserError(f"{origin}: table {name} needs a source column for its key "
                                f"{key!r}; add it under 'columns'.")
        declared.append(DeclaredTable(name, str(spec.get("files", "*")), columns, formats,
                                      dict(defaults)))
    return declared


def load_declared_mapping(path: Path) -> DeclaredMapping:
    """Read and validate the mapping file at ``path``."""
    if not path.is_file():
        raise UserError(f"Mapping file {path} does not exist; give a built-in mapping name "
                        "or the path of a YAML/JSON mapping file.")
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise UserError(f"Mapping file {path} is not valid {path.suffix[1:].upper()} "
                        f"({str(error).splitlines()[0]}); fix its syntax.") from None
    name = str((document or {}).get("name") or path.stem) if isinstance(document, dict) else ""
    return DeclaredMapping(name=name or path.stem, tables=parse_declared(document, str(path)))


@dataclass(frozen=True)
class DeclaredMapping:
    """A mapping read from a file."""

    name: str
    tables: list[DeclaredTable]

    def stage(self, con: duckdb.DuckDBPyConnection,
              sources: list[SourceFile]) -> list[StagedEntity]:
        """Rename and default each declared table's columns over its matching files."""
        by_name = {t.table: t for t in self.tables}
        staged = []
        for table in CANONICAL_TABLES:
            spec = by_name.get(table.name)
            if spec is None:
                continue
            files = [s for s in sources if fnmatch.fnmatch(s.path.name, spec.files)]
            if not files:
                raise UserError(f"No file matches {spec.files!r}, which mapping {self.name} "
                                f"gives for table {table.name}; check the file names.")
            scans = []
            for source in files:
                require_columns(source, source_columns(con, source), list(spec.columns.values()),
                                self.name, "fix the mapping's 'columns' or the file's header.")
                scans.append(self._select(source, spec))
            sql, params = union_sql(scans)
            staged.append(StagedEntity(table, sql, params=params, source_files=tuple(files),
                                       timestamp_formats=spec.timestamp_formats))
        return staged

    @staticmethod
    def _select(source: SourceFile, spec: DeclaredTable) -> tuple[str, list]:
        scan, scan_params = scan_sql(source)
        parts = [f"{quote_identifier(src)} AS {quote_identifier(dst)}"
                 for dst, src in spec.columns.items()]
        default_params = []
        for column, value in spec.defaults.items():
            if column in spec.columns:
                continue
            parts.append(f"CAST(? AS VARCHAR) AS {quote_identifier(column)}")
            default_params.append(None if value is None else str(value).lower()
                                  if isinstance(value, bool) else str(value))
        sql = f"SELECT {', '.join(parts)}, _source_file, _source_line FROM ({scan})"
        return sql, default_params + scan_params
