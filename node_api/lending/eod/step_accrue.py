"""Accrual step: one day of revolving interest, posted as unbilled interest.

Which principal bears interest on day D:
- a product without an interest-free period (`free_interest_days` = 0): all of the line's
  principal except installment plans' principal, unbilled or billed and not yet due
  (plans carry their own price);
- otherwise only a revolving line (one that missed paying a bill in full) accrues, on its
  billed and past-due principal, except, while the latest bill is not yet due, its
  installments' principal (priced by their plan) and its new purchases (their interest
  from each posting date is charged at its due date if it is missed, so accruing them
  daily would charge them twice). Payments are taken to reduce the older, carried
  principal first.
A non-accrual line (see `step_classify`) accrues the same interest off balance sheet
(its `interest_suspended` memo), not as a receivable and income.
Interest = principal × daily rate × 1 day, carried exactly per line
(`compute_carried_interest`): each day posts the change of the line's running interest
total rounded half-even, so N days post the N days' exact interest rounded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from node_api.ledger.accounts import PRINCIPAL_ACCOUNT_TYPES, AccountType
from node_api.ledger.schema import limit_node_table, product_version_table
from node_api.ledger.settlement_events import EodStep
from node_api.ledger.sql import in_values
from node_api.lending.bill_tables import bill_table
from node_api.lending.eod.books import (
    charge_draft,
    ensure_suspense_accounts,
    fetch_posted_subjects,
    post_drafts,
    suspended_draft,
)
from node_api.lending.eod.carry import AccrualComponent, fetch_carries, write_carries
from node_api.lending.eod.context import EodContext, LineFacts, load_facts
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off
from node_api.lending.eod.tables import line_delinquency_table
from node_api.lending.installment_store import fetch_plan_unbilled_principal
from node_api.lending.interest import AccrualCarry, compute_carried_interest, compute_daily_rate
from node_api.lending.lines import credit_line_table

ACCRUAL_TYPES = (*PRINCIPAL_ACCOUNT_TYPES, AccountType.INTEREST_UNBILLED)


def fetch_no_free_period_products(conn: Connection, ctx: EodContext) -> list[tuple[str, int]]:
    """(code, version) of every registered product without an interest-free period."""
    table = product_version_table
    found = []
    for code, version in conn.execute(select(table.c.product_code, table.c.version)):
        if ctx.caches.products.get(conn, str(code), int(version)).free_interest_days == 0:
            found.append((str(code), int(version)))
    return found


def list_accrual_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    state, lines, nodes = line_delinquency_table, credit_line_table, limit_node_table
    revolving = get_ids(
        conn,
        select(state.c.credit_line_id)
        .join(lines, lines.c.id == state.c.credit_line_id)
        .where(
            state.c.revolving
            & state.c.charged_off_on.is_(None)
            & (lines.c.status != "closed")
            & (state.c.credit_line_id > after)
        ),
    )
    products = fetch_no_free_period_products(conn, ctx)
    if not products:
        return revolving
    always = get_ids(
        conn,
        select(nodes.c.credit_line_id)
        .join(lines, lines.c.id == nodes.c.credit_line_id)
        .where(
            or_(
                *(
                    and_(nodes.c.product_code == c, nodes.c.product_version == v)
                    for c, v in products
                )
            )
            & (lines.c.status != "closed")
            & (nodes.c.credit_line_id > after)
            & not_charged_off(nodes.c.credit_line_id)
        ),
    )
    return sorted(set(revolving) | set(always))


def fetch_latest_bills(conn: Connection, line_ids: Sequence[int]) -> dict[int, Any]:
    """Each line's most recent bill (lines never billed are absent)."""
    bills = bill_table
    latest = (
        select(bills.c.credit_line_id, func.max(bills.c.bill_date).label("bill_date"))
        .where(in_values(conn, bills.c.credit_line_id, line_ids))
        .group_by(bills.c.credit_line_id)
        .subquery()
    )
    rows = conn.execute(
        select(bills).join(
            latest,
            (latest.c.credit_line_id == bills.c.credit_line_id)
            & (latest.c.bill_date == bills.c.bill_date),
        )
    )
    return {int(row.credit_line_id): row for row in rows}


