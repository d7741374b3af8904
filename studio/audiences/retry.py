"""Retrying dead letters: items that failed every attempt, sent again once a person says so.

A dead letter is a member the destination rejected :data:`~studio.audiences.outbox.MAX_ATTEMPTS`
times (a malformed address, a destination that was down all run). After someone fixes the
cause, a retry gives the run's dead letters a fresh set of attempts and delivers them, with
the same guarantees as the run itself: consent is checked again first (people who withdrew
it stay dead, with that reason), and an item becomes sent only once the destination
confirms it. Only the latest run of an audience can be retried: a later export's diff
already covers the members an older run failed to deliver.
"""

from __future__ import annotations

import sqlalchemy as sa

from studio.audiences import history, outbox
from studio.audiences.consent_gate import ConsentGate
from studio.audiences.destinations import Destination
from studio.audiences.records import export_outbox
from studio.audiences.runner import (
    ExportResult,
    Progress,
    _deliver,
    batch_size_for,
    destination_of_run,
    finish_delivered_again,
)
from studio.config import Settings
from studio.errors import UserError
from studio.state import state_engine

WITHDRAWN = "consent withdrawn before the retry; not sent"


def requeue_dead_letters(settings: Settings, run_id: int, customer_ids: list[str]) -> int:
    """Give these dead items of ``run_id`` a fresh set of attempts; return how many."""
    if not customer_ids:
        return 0
    with state_engine(settings).begin() as connection:
        return connection.execute(sa.update(export_outbox).where(
            export_outbox.c.run_id == run_id, export_outbox.c.status == "dead",
            export_outbox.c.customer_id.in_(customer_ids)).values(
            status="pending", attempts=0, updated_at=outbox.now())).rowcount


def retry_dead_letters(settings: Settings, run_id: int,
                       destination_spec: str | Destination | None = None, *,
                       progress: Progress | None = None,
                       batch_size: int | None = None) -> ExportResult:
    """Deliver the dead letters of ``run_id`` again, after re-checking consent.

    Raises
    ------
    UserError
        When the run is unknown, has no dead letters, was followed by a later export of
        the same audience, or its destination cannot be rebuilt (see
        :func:`destination_of_run`).
    """
    progress = progress or (lambda _label, _fraction: None)
    run = history.get_run(settings, run_id)
    dead = outbox.dead_letters(settings, run_id)
    if not dead:
        raise UserError(f"Export run {run_id} has no dead letters to retry.")
    if history.latest_run_id(settings, run["audience_key"]) != run_id:
        raise UserError(f"Export run {run_id} was followed by a later export of the same "
                        "audience, which covers these members; export again instead.")
    destination = destination_of_run(run, destination_spec)
    ids = [item["customer_id"] for item in dead]
    sendable = [item["customer_id"] for item in dead if item["action"] != "remove"]
    with ConsentGate(settings, run["channel"]) as gate:
        withdrawn = set(gate.withdrawn(sendable))
        requeue_dead_letters(settings, run_id, [i for i in ids if i not in withdrawn])
        outbox.abandon_items(settings, run_id, sorted(withdrawn), WITHDRAWN)
        _deliver(settings, run_id, run["audience_key"], destination,
                 batch_size_for(destination, batch_size), progress, gate)
    retried = len(ids) - len(withdrawn)
    result = finish_delivered_again(
        settings, run, f"dead letters retried: {retried} of {len(ids)}", "audience.export.retry",
        {"retried": retried, "withdrawn": len(withdrawn)})
    progress("Done", 1.0)
    return result
