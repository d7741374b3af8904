"""The demo store generator: determinism, the file contract, behaviour and dirty rows.

Most checks read one 5,000-customer store with DuckDB, independently of the generator's
own arrays; the A/B check uses a larger clean store so that the effects are measurable.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path

import duckdb
import pytest

from etl.generate import activity_files, generate_store
from studio.errors import UserError
from studio.schema import TABLES_BY_NAME

CUSTOMERS = 5_000
SEED = 11
AS_OF = "2024-12-31 23:59:59"

FILES = {
    "customers.csv": "customers", "products.csv": "products", "campaigns.csv": "campaigns",
    "consent_events.ndjson": "consent_events", "orders.csv": "orders",
    "order_items.parquet": "order_items", "campaign_sends.parquet": "campaign_sends",
}


def scan(folder: Path, name: str) -> str:
    """A DuckDB table expression reading a generated file the way a loader would."""
    path = folder / name
    if name.endswith(".csv"):
        return f"read_csv('{path}', all_varchar = true, header = true)"
    if name.endswith(".ndjson"):
        return f"read_json('{path}', format = 'newline_delimited')"
    return f"read_parquet('{path}')"


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("store")
    manifest = generate_store(folder, customers=CUSTOMERS, seed=SEED)
    return folder, manifest


@pytest.fixture(scope="module")
def con(store: tuple[Path, dict]) -> duckdb.DuckDBPyConnection:
    """Views over every file, plus the clean rows as a loader would keep them."""
    folder, _ = store
    con = duckdb.connect()
    for file, view in FILES.items():
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {scan(folder, file)}")
    con.execute(f"CREATE VIEW events AS SELECT * FROM '{folder}/events/*.parquet'")
    con.execute(f"CREATE VIEW truth AS SELECT * FROM '{folder}/truth/customers.parquet'")
    con.execute("""
        CREATE TABLE known_customers AS
        SELECT customer_id, min(signed_up_at::TIMESTAMP) AS signed_up_at FROM customers
        WHERE customer_id IS NOT NULL AND TRY_CAST(signed_up_at AS TIMESTAMP) IS NOT NULL
        GROUP BY ALL""")
    con.execute("""
        CREATE TABLE clean_orders AS
        SELECT DISTINCT order_id, customer_id, is_guest::BOOLEAN AS is_guest,
               ordered_at::TIMESTAMP AS ordered_at, status, subtotal::DOUBLE AS subtotal,
               discount::DOUBLE AS discount, total::DOUBLE AS total,
               updated_at::TIMESTAMP AS updated_at
        FROM orders
        WHERE order_id IS NOT NULL AND TRY_CAST(ordered_at AS TIMESTAMP) IS NOT NULL
          AND total::DOUBLE >= 0
          AND (is_guest::BOOLEAN OR customer_id IN (SELECT customer_id FROM known_customers))""")
    con.execute("""
        CREATE TABLE clean_events AS
        SELECT DISTINCT event_id, customer_id, session_id, event_type,
               occurred_at::TIMESTAMP AS occurred_at, product_id, properties
        FROM events
        WHERE event_id IS NOT NULL AND TRY_CAST(occurred_at AS TIMESTAMP) IS NOT NULL
          AND customer_id IN (SELECT customer_id FROM known_customers)""")
    con.execute("""
        CREATE TABLE valid_orders AS
        SELECT customer_id, ordered_at FROM clean_orders
        WHERE status = 'completed' AND NOT is_guest""")
    return con


def one(con: duckdb.DuckDBPyConnection, query: str):
    return con.execute(query).fetchone()[0]


def duplicates(table: str) -> str:
    """Rows beyond the first of each group of identical rows."""
    return f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM {table})) FROM {table}"


# --- arguments, determinism, the contract -------------------------------------------------

@pytest.mark.parametrize(("arguments", "named"), [
    ({"customers": 99}, "customers"),
    ({"customers": 5000.5}, "customers"),
    ({"dirty_share": 0.21}, "dirty_share"),
    ({"dirty_share": -0.01}, "dirty_share"),
    ({"dirty_share": "0.01"}, "dirty_share"),
])
def test_bad_arguments_are_refused_with_one_sentence(tmp_path: Path, arguments, named):
    with pytest.raises(UserError, match=named) as raised:
        generate_store(tmp_path / "out", **arguments)
    assert str(raised.value).count(". ") == 0 and str(raised.value).endswith(".")
    assert not (tmp_path / "out").exists()


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path):
    seen: list[tuple[str, float]] = []
    generate_store(tmp_path / "a", customers=3_000, seed=5,
                   progress=lambda label, done: seen.append((label, done)))
    generate_store(tmp_path / "b", customers=3_000, seed=5)
    generate_store(tmp_path / "c", customers=3_000, seed=6)
    first, second, other = (digests(tmp_path / x) for x in "abc")
    assert len(first) == 11 and first == second
    assert set(first) == set(other)
    assert all(first[name] != other[name] for name in first)
    fractions = [done for _, done in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_manifest_row_counts_match_the_files(store, con):
    folder, manifest = store
    assert manifest["as_of"] == AS_OF and manifest["seed"] == SEED
    assert manifest["customers"] == CUSTOMERS and manifest["dirty_share"] == 0.01
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                     if p.is_file() and p.parent.name != "truth" and p.name != "manifest.json")
    assert sorted(manifest["rows"]) == on_disk
    for name, expected in manifest["rows"].items():
        assert one(con, f"SELECT count(*) FROM {scan(folder, name)}") == expected, name
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_columns_are_the_canonical_ones_with_text_timestamps(store, con):
    folder, _ = store
    for file, table in {**FILES, "events/part-00000.parquet": "events"}.items():
        described = con.execute(f"DESCRIBE SELECT * FROM {scan(folder, file)}").fetchall()
        canonical = [c for c in TABLES_BY_NAME[table].column_names if c != "_run_id"]
        assert [row[0] for row in described] == canonical, file
        if file.endswith(".parquet"):
            types = {row[0]: row[1] for row in described}
            for column in TABLES_BY_NAME[table].columns:
                if column.type == "TIMESTAMP":
                    assert types[column.name] == "VARCHAR", (file, column.name)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE order_items)")
                 .fetchall())
    assert types["line_number"] == "INTEGER" and types["quantity"] == "INTEGER"
    assert types["unit_price"] == "DOUBLE" and types["discount"] == "DOUBLE"


def test_no_timestamp_passes_as_of(store, con):
    folder, manifest = store
    for name in manifest["rows"]:
        table = FILES.get(name, "events")
        for column in TABLES_BY_NAME[table].columns:
            if column.type != "TIMESTAMP":
                continue
            latest = one(con, f"SELECT max(TRY_CAST({column.name} AS TIMESTAMP)) "
                              f"FROM {scan(folder, name)}")
            assert str(latest) <= AS_OF, (name, column.name)
    assert str(one(con, "SELECT max(churned_at) FROM truth")) <= AS_OF


def test_sizes_follow_the_per_customer_ratios(con):
    orders = one(con, "SELECT count(*) FROM clean_orders")
    assert 2.6 * CUSTOMERS < orders < 3.4 * CUSTOMERS
    assert 15 * CUSTOMERS < one(con, "SELECT count(*) FROM clean_events") < 28 * CUSTOMERS
    lines = one(con, "SELECT count(*) FROM order_items WHERE order_id IN "
                     "(SELECT order_id FROM clean_orders)")
    assert 2.3 < lines / orders < 2.7
    guests = one(con, "SELECT avg(is_guest::INT) FROM clean_orders")
    assert 0.035 < guests < 0.065
    assert one(con, "SELECT count(*) FROM clean_orders WHERE is_guest AND customer_id IS NOT "
                    "NULL") == 0
    shares = dict(con.execute("SELECT status, count(*) / sum(count(*)) OVER () FROM "
                              "clean_orders GROUP BY ALL").fetchall())
    assert 0.02 < shares["cancelled"] < 0.04 and 0.03 < shares["refunded"] < 0.05
    assert 200 <= one(con, "SELECT count(*) FROM products") <= 400
    assert one(con, "SELECT count(DISTINCT category) FROM products") == 10


# --- consistency of clean rows ---------------------------------------------------------------

def test_order_money_adds_up_to_the_cent(con):
    mismatched = one(con, """
        SELECT count(*) FROM clean_orders o JOIN (
            SELECT order_id, sum(quantity * unit_price) AS lines, sum(discount) AS discount
            FROM order_items GROUP BY ALL) i USING (order_id)
        WHERE abs(o.subtotal - i.lines) > 0.005 OR abs(o.discount - i.discount) > 0.005
           OR abs(o.total - round(o.subtotal - o.discount, 2)) > 0.005""")
    assert mismatched == 0
    assert one(con, "SELECT count(*) FROM clean_orders WHERE order_id NOT IN "
                    "(SELECT order_id FROM order_items)") == 0
    assert one(con, "SELECT count(*) FROM clean_orders WHERE updated_at < ordered_at") == 0
    later = con.execute("SELECT status, median(epoch(updated_at) - epoch(ordered_at)) "
                        "FROM clean_orders GROUP BY ALL").fetchall()
    delay = dict(later)
    assert delay["completed"] < delay["cancelled"] < delay["refunded"]
    assert one(con, "SELECT count(*) FROM order_items WHERE quantity <= 0 OR "
                    "line_number < 1") == 0


def test_clean_rows_reference_existing_rows(store, con):
    _, manifest = store
    orphan_lines = one(con, "SELECT count(*) FROM order_items WHERE order_id NOT IN "
                            "(SELECT order_id FROM clean_orders)")
    assert orphan_lines == manifest["knock_on"]["order_items.parquet"]["unknown_order"] > 0
    assert one(con, "SELECT count(*) FROM order_items WHERE product_id NOT IN "
                    "(SELECT product_id FROM products)") == 0
    assert one(con, "SELECT count(*) FROM clean_events WHERE product_id IS NOT NULL AND "
                    "product_id NOT IN (SELECT product_id FROM products)") == 0
    for table in ("campaign_sends", "consent_events"):
        assert one(con, f"SELECT count(*) FROM {table} WHERE customer_id NOT IN "
                        "(SELECT customer_id FROM known_customers)") == 0
    assert one(con, "SELECT count(*) FROM campaign_sends WHERE campaign_id NOT IN "
                    "(SELECT campaign_id FROM campaigns)") == 0
    for table, column in (("clean_orders", "ordered_at"), ("clean_events", "occurred_at")):
        low, high = con.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()
        assert str(low) >= "2023-01-01" and str(high) <= AS_OF
    assert one(con, "SELECT count(*) FROM clean_events e JOIN known_customers c "
                    "USING (customer_id) WHERE e.occurred_at < c.signed_up_at") == 0


def test_every_customer_order_has_its_order_event(con):
    customer_orders = one(con, "SELECT count(*) FROM clean_orders WHERE NOT is_guest")
    matched = one(con, """
        SELECT count(*) FROM clean_orders o JOIN clean_events e
          ON e.event_type = 'order' AND json_extract_string(e.properties, '$.order_id') = o.order_id
         AND e.customer_id = o.customer_id AND e.occurred_at = o.ordered_at
        WHERE NOT o.is_guest""")
    assert matched == customer_orders
    assert one(con, "SELECT count(*) FROM clean_events WHERE event_type = 'order'") == matched
    funnel = dict(con.execute("SELECT event_type, count(*) FROM clean_events GROUP BY ALL")
                  .fetchall())
    assert (funnel["page_view"] > funnel["product_view"] > funnel["add_to_cart"]
            > funnel["checkout_start"] > funnel["order"])
    wrong_price = one(con, """
        SELECT count(*) FROM clean_events e JOIN products p USING (product_id)
        WHERE json_extract(e.properties, '$.price')::DOUBLE <> p.price::DOUBLE
           OR json_extract_string(e.properties, '$.category') <> p.category""")
    assert wrong_price == 0
    assert one(con, "SELECT count(*) FROM clean_events WHERE (product_id IS NULL) <> "
                    "(event_type NOT IN ('product_view', 'add_to_cart'))") == 0


def test_consent_histories_agree_with_sends(con):
    unsubscribes = one(con, "SELECT count(DISTINCT send_id) FROM campaign_sends "
                            "WHERE unsubscribed_at IS NOT NULL")
    matched = one(con, """
        SELECT count(DISTINCT s.send_id) FROM campaign_sends s
        JOIN campaigns c USING (campaign_id)
        JOIN consent_events e ON e.customer_id = s.customer_id AND e.channel = c.channel
         AND e.status = 'unsubscribed' AND e.source = 'unsubscribe_link'
         AND e.occurred_at::TIMESTAMP = s.unsubscribed_at::TIMESTAMP""")
    link_events = one(con, "SELECT count(*) FROM consent_events WHERE source = "
                           "'unsubscribe_link'")
    assert unsubscribes > 0 and matched == unsubscribes == link_events
    not_subscribed = one(con, """
        WITH sends AS (SELECT DISTINCT s.send_id, s.customer_id, c.channel,
                              s.sent_at::TIMESTAMP AS sent_at
                       FROM campaign_sends s JOIN campaigns c USING (campaign_id)),
             history AS (SELECT customer_id, channel, status,
                                occurred_at::TIMESTAMP AS occurred_at FROM consent_events)
        SELECT count(*) FROM sends s ASOF LEFT JOIN history h
          ON s.customer_id = h.customer_id AND s.channel = h.channel
         AND s.sent_at >= h.occurred_at
        WHERE h.status IS DISTINCT FROM 'subscribed'""")
    assert not_subscribed == 0
    repeated = one(con, """
        SELECT count(*) FROM (
            SELECT status, lag(status) OVER (PARTITION BY customer_id, channel
                                            ORDER BY occurred_at) AS before
            FROM consent_events) WHERE status = before""")
    assert repeated == 0
    states = dict(con.execute("""
        SELECT status, count(*) FROM (
            SELECT arg_max(status, occurred_at) AS status FROM consent_events
            WHERE channel = 'email' GROUP BY customer_id) GROUP BY ALL""").fetchall())
    assert states["subscribed"] > states["unsubscribed"] > 0 and states["non_subscribed"] > 0
    assert one(con, "SELECT count(*) FROM (SELECT customer_id FROM consent_events "
                    "WHERE status = 'subscribed' GROUP BY customer_id, channel "
                    "HAVING count(*) > 1)") > 0


def test_message_reactions_have_realistic_rates(con):
    rates = {row[0]: row[1:] for row in con.execute("""
        SELECT c.channel, avg((opened_at IS NOT NULL)::INT), avg((clicked_at IS NOT NULL)::INT),
               avg((unsubscribed_at IS NOT NULL)::INT)
        FROM campaign_sends s JOIN campaigns c USING (campaign_id) GROUP BY ALL""").fetchall()}
    opened, clicked, left = rates["email"]
    assert 0.2 < opened < 0.4 and 0.02 < clicked < 0.06 and 0.0005 < left < 0.004
    opened, clicked, left = rates["sms"]
    assert opened == 0 and 0.02 < clicked < 0.07 and left > 0
    assert one(con, "SELECT count(*) FROM campaign_sends WHERE clicked_at < sent_at OR "
                    "opened_at < sent_at OR clicked_at < opened_at") == 0


def test_campaign_plan_mixes_plain_sends_and_ab_tests(con):
    plans = con.execute("SELECT channel, variants, control_variant FROM campaigns").fetchall()
    assert 44 <= len(plans) <= 56
    arms = [json.loads(variants) for _, variants, _ in plans]
    assert all(abs(sum(a["weight"] for a in arm) - 1) < 1e-9 for arm in arms)
    tests = [arm for arm in arms if len(arm) > 1]
    assert 0.25 < len(tests) / len(arms) < 0.4
    assert any(len(arm) == 3 for arm in tests)
    assert any(len({a["weight"] for a in arm}) > 1 for arm in tests)
    assert all((control is None) == (len(arm) == 1)
               for (_, _, control), arm in zip(plans, arms, strict=True))
    assert {channel for channel, _, _ in plans} == {"email", "sms"}


# --- behaviour ------------------------------------------------------------------------------

def test_seasons_show_black_friday_and_december(con):
    daily = dict(con.execute("SELECT ordered_at::DATE, count(*) FROM clean_orders "
                             "GROUP BY ALL").fetchall())
    median_day = sorted(daily.values())[len(daily) // 2]
    for black_friday in ("2023-11-24", "2024-11-29"):
        assert daily[date.fromisoformat(black_friday)] > 2.5 * median_day
    for year in (2023, 2024):
        weekly = con.execute(f"""
            SELECT week(ordered_at) BETWEEN 45 AND 51 AS peak, median(n) FROM (
                SELECT week(ordered_at) AS w, any_value(ordered_at) AS ordered_at, count(*) AS n
                FROM clean_orders WHERE year(ordered_at) = {year} AND week(ordered_at) <= 51
                GROUP BY ALL) GROUP BY ALL""").fetchall()
        by_peak = dict(weekly)
        assert by_peak[True] > 1.3 * by_peak[False], year
    discounted = dict(con.execute("""
        SELECT ordered_at::DATE BETWEEN DATE '2023-11-24' AND DATE '2023-11-27'
               OR ordered_at::DATE BETWEEN DATE '2024-11-29' AND DATE '2024-12-02',
               avg((discount > 0)::INT)
        FROM clean_orders GROUP BY ALL""").fetchall())
    assert discounted[True] > 2.5 * discounted[False]


def test_customers_differ_in_rate_and_some_churn(con):
    spread, churned = con.execute("SELECT stddev(purchase_rate) / avg(purchase_rate), "
                                  "avg(churned::INT) FROM truth").fetchone()
    assert spread > 0.8 and 0.2 < churned < 0.6
    assert one(con, "SELECT count(*) FROM truth WHERE churned <> (churned_at IS NOT NULL)") == 0
    top_share = one(con, """
        SELECT sum(n) FILTER (WHERE rank <= 0.1) / sum(n) FROM (
            SELECT count(*) AS n, percent_rank() OVER (ORDER BY count(*) DESC) AS rank
            FROM valid_orders GROUP BY customer_id)""")
    assert top_share > 0.3
    after_churn = one(con, """
        SELECT count(*) FROM valid_orders o JOIN truth t USING (customer_id)
        WHERE o.ordered_at > t.churned_at::TIMESTAMP""")
    assert after_churn == 0


def test_recent_carts_predict_purchases_beyond_recency_and_frequency(con):
    """Among live customers with no order in the last 30 days, a cart in those 30 days
    raises the chance of buying in the next 30 days, within each frequency bucket."""
    counts: dict[tuple[int, bool], list[int]] = {}
    for cutoff in ("2024-02-01", "2024-04-01", "2024-06-01", "2024-08-01", "2024-10-01"):
        rows = con.execute(f"""
            WITH live AS (
                SELECT t.customer_id FROM truth t JOIN known_customers c USING (customer_id)
                WHERE (t.churned_at IS NULL OR t.churned_at::TIMESTAMP > DATE '{cutoff}')
                  AND c.signed_up_at < DATE '{cutoff}' - INTERVAL 60 DAY),
            features AS (
                SELECT l.customer_id,
                  count(*) FILTER (WHERE o.ordered_at < c
                                   AND o.ordered_at >= c - INTERVAL 365 DAY) AS frequency,
                  count(*) FILTER (WHERE o.ordered_at < c
                                   AND o.ordered_at >= c - INTERVAL 30 DAY) AS recent,
                  count(*) FILTER (WHERE o.ordered_at >= c
                                   AND o.ordered_at < c + INTERVAL 30 DAY) AS later
                FROM live l CROSS JOIN (SELECT DATE '{cutoff}' AS c)
                LEFT JOIN valid_orders o ON o.customer_id = l.customer_id
                GROUP BY l.customer_id),
            carts AS (
                SELECT DISTINCT customer_id FROM clean_events WHERE event_type = 'add_to_cart'
                  AND occurred_at < DATE '{cutoff}'
                  AND occurred_at >= DATE '{cutoff}' - INTERVAL 30 DAY)
            SELECT least(frequency, 4), c.customer_id IS NOT NULL, count(*),
                   sum((later > 0)::INT)
            FROM features f LEFT JOIN carts c USING (customer_id)
            WHERE recent = 0 GROUP BY ALL""").fetchall()
        for bucket, cart, n, buyers in rows:
            total = counts.setdefault((bucket, cart), [0, 0])
            total[0] += n
            total[1] += buyers
    # Mantel-Haenszel risk ratio over the frequency buckets.
    numerator = denominator = 0.0
    for bucket in range(5):
        (n1, b1), (n0, b0) = counts[(bucket, True)], counts[(bucket, False)]
        numerator += b1 * n0 / (n1 + n0)
        denominator += b0 * n1 / (n1 + n0)
        if n1 >= 40:
            assert b1 / n1 > 1.5 * b0 / n0, bucket
    assert numerator / denominator > 2.0


# --- dirty rows -----------------------------------------------------------------------------

def test_dirty_orders_are_counted_exactly(store, con):
    _, manifest = store
    found = {
        "duplicate": one(con, duplicates("orders")),
        "missing_key": one(con, "SELECT count(*) FROM orders WHERE order_id IS NULL"),
        "negative_total": one(con, "SELECT count(*) FROM orders WHERE total::DOUBLE < 0"),
        "bad_timestamp": one(con, "SELECT count(*) FROM orders WHERE "
                                  "TRY_CAST(ordered_at AS TIMESTAMP) IS NULL"),
        "unknown_customer": one(con, "SELECT count(*) FROM orders WHERE customer_id NOT IN "
                                     "(SELECT customer_id FROM customers WHERE customer_id "
                                     "IS NOT NULL)"),
    }
    assert found == manifest["dirty"]["orders.csv"]
    assert all(n > 0 for n in found.values())
    assert one(con, "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT "
                    "customer_id FROM known_customers) AND is_guest::BOOLEAN") == 0


def test_dirty_events_are_counted_exactly(store, con):
    _, manifest = store
    found = {
        "duplicate": one(con, duplicates("events")),
        "missing_event_id": one(con, "SELECT count(*) FROM events WHERE event_id IS NULL"),
        "missing_customer_id": one(con, "SELECT count(*) FROM events WHERE customer_id IS NULL"),
        "bad_timestamp": one(con, "SELECT count(*) FROM events WHERE "
                                  "TRY_CAST(occurred_at AS TIMESTAMP) IS NULL"),
        "unknown_customer": one(con, "SELECT count(*) FROM events WHERE customer_id NOT IN "
                                     "(SELECT customer_id FROM customers WHERE customer_id "
                                     "IS NOT NULL)"),
    }
    assert found == manifest["dirty"]["events/part-00000.parquet"]


def test_dirty_customers_and_newer_versions_are_counted_exactly(store, con):
    _, manifest = store
    found = {
        "duplicate": one(con, duplicates("customers")),
        "missing_key": one(con, "SELECT count(*) FROM customers WHERE customer_id IS NULL"),
        "bad_timestamp": one(con, "SELECT count(*) FROM customers WHERE "
                                  "TRY_CAST(signed_up_at AS TIMESTAMP) IS NULL"),
    }
    assert found == manifest["dirty"]["customers.csv"]
    versions = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE changed_email),
               count(*) FILTER (WHERE changed_country)
        FROM (SELECT customer_id, count(DISTINCT email) > 1 AS changed_email,
                     count(DISTINCT country) > 1 AS changed_country
              FROM customers WHERE customer_id IS NOT NULL
              GROUP BY customer_id HAVING count(DISTINCT updated_at) > 1)""").fetchone()
    assert versions[0] == versions[1] == manifest["customer_updates"] >= 200
    assert 0 < versions[2] < versions[0]
    first_newer = one(con, """
        SELECT min(line) FROM (
            SELECT line, updated_at > min(updated_at) OVER (PARTITION BY customer_id) AS newer
            FROM (SELECT customer_id, updated_at, row_number() OVER () AS line FROM customers)
            WHERE customer_id IS NOT NULL)
        WHERE newer""")
    assert first_newer > CUSTOMERS


