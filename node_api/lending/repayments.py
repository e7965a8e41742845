"""Repayments: allocation by the product's waterfall, over-payment as customer credit,
and reversal of a bounced payment that replays the allocation.

The outstanding items are the line's receivable accounts (penalty, fees, interest,
principal; each unbilled, billed or past due). `compute_waterfall` orders them: past due
before current (if the product says so), then by the product's component order, then
billed before unbilled. What is left is held as customer credit. Principal repaid
reduces the line's uses oldest first and restores their limits at every level.

A line may carry several products; its repayments follow the waterfall of its first
product (the one booked first), because the receivables are the line's, not a product's.

Reversal (a bounced payment): the payment may have changed what later payments paid, so
every later payment's allocation on the line is undone too (newest first), the bounced
one is marked reversed, and the later payments are allocated again, in order, against
the resulting balances. Nothing is updated in the journal: each step is a new batch.
Restored principal re-reserves limit usage even above the limit (the customer already
spent what the bounced payment freed); the line then declines new use until it is back
under its limits. Customer credit applied after the bounced payment is undone with it
(and applied again at the end); credit already refunded to the customer cannot be taken
back, so such a reversal is refused (`credit_already_refunded`). The bills the payment
had settled are then re-aged (`node_api.lending.reage`).

On a non-accrual line, what a payment has left after every receivable on the books
collects the interest and penalty suspended off balance sheet (recognized as interest
income) before anything becomes customer credit.

A repayment applies the line's customer credit to what is still due after it
(`node_api.lending.customer_credit`).

The waterfall never takes the principal of a plan's future installments: what a payment
has left after everything else prepays the line's plans on the product's early-repayment
terms (`node_api.lending.plan_prepayment`), in a batch of its own, undone with the
payment if it bounces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.ledger.accounts import AccountType, line_account_code, node_account_code
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import (
    BatchDraft,
    PostingLine,
    SettlementEventDraft,
    build_reversal,
    post_batch,
)
from node_api.ledger.settlement_events import BatchKind, EventKind
from node_api.lending.billing_rules import Component, OutstandingItem, compute_waterfall
from node_api.lending.core.books import LineBook, fetch_line_books
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.entries import CLEARING, funding_adjustment
from node_api.lending.customer_credit import (
    apply_customer_credit,
    fetch_active_credit_applications,
    insert_line_row,
    line_terms,
    lock_line_for_posting,
)
from node_api.lending.lines import LockedLine, lock_line, write_usage
from node_api.lending.plan_prepayment import (
    PlanPrepayment,
    fetch_plan_unbilled_fen,
    prepay_plans,
    restore_prepayment,
)
from node_api.lending.reage import reage_after_reversal
from node_api.lending.repayment_tables import (
    repayment_allocation_table as repayment_allocation_table,
)
from node_api.lending.repayment_tables import repayment_table as repayment_table
from node_api.lending.use_reductions import (
    apply_reductions,
    fetch_reductions,
    post_line_batch,
)

RECEIVABLES: tuple[tuple[AccountType, Component, int, bool], ...] = (
    (AccountType.PENALTY_PAST_DUE, Component.PENALTY, 0, True),
    (AccountType.PENALTY_BILLED, Component.PENALTY, 1, False),
    (AccountType.PENALTY_UNBILLED, Component.PENALTY, 2, False),
    (AccountType.FEE_PAST_DUE, Component.FEES, 0, True),
    (AccountType.FEE_BILLED, Component.FEES, 1, False),
    (AccountType.FEE_UNBILLED, Component.FEES, 2, False),
    (AccountType.INTEREST_PAST_DUE, Component.INTEREST, 0, True),
    (AccountType.INTEREST_BILLED, Component.INTEREST, 1, False),
    (AccountType.INTEREST_UNBILLED, Component.INTEREST, 2, False),
    (AccountType.PRINCIPAL_PAST_DUE, Component.PRINCIPAL, 0, True),
    (AccountType.PRINCIPAL_BILLED, Component.PRINCIPAL, 1, False),
    (AccountType.PRINCIPAL_UNBILLED, Component.PRINCIPAL, 2, False),
)
"""Each receivable account: its waterfall component, its age rank (billed before
unbilled) and whether it is past due."""

_REPAID_EVENT = {
    Component.PRINCIPAL: EventKind.PRINCIPAL_REPAID,
    Component.INTEREST: EventKind.INTEREST_REPAID,
    Component.FEES: EventKind.FEE_REPAID,
    Component.PENALTY: EventKind.PENALTY_REPAID,
}


@dataclass(frozen=True, slots=True)
class AllocationView:
    account_type: AccountType
    component: Component
    amount_fen: Fen


def compute_outstanding_items(
    book: LineBook, as_of: date, plan_principal_fen: Fen = FEN_ZERO
) -> list[OutstandingItem]:
    """The line's receivables as waterfall items (the item id orders billed first).

    `plan_principal_fen`, the principal active installment plans still schedule, is left
    out of the unbilled principal: a plan's future installments are prepaid only on the
    product's early-repayment terms (`node_api.lending.plan_prepayment`)."""
    amounts = {account_type: book.normal_fen(account_type) for account_type, *_ in RECEIVABLES}
    amounts[AccountType.PRINCIPAL_UNBILLED] = max(
        amounts[AccountType.PRINCIPAL_UNBILLED] - plan_principal_fen, 0
    )
    return [
        OutstandingItem(
            item_id=f"{rank}:{account_type.value}",
            component=component,
            amount_fen=amounts[account_type],
            past_due=past_due,
            due_date=as_of,
        )
        for account_type, component, rank, past_due in RECEIVABLES
        if amounts[account_type] > 0
    ]


