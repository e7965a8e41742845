"""Uses of a credit line: scan-to-pay purchases and cash drawdowns (the group-committed
hot path), refunds, and reading a use.

Authorizations are `async` end to end: the key check hits the in-process principal
cache (the key table only on a miss, in the threadpool), and the request joins the
worker's group commit. A declined use is a 409 problem whose `code` says why
(`over_limit` with `limit_path`, `line_frozen`, `line_closed`, `channel_ineligible`,
`product_not_on_line`); it is stored like a success, so a retry sees the same answer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from node_api.http.authz import OperatorDep, ReaderDep, admit, authenticate, bearer_token
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.routes.purchase_lane import (
    MODELS,
    USE_ROLES,
    DrawdownIn,
    PurchaseIn,
    openapi_extra,
    parse_body,
    parse_line_id,
    submit_use,
)
from node_api.http.schemas import ID_MAX, PROBLEMS, AmountFen, LineId, PathIdText, StrictBody
from node_api.http.services import services_of
from node_api.idempotency import IDEMPOTENCY_HEADER, check_idempotency_key
from node_api.kernel.money import Fen
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseKind
from node_api.lending.purchases import Refund, fetch_use, refund_purchase

router = APIRouter(tags=["purchases"])

UseId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="purchase or drawdown id")]


class UseOut(BaseModel):
    id: int
    kind: str
    status: str
    credit_line_id: int
    amount_fen: Fen
    fee_fen: Fen
    currency: str
    as_of: date
    channel_id: str
    merchant_id: str | None
    product_code: str
    product_version: int
    available_fen: Fen


class RefundIn(StrictBody):
    amount_fen: AmountFen | None = None
    """Omit for a full refund of what is not refunded yet."""
    as_of: date | None = None


# The domain's view is the response; the subclass only keeps the schema name the API has
# always published (its fields are declared once, in `node_api.lending.purchases`).
class RefundOut(Refund): ...


class PurchaseOut(BaseModel):
    id: int
    kind: str
    credit_line_id: int
    product_code: str
    product_version: int
    channel_id: str
    merchant_id: str | None
    amount_fen: Fen
    fee_fen: Fen
    refunded_fen: Fen
    principal_open_fen: Fen
    currency: str
    as_of: date


async def _authorize(request: Request, kind: UseKind) -> Response:
    """Parse and authorize one use on the regular route (no FastAPI dependencies: they
    cost about 100 µs a request). Checks run in the order dependencies would: who
    (401/403), the idempotency key (400), then path and body (422)."""
    services = services_of(request.app)
    token = bearer_token(request.headers.get("authorization"))
    who = admit(await authenticate(services, token), USE_ROLES)
    key = check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
    line_id = parse_line_id(str(request.path_params.get("credit_line_id", "")))
    content_type = request.headers.get("content-type", "application/json")
    body = parse_body(MODELS[kind], content_type, await request.body())
    path = request.scope["path"]
    return await submit_use(services, path, who, key, line_id, kind, body)


@router.post(
    "/v1/credit-lines/{credit_line_id}/purchases",
    name="purchases_create",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
    openapi_extra=openapi_extra(PurchaseIn),
)
async def post_purchase(request: Request) -> Response:
    """Authorize a scan-to-pay purchase: limits are checked and reserved at every level
    and the purchase is booked with its funding split. A declined purchase is a 409
    problem whose `code` says why (`over_limit` with `limit_path`, `line_frozen`,
    `line_closed`, `channel_ineligible`, `product_not_on_line`); a retry with the same
    key gets the same answer."""
    return await _authorize(request, UseKind.PURCHASE)


@router.post(
    "/v1/credit-lines/{credit_line_id}/drawdowns",
    name="drawdowns_create",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
    openapi_extra=openapi_extra(DrawdownIn),
)
async def post_drawdown(request: Request) -> Response:
    """Authorize a cash drawdown on the line's cash product (origination fee included)."""
    return await _authorize(request, UseKind.CASH_DRAWDOWN)


@router.post(
    "/v1/credit-lines/{credit_line_id}/purchases/{purchase_id}/refund",
    name="purchases_refund",
    status_code=201,
    response_model=RefundOut,
    responses=PROBLEMS,
)
def post_refund(
    credit_line_id: LineId,
    purchase_id: UseId,
    who: OperatorDep,
    once: OnceDep,
    body: RefundIn | None = None,
) -> Response:
    """Refund a purchase in full (no amount) or in part; restores the limit and reverses
    the postings (commission in proportion)."""
    refund = body or RefundIn()

    def operation(caches: LendingCaches) -> RefundOut:
        refunded = refund_purchase(
            once.session.connection(),
            caches,
            line_id=credit_line_id,
            purchase_id=purchase_id,
            amount_fen=refund.amount_fen,
            as_of=refund.as_of,
        )
        return RefundOut.model_validate(refunded, from_attributes=True)

    return once.run(who, refund, 201, operation)


@router.get(
    "/v1/credit-lines/{credit_line_id}/purchases/{purchase_id}",
    name="purchases_get",
    response_model=PurchaseOut,
    responses=PROBLEMS,
)
def get_purchase(
    credit_line_id: LineId,
    purchase_id: UseId,
    session: SessionDep,
    who: ReaderDep,
) -> PurchaseOut:
    """One purchase or drawdown: amount, refunds and open principal."""
    use = fetch_use(session.connection(), credit_line_id, purchase_id)
    return PurchaseOut.model_validate(use, from_attributes=True)
