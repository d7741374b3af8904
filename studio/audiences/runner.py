"""One export run: build, diff, queue, deliver, confirm, count, audit.

A run is a snapshot of what was decided (segment version, ``as_of``, top N, destination,
score model versions, who and when) and of how it went. Changes are queued in the outbox
before anything is sent and marked sent only when the destination confirms them, in the
same transaction that records the destination's new state. A run that dies half-way
therefore leaves its unconfirmed members pending: the next export of the same audience
to the same destination retires them and its diff, taken against what was confirmed,
sends exactly the members still missing; :func:`resume_run` instead finishes the old run
itself, after re-checking consent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa

from studio.audiences import history, outbox
from studio.audiences.audience import Audience, build_audience, consented_members
from studio.audiences.destinations import Destination, ItemResult, parse_destination
from studio.audiences.diff import AudienceDiff, diff_audience
from studio.config import Settings
from studio.errors import UserError
from studio.segments.library import current_user
from studio.sql import customers
from studio.warehouse import connect_reader

Progress = Callable[[str, float], None]
BATCH_SIZE = 500
SAMPLE_SIZE = 5


@dataclass
class ExportResult:
    """What a run did: its id and status, counts, and (for a dry run) the diff and samples."""

    run_id: int
    status: str
    dry_run: bool
    destination: str
    counts: dict[str, int]
    model_versions: dict[str, list[str]] = field(default_factory=dict)
    changes: dict[str, list[str]] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def audience_key(segment: str, destination: Destination) -> str:
    """Names one audience at one destination: the unit the diff and resumption work on."""
    return f"{segment} -> {destination.description}"


def _process_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retire_unfinished(settings: Settings, key: str, new_run: int) -> None:
    runs = history.unfinished_runs(settings, key)
    for run in runs:
        if run["status"] == "running" and _process_alive(run["pid"]):
            raise UserError(f"Export run {run['run_id']} of this audience is still running "
                            f"(process {run['pid']}); wait for it to finish and retry.")
    outbox.supersede_items(settings, [run["run_id"] for run in runs], new_run)
    for run in runs:
        if run["status"] == "running":
            history.finish_run(settings, run["run_id"], "failed", {},
                               f"interrupted; superseded by run {new_run}")


def _deliver(settings: Settings, run_id: int, key: str, destination: Destination,
             batch_size: int, progress: Progress) -> None:
    """Send the run's due items in batches until none is left (or all are dead)."""
    total = max(1, outbox.item_counts(settings, run_id)["pending"])
    done = 0
    while batch := outbox.due_items(settings, run_id, limit=batch_size):
        results = destination.deliver(batch)
        outbox.record_results(settings, run_id, key, batch, results)
        done += sum(result.ok for result in results)
        progress(f"Sending to {destination.kind}", min(done / total, 1.0))


def _write_snapshot(settings: Settings, run_id: int, key: str, destination: Destination,
                    audience: Audience) -> None:
    """Write the whole audience; its confirmation confirms every queued change at once."""
    destination.write_snapshot(audience.rows)
    changes = outbox.due_items(settings, run_id)
    outbox.record_results(settings, run_id, key, changes,
                          [ItemResult(c.customer_id, True) for c in changes])


def _final_counts(settings: Settings, run_id: int) -> tuple[str, dict[str, int]]:
    items = outbox.item_counts(settings, run_id)
    undelivered = items["failed"] + items["dead"] + items["pending"]
    status = ("succeeded" if not undelivered else
              "failed" if not items["sent"] else "partial")
    return status, {"sent": items["sent"], "failed": items["failed"] + items["pending"],
                    "dead": items["dead"]}


def _diff_counts(audience: Audience, diff: AudienceDiff) -> dict[str, int]:
    return {"matched": audience.matched, "consented": audience.rows.height,
            "to_add": diff.count("add"), "to_update": diff.count("update"),
            "to_remove": diff.count("remove"), "unchanged": diff.unchanged}


def export_audience(settings: Settings, segment: str, destination_spec: str | Destination, *,
                    version: int | None = None, as_of: datetime | None = None,
                    channel: str = "email", top_n: int | None = None,
                    score_target: str | None = None, dry_run: bool = False,
                    progress: Progress | None = None,
                    batch_size: int = BATCH_SIZE) -> ExportResult:
    """Export the saved segment ``segment`` to a destination (a spec or a destination object).

    ``consented`` counts the members reachable on ``channel`` after any top N. A dry run
    records the run and an audit entry and returns the counts, the diff and sample
    payloads, but queues and sends nothing.

    Raises
    ------
    UserError
        For a bad spec, an unknown segment, or an export of the same audience still running.
    """
    progress = progress or (lambda _label, _fraction: None)
    destination = (parse_destination(destination_spec) if isinstance(destination_spec, str)
                   else destination_spec)
    if hasattr(destination, "for_audience") and destination.segment is None:
        destination = destination.for_audience(segment, channel)  # the tag and channel status
    progress("Building the audience", 0.0)
    with connect_reader(settings) as con:
        audience = build_audience(settings, con, segment, version=version, as_of=as_of,
                                  channel=channel, top_n=top_n, score_target=score_target)
    key = audience_key(segment, destination)
    diff = diff_audience(audience.rows, outbox.delivered_state(settings, key),
                         mirror=destination.mirror)
    counts = _diff_counts(audience, diff)
    actor = current_user()
    run_id = history.open_run(
        settings, audience_key=key, segment=segment, segment_version=audience.version,
        as_of=audience.as_of, top_n=top_n, score_target=score_target, channel=channel,
        destination_kind=destination.kind, destination=destination.description,
        dry_run=dry_run, model_versions=audience.model_versions, created_by=actor, **counts)
    result = ExportResult(run_id, "running", dry_run, destination.description, counts,
                          audience.model_versions)
    if dry_run:
        result.status = "succeeded"
        result.changes = {action: [c.customer_id for c in diff.changes if c.action == action]
                          for action in ("add", "update", "remove")}
        result.samples = [{"action": c.action, **c.payload}
                          for c in diff.changes[:SAMPLE_SIZE]]
        history.finish_run(settings, run_id, "succeeded", counts, "dry run")
    else:
        _send(settings, run_id, key, destination, audience, diff, batch_size, progress, result)
    history.write_audit(settings, actor, "audience.export.dry_run" if dry_run
                        else "audience.export", key,
                        {"run_id": run_id, "status": result.status, "version": audience.version,
                         "as_of": audience.as_of, **result.counts})
    return result


