"""Sending the campaigns: recipients, variants, reactions and campaign-induced orders.

Campaigns go out in date order, so an unsubscribe from one message keeps the customer
off every later list. A recipient is a customer signed up and subscribed on the channel
at the moment their message leaves; the variant is drawn with the planned weights. On
top of the background purchases, a recipient of variant ``v`` places one extra order
within five days with the variant's true probability, provided they are still alive
(not churned) at the end of those five days: churned customers never buy again. That is
what makes the A/B truth in ``truth/campaigns.json`` exact.
"""

from __future__ import annotations

import numpy as np

from etl.generate.campaign_plan import CLICK_TO_ORDER_SHARE, CONVERSION_WINDOW_DAYS, Campaign
from etl.generate.clock import NULL_TIME
from etl.generate.columns import Columns, stack
from etl.generate.consent import ChannelConsent
from etl.generate.population import Population
from etl.generate.seasons import DAY, HOUR

SEND_SPREAD_SECONDS = 1_800  # a list takes up to half an hour to go out
EMAIL_CLICK_GIVEN_OPEN = 0.10
EMAIL_UNSUBSCRIBE_GIVEN_OPEN = 0.006
SMS_CLICK = 0.04
SMS_UNSUBSCRIBE = 0.003


def _delay(rng: np.random.Generator, n: int, mean: float, low: float,
           high: float) -> np.ndarray:
    """Exponential delays with mean ``mean`` truncated to ``[low, high]`` seconds."""
    span = high - low
    u = rng.random(n)
    return (low - mean * np.log1p(-u * -np.expm1(-span / mean))).astype(np.int64)


def _recipients(rng: np.random.Generator, campaign: Campaign, population: Population,
                consent: ChannelConsent) -> tuple[np.ndarray, np.ndarray]:
    """Who gets the message and when it leaves for each of them."""
    signed_up = np.searchsorted(population.signed_up_at, campaign.sent_at, side="right")
    who = np.arange(signed_up, dtype=np.int64)
    who = who[consent.is_subscribed(who, campaign.sent_at)]
    who = who[rng.random(len(who)) < campaign.audience_share]
    sent_at = campaign.sent_at + rng.integers(0, SEND_SPREAD_SECONDS, size=len(who))
    still = consent.is_subscribed(who, sent_at)
    return who[still], sent_at[still]


def _send_one(rng: np.random.Generator, campaign: Campaign, population: Population,
              consent: ChannelConsent) -> tuple[Columns, Columns]:
    """The sends of one campaign and the orders it induces."""
    who, sent_at = _recipients(rng, campaign, population, consent)
    m = len(who)
    weights = np.array([v.weight for v in campaign.variants])
    variant = rng.choice(len(weights), size=m, p=weights / weights.sum())
    email = campaign.channel == "email"
    if email:
        opened = rng.random(m) < population.open_propensity[who]
        opened_at = sent_at + _delay(rng, m, 3 * HOUR, 5, 3 * DAY)
        clicked = opened & (rng.random(m) < EMAIL_CLICK_GIVEN_OPEN)
        clicked_at = opened_at + _delay(rng, m, 180, 5, HOUR)
    else:
        opened = np.zeros(m, dtype=bool)
        opened_at = np.full(m, NULL_TIME, dtype=np.int64)
        clicked = rng.random(m) < SMS_CLICK
        clicked_at = sent_at + _delay(rng, m, 600, 5, 6 * HOUR)

    probability = np.array([v.induced_probability for v in campaign.variants])[variant]
    window = CONVERSION_WINDOW_DAYS * DAY
    buys = rng.random(m) < probability
    buys &= population.churn_at[who] > sent_at + window  # the churned never buy again
    ordered_at = sent_at + _delay(rng, m, DAY, 600, window - 600)
    # Most campaign buyers click through first; their click (and open) precede the order.
    clicks_first = buys & (rng.random(m) < CLICK_TO_ORDER_SHARE)
    buyer_click = sent_at + ((ordered_at - sent_at) * rng.uniform(0.05, 0.9, m)).astype(np.int64)
    clicked_at = np.where(clicks_first & (~clicked | (buyer_click < clicked_at)),
                          buyer_click, clicked_at)
    clicked |= clicks_first
    if email:
        early_open = np.maximum(clicked_at - rng.integers(5, 120, size=m), sent_at + 1)
        opened_at = np.where(clicked & (~opened | (opened_at > clicked_at)), early_open,
                             opened_at)
        opened |= clicked
        leaves = opened & (rng.random(m) < EMAIL_UNSUBSCRIBE_GIVEN_OPEN)
        leave_at = opened_at + _delay(rng, m, 120, 5, HOUR)
    else:
        leaves = rng.random(m) < SMS_UNSUBSCRIBE
        leave_at = sent_at + _delay(rng, m, 1_800, 5, 6 * HOUR)
    taken = consent.unsubscribe_via_link(rng, who[leaves], sent_at[leaves], leave_at[leaves])
    left = np.zeros(m, dtype=bool)
    left[np.flatnonzero(leaves)[taken]] = True

    sends = {
        "campaign": np.full(m, campaign.number, dtype=np.int16),
        "customer": who.astype(np.int32),
        "variant": variant.astype(np.int8),
        "sent_at": sent_at,
        "opened_at": np.where(opened, opened_at, NULL_TIME),
        "clicked_at": np.where(clicked, clicked_at, NULL_TIME),
        "unsubscribed_at": np.where(left, leave_at, NULL_TIME),
    }
    induced = {
        "customer": who[buys].astype(np.int32),
        "ordered_at": ordered_at[buys],
        "campaign": np.full(int(buys.sum()), campaign.number, dtype=np.int16),
        "send_row": np.flatnonzero(buys),  # within this campaign; made global by the caller
    }
    return sends, induced


def send_campaigns(rng: np.random.Generator, campaigns: list[Campaign],
                   population: Population,
                   consent: dict[str, ChannelConsent]) -> tuple[Columns, Columns]:
    """Send every campaign in date order.

    Returns
    -------
    sends, induced
        One row per message (times as seconds, :data:`NULL_TIME` for none) and one row
        per campaign-induced order (customer, ordered_at, campaign, send_row).
    """
    send_parts, induced_parts, offset = [], [], 0
    for campaign in sorted(campaigns, key=lambda c: c.sent_at):
        sends, induced = _send_one(rng, campaign, population, consent[campaign.channel])
        induced["send_row"] = induced["send_row"] + offset
        offset += len(sends["customer"])
        send_parts.append(sends)
        induced_parts.append(induced)
    return stack(send_parts), stack(induced_parts)
