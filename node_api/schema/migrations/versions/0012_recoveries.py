"""(reserved: filled in by the change that needs it)

Revision ID: 0012_recoveries
Revises: 0011_servicing
"""

from __future__ import annotations

revision = "0012_recoveries"
down_revision = "0011_servicing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
