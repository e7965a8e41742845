"""Due step: at the end of each bill's due date (of its grace days, for a product that
treats payments within them as on time), decide its interest-free treatment and make its
unpaid minimum past due (see `node_api.lending.bills`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType
from node_api.ledger.schema import ledger_account_table, posting_batch_table, posting_table
from node_api.ledger.settlement_events import EOD_BATCH_KINDS, EodStep
from node_api.ledger.sql import bulk_insert, in_values
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.bills import (
    BILLED_TYPES,
    PAID_TOWARD_BILL_TYPES,
    PAST_DUE_TYPES,
    CycleUse,
    DueOutcome,
    compute_due_outcome,
    compute_retro_interest,
)
from node_api.lending.eod.books import build_draft, post_drafts
from node_api.lending.eod.charges import (
    BillCharge,
    ChargeKind,
    insert_bill_charges,
)
from node_api.lending.eod.context import EodContext, LineFacts, load_facts
from node_api.lending.eod.state import update_line_states
from node_api.lending.eod.step import BatchResult, Step, get_ids, not_charged_off
from node_api.lending.installment_tables import installment_plan_table
from node_api.lending.interest import compute_daily_rate
from node_api.lending.purchase_tables import purchase_table

DUE_TYPES = (*BILLED_TYPES, *PAST_DUE_TYPES, AccountType.INTEREST_UNBILLED)


def _undecided(as_of: date, outcomes_of: Any = None) -> Any:
    """The bills due by `as_of` without an outcome: (source, condition). `outcomes_of`
    (a condition on `bill_outcome`, e.g. its lines) limits the outcomes read: without it
    PostgreSQL hashes every outcome ever recorded, once per batch."""
    bills, outcomes = bill_table, bill_outcome_table
    on = outcomes.c.bill_id == bills.c.id
    if outcomes_of is not None:
        on = on & outcomes_of
    return bills.outerjoin(outcomes, on), and_(
        outcomes.c.bill_id.is_(None), bills.c.due_date <= as_of
    )


def list_due_lines(conn: Connection, ctx: EodContext, as_of: date, after: int) -> list[int]:
    source, condition = _undecided(as_of)
    bills = bill_table
    return get_ids(
        conn,
        select(bills.c.credit_line_id)
        .select_from(source)
        .where(
            condition & (bills.c.credit_line_id > after) & not_charged_off(bills.c.credit_line_id)
        ),
    )


def fetch_paid_toward(conn: Connection, bill_ids: Sequence[int]) -> dict[int, int]:
    """Per bill: what non end-of-day postings took off the line's receivables (other than
    unbilled principal) after the bill date, up to and including its due date."""
    if not bill_ids:
        return {}
    bills, batches, postings, accounts = (
        bill_table, posting_batch_table, posting_table, ledger_account_table,
    )  # fmt: skip
    statement = (
        select(bills.c.id, -func.sum(postings.c.amount_fen))
        .select_from(
            bills.join(
                batches,
                (batches.c.credit_line_id == bills.c.credit_line_id)
                & (batches.c.as_of > bills.c.bill_date)
                & (batches.c.as_of <= bills.c.due_date),
            )
            .join(postings, postings.c.batch_id == batches.c.id)
            .join(accounts, accounts.c.id == postings.c.account_id)
        )
        .where(
            in_values(conn, bills.c.id, bill_ids)
            & batches.c.kind.not_in(EOD_BATCH_KINDS)
            & in_values(
                conn, accounts.c.account_type, [kind.value for kind in PAID_TOWARD_BILL_TYPES]
            )
        )
        .group_by(bills.c.id)
    )
    return {int(bill_id): int(paid) for bill_id, paid in conn.execute(statement)}


def fetch_cycle_uses(conn: Connection, bills: Sequence[Any]) -> dict[int, list[CycleUse]]:
    """Per bill: the uses posted in its cycle that are not in an installment plan."""
    uses, plans = purchase_table, installment_plan_table
    found: dict[int, list[CycleUse]] = {bill.id: [] for bill in bills}
    if not bills:
        return found
    windows: dict[int, list[Any]] = {}
    for bill in bills:
        windows.setdefault(bill.credit_line_id, []).append(bill)
    rows = conn.execute(
        select(uses.c.credit_line_id, uses.c.as_of, uses.c.amount_fen - uses.c.refunded_fen)
        .outerjoin(plans, (plans.c.purchase_id == uses.c.id) & (plans.c.status != "cancelled"))
        .where(
            in_values(conn, uses.c.credit_line_id, sorted(windows))
            & (uses.c.as_of >= min(bill.cycle_start for bill in bills))
            & (uses.c.as_of <= max(bill.bill_date for bill in bills))
            & plans.c.id.is_(None)
        )
    )
    for line_id, posted_on, amount_fen in rows:
        for bill in windows[int(line_id)]:
            if bill.cycle_start <= posted_on <= bill.bill_date:
                found[bill.id].append(CycleUse(Fen(int(amount_fen)), posted_on))
    return found


def run_due_batch(
    conn: Connection, ctx: EodContext, as_of: date, line_ids: Sequence[int]
) -> BatchResult:
    facts = load_facts(conn, ctx, line_ids, DUE_TYPES)
    source, condition = _undecided(
        as_of, in_values(conn, bill_outcome_table.c.credit_line_id, list(facts))
    )
    bills = conn.execute(
        select(bill_table)
        .select_from(source)
        .where(condition & in_values(conn, bill_table.c.credit_line_id, list(facts)))
        .order_by(bill_table.c.credit_line_id, bill_table.c.bill_date)
    ).all()
    bills = [bill for bill in bills if _decided_today(bill, facts[bill.credit_line_id], as_of)]
    paid = fetch_paid_toward(conn, [bill.id for bill in bills])
    for bill in bills:
        terms = facts[bill.credit_line_id].terms
        if terms.grace_payments_on_time and terms.grace_days:
            paid[bill.id] = paid.get(bill.id, 0) + _fetch_paid_in_grace(conn, bill, terms)
    converted = {
        int(bill_id)
        for bill_id in conn.execute(
            select(installment_plan_table.c.bill_id).where(
                in_values(conn, installment_plan_table.c.bill_id, [bill.id for bill in bills])
                & (installment_plan_table.c.status != "cancelled")
            )
        ).scalars()
    }
    balances = {line_id: item.balances for line_id, item in facts.items()}
    decisions = [
        _decide(bill, facts[bill.credit_line_id], balances, paid.get(bill.id, 0)) for bill in bills
    ]
    unpaid_bills = [bill for bill, d in zip(bills, decisions, strict=True) if not d.paid_in_full]
    uses = fetch_cycle_uses(conn, [b for b in unpaid_bills if b.id not in converted])
    drafts = []
    amount_fen = 0
    retro_interest: list[Fen] = []
    revolving: dict[int, dict[str, bool]] = {}
    for bill, decision in zip(bills, decisions, strict=True):
        terms = facts[bill.credit_line_id].terms
        retro_fen = Fen(0)
        if not decision.paid_in_full and terms.free_interest_days > 0 and bill.id in uses:
            rate = compute_daily_rate(
                terms.interest.method, terms.interest.rate, terms.interest.day_count
            )
            share = (1, 1)
            if terms.interest_on_unpaid_only:
                statement_fen = int(bill.statement_balance_fen)
                share = (max(statement_fen - decision.paid_fen, 0), statement_fen)
            retro_fen = compute_retro_interest(uses[bill.id], bill.due_date, rate, share)
        retro_interest.append(retro_fen)
        movement = dict(decision.movement)
        movement[AccountType.INTEREST_UNBILLED] = (
            movement.get(AccountType.INTEREST_UNBILLED, 0) + retro_fen
        )
        drafts.append(
            build_draft(
                as_of=as_of, step=EodStep.DUE, subject_id=bill.id,
                line=facts[bill.credit_line_id], movement=movement,
                node_fen={AccountType.INTEREST_INCOME: -retro_fen},
            )
        )  # fmt: skip
        amount_fen += decision.moved_to_past_due_fen + retro_fen
        if terms.free_interest_days > 0:
            revolving[bill.credit_line_id] = {"revolving": not decision.paid_in_full}
    _record(conn, as_of, bills, decisions, retro_interest)
    update_line_states(conn, as_of, revolving, ["revolving"])
    # Postings last: they lock the node's shared accounts until commit (see `parallel`).
    posted = post_drafts(conn, ctx, drafts)
    return BatchResult(len(facts), posted, amount_fen)


def _decided_today(bill: Any, facts: LineFacts, as_of: date) -> bool:
    """A bill is decided at the end of its due date, or of its grace days when the
    product treats payments within them as on time."""
    terms = facts.terms
    if terms.grace_payments_on_time:
        decided_on: date = bill.due_date + timedelta(days=terms.grace_days)
        return decided_on <= as_of
    return True


def _fetch_paid_in_grace(conn: Connection, bill: Any, terms: Any) -> int:
    """What non end-of-day postings took off the line's receivables (other than unbilled
    principal) in the grace days after the due date."""
    batches, postings, accounts = posting_batch_table, posting_table, ledger_account_table
    end = bill.due_date + timedelta(days=terms.grace_days)
    total = conn.execute(
        select(-func.sum(postings.c.amount_fen))
        .select_from(
            batches.join(postings, postings.c.batch_id == batches.c.id).join(
                accounts, accounts.c.id == postings.c.account_id
            )
        )
        .where(
            (batches.c.credit_line_id == bill.credit_line_id)
            & (batches.c.as_of > bill.due_date)
            & (batches.c.as_of <= end)
            & batches.c.kind.not_in(EOD_BATCH_KINDS)
            & in_values(
                conn, accounts.c.account_type, [kind.value for kind in PAID_TOWARD_BILL_TYPES]
            )
        )
    ).scalar()
    return int(total or 0)


def _decide(
    bill: Any, facts: LineFacts, balances: dict[int, dict[AccountType, int]], paid_fen: int
) -> DueOutcome:
    """The outcome of one bill; applies its movement to the line's running balances so a
    second bill of the same line (a catch-up) sees the first one's effect."""
    line_balances = balances[bill.credit_line_id]
    outcome = compute_due_outcome(
        statement_fen=int(bill.statement_balance_fen),
        minimum_fen=int(bill.minimum_payment_fen),
        paid_fen=paid_fen,
        balances=line_balances,
        order=facts.terms.allocation.order,
    )
    for kind, delta_fen in outcome.movement.items():
        line_balances[kind] = line_balances.get(kind, 0) + delta_fen
    return outcome


