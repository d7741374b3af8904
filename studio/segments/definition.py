"""Segment documents: parse, validate and write back the tree of groups and conditions.

A segment is a JSON (or YAML) document::

    {"name": "Lapsed VIPs",
     "rule": {"all": [
         {"orders": {"metric": "revenue", "op": "gte", "value": 500}},
         {"orders": {"metric": "last_order_date", "op": "more_than_days_ago", "value": 120}},
         {"not": {"consent": {"channel": "email", "status": "never_subscribed"}}}]}}

Groups are ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": node}``, nested to any
depth; every other node is one condition, keyed by its kind. Loading checks every name
against the catalog and every value against its type, and says what is wrong where
(``rule.all[1].orders: ...``) in one sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from studio.errors import UserError
from studio.segments import catalog


class DefinitionError(UserError):
    """A segment document that cannot be used as it is."""


@dataclass(frozen=True)
class Window:
    """Which stretch of time a behaviour condition looks at (always up to ``as_of``)."""

    kind: str = "all_time"  # all_time, last_days, more_than_days_ago, between
    days: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Group:
    """``all`` (every child holds) or ``any`` (at least one does)."""

    op: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The child does not hold."""

    child: Node


@dataclass(frozen=True)
class Profile:
    """A customer attribute compared with a value."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Consent:
    """The current consent state on a channel, from the consent history."""

    channel: str
    status: str


@dataclass(frozen=True)
class Orders:
    """A measure of the customer's valid orders in a window, compared with a value."""

    metric: str
    op: str
    value: Any
    window: Window = field(default_factory=Window)
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Events:
    """How many times the customer did an event in a window (with property filters)."""

    event: str
    op: str  # at_least, at_most, exactly
    count: int
    window: Window = field(default_factory=Window)
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sequence:
    """Did ``first`` and then ``then`` within ``within_hours`` (or not ``then``)."""

    first: str
    then: str
    within_hours: float
    then_happened: bool = True
    window: Window = field(default_factory=Window)
    first_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Campaign:
    """Received, opened or clicked a campaign (``campaign_id`` None: any campaign)."""

    action: str
    campaign_id: str | None = None
    window: Window = field(default_factory=Window)


@dataclass(frozen=True)
class Score:
    """A predictive score: at least ``value``, or in the top ``value`` percent."""

    target: str
    op: str  # gte, top_percent
    value: float


@dataclass(frozen=True)
class Rfm:
    """In one of the named RFM groups as of the date."""

    groups: tuple[str, ...]


@dataclass(frozen=True)
class Membership:
    """A member of another saved segment (its latest version)."""

    segment: str


Condition = Profile | Consent | Orders | Events | Sequence | Campaign | Score | Rfm | Membership
Node = Group | Not | Condition


@dataclass(frozen=True)
class SegmentDefinition:
    """A named rule, optionally pinned to an ``as_of`` timestamp."""

    name: str
    rule: Node
    description: str = ""
    as_of: datetime | None = None


# ---------------------------------------------------------------- parsing helpers


def _fail(path: str, message: str) -> DefinitionError:
    return DefinitionError(f"{path}: {message}")


