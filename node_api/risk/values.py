"""Raw characteristic values to model inputs, shared by training and serving.

Training reads CSV text and serving reads JSON values; both go through these
functions, so a value lands in the same bin in both places.
"""

from __future__ import annotations

import math

from node_api.kernel.errors import CreditNetValueError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "?"})


def is_missing_token(text: str) -> bool:
    return text.strip().lower() in MISSING_TOKENS


def parse_number(raw: object, *, field: str) -> float | None:
    """A finite number, or None for a missing value; anything else is refused."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise CreditNetValueError("expected a number, got a boolean", field=field)
    if isinstance(raw, int):
        return float(raw)
    if isinstance(raw, float):
        return None if math.isnan(raw) else _finite(raw, field)
    if isinstance(raw, str):
        if is_missing_token(raw):
            return None
        try:
            return _finite(float(raw.strip()), field)
        except ValueError:
            raise CreditNetValueError("expected a number", field=field) from None
    raise CreditNetValueError("expected a number or text", field=field)


def _finite(number: float, field: str) -> float:
    if math.isinf(number):
        raise CreditNetValueError("expected a finite number", field=field)
    return number


def parse_category(raw: object, *, field: str) -> str | None:
    """A category label (text, stripped), or None for a missing value."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise CreditNetValueError("expected text, got a boolean", field=field)
    if isinstance(raw, str):
        return None if is_missing_token(raw) else raw.strip()
    if isinstance(raw, int):
        return str(raw)
    raise CreditNetValueError("expected text", field=field)


def is_number_text(text: str) -> bool:
    """True when CSV text is a missing token or a finite number (for type inference)."""
    if is_missing_token(text):
        return True
    try:
        return math.isfinite(float(text.strip()))
    except ValueError:
        return False
