"""Contact attempts: checked against the conduct rules, recorded with their outcome and
note, and, for a message, queued in the outbox for the contact provider.

The attempt row, its note (sealed by the PII vault) and its `notification` outbox row
are written in the caller's transaction: either the attempt is recorded and its message
will be sent exactly once, or neither. A refused attempt writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.cases import CaseView, fetch_case
from node_api.collections.conduct import (
    ConductRuleBreach,
    check_contact_hours,
    check_daily_count,
    check_party,
    check_registered,
    check_template,
    compute_local_date,
    log_breach,
    to_utc,
)
from node_api.collections.contacts import find_contact
from node_api.collections.model import MESSAGE_CHANNELS, CaseStatus, Channel, Delivery, Outcome
from node_api.collections.policy import CollectionsPolicy
from node_api.collections.tables import attempt_table, case_table
from node_api.collections.templates import CaseFacts, TemplateView, find_template, render
from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.kernel.money import Fen
from node_api.kernel.outbox import Notification, enqueue_core
from node_api.kernel.outbox_table import NotificationPayload
from node_api.ledger.sql import begin_write
from node_api.onboarding.pii import PiiVault

NOTE_CHARS_MAX = 2_000


@dataclass(frozen=True, slots=True)
class AttemptRequest:
    case_id: int
    party: str
    """Checked by the conduct rules, so an unknown party is refused by name."""
    channel: Channel
    contacted_at: datetime
    """Business time of the contact, with its offset (the edge defaults it to now)."""
    agent: str
    outcome: Outcome | None = None
    """Required for calls and agency work; a message's outcome is `queued`."""
    template_id: int | None = None
    note: str | None = None


class Attempt(BaseModel):
    """A recorded contact attempt without its note (also the API's answer to recording
    one, which is stored for replays and so carries no free text)."""

    model_config = ConfigDict(frozen=True)

    id: int
    case_id: int
    credit_line_id: int
    party: str
    channel: str
    template_id: int | None
    contacted_at: datetime
    local_date: date
    outcome: str
    agent: str
    delivery: str | None
    provider_ref: str | None


class AttemptView(Attempt):
    """An attempt with its note, opened by the PII vault (also its API view on a case)."""

    note: str | None


def get_note_context(attempt_id: int) -> str:
    return f"collections_attempt:{attempt_id}:note"


def record_contact_attempt(
    conn: Connection, vault: PiiVault, policy: CollectionsPolicy, request: AttemptRequest
) -> AttemptView:
    """Check the conduct rules, then record the attempt (module docstring)."""
    outcome = _check_outcome(request)
    begin_write(conn)
    case = fetch_case(conn, request.case_id)
    if case.status != CaseStatus.OPEN:
        raise ConflictError("the case is closed", field="case_id", code="case_not_open")
    try:
        template = _check_conduct(conn, policy, case, request)
    except ConductRuleBreach as breach:
        log_breach(breach, case_id=case.id, channel=request.channel.value, agent=request.agent)
        raise
    attempt_id = _insert(conn, vault, case, request, outcome, template, policy)
    if template is not None and request.channel in MESSAGE_CHANNELS:
        facts = CaseFacts(
            Fen(case.past_due_fen), Fen(case.outstanding_fen), case.days_past_due, case.bucket
        )
        message = Notification(
            NotificationPayload(
                notification_id=attempt_id,
                channel=request.channel.value,
                credit_line_id=case.credit_line_id,
                party=request.party,
                template_code=template.code,
                template_version=template.version,
                body=render(template, facts),
            )
        )
        enqueue_core(conn, [message])
    return fetch_attempt(conn, vault, attempt_id)


def _check_outcome(request: AttemptRequest) -> Outcome:
    if len(request.note or "") > NOTE_CHARS_MAX:
        raise CreditNetValueError(f"a note has at most {NOTE_CHARS_MAX} characters", field="note")
    if request.channel in MESSAGE_CHANNELS:
        if request.outcome not in (None, Outcome.QUEUED):
            raise CreditNetValueError("a message's outcome is `queued`", field="outcome")
        return Outcome.QUEUED
    if request.outcome is None or request.outcome is Outcome.QUEUED:
        raise CreditNetValueError("a call or agency contact needs its outcome", field="outcome")
    return request.outcome


