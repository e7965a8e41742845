"""Telling the chain what collections did to an agreement: a status change with the
books' reason code, enqueued in the outbox (`agreement_change`) in the caller's
transaction, for the relayer to send to the CreditRegistry.

The registry accepts only its legal transitions (`kernel.chain.LEGAL_AGREEMENT_TRANSITIONS`)
and numbers every change of an agreement (`change_seq`); so the status the agreement will
have once the outbox is drained is read from the outbox itself (every change goes through
it), and a change is enqueued only when it is legal from there. A line without an
agreement (opened by a script or a test, not by onboarding) enqueues nothing.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import AgreementStatus, is_legal_agreement_transition
from node_api.kernel.outbox import AgreementChange, OutboxKind, enqueue_core
from node_api.kernel.outbox_table import OUTBOX_TABLE
from node_api.lending.eod.agreements import fetch_agreement_id

REASON_GUARANTOR_COMPENSATED: Final = 190
"""Reason code of the freeze a guarantor's compensation (代偿) sends: the guarantor paid
the lender and funders and holds the claim; the line takes no new use."""

REASON_DEBT_SOLD: Final = 191
"""Reason code of the close a debt sale sends for a charged-off agreement: the debt now
belongs to the buying agency (ChargedOff -> Closed)."""


def fetch_pending_status(conn: Connection, agreement_id: bytes) -> tuple[AgreementStatus, int]:
    """(the agreement's status once every enqueued change lands, changes enqueued so far).

    An agreement is opened ACTIVE; limit amendments leave its status as it is.
    """
    table = OUTBOX_TABLE
    prefix = f"agreement_change:0x{agreement_id.hex()}:"
    rows = conn.execute(
        select(table.c.payload).where(
            (table.c.kind == OutboxKind.AGREEMENT_CHANGE.value)
            & table.c.business_key.startswith(prefix, autoescape=True)
        )
    ).scalars()
    status, last_seq, count = AgreementStatus.ACTIVE, 0, 0
    for payload in rows:
        count += 1
        seq = int(payload["change_seq"])
        if payload.get("change") == "status" and seq > last_seq:
            status, last_seq = AgreementStatus(int(payload["new_status"])), seq
    return status, count


def enqueue_status_change(
    conn: Connection, credit_line_id: int, new_status: AgreementStatus, reason_code: int
) -> int | None:
    """Enqueue `new_status` for the line's agreement if that is a legal change from the
    status it is heading to; return its `change_seq`, or None when nothing was enqueued
    (no agreement, or the change is not legal from there)."""
    agreement_id = fetch_agreement_id(conn, credit_line_id)
    if agreement_id is None:
        return None
    status, count = fetch_pending_status(conn, agreement_id)
    if not is_legal_agreement_transition(status, new_status):
        return None
    change_seq = count + 1
    enqueue_core(
        conn,
        [AgreementChange(agreement_id, change_seq, reason_code, new_status=new_status.value)],
    )
    return change_seq
