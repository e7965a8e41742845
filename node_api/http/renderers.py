"""How domain outcomes become stored responses: the renderers the HTTP layer injects
into the idempotent domain code (`node_api.idempotency.Renderer`), and the HTTP
response of a stored (or fresh) result."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from fastapi import Response
from pydantic import BaseModel

from node_api.http.problems import PROBLEM_MEDIA_TYPE, dump_problem, problem_body
from node_api.idempotency import REPLAYED_HEADER, StoredResponse
from node_api.kernel.errors import CreditNetError
from node_api.lending.core.batch import AuthorizedUse

JsonView = BaseModel
"""What a route's operation returns: its response model."""


def render_problem(error: CreditNetError) -> StoredResponse:
    """A domain error as its stored response: status and RFC 9457 body."""
    body = problem_body(error)
    return StoredResponse(int(body["status"]), body)


@dataclass(frozen=True, slots=True)
class JsonRenderer:
    """Renders a route's outcome as `status_code` and its JSON body; errors as problems."""

    status_code: int

    def __call__(self, outcome: JsonView | CreditNetError, /) -> StoredResponse:
        if isinstance(outcome, CreditNetError):
            return render_problem(outcome)
        return StoredResponse(self.status_code, outcome.model_dump(mode="json"))


def render_use(outcome: AuthorizedUse | CreditNetError, /) -> StoredResponse:
    """An authorization's response (the purchase hot path: a plain dict, no validation)."""
    if isinstance(outcome, CreditNetError):
        return render_problem(outcome)
    return StoredResponse(
        201,
        {
            "id": outcome.id,
            "kind": outcome.kind.value,
            "status": "authorized",
            "credit_line_id": outcome.credit_line_id,
            "amount_fen": outcome.amount_fen,
            "fee_fen": outcome.fee_fen,
            "currency": outcome.currency,
            "as_of": outcome.as_of.isoformat(),
            "channel_id": outcome.channel_id,
            "merchant_id": outcome.merchant_id,
            "product_code": outcome.product_code,
            "product_version": outcome.product_version,
            "available_fen": outcome.available_fen,
        },
    )


def to_response(stored: StoredResponse) -> Response:
    """The HTTP response for a stored (or fresh) result; problem+json for errors."""
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else {}
    problem = stored.status_code >= 400
    media_type = PROBLEM_MEDIA_TYPE if problem else "application/json"
    return Response(
        content=dump_problem(stored.body) if problem else orjson.dumps(stored.body),
        status_code=stored.status_code,
        media_type=media_type,
        headers=headers,
    )
