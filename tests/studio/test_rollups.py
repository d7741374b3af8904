"""The ETL's rollups: built with every load, equal to the raw rows, read only when complete."""

from __future__ import annotations

import shutil
from datetime import datetime

import duckdb
import pytest

from studio.rollups import RollupCoverage, build_rollups, has_rollups, rollup_coverage
from studio.segments.definition import Consent, SegmentDefinition
from studio.segments.operations import members
from studio.warehouse import connect_reader
from tests.conftest import make_settings
from tests.segments.reference import Store
from tests.segments.strategies import open_store


def test_a_load_publishes_rollups_that_equal_the_raw_rows(demo_home):
    con = connect_reader(demo_home)
    differences = con.execute("""
        WITH raw AS (
            SELECT customer_id, count(*) AS purchases,
                   sum(total::DECIMAL(18, 2)) AS revenue,
                   min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at
            FROM orders WHERE kind = 'sale' AND status = 'completed' AND NOT is_guest
            GROUP BY customer_id)
        SELECT count(*) FROM raw FULL JOIN customer_order_summary s USING (customer_id)
        WHERE raw.purchases IS DISTINCT FROM s.purchases
           OR raw.revenue IS DISTINCT FROM s.revenue
           OR raw.last_order_at IS DISTINCT FROM s.last_order_at
           OR raw.first_order_at IS DISTINCT FROM s.first_order_at""").fetchall()[0][0]
    buyers = con.execute("SELECT count(*) FROM customer_order_summary").fetchall()[0][0]
    latest = con.execute("SELECT max(ordered_at), (SELECT max(occurred_at) FROM consent_events)"
                         " FROM orders").fetchall()[0]
    coverage = rollup_coverage(con)
    assert differences == 0 and buyers > 1_000
    assert (coverage.orders_through, coverage.consent_through) == latest


def test_current_consent_breaks_ties_as_the_rules_do(tmp_path):
    # Two changes at the same second: the larger consent_event_id is the latest.
    moment = datetime(2024, 5, 1, 12, 0, 0)
    store = Store(
        customers=[{"customer_id": "c1", "email": "a@x.io"},
                   {"customer_id": "c2", "email": "b@x.io"}],
        consent_events=[
            {"consent_event_id": "e1", "customer_id": "c1", "channel": "email",
             "status": "unsubscribed", "occurred_at": moment},
            {"consent_event_id": "e2", "customer_id": "c1", "channel": "email",
             "status": "subscribed", "occurred_at": moment},
            {"consent_event_id": "e4", "customer_id": "c2", "channel": "email",
             "status": "unsubscribed", "occurred_at": moment},
            {"consent_event_id": "e3", "customer_id": "c2", "channel": "email",
             "status": "subscribed", "occurred_at": moment}])
    rule = SegmentDefinition("subscribed", Consent("email", "subscribed"))
    with open_store(store, tmp_path / "warehouse.duckdb") as con:
        raw = members(con, rule, moment)
        build_rollups(con)
        assert rollup_coverage(con).consent_complete_at(moment)
        assert raw == members(con, rule, moment) == ["c1"]


def test_a_warehouse_without_rollups_gets_them_on_the_next_load(demo_home, demo_store,
                                                                 tmp_path):
    from etl.load import load_files

    settings = make_settings(tmp_path / "home")
    shutil.copyfile(demo_home.warehouse_path, settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for table in ("customer_order_summary", "consent_current", "rollup_state"):
            con.execute(f"DROP TABLE {table}")
    result = load_files(settings, [demo_store], mapping="canonical")
    assert result.ledger == [] and "rollups" in result.step_seconds
    with connect_reader(settings) as con:
        assert has_rollups(con)


PURCHASED_AT = datetime(2024, 5, 1, 12, 0, 0)


def one_purchase_store() -> Store:
    """One customer with one valid purchase at :data:`PURCHASED_AT`, and no consent."""
    return Store(customers=[{"customer_id": "c1"}],
                 orders=[{"order_id": "o1", "customer_id": "c1", "ordered_at": PURCHASED_AT,
                          "kind": "sale", "status": "completed", "is_guest": False,
                          "total": 10.0}])


def test_rollups_of_another_version_are_ignored_and_rebuilt(tmp_path):
    # A warehouse whose rollups an older studio built (other definitions) must not answer.
    with open_store(one_purchase_store(), tmp_path / "warehouse.duckdb") as con:
        build_rollups(con)
        assert has_rollups(con) and rollup_coverage(con) is not None
        con.execute("UPDATE rollup_state SET version = version - 1")
        assert not has_rollups(con) and rollup_coverage(con) is None
        build_rollups(con)
        assert has_rollups(con)


@pytest.mark.parametrize("damage", [
    "DROP TABLE customer_order_summary",
    "DROP TABLE consent_current",
    "ALTER TABLE rollup_state DROP COLUMN version",
    "DELETE FROM rollup_state",
])
def test_a_missing_or_incomplete_rollup_means_no_coverage(tmp_path, damage):
    with open_store(one_purchase_store(), tmp_path / "warehouse.duckdb") as con:
        build_rollups(con)
        assert rollup_coverage(con) == RollupCoverage(PURCHASED_AT, None)
        con.execute(damage)
        assert not has_rollups(con) and rollup_coverage(con) is None
