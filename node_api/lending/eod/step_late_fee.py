"""Late-fee step: on a bill's late-fee date (due date + grace days + 1), charge the
product's late fee if part of what the bill made past due is still unpaid."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import AccountType
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import in_values
from node_api.lending.bill_tables import bill_charge_table, bill_outcome_table, bill_table
from node_api.lending.billing_rules import compute_late_fee_date
from node_api.lending.bills import PAST_DUE_TYPES, compute_bill_late_fee, sum_balances
from node_api.lending.eod.books import charge_draft, post_drafts
from node_api.lending.eod.charges import (
    BillCharge,
    ChargeKind,
    insert_bill_charges,
    sum_charges_fen,
)
from node_api.lending.eod.context import EodContext, load_facts
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off

GRACE_DAYS_MAX = 30


def _candidates(as_of: date) -> Select[Any]:
    bills, outcomes, charges = bill_table, bill_outcome_table, bill_charge_table
    already = exists(
        select(charges.c.id).where(
            (charges.c.bill_id == bills.c.id) & (charges.c.kind == "late_fee")
        )
    )
    return (
        select(
            bills.c.id, bills.c.credit_line_id, bills.c.due_date, outcomes.c.moved_to_past_due_fen
        )
        .join(outcomes, outcomes.c.bill_id == bills.c.id)
        .where(
            (outcomes.c.moved_to_past_due_fen > 0)
            & (bills.c.due_date < as_of)
            & (bills.c.due_date >= as_of - timedelta(days=GRACE_DAYS_MAX + 1))
            & ~already
        )
    )


def list_late_fee_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    query = _candidates(as_of).subquery()
    return get_ids(
        conn,
        select(query.c.credit_line_id).where(
            (query.c.credit_line_id > after) & not_charged_off(query.c.credit_line_id)
        ),
    )


def run_late_fee_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, PAST_DUE_TYPES)
    query = _candidates(as_of).where(in_values(conn, bill_table.c.credit_line_id, list(facts)))
    drafts = []
    charges: list[BillCharge] = []
    for bill_id, line_id, due_date, moved_fen in conn.execute(query.order_by(bill_table.c.id)):
        item = facts[int(line_id)]
        if compute_late_fee_date(due_date, item.terms.grace_days) != as_of:
            continue
        past_due_fen = sum_balances(item.balances, PAST_DUE_TYPES)
        fee_fen = compute_bill_late_fee(item.terms, int(moved_fen), past_due_fen)
        if fee_fen <= 0:
            continue
        drafts.append(
            charge_draft(
                as_of=as_of, step=EodStep.LATE_FEE, subject_id=int(bill_id), line=item,
                receivable=AccountType.FEE_PAST_DUE,
                income=AccountType.FEE_INCOME, amount_fen=fee_fen,
            )
        )  # fmt: skip
        charges.append(
            BillCharge(
                int(bill_id), int(line_id), item.customer_id, as_of, ChargeKind.LATE_FEE, fee_fen
            )
        )
    insert_bill_charges(conn, charges)
    # Postings last: they lock the node's shared accounts until commit (see `parallel`).
    posted = post_drafts(conn, ctx, drafts)
    return BatchResult(len(facts), posted, sum_charges_fen(charges))


LATE_FEE_STEP = Step(EodStep.LATE_FEE, list_late_fee_lines, run_late_fee_batch)
