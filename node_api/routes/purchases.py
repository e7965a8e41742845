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
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from node_api.auth.keys import Principal, Role
from node_api.deps import PrincipalCache, SessionDep, get_principal, require
from node_api.errors import ForbiddenError
from node_api.idempotency import (
    IDEMPOTENCY_HEADER,
    KeyClaim,
    check_idempotency_key,
    compute_request_hash,
    to_response,
)
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
_USE_ROLES = frozenset({Role.LENDER_APP, Role.LENDER_ADMIN})
LINE_ID_MAX = 2**62


async def authenticate(request: Request, roles: frozenset[Role]) -> Principal:
    """The caller, from the in-process principal cache without a thread hop; on a cache
    miss the regular (sync) key check runs in the threadpool. 401 or 403 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "bearer" and token:
        cache: PrincipalCache = request.app.state.principal_cache
        principal = cache.get(token)
    if principal is None:
        credentials = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
            if scheme.lower() == "bearer" and token
            else None
        )
        principal = await run_in_threadpool(get_principal, request, credentials)
    if principal.role not in roles:
        raise ForbiddenError(
            f"role {principal.role.value} may not call this; allowed: "
            + ", ".join(sorted(r.value for r in roles))
        )
    return principal


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


UseBody = TypeVar("UseBody", PurchaseIn, DrawdownIn)


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


def _line_id(request: Request) -> int:
    raw = str(request.path_params.get("credit_line_id", ""))
    if not raw.isdigit() or not 1 <= int(raw) <= LINE_ID_MAX:
        raise RequestValidationError(
            [{"loc": ("path", "credit_line_id"), "type": "int_parsing",
              "msg": f"an integer from 1 to {LINE_ID_MAX}"}]
        )  # fmt: skip
    return int(raw)


async def _parse(request: Request, model: type[UseBody]) -> UseBody:
    """The body as `model`; errors exactly as FastAPI reports them (field names under
    `body`), so the problem responses are the same as on every other route."""
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise RequestValidationError(
            [{"loc": ("body",), "type": "model_attributes_type", "msg": "a JSON body is required"}]
        )
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(_under_body(error)) from None


def _under_body(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors with their location under `body`, as FastAPI reports them."""
    details: list[dict[str, Any]] = []
    for detail in error.errors(include_url=False):
        entry: dict[str, Any] = dict(detail)
        entry["loc"] = ("body", *detail["loc"])
        details.append(entry)
    return details


async def _authorize(request: Request, kind: UseKind, model: type[UseBody]) -> Response:
    """Parse, authorize and submit one use to the worker's group commit.

    No FastAPI dependencies on purpose: resolving them cost about 100 µs a request, a
    third of the HTTP overhead of this route. Checks run in the order the dependencies
    ran: who (401/403), the idempotency key (400), then path and body (422).
    """
    who = await authenticate(request, _USE_ROLES)
    key = check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
    line_id = _line_id(request)
    body = await _parse(request, model)
    payload = body.model_dump(mode="json")
    claim = KeyClaim(who.key_id, key, compute_request_hash("POST", request.url.path, payload))
    service = service_for(request.app.state, request.app.state.database)
    stored = await service.authorize(
        UseRequest(
            kind=kind,
            credit_line_id=line_id,
            amount_fen=body.amount_fen,
            currency=body.currency,
            channel_id=body.channel_id,
            claim=claim,
            merchant_id=getattr(body, "merchant_id", None),
            product_code=body.product_code,
            as_of=body.as_of,
        )
    )
    return to_response(stored)


def _openapi(model: type[BaseModel]) -> dict[str, Any]:
    """What FastAPI would have documented for the parameters this route parses itself."""
    return {
        "parameters": [
            {"name": "credit_line_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": LINE_ID_MAX}},
            {"name": IDEMPOTENCY_HEADER, "in": "header", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
        "security": [{"HTTPBearer": []}],
    }  # fmt: skip


@router.post(
    "/v1/credit-lines/{credit_line_id}/purchases",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
    openapi_extra=_openapi(PurchaseIn),
)
async def post_purchase(request: Request) -> Response:
    """Authorize a scan-to-pay purchase: limits checked and reserved at every level,
    postings and the funding split written, all in the worker's group commit."""
    return await _authorize(request, UseKind.PURCHASE, PurchaseIn)


@router.post(
    "/v1/credit-lines/{credit_line_id}/drawdowns",
    status_code=201,
    response_model=UseOut,
    responses=PROBLEMS,
    openapi_extra=_openapi(DrawdownIn),
)
async def post_drawdown(request: Request) -> Response:
    """Authorize a cash drawdown on the line's cash product (origination fee included)."""
    return await _authorize(request, UseKind.CASH_DRAWDOWN, DrawdownIn)


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
    who: Annotated[Principal, Depends(require(Role.LENDER_APP, Role.LENDER_ADMIN))],
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
    who: Annotated[Principal, Depends(require(Role.LENDER_APP, Role.LENDER_ADMIN, Role.AUDITOR))],
) -> dict[str, Any]:
    """One purchase or drawdown: amount, refunds and open principal."""
    row = fetch_use(session.connection(), credit_line_id, purchase_id)
    row.pop("product_node_id", None)
    return row
