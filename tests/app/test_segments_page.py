"""The Segments page as Streamlit runs it (AppTest), checked against the segment operations."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime

import pytest
from streamlit.testing.v1 import AppTest

from studio.config import Settings
from studio.segments import library, operations
from studio.segments.definition import definition_to_document, node_to_document, parse_definition
from studio.segments.presets import presets
from studio.warehouse import connect_reader
from tests.app.page_checks import assert_clean

pytestmark = pytest.mark.app

PAGE = "../../pages/segments.py"  # relative to this file, as AppTest.from_file resolves it
APP = "../../studio/app.py"
TIMEOUT = 60


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_USER", "page-tester")
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def load(app: AppTest, source: str) -> AppTest:
    app.selectbox(key="segment_source").set_value(source)
    app.button(key="segment_load").click().run()
    assert_clean(app)
    return app


def open_tab(app: AppTest, tab: str) -> AppTest:
    app.session_state["segment_tab"] = tab
    return app.run()


def metric(app: AppTest, label: str) -> int:
    matches = [m.value for m in app.metric if m.label == label]
    assert len(matches) == 1, f"one metric labelled {label!r} expected, got {matches}"
    return int(matches[0].replace(",", ""))


def counts(app: AppTest) -> tuple[int, int, int]:
    return metric(app, "Matched"), metric(app, "E-mail sendable"), metric(app, "SMS sendable")


def rows(app: AppTest) -> list[dict]:
    return app.session_state["segment_tree"]["children"]


def widget(app: AppTest, kind: str, row: dict, slot: str):
    """The widget of a builder row that sets ``slot`` (e.g. number_input, value)."""
    found = [w for w in getattr(app, kind)
             if w.key and w.key.startswith(f"{row['id']}-{row['kind']}-{slot}")]
    assert len(found) == 1, f"one {kind} for {slot} expected, got {[w.key for w in found]}"
    return found[0]


def direct_count(settings: Settings, definition, as_of=None) -> tuple[int, int, int]:
    con = connect_reader(settings)
    try:
        result = operations.count(con, definition, as_of, library.resolver(settings))
    finally:
        con.close()
    return result.matched, result.email_sendable, result.sms_sendable


@pytest.fixture
def writable_home(demo_home, tmp_path) -> Settings:
    """A copy of the demo home, for tests that save: the session's home stays untouched."""
    home = tmp_path / "home"
    shutil.copytree(demo_home.home, home)
    return Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")


def edited(slug: str, change) -> dict:
    """A preset's document with ``change`` applied, built apart from the page."""
    document = definition_to_document(presets()[slug])
    change(document["rule"])
    return document


# ---------------------------------------------------------------- counts


@pytest.mark.parametrize("slug", ["lapsed-vips", "winback-candidates", "abandoned-cart",
                                  "high-intent-no-recent-order"])
def test_a_preset_loaded_through_the_ui_counts_like_the_library(demo_home, monkeypatch, slug):
    app = load(open_page(demo_home.home, monkeypatch), f"preset:{slug}")
    expected = direct_count(demo_home, presets()[slug])
    assert counts(app) == expected
    assert app.session_state["segment_document"]["name"] == presets()[slug].name
    if slug == "lapsed-vips":
        assert expected[0] > expected[1] > 0  # a real audience, not all of it sendable


def test_changing_a_value_changes_the_count(demo_home, monkeypatch):
    app = load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips")
    before = counts(app)
    revenue = rows(app)[0]
    assert revenue["body"]["metric"] == "revenue"
    widget(app, "number_input", revenue, "value").set_value(1000.0).run()
    assert_clean(app)

    def raise_bar(rule):
        rule["all"][0]["orders"]["value"] = 1000

    expected = direct_count(demo_home, parse_definition(edited("lapsed-vips", raise_bar)))
    assert counts(app) == expected
    assert expected[0] < before[0]


def test_the_as_of_date_moves_the_count(demo_home, monkeypatch):
    app = load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips")
    before = counts(app)
    app.date_input(key="segment_as_of").set_value(date(2024, 6, 30)).run()
    assert_clean(app)
    expected = direct_count(demo_home, presets()["lapsed-vips"],
                            datetime(2024, 6, 30, 23, 59, 59))
    assert counts(app) == expected != before


