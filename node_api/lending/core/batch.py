"""One transaction for many authorizations: the body of a group commit.

`run_use_batch` takes purchases and cash drawdowns (each with its own idempotency key),
claims their keys, locks every line they touch (all nodes, id order), decides each use
in arrival order against the in-memory state left by the ones before it
(`booking.decide_uses`), and writes all accepted uses, their posting batches, settlement
events, new limit usage and every stored response. A declined or invalid use does not
stop the others: decisions are made before anything is written.

Two ways of writing one batch, with the same decisions, responses and books:
- on PostgreSQL, `batch_pg.run_use_batch_pg`: two round trips inside the transaction,
  one database function that claims, locks and reads, one that writes everything;
- elsewhere (SQLite), `run_use_batch_statements`: a handful of set-based statements.
A differential test (tests/integration/lending/test_batch_differential.py) runs the same
random operations through both and compares responses and books.

Each use's outcome is an `AuthorizedUse` or the `CreditNetError` that refused it; the
caller's renderer (the HTTP layer's) turns it into the response stored for its key.

It takes a sync `Connection`, so the same code runs in a sync transaction (tests,
scripts) and on the async engine through `AsyncConnection.run_sync` (the API).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from node_api.idempotency import (
    Renderer,
    StoredResponse,
    claim_keys,
    store_or_release,
)
from node_api.kernel.errors import CreditNetError
from node_api.ledger.business_date import fetch_business_date
from node_api.ledger.postings import BatchDraft, post_batches
from node_api.ledger.sql import bulk_insert_returning_ids
from node_api.lending.core.batch_pg import run_use_batch_pg
from node_api.lending.core.booking import (
    AuthorizedUse,
    Booked,
    answer_for_request,
    authorized,
    compute_drafts,
    decide_uses,
    find_leaders,
    split_claims,
    touched_nodes,
)
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.decide import UseRequest
from node_api.lending.lines import lock_lines_with_date, write_usage
from node_api.lending.purchase_tables import purchase_table

__all__ = ["AuthorizedUse", "run_use_batch", "run_use_batch_statements"]


def run_use_batch(
    conn: Connection,
    caches: LendingCaches,
    requests: list[UseRequest],
    render: Renderer[AuthorizedUse],
) -> list[StoredResponse]:
    """Authorize every request in the caller's transaction; one response per request,
    rendered by `render` (and stored for its key when kept for replay)."""
    if conn.dialect.name == "postgresql":
        return run_use_batch_pg(conn, caches, requests, render)
    return run_use_batch_statements(conn, caches, requests, render)


def run_use_batch_statements(
    conn: Connection,
    caches: LendingCaches,
    requests: list[UseRequest],
    render: Renderer[AuthorizedUse],
) -> list[StoredResponse]:
    """`run_use_batch` with plain statements: any database (the one used on SQLite)."""
    leaders = find_leaders(requests)
    unique = sorted(leaders.values())
    claims = claim_keys(conn, [requests[i].claim for i in unique])
    work, results = split_claims(unique, claims, render)
    fresh, drafts = _decide_and_write(conn, caches, [requests[i] for i in work])
    for index, outcome in zip(work, fresh, strict=True):
        results[index] = render(outcome)
    store_or_release(conn, [(requests[i].claim, results[i]) for i in work])
    # Last: posting takes the locks on accounts every batch shares (clearing, income).
    post_batches(conn, drafts, caches.accounts)
    return [
        answer_for_request(requests, leaders, results, index, render)
        for index in range(len(requests))
    ]


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
    refusals, booked = decide_uses(conn, caches, requests, lines, business_date)
    use_ids = _insert_uses(conn, booked)
    results: list[AuthorizedUse | CreditNetError | None] = list(refusals)
    for item, use_id in zip(booked, use_ids, strict=True):
        results[item.index] = authorized(item, use_id)
    write_usage(conn, touched_nodes(booked))
    assert all(result is not None for result in results)
    return [result for result in results if result is not None], compute_drafts(booked, use_ids)


def _insert_uses(conn: Connection, booked: list[Booked]) -> list[int]:
    """Insert the accepted uses; return their ids in order."""
    if not booked:
        return []
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
            "customer_id": item.customer_id,
        }
        for item in booked
    ]
    return bulk_insert_returning_ids(conn, purchase_table, rows)
