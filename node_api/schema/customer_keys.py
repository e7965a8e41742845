"""Which rows belong to which customer: the distribution key of issue #19's partitioning.

A lender outgrowing one PostgreSQL server partitions (and later distributes with Citus) its
per-customer tables by customer id, so everything about one customer lives on one shard.
Step 1 of that move (docs/SCALING.md) is this: every per-customer table carries the id of
the customer its row belongs to, written by every insert path, so that the partitioned
layout can lead its keys with it.

- The **roots** name the customer themselves: `credit_line.customer_ref` (the id the
  application's decision opened the line for), `loan_application.customer_id`,
  `collections_case.customer_ref`, `collections_contact_attempt.customer_ref` and the PII
  vault's `customer.id`.
- Every other per-customer table has a nullable `customer_id`, equal to its **parent**
  row's customer (the line of a purchase, the batch of a posting, the application of an
  agreement's terms). Rows of the node's own (a posting batch, account or settlement event
  with no credit line) carry `NODE_CUSTOMER` (the empty string, never a customer's id):
  a partitioned table's key cannot be NULL (migration 0020).

`customer_id_mismatches` counts the rows whose `customer_id` differs from their parent
row's (NULL-safe; the roots name their own, so a wrong id anywhere shows on the first row
that differs from its parent): the test fixtures demand none after every
database test, so an insert path that forgets the id fails the suite. `fill_customer_ids`
back-fills rows written without it (by nodes of the previous release during a rolling
upgrade), in bounded batches.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import NamedFromClause

from node_api.ledger.accounts import NODE_CUSTOMER
from node_api.schema.tables import metadata

ROOTS: dict[str, str] = {
    "credit_line": "customer_ref",
    "loan_application": "customer_id",
    "collections_case": "customer_ref",
    "collections_contact_attempt": "customer_ref",
    "customer": "id",
}
"""Per-customer tables that name their customer themselves, and the column that does."""

_BY_LINE = ("credit_line_id", "credit_line")

PARENTS: dict[str, tuple[str, str]] = {
    # table: (its column holding the parent's id, the parent table), parents first.
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
    "posting": ("batch_id", "posting_batch"),
    "settlement_event": ("batch_id", "posting_batch"),
    "purchase_refund": ("purchase_id", "purchase"),
    "principal_reduction": ("purchase_id", "purchase"),
    "repayment_allocation": ("repayment_id", "repayment"),
    "installment": ("plan_id", "installment_plan"),
    "bill_line": ("bill_id", "bill"),
    "bill_charge": ("bill_id", "bill"),
    "bill_outcome": ("bill_id", "bill"),
    "collections_promise": ("case_id", "collections_case"),
    "collections_hardship_plan": ("case_id", "collections_case"),
    "application_attribute": ("application_id", "loan_application"),
    "risk_decision_arm": ("application_id", "loan_application"),
    "agreement_terms": ("application_id", "loan_application"),
}
"""Per-customer tables that carry `customer_id`, and the parent row it is copied from."""

PER_CUSTOMER: frozenset[str] = frozenset(ROOTS) | frozenset(PARENTS)

NODE_OWNED: frozenset[str] = frozenset(
    {"ledger_account", "posting_batch", "posting", "settlement_event"}
)
"""Per-customer tables that also hold the node's own rows (its and its partners' accounts,
batches with no credit line, their postings and events), which carry `NODE_CUSTOMER`."""

REFERENCE: frozenset[str] = frozenset(
    {
        "api_key",
        "business_date",
        "collections_compensation_terms",
        "collections_debt_sale",
        "collections_strategy",
        "collections_strategy_activation",
        "collections_template",
        "fraud_blacklist",
        "onboarding_policy",
        "product_version",
        "risk_model",
        "risk_model_activation",
        "settlement_guarantee",
        "settlement_partner",
    }
)
"""Shared tables every customer's rows are read with (Citus: reference tables, copied to
every worker); small and rarely written."""

NODE_LOCAL: frozenset[str] = frozenset(
    {
        "anchored_agreement",
        "chain_cycle",
        "chain_cycle_position",
        "chain_event",
        "chain_line_state",
        "chain_partner",
        "eod_batch",
        "eod_run",
        "eod_shard",
        "eod_step",
        "event_cursor",
        "event_line_bucket",
        "fraud_ring_link",
        "idempotency_record",
        "idempotency_response",
        "indexed_block",
        "indexer_checkpoint",
        "liveness_challenge",
        "oracle_outbox",
        "relay_attempt",
        "relay_submission",
        "risk_live_count",
        "settlement_cycle",
        "settlement_cycle_tree",
        "settlement_entry",
        "settlement_event_claim",
        "settlement_line_state",
        "settlement_position",
        "worker_lease",
    }
)
"""The node's own machinery, kept on one server (Citus: local tables on the coordinator):
the outbox and relayer, the chain mirror, leases and cursors, idempotency claims (keyed by
API key, not customer), end-of-day progress, settlement cycles, and the cross-customer
fraud graph and model monitoring counts."""


def customer_column(table: str) -> str:
    """The column of a per-customer table that names its row's customer."""
    return ROOTS.get(table, "customer_id")


