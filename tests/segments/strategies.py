"""Random small stores, an ``as_of`` inside them, and rule trees over them.

Hypothesis strategies: ``as_ofs()``, ``moments(as_of)``, ``stores(as_of)``,
``trees(store, as_of)`` and ``scenarios()`` (all three at once). ``random_scenario(seed)``
makes the same kind of scenario from a seed (see ``Randomly`` for why), and
``open_store`` writes a store into a fresh DuckDB file with the studio's schema.

Everything is drawn relative to ``as_of`` so that timestamps land, often enough to
matter, exactly on the edges the semantics care about: midnight, one microsecond before
midnight, ``as_of - N days`` (and a minute either side), ``as_of`` itself, and later than
``as_of``. Money is in quarters so that sums are exact in binary floating point and a
revenue can be compared with ``equals``.

Condition values are drawn from the store (existing countries, products, metric values,
timestamps) as well as from fixed pools, so that conditions are sometimes true and
sometimes false.
"""

from __future__ import annotations

import atexit
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import strategies as st

from studio import schema
from studio.segments import catalog
from studio.segments.definition import (
    Campaign,
    Consent,
    Events,
    Group,
    Membership,
    Not,
    Orders,
    Profile,
    Rfm,
    Score,
    Sequence,
    Window,
)
from tests.segments.reference import (
    Store,
    day_start,
    is_valid_purchase,
    json_object,
    json_text,
    order_metrics,
)

EDGE_DAYS = (1, 7, 30, 90)
WINDOW_DAYS = EDGE_DAYS + (3, 400)
WITHIN_HOURS = (1.0, 0.5, 2.0, 24.0, 1.5)
FOLLOW_UPS = tuple(timedelta(minutes=m) for m in (0, 30, 60, 61, 90, 120, 24 * 60, 24 * 60 + 1))

EMAIL_LOCALS = ("ann", "Bob", "c_d", "x%y", "o'neil")
EMAIL_DOMAINS = ("example.com", "Example.COM", "shop.co.uk", "mail.example.com")
COUNTRIES = ("GB", "FR", "gb", "United Kingdom", "France", "U_K", "Österreich")
ACQUISITION = ("organic", "paid_search", "Paid_Social", "email", "referral", "100%_promo",
               "promo\\2025")
PHONES = ("+447700900001", "+33612345678", "+1555")
TIERS = ("gold", "Gold", "silver", "gold_plus", "", None, 7)
LTVS = (10, 0, 12.5, 99, -3, 250.75, None, "n/a", "12")
CATEGORIES = ("shoes", "bags", "Shoes", "hats", None)
PRICES = (20, 12.5, 20.0, 7)
SCORE_VALUES = (0.5, 0.1, 0.25, 0.75, 0.9, 1.0)
SCORE_TARGETS = ("churn", "repeat")
TEXT_EXTRAS = ("_", "%", "a", "GB", "example.com", "zzz", "o", "Gold", "\\", "'", "ö")
SCORES_DDL = """CREATE TABLE IF NOT EXISTS scores (
    customer_id VARCHAR, target VARCHAR, model_version VARCHAR, score DOUBLE,
    decile INTEGER, scored_at TIMESTAMP
)"""
SCORES_COLUMNS = ("customer_id", "target", "model_version", "score", "decile", "scored_at")


@dataclass
class Scenario:
    """One drawn case: a store, the time it is looked at, and the rules to check on it."""

    store: Store
    as_of: datetime
    rules: tuple


# ------------------------------------------------------------------ choices
#
# Every draw_* function makes its choices through a chooser: ``Draws`` asks Hypothesis
# (so a failing case shrinks), ``Randomly`` asks a seeded ``random.Random``. Hypothesis
# spends most of its examples on small mutations of earlier ones (copying one drawn value
# over another), which keeps the rules drawn last: on these long choice sequences only about
# one example in six is new. The seeded chooser makes every example new, for breadth.
# Only cached primitive strategies are drawn (building a mapped or one_of strategy for
# every timestamp made drawing a store ten times slower).


