"""The generated store through the real ETL: the ledger matches what the generator injected."""

from __future__ import annotations

import json

import duckdb
import pytest

REASONS = {  # generator's dirt kind -> the quarantine reason the checks must give it
    ("orders", "missing_key"): "missing order_id",
    ("orders", "negative_total"): "negative total on a sale",
    ("orders", "bad_timestamp"): "unparseable ordered_at",
    ("orders", "unknown_customer"): "customer_id not found in customers",
    ("customers", "missing_key"): "missing customer_id",
    ("customers", "bad_timestamp"): "unparseable signed_up_at",
    ("events", "missing_event_id"): "missing event_id",
    ("events", "missing_customer_id"): "missing customer_id",
    ("events", "bad_timestamp"): "unparseable occurred_at",
    ("events", "unknown_customer"): "customer_id not found in customers",
    ("order_items", "unknown_order"): "order_id not found in orders",
}


def entity_of(file_name: str) -> str:
    return file_name.split("/")[0].split(".")[0]


@pytest.fixture(scope="module")
def loaded(demo_store, demo_home):
    manifest = json.loads((demo_store / "manifest.json").read_text())
    con = duckdb.connect(str(demo_home.warehouse_path), read_only=True)
    yield manifest, con
    con.close()


def expected_dirt(manifest) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for section in ("dirty", "knock_on"):
        for file_name, kinds in manifest[section].items():
            for kind, n in kinds.items():
                key = (entity_of(file_name), kind)
                counts[key] = counts.get(key, 0) + n
    return counts


def test_every_injected_bad_row_is_quarantined_with_the_right_reason(loaded):
    manifest, con = loaded
    found = dict(((e, r), n) for e, r, n in con.execute(
        "SELECT entity, reason, count(*) FROM etl_quarantine GROUP BY ALL").fetchall())
    expected = {(entity, REASONS[(entity, kind)]): n
                for (entity, kind), n in expected_dirt(manifest).items() if kind != "duplicate"}
    assert found == expected


def test_the_ledger_balances_and_counts_duplicates_and_newer_versions(loaded, demo_store):
    manifest, con = loaded
    dirt = expected_dirt(manifest)
    ledger = {row[0]: row[1:] for row in con.execute(
        "SELECT entity, rows_in, inserted, updated, unchanged, duplicates, quarantined "
        "FROM etl_ledger").fetchall()}
    rows_in: dict[str, int] = {}
    for file_name, n in manifest["rows"].items():
        rows_in[entity_of(file_name)] = rows_in.get(entity_of(file_name), 0) + n
    for entity, (n, inserted, updated, unchanged, duplicates, quarantined) in ledger.items():
        assert n == rows_in[entity], entity
        assert n == inserted + updated + unchanged + duplicates + quarantined
        superseded = manifest["customer_updates"] if entity == "customers" else 0
        assert duplicates == dirt.get((entity, "duplicate"), 0) + superseded, entity
        assert inserted == manifest["clean"].get(entity, inserted), entity
    # the newer versions won: every customer carries the e-mail of its latest version
    latest = dict(duckdb.sql(
        "SELECT customer_id, arg_max(email, updated_at::TIMESTAMP) FROM read_csv(?, "
        "all_varchar = true) WHERE customer_id IS NOT NULL AND "
        "TRY_CAST(signed_up_at AS TIMESTAMP) IS NOT NULL GROUP BY 1",
        params=[str(demo_store / "customers.csv")]).fetchall())
    stored = dict(con.execute("SELECT customer_id, email FROM customers").fetchall())
    assert len(stored) == manifest["clean"]["customers"]
    assert stored == latest
