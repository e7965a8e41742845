"""Every per-customer row names its customer: step 1 of partitioning by customer id.

Revision ID: 0019_customer_ids
Revises: 0018_eod_shard_claims

A nullable `customer_id` on each per-customer table that did not name its customer (see
`node_api/schema/customer_keys.py` for the tables and where each row's customer comes
from), back-filled from the parent rows, and PostgreSQL's authorization batch function
(`creditnet_use_batch_write`, migration 0016) replaced by one that writes it on the
purchases, posting batches, postings and settlement events it inserts, reading each
line's customer itself: it takes the same document, so nodes of the previous release keep
calling it unchanged.

Expand only (nullable columns; a function replaced with one of the same signature and
answers): nodes of the previous release run beside migrated ones during a rolling upgrade
and write rows without the id; `creditnet db customer-ids --fill` back-fills those once the
roll is done. Hand-written for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node_api.schema.migrations.earlier import load_migration

revision = "0019_customer_ids"
down_revision = "0018_eod_shard_claims"
branch_labels = None
depends_on = None

_BY_LINE = ("credit_line_id", "credit_line", "customer_ref")
# Frozen at this revision: table -> (column holding the parent's id, parent, its column
# naming the customer), parents before children.
_PARENTS: dict[str, tuple[str, str, str]] = {
    "limit_node": _BY_LINE,
    "ledger_account": _BY_LINE,
    "posting_batch": _BY_LINE,
    "purchase": _BY_LINE,
    "repayment": _BY_LINE,
    "credit_refund": _BY_LINE,
    "installment_plan": _BY_LINE,
    "bill": _BY_LINE,
    "line_accrual": _BY_LINE,
    "line_delinquency": _BY_LINE,
    "collections_contact": _BY_LINE,
    "collections_recovery": _BY_LINE,
    "collections_compensation": _BY_LINE,
    "collections_debt_sale_line": _BY_LINE,
    "posting": ("batch_id", "posting_batch", "customer_id"),
    "settlement_event": ("batch_id", "posting_batch", "customer_id"),
    "purchase_refund": ("purchase_id", "purchase", "customer_id"),
    "principal_reduction": ("purchase_id", "purchase", "customer_id"),
    "repayment_allocation": ("repayment_id", "repayment", "customer_id"),
    "installment": ("plan_id", "installment_plan", "customer_id"),
    "bill_line": ("bill_id", "bill", "customer_id"),
    "bill_charge": ("bill_id", "bill", "customer_id"),
    "bill_outcome": ("bill_id", "bill", "customer_id"),
    "collections_promise": ("case_id", "collections_case", "customer_ref"),
    "collections_hardship_plan": ("case_id", "collections_case", "customer_ref"),
    "application_attribute": ("application_id", "loan_application", "customer_id"),
    "risk_decision_arm": ("application_id", "loan_application", "customer_id"),
    "agreement_terms": ("application_id", "loan_application", "customer_id"),
}


_DATES_AND_LINES = (
    "    SELECT array_agg(b ->> 0 ORDER BY n), array_agg(b ->> 1 ORDER BY n),\n"
    "           array_agg((b ->> 2)::date ORDER BY n), array_agg((b ->> 3)::bigint ORDER BY n)"
)


def _batch_write_function(with_customers: bool) -> str:
    """Migration 0016's `creditnet_use_batch_write`, as it was or writing customer ids."""
    module = load_migration("0016_use_batch_function.py")
    text: str = module._WRITE
    if not with_customers:
        return text
    edits = [
        (
            "    batch_ids bigint[];\n",
            "    batch_ids bigint[];\n    batch_customers text[];\n",
        ),
        (
            "        principal_open_fen, as_of)\n    SELECT (u ->> 0)::bigint,",
            "        principal_open_fen, as_of, customer_id)\n    SELECT (u ->> 0)::bigint,",
        ),
        (
            "(u ->> 10)::bigint, 0, (u ->> 9)::bigint, (u ->> 11)::date\n",
            "(u ->> 10)::bigint, 0, (u ->> 9)::bigint, (u ->> 11)::date,\n"
            "           coalesce(u ->> 12, (SELECT l.customer_ref FROM credit_line l\n"
            "                               WHERE l.id = (u ->> 1)::bigint))\n",
        ),
        (
            _DATES_AND_LINES + "\n    INTO batch_keys, batch_kinds, batch_dates, batch_lines\n",
            _DATES_AND_LINES + ",\n"  # noqa: S608 (constant text)
            "           array_agg(coalesce(b ->> 4, (SELECT l.customer_ref FROM credit_line l\n"
            "                                        WHERE l.id = (b ->> 3)::bigint)) ORDER BY n)\n"
            "    INTO batch_keys, batch_kinds, batch_dates, batch_lines, batch_customers\n",
        ),
        (
            "    INSERT INTO posting_batch (id, business_key, kind, as_of, credit_line_id)\n"
            "    SELECT * FROM unnest(batch_ids, batch_keys, batch_kinds, batch_dates, "
            "batch_lines);\n",
            "    INSERT INTO posting_batch (id, business_key, kind, as_of, credit_line_id,\n"
            "                               customer_id)\n"
            "    SELECT * FROM unnest(batch_ids, batch_keys, batch_kinds, batch_dates,\n"
            "                         batch_lines, batch_customers);\n",
        ),
        (
            "    INSERT INTO posting (batch_id, account_id, amount_fen, as_of)\n"
            "    SELECT batch_ids[b], account_id, amount_fen, batch_dates[b]\n",
            "    INSERT INTO posting (batch_id, account_id, amount_fen, as_of, customer_id)\n"
            "    SELECT batch_ids[b], account_id, amount_fen, batch_dates[b], batch_customers[b]\n",
        ),
        (
            "        partner_ref, counterparty_ref, amount_fen)\n"
            "    SELECT batch_ids[b], e ->> 1, batch_dates[b], batch_lines[b],\n"
            "           e ->> 5, (e ->> 6)::integer, e ->> 3, e ->> 4, (e ->> 2)::bigint\n",
            "        partner_ref, counterparty_ref, amount_fen, customer_id)\n"
            "    SELECT batch_ids[b], e ->> 1, batch_dates[b], batch_lines[b],\n"
            "           e ->> 5, (e ->> 6)::integer, e ->> 3, e ->> 4, (e ->> 2)::bigint,\n"
            "           batch_customers[b]\n",
        ),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def upgrade() -> None:
    for name in _PARENTS:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("customer_id", sa.String(64), nullable=True))
    for name, (via, parent, column) in _PARENTS.items():
        op.execute(
            f'UPDATE "{name}" SET customer_id = '  # noqa: S608 (names from the table above)
            f'(SELECT p."{column}" FROM "{parent}" p WHERE p.id = "{name}"."{via}") '
            "WHERE customer_id IS NULL"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_batch_write_function(with_customers=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_batch_write_function(with_customers=False))
    for name in reversed(_PARENTS):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("customer_id")
