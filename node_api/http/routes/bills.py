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
from node_api.lending.bill_views import (
    BillChargeView,
    BillDetail,
    BillLineView,
    BillOutcomeView,
    BillView,
    fetch_bill,
    fetch_bills,
    fetch_delinquency,
)

router = APIRouter(tags=["bills"])

BillId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="bill id")]


# The domain's views are the responses; the subclasses only keep the schema names the API
# has always published (their fields are declared once, in `node_api.lending.bill_views`).
class BillOutcomeOut(BillOutcomeView): ...


class BillOut(BillView):
    outcome: BillOutcomeOut | None


class BillLineOut(BillLineView): ...


class BillChargeOut(BillChargeView): ...


class BillDetailOut(BillDetail):
    outcome: BillOutcomeOut | None
    lines: tuple[BillLineOut, ...]
    charges: tuple[BillChargeOut, ...]


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
