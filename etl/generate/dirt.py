"""Dirty rows: the defects a real export has, injected on purpose and counted exactly.

The rule: **dirty rows are added, never substituted.** Every clean row is written exactly
once, so the clean data stays complete and agrees with the truth files. A dirty row is a
copy of a randomly chosen clean row with one defect, written right after its source:

* ``duplicate``: an exact copy (same key);
* ``missing_key`` / ``missing_event_id`` / ``missing_customer_id``: the column left empty;
* ``bad_timestamp``: an unparseable time (e.g. ``2024-02-30 25:61:00``, ``not a date``);
* ``unknown_customer``: a customer id that ``customers.csv`` does not hold;
* ``negative_total``: a sale whose total has the wrong sign.

Apart from duplicates and empty keys, a defective copy gets a fresh key beyond the clean
ones (``O{n+1}``, ``E{n+1}``, ``C{n+1}``...), so it is a new, bad record and not a second
version of a good one. A file with ``n`` clean rows gets ``round(dirty_share * n)`` dirty
rows, split evenly over its defect kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from etl.generate.columns import Columns, stack, take

DIRTY_RULE = (
    "Dirty rows are added, never substituted: every clean row is written exactly once. A "
    "dirty row is a copy of a random clean row with one defect, written right after its "
    "source; except for duplicates and empty keys it gets a fresh key beyond the clean "
    "ones. A file with n clean rows gets round(dirty_share * n) dirty rows, split evenly "
    "over its kinds. Bad orders that keep a key have copies of their source's lines "
    "(counted under knock_on); orders with an empty key have none."
)
BAD_TIMESTAMPS = ("2024-02-30 25:61:00", "not a date", "2023-13-45 10:00:00",
                  "31/12/2023 10:00", "0000-00-00 00:00:00", "2024-06-31 12:00:00")
"""Unparseable times; in the generator's arrays a time of ``-k`` stands for entry ``k-1``."""


def bad_time_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` codes standing for entries of :data:`BAD_TIMESTAMPS`."""
    return -(rng.integers(0, len(BAD_TIMESTAMPS), size=n) + 1)


def unknown_customer_codes(rng: np.random.Generator, n: int, n_customers: int) -> np.ndarray:
    """Customer numbers in ``(2N, 3N]``: never a customer, never a dirty customer row."""
    return rng.integers(2 * n_customers + 1, 3 * n_customers + 1, size=n)


@dataclass(frozen=True)
class Defect:
    """One kind of dirty row and how to make it from a copy of clean rows."""

    name: str
    new_key: bool = False
    spoil: Callable[[Columns, np.random.Generator], None] | None = None
    eligible: np.ndarray | None = None  # mask over clean rows that can be a source


@dataclass
class Injection:
    """The rows of a file after injection, and what was injected where."""

    table: Columns
    counts: dict[str, int]
    sources: dict[str, np.ndarray] = field(default_factory=dict)
    new_keys: dict[str, np.ndarray] = field(default_factory=dict)
    dirty_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts differing by at most one, larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def interleave(clean: Columns, extra: Columns, after: np.ndarray) -> tuple[Columns, np.ndarray]:
    """Put each extra row right after clean row ``after[i]``.

    Returns
    -------
    table, positions
        The merged columns and, for each extra row in its given order, where it landed.
    """
    n = len(next(iter(clean.values())))
    order = np.argsort(np.concatenate([np.arange(n), after]), kind="stable")
    merged = {name: np.concatenate([clean[name], extra[name]])[order] for name in clean}
    landed = np.empty(len(order), dtype=np.int64)
    landed[order] = np.arange(len(order))
    return merged, landed[n:]


def inject(rng: np.random.Generator, clean: Columns, key: str, share: float,
           defects: list[Defect], next_key: int) -> Injection:
    """Add ``round(share * rows)`` dirty rows to ``clean``, split over ``defects``."""
    n = len(clean[key])
    counts = split_evenly(round(share * n), len(defects))
    parts, afters = [], []
    injection = Injection(table=clean, counts={})
    for defect, count in zip(defects, counts, strict=True):
        pool = np.arange(n) if defect.eligible is None else np.flatnonzero(defect.eligible)
        source = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))
        rows = take(clean, source)
        if defect.new_key:
            rows[key] = np.arange(next_key, next_key + len(source), dtype=rows[key].dtype)
            next_key += len(source)
            injection.new_keys[defect.name] = rows[key]
        if defect.spoil is not None:
            defect.spoil(rows, rng)
        injection.counts[defect.name] = len(source)
        injection.sources[defect.name] = source
        parts.append(rows)
        afters.append(source)
    if not parts:
        return injection
    extra = stack(parts)
    injection.table, injection.dirty_positions = interleave(clean, extra, np.concatenate(afters))
    return injection


def set_column(name: str, value) -> Callable[[Columns, np.random.Generator], None]:
    """A spoiler that sets ``name`` to ``value`` on every dirty row."""
    def spoil(rows: Columns, rng: np.random.Generator) -> None:
        rows[name] = np.full_like(rows[name], value)
    return spoil


def bad_time(name: str) -> Callable[[Columns, np.random.Generator], None]:
    """A spoiler that makes ``name`` unparseable."""
    def spoil(rows: Columns, rng: np.random.Generator) -> None:
        rows[name] = bad_time_codes(rng, len(rows[name]))
    return spoil


def unknown_customer(name: str, n_customers: int) -> Callable[[Columns, np.random.Generator],
                                                               None]:
    """A spoiler that points ``name`` at customers who do not exist."""
    def spoil(rows: Columns, rng: np.random.Generator) -> None:
        codes = unknown_customer_codes(rng, len(rows[name]), n_customers)
        rows[name] = codes.astype(rows[name].dtype)
    return spoil
