"""Runs, ledgers, quarantine and expectations read back from a hand-built studio home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import duckdb
import pytest

from studio import quality, schema
from studio.state import etl_runs, state_engine
from studio.warehouse import connect_reader


def dead_pid() -> int:
    """The pid of a process that has finished and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def add_runs(settings, runs: list[dict]) -> None:
    with state_engine(settings).begin() as state:
        state.execute(etl_runs.insert(), runs)


LEDGER = [
    # run, entity, files, rows_in, inserted, updated, unchanged, duplicates, quarantined
    (1, "orders", '["orders.csv"]', 20, 15, 0, 0, 2, 3),
    (1, "customers", '["customers.csv"]', 10, 9, 0, 0, 1, 0),
    (3, "customers", '["customers.csv"]', 5, 0, 2, 3, 0, 0),
    (3, "orders", '["orders.csv"]', 4, 3, 0, 0, 0, 1),
]
QUARANTINE = [
    (1, "orders", "orders.csv", 7, "negative total on a sale",
     json.dumps({"order_id": "X7", "total": -5, "run_id": "from the file"})),
    (1, "orders", "orders.csv", 3, "negative total on a sale",
     json.dumps({"order_id": "X3", "total": -1.5, "note": None})),
    (1, "orders", "orders.csv", 9, "negative discount",
     json.dumps({"order_id": "X9", "discount": -2})),
    (1, "order_items", "items.csv", 4, "negative discount", "not json, a raw line"),
    (3, "orders", "orders2.csv", 2, "negative total on a sale",
     json.dumps({"order_id": "Y2", "total": -9})),
]
EXPECTATIONS = [
    # run, table, expectation, column, success, observed, rows_validated, rows_in_table
    (1, "orders", "expect_column_values_to_not_be_null", "order_id", True, "0 nulls", 15, 15),
    (1, "customers", "expect_column_values_to_be_unique", "customer_id", True, "0", 9, 9),
    (1, "orders", "expect_column_values_to_be_between", "total", False, "min -3", 15, 15),
    (3, "orders", "expect_column_values_to_not_be_null", "order_id", True, "0 nulls", 18, 18),
    (3, "customers", "expect_column_values_to_be_unique", "customer_id", True, "0", 9, 11),
]


