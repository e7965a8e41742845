"""The node's business date: the open day postings are dated to when a request does not
say otherwise. Only end of day moves it, and only forward. Nothing reads the wall clock.

Days before the business date are closed: no posting may be dated to them.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.ledger.schema import business_date_table
from node_api.ledger.sql import begin_write


def fetch_business_date(conn: Connection) -> date | None:
    """The current business date, or None before it is first set."""
    value = conn.execute(
        select(business_date_table.c.as_of).where(business_date_table.c.id == 1)
    ).scalar_one_or_none()
    return value if isinstance(value, date) else None


def set_business_date(conn: Connection, as_of: date) -> date:
    """Set the business date (first time) or move it forward; return the previous one or
    `as_of` itself the first time. Moving it backwards would reopen closed days: refused.
    """
    begin_write(conn)
    current = fetch_business_date(conn)
    if current is None:
        conn.execute(business_date_table.insert().values(id=1, as_of=as_of))
        return as_of
    if as_of < current:
        raise ConflictError(
            f"the business date is {current.isoformat()}; it only moves forward",
            field="as_of",
            code="business_date_backwards",
        )
    conn.execute(
        update(business_date_table).where(business_date_table.c.id == 1).values(as_of=as_of)
    )
    return current


def resolve_as_of(requested: date | None, business_date: date | None) -> date:
    """The date a posting gets: the requested one (not in a closed day) or the business date.

    Raises CreditNetValueError(field="as_of") when neither is known or the day is closed.
    """
    if requested is None:
        if business_date is None:
            raise CreditNetValueError(
                "as_of is required until the node's business date is set: set it with "
                'POST /v1/ledger/business-date {"as_of": "YYYY-MM-DD"} (lender_admin) or '
                "creditnet business-date --set YYYY-MM-DD",
                field="as_of",
                code="business_date_not_set",
            )
        return business_date
    if business_date is not None and requested < business_date:
        raise CreditNetValueError(
            f"{requested.isoformat()} is a closed day (business date {business_date.isoformat()})",
            field="as_of",
            code="closed_day",
        )
    return requested
