"""Re-ageing after a returned payment: the bills a bounced payment had settled owe again,
with everything end of day would have charged had the payment never arrived.

A payment dated P counted toward every bill whose window (bill date, due date] holds P.
When it bounces on R, after its allocation is undone (`repayments.reverse_repayment`),
each such bill whose due date was already decided (due date < R) is decided again,
oldest first, with what was paid toward it less what the bounced payment paid
(`compute_due_outcome` on the line's balances as they now stand):
- the unpaid minimum moves from billed to past due (a `past_due` bill charge, so the
  next end of day counts days past due from the bill's own due date);
- a bill no longer paid in full loses its interest-free period: the interest from each
  of its cycle's uses' posting dates through the due date (`compute_retro_interest`),
  and the line is revolving again;
- revolving interest on the principal the payment had repaid, for every day closed after
  the due date (due date + 1 .. R − 1), at the product's rate, rounded half-even once;
- the late fee, if its date (due date + grace + 1) is already closed and the bill has
  none;
- penalty interest on the principal and interest made past due, for every closed day
  past due once past grace (the whole run, as `compute_penalty_interest_days` sums to),
  rounded half-even once;
and the line's days past due and bucket are set from the bill's due date at once.
Everything is posted on R in one batch per bill (kind `reage`), attributed to the bill
in `bill_charge`, and its outcome row records the new decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.kernel.money import FEN_ZERO, PPM_DENOMINATOR, Fen, div_half_even
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.postings import BatchDraft, PostingLine, fetch_batch_lines, post_batch
from node_api.ledger.settlement_events import BatchKind
from node_api.lending.bill_tables import bill_charge_table, bill_outcome_table, bill_table
from node_api.lending.billing_rules import (
    compute_days_past_due,
    compute_delinquency_bucket,
    compute_late_fee_date,
)
from node_api.lending.bills import (
    PAID_TOWARD_BILL_TYPES,
    PAST_DUE_TYPES,
    add_movement,
    compute_bill_late_fee,
    compute_due_outcome,
    compute_retro_interest,
)
from node_api.lending.core.books import LineBook
from node_api.lending.core.context import LendingCaches
from node_api.lending.eod.charges import BillCharge, ChargeKind, insert_bill_charges
from node_api.lending.eod.state import update_line_states
from node_api.lending.eod.step_due import fetch_cycle_uses
from node_api.lending.installment_tables import installment_plan_table
from node_api.lending.interest import compute_daily_rate
from node_api.lending.lines import LockedLine
from node_api.lending.products import ProductTerms

RESTORED_PRINCIPAL_TYPES = (AccountType.PRINCIPAL_BILLED, AccountType.PRINCIPAL_PAST_DUE)


@dataclass(frozen=True, slots=True)
class Reaged:
    """What re-deciding one bill charged (fen), for the caller's view and the tests."""

    bill_id: int
    moved_to_past_due_fen: Fen
    retro_interest_fen: Fen
    interest_fen: Fen
    late_fee_fen: Fen
    penalty_fen: Fen


def compute_paid_by_batch(conn: Connection, batch_id: int, line_id: int) -> tuple[Fen, Fen]:
    """(paid toward a bill, principal repaid from billed or past due) by one allocation."""
    codes = {line_account_code(line_id, kind): kind for kind in PAID_TOWARD_BILL_TYPES}
    paid_fen = principal_fen = 0
    for code, amount_fen in fetch_batch_lines(conn, batch_id):
        kind = codes.get(code)
        if kind is None:
            continue
        paid_fen -= amount_fen
        if kind in RESTORED_PRINCIPAL_TYPES:
            principal_fen -= amount_fen
    return Fen(paid_fen), Fen(principal_fen)


def reage_after_reversal(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    terms: ProductTerms,
    *,
    paid_on: date,
    reversed_on: date,
    allocation_batch_id: int,
) -> list[Reaged]:
    """Decide again every bill the bounced payment had settled (module docstring)."""
    line_id = line.credit_line_id
    bills, outcomes = bill_table, bill_outcome_table
    rows = conn.execute(
        select(bills, outcomes.c.paid_fen, outcomes.c.paid_in_full)
        .join(outcomes, outcomes.c.bill_id == bills.c.id)
        .where(
            (bills.c.credit_line_id == line_id)
            & (bills.c.bill_date < paid_on)
            & (bills.c.due_date >= paid_on)
            & (bills.c.due_date < reversed_on)
        )
        .order_by(bills.c.due_date, bills.c.id)
    ).all()
    if not rows:
        return []
    bounced_fen, restored_principal_fen = compute_paid_by_batch(conn, allocation_batch_id, line_id)
    converted = _converted_bills(conn, [row.id for row in rows])
    uses = fetch_cycle_uses(conn, [row for row in rows if row.id not in converted])
    found = []
    for row in rows:
        result = _reage_bill(
            conn, caches, line, book, terms, row, reversed_on, bounced_fen, restored_principal_fen,
            uses.get(row.id, []),
        )  # fmt: skip
        if result is not None:
            found.append(result)
    return found


def _converted_bills(conn: Connection, bill_ids: list[int]) -> set[int]:
    plans = installment_plan_table
    return {
        int(bill_id)
        for bill_id in conn.execute(
            select(plans.c.bill_id).where(
                plans.c.bill_id.in_(bill_ids) & (plans.c.status != "cancelled")
            )
        ).scalars()
    }


