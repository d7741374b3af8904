"""Exports of a saved segment from the demo store: contents, diffs, consent, crashes, audit."""

from __future__ import annotations

import csv
from collections import Counter

import polars as pl
import pytest
import sqlalchemy as sa

from studio.audiences import history, outbox
from studio.audiences.destinations import SqlMirror
from studio.audiences.records import export_outbox
from studio.audiences.runner import export_audience, resume_run
from studio.errors import UserError
from studio.rollups import build_rollups
from studio.segments import library, operations
from studio.segments.definition import parse_definition
from studio.state import state_engine
from studio.warehouse import connect_reader, writer
from tests.audiences.conftest import BENELUX
from tests.audiences.reference import consented_ids, ids_in_countries


def mirror_ids(url: str, table: str = "audience") -> list[str]:
    with sa.create_engine(url).connect() as connection:
        return [row[0] for row in connection.execute(sa.text(f"SELECT customer_id FROM {table}"))]


def expected_members(home, segment: str = "Benelux", channel: str = "email") -> set[str]:
    """Segment members by the segment library, intersected with the SQL consent check."""
    with connect_reader(home) as con:
        members = set(operations.members(con, library.load_segment(home, segment)))
    return members & consented_ids(home, channel)


class RecordingMirror(SqlMirror):
    """A SQL mirror that notes every confirmed delivery and can crash after some batches."""

    def __init__(self, url: str, crash_after: int | None = None):
        super().__init__(url, "audience")
        self.crash_after = crash_after
        self.batches = 0
        self.delivered: list[str] = []

    def deliver(self, batch):
        if self.crash_after is not None and self.batches == self.crash_after:
            raise RuntimeError("simulated crash")
        self.batches += 1
        results = super().deliver(batch)
        self.delivered += [r.customer_id for r in results if r.ok]
        return results


