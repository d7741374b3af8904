"""Tables as plain dicts of equal-length numpy arrays, the generator's working format.

Numpy arrays keep a million-customer store to a few gigabytes and every step
vectorised; text appears only when files are written (:mod:`.text`).
"""

from __future__ import annotations

import numpy as np

Columns = dict[str, np.ndarray]


def take(columns: Columns, rows: np.ndarray) -> Columns:
    """The given rows of every column (copies)."""
    return {name: values[rows] for name, values in columns.items()}


def stack(parts: list[Columns]) -> Columns:
    """Rows of ``parts`` one after another; every part has the same columns."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
