"""Marketing consent per customer and channel, as a short history of changes.

A customer's history on a channel has at most two subscribed periods::

    [declined at sign-up] -> subscribed -> unsubscribed -> subscribed again -> unsubscribed

Some opt in at sign-up, some decline explicitly (``non_subscribed``), some say nothing
(no event at all) and a few opt in later at checkout. Subscribers may leave through the
preference centre and a few come back. Campaign sends add unsubscribes through the
message's link (:meth:`ChannelConsent.unsubscribe_via_link`), so the consent history and
``campaign_sends.unsubscribed_at`` tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.generate.clock import NEVER
from etl.generate.population import Population
from etl.generate.seasons import AS_OF_S, DAY

CHANNELS = ("email", "sms")
STATUSES = ("subscribed", "unsubscribed", "non_subscribed")
SOURCES = ("signup_form", "checkout", "preference_center", "unsubscribe_link")
SIGNUP_FORM, CHECKOUT, PREFERENCE_CENTER, UNSUBSCRIBE_LINK = range(4)


@dataclass(frozen=True)
class ConsentHabits:
    """How customers of one channel tend to handle their consent."""

    opt_in_at_signup: float
    decline_at_signup: float  # of those who do not opt in: an explicit "no"
    opt_in_later: float  # of those who do not opt in at sign-up
    leave: float  # of subscribers: unsubscribe in the preference centre
    come_back: float  # of those who left: subscribe again


HABITS = {
    "email": ConsentHabits(0.62, 0.5, 0.15, 0.12, 0.2),
    "sms": ConsentHabits(0.45, 0.4, 0.10, 0.15, 0.1),
}


def _after(start: np.ndarray, mean_days: float, happens: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """A time ``Exp(mean_days)`` after ``start`` where ``happens``, else :data:`NEVER`."""
    delay = (rng.exponential(mean_days * DAY, size=len(start)) + 60).astype(np.int64)
    known = start != NEVER
    moment = np.where(happens & known, np.where(known, start, 0) + delay, NEVER)
    return np.where(moment <= AS_OF_S, moment, NEVER)


@dataclass
class ChannelConsent:
    """The consent history of every customer on one channel (mutable during sends)."""

    channel: str
    declined_at: np.ndarray  # explicit non_subscribed at sign-up
    subscribed_at: np.ndarray
    subscribed_source: np.ndarray
    unsubscribed_at: np.ndarray
    unsubscribed_source: np.ndarray
    resubscribed_at: np.ndarray
    unsubscribed_again_at: np.ndarray
    unsubscribed_again_source: np.ndarray

    def is_subscribed(self, who: np.ndarray, at: np.ndarray | int) -> np.ndarray:
        """Whether customers ``who`` are subscribed at time ``at``."""
        first = (self.subscribed_at[who] <= at) & (at < self.unsubscribed_at[who])
        second = (self.resubscribed_at[who] <= at) & (at < self.unsubscribed_again_at[who])
        return first | second

    def unsubscribe_via_link(self, rng: np.random.Generator, who: np.ndarray,
                             sent_at: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Record unsubscribes from a message; return which ones took effect.

        ``who`` were subscribed at ``sent_at``. An unsubscribe at ``at`` ends the
        subscribed period the send fell in, unless the customer had already left by then
        or an earlier message's link already ends that period (close sends, e.g. Black
        Friday and Cyber Monday). Ending the first period replaces any later comeback
        with a fresh, rarer one.
        """
        in_first = self.subscribed_at[who] <= sent_at
        in_first &= sent_at < self.unsubscribed_at[who]
        first = in_first & (at < self.unsubscribed_at[who])
        first &= self.unsubscribed_source[who] != UNSUBSCRIBE_LINK
        second = ~in_first & (at < self.unsubscribed_again_at[who])
        second &= self.unsubscribed_again_source[who] != UNSUBSCRIBE_LINK
        k = who[first]
        self.unsubscribed_at[k] = at[first]
        self.unsubscribed_source[k] = UNSUBSCRIBE_LINK
        self.resubscribed_at[k] = _after(at[first], 120, rng.random(len(k)) < 0.1, rng)
        self.unsubscribed_again_at[k] = NEVER
        k = who[second]
        self.unsubscribed_again_at[k] = at[second]
        self.unsubscribed_again_source[k] = UNSUBSCRIBE_LINK
        return first | second

    def history(self) -> dict[str, np.ndarray]:
        """Every change as rows: customer, status, occurred_at, source (unsorted)."""
        steps = (
            (self.declined_at, 2, np.full(len(self.declined_at), SIGNUP_FORM)),
            (self.subscribed_at, 0, self.subscribed_source),
            (self.unsubscribed_at, 1, self.unsubscribed_source),
            (self.resubscribed_at, 0, np.full(len(self.declined_at), PREFERENCE_CENTER)),
            (self.unsubscribed_again_at, 1, self.unsubscribed_again_source),
        )
        parts = {"customer": [], "status": [], "occurred_at": [], "source": []}
        for moment, status, source in steps:
            who = np.flatnonzero(moment != NEVER)
            parts["customer"].append(who.astype(np.int32))
            parts["status"].append(np.full(len(who), status, dtype=np.int8))
            parts["occurred_at"].append(moment[who])
            parts["source"].append(np.asarray(source)[who].astype(np.int8))
        return {name: np.concatenate(values) for name, values in parts.items()}


def draw_consent(rng: np.random.Generator, population: Population,
                 channel: str) -> ChannelConsent:
    """The base history of one channel, before any campaign is sent."""
    habits, n = HABITS[channel], population.size
    signup = population.signed_up_at
    reachable = population.has_phone if channel == "sms" else np.ones(n, dtype=bool)
    at_signup = reachable & (rng.random(n) < habits.opt_in_at_signup)
    later = reachable & ~at_signup & (rng.random(n) < habits.opt_in_later)
    declined = reachable & ~at_signup & (rng.random(n) < habits.decline_at_signup)
    subscribed_at = np.where(at_signup, signup + rng.integers(0, 60, size=n), NEVER)
    subscribed_at = np.where(later, _after(signup, 200, later, rng), subscribed_at)
    unsubscribed_at = _after(subscribed_at, 300, rng.random(n) < habits.leave, rng)
    return ChannelConsent(
        channel=channel,
        declined_at=np.where(declined, signup, NEVER),
        subscribed_at=subscribed_at,
        subscribed_source=np.where(later, CHECKOUT, SIGNUP_FORM).astype(np.int8),
        unsubscribed_at=unsubscribed_at,
        unsubscribed_source=np.full(n, PREFERENCE_CENTER, dtype=np.int8),
        resubscribed_at=_after(unsubscribed_at, 120, rng.random(n) < habits.come_back, rng),
        unsubscribed_again_at=np.full(n, NEVER, dtype=np.int64),
        unsubscribed_again_source=np.full(n, PREFERENCE_CENTER, dtype=np.int8),
    )
