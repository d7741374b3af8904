"""The post-load Great Expectations suites, run on real DuckDB warehouses with hand-made rows."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import astuple, fields
from pathlib import Path

import duckdb
import pytest

from etl import expectations
from etl.expectations import (
    ExpectationResult,
    store_results,
    suite_rules,
    validate_tables,
)
from studio.schema import CANONICAL_TABLES, create_all

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_TABLES = [table.name for table in CANONICAL_TABLES]

CLEAN_ROWS = [
    # 20 customers, all with e-mail and country, so a share of nulls is easy to reason about.
    """INSERT INTO customers
       SELECT 'c' || i, 'c' || i || '@shop.test', NULL, 'United Kingdom', 'organic',
              TIMESTAMP '2024-01-01' + to_days(i::INTEGER), '{}', TIMESTAMP '2024-02-01', 1
       FROM range(1, 21) t(i)""",
    # A free product and one without a known price are both legitimate.
    """INSERT INTO products VALUES
       ('p1', 'Mug', 'Kitchen', 4.5, '2024-01-01', 1),
       ('p2', 'Tote bag', 'Bags', 0.0, '2024-01-01', 1),
       ('p3', 'Gift card', NULL, NULL, '2024-01-01', 1)""",
    """INSERT INTO campaigns VALUES
       ('k1', 'Spring sale', 'email', '2024-03-01', '[{"name": "A", "weight": 0.5}]', 'A',
        '2024-03-01', 1),
       ('k2', 'Flash', 'sms', '2024-04-01', NULL, NULL, '2024-04-01', 1)""",
    """INSERT INTO consent_events VALUES
       ('ce1', 'c1', 'email', 'subscribed', '2024-01-02', 'signup_form', 1),
       ('ce2', 'c1', 'email', 'unsubscribed', '2024-02-02', 'unsubscribe_link', 1),
       ('ce3', 'c2', 'sms', 'subscribed', '2024-01-03', 'checkout', 1),
       ('ce4', 'c3', 'email', 'non_subscribed', '2024-01-04', 'import', 1)""",
    # A return carries a negative total; only sales must be >= 0.
    """INSERT INTO orders VALUES
       ('o1', 'c1', false, '2024-02-01', 'sale', 'completed', 'GBP', 30.0, 0.0, 30.0, NULL, 1),
       ('o2', 'c2', false, '2024-02-02', 'sale', 'completed', 'GBP', 14.0, 2.0, 12.0, NULL, 1),
       ('o3', 'c1', false, '2024-02-05', 'return', 'completed', 'GBP', -30.0, NULL, -30.0,
        NULL, 1),
       ('o4', NULL, true, '2024-02-06', 'sale', 'cancelled', 'GBP', 8.0, 0.0, 8.0, NULL, 1)""",
    """INSERT INTO order_items VALUES
       ('o1', 1, 'p1', 2, 4.5, 0.0, 1),
       ('o1', 2, 'p2', 1, 21.0, NULL, 1),
       ('o2', 1, 'p1', 3, 4.5, 1.5, 1),
       ('o3', 1, 'p1', -2, 4.5, NULL, 1),
       ('o4', 1, 'p3', 1, 8.0, 0.0, 1)""",
    """INSERT INTO events VALUES
       ('e1', 'c1', 's1', 'page_view', '2024-02-01 10:00', NULL, '{}', 1),
       ('e2', 'c1', 's1', 'product_view', '2024-02-01 10:01', 'p1', '{"price": 4.5}', 1),
       ('e3', 'c2', 's2', 'add_to_cart', '2024-02-02 09:00', 'p1', '{}', 1)""",
    """INSERT INTO campaign_sends VALUES
       ('s1', 'k1', 'c1', 'A', '2024-03-01', '2024-03-01 12:00', NULL, NULL, 1),
       ('s2', 'k1', 'c2', 'B', '2024-03-01', NULL, NULL, NULL, 1),
       ('s3', 'k2', 'c3', NULL, '2024-04-01', NULL, NULL, '2024-04-02', 1)""",
]


def build_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse file with the canonical schema and a small, clean store in it."""
    con = duckdb.connect(str(path))
    create_all(con)
    for statement in CLEAN_ROWS:
        con.execute(statement)
    return con


def failures(results: list[ExpectationResult]) -> list[tuple[str, str | None, str]]:
    return [(r.expectation, r.column_name, r.observed) for r in results if not r.success]


