"""Product versions the books can book lines on: the terms, stored once, never changed.

A version is registered with its canonical terms and `terms_hash`; registering the same
(code, version) again with the same terms is a no-op, with different terms a conflict.
Credit lines refer to (code, version), so a new version of a product never changes a
line booked on an older one.
"""

from __future__ import annotations

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError
from node_api.ledger.schema import product_version_table
from node_api.ledger.settlement_events import TermsCache, fetch_terms_json
from node_api.ledger.sql import insert_ignoring_conflicts
from node_api.lending.products import (
    ProductTerms,
    canonical_terms_json,
    parse_product_terms,
    terms_hash_hex,
)


def register_product_version(conn: Connection, terms: ProductTerms) -> bool:
    """Store a product version; True if new, False if already stored with equal terms."""
    terms_hash = terms_hash_hex(terms)
    row: dict[str, str | int] = {
        "product_code": terms.product_code,
        "version": terms.version,
        "product_type": terms.product_type.value,
        "currency": terms.currency,
        "terms_hash": terms_hash,
        "terms_json": canonical_terms_json(terms).decode("ascii"),
    }
    inserted = insert_ignoring_conflicts(
        conn, product_version_table, [row], ["product_code", "version"], ("product_code",)
    ).all()
    if inserted:
        return True
    table = product_version_table
    stored_hash = conn.execute(
        select(table.c.terms_hash).where(
            (table.c.product_code == terms.product_code) & (table.c.version == terms.version)
        )
    ).scalar_one()
    if stored_hash != terms_hash:
        raise ConflictError(
            f"product {terms.product_code} version {terms.version} exists with other terms; "
            "a version never changes, publish a new one",
            field="version",
            code="product_version_immutable",
        )
    return False


def fetch_product_terms(conn: Connection, product_code: str, version: int) -> ProductTerms:
    """The terms of one version; NotFoundError if it was never registered."""
    return parse_product_terms(orjson.loads(fetch_terms_json(conn, product_code, version)))


class ProductTermsCache(TermsCache[ProductTerms]):
    """Product terms by (code, version)."""

    def __init__(self) -> None:
        super().__init__(fetch_product_terms)
