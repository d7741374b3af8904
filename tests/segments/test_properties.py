"""The segment compiler agrees with an independent evaluator on random stores and rules.

``tests/segments/reference.py`` evaluates a rule in plain Python straight from
docs/segments.md; the compiler turns it into SQL run by DuckDB. On random small stores
(edges of days, windows and ``within_hours`` favoured), for random trees of every
condition kind but ``segment``, the two must name the same customers: once with a new
store per example (breadth; a failure is minimised here) and once with Hypothesis drawing
and shrinking the store. A hand-worked three-customer store checks the evaluator itself
(and the compiler) first. Groups of sibling orders or events conditions over one window,
which the compiler merges into one grouped scan, get a property of their own, and so do
rules evaluated at the end of the data, where the compiler reads the ETL's rollups.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from studio.rollups import build_rollups
from studio.segments.definition import (
    Campaign,
    Consent,
    Events,
    Group,
    Not,
    Orders,
    Profile,
    Rfm,
    Score,
    SegmentDefinition,
    Sequence,
    Window,
    node_to_document,
    parse_node,
)
from tests.segments.reference import Store, evaluate
from tests.segments.strategies import (
    CONDITION_DRAWERS,
    CONDITION_KINDS,
    Randomly,
    Scenario,
    open_store,
    random_scenario,
    scenarios,
    trees,
)

try:
    from studio.segments.operations import members
except ImportError:  # the compiler is not there yet: only the evaluator is checked
    members = None

needs_compiler = pytest.mark.skipif(members is None, reason="studio.segments.operations "
                                    "does not import yet")

RULES_PER_STORE = 8
SETTINGS = {"deadline": None, "database": None,
            "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow, HealthCheck.data_too_large]}


def compiled_members(store: Store, rules: list, as_of: datetime | None) -> list[list[str]]:
    """The compiler's members of each rule, run on ``store`` in a fresh DuckDB file.

    The file holds the ETL's rollups, as every loaded warehouse does: they are read when
    ``as_of`` is at or after the last order (or consent change), the raw rows otherwise.
    """
    with tempfile.TemporaryDirectory() as folder:
        with open_store(store, Path(folder) / "warehouse.duckdb") as con:
            build_rollups(con)
            return [members(con, SegmentDefinition("property", rule), as_of) for rule in rules]


def latest_moment(store: Store) -> datetime:
    """The last moment anything in ``store`` happened: an ``as_of`` the rollups cover."""
    return max(value for name in Store.TABLES for row in getattr(store, name)
               for value in row.values() if isinstance(value, datetime))


def disagreements(store: Store, rules, as_of: datetime) -> list[tuple]:
    """(rule, expected, got) for every rule on which the compiler and the reference differ."""
    found = []
    for rule, got in zip(rules, compiled_members(store, list(rules), as_of), strict=True):
        assert got == sorted(got), "members() returns the ids sorted"
        expected = evaluate(rule, store, as_of)
        if set(got) != expected:
            found.append((rule, expected, set(got)))
    return found


# ------------------------------------------------------------------ minimising a failure


def subtrees(node) -> list:
    """``node`` and every node under it."""
    if isinstance(node, Group):
        return [node] + [n for child in node.children for n in subtrees(child)]
    if isinstance(node, Not):
        return [node] + subtrees(node.child)
    return [node]


def without(store: Store, table: str, drop: set[int]) -> Store:
    """``store`` less some rows of ``table`` (and, for customers, everything of theirs)."""
    tables = {name: list(getattr(store, name)) for name in Store.TABLES}
    tables[table] = [row for i, row in enumerate(tables[table]) if i not in drop]
    if table == "customers":
        kept = {row["customer_id"] for row in tables["customers"]}
        for name in Store.TABLES:
            if name != "customers":
                tables[name] = [row for row in tables[name] if row.get("customer_id") is None
                                or row["customer_id"] in kept]
    if table == "orders" or table == "customers":
        orders = {row["order_id"] for row in tables["orders"]}
        tables["order_items"] = [row for row in tables["order_items"]
                                 if row["order_id"] in orders]
    return Store(**tables)


def minimise(store: Store, rule, as_of: datetime, budget: int = 250) -> tuple:
    """The smallest disagreeing part of ``rule``, and as few rows as still disagree.

    Rows are dropped in halves, then quarters, ... down to one at a time, table by table,
    keeping every drop after which the two sides still differ (at most ``budget`` runs).
    """
    parts = sorted(subtrees(rule), key=lambda node: len(repr(node)))
    rule = next(rule for rule, _, _ in disagreements(store, parts, as_of))
    runs = 0
    for table in ("events", "campaign_sends", "consent_events", "scores", "order_items",
                  "orders", "customers", "campaigns", "products"):
        chunk = max(1, len(getattr(store, table)) // 2)
        while chunk >= 1 and runs < budget:
            start = 0
            while start < len(getattr(store, table)) and runs < budget:
                smaller = without(store, table, set(range(start, start + chunk)))
                runs += 1
                if disagreements(smaller, [rule], as_of):
                    store = smaller
                else:
                    start += chunk
            chunk //= 2
    (rule, expected, got), = disagreements(store, [rule], as_of)
    return store, rule, expected, got


def describe(store: Store, as_of: datetime, rule, expected: set[str], got: set[str]) -> str:
    """The rule, the two answers and the rows (of the customers they disagree on, when
    the store is too big to show whole)."""
    differ = expected ^ got
    whole = sum(len(getattr(store, table)) for table in Store.TABLES) <= 40
    lines = [f"as_of = {as_of.isoformat()}",
             f"rule = {json.dumps(node_to_document(rule), default=str)}",
             f"only the reference: {sorted(expected - got)}",
             f"only the compiler: {sorted(got - expected)}"]
    for table in Store.TABLES:
        for row in getattr(store, table):
            if whole or row.get("customer_id") in differ or table in ("products", "campaigns"):
                lines.append(f"  {table}: {row}")
    return "\n".join(lines)


# ------------------------------------------------------------------ a hand-worked store

AS_OF = datetime(2025, 6, 15, 12, 0)


def tiny_store() -> Store:
    """Three customers whose membership in every condition below was worked out by hand."""
    d = datetime
    customers = [
        {"customer_id": "c1", "email": "Ann@Example.com", "phone": "+4477",
         "country": "GB", "acquisition_channel": "paid_search",
         "signed_up_at": d(2025, 1, 10, 9), "attributes": '{"tier": "Gold", "ltv": 120}'},
        {"customer_id": "c2", "email": "bob@shop.co.uk", "phone": None, "country": "FR",
         "acquisition_channel": "organic", "signed_up_at": d(2025, 6, 10, 23, 59, 59),
         "attributes": '{"tier": "silver", "ltv": 12.5, "visits": "12"}'},
        {"customer_id": "c3", "email": "", "phone": "", "country": None,
         "acquisition_channel": "", "signed_up_at": None, "attributes": None},
    ]
    products = [{"product_id": "p1", "category": "shoes"},
                {"product_id": "p2", "category": "bags"}]

    def order(order_id, customer, at, total, kind="sale", status="completed", guest=False):
        return {"order_id": order_id, "customer_id": customer, "is_guest": guest,
                "ordered_at": at, "kind": kind, "status": status, "total": total}

    orders = [
        order("o1", "c1", d(2025, 6, 1, 10), 100.0),
        order("o2", "c1", d(2025, 3, 1), 50.0),
        order("o3", "c2", AS_OF - timedelta(days=1), 30.0),
        order("o4", "c2", d(2025, 6, 16, 8), 999.0),  # after as_of
        order("o5", "c3", d(2025, 5, 1), 70.0, status="cancelled"),
        order("o6", "c3", d(2025, 5, 2), -20.0, kind="return"),
        order("o7", None, d(2025, 5, 3), 10.0, guest=True),
    ]
    items = [
        {"order_id": "o1", "line_number": 1, "product_id": "p1", "quantity": 2,
         "unit_price": 30.0, "discount": 5.0},
        {"order_id": "o1", "line_number": 2, "product_id": "p2", "quantity": 1,
         "unit_price": 45.0, "discount": None},
        {"order_id": "o2", "line_number": 1, "product_id": "p2", "quantity": 1,
         "unit_price": 50.0, "discount": 0.0},
        {"order_id": "o3", "line_number": 1, "product_id": "p1", "quantity": 1,
         "unit_price": 30.0, "discount": None},
        {"order_id": "o5", "line_number": 1, "product_id": "p1", "quantity": 1,
         "unit_price": 70.0, "discount": None},
    ]

    def event(event_id, customer, kind, at, properties=None):
        return {"event_id": event_id, "customer_id": customer, "event_type": kind,
                "occurred_at": at, "properties": properties}

    events = [
        event("e1", "c1", "product_view", d(2025, 6, 10, 10),
              '{"category": "shoes", "price": 20}'),
        event("e2", "c1", "add_to_cart", d(2025, 6, 10, 11)),
        event("e3", "c2", "product_view", d(2025, 6, 12, 9), '{"category": "bags"}'),
        event("e4", "c2", "add_to_cart", d(2025, 6, 12, 10, 30)),
        event("e5", "c2", "product_view", d(2025, 6, 15, 11, 30)),
        event("e6", "c2", "add_to_cart", d(2025, 6, 15, 12, 10)),  # after as_of
        event("e7", "c3", "add_to_cart", d(2025, 6, 1, 8)),
        event("e8", "c3", "checkout_start", d(2025, 6, 1, 8)),  # same moment
    ]

    def consent(consent_id, customer, channel, status, at):
        return {"consent_event_id": consent_id, "customer_id": customer, "channel": channel,
                "status": status, "occurred_at": at}

    consent_events = [
        consent("k1", "c1", "email", "subscribed", d(2025, 1, 1)),
        consent("k2", "c1", "email", "unsubscribed", d(2025, 5, 1)),
        consent("k3", "c1", "sms", "subscribed", d(2025, 6, 20)),  # after as_of
        consent("k4", "c2", "email", "non_subscribed", d(2025, 2, 1)),
        consent("k5", "c2", "email", "subscribed", d(2025, 4, 1)),
        consent("k6", "c3", "email", "unsubscribed", d(2025, 3, 1)),
    ]
    campaigns = [{"campaign_id": "cmp1", "channel": "email", "sent_at": d(2025, 5, 1)},
                 {"campaign_id": "cmp2", "channel": "email", "sent_at": d(2025, 5, 1)}]
    sends = [
        {"send_id": "s1", "campaign_id": "cmp1", "customer_id": "c1",
         "sent_at": d(2025, 6, 1), "opened_at": d(2025, 6, 2), "clicked_at": None},
        {"send_id": "s2", "campaign_id": "cmp2", "customer_id": "c2",
         "sent_at": d(2025, 5, 1), "opened_at": None, "clicked_at": None},
        {"send_id": "s3", "campaign_id": "cmp1", "customer_id": "c3",
         "sent_at": d(2025, 6, 14), "opened_at": d(2025, 6, 16), "clicked_at": None},
    ]

    def score(customer, value, at):
        return {"customer_id": customer, "target": "churn", "model_version": "v1",
                "score": value, "decile": None, "scored_at": at}

    scores = [score("c1", 0.9, d(2025, 6, 1)), score("c1", 0.2, d(2025, 6, 20)),
              score("c2", 0.5, d(2025, 5, 1)), score("c2", 0.9, d(2025, 6, 10)),
              score("c3", 0.1, d(2025, 6, 1))]
    return Store(customers=customers, products=products, orders=orders, order_items=items,
                 events=events, consent_events=consent_events, campaigns=campaigns,
                 campaign_sends=sends, scores=scores)


def between(start: str, end: str) -> Window:
    return Window("between", start=datetime.fromisoformat(start),
                  end=datetime.fromisoformat(end))


D = datetime.fromisoformat
HAND_WORKED = [
    # orders: c1 has o1 (06-01 10:00, 100) and o2 (03-01 00:00, 50); c2 has o3 exactly one
    # day before as_of (30); c3 only a cancelled order and a return; o4 is after as_of.
    (Orders("count", "gte", 1.0), {"c1", "c2"}),
    (Orders("count", "equals", 0.0), {"c3"}),
    (Orders("revenue", "lt", 100.0), {"c2", "c3"}),
    (Orders("revenue", "between", (30.0, 150.0)), {"c1", "c2"}),
    (Orders("average_order_value", "lt", 100.0), {"c1", "c2"}),
    (Orders("average_order_value", "not_equals", 30.0), {"c1"}),
    (Orders("last_order_date", "not_set", None), {"c3"}),
    (Orders("last_order_date", "within_last_days", 1), set()),
    (Orders("last_order_date", "within_last_days", 2), {"c2"}),
    (Orders("last_order_date", "more_than_days_ago", 1), {"c1", "c2"}),
    (Orders("first_order_date", "before", D("2025-03-01T18:00")), set()),
    (Orders("first_order_date", "before", D("2025-03-02")), {"c1"}),
    (Orders("count", "gte", 1.0, Window("last_days", days=14)), {"c2"}),
    (Orders("count", "gte", 1.0, between("2025-06-14T20:00", "2025-06-30")), {"c2"}),
    (Orders("revenue", "gte", 55.0, categories=("shoes",)), {"c1"}),
    (Orders("revenue", "equals", 55.0, categories=("shoes",)), {"c1"}),
    (Orders("count", "gte", 1.0, categories=("shoes",)), {"c1", "c2"}),
    (Orders("revenue", "equals", 95.0, products=("p2",)), {"c1"}),
    # profile
    (Profile("email_domain", "equals", "example.com"), {"c1"}),
    (Profile("email", "contains", "ANN"), {"c1"}),
    (Profile("email", "not_equals", "bob@shop.co.uk"), {"c1"}),
    (Profile("phone", "not_set"), {"c2", "c3"}),
    (Profile("country", "in", ("GB", "FR")), {"c1", "c2"}),
    (Profile("country", "not_in", ("GB",)), {"c2"}),
    (Profile("acquisition_channel", "contains", "_"), {"c1"}),
    (Profile("acquisition_channel", "contains", "%"), set()),
    (Profile("acquisition_channel", "starts_with", "PAID"), {"c1"}),
    (Profile("signed_up_at", "after", D("2025-06-09T20:00")), {"c2"}),
    (Profile("signed_up_at", "after", D("2025-06-10")), set()),
    (Profile("signed_up_at", "between", (D("2025-01-10T12:00"), D("2025-01-10T13:00"))),
     {"c1"}),
    (Profile("signed_up_at", "within_last_days", 5), {"c2"}),
    (Profile("signed_up_at", "not_set"), {"c3"}),
    (Profile("attributes.tier", "equals", "gold"), set()),
    (Profile("attributes.tier", "contains", "gold"), {"c1"}),
    (Profile("attributes.tier", "not_set"), {"c3"}),
    (Profile("attributes.ltv", "gt", 100.0), {"c1"}),
    (Profile("attributes.ltv", "equals", 12.5), {"c2"}),
    (Profile("attributes.ltv", "not_equals", 12.5), {"c1"}),
    (Profile("attributes.ltv", "equals", "12.5"), {"c2"}),
    (Profile("attributes.visits", "gt", 10.0), {"c2"}),  # the string "12" reads as 12
    (Profile("attributes.visits", "equals", 12.0), {"c2"}),
    # consent
    (Consent("email", "subscribed"), {"c2"}),
    (Consent("email", "unsubscribed"), {"c1"}),
    (Consent("email", "never_subscribed"), {"c3"}),
    (Consent("sms", "never_subscribed"), {"c1", "c2", "c3"}),
    # events: c2's second add_to_cart is after as_of
    (Events("product_view", "at_least", 1), {"c1", "c2"}),
    (Events("product_view", "at_most", 0), {"c3"}),
    (Events("product_view", "exactly", 2), {"c2"}),
    (Events("product_view", "at_least", 1, properties=(("price", "20"),)), {"c1"}),
    (Events("add_to_cart", "at_least", 2), set()),
    (Events("add_to_cart", "at_least", 1), {"c1", "c2", "c3"}),
    # sequences: c1 views then adds exactly 1 h later; c2 1.5 h later
    (Sequence("product_view", "add_to_cart", 1.0), {"c1"}),
    (Sequence("product_view", "add_to_cart", 2.0), {"c1", "c2"}),
    (Sequence("product_view", "add_to_cart", 1.0, then_happened=False), {"c2"}),
    (Sequence("product_view", "add_to_cart", 2.0,
              first_properties=(("category", "shoes"),)), {"c1"}),
    (Sequence("add_to_cart", "checkout_start", 1.0), set()),
    # campaigns: c3's open is after as_of
    (Campaign("received"), {"c1", "c2", "c3"}),
    (Campaign("opened"), {"c1"}),
    (Campaign("received", "cmp1"), {"c1", "c3"}),
    (Campaign("received", None, Window("last_days", days=30)), {"c1", "c3"}),
    (Campaign("clicked"), set()),
    # scores: latest up to as_of c1 0.9, c2 0.9, c3 0.1 (cume_dist 2/3, 2/3, 1)
    (Score("churn", "gte", 0.5), {"c1", "c2"}),
    (Score("churn", "top_percent", 66.0), set()),
    (Score("churn", "top_percent", 67.0), {"c1", "c2"}),
    # RFM: c1 (R 3, F 2 purchases) About to sleep, c2 (R 5, F 1) New, c3 no purchase
    (Rfm(("About to sleep",)), {"c1"}),
    (Rfm(("New", "Lost")), {"c2"}),
    (Not(Rfm(("About to sleep",))), {"c2", "c3"}),
    (Group("all", (Profile("country", "in", ("GB", "FR")), Consent("email", "subscribed"))),
     {"c2"}),
    (Group("any", (Profile("phone", "is_set"), Consent("email", "never_subscribed"))),
     {"c1", "c3"}),
]


@pytest.mark.parametrize(("rule", "expected"), HAND_WORKED,
                         ids=[f"{i}-{type(r).__name__}" for i, (r, _) in enumerate(HAND_WORKED)])
def test_the_reference_matches_the_hand_worked_store(rule, expected):
    assert evaluate(rule, tiny_store(), AS_OF) == expected


@needs_compiler
def test_the_compiler_matches_the_hand_worked_store():
    rules = [rule for rule, _ in HAND_WORKED]
    got = compiled_members(tiny_store(), rules, AS_OF)
    wrong = [f"{node_to_document(rule)}: expected {sorted(expected)}, got {found}"
             for (rule, expected), found in zip(HAND_WORKED, got, strict=True)
             if set(found) != expected]
    assert not wrong, "\n".join(wrong)


@needs_compiler
def test_as_of_defaults_to_the_latest_order_time():
    # The latest order is o4 (2025-06-16 08:00), so the last day holds o4 only.
    rule = Orders("count", "gte", 1.0, Window("last_days", days=1))
    assert compiled_members(tiny_store(), [rule], None) == [["c2"]]
    assert evaluate(rule, tiny_store(), datetime(2025, 6, 16, 8)) == {"c2"}


@needs_compiler
def test_a_malformed_attributes_value_leaves_the_other_customers_alone():
    # The ETL keeps the attributes text as it comes; one bad row must not stop a segment.
    store = Store(customers=[{"customer_id": "a", "attributes": '{"tier": "gold"}'},
                             {"customer_id": "b", "attributes": '{tier: gold}'},
                             {"customer_id": "c", "attributes": '{"tier": "silver"}'}])
    rules = [Profile("attributes.tier", "equals", "gold"), Profile("attributes.tier", "not_set")]
    assert [evaluate(rule, store, AS_OF) for rule in rules] == [{"a"}, {"b"}]
    assert compiled_members(store, rules, AS_OF) == [["a"], ["b"]]


# ------------------------------------------------------------------ properties


@needs_compiler
@settings(max_examples=100, phases=[Phase.explicit, Phase.generate], **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_compiler_agrees_with_the_reference_on_random_stores(seed: int):
    # Breadth: every example is a new store with new rules (see strategies.Randomly).
    # A seed does not shrink, so a failure is minimised here instead.
    scenario = random_scenario(seed, rules=RULES_PER_STORE)
    found = disagreements(scenario.store, scenario.rules, scenario.as_of)
    if found:
        rule = found[0][0]
        store, rule, expected, got = minimise(scenario.store, rule, scenario.as_of)
        pytest.fail(f"seed {seed}, {len(found)} rule(s) disagree; the first, minimised:\n"
                    + describe(store, scenario.as_of, rule, expected, got))


@needs_compiler
@settings(max_examples=30, **SETTINGS)
@given(scenario=scenarios(rules=RULES_PER_STORE))
def test_the_compiler_agrees_with_the_reference(scenario: Scenario):
    # Depth: Hypothesis draws (and on a failure shrinks) the store and the rules.
    found = disagreements(scenario.store, scenario.rules, scenario.as_of)
    assert not found, "\n\n".join(describe(scenario.store, scenario.as_of, *case)
                                    for case in found)


def draw_sibling_group(pick, store: Store, as_of: datetime, kind: str) -> Group:
    """An all/any group of 2-4 orders (or events) conditions sharing one window (and, for
    orders, one product restriction): the shape the compiler merges into one scan."""
    drawer = CONDITION_DRAWERS[kind]
    first = drawer(pick, store, as_of)
    shared = ({"window": first.window} if kind == "events" else
              {"window": first.window, "products": first.products,
               "categories": first.categories})
    others = [replace(drawer(pick, store, as_of), **shared)
              for _ in range(pick.integer(1, 3))]
    group = Group(pick.one(("all", "any")), (first, *others))
    return Not(group) if pick.integer(0, 3) == 0 else group


@needs_compiler
@settings(max_examples=60, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(("orders", "events")))
def test_merged_sibling_conditions_agree_with_the_reference(seed: int, kind: str):
    scenario = random_scenario(seed, rules=0)
    store = scenario.store
    pick = Randomly(random.Random(seed + 1))
    # half the time at the end of the data, where whole-history orders come from a rollup
    as_of = latest_moment(store) if pick.boolean() else scenario.as_of
    rules = [draw_sibling_group(pick, store, as_of, kind) for _ in range(RULES_PER_STORE)]
    found = disagreements(store, rules, as_of)
    if found:
        store, rule, expected, got = minimise(store, found[0][0], as_of)
        pytest.fail(f"seed {seed}, {len(found)} rule(s) disagree; the first, minimised:\n"
                    + describe(store, as_of, rule, expected, got))


@needs_compiler
@settings(max_examples=40, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1))
def test_rollups_give_the_answers_of_the_raw_rows(seed: int):
    # At the end of the data the per-buyer order summary and current consent are read
    # instead of the raw rows; the reference still reads the rows.
    scenario = random_scenario(seed, rules=RULES_PER_STORE)
    as_of = latest_moment(scenario.store)
    found = disagreements(scenario.store, scenario.rules, as_of)
    if found:
        store, rule, expected, got = minimise(scenario.store, found[0][0], as_of)
        pytest.fail(f"seed {seed}, {len(found)} rule(s) disagree; the first, minimised:\n"
                    + describe(store, as_of, rule, expected, got))


@settings(max_examples=200, deadline=None, database=None)
@given(rule=trees(tiny_store(), AS_OF, kinds=CONDITION_KINDS + ("segment",)))
def test_a_rule_survives_the_round_trip_through_its_document(rule):
    document = json.loads(json.dumps(node_to_document(rule)))
    assert parse_node(document) == rule