def _expect_mapping(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {type(value).__name__}")
    return value


def _choice(value, allowed, path: str, what: str) -> str:
    if value not in allowed:
        raise _fail(path, f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return value


def _positive_int(value, path: str, what: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        least = "0 or more" if allow_zero else "1 or more"
        raise _fail(path, f"{what} must be a whole number, {least}, not {value!r}")
    return value


def _number(value, path: str, what: str = "value") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"{what} must be a number, not {value!r}")
    return float(value)


def parse_timestamp(value, path: str) -> datetime:
    """A date (``2024-03-01``) or timestamp (``2024-03-01T10:00:00``) from a document."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).replace(
                tzinfo=None)
        except ValueError:
            pass
    raise _fail(path, f"bad date {value!r}; write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS")


def _text(value, path: str, what: str = "value") -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, f"{what} must be non-empty text, not {value!r}")
    return value


def _text_list(value, path: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(path, f"{what} must be a list of text values")
    return tuple(_text(item, f"{path}[{i}]", what) for i, item in enumerate(value))


def _parse_window(raw, path: str) -> Window:
    if raw is None or raw == "all_time" or raw == {"all_time": True}:
        return Window()
    raw = _expect_mapping(raw, path)
    if len(raw) != 1:
        raise _fail(path, "a window is one of all_time, last_days, more_than_days_ago, between")
    (kind, value), = raw.items()
    if kind in ("last_days", "more_than_days_ago"):
        return Window(kind, days=_positive_int(value, f"{path}.{kind}", kind))
    if kind == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(f"{path}.between", "between needs [start, end]")
        start = parse_timestamp(value[0], f"{path}.between[0]")
        end = parse_timestamp(value[1], f"{path}.between[1]")
        if end < start:
            raise _fail(f"{path}.between", "the end comes before the start")
        return Window("between", start=start, end=end)
    if kind == "all_time":
        return Window()
    raise _fail(path, f"unknown window {kind!r}; use all_time, last_days, "
                "more_than_days_ago or between")


def _parse_properties(raw, path: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    raw = _expect_mapping(raw, path)
    pairs = []
    for name, value in raw.items():
        if not catalog.PROPERTY_NAME.match(str(name)):
            raise _fail(path, f"property name {name!r} must be letters, digits and _")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _fail(f"{path}.{name}", f"property values are text or numbers, not {value!r}")
        pairs.append((str(name), str(value)))
    return tuple(sorted(pairs))


def _compare_value(op: str, value, value_type: str, path: str):
    """Validate ``value`` for ``op`` on a field of ``value_type`` (text, number, date)."""
    if op in ("is_set", "not_set"):
        return None
    if op in ("within_last_days", "more_than_days_ago"):
        return _positive_int(value, path, op)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(path, "between needs a list of two values [low, high]")
        if value_type == "date":
            low, high = (parse_timestamp(v, path) for v in value)
        else:
            low, high = (_number(v, path) for v in value)
        if high < low:
            raise _fail(path, "between needs low <= high")
        return (low, high)
    if op in ("before", "after"):
        return parse_timestamp(value, path)
    if op in ("in", "not_in"):
        return _text_list(value, path, "values")
    if op in ("gt", "gte", "lt", "lte"):
        return _number(value, path)
    if value_type == "number":
        return _number(value, path)
    if value_type == "attribute":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return _text(value, path)


def _parse_profile(raw: dict, path: str) -> Profile:
    name = _text(raw.get("field"), path, "field")
    spec = catalog.profile_field(name)
    if spec is None:
        raise _fail(path, f"unknown field {name!r}; choose one of "
                    f"{', '.join(catalog.PROFILE_FIELDS)} or attributes.<name>")
    op = raw.get("op")
    if op not in spec.operators:
        raise _fail(path, f"operator {op!r} does not apply to {spec.type} field {name!r}; "
                    f"use one of {', '.join(spec.operators)}")
    return Profile(name, op, _compare_value(op, raw.get("value"), spec.type, f"{path}.value"))


def _parse_orders(raw: dict, path: str) -> Orders:
    metric = _choice(raw.get("metric", "count"), catalog.ORDER_METRICS, f"{path}.metric",
                     "metric")
    metric_type = catalog.ORDER_METRICS[metric]
    allowed = catalog.DATE_OPERATORS if metric_type == "date" else catalog.NUMBER_OPERATORS
    allowed = tuple(op for op in allowed if op not in ("is_set", "not_set")) + (
        ("is_set", "not_set") if metric_type == "date" else ())
    op = raw.get("op")
    if op not in allowed:
        raise _fail(path, f"operator {op!r} does not apply to {metric}; "
                    f"use one of {', '.join(allowed)}")
    return Orders(
        metric=metric, op=op,
        value=_compare_value(op, raw.get("value"), metric_type, f"{path}.value"),
        window=_parse_window(raw.get("window"), f"{path}.window"),
        products=_text_list(raw["products"], f"{path}.products", "products")
        if raw.get("products") else (),
        categories=_text_list(raw["categories"], f"{path}.categories", "categories")
        if raw.get("categories") else (),
    )


def _parse_events(raw: dict, path: str) -> Events:
    return Events(
        event=_choice(raw.get("event"), catalog.EVENT_TYPES, f"{path}.event", "event"),
        op=_choice(raw.get("op", "at_least"), catalog.COUNT_OPERATORS, f"{path}.op", "operator"),
        count=_positive_int(raw.get("count", 1), f"{path}.count", "count", allow_zero=True),
        window=_parse_window(raw.get("window"), f"{path}.window"),
        properties=_parse_properties(raw.get("properties"), f"{path}.properties"),
    )


def _parse_sequence(raw: dict, path: str) -> Sequence:
    hours = _number(raw.get("within_hours"), f"{path}.within_hours", "within_hours")
    if hours <= 0:
        raise _fail(f"{path}.within_hours", "within_hours must be more than 0")
    then_happened = raw.get("then_happened", True)
    if not isinstance(then_happened, bool):
        raise _fail(f"{path}.then_happened", "then_happened must be true or false")
    return Sequence(
        first=_choice(raw.get("first"), catalog.EVENT_TYPES, f"{path}.first", "event"),
        then=_choice(raw.get("then"), catalog.EVENT_TYPES, f"{path}.then", "event"),
        within_hours=hours, then_happened=then_happened,
        window=_parse_window(raw.get("window"), f"{path}.window"),
        first_properties=_parse_properties(raw.get("first_properties"),
                                           f"{path}.first_properties"),
    )


def _parse_score(raw: dict, path: str) -> Score:
    target = _text(raw.get("target"), f"{path}.target", "target")
    if not catalog.ATTRIBUTE_NAME.match(target):
        raise _fail(f"{path}.target", "a score target is letters, digits and _")
    if "top_percent" in raw:
        value = _number(raw["top_percent"], f"{path}.top_percent", "top_percent")
        if not 0 < value <= 100:
            raise _fail(f"{path}.top_percent", "top_percent must be more than 0, at most 100")
        return Score(target, "top_percent", value)
    return Score(target, "gte", _number(raw.get("gte"), f"{path}.gte", "gte"))


def _parse_condition(kind: str, raw, path: str) -> Condition:
    where = f"{path}.{kind}"
    raw = _expect_mapping(raw, where)
    if kind == "profile":
        return _parse_profile(raw, where)
    if kind == "consent":
        return Consent(
            channel=_choice(raw.get("channel"), catalog.CHANNELS, f"{where}.channel", "channel"),
            status=_choice(raw.get("status"), catalog.CONSENT_STATUSES, f"{where}.status",
                           "status"))
    if kind == "orders":
        return _parse_orders(raw, where)
    if kind == "events":
        return _parse_events(raw, where)
    if kind == "sequence":
        return _parse_sequence(raw, where)
    if kind == "campaign":
        campaign_id = raw.get("campaign_id")
        return Campaign(
            action=_choice(raw.get("action"), catalog.CAMPAIGN_ACTIONS, f"{where}.action",
                           "action"),
            campaign_id=None if campaign_id in (None, "", "any") else _text(
                campaign_id, f"{where}.campaign_id", "campaign_id"),
            window=_parse_window(raw.get("window"), f"{where}.window"))
    if kind == "score":
        return _parse_score(raw, where)
    if kind == "rfm":
        groups = _text_list(raw.get("groups"), f"{where}.groups", "groups")
        for index, group in enumerate(groups):
            _choice(group, catalog.RFM_GROUPS, f"{where}.groups[{index}]", "RFM group")
        return Rfm(groups)
    if kind == "segment":
        return Membership(_text(raw.get("name"), f"{where}.name", "segment name"))
    raise AssertionError(kind)


CONDITION_KINDS = ("profile", "consent", "orders", "events", "sequence", "campaign", "score",
                   "rfm", "segment")


def parse_node(raw, path: str = "rule", depth: int = 0) -> Node:
    """Parse one node of the tree (a group, a negation or a condition)."""
    if depth > 50:
        raise _fail(path, "the rule is nested more than 50 levels deep")
    raw = _expect_mapping(raw, path)
    if len(raw) != 1:
        raise _fail(path, "each node has exactly one key: all, any, not or a condition kind "
                    f"({', '.join(CONDITION_KINDS)})")
    (key, value), = raw.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise _fail(f"{path}.{key}", "a group needs a non-empty list of nodes")
        return Group(key, tuple(parse_node(child, f"{path}.{key}[{i}]", depth + 1)
                                for i, child in enumerate(value)))
    if key == "not":
        return Not(parse_node(value, f"{path}.not", depth + 1))
    if key in CONDITION_KINDS:
        return _parse_condition(key, value, path)
    raise _fail(path, f"unknown node {key!r}; use all, any, not or one of "
                f"{', '.join(CONDITION_KINDS)}")


def parse_definition(document: dict | str) -> SegmentDefinition:
    """Parse a segment document (a dict, or JSON/YAML text) and validate all of it."""
    if isinstance(document, str):
        try:
            document = yaml.safe_load(document)  # YAML is a superset of JSON
        except yaml.YAMLError as error:
            raise DefinitionError(f"The segment is not valid JSON or YAML "
                                  f"({str(error).splitlines()[0]}).") from None
    document = _expect_mapping(document, "segment")
    unknown = set(document) - {"name", "description", "rule", "as_of"}
    if unknown:
        raise DefinitionError(f"segment: unknown key(s) {', '.join(sorted(unknown))}; a segment "
                              "has name, description, rule and as_of")
    if "rule" not in document:
        raise DefinitionError("segment: no 'rule'; add one, e.g. {\"all\": [...]}")
    as_of = document.get("as_of")
    return SegmentDefinition(
        name=str(document.get("name") or "Untitled segment"),
        description=str(document.get("description") or ""),
        rule=parse_node(document["rule"]),
        as_of=None if as_of in (None, "") else parse_timestamp(as_of, "segment.as_of"),
    )


# ---------------------------------------------------------------- writing back


def _value_to_document(value):
    if isinstance(value, datetime):
        return value.isoformat(sep="T")
    if isinstance(value, tuple):
        return [_value_to_document(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _window_to_document(window: Window):
    if window.kind == "all_time":
        return None
    if window.kind == "between":
        return {"between": [_value_to_document(window.start), _value_to_document(window.end)]}
    return {window.kind: window.days}


def node_to_document(node: Node) -> dict:
    """The document form of a node: ``parse_node(node_to_document(n)) == n``."""
    if isinstance(node, Group):
        return {node.op: [node_to_document(child) for child in node.children]}
    if isinstance(node, Not):
        return {"not": node_to_document(node.child)}
    if isinstance(node, Profile):
        body = {"field": node.field, "op": node.op}
        if node.value is not None:
            body["value"] = _value_to_document(node.value)
        return {"profile": body}
    if isinstance(node, Consent):
        return {"consent": {"channel": node.channel, "status": node.status}}
    if isinstance(node, Orders):
        body = {"metric": node.metric, "op": node.op, "value": _value_to_document(node.value)}
        if node.window.kind != "all_time":
            body["window"] = _window_to_document(node.window)
        if node.products:
            body["products"] = list(node.products)
        if node.categories:
            body["categories"] = list(node.categories)
        return {"orders": body}
    if isinstance(node, Events):
        body = {"event": node.event, "op": node.op, "count": node.count}
        if node.window.kind != "all_time":
            body["window"] = _window_to_document(node.window)
        if node.properties:
            body["properties"] = dict(node.properties)
        return {"events": body}
    if isinstance(node, Sequence):
        body = {"first": node.first, "then": node.then,
                "within_hours": _value_to_document(node.within_hours),
                "then_happened": node.then_happened}
        if node.window.kind != "all_time":
            body["window"] = _window_to_document(node.window)
        if node.first_properties:
            body["first_properties"] = dict(node.first_properties)
        return {"sequence": body}
    if isinstance(node, Campaign):
        body = {"action": node.action, "campaign_id": node.campaign_id}
        if node.window.kind != "all_time":
            body["window"] = _window_to_document(node.window)
        return {"campaign": body}
    if isinstance(node, Score):
        key = "top_percent" if node.op == "top_percent" else "gte"
        return {"score": {"target": node.target, key: _value_to_document(node.value)}}
    if isinstance(node, Rfm):
        return {"rfm": {"groups": list(node.groups)}}
    if isinstance(node, Membership):
        return {"segment": {"name": node.segment}}
    raise TypeError(f"not a segment node: {node!r}")


def definition_to_document(definition: SegmentDefinition) -> dict:
    """The document form of a whole definition, ready for JSON."""
    document = {"name": definition.name, "rule": node_to_document(definition.rule)}
    if definition.description:
        document["description"] = definition.description
    if definition.as_of is not None:
        document["as_of"] = _value_to_document(definition.as_of)
    return document


def definition_to_json(definition: SegmentDefinition) -> str:
    """Stable JSON text of a definition (sorted keys), used to store versions."""
    return json.dumps(definition_to_document(definition), sort_keys=True, indent=2)
