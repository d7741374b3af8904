"""Export runs and the audit log: the record of who exported what, where, and how it went."""

from __future__ import annotations

import json
import os

import sqlalchemy as sa

from studio.audiences.outbox import MAX_ATTEMPTS, now
from studio.audiences.records import COUNT_COLUMNS, audit_log, export_outbox, export_runs
from studio.config import Settings
from studio.errors import UserError
from studio.state import state_engine


def open_run(settings: Settings, **values) -> int:
    """Insert a run in status ``running`` (or as given); return its id."""
    record = {"status": "running", "pid": os.getpid(), "started_at": now(), **values}
    record["model_versions"] = json.dumps(record.get("model_versions") or {}, sort_keys=True)
    with state_engine(settings).begin() as connection:
        return connection.execute(sa.insert(export_runs).values(**record)
                                  ).inserted_primary_key[0]


def finish_run(settings: Settings, run_id: int, status: str, counts: dict[str, int],
               message: str | None = None) -> None:
    """Close a run with its final status and counts."""
    values = {k: v for k, v in counts.items() if k in COUNT_COLUMNS}
    with state_engine(settings).begin() as connection:
        connection.execute(sa.update(export_runs).where(export_runs.c.run_id == run_id).values(
            status=status, finished_at=now(), message=message, **values))


def get_run(settings: Settings, run_id: int) -> dict:
    """One run as a dict.

    Raises
    ------
    UserError
        When no run has that id.
    """
    with state_engine(settings).connect() as connection:
        row = connection.execute(sa.select(export_runs).where(
            export_runs.c.run_id == run_id)).first()
    if row is None:
        raise UserError(f"There is no export run {run_id}; list them with "
                        "'studio audiences runs'.")
    return _as_dict(row)


def _as_dict(row) -> dict:
    run = dict(row._mapping)
    run["model_versions"] = json.loads(run["model_versions"])
    return run


def list_runs(settings: Settings, limit: int = 100) -> list[dict]:
    """The latest export runs, newest first."""
    query = sa.select(export_runs).order_by(export_runs.c.run_id.desc()).limit(limit)
    with state_engine(settings).connect() as connection:
        return [_as_dict(row) for row in connection.execute(query)]


def unfinished_runs(settings: Settings, audience_key: str) -> list[dict]:
    """Real runs of this audience and destination that left items undelivered, oldest first.

    A run killed half-way stays ``running``; one that raised is ``failed``. Either way its
    pending items were not confirmed.
    """
    # correlated on the run, so the outbox's (run_id, status) index answers it: the outbox
    # keeps every past run's items, and a scan of all of them would grow with the history
    undelivered = sa.exists().where(
        export_outbox.c.run_id == export_runs.c.run_id,
        export_outbox.c.status.in_(("pending", "failed")),
        export_outbox.c.attempts < MAX_ATTEMPTS)
    query = (sa.select(export_runs)
             .where(export_runs.c.audience_key == audience_key, ~export_runs.c.dry_run,
                    undelivered)
             .order_by(export_runs.c.run_id))
    with state_engine(settings).connect() as connection:
        return [_as_dict(row) for row in connection.execute(query)]


def latest_run_id(settings: Settings, audience_key: str) -> int | None:
    """The newest real run of this audience and destination."""
    with state_engine(settings).connect() as connection:
        return connection.execute(sa.select(sa.func.max(export_runs.c.run_id)).where(
            export_runs.c.audience_key == audience_key, ~export_runs.c.dry_run)).scalar()


def write_audit(settings: Settings, actor: str, action: str, target: str,
                details: dict) -> None:
    """Append one entry to the audit log."""
    with state_engine(settings).begin() as connection:
        connection.execute(sa.insert(audit_log).values(
            at=now(), actor=actor, action=action, object=target,
            details=json.dumps(details, sort_keys=True, default=str)))


def audit_entries(settings: Settings, target: str | None = None) -> list[dict]:
    """Audit entries (about one object, or all), newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.entry_id.desc())
    if target is not None:
        query = query.where(audit_log.c.object == target)
    with state_engine(settings).connect() as connection:
        return [{**dict(r._mapping), "details": json.loads(r.details)}
                for r in connection.execute(query)]
