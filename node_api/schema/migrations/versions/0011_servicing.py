"""(reserved: filled in by the change that needs it)

Revision ID: 0011_servicing
Revises: 0010_collections
"""

from __future__ import annotations

revision = "0011_servicing"
down_revision = "0010_collections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
