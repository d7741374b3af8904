"""The ETL run log in the state database: one row per attempt, whatever its outcome.

The warehouse only ever holds what successful runs published (their ledgers,
quarantine and expectation results); a failed run leaves it untouched, so its record
and reason live here.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from sqlalchemy import insert, update

from studio.config import Settings
from studio.state import etl_runs, state_engine


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(settings: Settings, mapping: str, paths: list[str]) -> int:
    """Record a run as running and return its id."""
    with state_engine(settings).begin() as connection:
        result = connection.execute(insert(etl_runs).values(
            started_at=_now(), status="running", mapping=mapping,
            paths=json.dumps(paths), pid=os.getpid()))
        return int(result.inserted_primary_key[0])


def finish_run(settings: Settings, run_id: int, status: str, message: str) -> None:
    """Record how the run ended: ``succeeded`` or ``failed``, with a one-line message."""
    with state_engine(settings).begin() as connection:
        connection.execute(update(etl_runs).where(etl_runs.c.run_id == run_id).values(
            finished_at=_now(), status=status, message=message))
