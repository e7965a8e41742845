"""The ledger's tables, as SQLAlchemy Core: accounts, posting batches, postings,
settlement events and the node's business date; and the two facts the books are kept
against, which lending writes and settlement reads (see `node_api.ledger.settlement_events`):
the product versions lines are booked on (`product_version`, immutable) and each line's
limit tree (`limit_node`, whose product nodes name the versions).

Amounts are BIGINT fen. A posting's `amount_fen` is signed: debit positive, credit
negative, so a batch balances when its amounts sum to zero and an account's balance is
the plain sum of its postings. The journal is append-only: rows of `posting_batch`,
`posting` and `settlement_event` are inserted, never updated or deleted; a correction is
a new batch that reverses an earlier one (`reverses_batch_id`).

Postings and settlement events carry no foreign keys: a foreign-key check per row more
than doubled the cost of the hot path's biggest insert. They are written only by
`post_batches`, which takes their batch id from its own insert and their account ids
from existing accounts in the same transaction; `fetch_balance_drift` and the trial
balance check the result.

`ledger_account.balance_fen` is the running balance (same sign convention), kept in the
same transaction as the postings so floors can be checked under a row lock;
`balance_at(date)` is always recomputed from postings.

The business-date indexes of `posting_batch` and `settlement_event` are BRIN on
PostgreSQL (`date_index`, migration 0022): a purchase writes one batch and three events,
and their four B-tree entries were 6 % of its WAL (4,496 → 4,233 B).
"""

from __future__ import annotations

from sqlalchemy.schema import CheckConstraint, Column, ForeignKey, Index, Table, UniqueConstraint
from sqlalchemy.types import BigInteger, Date, Integer, SmallInteger, String, Text
from sqlmodel import SQLModel

metadata = SQLModel.metadata

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")
"""BIGINT ids; on SQLite an INTEGER PRIMARY KEY, the only type it auto-increments."""


def id_column() -> Column[int]:
    """The table's `id`: an auto-incremented BIGINT primary key (see `ID_TYPE`)."""
    return Column("id", ID_TYPE, primary_key=True, autoincrement=True)


def fk_column(
    name: str,
    target: str,
    constraint: str,
    *,
    nullable: bool = False,
    index: bool | None = None,
    unique: bool | None = None,
    primary_key: bool = False,
) -> Column[int]:
    """A BIGINT column referencing `target` (`table.column`) through the foreign key
    named `constraint`."""
    return Column(
        name,
        BigInteger,
        ForeignKey(target, name=constraint),
        nullable=nullable,
        index=index,
        unique=unique,
        primary_key=primary_key,
        autoincrement=False if primary_key else "auto",
    )


def date_index(name: str) -> Index:
    """The business-date index of an append-only table: BRIN on PostgreSQL (a table's
    rows arrive nearly in business-date order, so each range of pages holds a narrow span
    of dates; an insert writes no index entry, where a B-tree wrote one leaf entry a row),
    a B-tree on SQLite."""
    return Index(name, "as_of", postgresql_using="brin", postgresql_with={"autosummarize": "on"})


def line_column(constraint: str, *, index: bool | None = None) -> Column[int]:
    """`credit_line_id`, not null, referencing `credit_line.id`."""
    return fk_column("credit_line_id", "credit_line.id", constraint, index=index)


def fen_columns(*names: str) -> list[Column[int]]:
    """Not-null BIGINT amounts in fen."""
    return [Column(name, BigInteger, nullable=False) for name in names]


def product_columns(*, nullable: bool = False) -> tuple[Column[str], Column[int]]:
    """`product_code` and `product_version`: the product version a row is booked on."""
    return (
        Column("product_code", String(32), nullable=nullable),
        Column("product_version", Integer, nullable=nullable),
    )


business_date_table = Table(
    "business_date",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint("id = 1", name="ck_business_date_single_row"),
)

ledger_account_table = Table(
    "ledger_account",
    metadata,
    id_column(),
    Column("code", String(160), nullable=False, unique=True),
    Column("account_type", String(40), nullable=False),
    Column("credit_line_id", BigInteger, nullable=True, index=True),
    Column("partner_ref", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("normal_sign", SmallInteger, nullable=False),
    Column("floor_fen", BigInteger, nullable=True),
    Column("balance_fen", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("normal_sign IN (1, -1)", name="ck_ledger_account_normal_sign"),
    CheckConstraint(
        "floor_fen IS NULL OR balance_fen * normal_sign >= floor_fen",
        name="ck_ledger_account_floor",
    ),
    Column("customer_id", String(64), nullable=True),
    # The conflict target of account creation: led by the customer, as a partitioned
    # table's unique keys must be (issue #19, migration 0020).
    Index("uq_ledger_account_customer_code", "customer_id", "code", unique=True),
)

posting_batch_table = Table(
    "posting_batch",
    metadata,
    id_column(),
    Column("business_key", String(160), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("credit_line_id", BigInteger, nullable=True, index=True),
    Column(
        "reverses_batch_id",
        BigInteger,
        ForeignKey("posting_batch.id", name="fk_posting_batch_reverses"),
        nullable=True,
        unique=True,
    ),
    Column("customer_id", String(64), nullable=True),
    date_index("ix_posting_batch_as_of"),
)

posting_table = Table(
    "posting",
    metadata,
    id_column(),
    Column("batch_id", BigInteger, nullable=False, index=True),
    Column("account_id", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    CheckConstraint("amount_fen <> 0", name="ck_posting_nonzero"),
    Index("ix_posting_account_as_of", "account_id", "as_of"),
    Column("customer_id", String(64), nullable=True),
)

settlement_event_table = Table(
    "settlement_event",
    metadata,
    id_column(),
    Column("batch_id", BigInteger, nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("credit_line_id", BigInteger, nullable=True),
    *product_columns(nullable=True),
    Column("partner_ref", String(64), nullable=True),
    Column("counterparty_ref", String(64), nullable=True),
    Column("amount_fen", BigInteger, nullable=False),
    CheckConstraint("amount_fen <> 0", name="ck_settlement_event_nonzero"),
    Column("customer_id", String(64), nullable=True),
    date_index("ix_settlement_event_as_of"),
)

limit_node_table = Table(
    "limit_node",
    metadata,
    id_column(),
    line_column("fk_limit_node_line"),
    fk_column("parent_id", "limit_node.id", "fk_limit_node_parent", nullable=True),
    Column("path", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    *product_columns(nullable=True),
    Column("limit_fen", BigInteger, nullable=False),
    Column("temp_raise_fen", BigInteger, nullable=False, server_default="0"),
    Column("temp_raise_expires_on", Date, nullable=True),
    Column("used_fen", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("credit_line_id", "path", name="uq_limit_node_path"),
    CheckConstraint(
        "limit_fen >= 0 AND temp_raise_fen >= 0 AND used_fen >= 0", name="ck_limit_node_amounts"
    ),
    Column("customer_id", String(64), nullable=True),
)

product_version_table = Table(
    "product_version",
    metadata,
    Column("product_code", String(32), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("product_type", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("terms_hash", String(66), nullable=False),
    Column("terms_json", Text, nullable=False),
)
