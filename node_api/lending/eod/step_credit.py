"""Credit step (the first after funding): apply each line's customer credit to what is due
(see `node_api.lending.customer_credit`), so a due date decided later the same day
counts it as paid and nothing the credit covers goes past due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table
from node_api.ledger.settlement_events import EodStep
from node_api.lending.core.books import fetch_line_books
from node_api.lending.customer_credit import DUE_TYPES, apply_customer_credit
from node_api.lending.eod.books import fetch_posted_subjects
from node_api.lending.eod.context import EodContext, get_business_key, load_facts
from node_api.lending.eod.step import BatchResult, Step, get_ids
from node_api.lending.lines import fetch_lines, write_usage

CREDIT_TYPES = (*DUE_TYPES, AccountType.CUSTOMER_CREDIT)


def list_credit_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    """Lines holding customer credit (the credit account is credit-normal: negative)."""
    accounts = ledger_account_table
    return get_ids(
        conn,
        select(accounts.c.credit_line_id).where(
            (accounts.c.account_type == AccountType.CUSTOMER_CREDIT.value)
            & (accounts.c.balance_fen < 0)
            & (accounts.c.credit_line_id > after)
        ),
    )


def run_credit_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, CREDIT_TYPES)
    wanted = [
        line_id
        for line_id, item in facts.items()
        if item.balances[AccountType.CUSTOMER_CREDIT] > 0
        and any(item.balances[kind] > 0 for kind in DUE_TYPES)
    ]
    done = fetch_posted_subjects(conn, as_of, EodStep.CREDIT, wanted)
    todo = [line_id for line_id in wanted if line_id not in done]
    lines = fetch_lines(conn, todo, lock=True)
    books = fetch_line_books(conn, todo, ctx.caches.accounts)
    applied_fen = 0
    posted = 0
    for line_id in todo:
        key = get_business_key(as_of, EodStep.CREDIT, line_id)
        applied = apply_customer_credit(
            conn, ctx.caches, lines[line_id], books[line_id], as_of, key
        )
        applied_fen += sum(item.amount_fen for item in applied)
        posted += 1 if applied else 0
        write_usage(conn, lines[line_id].nodes)
    return BatchResult(len(facts), posted, applied_fen)


CREDIT_STEP = Step(EodStep.CREDIT, list_credit_lines, run_credit_batch)
