"""Saved segments in the state database: versions, history, snapshots.

Saving a rule under a name adds a version (unless it is the same rule as the latest);
old versions stay readable, each with who saved it and when. A snapshot records the
members of a segment's latest version as of a date; two snapshots compared say who
entered and who left.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime

import duckdb
import sqlalchemy as sa

from studio.config import Settings
from studio.errors import UserError
from studio.segments import operations
from studio.segments.compiler import SegmentResolver
from studio.segments.definition import (
    SegmentDefinition,
    definition_to_json,
    parse_definition,
)
from studio.state import (
    segment_snapshot_members,
    segment_snapshots,
    segment_versions,
    segments,
    state_engine,
)


def current_user() -> str:
    """Who is acting: ``STUDIO_USER`` if set, else the operating-system user."""
    return os.environ.get("STUDIO_USER") or getpass.getuser() or "unknown"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _segment_id(connection, name: str) -> int | None:
    return connection.execute(sa.select(segments.c.segment_id)
                              .where(segments.c.name == name)).scalar()


def save_segment(settings: Settings, definition: SegmentDefinition, user: str | None = None,
                 note: str = "") -> dict:
    """Save ``definition`` under its name as a new version; return ``{name, version, new}``."""
    if not definition.name.strip() or definition.name == "Untitled segment":
        raise UserError("A saved segment needs a name; give the segment a 'name'.")
    user = user or current_user()
    text = definition_to_json(definition)
    with state_engine(settings).begin() as connection:
        segment_id = _segment_id(connection, definition.name)
        if segment_id is None:
            segment_id = connection.execute(sa.insert(segments).values(
                name=definition.name, created_at=_now(), created_by=user)
            ).inserted_primary_key[0]
        latest = connection.execute(
            sa.select(segment_versions.c.version, segment_versions.c.definition)
            .where(segment_versions.c.segment_id == segment_id)
            .order_by(segment_versions.c.version.desc()).limit(1)).first()
        if latest is not None and latest.definition == text:
            return {"name": definition.name, "version": latest.version, "new": False}
        version = 1 if latest is None else latest.version + 1
        connection.execute(sa.insert(segment_versions).values(
            segment_id=segment_id, version=version, definition=text, created_at=_now(),
            created_by=user, note=note or None))
    return {"name": definition.name, "version": version, "new": True}


def list_segments(settings: Settings) -> list[dict]:
    """Every saved segment with its latest version, who saved it and when."""
    latest = (sa.select(segment_versions.c.segment_id,
                        sa.func.max(segment_versions.c.version).label("version"))
              .group_by(segment_versions.c.segment_id).subquery())
    query = (sa.select(segments.c.name, latest.c.version, segment_versions.c.created_at,
                       segment_versions.c.created_by)
             .join(latest, latest.c.segment_id == segments.c.segment_id)
             .join(segment_versions, sa.and_(
                 segment_versions.c.segment_id == latest.c.segment_id,
                 segment_versions.c.version == latest.c.version))
             .order_by(segments.c.name))
    with state_engine(settings).connect() as connection:
        return [{"name": r.name, "version": r.version, "updated_at": r.created_at,
                 "updated_by": r.created_by} for r in connection.execute(query)]


def load_segment(settings: Settings, name: str, version: int | None = None) -> SegmentDefinition:
    """The saved segment ``name`` (its latest version, or ``version``)."""
    with state_engine(settings).connect() as connection:
        segment_id = _segment_id(connection, name)
        if segment_id is None:
            known = [s["name"] for s in list_segments(settings)]
            hint = f"saved segments: {', '.join(known)}" if known else "none are saved yet"
            raise UserError(f"No saved segment is called {name!r} ({hint}).")
        query = sa.select(segment_versions.c.definition, segment_versions.c.version).where(
            segment_versions.c.segment_id == segment_id)
        if version is not None:
            query = query.where(segment_versions.c.version == version)
        row = connection.execute(query.order_by(segment_versions.c.version.desc())
                                 .limit(1)).first()
    if row is None:
        raise UserError(f"Segment {name!r} has no version {version}; "
                        "see 'studio segments show NAME --history'.")
    return parse_definition(row.definition)


def segment_history(settings: Settings, name: str) -> list[dict]:
    """All versions of ``name``, newest first, with their documents."""
    load_segment(settings, name)  # a clear error for an unknown name
    query = (sa.select(segment_versions).join(
        segments, segments.c.segment_id == segment_versions.c.segment_id)
        .where(segments.c.name == name).order_by(segment_versions.c.version.desc()))
    with state_engine(settings).connect() as connection:
        return [{"version": r.version, "created_at": r.created_at, "created_by": r.created_by,
                 "note": r.note, "definition": r.definition}
                for r in connection.execute(query)]


def resolver(settings: Settings) -> SegmentResolver:
    """Looks up saved segments by name for membership conditions."""
    return lambda name: load_segment(settings, name)


def take_snapshot(settings: Settings, con: duckdb.DuckDBPyConnection, name: str,
                  as_of: datetime | None = None, user: str | None = None) -> dict:
    """Record the members of segment ``name`` as of a date; return the snapshot's summary."""
    definition = load_segment(settings, name)
    moment = as_of or definition.as_of or operations.default_as_of(con)
    ids = operations.members(con, definition, moment, resolver(settings))
    version = segment_history(settings, name)[0]["version"]
    with state_engine(settings).begin() as connection:
        snapshot_id = connection.execute(sa.insert(segment_snapshots).values(
            segment_id=_segment_id(connection, name), version=version, as_of=moment,
            taken_at=_now(), taken_by=user or current_user(), members=len(ids))
        ).inserted_primary_key[0]
        if ids:
            connection.execute(sa.insert(segment_snapshot_members),
                               [{"snapshot_id": snapshot_id, "customer_id": i} for i in ids])
    return {"snapshot_id": snapshot_id, "name": name, "version": version,
            "as_of": moment, "members": len(ids)}


