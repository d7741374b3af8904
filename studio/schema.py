"""The canonical warehouse schema: the one place that says what every table holds.

Each :class:`Table` lists its columns with their DuckDB types and meaning, its natural
key, the columns a row cannot lie without, the row-level checks the ETL applies, and
the references it must satisfy. The ETL, the DDL and ``docs/schema.md`` all follow
from these declarations (a test keeps the document in step with this module).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    type: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Check:
    """A row-level rule: ``condition`` is SQL over the typed columns that must hold.

    The condition is written here, in the studio's own code, never taken from a user.
    A row for which it is false goes to quarantine with ``reason``.
    """

    reason: str
    condition: str


@dataclass(frozen=True)
class Reference:
    """``column`` must name an existing row of ``table`` unless ``unless`` (SQL) holds."""

    column: str
    table: str
    table_column: str
    unless: str | None = None


@dataclass(frozen=True)
class Table:
    """A canonical table and the rules its rows obey."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    version_column: str | None = None
    checks: tuple[Check, ...] = ()
    references: tuple[Reference, ...] = ()
    allowed_values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        """The columns in declaration order."""
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this table (no constraints: the ETL enforces)."""
        body = ",\n    ".join(f"{c.name} {c.type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"


RUN_COLUMN = Column("_run_id", "BIGINT", "The ETL run that last inserted or updated the row.")

CUSTOMERS = Table(
    name="customers",
    description="One row per known customer (guests are not customers).",
    columns=(
        Column("customer_id", "VARCHAR", "The store's customer identifier.", required=True),
        Column("email", "VARCHAR", "E-mail address."),
        Column("phone", "VARCHAR", "Phone number in E.164 form, for SMS."),
        Column("country", "VARCHAR", "Country name or ISO code as the store records it."),
        Column("acquisition_channel", "VARCHAR", "How the customer first arrived "
               "(organic, paid_search, social, email, referral, ...)."),
        Column("signed_up_at", "TIMESTAMP", "When the account was created (or the first order, "
               "when the store has no accounts)."),
        Column("attributes", "VARCHAR", "Custom attributes as a JSON object."),
        Column("updated_at", "TIMESTAMP", "When the source last changed the record; a newer "
               "version replaces an older one."),
        RUN_COLUMN,
    ),
    key=("customer_id",),
    version_column="updated_at",
)

CONSENT_EVENTS = Table(
    name="consent_events",
    description="The history of consent changes per customer and channel; the latest event "
    "per (customer, channel) is the current state, no event means never subscribed.",
    columns=(
        Column("consent_event_id", "VARCHAR", "Identifier of the change.", required=True),
        Column("customer_id", "VARCHAR", "Whose consent changed.", required=True),
        Column("channel", "VARCHAR", "email or sms.", required=True),
        Column("status", "VARCHAR", "subscribed, unsubscribed or non_subscribed.", required=True),
        Column("occurred_at", "TIMESTAMP", "When the change happened.", required=True),
        Column("source", "VARCHAR", "Where it came from (signup_form, checkout, "
               "unsubscribe_link, import, ...)."),
        RUN_COLUMN,
    ),
    key=("consent_event_id",),
    references=(Reference("customer_id", "customers", "customer_id"),),
    allowed_values={"channel": ("email", "sms"),
                    "status": ("subscribed", "unsubscribed", "non_subscribed")},
)

PRODUCTS = Table(
    name="products",
    description="The product catalogue.",
    columns=(
        Column("product_id", "VARCHAR", "The store's product identifier (SKU or stock code).",
               required=True),
        Column("name", "VARCHAR", "Product name."),
        Column("category", "VARCHAR", "Category used for segments and cohorts."),
        Column("price", "DOUBLE", "Current list price."),
        Column("updated_at", "TIMESTAMP", "When the source last changed the product."),
        RUN_COLUMN,
    ),
    key=("product_id",),
    version_column="updated_at",
    checks=(Check("negative price", "price IS NULL OR price >= 0"),),
)

ORDERS = Table(
    name="orders",
    description="One row per order, return or adjustment. A valid purchase is "
    "kind = 'sale' and status = 'completed'.",
    columns=(
        Column("order_id", "VARCHAR", "The store's order (invoice) number.", required=True),
        Column("customer_id", "VARCHAR", "Who ordered; empty for guest checkouts."),
        Column("is_guest", "BOOLEAN", "A checkout without a customer account: kept for revenue, "
               "left out of customer-level analytics."),
        Column("ordered_at", "TIMESTAMP", "When the order was placed.", required=True),
        Column("kind", "VARCHAR", "sale, return (a refund booked as its own document) "
               "or adjustment."),
        Column("status", "VARCHAR", "completed, cancelled or refunded."),
        Column("currency", "VARCHAR", "ISO 4217 currency code."),
        Column("subtotal", "DOUBLE", "Sum of the lines before the order discount."),
        Column("discount", "DOUBLE", "Discount granted on the order (>= 0)."),
        Column("total", "DOUBLE", "What the customer paid (negative for returns).", required=True),
        Column("updated_at", "TIMESTAMP", "When the source last changed the order."),
        RUN_COLUMN,
    ),
    key=("order_id",),
    version_column="updated_at",
    checks=(
        Check("negative total on a sale", "kind <> 'sale' OR total >= 0"),
        Check("negative discount", "discount IS NULL OR discount >= 0"),
        Check("missing customer on a non-guest order", "is_guest OR customer_id IS NOT NULL"),
    ),
    references=(Reference("customer_id", "customers", "customer_id", unless="is_guest"),),
    allowed_values={"kind": ("sale", "return", "adjustment"),
                    "status": ("completed", "cancelled", "refunded")},
)

ORDER_ITEMS = Table(
    name="order_items",
    description="The lines of each order.",
    columns=(
        Column("order_id", "VARCHAR", "The order the line belongs to.", required=True),
        Column("line_number", "INTEGER", "Position of the line within the order.", required=True),
        Column("product_id", "VARCHAR", "What was bought.", required=True),
        Column("quantity", "INTEGER", "Units (negative on returns).", required=True),
        Column("unit_price", "DOUBLE", "Price per unit.", required=True),
        Column("discount", "DOUBLE", "Discount on the line (>= 0)."),
        RUN_COLUMN,
    ),
    key=("order_id", "line_number"),
    checks=(
        Check("negative unit price", "unit_price >= 0"),
        Check("negative discount", "discount IS NULL OR discount >= 0"),
    ),
    references=(Reference("order_id", "orders", "order_id"),),
)

EVENTS = Table(
    name="events",
    description="Behavioural events from the storefront: the browsing funnel.",
    columns=(
        Column("event_id", "VARCHAR", "Identifier of the event.", required=True),
        Column("customer_id", "VARCHAR", "Who did it.", required=True),
        Column("session_id", "VARCHAR", "The browsing session."),
        Column("event_type", "VARCHAR", "page_view, product_view, add_to_cart, checkout_start "
               "or order.", required=True),
        Column("occurred_at", "TIMESTAMP", "When it happened.", required=True),
        Column("product_id", "VARCHAR", "The product concerned, if any."),
        Column("properties", "VARCHAR",
               "Other properties as a JSON object (e.g. category, price)."),
        RUN_COLUMN,
    ),
    key=("event_id",),
    references=(Reference("customer_id", "customers", "customer_id"),),
)

CAMPAIGNS = Table(
    name="campaigns",
    description="E-mail and SMS campaigns, some of them A/B tests.",
    columns=(
        Column("campaign_id", "VARCHAR", "Identifier of the campaign.", required=True),
        Column("name", "VARCHAR", "Name shown to marketers."),
        Column("channel", "VARCHAR", "email or sms.", required=True),
        Column("sent_at", "TIMESTAMP", "When sending started.", required=True),
        Column("variants", "VARCHAR", "JSON list of {name, weight} for A/B tests; weights are "
               "the planned split."),
        Column("control_variant", "VARCHAR", "The variant the others are compared with."),
        Column("updated_at", "TIMESTAMP", "When the source last changed the campaign."),
        RUN_COLUMN,
    ),
    key=("campaign_id",),
    version_column="updated_at",
    allowed_values={"channel": ("email", "sms")},
)

CAMPAIGN_SENDS = Table(
    name="campaign_sends",
    description="Who got which variant of which campaign, when, and how they reacted.",
    columns=(
        Column("send_id", "VARCHAR", "Identifier of the message.", required=True),
        Column("campaign_id", "VARCHAR", "The campaign.", required=True),
        Column("customer_id", "VARCHAR", "The recipient.", required=True),
        Column("variant", "VARCHAR", "The A/B variant the recipient got."),
        Column("sent_at", "TIMESTAMP", "When the message left.", required=True),
        Column("opened_at", "TIMESTAMP", "First open, if any."),
        Column("clicked_at", "TIMESTAMP", "First click, if any."),
        Column("unsubscribed_at", "TIMESTAMP", "Unsubscribe from this message, if any."),
        RUN_COLUMN,
    ),
    key=("send_id",),
    references=(
        Reference("campaign_id", "campaigns", "campaign_id"),
        Reference("customer_id", "customers", "customer_id"),
    ),
)

CANONICAL_TABLES: tuple[Table, ...] = (
    CUSTOMERS, PRODUCTS, CAMPAIGNS, CONSENT_EVENTS, ORDERS, ORDER_ITEMS, EVENTS, CAMPAIGN_SENDS,
)
"""In load order: every table comes after the tables it references."""

TABLES_BY_NAME: dict[str, Table] = {table.name: table for table in CANONICAL_TABLES}

ETL_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS etl_ledger (
    run_id BIGINT, entity VARCHAR, source_files VARCHAR,
    rows_in BIGINT, inserted BIGINT, updated BIGINT, unchanged BIGINT,
    duplicates BIGINT, quarantined BIGINT
)""",
    """CREATE TABLE IF NOT EXISTS etl_quarantine (
    run_id BIGINT, entity VARCHAR, source_file VARCHAR, source_line BIGINT,
    reason VARCHAR, raw VARCHAR
)""",
    """CREATE TABLE IF NOT EXISTS etl_files (
    content_hash VARCHAR, path VARCHAR, mapping VARCHAR, run_id BIGINT, loaded_at TIMESTAMP
)""",
    """CREATE TABLE IF NOT EXISTS etl_expectations (
    run_id BIGINT, table_name VARCHAR, expectation VARCHAR, column_name VARCHAR,
    success BOOLEAN, observed VARCHAR, details VARCHAR, rows_validated BIGINT,
    rows_in_table BIGINT
)""",
)
"""The ETL's own tables, published with the data they describe (see ``docs/schema.md``)."""


def create_all(con) -> None:
    """Create every canonical and ETL table that does not exist yet."""
    for table in CANONICAL_TABLES:
        con.execute(table.ddl())
    for statement in ETL_DDL:
        con.execute(statement)


VALID_ORDER_SQL = "kind = 'sale' AND status = 'completed' AND NOT is_guest"
"""The studio's one definition of a valid purchase, for customer-level analytics.

Written against the ``orders`` table's own columns so it can be used as a WHERE clause
(or, with an alias prefix, inside a join). Guests are left out: they are not customers.
"""


SCORES_DDL = """CREATE TABLE IF NOT EXISTS scores (
    customer_id VARCHAR, target VARCHAR, model_version VARCHAR, score DOUBLE,
    decile INTEGER, scored_at TIMESTAMP
)"""
"""Predictive scores written by the scoring job: one row per customer, target and run."""