@pytest.fixture
def warehouse(settings):
    con = duckdb.connect(str(settings.warehouse_path))
    schema.create_all(con)
    con.executemany("INSERT INTO etl_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [list(row) for row in LEDGER])
    con.executemany("INSERT INTO etl_quarantine VALUES (?, ?, ?, ?, ?, ?)",
                    [list(row) for row in QUARANTINE])
    con.executemany(
        "INSERT INTO etl_expectations (run_id, table_name, expectation, column_name, success, "
        "observed, rows_validated, rows_in_table) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [list(row) for row in EXPECTATIONS])
    con.executemany("INSERT INTO etl_files VALUES (?, ?, 'canonical', ?, ?)", [
        ["h1", "/in/customers.csv", 1, datetime(2024, 7, 1, 9)],
        ["h2", "/in/orders.csv", 1, datetime(2024, 7, 1, 9)],
        ["h3", "/in2/orders.csv", 3, datetime(2024, 7, 3, 9)],
    ])
    con.close()
    con = connect_reader(settings)
    yield con
    con.close()


@pytest.fixture
def runs(settings):
    base = {"mapping": "canonical", "paths": json.dumps(["/in"]), "message": None}
    add_runs(settings, [
        {**base, "run_id": 1, "started_at": datetime(2024, 7, 1, 9), "status": "succeeded",
         "finished_at": datetime(2024, 7, 1, 9, 1), "pid": 101},
        {**base, "run_id": 2, "started_at": datetime(2024, 7, 2, 9), "status": "failed",
         "finished_at": datetime(2024, 7, 2, 9, 0, 5), "pid": 102,
         "message": "orders.csv: 40% of rows quarantined, above the 5% threshold."},
        {**base, "run_id": 3, "started_at": datetime(2024, 7, 3, 9), "status": "succeeded",
         "finished_at": datetime(2024, 7, 3, 9, 2), "pid": 103,
         "paths": json.dumps(["/in2", "/in3"])},
        {**base, "run_id": 4, "started_at": datetime(2024, 7, 4, 9), "status": "running",
         "finished_at": None, "pid": dead_pid()},
        {**base, "run_id": 5, "started_at": datetime(2024, 7, 5, 9), "status": "running",
         "finished_at": None, "pid": os.getpid()},
    ])


def test_runs_are_newest_first_with_their_ledger_totals(settings, runs, warehouse):
    listed = quality.list_runs(settings)
    assert [run["run_id"] for run in listed] == [5, 4, 3, 2, 1]
    by_id = {run["run_id"]: run for run in listed}
    assert {k: by_id[1][k] for k in ("files", *quality.LEDGER_COLUMNS)} == {
        "files": 2, "rows_in": 30, "inserted": 24, "updated": 0, "unchanged": 0,
        "duplicates": 3, "quarantined": 3,
    }
    assert (by_id[3]["rows_in"], by_id[3]["updated"], by_id[3]["unchanged"]) == (9, 2, 3)
    assert by_id[3]["paths"] == ["/in2", "/in3"]
    assert by_id[1]["started_at"] == "2024-07-01 09:00:00"
    # A failed run published nothing.
    assert by_id[2]["status"] == "failed" and by_id[2]["rows_in"] is None
    assert "threshold" in by_id[2]["message"]


def test_a_running_run_whose_process_is_gone_is_abandoned(settings, runs):
    statuses = {run["run_id"]: run["status"] for run in quality.list_runs(settings)}
    assert statuses[4] == "abandoned"
    assert statuses[5] == "running"  # this very process is alive


def test_runs_are_json_ready_and_limitable(settings, runs, warehouse):
    listed = quality.list_runs(settings, con=warehouse, limit=2)
    assert [run["run_id"] for run in listed] == [5, 4]
    assert json.loads(json.dumps(listed)) == listed


def test_runs_without_a_warehouse_have_no_totals(settings, runs):
    assert not settings.warehouse_path.exists()
    listed = quality.list_runs(settings)
    assert len(listed) == 5
    assert all(run["rows_in"] is None for run in listed)


def test_no_state_database_means_no_runs_and_creates_nothing(settings):
    assert quality.list_runs(settings) == []
    assert not (settings.home / "state.db").exists()


def test_run_ledger_lists_entities_in_load_order(warehouse):
    ledger = quality.run_ledger(warehouse, 1)
    assert ledger["entity"].to_list() == ["customers", "orders"]
    orders = ledger.row(1, named=True)
    assert orders["rows_in"] == orders["inserted"] + orders["duplicates"] + orders["quarantined"]
    assert quality.run_ledger(warehouse, 2).is_empty()


def test_quarantine_summary_counts_by_entity_and_reason(warehouse):
    everything = quality.quarantine_summary(warehouse)
    assert everything.rows() == [
        ("orders", "negative total on a sale", 3, 3),
        ("order_items", "negative discount", 1, 1),
        ("orders", "negative discount", 1, 1),
    ]
    one_run = quality.quarantine_summary(warehouse, run_id=3)
    assert one_run.rows() == [("orders", "negative total on a sale", 1, 3)]


def test_quarantine_rows_expand_the_raw_record(warehouse):
    rows = quality.quarantine_rows(warehouse, "negative total on a sale", entity="orders")
    # Fields in the order first seen (line 3 comes first); a clashing name is prefixed.
    assert rows.columns == ["run_id", "entity", "source_file", "source_line",
                            "order_id", "total", "note", "raw_run_id"]
    assert rows.select("run_id", "source_line", "order_id", "total").rows() == [
        (1, 3, "X3", "-1.5"), (1, 7, "X7", "-5"), (3, 2, "Y2", "-9"),
    ]
    assert rows["raw_run_id"].to_list() == [None, "from the file", None]


def test_quarantine_rows_page_and_filter(warehouse):
    reason = "negative total on a sale"
    second = quality.quarantine_rows(warehouse, reason, limit=1, offset=1)
    assert second["order_id"].to_list() == ["X7"]
    assert quality.quarantine_rows(warehouse, reason, run_id=3)["order_id"].to_list() == ["Y2"]
    both = quality.quarantine_rows(warehouse, "negative discount")
    assert both["entity"].to_list() == ["order_items", "orders"]
    assert both["raw"].to_list() == ["not json, a raw line", None]
    assert quality.quarantine_rows(warehouse, "no such reason").is_empty()


def test_expectations_default_to_the_latest_run(warehouse):
    latest = quality.expectation_results(warehouse)
    assert latest["run_id"].unique().to_list() == [3]
    assert latest.select("table_name", "rows_validated", "rows_in_table").rows() == [
        ("customers", 9, 11), ("orders", 18, 18),
    ]
    first = quality.expectation_results(warehouse, run_id=1)
    # Load order (customers before orders), failures first within a table.
    assert first.select("table_name", "success").rows() == [
        ("customers", True), ("orders", False), ("orders", True),
    ]
