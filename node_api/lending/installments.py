"""Installment plans: convert one purchase, or a whole bill, into 3–24 monthly
installments under the product's pricing; end a plan early by full repayment or by
cancellation. A plan is booked only within the node's cost cap, on its real due dates
(`check_plan_cost`, see `node_api.lending.products.cost_cap`).

Amounts come from `compute_amortization` (annuity, equal principal or flat monthly fee;
principal parts sum exactly to the financed amount, see `node_api.lending.schedules`
for which installment takes the rounding remainder). Installment k is billed on the k-th
bill date of the line after the plan starts and is due on that bill's due date.

Books: a plan's principal stays in the line's unbilled principal until each installment
is billed (end of day moves that installment's principal to billed and charges its
interest and fee). Converting a purchase of the open cycle moves nothing; converting a
bill moves the bill's revolving principal back from billed to unbilled.

Early full repayment uses `compute_early_repayment_quote` on the plan's schedule as stored
(after any re-amortization), where
an installment counts as "due" on its bill date (the day it leaves the plan): the
principal not yet billed, interest accrued on it since the last bill date (capped at the
next installment's interest) and the early repayment fee are billed at once, the plan
ends, and the payment of the quote is taken like any repayment (the product's
waterfall). Cancellation, within the product's cancellation days and before the first
installment is billed, ends the plan with no interest or fee: a purchase's principal
becomes revolving again and a bill's goes back on the bill.

Any other way of paying a plan's future installments early (what a payment has left
over) applies the same early-repayment terms, and a partial prepayment or a partial
refund re-amortizes the installments left (`node_api.lending.plan_prepayment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import BatchDraft, PostingLine, post_batch
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.billing_rules import compute_bill_date_on_or_after, compute_next_bill_date
from node_api.lending.core.books import fetch_line_books
from node_api.lending.core.context import LendingCaches
from node_api.lending.installment_store import (
    InstallmentStatus,
    PlanDraft,
    PlanSource,
    PlanStatus,
    PlanView,
    compute_installment_rows,
    compute_stored_schedule,
    fetch_live_installments,
    fetch_plan,
    fetch_plan_row,
    fetch_plan_unbilled_principal,
    insert_plan,
)
from node_api.lending.installment_tables import installment_plan_table, installment_table
from node_api.lending.lines import LineStatus, LockedLine, lock_line
from node_api.lending.products.cost_cap import (
    check_obligation_cost,
    check_product_rates,
    compute_plan_flows,
)
from node_api.lending.purchases import fetch_use
from node_api.lending.repayments import Repayment, repay
from node_api.lending.schedules import (
    PayoffKind,
    PayoffQuote,
    compute_cancellation_quote,
    compute_early_repayment_quote,
)


class PlanKind:
    """Posting-batch kinds written by installment plans."""

    CONVERSION = "installment_conversion"
    PAYOFF = "installment_payoff"
    CANCELLATION = "installment_cancellation"


def _latest_bill(conn: Connection, line_id: int) -> Any:
    bills = bill_table
    return conn.execute(
        select(bills)
        .where(bills.c.credit_line_id == line_id)
        .order_by(bills.c.bill_date.desc())
        .limit(1)
    ).one_or_none()


def _unbilled_revolving_fen(conn: Connection, caches: LendingCaches, line_id: int) -> Fen:
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    planned_fen = fetch_plan_unbilled_principal(conn, [line_id]).get(line_id, 0)
    return Fen(book.normal_fen(AccountType.PRINCIPAL_UNBILLED) - planned_fen)


def _open_line(
    conn: Connection, caches: LendingCaches, line_id: int, as_of: date | None
) -> tuple[LockedLine, date]:
    """Lock an active line; return it with the plan's start (`as_of` or the business date)."""
    line = lock_line(conn, line_id)
    if line.status is not LineStatus.ACTIVE:
        raise ConflictError(
            f"the credit line is {line.status.value}",
            field="credit_line_id",
            code="line_not_active",
        )
    window_days = caches.policy.backdate_window_days
    return line, resolve_as_of(as_of, fetch_business_date(conn), window_days)


