"""A small HTTP client for send engines: paced, patient with failures, discreet with keys.

Send engines limit how fast a brand may call them (Omnisend: 400 requests a minute,
shared by all keys) and fail now and then. The client therefore paces its own requests
with a token bucket (a steady rate, so it never needs the server's 429 to slow down),
gives up on a request after a timeout (10 s, as recommended), and retries 429s, 5xx
answers, dropped connections and timeouts with exponential backoff and full jitter,
waiting at least ``Retry-After`` seconds when the server says so, a bounded number of
times. Retries repeat requests, so destinations only send upserts by identifier.

Keys and secrets come from the environment or Streamlit's ``secrets.toml``, travel only in
request headers, and are blanked out of every error message the client builds.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import UserError

DEFAULT_TIMEOUT = 10.0
DEFAULT_RATE_PER_MINUTE = 400.0
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_CONNECTION_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError,
                      socket.timeout)


class SendError(Exception):
    """A request that still failed after every attempt; the message never holds a secret."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def read_secret(name: str) -> str | None:
    """The secret ``name`` from the environment, else from Streamlit's ``secrets.toml``.

    Streamlit reads ``.streamlit/secrets.toml`` in the working directory and the home
    folder; the same files are read here without importing Streamlit.
    """
    if value := os.environ.get(name):
        return value
    for folder in (Path.cwd(), Path.home()):
        path = folder / ".streamlit" / "secrets.toml"
        try:
            secrets = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(secrets.get(name), str) and secrets[name]:
            return secrets[name]
    return None


def require_secret(name: str, purpose: str) -> str:
    """The secret ``name``, or a UserError saying where to put it.

    Raises
    ------
    UserError
        When neither the environment nor ``secrets.toml`` holds it.
    """
    value = read_secret(name)
    if not value:
        raise UserError(f"{purpose} needs {name}; set it in the environment or in "
                        ".streamlit/secrets.toml.")
    return value


class TokenBucket:
    """Allows ``rate_per_minute`` requests a minute, evenly spaced (``burst`` at most at once).

    ``clock`` and ``sleep`` are injectable so that tests can run the limiter on a fake clock.
    """

    def __init__(self, rate_per_minute: float, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = self.burst
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self) -> None:
        """Wait until a request may go, and take its token."""
        self._refill()
        while self.tokens < 1.0 - 1e-9:  # a tolerance: float refills can fall short by ulps
            self.sleep((1.0 - self.tokens) / self.rate)
            self._refill()
        self.tokens -= 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: full jitter over an exponential ceiling.

    The wait before retry ``n`` (0-based) is uniform in ``[0, min(max_delay,
    base_delay * 2**n))``, or the server's ``Retry-After`` when that is longer.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, retry: int, draw: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry``, given a uniform ``draw`` in [0, 1)."""
        jittered = draw * min(self.max_delay, self.base_delay * 2 ** retry)
        return max(jittered, retry_after) if retry_after is not None else jittered


@dataclass(frozen=True)
class Response:
    """A server's answer: status, headers and the body (parsed when JSON)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        """The body parsed as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare for APIs; back off on our own instead
        return None


@dataclass
class RestClient:
    """Requests to one service, paced by a token bucket and retried with backoff.

    Parameters
    ----------
    base_url
        Prefix of every request's URL.
    headers
        Sent with every request (the place for an API key).
    secrets
        Strings blanked out of every error message (the key, the signing secret).
    label
        How error messages name the service (default: the URL requested).
    rate_per_minute
        Client-side pace; ``None`` for no pacing (tests of the server's 429s).
    """

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    label: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    rate_per_minute: float | None = DEFAULT_RATE_PER_MINUTE
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    draw: Callable[[], float] = random.random

    def __post_init__(self):
        self.bucket = (TokenBucket(self.rate_per_minute, sleep=self.sleep)
                       if self.rate_per_minute else None)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _send_once(self, method: str, url: str, body: bytes | None,
                   headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={**self.headers, **headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()},
                                answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, {k.lower(): v for k, v in error.headers.items()},
                                error.read())

    def request(self, method: str, path: str = "", body: bytes | dict | list | None = None,
                headers: dict[str, str] | None = None) -> Response:
        """Send one request, retrying what may succeed later; return the final 2xx/4xx answer.

        A dict or list ``body`` is sent as JSON. A 4xx other than 429 is returned, not
        retried: repeating it would fail the same way.

        Raises
        ------
        SendError
            When every attempt met a 429, a 5xx, a dropped connection or a timeout.
        """
        extra = dict(headers or {})
        if isinstance(body, dict | list):
            body = json.dumps(body, separators=(",", ":")).encode("utf-8")
            extra.setdefault("Content-Type", "application/json")
        url = self.base_url + path
        problem = ""
        for attempt in range(self.retry.attempts):
            if self.bucket:
                self.bucket.acquire()
            retry_after = None
            try:
                response = self._send_once(method, url, body, extra)
            except _CONNECTION_ERRORS as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status not in RETRIED_STATUSES:
                    return response
                retry_after = _retry_after(response.headers)
                problem = f"HTTP {response.status} {response.body[:200].decode('utf-8', 'replace')}"
            if attempt + 1 < self.retry.attempts:
                self.sleep(self.retry.delay(attempt, self.draw(), retry_after))
        status = int(problem[5:8]) if problem.startswith("HTTP ") else None
        message = (f"{method} {self.label or url} failed {self.retry.attempts} times; "
                   f"last: {problem.strip()}")
        raise SendError(self.redact(message)[:500], status)
