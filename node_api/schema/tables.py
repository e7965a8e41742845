"""Imports every table module so `SQLModel.metadata` is complete (for Alembic)."""

from sqlmodel import SQLModel

import node_api.auth.keys
import node_api.collections.tables
import node_api.events.tables
import node_api.idempotency
import node_api.kernel.outbox_table
import node_api.ledger.schema
import node_api.lending.bill_tables
import node_api.lending.customer_credit
import node_api.lending.eod.tables
import node_api.lending.installment_tables
import node_api.lending.lines
import node_api.lending.product_versions
import node_api.lending.purchase_tables
import node_api.lending.purchases
import node_api.lending.repayments
import node_api.onboarding.liveness_tables
import node_api.onboarding.provenance_tables
import node_api.onboarding.tables
import node_api.risk.live_monitoring
import node_api.risk.registry_tables
import oracles.scaleout_tables
import oracles.tables
import settlement.tables

metadata = SQLModel.metadata
