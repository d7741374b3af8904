"""Exports to a real HTTP send engine and webhook on 127.0.0.1 that misbehave on purpose.

Whatever the fault, the engine must end holding every consented member exactly once (its
store is keyed by identifier; ``applied`` counts the upserts), nobody else, and every
failure must be accounted for in the outbox.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from studio.audiences import history, outbox
from studio.audiences.destinations import parse_destination
from studio.audiences.omnisend import OmnisendDestination
from studio.audiences.records import export_outbox
from studio.audiences.rest_client import RestClient, RetryPolicy, TokenBucket
from studio.audiences.runner import export_audience, resume_run
from studio.audiences.webhook import WebhookDestination, sign_body
from studio.errors import UserError
from studio.rollups import build_rollups
from studio.segments import library
from studio.segments.definition import parse_definition
from studio.state import state_engine
from studio.warehouse import connect_reader, writer
from tests.audiences.conftest import BENELUX
from tests.audiences.send_engine import SendEngine
from tests.audiences.test_export import expected_members

API_KEY = "sk-live-7f3a9c1e5b2d"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def engine(monkeypatch):
    """A running send engine expecting :data:`API_KEY`; the studio's secrets set to match."""
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
    monkeypatch.setenv("STUDIO_WEBHOOK_SECRET", "hook-secret")
    with SendEngine(api_key=API_KEY, webhook_secret="hook-secret") as running:
        yield running


def omnisend(engine: SendEngine, **knobs) -> OmnisendDestination:
    """The engine as a destination, with small delays so the tests run fast."""
    settings = {"rate_per_minute": None, "timeout": 0.3, "retry": FAST,
                "poll_interval": 0.01, **knobs}
    return OmnisendDestination(engine.url, **settings).for_audience("Benelux", "email")


def emails_of(home, customer_ids: set[str]) -> dict[str, str]:
    """Customer id -> e-mail address, straight from the warehouse."""
    with connect_reader(home) as con:
        rows = con.execute("SELECT customer_id, email FROM customers").fetchall()
    return {i: e for i, e in rows if i in customer_ids}


def assert_engine_holds_exactly(engine: SendEngine, home) -> dict[str, str]:
    """Every consented member is in the engine's store, under their e-mail, and nobody else."""
    emails = emails_of(home, expected_members(home))
    assert set(engine.contacts) == {f"email:{e}" for e in emails.values()}
    owners = {c["customProperties"]["studio_customer_id"] for c in engine.contacts.values()}
    assert owners == set(emails)
    return emails