@pytest.fixture(scope="module", autouse=True)
def gx_imported():
    """Import Great Expectations once for the module, the way the loader does."""
    expectations.start_background_import()
    expectations._import_gx()


@pytest.fixture
def con(tmp_path: Path):
    connection = build_warehouse(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def test_importing_the_module_leaves_great_expectations_unloaded():
    probe = "import sys, etl.expectations; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def test_background_import_starts_one_thread():
    expectations.start_background_import()
    first = expectations._import_thread
    expectations.start_background_import()
    assert expectations._import_thread is first
    first.join(timeout=60)
    assert "great_expectations" in sys.modules


@pytest.mark.parametrize("table", CANONICAL_TABLES, ids=lambda t: t.name)
def test_suites_follow_the_schema(table):
    rules = suite_rules(table)
    for rule in rules:
        assert set(rule.columns) <= set(table.column_names), rule
    by_column = {(rule.expectation, rule.columns): rule for rule in rules}
    assert len(by_column) == len(rules), "no expectation is declared twice on the same columns"
    for column in table.columns:
        if column.required:
            rule = by_column[("ExpectColumnValuesToNotBeNull", (column.name,))]
            assert rule.kwargs["mostly"] == 1.0
    unique = "ExpectColumnValuesToBeUnique" if len(table.key) == 1 \
        else "ExpectCompoundColumnsToBeUnique"
    assert (unique, table.key) in by_column
    for column, values in table.allowed_values.items():
        rule = by_column[("ExpectColumnValuesToBeInSet", (column,))]
        assert rule.kwargs["value_set"] == list(values)


def test_a_clean_warehouse_meets_every_expectation(con):
    results = validate_tables(con, ALL_TABLES, run_id=7)

    assert failures(results) == []
    assert {r.run_id for r in results} == {7}
    for table in CANONICAL_TABLES:
        mine = [r for r in results if r.table_name == table.name]
        assert len(mine) == 1 + len(suite_rules(table))
        rows = con.sql(f"SELECT count(*) FROM {table.name}").fetchall()[0][0]
        assert mine[0].expectation == "expect_table_row_count_to_be_between"
        assert mine[0].observed == f"{rows:,} rows"
        assert {(r.rows_validated, r.rows_in_table) for r in mine} == {(rows, rows)}
    negative_total = [r for r in results if r.table_name == "orders" and r.column_name == "total"
                      and r.expectation == "expect_column_values_to_be_between"]
    # The return o3 (-30) is outside the condition: three sales were checked, not four orders.
    assert json.loads(negative_total[0].details)["element_count"] == 3
    assert negative_total[0].observed == "none below 0 where kind = 'sale'"


DEFECTS = {
    "null required value": (
        "consent_events",
        "UPDATE consent_events SET customer_id = NULL WHERE consent_event_id = 'ce3'",
        ("expect_column_values_to_not_be_null", "customer_id", "1 null (25.0%)"),
    ),
    "duplicate key": (
        "orders",
        "INSERT INTO orders SELECT * FROM orders WHERE order_id = 'o2'",
        ("expect_column_values_to_be_unique", "order_id",
         "2 rows with a duplicated key, e.g. 'o2'"),
    ),
    "duplicate compound key": (
        "order_items",
        "UPDATE order_items SET line_number = 1 WHERE order_id = 'o1' AND line_number = 2",
        ("expect_compound_columns_to_be_unique", "order_id, line_number",
         "2 rows with a duplicated key, e.g. (order_id='o1', line_number=1)"),
    ),
    "value outside the allowed set": (
        "consent_events",
        "UPDATE consent_events SET status = 'pending' WHERE consent_event_id = 'ce4'",
        ("expect_column_values_to_be_in_set", "status",
         "1 outside the allowed set, e.g. 'pending'"),
    ),
    "negative price": (
        "products",
        "UPDATE products SET price = -5 WHERE product_id = 'p2'",
        ("expect_column_values_to_be_between", "price", "1 below 0, e.g. -5.0"),
    ),
    "negative total on a sale": (
        "orders",
        "UPDATE orders SET total = -12.5 WHERE order_id = 'o2'",
        ("expect_column_values_to_be_between", "total",
         "1 below 0 where kind = 'sale', e.g. -12.5"),
    ),
    "zero quantity": (
        "order_items",
        "UPDATE order_items SET quantity = 0 WHERE order_id = 'o2'",
        ("expect_column_values_to_not_be_in_set", "quantity", "1 equal to 0"),
    ),
    "too many missing e-mails": (
        "customers",
        "UPDATE customers SET email = NULL WHERE customer_id IN ('c1', 'c2', 'c3')",
        ("expect_column_values_to_not_be_null", "email", "3 null (15.0%), at most 10% allowed"),
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defect_fails_exactly_its_expectation(con, defect):
    table, statement, expected = DEFECTS[defect]
    con.execute(statement)

    results = validate_tables(con, [table], run_id=1)

    assert {r.table_name for r in results} == {table}
    assert failures(results) == [expected]


def test_a_few_missing_emails_are_tolerated(con):
    con.execute("UPDATE customers SET email = NULL WHERE customer_id = 'c20'")

    email = [r for r in validate_tables(con, ["customers"], run_id=1)
             if r.column_name == "email"]

    assert email[0].success
    assert email[0].observed == "1 null (5.0%), at most 10% allowed"
    assert json.loads(email[0].details)["unexpected_count"] == 1


def test_an_empty_table_fails_its_row_count_and_nothing_else(con):
    con.execute("DELETE FROM campaign_sends")

    results = validate_tables(con, ["campaign_sends", "campaign_sends"], run_id=1)

    assert failures(results) == [("expect_table_row_count_to_be_between", None, "0 rows")]
    assert len(results) == 1


def test_unknown_table_is_refused(con):
    with pytest.raises(ValueError, match="no_such_table"):
        validate_tables(con, ["orders", "no_such_table"], run_id=1)


@pytest.fixture
def events_with_duplicates(con):
    """5,000 events over 4,000 ids: 1,000 ids appear twice, so 2,000 rows share a key."""
    con.execute("DELETE FROM events")
    con.execute("""INSERT INTO events
                   SELECT 'e' || (i % 4000), 'c1', 's' || i, 'page_view',
                          TIMESTAMP '2024-01-01' + to_seconds(i), NULL, NULL, 1
                   FROM range(5000) t(i)""")
    return con


def test_large_tables_are_validated_on_a_reproducible_sample(events_with_duplicates):
    con = events_with_duplicates
    results = validate_tables(con, ["events"], run_id=1, sample_rows=1_000)

    row_count, *suite = results
    assert (row_count.observed, row_count.rows_validated, row_count.rows_in_table) == \
        ("5,000 rows", 5_000, 5_000)
    assert {(r.rows_validated, r.rows_in_table) for r in suite} == {(1_000, 5_000)}
    unique = next(r for r in suite if r.expectation == "expect_column_values_to_be_unique")
    # The same seeded sample, counted independently in SQL: rows whose id recurs in it.
    in_sample = con.sql(f"""
        SELECT count(*) FROM (
            SELECT count(*) OVER (PARTITION BY event_id) AS copies FROM events
            USING SAMPLE reservoir(1000 ROWS) REPEATABLE ({expectations.SAMPLE_SEED}))
        WHERE copies > 1""").fetchall()[0][0]
    assert 0 < in_sample < 2_000
    assert json.loads(unique.details)["unexpected_count"] == in_sample
    assert unique.observed.startswith(f"{in_sample:,} rows with a duplicated key")
    again = validate_tables(con, ["events"], run_id=2, sample_rows=1_000)
    assert [r.details for r in again] == [r.details for r in results]


def test_a_table_within_the_sample_size_is_validated_whole(events_with_duplicates):
    results = validate_tables(events_with_duplicates, ["events"], run_id=1, sample_rows=5_000)

    unique = next(r for r in results if r.expectation == "expect_column_values_to_be_unique")
    assert (unique.rows_validated, unique.rows_in_table) == (5_000, 5_000)
    assert unique.observed.startswith("2,000 rows with a duplicated key")


def test_stored_results_read_back(con):
    con.execute("UPDATE products SET price = -5 WHERE product_id = 'p2'")
    results = validate_tables(con, ["products", "events"], run_id=3)

    store_results(con, results)
    store_results(con, [])

    columns = [row[0] for row in con.sql("DESCRIBE etl_expectations").fetchall()]
    assert columns == [f.name for f in fields(ExpectationResult)]
    stored = con.sql("SELECT * FROM etl_expectations WHERE run_id = 3").fetchall()
    assert sorted(stored, key=str) == sorted((astuple(r) for r in results), key=str)
    failed = con.sql("SELECT table_name, column_name, observed FROM etl_expectations "
                     "WHERE NOT success").fetchall()
    assert failed == [("products", "price", "1 below 0, e.g. -5.0")]
    for (details,) in con.sql("SELECT details FROM etl_expectations").fetchall():
        json.loads(details)