class Draws:
    """Choices drawn from Hypothesis."""

    def __init__(self, draw):
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def one(self, options):
        return self.draw(st.sampled_from(options))

    def boolean(self) -> bool:
        return self.draw(st.booleans())

    def some(self, options, low: int, high: int) -> list:
        return self.draw(st.lists(st.sampled_from(options), min_size=low, max_size=high,
                                  unique=True))


class Randomly:
    """The same choices made by a seeded ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def one(self, options):
        return self.rng.choice(list(options))

    def boolean(self) -> bool:
        return self.rng.random() < 0.5

    def some(self, options, low: int, high: int) -> list:
        options = list(dict.fromkeys(options))
        return self.rng.sample(options, self.rng.randint(low, min(high, len(options))))


# ------------------------------------------------------------------ time

MINUTE = timedelta(minutes=1)


def draw_as_of(pick) -> datetime:
    """A moment in 2025, at midnight or at any minute of the day."""
    day = datetime(2025, 3, 1) + timedelta(days=pick.integer(0, 250))
    if pick.boolean():
        return day
    return day + pick.integer(1, 24 * 60 - 1) * MINUTE


def draw_moment(pick, as_of: datetime) -> datetime:
    """A timestamp in the year before ``as_of`` (or the month after), edges favoured."""
    kind = pick.one((0, 1, 2, 3, 3, 4))
    if kind == 0:  # any minute
        return as_of + pick.integer(-365 * 24 * 60, 30 * 24 * 60) * MINUTE
    if kind == 1:  # midnight
        return day_start(as_of) + timedelta(days=pick.integer(-365, 30))
    if kind == 2:  # the last microsecond of a day
        return day_start(as_of) + timedelta(days=pick.integer(-365, 30), microseconds=-1)
    if kind == 3:  # as_of - N days, or a minute either side
        return (as_of - timedelta(days=pick.one(EDGE_DAYS))
                + pick.integer(-1, 1) * MINUTE)
    return as_of + pick.integer(-1, 1) * MINUTE


def as_ofs() -> st.SearchStrategy[datetime]:
    """Strategy for ``as_of``."""
    return st.composite(lambda draw: draw_as_of(Draws(draw)))()


def moments(as_of: datetime) -> st.SearchStrategy[datetime]:
    """Strategy for timestamps around ``as_of``."""
    return st.composite(lambda draw: draw_moment(Draws(draw), as_of))()


def draw_date_value(pick, pool: list[datetime], as_of: datetime) -> datetime:
    """A date for before/after/between: mostly the day of a relevant moment (or the day
    either side) at some time of day, which the whole-day operators must ignore."""
    if pool and pick.integer(0, 3):
        day = day_start(pick.one(pool)) + timedelta(
            days=pick.one((0, 0, -1, 1)))
        return day + pick.one((0, 1, 8 * 60, 12 * 60, 24 * 60 - 1)) * MINUTE
    return draw_moment(pick, as_of)


# ------------------------------------------------------------------ the store


def draw_customers(pick, as_of: datetime) -> list[dict]:
    rows = []
    for index in range(pick.integer(3, 25)):
        email = pick.one((True, True, True, None, ""))
        if email:
            email = pick.one(EMAIL_LOCALS) + "@" + pick.one(EMAIL_DOMAINS)
        attributes = None
        if pick.integer(0, 3):
            attributes = {}
            for key, pool in (("tier", TIERS), ("ltv", LTVS)):
                if pick.boolean():
                    attributes[key] = pick.one(pool)
            attributes = json.dumps(attributes)
        rows.append({
            "customer_id": f"c{index:02d}",
            "email": email,
            "phone": pick.one(PHONES + (None, "")),
            "country": pick.one(COUNTRIES + (None, "")),
            "acquisition_channel": pick.one(ACQUISITION + (None, "")),
            "signed_up_at": draw_moment(pick, as_of) if pick.integer(0, 3) else None,
            "attributes": attributes,
            "updated_at": as_of - timedelta(days=400),
        })
    return rows


def draw_money(pick, low: int, high: int) -> float:
    """Money in quarters, so that every sum is exact in binary floating point."""
    return pick.integer(low, high) / 4


def draw_orders(pick, ids: list[str], product_ids: list[str], as_of: datetime):
    orders, items = [], []
    for index in range(pick.integer(0, 60)):
        is_guest = pick.one((False, False, False, None, True))
        customer = pick.one(ids)
        if is_guest and pick.boolean():
            customer = None
        kind = pick.one(("sale",) * 6 + ("return", "adjustment", None))
        status = pick.one(("completed",) * 5 + ("cancelled", "refunded", None))
        sign = -1 if kind == "return" else 1
        order_id = f"o{index:03d}"
        orders.append({
            "order_id": order_id, "customer_id": customer, "is_guest": is_guest,
            "ordered_at": draw_moment(pick, as_of), "kind": kind, "status": status,
            "currency": "EUR", "subtotal": None, "discount": None,
            "total": sign * draw_money(pick, 0, 2000), "updated_at": as_of})
        for line in range(pick.integer(0, 3)):
            items.append({
                "order_id": order_id, "line_number": line + 1,
                "product_id": pick.one(product_ids + ["p_gone"]),
                "quantity": sign * pick.integer(1, 3),
                "unit_price": draw_money(pick, 0, 400),
                "discount": draw_money(pick, 0, 20) if pick.boolean() else None})
    return orders, items


def draw_properties(pick) -> str | None:
    if not pick.integer(0, 3):
        return None
    properties = {}
    if pick.boolean():
        properties["category"] = pick.one(CATEGORIES)
    if pick.boolean():
        properties["price"] = pick.one(PRICES)
    return json.dumps(properties)


def draw_events(pick, ids: list[str], product_ids: list[str], as_of: datetime) -> list[dict]:
    rows: list[dict] = []
    for index in range(pick.integer(0, 120)):
        if rows and pick.integer(0, 2) == 0:  # a follow-up: edges of within_hours
            earlier = rows[pick.integer(0, len(rows) - 1)]
            customer = earlier["customer_id"]
            moment = earlier["occurred_at"] + pick.one(FOLLOW_UPS)
        else:
            customer = pick.one(ids)
            moment = draw_moment(pick, as_of)
        rows.append({
            "event_id": f"e{index:03d}", "customer_id": customer, "session_id": None,
            "event_type": pick.one(catalog.EVENT_TYPES), "occurred_at": moment,
            "product_id": pick.one(product_ids) if pick.boolean() else None,
            "properties": draw_properties(pick)})
    return rows


def draw_consent(pick, ids: list[str], as_of: datetime) -> list[dict]:
    """0-3 changes per customer and channel, never two at the same moment."""
    rows = []
    for customer in ids:
        for channel in catalog.CHANNELS:
            seen = set()
            for _ in range(pick.integer(0, 3)):
                moment = draw_moment(pick, as_of)
                if moment in seen:
                    continue
                seen.add(moment)
                rows.append({"consent_event_id": f"ce{len(rows):03d}", "customer_id": customer,
                             "channel": channel, "occurred_at": moment, "source": "import",
                             "status": pick.one(
                                 ("subscribed", "unsubscribed", "non_subscribed"))})
    return rows


def draw_sends(pick, ids: list[str], campaign_ids: list[str], as_of: datetime) -> list[dict]:
    sends = []
    for index in range(pick.integer(0, 30)):
        sent = draw_moment(pick, as_of)
        opened = clicked = None
        how = pick.integer(0, 2)
        if how == 1:
            opened = sent + pick.integer(0, 5 * 24 * 60) * MINUTE
        elif how == 2:
            opened = draw_moment(pick, as_of)
        if opened is not None and pick.boolean():
            clicked = opened + pick.integer(0, 24 * 60) * MINUTE
        sends.append({"send_id": f"s{index:03d}",
                      "campaign_id": pick.one(campaign_ids),
                      "customer_id": pick.one(ids), "variant": "A",
                      "sent_at": sent, "opened_at": opened, "clicked_at": clicked,
                      "unsubscribed_at": None})
    return sends


def draw_scores(pick, ids: list[str], as_of: datetime) -> list[dict]:
    """Scoring runs: each scores every customer or some of them (the latest score of a
    customer is not always from the latest run)."""
    rows, runs = [], set()
    for _ in range(pick.integer(0, 3)):
        run = (pick.one(SCORE_TARGETS), draw_moment(pick, as_of))
        if run in runs:
            continue
        runs.add(run)
        everyone = pick.boolean()
        for customer in ids:
            if everyone or pick.integer(0, 3):
                rows.append({"customer_id": customer, "target": run[0], "model_version": "v1",
                             "score": pick.one(SCORE_VALUES), "decile": None,
                             "scored_at": run[1]})
    return rows


def draw_store(pick, as_of: datetime) -> Store:
    """A small store: 3-25 customers, up to 60 orders, 120 events, consent, sends, scores."""
    people = draw_customers(pick, as_of)
    ids = [c["customer_id"] for c in people]
    products = [{"product_id": f"p{i}", "name": f"Product {i}",
                 "category": pick.one(CATEGORIES), "price": 10.0,
                 "updated_at": as_of}
                for i in range(pick.integer(1, 5))]
    product_ids = [p["product_id"] for p in products]
    orders, items = draw_orders(pick, ids, product_ids, as_of)
    campaigns = [{"campaign_id": f"cmp{i}", "name": f"Campaign {i}",
                  "channel": pick.one(catalog.CHANNELS),
                  "sent_at": draw_moment(pick, as_of), "updated_at": as_of}
                 for i in range(pick.integer(1, 3))]
    return Store(
        customers=people, products=products, orders=orders, order_items=items,
        events=draw_events(pick, ids, product_ids, as_of),
        consent_events=draw_consent(pick, ids, as_of), campaigns=campaigns,
        campaign_sends=draw_sends(pick, ids, [c["campaign_id"] for c in campaigns], as_of),
        scores=draw_scores(pick, ids, as_of))


def stores(as_of: datetime) -> st.SearchStrategy[Store]:
    """Strategy for a small random store looked at from ``as_of``."""
    return st.composite(lambda draw: draw_store(Draws(draw), as_of))()


_TEMPLATE: list[Path] = []


def _template() -> Path:
    """An empty warehouse file with the schema, made once and copied for every store."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="segment-template-"))
        atexit.register(shutil.rmtree, folder, True)
        with duckdb.connect(str(folder / "empty.duckdb")) as con:
            schema.create_all(con)
            con.execute(SCORES_DDL)
        _TEMPLATE.append(folder / "empty.duckdb")
    return _TEMPLATE[0]


