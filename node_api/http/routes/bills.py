"""`/v1/credit-lines/{id}/bills` and `/delinquency`: a line's bills with their lines and
due-date outcome, and its delinquency status. Read-only: end of day cuts bills."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from node_api.http.authz import OperatorDep
from node_api.http.deps import SessionDep
from node_api.http.schemas import ID_MAX, PROBLEMS, LineId, PathIdText
from node_api.kernel.money import Fen
from node_api.lending.bill_views import fetch_bill, fetch_bills, fetch_delinquency

router = APIRouter(tags=["bills"])

BillId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="bill id")]


class BillOutcomeOut(BaseModel):
    decided_on: date
    paid_fen: Fen
    paid_in_full: bool
    unpaid_minimum_fen: Fen
    moved_to_past_due_fen: Fen
    retro_interest_fen: Fen


class BillOut(BaseModel):
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
    outcome: BillOutcomeOut | None


class BillLineOut(BaseModel):
    kind: str
    ref_id: int | None
    posted_on: date
    amount_fen: Fen


class BillChargeOut(BaseModel):
    kind: str
    amount_fen: Fen


class BillDetailOut(BillOut):
    lines: list[BillLineOut]
    charges: list[BillChargeOut]


class BillListOut(BaseModel):
    credit_line_id: int
    bills: list[BillOut]


class DelinquencyOut(BaseModel):
    credit_line_id: int
    as_of: date | None
    days_past_due: int
    bucket: str
    revolving: bool
    charged_off_on: date | None
    past_due_fen: Fen
    outstanding_fen: Fen


@router.get(
    "/v1/credit-lines/{credit_line_id}/bills",
    name="bills_list",
    response_model=BillListOut,
    responses=PROBLEMS,
)
def get_bills(
    credit_line_id: LineId,
    session: SessionDep,
    who: OperatorDep,
    limit: Annotated[int, Query(ge=1, le=120)] = 24,
) -> BillListOut:
    """The line's most recent bills, newest first."""
    bills = fetch_bills(session.connection(), credit_line_id, limit)
    return BillListOut(
        credit_line_id=credit_line_id,
        bills=[BillOut.model_validate(bill, from_attributes=True) for bill in bills],
    )


@router.get(
    "/v1/credit-lines/{credit_line_id}/bills/{bill_id}",
    name="bills_get",
    response_model=BillDetailOut,
    responses=PROBLEMS,
)
def get_bill(
    credit_line_id: LineId, bill_id: BillId, session: SessionDep, who: OperatorDep
) -> BillDetailOut:
    """One bill: its figures, its lines (uses, refunds, payments, installments, charges),
    its due-date outcome and the past-due charges attributed to it."""
    bill = fetch_bill(session.connection(), credit_line_id, bill_id)
    return BillDetailOut.model_validate(bill, from_attributes=True)


@router.get(
    "/v1/credit-lines/{credit_line_id}/delinquency",
    name="delinquency_get",
    response_model=DelinquencyOut,
    responses=PROBLEMS,
)
def get_delinquency(
    credit_line_id: LineId, session: SessionDep, who: OperatorDep
) -> DelinquencyOut:
    """Days past due and bucket as end of day last decided, with current balances."""
    view = fetch_delinquency(session.connection(), credit_line_id)
    return DelinquencyOut.model_validate(view, from_attributes=True)
