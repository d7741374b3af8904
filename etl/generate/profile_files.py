"""Writing the descriptive files: customers, products, campaigns and consent history.

Column names and order are the canonical ones of :mod:`studio.schema`; timestamps are
``YYYY-MM-DD HH:MM:SS`` text and an empty cell is a null. E-mail addresses use reserved
example domains so the demo never names a real mailbox.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from etl.generate.campaign_plan import Campaign
from etl.generate.catalogue import CATEGORY_NAMES, Catalogue
from etl.generate.consent import CHANNELS, SOURCES, STATUSES
from etl.generate.population import CHANNELS as ACQUISITION_CHANNELS
from etl.generate.population import COUNTRIES, LOYALTY_TIERS, Population
from etl.generate.seasons import format_seconds
from etl.generate.text import euros, id_text, lookup, time_text

FIRST_NAMES = ("anna", "ben", "clara", "david", "emma", "felix", "greta", "hugo", "ida",
               "jonas", "karin", "lukas", "mia", "noah", "olga", "paul", "rosa", "sven",
               "tara", "umut", "vera", "wim", "yara", "zoe", "lena", "marco", "nina", "omar",
               "pia", "ravi", "sofia", "tom", "elif", "jan", "lea", "max", "amir", "chloe",
               "dario", "freya")
LAST_NAMES = ("meyer", "smith", "dubois", "jansen", "garcia", "rossi", "schmidt", "novak",
              "berg", "larsen", "kowalski", "martin", "fischer", "brown", "moreau", "bakker",
              "lopez", "bianchi", "weber", "taylor", "lambert", "visser", "fernandez", "ricci",
              "wagner", "wilson", "bernard", "dekker", "romero", "greco", "becker", "clarke",
              "petit", "mulder", "navarro", "conti", "hofmann", "evans", "roux", "smit")
DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.test")
NEW_DOMAINS = ("inbox.example", "newmail.test", "example.com", "example.net")


def write_csv(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` as CSV with a header (empty cell = null); return its rows."""
    frame.write_csv(path)
    return frame.height


def customer_frame(rows: dict[str, np.ndarray], population: Population) -> pl.DataFrame:
    """``customers.csv`` rows; ``email_version`` 1 marks a newer version's new address."""
    person = rows["person"]
    seed = population.name_seed[person]
    parts = pl.DataFrame({
        "first": lookup(FIRST_NAMES, seed % len(FIRST_NAMES), "first"),
        "last": lookup(LAST_NAMES, (seed // 64) % len(LAST_NAMES), "last"),
        "domain": lookup(DOMAINS, (seed // 4096) % len(DOMAINS), "domain"),
        "new_domain": lookup(NEW_DOMAINS, (seed // 65536) % len(NEW_DOMAINS), "new_domain"),
        "number": person + 1,
        "version": rows["email_version"],
        "prefix": lookup([c[2] for c in COUNTRIES], population.country[person], "prefix"),
        "digits": np.array([c[3] for c in COUNTRIES])[population.country[person]],
        "phone": population.phone_number[person],
        "birth_year": population.birth_year[person],
        "tier": lookup(LOYALTY_TIERS, population.loyalty_tier[person], "tier"),
    })
    number = pl.col("number").cast(pl.String)
    email = (pl.when(pl.col("version") == 0)
             .then(pl.concat_str([pl.col("first"), pl.lit("."), pl.col("last"), number,
                                  pl.lit("@"), pl.col("domain")]))
             .otherwise(pl.concat_str([pl.col("first"), pl.col("last"), pl.lit("."), number,
                                       pl.lit("@"), pl.col("new_domain")])))
    phone = pl.when(pl.col("phone") > 0).then(pl.concat_str([
        pl.col("prefix"), pl.col("phone").cast(pl.String).str.slice(9 - pl.col("digits"))]))
    tier = pl.concat_str([pl.lit('"loyalty_tier":"'), pl.col("tier"), pl.lit('"}')])
    attributes = (pl.when(pl.col("birth_year") > 0)
                  .then(pl.concat_str([pl.lit('{"birth_year":'),
                                       pl.col("birth_year").cast(pl.String), pl.lit(","), tier]))
                  .otherwise(pl.concat_str([pl.lit("{"), tier])))
    derived = parts.select(email.alias("email"), phone.alias("phone"),
                           attributes.alias("attributes"))
    return pl.DataFrame([
        id_text(rows["code"], "C", 7, "customer_id"),
        derived["email"],
        derived["phone"],
        lookup([c[0] for c in COUNTRIES], rows["country"], "country"),
        lookup([c[0] for c in ACQUISITION_CHANNELS], population.channel[person],
               "acquisition_channel"),
        time_text(rows["signed_up_at"], "signed_up_at"),
        derived["attributes"],
        time_text(rows["updated_at"], "updated_at"),
    ])


def write_customers(path: Path, originals: dict[str, np.ndarray],
                    updates: dict[str, np.ndarray], population: Population) -> int:
    """``customers.csv``: originals (with dirty rows), then the newer versions."""
    frame = pl.concat([customer_frame(originals, population),
                       customer_frame(updates, population)])
    return write_csv(frame, path)


def write_products(path: Path, catalogue: Catalogue) -> int:
    """``products.csv``: the catalogue with list prices in euros."""
    frame = pl.DataFrame({
        "product_id": product_ids(catalogue),
        "name": list(catalogue.names),
        "category": lookup(CATEGORY_NAMES, catalogue.category, "category"),
        "price": euros(catalogue.price_cents),
        "updated_at": time_text(catalogue.updated_at),
    })
    return write_csv(frame, path)


def write_campaigns(path: Path, campaigns: list[Campaign]) -> int:
    """``campaigns.csv``: one row per campaign, variants as JSON text."""
    frame = pl.DataFrame({
        "campaign_id": [c.campaign_id for c in campaigns],
        "name": [c.name for c in campaigns],
        "channel": [c.channel for c in campaigns],
        "sent_at": [format_seconds(c.sent_at) for c in campaigns],
        "variants": [c.variants_json() for c in campaigns],
        "control_variant": [c.control_variant for c in campaigns],
        "updated_at": [format_seconds(c.updated_at) for c in campaigns],
    }, schema={name: pl.String for name in (
        "campaign_id", "name", "channel", "sent_at", "variants", "control_variant",
        "updated_at")})
    return write_csv(frame, path)


def write_consent(path: Path, rows: dict[str, np.ndarray]) -> int:
    """``consent_events.ndjson``: one JSON object per line."""
    frame = pl.DataFrame([
        id_text(rows["code"], "CE", 9, "consent_event_id"),
        id_text(rows["customer"], "C", 7, "customer_id"),
        lookup(CHANNELS, rows["channel"], "channel"),
        lookup(STATUSES, rows["status"], "status"),
        time_text(rows["occurred_at"], "occurred_at"),
        lookup(SOURCES, rows["source"], "source"),
    ])
    frame.write_ndjson(path)
    return frame.height


def product_ids(catalogue: Catalogue) -> list[str]:
    """``P00001`` .. in catalogue order."""
    return [f"P{i + 1:05d}" for i in range(catalogue.size)]