def test_a_clean_export_upserts_each_consented_member_once_with_the_tag(home, benelux,
                                                                        engine):
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    emails = assert_engine_holds_exactly(engine, home)
    assert result.status == "succeeded" and result.counts["sent"] == len(emails)
    assert set(engine.applied.values()) == {1}
    contact = engine.contacts[f"email:{emails[min(emails)]}"]
    assert contact["tags"] == ["studio:Benelux"] and contact["countryCode"] in {"NL", "BE"}
    assert contact["identifiers"][0]["channels"]["email"]["status"] == "subscribed"
    batches = -(-len(emails) // 100)
    # one POST per batch, and each batch was polled twice (in progress, then finished)
    assert engine.statuses("POST") == {200: batches}
    assert engine.statuses("GET") == {200: 2 * batches}
    again = export_audience(home, benelux, omnisend(engine))
    assert again.counts["sent"] == 0 and set(engine.applied.values()) == {1}


@pytest.mark.parametrize(("faults", "status"), [
    (["429", "429"], 429),
    (["500", "500", "500"], 500),
    (["drop"], 0),
    (["slow"], 200),
    (["lost"], 0),
])
def test_transient_faults_are_retried_until_everyone_is_there_once(home, benelux, engine,
                                                                   faults, status):
    engine.faults.extend(faults)
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    emails = assert_engine_holds_exactly(engine, home)
    assert result.status == "succeeded" and result.counts["sent"] == len(emails)
    assert outbox.item_counts(home, result.run_id) == {"pending": 0, "sent": len(emails),
                                                       "failed": 0, "dead": 0}
    if faults[0] in {"lost", "slow"}:
        # the first batch was applied, its answer never arrived, so it was sent again:
        # harmless, because contacts are upserted by identifier
        assert Counter(engine.applied.values()) in (Counter({1: len(emails)}),
                                                    Counter({1: len(emails) - 100, 2: 100}))
        assert faults[0] == "slow" or Counter(engine.applied.values())[2] == 100
    else:
        assert set(engine.applied.values()) == {1}
        assert engine.statuses("POST")[status] == len(faults)


def test_retry_after_is_honoured(home, benelux, engine):
    destination = omnisend(engine)
    waits: list[float] = []
    destination.client().sleep = waits.append  # record instead of sleeping
    engine.faults.extend(["429", "429-retry-after"])
    export_audience(home, benelux, destination, batch_size=1000)
    assert_engine_holds_exactly(engine, home)
    # full jitter below 0.01 s for the first retry; the server's 1 s for the second
    assert len(waits) == 2 and 0 <= waits[0] < 0.01 and waits[1] == 1.0


def test_failures_beyond_the_clients_attempts_are_retried_by_the_outbox(home, benelux,
                                                                         engine):
    engine.faults.extend(["500"] * 6)  # 4 client attempts fail, then 2 more 500s
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    emails = assert_engine_holds_exactly(engine, home)
    assert result.status == "succeeded" and result.counts["sent"] == len(emails)
    with state_engine(home).connect() as connection:
        attempts = Counter(connection.execute(sa.select(export_outbox.c.attempts).where(
            export_outbox.c.run_id == result.run_id)).scalars())
    assert attempts == {2: 100, 1: len(emails) - 100}


def test_items_the_engine_keeps_rejecting_become_dead_letters(home, benelux, engine):
    members = sorted(emails_of(home, expected_members(home)).items())
    flaky, *doomed = members[:3]
    engine.item_failures[f"email:{flaky[1]}"] = 2
    for _customer, email in doomed:
        engine.item_failures[f"email:{email}"] = float("inf")
    result = export_audience(home, benelux, omnisend(engine), batch_size=100)
    assert result.status == "partial"
    assert (result.counts["sent"], result.counts["dead"]) == (len(members) - 2, 2)
    assert set(engine.contacts) == {f"email:{e}" for _c, e in members[:1] + members[3:]}
    dead = outbox.dead_letters(home, result.run_id)
    assert sorted(d["customer_id"] for d in dead) == sorted(c for c, _e in doomed)
    assert {d["attempts"] for d in dead} == {outbox.MAX_ATTEMPTS}
    assert "rejected (key ***)" in dead[0]["last_error"] and API_KEY not in dead[0]["last_error"]
    assert engine.applied[f"email:{flaky[1]}"] == 1


def test_the_client_paces_itself_under_the_servers_rate(home, benelux, monkeypatch):
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
    with SendEngine(api_key=API_KEY, rate_per_minute=400, burst=2) as engine:
        export_audience(home, benelux, omnisend(engine, rate_per_minute=400,
                                                poll_interval=0.0), batch_size=200)
        assert_engine_holds_exactly(engine, home)
        assert 429 not in engine.statuses() and len(engine.log) >= 4
    with SendEngine(api_key=API_KEY, rate_per_minute=400, burst=2) as engine:
        patient = RetryPolicy(attempts=10, base_delay=0.05, max_delay=0.4)
        result = export_audience(home, benelux, omnisend(engine, poll_interval=0.0,
                                                         retry=patient), batch_size=200)
        assert_engine_holds_exactly(engine, home)
        assert engine.statuses()[429] > 0 and result.status == "succeeded"


def test_the_webhook_mirrors_the_audience_through_faults_with_valid_signatures(home, benelux,
                                                                                engine):
    hook = WebhookDestination(f"{engine.url}/hook", timeout=0.3, retry=FAST)
    engine.faults.extend(["500", "drop", "lost"])
    first = export_audience(home, benelux, hook.for_audience("Benelux", "email"),
                            batch_size=100)
    expected = expected_members(home)
    assert set(engine.mirror) == expected and first.status == "succeeded"
    assert engine.bad_signatures == 0 and max(engine.hook_applied.values()) <= 2
    library.save_segment(home, parse_definition({**BENELUX, "rule": {"profile": {
        "field": "country", "op": "in", "value": ["NL"]}}}), user="bo")
    second = export_audience(home, benelux, hook, batch_size=100)
    assert set(engine.mirror) == expected_members(home) < expected
    assert second.counts["to_remove"] == len(expected - set(engine.mirror))


def test_a_wrongly_signed_webhook_is_refused_and_its_items_die(home, benelux, engine):
    hook = WebhookDestination(f"{engine.url}/hook", secret="not-the-secret", retry=FAST)
    result = export_audience(home, benelux, hook, batch_size=1000)
    assert engine.mirror == {} and engine.bad_signatures == outbox.MAX_ATTEMPTS
    assert result.status == "failed" and result.counts["dead"] == len(expected_members(home))
    assert "HTTP 401" in outbox.dead_letters(home, result.run_id)[0]["last_error"]


def text_in_state(home, needle: str) -> list[str]:
    """Every table.column of the state database with a value containing ``needle``."""
    engine = state_engine(home)
    found = []
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            for column in sa.inspect(engine).get_columns(table):
                hits = connection.execute(sa.text(
                    f'SELECT count(*) FROM "{table}" WHERE CAST("{column["name"]}" AS TEXT) '
                    "LIKE :pattern"), {"pattern": f"%{needle}%"}).scalar()
                if hits:
                    found.append(f"{table}.{column['name']}")
    return found


def test_the_api_key_is_never_stored_nor_shown(home, benelux, engine, monkeypatch):
    engine.faults.extend(["500"] * 1000)  # each 500 body echoes the key
    failing = export_audience(home, benelux, omnisend(engine, retry=RetryPolicy(2, 0.001, 0.001)),
                              batch_size=1000)
    assert failing.status == "failed" and failing.counts["dead"] > 0
    assert "HTTP 500 {\"error\": \"internal error for ***\"}" in outbox.dead_letters(
        home, failing.run_id)[0]["last_error"]
    engine.faults.clear()
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", "sk-wrong-0000")  # the 401 body echoes it
    with pytest.raises(UserError) as refused:
        export_audience(home, benelux, omnisend(engine))
    assert str(refused.value) == ("The send engine refused the API key (HTTP 401); "
                                  "check STUDIO_OMNISEND_API_KEY.")
    assert text_in_state(home, "sk-") == []
    assert text_in_state(home, "internal error for") != []  # the search does find text


def test_specs_and_missing_secrets(monkeypatch, tmp_path):
    destination = parse_destination("omnisend:https://api.omnisend.com/v3/")
    assert destination.description == "omnisend:https://api.omnisend.com"
    hook = parse_destination("webhook:https://ana:pw@hooks.example/in?token=abc")
    assert hook.description == "webhook:https://hooks.example/in?***"
    monkeypatch.delenv("STUDIO_OMNISEND_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError, match="needs STUDIO_OMNISEND_API_KEY"):
        destination.client()
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('STUDIO_OMNISEND_API_KEY = "k1"\n')
    assert destination.client().headers["X-API-KEY"] == "k1"
    with pytest.raises(UserError, match="not an http"):
        parse_destination("webhook:ftp://x")


def test_signatures_backoff_and_pacing_by_hand():
    # RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under "Jefe"
    assert sign_body(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=3.0)
    assert [policy.delay(n, 0.5) for n in range(4)] == [0.25, 0.5, 1.0, 1.5]
    assert policy.delay(0, 0.5, retry_after=2.0) == 2.0
    now = [0.0]
    bucket = TokenBucket(400, clock=lambda: now[0],
                         sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    for _ in range(5):
        bucket.acquire()
    assert now[0] == pytest.approx(4 * 60 / 400)  # evenly spaced at 0.15 s
    client = RestClient("http://x", secrets=("s3cr3t",))
    assert client.redact("bad key s3cr3t") == "bad key ***"


class CrashingOmnisend(OmnisendDestination):
    """Dies (as a killed process would) before delivering its second batch."""

    def deliver(self, batch):
        self.batches = getattr(self, "batches", 0) + 1
        if self.batches == 2:
            raise KeyboardInterrupt
        return super().deliver(batch)


def test_an_unsubscribe_before_the_resumed_send_keeps_that_person_out(home, benelux, engine):
    crashing = CrashingOmnisend(engine.url, segment="Benelux", rate_per_minute=None,
                                retry=FAST, poll_interval=0.01)
    with pytest.raises(KeyboardInterrupt):
        export_audience(home, benelux, crashing, batch_size=100)
    run_id = history.list_runs(home)[0]["run_id"]
    pending = [c.customer_id for c in outbox.due_items(home, run_id)]
    leaver = pending[0]
    with writer(home) as con:
        con.execute("INSERT INTO consent_events (consent_event_id, customer_id, channel, "
                    "status, occurred_at, source) VALUES ('test-unsub', ?, 'email', "
                    "'unsubscribed', TIMESTAMP '2025-01-02 09:00:00', 'unsubscribe_link')",
                    [leaver])
        build_rollups(con)
    result = resume_run(home, run_id, omnisend(engine))
    emails = emails_of(home, expected_members(home) | {leaver})
    assert f"email:{emails[leaver]}" not in engine.contacts
    assert_engine_holds_exactly(engine, home)  # everyone else, once
    assert set(engine.applied.values()) == {1}
    assert result.status == "partial" and result.counts["dead"] == 1
    assert [d["customer_id"] for d in outbox.dead_letters(home, run_id)] == [leaver]


def test_the_cli_exports_to_the_rest_destination_by_spec(home, benelux, engine):
    # The spec carries only the URL; the tag and channel come from the audience.
    from tests.audiences.test_destinations import studio

    done = studio("audiences", "export", benelux, "--to", f"omnisend:{engine.url}", "--json",
                  home=home.home)
    assert done.returncode == 0, done.stderr
    emails = assert_engine_holds_exactly(engine, home)
    assert {tuple(c["tags"]) for c in engine.contacts.values()} == {("studio:Benelux",)}
    assert API_KEY not in done.stdout + done.stderr
    assert len(emails) > 0
