"""The rounding carries of daily accrual (`line_accrual`), read and written per batch.

Each line's accrual component keeps its `AccrualCarry` (see `node_api.lending.interest`)
and the business date it last accrued. A step reads the carries of its batch of lines
(which it holds locked), posts each line's `compute_carried_interest`, and writes the new
carries in the same transaction as the postings; a line whose carry already has this date
is skipped, so running a date again never carries a day twice, even when that day posted
nothing (less than the half fen that rounding shows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.sql import Row, bulk_insert, bulk_update, in_values
from node_api.lending.eod.context import LineFacts
from node_api.lending.eod.tables import line_accrual_table
from node_api.lending.interest import AccrualCarry


class AccrualComponent(StrEnum):
    """What a carry accrues: contractual interest (the accrual step) or penalty interest
    (the delinquency step)."""

    INTEREST = "interest"
    PENALTY = "penalty"


@dataclass(frozen=True, slots=True)
class StoredCarry:
    carry: AccrualCarry
    as_of: date


def fetch_carries(
    conn: Connection, component: AccrualComponent, line_ids: Sequence[int]
) -> dict[int, StoredCarry]:
    """The stored carries of `component` for the lines (lines that never accrued absent)."""
    if not line_ids:
        return {}
    table = line_accrual_table
    rows = conn.execute(
        select(table.c.credit_line_id, table.c.as_of, table.c.remainder, table.c.denominator).where(
            in_values(conn, table.c.credit_line_id, line_ids)
            & (table.c.component == component.value)
        )
    )
    return {
        int(line_id): StoredCarry(AccrualCarry(int(remainder), int(denominator)), as_of)
        for line_id, as_of, remainder, denominator in rows
    }


def write_carries(
    conn: Connection,
    component: AccrualComponent,
    as_of: date,
    carries: Mapping[int, AccrualCarry],
    stored: Mapping[int, StoredCarry],
    lines: Mapping[int, LineFacts],
) -> None:
    """Store the lines' new carries for `as_of` (the caller holds the lines' locks); a new
    row names its line's customer (`lines`)."""
    new_rows: list[Row] = []
    rows: list[Row] = []
    for line_id, carry in sorted(carries.items()):
        row: Row = {
            "credit_line_id": line_id,
            "component": component.value,
            "as_of": as_of,
            "remainder": carry.remainder,
            "denominator": carry.denominator,
        }
        if line_id in stored:
            rows.append(row)
        else:
            new_rows.append({**row, "customer_id": lines[line_id].customer_id})
    bulk_insert(conn, line_accrual_table, new_rows)
    bulk_update(conn, line_accrual_table, rows, keys=("credit_line_id", "component"))
