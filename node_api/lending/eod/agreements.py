"""Telling the chain about a charge-off: the agreement's status goes ACTIVE/FROZEN →
DEFAULTED → CHARGED_OFF (the only legal path on the CreditRegistry), enqueued in the
outbox in the charge-off's own transaction.

A line's agreement id is the one onboarding recorded on the application that opened the
line; lines opened without an application (scripts, tests) have no agreement and
nothing is enqueued. `change_seq` continues the agreement's numbering: one more than
the agreement changes already in the outbox (every change goes through it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import AgreementStatus
from node_api.kernel.outbox import AgreementChange, OutboxKind, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE

CHARGE_OFF_STATUSES = (AgreementStatus.DEFAULTED, AgreementStatus.CHARGED_OFF)
"""The registry's only path to a charge-off, in order."""
REASON_CHARGE_OFF = 180
"""Reason code of both status changes: the product's charge-off day was reached."""

_application = sa.table(
    "loan_application", sa.column("credit_line_id", sa.BigInteger), sa.column("agreement_id")
)


def fetch_agreement_id(conn: Connection, credit_line_id: int) -> bytes | None:
    """The 32-byte agreement id of a line, if onboarding opened it with one."""
    value = conn.execute(
        select(_application.c.agreement_id)
        .where(
            (_application.c.credit_line_id == credit_line_id)
            & _application.c.agreement_id.is_not(None)
        )
        .limit(1)
    ).scalar_one_or_none()
    return None if value is None else bytes.fromhex(str(value).removeprefix("0x"))


def fetch_change_count(conn: Connection, agreement_id: bytes) -> int:
    """Changes of this agreement already in the outbox."""
    table = OUTBOX_TABLE
    prefix = f"agreement_change:0x{agreement_id.hex()}:"
    return int(
        conn.execute(
            select(func.count()).where(
                (table.c.kind == OutboxKind.AGREEMENT_CHANGE.value)
                & table.c.business_key.startswith(prefix, autoescape=True)
            )
        ).scalar_one()
    )


def enqueue_charge_off(conn: Connection, credit_line_id: int) -> int:
    """Enqueue DEFAULTED then CHARGED_OFF for the line's agreement; return how many."""
    agreement_id = fetch_agreement_id(conn, credit_line_id)
    if agreement_id is None:
        return 0
    first_seq = fetch_change_count(conn, agreement_id) + 1
    messages = [
        AgreementChange(
            agreement_id, first_seq + offset, REASON_CHARGE_OFF, new_status=status.value
        )
        for offset, status in enumerate(CHARGE_OFF_STATUSES)
    ]
    enqueue_core(conn, messages)
    return len(messages)