def _send(settings: Settings, run_id: int, key: str, destination: Destination,
          audience: Audience, diff: AudienceDiff, batch_size: int, progress: Progress,
          result: ExportResult) -> None:
    try:
        _retire_unfinished(settings, key, run_id)
        outbox.enqueue_changes(settings, run_id, diff.changes)
        if destination.snapshot:
            _write_snapshot(settings, run_id, key, destination, audience)
        else:
            _deliver(settings, run_id, key, destination, batch_size, progress)
    except BaseException as error:
        reason = str(error) or type(error).__name__
        history.finish_run(settings, run_id, "failed", {}, f"stopped: {reason}"[:1000])
        history.write_audit(settings, current_user(), "audience.export", key,
                            {"run_id": run_id, "status": "failed", "error": reason})
        raise
    result.status, sent = _final_counts(settings, run_id)
    result.counts.update(sent)
    history.finish_run(settings, run_id, result.status, result.counts)
    progress("Done", 1.0)


def _withdrawn(settings: Settings, run: dict, customer_ids: list[str]) -> list[str]:
    """Those among ``customer_ids`` no longer reachable on the run's channel."""
    if not customer_ids:
        return []
    from studio.sql import to_sql

    ids = sa.select(customers.c.customer_id).where(customers.c.customer_id.in_(customer_ids))
    with connect_reader(settings) as con:
        sql, params = to_sql(consented_members(con, ids, run["channel"]))
        reachable = {row[0] for row in con.execute(sql, params).fetchall()}
    return sorted(set(customer_ids) - reachable)


def resume_run(settings: Settings, run_id: int,
               destination_spec: str | Destination | None = None, *,
               progress: Progress | None = None, batch_size: int = BATCH_SIZE) -> ExportResult:
    """Finish an interrupted run: deliver its unconfirmed items, never the confirmed ones.

    Consent is checked again first; members who withdrew it meanwhile become dead letters.
    The destination is rebuilt from the run's stored description unless one is given (it
    must be, when the description hides a password).

    Raises
    ------
    UserError
        When the run is unknown, has nothing left to send, was superseded by a later run,
        or wrote a file (files are written whole: export again instead).
    """
    progress = progress or (lambda _label, _fraction: None)
    run = history.get_run(settings, run_id)
    if run["dry_run"] or not outbox.due_items(settings, run_id, limit=1):
        raise UserError(f"Export run {run_id} has nothing left to send.")
    if history.latest_run_id(settings, run["audience_key"]) != run_id:
        raise UserError(f"Export run {run_id} was followed by a later export of the same "
                        "audience; export again instead of resuming it.")
    if destination_spec is None:
        if "***" in run["destination"]:
            raise UserError(f"Run {run_id}'s destination hides a password; give it again "
                            "with --to to resume.")
        destination_spec = run["destination"]
    destination = (parse_destination(destination_spec) if isinstance(destination_spec, str)
                   else destination_spec)
    if hasattr(destination, "for_audience") and destination.segment is None:
        destination = destination.for_audience(run["segment"], run["channel"])
    if destination.snapshot:
        raise UserError(f"Run {run_id} wrote a file, which is written whole; export again.")
    sendable = [c.customer_id for c in outbox.due_items(settings, run_id)
                if c.action != "remove"]
    outbox.abandon_items(settings, run_id, _withdrawn(settings, run, sendable),
                         "consent withdrawn before sending; not sent")
    _deliver(settings, run_id, run["audience_key"], destination, batch_size, progress)
    status, sent = _final_counts(settings, run_id)
    counts = {k: run[k] for k in ("matched", "consented", "to_add", "to_update", "to_remove",
                                  "unchanged")} | sent
    history.finish_run(settings, run_id, status, counts, "resumed")
    history.write_audit(settings, current_user(), "audience.export.resume",
                        run["audience_key"], {"run_id": run_id, "status": status, **counts})
    return ExportResult(run_id, status, False, run["destination"], counts,
                        run["model_versions"])
