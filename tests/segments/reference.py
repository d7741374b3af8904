"""An independent evaluator of segment rules, in plain Python over in-memory rows.

It follows docs/segments.md line by line and shares no code with the SQL compiler, so
that a disagreement between the two points at a bug in one of them. Only the dataclasses
of :mod:`studio.segments.definition` and the catalog's constants are shared.

A :class:`Store` holds the warehouse tables as lists of dicts keyed by column name
(a missing key reads as NULL). ``evaluate(node, store, as_of)`` returns the set of
customer ids the node holds for; ``segment`` membership is not supported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

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
    Sequence,
    Window,
)

DAY = timedelta(days=1)

RFM_GRID = {
    5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"),
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose"),
}
"""Typed in again from the table in docs/segments.md (row R, column F)."""


@dataclass
class Store:
    """The warehouse tables as rows (dicts of column name to value)."""

    customers: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    order_items: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    consent_events: list[dict] = field(default_factory=list)
    campaigns: list[dict] = field(default_factory=list)
    campaign_sends: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)

    TABLES = ("customers", "products", "campaigns", "consent_events", "orders",
              "order_items", "events", "campaign_sends", "scores")

    def customer_ids(self) -> set[str]:
        return {row["customer_id"] for row in self.customers}


# ------------------------------------------------------------------ small pieces


def day_start(moment: datetime) -> datetime:
    """Midnight at the start of ``moment``'s day (the time of day is ignored)."""
    return datetime(moment.year, moment.month, moment.day)


def in_window(moment: datetime | None, window: Window, as_of: datetime) -> bool:
    """Does ``moment`` fall in ``window``, which always ends at ``as_of``?"""
    if moment is None or moment > as_of:
        return False
    if window.kind == "all_time":
        return True
    if window.kind == "last_days":
        return moment > as_of - timedelta(days=window.days)
    if window.kind == "more_than_days_ago":
        return moment <= as_of - timedelta(days=window.days)
    if window.kind == "between":
        return day_start(window.start) <= moment < day_start(window.end) + DAY
    raise ValueError(window.kind)


def compare_date(moment: datetime | None, op: str, value, as_of: datetime) -> bool:
    """A date operator on a timestamp (None: unset, only ``not_set`` holds)."""
    if op == "is_set":
        return moment is not None
    if op == "not_set":
        return moment is None
    if moment is None:
        return False
    if op == "before":
        return moment < day_start(value)
    if op == "after":
        return moment >= day_start(value) + DAY
    if op == "between":
        low, high = value
        return day_start(low) <= moment < day_start(high) + DAY
    if op == "within_last_days":
        return as_of - timedelta(days=value) < moment <= as_of
    if op == "more_than_days_ago":
        return moment <= as_of - timedelta(days=value)
    raise ValueError(op)


def compare_number(number: float | None, op: str, value) -> bool:
    """A number operator (None: unset, nothing holds)."""
    if number is None:
        return False
    if op == "equals":
        return number == value
    if op == "not_equals":
        return number != value
    if op == "gt":
        return number > value
    if op == "gte":
        return number >= value
    if op == "lt":
        return number < value
    if op == "lte":
        return number <= value
    if op == "between":
        low, high = value
        return low <= number <= high
    raise ValueError(op)


def compare_text(text: str | None, op: str, value) -> bool:
    """A text operator; an empty text counts as unset, and nothing but not_set holds."""
    is_set = text is not None and text != ""
    if op == "is_set":
        return is_set
    if op == "not_set":
        return not is_set
    if not is_set:
        return False
    if op == "equals":
        return text == value
    if op == "not_equals":
        return text != value
    if op == "in":
        return text in value
    if op == "not_in":
        return text not in value
    if op == "contains":
        return value.lower() in text.lower()
    if op == "starts_with":
        return text.lower().startswith(value.lower())
    if op == "ends_with":
        return text.lower().endswith(value.lower())
    raise ValueError(op)


