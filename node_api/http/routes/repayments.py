"""`/v1/credit-lines/{id}/repayments`: take a payment (allocated by the product's
waterfall, the excess held as customer credit) and reverse a bounced one (which
re-allocates every later payment on the line); `/v1/credit-lines/{id}/credit-refunds`:
pay customer credit back to the customer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, TypedDict

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from node_api.http.authz import OperatorDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    ID_MAX,
    PROBLEMS,
    AmountFen,
    CurrencyStr,
    IdentifierStr,
    LineId,
    StrictBody,
)
from node_api.kernel.money import Fen
from node_api.lending.core.context import LendingCaches
from node_api.lending.customer_credit import CreditRefund, refund_customer_credit
from node_api.lending.repayments import AllocatedAmount, Repayment, repay, reverse_repayment

router = APIRouter(tags=["repayments"])

RepaymentId = Annotated[int, Path(ge=1, le=ID_MAX, description="repayment id")]


class LineMovement(TypedDict):
    """The money a request moves on a line, as the domain functions take it."""

    amount_fen: Fen
    currency: str
    as_of: date | None


class LineMoneyIn(StrictBody):
    """A request that moves money on a line: an amount, its currency, a business date."""

    amount_fen: AmountFen
    currency: CurrencyStr
    as_of: date | None = None

    def movement(self) -> LineMovement:
        return {"amount_fen": self.amount_fen, "currency": self.currency, "as_of": self.as_of}


class RepaymentIn(LineMoneyIn):
    payment_ref: IdentifierStr | None = None
    """The payer's reference (bank transaction id); not personal data."""


# The domain's views are the responses; the subclasses only keep the schema names the API
# has always published (their fields are declared once, in `node_api.lending.repayments`
# and `node_api.lending.customer_credit`).
class AllocationOut(AllocatedAmount): ...


class RepaymentOut(Repayment):
    allocations: tuple[AllocationOut, ...]


class ReversalIn(StrictBody):
    as_of: date | None = None


class ReversalOut(BaseModel):
    repayment_id: int
    credit_line_id: int
    status: str
    reversed_on: date
    reallocated_repayment_ids: list[int]
    reaged_bill_ids: list[int]
    """Bills the payment had settled, decided again as if it had never arrived."""


@router.post(
    "/v1/credit-lines/{credit_line_id}/repayments",
    name="repayments_create",
    status_code=201,
    response_model=RepaymentOut,
    responses=PROBLEMS,
)
def post_repayment(
    credit_line_id: LineId, body: RepaymentIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Allocate a payment: past due before current, then the product's component order."""

    def operation(caches: LendingCaches) -> RepaymentOut:
        repaid = repay(
            once.session.connection(),
            caches,
            line_id=credit_line_id,
            payment_ref=body.payment_ref,
            **body.movement(),
        )
        return RepaymentOut.model_validate(repaid, from_attributes=True)

    return once.run(who, body, 201, operation)


@router.post(
    "/v1/credit-lines/{credit_line_id}/repayments/{repayment_id}/reverse",
    name="repayments_reverse",
    response_model=ReversalOut,
    responses=PROBLEMS,
)
def post_repayment_reversal(
    credit_line_id: LineId,
    repayment_id: RepaymentId,
    who: OperatorDep,
    once: OnceDep,
    body: ReversalIn | None = None,
) -> Response:
    """Reverse a bounced payment; later payments on the line are allocated again."""
    reversal = body or ReversalIn()

    def operation(caches: LendingCaches) -> ReversalOut:
        reversed_ = reverse_repayment(
            once.session.connection(),
            caches,
            line_id=credit_line_id,
            repayment_id=repayment_id,
            as_of=reversal.as_of,
        )
        return ReversalOut.model_validate(reversed_, from_attributes=True)

    return once.run(who, reversal, 200, operation)


class CreditRefundIn(LineMoneyIn):
    pass


class CreditRefundOut(CreditRefund): ...


@router.post(
    "/v1/credit-lines/{credit_line_id}/credit-refunds",
    name="credit_refunds_create",
    status_code=201,
    response_model=CreditRefundOut,
    responses=PROBLEMS,
)
def post_credit_refund(
    credit_line_id: LineId, body: CreditRefundIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Pay customer credit out to the customer (to the disbursement account), after
    applying it to whatever is due; 409 `insufficient_credit` beyond what is left."""

    def operation(caches: LendingCaches) -> CreditRefundOut:
        refund = refund_customer_credit(
            once.session.connection(),
            caches,
            line_id=credit_line_id,
            **body.movement(),
        )
        return CreditRefundOut.model_validate(refund, from_attributes=True)

    return once.run(who, body, 201, operation)
