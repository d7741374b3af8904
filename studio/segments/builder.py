"""The visual segment builder's model: a tree of rows that is a rule document with ids.

The Segments page edits a *draft*: a name, a description and a tree whose groups and
conditions carry stable ids (so each row's widgets keep their keys while rows around
them come and go). The tree is the rule document in another dress:
``rule_from_tree(tree_from_rule(doc))`` gives back ``doc`` in its canonical form
(``node_to_document(parse_node(doc))``), so the page, the "Edit as JSON" box and the
CLI all speak the same JSON.

A row's widgets are described here, not drawn: :func:`condition_inputs` lists the
inputs a condition needs (kind, field, operator, value, window ...) with their options,
and :func:`apply_input` writes a value back into the condition's body, resetting what
no longer fits (a new field type picks new operators). The options that come from the
warehouse (countries, categories, campaign ids, event property values ...) are read
with bound parameters by the functions in :data:`LOOKUPS`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa

from studio.config import Settings
from studio.errors import UserError
from studio.segments import catalog, library, presets
from studio.segments.definition import (
    DefinitionError,
    SegmentDefinition,
    definition_to_json,
    node_to_document,
    parse_definition,
    parse_node,
)
from studio.sql import TABLES, customers, events, json_text, products, to_sql

# ---------------------------------------------------------------- labels

KIND_LABELS = {"profile": "Profile", "consent": "Consent", "orders": "Orders",
               "events": "Events", "sequence": "Sequence", "campaign": "Campaign engagement",
               "score": "Predictive score", "rfm": "RFM group", "segment": "Member of segment"}
GROUP_LABELS = {"all": "All", "any": "Any"}
OPERATOR_LABELS = {
    "equals": "is", "not_equals": "is not", "in": "is any of", "not_in": "is none of",
    "contains": "contains", "starts_with": "starts with", "ends_with": "ends with",
    "is_set": "is set", "not_set": "is not set", "before": "is before", "after": "is after",
    "between": "is between", "within_last_days": "is in the last", "more_than_days_ago":
    "is more than", "gt": "is more than", "gte": "is at least", "lt": "is less than",
    "lte": "is at most", "at_least": "at least", "at_most": "at most", "exactly": "exactly",
}
SYMBOLS = {"equals": "=", "not_equals": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
           "at_least": "at least", "at_most": "at most", "exactly": "exactly"}
METRIC_LABELS = {"count": "Number of orders", "revenue": "Revenue",
                 "average_order_value": "Average order value",
                 "first_order_date": "First order date", "last_order_date": "Last order date"}
EVENT_LABELS = {"page_view": "Viewed a page", "product_view": "Viewed a product",
                "add_to_cart": "Added to cart", "checkout_start": "Started checkout",
                "order": "Placed an order"}
CHANNEL_LABELS = {"email": "E-mail", "sms": "SMS"}
CONSENT_LABELS = {"subscribed": "is subscribed", "unsubscribed": "has unsubscribed",
                  "never_subscribed": "never subscribed"}
ACTION_LABELS = {"received": "Received", "opened": "Opened", "clicked": "Clicked"}
WINDOW_LABELS = {"all_time": "all time", "last_days": "in the last",
                 "more_than_days_ago": "more than", "between": "between"}
SCORE_LABELS = {"gte": "score at least", "top_percent": "in the top %"}
SEQUENCE_LABELS = {True: "and then", False: "and then did not"}
PREVIEW_LABELS = {"customer_id": "Customer id", "email": "E-mail", "country": "Country",
                  "acquisition_channel": "Acquisition channel", "signed_up_at": "Signed up",
                  "purchases": "Purchases", "revenue": "Revenue",
                  "last_purchase_at": "Last purchase", "rfm_group": "RFM group"}

MAX_DEPTH = 2
"""Groups can be added down to this depth (the top group is depth 0): three levels."""
VALUE_LIMIT = 200
"""At most this many warehouse values are offered in one list (the most frequent first);
any other value can still be typed in."""
FREE_TEXT_FIELDS = ("customer_id", "email", "phone")
"""Profile fields whose values are too many to list: they are typed in."""
DEFAULT_SCORE_TARGET = "purchase"

# ---------------------------------------------------------------- the tree


def new_id() -> str:
    """A fresh id for a row (unique across loads, so widget keys never collide)."""
    return uuid.uuid4().hex[:8]


def group_node(op: str = "all", children: Sequence[dict] = (), negate: bool = False) -> dict:
    """A group row: ``all`` or ``any`` of its children."""
    return {"id": new_id(), "group": op, "not": negate, "children": list(children)}


def condition_node(kind: str, body: dict, negate: bool = False) -> dict:
    """A condition row: its kind and its document body."""
    return {"id": new_id(), "kind": kind, "not": negate, "body": copy.deepcopy(body)}


def blank_tree() -> dict:
    """The tree of a new segment: an empty "all" group."""
    return group_node()


def _to_tree(document: dict) -> dict:
    (key, value), = document.items()
    if key == "not":
        inner = _to_tree(value)
        if inner["not"]:  # "not not x": keep both negations, one on a group around x
            return group_node("all", [inner], negate=True)
        inner["not"] = True
        return inner
    if key in ("all", "any"):
        return group_node(key, [_to_tree(child) for child in value])
    return condition_node(key, value)


def tree_from_rule(rule: dict) -> dict:
    """The builder tree of a rule document, validated and in canonical form.

    The top of the builder is always a group; a rule that is one condition (or a
    negated group) is wrapped in an "all" group marked ``implicit``, which
    :func:`rule_from_tree` unwraps again while it still holds that one row.

    Raises
    ------
    DefinitionError
        When the rule is not a valid rule document.
    """
    root = _to_tree(node_to_document(parse_node(rule)))
    if "group" not in root or root["not"]:
        root = {**group_node("all", [root]), "implicit": True}
    return root


def _rule(node: dict) -> dict:
    if "group" in node:
        document = {node["group"]: [_rule(child) for child in node["children"]]}
    else:
        document = {node["kind"]: copy.deepcopy(node["body"])}
    return {"not": document} if node["not"] else document


def rule_from_tree(tree: dict) -> dict:
    """The rule document of a builder tree (invalid while a row is unfinished)."""
    if tree.get("implicit") and len(tree["children"]) == 1 and not tree["not"]:
        return _rule(tree["children"][0])
    return _rule(tree)


def find_node(tree: dict, node_id: str) -> dict | None:
    """The row with id ``node_id``, or ``None``."""
    if tree["id"] == node_id:
        return tree
    for child in tree.get("children", ()):
        found = find_node(child, node_id)
        if found is not None:
            return found
    return None


def depth_of(tree: dict, node_id: str, depth: int = 0) -> int | None:
    """How deep the row ``node_id`` sits (the top group is 0), or ``None``."""
    if tree["id"] == node_id:
        return depth
    for child in tree.get("children", ()):
        found = depth_of(child, node_id, depth + 1)
        if found is not None:
            return found
    return None


def _with_children(tree: dict, group_id: str, change: Callable[[list], list]) -> dict:
    tree = copy.deepcopy(tree)
    group = find_node(tree, group_id)
    if group is None or "group" not in group:
        raise KeyError(f"no group {group_id!r} in the tree")
    group["children"] = change(group["children"])
    group.pop("implicit", None)
    return tree


def add_condition(tree: dict, group_id: str, kind: str = "profile",
                  as_of: date | None = None) -> dict:
    """A copy of ``tree`` with a new condition of ``kind`` at the end of a group."""
    node = condition_node(kind, default_body(kind, as_of=as_of))
    return _with_children(tree, group_id, lambda children: [*children, node])


def add_group(tree: dict, group_id: str, as_of: date | None = None) -> dict:
    """A copy of ``tree`` with a new "any" group (holding one condition) in a group."""
    if (depth_of(tree, group_id) or 0) >= MAX_DEPTH:
        raise UserError(f"Groups nest at most {MAX_DEPTH + 1} levels deep here; "
                        "edit the segment as JSON for deeper rules.")
    node = group_node("any", [condition_node("profile", default_body("profile", as_of=as_of))])
    return _with_children(tree, group_id, lambda children: [*children, node])


def remove_node(tree: dict, node_id: str) -> dict:
    """A copy of ``tree`` without the row ``node_id`` (the top group stays)."""
    def prune(node: dict) -> dict:
        if "group" in node:
            node["children"] = [prune(c) for c in node["children"] if c["id"] != node_id]
        return node

    return prune(copy.deepcopy(tree))


def problems(tree: dict) -> dict[str, str]:
    """Unfinished rows by id, each with one sentence saying what is missing."""
    found: dict[str, str] = {}

    def visit(node: dict, depth: int) -> None:
        if "group" in node:
            if not node["children"]:
                found[node["id"]] = ("Add a condition to start." if depth == 0 else
                                     "This group is empty: add a condition or remove it.")
            for child in node["children"]:
                visit(child, depth + 1)
        else:
            message = problem(node["kind"], node["body"])
            if message:
                found[node["id"]] = message

    visit(tree, 0)
    return found


def problem(kind: str, body: dict) -> str | None:
    """What is missing or wrong in one condition, as a sentence, or ``None``."""
    value = body.get("value")
    if kind == "profile" and body.get("op") in ("in", "not_in") and not value:
        return "Pick at least one value."
    if kind == "profile" and body.get("op") not in ("is_set", "not_set") and value in ("", None):
        return "Enter a value."
    if kind == "rfm" and not body.get("groups"):
        return "Pick at least one RFM group."
    if kind == "segment" and not body.get("name"):
        return "Choose a saved segment."
    properties = body.get("properties") or body.get("first_properties") or {}
    if any(v in ("", None) for v in properties.values()):
        return "Choose a value for the property filter."
    try:
        parse_node({kind: body}, path="condition")
    except DefinitionError as error:
        detail = str(error).split(": ", 1)[-1]
        return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    return None


# ---------------------------------------------------------------- drafts and sources


@dataclass(frozen=True)
class Draft:
    """What the page edits: a segment's name, description, tree and pinned ``as_of``."""

    name: str = ""
    description: str = ""
    tree: dict = field(default_factory=blank_tree)
    as_of: datetime | None = None


