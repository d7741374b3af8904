"""The same definitions compile for PostgreSQL, so segments can later run on a warehouse."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from studio.segments.compiler import Compiler
from studio.segments.definition import parse_definition
from studio.segments.presets import presets
from tests.segments.handmade import AS_OF

EVERY_KIND = [
    {"profile": {"field": "attributes.points", "op": "gte", "value": 3}},
    {"profile": {"field": "email_domain", "op": "in", "value": ["shop.de"]}},
    {"profile": {"field": "email", "op": "starts_with", "value": "ann"}},
    {"profile": {"field": "signed_up_at", "op": "between", "value": ["2024-01-01", "2024-02-01"]}},
    {"consent": {"channel": "sms", "status": "unsubscribed"}},
    {"orders": {"metric": "average_order_value", "op": "between", "value": [10, 50],
                "categories": ["shoes"], "window": {"between": ["2024-01-01", "2024-03-01"]}}},
    {"events": {"event": "product_view", "op": "exactly", "count": 0,
                "properties": {"category": "shoes"}}},
    {"sequence": {"first": "add_to_cart", "then": "order", "within_hours": 2.5,
                  "then_happened": False}},
    {"campaign": {"action": "clicked", "campaign_id": "CMP001", "window": {"last_days": 5}}},
    {"score": {"target": "purchase_30d", "top_percent": 10}},
    {"rfm": {"groups": ["Champions", "Can't lose"]}},
]


@pytest.mark.parametrize("rule", EVERY_KIND, ids=lambda r: next(iter(r)))
def test_every_condition_kind_compiles_for_postgresql_with_bound_values(rule):
    definition = parse_definition({"name": "x", "rule": {"not": {"any": [rule]}}})
    compiled = Compiler(AS_OF).members_query(definition.rule).compile(
        dialect=postgresql.dialect())
    text = str(compiled)
    assert text.startswith("SELECT customers.customer_id")
    assert "%(" in text  # values are parameters...
    for value in ("shop.de", "CMP001", "Champions", "purchase_30d", "shoes"):
        assert value not in text  # ...never text


@pytest.mark.parametrize("slug", sorted(presets()))
def test_every_preset_compiles_for_postgresql(slug):
    compiled = Compiler(AS_OF).members_query(presets()[slug].rule).compile(
        dialect=postgresql.dialect())
    assert "FROM customers" in str(compiled)


@pytest.mark.parametrize("slug", sorted(presets()))
def test_the_copyable_sql_of_every_preset_runs_in_duckdb(con, slug):
    from studio.segments import operations

    text = operations.show_sql(presets()[slug], AS_OF, has_scores=False)
    copied = [row[0] for row in con.execute(text).fetchall()]
    assert sorted(copied) == operations.members(con, presets()[slug], AS_OF)
