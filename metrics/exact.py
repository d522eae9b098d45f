"""Numbers in data files that decide money or thresholds: never read from a float.

A YAML ``0.5306`` is a binary float that cannot hold the decimal exactly; the data files write
such numbers as quoted strings (or integers), and the models refuse a float with a message that
says so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator


def no_float(v: Any) -> Any:
    """Pass ``v`` on unless it is a float; raise ``ValueError`` naming it."""
    if isinstance(v, float):
        raise ValueError(f"write {v!r} as a quoted string (e.g. \"{v}\"): a float cannot hold it exactly")
    return v


#: a Decimal read from a string or an integer, never from a float
ExactDecimal = Annotated[Decimal, BeforeValidator(no_float)]


#: one fen (分), the unit every yuan amount is rounded to (down, for awards)
FEN = Decimal("0.01")
