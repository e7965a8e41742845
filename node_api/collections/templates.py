"""Message templates: written, approved by a lender administrator other than their
author, and only then sent.

A body names facts of the case in braces (`{past_due_yuan}`); nothing else may be filled
in, so no template can carry personal data. A template for the emergency contact may
name no fact at all: the debt is never disclosed to a third party.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from typing import Final

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping

from node_api.collections.model import Channel, Party, TemplateStatus
from node_api.collections.tables import template_table
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import Fen

BODY_CHARS_MAX: Final = 500
PLACEHOLDERS: Final = frozenset({"past_due_yuan", "outstanding_yuan", "days_past_due", "bucket"})
"""The case facts a borrower's template may name."""


class TemplateView(BaseModel):
    """A template version as stored (also its API view)."""

    model_config = ConfigDict(frozen=True)

    id: int
    code: str
    version: int
    channel: str
    party: str
    body: str
    status: str
    created_on: date
    created_by: str
    approved_on: date | None
    approved_by: str | None

    @property
    def is_approved(self) -> bool:
        return self.status == TemplateStatus.APPROVED


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What a template may say about a case."""

    past_due_fen: Fen
    outstanding_fen: Fen
    days_past_due: int
    bucket: str


def _view(row: RowMapping) -> TemplateView:
    return TemplateView(**{name: row[name] for name in TemplateView.model_fields})


def check_body(body: str, party: Party) -> None:
    """Refuse a body that names anything but `PLACEHOLDERS` (or, for the emergency
    contact, anything at all), or formats a value."""
    if not body.strip() or len(body) > BODY_CHARS_MAX:
        raise CreditNetValueError(f"a body has 1 to {BODY_CHARS_MAX} characters", field="body")
    try:
        parts = list(string.Formatter().parse(body))
    except ValueError:
        raise CreditNetValueError("unbalanced braces in the body", field="body") from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise CreditNetValueError(
                "a body may only name " + ", ".join(sorted(f"{{{p}}}" for p in PLACEHOLDERS)),
                field="body",
                code="template_placeholder_unknown",
            )
        if party is Party.EMERGENCY_CONTACT:
            raise CreditNetValueError(
                "a message to the emergency contact may not disclose the debt",
                field="body",
                code="template_discloses_debt",
            )


def format_yuan(amount_fen: Fen) -> str:
    """12,345 fen → '123.45' (exact, for message text)."""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{'-' if amount_fen < 0 else ''}{whole}.{cents:02d}"


def render(template: TemplateView, facts: CaseFacts) -> str:
    """The message text of `template` for a case."""
    values = {
        "past_due_yuan": format_yuan(facts.past_due_fen),
        "outstanding_yuan": format_yuan(facts.outstanding_fen),
        "days_past_due": str(facts.days_past_due),
        "bucket": facts.bucket,
    }
    return template.body.format_map(values)


def create_template(
    conn: Connection, *, code: str, channel: Channel, party: Party, body: str, on: date, by: str
) -> TemplateView:
    """A new draft version of template `code` (versions count from 1 per code)."""
    check_body(body, party)
    table = template_table
    latest = conn.execute(
        select(func.max(table.c.version)).where(table.c.code == code)
    ).scalar_one_or_none()
    template_id = conn.execute(
        table.insert()
        .values(
            code=code,
            version=int(latest or 0) + 1,
            channel=channel.value,
            party=party.value,
            body=body,
            status=TemplateStatus.DRAFT.value,
            created_on=on,
            created_by=by,
        )
        .returning(table.c.id)
    ).scalar_one()
    return fetch_template(conn, int(template_id))


def approve_template(conn: Connection, template_id: int, *, on: date, by: str) -> TemplateView:
    """Approve a draft; its author may not approve it (four eyes)."""
    template = fetch_template(conn, template_id, lock=True)
    if template.is_approved:
        return template
    if template.created_by == by:
        raise ConflictError(
            "a template is approved by someone other than its author",
            field="template_id",
            code="template_self_approval",
        )
    table = template_table
    conn.execute(
        table.update()
        .where(table.c.id == template_id)
        .values(status=TemplateStatus.APPROVED.value, approved_on=on, approved_by=by)
    )
    return fetch_template(conn, template_id)


def fetch_template(conn: Connection, template_id: int, *, lock: bool = False) -> TemplateView:
    query = select(template_table).where(template_table.c.id == template_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise NotFoundError(f"template {template_id} does not exist", field="template_id")
    return _view(row)


def find_template(conn: Connection, template_id: int) -> TemplateView | None:
    """The template, or None (a contact attempt naming an unknown one is refused as
    unapproved, so ids cannot be probed)."""
    row = (
        conn.execute(select(template_table).where(template_table.c.id == template_id))
        .mappings()
        .one_or_none()
    )
    return None if row is None else _view(row)


def fetch_templates(conn: Connection, limit: int = 200) -> list[TemplateView]:
    """Every template version, newest first."""
    rows = conn.execute(
        select(template_table).order_by(template_table.c.id.desc()).limit(limit)
    ).mappings()
    return [_view(row) for row in rows]
