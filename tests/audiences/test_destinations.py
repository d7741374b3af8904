"""Destination specs, the diff's hashing, and the CLI as a user runs it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys

import polars as pl
import pytest

from studio.audiences.destinations import CsvFile, ParquetFile, SqlMirror, parse_destination
from studio.audiences.diff import (
    canonical_json,
    compare_snapshots,
    diff_audience,
    hash_payload,
    payload_frame,
    payload_of,
    row_hashes,
)
from studio.errors import UserError
from tests.audiences.reference import consented_ids


def test_specs_name_their_destination_and_never_show_a_password(tmp_path):
    assert parse_destination(f"csv:{tmp_path / 'a.csv'}") == CsvFile(tmp_path / "a.csv")
    assert isinstance(parse_destination(f"PARQUET:{tmp_path / 'a.pq'}"), ParquetFile)
    mirror = parse_destination("sql:postgresql://ana:s3cret@db.example/crm#audience_nl")
    assert isinstance(mirror, SqlMirror) and mirror.table.name == "audience_nl"
    assert mirror.description == "sql:postgresql://ana:***@db.example/crm#audience_nl"


@pytest.mark.parametrize(("spec", "message"), [
    ("mailchimp:list", "Unknown destination 'mailchimp:list'"),
    ("audience.csv", "Unknown destination"),
    ("csv:", "A csv destination needs a path"),
    ("csv:/no/such/folder/a.csv", "The folder /no/such/folder does not exist"),
    ("sql:sqlite:///a.db", "needs a URL and a table after '#'"),
    ("sql:sqlite:///a.db#bad-name", "'bad-name' is not a valid table name"),
    ("sql:not a url#audience", "is not a SQLAlchemy database URL"),
    ("omnisend:api.omnisend.com", "'api.omnisend.com' is not an http(s) URL"),
    ("webhook:ftp://example.com/hook", "'ftp://example.com/hook' is not an http(s) URL"),
    ("webhook:", "A webhook destination needs a URL"),
])
def test_bad_specs_are_one_sentence_user_errors(spec, message):
    with pytest.raises(UserError) as caught:
        parse_destination(spec)
    text = str(caught.value)
    assert message in text and text.endswith(".") and "\n" not in text


def test_the_diff_sorts_members_into_adds_updates_removes_and_unchanged():
    rows = pl.DataFrame({"customer_id": ["a", "b", "c"], "email": ["a@x", "b@x", "c@new"],
                         "phone": [None, "+1", ""]})
    hashes = {r["customer_id"]: hash_payload(payload_of(r)) for r in rows.iter_rows(named=True)}
    assert payload_of({"customer_id": "c", "email": "c@new", "phone": ""}) == {
        "customer_id": "c", "email": "c@new"}
    delivered = {"a": hashes["a"], "c": hash_payload({"customer_id": "c", "email": "c@old"}),
                 "gone": "0" * 64}
    mirrored = diff_audience(rows, delivered, mirror=True)
    assert [(c.customer_id, c.action) for c in mirrored.changes] == [
        ("b", "add"), ("c", "update"), ("gone", "remove")]
    assert mirrored.unchanged == 1 and mirrored.changes[1].payload_hash == hashes["c"]
    assert [c.action for c in diff_audience(rows, delivered, mirror=False).changes] == [
        "add", "update"]
    # the hash is of canonical JSON: key order does not matter, values do
    assert hash_payload({"x": 1, "y": 2}) == hash_payload({"y": 2, "x": 1})
    assert hash_payload({"x": 1}) != hash_payload({"x": 2})


def studio(*args: str, home) -> subprocess.CompletedProcess:
    environment = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_USER": "cli-user"}
    environment.pop("STUDIO_STATE_URL", None)
    return subprocess.run([sys.executable, "-m", "studio", *args], env=environment,
                          capture_output=True, text=True, timeout=300)


def test_the_cli_exports_lists_runs_and_explains_bad_specs(home, benelux, tmp_path):
    target = tmp_path / "out.csv"
    done = studio("audiences", "export", benelux, "--to", f"csv:{target}", "--json",
                  home=home.home)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    exported = set(pl.read_csv(target)["customer_id"])
    assert printed["counts"]["sent"] == len(exported) and printed["status"] == "succeeded"
    assert exported <= consented_ids(home)
    runs = json.loads(studio("audiences", "runs", "--json", home=home.home).stdout)
    assert [(r["run_id"], r["created_by"]) for r in runs] == [(printed["run_id"], "cli-user")]
    for spec, fragment in [("ftp:somewhere", "Unknown destination 'ftp:somewhere'"),
                           ("sql:sqlite:///x.db", "needs a URL and a table after '#'"),
                           ("omnisend:https://api.example",
                            "needs STUDIO_OMNISEND_API_KEY")]:
        failed = studio("audiences", "export", benelux, "--to", spec, home=home.home)
        message = " ".join(failed.stderr.split())
        assert failed.returncode == 2 and "Traceback" not in failed.stderr
        assert message.startswith("error: ") and fragment in message
        assert message.count(". ") == 0  # one sentence


def test_the_vectorised_payloads_equal_the_reference_json_byte_for_byte():
    # random rows with what JSON must escape: quotes, backslashes, control characters,
    # non-ASCII and astral characters, empty and missing values, NaN, infinities, tiny floats
    rng = random.Random(11)
    alphabet = ["a", "Z", "0", "@", ".", '"', "\\", "\n", "\x7f", "é", "中", "😀", " ", "/"]

    def text():
        if rng.random() < 0.2:
            return rng.choice([None, ""])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))

    floats = [None, math.nan, math.inf, 0.0, 1.0, 1e-7, 2.5e-05, 123456789.123456789, 0.1]
    rows = pl.DataFrame({
        "customer_id": [f"c{i}" for i in range(3000)],
        "email": [text() for _ in range(3000)], "phone": [text() for _ in range(3000)],
        "score": [rng.choice(floats + [rng.random()]) for _ in range(3000)],
        "model_version": [text() for _ in range(3000)]})
    built = payload_frame(rows)
    expected = [canonical_json(payload_of(row)) for row in rows.iter_rows(named=True)]
    assert built["payload"].to_list() == expected
    assert built["payload_hash"].to_list() == [hashlib.sha256(text.encode()).hexdigest()
                                               for text in expected]


def test_file_diffs_count_by_row_hash():
    before = pl.DataFrame({"customer_id": ["a", "b", "c"], "email": ["a@x", "b@x", "c@x"],
                           "phone": [None, "", "+31"]})
    after = pl.DataFrame({"customer_id": ["b", "c", "d"], "email": ["b@x", "c@new", "d@x"],
                          "phone": [None, "+31", None]})  # b: "" and None are both "unset"
    diff = compare_snapshots(row_hashes(after), row_hashes(before))
    assert diff.frame.rows() == [("c", "update"), ("d", "add"), ("a", "remove")]
    assert diff.unchanged == 1
    assert compare_snapshots(row_hashes(after), row_hashes(after)).frame.is_empty()


def test_file_diffs_of_the_same_members_compare_row_by_row():
    before = pl.DataFrame({"customer_id": ["a", "b"], "email": ["a@x", "b@x"]})
    after = pl.DataFrame({"customer_id": ["a", "b"], "email": ["a@x", "b@new"]})
    diff = compare_snapshots(row_hashes(after), row_hashes(before))
    assert diff.frame.rows() == [("b", "update")] and diff.unchanged == 1
