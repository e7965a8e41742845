"""API keys as operators make them, with `creditnet keys create` or `POST /v1/keys`: the
role's rules (`node_api.auth.keys`) plus a check only the node as a whole can make: a
partner key speaks for a partner registered in the settlement books."""

from __future__ import annotations

from sqlmodel import Session

from node_api.auth.keys import Role, create_api_key
from node_api.kernel.errors import CreditNetValueError, NotFoundError
from settlement.partners import fetch_partner_or_none


def create_operator_key(
    session: Session, role: Role, *, pepper: bytes, partner_id: int | None, label: str
) -> str:
    """A new key (returned in full, stored hashed); NotFoundError for an unknown partner."""
    if role is Role.PARTNER:
        if partner_id is None:
            raise CreditNetValueError(
                "a partner key needs the partner's id (the partner_id POST /v1/partners "
                "answered; GET /v1/partners lists them)",
                field="partner_id",
            )
        if fetch_partner_or_none(session.connection(), partner_id) is None:
            raise NotFoundError(
                f"no partner {partner_id}; register it first with POST /v1/partners "
                "(GET /v1/partners lists the registered ones), then create its key",
                field="partner_id",
            )
    return create_api_key(session, role, pepper=pepper, partner_id=partner_id, label=label)
