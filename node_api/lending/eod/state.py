"""Each line's delinquency state as end of day keeps it (`line_delinquency`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.sql import Row, bulk_insert, bulk_update, in_values
from node_api.lending.billing_rules import DelinquencyBucket, LoanClass
from node_api.lending.eod.tables import line_delinquency_table

StateValue = bool | int | str | date | None
"""A value of a `line_delinquency` column."""


@dataclass(frozen=True, slots=True)
class LineState:
    credit_line_id: int
    as_of: date | None
    revolving: bool
    days_past_due: int
    bucket: DelinquencyBucket
    charged_off_on: date | None
    loan_class: LoanClass = LoanClass.NORMAL
    non_accrual_since: date | None = None
    provision_fen: int = 0


def fetch_line_states(conn: Connection, line_ids: Sequence[int]) -> dict[int, LineState]:
    """The state of every given line; a line without a row is current, normal and not
    revolving."""
    table = line_delinquency_table
    found = {
        int(row.credit_line_id): LineState(
            int(row.credit_line_id),
            row.as_of,
            bool(row.revolving),
            int(row.days_past_due),
            DelinquencyBucket(row.bucket),
            row.charged_off_on,
            LoanClass(row.loan_class),
            row.non_accrual_since,
            int(row.provision_fen),
        )
        for row in conn.execute(
            select(table).where(in_values(conn, table.c.credit_line_id, line_ids))
        )
    }
    for line_id in line_ids:
        found.setdefault(line_id, LineState(line_id, None, False, 0, DelinquencyBucket.M0, None))
    return found


def ensure_line_states(conn: Connection, line_ids: Sequence[int], as_of: date) -> None:
    """Create the rows that do not exist yet (current, not revolving)."""
    table = line_delinquency_table
    existing = {
        int(line_id)
        for line_id in conn.execute(
            select(table.c.credit_line_id).where(in_values(conn, table.c.credit_line_id, line_ids))
        ).scalars()
    }
    rows: list[Row] = [
        {
            "credit_line_id": line_id,
            "as_of": as_of,
            "revolving": False,
            "days_past_due": 0,
            "bucket": DelinquencyBucket.M0.value,
        }
        for line_id in sorted(set(line_ids) - existing)
    ]
    bulk_insert(conn, table, rows)


def update_line_states(
    conn: Connection,
    as_of: date,
    changes: Mapping[int, Mapping[str, StateValue]],
    columns: Sequence[str],
) -> None:
    """Set `columns` of each line's row (created first if missing) to the given values.
    The caller holds the lines' locks, so no other transaction creates their rows."""
    if not changes:
        return
    ensure_line_states(conn, list(changes), as_of)
    rows: list[Row] = [
        {
            "credit_line_id": line_id,
            "as_of": as_of,
            **{name: changes[line_id][name] for name in columns},
        }
        for line_id in sorted(changes)
    ]
    # The lines are locked by the caller, so these rows are too (nothing else writes them).
    bulk_update(conn, line_delinquency_table, rows, keys=("credit_line_id",))
