"""Fixtures for the segment tests: the hand-made store, opened as the pages open it."""

from __future__ import annotations

import pytest

from studio.warehouse import connect_reader
from tests.segments.handmade import build_store


@pytest.fixture
def shop(settings):
    """Settings whose warehouse is the hand-made store."""
    build_store(settings.warehouse_path)
    return settings


@pytest.fixture
def con(shop):
    """A sealed read-only connection to the hand-made store."""
    connection = connect_reader(shop)
    yield connection
    connection.close()
