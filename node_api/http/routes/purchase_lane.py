"""The authorization request path shared by the purchase and drawdown routes, and its
fast lane.

Both routes parse their request themselves (no FastAPI dependencies) and hand it to
`submit_use`. The fast lane (`AuthorizationFastLane`) is pure ASGI middleware, the
run before the app's whole middleware stack (`NodeApp.serve_lanes_first`; it answers its
own unexpected errors as the stack's last-resort handler would): it serves a request
only when everything about it is known to be in order (POST to a use
path, a bearer key in the principal cache with a role that may authorize, a well-formed
idempotency key, a JSON body within the size limit that validates), without the
middleware stack, routing, FastAPI's request handling and response objects, which cost
about 200 µs of CPU a request. Everything else goes to the regular app unchanged, the
body the lane already read handed back to it: the first call of a key (cache miss), bad
credentials and malformed headers, and invalid bodies get exactly the regular
responses. What the regular middleware does for every request (the request id echoed,
the access-log line, the latency histogram) the lane does with the same functions
(`node_api.http.middleware`). Both paths authenticate through `node_api.http.authz`
(the lane only ever from the principal cache) and build the domain request with
`use_request`.
"""

from __future__ import annotations

import re
from datetime import date

from fastapi import Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from node_api.auth.keys import Principal
from node_api.http.authz import OPERATOR_ROLES, bearer_token, cached_principal
from node_api.http.lane_io import LaneExchange, header, read_body, route_path, send_stored
from node_api.http.problems import unexpected_error_body
from node_api.http.renderers import to_response
from node_api.http.schemas import (
    ID_MAX,
    AmountFen,
    CurrencyStr,
    IdentifierStr,
    ProductCodeStr,
    StrictBody,
    parse_path_id,
)
from node_api.http.services import Services, services_of
from node_api.idempotency import (
    IDEMPOTENCY_HEADER,
    StoredResponse,
    is_idempotency_key,
    key_claim,
)
from node_api.lending.core.decide import UseKind, UseRequest

USE_ROLES = OPERATOR_ROLES
LINE_ID_MAX = ID_MAX
_USE_PATH = re.compile(r"^/v1/credit-lines/([1-9][0-9]{0,18})/(purchases|drawdowns)$")
_TEMPLATES = {
    UseKind.PURCHASE: "/v1/credit-lines/{credit_line_id}/purchases",
    UseKind.CASH_DRAWDOWN: "/v1/credit-lines/{credit_line_id}/drawdowns",
}
"""The route templates the lane's requests are counted and logged under."""


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


MODELS: dict[UseKind, type[PurchaseIn] | type[DrawdownIn]] = {
    UseKind.PURCHASE: PurchaseIn,
    UseKind.CASH_DRAWDOWN: DrawdownIn,
}


def parse_line_id(raw: str) -> int:
    """The path's line id, or the 422 FastAPI would give for a bad integer."""
    line_id = parse_path_id(raw, LINE_ID_MAX)
    if line_id is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("path", "credit_line_id"),
                    "type": "int_parsing",
                    "msg": f"an integer from 1 to {LINE_ID_MAX}",
                }
            ]
        )
    return line_id