def list_snapshots(settings: Settings, name: str) -> list[dict]:
    """Snapshots of ``name``, newest first."""
    query = (sa.select(segment_snapshots).join(
        segments, segments.c.segment_id == segment_snapshots.c.segment_id)
        .where(segments.c.name == name).order_by(segment_snapshots.c.snapshot_id.desc()))
    with state_engine(settings).connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def compare_snapshots(settings: Settings, before_id: int, after_id: int) -> dict:
    """Who entered and who left between two snapshots."""
    def ids(connection, snapshot_id: int) -> set[str]:
        exists = connection.execute(sa.select(segment_snapshots.c.snapshot_id).where(
            segment_snapshots.c.snapshot_id == snapshot_id)).scalar()
        if exists is None:
            raise UserError(f"There is no snapshot {snapshot_id}; list them with "
                            "'studio segments snapshot NAME --list'.")
        return set(connection.execute(
            sa.select(segment_snapshot_members.c.customer_id)
            .where(segment_snapshot_members.c.snapshot_id == snapshot_id)).scalars())

    with state_engine(settings).connect() as connection:
        before, after = ids(connection, before_id), ids(connection, after_id)
    return {"before": before_id, "after": after_id, "entered": sorted(after - before),
            "left": sorted(before - after), "stayed": len(before & after)}


def resolve_definition(settings: Settings, reference: str) -> SegmentDefinition:
    """A segment from what a user typed: a file, inline JSON, a preset slug or a saved name.

    Presets may be written ``preset:SLUG`` or plain ``SLUG`` when no saved segment has
    that name.
    """
    from pathlib import Path

    from studio.segments.presets import presets

    text = reference.strip()
    if text.startswith("{"):
        return parse_definition(text)
    if text.startswith("preset:"):
        slug = text.removeprefix("preset:")
        if slug not in presets():
            raise UserError(f"No preset is called {slug!r}; presets: {', '.join(presets())}.")
        return presets()[slug]
    path = Path(text)
    if path.suffix.lower() in {".json", ".yaml", ".yml"}:
        if not path.is_file():
            raise UserError(f"Segment file {path} does not exist; check the path.")
        return parse_definition(path.read_text(encoding="utf-8"))
    saved = {s["name"] for s in list_segments(settings)}
    if text not in saved and text in presets():
        return presets()[text]
    return load_segment(settings, text)
