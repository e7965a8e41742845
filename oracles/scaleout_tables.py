"""The tables of running past one machine: every attempt of a relayed transaction, and
the leases that give each background worker one leader across nodes.

A submission (`relay_submission`) is one nonce of the relayer; each signed version of
it (the first, then every same-nonce replacement at higher fees) is an attempt here, so
whichever attempt the chain mines can be recognised and adopted. A lease row names the
node that runs a worker until `expires_at`; its `epoch` rises at every change of holder
and fences the writes of a holder that lost it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from node_api.kernel.outbox_table import BigId


class AttemptReason(StrEnum):
    """Why an attempt was signed: the first version of a nonce, or a replacement."""

    INITIAL = "initial"
    REPRICE = "reprice"


class RelayAttempt(SQLModel, table=True):
    """One signed version of a submission's transaction (same nonce, its own fees)."""

    __tablename__ = "relay_attempt"
    __table_args__ = (sa.Index("ix_relay_attempt_submission", "submission_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True))
    submission_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger,
            sa.ForeignKey("relay_submission.id", name="fk_relay_attempt_submission"),
            nullable=False,
        )
    )
    sender: str = Field(sa_column=sa.Column(sa.String(42), nullable=False))
    nonce: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    tx_hash: str = Field(sa_column=sa.Column(sa.String(66), nullable=False, unique=True))
    raw_tx: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    max_fee_per_gas_wei: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    max_priority_fee_per_gas_wei: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class WorkerLease(SQLModel, table=True):
    """Which node runs a background worker (`relayer`, `indexer`, `eod` ...) and until when."""

    __tablename__ = "worker_lease"

    name: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    holder: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    epoch: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


def _table(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


ATTEMPT_TABLE = _table(RelayAttempt)
LEASE_TABLE = _table(WorkerLease)
SCALEOUT_TABLES = (ATTEMPT_TABLE, LEASE_TABLE)
