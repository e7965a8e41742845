"""The notification dispatcher on both databases: a message reaches the provider exactly
once, even when the node crashes after the provider accepted it; a failing provider is
retried with backoff, then parked; nothing is sent outside contact hours."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from node_api.collections.attempts import AttemptRequest, record_contact_attempt
from node_api.collections.cases import fetch_cases, refresh_cases
from node_api.collections.contacts import register_contact
from node_api.collections.dispatcher import (
    HOOK_AFTER_SEND,
    DispatchConfig,
    DispatchSummary,
    NotificationDispatcher,
)
from node_api.collections.model import Channel, Party
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.providers import (
    NOTIFICATIONS_FILE,
    JsonlProvider,
    OutgoingMessage,
    ProviderError,
    ProviderRefusal,
    read_jsonl,
)
from node_api.collections.tables import attempt_table
from node_api.collections.worker import run_collections_worker
from node_api.kernel.config import Settings
from node_api.kernel.db import Database
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.core.context import LendingCaches
from node_api.onboarding.pii import PiiVault
from tests.integration.collections.helpers import (
    AS_OF,
    BORROWER_PHONE,
    approved_template,
    dev_vault,
    open_past_due_line,
)

POLICY = CollectionsPolicy()
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2025, 4, 10, 12, 0, tzinfo=SHANGHAI)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Crash(Exception):
    """The node dies at the worst moment."""


class FlakyProvider:
    """Fails `failures` times (then delegates), or refuses everything."""

    def __init__(self, inner: JsonlProvider, failures: int, refuse: bool = False) -> None:
        self.inner, self.failures, self.refuse, self.calls = inner, failures, refuse, 0

    def send(self, message: OutgoingMessage) -> str:
        self.calls += 1
        if self.refuse:
            raise ProviderRefusal("number_blocked")
        if self.calls <= self.failures:
            raise ProviderError("gateway_timeout")
        return self.inner.send(message)


@pytest.fixture
def vault() -> PiiVault:
    return dev_vault()


@pytest.fixture
def queued(node: Database, caches: LendingCaches, vault: PiiVault) -> int:
    """One SMS queued for the borrower; returns its attempt id."""
    with node.engine.begin() as conn:
        line_id = open_past_due_line(conn, caches, "cust-3", 20)
        register_contact(
            conn, vault, credit_line_id=line_id, party=Party.BORROWER, phone=BORROWER_PHONE,
            on=AS_OF, by="agent",
        )  # fmt: skip
        refresh_cases(conn, AS_OF)
        (case,) = fetch_cases(conn)
        template = approved_template(conn)
        request = AttemptRequest(
            case.id, "borrower", Channel.SMS, NOON, "agent", template_id=template.id
        )
        attempt = record_contact_attempt(conn, vault, POLICY, request)
    return attempt.id


def _dispatcher(
    database: Database, vault: PiiVault, provider: Any, clock: Clock, **kwargs: Any
) -> NotificationDispatcher:
    return NotificationDispatcher(database, vault, provider, POLICY, clock=clock, **kwargs)


def _row(database: Database) -> Any:
    with database.engine.connect() as conn:
        outbox = conn.execute(select(OUTBOX_TABLE)).mappings().one()
        attempt = conn.execute(select(attempt_table)).mappings().one()
    return outbox, attempt


def test_a_crash_after_the_provider_accepted_never_sends_twice(
    node: Database, vault: PiiVault, queued: int, tmp_path: Path
) -> None:
    path = tmp_path / "notifications.jsonl"

    def crash(point: str) -> None:
        if point == HOOK_AFTER_SEND:
            raise Crash

    with pytest.raises(Crash):
        _dispatcher(node, vault, JsonlProvider(path), Clock(NOON), hook=crash).run_once()
    outbox, attempt = _row(node)
    assert (outbox["status"], attempt["delivery"]) == ("pending", "queued")
    assert len(read_jsonl(path)) == 1  # accepted, not yet marked
    restarted = _dispatcher(node, vault, JsonlProvider(path), Clock(NOON))  # a new process
    assert restarted.run_once() == DispatchSummary(delivered=1)
    assert restarted.run_once() == DispatchSummary()
    records = read_jsonl(path)
    assert len(records) == 1
    assert records[0]["idempotency_key"] == f"notification:{queued}"
    assert records[0]["to"] == "138****8000"
    assert records[0]["body"] == "Your payment of 0.00 yuan is 20 days late."
    assert BORROWER_PHONE not in path.read_text()
    outbox, attempt = _row(node)
    assert (outbox["status"], attempt["delivery"]) == ("confirmed", "delivered")
    assert attempt["provider_ref"] == records[0]["receipt"]


def test_a_failing_provider_is_retried_with_backoff(
    node: Database, vault: PiiVault, queued: int, tmp_path: Path
) -> None:
    path, clock = tmp_path / "notifications.jsonl", Clock(NOON)
    provider = FlakyProvider(JsonlProvider(path), failures=2)
    dispatcher = _dispatcher(node, vault, provider, clock)
    assert dispatcher.run_once() == DispatchSummary(retried=1)
    outbox, _ = _row(node)
    assert outbox["attempts"] == 1 and outbox["last_error"] == "ProviderError: gateway_timeout"
    assert outbox["available_at"] == (NOON + timedelta(seconds=2)).astimezone(UTC).replace(
        tzinfo=None
    )
    assert dispatcher.run_once() == DispatchSummary()  # not due yet
    clock.now += timedelta(seconds=2)
    assert dispatcher.run_once() == DispatchSummary(retried=1)
    assert _row(node)[0]["available_at"] == (clock.now + timedelta(seconds=4)).astimezone(
        UTC
    ).replace(tzinfo=None)
    clock.now += timedelta(seconds=4)
    assert dispatcher.run_once() == DispatchSummary(delivered=1)
    assert provider.calls == 3 and len(read_jsonl(path)) == 1
    assert _row(node)[0]["status"] == "confirmed"


def test_a_message_is_parked_after_too_many_failures_or_a_refusal(
    node: Database, vault: PiiVault, queued: int, tmp_path: Path
) -> None:
    path, clock = tmp_path / "notifications.jsonl", Clock(NOON)
    config = DispatchConfig(attempts_max=2, backoff_base_s=1.0)
    flaky = FlakyProvider(JsonlProvider(path), failures=5)
    dispatcher = _dispatcher(node, vault, flaky, clock, config=config)
    assert dispatcher.run_once() == DispatchSummary(retried=1)
    clock.now += timedelta(seconds=1)
    assert dispatcher.run_once() == DispatchSummary(parked=1)
    outbox, attempt = _row(node)
    assert (outbox["status"], attempt["delivery"]) == ("parked", "failed")
    assert read_jsonl(path) == []


def test_a_refused_message_is_parked_at_once(
    node: Database, vault: PiiVault, queued: int, tmp_path: Path
) -> None:
    refusing = FlakyProvider(JsonlProvider(tmp_path / "n.jsonl"), 0, refuse=True)
    assert _dispatcher(node, vault, refusing, Clock(NOON)).run_once() == DispatchSummary(parked=1)
    assert _row(node)[0]["last_error"] == "ProviderRefusal: number_blocked"


def test_nothing_is_sent_outside_contact_hours(
    node: Database, vault: PiiVault, queued: int, tmp_path: Path
) -> None:
    path, clock = tmp_path / "notifications.jsonl", Clock(NOON.replace(hour=21, minute=5))
    dispatcher = _dispatcher(node, vault, JsonlProvider(path), clock)
    assert dispatcher.run_once() == DispatchSummary(outside_hours=True)
    clock.now = NOON.replace(hour=8) + timedelta(days=1)
    assert dispatcher.run_once() == DispatchSummary(delivered=1)
    assert len(read_jsonl(path)) == 1


def test_the_node_worker_sends_queued_messages_until_stopped(
    node: Database, queued: int, tmp_path: Path
) -> None:
    stop = threading.Event()
    settings = Settings(data_dir=tmp_path)
    worker = threading.Thread(
        target=run_collections_worker,
        args=(stop, settings, node),
        kwargs={"clock": Clock(NOON), "interval_s": 0.05},
    )
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not read_jsonl(tmp_path / NOTIFICATIONS_FILE) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    (record,) = read_jsonl(tmp_path / NOTIFICATIONS_FILE)
    assert record["idempotency_key"] == f"notification:{queued}"
    assert _row(node)[0]["status"] == "confirmed"