def draft_from_definition(definition: SegmentDefinition) -> Draft:
    """A draft holding ``definition``."""
    name = "" if definition.name == "Untitled segment" else definition.name
    return Draft(name, definition.description,
                 tree_from_rule(node_to_document(definition.rule)), definition.as_of)


def draft_from_text(text: str) -> Draft:
    """A draft from a JSON (or YAML) segment document typed by a person.

    Raises
    ------
    DefinitionError
        When the text is not a valid segment; its message says what and where.
    """
    if not text.strip():
        raise DefinitionError("The JSON box is empty; paste a segment such as "
                              '{"name": "...", "rule": {"all": [...]}}.')
    return draft_from_definition(parse_definition(text))


def segment_document(name: str, description: str, tree: dict,
                     as_of: datetime | None = None) -> dict:
    """The segment document of a draft: the JSON the CLI takes."""
    document: dict[str, Any] = {"name": name.strip() or "Untitled segment"}
    if description.strip():
        document["description"] = description.strip()
    document["rule"] = rule_from_tree(tree)
    if as_of is not None:
        document["as_of"] = as_of.isoformat(sep="T")
    return document


def document_text(document: dict) -> str:
    """The document as indented JSON for the "Edit as JSON" box."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def document_key(document: dict) -> str:
    """A short fingerprint of a document (a widget showing it starts afresh when it changes)."""
    return hashlib.sha1(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def sources(settings: Settings) -> dict[str, str]:
    """What a segment can start from, by source id: blank, each preset, each saved one."""
    found = {"blank": "Blank segment"}
    for slug, definition in presets.presets().items():
        found[f"preset:{slug}"] = f"Preset · {definition.name}"
    for saved in library.list_segments(settings):
        found[f"saved:{saved['name']}"] = (f"Saved · {saved['name']} "
                                           f"(v{saved['version']}, {saved['updated_by']})")
    return found


def load_definition(settings: Settings, source: str) -> SegmentDefinition | None:
    """The segment a source id names (``None`` for a blank one)."""
    if source == "blank":
        return None
    kind, _, name = source.partition(":")
    if kind == "preset":
        if name not in presets.presets():
            raise UserError(f"No preset is called {name!r}; presets: "
                            f"{', '.join(presets.presets())}.")
        return presets.presets()[name]
    if kind == "saved":
        return library.load_segment(settings, name)
    raise UserError(f"Unknown segment source {source!r}; choose a preset or a saved segment.")


def load_source(settings: Settings, source: str) -> Draft:
    """A draft started from a source id (see :func:`sources`)."""
    definition = load_definition(settings, source)
    return Draft() if definition is None else draft_from_definition(definition)


def history_rows(history: list[dict]) -> pl.DataFrame:
    """:func:`library.segment_history` as a table (without the documents)."""
    return pl.DataFrame(
        [{k: v for k, v in row.items() if k != "definition"} for row in history],
        schema={"version": pl.Int64, "created_at": pl.Datetime, "created_by": pl.String,
                "note": pl.String})


def saved_version(history: list[dict], document: dict) -> int | None:
    """The saved version whose rule and texts equal ``document``'s, if any."""
    text = definition_to_json(parse_definition(document))
    return next((row["version"] for row in history if row["definition"] == text), None)


