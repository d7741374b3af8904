"""Fixtures for the cohort tests: tiny hand-built warehouses whose every cell is known.

``tiny_store(orders=[...], events=[...], customers=[...], products=[...], ...)`` writes the
rows (dicts keyed by column name; a missing key is NULL) into the test's studio home with
the segment tests' writer (:func:`tests.segments.strategies.open_store`), builds the ETL's
rollups as a load would, and returns a sealed read-only connection, as the pages open it.
Timestamps may be given as ISO strings. Defaults keep the rows short:

* orders: ``order_id`` o1, o2, ... in row order, ``kind='sale'``, ``status='completed'``,
  ``is_guest=False``, ``total=10.0``;
* events: ``event_id`` e1, e2, ...;
* order_items: ``line_number`` 1, 2, ... within each order, ``quantity=1``,
  ``unit_price=10.0``;
* customers: every ``customer_id`` used by orders, events or consent events that is not
  listed is added with only its id.

Calling the factory again replaces the warehouse (and closes the previous connection).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

import polars as pl
import pytest

from studio import schema
from studio.rollups import build_rollups
from studio.warehouse import connect_reader
from tests.conftest import make_settings
from tests.segments.reference import Store
from tests.segments.strategies import open_store

_TIMESTAMPS = {(table.name, column.name) for table in schema.CANONICAL_TABLES
               for column in table.columns if column.type == "TIMESTAMP"}


def _typed(table: str, row: dict) -> dict:
    return {name: (datetime.fromisoformat(value)
                   if (table, name) in _TIMESTAMPS and isinstance(value, str) else value)
            for name, value in row.items()}


def complete_rows(orders=(), events=(), customers=(), products=(), order_items=(),
                  consent_events=(), campaigns=(), campaign_sends=()) -> Store:
    """The rows with their defaults filled in, as a :class:`Store` (see the module)."""
    orders = [_typed("orders", {"order_id": f"o{i}", "kind": "sale", "status": "completed",
                                "is_guest": False, "total": 10.0} | row)
              for i, row in enumerate(orders, start=1)]
    events = [_typed("events", {"event_id": f"e{i}"} | row)
              for i, row in enumerate(events, start=1)]
    lines: Counter = Counter()
    items = []
    for row in order_items:
        lines[row["order_id"]] += 1
        items.append({"line_number": lines[row["order_id"]], "quantity": 1,
                      "unit_price": 10.0} | row)
    consent = [_typed("consent_events", {"consent_event_id": f"k{i}"} | row)
               for i, row in enumerate(consent_events, start=1)]
    people = [_typed("customers", row) for row in customers]
    known = {row["customer_id"] for row in people}
    for row in (*orders, *events, *consent):
        customer = row.get("customer_id")
        if customer is not None and customer not in known:
            known.add(customer)
            people.append({"customer_id": customer})
    return Store(customers=people, products=[_typed("products", p) for p in products],
                 orders=orders, order_items=items, events=events, consent_events=consent,
                 campaigns=[_typed("campaigns", c) for c in campaigns],
                 campaign_sends=[_typed("campaign_sends", s) for s in campaign_sends])


@pytest.fixture
def tiny_store(settings):
    """Factory: ``tiny_store(orders=[...], ...)`` -> a read-only connection to those rows.

    The warehouse is ``settings.warehouse_path``, so saved segments made with the same
    ``settings`` fixture work against it.
    """
    opened = []

    def build(**rows):
        while opened:
            opened.pop().close()
        settings.warehouse_path.unlink(missing_ok=True)
        writer = open_store(complete_rows(**rows), settings.warehouse_path)
        build_rollups(writer)
        writer.close()
        opened.append(connect_reader(settings))
        return opened[-1]

    yield build
    while opened:
        opened.pop().close()


EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "order")
CATEGORIES = ("shoes", "bags", "hats", "", None)
COUNTRIES = ("DE", "FR", "GB", "", None)
CHANNELS = ("organic", "paid_search", "email", None)


def random_rows(seed: int, customers: int = 300, orders: int = 3_000, events: int = 3_000,
                start: datetime = datetime(2023, 1, 1), days: int = 500) -> dict[str, list]:
    """Random rows for :func:`tiny_store`, drawn so that the edge cases happen often.

    Moments sit on whole hours (so two orders of one customer often share a moment, and
    many fall on midnight, a period boundary); totals are in quarters (sums exact in
    floating point); about one order in six is not a valid purchase (a guest checkout, a
    return, a cancelled or refunded sale); categories, countries and channels include
    empty and missing values.
    """
    pick = random.Random(seed)
    ids = [f"c{i:04d}" for i in range(customers)]

    def moment() -> datetime:
        return start + timedelta(hours=pick.randrange(days * 24))

    people = [{"customer_id": c, "country": pick.choice(COUNTRIES),
               "acquisition_channel": pick.choice(CHANNELS),
               "email": f"{c}@example.com"} for c in ids]
    catalogue = [{"product_id": f"p{i}", "category": pick.choice(CATEGORIES)} for i in range(8)]
    order_rows, item_rows = [], []
    for number in range(orders):
        guest = pick.random() < 0.04
        kind, status = pick.choice([("sale", "completed")] * 14 + [
            ("return", "completed"), ("sale", "cancelled"), ("sale", "refunded"),
            ("adjustment", "completed")])
        order_id = f"o{number}"
        order_rows.append({
            "order_id": order_id, "customer_id": None if guest else pick.choice(ids[:-10]),
            "is_guest": guest, "kind": kind, "status": status, "ordered_at": moment(),
            "total": pick.randrange(0, 800) / 4 * (-1 if kind == "return" else 1)})
        for _ in range(pick.choice((0, 1, 1, 2, 3))):
            item_rows.append({"order_id": order_id, "product_id": pick.choice(catalogue)[
                "product_id"]})
    event_rows = [{"customer_id": pick.choice(ids), "session_id": f"s{pick.randrange(900)}",
                   "event_type": pick.choice(EVENT_TYPES), "occurred_at": moment(),
                   "product_id": pick.choice(catalogue)["product_id"]} for _ in range(events)]
    consent = [{"customer_id": pick.choice(ids), "channel": pick.choice(("email", "sms")),
                "status": pick.choice(("subscribed", "subscribed", "unsubscribed")),
                "occurred_at": moment()} for _ in range(customers)]
    return {"customers": people, "products": catalogue, "orders": order_rows,
            "order_items": item_rows, "events": event_rows, "consent_events": consent}


def write_in_bulk(store: Store, path) -> None:
    """Like ``tiny_store``, for thousands of rows: one insert per table from a polars frame
    (the segment tests' writer binds every value as a parameter, which takes seconds)."""
    writer = open_store(Store(), path)
    for name in Store.TABLES:
        rows = getattr(store, name)
        if rows:
            columns = schema.TABLES_BY_NAME[name].column_names
            frame = pl.DataFrame([{c: row.get(c, 0 if c == "_run_id" else None)
                                   for c in columns} for row in rows], infer_schema_length=None)
            writer.register("bulk_rows", frame)
            writer.execute(f"INSERT INTO {name} BY NAME SELECT * FROM bulk_rows")
            writer.unregister("bulk_rows")
    build_rollups(writer)
    writer.close()


@pytest.fixture(scope="session")
def random_store(tmp_path_factory):
    """``(rows, Reference(rows), con)`` for a random store (seed 11: 3,000 orders, 3,000
    events), written once per session; tests must only read it."""
    rows = random_rows(11)
    settings = make_settings(tmp_path_factory.mktemp("random-cohorts"))
    write_in_bulk(complete_rows(**rows), settings.warehouse_path)
    con = connect_reader(settings)
    yield rows, Reference(rows), con
    con.close()


# ------------------------------------------------------------------ an independent reference
#
# Polars over the rows given to tiny_store, following docs/cohorts.md; it shares no code
# with studio.cohorts (nor SQL), so a disagreement points at a bug in one of them.

UNKNOWN = "(unknown)"
ONE_MICROSECOND = timedelta(microseconds=1)


def period_index(period: str, moment: pl.Expr) -> pl.Expr:
    """A running number of the week (Monday to Sunday), month or quarter of ``moment``."""
    if period == "week":
        return moment.dt.truncate("1w").dt.epoch("d") // 7
    if period == "month":
        return moment.dt.year() * 12 + moment.dt.month() - 1
    return moment.dt.year() * 4 + moment.dt.quarter() - 1


def period_name(period: str, moment: pl.Expr) -> pl.Expr:
    """``2024-03-04`` (the week's Monday), ``2024-03`` or ``2024-Q1``."""
    if period == "week":
        return moment.dt.truncate("1w").dt.strftime("%Y-%m-%d")
    if period == "month":
        return moment.dt.strftime("%Y-%m")
    return moment.dt.year().cast(pl.String) + "-Q" + moment.dt.quarter().cast(pl.String)


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows],
                        schema=schema)


