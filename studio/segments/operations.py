"""What people do with a segment: count it, list its members, explain, overlap, show SQL.

Every operation compiles the rule once, runs it on the (read-only) warehouse connection
it is given, and returns plain values or polars frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

import duckdb
import polars as pl
import sqlalchemy as sa

from studio.rollups import rollup_coverage
from studio.segments.compiler import Compiler, SegmentResolver
from studio.segments.definition import Group, Node, Not, SegmentDefinition, node_to_document
from studio.sql import customers, to_readable_sql, to_sql

CONTACT_COLUMN = {"email": "email", "sms": "phone"}
"""The customer column that holds the address for each channel."""

PREVIEW_COLUMNS = ("customer_id", "email", "country", "acquisition_channel", "signed_up_at",
                   "purchases", "revenue", "last_purchase_at", "rfm_group")


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the warehouse has a table called ``name``."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = ?", [name]).fetchall()[0][0])


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The data's latest order time (so counts on a loaded store are reproducible), or now."""
    latest = con.execute("SELECT max(ordered_at) FROM orders").fetchall()[0][0]
    return latest or datetime.now().replace(microsecond=0)


def _compiler(con, definition: SegmentDefinition, as_of: datetime | None,
              resolve_segment: SegmentResolver | None) -> Compiler:
    moment = as_of or definition.as_of or default_as_of(con)
    return Compiler(moment, resolve_segment, has_scores=has_table(con, "scores"),
                    rollups=rollup_coverage(con))


def _run(con, statement) -> list[tuple]:
    sql, params = to_sql(statement)
    return con.execute(sql, params).fetchall()


def members(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition,
            as_of: datetime | None = None,
            resolve_segment: SegmentResolver | None = None) -> list[str]:
    """The customer ids in the segment, sorted."""
    compiler = _compiler(con, definition, as_of, resolve_segment)
    query = compiler.members_query(definition.rule).order_by(customers.c.customer_id)
    return [row[0] for row in _run(con, query)]


@dataclass(frozen=True)
class SegmentCount:
    """Raw and sendable sizes of a segment at one moment."""

    matched: int
    email_sendable: int
    sms_sendable: int
    as_of: datetime

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"matched": self.matched, "email_sendable": self.email_sendable,
                "sms_sendable": self.sms_sendable, "as_of": self.as_of.isoformat()}


def count_query(compiler: Compiler, rule: Node) -> sa.Select:
    """``matched, email_sendable, sms_sendable`` in one statement.

    The members are found once (a CTE); only their consent history is then ranked, so a
    small segment does not pay for ranking every customer's consent.
    """
    matched = (sa.select(customers.c.customer_id, customers.c.email, customers.c.phone)
               .where(compiler.node(rule)).cte("matched"))
    member_ids = sa.select(matched.c.customer_id)

    def reachable(channel: str) -> sa.ColumnElement[bool]:
        address = sa.func.nullif(matched.c[CONTACT_COLUMN[channel]], "")
        subscribed = compiler.subscribed_now(channel, among=member_ids)
        return sa.and_(matched.c.customer_id.in_(subscribed), address.is_not(None))

    return sa.select(sa.func.count(), sa.func.count().filter(reachable("email")),
                     sa.func.count().filter(reachable("sms"))).select_from(matched)


def count(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition,
          as_of: datetime | None = None,
          resolve_segment: SegmentResolver | None = None) -> SegmentCount:
    """Matched customers, and those among them who can be e-mailed or texted now."""
    compiler = _compiler(con, definition, as_of, resolve_segment)
    query = count_query(compiler, definition.rule)
    matched, email, sms = _run(con, query)[0]
    return SegmentCount(int(matched), int(email), int(sms), compiler.as_of)


