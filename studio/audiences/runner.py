"""One export run: build, diff, queue, deliver, confirm, count, audit.

A run is a snapshot of what was decided (segment version, ``as_of``, top N, destination,
score model versions, who and when) and of how it went. Each change is queued in the
outbox before it is sent (a thread queues them just ahead of the sending) and marked sent
only when the destination confirms it, in the same transaction that records the
destination's new state; a file, written whole, keeps its members' hashes instead. A run
that dies half-way
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

import polars as pl

from studio.audiences import history, outbox
from studio.audiences.audience import Audience, build_audience
from studio.audiences.consent_gate import ConsentGate
from studio.audiences.destinations import Destination, parse_destination
from studio.audiences.diff import (
    AudienceDiff,
    Change,
    changes_of,
    compare_payloads,
    compare_snapshots,
    payload_frame,
    payload_of,
    row_hashes,
)
from studio.config import Settings
from studio.errors import UserError
from studio.segments.library import current_user
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


WITHDRAWN_BEFORE_SENDING = "consent withdrawn before sending; not sent"


def _needing_consent(changes: list[Change] | pl.DataFrame) -> list[str]:
    """The customer ids of ``changes`` that would be sent: every action but removals."""
    if isinstance(changes, pl.DataFrame):
        return changes.filter(pl.col("action") != "remove")["customer_id"].to_list()
    return [c.customer_id for c in changes if c.action != "remove"]


def _deliver_batch(settings: Settings, run_id: int, key: str, destination: Destination,
                   batch: list[Change], gate: ConsentGate,
                   next_ids: list[str] | None = None) -> int:
    """Re-check consent, send one batch and record its results; return how many it confirmed.

    Consent is read afresh from the warehouse just before the batch leaves, so a person who
    unsubscribed after the audience was built (an ETL load published meanwhile) becomes a
    dead letter with that reason instead of being sent. Removals need no consent.
    ``next_ids`` starts the next batch's check while this one is on the wire.
    """
    withdrawn = set(gate.withdrawn(_needing_consent(batch)))
    if next_ids is not None:
        gate.check_ahead(next_ids)
    if withdrawn:
        outbox.abandon_items(settings, run_id, sorted(withdrawn), WITHDRAWN_BEFORE_SENDING)
        batch = [c for c in batch if c.customer_id not in withdrawn]
    if not batch:
        return 0
    results = destination.deliver(batch)
    outbox.record_results(settings, run_id, key, batch, results)
    return sum(result.ok for result in results)


def _deliver(settings: Settings, run_id: int, key: str, destination: Destination,
             batch_size: int, progress: Progress, gate: ConsentGate) -> None:
    """Send the run's due items in batches until none is left (or all are dead).

    Items are read in passes along the outbox from a cursor, so a batch costs the same
    whatever was sent before it; an item that failed is tried again in the next pass.
    Each batch's results are recorded before the next batch is sent.
    """
    total = max(1, outbox.item_counts(settings, run_id)["pending"])
    done = after = 0
    while True:
        batch, last = outbox.due_batch(settings, run_id, after=after, limit=batch_size)
        if not batch:
            if after == 0:  # a whole pass found nothing due
                return
            after = 0
            continue
        after = last
        done += _deliver_batch(settings, run_id, key, destination, batch, gate)
        progress(f"Sending to {destination.kind}", min(done / total, 1.0))


def _queue_and_deliver(settings: Settings, run_id: int, key: str, destination: Destination,
                       changes: pl.DataFrame, batch_size: int, progress: Progress,
                       gate: ConsentGate) -> None:
    """Queue the changes and send them, the first batch as soon as it is queued.

    The first pass takes the batches from memory while a thread queues them just ahead
    (:class:`~studio.audiences.outbox.BackgroundQueue`); whatever failed is then retried
    from the outbox by :func:`_deliver`.
    """
    done = 0
    gate.check_ahead(_needing_consent(changes.head(batch_size)))
    with outbox.BackgroundQueue(settings, run_id, changes, batch_size) as queue:
        for start in range(0, changes.height, batch_size):
            chunk = changes.slice(start, batch_size)
            queue.wait_for(start + chunk.height)
            batch = changes_of(chunk)
            following = changes.slice(start + batch_size, batch_size)
            next_ids = _needing_consent(following) if following.height else None
            done += _deliver_batch(settings, run_id, key, destination, batch, gate, next_ids)
            progress(f"Sending to {destination.kind}", min(done / changes.height, 1.0))
    _deliver(settings, run_id, key, destination, batch_size, progress, gate)


def _write_snapshot(settings: Settings, key: str, destination: Destination,
                    audience: Audience, hashes: pl.DataFrame) -> None:
    """Write the whole audience, then keep its member hashes as what the file holds."""
    destination.write_snapshot(audience.rows)
    outbox.save_snapshot_state(settings, key, hashes)


def _final_counts(settings: Settings, run_id: int) -> tuple[str, dict[str, int]]:
    items = outbox.item_counts(settings, run_id)
    undelivered = items["failed"] + items["dead"] + items["pending"]
    status = ("succeeded" if not undelivered else
              "failed" if not items["sent"] else "partial")
    return status, {"sent": items["sent"], "failed": items["failed"] + items["pending"],
                    "dead": items["dead"]}


def batch_size_for(destination: Destination, chosen: int | None) -> int:
    """``chosen``, else the destination's own batch size, else :data:`BATCH_SIZE`."""
    return chosen or getattr(destination, "batch_size", BATCH_SIZE)