def open_store(store: Store, path: Path) -> duckdb.DuckDBPyConnection:
    """A new DuckDB file at ``path`` with the studio's schema (plus ``scores``) and ``store``.

    Returns the open connection; the caller closes it.
    """
    shutil.copyfile(_template(), path)
    con = duckdb.connect(str(path))
    con.execute("BEGIN")
    for name in Store.TABLES:
        rows = getattr(store, name)
        if not rows:
            continue
        columns = (SCORES_COLUMNS if name == "scores"
                   else schema.TABLES_BY_NAME[name].column_names)
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        values = [row.get(c, 0 if c == "_run_id" else None) for row in rows for c in columns]
        con.execute(f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
                    + ", ".join(marks for _ in rows), values)
    con.execute("COMMIT")
    return con


def write_store(store: Store, path: Path) -> None:
    """Write ``store`` into a new DuckDB file at ``path``."""
    open_store(store, path).close()


# ------------------------------------------------------------------ conditions
#
# Each condition draws its dates from the moments it looks at (the event type's times,
# the valid orders' times, the action's times), so that a stored moment often sits right
# on a boundary of the condition: on ``as_of - N days``, on the day named by ``before``.


def draw_days(pick, pool: list[datetime], as_of: datetime) -> int:
    """N for last_days / more_than_days_ago: mostly an N that puts a moment of ``pool``
    exactly on ``as_of - N days``, the edge between the two windows."""
    edges = sorted({(as_of - moment).days for moment in pool
                    if moment < as_of and (as_of - moment) % timedelta(days=1) == timedelta(0)})
    if edges and pick.boolean():
        return pick.one(edges)
    return pick.one(WINDOW_DAYS)


