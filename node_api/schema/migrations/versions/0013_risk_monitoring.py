"""Decisioning: liveness challenges and their verified results; version-2 agreement terms
(decision provenance).

Revision ID: 0013_risk_monitoring
Revises: 0012_recoveries

Hand-written for SQLite and PostgreSQL alike; see `node_api/onboarding/liveness_tables.py`
and `node_api/onboarding/provenance_tables.py` for what each table and column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_risk_monitoring"
down_revision = "0012_recoveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "liveness_challenge",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("application_id", sa.String(32), nullable=True),
        sa.Column("provider_id", sa.String(64), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=True),
        sa.Column("face_match_bps", sa.Integer(), nullable=True),
        sa.Column("result_sha256", sa.String(71), nullable=True),
    )
    op.create_index(
        "ix_liveness_challenge_application",
        "liveness_challenge",
        ["application_id"],
        unique=True,
    )
    op.create_table(
        "agreement_terms",
        sa.Column("agreement_id", sa.String(66), primary_key=True),
        sa.Column("application_id", sa.String(32), nullable=False, unique=True),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("terms_hash", sa.String(66), nullable=False, unique=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("input_salt", sa.LargeBinary(32), nullable=False),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agreement_terms")
    op.drop_index("ix_liveness_challenge_application", table_name="liveness_challenge")
    op.drop_table("liveness_challenge")
