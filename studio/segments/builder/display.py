"""How a rule and its results read on the page: sentences, explanations, the overlap chart.

:func:`describe` puts one rule node into words (``Revenue is at least 500, all time``),
:func:`explanation_markdown` turns an explanation into a nested list with yes/no badges,
and :func:`overlap_figure` draws the segments' sizes and intersections;
:func:`preview_pages` says how many pages a member preview takes.
"""

from __future__ import annotations

import json

import plotly.graph_objects as go
import polars as pl

from studio.segments import catalog
from studio.segments.builder.labels import (
    ACTION_LABELS,
    CHANNEL_LABELS,
    CONSENT_LABELS,
    EVENT_LABELS,
    METRIC_LABELS,
    OPERATOR_LABELS,
    SYMBOLS,
)


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


def preview_pages(matched: int, rows_per_page: int) -> int:
    """How many pages a preview of ``matched`` members has (at least one)."""
    return max(1, -(-matched // rows_per_page))
