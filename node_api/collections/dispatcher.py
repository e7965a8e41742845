"""The notification dispatcher: sends `notification` outbox rows to a contact provider.

A row is due when pending and its `available_at` has passed. The dispatcher opens the
recipient's number through the vault, hands the message to the provider with the row's
business key as idempotency key, and only then marks the row confirmed (and the attempt
delivered) in one transaction. A crash between the provider's acceptance and that mark
leaves the row pending; the next pass sends it again and the provider, idempotent by
key, returns its first receipt without delivering twice.

A failed send is retried with exponential backoff (`backoff_base_s` doubling up to
`backoff_max_s`), and parked after `attempts_max` tries or at once when the provider
refuses it for good. Nothing is sent outside the contact hours: a message that waited
past them goes out when they open again.

Time here is operational (when to retry, whether hours are open now): it comes from the
`clock` the caller passes, which `creditnet up` sets to the wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from node_api.collections.conduct import is_within_contact_hours
from node_api.collections.contacts import open_address
from node_api.collections.model import Channel, Delivery, Party
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.providers import ContactProvider, OutgoingMessage, ProviderError
from node_api.collections.tables import attempt_table
from node_api.kernel.db import Database
from node_api.kernel.errors import CreditNetError
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE, NotificationPayload, OutboxStatus
from node_api.onboarding.pii import PiiVault

log = logging.getLogger("creditnet.collections.dispatcher")

HOOK_AFTER_SEND: Final = "after_send"
"""Called after the provider accepted a message and before its row is marked (tests
raise here to simulate a crash at the worst moment)."""


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch_size: int = 50
    attempts_max: int = 8
    backoff_base_s: float = 2.0
    backoff_max_s: float = 600.0


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    delivered: int = 0
    retried: int = 0
    parked: int = 0
    outside_hours: bool = False


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    business_key: str
    payload: NotificationPayload
    attempts: int


class NotificationDispatcher:
    """Sends due notifications, one pass per `run_once` (module docstring)."""

    def __init__(
        self,
        database: Database,
        vault: PiiVault,
        provider: ContactProvider,
        policy: CollectionsPolicy,
        *,
        clock: Callable[[], datetime],
        config: DispatchConfig | None = None,
        hook: Callable[[str], None] | None = None,
    ) -> None:
        self.database = database
        self.vault = vault
        self.provider = provider
        self.policy = policy
        self.clock = clock
        self.config = config or DispatchConfig()
        self._hook = hook or (lambda _point: None)

    def run_once(self) -> DispatchSummary:
        now = self.clock().astimezone(UTC)
        if not is_within_contact_hours(self.policy, now):
            return DispatchSummary(outside_hours=True)
        delivered = retried = parked = 0
        for item in self._fetch_due(now):
            outcome = self._deliver(item, now)
            delivered += outcome == "delivered"
            retried += outcome == "retried"
            parked += outcome == "parked"
        return DispatchSummary(delivered, retried, parked)

    def _fetch_due(self, now: datetime) -> list[_Due]:
        table = OUTBOX_TABLE
        stamp = now.replace(tzinfo=None)
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.id, table.c.business_key, table.c.payload, table.c.attempts)
                .where(
                    (table.c.kind == OutboxKind.NOTIFICATION.value)
                    & (table.c.status == OutboxStatus.PENDING.value)
                    & sa.or_(table.c.available_at.is_(None), table.c.available_at <= stamp)
                )
                .order_by(table.c.id)
                .limit(self.config.batch_size)
            ).all()
        return [_Due(int(row[0]), str(row[1]), row[2], int(row[3])) for row in rows]

    def _deliver(self, item: _Due, now: datetime) -> str:
        payload = item.payload
        try:
            message = OutgoingMessage(
                item.business_key, payload["channel"], self._address(payload), payload["body"]
            )
            receipt = self.provider.send(message)
        except ProviderError as error:
            reason = f"{type(error).__name__}: {error.reason}"
            return self._fail(item, now, reason, retry=error.retryable)
        except CreditNetError as error:  # the number is gone or cannot be opened
            return self._fail(item, now, f"{type(error).__name__}: {error.code}", retry=False)
        except Exception as error:
            log.exception("provider failed", extra={"business_key": item.business_key})
            return self._fail(item, now, type(error).__name__, retry=True)
        self._hook(HOOK_AFTER_SEND)
        with self.database.engine.begin() as conn:
            _mark(conn, item, now, OutboxStatus.CONFIRMED, Delivery.DELIVERED, receipt, None)
        return "delivered"

    def _address(self, payload: NotificationPayload) -> str:
        if payload["channel"] == Channel.APP:
            return f"app:line:{payload['credit_line_id']}"
        with self.database.engine.connect() as conn:
            return open_address(
                conn, self.vault, payload["credit_line_id"], Party(payload["party"])
            )

    def _fail(self, item: _Due, now: datetime, reason: str, *, retry: bool) -> str:
        attempts = item.attempts + 1
        give_up = not retry or attempts >= self.config.attempts_max
        delay_s = min(self.config.backoff_base_s * 2 ** (attempts - 1), self.config.backoff_max_s)
        log.warning(
            "notification not sent",
            extra={"business_key": item.business_key, "attempts": attempts, "reason": reason},
        )
        with self.database.engine.begin() as conn:
            if give_up:
                _mark(conn, item, now, OutboxStatus.PARKED, Delivery.FAILED, None, reason)
                return "parked"
            table = OUTBOX_TABLE
            conn.execute(
                sa.update(table)
                .where((table.c.id == item.id) & (table.c.status == OutboxStatus.PENDING.value))
                .values(
                    attempts=attempts,
                    last_error=reason,
                    available_at=(now + timedelta(seconds=delay_s)).replace(tzinfo=None),
                    updated_at=now.replace(tzinfo=None),
                )
            )
        return "retried"


def _mark(
    conn: Connection,
    item: _Due,
    now: datetime,
    status: OutboxStatus,
    delivery: Delivery,
    receipt: str | None,
    reason: str | None,
) -> None:
    """Finish a row and its attempt together (only a still-pending row)."""
    table = OUTBOX_TABLE
    changed = conn.execute(
        sa.update(table)
        .where((table.c.id == item.id) & (table.c.status == OutboxStatus.PENDING.value))
        .values(
            status=status.value,
            attempts=item.attempts + 1,
            last_error=reason,
            updated_at=now.replace(tzinfo=None),
        )
    ).rowcount
    if changed:
        attempts = attempt_table
        conn.execute(
            sa.update(attempts)
            .where(attempts.c.id == item.payload["notification_id"])
            .values(delivery=delivery.value, provider_ref=receipt)
        )
