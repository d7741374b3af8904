"""The marketing calendar: about two campaigns a month, a third of them A/B tests.

Each variant of a campaign carries the true chance that a recipient places an extra,
campaign-induced order within :data:`CONVERSION_WINDOW_DAYS` days of the send (on top of
whatever they would have bought anyway). Tests have two arms (even or uneven split) or
three; the control is always variant ``A``. The plan depends on the seed only, never on
the number of customers, so every store size runs the same campaigns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from etl.generate.seasons import AS_OF_S, DAY, HOUR, black_friday, seconds_at

CONVERSION_WINDOW_DAYS = 5
CLICK_TO_ORDER_SHARE = 0.6
"""Share of campaign-induced buyers who click the message before buying."""

THEMES = ("New arrivals", "Weekend offer", "Product spotlight", "Loyalty rewards",
          "Style guide", "Back in stock", "Members' preview", "Seasonal edit")
SPLITS: tuple[tuple[float, ...], ...] = ((0.5, 0.5), (0.5, 0.5), (0.5, 0.5), (0.8, 0.2),
                                         (0.7, 0.3), (0.34, 0.33, 0.33))
EFFECTS = (0.0, 0.005, 0.008, 0.010, 0.015, -0.004)
"""Candidate true differences of a treatment arm's induced-order chance from control's."""


@dataclass(frozen=True)
class Variant:
    """One arm of a campaign: its planned share of recipients and its true effect."""

    name: str
    weight: float
    induced_probability: float


@dataclass(frozen=True)
class Campaign:
    """A campaign as marketers planned it, with the truth only the generator knows."""

    number: int  # 0-based position in the plan
    name: str
    channel: str  # email or sms
    sent_at: int
    variants: tuple[Variant, ...]
    audience_share: float  # share of subscribers targeted
    promo_rate: float  # discount code carried by the message (0 = none)
    updated_at: int

    @property
    def campaign_id(self) -> str:
        """``CMP001``, ``CMP002``, ... in send order."""
        return f"CMP{self.number + 1:03d}"

    @property
    def is_test(self) -> bool:
        """An A/B test has more than one variant."""
        return len(self.variants) > 1

    @property
    def control_variant(self) -> str | None:
        """The arm others are compared with; ``None`` for a plain send."""
        return self.variants[0].name if self.is_test else None

    def variants_json(self) -> str:
        """The ``variants`` column: ``[{"name": "A", "weight": 0.5}, ...]``."""
        return json.dumps([{"name": v.name, "weight": v.weight} for v in self.variants],
                          separators=(",", ":"))


def _send_days() -> list[tuple[date, str]]:
    """Two sends a month (three in November: one early, Black Friday, Cyber Monday)."""
    days: list[tuple[date, str]] = []
    for year in (2023, 2024):
        for month in range(1, 13):
            first = date(year, month, 4 + (month * 5 + year) % 7)
            if month == 11:
                friday = black_friday(year)
                days += [(first, "Early Black Friday access"), (friday, "Black Friday"),
                         (friday + timedelta(days=3), "Cyber Monday")]
                continue
            second = date(year, month, 15 + (month * 3 + year) % 6)
            themes = ("Christmas gift guide", "Last-minute gifts") if month == 12 else (
                THEMES[(month + year) % len(THEMES)], THEMES[(month * 2 + year) % len(THEMES)])
            days += [(first, themes[0]), (second, themes[1])]
    return sorted(days)


def _variants(rng: np.random.Generator, split: tuple[float, ...],
              channel: str) -> tuple[Variant, ...]:
    base = rng.uniform(0.015, 0.025) if channel == "email" else rng.uniform(0.02, 0.03)
    if len(split) == 1:
        return (Variant("A", 1.0, round(base, 4)),)
    arms = [Variant("A", split[0], round(base, 4))]
    for name, weight in zip("BC", split[1:], strict=False):
        effect = EFFECTS[rng.integers(len(EFFECTS))]
        arms.append(Variant(name, weight, round(max(base + effect, 0.005), 4)))
    return tuple(arms)


def plan_campaigns(rng: np.random.Generator) -> list[Campaign]:
    """The campaigns of the window, in send order."""
    days = _send_days()
    n = len(days)
    tests = np.sort(rng.choice(n, size=round(n / 3), replace=False))
    # Every kind of split occurs, whatever the seed.
    kinds = rng.permutation(np.arange(len(tests)) % len(SPLITS))
    splits = {int(t): SPLITS[k] for t, k in zip(tests, kinds, strict=True)}
    campaigns = []
    for number, (day, theme) in enumerate(days):
        peak = theme in ("Black Friday", "Cyber Monday")
        channel = "sms" if (rng.random() < 0.25 and not peak) else "email"
        hour = 18 if channel == "sms" else int(rng.choice([8, 10, 12]))
        sent_at = seconds_at(day, hour)
        is_test = number in splits
        promo = 0.25 if peak else float(rng.choice([0.0, 0.0, 0.0, 0.10, 0.15]))
        campaigns.append(Campaign(
            number=number,
            name=f"{theme} - {day:%b %Y}",
            channel=channel,
            sent_at=sent_at,
            variants=_variants(rng, splits.get(number, (1.0,)), channel),
            audience_share=1.0 if is_test else float(rng.uniform(0.4, 1.0)),
            promo_rate=promo,
            updated_at=min(sent_at + int(rng.integers(HOUR, 3 * DAY)), AS_OF_S),
        ))
    return campaigns
