"""Where an audience goes: files written whole, or a SQL table kept as a mirror.

Every destination has a ``kind``, a ``description`` safe to store and show (no key, no
password) and says whether it is a ``mirror`` (members who left are removed from it) and
whether it takes a ``snapshot`` (the whole audience written at once, atomically) or
delivers changes item by item through ``deliver(batch) -> per-item results``; such a
destination may say how many items it takes at once (``batch_size``).

Destinations are named by one spec string, as the CLI's ``--to`` takes it:
``csv:PATH``, ``parquet:PATH``, ``sql:URL#TABLE``, ``omnisend:BASE_URL`` and
``webhook:URL`` (the last two in :mod:`studio.audiences.omnisend` and
:mod:`studio.audiences.webhook`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import polars as pl
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from studio.audiences.diff import Change
from studio.errors import UserError

SPEC_FORMS = "csv:PATH, parquet:PATH, sql:URL#TABLE, omnisend:BASE_URL or webhook:URL"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ItemResult:
    """The destination's answer for one member: confirmed, or the reason it was not."""

    customer_id: str
    ok: bool
    error: str | None = None


class Destination(Protocol):
    """What the runner needs of a destination."""

    kind: str
    description: str
    mirror: bool
    snapshot: bool

    def deliver(self, batch: list[Change]) -> list[ItemResult]:
        """Apply the changes; one result per change, ``ok`` only when confirmed."""

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """Write the whole audience at once (snapshot destinations only)."""


def _replace_atomically(path: Path, write) -> None:
    """Write through a temporary file beside ``path``, then rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass
class CsvFile:
    """The audience as a CSV file, replaced whole on every export."""

    path: Path
    kind: str = "csv"
    mirror: bool = True
    snapshot: bool = True

    @property
    def description(self) -> str:
        """The file's absolute path."""
        return f"{self.kind}:{self.path}"

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """Write ``rows`` atomically: readers see the old file or the new one, never half."""
        _replace_atomically(self.path, rows.write_csv)

    def deliver(self, batch: list[Change]) -> list[ItemResult]:
        """Files are written whole; see :meth:`write_snapshot`."""
        raise TypeError("a file destination takes snapshots, not batches")


@dataclass
class ParquetFile(CsvFile):
    """The audience as a Parquet file, replaced whole on every export."""

    kind: str = "parquet"

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """Write ``rows`` atomically as Parquet.

        Snappy-compressed, as DuckDB and Spark write by default: every Parquet reader
        takes it, and it writes faster than zstd (the files are about half as large again).
        """
        _replace_atomically(self.path, lambda path: rows.write_parquet(path,
                                                                       compression="snappy"))


def _mirror_table(name: str) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(64)),
        sa.Column("country", sa.String(100)),
        sa.Column("score", sa.Float),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("synced_at", sa.DateTime, nullable=False),
    )


class SqlMirror:
    """A table in any SQLAlchemy database kept equal to the audience.

    Each batch is one transaction: the batch's members are deleted, then the added and
    changed ones inserted again (an upsert every dialect understands). A failed
    transaction fails every item of the batch, and nothing of it is applied.
    """

    kind = "sql"
    mirror = True
    snapshot = False

    def __init__(self, url: str, table: str):
        try:
            self.url = sa.make_url(url)
        except ArgumentError:
            raise UserError(f"{url!r} is not a SQLAlchemy database URL; write it like "
                            "sql:sqlite:///audience.db#audience.") from None
        self.table = _mirror_table(table)
        self._engine: sa.Engine | None = None

    @property
    def description(self) -> str:
        """The URL with any password hidden, and the table."""
        return f"sql:{self.url.render_as_string(hide_password=True)}#{self.table.name}"

    def engine(self) -> sa.Engine:
        """The destination's engine, with the mirror table created if missing."""
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self.url)
                self.table.create(self._engine, checkfirst=True)
            except SQLAlchemyError as error:
                raise UserError(f"Cannot open the table {self.table.name} at {self.description}"
                                f" ({type(error).__name__}); check the URL and access.") from None
        return self._engine

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """Mirrors take batches; see :meth:`deliver`."""
        raise TypeError("a sql mirror takes batches, not snapshots")

    def deliver(self, batch: list[Change]) -> list[ItemResult]:
        """Upsert the adds and updates and delete the removes of ``batch`` in one transaction."""
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        ids = [change.customer_id for change in batch]
        rows = [{"customer_id": c.customer_id, "email": c.payload.get("email"),
                 "phone": c.payload.get("phone"), "country": c.payload.get("country"),
                 "score": c.payload.get("score"), "payload": json.dumps(c.payload),
                 "synced_at": now} for c in batch if c.action != "remove"]
        try:
            with self.engine().begin() as connection:
                connection.execute(sa.delete(self.table)
                                   .where(self.table.c.customer_id.in_(ids)))
                if rows:
                    connection.execute(sa.insert(self.table), rows)
        except SQLAlchemyError as error:
            reason = f"{type(error).__name__}: {getattr(error, 'orig', None) or error}"
            return [ItemResult(i, False, reason.splitlines()[0][:500]) for i in ids]
        return [ItemResult(i, True) for i in ids]


def _file_path(kind: str, text: str) -> Path:
    if not text:
        raise UserError(f"A {kind} destination needs a path, as in {kind}:audience.{kind}.")
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path such as {path}/audience.{kind}.")
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist; create it or choose "
                        "another path.")
    return path


def parse_destination(spec: str) -> Destination:
    """The destination named by ``spec``.

    The forms: ``csv:PATH``, ``parquet:PATH``, ``sql:URL#TABLE``, ``omnisend:BASE_URL``,
    ``webhook:URL``.

    Raises
    ------
    UserError
        One sentence naming what is wrong with the spec and how to write it.
    """
    kind, colon, rest = spec.strip().partition(":")
    kind = kind.lower()
    if not colon or kind not in {"csv", "parquet", "sql", "omnisend", "webhook"}:
        raise UserError(f"Unknown destination {spec!r}; write it as {SPEC_FORMS}.")
    if kind == "csv":
        return CsvFile(_file_path(kind, rest))
    if kind == "parquet":
        return ParquetFile(_file_path(kind, rest))
    if kind == "sql":
        url, hash_sign, table = rest.rpartition("#")
        if not hash_sign or not url:
            raise UserError("A sql destination needs a URL and a table after '#', as in "
                            "sql:sqlite:///audience.db#audience.")
        if not _TABLE_NAME.match(table):
            raise UserError(f"{table!r} is not a valid table name; use letters, digits and "
                            "underscores, starting with a letter.")
        return SqlMirror(url, table)
    if not rest:
        raise UserError(f"A {kind} destination needs a URL, as in {kind}:https://example.com.")
    # imported here: both build on this module's ItemResult
    if kind == "omnisend":
        from studio.audiences.omnisend import OmnisendDestination

        return OmnisendDestination(rest)
    from studio.audiences.webhook import WebhookDestination

    return WebhookDestination(rest)
