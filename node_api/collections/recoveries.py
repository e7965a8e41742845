"""Recoveries: money collected from a borrower after the line was charged off or its
guarantor compensated it.

What a line can still recover is its guarantor's claim (`guarantor_claim`, left by a
compensation) plus, once it is charged off, what is written off (`written_off`, net of
earlier recoveries and of a sale's price). A recovery pays the guarantor back first, up
to its claim; the rest, on a charged-off line only, is shared by the funders' funded
shares. A line neither charged off nor compensated takes repayments, not recoveries, and
a sold line takes neither (its buyer collects).

Postings (one `recovery` batch, business key `recovery:<line>:<seq>`), for an amount
`g + s` with `g` to the guarantor and `s` shared:

    Dr settlement_clearing  g      Cr subrogated_receivable  g   (the borrower paid it)
    Dr guarantor_claim      g      Cr settlement_clearing    g   (owed on to the guarantor)
    Dr settlement_clearing  s      Cr written_off            s   (the loss shrinks)

Settlement events: `recovery_to_guarantor` g (partner the guarantor), and `recovery` per
product for `s`, split over the line's products by the principal each wrote off (floor,
the remainder to the largest); settlement splits each product's part over its funding
split by largest remainder (`settlement.allocation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from node_api.collections.compensation import fetch_guarantor_claims
from node_api.collections.tables import debt_sale_line_table, recovery_table
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen, div_floor
from node_api.ledger.accounts import (
    AccountIdCache,
    AccountType,
    line_account_code,
    node_account_code,
    subrogation_specs,
)
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.schema import (
    ledger_account_table,
    posting_batch_table,
    settlement_event_table,
)
from node_api.ledger.settlement_events import (
    CHARGE_OFF_EVENT,
    BatchKind,
    CollectionsEventKind,
    ProductKey,
)
from node_api.lending.eod.state import fetch_line_states
from node_api.lending.lines import LockedLine, fetch_line, lock_line

CLEARING = node_account_code(AccountType.SETTLEMENT_CLEARING)


class RecoveryView(BaseModel):
    """A recovery as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    credit_line_id: int
    seq: int
    amount_fen: Fen
    guarantor_fen: Fen
    shared_fen: Fen
    guarantor_ref: str | None
    payment_ref: str | None
    as_of: date
    recorded_by: str


@dataclass(frozen=True, slots=True)
class Recoverable:
    """What a line can still recover, and from whom it is owed."""

    credit_line_id: int
    charged_off_on: date | None
    sold: bool
    written_off_fen: Fen
    """Written off and not yet recovered or sold (zero unless charged off)."""
    claims_fen: dict[str, Fen]
    """Each compensating guarantor's claim still open."""

    @property
    def total_fen(self) -> int:
        if self.sold:
            return 0
        shared = self.written_off_fen if self.charged_off_on is not None else 0
        return shared + sum(self.claims_fen.values())


def fetch_written_off_fen(conn: Connection, line_id: int) -> Fen:
    """The line's written-off balance, net of recoveries and sales."""
    accounts = ledger_account_table
    value = conn.execute(
        select(accounts.c.balance_fen * accounts.c.normal_sign).where(
            accounts.c.code == line_account_code(line_id, AccountType.WRITTEN_OFF)
        )
    ).scalar_one_or_none()
    return Fen(int(value or 0))


def fetch_recoverable(conn: Connection, line_id: int) -> Recoverable:
    """What the line can still recover (module docstring)."""
    state = fetch_line_states(conn, [line_id]).get(line_id)
    sold = conn.execute(
        select(debt_sale_line_table.c.sale_id).where(
            debt_sale_line_table.c.credit_line_id == line_id
        )
    ).first()
    return Recoverable(
        credit_line_id=line_id,
        charged_off_on=state.charged_off_on if state is not None else None,
        sold=sold is not None,
        written_off_fen=fetch_written_off_fen(conn, line_id),
        claims_fen=fetch_guarantor_claims(conn, line_id),
    )


def fetch_written_off_weights(conn: Connection, line: LockedLine) -> list[tuple[ProductKey, int]]:
    """(product, principal it wrote off) of each of the line's products, by product;
    every product at weight zero when the line wrote no principal off. The events are
    found through their line's batches (both by index: `settlement_event` has none on its
    line, which would cost every purchase three more index entries)."""
    events, batches = settlement_event_table, posting_batch_table
    written = {
        (str(code), int(version)): int(total)
        for code, version, total in conn.execute(
            select(events.c.product_code, events.c.product_version, func.sum(events.c.amount_fen))
            .join(batches, batches.c.id == events.c.batch_id)
            .where(
                (batches.c.credit_line_id == line.credit_line_id)
                & (events.c.credit_line_id == line.credit_line_id)
                & (events.c.kind == CHARGE_OFF_EVENT)
            )
            .group_by(events.c.product_code, events.c.product_version)
        )
    }
    keys = sorted(
        {
            (node.product_code, node.product_version)
            for node in line.product_nodes()
            if node.product_code is not None and node.product_version is not None
        }
        | set(written)
    )
    return [(key, max(written.get(key, 0), 0)) for key in keys]


