"""The ETL job: source files -> checks -> quarantine -> merge -> ledger -> expectations.

A run works on a private copy of the warehouse (:func:`studio.warehouse.writer`) and
publishes it only when every step succeeded, so a crash or a file with too many bad
rows leaves the warehouse exactly as it was. Files already loaded (same content hash)
are skipped, and merging by natural key and version makes re-loading harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from etl import expectations
from etl.checks import build_typed_table, quote_identifier
from etl.mappings import resolve_mapping
from etl.merge import MergeCounts, merge_typed_table
from etl.runs import finish_run, start_run
from etl.sources import SourceFile, describe, expand_paths
from etl.staging import StagedEntity
from studio import warehouse
from studio.config import Settings
from studio.errors import UserError
from studio.rollups import build_rollups, has_rollups

Progress = Callable[[str, float], None]


@dataclass
class LoadResult:
    """What a run did, in a form the CLI prints and ``--json`` serialises."""

    run_id: int
    mapping: str
    files: list[dict] = field(default_factory=list)
    ledger: list[dict] = field(default_factory=list)
    expectations_passed: int = 0
    expectations_failed: int = 0
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


class QuarantineThresholdExceeded(UserError):
    """A file had more bad rows than the threshold allows: the run is rolled back."""


def _already_loaded(con: duckdb.DuckDBPyConnection, sources: list[SourceFile]) -> dict[str, int]:
    hashes = [s.content_hash for s in sources]
    rows = con.sql("SELECT content_hash, min(run_id) FROM etl_files "
                   "WHERE list_contains(?, content_hash) GROUP BY 1", params=[hashes]).fetchall()
    return dict(rows)


def _check_threshold(con: duckdb.DuckDBPyConnection, staged: StagedEntity, typed: str,
                     threshold: float) -> None:
    labels = {source.file_id: source.label for source in staged.source_files}
    rows = con.sql(
        f"""SELECT _source_file, count(*) AS n, count(_reason) AS bad, mode(_reason)
            FROM {typed} GROUP BY _source_file""").fetchall()
    for file_id, n, bad, top_reason in rows:
        source_file = labels.get(file_id, f"file {file_id}")
        if n and bad / n > threshold:
            raise QuarantineThresholdExceeded(
                f"{source_file}: {bad:,} of {n:,} {staged.table.name} rows ({bad / n:.1%}) "
                f"failed the checks (mostly '{top_reason}'), above the {threshold:.0%} "
                "threshold, so nothing was loaded; fix the file or raise "
                "STUDIO_QUARANTINE_THRESHOLD."
            )


def _load_entity(con: duckdb.DuckDBPyConnection, staged: StagedEntity, run_id: int,
                 threshold: float, timings: dict[str, float]) -> MergeCounts:
    typed = "_typed_" + staged.table.name
    step = time.perf_counter()
    build_typed_table(con, staged, typed)
    timings[f"{staged.table.name} checks"] = _since(step)
    step = time.perf_counter()
    _check_threshold(con, staged, typed, threshold)
    con.execute(
        f"""INSERT INTO etl_quarantine
        SELECT ?, ?, f.label, _source_line, _reason, CAST(_raw_json AS VARCHAR)
        FROM {typed} t LEFT JOIN _source_labels f ON f.file_id = t._source_file
        WHERE _reason IS NOT NULL""", [run_id, staged.table.name])
    counts = merge_typed_table(con, staged.table, typed, run_id, derived=staged.derived)
    if not counts.balanced():  # a bug, not a user error: refuse to publish a wrong ledger
        raise RuntimeError(f"ledger for {staged.table.name} does not balance: {counts}")
    con.execute(f"DROP TABLE {quote_identifier(typed)}")
    timings[f"{staged.table.name} merge"] = _since(step)
    con.execute(
        "INSERT INTO etl_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, staged.table.name, ", ".join(s.label for s in staged.source_files),
         counts.rows_in, counts.inserted, counts.updated, counts.unchanged,
         counts.duplicates, counts.quarantined])
    return counts


def _tune(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Bound DuckDB's memory so big loads spill to disk instead of exhausting the machine."""
    spill = settings.home / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute("SET memory_limit = '4GB'")
    con.execute("SET temp_directory = ?", [str(spill)])


