"""What changed since the last confirmed delivery: adds, updates, removes, unchanged.

Each member's payload is hashed (SHA-256 of its canonical JSON); the destination's state
holds the hash of what it last confirmed for each member. A member is *added* when the
destination holds nothing for them, *updated* when the hash differs, *unchanged* when it
is equal (and not resent), and *removed* when the destination holds someone the audience
no longer has (sent only to mirror destinations, which must match the audience).

An audience can hold a million members, so payloads and hashes are built column-wise in
DuckDB (:func:`payload_frame`) and compared with a join; :func:`payload_of` and
:func:`hash_payload` remain the definition, and rows whose text JSON would escape are
encoded by them. Files, written whole, are compared by a cheaper row hash
(:func:`row_hashes`, :func:`compare_snapshots`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property

import duckdb
import polars as pl

ACTIONS = ("add", "update", "remove")
CHANGE_SCHEMA = {"customer_id": pl.String, "action": pl.String, "payload": pl.String,
                 "payload_hash": pl.String}
_PLAIN_TEXT = r"[ !#-\[\]-~]*"
"""Printable ASCII without quote and backslash: text that JSON writes as it is."""


def payload_of(row: dict) -> dict:
    """A member's payload: the audience row with empty values left out, floats rounded."""
    payload = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        payload[key] = round(value, 6) if isinstance(value, float) else value
    return payload


def canonical_json(payload: dict) -> str:
    """The payload's canonical JSON: sorted keys, no spaces, non-ASCII escaped."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def hash_payload(payload: dict) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _field_sql(name: str, dtype: pl.DataType) -> tuple[str, str]:
    """SQL for one payload field (``"name":value``, NULL when left out) and its plain test."""
    column = '"' + name.replace('"', '""') + '"'
    key = json.dumps(name).replace("'", "''")
    if dtype == pl.String:
        return (f"""CASE WHEN {column} <> '' THEN '{key}:"' || {column} || '"' END""",
                f"coalesce(regexp_full_match({column}, '{_PLAIN_TEXT}'), true)")
    if dtype.is_float():  # DOUBLE -> VARCHAR is the shortest round trip, as Python's repr
        return (f"CASE WHEN NOT isnan({column}) THEN '{key}:' || "
                f"CAST(round({column}, 6) AS VARCHAR) END",
                f"coalesce(isfinite({column}) OR isnan({column}), true)")
    if dtype.is_integer():
        return f"'{key}:' || CAST({column} AS VARCHAR)", "true"
    if dtype == pl.Boolean:
        return f"'{key}:' || CASE WHEN {column} THEN 'true' ELSE 'false' END", "true"
    return "NULL", "false"  # anything else is encoded by Python


def payload_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """Each row's payload as canonical JSON and its hash: ``customer_id, payload, payload_hash``.

    Equal, byte for byte, to ``canonical_json(payload_of(row))`` and its
    :func:`hash_payload`: DuckDB builds the JSON of rows whose text needs no escaping and
    Python the rest. Rows keep their order.
    """
    if rows.is_empty():
        return pl.DataFrame(schema={k: CHANGE_SCHEMA[k] for k in
                                    ("customer_id", "payload", "payload_hash")})
    fields = [_field_sql(name, rows.schema[name]) for name in sorted(rows.columns)]
    parts, plain = ", ".join(f for f, _ in fields), " AND ".join(p for _, p in fields)
    with duckdb.connect() as con:  # a projection keeps the rows' order
        con.register("audience_rows", rows.to_arrow())
        built = con.sql(f"""
            SELECT customer_id, plain, payload, sha256(payload) AS payload_hash
            FROM (SELECT customer_id, {plain} AS plain,
                         '{{' || concat_ws(',', {parts}) || '}}' AS payload
                  FROM audience_rows)""").pl()
    escaped = built["plain"].not_().arg_true().to_list()
    if not escaped:
        return built.drop("plain")
    payloads, hashes = built["payload"].to_list(), built["payload_hash"].to_list()
    for index in escaped:
        payloads[index] = canonical_json(payload_of(rows.row(index, named=True)))
        hashes[index] = hashlib.sha256(payloads[index].encode("utf-8")).hexdigest()
    return built.select("customer_id", pl.Series("payload", payloads, pl.String),
                        pl.Series("payload_hash", hashes, pl.String))


@dataclass(frozen=True)
class Change:
    """One member's delivery: what to do and what to send."""

    customer_id: str
    action: str
    payload: dict
    payload_hash: str


@dataclass
class AudienceDiff:
    """The changes to send, in sending order, and how many members need nothing.

    ``frame`` holds one row per change (``customer_id, action, payload, payload_hash``,
    the payload as canonical JSON; a file's diff has the first two only): the adds and
    updates in the audience's order, then the removes by customer id.
    """

    frame: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CHANGE_SCHEMA))
    unchanged: int = 0

    @cached_property
    def changes(self) -> list[Change]:
        """The changes as objects (payloads parsed), for a batch destination's diff."""
        return changes_of(self.frame)

    def count(self, action: str) -> int:
        """How many changes have ``action``."""
        return int((self.frame["action"] == action).sum())

    def ids(self, action: str) -> list[str]:
        """The customer ids of the changes with ``action``, in sending order."""
        return self.frame.filter(pl.col("action") == action)["customer_id"].to_list()


