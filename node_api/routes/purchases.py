"""Uses of a credit line: scan-to-pay purchases and cash drawdowns (the group-committed
hot path), refunds, and reading a use.

Authorizations are `async` end to end: the key check hits the in-process principal
cache (the key table only on a miss, in the threadpool), and the request joins the
worker's group commit. A declined use is a 409 problem whose `code` says why
(`over_limit` with `limit_path`, `line_frozen`, `line_closed`, `channel_ineligible`,
`product_not_on_line`); it is stored like a success, so a retry sees the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from node_api.auth.keys import Principal, Role
from node_api.deps import PrincipalCache, SessionDep, get_principal, require
from node_api.errors import ForbiddenError
from node_api.idempotency import KeyClaim, compute_request_hash, to_response
from node_api.lending.authorize.decide import UseKind, UseRequest
from node_api.lending.authorize.service import service_for
from node_api.lending.purchases import fetch_use, refund_purchase
from node_api.routes.credit_lines import (
    PROBLEMS,
    AmountFen,
    CurrencyStr,
    IdempotencyKey,
    IdentifierStr,
    LineId,
    ProductCodeStr,
    StrictBody,
    idempotent,
)

router = APIRouter(tags=["purchases"])

UseId = Annotated[int, Path(ge=1, le=2**62, description="purchase or drawdown id")]
_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer cn_...`")
_USE_ROLES = (Role.LENDER_APP, Role.LENDER_ADMIN)


def require_cached(
    *roles: Role,
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """An async role check: the cached principal without a thread hop; on a cache miss the
    regular (sync) key check runs in the threadpool."""
    allowed = frozenset(roles)

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal: Principal | None = None
        if credentials is not None and credentials.credentials:
            cache: PrincipalCache = request.app.state.principal_cache
            principal = cache.get(credentials.credentials)
        if principal is None:
            principal = await run_in_threadpool(get_principal, request, credentials)
        if principal.role not in allowed:
            raise ForbiddenError(
                f"role {principal.role.value} may not call this; allowed: "
                + ", ".join(sorted(r.value for r in allowed))
            )
        return principal

    return dependency


UserDep = Annotated[Principal, Depends(require_cached(*_USE_ROLES))]


class PurchaseIn(StrictBody):
    merchant_id: IdentifierStr
    channel_id: IdentifierStr
    amount_fen: AmountFen
    currency: CurrencyStr
    product_code: ProductCodeStr | None = None
    as_of: date | None = None


class DrawdownIn(StrictBody):
    channel_id: IdentifierStr
    amount_fen: AmountFen
    currency: CurrencyStr
    product_code: ProductCodeStr | None = None
    as_of: date | None = None


class UseOut(BaseModel):
    id: int
    kind: str
    status: str
    credit_line_id: int
    amount_fen: int
    fee_fen: int
    currency: str
    as_of: date
    channel_id: str
    merchant_id: str | None
    product_code: str
    product_version: int
    available_fen: int


class RefundIn(StrictBody):
    amount_fen: AmountFen | None = None
    """Omit for a full refund of what is not refunded yet."""
    as_of: date | None = None


class RefundOut(BaseModel):
    refund_id: int
    purchase_id: int
    credit_line_id: int
    amount_fen: int
    principal_fen: int
    customer_credit_fen: int
    as_of: date
    purchase_refunded_fen: int
    purchase_principal_open_fen: int


class PurchaseOut(BaseModel):
    id: int
    kind: str
    credit_line_id: int
    product_code: str
    product_version: int
    channel_id: str
    merchant_id: str | None
    amount_fen: int
    fee_fen: int
    refunded_fen: int
    principal_open_fen: int
    currency: str
    as_of: date


async def _authorize(
    request: Request, who: Principal, key: str, use: dict[str, Any], kind: UseKind
) -> Response:
    path = request.url.path
    claim = KeyClaim(who.key_id, key, compute_request_hash("POST", path, use["body"]))
    service = service_for(request.app.state, request.app.state.database)
    stored = await service.authorize(
        UseRequest(
            kind=kind,
            credit_line_id=use["credit_line_id"],
            amount_fen=use["body"]["amount_fen"],
            currency=use["body"]["currency"],
            channel_id=use["body"]["channel_id"],
            claim=claim,
            merchant_id=use["body"].get("merchant_id"),
            product_code=use["body"].get("product_code"),
            as_of=use["as_of"],
        )
    )
    return to_response(stored)


@router.post(
    "/v1/credit-lines/{credit_line_id}/purchases",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
)
async def post_purchase(
    credit_line_id: LineId, body: PurchaseIn, request: Request, who: UserDep, key: IdempotencyKey
) -> Response:
    """Authorize a scan-to-pay purchase: limits checked and reserved at every level,
    postings and the funding split written, all in the worker's group commit."""
    use = {
        "credit_line_id": credit_line_id,
        "body": body.model_dump(mode="json"),
        "as_of": body.as_of,
    }
    return await _authorize(request, who, key, use, UseKind.PURCHASE)


@router.post(
    "/v1/credit-lines/{credit_line_id}/drawdowns",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
)
async def post_drawdown(
    credit_line_id: LineId, body: DrawdownIn, request: Request, who: UserDep, key: IdempotencyKey
) -> Response:
    """Authorize a cash drawdown on the line's cash product (origination fee included)."""
    use = {
        "credit_line_id": credit_line_id,
        "body": body.model_dump(mode="json"),
        "as_of": body.as_of,
    }
    return await _authorize(request, who, key, use, UseKind.CASH_DRAWDOWN)


@router.post(
    "/v1/credit-lines/{credit_line_id}/purchases/{purchase_id}/refund",
    status_code=201,
    response_model=RefundOut,
    responses=PROBLEMS,
)
def post_refund(
    credit_line_id: LineId,
    purchase_id: UseId,
    request: Request,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(*_USE_ROLES))],
    key: IdempotencyKey,
    body: RefundIn | None = None,
) -> Response:
    """Refund a purchase in full (no amount) or in part; restores the limit and reverses
    the postings (commission in proportion)."""
    refund = body or RefundIn()

    def operation(caches: Any) -> dict[str, Any]:
        return refund_purchase(
            session.connection(),
            caches,
            line_id=credit_line_id,
            purchase_id=purchase_id,
            amount_fen=refund.amount_fen,
            as_of=refund.as_of,
        )

    return idempotent(request, session, who, key, refund, 201, operation)


@router.get(
    "/v1/credit-lines/{credit_line_id}/purchases/{purchase_id}",
    response_model=PurchaseOut,
    responses=PROBLEMS,
)
def get_purchase(
    credit_line_id: LineId,
    purchase_id: UseId,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(*_USE_ROLES, Role.AUDITOR))],
) -> dict[str, Any]:
    """One purchase or drawdown: amount, refunds and open principal."""
    row = fetch_use(session.connection(), credit_line_id, purchase_id)
    row.pop("product_node_id", None)
    return row
