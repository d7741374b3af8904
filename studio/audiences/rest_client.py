"""A small HTTP client for send engines: paced, patient with failures, discreet with keys.

Send engines limit how fast a brand may call them (Omnisend: 400 requests a minute,
shared by all keys) and fail now and then. The client therefore paces its own requests
with a token bucket a little under the server's rate: a steady rate, so it never needs
the server's 429 to slow down, with :data:`PACING_HEADROOM` to spare, so that a request
that arrives a few milliseconds late, followed by one on time, still finds the server's
bucket refilled. Requests go over one kept-alive connection (opened again after any
failure): no connection set-up or TLS handshake per request, and requests reach the
server when they were paced to (a new connection each time blurs that by milliseconds).

A request gives up after a timeout (10 s, as recommended); 429s, 5xx answers, dropped
connections and timeouts are retried with exponential backoff and full jitter, waiting
at least ``Retry-After`` seconds when the server says so, a bounded number of times
(except that a paced request's first 429 is retried at once: :data:`PACING_SLIP`).
Retries repeat requests, so destinations only send upserts by identifier.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from studio.errors import UserError

DEFAULT_TIMEOUT = 10.0
DEFAULT_RATE_PER_MINUTE = 400.0
PACING_HEADROOM = 0.02
"""The share of the server's rate the client leaves unused: 400 a minute is paced at 392."""
PACING_SLIP = 0.1
"""A paced request refused with a 429 (and no Retry-After) most likely arrived a few
milliseconds early: it is retried once after this share of the pacing interval (15 ms at
400 a minute), without a token of its own, and the next interval counts from the retry;
a second 429 backs off as any other failure does."""
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_CONNECTION_ERRORS = (http.client.HTTPException, OSError, TimeoutError,
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

    def restart(self) -> None:
        """Count the next interval from now: a request about to be retried takes the token."""
        self.tokens, self.updated = 0.0, self.clock()

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
        The server's limit; ``None`` for no pacing (tests of the server's 429s).
    headroom
        The client paces at ``rate_per_minute * (1 - headroom)``.
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
    headroom: float = PACING_HEADROOM

    def __post_init__(self):
        self.bucket = (TokenBucket(self.rate_per_minute * (1 - self.headroom), sleep=self.sleep)
                       if self.rate_per_minute else None)
        self._open: http.client.HTTPConnection | None = None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _connection(self, parts: SplitResult) -> http.client.HTTPConnection:
        """The open connection to the service, or a new one."""
        if self._open is None:
            kind = (http.client.HTTPSConnection if parts.scheme == "https"
                    else http.client.HTTPConnection)
            self._open = kind(parts.hostname, parts.port, timeout=self.timeout)
        return self._open

    def close(self) -> None:
        """Close the kept-alive connection (a later request opens a new one)."""
        if self._open is not None:
            self._open.close()
            self._open = None

    def _send_once(self, method: str, url: str, body: bytes | None,
                   headers: dict[str, str]) -> Response:
        """One request over the kept-alive connection; any failure closes it."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(parts)
        try:
            connection.request(method, target, body=body, headers={**self.headers, **headers})
            answer = connection.getresponse()
            data = answer.read()
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)

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
        problem, slipped = "", False
        for attempt in range(self.retry.attempts):
            if self.bucket and not slipped:
                self.bucket.acquire()
            retry_after, early = None, False
            try:
                response = self._send_once(method, url, body, extra)
            except _CONNECTION_ERRORS as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status not in RETRIED_STATUSES:
                    return response
                retry_after = _retry_after(response.headers)
                problem = f"HTTP {response.status} {response.body[:200].decode('utf-8', 'replace')}"
                early = (self.bucket is not None and response.status == 429
                         and retry_after is None and attempt == 0)
            slipped = early
            if attempt + 1 < self.retry.attempts:
                if early:  # paced yet refused: most likely a few milliseconds early
                    self.sleep(PACING_SLIP / self.bucket.rate)
                    self.bucket.restart()
                else:
                    self.sleep(self.retry.delay(attempt, self.draw(), retry_after))
        status = int(problem[5:8]) if problem.startswith("HTTP ") else None
        message = (f"{method} {self.label or url} failed {self.retry.attempts} times; "
                   f"last: {problem.strip()}")
        raise SendError(self.redact(message)[:500], status)
