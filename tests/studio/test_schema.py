"""docs/schema.md and studio/schema.py describe the same warehouse."""

from __future__ import annotations

import re

import duckdb

from studio import schema
from tests.conftest import REPO_ROOT


def documented_columns() -> dict[str, list[tuple[str, str]]]:
    text = (REPO_ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    tables: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"### `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
            continue
        if line.startswith("#"):  # another section: its tables are not canonical ones
            current = None
            continue
        row = re.match(r"\| `(\w+)` \| (\w+) \|", line)
        if row and current is not None:
            current.append((row.group(1), row.group(2)))
    return tables


def test_every_canonical_table_and_column_is_documented_with_its_type():
    documented = documented_columns()
    assert list(documented) == [t.name for t in schema.CANONICAL_TABLES]
    for table in schema.CANONICAL_TABLES:
        declared = [(c.name, c.type) for c in table.columns if c.name != "_run_id"]
        assert documented[table.name] == declared, table.name


def test_the_ddl_creates_every_table_with_the_declared_columns(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        schema.create_all(con)
        schema.create_all(con)  # idempotent
        for table in schema.CANONICAL_TABLES:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table.name}").fetchall()]
            assert columns == table.column_names
        etl_tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'etl_%'"
        ).fetchall()}
        assert etl_tables == {"etl_ledger", "etl_quarantine", "etl_files", "etl_expectations"}


def test_every_reference_points_at_an_earlier_table_in_load_order():
    order = [t.name for t in schema.CANONICAL_TABLES]
    for position, table in enumerate(schema.CANONICAL_TABLES):
        for reference in table.references:
            assert order.index(reference.table) < position
            assert reference.table_column in schema.TABLES_BY_NAME[reference.table].column_names
