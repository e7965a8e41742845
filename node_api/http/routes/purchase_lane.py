"""The authorization request path shared by the purchase and drawdown routes, and its
fast lane.

Both routes parse their request themselves (no FastAPI dependencies) and hand it to
`submit_use`. The fast lane (`AuthorizationFastLane`) is a Starlette `Mount` placed
before them in the router: it claims a request only when everything about it is
already known to be in order (POST to a use path, a bearer key in the principal cache
with a role that may authorize, a well-formed idempotency key, a JSON body), and then
serves it without FastAPI's per-request machinery (route handler, dependency solving,
request/response wrappers), which cost about 150 µs a request, a quarter of the node's
CPU on this path. Every other request falls through to the regular routes, so the first
call of a key (cache miss), bad credentials and malformed headers get exactly the
regular responses. Body errors raise the same `RequestValidationError` FastAPI raises,
so they become the same problem responses. Both paths authenticate through
`node_api.http.authz` (the lane only ever from the principal cache) and end in
`submit_use`.
"""

from __future__ import annotations

import re
from datetime import date

from fastapi import Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

from node_api.auth.keys import Principal
from node_api.http.authz import OPERATOR_ROLES, bearer_token, cached_principal
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
from node_api.idempotency import IDEMPOTENCY_HEADER, is_idempotency_key, key_claim
from node_api.lending.core.decide import UseKind, UseRequest

USE_ROLES = OPERATOR_ROLES
LINE_ID_MAX = ID_MAX
_USE_PATH = re.compile(r"^/v1/credit-lines/([1-9][0-9]{0,18})/(purchases|drawdowns)$")
_LANE_KEY = "creditnet.fast_lane"
_UNDECIDED = object()


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
    claim = key_claim(who.key_id, key, path, body.model_dump(mode="json"))
    stored = await services.authorization.current().authorize(
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


def _route_path(scope: Scope) -> str:
    """The path below the app's root path (what Starlette's router matches)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def lane_request(scope: Scope) -> tuple[UseKind, Principal, str, int] | None:
    """What the fast lane needs, if it can serve this request without any check that
    could fail before the body is read; None sends it to the regular route."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    found = _USE_PATH.fullmatch(_route_path(scope))
    app = scope.get("app")
    if found is None or app is None or int(found.group(1)) > LINE_ID_MAX:
        return None
    token = bearer_token(_header(scope, b"authorization"))
    key = _header(scope, b"idempotency-key")
    content_type = _header(scope, b"content-type") or ""
    if token is None or key is None or not is_idempotency_key(key):
        return None
    if "json" not in content_type:
        return None
    principal = cached_principal(services_of(app), token)
    if principal is None or principal.role not in USE_ROLES:
        return None
    kind = UseKind.PURCHASE if found.group(2) == "purchases" else UseKind.CASH_DRAWDOWN
    return kind, principal, key, int(found.group(1))


class AuthorizationFastLane(Mount):
    """See the module docstring. `served` counts the requests it answered."""

    served = 0

    def __init__(self) -> None:
        super().__init__("/v1/credit-lines", app=self._serve, name="authorization_fast_lane")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # FastAPI matches a request twice (to pick the router, then the route): decide once.
        lane = scope.get(_LANE_KEY, _UNDECIDED)
        if lane is _UNDECIDED:
            lane = scope[_LANE_KEY] = lane_request(scope)
        if lane is None:
            return Match.NONE, {}
        return Match.FULL, {}

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind, who, key, line_id = scope[_LANE_KEY]
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = parse_body(MODELS[kind], "json", b"".join(chunks))
        services = services_of(scope["app"])
        response = await submit_use(services, scope["path"], who, key, line_id, kind, body)
        AuthorizationFastLane.served += 1
        await response(scope, receive, send)


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
