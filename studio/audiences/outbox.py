"""The durable outbox: every member's delivery in a run, and what destinations confirmed.

An item starts ``pending``. It becomes ``sent`` only in the transaction that records the
destination's confirmation, which also writes the member's payload hash to
``export_state`` (or deletes it, for a removal). An unconfirmed item becomes ``failed``
and is tried again, up to :data:`MAX_ATTEMPTS` times, then ``dead``: a dead letter,
listed for a person to retry. A crash between the destination's confirmation and this
transaction leaves the item pending, so it is delivered again: destinations therefore
apply changes as upserts by customer id, which makes a repeat harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from studio.audiences.destinations import ItemResult
from studio.audiences.diff import Change
from studio.audiences.records import export_outbox, export_state
from studio.config import Settings
from studio.state import state_engine

MAX_ATTEMPTS = 5
"""Deliveries of one item before it becomes a dead letter."""


def now() -> datetime:
    """The current UTC time, naive and to the second, as the state tables store it."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def delivered_state(settings: Settings, audience_key: str) -> dict[str, str]:
    """Customer id -> payload hash of what the destination last confirmed."""
    query = sa.select(export_state.c.customer_id, export_state.c.payload_hash).where(
        export_state.c.audience_key == audience_key)
    with state_engine(settings).connect() as connection:
        return dict(connection.execute(query).all())


def enqueue_changes(settings: Settings, run_id: int, changes: Iterable[Change]) -> int:
    """Record ``changes`` as pending items of ``run_id``; return how many."""
    stamp = now()
    rows = [{"run_id": run_id, "customer_id": c.customer_id, "action": c.action,
             "payload": json.dumps(c.payload, sort_keys=True, default=str),
             "payload_hash": c.payload_hash, "status": "pending", "attempts": 0,
             "updated_at": stamp} for c in changes]
    if rows:
        with state_engine(settings).begin() as connection:
            connection.execute(sa.insert(export_outbox), rows)
    return len(rows)


def due_items(settings: Settings, run_id: int, limit: int | None = None) -> list[Change]:
    """Items of ``run_id`` still to deliver (pending, or failed with attempts left)."""
    query = (sa.select(export_outbox.c.customer_id, export_outbox.c.action,
                       export_outbox.c.payload, export_outbox.c.payload_hash)
             .where(export_outbox.c.run_id == run_id,
                    export_outbox.c.status.in_(("pending", "failed")),
                    export_outbox.c.attempts < MAX_ATTEMPTS)
             .order_by(export_outbox.c.item_id).limit(limit))
    with state_engine(settings).connect() as connection:
        return [Change(r.customer_id, r.action, json.loads(r.payload), r.payload_hash)
                for r in connection.execute(query)]


def _confirm(connection, run_id: int, audience_key: str, change: Change, stamp) -> None:
    connection.execute(sa.delete(export_state).where(
        export_state.c.audience_key == audience_key,
        export_state.c.customer_id == change.customer_id))
    if change.action != "remove":
        connection.execute(sa.insert(export_state).values(
            audience_key=audience_key, customer_id=change.customer_id,
            payload_hash=change.payload_hash, run_id=run_id, delivered_at=stamp))


def record_results(settings: Settings, run_id: int, audience_key: str,
                   changes: list[Change], results: list[ItemResult]) -> None:
    """Mark confirmed items sent (updating the delivered state) and the others failed or dead.

    One transaction: the outbox and the delivered state never disagree.
    """
    by_id = {change.customer_id: change for change in changes}
    stamp = now()
    item = export_outbox.c
    with state_engine(settings).begin() as connection:
        for result in results:
            where = (item.run_id == run_id, item.customer_id == result.customer_id)
            if result.ok:
                connection.execute(sa.update(export_outbox).where(*where).values(
                    status="sent", attempts=item.attempts + 1, last_error=None,
                    updated_at=stamp))
                _confirm(connection, run_id, audience_key, by_id[result.customer_id], stamp)
            else:
                connection.execute(sa.update(export_outbox).where(*where).values(
                    status=sa.case((item.attempts + 1 >= MAX_ATTEMPTS, "dead"),
                                   else_="failed"),
                    attempts=item.attempts + 1, last_error=result.error, updated_at=stamp))


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
