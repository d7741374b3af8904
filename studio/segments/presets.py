"""Presets: ready-made segments that ship with the studio as JSON files in ``presets/``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from studio.segments.definition import SegmentDefinition, parse_definition

PRESET_DIR = Path(__file__).with_name("presets")


@cache
def presets() -> dict[str, SegmentDefinition]:
    """Every preset by its slug (the file name without ``.json``)."""
    return {path.stem: parse_definition(json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(PRESET_DIR.glob("*.json"))}
