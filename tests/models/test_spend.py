"""Expected spend: BG/NBD x Gamma-Gamma against last year's rate, on UCI Online Retail."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from models.spend import backtest_spend, spend_metrics
from studio.errors import UserError


def test_uci_spend_backtest_adds_up_to_the_real_window(retail_con):
    rows = {row.kind: row for row in backtest_spend(retail_con, 90, "2011-09-10")}
    actual = retail_con.execute("""
        WITH buyers AS (
            SELECT DISTINCT customer_id FROM orders
            WHERE kind = 'sale' AND status = 'completed' AND NOT is_guest
              AND ordered_at <= ?)
        SELECT sum(CAST(total AS DECIMAL(18, 2))) FROM orders JOIN buyers USING (customer_id)
        WHERE kind = 'sale' AND status = 'completed' AND NOT is_guest
          AND ordered_at > ? AND ordered_at <= ? + INTERVAL 90 DAY""",
        [datetime(2011, 9, 10, 23, 59, 59, 999999)] * 3).fetchall()[0][0]
    for row in rows.values():
        assert row.metrics["n"] == 3_370
        assert row.metrics["actual_total"] == pytest.approx(float(actual), abs=0.01)
    model = rows["bgnbd_gamma_gamma"]
    assert model.metrics["spearman"] > 0.45  # ranks who spends
    assert model.metrics["spend_capture_at_10"] > 0.45  # top tenth: about half the money
    assert model.flags  # the UCI BG/NBD fit is degenerate, and says so
    assert sum(row.champion for row in rows.values()) == 1


def test_spend_metrics_by_hand():
    actual = np.array([0.0, 10.0, 30.0, 60.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    predicted = np.array([1.0, 5.0, 20.0, 80.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0])
    metrics = spend_metrics(actual, predicted)
    assert metrics["actual_total"] == 100.0 and metrics["predicted_total"] == 110.0
    assert metrics["total_ratio"] == pytest.approx(1.1)
    assert metrics["mae"] == pytest.approx((1 + 5 + 10 + 20 + 4) / 10)
    assert metrics["spend_capture_at_10"] == pytest.approx(0.6)  # the top tenth is one buyer


def test_a_spend_window_past_the_data_is_refused(retail_con):
    with pytest.raises(UserError, match="runs past the data"):
        backtest_spend(retail_con, 90, "2011-11-01")