def test_not_on_a_condition_counts_everyone_else(demo_home, monkeypatch):
    app = load(open_page(demo_home.home, monkeypatch), "preset:abandoned-cart")
    matched = metric(app, "Matched")
    app.toggle(key=f"{rows(app)[0]['id']}-not").set_value(True).run()
    assert_clean(app)
    con = connect_reader(demo_home)
    try:
        total = con.sql("SELECT count(*) FROM customers").fetchall()[0][0]
    finally:
        con.close()
    assert metric(app, "Matched") == total - matched
    assert app.session_state["segment_document"]["rule"] == {
        "not": node_to_document(presets()["abandoned-cart"].rule)}


def test_building_nested_groups_from_blank(demo_home, monkeypatch):
    app = open_page(demo_home.home, monkeypatch)
    assert_clean(app)
    assert not app.metric and "Add a condition" in app.info[0].value
    top = app.session_state["segment_tree"]["id"]
    app.button(key=f"{top}-add-condition").click().run()
    first = rows(app)[0]
    assert first["kind"] == "profile" and "Pick at least one value" in " ".join(
        c.value for c in app.caption)
    widget(app, "multiselect", first, "value").set_value(["DE", "AT"]).run()
    app.button(key=f"{top}-add-group").click().run()
    group = rows(app)[1]
    app.button(key=f"{group['id']}-add-group").click().run()
    inner = rows(app)[1]["children"][1]
    assert "group" in inner and f"{inner['id']}-add-group" not in [b.key for b in app.button]
    # the innermost group's condition becomes "consent: e-mail subscribed"
    condition = inner["children"][0]
    app.selectbox(key=f"{condition['id']}-kind").set_value("consent").run()
    assert_clean(app)
    document = app.session_state["segment_document"]
    assert document["rule"]["all"][0] == {"profile": {"field": "country", "op": "in",
                                                      "value": ["DE", "AT"]}}
    nested = document["rule"]["all"][1]["any"]
    assert nested[1] == {"any": [{"consent": {"channel": "email", "status": "subscribed"}}]}
    # the nested group's first row is still an unfinished country condition
    assert not app.metric
    widget(app, "multiselect", rows(app)[1]["children"][0], "value").set_value(["DE"]).run()
    assert counts(app) == direct_count(demo_home, parse_definition(
        app.session_state["segment_document"]))
    app.button(key=f"{rows(app)[1]['id']}-remove").click().run()
    assert len(rows(app)) == 1


# ---------------------------------------------------------------- JSON, errors


def test_bad_json_shows_one_sentence_and_changes_nothing(demo_home, monkeypatch):
    app = load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips")
    before = counts(app)
    [box] = app.text_area
    box.set_value('{"name": "x", "rule": {"orders": {"metric": "profit", "op": "gte", '
                  '"value": 1}}}')
    app.button(key="segment_json_apply").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "rule.orders.metric: unknown metric 'profit'; choose one of count, revenue, "
        "average_order_value, first_order_date, last_order_date"]
    assert counts(app) == before

    app.text_area[0].set_value("{not json").run()
    app.button(key="segment_json_apply").click().run()
    assert not app.exception and len(app.error) == 1
    assert app.error[0].value.startswith("The segment is not valid JSON or YAML")


def test_good_json_replaces_the_builder(demo_home, monkeypatch):
    app = load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips")
    document = {"name": "Germans on e-mail", "rule": {"all": [
        {"profile": {"field": "country", "op": "in", "value": ["DE"]}},
        {"consent": {"channel": "email", "status": "subscribed"}}]}}
    app.text_area[0].set_value(json.dumps(document))
    app.button(key="segment_json_apply").click().run()
    assert_clean(app)
    assert app.text_input(key="segment_name").value == "Germans on e-mail"
    assert [row["kind"] for row in rows(app)] == ["profile", "consent"]
    assert counts(app) == direct_count(demo_home, parse_definition(document))


def test_a_score_condition_without_scores_is_one_friendly_error(demo_home, monkeypatch):
    con = connect_reader(demo_home)
    try:
        assert not operations.has_table(con, "scores")
    finally:
        con.close()
    app = load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips")
    app.selectbox(key=f"{rows(app)[0]['id']}-kind").set_value("score").run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "score conditions need predictive scores, and the warehouse has none yet; train and "
        "score a model first."]
    assert not app.metric


# ---------------------------------------------------------------- explain, preview, SQL, overlap