def draw_window(pick, pool: list[datetime], as_of: datetime) -> Window:
    """A window; ``pool`` holds the moments the condition counts."""
    kind = pick.one(("all_time", "last_days", "more_than_days_ago", "between"))
    if kind == "all_time":
        return Window()
    if kind == "between":
        start, end = sorted(draw_date_value(pick, pool, as_of) for _ in range(2))
        return Window("between", start=start, end=end)
    return Window(kind, days=draw_days(pick, pool, as_of))


def draw_text(pick, existing: list[str], op: str = "equals") -> str:
    """An existing value, a piece of one that suits ``op`` (a prefix for starts_with ...),
    either in another case, or a fixed extra (``_`` and ``%`` among them)."""
    branch = pick.integer(0, 3) if existing else 3
    if branch == 3:
        return pick.one(TEXT_EXTRAS)
    value = pick.one(existing)
    if branch == 2:
        start = 0 if op == "starts_with" else pick.integer(0, len(value) - 1)
        end = len(value) if op == "ends_with" else pick.integer(start + 1, len(value))
        value = value[start:end]
    if branch >= 1:
        same = (value,) if op not in CASELESS else ()
        value = pick.one(same + (value.upper(), value.lower(), value.swapcase()))
    return value


def _profile_texts(store: Store, name: str) -> list[str]:
    found = set()
    for customer in store.customers:
        if name.startswith("attributes."):
            value = json_text(json_object(customer["attributes"]).get(name[11:]))
        elif name == "email_domain":
            email = customer["email"] or ""
            value = email.split("@", 1)[1].lower() if "@" in email else None
        else:
            value = customer[name]
        if value:
            found.add(value)
    return sorted(found)


