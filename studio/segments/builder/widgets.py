"""The widgets a condition row is drawn with, described rather than drawn.

An :class:`Input` says which widget a slot of a condition needs (select, number, date,
text, fixed words ...), with its options, labels and bounds; the page draws it. The
pieces several condition kinds share live here too: a time window, a comparison's
value (none, a number, a date, a range, a list or text) and an event property filter,
each with the function that writes a widget's value back into the condition's body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from studio.segments.builder.choices import Choices
from studio.segments.builder.labels import WINDOW_LABELS


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


def number_input(slot, label, value, minimum=None, maximum=None, **extra) -> Input:
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


def select_input(slot, label, value, options, labels=None, **extra) -> Input:
    """A single choice; a value that is not among ``options`` is offered too."""
    options = tuple(options)
    if value not in options and value is not None:
        options = (*options, value)  # a value from a document is always offered
    return Input(slot, "select", label, value, options, labels or {}, **extra)


def multiselect_input(slot, label, value, options, labels=None, **extra) -> Input:
    """A multiple choice; values that are not among ``options`` are offered too."""
    value = list(value or [])
    options = tuple(dict.fromkeys([*options, *value]))
    return Input(slot, "multiselect", label, value, options, labels or {}, **extra)


def words_input(text: str, tag: str) -> Input:
    """Fixed ``text`` between widgets (no value)."""
    return Input(f"words_{tag}", "words", text, width=0)


def line_input(text: str, tag: str) -> Input:
    """A new line in the row, starting with ``text``."""
    return Input(f"line_{tag}", "line", text, width=0)


def as_date(value, fallback: date) -> date:
    """``value`` (a date, a datetime or an ISO string) as a date, else ``fallback``."""
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


def as_number(value, integer: bool) -> int | float:
    """``value`` as the widget's number type; integral floats become ints in documents."""
    if isinstance(value, (list, tuple)) or value is None or isinstance(value, bool):
        return 0 if integer else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0 if integer else 0.0
    return int(number) if integer else number


