"""One transaction for many authorizations: the body of a group commit.

`run_use_batch` takes purchases and cash drawdowns (each with its own idempotency key),
claims their keys, locks every line they touch (all nodes, id order), decides each use
in arrival order against the in-memory state left by the ones before it, and writes
all accepted uses, their posting batches, settlement events, new limit usage and every
stored response with a handful of set-based statements. A declined or invalid use does
not stop the others: decisions are made before anything is written.

Each use's outcome is an `AuthorizedUse` or the `CreditNetError` that refused it; the
caller's renderer (the HTTP layer's) turns it into the response stored for its key.

It takes a sync `Connection`, so the same code runs in a sync transaction (tests,
scripts) and on the async engine through `AsyncConnection.run_sync` (the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from node_api.idempotency import (
    ClaimStatus,
    Renderer,
    StoredResponse,
    claim_keys,
    conflict_error,
    is_stored_status,
    store_or_release,
)
from node_api.kernel.errors import CreditNetError
from node_api.kernel.money import Fen
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batches
from node_api.ledger.settlement_events import EventKind
from node_api.ledger.sql import bulk_insert_returning_ids
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import Accepted, UseKind, UseRequest, decide_use
from node_api.lending.core.entries import (
    compute_commission_fen,
    funding_change,
    use_lines,
)
from node_api.lending.limits import LimitNode, apply_usage, compute_path_available_fen
from node_api.lending.lines import LockedLine, lock_lines_with_date, write_usage
from node_api.lending.products import compute_upfront_fee
from node_api.lending.purchase_tables import purchase_table

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
class _Booked:
    """An accepted use, with everything needed to write it."""

    index: int
    request: UseRequest
    accepted: Accepted
    as_of: date
    fee_fen: Fen
    lines: tuple[PostingLine, ...]
    events: tuple[SettlementEventDraft, ...]
    available_fen: int


def run_use_batch(
    conn: Connection,
    caches: LendingCaches,
    requests: list[UseRequest],
    render: Renderer[AuthorizedUse],
) -> list[StoredResponse]:
    """Authorize every request in the caller's transaction; one response per request,
    rendered by `render` (and stored for its key when kept for replay)."""
    leaders: dict[tuple[str, str], int] = {}
    for index, request in enumerate(requests):
        leaders.setdefault((request.claim.scope, request.claim.key), index)
    unique = sorted(leaders.values())
    claims = claim_keys(conn, [requests[i].claim for i in unique])
    results: dict[int, StoredResponse] = {}
    work = []
    for index, claim in zip(unique, claims, strict=True):
        if claim.status is ClaimStatus.CLAIMED:
            work.append(index)
        elif claim.status is ClaimStatus.REPLAY and claim.stored is not None:
            results[index] = claim.stored
        else:
            results[index] = render(conflict_error())
    fresh, drafts = _decide_and_write(conn, caches, [requests[i] for i in work])
    for index, outcome in zip(work, fresh, strict=True):
        results[index] = render(outcome)
    store_or_release(conn, [(requests[i].claim, results[i]) for i in work])
    # Last: posting takes the locks on accounts every batch shares (clearing, income).
    post_batches(conn, drafts, caches.accounts)
    return [
        _for_request(requests, leaders, results, index, render) for index in range(len(requests))
    ]


def _for_request(
    requests: list[UseRequest],
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


def _decide_and_write(
    conn: Connection, caches: LendingCaches, requests: list[UseRequest]
) -> tuple[list[AuthorizedUse | CreditNetError], list[BatchDraft]]:
    """Decide every use; write the accepted ones and their new limit usage; return the
    outcomes and the posting batches still to post."""
    if not requests:
        return [], []
    lines, business_date = lock_lines_with_date(conn, [r.credit_line_id for r in requests])
    if not lines:
        business_date = fetch_business_date(conn)
    results: list[AuthorizedUse | CreditNetError | None] = [None] * len(requests)
    booked: list[_Booked] = []
    for index, request in enumerate(requests):
        outcome = _book_one(conn, caches, request, lines, business_date, index)
        if isinstance(outcome, CreditNetError):
            results[index] = outcome
        else:
            booked.append(outcome)
    use_ids = _insert_uses(conn, booked)
    for item, use_id in zip(booked, use_ids, strict=True):
        results[item.index] = _authorized(item, use_id)
    touched = {node.node_id: node for item in booked for node in item.accepted.path}
    write_usage(conn, list(touched.values()))
    assert all(result is not None for result in results)
    drafts = [
        BatchDraft(
            business_key=f"{item.request.kind.value}:{use_id}",
            kind=item.request.kind.value,
            as_of=item.as_of,
            lines=item.lines,
            credit_line_id=item.request.credit_line_id,
            events=item.events,
        )
        for item, use_id in zip(booked, use_ids, strict=True)
    ]
    return [result for result in results if result is not None], drafts


def _book_one(
    conn: Connection,
    caches: LendingCaches,
    request: UseRequest,
    lines: dict[int, LockedLine],
    business_date: date | None,
    index: int,
) -> _Booked | CreditNetError:
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
    before_fen = decision.product_node.used_fen
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
    funding_lines, funding_events = funding_change(
        line.credit_line_id,
        decision.product_node,
        terms,
        before_fen,
        decision.product_node.used_fen,
    )
    all_lines = own + funding_lines
    events = _use_events(request, decision, commission_fen) + funding_events
    available_fen = compute_path_available_fen(decision.path, as_of)
    return _Booked(
        index, request, decision, as_of, fee_fen, tuple(all_lines), tuple(events), available_fen
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


def _insert_uses(conn: Connection, booked: list[_Booked]) -> list[int]:
    """Insert the accepted uses; return their ids in order."""
    if not booked:
        return []
    table = purchase_table
    rows = [
        {
            "credit_line_id": item.request.credit_line_id,
            "kind": item.request.kind.value,
            "product_node_id": item.accepted.product_node.node_id,
            "product_code": item.accepted.product_node.product_code,
            "product_version": item.accepted.product_node.product_version,
            "channel_id": item.request.channel_id,
            "merchant_id": item.request.merchant_id,
            "currency": item.request.currency,
            "amount_fen": item.request.amount_fen,
            "fee_fen": item.fee_fen,
            "refunded_fen": 0,
            "principal_open_fen": item.request.amount_fen,
            "as_of": item.as_of,
        }
        for item in booked
    ]
    return bulk_insert_returning_ids(conn, table, rows)


def _authorized(item: _Booked, use_id: int) -> AuthorizedUse:
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