def test_csv_and_parquet_hold_exactly_the_consented_members(home, benelux, tmp_path):
    expected = expected_members(home)
    # NL 429 + BE 210 customers in the seed-7 store; the consent check keeps fewer
    assert len(ids_in_countries(home, ["NL", "BE"])) == 639
    assert 0 < len(expected) < 639
    result = export_audience(home, benelux, f"csv:{tmp_path / 'a.csv'}")
    export_audience(home, benelux, f"parquet:{tmp_path / 'a.parquet'}")
    with open(tmp_path / "a.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["customer_id"] for row in rows} == expected
    assert len(rows) == len(expected)
    assert all(row["email"] and row["country"] in {"NL", "BE"} for row in rows)
    frame = pl.read_parquet(tmp_path / "a.parquet")
    assert set(frame["customer_id"]) == expected and frame.height == len(expected)
    assert result.counts == {"matched": 639, "consented": len(expected),
                             "to_add": len(expected), "to_update": 0, "to_remove": 0,
                             "unchanged": 0, "sent": len(expected), "failed": 0, "dead": 0}
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary files were renamed away


def test_sms_exports_keep_those_subscribed_to_sms_with_a_phone(home, benelux, tmp_path):
    export_audience(home, benelux, f"csv:{tmp_path / 'sms.csv'}", channel="sms")
    exported = set(pl.read_csv(tmp_path / "sms.csv")["customer_id"])
    assert exported == expected_members(home, channel="sms")
    assert exported != expected_members(home, channel="email")


def test_a_second_export_with_nothing_changed_sends_nothing(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    first = export_audience(home, benelux, f"sql:{url}#audience", batch_size=100)
    second = export_audience(home, benelux, f"sql:{url}#audience")
    size = len(expected_members(home))
    assert first.counts["sent"] == size and first.status == "succeeded"
    assert {k: second.counts[k] for k in ("to_add", "to_update", "to_remove", "unchanged",
                                          "sent")} == {"to_add": 0, "to_update": 0,
                                                       "to_remove": 0, "unchanged": size,
                                                       "sent": 0}
    assert outbox.item_counts(home, second.run_id) == {"pending": 0, "sent": 0, "failed": 0,
                                                       "dead": 0}
    assert sorted(mirror_ids(url)) == sorted(expected_members(home))


def test_a_new_segment_version_sends_exactly_the_adds_and_removes(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    spec = f"sql:{url}#audience"
    export_audience(home, benelux, spec)
    before = expected_members(home)
    library.save_segment(home, parse_definition({**BENELUX, "rule": {"profile": {
        "field": "country", "op": "in", "value": ["NL", "AT"]}}}), user="bo")
    after = expected_members(home)
    consented = consented_ids(home)
    assert after == ids_in_countries(home, ["NL", "AT"]) & consented
    result = export_audience(home, benelux, spec)
    assert (result.counts["to_add"], result.counts["to_remove"]) == (
        len(after - before), len(before - after))
    assert result.counts["unchanged"] == len(after & before)
    assert len(after - before) > 0 and len(before - after) > 0
    assert sorted(mirror_ids(url)) == sorted(after)
    runs = history.list_runs(home)
    assert [r["segment_version"] for r in runs] == [2, 1]


def test_an_unsubscribe_between_exports_removes_the_person(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    export_audience(home, benelux, f"sql:{url}#audience")
    leaver = sorted(expected_members(home))[0]
    with writer(home) as con:  # as a load would: the event, then the rollups
        con.execute("INSERT INTO consent_events (consent_event_id, customer_id, channel, "
                    "status, occurred_at, source) VALUES ('test-unsub', ?, 'email', "
                    "'unsubscribed', TIMESTAMP '2025-01-02 09:00:00', 'unsubscribe_link')",
                    [leaver])
        build_rollups(con)
    assert leaver not in consented_ids(home)
    result = export_audience(home, benelux, f"sql:{url}#audience")
    assert (result.counts["to_remove"], result.counts["to_add"], result.counts["sent"]) == (
        1, 0, 1)
    assert leaver not in mirror_ids(url)
    assert sorted(mirror_ids(url)) == sorted(expected_members(home))


def test_a_dry_run_writes_nothing_to_the_destination(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    dry_csv = export_audience(home, benelux, f"csv:{tmp_path / 'dry.csv'}", dry_run=True)
    assert not (tmp_path / "dry.csv").exists()
    dry_sql = export_audience(home, benelux, f"sql:{url}#audience", dry_run=True)
    assert not (tmp_path / "mirror.db").exists()
    expected = expected_members(home)
    assert set(dry_sql.changes["add"]) == expected and dry_sql.counts["to_add"] == len(expected)
    assert len(dry_sql.samples) == 5
    assert all(s["action"] == "add" and s["customer_id"] in expected for s in dry_sql.samples)
    assert outbox.item_counts(home, dry_csv.run_id)["pending"] == 0
    assert [r["dry_run"] for r in history.list_runs(home)] == [True, True]
    # a later real export is not fooled by the dry runs
    assert export_audience(home, benelux, f"sql:{url}#audience").counts["sent"] == len(expected)


def test_a_crashed_export_resumes_and_sends_everyone_exactly_once(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    expected = expected_members(home)
    crashing = RecordingMirror(url, crash_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_audience(home, benelux, crashing, batch_size=50)
    crashed_run = history.list_runs(home)[0]
    assert crashed_run["status"] == "failed"
    assert outbox.item_counts(home, crashed_run["run_id"]) == {
        "pending": len(expected) - 100, "sent": 100, "failed": 0, "dead": 0}
    assert len(mirror_ids(url)) == 100

    healthy = RecordingMirror(url)
    result = export_audience(home, benelux, healthy, batch_size=50)
    assert result.counts["to_add"] == len(expected) - 100 and result.status == "succeeded"
    deliveries = Counter(crashing.delivered + healthy.delivered)
    assert set(deliveries) == expected and set(deliveries.values()) == {1}
    assert sorted(mirror_ids(url)) == sorted(expected)
    assert outbox.item_counts(home, crashed_run["run_id"])["pending"] == 0  # retired


def test_resume_run_finishes_the_interrupted_run_itself(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    expected = expected_members(home)
    crashing = RecordingMirror(url, crash_after=3)
    with pytest.raises(RuntimeError):
        export_audience(home, benelux, crashing, batch_size=40)
    run_id = history.list_runs(home)[0]["run_id"]
    healthy = RecordingMirror(url)
    result = resume_run(home, run_id, healthy)
    assert result.status == "succeeded" and result.counts["sent"] == len(expected)
    deliveries = Counter(crashing.delivered + healthy.delivered)
    assert set(deliveries) == expected and set(deliveries.values()) == {1}
    assert len(healthy.delivered) == len(expected) - 120
    assert export_audience(home, benelux, healthy).counts["sent"] == 0


def test_items_that_keep_failing_become_dead_letters(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    with sa.create_engine(url).begin() as connection:  # a table the mirror cannot write
        connection.execute(sa.text("CREATE TABLE audience (customer_id TEXT PRIMARY KEY, "
                                   "email TEXT, phone TEXT, country TEXT, score REAL, "
                                   "payload TEXT, synced_at TIMESTAMP, extra TEXT NOT NULL)"))
    result = export_audience(home, benelux, f"sql:{url}#audience", batch_size=1000)
    size = len(expected_members(home))
    assert result.status == "failed"
    assert (result.counts["sent"], result.counts["dead"]) == (0, size)
    dead = outbox.dead_letters(home, result.run_id)
    assert len(dead) == size and {d["attempts"] for d in dead} == {outbox.MAX_ATTEMPTS}
    assert "IntegrityError" in dead[0]["last_error"]
    assert outbox.delivered_state(home, history.get_run(home, result.run_id)["audience_key"]) == {}


def test_every_run_writes_an_audit_entry(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    runs = [export_audience(home, benelux, f"sql:{url}#audience", dry_run=True),
            export_audience(home, benelux, f"sql:{url}#audience"),
            export_audience(home, benelux, f"csv:{tmp_path / 'a.csv'}")]
    with pytest.raises(RuntimeError):
        export_audience(home, benelux, RecordingMirror(f"sqlite:///{tmp_path / 'b.db'}", 0))
    entries = history.audit_entries(home)
    audited = Counter(e["details"]["run_id"] for e in entries)
    run_ids = [r["run_id"] for r in history.list_runs(home)]
    assert sorted(audited) == sorted(run_ids) and len(run_ids) == 4
    assert {e["actor"] for e in entries} == {"tester"}
    assert entries[0]["details"]["status"] == "failed"
    assert [e["action"] for e in entries][-1] == "audience.export.dry_run"
    assert runs[1].counts["sent"] == entries[2]["details"]["sent"]


def test_top_n_keeps_the_best_scored_consented_members_and_records_the_model(home, benelux,
                                                                             tmp_path):
    with writer(home) as con:  # an older run by model v0, then the current one by v1
        con.execute("CREATE TABLE IF NOT EXISTS scores (customer_id VARCHAR, target VARCHAR, "
                    "model_version VARCHAR, score DOUBLE, decile INTEGER, scored_at TIMESTAMP)")
        con.execute("INSERT INTO scores SELECT customer_id, 'purchase_90d', 'v0', "
                    "1 - hash(customer_id) % 1000 / 1000, NULL, TIMESTAMP '2024-06-01' "
                    "FROM customers")
        con.execute("INSERT INTO scores SELECT customer_id, 'purchase_90d', 'v1', "
                    "hash(customer_id || 'x') % 1000 / 1000, NULL, TIMESTAMP '2024-12-01' "
                    "FROM customers")
        current = dict(con.execute("SELECT customer_id, score FROM scores "
                                   "WHERE model_version = 'v1'").fetchall())
    expected = sorted(expected_members(home), key=lambda i: (-current[i], i))[:25]
    result = export_audience(home, benelux, f"csv:{tmp_path / 'top.csv'}", top_n=25,
                             score_target="purchase_90d")
    frame = pl.read_csv(tmp_path / "top.csv")
    assert sorted(frame["customer_id"]) == sorted(expected)
    assert frame["score"].to_list() == [round(current[i], 6) for i in frame["customer_id"]]
    assert set(frame["model_version"]) == {"v1"}  # each member says which model picked them
    assert result.model_versions == {"purchase_90d": ["v1"]}
    assert history.get_run(home, result.run_id)["model_versions"] == {"purchase_90d": ["v1"]}
    assert result.counts["consented"] == 25


def test_a_file_is_diffed_against_the_file_it_replaces(home, benelux, tmp_path):
    spec = f"csv:{tmp_path / 'benelux.csv'}"
    before = expected_members(home)
    first = export_audience(home, benelux, spec)
    key = history.get_run(home, first.run_id)["audience_key"]
    # files keep no outbox: their state is one file of row hashes, replaced with the file
    assert outbox.item_counts(home, first.run_id) == {"pending": 0, "sent": 0, "failed": 0,
                                                      "dead": 0}
    assert set(outbox.snapshot_state(home, key)["customer_id"]) == before
    library.save_segment(home, parse_definition({**BENELUX, "rule": {"profile": {
        "field": "country", "op": "in", "value": ["NL", "AT"]}}}), user="bo")
    after = expected_members(home)
    dry = export_audience(home, benelux, spec, dry_run=True)
    assert set(dry.changes["add"]) == after - before
    assert set(dry.changes["remove"]) == before - after and dry.changes["update"] == []
    second = export_audience(home, benelux, spec)
    assert {k: second.counts[k] for k in ("to_add", "to_remove", "unchanged", "sent")} == {
        "to_add": len(after - before), "to_remove": len(before - after),
        "unchanged": len(after & before), "sent": len(after ^ before)}
    assert set(pl.read_csv(tmp_path / "benelux.csv")["customer_id"]) == after
    assert set(outbox.snapshot_state(home, key)["customer_id"]) == after
    third = export_audience(home, benelux, spec)
    assert (third.counts["unchanged"], third.counts["sent"]) == (len(after), 0)


def test_resume_refuses_a_run_killed_before_it_had_queued_everything(home, benelux, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    with pytest.raises(RuntimeError):
        export_audience(home, benelux, RecordingMirror(url, crash_after=0), batch_size=50)
    run_id = history.list_runs(home)[0]["run_id"]
    with state_engine(home).begin() as connection:  # as if killed while queuing
        connection.execute(sa.delete(export_outbox).where(
            export_outbox.c.run_id == run_id, export_outbox.c.item_id > sa.select(
                sa.func.min(export_outbox.c.item_id) + 99).scalar_subquery()))
    with pytest.raises(UserError, match="stopped before it had queued all its changes"):
        resume_run(home, run_id, RecordingMirror(url))
    again = export_audience(home, benelux, RecordingMirror(url))
    assert again.counts["sent"] == len(expected_members(home))  # exporting again covers all
