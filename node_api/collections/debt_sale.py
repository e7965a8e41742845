"""Sale of charged-off debt to a collection agency: a priced portfolio transfer.

The agency (`buyer_ref`, a registered settlement partner other than the lender) buys
charged-off lines for one price. Each line's face value is what it still has written off
(net of recoveries); a line sold, not charged off, holding an open guarantor claim (the
guarantor is paid back first, so its claim must be recovered before the line can be sold)
or with nothing written off is refused, and so is a price above the face value. The price
is split over the lines by face value, largest remainder (the first line among equals).

Each line's part posts `Dr settlement_clearing / Cr written_off` (a `debt_sale` batch,
business key `debt_sale:<sale>:<line>`) with a `debt_sale_proceeds` event per product (the
line's products weighted as for a recovery) naming the buyer: in the next settlement cycle
the agency pays the lender the price and the lender shares it by the funders' funded
shares (DEBT_SALE entries). What stays written off is the final loss. A sold line takes no
more recoveries: its buyer collects.

On-chain: each sold line's agreement moves ChargedOff -> Closed with reason
`REASON_DEBT_SOLD`, through the outbox in the sale's transaction (`agreement_change`);
the price is proven to the funders by the sale's settlement entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from node_api.collections.agreements import REASON_DEBT_SOLD, enqueue_status_change
from node_api.collections.recoveries import (
    CLEARING,
    fetch_recoverable,
    fetch_written_off_weights,
    split_over_products,
)
from node_api.collections.tables import debt_sale_line_table, debt_sale_table
from node_api.kernel.chain import AgreementStatus, PartnerRole
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen, div_floor
from node_api.ledger.accounts import AccountIdCache, AccountType, line_account_code
from node_api.ledger.postings import BatchDraft, PostingLine, SettlementEventDraft, post_batch
from node_api.ledger.settlement_events import BatchKind, CollectionsEventKind
from node_api.lending.lines import LockedLine, lock_line

_partner = sa.table(
    "settlement_partner", sa.column("ref", sa.String), sa.column("role", sa.SmallInteger)
)


class SoldLineView(BaseModel):
    model_config = ConfigDict(frozen=True)

    credit_line_id: int
    face_fen: Fen
    price_fen: Fen


class DebtSaleView(BaseModel):
    """A sale of charged-off debt (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    buyer_ref: str
    face_fen: Fen
    price_fen: Fen
    as_of: date
    recorded_by: str
    lines: list[SoldLineView]


def split_by_face(price_fen: Fen, faces: Sequence[tuple[int, int]]) -> dict[int, Fen]:
    """`price_fen` over (line id, face) by face value: floor each, then one fen each to the
    largest remainders (the first listed among equals). The parts sum to the price."""
    total = sum(face for _, face in faces)
    parts: dict[int, Fen] = {}
    remainders: list[tuple[int, int, int]] = []
    for position, (line_id, face) in enumerate(faces):
        exact = price_fen * face
        parts[line_id] = Fen(div_floor(exact, total))
        remainders.append((-(exact - parts[line_id] * total), position, line_id))
    for _, _, line_id in sorted(remainders)[: price_fen - sum(parts.values())]:
        parts[line_id] = Fen(parts[line_id] + 1)
    return parts


def _check_buyer(conn: Connection, buyer_ref: str) -> None:
    role = conn.execute(
        select(_partner.c.role).where(_partner.c.ref == buyer_ref)
    ).scalar_one_or_none()
    if role is None or int(role) == PartnerRole.LENDER:
        raise CreditNetValueError(
            "the buyer must be a registered settlement partner other than the lender",
            field="buyer_ref",
        )


def _face_of(conn: Connection, line_id: int) -> int:
    """The line's face value; ConflictError when it cannot be sold."""
    recoverable = fetch_recoverable(conn, line_id)
    refusal = None
    if recoverable.sold:
        refusal = ("line_sold", "was sold already")
    elif recoverable.charged_off_on is None:
        refusal = ("not_charged_off", "is not charged off")
    elif recoverable.claims_fen:
        refusal = ("guarantor_claim_open", "owes its guarantor first")
    elif recoverable.written_off_fen <= 0:
        refusal = ("nothing_to_sell", "has nothing written off")
    if refusal is not None:
        raise ConflictError(
            f"credit line {line_id} {refusal[1]}",
            field="credit_line_ids",
            code=refusal[0],
            credit_line_id=line_id,
        )
    return recoverable.written_off_fen


def sell_debt(
    conn: Connection,
    accounts: AccountIdCache,
    *,
    buyer_ref: str,
    line_ids: Sequence[int],
    price_fen: Fen,
    as_of: date,
    by: str,
) -> DebtSaleView:
    """Sell the lines to the buyer at the price (module docstring); refused, changing
    nothing, when any line cannot be sold or the price exceeds the face value."""
    if price_fen <= 0:
        raise CreditNetValueError("the price must be positive", field="price_fen")
    ordered = sorted(set(line_ids))
    if len(ordered) != len(line_ids):
        raise CreditNetValueError("a line is listed twice", field="credit_line_ids")
    _check_buyer(conn, buyer_ref)
    locked: dict[int, LockedLine] = {line_id: lock_line(conn, line_id) for line_id in ordered}
    faces = [(line_id, _face_of(conn, line_id)) for line_id in ordered]
    face_fen = sum(face for _, face in faces)
    if price_fen > face_fen:
        raise CreditNetValueError(
            f"the price exceeds the portfolio's face value of {face_fen} fen",
            field="price_fen",
            face_fen=face_fen,
        )
    sale = debt_sale_table
    sale_values = {
        "buyer_ref": buyer_ref,
        "face_fen": face_fen,
        "price_fen": price_fen,
        "as_of": as_of,
        "recorded_by": by,
    }
    sale_id = int(
        conn.execute(insert(sale).values(**sale_values).returning(sale.c.id)).scalar_one()
    )
    parts = split_by_face(price_fen, faces)
    sold: list[SoldLineView] = []
    for line_id, face in faces:
        part = parts[line_id]
        batch_id = _post_sale(conn, accounts, locked[line_id], sale_id, buyer_ref, part, as_of)
        conn.execute(
            insert(debt_sale_line_table).values(
                sale_id=sale_id,
                credit_line_id=line_id,
                customer_id=locked[line_id].customer_ref,
                face_fen=face,
                price_fen=part,
                batch_id=batch_id,
            )
        )
        enqueue_status_change(conn, line_id, AgreementStatus.CLOSED, REASON_DEBT_SOLD)
        sold.append(SoldLineView(credit_line_id=line_id, face_fen=face, price_fen=part))
    return DebtSaleView(id=sale_id, lines=sold, **sale_values)


def _post_sale(
    conn: Connection,
    accounts: AccountIdCache,
    line: LockedLine,
    sale_id: int,
    buyer_ref: str,
    part_fen: Fen,
    as_of: date,
) -> int | None:
    if part_fen == 0:
        return None
    line_id = line.credit_line_id
    events = tuple(
        SettlementEventDraft(
            CollectionsEventKind.DEBT_SALE_PROCEEDS,
            amount_fen,
            partner_ref=buyer_ref,
            product_code=key[0],
            product_version=key[1],
        )
        for key, amount_fen in split_over_products(part_fen, fetch_written_off_weights(conn, line))
    )
    draft = BatchDraft(
        business_key=f"debt_sale:{sale_id}:{line_id}",
        kind=BatchKind.DEBT_SALE,
        as_of=as_of,
        lines=(
            PostingLine(CLEARING, part_fen),
            PostingLine(line_account_code(line_id, AccountType.WRITTEN_OFF), -part_fen),
        ),
        credit_line_id=line_id,
        customer_id=line.customer_ref,
        events=events,
    )
    return post_batch(conn, draft, accounts)


def fetch_debt_sales(conn: Connection) -> list[DebtSaleView]:
    """Every sale, newest first, with its lines by id."""
    sales, lines = debt_sale_table, debt_sale_line_table
    sold: dict[int, list[SoldLineView]] = {}
    for row in conn.execute(select(lines).order_by(lines.c.credit_line_id)).mappings():
        sold.setdefault(int(row["sale_id"]), []).append(SoldLineView.model_validate(dict(row)))
    return [
        DebtSaleView(lines=sold.get(int(row["id"]), []), **dict(row))
        for row in conn.execute(select(sales).order_by(sales.c.id.desc())).mappings()
    ]
