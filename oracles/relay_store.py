"""The relayer's database statements: claim outbox rows, record intents and outcomes.

Set-based Core statements (one UPDATE per batch, not one per row), on the sync
engine, each function one short transaction: the relayer is a single background
thread and never holds a transaction open across a network call.

Every write transaction first runs the store's fence (when it has one): with several
nodes, the worker lease's epoch is checked there, so a relayer that lost its lease
cannot record a transaction or settle an item after another node took over.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from node_api.kernel.db import Database, WriteFence
from node_api.kernel.outbox import get_utc_now
from node_api.kernel.outbox_table import OUTBOX_TABLE, OutboxPayload, OutboxStatus
from oracles.scaleout_tables import ATTEMPT_TABLE, AttemptReason
from oracles.tables import OPEN_SUBMISSION_STATUSES, SUBMISSION_TABLE, SubmissionStatus
from oracles.tx_sender import FeeQuote, RpcReceipt, SignedTx

OUTBOX: Final = OUTBOX_TABLE
SUBMISSION: Final = SUBMISSION_TABLE
ATTEMPT: Final = ATTEMPT_TABLE
UNFINISHED: Final = (OutboxStatus.PENDING.value, OutboxStatus.SENT.value)
LANDED_EARLIER: Final = "already on-chain with the same content (landed by an earlier transaction)"


@dataclass(frozen=True)
class QueuedItem:
    """An outbox row as the relayer sees it."""

    id: int
    kind: str
    business_key: str
    payload: OutboxPayload
    attempts: int


@dataclass(frozen=True)
class OpenSubmission:
    """A recorded transaction not yet confirmed (its raw bytes, up to ~90 kB of hex for
    a 200-item batch, are read only when it is broadcast again or repriced:
    `fetch_raw_txs`)."""

    id: int
    kind: str
    nonce: int
    tx_hash: str
    status: str
    block_number: int | None


@dataclass(frozen=True)
class Intent:
    """A signed transaction about to be broadcast, and the items it carries."""

    kind: str
    signed: SignedTx
    item_ids: Sequence[int]


"""Called first in every write transaction; raises to refuse the write (a lost lease)."""


@dataclass(frozen=True)
class Attempt:
    """One signed version of a submission's nonce (its raw bytes stay in the table)."""

    tx_hash: str
    fees: FeeQuote
    created_at: datetime