def test_dirty_sends_and_shares_stay_small(store, con):
    _, manifest = store
    repeated = one(con, duplicates("campaign_sends"))
    assert repeated == manifest["dirty"]["campaign_sends.parquet"]["duplicate"] > 0
    knock_on = manifest["knock_on"]["order_items.parquet"]["unknown_order"]
    for name, rows in manifest["rows"].items():
        bad = sum(manifest["dirty"][name].values())
        if name == "order_items.parquet":
            bad += knock_on
        assert bad / rows < 0.02, name
        if name not in ("products.csv", "campaigns.csv", "consent_events.ndjson",
                        "order_items.parquet"):
            assert bad / rows > 0.005, name


def test_events_are_split_into_parts_with_counts_per_part(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(activity_files, "EVENT_PART_ROWS", 25_000)
    manifest = generate_store(tmp_path, customers=2_000, seed=3, dirty_share=0.05)
    parts = sorted(name for name in manifest["rows"] if name.startswith("events/"))
    assert len(parts) >= 2 and parts[0] == "events/part-00000.parquet"
    assert all(manifest["rows"][p] <= 25_000 for p in parts)
    con = duckdb.connect()
    for part in parts:
        bad = one(con, f"SELECT count(*) FROM read_parquet('{tmp_path / part}') WHERE "
                       "TRY_CAST(occurred_at AS TIMESTAMP) IS NULL")
        assert bad == manifest["dirty"][part]["bad_timestamp"]
    total = one(con, f"SELECT count(*) FROM read_parquet('{tmp_path}/events/*.parquet')")
    assert total == sum(manifest["rows"][p] for p in parts)
    assert manifest["customer_updates"] == 100


# --- A/B truth ------------------------------------------------------------------------------

def test_campaign_conversions_match_the_truth(tmp_path_factory: pytest.TempPathFactory):
    """Observed 5-day conversion per variant agrees with the truth file, and so do the
    A/B differences; every figure comes from the written files."""
    folder = tmp_path_factory.mktemp("ab-store")
    generate_store(folder, customers=30_000, seed=SEED, dirty_share=0.0)
    truth = json.loads((folder / "truth" / "campaigns.json").read_text())
    con = duckdb.connect()
    observed = con.execute(f"""
        WITH sends AS (
            SELECT campaign_id, customer_id, variant, sent_at::TIMESTAMP AS sent_at
            FROM read_parquet('{folder}/campaign_sends.parquet')),
        orders AS (
            SELECT customer_id, ordered_at::TIMESTAMP AS ordered_at
            FROM read_csv('{folder}/orders.csv', all_varchar = true)
            WHERE status = 'completed' AND is_guest = 'false')
        SELECT s.campaign_id, s.variant, count(*) AS n, sum(converted::INT) AS buyers
        FROM (SELECT s.*, EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = s.customer_id
                                  AND o.ordered_at > s.sent_at
                                  AND o.ordered_at <= s.sent_at + INTERVAL 5 DAY) AS converted
              FROM sends s) s
        GROUP BY ALL""").fetchall()
    arms = {(campaign, variant): (n, buyers) for campaign, variant, n, buyers in observed}

    # Levels: each arm's conversion against its expected value (chi-square over the arms).
    chi_square, arms_seen, lift = 0.0, 0, []
    for campaign in truth["campaigns"]:
        for variant in campaign["variants"]:
            n, buyers = arms[(campaign["campaign_id"], variant["name"])]
            assert n == variant["recipients"]
            expected = variant["expected_conversion_5d"]
            chi_square += (buyers - n * expected) ** 2 / (n * expected * (1 - expected))
            arms_seen += 1
            lift.append(expected - campaign["share_with_other_orders"])
    assert arms_seen > 60 and min(lift) > 0.005
    assert chi_square < arms_seen + 4 * math.sqrt(2 * arms_seen)

    # Differences: the pooled A/B gaps between observed and true effects.
    gap = variance = 0.0
    for campaign in (c for c in truth["campaigns"] if c["is_test"]):
        n_c, b_c = arms[(campaign["campaign_id"], campaign["control_variant"])]
        for variant in campaign["variants"][1:]:
            n_v, b_v = arms[(campaign["campaign_id"], variant["name"])]
            p_c, p_v = b_c / n_c, b_v / n_v
            gap += (p_v - p_c) - variant["effect_vs_control"]["conversion_5d"]
            variance += p_c * (1 - p_c) / n_c + p_v * (1 - p_v) / n_v
    assert abs(gap) < 3.5 * math.sqrt(variance)
