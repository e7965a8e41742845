"""Room on each page of `ledger_account` for its balance updates (fillfactor 80).

Revision ID: 0017_account_fillfactor
Revises: 0016_use_batch_function

Every posting updates its accounts' balances. Pages written by COPY or INSERT are full,
so an account's first update cannot stay on its page: PostgreSQL writes the new row
version elsewhere and inserts it into all three indexes (the code index alone is 1.4 GB
at a million lines). With a fifth of each page free, the update stays on the page and
no index changes (a HOT update). Measured on a 1M-line end of day: the balance update of
a batch 138-160 -> 48 ms (bill step) and 84 -> 17 ms (due step), PostgreSQL CPU over the
close 223 -> 199 s. New pages get the room at once; an existing database's old pages
only after a rewrite (`VACUUM FULL ledger_account` or pg_repack, in a quiet hour).

Expand only (a storage parameter; no column or table changes), PostgreSQL only: SQLite
has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0017_account_fillfactor"
down_revision = "0016_use_batch_function"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ledger_account SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ledger_account RESET (fillfactor)")
