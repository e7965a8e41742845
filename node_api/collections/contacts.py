"""The contact registry: the borrower's and the emergency contact's phone number per line,
sealed by the PII vault.

Agents see the masked form only (`138****5678`); the full number is opened by the
dispatcher at the moment it hands a message to the provider, and never stored elsewhere,
logged or returned.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.engine import Connection

from node_api.collections.model import Party
from node_api.collections.tables import contact_table
from node_api.kernel.errors import NotFoundError
from node_api.ledger.sql import begin_write
from node_api.lending.lines import fetch_line
from node_api.onboarding.identity import normalize_mobile
from node_api.onboarding.pii import PiiVault


class ContactView(BaseModel):
    """A registered contact, its number masked (also its API view)."""

    model_config = ConfigDict(frozen=True)

    credit_line_id: int
    party: str
    address_masked: str
    registered_on: date
    registered_by: str


def get_contact_context(credit_line_id: int, party: Party | str) -> str:
    """The vault context of a registered number (a sealed number opens only in its row)."""
    return f"collections_contact:{credit_line_id}:{Party(party).value}"


def mask_phone(e164: str) -> str:
    """`+8613812345678` → `138****5678`: the first three and last four national digits."""
    national = e164.removeprefix("+86")
    return national[:3] + "*" * max(len(national) - 7, 0) + national[-4:]


def register_contact(
    conn: Connection,
    vault: PiiVault,
    *,
    credit_line_id: int,
    party: Party,
    phone: str,
    on: date,
    by: str,
) -> ContactView:
    """Register (or replace) the party's number for the line."""
    line = fetch_line(conn, credit_line_id)
    e164 = normalize_mobile(phone)
    begin_write(conn)
    table = contact_table
    values = {
        "address_enc": vault.encrypt(e164, get_contact_context(credit_line_id, party)),
        "address_masked": mask_phone(e164),
        "registered_on": on,
        "registered_by": by,
    }
    where = (table.c.credit_line_id == credit_line_id) & (table.c.party == party.value)
    updated = conn.execute(table.update().where(where).values(**values)).rowcount
    if not updated:
        conn.execute(
            table.insert().values(
                credit_line_id=credit_line_id,
                customer_id=line.customer_ref,
                party=party.value,
                **values,
            )
        )
    return fetch_contact(conn, credit_line_id, party)


def find_contact(conn: Connection, credit_line_id: int, party: Party) -> ContactView | None:
    row = (
        conn.execute(
            select(contact_table).where(
                (contact_table.c.credit_line_id == credit_line_id)
                & (contact_table.c.party == party.value)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    return ContactView(**{name: row[name] for name in ContactView.model_fields})


def fetch_contact(conn: Connection, credit_line_id: int, party: Party) -> ContactView:
    contact = find_contact(conn, credit_line_id, party)
    if contact is None:
        raise NotFoundError(f"no {party.value} contact is registered", field="party")
    return contact


def fetch_contacts(conn: Connection, credit_line_id: int) -> list[ContactView]:
    """The line's registered contacts, masked."""
    fetch_line(conn, credit_line_id)
    return [
        contact
        for party in Party
        if (contact := find_contact(conn, credit_line_id, party)) is not None
    ]


def open_address(conn: Connection, vault: PiiVault, credit_line_id: int, party: Party) -> str:
    """The full number, for the provider only (the dispatcher's send)."""
    sealed = conn.execute(
        select(contact_table.c.address_enc).where(
            (contact_table.c.credit_line_id == credit_line_id)
            & (contact_table.c.party == party.value)
        )
    ).scalar_one_or_none()
    if sealed is None:
        raise NotFoundError(f"no {party.value} contact is registered", field="party")
    return vault.decrypt(bytes(sealed), get_contact_context(credit_line_id, party))
