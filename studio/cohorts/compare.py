"""Compare saved segments side by side on the same KPIs, over the filter's date range.

Each segment's members are evaluated once, as of the range's end (or the data's latest
order time), exactly as :func:`studio.cohorts.common.segment_members` does; the filter's
own segment does not apply here, since the compared segments are the groups. Per segment:

``customers``
    members;
``buyers``
    members with a valid purchase in the date range;
``orders``, ``revenue``
    those purchases and their total;
``average_order_value``
    ``revenue / orders``;
``orders_per_buyer``
    ``orders / buyers``;
``repeat_rate``
    buyers with two or more purchases in the range, over buyers;
``revenue_per_customer``
    ``revenue / customers`` (members who bought nothing count);
``share_email_subscribed``, ``share_sms_subscribed``
    members whose latest consent on the channel, as of the same moment, is "subscribed".

Ratios with a zero denominator are NULL. The first row, "All customers", is every
customer, for reference (``baseline=False`` leaves it out).
"""

from __future__ import annotations

import functools

import duckdb
import plotly.graph_objects as go
import polars as pl
import sqlalchemy as sa
from plotly.subplots import make_subplots

from studio.cohorts.common import (
    EVERYTHING,
    CohortFilter,
    CohortView,
    FrameReader,
    in_range,
    read_frame,
    run_view,
)
from studio.config import Settings
from studio.errors import UserError
from studio.rfm import valid_purchase
from studio.rollups import rollup_coverage
from studio.segments import library
from studio.segments.compiler import Compiler
from studio.segments.operations import default_as_of, has_table
from studio.sql import customers, money, orders

BASELINE = "All customers"
KPIS = {"customers": ("Customers", ",.0f"), "buyers": ("Buyers", ",.0f"),
        "orders": ("Orders", ",.0f"), "revenue": ("Revenue", ",.2f"),
        "average_order_value": ("Average order value", ",.2f"),
        "orders_per_buyer": ("Orders per buyer", ".2f"), "repeat_rate": ("Repeat rate", ".1%"),
        "revenue_per_customer": ("Revenue per customer", ",.2f"),
        "share_email_subscribed": ("Subscribed to e-mail", ".1%"),
        "share_sms_subscribed": ("Subscribed to SMS", ".1%")}
"""KPI column -> (label, number format for the chart)."""


def _ratio(numerator, denominator) -> sa.ColumnElement:
    return sa.cast(numerator, sa.Double) / sa.func.nullif(sa.cast(denominator, sa.Double), 0)


def _kpis_at(compiler: Compiler, tags: list[int], memberships: sa.CTE, purchases: sa.CTE,
             among: sa.Select | None, k: int) -> sa.Select:
    """Counts per position for the segments in ``tags``, whose consent moment is ``compiler``'s."""
    email = compiler.subscribed_now("email", among=among).cte(f"email_subscribed_{k}")
    sms = compiler.subscribed_now("sms", among=among).cte(f"sms_subscribed_{k}")
    m, p = memberships, purchases
    joined = (m.outerjoin(p, p.c.customer_id == m.c.customer_id)
              .outerjoin(email, email.c.customer_id == m.c.customer_id)
              .outerjoin(sms, sms.c.customer_id == m.c.customer_id))
    return (sa.select(
        m.c.position,
        sa.func.count().label("customers"),
        sa.func.count(p.c.customer_id).label("buyers"),
        sa.func.coalesce(sa.func.sum(p.c.orders), 0).label("orders"),
        sa.func.coalesce(sa.func.sum(p.c.revenue), 0).label("revenue"),
        sa.func.count().filter(p.c.orders >= 2).label("repeat_buyers"),
        sa.func.count(email.c.customer_id).label("email"),
        sa.func.count(sms.c.customer_id).label("sms"),
    ).select_from(joined).where(m.c.position.in_(tags)).group_by(m.c.position))


