"""Retrying dead letters against the real send engine on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from studio.audiences import history, outbox
from studio.audiences.retry import WITHDRAWN, retry_dead_letters
from studio.audiences.runner import export_audience
from studio.errors import UserError
from studio.rollups import build_rollups
from studio.warehouse import writer
from tests.audiences.test_destinations import studio
from tests.audiences.test_export import expected_members
from tests.audiences.test_faults import (
    API_KEY,
    assert_engine_holds_exactly,
    emails_of,
    engine,  # noqa: F401 - the fixture
    omnisend,
)


def unsubscribe(home, customer_id: str) -> None:
    with writer(home) as con:
        con.execute("INSERT INTO consent_events (consent_event_id, customer_id, channel, "
                    "status, occurred_at, source) VALUES ('retry-unsub', ?, 'email', "
                    "'unsubscribed', TIMESTAMP '2025-01-02 09:00:00', 'unsubscribe_link')",
                    [customer_id])
        build_rollups(con)


def doom(running, home, count: int) -> list[tuple[str, str]]:
    """Make the engine reject ``count`` members for good; return them (id, e-mail)."""
    doomed = sorted(emails_of(home, expected_members(home)).items())[:count]
    for _customer, email in doomed:
        running.item_failures[f"email:{email}"] = float("inf")
    return doomed


def test_dead_letters_are_delivered_once_the_cause_is_fixed(home, benelux, engine):  # noqa: F811
    doomed = doom(engine, home, 3)
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    assert result.status == "partial" and result.counts["dead"] == 3
    engine.item_failures.clear()  # somebody fixed the addresses
    retried = retry_dead_letters(home, result.run_id, omnisend(engine))
    assert retried.status == "succeeded"
    assert retried.counts["sent"] == result.counts["sent"] + 3 and retried.counts["dead"] == 0
    assert_engine_holds_exactly(engine, home)
    assert {engine.applied[f"email:{e}"] for _c, e in doomed} == {1}
    assert set(engine.applied.values()) == {1}  # nobody else was sent again
    assert outbox.dead_letters(home, result.run_id) == []
    entry = history.audit_entries(home)[0]
    assert entry["action"] == "audience.export.retry" and entry["details"]["retried"] == 3
    assert history.get_run(home, result.run_id)["status"] == "succeeded"
    # the diff knows they are delivered now: the next export sends nobody
    assert export_audience(home, benelux, omnisend(engine)).counts["to_add"] == 0


def test_a_retry_leaves_out_people_who_withdrew_consent(home, benelux, engine):  # noqa: F811
    doomed = doom(engine, home, 2)
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    engine.item_failures.clear()
    leaver, stayer = doomed
    unsubscribe(home, leaver[0])
    retried = retry_dead_letters(home, result.run_id, omnisend(engine))
    assert retried.status == "partial" and retried.counts["dead"] == 1
    assert f"email:{leaver[1]}" not in engine.contacts
    assert engine.applied[f"email:{stayer[1]}"] == 1
    [dead] = outbox.dead_letters(home, result.run_id)
    assert (dead["customer_id"], dead["last_error"]) == (leaver[0], WITHDRAWN)


def test_retry_refuses_what_it_cannot_do(home, benelux, engine, tmp_path):  # noqa: F811
    with pytest.raises(UserError, match="no export run 999"):
        retry_dead_letters(home, 999)
    doom(engine, home, 1)
    older = export_audience(home, benelux, omnisend(engine), batch_size=100)
    assert older.counts["dead"] == 1
    engine.item_failures.clear()
    later = export_audience(home, benelux, omnisend(engine))
    assert later.counts["to_add"] == 1  # the later diff already covers the dead letter
    with pytest.raises(UserError, match="followed by a later export"):
        retry_dead_letters(home, older.run_id)
    with pytest.raises(UserError, match="has no dead letters"):
        retry_dead_letters(home, later.run_id)
    written = export_audience(home, benelux, f"csv:{tmp_path / 'a.csv'}")
    with pytest.raises(UserError, match="has no dead letters"):
        retry_dead_letters(home, written.run_id)


def test_the_cli_lists_and_retries_dead_letters(home, benelux, engine):  # noqa: F811
    doomed = doom(engine, home, 2)
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    listed = json.loads(studio("audiences", "dead", str(result.run_id), "--json",
                               home=home.home).stdout)
    assert sorted(d["customer_id"] for d in listed) == sorted(c for c, _e in doomed)
    assert all(API_KEY not in (d["last_error"] or "") for d in listed)
    engine.item_failures.clear()
    done = studio("audiences", "retry", str(result.run_id), "--json", home=home.home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert_engine_holds_exactly(engine, home)
    again = studio("audiences", "retry", str(result.run_id), home=home.home)
    assert again.returncode == 2 and "has no dead letters" in again.stderr
