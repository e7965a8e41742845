"""Customer credit (溢缴款): applied to what is due, and refunded on request.

A line's customer credit (over-payments, refunds beyond the debt) is applied to what is
due, that is its billed and past-due receivables, never to unbilled amounts (which are
not due yet and stay interest-free until billed): past due before billed ("oldest due
first") unless the product says otherwise, then by component in the product's
`credit_application.order`. It is applied
- at posting time: after every repayment, refund, reversal and credit refund on the line
  (`apply_customer_credit`, called by those operations);
- at end of day: the `credit` step (first of the day, so a due date decided the same
  day sees it) and the bill cut, right after the new bill moves amounts to billed (the
  bill states the credit applied and is net of it, see `node_api.lending.bill_tables`).
So a line whose credit covers what it owes never has anything past due: it never ages
and is never charged off.

An application is one posting batch of kind `credit_application`: the customer-credit
account is debited, the receivables credited, exactly like a repayment paid from the
credit (the same settlement events per component, the customer-credit event negative;
principal repaid releases the line's uses oldest first and brings the funding payables
to their share). It is not an end-of-day kind, so a bill counts it as paid toward it.

A credit refund pays credit out to the customer through the disbursement (settlement
clearing) account, after applying the credit to what is due: only credit left over is
refundable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CheckConstraint, Column, Table
from sqlalchemy.types import BigInteger, Date, String

from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen
from node_api.ledger.accounts import AccountType, line_account_code
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import (
    BatchDraft,
    PostingLine,
    SettlementEventDraft,
    post_batch,
)
from node_api.ledger.schema import (
    fen_columns,
    id_column,
    line_column,
    metadata,
    posting_batch_table,
)
from node_api.ledger.settlement_events import BatchKind, EventKind
from node_api.lending.billing_rules import Component, OutstandingItem, compute_waterfall
from node_api.lending.core.books import LineBook, fetch_line_books
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.entries import CLEARING
from node_api.lending.lines import LineStatus, LockedLine, lock_line, write_usage
from node_api.lending.plan_prepayment import PREPAYMENT_KIND
from node_api.lending.products import ProductTerms
from node_api.lending.use_reductions import (
    post_line_batch,
)

DUE_ITEMS: tuple[tuple[AccountType, Component, bool], ...] = (
    (AccountType.PENALTY_PAST_DUE, Component.PENALTY, True),
    (AccountType.FEE_PAST_DUE, Component.FEES, True),
    (AccountType.INTEREST_PAST_DUE, Component.INTEREST, True),
    (AccountType.PRINCIPAL_PAST_DUE, Component.PRINCIPAL, True),
    (AccountType.PENALTY_BILLED, Component.PENALTY, False),
    (AccountType.FEE_BILLED, Component.FEES, False),
    (AccountType.INTEREST_BILLED, Component.INTEREST, False),
    (AccountType.PRINCIPAL_BILLED, Component.PRINCIPAL, False),
)
"""What is due: each account, its component and whether it is past due."""
DUE_TYPES: tuple[AccountType, ...] = tuple(kind for kind, _, _ in DUE_ITEMS)

REPAID_EVENT = {
    Component.PRINCIPAL: EventKind.PRINCIPAL_REPAID,
    Component.INTEREST: EventKind.INTEREST_REPAID,
    Component.FEES: EventKind.FEE_REPAID,
    Component.PENALTY: EventKind.PENALTY_REPAID,
}

credit_refund_table = Table(
    "credit_refund",
    metadata,
    id_column(),
    line_column("fk_credit_refund_line", index=True),
    *fen_columns("amount_fen"),
    Column("currency", String(3), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    CheckConstraint("amount_fen > 0", name="ck_credit_refund_positive"),
    Column("customer_id", String(64), nullable=True),
)


@dataclass(frozen=True, slots=True)
class CreditApplied:
    """The part of the credit one due account took."""

    account_type: AccountType
    component: Component
    amount_fen: Fen


def compute_credit_application(
    credit_fen: Fen, balances: Mapping[AccountType, int], terms: ProductTerms
) -> list[CreditApplied]:
    """How `credit_fen` of credit settles what is due (module docstring); the rest stays."""
    rule = terms.credit_application
    items = [
        OutstandingItem(
            item_id=f"{rank}:{kind.value}",
            component=component,
            amount_fen=balances.get(kind, 0),
            past_due=past_due,
            due_date=date.min,
        )
        for rank, (kind, component, past_due) in enumerate(DUE_ITEMS)
        if balances.get(kind, 0) > 0
    ]
    if credit_fen <= 0 or not items:
        return []
    result = compute_waterfall(credit_fen, items, rule.order, rule.past_due_first)
    return [
        CreditApplied(AccountType(item.item_id.split(":", 1)[1]), item.component, item.amount_fen)
        for item in result.allocations
    ]


def credit_application_entries(
    line_id: int, applied: list[CreditApplied]
) -> tuple[list[PostingLine], list[SettlementEventDraft]]:
    """The customer-credit debit, the receivables' credits and the repaid events."""
    total_fen = sum(item.amount_fen for item in applied)
    lines = [PostingLine(line_account_code(line_id, AccountType.CUSTOMER_CREDIT), total_fen)]
    lines += [
        PostingLine(line_account_code(line_id, item.account_type), -item.amount_fen)
        for item in applied
    ]
    by_component: dict[Component, int] = {}
    for item in applied:
        by_component[item.component] = by_component.get(item.component, 0) + item.amount_fen
    events = [
        SettlementEventDraft(REPAID_EVENT[component], by_component[component])
        for component in Component
        if by_component.get(component)
    ]
    events.append(SettlementEventDraft(EventKind.CUSTOMER_CREDIT, -total_fen))
    return lines, events


