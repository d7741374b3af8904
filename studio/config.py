"""One settings object for the whole studio, read from ``STUDIO_*`` variables.

Every setting has a default that makes the demo run with no configuration. Values
come from the process environment first, then from a ``.env`` file in the working
directory, then from the defaults below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from studio.errors import UserError


def _read_dotenv(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines of a ``.env`` file, ignoring comments and blanks."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _lookup(name: str, dotenv: dict[str, str], default: str) -> str:
    return os.environ.get(name, dotenv.get(name, default))


def _as_fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number between 0 and 1, not {raw!r}.") from None
    if not 0 <= value <= 1:
        raise UserError(f"{name} must be a number between 0 and 1, not {raw!r}.")
    return value


@dataclass(frozen=True)
class Settings:
    """Where the studio keeps its files and how strict its ETL is.

    Attributes
    ----------
    home
        ``STUDIO_HOME``: the folder holding the warehouse, the state database and artifacts.
    state_url
        ``STUDIO_STATE_URL``: SQLAlchemy URL of the app's own records (saved segments,
        export runs, audit log, ETL run log). SQLite under ``home`` unless set, e.g. to a
        PostgreSQL URL for a team.
    quarantine_threshold
        ``STUDIO_QUARANTINE_THRESHOLD``: the share of a file's rows that may be quarantined
        before the whole ETL run is rolled back.
    """

    home: Path
    state_url: str
    quarantine_threshold: float = 0.05
    port: int = 8501

    @property
    def warehouse_path(self) -> Path:
        """The published DuckDB warehouse file that readers open read-only."""
        return self.home / "warehouse.duckdb"

    @property
    def artifacts_dir(self) -> Path:
        """Trained models and other generated artifacts."""
        return self.home / "artifacts"

    @property
    def demo_store_dir(self) -> Path:
        """Where ``studio demo`` writes the generated store's source files."""
        return self.home / "demo-store"

    def ensure_home(self) -> Path:
        """Create the home folder (and its parents) if it does not exist yet."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def load_settings() -> Settings:
    """Read the settings from the environment and ``.env``; fill in the defaults."""
    dotenv = _read_dotenv(Path.cwd() / ".env")
    home = Path(_lookup("STUDIO_HOME", dotenv, "./.studio")).expanduser().resolve()
    state_url = _lookup("STUDIO_STATE_URL", dotenv, "") or f"sqlite:///{home / 'state.db'}"
    threshold = _as_fraction(
        "STUDIO_QUARANTINE_THRESHOLD",
        _lookup("STUDIO_QUARANTINE_THRESHOLD", dotenv, "0.05"),
    )
    port_raw = _lookup("STUDIO_PORT", dotenv, "8501")
    if not port_raw.isdigit():
        raise UserError(f"STUDIO_PORT must be a port number, not {port_raw!r}.")
    return Settings(home=home, state_url=state_url, quarantine_threshold=threshold,
                    port=int(port_raw))
