"""The outbox: business changes that must reach the chain, written with the change itself.

A caller adds the outbox row inside the same database transaction as its business
change (`enqueue` on a SQLModel session, `enqueue_core` / `enqueue_async` on a Core
connection of the hot paths), so either both are stored or neither. Nothing here
talks to the chain: the relayer drains the rows later. Each row carries a business
key the chain also enforces (an agreement id, a cycle id ...), which is what makes
delivery exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Final, Protocol, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session, col, func, select

from node_api.kernel import outbox_table as payloads
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen
from node_api.kernel.outbox_table import (
    OUTBOX_TABLE,
    NotificationPayload,
    OutboxItem,
    OutboxPayload,
    OutboxStatus,
    PartnerRegisterPayload,
)

UINT16_MAX: Final = 2**16 - 1
UINT32_MAX: Final = 2**32 - 1
UINT64_MAX: Final = 2**64 - 1
INT64_MAX: Final = 2**63 - 1


class OutboxKind(StrEnum):
    """What an outbox row asks the chain to do (one contract function family each)."""

    PARTNER_REGISTER = "partner_register"
    AGREEMENT_OPEN = "agreement_open"
    AGREEMENT_CHANGE = "agreement_change"
    LINE_STATE = "line_state"
    CYCLE_PROPOSE = "cycle_propose"
    CYCLE_FINALIZE = "cycle_finalize"
    CYCLE_CLAIM = "cycle_claim"
    CYCLE_FUND_APPROVE = "cycle_fund_approve"
    CYCLE_FUND = "cycle_fund"
    CYCLE_DEFAULT = "cycle_default"
    CYCLE_REFUND = "cycle_refund"
    NOTIFICATION = "notification"
    """Not for the chain: a message to a borrower, sent by the collections dispatcher
    (`node_api.collections.dispatcher`). No relay kind serves it, so the relayer, which
    only takes the kinds of `oracles.relay_kinds.build_relay_kinds`, never picks it."""


class OutboxMessage(Protocol):
    """A business change for the chain: its kind, business key and JSON payload."""

    kind: ClassVar[OutboxKind]

    @property
    def business_key(self) -> str: ...

    def to_payload(self) -> OutboxPayload: ...


def get_utc_now() -> datetime:
    """Operational timestamp (naive UTC) for outbox bookkeeping, never business time."""
    return datetime.now(UTC).replace(tzinfo=None)


def _hex32(value: bytes, field: str) -> str:
    if len(value) != 32:
        raise CreditNetValueError(f"{field} must be 32 bytes", field=field)
    return "0x" + value.hex()


def _signatures(signatures: Sequence[bytes]) -> list[str]:
    """Quorum signatures as stored: 0x-hex, in the given (signer-address) order."""
    if not signatures:
        raise CreditNetValueError("a quorum report needs signatures", field="signatures")
    return ["0x" + signature.hex() for signature in signatures]


def _fen(value: int, field: str) -> Fen:
    """A non-negative amount that fits the contracts' int64 fen."""
    return Fen(_uint(value, INT64_MAX, field))


def _uint(value: int, maximum: int, field: str) -> int:
    if not 0 <= value <= maximum:
        raise CreditNetValueError(f"{field} is out of range", field=field)
    return value


@dataclass(frozen=True)
class AgreementOpening:
    """Open an agreement on the CreditRegistry (batched, up to 200 per transaction).

    `opened_at` is unix seconds of the opening business date (UTC midnight).
    """

    kind: ClassVar[OutboxKind] = OutboxKind.AGREEMENT_OPEN

    agreement_id: bytes
    borrower_ref: bytes
    terms_hash: bytes
    product_code: int
    limit_fen: int
    apr_bps: int
    opened_at: int

    @property
    def business_key(self) -> str:
        return f"agreement_open:0x{self.agreement_id.hex()}"

    def to_payload(self) -> payloads.AgreementOpenPayload:
        return {
            "agreement_id": _hex32(self.agreement_id, "agreement_id"),
            "borrower_ref": _hex32(self.borrower_ref, "borrower_ref"),
            "terms_hash": _hex32(self.terms_hash, "terms_hash"),
            "product_code": _uint(self.product_code, UINT32_MAX, "product_code"),
            "limit_fen": _fen(self.limit_fen, "limit_fen"),
            "apr_bps": _uint(self.apr_bps, UINT32_MAX, "apr_bps"),
            "opened_at": _uint(self.opened_at, UINT64_MAX, "opened_at"),
        }


