"""Decisioning: the model registry, its activation trail, and champion/challenger arms.

Revision ID: 0009_risk_models
Revises: 0008_accrual_carry

Hand-written for SQLite and PostgreSQL alike; see `node_api/risk/registry_tables.py`
for what each table and column means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_risk_models"
down_revision = "0008_accrual_carry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_model",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(80), nullable=False, unique=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("characteristics", sa.JSON(), nullable=False),
        sa.Column("data_fingerprint", sa.String(80), nullable=False),
        sa.Column("fingerprint_source", sa.String(8), nullable=False),
        sa.Column("registered_by", sa.String(32), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "risk_model_activation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("previous_model_version", sa.Integer(), nullable=True),
        sa.Column("previous_model_id", sa.String(80), nullable=True),
        sa.Column("activated_by", sa.String(32), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_risk_model_activation_product", "risk_model_activation", ["product_code", "id"]
    )
    op.create_table(
        "risk_decision_arm",
        sa.Column("application_id", sa.String(32), primary_key=True),
        sa.Column("arm", sa.String(12), primary_key=True),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("deciding", sa.Boolean(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("total_limit_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason_codes", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_risk_decision_arm_product_date",
        "risk_decision_arm",
        ["product_code", "business_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_risk_decision_arm_product_date", table_name="risk_decision_arm")
    op.drop_table("risk_decision_arm")
    op.drop_index("ix_risk_model_activation_product", table_name="risk_model_activation")
    op.drop_table("risk_model_activation")
    op.drop_table("risk_model")
