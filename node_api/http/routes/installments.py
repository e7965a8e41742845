"""`/v1/credit-lines/{id}/installment-plans`: convert a purchase or a bill into monthly
installments, read schedules, quote and take a full early repayment, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from node_api.http.authz import OperatorDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.renderers import JsonView
from node_api.http.routes.repayments import RepaymentOut
from node_api.http.schemas import (
    ID_MAX,
    PROBLEMS,
    LineId,
    PathIdText,
    ScheduledInstallmentOut,
    StrictBody,
    from_view,
)
from node_api.http.services import ServicesDep
from node_api.kernel.money import Fen
from node_api.lending.core.context import LendingCaches
from node_api.lending.installment_store import fetch_plan, fetch_plan_ids
from node_api.lending.installments import (
    cancel_plan,
    convert_bill,
    convert_purchase,
    quote_payoff,
    repay_plan_early,
)
from node_api.lending.lines import fetch_line
from node_api.lending.schedules import PayoffKind, PayoffQuote

router = APIRouter(tags=["installments"])

PlanId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="installment plan id")]


class PlanSourceIn(StrEnum):
    PURCHASE = "purchase"
    BILL = "bill"


class PlanIn(StrictBody):
    source: PlanSourceIn
    source_id: int = Field(strict=True, ge=1, le=ID_MAX)
    """The purchase id or the bill id."""
    tenor_months: int = Field(strict=True, ge=1, le=360)
    as_of: date | None = None


class InstallmentOut(ScheduledInstallmentOut):
    status: str


class PlanOut(BaseModel):
    id: int
    credit_line_id: int
    source: str
    purchase_id: int | None
    bill_id: int | None
    product_code: str
    product_version: int
    principal_fen: Fen
    tenor_months: int
    pricing_method: str
    rate_bps: int
    start_date: date
    status: str
    closed_on: date | None
    installments: list[InstallmentOut]


class PlanListOut(BaseModel):
    credit_line_id: int
    plans: list[PlanOut]


class PayoffQuoteOut(BaseModel):
    kind: str
    as_of: date
    principal_fen: Fen
    interest_fen: Fen
    fee_fen: Fen
    total_fen: Fen
    accrual_days: int


class EarlyRepaymentOut(BaseModel):
    plan: PlanOut
    quote: PayoffQuoteOut
    repayment: RepaymentOut


class AsOfIn(StrictBody):
    as_of: date | None = None


def _quote_view(quote: PayoffQuote) -> PayoffQuoteOut:
    return PayoffQuoteOut(
        kind=quote.kind.value,
        as_of=quote.as_of,
        principal_fen=quote.principal_fen,
        interest_fen=quote.interest_fen,
        fee_fen=quote.fee_fen,
        total_fen=quote.total_fen,
        accrual_days=quote.accrual_days,
    )


@router.post(
    "/v1/credit-lines/{credit_line_id}/installment-plans",
    name="installment_plans_create",
    status_code=201,
    response_model=PlanOut,
    responses=PROBLEMS,
)
def post_plan(credit_line_id: LineId, body: PlanIn, who: OperatorDep, once: OnceDep) -> Response:
    """Convert a purchase of the open cycle, or the latest bill before its due date."""

    def operation(caches: LendingCaches) -> PlanOut:
        conn = once.session.connection()
        if body.source is PlanSourceIn.PURCHASE:
            plan = convert_purchase(
                conn, caches, line_id=credit_line_id, purchase_id=body.source_id,
                tenor_months=body.tenor_months, as_of=body.as_of,
            )  # fmt: skip
        else:
            plan = convert_bill(
                conn, caches, line_id=credit_line_id, bill_id=body.source_id,
                tenor_months=body.tenor_months, as_of=body.as_of,
            )  # fmt: skip
        return from_view(PlanOut, plan)

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/credit-lines/{credit_line_id}/installment-plans",
    name="installment_plans_list",
    response_model=PlanListOut,
    responses=PROBLEMS,
)
def get_plans(credit_line_id: LineId, session: SessionDep, who: OperatorDep) -> PlanListOut:
    """Every plan of the line with its schedule, oldest first."""
    conn = session.connection()
    fetch_line(conn, credit_line_id)
    ids = fetch_plan_ids(conn, credit_line_id)
    plans = [fetch_plan(conn, credit_line_id, plan_id) for plan_id in ids]
    return PlanListOut(
        credit_line_id=credit_line_id,
        plans=[from_view(PlanOut, plan) for plan in plans],
    )


@router.get(
    "/v1/credit-lines/{credit_line_id}/installment-plans/{plan_id}",
    name="installment_plans_get",
    response_model=PlanOut,
    responses=PROBLEMS,
)
def get_plan(
    credit_line_id: LineId, plan_id: PlanId, session: SessionDep, who: OperatorDep
) -> PlanOut:
    """One plan and its schedule (principal, interest, fee and status per installment)."""
    plan = fetch_plan(session.connection(), credit_line_id, plan_id)
    return from_view(PlanOut, plan)


@router.get(
    "/v1/credit-lines/{credit_line_id}/installment-plans/{plan_id}/quote",
    name="installment_plans_quote",
    response_model=PayoffQuoteOut,
    responses=PROBLEMS,
)
def get_quote(
    credit_line_id: LineId,
    plan_id: PlanId,
    session: SessionDep,
    services: ServicesDep,
    who: OperatorDep,
    kind: PayoffKind = PayoffKind.EARLY_REPAYMENT,
    as_of: date | None = None,
) -> PayoffQuoteOut:
    """What a full early repayment (or a cancellation) would take on `as_of`."""
    quote = quote_payoff(
        session.connection(), services.lending, line_id=credit_line_id,
        plan_id=plan_id, kind=kind, as_of=as_of,
    )  # fmt: skip
    return _quote_view(quote)


PlanAction = Callable[[Connection, LendingCaches, int, int, date | None], JsonView]
"""What a route does to one plan: (connection, caches, line id, plan id, `as_of`) to its
answer."""


def _plan_route(action: PlanAction) -> Callable[..., Response]:
    """A route doing `action` to one plan once per key, on the body's `as_of`; its
    description is the action's docstring."""

    def route(
        credit_line_id: LineId,
        plan_id: PlanId,
        who: OperatorDep,
        once: OnceDep,
        body: AsOfIn | None = None,
    ) -> Response:
        payload = body or AsOfIn()

        def operation(caches: LendingCaches) -> JsonView:
            conn = once.session.connection()
            return action(conn, caches, credit_line_id, plan_id, payload.as_of)

        return once.run(who, payload, 200, operation)

    route.__name__ = f"post{action.__name__}"
    route.__doc__ = action.__doc__
    return route


