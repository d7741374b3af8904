"""The state tables of audience export: runs, the outbox, delivered state, the audit log.

Declared on :data:`studio.state.metadata`, so :func:`studio.state.state_engine` creates
them with the studio's other records (``studio.state`` imports this module for that).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from studio.state import metadata

RUN_STATUSES = ("running", "succeeded", "failed", "partial")
ITEM_STATUSES = ("pending", "sent", "failed", "dead")
COUNT_COLUMNS = ("matched", "consented", "to_add", "to_update", "to_remove", "unchanged",
                 "sent", "failed", "dead")

export_runs = Table(
    "export_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("audience_key", String(600), nullable=False, index=True),
    Column("segment", String(200), nullable=False),
    Column("segment_version", Integer, nullable=False),
    Column("as_of", DateTime, nullable=False),
    Column("top_n", Integer),
    Column("score_target", String(200)),
    Column("channel", String(16), nullable=False),
    Column("destination_kind", String(16), nullable=False),
    Column("destination", Text, nullable=False),  # redacted: never a key or a password
    Column("status", String(16), nullable=False),  # one of RUN_STATUSES
    Column("dry_run", Boolean, nullable=False),
    Column("model_versions", Text, nullable=False),  # JSON {target: [versions]}
    Column("created_by", String(200), nullable=False),
    Column("pid", Integer),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("message", Text),
    *(Column(name, Integer, nullable=False, default=0) for name in COUNT_COLUMNS),
)
"""Every export, dry or real: what was sent where, by whom, and how it went."""

export_outbox = Table(
    "export_outbox",
    metadata,
    Column("item_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("action", String(8), nullable=False),  # add, update, remove
    Column("payload", Text, nullable=False),  # JSON
    Column("payload_hash", String(64), nullable=False),
    Column("status", String(8), nullable=False),  # one of ITEM_STATUSES
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("run_id", "customer_id", name="uq_export_outbox_member"),
    Index("ix_export_outbox_run_status", "run_id", "status"),
)
"""One row per member to deliver in a run; sent only once the destination confirmed it."""

export_state = Table(
    "export_state",
    metadata,
    Column("audience_key", String(600), primary_key=True),
    Column("customer_id", String(200), primary_key=True),
    Column("payload_hash", String(64), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("delivered_at", DateTime, nullable=False),
)
"""What each destination holds of each audience, as last confirmed: the base of the diff."""

export_schedules = Table(
    "export_schedules",
    metadata,
    Column("schedule_id", Integer, primary_key=True, autoincrement=True),
    Column("segment", String(200), nullable=False),
    Column("destination", Text, nullable=False),  # a spec holding no secret
    Column("channel", String(16), nullable=False),
    Column("top_n", Integer),
    Column("score_target", String(200)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_run_id", Integer),
    Column("last_status", String(16)),
    Column("last_synced_at", DateTime),
    Column("last_error", Text),
    UniqueConstraint("segment", "destination", "channel", name="uq_export_schedule"),
)
"""Exports to refresh on every ``studio audiences sync`` (a cron job): the latest saved
version of the segment, at the data's latest time, to the same destination."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("object", String(600), nullable=False),
    Column("details", Text, nullable=False),  # JSON
)
"""Who did what to which object, and when: one row per export (and later, other actions)."""
