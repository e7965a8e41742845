"""Posting batches: the only way money moves in the books.

A batch has a unique business key, a kind, a business date and two or more lines that
sum to zero (debit positive, credit negative). Either the whole batch is written, with
its settlement events and the new running balances, or nothing is: every check runs
before the first write, and the caller's transaction makes the writes atomic.

Settlement events are written with the batch: they say which money moved between which
parties (merchant, funding partner, channel) so clearing can be derived later without
re-reading postings. A reversal negates both the lines and the events.

`post_batches` takes many batches at once (group commit, end of day): four statements
whatever the number of batches, plus one lock-and-update of the touched accounts. On
PostgreSQL the group-committed authorization batch posts through `use_batch.py` instead,
which writes the same rows with the same checks and lock order in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import Fen
from node_api.ledger.accounts import NODE_CUSTOMER, AccountIdCache
from node_api.ledger.schema import (
    ledger_account_table,
    posting_batch_table,
    posting_table,
    settlement_event_table,
)
from node_api.ledger.sql import Row, bulk_insert, bulk_insert_returning_ids, bulk_update, in_values

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
BUSINESS_KEY_MAX_CHARS = 160


class UnbalancedBatchError(CreditNetValueError):
    code = "unbalanced_batch"


class FloorCrossedError(ConflictError):
    """A batch would take an account below its floor; nothing was written."""

    code = "floor_crossed"


@dataclass(frozen=True, slots=True)
class PostingLine:
    """One side of a posting: an account (by code) and a signed amount, debit positive."""

    account_code: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class SettlementEventDraft:
    """Money that moved between parties, for clearing. Signed: a reversal negates it."""

    kind: str
    amount_fen: int
    partner_ref: str | None = None
    counterparty_ref: str | None = None
    product_code: str | None = None
    product_version: int | None = None


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A batch to post. `lines` must balance; `events` inherit its date and line."""

    business_key: str
    kind: str
    as_of: date
    lines: tuple[PostingLine, ...]
    credit_line_id: int | None = None
    events: tuple[SettlementEventDraft, ...] = ()
    reverses_batch_id: int | None = None
    customer_id: str = NODE_CUSTOMER
    """The line's customer: required with `credit_line_id` (the partitioning key, issue
    #19), `NODE_CUSTOMER` without one; its postings and events carry it too."""


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as locked for a floor check."""

    account_id: int
    code: str
    balance_fen: Fen
    normal_sign: int
    floor_fen: Fen | None


def check_batch(draft: BatchDraft) -> None:
    """Refuse a batch that does not balance or is malformed, before anything is written."""
    if not draft.business_key or len(draft.business_key) > BUSINESS_KEY_MAX_CHARS:
        raise CreditNetValueError("a business key has 1 to 160 characters", field="business_key")
    if KIND_PATTERN.fullmatch(draft.kind) is None:
        raise CreditNetValueError("a batch kind is a lower-case identifier", field="kind")
    if len(draft.lines) < 2:
        raise UnbalancedBatchError("a batch has at least two lines", field="lines")
    if any(line.amount_fen == 0 for line in draft.lines):
        raise UnbalancedBatchError("a posting line cannot be zero", field="lines")
    total_fen = sum(line.amount_fen for line in draft.lines)
    if total_fen != 0:
        raise UnbalancedBatchError(
            f"debits and credits differ by {total_fen} fen", field="lines", imbalance_fen=total_fen
        )
    if (draft.credit_line_id is None) != (draft.customer_id == NODE_CUSTOMER):
        raise CreditNetValueError(
            "a batch names its line's customer exactly when it names a line", field="customer_id"
        )
    for event in draft.events:
        if event.amount_fen == 0 or KIND_PATTERN.fullmatch(event.kind) is None:
            raise CreditNetValueError(
                "a settlement event needs a kind and an amount", field="events"
            )


def compute_deltas(drafts: Iterable[BatchDraft], ids: Mapping[str, int]) -> dict[int, int]:
    """The net balance change per account id over all drafts (zero changes dropped)."""
    deltas: dict[int, int] = {}
    for draft in drafts:
        for line in draft.lines:
            account_id = ids[line.account_code]
            deltas[account_id] = deltas.get(account_id, 0) + line.amount_fen
    return {account_id: delta for account_id, delta in deltas.items() if delta != 0}


def check_floors(accounts: Iterable[AccountState], deltas_fen: Mapping[int, int]) -> None:
    """Raise FloorCrossedError for the first account whose new normal balance is below floor."""
    for account in accounts:
        if account.floor_fen is None:
            continue
        new_balance_fen = account.balance_fen + deltas_fen.get(account.account_id, 0)
        if new_balance_fen * account.normal_sign < account.floor_fen:
            raise floor_crossed_error(
                account.code, new_balance_fen * account.normal_sign, account.floor_fen
            )


def floor_crossed_error(code: str, normal_balance_fen: int, floor_fen: int) -> FloorCrossedError:
    """The refusal of a batch that would leave account `code` holding `normal_balance_fen`
    (on its normal side), below its floor."""
    return FloorCrossedError(
        f"account {code} would hold {normal_balance_fen} fen, below its floor of {floor_fen}",
        field="amount_fen",
        account=code,
    )


def post_batches(
    conn: Connection, drafts: Sequence[BatchDraft], accounts: AccountIdCache
) -> list[int]:
    """Write the batches in one go; return their ids in the order given.

    The caller owns the transaction (and on SQLite must have called `begin_write`).
    Raises before writing anything if a batch does not balance, names an unknown
    account, or would cross a floor.

    Every touched account is locked in id order (SELECT ... FOR NO KEY UPDATE). When some
    change moves an account toward its floor, that happens first, with the floor check,
    before anything is written. Otherwise (a purchase) no floor can be crossed and the
    locks are taken last, just before the balance update, so accounts many transactions
    share (clearing, income) stay locked only until the commit that follows. The floor
    CHECK constraint guards the database either way. On PostgreSQL postings, events and the
    balance changes are each one set-based statement (`unnest`), whatever their number.
    """
    if not drafts:
        return []
    for draft in drafts:
        check_batch(draft)
    refs = accounts.refs(conn, {line.account_code for draft in drafts for line in draft.lines})
    ids = {code: ref.account_id for code, ref in refs.items()}
    deltas_fen = compute_deltas(drafts, ids)
    toward_floor = any(
        ref.moves_toward_floor(deltas_fen.get(ref.account_id, 0)) for ref in refs.values()
    )
    if toward_floor:
        check_floors(lock_accounts(conn, sorted(deltas_fen)), deltas_fen)
    batch_ids = _insert_batches(conn, drafts)
    _insert_postings(conn, drafts, batch_ids, ids)
    _insert_events(conn, drafts, batch_ids)
    _apply_deltas(conn, deltas_fen, locked=toward_floor)
    return batch_ids


def lock_accounts(conn: Connection, account_ids: Sequence[int]) -> list[AccountState]:
    """Lock accounts in id order (FOR NO KEY UPDATE, so inserts referencing them still
    pass) and return their current state."""
    if not account_ids:
        return []
    table = ledger_account_table
    rows = conn.execute(
        select(
            table.c.id, table.c.code, table.c.balance_fen, table.c.normal_sign, table.c.floor_fen
        )
        .where(in_values(conn, table.c.id, sorted(account_ids)))
        .order_by(table.c.id)
        .with_for_update(key_share=True)
    )
    return [AccountState(int(r[0]), str(r[1]), Fen(int(r[2])), int(r[3]), r[4]) for r in rows]


def _insert_batches(conn: Connection, drafts: Sequence[BatchDraft]) -> list[int]:
    rows = [
        {
            "business_key": draft.business_key,
            "kind": draft.kind,
            "as_of": draft.as_of,
            "credit_line_id": draft.credit_line_id,
            "reverses_batch_id": draft.reverses_batch_id,
            "customer_id": draft.customer_id,
        }
        for draft in drafts
    ]
    return bulk_insert_returning_ids(conn, posting_batch_table, rows)


def _insert_postings(
    conn: Connection, drafts: Sequence[BatchDraft], batch_ids: Sequence[int], ids: Mapping[str, int]
) -> None:
    rows: list[Row] = [
        {
            "batch_id": batch_id,
            "account_id": ids[line.account_code],
            "amount_fen": line.amount_fen,
            "as_of": draft.as_of,
            "customer_id": draft.customer_id,
        }
        for draft, batch_id in zip(drafts, batch_ids, strict=True)
        for line in draft.lines
    ]
    bulk_insert(conn, posting_table, rows)


def _insert_events(
    conn: Connection, drafts: Sequence[BatchDraft], batch_ids: Sequence[int]
) -> None:
    rows = [
        {
            "batch_id": batch_id,
            "kind": event.kind,
            "as_of": draft.as_of,
            "credit_line_id": draft.credit_line_id,
            "product_code": event.product_code,
            "product_version": event.product_version,
            "partner_ref": event.partner_ref,
            "counterparty_ref": event.counterparty_ref,
            "amount_fen": event.amount_fen,
            "customer_id": draft.customer_id,
        }
        for draft, batch_id in zip(drafts, batch_ids, strict=True)
        for event in draft.events
    ]
    bulk_insert(conn, settlement_event_table, rows)


def _apply_deltas(conn: Connection, deltas_fen: Mapping[int, int], *, locked: bool) -> None:
    """Add the deltas to the accounts' running balances, locking them first in id order
    unless this transaction holds their locks already."""
    rows = [
        {"id": account_id, "balance_fen": deltas_fen[account_id]}
        for account_id in sorted(deltas_fen)
    ]
    bulk_update(
        conn,
        ledger_account_table,
        rows,
        keys=("id",),
        increment=("balance_fen",),
        lock_first=not locked,
    )


def fetch_batch_id(conn: Connection, business_key: str) -> int | None:
    """The id of the batch with this business key, if it was posted."""
    table = posting_batch_table
    value = conn.execute(
        select(table.c.id).where(table.c.business_key == business_key)
    ).scalar_one_or_none()
    return None if value is None else int(value)


def build_reversal(
    conn: Connection, batch_id: int, *, business_key: str, kind: str, as_of: date
) -> BatchDraft:
    """A draft that undoes batch `batch_id` exactly: every line and event negated."""
    batches = posting_batch_table
    original = conn.execute(
        select(batches.c.credit_line_id, batches.c.customer_id).where(batches.c.id == batch_id)
    ).one_or_none()
    if original is None:
        raise NotFoundError(f"posting batch {batch_id} does not exist", field="batch_id")
    already = conn.execute(
        select(batches.c.id).where(batches.c.reverses_batch_id == batch_id)
    ).scalar_one_or_none()
    if already is not None:
        raise ConflictError(
            f"posting batch {batch_id} is already reversed",
            field="batch_id",
            code="already_reversed",
        )
    lines = tuple(
        PostingLine(code, -amount_fen) for code, amount_fen in fetch_batch_lines(conn, batch_id)
    )
    return BatchDraft(
        business_key=business_key,
        kind=kind,
        as_of=as_of,
        lines=lines,
        credit_line_id=original.credit_line_id,
        events=_negated_events(conn, batch_id),
        reverses_batch_id=batch_id,
        customer_id=original.customer_id,
    )


def _negated_events(conn: Connection, batch_id: int) -> tuple[SettlementEventDraft, ...]:
    table = settlement_event_table
    return tuple(
        SettlementEventDraft(
            kind=row.kind,
            amount_fen=-int(row.amount_fen),
            partner_ref=row.partner_ref,
            counterparty_ref=row.counterparty_ref,
            product_code=row.product_code,
            product_version=row.product_version,
        )
        for row in conn.execute(
            select(table).where(table.c.batch_id == batch_id).order_by(table.c.id)
        )
    )


def post_batch(conn: Connection, draft: BatchDraft, accounts: AccountIdCache) -> int:
    """Post one batch; see `post_batches`."""
    return post_batches(conn, [draft], accounts)[0]


def post_batch_once(
    conn: Connection, draft: BatchDraft, accounts: AccountIdCache
) -> tuple[int, bool]:
    """Post a batch unless its business key was posted already: (batch id, created).

    For jobs that may run twice (end of day): a re-run posts nothing new. The same key
    with different lines, date or kind is a ConflictError, never silently ignored.
    """
    existing_id = fetch_batch_id(conn, draft.business_key)
    if existing_id is None:
        return post_batch(conn, draft, accounts), True
    batches = posting_batch_table
    header = conn.execute(
        select(batches.c.kind, batches.c.as_of).where(batches.c.id == existing_id)
    ).one()
    stored = sorted(fetch_batch_lines(conn, existing_id))
    wanted = sorted((line.account_code, line.amount_fen) for line in draft.lines)
    if (header.kind, header.as_of) != (draft.kind, draft.as_of) or stored != wanted:
        raise ConflictError(
            f"business key {draft.business_key} was posted with different content",
            field="business_key",
            code="business_key_reused",
        )
    return existing_id, False


def fetch_batch_lines(conn: Connection, batch_id: int) -> list[tuple[str, int]]:
    """(account code, signed amount) of every line of a batch, in posting order."""
    postings, accounts = posting_table, ledger_account_table
    return [
        (str(code), int(amount))
        for code, amount in conn.execute(
            select(accounts.c.code, postings.c.amount_fen)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.batch_id == batch_id)
            .order_by(postings.c.id)
        )
    ]


def reverse_batch(
    conn: Connection,
    batch_id: int,
    *,
    business_key: str,
    kind: str,
    as_of: date,
    accounts: AccountIdCache,
) -> int:
    """Post the exact reversal of batch `batch_id`; return the new batch id."""
    draft = build_reversal(conn, batch_id, business_key=business_key, kind=kind, as_of=as_of)
    return post_batch(conn, draft, accounts)
