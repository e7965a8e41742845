"""`/v1/credit-lines`: open a line with its limit tree, read it, change limits, add
temporary raises, freeze, unfreeze and close. Admin only, except reading.

Every POST needs an `Idempotency-Key` header; a replay returns the first response.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from node_api.http.authz import AdminDep, ReaderDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    PROBLEMS,
    IdentifierStr,
    LimitFen,
    LineId,
    ProductCodeStr,
    StrictBody,
)
from node_api.idempotency import IDEMPOTENCY_HEADER
from node_api.kernel.money import Fen
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.lending.core.context import LendingCaches
from node_api.lending.limits import (
    LimitNode,
    ProductGroup,
    compute_available_fen,
    compute_effective_limit_fen,
)
from node_api.lending.line_limits import (
    LineAction,
    change_line_status,
    set_node_limit,
    set_temporary_raise,
)
from node_api.lending.lines import (
    LineOpening,
    LockedLine,
    ProductLimit,
    fetch_line,
    open_credit_line,
)

router = APIRouter(tags=["credit lines"])


class ProductLimitIn(StrictBody):
    product_code: ProductCodeStr
    version: int = Field(strict=True, ge=1, le=1_000_000)
    limit_fen: LimitFen
    channel_limits: dict[IdentifierStr, LimitFen] = Field(default_factory=dict, max_length=64)


class LineOpenIn(StrictBody):
    customer_ref: IdentifierStr
    """An opaque customer id (never a name, id number or phone)."""
    as_of: date | None = None
    total_limit_fen: LimitFen
    group_limits: dict[ProductGroup, LimitFen]
    products: list[ProductLimitIn] = Field(min_length=1, max_length=16)
    bill_day: int | None = Field(default=None, strict=True, ge=1, le=31)


class LimitNodeOut(BaseModel):
    path: str
    level: str
    product_code: str | None
    product_version: int | None
    limit_fen: Fen
    temp_raise_fen: Fen
    temp_raise_expires_on: date | None
    effective_limit_fen: Fen
    used_fen: Fen
    available_fen: Fen


class LineOut(BaseModel):
    id: int
    customer_ref: str
    status: str
    currency: str
    opened_on: date
    bill_day: int
    as_of: date
    limits: list[LimitNodeOut]


class LimitChangeIn(StrictBody):
    path: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    limit_fen: LimitFen


class TemporaryRaiseIn(StrictBody):
    path: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    raise_fen: LimitFen
    expires_on: date
    as_of: date | None = None


class StatusChangeIn(StrictBody):
    as_of: date | None = None


def line_view(line: LockedLine, as_of: date) -> LineOut:
    """The API view of a line and its limits on `as_of`."""
    return LineOut(
        id=line.credit_line_id,
        customer_ref=line.customer_ref,
        status=line.status.value,
        currency=line.currency,
        opened_on=line.opened_on,
        bill_day=line.bill_day,
        as_of=as_of,
        limits=[_node_view(node, as_of) for node in line.nodes],
    )


def _node_view(node: LimitNode, as_of: date) -> LimitNodeOut:
    return LimitNodeOut(
        path=node.path,
        level=node.level.value,
        product_code=node.product_code,
        product_version=node.product_version,
        limit_fen=node.limit_fen,
        temp_raise_fen=node.temp_raise_fen,
        temp_raise_expires_on=node.temp_raise_expires_on,
        effective_limit_fen=compute_effective_limit_fen(node, as_of),
        used_fen=node.used_fen,
        available_fen=compute_available_fen(node, as_of),
    )


@router.post(
    "/v1/credit-lines",
    name="credit_lines_create",
    status_code=201,
    response_model=LineOut,
    responses=PROBLEMS,
    summary=f"Open a credit line (requires {IDEMPOTENCY_HEADER})",
)
def post_credit_line(body: LineOpenIn, who: AdminDep, once: OnceDep) -> Response:
    """Open a customer's credit line with its whole limit tree, booked on product versions."""

    def operation(caches: LendingCaches) -> LineOut:
        conn = once.session.connection()
        opened_on = resolve_as_of(
            body.as_of, fetch_business_date(conn), caches.policy.backdate_window_days
        )
        opening = LineOpening(
            customer_ref=body.customer_ref,
            opened_on=opened_on,
            total_limit_fen=body.total_limit_fen,
            group_limits=body.group_limits,
            products=[
                ProductLimit(p.product_code, p.version, p.limit_fen, p.channel_limits)
                for p in body.products
            ],
            bill_day=body.bill_day,
        )
        line_id = open_credit_line(conn, opening, caches.products)
        return line_view(fetch_line(conn, line_id), opened_on)

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/credit-lines/{credit_line_id}",
    name="credit_lines_get",
    response_model=LineOut,
    responses=PROBLEMS,
)
def get_credit_line(
    credit_line_id: LineId, session: SessionDep, who: ReaderDep, as_of: date | None = None
) -> LineOut:
    """A line and its limits: effective limit, usage and availability at every level."""
    conn = session.connection()
    line = fetch_line(conn, credit_line_id)
    return line_view(line, as_of or fetch_business_date(conn) or line.opened_on)