# ---------------------------------------------------------------- dates


def as_of_moment(chosen: date, default: datetime) -> datetime:
    """The moment counts are taken at for a date picked on the page.

    The default date stands for the default moment itself (the data's latest order, or
    the segment's pinned ``as_of``), so the page's numbers equal the CLI's; any other
    date means the end of that day.
    """
    if chosen == default.date():
        return default
    return datetime.combine(chosen, time(23, 59, 59))


def _as_date(value, fallback: date) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    return fallback


def _number(value, integer: bool) -> int | float:
    """``value`` as the widget's number type; integral floats become ints in documents."""
    if isinstance(value, (list, tuple)) or value is None or isinstance(value, bool):
        return 0 if integer else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0 if integer else 0.0
    return int(number) if integer else number


def _plain(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- warehouse choices


def _distinct(con: duckdb.DuckDBPyConnection, expression, where=(), limit: int = VALUE_LIMIT,
              select_from=None) -> list[str]:
    """Non-empty values of ``expression``, the most frequent first (then alphabetical)."""
    value = sa.func.nullif(sa.cast(expression, sa.String), "").label("value")
    inner = sa.select(value)
    if select_from is not None:
        inner = inner.select_from(select_from)
    inner = inner.where(*where).subquery("candidates")
    query = (sa.select(inner.c.value).where(inner.c.value.is_not(None))
             .group_by(inner.c.value).order_by(sa.func.count().desc(), inner.c.value)
             .limit(limit))
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


def total_customers(con: duckdb.DuckDBPyConnection) -> int:
    """How many customers the warehouse knows."""
    sql, params = to_sql(sa.select(sa.func.count()).select_from(customers))
    return int(con.execute(sql, params).fetchall()[0][0])


def profile_values(con: duckdb.DuckDBPyConnection, field_name: str,
                   limit: int = VALUE_LIMIT) -> list[str]:
    """Values a profile field takes in the warehouse (none for free-text fields)."""
    if field_name in FREE_TEXT_FIELDS:
        return []
    if field_name.startswith(catalog.ATTRIBUTE_PREFIX):
        spec = catalog.profile_field(field_name)
        if spec is None:
            return []
        expression = json_text(customers.c.attributes,
                               field_name[len(catalog.ATTRIBUTE_PREFIX):])
        return _distinct(con, expression, [sa.func.json_valid(customers.c.attributes)],
                         limit)
    if field_name == "email_domain":
        expression = sa.func.lower(sa.func.split_part(customers.c.email, "@", 2))
        return _distinct(con, expression, limit=limit)
    spec = catalog.PROFILE_FIELDS.get(field_name)
    if spec is None or spec.type != "text":
        return []
    return _distinct(con, customers.c[field_name], limit=limit)


def _json_keys(con: duckdb.DuckDBPyConnection, column, where=()) -> list[str]:
    keys = (sa.select(sa.func.unnest(sa.func.json_keys(column)).label("key"))
            .where(sa.func.json_valid(column), sa.func.json_type(column) == "OBJECT", *where)
            .subquery("keys"))
    query = sa.select(keys.c.key).distinct().order_by(keys.c.key)
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()
            if catalog.ATTRIBUTE_NAME.match(row[0])]


