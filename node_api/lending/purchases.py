"""Uses of a line (purchases and cash drawdowns), their open principal, and refunds.

Each use keeps its own open principal so limit usage can be restored at the right
levels (its product, and its channel sub-limit if any) when principal is repaid or
refunded. A repayment of principal reduces uses oldest first (business date, then id);
every reduction is recorded against the posting batch that made it, so reversing that
batch puts the principal back on exactly the same uses.

A refund (full or partial, up to what is not refunded yet) gives the merchant's money
back to the line: it first reduces the purchase's open principal; whatever the customer
had already repaid of it becomes customer credit, applied at once to whatever the line
has due (`node_api.lending.customer_credit`). Which principal it reduces depends on
where the purchase is (`_refund_target`): a purchase not billed yet, or converted into a
plan, is still unbilled principal; a purchase already on a bill reduces what that bill
made due (billed principal, or past-due principal once the bill went unpaid past its
due date), so it counts as paid toward the bill, never the line's later unbilled
purchases; once that bill is paid in full the whole refund is customer credit.
Commission is reversed in proportion. A refund on a purchase converted into a plan
takes its principal off the plan's installments still to be billed, which are
re-amortized (`node_api.lending.plan_prepayment.reduce_refunded_plan`).

The use reductions themselves (oldest first, recorded per batch) are in
`node_api.lending.use_reductions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import FEN_ZERO, Fen
from node_api.ledger.accounts import (
    AccountType,
    line_account_code,
    node_account_code,
    partner_account_code,
)
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.settlement_events import BatchKind, EventKind
from node_api.lending.bill_tables import bill_outcome_table, bill_table
from node_api.lending.core.books import LineBook, fetch_line_books
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.entries import (
    CLEARING,
    compute_commission_fen,
    funding_adjustment,
    principal_bucket_lines,
)
from node_api.lending.customer_credit import apply_customer_credit
from node_api.lending.installment_tables import installment_plan_table
from node_api.lending.lines import LineStatus, LockedLine, lock_line, write_usage
from node_api.lending.plan_prepayment import reduce_refunded_plan
from node_api.lending.purchase_tables import purchase_refund_table, purchase_table
from node_api.lending.use_reductions import (
    OpenUse,
    Reduction,
    apply_reductions,
    record_reductions,
)

REFUND_BUCKET_ORDER = (
    AccountType.PRINCIPAL_UNBILLED,
    AccountType.PRINCIPAL_BILLED,
    AccountType.PRINCIPAL_PAST_DUE,
)
"""A refund of a purchase not billed yet, or converted into a plan (alone or with its
bill), takes principal off the least-aged bucket first: that is where it sits."""
BILLED_REFUND_ORDER = (AccountType.PRINCIPAL_BILLED, AccountType.PRINCIPAL_PAST_DUE)
"""A refund of a billed purchase whose bill is not yet due: what the bill made due."""
PAST_DUE_REFUND_ORDER = (AccountType.PRINCIPAL_PAST_DUE, AccountType.PRINCIPAL_BILLED)
"""A refund of a billed purchase whose bill went unpaid past its due date."""


@dataclass(frozen=True, slots=True)
class Use:
    """A purchase or cash drawdown as stored (`purchase` row)."""

    id: int
    kind: str
    credit_line_id: int
    product_node_id: int
    product_code: str
    product_version: int
    channel_id: str
    merchant_id: str | None
    currency: str
    amount_fen: Fen
    fee_fen: Fen
    refunded_fen: Fen
    principal_open_fen: Fen
    as_of: date
    customer_id: str | None


class Refund(BaseModel):
    """A posted refund and what it left of its purchase (also its API view)."""

    model_config = ConfigDict(frozen=True)

    refund_id: int
    purchase_id: int
    credit_line_id: int
    amount_fen: Fen
    principal_fen: Fen
    customer_credit_fen: Fen
    as_of: date
    purchase_refunded_fen: Fen
    purchase_principal_open_fen: Fen


def fetch_use(conn: Connection, line_id: int, purchase_id: int) -> Use:
    """One use of a line; NotFoundError if not on this line."""
    table = purchase_table
    row = (
        conn.execute(
            select(table).where((table.c.id == purchase_id) & (table.c.credit_line_id == line_id))
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(
            f"purchase {purchase_id} does not exist on credit line {line_id}", field="purchase_id"
        )
    return Use(
        id=int(row["id"]),
        kind=str(row["kind"]),
        credit_line_id=int(row["credit_line_id"]),
        product_node_id=int(row["product_node_id"]),
        product_code=str(row["product_code"]),
        product_version=int(row["product_version"]),
        channel_id=str(row["channel_id"]),
        merchant_id=None if row["merchant_id"] is None else str(row["merchant_id"]),
        currency=str(row["currency"]),
        amount_fen=Fen(int(row["amount_fen"])),
        fee_fen=Fen(int(row["fee_fen"])),
        refunded_fen=Fen(int(row["refunded_fen"])),
        principal_open_fen=Fen(int(row["principal_open_fen"])),
        as_of=row["as_of"],
        customer_id=row["customer_id"],
    )


def refund_purchase(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    purchase_id: int,
    amount_fen: Fen | None,
    as_of: date | None,
) -> Refund:
    """Refund all (`amount_fen` None) or part of a purchase; return the refund's view."""
    line = lock_line(conn, line_id)
    purchase = fetch_use(conn, line_id, purchase_id)
    if purchase.kind != "purchase":
        raise CreditNetValueError("only purchases can be refunded", field="purchase_id")
    posted_on = resolve_as_of(as_of, fetch_business_date(conn), caches.policy.backdate_window_days)
    if posted_on < purchase.as_of:
        raise CreditNetValueError("a refund cannot predate its purchase", field="as_of")
    refundable_fen = Fen(purchase.amount_fen - purchase.refunded_fen)
    amount_fen = refundable_fen if amount_fen is None else amount_fen
    if amount_fen <= 0 and refundable_fen > 0:
        raise CreditNetValueError("the amount must be positive", field="amount_fen")
    if line.status is LineStatus.CLOSED:
        raise ConflictError("the credit line is closed", field="credit_line_id", code="line_closed")
    if amount_fen > refundable_fen or refundable_fen == 0:
        raise ConflictError(
            f"only {refundable_fen} fen of this purchase can still be refunded",
            field="amount_fen",
            code="refund_exceeds_purchase",
        )
    return _post_refund(conn, caches, line, purchase, amount_fen, posted_on)


