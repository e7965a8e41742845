"""Uses of a line (purchases and cash drawdowns), their open principal, and refunds.

Each use keeps its own open principal so limit usage can be restored at the right
levels (its product, and its channel sub-limit if any) when principal is repaid or
refunded. A repayment of principal reduces uses oldest first (business date, then id);
every reduction is recorded against the posting batch that made it, so reversing that
batch puts the principal back on exactly the same uses.

A refund (full or partial, up to what is not refunded yet) gives the merchant's money
back to the line: it first reduces the purchase's open principal; whatever the customer
had already repaid of it becomes customer credit. Commission is reversed in proportion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.ledger.accounts import (
    AccountType,
    line_account_code,
    node_account_code,
    partner_account_code,
)
from node_api.ledger.business_date import fetch_business_date, resolve_as_of
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.schema import ID_TYPE
from node_api.ledger.sql import bulk_update
from node_api.lending.core.books import LineBook, fetch_line_books
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.entries import (
    CLEARING,
    BatchKind,
    EventKind,
    compute_commission_fen,
    funding_adjustment,
    principal_bucket_lines,
)
from node_api.lending.core.limits import LimitNode, apply_usage, select_use_path
from node_api.lending.lines import LineStatus, LockedLine, lock_line, write_usage

REFUND_BUCKET_ORDER = (
    AccountType.PRINCIPAL_UNBILLED,
    AccountType.PRINCIPAL_BILLED,
    AccountType.PRINCIPAL_PAST_DUE,
)
"""A refund takes principal off the least-aged bucket first."""

purchase_table = Table(
    "purchase",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "credit_line_id",
        BigInteger,
        ForeignKey("credit_line.id", name="fk_purchase_line"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("product_node_id", BigInteger, nullable=False),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("merchant_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False, server_default="0"),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("principal_open_fen", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND fee_fen >= 0 AND refunded_fen >= 0 AND refunded_fen <= amount_fen"
        " AND principal_open_fen >= 0 AND principal_open_fen <= amount_fen",
        name="ck_purchase_amounts",
    ),
    Index("ix_purchase_line_fifo", "credit_line_id", "as_of", "id"),
)

purchase_refund_table = Table(
    "purchase_refund",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column(
        "purchase_id",
        BigInteger,
        ForeignKey("purchase.id", name="fk_purchase_refund_purchase"),
        nullable=False,
        index=True,
    ),
    Column("credit_line_id", BigInteger, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("credit_fen", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint(
        "amount_fen > 0 AND principal_fen >= 0 AND credit_fen >= 0"
        " AND principal_fen + credit_fen = amount_fen",
        name="ck_purchase_refund_amounts",
    ),
)

principal_reduction_table = Table(
    "principal_reduction",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("batch_id", BigInteger, nullable=False, index=True),
    Column(
        "purchase_id",
        BigInteger,
        ForeignKey("purchase.id", name="fk_principal_reduction_purchase"),
        nullable=False,
    ),
    Column("amount_fen", BigInteger, nullable=False),
    CheckConstraint("amount_fen > 0", name="ck_principal_reduction_positive"),
)


@dataclass(frozen=True, slots=True)
class OpenUse:
    """A use's open principal and where its limit usage sits."""

    purchase_id: int
    product_node_id: int
    channel_id: str
    principal_open_fen: int


@dataclass(frozen=True, slots=True)
class Reduction:
    use: OpenUse
    amount_fen: int


def compute_fifo_reductions(uses: Sequence[OpenUse], amount_fen: int) -> list[Reduction]:
    """Take `amount_fen` off `uses` in the order given (oldest first)."""
    reductions = []
    remaining_fen = amount_fen
    for use in uses:
        if remaining_fen == 0:
            break
        take_fen = min(use.principal_open_fen, remaining_fen)
        if take_fen > 0:
            reductions.append(Reduction(use, take_fen))
            remaining_fen -= take_fen
    if remaining_fen:
        raise AssertionError("open uses hold less principal than the line's principal accounts")
    return reductions


