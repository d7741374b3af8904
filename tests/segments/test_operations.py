"""Count, members, preview, explain and overlap on a store where every answer is known."""

from __future__ import annotations

import pytest

from studio.errors import UserError
from studio.segments import operations
from studio.segments.definition import parse_definition
from tests.segments.handmade import AS_OF


def segment(rule: dict, name: str = "test"):
    return parse_definition({"name": name, "rule": rule})


@pytest.mark.parametrize("rule, expected", [
    ({"profile": {"field": "country", "op": "equals", "value": "DE"}}, ["c1", "c3"]),
    ({"not": {"profile": {"field": "country", "op": "equals", "value": "DE"}}}, ["c2", "c4"]),
    ({"profile": {"field": "country", "op": "not_equals", "value": "DE"}}, ["c2"]),
    ({"profile": {"field": "email_domain", "op": "equals", "value": "shop.de"}}, ["c1", "c3"]),
    ({"profile": {"field": "email", "op": "contains", "value": "BOB"}}, ["c2"]),
    ({"profile": {"field": "attributes.tier", "op": "in", "value": ["gold", "silver"]}},
     ["c1", "c2"]),
    ({"profile": {"field": "attributes.points", "op": "gte", "value": 100}}, ["c1"]),
    ({"profile": {"field": "signed_up_at", "op": "within_last_days", "value": 30}}, ["c3"]),
    ({"profile": {"field": "signed_up_at", "op": "not_set"}}, ["c4"]),
    ({"profile": {"field": "signed_up_at", "op": "before", "value": "2024-03-01"}}, ["c1"]),
    ({"profile": {"field": "signed_up_at", "op": "between",
                  "value": ["2024-03-01", "2024-06-20"]}}, ["c2", "c3"]),
    ({"consent": {"channel": "email", "status": "subscribed"}}, ["c1", "c3"]),
    ({"consent": {"channel": "email", "status": "unsubscribed"}}, ["c2"]),
    ({"consent": {"channel": "email", "status": "never_subscribed"}}, ["c4"]),
    ({"consent": {"channel": "sms", "status": "never_subscribed"}}, ["c2", "c3"]),
    ({"orders": {"metric": "count", "op": "gte", "value": 2}}, ["c1"]),
    ({"orders": {"metric": "count", "op": "equals", "value": 0}}, ["c3", "c4"]),
    ({"orders": {"metric": "revenue", "op": "lt", "value": 100}}, ["c2", "c3", "c4"]),
    ({"orders": {"metric": "average_order_value", "op": "gte", "value": 100}}, ["c1"]),
    ({"orders": {"metric": "last_order_date", "op": "within_last_days", "value": 30}}, ["c1"]),
    ({"orders": {"metric": "first_order_date", "op": "not_set"}}, ["c3", "c4"]),
    ({"orders": {"metric": "count", "op": "gte", "value": 1, "window": {"last_days": 30}}},
     ["c1"]),
    ({"any": [{"profile": {"field": "phone", "op": "not_set"}},
              {"all": [{"profile": {"field": "country", "op": "equals", "value": "DE"}},
                       {"not": {"orders": {"metric": "count", "op": "gte", "value": 1}}}]}]},
     ["c2", "c3"]),
])
def test_members_match_the_hand_worked_answer(con, rule, expected):
    assert operations.members(con, segment(rule), AS_OF) == expected


def test_count_shows_raw_and_sendable_side_by_side(con):
    everyone = segment({"not": {"profile": {"field": "customer_id", "op": "equals",
                                            "value": "nobody"}}})
    result = operations.count(con, everyone, AS_OF)
    # e-mail: c1 and c3 subscribed with an address; SMS: c1 and c4 (c3's is after as_of)
    assert (result.matched, result.email_sendable, result.sms_sendable) == (4, 2, 2)
    assert result.as_of == AS_OF


def test_the_default_as_of_is_the_latest_order(con):
    assert operations.default_as_of(con).isoformat() == "2024-07-05T10:00:00"


def test_explain_says_which_condition_failed(con):
    rule = segment({"all": [{"profile": {"field": "country", "op": "equals", "value": "DE"}},
                            {"orders": {"metric": "count", "op": "gte", "value": 2}}]})
    inside = operations.explain(con, rule, "c1", AS_OF)
    assert inside.holds and [c.holds for c in inside.children] == [True, True]
    outside = operations.explain(con, rule, "c3", AS_OF)
    assert not outside.holds and [c.holds for c in outside.children] == [True, False]
    assert outside.children[1].label.startswith("orders:")
    with pytest.raises(UserError, match="No customer has the id 'zz'"):
        operations.explain(con, rule, "zz", AS_OF)


def test_overlap_counts_every_intersection(con):
    german = segment({"profile": {"field": "country", "op": "equals", "value": "DE"}})
    buyers = segment({"orders": {"metric": "count", "op": "gte", "value": 1}})
    table = operations.overlap(con, {"german": german, "buyers": buyers}, AS_OF)
    assert dict(zip(table["segments"], table["customers"], strict=True)) == {
        "german": 2, "buyers": 2, "german & buyers": 1}


def test_preview_pages_and_sorts(con):
    everyone = segment({"not": {"profile": {"field": "customer_id", "op": "equals",
                                            "value": "nobody"}}})
    first = operations.preview(con, everyone, AS_OF, limit=2, sort_by="revenue",
                               descending=True)
    assert first["customer_id"].to_list() == ["c1", "c2"]
    assert first["revenue"].to_list() == [200.0, 40.0]
    second = operations.preview(con, everyone, AS_OF, limit=2, offset=2, sort_by="revenue",
                                descending=True)
    assert sorted(second["customer_id"].to_list()) == ["c3", "c4"]
    unknown_sort = operations.preview(con, everyone, AS_OF, sort_by="1; DROP TABLE orders")
    assert unknown_sort["customer_id"].to_list() == ["c1", "c2", "c3", "c4"]


def test_a_score_condition_without_scores_is_a_clear_error(con):
    from studio.segments.definition import DefinitionError

    with pytest.raises(DefinitionError, match="no scores yet|has none yet"):
        operations.count(con, segment({"score": {"target": "purchase_30d", "gte": 0.5}}), AS_OF)