def _customer_of(parent_name: str, parent_id: ColumnElement[int]) -> ColumnElement[str | None]:
    """The customer the `parent_name` row whose id is `parent_id` names. Each row is
    compared with its parent and the roots name their own, so a wrong id anywhere shows
    (on the first row that differs from its parent), at one index probe a row."""
    parent = metadata.tables[parent_name].alias(f"owner_{parent_name}")
    named = parent.c[customer_column(parent_name)]
    return select(named).where(parent.c.id == parent_id).correlate_except(parent).scalar_subquery()


def _expected(name: str, table: NamedFromClause) -> ColumnElement[str | None]:
    """The customer a row of the per-customer table `name` (`table`: it or an alias of it)
    belongs to: its parent's, or `NODE_CUSTOMER` for an account or batch of the node's own
    (no parent)."""
    via, parent_name = PARENTS[name]
    customer = _customer_of(parent_name, table.c[via])
    if name in NODE_OWNED and metadata.tables[name].c[via].nullable:
        return case((table.c[via].is_(None), NODE_CUSTOMER), else_=customer)
    return customer


def customer_id_mismatches(conn: Connection) -> dict[str, int]:
    """Per table, the rows whose `customer_id` is not their parent row's customer
    (NULL-safe; rows whose parent is missing or names none yet are not compared, their
    parent being counted instead): empty when every row carries the right one."""
    found: dict[str, int] = {}
    for name in PARENTS:
        table = metadata.tables[name]
        count = conn.execute(
            select(func.count())
            .select_from(table)
            .where(  # a row whose parent is missing (expected NULL) is not compared
                table.c.customer_id.is_distinct_from(
                    func.coalesce(_expected(name, table), table.c.customer_id)
                )
            )
        ).scalar_one()
        if count:
            found[name] = int(count)
    return found


def fill_customer_ids(engine: Engine, *, batch_rows: int = 10_000) -> dict[str, int]:
    """Give every row written without a `customer_id` its parent's (parents first), in
    batches, each its own transaction (a statement fills the rows of at most `batch_rows`
    parents); answers the rows filled per table. The node's own rows (no credit line up
    their chain) get `NODE_CUSTOMER`."""
    filled: dict[str, int] = {}
    for name, (via, _) in PARENTS.items():
        table = metadata.tables[name]
        waiting = table.alias("waiting")
        pending = (
            select(waiting.c[via])
            .where(waiting.c.customer_id.is_(None), _expected(name, waiting).is_not(None))
            .limit(batch_rows)
        )
        statements = [
            update(table)
            .where(table.c.customer_id.is_(None), table.c[via].in_(pending))
            .values(customer_id=_expected(name, table))
        ]
        if table.c[via].nullable:  # an account or batch of the node's own: no parent
            own = (
                select(waiting.c.id)
                .where(waiting.c.customer_id.is_(None), waiting.c[via].is_(None))
                .limit(batch_rows)
            )
            statements.append(
                update(table).where(table.c.id.in_(own)).values(customer_id=NODE_CUSTOMER)
            )
        for statement in statements:
            while True:
                with engine.begin() as conn:
                    done = conn.execute(statement).rowcount
                if not done:
                    break
                filled[name] = filled.get(name, 0) + done
    return filled
