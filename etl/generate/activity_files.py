"""Writing the activity files: orders, order lines, events and campaign sends.

Parquet columns keep their numeric types (``line_number`` and ``quantity`` as int32,
money as float64) but timestamps are text, like the CSVs, so a dirty value can sit in
them. Events are split into parts of at most :data:`EVENT_PART_ROWS` rows; large files
are rendered a slice at a time so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from etl.generate.campaign_plan import Campaign
from etl.generate.catalogue import CATEGORY_NAMES, Catalogue
from etl.generate.columns import Columns
from etl.generate.events import ADD_TO_CART, EVENT_TYPES, PRODUCT_VIEW
from etl.generate.orders import STATUSES
from etl.generate.profile_files import product_ids, write_csv
from etl.generate.text import euros, id_text, lookup, price_text, time_text

EVENT_PART_ROWS = 5_000_000
SLICE_ROWS = 2_000_000
VARIANT_NAMES = ("A", "B", "C")


def write_parquet(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` as zstd-compressed Parquet with column statistics.

    Polars hands its strings to pyarrow without copying; no Arrow schema is stored, so
    every reader sees plain Parquet strings and integers.
    """
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    pq.write_table(table, path, compression="zstd", store_schema=False)
    return frame.height


def write_orders(path: Path, rows: Columns) -> int:
    """``orders.csv``; every order is a sale in euros."""
    n = len(rows["code"])
    frame = pl.DataFrame([
        id_text(rows["code"], "O", 8, "order_id"),
        id_text(rows["customer"], "C", 7, "customer_id"),
        pl.Series("is_guest", rows["is_guest"]),
        time_text(rows["ordered_at"], "ordered_at"),
        pl.repeat("sale", n, dtype=pl.String, eager=True).alias("kind"),
        lookup(STATUSES, rows["status"], "status"),
        pl.repeat("EUR", n, dtype=pl.String, eager=True).alias("currency"),
        pl.Series("subtotal", euros(rows["subtotal"])),
        pl.Series("discount", euros(rows["discount"])),
        pl.Series("total", euros(rows["total"])),
        time_text(rows["updated_at"], "updated_at"),
    ])
    return write_csv(frame, path)


def write_order_items(path: Path, rows: Columns, catalogue: Catalogue) -> int:
    """``order_items.parquet``: lines with list prices and their share of the discount."""
    frame = pl.DataFrame([
        id_text(rows["order_code"], "O", 8, "order_id"),
        pl.Series("line_number", rows["line_number"].astype(np.int32)),
        lookup(product_ids(catalogue), rows["product"], "product_id"),
        pl.Series("quantity", rows["quantity"].astype(np.int32)),
        pl.Series("unit_price", euros(rows["unit_price"])),
        pl.Series("discount", euros(rows["discount"])),
    ])
    return write_parquet(frame, path)


def _event_frame(rows: Columns, catalogue: Catalogue) -> pl.DataFrame:
    product_json = [
        f'{{"category":"{CATEGORY_NAMES[category]}","price":{price_text(int(cents))}}}'
        for category, cents in zip(catalogue.category, catalogue.price_cents, strict=True)
    ]
    about_product = np.isin(rows["event_type"], (PRODUCT_VIEW, ADD_TO_CART))
    properties = lookup(product_json, np.where(about_product, rows["product"], -1),
                        "properties")
    is_order = np.flatnonzero(rows["order"] >= 0)
    order_json = pl.DataFrame([id_text(rows["order"][is_order], "O", 8, "order_id")]).select(
        pl.concat_str([pl.lit('{"order_id":"'), pl.col("order_id"), pl.lit('"}')])
    ).to_series()
    properties = properties.scatter(is_order, order_json)
    return pl.DataFrame([
        id_text(rows["code"], "E", 9, "event_id"),
        id_text(rows["customer"], "C", 7, "customer_id"),
        id_text(rows["session"], "S", 9, "session_id"),
        lookup(EVENT_TYPES, rows["event_type"], "event_type"),
        time_text(rows["occurred_at"], "occurred_at"),
        lookup(product_ids(catalogue), rows["product"], "product_id"),
        properties,
    ])


def write_events(folder: Path, rows: Columns, catalogue: Catalogue,
                 on_part: Callable[[float], None] | None = None) -> dict[str, int]:
    """``events/part-00000.parquet``, ... ; returns rows per part (relative path).

    ``on_part`` is told the share of rows written after each part.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("part-*.parquet"):
        stale.unlink()
    n = len(rows["code"])
    written = {}
    for part, start in enumerate(range(0, max(n, 1), EVENT_PART_ROWS)):
        piece = {name: values[start:start + EVENT_PART_ROWS] for name, values in rows.items()}
        name = f"part-{part:05d}.parquet"
        written[f"{folder.name}/{name}"] = write_parquet(_event_frame(piece, catalogue),
                                                         folder / name)
        if on_part is not None:
            on_part(min(start + EVENT_PART_ROWS, n) / max(n, 1))
    return written


def _send_frame(rows: Columns, campaigns: list[Campaign]) -> pl.DataFrame:
    return pl.DataFrame([
        id_text(rows["code"], "M", 9, "send_id"),
        lookup([c.campaign_id for c in campaigns], rows["campaign"], "campaign_id"),
        id_text(rows["customer"], "C", 7, "customer_id"),
        lookup(VARIANT_NAMES, rows["variant"], "variant"),
        time_text(rows["sent_at"], "sent_at"),
        time_text(rows["opened_at"], "opened_at"),
        time_text(rows["clicked_at"], "clicked_at"),
        time_text(rows["unsubscribed_at"], "unsubscribed_at"),
    ])


def write_sends(path: Path, rows: Columns, campaigns: list[Campaign]) -> int:
    """``campaign_sends.parquet``, rendered and written a slice at a time."""
    n = len(rows["code"])
    writer = None
    try:
        for start in range(0, max(n, 1), SLICE_ROWS):
            piece = {name: values[start:start + SLICE_ROWS] for name, values in rows.items()}
            table = _send_frame(piece, campaigns).to_arrow(
                compat_level=pl.CompatLevel.newest())
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd",
                                          store_schema=False)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return n