def _early_repayment(
    conn: Connection, caches: LendingCaches, line_id: int, plan_id: int, as_of: date | None
) -> EarlyRepaymentOut:
    """End the plan and take the payment of its early repayment quote."""
    result = repay_plan_early(conn, caches, line_id=line_id, plan_id=plan_id, as_of=as_of)
    return EarlyRepaymentOut(
        plan=from_view(PlanOut, result.plan),
        quote=_quote_view(result.quote),
        repayment=from_view(RepaymentOut, result.repayment),
    )


def _cancel(
    conn: Connection, caches: LendingCaches, line_id: int, plan_id: int, as_of: date | None
) -> PlanOut:
    """Cancel the plan within the product's cancellation window (no interest, no fee)."""
    plan = cancel_plan(conn, caches, line_id=line_id, plan_id=plan_id, as_of=as_of)
    return from_view(PlanOut, plan)


router.add_api_route(
    "/v1/credit-lines/{credit_line_id}/installment-plans/{plan_id}/early-repayment",
    _plan_route(_early_repayment),
    methods=["POST"],
    name="installment_plans_repay_early",
    response_model=EarlyRepaymentOut,
    responses=PROBLEMS,
)
router.add_api_route(
    "/v1/credit-lines/{credit_line_id}/installment-plans/{plan_id}/cancel",
    _plan_route(_cancel),
    methods=["POST"],
    name="installment_plans_cancel",
    response_model=PlanOut,
    responses=PROBLEMS,
)
