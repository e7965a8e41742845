"""PII key rotation: re-encrypt every stored envelope under the vault's active key.

Run after adding a new key first in `CREDITNET_PII_KEYS` (old keys stay listed so
they can still decrypt). Rows are walked in primary-key pages, one transaction per
page; a row already under the active key is left alone, so the job can be stopped
and rerun at any time. Once it reports nothing left, old keys may be removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, select, update

from node_api.kernel.db import Database
from node_api.onboarding.application_store import get_application_context, get_customer_context
from node_api.onboarding.pii import PiiVault
from node_api.onboarding.tables import application_table, customer_table

PAGE_ROWS = 500


@dataclass(frozen=True, slots=True)
class _Envelopes:
    name: str
    table: Table
    column: Column[Any]
    context_of: Callable[[str], str]


ENVELOPES = (
    _Envelopes("customer", customer_table, customer_table.c.pii_enc, get_customer_context),
    _Envelopes(
        "application", application_table, application_table.c.inputs_enc, get_application_context
    ),
)


def _rotate_page(
    database: Database, spec: _Envelopes, vault: PiiVault, after_id: str
) -> tuple[str | None, int, int]:
    """One page: (last id seen or None when done, rows checked, rows rotated)."""
    id_column = spec.table.c.id
    rotated = 0
    with database.engine.begin() as conn:
        rows = conn.execute(
            select(id_column, spec.column)
            .where(id_column > after_id)
            .order_by(id_column)
            .limit(PAGE_ROWS)
        ).all()
        for row_id, blob in rows:
            if not vault.needs_rotation(bytes(blob)):
                continue
            fresh = vault.rotate(bytes(blob), spec.context_of(str(row_id)))
            conn.execute(
                update(spec.table)
                .where((id_column == row_id) & (spec.column == blob))
                .values({spec.column.name: fresh})
            )
            rotated += 1
    last_id = str(rows[-1][0]) if rows else None
    return last_id, len(rows), rotated


@dataclass(frozen=True, slots=True)
class RotationCount:
    checked: int
    rotated: int


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What `rotate_all` did: the key now active and the rows checked and rotated per table."""

    active_key_id: str
    customer: RotationCount
    application: RotationCount


def _rotate_table(database: Database, spec: _Envelopes, vault: PiiVault) -> RotationCount:
    checked = rotated = 0
    after_id: str | None = ""
    while after_id is not None:
        after_id, page_checked, page_rotated = _rotate_page(database, spec, vault, after_id)
        checked += page_checked
        rotated += page_rotated
    return RotationCount(checked, rotated)


def rotate_all(database: Database, vault: PiiVault) -> RotationReport:
    """Re-encrypt every envelope not under the active key; counts per table."""
    customer, application = (_rotate_table(database, spec, vault) for spec in ENVELOPES)
    return RotationReport(vault.active_key_id, customer, application)
