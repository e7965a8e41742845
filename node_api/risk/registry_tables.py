"""Decisioning tables: registered models, their activations, and each application's arms.

`risk_model` holds every uploaded card, immutable once written: its version is the
number policies name, its `model_id` the content hash applications store.
`risk_model_activation` is the append-only trail of which model each product's policy
decides with: who changed it, when, to which version, from which one.
`risk_decision_arm` holds, for every application decided while a policy runs a
champion/challenger test, what each arm scored and decided (the arm that did not
decide, in shadow). Nothing here is personal data: the routing bucket is a number in
[0, 10 000) drawn from a keyed hash, and scores, codes and limits are not identifying.
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
    String,
    Table,
    Text,
)
from sqlmodel import SQLModel

MODEL_ID_CHARS = 80
KEY_ID_CHARS = 32

model_table = Table(
    "risk_model",
    SQLModel.metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(MODEL_ID_CHARS), nullable=False, unique=True),
    Column("label", String(64), nullable=False),
    Column("card", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("characteristics", JSON, nullable=False),
    Column("data_fingerprint", String(MODEL_ID_CHARS), nullable=False),
    Column("fingerprint_source", String(8), nullable=False),
    Column("registered_by", String(KEY_ID_CHARS), nullable=False),
    Column("registered_at", DateTime, nullable=False),
)
"""Registered scorecard cards, one row per distinct card; never updated."""

model_activation_table = Table(
    "risk_model_activation",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("product_code", String(32), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("model_id", String(MODEL_ID_CHARS), nullable=False),
    Column("previous_model_version", Integer, nullable=True),
    Column("previous_model_id", String(MODEL_ID_CHARS), nullable=True),
    Column("activated_by", String(KEY_ID_CHARS), nullable=False),
    Column("activated_at", DateTime, nullable=False),
    Index("ix_risk_model_activation_product", "product_code", "id"),
)
"""Every change of the model a product decides with (`model_version` null: a packaged
card); append-only."""

decision_arm_table = Table(
    "risk_decision_arm",
    SQLModel.metadata,
    Column("application_id", String(32), primary_key=True),
    Column("arm", String(12), primary_key=True),
    Column("product_code", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("experiment", String(64), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("deciding", Boolean, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("model_id", String(MODEL_ID_CHARS), nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("score", Integer, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("total_limit_fen", BigInteger, nullable=False),
    Column("reason_codes", JSON, nullable=False),
    Index("ix_risk_decision_arm_product_date", "product_code", "business_date"),
    Column("customer_id", String(64), nullable=True),
)
"""Both arms of every application decided under a champion/challenger policy."""
