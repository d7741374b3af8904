"""Turning the generator's integer arrays into the text the files hold.

Polars does the formatting (in Rust, on every core), so a 20-million-row column costs
seconds, not minutes. Negative codes mean "empty" for identifiers and lookups; for
times see :mod:`.clock` and :mod:`.dirt`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from etl.generate.dirt import BAD_TIMESTAMPS
from etl.generate.seasons import TIMESTAMP_FORMAT


def _one_column(values: np.ndarray, expression: pl.Expr, name: str) -> pl.Series:
    return pl.DataFrame({"v": values}).select(expression.alias(name)).to_series()


def id_text(codes: np.ndarray, prefix: str, width: int, name: str = "id") -> pl.Series:
    """``prefix`` + the number zero-padded to ``width`` digits; empty where negative."""
    codes = np.asarray(codes, dtype=np.int64)
    v = pl.col("v")
    if len(codes) and codes.max() >= 10**width:  # wider than planned: pad to at least width
        digits = v.cast(pl.String).str.zfill(width)
    else:  # the faster way to the same text: 10**width + 42 -> "1000042" -> "000042"
        digits = (v + 10**width).cast(pl.String).str.slice(1)
    text = pl.concat_str([pl.lit(prefix), digits])
    return _one_column(codes, pl.when(v >= 0).then(text), name)


def time_text(seconds: np.ndarray, name: str = "time") -> pl.Series:
    """``YYYY-MM-DD HH:MM:SS`` text; empty for nulls; bad text for dirty codes.

    Dirty codes are ``-1 .. -len(BAD_TIMESTAMPS)``; any other negative value, including
    :data:`etl.generate.clock.NULL_TIME`, is written empty.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    v = pl.col("v")
    good = pl.from_epoch(pl.when(v >= 0).then(v), time_unit="s").dt.strftime(TIMESTAMP_FORMAT)
    text = _one_column(seconds, good, name)
    bad = np.flatnonzero((seconds < 0) & (seconds >= -len(BAD_TIMESTAMPS)))
    if len(bad):
        text = text.scatter(bad, pl.Series([BAD_TIMESTAMPS[-k - 1] for k in seconds[bad]]))
    return text


def lookup(labels: Sequence[str | None], codes: np.ndarray, name: str) -> pl.Series:
    """``labels[code]`` per entry; empty where the code is negative."""
    codes = np.asarray(codes, dtype=np.int64)
    table = pl.Series(name, [*labels, None], dtype=pl.String)
    return table.gather(np.where(codes < 0, len(labels), codes))


def price_text(cents: int) -> str:
    """``12.34`` for 1234 cents, as written inside JSON properties."""
    return f"{cents // 100}.{cents % 100:02d}"


def euros(cents: np.ndarray) -> np.ndarray:
    """Cents as float euros (exact to the cent when printed)."""
    return np.asarray(cents, dtype=np.int64) / 100.0
