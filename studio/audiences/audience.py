"""Who an export reaches: a saved segment's members, re-checked for consent at send time.

The segment is evaluated at its ``as_of`` (by default the data's latest order time, as
counts are), but consent is read at the moment of sending: the latest event of each
person's whole consent history on the channel, so an unsubscribe recorded after
``as_of`` still stops the send. Only people currently subscribed on the channel, with an
address for it (an e-mail for ``email``, a phone number for ``sms``), are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl
import sqlalchemy as sa

from studio.config import Settings
from studio.errors import UserError
from studio.rollups import RollupCoverage, rollup_coverage
from studio.segments import library
from studio.segments.compiler import Compiler
from studio.segments.operations import CONTACT_COLUMN, default_as_of, has_table
from studio.sql import customers, scores, to_sql

CHANNELS = tuple(CONTACT_COLUMN)
AUDIENCE_COLUMNS = ("customer_id", "email", "phone", "country")


@dataclass(frozen=True)
class Audience:
    """The members one export sends, and where they came from.

    Attributes
    ----------
    rows
        One row per consented member: ``customer_id, email, phone, country`` (and, when
        ranked by a score, ``score`` and the ``model_version`` that scored it, so a
        destination can tell which model picked each person), sorted by ``customer_id``.
    matched
        Members of the segment before the consent check (and before any top N).
    consented
        Members left after the consent check, before any top N.
    model_versions
        ``{score target: [model versions of the scores used]}``.
    """

    segment: str
    version: int
    as_of: datetime
    channel: str
    rows: pl.DataFrame
    matched: int
    consented: int
    top_n: int | None = None
    score_target: str | None = None
    model_versions: dict[str, list[str]] = field(default_factory=dict)


def _query_frame(con: duckdb.DuckDBPyConnection, statement) -> pl.DataFrame:
    sql, params = to_sql(statement)
    return con.sql(sql, params=params).pl()


def latest_consent_at(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The time of the latest consent event in the warehouse (``None`` without any)."""
    return con.execute("SELECT max(occurred_at) FROM consent_events").fetchall()[0][0]


def moment_after(latest: datetime | None) -> datetime:
    """Now, or ``latest`` if the history runs later: every consent event counts."""
    now = datetime.now().replace(microsecond=0)
    return max(now, latest) if latest else now


def consent_moment(con: duckdb.DuckDBPyConnection) -> datetime:
    """Now, or the latest consent event if the history runs later: every event counts."""
    return moment_after(latest_consent_at(con))


def consented_members(con: duckdb.DuckDBPyConnection, member_ids: sa.Select,
                      channel: str) -> sa.Select:
    """The audience columns of ``member_ids`` who may be reached on ``channel`` right now."""
    return reachable_members(member_ids, channel, consent_moment(con), rollup_coverage(con))


def reachable_members(member_ids: sa.Select, channel: str, moment: datetime,
                      rollups: RollupCoverage | None) -> sa.Select:
    """:func:`consented_members` with the consent moment and rollup coverage already known.

    Both change only when a load publishes the warehouse, so a caller checking batch after
    batch (:mod:`studio.audiences.consent_gate`) reads them once per published version.
    """
    compiler = Compiler(moment, rollups=rollups)
    address = sa.func.nullif(customers.c[CONTACT_COLUMN[channel]], "")
    return (sa.select(*(customers.c[name] for name in AUDIENCE_COLUMNS))
            .where(customers.c.customer_id.in_(member_ids),
                   customers.c.customer_id.in_(compiler.subscribed_now(channel,
                                                                       among=member_ids)),
                   address.is_not(None))
            .order_by(customers.c.customer_id))


def latest_scores(target: str, as_of: datetime) -> sa.Subquery:
    """Each customer's latest score for ``target`` scored at or before ``as_of``."""
    ranked = sa.select(
        scores.c.customer_id, scores.c.score, scores.c.model_version,
        sa.func.row_number().over(partition_by=scores.c.customer_id,
                                  order_by=scores.c.scored_at.desc()).label("recency"),
    ).where(scores.c.target == target, scores.c.scored_at <= as_of,
            scores.c.customer_id.is_not(None)).subquery("ranked_scores")
    return (sa.select(ranked.c.customer_id, ranked.c.score, ranked.c.model_version)
            .where(ranked.c.recency == 1).subquery("latest_scores"))


def _top_by_score(con, rows: pl.DataFrame, top_n: int, target: str,
                  as_of: datetime) -> tuple[pl.DataFrame, list[str]]:
    if not has_table(con, "scores"):
        raise UserError("Ranking by a score needs predictive scores and the warehouse has "
                        "none; train and score a model first ('studio models').")
    current = _query_frame(con, sa.select(latest_scores(target, as_of)))
    if current.is_empty():
        raise UserError(f"No scores for the target {target!r} exist up to {as_of:%Y-%m-%d}; "
                        "score that target first or pick another with --by.")
    ranked = (rows.join(current, on="customer_id", how="inner")
              .sort(["score", "customer_id"], descending=[True, False]).head(top_n))
    versions = sorted(ranked["model_version"].drop_nulls().unique().to_list())
    return ranked.sort("customer_id"), versions


def build_audience(settings: Settings, con: duckdb.DuckDBPyConnection, segment: str, *,
                   version: int | None = None, as_of: datetime | None = None,
                   channel: str = "email", top_n: int | None = None,
                   score_target: str | None = None) -> Audience:
    """The consented members of the saved segment ``segment`` (optionally its top N by score).

    Raises
    ------
    UserError
        For an unknown segment or version, an unknown channel, or a top N without a target.
    """
    if channel not in CHANNELS:
        raise UserError(f"Unknown channel {channel!r}; use one of {', '.join(CHANNELS)}.")
    if (top_n is None) != (score_target is None):
        raise UserError("A top N needs both a size and a score target; give --top N --by TARGET.")
    if top_n is not None and top_n < 1:
        raise UserError(f"--top must be a positive number of people, not {top_n}.")
    definition = library.load_segment(settings, segment, version)
    saved_version = version or library.segment_history(settings, segment)[0]["version"]
    moment = as_of or definition.as_of or default_as_of(con)
    compiler = Compiler(moment, library.resolver(settings), has_scores=has_table(con, "scores"),
                        rollups=rollup_coverage(con))
    member_ids = compiler.members_query(definition.rule)
    matched = con.execute(*to_sql(sa.select(sa.func.count()).select_from(
        member_ids.subquery()))).fetchall()[0][0]
    rows = _query_frame(con, consented_members(con, member_ids, channel))
    consented, versions = rows.height, {}
    if top_n is not None:
        rows, used = _top_by_score(con, rows, top_n, score_target, moment)
        versions = {score_target: used}
    return Audience(segment=segment, version=saved_version, as_of=moment, channel=channel,
                    rows=rows, matched=int(matched), consented=consented, top_n=top_n,
                    score_target=score_target, model_versions=versions)