def _post_refund(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    purchase: Use,
    amount_fen: Fen,
    posted_on: date,
) -> Refund:
    book = fetch_line_books(conn, [line.credit_line_id], caches.accounts)[line.credit_line_id]
    use = OpenUse(
        purchase.id,
        purchase.product_node_id,
        purchase.channel_id,
        purchase.principal_open_fen,
        purchase.customer_id,
    )
    order, cap_fen = _refund_target(conn, book, purchase)
    principal_fen = Fen(min(amount_fen, use.principal_open_fen, cap_fen))
    reductions = [Reduction(use, principal_fen)] if principal_fen else []
    apply_reductions(conn, line, reductions, -1)
    lines, events = _refund_entries(
        conn, caches, line, book, purchase, amount_fen, principal_fen, order
    )
    refund_seq = _count_refunds(conn, purchase.id) + 1
    draft = BatchDraft(
        business_key=f"purchase_refund:{purchase.id}:{refund_seq}",
        kind=BatchKind.PURCHASE_REFUND,
        as_of=posted_on,
        lines=tuple(lines),
        credit_line_id=line.credit_line_id,
        events=tuple(events),
        customer_id=line.customer_ref,
    )
    batch_id = post_batch(conn, draft, caches.accounts)
    book.apply(draft.lines)
    record_reductions(conn, batch_id, reductions)
    unbilled_fen = Fen(book.normal_fen(AccountType.PRINCIPAL_UNBILLED))
    reduce_refunded_plan(
        conn,
        caches.products,
        line.credit_line_id,
        purchase.id,
        principal_fen,
        unbilled_fen,
        posted_on,
    )
    if amount_fen > principal_fen:
        apply_customer_credit(
            conn,
            caches,
            line,
            book,
            posted_on,
            f"purchase_refund:{purchase.id}:{refund_seq}:credit",
        )
    table = purchase_table
    conn.execute(
        update(table)
        .where(table.c.id == purchase.id)
        .values(refunded_fen=table.c.refunded_fen + amount_fen)
    )
    write_usage(conn, line.nodes)
    refund_id = conn.execute(
        purchase_refund_table.insert()
        .values(
            purchase_id=purchase.id,
            credit_line_id=line.credit_line_id,
            batch_id=batch_id,
            amount_fen=amount_fen,
            principal_fen=principal_fen,
            credit_fen=amount_fen - principal_fen,
            as_of=posted_on,
            customer_id=purchase.customer_id,
        )
        .returning(purchase_refund_table.c.id)
    ).scalar_one()
    return Refund(
        refund_id=int(refund_id),
        purchase_id=purchase.id,
        credit_line_id=line.credit_line_id,
        amount_fen=amount_fen,
        principal_fen=principal_fen,
        customer_credit_fen=Fen(amount_fen - principal_fen),
        as_of=posted_on,
        purchase_refunded_fen=Fen(purchase.refunded_fen + amount_fen),
        purchase_principal_open_fen=Fen(use.principal_open_fen - principal_fen),
    )