class RelayStore:
    """Every statement the relayer runs, on one database."""

    def __init__(
        self, database: Database, sender_address: str, fence: WriteFence | None = None
    ) -> None:
        self.database = database
        self.sender = sender_address
        self._fence = fence

    def _begin(self) -> AbstractContextManager[sa.Connection]:
        """A write transaction, fenced."""
        return self.database.begin_fenced(self._fence)

    def fetch_nonce_floor(self) -> int:
        """One past the highest nonce this sender ever recorded (0 when none)."""
        with self.database.engine.connect() as conn:
            highest = conn.execute(
                sa.select(sa.func.max(SUBMISSION.c.nonce)).where(SUBMISSION.c.sender == self.sender)
            ).scalar()
        return 0 if highest is None else int(highest) + 1

    def fetch_open_submissions(self) -> list[OpenSubmission]:
        """Recorded transactions still signed or mined, by nonce."""
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    SUBMISSION.c.id,
                    SUBMISSION.c.kind,
                    SUBMISSION.c.nonce,
                    SUBMISSION.c.tx_hash,
                    SUBMISSION.c.status,
                    SUBMISSION.c.block_number,
                )
                .where(
                    SUBMISSION.c.sender == self.sender,
                    SUBMISSION.c.status.in_(OPEN_SUBMISSION_STATUSES),
                )
                .order_by(SUBMISSION.c.nonce)
            ).all()
        return [OpenSubmission(*row) for row in rows]

    def fetch_raw_txs(self, submission_ids: Sequence[int]) -> dict[int, str]:
        """The current raw transaction (0x-hex) of each submission, by id."""
        if not submission_ids:
            return {}
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                sa.select(SUBMISSION.c.id, SUBMISSION.c.raw_tx).where(
                    SUBMISSION.c.id.in_(list(submission_ids))
                )
            ).all()
        return {int(submission_id): str(raw_tx) for submission_id, raw_tx in rows}

    def fetch_items_of(self, tx_hash: str) -> list[QueuedItem]:
        """The items a recorded transaction carries, in id order."""
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                _item_columns().where(OUTBOX.c.tx_hash == tx_hash).order_by(OUTBOX.c.id)
            ).all()
        return _to_items(rows)

    def fetch_barrier_id(self, kinds: Sequence[str]) -> int | None:
        """The lowest id of an unfinished item of `kinds` (dependents wait below it)."""
        if not kinds:
            return None
        with self.database.engine.connect() as conn:
            lowest = conn.execute(
                sa.select(sa.func.min(OUTBOX.c.id)).where(
                    OUTBOX.c.kind.in_(kinds), OUTBOX.c.status.in_(UNFINISHED)
                )
            ).scalar()
        return None if lowest is None else int(lowest)

    def fetch_pending(self, kind: str, limit: int, below_id: int | None) -> list[QueuedItem]:
        """Pending items of `kind` that are due, in id order."""
        now = get_utc_now()
        query = _item_columns().where(
            OUTBOX.c.kind == kind,
            OUTBOX.c.status == OutboxStatus.PENDING.value,
            sa.or_(OUTBOX.c.available_at.is_(None), OUTBOX.c.available_at <= now),
        )
        if below_id is not None:
            query = query.where(OUTBOX.c.id < below_id)
        with self.database.engine.connect() as conn:
            rows = conn.execute(query.order_by(OUTBOX.c.id).limit(limit)).all()
        return _to_items(rows)

    def fetch_attempts(self, submission_ids: Sequence[int]) -> dict[int, list[Attempt]]:
        """Every attempt of each submission, oldest first."""
        if not submission_ids:
            return {}
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    ATTEMPT.c.submission_id,
                    ATTEMPT.c.tx_hash,
                    ATTEMPT.c.max_fee_per_gas_wei,
                    ATTEMPT.c.max_priority_fee_per_gas_wei,
                    ATTEMPT.c.created_at,
                )
                .where(ATTEMPT.c.submission_id.in_(list(submission_ids)))
                .order_by(ATTEMPT.c.id)
            ).all()
        attempts: dict[int, list[Attempt]] = {}
        for submission_id, tx_hash, max_fee, tip, created_at in rows:
            attempts.setdefault(int(submission_id), []).append(
                Attempt(str(tx_hash), FeeQuote(int(max_fee), int(tip)), created_at)
            )
        return attempts

    def record_replacement(
        self, submission: OpenSubmission, signed: SignedTx, fees: FeeQuote, at: datetime
    ) -> None:
        """A same-nonce replacement becomes the submission's current transaction: the
        attempt, the submission and its items in one transaction."""
        with self._begin() as conn:
            conn.execute(
                sa.insert(ATTEMPT),
                [_attempt_row(submission.id, self.sender, signed, fees, AttemptReason.REPRICE, at)],
            )
            self._point_at(conn, submission, signed.tx_hash, signed.raw_tx)

    def adopt_attempt(self, submission: OpenSubmission, attempt: Attempt) -> None:
        """The chain mined `attempt`, not the current transaction: it becomes the current one."""
        with self._begin() as conn:
            raw_tx = conn.execute(
                sa.select(ATTEMPT.c.raw_tx).where(ATTEMPT.c.tx_hash == attempt.tx_hash)
            ).scalar_one()
            self._point_at(conn, submission, attempt.tx_hash, str(raw_tx))

    def _point_at(
        self, conn: sa.Connection, submission: OpenSubmission, tx_hash: str, raw_tx: str
    ) -> None:
        now = get_utc_now()
        updated = conn.execute(
            sa.update(SUBMISSION)
            .where(SUBMISSION.c.id == submission.id, SUBMISSION.c.tx_hash == submission.tx_hash)
            .values(tx_hash=tx_hash, raw_tx=raw_tx, updated_at=now)
        ).rowcount
        if updated != 1:
            raise RuntimeError(f"submission {submission.id} changed under the relayer")
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.tx_hash == submission.tx_hash)
            .values(tx_hash=tx_hash, updated_at=now)
        )

    def record_intents(self, intents: Sequence[Intent], fees: FeeQuote, at: datetime) -> None:
        """Store the signed transactions (each its first attempt, priced at `fees`) and mark
        their items sent, in one transaction."""
        now = get_utc_now()
        submissions = [
            {
                "kind": intent.kind,
                "sender": self.sender,
                "nonce": intent.signed.nonce,
                "tx_hash": intent.signed.tx_hash,
                "raw_tx": intent.signed.raw_tx,
                "item_count": len(intent.item_ids),
                "status": SubmissionStatus.SIGNED.value,
                "created_at": now,
                "updated_at": now,
            }
            for intent in intents
        ]
        with self._begin() as conn:
            ids = conn.execute(
                sa.insert(SUBMISSION).returning(SUBMISSION.c.id, sort_by_parameter_order=True),
                submissions,
            ).scalars()
            conn.execute(
                sa.insert(ATTEMPT),
                [
                    _attempt_row(
                        int(submission_id),
                        self.sender,
                        intent.signed,
                        fees,
                        AttemptReason.INITIAL,
                        at,
                    )
                    for submission_id, intent in zip(ids, intents, strict=True)
                ],
            )
            _mark_sent(conn, intents, now)

    def record_mined(self, submission_id: int, block_number: int, block_hash: str) -> None:
        """A receipt exists but is not deep enough yet."""
        with self._begin() as conn:
            conn.execute(
                sa.update(SUBMISSION)
                .where(SUBMISSION.c.id == submission_id)
                .values(
                    status=SubmissionStatus.MINED.value,
                    block_number=block_number,
                    block_hash=block_hash,
                    updated_at=get_utc_now(),
                )
            )

    def record_confirmed(self, receipts: Sequence[tuple[str, RpcReceipt]]) -> None:
        """Successful receipts (tx hash, receipt): submissions and items confirmed."""
        if not receipts:
            return
        now = get_utc_now()
        params = [
            {
                "hash": tx_hash,
                "block": int(receipt["blockNumber"], 16),
                "block_hash": receipt["blockHash"],
                "gas": int(receipt["gasUsed"], 16),
            }
            for tx_hash, receipt in receipts
        ]
        with self._begin() as conn:
            conn.execute(
                sa.update(SUBMISSION)
                .where(SUBMISSION.c.tx_hash == sa.bindparam("hash"))
                .values(
                    status=SubmissionStatus.CONFIRMED.value,
                    block_number=sa.bindparam("block"),
                    block_hash=sa.bindparam("block_hash"),
                    gas_used=sa.bindparam("gas"),
                    updated_at=now,
                ),
                params,
            )
            conn.execute(
                sa.update(OUTBOX)
                .where(
                    OUTBOX.c.tx_hash == sa.bindparam("hash"),
                    OUTBOX.c.status == OutboxStatus.SENT.value,
                )
                .values(
                    status=OutboxStatus.CONFIRMED.value,
                    block_number=sa.bindparam("block"),
                    last_error=None,
                    updated_at=now,
                ),
                params,
            )

    def record_item_error(self, tx_hash: str, message: str) -> None:
        """Note a broadcast problem on a transaction's items without changing their state."""
        with self._begin() as conn:
            conn.execute(
                sa.update(OUTBOX)
                .where(OUTBOX.c.tx_hash == tx_hash)
                .values(last_error=message[:2000], updated_at=get_utc_now())
            )

    def close_submission(
        self, submission_id: int, status: SubmissionStatus, outcome: Outcome
    ) -> None:
        """Close a reverted or dropped submission and settle each of its items."""
        now = get_utc_now()
        with self._begin() as conn:
            conn.execute(
                sa.update(SUBMISSION)
                .where(SUBMISSION.c.id == submission_id)
                .values(status=status.value, updated_at=now)
            )
            _apply_outcome(conn, outcome, now)

    def apply_outcome(self, outcome: Outcome) -> None:
        """Settle pending items without a submission (checked before sending)."""
        with self._begin() as conn:
            _apply_outcome(conn, outcome, get_utc_now())


