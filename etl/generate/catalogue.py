"""The product catalogue: a few hundred products in ten categories with their own prices.

The catalogue does not grow with the number of customers, so a 5,000-customer store and
a million-customer store sell the same products. Popularity inside a category is
Zipf-like, so a few products sell most; every draw of a product goes through
:meth:`Catalogue.draw`, which keeps the overall mix equal to the global popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.generate.seasons import AS_OF_S, START_S

N_PRODUCTS = 300

# name, share of demand, typical price range (EUR), product nouns
CATEGORIES: tuple[tuple[str, float, float, float, tuple[str, ...]], ...] = (
    ("apparel", 0.20, 15, 120, ("T-Shirt", "Hoodie", "Jacket", "Dress", "Jeans", "Shirt")),
    ("shoes", 0.14, 35, 180, ("Sneaker", "Runner", "Boot", "Sandal", "Loafer")),
    ("beauty", 0.12, 6, 60, ("Serum", "Lipstick", "Face Cream", "Shampoo", "Perfume")),
    ("accessories", 0.10, 10, 90, ("Belt", "Cap", "Scarf", "Wallet", "Sunglasses")),
    ("home", 0.10, 12, 150, ("Candle", "Cushion", "Mug Set", "Throw", "Lamp")),
    ("sports", 0.09, 15, 200, ("Yoga Mat", "Water Bottle", "Dumbbell", "Jersey", "Racket")),
    ("electronics", 0.08, 25, 400, ("Headphones", "Speaker", "Charger", "Smartwatch")),
    ("kids", 0.07, 8, 70, ("Plush Toy", "Puzzle", "Romper", "Building Set")),
    ("books", 0.06, 8, 40, ("Cookbook", "Novel", "Travel Guide", "Notebook")),
    ("gifts", 0.04, 10, 80, ("Gift Box", "Gift Card Holder", "Photo Frame", "Tea Set")),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c[0] for c in CATEGORIES)
CATEGORY_WEIGHTS = np.array([c[1] for c in CATEGORIES]) / sum(c[1] for c in CATEGORIES)
ADJECTIVES = ("Classic", "Urban", "Essential", "Premium", "Everyday", "Nordic", "Soft",
              "Active", "Vintage", "Bold", "Light", "Cosy")


@dataclass(frozen=True)
class Catalogue:
    """Products sorted by category, with prices in cents and popularity weights."""

    names: tuple[str, ...]
    category: np.ndarray  # int8 index into CATEGORY_NAMES
    price_cents: np.ndarray  # int64
    popularity: np.ndarray  # float64, sums to 1 over all products
    updated_at: np.ndarray  # int64 seconds

    @property
    def size(self) -> int:
        """Number of products."""
        return len(self.names)

    def expected_price_cents(self) -> float:
        """Mean price of one product drawn by :meth:`draw` (any category mix)."""
        return float(self.popularity @ self.price_cents)

    def draw(self, rng: np.random.Generator, category: np.ndarray,
             loyalty: float) -> np.ndarray:
        """A product per entry: from ``category`` with chance ``loyalty``, else any.

        Within a category products follow their popularity. When ``category`` itself is
        drawn with :data:`CATEGORY_WEIGHTS`, the result follows the global popularity
        exactly, which keeps campaign order values computable (see :mod:`.truth`).
        """
        cumulative = np.cumsum(self.popularity)
        cumulative[-1] = 1.0
        first = np.searchsorted(self.category, np.arange(len(CATEGORIES)))
        last = np.append(first[1:], self.size) - 1
        bounds = np.concatenate([[0.0], cumulative])
        low, high = bounds[first], bounds[last + 1]
        n = len(category)
        stay = rng.random(n) < loyalty
        u = rng.random(n)
        position = np.where(stay, low[category] + u * (high - low)[category], u)
        product = np.minimum(np.searchsorted(cumulative, position, side="right"), self.size - 1)
        product = np.where(stay, np.clip(product, first[category], last[category]), product)
        return product.astype(np.int16)


def _round_price(euros: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shelf prices in cents ending in .99, .95 or .00."""
    endings = rng.choice(np.array([99, 95, 0]), size=len(euros), p=[0.6, 0.25, 0.15])
    whole = np.maximum(np.floor(euros).astype(np.int64), 1)
    return np.where(endings == 0, whole * 100, (whole - 1) * 100 + endings).clip(min=99)


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """Draw the store's products: names, prices, popularity and last-change times."""
    counts = np.maximum(np.round(CATEGORY_WEIGHTS * N_PRODUCTS).astype(int), 10)
    names: list[str] = []
    category_parts, price_parts, popularity_parts = [], [], []
    for index, ((_, _, low, high, nouns), count) in enumerate(
            zip(CATEGORIES, counts, strict=True)):
        mid, spread = np.sqrt(low * high), np.log(high / low) / 4
        euros = np.clip(rng.lognormal(np.log(mid), spread, size=count), low * 0.8, high * 1.2)
        price_parts.append(_round_price(euros, rng))
        zipf = 1.0 / np.arange(1, count + 1) ** 0.9
        popularity_parts.append(rng.permutation(zipf / zipf.sum()) * CATEGORY_WEIGHTS[index])
        category_parts.append(np.full(count, index, dtype=np.int8))
        for k in range(count):
            adjective = ADJECTIVES[(k * 7 + index) % len(ADJECTIVES)]
            names.append(f"{adjective} {nouns[k % len(nouns)]} {100 + k}")
    popularity = np.concatenate(popularity_parts)
    return Catalogue(
        names=tuple(names),
        category=np.concatenate(category_parts),
        price_cents=np.concatenate(price_parts),
        popularity=popularity / popularity.sum(),
        updated_at=rng.integers(START_S, AS_OF_S, size=len(names)),
    )
