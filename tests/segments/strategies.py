"""Hypothesis strategies: small random stores, an ``as_of`` inside them, and rule trees.

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
from tests.segments.reference import Store, day_start, json_object, json_text, order_metrics

EDGE_DAYS = (1, 7, 30, 90)
WINDOW_DAYS = EDGE_DAYS + (3, 400)
WITHIN_HOURS = (1.0, 0.5, 2.0, 24.0, 1.5)
FOLLOW_UPS = tuple(timedelta(minutes=m) for m in (0, 30, 60, 61, 90, 120, 24 * 60, 24 * 60 + 1))

EMAIL_LOCALS = ("ann", "Bob", "c_d", "x%y")
EMAIL_DOMAINS = ("example.com", "Example.COM", "shop.co.uk", "mail.example.com")
COUNTRIES = ("GB", "FR", "gb", "United Kingdom", "France", "U_K")
ACQUISITION = ("organic", "paid_search", "Paid_Social", "email", "referral", "100%_promo")
PHONES = ("+447700900001", "+33612345678", "+1555")
TIERS = ("gold", "Gold", "silver", "gold_plus", "", None, 7)
LTVS = (10, 0, 12.5, 99, -3, 250.75, None, "n/a")
CATEGORIES = ("shoes", "bags", "Shoes", "hats", None)
PRICES = (20, 12.5, 20.0, 7)
SCORE_VALUES = (0.5, 0.1, 0.25, 0.75, 0.9, 1.0)
SCORE_TARGETS = ("churn", "repeat")
TEXT_EXTRAS = ("_", "%", "a", "GB", "example.com", "zzz", "o", "Gold")
SCORES_DDL = """CREATE TABLE IF NOT EXISTS scores (
    customer_id VARCHAR, target VARCHAR, model_version VARCHAR, score DOUBLE,
    decile INTEGER, scored_at TIMESTAMP
)"""
SCORE_RUNS_COVER_EVERYONE = True
"""Each scoring run scores every customer. docs/segments.md asks for each customer's latest
score; the compiler reads the latest run's scores; the two agree only on such runs."""
SCORES_COLUMNS = ("customer_id", "target", "model_version", "score", "decile", "scored_at")


@dataclass
class Scenario:
    """One drawn case: a store, the time it is looked at, and the rules to check on it."""

    store: Store
    as_of: datetime
    rules: tuple


# ------------------------------------------------------------------ time
#
# The store is drawn by plain functions that take ``draw`` and use only cached
# primitive strategies (integers, sampled_from, booleans): building a new mapped or
# one_of strategy for every timestamp made drawing a store ten times slower.

MINUTE = timedelta(minutes=1)


def draw_as_of(draw) -> datetime:
    """A moment in 2025, at midnight or at any minute of the day."""
    day = datetime(2025, 3, 1) + timedelta(days=draw(st.integers(0, 250)))
    if draw(st.booleans()):
        return day
    return day + draw(st.integers(1, 24 * 60 - 1)) * MINUTE


def draw_moment(draw, as_of: datetime) -> datetime:
    """A timestamp in the year before ``as_of`` (or the month after), edges favoured."""
    kind = draw(st.sampled_from((0, 1, 2, 3, 3, 4)))
    if kind == 0:  # any minute
        return as_of + draw(st.integers(-365 * 24 * 60, 30 * 24 * 60)) * MINUTE
    if kind == 1:  # midnight
        return day_start(as_of) + timedelta(days=draw(st.integers(-365, 30)))
    if kind == 2:  # the last microsecond of a day
        return day_start(as_of) + timedelta(days=draw(st.integers(-365, 30)), microseconds=-1)
    if kind == 3:  # as_of - N days, or a minute either side
        return (as_of - timedelta(days=draw(st.sampled_from(EDGE_DAYS)))
                + draw(st.integers(-1, 1)) * MINUTE)
    return as_of + draw(st.integers(-1, 1)) * MINUTE


