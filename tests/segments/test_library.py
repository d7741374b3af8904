"""Saved segments: versions, history, membership of other segments, snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from studio.errors import UserError
from studio.segments import library, operations
from studio.segments.definition import DefinitionError, parse_definition
from tests.segments.handmade import AS_OF

GERMANS = {"name": "Germans", "rule": {"profile": {"field": "country", "op": "equals",
                                                   "value": "DE"}}}


def test_saving_adds_versions_only_when_the_rule_changes(shop):
    first = library.save_segment(shop, parse_definition(GERMANS), user="ana", note="start")
    same = library.save_segment(shop, parse_definition(GERMANS), user="bo")
    changed = parse_definition({**GERMANS, "rule": {"profile": {
        "field": "country", "op": "in", "value": ["DE", "AT"]}}})
    second = library.save_segment(shop, changed, user="bo", note="add Austria")
    assert (first["version"], same["version"], same["new"], second["version"]) == (1, 1, False, 2)
    history = library.segment_history(shop, "Germans")
    assert [(h["version"], h["created_by"], h["note"]) for h in history] == [
        (2, "bo", "add Austria"), (1, "ana", "start")]
    assert library.load_segment(shop, "Germans", version=1) == parse_definition(GERMANS)
    assert library.load_segment(shop, "Germans") == changed
    assert [s["name"] for s in library.list_segments(shop)] == ["Germans"]


def test_unknown_names_and_versions_are_user_errors(shop):
    with pytest.raises(UserError, match="No saved segment is called 'Ghosts'"):
        library.load_segment(shop, "Ghosts")
    library.save_segment(shop, parse_definition(GERMANS))
    with pytest.raises(UserError, match="has no version 9"):
        library.load_segment(shop, "Germans", version=9)


def test_membership_uses_the_latest_saved_version_and_refuses_circles(shop, con):
    library.save_segment(shop, parse_definition(GERMANS))
    buyers_in_germans = parse_definition({"name": "German buyers", "rule": {"all": [
        {"segment": {"name": "Germans"}},
        {"orders": {"metric": "count", "op": "gte", "value": 1}}]}})
    assert operations.members(con, buyers_in_germans, AS_OF, library.resolver(shop)) == ["c1"]
    library.save_segment(shop, buyers_in_germans)
    circular = parse_definition({"name": "Germans", "rule": {"segment": {
        "name": "German buyers"}}})
    library.save_segment(shop, circular)
    with pytest.raises(DefinitionError, match="in a circle"):
        operations.members(con, buyers_in_germans, AS_OF, library.resolver(shop))


def test_snapshots_record_members_and_compare_who_entered_and_left(shop, con):
    buyers = parse_definition({"name": "Recent buyers", "rule": {"orders": {
        "metric": "count", "op": "gte", "value": 1, "window": {"last_days": 60}}}})
    library.save_segment(shop, buyers)
    early = library.take_snapshot(shop, con, "Recent buyers", datetime(2024, 4, 15))
    late = library.take_snapshot(shop, con, "Recent buyers", datetime(2024, 7, 10))
    # 15 April: only c2 bought in the 60 days before; 10 July: c1 and c3 (c2's last order
    # is 100 days old and its June order was cancelled)
    assert (early["members"], late["members"]) == (1, 2)
    diff = library.compare_snapshots(shop, early["snapshot_id"], late["snapshot_id"])
    assert diff["entered"] == ["c1", "c3"] and diff["left"] == ["c2"] and diff["stayed"] == 0
    assert [s["snapshot_id"] for s in library.list_snapshots(shop, "Recent buyers")] == [
        late["snapshot_id"], early["snapshot_id"]]
    with pytest.raises(UserError, match="no snapshot 99"):
        library.compare_snapshots(shop, early["snapshot_id"], 99)


def test_resolve_definition_accepts_names_presets_files_and_inline_json(shop, tmp_path):
    library.save_segment(shop, parse_definition(GERMANS))
    assert library.resolve_definition(shop, "Germans").name == "Germans"
    assert library.resolve_definition(shop, "preset:lapsed-vips").name == "Lapsed VIPs"
    assert library.resolve_definition(shop, "abandoned-cart").name == "Abandoned cart"
    path = tmp_path / "s.json"
    path.write_text('{"name": "From a file", "rule": {"rfm": {"groups": ["Lost"]}}}')
    assert library.resolve_definition(shop, str(path)).name == "From a file"
    inline = library.resolve_definition(shop, '{"rule": {"rfm": {"groups": ["New"]}}}')
    assert inline.rule.groups == ("New",)
    with pytest.raises(UserError, match="No preset is called 'x'"):
        library.resolve_definition(shop, "preset:x")
    with pytest.raises(UserError, match="does not exist"):
        library.resolve_definition(shop, str(tmp_path / "missing.yaml"))


def test_a_nameless_segment_cannot_be_saved(shop):
    definition = replace(parse_definition(GERMANS), name="  ")
    with pytest.raises(UserError, match="needs a name"):
        library.save_segment(shop, definition)
