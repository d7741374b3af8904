"""Each condition kind's widgets: which inputs a row shows and how a value changes its body.

:func:`condition_inputs` lists the inputs a condition needs (kind, field, operator,
value, window ...) with their options, and :func:`apply_input` writes a value back into
the condition's body, resetting what no longer fits (a new field type picks new
operators). :func:`edit_condition` runs the two in turn for the page.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

from studio.segments import catalog
from studio.segments.builder.choices import FREE_TEXT_FIELDS, Choices
from studio.segments.builder.labels import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    CONSENT_LABELS,
    EVENT_LABELS,
    METRIC_LABELS,
    OPERATOR_LABELS,
    SCORE_LABELS,
    SEQUENCE_LABELS,
)
from studio.segments.builder.widgets import (
    Input,
    apply_comparison,
    apply_properties,
    apply_window,
    as_number,
    comparison_inputs,
    default_value,
    line_input,
    multiselect_input,
    number_input,
    plain,
    properties_inputs,
    select_input,
    window_inputs,
    words_input,
)

DEFAULT_SCORE_TARGET = "purchase_90d"
"""The scoring job's name for the 90-day purchase likelihood (see models/backtest.Target)."""


def default_body(kind: str, as_of: date | None = None) -> dict:
    """The body a new condition of ``kind`` starts with."""
    as_of = as_of or date.today()
    return copy.deepcopy({
        "profile": {"field": "country", "op": "in", "value": []},
        "consent": {"channel": "email", "status": "subscribed"},
        "orders": {"metric": "count", "op": "gte", "value": 1},
        "events": {"event": "product_view", "op": "at_least", "count": 1,
                   "window": {"last_days": 30}},
        "sequence": {"first": "add_to_cart", "then": "order", "within_hours": 24,
                     "then_happened": False, "window": {"last_days": 7}},
        "campaign": {"action": "opened", "campaign_id": None, "window": {"last_days": 30}},
        "score": {"target": DEFAULT_SCORE_TARGET, "top_percent": 10},
        "rfm": {"groups": ["Champions"]},
        "segment": {"name": ""},
    }[kind])


def _profile_inputs(body: dict, choices: Choices) -> list[Input]:
    name = body.get("field", "country")
    spec = catalog.profile_field(name) or catalog.PROFILE_FIELDS["country"]
    fields = choices.profile_fields()
    labels = {f: (catalog.profile_field(f) or spec).label for f in fields}
    op = body.get("op")
    inputs = [select_input("field", "Field", name, fields, labels, width=190),
              select_input("op", "Operator", op, spec.operators, OPERATOR_LABELS, width=150,
                           variant=spec.type)]
    value_type = "date" if spec.type == "date" else (
        "attribute" if spec.type == "attribute" else "text")
    return inputs + comparison_inputs(
        value_type, op, body.get("value"), choices.as_of, variant=name,
        options=choices.lookup("profile_values", name), listed=name not in FREE_TEXT_FIELDS)


