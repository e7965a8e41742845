"""The business-date indexes of posting batches and settlement events are BRIN.

Revision ID: 0022_brin_dates
Revises: 0021_line_locks

`ix_posting_batch_as_of` and `ix_settlement_event_as_of` were B-trees: every purchase
wrote four leaf entries into them (its batch and its three events), each a WAL record,
for indexes no hot query reads (the settlement close takes every unclaimed event up to
its date; end of day finds a line's batches by line). Both tables are append-only and
their rows arrive nearly in business-date order (a use may be backdated a few days), so
a BRIN index — the least and greatest date of each range of 128 pages — answers a date
range with a few ranges to read, and an insert writes into it only when it widens its
range's summary. `autosummarize` has autovacuum summarize each range as it fills; until
then the range is read whatever the dates asked (never a wrong answer).

PostgreSQL only (SQLite keeps its B-trees). Each index is rebuilt in one pass of its
table under a lock that blocks writes to it; on a large table run it in a quiet window.
Expand-only in effect: the old and the new release read and write the tables the same way.
"""

from __future__ import annotations

from alembic import op

revision = "0022_brin_dates"
down_revision = "0021_line_locks"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_posting_batch_as_of", "posting_batch"),
    ("ix_settlement_event_as_of", "settlement_event"),
)


def _rebuild(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    options = " WITH (autosummarize = on)" if method == "brin" else ""
    for name, table in _INDEXES:
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {table} USING {method} (as_of){options}")


def upgrade() -> None:
    _rebuild("brin")


def downgrade() -> None:
    _rebuild("btree")
