"""The dialect-specific pieces of studio.sql: the ASOF join runs on DuckDB and nowhere else."""

from datetime import datetime

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from studio.sql import AsofOuterJoin, to_readable_sql, to_sql

visits = sa.table("visits", sa.column("customer_id", sa.Integer),
                  sa.column("seen_at", sa.DateTime))
carts = sa.table("carts", sa.column("customer_id", sa.Integer), sa.column("seen_at", sa.DateTime))


def next_cart_statement() -> sa.Select:
    """Each visit with the customer's first cart strictly after it (NULL when none)."""
    nearest = AsofOuterJoin(visits, carts, sa.and_(carts.c.customer_id == visits.c.customer_id,
                                                   carts.c.seen_at > visits.c.seen_at))
    return (sa.select(visits.c.customer_id, visits.c.seen_at, carts.c.seen_at.label("cart_at"))
            .select_from(nearest).order_by(visits.c.customer_id, visits.c.seen_at))


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE TABLE visits (customer_id INTEGER, seen_at TIMESTAMP)")
    con.execute("CREATE TABLE carts (customer_id INTEGER, seen_at TIMESTAMP)")
    con.execute("""INSERT INTO visits VALUES (1, '2024-01-01 10:00'), (1, '2024-01-01 12:00'),
                   (2, '2024-01-01 10:00'), (3, '2024-01-01 10:00')""")
    # customer 1: a cart at 11:00 and 13:00, and one at exactly 12:00 (not strictly after);
    # customer 2: only an earlier cart; customer 3: none
    con.execute("""INSERT INTO carts VALUES (1, '2024-01-01 13:00'), (1, '2024-01-01 11:00'),
                   (1, '2024-01-01 12:00'), (2, '2024-01-01 09:00')""")
    yield con
    con.close()


def test_the_asof_join_keeps_every_left_row_with_its_nearest_later_match(con):
    sql, params = to_sql(next_cart_statement())
    assert "ASOF LEFT JOIN" in sql
    rows = con.execute(sql, params).fetchall()
    assert rows == [
        (1, datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11)),
        (1, datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 13)),
        (2, datetime(2024, 1, 1, 10), None),
        (3, datetime(2024, 1, 1, 10), None),
    ]
    assert con.execute(to_readable_sql(next_cart_statement())).fetchall() == rows


def test_the_asof_join_refuses_to_compile_where_it_does_not_exist():
    with pytest.raises(sa.exc.CompileError, match="ASOF joins are DuckDB's; postgresql"):
        next_cart_statement().compile(dialect=postgresql.dialect())
