"""Generating the whole demo store: the steps in order, the files, the manifest.

Each step draws from its own random stream (spawned from the seed), so the same seed and
size give byte-identical files, and changing one step does not reshuffle the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from etl.generate import activity_files, profile_files, tables, truth
from etl.generate.campaign_plan import plan_campaigns
from etl.generate.catalogue import build_catalogue
from etl.generate.clock import SeasonalClock
from etl.generate.consent import CHANNELS, draw_consent
from etl.generate.dirt import DIRTY_RULE
from etl.generate.events import build_events
from etl.generate.orders import assemble_orders
from etl.generate.population import draw_population
from etl.generate.seasons import AS_OF_S, START_S, format_seconds
from etl.generate.sends import send_campaigns
from etl.generate.shopping import simulate_shopping
from studio.errors import UserError

Progress = Callable[[str, float], None]
MIN_CUSTOMERS = 100
MAX_DIRTY_SHARE = 0.2
STREAMS = ("catalogue", "campaigns", "population", "consent", "shopping", "sends", "orders",
           "events", "customer_rows", "order_rows", "event_rows", "send_rows")


def check_arguments(customers: int, seed: int, dirty_share: float) -> None:
    """Refuse sizes and shares the generator cannot honour, in one sentence each."""
    if isinstance(customers, bool) or not isinstance(customers, int | np.integer):
        raise UserError(f"customers must be a whole number, not {customers!r}; "
                        f"ask for {MIN_CUSTOMERS} or more.")
    if customers < MIN_CUSTOMERS:
        raise UserError(f"customers must be at least {MIN_CUSTOMERS} (got {customers}); "
                        f"ask for {MIN_CUSTOMERS} or more.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed must be a whole number of 0 or more, not {seed!r}.")
    if (isinstance(dirty_share, bool) or not isinstance(dirty_share, int | float | np.number)
            or not 0 <= dirty_share <= MAX_DIRTY_SHARE):
        raise UserError(f"dirty_share must be between 0 and {MAX_DIRTY_SHARE} (got "
                        f"{dirty_share}); use 0.01 for 1% dirty rows, or 0 for none.")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(child))
            for name, child in zip(STREAMS, children, strict=True)}


def _part_counts(positions: np.ndarray, parts: dict[str, int],
                 kinds: dict[str, int]) -> dict[str, dict[str, int]]:
    """Dirty rows per event part and kind, from where the dirty rows landed."""
    kind_of = np.concatenate([np.full(n, i) for i, n in enumerate(kinds.values())] or [[]])
    edges = np.cumsum(list(parts.values()))
    part_of = np.searchsorted(edges, positions, side="right")
    result = {}
    for p, name in enumerate(parts):
        in_part = kind_of[part_of == p]
        result[name] = {kind: int((in_part == i).sum()) for i, kind in enumerate(kinds)}
    return result


def generate_store(out_dir: Path, customers: int = 5000, seed: int = 0,
                   dirty_share: float = 0.01, progress: Progress | None = None) -> dict:
    """Write a complete, deterministic demo store into ``out_dir`` and return its manifest.

    Parameters
    ----------
    out_dir
        Folder for the files (created if missing; earlier generator files are replaced).
    customers
        Number of customers (at least 100). Orders, events and sends scale with it:
        about 3 orders, 20 events and 8 campaign messages per customer.
    seed
        The same seed and size always give byte-identical files.
    dirty_share
        Share of dirty rows added to each file that gets them (0 to 0.2); see
        :mod:`etl.generate.dirt` for the rule and ``manifest["dirty"]`` for the counts.
    progress
        Called as ``progress(label, fraction_done)`` while the work proceeds.

    Returns
    -------
    dict
        The manifest, also written to ``out_dir/manifest.json``.

    Raises
    ------
    UserError
        When ``customers`` or ``dirty_share`` is out of range.
    """
    check_arguments(customers, seed, dirty_share)
    report = progress or (lambda label, fraction: None)
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    rng = _streams(int(seed))
    clock = SeasonalClock()

    report("drawing customers", 0.0)
    catalogue = build_catalogue(rng["catalogue"])
    campaigns = plan_campaigns(rng["campaigns"])
    population = draw_population(rng["population"], int(customers), clock)
    consent = {channel: draw_consent(rng["consent"], population, channel)
               for channel in CHANNELS}
    report("simulating shopping", 0.08)
    sessions, purchases = simulate_shopping(rng["shopping"], population, clock)
    report("sending campaigns", 0.2)
    sends, induced = send_campaigns(rng["sends"], campaigns, population, consent)
    report("pricing orders", 0.3)
    floor = population.alive_span()[0]
    orders, items = assemble_orders(rng["orders"], purchases, induced, sessions, campaigns,
                                    catalogue, clock, floor)
    first_line = np.flatnonzero(items["line_number"] == 1)
    report("building events", 0.4)
    events = build_events(rng["events"], sessions, items["product"][first_line], catalogue)
    del sessions

    rows: dict[str, int] = {}
    dirty: dict[str, dict[str, int]] = {}
    report("writing customers", 0.5)
    originals, updates = tables.customer_rows(rng["customer_rows"], population, dirty_share)
    rows["customers.csv"] = profile_files.write_customers(
        out / "customers.csv", originals.table, updates, population)
    dirty["customers.csv"] = originals.counts
    rows["products.csv"] = profile_files.write_products(out / "products.csv", catalogue)
    rows["campaigns.csv"] = profile_files.write_campaigns(out / "campaigns.csv", campaigns)
    rows["consent_events.ndjson"] = profile_files.write_consent(
        out / "consent_events.ndjson", tables.consent_rows(consent))

    report("writing orders", 0.55)
    order_table, item_table, knock_on = tables.order_rows(
        rng["order_rows"], orders, items, population.size, dirty_share)
    rows["orders.csv"] = activity_files.write_orders(out / "orders.csv", order_table.table)
    rows["order_items.parquet"] = activity_files.write_order_items(
        out / "order_items.parquet", item_table, catalogue)
    dirty["orders.csv"] = order_table.counts
    del order_table, item_table

    report("writing events", 0.62)
    event_table = tables.event_rows(rng["event_rows"], events, population.size, dirty_share)
    n_clean_events = len(events["occurred_at"])
    del events
    parts = activity_files.write_events(
        out / "events", event_table.table, catalogue,
        on_part=lambda done: report("writing events", 0.62 + 0.23 * done))
    rows.update(parts)
    dirty.update(_part_counts(event_table.dirty_positions, parts, event_table.counts))
    del event_table

    report("writing campaign sends", 0.85)
    send_table = tables.send_rows(rng["send_rows"], sends, dirty_share)
    rows["campaign_sends.parquet"] = activity_files.write_sends(
        out / "campaign_sends.parquet", send_table.table, campaigns)
    dirty["campaign_sends.parquet"] = send_table.counts
    del send_table

    report("writing truth", 0.95)
    truth.write_customer_truth(out / "truth" / "customers.parquet", population)
    truth.write_campaign_truth(out / "truth" / "campaigns.json",
                               truth.campaign_truth(campaigns, sends, orders, catalogue,
                                                    population))
    for name in ("products.csv", "campaigns.csv", "consent_events.ndjson",
                 "order_items.parquet"):
        dirty[name] = {}

    manifest = {
        "generator": "etl.generate",
        "seed": int(seed),
        "customers": int(customers),
        "dirty_share": float(dirty_share),
        "window_start": format_seconds(START_S),
        "as_of": format_seconds(AS_OF_S),
        "rows": rows,
        "dirty": {name: dirty[name] for name in rows},
        "knock_on": {"order_items.parquet": {"unknown_order": knock_on}},
        "customer_updates": len(updates["code"]),
        "clean": {
            "customers": population.size,
            "orders": len(orders["ordered_at"]),
            "guest_orders": int((orders["customer"] < 0).sum()),
            "campaign_induced_orders": len(induced["customer"]),
            "order_items": len(items["order"]),
            "events": n_clean_events,
            "campaign_sends": len(sends["sent_at"]),
        },
        "dirty_rule": DIRTY_RULE,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    report("done", 1.0)
    return manifest
