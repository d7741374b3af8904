"""A signed webhook as a destination: JSON batches of changes POSTed to a URL.

Each batch is one JSON body ``{"segment", "channel", "sent_at", "items": [{"action",
"customer_id", "payload"}]}``, signed with HMAC-SHA256 of the raw body under
``STUDIO_WEBHOOK_SECRET`` in the header ``X-Studio-Signature: sha256=<hex>`` so the
receiver can check it came from the studio and was not altered. A 2xx answer confirms
the whole batch. The receiver gets removals too, so it can mirror the audience; it should
apply items as upserts and deletes by ``customer_id``, since a batch whose answer was lost
is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from studio.audiences.destinations import ItemResult
from studio.audiences.diff import Change
from studio.audiences.omnisend import web_base
from studio.audiences.rest_client import (
    DEFAULT_TIMEOUT,
    RestClient,
    RetryPolicy,
    SendError,
    require_secret,
)

SECRET_NAME = "STUDIO_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Studio-Signature"


def sign_body(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _shown_url(url: str) -> str:
    """``url`` without credentials or query (either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


@dataclass
class WebhookDestination:
    """Signed JSON batches POSTed to ``url`` (``webhook:URL``); a mirror of the audience."""

    url: str
    segment: str | None = None
    channel: str | None = None
    secret: str | None = None
    rate_per_minute: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = RetryPolicy()
    kind: str = "webhook"
    mirror: bool = True
    snapshot: bool = False

    def __post_init__(self):
        self.url = web_base(self.url, self.kind)
        self._client: RestClient | None = None

    @property
    def description(self) -> str:
        """The URL, with any credentials or query string hidden."""
        return f"{self.kind}:{_shown_url(self.url)}"

    def for_audience(self, segment: str, channel: str) -> WebhookDestination:
        """A copy naming ``segment`` and ``channel`` in each body."""
        return replace(self, segment=segment, channel=channel)

    def _secret(self) -> str:
        return self.secret or require_secret(SECRET_NAME, "Exporting to a webhook")

    def client(self) -> RestClient:
        """The HTTP client for the URL."""
        if self._client is None:
            secret = self._secret()
            self._client = RestClient(self.url, secrets=(secret,),
                                      label=self.description, timeout=self.timeout,
                                      rate_per_minute=self.rate_per_minute, retry=self.retry)
        return self._client

    def write_snapshot(self, rows: pl.DataFrame) -> None:
        """Webhooks take batches; see :meth:`deliver`."""
        raise TypeError("a webhook takes batches, not snapshots")

    def deliver(self, batch: list[Change]) -> list[ItemResult]:
        """POST ``batch`` as one signed body; every item is confirmed by a 2xx answer."""
        body = json.dumps({
            "segment": self.segment, "channel": self.channel,
            "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "items": [{"action": c.action, "customer_id": c.customer_id, "payload": c.payload}
                      for c in batch],
        }, separators=(",", ":"), default=str).encode("utf-8")
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: sign_body(body, self._secret())}
        client = self.client()
        try:
            response = client.request("POST", "", body, headers)
        except SendError as error:
            return [ItemResult(c.customer_id, False, str(error)) for c in batch]
        if 200 <= response.status < 300:
            return [ItemResult(c.customer_id, True) for c in batch]
        text = response.body[:200].decode("utf-8", "replace")
        reason = client.redact(f"HTTP {response.status} {text}".strip())[:500]
        return [ItemResult(c.customer_id, False, reason) for c in batch]
