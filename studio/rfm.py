"""RFM groups: the eleven groups stores know, from recency and frequency scores.

Among customers with at least one valid purchase up to ``as_of``, R is
``ceil(5 * cume_dist())`` over the last purchase time (the most recent buyers score 5; ties
share a score, so the result does not depend on row order). F is the number of purchases,
capped at 5: 1, 2, 3, 4, 5 or more. A quintile of the purchase count cannot work for F: in a
typical store over half the buyers bought once, and since ties share a score they would all
score 3, leaving the one-purchase groups (New, Promising, Lost) empty in every store. The
(R, F) grid below names the group (see docs/segments.md).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from studio.sql import customer_order_summary, money, orders

GROUP_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"),
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose"),
}
"""Row: the recency score R; position: the frequency score F - 1."""


def group_of(recency_score: int, frequency_score: int) -> str:
    """The RFM group of an (R, F) pair of scores from 1 to 5."""
    return GROUP_GRID[recency_score][frequency_score - 1]


def valid_purchase(table: sa.Table | sa.sql.Alias) -> sa.ColumnElement[bool]:
    """``kind = 'sale' AND status = 'completed' AND NOT is_guest`` on ``table``'s columns."""
    return sa.and_(table.c.kind == "sale", table.c.status == "completed",
                   sa.not_(sa.func.coalesce(table.c.is_guest, False)))


def rfm_scored(as_of: datetime, from_summary: bool = False,
               name: str = "rfm_scored") -> sa.Subquery:
    """``customer_id, last_purchase_at, purchases, revenue, r, f`` of every buyer as of a time.

    ``from_summary`` reads the buyers from the ETL's order summary (:mod:`studio.rollups`);
    only right when it covers every order up to ``as_of`` and none after. One level of
    SQL either way (the window runs over the grouped rows), so the statement reads
    plainly where a page shows it.
    """
    if from_summary:
        s = customer_order_summary.alias("rfm_summary")
        customer, last_at, purchases, revenue = (s.c.customer_id, s.c.last_order_at,
                                                 s.c.purchases, s.c.revenue)
        conditions, grouping = [], []
    else:
        o = orders.alias("rfm_orders")
        customer, last_at = o.c.customer_id, sa.func.max(o.c.ordered_at)
        purchases, revenue = sa.func.count(), sa.func.sum(money(o.c.total))
        conditions = [valid_purchase(o), o.c.ordered_at <= as_of, o.c.customer_id.is_not(None)]
        grouping = [o.c.customer_id]
    return (sa.select(
        customer.label("customer_id"), last_at.label("last_purchase_at"),
        purchases.label("purchases"), revenue.label("revenue"),
        sa.func.ceil(5 * sa.func.cume_dist().over(order_by=last_at)).label("r"),
        sa.func.least(purchases, 5).label("f"),
    ).where(*conditions).group_by(*grouping).subquery(name))


def rfm_scores(as_of: datetime, from_summary: bool = False) -> sa.Subquery:
    """:func:`rfm_scored` with each buyer's ``rfm_group`` named from :data:`GROUP_GRID`."""
    scored = rfm_scored(as_of, from_summary)
    cases = [(sa.and_(scored.c.r == r, scored.c.f == f + 1), name)
             for r, names in GROUP_GRID.items() for f, name in enumerate(names)]
    return sa.select(scored, sa.case(*cases).label("rfm_group")).subquery("rfm")
