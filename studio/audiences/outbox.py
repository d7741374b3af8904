"""The durable outbox: every member's delivery in a run, and what destinations confirmed.

An item starts ``pending``. It becomes ``sent`` only in the transaction that records the
destination's confirmation, which also writes the member's payload hash to
``export_state`` (or deletes it, for a removal). An unconfirmed item becomes ``failed``
and is tried again, up to :data:`MAX_ATTEMPTS` times, then ``dead``: a dead letter,
listed for a person to retry. A crash between the destination's confirmation and this
transaction leaves the item pending, so it is delivered again: destinations therefore
apply changes as upserts by customer id, which makes a repeat harmless.

Files are written whole, so they need no outbox: what a file holds is kept as one
Parquet file of member hashes per audience under ``<home>/export-state``, replaced with
the file (:func:`save_snapshot_state`), which a million-member export writes in a
fraction of a second where a million state rows would take many.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from studio.audiences.destinations import ItemResult
from studio.audiences.diff import Change
from studio.audiences.records import export_outbox, export_state
from studio.config import Settings
from studio.state import state_engine

MAX_ATTEMPTS = 5
"""Deliveries of one item before it becomes a dead letter."""
_WRITING = threading.Lock()
"""Serialises this process's outbox writes (the queuing thread's and the sender's): a
writer that meets SQLite's lock sleeps in steps of up to 100 ms, a Python lock wakes it
the moment the other is done."""
SNAPSHOT_STATE_FOLDER = "export-state"
"""Under the studio home: per file audience, the member hashes of the last file written."""


def now() -> datetime:
    """The current UTC time, naive and to the second, as the state tables store it."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def delivered_state(settings: Settings, audience_key: str) -> dict[str, str]:
    """Customer id -> payload hash of what the destination last confirmed."""
    query = sa.select(export_state.c.customer_id, export_state.c.payload_hash).where(
        export_state.c.audience_key == audience_key)
    with state_engine(settings).connect() as connection:
        return dict(connection.execute(query).all())


def snapshot_state_path(settings: Settings, audience_key: str) -> Path:
    """Where the member hashes of a file audience's last written snapshot are kept."""
    name = hashlib.sha256(audience_key.encode("utf-8")).hexdigest()[:32]
    return settings.home / SNAPSHOT_STATE_FOLDER / f"{name}.parquet"


def snapshot_state(settings: Settings, audience_key: str) -> pl.DataFrame:
    """``customer_id, row_hash`` of the file this audience last wrote (empty if none)."""
    path = snapshot_state_path(settings, audience_key)
    if path.is_file():
        return pl.read_parquet(path, columns=["customer_id", "row_hash"])
    return pl.DataFrame(schema={"customer_id": pl.String, "row_hash": pl.UInt64})


def save_snapshot_state(settings: Settings, audience_key: str, hashes: pl.DataFrame) -> Path:
    """Keep the member hashes of a file just written (``customer_id, row_hash``).

    Written beside the final path and renamed over it, so a reader sees the old state or
    the new one. Returns the path.
    """
    path = snapshot_state_path(settings, audience_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        hashes.select("customer_id", "row_hash").write_parquet(
            temporary, compression="lz4", statistics=False)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _insert_rows(connection: sa.Connection, table: sa.Table, columns: tuple[str, ...],
                 rows: list[tuple]) -> None:
    """Insert many rows through the driver's ``executemany``, for any dialect.

    The statement is compiled for the connection's dialect, but the rows skip
    SQLAlchemy's per-row parameter handling, which costs more than the insert itself
    for a hundred thousand rows. Values must be ready for the driver (dates converted
    with :func:`_driver_value`).
    """
    compiled = sa.insert(table).compile(dialect=connection.dialect, column_keys=list(columns))
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup]
        parameters = [tuple(row[i] for i in order) for row in rows]
    else:
        parameters = [dict(zip(columns, row, strict=True)) for row in rows]
    connection.exec_driver_sql(str(compiled), parameters)


def _driver_value(connection: sa.Connection, column: sa.Column, value):
    """``value`` as the driver takes it for ``column`` (SQLite stores dates as text)."""
    convert = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return convert(value) if convert else value