@dataclass(frozen=True)
class AgreementChange:
    """A limit amendment (`new_limit_fen`) or a status change (`new_status`) of an agreement.

    `change_seq` numbers the agreement's changes from 1, limit and status changes
    together, exactly as the registry's `changeCount` does; it makes the business key
    and lets the relayer see on-chain whether the change already landed.
    """

    kind: ClassVar[OutboxKind] = OutboxKind.AGREEMENT_CHANGE

    agreement_id: bytes
    change_seq: int
    reason_code: int
    new_limit_fen: Fen | None = None
    new_status: int | None = None

    @property
    def business_key(self) -> str:
        return f"agreement_change:0x{self.agreement_id.hex()}:{self.change_seq}"

    def to_payload(self) -> payloads.AgreementChangePayload:
        if (self.new_limit_fen is None) == (self.new_status is None):
            raise CreditNetValueError(
                "give exactly one of new_limit_fen and new_status", field="new_status"
            )
        agreement_id = _hex32(self.agreement_id, "agreement_id")
        change_seq = _uint(self.change_seq, UINT32_MAX, "change_seq")
        reason_code = _uint(self.reason_code, UINT16_MAX, "reason_code")
        if self.new_limit_fen is not None:
            return {
                "agreement_id": agreement_id,
                "change_seq": change_seq,
                "reason_code": reason_code,
                "change": "limit",
                "new_limit_fen": _fen(self.new_limit_fen, "new_limit_fen"),
            }
        assert self.new_status is not None
        return {
            "agreement_id": agreement_id,
            "change_seq": change_seq,
            "reason_code": reason_code,
            "change": "status",
            "new_status": _uint(self.new_status, 255, "new_status"),
        }


@dataclass(frozen=True)
class _CycleMessage:
    """A message about one settlement cycle. Business key: `<kind>:<cycle>`."""

    kind: ClassVar[OutboxKind]

    cycle_id: int

    @property
    def business_key(self) -> str:
        return f"{self.kind.value}:{self.cycle_id}"

    def _cycle_id(self) -> int:
        return _uint(self.cycle_id, UINT64_MAX, "cycle_id")


@dataclass(frozen=True)
class _PositionMessage(_CycleMessage):
    """A message about one partner's position in one cycle. Business key:
    `<kind>:<cycle>:<partner>`."""

    partner_id: int

    @property
    def business_key(self) -> str:
        return f"{self.kind.value}:{self.cycle_id}:{self.partner_id}"

    def to_payload(self) -> payloads.CyclePartnerPayload:
        return {
            "cycle_id": self._cycle_id(),
            "partner_id": _uint(self.partner_id, UINT32_MAX, "partner_id"),
        }

    def _amount_fen(self, amount_fen: Fen) -> Fen:
        if amount_fen <= 0:
            raise CreditNetValueError("amount_fen must be positive", field="amount_fen")
        return _fen(amount_fen, "amount_fen")


@dataclass(frozen=True)
class LineStateCommitment(_CycleMessage):
    """Commit a cycle's credit-line state root on the CreditRegistry with a quorum report
    (signatures sorted by signer address; no role may commit one without it)."""

    kind: ClassVar[OutboxKind] = OutboxKind.LINE_STATE

    root: bytes
    leaf_count: int
    total_outstanding_fen: Fen
    signatures: Sequence[bytes]

    def to_payload(self) -> payloads.LineStatePayload:
        return {
            "cycle_id": self._cycle_id(),
            "root": _hex32(self.root, "root"),
            "leaf_count": _uint(self.leaf_count, UINT64_MAX, "leaf_count"),
            "total_outstanding_fen": _fen(self.total_outstanding_fen, "total_outstanding_fen"),
            "signatures": _signatures(self.signatures),
        }


@dataclass(frozen=True)
class PartnerRegistration:
    """Register a clearing partner (role 0 Lender, 1 Funder, 2 Channel, 3 Guarantor)."""

    kind: ClassVar[OutboxKind] = OutboxKind.PARTNER_REGISTER

    partner_id: int
    role: int
    payout: str

    @property
    def business_key(self) -> str:
        return f"partner:{self.partner_id}"

    def to_payload(self) -> PartnerRegisterPayload:
        if not (self.payout.startswith("0x") and len(self.payout) == 42):
            raise CreditNetValueError("payout must be a 0x address", field="payout")
        return {
            "partner_id": _uint(self.partner_id, UINT32_MAX, "partner_id"),
            "role": _uint(self.role, 3, "role"),
            "payout": self.payout,
        }


