"""The Omnisend-style send engine as a destination: contacts upserted with the audience's tag.

Each batch of changes becomes one ``POST /v3/batches`` of at most 1,000 contact upserts
and at most 1 MB of JSON (a batch that would be larger is split). The engine may answer
with the batch already ``finished`` (or ``stopped``), counts and errors included; only an
unfinished batch is polled with ``GET /v3/batches/{batchID}``, because every request
counts against the engine's 400 a minute. A contact is confirmed only when the finished
batch reports no error for it; per-item errors become failed items, which the outbox
retries and, after its bounded attempts, lists as dead. The engine has no idempotency
keys, so a retried batch upserts the same contacts by identifier again, which changes
nothing.

The engine is not a mirror: removing the audience's tag from those who left is not part
of a tag-upsert API, so members who leave the audience are not removed (see
``docs/audiences.md``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import polars as pl

from studio.audiences.destinations import ItemResult
from studio.audiences.diff import Change
from studio.audiences.rest_client import (
    DEFAULT_RATE_PER_MINUTE,
    DEFAULT_TIMEOUT,
    RestClient,
    RetryPolicy,
    SendError,
    require_secret,
)
from studio.errors import UserError

API_KEY_NAME = "STUDIO_OMNISEND_API_KEY"
MAX_BATCH_ITEMS = 1000
MAX_BODY_BYTES = 1_000_000
"""The engine's limits on one batch: items, and bytes of JSON (its docs say "under 1 MB")."""
_BODY_START = b'{"method":"POST","endpoint":"contacts","items":['
_BODY_END = b"]}"
FINAL_STATUSES = frozenset({"finished", "stopped"})
ADDRESS_OF = {"email": ("email", "email"), "sms": ("phone", "phone")}
"""channel -> (identifier type, payload field holding the address)."""