def convert_purchase(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    purchase_id: int,
    tenor_months: int,
    as_of: date | None = None,
) -> PlanView:
    """Convert a purchase (or drawdown) of the open cycle into a plan on its product."""
    line, start = _open_line(conn, caches, line_id, as_of)
    use = fetch_use(conn, line_id, purchase_id)
    latest = _latest_bill(conn, line_id)
    if latest is not None and use.as_of <= latest.bill_date:
        raise ConflictError(
            "the purchase is already on a bill; convert the bill instead",
            field="purchase_id",
            code="purchase_billed",
        )
    principal_fen = Fen(use.amount_fen - use.refunded_fen)
    existing = conn.execute(
        select(installment_plan_table.c.id).where(
            installment_plan_table.c.purchase_id == purchase_id
        )
    ).first()
    if existing is not None or principal_fen <= 0:
        raise ConflictError(
            "the purchase is already converted or refunded",
            field="purchase_id",
            code="purchase_not_convertible",
        )
    if _unbilled_revolving_fen(conn, caches, line_id) < principal_fen:
        raise ConflictError(
            "the purchase's principal is already partly repaid",
            field="purchase_id",
            code="purchase_not_convertible",
        )
    terms = caches.products.get(conn, use.product_code, use.product_version)
    draft = PlanDraft(
        line_id, line.customer_ref, PlanSource.PURCHASE, purchase_id, terms, principal_fen,
        tenor_months, start, compute_bill_date_on_or_after(max(start, use.as_of), line.bill_day),
        line.bill_day,
    )  # fmt: skip
    check_plan_cost(caches, draft, use.fee_fen)
    return fetch_plan(conn, line_id, insert_plan(conn, draft))


def convert_bill(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    bill_id: int,
    tenor_months: int,
    as_of: date | None = None,
) -> PlanView:
    """Convert the latest bill's revolving principal into a plan, before its due date."""
    line, start = _open_line(conn, caches, line_id, as_of)
    latest = _latest_bill(conn, line_id)
    if latest is None or latest.id != bill_id:
        raise ConflictError(
            "only the line's latest bill can be converted", field="bill_id", code="bill_not_latest"
        )
    decided = conn.execute(
        select(bill_outcome_table.c.bill_id).where(bill_outcome_table.c.bill_id == bill_id)
    ).first()
    taken = conn.execute(
        select(installment_plan_table.c.id).where(installment_plan_table.c.bill_id == bill_id)
    ).first()
    if start > latest.due_date or decided is not None or taken is not None:
        raise ConflictError(
            "the bill is past its due date or already converted",
            field="bill_id",
            code="bill_not_convertible",
        )
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    principal_fen = Fen(
        min(int(latest.revolving_principal_fen), book.normal_fen(AccountType.PRINCIPAL_BILLED))
    )
    if principal_fen <= 0:
        raise ConflictError(
            "the bill has no principal left to convert",
            field="bill_id",
            code="bill_not_convertible",
        )
    terms = caches.products.get(conn, latest.product_code, latest.product_version)
    draft = PlanDraft(
        line_id, line.customer_ref, PlanSource.BILL, bill_id, terms, principal_fen, tenor_months,
        start, compute_next_bill_date(latest.bill_date, line.bill_day), line.bill_day,
    )  # fmt: skip
    check_plan_cost(caches, draft, FEN_ZERO)
    plan_id = insert_plan(conn, draft)
    _move_principal(conn, caches, line, plan_id, principal_fen, PlanKind.CONVERSION, start)
    return fetch_plan(conn, line_id, plan_id)


def check_plan_cost(caches: LendingCaches, draft: PlanDraft, upfront_fee_fen: Fen) -> None:
    """Refuse a plan above the node's cost cap: its product's rates, or its all-in cost on
    its installments' due dates (a drawdown's origination fee counts as paid upfront)."""
    cap = caches.policy.cost_cap
    check_product_rates(draft.terms, cap)
    rows = compute_installment_rows(draft)
    flows = compute_plan_flows(
        draft.start_date,
        draft.principal_fen,
        upfront_fee_fen,
        [(row.due_date, row.payment_fen) for row in rows],
    )
    check_obligation_cost(
        draft.start_date, flows, cap, field="tenor_months",
        what=f"a {draft.tenor_months}-month plan of {draft.principal_fen} fen from "
        f"{draft.start_date.isoformat()} (first due {rows[0].due_date.isoformat()})",
    )  # fmt: skip


def _move_principal(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    plan_id: int,
    to_unbilled_fen: Fen,
    kind: str,
    as_of: date,
    charges: tuple[PostingLine, ...] = (),
) -> None:
    """Post principal between billed and unbilled (positive: to unbilled), plus charges."""
    line_id = line.credit_line_id
    moves = (
        PostingLine(line_account_code(line_id, AccountType.PRINCIPAL_UNBILLED), to_unbilled_fen),
        PostingLine(line_account_code(line_id, AccountType.PRINCIPAL_BILLED), -to_unbilled_fen),
    )
    lines = tuple(move for move in moves if move.amount_fen) + charges
    if lines:
        draft = BatchDraft(
            f"{kind}:{plan_id}",
            kind,
            as_of,
            lines,
            credit_line_id=line_id,
            customer_id=line.customer_ref,
        )
        post_batch(conn, draft, caches.accounts)