def _check_conduct(
    conn: Connection, policy: CollectionsPolicy, case: CaseView, request: AttemptRequest
) -> TemplateView | None:
    """Every conduct rule, in the module's order; the day's count under the borrower's
    case locks."""
    party = check_party(request.party, request.channel)
    registered = find_contact(conn, case.credit_line_id, party) is not None
    check_registered(party, request.channel, registered)
    check_contact_hours(policy, request.contacted_at)
    check_daily_count(policy, _count_today(conn, policy, case.customer_ref, request.contacted_at))
    template_id = request.template_id
    template = None if template_id is None else find_template(conn, template_id)
    check_template(template, request.channel, party, named=template_id is not None)
    return template


def _count_today(
    conn: Connection, policy: CollectionsPolicy, customer_ref: str, at: datetime
) -> int:
    """Attempts about the borrower on the local day of `at`, counted after locking the
    borrower's open cases (PostgreSQL), so two concurrent attempts count one another."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            select(case_table.c.id)
            .where(
                (case_table.c.customer_ref == customer_ref)
                & (case_table.c.status == CaseStatus.OPEN.value)
            )
            .order_by(case_table.c.id)
            .with_for_update()
        ).all()
    table = attempt_table
    return int(
        conn.execute(
            select(func.count()).where(
                (table.c.customer_ref == customer_ref)
                & (table.c.local_date == compute_local_date(policy, at))
            )
        ).scalar_one()
    )


def _insert(
    conn: Connection,
    vault: PiiVault,
    case: CaseView,
    request: AttemptRequest,
    outcome: Outcome,
    template: TemplateView | None,
    policy: CollectionsPolicy,
) -> int:
    table = attempt_table
    message = request.channel in MESSAGE_CHANNELS
    attempt_id = int(
        conn.execute(
            table.insert()
            .values(
                case_id=case.id,
                credit_line_id=case.credit_line_id,
                customer_ref=case.customer_ref,
                party=request.party,
                channel=request.channel.value,
                template_id=None if template is None else template.id,
                contacted_at=to_utc(request.contacted_at).replace(tzinfo=None),
                local_date=compute_local_date(policy, request.contacted_at),
                outcome=outcome.value,
                agent=request.agent,
                delivery=Delivery.QUEUED.value if message else None,
            )
            .returning(table.c.id)
        ).scalar_one()
    )
    if request.note:
        conn.execute(
            table.update()
            .where(table.c.id == attempt_id)
            .values(note_enc=vault.encrypt(request.note, get_note_context(attempt_id)))
        )
    return attempt_id


def _view(vault: PiiVault, row: RowMapping) -> AttemptView:
    sealed = row["note_enc"]
    attempt_id = int(row["id"])
    return AttemptView(
        id=attempt_id,
        case_id=int(row["case_id"]),
        credit_line_id=int(row["credit_line_id"]),
        party=str(row["party"]),
        channel=str(row["channel"]),
        template_id=row["template_id"],
        contacted_at=row["contacted_at"].replace(tzinfo=UTC),
        local_date=row["local_date"],
        outcome=str(row["outcome"]),
        note=None if sealed is None else vault.decrypt(bytes(sealed), get_note_context(attempt_id)),
        agent=str(row["agent"]),
        delivery=row["delivery"],
        provider_ref=row["provider_ref"],
    )


def fetch_attempt(conn: Connection, vault: PiiVault, attempt_id: int) -> AttemptView:
    row = conn.execute(select(attempt_table).where(attempt_table.c.id == attempt_id)).mappings()
    return _view(vault, row.one())


def fetch_attempts(conn: Connection, vault: PiiVault, case_id: int) -> list[AttemptView]:
    """A case's attempts, oldest first, with their notes."""
    rows = conn.execute(
        select(attempt_table).where(attempt_table.c.case_id == case_id).order_by(attempt_table.c.id)
    ).mappings()
    return [_view(vault, row) for row in rows]
