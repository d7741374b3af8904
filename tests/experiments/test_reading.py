"""The plain-language reading and the results table."""

from __future__ import annotations

import math

import polars as pl
import pytest
from statsmodels.stats.power import NormalIndPower

from studio.experiments.analysis import AnalysisSettings, analyze_experiment
from studio.experiments.experiment import Arm, ExperimentData, Metric
from studio.experiments.reading import TABLE_SCHEMA, describe_result, result_frame, result_rows
from studio.experiments.statistics import ProportionStatistic

METRIC = Metric("conversion", "binary", "conversion rate")


def experiment(control: tuple[int, int], treatment: tuple[int, int]) -> ExperimentData:
    arms = tuple(Arm(name, n, {"conversion": ProportionStatistic(n, k)}, 0.5)
                 for name, (n, k) in (("A", control), ("B", treatment)))
    return ExperimentData(arms=arms, control="A", metrics=(METRIC,), unit_name="recipients")


def test_a_flat_result_says_how_many_more_recipients_would_detect_its_lift():
    result = analyze_experiment(experiment((3000, 150), (3000, 165)))
    result_lines = describe_result(result)
    sentence = next(line for line in result_lines if line.startswith("B vs A"))
    assert "not significant yet" in sentence and "a lift of 10.0% with 80% power" in sentence
    more = result.comparison("conversion", "B").more_units_per_arm
    assert f"about {more:,} more recipients per arm" in sentence
    rates = (0.05, 0.055)  # with that many more per arm, a z test has 80% power
    effect = (rates[1] - rates[0]) / math.sqrt(sum(r * (1 - r) for r in rates) / 2)
    assert NormalIndPower().power(effect, nobs1=3000 + more, alpha=0.05) == pytest.approx(
        0.8, abs=0.002)
    assert result_lines[-1].startswith("Chance to win is the probability")
    assert "it is not a p-value" in result_lines[-1]


def test_a_broken_split_leads_the_reading():
    result = analyze_experiment(experiment((1000, 100), (1200, 160)))
    first = describe_result(result)[0]
    assert first.startswith("Sample ratio mismatch: the arms got 1,000 / 1,200 recipients where "
                            "the plan expected about 1,100 / 1,100 (p < 0.001)")


def test_a_clear_win_is_called_significant():
    result = analyze_experiment(experiment((5000, 200), (5000, 300)))
    sentence = describe_result(result)[1]
    assert sentence.startswith("B vs A on conversion rate: +50.0% (")
    assert "significantly better (p < 0.001; chance to win >99%)" in sentence


def test_sequential_settings_are_said_and_shown():
    result = analyze_experiment(experiment((5000, 200), (5000, 300)),
                                AnalysisSettings(planned_units=20_000))
    assert any("Intervals are sequential" in line for line in describe_result(result))
    row = result_rows(result)[1]
    assert row["sequential_lift_low"] < row["lift_low"] < row["lift_high"] < (
        row["sequential_lift_high"])


def test_the_table_has_a_row_per_arm_and_survives_csv(tmp_path):
    result = analyze_experiment(experiment((3000, 150), (3000, 165)))
    frame = result_frame(result)
    assert frame.columns == list(TABLE_SCHEMA)
    assert frame["arm"].to_list() == ["A", "B"]
    assert frame["lift"][0] is None and frame["lift"][1] == pytest.approx(0.1)
    frame.write_csv(tmp_path / "result.csv")
    assert pl.read_csv(tmp_path / "result.csv", schema=TABLE_SCHEMA).equals(frame)