class AllocatedAmount(BaseModel):
    """The part of a payment taken by one receivable account (also its API view)."""

    model_config = ConfigDict(frozen=True)

    account: str
    component: str
    amount_fen: Fen


class Repayment(BaseModel):
    """A posted payment and how it was allocated (also its API view)."""

    model_config = ConfigDict(frozen=True)

    repayment_id: int
    credit_line_id: int
    amount_fen: Fen
    currency: str
    as_of: date
    status: str
    allocations: tuple[AllocatedAmount, ...]
    customer_credit_fen: Fen


@dataclass(frozen=True, slots=True)
class RepaymentReversal:
    """A reversed payment and the later payments allocated again."""

    repayment_id: int
    credit_line_id: int
    status: str
    reversed_on: date
    reallocated_repayment_ids: tuple[int, ...]
    reaged_bill_ids: tuple[int, ...] = ()
    """Bills the payment had settled, decided again (see `node_api.lending.reage`)."""


@dataclass(frozen=True, slots=True)
class _StoredRepayment:
    id: int
    amount_fen: Fen
    status: str
    as_of: date


def repay(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    amount_fen: Fen,
    currency: str,
    as_of: date | None,
    payment_ref: str | None = None,
) -> Repayment:
    """Take a payment on a line; return the repayment's view with its allocation (a plan's
    future installments it prepaid included, their early-repayment interest and fee as
    `interest_income` and `fee_income`)."""
    line, posted_on = lock_line_for_posting(conn, caches, line_id, amount_fen, currency, as_of)
    repayment_id = insert_line_row(
        conn, repayment_table, line, amount_fen=amount_fen, currency=currency,
        payment_ref=payment_ref, as_of=posted_on, status="posted",
    )  # fmt: skip
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    allocation, credit_fen, prepaid = _allocate(
        conn, caches, line, book, repayment_id, amount_fen, posted_on, seq=1
    )
    apply_customer_credit(conn, caches, line, book, posted_on, f"repayment:{repayment_id}:1:credit")
    write_usage(conn, line.nodes)
    return Repayment(
        repayment_id=repayment_id,
        credit_line_id=line_id,
        amount_fen=amount_fen,
        currency=currency,
        as_of=posted_on,
        status="posted",
        allocations=tuple(
            AllocatedAmount(
                account=v.account_type.value, component=v.component.value, amount_fen=v.amount_fen
            )
            for v in allocation
        )
        + _prepaid_amounts(prepaid),
        customer_credit_fen=Fen(credit_fen - sum(item.total_fen for item in prepaid)),
    )


def _prepaid_amounts(prepaid: list[PlanPrepayment]) -> tuple[AllocatedAmount, ...]:
    """A payment's plan prepayments as allocations: principal, early-repayment interest
    and fee (the charges are income as they are paid)."""
    parts = (
        (AccountType.PRINCIPAL_UNBILLED, Component.PRINCIPAL, "principal_fen"),
        (AccountType.INTEREST_INCOME, Component.INTEREST, "interest_fen"),
        (AccountType.FEE_INCOME, Component.FEES, "fee_fen"),
    )
    found = []
    for account_type, component, name in parts:
        total_fen = sum(getattr(item, name) for item in prepaid)
        if total_fen:
            found.append(
                AllocatedAmount(
                    account=account_type.value, component=component.value, amount_fen=Fen(total_fen)
                )
            )
    return tuple(found)


