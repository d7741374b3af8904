"""The Segments page's model: rows <-> rule documents, widget descriptions, warehouse choices."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio import schema
from studio.errors import UserError
from studio.segments import builder, catalog, operations
from studio.segments.definition import (
    DefinitionError,
    node_to_document,
    parse_definition,
    parse_node,
)
from studio.segments.presets import presets

AS_OF = date(2024, 6, 30)

# ---------------------------------------------------------------- a hand-built store

CUSTOMERS = [
    # id, email, country, channel, attributes
    ("c1", "Ann@Shop.DE", "DE", "organic", '{"tier": "gold", "points": 120}'),
    ("c2", "bob@mail.com", "FR", "social", '{"tier": "silver"}'),
    ("c3", "cat@shop.de", "DE", "email", None),
    ("c4", None, "", "organic", '{"points": 5, "vip": true}'),
    ("c5", "dan@mail.com", None, "", '[1, 2]'),
    ("c6", "eve@shop.de", "AT", "social", '{"tier": "gold"}'),
]
PRODUCTS = [("p1", "Shirt", "apparel"), ("p2", "Shoe", "shoes"), ("p3", "Mug", None),
            ("p4", "Boot", "shoes")]
CAMPAIGNS = [("m1", "Spring sale", "email", "2024-03-01 09:00:00"),
             ("m2", "Summer", "sms", "2024-06-01 09:00:00")]
EVENTS = [
    # id, customer, type, properties
    ("e1", "c1", "product_view", '{"category": "shoes", "price": 30}'),
    ("e2", "c1", "product_view", '{"category": "shoes", "price": 45.5}'),
    ("e3", "c2", "product_view", '{"category": "apparel"}'),
    ("e4", "c2", "add_to_cart", '{"category": "apparel", "coupon": "SUMMER"}'),
    ("e5", "c3", "page_view", None),
    ("e6", "c3", "product_view", '{"category": ""}'),
]


@pytest.fixture
def store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    schema.create_all(con)
    con.executemany("INSERT INTO customers (customer_id, email, country, acquisition_channel, "
                    "attributes) VALUES (?, ?, ?, ?, ?)", CUSTOMERS)
    con.executemany("INSERT INTO products (product_id, name, category) VALUES (?, ?, ?)",
                    PRODUCTS)
    con.executemany("INSERT INTO campaigns (campaign_id, name, channel, sent_at) "
                    "VALUES (?, ?, ?, ?)", CAMPAIGNS)
    con.executemany("INSERT INTO events (event_id, customer_id, event_type, occurred_at, "
                    "properties) VALUES (?, ?, ?, '2024-06-01 10:00:00', ?)", EVENTS)
    con.execute("INSERT INTO orders (order_id, customer_id, is_guest, ordered_at, kind, "
                "status, total) VALUES ('o1', 'c1', false, '2024-06-30 12:00:00', 'sale', "
                "'completed', 50)")
    yield con
    con.close()


def distinct(con, query: str, params=()) -> set:
    return {row[0] for row in con.execute(query, list(params)).fetchall()}


# ---------------------------------------------------------------- choices from the warehouse


@pytest.mark.parametrize("field_name", ["country", "acquisition_channel"])
def test_profile_values_are_the_distinct_non_empty_values(store, field_name):
    expected = distinct(store, f"SELECT DISTINCT {field_name} FROM customers "
                               f"WHERE {field_name} <> ''")
    found = builder.profile_values(store, field_name)
    assert set(found) == expected and len(found) == len(expected)
    assert found[0] == ("DE" if field_name == "country" else "organic")  # most frequent first


def test_email_domains_are_lower_case_like_the_compiler_reads_them(store):
    expected = distinct(store, "SELECT DISTINCT lower(split_part(email, '@', 2)) FROM customers "
                               "WHERE email IS NOT NULL")
    assert set(builder.profile_values(store, "email_domain")) == expected == {
        "shop.de", "mail.com"}


def test_attribute_names_and_values_come_from_the_json(store):
    assert builder.attribute_names(store) == ["points", "tier", "vip"]
    expected = distinct(store, "SELECT DISTINCT json_extract_string(attributes, '$.tier') "
                               "FROM customers WHERE json_valid(attributes) "
                               "AND json_extract_string(attributes, '$.tier') IS NOT NULL")
    assert set(builder.profile_values(store, "attributes.tier")) == expected == {"gold",
                                                                                 "silver"}
    assert builder.profile_values(store, "attributes.tier")[0] == "gold"
    assert set(builder.profile_values(store, "attributes.points")) == {"120", "5"}


def test_free_text_fields_offer_no_list(store):
    for field_name in builder.FREE_TEXT_FIELDS:
        assert builder.profile_values(store, field_name) == []
    assert builder.profile_values(store, "signed_up_at") == []


def test_value_lists_are_capped(store):
    assert builder.profile_values(store, "country", limit=1) == ["DE"]


def test_categories_products_and_campaigns(store):
    assert builder.categories(store) == sorted(distinct(
        store, "SELECT DISTINCT category FROM products WHERE category <> ''"))
    products = builder.product_choices(store)
    assert [pid for pid, _ in products] == ["p1", "p2", "p3", "p4"]
    assert dict(products)["p2"] == "p2 · Shoe"
    campaigns = builder.campaign_choices(store)
    assert [cid for cid, _ in campaigns] == ["m2", "m1"]  # the latest first
    assert "Summer" in dict(campaigns)["m2"] and "SMS" in dict(campaigns)["m2"]


def test_event_properties_per_event_type(store):
    assert builder.event_property_names(store, "product_view") == ["category", "price"]
    assert builder.event_property_names(store, "add_to_cart") == ["category", "coupon"]
    assert builder.event_property_names(store, "page_view") == []
    expected = distinct(store, "SELECT DISTINCT json_extract_string(properties, '$.category') "
                               "FROM events WHERE event_type = ? "
                               "AND json_extract_string(properties, '$.category') <> ''",
                        ["product_view"])
    values = builder.event_property_values(store, "product_view", "category")
    assert set(values) == expected == {"shoes", "apparel"}
    assert values[0] == "shoes"
    assert set(builder.event_property_values(store, "product_view", "price")) == {"30", "45.5"}


def test_a_property_name_is_a_bound_value_not_sql(store):
    assert builder.event_property_values(store, "product_view", "x') OR 1=1 --") == []


def test_score_targets_are_those_the_warehouse_scored():
    con = duckdb.connect()
    assert builder.score_targets(con) == []
    con.execute("CREATE TABLE scores (customer_id VARCHAR, target VARCHAR, score DOUBLE)")
    con.execute("INSERT INTO scores VALUES ('a', 'spend_365d', 1), ('b', 'purchase_90d', .5),"
                " ('c', 'purchase_90d', .2), ('d', NULL, .1)")
    assert builder.score_targets(con) == ["purchase_90d", "spend_365d"]


def test_score_targets_need_a_scores_table(store):
    assert builder.score_targets(store) == []
    store.execute("CREATE TABLE scores (customer_id VARCHAR, target VARCHAR, "
                  "model_version VARCHAR, score DOUBLE, decile INTEGER, scored_at TIMESTAMP)")
    store.execute("INSERT INTO scores VALUES ('c1', 'purchase', 'v1', 0.9, 1, '2024-06-01'), "
                  "('c2', 'purchase', 'v1', 0.2, 9, '2024-06-01'), "
                  "('c1', 'churn', 'v1', 0.1, 9, '2024-06-01')")
    assert builder.score_targets(store) == ["churn", "purchase"]


def test_total_customers(store):
    assert builder.total_customers(store) == len(CUSTOMERS)


def test_choices_route_every_lookup_through_one_function(store):
    calls = []

    def lookup(name, *args):
        calls.append((name, args))
        return builder.LOOKUPS[name](store, *args)

    choices = builder.Choices(lookup, ["Saved one"], AS_OF)
    builder.condition_inputs("profile", {"field": "country", "op": "in", "value": []}, choices)
    assert ("profile_values", ("country",)) in calls and ("attribute_names", ()) in calls
    assert "attributes.tier" in choices.profile_fields()


def test_the_value_widget_offers_what_the_warehouse_holds(store):
    choices = builder.Choices.from_warehouse(store, as_of=AS_OF)
    body = {"field": "country", "op": "in", "value": []}
    [values] = [i for i in builder.condition_inputs("profile", body, choices) if i.slot == "value"]
    assert values.widget == "multiselect" and values.free_entry
    assert set(values.options) == distinct(store, "SELECT DISTINCT country FROM customers "
                                                  "WHERE country <> ''")
    body = {"event": "add_to_cart", "op": "at_least", "count": 1,
            "properties": {"coupon": "SUMMER"}}
    [value] = [i for i in builder.condition_inputs("events", body, choices)
               if i.slot == "prop_value"]
    assert value.options == ("SUMMER",) and value.value == "SUMMER"


# ---------------------------------------------------------------- rows <-> documents

NESTED = {"all": [
    {"profile": {"field": "country", "op": "in", "value": ["DE", "FR"]}},
    {"any": [
        {"orders": {"metric": "revenue", "op": "gte", "value": 100, "window": {"last_days": 90}}},
        {"not": {"all": [
            {"events": {"event": "add_to_cart", "op": "at_least", "count": 1}},
            {"consent": {"channel": "sms", "status": "subscribed"}}]}}]},
    {"not": {"rfm": {"groups": ["Lost"]}}}]}


@pytest.mark.parametrize("slug", sorted(presets()))
def test_every_preset_round_trips_through_the_rows(slug):
    document = node_to_document(presets()[slug].rule)
    tree = builder.tree_from_rule(document)
    assert builder.rule_from_tree(tree) == document
    assert builder.problems(tree) == {}


def test_nested_groups_and_negations_round_trip():
    tree = builder.tree_from_rule(NESTED)
    assert builder.rule_from_tree(tree) == node_to_document(parse_node(NESTED))
    inner = tree["children"][1]["children"][1]
    assert inner["group"] == "all" and inner["not"] is True and len(inner["children"]) == 2
    assert tree["children"][2] == {**tree["children"][2], "kind": "rfm", "not": True}


def test_a_bare_condition_is_shown_in_a_group_and_written_back_bare():
    rule = {"consent": {"channel": "email", "status": "subscribed"}}
    tree = builder.tree_from_rule(rule)
    assert tree["group"] == "all" and tree["children"][0]["kind"] == "consent"
    assert builder.rule_from_tree(tree) == rule
    grown = builder.add_condition(tree, tree["id"], "rfm")
    assert list(builder.rule_from_tree(grown)) == ["all"]  # two rows: a real group now
    assert builder.rule_from_tree(builder.tree_from_rule({"all": [rule]})) == {"all": [rule]}


def test_a_double_negation_keeps_its_meaning():
    rule = {"not": {"not": {"consent": {"channel": "email", "status": "subscribed"}}}}
    back = builder.rule_from_tree(builder.tree_from_rule(rule))
    assert back == {"not": {"all": [{"not": rule["not"]["not"]}]}}


def test_an_invalid_rule_is_refused_with_the_parsers_message():
    with pytest.raises(DefinitionError, match=r"rule\.all\[0\]\.profile: unknown field"):
        builder.tree_from_rule({"all": [{"profile": {"field": "shoe_size", "op": "equals",
                                                     "value": "9"}}]})


def test_ids_are_unique_and_fresh_on_every_load():
    first, second = builder.tree_from_rule(NESTED), builder.tree_from_rule(NESTED)

    def ids(node):
        return [node["id"], *(i for child in node.get("children", ()) for i in ids(child))]

    assert len(set(ids(first))) == len(ids(first)) == 8
    assert not set(ids(first)) & set(ids(second))


def test_adding_and_removing_rows():
    tree = builder.blank_tree()
    assert builder.problems(tree) == {tree["id"]: "Add a condition to start."}
    tree = builder.add_condition(tree, tree["id"], "orders")
    tree = builder.add_group(tree, tree["id"])
    group = tree["children"][1]
    assert group["group"] == "any" and len(group["children"]) == 1
    tree = builder.add_group(tree, group["id"])
    deepest = tree["children"][1]["children"][1]
    assert builder.depth_of(tree, deepest["id"]) == builder.MAX_DEPTH
    with pytest.raises(UserError, match="at most 3 levels"):
        builder.add_group(tree, deepest["id"])
    before = json.dumps(tree)
    smaller = builder.remove_node(tree, group["id"])
    assert json.dumps(tree) == before  # the edits return copies
    assert [child["kind"] for child in smaller["children"]] == ["orders"]
    assert builder.remove_node(smaller, smaller["id"])["id"] == smaller["id"]  # top stays


def test_unfinished_rows_are_named_by_id():
    tree = builder.blank_tree()
    tree = builder.add_condition(tree, tree["id"], "profile")  # country in [] : unfinished
    tree = builder.add_condition(tree, tree["id"], "consent")
    tree = builder.add_group(tree, tree["id"])
    empty = builder.add_group(tree, tree["id"])
    empty["children"][3]["children"] = []
    found = builder.problems(empty)
    assert found == {tree["children"][0]["id"]: "Pick at least one value.",
                     tree["children"][2]["children"][0]["id"]: "Pick at least one value.",
                     empty["children"][3]["id"]:
                         "This group is empty: add a condition or remove it."}


@pytest.mark.parametrize(("kind", "body", "message"), [
    ("profile", {"field": "email", "op": "contains", "value": ""}, "Enter a value."),
    ("rfm", {"groups": []}, "Pick at least one RFM group."),
    ("segment", {"name": ""}, "Choose a saved segment."),
    ("events", {"event": "product_view", "op": "at_least", "count": 1,
                "properties": {"category": ""}}, "Choose a value for the property filter."),
    ("orders", {"metric": "revenue", "op": "between", "value": [500, 100]},
     "Between needs low <= high."),
    ("score", {"target": "purchase", "top_percent": 0}, "Top_percent must be more than 0, "
                                                          "at most 100."),
])
def test_a_problem_is_one_sentence(kind, body, message):
    assert builder.problem(kind, body) == message


# ---------------------------------------------------------------- widgets of a condition


def fixed_choices() -> builder.Choices:
    values = {"profile_values": ["DE", "FR"], "attribute_names": ["tier"],
              "categories": ["apparel", "shoes"], "products": [("p1", "p1 · Shirt")],
              "campaigns": [("m1", "m1 · Spring sale")], "event_property_names": ["category"],
              "event_property_values": ["shoes", "apparel"], "score_targets": ["purchase"]}
    return builder.Choices(lambda name, *args: values[name], ["Saved one"], AS_OF)


def replay(kind: str, body: dict, choices: builder.Choices) -> dict:
    """What the page does when no widget changes: every input gives back its value."""
    return builder.edit_condition(kind, body, choices, lambda item: item.value)


def bodies_of(node: dict):
    if "group" in node:
        for child in node["children"]:
            yield from bodies_of(child)
    else:
        yield node["kind"], node["body"]


@pytest.mark.parametrize("slug", sorted(presets()))
def test_untouched_widgets_leave_every_preset_condition_as_it_was(slug):
    tree = builder.tree_from_rule(node_to_document(presets()[slug].rule))
    for kind, body in bodies_of(tree):
        assert replay(kind, body, fixed_choices()) == body


@pytest.mark.parametrize("kind", list(builder.KIND_LABELS))
def test_every_kind_has_a_default_that_its_widgets_keep(kind):
    body = builder.default_body(kind, AS_OF)
    assert replay(kind, body, fixed_choices()) == body
    inputs = builder.condition_inputs(kind, body, fixed_choices())
    assert len({item.key for item in inputs}) == len(inputs)  # keys unique within a row
    assert all(c.isalnum() or c in "-_" for item in inputs for c in item.key)


def test_a_new_field_type_brings_its_own_operators_and_value():
    choices = fixed_choices()
    body = {"field": "country", "op": "in", "value": ["DE"]}
    seen = []

    def draw(item):
        seen.append((item.slot, item.widget, item.options if item.slot == "op" else None))
        return "signed_up_at" if item.slot == "field" else item.value

    edited = builder.edit_condition("profile", body, choices, draw)
    assert edited == {"field": "signed_up_at", "op": "within_last_days", "value": 30}
    assert seen[1] == ("op", "select", catalog.DATE_OPERATORS)  # drawn after the change
    assert seen[2][:2] == ("value", "number")

    between = builder.apply_input("profile", edited, "op", "between", choices)
    inputs = builder.condition_inputs("profile", between, choices)
    assert [(i.slot, i.widget) for i in inputs if i.widget != "words"][-2:] == [
        ("low", "date"), ("high", "date")]
    later = builder.apply_input("profile", between, "high", date(2024, 5, 31), choices)
    assert later["value"] == ["2024-05-31", "2024-05-31"]  # default low: 30 days before
    parsed = parse_node({"profile": later})
    assert parsed.value == (datetime(2024, 5, 31), datetime(2024, 5, 31))


def test_orders_widgets_write_the_document_the_cli_takes():
    choices = fixed_choices()
    body = builder.default_body("orders", AS_OF)
    for slot, value in [("metric", "revenue"), ("op", "gte"), ("value", 250.0),
                        ("window", "last_days"), ("window_days", 60),
                        ("categories", ["shoes"])]:
        body = builder.apply_input("orders", body, slot, value, choices)
    assert body == {"metric": "revenue", "op": "gte", "value": 250,
                    "window": {"last_days": 60}, "categories": ["shoes"]}
    assert node_to_document(parse_node({"orders": body})) == {"orders": body}
    dated = builder.apply_input("orders", body, "metric", "last_order_date", choices)
    assert dated["op"] == "more_than_days_ago" and dated["value"] == 90
    window = builder.apply_input("orders", body, "window", "between", choices)
    assert window["window"] == {"between": ["2024-05-31", "2024-06-30"]}


def test_event_property_filter_and_score_switch():
    choices = fixed_choices()
    body = builder.default_body("events", AS_OF)
    body = builder.apply_input("events", body, "prop_name", "category", choices)
    assert builder.problem("events", body) == "Choose a value for the property filter."
    body = builder.apply_input("events", body, "prop_value", "shoes", choices)
    assert body["properties"] == {"category": "shoes"} and builder.problem("events", body) is None
    assert "properties" not in builder.apply_input("events", body, "event", "order", choices)
    score = builder.apply_input("score", builder.default_body("score"), "op", "gte", choices)
    assert score == {"target": "purchase_90d", "gte": 0.5}


def test_number_widgets_always_hold_their_value_and_one_type():
    body = {"metric": "revenue", "op": "gte", "value": -20}
    value_input = next(i for i in builder.condition_inputs("orders", body, fixed_choices())
                       if i.slot == "value")
    assert value_input.minimum is None and value_input.value == -20.0
    count = next(i for i in builder.condition_inputs("orders", builder.default_body("orders"),
                                                     fixed_choices()) if i.slot == "value")
    assert {type(count.value), type(count.minimum), type(count.step)} == {int}


# ---------------------------------------------------------------- random rules

CONDITIONS = st.one_of(
    st.builds(lambda values: {"profile": {"field": "country", "op": "in", "value": values}},
              st.lists(st.sampled_from(["DE", "FR", "AT"]), min_size=1, max_size=3,
                       unique=True)),
    st.builds(lambda channel, status: {"consent": {"channel": channel, "status": status}},
              st.sampled_from(catalog.CHANNELS), st.sampled_from(catalog.CONSENT_STATUSES)),
    st.builds(lambda n, days: {"orders": {"metric": "count", "op": "gte", "value": n,
                                          **({"window": {"last_days": days}} if days else {})}},
              st.integers(0, 5), st.one_of(st.none(), st.integers(1, 400))),
    st.builds(lambda event, n: {"events": {"event": event, "op": "at_most", "count": n}},
              st.sampled_from(catalog.EVENT_TYPES), st.integers(0, 3)),
    st.builds(lambda groups: {"rfm": {"groups": groups}},
              st.lists(st.sampled_from(catalog.RFM_GROUPS), min_size=1, max_size=3,
                       unique=True)),
)
RULES = st.recursive(
    st.one_of(CONDITIONS, st.builds(lambda c: {"not": c}, CONDITIONS)),
    lambda children: st.one_of(
        st.builds(lambda op, items: {op: items}, st.sampled_from(["all", "any"]),
                  st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda op, items: {"not": {op: items}}, st.sampled_from(["all", "any"]),
                  st.lists(children, min_size=1, max_size=3))),
    max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(RULES)
def test_random_rules_round_trip_and_their_widgets_change_nothing(rule):
    canonical = node_to_document(parse_node(rule))
    if "not" in canonical and "not" in canonical["not"]:
        return  # a double negation comes back in another (equivalent) form
    tree = builder.tree_from_rule(rule)
    assert builder.rule_from_tree(tree) == canonical
    for kind, body in bodies_of(tree):
        assert replay(kind, body, fixed_choices()) == body


# ---------------------------------------------------------------- drafts, dates, words


def test_a_draft_from_text_and_its_document():
    text = json.dumps({"name": "Lapsed", "description": " old VIPs ", "as_of": "2024-05-01",
                       "rule": NESTED})
    draft = builder.draft_from_text(text)
    assert (draft.name, draft.as_of) == ("Lapsed", datetime(2024, 5, 1))
    document = builder.segment_document(draft.name, draft.description, draft.tree, draft.as_of)
    assert document["description"] == "old VIPs"
    back, original = parse_definition(document), parse_definition(text)
    assert (back.name, back.rule, back.as_of) == (original.name, original.rule, original.as_of)
    unnamed = builder.segment_document("  ", "", draft.tree)
    assert unnamed["name"] == "Untitled segment" and "as_of" not in unnamed


@pytest.mark.parametrize(("text", "message"), [
    ("", "The JSON box is empty"),
    ('{"name": "x", "rule": {"all": [', "The segment is not valid JSON or YAML"),
    ('{"name": "x", "rule": {"all": []}}', "rule.all: a group needs a non-empty list"),
    ('{"name": "x", "rule": {"orders": {"metric": "revenue", "op": "gte", "value": "lots"}}}',
     "rule.orders.value: value must be a number"),
])
def test_bad_json_is_one_sentence(text, message):
    with pytest.raises(DefinitionError) as raised:
        builder.draft_from_text(text)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_default_date_means_the_default_moment():
    latest = datetime(2024, 12, 31, 23, 57, 20)
    assert builder.as_of_moment(date(2024, 12, 31), latest) == latest
    assert builder.as_of_moment(date(2024, 9, 30), latest) == datetime(2024, 9, 30, 23, 59, 59)


@pytest.mark.parametrize(("document", "words"), [
    ({"orders": {"metric": "revenue", "op": "gte", "value": 500}},
     "Revenue is at least 500, all time"),
    ({"orders": {"metric": "count", "op": "equals", "value": 0, "window": {"last_days": 30},
                 "categories": ["shoes"]}},
     "Number of orders is 0, in the last 30 days (only orders with products in shoes)"),
    ({"events": {"event": "add_to_cart", "op": "at_least", "count": 1,
                 "properties": {"category": "shoes"}}},
     "Added to cart at least 1 time, all time where category = shoes"),
    ({"sequence": {"first": "add_to_cart", "then": "order", "within_hours": 24,
                   "then_happened": False, "window": {"last_days": 7}}},
     "Added to cart, then did not placed an order within 24 hours, in the last 7 days"),
    ({"profile": {"field": "signed_up_at", "op": "between",
                  "value": ["2024-01-01T00:00:00", "2024-02-01T00:00:00"]}},
     "Sign-up date between 2024-01-01 and 2024-02-01"),
    ({"campaign": {"action": "clicked", "campaign_id": None}}, "Clicked any campaign, all time"),
    ({"score": {"target": "purchase", "top_percent": 10}}, "Score purchase in the top 10%"),
    ({"rfm": {"groups": ["Champions", "Loyal"]}}, "RFM group is Champions or Loyal"),
    ({"segment": {"name": "VIPs"}}, "Member of segment VIPs"),
    ({"consent": {"channel": "sms", "status": "never_subscribed"}},
     "SMS consent: never subscribed"),
])
def test_conditions_in_words(document, words):
    assert builder.describe(document) == words


def test_an_explanation_is_a_nested_list_with_yes_and_no():
    leaf_yes = operations.Explanation("x", True, {"rfm": {"groups": ["Lost"]}})
    leaf_no = operations.Explanation("y", False, {"consent": {"channel": "email",
                                                              "status": "subscribed"}})
    negation = operations.Explanation("not", True, {"not": leaf_no.document}, [leaf_no])
    top = operations.Explanation("all", True, {"all": []}, [leaf_yes, negation])
    assert builder.explanation_markdown(top).splitlines() == [
        "- :green-badge[yes] **All of these**",
        "    - :green-badge[yes] RFM group is Lost",
        "    - :green-badge[yes] **Not**",
        "        - :red-badge[no] E\\-mail consent\\: is subscribed",
    ]


def test_overlap_figure_shows_every_size():
    import polars as pl

    sizes = pl.DataFrame({"segments": ["A", "B", "A & B"], "size": [1, 1, 2],
                          "customers": [30, 50, 12]})
    bars = builder.overlap_figure(sizes).data[0]
    assert list(bars.y) == ["B", "A", "A & B"] and list(bars.x) == [50, 30, 12]


def test_preview_pages():
    assert [builder.preview_pages(n, 50) for n in (0, 1, 50, 51, 500)] == [1, 1, 1, 2, 10]
