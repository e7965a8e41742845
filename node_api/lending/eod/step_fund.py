"""Funding step (the first of the day): the funders' shares of the day's uses.

A purchase or cash drawdown posts its principal and what the lender owes the merchant
(or the customer), not the funding partners' shares of it: the group-committed hot path
would otherwise write two more postings, two more settlement events and two more account
updates for every use (two funders), about a third of what it writes. This step brings
every funding payable of each line used since the last end of day to its share of the
product's open principal (`entries.funding_adjustment`, largest remainder), in one
batch a line (`eod:<date>:fund:<line>`, with a `funding_share` event per partner whose
share moved), before any other step reads a payable.

The shares a day's uses add up to are those of the day's total: each partner's target
is recomputed from the open principal, so the sum of per-use changes and the one change
to the day's target are equal (the split of each total is exact; the changes telescope).
A repayment, refund or charge-off during the day sets the payables to target in its own
batch (counting that day's uses so far), so this step then has nothing left to post for
that line. Settlement closes a date only after its end of day, so a date's cycle carries
the shares of that date's uses.

Candidates are the lines with a use dated from `backdate_window_days + 1` days before
the date through the date: a use may be dated back that far (the node's policy), and a
batch that read the business date just before end of day moved it may commit after this
step listed its lines; the next day's run finds it. Each candidate is re-read under its
line's lock; a line already on target posts nothing, and a line that has its batch of
the date already (a re-run after a use dated back into the date) is left to the next
day's run, so a re-run never posts a date's batch twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.ledger.postings import BatchDraft, post_batches
from node_api.ledger.schema import posting_batch_table
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import begin_write
from node_api.lending.core.books import fetch_line_books
from node_api.lending.core.decide import UseKind
from node_api.lending.core.entries import funding_adjustment
from node_api.lending.eod.books import fetch_posted_subjects
from node_api.lending.eod.context import EodContext, get_business_key
from node_api.lending.eod.step import BatchResult, Step, get_ids
from node_api.lending.lines import fetch_lines

USE_BATCH_KINDS = tuple(kind.value for kind in UseKind)
"""The posting batch kinds of uses (`booking.compute_drafts`)."""


def list_funding_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    """Lines with a use dated in the look-back window (module docstring)."""
    batches = posting_batch_table
    earliest = as_of - timedelta(days=ctx.caches.policy.backdate_window_days + 1)
    return get_ids(
        conn,
        select(batches.c.credit_line_id).where(
            batches.c.kind.in_(USE_BATCH_KINDS)
            & batches.c.as_of.between(earliest, as_of)
            & (batches.c.credit_line_id > after)
        ),
    )


def run_funding_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    """Set the funding payables of these lines to target, one batch a line that moves."""
    begin_write(conn)
    lines = fetch_lines(conn, line_ids, lock=True)
    books = fetch_line_books(conn, sorted(lines), ctx.caches.accounts)
    drafts: list[BatchDraft] = []
    shares_fen: dict[str, int] = {}
    for line_id, line in sorted(lines.items()):
        payable_lines, events = funding_adjustment(
            books[line_id],
            line.product_nodes(),
            lambda node: ctx.caches.terms_of(conn, node),
            [],
        )
        if not payable_lines:
            continue
        key = get_business_key(as_of, EodStep.FUND, line_id)
        shares_fen[key] = sum(event.amount_fen for event in events)
        drafts.append(
            BatchDraft(
                business_key=key,
                kind=f"eod_{EodStep.FUND}",
                as_of=as_of,
                lines=tuple(payable_lines),
                credit_line_id=line_id,
                customer_id=line.customer_ref,
                events=tuple(events),
            )
        )
    done = fetch_posted_subjects(conn, as_of, EodStep.FUND, [d.credit_line_id or 0 for d in drafts])
    drafts = [draft for draft in drafts if draft.credit_line_id not in done]
    post_batches(conn, drafts, ctx.caches.accounts)
    return BatchResult(len(lines), len(drafts), sum(shares_fen[d.business_key] for d in drafts))


FUND_STEP = Step(EodStep.FUND, list_funding_lines, run_funding_batch)
