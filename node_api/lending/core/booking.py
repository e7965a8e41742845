"""The decisions of a group-committed batch, shared by both ways of writing it.

Given the locked lines and the business date, `decide_uses` decides every claimed use in
arrival order against the in-memory state left by the ones before it (a declined or
invalid use does not stop the others) and books each accepted one: its posting lines,
settlement events, fee and the availability left. Nothing here touches the database
except the product-terms cache. `batch.py` writes the result with plain statements (and
on SQLite); `batch_pg.py` writes it with one function call on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from node_api.idempotency import (
    ClaimResult,
    ClaimStatus,
    Renderer,
    StoredResponse,
    conflict_error,
    is_stored_status,
)
from node_api.kernel.errors import CreditNetError
from node_api.kernel.money import Fen
from node_api.ledger.business_date import resolve_as_of
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft
from node_api.ledger.settlement_events import EventKind
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import Accepted, UseKind, UseRequest, decide_use
from node_api.lending.core.entries import compute_commission_fen, use_lines
from node_api.lending.limits import LimitNode, apply_usage, compute_path_available_fen
from node_api.lending.lines import LockedLine
from node_api.lending.products import compute_upfront_fee

_NO_FEE = Fen(0)
"""Purchases carry no upfront fee (drawdowns pay the product's origination fee)."""


@dataclass(frozen=True, slots=True)
class AuthorizedUse:
    """An accepted and written use: what the caller is told."""

    id: int
    kind: UseKind
    credit_line_id: int
    amount_fen: int
    fee_fen: Fen
    currency: str
    as_of: date
    channel_id: str
    merchant_id: str | None
    product_code: str | None
    product_version: int | None
    available_fen: int


@dataclass(frozen=True, slots=True)
class Booked:
    """An accepted use, with everything needed to write it."""

    index: int
    request: UseRequest
    accepted: Accepted
    as_of: date
    fee_fen: Fen
    lines: tuple[PostingLine, ...]
    events: tuple[SettlementEventDraft, ...]
    available_fen: int
    customer_id: str


def find_leaders(requests: Sequence[UseRequest]) -> dict[tuple[str, str], int]:
    """The first request of each (scope, key): the one that claims it."""
    leaders: dict[tuple[str, str], int] = {}
    for index, request in enumerate(requests):
        leaders.setdefault((request.claim.scope, request.claim.key), index)
    return leaders


def split_claims(
    indexes: Sequence[int], claims: Sequence[ClaimResult], render: Renderer[AuthorizedUse]
) -> tuple[list[int], dict[int, StoredResponse]]:
    """The requests (by index) whose keys this batch claimed, to decide, and the answers
    of the others: a replay's stored response, or a conflict."""
    results: dict[int, StoredResponse] = {}
    work = []
    for index, claim in zip(indexes, claims, strict=True):
        if claim.status is ClaimStatus.CLAIMED:
            work.append(index)
        elif claim.status is ClaimStatus.REPLAY and claim.stored is not None:
            results[index] = claim.stored
        else:
            results[index] = render(conflict_error())
    return work, results


def answer_for_request(
    requests: Sequence[UseRequest],
    leaders: dict[tuple[str, str], int],
    results: dict[int, StoredResponse],
    index: int,
    render: Renderer[AuthorizedUse],
) -> StoredResponse:
    """A request's own result, or, for a duplicate key in the same batch, the leader's."""
    claim = requests[index].claim
    leader = leaders[(claim.scope, claim.key)]
    if leader == index:
        return results[index]
    if requests[leader].claim.request_hash != claim.request_hash:
        return render(conflict_error())
    first = results[leader]
    replayed = is_stored_status(first.status_code)
    return StoredResponse(first.status_code, first.body, replayed=replayed)


def decide_uses(
    conn: Connection,
    caches: LendingCaches,
    requests: Sequence[UseRequest],
    lines: dict[int, LockedLine],
    business_date: date | None,
) -> tuple[list[CreditNetError | None], list[Booked]]:
    """Decide every use in order: the refusal of each refused one (None where accepted),
    and the accepted ones booked, in order. Accepted uses leave their usage on `lines`."""
    refusals: list[CreditNetError | None] = [None] * len(requests)
    booked: list[Booked] = []
    for index, request in enumerate(requests):
        outcome = _book_one(conn, caches, request, lines, business_date, index)
        if isinstance(outcome, CreditNetError):
            refusals[index] = outcome
        else:
            booked.append(outcome)
    return refusals, booked


def compute_drafts(booked: Sequence[Booked], use_ids: Sequence[int]) -> list[BatchDraft]:
    """The posting batch of each booked use, keyed by its kind and id."""
    return [
        BatchDraft(
            business_key=f"{item.request.kind.value}:{use_id}",
            kind=item.request.kind.value,
            as_of=item.as_of,
            lines=item.lines,
            credit_line_id=item.request.credit_line_id,
            events=item.events,
            customer_id=item.customer_id,
        )
        for item, use_id in zip(booked, use_ids, strict=True)
    ]


def touched_nodes(booked: Sequence[Booked]) -> list[LimitNode]:
    """Every limit node an accepted use reserved on, once each."""
    return list({node.node_id: node for item in booked for node in item.accepted.path}.values())


def authorized(item: Booked, use_id: int) -> AuthorizedUse:
    node = item.accepted.product_node
    request = item.request
    return AuthorizedUse(
        id=use_id,
        kind=request.kind,
        credit_line_id=request.credit_line_id,
        amount_fen=request.amount_fen,
        fee_fen=item.fee_fen,
        currency=request.currency,
        as_of=item.as_of,
        channel_id=request.channel_id,
        merchant_id=request.merchant_id,
        product_code=node.product_code,
        product_version=node.product_version,
        available_fen=item.available_fen,
    )


def _book_one(
    conn: Connection,
    caches: LendingCaches,
    request: UseRequest,
    lines: dict[int, LockedLine],
    business_date: date | None,
    index: int,
) -> Booked | CreditNetError:
    policy = caches.policy
    try:
        as_of = resolve_as_of(request.as_of, business_date, policy.backdate_window_days)
    except CreditNetError as error:
        return error
    line = lines.get(request.credit_line_id)

    def terms_of(node: LimitNode) -> Any:
        return caches.terms_of(conn, node)

    decision = decide_use(request, line, terms_of, as_of, policy.cost_cap)
    if isinstance(decision, CreditNetError):
        return decision
    assert line is not None
    apply_usage(decision.path, request.amount_fen)
    terms = decision.terms
    purchase = request.kind is UseKind.PURCHASE
    fee_fen = _NO_FEE if purchase else compute_upfront_fee(terms.fees, request.amount_fen)
    commission_fen = (
        compute_commission_fen(request.amount_fen, terms.channel_commission_bps) if purchase else 0
    )
    own = use_lines(
        line_id=line.credit_line_id,
        amount_fen=request.amount_fen,
        fee_fen=fee_fen,
        commission_fen=commission_fen,
        channel_id=request.channel_id,
    )
    # The funders' shares of the new principal are posted by end of day's first step
    # (`lending/eod/step_fund.py`), once a line and day, not on every use.
    events = _use_events(request, decision, commission_fen)
    available_fen = compute_path_available_fen(decision.path, as_of)
    return Booked(
        index,
        request,
        decision,
        as_of,
        fee_fen,
        tuple(own),
        tuple(events),
        available_fen,
        line.customer_ref,
    )


def _use_events(
    request: UseRequest, decision: Accepted, commission_fen: int
) -> list[SettlementEventDraft]:
    product = (decision.product_node.product_code, decision.product_node.product_version)
    purchase = request.kind is UseKind.PURCHASE
    events = [
        SettlementEventDraft(
            EventKind.MERCHANT_PAYABLE if purchase else EventKind.CASH_DISBURSED,
            request.amount_fen,
            counterparty_ref=request.merchant_id,
            product_code=product[0],
            product_version=product[1],
        )
    ]
    if commission_fen:
        events.append(
            SettlementEventDraft(
                EventKind.CHANNEL_COMMISSION,
                commission_fen,
                partner_ref=request.channel_id,
                product_code=product[0],
                product_version=product[1],
            )
        )
    return events