def json_object(text: str | None) -> dict:
    """A JSON object column as a dict ({} for NULL, malformed JSON or not an object)."""
    try:
        parsed = json.loads(text or "null")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def json_text(value) -> str | None:
    """A JSON value as text, the way the warehouse reads it (strings unquoted)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def number_of(text: str | None) -> float | None:
    """The numeric value of a text (a JSON number's or a string's), None if it is none.

    docs/segments.md says a custom attribute takes "the number operators on its numeric
    value"; our reading: the number its text spells, so the string "12" counts as 12
    (attributes loaded from CSV are often strings).
    """
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# ------------------------------------------------------------------ profile


def _profile_text(customer: dict, name: str) -> str | None:
    if name == "email_domain":
        email = customer.get("email")
        if not email or "@" not in email:
            return None
        return email.split("@", 1)[1].lower()
    return customer.get(name)


def profile_holds(customer: dict, condition: Profile, as_of: datetime) -> bool:
    """A profile condition on one customer row."""
    name, op, value = condition.field, condition.op, condition.value
    if name == "signed_up_at":
        return compare_date(customer.get("signed_up_at"), op, value, as_of)
    if name.startswith("attributes."):
        raw = json_object(customer.get("attributes")).get(name[len("attributes."):])
        text = json_text(raw)
        if op in ("is_set", "not_set"):
            return compare_text(text, op, value)
        numeric_value = isinstance(value, (int, float)) and not isinstance(value, bool)
        if op in ("gt", "gte", "lt", "lte", "between") or numeric_value:
            return compare_number(number_of(text), op, value)
        return compare_text(text, op, value)
    return compare_text(_profile_text(customer, name), op, value)


# ------------------------------------------------------------------ consent


def consent_status(store: Store, customer_id: str, channel: str, as_of: datetime) -> str:
    """subscribed, unsubscribed or never_subscribed on ``channel`` at ``as_of``."""
    history = sorted((e for e in store.consent_events
                      if e["customer_id"] == customer_id and e["channel"] == channel
                      and e["occurred_at"] <= as_of), key=lambda e: e["occurred_at"])
    if not any(e["status"] == "subscribed" for e in history):
        return "never_subscribed"
    return "subscribed" if history[-1]["status"] == "subscribed" else "unsubscribed"


# ------------------------------------------------------------------ orders


def is_valid_purchase(order: dict) -> bool:
    """kind = 'sale', status = 'completed', not a guest checkout, with a customer."""
    return (order.get("kind") == "sale" and order.get("status") == "completed"
            and order.get("is_guest") is not True and order.get("customer_id") is not None)


def order_metrics(store: Store, customer_id: str, window: Window, as_of: datetime,
                  products: tuple[str, ...] = (), categories: tuple[str, ...] = ()) -> dict:
    """count, revenue, average_order_value, first_order_date, last_order_date (None: unset)."""
    category_of = {p["product_id"]: p.get("category") for p in store.products}
    filtered = bool(products or categories)
    count, revenue, times = 0, 0.0, []
    for order in store.orders:
        if order.get("customer_id") != customer_id or not is_valid_purchase(order):
            continue
        if not in_window(order["ordered_at"], window, as_of):
            continue
        if filtered:
            lines = [line for line in store.order_items
                     if line["order_id"] == order["order_id"]
                     and (line["product_id"] in products
                          or category_of.get(line["product_id"]) in categories)]
            if not lines:
                continue
            revenue += sum(line["quantity"] * line["unit_price"] - (line.get("discount") or 0)
                           for line in lines)
        else:
            revenue += order["total"]
        count += 1
        times.append(order["ordered_at"])
    return {"count": count, "revenue": revenue,
            "average_order_value": revenue / count if count else None,
            "first_order_date": min(times) if times else None,
            "last_order_date": max(times) if times else None}


def orders_hold(store: Store, customer_id: str, condition: Orders, as_of: datetime) -> bool:
    metrics = order_metrics(store, customer_id, condition.window, as_of,
                            condition.products, condition.categories)
    value = metrics[condition.metric]
    if condition.metric in ("first_order_date", "last_order_date"):
        return compare_date(value, condition.op, condition.value, as_of)
    return compare_number(value, condition.op, condition.value)


# ------------------------------------------------------------------ events


def properties_match(event: dict, wanted: tuple[tuple[str, str], ...]) -> bool:
    """Every wanted property equals the event's property, compared as text."""
    if not wanted:
        return True
    properties = json_object(event.get("properties"))
    return all(json_text(properties.get(key)) == value for key, value in wanted)


def event_count(store: Store, customer_id: str, condition: Events, as_of: datetime) -> int:
    return sum(1 for e in store.events
               if e["customer_id"] == customer_id and e["event_type"] == condition.event
               and in_window(e["occurred_at"], condition.window, as_of)
               and properties_match(e, condition.properties))


def events_hold(store: Store, customer_id: str, condition: Events, as_of: datetime) -> bool:
    count = event_count(store, customer_id, condition, as_of)
    if condition.op == "at_least":
        return count >= condition.count
    if condition.op == "at_most":
        return count <= condition.count
    if condition.op == "exactly":
        return count == condition.count
    raise ValueError(condition.op)