def _refund_target(
    conn: Connection, book: LineBook, purchase: Use
) -> tuple[tuple[AccountType, ...], Fen]:
    """The principal buckets a refund of `purchase` reduces, in order, and the most it may
    take off them (the rest of the refund is customer credit); see the module docstring.

    The purchase's bill is the line's first bill cut on or after its date; it is
    converted if a plan (not cancelled) took its principal, and decided once it has an
    outcome at its due date."""
    plans, bills, outcomes = installment_plan_table, bill_table, bill_outcome_table
    unbilled = (REFUND_BUCKET_ORDER, purchase.principal_open_fen)
    live_plan = plans.c.status != "cancelled"
    converted = conn.execute(
        select(plans.c.id).where((plans.c.purchase_id == purchase.id) & live_plan)
    ).first()
    if converted is not None:
        return unbilled
    bill = conn.execute(
        select(bills.c.id, outcomes.c.paid_in_full)
        .outerjoin(outcomes, outcomes.c.bill_id == bills.c.id)
        .where(
            (bills.c.credit_line_id == purchase.credit_line_id)
            & (bills.c.bill_date >= purchase.as_of)
        )
        .order_by(bills.c.bill_date)
        .limit(1)
    ).first()
    if bill is None:
        return unbilled
    bill_converted = conn.execute(
        select(plans.c.id).where((plans.c.bill_id == bill.id) & live_plan)
    ).first()
    if bill_converted is not None:
        return unbilled
    if bill.paid_in_full:
        return BILLED_REFUND_ORDER, FEN_ZERO
    order = BILLED_REFUND_ORDER if bill.paid_in_full is None else PAST_DUE_REFUND_ORDER
    return order, Fen(sum(book.normal_fen(kind) for kind in order))


def _refund_entries(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    purchase: Use,
    amount_fen: Fen,
    principal_fen: Fen,
    order: tuple[AccountType, ...],
) -> tuple[list[PostingLine], list[SettlementEventDraft]]:
    line_id = line.credit_line_id
    product = (purchase.product_code, purchase.product_version)
    lines = [PostingLine(CLEARING, amount_fen)]
    lines += principal_bucket_lines(book, principal_fen, order)
    if amount_fen > principal_fen:
        credit = line_account_code(line_id, AccountType.CUSTOMER_CREDIT)
        lines.append(PostingLine(credit, -(amount_fen - principal_fen)))
    events = [
        SettlementEventDraft(
            EventKind.MERCHANT_PAYABLE,
            -amount_fen,
            counterparty_ref=purchase.merchant_id,
            product_code=product[0],
            product_version=product[1],
        )
    ]
    terms = caches.products.get(conn, *product)
    before_fen = purchase.amount_fen - purchase.refunded_fen
    reversed_fen = compute_commission_fen(before_fen, terms.channel_commission_bps) - (
        compute_commission_fen(before_fen - amount_fen, terms.channel_commission_bps)
    )
    if reversed_fen:
        payable = partner_account_code(purchase.channel_id, AccountType.CHANNEL_COMMISSION_PAYABLE)
        lines += [
            PostingLine(payable, reversed_fen),
            PostingLine(node_account_code(AccountType.COMMISSION_EXPENSE), -reversed_fen),
        ]
        events.append(
            SettlementEventDraft(
                EventKind.CHANNEL_COMMISSION,
                -reversed_fen,
                partner_ref=purchase.channel_id,
                product_code=product[0],
                product_version=product[1],
            )
        )
    funding_lines, funding_events = funding_adjustment(
        book, line.product_nodes(), lambda node: caches.terms_of(conn, node), lines
    )
    return lines + funding_lines, events + funding_events


def _count_refunds(conn: Connection, purchase_id: int) -> int:
    table = purchase_refund_table
    return int(
        conn.execute(
            select(func.count()).select_from(table).where(table.c.purchase_id == purchase_id)
        ).scalar_one()
    )
