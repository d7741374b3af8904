"""The ETL end to end on small hand-made files whose every bad row is known."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from etl import load as load_module
from etl.load import load_files
from studio.errors import UserError
from studio.state import etl_runs, state_engine

CUSTOMERS = """\
customer_id,email,phone,country,acquisition_channel,signed_up_at,attributes,updated_at
C1,a@x.com,,DE,organic,2024-01-01 10:00:00,,2024-01-01 10:00:00
C2,b@x.com,,FR,social,2024-01-02 10:00:00,,2024-01-02 10:00:00
C3,c@x.com,,FR,social,not a date,,2024-01-02 10:00:00
,d@x.com,,FR,social,2024-01-02 10:00:00,,2024-01-02 10:00:00
C2,b@x.com,,FR,social,2024-01-02 10:00:00,,2024-01-02 10:00:00
C4,e@x.com,,US,email,2024-01-03 10:00:00,,2024-01-03 10:00:00
"""

ORDERS_HEADER = ("order_id,customer_id,is_guest,ordered_at,kind,status,currency,subtotal,"
                 "discount,total,updated_at\n")


def order_row(order_id: str, customer: str, total: float, *, when="2024-02-01 12:00:00",
              kind="sale", status="completed", guest="false") -> str:
    return (f"{order_id},{customer},{guest},{when},{kind},{status},EUR,{total},0,{total},"
            f"{when}\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def query(settings, sql: str, params=None):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def ledger_of(result, entity: str) -> dict:
    return next(row for row in result.ledger if row["entity"] == entity)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def settings(settings):
    """These hand-made files are small, so a few bad rows are a large share of each."""
    return replace(settings, quarantine_threshold=0.4)


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    write(store / "customers.csv", CUSTOMERS)
    orders = ORDERS_HEADER + "".join(order_row(f"O{i}", "C1", 10.0 + i) for i in range(20))
    orders += order_row("O100", "C2", 50.0)
    orders += order_row("O101", "C9", 5.0)  # unknown customer
    orders += order_row("O102", "", 7.0, guest="true")  # a guest checkout is fine
    orders += order_row("O103", "C4", -3.0)  # negative total on a sale
    orders += order_row("O104", "C4", -3.0, kind="return")  # a return may be negative
    orders += order_row("O105", "C4", 8.0, when="2024-13-45 99:00:00")
    write(store / "orders.csv", orders)
    return store


def test_ledger_accounts_for_every_row_and_quarantine_names_each_reason(settings, small_store):
    result = load_files(settings, [small_store], mapping="canonical")

    customers = ledger_of(result, "customers")
    assert customers == {"entity": "customers", "rows_in": 6, "inserted": 3, "updated": 0,
                         "unchanged": 0, "duplicates": 1, "quarantined": 2}
    orders = ledger_of(result, "orders")
    assert orders["rows_in"] == 26
    assert orders["quarantined"] == 3
    assert orders["inserted"] == 23
    assert query(settings, "SELECT count(*) FROM customers") == [(3,)]
    assert query(settings, "SELECT count(*) FROM orders") == [(23,)]

    quarantine = query(settings, "SELECT entity, source_file, source_line, reason FROM "
                                 "etl_quarantine ORDER BY entity, source_line")
    assert quarantine == [
        ("customers", "customers.csv", 4, "unparseable signed_up_at"),
        ("customers", "customers.csv", 5, "missing customer_id"),
        ("orders", "orders.csv", 23, "customer_id not found in customers"),
        ("orders", "orders.csv", 25, "negative total on a sale"),
        ("orders", "orders.csv", 27, "unparseable ordered_at"),
    ]
    raw = json.loads(query(settings, "SELECT raw FROM etl_quarantine WHERE source_line = 27 "
                                     "AND entity = 'orders'")[0][0])
    assert raw["ordered_at"] == "2024-13-45 99:00:00"


def test_loading_the_same_content_twice_changes_nothing(settings, small_store, tmp_path):
    load_files(settings, [small_store], mapping="canonical")
    before = query(settings, "SELECT * FROM orders ORDER BY order_id")

    again = load_files(settings, [small_store], mapping="canonical")
    assert again.ledger == []
    assert all(f["status"].startswith("skipped") for f in again.files)

    renamed = write(tmp_path / "copy" / "orders.csv",
                    (small_store / "orders.csv").read_text() + "\n")  # new bytes, same rows
    third = load_files(settings, [renamed], mapping="canonical")
    orders = ledger_of(third, "orders")
    assert (orders["inserted"], orders["updated"], orders["unchanged"]) == (0, 0, 23)
    assert query(settings, "SELECT * FROM orders ORDER BY order_id") == before


def test_a_newer_version_replaces_an_older_one_and_an_older_one_does_not(settings, small_store,
                                                                        tmp_path):
    load_files(settings, [small_store], mapping="canonical")
    header = CUSTOMERS.splitlines()[0]
    newer = write(tmp_path / "v2" / "customers.csv", "\n".join([
        header,
        "C1,new@x.com,,DE,organic,2024-01-01 10:00:00,,2024-03-01 10:00:00",
        "C2,old@x.com,,FR,social,2024-01-02 10:00:00,,2023-12-01 10:00:00",
        "C5,f@x.com,,US,email,2024-01-05 10:00:00,,2024-01-05 10:00:00",
    ]) + "\n")
    result = load_files(settings, [newer], mapping="canonical")
    assert ledger_of(result, "customers") == {
        "entity": "customers", "rows_in": 3, "inserted": 1, "updated": 1, "unchanged": 1,
        "duplicates": 0, "quarantined": 0}
    emails = dict(query(settings, "SELECT customer_id, email FROM customers"))
    assert emails == {"C1": "new@x.com", "C2": "b@x.com", "C4": "e@x.com", "C5": "f@x.com"}


def test_too_many_bad_rows_roll_back_the_whole_run(settings, small_store, tmp_path):
    load_files(settings, [small_store], mapping="canonical")
    published = file_digest(settings.warehouse_path)
    bad = ORDERS_HEADER + order_row("X1", "C1", 1.0) + order_row("X2", "nobody", 1.0)
    # 1 bad row of 2 is above the 40% threshold of these tests
    write(tmp_path / "bad" / "customers.csv",
          CUSTOMERS.splitlines()[0] + "\nC7,g@x.com,,US,email,2024-01-05 10:00:00,,"
          "2024-01-05 10:00:00\n")
    write(tmp_path / "bad" / "orders.csv", bad)

    expected = r"orders.csv: 1 of 2 orders rows \(50.0%\).*above the 40% threshold"
    with pytest.raises(UserError, match=expected):
        load_files(settings, [tmp_path / "bad"], mapping="canonical")

    assert file_digest(settings.warehouse_path) == published
    assert query(settings, "SELECT count(*) FROM customers WHERE customer_id = 'C7'") == [(0,)]
    with state_engine(settings).connect() as connection:
        last = connection.execute(select(etl_runs).order_by(etl_runs.c.run_id.desc())).first()
    assert last.status == "failed" and "threshold" in last.message


def test_a_crash_half_way_leaves_the_warehouse_as_it_was(settings, small_store, tmp_path,
                                                         monkeypatch):
    load_files(settings, [small_store], mapping="canonical")
    published = file_digest(settings.warehouse_path)
    write(tmp_path / "next" / "customers.csv",
          CUSTOMERS.splitlines()[0] + "\nC8,h@x.com,,US,email,2024-01-05 10:00:00,,"
          "2024-01-05 10:00:00\n")
    write(tmp_path / "next" / "orders.csv", ORDERS_HEADER + order_row("Y1", "C8", 1.0))
    real_merge = load_module.merge_typed_table

    def crash_on_orders(con, table, *args, **kwargs):
        if table.name == "orders":
            raise OSError("disk full")
        return real_merge(con, table, *args, **kwargs)

    monkeypatch.setattr(load_module, "merge_typed_table", crash_on_orders)
    with pytest.raises(OSError):
        load_files(settings, [tmp_path / "next"], mapping="canonical")
    assert file_digest(settings.warehouse_path) == published
    assert not list(settings.home.glob("*.next*"))


def test_orders_csv_mapping_derives_ids_and_customers(settings, tmp_path):
    path = write(tmp_path / "shop.csv", "customer_id,ordered_at,total,status\n"
                 "17,2024-05-01 09:00:00,20.5,\n"
                 "17,2024-05-03 09:00:00,-5,completed\n"
                 "18,2024-05-04 09:00:00,7,CANCELLED\n"
                 "19,yesterday,7,\n")
    result = load_files(settings, [path], mapping="orders-csv")
    assert ledger_of(result, "customers")["inserted"] == 3
    assert ledger_of(result, "orders")["inserted"] == 3
    assert ledger_of(result, "orders")["quarantined"] == 1
    rows = query(settings, "SELECT customer_id, kind, status, total FROM orders "
                           "ORDER BY ordered_at")
    assert rows == [("17", "sale", "completed", 20.5), ("17", "return", "completed", -5.0),
                    ("18", "sale", "cancelled", 7.0)]
    again = load_files(settings, [write(tmp_path / "again.csv", path.read_text() + "\n")],
                       mapping="orders-csv")
    assert ledger_of(again, "orders")["unchanged"] == 3


def test_orders_csv_with_a_wrong_header_is_refused_in_one_sentence(settings, tmp_path):
    path = write(tmp_path / "shop.csv", "customer,date,amount\n1,2024-01-01,3\n")
    with pytest.raises(UserError) as caught:
        load_files(settings, [path], mapping="orders-csv")
    message = str(caught.value)
    assert "customer_id, ordered_at, total" in message and "\n" not in message
    assert not settings.warehouse_path.exists()


def test_a_mapping_file_renames_parses_and_defaults(settings, tmp_path):
    write(tmp_path / "clients.csv", "Id,Mail,Joined\nk1,K@x.com,01/02/2024\nk2,,31/12/2023\n")
    write(tmp_path / "sales.csv", "Ref,Client,When,Amount\nr1,k1,03/02/2024 10:30,12.5\n"
                                  "r2,k2,bad,3\nr3,k2,04/02/2024 11:00,4\n")
    mapping = write(tmp_path / "shop.yaml", """
