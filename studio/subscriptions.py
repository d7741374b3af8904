"""Who may be contacted on a channel right now, from the consent history."""

from __future__ import annotations

import sqlalchemy as sa

from studio.segments.definition import Consent
from studio.sql import customers

CONTACT_COLUMN = {"email": "email", "sms": "phone"}


def sendable(compiler, channel: str) -> sa.ColumnElement[bool]:
    """Currently subscribed on ``channel`` (as of the compiler's date) with an address for it."""
    address = sa.func.nullif(customers.c[CONTACT_COLUMN[channel]], "")
    return sa.and_(compiler.node(Consent(channel, "subscribed")), address.is_not(None))
