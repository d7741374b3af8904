"""An exporting process killed with SIGKILL half-way, then started again.

The export runs as a real ``studio audiences export`` process against the send engine on
127.0.0.1. The engine holds the process's second batch: either before applying it (the
process dies with the batch unsent) or after (it dies with the batch applied but its
answer never read: the response lost after the server committed). The test then kills the
process with SIGKILL, lets a second process export the same audience, and checks that the
engine holds every consented member exactly once, nobody else, and that the outbox
accounts for every item.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest

from studio.audiences import history, outbox
from studio.segments import library
from studio.segments.definition import parse_definition
from tests.audiences.send_engine import SendEngine
from tests.audiences.test_export import expected_members
from tests.audiences.test_faults import API_KEY, emails_of

MANY = {"name": "Many countries", "rule": {"profile": {
    "field": "country", "op": "in", "value": ["DE", "GB", "FR", "NL", "IT", "ES", "AT", "US"]}}}


class GatedEngine(SendEngine):
    """A send engine that stops at its ``hold_at``-th batch until the test lets it go."""

    def __init__(self, *args, hold_at: int, apply_first: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.hold_at, self.apply_first = hold_at, apply_first
        self.holding, self.release = threading.Event(), threading.Event()
        self.posts = 0
        self.held_keys: set[str] = set()

    def apply_batch(self, items: list[dict]) -> dict:
        with self.lock:
            self.posts += 1
            held = self.posts == self.hold_at
        if not held:
            return super().apply_batch(items)
        self.held_keys = {f"{i['identifiers'][0]['type']}:{i['identifiers'][0]['id']}"
                          for i in items}
        applied = super().apply_batch(items) if self.apply_first else None
        self.holding.set()
        self.release.wait(60)
        if applied is None:  # the client is dead: this batch never reaches the store
            raise ConnectionAbortedError("the sender died before the batch was applied")
        return applied


def start_export(home, segment: str, url: str) -> subprocess.Popen:
    environment = {**os.environ, "STUDIO_HOME": str(home.home), "STUDIO_USER": "cron",
                   "STUDIO_OMNISEND_API_KEY": API_KEY}
    environment.pop("STUDIO_STATE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "studio", "audiences", "export", segment,
                             "--to", f"omnisend:{url}", "--json"], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("apply_first", [False, True], ids=["before-apply", "after-apply"])
def test_a_killed_export_started_again_delivers_everyone_once(home, apply_first):
    library.save_segment(home, parse_definition(MANY), user="ana")
    expected = expected_members(home, MANY["name"])
    emails = emails_of(home, expected)
    with GatedEngine(api_key=API_KEY, hold_at=2, apply_first=apply_first) as engine:
        first = start_export(home, MANY["name"], engine.url)
        try:
            assert engine.holding.wait(120), first.communicate(timeout=5)
            first.send_signal(signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            engine.release.set()
        second = start_export(home, MANY["name"], engine.url)
        stdout, stderr = second.communicate(timeout=300)
        assert second.returncode == 0, stderr
        applied, held = Counter(engine.applied), engine.held_keys

    # the engine holds every consented member once, under their e-mail, and nobody else
    assert set(engine.contacts) == {f"email:{e}" for e in emails.values()}
    assert len(held) > 0 and len(expected) > 2 * len(held)  # killed truly half-way
    repeated = {key for key, times in applied.items() if times > 1}
    assert repeated == (held if apply_first else set())  # only the batch whose answer was lost
    assert max(applied.values()) <= 2

    # the outbox accounts for everything: nothing pending, the killed run retired
    killed, finished = sorted(r["run_id"] for r in history.list_runs(home))
    assert json.loads(stdout)["run_id"] == finished
    assert history.get_run(home, killed)["status"] == "failed"
    assert "superseded by run" in history.get_run(home, killed)["message"]
    first_items, second_items = outbox.item_counts(home, killed), outbox.item_counts(home,
                                                                                      finished)
    assert first_items["pending"] == second_items["pending"] == 0
    assert second_items == {"pending": 0, "sent": len(expected) - first_items["sent"],
                            "failed": 0, "dead": 0}
    assert first_items["sent"] + first_items["failed"] == len(expected)
    assert history.get_run(home, finished)["status"] == "succeeded"
