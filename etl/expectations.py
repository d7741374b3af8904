"""The Great Expectations suites the ETL runs on each canonical table after a load.

The loader already quarantines bad rows one by one; these suites check the tables as they
stand afterwards, as a whole (keys unique, required columns filled, shares of empty optional
columns), so a mapping mistake or a bad merge shows up as a failed expectation in
``etl_expectations`` next to the run that caused it.

The suites are declared here as plain :class:`Rule` values built from ``studio.schema``
(required columns, keys, allowed values) plus a few table-specific rules, so importing this
module is cheap: Great Expectations takes seconds to import and is loaded only when a
validation runs (:func:`start_background_import` lets that happen while the SQL load works).
Great Expectations cannot read DuckDB directly, so each table goes to it as one pandas frame
of the columns its suite needs; a table larger than ``sample_rows`` goes as a reproducible
reservoir sample, and every result says how many rows it saw and how many the table holds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from studio.schema import TABLES_BY_NAME, Table

if TYPE_CHECKING:
    import duckdb

MAX_ROWS = 1_000_000_000
"""Row-count ceiling: far above any store this single-machine studio serves, so a table past it
means a runaway load (a join that multiplied rows, the same files loaded over and over)."""

SAMPLE_SEED = 42
"""Seed of the reservoir sample: the same table state always yields the same sample."""

ROW_COUNT = "expect_table_row_count_to_be_between"
"""Name recorded for the row-count expectation, which SQL evaluates on the whole table."""

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
"""Counts plus a few example values: enough to act on, small enough to keep in the ledger."""


@dataclass(frozen=True)
class Rule:
    """One expectation of a table's suite, declared without importing Great Expectations.

    Attributes
    ----------
    expectation : str
        The Great Expectations class, e.g. ``"ExpectColumnValuesToBeUnique"``.
    columns : tuple of str
        The column it looks at (several for a compound key).
    kwargs : dict
        Further arguments: ``mostly``, ``value_set``, ``min_value``.
    where : tuple of (str, str), optional
        ``(column, value)``: the rule covers only rows where ``column == value``.
    """

    expectation: str
    columns: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    where: tuple[str, str] | None = None


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome on one table in one run: a row of ``etl_expectations``.

    ``rows_validated`` is smaller than ``rows_in_table`` when the expectation saw a sample.
    """

    run_id: int
    table_name: str
    expectation: str
    column_name: str | None
    success: bool
    observed: str
    details: str
    rows_validated: int
    rows_in_table: int


def not_null(column: str, mostly: float = 1.0) -> Rule:
    """At least ``mostly`` of the values of ``column`` are present."""
    return Rule("ExpectColumnValuesToNotBeNull", (column,), {"mostly": mostly})


def at_least(column: str, minimum: float, where: tuple[str, str] | None = None) -> Rule:
    """No value of ``column`` is below ``minimum`` (nulls are left to other rules)."""
    return Rule("ExpectColumnValuesToBeBetween", (column,), {"min_value": minimum}, where)


def never(column: str, value: Any) -> Rule:
    """No value of ``column`` equals ``value``."""
    return Rule("ExpectColumnValuesToNotBeInSet", (column,), {"value_set": [value]})


EXTRA_RULES: dict[str, tuple[Rule, ...]] = {
    # Optional columns that analyses lean on: e-mail reach, country segments, sign-up cohorts.
    "customers": (not_null("email", 0.9), not_null("country", 0.9),
                  not_null("signed_up_at", 0.95)),
    "products": (not_null("name", 0.95), at_least("price", 0)),
    # A null kind or status silently drops an order out of every valid-purchase count.
    "orders": (not_null("kind", 0.99), not_null("status", 0.99),
               at_least("total", 0, where=("kind", "sale")), at_least("discount", 0)),
    "order_items": (never("quantity", 0), at_least("unit_price", 0), at_least("discount", 0)),
    # Funnels are counted per session.
    "events": (not_null("session_id", 0.9),),
}
"""Rules ``studio.schema`` does not declare, by table."""