def line_terms(conn: Connection, caches: LendingCaches, line: LockedLine) -> ProductTerms:
    """The terms a line is serviced on: those of its first product (booked first)."""
    return caches.terms_of(conn, min(line.product_nodes(), key=lambda node: node.node_id))


def apply_customer_credit(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    as_of: date,
    business_key: str,
) -> list[CreditApplied]:
    """Apply the line's credit to what is due (the caller holds the line's lock and
    stores its usage with `write_usage`); post it and advance `book`. [] when there is
    no credit or nothing due."""
    line_id = line.credit_line_id
    credit_fen = Fen(book.credit_fen(AccountType.CUSTOMER_CREDIT))
    balances = {kind: book.normal_fen(kind) for kind in DUE_TYPES}
    applied = compute_credit_application(credit_fen, balances, line_terms(conn, caches, line))
    if not applied:
        return []
    lines, events = credit_application_entries(line_id, applied)
    principal_fen = Fen(
        sum(item.amount_fen for item in applied if item.component is Component.PRINCIPAL)
    )
    post_line_batch(
        conn,
        caches,
        line,
        book,
        business_key=business_key,
        kind=BatchKind.CREDIT_APPLICATION,
        as_of=as_of,
        lines=lines,
        events=events,
        principal_fen=principal_fen,
    )
    return applied


def lock_line_for_posting(
    conn: Connection,
    caches: LendingCaches,
    line_id: int,
    amount_fen: Fen,
    currency: str,
    as_of: date | None,
) -> tuple[LockedLine, date]:
    """Check a money movement on a line (a repayment, a credit refund) and lock the line:
    an open line (409 `line_closed`), a positive amount in the line's currency, dated
    within the back-dating window and not before the line opened. Returns the line and
    the posting date."""
    if amount_fen <= 0:
        raise CreditNetValueError("the amount must be positive", field="amount_fen")
    line = lock_line(conn, line_id)
    if line.status is LineStatus.CLOSED:
        raise ConflictError("the credit line is closed", field="credit_line_id", code="line_closed")
    if currency != line.currency:
        raise CreditNetValueError(f"this line is in {line.currency}", field="currency")
    posted_on = resolve_as_of(as_of, fetch_business_date(conn), caches.policy.backdate_window_days)
    if posted_on < line.opened_on:
        raise CreditNetValueError("the line was not open on that date", field="as_of")
    return line, posted_on


