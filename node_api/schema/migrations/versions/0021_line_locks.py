"""The authorization batch locks its lines' rows only, in id order, then reads their trees.

Revision ID: 0021_line_locks
Revises: 0020_node_customer

`creditnet_use_batch_open` (migration 0016) locked each claimed line's row and every
limit node of it (FOR NO KEY UPDATE on the join, node id order). A line's nodes are
written only by a transaction holding the line's lock (`node_api.ledger.sql`, the lock
order), so the line row's lock guards them and the node locks were three row locks a
purchase (each a WAL record) that protected nothing more. The function now locks the
line rows alone, in id order, and reads the trees in the next statement: each statement
of the function takes a new snapshot, so the nodes are read as the transactions it
waited for left them (a statement that waits for a lock sees only the rows it locks as
committed meanwhile: reading the nodes in the locking statement would miss their usage).
The Python lockers (`lending.lines.fetch_lines(lock=True)`, end of day's `_lock_lines`)
do the same.

Expand only (the function's signature and answer are unchanged). During a roll, a node of
the previous release still locks nodes before their line; a batch of this release holding
a line and then updating one of its nodes can meet such a transaction in a deadlock,
which PostgreSQL breaks by failing one of the two (the group committer retries a failed
batch's requests one by one); once the roll is over no transaction locks a node first.
"""

from __future__ import annotations

from alembic import op

from node_api.schema.migrations.earlier import load_migration

revision = "0021_line_locks"
down_revision = "0020_node_customer"
branch_labels = None
depends_on = None

_EDITS = (
    (
        "    -- Then the claimed requests' lines, every limit node and the line row, in node id"
        " order.\n",
        "    -- Then the claimed requests' lines: their rows locked in id order (a line's lock\n"
        "    -- guards its nodes), then, in a new statement (a new snapshot), their trees.\n"
        "    PERFORM 1 FROM credit_line l WHERE l.id = ANY(claimed_lines)\n"
        "    ORDER BY l.id FOR NO KEY UPDATE;\n",
    ),
    ("        ORDER BY n.id\n        FOR NO KEY UPDATE\n", "        ORDER BY n.id\n"),
)


def _open_function(lines_only: bool) -> str:
    """Migration 0016's `creditnet_use_batch_open`, as it was or locking the lines only."""
    module = load_migration("0016_use_batch_function.py")
    text: str = module._OPEN
    for old, new in _EDITS:
        assert text.count(old) == 1, old
        if lines_only:
            text = text.replace(old, new)
    return text


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_open_function(lines_only=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_open_function(lines_only=False))
