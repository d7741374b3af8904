"""The Exports page's library: the destination form as a spec, downloads, tables, secrets."""

from __future__ import annotations

import polars as pl
import pytest

from studio import export_page as page
from studio.audiences import history
from studio.audiences.runner import ExportResult, export_audience
from studio.errors import UserError
from tests.audiences.conftest import benelux_home
from tests.audiences.reference import consented_ids, ids_in_countries


@pytest.fixture
def home(demo_home, tmp_path, monkeypatch):
    """A writable copy of the demo warehouse with the saved segment "Benelux"."""
    settings = benelux_home(demo_home, tmp_path / "home")
    monkeypatch.setenv("STUDIO_USER", "tester")
    return settings


# ---------------------------------------------------------------- the form as a spec


def test_file_specs_name_one_file_per_audience_under_the_exports_folder(settings):
    spec = page.destination_spec(settings, "Lapsed VIPs", "csv")
    kind, _, path = spec.partition(":")
    assert kind == "csv" and (settings.home / "exports").is_dir()
    assert path.startswith(f"{settings.home / 'exports'}/lapsed-vips-")
    assert path.endswith("-email.csv")
    assert page.destination_spec(settings, "Lapsed VIPs", "csv") == spec  # stable
    others = {page.destination_spec(settings, "Lapsed VIPs", "parquet"),
              page.destination_spec(settings, "Lapsed VIPs", "csv", channel="sms"),
              page.destination_spec(settings, "Lapsed VIPs", "csv", top_n=100,
                                    score_target="purchase_90d"),
              page.destination_spec(settings, "lapsed-vips", "csv")}  # same slug, other name
    assert len(others) == 4 and spec not in others


def test_remote_specs_are_the_cli_forms(settings):
    assert page.destination_spec(settings, "S", "sql", url=" sqlite:///a.db ",
                                 table="aud") == "sql:sqlite:///a.db#aud"
    assert page.destination_spec(settings, "S", "omnisend",
                                 url="https://api.omnisend.com") == (
        "omnisend:https://api.omnisend.com")
    assert page.destination_spec(settings, "S", "webhook", url="https://x.test/h?t=1") == (
        "webhook:https://x.test/h?t=1")


@pytest.mark.parametrize(("kind", "fields", "message"), [
    ("sql", {"table": "audience"}, "Give the database's SQLAlchemy URL, such as "
     "sqlite:///audience.db or postgresql://host/marketing."),
    ("sql", {"url": "sqlite:///a.db"}, "Give the table to keep the audience in, such as "
     "audience."),
    ("sql", {"url": "sqlite:///a.db", "table": "1st"}, "'1st' is not a valid table name; use "
     "letters, digits and underscores, starting with a letter."),
    ("omnisend", {}, "Give the send engine's base URL, such as https://api.omnisend.com."),
    ("webhook", {"url": "example.com"}, "'example.com' is not an http(s) URL; write it like "
     "webhook:https://example.com."),
    ("ftp", {}, "Unknown destination kind 'ftp'; choose one of csv, parquet, sql, omnisend, "
     "webhook."),
])
def test_an_incomplete_form_is_one_sentence(settings, kind, fields, message):
    with pytest.raises(UserError) as raised:
        page.destination_spec(settings, "S", kind, **fields)
    assert str(raised.value) == message


def test_top_n_needs_a_target_only_when_asked_for():
    assert page.check_top_n(False, 50, "purchase_90d") == (None, None)
    assert page.check_top_n(True, 50, "purchase_90d") == (50, "purchase_90d")
    with pytest.raises(UserError, match="needs a score target"):
        page.check_top_n(True, 50, None)


# ---------------------------------------------------------------- secrets, score targets