def compare_statement(settings: Settings, con: duckdb.DuckDBPyConnection, names: list[str],
                      filter: CohortFilter = EVERYTHING, baseline: bool = True) -> sa.Select:
    """The KPIs of each named saved segment (after the baseline), one row each, in order.

    The members of every segment are gathered first, tagged by position, then joined once
    to each customer's purchases and current consent: the orders and the consent history are
    read once for all segments together, not once per segment.
    """
    moment = filter.end or default_as_of(con)
    resolve = library.resolver(settings)
    has_scores, rollups = has_table(con, "scores"), rollup_coverage(con)

    def compiler_at(when) -> Compiler:
        return Compiler(when, resolve, has_scores=has_scores, rollups=rollups)

    groups: list[tuple[str, sa.Select, Compiler]] = []
    if baseline:
        groups.append((BASELINE, sa.select(customers.c.customer_id), compiler_at(moment)))
    for name in names:
        definition = library.load_segment(settings, name)
        compiler = compiler_at(filter.end or definition.as_of or moment)
        groups.append((name, compiler.members_query(definition.rule), compiler))
    tagged = [sa.select(sa.literal(tag, sa.Integer).label("position"),
                        members.subquery(f"members_{tag}").c.customer_id)
              for tag, (_label, members, _compiler) in enumerate(groups)]
    memberships = (sa.union_all(*tagged) if len(tagged) > 1 else tagged[0]).cte("memberships")
    everyone = sa.select(memberships.c.customer_id)
    purchases = (sa.select(orders.c.customer_id, sa.func.count().label("orders"),
                           sa.func.sum(money(orders.c.total)).label("revenue"))
                 .where(valid_purchase(orders), *in_range(orders.c.ordered_at, filter))
                 .group_by(orders.c.customer_id).cte("purchases"))
    by_moment: dict = {}  # segments pinned to other dates read consent at their own moment
    for tag, (_label, _members, compiler) in enumerate(groups):
        by_moment.setdefault(compiler.as_of, (compiler, []))[1].append(tag)
    among = None if baseline else everyone  # everyone is every customer: no filter needed
    parts = [_kpis_at(compiler, tags, memberships, purchases, among, k)
             for k, (compiler, tags) in enumerate(by_moment.values())]
    counts = (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery("counts")
    labels = (sa.values(sa.column("position", sa.Integer), sa.column("segment", sa.String),
                        name="segment_labels")
              .data([(tag, label) for tag, (label, _m, _c) in enumerate(groups)]))
    # an empty segment has no membership rows: it gets its zeros from the left join
    c = {name: sa.func.coalesce(counts.c[name], 0) for name in
         ("customers", "buyers", "orders", "revenue", "repeat_buyers", "email", "sms")}
    return (sa.select(
        labels.c.segment, c["customers"].label("customers"), c["buyers"].label("buyers"),
        sa.cast(c["orders"], sa.BigInteger).label("orders"), c["revenue"].label("revenue"),
        _ratio(c["revenue"], c["orders"]).label("average_order_value"),
        _ratio(c["orders"], c["buyers"]).label("orders_per_buyer"),
        _ratio(c["repeat_buyers"], c["buyers"]).label("repeat_rate"),
        _ratio(c["revenue"], c["customers"]).label("revenue_per_customer"),
        _ratio(c["email"], c["customers"]).label("share_email_subscribed"),
        _ratio(c["sms"], c["customers"]).label("share_sms_subscribed"),
    ).select_from(labels.outerjoin(counts, labels.c.position == counts.c.position))
        .order_by(labels.c.position))


COLUMNS = 5
"""Small charts per row in the comparison figure."""
PALETTE = ("#94A3B8", "#818CF8", "#EA580C", "#10B981", "#F59E0B", "#EC4899", "#0EA5E9")


@functools.cache
def _grid_layout() -> dict:
    """The layout of one small chart per KPI, built once: ``make_subplots`` is slow."""
    figure = make_subplots(rows=-(-len(KPIS) // COLUMNS), cols=COLUMNS,
                           subplot_titles=[label for label, _ in KPIS.values()],
                           vertical_spacing=0.18)
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    layout = figure.layout.to_plotly_json()
    del layout["template"]  # each new figure takes the default template itself, far faster
    return layout


def compare_figure(frame: pl.DataFrame) -> go.Figure:
    """One small bar chart per KPI, the segments as bars in the same colours throughout."""
    segments = frame["segment"].to_list()
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(segments))]
    traces = []
    for index, (column, (label, number_format)) in enumerate(KPIS.items()):
        axis = "" if index == 0 else str(index + 1)  # the subplots' axes: x, x2, x3, ...
        traces.append(go.Bar(
            x=segments, y=[None if v is None else float(v) for v in frame[column].to_list()],
            xaxis=f"x{axis}", yaxis=f"y{axis}", showlegend=False, marker_color=colours,
            hovertemplate=f"%{{x}}<br>{label}: %{{y:{number_format}}}<extra></extra>"))
    return go.Figure(traces, layout=_grid_layout())


def compare_segments(settings: Settings, con: duckdb.DuckDBPyConnection, names: list[str],
                     filter: CohortFilter = EVERYTHING, baseline: bool = True,
                     read: FrameReader = read_frame) -> CohortView:
    """Saved segments side by side on the same KPIs (see the module docstring).

    Raises
    ------
    UserError
        When no segment is named, or for an unknown segment.
    """
    chosen = list(dict.fromkeys(names))
    if not chosen:
        raise UserError("Choose at least one saved segment to compare.")
    statement = compare_statement(settings, con, chosen, filter, baseline)
    return run_view(con, statement, "Segments compared", compare_figure, read)
