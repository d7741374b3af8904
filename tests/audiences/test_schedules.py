"""Scheduled exports and ``studio audiences sync``."""

from __future__ import annotations

import json

import polars as pl
import pytest

from studio.audiences import history
from studio.audiences.schedules import (
    list_schedules,
    remove_schedule,
    save_schedule,
    sync_schedules,
)
from studio.errors import UserError
from studio.segments import library
from studio.segments.definition import parse_definition
from tests.audiences.reference import consented_ids, ids_in_countries
from tests.audiences.test_destinations import studio
from tests.audiences.test_export import expected_members, mirror_ids
from tests.audiences.test_retry import unsubscribe


def test_sync_keeps_a_mirror_and_a_file_equal_to_the_audience(home, benelux, tmp_path):
    url, csv_path = f"sqlite:///{tmp_path / 'mirror.db'}", tmp_path / "benelux.csv"
    save_schedule(home, benelux, f"sql:{url}#audience")
    save_schedule(home, benelux, f"csv:{csv_path}")
    first = sync_schedules(home)
    expected = expected_members(home)
    assert [o["status"] for o in first] == ["succeeded", "succeeded"]
    assert sorted(mirror_ids(url)) == sorted(expected)
    assert set(pl.read_csv(csv_path)["customer_id"]) == expected

    # a new version of the segment and an unsubscribe: the next sync sends just the changes
    library.save_segment(home, parse_definition({**BENELUX_LU}), user="ana")
    leaver = sorted(expected)[0]
    unsubscribe(home, leaver)
    second = sync_schedules(home)
    now_expected = ids_in_countries(home, ["NL", "BE", "LU"]) & consented_ids(home)
    assert leaver not in now_expected
    mirror = second[0]["counts"]
    assert mirror["to_add"] == len(now_expected - expected)
    assert mirror["to_remove"] == len(expected - now_expected) == 1
    assert mirror["unchanged"] == len(expected & now_expected)
    assert sorted(mirror_ids(url)) == sorted(now_expected)
    assert set(pl.read_csv(csv_path)["customer_id"]) == now_expected
    listed = list_schedules(home)
    assert [s["last_run_id"] for s in listed] == [o["run_id"] for o in second]
    assert {s["last_status"] for s in listed} == {"succeeded"}
    assert {r["segment_version"] for r in history.list_runs(home)[:2]} == {2}


BENELUX_LU = {"name": "Benelux", "rule": {"profile": {"field": "country", "op": "in",
                                                      "value": ["NL", "BE", "LU"]}}}


def test_one_failing_schedule_does_not_stop_the_others(home, benelux, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_OMNISEND_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    save_schedule(home, benelux, "omnisend:http://127.0.0.1:9")
    save_schedule(home, benelux, f"csv:{tmp_path / 'ok.csv'}")
    outcomes = sync_schedules(home)
    assert [o["status"] for o in outcomes] == ["failed", "succeeded"]
    assert "STUDIO_OMNISEND_API_KEY" in outcomes[0]["error"]
    assert list_schedules(home)[0]["last_error"] == outcomes[0]["error"]
    assert (tmp_path / "ok.csv").exists()


def test_schedules_refuse_secrets_duplicates_and_unknown_segments(home, benelux, tmp_path):
    with pytest.raises(UserError, match="cannot hold a password"):
        save_schedule(home, benelux, "sql:postgresql://ana:s3cret@db/crm#audience")
    with pytest.raises(UserError, match="cannot hold a password"):
        save_schedule(home, benelux, "webhook:https://hooks.example/in?token=abc")
    with pytest.raises(UserError, match="No saved segment|not saved|unknown"):
        save_schedule(home, "Nobody", f"csv:{tmp_path / 'x.csv'}")
    save_schedule(home, benelux, f"csv:{tmp_path / 'x.csv'}")
    with pytest.raises(UserError, match="already scheduled"):
        save_schedule(home, benelux, f"csv:{tmp_path / 'x.csv'}")
    assert "s3cret" not in json.dumps(list_schedules(home), default=str)
    [schedule] = list_schedules(home)
    remove_schedule(home, schedule["schedule_id"])
    assert list_schedules(home) == [] and sync_schedules(home) == []
    with pytest.raises(UserError, match="no schedule"):
        remove_schedule(home, schedule["schedule_id"])
    actions = [e["action"] for e in history.audit_entries(home)]
    assert actions[:2] == ["audience.unschedule", "audience.schedule"]


def test_the_cli_schedules_syncs_and_unschedules(home, benelux, tmp_path):
    target = tmp_path / "cron.csv"
    added = studio("audiences", "schedule", benelux, "--to", f"csv:{target}", home=home.home)
    assert added.returncode == 0, added.stderr
    synced = studio("audiences", "sync", "--json", home=home.home)
    assert synced.returncode == 0, synced.stderr
    [outcome] = json.loads(synced.stdout)
    assert outcome["status"] == "succeeded"
    assert outcome["counts"]["sent"] == len(expected_members(home))
    assert set(pl.read_csv(target)["customer_id"]) == expected_members(home)
    [listed] = json.loads(studio("audiences", "schedules", "--json", home=home.home).stdout)
    assert listed["last_run_id"] == outcome["run_id"]
    studio("audiences", "schedule", benelux, "--to", "omnisend:http://127.0.0.1:9",
           home=home.home)
    failing = studio("audiences", "sync", home=home.home)
    assert failing.returncode == 1 and "Traceback" not in failing.stderr
    assert "failed" in failing.stdout
    removed = studio("audiences", "unschedule", str(listed["schedule_id"]), home=home.home)
    assert removed.returncode == 0
    assert len(json.loads(studio("audiences", "schedules", "--json", home=home.home).stdout)) == 1
