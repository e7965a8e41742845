"""Imports every table module so `SQLModel.metadata` is complete (for Alembic)."""

from sqlmodel import SQLModel

import node_api.auth.keys  # noqa: F401
import oracles.tables  # noqa: F401

metadata = SQLModel.metadata