def finish_delivered_again(settings: Settings, run: dict, message: str, audit_action: str,
                           audit_details: dict | None = None) -> ExportResult:
    """Close a run whose outbox was delivered again (a resume or a retry of dead letters).

    The run keeps the counts it decided when it ran; its deliveries are counted afresh from
    the outbox, recorded with ``message`` and audited as ``audit_action``.
    """
    run_id = run["run_id"]
    status, sent = _final_counts(settings, run_id)
    counts = {k: run[k] for k in ("matched", "consented", "to_add", "to_update", "to_remove",
                                  "unchanged")} | sent
    history.finish_run(settings, run_id, status, counts, message)
    history.write_audit(settings, current_user(), audit_action, run["audience_key"],
                        {"run_id": run_id, "status": status, **(audit_details or {}), **counts})
    return ExportResult(run_id, status, False, run["destination"], counts,
                        run["model_versions"])


def _diff_counts(audience: Audience, diff: AudienceDiff) -> dict[str, int]:
    return {"matched": audience.matched, "consented": audience.rows.height,
            "to_add": diff.count("add"), "to_update": diff.count("update"),
            "to_remove": diff.count("remove"), "unchanged": diff.unchanged}


def _for_audience(destination_spec: str | Destination, segment: str,
                  channel: str) -> Destination:
    destination = (parse_destination(destination_spec) if isinstance(destination_spec, str)
                   else destination_spec)
    if hasattr(destination, "for_audience") and destination.segment is None:
        destination = destination.for_audience(segment, channel)  # the tag and channel status
    return destination


def destination_of_run(run: dict, destination_spec: str | Destination | None) -> Destination:
    """A past run's destination, rebuilt from its stored description unless one is given.

    Raises
    ------
    UserError
        When the stored description hides a password or a URL query (it must then be
        given again) or the destination writes files, which are written whole and never
        resumed or retried item by item.
    """
    if destination_spec is None:
        if "***" in run["destination"]:
            raise UserError(f"Run {run['run_id']}'s destination hides a password or a URL "
                            "query; give the destination again (--to) to send to it.")
        destination_spec = run["destination"]
    destination = _for_audience(destination_spec, run["segment"], run["channel"])
    if destination.snapshot:
        raise UserError(f"Run {run['run_id']} wrote a file, which is written whole; "
                        "export again instead.")
    return destination


def _decide(settings: Settings, key: str, destination: Destination,
            rows: pl.DataFrame) -> tuple[pl.DataFrame, AudienceDiff]:
    """What each member's state will be once delivered, and the diff against the last one.

    A file is compared by row hashes with the file it replaces; a destination that takes
    batches, by payload hashes with what it confirmed.
    """
    if destination.snapshot:
        hashes = row_hashes(rows)
        return hashes, compare_snapshots(hashes, outbox.snapshot_state(settings, key))
    payloads = payload_frame(rows)
    return payloads, compare_payloads(payloads, outbox.delivered_state(settings, key),
                                      mirror=destination.mirror)