def suite_rules(table: Table) -> list[Rule]:
    """The column-level rules of ``table``'s suite (the row count is checked apart, in SQL).

    Required columns must be filled, the key must be unique (a compound key as a whole),
    declared value sets must hold, then the rules of :data:`EXTRA_RULES`.
    """
    rules = [not_null(column.name) for column in table.columns if column.required]
    if len(table.key) == 1:
        rules.append(Rule("ExpectColumnValuesToBeUnique", table.key))
    else:
        rules.append(Rule("ExpectCompoundColumnsToBeUnique", table.key))
    for column, values in table.allowed_values.items():
        rules.append(Rule("ExpectColumnValuesToBeInSet", (column,), {"value_set": list(values)}))
    rules.extend(EXTRA_RULES.get(table.name, ()))
    return rules


_import_lock = threading.Lock()
_import_thread: threading.Thread | None = None


def start_background_import() -> None:
    """Start importing Great Expectations in a daemon thread; later calls do nothing.

    The import takes seconds; started before the SQL load, it is done by the time the
    load is, and :func:`validate_tables` waits for it if not.
    """
    global _import_thread
    with _import_lock:
        if _import_thread is None:
            _import_thread = threading.Thread(
                target=_import_quietly, name="great-expectations-import", daemon=True)
            _import_thread.start()


def _import_quietly() -> None:
    try:
        import great_expectations  # noqa: F401
    except Exception:
        pass  # the foreground import in validate_tables raises it again, to a caller


def _import_gx():
    if _import_thread is not None:
        _import_thread.join()
    import great_expectations as gx

    return gx


def validate_tables(con: duckdb.DuckDBPyConnection, tables: Iterable[str], run_id: int,
                    sample_rows: int = 200_000) -> list[ExpectationResult]:
    """Run each named table's suite on the table as it stands in ``con``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The warehouse, after the load.
    tables : iterable of str
        Canonical table names; only these are validated, each once.
    run_id : int
        The ETL run the results belong to.
    sample_rows : int
        A table with more rows is validated on a reservoir sample of this many rows
        (seeded, so the same table gives the same sample); its row count is always exact.

    Returns
    -------
    list of ExpectationResult
        Per table, the row count first, then the suite's rules in declaration order.
        An empty table gets only its (failed) row count: the other rules would hold vacuously.
    """
    names = list(dict.fromkeys(tables))
    unknown = [name for name in names if name not in TABLES_BY_NAME]
    if unknown:
        raise ValueError(f"No expectation suite for {', '.join(unknown)}: "
                         f"validate one of {', '.join(TABLES_BY_NAME)}.")
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be at least 1, not {sample_rows}.")
    if not names:
        return []
    gx = _import_gx()
    source = _ephemeral_context(gx).data_sources.add_pandas("warehouse")
    results: list[ExpectationResult] = []
    for name in names:
        table = TABLES_BY_NAME[name]
        rows_in_table = con.sql(f'SELECT count(*) FROM "{table.name}"').fetchall()[0][0]
        results.append(_row_count_result(run_id, table.name, rows_in_table))
        if rows_in_table:
            results.extend(_validate_table(con, gx, source, table, run_id, rows_in_table,
                                           sample_rows))
    return results


def _ephemeral_context(gx):
    """An in-memory context that writes nothing, phones nowhere and draws no progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _row_count_result(run_id: int, table_name: str, rows: int) -> ExpectationResult:
    """The row-count expectation, from SQL on the whole table: a sample's size says nothing."""
    observed = f"{rows:,} rows" + (f" (max {MAX_ROWS:,})" if rows > MAX_ROWS else "")
    details = {"observed_value": rows, "min_value": 1, "max_value": MAX_ROWS,
               "evaluated_by": "SQL count(*) over the whole table"}
    return ExpectationResult(run_id, table_name, ROW_COUNT, None, 1 <= rows <= MAX_ROWS,
                             observed, json.dumps(details), rows, rows)