name: my-shop
tables:
  customers:
    files: "clients*.csv"
    columns: {customer_id: Id, email: Mail, signed_up_at: Joined}
    timestamp_formats: {signed_up_at: "%d/%m/%Y"}
  orders:
    files: "sales*.csv"
    columns: {order_id: Ref, customer_id: Client, ordered_at: When, total: Amount}
    timestamp_formats: {ordered_at: "%d/%m/%Y %H:%M"}
    defaults: {kind: sale, status: completed, is_guest: false, currency: EUR}
""")
    result = load_files(settings, [tmp_path / "clients.csv", tmp_path / "sales.csv"],
                        mapping=str(mapping))
    assert ledger_of(result, "customers")["inserted"] == 2
    assert ledger_of(result, "orders")["inserted"] == 2
    assert query(settings, "SELECT reason FROM etl_quarantine") == [("unparseable ordered_at",)]
    assert query(settings, "SELECT CAST(signed_up_at AS DATE)::VARCHAR FROM customers "
                           "WHERE customer_id = 'k2'") == [("2023-12-31",)]


@pytest.mark.parametrize("document, expected", [
    ("tables: {shipments: {columns: {id: x}}}", "unknown table 'shipments'"),
    ("tables: {orders: {columns: {order_id: a, colour: b}}}", "orders has no column 'colour'"),
    ("tables: {orders: {columns: {total: a}}}", "needs a source column for its key 'order_id'"),
    ("tables: [", "is not valid YAML"),
])
def test_bad_mapping_files_are_named_plainly(settings, tmp_path, document, expected):
    mapping = write(tmp_path / "m.yaml", document)
    data = write(tmp_path / "orders.csv", "a,b\n1,2\n")
    with pytest.raises(UserError, match=expected):
        load_files(settings, [data], mapping=str(mapping))


def test_unknown_files_and_mappings_are_user_errors(settings, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_files(settings, [tmp_path / "nope.csv"])
    with pytest.raises(UserError, match="Unknown mapping 'shopify'"):
        load_files(settings, [write(tmp_path / "orders.csv", "a\n1\n")], mapping="shopify")
    with pytest.raises(UserError, match="does not say which table"):
        load_files(settings, [write(tmp_path / "stuff.csv", "a\n1\n")])
