"""The event publisher's durable state: one cursor per source table, and the delinquency
buckets it last published.

`position` is the highest source row id such that every row at or below it was either
published (and acknowledged by JetStream) or is known not to exist (an id a rolled-back
transaction consumed). It moves only after the publish acknowledgements.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class EventCursor(SQLModel, table=True):
    """How far the publisher got in one source table."""

    __tablename__ = "event_cursor"

    source: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    position: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


def _table(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


CURSOR_TABLE = _table(EventCursor)


class EventLineBucket(SQLModel, table=True):
    """The delinquency bucket the stream last published for a line (none: current, M0).

    End of day updates `line_delinquency` in place; the publisher compares it with this
    table after each finished end-of-day run and publishes the differences.
    """

    __tablename__ = "event_line_bucket"

    credit_line_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False)
    )
    bucket: str = Field(sa_column=sa.Column(sa.String(4), nullable=False))
    as_of: date = Field(sa_column=sa.Column(sa.Date, nullable=False))


LINE_BUCKET_TABLE = _table(EventLineBucket)
