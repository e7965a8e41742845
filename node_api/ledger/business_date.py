"""The node's business date: the open day postings are dated to when a request does not
say otherwise. End of day moves it, one day at a time; an operator may set the first one
or move it forward (never back). Nothing here reads the wall clock: how far ahead of the
calendar an operator may move it is checked at the HTTP and CLI edges
(`check_business_date_ahead`, given the calendar date they read).

Days before the business date are closed for end of day. A request may still be dated
back to `backdate_window_days` days before the business date (a payment value-dated to
the day it was made, a merchant's late file): its postings carry that date, land in the
next settlement cycle and the next bill cut, and end of day does not redo the closed
days. A request may never be dated after the business date: nothing would bill it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from node_api.kernel.errors import ConflictError, CreditNetValueError
from node_api.ledger.schema import business_date_table
from node_api.ledger.sql import begin_write

DEFAULT_BACKDATE_WINDOW_DAYS: Final = 7
"""Days before the business date a request may be dated by default
(`CREDITNET_BACKDATE_WINDOW_DAYS`)."""
LAST_BUSINESS_DATE: Final = date.max - timedelta(days=1)
"""The latest business date there can be: 9999-12-31 has no next day for end of day to
move the date to. (The HTTP and CLI edges keep the date within days of the calendar.)"""


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
    if as_of > LAST_BUSINESS_DATE:
        raise CreditNetValueError(
            f"as_of {as_of.isoformat()} is past the latest possible business date "
            f"({LAST_BUSINESS_DATE.isoformat()})",
            field="as_of",
            code="business_date_out_of_range",
        )
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


def check_business_date_ahead(as_of: date, calendar_date: date, max_ahead_days: int) -> None:
    """Refuse a business date more than `max_ahead_days` after `calendar_date` (the
    server's date, read by the caller at the HTTP or CLI edge): a date set by mistake far
    ahead could never be taken back, and every request would be dated to it."""
    latest = calendar_date + timedelta(days=max_ahead_days)
    if as_of > latest:
        raise CreditNetValueError(
            f"as_of {as_of.isoformat()} is more than {max_ahead_days} days ahead of the "
            f"server's date {calendar_date.isoformat()} (latest allowed {latest.isoformat()})",
            field="as_of",
            code="business_date_too_far_ahead",
            latest_allowed=latest.isoformat(),
        )


def resolve_as_of(
    requested: date | None,
    business_date: date | None,
    backdate_window_days: int = DEFAULT_BACKDATE_WINDOW_DAYS,
) -> date:
    """The date a posting gets: the requested one or the business date.

    A requested date must lie from `backdate_window_days` days before the business date
    through the business date itself. Raises CreditNetValueError(field="as_of") when
    neither date is known, or the requested one is outside that window (before the
    business date is first set, any requested date is taken as it is).
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
    if business_date is None:
        return requested
    if requested > business_date:
        raise CreditNetValueError(
            f"as_of {requested.isoformat()} is after the business date "
            f"{business_date.isoformat()}: nothing may be dated to a day not yet open",
            field="as_of",
            code="as_of_after_business_date",
        )
    earliest = business_date - timedelta(days=backdate_window_days)
    if requested < earliest:
        raise CreditNetValueError(
            f"as_of {requested.isoformat()} is a closed day: requests may be dated back "
            f"{backdate_window_days} days, to {earliest.isoformat()} (business date "
            f"{business_date.isoformat()})",
            field="as_of",
            code="closed_day",
        )
    return requested