def fetch_open_uses(conn: Connection, line_id: int) -> list[OpenUse]:
    """The line's uses with open principal, oldest first (call with the line locked)."""
    table = purchase_table
    rows = conn.execute(
        select(table.c.id, table.c.product_node_id, table.c.channel_id, table.c.principal_open_fen)
        .where((table.c.credit_line_id == line_id) & (table.c.principal_open_fen > 0))
        .order_by(table.c.as_of, table.c.id)
    )
    return [OpenUse(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]


def use_path(line: LockedLine, use: OpenUse) -> list[LimitNode]:
    """The limit nodes a use reserved on."""
    product_node = next(node for node in line.nodes if node.node_id == use.product_node_id)
    return select_use_path(line.nodes, product_node, use.channel_id)


def apply_reductions(
    conn: Connection, line: LockedLine, reductions: Sequence[Reduction], sign: int
) -> None:
    """Take (sign −1) or put back (sign +1) principal on uses, and the matching limit
    usage on the line's nodes in memory (the caller stores them with `write_usage`)."""
    if not reductions:
        return
    rows = [
        {"id": item.use.purchase_id, "principal_open_fen": sign * item.amount_fen}
        for item in sorted(reductions, key=lambda item: item.use.purchase_id)
    ]
    bulk_update(conn, purchase_table, rows, keys=("id",), increment=("principal_open_fen",))
    for item in reductions:
        apply_usage(use_path(line, item.use), sign * item.amount_fen)


def record_reductions(conn: Connection, batch_id: int, reductions: Sequence[Reduction]) -> None:
    if reductions:
        conn.execute(
            principal_reduction_table.insert(),
            [
                {"batch_id": batch_id, "purchase_id": r.use.purchase_id, "amount_fen": r.amount_fen}
                for r in reductions
            ],
        )


def fetch_reductions(conn: Connection, batch_id: int) -> list[Reduction]:
    """The principal reductions a batch made, to undo them when it is reversed."""
    reductions, uses = principal_reduction_table, purchase_table
    rows = conn.execute(
        select(
            uses.c.id,
            uses.c.product_node_id,
            uses.c.channel_id,
            uses.c.principal_open_fen,
            reductions.c.amount_fen,
        )
        .join(uses, uses.c.id == reductions.c.purchase_id)
        .where(reductions.c.batch_id == batch_id)
        .order_by(reductions.c.id)
    )
    return [Reduction(OpenUse(int(r[0]), int(r[1]), str(r[2]), int(r[3])), int(r[4])) for r in rows]


def fetch_use(conn: Connection, line_id: int, purchase_id: int) -> dict[str, Any]:
    """One use of a line as a dict of its columns; NotFoundError if not on this line."""
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
    return dict(row)


def refund_purchase(
    conn: Connection,
    caches: LendingCaches,
    *,
    line_id: int,
    purchase_id: int,
    amount_fen: int | None,
    as_of: date | None,
) -> dict[str, Any]:
    """Refund all (`amount_fen` None) or part of a purchase; return the refund's view."""
    line = lock_line(conn, line_id)
    purchase = fetch_use(conn, line_id, purchase_id)
    if purchase["kind"] != "purchase":
        raise CreditNetValueError("only purchases can be refunded", field="purchase_id")
    posted_on = resolve_as_of(as_of, fetch_business_date(conn))
    if posted_on < purchase["as_of"]:
        raise CreditNetValueError("a refund cannot predate its purchase", field="as_of")
    refundable_fen = purchase["amount_fen"] - purchase["refunded_fen"]
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
    purchase: dict[str, Any],
    amount_fen: int,
    posted_on: date,
) -> dict[str, Any]:
    book = fetch_line_books(conn, [line.credit_line_id], caches.accounts)[line.credit_line_id]
    use = OpenUse(
        purchase["id"],
        purchase["product_node_id"],
        purchase["channel_id"],
        purchase["principal_open_fen"],
    )
    principal_fen = min(amount_fen, use.principal_open_fen)
    reductions = [Reduction(use, principal_fen)] if principal_fen else []
    apply_reductions(conn, line, reductions, -1)
    lines, events = _refund_entries(conn, caches, line, book, purchase, amount_fen, principal_fen)
    refund_seq = _count_refunds(conn, purchase["id"]) + 1
    draft = BatchDraft(
        business_key=f"purchase_refund:{purchase['id']}:{refund_seq}",
        kind=BatchKind.PURCHASE_REFUND,
        as_of=posted_on,
        lines=tuple(lines),
        credit_line_id=line.credit_line_id,
        events=tuple(events),
    )
    batch_id = post_batch(conn, draft, caches.accounts)
    record_reductions(conn, batch_id, reductions)
    table = purchase_table
    conn.execute(
        update(table)
        .where(table.c.id == purchase["id"])
        .values(refunded_fen=table.c.refunded_fen + amount_fen)
    )
    write_usage(conn, line.nodes)
    refund_id = conn.execute(
        purchase_refund_table.insert()
        .values(
            purchase_id=purchase["id"],
            credit_line_id=line.credit_line_id,
            batch_id=batch_id,
            amount_fen=amount_fen,
            principal_fen=principal_fen,
            credit_fen=amount_fen - principal_fen,
            as_of=posted_on,
        )
        .returning(purchase_refund_table.c.id)
    ).scalar_one()
    return {
        "refund_id": int(refund_id),
        "purchase_id": purchase["id"],
        "credit_line_id": line.credit_line_id,
        "amount_fen": amount_fen,
        "principal_fen": principal_fen,
        "customer_credit_fen": amount_fen - principal_fen,
        "as_of": posted_on.isoformat(),
        "purchase_refunded_fen": purchase["refunded_fen"] + amount_fen,
        "purchase_principal_open_fen": use.principal_open_fen - principal_fen,
    }


def _refund_entries(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    purchase: dict[str, Any],
    amount_fen: int,
    principal_fen: int,
) -> tuple[list[PostingLine], list[SettlementEventDraft]]:
    line_id = line.credit_line_id
    product = (purchase["product_code"], purchase["product_version"])
    lines = [PostingLine(CLEARING, amount_fen)]
    lines += principal_bucket_lines(book, principal_fen, REFUND_BUCKET_ORDER)
    if amount_fen > principal_fen:
        credit = line_account_code(line_id, AccountType.CUSTOMER_CREDIT)
        lines.append(PostingLine(credit, -(amount_fen - principal_fen)))
    events = [
        SettlementEventDraft(
            EventKind.MERCHANT_PAYABLE,
            -amount_fen,
            counterparty_ref=purchase["merchant_id"],
            product_code=product[0],
            product_version=product[1],
        )
    ]
    terms = caches.products.get(conn, *product)
    before_fen = purchase["amount_fen"] - purchase["refunded_fen"]
    reversed_fen = compute_commission_fen(before_fen, terms.channel_commission_bps) - (
        compute_commission_fen(before_fen - amount_fen, terms.channel_commission_bps)
    )
    if reversed_fen:
        payable = partner_account_code(
            purchase["channel_id"], AccountType.CHANNEL_COMMISSION_PAYABLE
        )
        lines += [
            PostingLine(payable, reversed_fen),
            PostingLine(node_account_code(AccountType.COMMISSION_EXPENSE), -reversed_fen),
        ]
        events.append(
            SettlementEventDraft(
                EventKind.CHANNEL_COMMISSION,
                -reversed_fen,
                partner_ref=purchase["channel_id"],
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
