"""Segment documents: every mistake is named where it is; valid documents round-trip."""

from __future__ import annotations

import json

import pytest

from studio.segments.definition import (
    DefinitionError,
    definition_to_document,
    parse_definition,
)
from studio.segments.presets import PRESET_DIR, presets


@pytest.mark.parametrize("document, message", [
    ("{not json", "not valid JSON or YAML"),
    ({"name": "x"}, "no 'rule'"),
    ({"rule": {}, "colour": "red"}, r"unknown key\(s\) colour"),
    ({"rule": {"all": []}}, "rule.all: a group needs a non-empty list"),
    ({"rule": {"every": []}}, "unknown node 'every'"),
    ({"rule": {"all": [{"profile": {"field": "x", "op": "equals", "value": 1}}]}},
     r"rule.all\[0\].profile: unknown field 'x'"),
    ({"rule": {"profile": {"field": "country", "op": "before", "value": "2024-01-01"}}},
     "operator 'before' does not apply to text field 'country'"),
    ({"rule": {"profile": {"field": "signed_up_at", "op": "after", "value": "31/12/2024"}}},
     "bad date '31/12/2024'"),
    ({"rule": {"profile": {"field": "signed_up_at", "op": "between",
                           "value": ["2024-02-01", "2024-01-01"]}}}, "low <= high"),
    ({"rule": {"orders": {"metric": "count", "op": "gte", "value": 1,
                          "window": {"last_weeks": 2}}}}, "unknown window 'last_weeks'"),
    ({"rule": {"orders": {"metric": "last_order_date", "op": "gte", "value": 1}}},
     "operator 'gte' does not apply to last_order_date"),
    ({"rule": {"events": {"event": "purchase", "op": "at_least", "count": 1}}},
     "unknown event 'purchase'"),
    ({"rule": {"events": {"event": "order", "op": "at_least", "count": -1}}},
     "whole number, 0 or more"),
    ({"rule": {"sequence": {"first": "add_to_cart", "then": "order", "within_hours": 0}}},
     "more than 0"),
    ({"rule": {"consent": {"channel": "post", "status": "subscribed"}}},
     "unknown channel 'post'"),
    ({"rule": {"rfm": {"groups": ["Champions", "Whales"]}}}, "unknown RFM group 'Whales'"),
    ({"rule": {"score": {"target": "churn", "top_percent": 150}}}, "at most 100"),
])
def test_mistakes_are_named_with_their_place(document, message):
    with pytest.raises(DefinitionError, match=message):
        parse_definition(document)


def test_errors_are_one_sentence():
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"rule": {"any": [{"not": {"profile": {"field": "nope", "op": "x"}}}]}})
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("rule.any[0].not.profile:")


def test_yaml_documents_are_accepted():
    definition = parse_definition("name: Germans\nrule:\n  profile: {field: country, "
                                  "op: equals, value: DE}\n")
    assert definition.name == "Germans"


@pytest.mark.parametrize("path", sorted(PRESET_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_presets_load_and_round_trip(path):
    definition = presets()[path.stem]
    assert definition.description
    again = parse_definition(json.loads(json.dumps(definition_to_document(definition))))
    assert again == definition


def test_there_are_the_seven_presets_the_issue_asks_for():
    assert set(presets()) == {
        "abandoned-cart", "browse-abandonment", "one-time-buyers", "lapsed-vips",
        "winback-candidates", "high-intent-no-recent-order", "new-subscribers-without-purchase"}
