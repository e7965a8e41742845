"""Liveness challenges: the nonces the node issues, and the verified result each one bore.

A row is written when the node issues a nonce and completed, in the application's own
transaction, when an application presents a provider's signed result over it: the
application id (single use: a second application with the same nonce finds it taken),
and the verified verdict (what replay and simulation read). Nothing here is personal
data: the nonce is random, the verdict a flag and a similarity in basis points.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table
from sqlmodel import SQLModel

NONCE_CHARS = 32
"""128 random bits as lowercase hex."""
PROVIDER_ID_CHARS = 64

liveness_challenge_table = Table(
    "liveness_challenge",
    SQLModel.metadata,
    Column("nonce", String(NONCE_CHARS), primary_key=True),
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("application_id", String(32), nullable=True),
    Column("provider_id", String(PROVIDER_ID_CHARS), nullable=True),
    Column("live", Boolean, nullable=True),
    Column("face_match_bps", Integer, nullable=True),
    Column("result_sha256", String(71), nullable=True),
    Index("ix_liveness_challenge_application", "application_id", unique=True),
)
"""One row per issued nonce; the application columns are null until it is used."""