def as_ofs() -> st.SearchStrategy[datetime]:
    """Strategy for ``as_of``."""
    return st.composite(lambda draw: draw_as_of(draw))()


def moments(as_of: datetime) -> st.SearchStrategy[datetime]:
    """Strategy for timestamps around ``as_of``."""
    return st.composite(lambda draw: draw_moment(draw, as_of))()


def draw_date_value(draw, pool: list[datetime], as_of: datetime) -> datetime:
    """A date for before/after/between: mostly the day of a relevant moment (or the day
    either side) at some time of day, which the whole-day operators must ignore."""
    if pool and draw(st.integers(0, 3)):
        day = day_start(draw(st.sampled_from(pool))) + timedelta(
            days=draw(st.sampled_from((0, 0, -1, 1))))
        return day + draw(st.sampled_from((0, 1, 8 * 60, 12 * 60, 24 * 60 - 1))) * MINUTE
    return draw_moment(draw, as_of)


# ------------------------------------------------------------------ the store


def draw_customers(draw, as_of: datetime) -> list[dict]:
    rows = []
    for index in range(draw(st.integers(3, 25))):
        email = draw(st.sampled_from((True, True, True, None, "")))
        if email:
            email = draw(st.sampled_from(EMAIL_LOCALS)) + "@" + draw(st.sampled_from(EMAIL_DOMAINS))
        attributes = None
        if draw(st.integers(0, 3)):
            attributes = {}
            for key, pool in (("tier", TIERS), ("ltv", LTVS)):
                if draw(st.booleans()):
                    attributes[key] = draw(st.sampled_from(pool))
            attributes = json.dumps(attributes)
        rows.append({
            "customer_id": f"c{index:02d}",
            "email": email,
            "phone": draw(st.sampled_from(PHONES + (None, ""))),
            "country": draw(st.sampled_from(COUNTRIES + (None, ""))),
            "acquisition_channel": draw(st.sampled_from(ACQUISITION + (None, ""))),
            "signed_up_at": draw_moment(draw, as_of) if draw(st.integers(0, 3)) else None,
            "attributes": attributes,
            "updated_at": as_of - timedelta(days=400),
        })
    return rows


def draw_money(draw, low: int, high: int) -> float:
    """Money in quarters, so that every sum is exact in binary floating point."""
    return draw(st.integers(low, high)) / 4


def draw_orders(draw, ids: list[str], product_ids: list[str], as_of: datetime):
    orders, items = [], []
    for index in range(draw(st.integers(0, 60))):
        is_guest = draw(st.sampled_from((False, False, False, None, True)))
        customer = draw(st.sampled_from(ids))
        if is_guest and draw(st.booleans()):
            customer = None
        kind = draw(st.sampled_from(("sale",) * 6 + ("return", "adjustment", None)))
        status = draw(st.sampled_from(("completed",) * 5 + ("cancelled", "refunded", None)))
        sign = -1 if kind == "return" else 1
        order_id = f"o{index:03d}"
        orders.append({
            "order_id": order_id, "customer_id": customer, "is_guest": is_guest,
            "ordered_at": draw_moment(draw, as_of), "kind": kind, "status": status,
            "currency": "EUR", "subtotal": None, "discount": None,
            "total": sign * draw_money(draw, 0, 2000), "updated_at": as_of})
        for line in range(draw(st.integers(0, 3))):
            items.append({
                "order_id": order_id, "line_number": line + 1,
                "product_id": draw(st.sampled_from(product_ids + ["p_gone"])),
                "quantity": sign * draw(st.integers(1, 3)),
                "unit_price": draw_money(draw, 0, 400),
                "discount": draw_money(draw, 0, 20) if draw(st.booleans()) else None})
    return orders, items


def draw_properties(draw) -> str | None:
    if not draw(st.integers(0, 3)):
        return None
    properties = {}
    if draw(st.booleans()):
        properties["category"] = draw(st.sampled_from(CATEGORIES))
    if draw(st.booleans()):
        properties["price"] = draw(st.sampled_from(PRICES))
    return json.dumps(properties)


