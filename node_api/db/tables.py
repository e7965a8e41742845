"""Imports every table module so `SQLModel.metadata` is complete (for Alembic)."""

from sqlmodel import SQLModel

import node_api.auth.keys  # noqa: F401
import node_api.idempotency  # noqa: F401
import node_api.ledger.schema  # noqa: F401
import node_api.lending.lines  # noqa: F401
import node_api.lending.product_versions  # noqa: F401
import node_api.lending.purchases  # noqa: F401
import node_api.lending.repayments  # noqa: F401
import node_api.onboarding.tables  # noqa: F401
import node_api.risk.live_monitoring  # noqa: F401
import oracles.tables  # noqa: F401

metadata = SQLModel.metadata