def _validate_table(con, gx, source, table: Table, run_id: int, rows_in_table: int,
                    sample_rows: int) -> list[ExpectationResult]:
    """Run ``table``'s suite as one batch: only the columns it needs, sampled when large."""
    rules = suite_rules(table)
    needed = list(dict.fromkeys(
        c for rule in rules for c in rule.columns + ((rule.where[0],) if rule.where else ())))
    selected = ", ".join(f'"{column}"' for column in needed)
    sample = (f" USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})"
              if rows_in_table > sample_rows else "")
    frame = con.sql(f'SELECT {selected} FROM "{table.name}"{sample}').df()

    batch = (source.add_dataframe_asset(table.name)
             .add_batch_definition_whole_dataframe("after load")
             .get_batch(batch_parameters={"dataframe": frame}))
    suite = gx.ExpectationSuite(name=table.name)
    for index, rule in enumerate(rules):
        suite.add_expectation(_gx_expectation(gx, rule, index))
    outcome = batch.validate(suite, result_format=RESULT_FORMAT)

    results = []
    for gx_result in sorted(outcome.results, key=lambda r: r.expectation_config.meta["rule"]):
        rule = rules[gx_result.expectation_config.meta["rule"]]
        error = _exception_message(gx_result.exception_info)
        result = gx_result.to_json_dict()["result"] or {}
        details = {"exception_message": error} if error else result
        results.append(ExpectationResult(
            run_id=run_id,
            table_name=table.name,
            expectation=gx_result.expectation_config.type,
            column_name=", ".join(rule.columns),
            success=bool(gx_result.success),
            observed=describe_observed(rule, result, error),
            details=json.dumps(details, default=str),
            rows_validated=len(frame),
            rows_in_table=rows_in_table,
        ))
    return results


def _gx_expectation(gx, rule: Rule, index: int):
    """The Great Expectations object for ``rule``, tagged with its index to find it again."""
    from great_expectations.expectations.row_conditions import Column

    kwargs = dict(rule.kwargs, meta={"rule": index})
    if rule.expectation == "ExpectCompoundColumnsToBeUnique":
        kwargs["column_list"] = list(rule.columns)
    else:
        kwargs["column"] = rule.columns[0]
    if rule.where:
        kwargs["row_condition"] = Column(rule.where[0]) == rule.where[1]
    return getattr(gx.expectations, rule.expectation)(**kwargs)


def _exception_message(info: Any) -> str | None:
    """The error an expectation hit, if any (GE nests it under a metric id when a metric fails)."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def describe_observed(rule: Rule, result: dict, error: str | None = None) -> str:
    """A short sentence of what Great Expectations saw, e.g. ``"3 null (1.5%)"``.

    Counts are of the rows the expectation looked at (a sample, on a large table).
    """
    if error:
        return f"could not be evaluated: {error}"[:200]
    bad = result.get("unexpected_count") or 0
    seen = result.get("element_count") or 0
    example = _example(result.get("partial_unexpected_list") or [])
    where = f" where {rule.where[0]} = {rule.where[1]!r}" if rule.where else ""
    kind = rule.expectation
    if kind == "ExpectColumnValuesToNotBeNull":
        if not bad:
            return "no nulls"
        mostly = rule.kwargs.get("mostly", 1.0)
        allowed = f", at most {(1 - mostly) * 100:.3g}% allowed" if mostly < 1 else ""
        return f"{bad:,} null ({_percent(bad, seen)}){allowed}"
    if kind in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        return f"{bad:,} rows with a duplicated key, e.g. {example}" if bad else "no duplicates"
    if kind == "ExpectColumnValuesToBeInSet":
        return (f"{bad:,} outside the allowed set, e.g. {example}" if bad
                else "all in the allowed set")
    if kind == "ExpectColumnValuesToBeBetween":
        minimum = rule.kwargs["min_value"]
        return (f"{bad:,} below {minimum}{where}, e.g. {example}" if bad
                else f"none below {minimum}{where}")
    if kind == "ExpectColumnValuesToNotBeInSet":
        value = rule.kwargs["value_set"][0]
        return f"{bad:,} equal to {value}" if bad else f"none equal to {value}"
    return f"{bad:,} unexpected of {seen:,}"


def _percent(part: int, whole: int) -> str:
    share = 100 * part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


def _example(values: list) -> str:
    if not values:
        return "?"
    value = values[0]
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={v!r}" for k, v in value.items()) + ")"
    return repr(value)


def store_results(con: duckdb.DuckDBPyConnection, results: list[ExpectationResult]) -> None:
    """Append ``results`` to the warehouse table ``etl_expectations``."""
    if not results:
        return
    columns = [f.name for f in fields(ExpectationResult)]
    con.executemany(
        f"INSERT INTO etl_expectations ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})",
        [astuple(result) for result in results],
    )
