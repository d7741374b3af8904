"""Compile a segment's rule to SQLAlchemy Core: one two-valued boolean per customer.

Every condition becomes ``customers.customer_id IN (<set query>)`` or ``NOT IN`` it, or a
comparison on the customer's own columns wrapped so that an unknown value counts as
false; groups combine them with AND, OR and NOT. Names come only from the catalog and
:mod:`studio.sql`'s declared tables; every value, including every date derived from
``as_of``, is a bound parameter.

A measure that a customer without any matching rows has as zero (order count, revenue,
event count) is compared in Python for that zero first: when zero passes, the condition
is "not among those whose measure fails", so those customers are kept.

Sibling conditions of one group that read the same rows share one scan: orders conditions
over the same window and products, and events conditions over the same window, become a
single ``GROUP BY customer_id HAVING`` whose tests are combined as the group combines
them (events of several kinds are counted apart with ``FILTER``). That is how an analyst
writes "one order, 30 to 90 days ago" by hand, and it reads the orders once instead of
three times.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from studio.rfm import rfm_scores, valid_purchase
from studio.rollups import RollupCoverage
from studio.segments.catalog import ATTRIBUTE_PREFIX
from studio.segments.definition import (
    Campaign,
    Consent,
    DefinitionError,
    Events,
    Group,
    Membership,
    Node,
    Not,
    Orders,
    Profile,
    Rfm,
    Score,
    SegmentDefinition,
    Sequence,
    Window,
)
from studio.sql import (
    campaign_sends,
    consent_current,
    consent_events,
    customer_order_summary,
    customers,
    events,
    json_text,
    money,
    number_value,
    order_items,
    orders,
    plus_seconds,
    products,
    scores,
)

SegmentResolver = Callable[[str], SegmentDefinition]

_COMPARE = {"equals": operator.eq, "not_equals": operator.ne, "gt": operator.gt,
            "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
            "at_least": operator.ge, "at_most": operator.le, "exactly": operator.eq}


def _day(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day)


def _compare(expression, op: str, value):
    """``expression`` compared with ``value`` by a catalog operator (numbers)."""
    if op == "between":
        low, high = value
        return expression.between(low, high)
    return _COMPARE[op](expression, value)


def _compare_python(left: float, op: str, value) -> bool:
    if op == "between":
        return value[0] <= left <= value[1]
    return _COMPARE[op](left, value)


class Compiler:
    """Turns rule trees into SQL expressions for one ``as_of``."""

    def __init__(self, as_of: datetime, resolve_segment: SegmentResolver | None = None,
                 has_scores: bool = True, rollups: RollupCoverage | None = None):
        self.as_of = as_of
        self.resolve_segment = resolve_segment
        self.has_scores = has_scores
        self._resolving: list[str] = []
        self.order_summary_complete = rollups is not None and rollups.orders_complete_at(as_of)
        self._current_consent = rollups is not None and rollups.consent_complete_at(as_of)

    # ------------------------------------------------------------ entry points

    def members_query(self, rule: Node) -> sa.Select:
        """``SELECT customer_id FROM customers WHERE <rule>``."""
        return sa.select(customers.c.customer_id).where(self.node(rule))

    def node(self, node: Node) -> sa.ColumnElement[bool]:
        """The boolean expression of any node, never NULL."""
        if isinstance(node, Group):
            parts = self._group_parts(node)
            return sa.and_(*parts) if node.op == "all" else sa.or_(*parts)
        if isinstance(node, Not):
            return sa.not_(self.node(node.child))
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # ------------------------------------------------------------ time helpers

    def _in_time(self, column, window: Window) -> sa.ColumnElement[bool]:
        """``column`` falls in ``window`` and not after ``as_of``."""
        conditions = [column <= self.as_of]
        if window.kind == "last_days":
            conditions.append(column > self.as_of - timedelta(days=window.days))
        elif window.kind == "more_than_days_ago":
            conditions.append(column <= self.as_of - timedelta(days=window.days))
        elif window.kind == "between":
            conditions.append(column >= _day(window.start))
            conditions.append(column < _day(window.end) + timedelta(days=1))
        return sa.and_(*conditions)

    def _date_test(self, column, op: str, value) -> sa.ColumnElement[bool]:
        if op == "before":
            return column < _day(value)
        if op == "after":
            return column >= _day(value) + timedelta(days=1)
        if op == "between":
            return sa.and_(column >= _day(value[0]), column < _day(value[1]) + timedelta(days=1))
        if op == "within_last_days":
            return sa.and_(column > self.as_of - timedelta(days=value), column <= self.as_of)
        if op == "more_than_days_ago":
            return column <= self.as_of - timedelta(days=value)
        raise AssertionError(op)

    # ------------------------------------------------------------ set helpers

    @staticmethod
    def _member_of(query: sa.Select) -> sa.ColumnElement[bool]:
        return customers.c.customer_id.in_(query)

    @staticmethod
    def _not_member_of(query: sa.Select) -> sa.ColumnElement[bool]:
        return customers.c.customer_id.not_in(query)

    def _by_tests(self, rows: sa.Select, tests: list, absent_pass: list[bool],
                  combine: str = "all", grouped: bool = True) -> sa.ColumnElement[bool]:
        """Customers whose aggregates over ``rows`` pass the tests, combined by ``combine``.

        ``absent_pass[i]`` says whether a customer without any of the rows passes test
        ``i`` (a count of zero may pass "at most 2"). Such customers are in the result
        when the combination of those flags holds; then the query names who fails instead.
        ``grouped`` is false when ``rows`` is already one row per customer (a rollup).
        """
        joined = sa.and_(*tests) if combine == "all" else sa.or_(*tests)
        keep = rows.having if grouped else rows.where
        if (all if combine == "all" else any)(absent_pass):
            return self._not_member_of(keep(sa.not_(sa.func.coalesce(joined, False))))
        return self._member_of(keep(joined))

    def _group_parts(self, group: Group) -> list[sa.ColumnElement[bool]]:
        """The group's children compiled, siblings that read the same rows merged."""
        batches: dict[tuple, list] = {}
        for child in group.children:
            if isinstance(child, Orders):
                key = ("orders", child.window, child.products, child.categories)
            elif isinstance(child, Events):
                key = ("events", child.window)
            else:
                key = ("single", id(child))
            batches.setdefault(key, []).append(child)
        parts = []
        for key, children in batches.items():
            if key[0] == "orders":
                parts.append(self._orders_batch(children, group.op))
            elif key[0] == "events":
                parts.append(self._events_batch(children, group.op))
            else:
                parts.append(self.node(children[0]))
        return parts

    # ------------------------------------------------------------ conditions

    def _profile(self, condition: Profile) -> sa.ColumnElement[bool]:
        if condition.field.startswith(ATTRIBUTE_PREFIX):
            text = json_text(customers.c.attributes, condition.field[len(ATTRIBUTE_PREFIX):])
        elif condition.field == "email_domain":
            text = sa.func.lower(sa.func.split_part(customers.c.email, "@", 2))
        else:
            text = customers.c[condition.field]
        op, value = condition.op, condition.value
        if condition.field == "signed_up_at":
            if op == "is_set":
                test = text.is_not(None)
            elif op == "not_set":
                test = text.is_(None)
            else:
                test = self._date_test(text, op, value)
            return sa.func.coalesce(test, False)
        text_value = sa.func.nullif(text, "")
        if op == "is_set":
            return text_value.is_not(None)
        if op == "not_set":
            return text_value.is_(None)
        if op in ("gt", "gte", "lt", "lte", "between") or (
                op in ("equals", "not_equals") and isinstance(value, (int, float))):
            test = _compare(number_value(text_value), op,
                            value if isinstance(value, tuple) else float(value))
        elif op == "equals":
            test = text_value == value
        elif op == "not_equals":
            test = text_value != value
        elif op == "in":
            test = text_value.in_(list(value))
        elif op == "not_in":
            test = text_value.not_in(list(value))
        elif op == "contains":
            test = sa.func.lower(text_value).contains(value.lower(), autoescape=True)
        elif op == "starts_with":
            test = sa.func.lower(text_value).startswith(value.lower(), autoescape=True)
        elif op == "ends_with":
            test = sa.func.lower(text_value).endswith(value.lower(), autoescape=True)
        else:
            raise AssertionError(op)
        return sa.func.coalesce(test, False)

    def subscribed_now(self, channel: str, among: sa.Select | None = None) -> sa.Select:
        """Ids of those whose latest consent on ``channel`` (by ``as_of``) is "subscribed".

        ``among`` (a query of ids) limits the history read to those customers, which makes
        "sendable among a small segment" cheap.
        """
        if self._current_consent:
            current = consent_current.alias("current_consent")
            return sa.select(current.c.customer_id).where(current.c.channel == channel,
                                                          current.c.status == "subscribed")
        c = consent_events.alias("consent")
        in_time = [c.c.channel == channel, c.c.occurred_at <= self.as_of,
                   c.c.customer_id.is_not(None)]
        if among is not None:
            in_time.append(c.c.customer_id.in_(among))
        ranked = sa.select(
            c.c.customer_id, c.c.status,
            sa.func.row_number().over(partition_by=c.c.customer_id,
                                      order_by=(c.c.occurred_at.desc(),
                                                c.c.consent_event_id.desc())).label("rank"),
        ).where(*in_time).subquery("latest_consent")
        return sa.select(ranked.c.customer_id).where(ranked.c.rank == 1,
                                                     ranked.c.status == "subscribed")

    def _consent(self, condition: Consent) -> sa.ColumnElement[bool]:
        c = consent_events.alias("consent")
        in_time = sa.and_(c.c.channel == condition.channel, c.c.occurred_at <= self.as_of,
                          c.c.customer_id.is_not(None))
        ever_subscribed = sa.select(c.c.customer_id).where(in_time, c.c.status == "subscribed")
        if self._current_consent:
            current = consent_current.alias("current_consent")
            ever_subscribed = sa.select(current.c.customer_id).where(
                current.c.channel == condition.channel, current.c.ever_subscribed)
        subscribed_now = self.subscribed_now(condition.channel)
        if condition.status == "subscribed":
            return self._member_of(subscribed_now)
        if condition.status == "never_subscribed":
            return self._not_member_of(ever_subscribed)
        return sa.and_(self._member_of(ever_subscribed), self._not_member_of(subscribed_now))

    def _orders(self, condition: Orders) -> sa.ColumnElement[bool]:
        return self._orders_batch([condition], "all")

    def _orders_batch(self, conditions: list[Orders], combine: str) -> sa.ColumnElement[bool]:
        """Orders conditions over one window and product set, from one grouped scan."""
        first = conditions[0]
        if (self.order_summary_complete and first.window.kind == "all_time"
                and not (first.products or first.categories)):
            return self._orders_from_summary(conditions, combine)
        o = orders.alias("o")
        where = [valid_purchase(o), o.c.customer_id.is_not(None),
                 self._in_time(o.c.ordered_at, first.window)]
        if first.products or first.categories:
            lines = self._matching_lines(first.products, first.categories)
            source = o.join(lines, lines.c.order_id == o.c.order_id)
            amount = lines.c.amount
        else:
            source = o
            amount = money(o.c.total)
        grouped = sa.select(o.c.customer_id).select_from(source).where(*where).group_by(
            o.c.customer_id)
        measures = {"count": sa.func.count(), "revenue": sa.func.sum(amount),
                    "first_order_date": sa.func.min(o.c.ordered_at),
                    "last_order_date": sa.func.max(o.c.ordered_at)}
        compiled = [self._orders_test(c, measures) for c in conditions]
        return self._by_tests(grouped, [test for test, _ in compiled],
                              [passes for _, passes in compiled], combine)

    def _orders_from_summary(self, conditions: list[Orders],
                             combine: str) -> sa.ColumnElement[bool]:
        """All-time orders conditions read from the per-buyer rollup (no grouping)."""
        s = customer_order_summary.alias("order_summary")
        measures = {"count": s.c.purchases, "revenue": s.c.revenue,
                    "first_order_date": s.c.first_order_at,
                    "last_order_date": s.c.last_order_at}
        compiled = [self._orders_test(c, measures) for c in conditions]
        return self._by_tests(sa.select(s.c.customer_id), [test for test, _ in compiled],
                              [passes for _, passes in compiled], combine, grouped=False)

    @staticmethod
    def _matching_lines(products_wanted, categories_wanted) -> sa.Subquery:
        """Per order, the amount spent on the wanted products or categories."""
        i = order_items.alias("i")
        p = products.alias("p")
        line_filter = []
        if products_wanted:
            line_filter.append(i.c.product_id.in_(list(products_wanted)))
        if categories_wanted:
            line_filter.append(i.c.product_id.in_(
                sa.select(p.c.product_id).where(p.c.category.in_(list(categories_wanted)))))
        return (sa.select(i.c.order_id,
                          sa.func.sum(money(i.c.quantity * i.c.unit_price
                                            - sa.func.coalesce(i.c.discount, 0))).label("amount"))
                .where(sa.or_(*line_filter)).group_by(i.c.order_id).subquery("lines"))

    def _orders_test(self, condition: Orders, measures: dict) -> tuple:
        """The test on one buyer's orders, and whether a non-buyer passes it.

        ``measures`` maps count, revenue, first_order_date and last_order_date to the
        expressions that hold them (aggregates over orders, or rollup columns).
        """
        metric, op, value = condition.metric, condition.op, condition.value
        if metric in ("first_order_date", "last_order_date"):
            moment = measures[metric]
            if op == "is_set":
                return sa.true(), False
            if op == "not_set":
                return sa.false(), True
            return self._date_test(moment, op, value), False
        if metric in ("count", "revenue"):
            return _compare(measures[metric], op, value), _compare_python(0, op, value)
        average = measures["revenue"] / measures["count"]
        return _compare(average, op, value), False

    def _event_filter(self, table, event_type: str, properties) -> list:
        where = [table.c.event_type == event_type, table.c.customer_id.is_not(None)]
        for name, value in properties:
            where.append(json_text(table.c.properties, name) == value)
        return where

    def _events(self, condition: Events) -> sa.ColumnElement[bool]:
        return self._events_batch([condition], "all")

    def _events_batch(self, conditions: list[Events], combine: str) -> sa.ColumnElement[bool]:
        """Events conditions over one window, counted apart (``FILTER``) in one scan."""
        e = events.alias("e")
        filters = [sa.and_(*self._event_filter(e, c.event, c.properties)) for c in conditions]
        grouped = (sa.select(e.c.customer_id)
                   .where(sa.or_(*filters) if len(filters) > 1 else filters[0],
                          self._in_time(e.c.occurred_at, conditions[0].window))
                   .group_by(e.c.customer_id))
        if len(conditions) == 1:
            counts = [sa.func.count()]
        else:
            counts = [sa.func.count().filter(condition) for condition in filters]
        tests = [_compare(n, c.op, c.count) for n, c in zip(counts, conditions, strict=True)]
        absent_pass = [_compare_python(0, c.op, c.count) for c in conditions]
        return self._by_tests(grouped, tests, absent_pass, combine)

    def _sequence(self, condition: Sequence) -> sa.ColumnElement[bool]:
        a = events.alias("a")
        b = events.alias("b")
        within = timedelta(hours=condition.within_hours)
        followed = sa.exists().where(
            b.c.customer_id == a.c.customer_id, b.c.event_type == condition.then,
            b.c.occurred_at > a.c.occurred_at,
            b.c.occurred_at <= plus_seconds(a.c.occurred_at, within.total_seconds()),
            b.c.occurred_at <= self.as_of)
        where = [*self._event_filter(a, condition.first, condition.first_properties),
                 self._in_time(a.c.occurred_at, condition.window)]
        if condition.then_happened:
            where.append(followed)
        else:
            where += [a.c.occurred_at <= self.as_of - within, sa.not_(followed)]
        return self._member_of(sa.select(a.c.customer_id).where(*where))

    def _campaign(self, condition: Campaign) -> sa.ColumnElement[bool]:
        s = campaign_sends.alias("s")
        column = {"received": s.c.sent_at, "opened": s.c.opened_at,
                  "clicked": s.c.clicked_at}[condition.action]
        where = [s.c.customer_id.is_not(None), self._in_time(column, condition.window)]
        if condition.campaign_id is not None:
            where.append(s.c.campaign_id == condition.campaign_id)
        return self._member_of(sa.select(s.c.customer_id).where(*where))

    def _score(self, condition: Score) -> sa.ColumnElement[bool]:
        if not self.has_scores:
            raise DefinitionError("score conditions need predictive scores, and the warehouse "
                                  "has none yet; train and score a model first.")
        s = scores.alias("s")
        ranked_runs = sa.select(
            s.c.customer_id, s.c.score,
            sa.func.row_number().over(partition_by=s.c.customer_id,
                                      order_by=s.c.scored_at.desc()).label("recency"),
        ).where(s.c.target == condition.target, s.c.scored_at <= self.as_of,
                s.c.customer_id.is_not(None)).subquery("scored_runs")
        current = (sa.select(ranked_runs.c.customer_id, ranked_runs.c.score)
                   .where(ranked_runs.c.recency == 1).subquery("current_scores"))
        if condition.op == "gte":
            return self._member_of(sa.select(current.c.customer_id)
                                   .where(current.c.score >= condition.value))
        ranked = sa.select(current.c.customer_id, sa.func.cume_dist().over(
            order_by=current.c.score.desc()).label("share")).subquery("ranked_scores")
        return self._member_of(sa.select(ranked.c.customer_id)
                               .where(ranked.c.share <= condition.value / 100))

    def _rfm(self, condition: Rfm) -> sa.ColumnElement[bool]:
        rfm = rfm_scores(self.as_of, from_summary=self.order_summary_complete)
        return self._member_of(sa.select(rfm.c.customer_id)
                               .where(rfm.c.rfm_group.in_(list(condition.groups))))

    def _membership(self, condition: Membership) -> sa.ColumnElement[bool]:
        if self.resolve_segment is None:
            raise DefinitionError(f"segment {condition.segment!r} is referenced, but there are "
                                  "no saved segments to look it up in.")
        if condition.segment in self._resolving:
            chain = " -> ".join([*self._resolving, condition.segment])
            raise DefinitionError(f"segments refer to each other in a circle ({chain}); "
                                  "remove one of the references.")
        self._resolving.append(condition.segment)
        try:
            return self.node(self.resolve_segment(condition.segment).rule)
        finally:
            self._resolving.pop()