def insert_line_row(conn: Connection, table: Table, line: LockedLine, **values: object) -> int:
    """Insert a row of a money movement on a line (a repayment, a credit refund), naming
    the line and its customer, and return its id."""
    statement = (
        table.insert()
        .values(credit_line_id=line.credit_line_id, customer_id=line.customer_ref, **values)
        .returning(table.c.id)
    )
    return int(conn.execute(statement).scalar_one())


def fetch_active_credit_applications(
    conn: Connection, line_id: int, after_batch_id: int
) -> list[int]:
    """Ids of the line's credit applications and plan prepayments (both paid from the
    credit) after `after_batch_id`, not yet reversed."""
    batches = posting_batch_table
    reversal = posting_batch_table.alias("reversal")
    rows = conn.execute(
        select(batches.c.id)
        .outerjoin(reversal, reversal.c.reverses_batch_id == batches.c.id)
        .where(
            (batches.c.credit_line_id == line_id)
            & batches.c.kind.in_([BatchKind.CREDIT_APPLICATION, PREPAYMENT_KIND])
            & (batches.c.id > after_batch_id)
            & reversal.c.id.is_(None)
        )
    )
    return sorted(int(batch_id) for batch_id in rows.scalars())


class CreditRefund(BaseModel):
    """Credit paid out to the customer, after the credit was applied to what was due (also
    its API view)."""

    model_config = ConfigDict(frozen=True)

    credit_refund_id: int
    credit_line_id: int
    amount_fen: Fen
    currency: str
    as_of: date
    applied_fen: Fen
    """Credit applied to what was due before the refund (only the rest is refundable)."""
    customer_credit_fen: Fen
    """The credit left on the line after the refund."""


def refund_customer_credit(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    amount_fen: Fen,
    currency: str,
    as_of: date | None,
) -> CreditRefund:
    """Pay `amount_fen` of the line's credit out to the customer (module docstring)."""
    line, posted_on = lock_line_for_posting(conn, caches, line_id, amount_fen, currency, as_of)
    book = fetch_line_books(conn, [line_id], caches.accounts)[line_id]
    available_fen = book.credit_fen(AccountType.CUSTOMER_CREDIT)
    due_fen = sum(book.normal_fen(kind) for kind in DUE_TYPES)
    refundable_fen = max(available_fen - due_fen, 0)
    if amount_fen > refundable_fen:
        raise ConflictError(
            f"the line has {refundable_fen} fen of refundable credit (credit less what is due)",
            field="amount_fen",
            code="insufficient_credit",
        )
    table = credit_refund_table
    refund_id = insert_line_row(
        conn, table, line, amount_fen=amount_fen, currency=currency, as_of=posted_on, batch_id=0
    )
    applied = apply_customer_credit(
        conn, caches, line, book, posted_on, f"credit_refund:{refund_id}:apply"
    )
    draft = BatchDraft(
        business_key=f"credit_refund:{refund_id}",
        kind=BatchKind.CREDIT_REFUND,
        as_of=posted_on,
        lines=(
            PostingLine(line_account_code(line_id, AccountType.CUSTOMER_CREDIT), amount_fen),
            PostingLine(CLEARING, -amount_fen),
        ),
        credit_line_id=line_id,
        events=(SettlementEventDraft(EventKind.CUSTOMER_CREDIT, -amount_fen),),
        customer_id=line.customer_ref,
    )
    batch_id = post_batch(conn, draft, caches.accounts)
    book.apply(draft.lines)
    conn.execute(table.update().where(table.c.id == refund_id).values(batch_id=batch_id))
    write_usage(conn, line.nodes)
    return CreditRefund(
        credit_refund_id=refund_id,
        credit_line_id=line_id,
        amount_fen=amount_fen,
        currency=currency,
        as_of=posted_on,
        applied_fen=Fen(sum(item.amount_fen for item in applied)),
        customer_credit_fen=Fen(book.credit_fen(AccountType.CUSTOMER_CREDIT)),
    )