def draw_number(pick, existing: list[float], op: str):
    pool = sorted(set(existing)) + [0.0, 1.0, 12.5, 50.0]
    if op == "between":
        return tuple(sorted(float(pick.one(pool)) for _ in range(2)))
    return float(pick.one(pool))


def draw_date_operand(pick, op: str, pool: list[datetime], as_of: datetime):
    """The value of a date operator; ``pool`` holds the moments the condition looks at."""
    if op in ("is_set", "not_set"):
        return None
    if op in ("within_last_days", "more_than_days_ago"):
        return draw_days(pick, pool, as_of)
    if op == "between":
        return tuple(sorted(draw_date_value(pick, pool, as_of) for _ in range(2)))
    return draw_date_value(pick, pool, as_of)


PROFILE_WEIGHTS = {"customer_id": 1, "email": 1, "email_domain": 2, "phone": 1, "country": 2,
                   "acquisition_channel": 2, "signed_up_at": 4, "attributes.tier": 2,
                   "attributes.ltv": 3, "attributes.nope": 1}
PROFILE_NAMES = tuple(name for name, weight in PROFILE_WEIGHTS.items() for _ in range(weight))
CASELESS = ("contains", "starts_with", "ends_with")


def draw_profile(pick, store: Store, as_of: datetime) -> Profile:
    name = pick.one(PROFILE_NAMES)
    spec = catalog.profile_field(name)
    op = pick.one(spec.operators + tuple(op for op in CASELESS if op in spec.operators))
    if spec.type == "date":
        signups = [c["signed_up_at"] for c in store.customers if c["signed_up_at"]]
        return Profile(name, op, draw_date_operand(pick, op, signups, as_of))
    if op in ("is_set", "not_set"):
        return Profile(name, op)
    texts = _profile_texts(store, name)
    if op in ("gt", "gte", "lt", "lte", "between") or (
            op in ("equals", "not_equals") and name.startswith("attributes.")
            and pick.boolean()):
        numbers = [float(v) for v in LTVS if isinstance(v, (int, float))] + [12.0]
        return Profile(name, op, draw_number(pick, numbers, op))
    if op in ("in", "not_in"):
        return Profile(name, op, tuple(draw_text(pick, texts)
                                       for _ in range(pick.integer(1, 3))))
    return Profile(name, op, draw_text(pick, texts, op))


