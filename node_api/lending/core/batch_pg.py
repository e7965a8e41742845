"""PostgreSQL: a group-committed batch of authorizations in two round trips.

1. `creditnet_use_batch_open` (migration 0016) claims the keys in (scope, key) order,
   reads back the earlier claims of the keys it could not take, locks the claimed
   requests' lines (node id order), reads the business date and reserves one purchase
   id per claimed request;
2. Python decides every use (`booking.decide_uses`, as on SQLite) and renders every
   response, the accepted uses taking the reserved ids in order;
3. `node_api.ledger.use_batch.write_use_batch` writes everything in one call.

Before, the batch took about ten statements (twelve round trips with BEGIN and COMMIT),
whose fixed cost dominated small batches. The decisions and responses are those of the
statement path; the one difference is in ids: a request claimed but refused leaves its
reserved purchase id unused (a sequence gap, as any rolled back transaction leaves).

Both calls take one JSON text built with orjson and answer one JSON text, so nothing is
encoded element by element.
"""

from __future__ import annotations

from datetime import date
from typing import TypedDict

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from node_api.idempotency import (
    EarlierClaim,
    Renderer,
    StoredResponse,
    classify_claims,
    encode_body,
    is_stored_status,
)
from node_api.ledger.sql import SqlValue
from node_api.ledger.use_batch import UseBatchRows, write_use_batch
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
from node_api.lending.lines import lines_from_json

_OPEN = text("SELECT creditnet_use_batch_open(:doc)")


class _Opened(TypedDict):
    """What `creditnet_use_batch_open` answers."""

    claimed_scopes: list[str]
    claimed_keys: list[str]
    earlier: list[tuple[str, str, str, int | None, str | None]]
    """(scope, key, request hash, stored status, stored body) of each key not claimed."""
    nodes: list[list[SqlValue]]
    """The locked lines' limit nodes, in the columns of `lines.lines_from_json`."""
    business_date: str | None
    use_ids: list[int]


def run_use_batch_pg(
    conn: Connection,
    caches: LendingCaches,
    requests: list[UseRequest],
    render: Renderer[AuthorizedUse],
) -> list[StoredResponse]:
    """`run_use_batch` on PostgreSQL (see the module docstring)."""
    leaders = find_leaders(requests)
    unique = sorted(leaders.values())
    if not unique:
        return []
    # Claimed in (scope, key) order, the first locks of the transaction (ledger/sql.py).
    by_key = sorted(unique, key=lambda i: (requests[i].claim.scope, requests[i].claim.key))
    claims = [(requests[i].claim, requests[i].credit_line_id) for i in by_key]
    doc = {"claims": [(c.scope, c.key, c.request_hash, line_id) for c, line_id in claims]}
    answer = conn.execute(_OPEN, {"doc": orjson.dumps(doc).decode()}).scalar_one()
    opened: _Opened = orjson.loads(answer)
    claimed = set(zip(opened["claimed_scopes"], opened["claimed_keys"], strict=True))
    earlier: dict[tuple[str, str], EarlierClaim] = {
        (scope, key): (request_hash, status, body)
        for scope, key, request_hash, status, body in opened["earlier"]
    }
    statuses = classify_claims([requests[i].claim for i in unique], claimed, earlier)
    work, results = split_claims(unique, statuses, render)
    if work:
        _decide_and_write(conn, caches, requests, work, opened, results, render)
    return [
        answer_for_request(requests, leaders, results, index, render)
        for index in range(len(requests))
    ]


def _decide_and_write(
    conn: Connection,
    caches: LendingCaches,
    requests: list[UseRequest],
    work: list[int],
    opened: _Opened,
    results: dict[int, StoredResponse],
    render: Renderer[AuthorizedUse],
) -> None:
    """Decide the claimed requests, render their responses into `results`, write it all."""
    lines = lines_from_json(opened["nodes"])
    business_date = opened["business_date"]
    today = None if business_date is None else date.fromisoformat(business_date)
    claimed = [requests[i] for i in work]
    refusals, booked = decide_uses(conn, caches, claimed, lines, today)
    use_ids = sorted(opened["use_ids"])[: len(booked)]
    for item, use_id in zip(booked, use_ids, strict=True):
        results[work[item.index]] = render(authorized(item, use_id))
    for position, refusal in enumerate(refusals):
        if refusal is not None:
            results[work[position]] = render(refusal)
    responses, releases = [], []
    for index in work:
        claim, response = requests[index].claim, results[index]
        if is_stored_status(response.status_code):
            body = encode_body(response.body)
            responses.append((claim.scope, claim.key, response.status_code, body))
        else:
            releases.append((claim.scope, claim.key))
    nodes = sorted(touched_nodes(booked), key=lambda node: node.node_id)
    rows = UseBatchRows(
        uses=[_use_row(item, use_id) for item, use_id in zip(booked, use_ids, strict=True)],
        usage=[(node.node_id, node.used_fen) for node in nodes],
        responses=responses,
        releases=releases,
    )
    write_use_batch(conn, compute_drafts(booked, use_ids), rows)


def _use_row(item: Booked, use_id: int) -> tuple[SqlValue, ...]:
    """The `purchase` row of an accepted use, in the write function's column order."""
    request, node = item.request, item.accepted.product_node
    return (
        use_id,
        request.credit_line_id,
        request.kind.value,
        node.node_id,
        node.product_code,
        node.product_version,
        request.channel_id,
        request.merchant_id,
        request.currency,
        request.amount_fen,
        item.fee_fen,
        item.as_of,
        item.customer_id,
    )
