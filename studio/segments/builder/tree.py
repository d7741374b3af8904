"""The rule tree as editable rows: a rule document whose groups and conditions carry ids.

Each row keeps a stable id, so its widgets keep their keys while rows around it come
and go. The tree is the rule document in another dress:
``rule_from_tree(tree_from_rule(doc))`` gives back ``doc`` in its canonical form
(``node_to_document(parse_node(doc))``), so the page, the "Edit as JSON" box and the
CLI all speak the same JSON. Edits (add a condition or a group, remove a row) return a
new tree; :func:`problems` says which rows are unfinished.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Sequence
from datetime import date

from studio.errors import UserError
from studio.segments.builder.conditions import default_body
from studio.segments.definition import DefinitionError, node_to_document, parse_node

MAX_DEPTH = 2
"""Groups can be added down to this depth (the top group is depth 0): three levels."""


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
