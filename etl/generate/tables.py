"""The rows of each file as integer columns: clean rows, newer versions and dirty rows.

Keys are numbers here (customer ``k`` is ``1 + k``, order row ``i`` is ``1 + i``) and
become text (``C0000001``, ``O00000001``) only when written. Which defects each file
gets, and how they are counted, is the contract documented in :mod:`.dirt`.
"""

from __future__ import annotations

import numpy as np

from etl.generate.columns import Columns, stack
from etl.generate.consent import CHANNELS, ChannelConsent
from etl.generate.dirt import (
    Defect,
    Injection,
    bad_time,
    inject,
    interleave,
    set_column,
    unknown_customer,
)
from etl.generate.population import COUNTRIES, Population
from etl.generate.seasons import AS_OF_S, DAY

CUSTOMER_UPDATE_SHARE = 0.05
"""Share of customers whose record appears again later with a changed e-mail/country."""


def customer_rows(rng: np.random.Generator, population: Population,
                  share: float) -> tuple[Injection, Columns]:
    """Customer records, dirty rows, and the newer versions appended at the end.

    Returns
    -------
    injection, updates
        The originals with dirty rows, and the newer versions (ordered by ``updated_at``).
    """
    n = population.size
    clean = {
        "code": np.arange(1, n + 1, dtype=np.int64),
        "person": np.arange(n, dtype=np.int64),
        "email_version": np.zeros(n, dtype=np.int8),
        "country": population.country,
        "signed_up_at": population.signed_up_at,
        "updated_at": population.updated_at,
    }
    injection = inject(rng, clean, "code", share, [
        Defect("duplicate"),
        Defect("missing_key", spoil=set_column("code", -1)),
        Defect("bad_timestamp", new_key=True, spoil=bad_time("signed_up_at")),
    ], next_key=n + 1)

    can_change = np.flatnonzero(population.updated_at < AS_OF_S - 2 * DAY)
    size = min(round(CUSTOMER_UPDATE_SHARE * n), len(can_change))
    who = np.sort(rng.choice(can_change, size=size, replace=False))
    before = population.updated_at[who]
    moved = rng.random(size) < 0.4
    new_country = (population.country[who] + rng.integers(1, len(COUNTRIES), size=size)) % len(
        COUNTRIES)
    updates = {
        "code": who + 1,
        "person": who,
        "email_version": np.ones(size, dtype=np.int8),
        "country": np.where(moved, new_country, population.country[who]).astype(np.int8),
        "signed_up_at": population.signed_up_at[who],
        "updated_at": before + rng.integers(DAY, np.maximum(AS_OF_S - before, DAY + 1)),
    }
    order = np.argsort(updates["updated_at"], kind="stable")
    return injection, {name: values[order] for name, values in updates.items()}


def order_rows(rng: np.random.Generator, orders: Columns, items: Columns, n_customers: int,
               share: float) -> tuple[Injection, Columns, int]:
    """Orders with dirty rows, and their lines with the lines of the bad copies.

    A bad copy that has a key (negative total, bad timestamp, unknown customer) gets
    copies of its source's lines under its own key: the loader will quarantine those
    lines as belonging to an unknown order. Copies with an empty key get no lines.

    Returns
    -------
    orders, items, knock_on
        ``knock_on`` counts the lines belonging to bad copies.
    """
    n = len(orders["ordered_at"])
    customer = orders["customer"].astype(np.int64)
    clean = {
        "code": np.arange(1, n + 1, dtype=np.int64),
        "customer": np.where(customer >= 0, customer + 1, -1),
        "is_guest": customer < 0,
        "ordered_at": orders["ordered_at"],
        "status": orders["status"],
        "subtotal": orders["subtotal"],
        "discount": orders["discount"],
        "total": orders["total"],
        "updated_at": orders["updated_at"],
    }

    def negative_total(rows: Columns, _: np.random.Generator) -> None:
        rows["total"] = -rows["total"]

    def unknown(rows: Columns, generator: np.random.Generator) -> None:
        unknown_customer("customer", n_customers)(rows, generator)
        rows["is_guest"] = np.zeros(len(rows["is_guest"]), dtype=bool)

    injection = inject(rng, clean, "code", share, [
        Defect("duplicate"),
        Defect("missing_key", spoil=set_column("code", -1)),
        Defect("negative_total", new_key=True, spoil=negative_total,
               eligible=orders["total"] > 0),
        Defect("bad_timestamp", new_key=True, spoil=bad_time("ordered_at")),
        Defect("unknown_customer", new_key=True, spoil=unknown),
    ], next_key=n + 1)
    line_table, knock_on = _item_rows(items, n, injection)
    return injection, line_table, knock_on