@dataclass
class Outcome:
    """What happens to each item of a closed submission."""

    landed: list[int]
    """Already on-chain with the same content: confirmed (by an earlier transaction)."""
    parked: dict[int, str]
    """Cannot land: parked with this error."""
    retry: dict[int, tuple[float, str]]
    """Back to pending after a delay in seconds, with the reason."""


def _apply_outcome(conn: sa.Connection, outcome: Outcome, now: datetime) -> None:
    if outcome.landed:
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id.in_(outcome.landed))
            .values(
                status=OutboxStatus.CONFIRMED.value,
                tx_hash=None,
                tx_nonce=None,
                block_number=None,
                last_error=LANDED_EARLIER,
                updated_at=now,
            )
        )
    if outcome.parked:
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == sa.bindparam("item"))
            .values(
                status=OutboxStatus.PARKED.value,
                last_error=sa.bindparam("error"),
                updated_at=now,
            ),
            [{"item": item, "error": error[:2000]} for item, error in outcome.parked.items()],
        )
    if outcome.retry:
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == sa.bindparam("item"))
            .values(
                status=OutboxStatus.PENDING.value,
                tx_hash=None,
                tx_nonce=None,
                available_at=sa.bindparam("due"),
                last_error=sa.bindparam("reason"),
                updated_at=now,
            ),
            [
                {
                    "item": item,
                    "due": now + timedelta(seconds=delay_s) if delay_s > 0 else None,
                    "reason": reason[:2000],
                }
                for item, (delay_s, reason) in outcome.retry.items()
            ],
        )


