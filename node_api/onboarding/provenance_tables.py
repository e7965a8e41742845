"""Agreement terms (version 2): what each agreement's on-chain `termsHash` commits to.

One row per agreement opened since decision provenance exists: the canonical terms
document whose keccak256 is the agreement's `termsHash` (the product terms' hash, the
model and policy that decided, when, and the hash of the decision's inputs), and the
random salt of that input hash. The salt never leaves the node: with it and the
application's decrypted inputs the node can show the hash is of those inputs, while the
hash alone reveals nothing about them. Agreements opened before have the product terms'
hash on-chain (version 1) and no row here.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table, Text
from sqlmodel import SQLModel

agreement_terms_table = Table(
    "agreement_terms",
    SQLModel.metadata,
    Column("agreement_id", String(66), primary_key=True),
    Column("application_id", String(32), nullable=False, unique=True),
    Column("product_code", String(32), nullable=False),
    Column("product_version", Integer, nullable=False),
    Column("terms_hash", String(66), nullable=False, unique=True),
    Column("document", Text, nullable=False),
    Column("input_salt", LargeBinary(32), nullable=False),
    Column("model_id", String(80), nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("decided_at", DateTime, nullable=False),
    Column("customer_id", String(64), nullable=True),
)
"""Version-2 agreement terms, written with the agreement's outbox row; never updated."""