def _allocate(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    repayment_id: int,
    amount_fen: Fen,
    as_of: date,
    seq: int,
) -> tuple[list[AllocationView], Fen, list[PlanPrepayment]]:
    """Allocate one payment against the book as it stands; post it; advance the book;
    prepay plans with what is left. Returns the allocations, the part left over as
    customer credit (before the prepayments) and the plans it prepaid."""
    first_product = min(line.product_nodes(), key=lambda node: node.node_id)
    terms = caches.terms_of(conn, first_product)
    plan_principal_fen = fetch_plan_unbilled_fen(conn, line.credit_line_id)
    result = compute_waterfall(
        amount_fen,
        compute_outstanding_items(book, as_of, plan_principal_fen),
        terms.allocation.order,
        terms.allocation.past_due_first,
    )
    views = [
        AllocationView(AccountType(a.item_id.split(":", 1)[1]), a.component, a.amount_fen)
        for a in result.allocations
    ]
    principal_fen = Fen(sum(v.amount_fen for v in views if v.component is Component.PRINCIPAL))
    suspended_fen = book.normal_fen(AccountType.INTEREST_SUSPENDED)
    recognized_fen = Fen(min(result.credit_balance_fen, suspended_fen))
    credit_fen = Fen(result.credit_balance_fen - recognized_fen)
    lines, events = _repayment_entries(line.credit_line_id, amount_fen, views, credit_fen)
    if recognized_fen:
        lines += recognition_lines(line.credit_line_id, recognized_fen)
        events.append(SettlementEventDraft(EventKind.INTEREST_REPAID, recognized_fen))
    batch_id = post_line_batch(
        conn,
        caches,
        line,
        book,
        business_key=f"repayment:{repayment_id}:{seq}",
        kind=BatchKind.REPAYMENT,
        as_of=as_of,
        lines=lines,
        events=events,
        principal_fen=principal_fen,
    )
    conn.execute(
        repayment_allocation_table.insert().values(
            repayment_id=repayment_id,
            seq=seq,
            batch_id=batch_id,
            active=True,
            customer_id=line.customer_ref,
        )
    )
    prepaid = prepay_plans(
        conn, caches, line, book, as_of, credit_fen, f"repayment:{repayment_id}:{seq}"
    )
    return views, credit_fen, prepaid


def recognition_lines(line_id: int, amount_fen: Fen) -> list[PostingLine]:
    """Suspended interest collected: out of the off-balance-sheet memo, into income."""
    return [
        PostingLine(line_account_code(line_id, AccountType.INTEREST_SUSPENDED), -amount_fen),
        PostingLine(node_account_code(AccountType.SUSPENDED_INTEREST_CONTRA), amount_fen),
        PostingLine(node_account_code(AccountType.INTEREST_INCOME), -amount_fen),
    ]


def _repayment_entries(
    line_id: int, amount_fen: Fen, views: list[AllocationView], credit_fen: Fen
) -> tuple[list[PostingLine], list[SettlementEventDraft]]:
    lines = [PostingLine(CLEARING, amount_fen)]
    lines += [PostingLine(line_account_code(line_id, v.account_type), -v.amount_fen) for v in views]
    events = [SettlementEventDraft(EventKind.REPAYMENT_RECEIVED, amount_fen)]
    by_component: dict[Component, int] = {}
    for view in views:
        by_component[view.component] = by_component.get(view.component, 0) + view.amount_fen
    events += [
        SettlementEventDraft(_REPAID_EVENT[component], by_component[component])
        for component in Component
        if by_component.get(component)
    ]
    if credit_fen:
        lines.append(
            PostingLine(line_account_code(line_id, AccountType.CUSTOMER_CREDIT), -credit_fen)
        )
        events.append(SettlementEventDraft(EventKind.CUSTOMER_CREDIT, credit_fen))
    return lines, events


