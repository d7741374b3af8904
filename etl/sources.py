"""Source files: which files a path names, what format they are, how to read them.

A source is read by DuckDB in place (CSV, Parquet, newline-delimited JSON), as text
wherever a bad value could hide, and tagged with the file and line each row came from
so that a quarantined row can be traced back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from studio.errors import UserError

FORMATS = {
    ".csv": "csv", ".csv.gz": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet",
    ".ndjson": "json", ".jsonl": "json", ".json": "json", ".ndjson.gz": "json",
    ".jsonl.gz": "json",
}


@dataclass(frozen=True)
class SourceFile:
    """A file to load: where it is, its format, and its content hash."""

    path: Path
    format: str
    content_hash: str
    explicit: bool = True  # named by the user, not found by walking a folder
    subfolder: str | None = None  # for a file found in a folder walk: its first subfolder
    file_id: int = 0  # position in the run, carried by each row instead of the file name

    @property
    def label(self) -> str:
        """The file name shown in ledgers and quarantine rows."""
        return self.path.name


def file_format(path: Path) -> str | None:
    """The reader for ``path`` from its suffixes, or ``None`` if it is not a data file."""
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the same content is recognised under any name."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def expand_paths(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Data files to read, each with where it was found.

    A file named directly comes with ``None``; a file found by walking a folder comes with
    the name of the first subfolder it sits in below that folder (``""`` when it sits in
    the folder itself), which mappings use to tell data from other files beside it.

    Raises
    ------
    UserError
        When a path does not exist or names a file of an unknown format.
    """
    files: list[tuple[Path, str | None]] = []
    for path in paths:
        if not path.exists():
            raise UserError(f"{path} does not exist; check the path and try again.")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and file_format(p))
            files.extend((p, p.relative_to(path).parts[0] if len(p.relative_to(path).parts) > 1
                           else "") for p in found)
        elif file_format(path) is None:
            raise UserError(
                f"{path} is not a CSV, Parquet or newline-delimited JSON file; "
                "give files ending in .csv, .csv.gz, .parquet, .ndjson or .jsonl."
            )
        else:
            files.append((path, None))
    if not files:
        raise UserError("No data files found in the given paths; point at CSV, Parquet or "
                        "NDJSON files or folders holding them.")
    return files


def describe(path: Path, found_in: str | None = None, file_id: int = 0) -> SourceFile:
    """Recognise the format of ``path`` and hash its content (``found_in``: see expand_paths)."""
    fmt = file_format(path)
    if fmt is None:
        raise UserError(f"{path} is not a file format the studio reads.")
    return SourceFile(path=path.resolve(), format=fmt, content_hash=content_hash(path),
                      explicit=found_in is None, subfolder=found_in or None,
                      file_id=file_id)


def scan_sql(source: SourceFile) -> tuple[str, list]:
    """SQL (and its parameters) that scans ``source`` with ``_source_file``/``_source_line``.

    ``_source_file`` is the file's ``file_id`` (a small integer, cheaper than repeating the
    name on millions of rows); the loader turns it back into the name for the quarantine.

    CSV and JSON are read with every column as text, so that a value that does not parse
    is caught row by row by the checks instead of failing the whole read; Parquet keeps its
    own types. Lines count from 1 at the first data row of CSV (the header is line 1, so
    data starts at line 2) and at the first record of JSON and Parquet.
    """
    params = [source.file_id, str(source.path)]
    if source.format == "csv":
        return ("SELECT *, CAST(? AS INTEGER) AS _source_file, "
                "row_number() OVER () + 1 AS _source_line "
                "FROM read_csv(?, all_varchar = true, header = true)", params)
    if source.format == "json":
        return ("SELECT *, CAST(? AS INTEGER) AS _source_file, "
                "row_number() OVER () AS _source_line "
                "FROM read_json(?, format = 'newline_delimited')", params)
    return ("SELECT * EXCLUDE (file_row_number), CAST(? AS INTEGER) AS _source_file, "
            "file_row_number + 1 AS _source_line FROM read_parquet(?, file_row_number = true)",
            params)


def source_columns(con: duckdb.DuckDBPyConnection, source: SourceFile) -> dict[str, str]:
    """The columns of ``source`` and their DuckDB types, reading only its head.

    Raises
    ------
    UserError
        When DuckDB cannot read the file at all (not the format its name claims, or empty).
    """
    query, params = scan_sql(source)
    try:
        rel = con.sql(f"SELECT * FROM ({query}) LIMIT 0", params=params)
        return dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(
            f"{source.path} could not be read as {source.format.upper()} ({first_line}); "
            "check that the file is complete and of the format its name says."
        ) from None
