"""What the ETL did and what it refused: runs, ledgers, quarantine and expectations.

Two stores hold the story. The state database's ``etl_runs`` records every run, even
one that failed and so published nothing; the warehouse holds, next to the data they
describe, the per-entity ledger of each published run, the quarantined rows and the
Great Expectations results. :func:`list_runs` joins the two; the other functions read
the warehouse only. Results are plain dicts and polars frames so that the Data quality
page and ``studio etl runs`` show the same thing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import duckdb
import polars as pl
from sqlalchemy import select

from studio.config import Settings
from studio.schema import CANONICAL_TABLES
from studio.state import etl_runs, state_engine
from studio.warehouse import connect_reader

LEDGER_COLUMNS = ("rows_in", "inserted", "updated", "unchanged", "duplicates", "quarantined")
"""The counts every ledger row carries, in the order a reader checks them."""

QUARANTINE_META_COLUMNS = ("run_id", "entity", "source_file", "source_line")

_TABLE_ORDER = [table.name for table in CANONICAL_TABLES]


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it just belongs to someone else
        return True
    return True


def _run_status(status: str, pid: int | None) -> str:
    """``running`` becomes ``abandoned`` when the process that ran it is gone.

    A run whose process was killed (or whose machine rebooted) never gets to write
    ``failed``; without this it would say ``running`` forever. A recycled pid can make
    a dead run look alive, which errs on the safe side.
    """
    if status == "running" and pid is not None and not _pid_alive(pid):
        return "abandoned"
    return status


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _state_db_missing(settings: Settings) -> bool:
    """True for a SQLite state file that does not exist: listing must not create it."""
    prefix = "sqlite:///"
    url = settings.state_url
    return url.startswith(prefix) and not os.path.exists(url[len(prefix):])


def _ledger_totals(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    sums = ", ".join(f"sum({column})::BIGINT AS {column}" for column in LEDGER_COLUMNS)
    rows = con.sql(
        f"""
        SELECT ledger.run_id, files.files, {sums}
        FROM etl_ledger AS ledger
        LEFT JOIN (SELECT run_id, count(*) AS files FROM etl_files GROUP BY run_id) AS files
            USING (run_id)
        GROUP BY ledger.run_id, files.files
        """
    ).fetchall()
    names = ("files", *LEDGER_COLUMNS)
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def list_runs(settings: Settings, con: duckdb.DuckDBPyConnection | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """Every ETL run, newest first, with its ledger totals when it published any.

    Parameters
    ----------
    settings
        Where the state database and the warehouse are.
    con
        An open warehouse connection to read the ledger from; by default one is opened
        (and closed) here, or the ledger is skipped when there is no warehouse yet.
    limit
        Keep only the newest ``limit`` runs.

    Returns
    -------
    list of dict
        JSON-ready: ``run_id``, ``status`` (running, succeeded, failed or abandoned),
        ``started_at`` and ``finished_at`` (ISO text), ``mapping``, ``paths`` (list),
        ``pid``, ``message``, then ``files`` and the :data:`LEDGER_COLUMNS` totals, which
        are ``None`` for a run with nothing in the warehouse (failed, or still running).
    """
    if _state_db_missing(settings):
        return []
    query = select(etl_runs).order_by(etl_runs.c.run_id.desc())
    if limit is not None:
        query = query.limit(limit)
    with state_engine(settings).connect() as state:
        runs = [dict(row._mapping) for row in state.execute(query)]

    totals: dict[int, dict[str, Any]] = {}
    if con is not None:
        totals = _ledger_totals(con)
    elif settings.warehouse_path.exists():
        reader = connect_reader(settings)
        try:
            totals = _ledger_totals(reader)
        finally:
            reader.close()

    empty = dict.fromkeys(("files", *LEDGER_COLUMNS))
    return [
        {
            "run_id": run["run_id"],
            "status": _run_status(run["status"], run["pid"]),
            "started_at": _iso(run["started_at"]),
            "finished_at": _iso(run["finished_at"]),
            "mapping": run["mapping"],
            "paths": json.loads(run["paths"]) if run["paths"] else [],
            "pid": run["pid"],
            "message": run["message"],
            **totals.get(run["run_id"], empty),
        }
        for run in runs
    ]


def run_ledger(con: duckdb.DuckDBPyConnection, run_id: int) -> pl.DataFrame:
    """The ledger of one run: one row per entity, in load order.

    ``rows_in`` should equal ``inserted + updated + unchanged + duplicates +
    quarantined``; the page shows the columns side by side so a gap is visible.
    """
    return con.sql(
        f"""
        SELECT entity, source_files, {", ".join(LEDGER_COLUMNS)}
        FROM etl_ledger
        WHERE run_id = $1
        ORDER BY coalesce(list_position($2, entity), 1000), entity
        """,
        params=[run_id, _TABLE_ORDER],
    ).pl()


def _run_filter(run_id: int | None, params: list) -> str:
    if run_id is None:
        return "TRUE"
    params.append(run_id)
    return f"run_id = ${len(params)}"


def quarantine_summary(con: duckdb.DuckDBPyConnection, run_id: int | None = None) -> pl.DataFrame:
    """How many rows were quarantined, per entity and reason, most frequent first.

    Parameters
    ----------
    con
        A warehouse connection.
    run_id
        One run's quarantine; by default every run's.

    Returns
    -------
    polars.DataFrame
        ``entity``, ``reason``, ``rows`` and ``last_run_id`` (the latest run that
        quarantined a row for this reason).
    """
    params: list = []
    where = _run_filter(run_id, params)
    return con.sql(
        f"""
        SELECT entity, reason, count(*) AS rows, max(run_id) AS last_run_id
        FROM etl_quarantine
        WHERE {where}
        GROUP BY entity, reason
        ORDER BY rows DESC, entity, reason
        """,
        params=params,
    ).pl()


def _expand_raw(raw: str | None) -> dict[str, str | None]:
    """A quarantined row's raw record as column -> text; unparseable text stays whole."""
    try:
        record = json.loads(raw) if raw is not None else {}
    except json.JSONDecodeError:
        return {"raw": raw}
    if not isinstance(record, dict):
        return {"raw": raw}
    return {
        str(key): value if value is None or isinstance(value, str) else json.dumps(value)
        for key, value in record.items()
    }