def split_over_products(
    amount_fen: Fen, weights: Sequence[tuple[ProductKey, int]]
) -> list[tuple[ProductKey, Fen]]:
    """`amount_fen` by weight: floor per product, the remainder to the heaviest (the first
    of equals); all weights zero counts as equal weights. Zero parts are left out."""
    values = [weight for _, weight in weights]
    if sum(values) == 0:
        values = [1] * len(weights)
    total = sum(values)
    parts = [div_floor(amount_fen * value, total) for value in values]
    parts[values.index(max(values))] += amount_fen - sum(parts)
    return [(key, Fen(part)) for (key, _), part in zip(weights, parts, strict=True) if part]


def _next_seq(conn: Connection, line_id: int) -> int:
    table = recovery_table
    highest = conn.execute(
        select(func.max(table.c.seq)).where(table.c.credit_line_id == line_id)
    ).scalar_one_or_none()
    return 1 if highest is None else int(highest) + 1


def _check(recoverable: Recoverable, amount_fen: Fen) -> None:
    if recoverable.sold:
        raise ConflictError(
            "the line was sold: its buyer collects it", field="credit_line_id", code="line_sold"
        )
    if recoverable.charged_off_on is None and not recoverable.claims_fen:
        raise ConflictError(
            "the line is neither charged off nor compensated: take a repayment",
            field="credit_line_id",
            code="not_recoverable",
        )
    if amount_fen > recoverable.total_fen:
        raise CreditNetValueError(
            f"the line can recover at most {recoverable.total_fen} fen",
            field="amount_fen",
            recoverable_fen=recoverable.total_fen,
        )


def record_recovery(
    conn: Connection,
    accounts: AccountIdCache,
    *,
    line_id: int,
    amount_fen: Fen,
    as_of: date,
    payment_ref: str | None,
    by: str,
) -> RecoveryView:
    """Post money collected on a charged-off or compensated line (module docstring).
    Refused, changing nothing, when the line cannot recover that much."""
    if amount_fen <= 0:
        raise CreditNetValueError("the amount must be positive", field="amount_fen")
    line = lock_line(conn, line_id)
    if as_of < line.opened_on:
        raise CreditNetValueError("the line was not open on that date", field="as_of")
    recoverable = fetch_recoverable(conn, line_id)
    _check(recoverable, amount_fen)
    guarantor_ref = min(recoverable.claims_fen) if recoverable.claims_fen else None
    guarantor_fen = min(amount_fen, recoverable.claims_fen[guarantor_ref]) if guarantor_ref else 0
    shared_fen = Fen(amount_fen - guarantor_fen)
    lines: list[PostingLine] = []
    events: list[SettlementEventDraft] = []
    if guarantor_ref is not None and guarantor_fen:
        receivable, claim = subrogation_specs(line_id, line.customer_ref, guarantor_ref)
        lines += [
            PostingLine(CLEARING, guarantor_fen),
            PostingLine(receivable.code, -guarantor_fen),
            PostingLine(claim.code, guarantor_fen),
            PostingLine(CLEARING, -guarantor_fen),
        ]
        events.append(
            SettlementEventDraft(
                CollectionsEventKind.RECOVERY_TO_GUARANTOR, guarantor_fen, partner_ref=guarantor_ref
            )
        )
    if shared_fen:
        lines += [
            PostingLine(CLEARING, shared_fen),
            PostingLine(line_account_code(line_id, AccountType.WRITTEN_OFF), -shared_fen),
        ]
        events += [
            SettlementEventDraft(
                CollectionsEventKind.RECOVERY, part, product_code=key[0], product_version=key[1]
            )
            for key, part in split_over_products(shared_fen, fetch_written_off_weights(conn, line))
        ]
    seq = _next_seq(conn, line_id)
    batch_id = post_batch(
        conn,
        BatchDraft(
            business_key=f"recovery:{line_id}:{seq}",
            kind=BatchKind.RECOVERY,
            as_of=as_of,
            lines=tuple(lines),
            credit_line_id=line_id,
            customer_id=line.customer_ref,
            events=tuple(events),
        ),
        accounts,
    )
    values = {
        "credit_line_id": line_id,
        "seq": seq,
        "amount_fen": amount_fen,
        "guarantor_fen": guarantor_fen,
        "shared_fen": shared_fen,
        "guarantor_ref": guarantor_ref if guarantor_fen else None,
        "payment_ref": payment_ref,
        "batch_id": batch_id,
        "as_of": as_of,
        "recorded_by": by,
    }
    table = recovery_table
    new_id = conn.execute(
        insert(table).values(**values, customer_id=line.customer_ref).returning(table.c.id)
    ).scalar_one()
    values.pop("batch_id")
    return RecoveryView.model_validate({"id": int(new_id), **values})


def fetch_recoveries(conn: Connection, line_id: int) -> list[RecoveryView]:
    """A line's recoveries, oldest first; NotFoundError for a line that does not exist."""
    fetch_line(conn, line_id)
    table = recovery_table
    rows = conn.execute(
        select(table).where(table.c.credit_line_id == line_id).order_by(table.c.seq)
    ).mappings()
    return [
        RecoveryView.model_validate({key: value for key, value in row.items() if key != "batch_id"})
        for row in rows
    ]
