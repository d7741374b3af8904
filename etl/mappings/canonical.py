"""The ``canonical`` mapping: files whose columns already carry the canonical names.

This is what the demo store generator writes. A file belongs to the table its name
starts with (``orders.csv``, ``customers-2024.csv``) or, failing that, the table its
folder is named after (``events/part-00000.parquet``). When a folder is loaded, files
in its subfolders that are not named after a table (the generator's ``truth/``) and
files that name no table (``manifest.json``) are left alone.
"""

from __future__ import annotations

import re

import duckdb

from etl.mappings import require_columns, union_sql
from etl.sources import SourceFile, scan_sql, source_columns
from etl.staging import StagedEntity
from studio.errors import UserError
from studio.schema import CANONICAL_TABLES, TABLES_BY_NAME


def table_for_file(source: SourceFile) -> str | None:
    """The canonical table a file feeds, judged by its name or its folder's name."""
    if source.subfolder is not None:
        return source.subfolder if source.subfolder in TABLES_BY_NAME else None
    stem = re.split(r"[.\-]", source.path.name, maxsplit=1)[0]
    if stem in TABLES_BY_NAME:
        return stem
    if source.path.parent.name in TABLES_BY_NAME:
        return source.path.parent.name
    return None


class CanonicalMapping:
    """Stage files named after canonical tables, column for column."""

    name = "canonical"

    def stage(self, con: duckdb.DuckDBPyConnection,
              sources: list[SourceFile]) -> list[StagedEntity]:
        """Group the files by table and stack each group into one relation."""
        by_table: dict[str, list[SourceFile]] = {}
        for source in sources:
            table = table_for_file(source)
            if table is None and not source.explicit:
                continue  # e.g. the generator's manifest.json or truth/ files beside the data
            if table is None:
                raise UserError(
                    f"{source.path.name} does not say which table it holds; name it after one "
                    f"of {', '.join(TABLES_BY_NAME)} (e.g. orders.csv) or put it in a folder "
                    "named after one."
                )
            by_table.setdefault(table, []).append(source)
        staged = []
        for table in CANONICAL_TABLES:
            files = by_table.get(table.name)
            if not files:
                continue
            for source in files:
                require_columns(
                    source, source_columns(con, source), list(table.key), self.name,
                    "its columns must carry the names listed in docs/schema.md.")
            sql, params = union_sql([scan_sql(source) for source in files])
            staged.append(StagedEntity(table=table, select_sql=sql, params=params,
                                       source_files=tuple(files)))
        return staged