def draw_events(draw, ids: list[str], product_ids: list[str], as_of: datetime) -> list[dict]:
    rows: list[dict] = []
    for index in range(draw(st.integers(0, 120))):
        if rows and draw(st.integers(0, 2)) == 0:  # a follow-up: edges of within_hours
            earlier = rows[draw(st.integers(0, len(rows) - 1))]
            customer = earlier["customer_id"]
            moment = earlier["occurred_at"] + draw(st.sampled_from(FOLLOW_UPS))
        else:
            customer = draw(st.sampled_from(ids))
            moment = draw_moment(draw, as_of)
        rows.append({
            "event_id": f"e{index:03d}", "customer_id": customer, "session_id": None,
            "event_type": draw(st.sampled_from(catalog.EVENT_TYPES)), "occurred_at": moment,
            "product_id": draw(st.sampled_from(product_ids)) if draw(st.booleans()) else None,
            "properties": draw_properties(draw)})
    return rows


def draw_consent(draw, ids: list[str], as_of: datetime) -> list[dict]:
    """0-3 changes per customer and channel, never two at the same moment."""
    rows = []
    for customer in ids:
        for channel in catalog.CHANNELS:
            seen = set()
            for _ in range(draw(st.integers(0, 3))):
                moment = draw_moment(draw, as_of)
                if moment in seen:
                    continue
                seen.add(moment)
                rows.append({"consent_event_id": f"ce{len(rows):03d}", "customer_id": customer,
                             "channel": channel, "occurred_at": moment, "source": "import",
                             "status": draw(st.sampled_from(
                                 ("subscribed", "unsubscribed", "non_subscribed")))})
    return rows


def draw_sends(draw, ids: list[str], campaign_ids: list[str], as_of: datetime) -> list[dict]:
    sends = []
    for index in range(draw(st.integers(0, 30))):
        sent = draw_moment(draw, as_of)
        opened = clicked = None
        how = draw(st.integers(0, 2))
        if how == 1:
            opened = sent + draw(st.integers(0, 5 * 24 * 60)) * MINUTE
        elif how == 2:
            opened = draw_moment(draw, as_of)
        if opened is not None and draw(st.booleans()):
            clicked = opened + draw(st.integers(0, 24 * 60)) * MINUTE
        sends.append({"send_id": f"s{index:03d}",
                      "campaign_id": draw(st.sampled_from(campaign_ids)),
                      "customer_id": draw(st.sampled_from(ids)), "variant": "A",
                      "sent_at": sent, "opened_at": opened, "clicked_at": clicked,
                      "unsubscribed_at": None})
    return sends


def draw_scores(draw, ids: list[str], as_of: datetime) -> list[dict]:
    """Scoring runs: each scores every customer (or some, see SCORE_RUNS_COVER_EVERYONE)."""
    rows, runs = [], set()
    for _ in range(draw(st.integers(0, 3))):
        run = (draw(st.sampled_from(SCORE_TARGETS)), draw_moment(draw, as_of))
        if run in runs:
            continue
        runs.add(run)
        for customer in ids:
            if SCORE_RUNS_COVER_EVERYONE or draw(st.booleans()):
                rows.append({"customer_id": customer, "target": run[0], "model_version": "v1",
                             "score": draw(st.sampled_from(SCORE_VALUES)), "decile": None,
                             "scored_at": run[1]})
    return rows