ORDER_METRIC_CHOICES = ("count", "revenue", "average_order_value", "first_order_date",
                        "last_order_date", "first_order_date", "last_order_date")


def draw_orders_condition(pick, store: Store, as_of: datetime) -> Orders:
    metric = pick.one(ORDER_METRIC_CHOICES)
    window = draw_window(pick, [o["ordered_at"] for o in store.orders if is_valid_purchase(o)],
                         as_of)
    products = categories = ()
    filters = pick.one(("none", "none", "products", "categories", "both"))
    if filters in ("products", "both"):
        pool = [p["product_id"] for p in store.products] + ["p_gone", "p_none"]
        products = tuple(pick.some(pool, 1, 2))
    if filters in ("categories", "both"):
        categories = tuple(pick.some([c for c in CATEGORIES if c], 1, 2))
    existing = [order_metrics(store, c, window, as_of, products, categories)[metric]
                for c in sorted(store.customer_ids())]
    existing = [v for v in existing if v is not None]
    if catalog.ORDER_METRICS[metric] == "date":
        op = pick.one(catalog.DATE_OPERATORS)
        return Orders(metric, op, draw_date_operand(pick, op, existing, as_of), window,
                      products, categories)
    op = pick.one(NUMBER_METRIC_OPERATORS)
    return Orders(metric, op, draw_number(pick, existing, op), window, products, categories)


NUMBER_METRIC_OPERATORS = tuple(o for o in catalog.NUMBER_OPERATORS
                                if o not in ("is_set", "not_set"))
PROPERTY_FILTERS = (
    (), (), (("category", "shoes"),), (("category", "bags"),), (("category", "Shoes"),),
    (("price", "20"),), (("price", "12.5"),), (("price", "20.0"),),
    (("category", "shoes"), ("price", "20")), (("category", "hats"), ("price", "7")))


def _times_of(store: Store, event_type: str) -> list[datetime]:
    return [e["occurred_at"] for e in store.events if e["event_type"] == event_type]


def draw_events_condition(pick, store: Store, as_of: datetime) -> Events:
    event = pick.one(catalog.EVENT_TYPES)
    return Events(event, pick.one(catalog.COUNT_OPERATORS), pick.integer(0, 3),
                  draw_window(pick, _times_of(store, event), as_of),
                  pick.one(PROPERTY_FILTERS))


def _follow_ups(store: Store) -> list[tuple[str, str, float]]:
    """(first type, then type, hours) of pairs of one customer's events at most 24 h apart
    whose gap is one of WITHIN_HOURS (0 for the same moment)."""
    pairs = set()
    for a in store.events:
        for b in store.events:
            gap = (b["occurred_at"] - a["occurred_at"]) / timedelta(hours=1)
            if (a is not b and a["customer_id"] == b["customer_id"]
                    and (gap == 0 or gap in WITHIN_HOURS)):
                pairs.add((a["event_type"], b["event_type"], gap))
    return sorted(pairs)


def draw_sequence(pick, store: Store, as_of: datetime) -> Sequence:
    pairs = _follow_ups(store)
    if pairs and pick.boolean():  # a pair that happened, maybe exactly on the edge
        first, then, gap = pick.one(pairs)
        hours = gap if gap and pick.boolean() else pick.one(WITHIN_HOURS)
    else:
        first, then = (pick.one(catalog.EVENT_TYPES) for _ in range(2))
        hours = pick.one(WITHIN_HOURS)
    return Sequence(first, then, hours, pick.boolean(),
                    draw_window(pick, _times_of(store, first), as_of),
                    pick.one(PROPERTY_FILTERS))


def draw_campaign(pick, store: Store, as_of: datetime) -> Campaign:
    ids = [None] + [c["campaign_id"] for c in store.campaigns] + ["cmp_none"]
    action = pick.one(catalog.CAMPAIGN_ACTIONS)
    column = {"received": "sent_at", "opened": "opened_at", "clicked": "clicked_at"}[action]
    times = [s[column] for s in store.campaign_sends if s[column]]
    return Campaign(action, pick.one(ids), draw_window(pick, times, as_of))


