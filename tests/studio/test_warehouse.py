"""Readers are sealed and see each publication; writers publish atomically, one at a time."""

from __future__ import annotations

import duckdb
import pytest

from studio.errors import UserError
from studio.warehouse import connect_reader, fetch_scalar, warehouse_version, writer


def publish_customers(settings, *ids: str) -> None:
    with writer(settings) as con:
        con.executemany("INSERT INTO customers (customer_id) VALUES (?)", [[i] for i in ids])


def test_no_warehouse_is_a_user_error(settings):
    with pytest.raises(UserError, match="No warehouse at .* run 'studio demo'"):
        connect_reader(settings)


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY customers TO '/tmp/leak.csv'",
    "SET enable_external_access = true",
    "INSERT INTO customers (customer_id) VALUES ('x')",
    "DROP TABLE customers",
    "ATTACH '/tmp/other.duckdb' AS other",
])
def test_a_reader_cannot_touch_files_or_change_anything(settings, statement):
    publish_customers(settings, "a")
    con = connect_reader(settings)
    with pytest.raises(duckdb.Error):
        con.execute(statement)
    assert fetch_scalar(con, "SELECT count(*) FROM customers") == 1


def test_a_reader_keeps_its_version_and_a_new_reader_sees_the_next(settings):
    publish_customers(settings, "a")
    first_version = warehouse_version(settings)
    old = connect_reader(settings)
    publish_customers(settings, "b", "c")
    assert warehouse_version(settings) != first_version
    new = connect_reader(settings)
    assert fetch_scalar(old, "SELECT count(*) FROM customers") == 1
    assert fetch_scalar(new, "SELECT count(*) FROM customers") == 3


def test_a_failing_writer_publishes_nothing(settings):
    publish_customers(settings, "a")
    version = warehouse_version(settings)
    with pytest.raises(RuntimeError):
        with writer(settings) as con:
            con.execute("INSERT INTO customers (customer_id) VALUES ('b')")
            raise RuntimeError("boom")
    assert warehouse_version(settings) == version
    assert fetch_scalar(connect_reader(settings), "SELECT count(*) FROM customers") == 1