def sequence_holds(store: Store, customer_id: str, condition: Sequence,
                   as_of: datetime) -> bool:
    """first then then within H hours (or the first without a then in the H hours after)."""
    hours = timedelta(hours=condition.within_hours)
    mine = [e for e in store.events if e["customer_id"] == customer_id]
    firsts = [e["occurred_at"] for e in mine
              if e["event_type"] == condition.first
              and in_window(e["occurred_at"], condition.window, as_of)
              and properties_match(e, condition.first_properties)]
    thens = [e["occurred_at"] for e in mine
             if e["event_type"] == condition.then and e["occurred_at"] <= as_of]
    if condition.then_happened:
        return any(a < b <= a + hours for a in firsts for b in thens)
    return any(a <= as_of - hours and not any(a < b <= a + hours for b in thens)
               for a in firsts)


# ------------------------------------------------------------------ campaigns


def campaign_holds(store: Store, customer_id: str, condition: Campaign,
                   as_of: datetime) -> bool:
    column = {"received": "sent_at", "opened": "opened_at", "clicked": "clicked_at"}[
        condition.action]
    return any(send["customer_id"] == customer_id
               and (condition.campaign_id is None
                    or send["campaign_id"] == condition.campaign_id)
               and in_window(send.get(column), condition.window, as_of)
               for send in store.campaign_sends)


# ------------------------------------------------------------------ scores and RFM


def latest_scores(store: Store, target: str, as_of: datetime) -> dict[str, float]:
    """Each customer's latest score for ``target`` scored at or before ``as_of``."""
    latest: dict[str, tuple[datetime, float]] = {}
    for row in store.scores:
        if row["target"] != target or row["scored_at"] > as_of:
            continue
        seen = latest.get(row["customer_id"])
        if seen is None or row["scored_at"] > seen[0]:
            latest[row["customer_id"]] = (row["scored_at"], row["score"])
    return {customer: score for customer, (_, score) in latest.items()}


def score_members(store: Store, condition: Score, as_of: datetime) -> set[str]:
    scores = latest_scores(store, condition.target, as_of)
    if condition.op == "gte":
        return {c for c, s in scores.items() if s >= condition.value}
    # cume_dist over descending scores: the share of scored customers scoring >= mine.
    n = len(scores)
    share = Fraction(condition.value) / 100
    return {c for c, s in scores.items()
            if Fraction(sum(1 for t in scores.values() if t >= s), n) <= share}


def rfm_groups(store: Store, as_of: datetime) -> dict[str, str]:
    """The RFM group of every customer with a valid purchase up to ``as_of``."""
    known = store.customer_ids()
    last: dict[str, datetime] = {}
    count: dict[str, int] = {}
    for order in store.orders:
        customer = order.get("customer_id")
        if customer not in known or not is_valid_purchase(order):
            continue
        if order["ordered_at"] > as_of:
            continue
        count[customer] = count.get(customer, 0) + 1
        last[customer] = max(last.get(customer, order["ordered_at"]), order["ordered_at"])
    n = len(last)

    def score(values: dict, customer: str) -> int:
        # R: ceil(5 * cume_dist()), cume_dist = share of rows with a value <= mine (ties share)
        at_most = sum(1 for v in values.values() if v <= values[customer])
        return math.ceil(5 * (at_most / n))

    return {c: RFM_GRID[score(last, c)][min(count[c], 5) - 1] for c in last}


# ------------------------------------------------------------------ the tree


def evaluate(node, store: Store, as_of: datetime) -> set[str]:
    """The ids of the customers for whom ``node`` holds at ``as_of``."""
    everyone = store.customer_ids()
    if isinstance(node, Group):
        parts = [evaluate(child, store, as_of) for child in node.children]
        if node.op == "all":
            return set.intersection(*parts)
        return set.union(*parts)
    if isinstance(node, Not):
        return everyone - evaluate(node.child, store, as_of)
    if isinstance(node, Score):
        return score_members(store, node, as_of) & everyone
    if isinstance(node, Rfm):
        groups = rfm_groups(store, as_of)
        return {c for c, group in groups.items() if group in node.groups}
    if isinstance(node, Profile):
        return {c["customer_id"] for c in store.customers if profile_holds(c, node, as_of)}
    if isinstance(node, Consent):
        return {c for c in everyone
                if consent_status(store, c, node.channel, as_of) == node.status}
    holds = {Orders: orders_hold, Events: events_hold, Sequence: sequence_holds,
             Campaign: campaign_holds}.get(type(node))
    if holds is None:
        raise NotImplementedError(f"the reference does not evaluate {type(node).__name__}")
    return {c for c in everyone if holds(store, c, node, as_of)}
