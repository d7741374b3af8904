"""The Exports page as Streamlit runs it (AppTest), checked against independent SQL counts,
the files and tables it writes, and a real send engine on 127.0.0.1."""

from __future__ import annotations

import io
import math

import polars as pl
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from studio.audiences import history, outbox, schedules
from studio.warehouse import connect_reader, writer
from tests.app.page_checks import assert_clean, record_downloads, stored_file
from tests.audiences.conftest import benelux_home
from tests.audiences.reference import consented_ids, ids_in_countries
from tests.audiences.send_engine import SendEngine

pytestmark = pytest.mark.app

PAGE = "../../pages/exports.py"  # relative to this file, as AppTest.from_file resolves it
TIMEOUT = 30
API_KEY = "sk-page-4e1d7a"


@pytest.fixture
def home(demo_home, tmp_path, monkeypatch):
    """A writable copy of the demo home with the saved segment "Benelux" (NL and BE)."""
    settings = benelux_home(demo_home, tmp_path / "home")
    monkeypatch.setenv("STUDIO_USER", "page-tester")
    for name in ("STUDIO_OMNISEND_API_KEY", "STUDIO_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return settings


@pytest.fixture
def audience(home) -> tuple[set[str], set[str]]:
    """Benelux's members and its e-mail audience, by plain SQL apart from the studio."""
    members = ids_in_countries(home, ["NL", "BE"])
    return members, members & consented_ids(home, "email")


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def figures(app: AppTest, box: str) -> dict[str, int]:
    """The metrics inside the keyed container ``box``, as numbers."""
    return {m.label: int(m.value.replace(",", "")) for m in app.container(box).metric}


def table(app: AppTest, *columns: str):
    """The one table on the page with these columns (AppTest keeps no table keys)."""
    frames = [d.value for d in app.dataframe if set(columns) <= set(d.value.columns)]
    assert len(frames) == 1, f"one table with columns {columns} expected, got {len(frames)}"
    return frames[0]


def click(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click().run()
    return app


def choose_destination(app: AppTest, kind: str, **fields: str) -> AppTest:
    app.selectbox(key="exports_kind").set_value(kind).run()
    for key, value in fields.items():
        app.text_input(key=key).set_value(value)
    return app.run()


def downloaded(app: AppTest, stores, key: str):
    [button] = [b for b in app.get("download_button") if key in b.proto.id]
    return stored_file(stores, button)


def all_text(app: AppTest) -> str:
    """Everything the page shows as text, tables included."""
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "success",
                                  "error", "text") for e in getattr(app, kind)]
    parts += [frame.value.to_csv() for frame in app.dataframe]
    parts += [str(m.value) for m in app.metric]
    return "\n".join(map(str, parts))


# ---------------------------------------------------------------- dry run, files


def test_a_dry_run_shows_the_independent_counts_and_sends_nothing(home, audience,
                                                                   monkeypatch):
    members, consented = audience
    assert len(members) == 639 and 0 < len(consented) < 639
    app = click(open_page(home.home, monkeypatch), "exports_dry_run")
    assert_clean(app)
    assert figures(app, "exports_result_box") == {
        "Matched": 639, "Consented": len(consented), "To add": len(consented),
        "To update": 0, "To remove": 0, "Unchanged": 0}
    diff = table(app, "first_ids")
    first = sorted(consented)[:5]
    assert diff["customers"].tolist() == [len(consented), 0, 0]
    assert diff["first_ids"].tolist() == [", ".join(first), "", ""]
    samples = table(app, "action", "email")
    assert samples["customer_id"].tolist() == first
    assert set(samples["action"]) == {"add"} and set(samples["country"]) <= {"NL", "BE"}
    # recorded as a dry run, nothing queued, no file written
    [run] = history.list_runs(home)
    assert run["dry_run"] and run["status"] == "succeeded"
    assert outbox.item_counts(home, run["run_id"]) == dict.fromkeys(
        ("pending", "sent", "failed", "dead"), 0)
    assert not list((home.home / "exports").glob("*.csv"))
    assert not app.get("download_button")


