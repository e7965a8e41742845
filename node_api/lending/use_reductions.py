"""Taking principal off a line's uses and putting it back.

Each use keeps its own open principal so limit usage can be restored at the right
levels (its product, and its channel sub-limit if any) when principal is repaid or
refunded. A repayment of principal reduces uses oldest first (business date, then id);
every reduction is recorded against the posting batch that made it, so reversing that
batch puts the principal back on exactly the same uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.money import Fen
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.sql import bulk_update
from node_api.lending.core.books import LineBook
from node_api.lending.core.context import LendingCaches
from node_api.lending.core.entries import funding_adjustment
from node_api.lending.limits import LimitNode, apply_usage, select_use_path
from node_api.lending.lines import LockedLine
from node_api.lending.purchase_tables import principal_reduction_table, purchase_table


@dataclass(frozen=True, slots=True)
class OpenUse:
    """A use's open principal and where its limit usage sits."""

    purchase_id: int
    product_node_id: int
    channel_id: str
    principal_open_fen: Fen
    customer_id: str | None
    """The use's customer (its `purchase` row's), which its reductions carry."""


@dataclass(frozen=True, slots=True)
class Reduction:
    use: OpenUse
    amount_fen: Fen


def compute_fifo_reductions(uses: Sequence[OpenUse], amount_fen: int) -> list[Reduction]:
    """Take `amount_fen` off `uses` in the order given (oldest first)."""
    reductions = []
    remaining_fen = amount_fen
    for use in uses:
        if remaining_fen == 0:
            break
        take_fen = Fen(min(use.principal_open_fen, remaining_fen))
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
        select(
            table.c.id,
            table.c.product_node_id,
            table.c.channel_id,
            table.c.principal_open_fen,
            table.c.customer_id,
        )
        .where((table.c.credit_line_id == line_id) & (table.c.principal_open_fen > 0))
        .order_by(table.c.as_of, table.c.id)
    )
    return [OpenUse(int(r[0]), int(r[1]), str(r[2]), Fen(int(r[3])), r[4]) for r in rows]


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
                {
                    "batch_id": batch_id,
                    "purchase_id": r.use.purchase_id,
                    "amount_fen": r.amount_fen,
                    "customer_id": r.use.customer_id,
                }
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
            uses.c.customer_id,
            reductions.c.amount_fen,
        )
        .join(uses, uses.c.id == reductions.c.purchase_id)
        .where(reductions.c.batch_id == batch_id)
        .order_by(reductions.c.id)
    )
    return [
        Reduction(OpenUse(int(r[0]), int(r[1]), str(r[2]), Fen(int(r[3])), r[4]), Fen(int(r[5])))
        for r in rows
    ]


def post_line_batch(
    conn: Connection,
    caches: LendingCaches,
    line: LockedLine,
    book: LineBook,
    *,
    business_key: str,
    kind: str,
    as_of: date,
    lines: list[PostingLine],
    events: list[SettlementEventDraft],
    principal_fen: Fen,
) -> int:
    """Post a batch that repays `principal_fen` of a line's principal: its open uses
    reduced oldest first (limits given back) and the reductions recorded against the
    batch, with the funding partners' shares of the movement (`funding_adjustment`) and
    `book` advanced. Returns the batch id."""
    reductions = compute_fifo_reductions(fetch_open_uses(conn, line.credit_line_id), principal_fen)
    apply_reductions(conn, line, reductions, -1)
    funding_lines, funding_events = funding_adjustment(
        book, line.product_nodes(), lambda node: caches.terms_of(conn, node), lines
    )
    draft = BatchDraft(
        business_key=business_key,
        kind=kind,
        as_of=as_of,
        lines=tuple(lines + funding_lines),
        credit_line_id=line.credit_line_id,
        events=tuple(events + funding_events),
        customer_id=line.customer_ref,
    )
    batch_id = post_batch(conn, draft, caches.accounts)
    book.apply(draft.lines)
    record_reductions(conn, batch_id, reductions)
    return batch_id
