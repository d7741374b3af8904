"""Access to the DuckDB warehouse: many readers, one writer, atomic publication.

DuckDB lets one process open a file read-write and no other process open it at all
while it does. The studio therefore never writes to the published file in place:

* **Readers** (the pages, the CLI's queries) open ``warehouse.duckdb`` read-only, with
  external file access disabled and the configuration locked.
* **The writer** (an ETL run, later the scoring job) takes ``warehouse.lock``, copies the
  published file to ``warehouse.duckdb.next``, works on the copy, checkpoints it and
  publishes it with an atomic ``os.replace``. Readers that opened the old file keep
  reading it until they reopen; new readers see the new file. A run that fails or
  crashes never publishes, so the warehouse stays exactly as it was.

The lock serialises writers, so two ETL runs cannot overwrite each other's work.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from studio import schema
from studio.config import Settings
from studio.errors import UserError


def warehouse_version(settings: Settings) -> tuple[int, int] | None:
    """Identity of the published file (inode, mtime): it changes on every publication."""
    try:
        stat = settings.warehouse_path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def connect_reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the published warehouse read-only, sealed against file access.

    The file is attached to a private in-memory database rather than opened with
    ``duckdb.connect(path)``: DuckDB hands every ``connect`` of a path already open in
    the process the same database instance, so a long-lived process (the app) would keep
    reading a replaced file for as long as any old connection lived. Attaching gives each
    published version its own instance. External access is switched off and the
    configuration locked after the attach, so queries cannot read or write files.

    Raises
    ------
    UserError
        When no warehouse has been loaded yet.
    """
    path = settings.warehouse_path
    if not path.exists():
        raise UserError(
            f"No warehouse at {path} yet; run 'studio demo' or 'studio etl load' first."
        )
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS warehouse (READ_ONLY)")
    con.execute("USE warehouse")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")  # last: it refuses any later SET
    return con


def fetch_scalar(con: duckdb.DuckDBPyConnection, query: str, params=None):
    """Run ``query`` with bound ``params`` and return the first column of the first row."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows else None


class WarehouseBusy(UserError):
    """Another process is writing to the warehouse."""


@contextmanager
def _exclusive_lock(settings: Settings) -> Iterator[None]:
    settings.ensure_home()
    lock_path = settings.home / "warehouse.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WarehouseBusy(
                f"The warehouse is being written by {holder}; wait for it to finish and retry."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def writer(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy that is published when the block succeeds.

    If the block raises, the copy is discarded and the published warehouse is untouched.
    """
    with _exclusive_lock(settings):
        published = settings.warehouse_path
        staging = published.with_name(published.name + ".next")
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            leftover.unlink(missing_ok=True)
        if published.exists():
            shutil.copyfile(published, staging)
        con = duckdb.connect(str(staging))
        published_ok = False
        try:
            schema.create_all(con)
            yield con
            con.execute("CHECKPOINT")
            con.close()
            os.replace(staging, published)
            published_ok = True
        finally:
            if not published_ok:
                con.close()
                staging.unlink(missing_ok=True)
                staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