def load_files(settings: Settings, paths: Sequence[Path | str], mapping: str = "canonical",
               progress: Progress | None = None) -> LoadResult:
    """Load source files into the warehouse through ``mapping``; return what happened.

    Raises
    ------
    UserError
        For anything the user can fix: a missing file, an unknown mapping, a file the
        mapping cannot read, too many bad rows. The warehouse is left as it was.
    """
    report = progress or (lambda _label, _fraction: None)
    started = step = time.perf_counter()
    chosen = resolve_mapping(mapping)
    found = expand_paths([Path(p) for p in paths])
    report("hashing files", 0.0)
    sources = [describe(path, found_in, file_id)
               for file_id, (path, found_in) in enumerate(found)]
    run_id = start_run(settings, chosen.name, [str(p) for p in paths])
    result = LoadResult(run_id=run_id, mapping=chosen.name)
    if settings.warehouse_path.exists():  # nothing new: no copy, no publication
        with warehouse.connect_reader(settings) as reader:
            loaded = _already_loaded(reader, sources)
            current = has_rollups(reader)
        if current and len(loaded) == len({s.content_hash for s in sources}):
            result.files = [{"path": str(s.path), "status": "skipped: already loaded by run "
                             f"{loaded[s.content_hash]}"} for s in sources]
            result.seconds = _since(started)
            finish_run(settings, run_id, "succeeded",
                       "nothing new: every file was already loaded")
            report("done", 1.0)
            return result
    try:
        with warehouse.writer(settings) as con:
            _tune(con, settings)
            loaded = _already_loaded(con, sources)
            fresh = [s for s in sources if s.content_hash not in loaded]
            result.files = [{"path": str(s.path), "status": "loaded" if s in fresh else
                             f"skipped: already loaded by run {loaded[s.content_hash]}"}
                            for s in sources]
            if fresh:
                expectations.start_background_import()
                con.execute("CREATE OR REPLACE TEMP TABLE _source_labels "
                            "(file_id INTEGER, label VARCHAR)")
                con.executemany("INSERT INTO _source_labels VALUES (?, ?)",
                                [[s.file_id, s.label] for s in fresh])
                report("reading sources", 0.05)
                staged = chosen.stage(con, fresh)
                for index, entity in enumerate(staged):
                    report(f"loading {entity.table.name}", 0.05 + 0.75 * index / len(staged))
                    counts = _load_entity(con, entity, run_id, settings.quarantine_threshold,
                                          result.step_seconds)
                    result.ledger.append({"entity": entity.table.name, **asdict(counts)})
                report("running expectation suites", 0.8)
                step = time.perf_counter()
                outcomes = expectations.validate_tables(
                    con, [entity.table.name for entity in staged], run_id)
                result.step_seconds["expectations"] = _since(step)
                expectations.store_results(con, outcomes)
                result.expectations_passed = sum(o.success for o in outcomes)
                result.expectations_failed = sum(not o.success for o in outcomes)
                con.executemany(
                    "INSERT INTO etl_files VALUES (?, ?, ?, ?, now())",
                    [[s.content_hash, str(s.path), chosen.name, run_id] for s in fresh])
            if fresh or not has_rollups(con):
                report("building rollups", 0.9)
                step = time.perf_counter()
                build_rollups(con)
                result.step_seconds["rollups"] = _since(step)
            report("publishing", 0.95)
            step = time.perf_counter()
        result.step_seconds["publish"] = _since(step)
    except BaseException as error:
        message = str(error) if isinstance(error, UserError) else (
            f"{type(error).__name__}: {error}")
        finish_run(settings, run_id, "failed", message)
        raise
    result.seconds = _since(started)
    summary = ", ".join(f"{row['entity']} +{row['inserted']}" for row in result.ledger)
    finish_run(settings, run_id, "succeeded", summary or "nothing new: every file was "
               "already loaded")
    report("done", 1.0)
    return result
