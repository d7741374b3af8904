"""The real UCI Online Retail file: every row accounted for, the published counts met."""

from __future__ import annotations

import duckdb
import pytest

from etl.load import load_files
from tests.conftest import SHARED_DATA, make_settings

RETAIL_FILE = SHARED_DATA / "online_retail" / "online_retail_uci.csv.gz"


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("retail"))
    result = load_files(settings, [RETAIL_FILE], mapping="online-retail")
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    yield result, con
    con.close()


def test_the_ledger_accounts_for_all_541909_lines(retail):
    result, con = retail
    lines = next(row for row in result.ledger if row["entity"] == "order_items")
    assert lines["rows_in"] == 541_909
    assert (lines["inserted"] + lines["updated"] + lines["unchanged"] + lines["duplicates"]
            + lines["quarantined"]) == 541_909
    assert lines["duplicates"] == 5_268  # exact repeats of a line
    assert lines["quarantined"] == 2  # the two bad-debt adjustments with a negative price
    stored = con.execute("SELECT rows_in, inserted, duplicates, quarantined FROM etl_ledger "
                         "WHERE entity = 'order_items'").fetchall()
    assert stored == [(541_909, lines["inserted"], 5_268, 2)]


def test_it_yields_4372_customers_and_25900_invoices(retail):
    _, con = retail
    assert con.execute("SELECT count(*) FROM customers").fetchall() == [(4_372,)]
    assert con.execute("SELECT count(*) FROM orders").fetchall() == [(25_900,)]


def test_cancellations_are_returns_and_guests_stay_out_of_customers(retail):
    _, con = retail
    kinds = dict(con.execute("SELECT kind, count(*) FROM orders GROUP BY 1").fetchall())
    assert kinds == {"sale": 22_061, "return": 3_836, "adjustment": 3}
    assert con.execute("SELECT count(*) FROM orders WHERE kind = 'return' AND total > 0"
                       ).fetchall() == [(0,)]
    guests = con.execute("SELECT count(*) FROM orders WHERE is_guest").fetchall()[0][0]
    assert guests > 0
    assert con.execute("SELECT count(*) FROM orders WHERE is_guest AND customer_id IS NOT NULL"
                       ).fetchall() == [(0,)]


def test_float_text_customer_ids_are_normalised(retail):
    _, con = retail
    assert con.execute("SELECT count(*) FROM customers WHERE customer_id LIKE '%.%'"
                       ).fetchall() == [(0,)]
    assert con.execute("SELECT country FROM customers WHERE customer_id = '17850'"
                       ).fetchall() == [("United Kingdom",)]
