"""Shared fixtures: a generated demo store, loaded into a real warehouse once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEMO_CUSTOMERS = 5_000
DEMO_SEED = 7


def make_settings(home: Path) -> Settings:
    """Settings for a throw-away studio home (SQLite state database inside it)."""
    home.mkdir(parents=True, exist_ok=True)
    return Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An empty studio home; STUDIO_HOME points at it for code that reads the environment."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    return make_settings(tmp_path / "home")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generator's source files for a 5,000-customer store (seed 7)."""
    from etl.generate import generate_store

    out = tmp_path_factory.mktemp("demo-store")
    generate_store(out, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    return out


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, demo_store: Path) -> Settings:
    """A studio home whose warehouse holds the demo store, loaded by the real ETL.

    Session-scoped and shared: tests must only read it.
    """
    from etl.load import load_files

    settings = make_settings(tmp_path_factory.mktemp("demo-home"))
    load_files(settings, [demo_store], mapping="canonical")
    return settings