def preview(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition,
            as_of: datetime | None = None, resolve_segment: SegmentResolver | None = None,
            limit: int = 50, offset: int = 0, sort_by: str = "customer_id",
            descending: bool = False) -> pl.DataFrame:
    """A page of members with the attributes a marketer checks first."""
    if sort_by not in PREVIEW_COLUMNS:
        sort_by = "customer_id"
    compiler = _compiler(con, definition, as_of, resolve_segment)
    from studio.rfm import rfm_scores

    rfm = rfm_scores(compiler.as_of, from_summary=compiler.order_summary_complete)
    query = (sa.select(customers.c.customer_id, customers.c.email, customers.c.country,
                       customers.c.acquisition_channel, customers.c.signed_up_at,
                       sa.func.coalesce(rfm.c.purchases, 0).label("purchases"),
                       sa.func.coalesce(rfm.c.revenue, 0).label("revenue"),
                       rfm.c.last_purchase_at, rfm.c.rfm_group)
             .select_from(customers.outerjoin(rfm, rfm.c.customer_id == customers.c.customer_id))
             .where(compiler.node(definition.rule)))
    key = sa.literal_column(sort_by)
    query = query.order_by(key.desc().nulls_last() if descending else key.asc().nulls_last(),
                           customers.c.customer_id).limit(max(1, min(limit, 1000))).offset(
        max(0, offset))
    sql, params = to_sql(query)
    return con.sql(sql, params=params).pl()


@dataclass
class Explanation:
    """One node of the rule and whether it holds for the customer."""

    label: str
    holds: bool
    document: dict
    children: list[Explanation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready, nested like the rule."""
        return {"label": self.label, "holds": self.holds, "condition": self.document,
                "children": [child.to_dict() for child in self.children]}


def _flatten(node: Node, out: list[Node]) -> None:
    out.append(node)
    if isinstance(node, Group):
        for child in node.children:
            _flatten(child, out)
    elif isinstance(node, Not):
        _flatten(node.child, out)


def _label(node: Node) -> str:
    if isinstance(node, Group):
        return "all of" if node.op == "all" else "any of"
    if isinstance(node, Not):
        return "not"
    (kind, body), = node_to_document(node).items()
    details = ", ".join(f"{k}={v}" for k, v in body.items() if v not in (None, [], {}))
    return f"{kind}: {details}"


def explain(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition, customer_id: str,
            as_of: datetime | None = None,
            resolve_segment: SegmentResolver | None = None) -> Explanation:
    """Each condition's truth for one customer: why they are in, or why not.

    Raises
    ------
    UserError
        When no customer has that id.
    """
    from studio.errors import UserError

    compiler = _compiler(con, definition, as_of, resolve_segment)
    nodes: list[Node] = []
    _flatten(definition.rule, nodes)
    query = (sa.select(*(compiler.node(n).label(f"n{i}") for i, n in enumerate(nodes)))
             .select_from(customers).where(customers.c.customer_id == customer_id))
    rows = _run(con, query)
    if not rows:
        raise UserError(f"No customer has the id {customer_id!r}; check the id and try again.")
    truth = list(rows[0])
    position = iter(range(len(nodes)))

    def build(node: Node) -> Explanation:
        index = next(position)
        explanation = Explanation(_label(node), bool(truth[index]), node_to_document(node))
        if isinstance(node, Group):
            explanation.children = [build(child) for child in node.children]
        elif isinstance(node, Not):
            explanation.children = [build(node.child)]
        return explanation

    return build(definition.rule)


def overlap(con: duckdb.DuckDBPyConnection, definitions: dict[str, SegmentDefinition],
            as_of: datetime | None = None,
            resolve_segment: SegmentResolver | None = None) -> pl.DataFrame:
    """Sizes of every segment and of every intersection of two or more of them."""
    names = list(definitions)
    if not names:
        return pl.DataFrame({"segments": [], "customers": []})
    moment = as_of or default_as_of(con)  # one date for all, never one segment's pinned date
    compiler = _compiler(con, definitions[names[0]], moment, resolve_segment)
    flags = {name: compiler.node(definitions[name].rule) for name in names}
    groups = [combo for size in range(1, len(names) + 1) for combo in combinations(names, size)]
    query = sa.select(*(sa.func.count().filter(sa.and_(*(flags[n] for n in combo)))
                        .label(f"c{i}") for i, combo in enumerate(groups))).select_from(customers)
    sizes = _run(con, query)[0]
    return pl.DataFrame({"segments": [" & ".join(combo) for combo in groups],
                         "size": [len(combo) for combo in groups],
                         "customers": [int(v) for v in sizes]})


def show_sql(definition: SegmentDefinition, as_of: datetime,
             resolve_segment: SegmentResolver | None = None, dialect: str = "duckdb",
             has_scores: bool = True) -> str:
    """The members query with its values written in, for analysts to copy into a notebook."""
    compiler = Compiler(as_of, resolve_segment, has_scores=has_scores)
    return to_readable_sql(compiler.members_query(definition.rule), dialect=dialect)
