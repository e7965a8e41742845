"""Writing end of day's posting batches: the ledger's `post_batches`, or on PostgreSQL
the same writes set-based.

The PostgreSQL path keeps every rule of `node_api.ledger.postings`: each batch is checked
with `check_batch` (balanced, well formed) before anything is written; the touched
accounts are locked in id order (after the lines, per the node's lock order) and their
floors checked with `check_floors` on the locked balances; then the batches, their
postings and the new running balances are written with one statement each (arrays and
`unnest`), instead of one row per parameter set. End of day writes no settlement events
on this path (charge-offs, which do, go through `post_batch`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import fetch_account_ids
from node_api.ledger.postings import (
    AccountState,
    BatchDraft,
    check_batch,
    check_floors,
    compute_deltas,
    post_batches,
)
from node_api.ledger.schema import ledger_account_table, posting_batch_table, posting_table
from node_api.lending.bulk_sql import insert_rows, is_postgresql, match_ids, update_rows
from node_api.lending.eod.context import EodContext


def _resolve(conn: Connection, ctx: EodContext, drafts: Sequence[BatchDraft]) -> dict[str, int]:
    codes = {line.account_code for draft in drafts for line in draft.lines}
    missing = sorted(code for code in codes if code not in ctx.account_ids)
    if missing:
        ctx.account_ids.update(fetch_account_ids(conn, missing))
    return {code: ctx.account_ids[code] for code in codes}


def _lock(conn: Connection, account_ids: Sequence[int]) -> list[AccountState]:
    table = ledger_account_table
    rows = conn.execute(
        select(
            table.c.id, table.c.code, table.c.balance_fen, table.c.normal_sign, table.c.floor_fen
        )
        .where(match_ids(conn, table.c.id, account_ids))
        .order_by(table.c.id)
        .with_for_update(key_share=True)
    )
    return [AccountState(int(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]


def post_eod_batches(conn: Connection, ctx: EodContext, drafts: Sequence[BatchDraft | None]) -> int:
    """Post the batches in the caller's transaction; return how many were posted."""
    real = [draft for draft in drafts if draft is not None]
    if not real:
        return 0
    if not is_postgresql(conn):
        post_batches(conn, real, ctx.caches.accounts)
        return len(real)
    for draft in real:
        check_batch(draft)
    ids = _resolve(conn, ctx, real)
    deltas_fen = compute_deltas(real, ids)
    check_floors(_lock(conn, sorted(deltas_fen)), deltas_fen)
    batch_rows = [
        {"business_key": d.business_key, "kind": d.kind, "as_of": d.as_of,
         "credit_line_id": d.credit_line_id}
        for d in real
    ]  # fmt: skip
    inserted = insert_rows(conn, posting_batch_table, batch_rows, ("business_key", "id"))
    id_of = {str(key): int(batch_id) for key, batch_id in inserted}
    batch_ids = [id_of[draft.business_key] for draft in real]
    postings = [
        {"batch_id": batch_id, "account_id": ids[line.account_code],
         "amount_fen": line.amount_fen, "as_of": draft.as_of}
        for draft, batch_id in zip(real, batch_ids, strict=True)
        for line in draft.lines
    ]  # fmt: skip
    insert_rows(conn, posting_table, postings)
    update_rows(
        conn,
        ledger_account_table,
        "id",
        [
            {"id": account_id, "balance_fen": deltas_fen[account_id]}
            for account_id in sorted(deltas_fen)
        ],
        add=("balance_fen",),
    )
    return len(real)