def test_explain_says_in_for_a_member_and_not_in_otherwise(demo_home, monkeypatch):
    definition = presets()["lapsed-vips"]
    con = connect_reader(demo_home)
    try:
        members = operations.members(con, definition)
        outsider = con.sql("SELECT min(customer_id) FROM customers WHERE customer_id NOT IN "
                           "(SELECT unnest(?::VARCHAR[]))", params=[members]).fetchall()[0][0]
    finally:
        con.close()
    app = open_tab(load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips"),
                   "Explain")
    app.text_input(key="segment_explain_id").set_value(members[0]).run()
    assert_clean(app)
    assert [s.value for s in app.success] == [f"{members[0]} is **in** the segment."]
    tree = app.markdown[-1].value
    assert tree.count(":green-badge[yes]") == 3 and ":red-badge[no]" not in tree

    app.text_input(key="segment_explain_id").set_value(outsider).run()
    assert [w.value for w in app.warning] == [f"{outsider} is **not in** the segment."]
    assert ":red-badge[no]" in app.markdown[-1].value

    app.text_input(key="segment_explain_id").set_value("nobody").run()
    assert not app.exception and len(app.error) == 1 and "'nobody'" in app.error[0].value


def test_preview_pages_and_sorts_like_the_library(demo_home, monkeypatch):
    definition = presets()["lapsed-vips"]
    app = open_tab(load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips"),
                   "Preview")
    app.selectbox(key="segment_preview_sort").set_value("revenue")
    app.segmented_control(key="segment_preview_order").set_value("descending").run()
    matched = metric(app, "Matched")
    pages = -(-matched // 50)
    assert pages >= 2
    app.number_input(key=f"segment_preview_page_{pages}").set_value(2).run()
    assert_clean(app)
    shown = app.dataframe[0].value
    con = connect_reader(demo_home)
    try:
        expected = operations.preview(con, definition, limit=50, offset=50, sort_by="revenue",
                                      descending=True)
    finally:
        con.close()
    assert shown["customer_id"].tolist() == expected["customer_id"].to_list()
    assert shown["revenue"].is_monotonic_decreasing


def test_sql_view_is_the_members_query(demo_home, monkeypatch):
    app = open_tab(load(open_page(demo_home.home, monkeypatch), "preset:winback-candidates"),
                   "SQL")
    assert_clean(app)
    con = connect_reader(demo_home)
    try:
        expected = operations.show_sql(presets()["winback-candidates"],
                                       operations.default_as_of(con), has_scores=False)
        shown_count = con.sql(f"SELECT count(*) FROM ({app.code[0].value})").fetchall()[0][0]
    finally:
        con.close()
    assert app.code[0].language == "sql" and app.code[0].value == expected
    assert shown_count == metric(app, "Matched")


def test_overlap_of_presets_and_the_draft(demo_home, monkeypatch):
    app = open_tab(load(open_page(demo_home.home, monkeypatch), "preset:lapsed-vips"),
                   "Overlap")
    assert "Pick two or more" in app.info[0].value
    app.multiselect(key="segment_overlap").set_value(
        ["current", "preset:winback-candidates"]).run()
    assert_clean(app)
    table = app.dataframe[0].value
    con = connect_reader(demo_home)
    try:
        expected = operations.overlap(con, {"a": presets()["lapsed-vips"],
                                            "b": presets()["winback-candidates"]})
    finally:
        con.close()
    assert table["customers"].tolist() == expected["customers"].to_list()
    assert table["segments"].tolist()[-1] == ("Lapsed VIPs (draft) & Winback candidates "
                                              "(preset)")
    assert len(app.get("plotly_chart")) == 1


# ---------------------------------------------------------------- saving, history, snapshots


def test_saving_creates_version_one_then_two(writable_home, monkeypatch):
    app = load(open_page(writable_home.home, monkeypatch), "preset:lapsed-vips")
    app.text_input(key="segment_name").set_value("Page VIPs").run()
    open_tab(app, "Save & history")
    assert "Save the segment to keep its versions" in app.info[0].value
    app.text_input(key="segment_note").set_value("first cut").run()
    app.button(key="segment_save").click().run()
    assert_clean(app)
    history = library.segment_history(writable_home, "Page VIPs")
    assert [(h["version"], h["note"], h["created_by"]) for h in history] == [
        (1, "first cut", "page-tester")]
    assert [t.value for t in app.toast] == ["Saved “Page VIPs” as version 1."]

    open_tab(app, "Conditions")
    widget(app, "number_input", rows(app)[0], "value").set_value(750.0).run()
    open_tab(app, "Save & history")
    app.button(key="segment_save").click().run()
    assert_clean(app)
    history = library.segment_history(writable_home, "Page VIPs")
    assert [h["version"] for h in history] == [2, 1]
    saved = parse_definition(history[0]["definition"])
    assert saved.rule.children[0].value == 750
    assert "The builder holds version 2." in [c.value for c in app.caption]

    app.button(key="segment_save").click().run()  # the same rule again: no new version
    assert [h["version"] for h in library.segment_history(writable_home, "Page VIPs")] == [2, 1]
    assert "already has exactly this rule" in app.toast[0].value


def test_a_segment_needs_a_name_to_be_saved(writable_home, monkeypatch):
    app = open_tab(load(open_page(writable_home.home, monkeypatch), "preset:lapsed-vips"),
                   "Save & history")
    app.text_input(key="segment_name").set_value("").run()
    app.button(key="segment_save").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "A saved segment needs a name; give the segment a 'name'."]
    assert library.list_segments(writable_home) == []