def _attempt_row(
    submission_id: int,
    sender: str,
    signed: SignedTx,
    fees: FeeQuote,
    reason: AttemptReason,
    at: datetime,
) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "sender": sender,
        "nonce": signed.nonce,
        "tx_hash": signed.tx_hash,
        "raw_tx": signed.raw_tx,
        "max_fee_per_gas_wei": fees.max_fee_per_gas_wei,
        "max_priority_fee_per_gas_wei": fees.max_priority_fee_per_gas_wei,
        "reason": reason.value,
        "created_at": at,
    }


def _mark_sent(conn: sa.Connection, intents: Sequence[Intent], now: datetime) -> None:
    """Each intent's items sent with its transaction: one statement per transaction (an
    array of ids on PostgreSQL, an IN list elsewhere), not one per item."""
    values = {
        "status": OutboxStatus.SENT.value,
        "tx_hash": sa.bindparam("hash"),
        "tx_nonce": sa.bindparam("nonce"),
        "block_number": None,
        "attempts": OUTBOX.c.attempts + 1,
        "updated_at": now,
    }
    if conn.dialect.name == "postgresql":
        ids = sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))
        conn.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id == sa.any_(ids)).values(values),
            [
                {"ids": list(i.item_ids), "hash": i.signed.tx_hash, "nonce": i.signed.nonce}
                for i in intents
            ],
        )
        return
    for intent in intents:
        conn.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id.in_(list(intent.item_ids))).values(values),
            {"hash": intent.signed.tx_hash, "nonce": intent.signed.nonce},
        )


def _item_columns() -> sa.Select[Any]:
    """An item's columns, the payload as its stored JSON text (parsed by orjson, several
    times faster than the driver's json.loads)."""
    return sa.select(
        OUTBOX.c.id,
        OUTBOX.c.kind,
        OUTBOX.c.business_key,
        sa.cast(OUTBOX.c.payload, sa.Text),
        OUTBOX.c.attempts,
    )


def _to_items(rows: Sequence[Sequence[Any]]) -> list[QueuedItem]:
    return [
        QueuedItem(int(row[0]), str(row[1]), str(row[2]), orjson.loads(row[3]), int(row[4]))
        for row in rows
    ]
