"""The notification outbox kind (never relayed to the chain) and the embedded provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_api.collections.providers import JsonlProvider, OutgoingMessage, read_jsonl
from node_api.kernel.errors import CreditNetValueError
from node_api.kernel.outbox import Notification, OutboxKind
from node_api.kernel.outbox_table import NotificationPayload
from oracles.relay_kinds import build_relay_kinds

MESSAGE = OutgoingMessage("notification:7", "sms", "+8613800138000", "Please pay 10.00 yuan.")


def _notification(body: str = "Please pay.") -> Notification:
    return Notification(
        NotificationPayload(
            notification_id=7, channel="sms", credit_line_id=42, party="borrower",
            template_code="m1", template_version=1, body=body,
        )
    )  # fmt: skip


def test_a_notification_is_keyed_by_its_attempt_and_carries_no_number() -> None:
    notification = _notification()
    assert notification.business_key == "notification:7"
    payload = notification.to_payload()
    assert payload == {
        "notification_id": 7, "channel": "sms", "credit_line_id": 42, "party": "borrower",
        "template_code": "m1", "template_version": 1, "body": "Please pay.",
    }  # fmt: skip
    with pytest.raises(CreditNetValueError):
        _notification("").to_payload()


def test_a_notification_out_of_the_stored_ranges_is_refused_by_field() -> None:
    payload = _notification().payload
    for field, value in (("notification_id", -1), ("template_version", 2**32)):
        with pytest.raises(CreditNetValueError) as refused:
            Notification(NotificationPayload(**{**payload, field: value})).to_payload()
        assert refused.value.field == field


def test_the_relayer_never_takes_notifications() -> None:
    assert OutboxKind.NOTIFICATION.value not in build_relay_kinds()


def test_the_provider_accepts_a_key_once_and_masks_the_number(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    provider = JsonlProvider(path)
    receipt = provider.send(MESSAGE)
    assert provider.send(MESSAGE) == receipt
    assert JsonlProvider(path).send(MESSAGE) == receipt  # a restarted provider remembers
    records = read_jsonl(path)
    assert len(records) == 1
    assert records[0]["to"] == "138****8000" and "13800138000" not in path.read_text()


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    path.write_bytes(b'{"idempotency_key": "notification:1", "rec')
    provider = JsonlProvider(path)
    provider.send(MESSAGE)
    assert [r["idempotency_key"] for r in read_jsonl(path)] == ["notification:7"]