def quote_payoff(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    plan_id: int,
    kind: PayoffKind,
    as_of: date | None = None,
) -> PayoffQuote:
    """What ending an active plan on `as_of` would take (no change is made)."""
    row = fetch_plan_row(conn, line_id, plan_id)
    if row.status != PlanStatus.ACTIVE.value:
        raise ConflictError(f"the plan is {row.status}", field="plan_id", code="plan_not_active")
    when = resolve_as_of(as_of, fetch_business_date(conn), caches.policy.backdate_window_days)
    live = fetch_live_installments(conn, plan_id)
    schedule = compute_stored_schedule(row, live)
    billed = sum(1 for item in live if item.status is InstallmentStatus.BILLED)
    if billed < schedule.tenor_months and schedule.installments[billed].due_date <= when:
        raise ConflictError(
            "an installment of this plan is billed at this day's end of day; ask again after it",
            field="as_of",
            code="installment_billing",
        )
    terms = caches.products.get(conn, row.product_code, row.product_version)
    if kind is PayoffKind.CANCELLATION:
        return compute_cancellation_quote(
            schedule, when, billed, terms.installment.cancellation_days
        )
    return compute_early_repayment_quote(schedule, when, billed, terms.fees.early_repayment_fee_bps)


def _close_plan(
    conn: Connection, plan_id: int, status: PlanStatus, installments: InstallmentStatus, on: date
) -> None:
    conn.execute(
        update(installment_plan_table)
        .where(installment_plan_table.c.id == plan_id)
        .values(status=status.value, closed_on=on)
    )
    conn.execute(
        update(installment_table)
        .where(
            (installment_table.c.plan_id == plan_id)
            & (installment_table.c.status == InstallmentStatus.SCHEDULED.value)
        )
        .values(status=installments.value)
    )


@dataclass(frozen=True, slots=True)
class EarlyRepayment:
    """A plan ended by full early repayment: the plan, the quote paid, the payment."""

    plan: PlanView
    quote: PayoffQuote
    repayment: Repayment


def repay_plan_early(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    plan_id: int,
    as_of: date | None = None,
) -> EarlyRepayment:
    """End a plan by full early repayment and take the payment of its quote."""
    line = lock_line(conn, line_id)
    quote = quote_payoff(
        conn, caches, line_id=line_id, plan_id=plan_id, kind=PayoffKind.EARLY_REPAYMENT,
        as_of=as_of,
    )  # fmt: skip
    if quote.total_fen == 0:
        raise ConflictError(
            "every installment is already billed", field="plan_id", code="plan_fully_billed"
        )
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    principal_fen = min(quote.principal_fen, book.normal_fen(AccountType.PRINCIPAL_UNBILLED))
    charges = _charge_lines(line_id, quote.interest_fen, quote.fee_fen)
    _move_principal(
        conn, caches, line, plan_id, Fen(-principal_fen), PlanKind.PAYOFF, quote.as_of, charges
    )
    _close_plan(conn, plan_id, PlanStatus.PAID_OFF, InstallmentStatus.PAID_OFF, quote.as_of)
    currency = lock_line(conn, line_id).currency
    payment = repay(
        conn, caches, line_id=line_id, amount_fen=quote.total_fen, currency=currency,
        as_of=quote.as_of, payment_ref=f"plan-{plan_id}-payoff",
    )  # fmt: skip
    return EarlyRepayment(fetch_plan(conn, line_id, plan_id), quote, payment)


def _charge_lines(line_id: int, interest_fen: Fen, fee_fen: Fen) -> tuple[PostingLine, ...]:
    lines = []
    if interest_fen:
        lines += [
            PostingLine(line_account_code(line_id, AccountType.INTEREST_BILLED), interest_fen),
            PostingLine(node_account_code(AccountType.INTEREST_INCOME), -interest_fen),
        ]
    if fee_fen:
        lines += [
            PostingLine(line_account_code(line_id, AccountType.FEE_BILLED), fee_fen),
            PostingLine(node_account_code(AccountType.FEE_INCOME), -fee_fen),
        ]
    return tuple(lines)


def cancel_plan(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    plan_id: int,
    as_of: date | None = None,
) -> PlanView:
    """Cancel a plan within the product's cancellation window (no interest, no fee)."""
    line = lock_line(conn, line_id)
    quote = quote_payoff(
        conn, caches, line_id=line_id, plan_id=plan_id, kind=PayoffKind.CANCELLATION, as_of=as_of
    )
    row = fetch_plan_row(conn, line_id, plan_id)
    if row.source_kind == PlanSource.BILL.value:
        book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
        back_fen = min(quote.principal_fen, book.normal_fen(AccountType.PRINCIPAL_UNBILLED))
        _move_principal(
            conn, caches, line, plan_id, Fen(-back_fen), PlanKind.CANCELLATION, quote.as_of
        )
    _close_plan(conn, plan_id, PlanStatus.CANCELLED, InstallmentStatus.CANCELLED, quote.as_of)
    return fetch_plan(conn, line_id, plan_id)
