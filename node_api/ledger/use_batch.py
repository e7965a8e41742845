"""PostgreSQL: every write of a group-committed authorization batch in one round trip.

The hot path (`node_api.lending.core.batch_pg`) decides a batch of purchases and cash
drawdowns in Python, then hands this module everything the batch writes: its purchases,
the new limit usage, the stored responses (and the keys it gives back), and the posting
batches. `write_use_batch` checks the drafts as `post_batches` does, sends it all as one
JSON document (one `orjson.dumps`: cheaper to build than one array per column, whose
asyncpg encoding checked each element's type several times) to the function
`creditnet_use_batch_write` (migration 0016), and raises the same errors `post_batches`
raises: an unknown account (NotFoundError), a floor crossed (FloorCrossedError; the
accounts are locked in id order and checked before anything is written).

The ledger owns the function because it writes postings, settlement events and
balances (this module and `postings.py` are their only writers); the caller's own rows
are written as given, with the lock order of `node_api.ledger.sql` (the caller holds its
lines' locks already; accounts come last, in id order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from node_api.kernel.errors import NotFoundError
from node_api.ledger.postings import BatchDraft, check_batch, floor_crossed_error
from node_api.ledger.sql import SqlValue

_WRITE = text("SELECT creditnet_use_batch_write(:doc)")


@dataclass(frozen=True, slots=True)
class UseBatchRows:
    """The caller's rows of one batch, each a tuple in the function's column order.

    - `uses`: (id, credit_line_id, kind, product_node_id, product_code, product_version,
      channel_id, merchant_id, currency, amount_fen, fee_fen, as_of, customer_id) of each
      `purchase`;
    - `usage`: (limit node id, used_fen), the nodes locked by this transaction;
    - `responses`: (scope, key, status code, JSON body text) of each claimed key kept;
    - `releases`: (scope, key) of each claimed key given back.
    """

    uses: Sequence[tuple[SqlValue, ...]]
    usage: Sequence[tuple[int, int]]
    responses: Sequence[tuple[str, str, int, str]]
    releases: Sequence[tuple[str, str]]


def write_use_batch(conn: Connection, drafts: Sequence[BatchDraft], rows: UseBatchRows) -> None:
    """Write the caller's rows and post `drafts` in one round trip (PostgreSQL only).

    Raises before anything is written if a draft does not balance or is malformed, names
    an unknown account, or would take an account below its floor.
    """
    for draft in drafts:
        check_batch(draft)
    batches = [(d.business_key, d.kind, d.as_of, d.credit_line_id, d.customer_id) for d in drafts]
    postings = [
        (index, line.account_code, line.amount_fen)
        for index, draft in enumerate(drafts)
        for line in draft.lines
    ]
    events = [
        (
            index,
            event.kind,
            event.amount_fen,
            event.partner_ref,
            event.counterparty_ref,
            event.product_code,
            event.product_version,
        )
        for index, draft in enumerate(drafts)
        for event in draft.events
    ]
    doc = orjson.dumps(
        {
            "uses": rows.uses,
            "usage": rows.usage,
            "responses": rows.responses,
            "releases": rows.releases,
            "batches": batches,
            "postings": postings,
            "events": events,
        }
    ).decode()
    answer = orjson.loads(conn.execute(_WRITE, {"doc": doc}).scalar_one())
    missing = answer.get("missing_accounts")
    if missing:
        raise NotFoundError(f"ledger account {min(missing)} does not exist", field="account")
    crossed = answer.get("floor_crossed")
    if crossed:
        code, balance_fen, floor_fen = crossed
        raise floor_crossed_error(str(code), int(balance_fen), int(floor_fen))