def test_history_and_snapshots(writable_home, monkeypatch):
    app = load(open_page(writable_home.home, monkeypatch), "preset:lapsed-vips")
    open_tab(app, "Save & history")
    app.button(key="segment_save").click().run()
    app.date_input(key="segment_as_of").set_value(date(2024, 6, 30)).run()
    app.button(key="segment_snapshot").click().run()
    app.date_input(key="segment_as_of").set_value(date(2024, 12, 31)).run()
    app.button(key="segment_snapshot").click().run()
    assert_clean(app)
    snapshots = library.list_snapshots(writable_home, "Lapsed VIPs")
    assert [s["as_of"] for s in snapshots] == [datetime(2024, 12, 31, 23, 57, 20),
                                              datetime(2024, 6, 30, 23, 59, 59)]
    change = library.compare_snapshots(writable_home, snapshots[1]["snapshot_id"],
                                       snapshots[0]["snapshot_id"])
    assert metric(app, "Entered") == len(change["entered"]) > 0
    assert metric(app, "Left") == len(change["left"])
    assert metric(app, "Stayed") == change["stayed"]
    assert snapshots[0]["members"] == metric(app, "Matched")

    # an older version's JSON can be read and loaded back
    open_tab(app, "Conditions")
    widget(app, "number_input", rows(app)[0], "value").set_value(900.0).run()
    open_tab(app, "Save & history")
    app.button(key="segment_save").click().run()
    assert "The builder holds version 2." in [c.value for c in app.caption]
    app.selectbox(key="segment_history_version_2").set_value(1).run()
    assert json.loads(app.code[0].value)["rule"]["all"][0]["orders"]["value"] == 500
    app.button(key="segment_load_version").click().run()
    assert rows(app)[0]["body"]["value"] == 500
    assert "The builder holds version 1." in [c.value for c in app.caption]


# ---------------------------------------------------------------- the page in the app


def test_the_router_serves_the_page_and_the_draft_survives_a_visit_elsewhere(
        demo_home, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(demo_home.home))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.switch_page("../pages/segments.py").run()
    assert_clean(app)
    assert [t.value for t in app.title] == ["Segments"]
    load(app, "preset:winback-candidates")
    app.text_input(key="segment_name").set_value("My winback").run()
    app.date_input(key="segment_as_of").set_value(date(2024, 10, 31)).run()
    before = counts(app)

    app.switch_page("../pages/overview.py").run()
    assert [t.value for t in app.title] == ["Overview"]
    app.switch_page("../pages/segments.py").run()
    assert_clean(app)
    assert app.text_input(key="segment_name").value == "My winback"
    assert app.date_input(key="segment_as_of").value == date(2024, 10, 31)
    assert counts(app) == before == direct_count(
        demo_home, presets()["winback-candidates"], datetime(2024, 10, 31, 23, 59, 59))


def test_an_empty_home_shows_how_to_load_data(tmp_path, monkeypatch):
    app = open_page(tmp_path / "nothing-here", monkeypatch)
    assert_clean(app)
    assert len(app.info) == 1 and "make demo" in app.info[0].value
    assert not app.metric
