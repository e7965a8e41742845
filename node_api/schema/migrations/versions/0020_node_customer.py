"""The node's own rows name a customer too, and conflict targets lead with the customer:
step 2 of partitioning by customer id.

Revision ID: 0020_node_customer
Revises: 0019_customer_ids

A partitioned table's key cannot be NULL, so the rows migration 0019 left without a
customer — the node's and its partners' accounts, the batches that name no credit line,
and those batches' postings and settlement events — get the node's sentinel customer, the
empty string (`node_api.ledger.accounts.NODE_CUSTOMER`; no customer's id is empty). And
the two unique keys the code names in `INSERT ... ON CONFLICT` get a twin led by the
customer (`ledger_account (customer_id, code)`, `collections_case (customer_ref,
credit_line_id, opened_on)`), the form a hash-partitioned table can enforce
(`creditnet migrate --partitions N`, `node_api/schema/partitioning.py`).

Expand only (data filled in, unique indexes added; the old keys stay): nodes of the
previous release keep writing NULL for the node's rows during a roll, and
`creditnet customer-ids --fill` gives those the sentinel afterwards.
"""

from __future__ import annotations

from alembic import op

revision = "0020_node_customer"
down_revision = "0019_customer_ids"
branch_labels = None
depends_on = None

_NODE_BATCHES = "SELECT id FROM posting_batch WHERE credit_line_id IS NULL"


def upgrade() -> None:
    for name in ("ledger_account", "posting_batch"):
        op.execute(
            f"UPDATE {name} SET customer_id = '' "  # noqa: S608 (constant names)
            "WHERE customer_id IS NULL AND credit_line_id IS NULL"
        )
    for name in ("posting", "settlement_event"):
        op.execute(
            f"UPDATE {name} SET customer_id = '' "  # noqa: S608 (constant names)
            f"WHERE customer_id IS NULL AND batch_id IN ({_NODE_BATCHES})"
        )
    op.create_index(
        "uq_ledger_account_customer_code", "ledger_account", ["customer_id", "code"], unique=True
    )
    op.create_index(
        "uq_collections_case_customer_line_opened",
        "collections_case",
        ["customer_ref", "credit_line_id", "opened_on"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_collections_case_customer_line_opened", table_name="collections_case")
    op.drop_index("uq_ledger_account_customer_code", table_name="ledger_account")
    for name in ("posting", "settlement_event", "posting_batch", "ledger_account"):
        op.execute(f"UPDATE {name} SET customer_id = NULL WHERE customer_id = ''")  # noqa: S608
