"""The choices the builder's widgets offer that come from the warehouse.

Countries, categories, products, campaigns, event property names and values, score
targets ...: each is one query built with SQLAlchemy Core and run with bound
parameters. :data:`LOOKUPS` names them all (the page caches them by name) and
:class:`Choices` bundles a lookup with the saved segments' names and the ``as_of`` date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import duckdb
import sqlalchemy as sa

from studio.segments import catalog
from studio.segments.builder.labels import CHANNEL_LABELS
from studio.sql import TABLES, customers, events, json_text, products, to_sql

VALUE_LIMIT = 200
"""At most this many warehouse values are offered in one list (the most frequent first);
any other value can still be typed in."""
FREE_TEXT_FIELDS = ("customer_id", "email", "phone")
"""Profile fields whose values are too many to list: they are typed in."""


def _distinct(con: duckdb.DuckDBPyConnection, expression, where=(), limit: int = VALUE_LIMIT,
              select_from=None) -> list[str]:
    """Non-empty values of ``expression``, the most frequent first (then alphabetical)."""
    value = sa.func.nullif(sa.cast(expression, sa.String), "").label("value")
    inner = sa.select(value)
    if select_from is not None:
        inner = inner.select_from(select_from)
    inner = inner.where(*where).subquery("candidates")
    query = (sa.select(inner.c.value).where(inner.c.value.is_not(None))
             .group_by(inner.c.value).order_by(sa.func.count().desc(), inner.c.value)
             .limit(limit))
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


def total_customers(con: duckdb.DuckDBPyConnection) -> int:
    """How many customers the warehouse knows."""
    sql, params = to_sql(sa.select(sa.func.count()).select_from(customers))
    return int(con.execute(sql, params).fetchall()[0][0])


def profile_values(con: duckdb.DuckDBPyConnection, field_name: str,
                   limit: int = VALUE_LIMIT) -> list[str]:
    """Values a profile field takes in the warehouse (none for free-text fields)."""
    if field_name in FREE_TEXT_FIELDS:
        return []
    if field_name.startswith(catalog.ATTRIBUTE_PREFIX):
        spec = catalog.profile_field(field_name)
        if spec is None:
            return []
        expression = json_text(customers.c.attributes,
                               field_name[len(catalog.ATTRIBUTE_PREFIX):])
        return _distinct(con, expression, [sa.func.json_valid(customers.c.attributes)],
                         limit)
    if field_name == "email_domain":
        expression = sa.func.lower(sa.func.split_part(customers.c.email, "@", 2))
        return _distinct(con, expression, limit=limit)
    spec = catalog.PROFILE_FIELDS.get(field_name)
    if spec is None or spec.type != "text":
        return []
    return _distinct(con, customers.c[field_name], limit=limit)


def _json_keys(con: duckdb.DuckDBPyConnection, column, where=()) -> list[str]:
    keys = (sa.select(sa.func.unnest(sa.func.json_keys(column)).label("key"))
            .where(sa.func.json_valid(column), sa.func.json_type(column) == "OBJECT", *where)
            .subquery("keys"))
    query = sa.select(keys.c.key).distinct().order_by(keys.c.key)
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()
            if catalog.ATTRIBUTE_NAME.match(row[0])]


def attribute_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Keys of the customers' custom attributes."""
    return _json_keys(con, customers.c.attributes)


def categories(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Product categories, alphabetical."""
    query = (sa.select(products.c.category).where(sa.func.nullif(products.c.category, "")
                                                  .is_not(None))
             .distinct().order_by(products.c.category))
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


def product_choices(con: duckdb.DuckDBPyConnection,
                    limit: int = 5 * VALUE_LIMIT) -> list[tuple[str, str]]:
    """``(product_id, label)`` pairs, by id."""
    query = (sa.select(products.c.product_id, products.c.name)
             .order_by(products.c.product_id).limit(limit))
    sql, params = to_sql(query)
    return [(pid, f"{pid} · {name}" if name else pid)
            for pid, name in con.execute(sql, params).fetchall()]


def campaign_choices(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(campaign_id, label)`` pairs, the latest sent first."""
    campaigns_table = TABLES["campaigns"]
    query = (sa.select(campaigns_table.c.campaign_id, campaigns_table.c.name,
                       campaigns_table.c.channel, campaigns_table.c.sent_at)
             .order_by(campaigns_table.c.sent_at.desc(), campaigns_table.c.campaign_id))
    sql, params = to_sql(query)
    return [(cid, f"{cid} · {name or 'unnamed'} ({CHANNEL_LABELS.get(channel, channel)}, "
                  f"{sent:%d %b %Y})" if sent else f"{cid} · {name or 'unnamed'}")
            for cid, name, channel, sent in con.execute(sql, params).fetchall()]


def event_property_names(con: duckdb.DuckDBPyConnection, event: str) -> list[str]:
    """The JSON property names events of type ``event`` carry."""
    return _json_keys(con, events.c.properties, [events.c.event_type == event])


def event_property_values(con: duckdb.DuckDBPyConnection, event: str, name: str,
                          limit: int = VALUE_LIMIT) -> list[str]:
    """Values property ``name`` takes on events of type ``event`` (as text)."""
    return _distinct(con, json_text(events.c.properties, name),
                     [events.c.event_type == event, sa.func.json_valid(events.c.properties)],
                     limit)


def score_targets(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Targets of the predictive scores (none when nothing has been scored), without NULL."""
    from studio.segments.operations import has_table
    from studio.sql import scores

    if not has_table(con, "scores"):
        return []
    query = (sa.select(scores.c.target).distinct().where(scores.c.target.is_not(None))
             .order_by(scores.c.target))
    sql, params = to_sql(query)
    return [row[0] for row in con.execute(sql, params).fetchall()]


LOOKUPS: dict[str, Callable[..., list]] = {
    "profile_values": profile_values, "attribute_names": attribute_names,
    "categories": categories, "products": product_choices, "campaigns": campaign_choices,
    "event_property_names": event_property_names,
    "event_property_values": event_property_values, "score_targets": score_targets,
}
"""Every warehouse lookup the widgets use, by name (the page caches them by name)."""


class Choices:
    """What the builder's widgets offer, from the catalog, the warehouse and the library.

    ``lookup(name, *args)`` runs ``LOOKUPS[name](con, *args)``, possibly from a cache.
    """

    def __init__(self, lookup: Callable[..., list], segment_names: Sequence[str] = (),
                 as_of: date | None = None):
        self.lookup = lookup
        self.segment_names = list(segment_names)
        self.as_of = as_of or date.today()

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection,
                       segment_names: Sequence[str] = (), as_of: date | None = None) -> Choices:
        """Choices read straight from ``con`` (no cache)."""
        return cls(lambda name, *args: LOOKUPS[name](con, *args), segment_names, as_of)

    def profile_fields(self) -> list[str]:
        """Catalog fields, then ``attributes.<key>`` for each key found."""
        return [*catalog.PROFILE_FIELDS, *(catalog.ATTRIBUTE_PREFIX + name
                                           for name in self.lookup("attribute_names"))]
