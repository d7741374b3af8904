"""What only the generator knows: the latent traits and the campaigns' true effects.

``truth/customers.parquet`` holds each customer's purchase rate, drop-out and the other
latent traits, for judging churn and purchase models. ``truth/campaigns.json`` holds,
per campaign and variant, the probability of a campaign-induced order and, for A/B
tests, the true effects against control. Only recipients still alive five days after
the send can be induced to buy (``share_alive``); ``p`` is the induced-order probability.

* ``induced_orders_per_recipient``: ``(p_v - p_control) * share_alive``;
* ``conversion_5d``: the effect on the share of recipients with a *completed* order in
  ``(sent_at, sent_at + 5 days]``. A recipient who orders anyway in that window (for
  other reasons) converts whatever the variant, so the effect is
  ``completed_share * (p_v - p_control) * share_open``, ``share_open`` being the share
  of this campaign's recipients alive and without such another order;
* ``completed_revenue_per_recipient``: ``completed_share * (p_v - p_control) *
  share_alive`` times the expected total of a campaign-induced order.

These are expectations over the random assignment, given everything else the generator
drew, so an unbiased estimate from the files converges on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from etl.generate.activity_files import write_parquet
from etl.generate.baskets import expected_subtotal_cents
from etl.generate.campaign_plan import CONVERSION_WINDOW_DAYS, Campaign
from etl.generate.catalogue import CATEGORY_NAMES, Catalogue
from etl.generate.columns import Columns
from etl.generate.orders import PROMO_CODE_USE, STATUS_SHARES
from etl.generate.population import Population
from etl.generate.seasons import AS_OF_S, DAY, HISTORY_START_S
from etl.generate.text import id_text, lookup, time_text

COMPLETED_SHARE = STATUS_SHARES[0]


def write_customer_truth(path: Path, population: Population) -> int:
    """``truth/customers.parquet``: one row per customer with the latent traits."""
    churned = population.churn_at <= AS_OF_S
    frame = pl.DataFrame([
        id_text(np.arange(1, population.size + 1), "C", 7, "customer_id"),
        pl.Series("purchase_rate", population.purchase_rate),
        pl.Series("churned", churned),
        time_text(np.where(churned, population.churn_at, np.iinfo(np.int64).min),
                  "churned_at"),
        pl.Series("dropout_rate", population.dropout_rate),
        pl.Series("episode_conversion", population.episode_conversion),
        lookup(CATEGORY_NAMES, population.favourite_category, "favourite_category"),
        pl.Series("open_propensity", population.open_propensity),
    ])
    return write_parquet(frame, path)


def _other_orders_in_window(sends: Columns, orders: Columns) -> np.ndarray:
    """Per send, whether the recipient has another completed order in the 5-day window.

    "Another" means one the send itself did not induce.
    """
    completed = (orders["status"] == 0) & (orders["customer"] >= 0)
    key = (orders["customer"][completed].astype(np.int64) << 32) | (
        orders["ordered_at"][completed] - HISTORY_START_S)
    key.sort()
    base = sends["customer"].astype(np.int64) << 32
    low = base | (sends["sent_at"] - HISTORY_START_S)
    high = base | (sends["sent_at"] + CONVERSION_WINDOW_DAYS * DAY - HISTORY_START_S)
    found = np.searchsorted(key, high, side="right") - np.searchsorted(key, low, side="right")
    own = np.zeros(len(found), dtype=np.int64)
    induced = completed & (orders["send_row"] >= 0)
    own[orders["send_row"][induced]] = 1
    return (found - own) > 0


def campaign_truth(campaigns: list[Campaign], sends: Columns, orders: Columns,
                   catalogue: Catalogue, population: Population) -> dict:
    """The content of ``truth/campaigns.json``."""
    other = _other_orders_in_window(sends, orders)
    window = CONVERSION_WINDOW_DAYS * DAY
    alive = population.churn_at[sends["customer"]] > sends["sent_at"] + window
    n_campaigns = len(campaigns)
    recipients = np.bincount(sends["campaign"], minlength=n_campaigns)

    def share(mask: np.ndarray) -> np.ndarray:
        return np.bincount(sends["campaign"], weights=mask,
                           minlength=n_campaigns) / np.maximum(recipients, 1)

    share_other, share_alive, share_open = share(other), share(alive), share(alive & ~other)
    per_variant = np.zeros((n_campaigns, 3), dtype=np.int64)
    np.add.at(per_variant, (sends["campaign"], sends["variant"]), 1)
    subtotal = expected_subtotal_cents(catalogue) / 100
    described = []
    for c in campaigns:
        k = c.number
        order_total = subtotal * (1 - PROMO_CODE_USE * c.promo_rate)
        control = c.variants[0].induced_probability
        variants = []
        for index, v in enumerate(c.variants):
            lift = v.induced_probability - control
            effect = None if not c.is_test or index == 0 else {
                "induced_orders_per_recipient": round(lift * share_alive[k], 6),
                "conversion_5d": round(COMPLETED_SHARE * lift * share_open[k], 6),
                "completed_revenue_per_recipient": round(
                    COMPLETED_SHARE * lift * share_alive[k] * order_total, 4),
            }
            variants.append({
                "name": v.name, "weight": v.weight,
                "recipients": int(per_variant[k, index]),
                "induced_order_probability": v.induced_probability,
                "expected_conversion_5d": round(
                    share_other[k] + COMPLETED_SHARE * v.induced_probability * share_open[k], 6),
                "effect_vs_control": effect,
            })
        described.append({
            "campaign_id": c.campaign_id, "name": c.name, "channel": c.channel,
            "is_test": c.is_test, "control_variant": c.control_variant,
            "promo_rate": c.promo_rate, "recipients": int(recipients[k]),
            "share_alive": round(float(share_alive[k]), 6),
            "share_with_other_orders": round(float(share_other[k]), 6),
            "share_open": round(float(share_open[k]), 6),
            "expected_induced_order_total": round(order_total, 4),
            "variants": variants,
        })
    return {
        "conversion_window_days": CONVERSION_WINDOW_DAYS,
        "completed_share": COMPLETED_SHARE,
        "definitions": {
            "conversion_5d": "a completed sale order with sent_at < ordered_at <= sent_at + "
                             f"{CONVERSION_WINDOW_DAYS} days",
            "induced_order_probability": "chance a recipient alive through the window places "
                                         "one extra order in it because of the message",
            "share_open": "recipients alive through the window and without another completed "
                          "order in it: the only ones a variant can change",
        },
        "campaigns": described,
    }


def write_campaign_truth(path: Path, truth: dict) -> None:
    """``truth/campaigns.json``, indented for reading."""
    path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
