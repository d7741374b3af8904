"""A stand-in send engine and webhook receiver on 127.0.0.1, with faults to order.

A real ``ThreadingHTTPServer`` in a thread: ``/v3/batches`` (POST a batch of contact
upserts, GET its status) over an in-memory contact store keyed by identifier, checking
``X-API-KEY``, optionally enforcing a steady rate (429 beyond it); and ``/hook``, which
verifies ``X-Studio-Signature`` and applies upserts and removals by customer id.

A batch reads ``inProgress`` for its first ``polls_in_progress`` polls and the POST
answers ``pending``, as the real engine does; with ``polls_in_progress=0`` the engine
works synchronously and the POST answers with the finished batch (counts and errors).
Bodies over ``max_body_bytes`` (1 MB, the engine's documented limit) or with more than
1,000 items are refused with 413 / 400.

Faults are queued in ``faults`` and each POST takes the next one:

- ``"429"`` / ``"429-retry-after"``: refuse (the latter with ``Retry-After``);
- ``"500"``: fail, echoing the API key in the body (clients must not repeat it);
- ``"slow"``: wait ``slow_seconds`` before handling (longer than the client's timeout);
- ``"drop"``: close the connection without answering, applying nothing;
- ``"lost"``: apply the batch, then close the connection without answering.

``item_failures`` maps an identifier to how many more times its upsert is rejected
(``math.inf`` for always); rejected items appear in the batch's ``errors``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SendEngine:
    """The server's state and knobs; use as a context manager to run it."""

    def __init__(self, api_key: str = "test-key", webhook_secret: str = "hook-secret", *,
                 rate_per_minute: float | None = None, burst: float = 2.0,
                 polls_in_progress: int = 1, slow_seconds: float = 0.5,
                 max_body_bytes: int = 1_000_000):
        self.api_key, self.webhook_secret = api_key, webhook_secret
        self.max_body_bytes = max_body_bytes
        self.body_sizes: list[int] = []
        self.rate_per_minute, self.burst = rate_per_minute, burst
        self.polls_in_progress, self.slow_seconds = polls_in_progress, slow_seconds
        self.contacts: dict[str, dict] = {}
        self.applied: Counter[str] = Counter()
        self.mirror: dict[str, dict] = {}
        self.hook_applied: Counter[str] = Counter()
        self.faults: deque[str] = deque()
        self.item_failures: dict[str, float] = {}
        self.batches: dict[str, dict] = {}
        self.log: list[tuple[str, str, int]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self._tokens, self._updated = burst, time.monotonic()

    def __enter__(self) -> SendEngine:
        engine = self

        class Handler(_Handler):
            state = engine

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self, method: str | None = None) -> Counter[int]:
        """How many answers of each status were given (to requests of ``method``)."""
        return Counter(status for m, _path, status in self.log if method in (None, m))

    def within_rate(self) -> bool:
        """Take a token of the steady rate, if one is left."""
        if self.rate_per_minute is None:
            return True
        with self.lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens
                               + (now - self._updated) * self.rate_per_minute / 60)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def next_fault(self) -> str | None:
        """The fault the current POST meets, if any."""
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def apply_batch(self, items: list[dict]) -> dict:
        """Upsert the contacts by identifier; return the batch record."""
        with self.lock:
            errors = []
            for index, contact in enumerate(items):
                identifier = contact["identifiers"][0]
                key = f"{identifier['type']}:{identifier['id']}"
                if self.item_failures.get(key, 0) > 0:
                    self.item_failures[key] -= 1
                    errors.append({"index": index, "message": f"{key} rejected (key "
                                                              f"{self.api_key})"})
                    continue
                stored = self.contacts.setdefault(key, {"tags": []})
                stored.update({k: v for k, v in contact.items() if k != "tags"})
                stored["tags"] = sorted(set(stored["tags"]) | set(contact.get("tags", [])))
                self.applied[key] += 1
            batch_id = f"b{len(self.batches) + 1}"
            self.batches[batch_id] = {
                "batchID": batch_id, "method": "POST", "endpoint": "contacts",
                "status": "inProgress", "totalCount": len(items),
                "finishedCount": len(items), "errorsCount": len(errors), "errors": errors,
                "polls": 0}
            return self.batches[batch_id]

    def finished_batch(self, batch_id: str) -> dict:
        """The batch's record as a finished batch (the synchronous POST answer)."""
        with self.lock:
            shown = {k: v for k, v in self.batches[batch_id].items() if k != "polls"}
        return {**shown, "status": "finished"}

    def poll_batch(self, batch_id: str) -> dict | None:
        """The batch's record; it reads ``inProgress`` for the first few polls."""
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            batch["polls"] += 1
            shown = {k: v for k, v in batch.items() if k != "polls"}
            if batch["polls"] > self.polls_in_progress:
                shown["status"] = "finished"
            return shown

    def apply_hook(self, items: list[dict]) -> None:
        """Mirror the webhook's changes by customer id."""
        with self.lock:
            for item in items:
                self.hook_applied[item["customer_id"]] += 1
                if item["action"] == "remove":
                    self.mirror.pop(item["customer_id"], None)
                else:
                    self.mirror[item["customer_id"]] = item["payload"]