def draw_score(pick, store: Store, as_of: datetime) -> Score:
    target = pick.one(SCORE_TARGETS + ("no_such_target",))
    if pick.boolean():
        return Score(target, "gte", pick.one(SCORE_VALUES + (0.0, 0.3)))
    return Score(target, "top_percent",
                 pick.one((50.0, 10.0, 20.0, 25.0, 12.5, 33.3, 100.0, 0.5)))


def draw_rfm(pick, store: Store, as_of: datetime) -> Rfm:
    return Rfm(tuple(pick.some(catalog.RFM_GROUPS, 1, 3)))


def draw_consent_condition(pick, store: Store, as_of: datetime) -> Consent:
    return Consent(pick.one(catalog.CHANNELS),
                   pick.one(catalog.CONSENT_STATUSES))


def draw_membership(pick, store: Store, as_of: datetime) -> Membership:
    return Membership(pick.one(("Lapsed VIPs", "x")))


CONDITION_DRAWERS = {
    "profile": draw_profile, "consent": draw_consent_condition,
    "orders": draw_orders_condition, "events": draw_events_condition,
    "sequence": draw_sequence, "campaign": draw_campaign, "score": draw_score,
    "rfm": draw_rfm, "segment": draw_membership,
}
CONDITION_KINDS = ("profile", "consent", "orders", "events", "sequence", "campaign", "score",
                   "rfm")


KIND_WEIGHTS = {"profile": 3, "orders": 3, "events": 2, "sequence": 2}
"""The kinds with the most operators and edges come up more often (the others: 1)."""


def draw_condition(pick, store: Store, as_of: datetime, kinds=CONDITION_KINDS):
    """One condition of one of ``kinds`` whose values fit ``store``."""
    kind = pick.one(tuple(k for k in kinds for _ in range(KIND_WEIGHTS.get(k, 1))))
    return CONDITION_DRAWERS[kind](pick, store, as_of)


def draw_tree(pick, store: Store, as_of: datetime, depth: int = 3, kinds=CONDITION_KINDS):
    """A condition, or all/any/not over subtrees, at most ``depth`` groups deep."""
    if depth == 0 or pick.boolean():
        return draw_condition(pick, store, as_of, kinds)
    op = pick.one(("all", "any", "not"))
    if op == "not":
        return Not(draw_tree(pick, store, as_of, depth - 1, kinds))
    return Group(op, tuple(draw_tree(pick, store, as_of, depth - 1, kinds)
                           for _ in range(pick.integer(1, 3))))


def trees(store: Store, as_of: datetime, depth: int = 3,
          kinds=CONDITION_KINDS) -> st.SearchStrategy:
    """Strategy for rules over ``store`` (every kind in ``kinds``)."""
    return st.composite(lambda draw: draw_tree(Draws(draw), store, as_of, depth, kinds))()


def draw_scenario(pick, depth: int = 3, kinds=CONDITION_KINDS, rules: int = 1) -> Scenario:
    """A store, an ``as_of`` inside its data, and ``rules`` rules over it."""
    as_of = draw_as_of(pick)
    store = draw_store(pick, as_of)
    drawn = tuple(draw_tree(pick, store, as_of, depth, kinds) for _ in range(rules))
    return Scenario(store, as_of, drawn)


def scenarios(depth: int = 3, kinds=CONDITION_KINDS, rules: int = 1) -> st.SearchStrategy:
    """Strategy for a scenario, drawn choice by choice (Hypothesis shrinks it)."""
    return st.composite(lambda draw: draw_scenario(Draws(draw), depth, kinds, rules))()


def random_scenario(seed: int, depth: int = 3, kinds=CONDITION_KINDS,
                    rules: int = 1) -> Scenario:
    """The scenario of ``seed``: the same choices made by a seeded ``random.Random``."""
    return draw_scenario(Randomly(random.Random(seed)), depth, kinds, rules)
