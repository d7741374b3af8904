"""SQLAlchemy Core views of the warehouse tables, and the few dialect-specific pieces.

Tables are declared from :mod:`studio.schema` (never reflected). Segments compile to SQL
for DuckDB, where they run, and for PostgreSQL, so that they can later run on a warehouse
engine; the only construct that differs is reading a text value out of a JSON column.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from studio import schema

_TYPES = {"VARCHAR": sa.String, "TIMESTAMP": sa.DateTime, "DOUBLE": sa.Float,
          "INTEGER": sa.Integer, "BIGINT": sa.BigInteger, "BOOLEAN": sa.Boolean}

metadata = sa.MetaData()


def _declare(table: schema.Table) -> sa.Table:
    return sa.Table(table.name, metadata,
                    *(sa.Column(c.name, _TYPES[c.type]()) for c in table.columns))


TABLES: dict[str, sa.Table] = {t.name: _declare(t) for t in schema.CANONICAL_TABLES}
customers = TABLES["customers"]
orders = TABLES["orders"]
order_items = TABLES["order_items"]
products = TABLES["products"]
events = TABLES["events"]
consent_events = TABLES["consent_events"]
campaign_sends = TABLES["campaign_sends"]
scores = sa.Table("scores", metadata, sa.Column("customer_id", sa.String),
                  sa.Column("target", sa.String), sa.Column("model_version", sa.String),
                  sa.Column("score", sa.Float), sa.Column("decile", sa.Integer),
                  sa.Column("scored_at", sa.DateTime))
customer_order_summary = sa.Table(
    "customer_order_summary", metadata, sa.Column("customer_id", sa.String),
    sa.Column("purchases", sa.BigInteger), sa.Column("revenue", sa.Float),
    sa.Column("first_order_at", sa.DateTime), sa.Column("last_order_at", sa.DateTime))
consent_current = sa.Table(
    "consent_current", metadata, sa.Column("customer_id", sa.String),
    sa.Column("channel", sa.String), sa.Column("status", sa.String),
    sa.Column("ever_subscribed", sa.Boolean))
"""The rollups of :mod:`studio.rollups`."""


def money(amount) -> sa.Cast:
    """``amount`` as exact cents (DECIMAL(18, 2)).

    Sums of money then do not depend on the order rows are added in, and "revenue >= 748"
    holds or fails the same way every time.
    """
    return sa.cast(amount, sa.Numeric(18, 2))


class json_text(FunctionElement):  # noqa: N801 - reads like the SQL function it renders
    """The text of key ``key`` of the JSON object in ``column`` (NULL when absent)."""

    type = sa.String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text, "duckdb")
def _json_text_duckdb(element, compiler, **kw):
    column, key = list(element.clauses)
    rendered = compiler.process(column, **kw)
    # a malformed JSON value is "no such key", not an error that fails the whole segment
    return (f"(CASE WHEN json_valid({rendered}) THEN json_extract_string({rendered}, "
            f"'$.' || {compiler.process(key, **kw)}) END)")


@compiles(json_text, "postgresql")
def _json_text_postgresql(element, compiler, **kw):
    column, key = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSON) ->> {compiler.process(key, **kw)})"


class number_value(FunctionElement):  # noqa: N801 - reads like the SQL function it renders
    """The numeric value of a text, or NULL when the text is not a number."""

    type = sa.Float()
    inherit_cache = True
    name = "number_value"


@compiles(number_value, "duckdb")
def _number_value_duckdb(element, compiler, **kw):
    (text,) = list(element.clauses)
    return f"TRY_CAST({compiler.process(text, **kw)} AS DOUBLE)"


@compiles(number_value, "postgresql")
def _number_value_postgresql(element, compiler, **kw):
    (text,) = list(element.clauses)
    rendered = compiler.process(text, **kw)
    return (f"(CASE WHEN {rendered} ~ '^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$' "
            f"THEN CAST({rendered} AS DOUBLE PRECISION) END)")


class plus_seconds(FunctionElement):  # noqa: N801 - reads like the SQL function it renders
    """A timestamp plus a number of seconds (written so both engines and people can run it)."""

    type = sa.DateTime()
    inherit_cache = True
    name = "plus_seconds"


@compiles(plus_seconds, "duckdb")
def _plus_seconds_duckdb(element, compiler, **kw):
    moment, seconds = list(element.clauses)
    return (f"({compiler.process(moment, **kw)} + "
            f"to_seconds(CAST({compiler.process(seconds, **kw)} AS DOUBLE)))")


@compiles(plus_seconds, "postgresql")
def _plus_seconds_postgresql(element, compiler, **kw):
    moment, seconds = list(element.clauses)
    return (f"({compiler.process(moment, **kw)} + "
            f"make_interval(secs => {compiler.process(seconds, **kw)}))")


class AsofOuterJoin(sa.sql.selectable.Join):
    """``left ASOF LEFT JOIN right ON ...``: each left row with its nearest right row.

    The condition holds equalities and exactly one inequality; DuckDB pairs each left row
    with the right row that satisfies it most closely (for ``right.t > left.t``, the
    earliest later one), or none. A funnel step is the earliest occurrence after the
    previous one: one ASOF join finds it instead of joining every later occurrence and
    keeping the minimum. Only DuckDB has it; other dialects refuse to compile it.
    """

    inherit_cache = True

    def __init__(self, left, right, onclause) -> None:
        super().__init__(left, right, onclause, isouter=True)


@compiles(AsofOuterJoin, "duckdb")
def _asof_outer_join_duckdb(join, compiler, asfrom=False, from_linter=None, **kw):
    return (join.left._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw)
            + " ASOF LEFT JOIN "
            + join.right._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter,
                                            **kw)
            + " ON " + join.onclause._compiler_dispatch(compiler, from_linter=from_linter, **kw))


@compiles(AsofOuterJoin)
def _asof_outer_join_elsewhere(join, compiler, **kw):
    raise sa.exc.CompileError(f"ASOF joins are DuckDB's; {compiler.dialect.name} has none.")


@functools.cache
def duckdb_dialect() -> sa.engine.Dialect:
    """The DuckDB dialect with ``$1``-style parameters, as DuckDB's Python API takes them.

    Made once: building a dialect costs about a millisecond and a half, paid twice per
    chart (its query and its readable SQL) when made per call.
    """
    return DuckDBDialect(paramstyle="numeric_dollar")


def to_sql(statement: sa.sql.ClauseElement) -> tuple[str, list]:
    """DuckDB SQL text and its positional parameters for ``statement``."""
    compiled = statement.compile(dialect=duckdb_dialect(),
                                 compile_kwargs={"render_postcompile": True})
    params = compiled.params
    return compiled.string, [params[name] for name in compiled.positiontup]


def to_readable_sql(statement: sa.sql.ClauseElement, dialect: str = "duckdb") -> str:
    """SQL with the values written in (quoted by SQLAlchemy), for people to read and copy."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        chosen = postgresql.dialect()
    else:
        chosen = duckdb_dialect()
    return str(statement.compile(dialect=chosen, compile_kwargs={"literal_binds": True}))
