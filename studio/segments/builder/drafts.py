"""Drafts: what the Segments page edits, and the segments a draft can start from.

A draft is a name, a description, a rule tree (:mod:`.tree`) and a pinned ``as_of``.
It starts blank, from a preset or from a saved segment (a *source* id such as
``preset:<slug>`` or ``saved:<name>``) and is written back as the segment document the
CLI takes. The overlap panel picks its segments from the same sources.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import polars as pl

from studio.config import Settings
from studio.errors import UserError
from studio.segments import library, presets
from studio.segments.builder.tree import blank_tree, rule_from_tree, tree_from_rule
from studio.segments.definition import (
    DefinitionError,
    SegmentDefinition,
    definition_to_json,
    node_to_document,
    parse_definition,
)


@dataclass(frozen=True)
class Draft:
    """What the page edits: a segment's name, description, tree and pinned ``as_of``."""

    name: str = ""
    description: str = ""
    tree: dict = field(default_factory=blank_tree)
    as_of: datetime | None = None


def draft_from_definition(definition: SegmentDefinition) -> Draft:
    """A draft holding ``definition``."""
    name = "" if definition.name == "Untitled segment" else definition.name
    return Draft(name, definition.description,
                 tree_from_rule(node_to_document(definition.rule)), definition.as_of)


def draft_from_text(text: str) -> Draft:
    """A draft from a JSON (or YAML) segment document typed by a person.

    Raises
    ------
    DefinitionError
        When the text is not a valid segment; its message says what and where.
    """
    if not text.strip():
        raise DefinitionError("The JSON box is empty; paste a segment such as "
                              '{"name": "...", "rule": {"all": [...]}}.')
    return draft_from_definition(parse_definition(text))


def segment_document(name: str, description: str, tree: dict,
                     as_of: datetime | None = None) -> dict:
    """The segment document of a draft: the JSON the CLI takes."""
    document: dict[str, Any] = {"name": name.strip() or "Untitled segment"}
    if description.strip():
        document["description"] = description.strip()
    document["rule"] = rule_from_tree(tree)
    if as_of is not None:
        document["as_of"] = as_of.isoformat(sep="T")
    return document


def document_text(document: dict) -> str:
    """The document as indented JSON for the "Edit as JSON" box."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def document_key(document: dict) -> str:
    """A short fingerprint of a document (a widget showing it starts afresh when it changes)."""
    return hashlib.sha1(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def sources(settings: Settings) -> dict[str, str]:
    """What a segment can start from, by source id: blank, each preset, each saved one."""
    found = {"blank": "Blank segment"}
    for slug, definition in presets.presets().items():
        found[f"preset:{slug}"] = f"Preset · {definition.name}"
    for saved in library.list_segments(settings):
        found[f"saved:{saved['name']}"] = (f"Saved · {saved['name']} "
                                           f"(v{saved['version']}, {saved['updated_by']})")
    return found


def load_definition(settings: Settings, source: str) -> SegmentDefinition | None:
    """The segment a source id names (``None`` for a blank one)."""
    if source == "blank":
        return None
    kind, _, name = source.partition(":")
    if kind == "preset":
        if name not in presets.presets():
            raise UserError(f"No preset is called {name!r}; presets: "
                            f"{', '.join(presets.presets())}.")
        return presets.presets()[name]
    if kind == "saved":
        return library.load_segment(settings, name)
    raise UserError(f"Unknown segment source {source!r}; choose a preset or a saved segment.")


def load_source(settings: Settings, source: str) -> Draft:
    """A draft started from a source id (see :func:`sources`)."""
    definition = load_definition(settings, source)
    return Draft() if definition is None else draft_from_definition(definition)


def history_rows(history: list[dict]) -> pl.DataFrame:
    """:func:`library.segment_history` as a table (without the documents)."""
    return pl.DataFrame(
        [{k: v for k, v in row.items() if k != "definition"} for row in history],
        schema={"version": pl.Int64, "created_at": pl.Datetime, "created_by": pl.String,
                "note": pl.String})


def saved_version(history: list[dict], document: dict) -> int | None:
    """The saved version whose rule and texts equal ``document``'s, if any."""
    text = definition_to_json(parse_definition(document))
    return next((row["version"] for row in history if row["definition"] == text), None)


def as_of_moment(chosen: date, default: datetime) -> datetime:
    """The moment counts are taken at for a date picked on the page.

    The default date stands for the default moment itself (the data's latest order, or
    the segment's pinned ``as_of``), so the page's numbers equal the CLI's; any other
    date means the end of that day.
    """
    if chosen == default.date():
        return default
    return datetime.combine(chosen, time(23, 59, 59))


def overlap_choices(settings: Settings) -> dict[str, str]:
    """Segments to overlap, by source id: presets and saved segments."""
    return {source: label for source, label in sources(settings).items() if source != "blank"}


def overlap_definitions(settings: Settings, chosen: Sequence[str],
                        current: SegmentDefinition | None = None) -> dict[str, SegmentDefinition]:
    """The chosen sources' definitions by a readable, unique name.

    ``"current"`` stands for the draft on the page (``current``).
    """
    found: dict[str, SegmentDefinition] = {}
    for source in chosen:
        if source == "current":
            if current is None:
                continue
            definition, name = current, f"{current.name} (draft)"
        else:
            definition = load_definition(settings, source)
            prefix, _, raw = source.partition(":")
            name = f"{definition.name} (preset)" if prefix == "preset" else raw
        while name in found:
            name += "'"
        found[name] = definition
    return found