@dataclass(frozen=True)
class CycleProposal(_CycleMessage):
    """Propose a quorum-signed settlement cycle (signatures sorted by signer address)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_PROPOSE

    entries_root: bytes
    entry_count: int
    partner_ids: Sequence[int]
    net_positions_fen: Sequence[Fen]
    signatures: Sequence[bytes]

    def to_payload(self) -> payloads.CycleProposePayload:
        if len(self.partner_ids) != len(self.net_positions_fen):
            raise CreditNetValueError(
                "partner_ids and net_positions_fen differ in length", field="net_positions_fen"
            )
        return {
            "cycle_id": self._cycle_id(),
            "entries_root": _hex32(self.entries_root, "entries_root"),
            "entry_count": _uint(self.entry_count, UINT64_MAX, "entry_count"),
            "partner_ids": [_uint(p, UINT32_MAX, "partner_ids") for p in self.partner_ids],
            "net_positions_fen": [Fen(int(amount)) for amount in self.net_positions_fen],
            "signatures": _signatures(self.signatures),
        }


@dataclass(frozen=True)
class CycleFinalization(_CycleMessage):
    """Finalize a cycle; while its dispute window is open the relayer retries at the deadline."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_FINALIZE

    def to_payload(self) -> payloads.CycleFinalizePayload:
        return {"cycle_id": self._cycle_id()}


@dataclass(frozen=True)
class CycleClaim(_PositionMessage):
    """Pay a net creditor's position of a funded cycle to its payout address (anyone may
    trigger it)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_CLAIM


@dataclass(frozen=True)
class CycleRefund(_PositionMessage):
    """Return a funded debtor's deposit from a defaulted cycle to its payout address
    (anyone may trigger it)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_REFUND


@dataclass(frozen=True)
class CycleDefaultDeclaration(_CycleMessage):
    """Declare a finalized cycle defaulted after its funding deadline, naming every debtor
    that did not fund (ascending); anyone may, the lender's node does it as the watcher."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_DEFAULT

    defaulters: Sequence[int]

    def to_payload(self) -> payloads.CycleDefaultPayload:
        ids = [_uint(partner, UINT32_MAX, "defaulters") for partner in self.defaulters]
        if not ids or ids != sorted(set(ids)):
            raise CreditNetValueError(
                "defaulters must be distinct partner ids, ascending", field="defaulters"
            )
        return {"cycle_id": self._cycle_id(), "defaulters": ids}


@dataclass(frozen=True)
class CycleFundApproval(_PositionMessage):
    """The lender's treasury approves the ClearingHouse (`spender`) to pull exactly
    `amount_fen` for a debt it funds next (`CycleFunding` waits for it)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_FUND_APPROVE

    amount_fen: Fen
    spender: str

    def to_payload(self) -> payloads.CycleFundApprovePayload:  # type: ignore[override]
        if not (self.spender.startswith("0x") and len(self.spender) == 42):
            raise CreditNetValueError("spender must be a 0x address", field="spender")
        position = super().to_payload()
        return {
            **position,
            "amount_fen": self._amount_fen(self.amount_fen),
            "spender": self.spender,
        }


@dataclass(frozen=True)
class CycleFunding(_PositionMessage):
    """Pay a net debtor's position (`amount_fen` = -position) of a finalized cycle from the
    lender's treasury; sent from the treasury account after its `CycleFundApproval`."""

    kind: ClassVar[OutboxKind] = OutboxKind.CYCLE_FUND

    amount_fen: Fen

    def to_payload(self) -> payloads.CycleFundPayload:  # type: ignore[override]
        return {**super().to_payload(), "amount_fen": self._amount_fen(self.amount_fen)}


@dataclass(frozen=True)
class Notification:
    """A message (SMS, voice or app) to a borrower or their registered emergency contact,
    rendered from an approved template; one per contact attempt (`notification_id`).

    It goes to a contact provider, never to the chain (see `OutboxKind.NOTIFICATION`).
    The business key is also the provider's idempotency key, so a retried send never
    delivers twice. Nothing is converted on the way to the outbox, so the message is its
    stored JSON (`NotificationPayload`), checked when it is written.
    """

    kind: ClassVar[OutboxKind] = OutboxKind.NOTIFICATION

    payload: NotificationPayload

    @property
    def business_key(self) -> str:
        return f"notification:{self.payload['notification_id']}"

    def to_payload(self) -> NotificationPayload:
        payload = self.payload
        if not payload["body"]:
            raise CreditNetValueError("a notification needs a body", field="body")
        _uint(payload["notification_id"], INT64_MAX, "notification_id")
        _uint(payload["credit_line_id"], INT64_MAX, "credit_line_id")
        _uint(payload["template_version"], UINT32_MAX, "template_version")
        return NotificationPayload(**payload)