def test_a_csv_export_downloads_exactly_the_consented_members(home, audience, monkeypatch):
    _members, consented = audience
    stores = record_downloads(monkeypatch)
    app = click(open_page(home.home, monkeypatch), "exports_run")
    assert_clean(app)
    assert figures(app, "exports_result_box") == {
        "Matched": 639, "Consented": len(consented), "Sent": len(consented), "Failed": 0,
        "Dead": 0}
    [run] = history.list_runs(home)
    stored = downloaded(app, stores, "exports_download")
    assert stored.filename.endswith(f"-email-run-{run['run_id']}.csv")
    rows = pl.read_csv(io.BytesIO(stored.content), schema_overrides={"phone": pl.String})
    assert sorted(rows["customer_id"]) == sorted(consented)  # exactly once each
    assert set(rows["country"]) <= {"NL", "BE"} and rows["email"].null_count() == 0

    # the history row, with who ran it and its counts
    shown = table(app, "dry_run")
    assert shown.to_dict("records")[0] | {"started": None} == {
        "run": run["run_id"], "segment": "Benelux", "version": 1,
        "destination": run["destination"], "status": "succeeded", "dry_run": False,
        "started": None, "matched": 639, "consented": len(consented),
        "to_add": len(consented), "to_update": 0, "to_remove": 0, "unchanged": 0,
        "sent": len(consented), "failed": 0, "dead": 0, "created_by": "page-tester"}
    assert run["destination"].startswith(f"csv:{(home.home / 'exports').resolve()}/")

    # the file stays the audience's: a dry run now finds everyone unchanged
    click(app, "exports_dry_run")
    assert_clean(app)
    assert figures(app, "exports_result_box")["Unchanged"] == len(consented)
    assert figures(app, "exports_result_box")["To add"] == 0


def test_a_sql_export_mirrors_the_audience_into_sqlite(home, audience, monkeypatch,
                                                       tmp_path):
    _members, consented = audience
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    app = choose_destination(open_page(home.home, monkeypatch), "sql",
                             exports_sql_url=url, exports_sql_table="benelux_audience")
    click(app, "exports_run")
    assert_clean(app)
    with sa.create_engine(url).connect() as connection:
        mirrored = [row[0] for row in connection.execute(
            sa.text("SELECT customer_id FROM benelux_audience"))]
    assert sorted(mirrored) == sorted(consented)
    assert figures(app, "exports_result_box")["Sent"] == len(consented)
    assert table(app, "dry_run")["destination"].tolist() == [
        f"sql:{url}#benelux_audience"]


def test_top_n_by_score_ranks_the_consented_members(home, audience, monkeypatch):
    _members, consented = audience
    with writer(home) as con:
        con.execute("CREATE TABLE scores (customer_id VARCHAR, target VARCHAR, "
                    "model_version VARCHAR, score DOUBLE, decile INTEGER, scored_at TIMESTAMP)")
        con.execute("INSERT INTO scores SELECT customer_id, 'purchase_90d', 'v1', "
                    "hash(customer_id || 'x') % 1000 / 1000, NULL, TIMESTAMP '2024-01-01' "
                    "FROM customers")
        score = dict(con.execute("SELECT customer_id, score FROM scores").fetchall())
    top = sorted(consented, key=lambda i: (-score[i], i))[:25]
    app = open_page(home.home, monkeypatch)
    app.toggle(key="exports_top").set_value(True).run()
    app.number_input(key="exports_top_n").set_value(25)
    assert app.selectbox(key="exports_top_by").value == "purchase_90d"
    click(app, "exports_run")
    assert_clean(app)
    assert figures(app, "exports_result_box")["Consented"] == 25
    [run] = history.list_runs(home)
    assert (run["top_n"], run["score_target"]) == (25, "purchase_90d")
    assert run["destination"].endswith("-email-top25-purchase_90d.csv")
    written = pl.read_csv(run["destination"].partition(":")[2])
    assert sorted(written["customer_id"]) == sorted(top)


# ---------------------------------------------------------------- the send engine


