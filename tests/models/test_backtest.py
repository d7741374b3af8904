"""Time-based backtests on real data: UCI Online Retail at the published protocol's cutoff."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from scipy.special import logit

from models.backtest import Origin, Target, backtest, earlier_windows
from models.calibration import fit_calibration, seasonal_offset
from studio.errors import UserError


def test_the_windows_of_an_origin_follow_each_other_without_overlap(retail_con):
    origin = Origin(date(2011, 9, 10), 90)
    assert origin.calibration_cutoff == origin.test_cutoff - timedelta(days=90)
    assert origin.train_cutoff == origin.calibration_cutoff - timedelta(days=90)
    # the extra training windows end their labels before the calibration window starts
    extra = earlier_windows(retail_con, Target("purchase", 90), origin)
    assert [w.cutoff for w in extra] == [date(2011, 2, 12), date(2011, 1, 13)]
    assert all(w.cutoff + timedelta(days=90) < origin.calibration_cutoff for w in extra)


@pytest.fixture(scope="module")
def uci_rows(retail_con):
    return backtest(retail_con, Target("purchase", 90), "2011-09-10")


def test_uci_backtest_reaches_the_published_level(uci_rows):
    by_kind = {row.kind: row for row in uci_rows}
    assert set(by_kind) == {"lightgbm", "logistic", "heuristic", "bgnbd"}
    for row in uci_rows:  # the published protocol's population and base rate
        assert row.metrics["n"] == 3_370
        assert row.metrics["positives"] == 1_921
    # published same-protocol AUROCs: BG/NBD 0.733, logistic 0.740, frequency alone 0.723
    assert by_kind["bgnbd"].metrics["auroc"] == pytest.approx(0.733, abs=0.005)
    assert by_kind["logistic"].metrics["auroc"] == pytest.approx(0.740, abs=0.01)
    assert max(row.metrics["auroc"] for row in uci_rows) >= 0.73
    champion = [row for row in uci_rows if row.champion]
    assert len(champion) == 1
    assert champion[0].metrics["auroc"] == max(row.metrics["auroc"] for row in uci_rows)


def test_uci_bgnbd_fit_is_flagged_degenerate(uci_rows):
    bgnbd = next(row for row in uci_rows if row.kind == "bgnbd")
    assert bgnbd.flags and "degenerate" in bgnbd.flags[0]


def test_uci_calibration_tables_add_up(uci_rows):
    for row in uci_rows:
        table = row.calibration
        assert table["count"].sum() == row.metrics["n"]
        weighted = (table["actual_rate"] * table["count"]).sum() / table["count"].sum()
        assert weighted == pytest.approx(row.metrics["actual_rate"], abs=1e-9)


def test_too_little_history_is_refused_in_one_sentence(retail_con):
    with pytest.raises(UserError, match="Too little history to train purchase_90d"):
        backtest(retail_con, Target("purchase", 90), "2011-04-01")


def test_a_test_window_past_the_data_is_refused(retail_con):
    with pytest.raises(UserError, match="runs past the data; choose a cutoff on or before "
                                        "2011-09-10"):
        backtest(retail_con, Target("purchase", 90), "2011-10-01")


def test_unknown_targets_and_horizons_are_refused():
    with pytest.raises(UserError, match="Unknown target 'revenue'"):
        Target("revenue", 90)
    with pytest.raises(UserError, match="horizon of 0 days"):
        Target("purchase", 0)


def test_platt_calibration_matches_the_rate_of_its_window():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.05, 0.9, 20_000)
    labels = rng.uniform(size=truth.size) < truth
    raw = np.clip(truth * 0.6, 1e-3, None)  # ranks right, but far too low
    calibration = fit_calibration(raw, labels, is_probability=True)
    calibrated = calibration.apply(raw)
    assert calibrated.mean() == pytest.approx(labels.mean(), abs=1e-3)
    assert calibration.slope > 0
    assert np.corrcoef(calibrated, truth)[0, 1] > 0.99


def test_the_seasonal_offset_is_the_difference_of_log_odds():
    assert seasonal_offset(0.5, 0.4) == pytest.approx(logit(0.5) - logit(0.4))
    assert seasonal_offset(None, 0.4) == 0.0