def _reage_bill(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    terms: ProductTerms,
    bill: Any,
    reversed_on: date,
    bounced_fen: Fen,
    restored_principal_fen: Fen,
    uses: list[Any],
) -> Reaged | None:
    line_id = int(bill.credit_line_id)
    last_closed = reversed_on - timedelta(days=1)
    balances = {kind: book.normal_fen(kind) for kind in AccountType if _is_line_kind(kind)}
    paid_fen = Fen(max(int(bill.paid_fen) - bounced_fen, 0))
    outcome = compute_due_outcome(
        statement_fen=int(bill.statement_balance_fen),
        minimum_fen=int(bill.minimum_payment_fen),
        paid_fen=paid_fen,
        balances=balances,
        order=terms.allocation.order,
    )
    movement = dict(outcome.movement)
    rate = compute_daily_rate(terms.interest.method, terms.interest.rate, terms.interest.day_count)
    retro_fen = FEN_ZERO
    lost_grace = bool(bill.paid_in_full) and not outcome.paid_in_full
    if lost_grace and terms.free_interest_days > 0:
        retro_fen = compute_retro_interest(uses, bill.due_date, rate)
    interest_days = max((last_closed - bill.due_date).days, 0)
    interest_fen = Fen(
        div_half_even(restored_principal_fen * interest_days * rate.numerator, rate.denominator)
    )
    add_movement(movement, AccountType.INTEREST_UNBILLED, retro_fen + interest_fen)
    late_fee_fen = FEN_ZERO
    late_fee_date = compute_late_fee_date(bill.due_date, terms.grace_days)
    if outcome.moved_to_past_due_fen > 0 and late_fee_date <= last_closed:
        past_due_fen = sum(balances[kind] + movement.get(kind, 0) for kind in PAST_DUE_TYPES)
        if not _has_late_fee(conn, int(bill.id)):
            late_fee_fen = compute_bill_late_fee(terms, outcome.moved_to_past_due_fen, past_due_fen)
    add_movement(movement, AccountType.FEE_PAST_DUE, late_fee_fen)
    days_past_due = compute_days_past_due(bill.due_date, last_closed)
    penalty_base_fen = movement.get(AccountType.PRINCIPAL_PAST_DUE, 0) + movement.get(
        AccountType.INTEREST_PAST_DUE, 0
    )
    penalty_days = days_past_due if days_past_due > terms.grace_days else 0
    penalty_fen = Fen(
        div_half_even(
            penalty_base_fen * penalty_days * terms.penalty_rate_ppm_per_day, PPM_DENOMINATOR
        )
    )
    add_movement(movement, AccountType.PENALTY_PAST_DUE, penalty_fen)
    if not movement:
        return None
    lines = [
        PostingLine(line_account_code(line_id, kind), amount_fen)
        for kind, amount_fen in sorted(movement.items())
    ]
    income = {
        AccountType.INTEREST_INCOME: -(retro_fen + interest_fen),
        AccountType.FEE_INCOME: -late_fee_fen,
        AccountType.PENALTY_INCOME: -penalty_fen,
    }
    lines += [
        PostingLine(node_account_code(kind), fen) for kind, fen in sorted(income.items()) if fen
    ]
    draft = BatchDraft(
        business_key=f"reage:{bill.id}:{reversed_on.isoformat()}",
        kind=BatchKind.REAGE,
        as_of=reversed_on,
        lines=tuple(lines),
        credit_line_id=line_id,
        customer_id=line.customer_ref,
    )
    post_batch(conn, draft, caches.accounts)
    book.apply(draft.lines)
    moved_principal_fen = outcome.movement.get(AccountType.PRINCIPAL_PAST_DUE, 0)
    charges = [
        BillCharge(int(bill.id), line_id, line.customer_ref, day, kind, fen, principal_fen)
        for kind, day, fen, principal_fen in (
            (ChargeKind.PAST_DUE, reversed_on, outcome.moved_to_past_due_fen, moved_principal_fen),
            (ChargeKind.LATE_FEE, late_fee_date, late_fee_fen, 0),
            (ChargeKind.PENALTY, last_closed, penalty_fen, 0),
        )
        if fen > 0
    ]
    insert_bill_charges(conn, charges)
    _record_outcome(conn, bill, outcome.paid_in_full, paid_fen, outcome, retro_fen)
    if outcome.moved_to_past_due_fen > 0 or lost_grace:
        state: dict[str, bool | int | str] = {
            "revolving": lost_grace or terms.free_interest_days == 0
        }
        columns = ["revolving"]
        if outcome.moved_to_past_due_fen > 0:
            bucket = compute_delinquency_bucket(days_past_due, terms.delinquency.thresholds)
            state |= {"days_past_due": days_past_due, "bucket": bucket.value}
            columns += ["days_past_due", "bucket"]
        update_line_states(conn, last_closed, {line_id: state}, columns)
    return Reaged(
        int(bill.id), outcome.moved_to_past_due_fen, retro_fen, interest_fen, late_fee_fen,
        penalty_fen,
    )  # fmt: skip


def _is_line_kind(kind: AccountType) -> bool:
    try:
        line_account_code(0, kind)
    except ValueError:
        return False
    return True


def _has_late_fee(conn: Connection, bill_id: int) -> bool:
    charges = bill_charge_table
    return (
        conn.execute(
            select(charges.c.id).where(
                (charges.c.bill_id == bill_id) & (charges.c.kind == ChargeKind.LATE_FEE.value)
            )
        ).first()
        is not None
    )


def _record_outcome(
    conn: Connection, bill: Any, paid_in_full: bool, paid_fen: Fen, outcome: Any, retro_fen: Fen
) -> None:
    table = bill_outcome_table
    conn.execute(
        update(table)
        .where(table.c.bill_id == bill.id)
        .values(
            paid_fen=paid_fen,
            paid_in_full=paid_in_full,
            unpaid_minimum_fen=outcome.unpaid_minimum_fen,
            moved_to_past_due_fen=table.c.moved_to_past_due_fen + outcome.moved_to_past_due_fen,
            retro_interest_fen=table.c.retro_interest_fen + retro_fen,
        )
    )