def quarantine_rows(con: duckdb.DuckDBPyConnection, reason: str, entity: str | None = None,
                    limit: int = 100, offset: int = 0,
                    run_id: int | None = None) -> pl.DataFrame:
    """The quarantined rows for one reason, with their raw fields spread into columns.

    Parameters
    ----------
    con
        A warehouse connection.
    reason
        The quarantine reason, as :func:`quarantine_summary` lists it.
    entity
        Only this entity's rows (two entities can share a reason).
    limit, offset
        The page of rows to return, ordered by run, file and line.
    run_id
        Only this run's rows.

    Returns
    -------
    polars.DataFrame
        :data:`QUARANTINE_META_COLUMNS` (where the row came from), then one text column
        per field of the raw record in the order first seen; a field whose name clashes
        with those gets a ``raw_`` prefix. Every raw value is shown as text, exactly as
        the source held it.
    """
    params: list = [reason]
    where = "reason = $1"
    if entity is not None:
        params.append(entity)
        where += f" AND entity = ${len(params)}"
    where += " AND " + _run_filter(run_id, params)
    params.extend([limit, offset])
    rows = con.sql(
        f"""
        SELECT {", ".join(QUARANTINE_META_COLUMNS)}, raw
        FROM etl_quarantine
        WHERE {where}
        ORDER BY run_id, source_file, source_line
        LIMIT ${len(params) - 1} OFFSET ${len(params)}
        """,
        params=params,
    ).fetchall()
    records = []
    for *meta, raw in rows:
        record: dict[str, Any] = dict(zip(QUARANTINE_META_COLUMNS, meta, strict=True))
        for key, value in _expand_raw(raw).items():
            record[f"raw_{key}" if key in QUARANTINE_META_COLUMNS else key] = value
        records.append(record)
    meta_schema = {"run_id": pl.Int64, "entity": pl.String, "source_file": pl.String,
                   "source_line": pl.Int64}
    if not records:
        return pl.DataFrame(schema=meta_schema)
    fields = list(dict.fromkeys(key for record in records for key in record))
    schema = {name: meta_schema.get(name, pl.String) for name in fields}
    return pl.DataFrame(records, schema=schema)


def expectation_results(con: duckdb.DuckDBPyConnection, run_id: int | None = None) -> pl.DataFrame:
    """The Great Expectations results of one run (by default the latest that has any).

    Returns
    -------
    polars.DataFrame
        ``run_id``, ``table_name``, ``expectation``, ``column_name``, ``success``,
        ``observed``, ``details``, ``rows_validated`` and ``rows_in_table``; tables in
        load order, failures first within a table. ``rows_validated`` below
        ``rows_in_table`` means the suite saw a sample, which the page says.
    """
    params: list = [_TABLE_ORDER]
    if run_id is None:
        where = "run_id = (SELECT max(run_id) FROM etl_expectations)"
    else:
        params.append(run_id)
        where = "run_id = $2"
    return con.sql(
        f"""
        SELECT run_id, table_name, expectation, column_name, success, observed, details,
               rows_validated, rows_in_table
        FROM etl_expectations
        WHERE {where}
        ORDER BY coalesce(list_position($1, table_name), 1000), table_name,
                 success, expectation, column_name
        """,
        params=params,
    ).pl()
