"""The last consent check, made on every batch just before it leaves.

An audience is built from the warehouse at the start of a run, but a long run (a hundred
thousand contacts at 400 requests a minute) outlives that moment: a load may publish new
unsubscribes meanwhile. Each batch is therefore checked against the warehouse as it is
published *now*. The gate keeps one read-only connection per published version (a load
publishes a new file, which :func:`studio.warehouse.warehouse_version` sees), so the check
costs one query per batch, not a new connection, and picks up a publication at once.

The check takes about 80 ms at 1.7M customers, half the 150 ms a paced request leaves
between batches. So that it does not stretch every cycle, :meth:`ConsentGate.check_ahead`
starts the next batch's check on a worker thread while the current batch is on the wire:
a batch is then checked at most one batch-time (about 0.15 s) before it leaves.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import duckdb
import sqlalchemy as sa

from studio.audiences.audience import latest_consent_at, moment_after, reachable_members
from studio.config import Settings
from studio.rollups import RollupCoverage, rollup_coverage
from studio.sql import to_sql
from studio.warehouse import connect_reader, warehouse_version


class ConsentGate:
    """Answers "who among these may no longer be reached on ``channel``?" per batch."""

    def __init__(self, settings: Settings, channel: str):
        self.settings, self.channel = settings, channel
        self._con: duckdb.DuckDBPyConnection | None = None
        self._version: tuple[int, int] | None = None
        # what changes only with a publication, read once per version
        self._latest: datetime | None = None
        self._rollups: RollupCoverage | None = None
        # one worker owns the connection: a DuckDB connection serves one thread at a time
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="consent-gate")
        self._ahead: tuple[tuple[str, ...], Future] | None = None

    def _reader(self) -> duckdb.DuckDBPyConnection:
        version = warehouse_version(self.settings)
        if self._con is None or version != self._version:
            self._close_connection()
            self._con, self._version = connect_reader(self.settings), version
            self._latest, self._rollups = latest_consent_at(self._con), rollup_coverage(self._con)
        return self._con

    def _withdrawn_now(self, customer_ids: list[str]) -> list[str]:
        # one array parameter: DuckDB plans a thousand-item IN list of parameters as a filter
        # on every customer (0.4 s at 1.7M customers), an unnested array as a join (0.05 s)
        listed = sa.bindparam("customer_ids", customer_ids, type_=sa.ARRAY(sa.String))
        ids = sa.select(sa.func.unnest(listed, type_=sa.String).label("customer_id"))
        con = self._reader()
        sql, params = to_sql(reachable_members(ids, self.channel, moment_after(self._latest),
                                               self._rollups))
        reachable = {row[0] for row in con.execute(sql, params).fetchall()}
        return sorted(set(customer_ids) - reachable)

    def check_ahead(self, customer_ids: list[str]) -> None:
        """Start checking ``customer_ids`` now; :meth:`withdrawn` of the same ids collects it."""
        if customer_ids:
            self._ahead = (tuple(customer_ids),
                           self._worker.submit(self._withdrawn_now, list(customer_ids)))

    def withdrawn(self, customer_ids: list[str]) -> list[str]:
        """Those among ``customer_ids`` not currently subscribed on the channel with an address."""
        if not customer_ids:
            return []
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == tuple(customer_ids):
            return ahead[1].result()
        return self._worker.submit(self._withdrawn_now, list(customer_ids)).result()

    def _close_connection(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        """Wait for any check under way, then close the connection and the worker."""
        self._ahead = None
        self._worker.submit(self._close_connection).result()
        self._worker.shutdown()

    def __enter__(self) -> ConsentGate:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
