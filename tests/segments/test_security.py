"""Nothing a user types reaches the SQL text: hostile values are inert, bad names refused."""

from __future__ import annotations

import pytest

from studio.segments import operations
from studio.segments.compiler import Compiler
from studio.segments.definition import DefinitionError, parse_definition
from studio.sql import to_sql
from tests.segments.handmade import AS_OF

HOSTILE = ["' OR 1=1--", "x'); DROP TABLE orders;--", "read_csv('/etc/passwd')",
           "\"; SELECT * FROM customers; --", "%' OR '%'='", "$1 OR true", "' UNION SELECT 1--"]


def every_value_position(value: str) -> list[dict]:
    """A rule for each place a user's text can go."""
    window = {"last_days": 30}
    return [
        {"profile": {"field": "country", "op": "equals", "value": value}},
        {"profile": {"field": "email", "op": "in", "value": [value, "x"]}},
        {"profile": {"field": "email", "op": "contains", "value": value}},
        {"profile": {"field": "email_domain", "op": "ends_with", "value": value}},
        {"profile": {"field": "attributes.tier", "op": "equals", "value": value}},
        {"orders": {"metric": "count", "op": "gte", "value": 1, "products": [value]}},
        {"orders": {"metric": "count", "op": "gte", "value": 1, "categories": [value]}},
        {"events": {"event": "product_view", "op": "at_least", "count": 1, "window": window,
                    "properties": {"category": value}}},
        {"sequence": {"first": "add_to_cart", "then": "order", "within_hours": 24,
                      "first_properties": {"category": value}}},
        {"campaign": {"action": "received", "campaign_id": value}},
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_bound_parameters_and_match_nothing(con, value):
    for rule in every_value_position(value):
        definition = parse_definition({"name": "probe", "rule": rule})
        sql, params = to_sql(Compiler(AS_OF).members_query(definition.rule))
        assert value not in sql
        assert params  # the value travels as a parameter (lower-cased or escaped for LIKE)
        assert operations.members(con, definition, AS_OF) == []
    assert con.execute("SELECT count(*) FROM orders").fetchall() == [(5,)]


@pytest.mark.parametrize("rule, message", [
    ({"profile": {"field": "country; DROP TABLE orders", "op": "equals", "value": "x"}},
     "unknown field"),
    ({"profile": {"field": "attributes.x') OR 1=1 --", "op": "equals", "value": "x"}},
     "unknown field"),
    ({"profile": {"field": "country", "op": "= 'DE' OR 1=1 --", "value": "x"}},
     "does not apply"),
    ({"events": {"event": "page_view'; DROP TABLE events;--", "op": "at_least", "count": 1}},
     "unknown event"),
    ({"events": {"event": "page_view", "op": "at_least", "count": 1,
                 "properties": {"category') = 'x' OR ('1": "y"}}}, "property name"),
    ({"orders": {"metric": "sum(total)) FROM orders; --", "op": "gte", "value": 1}},
     "unknown metric"),
    ({"score": {"target": "x' OR '1'='1", "gte": 0.5}}, "letters, digits"),
    ({"orders": {"metric": "count", "op": "gte", "value": "1 OR 1=1"}}, "must be a number"),
    ({"profile": {"field": "signed_up_at", "op": "before", "value": "now(); DROP"}},
     "bad date"),
])
def test_names_outside_the_catalog_are_refused_on_load(rule, message):
    with pytest.raises(DefinitionError, match=message):
        parse_definition({"name": "probe", "rule": rule})


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY orders TO '/tmp/orders.csv'",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "DELETE FROM orders",
])
def test_the_page_connection_cannot_read_files_or_change_data(con, statement):
    import duckdb

    with pytest.raises(duckdb.Error):
        con.execute(statement)
    assert con.execute("SELECT count(*) FROM orders").fetchall() == [(5,)]


def test_preview_sort_column_outside_the_list_is_ignored(con):
    definition = parse_definition({"rule": {"profile": {"field": "country", "op": "is_set"}}})
    page = operations.preview(con, definition, AS_OF, sort_by="customer_id; DROP TABLE orders")
    assert page["customer_id"].to_list() == ["c1", "c2", "c3"]
    assert con.execute("SELECT count(*) FROM orders").fetchall() == [(5,)]
