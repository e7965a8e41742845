"""Reads of bills and delinquency for the API: a line's bills, one bill with its lines,
its due-date outcome and its past-due charges, and the line's delinquency status."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.ledger.balances import fetch_line_balances
from node_api.lending.bill_tables import (
    bill_charge_table,
    bill_line_table,
    bill_outcome_table,
    bill_table,
)
from node_api.lending.bills import PAST_DUE_TYPES, RECEIVABLE_TYPES, sum_balances
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.lines import fetch_line

_BILL_SKIPPED = {"credit_line_id"}


def _bill_view(row: Any, outcome: Any | None) -> dict[str, Any]:
    view = {
        key: (value.isoformat() if isinstance(value, date) else value)
        for key, value in row._mapping.items()
        if key not in _BILL_SKIPPED
    }
    view["outcome"] = None
    if outcome is not None:
        view["outcome"] = {
            "decided_on": outcome.decided_on.isoformat(),
            "paid_fen": int(outcome.paid_fen),
            "paid_in_full": bool(outcome.paid_in_full),
            "unpaid_minimum_fen": int(outcome.unpaid_minimum_fen),
            "moved_to_past_due_fen": int(outcome.moved_to_past_due_fen),
            "retro_interest_fen": int(outcome.retro_interest_fen),
        }
    return view


def fetch_bills(conn: Connection, line_id: int, limit: int = 24) -> list[dict[str, Any]]:
    """A line's most recent bills, newest first, with their due-date outcome if decided."""
    fetch_line(conn, line_id)
    bills, outcomes = bill_table, bill_outcome_table
    rows = conn.execute(
        select(bills)
        .where(bills.c.credit_line_id == line_id)
        .order_by(bills.c.bill_date.desc())
        .limit(limit)
    ).all()
    decided = {
        int(row.bill_id): row
        for row in conn.execute(
            select(outcomes).where(outcomes.c.bill_id.in_([row.id for row in rows]))
        )
    }
    return [_bill_view(row, decided.get(int(row.id))) for row in rows]


def fetch_bill(conn: Connection, line_id: int, bill_id: int) -> dict[str, Any]:
    """One bill with its lines and the past-due charges attributed to it."""
    bills = bill_table
    row = conn.execute(
        select(bills).where((bills.c.id == bill_id) & (bills.c.credit_line_id == line_id))
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"bill {bill_id} does not exist on credit line {line_id}", field="bill_id"
        )
    outcome = conn.execute(
        select(bill_outcome_table).where(bill_outcome_table.c.bill_id == bill_id)
    ).one_or_none()
    view = _bill_view(row, outcome)
    lines = bill_line_table
    view["lines"] = [
        {
            "kind": item.kind,
            "ref_id": item.ref_id,
            "posted_on": item.posted_on.isoformat(),
            "amount_fen": int(item.amount_fen),
        }
        for item in conn.execute(
            select(lines).where(lines.c.bill_id == bill_id).order_by(lines.c.posted_on, lines.c.id)
        )
    ]
    charges = bill_charge_table
    view["charges"] = [
        {"kind": str(kind), "amount_fen": int(total)}
        for kind, total in conn.execute(
            select(charges.c.kind, func.sum(charges.c.amount_fen))
            .where(charges.c.bill_id == bill_id)
            .group_by(charges.c.kind)
            .order_by(charges.c.kind)
        )
    ]
    return view


def fetch_delinquency(conn: Connection, line_id: int) -> dict[str, Any]:
    """A line's delinquency as end of day last decided, with its current balances."""
    fetch_line(conn, line_id)
    state = fetch_line_states(conn, [line_id])[line_id]
    balances = fetch_line_balances(conn, line_id)
    return {
        "credit_line_id": line_id,
        "as_of": None if state.as_of is None else state.as_of.isoformat(),
        "days_past_due": state.days_past_due,
        "bucket": state.bucket.value,
        "revolving": state.revolving,
        "charged_off_on": None
        if state.charged_off_on is None
        else state.charged_off_on.isoformat(),
        "past_due_fen": sum_balances(balances, PAST_DUE_TYPES),
        "outstanding_fen": sum_balances(balances, RECEIVABLE_TYPES),
    }
