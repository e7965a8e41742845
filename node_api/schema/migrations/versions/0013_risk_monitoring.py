"""(reserved: filled in by the change that needs it)

Revision ID: 0013_risk_monitoring
Revises: 0012_recoveries
"""

from __future__ import annotations

revision = "0013_risk_monitoring"
down_revision = "0012_recoveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
