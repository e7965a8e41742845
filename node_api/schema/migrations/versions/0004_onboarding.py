"""Onboarding and risk: customers, applications, fraud history, blacklist, policies,
live scorecard counts.

Revision ID: 0004_onboarding
Revises: 0003_oracles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_onboarding"
down_revision = "0003_oracles"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HASH = sa.LargeBinary(32)


def upgrade() -> None:
    _customers_and_applications()
    _fraud_history()
    _policies_and_monitoring()


def _customers_and_applications() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("id_number_hash", HASH, nullable=False, unique=True),
        sa.Column("pii_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
    )
    op.create_table(
        "loan_application",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("inputs_enc", sa.LargeBinary(), nullable=False),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("score_detail", sa.JSON(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("fraud_hits", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason_codes", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("existing_customer", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("credit_line_id", sa.BigInteger(), nullable=True),
        sa.Column("agreement_id", sa.String(66), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("review_action", sa.String(16), nullable=True),
        sa.Column("review_reason", sa.String(64), nullable=True),
        sa.Column("reviewer_key_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_loan_application_customer_id", "loan_application", ["customer_id"])
    op.create_index("ix_loan_application_status", "loan_application", ["status"])


def _fraud_history() -> None:
    op.create_table(
        "application_attribute",
        sa.Column("application_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("value_hash", HASH, nullable=False),
        sa.Column("identity_hash", HASH, nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_application_attribute_window",
        "application_attribute",
        ["kind", "value_hash", "applied_at"],
    )
    op.create_table(
        "fraud_ring_link",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("identity_hash", HASH, nullable=False),
        sa.Column("attribute_hash", HASH, nullable=False),
    )
    op.create_table(
        "fraud_blacklist",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("value_hash", HASH, primary_key=True),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def _policies_and_monitoring() -> None:
    op.create_table(
        "onboarding_policy",
        sa.Column("product_code", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("document_hash", sa.String(80), nullable=False),
    )
    op.create_table(
        "risk_live_count",
        sa.Column("model_id", sa.String(80), primary_key=True),
        sa.Column("characteristic", sa.String(128), primary_key=True),
        sa.Column("bin_index", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("shard", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "risk_live_count",
        "onboarding_policy",
        "fraud_blacklist",
        "fraud_ring_link",
        "application_attribute",
        "loan_application",
        "customer",
    ):
        op.drop_table(table)