def _apply_profile(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "field" and value != body.get("field"):
        spec = catalog.profile_field(value)
        op = body.get("op") if body.get("op") in spec.operators else (
            "within_last_days" if spec.type == "date" else "in")
        body = {"field": value, "op": op, "value": default_value(
            "date" if spec.type == "date" else "text", op, choices.as_of)}
    elif slot == "op" and value != body.get("op"):
        spec = catalog.profile_field(body["field"])
        value_type = "date" if spec.type == "date" else "text"
        body = {"field": body["field"], "op": value,
                "value": default_value(value_type, value, choices.as_of)}
    else:
        spec = catalog.profile_field(body.get("field", "")) or catalog.PROFILE_FIELDS["country"]
        body = apply_comparison(body, slot, value, spec.type, integer=False)
    if body.get("value") is None:
        body.pop("value", None)
    return body


def _order_operators(metric: str) -> tuple[str, ...]:
    if catalog.ORDER_METRICS[metric] == "date":
        return catalog.DATE_OPERATORS
    return tuple(op for op in catalog.NUMBER_OPERATORS if op not in ("is_set", "not_set"))


def _orders_inputs(body: dict, choices: Choices) -> list[Input]:
    metric = body.get("metric", "count")
    metric_type = catalog.ORDER_METRICS[metric]
    op = body.get("op")
    products_found = dict(choices.lookup("products"))
    inputs = [select_input("metric", "Metric", metric, tuple(catalog.ORDER_METRICS), METRIC_LABELS,
                           width=190),
              select_input("op", "Operator", op, _order_operators(metric), OPERATOR_LABELS,
                           width=140, variant=metric_type)]
    inputs += comparison_inputs(metric_type, op, body.get("value"), choices.as_of,
                                variant=metric, integer=metric == "count")
    inputs += window_inputs(body, choices.as_of)
    inputs += [line_input("counting only orders with", "scope"),
               multiselect_input("categories", "Categories", body.get("categories"),
                                 choices.lookup("categories"), width=230,
                                 placeholder="any category"),
               multiselect_input("products", "Products", body.get("products"), products_found,
                                 products_found, free_entry=True, width=230,
                                 placeholder="any product")]
    return inputs


def _apply_orders(body: dict, slot: str, value, choices: Choices) -> dict:
    metric = body.get("metric", "count")
    if slot == "metric" and value != metric:
        same_type = catalog.ORDER_METRICS[value] == catalog.ORDER_METRICS[metric]
        op = body.get("op") if same_type else (
            "more_than_days_ago" if catalog.ORDER_METRICS[value] == "date" else "gte")
        body = {**body, "metric": value, "op": op,
                "value": body.get("value") if same_type else default_value(
                    catalog.ORDER_METRICS[value], op, choices.as_of)}
    elif slot == "op" and value != body.get("op"):
        body = {**body, "op": value,
                "value": default_value(catalog.ORDER_METRICS[metric], value, choices.as_of)}
    elif slot in ("categories", "products"):
        body = {**body, slot: list(value)} if value else {
            k: v for k, v in body.items() if k != slot}
    elif slot.startswith("window"):
        body = apply_window(body, slot, value, choices.as_of)
    else:
        body = apply_comparison(body, slot, value, catalog.ORDER_METRICS[metric],
                                integer=metric == "count")
    body.setdefault("value", None)  # orders always write a value, None for is_set/not_set
    return body


def _events_inputs(body: dict, choices: Choices) -> list[Input]:
    event = body.get("event", "product_view")
    return [select_input("event", "Event", event, catalog.EVENT_TYPES, EVENT_LABELS, width=170),
            select_input("op", "Operator", body.get("op", "at_least"), catalog.COUNT_OPERATORS,
                         OPERATOR_LABELS, width=110),
            number_input("count", "Times", as_number(body.get("count", 1), True), minimum=0,
                         step=1, width=100),
            words_input("times", "times"),
            *window_inputs(body, choices.as_of),
            *properties_inputs(body, "properties", event, choices)]


def _apply_events(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "event" and value != body.get("event"):
        body.pop("properties", None)
        body["event"] = value
    elif slot in ("op", "event"):
        body[slot] = value
    elif slot == "count":
        body["count"] = int(value)
    elif slot.startswith("window"):
        body = apply_window(body, slot, value, choices.as_of)
    else:
        body = apply_properties(body, "properties", slot, value)
    return body


def _sequence_inputs(body: dict, choices: Choices) -> list[Input]:
    first = body.get("first", "add_to_cart")
    return [select_input("first", "First event", first, catalog.EVENT_TYPES, EVENT_LABELS,
                         width=170),
            select_input("then_happened", "Then", bool(body.get("then_happened", True)),
                         (True, False), SEQUENCE_LABELS, width=150),
            select_input("then", "Then event", body.get("then", "order"), catalog.EVENT_TYPES,
                         EVENT_LABELS, width=170),
            line_input("within", "within"),
            number_input("within_hours", "Hours", as_number(body.get("within_hours", 24), False),
                         minimum=0.5, step=1.0, width=100, format="%g"),
            words_input("hours,", "hours"),
            *window_inputs(body, choices.as_of),
            *properties_inputs(body, "first_properties", first, choices)]


def _apply_sequence(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "first" and value != body.get("first"):
        body.pop("first_properties", None)
        body["first"] = value
    elif slot in ("first", "then", "then_happened"):
        body[slot] = value
    elif slot == "within_hours":
        body["within_hours"] = plain(float(value))
    elif slot.startswith("window"):
        body = apply_window(body, slot, value, choices.as_of)
    else:
        body = apply_properties(body, "first_properties", slot, value)
    return body


def _campaign_inputs(body: dict, choices: Choices) -> list[Input]:
    found = dict(choices.lookup("campaigns"))
    return [select_input("action", "Action", body.get("action", "opened"), catalog.CAMPAIGN_ACTIONS,
                         ACTION_LABELS, width=120),
            select_input("campaign_id", "Campaign", body.get("campaign_id"), (None, *found),
                         {None: "any campaign", **found}, width=400),
            *window_inputs(body, choices.as_of)]


def _apply_campaign(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot.startswith("window"):
        return apply_window(body, slot, value, choices.as_of)
    body[slot] = value
    return body


def _score_inputs(body: dict, choices: Choices) -> list[Input]:
    op = "top_percent" if "top_percent" in body else "gte"
    targets = choices.lookup("score_targets")
    value = body.get(op)
    number = (number_input("value", "Top percent", as_number(value, False), minimum=0.1,
                           maximum=100.0, step=1.0, width=110, variant=op)
              if op == "top_percent" else
              number_input("value", "Score", as_number(value, False), minimum=0.0,
                           maximum=1.0, step=0.05, width=110, variant=op))
    return [select_input("target", "Target", body.get("target") or DEFAULT_SCORE_TARGET,
                         targets, free_entry=True, width=170),
            select_input("op", "Operator", op, tuple(SCORE_LABELS), SCORE_LABELS, width=150),
            number]


def _apply_score(body: dict, slot: str, value, choices: Choices) -> dict:
    op = "top_percent" if "top_percent" in body else "gte"
    if slot == "target":
        return {"target": value or "", op: body.get(op)}
    if slot == "op" and value != op:
        return {"target": body.get("target"), value: 10 if value == "top_percent" else 0.5}
    if slot == "value":
        return {"target": body.get("target"), op: plain(float(value))}
    return body


def condition_inputs(kind: str, body: dict, choices: Choices) -> list[Input]:
    """The widgets a condition of ``kind`` needs, in reading order, for its ``body``."""
    if kind == "profile":
        return _profile_inputs(body, choices)
    if kind == "consent":
        return [select_input("channel", "Channel", body.get("channel", "email"), catalog.CHANNELS,
                             CHANNEL_LABELS, width=120),
                select_input("status", "Status", body.get("status", "subscribed"),
                             catalog.CONSENT_STATUSES, CONSENT_LABELS, width=180)]
    if kind == "orders":
        return _orders_inputs(body, choices)
    if kind == "events":
        return _events_inputs(body, choices)
    if kind == "sequence":
        return _sequence_inputs(body, choices)
    if kind == "campaign":
        return _campaign_inputs(body, choices)
    if kind == "score":
        return _score_inputs(body, choices)
    if kind == "rfm":
        return [words_input("is in", "is_in"),
                multiselect_input("groups", "RFM groups", body.get("groups"), catalog.RFM_GROUPS,
                                  width=420, placeholder="Pick RFM groups")]
    if kind == "segment":
        name = body.get("name") or None
        return [select_input("name", "Saved segment", name, choices.segment_names, width=300,
                             placeholder="Choose a saved segment")]
    raise ValueError(f"unknown condition kind {kind!r}")


def apply_input(kind: str, body: dict, slot: str, value, choices: Choices) -> dict:
    """A copy of ``body`` with the widget ``slot`` set to ``value``.

    Whatever the new value makes meaningless is reset: another field type gets its
    own operators, another operator its own kind of value.
    """
    body = copy.deepcopy(body)
    if slot.startswith(("words_", "line_")):
        return body
    if kind == "profile":
        return _apply_profile(body, slot, value, choices)
    if kind == "orders":
        return _apply_orders(body, slot, value, choices)
    if kind == "events":
        return _apply_events(body, slot, value, choices)
    if kind == "sequence":
        return _apply_sequence(body, slot, value, choices)
    if kind == "campaign":
        return _apply_campaign(body, slot, value, choices)
    if kind == "score":
        return _apply_score(body, slot, value, choices)
    if kind == "rfm":
        return {"groups": list(value or [])}
    if kind == "segment":
        return {"name": value or ""}
    body[slot] = value
    return body


def edit_condition(kind: str, body: dict, choices: Choices,
                   draw: Callable[[Input], Any]) -> dict:
    """Draw every input of a condition with ``draw`` and return the body it leaves.

    ``draw(input)`` shows the widget and returns its value. Each value may change the
    inputs after it (a date field brings date operators and a date picker), so the list
    is derived again after every value; each input is drawn once.
    """
    drawn: set[str] = set()
    while True:
        pending = [item for item in condition_inputs(kind, body, choices)
                   if item.key not in drawn]
        if not pending:
            return body
        item = pending[0]
        drawn.add(item.key)
        body = apply_input(kind, body, item.slot, draw(item), choices)
