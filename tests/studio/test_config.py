"""Settings come from STUDIO_* variables, then .env, then defaults that need nothing."""

from __future__ import annotations

import pytest

from studio.config import load_settings
from studio.errors import UserError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("STUDIO_HOME", "STUDIO_STATE_URL", "STUDIO_QUARANTINE_THRESHOLD", "STUDIO_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_put_everything_under_dot_studio(clean_env):
    settings = load_settings()
    assert settings.home == clean_env / ".studio"
    assert settings.warehouse_path == clean_env / ".studio" / "warehouse.duckdb"
    assert settings.state_url == f"sqlite:///{clean_env / '.studio' / 'state.db'}"
    assert settings.quarantine_threshold == 0.05
    assert settings.port == 8501


def test_environment_beats_dotenv_which_beats_defaults(clean_env, monkeypatch):
    (clean_env / ".env").write_text("# team settings\nSTUDIO_HOME=from-dotenv\n"
                                    "STUDIO_QUARANTINE_THRESHOLD='0.1'\n")
    settings = load_settings()
    assert settings.home == clean_env / "from-dotenv"
    assert settings.quarantine_threshold == 0.1
    monkeypatch.setenv("STUDIO_HOME", str(clean_env / "from-env"))
    monkeypatch.setenv("STUDIO_STATE_URL", "postgresql://studio@localhost/studio")
    settings = load_settings()
    assert settings.home == clean_env / "from-env"
    assert settings.state_url == "postgresql://studio@localhost/studio"


@pytest.mark.parametrize("name, value, message", [
    ("STUDIO_QUARANTINE_THRESHOLD", "1.5", "between 0 and 1"),
    ("STUDIO_QUARANTINE_THRESHOLD", "five", "between 0 and 1"),
    ("STUDIO_PORT", "http", "must be a port number"),
])
def test_bad_values_are_named(clean_env, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=message):
        load_settings()
