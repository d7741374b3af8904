"""``studio ab``: the Hillstrom file, a demo campaign and a plan, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from studio.cli import app
from studio.errors import UserError
from studio.experiments.power import plan_rate_test
from tests.experiments.test_unit_file import HILLSTROM

HILLSTROM_ARGS = ["ab", "analyze", str(HILLSTROM), "--variant-col", "segment", "--control",
                  "No E-Mail", "--metric", "conversion:binary", "--metric", "spend:mean",
                  "--covariate", "history"]
runner = CliRunner()


def test_analyze_hillstrom_as_json():
    result = runner.invoke(app, [*HILLSTROM_ARGS, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["arms"] == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    assert payload["srm"]["observed"] == [21_306, 21_307, 21_387]
    spend = next(c for c in payload["comparisons"]
                 if c["metric"]["name"] == "spend" and c["variant"] == "Mens E-Mail")
    assert spend["significant"] is True
    assert 0 < spend["variance_reduction"] < 0.01
    assert payload["reading"][0].startswith("The split 21,306 / 21,307 / 21,387 matches the plan")


def test_analyze_hillstrom_prints_the_table_and_the_reading():
    result = runner.invoke(app, HILLSTROM_ARGS)
    assert result.exit_code == 0, result.output
    assert "Mens E-Mail" in result.stdout and "+117.6%" in result.stdout
    assert "Chance to win is the probability" in " ".join(result.stdout.split())


@pytest.mark.parametrize(("change", "message"), [
    (("--variant-col", "group"), "The file has no column 'group'"),
    (("--control", "Nobody"), "Control 'Nobody' is not a value of column 'segment'"),
    (("--metric", "zip_code:mean"), "Column 'zip_code' must be numeric, but line 2 holds"),
])
def test_analyze_mistakes_are_user_errors(change, message):
    args = list(HILLSTROM_ARGS)
    args[args.index(change[0]) + 1] = change[1]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception)


def test_an_empty_file_is_one_sentence_and_exit_2_from_the_real_command(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    environment = {**os.environ, "STUDIO_HOME": str(tmp_path / "home")}
    completed = subprocess.run(
        [sys.executable, "-m", "studio", "ab", "analyze", str(empty), "--variant-col", "arm",
         "--control", "A", "--metric", "y:binary"],
        env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    message = " ".join(completed.stderr.split())
    assert message == f"error: {empty} has no rows; it needs a header and one row per unit."


def test_campaign_reads_the_demo_warehouse(demo_home):
    result = runner.invoke(app, ["ab", "campaign", "CMP004", "--cap-percentile", "99.9",
                                 "--cap-nonzero", "--json"],
                           env={"STUDIO_HOME": str(demo_home.home)})
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["arms"] == ["A", "B", "C"]
    assert payload["source"]["campaign_id"] == "CMP004"
    assert payload["source"]["revenue_cap"] > 0
    assert {c["metric"]["name"] for c in payload["comparisons"]} == {
        "open_rate", "click_rate", "conversion_rate", "revenue_per_recipient",
        "average_order_value", "unsubscribe_rate"}
    text = runner.invoke(app, ["ab", "campaign", "CMP004"],
                         env={"STUDIO_HOME": str(demo_home.home)})
    assert text.exit_code == 0, text.output
    assert "CMP004:" in text.stdout and "revenue per recipient" in text.stdout


def test_plan_prints_the_planner_figures():
    result = runner.invoke(app, ["ab", "plan", "--baseline-rate", "0.03", "--mde", "0.1",
                                 "--arms", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == plan_rate_test(0.03, 0.1, arms=3).to_dict()
    text = runner.invoke(app, ["ab", "plan", "--baseline-rate", "0.03", "--mde", "0.1"])
    per_arm = plan_rate_test(0.03, 0.1).units_per_arm
    assert text.stdout.startswith(f"{per_arm:,} units per arm")


def test_plan_from_the_units_at_hand_and_a_wrong_combination():
    result = runner.invoke(app, ["ab", "plan", "--baseline-rate", "0.03", "--units-per-arm",
                                 "53000", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["relative_effect"] == pytest.approx(0.1, abs=0.005)
    both = runner.invoke(app, ["ab", "plan", "--baseline-rate", "0.03", "--mde", "0.1",
                               "--units-per-arm", "100"])
    assert isinstance(both.exception, UserError)
