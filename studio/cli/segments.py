"""``studio segments``: count, list, show, save, members and snapshots from a terminal.

A segment is named by DEF_OR_NAME: a saved segment's name, a preset (``preset:SLUG`` or
just ``SLUG``), a ``.json``/``.yaml`` file, or inline JSON (``'{"rule": ...}'``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from studio.cli.output import out, print_json, print_table
from studio.config import load_settings

segments_app = typer.Typer(help="Define, count and save audiences.", no_args_is_help=True)

AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Resolve relative dates against this date (default: the data's latest).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _as_of(text: str | None):
    if text is None:
        return None
    from studio.segments.definition import parse_timestamp

    return parse_timestamp(text, "--as-of")


def _context(reference: str):
    from studio.segments.library import resolve_definition, resolver
    from studio.warehouse import connect_reader

    settings = load_settings()
    definition = resolve_definition(settings, reference)
    return settings, definition, connect_reader(settings), resolver(settings)


@segments_app.command("count")
def count(reference: Annotated[str, typer.Argument(metavar="DEF_OR_NAME")], as_of: AsOf = None,
          as_json: Json = False) -> None:
    """Count the segment: matched, and sendable by e-mail and SMS."""
    from studio.segments import operations

    _, definition, con, resolve = _context(reference)
    result = operations.count(con, definition, _as_of(as_of), resolve)
    if as_json:
        print_json(result.to_dict())
        return
    out.print(f"{definition.name} as of {result.as_of:%Y-%m-%d %H:%M}: "
              f"{result.matched:,} matched, {result.email_sendable:,} e-mail sendable, "
              f"{result.sms_sendable:,} SMS sendable")


@segments_app.command("list")
def list_segments(as_json: Json = False) -> None:
    """List saved segments and the presets that ship with the studio."""
    from studio.segments.library import list_segments as saved
    from studio.segments.presets import presets

    rows = [{**s, "kind": "saved"} for s in saved(load_settings())]
    rows += [{"name": f"preset:{slug}", "version": None, "updated_at": None,
              "updated_by": None, "kind": "preset", "title": d.name}
             for slug, d in presets().items()]
    if as_json:
        print_json(rows)
        return
    print_table("Segments", rows, ["name", "kind", "version", "updated_at", "updated_by"])


@segments_app.command("show")
def show(reference: Annotated[str, typer.Argument(metavar="DEF_OR_NAME")],
         version: Annotated[int | None, typer.Option(help="An older saved version.")] = None,
         history: Annotated[bool, typer.Option(help="List every saved version.")] = False,
         sql: Annotated[bool, typer.Option(help="Print the SQL it runs.")] = False,
         as_of: AsOf = None, as_json: Json = False) -> None:
    """Show a segment's definition, its versions, or its SQL."""
    from studio.segments import library, operations
    from studio.segments.definition import definition_to_document

    settings = load_settings()
    if history:
        versions = library.segment_history(settings, reference)
        if as_json:
            print_json(versions)
        else:
            print_table(f"Versions of {reference}", versions,
                        ["version", "created_at", "created_by", "note"])
        return
    definition = (library.load_segment(settings, reference, version) if version
                  else library.resolve_definition(settings, reference))
    if sql:
        from studio.warehouse import connect_reader

        con = connect_reader(settings)
        moment = _as_of(as_of) or definition.as_of or operations.default_as_of(con)
        text = operations.show_sql(definition, moment, library.resolver(settings),
                                   has_scores=operations.has_table(con, "scores"))
        print_json({"sql": text}) if as_json else out.print(text, highlight=False)
        return
    print_json(definition_to_document(definition))


@segments_app.command("save")
def save(source: Annotated[str, typer.Argument(metavar="DEF", help="A file, inline JSON or a "
                                                "preset to save.")],
         name: Annotated[str | None, typer.Option(help="Save under this name.")] = None,
         note: Annotated[str, typer.Option(help="What changed, for the history.")] = "",
         as_json: Json = False) -> None:
    """Save a segment as a new version (nothing new if the rule did not change)."""
    from dataclasses import replace

    from studio.segments import library

    settings = load_settings()
    definition = library.resolve_definition(settings, source)
    if name:
        definition = replace(definition, name=name)
    saved = library.save_segment(settings, definition, note=note)
    if as_json:
        print_json(saved)
    elif saved["new"]:
        out.print(f"Saved {saved['name']!r} as version {saved['version']}.")
    else:
        out.print(f"{saved['name']!r} is unchanged; it stays at version {saved['version']}.")


@segments_app.command("members")
def members(reference: Annotated[str, typer.Argument(metavar="DEF_OR_NAME")], as_of: AsOf = None,
            output: Annotated[Path | None, typer.Option(
                "--output", "-o", help="Write the members to this CSV file.")] = None,
            limit: Annotated[int, typer.Option(help="Rows to print.")] = 20,
            as_json: Json = False) -> None:
    """List the segment's members (with their key attributes)."""
    from studio.segments import operations

    _, definition, con, resolve = _context(reference)
    if output is not None:
        ids = operations.members(con, definition, _as_of(as_of), resolve)
        with open(output, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id"])
            writer.writerows([i] for i in ids)
        out.print(f"Wrote {len(ids):,} members to {output}.")
        return
    page = operations.preview(con, definition, _as_of(as_of), resolve, limit=limit)
    if as_json:
        print_json(page.to_dicts())
        return
    print_table(f"{definition.name} (first {limit})", page.to_dicts())


@segments_app.command("snapshot")
def snapshot(name: Annotated[str, typer.Argument(help="A saved segment.")], as_of: AsOf = None,
             list_them: Annotated[bool, typer.Option("--list", help="List snapshots.")] = False,
             compare: Annotated[tuple[int, int] | None, typer.Option(
                 help="Compare two snapshot ids: who entered, who left.")] = None,
             as_json: Json = False) -> None:
    """Record who is in a saved segment as of a date; list or compare snapshots."""
    from studio.segments import library
    from studio.warehouse import connect_reader

    settings = load_settings()
    if list_them:
        rows = library.list_snapshots(settings, name)
        print_json(rows) if as_json else print_table(f"Snapshots of {name}", rows)
        return
    if compare:
        diff = library.compare_snapshots(settings, *compare)
        if as_json:
            print_json(diff)
        else:
            out.print(f"{len(diff['entered']):,} entered, {len(diff['left']):,} left, "
                      f"{diff['stayed']:,} stayed between snapshots {compare[0]} and {compare[1]}.")
        return
    taken = library.take_snapshot(settings, connect_reader(settings), name, _as_of(as_of))
    if as_json:
        print_json(taken)
    else:
        out.print(f"Snapshot {taken['snapshot_id']}: {taken['members']:,} members of "
                  f"{name!r} v{taken['version']} as of {taken['as_of']:%Y-%m-%d %H:%M}.")