class _Handler(BaseHTTPRequestHandler):
    state: SendEngine
    protocol_version = "HTTP/1.1"
    # http.server writes an answer's headers and body apart; with Nagle's algorithm on, a
    # kept-alive client's delayed ACK then holds the body back for 40 ms or more
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def _answer(self, status: int, body: dict | None = None,
                headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.state.log.append((self.command, self.path, status))

    def _drop(self) -> None:
        self.close_connection = True
        self.state.log.append((self.command, self.path, 0))

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _refused(self) -> bool:
        """Answer for a bad key or a rate overrun; True when answered."""
        key = self.headers.get("X-API-KEY")
        if key != self.state.api_key:
            self._answer(401, {"error": f"invalid API key {key!r}"})
            return True
        if not self.state.within_rate():
            self._answer(429, {"error": "Too many requests"})
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self._refused():
            return
        prefix = "/v3/batches/"
        batch = (self.state.poll_batch(self.path[len(prefix):])
                 if self.path.startswith(prefix) else None)
        if batch is None:
            self._answer(404, {"error": "not found"})
        else:
            self._answer(200, batch)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self._read_body()
        fault = self.state.next_fault()
        if fault == "slow":
            time.sleep(self.state.slow_seconds)
        elif fault == "drop":
            return self._drop()
        elif fault in {"429", "429-retry-after"}:
            headers = {"Retry-After": "1"} if fault == "429-retry-after" else {}
            return self._answer(429, {"error": "Too many requests"}, headers)
        elif fault == "500":
            return self._answer(500, {"error": f"internal error for {self.state.api_key}"})
        if self.path == "/hook":
            return self._hook(body, lost=fault == "lost")
        if self._refused():
            return
        if self.path != "/v3/batches":
            return self._answer(404, {"error": "not found"})
        if len(body) > self.state.max_body_bytes:
            return self._answer(413, {"error": "payload larger than 1 MB"})
        request = json.loads(body)
        if len(request["items"]) > 1000:
            return self._answer(400, {"error": "at most 1000 items"})
        self.state.body_sizes.append(len(body))
        batch = self.state.apply_batch(request["items"])
        if fault == "lost":
            return self._drop()
        if self.state.polls_in_progress == 0:
            return self._answer(200, self.state.finished_batch(batch["batchID"]))
        self._answer(200, {"batchID": batch["batchID"], "status": "pending"})

    def _hook(self, body: bytes, lost: bool) -> None:
        expected = "sha256=" + hmac.new(self.state.webhook_secret.encode(), body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(self.headers.get("X-Studio-Signature", ""), expected):
            self.state.bad_signatures += 1
            return self._answer(401, {"error": "bad signature"})
        self.state.apply_hook(json.loads(body)["items"])
        if lost:
            return self._drop()
        self._answer(200, {"ok": True})