_QUEUED = ("run_id", "customer_id", "action", "payload", "payload_hash", "status", "attempts",
           "updated_at")


def enqueue_changes(settings: Settings, run_id: int, changes: pl.DataFrame) -> int:
    """Record ``changes`` (an :class:`~studio.audiences.diff.AudienceDiff` frame) as pending.

    One multi-row insert in one transaction; items keep the frame's order. Returns how
    many were queued.
    """
    if changes.is_empty():
        return 0
    with _WRITING, state_engine(settings).begin() as connection:
        stamp = _driver_value(connection, export_outbox.c.updated_at, now())
        _insert_rows(connection, export_outbox, _QUEUED, [
            (run_id, customer_id, action, payload, payload_hash, "pending", 0, stamp)
            for customer_id, action, payload, payload_hash in changes.select(
                "customer_id", "action", "payload", "payload_hash").iter_rows()])
    return changes.height


class BackgroundQueue:
    """Queues a run's changes from a thread, a chunk per transaction, in the frame's order.

    Queuing a hundred thousand items takes seconds; sending can start as soon as the
    first chunk is committed, and the rest is queued while the destination is paced.
    :meth:`wait_for` blocks until the first ``count`` items are committed (an item is
    never sent before it is queued), and re-raises the thread's error if queuing failed.
    Leaving the ``with`` block waits for the queue to be complete, even after an error,
    so that only a killed process leaves a run partly queued.
    """

    def __init__(self, settings: Settings, run_id: int, changes: pl.DataFrame, chunk: int):
        self.settings, self.run_id, self.changes, self.chunk = settings, run_id, changes, chunk
        self.queued = 0
        self._error: BaseException | None = None
        self._progress = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"outbox-queue-{run_id}",
                                        daemon=True)

    def __enter__(self) -> BackgroundQueue:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join()  # even when sending failed: the run's items are all queued

    def _run(self) -> None:
        try:
            for start in range(0, self.changes.height, self.chunk):
                added = enqueue_changes(self.settings, self.run_id,
                                        self.changes.slice(start, self.chunk))
                with self._progress:
                    self.queued += added
                    self._progress.notify_all()
        except BaseException as error:  # handed to the waiting thread
            with self._progress:
                self._error = error
                self._progress.notify_all()

    def wait_for(self, count: int) -> None:
        """Return once the first ``count`` items are queued; raise if queuing failed."""
        with self._progress:
            self._progress.wait_for(lambda: self.queued >= count or self._error is not None)
            if self._error is not None:
                raise self._error


def _due(run_id: int):
    item = export_outbox.c
    return (item.run_id == run_id, item.status.in_(("pending", "failed")),
            item.attempts < MAX_ATTEMPTS)


def due_items(settings: Settings, run_id: int, limit: int | None = None) -> list[Change]:
    """Items of ``run_id`` still to deliver (pending, or failed with attempts left)."""
    return due_batch(settings, run_id, limit=limit)[0]


def due_batch(settings: Settings, run_id: int, *, after: int = 0,
              limit: int | None = None) -> tuple[list[Change], int]:
    """The next due items of ``run_id`` past item ``after``, and the last item id read.

    Reading from a cursor keeps each batch's read proportional to the batch, however
    many items were sent before it.
    """
    item = export_outbox.c
    query = (sa.select(item.item_id, item.customer_id, item.action, item.payload,
                       item.payload_hash)
             .where(*_due(run_id), item.item_id > after).order_by(item.item_id).limit(limit))
    with state_engine(settings).connect() as connection:
        rows = connection.execute(query).all()
    changes = [Change(r.customer_id, r.action, json.loads(r.payload), r.payload_hash)
               for r in rows]
    return changes, rows[-1].item_id if rows else after


