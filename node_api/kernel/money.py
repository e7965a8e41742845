"""Units of money and rates. Integers only; Decimal only to parse or print.

Every division in the project names its rounding: use the helpers here.
"""

from __future__ import annotations

from typing import Final, NewType

Fen = NewType("Fen", int)
"""An amount in fen, the CNY minor unit (1 yuan = 100 fen)."""
Bps = NewType("Bps", int)
"""A rate or share in basis points (1/`BPS_DENOMINATOR`)."""
PpmPerDay = NewType("PpmPerDay", int)
"""A daily rate in parts per million (1/`PPM_DENOMINATOR` per day)."""

FEN_ZERO: Final = Fen(0)
"""No money: the default of a `Fen` field (a dataclass default may not be a call)."""

BPS_DENOMINATOR: Final = 10_000
"""Basis points in one whole: `x` bps is `x / BPS_DENOMINATOR`."""
PPM_DENOMINATOR: Final = 1_000_000
"""Parts per million in one whole: shares (`share_ppm`) and daily rates (`PpmPerDay`)."""


def div_floor(numerator: int, denominator: int) -> int:
    """Division rounded toward negative infinity."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return numerator // denominator


def div_ceil(numerator: int, denominator: int) -> int:
    """Division rounded toward positive infinity."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return -((-numerator) // denominator)


def div_half_even(numerator: int, denominator: int) -> int:
    """Division rounded to nearest, ties to even (banker's rounding), exact on integers."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