def enqueue(session: Session, message: OutboxMessage, *, now: datetime | None = None) -> OutboxItem:
    """Add `message` to the outbox in the caller's transaction (flushed, not committed).

    Enqueuing the same business key with the same payload again returns the existing
    row (a retried request); with a different payload it raises ConflictError, because
    the chain would refuse the second version anyway.
    """
    payload = message.to_payload()
    existing = session.exec(
        select(OutboxItem).where(OutboxItem.business_key == message.business_key)
    ).first()
    if existing is not None:
        if existing.kind != message.kind.value or existing.payload != payload:
            raise ConflictError(
                "business key already in the outbox with different content",
                field="business_key",
                code="outbox_conflict",
            )
        return existing
    stamp = now or get_utc_now()
    item = OutboxItem(
        business_key=message.business_key,
        kind=message.kind.value,
        payload=payload,
        status=OutboxStatus.PENDING.value,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(item)
    session.flush()
    return item


class OutboxRow(TypedDict):
    """Insert parameters of one outbox row (the columns of `OUTBOX_TABLE` but its id)."""

    business_key: str
    kind: str
    payload: OutboxPayload
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime


def compute_outbox_rows(
    messages: Sequence[OutboxMessage], *, now: datetime | None = None
) -> list[OutboxRow]:
    """Insert parameters for `messages` (for a Core `insert(OUTBOX_TABLE)`)."""
    stamp = now or get_utc_now()
    return [
        {
            "business_key": message.business_key,
            "kind": message.kind.value,
            "payload": message.to_payload(),
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for message in messages
    ]


def enqueue_core(
    connection: Connection, messages: Sequence[OutboxMessage], *, now: datetime | None = None
) -> None:
    """Insert `messages` on a Core connection inside the caller's transaction.

    A duplicate business key fails the caller's transaction (IntegrityError): hot
    paths guard replays with their own idempotency keys before they get here.
    """
    if messages:
        connection.execute(sa.insert(OUTBOX_TABLE), compute_outbox_rows(messages, now=now))


async def enqueue_async(
    connection: AsyncConnection, messages: Sequence[OutboxMessage], *, now: datetime | None = None
) -> None:
    """`enqueue_core` for the async engine (asyncpg / aiosqlite)."""
    if messages:
        await connection.execute(sa.insert(OUTBOX_TABLE), compute_outbox_rows(messages, now=now))


def fetch_depth_by_status(session: Session) -> dict[str, dict[str, int]]:
    """Row counts by kind, then by status (for the status endpoint and alerts)."""
    rows = session.exec(
        select(OutboxItem.kind, OutboxItem.status, func.count())
        .group_by(col(OutboxItem.kind), col(OutboxItem.status))
        .order_by(col(OutboxItem.kind), col(OutboxItem.status))
    ).all()
    depth: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        depth.setdefault(kind, {})[status] = int(count)
    return depth


@dataclass(frozen=True)
class OutboxError:
    """An unfinished or parked outbox row's latest error (decoded revert, broadcast
    refusal ...); business keys carry ids and hashes only, never personal data."""

    business_key: str
    status: str
    attempts: int
    error: str
    updated_at: datetime


def fetch_last_errors(session: Session, per_kind: int = 5) -> dict[str, list[OutboxError]]:
    """The latest errors of pending and parked rows by kind, newest first (`per_kind` each)."""
    errors: dict[str, list[OutboxError]] = {}
    for kind in OutboxKind:
        rows = session.exec(
            select(OutboxItem)
            .where(
                OutboxItem.kind == kind.value,
                col(OutboxItem.status).in_([OutboxStatus.PENDING.value, OutboxStatus.PARKED.value]),
                col(OutboxItem.last_error).is_not(None),
            )
            .order_by(col(OutboxItem.updated_at).desc(), col(OutboxItem.id).desc())
            .limit(per_kind)
        ).all()
        listed = [
            OutboxError(row.business_key, row.status, row.attempts, row.last_error, row.updated_at)
            for row in rows
            if row.last_error is not None
        ]
        if listed:
            errors[kind.value] = listed
    return errors


def fetch_item(session: Session, business_key: str) -> OutboxItem | None:
    """The outbox row for `business_key`, or None."""
    return session.exec(select(OutboxItem).where(OutboxItem.business_key == business_key)).first()
