"""The app's own records, kept apart from the warehouse in a SQLAlchemy database.

SQLite under ``STUDIO_HOME`` by default (in WAL mode, so the pages can read while a job
writes), any SQLAlchemy URL (PostgreSQL for a team) through ``STUDIO_STATE_URL``.
Tables are declared here, never reflected. Later features (saved segments, export runs,
audit log) add their tables to :data:`metadata`.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine

from studio.config import Settings

metadata = MetaData()

etl_runs = Table(
    "etl_runs",
    metadata,
    Column("run_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(16), nullable=False),  # running, succeeded, failed
    Column("mapping", String(200), nullable=False),
    Column("paths", Text, nullable=False),  # JSON list of the paths given
    Column("pid", Integer),
    Column("message", Text),  # the reason of a failure, or a one-line summary
)
"""Every ETL run, successful or not: a failed run leaves no trace in the warehouse."""


segments = Table(
    "segments",
    metadata,
    Column("segment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)
"""A saved segment: a name whose rule lives in its versions."""

segment_versions = Table(
    "segment_versions",
    metadata,
    Column("segment_id", Integer, ForeignKey("segments.segment_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", Text, nullable=False),  # the JSON document
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("note", Text),
)
"""Every version of every saved segment: old versions stay readable."""

segment_snapshots = Table(
    "segment_snapshots",
    metadata,
    Column("snapshot_id", Integer, primary_key=True, autoincrement=True),
    Column("segment_id", Integer, ForeignKey("segments.segment_id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("as_of", DateTime, nullable=False),
    Column("taken_at", DateTime, nullable=False),
    Column("taken_by", String(200), nullable=False),
    Column("members", Integer, nullable=False),
)
"""A segment's membership recorded as of a date."""

segment_snapshot_members = Table(
    "segment_snapshot_members",
    metadata,
    Column("snapshot_id", Integer, ForeignKey("segment_snapshots.snapshot_id"),
           primary_key=True),
    Column("customer_id", String(200), primary_key=True),
)


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@cache
def _engine_for(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    metadata.create_all(engine)
    return engine


def state_engine(settings: Settings) -> Engine:
    """The engine of the state database, with every declared table created."""
    if settings.state_url.startswith("sqlite:///"):
        settings.ensure_home()
    return _engine_for(settings.state_url)


from studio.audiences import records as _export_records  # noqa: E402, F401 - declares export tables
