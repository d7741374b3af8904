"""``studio audiences``: export saved segments, follow and retry runs, keep audiences in sync."""

from __future__ import annotations

from typing import Annotated

import typer

from studio.cli.output import out, print_json, print_table, progress_bar
from studio.config import load_settings

audiences_app = typer.Typer(help="Export saved segments to files, databases and send engines.",
                            no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DESTINATION_HELP = ("csv:PATH, parquet:PATH, sql:URL#TABLE, omnisend:BASE_URL (key in "
                    "STUDIO_OMNISEND_API_KEY) or webhook:URL (secret in STUDIO_WEBHOOK_SECRET).")
RunId = Annotated[int, typer.Argument(help="The run's id (see 'studio audiences runs').")]
ToAgain = Annotated[str | None, typer.Option(
    "--to", help="The destination again, when the stored one hides a password.")]


@audiences_app.command("export")
def export(
    segment: Annotated[str, typer.Argument(help="The saved segment's name.")],
    to: Annotated[str, typer.Option(
        "--to", help=DESTINATION_HELP)],
    version: Annotated[int | None, typer.Option(help="A saved version (default: latest).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Evaluate the segment at this date (default: the data's latest).")] = None,
    channel: Annotated[str, typer.Option(
        help="Consent channel checked before sending: email or sms.")] = "email",
    top: Annotated[int | None, typer.Option("--top", help="Keep the N best by a score.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="The score target for --top.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show counts, the diff and samples; send nothing.")] = False,
    as_json: Json = False,
) -> None:
    """Export a saved segment's consented members; only changes since the last export are sent."""
    from studio.audiences.runner import export_audience
    from studio.segments.definition import parse_timestamp

    settings = load_settings()
    moment = parse_timestamp(as_of, "--as-of") if as_of else None
    with progress_bar(enabled=not as_json) as update:
        result = export_audience(settings, segment, to, version=version, as_of=moment,
                                 channel=channel, top_n=top, score_target=by, dry_run=dry_run,
                                 progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    c = result.counts
    out.print(f"{'Dry run' if dry_run else 'Run'} {result.run_id} {result.status}: "
              f"{c['matched']:,} matched, {c['consented']:,} consented; "
              f"{c['to_add']:,} to add, {c['to_update']:,} to update, "
              f"{c['to_remove']:,} to remove, {c['unchanged']:,} unchanged"
              + ("" if dry_run else f"; {c.get('sent', 0):,} sent, {c.get('failed', 0):,} "
                 f"failed, {c.get('dead', 0):,} dead"), highlight=False)
    for sample in result.samples:
        out.print(sample, highlight=False)


@audiences_app.command("runs")
def runs(as_json: Json = False) -> None:
    """List export runs, newest first, with their status and counts."""
    from studio.audiences.history import list_runs

    listed = list_runs(load_settings())
    if as_json:
        print_json(listed)
        return
    if not listed:
        out.print("No exports yet; run 'studio audiences export SEGMENT --to csv:PATH'.")
        return
    print_table("Export runs", listed, ["run_id", "segment", "segment_version", "destination",
                                        "status", "dry_run", "started_at", "consented",
                                        "sent", "failed", "dead", "created_by"])


def _send_again(verb: str, send, run_id: int, to: str | None, as_json: bool) -> None:
    """Run ``send(settings, run_id, to, progress=...)`` with a bar; print what it did."""
    with progress_bar(enabled=not as_json) as update:
        result = send(load_settings(), run_id, to, progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    c = result.counts
    out.print(f"{verb} run {result.run_id} {result.status}: {c.get('sent', 0):,} sent, "
              f"{c.get('failed', 0):,} failed, {c.get('dead', 0):,} dead", highlight=False)


@audiences_app.command("resume")
def resume(run_id: RunId, to: ToAgain = None, as_json: Json = False) -> None:
    """Finish a run that was killed or stopped: send its unconfirmed members, nobody twice."""
    from studio.audiences.runner import resume_run

    _send_again("Resumed", resume_run, run_id, to, as_json)


@audiences_app.command("retry")
def retry(run_id: RunId, to: ToAgain = None, as_json: Json = False) -> None:
    """Send a run's dead letters again, after re-checking consent."""
    from studio.audiences.retry import retry_dead_letters

    _send_again("Retried", retry_dead_letters, run_id, to, as_json)


@audiences_app.command("dead")
def dead(run_id: Annotated[int | None, typer.Argument(
        help="One run's dead letters (default: all).")] = None, as_json: Json = False) -> None:
    """List dead letters: members that failed every attempt, with the last error."""
    from studio.audiences.outbox import dead_letters

    listed = [{k: item[k] for k in ("run_id", "customer_id", "action", "attempts",
                                    "last_error", "updated_at")}
              for item in dead_letters(load_settings(), run_id)]
    if as_json:
        print_json(listed)
    elif not listed:
        out.print("No dead letters.")
    else:
        print_table("Dead letters", listed, list(listed[0]))


@audiences_app.command("schedule")
def schedule(
    segment: Annotated[str, typer.Argument(help="The saved segment's name.")],
    to: Annotated[str, typer.Option("--to", help=DESTINATION_HELP)],
    channel: Annotated[str, typer.Option(help="Consent channel: email or sms.")] = "email",
    top: Annotated[int | None, typer.Option("--top", help="Keep the N best by a score.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="The score target for --top.")] = None,
) -> None:
    """Keep a segment's audience in sync at a destination on every 'studio audiences sync'."""
    from studio.audiences.schedules import save_schedule

    schedule_id = save_schedule(load_settings(), segment, to, channel=channel, top_n=top,
                                score_target=by)
    out.print(f"Schedule {schedule_id}: {segment} -> {to} ({channel}); run "
              "'studio audiences sync' from cron to refresh it.", highlight=False)


@audiences_app.command("schedules")
def schedules(as_json: Json = False) -> None:
    """List scheduled exports and how their last sync went."""
    from studio.audiences.schedules import list_schedules

    listed = list_schedules(load_settings())
    if as_json:
        print_json(listed)
    elif not listed:
        out.print("No schedules; add one with 'studio audiences schedule SEGMENT --to DEST'.")
    else:
        print_table("Scheduled exports", listed, ["schedule_id", "segment", "destination",
                                                  "channel", "top_n", "score_target",
                                                  "last_run_id", "last_status",
                                                  "last_synced_at", "last_error"])


@audiences_app.command("unschedule")
def unschedule(schedule_id: Annotated[int, typer.Argument(help="The schedule's id.")]) -> None:
    """Stop syncing a scheduled export (its runs stay in the history)."""
    from studio.audiences.schedules import remove_schedule

    remove_schedule(load_settings(), schedule_id)
    out.print(f"Schedule {schedule_id} removed.")


@audiences_app.command("sync")
def sync(as_json: Json = False) -> None:
    """Refresh every scheduled export (for cron); exits with 1 when any of them failed."""
    from studio.audiences.schedules import sync_schedules

    with progress_bar(enabled=not as_json) as update:
        outcomes = sync_schedules(load_settings(), progress=update)
    if as_json:
        print_json(outcomes)
    elif not outcomes:
        out.print("No schedules to sync; add one with 'studio audiences schedule'.")
    else:
        for o in outcomes:
            c = o["counts"]
            detail = (o["error"] if o["error"] else
                      f"{c.get('to_add', 0):,} added, {c.get('to_update', 0):,} updated, "
                      f"{c.get('to_remove', 0):,} removed, {c.get('sent', 0):,} sent, "
                      f"{c.get('dead', 0):,} dead")
            out.print(f"{o['segment']} -> {o['destination']}: {o['status']} "
                      f"(run {o['run_id']}): {detail}", highlight=False)
    if any(o["status"] != "succeeded" for o in outcomes):
        raise typer.Exit(1)