def parse_body(
    model: type[PurchaseIn] | type[DrawdownIn], content_type: str, raw: bytes
) -> PurchaseIn | DrawdownIn:
    """The body as `model`; errors as FastAPI reports them (located under `body`)."""
    if "json" not in content_type:
        raise RequestValidationError(
            [{"loc": ("body",), "type": "model_attributes_type", "msg": "a JSON body is required"}]
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError(_under_body(error)) from None


def _under_body(error: ValidationError) -> list[dict[str, object]]:
    """Pydantic's errors located under `body`, as FastAPI reports them."""
    details: list[dict[str, object]] = []
    for detail in error.errors(include_url=False):
        entry: dict[str, object] = dict(detail)
        entry["loc"] = ("body", *detail["loc"])
        details.append(entry)
    return details


async def submit_use(
    services: Services,
    path: str,
    who: Principal,
    key: str,
    line_id: int,
    kind: UseKind,
    body: PurchaseIn | DrawdownIn,
) -> Response:
    """Claim the key with this request's hash, authorize in the worker's group commit,
    and answer with the stored (or fresh) result."""
    request = use_request(path, who, key, line_id, kind, body)
    return to_response(await services.authorization.current().authorize(request))


def use_request(
    path: str, who: Principal, key: str, line_id: int, kind: UseKind, body: PurchaseIn | DrawdownIn
) -> UseRequest:
    """The domain's request, with the key claimed under this caller and body's hash."""
    return UseRequest(
        kind=kind,
        credit_line_id=line_id,
        amount_fen=body.amount_fen,
        currency=body.currency,
        channel_id=body.channel_id,
        claim=key_claim(who.key_id, key, path, body.model_dump(mode="json")),
        merchant_id=getattr(body, "merchant_id", None),
        product_code=body.product_code,
        as_of=body.as_of,
    )


def lane_request(scope: Scope) -> tuple[UseKind, Principal, str, int] | None:
    """What the fast lane needs, if it can serve this request without any check that
    could fail before the body is read; None sends it to the regular route."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    found = _USE_PATH.fullmatch(route_path(scope))
    app = scope.get("app")
    if found is None or app is None or int(found.group(1)) > LINE_ID_MAX:
        return None
    token = bearer_token(header(scope, b"authorization"))
    key = header(scope, b"idempotency-key")
    content_type = header(scope, b"content-type") or ""
    if token is None or key is None or not is_idempotency_key(key):
        return None
    if "json" not in content_type:
        return None
    principal = cached_principal(services_of(app), token)
    if principal is None or principal.role not in USE_ROLES:
        return None
    kind = UseKind.PURCHASE if found.group(2) == "purchases" else UseKind.CASH_DRAWDOWN
    return kind, principal, key, int(found.group(1))


class AuthorizationFastLane:
    """See the module docstring: pure ASGI middleware, the outermost of the app's own.
    `served` counts the requests it answered itself."""

    served = 0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = lane_request(scope) if scope["type"] == "http" else None
        if lane is None:
            await self.app(scope, receive, send)
            return
        services = services_of(scope["app"])
        read = await read_body(scope, receive, services.settings.max_body_bytes)
        kind, who, key, line_id = lane
        body = None if read.body is None else _lane_body(MODELS[kind], read.body)
        if body is None:  # unread, too large or invalid: the regular path answers it
            await self.app(scope, read.receive, send)
            return
        await self._serve(scope, send, services, (kind, who, key, line_id), body)

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        services: Services,
        lane: tuple[UseKind, Principal, str, int],
        body: PurchaseIn | DrawdownIn,
    ) -> None:
        kind, who, key, line_id = lane
        with LaneExchange(
            scope, "POST", _TEMPLATES[kind], log_requests=services.settings.access_log
        ) as exchange:
            try:
                stored = await services.authorization.current().authorize(
                    use_request(scope["path"], who, key, line_id, kind, body)
                )
            except Exception:  # the lane runs before the app's last-resort handler
                stored = StoredResponse(500, unexpected_error_body(scope["path"]))
            await send_stored(send, exchange, stored)
            AuthorizationFastLane.served += 1


def _lane_body(
    model: type[PurchaseIn] | type[DrawdownIn], raw: bytes
) -> PurchaseIn | DrawdownIn | None:
    """The valid body, or None (the regular route then reports why, as it always does)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


def openapi_extra(model: type[BaseModel]) -> dict[str, object]:
    """What FastAPI would have documented for the parameters the routes parse themselves."""
    return {
        "parameters": [
            {
                "name": "credit_line_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": LINE_ID_MAX},
            },
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
        "security": [{"HTTPBearer": []}],
    }