def draw_store(draw, as_of: datetime) -> Store:
    """A small store: 3-25 customers, up to 60 orders, 120 events, consent, sends, scores."""
    people = draw_customers(draw, as_of)
    ids = [c["customer_id"] for c in people]
    products = [{"product_id": f"p{i}", "name": f"Product {i}",
                 "category": draw(st.sampled_from(CATEGORIES)), "price": 10.0,
                 "updated_at": as_of}
                for i in range(draw(st.integers(1, 5)))]
    product_ids = [p["product_id"] for p in products]
    orders, items = draw_orders(draw, ids, product_ids, as_of)
    campaigns = [{"campaign_id": f"cmp{i}", "name": f"Campaign {i}",
                  "channel": draw(st.sampled_from(catalog.CHANNELS)),
                  "sent_at": draw_moment(draw, as_of), "updated_at": as_of}
                 for i in range(draw(st.integers(1, 3)))]
    return Store(
        customers=people, products=products, orders=orders, order_items=items,
        events=draw_events(draw, ids, product_ids, as_of),
        consent_events=draw_consent(draw, ids, as_of), campaigns=campaigns,
        campaign_sends=draw_sends(draw, ids, [c["campaign_id"] for c in campaigns], as_of),
        scores=draw_scores(draw, ids, as_of))


def stores(as_of: datetime) -> st.SearchStrategy[Store]:
    """Strategy for a small random store looked at from ``as_of``."""
    return st.composite(lambda draw: draw_store(draw, as_of))()


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


def store_moments(store: Store) -> list[datetime]:
    """Every timestamp in the store (for drawing dates that hit stored days)."""
    found = [o["ordered_at"] for o in store.orders] + [e["occurred_at"] for e in store.events]
    found += [c["signed_up_at"] for c in store.customers if c["signed_up_at"]]
    found += [s[column] for s in store.campaign_sends
              for column in ("sent_at", "opened_at", "clicked_at") if s[column]]
    return sorted(found)


# ------------------------------------------------------------------ conditions


def draw_days(draw, store: Store, as_of: datetime) -> int:
    """N for last_days / more_than_days_ago: mostly an N that puts a stored moment
    exactly on ``as_of - N days``, the edge between the two windows."""
    edges = sorted({(as_of - moment).days for moment in store_moments(store)
                    if moment < as_of and (as_of - moment) % timedelta(days=1) == timedelta(0)})
    if edges and draw(st.booleans()):
        return draw(st.sampled_from(edges))
    return draw(st.sampled_from(WINDOW_DAYS))


def draw_window(draw, store: Store, as_of: datetime) -> Window:
    kind = draw(st.sampled_from(("all_time", "last_days", "more_than_days_ago", "between")))
    if kind == "all_time":
        return Window()
    if kind == "between":
        pool = store_moments(store)
        start, end = sorted(draw_date_value(draw, pool, as_of) for _ in range(2))
        return Window("between", start=start, end=end)
    return Window(kind, days=draw_days(draw, store, as_of))


def draw_text(draw, existing: list[str], op: str = "equals") -> str:
    """An existing value, a piece of one that suits ``op`` (a prefix for starts_with ...),
    either in another case, or a fixed extra (``_`` and ``%`` among them)."""
    branch = draw(st.integers(0, 3)) if existing else 3
    if branch == 3:
        return draw(st.sampled_from(TEXT_EXTRAS))
    value = draw(st.sampled_from(existing))
    if branch == 2:
        start = 0 if op == "starts_with" else draw(st.integers(0, len(value) - 1))
        end = len(value) if op == "ends_with" else draw(st.integers(start + 1, len(value)))
        value = value[start:end]
    if branch >= 1:
        value = draw(st.sampled_from((value, value.upper(), value.lower(), value.swapcase())))
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


def draw_number(draw, existing: list[float], op: str):
    pool = sorted(set(existing)) + [0.0, 1.0, 12.5, 50.0]
    if op == "between":
        return tuple(sorted(float(draw(st.sampled_from(pool))) for _ in range(2)))
    return float(draw(st.sampled_from(pool)))


