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
from node_api.lending.lines import credit_line_table

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


def _fetch_customers(conn: Connection, line_ids: Sequence[int]) -> dict[int, str | None]:
    """Each line's customer, for the lines without a state row (those with one: None)."""
    lines, table = credit_line_table, line_delinquency_table
    rows = conn.execute(
        select(lines.c.id, lines.c.customer_ref, table.c.credit_line_id)
        .outerjoin(table, table.c.credit_line_id == lines.c.id)
        .where(in_values(conn, lines.c.id, line_ids))
    )
    return {
        int(line_id): None if existing is not None else str(customer_ref)
        for line_id, customer_ref, existing in rows
    }


def _new_state(line_id: int, customer_id: str, as_of: date) -> Row:
    """The row of a line that has none yet: current, not revolving."""
    return {
        "credit_line_id": line_id,
        "customer_id": customer_id,
        "as_of": as_of,
        "revolving": False,
        "days_past_due": 0,
        "bucket": DelinquencyBucket.M0.value,
    }


def update_line_states(
    conn: Connection,
    as_of: date,
    changes: Mapping[int, Mapping[str, StateValue]],
    columns: Sequence[str],
) -> None:
    """Set `columns` of each line's row (created with them if missing) to the given
    values. The caller holds the lines' locks, so no other transaction creates their rows;
    a created row names the line's customer (read with the rows that exist).

    A missing row is inserted with its values rather than inserted then updated: the
    update of a row this transaction inserted runs its foreign-key check again, and the
    due step creates most of its lines' rows."""
    if not changes:
        return
    customers = _fetch_customers(conn, list(changes))
    new_rows: list[Row] = []
    rows: list[Row] = []
    for line_id in sorted(changes):
        values = {name: changes[line_id][name] for name in columns}
        customer_id = customers[line_id]
        if customer_id is None:
            rows.append({"credit_line_id": line_id, "as_of": as_of, **values})
        else:
            new_rows.append({**_new_state(line_id, customer_id, as_of), **values})
    bulk_insert(conn, line_delinquency_table, new_rows)
    # The lines are locked by the caller, so these rows are too (nothing else writes them).
    bulk_update(conn, line_delinquency_table, rows, keys=("credit_line_id",))
