"""(reserved: filled in by the change that needs it)

Revision ID: 0014_scaleout
Revises: 0013_risk_monitoring
"""

from __future__ import annotations

revision = "0014_scaleout"
down_revision = "0013_risk_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