def _record(
    conn: Connection,
    as_of: date,
    bills: Sequence[Any],
    decisions: Sequence[DueOutcome],
    retro_interest: Sequence[Fen],
) -> None:
    if not bills:
        return
    bulk_insert(
        conn,
        bill_outcome_table,
        [
            {
                "bill_id": bill.id,
                "credit_line_id": bill.credit_line_id,
                "customer_id": bill.customer_id,
                "decided_on": as_of,
                "paid_fen": decision.paid_fen,
                "paid_in_full": decision.paid_in_full,
                "unpaid_minimum_fen": decision.unpaid_minimum_fen,
                "moved_to_past_due_fen": decision.moved_to_past_due_fen,
                "retro_interest_fen": retro_fen,
            }
            for bill, decision, retro_fen in zip(bills, decisions, retro_interest, strict=True)
        ],
    )
    charges = [
        BillCharge(
            bill.id,
            bill.credit_line_id,
            bill.customer_id,
            as_of,
            ChargeKind.PAST_DUE,
            decision.moved_to_past_due_fen,
            decision.movement.get(AccountType.PRINCIPAL_PAST_DUE, 0),
        )
        for bill, decision in zip(bills, decisions, strict=True)
        if decision.moved_to_past_due_fen > 0
    ]
    insert_bill_charges(conn, charges)


DUE_STEP = Step(EodStep.DUE, list_due_lines, run_due_batch)
