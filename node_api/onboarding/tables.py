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

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlmodel import SQLModel

from node_api.ledger.schema import ID_TYPE

PUBLIC_ID_CHARS = 32
"""Customer and application ids: 128 random bits as lowercase hex."""
HASH_BYTES = 32

customer_table = Table(
    "customer",
    SQLModel.metadata,
    Column("id", String(PUBLIC_ID_CHARS), primary_key=True),
    Column("id_number_hash", LargeBinary(HASH_BYTES), nullable=False, unique=True),
    Column("pii_enc", LargeBinary, nullable=False),
    Column("created_on", Date, nullable=False),
)
"""One row per identity ever seen; the dedupe anchor and the lock of its applications."""

application_table = Table(
    "loan_application",
    SQLModel.metadata,
    Column("id", String(PUBLIC_ID_CHARS), primary_key=True),
    Column("customer_id", String(PUBLIC_ID_CHARS), nullable=False, index=True),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("applied_at", DateTime, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("inputs_enc", LargeBinary, nullable=False),
    Column("model_id", String(80), nullable=False),
    Column("score", Integer, nullable=False),
    Column("score_detail", JSON, nullable=False),
    Column("signals", JSON, nullable=False),
    Column("fraud_hits", JSON, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason_codes", JSON, nullable=False),
    Column("limits", JSON, nullable=False),
    Column("existing_customer", Boolean, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("credit_line_id", BigInteger, nullable=True),
    Column("agreement_id", String(66), nullable=True),
    Column("reviewed_at", DateTime, nullable=True),
    Column("review_action", String(16), nullable=True),
    Column("review_reason", String(64), nullable=True),
    Column("reviewer_key_id", String(32), nullable=True),
)
"""Every decision with its encrypted inputs and everything needed to replay it."""

application_attribute_table = Table(
    "application_attribute",
    SQLModel.metadata,
    Column("application_id", String(PUBLIC_ID_CHARS), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("value_hash", LargeBinary(HASH_BYTES), nullable=False),
    Column("identity_hash", LargeBinary(HASH_BYTES), nullable=False),
    Column("applied_at", DateTime, nullable=False),
    Index("ix_application_attribute_window", "kind", "value_hash", "applied_at"),
)
"""Hashed attributes of each application: the velocity and sharing windows read this."""

ring_link_table = Table(
    "fraud_ring_link",
    SQLModel.metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("application_id", String(PUBLIC_ID_CHARS), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("identity_hash", LargeBinary(HASH_BYTES), nullable=False),
    Column("attribute_hash", LargeBinary(HASH_BYTES), nullable=False),
)
"""Append-only log of (identity, shared attribute) links: every process follows it to keep
its ring union-find current, and the offline community job reads all of it."""

blacklist_table = Table(
    "fraud_blacklist",
    SQLModel.metadata,
    Column("kind", String(8), primary_key=True),
    Column("value_hash", LargeBinary(HASH_BYTES), primary_key=True),
    Column("reason_code", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

policy_table = Table(
    "onboarding_policy",
    SQLModel.metadata,
    Column("product_code", String(32), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),
    Column("document_hash", String(80), nullable=False),
)
"""Per-product onboarding policy versions (card, cut-offs, limits, fraud rules); immutable."""
