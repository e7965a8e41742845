"""Where events come from: tables the books already write in their own transactions.

Each source reads rows above a cursor in id order and turns each into an event, or into
None when the row is not an event of schema 1 (an accrual batch, a partner
registration): the cursor passes those too. Nothing here is written on a request's
path; the publisher reads after the fact.

| source | table | events |
|---|---|---|
| `ledger` | `posting_batch` | purchase, refund, drawdown, repayment and its reversal, charge-off |
| `bills` | `bill` | bill cut |
| `outbox` | `outbox` | agreement opened (its `agreement_open` row, written with the agreement) |
| `chain` | `chain_event` (the indexer's) | agreement anchored, cycle proposed, finalized, funded |

Chain events are keyed by what they are about (`cycle.funded:20260105`), not by block,
so an event stored again after a reorg keeps its id and the stream drops the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import sqlalchemy as sa

from node_api.events.schema import BusinessEvent, EventType
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.ledger.schema import posting_batch_table, posting_table
from node_api.ledger.settlement_events import BatchKind, EodStep
from node_api.lending.bill_tables import bill_table
from oracles.tables import EVENT_TABLE

BATCH_EVENTS: Final = {
    BatchKind.PURCHASE: EventType.PURCHASE_AUTHORIZED,
    BatchKind.PURCHASE_REFUND: EventType.PURCHASE_REFUNDED,
    BatchKind.CASH_DRAWDOWN: EventType.DRAWDOWN_POSTED,
    BatchKind.REPAYMENT: EventType.REPAYMENT_POSTED,
    BatchKind.REPAYMENT_REVERSAL: EventType.REPAYMENT_REVERSED,
    f"eod_{EodStep.CHARGE_OFF}": EventType.LINE_CHARGED_OFF,
}
CHAIN_EVENTS: Final = {
    "AgreementOpened": EventType.AGREEMENT_ANCHORED,
    "CycleProposed": EventType.CYCLE_PROPOSED,
    "CycleFinalized": EventType.CYCLE_FINALIZED,
    "CycleFullyFunded": EventType.CYCLE_FUNDED,
}

SourceRow = tuple[int, BusinessEvent | None]


@dataclass(frozen=True)
class Source:
    """A table read in id order, and how each of its rows becomes an event."""

    name: str
    fetch: Callable[[sa.Connection, int, int], list[SourceRow]]
    """(connection, after id, limit) -> rows above the id, in id order."""


def fetch_batches(conn: sa.Connection, after_id: int, limit: int) -> list[SourceRow]:
    batch = posting_batch_table
    rows = conn.execute(
        sa.select(
            batch.c.id,
            batch.c.kind,
            batch.c.as_of,
            batch.c.credit_line_id,
            batch.c.reverses_batch_id,
        )
        .where(batch.c.id > after_id)
        .order_by(batch.c.id)
        .limit(limit)
    ).all()
    wanted = [row.id for row in rows if row.kind in BATCH_EVENTS]
    posted = _sum_debits(conn, wanted)
    return [
        (
            int(row.id),
            BusinessEvent(
                id=f"batch:{row.id}",
                type=BATCH_EVENTS[row.kind],
                as_of=row.as_of,
                data={
                    "batch_id": int(row.id),
                    "credit_line_id": row.credit_line_id,
                    "posted_fen": posted.get(int(row.id), 0),
                    "reverses_batch_id": row.reverses_batch_id,
                },
            )
            if row.kind in BATCH_EVENTS
            else None,
        )
        for row in rows
    ]


def _sum_debits(conn: sa.Connection, batch_ids: Sequence[int]) -> dict[int, int]:
    """Per batch, the sum of its debit (positive) postings: what the batch moved."""
    if not batch_ids:
        return {}
    amount = posting_table.c.amount_fen
    rows = conn.execute(
        sa.select(
            posting_table.c.batch_id,
            sa.func.sum(sa.case((amount > 0, amount), else_=0)),
        )
        .where(posting_table.c.batch_id.in_(list(batch_ids)))
        .group_by(posting_table.c.batch_id)
    ).all()
    return {int(batch_id): int(total) for batch_id, total in rows}


def fetch_bills(conn: sa.Connection, after_id: int, limit: int) -> list[SourceRow]:
    bill = bill_table
    rows = conn.execute(
        sa.select(
            bill.c.id,
            bill.c.credit_line_id,
            bill.c.bill_date,
            bill.c.due_date,
            bill.c.statement_balance_fen,
            bill.c.minimum_payment_fen,
            bill.c.total_balance_fen,
            bill.c.days_past_due,
            bill.c.bucket,
        )
        .where(bill.c.id > after_id)
        .order_by(bill.c.id)
        .limit(limit)
    ).all()
    return [
        (
            int(row.id),
            BusinessEvent(
                id=f"bill:{row.id}",
                type=EventType.BILL_CUT,
                as_of=row.bill_date,
                data={
                    "bill_id": int(row.id),
                    "credit_line_id": int(row.credit_line_id),
                    "due_date": row.due_date.isoformat(),
                    "statement_balance_fen": int(row.statement_balance_fen),
                    "minimum_payment_fen": int(row.minimum_payment_fen),
                    "total_balance_fen": int(row.total_balance_fen),
                    "days_past_due": int(row.days_past_due),
                    "bucket": row.bucket,
                },
            ),
        )
        for row in rows
    ]


def fetch_outbox(conn: sa.Connection, after_id: int, limit: int) -> list[SourceRow]:
    outbox = OUTBOX_TABLE
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.kind, outbox.c.payload)
        .where(outbox.c.id > after_id)
        .order_by(outbox.c.id)
        .limit(limit)
    ).all()
    return [(int(row.id), _agreement_opened(row.kind, row.payload)) for row in rows]


def _agreement_opened(kind: str, payload: dict[str, Any]) -> BusinessEvent | None:
    if kind != OutboxKind.AGREEMENT_OPEN.value:
        return None
    return BusinessEvent(
        id=f"{EventType.AGREEMENT_OPENED.value}:{payload['agreement_id']}",
        type=EventType.AGREEMENT_OPENED,
        as_of=None,
        data={
            "agreement_id": payload["agreement_id"],
            "product_code": payload["product_code"],
            "limit_fen": payload["limit_fen"],
            "apr_bps": payload["apr_bps"],
            "opened_at": payload["opened_at"],
        },
    )


def fetch_chain_events(conn: sa.Connection, after_id: int, limit: int) -> list[SourceRow]:
    event = EVENT_TABLE
    rows = conn.execute(
        sa.select(event.c.id, event.c.event, event.c.args, event.c.block_number, event.c.tx_hash)
        .where(event.c.id > after_id)
        .order_by(event.c.id)
        .limit(limit)
    ).all()
    return [
        (int(row.id), _chain_event(row.event, row.args, int(row.block_number), row.tx_hash))
        for row in rows
    ]


def _chain_event(
    name: str, args: dict[str, Any], block_number: int, tx_hash: str
) -> BusinessEvent | None:
    event_type = CHAIN_EVENTS.get(name)
    if event_type is None:
        return None
    chain = {"block_number": block_number, "tx_hash": tx_hash}
    as_of = None
    if event_type is EventType.AGREEMENT_ANCHORED:
        key = str(args["agreementId"])
        data: dict[str, Any] = {"agreement_id": key, **chain}
    else:
        key = str(int(args["cycleId"]))
        as_of = compute_cycle_date(int(args["cycleId"]))
        data = {"cycle_id": int(args["cycleId"]), **chain}
        if "entriesRoot" in args:
            data["entries_root"] = args["entriesRoot"]
        if "entryCount" in args:
            data["entry_count"] = int(args["entryCount"])
        if "totalDueFen" in args:
            data["total_due_fen"] = int(args["totalDueFen"])
    return BusinessEvent(id=f"{event_type.value}:{key}", type=event_type, as_of=as_of, data=data)


SOURCES: Final = (
    Source("outbox", fetch_outbox),
    Source("ledger", fetch_batches),
    Source("bills", fetch_bills),
    Source("chain", fetch_chain_events),
)


def compute_cycle_date(cycle_id: int) -> date | None:
    """The business date of a cycle id (`attempt * 10**8 + yyyymmdd`), None if malformed."""
    yyyymmdd = cycle_id % 10**8
    try:
        return date(yyyymmdd // 10_000, yyyymmdd // 100 % 100, yyyymmdd % 100)
    except ValueError:
        return None