def attribute_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Keys of the customers' custom attributes."""
    return _json_keys(con, customers.c.attributes)


def categories(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Product categories, alphabetical."""
    query = (sa.select(products.c.category).where(sa.func.nullif(products.c.category, "")
                                                  .is_not(None))
             .distinct().order_by(products.c.category))
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


def product_choices(con: duckdb.DuckDBPyConnection,
                    limit: int = 5 * VALUE_LIMIT) -> list[tuple[str, str]]:
    """``(product_id, label)`` pairs, by id."""
    query = (sa.select(products.c.product_id, products.c.name)
             .order_by(products.c.product_id).limit(limit))
    sql, params = to_sql(query)
    return [(pid, f"{pid} · {name}" if name else pid)
            for pid, name in con.execute(sql, params).fetchall()]


def campaign_choices(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(campaign_id, label)`` pairs, the latest sent first."""
    campaigns_table = TABLES["campaigns"]
    query = (sa.select(campaigns_table.c.campaign_id, campaigns_table.c.name,
                       campaigns_table.c.channel, campaigns_table.c.sent_at)
             .order_by(campaigns_table.c.sent_at.desc(), campaigns_table.c.campaign_id))
    sql, params = to_sql(query)
    return [(cid, f"{cid} · {name or 'unnamed'} ({CHANNEL_LABELS.get(channel, channel)}, "
                  f"{sent:%d %b %Y})" if sent else f"{cid} · {name or 'unnamed'}")
            for cid, name, channel, sent in con.execute(sql, params).fetchall()]


def event_property_names(con: duckdb.DuckDBPyConnection, event: str) -> list[str]:
    """The JSON property names events of type ``event`` carry."""
    return _json_keys(con, events.c.properties, [events.c.event_type == event])


def event_property_values(con: duckdb.DuckDBPyConnection, event: str, name: str,
                          limit: int = VALUE_LIMIT) -> list[str]:
    """Values property ``name`` takes on events of type ``event`` (as text)."""
    return _distinct(con, json_text(events.c.properties, name),
                     [events.c.event_type == event, sa.func.json_valid(events.c.properties)],
                     limit)


def score_targets(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Targets of the predictive scores (none when nothing has been scored)."""
    from studio.segments.operations import has_table
    from studio.sql import scores

    if not has_table(con, "scores"):
        return []
    query = sa.select(scores.c.target).distinct().order_by(scores.c.target)
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


LOOKUPS: dict[str, Callable[..., list]] = {
    "profile_values": profile_values, "attribute_names": attribute_names,
    "categories": categories, "products": product_choices, "campaigns": campaign_choices,
    "event_property_names": event_property_names,
    "event_property_values": event_property_values, "score_targets": score_targets,
}
"""Every warehouse lookup the widgets use, by name (the page caches them by name)."""


class Choices:
    """What the builder's widgets offer, from the catalog, the warehouse and the library.

    ``lookup(name, *args)`` runs ``LOOKUPS[name](con, *args)``, possibly from a cache.
    """

    def __init__(self, lookup: Callable[..., list], segment_names: Sequence[str] = (),
                 as_of: date | None = None):
        self.lookup = lookup
        self.segment_names = list(segment_names)
        self.as_of = as_of or date.today()

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection,
                       segment_names: Sequence[str] = (), as_of: date | None = None) -> Choices:
        """Choices read straight from ``con`` (no cache)."""
        return cls(lambda name, *args: LOOKUPS[name](con, *args), segment_names, as_of)

    def profile_fields(self) -> list[str]:
        """Catalog fields, then ``attributes.<key>`` for each key found."""
        return [*catalog.PROFILE_FIELDS, *(catalog.ATTRIBUTE_PREFIX + name
                                           for name in self.lookup("attribute_names"))]


# ---------------------------------------------------------------- widgets of a condition


@dataclass(frozen=True)
class Input:
    """One widget of a condition row, described for the page to draw.

    ``widget`` is ``select``, ``multiselect``, ``number``, ``date``, ``text``, ``words``
    (fixed text, no value) or ``line`` (fixed text on a new line). ``variant`` goes into
    the widget key, so a widget whose meaning changes (other options, another type)
    starts afresh.
    """

    slot: str
    widget: str
    label: str
    value: Any = None
    options: tuple = ()
    labels: dict = field(default_factory=dict)
    free_entry: bool = False
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    placeholder: str | None = None
    width: int = 170
    variant: str = ""
    format: str | None = None  # printf-style, for numbers

    @property
    def key(self) -> str:
        """The widget's key within its row: letters, digits, ``-`` and ``_`` only."""
        raw = f"{self.slot}-{self.variant}" if self.variant else self.slot
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)

    def label_of(self, option) -> str:
        """The text shown for ``option``."""
        return self.labels.get(option, str(option))


def _number_input(slot, label, value, minimum=None, maximum=None, **extra) -> Input:
    """A number widget whose range always holds ``value`` (a document may go beyond).

    Its bounds and step take the value's type: Streamlit refuses to mix ints and floats.
    """
    kind = int if isinstance(value, int) else float
    if minimum is not None and value < minimum:
        minimum = None
    if maximum is not None and value > maximum:
        maximum = None
    if extra.get("step") is not None:
        extra["step"] = kind(extra["step"])
    return Input(slot, "number", label, value,
                 minimum=None if minimum is None else kind(minimum),
                 maximum=None if maximum is None else kind(maximum), **extra)


def _select(slot, label, value, options, labels=None, **extra) -> Input:
    options = tuple(options)
    if value not in options and value is not None:
        options = (*options, value)  # a value from a document is always offered
    return Input(slot, "select", label, value, options, labels or {}, **extra)


def _multi(slot, label, value, options, labels=None, **extra) -> Input:
    value = list(value or [])
    options = tuple(dict.fromkeys([*options, *value]))
    return Input(slot, "multiselect", label, value, options, labels or {}, **extra)


def _words(text: str, tag: str) -> Input:
    return Input(f"words_{tag}", "words", text, width=0)


def _line(text: str, tag: str) -> Input:
    """A new line in the row, starting with ``text``."""
    return Input(f"line_{tag}", "line", text, width=0)


def _window_inputs(body: dict, as_of: date) -> list[Input]:
    window = body.get("window") or {}
    kind = next(iter(window), "all_time") if isinstance(window, dict) else "all_time"
    inputs = [_select("window", "Time window", kind, tuple(WINDOW_LABELS), WINDOW_LABELS,
                      width=130)]
    if kind in ("last_days", "more_than_days_ago"):
        inputs += [_number_input("window_days", "Days", _number(window[kind], True),
                                 minimum=1, step=1, width=100, variant=kind),
                   _words("days" if kind == "last_days" else "days ago", "window_unit")]
    elif kind == "between":
        start, end = window["between"]
        inputs += [Input("window_start", "date", "From", _as_date(start, as_of), width=140),
                   _words("and", "window_and"),
                   Input("window_end", "date", "To", _as_date(end, as_of), width=140)]
    return inputs


def _apply_window(body: dict, slot: str, value, as_of: date) -> dict:
    window = body.get("window") or {}
    kind = next(iter(window), "all_time") if isinstance(window, dict) else "all_time"
    if slot == "window":
        if value == kind:
            return body
        body.pop("window", None)
        if value in ("last_days", "more_than_days_ago"):
            body["window"] = {value: 30 if value == "last_days" else 90}
        elif value == "between":
            body["window"] = {"between": [(as_of - timedelta(days=30)).isoformat(),
                                          as_of.isoformat()]}
    elif slot == "window_days" and kind in ("last_days", "more_than_days_ago"):
        body["window"] = {kind: int(value)}
    elif slot in ("window_start", "window_end") and kind == "between":
        start, end = window["between"]
        body["window"] = {"between": [_plain(value) if slot == "window_start" else start,
                                      _plain(value) if slot == "window_end" else end]}
    return body


def _comparison_inputs(value_type: str, op: str, value, as_of: date, variant: str,
                       integer: bool = False, options: Sequence[str] = (),
                       listed: bool = True) -> list[Input]:
    """The value widgets of a comparison: none, a number, a date, a list, a text ..."""
    if op in ("is_set", "not_set"):
        return []
    if op in ("within_last_days", "more_than_days_ago"):
        return [_number_input("value", "Days", _number(value, True), minimum=1, step=1,
                              width=100, variant=f"{variant}-{op}"),
                _words("days" if op == "within_last_days" else "days ago", "value_unit")]
    if value_type == "date":
        if op == "between":
            low, high = value if isinstance(value, (list, tuple)) and len(value) == 2 else (
                as_of - timedelta(days=30), as_of)
            return [Input("low", "date", "From", _as_date(low, as_of), width=140,
                          variant=variant), _words("and", "value_and"),
                    Input("high", "date", "To", _as_date(high, as_of), width=140,
                          variant=variant)]
        return [Input("value", "date", "Date", _as_date(value, as_of), width=140,
                      variant=f"{variant}-{op}")]
    if op in ("gt", "gte", "lt", "lte", "between") or value_type == "number":
        step = 1 if integer else 10.0
        if op == "between":
            low, high = value if isinstance(value, (list, tuple)) and len(value) == 2 else (0, 0)
            return [_number_input("low", "From", _number(low, integer), minimum=0,
                                  step=step, width=110, variant=variant),
                    _words("and", "value_and"),
                    _number_input("high", "To", _number(high, integer), minimum=0,
                                  step=step, width=110, variant=variant)]
        return [_number_input("value", "Value", _number(value, integer),
                              minimum=0 if value_type == "number" else None, step=step,
                              width=110, variant=f"{variant}-{op}")]
    if op in ("in", "not_in"):
        return [_multi("value", "Values", value if isinstance(value, list) else [],
                       options, free_entry=True, width=320, variant=f"{variant}-{op}",
                       placeholder="Pick or type values")]
    text = value if isinstance(value, str) else ("" if value is None else str(_plain(value)))
    if op in ("equals", "not_equals") and listed and options:
        return [_select("value", "Value", text or None, options, free_entry=True, width=220,
                        variant=f"{variant}-{op}", placeholder="Pick or type a value")]
    return [Input("value", "text", "Value", text, width=220, variant=f"{variant}-{op}",
                  placeholder="Type a value")]


def _default_value(value_type: str, op: str, as_of: date):
    if op in ("is_set", "not_set"):
        return None
    if op == "within_last_days":
        return 30
    if op == "more_than_days_ago":
        return 90
    if value_type == "date":
        if op == "between":
            return [(as_of - timedelta(days=30)).isoformat(), as_of.isoformat()]
        return as_of.isoformat()
    if op == "between":
        return [0, 100]
    if op in ("in", "not_in"):
        return []
    if op in ("gt", "gte", "lt", "lte") or value_type == "number":
        return 1
    return ""


def _apply_comparison(body: dict, slot: str, value, value_type: str, integer: bool) -> dict:
    op = body.get("op")
    if slot in ("low", "high"):
        current = body.get("value")
        low, high = current if isinstance(current, list) and len(current) == 2 else (0, 0)
        low, high = (value, high) if slot == "low" else (low, value)
        body["value"] = [_plain(low), _plain(high)]
    elif slot == "value":
        current = body.get("value")
        if isinstance(value, str) and not isinstance(current, (str, list)) and \
                current is not None and str(_plain(current)) == value:
            return body  # a number shown as text in a list of values: keep the number
        if value_type == "date" and op in ("before", "after"):
            body["value"] = _plain(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            body["value"] = int(value) if integer else _plain(float(value))
        elif isinstance(value, list):
            body["value"] = [str(v) for v in value]
        else:
            body["value"] = "" if value is None else value
    return body


def _properties_inputs(body: dict, key: str, event: str, choices: Choices) -> list[Input]:
    """One property filter ("where NAME = VALUE"); more are edited as JSON."""
    properties = body.get(key) or {}
    if len(properties) > 1:
        return [_line("with properties " + " and ".join(f"{k} = {v}" for k, v in
                                                        properties.items())
                      + " (edit as JSON to change)", key)]
    name = next(iter(properties), None)
    names = choices.lookup("event_property_names", event)
    inputs = [_select("prop_name", "Property filter", name, (None, *names),
                      {None: "any property"}, width=150, variant=event)]
    if name is not None:
        values = choices.lookup("event_property_values", event, name)
        inputs += [_words("=", f"{key}_equals"),
                   _select("prop_value", "Property value", properties[name] or None, values,
                           free_entry=True, width=170, variant=f"{event}-{name}",
                           placeholder="Pick or type a value")]
    return inputs


def _apply_properties(body: dict, key: str, slot: str, value) -> dict:
    properties = dict(body.get(key) or {})
    name = next(iter(properties), None)
    if slot == "prop_name" and value != name:
        properties = {} if value is None else {value: ""}
    elif slot == "prop_value" and name is not None:
        properties = {name: "" if value is None else str(value)}
    if properties:
        body[key] = properties
    else:
        body.pop(key, None)
    return body


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
    inputs = [_select("field", "Field", name, fields, labels, width=190),
              _select("op", "Operator", op, spec.operators, OPERATOR_LABELS, width=150,
                      variant=spec.type)]
    value_type = "date" if spec.type == "date" else (
        "attribute" if spec.type == "attribute" else "text")
    return inputs + _comparison_inputs(
        value_type, op, body.get("value"), choices.as_of, variant=name,
        options=choices.lookup("profile_values", name), listed=name not in FREE_TEXT_FIELDS)


def _apply_profile(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "field" and value != body.get("field"):
        spec = catalog.profile_field(value)
        op = body.get("op") if body.get("op") in spec.operators else (
            "within_last_days" if spec.type == "date" else "in")
        body = {"field": value, "op": op, "value": _default_value(
            "date" if spec.type == "date" else "text", op, choices.as_of)}
    elif slot == "op" and value != body.get("op"):
        spec = catalog.profile_field(body["field"])
        value_type = "date" if spec.type == "date" else "text"
        body = {"field": body["field"], "op": value,
                "value": _default_value(value_type, value, choices.as_of)}
    else:
        spec = catalog.profile_field(body.get("field", "")) or catalog.PROFILE_FIELDS["country"]
        body = _apply_comparison(body, slot, value, spec.type, integer=False)
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
    inputs = [_select("metric", "Metric", metric, tuple(catalog.ORDER_METRICS), METRIC_LABELS,
                      width=190),
              _select("op", "Operator", op, _order_operators(metric), OPERATOR_LABELS,
                      width=140, variant=metric_type)]
    inputs += _comparison_inputs(metric_type, op, body.get("value"), choices.as_of,
                                 variant=metric, integer=metric == "count")
    inputs += _window_inputs(body, choices.as_of)
    inputs += [_line("counting only orders with", "scope"),
               _multi("categories", "Categories", body.get("categories"),
                      choices.lookup("categories"), width=230, placeholder="any category"),
               _multi("products", "Products", body.get("products"), products_found,
                      products_found, free_entry=True, width=230, placeholder="any product")]
    return inputs


def _apply_orders(body: dict, slot: str, value, choices: Choices) -> dict:
    metric = body.get("metric", "count")
    if slot == "metric" and value != metric:
        same_type = catalog.ORDER_METRICS[value] == catalog.ORDER_METRICS[metric]
        op = body.get("op") if same_type else (
            "more_than_days_ago" if catalog.ORDER_METRICS[value] == "date" else "gte")
        body = {**body, "metric": value, "op": op,
                "value": body.get("value") if same_type else _default_value(
                    catalog.ORDER_METRICS[value], op, choices.as_of)}
    elif slot == "op" and value != body.get("op"):
        body = {**body, "op": value,
                "value": _default_value(catalog.ORDER_METRICS[metric], value, choices.as_of)}
    elif slot in ("categories", "products"):
        body = {**body, slot: list(value)} if value else {
            k: v for k, v in body.items() if k != slot}
    elif slot.startswith("window"):
        body = _apply_window(body, slot, value, choices.as_of)
    else:
        body = _apply_comparison(body, slot, value, catalog.ORDER_METRICS[metric],
                                 integer=metric == "count")
    body.setdefault("value", None)  # orders always write a value, None for is_set/not_set
    return body


def _events_inputs(body: dict, choices: Choices) -> list[Input]:
    event = body.get("event", "product_view")
    return [_select("event", "Event", event, catalog.EVENT_TYPES, EVENT_LABELS, width=170),
            _select("op", "Operator", body.get("op", "at_least"), catalog.COUNT_OPERATORS,
                    OPERATOR_LABELS, width=110),
            _number_input("count", "Times", _number(body.get("count", 1), True), minimum=0,
                          step=1, width=100),
            _words("times", "times"),
            *_window_inputs(body, choices.as_of),
            *_properties_inputs(body, "properties", event, choices)]


def _apply_events(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "event" and value != body.get("event"):
        body.pop("properties", None)
        body["event"] = value
    elif slot in ("op", "event"):
        body[slot] = value
    elif slot == "count":
        body["count"] = int(value)
    elif slot.startswith("window"):
        body = _apply_window(body, slot, value, choices.as_of)
    else:
        body = _apply_properties(body, "properties", slot, value)
    return body


def _sequence_inputs(body: dict, choices: Choices) -> list[Input]:
    first = body.get("first", "add_to_cart")
    return [_select("first", "First event", first, catalog.EVENT_TYPES, EVENT_LABELS,
                    width=170),
            _select("then_happened", "Then", bool(body.get("then_happened", True)),
                    (True, False), SEQUENCE_LABELS, width=150),
            _select("then", "Then event", body.get("then", "order"), catalog.EVENT_TYPES,
                    EVENT_LABELS, width=170),
            _line("within", "within"),
            _number_input("within_hours", "Hours", _number(body.get("within_hours", 24), False),
                          minimum=0.5, step=1.0, width=100, format="%g"),
            _words("hours,", "hours"),
            *_window_inputs(body, choices.as_of),
            *_properties_inputs(body, "first_properties", first, choices)]


def _apply_sequence(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot == "first" and value != body.get("first"):
        body.pop("first_properties", None)
        body["first"] = value
    elif slot in ("first", "then", "then_happened"):
        body[slot] = value
    elif slot == "within_hours":
        body["within_hours"] = _plain(float(value))
    elif slot.startswith("window"):
        body = _apply_window(body, slot, value, choices.as_of)
    else:
        body = _apply_properties(body, "first_properties", slot, value)
    return body


def _campaign_inputs(body: dict, choices: Choices) -> list[Input]:
    found = dict(choices.lookup("campaigns"))
    return [_select("action", "Action", body.get("action", "opened"), catalog.CAMPAIGN_ACTIONS,
                    ACTION_LABELS, width=120),
            _select("campaign_id", "Campaign", body.get("campaign_id"), (None, *found),
                    {None: "any campaign", **found}, width=400),
            *_window_inputs(body, choices.as_of)]


def _apply_campaign(body: dict, slot: str, value, choices: Choices) -> dict:
    if slot.startswith("window"):
        return _apply_window(body, slot, value, choices.as_of)
    body[slot] = value
    return body


def _score_inputs(body: dict, choices: Choices) -> list[Input]:
    op = "top_percent" if "top_percent" in body else "gte"
    targets = choices.lookup("score_targets")
    value = body.get(op)
    number = (_number_input("value", "Top percent", _number(value, False), minimum=0.1,
                            maximum=100.0, step=1.0, width=110, variant=op)
              if op == "top_percent" else
              _number_input("value", "Score", _number(value, False), minimum=0.0,
                            maximum=1.0, step=0.05, width=110, variant=op))
    return [_select("target", "Target", body.get("target") or DEFAULT_SCORE_TARGET,
                    targets, free_entry=True, width=170),
            _select("op", "Operator", op, tuple(SCORE_LABELS), SCORE_LABELS, width=150),
            number]


def _apply_score(body: dict, slot: str, value, choices: Choices) -> dict:
    op = "top_percent" if "top_percent" in body else "gte"
    if slot == "target":
        return {"target": value or "", op: body.get(op)}
    if slot == "op" and value != op:
        return {"target": body.get("target"), value: 10 if value == "top_percent" else 0.5}
    if slot == "value":
        return {"target": body.get("target"), op: _plain(float(value))}
    return body


def condition_inputs(kind: str, body: dict, choices: Choices) -> list[Input]:
    """The widgets a condition of ``kind`` needs, in reading order, for its ``body``."""
    if kind == "profile":
        return _profile_inputs(body, choices)
    if kind == "consent":
        return [_select("channel", "Channel", body.get("channel", "email"), catalog.CHANNELS,
                        CHANNEL_LABELS, width=120),
                _select("status", "Status", body.get("status", "subscribed"),
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
        return [_words("is in", "is_in"),
                _multi("groups", "RFM groups", body.get("groups"), catalog.RFM_GROUPS,
                       width=420, placeholder="Pick RFM groups")]
    if kind == "segment":
        name = body.get("name") or None
        return [_select("name", "Saved segment", name, choices.segment_names, width=300,
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


# ---------------------------------------------------------------- reading a rule


def _window_words(window) -> str:
    if not window:
        return "all time"
    (kind, value), = window.items()
    if kind == "last_days":
        return f"in the last {value} days"
    if kind == "more_than_days_ago":
        return f"more than {value} days ago"
    return f"between {str(value[0])[:10]} and {str(value[1])[:10]}"


def _comparison_words(op: str, value) -> str:
    if op in ("is_set", "not_set"):
        return OPERATOR_LABELS[op]
    if op == "within_last_days":
        return f"in the last {value} days"
    if op == "more_than_days_ago":
        return f"more than {value} days ago"
    if op == "between":
        return f"between {str(value[0])[:10]} and {str(value[1])[:10]}"
    if op in ("before", "after"):
        return f"{OPERATOR_LABELS[op]} {str(value)[:10]}"
    if isinstance(value, list):
        return f"{OPERATOR_LABELS[op]} {', '.join(map(str, value))}"
    return f"{OPERATOR_LABELS.get(op, op)} {value}"


def _where(properties: dict | None) -> str:
    if not properties:
        return ""
    return " where " + " and ".join(f"{k} = {v}" for k, v in properties.items())


def describe(document: dict) -> str:
    """A rule node in words: ``Revenue is at least 500, all time``."""
    (kind, body), = document.items()
    if kind in ("all", "any"):
        return "All of these" if kind == "all" else "Any of these"
    if kind == "not":
        return "Not"
    if kind == "profile":
        spec = catalog.profile_field(body["field"])
        return f"{spec.label if spec else body['field']} " \
               f"{_comparison_words(body['op'], body.get('value'))}"
    if kind == "consent":
        return f"{CHANNEL_LABELS[body['channel']]} consent: {CONSENT_LABELS[body['status']]}"
    if kind == "orders":
        scope = []
        if body.get("categories"):
            scope.append("in " + ", ".join(body["categories"]))
        if body.get("products"):
            scope.append("of " + ", ".join(body["products"]))
        only = f" (only orders with products {' or '.join(scope)})" if scope else ""
        return f"{METRIC_LABELS[body['metric']]} " \
               f"{_comparison_words(body['op'], body.get('value'))}, " \
               f"{_window_words(body.get('window'))}{only}"
    if kind == "events":
        times = "time" if body["count"] == 1 else "times"
        return f"{EVENT_LABELS[body['event']]} {SYMBOLS[body['op']]} {body['count']} {times}, " \
               f"{_window_words(body.get('window'))}{_where(body.get('properties'))}"
    if kind == "sequence":
        then = "then" if body.get("then_happened", True) else "then did not"
        return f"{EVENT_LABELS[body['first']]}{_where(body.get('first_properties'))}, " \
               f"{then} {EVENT_LABELS[body['then']].lower()} within " \
               f"{body['within_hours']} hours, {_window_words(body.get('window'))}"
    if kind == "campaign":
        which = f"campaign {body['campaign_id']}" if body.get("campaign_id") else "any campaign"
        return f"{ACTION_LABELS[body['action']]} {which}, {_window_words(body.get('window'))}"
    if kind == "score":
        if "top_percent" in body:
            return f"Score {body['target']} in the top {body['top_percent']}%"
        return f"Score {body['target']} at least {body['gte']}"
    if kind == "rfm":
        return "RFM group is " + " or ".join(body["groups"])
    if kind == "segment":
        return f"Member of segment {body['name']}"
    return json.dumps(document)


def escape_markdown(text: str) -> str:
    """``text`` with the characters Streamlit's Markdown would interpret escaped."""
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|$~:" else c for c in text)


def explanation_markdown(explanation) -> str:
    """An :class:`operations.Explanation` as a nested Markdown list with yes/no badges."""
    lines: list[str] = []

    def visit(node, depth: int) -> None:
        badge = ":green-badge[yes]" if node.holds else ":red-badge[no]"
        label = escape_markdown(describe(node.document))
        if (next(iter(node.document)) in ("all", "any", "not")):
            label = f"**{label}**"
        lines.append(f"{'    ' * depth}- {badge} {label}")
        for child in node.children:
            visit(child, depth + 1)

    visit(explanation, 0)
    return "\n".join(lines)


# ---------------------------------------------------------------- overlap


def overlap_figure(overlap: pl.DataFrame) -> go.Figure:
    """Horizontal bars: each segment's size, then each intersection's, largest first."""
    ordered = overlap.sort(["size", "customers"], descending=[False, True])
    colours = ["#818CF8" if size == 1 else "#4338CA" for size in ordered["size"].to_list()]
    figure = go.Figure(go.Bar(
        x=ordered["customers"].to_list(), y=ordered["segments"].to_list(), orientation="h",
        marker_color=colours, text=[f"{v:,}" for v in ordered["customers"].to_list()],
        textposition="auto", hovertemplate="%{y}: %{x:,} customers<extra></extra>"))
    figure.update_yaxes(autorange="reversed", title_text=None)
    figure.update_xaxes(title_text="Customers", tickformat=",d", rangemode="tozero")
    figure.update_layout(margin={"t": 10, "b": 10, "l": 10, "r": 10},
                         height=max(220, 40 * ordered.height + 60), showlegend=False)
    return figure


def overlap_choices(settings: Settings) -> dict[str, str]:
    """Segments to overlap, by source id: presets and saved segments."""
    return {source: label for source, label in sources(settings).items() if source != "blank"}


def overlap_definitions(settings: Settings, chosen: Sequence[str],
                        current: SegmentDefinition | None = None) -> dict[str, SegmentDefinition]:
    """The chosen sources' definitions by a readable, unique name.

    ``"current"`` stands for the draft on the page (``current``).
    """
    found: dict[str, SegmentDefinition] = {}
    for source in chosen:
        if source == "current":
            if current is None:
                continue
            definition, name = current, f"{current.name} (draft)"
        else:
            definition = load_definition(settings, source)
            prefix, _, raw = source.partition(":")
            name = f"{definition.name} (preset)" if prefix == "preset" else raw
        while name in found:
            name += "'"
        found[name] = definition
    return found


# ---------------------------------------------------------------- preview


def preview_pages(matched: int, rows_per_page: int) -> int:
    """How many pages a preview of ``matched`` members has (at least one)."""
    return max(1, -(-matched // rows_per_page))