@router.post(
    "/v1/credit-lines/{credit_line_id}/limits",
    name="credit_lines_set_limit",
    response_model=LineOut,
    responses=PROBLEMS,
)
def post_limit_change(
    credit_line_id: LineId, body: LimitChangeIn, who: AdminDep, once: OnceDep
) -> Response:
    """Set the base limit at one level (`total/purchase/REV1`); a new channel path under a
    product adds a channel sub-limit."""

    def operation(caches: LendingCaches) -> LineOut:
        conn = once.session.connection()
        line = set_node_limit(conn, credit_line_id, body.path, body.limit_fen, caches.products)
        return line_view(line, fetch_business_date(conn) or line.opened_on)

    return once.run(who, body, 200, operation)


@router.post(
    "/v1/credit-lines/{credit_line_id}/temporary-raises",
    name="credit_lines_raise_temporarily",
    response_model=LineOut,
    responses=PROBLEMS,
)
def post_temporary_raise(
    credit_line_id: LineId, body: TemporaryRaiseIn, who: AdminDep, once: OnceDep
) -> Response:
    """Raise one level's limit until `expires_on` (inclusive); `raise_fen` 0 cancels."""

    def operation(caches: LendingCaches) -> LineOut:
        conn = once.session.connection()
        as_of = resolve_as_of(
            body.as_of, fetch_business_date(conn), caches.policy.backdate_window_days
        )
        line = set_temporary_raise(
            conn,
            credit_line_id,
            body.path,
            body.raise_fen,
            body.expires_on,
            as_of,
            caches.products,
        )
        return line_view(line, as_of)

    return once.run(who, body, 200, operation)


def _status_route(action: LineAction) -> Callable[..., Response]:
    def change_status(
        credit_line_id: LineId, who: AdminDep, once: OnceDep, body: StatusChangeIn | None = None
    ) -> Response:
        def operation(caches: LendingCaches) -> LineOut:
            conn = once.session.connection()
            requested = body.as_of if body else None
            window_days = caches.policy.backdate_window_days
            as_of = resolve_as_of(requested, fetch_business_date(conn), window_days)
            return line_view(change_line_status(conn, credit_line_id, action, as_of), as_of)

        return once.run(who, body, 200, operation)

    change_status.__name__ = f"post_{action.value}"
    change_status.__doc__ = {
        LineAction.FREEZE: "Freeze the line: every new use is declined.",
        LineAction.UNFREEZE: "Unfreeze the line.",
        LineAction.CLOSE: "Close the line; refused while anything is owed either way.",
    }[action]
    return change_status


for _action in LineAction:
    router.add_api_route(
        f"/v1/credit-lines/{{credit_line_id}}/{_action.value}",
        _status_route(_action),
        methods=["POST"],
        name=f"credit_lines_{_action.value}",
        response_model=LineOut,
        responses=PROBLEMS,
    )
