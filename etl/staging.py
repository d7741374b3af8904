"""What a mapping hands to the loader: one staged relation per canonical table."""

from __future__ import annotations

from dataclasses import dataclass, field

from etl.sources import SourceFile
from studio.schema import Table


@dataclass(frozen=True)
class StagedEntity:
    """Rows for one canonical table, as a mapping read them from its source files.

    Attributes
    ----------
    table
        The canonical table the rows are meant for.
    select_sql, params
        A query whose columns carry canonical names (any subset; values may still be
        text), plus ``_source_file`` and ``_source_line``. The loader types and checks them.
    source_files
        The files the rows came from, for the ledger and the per-file quarantine threshold.
    timestamp_formats
        strptime formats for timestamp columns that are not ISO text.
    derived
        True for records a mapping infers from other rows (e.g. customers seen only in an
        orders file): they never replace a record already in the warehouse.
    """

    table: Table
    select_sql: str
    params: list = field(default_factory=list)
    source_files: tuple[SourceFile, ...] = ()
    timestamp_formats: dict[str, str] = field(default_factory=dict)
    derived: bool = False