def changes_of(frame: pl.DataFrame) -> list[Change]:
    """The rows of a change frame (see :class:`AudienceDiff`) as objects, payloads parsed."""
    return [Change(customer_id, action, json.loads(payload), payload_hash)
            for customer_id, action, payload, payload_hash in frame.select(
                "customer_id", "action", "payload", "payload_hash").iter_rows()]


def _as_state(delivered: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": list(delivered), "previous": list(delivered.values())},
                        schema={"customer_id": pl.String, "previous": pl.String})


def _removals(customer_ids: list[str]) -> pl.DataFrame:
    """Remove changes: the payload is the customer id alone."""
    payloads = [canonical_json({"customer_id": i}) for i in customer_ids]
    return pl.DataFrame({
        "customer_id": customer_ids, "action": ["remove"] * len(customer_ids),
        "payload": payloads,
        "payload_hash": [hashlib.sha256(p.encode("utf-8")).hexdigest() for p in payloads],
    }, schema=CHANGE_SCHEMA)


def _added_or_updated(current: pl.DataFrame, previous: pl.DataFrame, hash_column: str,
                      *kept: str) -> pl.DataFrame:
    """``customer_id, action`` (and ``kept``) of the members new to ``previous`` or changed.

    ``previous`` holds ``customer_id, previous`` (the hash last delivered); a member whose
    ``hash_column`` differs from it is an update, one missing from it an add, in the
    order of ``current``.
    """
    joined = current.join(previous, on="customer_id", how="left", maintain_order="left")
    return (joined.filter(pl.col("previous").is_null()
                          | (pl.col("previous") != pl.col(hash_column)))
            .select("customer_id", pl.when(pl.col("previous").is_null()).then(pl.lit("add"))
                    .otherwise(pl.lit("update")).alias("action"), *kept))


def compare_payloads(current: pl.DataFrame, delivered: dict[str, str], *,
                     mirror: bool) -> AudienceDiff:
    """The diff of a :func:`payload_frame` against ``delivered`` (id -> payload hash)."""
    previous = _as_state(delivered)
    changed = _added_or_updated(current, previous, "payload_hash", "payload", "payload_hash")
    frames = [changed]
    if mirror:
        gone = previous.join(current, on="customer_id", how="anti").sort("customer_id")
        frames.append(_removals(gone["customer_id"].to_list()))
    return AudienceDiff(pl.concat(frames), unchanged=current.height - changed.height)


def row_hashes(rows: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, row_hash``: a 64-bit hash of each member's payload values.

    For files, which are written whole: their diff only counts, so a fast row hash
    (polars', on the values :func:`payload_of` keeps) serves where SHA-256 of JSON would
    cost more than writing the file. The hash is stable for a given polars version; a
    new version may count every member of the next file export as updated, once.
    """
    values = [(pl.col(name).replace("", None) if dtype == pl.String
               else pl.col(name).round(6).fill_nan(None) if dtype.is_float()
               else pl.col(name)) for name, dtype in sorted(rows.schema.items())]
    return pl.DataFrame({"customer_id": rows["customer_id"],
                         "row_hash": rows.select(values).hash_rows(seed=0)})


def compare_snapshots(current: pl.DataFrame, previous: pl.DataFrame) -> AudienceDiff:
    """The diff of two :func:`row_hashes` frames: what the new file adds, changes, drops.

    The frame holds ``customer_id`` and ``action`` only (no payloads: nothing is sent
    member by member). A first file adds everyone; when the members are the same, in the
    same order (a file synced again), the hashes are compared row by row, not joined.
    """
    if previous.is_empty():
        return AudienceDiff(current.select("customer_id", pl.lit("add").alias("action")))
    if previous.height == current.height and previous["customer_id"].equals(
            current["customer_id"]):
        changed = current.filter(pl.col("row_hash") != previous["row_hash"])
        return AudienceDiff(changed.select("customer_id", pl.lit("update").alias("action")),
                            unchanged=current.height - changed.height)
    changed = _added_or_updated(current, previous.rename({"row_hash": "previous"}), "row_hash")
    gone = (previous.join(current, on="customer_id", how="anti").sort("customer_id")
            .select("customer_id", pl.lit("remove").alias("action")))
    return AudienceDiff(pl.concat([changed, gone]), unchanged=current.height - changed.height)


def diff_audience(rows: pl.DataFrame, delivered: dict[str, str], *,
                  mirror: bool) -> AudienceDiff:
    """Compare the audience ``rows`` with ``delivered`` (customer id -> payload hash).

    Removals are listed only for ``mirror`` destinations; their payload is the id alone.
    """
    return compare_payloads(payload_frame(rows), delivered, mirror=mirror)