def compute_interest_bearing_fen(
    facts: LineFacts, revolving: bool, latest_bill: Any, plan_unbilled_fen: int, as_of: date
) -> int:
    """The principal that bears revolving interest on `as_of` (see the module docstring)."""
    balances = facts.balances
    billed_fen = balances[AccountType.PRINCIPAL_BILLED] + balances[AccountType.PRINCIPAL_PAST_DUE]
    free_period = facts.terms.free_interest_days > 0
    protected_fen = 0
    if latest_bill is not None and latest_bill.due_date >= as_of:
        # Installments billed and not yet due carry their own price; new purchases of an
        # interest-free bill are charged from their posting dates if the bill is missed.
        new_fen = int(latest_bill.new_principal_fen) if free_period else 0
        protected_fen = min(new_fen + int(latest_bill.installment_principal_fen), billed_fen)
    if not free_period:
        unbilled_fen = balances[AccountType.PRINCIPAL_UNBILLED] - plan_unbilled_fen
        return billed_fen - protected_fen + max(unbilled_fen, 0)
    if not revolving:
        return 0
    return billed_fen - protected_fen


def run_accrual_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, ACCRUAL_TYPES)
    ids = list(facts)
    state = line_delinquency_table
    revolving: set[int] = set()
    suspended: set[int] = set()
    for line_id, is_revolving, non_accrual_since in conn.execute(
        select(state.c.credit_line_id, state.c.revolving, state.c.non_accrual_since).where(
            in_values(conn, state.c.credit_line_id, ids) & state.c.charged_off_on.is_(None)
        )
    ):
        if is_revolving:
            revolving.add(int(line_id))
        if non_accrual_since is not None:
            suspended.add(int(line_id))
    latest = fetch_latest_bills(conn, ids)
    planned = fetch_plan_unbilled_principal(conn, ids)
    posted = fetch_posted_subjects(conn, as_of, EodStep.ACCRUE, ids)
    stored = fetch_carries(conn, AccrualComponent.INTEREST, ids)
    carries: dict[int, AccrualCarry] = {}
    drafts = []
    total_fen = 0
    for line_id, item in facts.items():
        previous = stored.get(line_id)
        if line_id in posted or (previous is not None and previous.as_of == as_of):
            continue
        base_fen = compute_interest_bearing_fen(
            item, line_id in revolving, latest.get(line_id), planned.get(line_id, 0), as_of
        )
        if base_fen <= 0:
            continue
        interest = item.terms.interest
        rate = compute_daily_rate(interest.method, interest.rate, interest.day_count)
        interest_fen, carries[line_id] = compute_carried_interest(
            None if previous is None else previous.carry, base_fen, rate, 1
        )
        if line_id in suspended:
            drafts.append(
                suspended_draft(
                    as_of=as_of, step=EodStep.ACCRUE, subject_id=line_id, line=item,
                    amount_fen=interest_fen,
                )
            )  # fmt: skip
            continue
        total_fen += interest_fen
        drafts.append(
            charge_draft(
                as_of=as_of, step=EodStep.ACCRUE, subject_id=line_id, line=item,
                receivable=AccountType.INTEREST_UNBILLED, income=AccountType.INTEREST_INCOME,
                amount_fen=interest_fen,
            )
        )  # fmt: skip
    ensure_suspense_accounts(conn, [facts[line_id] for line_id in sorted(suspended)])
    write_carries(conn, AccrualComponent.INTEREST, as_of, carries, stored, facts)
    return BatchResult(len(facts), post_drafts(conn, ctx, drafts), total_fen)


ACCRUE_STEP = Step(EodStep.ACCRUE, list_accrual_lines, run_accrual_batch)