def test_a_secret_is_reported_as_configured_never_shown(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.delenv("STUDIO_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("STUDIO_OMNISEND_API_KEY", raising=False)
    assert page.secret_configured("webhook") == ("STUDIO_WEBHOOK_SECRET", False)
    assert page.secret_configured("csv") is None
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('STUDIO_WEBHOOK_SECRET = "s3"\n')
    assert page.secret_configured("webhook") == ("STUDIO_WEBHOOK_SECRET", True)
    monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", "k")
    assert page.secret_configured("omnisend") == ("STUDIO_OMNISEND_API_KEY", True)


# ---------------------------------------------------------------- downloads and tables


def test_only_the_latest_file_run_of_an_audience_offers_its_download(home, tmp_path):
    spec = page.destination_spec(home, "Benelux", "csv")
    dry = export_audience(home, "Benelux", spec, dry_run=True)
    first = export_audience(home, "Benelux", spec)
    outside = export_audience(home, "Benelux", f"csv:{tmp_path / 'elsewhere.csv'}")
    run = history.get_run(home, first.run_id)
    download = page.run_download(home, run)
    path = page.export_path(home, "Benelux", "csv")
    assert download.read() == path.read_bytes() and download.mime == "text/csv"
    assert download.file_name == f"{path.stem}-run-{first.run_id}.csv"
    shown = pl.read_csv(download.read())
    expected = ids_in_countries(home, ["NL", "BE"]) & consented_ids(home)
    assert sorted(shown["customer_id"]) == sorted(expected)
    assert page.run_download(home, history.get_run(home, dry.run_id)) is None
    assert page.run_download(home, history.get_run(home, outside.run_id)) is None  # not ours
    second = export_audience(home, "Benelux", spec)
    assert page.run_download(home, run) is None  # the file now holds the second run
    assert page.run_download(home, history.get_run(home, second.run_id)) is not None
    # offered before the second export, clicked after: the sentence, not the wrong file
    assert download.read() == page.REPLACED.encode()


def test_the_runs_table_holds_each_runs_counts(home):
    assert page.runs_frame([]).columns == page.RUN_COLUMNS
    spec = page.destination_spec(home, "Benelux", "parquet")
    result = export_audience(home, "Benelux", spec)
    frame = page.runs_frame(history.list_runs(home))
    assert frame.columns == page.RUN_COLUMNS
    row = frame.row(0, named=True)
    assert (row["run"], row["status"], row["dry_run"], row["created_by"]) == (
        result.run_id, "succeeded", False, "tester")
    assert {k: row[k] for k in result.counts} == result.counts
    assert page.run_label(history.get_run(home, result.run_id)) == (
        f"Run {result.run_id} · Benelux v1 → {spec} · succeeded")
    assert page.dead_letters_frame(home, result.run_id).is_empty()


def test_a_dry_runs_diff_and_samples_as_tables():
    result = ExportResult(
        7, "succeeded", True, "csv:/x.csv", {}, changes={
            "add": [f"C{i}" for i in range(8)], "update": ["D1"], "remove": []},
        samples=[{"action": "add", "customer_id": "C0", "email": "a@x"},
                 {"action": "update", "customer_id": "D1", "score": 0.5}])
    examples = page.diff_examples(result, limit=3)
    assert examples.to_dicts() == [
        {"action": "To add", "customers": 8, "first_ids": "C0, C1, C2"},
        {"action": "To update", "customers": 1, "first_ids": "D1"},
        {"action": "To remove", "customers": 0, "first_ids": ""}]
    samples = page.samples_frame(result)
    assert samples["customer_id"].to_list() == ["C0", "D1"]
    assert samples["score"].to_list() == [None, 0.5]
    assert page.samples_frame(ExportResult(1, "succeeded", True, "x", {})).is_empty()


def test_reconciliation_reads_from_the_segment_to_the_confirmations():
    counts = {"matched": 639, "consented": 401, "to_add": 401, "to_update": 0,
              "to_remove": 0, "unchanged": 0, "sent": 396, "failed": 3, "dead": 2}
    assert [(f.label, f.value) for f in page.reconciliation(counts)] == [
        ("Matched", 639), ("Consented", 401), ("Sent", 396), ("Failed", 3), ("Dead", 2)]
    assert [f.value for f in page.diff_figures(counts)] == [639, 401, 401, 0, 0, 0]


def test_a_failed_sync_has_an_error_and_no_counts():
    frame = page.sync_frame([
        {"schedule_id": 1, "segment": "A", "destination": "csv:/a.csv", "channel": "email",
         "run_id": 4, "status": "succeeded", "error": None,
         "counts": {"consented": 10, "sent": 10, "dead": 0}},
        {"schedule_id": 2, "segment": "B", "destination": "sql:x#t", "channel": "email",
         "run_id": None, "status": "failed", "error": "No saved segment is called 'B'.",
         "counts": {}}])
    assert frame.select("run", "status", "sent", "error").rows() == [
        (4, "succeeded", 10, None), (None, "failed", None, "No saved segment is called 'B'.")]