def reverse_repayment(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    repayment_id: int,
    as_of: date | None,
) -> RepaymentReversal:
    """Reverse a bounced payment and re-allocate every later payment on the line."""
    line = lock_line(conn, line_id)
    target = _fetch_repayment(conn, line_id, repayment_id)
    if target.status != "posted":
        raise ConflictError(
            "the repayment is already reversed", field="repayment_id", code="already_reversed"
        )
    posted_on = resolve_as_of(as_of, fetch_business_date(conn), caches.policy.backdate_window_days)
    if posted_on < target.as_of:
        raise CreditNetValueError("a reversal cannot predate its repayment", field="as_of")
    table = repayment_table
    later = [
        _to_stored(row)
        for row in conn.execute(
            select(table)
            .where(
                (table.c.credit_line_id == line_id)
                & (table.c.status == "posted")
                & (table.c.id > repayment_id)
            )
            .order_by(table.c.id)
        ).mappings()
    ]
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    allocations = _active_allocations(conn, [target, *later])
    applications = fetch_active_credit_applications(conn, line_id, allocations[target.id])
    undo = sorted([*allocations.values(), *applications], reverse=True)
    for batch_id in undo:
        _undo_batch(conn, caches, line, book, batch_id, posted_on)
        restore_prepayment(conn, caches.products, batch_id, posted_on)
    conn.execute(
        update(repayment_allocation_table)
        .where(
            repayment_allocation_table.c.batch_id.in_(list(allocations.values()))
            & repayment_allocation_table.c.active
        )
        .values(active=False)
    )
    conn.execute(
        update(table)
        .where(table.c.id == repayment_id)
        .values(status="reversed", reversed_on=posted_on)
    )
    for repayment in later:
        seq = _next_seq(conn, repayment.id)
        _allocate(conn, caches, line, book, repayment.id, repayment.amount_fen, posted_on, seq)
    apply_customer_credit(conn, caches, line, book, posted_on, f"reversal:{repayment_id}:credit")
    reaged = reage_after_reversal(
        conn, caches, line, book, line_terms(conn, caches, line), paid_on=target.as_of,
        reversed_on=posted_on, allocation_batch_id=allocations[target.id],
    )  # fmt: skip
    write_usage(conn, line.nodes)
    return RepaymentReversal(
        repayment_id=repayment_id,
        credit_line_id=line_id,
        status="reversed",
        reversed_on=posted_on,
        reallocated_repayment_ids=tuple(repayment.id for repayment in later),
        reaged_bill_ids=tuple(item.bill_id for item in reaged),
    )


def _to_stored(row: RowMapping) -> _StoredRepayment:
    return _StoredRepayment(
        id=int(row["id"]),
        amount_fen=Fen(int(row["amount_fen"])),
        status=str(row["status"]),
        as_of=row["as_of"],
    )


def _fetch_repayment(conn: Connection, line_id: int, repayment_id: int) -> _StoredRepayment:
    table = repayment_table
    row = (
        conn.execute(
            select(table).where((table.c.id == repayment_id) & (table.c.credit_line_id == line_id))
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(
            f"repayment {repayment_id} does not exist on credit line {line_id}",
            field="repayment_id",
        )
    return _to_stored(row)


def _active_allocations(conn: Connection, repayments: list[_StoredRepayment]) -> dict[int, int]:
    """Each repayment's active allocation batch id."""
    allocations = repayment_allocation_table
    rows = conn.execute(
        select(allocations.c.repayment_id, allocations.c.batch_id).where(
            allocations.c.repayment_id.in_([item.id for item in repayments]) & allocations.c.active
        )
    )
    return {int(repayment_id): int(batch_id) for repayment_id, batch_id in rows}


def _undo_batch(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    batch_id: int,
    as_of: date,
) -> None:
    """Reverse an allocation or credit-application batch and put its principal back.

    Credit that has since been paid out (a credit refund) cannot be taken back here: the
    reversal is refused and the lender recovers it outside the line."""
    credit_code = line_account_code(line.credit_line_id, AccountType.CUSTOMER_CREDIT)
    apply_reductions(conn, line, fetch_reductions(conn, batch_id), +1)
    draft = build_reversal(
        conn,
        batch_id,
        business_key=f"reversal:{batch_id}",
        kind=BatchKind.REPAYMENT_REVERSAL,
        as_of=as_of,
    )
    funding_lines, funding_events = funding_adjustment(
        book, line.product_nodes(), lambda node: caches.terms_of(conn, node), draft.lines
    )
    draft = BatchDraft(
        business_key=draft.business_key,
        kind=draft.kind,
        as_of=as_of,
        lines=draft.lines + tuple(funding_lines),
        credit_line_id=draft.credit_line_id,
        events=draft.events + tuple(funding_events),
        reverses_batch_id=batch_id,
        customer_id=draft.customer_id,
    )
    credit_change_fen = sum(
        item.amount_fen for item in draft.lines if item.account_code == credit_code
    )
    if book.balances_fen.get(credit_code, 0) + credit_change_fen > 0:
        raise ConflictError(
            "the payment's credit was already refunded to the customer",
            field="repayment_id",
            code="credit_already_refunded",
        )
    post_batch(conn, draft, caches.accounts)
    book.apply(draft.lines)


def _next_seq(conn: Connection, repayment_id: int) -> int:
    allocations = repayment_allocation_table
    rows = conn.execute(
        select(allocations.c.seq).where(allocations.c.repayment_id == repayment_id)
    ).scalars()
    return max((int(seq) for seq in rows), default=0) + 1
