"""Whether one use (purchase or cash drawdown) of a locked line is accepted: pure.

Refusals come in two kinds. Input errors (unknown line 404, wrong currency or product
422, a cost above the node's cap 422: a product rate above it, or a cash drawdown whose
amount, fee and interest to its due date cost more, see `products.cost_cap`) change
nothing and are not stored for replay. Declines (409: the line is frozen or
closed, the channel is not eligible, a limit would be exceeded at some level) depend on
the line's state; they are stored, so a retry with the same key sees the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from node_api.idempotency import KeyClaim
from node_api.kernel.errors import ConflictError, CreditNetError, CreditNetValueError, NotFoundError
from node_api.lending.limits import (
    LimitNode,
    ProductGroup,
    find_exceeded_node,
    select_use_path,
)
from node_api.lending.lines import LineStatus, LockedLine
from node_api.lending.products import ProductTerms, compute_upfront_fee
from node_api.lending.products.cost_cap import (
    CostCap,
    CostCapExceededError,
    check_obligation_cost,
    check_product_rates,
    compute_drawdown_flows,
)


class UseKind(StrEnum):
    PURCHASE = "purchase"
    CASH_DRAWDOWN = "cash_drawdown"

    @property
    def group(self) -> ProductGroup:
        return ProductGroup.CASH if self is UseKind.CASH_DRAWDOWN else ProductGroup.PURCHASE


class UseDeclined(ConflictError):
    """A use the line's state refuses; the instance's `code` says why (stable,
    machine-readable)."""

    code = "declined"


@dataclass(frozen=True, slots=True)
class UseRequest:
    """One authorization request, as parsed from the API (or a test)."""

    kind: UseKind
    credit_line_id: int
    amount_fen: int
    currency: str
    channel_id: str
    claim: KeyClaim
    merchant_id: str | None = None
    product_code: str | None = None
    as_of: date | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    path: list[LimitNode]
    product_node: LimitNode
    terms: ProductTerms


def decide_use(
    request: UseRequest,
    line: LockedLine | None,
    terms_of: Callable[[LimitNode], ProductTerms],
    as_of: date,
    cost_cap: CostCap = CostCap(),
) -> Accepted | CreditNetError:
    """Accept the use (with the nodes to reserve on) or say why not."""
    if request.amount_fen <= 0:
        return CreditNetValueError("the amount must be positive", field="amount_fen")
    if line is None:
        return NotFoundError(
            f"credit line {request.credit_line_id} does not exist", field="credit_line_id"
        )
    if as_of < line.opened_on:
        return CreditNetValueError("the line was not open on that date", field="as_of")
    if request.currency != line.currency:
        return CreditNetValueError(
            f"this line is in {line.currency}", field="currency", code="wrong_currency"
        )
    product_node = _choose_product(request, line)
    if isinstance(product_node, CreditNetError):
        return product_node
    if line.status is not LineStatus.ACTIVE:
        return UseDeclined(
            f"the credit line is {line.status.value}",
            field="credit_line_id",
            code=f"line_{line.status.value}",
        )
    terms = terms_of(product_node)
    if request.channel_id not in terms.eligible_channels:
        return UseDeclined(
            "the channel is not eligible for this product",
            field="channel_id",
            code="channel_ineligible",
        )
    try:
        check_use_cost(request, terms, line.bill_day, as_of, cost_cap)
    except CostCapExceededError as error:
        return error
    path = select_use_path(line.nodes, product_node, request.channel_id)
    exceeded = find_exceeded_node(path, request.amount_fen, as_of)
    if exceeded is not None:
        return UseDeclined(
            f"the amount exceeds the available limit at {exceeded.path}",
            field="amount_fen",
            code="over_limit",
            limit_path=exceeded.path,
        )
    return Accepted(path, product_node, terms)


def check_use_cost(
    request: UseRequest, terms: ProductTerms, bill_day: int, as_of: date, cost_cap: CostCap
) -> None:
    """Refuse a use whose product charges a rate above the cap, or a cash drawdown whose
    all-in cost to its due date is above it."""
    check_product_rates(terms, cost_cap)
    if request.kind is UseKind.CASH_DRAWDOWN:
        fee_fen = compute_upfront_fee(terms.fees, request.amount_fen)
        flows = compute_drawdown_flows(terms, request.amount_fen, fee_fen, as_of, bill_day)
        check_obligation_cost(
            as_of, flows, cost_cap, field="amount_fen",
            what=f"a cash drawdown of {request.amount_fen} fen repaid on {flows[-1].on}",
        )  # fmt: skip


def _choose_product(request: UseRequest, line: LockedLine) -> LimitNode | CreditNetError:
    candidates = line.product_nodes(request.kind.group)
    if request.product_code is not None:
        candidates = [node for node in candidates if node.product_code == request.product_code]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        return UseDeclined(
            f"the line has no {request.kind.group.value} product"
            + (f" {request.product_code}" if request.product_code else ""),
            field="product_code",
            code="product_not_on_line",
        )
    return CreditNetValueError(
        f"the line has several {request.kind.group.value} products; name one", field="product_code"
    )
