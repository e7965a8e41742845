"""Read views of applications for the lender's operations console: the manual review
queue and the decisions per hour.

Both are read in SQL, paged or aggregated there, and carry no personal data (the inputs
stay encrypted; a row names its application, product, channel, score and reason codes).
The queue is every application whose status is still `review`, oldest first (the order a
reviewer works in), paged by `(applied_at, id)` so a page is one index range. Decisions
per hour count the automatic decisions (`decision`, not the reviewer's) by the UTC hour
they were made, between two explicit instants the caller gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from node_api.kernel.money import Fen
from node_api.onboarding.decision import ApplicationDecision
from node_api.onboarding.fraud_history_sql import from_naive_utc, to_naive_utc
from node_api.onboarding.tables import application_table

REVIEW_PAGE_MAX: Final = 200


class QueuedApplication(BaseModel):
    """One application awaiting a reviewer, no personal data (also its API view)."""

    model_config = ConfigDict(frozen=True)

    application_id: str
    product_code: str
    product_version: int
    channel_id: str
    score: int
    model_id: str
    reason_codes: tuple[str, ...]
    limit_total_fen: Fen
    applied_at: datetime
    business_date: str


@dataclass(frozen=True, slots=True)
class ReviewQueuePage:
    items: tuple[QueuedApplication, ...]
    total: int
    """Every application awaiting review (not only this page)."""
    next_after: str | None
    """The cursor of the next page (`applied_at|id` of this page's last row, the time in
    UTC with a `Z`, so the cursor needs no escaping in a query string), or None."""


@dataclass(frozen=True, slots=True)
class HourlyDecisions:
    hour: str
    """The UTC hour, `YYYY-MM-DDTHH:00`."""
    approved: int
    declined: int
    review: int


def _after(cursor: str | None) -> ColumnElement[bool] | None:
    if not cursor:
        return None
    stamp, _, application_id = cursor.partition("|")
    applied_at = to_naive_utc(datetime.fromisoformat(stamp))
    table = application_table
    return or_(
        table.c.applied_at > applied_at,
        and_(table.c.applied_at == applied_at, table.c.id > application_id),
    )


def fetch_review_queue(
    conn: Connection, *, limit: int, after: str | None = None
) -> ReviewQueuePage:
    """A page of the applications awaiting review, oldest first (module doc). `after` is a
    cursor from a previous page; a malformed one raises ValueError (the route's 4xx)."""
    table = application_table
    waiting = table.c.status == ApplicationDecision.REVIEW.value
    condition = waiting
    after_clause = _after(after)
    if after_clause is not None:
        condition = and_(waiting, after_clause)
    rows = conn.execute(
        select(
            table.c.id,
            table.c.product_code,
            table.c.product_version,
            table.c.channel_id,
            table.c.score,
            table.c.model_id,
            table.c.reason_codes,
            table.c.limits,
            table.c.applied_at,
            table.c.business_date,
        )
        .where(condition)
        .order_by(table.c.applied_at, table.c.id)
        .limit(limit)
    ).all()
    total = conn.execute(select(func.count()).where(waiting)).scalar_one()
    items = tuple(
        QueuedApplication(
            application_id=row.id,
            product_code=row.product_code,
            product_version=row.product_version,
            channel_id=row.channel_id,
            score=row.score,
            model_id=row.model_id,
            reason_codes=tuple(row.reason_codes),
            limit_total_fen=Fen(int(row.limits.get("total", 0))),
            applied_at=from_naive_utc(row.applied_at),
            business_date=row.business_date.isoformat(),
        )
        for row in rows
    )
    next_after = None
    if len(items) == limit:
        last = items[-1]
        stamp = last.applied_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        next_after = f"{stamp}|{last.application_id}"
    return ReviewQueuePage(items=items, total=int(total), next_after=next_after)


def _hour_of(conn: Connection) -> ColumnElement[str]:
    """`applied_at` truncated to its hour, as `YYYY-MM-DDTHH:00`, in this dialect."""
    column = application_table.c.applied_at
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", column), 'YYYY-MM-DD"T"HH24:00')
    return func.strftime("%Y-%m-%dT%H:00", column)


def fetch_decisions_per_hour(
    conn: Connection, *, since: datetime, until: datetime
) -> list[HourlyDecisions]:
    """Automatic decisions by UTC hour in `[since, until)`, oldest hour first; hours without
    applications are left out (module doc)."""
    table = application_table
    hour = _hour_of(conn).label("hour")
    rows = conn.execute(
        select(hour, table.c.decision, func.count())
        .where(table.c.applied_at >= to_naive_utc(since), table.c.applied_at < to_naive_utc(until))
        .group_by(hour, table.c.decision)
        .order_by(hour)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for stamp, decision, count in rows:
        counts.setdefault(str(stamp), {})[str(decision)] = int(count)
    return [
        HourlyDecisions(
            hour=stamp,
            approved=by.get(ApplicationDecision.APPROVED.value, 0),
            declined=by.get(ApplicationDecision.DECLINED.value, 0),
            review=by.get(ApplicationDecision.REVIEW.value, 0),
        )
        for stamp, by in counts.items()
    ]
