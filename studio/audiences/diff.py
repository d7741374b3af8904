"""What changed since the last confirmed delivery: adds, updates, removes, unchanged.

Each member's payload is hashed (SHA-256 of its canonical JSON); the destination's state
holds the hash of what it last confirmed for each member. A member is *added* when the
destination holds nothing for them, *updated* when the hash differs, *unchanged* when it
is equal (and not resent), and *removed* when the destination holds someone the audience
no longer has (sent only to mirror destinations, which must match the audience).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import polars as pl

ACTIONS = ("add", "update", "remove")


def payload_of(row: dict) -> dict:
    """A member's payload: the audience row with empty values left out, floats rounded."""
    payload = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        payload[key] = round(value, 6) if isinstance(value, float) else value
    return payload


def hash_payload(payload: dict) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    """One member's delivery: what to do and what to send."""

    customer_id: str
    action: str
    payload: dict
    payload_hash: str


@dataclass
class AudienceDiff:
    """The changes to send, and how many members need nothing."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, action: str) -> int:
        """How many changes have ``action``."""
        return sum(1 for change in self.changes if change.action == action)


def diff_audience(rows: pl.DataFrame, delivered: dict[str, str], *,
                  mirror: bool) -> AudienceDiff:
    """Compare the audience ``rows`` with ``delivered`` (customer id -> payload hash).

    Removals are listed only for ``mirror`` destinations; their payload is the id alone.
    """
    result = AudienceDiff()
    present = set()
    for row in rows.iter_rows(named=True):
        payload = payload_of(row)
        digest = hash_payload(payload)
        customer_id = row["customer_id"]
        present.add(customer_id)
        previous = delivered.get(customer_id)
        if previous == digest:
            result.unchanged += 1
        else:
            action = "add" if previous is None else "update"
            result.changes.append(Change(customer_id, action, payload, digest))
    if mirror:
        for customer_id in sorted(set(delivered) - present):
            payload = {"customer_id": customer_id}
            result.changes.append(Change(customer_id, "remove", payload, hash_payload(payload)))
    return result
