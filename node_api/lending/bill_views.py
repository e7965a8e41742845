"""Reads of bills and delinquency for the API: a line's bills, one bill with its lines,
its due-date outcome and its past-due charges, and the line's delinquency status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.kernel.money import Fen
from node_api.ledger.balances import fetch_line_balances
from node_api.lending.bill_tables import (
    bill_charge_table,
    bill_line_table,
    bill_outcome_table,
    bill_table,
)
from node_api.lending.billing_rules import DelinquencyBucket
from node_api.lending.bills import PAST_DUE_TYPES, RECEIVABLE_TYPES, sum_balances
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.lines import fetch_line


class BillOutcomeView(BaseModel):
    """What happened at the end of a bill's due date (also its API view)."""

    model_config = ConfigDict(frozen=True)

    decided_on: date
    paid_fen: Fen
    paid_in_full: bool
    unpaid_minimum_fen: Fen
    moved_to_past_due_fen: Fen
    retro_interest_fen: Fen


class BillView(BaseModel):
    """A bill's figures as cut (the `bill` row without its line id) and its outcome (also
    its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    bill_date: date
    cycle_start: date
    due_date: date
    product_code: str
    product_version: int
    statement_balance_fen: Fen
    minimum_payment_fen: Fen
    carried_fen: Fen
    past_due_fen: Fen
    new_principal_fen: Fen
    revolving_principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    penalty_fen: Fen
    installment_principal_fen: Fen
    installment_interest_fen: Fen
    installment_fee_fen: Fen
    purchases_fen: Fen
    refunds_fen: Fen
    payments_fen: Fen
    credit_balance_fen: Fen
    plan_principal_fen: Fen
    total_balance_fen: Fen
    days_past_due: int
    bucket: str
    outcome: BillOutcomeView | None


class BillLineView(BaseModel):
    """One line of a bill: a use, refund, payment, installment or charge it states."""

    model_config = ConfigDict(frozen=True)

    kind: str
    ref_id: int | None
    posted_on: date
    amount_fen: Fen


class BillChargeView(BaseModel):
    """The past-due charges of one kind attributed to a bill, summed (also its API view)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    amount_fen: Fen


class BillDetail(BillView):
    """A bill with its lines and the past-due charges attributed to it."""

    lines: tuple[BillLineView, ...]
    charges: tuple[BillChargeView, ...]


@dataclass(frozen=True, slots=True)
class DelinquencyView:
    """A line's delinquency as end of day last decided, with its current balances."""

    credit_line_id: int
    as_of: date | None
    days_past_due: int
    bucket: DelinquencyBucket
    revolving: bool
    charged_off_on: date | None
    past_due_fen: Fen
    outstanding_fen: Fen


_BILL_COLUMNS = tuple(name for name in BillView.model_fields if name != "outcome")


def _outcome_view(outcome: Any) -> BillOutcomeView:
    return BillOutcomeView(
        decided_on=outcome.decided_on,
        paid_fen=Fen(int(outcome.paid_fen)),
        paid_in_full=bool(outcome.paid_in_full),
        unpaid_minimum_fen=Fen(int(outcome.unpaid_minimum_fen)),
        moved_to_past_due_fen=Fen(int(outcome.moved_to_past_due_fen)),
        retro_interest_fen=Fen(int(outcome.retro_interest_fen)),
    )


def _bill_values(row: Any, outcome: Any | None) -> dict[str, Any]:
    """The `BillView` fields of a bill row and its outcome row, by name."""
    values = {column: row._mapping[column] for column in _BILL_COLUMNS}
    return {**values, "outcome": None if outcome is None else _outcome_view(outcome)}


def fetch_bills(conn: Connection, line_id: int, limit: int = 24) -> list[BillView]:
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
    return [BillView(**_bill_values(row, decided.get(int(row.id)))) for row in rows]


def fetch_bill(conn: Connection, line_id: int, bill_id: int) -> BillDetail:
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
    lines = bill_line_table
    bill_lines = tuple(
        BillLineView(
            kind=item.kind,
            ref_id=item.ref_id,
            posted_on=item.posted_on,
            amount_fen=Fen(int(item.amount_fen)),
        )
        for item in conn.execute(
            select(lines).where(lines.c.bill_id == bill_id).order_by(lines.c.posted_on, lines.c.id)
        )
    )
    charges = bill_charge_table
    bill_charges = tuple(
        BillChargeView(kind=str(kind), amount_fen=Fen(int(total)))
        for kind, total in conn.execute(
            select(charges.c.kind, func.sum(charges.c.amount_fen))
            .where(charges.c.bill_id == bill_id)
            .group_by(charges.c.kind)
            .order_by(charges.c.kind)
        )
    )
    return BillDetail(**_bill_values(row, outcome), lines=bill_lines, charges=bill_charges)


def fetch_delinquency(conn: Connection, line_id: int) -> DelinquencyView:
    """A line's delinquency as end of day last decided, with its current balances."""
    fetch_line(conn, line_id)
    state = fetch_line_states(conn, [line_id])[line_id]
    balances = fetch_line_balances(conn, line_id)
    return DelinquencyView(
        credit_line_id=line_id,
        as_of=state.as_of,
        days_past_due=state.days_past_due,
        bucket=state.bucket,
        revolving=state.revolving,
        charged_off_on=state.charged_off_on,
        past_due_fen=Fen(sum_balances(balances, PAST_DUE_TYPES)),
        outstanding_fen=Fen(sum_balances(balances, RECEIVABLE_TYPES)),
    )