def draw_date_operand(draw, op: str, pool: list[datetime], store: Store, as_of: datetime):
    """The value of a date operator; ``pool`` holds the moments the condition looks at."""
    if op in ("is_set", "not_set"):
        return None
    if op in ("within_last_days", "more_than_days_ago"):
        return draw_days(draw, store, as_of)
    if op == "between":
        return tuple(sorted(draw_date_value(draw, pool, as_of) for _ in range(2)))
    return draw_date_value(draw, pool, as_of)


PROFILE_NAMES = tuple(catalog.PROFILE_FIELDS) + (
    "attributes.tier", "attributes.ltv", "attributes.nope", "attributes.tier", "attributes.ltv",
    "signed_up_at")


def draw_profile(draw, store: Store, as_of: datetime) -> Profile:
    name = draw(st.sampled_from(PROFILE_NAMES))
    spec = catalog.profile_field(name)
    op = draw(st.sampled_from(spec.operators))
    if spec.type == "date":
        signups = [c["signed_up_at"] for c in store.customers if c["signed_up_at"]]
        return Profile(name, op, draw_date_operand(draw, op, signups, store, as_of))
    if op in ("is_set", "not_set"):
        return Profile(name, op)
    texts = _profile_texts(store, name)
    if op in ("gt", "gte", "lt", "lte", "between") or (
            op in ("equals", "not_equals") and name.startswith("attributes.")
            and draw(st.booleans())):
        numbers = [float(v) for v in LTVS if isinstance(v, (int, float))]
        return Profile(name, op, draw_number(draw, numbers, op))
    if op in ("in", "not_in"):
        return Profile(name, op, tuple(draw_text(draw, texts)
                                       for _ in range(draw(st.integers(1, 3)))))
    return Profile(name, op, draw_text(draw, texts, op))


def draw_orders_condition(draw, store: Store, as_of: datetime) -> Orders:
    metric = draw(st.sampled_from(tuple(catalog.ORDER_METRICS)))
    window = draw_window(draw, store, as_of)
    products = categories = ()
    filters = draw(st.sampled_from(("none", "none", "products", "categories", "both")))
    if filters in ("products", "both"):
        pool = [p["product_id"] for p in store.products] + ["p_gone", "p_none"]
        products = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2,
                                       unique=True)))
    if filters in ("categories", "both"):
        categories = tuple(draw(st.lists(st.sampled_from([c for c in CATEGORIES if c]),
                                         min_size=1, max_size=2, unique=True)))
    existing = [order_metrics(store, c, window, as_of, products, categories)[metric]
                for c in sorted(store.customer_ids())]
    existing = [v for v in existing if v is not None]
    if catalog.ORDER_METRICS[metric] == "date":
        op = draw(st.sampled_from(catalog.DATE_OPERATORS))
        return Orders(metric, op, draw_date_operand(draw, op, existing, store, as_of), window,
                      products, categories)
    op = draw(st.sampled_from(NUMBER_METRIC_OPERATORS))
    return Orders(metric, op, draw_number(draw, existing, op), window, products, categories)


NUMBER_METRIC_OPERATORS = tuple(o for o in catalog.NUMBER_OPERATORS
                                if o not in ("is_set", "not_set"))
PROPERTY_FILTERS = (
    (), (), (("category", "shoes"),), (("category", "bags"),), (("category", "Shoes"),),
    (("price", "20"),), (("price", "12.5"),), (("price", "20.0"),),
    (("category", "shoes"), ("price", "20")), (("category", "hats"), ("price", "7")))


def draw_events_condition(draw, store: Store, as_of: datetime) -> Events:
    return Events(draw(st.sampled_from(catalog.EVENT_TYPES)),
                  draw(st.sampled_from(catalog.COUNT_OPERATORS)), draw(st.integers(0, 3)),
                  draw_window(draw, store, as_of), draw(st.sampled_from(PROPERTY_FILTERS)))


def draw_sequence(draw, store: Store, as_of: datetime) -> Sequence:
    return Sequence(draw(st.sampled_from(catalog.EVENT_TYPES)),
                    draw(st.sampled_from(catalog.EVENT_TYPES)),
                    draw(st.sampled_from(WITHIN_HOURS)), draw(st.booleans()),
                    draw_window(draw, store, as_of), draw(st.sampled_from(PROPERTY_FILTERS)))


