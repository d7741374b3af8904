"""Scheduled exports: audiences kept in sync by ``studio audiences sync`` (run from cron).

A schedule names a saved segment, a destination and a channel (and optionally a top N by a
score). Each sync exports the segment's latest saved version at the data's latest time, so
only the people who entered, changed or left since the last confirmed export are sent.
Schedules are stored in the state database, so they must not hold a secret: a SQL URL
with a password or a webhook URL with a query string is refused (keep the password in the
database driver's own configuration, such as ``~/.pgpass``, and the webhook's signing
secret in ``STUDIO_WEBHOOK_SECRET``).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from studio.audiences import history
from studio.audiences.audience import CHANNELS
from studio.audiences.destinations import parse_destination
from studio.audiences.outbox import now
from studio.audiences.records import export_schedules
from studio.audiences.runner import export_audience
from studio.config import Settings
from studio.errors import UserError
from studio.segments import library
from studio.state import state_engine

Progress = Callable[[str, float], None]


def save_schedule(settings: Settings, segment: str, destination_spec: str, *,
                  channel: str = "email", top_n: int | None = None,
                  score_target: str | None = None, user: str | None = None) -> int:
    """Schedule the export of ``segment`` to a destination; return the schedule's id.

    Raises
    ------
    UserError
        For an unknown segment or channel, a bad or secret-bearing destination, a top N
        without a target, or a schedule that already exists.
    """
    library.load_segment(settings, segment)  # names the segment, or says it does not exist
    if channel not in CHANNELS:
        raise UserError(f"Unknown channel {channel!r}; use one of {', '.join(CHANNELS)}.")
    if (top_n is None) != (score_target is None):
        raise UserError("A top N needs both a size and a score target; give --top N --by TARGET.")
    destination = parse_destination(destination_spec).description
    if "***" in destination:
        raise UserError("A scheduled destination is stored, so it cannot hold a password or "
                        "a URL query; keep the password in the driver's configuration "
                        "(e.g. ~/.pgpass) and leave it out of the URL.")
    record = {"segment": segment, "destination": destination, "channel": channel,
              "top_n": top_n, "score_target": score_target,
              "created_by": user or library.current_user(), "created_at": now()}
    try:
        with state_engine(settings).begin() as connection:
            schedule_id = connection.execute(
                sa.insert(export_schedules).values(**record)).inserted_primary_key[0]
    except sa.exc.IntegrityError:
        raise UserError(f"{segment!r} is already scheduled to {destination} on {channel}; "
                        "list schedules with 'studio audiences schedules'.") from None
    history.write_audit(settings, record["created_by"], "audience.schedule", segment,
                        {"schedule_id": schedule_id, **record})
    return schedule_id


def list_schedules(settings: Settings) -> list[dict]:
    """Every schedule, oldest first, with how its last sync went."""
    query = sa.select(export_schedules).order_by(export_schedules.c.schedule_id)
    with state_engine(settings).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def remove_schedule(settings: Settings, schedule_id: int, user: str | None = None) -> None:
    """Stop syncing one schedule (its past runs stay in the history).

    Raises
    ------
    UserError
        When no schedule has that id.
    """
    with state_engine(settings).begin() as connection:
        removed = connection.execute(sa.delete(export_schedules).where(
            export_schedules.c.schedule_id == schedule_id)).rowcount
    if not removed:
        raise UserError(f"There is no schedule {schedule_id}; list them with "
                        "'studio audiences schedules'.")
    history.write_audit(settings, user or library.current_user(), "audience.unschedule",
                        str(schedule_id), {"schedule_id": schedule_id})


def _record_sync(settings: Settings, schedule_id: int, run_id: int | None, status: str,
                 error: str | None) -> None:
    with state_engine(settings).begin() as connection:
        connection.execute(sa.update(export_schedules).where(
            export_schedules.c.schedule_id == schedule_id).values(
            last_run_id=run_id, last_status=status, last_synced_at=now(), last_error=error))


def sync_schedules(settings: Settings, *, progress: Progress | None = None) -> list[dict]:
    """Export every schedule once; one outcome per schedule, in order.

    A schedule that fails (a destination down, a segment deleted) is recorded with its
    error and the others still run: one bad destination must not starve the rest.
    """
    progress = progress or (lambda _label, _fraction: None)
    schedules = list_schedules(settings)
    outcomes = []
    for position, schedule in enumerate(schedules):
        share, label = 1 / len(schedules), f"{schedule['segment']} -> {schedule['destination']}"

        def step(text: str, fraction: float, position=position, share=share, label=label):
            progress(f"{label}: {text}", min(1.0, (position + fraction) * share))

        outcome = {key: schedule[key] for key in ("schedule_id", "segment", "destination",
                                                  "channel")}
        try:
            result = export_audience(settings, schedule["segment"], schedule["destination"],
                                     channel=schedule["channel"], top_n=schedule["top_n"],
                                     score_target=schedule["score_target"], progress=step)
        except Exception as error:  # recorded per schedule; the next one still runs
            reason = str(error) or type(error).__name__
            _record_sync(settings, schedule["schedule_id"], None, "failed", reason[:1000])
            outcomes.append(outcome | {"run_id": None, "status": "failed", "error": reason,
                                       "counts": {}})
            continue
        _record_sync(settings, schedule["schedule_id"], result.run_id, result.status, None)
        outcomes.append(outcome | {"run_id": result.run_id, "status": result.status,
                                   "error": None, "counts": result.counts})
    progress("Done", 1.0)
    return outcomes