def test_dead_letters_are_listed_and_retried_against_the_send_engine(home, audience,
                                                                     monkeypatch):
    _members, consented = audience
    with connect_reader(home) as con:
        emails = dict(con.execute("SELECT customer_id, email FROM customers").fetchall())
    rejected = sorted(consented)[:2]
    with SendEngine(api_key=API_KEY, polls_in_progress=0) as engine:
        engine.item_failures = {f"email:{emails[i]}": math.inf for i in rejected}
        app = choose_destination(open_page(home.home, monkeypatch), "omnisend",
                                 exports_omnisend_url=engine.url)
        assert [w.value for w in app.warning] == [
            "STUDIO_OMNISEND_API_KEY is not set; set it in the environment or in "
            ".streamlit/secrets.toml before exporting (a dry run needs none)."]
        monkeypatch.setenv("STUDIO_OMNISEND_API_KEY", API_KEY)
        app.run()
        assert any(c.value.endswith("STUDIO_OMNISEND_API_KEY is configured.")
                   for c in app.caption)

        click(app, "exports_run")
        assert_clean(app)
        assert figures(app, "exports_result_box") == {
            "Matched": 639, "Consented": len(consented), "Sent": len(consented) - 2,
            "Failed": 0, "Dead": 2}
        dead = table(app, "attempts", "last_error")
        assert sorted(dead["customer_id"]) == rejected
        assert set(dead["attempts"]) == {outbox.MAX_ATTEMPTS}
        assert all("rejected" in error for error in dead["last_error"])
        assert API_KEY not in all_text(app)  # the engine echoes the key; the page must not

        engine.item_failures.clear()
        click(app, "exports_retry")
        assert_clean(app)
        [run] = history.list_runs(home)
        assert [s.value for s in app.success] == [
            f"Run {run['run_id']} is now succeeded: {len(consented):,} sent, 0 dead."]
        assert figures(app, "exports_run_box")["Dead"] == 0
        assert "No dead letters in this run." in [c.value for c in app.caption]
        owners = {c["customProperties"]["studio_customer_id"] for c in engine.contacts.values()}
        assert owners == consented and set(engine.applied.values()) == {1}


# ---------------------------------------------------------------- schedules


def test_keep_in_sync_schedules_the_export_and_sync_all_refreshes_it(home, audience,
                                                                      monkeypatch):
    _members, consented = audience
    app = click(open_page(home.home, monkeypatch), "exports_schedule")
    assert_clean(app)
    [schedule] = schedules.list_schedules(home)
    assert schedule["segment"] == "Benelux" and schedule["created_by"] == "page-tester"
    assert table(app, "last_synced")["schedule"].tolist() == [
        schedule["schedule_id"]]

    click(app, "exports_sync")
    assert_clean(app)
    synced = table(app, "run", "error").to_dict("records")
    [run] = history.list_runs(home)
    assert [(s["run"], s["status"], s["consented"], s["sent"]) for s in synced] == [
        (run["run_id"], "succeeded", len(consented), len(consented))]
    path = run["destination"].partition(":")[2]
    assert sorted(pl.read_csv(path)["customer_id"]) == sorted(consented)

    click(app, "exports_schedule_remove")
    assert_clean(app)
    assert schedules.list_schedules(home) == []


# ---------------------------------------------------------------- mistakes, empty states


@pytest.mark.parametrize(("kind", "fields", "message"), [
    ("sql", {"exports_sql_url": "not a url", "exports_sql_table": "audience"},
     "'not a url' is not a SQLAlchemy database URL; write it like "
     "sql:sqlite:///audience.db#audience."),
    ("sql", {"exports_sql_url": "sqlite:///x.db", "exports_sql_table": "drop table x;"},
     "'drop table x;' is not a valid table name; use letters, digits and underscores, "
     "starting with a letter."),
    ("webhook", {"exports_webhook_url": "ftp://example.com/hook"},
     "'ftp://example.com/hook' is not an http(s) URL; write it like "
     "webhook:https://example.com."),
])
def test_bad_input_is_one_sentence_and_writes_nothing(home, monkeypatch, tmp_path, kind,
                                                      fields, message):
    monkeypatch.chdir(tmp_path)  # where a relative sqlite URL would land
    app = choose_destination(open_page(home.home, monkeypatch), kind, **fields)
    for button in ("exports_dry_run", "exports_run", "exports_schedule"):
        click(app, button)
        assert not app.exception
        assert [e.value for e in app.error] == [message]
    assert history.list_runs(home) == [] and schedules.list_schedules(home) == []
    assert history.audit_entries(home) == []
    assert list(tmp_path.iterdir()) == [home.home]  # no database file appeared


def test_without_saved_segments_the_page_points_to_the_segments_page(demo_home,
                                                                      monkeypatch):
    app = open_page(demo_home.home, monkeypatch)
    assert_clean(app)
    assert [i.value for i in app.info] == [
        "No saved segments yet: build one on the Segments page and save it, then come back "
        "to export it."]
    assert not app.button


def test_without_a_warehouse_the_page_says_how_to_load_data(settings, monkeypatch):
    app = open_page(settings.home, monkeypatch)
    assert_clean(app)
    assert "No data yet" in app.info[0].value and not app.button
