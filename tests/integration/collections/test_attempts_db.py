"""Contact attempts on both databases: each conduct rule refuses its breach and writes
nothing; an allowed message is recorded with its note sealed and queued once in the
outbox."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from node_api.collections.attempts import (
    AttemptRequest,
    AttemptView,
    fetch_attempts,
    record_contact_attempt,
)
from node_api.collections.cases import fetch_cases, refresh_cases
from node_api.collections.conduct import ConductRuleBreach
from node_api.collections.contacts import fetch_contacts, register_contact
from node_api.collections.model import Channel, Outcome, Party
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.tables import attempt_table
from node_api.kernel.db import Database
from node_api.kernel.outbox import OutboxKind
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.core.context import LendingCaches
from node_api.onboarding.pii import PiiVault
from tests.integration.collections.helpers import (
    AS_OF,
    BORROWER_PHONE,
    EMERGENCY_PHONE,
    approved_template,
    dev_vault,
    open_past_due_line,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2025, 4, 10, 8, 0, tzinfo=SHANGHAI)
POLICY = CollectionsPolicy(contacts_per_day_max=3)


@pytest.fixture
def vault() -> PiiVault:
    return dev_vault()


@pytest.fixture
def case(node: Database, caches: LendingCaches, vault: PiiVault) -> dict[str, Any]:
    """An M2 case with the borrower's number registered and an approved SMS template."""
    with node.engine.begin() as conn:
        line_id = open_past_due_line(conn, caches, "cust-7", 40)
        register_contact(
            conn, vault, credit_line_id=line_id, party=Party.BORROWER, phone=BORROWER_PHONE,
            on=AS_OF, by="agent",
        )  # fmt: skip
        refresh_cases(conn, AS_OF)
        (opened,) = fetch_cases(conn)
        template = approved_template(conn)
    return {"id": opened.id, "line": line_id, "template": template.id}


def _attempt(database: Database, vault: PiiVault, case_id: int, **changes: Any) -> AttemptView:
    request = AttemptRequest(
        **{
            "case_id": case_id, "party": "borrower", "channel": Channel.CALL,
            "contacted_at": MORNING, "agent": "agent-7", "outcome": Outcome.NO_ANSWER,
            **changes,
        }
    )  # fmt: skip
    with database.engine.begin() as conn:
        return record_contact_attempt(conn, vault, POLICY, request)


def _counts(database: Database) -> tuple[int, int]:
    with database.engine.connect() as conn:
        attempts = conn.execute(select(func.count()).select_from(attempt_table)).scalar_one()
        outbox = conn.execute(
            select(func.count()).where(OUTBOX_TABLE.c.kind == OutboxKind.NOTIFICATION.value)
        ).scalar_one()
    return int(attempts), int(outbox)


def _refused(database: Database, vault: PiiVault, case_id: int, code: str, **changes: Any) -> None:
    before = _counts(database)
    with pytest.raises(ConductRuleBreach) as info:
        _attempt(database, vault, case_id, **changes)
    assert info.value.code == code
    assert _counts(database) == before


def test_a_message_is_recorded_sealed_and_queued_once(
    node: Database, vault: PiiVault, case: dict[str, Any]
) -> None:
    attempt = _attempt(
        node, vault, case["id"], channel=Channel.SMS, outcome=None,
        template_id=case["template"], note="Said salary comes on the 15th.",
    )  # fmt: skip
    assert (attempt.outcome, attempt.delivery, attempt.note) == (
        "queued", "queued", "Said salary comes on the 15th.",
    )  # fmt: skip
    with node.engine.connect() as conn:
        sealed = conn.execute(select(attempt_table.c.note_enc)).scalar_one()
        row = conn.execute(
            select(OUTBOX_TABLE.c.business_key, OUTBOX_TABLE.c.payload).where(
                OUTBOX_TABLE.c.kind == OutboxKind.NOTIFICATION.value
            )
        ).one()
        contacts = fetch_contacts(conn, case["line"])
        assert fetch_attempts(conn, vault, case["id"])[0].note == attempt.note
    assert b"salary" not in bytes(sealed)
    assert row.business_key == f"notification:{attempt.id}"
    assert row.payload["body"] == "Your payment of 0.00 yuan is 40 days late."
    assert BORROWER_PHONE not in str(row.payload)
    assert [(c.party, c.address_masked) for c in contacts] == [("borrower", "138****8000")]


def test_RevertWhen_the_contact_is_outside_the_hours_but_not_at_their_boundaries(
    node: Database, vault: PiiVault, case: dict[str, Any]
) -> None:
    _attempt(node, vault, case["id"], contacted_at=MORNING)
    _attempt(node, vault, case["id"], contacted_at=MORNING.replace(hour=20, minute=59))
    for late in (MORNING - timedelta(seconds=1), MORNING.replace(hour=21)):
        _refused(node, vault, case["id"], "contact_outside_hours", contacted_at=late)


def test_RevertWhen_the_borrower_was_contacted_the_most_times_today(
    node: Database, vault: PiiVault, case: dict[str, Any]
) -> None:
    for minutes in range(POLICY.contacts_per_day_max):
        _attempt(node, vault, case["id"], contacted_at=MORNING + timedelta(minutes=minutes))
    _refused(
        node, vault, case["id"], "contact_daily_limit_reached",
        contacted_at=MORNING + timedelta(hours=5),
    )  # fmt: skip
    _attempt(node, vault, case["id"], contacted_at=MORNING + timedelta(days=1))  # a new day


def test_RevertWhen_anyone_but_the_registered_parties_is_contacted(
    node: Database, vault: PiiVault, case: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="creditnet.collections"):
        _refused(node, vault, case["id"], "contact_party_not_allowed", party="employer")
    (record,) = [r for r in caplog.records if r.name == "creditnet.collections"]
    assert (record.rule, record.case_id, record.agent) == (  # type: ignore[attr-defined]
        "contact_party_not_allowed", case["id"], "agent-7",
    )  # fmt: skip
    assert BORROWER_PHONE not in caplog.text and "employer" not in caplog.text
    _refused(node, vault, case["id"], "contact_not_registered", party="emergency_contact")
    with node.engine.begin() as conn:
        register_contact(
            conn, vault, credit_line_id=case["line"], party=Party.EMERGENCY_CONTACT,
            phone=EMERGENCY_PHONE, on=AS_OF, by="agent",
        )  # fmt: skip
    _attempt(node, vault, case["id"], party="emergency_contact")


def test_RevertWhen_a_message_is_not_from_an_approved_template(
    node: Database, vault: PiiVault, case: dict[str, Any]
) -> None:
    sms = {"channel": Channel.SMS, "outcome": None}
    _refused(node, vault, case["id"], "template_not_approved", **sms)
    _refused(node, vault, case["id"], "template_not_approved", template_id=999_999, **sms)
    _refused(
        node, vault, case["id"], "template_not_approved",
        channel=Channel.APP, outcome=None, template_id=case["template"],
    )  # fmt: skip
    _attempt(node, vault, case["id"], template_id=case["template"], **sms)
