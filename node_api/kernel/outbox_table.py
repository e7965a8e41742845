"""The outbox table: business changes waiting for the chain, written with the change.

It lives in the kernel because every domain package writes to it (inside its own
transaction) while only the oracles read it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, NotRequired

import sqlalchemy as sa
from sqlmodel import Field, SQLModel
from typing_extensions import TypedDict

from node_api.kernel.money import Fen

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# The payloads' stored JSON formats (typing_extensions' TypedDict: pydantic, under SQLModel,
# needs it before Python 3.12). The rows already stored use them: never change a key.


class AgreementOpenPayload(TypedDict):
    """The stored JSON of an `agreement_open` row (ids and hashes as 0x-hex)."""

    agreement_id: str
    borrower_ref: str
    terms_hash: str
    product_code: int
    limit_fen: Fen
    apr_bps: int
    opened_at: int


class AgreementChangePayload(TypedDict):
    """The stored JSON of an `agreement_change` row: `new_limit_fen` when `change` is
    "limit", `new_status` when it is "status"."""

    agreement_id: str
    change_seq: int
    reason_code: int
    change: Literal["limit", "status"]
    new_limit_fen: NotRequired[Fen]
    new_status: NotRequired[int]


class LineStatePayload(TypedDict):
    """The stored JSON of a `line_state` row: a quorum-signed report (signatures 0x-hex,
    sorted by signer address)."""

    cycle_id: int
    root: str
    leaf_count: int
    total_outstanding_fen: Fen
    signatures: list[str]


class PartnerRegisterPayload(TypedDict):
    """The stored JSON of a `partner_register` row."""

    partner_id: int
    role: int
    payout: str


class CycleProposePayload(TypedDict):
    """The stored JSON of a `cycle_propose` row (root and signatures as 0x-hex)."""

    cycle_id: int
    entries_root: str
    entry_count: int
    partner_ids: list[int]
    net_positions_fen: list[Fen]
    signatures: list[str]


class CycleFinalizePayload(TypedDict):
    """The stored JSON of a `cycle_finalize` row."""

    cycle_id: int


class CyclePartnerPayload(TypedDict):
    """The stored JSON of a `cycle_claim` or `cycle_refund` row: one partner's position."""

    cycle_id: int
    partner_id: int


class CycleDefaultPayload(TypedDict):
    """The stored JSON of a `cycle_default` row: the debtors that did not fund, ascending."""

    cycle_id: int
    defaulters: list[int]


class CycleFundApprovePayload(TypedDict):
    """The stored JSON of a `cycle_fund_approve` row: the treasury lets `spender` (the
    ClearingHouse, 0x address) pull exactly `amount_fen` for the partner's debt."""

    cycle_id: int
    partner_id: int
    amount_fen: Fen
    spender: str


class CycleFundPayload(TypedDict):
    """The stored JSON of a `cycle_fund` row: pay a net debtor's `amount_fen` (> 0)."""

    cycle_id: int
    partner_id: int
    amount_fen: Fen


class NotificationPayload(TypedDict):
    """The stored JSON of a `notification` row: one message to a borrower or their
    emergency contact, rendered from an approved template. No personal data: the
    collections dispatcher resolves the recipient (`credit_line_id`, `party`) through the
    PII vault when it sends."""

    notification_id: int
    channel: str
    credit_line_id: int
    party: str
    template_code: str
    template_version: int
    body: str


OutboxPayload = (
    AgreementOpenPayload
    | AgreementChangePayload
    | LineStatePayload
    | PartnerRegisterPayload
    | CycleProposePayload
    | CycleFinalizePayload
    | CyclePartnerPayload
    | CycleDefaultPayload
    | CycleFundApprovePayload
    | CycleFundPayload
    | NotificationPayload
)
"""The JSON payload of an outbox row; its format is stored, so never change a key."""


class OutboxStatus(StrEnum):
    """pending -> sent (intended tx recorded) -> confirmed; parked when it cannot land."""

    PENDING = "pending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    PARKED = "parked"


class OutboxItem(SQLModel, table=True):
    """One business change that must reach the chain, keyed by its business key."""

    __tablename__ = "oracle_outbox"
    __table_args__ = (sa.Index("ix_oracle_outbox_kind_status_id", "kind", "status", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True))
    business_key: str = Field(sa_column=sa.Column(sa.String(160), nullable=False, unique=True))
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    payload: OutboxPayload = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    status: str = Field(
        default=OutboxStatus.PENDING.value, sa_column=sa.Column(sa.String(16), nullable=False)
    )
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    tx_hash: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(66), nullable=True, index=True)
    )
    """The transaction that carries the item (relay_submission.tx_hash), recorded before
    it is broadcast."""
    tx_nonce: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    block_number: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, nullable=True)
    )
    available_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime, nullable=True)
    )
    """Not before this time (a retry after a transient revert); None means now."""
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


OUTBOX_TABLE: sa.Table = OutboxItem.__table__  # type: ignore[attr-defined]
