"""Onboarding tables: customers, applications, fraud history, blacklist, policies.

Personal data is stored only as AES-GCM envelopes from the PII vault (`*_enc`
columns) and looked up only by keyed hash (`*_hash` columns); nothing here holds a
name, an identity number, a phone number, a device id or an IP address in plaintext.

Lock order of an application (PostgreSQL), after the idempotency key: the customer
row (same-identity applications queue here), then the new credit line and its
accounts, then new rows only (outbox, application, attributes, ring links), and the
shared live-monitoring counters last, in key order, so they are held shortest.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

from node_api.ledger.schema import ID_TYPE

PUBLIC_ID_CHARS = 32
"""Customer and application ids: 128 random bits as lowercase hex."""
HASH_BYTES = 32

customer_table = sa.Table(
    "customer",
    SQLModel.metadata,
    sa.Column("id", sa.String(PUBLIC_ID_CHARS), primary_key=True),
    sa.Column("id_number_hash", sa.LargeBinary(HASH_BYTES), nullable=False, unique=True),
    sa.Column("pii_enc", sa.LargeBinary, nullable=False),
    sa.Column("created_on", sa.Date, nullable=False),
)
"""One row per identity ever seen; the dedupe anchor and the lock of its applications."""

application_table = sa.Table(
    "loan_application",
    SQLModel.metadata,
    sa.Column("id", sa.String(PUBLIC_ID_CHARS), primary_key=True),
    sa.Column("customer_id", sa.String(PUBLIC_ID_CHARS), nullable=False, index=True),
    sa.Column("product_code", sa.String(32), nullable=False),
    sa.Column("product_version", sa.Integer, nullable=False),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Column("channel_id", sa.String(64), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("inputs_enc", sa.LargeBinary, nullable=False),
    sa.Column("model_id", sa.String(80), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("score_detail", sa.JSON, nullable=False),
    sa.Column("signals", sa.JSON, nullable=False),
    sa.Column("fraud_hits", sa.JSON, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason_codes", sa.JSON, nullable=False),
    sa.Column("limits", sa.JSON, nullable=False),
    sa.Column("existing_customer", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("credit_line_id", sa.BigInteger, nullable=True),
    sa.Column("agreement_id", sa.String(66), nullable=True),
    sa.Column("reviewed_at", sa.DateTime, nullable=True),
    sa.Column("review_action", sa.String(16), nullable=True),
    sa.Column("review_reason", sa.String(64), nullable=True),
    sa.Column("reviewer_key_id", sa.String(32), nullable=True),
)
"""Every decision with its encrypted inputs and everything needed to replay it."""

application_attribute_table = sa.Table(
    "application_attribute",
    SQLModel.metadata,
    sa.Column("application_id", sa.String(PUBLIC_ID_CHARS), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("value_hash", sa.LargeBinary(HASH_BYTES), nullable=False),
    sa.Column("identity_hash", sa.LargeBinary(HASH_BYTES), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Index("ix_application_attribute_window", "kind", "value_hash", "applied_at"),
    sa.Column("customer_id", sa.String(64), nullable=True),
)
"""Hashed attributes of each application: the velocity and sharing windows read this."""

ring_link_table = sa.Table(
    "fraud_ring_link",
    SQLModel.metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("application_id", sa.String(PUBLIC_ID_CHARS), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("identity_hash", sa.LargeBinary(HASH_BYTES), nullable=False),
    sa.Column("attribute_hash", sa.LargeBinary(HASH_BYTES), nullable=False),
)
"""Append-only log of (identity, shared attribute) links: every process follows it to keep
its ring union-find current, and the offline community job reads all of it."""

blacklist_table = sa.Table(
    "fraud_blacklist",
    SQLModel.metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("value_hash", sa.LargeBinary(HASH_BYTES), primary_key=True),
    sa.Column("reason_code", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

policy_table = sa.Table(
    "onboarding_policy",
    SQLModel.metadata,
    sa.Column("product_code", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("document_hash", sa.String(80), nullable=False),
)
"""Per-product onboarding policy versions (card, cut-offs, limits, fraud rules); immutable."""