def _dry_run_details(result: ExportResult, diff: AudienceDiff, rows: pl.DataFrame) -> None:
    result.changes = {action: diff.ids(action) for action in ("add", "update", "remove")}
    first = diff.frame.head(SAMPLE_SIZE)
    found = {row["customer_id"]: row for row in rows.filter(
        pl.col("customer_id").is_in(first["customer_id"].implode())).iter_rows(named=True)}
    result.samples = [{"action": action, **(payload_of(found[customer_id])
                                            if action != "remove" else
                                            {"customer_id": customer_id})}
                      for customer_id, action in first.select("customer_id", "action").rows()]


def export_audience(settings: Settings, segment: str, destination_spec: str | Destination, *,
                    version: int | None = None, as_of: datetime | None = None,
                    channel: str = "email", top_n: int | None = None,
                    score_target: str | None = None, dry_run: bool = False,
                    progress: Progress | None = None,
                    batch_size: int | None = None) -> ExportResult:
    """Export the saved segment ``segment`` to a destination (a spec or a destination object).

    ``consented`` counts the members reachable on ``channel`` after any top N. A dry run
    records the run and an audit entry and returns the counts, the diff and sample
    payloads, but queues and sends nothing. ``batch_size`` defaults to the destination's
    own (``destination.batch_size``: 1,000 for the send engine), else :data:`BATCH_SIZE`.

    Raises
    ------
    UserError
        For a bad spec, an unknown segment, or an export of the same audience still running.
    """
    progress = progress or (lambda _label, _fraction: None)
    destination = _for_audience(destination_spec, segment, channel)
    batch_size = batch_size_for(destination, batch_size)
    progress("Building the audience", 0.0)
    with connect_reader(settings) as con:
        audience = build_audience(settings, con, segment, version=version, as_of=as_of,
                                  channel=channel, top_n=top_n, score_target=score_target)
    key = audience_key(segment, destination)
    state, diff = _decide(settings, key, destination, audience.rows)
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
        _dry_run_details(result, diff, audience.rows)
        history.finish_run(settings, run_id, "succeeded", counts, "dry run")
    else:
        _send(settings, run_id, key, destination, (audience, state, diff), batch_size,
              progress, result)
    history.write_audit(settings, actor, "audience.export.dry_run" if dry_run
                        else "audience.export", key,
                        {"run_id": run_id, "status": result.status, "version": audience.version,
                         "as_of": audience.as_of, **result.counts})
    return result


def _send(settings: Settings, run_id: int, key: str, destination: Destination,
          decided: tuple[Audience, pl.DataFrame, AudienceDiff], batch_size: int,
          progress: Progress, result: ExportResult) -> None:
    """Deliver a real run: the file written whole, or the changes queued and sent."""
    audience, state, diff = decided
    try:
        _retire_unfinished(settings, key, run_id)
        if destination.snapshot:
            _write_snapshot(settings, key, destination, audience, state)
            status, sent = "succeeded", {"sent": diff.frame.height, "failed": 0, "dead": 0}
        else:
            with ConsentGate(settings, audience.channel) as gate:
                _queue_and_deliver(settings, run_id, key, destination, diff.frame, batch_size,
                                   progress, gate)
            status, sent = _final_counts(settings, run_id)
    except BaseException as error:
        reason = str(error) or type(error).__name__
        history.finish_run(settings, run_id, "failed", {}, f"stopped: {reason}"[:1000])
        history.write_audit(settings, current_user(), "audience.export", key,
                            {"run_id": run_id, "status": "failed", "error": reason})
        raise
    result.status = status
    result.counts.update(sent)
    history.finish_run(settings, run_id, result.status, result.counts)
    progress("Done", 1.0)


def resume_run(settings: Settings, run_id: int,
               destination_spec: str | Destination | None = None, *,
               progress: Progress | None = None, batch_size: int | None = None) -> ExportResult:
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
    decided = run["to_add"] + run["to_update"] + run["to_remove"]
    if sum(outbox.item_counts(settings, run_id).values()) < decided:
        raise UserError(f"Export run {run_id} stopped before it had queued all its changes; "
                        "export again instead of resuming it.")
    destination = destination_of_run(run, destination_spec)
    with ConsentGate(settings, run["channel"]) as gate:
        _deliver(settings, run_id, run["audience_key"], destination,
                 batch_size_for(destination, batch_size), progress, gate)
    return finish_delivered_again(settings, run, "resumed", "audience.export.resume")
