"""The catalog: every field a segment may name, with its type and the operators it allows.

Nothing outside this catalog ever reaches SQL as a name: a definition that names
another field is refused when it is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_OPERATORS = ("equals", "not_equals", "in", "not_in", "contains", "starts_with",
                  "ends_with", "is_set", "not_set")
DATE_OPERATORS = ("before", "after", "between", "within_last_days", "more_than_days_ago",
                  "is_set", "not_set")
NUMBER_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "between",
                    "is_set", "not_set")


@dataclass(frozen=True)
class Field:
    """A customer attribute a profile condition can test."""

    name: str
    type: str  # text, date or number
    label: str

    @property
    def operators(self) -> tuple[str, ...]:
        """The operators that make sense for this field's type."""
        return {"text": TEXT_OPERATORS, "date": DATE_OPERATORS, "number": NUMBER_OPERATORS,
                "attribute": ATTRIBUTE_OPERATORS}[self.type]


PROFILE_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("customer_id", "text", "Customer id"),
    Field("email", "text", "E-mail address"),
    Field("email_domain", "text", "E-mail domain"),
    Field("phone", "text", "Phone"),
    Field("country", "text", "Country"),
    Field("acquisition_channel", "text", "Acquisition channel"),
    Field("signed_up_at", "date", "Sign-up date"),
)}
"""Columns of ``customers`` (and ``email_domain``, derived from ``email``)."""

ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
"""Custom attributes are keys of the ``attributes`` JSON object, named plainly."""

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "order")
PROPERTY_NAME = ATTRIBUTE_NAME
CHANNELS = ("email", "sms")
CONSENT_STATUSES = ("subscribed", "unsubscribed", "never_subscribed")
ORDER_METRICS = {"count": "number", "revenue": "number", "average_order_value": "number",
                 "first_order_date": "date", "last_order_date": "date"}
COUNT_OPERATORS = ("at_least", "at_most", "exactly")
CAMPAIGN_ACTIONS = ("received", "opened", "clicked")
RFM_GROUPS = ("Champions", "Loyal", "Potential loyalist", "New", "Promising", "Need attention",
              "About to sleep", "At risk", "Can't lose", "Hibernating", "Lost")


def profile_field(name: str) -> Field | None:
    """The field called ``name``: a catalog column or ``attributes.<key>``."""
    if name in PROFILE_FIELDS:
        return PROFILE_FIELDS[name]
    if name.startswith(ATTRIBUTE_PREFIX) and ATTRIBUTE_NAME.match(name[len(ATTRIBUTE_PREFIX):]):
        return Field(name, "attribute", f"Attribute {name[len(ATTRIBUTE_PREFIX):]}")
    return None


ATTRIBUTE_OPERATORS = tuple(dict.fromkeys(TEXT_OPERATORS + NUMBER_OPERATORS))
"""A custom attribute's type is unknown up front: text operators compare its text,
number operators its numeric value."""
