"""A file of units: the Hillstrom experiment's published figures, and mistakes as sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from studio.errors import UserError
from studio.experiments.analysis import analyze_experiment
from studio.experiments.effects import compute_effect
from studio.experiments.frequentist import run_frequentist_test
from studio.experiments.unit_file import parse_metric, read_unit_file
from tests.conftest import SHARED_DATA
from tests.experiments.printed import assert_printed

HILLSTROM = SHARED_DATA / "hillstrom" / "hillstrom.csv"
METRICS = [parse_metric("conversion:binary"), parse_metric("spend:mean")]


@pytest.fixture(scope="module")
def hillstrom():
    return read_unit_file(HILLSTROM, variant_col="segment", control="No E-Mail",
                          metrics=METRICS, covariate="history")


def test_hillstrom_arm_sizes_conversion_and_spend_are_the_published_ones(hillstrom):
    assert [a.name for a in hillstrom.arms] == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    published = {"Mens E-Mail": (21_307, "1.253", "1.4226"),
                 "Womens E-Mail": (21_387, "0.884", "1.0772"),
                 "No E-Mail": (21_306, "0.573", "0.6528")}
    for name, (units, conversion_percent, spend) in published.items():
        arm = hillstrom.arm(name)
        assert arm.units == units
        assert_printed(100 * arm.statistics["conversion"].mean, conversion_percent)
        assert_printed(arm.statistics["spend"].mean, spend)


def test_hillstrom_mens_vs_no_email_spend_is_the_published_student_t(hillstrom):
    control = hillstrom.arm("No E-Mail").statistics["spend"].post
    mens = hillstrom.arm("Mens E-Mail").statistics["spend"].post
    moments = compute_effect(control, mens, relative=False, equal_variance=True)
    result = run_frequentist_test(moments)
    assert_printed(result.estimate / result.standard_error, "5.3001")
    assert_printed(result.p_value, "1.163e-07")
    assert_printed(result.ci_low, "0.48514")
    assert_printed(result.ci_high, "1.05452")


def test_hillstrom_analysis_agrees_with_the_published_test_and_reports_cuped(hillstrom):
    result = analyze_experiment(hillstrom)
    spend = result.comparison("spend", "Mens E-Mail")
    assert spend.variant_mean - spend.control_mean == pytest.approx(1.4226 - 0.6528, abs=1e-4)
    assert spend.absolute.estimate == pytest.approx(0.7698, abs=0.01)  # CUPED moves it a bit
    assert 0 < spend.variance_reduction < 0.01  # history barely predicts two weeks' spend
    assert spend.significant and not result.srm.flagged
    assert result.srm.p_value == pytest.approx(0.904, abs=0.001)


def test_without_a_covariate_welch_matches_the_published_interval_closely():
    data = read_unit_file(HILLSTROM, variant_col="segment", control="No E-Mail",
                          metrics=[parse_metric("spend:mean")])
    spend = analyze_experiment(data).comparison("spend", "Mens E-Mail")
    assert (spend.absolute.ci_low, spend.absolute.ci_high) == pytest.approx(
        (0.48514, 1.05452), abs=1e-5)  # equal arms: Welch and Student nearly coincide


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "options", "message"), [
    ("arm,y\nA,1\nB,0\n", {"variant_col": "group"},
     "The file has no column 'group'; its columns are arm, y."),
    ("arm,y\nA,1\nB,0\n", {"control": "control"},
     "Control 'control' is not a value of column 'arm'; it holds 'A', 'B'."),
    ("arm,y\nA,1\nB,lots\n", {}, "Column 'y' must be numeric, but line 3 holds 'lots'."),
    ("arm,y\nA,1\nB,\n", {}, "Column 'y' is empty on line 3"),
    ("arm,y\nA,1\nA,0\n", {}, "Column 'arm' holds only 'A'"),
    ("", {}, "has no rows"),
    ("arm,y\n", {}, "has no rows"),
])
def test_mistakes_in_the_file_are_one_sentence(tmp_path, text, options, message):
    path = write(tmp_path / "units.csv", text)
    arguments = {"variant_col": "arm", "control": "A", "metrics": [parse_metric("y:mean")],
                 **options}
    with pytest.raises(UserError) as caught:
        read_unit_file(path, **arguments)
    assert message in str(caught.value)
    assert str(caught.value).count(". ") == 0  # one sentence


def test_a_binary_column_must_hold_0_and_1(tmp_path):
    path = write(tmp_path / "units.csv", "arm,y\nA,1\nB,true\nB,2\n")
    with pytest.raises(UserError, match="declared binary but line 4 holds '2'"):
        read_unit_file(path, variant_col="arm", control="A", metrics=[parse_metric("y:binary")])
    with pytest.raises(UserError, match="must read NAME:binary or NAME:mean"):
        parse_metric("y:ratio")


def test_units_in_two_arms_and_repeated_rows_are_counted(tmp_path):
    path = write(tmp_path / "units.csv",
                 "id,arm,y\n1,A,0\n2,A,1\n2,B,1\n3,B,0\n3,B,0\n4,B,1\n5,,1\n")
    data = read_unit_file(path, variant_col="arm", control="A", unit_col="id",
                          metrics=[parse_metric("y:binary")])
    assert (data.assignment.units_in_several_arms, data.assignment.duplicate_assignments) == (1, 2)
    assert data.notes == ("1 rows have no 'arm' value and were left out.",)
    assert [a.units for a in data.arms] == [2, 4]


def test_capping_winsorises_at_the_pooled_percentile_of_non_zero_values(tmp_path):
    rng = np.random.default_rng(3)
    spend = np.where(rng.random(4000) < 0.1, rng.lognormal(4, 1.5, 4000), 0.0)
    arms = np.where(np.arange(4000) % 2 == 0, "A", "B")
    path = tmp_path / "units.csv"
    pl.DataFrame({"arm": arms, "spend": spend}).write_csv(path)
    data = read_unit_file(path, variant_col="arm", control="A",
                          metrics=[parse_metric("spend:mean")], cap_percentile=95,
                          cap_nonzero=True)
    cap = np.percentile(spend[spend > 0], 95)
    assert data.source["caps"]["spend"] == pytest.approx(cap)
    capped = np.minimum(spend, cap)
    for name in ("A", "B"):
        stat = data.arm(name).statistics["spend"]
        assert stat.sum == pytest.approx(capped[arms == name].sum())
        assert stat.sum_squares == pytest.approx((capped[arms == name] ** 2).sum())
    flat = read_unit_file(path, variant_col="arm", control="A",
                          metrics=[parse_metric("spend:mean")], cap_percentile=80)
    assert "capping erases it" in flat.notes[0]  # 90% zeros: the 80th percentile is 0