def _chunks(values: list, size: int = 500):
    """Slices of ``values`` small enough for an ``IN (...)`` on any database."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _confirm(connection, run_id: int, audience_key: str, confirmed: list[Change],
             stamp) -> None:
    """Mark ``confirmed`` sent and make the delivered state say what they hold."""
    item = export_outbox.c
    ids = [change.customer_id for change in confirmed]
    for chunk in _chunks(ids):
        connection.execute(sa.update(export_outbox).where(
            item.run_id == run_id, item.customer_id.in_(chunk)).values(
            status="sent", attempts=item.attempts + 1, last_error=None, updated_at=stamp))
        connection.execute(sa.delete(export_state).where(
            export_state.c.audience_key == audience_key, export_state.c.customer_id.in_(chunk)))
    delivered_at = _driver_value(connection, export_state.c.delivered_at, stamp)
    held = [(audience_key, c.customer_id, c.payload_hash, run_id, delivered_at)
            for c in confirmed if c.action != "remove"]
    if held:
        _insert_rows(connection, export_state, ("audience_key", "customer_id", "payload_hash",
                                                "run_id", "delivered_at"), held)


def _fail(connection, run_id: int, failures: list[ItemResult], stamp) -> None:
    """Count an attempt on each failed item; the last allowed attempt makes it dead."""
    item = export_outbox.c
    connection.execute(
        sa.update(export_outbox)
        .where(item.run_id == run_id, item.customer_id == sa.bindparam("failed_id"))
        .values(status=sa.case((item.attempts + 1 >= MAX_ATTEMPTS, "dead"), else_="failed"),
                attempts=item.attempts + 1, last_error=sa.bindparam("reason"),
                updated_at=stamp),
        [{"failed_id": r.customer_id, "reason": r.error} for r in failures])


def record_results(settings: Settings, run_id: int, audience_key: str,
                   changes: list[Change], results: list[ItemResult]) -> None:
    """Mark confirmed items sent (updating the delivered state) and the others failed or dead.

    One transaction: the outbox and the delivered state never disagree. The statements
    cover whole batches (``IN`` lists, multi-row inserts), not one member at a time.
    """
    by_id = {change.customer_id: change for change in changes}
    stamp = now()
    confirmed = [by_id[r.customer_id] for r in results if r.ok]
    failures = [r for r in results if not r.ok]
    answered = {r.customer_id for r in results}
    failures += [ItemResult(c.customer_id, False, "the destination gave no answer for it")
                 for c in changes if c.customer_id not in answered]
    with _WRITING, state_engine(settings).begin() as connection:
        if confirmed:
            _confirm(connection, run_id, audience_key, confirmed, stamp)
        if failures:
            _fail(connection, run_id, failures, stamp)


def abandon_items(settings: Settings, run_id: int, customer_ids: list[str], reason: str) -> None:
    """Make items dead letters without delivering them (e.g. consent withdrawn meanwhile)."""
    if not customer_ids:
        return
    with state_engine(settings).begin() as connection:
        connection.execute(sa.update(export_outbox).where(
            export_outbox.c.run_id == run_id,
            export_outbox.c.customer_id.in_(customer_ids)).values(
            status="dead", last_error=reason, updated_at=now()))


def supersede_items(settings: Settings, run_ids: list[int], by_run: int) -> None:
    """Retire the undelivered items of older runs: the new run's diff covers those members."""
    if not run_ids:
        return
    with state_engine(settings).begin() as connection:
        connection.execute(sa.update(export_outbox).where(
            export_outbox.c.run_id.in_(run_ids),
            export_outbox.c.status.in_(("pending", "failed"))).values(
            status="failed", attempts=MAX_ATTEMPTS,
            last_error=f"superseded by run {by_run}", updated_at=now()))


def item_counts(settings: Settings, run_id: int) -> dict[str, int]:
    """How many items of ``run_id`` are in each status."""
    query = (sa.select(export_outbox.c.status, sa.func.count())
             .where(export_outbox.c.run_id == run_id).group_by(export_outbox.c.status))
    with state_engine(settings).connect() as connection:
        counts = dict(connection.execute(query).all())
    return {status: int(counts.get(status, 0)) for status in ("pending", "sent", "failed",
                                                             "dead")}


def dead_letters(settings: Settings, run_id: int | None = None) -> list[dict]:
    """Dead items (of one run, or all), newest first, for a person to look at and retry."""
    query = sa.select(export_outbox).where(export_outbox.c.status == "dead")
    if run_id is not None:
        query = query.where(export_outbox.c.run_id == run_id)
    with state_engine(settings).connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            query.order_by(export_outbox.c.item_id.desc()))]