def draw_campaign(draw, store: Store, as_of: datetime) -> Campaign:
    ids = [None] + [c["campaign_id"] for c in store.campaigns] + ["cmp_none"]
    return Campaign(draw(st.sampled_from(catalog.CAMPAIGN_ACTIONS)),
                    draw(st.sampled_from(ids)), draw_window(draw, store, as_of))


def draw_score(draw, store: Store, as_of: datetime) -> Score:
    target = draw(st.sampled_from(SCORE_TARGETS + ("no_such_target",)))
    if draw(st.booleans()):
        return Score(target, "gte", draw(st.sampled_from(SCORE_VALUES + (0.0, 0.3))))
    return Score(target, "top_percent",
                 draw(st.sampled_from((50.0, 10.0, 20.0, 25.0, 12.5, 33.3, 100.0, 0.5))))


def draw_rfm(draw, store: Store, as_of: datetime) -> Rfm:
    return Rfm(tuple(draw(st.lists(st.sampled_from(catalog.RFM_GROUPS), min_size=1,
                                   max_size=3, unique=True))))


def draw_consent_condition(draw, store: Store, as_of: datetime) -> Consent:
    return Consent(draw(st.sampled_from(catalog.CHANNELS)),
                   draw(st.sampled_from(catalog.CONSENT_STATUSES)))


def draw_membership(draw, store: Store, as_of: datetime) -> Membership:
    return Membership(draw(st.sampled_from(("Lapsed VIPs", "x"))))


CONDITION_DRAWERS = {
    "profile": draw_profile, "consent": draw_consent_condition,
    "orders": draw_orders_condition, "events": draw_events_condition,
    "sequence": draw_sequence, "campaign": draw_campaign, "score": draw_score,
    "rfm": draw_rfm, "segment": draw_membership,
}
CONDITION_KINDS = ("profile", "consent", "orders", "events", "sequence", "campaign", "score",
                   "rfm")


def draw_condition(draw, store: Store, as_of: datetime, kinds=CONDITION_KINDS):
    """One condition of one of ``kinds`` whose values fit ``store``."""
    kind = draw(st.sampled_from(kinds))
    return CONDITION_DRAWERS[kind](draw, store, as_of)


def draw_tree(draw, store: Store, as_of: datetime, depth: int = 3, kinds=CONDITION_KINDS):
    """A condition, or all/any/not over subtrees, at most ``depth`` groups deep."""
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw_condition(draw, store, as_of, kinds)
    op = draw(st.sampled_from(("all", "any", "not")))
    if op == "not":
        return Not(draw_tree(draw, store, as_of, depth - 1, kinds))
    return Group(op, tuple(draw_tree(draw, store, as_of, depth - 1, kinds)
                           for _ in range(draw(st.integers(1, 3)))))


def trees(store: Store, as_of: datetime, depth: int = 3,
          kinds=CONDITION_KINDS) -> st.SearchStrategy:
    """Strategy for rules over ``store`` (every kind in ``kinds``)."""
    return st.composite(lambda draw: draw_tree(draw, store, as_of, depth, kinds))()


@st.composite
def scenarios(draw, depth: int = 3, kinds=CONDITION_KINDS, rules: int = 1) -> Scenario:
    """A store, an ``as_of`` inside its data, and ``rules`` rules over it.

    Hypothesis spends most examples on small mutations of earlier ones, which keep the
    rule drawn last; drawing several rules per store gets many more distinct rules
    checked for the price of one warehouse file.
    """
    as_of = draw_as_of(draw)
    store = draw_store(draw, as_of)
    drawn = tuple(draw_tree(draw, store, as_of, depth, kinds) for _ in range(rules))
    return Scenario(store, as_of, drawn)