def _item_rows(items: Columns, n_orders: int, injection: Injection) -> tuple[Columns, int]:
    lines = np.bincount(items["order"], minlength=n_orders)
    first = np.cumsum(lines) - lines
    clean = {
        "order_code": items["order"] + 1,
        "line_number": items["line_number"],
        "product": items["product"],
        "quantity": items["quantity"],
        "unit_price": items["unit_price"],
        "discount": items["discount"],
    }
    sources = [injection.sources[k] for k in injection.new_keys]
    keys = [injection.new_keys[k] for k in injection.new_keys]
    if not sources:
        return clean, 0
    source, key = np.concatenate(sources), np.concatenate(keys)
    count = lines[source]
    rows = np.repeat(first[source], count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    extra = {name: values[rows] for name, values in clean.items()}
    extra["order_code"] = np.repeat(key, count)
    table, _ = interleave(clean, extra, np.repeat(first[source] + count - 1, count))
    return table, int(count.sum())


def event_rows(rng: np.random.Generator, events: Columns, n_customers: int,
               share: float) -> Injection:
    """Events with dirty rows, in time order (a dirty row follows its source)."""
    n = len(events["occurred_at"])
    clean = {  # 32-bit codes: the event table is the largest by far
        "code": np.arange(1, n + 1, dtype=np.int32),
        "customer": events["customer"].astype(np.int32) + 1,
        "session": events["session"],
        "event_type": events["event_type"],
        "occurred_at": events["occurred_at"],
        "product": events["product"],
        "order": np.where(events["order"] >= 0, events["order"] + 1, -1).astype(np.int32),
    }
    return inject(rng, clean, "code", share, [
        Defect("duplicate"),
        Defect("missing_event_id", spoil=set_column("code", -1)),
        Defect("missing_customer_id", new_key=True, spoil=set_column("customer", -1)),
        Defect("bad_timestamp", new_key=True, spoil=bad_time("occurred_at")),
        Defect("unknown_customer", new_key=True, spoil=unknown_customer("customer", n_customers)),
    ], next_key=n + 1)


def send_rows(rng: np.random.Generator, sends: Columns, share: float) -> Injection:
    """Campaign sends with duplicated deliveries."""
    n = len(sends["sent_at"])
    clean = {"code": np.arange(1, n + 1, dtype=np.int64),
             **{name: values for name, values in sends.items() if name != "customer"},
             "customer": sends["customer"].astype(np.int64) + 1}
    return inject(rng, clean, "code", share, [Defect("duplicate")], next_key=n + 1)


def consent_rows(consent: dict[str, ChannelConsent]) -> Columns:
    """Every consent change of both channels, in time order."""
    parts = []
    for code, channel in enumerate(CHANNELS):
        history = consent[channel].history()
        history["channel"] = np.full(len(history["customer"]), code, dtype=np.int8)
        parts.append(history)
    rows = stack(parts)
    order = np.lexsort((rows["customer"], rows["channel"], rows["occurred_at"]))
    rows = {name: values[order] for name, values in rows.items()}
    rows["customer"] = rows["customer"].astype(np.int64) + 1
    rows["code"] = np.arange(1, len(order) + 1, dtype=np.int64)
    return rows