def plain(value):
    """``value`` as a document holds it: integral floats as ints, dates as ISO text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def window_inputs(body: dict, as_of: date) -> list[Input]:
    """The time-window widgets of ``body``: the kind of window, then its days or dates."""
    window = body.get("window") or {}
    kind = next(iter(window), "all_time") if isinstance(window, dict) else "all_time"
    inputs = [select_input("window", "Time window", kind, tuple(WINDOW_LABELS), WINDOW_LABELS,
                           width=130)]
    if kind in ("last_days", "more_than_days_ago"):
        inputs += [number_input("window_days", "Days", as_number(window[kind], True),
                                minimum=1, step=1, width=100, variant=kind),
                   words_input("days" if kind == "last_days" else "days ago", "window_unit")]
    elif kind == "between":
        start, end = window["between"]
        inputs += [Input("window_start", "date", "From", as_date(start, as_of), width=140),
                   words_input("and", "window_and"),
                   Input("window_end", "date", "To", as_date(end, as_of), width=140)]
    return inputs


def apply_window(body: dict, slot: str, value, as_of: date) -> dict:
    """``body`` with the window widget ``slot`` set to ``value`` (a new kind starts afresh)."""
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
        body["window"] = {"between": [plain(value) if slot == "window_start" else start,
                                      plain(value) if slot == "window_end" else end]}
    return body


def comparison_inputs(value_type: str, op: str, value, as_of: date, variant: str,
                      integer: bool = False, options: Sequence[str] = (),
                      listed: bool = True) -> list[Input]:
    """The value widgets of a comparison: none, a number, a date, a list, a text ..."""
    if op in ("is_set", "not_set"):
        return []
    if op in ("within_last_days", "more_than_days_ago"):
        return [number_input("value", "Days", as_number(value, True), minimum=1, step=1,
                             width=100, variant=f"{variant}-{op}"),
                words_input("days" if op == "within_last_days" else "days ago", "value_unit")]
    if value_type == "date":
        if op == "between":
            low, high = value if isinstance(value, (list, tuple)) and len(value) == 2 else (
                as_of - timedelta(days=30), as_of)
            return [Input("low", "date", "From", as_date(low, as_of), width=140,
                          variant=variant), words_input("and", "value_and"),
                    Input("high", "date", "To", as_date(high, as_of), width=140,
                          variant=variant)]
        return [Input("value", "date", "Date", as_date(value, as_of), width=140,
                      variant=f"{variant}-{op}")]
    if op in ("gt", "gte", "lt", "lte", "between") or value_type == "number":
        step = 1 if integer else 10.0
        if op == "between":
            low, high = value if isinstance(value, (list, tuple)) and len(value) == 2 else (0, 0)
            return [number_input("low", "From", as_number(low, integer), minimum=0,
                                 step=step, width=110, variant=variant),
                    words_input("and", "value_and"),
                    number_input("high", "To", as_number(high, integer), minimum=0,
                                 step=step, width=110, variant=variant)]
        return [number_input("value", "Value", as_number(value, integer),
                             minimum=0 if value_type == "number" else None, step=step,
                             width=110, variant=f"{variant}-{op}")]
    if op in ("in", "not_in"):
        return [multiselect_input("value", "Values", value if isinstance(value, list) else [],
                                  options, free_entry=True, width=320, variant=f"{variant}-{op}",
                                  placeholder="Pick or type values")]
    text = value if isinstance(value, str) else ("" if value is None else str(plain(value)))
    if op in ("equals", "not_equals") and listed and options:
        return [select_input("value", "Value", text or None, options, free_entry=True, width=220,
                             variant=f"{variant}-{op}", placeholder="Pick or type a value")]
    return [Input("value", "text", "Value", text, width=220, variant=f"{variant}-{op}",
                  placeholder="Type a value")]


def default_value(value_type: str, op: str, as_of: date):
    """The value a comparison starts with when its field or operator changes."""
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


def apply_comparison(body: dict, slot: str, value, value_type: str, integer: bool) -> dict:
    """``body`` with the comparison's value widget ``slot`` (value, low or high) set."""
    op = body.get("op")
    if slot in ("low", "high"):
        current = body.get("value")
        low, high = current if isinstance(current, list) and len(current) == 2 else (0, 0)
        low, high = (value, high) if slot == "low" else (low, value)
        body["value"] = [plain(low), plain(high)]
    elif slot == "value":
        current = body.get("value")
        if isinstance(value, str) and not isinstance(current, (str, list)) and \
                current is not None and str(plain(current)) == value:
            return body  # a number shown as text in a list of values: keep the number
        if value_type == "date" and op in ("before", "after"):
            body["value"] = plain(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            body["value"] = int(value) if integer else plain(float(value))
        elif isinstance(value, list):
            body["value"] = [str(v) for v in value]
        else:
            body["value"] = "" if value is None else value
    return body


def properties_inputs(body: dict, key: str, event: str, choices: Choices) -> list[Input]:
    """One property filter ("where NAME = VALUE"); more are edited as JSON."""
    properties = body.get(key) or {}
    if len(properties) > 1:
        return [line_input("with properties " + " and ".join(f"{k} = {v}" for k, v in
                                                             properties.items())
                           + " (edit as JSON to change)", key)]
    name = next(iter(properties), None)
    names = choices.lookup("event_property_names", event)
    inputs = [select_input("prop_name", "Property filter", name, (None, *names),
                           {None: "any property"}, width=150, variant=event)]
    if name is not None:
        values = choices.lookup("event_property_values", event, name)
        inputs += [words_input("=", f"{key}_equals"),
                   select_input("prop_value", "Property value", properties[name] or None, values,
                                free_entry=True, width=170, variant=f"{event}-{name}",
                                placeholder="Pick or type a value")]
    return inputs


def apply_properties(body: dict, key: str, slot: str, value) -> dict:
    """``body`` with its property filter (under ``key``) changed by the widget ``slot``."""
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
