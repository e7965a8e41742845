"""The outbox table: business changes waiting for the chain, written with the change.

It lives in the kernel because every domain package writes to it (inside its own
transaction) while only the oracles read it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    payload: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
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
