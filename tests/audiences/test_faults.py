"""Exports to a real HTTP send engine and webhook on 127.0.0.1 that misbehave on purpose.

Whatever the fault, the engine must end holding every consented member exactly once (its
store is keyed by identifier; ``applied`` counts the upserts), nobody else, and every
failure must be accounted for in the outbox.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import sqlalchemy as sa

from studio.audiences import history, outbox
from studio.audiences.destinations import parse_destination
from studio.audiences.diff import Change, hash_payload
from studio.audiences.omnisend import (
    MAX_BODY_BYTES,
    OmnisendDestination,
    contact_of,
    pack_batches,
)
from studio.audiences.records import export_outbox
from studio.audiences.rest_client import (
    PACING_HEADROOM,
    PACING_SLIP,
    RestClient,
    RetryPolicy,
    TokenBucket,
)
from studio.audiences.runner import WITHDRAWN_BEFORE_SENDING, export_audience, resume_run
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
    """The engine as a destination, with small delays so the tests run fast.

    The timeout stays well above a loaded machine's slowest answer: a request that timed
    out is sent again, which would make a test count two upserts.
    """
    settings = {"rate_per_minute": None, "timeout": 5.0, "retry": FAST,
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
    shorter = {"timeout": 0.3} if faults == ["slow"] else {}  # the engine waits 0.5 s
    result = export_audience(home, benelux, omnisend(engine, **shorter), batch_size=100)
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
    hook = WebhookDestination(f"{engine.url}/hook", timeout=5.0, retry=FAST)
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


class UnsubscribingOmnisend(OmnisendDestination):
    """While its first batch is out, the ETL publishes an unsubscribe of ``leaver``."""

    leaver: str | None = None
    home = None

    def deliver(self, batch):
        if self.leaver is not None:
            with writer(self.home) as con:
                con.execute("INSERT INTO consent_events (consent_event_id, customer_id, "
                            "channel, status, occurred_at, source) VALUES ('mid-run', ?, "
                            "'email', 'unsubscribed', TIMESTAMP '2025-01-02 09:00:00', "
                            "'unsubscribe_link')", [self.leaver])
                build_rollups(con)
            self.leaver = None
        return super().deliver(batch)


def test_an_unsubscribe_between_building_and_sending_keeps_that_person_out(home, benelux,
                                                                         engine):
    members = sorted(expected_members(home))
    leaver = members[-1]  # in the last batch, sent after the unsubscribe was published
    emails = emails_of(home, set(members))
    unsubscribing = UnsubscribingOmnisend(engine.url, segment="Benelux", rate_per_minute=None,
                                          retry=FAST, poll_interval=0.01)
    unsubscribing.leaver, unsubscribing.home = leaver, home
    result = export_audience(home, benelux, unsubscribing, batch_size=100)
    assert result.counts["consented"] == len(members)  # the audience was built before
    assert f"email:{emails[leaver]}" not in engine.contacts
    assert set(engine.contacts) == {f"email:{emails[c]}" for c in members if c != leaver}
    assert set(engine.applied.values()) == {1}
    assert result.status == "partial"
    assert (result.counts["sent"], result.counts["dead"]) == (len(members) - 1, 1)
    [dead] = outbox.dead_letters(home, result.run_id)
    assert (dead["customer_id"], dead["last_error"]) == (leaver, WITHDRAWN_BEFORE_SENDING)


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


MANY = {"name": "Many", "rule": {"profile": {"field": "country", "op": "in", "value": [
    "DE", "GB", "FR", "NL", "IT", "ES", "AT", "US"]}}}


def test_an_engine_that_answers_at_once_costs_one_request_per_thousand(home, monkeypatch):
    library.save_segment(home, parse_definition(MANY), user="ana")
    expected = expected_members(home, "Many")
    emails = emails_of(home, expected)
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
    with SendEngine(api_key=API_KEY, polls_in_progress=0) as engine:
        destination = OmnisendDestination(engine.url, rate_per_minute=None, retry=FAST)
        result = export_audience(home, "Many", destination)  # the engine's batch size
        assert set(engine.contacts) == {f"email:{e}" for e in emails.values()}
        assert set(engine.applied.values()) == {1} and result.counts["sent"] == len(expected)
        # e.g. 2,418 members: three POSTs of at most 1,000, and never a poll
        assert len(expected) > 2000
        assert engine.statuses("POST") == {200: -(-len(expected) // 1000)}
        assert engine.statuses("GET") == {}


def big_change(number: int, size: int) -> Change:
    """A member whose e-mail address alone takes about ``size`` bytes of JSON."""
    customer = f"C{number:06d}"
    payload = {"customer_id": customer, "email": f"{'x' * size}{number:06d}@example.com"}
    return Change(customer, "add", payload, hash_payload(payload))


def test_contacts_are_split_so_that_no_body_exceeds_a_megabyte(monkeypatch):
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
    # 900 contacts of about 3 kB: 2.7 MB in all, though under the 1,000-item limit
    batch = [big_change(n, 3000) for n in range(900)]
    with SendEngine(api_key=API_KEY, polls_in_progress=0) as engine:
        destination = OmnisendDestination(engine.url, rate_per_minute=None, retry=FAST)
        results = destination.for_audience("Big", "email").deliver(batch)
    assert all(r.ok for r in results) and len(results) == 900
    assert set(engine.applied.values()) == {1} and len(engine.contacts) == 900
    encoded = [len(json.dumps(contact_of(c, "studio:Big", "email", "2025-01-01T00:00:00Z"),
                              separators=(",", ":"))) for c in batch]
    # each contact encodes to the same size, so the packing is arithmetic
    assert len(set(encoded)) == 1
    per_body = (MAX_BODY_BYTES - len('{"method":"POST","endpoint":"contacts","items":[]}') + 1) // (
        encoded[0] + 1)
    assert len(engine.body_sizes) == -(-900 // per_body) == 3
    assert max(engine.body_sizes) <= MAX_BODY_BYTES and 413 not in engine.statuses()


def test_a_contact_too_large_for_any_body_fails_alone(monkeypatch):
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
    batch = [big_change(1, 10), big_change(2, MAX_BODY_BYTES), big_change(3, 10)]
    with SendEngine(api_key=API_KEY, polls_in_progress=0) as engine:
        destination = OmnisendDestination(engine.url, rate_per_minute=None, retry=FAST)
        results = destination.for_audience("Big", "email").deliver(batch)
    assert sorted((r.customer_id, r.ok) for r in results) == [
        ("C000001", True), ("C000002", False), ("C000003", True)]
    assert "larger than the engine's 1 MB limit" in next(r.error for r in results if not r.ok)
    assert len(engine.contacts) == 2 and len(engine.body_sizes) == 2


def test_pack_batches_honours_both_limits():
    sizes = [b"x" * 10] * 7
    assert pack_batches(sizes, max_items=3, max_bytes=10_000) == [range(0, 3), range(3, 6),
                                                                  range(6, 7)]
    # the envelope is 50 bytes: 50 + 10 + 1 + 10 = 71 fits, a third item (82) does not
    assert pack_batches(sizes, max_items=1000, max_bytes=71) == [
        range(0, 2), range(2, 4), range(4, 6), range(6, 7)]
    assert pack_batches([b"x" * 100, b"y"], max_items=10, max_bytes=60) == [range(0, 1),
                                                                            range(1, 2)]
    assert pack_batches([]) == []


def test_a_paced_clients_first_429_is_retried_after_a_slip_then_backs_off(monkeypatch):
    with SendEngine(api_key=API_KEY) as engine:
        client = RestClient(engine.url, {"X-API-KEY": API_KEY}, rate_per_minute=400,
                            retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05))
        waits: list[float] = []
        client.sleep = waits.append  # the bucket keeps its own, real sleep
        engine.faults.extend(["429", "429"])
        answer = client.request("POST", "/v3/batches", {"method": "POST",
                                                        "endpoint": "contacts", "items": []})
    assert answer.status == 200 and engine.statuses() == {429: 2, 200: 1}
    # 10 % of the paced interval (60 / 392 s), then full jitter below 0.02 s
    assert waits[0] == pytest.approx(PACING_SLIP * 60 / (400 * (1 - PACING_HEADROOM)))
    assert len(waits) == 2 and 0 <= waits[1] < 0.02


def test_ranked_contacts_carry_the_score_and_the_model_that_made_it(home, benelux, engine):
    with writer(home) as con:
        con.execute("CREATE TABLE IF NOT EXISTS scores (customer_id VARCHAR, target VARCHAR, "
                    "model_version VARCHAR, score DOUBLE, decile INTEGER, scored_at TIMESTAMP)")
        con.execute("INSERT INTO scores SELECT customer_id, 'purchase_90d', 'lgbm-7', "
                    "hash(customer_id) % 1000 / 1000, NULL, TIMESTAMP '2024-12-01' "
                    "FROM customers")
        scored = dict(con.execute("SELECT customer_id, score FROM scores").fetchall())
    result = export_audience(home, benelux, omnisend(engine), top_n=10,
                             score_target="purchase_90d")
    best = sorted(expected_members(home), key=lambda i: (-scored[i], i))[:10]
    properties = {c["customProperties"]["studio_customer_id"]: c["customProperties"]
                  for c in engine.contacts.values()}
    assert sorted(properties) == sorted(best) and result.counts["sent"] == 10
    assert {p["studio_model_version"] for p in properties.values()} == {"lgbm-7"}
    assert {i: p["studio_score"] for i, p in properties.items()} == {
        i: round(scored[i], 6) for i in best}
    assert result.model_versions == {"purchase_90d": ["lgbm-7"]}
    with state_engine(home).connect() as connection:  # the payloads the outbox kept
        payloads = [json.loads(text) for text in connection.execute(sa.select(
            export_outbox.c.payload).where(export_outbox.c.run_id == result.run_id)).scalars()]
    assert {(p["model_version"], p["score"]) for p in payloads} == {
        ("lgbm-7", round(scored[i], 6)) for i in best}
