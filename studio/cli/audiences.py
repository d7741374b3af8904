"""``studio audiences``: export a saved segment to a file or a database, and list the runs."""

from __future__ import annotations

from typing import Annotated

import typer

from studio.cli.output import out, print_json, print_table, progress_bar
from studio.config import load_settings

audiences_app = typer.Typer(help="Export saved segments to files, databases and send engines.",
                            no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@audiences_app.command("export")
def export(
    segment: Annotated[str, typer.Argument(help="The saved segment's name.")],
    to: Annotated[str, typer.Option(
        "--to", help="csv:PATH, parquet:PATH or sql:URL#TABLE.")],
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
