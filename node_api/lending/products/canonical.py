"""The canonical JSON of product terms and its keccak256: `termsHash` on-chain.

Anyone holding the terms must be able to recompute the hash in any language, so the
canonical form is fixed here exactly. Changing any of these rules changes every
product's hash and breaks the agreements already anchored on-chain.

Canonical JSON of a `ProductTerms` value:

1. One JSON object holding every field of `ProductTerms`, defaults included, under
   the model's field names (snake_case); nested terms (`interest`, `fees`,
   `installment`, ...) are nested objects with all their fields; lists are arrays.
   Exception: a field added after products were first anchored (`LATER_FIELDS`) is
   left out while it holds its default, so every version registered before it existed
   keeps its hash; set to anything else, it is written like any other field.
2. Object keys in ascending order of their Unicode code points at every level
   (keys are ASCII, so this is byte order).
3. No whitespace anywhere: `,` between items, `:` between key and value.
4. Values are only
   - integers, in base 10, no sign (all are non-negative), no leading zeros, no
     fraction and no exponent (every integer is below 2^53, exact in any JSON parser);
   - strings: enum values (`"annuity"`, `"ACT/365"`, `"M7+"`, ...) and identifiers,
     all printable ASCII without `"` or `\\`, written between double quotes with no
     escape sequences (`/` is not escaped);
   - `true` / `false`;
   - arrays, in canonical order: set-like lists ascending (`bill_day_options`,
     `installment.tenors_months`, `eligible_channels` by code point), `funding_split`
     by `partner_id`, `delinquency.thresholds` by days; `allocation.order` as given.
   No `null`, no floats.
5. Encoded as ASCII (= UTF-8) bytes.

termsHash = keccak256(those bytes): Ethereum's Keccak-256 (original padding), not
NIST SHA3-256; 32 bytes, `bytes32` in Solidity.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from eth_hash.auto import keccak
from pydantic_core import to_jsonable_python

from node_api.lending.products.model import ProductTerms

LATER_FIELDS: tuple[tuple[str, ...], ...] = (
    ("credit_application",),
    ("delinquency", "non_accrual_days"),
    ("delinquency", "classification"),
    ("delinquency", "provision_bps"),
    ("installment", "min_principal_fen"),
    ("grace_payments_on_time",),
    ("interest_on_unpaid_only",),
    ("charge_off_buyback",),
)
"""Dotted paths of the fields added after the first anchored products (rule 1)."""


@lru_cache(maxsize=1)
def _default_document() -> dict[str, Any]:
    """The JSON of each later field's default, read off the models' own defaults."""
    defaults: dict[str, Any] = {}
    for path in LATER_FIELDS:
        model: Any = ProductTerms
        for name in path[:-1]:
            model = model.model_fields[name].annotation
        value = model.model_fields[path[-1]].get_default(call_default_factory=True)
        defaults[".".join(path)] = to_jsonable_python(value)
    return defaults


def _drop_later_defaults(document: dict[str, Any]) -> None:
    defaults = _default_document()
    for path in LATER_FIELDS:
        parent = document
        for name in path[:-1]:
            parent = parent[name]
        if parent.get(path[-1]) == defaults[".".join(path)]:
            del parent[path[-1]]


def canonical_terms_json(terms: ProductTerms) -> bytes:
    """The canonical JSON bytes of `terms` (rules in the module docstring)."""
    document = terms.model_dump(mode="json")
    _drop_later_defaults(document)
    _check_canonical_values(document, "")
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def terms_hash(terms: ProductTerms) -> bytes:
    """keccak256 of the canonical JSON: the 32-byte `termsHash` anchored on-chain."""
    return keccak(canonical_terms_json(terms))


def terms_hash_hex(terms: ProductTerms) -> str:
    """`terms_hash` as 0x-prefixed lowercase hex, as JSON-RPC and the API show bytes32."""
    return "0x" + terms_hash(terms).hex()


def _check_canonical_values(value: object, path: str) -> None:
    """Refuse anything the canonical form does not allow (floats, null, escapes)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_canonical_values(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_canonical_values(item, f"{path}.{index}")
    elif isinstance(value, str):
        if not value.isascii() or not value.isprintable() or '"' in value or "\\" in value:
            raise ValueError(f"non-canonical string at {path}")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not 0 <= value < 2**53:
            raise ValueError(f"integer out of canonical range at {path}")
    else:
        raise ValueError(f"non-canonical value type {type(value).__name__} at {path}")