def web_base(text: str, kind: str) -> str:
    """``text`` checked to be an http(s) URL, without a trailing slash.

    Raises
    ------
    UserError
        When it is not one.
    """
    parts = urlsplit(text.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise UserError(f"{text!r} is not an http(s) URL; write it like "
                        f"{kind}:https://example.com.")
    return text.strip().rstrip("/")


def contact_of(change: Change, tag: str, channel: str, status_date: str) -> dict:
    """The engine's contact for one member: identifier subscribed on ``channel``, tag, props."""
    payload = change.payload
    kind, field_name = ADDRESS_OF[channel]
    contact = {
        "identifiers": [{"type": kind, "id": payload[field_name],
                         "channels": {channel: {"status": "subscribed",
                                                "statusDate": status_date}}}],
        "tags": [tag],
        "customProperties": {"studio_customer_id": change.customer_id},
    }
    if payload.get("country"):
        contact["countryCode"] = payload["country"]
    for name in ("score", "model_version"):
        if name in payload:
            contact["customProperties"][f"studio_{name}"] = payload[name]
    return contact


def encode_contact(contact: dict) -> bytes:
    """One contact as compact JSON, as it goes into a batch's body."""
    return json.dumps(contact, separators=(",", ":")).encode("utf-8")


def pack_batches(encoded: list[bytes], max_items: int = MAX_BATCH_ITEMS,
                 max_bytes: int = MAX_BODY_BYTES) -> list[range]:
    """Split encoded contacts, in order, into runs that make bodies within both limits.

    Returns index ranges into ``encoded``. A contact too large for any body gets a range
    of its own (the caller fails it rather than sending it).
    """
    room = max_bytes - len(_BODY_START) - len(_BODY_END)
    runs, start, size = [], 0, 0
    for index, item in enumerate(encoded):
        extra = len(item) + (1 if index > start else 0)  # the comma before it
        if index > start and (index - start == max_items or size + extra > room):
            runs.append(range(start, index))
            start, size, extra = index, 0, len(item)
        size += extra
    if start < len(encoded):
        runs.append(range(start, len(encoded)))
    return runs


def batch_body(encoded: list[bytes]) -> bytes:
    """The ``POST /v3/batches`` body upserting the encoded contacts."""
    return _BODY_START + b",".join(encoded) + _BODY_END


@dataclass
class OmnisendDestination:
    """Contacts upserted in batches to an Omnisend-style API (``omnisend:BASE_URL``).

    ``segment`` and ``channel`` say which tag (``studio:<segment>``) and which channel's
    subscription the contacts carry; :meth:`for_audience` sets them for a run. The
    pacing, timeout, retry and polling knobs exist so tests can run fast.
    """

    base_url: str
    segment: str | None = None
    channel: str = "email"
    api_key: str | None = None
    rate_per_minute: float | None = DEFAULT_RATE_PER_MINUTE
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = RetryPolicy()
    poll_interval: float = 1.0
    poll_limit: float = 300.0
    batch_size: int = MAX_BATCH_ITEMS
    kind: str = "omnisend"
    mirror: bool = False
    snapshot: bool = False

    def __post_init__(self):
        self.base_url = web_base(self.base_url, self.kind).removesuffix("/v3")
        self._client: RestClient | None = None

    @property
    def description(self) -> str:
        """The API's base URL (the key is never part of it)."""
        return f"{self.kind}:{self.base_url}"

    @property
    def tag(self) -> str:
        """The audience's tag on the engine's contacts."""
        return f"studio:{self.segment}"

    def for_audience(self, segment: str, channel: str) -> OmnisendDestination:
        """A copy tagging with ``segment`` and subscribing on ``channel``."""
        return replace(self, segment=segment, channel=channel)

    def client(self) -> RestClient:
        """The HTTP client, with the key from the environment or Streamlit secrets."""
        if self._client is None:
            key = self.api_key or require_secret(API_KEY_NAME, "Exporting to Omnisend")
            self._client = RestClient(self.base_url, {"X-API-KEY": key,
                                                      "Accept": "application/json"},
                                      secrets=(key,), timeout=self.timeout,
                                      rate_per_minute=self.rate_per_minute, retry=self.retry)
        return self._client

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """The engine takes batches; see :meth:`deliver`."""
        raise TypeError("a send engine takes batches, not snapshots")

    def deliver(self, batch: list[Change]) -> list[ItemResult]:
        """Upsert ``batch`` in batches of at most 1,000 items and 1 MB; one result per item.

        Raises
        ------
        UserError
            When the key is missing or the engine refuses it (401/403): retrying cannot
            help, so the run stops with its items still pending.
        TypeError
            When :meth:`for_audience` was not called: without a segment there is no tag.
        """
        self.client()
        if self.segment is None:
            raise TypeError("an omnisend destination needs for_audience(segment, channel) "
                            "before it can deliver")
        field_name = ADDRESS_OF[self.channel][1]
        sendable = [c for c in batch if c.action != "remove" and c.payload.get(field_name)]
        chosen = {c.customer_id for c in sendable}
        results = [ItemResult(c.customer_id, False, f"no {field_name} to send to")
                   for c in batch if c.customer_id not in chosen]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        encoded = [encode_contact(contact_of(c, self.tag, self.channel, stamp))
                   for c in sendable]
        for run in pack_batches(encoded):
            chunk = sendable[run.start:run.stop]
            body = batch_body(encoded[run.start:run.stop])
            if len(body) > MAX_BODY_BYTES:  # a single contact over the limit: never sendable
                results += [ItemResult(c.customer_id, False, "contact larger than the "
                                       "engine's 1 MB limit") for c in chunk]
            else:
                results += self._deliver_chunk(chunk, body)
        return results

    def _deliver_chunk(self, sendable: list[Change], body: bytes) -> list[ItemResult]:
        """POST one batch; use its answer if finished, else poll it until it is."""
        try:
            created = self._checked(self.client().request(
                "POST", "/v3/batches", body, {"Content-Type": "application/json"}))
            outcome = (created if created.get("status") in FINAL_STATUSES
                       else self._await_batch(str(created["batchID"])))
        except SendError as error:
            return [ItemResult(c.customer_id, False, str(error)) for c in sendable]
        return self._item_results(sendable, outcome)

    def _checked(self, response) -> dict:
        client = self.client()
        if response.status in {401, 403}:
            raise UserError(f"The send engine refused the API key (HTTP {response.status}); "
                            f"check {API_KEY_NAME}.")
        if not 200 <= response.status < 300:
            text = response.body[:200].decode("utf-8", "replace")
            raise SendError(client.redact(f"HTTP {response.status} {text}"), response.status)
        try:
            return response.json() or {}
        except ValueError:
            raise SendError(f"HTTP {response.status} with a body that is not JSON") from None

    def _await_batch(self, batch_id: str) -> dict:
        """Poll the batch until it is finished or stopped."""
        deadline = time.monotonic() + self.poll_limit
        while True:
            outcome = self._checked(self.client().request("GET", f"/v3/batches/{batch_id}"))
            if outcome.get("status") in FINAL_STATUSES:
                return outcome
            if time.monotonic() > deadline:
                raise SendError(f"batch {batch_id} not finished after {self.poll_limit:g} s")
            time.sleep(self.poll_interval)

    def _item_results(self, sendable: list[Change], outcome: dict) -> list[ItemResult]:
        """Confirmed items: those of a finished batch that reported no error for them."""
        client = self.client()
        errors = {}
        for error in outcome.get("errors") or []:
            if isinstance(error, dict) and isinstance(error.get("index"), int):
                errors[error["index"]] = client.redact(str(error.get("message") or error))[:500]
        finished = (outcome.get("status") == "finished"
                    and outcome.get("finishedCount", len(sendable)) == len(sendable))
        results = []
        for index, change in enumerate(sendable):
            if index in errors:
                results.append(ItemResult(change.customer_id, False, f"rejected: {errors[index]}"))
            elif not finished:
                results.append(ItemResult(change.customer_id, False,
                                          f"batch {outcome.get('batchID', '?')} ended "
                                          f"{outcome.get('status')} before confirming it"))
            else:
                results.append(ItemResult(change.customer_id, True))
        return results
