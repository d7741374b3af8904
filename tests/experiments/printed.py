"""Compare a computed number with a figure printed in a paper or a reference, digit for digit."""

from __future__ import annotations


def assert_printed(value: float, text: str) -> None:
    """``value`` rounds to ``text`` at the precision ``text`` is printed with.

    ``"0.06667"`` checks five decimals; ``"2.0079e-5"`` four decimals of the mantissa.
    """
    mantissa = text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    style = "e" if "e" in text.lower() else "f"
    assert float(format(value, f".{decimals}{style}")) == float(text), (value, text)
