"""Turning a step's movements into posting batches, and the kinds those batches carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import (
    AccountType,
    ensure_accounts,
    line_account_code,
    line_account_specs,
    node_account_code,
    node_account_specs,
)
from node_api.ledger.postings import BatchDraft, PostingLine, post_batches
from node_api.ledger.schema import posting_batch_table
from node_api.ledger.sql import in_values
from node_api.lending.bills import Movement
from node_api.lending.eod.context import EodContext, LineFacts, get_business_key


def build_draft(
    *,
    as_of: date,
    step: str,
    subject_id: int,
    line: LineFacts,
    movement: Movement,
    node_fen: Mapping[AccountType, int] | None = None,
) -> BatchDraft | None:
    """A batch of a line's movement plus node-account lines, carrying the line and its
    customer; None when nothing moves."""
    credit_line_id = line.credit_line_id
    lines = [
        PostingLine(line_account_code(credit_line_id, kind), amount_fen)
        for kind, amount_fen in sorted(movement.items())
        if amount_fen
    ]
    lines += [
        PostingLine(node_account_code(kind), amount_fen)
        for kind, amount_fen in sorted((node_fen or {}).items())
        if amount_fen
    ]
    if not lines:
        return None
    return BatchDraft(
        business_key=get_business_key(as_of, step, subject_id),
        kind=f"eod_{step}",
        as_of=as_of,
        lines=tuple(lines),
        credit_line_id=credit_line_id,
        customer_id=line.customer_id,
    )


def charge_draft(
    *, as_of: date, step: str, subject_id: int, line: LineFacts,
    receivable: AccountType, income: AccountType, amount_fen: int,
) -> BatchDraft | None:  # fmt: skip
    """A charge: debit a line's receivable, credit the node's income."""
    if amount_fen <= 0:
        return None
    return build_draft(
        as_of=as_of, step=step, subject_id=subject_id, line=line,
        movement={receivable: amount_fen}, node_fen={income: -amount_fen},
    )  # fmt: skip


def suspended_draft(
    *, as_of: date, step: str, subject_id: int, line: LineFacts, amount_fen: int
) -> BatchDraft | None:
    """Interest or penalty of a non-accrual line, off balance sheet: the line's
    `interest_suspended` memo against the node's `suspended_interest_contra`."""
    if amount_fen <= 0:
        return None
    return build_draft(
        as_of=as_of, step=step, subject_id=subject_id, line=line,
        movement={AccountType.INTEREST_SUSPENDED: amount_fen},
        node_fen={AccountType.SUSPENDED_INTEREST_CONTRA: -amount_fen},
    )  # fmt: skip


def ensure_suspense_accounts(conn: Connection, lines: Sequence[LineFacts]) -> None:
    """The memo accounts of lines opened before non-accrual existed, and the node's."""
    if lines:
        specs = [
            spec
            for line in lines
            for spec in line_account_specs(line.credit_line_id, line.customer_id)
        ]
        ensure_accounts(conn, [*specs, *node_account_specs()])


def post_drafts(conn: Connection, ctx: EodContext, drafts: Sequence[BatchDraft | None]) -> int:
    """Post the batches in one go through the ledger (checks, locks and floors included;
    set-based statements on PostgreSQL); return how many were posted."""
    real = [draft for draft in drafts if draft is not None]
    post_batches(conn, real, ctx.caches.accounts)
    return len(real)


def fetch_posted_subjects(
    conn: Connection, as_of: date, step: str, subject_ids: Sequence[int]
) -> set[int]:
    """The subjects that already have this step's batch for this date (a re-run after the
    checkpoints were lost must not post them twice)."""
    keys = {get_business_key(as_of, step, subject_id): subject_id for subject_id in subject_ids}
    if not keys:
        return set()
    table = posting_batch_table
    found = conn.execute(
        select(table.c.business_key).where(in_values(conn, table.c.business_key, list(keys)))
    )
    return {keys[str(key)] for key in found.scalars()}
