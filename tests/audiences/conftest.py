"""Fixtures for the export tests: a writable copy of the demo store and a saved segment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.config import Settings
from studio.segments import library
from studio.segments.definition import parse_definition
from tests.conftest import make_settings

BENELUX = {"name": "Benelux", "rule": {"profile": {"field": "country", "op": "in",
                                                   "value": ["NL", "BE"]}}}


def benelux_home(demo_home, home: Path) -> Settings:
    """A new studio home at ``home``: the demo warehouse copied in, "Benelux" saved."""
    settings = make_settings(home)
    shutil.copyfile(demo_home.warehouse_path, settings.warehouse_path)
    library.save_segment(settings, parse_definition(BENELUX), user="ana")
    return settings


@pytest.fixture
def home(demo_home, tmp_path, monkeypatch):
    """Settings of a private copy of the demo home, which tests may write to."""
    target = tmp_path / "home"
    shutil.copytree(demo_home.home, target)
    monkeypatch.setenv("STUDIO_HOME", str(target))
    monkeypatch.setenv("STUDIO_USER", "tester")
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    return make_settings(target)


@pytest.fixture
def benelux(home):
    """The saved segment "Benelux" (version 1: customers in NL or BE)."""
    library.save_segment(home, parse_definition(BENELUX), user="ana")
    return "Benelux"