class Reference:
    """The rows of a store as polars frames, prepared once for the reference computations."""

    def __init__(self, rows: dict):
        store = complete_rows(**rows)
        self.orders = _frame(store.orders, {
            "order_id": pl.String, "customer_id": pl.String, "is_guest": pl.Boolean,
            "kind": pl.String, "status": pl.String, "ordered_at": pl.Datetime("us"),
            "total": pl.Float64})
        self.purchases = (self.orders.filter(
            (pl.col("kind") == "sale") & (pl.col("status") == "completed")
            & ~pl.col("is_guest").fill_null(False) & pl.col("customer_id").is_not_null())
            .sort("ordered_at", "order_id"))
        self.customers = _frame(store.customers, {
            "customer_id": pl.String, "country": pl.String, "acquisition_channel": pl.String})
        products = _frame(store.products, {"product_id": pl.String, "category": pl.String})
        self.first_category = (
            _frame(store.order_items, {"order_id": pl.String, "line_number": pl.Int64,
                                       "product_id": pl.String})
            .sort("line_number").group_by("order_id", maintain_order=True).first()
            .join(products, on="product_id", how="left").select("order_id", "category"))
        self.consent = _frame(store.consent_events, {
            "consent_event_id": pl.String, "customer_id": pl.String, "channel": pl.String,
            "status": pl.String, "occurred_at": pl.Datetime("us")})

    def cap(self, cohort_filter) -> datetime:
        """The last moment counted: just before the end, else the latest order of any kind."""
        if cohort_filter.end is not None:
            return cohort_filter.end - ONE_MICROSECOND
        return self.orders["ordered_at"].max()

    def cohorts(self, period: str, cohort_by: str, cohort_filter,
                members: set[str] | None = None) -> pl.DataFrame:
        """``customer_id, first_at, cohort`` of the customers whose first purchase is in range."""
        purchases = self.purchases
        if members is not None:
            purchases = purchases.filter(pl.col("customer_id").is_in(sorted(members)))
        firsts = (purchases.group_by("customer_id", maintain_order=True).first()
                  .rename({"ordered_at": "first_at"}))
        if cohort_filter.start is not None:
            firsts = firsts.filter(pl.col("first_at") >= cohort_filter.start)
        if cohort_filter.end is not None:
            firsts = firsts.filter(pl.col("first_at") < cohort_filter.end)
        if cohort_by == "first_order":
            return firsts.select("customer_id", "first_at",
                                 period_name(period, pl.col("first_at")).alias("cohort"))
        if cohort_by == "first_category":
            firsts = firsts.join(self.first_category, on="order_id", how="left")
            value = "category"
        else:
            firsts = firsts.join(self.customers, on="customer_id", how="left")
            value = {"channel": "acquisition_channel", "country": "country"}[cohort_by]
        cohort = (pl.when(pl.col(value).is_null() | (pl.col(value) == "")).then(pl.lit(UNKNOWN))
                  .otherwise(pl.col(value)))
        return firsts.select("customer_id", "first_at", cohort.alias("cohort"))
